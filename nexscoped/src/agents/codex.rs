//! Codex through `codex app-server`, as Codex 0.169.0 was observed to speak
//! it: JSON-RPC lines without the "jsonrpc" field. One process and one
//! thread per live session; a turn is
//! `turn/start` … `turn/completed`; cancel is `turn/interrupt`.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::process::Command;

use super::claude::str_field;
use super::driver::{BoxFuture, Driver, StartError};
use super::process::{AgentProcess, Lines};
use super::{Output, SpawnSpec};
use nexscope_proto::api::agent::Usage;

/// How long the app-server gets to answer a request of ours.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Codex {
    process: AgentProcess,
    lines: Lines,
    next_id: u64,
    /// Notifications that arrived while we waited for a response.
    buffered: VecDeque<Value>,
    pub thread_id: String,
    turn_id: Option<String>,
    /// Our `turn/interrupt` in flight, and whether it must be sent again:
    /// right after `turn/start` answers, Codex may not have made the turn
    /// active yet and refuses ("no active turn to interrupt").
    interrupt: Option<u64>,
    interrupt_again: bool,
    thread: Value,
    sandbox: &'static str,
    /// The thread's token total as last reported; a turn's usage is what the
    /// total grew by (after a resume the server replays the stored total).
    total: Usage,
    turn_usage: Usage,
    turn_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CodexError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("codex app-server refused {method}: {message}")]
    Refused { method: String, message: String },
    #[error("codex app-server did not answer {method} within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout { method: String },
    #[error("codex app-server exited: {0}")]
    Exited(String),
}

impl Codex {
    /// Starts the app-server, initializes it and starts (or resumes) the
    /// session's thread. `known_total` is what the resumed thread has used so
    /// far (the server replays it); a new thread starts from zero.
    pub async fn spawn(spec: &SpawnSpec, known_total: Usage) -> Result<Codex, CodexError> {
        let mut command = Command::new(&spec.program);
        command.arg("app-server").current_dir(&spec.cwd);
        let (process, lines) = AgentProcess::spawn(command, format!("codex:{}", spec.label))?;
        let mut codex = Codex {
            process,
            lines,
            next_id: 0,
            buffered: VecDeque::new(),
            thread_id: String::new(),
            turn_id: None,
            interrupt: None,
            interrupt_again: false,
            thread: Value::Null,
            sandbox: sandbox_for(&spec.permission_mode),
            total: if spec.resume.is_some() {
                known_total
            } else {
                Usage::default()
            },
            turn_usage: Usage::default(),
            turn_error: None,
        };
        codex
            .request(
                "initialize",
                json!({"clientInfo": {"name": "nexscoped", "title": "nexscope", "version": nexscope_proto::api::service::VERSION}}),
            )
            .await?;
        codex
            .process
            .send(&json!({"method": "initialized"}))
            .await?;
        let result = codex.open_thread(spec).await?;
        codex.thread = result.get("thread").cloned().unwrap_or(Value::Null);
        codex.thread_id = str_field(&codex.thread, "id").unwrap_or_default();
        Ok(codex)
    }

    /// Starts the session's thread, or resumes it. A thread Codex no longer
    /// has (its home was wiped) becomes a new one: a new conversation beats
    /// failing every query.
    async fn open_thread(&mut self, spec: &SpawnSpec) -> Result<Value, CodexError> {
        let mut params = json!({
            "cwd": spec.cwd,
            "approvalPolicy": "never",
            "sandbox": self.sandbox,
        });
        if let Some(model) = &spec.model {
            params["model"] = json!(model);
        }
        let Some(thread) = &spec.resume else {
            return self.request("thread/start", params).await;
        };
        let mut resume = params.clone();
        resume["threadId"] = json!(thread);
        match self.request("thread/resume", resume).await {
            Err(CodexError::Refused { message, .. }) => {
                tracing::warn!(agent = %self.process.label, %thread, %message, "codex cannot resume the thread; starting a new one");
                self.total = Usage::default();
                self.request("thread/start", params).await
            }
            resumed => resumed,
        }
    }

