//! Claude Code hooks (docs/protocol.md §2.12): `nexscopectl hook
//! user-prompt-submit`, `stop` and `watch`. Each reads the JSON Claude Code
//! writes on stdin and finds the project from its `cwd`. A hook must never
//! block a person's prompt: any failure (no daemon, no room, a slow answer)
//! prints `{}` and exits 0, and nothing here starts a daemon.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nexscope_proto::api::Empty;
use nexscope_proto::api::chat::{
    Event, LiveOut, Method, NotificationsIn, NotificationsOut, ProjectIn, ProjectsOut, RegisterIn,
    RoomState, TasksOut,
};
use nexscope_proto::render::{mention_list, render};
use nexscope_proto::varlink::client::Connection;
use serde_json::{Value, json};

/// The family of notification queues the hooks drain: each Claude Code
/// session has its own (`claude-code:<session id>`), shared by its hooks so
/// each event reaches that session's model once, whatever other sessions do.
pub const CONSUMER_FAMILY: &str = nexscope_proto::api::chat::HOOK_CONSUMERS;
/// A hook runs before every prompt: answer within this or not at all.
const HOOK_TIMEOUT: Duration = Duration::from_secs(2);
/// Hook input is a small JSON object; more is not read.
const MAX_INPUT: u64 = 1024 * 1024;
/// An auto task younger than this blocks the Stop (docs/protocol.md §2.9).
const FRESH_MS: i64 = 5 * 60 * 1000;
/// The async watcher re-arms its wait this often, and gives up when the
/// session's process is gone (docs/protocol.md §2.12).
const WATCH_IDLE: Duration = Duration::from_secs(10 * 60);

#[derive(clap::Subcommand, Debug)]
pub enum HookCommand {
    /// SessionStart: this session's queue starts now (it sees what arrives
    /// from here on, and what no session of the project has seen yet).
    SessionStart,
    /// UserPromptSubmit: new room events as additional context.
    UserPromptSubmit,
    /// Stop: block while fresh @mentions wait for an auto-mode reply.
    Stop,
    /// Stop (async, rewake): wait for the next room event and wake Claude with it.
    Watch,
    /// Codex's SessionStart and UserPromptSubmit: the live Codex TUI
    /// registers, so that a mention can start a turn in it (`codex queue`).
    Codex,
}

pub fn run(command: &HookCommand, socket: &Path) -> ExitCode {
    let input = HookInput::read();
    // The daemon's own agents get the room from the daemon: a hook there
    // would drain the user's queue and block or wake turns nobody asked for.
    if nexscope_proto::api::agent::hosted() {
        if !matches!(command, HookCommand::Watch) {
            println!("{{}}");
        }
        return ExitCode::SUCCESS;
    }
    match command {
        HookCommand::SessionStart => {
            session_start(socket, &input);
            println!("{{}}");
            ExitCode::SUCCESS
        }
        HookCommand::UserPromptSubmit => {
            println!(
                "{}",
                user_prompt_submit(socket, &input).unwrap_or_else(|| "{}".into())
            );
            ExitCode::SUCCESS
        }
        HookCommand::Stop => {
            println!("{}", stop(socket, &input).unwrap_or_else(|| "{}".into()));
            ExitCode::SUCCESS
        }
        HookCommand::Codex => {
            codex(socket, &input);
            println!("{{}}");
            ExitCode::SUCCESS
        }
        HookCommand::Watch => match watch(socket, &input) {
            Some(text) => {
                println!("{text}");
                ExitCode::from(2)
            }
            None => ExitCode::SUCCESS,
        },
    }
}

/// What Claude Code tells a hook on stdin, as far as we use it.
#[derive(Debug, Default)]
struct HookInput {
    /// The session's working directory, else ours.
    cwd: PathBuf,
    /// Claude Code's session id, when it is one we can name a queue after.
    session_id: Option<String>,
    /// Set when this Stop comes from a turn a Stop hook already continued.
    stop_hook_active: bool,
    /// The session's permission mode, when Claude Code says (not at start).
    permission_mode: Option<String>,
}

