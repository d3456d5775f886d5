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
use crate::relay::{self, Embedded};

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
    /// The relay this daemon runs for projects with no relay_url.
    embedded: Embedded,
    embedded_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Daemon {
    /// The daemon's state, with its embedded relay already listening.
    pub async fn new(
        config_path: PathBuf,
        config: Config,
        socket: String,
    ) -> std::io::Result<Arc<Daemon>> {
        let shutdown = watch::channel(false).0;
        let (embedded, task) = relay::start_embedded(shutdown.subscribe()).await?;
        tracing::info!(url = %embedded.url, "embedded relay listening");
        Ok(Arc::new(Daemon {
            started: Instant::now(),
            config_path,
            config: RwLock::new(Arc::new(config)),
            socket,
            shutdown,
            changes: watch::channel(0).0,
            embedded,
            embedded_task: std::sync::Mutex::new(Some(task)),
        }))
    }

    /// The embedded relay's URL and token, for local clients of the user.
    pub fn embedded_relay(&self) -> (&str, &str) {
        (&self.embedded.url, &self.embedded.token)
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
            embedded_relay: self.embedded.url.clone(),
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
    let signals = {
        let (stop, reload) = (daemon.clone(), daemon.clone());
        tokio::spawn(async move {
            crate::signals::handle(
                move || stop.request_shutdown(),
                move || {
                    let _ = reload.reload();
                },
            )
            .await
        })
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
    let embedded = daemon.embedded_task.lock().ok().and_then(|mut t| t.take());
    if let Some(task) = embedded {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT * 2, task).await;
    }
    Ok(())
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