    /// nx-ce's init fields, as far as a Codex thread has them.
    fn metadata(&self, cwd: &str, permission_mode: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("sessionId".into(), json!(self.thread_id));
        m.insert(
            "model".into(),
            self.thread.get("model").cloned().unwrap_or(Value::Null),
        );
        m.insert("cwd".into(), json!(cwd));
        for key in [
            "skills",
            "tools",
            "slashCommands",
            "agents",
            "mcpServers",
            "plugins",
            "betas",
        ] {
            m.insert(key.into(), json!([]));
        }
        m.insert("claudeCodeVersion".into(), Value::Null);
        m.insert("permissionMode".into(), json!(permission_mode));
        m.insert("apiKeySource".into(), Value::Null);
        m.insert("outputStyle".into(), Value::Null);
        m.insert("fastModeState".into(), Value::Null);
        m
    }

    async fn send_request(&mut self, method: &str, params: Value) -> std::io::Result<u64> {
        self.next_id += 1;
        let id = self.next_id;
        self.process
            .send(&json!({"id": id, "method": method, "params": params}))
            .await?;
        Ok(id)
    }

    /// Sends a request and waits for its response, keeping notifications
    /// for `next`.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, CodexError> {
        let id = self.send_request(method, params).await?;
        let wait = async {
            loop {
                let Some(line) = self.lines.recv().await else {
                    return Err(CodexError::Exited(self.process.wait_exit().await));
                };
                if line.get("id").and_then(Value::as_u64) == Some(id)
                    && line.get("method").is_none()
                {
                    return match line.get("error") {
                        Some(error) => Err(CodexError::Refused {
                            method: method.to_string(),
                            message: str_field(error, "message")
                                .unwrap_or_else(|| error.to_string()),
                        }),
                        None => Ok(line.get("result").cloned().unwrap_or(Value::Null)),
                    };
                }
                self.buffered.push_back(line);
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, wait)
            .await
            .map_err(|_| CodexError::Timeout {
                method: method.to_string(),
            })?
    }

    async fn begin_turn(
        &mut self,
        prompt: &str,
        model: Option<&str>,
        permission_mode: Option<&str>,
    ) -> Result<(), CodexError> {
        self.turn_usage = Usage::default();
        self.turn_error = None;
        let mut params = json!({
            "threadId": self.thread_id,
            "input": [{"type": "text", "text": prompt}],
        });
        if let Some(model) = model {
            params["model"] = json!(model);
        }
        if let Some(mode) = permission_mode {
            let sandbox = sandbox_for(mode);
            if sandbox != self.sandbox {
                self.sandbox = sandbox;
                params["sandboxPolicy"] = json!({"type": sandbox_policy(sandbox)});
            }
        }
        let result = self.request("turn/start", params).await?;
        self.turn_id = result
            .pointer("/turn/id")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(())
    }

    /// Asks the running turn to stop; it then ends with `turn/completed`
    /// status "interrupted".
    async fn send_interrupt(&mut self) -> std::io::Result<()> {
        let Some(turn) = self.turn_id.clone() else {
            return Ok(());
        };
        let id = self
            .send_request(
                "turn/interrupt",
                json!({"threadId": self.thread_id, "turnId": turn}),
            )
            .await?;
        self.interrupt = Some(id);
        Ok(())
    }

    /// The next thing the server said; None once its stdout closed.
    async fn read_next(&mut self) -> Option<Vec<Output>> {
        let line = match self.buffered.pop_front() {
            Some(line) => line,
            None => self.lines.recv().await?,
        };
        Some(self.translate(line).await)
    }

