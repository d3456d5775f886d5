//! The chat commands: start, stop, say, who, inbox, accept, reject, append,
//! mode, history, files, watch. Each works on one project (`--project DIR`,
//! else the current directory) and prints v1's human formats
//! (docs/protocol.md §4), or JSON with `--json`.

use std::path::{Path, PathBuf};

use nexscope_proto::api::chat::*;
use nexscope_proto::render::{escape_name, escape_text, history_line, render};
use nexscope_proto::time::iso;
use nexscope_proto::varlink::Request;
use serde_json::{Value, json};

use crate::connect::{Control, Options};
use crate::exit::CtlError;
use crate::output::Output;

#[derive(clap::Subcommand, Debug)]
pub enum ChatCommand {
    /// Join the project's room.
    Start {
        /// Your name in the room [default: the config's default_name].
        #[arg(short, long)]
        name: Option<String>,
        /// manual (mentions wait in the inbox) or auto (agents answer them).
        #[arg(long)]
        mode: Option<String>,
        /// A relay URL (ws:// or wss://) instead of the configured or embedded one.
        #[arg(long)]
        relay: Option<String>,
        /// A room on the relay other than the default one.
        #[arg(long)]
        room: Option<String>,
    },
    /// Leave the room (inbox, history and files stay).
    Stop,
    /// Say something: leading @names (or --to) address people, else everyone.
    #[command(args_override_self = true)]
    Say {
        /// user (a person, the default here) or userAgent (an agent).
        #[arg(long, default_value = "user")]
        role: String,
        /// Reply on this thread.
        #[arg(long)]
        thread: Option<String>,
        /// Send this file, with the text as its caption.
        #[arg(long)]
        file: Option<PathBuf>,
        /// A recipient (repeat, or comma-separated), besides leading @names.
        #[arg(long, value_delimiter = ',')]
        to: Vec<String>,
        /// An incoming hop count to carry on (agents replying on their own).
        #[arg(long, hide = true)]
        hop_count: Option<i64>,
        /// Wait until every recipient reached this receipt state: stored, surfaced or answered.
        #[arg(long, value_name = "STATE")]
        wait: Option<String>,
        /// Seconds to wait at most with --wait (1 to 600).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(i64).range(1..=600))]
        timeout: i64,
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "TEXT"
        )]
        words: Vec<String>,
    },
    /// How far a message (by msgId), or every message of yours on a thread, got at each recipient.
    Receipts {
        /// A msgId or a thread id.
        id: String,
    },
    /// Who is online.
    Who,
    /// Mentions waiting for you, and the latest handled ones.
    Inbox {
        /// Skip this many pending mentions (the next page).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
        offset: i64,
        /// Pending mentions to show, 1 to 500.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=500))]
        limit: u64,
    },
    /// Take the thread's pending mentions as a request.
    Accept {
        thread: String,
        #[arg(trailing_var_arg = true, value_name = "EXTRA")]
        extra: Vec<String>,
    },
    /// Decline the thread's pending mentions and tell their senders.
    Reject {
        thread: String,
        #[arg(trailing_var_arg = true, value_name = "REASON")]
        reason: Vec<String>,
    },
    /// Add to a thread as a person, to everyone who took part in it.
    Append {
        thread: String,
        #[arg(trailing_var_arg = true, required = true, value_name = "TEXT")]
        text: Vec<String>,
    },
    /// Show the mode, or set it: manual or auto.
    Mode { mode: Option<String> },
    /// The latest messages in and out.
    History {
        /// How many (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Files received in this project.
    Files,
    /// Follow the room live, like tail -f.
    Watch,
}

/// The project: `--project DIR` or the current directory, made canonical.
pub fn project(dir: Option<&PathBuf>) -> Result<String, CtlError> {
    let dir = match dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .map_err(|e| CtlError::Usage(format!("cannot tell the current directory: {e}")))?,
    };
    let root = std::fs::canonicalize(&dir)
        .map_err(|e| CtlError::Usage(format!("project directory {}: {e}", dir.display())))?;
    Ok(root.to_string_lossy().into_owned())
}

/// Names as `[a, b]`, escaped: they come from the room.
pub fn list(names: &[String]) -> String {
    format!("[{}]", join_names(names, ", "))
}

/// Names from the room, escaped for a terminal, joined with `separator`.
pub fn join_names(names: &[String], separator: &str) -> String {
    names
        .iter()
        .map(|n| escape_name(n))
        .collect::<Vec<_>>()
        .join(separator)
}

/// Text from the room, escaped for a terminal and indented under its header.
fn quoted(text: &str) -> String {
    escape_text(text).replace('\n', "\n  ")
}

