//! Agent sessions end to end: the real nexscoped hosting the real, pinned
//! `claude` and `codex` against the mock model API on loopback, driven over
//! `io.nexscope.Agent` and `nexscopectl`. Every test runs for both backends:
//! a turn, memory across turns, resume after kill -9 of the daemon, a tool
//! that writes a file, an interrupt the model sees as a hang-up, an error
//! turn, a crashed agent replaced, idle stop, and the live-process cap.

use std::time::Duration;

use nexscope_tests::agent_clis::{claude_bin, claude_env};
use nexscope_tests::agents::{AgentWorld, children_of, done, requests_with, serial, text};
use nexscope_tests::mock_model::{INPUT_TOKENS, MockModel, OUTPUT_TOKENS};
use nexscope_tests::relay::Relay;
use nexscope_tests::rooms::Member;
use nexscope_tests::wait_until;
use serde_json::{Value, json};

fn world(tag: &str, backend: &str, extra: &str) -> Option<AgentWorld> {
    AgentWorld::new(tag, backend, extra)
}

fn status(w: &AgentWorld, session: &str) -> Value {
    let reply = w.call(
        "io.nexscope.Agent.Status",
        json!({"session": session, "cwd": w.work}),
    );
    reply["parameters"]["session"].clone()
}

fn a_turn_and_memory(backend: &str) {
    let _serial = serial();
    let Some(w) = world("agent-turn", backend, "") else {
        return;
    };
    let _daemon = w.daemon();
    let events = w.ask(json!({"prompt": "[[mock:say hello there]]", "id": "q1"}));
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"turn_start"), "{kinds:?}");
    assert!(
        kinds.contains(&"init"),
        "init comes in the first turn: {kinds:?}"
    );
    assert_eq!(text(&events), "hello there");
    let first = done(&events).clone();
    let session_id = first["sessionId"]
        .as_str()
        .expect("done names the agent's session")
        .to_string();
    assert_eq!(first["usage"]["inputTokens"], INPUT_TOKENS);
    assert_eq!(first["usage"]["outputTokens"], OUTPUT_TOKENS);
    // Times increase strictly within the session.
    let times: Vec<u64> = events.iter().filter_map(|e| e["time"].as_u64()).collect();
    assert!(times.windows(2).all(|t| t[0] < t[1]), "{times:?}");

    let events = w.ask(json!({"prompt": "[[mock:count]]"}));
    assert_eq!(text(&events), "prompts=2", "the second turn sees the first");
    assert_eq!(done(&events)["sessionId"], session_id.as_str());

    let usage: Value = serde_json::from_str(&w.env.ctl_ok(&[
        "--json",
        "usage",
        "--cwd",
        w.work.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(usage["session"]["turns"], 2);
    assert_eq!(usage["session"]["usage"]["inputTokens"], 2 * INPUT_TOKENS);
    assert_eq!(usage["session"]["usage"]["outputTokens"], 2 * OUTPUT_TOKENS);
    assert_eq!(usage["turns"].as_array().map(Vec::len), Some(2));
    let daemon_status = w.call("io.nexscope.Daemon.Status", json!({}));
    assert_eq!(daemon_status["parameters"]["status"]["liveAgents"], 1);
    assert_eq!(daemon_status["parameters"]["status"]["agentSessions"], 1);
    let listed = w.env.ctl_ok(&["sessions"]);
    assert!(
        listed.contains("default") && listed.contains(backend),
        "{listed}"
    );
}

#[test]
fn claude_a_turn_and_memory() {
    a_turn_and_memory("claude");
}

#[test]
fn codex_a_turn_and_memory() {
    a_turn_and_memory("codex");
}

fn resume_after_kill_9(backend: &str) {
    let _serial = serial();
    let Some(w) = world("agent-resume", backend, "") else {
        return;
    };
    let daemon = w.daemon();
    let events = w.ask(json!({"prompt": "[[mock:say remember me]]"}));
    let session_id = done(&events)["sessionId"].clone();
    let agents = children_of(daemon.pid());
    assert_eq!(agents.len(), 1, "one agent process: {agents:?}");
    daemon.signal(libc::SIGKILL);
    drop(daemon);
    // The agent does not outlive its daemon.
    wait_until(|| {
        !std::path::Path::new(&format!("/proc/{}", agents[0])).exists() || is_zombie(agents[0])
    });

    let _daemon = w.daemon();
    let before = status(&w, "default");
    assert_eq!(before["live"], false);
    assert_eq!(before["sessionId"], session_id);
    let events = w.ask(json!({"prompt": "[[mock:count]]"}));
    assert_eq!(text(&events), "prompts=2", "the conversation was resumed");
    assert_eq!(done(&events)["sessionId"], session_id);
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| s.contains("State:\tZ"))
        .unwrap_or(true)
}

#[test]
fn claude_resume_after_kill_9() {
    resume_after_kill_9("claude");
}

#[test]
fn codex_resume_after_kill_9() {
    resume_after_kill_9("codex");
}

fn tool_writes_a_file(backend: &str) {
    let _serial = serial();
    let Some(w) = world("agent-tool", backend, "") else {
        return;
    };
    let _daemon = w.daemon();
    let events = w.ask(json!({"prompt": "[[mock:tool echo from-the-tool > out.txt]]"}));
    let tool = events
        .iter()
        .find(|e| e["type"] == "tool_use")
        .expect("a tool_use event");
    let result = events
        .iter()
        .find(|e| e["type"] == "tool_result")
        .expect("a tool_result event");
    assert_eq!(tool["id"], result["id"], "the result answers the call");
    assert_eq!(result["isError"], false);
    assert_eq!(text(&events), "tool done");
    assert_eq!(
        std::fs::read_to_string(w.work.join("out.txt")).unwrap(),
        "from-the-tool\n"
    );
}

#[test]
fn claude_tool_writes_a_file() {
    tool_writes_a_file("claude");
}

#[test]
fn codex_tool_writes_a_file() {
    tool_writes_a_file("codex");
}

fn interrupt_mid_stream(backend: &str) {
    let _serial = serial();
    let Some(w) = world("agent-cancel", backend, "") else {
        return;
    };
    let _daemon = w.daemon();
    // Nothing runs yet: nothing to cancel.
    let idle = w.call("io.nexscope.Agent.Cancel", json!({"cwd": w.work}));
    assert_eq!(idle["error"], "io.nexscope.Agent.NoActiveTurn");
    assert_eq!(idle["parameters"]["message"], "no active turn to cancel");

    let held = std::thread::scope(|scope| {
        let turn = scope.spawn(|| w.query(json!({"prompt": "[[mock:hold]]"})));
        wait_until(|| requests_with(&w.mock, "[[mock:hold]]") == 1);
        // Let the CLI read the start of the stream before it is interrupted.
        std::thread::sleep(Duration::from_millis(300));
        let cancelled = w.call("io.nexscope.Agent.Cancel", json!({"cwd": w.work}));
        assert!(cancelled.get("error").is_none(), "{cancelled}");
        turn.join().unwrap().expect("the held query ends")
    });
    let end = done(&held);
    assert_eq!(end["cancelled"], true, "{end}");
    assert!(
        end.get("error").is_none(),
        "a cancel is not an error: {end}"
    );
    // The model stream was hung up: tokens stopped being spent.
    wait_until(|| w.mock.hangups() == 1);
    // The session stays usable.
    let events = w.ask(json!({"prompt": "[[mock:say still here]]"}));
    assert_eq!(text(&events), "still here");
    let usage = w.call(
        "io.nexscope.Agent.Usage",
        json!({"cwd": w.work, "turns": 5}),
    );
    let turns = usage["parameters"]["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["cancelled"], true);
}

#[test]
fn claude_interrupt_mid_stream() {
    interrupt_mid_stream("claude");
}

#[test]
fn codex_interrupt_mid_stream() {
    interrupt_mid_stream("codex");
}

fn error_turn(backend: &str) {
    let _serial = serial();
    let Some(w) = world("agent-error", backend, "") else {
        return;
    };
    let _daemon = w.daemon();
    let events = w
        .query(json!({"prompt": "[[mock:error 400 boom]]"}))
        .unwrap();
    let end = done(&events);
    let error = end["error"].as_str().expect("the turn reports its error");
    assert!(error.contains("boom"), "{error}");
    let events = w.ask(json!({"prompt": "[[mock:say recovered]]"}));
    assert_eq!(text(&events), "recovered");
    assert_eq!(status(&w, "default")["turns"], 2);
}

#[test]
fn claude_error_turn() {
    error_turn("claude");
}

#[test]
fn codex_error_turn() {
    error_turn("codex");
}

fn crashed_agent_is_reported_and_replaced(backend: &str) {
    let _serial = serial();
    let Some(w) = world("agent-crash", backend, "") else {
        return;
    };
    let daemon = w.daemon();
    w.ask(json!({"prompt": "[[mock:say first]]"}));
    let outcome = std::thread::scope(|scope| {
        let turn = scope.spawn(|| w.query(json!({"prompt": "[[mock:hold]]"})));
        wait_until(|| requests_with(&w.mock, "[[mock:hold]]") >= 1);
        for pid in children_of(daemon.pid()) {
            // SAFETY: kill(2) on a child of our daemon.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        turn.join().unwrap().expect("the query ends")
    });
    let error = done(&outcome)["error"]
        .as_str()
        .expect("the crash is reported")
        .to_string();
    assert!(error.contains("exited"), "{error}");
    let after = status(&w, "default");
    assert_eq!(after["live"], false, "no zombie session: {after}");
    // The next query starts a new process that resumes the conversation.
    let events = w.ask(json!({"prompt": "[[mock:count]]"}));
    assert!(text(&events).starts_with("prompts="), "{events:?}");
    assert_eq!(children_of(daemon.pid()).len(), 1);
}

#[test]
fn claude_crashed_agent_is_reported_and_replaced() {
    crashed_agent_is_reported_and_replaced("claude");
}

#[test]
fn codex_crashed_agent_is_reported_and_replaced() {
    crashed_agent_is_reported_and_replaced("codex");
}

#[test]
fn idle_agents_stop_and_resume_and_the_live_cap_holds() {
    let _serial = serial();
    let Some(w) = world("agent-idle", "claude", "idle_timeout = 1\nmax_live = 1\n") else {
        return;
    };
    let daemon = w.daemon();
    w.ask(json!({"prompt": "[[mock:say one]]"}));
    // Stopped for idleness, record kept.
    wait_until(|| status(&w, "default")["live"] == false && children_of(daemon.pid()).is_empty());
    let events = w.ask(json!({"prompt": "[[mock:count]]"}));
    assert_eq!(text(&events), "prompts=2", "resumed after the idle stop");

    // With one slot, a second session takes it from the idle first one.
    let other = w.dir("other");
    let events = w.ask(json!({"prompt": "[[mock:say two]]", "session": "second", "cwd": other}));
    assert_eq!(text(&events), "two");
    assert!(
        children_of(daemon.pid()).len() <= 1,
        "the cap of one live agent holds"
    );
}

#[test]
fn sessions_are_isolated_by_name_and_cwd() {
    let _serial = serial();
    let Some(w) = world("agent-isolated", "claude", "") else {
        return;
    };
    let _daemon = w.daemon();
    let other = w.dir("elsewhere");
    w.ask(json!({"prompt": "[[mock:say a]]"}));
    w.ask(json!({"prompt": "[[mock:say b]]", "session": "b"}));
    let in_a = w.ask(json!({"prompt": "[[mock:count]]"}));
    let in_b = w.ask(json!({"prompt": "[[mock:count]]", "session": "b"}));
    let in_other = w.ask(json!({"prompt": "[[mock:count]]", "cwd": other}));
    assert_eq!(text(&in_a), "prompts=2");
    assert_eq!(text(&in_b), "prompts=2");
    assert_eq!(
        text(&in_other),
        "prompts=1",
        "same name, other cwd: another conversation"
    );
    let sessions = w.call("io.nexscope.Agent.Sessions", json!({}));
    assert_eq!(
        sessions["parameters"]["sessions"].as_array().map(Vec::len),
        Some(3)
    );
}

#[test]
fn model_and_permission_mode_are_validated_and_applied() {
    let _serial = serial();
    let Some(w) = world("agent-model", "claude", "") else {
        return;
    };
    let _daemon = w.daemon();
    let refused = w
        .query(json!({"prompt": "hi", "permissionMode": "yolo"}))
        .unwrap_err();
    assert_eq!(refused["error"], "io.nexscope.Agent.BadArgs");
    assert_eq!(
        refused["parameters"]["message"],
        "Invalid permissionMode: \"yolo\". Must be one of: default, acceptEdits, bypassPermissions, plan, dontAsk, auto"
    );
    let refused = w.query(json!({"prompt": "hi", "model": "  "})).unwrap_err();
    assert_eq!(
        refused["parameters"]["message"],
        "model must be a non-empty string"
    );
    let refused = w.query(json!({"prompt": ""})).unwrap_err();
    assert_eq!(refused["parameters"]["message"], "query missing prompt");
    let refused = w
        .query(json!({"prompt": "hi", "cwd": "/no/such/dir"}))
        .unwrap_err();
    assert!(
        refused["parameters"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{refused}"
    );

    w.ask(json!({"prompt": "[[mock:say first]]"}));
    w.ask(json!({"prompt": "[[mock:say second]]", "model": "claude-haiku-4-5", "permissionMode": "plan"}));
    let last = w
        .mock
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.body.to_string().contains("[[mock:say second]]"))
        .unwrap();
    assert_eq!(
        last.body["model"], "claude-haiku-4-5",
        "the model was switched for the turn"
    );
    let now = status(&w, "default");
    assert_eq!(now["model"], "claude-haiku-4-5");
    assert_eq!(now["permissionMode"], "plan");
}

#[test]
fn nexscopectl_query_streams_the_answer() {
    let _serial = serial();
    let Some(w) = world("agent-ctl", "claude", "") else {
        return;
    };
    let _daemon = w.daemon();
    let work = w.work.to_str().unwrap();
    let out = w
        .env
        .ctl_ok(&["query", "--cwd", work, "[[mock:say", "from", "ctl]]"]);
    assert_eq!(out, "from ctl\n");
    let json_out = w.env.ctl_ok(&[
        "--json",
        "query",
        "--cwd",
        work,
        "-s",
        "j",
        "[[mock:say x]]",
    ]);
    let events: Vec<Value> = json_out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.last().unwrap()["event"]["type"], "done");
    let failed = w
        .env
        .ctl(&["query", "--cwd", work, "[[mock:error 400 nope]]"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("nope"));
    // Forgetting a live session: the next query starts a new conversation.
    w.ask(json!({"prompt": "[[mock:say remember]]", "session": "f"}));
    let forgotten = w
        .env
        .ctl_ok(&["close", "--cwd", work, "-s", "f", "--forget"]);
    assert!(forgotten.contains("forgotten"), "{forgotten}");
    assert!(status(&w, "f").is_null());
    let events = w.ask(json!({"prompt": "[[mock:count]]", "session": "f"}));
    assert_eq!(text(&events), "prompts=1", "forgotten means forgotten");
    let closed = w.env.ctl_ok(&["close", "--cwd", work]);
    assert!(closed.contains("closed default"), "{closed}");
    assert_eq!(status(&w, "default")["live"], false);
    let forgotten = w.env.ctl_ok(&["close", "--cwd", work, "--forget"]);
    assert!(forgotten.contains("forgotten"), "{forgotten}");
    assert!(
        status(&w, "default").is_null(),
        "a forgotten session has no record"
    );
    let cancel = w.env.ctl(&["cancel", "--cwd", work]);
    assert_eq!(cancel.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cancel.stderr).contains("no active turn to cancel"));
}

#[test]
fn the_headless_responder_answers_mentions_until_the_hop_limit() {
    let _serial = serial();
    let Some(claude) = claude_bin() else { return };
    let mock = MockModel::start();
    let relay = Relay::start(&[]);
    let config = format!(
        "mode = \"auto\"\nhop_limit = 2\nresponder = \"agent\"\n[agents]\nclaude = \"{}\"\n",
        claude.display()
    );
    let mut alice = Member::with_env("responder-a", &relay.url, &config, |env| {
        claude_env(&mock, &env.root.path().join("home"))
    });
    let mut bob = Member::new("responder-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    bob.wait_line("alice");

    let first = bob.json(&["say", "@alice", "[[mock:say pong one]]"]);
    let thread = first["threadId"].as_str().unwrap().to_string();
    let line = bob.wait_line("pong one");
    assert!(
        line.contains(&format!("(thread={thread}) hop=1: pong one")),
        "{line}"
    );
    assert!(
        line.contains("alice"),
        "the answer comes from alice: {line}"
    );
    let history = bob.json(&["history"]);
    let reply = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["text"] == "pong one")
        .cloned()
        .unwrap();
    assert_eq!(reply["role"], "userAgent");
    assert_eq!(reply["threadId"], thread.as_str());

    bob.json(&[
        "say",
        "--thread",
        &thread,
        "@alice",
        "[[mock:say pong two]]",
    ]);
    // A person's mention carries hop 0, so each answer is hop 1; the limit
    // counts alice's auto replies on the thread.
    let line = bob.wait_line("pong two");
    assert!(
        line.contains(&format!("(thread={thread}) hop=1: pong two")),
        "{line}"
    );
    alice.wait_line("reached hop limit (2)");
    // Past the hop limit the mention waits in alice's inbox, unanswered.
    bob.json(&[
        "say",
        "--thread",
        &thread,
        "@alice",
        "[[mock:say pong three]]",
    ]);
    wait_until(|| {
        alice.json(&["inbox"])["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["text"] == "[[mock:say pong three]]"))
    });
    assert_eq!(
        requests_with(&mock, "pong three"),
        0,
        "no agent turn past the hop limit"
    );
    assert_eq!(requests_with(&mock, "pong two"), 1);
    let agent = alice.env.ctl_ok(&[
        "--json",
        "usage",
        "-s",
        "nexscope-responder",
        "--cwd",
        alice.project.to_str().unwrap(),
    ]);
    let usage: Value = serde_json::from_str(&agent).unwrap();
    assert_eq!(usage["session"]["turns"], 2);

    // What the conversation cost, on both sides: each answer's receipt
    // carried its turn's tokens (INPUT_TOKENS/OUTPUT_TOKENS, one model call).
    let first_id = first["msgId"].as_str().unwrap();
    wait_until(|| {
        let receipts = bob.json(&["receipts", first_id]);
        receipts["receipts"][0]["usage"]["outputTokens"] == OUTPUT_TOKENS
    });
    let costs = |member: &Member| -> Value {
        let out = member.env.ctl_ok(&[
            "--json",
            "usage",
            "--room",
            "--cwd",
            member.project.to_str().unwrap(),
        ]);
        serde_json::from_str(&out).unwrap()
    };
    wait_until(|| costs(&bob)["theirs"]["inputTokens"] == 2 * INPUT_TOKENS);
    let at_bob = costs(&bob);
    assert_eq!(
        at_bob["theirs"]["outputTokens"],
        2 * OUTPUT_TOKENS,
        "{at_bob}"
    );
    assert_eq!(
        at_bob["threads"][0]["threadId"],
        thread.as_str(),
        "{at_bob}"
    );
    assert_eq!(at_bob["threads"][0]["answers"], 2, "{at_bob}");
    let at_alice = costs(&alice);
    assert_eq!(
        at_alice["ours"]["inputTokens"],
        2 * INPUT_TOKENS,
        "{at_alice}"
    );
    assert_eq!(at_alice["theirs"]["inputTokens"], 0, "{at_alice}");
    let text = bob
        .env
        .ctl_ok(&["usage", "--room", "--cwd", bob.project.to_str().unwrap()]);
    assert!(text.contains(&format!("{thread}  answers: 2")), "{text}");
}

#[test]
fn skills_start_a_fresh_conversation_and_are_named_in_each_prompt() {
    let _serial = serial();
    let Some(w) = world("agent-skills", "claude", "") else {
        return;
    };
    let _daemon = w.daemon();
    w.ask(json!({"prompt": "[[mock:say before skills]]"}));
    let events = w.ask(json!({"prompt": "[[mock:count]]", "skills": ["review"]}));
    assert_eq!(
        text(&events),
        "prompts=1",
        "a new skills set: a new conversation"
    );
    let last = w.mock.requests().into_iter().last().unwrap();
    assert!(
        last.body
            .to_string()
            .contains("Skill tool to run these skills: /review"),
        "the prompt names the skills"
    );
    // No skills given: the session keeps its conversation and its skills.
    let events = w.ask(json!({"prompt": "[[mock:count]]"}));
    assert_eq!(text(&events), "prompts=2");
    let events = w.ask(json!({"prompt": "[[mock:count]]", "skills": ["review"]}));
    assert_eq!(
        text(&events),
        "prompts=3",
        "the same set: the same conversation"
    );
    let events = w.ask(json!({"prompt": "[[mock:count]]", "skills": ["test", "lint"]}));
    assert_eq!(text(&events), "prompts=1");
}

#[test]
fn bypass_as_root_outside_a_sandbox_is_refused_with_the_reason() {
    if !nexscope_tests::prereq::root(
        "Claude Code refusing bypassPermissions (it refuses only root)",
    ) {
        return;
    }
    let _serial = serial();
    let Some(w) = world("agent-root", "claude", "") else {
        return;
    };
    let _daemon = w.daemon_without("IS_SANDBOX");
    let events = w.query(json!({"prompt": "[[mock:say hi]]"})).unwrap();
    let error = done(&events)["error"].as_str().unwrap().to_string();
    assert!(error.contains("IS_SANDBOX=1"), "{error}");
    assert!(w.mock.requests().is_empty());
    // Another mode works as root.
    let events = w.ask(json!({"prompt": "[[mock:say as root]]", "permissionMode": "default"}));
    assert_eq!(text(&events), "as root");
}

#[test]
fn a_query_waiting_for_a_process_slot_gets_it_when_one_goes_idle() {
    let _serial = serial();
    let Some(w) = world("agent-slot", "claude", "max_live = 1\n") else {
        return;
    };
    let daemon = w.daemon();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| w.query(json!({"prompt": "[[mock:hold]]", "session": "a"})));
        wait_until(|| requests_with(&w.mock, "[[mock:hold]]") == 1);
        let second =
            scope.spawn(|| w.query(json!({"prompt": "[[mock:say second]]", "session": "b"})));
        wait_until(|| status(&w, "b")["queueLength"] == 1);
        // Waiting for a slot, the session still answers at once.
        let cancel = w.call(
            "io.nexscope.Agent.Cancel",
            json!({"session": "b", "cwd": w.work}),
        );
        assert_eq!(cancel["error"], "io.nexscope.Agent.NoActiveTurn");
        assert_eq!(children_of(daemon.pid()).len(), 1, "one live agent at most");
        w.mock.release();
        let first = first.join().unwrap().expect("the held turn ends");
        assert_eq!(text(&first), "holding");
        // "a" is idle now: it gives its process up for "b".
        let second = second.join().unwrap().expect("the waiting turn runs");
        assert_eq!(text(&second), "second");
    });
    assert!(children_of(daemon.pid()).len() <= 1);
}

