//! The agent host's figures against the real `claude` and the mock model:
//! what nexscoped adds to a turn (query → first text, query → done), with 1
//! and with 20 concurrent sessions, measured as the same turns sent straight
//! to `claude` processes and through the daemon in one run (the model's and
//! the CLI's own time cancel out); and the daemon's own RSS (its agents
//! excluded) with 20 idle session records and with 5 live agent processes.
//!
//!   cargo build --release --workspace && cargo bench -p nexscope-tests --bench agents
//!
//! Prints figures; asserts nothing (the machine is shared and noisy).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use nexscope_tests::agent_clis::{Cli, STREAM_JSON_ARGS, claude_bin, claude_env, cli_command};
use nexscope_tests::agents::{AgentWorld, TURN_WAIT, children_of};
use nexscope_tests::{Raw, cpu_time, percentile, rss_kib, wait_until};
use serde_json::{Value, json};

/// Turns per session after a warm-up turn.
const ROUNDS: usize = 30;
const CONCURRENT: usize = 20;
const CONCURRENT_ROUNDS: usize = 5;
/// The stand-in answers in microseconds: many more turns for stable figures.
const ECHO_ROUNDS: usize = 500;
const ECHO_CONCURRENT_ROUNDS: usize = 50;

/// (first text, done) of one turn.
type Sample = (Duration, Duration);

fn user_line(prompt: &str) -> Value {
    json!({"type": "user", "message": {"role": "user", "content": prompt}, "parent_tool_use_id": null, "session_id": ""})
}

/// One turn straight to a claude process.
fn direct_turn(cli: &mut Cli, prompt: &str) -> Sample {
    let start = Instant::now();
    cli.send(&user_line(prompt));
    let mut first = None;
    loop {
        let line = cli.next(TURN_WAIT);
        if first.is_none() && line["type"] == "assistant" {
            first = Some(start.elapsed());
        }
        if line["type"] == "result" {
            return (first.unwrap_or_else(|| start.elapsed()), start.elapsed());
        }
    }
}

/// One turn through the daemon's Query.
fn daemon_turn(world: &AgentWorld, session: &str, cwd: &str, prompt: &str) -> Sample {
    let mut raw = Raw::connect(&world.env.socket()).unwrap();
    raw.stream.set_read_timeout(Some(TURN_WAIT)).unwrap();
    let start = Instant::now();
    raw.send_call(json!({"method": "io.nexscope.Agent.Query", "more": true,
        "parameters": {"prompt": prompt, "session": session, "cwd": cwd}}))
        .unwrap();
    let mut first = None;
    loop {
        let reply = raw.reply().expect("query stream");
        let event = &reply["parameters"]["event"];
        if first.is_none() && event["type"] == "text" {
            first = Some(start.elapsed());
        }
        if event["type"] == "done" || reply.get("error").is_some() {
            return (first.unwrap_or_else(|| start.elapsed()), start.elapsed());
        }
    }
}

fn spawn_claude(world: &AgentWorld, dir: &std::path::Path) -> Cli {
    let home = world.env.root.path().join("home");
    let env = claude_env(&world.mock, &home);
    let bin = claude_bin().expect("claude");
    let mut command = cli_command(&bin, &home, dir, &env);
    command.args(STREAM_JSON_ARGS);
    Cli::spawn("claude", command)
}

