//! `io.nexscope.Agent`: headless agent sessions. The same types carry the
//! nx-ce WebSocket gateway's frames, so a turn looks alike on both.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Empty;
use crate::varlink::VarlinkError;

crate::interface! {
    "io.nexscope.Agent";
    methods {
        Query(QueryIn),
        Cancel(SessionIn),
        Sessions(Empty),
        Status(SessionIn),
        Close(CloseIn),
        Skills(SessionIn),
        Usage(UsageIn),
    }
    errors {
        BadArgs,
        NoActiveTurn,
        NotFound,
        BackendMismatch,
        CreateFailed,
        Stopped,
        Internal,
    }
}

/// Set in the environment of every agent process nexscoped hosts (and so of
/// its hooks and MCP servers): the nexscope hooks and the MCP shim stand
/// aside there, so a hosted agent neither drains the user's own room queue
/// nor answers mentions on its own; the room reaches it only through the
/// daemon (the responder).
pub const HOSTED_ENV: &str = "NEXSCOPE_AGENT_HOST";

/// Whether this process runs inside an agent that nexscoped hosts.
pub fn hosted() -> bool {
    std::env::var_os(HOSTED_ENV).is_some_and(|v| !v.is_empty())
}

/// The session name when none is given (nx-ce's).
pub const DEFAULT_SESSION: &str = "default";
/// Claude Code's permission modes, the only ones a query may ask for.
pub const PERMISSION_MODES: &[&str] = &[
    "default",
    "acceptEdits",
    "bypassPermissions",
    "plan",
    "dontAsk",
    "auto",
];
/// Prompts longer than this are refused: a prompt is typed or pasted, and
/// the agent's own context is far smaller.
pub const MAX_PROMPT_BYTES: usize = 1024 * 1024;

/// Which agent CLI hosts a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Claude,
    Codex,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Claude => "claude",
            Backend::Codex => "codex",
        }
    }

    pub fn parse(text: &str) -> Result<Backend, AgentError> {
        match text {
            "claude" => Ok(Backend::Claude),
            "codex" => Ok(Backend::Codex),
            other => Err(AgentError::bad_args(format!(
                "unknown backend {other:?}: use claude or codex"
            ))),
        }
    }
}

/// Names a session: `session` (default "default") in `cwd` (default: the
/// caller's directory for nexscopectl, the gateway's for WebSocket clients).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryIn {
    #[serde(flatten)]
    pub target: SessionRef,
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// Only when the session is created; later queries must match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<Vec<String>>,
    /// Echoed on every event of this query's turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Token counts, as the agent reported them (Claude's `result.usage`,
/// Codex's `tokenUsage.last`), summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cost_usd: f64,
}

impl Usage {
    /// Adds `other`; saturating, since a peer's receipt can claim anything.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_creation_input_tokens = self
            .cache_creation_input_tokens
            .saturating_add(other.cache_creation_input_tokens);
        self.cache_read_input_tokens = self
            .cache_read_input_tokens
            .saturating_add(other.cache_read_input_tokens);
        self.cost_usd += other.cost_usd;
    }
}

/// One event of a turn, in nx-ce's shape (`type` tag, camelCase fields,
/// `time` in epoch ms strictly increasing per session). `toolResult` and the
/// `usage`/`error`/`cancelled` of `done` are ours; nx-ce clients ignore them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    TurnStart {
        turn: String,
        time: u64,
    },
    Init {
        #[serde(flatten)]
        metadata: serde_json::Map<String, Value>,
        time: u64,
    },
    Text {
        content: String,
        time: u64,
    },
    Thinking {
        content: String,
        time: u64,
    },
    ToolUse {
        name: String,
        input: Value,
        id: String,
        time: u64,
    },
    ToolResult {
        id: String,
        content: String,
        #[serde(rename = "isError")]
        is_error: bool,
        time: u64,
    },
    Done {
        #[serde(rename = "sessionId")]
        session_id: Option<String>,
        time: u64,
        usage: Usage,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cancelled: bool,
    },
}

