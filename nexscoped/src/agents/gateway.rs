//! The nx-ce-compatible WebSocket gateway (docs/nx-ce.md §2–§3): every
//! client→server and server→client message with nx-ce's fields, so that an
//! existing nx-ce client works unchanged, over the same agent host as
//! `io.nexscope.Agent`.
//!
//! Differences an old client does not notice: a query's `id` is echoed on
//! every frame of its turn; `done` carries `usage` (and `error`); tool results
//! arrive as `tool_result`; a cancel really interrupts the turn. Off by
//! default, loopback only, and a token (`Authorization: Bearer` or
//! `?token=`) is required unless the user allowed unauthenticated loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use super::{Agents, Key};
use crate::admission::{self, Admission};
use crate::relay::auth::Auth;
use crate::relay::http;
use crate::shutdown::Shutdown;
use crate::websocket;
use nexscope_proto::api::agent::*;
use nexscope_proto::time::now_ms;

/// nx-ce frames are small; a prompt may be long.
const MAX_FRAME: usize = 10 * 1024 * 1024;
/// Frames waiting for a slow client before it is dropped.
const OUTBOX: usize = 8192;
/// Open connections at once.
const MAX_CONNECTIONS: usize = 256;
/// Sockets still sending their request head: a budget of their own, so
/// half-open sockets cannot take the connections' slots.
const MAX_PENDING: usize = 64;
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a client gets to take our close frame at shutdown.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a client's writer may take to finish once its reader is done.
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// nx-ce's limit for getSkills.
const SKILLS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Who may connect.
pub enum Access {
    Token(Auth),
    /// `allow_unauthenticated_loopback = true`, for old nx-ce clients.
    Open,
}

/// Accepts until shutdown; closes clients with 1001 "server shutting down".
pub async fn serve(listener: TcpListener, agents: Arc<Agents>, access: Access, shutdown: Shutdown) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let context = Arc::new(Context {
        agents,
        access,
        port,
        host: hostname(),
        machine_id: machine_id(),
        shutdown: shutdown.clone(),
    });
    // Loopback only, so one address is one local user's choice: it gets a
    // quarter of the handshake budget, and no cap on open connections.
    let admission = Admission::new(admission::Limits {
        pending: MAX_PENDING,
        pending_per_address: MAX_PENDING / 4,
        open: MAX_CONNECTIONS,
        open_per_address: None,
        open_per_user: None,
    });
    let accept = crate::accept::Loop {
        what: "agent gateway",
        listener,
        shutdown,
        probe: None,
    };
    accept
        .run(
            |stream, peer, connections| match admission.pending(peer.ip()) {
                Ok(pending) => {
                    connections.spawn(connection(context.clone(), stream, peer, pending));
                }
                Err(refused) => {
                    tracing::warn!(%refused, "agent gateway connection refused");
                    admission.refuse(stream, &refused);
                }
            },
        )
        .await;
}

struct Context {
    agents: Arc<Agents>,
    access: Access,
    port: u16,
    host: String,
    machine_id: String,
    shutdown: Shutdown,
}

async fn connection(
    context: Arc<Context>,
    mut stream: TcpStream,
    peer: SocketAddr,
    pending: admission::Pending,
) {
    // Loopback only, whatever address the listener was given.
    if !peer.ip().is_loopback() {
        return;
    }
    let request = match tokio::time::timeout(HEAD_TIMEOUT, http::read_head(&mut stream)).await {
        Ok(Ok(request)) => request,
        _ => return,
    };
    // Held for the connection's life.
    let _slot = match pending.open() {
        Ok(slot) => slot,
        Err(refused) => {
            tracing::warn!(%refused, "agent gateway connection refused");
            return http::unavailable(&mut stream, &refused).await;
        }
    };
    if !request.is_websocket_upgrade() {
        return http::respond(
            &mut stream,
            "426 Upgrade Required",
            "text/plain",
            "nexscope agent gateway: connect with a WebSocket (nx-ce protocol)\n",
        )
        .await;
    }
    if !allowed(&context.access, &request) {
        tracing::warn!(%peer, "agent gateway connection without a valid token refused");
        return http::respond(
            &mut stream,
            "401 Unauthorized",
            "text/plain",
            "a token is required: send Authorization: Bearer <token> or ?token=<token> (see [agents] token_file)\n",
        )
        .await;
    }
    if http::switching_protocols(&mut stream, &request)
        .await
        .is_err()
    {
        return;
    }
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_FRAME);
    config.max_frame_size = Some(MAX_FRAME);
    let ws = WebSocketStream::from_partially_read(stream, request.rest, Role::Server, Some(config))
        .await;
    client(context, ws).await;
}