fn summary(label: &str, samples: &mut [Sample]) -> (Duration, Duration) {
    let mut first: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    let mut done: Vec<Duration> = samples.iter().map(|s| s.1).collect();
    first.sort();
    done.sort();
    let (f50, d50) = (percentile(&first, 0.5), percentile(&done, 0.5));
    println!(
        "  {label:<28} first text p50 {:>8.2} ms p90 {:>8.2} ms | done p50 {:>8.2} ms p90 {:>8.2} ms ({} turns)",
        ms(f50),
        ms(percentile(&first, 0.9)),
        ms(d50),
        ms(percentile(&done, 0.9)),
        samples.len()
    );
    (f50, d50)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn added(label: &str, direct: (Duration, Duration), daemon: (Duration, Duration)) {
    println!(
        "  added by nexscoped, {label}: first text {:+.2} ms, done {:+.2} ms (p50 through the daemon minus p50 direct)",
        ms(daemon.0) - ms(direct.0),
        ms(daemon.1) - ms(direct.1)
    );
}

/// Runs `turn` for every item on its own thread, `rounds` times, all
/// threads starting each round together; every sample.
fn in_step<T: Send>(
    items: Vec<T>,
    rounds: usize,
    turn: impl Fn(&mut T) -> Sample + Sync,
) -> Vec<Sample> {
    let barrier = Barrier::new(items.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|mut item| {
                let (barrier, turn) = (&barrier, &turn);
                scope.spawn(move || {
                    (0..rounds)
                        .map(|_| {
                            barrier.wait();
                            turn(&mut item)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn compare(
    world: &AgentWorld,
    daemon: i32,
    spawn: &dyn Fn(&std::path::Path) -> Cli,
    rounds: usize,
    concurrent_rounds: usize,
    tag: &str,
) -> Vec<String> {
    let say = "[[mock:say ok]]";
    let dir = world.dir(&format!("{tag}-one"));
    let mut cli = spawn(&dir);
    direct_turn(&mut cli, say);
    let mut direct: Vec<Sample> = (0..rounds).map(|_| direct_turn(&mut cli, say)).collect();
    drop(cli);
    let cwd = dir.display().to_string();
    daemon_turn(world, "one", &cwd, say);
    let cpu = cpu_time(daemon);
    let mut through: Vec<Sample> = (0..rounds)
        .map(|_| daemon_turn(world, "one", &cwd, say))
        .collect();
    println!(
        "  daemon CPU per turn: {:.0} µs",
        (cpu_time(daemon) - cpu).as_secs_f64() * 1e6 / rounds as f64
    );
    let d1 = summary("1 session, direct", &mut direct);
    let t1 = summary("1 session, nexscoped", &mut through);
    added("1 session", d1, t1);

    let cwds: Vec<String> = (0..CONCURRENT)
        .map(|i| world.dir(&format!("{tag}-s{i}")).display().to_string())
        .collect();
    let mut clis: Vec<Cli> = cwds
        .iter()
        .map(|d| spawn(std::path::Path::new(d)))
        .collect();
    for cli in &mut clis {
        direct_turn(cli, say);
    }
    let mut direct = in_step(clis.iter_mut().collect(), concurrent_rounds, |cli| {
        direct_turn(cli, say)
    });
    drop(clis);
    for (i, cwd) in cwds.iter().enumerate() {
        daemon_turn(world, &format!("c{i}"), cwd, say);
    }
    let sessions: Vec<(String, &String)> = cwds
        .iter()
        .enumerate()
        .map(|(i, cwd)| (format!("c{i}"), cwd))
        .collect();
    let mut through = in_step(
        sessions.iter().collect(),
        concurrent_rounds,
        |(name, cwd)| daemon_turn(world, name, cwd, say),
    );
    let d20 = summary("20 sessions, direct", &mut direct);
    let t20 = summary("20 sessions, nexscoped", &mut through);
    added("20 concurrent sessions", d20, t20);
    let mut all = vec![cwd];
    all.extend(cwds);
    all
}

fn main() {
    // What the daemon itself adds, with an agent that answers at once: the
    // figure the 2 ms target is about.
    let echo = nexscope_tests::bin("echo-agent");
    let world = AgentWorld::with_programs(
        "bench-echo",
        "claude",
        Some(echo.clone()),
        None,
        "max_live = 32\n",
    );
    let daemon = world.daemon();
    println!("agent turns with an instant stand-in agent (tests/echo_agent.rs):");
    compare(
        &world,
        daemon.pid(),
        &|dir| {
            let mut command = std::process::Command::new(&echo);
            command.current_dir(dir);
            Cli::spawn("echo-agent", command)
        },
        ECHO_ROUNDS,
        ECHO_CONCURRENT_ROUNDS,
        "echo",
    );
    drop(daemon);

    let Some(world) = AgentWorld::new("bench-agents", "claude", "max_live = 32\n") else {
        println!("the claude part is skipped: claude is not installed");
        return;
    };
    let daemon = world.daemon();
    println!(
        "agent turns with the real claude {} against the mock model:",
        nexscope_tests::agent_clis::CLAUDE_VERSION
    );
    let cwds = compare(
        &world,
        daemon.pid(),
        &|dir| spawn_claude(&world, dir),
        ROUNDS,
        CONCURRENT_ROUNDS,
        "claude",
    );

    // RSS: every process stopped, records kept; then 5 live ones.
    world.call(
        "io.nexscope.Agent.Close",
        json!({"session": "one", "cwd": cwds[0]}),
    );
    for (i, cwd) in cwds[1..].iter().enumerate() {
        world.call(
            "io.nexscope.Agent.Close",
            json!({"session": format!("c{i}"), "cwd": cwd}),
        );
    }
    wait_until(|| children_of(daemon.pid()).is_empty());
    let sessions = world.call("io.nexscope.Agent.Sessions", json!({}));
    let records = sessions["parameters"]["sessions"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    println!(
        "daemon RSS with {records} idle session records and no agent process: {:.1} MiB",
        rss_kib(daemon.pid()) as f64 / 1024.0
    );
    for (i, cwd) in cwds[1..].iter().take(5).enumerate() {
        daemon_turn(&world, &format!("c{i}"), cwd, "[[mock:say ok]]");
    }
    let live = children_of(daemon.pid());
    let agents_rss: u64 = live.iter().map(|pid| rss_kib(*pid)).sum();
    println!(
        "daemon RSS with {} live agent processes: {:.1} MiB (the agents themselves: {:.0} MiB)",
        live.len(),
        rss_kib(daemon.pid()) as f64 / 1024.0,
        agents_rss as f64 / 1024.0
    );
}
