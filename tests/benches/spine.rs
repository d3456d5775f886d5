//! The spine's figures: Ping round trip over the control socket (one
//! connection, 10,000 calls), the whole-process wall time of `nexscopectl
//! ping`, and the idle RSS of the daemon.
//!
//!   cargo build --release --workspace && cargo bench -p nexscope-tests --bench spine
//!
//! Prints figures; asserts nothing (the machine is shared and noisy).

use std::time::{Duration, Instant};

use nexscope_proto::varlink::client::Connection;
use nexscope_tests::{Env, percentile, rss_kib};
use serde_json::{Value, json};

const CALLS: usize = 10_000;
const CTL_RUNS: usize = 300;

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let env = Env::new("bench-spine");
    let daemon = env.daemon();
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = rss_kib(daemon.pid());

    let mut connection = Connection::connect(&env.socket(), Some(Duration::from_secs(5))).unwrap();
    for _ in 0..1000 {
        connection
            .call::<Value>("io.nexscope.Daemon.Ping", json!({}))
            .unwrap();
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Instant::now();
        connection
            .call::<Value>("io.nexscope.Daemon.Ping", json!({}))
            .unwrap();
        samples.push(start.elapsed());
    }
    samples.sort();

    let mut ctl = Vec::with_capacity(CTL_RUNS);
    for _ in 0..CTL_RUNS {
        let start = Instant::now();
        let output = env.ctl(&["ping"]);
        ctl.push(start.elapsed());
        assert!(output.status.success());
    }
    ctl.sort();
    let busy_rss = rss_kib(daemon.pid());

    println!("| figure | value | target |");
    println!("|---|---|---|");
    println!(
        "| Ping round trip p50 ({CALLS} calls, one connection) | {} | < 50 µs |",
        micros(percentile(&samples, 0.50))
    );
    println!(
        "| Ping round trip p99 | {} | |",
        micros(percentile(&samples, 0.99))
    );
    println!(
        "| `nexscopectl ping` wall time p50 ({CTL_RUNS} runs) | {:.2} ms | < 3 ms |",
        percentile(&ctl, 0.50).as_secs_f64() * 1e3
    );
    println!(
        "| `nexscopectl ping` wall time p99 | {:.2} ms | |",
        percentile(&ctl, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "| daemon RSS, idle after start | {:.1} MiB | < 10 MiB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| daemon RSS after the runs above | {:.1} MiB | |",
        busy_rss as f64 / 1024.0
    );
}
