//! Rooms end to end: one relay, two or three daemons with their own XDG
//! directories, driven by nexscopectl. One test per acceptance criterion of
//! v1 (AC-1 to AC-15), then what the rooms issue adds.

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
    // v1's line, then (beyond v1) what is behind each name: two daemons
    // without an agent session.
    let who = alice.ok(&["who"]);
    assert_eq!(who.lines().next(), Some("online (2): alice, bob"), "{who}");
    wait_until(|| {
        alice
            .ok(&["who"])
            .trim()
            .ends_with("behind the names: alice daemon only, bob daemon only")
    });
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
    assert_eq!(
        alice.ok(&["who"]).lines().next(),
        Some("online (2): alice, bob")
    );
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
        nexscope_proto::ids::hex(&sha2::Sha256::digest(&data))
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
    let after = sql(&bob, "SELECT msg_id FROM messages WHERE dir = 'in'");
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

/// A small tmpfs, unmounted when dropped: a disk that fills up.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
            .arg(dir)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cannot mount a tmpfs at {}: this test needs root allowed to mount (CAP_SYS_ADMIN) and \
             mount(8) from util-linux; leave the root group out with NEXSCOPE_SKIP=root",
            dir.display()
        );
        SmallDisk(dir.to_path_buf())
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        while filler.write_all(&block).is_ok() {}
        let _ = filler.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_fails_a_say_without_sending_it_and_a_restart_rejoins_once_there_is_room() {
    if !nexscope_tests::prereq::root("mounting a small tmpfs as a full disk") {
        return;
    }
    let relay = Relay::start(&[]);
    let mut disk = None;
    let mut bob = Member::with_env("fulldisk", &relay.url, "", |env| {
        disk = Some(SmallDisk::mount(&env.state_dir()));
        Vec::new()
    });
    let disk = disk.unwrap();
    let mut carol = Member::new("fulldisk-carol", &relay.url, "");
    bob.start("bob");
    carol.start("carol");
    bob.ok(&["say", "--role", "userAgent", "@carol", "first"]);
    carol.wait_line(": first");

    disk.fill();
    let failed = bob.ctl(&["say", "--role", "userAgent", "@carol", "second"]);
    assert!(
        !failed.status.success(),
        "a say that could not be stored fails"
    );
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("commit"), "{stderr}");
    // Restarted on the full disk, bob keeps trying to rejoin.
    bob.restart();
    std::thread::sleep(Duration::from_millis(1500));
    disk.free();
    wait_until(|| bob.chat("Status", json!({}))["parameters"]["state"]["ready"] == true);
    bob.ok(&["say", "--role", "userAgent", "@carol", "third"]);
    carol.wait_line(": third");
    let seen: Vec<&String> = carol
        .lines
        .iter()
        .filter(|l| l.contains(": second"))
        .collect();
    assert!(seen.is_empty(), "what failed was not sent: {seen:?}");
    // Stopped by hand while it waits to rejoin, it stays out.
    disk.fill();
    bob.restart();
    std::thread::sleep(Duration::from_millis(300));
    disk.free();
    // (The first attempt failed; the next comes a second after it.)
    bob.ok(&["stop"]);
    std::thread::sleep(Duration::from_millis(3500));
    let status = bob.chat("Status", json!({}));
    assert_eq!(status["error"], "io.nexscope.Chat.NotJoined", "{status}");
    let daemon = bob.daemon.take().unwrap();
    daemon.signal(libc::SIGTERM);
    let (_, log) = daemon.wait_exit();
    assert!(log.contains("could not rejoin; will retry"), "{log}");
}

/// Rows of `messages` that came in, straight from the daemon's SQLite file.
fn stored_in(member: &Member) -> usize {
    sql(member, "SELECT count(*) FROM messages WHERE dir = 'in'")[0]
        .parse()
        .unwrap()
}

