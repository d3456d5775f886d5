//! A stand-in for `claude` that answers at once, for the benchmark that
//! isolates what nexscoped itself adds to a turn: it speaks the same
//! stream-json (an init, one assistant text echoing the prompt, a result per
//! user line; a success for each control request) with no model behind it.
//! The real CLI is what every test runs; this only serves the overhead figure.

use std::io::{BufRead, Write};

use serde_json::{Value, json};

fn main() {
    let session = format!("echo-{}", std::process::id());
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            eprintln!("not JSON: {line}");
            std::process::exit(1);
        };
        let replies = match message["type"].as_str() {
            Some("user") => {
                let prompt = message["message"]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                vec![
                    json!({"type": "system", "subtype": "init", "session_id": session, "model": "echo", "tools": []}),
                    json!({"type": "assistant", "session_id": session, "message": {"role": "assistant", "content": [{"type": "text", "text": prompt}]}}),
                    json!({"type": "result", "subtype": "success", "is_error": false, "session_id": session,
                        "usage": {"input_tokens": 1, "output_tokens": 1}, "total_cost_usd": 0.0}),
                ]
            }
            Some("control_request") => vec![json!({"type": "control_response",
                "response": {"subtype": "success", "request_id": message["request_id"], "response": {}}})],
            _ => Vec::new(),
        };
        for reply in replies {
            if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
                return;
            }
        }
    }
}