    /// One arm per notification the session cares about.
    async fn translate(&mut self, line: Value) -> Vec<Output> {
        let Some(method) = line.get("method").and_then(Value::as_str) else {
            // Responses to our fire-and-forget requests (turn/interrupt).
            if let Some(error) = line.get("error") {
                tracing::debug!(agent = %self.process.label, %error, "codex refused a request");
                let id = line.get("id").and_then(Value::as_u64);
                if id.is_some() && id == self.interrupt && self.turn_id.is_some() {
                    self.interrupt_again = true;
                }
            }
            return Vec::new();
        };
        if let Some(id) = line.get("id").cloned() {
            // A request to us (an approval): nobody is there to answer, and
            // the approval policy is "never", so refuse rather than hang.
            let _ = self
                .process
                .send(&json!({"id": id, "error": {"code": -32601, "message": format!("nexscope does not answer {method}")}}))
                .await;
            return Vec::new();
        }
        let params = line.get("params").cloned().unwrap_or(Value::Null);
        // Another turn's items and end (an interrupted one's stragglers)
        // are not the running turn's. Token totals count whatever the turn.
        let turn = params
            .get("turnId")
            .or_else(|| params.pointer("/turn/id"))
            .and_then(Value::as_str);
        let current = self.turn_id.as_deref();
        if method != "thread/tokenUsage/updated"
            && current.is_some()
            && turn.is_some_and(|t| Some(t) != current)
        {
            return Vec::new();
        }
        // The turn is active now: the interrupt it refused goes again.
        if self.interrupt_again && turn.is_some() && method != "turn/completed" {
            self.interrupt_again = false;
            if let Err(error) = self.interrupt().await {
                tracing::warn!(agent = %self.process.label, %error, "could not send the interrupt again");
            }
        }
        match method {
            "item/started" => item_started(&params).into_iter().collect(),
            "item/completed" => item_completed(&params).into_iter().collect(),
            "thread/tokenUsage/updated" => {
                self.count_tokens(&params);
                Vec::new()
            }
            "error" => {
                self.turn_error = params
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                Vec::new()
            }
            "turn/completed" => {
                self.turn_id = None;
                self.interrupt = None;
                self.interrupt_again = false;
                let turn = params.get("turn").cloned().unwrap_or(Value::Null);
                let status = turn.get("status").and_then(Value::as_str).unwrap_or("");
                let error = match status {
                    "failed" => Some(
                        turn.pointer("/error/message")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .or(self.turn_error.take())
                            .unwrap_or_else(|| "the turn failed".into()),
                    ),
                    "interrupted" => Some("interrupted".into()),
                    _ => None,
                };
                vec![Output::TurnDone {
                    usage: self.turn_usage,
                    error,
                }]
            }
            _ => Vec::new(),
        }
    }

    fn count_tokens(&mut self, params: &Value) {
        let Some(total) = params.pointer("/tokenUsage/total") else {
            return;
        };
        let read = |key: &str| total.get(key).and_then(Value::as_u64).unwrap_or(0);
        let now = Usage {
            input_tokens: read("inputTokens"),
            output_tokens: read("outputTokens"),
            cache_read_input_tokens: read("cachedInputTokens"),
            cache_creation_input_tokens: 0,
            cost_usd: 0.0,
        };
        self.turn_usage.input_tokens += now.input_tokens.saturating_sub(self.total.input_tokens);
        self.turn_usage.output_tokens += now.output_tokens.saturating_sub(self.total.output_tokens);
        self.turn_usage.cache_read_input_tokens += now
            .cache_read_input_tokens
            .saturating_sub(self.total.cache_read_input_tokens);
        self.total = now;
    }
}

/// The sandbox a permission mode maps to: Codex has no per-tool prompts in a
/// headless session, so the mode decides what commands may touch.
fn sandbox_for(mode: &str) -> &'static str {
    match mode {
        "plan" => "read-only",
        "default" | "acceptEdits" => "workspace-write",
        _ => "danger-full-access",
    }
}

fn sandbox_policy(sandbox: &str) -> &'static str {
    match sandbox {
        "read-only" => "readOnly",
        "workspace-write" => "workspaceWrite",
        _ => "dangerFullAccess",
    }
}

fn item_started(params: &Value) -> Option<Output> {
    let item = params.get("item")?;
    let id = str_field(item, "id").unwrap_or_default();
    let kind = item.get("type").and_then(Value::as_str)?;
    let input = match kind {
        "commandExecution" => json!({"command": item.get("command"), "cwd": item.get("cwd")}),
        "fileChange" => json!({"changes": item.get("changes")}),
        "mcpToolCall" => {
            json!({"server": item.get("server"), "tool": item.get("tool"), "arguments": item.get("arguments")})
        }
        "webSearch" => json!({"query": item.get("query")}),
        _ => return None,
    };
    Some(Output::ToolUse {
        id,
        name: kind.to_string(),
        input,
    })
}

