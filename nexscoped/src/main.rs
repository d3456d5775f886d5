//! `nexscoped`: the per-user nexscope daemon, and `nexscoped relay`.
//!
//! Runs in the foreground (systemd, launchd and `nexscopectl` all want that);
//! it never forks itself away. Exit status: 0 after a clean shutdown, 78
//! (EX_CONFIG) for a bad configuration, 1 for any other failure to start.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use nexscope::cli::{Cli, Command, RelayAction, RelayArgs};
use nexscope::control::Listener;
use nexscope::lifecycle::{self, Daemon};
use nexscope::relay::{self, auth::Auth};
use nexscope::{logging, notify};
use nexscope_proto::config::Config;
use nexscope_proto::paths;

const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Everything we create (sockets, state, received files) is the user's alone.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    match &cli.command {
        Some(Command::Relay(args)) => relay_main(&cli, args),
        None => daemon_main(&cli),
    }
}

fn init_logging(cli: &Cli, configured: Option<&str>) {
    let level = cli
        .log_level
        .as_deref()
        .or(configured)
        .and_then(logging::parse_level)
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    logging::init(level, "nexscoped");
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nexscoped")
        .build()
}

fn daemon_main(cli: &Cli) -> ExitCode {
    let config_path = match cli
        .config
        .clone()
        .map(Ok)
        .unwrap_or_else(paths::config_file)
    {
        Ok(path) => path,
        Err(error) => return fail(1, &error),
    };
    let mut config = match Config::load(&config_path) {
        Ok(config) => config,
        Err(error) => return fail(EX_CONFIG, &error),
    };
    if let Some(addr) = cli.agents_listen {
        config.agents.listen = Some(addr);
    }
    if let Some(listen) = &cli.web_listen
        && let Err(message) = config.web.set_listen(listen)
    {
        return fail(
            EX_CONFIG,
            &format!("--web-listen / NEXSCOPE_WEB_LISTEN {listen:?}: {message}"),
        );
    }
    if cli.check_config {
        let state = if config.found {
            "is valid"
        } else {
            "does not exist; the embedded defaults apply"
        };
        println!("{} {state}", config_path.display());
        return ExitCode::SUCCESS;
    }
    init_logging(cli, config.log_level.as_deref());
    let socket = cli.socket.clone().unwrap_or_else(paths::socket_path);
    // Opened before the runtime starts: taking systemd's fds edits the
    // environment, which is only sound while the process has one thread.
    let listener = match Listener::open(&socket) {
        Ok(listener) => listener,
        Err(error) => return fail(1, &error),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => return fail(1, &error),
    };
    let result = runtime.block_on(async {
        let daemon = Daemon::new(config_path, config, listener.label.clone())
            .await
            .map_err(std::io::Error::other)?;
        lifecycle::run(daemon, listener).await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => fail(1, &error),
    }
}

fn relay_main(cli: &Cli, args: &RelayArgs) -> ExitCode {
    if let Some(RelayAction::HashToken) = args.action {
        let mut token = String::new();
        if let Err(error) = std::io::stdin().read_to_string(&mut token) {
            return fail(1, &error);
        }
        return match nexscope_proto::config::check_token(&token) {
            Ok(token) => {
                println!("{}", relay::auth::hash_token(token.expose()));
                ExitCode::SUCCESS
            }
            Err(allowed) => fail(
                EX_CONFIG,
                &format!("the token on stdin is not allowed; {allowed}"),
            ),
        };
    }
    init_logging(cli, None);
    let tier = match relay_tier(cli, args) {
        Ok(tier) => tier,
        Err(error) => return fail(EX_CONFIG, &error),
    };
    let settings = match relay_settings(args) {
        Ok(settings) => settings,
        Err(error) => return fail(EX_CONFIG, &error),
    };
    // One thread: a relay's work is short and mostly I/O, and handing each
    // frame from one worker thread to another costs more than the frame.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(1, &error),
    };
    match runtime.block_on(run_relay(args, settings, tier)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(1, &error),
    }
}

