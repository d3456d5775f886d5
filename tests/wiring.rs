//! The real, pinned `claude` and `codex` wired up exactly as the README says
//! (`nexscopectl install claude`, `nexscopectl install codex`), started from
//! the user's shell against a mock model, with daemons in a room through a
//! relay: what a new user tries first.

use std::time::{Duration, Instant};

use nexscope_tests::agent_clis::{Cli, claude_bin, codex_bin};
use nexscope_tests::agents::{requests_with, serial};
use nexscope_tests::mock_model::MockModel;
use nexscope_tests::relay::Relay;
use nexscope_tests::rooms::Member;
use nexscope_tests::wait_until;
use nexscope_tests::wiring::{
    claude_command, codex_command, codex_vars, daemon_claude_env, interactive_claude,
    session_status, wait_screen,
};
use serde_json::json;

/// Longest a scripted run may take from spawn to its answer.
const ANSWER_WAIT: Duration = Duration::from_secs(60);
/// How long a `claude -p` may go on after its answer. Before the fix, the
/// plugin's async watcher held every run open for about 30 s; a run without
/// hooks exits within a second.
const EXIT_AFTER_ANSWER: Duration = Duration::from_secs(10);
/// How long the tests wait for something that must not happen (a turn
/// nobody asked for) before they conclude it did not.
const SETTLE: Duration = Duration::from_secs(3);

/// `nexscopectl install claude` as the user, asserting it worked.
fn install_claude(member: &Member) {
    member.env.ctl_ok(&["install", "claude"]);
}

#[test]
fn claude_print_mode_with_the_plugin_exits_right_after_its_answer() {
    let _serial = serial();
    let Some(claude) = claude_bin() else { return };
    let mock = MockModel::start();
    let relay = Relay::start(&[]);
    let bob = Member::new("print-b", &relay.url, "");
    bob.start("bob");
    install_claude(&bob);
    // Twice: the first run takes the presence event, the second finds an
    // empty queue, which is when a watcher would sit and wait.
    for round in ["one", "two"] {
        let mut command = claude_command(&bob.env, &mock, &claude, &bob.project);
        command.args(["-p", &format!("[[mock:say answer {round}]]")]);
        let mut cli = Cli::spawn("claude -p", command);
        cli.close_stdin();
        cli.wait_for(ANSWER_WAIT, "the answer", |line| {
            line.as_str()
                .is_some_and(|l| l.contains(&format!("answer {round}")))
        });
        let answered = Instant::now();
        assert_eq!(cli.wait_exit(EXIT_AFTER_ANSWER), Some(0));
        eprintln!(
            "claude -p round {round}: exited {:?} after its answer",
            answered.elapsed()
        );
    }
    // The plugin was loaded and its hooks ran: the prompt carried the room.
    assert!(
        requests_with(&mock, "[nexscope inbox-stream]") >= 1,
        "the UserPromptSubmit hook put room events into the request"
    );
}