#[test]
fn ctrl_c_during_nexscopectl_query_stops_the_agent() {
    let _serial = serial();
    let Some(w) = world("agent-ctrl-c", "claude", "") else {
        return;
    };
    let _daemon = w.daemon();
    let work = w.work.to_str().unwrap();
    let mut query = w
        .env
        .command(nexscope_tests::bin("nexscopectl"))
        .args(["query", "--cwd", work, "[[mock:hold]]"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(|| requests_with(&w.mock, "[[mock:hold]]") == 1);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(query.id() as i32, libc::SIGINT) };
    let deadline = std::time::Instant::now() + nexscope_tests::WAIT;
    let status = loop {
        if let Some(status) = query.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nexscopectl query did not end after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let mut stderr = String::new();
    std::io::Read::read_to_string(query.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("cancelling the turn") && stderr.contains("[cancelled]"),
        "{stderr}"
    );
    // The model's stream was hung up, and the session goes on.
    wait_until(|| w.mock.hangups() == 1);
    let events = w.ask(json!({"prompt": "[[mock:say after ctrl-c]]"}));
    assert_eq!(text(&events), "after ctrl-c");
}

#[test]
fn a_missing_agent_cli_is_named_with_what_to_do() {
    let w = AgentWorld::with_programs(
        "agent-missing",
        "claude",
        Some("/nonexistent/claude".into()),
        Some("/nonexistent/codex".into()),
        "",
    );
    let _daemon = w.daemon();
    for backend in ["claude", "codex"] {
        let events = w
            .query(json!({"prompt": "hi", "session": backend, "backend": backend}))
            .unwrap();
        let error = done(&events)["error"].as_str().unwrap().to_string();
        assert!(
            error.contains(&format!("/nonexistent/{backend} was not found"))
                && error.contains("[agents]"),
            "{error}"
        );
    }
    // The session keeps no process and reports the error.
    let status = w.call(
        "io.nexscope.Agent.Status",
        json!({"session": "claude", "cwd": w.work}),
    );
    assert_eq!(status["parameters"]["session"]["live"], false);
    assert!(
        status["parameters"]["session"]["lastError"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
}
