//! The agent-session commands: query, sessions, cancel, close, usage,
//! skills. A session is `--session NAME` (default "default") in `--cwd DIR`
//! (default: the current directory).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nexscope_proto::api::Empty;
use nexscope_proto::api::agent::*;
use nexscope_proto::api::chat;
use serde_json::{Value, json};

use crate::chat::{call, call_within};
use crate::connect::{Control, Options};
use crate::exit::CtlError;
use crate::output::Output;

/// Names the session a command acts on.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// The session's name.
    #[arg(short, long, default_value = DEFAULT_SESSION)]
    session: String,
    /// The session's working directory [default: the current directory].
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
}

impl Target {
    fn resolve(&self) -> Result<SessionRef, CtlError> {
        let cwd = match &self.cwd {
            Some(dir) if dir.is_absolute() => dir.clone(),
            other => {
                let here = std::env::current_dir().map_err(|e| {
                    CtlError::Usage(format!("cannot tell the current directory: {e}"))
                })?;
                match other {
                    Some(dir) => here.join(dir),
                    None => here,
                }
            }
        };
        Ok(SessionRef {
            session: Some(self.session.clone()),
            cwd: Some(cwd.to_string_lossy().into_owned()),
        })
    }

    /// The parameters of Cancel, Status and Skills.
    fn session_in(&self) -> Result<SessionIn, CtlError> {
        Ok(self.resolve()?.into())
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum AgentCommand {
    /// Ask an agent session something and stream its answer; Ctrl-C cancels the turn.
    #[command(args_override_self = true)]
    Query {
        #[command(flatten)]
        target: Target,
        /// The model for this turn (and the session's from now on).
        #[arg(long)]
        model: Option<String>,
        /// default, acceptEdits, bypassPermissions, plan, dontAsk or auto.
        #[arg(long)]
        permission_mode: Option<String>,
        /// claude or codex, for a new session [default: the config's backend].
        #[arg(long)]
        backend: Option<String>,
        /// A skill the agent must run (repeat); a new set starts a fresh conversation.
        #[arg(long = "skill", value_name = "NAME")]
        skills: Vec<String>,
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_name = "PROMPT"
        )]
        prompt: Vec<String>,
    },
    /// List agent sessions, live and recorded.
    Sessions,
    /// Interrupt the session's running turn.
    Cancel {
        #[command(flatten)]
        target: Target,
    },
    /// Stop the session's agent process; its conversation is kept unless --forget.
    Close {
        #[command(flatten)]
        target: Target,
        /// Also forget the conversation: the next query starts a new one.
        #[arg(long)]
        forget: bool,
    },
    /// Token usage of a session, in total and per turn; with --room, what the
    /// room's conversations between agents cost, per thread.
    Usage {
        #[command(flatten)]
        target: Target,
        /// List this many of the latest turns.
        #[arg(long, default_value_t = 10)]
        turns: u32,
        /// The project's room instead of a session (the project: --cwd, or here).
        #[arg(long)]
        room: bool,
    },
    /// The session's skills, tools, slash commands and model.
    Skills {
        #[command(flatten)]
        target: Target,
    },
}

