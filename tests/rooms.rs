//! Rooms end to end: one relay, two or three daemons with their own XDG
//! directories, driven by nexscopectl. One test per acceptance criterion of
//! spec/nexscope-v1.md §5, then what the rooms issue adds.

use std::time::Duration;

use nexscope_tests::relay::{Client, Relay, TOKEN, msg};
use nexscope_tests::rooms::Member;
use nexscope_tests::wait_until;
use serde_json::json;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A relay and alice and bob joined to it, each past seeing the other.
fn alice_and_bob(relay: &Relay) -> (Member, Member) {
    let mut alice = Member::new("alice", &relay.url, "");
    let bob = Member::new("bob", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    alice.wait_line("bob joined");
    (alice, bob)
}

#[test]
fn ac_01_two_members_join_and_see_each_other_in_presence() {
    let relay = Relay::start(&[]);
    let mut alice = Member::new("ac01a", &relay.url, "");
    let mut bob = Member::new("ac01b", &relay.url, "");
    let joined = alice.start("alice");
    assert!(
        joined.starts_with("joined as alice (mode=manual), online: [alice]"),
        "{joined}"
    );
    let joined = bob.start("bob");
    assert!(
        joined.starts_with("joined as bob (mode=manual), online: [alice, bob]"),
        "{joined}"
    );
    assert_eq!(
        alice.wait_line("bob joined"),
        "[nexscope presence] bob joined | online: alice, bob"
    );
    assert_eq!(
        bob.wait_line("online:"),
        "[nexscope presence] online: alice, bob"
    );
    assert_eq!(alice.ok(&["who"]).trim(), "online (2): alice, bob");
}

#[test]
fn ac_02_a_name_already_online_is_refused_with_name_taken() {
    let relay = Relay::start(&[]);
    let (_alice, _bob) = alice_and_bob(&relay);
    let impostor = Member::new("ac02", &relay.url, "");
    let output = impostor.ctl(&["start", "-n", "bob"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("[name_taken]") && stderr.contains("username \"bob\" already in room"),
        "{stderr}"
    );
    // Not joined afterwards, and says so.
    let output = impostor.ctl(&["who"]);
    assert!(
        text(&output.stderr).contains("not joined"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn ac_03_a_mention_reaches_bob_with_alices_label() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = alice_and_bob(&relay);
    let said = alice.ok(&[
        "say",
        "--role",
        "userAgent",
        "@bob",
        "can",
        "you",
        "review?",
    ]);
    assert!(said.starts_with("delivered to [bob] (thread=t-"), "{said}");
    assert!(said.trim_end().ends_with("targets=bob)"), "{said}");
    let line = bob.wait_line("can you review?");
    assert!(
        line.starts_with("[userAgent1 alice] → @me (thread=t-"),
        "{line}"
    );
}

#[test]
fn ac_04_a_message_without_mentions_is_broadcast() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = alice_and_bob(&relay);
    let mut carol = Member::new("ac04", &relay.url, "");
    carol.start("carol");
    let said = alice.json(&["say", "--role", "userAgent", "hello", "all"]);
    let mut delivered: Vec<String> = serde_json::from_value(said["delivered"].clone()).unwrap();
    delivered.sort();
    assert_eq!(delivered, ["bob", "carol"]);
    assert!(
        bob.wait_line("hello all")
            .starts_with("[userAgent1 alice] → @all")
    );
    assert!(carol.wait_line("hello all").contains("→ @all"));
}

#[test]
fn ac_05_manual_mode_mentions_wait_in_the_inbox_until_accepted() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = alice_and_bob(&relay);
    let said = alice.json(&[
        "say",
        "--role",
        "userAgent",
        "@bob",
        "please",
        "fix",
        "the",
        "login",
    ]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    bob.wait_line("please fix the login");
    let inbox = bob.ok(&["inbox"]);
    assert!(
        inbox.starts_with("pending: 1 | archive (latest 10): 0\n=== pending ===\n"),
        "{inbox}"
    );
    assert!(
        inbox.contains(&format!(
            "[pending] thread={thread} from=[userAgent1 alice] hop=0 @ "
        )),
        "{inbox}"
    );
    let accepted = bob.ok(&["accept", &thread, "be", "careful"]);
    assert!(
        accepted.starts_with(&format!("=== accepted 1 message(s) on thread {thread} ===")),
        "{accepted}"
    );
    assert!(
        accepted.contains("please fix the login")
            && accepted.contains("Extra instructions: be careful")
    );
    let inbox = bob.json(&["inbox"]);
    assert_eq!(inbox["items"][0]["status"], "accepted");
    let again = bob.ctl(&["accept", &thread]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("[not_found]"));
}

#[test]
fn ac_06_auto_mode_makes_a_task_and_the_reply_is_an_auto_reply_with_hop_1() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = alice_and_bob(&relay);
    assert_eq!(bob.ok(&["mode", "auto"]).trim(), "mode switched to auto");
    let said = alice.json(&["say", "--role", "userAgent", "@bob", "status?"]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    bob.wait_line("status?");
    assert!(
        bob.json(&["inbox"])["items"].as_array().unwrap().is_empty(),
        "auto mode: no inbox row"
    );
    let reply = bob.json(&[
        "say",
        "--role",
        "userAgent",
        "--thread",
        &thread,
        "@alice",
        "all",
        "green",
    ]);
    assert_eq!(reply["autoReply"], true);
    assert_eq!(reply["hopCount"], 1);
    assert_eq!(reply["threadId"], thread.as_str());
    let line = alice.wait_line("all green");
    assert!(
        line.contains(&format!("(thread={thread}) hop=1: all green")),
        "{line}"
    );
}

#[test]
fn ac_07_after_the_hop_limit_mentions_fall_through_to_the_inbox() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = alice_and_bob(&relay);
    bob.ok(&["mode", "auto"]);
    let first = alice.json(&["say", "--role", "userAgent", "@bob", "round", "1"]);
    let thread = first["threadId"].as_str().unwrap().to_string();
    for round in 1..=3 {
        bob.wait_line(&format!("round {round}"));
        let reply = bob.json(&[
            "say",
            "--role",
            "userAgent",
            "--thread",
            &thread,
            "@alice",
            &format!("answer {round}"),
        ]);
        assert_eq!(reply["autoReply"], true, "round {round}");
        alice.json(&[
            "say",
            "--role",
            "userAgent",
            "--thread",
            &thread,
            "@bob",
            "round",
            &(round + 1).to_string(),
        ]);
    }
    assert!(
        bob.wait_line("reached hop limit (3)")
            .contains("auto-reply disabled on this thread")
    );
    bob.wait_line("round 4");
    assert!(
        bob.wait_line("fell through to inbox")
            .contains(&format!("thread {thread}"))
    );
    let inbox = bob.json(&["inbox"]);
    assert_eq!(inbox["items"][0]["text"], "round 4");
    assert_eq!(inbox["items"][0]["status"], "pending");
    // A reply now is not an auto-reply.
    let reply = bob.json(&[
        "say",
        "--role",
        "userAgent",
        "--thread",
        &thread,
        "@alice",
        "by hand",
    ]);
    assert_eq!(reply["autoReply"], false);
}

#[test]
fn ac_08_a_broadcast_in_auto_mode_makes_no_task_and_no_inbox_row() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = alice_and_bob(&relay);
    bob.ok(&["mode", "auto"]);
    let said = alice.json(&[
        "say",
        "--role",
        "userAgent",
        "everyone:",
        "deploy",
        "at",
        "5",
    ]);
    bob.wait_line("deploy at 5");
    assert!(bob.json(&["inbox"])["items"].as_array().unwrap().is_empty());
    let reply = bob.json(&[
        "say",
        "--role",
        "userAgent",
        "--thread",
        said["threadId"].as_str().unwrap(),
        "ok",
    ]);
    assert_eq!(reply["autoReply"], false, "no task to answer");
}

#[test]
fn ac_09_stop_leaves_the_room_and_others_see_it() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = alice_and_bob(&relay);
    alice.ok(&["say", "@bob", "before", "you", "go"]);
    bob.wait_line("before you go");
    let left = bob.ok(&["stop"]);
    assert!(left.starts_with("left chat room (was \"bob\")."), "{left}");
    assert_eq!(
        alice.wait_line("bob left"),
        "[nexscope presence] bob left | online: alice"
    );
    let said = alice.json(&["say", "@bob", "still there?"]);
    assert_eq!(said["offline"], json!(["bob"]));
    // What bob had is kept: joining again, the history is there.
    bob.start("bob");
    assert!(bob.ok(&["history"]).contains("before you go"));
}

