//! Wake and receipts, the figures issue 14 asks for:
//!
//! 1. A mention on daemon A to the turn starting in B's idle interactive
//!    Claude Code (the real pinned `claude` in tmux, against the mock model):
//!    p50 and p99 over 50 mentions. The clock stops when the mock receives
//!    the request carrying the mention; each turn answers on its thread
//!    through its tool, so B's auto tasks are done before the next one.
//! 2. What receipts add to a message: bytes on the wire per recipient, and
//!    the CPU the two daemons spend per message with receipts (our relay)
//!    and without (the v1 reference relay), over 500 mentions each.
//!
//!   cargo build --release --workspace && cargo bench -p nexscope-tests --bench wake
//!
//! Prints figures; asserts nothing (the machine is shared and noisy).

use std::time::{Duration, Instant};

use nexscope_tests::agent_clis::claude_bin;
use nexscope_tests::agents::requests_with;
use nexscope_tests::mock_model::MockModel;
use nexscope_tests::relay::Relay;
use nexscope_tests::rooms::Member;
use nexscope_tests::wiring::{interactive_claude, session_status, wait_screen};
use nexscope_tests::{cpu_time, percentile, wait_until};
use serde_json::json;

const WAKES: usize = 50;
const MESSAGES: usize = 500;

fn main() {
    println!("# wake and receipts benchmark, {}", now_utc());
    wake_latency();
    receipt_cost();
}

fn now_utc() -> String {
    let out = std::process::Command::new("date").arg("-u").output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn wake_latency() {
    let Some(claude) = claude_bin() else { return };
    let mock = MockModel::start();
    let relay = Relay::start(&[]);
    let alice = Member::new("wbench-a", &relay.url, "");
    let bob = Member::new("wbench-b", &relay.url, "hop_limit = 100\n");
    alice.start("alice");
    bob.start("bob");
    bob.ok(&["mode", "auto"]);
    let settings = nexscope_tests::wiring::home(&bob.env).join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, r#"{"crossSessionInbound": "accept"}"#).unwrap();
    let Some((tmux, config_dir)) =
        interactive_claude(&bob, &mock, &claude, "--permission-mode bypassPermissions")
    else {
        return;
    };
    wait_screen(&tmux, "the session registered", &|| {
        bob.chat("Live", json!({}))["parameters"]["sessions"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    });
    let mut samples = Vec::new();
    for n in 0..WAKES {
        wait_screen(&tmux, "claude idle", &|| {
            session_status(&config_dir).as_deref() == Some("idle")
        });
        let thread = format!("t-wake-bench-{n}");
        let marker = format!("wake bench {n} done");
        let text = format!(
            "[[mock:tool nexscopectl say --role userAgent --thread {thread} @alice {marker}]]"
        );
        let sent = Instant::now();
        alice.ok(&[
            "say",
            "--role",
            "userAgent",
            "--thread",
            &thread,
            "@bob",
            &text,
        ]);
        wait_screen(&tmux, "the turn", &|| requests_with(&mock, &marker) >= 1);
        samples.push(sent.elapsed());
        wait_until(|| {
            alice.json(&["history", "--limit", "5"])["items"]
                .to_string()
                .contains(&marker)
        });
    }
    samples.sort();
    println!("\n## mention on A → turn starting in B's idle interactive claude ({WAKES} mentions)");
    println!("| figure | p50 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| `nexscopectl say` started on A → B's claude asks the model | {:.0} ms | {:.0} ms | {:.0} ms |",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap())
    );
    println!(
        "(includes the 300 ms coalescing window; nexscopectl say itself waits for the relay's ack)"
    );
}

fn receipt_cost() {
    println!("\n## what receipts add to a message ({MESSAGES} mentions, two daemons)");
    println!("| relay | receipts | daemon CPU per message (A + B) |");
    println!("|---|---|---|");
    let ours = Relay::start(&[]);
    let with = cpu_per_message(&ours, "with");
    println!(
        "| ours | relayed, stored, surfaced | {:.0} µs |",
        with.as_secs_f64() * 1e6
    );
    if let Some(v1) = Relay::start_v1() {
        let without = cpu_per_message(&v1, "without");
        println!(
            "| v1 reference | relayed only | {:.0} µs |",
            without.as_secs_f64() * 1e6
        );
    }
    let frame = json!({"type": "receipt", "from": "bob", "to": ["alice"],
        "msgId": "0f8fad5b-d9cb-469f-a165-70867728950e", "threadId": "t-1796421220426-a1b2c3",
        "state": "surfaced", "via": "hook", "ts": 1796421220426u64});
    println!(
        "receipt frame as delivered: {} bytes per state per recipient (stored and surfaced: 2 frames; answered: 1 more)",
        frame.to_string().len()
    );
}

/// Both daemons' CPU per message: alice mentions bob MESSAGES times, bob's
/// consumer drains each (a hook's work), so each message is relayed,
/// stored and surfaced where the relay carries receipts.
fn cpu_per_message(relay: &Relay, tag: &str) -> Duration {
    let alice = Member::new(&format!("rc-{tag}-a"), &relay.url, "");
    let bob = Member::new(&format!("rc-{tag}-b"), &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    wait_until(|| {
        alice.json(&["who"])["users"]
            .as_array()
            .is_some_and(|u| u.len() == 2)
    });
    let pids = [
        alice.daemon.as_ref().unwrap().pid(),
        bob.daemon.as_ref().unwrap().pid(),
    ];
    let before: Duration = pids.iter().map(|p| cpu_time(*p)).sum();
    for n in 0..MESSAGES {
        alice.chat(
            "Say",
            json!({"text": format!("m{n}"), "to": ["bob"], "role": "userAgent"}),
        );
        bob.chat("Notifications", json!({"consumer": "claude-code:bench"}));
    }
    std::thread::sleep(Duration::from_millis(500));
    let after: Duration = pids.iter().map(|p| cpu_time(*p)).sum();
    (after - before) / MESSAGES as u32
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
