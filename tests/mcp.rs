//! `nexscopectl mcp` through the official Python MCP client (not ours), against a live
//! relay and two daemons: the 15 tools of docs/protocol.md §3 listed, each one called,
//! the texts and JSON shapes as v1 gave them. And `install codex`.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use nexscope_tests::relay::Relay;
use nexscope_tests::rooms::Member;
use nexscope_tests::{Env, WAIT, bin};
use serde_json::{Value, json};

fn mcp_available() -> bool {
    nexscope_tests::prereq::python_module("mcp", "mcp")
}

fn client(member: &Member, calls: Value) -> Command {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/mcp_client.py");
    let mut command = member.env.command(nexscope_tests::prereq::python());
    command
        .arg(script)
        .arg(bin("nexscopectl"))
        .arg(&member.project)
        .arg(calls.to_string());
    command
}

/// Runs one MCP session with `calls`; the results in order.
fn session(member: &Member, calls: Value) -> (Value, Vec<(bool, String)>) {
    let output = client(member, calls).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    let results = out["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["isError"].as_bool().unwrap(),
                c["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (out, results)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

#[test]
fn the_official_mcp_client_lists_the_15_tools_and_calls_each_one() {
    if !mcp_available() {
        return;
    }
    let relay = Relay::start(&[]);
    let alice = Member::new("mcp-a", &relay.url, "");
    let mut bob = Member::new("mcp-b", &relay.url, "");
    bob.start("bob");

    let (out, r) = session(
        &alice,
        json!([
            ["nexscope_who", {}],
            ["nexscope_start", {"name": "alice"}],
            ["nexscope_start", {"name": "alice"}],
            ["nexscope_who", {}],
            ["nexscope_say", {"to": "bob", "text": "hello bob"}],
            ["nexscope_say", {}],
            ["nexscope_mode", {}],
            ["nexscope_history", {"limit": 10}],
        ]),
    );
    assert_eq!(
        out["server"],
        json!({"name": "nexscope", "version": "0.2.0"})
    );
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "nexscope_accept",
            "nexscope_append",
            "nexscope_before_stop",
            "nexscope_history",
            "nexscope_inbox",
            "nexscope_mode",
            "nexscope_poll",
            "nexscope_receipts",
            "nexscope_reject",
            "nexscope_say",
            "nexscope_start",
            "nexscope_stop",
            "nexscope_update",
            "nexscope_watch",
            "nexscope_who",
        ]
    );
    assert_eq!(
        out["schemas"]["nexscope_say"]["additionalProperties"],
        false
    );
    assert_eq!(r[0], (true, "[error:not_joined] nexscope is not joined to the chat room. Call nexscope_start first.".into()));
    assert_eq!(
        r[1],
        (
            false,
            "joined as alice (mode=manual), online: [alice, bob]".into()
        )
    );
    assert!(
        r[2].1.starts_with("already running: name=alice, pid=")
            && r[2]
                .1
                .ends_with(", mode=manual. Call nexscope_stop first to restart."),
        "{}",
        r[2].1
    );
    assert_eq!(r[3], (false, "online (2): alice, bob".into()));
    assert!(
        r[4].1.starts_with("delivered to [bob] (thread=t-") && r[4].1.ends_with(", targets=bob)"),
        "{}",
        r[4].1
    );
    assert_eq!(
        r[5],
        (true, "[error:bad_args] give text, filePath, or both".into())
    );
    assert_eq!(r[6], (false, "mode=manual (hopLimit=3)".into()));
    assert!(
        r[7].1.contains(" -> me [bob] userAgent thread=t-") && r[7].1.ends_with(": hello bob"),
        "{}",
        r[7].1
    );
    bob.wait_line("hello bob");

    // bob asks twice; alice is in manual mode.
    let t1 = bob.json(&["say", "--role", "userAgent", "@alice", "first", "question"])["threadId"]
        .as_str()
        .unwrap()
        .to_string();
    let t2 = bob.json(&["say", "--role", "userAgent", "@alice", "second", "question"])["threadId"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, r) = session(
        &alice,
        json!([
            ["nexscope_poll", {}],
            ["nexscope_inbox", {}],
            ["nexscope_accept", {"threadId": t1, "extra": "be brief"}],
            ["nexscope_reject", {"threadId": t2, "reason": "busy"}],
            ["nexscope_append", {"threadId": t1, "text": "one more thing"}],
            ["nexscope_mode", {"mode": "auto"}],
            ["nexscope_before_stop", {}],
            ["nexscope_receipts", {"id": t1}],
        ]),
    );
    // alice's appended line on t1 reached bob: at least relayed.
    assert!(!r[7].0 && r[7].1.starts_with("bob  "), "{:?}", r[7]);
    assert!(
        r[7].1.contains(" on ") && r[7].1.contains(&t1),
        "{:?}",
        r[7]
    );
    // The inbox comes in pages when asked (a reply stays small whatever
    // is pending): checked on a fresh pair of questions.
    session(&alice, json!([["nexscope_mode", {"mode": "manual"}]]));
    let t3 = bob.json(&["say", "--role", "userAgent", "@alice", "third"])["threadId"]
        .as_str()
        .unwrap()
        .to_string();
    bob.json(&["say", "--role", "userAgent", "@alice", "fourth"]);
    alice_waits_for(&alice, "fourth");
    let (_, pages) = session(
        &alice,
        json!([
            ["nexscope_inbox", {"limit": 1}],
            ["nexscope_inbox", {"offset": 1, "limit": 1}],
            ["nexscope_mode", {"mode": "auto"}],
        ]),
    );
    let first = json_of(&pages[0].1);
    assert_eq!(first["pendingTotal"], 2, "{first}");
    assert_eq!(first["pending"][0]["threadId"], t3.as_str());
    assert_eq!(
        first["more"], "1 more pending: call nexscope_inbox with offset 1",
        "{first}"
    );
    let second = json_of(&pages[1].1);
    assert_eq!(second["pending"][0]["text"], "fourth", "{second}");
    assert!(second.get("more").is_none(), "{second}");
    let poll = json_of(&r[0].1);
    let events: Vec<&str> = poll["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(events[0], "[presence snapshot] online: alice, bob");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("[userAgent1 bob] → @me (thread=t-")
                && e.ends_with("): first question")),
        "{events:?}"
    );
    assert_eq!(
        poll["session"],
        json!({"name": "alice", "mode": "manual", "hopLimit": 3})
    );
    assert_eq!(poll["online"], json!(["alice", "bob"]));
    let inbox = json_of(&r[1].1);
    assert_eq!(inbox["pending"].as_array().unwrap().len(), 2);
    assert_eq!(inbox["archive"], json!([]));
    let accepted = json_of(&r[2].1);
    assert_eq!(accepted["accepted"], 1);
    assert_eq!(accepted["threadId"], t1.as_str());
    assert_eq!(accepted["extra"], "be brief");
    assert_eq!(accepted["messages"][0]["from"], "[userAgent1 bob]");
    assert_eq!(accepted["messages"][0]["text"], "first question");
    assert_eq!(
        r[3],
        (
            false,
            format!("rejected 1 message(s) on thread={t2}; refusal sent to [bob].")
        )
    );
    assert_eq!(
        r[4],
        (
            false,
            format!("appended (role=user) to thread={t1}; delivered: [bob]")
        )
    );
    assert_eq!(r[5], (false, "mode switched to auto".into()));
    assert_eq!(
        json_of(&r[6].1),
        json!({"can_stop": true, "reason": "no fresh auto tasks", "expired": 0})
    );
    bob.wait_line("[reject] busy");

    // In auto mode a mention must be answered before the turn ends.
    let t3 = bob.json(&["say", "--role", "userAgent", "@alice", "status?"])["threadId"]
        .as_str()
        .unwrap()
        .to_string();
    alice_waits_for(&alice, "status?");
    let (_, r) = session(
        &alice,
        json!([
            ["nexscope_before_stop", {}],
            ["nexscope_say", {"to": ["bob"], "threadId": t3, "text": "all green"}],
            ["nexscope_before_stop", {}],
            ["nexscope_watch", {"timeoutSeconds": 1}],
            ["nexscope_watch", {"timeoutSeconds": 1}],
            ["nexscope_update", {}],
        ]),
    );
    let blocked = json_of(&r[0].1);
    assert_eq!(blocked["can_stop"], false);
    assert_eq!(
        blocked["reason"],
        "1 pending @mention(s) require a reply in auto mode"
    );
    assert_eq!(blocked["auto_tasks"][0]["threadId"], t3.as_str());
    assert!(r[1].1.ends_with("[auto-reply, hop=1]"), "{}", r[1].1);
    assert_eq!(json_of(&r[2].1)["can_stop"], true);
    let pending = json_of(&r[3].1);
    assert_eq!(
        pending["timed_out"], false,
        "queued events come back at once"
    );
    assert!(!pending["events"].as_array().unwrap().is_empty());
    let quiet = json_of(&r[4].1);
    assert_eq!(quiet["timed_out"], true);
    assert_eq!(quiet["events"], json!([]));
    assert!(!r[5].0, "update restarts the daemon: {}", r[5].1);
    bob.wait_line("all green");

    // After the restart the daemon is back in its room; then stop.
    nexscope_tests::wait_until(|| {
        alice.chat("Status", json!({}))["parameters"]["state"]["ready"] == true
    });
    let (_, r) = session(
        &alice,
        json!([["nexscope_stop", {}], ["nexscope_stop", {}]]),
    );
    assert!(
        r[0].1.starts_with("left chat room (was \"alice\", pid "),
        "{}",
        r[0].1
    );
    assert_eq!(r[1], (false, "nexscope is not running.".into()));
}

/// Waits until alice's daemon has the mention (through its own consumer).
fn alice_waits_for(alice: &Member, text: &str) {
    nexscope_tests::wait_until(|| {
        let history = alice.chat("History", json!({"limit": 5}));
        history["parameters"]["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|m| m["text"] == text))
    });
}

#[test]
fn nexscope_watch_returns_as_soon_as_the_room_speaks() {
    if !mcp_available() {
        return;
    }
    let relay = Relay::start(&[]);
    let alice = Member::new("mcpw-a", &relay.url, "");
    let bob = Member::new("mcpw-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    // Drain what is pending, then wait up to 20 s.
    session(&alice, json!([["nexscope_poll", {}]]));
    let child = client(&alice, json!([["nexscope_watch", {"timeoutSeconds": 20}]]))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    bob.ok(&["say", "--role", "userAgent", "@alice", "ping"]);
    let output = child.wait_with_output().unwrap();
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    let watched = json_of(out["calls"][0]["text"].as_str().unwrap());
    assert_eq!(watched["timed_out"], false);
    assert!(
        watched["events"][0].as_str().unwrap().ends_with(": ping"),
        "{watched}"
    );
}

#[test]
fn install_codex_keeps_the_config_and_uninstall_restores_it() {
    let env = Env::new("codex");
    let codex = env.root.path().join("home/.codex");
    std::fs::create_dir_all(&codex).unwrap();
    let config = b"# my codex settings\nmodel = \"o4\"  # keep this comment\n\n[mcp_servers.other]\ncommand = \"other\"\n";
    let agents = b"# My rules\n\nBe nice.\n";
    std::fs::write(codex.join("config.toml"), config).unwrap();
    std::fs::write(codex.join("AGENTS.md"), agents).unwrap();
    let run = |args: &[&str]| env.ctl_ok(args);
    assert!(run(&["install", "codex", "--dry-run"]).contains("would write"));
    assert_eq!(std::fs::read(codex.join("config.toml")).unwrap(), config);
    run(&["install", "codex"]);
    let written = std::fs::read_to_string(codex.join("config.toml")).unwrap();
    assert!(
        written.starts_with("# my codex settings\nmodel = \"o4\"  # keep this comment\n"),
        "{written}"
    );
    let parsed: toml_edit::DocumentMut = written.parse().unwrap();
    assert_eq!(
        parsed["mcp_servers"]["nexscope"]["command"].as_str(),
        Some(bin("nexscopectl").to_str().unwrap())
    );
    assert_eq!(
        parsed["mcp_servers"]["nexscope"]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>(),
        ["mcp"]
    );
    // Codex gives MCP servers only HOME, PATH and PWD unless told more.
    let forwarded: Vec<&str> = parsed["mcp_servers"]["nexscope"]["env_vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for variable in ["XDG_RUNTIME_DIR", "NEXSCOPE_SOCKET", "NEXSCOPE_AGENT_HOST"] {
        assert!(forwarded.contains(&variable), "{forwarded:?}");
    }
    assert_eq!(
        parsed["mcp_servers"]["other"]["command"].as_str(),
        Some("other")
    );
    let fragment = std::fs::read_to_string(codex.join("AGENTS.md")).unwrap();
    assert!(
        fragment.starts_with("# My rules\n\nBe nice.\n\n<!-- nexscope-codex:nexscope:start -->\n"),
        "{fragment}"
    );
    assert!(
        fragment.contains("nexscope_before_stop")
            && fragment
                .trim_end()
                .ends_with("<!-- nexscope-codex:nexscope:end -->")
    );
    let before_second = (
        std::fs::read(codex.join("config.toml")).unwrap(),
        std::fs::read(codex.join("AGENTS.md")).unwrap(),
    );
    assert_eq!(
        run(&["install", "codex"]).trim(),
        "nothing to do: already as asked"
    );
    assert_eq!(
        (
            std::fs::read(codex.join("config.toml")).unwrap(),
            std::fs::read(codex.join("AGENTS.md")).unwrap()
        ),
        before_second
    );
    run(&["install", "codex", "--uninstall"]);
    assert_eq!(std::fs::read(codex.join("config.toml")).unwrap(), config);
    assert_eq!(std::fs::read(codex.join("AGENTS.md")).unwrap(), agents);
}

#[test]
fn a_daemon_out_of_reach_is_named_with_its_socket_not_reported_as_not_joined() {
    if !mcp_available() {
        return;
    }
    let relay = Relay::start(&[]);
    let mut alice = Member::new("mcpu-a", &relay.url, "");
    alice.start("alice");
    alice.kill9();
    let (_, results) = session(&alice, json!([["nexscope_say", {"text": "anyone?"}]]));
    let (is_error, text) = &results[0];
    assert!(is_error, "{text}");
    let socket = alice.env.socket();
    assert!(
        text.starts_with(&format!(
            "[error:daemon_unreachable] cannot reach nexscoped at {}: ",
            socket.display()
        )),
        "{text}"
    );
    assert!(!text.contains("not joined"), "{text}");
}

/// `nexscopectl mcp` spoken to line by line, as a client would: no SDK in
/// between, so that what is on the wire is what is checked.
struct RawMcp {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl RawMcp {
    /// Started and initialized.
    fn start(env: &Env) -> RawMcp {
        let project = std::fs::canonicalize(env.root.path().join("home")).unwrap();
        let mut child = env
            .command(bin("nexscopectl"))
            .args(["--project", project.to_str().unwrap(), "mcp"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = nexscope_tests::line_reader(child.stdout.take().unwrap());
        let mut mcp = RawMcp {
            child,
            stdin,
            lines,
        };
        mcp.send(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}})
            .to_string(),
        );
        assert_eq!(mcp.next()["id"], 1);
        mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
        mcp
    }

    fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message from the server.
    fn next(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(WAIT)
            .expect("the server answers within WAIT");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    }

    /// The result of a tools/call: (isError, text).
    fn call_tool(&mut self, id: u64, tool: &str, arguments: Value) -> (bool, String) {
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}})
            .to_string(),
        );
        let reply = self.next();
        assert_eq!(reply["id"], id, "{reply}");
        let result = &reply["result"];
        (
            result["isError"] == true,
            result["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }
}

impl Drop for RawMcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_line_that_is_not_json_gets_a_parse_error_and_the_server_keeps_serving() {
    let env = Env::new("mcpparse");
    let mut mcp = RawMcp::start(&env);
    mcp.send("{\"jsonrpc\": \"2.0\", \"id\": 2, \"method\": ");
    mcp.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}).to_string());
    let (first, second) = (mcp.next(), mcp.next());
    let (error, pong) = if first.get("error").is_some() {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(error["jsonrpc"], "2.0");
    assert_eq!(error.get("id"), Some(&Value::Null), "{error}");
    assert_eq!(error["error"]["code"], -32700, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Parse error: "),
        "{error}"
    );
    assert_eq!(pong["id"], 3, "still serving: {pong}");
    assert!(pong.get("result").is_some(), "{pong}");
}

#[test]
fn every_tool_schema_is_closed_and_unknown_arguments_are_refused_by_name() {
    let env = Env::new("mcpargs");
    let mut mcp = RawMcp::start(&env);
    mcp.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string());
    let list = mcp.next();
    let tools = list["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 15);
    for tool in tools {
        assert_eq!(
            tool["inputSchema"]["additionalProperties"], false,
            "{}",
            tool["name"]
        );
    }
    assert_eq!(
        mcp.call_tool(3, "nexscope_who", json!({"verbose": true})),
        (
            true,
            "[error:bad_args] nexscope_who has no argument \"verbose\"; it takes none".into()
        )
    );
    assert_eq!(
        mcp.call_tool(4, "nexscope_history", json!({"limit": 5, "since": "x"})),
        (
            true,
            "[error:bad_args] nexscope_history has no argument \"since\"; allowed: limit".into()
        )
    );
    assert_eq!(
        mcp.call_tool(5, "nexscope_say", json!({"to": "bob", "txt": "hi"})),
        (
            true,
            "[error:bad_args] nexscope_say has no argument \"txt\"; allowed: to, text, role, threadId, filePath, wait, timeout".into()
        )
    );
}
