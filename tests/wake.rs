//! Waking live sessions, the daemon's side: registration, coalescing,
//! manual mode, a session that is gone, a session that holds pushes. A unix
//! socket of the test's stands in for Claude Code's messaging socket here
//! (the real `claude` is woken in tests/wiring.rs); it records what the
//! daemon writes.

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexscope_tests::relay::Relay;
use nexscope_tests::rooms::Member;
use nexscope_tests::{TempDir, wait_until};
use serde_json::{Value, json};

/// A listening socket that keeps every connection's text, as Claude Code's
/// messaging socket would receive it.
struct FakeSession {
    path: PathBuf,
    pushes: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    _dir: TempDir,
}

impl Drop for FakeSession {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl FakeSession {
    fn start() -> FakeSession {
        let dir = TempDir::new("fake-claude");
        let path = dir.path().join("claude.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let pushes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sink, stopped) = (pushes.clone(), stop.clone());
        // Until dropped; each connection is read to its end (5 s at most).
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut text = String::new();
                let _ = stream.read_to_string(&mut text);
                sink.lock().unwrap().push(text);
            }
        });
        FakeSession {
            path,
            pushes,
            stop,
            _dir: dir,
        }
    }

    fn pushes(&self) -> Vec<String> {
        self.pushes.lock().unwrap().clone()
    }
}

fn register(member: &Member, session: &str, pid: u32, socket: &FakeSession, held: bool) -> Value {
    member.chat(
        "Register",
        json!({"agent": "claude", "session": session, "pid": pid,
               "socket": socket.path, "token": "tok", "held": held}),
    )
}

/// alice and bob in a room, bob in `mode`.
fn pair(relay: &Relay, mode: &str) -> (Member, Member) {
    let alice = Member::new("wake-a", &relay.url, "");
    let bob = Member::new("wake-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    bob.ok(&["mode", mode]);
    wait_until(|| {
        alice.json(&["who"])["users"]
            .as_array()
            .is_some_and(|u| u.len() == 2)
    });
    (alice, bob)
}

/// `pair`, and a session registered for bob on a stand-in socket, live
/// as long as this test (its pid is ours).
fn with_session(relay: &Relay, mode: &str) -> (Member, Member, FakeSession) {
    let (alice, bob) = pair(relay, mode);
    let socket = FakeSession::start();
    register(&bob, "s1", std::process::id(), &socket, false);
    (alice, bob, socket)
}

fn receipt_state(alice: &Member, id: &str) -> Option<(String, Option<String>)> {
    let receipts = alice.json(&["receipts", id])["receipts"].clone();
    let first = receipts.get(0)?;
    Some((
        first["state"].as_str()?.to_string(),
        first["via"].as_str().map(str::to_string),
    ))
}

#[test]
fn a_registration_names_what_is_wrong_with_it() {
    let relay = Relay::start(&[]);
    let (_alice, bob) = pair(&relay, "auto");
    let socket = FakeSession::start();
    let me = std::process::id();
    let refused = |params: Value| -> String {
        let reply = bob.chat("Register", params);
        assert_eq!(reply["error"], "io.nexscope.Chat.BadArgs", "{reply}");
        reply["parameters"]["message"].as_str().unwrap().to_string()
    };
    let base = json!({"agent": "claude", "session": "s1", "pid": me, "socket": socket.path});
    let with = |key: &str, value: Value| {
        let mut params = base.clone();
        params[key] = value;
        params
    };
    assert!(refused(with("agent", json!("gpt"))).contains("use claude or codex"));
    assert!(refused(with("session", json!("a b"))).contains("letters, digits"));
    assert!(refused(with("pid", json!(4_000_000))).contains("not a live process"));
    assert!(refused(with("socket", json!("rel/path"))).contains("absolute path"));
    let file = socket._dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    assert!(refused(with("socket", json!(file))).contains("not a unix socket"));
    // Nothing was registered by the refusals; a good one is listed.
    assert_eq!(
        bob.chat("Live", json!({}))["parameters"]["sessions"],
        json!([])
    );
    let ok = bob.chat("Register", base);
    let sessions = &ok["parameters"]["sessions"];
    assert_eq!(sessions[0]["session"], "s1", "{ok}");
    assert_eq!(sessions[0]["pushable"], true);
}

#[test]
fn a_burst_of_mentions_wakes_once_per_window_and_each_is_pushed_once() {
    let relay = Relay::start(&[]);
    let (alice, _bob, socket) = with_session(&relay, "auto");
    let mut threads = Vec::new();
    for n in 0..50 {
        let said = alice.chat(
            "Say",
            json!({"text": format!("question {n}"), "to": ["bob"], "role": "userAgent"}),
        );
        threads.push(said["parameters"]["threadId"].as_str().unwrap().to_string());
    }
    wait_until(|| {
        let all = socket.pushes().concat();
        threads.iter().all(|t| all.contains(t.as_str()))
    });
    std::thread::sleep(Duration::from_millis(800));
    let pushes = socket.pushes();
    // 50 mentions sent back to back: a handful of pushes, not 50.
    assert!(pushes.len() <= 5, "{} pushes", pushes.len());
    let all = pushes.concat();
    for thread in &threads {
        assert_eq!(
            all.matches(&format!("thread={thread} ")).count(),
            1,
            "{thread}"
        );
    }
    // Each push: the token first, then one user line for this session.
    let lines: Vec<Value> = pushes[0]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0], json!({"type": "auth", "token": "tok"}));
    assert_eq!(lines[1]["type"], "user");
    assert_eq!(lines[1]["session_id"], "s1");
    assert!(lines[1]["message"]["content"].is_string());
    // None lost: every mention's receipt says the push surfaced it.
    wait_until(|| {
        threads
            .iter()
            .all(|t| receipt_state(&alice, t) == Some(("surfaced".into(), Some("push".into()))))
    });
}

