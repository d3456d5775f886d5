//! `nexscopectl`: the command people, Claude Code hooks and the Codex MCP
//! shim use to talk to nexscoped over its varlink control socket.
//!
//! A library so that man pages and completions are generated from the same
//! clap definitions (`Cli`); `main.rs` only calls `run`. One module per group
//! of subcommands; exit codes are in `exit`.

pub mod agent;
pub mod chat;
pub mod config;
pub mod connect;
pub mod daemon;
pub mod exit;
pub mod hook;
pub mod install;
pub mod mcp;
pub mod output;
pub mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::connect::Options;
use crate::output::Output;

#[derive(Parser, Debug)]
#[command(
    name = "nexscopectl",
    version,
    about = "Talk to nexscoped: rooms for AI coding agents, agent sessions, the daemon itself",
    after_help = "Exit status: 0 success, 1 the daemon refused the request, 2 bad usage, \
                  3 the daemon is not running and could not be started, 4 no or bad answer."
)]
pub struct Cli {
    /// Print machine-readable JSON on stdout; messages stay on stderr.
    #[arg(long, global = true)]
    json: bool,
    /// The daemon's control socket [default: $XDG_RUNTIME_DIR/nexscope/nexscoped.sock].
    #[arg(long, global = true, env = "NEXSCOPE_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Do not start nexscoped when it is not running.
    #[arg(long, global = true, env = "NEXSCOPE_NO_AUTOSTART")]
    no_autostart: bool,
    /// The project (its root directory) for chat commands [default: the
    /// current directory]. For `install claude`, alone: this project only.
    #[arg(long, global = true, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    project: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check that nexscoped answers, and how fast.
    Ping,
    /// Show what nexscoped holds: projects, rooms, agent sessions.
    Status,
    /// Start, stop or restart nexscoped, or ask whether it runs.
    #[command(subcommand)]
    Daemon(daemon::DaemonCommand),
    #[command(flatten)]
    Chat(chat::ChatCommand),
    #[command(flatten)]
    Agent(agent::AgentCommand),
    /// The configuration: import a project's nexscope v1 settings.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Serve MCP on stdin/stdout: the nexscope_* tools, for Codex and other MCP clients.
    Mcp,
    /// Wire an agent up to nexscope (Claude Code).
    #[command(subcommand)]
    Install(install::InstallCommand),
    /// Claude Code hooks: read the hook's JSON on stdin, print its answer.
    #[command(subcommand)]
    Hook(hook::HookCommand),
    /// Print a one-time login link to the web page (rooms, inbox, agent
    /// sessions) and open it in the browser when there is a display.
    Web(web::WebArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

/// Runs the command line; the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let out = Output { json: cli.json };
    let options = Options {
        socket: cli
            .socket
            .clone()
            .unwrap_or_else(nexscope_proto::paths::socket_path),
        autostart: !cli.no_autostart,
    };
    let result = match &cli.command {
        Command::Ping => daemon::ping(&options, out),
        Command::Status => daemon::status(&options, out),
        Command::Web(args) => web::run(args, &options, out),
        Command::Daemon(command) => daemon::command(command, &options, out),
        Command::Hook(command) => return hook::run(command, &options.socket),
        Command::Config(command) => chat::project(cli.project.as_ref())
            .and_then(|project| config::command(command, &project, out)),
        Command::Mcp => {
            let project = match chat::project(cli.project.as_ref()) {
                Ok(project) => project,
                Err(error) => return out.error(&error),
            };
            return mcp::run(options.socket.clone(), project);
        }
        Command::Install(command) => install::command(command, cli.project.as_ref(), out),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "nexscopectl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Agent(command) => agent::command(command, &options, out),
        Command::Chat(command) => chat::project(cli.project.as_ref())
            .and_then(|project| chat::command(command, &project, &options, out)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => out.error(&error),
    }
}
