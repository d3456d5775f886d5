//! The offline mock model API, alone over raw HTTP and then under the real,
//! pinned `claude` and `codex` CLIs (how they are driven headlessly: docs/agent-cli-notes.md
//! and the drivers in nexscoped/src/agents/): a scripted turn with exact usage, memory
//! across turns, a tool round trip, and an interrupt that the mock sees as a
//! hang-up. A CLI test skips with the printed reason when its binary is not
//! installed; each CLI is killed at the latest `CLI_LIFETIME` after spawn.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use nexscope_tests::agent_clis::{
    CLAUDE_VERSION, CODEX_VERSION, Cli, STREAM_JSON_ARGS, claude_bin, claude_env, cli_command,
    codex_bin, codex_env,
};
use nexscope_tests::mock_model::{INPUT_TOKENS, MockModel, OUTPUT_TOKENS};
use nexscope_tests::{TempDir, WAIT, wait_until};
use serde_json::{Value, json};

/// How long after the model request starts a test waits before interrupting,
/// so the CLI has the first events of the stream in hand.
const STREAM_SETTLE: Duration = Duration::from_millis(300);

// ---- the mock alone, over raw HTTP -------------------------------------

/// One request on a fresh connection; (status, headers and body as text).
fn exchange(mock: &MockModel, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(mock.url().trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The JSON body of a whole (non-SSE) response.
fn json_body(response: &str) -> Value {
    let (_, body) = response.split_once("\r\n\r\n").expect("a response body");
    serde_json::from_str(body).expect("a JSON body")
}

#[test]
fn mock_routes_by_path_scripts_by_the_last_user_text_and_refuses_bad_input() {
    let mock = MockModel::start();
    let history = json!({"model": "claude-sonnet-4-6", "messages": [
        {"role": "user", "content": "[[mock:say one]]"},
        {"role": "assistant", "content": [{"type": "text", "text": "one"}]},
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>[[mock:say not me]]</system-reminder>"},
            {"type": "text", "text": "[[mock:count]]"},
        ]},
    ]});
    let (status, response) = exchange(&mock, &post("/v1/messages?beta=true", &history.to_string()));
    assert_eq!(status, 200, "{response}");
    let message = json_body(&response);
    assert_eq!(message["content"][0]["text"], "prompts=2");
    assert_eq!(message["usage"]["input_tokens"], INPUT_TOKENS);
    assert_eq!(message["usage"]["output_tokens"], OUTPUT_TOKENS);

    let (status, response) = exchange(&mock, &post("/v1/messages/count_tokens", "{}"));
    assert_eq!(
        (status, json_body(&response)),
        (200, json!({"input_tokens": 11}))
    );
    let (status, response) = exchange(&mock, b"GET /v1/models?client_version=1 HTTP/1.1\r\n\r\n");
    assert_eq!((status, json_body(&response)), (200, json!({"models": []})));
    let (status, _) = exchange(&mock, b"GET /v1/elsewhere HTTP/1.1\r\n\r\n");
    assert_eq!(status, 404);
    let (status, response) = exchange(&mock, &post("/v1/responses", "{not json"));
    assert_eq!(status, 400);
    assert_eq!(
        json_body(&response)["error"]["type"],
        "invalid_request_error"
    );
    let (status, _) = exchange(&mock, b"\x00\x01garbage\r\n\r\n");
    assert_eq!(status, 400);

    let error =
        json!({"model": "m", "messages": [{"role": "user", "content": "[[mock:error 400 boom]]"}]});
    let (status, response) = exchange(&mock, &post("/v1/messages", &error.to_string()));
    assert_eq!(status, 400);
    assert_eq!(
        json_body(&response),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "boom"}})
    );

    let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/messages",
            "/v1/messages/count_tokens",
            "/v1/models",
            "/v1/elsewhere",
            "/v1/responses",
            "/v1/messages"
        ]
    );
    assert_eq!(
        mock.requests()[0].header("content-type"),
        Some("application/json")
    );
    assert_eq!(mock.hangups(), 0);
}

