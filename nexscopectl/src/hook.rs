//! Claude Code hooks (spec §2.12): `nexscopectl hook user-prompt-submit`,
//! `stop` and `watch`. Each reads the JSON Claude Code writes on stdin and
//! finds the project from its `cwd`. A hook must never block a person's
//! prompt: any failure (no daemon, no room, a slow answer) prints `{}` and
//! exits 0, and nothing here starts a daemon.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nexscope::api::chat::{self, Event, NotificationsOut, ProjectsOut, RoomState, TasksOut};
use nexscope::rooms::labels::render;
use nexscope::varlink::client::Connection;
use serde_json::{Value, json};

/// The queue of notifications the hooks drain, shared by all of them so
/// each event reaches the model once.
pub const CONSUMER: &str = "claude-code";
/// A hook runs before every prompt: answer within this or not at all.
const HOOK_TIMEOUT: Duration = Duration::from_secs(2);
/// Hook input is a small JSON object; more is not read.
const MAX_INPUT: u64 = 1024 * 1024;
/// An auto task younger than this blocks the Stop (§2.9).
const FRESH_MS: i64 = 5 * 60 * 1000;
/// The async watcher gives up after this long without an event (§2.12).
const WATCH_IDLE: Duration = Duration::from_secs(10 * 60);
/// Characters of a task's text quoted in the Stop reason.
const QUOTE: usize = 200;

#[derive(clap::Subcommand, Debug)]
pub enum HookCommand {
    /// UserPromptSubmit: new room events as additional context.
    UserPromptSubmit,
    /// Stop: block while fresh @mentions wait for an auto-mode reply.
    Stop,
    /// Stop (async, rewake): wait for the next room event and wake Claude with it.
    Watch,
}

pub fn run(command: &HookCommand, socket: &Path) -> ExitCode {
    let cwd = read_cwd();
    match command {
        HookCommand::UserPromptSubmit => {
            println!(
                "{}",
                user_prompt_submit(socket, &cwd).unwrap_or_else(|| "{}".into())
            );
            ExitCode::SUCCESS
        }
        HookCommand::Stop => {
            println!("{}", stop(socket, &cwd).unwrap_or_else(|| "{}".into()));
            ExitCode::SUCCESS
        }
        HookCommand::Watch => match watch(socket, &cwd) {
            Some(text) => {
                println!("{text}");
                ExitCode::from(2)
            }
            None => ExitCode::SUCCESS,
        },
    }
}

/// The `cwd` Claude Code passes, else ours.
fn read_cwd() -> PathBuf {
    let mut input = String::new();
    let _ = std::io::stdin().take(MAX_INPUT).read_to_string(&mut input);
    serde_json::from_str::<Value>(&input)
        .ok()
        .and_then(|v| v["cwd"].as_str().map(PathBuf::from))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default()
}

/// The joined room whose project contains `cwd` (the deepest one).
fn room_for(connection: &mut Connection, cwd: &Path) -> Option<RoomState> {
    let cwd = std::fs::canonicalize(cwd).ok()?;
    let rooms: ProjectsOut = connection.call(chat::PROJECTS, json!({})).ok()?;
    rooms
        .rooms
        .into_iter()
        .filter(|r| cwd.starts_with(&r.project))
        .max_by_key(|r| r.project.len())
}

fn drain(connection: &mut Connection, room: &RoomState) -> Option<Vec<Event>> {
    let out: NotificationsOut = connection
        .call(
            chat::NOTIFICATIONS,
            json!({ "project": room.project, "consumer": CONSUMER }),
        )
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

fn user_prompt_submit(socket: &Path, cwd: &Path) -> Option<String> {
    let mut connection = Connection::connect(socket, Some(HOOK_TIMEOUT)).ok()?;
    let room = room_for(&mut connection, cwd)?;
    let events = drain(&mut connection, &room)?;
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

fn stop(socket: &Path, cwd: &Path) -> Option<String> {
    let mut connection = Connection::connect(socket, Some(HOOK_TIMEOUT)).ok()?;
    let room = room_for(&mut connection, cwd)?;
    if room.mode != "auto" {
        return None;
    }
    let tasks: TasksOut = connection
        .call(chat::TASKS, json!({ "project": room.project }))
        .ok()?;
    let now = nexscope::relay::frame::now_ms() as i64;
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

/// The Stop hook's reason (§2.9).
pub fn stop_reason(me: &str, tasks: &[&Value]) -> String {
    let mut out = format!(
        "[NEXSCOPE AUTO MODE] You have unanswered @mentions in the chat room (mode=auto, current user={me}):\n\n"
    );
    for task in tasks {
        let text = task["text"].as_str().unwrap_or_default();
        let quoted: String = text.chars().take(QUOTE).collect();
        let ellipsis = if text.chars().count() > QUOTE {
            "…"
        } else {
            ""
        };
        out.push_str(&format!(
            "- thread={} from {}: \"{quoted}{ellipsis}\" (incoming hop={})\n",
            task["threadId"].as_str().unwrap_or_default(),
            task["label"].as_str().unwrap_or_default(),
            task["hopCount"].as_i64().unwrap_or(0)
        ));
    }
    out.push_str(
        "\nReply to each with /nexscope:say --thread=<threadId> @<from> <reply>, or switch to /nexscope:mode manual, \
         or stop again to leave them (after 5 minutes they move to the inbox).",
    );
    out
}

/// The async watcher: the first events after now, or None (exit 0) when the
/// daemon goes away or nothing comes for ten minutes.
fn watch(socket: &Path, cwd: &Path) -> Option<String> {
    let mut connection = Connection::connect(socket, Some(HOOK_TIMEOUT)).ok()?;
    let room = room_for(&mut connection, cwd)?;
    let _slot = claim_slot(&room.project);
    let pending = drain(&mut connection, &room)?;
    if !pending.is_empty() {
        return Some(format!(
            "[nexscope inbox-stream] {} new event(s):\n{}",
            pending.len(),
            lines(&pending)
        ));
    }
    // Wait on the stream (no polling); the read timeout bounds the idle wait.
    let mut stream = Connection::connect(socket, Some(WATCH_IDLE)).ok()?;
    let started = Instant::now();
    let mut woke = false;
    let mut caught: Vec<Event> = Vec::new();
    let _ = stream.call_more(chat::WATCH, json!({ "project": room.project }), |reply| {
        if reply.get("event").is_some_and(|e| !e.is_null()) {
            woke = true;
            return false;
        }
        // The stream is set up: what came between the first drain and now
        // is not on it, so look once more.
        if reply.get("state").is_some_and(|s| !s.is_null()) {
            caught = drain(&mut connection, &room).unwrap_or_default();
            if !caught.is_empty() {
                return false;
            }
        }
        started.elapsed() < WATCH_IDLE
    });
    let events = if caught.is_empty() && woke {
        drain(&mut connection, &room)?
    } else {
        caught
    };
    (!events.is_empty()).then(|| {
        format!(
            "[nexscope inbox-stream] {} new event(s):\n{}",
            events.len(),
            lines(&events)
        )
    })
}

/// One watcher per project (§2.12): a newer one ends the older one.
fn claim_slot(project: &str) -> Option<PathBuf> {
    use sha2::Digest;
    let dir = nexscope::paths::runtime_dir();
    nexscope::paths::ensure_private_dir(&dir).ok()?;
    let hash = nexscope::relay::auth::hex(&sha2::Sha256::digest(project.as_bytes())[..6]);
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
