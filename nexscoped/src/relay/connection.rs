//! One client connection: the HTTP head, the handshake checks in v1's order,
//! then the member's loop: frames in, queued frames out, heartbeat, the
//! transfer deadline, shutdown.
//!
//! What it must never do: wait on another connection while holding a room
//! lock, buffer without bound, or outlive a peer that stopped reading.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Bytes, Message, Utf8Bytes};

use super::frame::{self, ErrorCode, Kind, close};
use super::outbox::{self, Inbox};
use super::receipt::{self, Receipt, Ticket};
use super::room::{Room, Since, Wants, text};
use super::{Relay, cluster, http};
use crate::admission::{self, Pending};
use crate::websocket::{self, close_with};

/// Time a client gets to send its request head (slow-loris bound; pending
/// sockets also have a budget of their own, see `admission`).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A peer that cannot take a write for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Queued frames written before one flush: fewer syscalls under load, and
/// a bound on the time one connection spends writing.
const WRITE_BATCH: usize = 256;
/// Illegal frames tolerated per connection (docs/protocol.md §1.11).
const ILLEGAL_LIMIT: u32 = 10;
/// transfer_busy's retry hint (docs/protocol.md §1.7).
const RETRY_AFTER_MS: u64 = 2000;
/// Text frames at least this large are parsed on a blocking thread.
const OFFLOAD_BYTES: usize = 64 * 1024;
/// Supported protocol versions (`v`, docs/protocol.md §1.1).
const VERSIONS: &[&str] = &["1"];

pub(crate) type Ws<S> = WebSocketStream<S>;

/// Serves one accepted stream (plain TCP or TLS) to the end.
pub async fn serve<S>(relay: Arc<Relay>, mut stream: S, peer: SocketAddr, pending: Pending)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    if !is_upgrade(&relay, &mut stream, &request).await {
        return;
    }
    let slot = match pending.open() {
        Ok(slot) => slot,
        Err(refused) => {
            relay.metrics.refused.fetch_add(1, Relaxed);
            tracing::info!(remote = %peer, %refused, "refused");
            return http::unavailable(&mut stream, &refused).await;
        }
    };
    if http::switching_protocols(&mut stream, &request)
        .await
        .is_err()
    {
        return;
    }
    // Only the query lives on, and only through the handshake.
    let http::Request { query, rest, .. } = request;
    let config = ws_config(relay.settings.max_payload);
    // Boxed, here and below: awaited once, it would otherwise be part of
    // every member's task for the member's whole life.
    // On the heap, and the session takes it by reference: a value moved
    // into an async fn is stored twice in its state.
    let mut ws = Box::new(
        Box::pin(WebSocketStream::from_partially_read(
            stream,
            rest,
            Role::Server,
            Some(config),
        ))
        .await,
    );
    relay.metrics.connections.fetch_add(1, Relaxed);
    relay.metrics.accepted.fetch_add(1, Relaxed);
    session(&relay, &mut ws, query, peer, slot, Via::Direct).await;
    relay.metrics.connections.fetch_sub(1, Relaxed);
}

/// Serves a member whose client is connected to another node of the relay
/// tier (the edge checked its token): the same checks and room code as a
/// direct client, over the home's end of the pipe.
pub(crate) async fn serve_piped<S>(
    relay: Arc<Relay>,
    stream: S,
    query: http::Query,
    peer: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let slot = match relay.admission.pending(peer.ip()).and_then(|p| p.open()) {
        Ok(slot) => slot,
        Err(refused) => {
            tracing::info!(remote = %peer, %refused, "refused a piped member");
            return;
        }
    };
    let config = ws_config(relay.settings.max_payload);
    let mut ws =
        Box::new(WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await);
    session(&relay, &mut ws, query, peer, slot, Via::Edge).await;
}

/// Where a member's client is: connected here, or piped from an edge node.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    Direct,
    Edge,
}

/// The request head, within `HEAD_TIMEOUT`; one too large or malformed
/// is answered (431, 400) and None.
async fn read_request<S>(stream: &mut S) -> Option<http::Request>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (status, body) = match tokio::time::timeout(HEAD_TIMEOUT, http::read_head(stream)).await {
        Ok(Ok(request)) => return Some(request),
        Ok(Err(http::HeadError::TooLarge)) => (
            "431 Request Header Fields Too Large",
            "request head too large\n",
        ),
        Ok(Err(http::HeadError::Malformed)) => ("400 Bad Request", "malformed HTTP request\n"),
        _ => return None,
    };
    http::respond(stream, status, "text/plain", body).await;
    None
}

