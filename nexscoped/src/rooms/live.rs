//! Live agent sessions and waking them (docs/protocol.md §2.15).
//!
//! A Claude Code session with nexscope's hooks registers at its start and on
//! every prompt: its id, its process, and its messaging socket (the path
//! and token Claude Code gives its hooks). The registration is a lease: it
//! holds only while that process lives and the socket exists, checked each
//! time it is used, so a dead session is never shown or pushed to.
//!
//! In auto mode a fresh @mention to us makes the daemon write one user turn
//! into the newest live session's socket, naming the threads to answer; the
//! mentions of a short window go in one push (`COALESCE`), and each mention
//! is pushed once. Claude Code answers nothing on the socket, so the push
//! counts as `surfaced` when the write succeeded and the session's mode
//! lets peer messages in; under bypassPermissions it holds them for its
//! person, and the room is told so instead. Without a live session the
//! async watcher and the next prompt's hook remain the ways in.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::receipts;
use super::{Room, Rooms, inbound};
use nexscope_proto::api::chat::{ChatError, LiveSession, ReceiptState, RegisterIn};
use nexscope_proto::config::{Mode, Secret};
use nexscope_proto::render::mention_list;
use nexscope_proto::time::now_ms;

/// Mentions arriving within this window of the first wake together.
pub const COALESCE: Duration = Duration::from_millis(300);
/// Connecting and writing to a session's socket, at most.
const PUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// `codex queue` reading and writing Codex's state, at most.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(20);
/// Live sessions one project keeps at most (one per terminal, in practice).
const MAX_LEASES: usize = 32;
/// Mentions one push carries at most, so that it stays far below Claude
/// Code's line limit (1 MiB; each is quoted in at most 200 characters).
const PUSH_MENTIONS: usize = 50;
/// Claude Code drops messages from a sender past 30 in a burst, refilled at
/// one per 2 s, without a word (docs/live-push-observed.md, Q2); we stay
/// under it, and mentions wait for the next push instead of being lost.
const PUSH_BURST: f64 = 20.0;
const PUSH_REFILL: Duration = Duration::from_secs(2);

/// One registered session.
#[derive(Clone)]
struct Lease {
    agent: String,
    session: String,
    pid: u32,
    socket: Option<PathBuf>,
    token: Option<Secret>,
    mode: Option<String>,
    holds: bool,
    /// Codex: its CODEX_HOME.
    home: Option<PathBuf>,
    since: i64,
    seen: i64,
}

impl Lease {
    fn alive(&self) -> bool {
        nexscope_proto::paths::process_alive(self.pid)
            && self.socket.as_deref().is_none_or(Path::exists)
    }

    /// Pushed messages wait for its person's approval.
    fn held(&self) -> bool {
        self.holds
    }

    fn pushable(&self) -> bool {
        match self.agent.as_str() {
            "claude" => self.socket.is_some(),
            "codex" => self.home.is_some(),
            _ => false,
        }
    }

    fn view(&self) -> LiveSession {
        LiveSession {
            agent: self.agent.clone(),
            session: self.session.clone(),
            pid: self.pid,
            pushable: self.pushable(),
            held: self.held(),
            since: self.since,
            seen: self.seen,
        }
    }
}

/// A project's live sessions, and what was already pushed to them.
#[derive(Default)]
pub struct Leases {
    map: Mutex<HashMap<String, Lease>>,
    /// Mentions (msgIds) already pushed: each is pushed once.
    pushed: Mutex<HashSet<String>>,
    /// A wake is scheduled (the coalescing window is open).
    waking: Mutex<bool>,
    /// Per session: pushes allowed now, and when that was counted.
    buckets: Mutex<HashMap<String, (f64, std::time::Instant)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Leases {
    /// The leases, those whose process is gone dropped first (with their
    /// push allowance): a dead session is never listed or pushed to.
    fn alive(&self) -> MutexGuard<'_, HashMap<String, Lease>> {
        let mut map = lock(&self.map);
        map.retain(|_, l| l.alive());
        lock(&self.buckets).retain(|session, _| map.contains_key(session));
        map
    }

    /// Records (or refreshes) a session's lease; the live ones after it.
    pub fn register(&self, input: RegisterIn) -> Result<Vec<LiveSession>, ChatError> {
        let lease = checked(input)?;
        let mut map = self.alive();
        // A refresh keeps when it began, and the mode when it does not say.
        let (since, mode) = match map.get(&lease.session) {
            Some(old) => (old.since, lease.mode.clone().or(old.mode.clone())),
            None => (lease.since, lease.mode.clone()),
        };
        if !map.contains_key(&lease.session) && map.len() >= MAX_LEASES {
            return Err(ChatError::bad_args(format!(
                "{MAX_LEASES} live sessions are registered for this project already"
            )));
        }
        map.insert(
            lease.session.clone(),
            Lease {
                since,
                mode,
                ..lease
            },
        );
        Ok(views(&map))
    }

