//! `nexscoped`: the per-user nexscope daemon.
//!
//! Runs in the foreground (systemd, launchd and `nexscopectl` all want that);
//! it never forks itself away. Exit status: 0 after a clean shutdown, 78
//! (EX_CONFIG) for a bad configuration, 1 for any other failure to start.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nexscope::config::Config;
use nexscope::control::Listener;
use nexscope::daemon::{self, Daemon};
use nexscope::{logging, paths};

const EX_CONFIG: u8 = 78;

#[derive(Parser, Debug)]
#[command(name = "nexscoped", version, about = "The nexscope per-user daemon: chat rooms for AI coding agents and headless agent sessions", long_about = None)]
struct Cli {
    /// Configuration file [default: $XDG_CONFIG_HOME/nexscope/config.toml].
    #[arg(long, env = "NEXSCOPE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock];
    /// ignored when systemd passes the socket.
    #[arg(long, env = "NEXSCOPE_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace [default: the config's
    /// log_level, else info].
    #[arg(long, env = "NEXSCOPE_LOG_LEVEL", value_name = "LEVEL", value_parser = clap::builder::PossibleValuesParser::new(logging::LEVELS))]
    log_level: Option<String>,
    /// Check the configuration, print what is wrong, and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Everything the daemon creates (sockets, state, received files) is the
    // user's alone.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));

    let config_path = match cli
        .config
        .clone()
        .map(Ok)
        .unwrap_or_else(paths::config_file)
    {
        Ok(path) => path,
        Err(error) => return fail(1, &error),
    };
    let config = match Config::load(&config_path) {
        Ok(config) => config,
        Err(error) => return fail(EX_CONFIG, &error),
    };
    if cli.check_config {
        let state = if config.found {
            "is valid"
        } else {
            "does not exist; the embedded defaults apply"
        };
        println!("{} {state}", config_path.display());
        return ExitCode::SUCCESS;
    }
    let level = cli
        .log_level
        .as_deref()
        .or(config.log_level.as_deref())
        .and_then(logging::parse_level)
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    logging::init(level, "nexscoped");

    let socket = cli.socket.clone().unwrap_or_else(paths::socket_path);
    // Opened before the runtime starts: taking systemd's fds edits the
    // environment, which is only sound while the process has one thread.
    let listener = match Listener::open(&socket) {
        Ok(listener) => listener,
        Err(error) => return fail(1, &error),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nexscoped")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(1, &error),
    };
    let daemon = Daemon::new(config_path, config, listener.label.clone());
    match runtime.block_on(daemon::run(daemon, listener)) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => fail(1, &error),
    }
}

fn fail(code: u8, error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("nexscoped: {error}");
    tracing::error!(%error, "cannot start");
    ExitCode::from(code)
}
