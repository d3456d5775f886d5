//! `nexscopectl mcp`: the stdio MCP server that lets Codex (or any MCP client)
//! into the project's room, with v1's 14 `nexscope_*` tools: same inputs,
//! same texts and JSON shapes, errors as `isError` with
//! `[error:<code>] <message>` (docs/protocol.md §3). rmcp speaks the
//! protocol (every version a client may ask for); each tool is a thin
//! adapter over the same varlink calls nexscopectl makes. `nexscope_watch`
//! waits on Watch, not a polling loop.
//!
//! What rmcp leaves open is closed here: a line that is not JSON gets the
//! JSON-RPC parse error (-32700, id null) rather than silence, and a tool
//! refuses arguments it does not take instead of ignoring them (every schema
//! says `additionalProperties: false`). The stdio side is `stdio`.

mod stdio;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::chat::{join_names, list, offline};
use nexscope_proto::api::Empty;
use nexscope_proto::api::chat::*;
use nexscope_proto::api::daemon::{self, StatusOut};
use nexscope_proto::render::{history_line, render_mcp};
use nexscope_proto::time::iso;
use nexscope_proto::varlink::Request;
use nexscope_proto::varlink::client::{ClientError, Connection};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The family of queues MCP clients drain, apart from Claude Code's hooks;
/// each server process (one per Codex session) has its own queue in it, so
/// two sessions of one project each see every event.
const CONSUMER_FAMILY: &str = MCP_CONSUMERS;
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Files wait for their ack up to 90 s (v1: 120 s for the whole call).
const FILE_TIMEOUT: Duration = Duration::from_secs(120);
const FRESH_MS: i64 = 5 * 60 * 1000;

#[derive(Clone)]
pub struct Shim {
    socket: PathBuf,
    project: String,
    consumer: String,
    /// Inside an agent nexscoped hosts: auto tasks are the responder's, not
    /// this session's, so they are neither shown nor required.
    hosted: bool,
    tool_router: ToolRouter<Shim>,
}

/// A tool's failure: `[error:<code>] <message>`.
struct Failure {
    code: String,
    message: String,
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Remote(remote) if remote.code() == "not_joined" => Failure {
                code: "not_joined".into(),
                message: "nexscope is not joined to the chat room. Call nexscope_start first."
                    .into(),
            },
            ClientError::Remote(remote) => Failure {
                code: remote.code(),
                message: remote.describe(),
            },
            // Not "not joined": the room may well be joined, we just cannot
            // see the daemon (a bare environment points at the wrong socket).
            ClientError::Connect { path, source } => Failure {
                code: "daemon_unreachable".into(),
                message: format!(
                    "cannot reach nexscoped at {}: {source}; is it running (`nexscopectl daemon status`), \
                     and does this process see the same XDG_RUNTIME_DIR or NEXSCOPE_SOCKET as your shell?",
                    path.display()
                ),
            },
            other => Failure {
                code: "internal".into(),
                message: other.to_string(),
            },
        }
    }
}

type Outcome = Result<String, Failure>;