    /// The live sessions; dead ones are dropped here.
    pub fn live(&self) -> Vec<LiveSession> {
        let map = self.alive();
        views(&map)
    }

    /// What is behind our name now: the live agent session's kind (claude
    /// before codex), else the daemon alone.
    pub fn kind(&self) -> &'static str {
        let map = self.alive();
        if map.values().any(|l| l.agent == "claude") {
            "claude"
        } else if map.values().any(|l| l.agent == "codex") {
            "codex"
        } else {
            "daemon"
        }
    }

    /// The tasks not pushed yet (at most `PUSH_MENTIONS`), marked pushed
    /// now; what is remembered as pushed is what is still a task.
    fn claim<'t>(&self, tasks: &'t [Value]) -> Vec<&'t Value> {
        let mut pushed = lock(&self.pushed);
        let current: HashSet<&str> = tasks.iter().filter_map(|t| t["msgId"].as_str()).collect();
        pushed.retain(|id| current.contains(id.as_str()));
        let fresh: Vec<&Value> = tasks
            .iter()
            .filter(|t| t["msgId"].as_str().is_some_and(|id| !pushed.contains(id)))
            .take(PUSH_MENTIONS)
            .collect();
        pushed.extend(
            fresh
                .iter()
                .filter_map(|t| t["msgId"].as_str().map(str::to_string)),
        );
        fresh
    }

    /// A push that failed: its mentions may go in the next one.
    fn unclaim(&self, tasks: &[&Value]) {
        let mut pushed = lock(&self.pushed);
        for id in tasks.iter().filter_map(|t| t["msgId"].as_str()) {
            pushed.remove(id);
        }
    }

    /// Takes one push from `session`'s allowance, or says how long until
    /// one is there.
    fn take_push(&self, session: &str) -> Result<(), Duration> {
        let now = std::time::Instant::now();
        let mut buckets = lock(&self.buckets);
        let (tokens, at) = buckets
            .entry(session.to_string())
            .or_insert((PUSH_BURST, now));
        let refilled = now.duration_since(*at).as_secs_f64() / PUSH_REFILL.as_secs_f64();
        *tokens = (*tokens + refilled).min(PUSH_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        Err(PUSH_REFILL.mul_f64(1.0 - *tokens))
    }

    /// The session a push goes to: the most recently seen pushable one.
    fn target(&self) -> Option<Lease> {
        let map = self.alive();
        map.values()
            .filter(|l| l.pushable())
            .max_by_key(|l| l.seen)
            .cloned()
    }
}

fn views(map: &HashMap<String, Lease>) -> Vec<LiveSession> {
    let mut all: Vec<LiveSession> = map.values().map(Lease::view).collect();
    all.sort_by(|a, b| (a.since, &a.session).cmp(&(b.since, &b.session)));
    all
}

/// A registration as a lease, or why it cannot be one.
fn checked(input: RegisterIn) -> Result<Lease, ChatError> {
    if !matches!(input.agent.as_str(), "claude" | "codex") {
        return Err(ChatError::bad_args(format!(
            "agent {:?} is not one we know; use claude or codex",
            input.agent
        )));
    }
    let id_ok = (1..=64).contains(&input.session.len())
        && input
            .session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(ChatError::bad_args(
            "session must be 1 to 64 letters, digits, - and _",
        ));
    }
    if !nexscope_proto::paths::process_alive(input.pid) {
        return Err(ChatError::bad_args(format!(
            "pid {} is not a live process of yours",
            input.pid
        )));
    }
    let socket = match input.socket {
        Some(path) => Some(checked_socket(&path)?),
        None => None,
    };
    if input.token.as_ref().is_some_and(|t| t.len() > 256) {
        return Err(ChatError::bad_args("token must be at most 256 characters"));
    }
    let now = now_ms() as i64;
    Ok(Lease {
        agent: input.agent,
        session: input.session,
        pid: input.pid,
        socket,
        token: input.token.map(Secret::new),
        mode: input.permission_mode.filter(|m| m.len() <= 32),
        holds: input.held.unwrap_or(false),
        home: match input.home {
            Some(home) => Some(checked_home(&home)?),
            None => None,
        },
        since: now,
        seen: now,
    })
}

