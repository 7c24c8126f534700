//! Stopping the statements of a request: when it runs past its time limit, or when the
//! client that asked has gone away.
//!
//! An adapter runs each request's record-layer call inside [`scope`] with an
//! [`Interrupt`] (its deadline, if any) and calls [`Interrupt::stop`] when the answer is
//! no longer wanted (the connection closed, the request timed out). The read
//! transactions of the backends consult the interrupt of the thread they run on:
//! - SQLite: a progress handler on every read connection asks [`should_stop`] every
//!   few thousand virtual-machine steps, and a statement told to stop ends with
//!   `SQLITE_INTERRUPT`;
//! - PostgreSQL: a read transaction starts with `SET LOCAL statement_timeout` set to
//!   the time left, so the server itself stops a statement at the deadline, and it
//!   registers its connection's cancel key with [`Interrupt::on_stop`], so a stop
//!   cancels the running statement at once.
//!
//! Either way the read answers [`StoreError::Busy`](crate::StoreError::Busy) with
//! [`STOPPED`], and nothing keeps running for a client that is gone. Threads a request
//! starts for itself (a batch's workers) take its interrupt along with [`scope`]. Writes
//! are not interrupted: a write job is short, bounded by the limits of what it may ask,
//! and stopping it half-way would only roll it back.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The message of a statement that was stopped.
pub const STOPPED: &str =
    "the request was stopped: it ran past its time limit, or its client went away";

type Callback = Box<dyn FnOnce() + Send>;

/// One registered action to run on a stop; emptied when it has run or is withdrawn.
#[derive(Default)]
struct Slot {
    callback: Mutex<Option<Callback>>,
    fired: AtomicBool,
}

/// The deadline and the stop switch of one request.
#[derive(Default)]
pub struct Interrupt {
    deadline: Option<Instant>,
    stopped: AtomicBool,
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupt")
            .field("deadline", &self.deadline)
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Interrupt {
    /// An interrupt whose statements stop `limit` from now (`None`: only on a stop).
    pub fn new(limit: Option<Duration>) -> Arc<Interrupt> {
        Arc::new(Interrupt {
            deadline: limit.map(|l| Instant::now() + l),
            ..Interrupt::default()
        })
    }

    /// Whether statements should stop now: stopped, or past the deadline.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The time left before the deadline (`None`: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Stops the request's statements. The registered actions (cancel requests over
    /// the network) run on a thread of their own, so this never blocks its caller, which
    /// may be an async executor dropping a request.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let slots = match self.slots.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(_) => return,
        };
        if slots.is_empty() {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("oxehr-interrupt".into())
            .spawn(move || {
                for slot in slots {
                    // Held while the action runs: withdrawing waits for it.
                    if let Ok(mut cb) = slot.callback.lock() {
                        if let Some(f) = cb.take() {
                            slot.fired.store(true, Ordering::SeqCst);
                            f();
                        }
                    }
                }
            });
    }

    /// Registers `action` to run when the request is stopped, until the returned
    /// [`Registration`] is dropped. Already stopped: nothing is registered (the caller
    /// checks [`is_stopped`](Self::is_stopped) first).
    pub fn on_stop(&self, action: impl FnOnce() + Send + 'static) -> Registration {
        let slot = Arc::new(Slot {
            callback: Mutex::new(Some(Box::new(action))),
            fired: AtomicBool::new(false),
        });
        if let Ok(mut slots) = self.slots.lock() {
            if !self.stopped.load(Ordering::SeqCst) {
                slots.push(slot.clone());
            }
        }
        Registration { slot }
    }
}

/// An action registered with [`Interrupt::on_stop`]; dropping it withdraws the action,
/// waiting for it to finish if it is running.
pub struct Registration {
    slot: Arc<Slot>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("fired", &self.fired())
            .finish()
    }
}

impl Registration {
    /// Withdraws the action; whether it ran (or is running, and has now finished).
    pub fn withdraw(&self) -> bool {
        if let Ok(mut cb) = self.slot.callback.lock() {
            cb.take();
        }
        self.fired()
    }

    /// Whether the action has run.
    pub fn fired(&self) -> bool {
        self.slot.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.withdraw();
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Interrupt>>> = const { RefCell::new(None) };
}

/// Runs `f` with `interrupt` as this thread's current one (restoring the previous one
/// after, also on a panic).
pub fn scope<T>(interrupt: Option<Arc<Interrupt>>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<Interrupt>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.replace(interrupt));
    let _restore = Restore(previous);
    f()
}

/// This thread's current interrupt, if any.
pub fn current() -> Option<Arc<Interrupt>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Whether this thread's current statements should stop (for SQLite's progress
/// handler: cheap, no allocation).
pub fn should_stop() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|i| i.is_stopped()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_stops_and_scopes_nest() {
        assert!(!should_stop(), "no interrupt outside a scope");
        let past = Interrupt::new(Some(Duration::ZERO));
        let open = Interrupt::new(None);
        scope(Some(open.clone()), || {
            assert!(!should_stop());
            scope(Some(past), || assert!(should_stop()));
            assert!(!should_stop(), "the outer interrupt is back");
            open.stop();
            assert!(should_stop());
        });
        assert!(current().is_none());
    }

    #[test]
    fn a_stop_runs_each_registered_action_once_and_withdrawn_ones_never() {
        let i = Interrupt::new(None);
        let (tx, rx) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        let kept = i.on_stop(move || tx.send("kept").expect("send"));
        let withdrawn = i.on_stop(move || tx2.send("withdrawn").expect("send"));
        assert!(!withdrawn.withdraw());
        i.stop();
        i.stop();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).expect("ran"),
            "kept"
        );
        // Withdrawing after the action ran waits for nothing and reports it.
        assert!(kept.withdraw());
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        // Registering on a stopped interrupt registers nothing.
        let late = i.on_stop(|| panic!("must not run"));
        assert!(!late.fired());
    }
}