#[test]
fn ac_10_a_killed_daemon_drops_out_and_rejoins_when_restarted() {
    let relay = Relay::start(&["--heartbeat-ms", "200"]);
    let (mut alice, mut bob) = alice_and_bob(&relay);
    bob.kill9();
    alice.wait_line("bob left");
    bob.restart();
    // The restarted daemon rejoins the room it was in, as bob.
    let rejoined = alice.wait_line("bob joined | online: alice, bob");
    assert_eq!(
        rejoined,
        "[nexscope presence] bob joined | online: alice, bob"
    );
    wait_until(|| bob.json(&["who"])["users"] == json!(["alice", "bob"]));

    // A daemon that stops answering pings is dropped by the heartbeat (4010).
    let pid = bob.daemon.as_ref().unwrap().pid();
    // SAFETY: signals to our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    alice.lines.clear();
    alice.wait_line("bob left");
    unsafe { libc::kill(pid, libc::SIGCONT) };
    alice.wait_line("bob joined");
}

#[test]
fn ac_11_after_a_relay_restart_daemons_reconnect_under_the_same_name() {
    let mut relay = Relay::start(&[]);
    let (mut alice, mut bob) = alice_and_bob(&relay);
    relay.restart(&[]);
    bob.wait_line("relay disconnected (code=");
    alice.wait_line("relay disconnected (code=");
    let ready = |m: &Member| {
        let state = &m.chat("Status", json!({}))["parameters"]["state"];
        state["ready"] == true && state["users"] == json!(["alice", "bob"])
    };
    wait_until(|| ready(&alice) && ready(&bob));
    // The first presence after a reconnect is a diff, not a new snapshot.
    alice.wait_line("online: alice");
    assert_eq!(
        alice
            .lines
            .iter()
            .filter(|l| l.starts_with("[nexscope presence] online:"))
            .count(),
        1,
        "{:#?}",
        alice.lines
    );
    let said = alice.json(&["say", "--role", "userAgent", "@bob", "back?"]);
    assert_eq!(said["delivered"], json!(["bob"]));
    bob.wait_line("back?");
}