#[test]
fn mock_responses_stream_adds_the_item_before_its_deltas_and_reads_chunked_bodies() {
    let mock = MockModel::start();
    let body = json!({"model": "gpt-5.5", "stream": true, "input": [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "<environment_context>[[mock:say no]]</environment_context>"},
        ]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[[mock:say hi codex]]"}]},
    ]})
    .to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let request = format!(
        "POST /v1/responses HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n",
        head.len(),
        tail.len()
    );
    let (status, response) = exchange(&mock, request.as_bytes());
    assert_eq!(status, 200, "{response}");
    let events: Vec<&str> = response
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        events,
        [
            "response.created",
            "response.output_item.added",
            "response.output_text.delta",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert!(response.contains(r#""delta":"hi codex""#), "{response}");
    assert!(
        response.contains(
            r#""usage":{"input_tokens":11,"input_tokens_details":null,"output_tokens":7"#
        ),
        "{response}"
    );
    assert_eq!(mock.requests()[0].body["model"], "gpt-5.5");

    let tool = |answered: bool| {
        let mut input = vec![json!({"role": "user", "content": "[[mock:tool echo hi > out.txt]]"})];
        if answered {
            input.push(json!({"type": "function_call", "call_id": "call_mock_0", "name": "exec_command", "arguments": "{}"}));
            input.push(
                json!({"type": "function_call_output", "call_id": "call_mock_0", "output": "hi"}),
            );
        }
        let body = json!({"input": input, "tools": [{"type": "function", "name": "exec_command"}]});
        json_body(&exchange(&mock, &post("/v1/responses", &body.to_string())).1)
    };
    let call = &tool(false)["output"][0];
    assert_eq!(
        (&call["type"], &call["name"], &call["arguments"]),
        (
            &json!("function_call"),
            &json!("exec_command"),
            &json!(r#"{"cmd":"echo hi > out.txt"}"#)
        )
    );
    assert_eq!(tool(true)["output"][0]["content"][0]["text"], "tool done");
}

#[test]
fn mock_counts_a_hang_up_while_holding_and_release_finishes_held_streams() {
    let mock = MockModel::start();
    let hold = json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "[[mock:hold]]"}]});
    let request = post("/v1/messages", &hold.to_string());

    // The client goes away mid-hold: one hang-up.
    let mut stream = TcpStream::connect(mock.url().trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(&request).unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("holding") {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "stream ended before the hold");
        seen.extend_from_slice(&chunk[..n]);
    }
    drop(stream);
    wait_until(|| mock.hangups() == 1);

    // A held stream finishes its reply once released.
    let held = std::thread::spawn({
        let url = mock.url();
        move || {
            let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            stream.write_all(&request).unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response
        }
    });
    wait_until(|| mock.requests().len() == 2);
    std::thread::sleep(Duration::from_millis(100));
    mock.release();
    let response = held.join().unwrap();
    assert!(response.contains("event: message_stop"), "{response}");
    assert_eq!(mock.hangups(), 1);
}

// ---- claude ----------------------------------------------------------------

/// A home and a working directory for one CLI.
struct Dirs {
    _root: TempDir,
    home: PathBuf,
    work: PathBuf,
}

fn dirs(tag: &str) -> Dirs {
    let root = TempDir::new(tag);
    let home = root.path().join("home");
    let work = root.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    Dirs {
        _root: root,
        home,
        work,
    }
}

fn claude_user(text: &str) -> Value {
    json!({"type": "user", "message": {"role": "user", "content": text}, "parent_tool_use_id": null, "session_id": ""})
}

/// Sends one prompt; every line up to and including its `result`.
fn claude_turn(cli: &mut Cli, text: &str) -> Vec<Value> {
    let from = cli.seen.len();
    cli.send(&claude_user(text));
    cli.wait_for(WAIT, "result", |line| line["type"] == "result");
    cli.seen[from..].to_vec()
}