/// True for a WebSocket upgrade to `/ws`; anything else (health, metrics,
/// a plain GET of `/ws`, other paths) is answered here.
async fn is_upgrade<S>(relay: &Relay, stream: &mut S, request: &http::Request) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/healthz") => http::respond(stream, "200 OK", "text/plain", "ok\n").await,
        ("GET", "/metrics") => {
            let mut body = relay.metrics.render(relay.rooms.count());
            if let Some(cluster) = relay.cluster.get() {
                body.push_str(&cluster.render_metrics(relay.rooms.count()));
            }
            http::respond(stream, "200 OK", "text/plain; version=0.0.4", &body).await;
        }
        (_, "/ws") if request.is_websocket_upgrade() => return true,
        (_, "/ws") => {
            http::respond(
                stream,
                "426 Upgrade Required",
                "text/plain",
                "nexscope relay: connect with a WebSocket to /ws?name=<name>&token=<token>&v=1\n",
            )
            .await;
        }
        _ => http::respond(stream, "404 Not Found", "text/plain", "not found\n").await,
    }
    false
}

/// Buffers sized for idle chat members, who are most of a big room:
/// tungstenite's 128 KiB defaults would cost 10,000 idle members over a
/// gigabyte. The
/// read buffer is all an idle member keeps (1 KiB, grown only while a
/// larger frame is read, at 1 KiB a read); tungstenite writes only control
/// frames, at once (data frames: `write_frames`).
pub(crate) fn ws_config(max_payload: usize) -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 1024;
    config.write_buffer_size = 0;
    config.max_write_buffer_size = usize::MAX;
    config.max_message_size = Some(max_payload);
    config.max_frame_size = Some(max_payload);
    config
}

/// Sends one frame now (handshake replies, acks, errors), counted.
async fn send_text<S: AsyncRead + AsyncWrite + Unpin>(
    relay: &Relay,
    ws: &mut Ws<S>,
    frame: String,
) -> bool {
    relay.metrics.frames_out.fetch_add(1, Relaxed);
    relay
        .metrics
        .bytes_out
        .fetch_add(frame.len() as u64, Relaxed);
    let message = [text(frame)];
    let sent = write_frames(ws, &message);
    matches!(tokio::time::timeout(WRITE_TIMEOUT, sent).await, Ok(Ok(())))
}

/// Writes one data frame now (an edge passing on its home's frames), counted.
pub(crate) async fn write_message<S: AsyncRead + AsyncWrite + Unpin>(
    relay: &Relay,
    ws: &mut Ws<S>,
    message: Message,
) -> bool {
    let len = match &message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) => bytes.len(),
        _ => 0,
    };
    relay.metrics.frames_out.fetch_add(1, Relaxed);
    relay.metrics.bytes_out.fetch_add(len as u64, Relaxed);
    let message = [message];
    let sent = write_frames(ws, &message);
    matches!(tokio::time::timeout(WRITE_TIMEOUT, sent).await, Ok(Ok(())))
}

/// Data frames are written to the socket by us, not through tungstenite's
/// write buffer, which keeps the capacity of the largest batch it ever
/// held: 10,000 idle members would each keep kilobytes. Frames below this
/// are gathered into one buffer per write, freed after it; larger ones are
/// written in place.
const GATHER_BELOW: usize = 16 * 1024;

/// Writes data frames as unmasked server frames (RFC 6455 §5.2), after
/// whatever tungstenite still holds (a pong, say).
async fn write_frames<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut Ws<S>,
    messages: &[Message],
) -> Result<(), tungstenite::Error> {
    ws.flush().await?;
    let stream = ws.get_mut();
    let mut gathered = Vec::new();
    for message in messages {
        let (opcode, payload) = match message {
            Message::Text(text) => (0x1u8, text.as_bytes()),
            Message::Binary(bytes) => (0x2u8, bytes.as_ref()),
            _ => continue,
        };
        push_header(&mut gathered, opcode, payload.len());
        if payload.len() < GATHER_BELOW {
            gathered.extend_from_slice(payload);
        } else {
            stream.write_all(&gathered).await?;
            gathered.clear();
            stream.write_all(payload).await?;
        }
    }
    if !gathered.is_empty() {
        stream.write_all(&gathered).await?;
    }
    stream.flush().await?;
    Ok(())
}

