//! Reads stop when their request's [`Interrupt`] says so: at its deadline, or at once
//! when it is stopped, and the store serves the next read.

use std::sync::mpsc;
use std::time::Duration;

use crate::interrupt::{self, Interrupt};
use crate::{Store, StoreError};

/// A statement that runs for minutes on either backend (a billion-row recursive count).
const SLOW: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) \
                    SELECT count(*) FROM c";

/// Runs the slow statement under `interrupt`. Unstopped it would run for minutes: a
/// watchdog ends the test process after a minute rather than let the suite hang.
fn slow_read<S: Store + ?Sized>(
    store: &S,
    interrupt: std::sync::Arc<Interrupt>,
) -> Result<(), StoreError> {
    let (done, wait) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if wait.recv_timeout(Duration::from_secs(60)) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("a statement under an interrupt was not stopped within a minute");
            std::process::abort();
        }
    });
    let r = interrupt::scope(Some(interrupt), || {
        let mut read = store.read()?;
        read.query(SLOW, &[]).map(|_| ())
    });
    let _ = done.send(());
    r
}

pub fn reads_stop_at_the_deadline_or_when_stopped<S: Store + ?Sized>(store: &S) {
    // The deadline.
    let r = slow_read(store, Interrupt::new(Some(Duration::from_millis(300))));
    assert!(
        matches!(&r, Err(StoreError::Busy(m)) if m == interrupt::STOPPED),
        "past its deadline: {r:?}"
    );
    // A stop from elsewhere (the client went away), without a deadline.
    let stopper = Interrupt::new(None);
    let s2 = stopper.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        s2.stop();
    });
    let r = slow_read(store, stopper);
    assert!(
        matches!(&r, Err(StoreError::Busy(m)) if m == interrupt::STOPPED),
        "stopped: {r:?}"
    );
    // A read whose request is already stopped does not start.
    let gone = Interrupt::new(None);
    gone.stop();
    let r = interrupt::scope(Some(gone), || {
        store.read().and_then(|mut t| t.query("SELECT 1", &[]))
    });
    assert!(matches!(r, Err(StoreError::Busy(_))), "{r:?}");
    // Every connection still serves, inside and outside a request's scope.
    for _ in 0..20 {
        let n = interrupt::scope(Some(Interrupt::new(Some(Duration::from_secs(60)))), || {
            store.read().and_then(|mut t| t.query("SELECT 1 + 1", &[]))
        })
        .expect("a read after the stops");
        assert_eq!(n, vec![vec![crate::search::SqlValue::Int(2)]]);
    }
    let n = store
        .read()
        .and_then(|mut t| t.query("SELECT 1 + 1", &[]))
        .expect("a read outside any request");
    assert_eq!(n.len(), 1);
}