fn allowed(access: &Access, request: &http::Request) -> bool {
    match access {
        // No token to stop a web page (browsers send an Origin and allow
        // cross-site WebSockets); local programs send none.
        Access::Open => request
            .header("origin")
            .is_none_or(|origin| !origin.starts_with("http")),
        Access::Token(auth) => {
            // The scheme is case-insensitive (RFC 9110 §11.1).
            let bearer = request
                .header("authorization")
                .and_then(|v| v.trim().split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            let token = bearer.or_else(|| request.query.param("token"));
            auth.allows(None, token)
        }
    }
}

/// One client: frames in, handled in order; frames out through one writer.
async fn client<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    context: Arc<Context>,
    ws: WebSocketStream<S>,
) {
    let (sink, mut incoming) = ws.split();
    let (out, outbox) = mpsc::channel::<Value>(OUTBOX);
    let writer = tokio::spawn(writer(sink, outbox, context.shutdown.clone()));

    let _ = out.try_send(json!({
        "type": "connected",
        "port": context.port,
        "host": context.host,
        "machineId": context.machine_id,
        "serverTime": now_ms(),
    }));
    let mut conn = Conn::new();
    let stop = context.shutdown.wait();
    tokio::pin!(stop);
    // Why we end, when we close: the code and reason the client gets.
    let mut ending: Option<(u16, &'static str)> = None;
    loop {
        let message = tokio::select! {
            message = incoming.next() => message,
            // The writer says goodbye (1001) itself, even mid-frame.
            _ = &mut stop => break,
        };
        let Some(message) = message else { break };
        let text = match message {
            Ok(Message::Text(text)) => text.to_string(),
            Ok(Message::Binary(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Message::Close(_)) => break,
            Err(error) => {
                ending = websocket::close_for(&error);
                break;
            }
            Ok(_) => continue,
        };
        if writer.is_finished() {
            break;
        }
        while conn.turns.try_join_next().is_some() {}
        let reply = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(frame)) => handle(&context, &mut conn, frame, &out).await,
            _ => Some(error_frame("invalid JSON")),
        };
        if let Some(reply) = reply {
            if out.try_send(reply).is_err() {
                break;
            }
        }
    }
    // Turns of this client go on without it; their output is dropped.
    conn.turns.abort_all();
    drop(out);
    close_client(writer, incoming, ending).await;
}

/// The client's end, once its outbox is closed: the writer finishes (and
/// says goodbye at shutdown), then the closing handshake.
async fn close_client<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    mut writer: tokio::task::JoinHandle<Sink<S>>,
    incoming: futures_util::stream::SplitStream<WebSocketStream<S>>,
    ending: Option<(u16, &'static str)>,
) {
    // A writer stuck on a client that does not read is given up.
    let sink = match tokio::time::timeout(WRITER_WAIT, &mut writer).await {
        Ok(Ok(sink)) => sink,
        _ => {
            writer.abort();
            return;
        }
    };
    let Ok(mut ws) = sink.reunite(incoming) else {
        return;
    };
    match ending {
        Some((code, reason)) => websocket::close_with(&mut ws, code, reason).await,
        // After our 1001 (or the client's close): the client's answer is
        // read before the socket closes, or unread input would turn the
        // close into a reset that can destroy the 1001 before it is read.
        None => websocket::await_close(&mut ws).await,
    }
}

type Sink<S> = futures_util::stream::SplitSink<WebSocketStream<S>, Message>;

