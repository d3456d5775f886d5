//! `nexscoped relay` against raw WebSocket clients: one test per row of the
//! v1 protocol's frame catalogue (docs/protocol.md §1.3), error table (§1.8) and
//! close codes (§1.9; section numbers here are docs/protocol.md's), then what goes beyond v1: rooms, per-user tokens, TLS, delta
//! presence, health and metrics, and bad input that must not hurt anyone.

use std::time::Duration;

use nexscope_tests::TempDir;
use nexscope_tests::relay::{Client, Ended, Relay, TOKEN, msg};
use serde_json::{Value, json};
use tungstenite::Message;

fn file_start(from: &str, to: &[&str], id: &str, size: usize) -> Value {
    json!({
        "type": "file-start", "msgId": id, "from": from, "to": to, "role": "userAgent",
        "threadId": format!("t-{id}"), "text": "caption", "hopCount": 0,
        "attachment": {"name": "a.bin", "size": size, "chunkSize": 65536}
    })
}

fn file_end(from: &str, id: &str) -> Value {
    json!({"type": "file-end", "msgId": id, "from": from})
}

/// alice and bob in the default room, each past the presence that shows both.
fn pair(relay: &Relay) -> (Client, Client) {
    let mut alice = relay.join("alice");
    let mut bob = relay.join("bob");
    alice.presence_until(&["alice", "bob"]);
    bob.presence_until(&["alice", "bob"]);
    (alice, bob)
}

// ---- §1.2 handshake and §1.6 presence -------------------------------------

#[test]
fn presence_is_the_first_frame_with_the_full_sorted_list() {
    let relay = Relay::start(&[]);
    let mut carol = relay.join("carol");
    assert_eq!(carol.json()["users"], json!(["carol"]));
    let mut alice = relay.join("alice");
    let first = alice.json();
    assert_eq!(first["type"], "presence", "the first frame is presence");
    assert_eq!(
        first["users"],
        json!(["alice", "carol"]),
        "sorted, and includes the recipient"
    );
    assert!(first["ts"].as_u64().unwrap() > 1_700_000_000_000);
    // Everyone else hears about the change.
    carol.presence_until(&["alice", "carol"]);
}

#[test]
fn reference_session_of_protocol_section_11() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    assert_eq!(alice.json()["users"], json!(["alice"]));
    let mut bob = relay.join("bob");
    assert_eq!(bob.json()["users"], json!(["alice", "bob"]));
    alice.presence_until(&["alice", "bob"]);
    alice.send(json!({"type":"msg","from":"alice","to":["bob"],"role":"userAgent","msgId":"m1","threadId":"t1","text":"ping"}));
    let got = bob.json();
    assert_eq!(got["text"], "ping");
    assert!(got["ts"].is_u64());
    let ack = alice.json();
    assert_eq!(
        ack,
        json!({"type":"ack","msgId":"m1","threadId":"t1","delivered":["bob"],"offline":[]})
    );
    alice.close();
    bob.presence_until(&["bob"]);
}

#[test]
fn close_1008_bad_or_missing_token_without_an_error_frame() {
    let relay = Relay::start(&[]);
    let mut wrong = relay.join_with("alice", "wrong", "");
    assert_eq!(
        wrong.read().unwrap_err(),
        Ended::Closed(1008),
        "no error frame before the close"
    );
    let mut missing = Client::connect(relay.port, "name=alice&v=1");
    assert_eq!(missing.read().unwrap_err(), Ended::Closed(1008));
    assert_eq!(relay.metric("nexscope_relay_auth_failures_total"), 2);
}

#[test]
fn error_version_mismatch_then_close_1008() {
    let relay = Relay::start(&[]);
    let mut client = Client::connect(relay.port, &format!("name=alice&token={TOKEN}&v=2"));
    let error = client.json();
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "version_mismatch");
    assert_eq!(client.closed(), Ended::Closed(1008));
    // A missing v means 1.
    let mut no_v = Client::connect(relay.port, &format!("name=alice&token={TOKEN}"));
    assert_eq!(no_v.json()["type"], "presence");
}

#[test]
fn error_invalid_name_then_close_4012() {
    let relay = Relay::start(&[]);
    for name in ["", "a%20b", "a.b", "x123456789012345678901234567890123"] {
        let mut client = relay.join_with(name, TOKEN, "");
        assert_eq!(client.json()["code"], "invalid_name", "{name:?}");
        assert_eq!(client.closed(), Ended::Closed(4012));
    }
}

