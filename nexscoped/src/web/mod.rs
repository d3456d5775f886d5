//! The web page for the humans: served by the daemon on loopback (axum over
//! hyper), it shows every project's room live, the inbox and the agent
//! sessions, and acts on them.
//!
//! The page holds no logic of its own on the server side: its WebSocket is a
//! bridge to the daemon's varlink methods (`bridge`), run in-process through
//! the same handlers as the control socket. What is here is the web's own
//! part: logging in with a one-time token (`login`), refusing what a local
//! web service must refuse (`guard`), moving files in and out (`files`), and
//! the page itself, compiled into the binary (`assets`).

mod assets;
mod bridge;
mod files;
mod guard;
mod login;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::shutdown::Shutdown;
use crate::state::Daemon;
use nexscope_proto::config::{DEFAULT_WEB_PORT, WebSettings};

pub(crate) use login::LOGIN_TTL;

/// Pages open at once (each holds one WebSocket); more are refused with 503.
const MAX_PAGES: usize = 64;
/// Uploads at once, over all pages (each is written to the runtime
/// directory, often memory, before it is sent).
const MAX_UPLOADS: usize = 4;

/// The page's server as the daemon holds it: where it serves (or why not),
/// and who has logged in.
pub(crate) struct Web {
    serving: Result<Serving, String>,
    pub(crate) logins: login::Logins,
    /// Taken by `serve`.
    listener: Mutex<Option<(TcpListener, Option<tokio_rustls::TlsAcceptor>)>>,
}

struct Serving {
    /// `http://127.0.0.1:43721`, without a trailing slash.
    origin: String,
    /// Host header values the page answers to.
    hosts: Vec<String>,
    tls: bool,
}

impl Web {
    /// Binds the page's address. Failing to does not stop the daemon (its
    /// rooms and agents matter more); the reason is kept for `nexscopectl
    /// web`. The default port may be taken by another user's daemon: then a
    /// free port is used.
    pub(crate) async fn open(settings: &WebSettings) -> Web {
        let opened = match settings.listen {
            None => Err("[web] listen is \"off\" in the configuration".to_string()),
            Some(addr) => open_listener(addr, settings).await.inspect_err(|reason| {
                tracing::warn!(%reason, "the web page does not serve");
            }),
        };
        let (serving, listener) = match opened {
            Ok((serving, listener)) => (Ok(serving), Some(listener)),
            Err(reason) => (Err(reason), None),
        };
        Web {
            serving,
            logins: login::Logins::default(),
            listener: Mutex::new(listener),
        }
    }

    /// Where the page is, for Status.
    pub(crate) fn url(&self) -> Option<String> {
        self.serving.as_ref().ok().map(|s| format!("{}/", s.origin))
    }

    /// A one-time login URL, or why there is none.
    pub(crate) fn login_url(&self) -> Result<String, String> {
        let serving = self.serving.as_ref().map_err(Clone::clone)?;
        let token = self.logins.mint();
        Ok(format!("{}/login?token={token}", serving.origin))
    }
}

type Opened = (Serving, (TcpListener, Option<tokio_rustls::TlsAcceptor>));

async fn open_listener(addr: SocketAddr, settings: &WebSettings) -> Result<Opened, String> {
    let tls = match &settings.tls {
        Some((cert, key)) => {
            Some(crate::relay::tls::acceptor(cert, key).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) if !settings.explicit && error.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::info!(
                port = DEFAULT_WEB_PORT,
                "the web page's port is taken (another user's daemon?); using a free one"
            );
            TcpListener::bind(SocketAddr::new(addr.ip(), 0))
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", addr.ip()))?
        }
        Err(error) => return Err(format!("cannot listen on {addr}: {error}")),
    };
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the page's address: {e}"))?;
    let serving = Serving {
        origin: origin(bound, settings.host.as_deref(), tls.is_some()),
        hosts: guard::hosts(bound, settings.host.as_deref()),
        tls: tls.is_some(),
    };
    tracing::info!(url = %serving.origin, "web page listening");
    Ok((serving, (listener, tls)))
}

/// The page's own origin, as browsers write it in Origin.
fn origin(bound: SocketAddr, host: Option<&str>, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    match host {
        Some(host) => format!("{scheme}://{host}:{}", bound.port()),
        None => format!("{scheme}://{bound}"),
    }
}

/// What every handler shares.
pub(crate) struct Ctx {
    daemon: Arc<Daemon>,
    web: Arc<Web>,
    pages: Arc<Semaphore>,
    uploads: Arc<Semaphore>,
    /// The Host values and the scheme the guard accepts.
    hosts: Vec<String>,
    tls: bool,
}

/// Serves the page until shutdown.
pub(crate) async fn serve(daemon: Arc<Daemon>, web: Arc<Web>) {
    let taken = web.listener.lock().ok().and_then(|mut l| l.take());
    let (Some((listener, tls)), Ok(serving)) = (taken, web.serving.as_ref()) else {
        return;
    };
    let ctx = Arc::new(Ctx {
        daemon: daemon.clone(),
        web: web.clone(),
        pages: Arc::new(Semaphore::new(MAX_PAGES)),
        uploads: Arc::new(Semaphore::new(MAX_UPLOADS)),
        hosts: serving.hosts.clone(),
        tls: serving.tls,
    });
    // Uploads a crash left behind.
    let _ = std::fs::remove_dir_all(files::uploads_dir());
    let router = router(ctx.clone());
    let shutdown = daemon.shutdown_signal();
    let result = match tls {
        Some(acceptor) => {
            let listener = tls::Listener::new(listener, acceptor, shutdown.clone());
            run(listener, router, shutdown).await
        }
        None => {
            use axum::serve::ListenerExt;
            // Small frames (one event each) must not wait for Nagle and a
            // delayed ACK: that is 40 ms a message.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            run(listener, router, shutdown).await
        }
    };
    if let Err(error) = result {
        tracing::error!(%error, "the web page stopped");
    }
}

async fn run<L>(listener: L, router: Router, shutdown: Shutdown) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

fn router(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/app.css", get(assets::style))
        .route("/favicon.svg", get(assets::icon))
        .route("/login", get(login::login))
        .route("/logout", post(login::logout))
        .route("/api/me", get(login::me))
        .route("/api/ws", get(bridge::upgrade))
        .route("/api/file", get(files::download))
        .route(
            "/api/upload",
            post(files::upload).layer(DefaultBodyLimit::disable()),
        )
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            guard::guard,
        ))
        .with_state(ctx)
}
