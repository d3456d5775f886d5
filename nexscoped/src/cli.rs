//! The command line of `nexscoped`, in the library so that man pages and
//! completions are generated from the same definitions.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};

use crate::logging;

#[derive(Parser, Debug)]
#[command(
    name = "nexscoped",
    version,
    about = "The nexscope per-user daemon: chat rooms for AI coding agents and headless agent sessions",
    after_help = "Exit status: 0 after a clean shutdown, 78 for an invalid configuration, 1 for any other failure to start."
)]
pub struct Cli {
    /// Configuration file [default: $XDG_CONFIG_HOME/nexscope/config.toml].
    #[arg(long, global = true, env = "NEXSCOPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock];
    /// ignored when systemd passes the socket.
    #[arg(long, env = "NEXSCOPE_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Log level [default: the config's log_level, else info].
    #[arg(long, global = true, env = "NEXSCOPE_LOG_LEVEL", value_name = "LEVEL", value_parser = clap::builder::PossibleValuesParser::new(logging::LEVELS))]
    pub log_level: Option<String>,
    /// Serve the nx-ce agent WebSocket API on this loopback address (nx-ce's
    /// port is 43720), overriding [agents] listen.
    #[arg(long, env = "NEXSCOPE_AGENTS_LISTEN", value_name = "ADDR", value_parser = parse_agents_listen)]
    pub agents_listen: Option<SocketAddr>,
    /// Serve the web page on this address, or "off", overriding [web] listen
    /// [default: 127.0.0.1:43721, or a free port when another user's daemon
    /// has that one].
    #[arg(long, env = "NEXSCOPE_WEB_LISTEN", value_name = "ADDR|off")]
    pub web_listen: Option<String>,
    /// Check the configuration, print what is wrong, and exit.
    #[arg(long)]
    pub check_config: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

fn parse_agents_listen(text: &str) -> Result<SocketAddr, String> {
    nexscope_proto::config::check_agents_listen(text)
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a relay server for a team (the WebSocket rooms agents talk in).
    Relay(RelayArgs),
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RelayArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "NEXSCOPE_RELAY_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// File holding the shared token (mode 0600). The token may also come from
    /// NEXSCOPE_TOKEN; never put it on the command line.
    #[arg(long, env = "NEXSCOPE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Per-user tokens: a TOML file of name = "sha256:…" lines (see
    /// `nexscoped relay hash-token`). A listed name needs its own token.
    #[arg(long, env = "NEXSCOPE_USERS_FILE", value_name = "FILE")]
    pub users_file: Option<PathBuf>,
    /// PEM certificate chain: serve wss:// (with --tls-key).
    #[arg(
        long,
        env = "NEXSCOPE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(
        long,
        env = "NEXSCOPE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Members per room (v1: 50).
    #[arg(long, env = "NEXSCOPE_MAX_USERS", default_value_t = crate::relay::DEFAULT_MAX_USERS, value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|v| v as usize))]
    pub max_users: usize,
    /// Largest frame in bytes; a larger one closes the connection with 4011.
    #[arg(long, env = "NEXSCOPE_MAX_PAYLOAD", default_value_t = crate::relay::DEFAULT_MAX_PAYLOAD, value_parser = clap::value_parser!(u32).range(65_536..=268_435_456).map(|v| v as usize))]
    pub max_payload: usize,
    /// Largest file in bytes.
    #[arg(long, env = "NEXSCOPE_MAX_FILE", default_value_t = crate::relay::DEFAULT_MAX_FILE, value_parser = clap::value_parser!(u64).range(1..=68_719_476_736))]
    pub max_file: u64,
    /// Open connections at once.
    #[arg(long, env = "NEXSCOPE_MAX_CONNECTIONS", default_value_t = crate::relay::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|v| v as usize))]
    pub max_connections: usize,
    /// Open connections from one IP address, more get HTTP 503; also bounds
    /// the handshakes one address may have pending to 64 (0: neither cap).
    #[arg(long, env = "NEXSCOPE_MAX_PER_ADDRESS", default_value_t = crate::relay::DEFAULT_MAX_PER_ADDRESS, value_parser = clap::value_parser!(u32).range(0..=1_000_000).map(|v| v as usize))]
    pub max_per_address: usize,
    /// Connections of one user of the users file, over all rooms (0: no cap);
    /// more are closed with too_many_connections and 1013.
    #[arg(long, env = "NEXSCOPE_MAX_PER_USER", default_value_t = crate::relay::DEFAULT_MAX_PER_USER, value_parser = clap::value_parser!(u32).range(0..=1_000_000).map(|v| v as usize))]
    pub max_per_user: usize,
    /// WebSocket ping interval in milliseconds; two missed pongs close with 4010.
    #[arg(long, env = "NEXSCOPE_HEARTBEAT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(50..=3_600_000))]
    pub heartbeat_ms: u64,
    /// Milliseconds from file-start to file-end before the sender is closed with 4014.
    #[arg(long, env = "NEXSCOPE_TRANSFER_TIMEOUT_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(50..=86_400_000))]
    pub transfer_timeout_ms: u64,
    /// Join a relay tier: the NATS servers (with JetStream) its nodes share,
    /// as nats://HOST:PORT[,nats://…]. Without it the relay is one process.
    /// [default: [relay] cluster in config.toml]
    #[arg(long, env = "NEXSCOPE_CLUSTER", value_name = "URLS", value_parser = nexscope_proto::config::check_cluster)]
    pub cluster: Option<String>,
    /// This node's name in the relay tier (1 to 32 of a-z A-Z 0-9 _ -),
    /// unique among its nodes.
    /// [default: [relay] node_id in config.toml]
    #[arg(long, env = "NEXSCOPE_NODE_ID", value_name = "ID", value_parser = nexscope_proto::config::check_node_id)]
    pub node_id: Option<String>,
    #[command(subcommand)]
    pub action: Option<RelayAction>,
}

#[derive(Subcommand, Debug)]
pub enum RelayAction {
    /// Read a token on stdin and print its users-file value.
    HashToken,
}