#[test]
fn in_manual_mode_nothing_is_pushed_until_accept() {
    let relay = Relay::start(&[]);
    let (alice, bob, socket) = with_session(&relay, "manual");
    let said = alice.json(&["say", "--role", "userAgent", "@bob", "please review"]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    wait_until(|| receipt_state(&alice, &thread).is_some_and(|(s, _)| s == "stored"));
    std::thread::sleep(Duration::from_millis(700));
    assert!(socket.pushes().is_empty(), "{:?}", socket.pushes());
    bob.ok(&["accept", &thread, "be", "brief"]);
    wait_until(|| !socket.pushes().is_empty());
    let pushed = socket.pushes().concat();
    assert!(
        pushed.contains(&format!("accepted thread {thread}")),
        "{pushed}"
    );
    assert!(
        pushed.contains("please review") && pushed.contains("be brief"),
        "{pushed}"
    );
    wait_until(|| receipt_state(&alice, &thread) == Some(("surfaced".into(), Some("push".into()))));
}

#[test]
fn who_says_a_claude_session_is_behind_the_name_while_it_lives() {
    let relay = Relay::start(&[]);
    let (alice, bob) = pair(&relay, "manual");
    let behind = |who: &Member| who.json(&["who"])["agents"].clone();
    wait_until(|| behind(&alice) == json!({"alice": "daemon", "bob": "daemon"}));
    let socket = FakeSession::start();
    let mut agent = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    register(&bob, "s1", agent.id(), &socket, false);
    wait_until(|| behind(&alice)["bob"] == "claude");
    assert_eq!(behind(&bob)["bob"], "claude");
    let text = alice.ok(&["who"]);
    assert!(
        text.ends_with("behind the names: alice daemon only, bob claude\n"),
        "{text}"
    );
    agent.kill().unwrap();
    agent.wait().unwrap();
    wait_until(|| behind(&alice)["bob"] == "daemon");
}

#[test]
fn a_session_that_is_gone_is_not_listed_nor_pushed_to() {
    let relay = Relay::start(&[]);
    let (alice, bob) = pair(&relay, "auto");
    let socket = FakeSession::start();
    let mut agent = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    register(&bob, "s1", agent.id(), &socket, false);
    assert_eq!(
        bob.chat("Live", json!({}))["parameters"]["sessions"][0]["agent"],
        "claude"
    );
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(
        bob.chat("Live", json!({}))["parameters"]["sessions"],
        json!([])
    );
    let said = alice.json(&["say", "--role", "userAgent", "@bob", "anyone there?"]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    wait_until(|| receipt_state(&alice, &thread).is_some_and(|(s, _)| s == "stored"));
    std::thread::sleep(Duration::from_millis(700));
    assert!(socket.pushes().is_empty());
    assert_eq!(receipt_state(&alice, &thread).unwrap().0, "stored");
}

#[test]
fn a_session_that_holds_pushes_is_told_and_the_receipt_stays_stored() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = pair(&relay, "auto");
    let socket = FakeSession::start();
    register(&bob, "s1", std::process::id(), &socket, true);
    let said = alice.json(&["say", "--role", "userAgent", "@bob", "urgent"]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    wait_until(|| !socket.pushes().is_empty());
    bob.wait_line("held for approval");
    std::thread::sleep(Duration::from_millis(300));
    // bob's own drain above surfaces it by hook; before it, it stayed stored.
    let state = receipt_state(&alice, &thread).unwrap();
    assert_ne!(state.1.as_deref(), Some("push"), "{state:?}");
}