/// Writes the client's frames in order until its outbox closes; at shutdown
/// it says goodbye with 1001, also while a write to a slow client waits.
/// Hands the sink back for the closing handshake.
async fn writer<S: AsyncRead + AsyncWrite + Unpin>(
    mut sink: Sink<S>,
    mut outbox: mpsc::Receiver<Value>,
    shutdown: Shutdown,
) -> Sink<S> {
    let state = shutdown.clone();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let sent = tokio::select! {
            // Shutdown first: the goodbye must go out even when the
            // outbox has just closed too.
            biased;
            _ = &mut stop => break,
            frame = outbox.recv() => match frame {
                // A frame abandoned here is already in tungstenite's buffer
                // and goes out before the close frame.
                Some(frame) => tokio::select! {
                    biased;
                    _ = &mut stop => break,
                    sent = sink.send(Message::text(frame.to_string())) => sent,
                },
                // The reader closes the outbox when it stops, maybe for
                // shutdown: on a multi-threaded runtime that can happen
                // between the poll of `stop` above and this one, so the
                // flag is read again (this race lost the 1001 now and then).
                None if state.requested() => break,
                None => return sink,
            },
        };
        if sent.is_err() {
            return sink;
        }
    }
    let goodbye = Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "server shutting down".into(),
    }));
    let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(goodbye)).await;
    sink
}

fn error_frame(content: &str) -> Value {
    json!({"type": "error", "content": content})
}

