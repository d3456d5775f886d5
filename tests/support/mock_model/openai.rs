//! The OpenAI Responses personality (`POST /v1/responses` as the pinned `codex` calls
//! it): reads the conversation out of `input[]` and answers as SSE when
//! `stream` is true, else as one JSON response. Codex drops text deltas that arrive before
//! their message's `response.output_item.added`, so that always comes first.

use serde_json::{Value, json};

use super::http::{self, HungUp, Sse};
use super::{
    Call, Exchange, HOLD_TEXT, INPUT_TOKENS, Item, OUTPUT_TOKENS, Reply, TICK, is_wrapper,
    offered_tool,
};

/// Codex's shell tool on current models, used when the request offers no
/// shell tool the mock knows.
const EXEC_COMMAND: &str = "exec_command";

pub(super) fn error_body(message: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "code": null}})
}

pub(super) fn respond(exchange: &Exchange, body: &Value) -> Result<(), HungUp> {
    let reply = Reply::to(&items(body));
    let stream = exchange.stream;
    if let Reply::Error { status, message } = &reply {
        return http::respond_json(stream, *status, &error_body(message));
    }
    let n = exchange.shared.next_id();
    let response = Response {
        id: format!("resp_mock_{n}"),
        message_id: format!("msg_mock_{n}"),
    };
    if body["stream"] != Value::Bool(true) {
        return http::respond_json(stream, 200, &response.whole(&reply, body));
    }
    let sse = Sse::start(stream)?;
    sse.event(&json!({"type": "response.created", "response": {"id": response.id}}))?;
    let text = match reply {
        Reply::Call { call, anchor } => {
            sse.event(&item_done(call_item(body, &call, anchor)))?;
            return sse.event(&response.completed());
        }
        Reply::Text(text) => {
            sse.event(&response.message_added())?;
            sse.event(&response.delta(&text))?;
            text
        }
        Reply::Slow { ms, n } => {
            sse.event(&response.message_added())?;
            exchange.slow(&sse, ms, n, || sse.event(&response.delta(TICK)))?;
            TICK.repeat(n as usize)
        }
        Reply::Hold => {
            sse.event(&response.message_added())?;
            sse.event(&response.delta(HOLD_TEXT))?;
            exchange.hold(&sse)?;
            HOLD_TEXT.to_owned()
        }
        // Answered before the stream started.
        Reply::Error { .. } => String::new(),
    };
    sse.event(&item_done(response.message(&text)))?;
    sse.event(&response.completed())
}

