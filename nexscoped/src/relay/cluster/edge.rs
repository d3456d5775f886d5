//! The edge's side of a piped member: a client connected here for a room
//! homed elsewhere. Its frames go up to the home as they are, the home's
//! come down and are written to it; frames from an older epoch of the room
//! are dropped. The client is closed with 1012 (reconnect) when the home
//! node dies, this node stops serving, or the home moves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::home::{self, Open, OpenReply, REHOME};
use super::{Cluster, REQUEST_TIMEOUT};
use crate::relay::Relay;
use crate::relay::connection::{self, Ws};
use crate::relay::frame::close;
use crate::websocket::close_with;

/// Why an edge could not open a pipe.
enum Refused {
    /// Nobody can be the room's home now (NATS away, nodes fenced).
    Unavailable,
}

/// Pipes `ws` to the room's home on `node` until either side ends; the
/// close code we sent, if we closed.
pub async fn pipe<S>(
    relay: &Arc<Relay>,
    cluster: &Arc<Cluster>,
    ws: &mut Ws<S>,
    room: &str,
    query: Vec<(String, String)>,
    peer: SocketAddr,
    node: String,
) -> Option<u16>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let sid = nexscope_proto::ids::random_hex(12);
    let Ok(mut down) = cluster.client.subscribe(format!("nx.s.{sid}.down")).await else {
        close_with(ws, close::TRY_AGAIN_LATER, "relay_tier_unavailable").await;
        return Some(close::TRY_AGAIN_LATER);
    };
    let open = Open {
        sid: sid.clone(),
        edge: cluster.node.clone(),
        edge_incarnation: cluster.incarnation.clone(),
        room: room.to_string(),
        query,
        peer: peer.to_string(),
    };
    let up = format!("nx.s.{sid}.up");
    // Subscribed before the ask: a fence during it is not missed.
    let mut fence = relay.fence.subscribe();
    let (home, epoch, incarnation) = match ask(cluster, &open, node).await {
        Ok(opened) => opened,
        Err(Refused::Unavailable) => {
            // The home may have taken the member all the same (its answer
            // lost): tell it to let go.
            home::publish(cluster, &up, "close", None, Bytes::new()).await;
            close_with(ws, close::TRY_AGAIN_LATER, "relay_tier_unavailable").await;
            return Some(close::TRY_AGAIN_LATER);
        }
    };
    let mut closed = cluster.pipes.add(&sid, &home, &incarnation);
    if fence.has_changed().unwrap_or(true) {
        cluster.pipes.remove(&sid);
        home::publish(cluster, &up, "close", None, Bytes::new()).await;
        close_with(ws, REHOME, "rehome").await;
        return Some(REHOME);
    }
    relay.metrics.members.fetch_add(1, Relaxed);
    let period = relay.settings.heartbeat;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
    let mut missed_pongs = 0u32;
    let mut keep = tokio::time::interval(home::PIPE_KEEP);
    let mut heard = Instant::now();
    let mut expected = 0u64;
    let ending = loop {
        tokio::select! {
            biased;
            _ = relay.shutdown.wait() => {
                home::publish(cluster, &up, "close", None, Bytes::new()).await;
                close_with(ws, close::GOING_AWAY, "relay_shutdown").await;
                break Some(close::GOING_AWAY);
            }
            _ = fence.changed() => {
                close_with(ws, REHOME, "rehome").await;
                break Some(REHOME);
            }
            code = &mut closed => {
                home::publish(cluster, &up, "close", None, Bytes::new()).await;
                let code = code.unwrap_or(REHOME);
                close_with(ws, code, "rehome").await;
                break Some(code);
            }
            _ = keep.tick() => {
                if heard.elapsed() > home::PIPE_SILENCE {
                    // The home went quiet (its close lost, or it is gone).
                    home::publish(cluster, &up, "close", None, Bytes::new()).await;
                    close_with(ws, REHOME, "rehome").await;
                    break Some(REHOME);
                }
                home::publish(cluster, &up, "keep", None, Bytes::new()).await;
            }
            message = down.next() => {
                let Some(message) = message else {
                    close_with(ws, REHOME, "rehome").await;
                    break Some(REHOME);
                };
                if home::epoch_of(&message) != Some(epoch) {
                    continue; // not from the home this pipe was opened with
                }
                heard = Instant::now();
                // A frame lost on the way (NATS is at most once): the client
                // starts over, and asks for what it missed with since.
                if home::seq_of(&message) != Some(expected) {
                    home::publish(cluster, &up, "close", None, Bytes::new()).await;
                    close_with(ws, REHOME, "rehome").await;
                    break Some(REHOME);
                }
                expected += 1;
                let frame = match home::kind_of(&message) {
                    Some("text") => match String::from_utf8(message.payload.to_vec()) {
                        Ok(text) => Message::text(text),
                        Err(_) => continue,
                    },
                    Some("binary") => Message::Binary(message.payload.clone()),
                    Some("close") => {
                        let (code, reason) = home::parse_close(&message.payload);
                        close_with(ws, code, reason).await;
                        break Some(code);
                    }
                    _ => continue,
                };
                cluster.metrics.forwarded.fetch_add(1, Relaxed);
                if !connection::write_message(relay, ws, frame).await {
                    home::publish(cluster, &up, "close", None, Bytes::new()).await;
                    break None;
                }
            }
            incoming = ws.next() => {
                let (kind, payload) = match incoming {
                    Some(Ok(Message::Text(text))) => ("text", Bytes::from(text)),
                    Some(Ok(Message::Binary(bytes))) => ("binary", bytes),
                    Some(Ok(Message::Pong(_))) => { missed_pongs = 0; continue }
                    Some(Ok(Message::Ping(_))) => { let _ = connection::flush(ws).await; continue }
                    Some(Ok(Message::Frame(_))) => continue,
                    _ => {
                        home::publish(cluster, &up, "close", None, Bytes::new()).await;
                        break None;
                    }
                };
                home::publish(cluster, &up, kind, None, payload).await;
            }
            _ = heartbeat.tick() => {
                if missed_pongs >= 2 {
                    home::publish(cluster, &up, "close", None, Bytes::new()).await;
                    close_with(ws, close::HEARTBEAT, "heartbeat_timeout").await;
                    break Some(close::HEARTBEAT);
                }
                missed_pongs += 1;
                let ping = tokio::time::timeout(Duration::from_secs(30), ws.send(Message::Ping(Bytes::new()))).await;
                if !matches!(ping, Ok(Ok(()))) {
                    home::publish(cluster, &up, "close", None, Bytes::new()).await;
                    break None;
                }
            }
        }
    };
    relay.metrics.members.fetch_sub(1, Relaxed);
    cluster.pipes.remove(&sid);
    ending
}

/// Opens the pipe at `node`, following one redirect: the home, its epoch
/// and incarnation.
async fn ask(
    cluster: &Cluster,
    open: &Open,
    node: String,
) -> Result<(String, u64, String), Refused> {
    let mut node = node;
    let body: Bytes = serde_json::to_vec(open).unwrap_or_default().into();
    for _ in 0..2 {
        let subject = format!("nx.node.{node}.open");
        let reply = tokio::time::timeout(
            REQUEST_TIMEOUT,
            cluster.client.request(subject, body.clone()),
        )
        .await;
        let Ok(Ok(reply)) = reply else {
            return Err(Refused::Unavailable);
        };
        match serde_json::from_slice::<OpenReply>(&reply.payload) {
            Ok(OpenReply::Ok { epoch, incarnation }) => return Ok((node, epoch, incarnation)),
            Ok(OpenReply::Redirect { node: other }) => node = other,
            _ => return Err(Refused::Unavailable),
        }
    }
    Err(Refused::Unavailable)
}