#[test]
fn error_name_taken_then_close_4009() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    alice.json();
    let mut again = relay.join("alice");
    let error = again.json();
    assert_eq!(error["code"], "name_taken");
    assert_eq!(error["message"], "username \"alice\" already in room");
    assert_eq!(again.closed(), Ended::Closed(4009));
    // The first alice is untouched.
    alice.send(json!({"type": "ping"}));
    assert_eq!(alice.until("pong")["type"], "pong");
}

#[test]
fn error_room_full_then_close_4015() {
    let relay = Relay::start(&["--max-users", "2"]);
    let (_alice, _bob) = pair(&relay);
    let mut carol = relay.join("carol");
    assert_eq!(carol.json()["code"], "room_full");
    assert_eq!(carol.closed(), Ended::Closed(4015));
}

#[test]
fn the_default_member_cap_is_v1s_50() {
    let relay = Relay::start(&[]);
    let members: Vec<Client> = (0..50).map(|i| relay.join(&format!("m{i}"))).collect();
    let mut late = relay.join("late");
    assert_eq!(late.json()["code"], "room_full");
    drop(members);
}

// ---- §1.3 frame catalogue, §1.4 msg, §1.5 ack -----------------------------

#[test]
fn msg_targeted_reaches_only_the_named_and_is_passed_through_with_ts() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    let mut carol = relay.join("carol");
    carol.json();
    alice.until("presence");
    bob.until("presence");
    let sent = msg("alice", &["bob"], "m1", "for bob only");
    alice.send(sent.clone());
    let mut got = bob.json();
    let ts = got.as_object_mut().unwrap().remove("ts").expect("ts added");
    assert!(ts.is_u64());
    assert_eq!(got, sent, "nothing but ts is changed");
    let ack = alice.json();
    assert_eq!(ack["delivered"], json!(["bob"]));
    carol.assert_silent(Duration::from_millis(300));
}

#[test]
fn msg_broadcast_reaches_everyone_else_and_not_the_sender() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    alice.send(msg("alice", &[], "b1", "to all"));
    assert_eq!(bob.json()["text"], "to all");
    let ack = alice.json();
    assert_eq!(
        ack["type"], "ack",
        "the sender gets its ack, not its own message"
    );
    assert_eq!(ack["delivered"], json!(["bob"]));
    assert_eq!(ack["offline"], json!([]));
}

#[test]
fn ack_lists_offline_names_and_echoes_msg_id_and_thread_id() {
    let relay = Relay::start(&[]);
    let (mut alice, _bob) = pair(&relay);
    alice.send(msg("alice", &["bob", "zed", "bob"], "m2", "hi"));
    let ack = alice.json();
    assert_eq!(
        ack,
        json!({"type":"ack","msgId":"m2","threadId":"t-m2","delivered":["bob"],"offline":["zed"]})
    );
}

#[test]
fn ping_is_answered_with_pong() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    alice.json();
    alice.send(json!({"type": "ping"}));
    let pong = alice.json();
    assert_eq!(pong["type"], "pong");
    assert!(pong["ts"].is_u64());
}

// ---- §1.7 file transfer -----------------------------------------------------

#[test]
fn file_start_chunks_and_file_end_are_passed_through_and_acked() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    alice.send(file_start("alice", &["bob"], "f1", 6));
    let start = bob.json();
    assert_eq!(start["type"], "file-start");
    assert_eq!(start["attachment"]["size"], 6);
    assert!(start["ts"].is_u64());
    alice.send_binary(b"abc".to_vec());
    alice.send_binary(b"def".to_vec());
    assert_eq!(bob.read().unwrap(), Message::binary(b"abc".to_vec()));
    assert_eq!(bob.read().unwrap(), Message::binary(b"def".to_vec()));
    alice.send(file_end("alice", "f1"));
    let end = bob.json();
    assert_eq!(end["type"], "file-end");
    assert_eq!(end["msgId"], "f1");
    assert!(end["ts"].is_u64());
    assert_eq!(
        alice.json(),
        json!({"type":"ack","msgId":"f1","threadId":"t-f1","delivered":["bob"],"offline":[]})
    );
}