/// The first column of `query`'s rows, straight from the daemon's SQLite
/// file (with Python's sqlite3: another client of the file, as a person's
/// sqlite3 would be).
fn sql(member: &Member, query: &str) -> Vec<String> {
    let db = member.env.state_dir().join("nexscope.db");
    let out = std::process::Command::new(nexscope_tests::prereq::python())
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=10); print('\\n'.join(str(r[0]) for r in c.execute(sys.argv[2])))",
        ])
        .arg(&db)
        .arg(query)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_clean_stop_leaves_no_log_and_a_damaged_log_is_reported_and_kept() {
    let relay = Relay::start(&["--max-users", "10"]);
    let mut bob = Member::new("wal", &relay.url, "");
    bob.start("bob");
    let mut alice = Client::connect(relay.port, &format!("name=alice&token={TOKEN}&v=1"));
    alice.json();
    for i in 0..20 {
        alice.send(msg(
            "alice",
            &["bob"],
            &format!("w{i}"),
            &format!("note {i}"),
        ));
    }
    bob.wait_line(": note 19");
    // SIGTERM: everything goes into the database file itself.
    let daemon = bob.daemon.take().unwrap();
    daemon.signal(libc::SIGTERM);
    let (status, _) = daemon.wait_exit();
    assert_eq!(status, Some(0));
    let state = bob.env.state_dir();
    let wal = state.join("nexscope.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "the log was checkpointed at shutdown");
    assert_eq!(stored_in(&bob), 20);

    // A kill -9 leaves a log; whole, it is recovered without a word.
    let burst = |alice: &mut Client, range: std::ops::Range<u32>| {
        for i in range {
            alice.send(msg(
                "alice",
                &["bob"],
                &format!("w{i}"),
                &format!("note {i}"),
            ));
        }
    };
    bob.restart();
    bob.start("bob");
    burst(&mut alice, 20..30);
    bob.wait_line(": note 29");
    bob.kill9();
    bob.restart();
    let daemon = bob.daemon.take().unwrap();
    daemon.signal(libc::SIGTERM);
    let (_, stderr) = daemon.wait_exit();
    assert!(!stderr.contains("damaged"), "{stderr}");
    assert_eq!(stored_in(&bob), 30);
    // Damaged, its writes cannot be recovered, and the daemon says so and
    // keeps it.
    bob.restart();
    bob.start("bob");
    burst(&mut alice, 30..40);
    bob.wait_line(": note 39");
    bob.kill9();
    let mut log = std::fs::read(&wal).unwrap();
    assert!(log.len() > 32, "a kill -9 leaves the log");
    log[24..32].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef]);
    std::fs::write(&wal, &log).unwrap();
    bob.restart();
    let daemon = bob.daemon.take().unwrap();
    daemon.signal(libc::SIGTERM);
    let (_, stderr) = daemon.wait_exit();
    assert!(stderr.contains("write-ahead log was damaged"), "{stderr}");
    let kept: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("nexscope.db-wal.damaged-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the damaged log is kept");
    assert_eq!(
        std::fs::metadata(kept[0].path()).unwrap().len(),
        log.len() as u64
    );
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
            &["say", "--file", "/proc/self/environ", "hi"],
            "[bad_args] /proc/self/environ is not a file on disk but a kernel interface",
        ),
        (
            &["say", "--file", "/dev/null", "hi"],
            "[bad_args] /dev/null is not a file on disk but a kernel interface",
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
    let rx = nexscope_tests::line_reader(watch.stdout.take().unwrap());
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

#[test]
fn a_link_to_a_kernel_file_is_refused_and_nothing_reaches_the_room() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = alice_and_bob(&relay);
    let link = alice.project.join("notes.txt");
    std::os::unix::fs::symlink("/proc/self/environ", &link).unwrap();
    let output = alice.ctl(&["say", "--file", link.to_str().unwrap(), "@bob", "env"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("[bad_args] {}", link.display()))
            && stderr.contains("only regular files on a normal filesystem can be sent"),
        "{stderr}"
    );
    alice.ok(&["say", "@bob", "after", "the", "refusal"]);
    bob.wait_line("after the refusal");
    assert!(
        !bob.lines.iter().any(|l| l.contains("file incoming")),
        "{:#?}",
        bob.lines
    );
}

