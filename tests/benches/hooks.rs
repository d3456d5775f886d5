//! The agent paths' figures: the whole-process wall time of `nexscopectl hook
//! user-prompt-submit` (it runs before every prompt) with 0 and with 100
//! pending events, and one MCP tool call's round trip through `nexscopectl mcp`.
//!
//!   cargo build --release --workspace && cargo bench -p nexscope-tests --bench hooks
//!
//! Prints figures; asserts nothing (the machine is shared and noisy).

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nexscope_tests::relay::{Client, Relay, TOKEN, msg};
use nexscope_tests::rooms::Member;
use nexscope_tests::{bin, percentile, wait_until};
use serde_json::json;

const EMPTY_RUNS: usize = 200;
const FULL_RUNS: usize = 20;
const MCP_CALLS: usize = 500;

fn hook(member: &Member) -> Duration {
    let started = Instant::now();
    let mut child = member
        .env
        .command(bin("nexscopectl"))
        .args(["hook", "user-prompt-submit"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({"cwd": member.project, "hook_event_name": "UserPromptSubmit"}).to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap();
    started.elapsed()
}

fn main() {
    let relay = Relay::start(&["--max-users", "100"]);
    let mut bob = Member::new("bench-hook", &relay.url, "");
    bob.start("bob");
    let mut alice = Client::connect(relay.port, &format!("name=alice&token={TOKEN}&v=1"));
    alice.json();
    hook(&bob);

    let mut empty: Vec<Duration> = (0..EMPTY_RUNS).map(|_| hook(&bob)).collect();
    empty.sort();

    let mut full = Vec::new();
    let mut sent = 0usize;
    for _ in 0..FULL_RUNS {
        for _ in 0..100 {
            alice.send(msg(
                "alice",
                &["bob"],
                &format!("h{sent}"),
                "a line of chat",
            ));
            alice.until("ack");
            sent += 1;
        }
        let last = format!("h{}", sent - 1);
        wait_until(|| {
            let history = bob.chat("History", json!({"limit": 1}));
            history["parameters"]["items"][0]["msgId"] == last.as_str()
        });
        full.push(hook(&bob));
    }
    full.sort();

    // MCP: initialize once, then time tools/call round trips.
    let mut mcp = bob
        .env
        .command(bin("nexscopectl"))
        .args(["--project", bob.project.to_str().unwrap(), "mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = mcp.stdin.take().unwrap();
    let mut stdout = BufReader::new(mcp.stdout.take().unwrap());
    let mut line = String::new();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
    writeln!(stdin, "{init}").unwrap();
    stdout.read_line(&mut line).unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    let mut calls = Vec::with_capacity(MCP_CALLS);
    for id in 1..=MCP_CALLS {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "nexscope_who", "arguments": {}}});
        let started = Instant::now();
        writeln!(stdin, "{request}").unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        calls.push(started.elapsed());
        assert!(line.contains("online ("), "{line}");
    }
    calls.sort();
    drop(stdin);
    let _ = mcp.wait();

    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    println!("| figure | p50 | p99 | target |\n|---|---|---|---|");
    println!(
        "| `nexscopectl hook user-prompt-submit`, 0 pending events ({EMPTY_RUNS} runs) | {} | {} | < 5 ms |",
        ms(percentile(&empty, 0.5)),
        ms(percentile(&empty, 0.99))
    );
    println!(
        "| same, 100 pending events ({FULL_RUNS} runs) | {} | {} | < 5 ms |",
        ms(percentile(&full, 0.5)),
        ms(percentile(&full, 0.99))
    );
    println!(
        "| MCP `tools/call nexscope_who` round trip ({MCP_CALLS} calls) | {} | {} | |",
        ms(percentile(&calls, 0.5)),
        ms(percentile(&calls, 0.99))
    );
    bob.kill9();
}
