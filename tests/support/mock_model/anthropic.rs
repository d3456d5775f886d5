//! The Anthropic Messages personality (`POST /v1/messages` as the pinned `claude` calls
//! it): reads the conversation out of `messages[]` and answers as SSE when
//! `stream` is true, else as one JSON message.

use serde_json::{Value, json};

use super::http::{self, HungUp, Sse};
use super::{
    Call, Exchange, HOLD_TEXT, INPUT_TOKENS, Item, OUTPUT_TOKENS, Reply, TICK, is_wrapper,
    offered_tool,
};

/// The shell tool Claude Code offers; used when the request lists no tools.
const SHELL_TOOL: &str = "Bash";
/// The model named in replies when the request names none.
const DEFAULT_MODEL: &str = "claude-sonnet-4-6";

pub(super) fn error_body(message: &str) -> Value {
    json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
}

pub(super) fn respond(exchange: &Exchange, body: &Value) -> Result<(), HungUp> {
    let reply = Reply::to(&items(body));
    let stream = exchange.stream;
    if let Reply::Error { status, message } = &reply {
        return http::respond_json(stream, *status, &error_body(message));
    }
    let message = Message {
        id: format!("msg_mock_{}", exchange.shared.next_id()),
        model: body["model"].as_str().unwrap_or(DEFAULT_MODEL).to_owned(),
    };
    if body["stream"] != Value::Bool(true) {
        return http::respond_json(stream, 200, &message.whole(&reply, body));
    }
    let sse = Sse::start(stream)?;
    sse.event(&message.start())?;
    match reply {
        Reply::Call { call, anchor } => {
            let (name, input) = tool_use(body, &call);
            let block = json!({
                "type": "tool_use",
                "id": format!("toolu_mock_{anchor}"),
                "name": name,
                "input": {},
            });
            sse.event(&block_start(block))?;
            let input = input.to_string();
            sse.event(&block_delta(
                json!({"type": "input_json_delta", "partial_json": input}),
            ))?;
            sse.event(&block_stop())?;
            return message.finish(&sse, "tool_use");
        }
        Reply::Text(text) => {
            sse.event(&block_start(json!({"type": "text", "text": ""})))?;
            sse.event(&text_delta(&text))?;
        }
        Reply::Slow { ms, n } => {
            sse.event(&block_start(json!({"type": "text", "text": ""})))?;
            exchange.slow(&sse, ms, n, || sse.event(&text_delta(TICK)))?;
        }
        Reply::Hold => {
            sse.event(&block_start(json!({"type": "text", "text": ""})))?;
            sse.event(&text_delta(HOLD_TEXT))?;
            exchange.hold(&sse)?;
        }
        // Answered before the stream started.
        Reply::Error { .. } => {}
    }
    sse.event(&block_stop())?;
    message.finish(&sse, "end_turn")
}

/// The conversation: user texts (wrappers left out) and tool results.
fn items(body: &Value) -> Vec<Item> {
    let mut items = Vec::new();
    for message in body["messages"].as_array().into_iter().flatten() {
        if message["role"] != "user" {
            continue;
        }
        let mut texts = Vec::new();
        match &message["content"] {
            Value::String(text) => texts.push(text.clone()),
            Value::Array(blocks) => {
                for block in blocks {
                    match block["type"].as_str() {
                        Some("text") => texts.extend(block["text"].as_str().map(str::to_owned)),
                        Some("tool_result") => items.push(Item::ToolResult),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        texts.retain(|text| !is_wrapper(text));
        if !texts.is_empty() {
            items.push(Item::Prompt(texts));
        }
    }
    items
}

/// The tool a call uses and its input.
fn tool_use(body: &Value, call: &Call) -> (String, Value) {
    match call {
        Call::Shell(command) => (shell_tool(body), json!({"command": command})),
        Call::Named { suffix, args } => (offered_tool(body, suffix), args.clone()),
    }
}

/// The request's shell tool: `Bash`, matched without case, else the default.
fn shell_tool(body: &Value) -> String {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| tool["name"].as_str())
        .find(|name| name.eq_ignore_ascii_case(SHELL_TOOL))
        .unwrap_or(SHELL_TOOL)
        .to_owned()
}

fn usage() -> Value {
    json!({
        "input_tokens": INPUT_TOKENS,
        "output_tokens": OUTPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    })
}

fn block_start(block: Value) -> Value {
    json!({"type": "content_block_start", "index": 0, "content_block": block})
}

fn block_delta(delta: Value) -> Value {
    json!({"type": "content_block_delta", "index": 0, "delta": delta})
}

fn text_delta(text: &str) -> Value {
    block_delta(json!({"type": "text_delta", "text": text}))
}

fn block_stop() -> Value {
    json!({"type": "content_block_stop", "index": 0})
}

/// The assistant message being answered.
struct Message {
    id: String,
    model: String,
}

impl Message {
    fn start(&self) -> Value {
        json!({"type": "message_start", "message": {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(),
        }})
    }

    fn finish(&self, sse: &Sse, stop_reason: &str) -> Result<(), HungUp> {
        sse.event(&json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": OUTPUT_TOKENS},
        }))?;
        sse.event(&json!({"type": "message_stop"}))
    }

    /// The non-streamed answer.
    fn whole(&self, reply: &Reply, body: &Value) -> Value {
        let (content, stop_reason) = match reply {
            Reply::Call { call, anchor } => {
                let (name, input) = tool_use(body, call);
                (
                    json!([{
                        "type": "tool_use",
                        "id": format!("toolu_mock_{anchor}"),
                        "name": name,
                        "input": input,
                    }]),
                    "tool_use",
                )
            }
            _ => (json!([{"type": "text", "text": reply.text()}]), "end_turn"),
        };
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": usage(),
        })
    }
}