/// One arm per agent subcommand: a call and how its answer is printed
/// (long for their number, each short).
pub fn command(command: &AgentCommand, options: &Options, out: Output) -> Result<(), CtlError> {
    match command {
        AgentCommand::Query {
            target,
            model,
            permission_mode,
            backend,
            skills,
            prompt,
        } => {
            let backend = backend
                .as_deref()
                .map(Backend::parse)
                .transpose()
                .map_err(|e| CtlError::Usage(format!("--backend: {e}")))?;
            let input = QueryIn {
                target: target.resolve()?,
                prompt: prompt.join(" "),
                model: model.clone(),
                permission_mode: permission_mode.clone(),
                backend,
                skills: (!skills.is_empty()).then(|| skills.clone()),
                id: None,
            };
            query(options, input, out)
        }
        AgentCommand::Sessions => {
            let reply: SessionsOut = call(options, &Method::Sessions(Empty {}))?;
            out.result(&json!(reply), || sessions_table(&reply.sessions));
            Ok(())
        }
        AgentCommand::Cancel { target } => {
            let reply: CancelOut = call(options, &Method::Cancel(target.session_in()?))?;
            out.result(&json!(reply), || {
                format!(
                    "cancelled the running turn of {} in {}",
                    reply.session.name, reply.session.cwd
                )
            });
            Ok(())
        }
        AgentCommand::Close { target, forget } => {
            let SessionRef { session, cwd } = target.resolve()?;
            let input = CloseIn {
                session,
                cwd,
                forget: Some(*forget),
            };
            // Closing interrupts a running turn and waits for its process.
            let reply: CloseOut = call_within(
                options,
                &Method::Close(input),
                std::time::Duration::from_secs(30),
            )?;
            out.result(&json!(reply), || match reply.closed.as_slice() {
                [] => format!("no live session {} there; nothing to close", target.session),
                closed => closed
                    .iter()
                    .map(|s| {
                        let kept = if *forget {
                            "forgotten"
                        } else {
                            "conversation kept"
                        };
                        format!("closed {} in {} ({kept})", s.name, s.cwd)
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
            Ok(())
        }
        AgentCommand::Usage {
            target, room: true, ..
        } => {
            let project = crate::chat::project(target.cwd.as_ref())?;
            let input = chat::Method::Costs(chat::ProjectIn::new(project));
            let reply: chat::CostsOut = call(options, &input)?;
            out.result(&json!(reply), || costs_text(&reply));
            Ok(())
        }
        AgentCommand::Usage { target, turns, .. } => {
            let SessionRef { session, cwd } = target.resolve()?;
            let input = UsageIn {
                session,
                cwd,
                turns: Some(*turns),
            };
            let reply: UsageOut = call(options, &Method::Usage(input))?;
            out.result(&json!(reply), || usage_text(&reply));
            Ok(())
        }
        AgentCommand::Skills { target } => {
            // May start the agent to ask it.
            let reply: SkillsOut = call_within(
                options,
                &Method::Skills(target.session_in()?),
                std::time::Duration::from_secs(90),
            )?;
            out.result(&json!(reply), || {
                reply
                    .metadata
                    .iter()
                    .map(|(key, value)| match value {
                        Value::Array(items) => format!(
                            "{key}: {}",
                            items
                                .iter()
                                .map(|v| v
                                    .as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        Value::Null => format!("{key}: -"),
                        Value::String(s) => format!("{key}: {s}"),
                        other => format!("{key}: {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    }
}

/// Streams a turn: the answer's text on stdout as it comes, tool calls and
/// the closing summary on stderr (or every event as a JSON line).
/// Exit status after Ctrl-C, as shells report a SIGINT.
const INTERRUPTED: i32 = 130;

/// Ctrl-C while a turn streams cancels the turn, so the agent stops and
/// spends nothing more, as a person at a terminal expects; the stream then
/// ends with the turn. A second Ctrl-C, or one the daemon cannot act on,
/// leaves at once.
fn cancel_on_interrupt(socket: PathBuf, target: SessionIn) -> Arc<AtomicBool> {
    use nix::sys::signal::{SigSet, Signal};
    let interrupted = Arc::new(AtomicBool::new(false));
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    // Blocked here and in the thread spawned below, which takes it with sigwait.
    if set.thread_block().is_err() {
        return interrupted;
    }
    let flag = interrupted.clone();
    std::thread::spawn(move || {
        if set.wait().is_err() {
            return;
        }
        flag.store(true, Ordering::SeqCst);
        eprintln!("nexscopectl: cancelling the turn (Ctrl-C again to leave now)");
        let cancelled = nexscope_proto::varlink::client::Connection::connect(
            &socket,
            Some(crate::connect::CALL_TIMEOUT),
        )
        .and_then(|mut c| c.request::<Value>(&Method::Cancel(target)));
        if cancelled.is_err() {
            std::process::exit(INTERRUPTED);
        }
        let _ = set.wait();
        std::process::exit(INTERRUPTED);
    });
    interrupted
}

fn query(options: &Options, input: QueryIn, out: Output) -> Result<(), CtlError> {
    drop(Control::open(options)?);
    let target = SessionIn::from(input.target.clone());
    let interrupted = cancel_on_interrupt(options.socket.clone(), target);
    // A turn takes as long as it takes: no read timeout.
    let mut connection =
        nexscope_proto::varlink::client::Connection::connect(&options.socket, None)?;
    let mut failure = None;
    connection.request_more(&Method::Query(input), |reply| {
        let Ok(reply) = serde_json::from_value::<QueryOut>(reply) else {
            return true;
        };
        if out.json {
            println!("{}", json!(reply));
        } else {
            print_event(&reply.event);
        }
        let _ = std::io::stdout().flush();
        if let TurnEvent::Done {
            error: Some(error), ..
        } = &reply.event
        {
            failure = Some(error.clone());
        }
        true
    })?;
    if interrupted.load(Ordering::SeqCst) {
        std::process::exit(INTERRUPTED);
    }
    match failure {
        Some(error) => Err(CtlError::TurnFailed(error)),
        None => Ok(()),
    }
}

fn print_event(event: &TurnEvent) {
    match event {
        TurnEvent::Text { content, .. } => println!("{content}"),
        TurnEvent::Thinking { content, .. } => eprintln!("[thinking] {content}"),
        TurnEvent::ToolUse { name, input, .. } => eprintln!("[tool] {name} {input}"),
        TurnEvent::ToolResult {
            content, is_error, ..
        } => {
            let first = content.lines().next().unwrap_or("");
            let mark = if *is_error {
                "tool error"
            } else {
                "tool result"
            };
            eprintln!("[{mark}] {first}");
        }
        TurnEvent::Done {
            session_id,
            usage,
            cancelled,
            ..
        } => {
            let how = if *cancelled { "cancelled" } else { "done" };
            eprintln!(
                "[{how}] session {} · {} in / {} out tokens · ${:.6}",
                session_id.as_deref().unwrap_or("-"),
                usage.input_tokens,
                usage.output_tokens,
                usage.cost_usd
            );
        }
        TurnEvent::TurnStart { .. } | TurnEvent::Init { .. } => {}
    }
}

fn sessions_table(sessions: &[SessionInfo]) -> String {
    if sessions.is_empty() {
        return "no agent sessions".into();
    }
    let mut lines = vec![format!(
        "{:<16} {:<7} {:<8} {:>5} {:>12} {:>12}  {}",
        "SESSION", "BACKEND", "STATE", "TURNS", "IN TOKENS", "OUT TOKENS", "CWD"
    )];
    for s in sessions {
        let state = if s.processing {
            "busy"
        } else if s.live {
            "running"
        } else {
            "stopped"
        };
        lines.push(format!(
            "{:<16} {:<7} {:<8} {:>5} {:>12} {:>12}  {}",
            s.name,
            s.backend.as_str(),
            state,
            s.turns,
            s.usage.input_tokens,
            s.usage.output_tokens,
            s.cwd
        ));
    }
    lines.join("\n")
}

/// One line per thread, newest first, then the totals.
fn costs_text(reply: &chat::CostsOut) -> String {
    let cost = |u: &Usage| {
        format!(
            "{} in / {} out tokens, ${:.6}",
            u.input_tokens, u.output_tokens, u.cost_usd
        )
    };
    let mut lines: Vec<String> = reply
        .threads
        .iter()
        .map(|t| {
            format!(
                "{}  answers: {}  ours: {}  theirs: {}",
                nexscope_proto::render::escape_name(&t.thread_id),
                t.answers,
                cost(&t.ours),
                cost(&t.theirs)
            )
        })
        .collect();
    if lines.is_empty() {
        lines.push(
            "(no answer with a known cost yet: costs come with hosted agents' answers)".into(),
        );
    }
    lines.push(format!(
        "total  ours: {}  theirs: {}",
        cost(&reply.ours),
        cost(&reply.theirs)
    ));
    lines.join("\n")
}

fn usage_text(reply: &UsageOut) -> String {
    let s = &reply.session;
    let mut lines = vec![format!(
        "{} in {} ({}): {} turns, {} input + {} output tokens ({} cache write, {} cache read), ${:.6}",
        s.name,
        s.cwd,
        s.backend.as_str(),
        s.turns,
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cache_creation_input_tokens,
        s.usage.cache_read_input_tokens,
        s.usage.cost_usd
    )];
    for t in &reply.turns {
        let status = match (&t.error, t.cancelled) {
            (_, true) => " cancelled".to_string(),
            (Some(e), _) => format!(" error: {e}"),
            _ => String::new(),
        };
        lines.push(format!(
            "  {} {} {} in / {} out ${:.6}{status}",
            t.turn,
            t.model.as_deref().unwrap_or("-"),
            t.usage.input_tokens,
            t.usage.output_tokens,
            t.usage.cost_usd
        ));
    }
    lines.join("\n")
}
