//! The relay tier: several `nexscoped relay --cluster` nodes over NATS with
//! JetStream. Every node takes WebSocket clients for any room; each room
//! has one home node, which runs the single relay's room logic (names,
//! presence, the transfer lock, acks) unchanged; a client connected to
//! another node is piped to the home over NATS (`edge`, `home`).
//!
//! Liveness and homes live in two KV buckets: `nx_nodes` (each node puts
//! its key every `RENEW`) and `nx_homes` (room → home node; the entry's
//! revision is the room's epoch). A node judges the others by the renewals
//! it has seen, never by keys vanishing (NATS 2.9 has no expiry events). A
//! node that cannot renew for `FENCE_AFTER` stops serving: it closes its
//! members with 1012 so they reconnect elsewhere. The others declare it dead
//! after `DEAD_AFTER` and re-home its rooms (epoch + 1) at the next join.
//! Routed messages go to the stream `NX_HIST` (`history`), from which a
//! client that reconnects with `since=<seq>` is given what it missed.

pub mod edge;
pub mod history;
pub mod home;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::Relay;
use crate::shutdown::Shutdown;

/// How often a node renews its liveness key.
pub const RENEW: Duration = Duration::from_secs(2);
/// A node that could not renew for this long stops serving.
pub const FENCE_AFTER: Duration = Duration::from_secs(4);
/// How often a due or failed renewal is tried.
const RETRY: Duration = Duration::from_millis(250);
/// A node not seen renewing for this long is dead to the others.
pub const DEAD_AFTER: Duration = Duration::from_secs(6);
/// How long a NATS request (open, claim) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Messages a subscription (a pipe's end) holds for a slow reader.
const SUBSCRIPTION_CAPACITY: usize = 4096;
/// Bytes of a NATS message kept for our headers and the history's wrapper.
const HEADER_ROOM: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach NATS at {urls}: {message}")]
    Connect { urls: String, message: String },
    #[error("NATS JetStream refused {what}: {message} (is nats-server running with -js?)")]
    JetStream { what: &'static str, message: String },
    #[error("node id {id:?} is not allowed; {allowed}")]
    NodeId { id: String, allowed: String },
}

/// What a node's liveness key holds.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct NodeEntry {
    incarnation: String,
    started: u64,
}

/// What a room's home key holds; its revision is the epoch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HomeEntry {
    pub node: String,
    pub incarnation: String,
}

/// Where a room is served.
#[derive(Debug, Clone, PartialEq)]
pub enum Home {
    /// Here, at this epoch.
    Local(u64),
    /// On that node, at this epoch.
    Remote(String, u64),
}

#[derive(Default)]
pub struct ClusterMetrics {
    pub forwarded: AtomicU64,
    pub rehomes: AtomicU64,
    pub history_appends: AtomicU64,
    pub history_failures: AtomicU64,
    /// The last NATS round trip, in microseconds.
    pub nats_rtt_us: AtomicU64,
}

pub struct Cluster {
    pub node: String,
    pub incarnation: String,
    pub client: async_nats::Client,
    nodes: kv::Store,
    homes: kv::Store,
    pub history: history::History,
    /// When each other node's renewal was last seen, and its incarnation.
    seen: Mutex<HashMap<String, (String, Instant)>>,
    /// When our own renewal last succeeded.
    renewed: Mutex<Instant>,
    /// Since when this node has been connected without a gap: before
    /// `DEAD_AFTER` of it, it has not seen enough to call others dead.
    watching_since: Mutex<Instant>,
    fenced: AtomicBool,
    /// The rooms this node is home of, at the epoch it took each at.
    homed: Mutex<HashMap<String, u64>>,
    pub metrics: ClusterMetrics,
    /// Sessions this node pipes, either way, by the node at the other end.
    pub pipes: home::Pipes,
    relay: Weak<Relay>,
}