#[test]
fn who_says_so_while_the_relay_is_unreachable() {
    let mut relay = Relay::start(&[]);
    let (mut alice, _bob) = alice_and_bob(&relay);
    assert_eq!(alice.ok(&["who"]).trim(), "online (2): alice, bob");
    relay.stop();
    alice.wait_line("relay disconnected (code=");
    let who = alice.ok(&["who"]);
    assert!(
        who.starts_with("(not connected to the relay, reconnecting; as last seen) online"),
        "{who}"
    );
    assert_eq!(alice.json(&["who"])["ready"], false);
    relay.restart(&[]);
    wait_until(|| alice.json(&["who"])["ready"] == true);
}

#[test]
fn ac_11_a_name_taken_during_the_outage_stops_the_room_and_tells_the_human() {
    let mut relay = Relay::start(&[]);
    let (_alice, bob) = alice_and_bob(&relay);
    relay.restart(&[]);
    // Someone takes bob's name before bob's daemon is back (it waits 1 s).
    let mut impostor = Client::connect(relay.port, &format!("name=bob&token={TOKEN}&v=1"));
    assert_eq!(impostor.json()["type"], "presence");
    wait_until(|| {
        let output = bob.ctl(&["who"]);
        text(&output.stderr).contains("left its room")
    });
    let output = bob.ctl(&["who"]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("name_taken") || stderr.contains("already in room"),
        "{stderr}"
    );
    assert!(stderr.contains("nexscopectl start"), "{stderr}");
}

#[test]
fn ac_12_role_user_shows_alice_as_a_person() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = alice_and_bob(&relay);
    alice.ok(&["say", "--role", "user", "@bob", "from", "the", "human"]);
    assert!(
        bob.wait_line("from the human")
            .starts_with("[user1 alice] → @me")
    );
}

#[test]
fn ac_13_append_adds_a_user_message_to_the_thread_in_order() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = alice_and_bob(&relay);
    let said = alice.json(&["say", "--role", "userAgent", "@bob", "first"]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    let appended = alice.ok(&["append", &thread, "and", "second"]);
    assert_eq!(
        appended.trim(),
        format!("appended as role=user to thread={thread};delivered: [bob]")
    );
    bob.wait_line("and second");
    let history = bob.json(&["history"]);
    let items: Vec<_> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["threadId"] == thread.as_str())
        .collect();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0]["role"].as_str(), items[0]["text"].as_str()),
        (Some("userAgent"), Some("first"))
    );
    assert_eq!(
        (items[1]["role"].as_str(), items[1]["text"].as_str()),
        (Some("user"), Some("and second"))
    );
}