/// The text blocks of the `assistant` lines, in order.
fn assistant_texts(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line["type"] == "assistant")
        .flat_map(|line| {
            line["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|block| block["type"] == "text")
        .filter_map(|block| block["text"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn claude_answers_remembers_runs_a_tool_and_interrupts_against_the_mock() {
    let Some(claude) = claude_bin() else { return };
    let mock = MockModel::start();
    let dirs = dirs("claude");
    let mut command = cli_command(
        &claude,
        &dirs.home,
        &dirs.work,
        &claude_env(&mock, &dirs.home),
    );
    command.args(STREAM_JSON_ARGS);
    let mut cli = Cli::spawn("claude", command);

    // A scripted turn: the text, exact usage, and what reached the mock.
    let turn = claude_turn(&mut cli, "[[mock:say hello there]]");
    let init = turn
        .iter()
        .find(|l| l["type"] == "system" && l["subtype"] == "init")
        .expect("system/init");
    assert_eq!(init["claude_code_version"], CLAUDE_VERSION);
    assert_eq!(assistant_texts(&turn), ["hello there"]);
    let result = turn.last().unwrap();
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["usage"]["input_tokens"], INPUT_TOKENS);
    assert_eq!(result["usage"]["output_tokens"], OUTPUT_TOKENS);
    let requests = mock.requests();
    assert!(
        requests.iter().any(|r| r.method == "POST"
            && r.path == "/v1/messages"
            && r.header("x-api-key") == Some("test-key")),
        "no POST /v1/messages with x-api-key: test-key among {:?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );

    // The second turn carries the first in its history.
    let turn = claude_turn(&mut cli, "[[mock:count]]");
    assert_eq!(assistant_texts(&turn), ["prompts=2"]);

    // A tool round trip: the CLI runs the mock's Bash call in its cwd.
    let turn = claude_turn(&mut cli, "[[mock:tool echo hi > out.txt]]");
    assert_eq!(
        std::fs::read_to_string(dirs.work.join("out.txt"))
            .ok()
            .as_deref(),
        Some("hi\n")
    );
    assert_eq!(
        assistant_texts(&turn).last().map(String::as_str),
        Some("tool done")
    );
    assert_eq!(turn.last().unwrap()["result"], "tool done");

    // An interrupt mid-stream ends the turn and hangs up on the model.
    let before = mock.requests().len();
    let from = cli.seen.len();
    cli.send(&claude_user("[[mock:hold]]"));
    wait_until(|| mock.requests().len() > before);
    std::thread::sleep(STREAM_SETTLE);
    cli.send(&json!({"type": "control_request", "request_id": "req_1", "request": {"subtype": "interrupt"}}));
    let result = cli.wait_for(WAIT, "result", |line| line["type"] == "result");
    assert_eq!(result["is_error"], true, "{result}");
    let acknowledged = |line: &Value| {
        line["type"] == "control_response" && line["response"]["request_id"] == "req_1"
    };
    if !cli.seen[from..].iter().any(acknowledged) {
        cli.wait_for(WAIT, "control_response", acknowledged);
    }
    wait_until(|| mock.hangups() == 1);

    // The process carries on.
    let turn = claude_turn(&mut cli, "[[mock:say after]]");
    assert_eq!(assistant_texts(&turn), ["after"]);
    cli.close_stdin();
    assert_eq!(cli.wait_exit(WAIT), Some(0));
    assert_eq!(mock.hangups(), 1);
}

// ---- codex app-server -------------------------------------------------------

/// Sends a request and returns its `result`; fails the test on an error.
fn rpc(cli: &mut Cli, id: u64, method: &str, params: Value) -> Value {
    cli.send(&json!({"id": id, "method": method, "params": params}));
    let reply = cli.wait_for(WAIT, &format!("reply to {method}"), |line| {
        line["id"] == id && line.get("method").is_none()
    });
    if reply.get("error").is_some() {
        cli.fail(&format!("{method} failed: {reply}"));
    }
    reply["result"].clone()
}

/// Starts a turn with `text`; every line up to and including `turn/completed`.
fn codex_turn(cli: &mut Cli, id: u64, thread: &str, text: &str) -> Vec<Value> {
    let from = cli.seen.len();
    let input = json!([{"type": "text", "text": text}]);
    rpc(
        cli,
        id,
        "turn/start",
        json!({"threadId": thread, "input": input}),
    );
    cli.wait_for(WAIT, "turn/completed", |line| {
        line["method"] == "turn/completed"
    });
    cli.seen[from..].to_vec()
}

/// The `params` of every notification named `method`.
fn notifications<'a>(lines: &'a [Value], method: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| line["method"] == method)
        .map(|line| &line["params"])
        .collect()
}

/// The texts of the completed agentMessage items.
fn agent_messages(lines: &[Value]) -> Vec<String> {
    notifications(lines, "item/completed")
        .into_iter()
        .filter(|params| params["item"]["type"] == "agentMessage")
        .filter_map(|params| params["item"]["text"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn codex_app_server_answers_runs_a_tool_and_interrupts_against_the_mock() {
    let Some(codex) = codex_bin() else { return };
    let mock = MockModel::start();
    let dirs = dirs("codex");
    let mut command = cli_command(
        &codex,
        &dirs.home,
        &dirs.work,
        &codex_env(&mock, &dirs.home),
    );
    command.arg("app-server");
    let mut cli = Cli::spawn("codex", command);

    let client = json!({"name": "nexscope-tests", "title": "nexscope tests", "version": "0.0.0"});
    let init = rpc(&mut cli, 1, "initialize", json!({"clientInfo": client}));
    let agent = init["userAgent"].as_str().unwrap_or_default();
    assert!(agent.contains(&format!("/{CODEX_VERSION} ")), "{init}");
    cli.send(&json!({"method": "initialized"}));
    let work = dirs.work.to_str().unwrap();
    let started = rpc(
        &mut cli,
        2,
        "thread/start",
        json!({"model": "gpt-5.5", "cwd": work, "approvalPolicy": "never", "sandbox": "danger-full-access"}),
    );
    let thread = started["thread"]["id"]
        .as_str()
        .expect("thread id")
        .to_owned();

    // A scripted turn: the text and exact per-turn usage.
    let turn = codex_turn(&mut cli, 3, &thread, "[[mock:say hi codex]]");
    assert_eq!(agent_messages(&turn), ["hi codex"]);
    let usage = notifications(&turn, "thread/tokenUsage/updated");
    let last = &usage.last().expect("thread/tokenUsage/updated")["tokenUsage"]["last"];
    assert_eq!(
        (&last["inputTokens"], &last["outputTokens"]),
        (&json!(INPUT_TOKENS), &json!(OUTPUT_TOKENS)),
        "{last}"
    );
    let completed = notifications(&turn, "turn/completed");
    assert_eq!(completed[0]["turn"]["status"], "completed");
    assert!(mock.requests().iter().all(|r| r.path == "/v1/responses"));

    // A tool round trip: the CLI runs the mock's exec_command in its cwd.
    let turn = codex_turn(&mut cli, 4, &thread, "[[mock:tool echo hi > out.txt]]");
    assert_eq!(
        std::fs::read_to_string(dirs.work.join("out.txt"))
            .ok()
            .as_deref(),
        Some("hi\n")
    );
    assert_eq!(agent_messages(&turn), ["tool done"]);

    // turn/interrupt mid-stream ends the turn and hangs up on the model.
    let before = mock.requests().len();
    let input = json!([{"type": "text", "text": "[[mock:hold]]"}]);
    let started = rpc(
        &mut cli,
        5,
        "turn/start",
        json!({"threadId": thread, "input": input}),
    );
    let turn_id = started["turn"]["id"].as_str().expect("turn id").to_owned();
    wait_until(|| mock.requests().len() > before);
    std::thread::sleep(STREAM_SETTLE);
    rpc(
        &mut cli,
        6,
        "turn/interrupt",
        json!({"threadId": thread, "turnId": turn_id}),
    );
    let completed = cli.wait_for(WAIT, "turn/completed", |line| {
        line["method"] == "turn/completed"
    });
    assert_eq!(
        completed["params"]["turn"]["status"], "interrupted",
        "{completed}"
    );
    wait_until(|| mock.hangups() == 1);

    // The thread carries on.
    let turn = codex_turn(&mut cli, 7, &thread, "[[mock:say after]]");
    assert_eq!(agent_messages(&turn), ["after"]);
    assert_eq!(mock.hangups(), 1);
    cli.close_stdin();
    assert_eq!(cli.wait_exit(WAIT), Some(0));
}
