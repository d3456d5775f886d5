//! The nx-ce WebSocket gateway with a plain WebSocket client, as an nx-ce
//! client would use it (docs/nx-ce.md §2–§3), against the real `claude`
//! and the mock model API: connect, ping, errors with nx-ce's exact texts,
//! queries with their id echoed and usage on done, isolated and concurrent
//! sessions, memory across connections, listSessions, closeSession,
//! getSkills, getStatus, cancel, and who may connect.

use std::collections::HashMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nexscope_tests::agents::{AgentWorld, TURN_WAIT, requests_with, serial};
use nexscope_tests::mock_model::INPUT_TOKENS;
use nexscope_tests::{bin, mode_of, wait_until};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

const TOKEN: &str = "gateway-test-token";

struct Gw {
    ws: WebSocket<TcpStream>,
}

impl Gw {
    /// Connects with `token` as a bearer header; the handshake's error otherwise.
    fn connect(port: u16, token: Option<&str>, query: &str) -> Result<Gw, tungstenite::Error> {
        let auth = token.map(|t| ("Authorization", format!("Bearer {t}")));
        Gw::connect_with(port, auth.as_slice(), query)
    }

    fn connect_with(
        port: u16,
        headers: &[(&'static str, String)],
        query: &str,
    ) -> Result<Gw, tungstenite::Error> {
        let mut request = format!("ws://127.0.0.1:{port}/{query}").into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the gateway");
        stream.set_read_timeout(Some(TURN_WAIT)).unwrap();
        let (ws, _) = tungstenite::client::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => tungstenite::Error::ConnectionClosed,
        })?;
        Ok(Gw { ws })
    }

    fn open(port: u16) -> Gw {
        let mut gw = Gw::connect(port, Some(TOKEN), "").expect("gateway handshake");
        assert_eq!(gw.next()["type"], "connected");
        gw
    }

    fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).unwrap();
    }

    fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_string())).unwrap();
    }

    fn next(&mut self) -> Value {
        loop {
            match self.ws.read().expect("a frame from the gateway") {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(frame) => panic!("the gateway closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Sends and returns the reply (the next frame).
    fn ask(&mut self, frame: Value) -> Value {
        self.send(frame);
        self.next()
    }

    /// Frames until the `done` of the query with `id`, grouped by id.
    fn until_done(&mut self, ids: &[&str]) -> HashMap<String, Vec<Value>> {
        let mut turns: HashMap<String, Vec<Value>> = HashMap::new();
        let deadline = Instant::now() + TURN_WAIT;
        while !ids.iter().all(|id| {
            turns
                .get(*id)
                .and_then(|t| t.last())
                .is_some_and(|f| f["type"] == "done")
        }) {
            assert!(
                Instant::now() < deadline,
                "turns {ids:?} did not finish: {turns:?}"
            );
            let frame = self.next();
            let id = frame["queryId"].as_str().unwrap_or("").to_string();
            turns.entry(id).or_default().push(frame);
        }
        turns
    }
}

/// The next frame is the close 1001 "server shutting down"; it is answered.
fn assert_goodbye(gw: &mut Gw) {
    let goodbye = loop {
        match gw.ws.read() {
            Ok(Message::Close(frame)) => break frame.expect("a close code"),
            Ok(_) => continue,
            Err(e) => panic!("the connection ended without the 1001 goodbye: {e}"),
        }
    };
    assert_eq!(u16::from(goodbye.code), 1001);
    assert_eq!(goodbye.reason, "server shutting down");
    let _ = gw.ws.flush();
}

fn text(frames: &[Value]) -> String {
    frames
        .iter()
        .filter(|f| f["type"] == "text")
        .filter_map(|f| f["content"].as_str())
        .collect()
}

/// A world whose daemon serves the gateway on a port the OS picks.
fn gateway_world(tag: &str, access: &str) -> Option<AgentWorld> {
    AgentWorld::new(
        tag,
        "claude",
        &format!("listen = \"127.0.0.1:0\"\n{access}"),
    )
}

/// A daemon of `backend` serving the gateway with the test token, and the
/// gateway's port; None only when the agents group is skipped on request.
fn token_gateway(tag: &str, backend: &str) -> Option<(AgentWorld, nexscope_tests::Daemon, u16)> {
    let access = format!("listen = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n");
    let w = AgentWorld::new(tag, backend, &access)?;
    let daemon = w.daemon();
    let port = gateway_port(&w);
    Some((w, daemon, port))
}

/// The gateway's port, as the daemon's Status reports it.
fn gateway_port(w: &AgentWorld) -> u16 {
    let status = w.call("io.nexscope.Daemon.Status", json!({}));
    let addr = status["parameters"]["status"]["agentGateway"]
        .as_str()
        .expect("Status names the gateway");
    addr.rsplit(':').next().unwrap().parse().unwrap()
}
#[test]
fn connect_ping_and_nx_ce_error_texts() {
    let _serial = serial();
    let Some(w) = gateway_world("gw-basics", &format!("token = \"{TOKEN}\"\n")) else {
        return;
    };
    let _daemon = w.daemon();
    let port = gateway_port(&w);
    let mut gw = Gw::connect(port, Some(TOKEN), "").unwrap();
    let connected = gw.next();
    assert_eq!(connected["type"], "connected");
    assert_eq!(connected["port"], port);
    assert!(connected["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(connected["machineId"].as_str().map(str::len), Some(28));
    assert!(connected["serverTime"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(gw.ask(json!({"type": "ping"}))["type"], "pong");
    gw.send_text("this is not json");
    assert_eq!(
        gw.next(),
        json!({"type": "error", "content": "invalid JSON"})
    );
    assert_eq!(
        gw.ask(json!({"type": "nope"})),
        json!({"type": "error", "content": "unknown type: nope"})
    );
    assert_eq!(
        gw.ask(json!({"type": "query"})),
        json!({"type": "error", "content": "query missing prompt"})
    );
    assert_eq!(
        gw.ask(json!({"type": "query", "prompt": "hi", "permissionMode": "yolo"})),
        json!({"type": "error", "content": "Invalid permissionMode: \"yolo\". Must be one of: default, acceptEdits, bypassPermissions, plan, dontAsk, auto"})
    );
    for bad in [json!(""), json!("   "), json!(123), Value::Null] {
        assert_eq!(
            gw.ask(json!({"type": "query", "prompt": "hi", "model": bad})),
            json!({"type": "error", "content": "model must be a non-empty string"})
        );
    }
    assert!(
        w.mock.requests().is_empty(),
        "refused queries never reach the model"
    );
}

#[test]
fn a_query_echoes_its_id_and_done_carries_usage() {
    let _serial = serial();
    let Some(w) = gateway_world("gw-query", &format!("token = \"{TOKEN}\"\n")) else {
        return;
    };
    let _daemon = w.daemon();
    let port = gateway_port(&w);
    let mut gw = Gw::open(port);
    gw.send(json!({"type": "query", "prompt": "[[mock:say hello gateway]]", "id": "q-1"}));
    let turns = gw.until_done(&["q-1"]);
    let frames = &turns["q-1"];
    assert!(
        turns.keys().all(|k| k == "q-1"),
        "every frame carries the id: {turns:?}"
    );
    assert_eq!(frames[0]["type"], "turn_start");
    assert!(frames[0]["turn"].as_str().unwrap().starts_with("turn_"));
    let init = frames
        .iter()
        .find(|f| f["type"] == "init")
        .expect("init in the first turn");
    assert_eq!(init["model"], "claude-sonnet-4-6");
    assert_eq!(init["cwd"], w.work.to_str().unwrap());
    assert!(init["tools"].as_array().is_some_and(|t| !t.is_empty()));
    assert_eq!(text(frames), "hello gateway");
    let done = frames.last().unwrap();
    assert_eq!(done["sessionId"], init["sessionId"]);
    assert_eq!(done["usage"]["inputTokens"], INPUT_TOKENS);
}

#[test]
fn sessions_are_isolated_concurrent_and_remembered_across_connections() {
    let _serial = serial();
    let Some(w) = gateway_world("gw-sessions", &format!("token = \"{TOKEN}\"\n")) else {
        return;
    };
    let _daemon = w.daemon();
    let port = gateway_port(&w);
    let mut gw = Gw::open(port);
    for n in 1..=3 {
        gw.send(json!({"type": "query", "session": format!("s{n}"), "prompt": format!("[[mock:say answer {n}]]"), "id": format!("c{n}")}));
    }
    let turns = gw.until_done(&["c1", "c2", "c3"]);
    for n in 1..=3 {
        assert_eq!(text(&turns[&format!("c{n}")]), format!("answer {n}"));
    }
    gw.send(json!({"type": "query", "session": "s1", "prompt": "[[mock:count]]", "id": "m1"}));
    let turns = gw.until_done(&["m1"]);
    assert_eq!(
        text(&turns["m1"]),
        "prompts=2",
        "s1 sees only its own history"
    );
    drop(gw);

    let mut again = Gw::open(port);
    again.send(json!({"type": "query", "session": "s2", "prompt": "[[mock:count]]", "id": "m2"}));
    let turns = again.until_done(&["m2"]);
    assert_eq!(text(&turns["m2"]), "prompts=2", "memory across connections");
}

#[test]
fn list_status_skills_and_close() {
    let _serial = serial();
    let Some(w) = gateway_world("gw-admin", &format!("token = \"{TOKEN}\"\n")) else {
        return;
    };
    let _daemon = w.daemon();
    let port = gateway_port(&w);
    let mut gw = Gw::open(port);
    gw.send(json!({"type": "query", "session": "work", "prompt": "[[mock:say ok]]", "id": "a", "model": "claude-haiku-4-5"}));
    gw.until_done(&["a"]);

    let status = gw.ask(json!({"type": "getStatus", "session": "work"}));
    assert_eq!(status["type"], "status");
    assert_eq!(status["session"], "work");
    assert_eq!(status["model"], "claude-haiku-4-5");
    assert_eq!(status["lifecycleState"], "running");
    assert_eq!(status["processing"], false);
    assert_eq!(status["queueLength"], 0);
    assert!(status["sessionId"].is_string());

    let list = gw.ask(json!({"type": "listSessions"}));
    assert_eq!(list["type"], "session_list");
    let rows = list["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "one row per session: {rows:?}");
    assert_eq!(rows[0]["key"], format!("work:{}", w.work.display()));
    assert_eq!(rows[0]["lifecycleState"], "active");

    let requests = w.mock.requests().len();
    let skills = gw.ask(json!({"type": "getSkills", "session": "work"}));
    assert_eq!(skills["type"], "skills");
    assert!(
        skills["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{skills}"
    );
    assert!(skills["note"].is_string());
    // A session with no turn yet: metadata without a model turn.
    let fresh = gw.ask(json!({"type": "getSkills", "session": "fresh"}));
    assert_eq!(fresh["type"], "skills", "{fresh}");
    assert!(
        fresh["claudeCodeVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("2.")),
        "{fresh}"
    );
    assert!(
        fresh["slashCommands"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{fresh}"
    );
    assert_eq!(
        w.mock.requests().len(),
        requests,
        "getSkills made no model call"
    );

    let cwd = w.work.to_str().unwrap();
    let closed = gw.ask(json!({"type": "closeSession", "session": "work", "cwd": cwd}));
    assert_eq!(
        closed,
        json!({"type": "session_closed", "session": "work", "cwd": cwd})
    );
    let status = gw.ask(json!({"type": "getStatus", "session": "work"}));
    assert_eq!(status["lifecycleState"], "stopped");
    let closed = gw.ask(json!({"type": "closeSession", "session": "nobody"}));
    assert_eq!(
        closed,
        json!({"type": "session_closed", "session": "nobody"})
    );
}

#[test]
fn cancel_an_active_turn_and_an_idle_session() {
    let _serial = serial();
    let Some(w) = gateway_world("gw-cancel", &format!("token = \"{TOKEN}\"\n")) else {
        return;
    };
    let _daemon = w.daemon();
    let port = gateway_port(&w);
    let mut gw = Gw::open(port);
    assert_eq!(
        gw.ask(json!({"type": "cancel"})),
        json!({"type": "cancel_failed", "content": "no active turn to cancel"})
    );
    gw.send(json!({"type": "query", "prompt": "[[mock:hold]]", "id": "held"}));
    assert_eq!(gw.next()["type"], "turn_start");
    wait_until(|| requests_with(&w.mock, "[[mock:hold]]") == 1);
    std::thread::sleep(Duration::from_millis(300));
    gw.send(json!({"type": "cancel"}));
    // What arrives until `cancelled`: at most the turn's early frames.
    loop {
        let frame = gw.next();
        if frame["type"] == "cancelled" {
            assert_eq!(frame, json!({"type": "cancelled", "session": "default"}));
            break;
        }
        assert_ne!(frame["type"], "done", "{frame}");
    }
    wait_until(|| w.mock.hangups() == 1);
    // The session takes the next query; the cancelled turn sends nothing more.
    gw.send(json!({"type": "query", "prompt": "[[mock:say next]]", "id": "after"}));
    let turns = gw.until_done(&["after"]);
    assert_eq!(text(&turns["after"]), "next");
    assert!(
        !turns.contains_key("held"),
        "nothing of the cancelled turn after cancelled: {turns:?}"
    );
    assert_eq!(
        gw.ask(json!({"type": "cancel"})),
        json!({"type": "cancel_failed", "content": "no active turn to cancel"})
    );
}

/// A query, a cancel right behind it, and another query, 50 times on one
/// session: every answer is its own query's, nothing of a cancelled turn
/// follows its `cancelled`, every cancelled request that reached the model
/// was hung up, and the agent process was never killed for ignoring one.
fn query_cancel_query_rounds(backend: &str) {
    let _serial = serial();
    let Some((w, daemon, port)) = token_gateway(&format!("gw-rounds-{backend}"), backend) else {
        return;
    };
    let mut gw = Gw::open(port);
    gw.send(json!({"type": "query", "id": "first", "prompt": "[[mock:say ready]]"}));
    assert_eq!(text(&gw.until_done(&["first"])["first"]), "ready");
    let agent = nexscope_tests::agents::children_of(daemon.pid());
    assert_eq!(agent.len(), 1, "one agent process: {agent:?}");
    let mut slowest = Duration::ZERO;
    for round in 0..50 {
        let (cancelled_id, answer_id) = (format!("c{round}"), format!("a{round}"));
        gw.send(json!({"type": "query", "id": cancelled_id,
            "prompt": format!("[[mock:hold]] round {round}, to be cancelled")}));
        // Right behind the query, a moment later, or (every fifth round)
        // once the model is streaming it.
        if round % 5 == 4 {
            let marker = format!("round {round}, to be cancelled");
            wait_until(|| requests_with(&w.mock, &marker) == 1);
        } else {
            std::thread::sleep(Duration::from_millis([0, 1, 5, 50][round % 5]));
        }
        let asked = Instant::now();
        gw.send(json!({"type": "cancel"}));
        gw.send(json!({"type": "query", "id": answer_id,
            "prompt": format!("[[mock:say answer {round}]]")}));
        let mut cancelled = false;
        let mut answer = Vec::new();
        loop {
            let frame = gw.next();
            let id = frame["queryId"].as_str().unwrap_or("");
            match frame["type"].as_str() {
                Some("cancelled") => {
                    assert!(!cancelled, "one cancelled per cancel");
                    slowest = slowest.max(asked.elapsed());
                    cancelled = true;
                }
                _ if id == cancelled_id => {
                    assert!(!cancelled, "round {round}: {frame} after cancelled");
                    assert_ne!(frame["type"], "done", "round {round}: {frame}");
                    assert_ne!(frame["type"], "error", "round {round}: {frame}");
                }
                _ if id == answer_id => {
                    assert!(cancelled, "round {round}: {frame} before cancelled");
                    let done = frame["type"] == "done";
                    answer.push(frame);
                    if done {
                        break;
                    }
                }
                _ => panic!("round {round}: a frame of no query of this round: {frame}"),
            }
        }
        assert_eq!(text(&answer), format!("answer {round}"), "round {round}");
        assert_eq!(answer.last().unwrap()["error"], Value::Null);
    }
    let held = w
        .mock
        .requests()
        .iter()
        .filter(|r| {
            nexscope_tests::agents::answered_directive(r).as_deref() == Some("[[mock:hold]]")
        })
        .count();
    wait_until(|| w.mock.hangups() == held);
    assert!(
        held >= 10,
        "every fifth cancel stops a streaming turn: {held}"
    );
    assert_eq!(
        nexscope_tests::agents::children_of(daemon.pid()),
        agent,
        "the agent was never killed or replaced"
    );
    println!("{backend}: {held} cancelled streams hung up; slowest cancel {slowest:?}");
}

#[test]
fn query_cancel_query_50_rounds_with_claude() {
    query_cancel_query_rounds("claude");
}

#[test]
fn query_cancel_query_50_rounds_with_codex() {
    query_cancel_query_rounds("codex");
}

#[test]
fn only_token_holders_connect_unless_loopback_is_opened() {
    let _serial = serial();
    let Some(w) = gateway_world("gw-token", &format!("token = \"{TOKEN}\"\n")) else {
        return;
    };
    let daemon = w.daemon();
    let port = gateway_port(&w);
    let status = |e: tungstenite::Error| match e {
        tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("not an HTTP refusal: {other}"),
    };
    assert_eq!(Gw::connect(port, None, "").err().map(status), Some(401));
    assert_eq!(
        Gw::connect(port, Some("wrong"), "").err().map(status),
        Some(401)
    );
    assert!(Gw::connect(port, None, &format!("?token={TOKEN}")).is_ok());
    drop(daemon);

    // Enabled by --agents-listen (here its variable), no token configured:
    // one is generated, in a private file.
    let Some(open_world) = AgentWorld::new("gw-open", "claude", "") else {
        return;
    };
    let daemon = open_world.daemon_plus(&[("NEXSCOPE_AGENTS_LISTEN".into(), "127.0.0.1:0".into())]);
    let open_port = gateway_port(&open_world);
    let file = open_world.env.runtime_dir().join("nexscope/agents.token");
    assert_eq!(mode_of(&file), 0o600);
    let token = std::fs::read_to_string(&file).unwrap();
    assert!(Gw::connect(open_port, None, "").is_err());
    assert!(Gw::connect(open_port, Some(&token), "").is_ok());
    drop(daemon);

    // The user's explicit choice: unauthenticated loopback, with a warning.
    let Some(old) = gateway_world("gw-old", "allow_unauthenticated_loopback = true\n") else {
        return;
    };
    let daemon = old.daemon();
    let old_port = gateway_port(&old);
    let mut gw = Gw::connect(old_port, None, "").expect("an old nx-ce client connects");
    assert_eq!(gw.next()["type"], "connected");
    // Without a token, a web page is no client: browsers send an Origin.
    let page = Gw::connect_with(old_port, &[("Origin", "http://evil.example".into())], "");
    assert_eq!(page.err().map(status), Some(401));
    daemon.signal(libc::SIGTERM);
    // The connection ends with nx-ce's goodbye: 1001 "server shutting down".
    assert_goodbye(&mut gw);
    let (_, stderr) = daemon.wait_exit();
    assert!(stderr.contains("without a token"), "{stderr}");
}

#[test]
fn every_client_gets_the_goodbye_at_shutdown_also_mid_turn() {
    let _serial = serial();
    let Some((_w, daemon, port)) = token_gateway("gw-bye", "claude") else {
        return;
    };
    let mut clients: Vec<Gw> = (0..30).map(|_| Gw::open(port)).collect();
    // One of them is streaming a turn and does not read it.
    clients[0].send(json!({"type": "query", "id": "q", "prompt": "[[mock:slow 20 500]]"}));
    std::thread::sleep(Duration::from_millis(500));
    daemon.signal(libc::SIGTERM);
    for gw in &mut clients {
        assert_goodbye(gw);
    }
    let (status, stderr) = daemon.wait_exit();
    assert_eq!(status, Some(0), "{stderr}");
}

#[test]
fn bad_frames_close_with_rfc_codes_and_bearer_is_case_insensitive() {
    let _serial = serial();
    let Some((_w, _daemon, port)) = token_gateway("gw-frames", "claude") else {
        return;
    };
    let lower = ("Authorization", format!("bearer {TOKEN}"));
    let mut gw = Gw::connect_with(port, &[lower], "").expect("bearer in lower case");
    assert_eq!(gw.next()["type"], "connected");
    // Over the 10 MiB frame limit: 1009, and the close is not lost to a
    // reset while the rest of the frame is still arriving.
    gw.send_text(&"x".repeat(11 * 1024 * 1024));
    let code = loop {
        match gw.ws.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(code, Some(1009));
    let mut gw = Gw::open(port);
    gw.ws
        .send(Message::Binary(vec![0xff, 0xfe].into()))
        .unwrap();
    assert_eq!(gw.next()["type"], "error", "binary that is not JSON");
}

#[test]
fn half_open_sockets_do_not_fill_the_gateway() {
    use std::io::Write;
    let _serial = serial();
    let Some((_w, _daemon, port)) = token_gateway("gw-halfopen", "claude") else {
        return;
    };
    let mut connected = Gw::open(port);
    // 40 sockets that never finish their request, from one address.
    let mut slow: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut stream = nexscope_tests::relay::connect_from([127, 0, 0, 1], port).unwrap();
            let _ = stream.write_all(b"GET / HTTP/1.1\r\n");
            stream
        })
        .collect();
    let refused = nexscope_tests::relay::refusals(&mut slow, 40 - 16);
    for response in &refused {
        assert!(response.starts_with("HTTP/1.1 503"), "{response:?}");
    }
    assert_eq!(refused.len(), 40 - 16, "16 handshakes pending per address");
    // Connected clients carry on, and a client from elsewhere gets in.
    assert_eq!(connected.ask(json!({"type": "ping"}))["type"], "pong");
    let stream = nexscope_tests::relay::connect_from([127, 0, 0, 2], port).unwrap();
    let request = format!("ws://127.0.0.1:{port}/?token={TOKEN}");
    let (mut other, _) = tungstenite::client::client(request, stream).expect("joins");
    assert!(matches!(other.read(), Ok(Message::Text(_))));
}

#[test]
fn the_gateway_flag_takes_loopback_only() {
    // The config file's [agents] listen is checked in tests/config.rs.
    let env = nexscope_tests::Env::new("gw-loopback");
    let output = env
        .command(bin("nexscoped"))
        .args(["--agents-listen", "192.0.2.1:43720", "--check-config"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback only"));
}
