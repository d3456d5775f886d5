//! `io.nexscope.Chat`: method names, parameters, results and errors.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Empty;
use super::agent::Usage;
use crate::varlink::VarlinkError;

crate::interface! {
    "io.nexscope.Chat";
    methods {
        Start(StartIn),
        Stop(ProjectIn),
        Status(ProjectIn),
        Projects(Empty),
        Say(SayIn),
        Who(ProjectIn),
        Inbox(InboxIn),
        Accept(ThreadIn),
        Reject(ThreadIn),
        Append(ThreadIn),
        Mode(ModeIn),
        History(HistoryIn),
        Files(ProjectIn),
        Tasks(ProjectIn),
        Watch(ProjectIn),
        Costs(ProjectIn),
        Receipts(ReceiptsIn),
        Register(RegisterIn),
        Live(ProjectIn),
        Notifications(NotificationsIn),
    }
    errors {
        NotJoined,
        AlreadyJoined,
        NameTaken,
        BadToken,
        JoinFailed,
        TextTooLarge,
        RelayNotReady,
        AckTimeout,
        NotFound,
        BadArgs,
        FileError,
        TooLarge,
        Internal,
    }
}

/// v1's text limit (docs/protocol.md §2.7): 4096 bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4096;

/// What went wrong, once: each has a stable code (v1's), a message a person
/// can act on, and a varlink error name.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatError {
    NotJoined,
    AlreadyJoined { name: String },
    NameTaken { name: String },
    BadToken { detail: String },
    JoinFailed { code: String, message: String },
    TextTooLarge { bytes: usize },
    RelayNotReady,
    AckTimeout { seconds: u64 },
    NotFound { what: String },
    BadArgs { message: String },
    FileError { path: String, message: String },
    TooLarge { size: u64, limit: u64 },
    Internal { message: String },
}

impl ChatError {
    pub fn bad_args(message: impl Into<String>) -> Self {
        ChatError::BadArgs {
            message: message.into(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        ChatError::Internal {
            message: message.to_string(),
        }
    }

    pub fn code(&self) -> String {
        match self {
            ChatError::NotJoined => "not_joined".into(),
            ChatError::AlreadyJoined { .. } => "already_joined".into(),
            ChatError::NameTaken { .. } => "name_taken".into(),
            ChatError::BadToken { .. } => "auth_failed".into(),
            ChatError::JoinFailed { code, .. } => code.clone(),
            ChatError::TextTooLarge { .. } => "text_too_large".into(),
            ChatError::RelayNotReady => "relay_not_ready".into(),
            ChatError::AckTimeout { .. } => "ack_timeout".into(),
            ChatError::NotFound { .. } => "not_found".into(),
            ChatError::BadArgs { .. } => "bad_args".into(),
            ChatError::FileError { .. } => "file_error".into(),
            ChatError::TooLarge { .. } => "too_large".into(),
            ChatError::Internal { .. } => "internal".into(),
        }
    }

    pub fn varlink_name(&self) -> ErrorName {
        match self {
            ChatError::NotJoined => ErrorName::NotJoined,
            ChatError::AlreadyJoined { .. } => ErrorName::AlreadyJoined,
            ChatError::NameTaken { .. } => ErrorName::NameTaken,
            ChatError::BadToken { .. } => ErrorName::BadToken,
            ChatError::JoinFailed { .. } => ErrorName::JoinFailed,
            ChatError::TextTooLarge { .. } => ErrorName::TextTooLarge,
            ChatError::RelayNotReady => ErrorName::RelayNotReady,
            ChatError::AckTimeout { .. } => ErrorName::AckTimeout,
            ChatError::NotFound { .. } => ErrorName::NotFound,
            ChatError::BadArgs { .. } => ErrorName::BadArgs,
            ChatError::FileError { .. } => ErrorName::FileError,
            ChatError::TooLarge { .. } => ErrorName::TooLarge,
            ChatError::Internal { .. } => ErrorName::Internal,
        }
    }
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::NotJoined => write!(
                f,
                "nexscope is not joined to the chat room. Run `nexscopectl start -n <name>` first."
            ),
            ChatError::AlreadyJoined { name } => write!(
                f,
                "already joined as {name}; run `nexscopectl stop` first to join under another name"
            ),
            ChatError::NameTaken { name } => write!(
                f,
                "username \"{name}\" already in room; choose another name with -n"
            ),
            ChatError::BadToken { detail } => write!(
                f,
                "the relay refused the token ({detail}): check NEXSCOPE_TOKEN or token/token_file in config.toml"
            ),
            ChatError::JoinFailed { message, .. } => f.write_str(message),
            ChatError::TextTooLarge { bytes } => write!(
                f,
                "text exceeds 4KB ({bytes} bytes of UTF-8, at most {MAX_TEXT_BYTES}): split the message into several"
            ),
            ChatError::RelayNotReady => write!(
                f,
                "not connected to the relay right now (reconnecting); try again in a moment"
            ),
            ChatError::AckTimeout { seconds } => write!(
                f,
                "the relay did not acknowledge the message within {seconds} s"
            ),
            ChatError::NotFound { what } => f.write_str(what),
            ChatError::BadArgs { message } => f.write_str(message),
            ChatError::FileError { path, message } => write!(f, "{path}: {message}"),
            ChatError::TooLarge { size, limit } => write!(
                f,
                "the file is {size} bytes; at most {limit} may be sent (max_file)"
            ),
            ChatError::Internal { message } => write!(f, "internal error: {message}"),
        }
    }
}

