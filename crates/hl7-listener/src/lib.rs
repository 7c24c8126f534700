//! The MLLP listener: HL7 v2 messages from other organizations' systems (admissions,
//! lab results, immunizations, appointments, documents) over TCP, optionally TLS.
//!
//! [`run`] takes a bound listener and a shutdown future. Each connection reads MLLP
//! frames ([`framing`]) one at a time and answers each with its acknowledgement before
//! reading the next (HL7's original acknowledgement mode), so a sender's messages are
//! stored in the order it sent them. Processing ([`process`]) runs on a blocking thread:
//! parsing, mapping and storing through `records`. An acknowledgement is sent only after
//! the message's resources and its row are committed and durable.
//!
//! Limits: at most `max_connections` at once (more wait to be accepted), a message of at
//! most `max_message_bytes`, and a connection idle longer than `idle_timeout` is closed.
//! At shutdown the listener stops accepting, and each connection finishes the message
//! it is storing, answers it, and closes.

pub mod framing;
pub mod process;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oxehr_records::Records;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

pub use process::{process, reprocess, Answer, Outcome};

/// Settings of the listener.
#[derive(Clone)]
pub struct ListenerConfig {
    /// The largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// A connection with no message for this long is closed.
    pub idle_timeout: Duration,
    /// Serve MLLP inside TLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for ListenerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerConfig")
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            max_message_bytes: 4 * 1024 * 1024,
            max_connections: 256,
            idle_timeout: Duration::from_secs(600),
            tls: None,
        }
    }
}

/// Serves MLLP on `listener` until `shutdown` completes and the open connections have
/// answered the message they were storing.
pub async fn run(
    listener: TcpListener,
    records: Records,
    config: ListenerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "MLLP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let records = records.clone();
        let config = config.clone();
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let result = match config.tls.clone() {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => serve_connection(tls, peer, records, &config, stop).await,
                    Err(e) => {
                        tracing::info!(%peer, error = %e, "MLLP TLS handshake failed");
                        Ok(())
                    }
                },
                None => serve_connection(stream, peer, records, &config, stop).await,
            };
            if let Err(e) = result {
                tracing::info!(%peer, error = %e, "MLLP connection ended");
            }
        });
        // Finished connections are reaped as new ones come.
        while tasks.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    records: Records,
    config: &ListenerConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<(), framing::FrameError> {
    let (read, mut write) = tokio::io::split(stream);
    let mut frames = framing::FrameReader::new(read, config.max_message_bytes);
    loop {
        let next = tokio::select! {
            _ = stop.changed() => return Ok(()),
            r = tokio::time::timeout(config.idle_timeout, frames.next_frame()) => r,
        };
        let bytes = match next {
            Err(_) => return Ok(()),
            Ok(Ok(Some(b))) => b,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(framing::FrameError::TooLong(max))) => {
                let ack = process::too_long(max);
                framing::write_frame(&mut write, ack.as_bytes()).await?;
                return Err(framing::FrameError::TooLong(max));
            }
            Ok(Err(e)) => return Err(e),
        };
        let records = records.clone();
        let ip = peer.ip();
        let answer =
            tokio::task::spawn_blocking(move || process::process(&records, &bytes, Some(ip)))
                .await
                .map_err(|e| std::io::Error::other(format!("processing a message failed: {e}")))?;
        // The outcome's kind only: a reason may quote the message.
        match &answer.outcome {
            Outcome::Stored | Outcome::Resent => {
                tracing::debug!(%peer, outcome = answer.outcome.kind(), "HL7 v2 message")
            }
            other => tracing::info!(%peer, outcome = other.kind(), "HL7 v2 message not stored"),
        }
        framing::write_frame(&mut write, answer.ack.as_bytes()).await?;
    }
}

/// [`reprocess`] as `oxehr_records` calls it ([`oxehr_records::Records::set_reprocessor`]),
/// so a page can offer "try again" on a message in triage: what became of it, in words.
pub fn reprocessor() -> oxehr_records::exchange::Reprocessor {
    oxehr_records::exchange::Reprocessor(std::sync::Arc::new(|records, who, id| {
        Ok(match reprocess(records, who, id)? {
            Outcome::Stored => "filed in the record".to_owned(),
            Outcome::Resent => "it had been filed already".to_owned(),
            Outcome::Held { reason }
            | Outcome::Rejected { reason }
            | Outcome::Failed { reason } => format!("still waiting: {reason}"),
        })
    }))
}