#[test]
fn a_50_mib_file_reaches_two_recipients_byte_identical() {
    const SIZE: usize = 50 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    let mut receivers: Vec<Client> = ["bob", "carol"].iter().map(|n| relay.join(n)).collect();
    alice.presence_until(&["alice", "bob", "carol"]);
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 251) as u8).collect();
    let handles: Vec<_> = receivers
        .drain(..)
        .map(|mut client| {
            std::thread::spawn(move || {
                let mut got = Vec::with_capacity(SIZE);
                loop {
                    match client.read().expect("frame") {
                        Message::Binary(bytes) => got.extend_from_slice(&bytes),
                        Message::Text(text) => {
                            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                            if frame["type"] == "file-end" {
                                return got;
                            }
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();
    alice.send(file_start("alice", &[], "big", SIZE));
    for chunk in data.chunks(CHUNK) {
        alice.send_binary(chunk.to_vec());
    }
    alice.send(file_end("alice", "big"));
    let ack = alice.until("ack");
    assert_eq!(ack["delivered"], json!(["bob", "carol"]));
    for handle in handles {
        let got = handle.join().unwrap();
        assert_eq!(got.len(), SIZE);
        assert!(got == data, "byte-identical");
    }
}

#[test]
fn error_transfer_busy_while_another_transfer_runs() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    alice.send(file_start("alice", &["bob"], "f1", 10));
    bob.until("file-start");
    bob.send(file_start("bob", &["alice"], "f2", 10));
    let busy = bob.json();
    assert_eq!(
        busy,
        json!({"type":"error","code":"transfer_busy","retryAfterMs":2000})
    );
    // The connection stays open and usable.
    bob.send(json!({"type": "ping"}));
    assert_eq!(bob.until("pong")["type"], "pong");
}

#[test]
fn error_bad_file_end_for_a_msg_id_that_does_not_match() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    alice.send(file_end("alice", "nothing-open"));
    assert_eq!(alice.json()["code"], "bad_file_end");
    alice.send(file_start("alice", &["bob"], "f1", 1));
    bob.until("file-start");
    alice.send(file_end("alice", "f2"));
    let error = alice.json();
    assert_eq!(error["code"], "bad_file_end");
    assert_eq!(error["msgId"], "f2");
}

#[test]
fn close_4014_transfer_timeout_and_transfer_incomplete_to_recipients() {
    let relay = Relay::start(&["--transfer-timeout-ms", "300"]);
    let (mut alice, mut bob) = pair(&relay);
    alice.send(file_start("alice", &["bob"], "slow", 100));
    bob.until("file-start");
    assert_eq!(alice.closed(), Ended::Closed(4014));
    let error = bob.until("error");
    assert_eq!(
        error,
        json!({"type":"error","code":"transfer_incomplete","msgId":"slow"})
    );
    // The lock is free again.
    bob.presence_until(&["bob"]);
    let mut carol = relay.join("carol");
    carol.json();
    bob.send(file_start("bob", &["carol"], "next", 1));
    assert_eq!(carol.until("file-start")["msgId"], "next");
}

#[test]
fn a_sender_that_disconnects_mid_transfer_frees_the_lock() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    alice.send(file_start("alice", &["bob"], "f1", 100));
    bob.until("file-start");
    drop(alice);
    assert_eq!(bob.until("error")["code"], "transfer_incomplete");
    let mut carol = relay.join("carol");
    carol.json();
    bob.send(file_start("bob", &["carol"], "f2", 1));
    assert_eq!(carol.until("file-start")["msgId"], "f2");
}

#[test]
fn file_start_over_max_file_or_without_size_is_refused() {
    let relay = Relay::start(&["--max-file", "1000"]);
    let (mut alice, _bob) = pair(&relay);
    alice.send(file_start("alice", &["bob"], "f1", 1001));
    assert_eq!(alice.json()["code"], "file_too_large");
    alice.send(json!({"type":"file-start","from":"alice","to":["bob"],"msgId":"f2"}));
    assert_eq!(alice.json()["code"], "bad_file_start");
}

// ---- §1.8 counted errors and §1.9 4013 --------------------------------------

#[test]
fn error_missing_from() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    alice.json();
    alice.send(json!({"type":"msg","to":[],"msgId":"m"}));
    assert_eq!(alice.json()["code"], "missing_from");
}

#[test]
fn error_from_mismatch() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    alice.send(msg("bob", &[], "m", "forged"));
    assert_eq!(alice.json()["code"], "from_mismatch");
    bob.assert_silent(Duration::from_millis(200));
}

#[test]
fn error_missing_to() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    alice.json();
    alice.send(json!({"type":"msg","from":"alice","to":"bob","msgId":"m"}));
    assert_eq!(alice.json()["code"], "missing_to");
}

#[test]
fn error_unknown_type() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    alice.json();
    alice.send(json!({"type":"shout","from":"alice","to":[]}));
    assert_eq!(alice.json()["code"], "unknown_type");
}

#[test]
fn error_bad_json() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    alice.json();
    alice.send_text("{not json");
    assert_eq!(alice.json()["code"], "bad_json");
    alice.send_text("[1,2]");
    assert_eq!(alice.json()["code"], "bad_json");
}

