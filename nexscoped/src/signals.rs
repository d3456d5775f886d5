//! Signals, once for the daemon and the relay: SIGTERM and SIGINT stop,
//! SIGHUP reloads (where there is something to reload).

use tokio::signal::unix::{SignalKind, signal};

/// Runs until the task is dropped, calling `stop` or `reload` per signal.
pub async fn handle(stop: impl Fn(), reload: impl Fn()) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); stop(); }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); stop(); }
            _ = hup.recv() => { tracing::info!("SIGHUP: reloading"); reload(); }
        }
    }
}