impl HookInput {
    /// Reads stdin within the hook's deadline: a caller that never closes
    /// it must not hold the prompt (the read goes on in a thread left behind).
    fn read() -> HookInput {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut input = String::new();
            let _ = std::io::stdin().take(MAX_INPUT).read_to_string(&mut input);
            let _ = tx.send(input);
        });
        let text = rx.recv_timeout(HOOK_TIMEOUT).unwrap_or_default();
        HookInput::parse(&text)
    }

    fn parse(text: &str) -> HookInput {
        let value = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        let cwd = value["cwd"]
            .as_str()
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        let session_id = value["session_id"]
            .as_str()
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= 40
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .map(str::to_owned);
        HookInput {
            cwd,
            session_id,
            stop_hook_active: value["stop_hook_active"].as_bool().unwrap_or(false),
            permission_mode: value["permission_mode"]
                .as_str()
                .filter(|m| m.len() <= 32)
                .map(str::to_owned),
        }
    }

    /// This session's notification queue.
    fn consumer(&self) -> String {
        match &self.session_id {
            Some(id) => format!("{CONSUMER_FAMILY}:{id}"),
            None => CONSUMER_FAMILY.to_owned(),
        }
    }
}

/// The joined room whose project contains `cwd` (the deepest one).
fn room_for(connection: &mut Connection, cwd: &Path) -> Option<RoomState> {
    let cwd = std::fs::canonicalize(cwd).ok()?;
    let rooms: ProjectsOut = connection.request(&Method::Projects(Empty {})).ok()?;
    rooms
        .rooms
        .into_iter()
        .filter(|r| cwd.starts_with(&r.project))
        .max_by_key(|r| r.project.len())
}

/// Tells the daemon this Claude Code session is live, with the messaging
/// socket it gives its hooks, so that a mention can start a turn in it.
/// Only from inside Claude Code (it sets `CLAUDE_PID`).
/// The live sessions after it, None when it did not register.
fn register(connection: &mut Connection, room: &RoomState, input: &HookInput) -> Option<LiveOut> {
    // A scripted run (print mode, an SDK) is nobody's session to push into.
    if !interactive() {
        return None;
    }
    let (Some(session), Some(pid)) = (
        &input.session_id,
        std::env::var("CLAUDE_PID")
            .ok()
            .and_then(|p| p.parse().ok()),
    ) else {
        return None;
    };
    let register = RegisterIn {
        project: room.project.clone(),
        agent: "claude".into(),
        session: session.clone(),
        pid,
        socket: std::env::var("CLAUDE_CODE_MESSAGING_SOCKET").ok(),
        token: std::env::var("CLAUDE_CODE_MESSAGING_TOKEN").ok(),
        ..RegisterIn::default()
    };
    let args = cmdline(pid);
    let mode = input.permission_mode.clone().or_else(|| mode_of(&args));
    let register = RegisterIn {
        held: Some(holds_peers(mode.as_deref(), &args)),
        permission_mode: mode,
        ..register
    };
    connection
        .request::<LiveOut>(&Method::Register(register))
        .ok()
}

/// Registers the Codex TUI running this hook: its thread (Codex's
/// `session_id`), its process and its CODEX_HOME. Only a TUI run with
/// `--no-daemon` runs hooks itself; under the shared app-server daemon the
/// hook's parent is the daemon, which outlives every TUI, so nothing could
/// tell whether a person still watches the thread, and nothing registers
/// (docs/codex-hooks-observed.md, Q2).
fn codex(socket: &Path, input: &HookInput) -> Option<()> {
    let session = input.session_id.clone()?;
    let pid = nix::unistd::getppid().as_raw() as u32;
    let args = cmdline(pid);
    let program = args.first()?;
    let is_tui = Path::new(program).file_name()? == "codex"
        && !args.iter().any(|a| a == "app-server")
        && args.iter().any(|a| a == "--no-daemon");
    if !is_tui {
        return None;
    }
    let mut connection = Connection::connect(socket, Some(HOOK_TIMEOUT)).ok()?;
    let room = room_for(&mut connection, &input.cwd)?;
    let register = RegisterIn {
        project: room.project.clone(),
        agent: "codex".into(),
        session,
        pid,
        permission_mode: input.permission_mode.clone(),
        held: Some(false),
        home: std::env::var("CODEX_HOME").ok(),
        ..RegisterIn::default()
    };
    connection
        .request::<LiveOut>(&Method::Register(register))
        .ok()
        .map(drop)
}