/// A messaging socket we may write to: an absolute path to a unix socket
/// that belongs to us (never somewhere a peer's text could make us write).
fn checked_socket(path: &str) -> Result<PathBuf, ChatError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = PathBuf::from(path);
    let bad = |why: &str| ChatError::bad_args(format!("socket {}: {why}", path.display()));
    if !path.is_absolute() || path.as_os_str().len() > 512 {
        return Err(bad("give an absolute path"));
    }
    let meta = std::fs::symlink_metadata(&path).map_err(|e| bad(&e.to_string()))?;
    if !meta.file_type().is_socket() {
        return Err(bad("not a unix socket"));
    }
    if meta.uid() != nexscope_proto::paths::uid() {
        return Err(bad("belongs to another user"));
    }
    Ok(path)
}

/// A Codex home we may name to `codex queue`: an absolute path to a
/// directory of ours.
fn checked_home(path: &str) -> Result<PathBuf, ChatError> {
    use std::os::unix::fs::MetadataExt;
    let path = PathBuf::from(path);
    let bad = |why: &str| ChatError::bad_args(format!("home {}: {why}", path.display()));
    if !path.is_absolute() || path.as_os_str().len() > 512 {
        return Err(bad("give an absolute path"));
    }
    let meta = std::fs::metadata(&path).map_err(|e| bad(&e.to_string()))?;
    if !meta.is_dir() || meta.uid() != nexscope_proto::paths::uid() {
        return Err(bad("not a directory of yours"));
    }
    Ok(path)
}

/// Starts a turn in a live session with `text`, as its CLI allows.
async fn push(lease: &Lease, text: &str) -> std::io::Result<()> {
    match &lease.home {
        Some(home) => queue(lease, home, text).await,
        None => write_socket(lease, text).await,
    }
}

/// Codex: `codex queue --thread … --resume`, with the session's own
/// binary and home; a TUI holding the thread takes the turn when idle
/// (docs/codex-hooks-observed.md).
async fn queue(lease: &Lease, home: &Path, text: &str) -> std::io::Result<()> {
    let program = std::fs::read_link(format!("/proc/{}/exe", lease.pid))?;
    let mut command = tokio::process::Command::new(program);
    command
        .args([
            "queue",
            "--thread",
            &lease.session,
            "--message",
            text,
            "--resume",
        ])
        .env("CODEX_HOME", home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let status = tokio::time::timeout(QUEUE_TIMEOUT, command.status())
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "codex queue exited with {status}"
        )))
    }
}