/// The relay tier this node joins, if any: flags and environment over
/// `[relay]` in config.toml; both or neither of cluster and node id.
fn relay_tier(cli: &Cli, args: &RelayArgs) -> Result<Option<(String, String)>, String> {
    let file = match cli.config.clone() {
        Some(file) => file,
        None => paths::config_file().map_err(|e| e.to_string())?,
    };
    let from_file =
        nexscope_proto::config::RelaySettings::load(&file).map_err(|e| e.to_string())?;
    let cluster = args.cluster.clone().or(from_file.cluster);
    let node = args.node_id.clone().or(from_file.node_id);
    match (cluster, node) {
        (Some(cluster), Some(node)) => Ok(Some((cluster, node))),
        (None, None) => Ok(None),
        (Some(_), None) => Err("a relay tier needs this node's id: --node-id, NEXSCOPE_NODE_ID or [relay] node_id".into()),
        (None, Some(_)) => Err("--node-id needs the tier's NATS servers: --cluster, NEXSCOPE_CLUSTER or [relay] cluster".into()),
    }
}

fn relay_settings(args: &RelayArgs) -> Result<(relay::Settings, Auth), String> {
    let token = match (
        &args.token_file,
        std::env::var("NEXSCOPE_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    ) {
        (Some(file), _) => Some(
            nexscope_proto::config::read_token_file(file)
                .map_err(|e| format!("--token-file {}: {e}", file.display()))?,
        ),
        (None, Some(token)) => Some(nexscope_proto::config::check_token(&token).map_err(
            |allowed| format!("environment variable NEXSCOPE_TOKEN is not allowed; {allowed}"),
        )?),
        (None, None) => None,
    };
    let auth = Auth::new(
        token.as_ref().map(|t| t.expose()),
        args.users_file.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(relay::tls::acceptor(cert, key).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    Ok((
        relay::Settings {
            max_users: args.max_users,
            max_payload: args.max_payload,
            max_file: args.max_file,
            max_connections: args.max_connections,
            max_per_address: (args.max_per_address > 0).then_some(args.max_per_address),
            max_per_user: (args.max_per_user > 0).then_some(args.max_per_user),
            heartbeat: Duration::from_millis(args.heartbeat_ms),
            transfer_timeout: Duration::from_millis(args.transfer_timeout_ms),
            tls,
        },
        auth,
    ))
}

async fn run_relay(
    args: &RelayArgs,
    (mut settings, auth): (relay::Settings, Auth),
    tier: Option<(String, String)>,
) -> std::io::Result<()> {
    use relay::cluster::Cluster;
    // In a relay tier every frame is also a NATS message: the frame limit
    // is NATS's, when that is lower.
    let nats = match &tier {
        Some((urls, node)) => {
            let client = Cluster::connect(urls, node)
                .await
                .map_err(std::io::Error::other)?;
            let fits = Cluster::max_frame(&client);
            if settings.max_payload > fits {
                tracing::warn!(
                    max_payload = fits,
                    "frames are limited to what NATS carries (its max_payload, less headers)"
                );
                settings.max_payload = fits;
            }
            Some((client, node.clone()))
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", args.listen))
        })?;
    let address = listener.local_addr()?;
    let scheme = if settings.tls.is_some() { "wss" } else { "ws" };
    let handlers = nexscope::signals::install()?;
    let (stop_tx, stop_rx) = nexscope::shutdown::channel();
    let relay = relay::Relay::new(settings, auth, stop_rx.clone());
    if let Some((client, node)) = nats {
        let cluster = Cluster::start(client, &node, &relay, stop_rx)
            .await
            .map_err(std::io::Error::other)?;
        let _ = relay.cluster.set(cluster);
    }
    let stop_tx = Arc::new(stop_tx);
    let signals = {
        let stop_tx = stop_tx.clone();
        tokio::spawn(handlers.handle(
            move || {
                stop_tx.fire();
            },
            || {},
        ))
    };
    // Scripts and tests read the address (the port may have been 0) here.
    println!("listening on {scheme}://{address}/ws");
    tracing::info!(%address, tls = scheme == "wss", max_users = relay.settings.max_users, "relay listening");
    notify::ready(&format!("listening on {scheme}://{address}/ws"));
    relay::server::serve(listener, relay).await;
    notify::stopping();
    signals.abort();
    tracing::info!("relay stopped");
    Ok(())
}

fn fail(code: u8, error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("nexscoped: {error}");
    tracing::error!(%error, "cannot start");
    ExitCode::from(code)
}
