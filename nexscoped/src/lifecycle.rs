//! Running the daemon: `run` is the startup and shutdown order, the one
//! place that spawns the long-lived tasks (control server, signals,
//! watchdog, rejoin, responder) and waits for all of them on shutdown. The
//! state they share is in `state`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::agents::gateway;
use crate::control::{self, Listener};
use crate::notify;
use crate::shutdown::{DRAIN_TIMEOUT, Shutdown};
use nexscope_proto::api::service::VERSION;

pub use crate::state::Daemon;

/// Runs the daemon until SIGTERM, SIGINT or a Shutdown call; returns once
/// every task has stopped. The start and the stop in one function, so that
/// their order reads top to bottom.
pub async fn run(daemon: Arc<Daemon>, listener: Listener) -> std::io::Result<()> {
    let handlers = crate::signals::install()?;
    let (probe_tx, probe_rx) = mpsc::channel(1);
    let server = tokio::spawn(control::serve(listener, daemon.clone(), probe_rx));
    let signals = {
        let (stop, reload) = (daemon.clone(), daemon.clone());
        tokio::spawn(handlers.handle(
            move || stop.request_shutdown(),
            move || {
                let _ = reload.reload();
            },
        ))
    };
    let watchdog = notify::watchdog_interval().map(|interval| {
        tokio::spawn(watchdog(
            interval,
            probe_tx.clone(),
            daemon.shutdown_signal(),
        ))
    });
    notify::ready(&daemon.status_line());
    tracing::info!(socket = %daemon.socket, version = VERSION, "nexscoped ready");
    // Rooms the daemon was in come back after READY: a relay that is slow
    // to answer must not hold up the control socket.
    let gateway =
        daemon
            .gateway
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .map(|(listener, access)| {
                tokio::spawn(gateway::serve(
                    listener,
                    daemon.agents.clone(),
                    access,
                    daemon.shutdown_signal(),
                ))
            });
    let web = tokio::spawn(crate::web::serve(daemon.clone(), daemon.web.clone()));
    // Subscribed before the rejoin, so rejoined rooms are answered too.
    let responder = tokio::spawn(crate::agents::responder::run(
        daemon.rooms.clone(),
        daemon.agents.clone(),
        daemon.rooms.subscribe_started(),
        daemon.shutdown_signal(),
    ));
    let rejoin = {
        let (rooms, config) = (daemon.rooms.clone(), daemon.config());
        tokio::spawn(async move { rooms.rejoin(&config).await })
    };

    daemon.shutdown_signal().wait().await;
    notify::stopping();
    tracing::info!("shutting down");
    rejoin.abort();
    responder.abort();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, daemon.rooms.join_all()).await;
    // Agents finish their turn's interrupt and stop their processes; their
    // records stay, so the next start resumes them.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT * 3, daemon.agents.join_all()).await;
    if let Some(gateway) = gateway {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT * 2, gateway).await;
    }
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, web).await;
    if tokio::time::timeout(DRAIN_TIMEOUT * 2, server)
        .await
        .is_err()
    {
        tracing::warn!("control server did not stop in time");
    }
    signals.abort();
    if let Some(watchdog) = watchdog {
        let _ = watchdog.await;
    }
    let embedded = daemon.embedded_task.lock().ok().and_then(|mut t| t.take());
    if let Some(task) = embedded {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT * 2, task).await;
    }
    // Last: everything is written, and the database file alone holds it.
    match tokio::time::timeout(DRAIN_TIMEOUT, daemon.rooms.ctx.store.checkpoint()).await {
        Ok(Ok(())) => tracing::debug!("store checkpointed"),
        Ok(Err(error)) => tracing::warn!(%error, "could not checkpoint the store"),
        Err(_) => tracing::warn!("the store did not checkpoint in time"),
    }
    Ok(())
}

/// Pings systemd's watchdog at half its interval, but only after the control
/// server's accept loop has answered a probe: a wedged daemon whose process
/// is alive must still be restarted.
async fn watchdog(
    interval: Duration,
    probe: mpsc::Sender<oneshot::Sender<()>>,
    shutdown: Shutdown,
) {
    let mut ticks = tokio::time::interval(interval / 2);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticks.tick() => {}
        }
        let (tx, rx) = oneshot::channel();
        let answered = probe.send(tx).await.is_ok()
            && tokio::time::timeout(interval / 4, rx)
                .await
                .is_ok_and(|r| r.is_ok());
        if answered {
            notify::watchdog();
        } else {
            tracing::warn!("control loop did not answer the watchdog probe");
        }
    }
}
