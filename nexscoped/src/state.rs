//! The daemon's shared state: configuration, rooms, agents, the embedded
//! relay and the agent gateway's socket, built once at start (`Daemon::new`)
//! and read by the control handlers.
//!
//! State that handlers read is behind short-held locks, never held across an
//! `.await`. Changes that watchers care about bump `changes`, a watch channel,
//! so `Monitor` streams see them without polling.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::watch;

use crate::agents::{Agents, gateway};
use crate::notify;
use crate::relay::{self, Embedded};
use crate::rooms::{self, Rooms};
use crate::shutdown::{Shutdown, Trigger};
use crate::store::{self, Store, StoreError};
use nexscope_proto::api::daemon::DaemonStatus;
use nexscope_proto::api::service::VERSION;
use nexscope_proto::config::{Config, ConfigError};
use nexscope_proto::paths::{self, PathError};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the embedded relay: {0}")]
    Relay(#[from] std::io::Error),
    #[error(transparent)]
    Paths(#[from] PathError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the agent gateway on {addr}: {message}")]
    Gateway { addr: String, message: String },
}

pub struct Daemon {
    started: Instant,
    config_path: PathBuf,
    config: RwLock<Arc<Config>>,
    /// Where the control socket is, for Status.
    pub(crate) socket: String,
    shutdown: Trigger,
    changes: watch::Sender<u64>,
    /// The relay this daemon runs for projects with no relay_url.
    embedded: Embedded,
    pub(crate) rooms: Arc<Rooms>,
    pub(crate) agents: Arc<Agents>,
    /// The nx-ce gateway's socket and who may use it, when enabled.
    pub(crate) gateway: std::sync::Mutex<Option<(tokio::net::TcpListener, gateway::Access)>>,
    /// Where the gateway listens, for Status.
    gateway_addr: Option<String>,
    pub(crate) embedded_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The web page for the humans.
    pub(crate) web: Arc<crate::web::Web>,
}

impl Daemon {
    /// The daemon's state, with its embedded relay already listening.
    pub async fn new(
        config_path: PathBuf,
        config: Config,
        socket: String,
    ) -> Result<Arc<Daemon>, StartError> {
        let shutdown = crate::shutdown::channel().0;
        let (embedded, task) = relay::start_embedded(shutdown.subscribe()).await?;
        let state_dir = paths::state_dir()?;
        paths::ensure_private_dir(&state_dir)?;
        let store = Store::open(&state_dir.join(store::FILE_NAME))?;
        let files_root = paths::data_dir()?.join("files");
        let agents = Agents::new(store.clone(), config.agents.clone(), shutdown.subscribe());
        let gateway = match config.agents.listen {
            Some(addr) => Some(open_gateway(addr, &config.agents).await?),
            None => None,
        };
        let gateway_addr = gateway
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
            .map(|addr| addr.to_string());
        let rooms = Rooms::new(rooms::Context {
            store,
            files_root,
            embedded_url: embedded.url.clone(),
            embedded_token: embedded.token.clone(),
            shutdown: shutdown.subscribe(),
        });
        tracing::info!(url = %embedded.url, "embedded relay listening");
        let web = Arc::new(crate::web::Web::open(&config.web).await);
        Ok(Arc::new(Daemon {
            started: Instant::now(),
            config_path,
            config: RwLock::new(Arc::new(config)),
            socket,
            shutdown,
            changes: watch::channel(0).0,
            embedded,
            embedded_task: std::sync::Mutex::new(Some(task)),
            rooms,
            agents,
            gateway: std::sync::Mutex::new(gateway),
            gateway_addr,
            web,
        }))
    }

    /// The embedded relay's URL and token, for local clients of the user.
    pub(crate) fn embedded_relay(&self) -> (&str, &str) {
        (&self.embedded.url, &self.embedded.token)
    }

    pub(crate) fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn status(&self) -> DaemonStatus {
        let config = self.config();
        let (agent_sessions, live_agents) = self.agents.counts();
        DaemonStatus {
            version: VERSION.to_string(),
            pid: std::process::id(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            socket: self.socket.clone(),
            embedded_relay: self.embedded.url.clone(),
            config_file: config.file.display().to_string(),
            config_found: config.found,
            projects: self.rooms.list().len() as u64,
            rooms: self.rooms.list().iter().filter(|r| r.live().ready).count() as u64,
            agent_sessions,
            live_agents,
            agent_gateway: self.gateway_addr.clone(),
            web: self.web.url(),
        }
    }

    /// Re-reads the configuration. On error the running one stays.
    pub(crate) fn reload(&self) -> Result<PathBuf, ConfigError> {
        notify::reloading();
        let result = Config::load(&self.config_path);
        match &result {
            Ok(config) => {
                *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config.clone());
                self.agents.set_settings(config.agents.clone());
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

    pub(crate) fn request_shutdown(&self) {
        self.shutdown.fire();
    }

    /// Resolves once shutdown has been requested.
    pub(crate) fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.subscribe()
    }

    pub(crate) fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|generation| *generation += 1);
    }

    pub(crate) fn status_line(&self) -> String {
        let s = self.status();
        format!(
            "serving on {}; {} projects, {} rooms, {} agent sessions",
            s.socket, s.projects, s.rooms, s.agent_sessions
        )
    }
}

/// Binds the nx-ce gateway and decides who may use it: the configured
/// token; nobody checked when the user allowed unauthenticated loopback; else
/// a generated token in a private file next to the control socket.
async fn open_gateway(
    addr: std::net::SocketAddr,
    settings: &nexscope_proto::config::AgentSettings,
) -> Result<(tokio::net::TcpListener, gateway::Access), StartError> {
    let failed = |message: String| StartError::Gateway {
        addr: addr.to_string(),
        message,
    };
    let access = match (&settings.token, settings.allow_unauthenticated_loopback) {
        (Some(token), _) => gateway::Access::Token(
            crate::relay::auth::Auth::new(Some(token.expose()), None)
                .map_err(|e| failed(e.to_string()))?,
        ),
        (None, true) => {
            tracing::warn!(%addr, "the agent gateway accepts connections without a token (allow_unauthenticated_loopback): any local user or web page can drive your agents");
            gateway::Access::Open
        }
        (None, false) => {
            let file = gateway_token_file().map_err(|e| failed(e.to_string()))?;
            let token = crate::relay::auth::random_token();
            write_private(&file, &token)
                .map_err(|e| failed(format!("cannot write {}: {e}", file.display())))?;
            tracing::info!(%addr, token_file = %file.display(), "agent gateway token written");
            gateway::Access::Token(
                crate::relay::auth::Auth::new(Some(&token), None)
                    .map_err(|e| failed(e.to_string()))?,
            )
        }
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| failed(e.to_string()))?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "agent gateway listening");
    Ok((listener, access))
}

/// Where a generated gateway token is kept: next to the control socket,
/// `$XDG_RUNTIME_DIR/nexscope/agents.token`.
pub fn gateway_token_file() -> Result<PathBuf, PathError> {
    let dir = paths::runtime_dir();
    paths::ensure_private_dir(&dir)?;
    Ok(dir.join("agents.token"))
}

fn write_private(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(text.as_bytes())
}