/// The room of a key made by `room_key`.
fn key_room(key: &str) -> String {
    let hex = key.strip_prefix('r').unwrap_or_default();
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The KV key and subject token of a room: hex, since room names may hold
/// characters NATS gives meaning to.
pub fn room_key(room: &str) -> String {
    format!("r{}", nexscope_proto::ids::hex(room.as_bytes()))
}

impl Cluster {
    /// Connects to NATS (first, so that the relay's frame limit can be
    /// fitted to NATS's before the relay starts).
    pub async fn connect(urls: &str, node: &str) -> Result<async_nats::Client, ClusterError> {
        nexscope_proto::config::check_node_id(node).map_err(|allowed| ClusterError::NodeId {
            id: node.to_string(),
            allowed,
        })?;
        async_nats::ConnectOptions::new()
            .name(format!("nexscope-relay {node}"))
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .max_reconnects(None)
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis((100 * attempt as u64).min(500))
            })
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .connect(urls)
            .await
            .map_err(|e| ClusterError::Connect {
                urls: urls.to_string(),
                message: e.to_string(),
            })
    }

    /// The largest frame NATS carries here, less room for our headers.
    pub fn max_frame(client: &async_nats::Client) -> usize {
        client.server_info().max_payload.saturating_sub(HEADER_ROOM)
    }

    /// Makes the buckets and the stream if they are missing, and starts
    /// renewing, watching and serving opens.
    pub async fn start(
        client: async_nats::Client,
        node: &str,
        relay: &Arc<Relay>,
        shutdown: Shutdown,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let js = jetstream::new(client.clone());
        let nodes = bucket(&js, "nx_nodes", Duration::from_secs(3600)).await?;
        let homes = bucket(&js, "nx_homes", Duration::ZERO).await?;
        let history = history::History::open(&js).await?;
        let cluster = Arc::new(Cluster {
            node: node.to_string(),
            incarnation: nexscope_proto::ids::random_hex(8),
            client,
            nodes,
            homes,
            history,
            seen: Mutex::new(HashMap::new()),
            renewed: Mutex::new(Instant::now()),
            watching_since: Mutex::new(Instant::now()),
            fenced: AtomicBool::new(false),
            homed: Mutex::new(HashMap::new()),
            metrics: ClusterMetrics::default(),
            pipes: home::Pipes::default(),
            relay: Arc::downgrade(relay),
        });
        cluster.renew().await;
        tokio::spawn(cluster.clone().keep_alive(shutdown.clone()));
        tokio::spawn(cluster.clone().keep_homes(shutdown.clone()));
        tokio::spawn(cluster.clone().watch_nodes(shutdown.clone()));
        tokio::spawn(cluster.clone().reap(shutdown.clone()));
        home::serve_opens(cluster.clone(), shutdown).await?;
        tracing::info!(node, incarnation = %cluster.incarnation, "joined the relay tier");
        Ok(cluster)
    }

    pub fn relay(&self) -> Option<Arc<Relay>> {
        self.relay.upgrade()
    }

    fn lock_seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this node may serve: it renewed its key recently.
    pub fn serving(&self) -> bool {
        let recent = self
            .renewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            < FENCE_AFTER;
        recent && !self.fenced.load(Relaxed)
    }

    /// Whether `node` (at `incarnation`, when given) is alive as far as
    /// this node has seen.
    pub fn alive(&self, node: &str, incarnation: Option<&str>) -> bool {
        if node == self.node {
            return self.serving() && incarnation.is_none_or(|i| i == self.incarnation);
        }
        let judging = self.judging();
        self.lock_seen().get(node).map_or(!judging, |(inc, at)| {
            (!judging || at.elapsed() < DEAD_AFTER) && incarnation.is_none_or(|i| i == inc)
        })
    }

    /// Whether this node has watched the others long enough to call one
    /// dead: after its start, or an outage of its own, it has not.
    fn judging(&self) -> bool {
        self.watching_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            >= DEAD_AFTER
    }

    /// The live nodes, this one included while it serves.
    fn live_nodes(&self) -> Vec<String> {
        let judging = self.judging();
        let mut nodes: Vec<String> = self
            .lock_seen()
            .iter()
            .filter(|(_, (_, at))| !judging || at.elapsed() < DEAD_AFTER)
            .map(|(n, _)| n.clone())
            .collect();
        if self.serving() && !nodes.contains(&self.node) {
            nodes.push(self.node.clone());
        }
        nodes
    }

    /// Renews our key; after `FENCE_AFTER` without success, fences.
    async fn renew(&self) {
        let entry = NodeEntry {
            incarnation: self.incarnation.clone(),
            started: nexscope_proto::time::now_ms(),
        };
        let value = serde_json::to_vec(&entry).unwrap_or_default();
        let started = Instant::now();
        let put = tokio::time::timeout(RENEW, self.nodes.put(&self.node, value.into())).await;
        let mut renewed = self.renewed.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(put, Ok(Ok(_))) {
            self.metrics
                .nats_rtt_us
                .store(started.elapsed().as_micros() as u64, Relaxed);
            // Silent for longer than the others wait (a pause, a cut): they
            // may have taken our rooms, so our members start over.
            let gone = renewed.elapsed() >= DEAD_AFTER;
            *renewed = Instant::now();
            drop(renewed);
            if gone || self.fenced.load(Relaxed) {
                *self
                    .watching_since
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Instant::now();
            }
            if gone && let Some(relay) = self.relay() {
                tracing::warn!(node = %self.node, "this node was silent past the fence: closing its members with 1012");
                relay.fence();
            }
            if self.fenced.swap(false, Relaxed) {
                tracing::warn!(node = %self.node, "NATS is back: serving again");
            }
        } else if renewed.elapsed() >= FENCE_AFTER && !self.fenced.swap(true, Relaxed) {
            drop(renewed);
            tracing::warn!(node = %self.node, "cannot renew the liveness key: no longer serving; closing members with 1012");
            if let Some(relay) = self.relay() {
                relay.fence();
            }
        }
    }

    async fn keep_alive(self: Arc<Self>, shutdown: Shutdown) {
        // Looked at often, renewed every RENEW: a renewal that failed is
        // tried again at once when NATS is back, so a short outage does
        // not grow into a fence.
        let mut tick = tokio::time::interval(RETRY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let due = self.renewed.lock().unwrap_or_else(|p| p.into_inner()).elapsed() >= RENEW;
                    if due {
                        self.renew().await;
                    }
                    // Fenced by the clock, whatever the put is still doing.
                    let silent = self.renewed.lock().unwrap_or_else(|p| p.into_inner()).elapsed() >= FENCE_AFTER;
                    if silent && !self.fenced.swap(true, Relaxed) {
                        tracing::warn!(node = %self.node, "cannot renew the liveness key: no longer serving; closing members with 1012");
                        if let Some(relay) = self.relay() {
                            relay.fence();
                        }
                    }
                }
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Checks this node's rooms against their home keys every `RENEW`.
    async fn keep_homes(self: Arc<Self>, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(RENEW);
        loop {
            tokio::select! {
                _ = tick.tick() => self.verify_homes().await,
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Notes that this node serves `room` at `epoch` (what `verify_homes`
    /// holds it to).
    pub fn note_home(&self, room: &str, epoch: u64) {
        self.homed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(room.to_string(), epoch);
    }

    /// Closes the members of every room whose home key no longer names this
    /// node (another took it while we could not see): one home per room.
    async fn verify_homes(&self) {
        let Some(relay) = self.relay() else { return };
        for room in relay.rooms.all() {
            let read =
                tokio::time::timeout(Duration::from_secs(1), self.homes.entry(room_key(&room.id)))
                    .await;
            let Ok(Ok(entry)) = read else {
                continue; // NATS away: the fence handles that
            };
            let epoch = self
                .homed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&room.id)
                .copied();
            // Ours at the epoch we took it at (A, then B, then A again is
            // a new epoch: members of the first are not of the last).
            let ours = entry.is_some_and(|e| {
                Some(e.revision) == epoch
                    && serde_json::from_slice::<HomeEntry>(&e.value)
                        .is_ok_and(|h| h.node == self.node && h.incarnation == self.incarnation)
            });
            if !ours {
                self.homed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&room.id);
                tracing::warn!(room = %room.id, node = %self.node, "no longer this room's home: closing its members with 1012");
                room.deposed.send_modify(|generation| *generation += 1);
            }
        }
    }

    /// Notes every renewal of the others as it is seen.
    async fn watch_nodes(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            let watch = match self.nodes.watch_with_history(">").await {
                Ok(watch) => watch,
                Err(error) => {
                    tracing::debug!(%error, "cannot watch nx_nodes yet");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                        _ = shutdown.wait() => return,
                    }
                }
            };
            // A new watch has seen nothing yet: nobody is called dead
            // until it has watched a while.
            *self
                .watching_since
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Instant::now();
            let mut watch = Box::pin(watch);
            // The newest entry time seen, by the NATS server's clock: old
            // entries replayed at the start of a watch are judged against
            // it, never against this machine's clock (which may be off).
            let mut newest: Option<time::OffsetDateTime> = None;
            loop {
                let entry = tokio::select! {
                    entry = watch.next() => entry,
                    _ = shutdown.wait() => return,
                };
                let Some(Ok(entry)) = entry else { break };
                if entry.operation != kv::Operation::Put {
                    continue;
                }
                let now = newest.map_or(entry.created, |n| n.max(entry.created));
                newest = Some(now);
                if entry.key == self.node {
                    continue;
                }
                // A replayed entry much older than the newest one is not a
                // renewal seen now.
                if now - entry.created > time::Duration::seconds(DEAD_AFTER.as_secs() as i64) {
                    continue;
                }
                if let Ok(node) = serde_json::from_slice::<NodeEntry>(&entry.value) {
                    self.lock_seen()
                        .insert(entry.key.clone(), (node.incarnation, Instant::now()));
                }
            }
        }
    }

    /// Closes the pipes whose other end is on a node declared dead.
    async fn reap(self: Arc<Self>, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tick.tick() => self.pipes.close_dead(&self),
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Where `room` is served, claiming it here when this node is the
    /// rendezvous winner and the recorded home is gone.
    pub async fn home_of(&self, room: &str) -> Option<Home> {
        let key = room_key(room);
        let entry = self.homes.entry(key.clone()).await.ok()?;
        if let Some(entry) = &entry
            && entry.operation == kv::Operation::Put
            && let Ok(home) = serde_json::from_slice::<HomeEntry>(&entry.value)
            && self.alive(&home.node, Some(&home.incarnation))
        {
            if home.node == self.node {
                self.note_home(room, entry.revision);
                return Some(Home::Local(entry.revision));
            }
            return Some(Home::Remote(home.node, entry.revision));
        }
        let winner = rendezvous(&key, &self.live_nodes())?;
        if winner != self.node {
            // The winner claims it when our open reaches it.
            return Some(Home::Remote(winner, 0));
        }
        match self.claim(&key, entry.map(|e| e.revision)).await {
            Some(epoch) => {
                self.note_home(room, epoch);
                Some(Home::Local(epoch))
            }
            // Another claim won the race: it is the home.
            None => self.recorded_home(&key).await,
        }
    }

    /// The home the room's key names, if that node is alive.
    async fn recorded_home(&self, key: &str) -> Option<Home> {
        let entry = self.homes.entry(key.to_string()).await.ok()??;
        let home = serde_json::from_slice::<HomeEntry>(&entry.value).ok()?;
        if !self.alive(&home.node, Some(&home.incarnation)) {
            return None;
        }
        if home.node == self.node {
            self.note_home(&key_room(key), entry.revision);
            return Some(Home::Local(entry.revision));
        }
        Some(Home::Remote(home.node, entry.revision))
    }

    /// Takes the room's home key: created if absent, else updated from the
    /// revision we saw (exactly one claim wins); the new epoch.
    pub async fn claim(&self, key: &str, seen: Option<u64>) -> Option<u64> {
        if !self.serving() {
            return None;
        }
        let value: bytes::Bytes = serde_json::to_vec(&HomeEntry {
            node: self.node.clone(),
            incarnation: self.incarnation.clone(),
        })
        .unwrap_or_default()
        .into();
        let claimed = match seen {
            None => self.homes.create(key, value).await.ok(),
            Some(revision) => self.homes.update(key, value, revision).await.ok(),
        };
        if claimed.is_some() && seen.is_some() {
            self.metrics.rehomes.fetch_add(1, Relaxed);
            tracing::info!(room = key, node = %self.node, "re-homed a room here");
        }
        claimed
    }

    /// Whether this node is the home of `room` now (for an open from an
    /// edge): the epoch, claiming the room if nobody alive holds it.
    pub async fn accept_home(&self, room: &str) -> Result<u64, Option<String>> {
        match self.home_of(room).await {
            Some(Home::Local(epoch)) => Ok(epoch),
            Some(Home::Remote(node, _)) if node != self.node => Err(Some(node)),
            _ => {
                // The edge chose us; take the room if the key allows.
                let key = room_key(room);
                let seen = self.homes.entry(key.clone()).await.ok().flatten();
                let dead = seen.as_ref().is_none_or(|e| {
                    serde_json::from_slice::<HomeEntry>(&e.value)
                        .map(|h| !self.alive(&h.node, Some(&h.incarnation)))
                        .unwrap_or(true)
                });
                if !dead {
                    return Err(None);
                }
                match self.claim(&key, seen.map(|e| e.revision)).await {
                    Some(epoch) => {
                        self.note_home(room, epoch);
                        Ok(epoch)
                    }
                    None => match self.recorded_home(&key).await {
                        Some(Home::Local(epoch)) => Ok(epoch),
                        Some(Home::Remote(node, _)) => Err(Some(node)),
                        None => Err(None),
                    },
                }
            }
        }
    }
}

impl Cluster {
    /// The tier's part of `/metrics`.
    pub fn render_metrics(&self, homed: usize) -> String {
        let m = &self.metrics;
        let live = self.live_nodes().len();
        format!(
            "# HELP nexscope_cluster_rooms_homed Rooms this node is home of.\n# TYPE nexscope_cluster_rooms_homed gauge\nnexscope_cluster_rooms_homed {homed}\n\
# HELP nexscope_cluster_pipes Members piped between this node and others.\n# TYPE nexscope_cluster_pipes gauge\nnexscope_cluster_pipes {}\n\
# HELP nexscope_cluster_nodes_live Nodes this node sees alive, itself included.\n# TYPE nexscope_cluster_nodes_live gauge\nnexscope_cluster_nodes_live {live}\n\
# HELP nexscope_cluster_serving 1 while this node renews its liveness and serves.\n# TYPE nexscope_cluster_serving gauge\nnexscope_cluster_serving {}\n\
# HELP nexscope_cluster_nats_rtt_seconds The last liveness renewal's round trip.\n# TYPE nexscope_cluster_nats_rtt_seconds gauge\nnexscope_cluster_nats_rtt_seconds {:.6}\n\
# HELP nexscope_cluster_forwarded_total Frames passed between a home and an edge.\n# TYPE nexscope_cluster_forwarded_total counter\nnexscope_cluster_forwarded_total {}\n\
# HELP nexscope_cluster_rehomes_total Rooms this node took over from a dead home.\n# TYPE nexscope_cluster_rehomes_total counter\nnexscope_cluster_rehomes_total {}\n\
# HELP nexscope_cluster_history_appends_total Messages stored in the history.\n# TYPE nexscope_cluster_history_appends_total counter\nnexscope_cluster_history_appends_total {}\n\
# HELP nexscope_cluster_history_failures_total Messages the history did not take (delivered live anyway).\n# TYPE nexscope_cluster_history_failures_total counter\nnexscope_cluster_history_failures_total {}\n",
            self.pipes.count(),
            u8::from(self.serving()),
            m.nats_rtt_us.load(Relaxed) as f64 / 1e6,
            m.forwarded.load(Relaxed),
            m.rehomes.load(Relaxed),
            m.history_appends.load(Relaxed),
            m.history_failures.load(Relaxed),
        )
    }
}

/// A KV bucket of one value per key, made as the stream KV buckets are:
/// the client's own bucket creation asks the server for account fields
/// NATS 2.9 does not send.
async fn bucket(
    js: &jetstream::Context,
    name: &'static str,
    max_age: Duration,
) -> Result<kv::Store, ClusterError> {
    let failed = |e: String| ClusterError::JetStream {
        what: name,
        message: e,
    };
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        discard: jetstream::stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| failed(e.to_string()))?;
    js.get_key_value(name)
        .await
        .map_err(|e| failed(e.to_string()))
}