pub(crate) fn call<T: serde::de::DeserializeOwned>(
    options: &Options,
    request: &impl Request,
) -> Result<T, CtlError> {
    call_within(options, request, crate::connect::CALL_TIMEOUT)
}

/// A call that may take longer than most: a Say waits for the relay's ack
/// (15 s), a file for its transfer (90 s).
pub(crate) fn call_within<T: serde::de::DeserializeOwned>(
    options: &Options,
    request: &impl Request,
    timeout: std::time::Duration,
) -> Result<T, CtlError> {
    let mut control = Control::open(options)?;
    control.connection.set_timeout(Some(timeout))?;
    Ok(control.connection.request(request)?)
}

/// Longer than the daemon's own ack and transfer waits.
const SAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
const FILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// One arm per subcommand, each a call and how its answer is printed: long
/// only because there are fourteen of them.
pub fn command(
    command: &ChatCommand,
    project: &str,
    options: &Options,
    out: Output,
) -> Result<(), CtlError> {
    match command {
        ChatCommand::Start {
            name,
            mode,
            relay,
            room,
        } => {
            let input = StartIn {
                project: project.into(),
                name: name.clone(),
                mode: mode.clone(),
                relay: relay.clone(),
                room: room.clone(),
            };
            let state = call::<StateOut>(options, &Method::Start(input))?.state;
            out.result(&json!(state), || render_joined(&state));
        }
        ChatCommand::Stop => {
            let stopped = call::<StopOut>(options, &Method::Stop(ProjectIn::new(project)))?;
            out.result(&json!(stopped), || {
                format!("left chat room (was \"{}\").\n\nThanks for using nexscope. https://nexscope.ai/agent", stopped.name)
            });
        }
        ChatCommand::Say { .. } => say(project, options, out, command)?,
        ChatCommand::Receipts { id } => {
            let input = ReceiptsIn {
                project: project.into(),
                id: id.clone(),
            };
            let receipts = call::<ReceiptsOut>(options, &Method::Receipts(input))?;
            out.result(&json!(receipts), || render_receipts(&receipts.receipts));
        }
        ChatCommand::Who => {
            let who = call::<WhoOut>(options, &Method::Who(ProjectIn::new(project)))?;
            out.result(&json!(who), || render_who(&who));
        }
        ChatCommand::Inbox { offset, limit } => {
            let input = InboxIn {
                project: project.into(),
                offset: Some(*offset),
                limit: Some(*limit as i64),
            };
            let inbox = call::<InboxOut>(options, &Method::Inbox(input))?;
            out.result(&json!(inbox), || render_inbox(&inbox, *offset as u64));
        }
        ChatCommand::Accept { thread, extra } => {
            let extra = (!extra.is_empty()).then(|| extra.join(" "));
            let input = ThreadIn {
                extra,
                // From inside Claude Code (/nexscope:accept): that session
                // gets the request from this command's output.
                session: std::env::var("CLAUDE_CODE_SESSION_ID").ok(),
                ..ThreadIn::new(project, thread)
            };
            let accepted = call::<AcceptOut>(options, &Method::Accept(input))?;
            out.result(&json!(accepted), || render_accepted(thread, &accepted));
        }
        ChatCommand::Reject { thread, reason } => {
            let reason = (!reason.is_empty()).then(|| reason.join(" "));
            let input = ThreadIn {
                reason,
                ..ThreadIn::new(project, thread)
            };
            let rejected = call_within::<RejectOut>(options, &Method::Reject(input), SAY_TIMEOUT)?;
            out.result(&json!(rejected), || {
                format!(
                    "rejected {} message(s) on thread={thread}; rejection notice sent to {}.",
                    rejected.rejected,
                    list(&rejected.to)
                )
            });
        }
        ChatCommand::Append { thread, text } => {
            let input = ThreadIn {
                text: Some(text.join(" ")),
                ..ThreadIn::new(project, thread)
            };
            let appended = call_within::<AppendOut>(options, &Method::Append(input), SAY_TIMEOUT)?;
            out.result(&json!(appended), || {
                format!(
                    "appended as role=user to thread={thread};delivered: {}{}",
                    list(&appended.delivered),
                    offline(&appended.offline)
                )
            });
        }
        ChatCommand::Mode { mode } => {
            let input = ModeIn {
                project: project.into(),
                mode: mode.clone(),
            };
            let result = call::<ModeOut>(options, &Method::Mode(input))?;
            out.result(&json!(result), || match mode {
                Some(_) => format!("mode switched to {}", result.mode),
                None => format!("mode={} (hopLimit={})", result.mode, result.hop_limit),
            });
        }
        ChatCommand::History { limit } => {
            let input = HistoryIn {
                project: project.into(),
                limit: Some(*limit),
            };
            let history = call::<HistoryOut>(options, &Method::History(input))?;
            out.result(&json!(history), || render_history(&history.items));
        }
        ChatCommand::Files => {
            let files = call::<FilesOut>(options, &Method::Files(ProjectIn::new(project)))?;
            out.result(&json!(files), || render_files(&files));
        }
        ChatCommand::Watch => watch(project, options, out)?,
    }
    Ok(())
}

