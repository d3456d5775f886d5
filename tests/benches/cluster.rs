//! The relay tier's figures, against the single relay in the same run:
//!
//!   cargo build --release --workspace && cargo bench -p nexscope-tests --bench cluster
//!
//! 1. CPU per delivered message: 2,000 loopback clients in 40 rooms of 50
//!    (spread over the three nodes), 200 of them sending mentions closed-loop
//!    for 5 s; the nodes' CPU (and nats-server's, apart) over the messages
//!    their recipients got.
//! 2. Mention round trip through a node that is not the room's home (p50,
//!    p99 of 1,000), and the same on the single relay.
//! 3. Failover: kill -9 of a room's home while a sender (retrying what was
//!    not acked) and a receiver (reconnecting with `since`) talk through two
//!    other nodes: the time to the first message delivered again, and the
//!    messages lost.
//!
//! Prints figures; asserts nothing (the machine is shared and noisy).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nexscope_tests::cluster::{Nats, home, nats_server};
use nexscope_tests::relay::{Relay, TOKEN};
use nexscope_tests::{cpu_time, percentile, rss_kib};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const ROOMS: usize = 40;
const PER_ROOM: usize = 50;
const SENDERS_PER_ROOM: usize = 5;
const LOAD: Duration = Duration::from_secs(5);
const ROUND_TRIPS: usize = 1000;

