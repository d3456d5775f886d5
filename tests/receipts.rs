//! Receipts end to end: our relay and two daemons, nexscopectl and the real
//! hook; a message's receipt at each recipient moves relayed → stored →
//! surfaced → answered and never back, and a v1 client in the room sees
//! none of it.

use std::time::Duration;

use nexscope_tests::relay::{Relay, TOKEN, msg};
use nexscope_tests::rooms::{Member, hook_with};
use nexscope_tests::wait_until;
use serde_json::{Value, json};

/// A relay with alice and bob joined, each past seeing the other.
fn alice_and_bob(relay: &Relay) -> (Member, Member) {
    let alice = Member::new("rcpt-a", &relay.url, "");
    let bob = Member::new("rcpt-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    wait_until(|| {
        alice.json(&["who"])["users"]
            .as_array()
            .is_some_and(|u| u.len() == 2)
    });
    (alice, bob)
}

/// alice's receipts of `id`, as `nexscopectl receipts --json` gives them.
fn receipts(member: &Member, id: &str) -> Vec<Value> {
    member.json(&["receipts", id])["receipts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The state of `id` at `recipient`, once it is `state`.
fn wait_state(member: &Member, id: &str, recipient: &str, state: &str) -> Value {
    let deadline = std::time::Instant::now() + nexscope_tests::WAIT;
    loop {
        let all = receipts(member, id);
        if let Some(found) = all
            .iter()
            .find(|r| r["recipient"] == recipient && r["state"] == state)
        {
            return found.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{recipient} never reached {state} for {id}: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_mention_moves_relayed_stored_surfaced_answered_and_history_shows_it() {
    let relay = Relay::start(&[]);
    let (alice, bob) = alice_and_bob(&relay);

    // --wait stored: the Say returns once bob's daemon committed it.
    let said = alice.json(&[
        "say",
        "--wait",
        "stored",
        "--timeout",
        "20",
        "@bob",
        "what",
        "is",
        "2+2?",
    ]);
    let (msg_id, thread) = (
        said["msgId"].as_str().unwrap().to_string(),
        said["threadId"].as_str().unwrap().to_string(),
    );
    let at_bob = &said["receipts"][0];
    assert_eq!(said["receipts"].as_array().unwrap().len(), 1, "{said}");
    assert_eq!(at_bob["recipient"], "bob", "{said}");
    assert_eq!(at_bob["state"], "stored", "{said}");
    assert_eq!(at_bob["msgId"], msg_id.as_str());
    assert_eq!(at_bob["threadId"], thread.as_str());

    // bob's Claude Code hook hands it to the agent: surfaced, by the hook.
    let input =
        json!({"session_id": "s1", "hook_event_name": "UserPromptSubmit", "cwd": bob.project});
    let (code, out) = hook_with(&bob.env, &input, "user-prompt-submit", &[]);
    assert_eq!(code, Some(0));
    assert!(out.contains("what is 2+2?"), "{out}");
    let surfaced = wait_state(&alice, &msg_id, "bob", "surfaced");
    assert_eq!(surfaced["via"], "hook", "{surfaced}");

    // bob answers on the thread: answered.
    bob.ok(&["say", "--thread", &thread, "@alice", "4"]);
    wait_state(&alice, &msg_id, "bob", "answered");

    // A thread id lists every message of alice's on it; a state never
    // moves back (the hook running again changes nothing).
    let (code, _) = hook_with(&bob.env, &input, "user-prompt-submit", &[]);
    assert_eq!(code, Some(0));
    std::thread::sleep(Duration::from_millis(300));
    let on_thread = receipts(&alice, &thread);
    assert_eq!(on_thread.len(), 1, "{on_thread:?}");
    assert_eq!(on_thread[0]["state"], "answered");

    // history --json carries the receipts with alice's message.
    let history = alice.json(&["history"]);
    let sent = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["msgId"] == msg_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(sent["dir"], "out");
    assert_eq!(sent["receipts"][0]["state"], "answered", "{sent}");

    // The human-readable form names recipient, state and message.
    let text = alice.ok(&["receipts", &msg_id]);
    assert!(text.starts_with("bob  answered  msg "), "{text}");
    assert!(text.contains(&thread), "{text}");
}

#[test]
fn a_wait_for_a_state_that_is_not_one_is_refused_and_nothing_is_sent() {
    let relay = Relay::start(&[]);
    let (alice, bob) = alice_and_bob(&relay);
    let refused = alice.ctl(&["say", "--wait", "relayed", "@bob", "not", "sent"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "wait \"relayed\" is not a state to wait for; use stored, surfaced or answered"
        ),
        "{stderr}"
    );
    let refused = alice.ctl(&["say", "--wait", "stored", "--timeout", "0", "@bob", "x"]);
    assert_eq!(refused.status.code(), Some(2), "a usage error");
    // Neither went out, nor is in alice's history.
    alice.ok(&["say", "@bob", "sent"]);
    wait_until(|| {
        bob.json(&["history"])["items"]
            .to_string()
            .contains("\"sent\"")
    });
    assert!(
        !alice.json(&["history"])["items"]
            .to_string()
            .contains("not sent")
    );
    assert!(
        !bob.json(&["history"])["items"]
            .to_string()
            .contains("not sent")
    );
}

#[test]
fn an_mcp_poll_surfaces_by_mcp_and_a_broadcast_gets_a_receipt_per_member() {
    let relay = Relay::start(&[]);
    let (alice, bob) = alice_and_bob(&relay);
    let carol = Member::new("rcpt-c", &relay.url, "");
    carol.start("carol");
    wait_until(|| {
        alice.json(&["who"])["users"]
            .as_array()
            .is_some_and(|u| u.len() == 3)
    });
    let said = alice.json(&["say", "--wait", "stored", "--timeout", "20", "hello", "all"]);
    let msg_id = said["msgId"].as_str().unwrap().to_string();
    let mut at: Vec<(String, String)> = said["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["recipient"].as_str().unwrap().into(),
                r["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    at.sort();
    assert_eq!(
        at,
        [
            ("bob".into(), "stored".into()),
            ("carol".into(), "stored".into())
        ]
    );
    // The MCP shim's poll drains carol's notifications for its agent.
    let polled = carol.chat(
        "Notifications",
        json!({"consumer": nexscope_proto::api::chat::MCP_CONSUMERS.to_string() + ":1"}),
    );
    assert!(
        polled["parameters"]["events"]
            .to_string()
            .contains("hello all")
    );
    let surfaced = wait_state(&alice, &msg_id, "carol", "surfaced");
    assert_eq!(surfaced["via"], "mcp");
    // bob's stays where it was.
    let bob_state = receipts(&alice, &msg_id)
        .into_iter()
        .find(|r| r["recipient"] == "bob")
        .unwrap();
    assert_eq!(bob_state["state"], "stored");
    drop(bob);
}

#[test]
fn a_v1_client_in_the_room_sees_no_receipt_and_its_messages_stay_relayed() {
    let relay = Relay::start(&[]);
    let (alice, bob) = alice_and_bob(&relay);
    // carol speaks only v1: no receipts=1 on her URL.
    let mut carol = relay.join("carol");
    carol.until("presence");
    wait_until(|| {
        alice.json(&["who"])["users"]
            .as_array()
            .is_some_and(|u| u.len() == 3)
    });

    // To carol: relayed (the relay wrote it), and never more.
    let to_carol = alice.json(&[
        "say",
        "--wait",
        "stored",
        "--timeout",
        "2",
        "@carol",
        "hi",
        "carol",
    ]);
    let got = carol.until("msg");
    assert_eq!(got["text"], "hi carol");
    let states = to_carol["receipts"].as_array().unwrap();
    assert_eq!(states.len(), 1, "{to_carol}");
    assert_eq!(states[0]["recipient"], "carol");
    assert_eq!(states[0]["state"], "relayed");

    // carol's own message to bob is stored by bob's daemon; no receipt
    // frame ever comes back to her, nor from alice's broadcast to her.
    carol.send(msg("carol", &["bob"], "c-1", "hello bob"));
    assert_eq!(carol.until("ack")["delivered"], json!(["bob"]));
    alice.ok(&["say", "everyone"]);
    assert_eq!(carol.until("msg")["text"], "everyone");
    wait_until(|| {
        bob.json(&["history"])["items"]
            .to_string()
            .contains("hello bob")
    });
    let at_carol = carol.frames_until_pong();
    assert!(
        at_carol.iter().all(|f| f["type"] != "receipt"),
        "{at_carol:?}"
    );
}

#[test]
fn the_relay_carries_receipts_only_between_clients_that_asked() {
    let relay = Relay::start(&[]);
    let mut dan = relay.join_with("dan", TOKEN, "&receipts=1");
    let first = dan.json();
    assert_eq!(first["type"], "presence");
    assert_eq!(first["receipts"], true, "{first}");
    let mut eve = relay.join_with("eve", TOKEN, "&receipts=1");
    eve.until("presence");
    // eve learns what is behind the names known so far: nothing yet.
    assert_eq!(eve.until("status")["agents"], json!({}));
    // dan says a claude session is behind his name: eve (who asked) hears it,
    // and only that (a member speaks for itself, never for others).
    dan.send(
        json!({"type": "status", "from": "dan", "agent": "claude", "agents": {"eve": "person"}}),
    );
    let status = eve.until("status");
    assert_eq!(
        (status["from"].clone(), status["agent"].clone()),
        (json!("dan"), json!("claude"))
    );
    assert!(status.get("agents").is_none(), "{status}");
    let mut gus = relay.join_with("gus", TOKEN, "&receipts=1");
    gus.until("presence");
    assert_eq!(gus.until("status")["agents"], json!({"dan": "claude"}));
    dan.send(json!({"type": "status", "from": "dan", "agent": "robot"}));
    assert_eq!(dan.until("error")["code"], "bad_status");
    let mut fay = relay.join("fay");
    let fay_first = fay.until("presence");
    assert!(fay_first.get("receipts").is_none(), "{fay_first}");

    let receipt = |from: &str, to: &str| json!({"type": "receipt", "from": from, "to": [to], "msgId": "m-1", "threadId": "t-1", "state": "stored"});
    // dan → eve: delivered with ts, and no ack.
    dan.send(receipt("dan", "eve"));
    let got = eve.until("receipt");
    assert_eq!(got["from"], "dan");
    assert_eq!(got["state"], "stored");
    assert!(got["ts"].is_u64(), "{got}");
    // dan → fay (never asked): dropped; fay → anyone: an unknown type, as in v1.
    dan.send(receipt("dan", "fay"));
    dan.frames_until_pong();
    let at_fay = fay.frames_until_pong();
    assert!(at_fay.iter().all(|f| f["type"] == "presence"), "{at_fay:?}");
    fay.send(receipt("fay", "dan"));
    assert_eq!(fay.until("error")["code"], "unknown_type");
    fay.send(json!({"type": "status", "from": "fay", "agent": "person"}));
    assert_eq!(fay.until("error")["code"], "unknown_type");
    // A receipt without a msgId, or too large, is refused by name.
    dan.send(json!({"type": "receipt", "from": "dan", "to": ["eve"], "state": "stored"}));
    assert_eq!(dan.until("error")["code"], "bad_receipt");
    let mut big = receipt("dan", "eve");
    big["pad"] = json!("x".repeat(5000));
    dan.send(big);
    assert_eq!(dan.until("error")["code"], "bad_receipt");
    // And from must be the sender, as for msg.
    dan.send(receipt("eve", "eve"));
    assert_eq!(dan.until("error")["code"], "from_mismatch");
    dan.frames_until_pong();
    let at_eve = eve.frames_until_pong();
    assert!(at_eve.iter().all(|f| f["type"] == "presence"), "{at_eve:?}");
}

#[test]
fn across_the_v1_reference_relay_receipts_stop_at_relayed_and_nothing_breaks() {
    let Some(relay) = Relay::start_v1() else {
        return;
    };
    let (alice, mut bob) = alice_and_bob(&relay);
    let said = alice.json(&[
        "say",
        "--wait",
        "stored",
        "--timeout",
        "2",
        "@bob",
        "over",
        "a",
        "v1",
        "relay",
    ]);
    let thread = said["threadId"].as_str().unwrap().to_string();
    assert_eq!(said["delivered"], json!(["bob"]), "{said}");
    let states = said["receipts"].as_array().unwrap();
    assert_eq!(states.len(), 1, "{said}");
    assert_eq!(states[0]["state"], "relayed", "{said}");
    bob.wait_line("over a v1 relay");
    bob.ok(&["say", "--thread", &thread, "@alice", "reply"]);
    wait_until(|| {
        alice.json(&["history"])["items"]
            .to_string()
            .contains("\"reply\"")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receipts(&alice, &thread)[0]["state"], "relayed");
    // No frame of ours reached the v1 relay as an unknown type.
    assert!(
        !bob.lines.iter().any(|l| l.contains("relay error")),
        "{:?}",
        bob.lines
    );
    let who = alice.json(&["who"]);
    assert_eq!(who["agents"], json!({"alice": "daemon"}), "{who}");
}