#[test]
fn ac_14_a_wrong_token_is_a_clear_error_without_retrying() {
    let relay = Relay::start(&[]);
    let member = Member::new("ac14", &relay.url, "");
    member.env.write_config(&format!(
        "relay_url = \"{}\"\ntoken = \"wrong-token\"\n",
        relay.url
    ));
    let restarted = member.ctl(&["daemon", "restart"]);
    assert!(restarted.status.success());
    let output = member.ctl(&["start", "-n", "alice"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("[auth_failed]") && stderr.contains("refused the token"),
        "{stderr}"
    );
    assert_eq!(
        relay.metric("nexscope_relay_auth_failures_total"),
        1,
        "one attempt, no retry loop"
    );
}

#[test]
fn ac_15_text_over_4096_bytes_is_refused_with_a_hint_to_split() {
    let relay = Relay::start(&[]);
    let (alice, _bob) = alice_and_bob(&relay);
    let long = "é".repeat(2049); // 4098 bytes of UTF-8
    let output = alice.ctl(&["say", "@bob", &long]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("[text_too_large] text exceeds 4KB")
            && stderr.contains("split the message"),
        "{stderr}"
    );
    let fits = "é".repeat(2048);
    alice.ok(&["say", "@bob", &fits]);
}

// ---- what the rooms issue adds --------------------------------------------------

#[test]
fn two_projects_of_one_daemon_are_in_two_rooms_at_once() {
    let relay = Relay::start(&[]);
    let mut alice = Member::new("twoproj", &relay.url, "");
    let other = alice.env.root.path().join("other-project");
    std::fs::create_dir_all(&other).unwrap();
    let other = other.to_str().unwrap().to_string();
    alice.ok(&["start", "-n", "alice", "--room", "api"]);
    let web = |args: &[&str]| {
        let mut all = vec!["--json", "--project", other.as_str()];
        all.extend_from_slice(args);
        let output = alice.env.ctl(&all);
        assert!(output.status.success(), "{}", text(&output.stderr));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    web(&["start", "-n", "alice-web", "--room", "web"]);
    let bob = Member::new("twoprojb", &relay.url, "");
    bob.ok(&["start", "-n", "bob", "--room", "web"]);
    let said = bob.json(&["say", "@alice-web", "web", "only"]);
    assert_eq!(said["delivered"], json!(["alice-web"]));
    let said = bob.json(&["say", "@alice", "not", "here"]);
    assert_eq!(
        said["offline"],
        json!(["alice"]),
        "alice's api room is another room"
    );
    let inbox = web(&["inbox"]);
    assert_eq!(inbox["items"][0]["text"], "web only");
    assert!(
        alice.json(&["inbox"])["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let status =
        nexscope_tests::call(&alice.env.socket(), "io.nexscope.Daemon.Status", json!({})).unwrap();
    assert_eq!(status["parameters"]["status"]["projects"], 2);
    assert_eq!(status["parameters"]["status"]["rooms"], 2);
    alice.wait_line("online: alice");
}

#[test]
fn a_30_mib_file_arrives_identical_and_its_sha256_is_checked() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = alice_and_bob(&relay);
    let path = alice.env.root.path().join("big.bin");
    let data: Vec<u8> = (0..30 * 1024 * 1024)
        .map(|i: usize| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let said = alice.ok(&[
        "say",
        "--file",
        path.to_str().unwrap(),
        "@bob",
        "the",
        "dump",
    ]);
    assert!(
        said.starts_with("sent file \"big.bin\" (31457280 bytes) to [bob] — delivered: [bob]"),
        "{said}"
    );
    bob.wait_line("(file received) big.bin saved to");
    let files = bob.json(&["files"]);
    let file = &files["files"][0];
    assert_eq!(file["size"], 31457280);
    let received = std::fs::read(file["path"].as_str().unwrap()).unwrap();
    assert!(received == data, "byte-identical");
    use sha2::Digest;
    assert_eq!(
        file["sha256"],
        nexscope::relay::auth::hex(&sha2::Sha256::digest(&data))
    );
    assert!(file["path"].as_str().unwrap().contains("/nexscope/files/"));
}

#[test]
fn kill_9_during_a_burst_of_1000_messages_loses_nothing_committed() {
    let relay = Relay::start(&["--max-users", "10"]);
    let mut bob = Member::new("burst", &relay.url, "");
    bob.start("bob");
    let mut alice = Client::connect(relay.port, &format!("name=alice&token={TOKEN}&v=1"));
    alice.json();
    let ids: Vec<String> = (0..1000).map(|i| format!("burst-{i:04}")).collect();
    let history_ids = |bob: &Member| -> Vec<String> {
        let reply = bob.chat("History", json!({"limit": 500}));
        reply["parameters"]["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|m| m["msgId"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut committed = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        alice.send(msg("alice", &["bob"], id, &format!("message {i}")));
        if i == 500 {
            // What the daemon reports is committed; then it dies mid-burst.
            committed = history_ids(&bob);
            bob.kill9();
        }
    }
    assert!(
        !committed.is_empty(),
        "part of the burst was committed before the kill"
    );
    bob.restart();
    wait_until(|| bob.chat("Status", json!({}))["parameters"]["state"]["ready"] == true);
    // Everything stored, straight from the daemon's SQLite file (History
    // shows at most the latest 500, and the burst goes on arriving).
    let db = bob.env.state_dir().join("nexscope.db");
    let stored = std::process::Command::new(nexscope_tests::prereq::python())
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=10); print('\\n'.join(r[0] for r in c.execute(\"SELECT msg_id FROM messages WHERE dir = 'in'\")))"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );
    let after: Vec<String> = String::from_utf8_lossy(&stored.stdout)
        .lines()
        .map(String::from)
        .collect();
    for id in &committed {
        assert_eq!(
            after.iter().filter(|a| *a == id).count(),
            1,
            "{id} is in history exactly once"
        );
    }
    // The same frames again (a relay replaying, say): still each once.
    for (i, id) in ids.iter().enumerate() {
        alice.send(msg("alice", &["bob"], id, &format!("message {i}")));
    }
    alice.send(msg("alice", &["bob"], "burst-end", "end"));
    bob.wait_line(": end");
    let all = history_ids(&bob);
    assert_eq!(all.len(), 500, "history holds the latest 500");
    let reply = bob.chat("History", json!({"limit": 500}));
    assert_eq!(reply["parameters"]["items"][499]["msgId"], "burst-end");
    let mut seen = std::collections::HashSet::new();
    for id in &all {
        assert!(seen.insert(id.clone()), "duplicate {id}");
    }
}

#[test]
fn bad_input_gets_clear_errors() {
    let relay = Relay::start(&[]);
    let (alice, _bob) = alice_and_bob(&relay);
    let cases: &[(&[&str], &str)] = &[
        (&["say"], "[bad_args] nothing to say"),
        (&["say", "   "], "[bad_args] nothing to say"),
        (
            &["append", "t-unknown", "more"],
            "[not_found] unknown thread t-unknown",
        ),
        (
            &["say", "--file", "/nonexistent/file.txt", "hi"],
            "[file_error] /nonexistent/file.txt: cannot read it",
        ),
        (
            &["say", "--file", "/tmp", "hi"],
            "[bad_args] /tmp is a directory; give a file",
        ),
        (
            &["say", "--role", "robot", "hi"],
            "[bad_args] role \"robot\" is not allowed",
        ),
        (
            &["say", "@a/b", "hi"],
            "[bad_args] recipient \"a/b\" is not a valid name",
        ),
        (
            &["mode", "sometimes"],
            "[bad_args] mode \"sometimes\" is not allowed; use \"manual\" or \"auto\"",
        ),
        (
            &["reject", "t-none"],
            "[not_found] no pending inbox message on thread t-none",
        ),
    ];
    for (args, expected) in cases {
        let output = alice.ctl(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // Nothing stored was lost on the way.
    assert_eq!(alice.json(&["who"])["users"], json!(["alice", "bob"]));
}

#[test]
fn watch_prints_the_room_live() {
    let relay = Relay::start(&[]);
    let (alice, bob) = alice_and_bob(&relay);
    let mut watch = bob
        .env
        .command(nexscope_tests::bin("nexscopectl"))
        .args(["--project", bob.project.to_str().unwrap(), "watch"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        first.starts_with("[nexscope] watching") && first.contains("as bob"),
        "{first}"
    );
    alice.ok(&["say", "--role", "userAgent", "@bob", "live", "line"]);
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        line.starts_with("[userAgent1 alice] → @me (thread=t-") && line.ends_with(": live line"),
        "{line}"
    );
    let _ = watch.kill();
    let _ = watch.wait();
}