async fn connect(port: u16, name: &str, room: &str, extra: &str) -> Ws {
    let url = format!(
        "ws://127.0.0.1:{port}/ws?name={name}&token={TOKEN}&v=1&presence=delta&room={room}{extra}"
    );
    loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((mut ws, _)) => match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().contains("\"presence\"") => return ws,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn frame(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn mention(from: &str, to: &str, id: &str) -> Message {
    Message::text(json!({"type": "msg", "from": from, "to": [to], "text": "load", "msgId": id, "threadId": "t"}).to_string())
}

/// The load (figure 1): clients over `ports` (round robin), senders
/// closed-loop; the messages delivered.
async fn load(ports: &[u16], pids: &[i32]) -> (u64, u64) {
    let rss = || pids.iter().map(|p| rss_kib(*p)).sum::<u64>();
    let idle = rss();
    let delivered = Arc::new(AtomicU64::new(0));
    let mut joins = Vec::new();
    for room in 0..ROOMS {
        for member in 0..PER_ROOM {
            let port = ports[(room * PER_ROOM + member) % ports.len()];
            joins.push(tokio::spawn(async move {
                (
                    room,
                    member,
                    connect(port, &format!("m{member}"), &format!("load{room}"), "").await,
                )
            }));
        }
    }
    let mut tasks = Vec::new();
    let deadline = Instant::now() + LOAD + Duration::from_secs(30);
    let mut clients = Vec::new();
    for join in joins {
        clients.push(join.await.expect("join"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let joined = rss().saturating_sub(idle);
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    for (room, member, ws) in clients {
        let delivered = delivered.clone();
        tasks.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let sender = member < SENDERS_PER_ROOM;
            tokio::time::sleep_until(start).await;
            let end = Instant::now() + LOAD;
            let mut n = 0u64;
            if sender {
                sink.send(mention(
                    &format!("m{member}"),
                    &format!("m{}", (member + 1 + n as usize) % PER_ROOM),
                    &format!("r{room}m{member}n{n}"),
                ))
                .await
                .ok();
            }
            while Instant::now() < deadline {
                let Ok(Some(Ok(Message::Text(text)))) =
                    tokio::time::timeout(Duration::from_millis(200), stream.next()).await
                else {
                    if Instant::now() > end + Duration::from_secs(2) {
                        break;
                    }
                    continue;
                };
                let f = frame(text.as_str());
                if f["type"] == "msg" {
                    delivered.fetch_add(1, Ordering::Relaxed);
                } else if f["type"] == "ack" && sender && Instant::now() < end {
                    n += 1;
                    let to = format!("m{}", (member + 1 + n as usize % (PER_ROOM - 1)) % PER_ROOM);
                    let to = if to == format!("m{member}") {
                        format!("m{}", (member + 1) % PER_ROOM)
                    } else {
                        to
                    };
                    sink.send(mention(
                        &format!("m{member}"),
                        &to,
                        &format!("r{room}m{member}n{n}"),
                    ))
                    .await
                    .ok();
                }
            }
            let _ = sink.close().await;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    (delivered.load(Ordering::Relaxed), joined)
}

/// Round trips (figure 2): alice on `a`, bob on `b`; alice mentions bob,
/// bob answers at once.
async fn round_trips(a: u16, b: u16, room: &str) -> Vec<Duration> {
    let mut alice = connect(a, "alice", room, "").await;
    let mut bob = connect(b, "bob", room, "").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let echo = tokio::spawn(async move {
        while let Some(Ok(Message::Text(text))) = bob.next().await {
            let f = frame(text.as_str());
            if f["type"] == "msg" {
                let id = format!("re-{}", f["msgId"].as_str().unwrap_or_default());
                if bob.send(mention("bob", "alice", &id)).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut rtts = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS + 50 {
        let started = Instant::now();
        alice
            .send(mention("alice", "bob", &format!("q{i}")))
            .await
            .ok();
        while let Some(Ok(Message::Text(text))) = alice.next().await {
            if frame(text.as_str())["type"] == "msg" {
                break;
            }
        }
        if i >= 50 {
            rtts.push(started.elapsed());
        }
    }
    echo.abort();
    rtts.sort();
    rtts
}

/// Failover (figure 3), kill -9 of the home mid-conversation: the time to
/// the first message delivered after the kill, messages sent, and lost.
async fn failover(nodes: &mut [Relay], room: &str) -> (Duration, usize, usize) {
    let room = room.to_string();
    let h = home(nodes);
    let others: Vec<usize> = (0..nodes.len()).filter(|i| *i != h).collect();
    let (a, b) = (nodes[others[0]].port, nodes[others[1]].port);
    let received = Arc::new(std::sync::Mutex::new((
        HashSet::<String>::new(),
        None::<Instant>,
    )));
    // The index of the first message sent after the kill.
    let after_kill = Arc::new(AtomicU64::new(u64::MAX));
    let next = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (received, after_kill, room) = (received.clone(), after_kill.clone(), room.clone());
        tokio::spawn(async move {
            let mut since = "now".to_string();
            loop {
                let mut ws = connect(
                    b,
                    "receiver",
                    &format!("{room}x"),
                    &format!("&since={since}"),
                )
                .await;
                while let Some(Ok(Message::Text(text))) = ws.next().await {
                    let f = frame(text.as_str());
                    if f["type"] != "msg" {
                        continue;
                    }
                    if let Some(seq) = f["seq"].as_u64() {
                        since = seq.to_string();
                    }
                    let id = f["msgId"].as_str().unwrap_or_default().to_string();
                    let index: u64 = id.trim_start_matches('f').parse().unwrap_or(0);
                    let mut got = received.lock().unwrap();
                    got.0.insert(id);
                    if got.1.is_none() && index >= after_kill.load(Ordering::SeqCst) {
                        got.1 = Some(Instant::now());
                    }
                }
            }
        })
    };
    let counter = next.clone();
    let sender = tokio::spawn(async move {
        let mut ws = connect(a, "sender", &format!("{room}x"), "").await;
        let mut sent = 0usize;
        let stop = Instant::now() + Duration::from_secs(20);
        while Instant::now() < stop {
            counter.store(sent as u64, Ordering::SeqCst);
            let id = format!("f{sent}");
            // Until acked (delivered, or offline and kept for the
            // receiver's catch-up): a retry after a reconnect resends the
            // same msgId.
            loop {
                if ws.send(mention("sender", "receiver", &id)).await.is_ok() {
                    let acked = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(Ok(Message::Text(text))) = ws.next().await {
                            let f = frame(text.as_str());
                            if f["type"] == "ack" {
                                return true;
                            }
                        }
                        false
                    })
                    .await;
                    if matches!(acked, Ok(true)) {
                        break;
                    }
                }
                ws = connect(a, "sender", &format!("{room}x"), "").await;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sent
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The room's home is where "<room>x" is homed: find it by the pipes.
    let h = home(nodes);
    after_kill.store(next.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
    let killed = Instant::now();
    nodes[h].stop();
    let sent = sender.await.unwrap_or(0);
    // Time for a receiver in the middle of a reconnect to catch up.
    tokio::time::sleep(Duration::from_secs(10)).await;
    receiver.abort();
    let got = received.lock().unwrap();
    let lost = (0..sent)
        .filter(|i| !got.0.contains(&format!("f{i}")))
        .count();
    let first = got.1.map(|at| at - killed).unwrap_or(Duration::MAX);
    (first, sent, lost)
}

fn main() {
    let Some(program) = nats_server() else { return };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;

    // The single relay.
    let single = Relay::start(&["--max-connections", "100000", "--max-per-address", "0"]);
    let before = cpu_time(single.pid());
    let (single_delivered, single_rss) = runtime.block_on(load(&[single.port], &[single.pid()]));
    let single_cpu = cpu_time(single.pid()) - before;
    let single_rtt = runtime.block_on(round_trips(single.port, single.port, "rtt"));

    // The tier.
    let nats = Nats::start(program);
    let mut nodes: Vec<Relay> = (1..=3)
        .map(|i| {
            Relay::start_with(
                &[
                    "--cluster",
                    &nats.url(),
                    "--node-id",
                    &format!("n{i}"),
                    "--max-connections",
                    "100000",
                    "--max-per-address",
                    "0",
                ],
                &[("NEXSCOPE_TOKEN", TOKEN)],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let pids: Vec<i32> = nodes.iter().map(|n| n.pid()).collect();
    let nats_pid = nats.pid().unwrap_or(0);
    let cpu = |pids: &[i32]| pids.iter().map(|p| cpu_time(*p)).sum::<Duration>();
    let (before, nats_before) = (cpu(&pids), cpu_time(nats_pid));
    let (tier_delivered, tier_rss) = runtime.block_on(load(&ports, &pids));
    let (tier_cpu, nats_cpu) = (cpu(&pids) - before, cpu_time(nats_pid) - nats_before);
    // Round trips with both ends on nodes that are not the room's home.
    let probe = runtime.block_on(connect(ports[0], "probe", "rtt", ""));
    let h = home(&nodes);
    let edges: Vec<u16> = (0..3).filter(|i| *i != h).map(|i| ports[i]).collect();
    let tier_rtt = runtime.block_on(round_trips(edges[0], edges[1], "rtt"));
    drop(probe);
    // Failover, in a room of its own.
    std::thread::sleep(Duration::from_secs(1)); // the load's rooms are gone
    let (first, sent, lost) = runtime.block_on(async {
        let _probe = connect(ports[0], "probe", "failx", "").await;
        failover(&mut nodes, "fail").await
    });

    let per = |cpu: Duration, n: u64| cpu.as_secs_f64() * 1e6 / n.max(1) as f64;
    println!("| figure | single relay | relay tier (3 nodes) |\n|---|---|---|");
    println!(
        "| messages delivered in {}s ({} clients, {} senders) | {single_delivered} | {tier_delivered} |",
        LOAD.as_secs(),
        ROOMS * PER_ROOM,
        ROOMS * SENDERS_PER_ROOM
    );
    println!(
        "| relay CPU per delivered message (all nodes) | {:.1} µs | {:.1} µs ({:.2}×) |",
        per(single_cpu, single_delivered),
        per(tier_cpu, tier_delivered),
        per(tier_cpu, tier_delivered) / per(single_cpu, single_delivered)
    );
    println!(
        "| nats-server CPU per delivered message | | {:.1} µs |",
        per(nats_cpu, tier_delivered)
    );
    let members = (ROOMS * PER_ROOM) as f64;
    println!(
        "| relay memory per member (RSS growth over all nodes / {} members) | {:.1} KiB | {:.1} KiB |",
        ROOMS * PER_ROOM,
        single_rss as f64 / members,
        tier_rss as f64 / members
    );
    println!(
        "| mention round trip p50 / p99 ({ROUND_TRIPS}; tier: both ends on non-home nodes) | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
        ms(percentile(&single_rtt, 0.5)),
        ms(percentile(&single_rtt, 0.99)),
        ms(percentile(&tier_rtt, 0.5)),
        ms(percentile(&tier_rtt, 0.99))
    );
    println!(
        "| failover: kill -9 of the home → first message delivered again | | {:.1} s |",
        first.as_secs_f64()
    );
    println!(
        "| failover: messages lost (sender retries, receiver catches up), of {sent} | | {lost} |"
    );
}
