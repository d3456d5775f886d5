//! The relay's figures, ours and the Node reference side by side in one run:
//!
//!   cargo build --release --workspace && cargo bench -p nexscope-tests --bench relay
//!
//! 1. `relaybench.py` (../shared/bench, or $NEXSCOPE_SHARED_BENCH) runs its
//!    rtt and fanout tests against `nexscoped relay` and then against the
//!    Node anchor (`run-node-anchor.sh`), same arguments; the ratio is printed.
//! 2. 10,000 idle members join one room of ours as `presence=delta` clients
//!    (idle members must stay cheap: a v1 relay cannot hold them, its full-list presence
//!    costs O(N²) frames); the relay's RSS before and after gives bytes per
//!    connection. The same 2,000-member v1 idle test runs on both relays.
//!
//! Prints figures; asserts nothing (the machine is shared and noisy).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nexscope_tests::relay::{Relay, TOKEN};
use nexscope_tests::rss_kib;

const IDLE: usize = 10_000;

fn shared_bench() -> Option<PathBuf> {
    let dir = std::env::var_os("NEXSCOPE_SHARED_BENCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench"));
    dir.join("relaybench.py").is_file().then_some(dir)
}

/// Runs relaybench with `args` against ours (`url`, `pid`) or, with None, the
/// Node anchor; returns its output.
fn relaybench(dir: &std::path::Path, target: Option<(&str, i32)>, args: &[&str]) -> String {
    let mut command = match target {
        Some((url, pid)) => {
            let mut c = Command::new("python3");
            c.arg(dir.join("relaybench.py")).args([
                "--url",
                url,
                "--token",
                TOKEN,
                "--pid",
                &pid.to_string(),
            ]);
            c
        }
        None => {
            let mut c = Command::new("bash");
            c.arg(dir.join("run-node-anchor.sh"));
            c
        }
    };
    // The test Python (target/py, which has `websockets`) first on PATH,
    // for us and for the Node anchor's script alike.
    let python = nexscope_tests::prereq::python();
    let mut path = std::ffi::OsString::from(python.parent().unwrap_or(std::path::Path::new("")));
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let output = command
        .env("PATH", path)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run relaybench");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The number after `key` on the first line that has it.
fn figure(output: &str, line_start: &str, key: &str) -> Option<f64> {
    output
        .lines()
        .filter(|l| l.starts_with(line_start))
        .find_map(|l| l.split(key).nth(1))
        .and_then(|rest| {
            let number: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            number.parse().ok()
        })
}

async fn idle_members(
    port: u16,
    count: usize,
) -> Vec<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>>
{
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let limit = limit.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.ok();
            let url =
                format!("ws://127.0.0.1:{port}/ws?name=i{i}&token={TOKEN}&v=1&presence=delta");
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("join");
            ws.next().await; // the full list
            ws
        }));
    }
    let mut members = Vec::with_capacity(count);
    for task in tasks {
        members.push(task.await.expect("join task"));
    }
    members
}

fn main() {
    println!(
        "# relay benchmark, {}",
        std::process::Command::new("date")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    );
    let relay = Relay::start(&[
        "--max-users",
        "100000",
        "--max-connections",
        "100000",
        "--max-per-address",
        "0",
    ]);
    let pid = relay.pid();

    // `-- idle` runs only the idle part.
    let idle_only = std::env::args().any(|a| a == "idle");
    match shared_bench().filter(|_| !idle_only) {
        None => println!(
            "relaybench not found (set NEXSCOPE_SHARED_BENCH); skipping the side-by-side runs"
        ),
        Some(dir) => {
            let args = ["--tests", "rtt,fanout", "--repeat", "3", "--seconds", "5"];
            let ours = relaybench(&dir, Some((&relay.url, pid)), &args);
            let node = relaybench(&dir, None, &args);
            println!(
                "\n## relaybench rtt,fanout: nexscoped relay\n{ours}\n## relaybench rtt,fanout: Node reference\n{node}"
            );
            let row = |name: &str, line: &str, key: &str, higher_is_better: bool| {
                if let (Some(a), Some(b)) = (figure(&ours, line, key), figure(&node, line, key)) {
                    let ratio = if higher_is_better { a / b } else { b / a };
                    println!("| {name} | {a} | {b} | {ratio:.2}× |");
                }
            };
            println!(
                "| figure | nexscoped relay | Node reference | ours better by |\n|---|---|---|---|"
            );
            row("round trip p50 (µs)", "rtt:", "p50=", false);
            row("round trip p99 (µs)", "rtt:", "p99=", false);
            row(
                "fan-out to 100, delivered msgs/s",
                "fanout: delivered",
                "delivered ",
                true,
            );

            let idle_args = ["--tests", "idle", "--idle", "2000"];
            let ours = relaybench(&dir, Some((&relay.url, pid)), &idle_args);
            let node = relaybench(&dir, None, &idle_args);
            println!(
                "\n## relaybench idle 2000 (v1 clients): nexscoped relay\n{ours}\n## relaybench idle 2000: Node reference\n{node}"
            );
        }
    }

    // 10,000 idle delta members in one room.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(pid);
    let started = Instant::now();
    let members = runtime.block_on(idle_members(relay.port, IDLE));
    let joined = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / IDLE as f64;
    let online = relay.metric("nexscope_relay_members");
    println!("\n## {IDLE} idle members in one room (presence=delta)");
    println!("| figure | value | target |\n|---|---|---|");
    println!("| members online | {online} | 10,000 |");
    println!("| joined in | {:.1} s | |", joined.as_secs_f64());
    println!(
        "| relay RSS before / after | {:.1} MiB / {:.1} MiB | |",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    println!(
        "| RSS per idle connection | {:.1} KiB | ≤ 6 KiB |",
        per / 1024.0
    );
    drop(members);
}