#[test]
fn close_4013_after_10_illegal_frames() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    alice.json();
    // bad_json and unknown_type are not counted.
    for _ in 0..12 {
        alice.send_text("nope");
        assert_eq!(alice.json()["code"], "bad_json");
    }
    for i in 0..10 {
        alice.send(msg("mallory", &[], &format!("m{i}"), "x"));
        assert_eq!(alice.json()["code"], "from_mismatch");
    }
    assert_eq!(alice.closed(), Ended::Closed(4013));
}

#[test]
fn binary_outside_a_transfer_is_an_illegal_frame() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    alice.send_binary(vec![1, 2, 3]);
    assert_eq!(alice.json()["code"], "unexpected_binary");
    bob.assert_silent(Duration::from_millis(200));
}

#[test]
fn error_msg_too_large_then_close_4011() {
    let relay = Relay::start(&["--max-payload", "65536"]);
    let (mut alice, mut bob) = pair(&relay);
    let big = "x".repeat(70_000);
    alice.send(msg("alice", &[], "big", &big));
    let error = alice.json();
    assert_eq!(error["code"], "msg_too_large");
    assert_eq!(alice.closed(), Ended::Closed(4011));
    bob.presence_until(&["bob"]);
}

#[test]
fn error_msg_too_large_at_the_default_limit_arrives_before_4011() {
    // 10 MiB by default: the rest of an 11 MB frame is still in flight when
    // the relay refuses it, and must not turn the close into a reset.
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    let big = "x".repeat(11_000_000);
    alice.send(msg("alice", &[], "big", &big));
    let error = alice.json();
    assert_eq!(error["code"], "msg_too_large");
    assert_eq!(error["message"], "frame exceeds 10485760 bytes", "{error}");
    assert_eq!(alice.closed(), Ended::Closed(4011));
    bob.presence_until(&["bob"]);
}

// ---- §1.10 heartbeat ----------------------------------------------------------

#[test]
fn close_4010_after_two_missed_pongs_and_presence_is_rebroadcast() {
    let relay = Relay::start(&["--heartbeat-ms", "150"]);
    let mut alice = relay.join("alice");
    alice.json();
    let mut bob = relay.join("bob");
    bob.json();
    alice.presence_until(&["alice", "bob"]);
    // bob stops reading, so tungstenite never answers the relay's pings;
    // alice keeps reading (and answering), stays, and sees bob go.
    alice.presence_until(&["alice"]);
    assert_eq!(bob.raw_close_code(), Some(4010));
}

#[test]
fn close_1000_by_a_client_updates_presence() {
    let relay = Relay::start(&[]);
    let (alice, mut bob) = pair(&relay);
    alice.close();
    bob.presence_until(&["bob"]);
}

// ---- beyond v1 ------------------------------------------------------------------

#[test]
fn a_v1_client_that_asks_nothing_gets_exactly_v1() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join("alice");
    let mut bob = relay.join("bob");
    for client in [&mut alice, &mut bob] {
        let first = client.json();
        let mut keys: Vec<&String> = first.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["ts", "type", "users"]);
    }
    alice.presence_until(&["alice", "bob"]);
    // Later presence frames are full lists too, never deltas.
    let carol = relay.join("carol");
    let update = alice.until("presence");
    assert!(update.get("joined").is_none());
    assert_eq!(update["users"], json!(["alice", "bob", "carol"]));
    drop(carol);
    assert_eq!(alice.until("presence")["users"], json!(["alice", "bob"]));
}

#[test]
fn rooms_are_separate_and_v1_clients_share_the_default_room() {
    let relay = Relay::start(&[]);
    let mut alice = relay.join_with("alice", TOKEN, "&room=api");
    assert_eq!(alice.json()["users"], json!(["alice"]));
    let mut other_alice = relay.join("alice");
    assert_eq!(
        other_alice.json()["users"],
        json!(["alice"]),
        "same name, other room"
    );
    let mut bob = relay.join_with("bob", TOKEN, "&room=api");
    bob.json();
    alice.presence_until(&["alice", "bob"]);
    bob.send(msg("bob", &[], "r1", "api only"));
    assert_eq!(alice.json()["text"], "api only");
    other_alice.assert_silent(Duration::from_millis(300));
    let mut bad = relay.join_with("x", TOKEN, "&room=a/b");
    assert_eq!(bad.json()["code"], "invalid_room");
    assert_eq!(bad.closed(), Ended::Closed(1008));
}

#[test]
fn delta_presence_sends_the_full_list_first_then_joined_and_left() {
    let relay = Relay::start(&[]);
    let mut watcher = relay.join_with("watcher", TOKEN, "&presence=delta");
    assert_eq!(watcher.json()["users"], json!(["watcher"]));
    let bob = relay.join("bob");
    let delta = watcher.until("presence");
    assert_eq!(delta["joined"], json!(["bob"]));
    assert_eq!(delta["left"], json!([]));
    assert!(delta.get("users").is_none());
    drop(bob);
    let delta = watcher.until("presence");
    assert_eq!(delta["left"], json!(["bob"]));
}