/// Whether Claude Code holds messages from outside for its person: under
/// bypassPermissions it does, unless the user's settings (or `--settings`
/// on its command line) say `"crossSessionInbound": "accept"`; project
/// settings cannot grant that (docs/live-push-observed.md, Q4).
fn holds_peers(mode: Option<&str>, args: &[String]) -> bool {
    if mode != Some("bypassPermissions") {
        return false;
    }
    let accepts = |text: &str| {
        serde_json::from_str::<Value>(text).is_ok_and(|v| v["crossSessionInbound"] == "accept")
    };
    let user_settings = std::env::var_os("CLAUDE_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".claude")))
        .map(|dir| dir.join("settings.json"));
    if user_settings
        .and_then(|file| std::fs::read_to_string(file).ok())
        .is_some_and(|text| accepts(&text))
    {
        return false;
    }
    !args
        .windows(2)
        .any(|pair| pair[0] == "--settings" && accepts(&pair[1]))
}

/// A process's command line (none when it cannot be read).
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The permission mode a Claude Code process was started in, from its
/// command line (SessionStart's input does not say).
fn mode_of(args: &[String]) -> Option<String> {
    if args.iter().any(|a| a == "--dangerously-skip-permissions") {
        return Some("bypassPermissions".into());
    }
    args.iter()
        .enumerate()
        .find_map(|(at, arg)| match arg.strip_prefix("--permission-mode") {
            Some("") => args.get(at + 1).cloned(),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        })
}

fn session_start(socket: &Path, input: &HookInput) -> Option<()> {
    let mut connection = Connection::connect(socket, Some(HOOK_TIMEOUT)).ok()?;
    let room = room_for(&mut connection, &input.cwd)?;
    let _ = register(&mut connection, &room, input);
    let input = NotificationsIn {
        project: room.project,
        consumer: input.consumer(),
        limit: Some(0),
    };
    connection
        .request::<NotificationsOut>(&Method::Notifications(input))
        .ok()
        .map(drop)
}

fn drain(connection: &mut Connection, room: &RoomState, consumer: &str) -> Option<Vec<Event>> {
    let out: NotificationsOut = connection
        .request(&Method::Notifications(NotificationsIn {
            project: room.project.clone(),
            consumer: consumer.into(),
            limit: None,
        }))
        .ok()?;
    Some(out.events)
}

fn lines(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| render(&e.row))
        .collect::<Vec<_>>()
        .join("\n")
}

fn user_prompt_submit(socket: &Path, input: &HookInput) -> Option<String> {
    let mut connection = Connection::connect(socket, Some(HOOK_TIMEOUT)).ok()?;
    let room = room_for(&mut connection, &input.cwd)?;
    let _ = register(&mut connection, &room, input);
    let events = drain(&mut connection, &room, &input.consumer())?;
    if events.is_empty() {
        return None;
    }
    let text = format!(
        "[nexscope inbox-stream] {} event(s) since last turn (user={}, mode={}):\n{}",
        events.len(),
        room.name,
        room.mode,
        lines(&events)
    );
    Some(json!({"hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": text}}).to_string())
}

fn stop(socket: &Path, input: &HookInput) -> Option<String> {
    // Claude Code's contract: a turn that a Stop hook already continued
    // ends now, or the two would loop until Claude Code overrides the hook.
    if input.stop_hook_active {
        return None;
    }
    let mut connection = Connection::connect(socket, Some(HOOK_TIMEOUT)).ok()?;
    let room = room_for(&mut connection, &input.cwd)?;
    // A session the daemon pushes mentions into gets each as a turn of its
    // own: blocking its stop for them too would wake it twice.
    if room.mode != "auto" || pushable(&mut connection, &room, input) {
        return None;
    }
    let tasks: TasksOut = connection
        .request(&Method::Tasks(ProjectIn::new(&room.project)))
        .ok()?;
    let now = nexscope_proto::time::now_ms() as i64;
    let fresh: Vec<&Value> = tasks
        .tasks
        .iter()
        .filter(|t| now - t["ts"].as_i64().unwrap_or(0) < FRESH_MS)
        .collect();
    if fresh.is_empty() {
        return None;
    }
    Some(json!({"decision": "block", "reason": stop_reason(&room.name, &fresh)}).to_string())
}

/// The Stop hook's reason (docs/protocol.md §2.12).
pub fn stop_reason(me: &str, tasks: &[&Value]) -> String {
    let mut out = format!(
        "[NEXSCOPE AUTO MODE] You have unanswered @mentions in the chat room (mode=auto, current user={me}):\n\n"
    );
    out.push_str(&mention_list(tasks));
    out.push_str(
        "\nReply to each with /nexscope:say --thread=<threadId> @<from> <reply>, or switch to /nexscope:mode manual, \
         or stop again to leave them (after 5 minutes they move to the inbox).",
    );
    out
}