pub fn offline(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(", offline: {}", list(names))
    }
}

fn say(
    project: &str,
    options: &Options,
    out: Output,
    command: &ChatCommand,
) -> Result<(), CtlError> {
    let ChatCommand::Say {
        role,
        thread,
        file,
        to,
        hop_count,
        wait,
        timeout,
        words,
    } = command
    else {
        return Ok(());
    };
    let (targets, text) = targets_and_text(to, words);
    let file = file.as_ref().map(|path| absolute(path));
    let input = SayIn {
        project: project.into(),
        text: Some(text),
        to: Some(targets.clone()),
        role: Some(role.into()),
        thread: thread.clone(),
        hop_count: *hop_count,
        file,
        wait: wait.clone(),
        timeout: wait.as_ref().map(|_| *timeout),
    };
    let patience = if input.file.is_some() {
        FILE_TIMEOUT
    } else {
        SAY_TIMEOUT
    };
    let patience = patience + std::time::Duration::from_secs(input.wait_seconds());
    let said = call_within::<SayOut>(options, &Method::Say(input), patience)?;
    out.result(&json!(said), || said_text(&said, &targets));
    Ok(())
}

/// Leading @name tokens are mentions; the rest is the text (v1 took an
/// @word anywhere in the text for a mention: docs/protocol.md §2.7).
fn targets_and_text(to: &[String], words: &[String]) -> (Vec<String>, String) {
    let mut targets: Vec<String> = to
        .iter()
        .map(|n| n.trim_start_matches('@').to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let mut rest = words.iter().peekable();
    while let Some(word) = rest.peek() {
        match word.strip_prefix('@') {
            Some(name) if !name.is_empty() => {
                targets.push(name.to_string());
                rest.next();
            }
            _ => break,
        }
    }
    (targets, rest.cloned().collect::<Vec<_>>().join(" "))
}

/// A path as the daemon needs it: absolute (it runs elsewhere).
fn absolute(path: &Path) -> String {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    absolute.to_string_lossy().into_owned()
}

/// One line per recipient: `bob  surfaced (hook)  msg … on t-…  at …`.
pub fn render_receipts(receipts: &[Receipt]) -> String {
    if receipts.is_empty() {
        return "(no receipts: nobody got it yet, or the relay does not carry receipts)".into();
    }
    receipts
        .iter()
        .map(receipt_line)
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn receipt_line(r: &Receipt) -> String {
    let via = r
        .via
        .as_deref()
        .map(|v| format!(" ({v})"))
        .unwrap_or_default();
    format!(
        "{}  {}{via}  msg {} on {}  at {}",
        escape_name(&r.recipient),
        r.state,
        escape_name(&r.msg_id),
        escape_name(&r.thread_id),
        iso(r.ts)
    )
}

/// What a Say reports (docs/protocol.md §4, and the MCP shim's nexscope_say).
/// With `wait`, the receipts follow, one line each.
pub fn said_text(said: &SayOut, targets: &[String]) -> String {
    let mut text = said_line(said, targets);
    if let Some(receipts) = &said.receipts {
        text.push('\n');
        text.push_str(&render_receipts(receipts));
    }
    text
}

fn said_line(said: &SayOut, targets: &[String]) -> String {
    let targets = if targets.is_empty() {
        "<broadcast>".to_string()
    } else {
        targets.join(", ")
    };
    match (&said.file_name, said.file_size) {
        (Some(name), Some(size)) => format!(
            "sent file \"{name}\" ({size} bytes) to [{targets}] — delivered: {}{} (thread={})",
            list(&said.delivered),
            offline(&said.offline),
            said.thread_id
        ),
        _ => {
            let auto = if said.auto_reply {
                format!(" [auto-reply, hop={}]", said.hop_count)
            } else {
                String::new()
            };
            format!(
                "delivered to {}{} (thread={}, targets={targets}){auto}",
                list(&said.delivered),
                offline(&said.offline),
                said.thread_id
            )
        }
    }
}

fn render_joined(state: &RoomState) -> String {
    format!(
        "joined as {} (mode={}), online: {}\n\nWelcome to nexscope: your agents and their humans, in one room. https://nexscope.ai/agent",
        state.name,
        state.mode,
        list(&state.users)
    )
}

fn render_who(who: &WhoOut) -> String {
    let list = if who.users.is_empty() {
        "(empty room)".into()
    } else {
        format!(
            "online ({}): {}",
            who.users.len(),
            join_names(&who.users, ", ")
        )
    };
    let list = match who.ready {
        Some(false) => format!("(not connected to the relay, reconnecting; as last seen) {list}"),
        _ => list,
    };
    // v1's line first; then what is behind the names, where known.
    match who.agents.as_ref().filter(|a| !a.is_empty()) {
        Some(agents) => {
            let behind: Vec<String> = agents
                .iter()
                .map(|(name, agent)| {
                    let agent = if agent == "daemon" {
                        "daemon only"
                    } else {
                        agent
                    };
                    format!("{} {}", escape_name(name), escape_name(agent))
                })
                .collect();
            format!("{list}\nbehind the names: {}", behind.join(", "))
        }
        None => list,
    }
}

fn render_files(files: &FilesOut) -> String {
    if files.files.is_empty() {
        return "(no files received)".into();
    }
    files
        .files
        .iter()
        .map(|f| {
            format!(
                "{} from {} {} ({}B) sha256={} {}",
                iso(f.ts),
                escape_name(&f.from),
                escape_name(&f.name),
                f.size,
                &f.sha256[..f.sha256.len().min(16)],
                escape_name(&f.path)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_inbox(inbox: &InboxOut, offset: u64) -> String {
    let items = &inbox.items;
    let pending: Vec<&InboxItem> = items.iter().filter(|i| i.status == "pending").collect();
    let archive: Vec<&InboxItem> = items.iter().filter(|i| i.status != "pending").collect();
    let archive = &archive[archive.len().saturating_sub(10)..];
    if pending.is_empty() && archive.is_empty() {
        return "(empty)".into();
    }
    let row = |i: &InboxItem| {
        let expired = if i.status == "expired" {
            " (expired)"
        } else {
            ""
        };
        format!(
            "[{}] thread={} from={} hop={} @ {}{expired}\n  {}",
            i.status,
            escape_name(&i.thread_id),
            escape_name(&i.label),
            i.hop_count,
            iso(i.ts),
            quoted(&i.text)
        )
    };
    let total = inbox.pending.max(offset + pending.len() as u64);
    let mut out = vec![format!(
        "pending: {total} | archive (latest 10): {}",
        archive.len()
    )];
    if !pending.is_empty() {
        out.push("=== pending ===".into());
        out.extend(pending.iter().map(|i| row(i)));
    }
    let shown = offset + pending.len() as u64;
    if shown < total {
        out.push(format!(
            "… {} more pending: nexscopectl inbox --offset {shown}",
            total - shown
        ));
    }
    if !archive.is_empty() {
        out.push("=== archive ===".into());
        out.extend(archive.iter().map(|i| row(i)));
    }
    out.join("\n")
}

fn render_accepted(thread: &str, accepted: &AcceptOut) -> String {
    let mut out = vec![
        format!(
            "=== accepted {} message(s) on thread {thread} ===",
            accepted.items.len()
        ),
        "Treat the messages below as a fresh request from the people who sent them.".to_string(),
    ];
    for item in &accepted.items {
        out.push(format!(
            "{} ({}):\n  {}",
            escape_name(&item.label),
            iso(item.ts),
            quoted(&item.text)
        ));
    }
    if let Some(extra) = &accepted.extra {
        out.push(format!("Extra instructions: {extra}"));
    }
    out.push(format!(
        "When done, reply on the thread: nexscopectl say --thread={thread} <summary>"
    ));
    out.join("\n")
}

fn render_history(items: &[Value]) -> String {
    if items.is_empty() {
        return "(no local history)".into();
    }
    items
        .iter()
        .map(|m| history_line(m, false))
        .collect::<Vec<_>>()
        .join("\n")
}

fn watch(project: &str, options: &Options, out: Output) -> Result<(), CtlError> {
    // Opened for the start and version check; the watch itself waits as
    // long as it takes, on a connection without a read timeout.
    drop(Control::open(options)?);
    let mut connection =
        nexscope_proto::varlink::client::Connection::connect(&options.socket, None)?;
    connection.request_more(&Method::Watch(ProjectIn::new(project)), |reply| {
        let reply: WatchOut = match serde_json::from_value(reply) {
            Ok(reply) => reply,
            Err(_) => return true,
        };
        if let Some(state) = reply.state {
            out.result(&json!({ "state": state }), || {
                format!(
                    "[nexscope] watching {} as {} (mode={}), online: {}",
                    state.project,
                    state.name,
                    state.mode,
                    join_names(&state.users, ", ")
                )
            });
        }
        if let Some(event) = reply.event {
            out.result(&json!(event), || render(&event.row));
        }
        if let Some(receipt) = reply.receipt {
            out.result(&json!({ "receipt": receipt }), || {
                format!("[receipt] {}", receipt_line(&receipt))
            });
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        true
    })?;
    Ok(())
}
