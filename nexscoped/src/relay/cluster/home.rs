//! The home's side of a piped member: an edge asks on `nx.node.<id>.open`;
//! the home takes the room (or names the node that has it), then runs the
//! single relay's own connection code for the member over an in-memory
//! WebSocket, whose other end is bridged to the edge over NATS: frames up
//! on `nx.s.<sid>.up`, down on `nx.s.<sid>.down` with the room's epoch.
//! Also the registry of every pipe a node holds, so that the death of the
//! node at the other end (or our own fencing) closes them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use async_nats::Subscriber;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::{Cluster, ClusterError};
use crate::relay::{connection, http};
use crate::shutdown::Shutdown;

/// Bytes in flight inside one home pipe.
const PIPE_BUFFER: usize = 256 * 1024;
/// Close code for "the relay tier moved this room: reconnect".
pub const REHOME: u16 = 1012;
/// Each end of a pipe says it is there this often (a `keep` frame), and
/// ends the pipe after `PIPE_SILENCE` without a word from the other: a
/// lost close must not leave a member holding its name.
/// (Every idle member costs a NATS message each way per period: 5 s keeps
/// that small beside the traffic, and a ghost lasts 16 s at most.)
pub const PIPE_KEEP: std::time::Duration = std::time::Duration::from_secs(5);
pub const PIPE_SILENCE: std::time::Duration = std::time::Duration::from_secs(16);
/// Opens handled at once; more wait their turn.
const OPENS: usize = 256;
/// How long one publish may wait for the client's queue.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What an edge asks the home for.
#[derive(Serialize, Deserialize, Debug)]
pub struct Open {
    pub sid: String,
    pub edge: String,
    pub edge_incarnation: String,
    pub room: String,
    /// The client's query, token removed (the edge checked it).
    pub query: Vec<(String, String)>,
    pub peer: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub enum OpenReply {
    Ok { epoch: u64, incarnation: String },
    Redirect { node: String },
    Unavailable,
}

/// One frame on a pipe, as NATS headers say it: text, binary or close.
pub fn kind_of(message: &async_nats::Message) -> Option<&str> {
    message.headers.as_ref()?.get("Nx-Kind").map(|v| v.as_str())
}

pub fn epoch_of(message: &async_nats::Message) -> Option<u64> {
    message
        .headers
        .as_ref()?
        .get("Nx-Epoch")?
        .as_str()
        .parse()
        .ok()
}

/// Where a frame down a pipe stands: the room's epoch at the home, and its
/// place in the pipe (the edge ends a pipe with a gap: core NATS may lose a
/// message, and a lost frame must not go unnoticed).
#[derive(Clone, Copy)]
pub struct Stamp {
    pub epoch: u64,
    pub seq: u64,
}

pub fn seq_of(message: &async_nats::Message) -> Option<u64> {
    message
        .headers
        .as_ref()?
        .get("Nx-Seq")?
        .as_str()
        .parse()
        .ok()
}

/// Publishes one pipe frame (down ones stamped).
pub async fn publish(
    cluster: &Cluster,
    subject: &str,
    kind: &str,
    stamp: Option<Stamp>,
    payload: Bytes,
) -> bool {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nx-Kind", kind);
    if let Some(stamp) = stamp {
        headers.insert("Nx-Epoch", stamp.epoch.to_string().as_str());
        headers.insert("Nx-Seq", stamp.seq.to_string().as_str());
    }
    let publish = cluster
        .client
        .publish_with_headers(subject.to_string(), headers, payload);
    matches!(
        tokio::time::timeout(PUBLISH_TIMEOUT, publish).await,
        Ok(Ok(()))
    )
}

/// A close as it travels: `code reason`.
pub fn close_payload(code: u16, reason: &str) -> Bytes {
    Bytes::from(format!("{code} {reason}"))
}

pub fn parse_close(payload: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(payload);
    let (code, reason) = text.split_once(' ').unwrap_or((&text, ""));
    (code.parse().unwrap_or(REHOME), reason.to_string())
}

/// Every pipe of this node, by session id, with the node at its other end.
#[derive(Default)]
pub struct Pipes {
    map: Mutex<HashMap<String, Pipe>>,
}

struct Pipe {
    node: String,
    incarnation: String,
    close: Option<oneshot::Sender<u16>>,
}

impl Pipes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pipe>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a pipe to `node`; the receiver fires with a close code
    /// when it must end.
    pub fn add(&self, sid: &str, node: &str, incarnation: &str) -> oneshot::Receiver<u16> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            sid.to_string(),
            Pipe {
                node: node.to_string(),
                incarnation: incarnation.to_string(),
                close: Some(tx),
            },
        );
        rx
    }

    pub fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Ends the pipes whose other node is dead.
    pub fn close_dead(&self, cluster: &Cluster) {
        for pipe in self.lock().values_mut() {
            if !cluster.alive(&pipe.node, Some(&pipe.incarnation))
                && let Some(close) = pipe.close.take()
            {
                let _ = close.send(REHOME);
            }
        }
    }

    /// Ends every pipe (this node stops serving).
    pub fn close_all(&self) {
        for pipe in self.lock().values_mut() {
            if let Some(close) = pipe.close.take() {
                let _ = close.send(REHOME);
            }
        }
    }
}

