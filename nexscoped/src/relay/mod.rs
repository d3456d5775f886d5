//! The relay server: nexscope v1 on the wire (docs/protocol.md §1), more
//! when a client asks (rooms, per-user tokens, delta presence, TLS, health
//! and metrics). It runs as `nexscoped relay` and embedded in every daemon.
//!
//! `frame` parses and builds frames, `room` routes and holds presence and the
//! transfer lock, `outbox` bounds what a connection may have queued,
//! `connection` is one client, `server` the accept loop, `http` the request
//! head, `auth` tokens, `tls` certificates, `metrics` the counters.

pub mod auth;
pub mod cluster;
pub(crate) mod connection;
pub mod frame;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod outbox;
pub(crate) mod receipt;
pub(crate) mod room;
pub mod server;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::admission::{self, Admission};
use crate::shutdown::Shutdown;

/// v1's limits (docs/protocol.md §1.11) as defaults.
pub const DEFAULT_MAX_USERS: usize = 50;
pub use nexscope_proto::rules::{DEFAULT_MAX_FILE, DEFAULT_MAX_PAYLOAD};
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
pub const DEFAULT_TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);
/// Open connections at once; each costs a file descriptor and ~10 KiB.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Open connections from one address: a machine's agents, or a NAT's users.
pub const DEFAULT_MAX_PER_ADDRESS: usize = 256;
/// Members one user (per-user tokens) may have, over all rooms.
pub const DEFAULT_MAX_PER_USER: usize = 64;

pub struct Settings {
    pub max_users: usize,
    pub max_payload: usize,
    pub max_file: u64,
    pub max_connections: usize,
    /// None: no cap (the embedded relay, where every member is local).
    pub max_per_address: Option<usize>,
    pub max_per_user: Option<usize>,
    pub heartbeat: Duration,
    pub transfer_timeout: Duration,
    pub tls: Option<TlsAcceptor>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_users: DEFAULT_MAX_USERS,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_file: DEFAULT_MAX_FILE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_per_address: Some(DEFAULT_MAX_PER_ADDRESS),
            max_per_user: Some(DEFAULT_MAX_PER_USER),
            heartbeat: DEFAULT_HEARTBEAT,
            transfer_timeout: DEFAULT_TRANSFER_TIMEOUT,
            tls: None,
        }
    }
}

pub struct Relay {
    /// Set when this relay is a node of a relay tier.
    pub cluster: std::sync::OnceLock<Arc<cluster::Cluster>>,
    /// Bumped when this node stops serving in its tier: every member and
    /// pipe closes with 1012 so that its client reconnects.
    pub fence: tokio::sync::watch::Sender<u64>,
    pub settings: Settings,
    pub auth: auth::Auth,
    pub rooms: room::Rooms,
    pub metrics: metrics::Metrics,
    pub admission: Arc<Admission>,
    pub shutdown: Shutdown,
    next_id: AtomicU64,
}

impl Relay {
    pub fn new(settings: Settings, auth: auth::Auth, shutdown: Shutdown) -> Arc<Relay> {
        let mut limits = admission::Limits::for_connections(settings.max_connections);
        limits.open_per_address = settings.max_per_address;
        limits.open_per_user = settings.max_per_user;
        if settings.max_per_address.is_none() {
            // No per-address caps at all: one address may be the only one.
            limits.pending_per_address = limits.pending;
        }
        let admission = Admission::new(limits);
        Arc::new(Relay {
            cluster: std::sync::OnceLock::new(),
            fence: tokio::sync::watch::channel(0).0,
            admission,
            settings,
            auth,
            rooms: room::Rooms::default(),
            metrics: metrics::Metrics::default(),
            shutdown,
            next_id: AtomicU64::new(1),
        })
    }

    /// Stops serving in the tier: members and pipes close with 1012.
    pub fn fence(&self) {
        self.fence.send_modify(|generation| *generation += 1);
        for room in self.rooms.all() {
            room.deposed.send_modify(|generation| *generation += 1);
        }
        if let Some(cluster) = self.cluster.get() {
            cluster.pipes.close_all();
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// The relay inside a daemon: loopback only, a random token, rooms for the
/// user's own agents (the default when no relay is configured, so that the
/// agents on one machine can chat with no configuration).
pub struct Embedded {
    pub url: String,
    pub token: String,
}

/// Members of one embedded room: one user's agents on one machine.
const EMBEDDED_MAX_USERS: usize = 1000;

/// Starts it; the task ends after `shutdown` once its members are closed.
pub async fn start_embedded(
    shutdown: Shutdown,
) -> std::io::Result<(Embedded, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let address = listener.local_addr()?;
    let token = auth::random_token();
    let auth = auth::Auth::new(Some(&token), None).map_err(std::io::Error::other)?;
    let settings = Settings {
        max_users: EMBEDDED_MAX_USERS,
        max_per_address: None,
        max_per_user: None,
        ..Settings::default()
    };
    let relay = Relay::new(settings, auth, shutdown);
    let task = tokio::spawn(server::serve(listener, relay));
    let url = format!("ws://{address}/ws");
    Ok((Embedded { url, token }, task))
}
