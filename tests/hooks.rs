//! `nexscopectl hook …` as Claude Code runs it: JSON on stdin with `cwd`,
//! the answer on stdout, byte for byte as docs/protocol.md §2.12, §2.9 and
//! §2.13 give it; exit 0 whatever goes wrong, so a prompt is never blocked.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use nexscope_tests::relay::Relay;
use nexscope_tests::rooms::{Member, hook_with};
use nexscope_tests::{Env, bin};
use serde_json::{Value, json};

/// Runs a hook for `member`'s project as session `s1`; (exit code, stdout).
fn hook(env: &Env, project: &std::path::Path, which: &str) -> (Option<i32>, String) {
    let input = json!({"session_id": "s1", "hook_event_name": which, "cwd": project});
    hook_with(env, &input, which, &[])
}

/// A UserPromptSubmit of session `session`: the event lines it was given.
fn prompt_events(member: &Member, session: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let input = json!({"session_id": session, "hook_event_name": "UserPromptSubmit", "cwd": member.project});
    let (code, stdout) = hook_with(&member.env, &input, "user-prompt-submit", vars);
    assert_eq!(code, Some(0));
    if stdout == "{}\n" {
        return Vec::new();
    }
    context(&stdout)
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

fn context(stdout: &str) -> String {
    let value: Value = serde_json::from_str(stdout).expect("hook output is JSON");
    assert_eq!(
        value["hookSpecificOutput"]["hookEventName"],
        "UserPromptSubmit"
    );
    value["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn with_no_daemon_every_hook_answers_at_once_and_never_blocks() {
    let env = Env::new("hook-nodaemon");
    let project = env.root.path().to_path_buf();
    assert_eq!(
        hook(&env, &project, "user-prompt-submit"),
        (Some(0), "{}\n".into())
    );
    assert_eq!(hook(&env, &project, "stop"), (Some(0), "{}\n".into()));
    assert_eq!(hook(&env, &project, "watch"), (Some(0), String::new()));
    assert!(!env.socket().exists(), "a hook does not start a daemon");
}

#[test]
fn with_no_room_for_the_project_the_hooks_answer_empty() {
    let env = Env::new("hook-noroom");
    let _daemon = env.daemon();
    let project = env.root.path().to_path_buf();
    assert_eq!(
        hook(&env, &project, "user-prompt-submit"),
        (Some(0), "{}\n".into())
    );
    assert_eq!(hook(&env, &project, "stop"), (Some(0), "{}\n".into()));
}

#[test]
fn user_prompt_submit_gives_each_event_once_in_the_spec_lines() {
    let relay = Relay::start(&[]);
    let alice = Member::new("hook-a", &relay.url, "");
    let mut bob = Member::new("hook-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    // From a subdirectory of the project: the hook finds the project above it.
    let sub = bob.project.join("src");
    std::fs::create_dir_all(&sub).unwrap();
    let said = alice.json(&["say", "--role", "userAgent", "@bob", "line one\nline two"]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    alice.ok(&["say", "--role", "userAgent", "deploy", "at", "5"]);
    let file = alice.env.root.path().join("notes.txt");
    std::fs::write(&file, b"hello").unwrap();
    alice.ok(&["say", "--file", file.to_str().unwrap(), "@bob", "notes"]);
    bob.wait_line("(file received) notes.txt");
    let (code, stdout) = hook(&bob.env, &sub, "user-prompt-submit");
    assert_eq!(code, Some(0));
    let text = context(&stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "[nexscope inbox-stream] 5 event(s) since last turn (user=bob, mode=manual):"
    );
    assert_eq!(lines[1], "[nexscope presence] online: alice, bob");
    assert_eq!(
        lines[2],
        format!("[userAgent1 alice] → @me (thread={thread}): line one")
    );
    assert_eq!(lines[3], "  line two");
    assert!(
        lines[4].starts_with("[userAgent1 alice] → @all (thread=t-")
            && lines[4].ends_with("): deploy at 5"),
        "{}",
        lines[4]
    );
    assert!(
        lines[5]
            .starts_with("[user1 alice] → @me (file incoming) name=notes.txt size=5B thread=t-"),
        "{}",
        lines[5]
    );
    assert!(
        lines[6].starts_with("[user1 alice] → @me (file received) notes.txt saved to /"),
        "{}",
        lines[6]
    );
    // Drained: the next prompt gets nothing.
    assert_eq!(
        hook(&bob.env, &sub, "user-prompt-submit"),
        (Some(0), "{}\n".into())
    );
    // A presence change.
    alice.ok(&["stop"]);
    bob.wait_line("alice left");
    let (_, stdout) = hook(&bob.env, &bob.project, "user-prompt-submit");
    assert!(context(&stdout).ends_with("\n[nexscope presence] alice left | online: bob"));
}

#[test]
fn stop_allows_in_manual_mode_and_blocks_on_fresh_auto_mentions() {
    let relay = Relay::start(&[]);
    let alice = Member::new("stop-a", &relay.url, "");
    let mut bob = Member::new("stop-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    let said = alice.json(&["say", "--role", "userAgent", "@bob", "manual", "one"]);
    bob.wait_line("manual one");
    assert_eq!(
        hook(&bob.env, &bob.project, "stop"),
        (Some(0), "{}\n".into()),
        "manual mode allows"
    );
    let _ = said;
    bob.ok(&["mode", "auto"]);
    assert_eq!(
        hook(&bob.env, &bob.project, "stop"),
        (Some(0), "{}\n".into()),
        "auto mode, no task"
    );
    let long = "x".repeat(250);
    let said = alice.json(&["say", "--role", "userAgent", "@bob", &long]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    bob.wait_line("xxxx");
    let (code, stdout) = hook(&bob.env, &bob.project, "stop");
    assert_eq!(code, Some(0));
    let expected = json!({
        "decision": "block",
        "reason": format!(
            "[NEXSCOPE AUTO MODE] You have unanswered @mentions in the chat room (mode=auto, current user=bob):\n\n\
             - thread={thread} from [userAgent1 alice]: \"{}…\" (incoming hop=0)\n\n\
             Reply to each with /nexscope:say --thread=<threadId> @<from> <reply>, or switch to /nexscope:mode manual, \
             or stop again to leave them (after 5 minutes they move to the inbox).",
            "x".repeat(200)
        ),
    });
    assert_eq!(stdout, format!("{expected}\n"));
    // Answered: allowed again.
    bob.ok(&[
        "say",
        "--role",
        "userAgent",
        "--thread",
        &thread,
        "@alice",
        "done",
    ]);
    assert_eq!(
        hook(&bob.env, &bob.project, "stop"),
        (Some(0), "{}\n".into())
    );
}

#[test]
fn stop_lets_stale_mentions_go_to_the_inbox() {
    let relay = Relay::start(&[]);
    let alice = Member::new("stale-a", &relay.url, "");
    let mut bob = Member::new("stale-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    bob.ok(&["mode", "auto"]);
    alice.ok(&["say", "--role", "userAgent", "@bob", "old", "question"]);
    bob.wait_line("old question");
    // Six minutes pass for the task (the store is the daemon's own SQLite file).
    let db = bob.env.state_dir().join("nexscope.db");
    let aged = Command::new(nexscope_tests::prereq::python())
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=10); c.execute('UPDATE auto_tasks SET ts = ts - 360000'); c.commit()"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(aged.success());
    assert_eq!(
        hook(&bob.env, &bob.project, "stop"),
        (Some(0), "{}\n".into())
    );
    let inbox = bob.json(&["inbox"]);
    assert_eq!(inbox["items"][0]["text"], "old question");
    assert_eq!(inbox["items"][0]["status"], "pending");
}

#[test]
fn the_async_watcher_waits_for_the_next_event_and_wakes_claude_with_exit_2() {
    let relay = Relay::start(&[]);
    let alice = Member::new("watch-a", &relay.url, "");
    let bob = Member::new("watch-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    // Whatever was pending goes out first.
    let (code, stdout) = hook(&bob.env, &bob.project, "watch");
    assert_eq!(code, Some(2));
    assert_eq!(
        stdout,
        "[nexscope inbox-stream] 1 new event(s):\n[nexscope presence] online: alice, bob\n"
    );
    // Then it waits on the stream for the next one.
    let (env, project) = (bob.env.root.path().to_path_buf(), bob.project.clone());
    let _ = env;
    let waiter = {
        let mut child = bob
            .env
            .command(bin("nexscopectl"))
            .args(["hook", "watch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                json!({"session_id": "s1", "cwd": project})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
        child
    };
    std::thread::sleep(Duration::from_millis(500));
    alice.ok(&["say", "--role", "userAgent", "@bob", "wake", "up"]);
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(
            "[nexscope inbox-stream] 1 new event(s):\n[userAgent1 alice] → @me (thread=t-"
        ),
        "{stdout}"
    );
    assert!(stdout.ends_with(": wake up\n"), "{stdout}");
}

#[test]
fn each_session_sees_each_event_once_and_a_hosted_agent_takes_none() {
    let relay = Relay::start(&[]);
    let alice = Member::new("sess-a", &relay.url, "");
    let mut bob = Member::new("sess-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    alice.ok(&["say", "--role", "userAgent", "first", "broadcast"]);
    bob.wait_line("first broadcast");
    // An agent nexscoped hosts in the same project: its hooks stand aside.
    let hosted = [("NEXSCOPE_AGENT_HOST", "1")];
    assert_eq!(prompt_events(&bob, "hosted", &hosted), Vec::<String>::new());
    let watch = json!({"session_id": "hosted", "cwd": bob.project});
    assert_eq!(
        hook_with(&bob.env, &watch, "watch", &hosted),
        (Some(0), String::new())
    );
    // Two sessions of the person's, started before it: each gets it, once.
    for session in ["11111111-aaaa", "22222222-bbbb"] {
        let start = json!({"session_id": session, "source": "startup", "cwd": bob.project});
        assert_eq!(
            hook_with(&bob.env, &start, "session-start", &[]),
            (Some(0), "{}\n".into())
        );
    }
    alice.ok(&["say", "--role", "userAgent", "between", "starts"]);
    bob.wait_line("between starts");
    let one = prompt_events(&bob, "11111111-aaaa", &[]);
    // What nobody had seen yet, then what came after they started.
    assert_eq!(one.len(), 3, "{one:?}");
    assert!(one[1].ends_with("): first broadcast"), "{one:?}");
    assert!(one[2].ends_with("): between starts"), "{one:?}");
    let two = prompt_events(&bob, "22222222-bbbb", &[]);
    assert_eq!(one, two);
    assert_eq!(
        prompt_events(&bob, "11111111-aaaa", &[]),
        Vec::<String>::new()
    );
    alice.ok(&["say", "--role", "userAgent", "second", "broadcast"]);
    bob.wait_line("second broadcast");
    // A session opened now starts where the person's sessions are: only news.
    let three = prompt_events(&bob, "33333333-cccc", &[]);
    assert_eq!(three.len(), 1, "{three:?}");
    assert!(three[0].ends_with("): second broadcast"), "{three:?}");
    for session in ["11111111-aaaa", "22222222-bbbb"] {
        let seen = prompt_events(&bob, session, &[]);
        assert_eq!(seen, three, "{session}");
    }
}

#[test]
fn stop_lets_a_turn_end_that_a_stop_hook_already_continued() {
    let relay = Relay::start(&[]);
    let alice = Member::new("active-a", &relay.url, "");
    let mut bob = Member::new("active-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    bob.ok(&["mode", "auto"]);
    alice.ok(&["say", "--role", "userAgent", "@bob", "answer", "me"]);
    bob.wait_line("answer me");
    let (_, blocked) = hook(&bob.env, &bob.project, "stop");
    assert!(blocked.contains(r#""decision":"block""#), "{blocked}");
    let again = json!({"session_id": "s1", "cwd": bob.project, "stop_hook_active": true});
    assert_eq!(
        hook_with(&bob.env, &again, "stop", &[]),
        (Some(0), "{}\n".into())
    );
}

#[test]
fn the_watcher_stands_aside_in_print_mode_and_leaves_the_events_queued() {
    let relay = Relay::start(&[]);
    let alice = Member::new("print-a", &relay.url, "");
    let mut bob = Member::new("print-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    alice.ok(&[
        "say",
        "--role",
        "userAgent",
        "@bob",
        "queued",
        "for",
        "later",
    ]);
    bob.wait_line("queued for later");
    let input = json!({"session_id": "s1", "cwd": bob.project});
    // What Claude Code 2.1.330 sets for `claude -p`, and what older builds do.
    for vars in [
        [
            ("CLAUDE_CODE_SESSION_ATTENDED", "0"),
            ("CLAUDE_CODE_ENTRYPOINT", "sdk-cli"),
        ],
        [
            ("CLAUDE_CODE_SESSION_ATTENDED", "0"),
            ("CLAUDE_CODE_ENTRYPOINT", "cli"),
        ],
        [("CLAUDE_CODE_ENTRYPOINT", "sdk-ts"), ("UNRELATED", "")],
    ] {
        assert_eq!(
            hook_with(&bob.env, &input, "watch", &vars),
            (Some(0), String::new()),
            "{vars:?}"
        );
    }
    let seen = prompt_events(&bob, "s1", &[]);
    assert!(
        seen.iter().any(|l| l.ends_with("): queued for later")),
        "{seen:?}"
    );
}

#[test]
fn a_hook_whose_stdin_never_closes_still_answers() {
    let env = Env::new("hook-stdin");
    let _daemon = env.daemon();
    let child = env
        .command(bin("nexscopectl"))
        .args(["hook", "user-prompt-submit"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Stdin stays open (we hold it) and empty; the hook must not wait for it.
    let output = nexscope_tests::wait_output(child, nexscope_tests::WAIT);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "{}\n");
}