#[test]
fn a_burst_of_joins_is_coalesced_into_few_presence_frames() {
    let relay = Relay::start(&["--max-users", "1000"]);
    let mut watcher = relay.join("watcher");
    watcher.json();
    let members: Vec<Client> = (0..200)
        .map(|i| relay.join_with(&format!("m{i}"), TOKEN, "&presence=delta"))
        .collect();
    let mut frames = 0;
    loop {
        let frame = watcher.until("presence");
        frames += 1;
        if frame["users"].as_array().unwrap().len() == 201 {
            break;
        }
    }
    assert!(
        frames < 100,
        "200 joins cost the watcher {frames} presence frames"
    );
    drop(members);
}

/// The users-file value for `token`, from `nexscoped relay hash-token`.
fn hash_token(token: &str) -> String {
    let output = std::process::Command::new(nexscope_tests::bin("nexscoped"))
        .args(["relay", "hash-token"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(token.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A users file giving `name` its own `token` (and the directory it is in).
fn users_file(name: &str, token: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("users");
    let users = dir.path().join("users.toml");
    std::fs::write(&users, format!("{name} = \"{}\"\n", hash_token(token))).unwrap();
    (dir, users)
}

#[test]
fn a_squatter_is_refused_under_per_user_tokens() {
    let (_dir, users) = users_file("alice", "alice-own-token");
    let relay = Relay::start(&["--users-file", users.to_str().unwrap()]);
    // The shared token does not buy alice's name.
    let mut squatter = relay.join_with("alice", TOKEN, "");
    assert_eq!(squatter.read().unwrap_err(), Ended::Closed(1008));
    let mut alice = relay.join_with("alice", "alice-own-token", "");
    assert_eq!(alice.json()["users"], json!(["alice"]));
    // Others still join with the shared token.
    let mut bob = relay.join("bob");
    assert_eq!(bob.json()["users"], json!(["alice", "bob"]));
}

// ---- connection caps --------------------------------------------------------

/// The status code of a refused WebSocket handshake.
fn refused_status(result: Result<Client, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected an HTTP refusal, got a connection"),
    }
}

#[test]
fn half_finished_handshakes_from_one_address_do_not_keep_others_out() {
    use std::io::Write;
    let relay = Relay::start(&["--max-connections", "200"]);
    // 200 sockets from one address that start a request and never finish it.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = nexscope_tests::relay::connect_from([127, 0, 0, 1], relay.port).unwrap();
        let _ = stream.write_all(b"GET /ws?name=x HTTP/1.1\r\nHost: x\r\n");
        slow.push(stream);
    }
    // Beyond its small budget of pending handshakes, the address is told so;
    // the first 12 wait for their heads (5 s at most).
    let refused = nexscope_tests::relay::refusals(&mut slow, 200 - 12);
    for response in &refused {
        assert!(response.starts_with("HTTP/1.1 503"), "{response:?}");
    }
    // Most name the address's handshake budget; on a loaded machine a few
    // may meet the connection cap first (the refused ones still count
    // until the relay closes them), which is as right.
    let budget = refused.iter().filter(|r| r.contains("handshake")).count();
    assert!(
        refused
            .iter()
            .all(|r| r.contains("handshake") || r.contains("connection limit")),
        "{refused:?}"
    );
    assert!(budget > 0, "{refused:?}");
    assert_eq!(
        refused.len(),
        200 - 12,
        "a quarter of the 50 pending handshakes per address"
    );
    // Every real join from elsewhere gets in while the slow ones wait.
    let joined: Vec<Client> = (0..44)
        .map(|i| {
            let query = format!("name=real{i}&token={TOKEN}&v=1&presence=delta");
            let mut client = Client::try_connect_from([127, 0, 0, 2], relay.port, &query)
                .unwrap_or_else(|e| panic!("join {i} refused: {e}"));
            assert_eq!(client.json()["type"], "presence");
            client
        })
        .collect();
    assert_eq!(joined.len(), 44);
    drop(slow);
    nexscope_tests::wait_until(|| relay.get("/healthz").0.contains("200"));
    assert!(relay.metric("nexscope_relay_refused_total") >= 188);
}

#[test]
fn one_address_is_capped_and_gets_503_while_others_join() {
    let relay = Relay::start(&["--max-per-address", "20", "--max-users", "100"]);
    let query = |i: usize| format!("name=m{i}&token={TOKEN}&v=1&presence=delta");
    let mut held = Vec::new();
    for i in 0..20 {
        let mut client = Client::try_connect_from([127, 0, 0, 3], relay.port, &query(i)).unwrap();
        client.json();
        held.push(client);
    }
    assert_eq!(
        refused_status(Client::try_connect_from(
            [127, 0, 0, 3],
            relay.port,
            &query(20)
        )),
        503
    );
    let mut other = Client::try_connect_from([127, 0, 0, 4], relay.port, &query(21)).unwrap();
    assert_eq!(other.json()["type"], "presence");
    // A slot is given back when its member leaves.
    held.pop().unwrap().close();
    nexscope_tests::wait_until(|| {
        Client::try_connect_from([127, 0, 0, 3], relay.port, &query(22)).is_ok()
    });
}

#[test]
fn the_connection_cap_answers_503_not_silence() {
    let relay = Relay::start(&["--max-connections", "3"]);
    let _held: Vec<Client> = (0..3).map(|i| relay.join(&format!("u{i}"))).collect();
    let refused = Client::try_connect_from([127, 0, 0, 1], relay.port, "name=late&v=1");
    assert_eq!(refused_status(refused), 503);
}

#[test]
fn one_user_cannot_hold_more_connections_than_its_cap() {
    let (_dir, users) = users_file("mallory", "mallory-token");
    let relay = Relay::start(&[
        "--users-file",
        users.to_str().unwrap(),
        "--max-per-user",
        "3",
    ]);
    let mut held = Vec::new();
    for room in 0..3 {
        let mut client = relay.join_with("mallory", "mallory-token", &format!("&room=r{room}"));
        assert_eq!(client.json()["type"], "presence");
        held.push(client);
    }
    let mut fourth = relay.join_with("mallory", "mallory-token", "&room=r3");
    let error = fourth.json();
    assert_eq!(error["code"], "too_many_connections");
    assert!(
        error["message"].as_str().unwrap().contains("mallory"),
        "{error}"
    );
    assert_eq!(fourth.closed(), Ended::Closed(1013));
    // Shared-token members are not mallory's.
    let mut bob = relay.join_with("bob", TOKEN, "&room=r3");
    assert_eq!(bob.json()["type"], "presence");
}

#[test]
fn healthz_and_metrics_are_served_on_the_same_port() {
    let relay = Relay::start(&[]);
    assert_eq!(
        relay.get("/healthz"),
        ("HTTP/1.1 200 OK".to_string(), "ok\n".to_string())
    );
    let (alice, mut bob) = pair(&relay);
    drop(alice);
    bob.presence_until(&["bob"]);
    bob.send_text("{bad");
    bob.json();
    assert_eq!(relay.metric("nexscope_relay_members"), 1);
    assert_eq!(relay.metric("nexscope_relay_rooms"), 1);
    assert_eq!(relay.metric("nexscope_relay_connections_total"), 2);
    assert!(relay.metric("nexscope_relay_frames_out_total") >= 3);
    assert!(relay.metric("nexscope_relay_frames_in_total") >= 1);
    assert_eq!(
        relay.metric("nexscope_relay_errors_total{code=\"bad_json\"}"),
        1
    );
    assert_eq!(relay.get("/nope").0, "HTTP/1.1 404 Not Found");
    assert_eq!(relay.get("/ws").0, "HTTP/1.1 426 Upgrade Required");
}

#[test]
fn tls_handshake_against_a_self_signed_certificate() {
    let dir = TempDir::new("tls");
    let Some((cert, key)) = nexscope_tests::tls::self_signed(dir.path()) else {
        return;
    };
    let relay = Relay::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(relay.url.starts_with("wss://"), "{}", relay.url);
    // An independent client (Python websockets) with the certificate as its only root.
    let script = r#"
import asyncio, json, ssl, sys
from websockets.asyncio.client import connect
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with connect(sys.argv[1] + "?name=alice&token=" + sys.argv[3] + "&v=1", ssl=ctx) as ws:
        print(await ws.recv())
asyncio.run(main())
"#;
    if !nexscope_tests::prereq::python_module("websockets", "websockets") {
        return;
    }
    let output = std::process::Command::new(nexscope_tests::prereq::python())
        .args(["-c", script, &relay.url, cert.to_str().unwrap(), TOKEN])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let first: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(first["users"], json!(["alice"]));
    // Plain TCP to a TLS port does not get a WebSocket.
    let plain = std::net::TcpStream::connect(("127.0.0.1", relay.port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(
        tungstenite::client::client(format!("ws://127.0.0.1:{}/ws?name=x", relay.port), plain)
            .is_err()
    );
}

// ---- bad input ----------------------------------------------------------------

/// Writes one hand-made WebSocket frame behind tungstenite's back: `first`
/// is the FIN/RSV/opcode byte; client frames are masked unless told not to.
fn write_raw(client: &mut Client, first: u8, payload: &[u8], masked: bool) {
    use std::io::Write;
    assert!(payload.len() < 126);
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![first, payload.len() as u8];
    if masked {
        frame[1] |= 0x80;
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        frame.extend_from_slice(payload);
    }
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = client.ws.get_mut() {
        stream.write_all(&frame).unwrap();
    }
}

#[test]
fn invalid_utf8_and_garbage_do_not_hurt_other_members() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    // A text frame with invalid UTF-8: RFC 6455 says close with 1007.
    let mut raw = Client::connect(relay.port, &format!("name=mallory&token={TOKEN}&v=1"));
    raw.json();
    write_raw(&mut raw, 0x81, &[0xff, 0xfe, 0x80], true);
    assert_eq!(raw.closed(), Ended::Closed(1007));
    // Garbage instead of an HTTP request.
    {
        use std::io::Write;
        let mut junk = std::net::TcpStream::connect(("127.0.0.1", relay.port)).unwrap();
        let _ = junk.write_all(&[0u8, 159, 146, 150, 13, 10, 13, 10]);
    }
    alice.send(msg("alice", &["bob"], "after", "still here"));
    assert_eq!(bob.until("msg")["text"], "still here");
    assert_eq!(alice.until("ack")["delivered"], json!(["bob"]));
}

#[test]
fn broken_websocket_framing_is_closed_with_1002() {
    let relay = Relay::start(&[]);
    let cases: [(&str, u8, &[u8], bool); 5] = [
        ("an unmasked client frame", 0x81, b"{}", false),
        ("a reserved bit set", 0xc1, b"{}", true),
        ("a reserved data opcode", 0x83, b"{}", true),
        ("a fragmented ping", 0x09, b"p", true),
        ("a continuation with nothing to continue", 0x80, b"x", true),
    ];
    for (i, (what, first, payload, masked)) in cases.into_iter().enumerate() {
        let mut raw = relay.join(&format!("raw{i}"));
        raw.json();
        write_raw(&mut raw, first, payload, masked);
        assert_eq!(raw.closed(), Ended::Closed(1002), "{what}");
    }
    let (mut alice, mut bob) = pair(&relay);
    alice.send(msg("alice", &["bob"], "after", "still here"));
    assert_eq!(bob.until("msg")["text"], "still here");
}

#[test]
fn to_is_bounded_by_the_member_cap_and_duplicates_cost_nothing() {
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    // 200,000 distinct names: more than a room can hold.
    let many: Vec<String> = (0..200_000).map(|i| format!("u{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    alice.send(msg("alice", &many, "wide", "to everyone I can think of"));
    let error = alice.until("error");
    assert_eq!(error["code"], "too_many_recipients");
    assert!(error["message"].as_str().unwrap().contains("50"), "{error}");
    // 200,000 copies of one name are one recipient.
    let same = vec!["bob"; 200_000];
    alice.send(msg("alice", &same, "dup", "once"));
    assert_eq!(alice.until("ack")["delivered"], json!(["bob"]));
    assert_eq!(bob.until("msg")["text"], "once");
    alice.send(json!({"type": "ping"}));
    assert_eq!(alice.until("pong")["type"], "pong", "still connected");
}

#[test]
fn a_burst_of_large_messages_reaches_a_reader_that_keeps_up() {
    // Sustained lag gets a reader cut off, one burst does not.
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    let text = "z".repeat(1_000_000);
    for i in 0..10 {
        alice.send(msg("alice", &["bob"], &format!("b{i}"), &text));
    }
    for i in 0..10 {
        let got = bob.until("msg");
        assert_eq!(got["msgId"], format!("b{i}"));
        assert_eq!(got["text"].as_str().unwrap().len(), 1_000_000);
    }
    for _ in 0..10 {
        assert_eq!(alice.until("ack")["delivered"], json!(["bob"]));
    }
    bob.send(json!({"type": "ping"}));
    assert_eq!(bob.until("pong")["type"], "pong", "bob is still connected");
}

#[test]
fn a_reader_that_never_reads_is_cut_off_and_acks_say_exactly_what_it_got() {
    let relay = Relay::start(&["--max-users", "10", "--max-payload", "1048576"]);
    let (mut alice, mut bob) = pair(&relay);
    // bob stops reading; alice floods him with 90 MB, more than any
    // connection may have queued.
    let text = "y".repeat(900_000);
    for i in 0..100 {
        alice.send(msg("alice", &["bob"], &format!("f{i}"), &text));
    }
    let (mut delivered, mut offline) = (0, 0);
    let mut bob_left = false;
    while delivered + offline < 100 {
        let frame = alice.json();
        if frame["type"] == "presence" {
            bob_left |= frame["users"] == json!(["alice"]);
            continue;
        }
        assert_eq!(frame["type"], "ack", "{frame}");
        match (&frame["delivered"], &frame["offline"]) {
            (d, _) if *d == json!(["bob"]) => delivered += 1,
            (_, o) if *o == json!(["bob"]) => offline += 1,
            _ => panic!("bob is in neither list: {frame}"),
        }
    }
    assert!(offline > 0, "the relay stopped queueing for bob");
    if !bob_left {
        alice.presence_until(&["alice"]);
    }
    assert_eq!(
        relay.metric("nexscope_relay_errors_total{code=\"slow_consumer\"}"),
        1
    );
    // Every message acked as delivered reached bob's socket, and no other.
    // (A frame cut off mid-way by the close is no delivery.)
    let bytes = bob.raw_bytes();
    let received = nexscope_tests::relay::frames(&bytes)
        .into_iter()
        .filter(|(opcode, payload)| *opcode == 1 && payload.starts_with(b"{\"type\":\"msg\""))
        .count();
    assert_eq!(received, delivered, "acked delivered = what bob got whole");
}

#[test]
fn thousands_of_connections_opening_and_closing_leave_the_relay_serving() {
    let relay = Relay::start(&["--max-users", "100000"]);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let port = relay.port;
            std::thread::spawn(move || {
                for i in 0..500 {
                    let mut client = Client::connect(
                        port,
                        &format!("name=c{t}x{i}&token={TOKEN}&v=1&presence=delta"),
                    );
                    assert_eq!(client.json()["type"], "presence");
                    if i % 2 == 0 {
                        client.close();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let (mut alice, mut bob) = pair(&relay);
    alice.send(msg("alice", &["bob"], "m", "ok"));
    assert_eq!(bob.until("msg")["text"], "ok");
    nexscope_tests::wait_until(|| relay.metric("nexscope_relay_members") == 2);
    assert_eq!(relay.metric("nexscope_relay_connections_total"), 2002);
}

// ---- embedded in the daemon -------------------------------------------------

#[test]
fn every_daemon_embeds_a_loopback_relay_with_a_random_token() {
    let env = nexscope_tests::Env::new("embedded");
    let _daemon = env.daemon();
    let reply =
        nexscope_tests::call(&env.socket(), "io.nexscope.Daemon.EmbeddedRelay", json!({})).unwrap();
    let url = reply["parameters"]["url"].as_str().unwrap().to_string();
    let token = reply["parameters"]["token"].as_str().unwrap().to_string();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    assert_eq!(token.len(), 64, "32 random bytes in hex");
    let status =
        nexscope_tests::call(&env.socket(), "io.nexscope.Daemon.Status", json!({})).unwrap();
    assert_eq!(
        status["parameters"]["status"]["embeddedRelay"],
        url.as_str()
    );

    let port: u16 = url
        .trim_end_matches("/ws")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut alice = Client::connect(port, &format!("name=alice&token={token}&v=1"));
    assert_eq!(alice.json()["users"], json!(["alice"]));
    let mut intruder = Client::connect(port, "name=bob&token=guess&v=1");
    assert_eq!(intruder.read().unwrap_err(), Ended::Closed(1008));

    // A daemon stopping closes its relay's members with 1001.
    nexscope_tests::call(&env.socket(), "io.nexscope.Daemon.Shutdown", json!({})).unwrap();
    assert_eq!(alice.closed(), Ended::Closed(1001));
}

#[test]
fn a_v1_client_streaming_after_transfer_busy_is_not_cut_off() {
    // The reference client streams its chunks right after file-start; when
    // the room is busy they are dropped quietly, not counted as illegal.
    let relay = Relay::start(&[]);
    let (mut alice, mut bob) = pair(&relay);
    alice.send(file_start("alice", &["bob"], "f1", 10));
    bob.until("file-start");
    bob.send(file_start("bob", &["alice"], "f2", 20 * 1024));
    for _ in 0..20 {
        bob.send_binary(vec![7u8; 1024]);
    }
    bob.send(file_end("bob", "f2"));
    assert_eq!(bob.until("error")["code"], "transfer_busy");
    assert_eq!(bob.until("error")["code"], "bad_file_end");
    bob.send(json!({"type": "ping"}));
    assert_eq!(bob.until("pong")["type"], "pong", "still connected");
    alice.assert_silent(Duration::from_millis(200));
}