fn finish(outcome: Outcome) -> CallToolResult {
    match outcome {
        Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
        Err(f) => CallToolResult::error(vec![ContentBlock::text(format!(
            "[error:{}] {}",
            f.code, f.message
        ))]),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartArgs {
    /// Your name in the room (1 to 32 of a-z, A-Z, 0-9, _ and -).
    name: Option<String>,
    /// manual or auto.
    mode: Option<String>,
}

/// One name or several.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Targets {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SayArgs {
    /// Recipients; omitted or empty: everyone.
    to: Option<Targets>,
    /// At most 4096 bytes of UTF-8.
    text: Option<String>,
    /// user or userAgent (the default).
    role: Option<String>,
    /// Reply on this thread.
    thread_id: Option<String>,
    /// An absolute path of a file to send (text is its caption).
    file_path: Option<String>,
    /// Wait until every recipient reached this state: stored, surfaced or answered.
    wait: Option<String>,
    /// Seconds to wait at most with wait, 1 to 600 (default 60).
    timeout: Option<i64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsArgs {
    /// A msgId, or a thread id (then every message of yours on it).
    id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeArgs {
    /// manual or auto; omitted: show the mode.
    mode: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// How many, 1 to 500 (default 50).
    limit: Option<i64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxArgs {
    /// Skip this many pending mentions (the next page; default 0).
    offset: Option<i64>,
    /// Pending mentions to show, 1 to 500 (default 100).
    limit: Option<i64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ThreadArgs {
    thread_id: String,
    extra: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RejectArgs {
    thread_id: String,
    reason: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppendArgs {
    thread_id: String,
    text: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WatchArgs {
    /// How long to wait for events, 1 to 120 seconds (default 30).
    timeout_seconds: Option<u64>,
}

impl Shim {
    pub fn new(socket: PathBuf, project: String) -> Shim {
        Shim {
            socket,
            project,
            consumer: format!("{CONSUMER_FAMILY}:{}", std::process::id()),
            hosted: nexscope_proto::api::agent::hosted(),
            tool_router: closed_schemas(Self::tool_router()),
        }
    }

    /// A blocking varlink call, off the async runtime.
    async fn call<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        request: impl Request + Send + 'static,
        timeout: Duration,
    ) -> Result<T, Failure> {
        let socket = self.socket.clone();
        tokio::task::spawn_blocking(move || -> Result<T, Failure> {
            let mut connection = Connection::connect(&socket, Some(timeout))?;
            Ok(connection.request(&request)?)
        })
        .await
        .map_err(|e| Failure {
            code: "internal".into(),
            message: e.to_string(),
        })?
    }

    /// The auto tasks this session must answer: none in a hosted agent.
    async fn auto_tasks(&self) -> Result<Vec<Value>, Failure> {
        if self.hosted {
            return Ok(Vec::new());
        }
        Ok(self
            .call::<TasksOut>(Method::Tasks(self.project()), CALL_TIMEOUT)
            .await?
            .tasks)
    }

    fn project(&self) -> ProjectIn {
        ProjectIn::new(&self.project)
    }

    async fn status(&self) -> Option<RoomState> {
        self.call::<StateOut>(Method::Status(self.project()), CALL_TIMEOUT)
            .await
            .ok()
            .map(|s| s.state)
    }

    /// Drained events, tasks, online and session: what poll and watch return.
    async fn poll_value(&self) -> Value {
        let Some(state) = self.status().await else {
            return json!({ "events": [], "auto_tasks": [], "daemon": "not_running" });
        };
        let events = self
            .call::<NotificationsOut>(
                Method::Notifications(NotificationsIn {
                    project: self.project.clone(),
                    consumer: self.consumer.clone(),
                    limit: None,
                }),
                CALL_TIMEOUT,
            )
            .await
            .map(|n| n.events)
            .unwrap_or_default();
        let tasks = self.auto_tasks().await.unwrap_or_default();
        json!({
            "events": events.iter().map(|e| render_mcp(&e.row)).collect::<Vec<_>>(),
            "auto_tasks": tasks,
            "online": state.users,
            "session": { "name": state.name, "mode": state.mode, "hopLimit": state.hop_limit },
        })
    }

    async fn start(&self, args: StartArgs) -> Outcome {
        if let Some(state) = self.status().await {
            let pid = self
                .call::<StatusOut>(daemon::Method::Status(Empty {}), CALL_TIMEOUT)
                .await
                .map(|s| s.status.pid)
                .unwrap_or(0);
            return Ok(format!(
                "already running: name={}, pid={pid}, mode={}. Call nexscope_stop first to restart.",
                state.name, state.mode
            ));
        }
        let input = StartIn {
            project: self.project.clone(),
            name: args.name,
            mode: args.mode,
            ..StartIn::default()
        };
        let state = self
            .call::<StateOut>(Method::Start(input), CALL_TIMEOUT)
            .await?
            .state;
        Ok(format!(
            "joined as {} (mode={}), online: {}",
            state.name,
            state.mode,
            list(&state.users)
        ))
    }

    async fn stop(&self) -> Outcome {
        if self.status().await.is_none() {
            return Ok("nexscope is not running.".into());
        }
        let pid = self
            .call::<StatusOut>(daemon::Method::Status(Empty {}), CALL_TIMEOUT)
            .await
            .map(|s| s.status.pid)
            .unwrap_or(0);
        let stopped = self
            .call::<StopOut>(Method::Stop(self.project()), CALL_TIMEOUT)
            .await?;
        Ok(format!(
            "left chat room (was \"{}\", pid {pid}).",
            stopped.name
        ))
    }

    async fn say(&self, args: SayArgs) -> Outcome {
        let to = match args.to {
            None => Vec::new(),
            Some(Targets::One(name)) => vec![name],
            Some(Targets::Many(names)) => names,
        };
        if args.text.as_deref().unwrap_or("").trim().is_empty() && args.file_path.is_none() {
            return Err(Failure {
                code: "bad_args".into(),
                message: "give text, filePath, or both".into(),
            });
        }
        let input = SayIn {
            project: self.project.clone(),
            text: args.text,
            to: Some(to.clone()),
            role: Some(args.role.unwrap_or_else(|| "userAgent".into())),
            thread: args.thread_id,
            hop_count: None,
            file: args.file_path,
            wait: args.wait,
            timeout: args.timeout,
        };
        let patience = if input.file.is_some() {
            FILE_TIMEOUT
        } else {
            CALL_TIMEOUT
        };
        let patience = patience + Duration::from_secs(input.wait_seconds());
        let said = self.call::<SayOut>(Method::Say(input), patience).await?;
        Ok(crate::chat::said_text(&said, &to))
    }

    async fn history(&self, args: HistoryArgs) -> Outcome {
        let limit = args.limit.unwrap_or(50).clamp(1, 500);
        let history = self
            .call::<HistoryOut>(
                Method::History(HistoryIn {
                    project: self.project.clone(),
                    limit: Some(limit),
                }),
                CALL_TIMEOUT,
            )
            .await?;
        if history.items.is_empty() {
            return Ok("(no local history)".into());
        }
        Ok(history
            .items
            .iter()
            .map(|m| history_line(m, true))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    async fn before_stop(&self) -> Outcome {
        let Some(state) = self.status().await else {
            return Ok(pretty(
                &json!({ "can_stop": true, "reason": "daemon not running" }),
            ));
        };
        if state.mode != "auto" {
            return Ok(pretty(
                &json!({ "can_stop": true, "reason": format!("mode={}; no auto-reply obligations", state.mode) }),
            ));
        }
        let tasks = self.auto_tasks().await?;
        let now = nexscope_proto::time::now_ms() as i64;
        let (fresh, stale): (Vec<Value>, Vec<Value>) = tasks
            .into_iter()
            .partition(|t| now - t["ts"].as_i64().unwrap_or(0) < FRESH_MS);
        if fresh.is_empty() {
            return Ok(pretty(
                &json!({ "can_stop": true, "reason": "no fresh auto tasks", "expired": stale.len() }),
            ));
        }
        Ok(pretty(&json!({
            "can_stop": false,
            "reason": format!("{} pending @mention(s) require a reply in auto mode", fresh.len()),
            "auto_tasks": fresh,
            "instruction": "For each task, call nexscope_say with to=task.from, threadId=task.threadId and your reply, then call nexscope_before_stop again.",
        })))
    }
}

#[tool_router]
impl Shim {
    #[tool(description = "Join this project's chat room.")]
    async fn nexscope_start(&self, Parameters(args): Parameters<StartArgs>) -> CallToolResult {
        finish(self.start(args).await)
    }

    #[tool(description = "Leave the chat room (inbox, history and files stay).")]
    async fn nexscope_stop(&self) -> CallToolResult {
        finish(self.stop().await)
    }

    #[tool(description = "Send a message or a file to the room; to omitted or empty: everyone.")]
    async fn nexscope_say(&self, Parameters(args): Parameters<SayArgs>) -> CallToolResult {
        finish(self.say(args).await)
    }

    #[tool(
        description = "How far a message (by msgId), or each of your messages on a thread, got at each recipient: relayed, stored, surfaced, answered."
    )]
    async fn nexscope_receipts(
        &self,
        Parameters(args): Parameters<ReceiptsArgs>,
    ) -> CallToolResult {
        let input = ReceiptsIn {
            project: self.project.clone(),
            id: args.id,
        };
        finish(
            self.call::<ReceiptsOut>(Method::Receipts(input), CALL_TIMEOUT)
                .await
                .map(|r| crate::chat::render_receipts(&r.receipts)),
        )
    }

    #[tool(description = "Who is online.")]
    async fn nexscope_who(&self) -> CallToolResult {
        finish(
            self.call::<WhoOut>(Method::Who(self.project()), CALL_TIMEOUT)
                .await
                .map(|w| {
                    if w.users.is_empty() {
                        "(empty room)".into()
                    } else {
                        format!("online ({}): {}", w.users.len(), join_names(&w.users, ", "))
                    }
                }),
        )
    }

    #[tool(description = "Show the mode, or set it (manual or auto).")]
    async fn nexscope_mode(&self, Parameters(args): Parameters<ModeArgs>) -> CallToolResult {
        let setting = args.mode.is_some();
        finish(
            self.call::<ModeOut>(
                Method::Mode(ModeIn {
                    project: self.project.clone(),
                    mode: args.mode,
                }),
                CALL_TIMEOUT,
            )
            .await
            .map(|m| {
                if setting {
                    format!("mode switched to {}", m.mode)
                } else {
                    format!("mode={} (hopLimit={})", m.mode, m.hop_limit)
                }
            }),
        )
    }

    #[tool(description = "The latest messages in and out.")]
    async fn nexscope_history(&self, Parameters(args): Parameters<HistoryArgs>) -> CallToolResult {
        finish(self.history(args).await)
    }

    #[tool(description = "Mentions waiting for you (manual mode), and the latest handled ones.")]
    async fn nexscope_inbox(&self, Parameters(args): Parameters<InboxArgs>) -> CallToolResult {
        let offset = args.offset.unwrap_or(0);
        let input = InboxIn {
            project: self.project.clone(),
            offset: Some(offset),
            limit: args.limit,
        };
        finish(
            self.call::<InboxOut>(Method::Inbox(input), CALL_TIMEOUT)
                .await
                .map(|inbox| {
                    let total = inbox.pending;
                    let (pending, done): (Vec<_>, Vec<_>) =
                        inbox.items.into_iter().partition(|i| i.status == "pending");
                    let archive = &done[done.len().saturating_sub(10)..];
                    let shown = offset.max(0) as u64 + pending.len() as u64;
                    let mut reply =
                        json!({ "pendingTotal": total, "pending": pending, "archive": archive });
                    if shown < total {
                        reply["more"] = json!(format!(
                            "{} more pending: call nexscope_inbox with offset {shown}",
                            total - shown
                        ));
                    }
                    pretty(&reply)
                }),
        )
    }

    #[tool(description = "Take a thread's pending mentions as a request.")]
    async fn nexscope_accept(&self, Parameters(args): Parameters<ThreadArgs>) -> CallToolResult {
        let input = ThreadIn {
            extra: args.extra,
            ..ThreadIn::new(&self.project, &args.thread_id)
        };
        finish(self.call::<AcceptOut>(Method::Accept(input), CALL_TIMEOUT).await.map(|accepted| {
            pretty(&json!({
                "accepted": accepted.items.len(),
                "threadId": args.thread_id,
                "extra": accepted.extra,
                "messages": accepted.items.iter().map(|i| json!({ "from": i.label, "ts": iso(i.ts), "text": i.text })).collect::<Vec<_>>(),
                "hint": format!("Treat these as a fresh request; when done, reply with nexscope_say threadId={}.", args.thread_id),
            }))
        }))
    }

    #[tool(description = "Decline a thread's pending mentions and tell their senders.")]
    async fn nexscope_reject(&self, Parameters(args): Parameters<RejectArgs>) -> CallToolResult {
        let input = ThreadIn {
            reason: args.reason,
            ..ThreadIn::new(&self.project, &args.thread_id)
        };
        finish(
            self.call::<RejectOut>(Method::Reject(input), CALL_TIMEOUT)
                .await
                .map(|r| {
                    format!(
                        "rejected {} message(s) on thread={}; refusal sent to {}.",
                        r.rejected,
                        args.thread_id,
                        list(&r.to)
                    )
                }),
        )
    }

    #[tool(description = "Add to a thread as the user, to everyone who took part in it.")]
    async fn nexscope_append(&self, Parameters(args): Parameters<AppendArgs>) -> CallToolResult {
        let input = ThreadIn {
            text: Some(args.text),
            ..ThreadIn::new(&self.project, &args.thread_id)
        };
        finish(
            self.call::<AppendOut>(Method::Append(input), CALL_TIMEOUT)
                .await
                .map(|a| {
                    format!(
                        "appended (role=user) to thread={}; delivered: {}{}",
                        args.thread_id,
                        list(&a.delivered),
                        offline(&a.offline)
                    )
                }),
        )
    }

    #[tool(description = "Restart nexscoped so that a newly installed version runs.")]
    async fn nexscope_update(&self) -> CallToolResult {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("nexscopectl"));
        let output = tokio::process::Command::new(exe)
            .args(["daemon", "restart"])
            .output()
            .await;
        finish(match output {
            Ok(o) if o.status.success() => {
                Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
            }
            Ok(o) => Err(Failure {
                code: format!("exit_{}", o.status.code().unwrap_or(1)),
                message: String::from_utf8_lossy(&o.stderr).trim().to_string(),
            }),
            Err(e) => Err(Failure {
                code: "internal".into(),
                message: e.to_string(),
            }),
        })
    }

    #[tool(
        description = "New room events since the last poll, waiting auto tasks, who is online. Call at the start of every turn."
    )]
    async fn nexscope_poll(&self) -> CallToolResult {
        finish(Ok(pretty(&self.poll_value().await)))
    }

    #[tool(
        description = "Wait for room events (up to timeoutSeconds, default 30), then return them as nexscope_poll does."
    )]
    async fn nexscope_watch(&self, Parameters(args): Parameters<WatchArgs>) -> CallToolResult {
        let timeout = Duration::from_secs(args.timeout_seconds.unwrap_or(30).clamp(1, 120));
        let mut first = self.poll_value().await;
        let ready = first.get("daemon").is_some()
            || first["events"].as_array().is_some_and(|e| !e.is_empty());
        if ready {
            if first.get("daemon").is_none() {
                first["timed_out"] = json!(false);
            }
            return finish(Ok(pretty(&first)));
        }
        // Wait on the Watch stream for the next event, not a sleep loop.
        let (socket, project) = (self.socket.clone(), self.project.clone());
        let woke = tokio::task::spawn_blocking(move || {
            let Ok(mut stream) = Connection::connect(&socket, Some(timeout)) else {
                return false;
            };
            let mut woke = false;
            let _ = stream.request_more(&Method::Watch(ProjectIn::new(project)), |reply| {
                woke = reply.get("event").is_some_and(|e| !e.is_null());
                !woke
            });
            woke
        })
        .await
        .unwrap_or(false);
        let mut value = self.poll_value().await;
        if value.get("daemon").is_some() {
            value["daemon"] = json!("died_while_watching");
        }
        value["timed_out"] = json!(!woke);
        finish(Ok(pretty(&value)))
    }

    #[tool(
        description = "Whether the turn may end: in auto mode, fresh @mentions need a reply first. Call at the end of every turn until can_stop is true."
    )]
    async fn nexscope_before_stop(&self) -> CallToolResult {
        finish(self.before_stop().await)
    }
}