fn item_completed(params: &Value) -> Option<Output> {
    let item = params.get("item")?;
    let id = str_field(item, "id").unwrap_or_default();
    let kind = item.get("type").and_then(Value::as_str)?;
    let failed = item.get("status").and_then(Value::as_str) == Some("failed");
    match kind {
        "agentMessage" => Some(Output::Text(str_field(item, "text")?)),
        "reasoning" => {
            let text = ["summary", "content"]
                .iter()
                .filter_map(|k| item.get(*k).and_then(Value::as_array))
                .flatten()
                .filter_map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| str_field(v, "text"))
                })
                .collect::<Vec<_>>()
                .join("\n");
            (!text.is_empty()).then_some(Output::Thinking(text))
        }
        "commandExecution" => Some(Output::ToolResult {
            id,
            content: str_field(item, "aggregatedOutput").unwrap_or_default(),
            is_error: failed
                || item
                    .get("exitCode")
                    .and_then(Value::as_i64)
                    .is_some_and(|c| c != 0),
        }),
        "fileChange" | "mcpToolCall" | "webSearch" => Some(Output::ToolResult {
            id,
            content: item
                .get("result")
                .or_else(|| item.get("changes"))
                .map(|v| v.to_string())
                .unwrap_or_default(),
            is_error: failed,
        }),
        _ => None,
    }
}

impl Driver for Codex {
    fn next(&mut self) -> BoxFuture<'_, Option<Vec<Output>>> {
        Box::pin(self.read_next())
    }

    fn process(&mut self) -> &mut AgentProcess {
        &mut self.process
    }

    fn into_process(self: Box<Self>) -> AgentProcess {
        self.process
    }

    fn interrupt(&mut self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(self.send_interrupt())
    }

    /// Codex takes the model with `turn/start`.
    fn model_request(&self, _model: &str) -> Option<Value> {
        None
    }

    /// And the sandbox policy the mode maps to.
    fn mode_request(&self, _mode: &str) -> Option<Value> {
        None
    }

    fn control(&mut self, _request: Value) -> BoxFuture<'_, std::io::Result<u64>> {
        Box::pin(async {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "codex app-server takes no control requests",
            ))
        })
    }

    /// A refused `turn/start` leaves the thread usable; anything else
    /// (the process gone, no answer) does not.
    fn start_turn<'a>(
        &'a mut self,
        prompt: &'a str,
        _session_id: &'a str,
        model: Option<&'a str>,
        mode: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StartError>> {
        Box::pin(async move {
            self.begin_turn(prompt, model, mode)
                .await
                .map_err(|e| match e {
                    CodexError::Refused { .. } => StartError::Refused(e.to_string()),
                    other => StartError::Broken(other.to_string()),
                })
        })
    }

    /// Codex has no init line: its metadata comes with the thread.
    fn known_metadata(&self, cwd: &str, permission_mode: &str) -> Option<Map<String, Value>> {
        Some(self.metadata(cwd, permission_mode))
    }

    fn ask_metadata<'a>(
        &'a mut self,
        _skills: &'a [String],
    ) -> BoxFuture<'a, std::io::Result<Option<u64>>> {
        Box::pin(async { Ok(None) })
    }

    /// Codex answers `ask_metadata` at once: no reply carries metadata.
    fn metadata_from_reply(
        &self,
        _reply: &Value,
        _agent_id: &str,
        _cwd: &str,
    ) -> Map<String, Value> {
        Map::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_events() {
        let text =
            item_completed(&json!({"item": {"type": "agentMessage", "id": "m", "text": "apple"}}));
        assert!(matches!(text, Some(Output::Text(t)) if t == "apple"));
        let run = item_started(
            &json!({"item": {"type": "commandExecution", "id": "c", "command": "ls"}}),
        );
        assert!(matches!(run, Some(Output::ToolUse { name, .. }) if name == "commandExecution"));
        let done = item_completed(&json!({"item": {"type": "commandExecution", "id": "c",
            "aggregatedOutput": "x\n", "exitCode": 1, "status": "completed"}}));
        assert!(matches!(
            done,
            Some(Output::ToolResult { is_error: true, .. })
        ));
        assert!(item_completed(&json!({"item": {"type": "userMessage", "id": "u"}})).is_none());
    }
}