/// The conversation: user `input_text`s (wrappers such as
/// `<environment_context>` left out) and tool outputs.
fn items(body: &Value) -> Vec<Item> {
    let input = match &body["input"] {
        Value::String(text) => return prompt(vec![text.clone()]).into_iter().collect(),
        Value::Array(input) => input,
        _ => return Vec::new(),
    };
    let mut items = Vec::new();
    for item in input {
        match item["type"].as_str() {
            Some("message") | None if item["role"] == "user" => {
                let texts = match &item["content"] {
                    Value::String(text) => vec![text.clone()],
                    Value::Array(parts) => parts
                        .iter()
                        .filter(|part| part["type"] == "input_text")
                        .filter_map(|part| part["text"].as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                items.extend(prompt(texts));
            }
            Some("function_call_output" | "custom_tool_call_output") => {
                items.push(Item::ToolResult);
            }
            _ => {}
        }
    }
    items
}

fn prompt(mut texts: Vec<String>) -> Option<Item> {
    texts.retain(|text| !is_wrapper(text));
    (!texts.is_empty()).then_some(Item::Prompt(texts))
}

/// A function call item for `call`. Codex defers MCP tools behind its
/// client-run `tool_search`: a tool not offered up front is searched for
/// first, then called from the namespace the search output lists it in.
fn call_item(body: &Value, call: &Call, anchor: usize) -> Value {
    let (name, arguments, namespace) = match call {
        Call::Shell(command) => {
            let (name, arguments) = shell_call(body, command);
            (name, arguments, None)
        }
        Call::Named { suffix, args } => {
            let offered = offered_tool(body, suffix);
            if offered != *suffix || !offers_tool_search(body) {
                (offered, args.clone(), None)
            } else {
                match searched_tool(body, suffix) {
                    Some((namespace, name)) => (name, args.clone(), namespace),
                    None => return tool_search_call(suffix, anchor),
                }
            }
        }
    };
    let mut item = json!({
        "type": "function_call",
        "id": format!("fc_mock_{anchor}"),
        "call_id": format!("call_mock_{anchor}"),
        "name": name,
        "arguments": arguments.to_string(),
    });
    if let Some(namespace) = namespace {
        item["namespace"] = json!(namespace);
    }
    item
}

fn offers_tool_search(body: &Value) -> bool {
    body["tools"]
        .as_array()
        .is_some_and(|tools| tools.iter().any(|t| t["type"] == "tool_search"))
}

fn tool_search_call(query: &str, anchor: usize) -> Value {
    json!({
        "type": "tool_search_call",
        "id": format!("ts_mock_{anchor}"),
        "call_id": format!("search_mock_{anchor}"),
        "execution": "client",
        "status": "completed",
        "arguments": {"query": query, "limit": 8},
    })
}

/// The tool ending with `suffix` in a `tool_search_output` of the
/// conversation: (its namespace, if any, and its name).
fn searched_tool(body: &Value, suffix: &str) -> Option<(Option<String>, String)> {
    fn find(
        tools: &Value,
        namespace: Option<&str>,
        suffix: &str,
    ) -> Option<(Option<String>, String)> {
        for tool in tools.as_array()? {
            let name = tool["name"].as_str().unwrap_or_default();
            if tool["type"] == "namespace" {
                if let Some(found) = find(&tool["tools"], Some(name), suffix) {
                    return Some(found);
                }
            } else if name.ends_with(suffix) {
                return Some((namespace.map(str::to_owned), name.to_owned()));
            }
        }
        None
    }
    body["input"]
        .as_array()?
        .iter()
        .filter(|item| item["type"] == "tool_search_output")
        .find_map(|item| find(&item["tools"], None, suffix))
}

/// The request's shell tool running `command`, with the arguments that
/// tool takes.
fn shell_call(body: &Value, command: &str) -> (String, Value) {
    let offered: Vec<&str> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    let (name, arguments) = if offered.contains(&EXEC_COMMAND) || offered.is_empty() {
        (EXEC_COMMAND, json!({"cmd": command}))
    } else if offered.contains(&"shell_command") {
        ("shell_command", json!({"command": command}))
    } else if offered.contains(&"shell") {
        ("shell", json!({"command": ["bash", "-lc", command]}))
    } else {
        (EXEC_COMMAND, json!({"cmd": command}))
    };
    (name.to_owned(), arguments)
}

fn item_done(item: Value) -> Value {
    json!({"type": "response.output_item.done", "output_index": 0, "item": item})
}

fn usage() -> Value {
    json!({
        "input_tokens": INPUT_TOKENS,
        "input_tokens_details": null,
        "output_tokens": OUTPUT_TOKENS,
        "output_tokens_details": null,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    })
}

/// The response being answered.
struct Response {
    id: String,
    message_id: String,
}

impl Response {
    fn message_added(&self) -> Value {
        json!({
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"type": "message", "role": "assistant", "id": self.message_id, "content": []},
        })
    }

    fn delta(&self, text: &str) -> Value {
        json!({
            "type": "response.output_text.delta",
            "item_id": self.message_id,
            "output_index": 0,
            "content_index": 0,
            "delta": text,
        })
    }

    fn message(&self, text: &str) -> Value {
        json!({
            "type": "message",
            "role": "assistant",
            "id": self.message_id,
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        })
    }

    fn completed(&self) -> Value {
        json!({
            "type": "response.completed",
            "response": {"id": self.id, "status": "completed", "usage": usage()},
        })
    }

    /// The non-streamed answer.
    fn whole(&self, reply: &Reply, body: &Value) -> Value {
        let item = match reply {
            Reply::Call { call, anchor } => call_item(body, call, *anchor),
            _ => self.message(&reply.text()),
        };
        json!({
            "id": self.id,
            "object": "response",
            "status": "completed",
            "output": [item],
            "usage": usage(),
        })
    }
}