/// Every tool's input schema says `additionalProperties: false`, the tools
/// without arguments too (rmcp leaves theirs open).
fn closed_schemas(mut router: ToolRouter<Shim>) -> ToolRouter<Shim> {
    for route in router.map.values_mut() {
        Arc::make_mut(&mut route.attr.input_schema)
            .insert("additionalProperties".into(), Value::Bool(false));
    }
    router
}

/// Arguments a tool does not take are refused by name, with the ones it
/// does take: a misspelt `threadId` must not quietly start a new thread.
fn known_arguments(tool: &Tool, arguments: Option<&JsonObject>) -> Result<(), Failure> {
    let allowed: Vec<&str> = tool
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let Some(unknown) = arguments
        .into_iter()
        .flat_map(|arguments| arguments.keys())
        .find(|key| !allowed.contains(&key.as_str()))
    else {
        return Ok(());
    };
    let allowed = if allowed.is_empty() {
        "it takes none".to_string()
    } else {
        format!("allowed: {}", allowed.join(", "))
    };
    Err(Failure {
        code: "bad_args".into(),
        message: format!("{} has no argument {unknown:?}; {allowed}", tool.name),
    })
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Shim {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("nexscope", "0.2.0"))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(tool) = self.tool_router.get(&request.name) {
            if let Err(failure) = known_arguments(tool, request.arguments.as_ref()) {
                return Ok(finish(Err(failure)).into());
            }
        }
        let context = ToolCallContext::new(self, request, context);
        self.tool_router.call(context).await
    }
}

/// Serves until the client closes stdin (or rmcp stops).
async fn serve(socket: PathBuf, project: String) -> Result<(), Box<dyn std::error::Error>> {
    let (stdio, transport) = stdio::open();
    let served = async {
        let service = Shim::new(socket, project).serve(transport).await?;
        service.waiting().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    }
    .await;
    stdio.close().await;
    served
}

/// Serves MCP on stdin/stdout until the client closes it.
pub fn run(socket: PathBuf, project: String) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nexscopectl mcp: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(socket, project));
    // A read of stdin may still wait in a blocking thread; do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nexscopectl mcp: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
