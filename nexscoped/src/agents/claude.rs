//! Claude Code in stream-json mode (`--input-format stream-json
//! --output-format stream-json --verbose`, as the pinned 2.1.330 was
//! observed to behave). One process per
//! live session; each user line is one turn; `result` ends it. Model and
//! permission changes and interrupts are control requests on stdin.
//!
//! Every user line carries a uuid, and the CLI reports each command's
//! lifecycle (`command_lifecycle`: queued, started, completed, cancelled).
//! Output is taken only while our turn's command is the one started, so a
//! line of an earlier turn can never pass for the current one's. An
//! interrupt also cancels a command still queued (`cancel_queued`): without
//! it, a prompt and an interrupt that arrive together leave the prompt
//! queued and the interrupt does nothing.

use serde_json::{Map, Value, json};
use tokio::process::Command;

use super::driver::{BoxFuture, Driver, StartError};
use super::process::{AgentProcess, Lines};
use super::{Output, SpawnSpec};
use nexscope_proto::api::agent::Usage;

pub struct Claude {
    process: AgentProcess,
    lines: Lines,
    next_request: u64,
    results: ResultReader,
    /// The uuid of our prompt whose turn has not ended.
    turn: Option<String>,
    /// The command the CLI last said it started; None before any lifecycle
    /// line (a CLI without them: every line is the current turn's).
    running: Option<String>,
}

/// Reads `result` lines. `total_cost_usd` is per process and cumulative, so
/// a turn's cost is the difference; `usage` is per turn (`modelUsage` is
/// cumulative and is not used).
#[derive(Default)]
struct ResultReader {
    cost_so_far: f64,
}

impl Claude {
    pub fn spawn(spec: &SpawnSpec) -> std::io::Result<Claude> {
        let mut command = Command::new(&spec.program);
        command
            .args([
                "--output-format",
                "stream-json",
                "--verbose",
                "--input-format",
                "stream-json",
            ])
            .args(["--permission-mode", &spec.permission_mode])
            .current_dir(&spec.cwd)
            .env_remove("CLAUDECODE")
            .env("CLAUDE_CODE_ENTRYPOINT", "sdk-nexscope");
        if let Some(model) = &spec.model {
            command.args(["--model", model]);
        }
        // Needed to switch into bypass later, as nx-ce always allows it; but
        // as root the CLI refuses the flag unless IS_SANDBOX is set, so
        // there it is only passed when bypass is asked for.
        if spec.permission_mode != "bypassPermissions" && !bypass_refused() {
            command.arg("--allow-dangerously-skip-permissions");
        }
        match &spec.resume {
            Some(id) => command.args(["--resume", id]),
            None => command.args(["--session-id", &spec.new_id]),
        };
        let label = format!("claude:{}", spec.label);
        let (process, lines) = AgentProcess::spawn(command, label)?;
        Ok(Claude {
            process,
            lines,
            next_request: 0,
            results: ResultReader::default(),
            turn: None,
            running: None,
        })
    }

    /// Sends a control request; its answer comes as `Output::Reply` with
    /// the returned id.
    async fn send_control(&mut self, request: Value) -> std::io::Result<u64> {
        self.next_request += 1;
        let id = self.next_request;
        self.process
            .send(&json!({
                "type": "control_request",
                "request_id": format!("req_{id}"),
                "request": request,
            }))
            .await?;
        Ok(id)
    }

    /// Asks for the CLI's commands and agents without a model turn.
    pub(super) async fn initialize(&mut self, skills: &[String]) -> std::io::Result<u64> {
        let mut request = json!({"subtype": "initialize", "hooks": null});
        if !skills.is_empty() {
            request["skills"] = json!(skills);
        }
        self.send_control(request).await
    }

    async fn send_prompt(&mut self, prompt: &str, session_id: &str) -> std::io::Result<()> {
        let uuid = nexscope_proto::ids::uuid_v4();
        self.process
            .send(&json!({
                "type": "user",
                "uuid": uuid,
                "message": {"role": "user", "content": prompt},
                "parent_tool_use_id": null,
                "session_id": session_id,
            }))
            .await?;
        self.turn = Some(uuid);
        Ok(())
    }

