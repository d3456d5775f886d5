//! The rooms' figures: Say on daemon A to the event in Watch on daemon B
//! through the relay (p50/p99 over 10,000 messages), messages per second one
//! project receives while committing each to SQLite, and daemon RSS with 20
//! projects joined.
//!
//!   cargo build --release --workspace && cargo bench -p nexscope-tests --bench rooms
//!
//! Prints figures; asserts nothing (the machine is shared and noisy).

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nexscope_proto::varlink::client::Connection;
use nexscope_tests::relay::{Client, Relay, TOKEN, msg};
use nexscope_tests::rooms::Member;
use nexscope_tests::{percentile, rss_kib};
use serde_json::{Value, json};

const LATENCY_MESSAGES: usize = 10_000;
const FLOOD: usize = 50_000;
const PROJECTS: usize = 20;

/// Follows `member`'s Watch on a thread; sends (msgId, arrival) per msg event.
fn watch(member: &Member) -> mpsc::Receiver<(String, Instant)> {
    let (tx, rx) = mpsc::channel();
    let socket = member.env.socket();
    let project = member.project.to_str().unwrap().to_string();
    std::thread::spawn(move || {
        let mut connection = Connection::connect(&socket, None).unwrap();
        let _ = connection.call_more(
            "io.nexscope.Chat.Watch",
            json!({ "project": project }),
            |reply: Value| {
                if reply["event"]["kind"] == "msg" {
                    let id = reply["event"]["row"]["msgId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    return tx.send((id, Instant::now())).is_ok();
                }
                true
            },
        );
    });
    rx
}

fn main() {
    let relay = Relay::start(&["--max-users", "1000"]);
    let alice = Member::new("bench-a", &relay.url, "");
    let bob = Member::new("bench-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    std::thread::sleep(Duration::from_millis(300));

    // 1. Say on A → Watch on B.
    let arrivals = watch(&bob);
    std::thread::sleep(Duration::from_millis(200));
    let mut say = Connection::connect(&alice.env.socket(), Some(Duration::from_secs(10))).unwrap();
    let project = alice.project.to_str().unwrap().to_string();
    let mut latencies = Vec::with_capacity(LATENCY_MESSAGES);
    for i in 0..LATENCY_MESSAGES + 200 {
        let started = Instant::now();
        let said: Value = say
            .call(
                "io.nexscope.Chat.Say",
                json!({ "project": project, "text": format!("m{i}"), "to": ["bob"] }),
            )
            .unwrap();
        let id = said["msgId"].as_str().unwrap().to_string();
        loop {
            let (got, at) = arrivals
                .recv_timeout(Duration::from_secs(10))
                .expect("event at B");
            if got == id {
                if i >= 200 {
                    latencies.push(at - started);
                }
                break;
            }
        }
    }
    latencies.sort();

    // 2. A raw sender floods bob; bob's Watch counts committed events.
    let mut flood = Client::connect(relay.port, &format!("name=flood&token={TOKEN}&v=1"));
    flood.json();
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        // Windows of 500, reading their acks, so the relay never finds the
        // sender too slow to take them.
        for window in (0..FLOOD).collect::<Vec<_>>().chunks(500) {
            for i in window {
                flood.send(msg("flood", &["bob"], &format!("flood-{i}"), "x"));
            }
            for _ in window {
                flood.until("ack");
            }
        }
        flood
    });
    let mut seen: HashMap<String, ()> = HashMap::new();
    while seen.len() < FLOOD {
        let (id, _) = arrivals
            .recv_timeout(Duration::from_secs(30))
            .expect("flood events");
        if id.starts_with("flood-") {
            seen.insert(id, ());
        }
    }
    let flood_elapsed = started.elapsed();
    drop(sender.join());

    // 3. Twenty projects in one daemon.
    let crowd = Member::new("bench-c", &relay.url, "");
    for i in 0..PROJECTS {
        let dir = crowd.env.root.path().join(format!("p{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let output = crowd.env.ctl(&[
            "--project",
            dir.to_str().unwrap(),
            "start",
            "-n",
            &format!("crowd{i}"),
        ]);
        assert!(output.status.success());
    }
    std::thread::sleep(Duration::from_secs(1));
    let crowd_rss = rss_kib(crowd.daemon.as_ref().unwrap().pid());

    println!("| figure | value | target |\n|---|---|---|");
    println!(
        "| Say on A → Watch event on B, p50 ({LATENCY_MESSAGES} messages) | {:.2} ms | ≤ 1 ms |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3
    );
    println!(
        "| Say on A → Watch event on B, p99 | {:.2} ms | ≤ 5 ms |",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "| messages one project receives and commits, per second ({FLOOD} in {:.2} s) | {:.0} | ≥ 20,000 |",
        flood_elapsed.as_secs_f64(),
        FLOOD as f64 / flood_elapsed.as_secs_f64()
    );
    println!(
        "| daemon RSS with {PROJECTS} projects joined | {:.1} MiB | ≤ 30 MiB |",
        crowd_rss as f64 / 1024.0
    );
    println!(
        "| daemon B RSS after the runs above | {:.1} MiB | |",
        rss_kib(bob.daemon.as_ref().unwrap().pid()) as f64 / 1024.0
    );
}