/// The node with the highest hash of (room, node): every node computes the
/// same winner from the same live set, and a node's death moves only its
/// own rooms.
pub fn rendezvous(key: &str, nodes: &[String]) -> Option<String> {
    nodes
        .iter()
        .max_by_key(|node| {
            let digest = nexscope_proto::ids::sha256_hex(format!("{key}/{node}").as_bytes());
            digest[..16].to_string()
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_moves_only_the_dead_nodes_rooms() {
        let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let rooms: Vec<String> = (0..200).map(|i| room_key(&format!("room{i}"))).collect();
        let before: Vec<String> = rooms.iter().map(|r| rendezvous(r, &all).unwrap()).collect();
        for node in ["a", "b", "c"] {
            assert!(
                before.iter().filter(|n| *n == node).count() > 30,
                "spread over nodes"
            );
        }
        let without_b: Vec<String> = all.iter().filter(|n| *n != "b").cloned().collect();
        for (room, home) in rooms.iter().zip(&before) {
            let after = rendezvous(room, &without_b).unwrap();
            if home != "b" {
                assert_eq!(&after, home, "a room of a live node stays");
            }
        }
    }

    #[test]
    fn room_keys_are_safe_subject_tokens() {
        assert_eq!(room_key(""), "r");
        assert_eq!(room_key(".a"), "r2e61");
    }
}