fn push_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    match len {
        0..=125 => out.push(len as u8),
        126..=65535 => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// An error frame, then a close: how every refused handshake ends but the
/// token check, which says nothing (no enumeration, docs/protocol.md §1.2).
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    relay: &Relay,
    ws: &mut Ws<S>,
    code: ErrorCode,
    message: &str,
    close_code: u16,
) {
    relay.metrics.error(code);
    // A close frame cannot follow a frame that did not go out whole.
    if send_text(relay, ws, frame::error(code, Some(message))).await {
        close_with(ws, close_code, code.as_str()).await;
    }
}

/// Why a handshake is turned away: an error frame and a close code, or
/// (a bad token) a bare 1008 that says nothing (no enumeration).
struct Refusal {
    error: Option<(ErrorCode, String)>,
    close: u16,
}

impl Refusal {
    fn with(code: ErrorCode, message: impl Into<String>, close: u16) -> Refusal {
        Refusal {
            error: Some((code, message.into())),
            close,
        }
    }
}

/// What a client that passed the handshake checks asked for.
struct Wanted<'q> {
    name: &'q str,
    room: &'q str,
    wants: Wants,
}

/// The handshake checks in v1's order (docs/protocol.md §1.2): the token,
/// the version, the name, then beyond v1 the user's connection cap and
/// the room. One function, so the order reads as the document's.
fn check<'q>(
    relay: &Relay,
    query: &'q http::Query,
    peer: SocketAddr,
    slot: &mut admission::Open,
    via: Via,
) -> Result<Wanted<'q>, Refusal> {
    let name = query.param("name");
    if via == Via::Direct && !relay.auth.allows(name, query.param("token")) {
        relay.metrics.auth_failures.fetch_add(1, Relaxed);
        tracing::info!(event = "auth_failure", remote = %peer, name = name.map(|n| n.chars().take(40).collect::<String>()), "refused: bad or missing token");
        return Err(Refusal {
            error: None,
            close: close::POLICY,
        });
    }
    // Absent means 1.
    if query.param("v").is_some_and(|v| !VERSIONS.contains(&v)) {
        tracing::info!(event = "auth_failure", remote = %peer, reason = "version_mismatch", "refused");
        let message = format!("supported protocol versions: {}", VERSIONS.join(", "));
        return Err(Refusal::with(
            ErrorCode::VersionMismatch,
            message,
            close::POLICY,
        ));
    }
    let Some(name) = name.filter(|n| nexscope_proto::rules::valid_name(n)) else {
        tracing::info!(event = "auth_failure", remote = %peer, reason = "invalid_name", "refused");
        let message = "name must match ^[a-zA-Z0-9_-]{1,32}$";
        return Err(Refusal::with(
            ErrorCode::InvalidName,
            message,
            close::INVALID_NAME,
        ));
    };
    // A user with a token of its own may hold only so many connections.
    if relay.auth.is_user(name) {
        if let Err(refused) = slot.claim_user(name) {
            tracing::info!(event = "refused", name, remote = %peer, %refused, "refused");
            let close = close::TRY_AGAIN_LATER;
            return Err(Refusal::with(
                ErrorCode::TooManyConnections,
                refused.to_string(),
                close,
            ));
        }
    }
    let room = query.param("room").unwrap_or("");
    if !room.is_empty() && !nexscope_proto::rules::valid_room(room) {
        let message = "room must be 1 to 64 characters from a-z, A-Z, 0-9, ., _ and -";
        return Err(Refusal::with(
            ErrorCode::InvalidRoom,
            message,
            close::POLICY,
        ));
    }
    Ok(Wanted {
        name,
        room,
        wants: Wants {
            delta: query.param("presence") == Some("delta"),
            receipts: query.param("receipts") == Some("1"),
            since: query.param("since").and_then(Since::parse),
        },
    })
}