/// Answers opens for this node until shutdown.
pub async fn serve_opens(cluster: Arc<Cluster>, shutdown: Shutdown) -> Result<(), ClusterError> {
    let subject = format!("nx.node.{}.open", cluster.node);
    let mut opens =
        cluster
            .client
            .subscribe(subject)
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "a subscription",
                message: e.to_string(),
            })?;
    let slots = Arc::new(tokio::sync::Semaphore::new(OPENS));
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                message = opens.next() => message,
                _ = shutdown.wait() => return,
            };
            let Some(message) = message else { return };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let cluster = cluster.clone();
            tokio::spawn(async move {
                // The slot covers the open, not the member's life.
                open(cluster, message, slot).await;
            });
        }
    });
    Ok(())
}

async fn open(
    cluster: Arc<Cluster>,
    message: async_nats::Message,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let Some(reply_to) = message.reply.clone() else {
        return;
    };
    let answer = |reply: OpenReply| {
        let client = cluster.client.clone();
        let reply_to = reply_to.clone();
        async move {
            let body = serde_json::to_vec(&reply).unwrap_or_default();
            let _ = client.publish(reply_to, body.into()).await;
        }
    };
    let Ok(request) = serde_json::from_slice::<Open>(&message.payload) else {
        return answer(OpenReply::Unavailable).await;
    };
    let epoch = match cluster.accept_home(&request.room).await {
        Ok(epoch) => epoch,
        Err(Some(node)) => return answer(OpenReply::Redirect { node }).await,
        Err(None) => return answer(OpenReply::Unavailable).await,
    };
    // Subscribed before the answer: the edge sends as soon as it has it.
    let up = match cluster
        .client
        .subscribe(format!("nx.s.{}.up", request.sid))
        .await
    {
        Ok(up) => up,
        Err(_) => return answer(OpenReply::Unavailable).await,
    };
    let closed = cluster
        .pipes
        .add(&request.sid, &request.edge, &request.edge_incarnation);
    answer(OpenReply::Ok {
        epoch,
        incarnation: cluster.incarnation.clone(),
    })
    .await;
    drop(slot);
    serve_member(&cluster, request, epoch, up, closed).await;
}

/// Runs the member's connection here, bridged to its edge.
async fn serve_member(
    cluster: &Arc<Cluster>,
    open: Open,
    epoch: u64,
    up: Subscriber,
    closed: oneshot::Receiver<u16>,
) {
    let Some(relay) = cluster.relay() else { return };
    let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
    let peer: SocketAddr = open
        .peer
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let query = http::Query::from_pairs(open.query);
    let session = connection::serve_piped(relay.clone(), theirs, query, peer);
    let ws = WebSocketStream::from_raw_socket(
        ours,
        Role::Client,
        Some(connection::ws_config(usize::MAX >> 1)),
    )
    .await;
    let down = format!("nx.s.{}.down", open.sid);
    tokio::join!(session, bridge(cluster, ws, &down, epoch, up, closed));
    cluster.pipes.remove(&open.sid);
}

/// Frames between the in-memory socket and the edge, until either side
/// closes (dropping the socket ends the member's connection).
async fn bridge(
    cluster: &Cluster,
    mut ws: WebSocketStream<tokio::io::DuplexStream>,
    down: &str,
    epoch: u64,
    mut up: Subscriber,
    mut closed: oneshot::Receiver<u16>,
) {
    let mut keep = tokio::time::interval(PIPE_KEEP);
    let mut heard = tokio::time::Instant::now();
    let mut next = 0u64;
    let mut stamp = move || {
        next += 1;
        Some(Stamp {
            epoch,
            seq: next - 1,
        })
    };
    loop {
        tokio::select! {
            _ = keep.tick() => {
                if heard.elapsed() > PIPE_SILENCE {
                    publish(cluster, down, "close", stamp(), close_payload(REHOME, "rehome")).await;
                    return; // the edge is gone: the member leaves
                }
                publish(cluster, down, "keep", stamp(), Bytes::new()).await;
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    cluster.metrics.forwarded.fetch_add(1, Relaxed);
                    publish(cluster, down, "text", stamp(), Bytes::from(text)).await;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    cluster.metrics.forwarded.fetch_add(1, Relaxed);
                    publish(cluster, down, "binary", stamp(), bytes).await;
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1000, String::new()));
                    publish(cluster, down, "close", stamp(), close_payload(code, &reason)).await;
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    publish(cluster, down, "close", stamp(), close_payload(1011, "relay_error")).await;
                    return;
                }
            },
            message = up.next() => {
                let Some(message) = message else { return };
                heard = tokio::time::Instant::now();
                let sent = match kind_of(&message) {
                    Some("text") => match String::from_utf8(message.payload.to_vec()) {
                        Ok(text) => ws.send(Message::text(text)).await.is_ok(),
                        Err(_) => true,
                    },
                    Some("binary") => ws.send(Message::Binary(message.payload.clone())).await.is_ok(),
                    Some("close") => {
                        let _ = ws.close(Some(CloseFrame { code: CloseCode::Away, reason: "".into() })).await;
                        return;
                    }
                    _ => true,
                };
                if !sent {
                    return;
                }
            }
            code = &mut closed => {
                let code = code.unwrap_or(REHOME);
                publish(cluster, down, "close", stamp(), close_payload(code, "rehome")).await;
                return;
            }
        }
    }
}