    /// A line of a command that is not our turn's (an earlier turn's).
    fn stale(&self) -> bool {
        self.running.is_some() && self.running != self.turn
    }

    /// A command's lifecycle; a turn cancelled while still queued ends
    /// here, since it never gets a `result`.
    fn lifecycle(&mut self, line: &Value) -> Vec<Output> {
        let uuid = str_field(line, "command_uuid");
        match line.get("state").and_then(Value::as_str) {
            Some("started") => self.running = uuid,
            Some("cancelled") if uuid.is_some() && uuid == self.turn => {
                self.turn = None;
                self.running = None;
                return vec![Output::TurnDone {
                    usage: Usage::default(),
                    error: None,
                }];
            }
            // Over: the next command's lines come after its own `started`;
            // a missing one must not make every later line stale.
            Some("completed" | "cancelled") if uuid == self.running => self.running = None,
            _ => {}
        }
        Vec::new()
    }

    fn translate(&mut self, line: &Value) -> Vec<Output> {
        let kind = line.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "system" if line.get("subtype").and_then(Value::as_str) == Some("init") => {
                vec![Output::Init {
                    agent_id: str_field(line, "session_id"),
                    metadata: init_metadata(line),
                }]
            }
            "command_lifecycle" => self.lifecycle(line),
            // An earlier turn's cost still counts toward the running total.
            "result" if self.stale() => {
                self.results.turn_done(line);
                Vec::new()
            }
            "assistant" | "user" if self.stale() => Vec::new(),
            "assistant" => assistant_blocks(line),
            "user" => tool_results(line),
            "result" => {
                self.turn = None;
                self.running = None;
                vec![self.results.turn_done(line)]
            }
            "control_response" => {
                let response = line.get("response").cloned().unwrap_or(Value::Null);
                let id = response
                    .get("request_id")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("req_"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let result = if response.get("subtype").and_then(Value::as_str) == Some("error") {
                    Err(str_field(&response, "error").unwrap_or_else(|| "refused".into()))
                } else {
                    Ok(response.get("response").cloned().unwrap_or(Value::Null))
                };
                vec![Output::Reply { id, result }]
            }
            _ => Vec::new(),
        }
    }
}

impl ResultReader {
    fn turn_done(&mut self, line: &Value) -> Output {
        let usage = line.get("usage").cloned().unwrap_or(Value::Null);
        let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        let total_cost = line
            .get("total_cost_usd")
            .and_then(Value::as_f64)
            .unwrap_or(self.cost_so_far);
        let cost = (total_cost - self.cost_so_far).max(0.0);
        self.cost_so_far = total_cost;
        let is_error = line
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let error = is_error.then(|| {
            str_field(line, "result")
                .or_else(|| {
                    line.get("errors")
                        .and_then(Value::as_array)
                        .and_then(|e| e.first())
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .or_else(|| str_field(line, "subtype"))
                .unwrap_or_else(|| "the turn failed".into())
        });
        Output::TurnDone {
            usage: Usage {
                input_tokens: count("input_tokens"),
                output_tokens: count("output_tokens"),
                cache_creation_input_tokens: count("cache_creation_input_tokens"),
                cache_read_input_tokens: count("cache_read_input_tokens"),
                cost_usd: cost,
            },
            error,
        }
    }
}

impl Driver for Claude {
    fn next(&mut self) -> BoxFuture<'_, Option<Vec<Output>>> {
        Box::pin(async move {
            let line = self.lines.recv().await?;
            Some(self.translate(&line))
        })
    }

    fn process(&mut self) -> &mut AgentProcess {
        &mut self.process
    }

    fn into_process(self: Box<Self>) -> AgentProcess {
        self.process
    }

    /// Stops the running command, or cancels ours while it is queued.
    fn interrupt(&mut self) -> BoxFuture<'_, std::io::Result<()>> {
        let request = json!({"subtype": "interrupt", "cancel_queued": true});
        Box::pin(async move { self.send_control(request).await.map(drop) })
    }

    /// Switched before the turn, so a refusal leaves the session as it was
    /// and says why.
    fn model_request(&self, model: &str) -> Option<Value> {
        Some(json!({"subtype": "set_model", "model": model}))
    }