/// The async watcher: the first events after now, or None (exit 0) when the
/// daemon goes away or the session ends. In auto mode a session the daemon
/// can push into needs no watcher: the daemon wakes it for its mentions.
fn watch(socket: &Path, input: &HookInput) -> Option<String> {
    // Only a person's session at its prompt can be woken; Claude Code waits
    // for this hook before a scripted run (print mode, the SDK) exits.
    if !interactive() {
        return None;
    }
    let consumer = input.consumer();
    let mut connection = Connection::connect(socket, Some(HOOK_TIMEOUT)).ok()?;
    let room = room_for(&mut connection, &input.cwd)?;
    if room.mode == "auto" && pushable(&mut connection, &room, input) {
        return None;
    }
    let _slot = claim_slot(&room.project, &consumer);
    let pending = drain(&mut connection, &room, &consumer)?;
    if !pending.is_empty() {
        return Some(format!(
            "[nexscope inbox-stream] {} new event(s):\n{}",
            pending.len(),
            lines(&pending)
        ));
    }
    // As long as the session lives: the wait is re-armed every WATCH_IDLE.
    loop {
        if let Some(events) = wait_for_events(socket, &mut connection, &room, &consumer) {
            return Some(format!(
                "[nexscope inbox-stream] {} new event(s):\n{}",
                events.len(),
                lines(&events)
            ));
        }
        if !session_alive() {
            return None;
        }
    }
}

/// Whether this session is registered (now) as one the daemon can push to.
/// (Registering it now.) A session that holds pushes is not one.
fn pushable(connection: &mut Connection, room: &RoomState, input: &HookInput) -> bool {
    register(connection, room, input).is_some_and(|live| {
        live.sessions
            .iter()
            .any(|s| Some(&s.session) == input.session_id.as_ref() && s.pushable && !s.held)
    })
}

/// Events that arrive within WATCH_IDLE (no polling: the Watch stream);
/// None when none did, or the daemon went away.
fn wait_for_events(
    socket: &Path,
    connection: &mut Connection,
    room: &RoomState,
    consumer: &str,
) -> Option<Vec<Event>> {
    let mut stream = Connection::connect(socket, Some(WATCH_IDLE)).ok()?;
    let started = Instant::now();
    let mut woke = false;
    let mut caught: Vec<Event> = Vec::new();
    let _ = stream.request_more(&Method::Watch(ProjectIn::new(&room.project)), |reply| {
        if reply.get("event").is_some_and(|e| !e.is_null()) {
            woke = true;
            return false;
        }
        // The stream is set up: what came between the first drain and now
        // is not on it, so look once more.
        if reply.get("state").is_some_and(|s| !s.is_null()) {
            caught = drain(connection, room, consumer).unwrap_or_default();
            if !caught.is_empty() {
                return false;
            }
        }
        started.elapsed() < WATCH_IDLE
    });
    let events = if caught.is_empty() && woke {
        drain(connection, room, consumer)?
    } else {
        caught
    };
    (!events.is_empty()).then_some(events)
}

/// The Claude Code process this hook belongs to still runs (unknown: no).
fn session_alive() -> bool {
    std::env::var("CLAUDE_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(nexscope_proto::paths::process_alive)
}

/// Whether the Claude Code running this hook has a person at its prompt.
/// Claude Code sets `CLAUDE_CODE_SESSION_ATTENDED` itself (0 for `claude -p`
/// and the SDKs, 1 in a terminal, whatever its parent said); older builds
/// only name how they were started in `CLAUDE_CODE_ENTRYPOINT` (`cli`, or
/// `sdk-…`). Unknown means yes: a missed wake costs more than a watcher
/// left waiting. (docs/agent-cli-notes.md.)
fn interactive() -> bool {
    if let Ok(attended) = std::env::var("CLAUDE_CODE_SESSION_ATTENDED") {
        return attended != "0";
    }
    std::env::var("CLAUDE_CODE_ENTRYPOINT").map_or(true, |entry| !entry.starts_with("sdk"))
}

/// One watcher per project and session (docs/protocol.md §2.12): a newer
/// one ends the older one of the same session, never another session's.
fn claim_slot(project: &str, consumer: &str) -> Option<PathBuf> {
    let dir = nexscope_proto::paths::runtime_dir();
    nexscope_proto::paths::ensure_private_dir(&dir).ok()?;
    let key = format!("{project}\0{consumer}");
    let hash = nexscope_proto::ids::short_hash(&key);
    let file = dir.join(format!("watcher-{hash}.pid"));
    if let Some(pid) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        if pid > 1 && pid != std::process::id() as i32 && is_watcher(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    std::fs::write(&file, std::process::id().to_string()).ok()?;
    Some(file)
}

/// Only a nexscopectl is signalled: the pid file may be stale and the pid reused.
fn is_watcher(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| String::from_utf8_lossy(&cmd).contains("nexscopectl"))
        .unwrap_or(false)
}