#[test]
fn codex_exec_says_in_the_room_through_the_entry_install_codex_wrote() {
    let _serial = serial();
    let Some(codex) = codex_bin() else { return };
    let mock = MockModel::start();
    let relay = Relay::start(&[]);
    let mut alice = Member::new("codex-a", &relay.url, "");
    let bob = Member::new("codex-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    alice.wait_line("bob");
    // The mock provider's config first, then the installer adds to it, in
    // the same CODEX_HOME the user's codex reads.
    let vars = codex_vars(&bob.env, &mock);
    let output = bob
        .env
        .command(nexscope_tests::bin("nexscopectl"))
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .args(["install", "codex"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let say = json!({"to": "alice", "text": "hello from codex"});
    let mut command = codex_command(&bob.env, &mock, &codex, &bob.project);
    command.args([
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        &format!("[[mock:call nexscope_say {say}]]"),
    ]);
    let mut cli = Cli::spawn("codex exec", command);
    cli.close_stdin();
    let done = cli.wait_for(ANSWER_WAIT, "turn.completed", |line| {
        line["type"] == "turn.completed" || line["type"] == "turn.failed"
    });
    assert_eq!(done["type"], "turn.completed", "{:?}", cli.seen);
    let line = alice.wait_line("hello from codex");
    assert!(line.starts_with("[userAgent1 bob] → @me"), "{line}");
    // The tool's answer went back to the model: the call worked.
    let answered = requests_with(&mock, "delivered to [alice]");
    assert!(answered >= 1, "the model got nexscope_say's result");
}

#[test]
fn a_responder_beside_the_users_plugin_answers_once_and_leaves_the_users_queue_alone() {
    let _serial = serial();
    let Some(claude) = claude_bin() else { return };
    let mock = MockModel::start();
    let relay = Relay::start(&[]);
    let config = format!(
        "mode = \"auto\"\nresponder = \"agent\"\n[agents]\nclaude = \"{}\"\n",
        claude.display()
    );
    let mut alice = Member::with_env("beside-a", &relay.url, &config, |env| {
        daemon_claude_env(env, &mock)
    });
    // The user also runs Claude Code with the plugin, in the same HOME.
    install_claude(&alice);
    let mut bob = Member::new("beside-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    bob.wait_line("alice");

    bob.json(&["say", "@alice", "[[mock:say pong]]"]);
    bob.wait_line("pong");
    bob.json(&["say", "hello all, no reply needed"]);
    alice.wait_line("hello all, no reply needed");
    std::thread::sleep(SETTLE);
    assert_eq!(
        requests_with(&mock, "[[mock:say pong]]"),
        1,
        "one mention, one model request"
    );
    assert_eq!(
        requests_with(&mock, "hello all, no reply needed"),
        0,
        "a broadcast starts no responder turn"
    );
    // The user's own Claude Code sees the broadcast on its next prompt.
    let mut command = claude_command(&alice.env, &mock, &claude, &alice.project);
    command.args(["-p", "[[mock:say seen]]"]);
    let mut cli = Cli::spawn("claude -p", command);
    cli.close_stdin();
    cli.wait_for(ANSWER_WAIT, "the answer", |line| {
        line.as_str().is_some_and(|l| l.contains("seen"))
    });
    wait_until(|| requests_with(&mock, "[[mock:say seen]]") >= 1);
    let with_context = mock
        .requests()
        .iter()
        .filter(|r| r.body.to_string().contains("[[mock:say seen]]"))
        .any(|r| r.body.to_string().contains("hello all, no reply needed"));
    assert!(with_context, "the user's prompt carried the broadcast");
}

#[test]
fn an_idle_interactive_claude_is_woken_by_a_mention() {
    let _serial = serial();
    let Some(claude) = claude_bin() else { return };
    let mock = MockModel::start();
    let relay = Relay::start(&[]);
    let alice = Member::new("tty-a", &relay.url, "");
    let mut bob = Member::new("tty-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    bob.wait_line("alice");
    let Some((tmux, config_dir)) = interactive_claude(&bob, &mock, &claude, "") else {
        return;
    };
    let wait = |what: &str, ready: &dyn Fn() -> bool| wait_screen(&tmux, what, ready);
    // A first prompt typed by the person; it also takes the presence events.
    tmux.send(&["-l", "[[mock:say first answer]]"]);
    tmux.send(&["Enter"]);
    wait("the first turn", &|| {
        requests_with(&mock, "[[mock:say first answer]]") >= 1
    });
    wait("claude idle again", &|| {
        session_status(&config_dir).as_deref() == Some("idle")
    });
    // Idle at its prompt; a mention from the room wakes it.
    alice.ok(&[
        "say",
        "--role",
        "userAgent",
        "@bob",
        "[[mock:say woken up]]",
    ]);
    wait("a turn carrying the mention", &|| {
        requests_with(&mock, "[[mock:say woken up]]") >= 1
    });
    // Woken by the plugin's watcher (its rewake summary), not by a keypress.
    wait("the wake on screen", &|| {
        tmux.screen().contains("nexscope: new messages")
    });
}

/// alice, and bob in auto mode with an interactive claude, registered and
/// idle. Started plainly (`claude`, as the README says: its default mode
/// lets pushed messages in), or with `tools` so that its tools run without
/// a prompt (bypassPermissions, and `crossSessionInbound: accept` in the
/// user's settings, or it would hold pushed messages).
fn pushable_claude(tag: &str, tools: bool) -> Option<Pushable> {
    let claude = claude_bin()?;
    let mock = MockModel::start();
    let relay = Relay::start(&[]);
    let alice = Member::new(&format!("{tag}-a"), &relay.url, "");
    let bob = Member::new(&format!("{tag}-b"), &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    bob.ok(&["mode", "auto"]);
    wait_until(|| {
        alice.json(&["who"])["users"]
            .as_array()
            .is_some_and(|u| u.len() == 2)
    });
    let mut args = "";
    if tools {
        let settings = nexscope_tests::wiring::home(&bob.env).join(".claude/settings.json");
        std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
        std::fs::write(&settings, r#"{"crossSessionInbound": "accept"}"#).unwrap();
        args = "--permission-mode bypassPermissions";
    }
    let (tmux, config_dir) = interactive_claude(&bob, &mock, &claude, args)?;
    // The SessionStart hook registered the session with its socket.
    wait_screen(&tmux, "the session registered as pushable", &|| {
        let live = bob.chat("Live", json!({}));
        live["parameters"]["sessions"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["pushable"] == true && s["held"] == false)
        })
    });
    wait_screen(&tmux, "claude idle", &|| {
        session_status(&config_dir).as_deref() == Some("idle")
    });
    Some(Pushable {
        _relay: relay,
        mock,
        alice,
        bob,
        tmux,
        config_dir,
    })
}

/// Waits until `text` came back to alice on `thread` and the receipt of
/// her message `msg_id` says answered.
fn wait_answered(
    tmux: &nexscope_tests::wiring::Tmux,
    alice: &Member,
    thread: &str,
    text: &str,
    msg_id: &str,
) {
    wait_screen(tmux, "the answer on alice's side", &|| {
        alice.json(&["history"])["items"]
            .as_array()
            .is_some_and(|items| {
                items
                    .iter()
                    .any(|m| m["dir"] == "in" && m["threadId"] == thread && m["text"] == text)
            })
    });
    wait_screen(tmux, "answered", &|| {
        alice.json(&["receipts", msg_id])["receipts"][0]["state"] == "answered"
    });
}

/// After things settle, the conversation as the model last saw it holds
/// the push once, and no other wake (the Stop hook's block, the watcher's
/// rewake).
fn assert_woken_once(mock: &MockModel, tmux: &nexscope_tests::wiring::Tmux) {
    std::thread::sleep(SETTLE);
    let last = mock.requests().last().unwrap().body.to_string();
    assert_eq!(
        last.matches("@mentions for you (bob)").count(),
        1,
        "woken once; the screen:\n{}",
        tmux.screen()
    );
    assert!(!last.contains("NEXSCOPE AUTO MODE"), "{last}");
    assert!(!last.contains("new chat-room messages"), "{last}");
}

/// What `pushable_claude` sets up; the relay lives as long as the rest.
struct Pushable {
    _relay: Relay,
    mock: MockModel,
    alice: Member,
    bob: Member,
    tmux: nexscope_tests::wiring::Tmux,
    config_dir: std::path::PathBuf,
}

#[test]
fn in_auto_mode_a_mention_is_pushed_into_the_idle_session_and_answered_on_its_thread() {
    let _serial = serial();
    let Some(Pushable {
        _relay,
        mock,
        alice,
        bob: _bob,
        tmux,
        ..
    }) = pushable_claude("push", true)
    else {
        return;
    };
    let wait = |what: &str, ready: &dyn Fn() -> bool| wait_screen(&tmux, what, ready);
    let requests_before = mock.requests().len();
    // Nobody types: the mention starts a turn, whose tool answers on the thread.
    let thread = "t-push-1";
    let reply = format!(
        "[[mock:tool nexscopectl say --role userAgent --thread {thread} @alice answered by claude]]"
    );
    let said = alice.json(&[
        "say",
        "--role",
        "userAgent",
        "--thread",
        thread,
        "--wait",
        "surfaced",
        "--timeout",
        "30",
        "@bob",
        &reply,
    ]);
    let msg_id = said["msgId"].as_str().unwrap().to_string();
    assert_eq!(said["receipts"][0]["state"], "surfaced", "{said}");
    assert_eq!(said["receipts"][0]["via"], "push", "{said}");
    wait("the pushed turn", &|| {
        requests_with(&mock, "answered by claude") >= 1
    });
    assert!(mock.requests().len() > requests_before);
    wait_answered(&tmux, &alice, thread, "answered by claude", &msg_id);
    // One push, one turn: the mention did not also come by the Stop hook
    // or the watcher as a second wake.
    assert_woken_once(&mock, &tmux);
}

#[test]
fn a_mention_to_a_busy_session_runs_after_its_turn_and_nothing_is_lost() {
    let _serial = serial();
    let Some(Pushable {
        _relay,
        mock,
        alice,
        bob: _bob,
        tmux,
        config_dir,
    }) = pushable_claude("busy", false)
    else {
        return;
    };
    let wait = |what: &str, ready: &dyn Fn() -> bool| wait_screen(&tmux, what, ready);
    // The person starts a long turn (20 deltas, 200 ms apart).
    tmux.send(&["-l", "[[mock:slow 200 20]] a long one"]);
    tmux.send(&["Enter"]);
    wait("the long turn", &|| requests_with(&mock, "a long one") >= 1);
    wait("claude busy", &|| {
        session_status(&config_dir).as_deref() == Some("busy")
    });
    let said = alice.json(&[
        "say",
        "--role",
        "userAgent",
        "@bob",
        "[[mock:say after the long one]]",
    ]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    // Pushed at once (surfaced by push), run after the turn: Claude Code
    // queues a message that arrives mid-stream.
    wait("the push", &|| {
        alice.json(&["receipts", &thread])["receipts"][0]["via"] == "push"
    });
    wait("the mention's turn", &|| {
        requests_with(&mock, "[[mock:say after the long one]]") >= 1
    });
    let requests = mock.requests();
    let first_with_mention = requests
        .iter()
        .position(|r| {
            r.body
                .to_string()
                .contains("[[mock:say after the long one]]")
        })
        .unwrap();
    let long_turns_after = requests[first_with_mention..]
        .iter()
        .filter(|r| {
            let body = r.body.to_string();
            body.contains("a long one") && !body.contains("after the long one")
        })
        .count();
    assert_eq!(
        long_turns_after, 0,
        "the mention came after the long turn, in its own"
    );
    wait("claude idle", &|| {
        session_status(&config_dir).as_deref() == Some("idle")
    });
    assert_woken_once(&mock, &tmux);
}

#[test]
fn a_live_codex_tui_is_woken_by_a_mention_through_codex_queue() {
    let _serial = serial();
    let Some(codex) = codex_bin() else { return };
    let mock = MockModel::start();
    let relay = Relay::start(&[]);
    let alice = Member::new("cxtui-a", &relay.url, "");
    let bob = Member::new("cxtui-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    bob.ok(&["mode", "auto"]);
    wait_until(|| {
        alice.json(&["who"])["users"]
            .as_array()
            .is_some_and(|u| u.len() == 2)
    });
    let Some(tmux) = nexscope_tests::wiring::interactive_codex(&bob, &mock, &codex) else {
        return;
    };
    let wait = |what: &str, ready: &dyn Fn() -> bool| wait_screen(&tmux, what, ready);
    // The person's first prompt starts the thread; its hook registers it.
    nexscope_tests::wiring::type_prompt(&tmux, "[[mock:say first codex answer]]");
    wait("the first turn", &|| {
        requests_with(&mock, "[[mock:say first codex answer]]") >= 1
    });
    wait("the TUI registered as pushable", &|| {
        bob.chat("Live", json!({}))["parameters"]["sessions"]
            .as_array()
            .is_some_and(|s| {
                s.iter()
                    .any(|s| s["agent"] == "codex" && s["pushable"] == true)
            })
    });
    wait("who says codex", &|| {
        alice.json(&["who"])["agents"]["bob"] == "codex"
    });
    // Nobody types: the mention is queued into the thread, the idle TUI runs
    // it, and the agent answers on the thread with its MCP tool.
    let thread = "t-codex-push-1";
    let answer = json!({"to": "alice", "text": "answered by codex", "threadId": thread});
    let said = alice.json(&[
        "say",
        "--role",
        "userAgent",
        "--thread",
        thread,
        "--wait",
        "surfaced",
        "--timeout",
        "40",
        "@bob",
        &format!("[[mock:call nexscope_say {answer}]]"),
    ]);
    assert_eq!(said["receipts"][0]["via"], "push", "{said}");
    let msg_id = said["msgId"].as_str().unwrap().to_string();
    wait_answered(&tmux, &alice, thread, "answered by codex", &msg_id);
}

#[test]
fn in_manual_mode_only_accept_pushes_and_a_session_gone_is_no_longer_claude() {
    let _serial = serial();
    let Some(Pushable {
        _relay,
        mock,
        alice,
        bob,
        tmux,
        config_dir,
    }) = pushable_claude("manual", false)
    else {
        return;
    };
    let wait = |what: &str, ready: &dyn Fn() -> bool| wait_screen(&tmux, what, ready);
    bob.ok(&["mode", "manual"]);
    wait("who says claude", &|| {
        alice.json(&["who"])["agents"]["bob"] == "claude"
    });
    let said = alice.json(&[
        "say",
        "--role",
        "userAgent",
        "@bob",
        "[[mock:say accepted now]]",
    ]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    // Manual mode: it waits in the inbox; claude is not woken.
    std::thread::sleep(SETTLE);
    assert_eq!(requests_with(&mock, "accepted now"), 0);
    assert_eq!(session_status(&config_dir).as_deref(), Some("idle"));
    // The person accepts from their shell: the thread goes to the session.
    bob.ok(&["accept", &thread]);
    wait("the accepted turn", &|| {
        requests_with(&mock, "[[mock:say accepted now]]") >= 1
    });
    wait("surfaced by push", &|| {
        alice.json(&["receipts", &thread])["receipts"][0]["via"] == "push"
    });
    wait("claude idle", &|| {
        session_status(&config_dir).as_deref() == Some("idle")
    });
    // The session ends: it is no longer listed, who stops saying claude,
    // and a mention's receipt stops at stored.
    tmux.send(&["C-c"]);
    tmux.send(&["C-c"]);
    wait("the session gone", &|| {
        bob.chat("Live", json!({}))["parameters"]["sessions"] == json!([])
    });
    wait("who says daemon only", &|| {
        alice.json(&["who"])["agents"]["bob"] == "daemon"
    });
    bob.ok(&["mode", "auto"]);
    let said = alice.json(&["say", "--role", "userAgent", "@bob", "anyone?"]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    wait("stored", &|| {
        alice.json(&["receipts", &thread])["receipts"][0]["state"] == "stored"
    });
    std::thread::sleep(SETTLE);
    assert_eq!(
        alice.json(&["receipts", &thread])["receipts"][0]["state"],
        "stored"
    );
}
