//! The daemon: its shared state, and `run`, which owns every long-lived task
//! (control server, signals, watchdog) and waits for all of them on shutdown.
//!
//! State that handlers read is behind short-held locks, never held across an
//! `.await`. Changes that watchers care about bump `changes`, a watch channel,
//! so `Monitor` streams see them without polling.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::api::daemon::DaemonStatus;
use crate::api::service::VERSION;
use crate::config::{Config, ConfigError};
use crate::control::{self, Listener};
use crate::notify;

/// How long connections get to finish their calls once shutdown begins.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Daemon {
    started: Instant,
    config_path: PathBuf,
    config: RwLock<Arc<Config>>,
    /// Where the control socket is, for Status.
    socket: String,
    shutdown: watch::Sender<bool>,
    changes: watch::Sender<u64>,
}

impl Daemon {
    pub fn new(config_path: PathBuf, config: Config, socket: String) -> Arc<Daemon> {
        Arc::new(Daemon {
            started: Instant::now(),
            config_path,
            config: RwLock::new(Arc::new(config)),
            socket,
            shutdown: watch::channel(false).0,
            changes: watch::channel(0).0,
        })
    }

    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn status(&self) -> DaemonStatus {
        let config = self.config();
        DaemonStatus {
            version: VERSION.to_string(),
            pid: std::process::id(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            socket: self.socket.clone(),
            config_file: config.file.display().to_string(),
            config_found: config.found,
            // Rooms and agent sessions are held by the room client and the
            // agent host; until they exist the daemon holds none.
            projects: 0,
            rooms: 0,
            agent_sessions: 0,
            live_agents: 0,
        }
    }

    /// Re-reads the configuration. On error the running one stays.
    pub fn reload(&self) -> Result<PathBuf, ConfigError> {
        notify::reloading();
        let result = Config::load(&self.config_path);
        match &result {
            Ok(config) => {
                *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config.clone());
                tracing::info!(file = %self.config_path.display(), found = config.found, "configuration reloaded");
                self.changed();
            }
            Err(error) => {
                tracing::error!(%error, "reload refused; the running configuration stays")
            }
        }
        notify::ready(&self.status_line());
        result.map(|_| self.config_path.clone())
    }

    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once shutdown has been requested.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|generation| *generation += 1);
    }

    fn status_line(&self) -> String {
        let s = self.status();
        format!(
            "serving on {}; {} projects, {} rooms, {} agent sessions",
            s.socket, s.projects, s.rooms, s.agent_sessions
        )
    }
}

/// Waits until `shutdown` is set.
pub async fn wait_for(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Runs the daemon until SIGTERM, SIGINT or a Shutdown call; returns once
/// every task has stopped.
pub async fn run(daemon: Arc<Daemon>, listener: Listener) -> std::io::Result<()> {
    let (probe_tx, probe_rx) = mpsc::channel(1);
    let server = tokio::spawn(control::serve(listener, daemon.clone(), probe_rx));
    let signals = tokio::spawn(handle_signals(daemon.clone()));
    let watchdog = notify::watchdog_interval().map(|interval| {
        tokio::spawn(watchdog(
            interval,
            probe_tx.clone(),
            daemon.shutdown_signal(),
        ))
    });
    notify::ready(&daemon.status_line());
    tracing::info!(socket = %daemon.socket, version = VERSION, "nexscoped ready");

    wait_for(daemon.shutdown_signal()).await;
    notify::stopping();
    tracing::info!("shutting down");
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
    Ok(())
}

async fn handle_signals(daemon: Arc<Daemon>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM"); daemon.request_shutdown(); }
            _ = int.recv() => { tracing::info!("SIGINT"); daemon.request_shutdown(); }
            _ = hup.recv() => { tracing::info!("SIGHUP: reloading configuration"); let _ = daemon.reload(); }
        }
    }
}

/// Pings systemd's watchdog at half its interval, but only after the control
/// server's accept loop has answered a probe: a wedged daemon whose process
/// is alive must still be restarted.
async fn watchdog(
    interval: Duration,
    probe: mpsc::Sender<oneshot::Sender<()>>,
    shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval / 2);
    let stop = wait_for(shutdown);
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
