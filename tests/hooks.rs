//! `nexscopectl hook …` as Claude Code runs it: JSON on stdin with `cwd`,
//! the answer on stdout, byte for byte as spec/nexscope-v1.md §2.12, §2.9 and
//! §2.13 give it; exit 0 whatever goes wrong, so a prompt is never blocked.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use nexscope_tests::relay::Relay;
use nexscope_tests::rooms::Member;
use nexscope_tests::{Env, bin};
use serde_json::{Value, json};

/// Runs a hook for `member`'s project; (exit code, stdout).
fn hook(env: &Env, project: &std::path::Path, which: &str) -> (Option<i32>, String) {
    let mut child = env
        .command(bin("nexscopectl"))
        .args(["hook", which])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let input = json!({"session_id": "s1", "hook_event_name": which, "cwd": project});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
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
    let aged = Command::new("python3")
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
            .write_all(json!({"cwd": project}).to_string().as_bytes())
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