    fn mode_request(&self, mode: &str) -> Option<Value> {
        Some(json!({"subtype": "set_permission_mode", "mode": mode}))
    }

    fn control(&mut self, request: Value) -> BoxFuture<'_, std::io::Result<u64>> {
        Box::pin(self.send_control(request))
    }

    /// Model and mode were switched by control requests (`model_request`).
    fn start_turn<'a>(
        &'a mut self,
        prompt: &'a str,
        session_id: &'a str,
        _model: Option<&'a str>,
        _mode: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StartError>> {
        Box::pin(async move {
            self.send_prompt(prompt, session_id)
                .await
                .map_err(|e| StartError::Broken(e.to_string()))
        })
    }

    /// Claude's metadata comes with each turn's init line.
    fn known_metadata(&self, _cwd: &str, _permission_mode: &str) -> Option<Map<String, Value>> {
        None
    }

    fn ask_metadata<'a>(
        &'a mut self,
        skills: &'a [String],
    ) -> BoxFuture<'a, std::io::Result<Option<u64>>> {
        Box::pin(async move { self.initialize(skills).await.map(Some) })
    }

    fn metadata_from_reply(&self, reply: &Value, agent_id: &str, cwd: &str) -> Map<String, Value> {
        initialize_metadata(reply, agent_id, cwd)
    }
}

/// Why this CLI would refuse `mode` here: bypassPermissions as root
/// outside a declared sandbox.
pub(super) fn refused_mode(mode: &str) -> Option<String> {
    (mode == "bypassPermissions" && bypass_refused()).then(|| {
        "Claude Code refuses bypassPermissions as root unless IS_SANDBOX=1 is in nexscoped's \
         environment (for sandboxes only); use another permission mode (query --permission-mode, \
         or [agents] permission_mode)"
            .to_string()
    })
}

/// True when this CLI would refuse `--allow-dangerously-skip-permissions`:
/// running as root outside a declared sandbox.
fn bypass_refused() -> bool {
    nexscope_proto::paths::uid() == 0 && std::env::var_os("IS_SANDBOX").is_none()
}

pub(super) fn str_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

/// nx-ce's `init` fields, from Claude's system/init line.
fn init_metadata(line: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    let array = |key: &str| {
        line.get(key)
            .filter(|v| v.is_array())
            .cloned()
            .unwrap_or(json!([]))
    };
    let plain = |key: &str| line.get(key).cloned().unwrap_or(Value::Null);
    m.insert("sessionId".into(), plain("session_id"));
    m.insert("model".into(), plain("model"));
    m.insert("cwd".into(), plain("cwd"));
    m.insert("skills".into(), array("skills"));
    m.insert("tools".into(), array("tools"));
    m.insert("slashCommands".into(), array("slash_commands"));
    m.insert("agents".into(), array("agents"));
    m.insert("claudeCodeVersion".into(), plain("claude_code_version"));
    m.insert("permissionMode".into(), plain("permissionMode"));
    m.insert("apiKeySource".into(), plain("apiKeySource"));
    m.insert("mcpServers".into(), array("mcp_servers"));
    m.insert("plugins".into(), array("plugins"));
    m.insert("outputStyle".into(), plain("output_style"));
    m.insert("betas".into(), array("betas"));
    m.insert("fastModeState".into(), plain("fast_mode_state"));
    m
}

