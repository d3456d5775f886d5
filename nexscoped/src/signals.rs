//! Signals, once for the daemon and the relay: SIGTERM and SIGINT stop,
//! SIGHUP reloads (where there is something to reload).
//!
//! The handlers are installed by `install`, before the caller starts serving:
//! a signal that arrives between "ready" and a spawned task's first poll must
//! not meet the default action (which kills the process).

use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

/// Installs the handlers now.
pub fn install() -> std::io::Result<Signals> {
    Ok(Signals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        hup: signal(SignalKind::hangup())?,
    })
}

impl Signals {
    /// Runs until the task is dropped, calling `stop` or `reload` per signal.
    pub async fn handle(mut self, stop: impl Fn(), reload: impl Fn()) {
        loop {
            tokio::select! {
                _ = self.term.recv() => { tracing::info!("SIGTERM: stopping"); stop(); }
                _ = self.int.recv() => { tracing::info!("SIGINT: stopping"); stop(); }
                _ = self.hup.recv() => { tracing::info!("SIGHUP: reloading"); reload(); }
            }
        }
    }
}