/// Why the room did not take the member: its name is taken, or it is full.
fn join_refused(code: ErrorCode, name: &str, max: usize) -> Refusal {
    match code {
        ErrorCode::NameTaken => {
            let message = format!("username \"{name}\" already in room");
            Refusal::with(code, message, close::NAME_TAKEN)
        }
        _ => {
            let message = format!("the room holds at most {max} members");
            Refusal::with(code, message, close::ROOM_FULL)
        }
    }
}

async fn turn_away<S>(relay: &Relay, ws: &mut Ws<S>, refusal: Refusal)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match refusal.error {
        Some((code, message)) => Box::pin(refuse(relay, ws, code, &message, refusal.close)).await,
        None => Box::pin(close_with(ws, refusal.close, "unauthorized")).await,
    }
}

async fn session<S>(
    relay: &Arc<Relay>,
    ws: &mut Ws<S>,
    query: http::Query,
    peer: SocketAddr,
    mut slot: admission::Open,
    via: Via,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Wanted { name, room, wants } = match check(relay, &query, peer, &mut slot, via) {
        Ok(wanted) => wanted,
        Err(refusal) => return Box::pin(turn_away(relay, ws, refusal)).await,
    };
    // In a relay tier, a room homed elsewhere is piped there.
    if let (Some(cluster), Via::Direct) = (relay.cluster.get(), via) {
        match Box::pin(cluster.home_of(room)).await {
            Some(cluster::Home::Local(_)) => {}
            Some(cluster::Home::Remote(node, _)) => {
                let (room, query) = (room.to_string(), query.without("token"));
                let code = Box::pin(cluster::edge::pipe(
                    relay, cluster, ws, &room, query, peer, node,
                ))
                .await;
                tracing::info!(event = "disconnect", name, room, code, "left (piped)");
                return;
            }
            None => {
                close_with(ws, close::TRY_AGAIN_LATER, "relay_tier_unavailable").await;
                return;
            }
        }
    }
    // The name is free, the room has space (docs/protocol.md §1.2, 4 and 5).
    let id = relay.next_id();
    let (outbox, inbox) = outbox::channel();
    let max = relay.settings.max_users;
    let joined = match relay.rooms.join(room, name, id, outbox, wants, max) {
        Ok(joined) => joined,
        Err(code) => {
            if code == ErrorCode::NameTaken {
                tracing::info!(event = "name_conflict", name, room, remote = %peer, "refused: name taken");
            }
            let refusal = join_refused(code, name, max);
            return Box::pin(turn_away(relay, ws, refusal)).await;
        }
    };
    relay.metrics.members.fetch_add(1, Relaxed);
    tracing::info!(event = "connect", name, room, remote = %peer, online = joined.room.members(), "joined");
    // Watched from the join on: a move of the room during the catch-up
    // below is not missed.
    let deposed = joined.room.deposed.subscribe();
    let mut member = Member {
        relay: relay.clone(),
        deposed,
        room: joined.room,
        name: name.to_string(),
        id,
        illegal: 0,
        transfer_deadline: None,
        rejected_stream: false,
        receipts: VecDeque::new(),
        receipt_frames: wants.receipts,
    };
    // The token goes with the query: nothing holds it while the member talks.
    drop(query);
    let mut first = Box::pin(send_text(relay, ws, joined.presence)).await;
    if let (true, Some(statuses)) = (first, joined.statuses) {
        first = Box::pin(send_text(relay, ws, statuses)).await;
    }
    // What it missed comes before anything live (queued meanwhile).
    if let (true, Some(Since::Seq(since)), Some(cluster)) =
        (first, wants.since, relay.cluster.get())
    {
        let replay = Box::pin(cluster.history.replay(&member.room.id, since, &member.name)).await;
        for (seq, frame) in replay {
            if !Box::pin(send_text(
                relay,
                ws,
                cluster::history::with_seq(&frame, seq, true),
            ))
            .await
            {
                first = false;
                break;
            }
        }
    }
    let code = if first {
        member.run(ws, inbox).await
    } else {
        None
    };
    relay.rooms.leave(&member.room, &member.name, id);
    relay.metrics.members.fetch_sub(1, Relaxed);
    tracing::info!(
        event = "disconnect",
        name = %member.name,
        room = %member.room.id,
        code,
        online = member.room.members(),
        "left"
    );
}

/// Why the loop ended, when we close (the close code we sent).
type Ending = Option<u16>;