fn text_field(frame: &Map<String, Value>, key: &str) -> Option<String> {
    frame.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The answer to a cancel that stopped a turn (nx-ce: `session`, and `cwd`
/// as the request gave it).
fn cancelled_frame(frame: &Map<String, Value>) -> Value {
    let mut reply = json!({
        "type": "cancelled",
        "session": text_field(frame, "session").unwrap_or_else(|| DEFAULT_SESSION.into()),
    });
    if let Some(cwd) = text_field(frame, "cwd") {
        reply["cwd"] = json!(cwd);
    }
    reply
}

fn target(frame: &Map<String, Value>) -> SessionRef {
    SessionRef {
        session: text_field(frame, "session"),
        cwd: text_field(frame, "cwd").filter(|c| !c.is_empty()),
    }
}

/// One client's turns.
struct Conn {
    /// Names this client's turns, so a cancel of one is answered in-band.
    me: u64,
    /// The tasks forwarding its turns' events (and getSkills answers).
    turns: JoinSet<()>,
    /// Per session, when the forwarder of this client's latest turn there
    /// is done: the next one waits for it, so turns of one session reach
    /// the client in the order they ran.
    order: HashMap<Key, oneshot::Receiver<()>>,
}

impl Conn {
    fn new() -> Conn {
        static CONNECTIONS: AtomicU64 = AtomicU64::new(1);
        Conn {
            me: CONNECTIONS.fetch_add(1, Ordering::Relaxed),
            turns: JoinSet::new(),
            order: HashMap::new(),
        }
    }

    /// Forwards a turn's events once this client's earlier turns of the
    /// same session are out.
    fn forward(
        &mut self,
        key: Key,
        stream: super::TurnStream,
        id: Option<Value>,
        out: mpsc::Sender<Value>,
        cancelled: Value,
    ) {
        // Forget the finished ones: their sender is gone.
        self.order.retain(|_, earlier| {
            matches!(earlier.try_recv(), Err(oneshot::error::TryRecvError::Empty))
        });
        let (finished, next) = oneshot::channel::<()>();
        let earlier = self.order.insert(key, next);
        self.turns.spawn(async move {
            if let Some(earlier) = earlier {
                let _ = earlier.await;
            }
            forward_turn(stream, id, out, cancelled).await;
            drop(finished);
        });
    }
}

/// Answers one client frame; turn events go out from their own task.
async fn handle(
    context: &Context,
    conn: &mut Conn,
    frame: Map<String, Value>,
    out: &mpsc::Sender<Value>,
) -> Option<Value> {
    let kind = frame.get("type").and_then(Value::as_str).unwrap_or("");
    let agents = &context.agents;
    match kind {
        "ping" => Some(json!({"type": "pong", "serverTime": now_ms()})),
        "query" => query(agents, conn, &frame, out).await,
        "getSkills" => {
            get_skills(context, conn, &frame, out);
            None
        }
        "getStatus" => Some(get_status(agents, &frame).await),
        "cancel" => cancel(agents, conn.me, &frame).await,
        "closeSession" => Some(close_session(agents, &frame).await),
        "listSessions" => Some(list_sessions(agents).await),
        other => Some(error_frame(&format!("unknown type: {other}"))),
    }
}

/// Queues a turn; its events go out from the forwarder, an error at once.
async fn query(
    agents: &Agents,
    conn: &mut Conn,
    frame: &Map<String, Value>,
    out: &mpsc::Sender<Value>,
) -> Option<Value> {
    let me = conn.me;
    let prompt = frame.get("prompt").and_then(Value::as_str).unwrap_or("");
    if let Err(error) = validate_query(prompt, frame.get("model"), frame.get("permissionMode")) {
        return Some(error_frame(&error.to_string()));
    }
    let id = frame.get("id").cloned().filter(|v| !v.is_null());
    let skills = frame.get("skills").and_then(Value::as_array).map(|list| {
        list.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    });
    let backend = match frame.get("backend").and_then(Value::as_str) {
        Some(b) => match Backend::parse(b) {
            Ok(b) => Some(b),
            Err(error) => return Some(error_frame(&error.to_string())),
        },
        None => None,
    };
    let input = QueryIn {
        target: target(frame),
        prompt: prompt.to_string(),
        model: text_field(frame, "model"),
        permission_mode: text_field(frame, "permissionMode"),
        backend,
        skills,
        id: None,
    };
    let key = match agents.key(&input.target) {
        Ok(key) => key,
        Err(error) => return Some(error_frame(&format!("session create failed: {error}"))),
    };
    match agents.query_for(input, Some(me)).await {
        Ok(stream) => {
            let cancelled = cancelled_frame(frame);
            conn.forward(key, stream, id, out.clone(), cancelled);
            None
        }
        Err(error @ AgentError::CreateFailed { .. }) => Some(error_frame(&error.to_string())),
        Err(error) => Some(error_frame(&format!("session create failed: {error}"))),
    }
}

/// It may start the agent to ask it: answered from its own task, so this
/// client's pings and cancels are not held up.
fn get_skills(
    context: &Context,
    conn: &mut Conn,
    frame: &Map<String, Value>,
    out: &mpsc::Sender<Value>,
) {
    let (agents, out, target) = (context.agents.clone(), out.clone(), target(frame));
    conn.turns.spawn(async move {
            let asked = async {
                let key = agents.key(&target)?;
                agents.skills(&key, None).await
            };
            let reply = match tokio::time::timeout(SKILLS_TIMEOUT, asked).await {
                Ok(Ok(mut metadata)) => {
                    metadata.insert("type".into(), json!("skills"));
                    metadata.insert(
                        "note".into(),
                        json!("skills/tools/agents are name-only; description requires SDK supportedCommands() (not exposed)"),
                    );
                    Value::Object(metadata)
                }
                Ok(Err(error)) => error_frame(&format!("getSkills failed: {error}")),
                Err(_) => error_frame(&format!(
                    "getSkills failed: probe timeout after {}s",
                    SKILLS_TIMEOUT.as_secs()
                )),
            };
            let _ = out.send(reply).await;
        });
}

async fn get_status(agents: &Agents, frame: &Map<String, Value>) -> Value {
    let name = text_field(frame, "session").unwrap_or_else(|| DEFAULT_SESSION.into());
    let cwd = text_field(frame, "cwd")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| agents.default_cwd().display().to_string());
    let info = match agents.key(&target(frame)) {
        Ok(key) => agents.status(&key).await.ok().flatten(),
        Err(_) => None,
    };
    let info = info.as_ref();
    json!({
        "type": "status",
        "session": name,
        "cwd": cwd,
        "sessionId": info.and_then(|i| i.session_id.clone()),
        "lifecycleState": if info.is_some_and(|i| i.live) { "running" } else { "stopped" },
        "isActive": info.is_some_and(|i| i.processing),
        "queueLength": info.map(|i| i.queue_length).unwrap_or(0),
        "processing": info.is_some_and(|i| i.processing),
        "model": info.and_then(|i| i.model.clone()),
        "backend": info.map(|i| i.backend),
        "usage": info.map(|i| i.usage),
    })
}

async fn cancel(agents: &Agents, me: u64, frame: &Map<String, Value>) -> Option<Value> {
    let result = match agents.key(&target(frame)) {
        Ok(key) => agents.cancel_for(&key).await,
        Err(error) => Err(error),
    };
    match result {
        // Our own turn: its forwarder answers once the turn has
        // ended, after every frame of it, so nothing of it can
        // follow `cancelled` and pass for the next query's.
        Ok((_, owner)) if owner == Some(me) => None,
        Ok(_) => Some(cancelled_frame(frame)),
        Err(_) => {
            Some(json!({"type": "cancel_failed", "content": AgentError::NoActiveTurn.to_string()}))
        }
    }
}

async fn close_session(agents: &Agents, frame: &Map<String, Value>) -> Value {
    let name = text_field(frame, "session").unwrap_or_else(|| DEFAULT_SESSION.into());
    let cwd = text_field(frame, "cwd").filter(|c| !c.is_empty());
    let key = match &cwd {
        Some(_) => agents.key(&target(frame)).ok(),
        None => None,
    };
    if cwd.is_none() || key.is_some() {
        if let Err(error) = agents.close(&name, key.as_ref(), false).await {
            tracing::warn!(%error, "closeSession failed");
        }
    }
    let mut reply = json!({"type": "session_closed", "session": name});
    if let Some(cwd) = cwd {
        reply["cwd"] = json!(cwd);
    }
    reply
}

async fn list_sessions(agents: &Agents) -> Value {
    match agents.sessions().await {
        Ok(sessions) => json!({
            "type": "session_list",
            "sessions": sessions.iter().map(session_row).collect::<Vec<_>>(),
        }),
        Err(error) => error_frame(&error.to_string()),
    }
}

/// nx-ce's `session_list` row, plus backend and usage.
fn session_row(info: &SessionInfo) -> Value {
    json!({
        "key": format!("{}:{}", info.name, info.cwd),
        "name": info.name,
        "cwd": info.cwd,
        "sessionId": info.session_id,
        "model": info.model,
        "queueLength": info.queue_length,
        "processing": info.processing,
        "lifecycleState": if info.live { "active" } else { "stopped" },
        "startedAt": info.started_at,
        "updatedAt": info.updated_at,
        "backend": info.backend,
        "turns": info.turns,
        "usage": info.usage,
    })
}

/// Sends one turn's events to its client, with the query's `id` on each.
/// Sends a turn's events to its client, tagged with the query's id. A
/// cancelled turn ends with `cancelled` (the answer to the cancel) instead
/// of its `done`: an nx-ce client expects nothing of the turn after it.
async fn forward_turn(
    mut stream: super::TurnStream,
    id: Option<Value>,
    out: mpsc::Sender<Value>,
    cancelled: Value,
) {
    while let Some(event) = stream.recv().await {
        let done = matches!(event, TurnEvent::Done { .. });
        if let TurnEvent::Done {
            cancelled: true, ..
        } = event
        {
            let _ = out.send(cancelled).await;
            return;
        }
        if let TurnEvent::Done {
            error: Some(error),
            time,
            ..
        } = &event
        {
            let frame = json!({"type": "error", "content": error, "time": time});
            if out.send(tag(frame, id.as_ref())).await.is_err() {
                return;
            }
        }
        let Ok(frame) = serde_json::to_value(&event) else {
            continue;
        };
        if out.send(tag(frame, id.as_ref())).await.is_err() || done {
            return;
        }
    }
}

fn tag(mut frame: Value, id: Option<&Value>) -> Value {
    if let Some(id) = id {
        if frame.get("id").is_none() {
            frame["id"] = id.clone();
        }
        frame["queryId"] = id.clone();
    }
    frame
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// A stable id of this machine, in nx-ce's 8-4-4-4-4 shape.
fn machine_id() -> String {
    use sha2::Digest;
    let source = std::fs::read_to_string("/etc/machine-id").unwrap_or_else(|_| hostname());
    let digest = sha2::Sha256::digest(source.trim().as_bytes());
    nexscope_proto::ids::dashed(&nexscope_proto::ids::hex(&digest[..12]), &[8, 4, 4, 4, 4])
}