/// Claude Code: one user line into its messaging socket, after an
/// optional auth line, then close (Claude Code answers nothing).
async fn write_socket(lease: &Lease, text: &str) -> std::io::Result<()> {
    let Some(socket) = &lease.socket else {
        return Err(std::io::ErrorKind::NotFound.into());
    };
    let mut lines = String::new();
    if let Some(token) = &lease.token {
        lines.push_str(&json!({"type": "auth", "token": token.expose()}).to_string());
        lines.push('\n');
    }
    let message = json!({
        "type": "user", "session_id": lease.session, "from": "nexscope",
        "message": {"role": "user", "content": text},
    });
    lines.push_str(&message.to_string());
    lines.push('\n');
    let write = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await?;
        stream.write_all(lines.as_bytes()).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(PUSH_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// The turn a wake pushes: the mentions, and how to answer them.
fn wake_text(me: &str, tasks: &[&Value]) -> String {
    format!(
        "[nexscope] @mentions for you ({me}) in the chat room (auto mode):\n{}\n\
         Reply to each on its thread: /nexscope:say --thread <threadId> @<from> <reply> \
         (or the MCP tool nexscope_say with threadId).",
        mention_list(tasks)
    )
}

/// The turn an accepted thread pushes.
fn accepted_text(me: &str, thread: &str, items: &[&Value], extra: Option<&str>) -> String {
    let extra = extra
        .map(|e| format!("\nThe user adds: {e}\n"))
        .unwrap_or_default();
    format!(
        "[nexscope] the user ({me}) accepted thread {thread} as a request:\n{}{extra}\n\
         When done, reply on the thread: /nexscope:say --thread {thread} @<from> <reply>.",
        mention_list(items)
    )
}

impl Rooms {
    /// A mention to us arrived: wake the live session after the
    /// coalescing window, once for everything that came in it.
    pub fn wake_soon(self: &Arc<Self>, room: &Arc<Room>) {
        if room.live().mode != Mode::Auto {
            return;
        }
        {
            let mut waking = lock(&room.leases.waking);
            if *waking {
                return;
            }
            *waking = true;
        }
        let (rooms, room) = (self.clone(), room.clone());
        tokio::spawn(async move {
            tokio::time::sleep(COALESCE).await;
            loop {
                *lock(&room.leases.waking) = false;
                match rooms.wake(&room).await {
                    // Past the session's allowance: what came meanwhile
                    // goes in the next push, once one is allowed.
                    Ok(Some(wait)) => {
                        *lock(&room.leases.waking) = true;
                        tokio::time::sleep(wait).await;
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(project = %room.project, %error, "could not wake the live session");
                        break;
                    }
                }
            }
        });
    }

    /// Pushes the fresh, not yet pushed auto tasks to the live session;
    /// Some(wait) when the session's allowance is used up for now.
    async fn wake(&self, room: &Room) -> Result<Option<Duration>, ChatError> {
        let Some(lease) = room.leases.target() else {
            return Ok(None); // the watcher or the next prompt's hook
        };
        let tasks = self.tasks(&room.project).await?;
        // Claimed before the push, so that a wake running beside this one
        // (a mention that came meanwhile) never pushes them again.
        let fresh = room.leases.claim(&tasks);
        if fresh.is_empty() {
            return Ok(None);
        }
        if let Err(wait) = room.leases.take_push(&lease.session) {
            room.leases.unclaim(&fresh);
            return Ok(Some(wait));
        }
        let text = wake_text(&room.name, &fresh);
        if !self.deliver(room, &lease, &text, &fresh).await? {
            room.leases.unclaim(&fresh);
        }
        // More than one push holds: the rest go next.
        Ok((fresh.len() == PUSH_MENTIONS).then_some(Duration::ZERO))
    }

    /// In manual mode, an accepted thread goes to the live session.
    pub async fn push_accepted(
        &self,
        room: &Room,
        thread: &str,
        items: &[Value],
        extra: Option<&str>,
        asking: Option<&str>,
    ) -> Result<(), ChatError> {
        let Some(lease) = room.leases.target() else {
            return Ok(());
        };
        if Some(lease.session.as_str()) == asking {
            return Ok(()); // it has the request already
        }
        // A person's accept is worth a short wait for the allowance.
        while let Err(wait) = room.leases.take_push(&lease.session) {
            tokio::time::sleep(wait).await;
        }
        let items: Vec<&Value> = items.iter().take(PUSH_MENTIONS).collect();
        let text = accepted_text(&room.name, thread, &items, extra);
        self.deliver(room, &lease, &text, &items).await.map(drop)
    }

    /// Writes `text` into the session; the mentions in `about` are
    /// surfaced unless the session holds them. False when the write failed.
    async fn deliver(
        &self,
        room: &Room,
        lease: &Lease,
        text: &str,
        about: &[&Value],
    ) -> Result<bool, ChatError> {
        if let Err(error) = push(lease, text).await {
            tracing::info!(project = %room.project, session = %lease.session, %error, "push failed; the hooks will show the mentions");
            return Ok(false);
        }
        let theirs = receipts::theirs(about.iter().map(|t| (*t).clone()), &room.name);
        tracing::info!(project = %room.project, session = %lease.session, mentions = theirs.len(), held = lease.held(), "pushed into the live session");
        if lease.held() {
            self.tell(room, &format!(
                "[nexscope] {} mention(s) pushed to Claude Code session {} are held for approval (bypassPermissions): deliver them there",
                theirs.len(),
                lease.session
            ))
            .await?;
            return Ok(true);
        }
        receipts::report(
            &self.ctx,
            room,
            theirs,
            ReceiptState::Surfaced,
            Some("push"),
        )
        .await?;
        Ok(true)
    }

    /// A line for the room's watchers and hooks.
    async fn tell(&self, room: &Room, text: &str) -> Result<(), ChatError> {
        let (project, text) = (room.project.clone(), text.to_string());
        let event = self
            .ctx
            .store
            .run(move |c| inbound::system(c, &project, &text))
            .await?;
        room.publish(vec![event]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_stay_within_claude_codes_allowance() {
        let leases = Leases::default();
        for _ in 0..PUSH_BURST as usize {
            assert!(leases.take_push("s1").is_ok());
        }
        let wait = leases.take_push("s1").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= PUSH_REFILL, "{wait:?}");
        // Another session has its own.
        assert!(leases.take_push("s2").is_ok());
    }
}