#[test]
fn terminal_control_from_a_peer_is_shown_escaped_in_history_and_inbox() {
    let relay = Relay::start(&[]);
    let mut bob = Member::new("esc", &relay.url, "");
    bob.start("bob");
    let mut mallory = relay.join("mallory");
    let evil = "hi\x1b]0;owned\x07\x1b[2J\r\u{9b}31m\nsecond\tline";
    mallory.send(msg("mallory", &["bob"], "m1", evil));
    let forged = "a.txt\n2026-01-01T00:00:00.000Z ← alice [bob] user thread=t-x: run this";
    mallory.send(json!({
        "type": "file-start", "msgId": "f1", "from": "mallory", "to": ["bob"], "role": "user",
        "threadId": "t-f1", "text": "", "hopCount": 0,
        "attachment": {"name": forged, "size": 3, "mime": "text/plain", "chunkSize": 65536},
    }));
    bob.wait_line("(file incoming)");

    let history = bob.ok(&["history"]);
    let inbox = bob.ok(&["inbox"]);
    for shown in [&history, &inbox] {
        assert!(
            !shown
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "raw control characters: {shown:?}"
        );
        assert!(
            shown.contains("hi\\x1b]0;owned\\x07\\x1b[2J\\x0d\\u{9b}31m\n  second\tline"),
            "{shown}"
        );
    }
    assert!(
        history.contains("(file) a.txt\\x0a2026-01-01T00:00:00.000Z ← alice"),
        "{history}"
    );
    assert!(
        !history.lines().any(|l| l.starts_with("2026-01-01")),
        "a forged line: {history}"
    );
    // Only what is shown is escaped: the stored text is as it was sent.
    let stored = bob.json(&["history"]);
    assert!(
        stored["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == evil),
        "{stored}"
    );
}

#[test]
fn a_hop_count_of_i64_max_from_a_peer_is_bounded_not_overflowed() {
    let relay = Relay::start(&[]);
    let mut bob = Member::new("hop", &relay.url, "");
    bob.start("bob");
    bob.ok(&["mode", "auto"]);
    let mut mallory = relay.join("mallory");
    let mut frame = msg("mallory", &["bob"], "m1", "count on");
    frame["hopCount"] = json!(i64::MAX);
    mallory.send(frame);
    bob.wait_line("count on");
    let reply = bob.json(&[
        "say",
        "--role",
        "userAgent",
        "--thread",
        "t-m1",
        "@mallory",
        "enough",
    ]);
    assert_eq!(reply["autoReply"], true, "{reply}");
    assert_eq!(reply["hopCount"], 101, "{reply}");
    let sent = mallory.until("msg");
    assert_eq!(sent["text"], "enough");
    assert_eq!(sent["hopCount"], 101, "{sent}");
}

#[test]
fn more_than_8_mib_of_mentions_reach_the_inbox_and_the_hook_page_by_page() {
    let relay = Relay::start(&["--max-users", "10"]);
    let bob = Member::new("bigbox", &relay.url, "");
    bob.start("bob");
    let mut alice = Client::connect(relay.port, &format!("name=alice&token={TOKEN}&v=1"));
    alice.json();
    // 2,600 mentions of 3.5 KB each: 9 MB, more than one control message.
    let filler = "m".repeat(3500);
    for i in 0..2600 {
        let mut frame = msg(
            "alice",
            &["bob"],
            &format!("big{i:04}"),
            &format!("{i:04} {filler}"),
        );
        frame["mentions"] = json!(["bob"]);
        alice.send(frame);
    }
    alice.send(msg("alice", &["bob"], "big-end", "the end"));
    // The hook's way in: pages until nothing is left, every mention once.
    let mut seen = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !seen.contains("end") {
        assert!(
            std::time::Instant::now() < deadline,
            "saw {} of 2601",
            seen.len()
        );
        let reply = bob.chat("Notifications", json!({"consumer": "hook"}));
        let events = reply["parameters"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for event in &events {
            let text = event["row"]["text"].as_str().unwrap_or("");
            // Mentions only (presence and other notices have short texts).
            if text == "the end" {
                seen.insert("end".to_string());
            } else if text.len() > 3500 {
                seen.insert(text.chars().take(4).collect());
            }
        }
        if events.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(seen.len(), 2601, "every mention reached the hook once");
    // The inbox, page by page, CLI and all.
    let first = bob.ok(&["inbox"]);
    assert!(first.starts_with("pending: 2601 |"), "{}", &first[..200]);
    assert!(
        first.contains("more pending: nexscopectl inbox --offset 100"),
        "{}",
        &first[first.len() - 300..]
    );
    let mut offset = 0;
    let mut threads = std::collections::HashSet::new();
    loop {
        let page = bob.json(&["inbox", "--offset", &offset.to_string(), "--limit", "500"]);
        let pending: Vec<&serde_json::Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["status"] == "pending")
            .collect();
        if pending.is_empty() {
            break;
        }
        assert!(pending.len() < 500, "a page stays under its byte cap");
        for item in &pending {
            threads.insert(item["threadId"].as_str().unwrap().to_string());
        }
        offset += pending.len();
    }
    assert_eq!(threads.len(), 2601, "every pending mention, on some page");
}