impl From<ChatError> for VarlinkError {
    fn from(error: ChatError) -> Self {
        VarlinkError::coded(
            error.varlink_name().name(),
            &error.code(),
            error.to_string(),
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoomState {
    pub project: String,
    pub joined: bool,
    pub ready: bool,
    pub name: String,
    pub mode: String,
    pub hop_limit: u32,
    pub relay: String,
    pub room: String,
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub kind: String,
    pub ts: i64,
    pub row: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InboxItem {
    pub thread_id: String,
    pub from: String,
    pub role: String,
    pub mentions: Vec<String>,
    pub text: String,
    pub hop_count: i64,
    pub msg_id: String,
    pub label: String,
    pub ts: i64,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedFile {
    pub msg_id: String,
    pub from: String,
    pub name: String,
    pub size: i64,
    pub sha256: String,
    #[serde(default)]
    pub mime: Option<String>,
    pub path: String,
    pub thread_id: String,
    pub ts: i64,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProjectIn {
    pub project: String,
}

impl ProjectIn {
    pub fn new(project: impl Into<String>) -> Self {
        ProjectIn {
            project: project.into(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StartIn {
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct StateOut {
    pub state: RoomState,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct StopOut {
    pub name: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ProjectsOut {
    pub rooms: Vec<RoomState>,
}

#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SayIn {
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A receipt state to wait for: stored, surfaced or answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    /// Seconds to wait at most (1 to `MAX_WAIT`, default `DEFAULT_WAIT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// The consumer family (`family:instance`) of Claude Code's hooks, and of
/// the MCP shim: the daemon tells a receipt's `via` by it.
pub const HOOK_CONSUMERS: &str = "claude-code";
pub const MCP_CONSUMERS: &str = "codex-mcp";

/// How long a Say may wait for receipts, by default and at most (seconds).
pub const DEFAULT_WAIT: i64 = 60;
pub const MAX_WAIT: i64 = 600;

impl SayIn {
    /// How long the daemon may wait for receipts before it answers, in
    /// seconds (what a client adds to its own timeout).
    pub fn wait_seconds(&self) -> u64 {
        match self.wait {
            Some(_) => self.timeout.unwrap_or(DEFAULT_WAIT).clamp(1, MAX_WAIT) as u64,
            None => 0,
        }
    }

    /// The state to wait for and for how long, or why not.
    pub fn checked_wait(&self) -> Result<Option<(ReceiptState, u64)>, ChatError> {
        let Some(state) = &self.wait else {
            return Ok(None);
        };
        let state = match ReceiptState::parse(state) {
            Some(s @ (ReceiptState::Stored | ReceiptState::Surfaced | ReceiptState::Answered)) => s,
            _ => {
                return Err(ChatError::bad_args(format!(
                    "wait {state:?} is not a state to wait for; use stored, surfaced or answered"
                )));
            }
        };
        let timeout = self.timeout.unwrap_or(DEFAULT_WAIT);
        if !(1..=MAX_WAIT).contains(&timeout) {
            return Err(ChatError::bad_args(format!(
                "timeout must be 1 to {MAX_WAIT} seconds (got {timeout})"
            )));
        }
        Ok(Some((state, timeout as u64)))
    }
}

/// How far a message got at one recipient; the order is the order states
/// are reached in, and a receipt never moves back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReceiptState {
    Relayed,
    Stored,
    Surfaced,
    Answered,
}

impl ReceiptState {
    pub const ALL: [ReceiptState; 4] = [
        ReceiptState::Relayed,
        ReceiptState::Stored,
        ReceiptState::Surfaced,
        ReceiptState::Answered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptState::Relayed => "relayed",
            ReceiptState::Stored => "stored",
            ReceiptState::Surfaced => "surfaced",
            ReceiptState::Answered => "answered",
        }
    }

    pub fn parse(text: &str) -> Option<ReceiptState> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// How far one of our messages got at one recipient.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub msg_id: String,
    pub thread_id: String,
    pub recipient: String,
    pub state: String,
    /// For surfaced: hook, mcp or push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub ts: i64,
    /// On answered by a hosted agent session: its turn's tokens and cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// What the answers on one thread cost.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ThreadCost {
    pub thread_id: String,
    /// Our hosted agent's answers to others.
    pub ours: Usage,
    /// Others' agents' answers to our messages.
    pub theirs: Usage,
    pub answers: u64,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct CostsOut {
    pub threads: Vec<ThreadCost>,
    pub ours: Usage,
    pub theirs: Usage,
}

/// A live agent session working in a project, as its hooks registered it.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LiveSession {
    pub agent: String,
    pub session: String,
    pub pid: u32,
    pub pushable: bool,
    pub held: bool,
    pub since: i64,
    pub seen: i64,
}

/// `Debug` leaves the token out: it must never reach a log.
#[derive(Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterIn {
    pub project: String,
    /// claude or codex.
    pub agent: String,
    pub session: String,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// The session holds messages pushed into it for its person (Claude
    /// Code under bypassPermissions, unless its settings accept peers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<bool>,
    /// Codex: its CODEX_HOME, where `codex queue` finds the thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
}

impl std::fmt::Debug for RegisterIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterIn")
            .field("project", &self.project)
            .field("agent", &self.agent)
            .field("session", &self.session)
            .field("pid", &self.pid)
            .field("socket", &self.socket)
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("permission_mode", &self.permission_mode)
            .field("held", &self.held)
            .field("home", &self.home)
            .finish()
    }
}

#[derive(Debug, Deserialize, Serialize)]
pub struct LiveOut {
    pub sessions: Vec<LiveSession>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsIn {
    pub project: String,
    /// A msgId, or a thread id.
    pub id: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ReceiptsOut {
    pub receipts: Vec<Receipt>,
}

#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SayOut {
    pub msg_id: String,
    pub thread_id: String,
    pub delivered: Vec<String>,
    pub offline: Vec<String>,
    pub auto_reply: bool,
    pub hop_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// With `wait`: how far the message got at each recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<Vec<Receipt>>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct WhoOut {
    /// The last presence list the relay sent.
    pub users: Vec<String>,
    /// False while the room is not connected (reconnecting): `users` is
    /// then who was online when the connection was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Per member, what is behind the name: claude, codex, person, daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InboxIn {
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Pending mentions one Inbox reply holds by default, and at most.
pub const INBOX_PAGE: i64 = 100;
pub const INBOX_MAX_PAGE: i64 = 500;

impl InboxIn {
    /// (offset, limit) within their bounds, or what was wrong.
    pub fn checked_page(&self) -> Result<(u64, u64), ChatError> {
        let offset = self.offset.unwrap_or(0);
        let limit = self.limit.unwrap_or(INBOX_PAGE);
        if offset < 0 {
            return Err(ChatError::bad_args(format!(
                "offset must be 0 or more (got {offset})"
            )));
        }
        if !(1..=INBOX_MAX_PAGE).contains(&limit) {
            return Err(ChatError::bad_args(format!(
                "limit must be 1 to {INBOX_MAX_PAGE} (got {limit})"
            )));
        }
        Ok((offset as u64, limit as u64))
    }
}

#[derive(Debug, Deserialize, Serialize)]
pub struct InboxOut {
    /// A page of pending mentions, then the latest handled ones.
    pub items: Vec<InboxItem>,
    /// Pending mentions in all (absent from daemons before paging).
    #[serde(default)]
    pub pending: u64,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ThreadIn {
    pub project: String,
    pub thread: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Accept only: the live session accepting (nothing is pushed back to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl ThreadIn {
    /// One thread of the project, without extra text, reason or text.
    pub fn new(project: impl Into<String>, thread: impl Into<String>) -> Self {
        ThreadIn {
            project: project.into(),
            thread: thread.into(),
            ..ThreadIn::default()
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
pub struct AcceptOut {
    pub items: Vec<InboxItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct RejectOut {
    pub rejected: u64,
    pub to: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct AppendOut {
    pub msg_id: String,
    pub thread_id: String,
    pub delivered: Vec<String>,
    pub offline: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModeIn {
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeOut {
    pub mode: String,
    pub hop_limit: u32,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HistoryIn {
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// History's bounds, as the interface file states them.
pub const HISTORY_DEFAULT: i64 = 50;
pub const HISTORY_MAX: i64 = 500;

impl HistoryIn {
    /// The limit asked for, or the default. One outside 1 to 500 is refused,
    /// not quietly clamped: `limit=-1` answering `[]` (or one row) would
    /// look like an empty history.
    pub fn checked_limit(&self) -> Result<i64, ChatError> {
        match self.limit {
            None => Ok(HISTORY_DEFAULT),
            Some(limit) if (1..=HISTORY_MAX).contains(&limit) => Ok(limit),
            Some(limit) => Err(ChatError::bad_args(format!(
                "limit must be 1 to {HISTORY_MAX} (got {limit})"
            ))),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
pub struct HistoryOut {
    pub items: Vec<Value>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct FilesOut {
    pub files: Vec<ReceivedFile>,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NotificationsIn {
    pub project: String,
    pub consumer: String,
    /// At most this many events (0 only registers the consumer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct NotificationsOut {
    pub events: Vec<Event>,
    /// More events wait beyond this reply's bound.
    #[serde(default)]
    pub more: bool,
}

#[derive(Debug, Deserialize, Serialize, Default)]
pub struct WatchOut {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RoomState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct TasksOut {
    pub tasks: Vec<Value>,
}