/// One event of a Query stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOut {
    pub event: TurnEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A session as `Sessions`/`Status` report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub name: String,
    pub cwd: String,
    pub backend: Backend,
    /// The agent's own conversation id (Claude session, Codex thread).
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub permission_mode: String,
    pub queue_length: u64,
    pub processing: bool,
    /// "running" with a live agent process, "stopped" with only a record.
    pub lifecycle_state: String,
    pub live: bool,
    pub turns: u64,
    pub usage: Usage,
    pub started_at: u64,
    pub updated_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionsOut {
    pub sessions: Vec<SessionInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusOut {
    pub session: Option<SessionInfo>,
}

/// The parameters of Cancel, Status and Skills: exactly a session reference.
/// (`SessionRef` itself is also flattened into queries, so it cannot refuse
/// unknown fields.)
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

impl From<SessionRef> for SessionIn {
    fn from(target: SessionRef) -> Self {
        SessionIn {
            session: target.session,
            cwd: target.cwd,
        }
    }
}

impl SessionIn {
    pub fn target(&self) -> SessionRef {
        SessionRef {
            session: self.session.clone(),
            cwd: self.cwd.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Without a cwd, every live session of that name is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Also forget the conversation: the next query starts a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forget: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloseOut {
    pub closed: Vec<SessionInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelOut {
    pub session: SessionInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SkillsOut {
    pub metadata: serde_json::Map<String, Value>,
}

/// One finished turn, as kept in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnRecord {
    pub turn: String,
    pub started_at: u64,
    pub finished_at: u64,
    pub model: Option<String>,
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub cancelled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// How many of the latest turns to list (0: totals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageOut {
    pub session: SessionInfo,
    pub turns: Vec<TurnRecord>,
}

/// What went wrong with an agent request. Validation texts are nx-ce's,
/// word for word, because its clients show or match them.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentError {
    MissingPrompt,
    BadPermissionMode { value: String },
    BadModel,
    BadArgs { message: String },
    BadCwd { cwd: String, message: String },
    NoActiveTurn,
    NotFound { session: String, cwd: String },
    BackendMismatch { session: String, backend: Backend },
    CreateFailed { message: String },
    Stopped,
    Internal { message: String },
}

impl AgentError {
    pub fn bad_args(message: impl Into<String>) -> Self {
        AgentError::BadArgs {
            message: message.into(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        AgentError::Internal {
            message: message.to_string(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AgentError::MissingPrompt
            | AgentError::BadPermissionMode { .. }
            | AgentError::BadModel
            | AgentError::BadArgs { .. }
            | AgentError::BadCwd { .. } => "bad_args",
            AgentError::NoActiveTurn => "no_active_turn",
            AgentError::NotFound { .. } => "not_found",
            AgentError::BackendMismatch { .. } => "backend_mismatch",
            AgentError::CreateFailed { .. } => "create_failed",
            AgentError::Stopped => "stopped",
            AgentError::Internal { .. } => "internal",
        }
    }

    pub fn varlink_name(&self) -> ErrorName {
        match self {
            AgentError::MissingPrompt
            | AgentError::BadPermissionMode { .. }
            | AgentError::BadModel
            | AgentError::BadArgs { .. }
            | AgentError::BadCwd { .. } => ErrorName::BadArgs,
            AgentError::NoActiveTurn => ErrorName::NoActiveTurn,
            AgentError::NotFound { .. } => ErrorName::NotFound,
            AgentError::BackendMismatch { .. } => ErrorName::BackendMismatch,
            AgentError::CreateFailed { .. } => ErrorName::CreateFailed,
            AgentError::Stopped => ErrorName::Stopped,
            AgentError::Internal { .. } => ErrorName::Internal,
        }
    }
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::MissingPrompt => f.write_str("query missing prompt"),
            AgentError::BadPermissionMode { value } => write!(
                f,
                "Invalid permissionMode: \"{value}\". Must be one of: {}",
                PERMISSION_MODES.join(", ")
            ),
            AgentError::BadModel => f.write_str("model must be a non-empty string"),
            AgentError::BadArgs { message } => f.write_str(message),
            AgentError::BadCwd { cwd, message } => {
                write!(f, "cwd {cwd:?} {message}: give an existing directory")
            }
            AgentError::NoActiveTurn => f.write_str("no active turn to cancel"),
            AgentError::NotFound { session, cwd } => {
                write!(f, "no agent session {session:?} in {cwd}")
            }
            AgentError::BackendMismatch { session, backend } => write!(
                f,
                "session {session:?} runs on {}; close it with --forget to start it on another backend",
                backend.as_str()
            ),
            AgentError::CreateFailed { message } => write!(f, "session create failed: {message}"),
            AgentError::Stopped => f.write_str("the daemon is shutting down"),
            AgentError::Internal { message } => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for AgentError {}

impl From<AgentError> for VarlinkError {
    fn from(error: AgentError) -> Self {
        VarlinkError::coded(error.varlink_name().name(), error.code(), error.to_string())
    }
}

/// Checks a query the way nx-ce does, in its order; the first failure wins.
pub fn validate_query(
    prompt: &str,
    model: Option<&Value>,
    mode: Option<&Value>,
) -> Result<(), AgentError> {
    if prompt.is_empty() {
        return Err(AgentError::MissingPrompt);
    }
    if prompt.len() > MAX_PROMPT_BYTES {
        return Err(AgentError::bad_args(format!(
            "prompt is {} bytes; at most {MAX_PROMPT_BYTES} are allowed",
            prompt.len()
        )));
    }
    match mode {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if PERMISSION_MODES.contains(&m.as_str()) => {}
        Some(Value::String(m)) => return Err(AgentError::BadPermissionMode { value: m.clone() }),
        Some(other) => {
            return Err(AgentError::BadPermissionMode {
                value: other.to_string(),
            });
        }
    }
    match model {
        None => Ok(()),
        Some(Value::String(m)) if !m.trim().is_empty() => Ok(()),
        Some(_) => Err(AgentError::BadModel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_texts_are_nx_ce_s() {
        let check = |prompt: &str, model: Option<Value>, mode: Option<Value>| {
            validate_query(prompt, model.as_ref(), mode.as_ref())
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            check("", None, None).as_deref(),
            Some("query missing prompt")
        );
        assert_eq!(
            check("hi", None, Some(json!("yolo"))).as_deref(),
            Some(
                "Invalid permissionMode: \"yolo\". Must be one of: default, acceptEdits, bypassPermissions, plan, dontAsk, auto"
            )
        );
        assert_eq!(check("hi", None, Some(Value::Null)), None);
        for bad in [json!(""), json!("  "), json!(123), Value::Null] {
            assert_eq!(
                check("hi", Some(bad), None).as_deref(),
                Some("model must be a non-empty string")
            );
        }
        assert_eq!(
            check("hi", Some(json!("claude-sonnet-4-6")), Some(json!("plan"))),
            None
        );
    }

    #[test]
    fn done_keeps_nx_ce_fields_and_adds_ours() {
        let done = TurnEvent::Done {
            session_id: Some("s".into()),
            time: 5,
            usage: Usage::default(),
            error: None,
            cancelled: false,
        };
        let value = serde_json::to_value(&done).unwrap();
        assert_eq!(value["type"], "done");
        assert_eq!(value["sessionId"], "s");
        assert_eq!(value["time"], 5);
        assert_eq!(value["usage"]["inputTokens"], 0);
        assert!(value.get("cancelled").is_none());
    }
}