struct Member {
    relay: Arc<Relay>,
    room: Arc<Room>,
    name: String,
    id: u64,
    illegal: u32,
    transfer_deadline: Option<Instant>,
    /// Our file-start was refused (busy, too large): a v1 client streams its
    /// chunks anyway, which are dropped quietly until its file-end.
    rejected_stream: bool,
    /// Acks still waiting for recipients, oldest first, with when they are
    /// due regardless (see `receipt`).
    receipts: VecDeque<(Instant, Weak<Receipt>)>,
    /// Asked for receipt frames (`receipts=1`); these are not the acks above.
    receipt_frames: bool,
    /// Bumped when this relay stops being the room's home (a relay tier).
    deposed: tokio::sync::watch::Receiver<u64>,
}

/// What handling one frame asks of the loop.
enum Next {
    Continue,
    Close(ErrorCode, u16),
    /// A broken WebSocket frame: closed with the RFC 6455 code, no error frame.
    Violation(u16, &'static str),
    /// Dropped without a close frame (a write was cut off mid-frame).
    Abandon(ErrorCode),
    Gone,
}

/// How a read error ends the connection: too large gets v1's 4011, broken
/// frames the RFC's codes, I/O errors end it.
fn violation(error: &tungstenite::Error) -> Next {
    match websocket::close_for(error) {
        Some((websocket::TOO_BIG, _)) => Next::Close(ErrorCode::MsgTooLarge, close::TOO_LARGE),
        Some((code, reason)) => Next::Violation(code, reason),
        None => Next::Gone,
    }
}

impl Member {
    /// The member's life: one select over everything that can happen to
    /// it (shutdown, its queue, its socket, the heartbeat, its deadlines),
    /// kept in one place so their priorities read at a glance.
    async fn run<S>(&mut self, ws: &mut Ws<S>, inbox: Inbox) -> Ending
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let period = self.relay.settings.heartbeat;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        let mut missed_pongs = 0u32;
        let shutdown = self.relay.shutdown.clone();
        let mut fence = self.deposed.clone();
        let clustered = self.relay.cluster.get().is_some();
        loop {
            let deadline = self.transfer_deadline;
            let ack_due = self.next_ack_due();
            let timer = deadline.into_iter().chain(ack_due).min();
            let next = tokio::select! {
                biased;
                _ = shutdown.wait() => {
                    Box::pin(close_with(ws, close::GOING_AWAY, "relay_shutdown")).await;
                    return Some(close::GOING_AWAY);
                }
                // This node is no longer the room's home: reconnect.
                _ = fence.changed(), if clustered => {
                    Box::pin(close_with(ws, cluster::home::REHOME, "rehome")).await;
                    return Some(cluster::home::REHOME);
                }
                queued = inbox.next() => match queued {
                    outbox::Next::Frame(first) => Box::pin(self.write_batch(ws, &inbox, first)).await,
                    outbox::Next::Kicked => Next::Close(ErrorCode::SlowConsumer, close::TRY_AGAIN_LATER),
                },
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => Box::pin(self.on_text(ws, text)).await,
                    Some(Ok(Message::Binary(bytes))) => Box::pin(self.on_binary(ws, bytes)).await,
                    Some(Ok(Message::Pong(_))) => { missed_pongs = 0; Next::Continue }
                    // tungstenite queued the pong; send it now.
                    Some(Ok(Message::Ping(_))) => if flush(ws).await { Next::Continue } else { Next::Gone },
                    Some(Ok(Message::Close(_))) => { let _ = flush(ws).await; Next::Gone }
                    Some(Ok(Message::Frame(_))) => Next::Continue,
                    Some(Err(error)) => violation(&error),
                    None => Next::Gone,
                },
                _ = heartbeat.tick() => {
                    if missed_pongs >= 2 {
                        Next::Close(ErrorCode::HeartbeatTimeout, close::HEARTBEAT)
                    } else {
                        missed_pongs += 1;
                        let ping = tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::Ping(Bytes::new()))).await;
                        if matches!(ping, Ok(Ok(()))) { Next::Continue } else { Next::Gone }
                    }
                }
                // One timer for both deadlines: each costs every member's
                // task its size.
                _ = tokio::time::sleep_until(timer.unwrap_or_else(Instant::now)), if timer.is_some() => {
                    if deadline.is_some_and(|d| d <= Instant::now()) {
                        self.room.abort_transfer(self.id);
                        tracing::info!(event = "transfer_timeout", name = %self.name, "closing the sender");
                        Next::Close(ErrorCode::TransferTimeout, close::TRANSFER_TIMEOUT)
                    } else {
                        self.expire_acks();
                        Next::Continue
                    }
                }
            };
            match next {
                Next::Continue => {}
                Next::Gone => return None,
                Next::Abandon(code) => {
                    self.relay.metrics.error(code);
                    return None;
                }
                Next::Violation(close_code, reason) => {
                    tracing::debug!(event = "protocol_violation", name = %self.name, reason);
                    Box::pin(close_with(ws, close_code, reason)).await;
                    return Some(close_code);
                }
                Next::Close(code, close_code) => {
                    self.relay.metrics.error(code);
                    // A frame that was too large gets its error frame first
                    // (docs/protocol.md §1.8).
                    let sent = code != ErrorCode::MsgTooLarge || {
                        let message =
                            format!("frame exceeds {} bytes", self.relay.settings.max_payload);
                        let error = frame::error(code, Some(&message));
                        Box::pin(send_text(&self.relay, ws, error)).await
                    };
                    // A close frame cannot follow a frame that did not go
                    // out whole.
                    if sent {
                        Box::pin(close_with(ws, close_code, code.as_str())).await;
                    }
                    return Some(close_code);
                }
            }
        }
    }

    /// Writes `first` and whatever else is queued, then flushes once.
    async fn write_batch<S>(&mut self, ws: &mut Ws<S>, inbox: &Inbox, first: outbox::Queued) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut bytes = 0;
        let mut batch = Vec::new();
        let mut tickets = Vec::new();
        let mut next = Some(first);
        while let Some(queued) = next.take() {
            bytes += queued.payload_len() as u64;
            let (message, ticket) = inbox.take(queued);
            batch.push(message);
            tickets.extend(ticket);
            if batch.len() < WRITE_BATCH {
                next = match inbox.try_next() {
                    Some(outbox::Next::Frame(queued)) => Some(queued),
                    _ => None,
                };
            }
        }
        let frames = batch.len() as u64;
        let write = async {
            let written = tokio::time::timeout(WRITE_TIMEOUT, write_frames(ws, &batch)).await;
            if matches!(written, Ok(Ok(()))) {
                // Unwritten tickets are dropped below: not delivered.
                tickets.drain(..).for_each(Ticket::written);
            }
            written
        };
        // A reader too slow for its queue is told to go even while we are
        // stuck writing to it.
        let outcome = tokio::select! {
            written = write => if matches!(written, Ok(Ok(()))) { Next::Continue } else { Next::Gone },
            // A frame may be half written: no close frame can follow it.
            _ = inbox.kicked() => Next::Abandon(ErrorCode::SlowConsumer),
        };
        let metrics = &self.relay.metrics;
        metrics.frames_out.fetch_add(frames, Relaxed);
        metrics.bytes_out.fetch_add(bytes, Relaxed);
        outcome
    }

    /// When the oldest ack still waiting is due; settled ones are dropped.
    fn next_ack_due(&mut self) -> Option<Instant> {
        while let Some((_, receipt)) = self.receipts.front() {
            if receipt.strong_count() > 0 {
                break;
            }
            self.receipts.pop_front();
        }
        if self.receipts.is_empty() && self.receipts.capacity() > 0 {
            self.receipts = VecDeque::new();
        }
        self.receipts.front().map(|(due, _)| *due)
    }

    fn expire_acks(&mut self) {
        let now = Instant::now();
        while let Some((due, receipt)) = self.receipts.front() {
            if *due > now {
                break;
            }
            if let Some(receipt) = receipt.upgrade() {
                receipt.expire();
            }
            self.receipts.pop_front();
        }
    }

    fn count_in(&self, len: usize) {
        self.relay.metrics.frames_in.fetch_add(1, Relaxed);
        self.relay.metrics.bytes_in.fetch_add(len as u64, Relaxed);
    }

    /// An error frame for a dropped frame; counted ones close at the limit.
    async fn reject<S>(&mut self, ws: &mut Ws<S>, code: ErrorCode, frame_text: String) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.relay.metrics.error(code);
        if !send_text(&self.relay, ws, frame_text).await {
            return Next::Gone;
        }
        if code.counted() {
            self.illegal += 1;
            tracing::debug!(event = "illegal_frame", name = %self.name, code = code.as_str(), count = self.illegal);
            if self.illegal >= ILLEGAL_LIMIT {
                return Next::Close(ErrorCode::TooManyIllegal, close::TOO_MANY_ILLEGAL);
            }
        }
        Next::Continue
    }

    /// Parses a frame and builds what recipients get, on a blocking thread
    /// when the frame is large: the relay's I/O thread keeps serving every
    /// other member meanwhile.
    async fn prepare(&self, text_frame: &Utf8Bytes, ts: u64) -> Result<Prepared, ErrorCode> {
        let limits = frame::Limits {
            max_file: self.relay.settings.max_file,
            max_to: self.relay.settings.max_users,
            receipts: self.receipt_frames,
        };
        if text_frame.len() < OFFLOAD_BYTES {
            return prepared(text_frame, &self.name, limits, ts);
        }
        let (text_frame, name) = (text_frame.clone(), self.name.clone());
        tokio::task::spawn_blocking(move || prepared(&text_frame, &name, limits, ts))
            .await
            .unwrap_or(Err(ErrorCode::BadJson))
    }

    async fn on_text<S>(&mut self, ws: &mut Ws<S>, text_frame: Utf8Bytes) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.count_in(text_frame.len());
        let ts = nexscope_proto::time::now_ms();
        let (incoming, out) = match self.prepare(&text_frame, ts).await {
            Ok(prepared) => prepared,
            Err(code) => {
                if matches!(code, ErrorCode::FileTooLarge | ErrorCode::BadFileStart) {
                    self.rejected_stream = true;
                }
                let message = self.explain(code);
                return self
                    .reject(ws, code, frame::error(code, message.as_deref()))
                    .await;
            }
        };
        let settings = &self.relay.settings;
        match incoming.kind {
            Kind::Ping => {
                return if send_text(&self.relay, ws, frame::pong(ts)).await {
                    Next::Continue
                } else {
                    Next::Gone
                };
            }
            // The ack comes through our own queue once the recipients
            // have written the message (see `receipt`).
            Kind::Msg => {
                // A home that may have been replaced routes nothing.
                if self.relay.cluster.get().is_some_and(|c| !c.serving()) {
                    return Next::Violation(cluster::home::REHOME, "rehome");
                }
                let numbered = Box::pin(self.append_history(&incoming, &out)).await;
                if let Some(receipt) = self.room.route(&self.name, &incoming, out, numbered) {
                    let due = Instant::now() + receipt::ACK_DEADLINE;
                    self.receipts.push_back((due, Arc::downgrade(&receipt)));
                }
            }
            Kind::FileStart => {
                match self
                    .room
                    .start_transfer(&self.name, self.id, &incoming, out)
                {
                    Ok(()) => {
                        self.rejected_stream = false;
                        self.transfer_deadline = Some(Instant::now() + settings.transfer_timeout)
                    }
                    Err(code) => {
                        self.rejected_stream = true;
                        return self
                            .reject(ws, code, frame::transfer_busy(RETRY_AFTER_MS))
                            .await;
                    }
                }
            }
            Kind::FileEnd => return self.on_file_end(ws, &incoming, out).await,
            Kind::Receipt => self.room.route_receipt(&incoming, out),
            Kind::Status => {
                if let Some(agent) = incoming.agent {
                    self.room.set_status(&self.name, agent, out);
                }
            }
        }
        Next::Continue
    }

    /// In a relay tier, stores a routed message in the history first: the
    /// frame with its sequence, for the members that asked for one.
    async fn append_history(&self, incoming: &frame::Incoming, out: &Message) -> Option<Message> {
        let cluster = self.relay.cluster.get()?;
        let Message::Text(frame) = out else {
            return None;
        };
        let to: Vec<String> = incoming.to.iter().map(|n| n.to_string()).collect();
        let msg_id = incoming
            .msg_id
            .as_deref()
            .map(|r| r.get().trim_matches('"').to_string());
        let appended = cluster
            .history
            .append(
                &self.room.id,
                msg_id.as_deref(),
                &self.name,
                &to,
                frame.as_str(),
            )
            .await;
        let metrics = &cluster.metrics;
        match appended {
            Some(seq) => {
                metrics.history_appends.fetch_add(1, Relaxed);
                Some(text(cluster::history::with_seq(frame.as_str(), seq, false)))
            }
            None => {
                metrics.history_failures.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// What a refused frame's error says beyond its code, where the limit
    /// it broke is ours to name.
    fn explain(&self, code: ErrorCode) -> Option<String> {
        let settings = &self.relay.settings;
        match code {
            ErrorCode::FileTooLarge => Some(format!(
                "attachment.size exceeds {} bytes",
                settings.max_file
            )),
            ErrorCode::BadFileStart => {
                Some("file-start needs attachment.size (a non-negative integer)".to_string())
            }
            ErrorCode::TooManyRecipients => Some(format!(
                "to lists more than {} distinct names (the room's member cap)",
                settings.max_users
            )),
            _ => None,
        }
    }

    async fn on_file_end<S>(
        &mut self,
        ws: &mut Ws<S>,
        incoming: &frame::Incoming,
        out: Message,
    ) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(transfer) = self
            .room
            .end_transfer(self.id, incoming.msg_id.as_deref().map(|r| r.get()))
        else {
            self.rejected_stream = false;
            return self
                .reject(
                    ws,
                    ErrorCode::BadFileEnd,
                    frame::bad_file_end(incoming.msg_id.as_deref()),
                )
                .await;
        };
        self.transfer_deadline = None;
        let mut delivered = Vec::new();
        let mut offline = transfer.offline.clone();
        for (name, outbox) in &transfer.recipients {
            if self.room.is_member(name) && outbox.push_waiting(out.clone()).await {
                delivered.push(name.clone());
            } else if !transfer.broadcast {
                offline.push(name.clone());
            }
        }
        let msg_id = serde_json::value::RawValue::from_string(transfer.msg_id.clone()).ok();
        let thread_id = serde_json::value::RawValue::from_string(transfer.thread_id.clone()).ok();
        let ack = frame::ack(
            msg_id.as_deref(),
            thread_id.as_deref(),
            &delivered,
            &offline,
        );
        if send_text(&self.relay, ws, ack).await {
            Next::Continue
        } else {
            Next::Gone
        }
    }

    async fn on_binary<S>(&mut self, ws: &mut Ws<S>, bytes: Bytes) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.count_in(bytes.len());
        // A sender streaming steadily never lets the select see its deadline.
        if self.transfer_deadline.is_some_and(|d| Instant::now() >= d) {
            self.room.abort_transfer(self.id);
            return Next::Close(ErrorCode::TransferTimeout, close::TRANSFER_TIMEOUT);
        }
        match self.room.chunk_recipients(self.id, bytes.len()) {
            Ok(recipients) => {
                let chunk = Message::Binary(bytes);
                for outbox in recipients {
                    outbox.push_waiting(chunk.clone()).await;
                }
                Next::Continue
            }
            Err(ErrorCode::FileTooLarge) => {
                self.transfer_deadline = None;
                let message = "more bytes than attachment.size; the transfer is aborted";
                self.reject(
                    ws,
                    ErrorCode::FileTooLarge,
                    frame::error(ErrorCode::FileTooLarge, Some(message)),
                )
                .await
            }
            Err(_) if self.rejected_stream => Next::Continue,
            Err(code) => {
                self.reject(
                    ws,
                    code,
                    frame::error(
                        code,
                        Some("binary frames only between your file-start and file-end"),
                    ),
                )
                .await
            }
        }
    }
}

/// A parsed frame and, but for a ping, the frame its recipients get.
type Prepared = (frame::Incoming, Message);

fn prepared(
    text_frame: &str,
    me: &str,
    limits: frame::Limits,
    ts: u64,
) -> Result<Prepared, ErrorCode> {
    let incoming = frame::parse(text_frame, me, limits)?;
    let out = match (incoming.kind, incoming.agent) {
        (Kind::Ping, _) => Message::Text(Utf8Bytes::default()),
        // Rebuilt from what was checked: a member speaks only for itself.
        (Kind::Status, Some(agent)) => text(frame::status(me, agent, ts)),
        _ => text(incoming.forward(text_frame, ts)),
    };
    Ok((incoming, out))
}

pub(crate) async fn flush<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut Ws<S>) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, ws.flush()).await,
        Ok(Ok(()))
    )
}