/// The same fields from an `initialize` control response, which arrives
/// without any model turn. Tools are only known after a turn's init.
fn initialize_metadata(response: &Value, session_id: &str, cwd: &str) -> Map<String, Value> {
    let names = |key: &str| -> Value {
        let list = response.get(key).and_then(Value::as_array);
        Value::Array(
            list.into_iter()
                .flatten()
                .filter_map(|item| match item {
                    Value::String(name) => Some(Value::String(name.clone())),
                    other => other.get("name").cloned(),
                })
                .collect(),
        )
    };
    let mut m = Map::new();
    m.insert("sessionId".into(), json!(session_id));
    m.insert("model".into(), Value::Null);
    m.insert("cwd".into(), json!(cwd));
    m.insert("skills".into(), json!([]));
    m.insert("tools".into(), json!([]));
    m.insert("slashCommands".into(), names("commands"));
    m.insert("agents".into(), names("agents"));
    m.insert(
        "claudeCodeVersion".into(),
        response
            .get("claude_code_version")
            .cloned()
            .unwrap_or(Value::Null),
    );
    m.insert(
        "permissionMode".into(),
        response
            .get("current_permission_mode")
            .cloned()
            .unwrap_or(Value::Null),
    );
    m.insert("apiKeySource".into(), Value::Null);
    m.insert("mcpServers".into(), json!([]));
    m.insert("plugins".into(), json!([]));
    m.insert(
        "outputStyle".into(),
        response.get("output_style").cloned().unwrap_or(Value::Null),
    );
    m.insert("betas".into(), json!([]));
    m.insert("fastModeState".into(), Value::Null);
    m
}

fn assistant_blocks(line: &Value) -> Vec<Output> {
    let content = line.pointer("/message/content");
    match content {
        Some(Value::String(text)) => vec![Output::Text(text.clone())],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| match block.get("type").and_then(Value::as_str)? {
                "text" => Some(Output::Text(str_field(block, "text")?)),
                "thinking" => Some(Output::Thinking(str_field(block, "thinking")?)),
                "tool_use" => Some(Output::ToolUse {
                    id: str_field(block, "id").unwrap_or_default(),
                    name: str_field(block, "name").unwrap_or_default(),
                    input: block.get("input").cloned().unwrap_or(json!({})),
                }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn tool_results(line: &Value) -> Vec<Output> {
    let Some(Value::Array(blocks)) = line.pointer("/message/content") else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|block| Output::ToolResult {
            id: str_field(block, "tool_use_id").unwrap_or_default(),
            content: content_text(block.get("content")),
            is_error: block
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
        .collect()
}

/// A tool result's content: a string, or the text of its blocks.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_usage_is_read_from_snake_case_and_cost_is_per_turn() {
        let line = |cost: f64| {
            json!({"duration_api_ms": 23, "usage": {"input_tokens": 11, "cache_creation_input_tokens": 2,
                "cache_read_input_tokens": 3, "output_tokens": 7},
                "modelUsage": {"m": {"inputTokens": 22, "outputTokens": 14}},
                "total_cost_usd": cost, "is_error": false, "subtype": "success", "result": "2", "type": "result"})
        };
        let mut reader = ResultReader::default();
        let mut done = |line: Value| reader.turn_done(&line);
        match done(line(0.000138)) {
            Output::TurnDone { usage, error } => {
                assert_eq!((usage.input_tokens, usage.output_tokens), (11, 7));
                assert_eq!(
                    (
                        usage.cache_creation_input_tokens,
                        usage.cache_read_input_tokens
                    ),
                    (2, 3)
                );
                assert!((usage.cost_usd - 0.000138).abs() < 1e-12);
                assert_eq!(error, None);
            }
            _ => panic!("not a turn end"),
        }
        match done(line(0.000276)) {
            Output::TurnDone { usage, .. } => assert!((usage.cost_usd - 0.000138).abs() < 1e-12),
            _ => panic!("not a turn end"),
        }
    }

    #[test]
    fn an_api_error_ends_the_turn_with_its_message() {
        let out = ResultReader::default().turn_done(
            &json!({"type": "result", "subtype": "success", "is_error": true,
            "result": "API Error: 400 boom", "usage": {"input_tokens": 0, "output_tokens": 0}}),
        );
        match out {
            Output::TurnDone { error, .. } => {
                assert_eq!(error.as_deref(), Some("API Error: 400 boom"))
            }
            _ => panic!("not a turn end"),
        }
    }

    #[test]
    fn assistant_blocks_become_events_in_order() {
        let line = json!({"type": "assistant", "message": {"content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]}});
        let out = assistant_blocks(&line);
        assert!(matches!(&out[0], Output::Thinking(t) if t == "hmm"));
        assert!(matches!(&out[1], Output::Text(t) if t == "hi"));
        assert!(matches!(&out[2], Output::ToolUse { name, .. } if name == "Bash"));
    }
}
