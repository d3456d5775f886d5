//! One project's connection to its relay: connect, wait for the first
//! presence (authentication, docs/protocol.md §1.2), then frames in and
//! commands out until stopped; reconnect with backoff 1 → 2 → … → 30 s and
//! the same name after any loss (docs/protocol.md §2.5). Refusals before
//! authentication (bad token, name taken, room full) are fatal: the room
//! stops and the human is told.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::files::{self, Incoming};
use super::inbound::{self, Snapshot, strings};
use super::receipts;
use super::{Ack, Command, Room, Rooms};
use crate::shutdown::Shutdown;
use crate::store::{self, StoreError};
use nexscope_proto::api::chat::{ChatError, Event, ReceiptState};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Time to connect, and for the first frame after connecting (v1: 10 s).
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a file waits for the transfer lock in all.
const TRANSFER_WAIT: Duration = Duration::from_secs(90);
/// Chunks written before one flush.
const FLUSH_EVERY: usize = 16;

/// How one connection ended.
enum Ended {
    Stopped,
    Fatal(ChatError),
    Lost { code: Option<u16> },
}

enum Waiter {
    Text(oneshot::Sender<Ack>),
    File(oneshot::Sender<Result<Ack, ChatError>>),
}

/// What the connection task keeps between frames.
struct Client {
    rooms: Arc<Rooms>,
    room: Arc<Room>,
    waiters: HashMap<String, Waiter>,
    receiving: Option<Incoming>,
    /// True until the membership's first presence: that one is a snapshot,
    /// later ones (after reconnects too) are joins and leaves.
    first_presence: bool,
    /// This connection's relay carries receipt frames (it said so in its
    /// first presence; a v1 relay never does).
    receipts_ok: bool,
    /// The status last sent on this connection.
    status_sent: Option<&'static str>,
}

pub async fn run(
    rooms: Arc<Rooms>,
    room: Arc<Room>,
    mut commands: mpsc::Receiver<Command>,
    stop: Shutdown,
    ready: oneshot::Sender<Result<(), ChatError>>,
) {
    let mut ready = Some(ready);
    let mut backoff = BACKOFF_START;
    let mut client = Client {
        rooms: rooms.clone(),
        room: room.clone(),
        waiters: HashMap::new(),
        receiving: None,
        first_presence: true,
        receipts_ok: false,
        status_sent: None,
    };
    loop {
        if stop.requested() || rooms.ctx.shutdown.requested() {
            return;
        }
        let ended = client
            .connect_and_serve(&mut commands, &stop, &mut ready, &mut backoff)
            .await;
        room.live().ready = false;
        if let Some(incoming) = client.receiving.take() {
            incoming.discard();
        }
        client.waiters.clear();
        if !client.after(ended, &mut ready, backoff).await {
            return;
        }
        let shutdown = rooms.ctx.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait() => return,
            _ = shutdown.wait() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Statuses kept at most: a room's member cap is far lower; this bounds
/// what a hostile relay could make us hold.
const MAX_AGENTS: usize = 4096;

/// How often the connection looks whether what is behind our name changed.
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// The relay URL with our name, token, `v=1`, `presence=delta`,
/// `receipts=1`, `since` and room set (replacing any already there, as v1's
/// client does).
fn relay_url(room: &Room, since: Option<u64>) -> String {
    let (base, query) = room
        .relay_url
        .split_once('?')
        .unwrap_or((&room.relay_url, ""));
    let ours = [
        "name", "token", "v", "presence", "receipts", "since", "room",
    ];
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !ours.contains(&p.split('=').next().unwrap_or("")))
        .map(String::from)
        .collect();
    pairs.push(format!("name={}", encode(&room.name)));
    if let Some(token) = &room.token {
        pairs.push(format!("token={}", encode(token.expose())));
    }
    pairs.push("v=1".into());
    pairs.push("presence=delta".into());
    pairs.push("receipts=1".into());
    pairs.push(match since {
        Some(seq) => format!("since={seq}"),
        None => "since=now".into(),
    });
    if !room.room_id.is_empty() {
        pairs.push(format!("room={}", encode(&room.room_id)));
    }
    format!("{base}?{}", pairs.join("&"))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn tls_connector() -> tokio_tungstenite::Connector {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // A relay with a private CA: NEXSCOPE_CA_FILE names its PEM certificate.
    if let Some(file) = std::env::var_os("NEXSCOPE_CA_FILE") {
        use rustls_pki_types::pem::PemObject;
        if let Ok(certs) = rustls_pki_types::CertificateDer::pem_file_iter(&file) {
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    match tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => tokio_tungstenite::Connector::Rustls(Arc::new(
            builder.with_root_certificates(roots).with_no_client_auth(),
        )),
        Err(_) => tokio_tungstenite::Connector::Plain,
    }
}

fn ws_config(room: &Room) -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 16 * 1024;
    config.write_buffer_size = 64 * 1024;
    config.max_message_size = Some(room.settings.max_payload as usize);
    config.max_frame_size = Some(room.settings.max_payload as usize);
    config
}

impl Client {
    fn project(&self) -> &str {
        &self.room.project
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            me: self.room.name.clone(),
            mode: self.room.live().mode,
            hop_limit: self.room.settings.hop_limit,
            peer_index: self.room.settings.peer_index.clone(),
        }
    }

    /// Commits a job's events, then publishes them. Waits only while the
    /// store's queue is full.
    async fn commit<F>(&self, job: F)
    where
        F: FnOnce(&rusqlite::Connection) -> Result<Vec<Event>, StoreError> + Send + 'static,
    {
        self.commit_then(job, None).await
    }

    /// `commit`, and once committed, `receipt` goes to the frame's sender.
    async fn commit_then<F>(&self, job: F, receipt: Option<String>)
    where
        F: FnOnce(&rusqlite::Connection) -> Result<Vec<Event>, StoreError> + Send + 'static,
    {
        let room = self.room.clone();
        let submitted = self.rooms.ctx.store.submit(job, move |result| match result {
            Ok(events) => {
                room.publish(events);
                if let Some(receipt) = receipt {
                    room.send_receipt(receipt);
                }
            }
            Err(error) => tracing::error!(project = %room.project, %error, "could not store an inbound frame"),
        });
        if let Err(error) = submitted.await {
            tracing::error!(%error, "store unavailable");
        }
    }

    /// The `stored` receipt a peer's message gets once committed.
    fn stored_receipt(&self, frame: &Value) -> Option<String> {
        let text = |key: &str| frame[key].as_str().filter(|v| !v.is_empty());
        let (msg_id, from) = (text("msgId")?, text("from")?);
        let thread = text("threadId").unwrap_or_default();
        let stored = ReceiptState::Stored;
        Some(receipts::frame(
            &self.room.name,
            from,
            msg_id,
            thread,
            stored,
            None,
        ))
    }

    /// Tells the room what is behind our name when that changed (a live
    /// session registered or ended), where the relay carries it.
    async fn send_status(&mut self, ws: &mut Ws) -> Result<(), Ended> {
        let kind = self.room.leases.kind();
        if !self.receipts_ok || self.status_sent == Some(kind) {
            return Ok(());
        }
        self.status_sent = Some(kind);
        let frame = json!({"type": "status", "from": self.room.name, "agent": kind});
        send(ws, Message::text(frame.to_string())).await
    }

    /// What the relay says is behind other members' names: one member's
    /// change (`from`), or everyone's as we join (`agents`, no `from`).
    /// Only members online, and only the kinds there are.
    fn on_status(&self, frame: &Value) {
        let known = |agent: &str| nexscope_proto::rules::AGENTS.contains(&agent);
        let mut live = self.room.live();
        let live = &mut *live;
        match (frame["from"].as_str(), frame["agent"].as_str()) {
            // A joiner's status can come before the presence that lists it
            // (presence is batched): kept, and shown once it is online.
            (Some(from), Some(agent)) if known(agent) && live.agents.len() < MAX_AGENTS => {
                live.agents.insert(from.to_string(), agent.to_string());
            }
            (Some(from), Some(agent)) if known(agent) && live.agents.contains_key(from) => {
                live.agents.insert(from.to_string(), agent.to_string());
            }
            (None, _) => {
                let all = frame["agents"].as_object().into_iter().flatten();
                live.agents = all
                    .filter(|(name, _)| live.users.contains(*name))
                    .filter_map(|(name, agent)| Some((name.clone(), agent.as_str()?)))
                    .filter(|(_, agent)| known(agent))
                    .map(|(name, agent)| (name, agent.to_string()))
                    .collect();
            }
            _ => {}
        }
    }

    /// A peer's receipt of one of our messages: recorded, then watchers
    /// and waiting Says hear of it.
    async fn on_receipt(&self, frame: Value) {
        let (room, project) = (self.room.clone(), self.project().to_string());
        let job = move |c: &rusqlite::Connection| receipts::record(c, &project, &frame);
        let submitted = self
            .rooms
            .ctx
            .store
            .submit(job, move |result| match result {
                Ok(Some(receipt)) => room.receipt_moved(receipt),
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(project = %room.project, %error, "could not store a receipt")
                }
            });
        if let Err(error) = submitted.await {
            tracing::error!(%error, "store unavailable");
        }
    }

    async fn notice(&self, text: &str) {
        let (project, text) = (self.project().to_string(), text.to_string());
        self.commit(move |c| Ok(vec![inbound::system(c, &project, &text)?]))
            .await;
    }

    /// What a connection's end means: false when the room is over (stopped,
    /// or refused for good: the waiting Start, or the room, hears why),
    /// true when it is worth connecting again after `backoff`.
    async fn after(
        &mut self,
        ended: Ended,
        ready: &mut Option<oneshot::Sender<Result<(), ChatError>>>,
        backoff: Duration,
    ) -> bool {
        let (rooms, room) = (self.rooms.clone(), self.room.clone());
        match ended {
            Ended::Stopped => false,
            Ended::Fatal(error) => {
                match ready.take() {
                    Some(tx) => {
                        // Nobody waits any more (a rejoin that went on in
                        // the background): the room fails as after a join.
                        if let Err(Err(error)) = tx.send(Err(error)) {
                            rooms.fail(&room, &error).await;
                        }
                    }
                    None => {
                        self.notice(&format!("[nexscope] left the room: {error}"))
                            .await;
                        rooms.fail(&room, &error).await;
                    }
                }
                false
            }
            Ended::Lost { code } => {
                let code = code.map(|c| c.to_string()).unwrap_or_else(|| "none".into());
                tracing::info!(project = %room.project, %code, retry_in = backoff.as_secs(), "relay connection lost");
                if ready.is_none() {
                    self.notice(&format!(
                        "[nexscope] relay disconnected (code={code}), reconnecting in {}s",
                        backoff.as_secs()
                    ))
                    .await;
                }
                true
            }
        }
    }

    /// One connection to the relay: connect, authenticate, then serve
    /// until it ends.
    async fn connect_and_serve(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        stop: &Shutdown,
        ready: &mut Option<oneshot::Sender<Result<(), ChatError>>>,
        backoff: &mut Duration,
    ) -> Ended {
        let mut ws = match self.connect().await {
            Ok(ws) => ws,
            Err(ended) => return ended,
        };
        let first = match self.authenticate(&mut ws).await {
            Ok(first) => first,
            Err(ended) => return ended,
        };
        self.room.live().error = None;
        *backoff = BACKOFF_START;
        self.receipts_ok = first["receipts"] == Value::Bool(true);
        self.status_sent = None;
        {
            let mut live = self.room.live();
            live.agents.clear();
            live.receipts = self.receipts_ok;
        }
        self.on_text(first).await;
        self.room.live().ready = true;
        tracing::info!(project = %self.room.project, name = %self.room.name, relay = %self.room.relay_label, "joined the room");
        if let Some(tx) = ready.take() {
            let _ = tx.send(Ok(()));
        }
        self.serve(&mut ws, commands, stop).await
    }

    async fn connect(&self) -> Result<Ws, Ended> {
        // A relay tier replays what we missed after the last message we
        // stored from it; a single relay ignores the parameter.
        let project = self.room.project.clone();
        let since = self
            .rooms
            .ctx
            .store
            .run(move |c| store::messages::last_seq(c, &project))
            .await
            .ok()
            .flatten();
        let url = relay_url(&self.room, since);
        let connector = url.starts_with("wss://").then(tls_connector);
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            url,
            Some(ws_config(&self.room)),
            true,
            connector,
        );
        match tokio::time::timeout(AUTH_TIMEOUT, connect).await {
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(error)) => {
                tracing::debug!(project = %self.room.project, %error, "cannot connect to the relay");
                Err(Ended::Lost { code: None })
            }
            Err(_) => Err(Ended::Lost { code: None }),
        }
    }

    /// Authentication: the first text frame that is not an error
    /// (docs/protocol.md §1.2); a close instead is the relay's refusal.
    async fn authenticate(&self, ws: &mut Ws) -> Result<Value, Ended> {
        let mut refused: Option<Value> = None;
        loop {
            match tokio::time::timeout(AUTH_TIMEOUT, ws.next()).await {
                Err(_) => return Err(Ended::Lost { code: None }),
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                    if frame["type"] == "error" {
                        refused = Some(frame);
                        continue;
                    }
                    return Ok(frame);
                }
                Ok(Some(Ok(Message::Close(close)))) => {
                    let code = close.map(|c| u16::from(c.code));
                    return Err(refusal(refused, code, &self.room.name));
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return Err(refusal(refused, None, &self.room.name)),
            }
        }
    }

    /// The joined connection: commands out, frames in, until the room
    /// stops, the daemon shuts down or the connection is lost.
    async fn serve(
        &mut self,
        ws: &mut Ws,
        commands: &mut mpsc::Receiver<Command>,
        stop: &Shutdown,
    ) -> Ended {
        let shutdown = self.rooms.ctx.shutdown.clone();
        let mut status = tokio::time::interval(STATUS_EVERY);
        loop {
            tokio::select! {
                _ = status.tick() => if let Err(ended) = self.send_status(ws).await {
                    return ended;
                },
                _ = stop.wait() => return self.leave(ws).await,
                _ = shutdown.wait() => return self.leave(ws).await,
                command = commands.recv() => match command {
                    None => return self.leave(ws).await,
                    Some(command) => if let Err(ended) = self.command(ws, command).await {
                        return ended;
                    },
                },
                incoming = ws.next() => if let Err(ended) = self.on_incoming(incoming).await {
                    return ended;
                },
            }
        }
    }

    async fn command(&mut self, ws: &mut Ws, command: Command) -> Result<(), Ended> {
        match command {
            // Its sender gave up (ack timeout while we were away): sending
            // it now would surprise everyone.
            Command::Send { ack, .. } if ack.is_closed() => Ok(()),
            Command::File { ack, .. } if ack.is_closed() => Ok(()),
            Command::Send { frame, msg_id, ack } => {
                self.waiters.retain(|_, w| match w {
                    Waiter::Text(tx) => !tx.is_closed(),
                    Waiter::File(tx) => !tx.is_closed(),
                });
                self.waiters.insert(msg_id, Waiter::Text(ack));
                send(ws, Message::text(frame)).await
            }
            Command::File { file, ack } => self.send_file(ws, file, ack).await,
            Command::Extension(frame) if self.receipts_ok => send(ws, Message::text(frame)).await,
            Command::Extension(_) => Ok(()),
        }
    }

    async fn leave(&mut self, ws: &mut Ws) -> Ended {
        let frame = CloseFrame {
            code: 1000.into(),
            reason: "client_shutdown".into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
        Ended::Stopped
    }

    async fn on_text(&mut self, frame: Value) {
        match frame["type"].as_str().unwrap_or_default() {
            "presence" => self.on_presence(&frame).await,
            "msg" => {
                let (project, snap) = (self.project().to_string(), self.snapshot());
                let stored = self.stored_receipt(&frame);
                let mentions_me = strings(&frame["to"]).contains(&self.room.name);
                self.commit_then(
                    move |c| inbound::message(c, &project, &snap, &frame),
                    stored,
                )
                .await;
                if mentions_me {
                    self.rooms.wake_soon(&self.room);
                }
            }
            // Only where the relay said it carries them: anything else
            // claiming to be one is not from a relay of ours.
            "receipt" if self.receipts_ok => self.on_receipt(frame).await,
            "status" if self.receipts_ok => self.on_status(&frame),
            "file-start" => self.on_file_start(frame).await,
            "file-end" => self.on_file_end(&frame).await,
            "ack" => self.on_ack(&frame),
            "error" => {
                let code = frame["code"].as_str().unwrap_or("unknown");
                let message = frame["message"]
                    .as_str()
                    .map(|m| format!(" — {m}"))
                    .unwrap_or_default();
                if code == "transfer_incomplete" {
                    if let Some(incoming) = self
                        .receiving
                        .take_if(|r| Some(r.msg_id.as_str()) == frame["msgId"].as_str())
                    {
                        incoming.discard();
                    }
                }
                self.notice(&format!("[nexscope] relay error: {code}{message}"))
                    .await;
            }
            "pong" => {}
            other => {
                tracing::debug!(project = %self.room.project, kind = other, "unknown_type_from_relay")
            }
        }
    }

    /// The relay's ack of one of ours: to whoever waits for it.
    fn on_ack(&mut self, frame: &Value) {
        let ack = Ack {
            delivered: strings(&frame["delivered"]),
            offline: strings(&frame["offline"]),
        };
        match frame["msgId"]
            .as_str()
            .and_then(|id| self.waiters.remove(id))
        {
            Some(Waiter::Text(tx)) => {
                let _ = tx.send(ack);
            }
            Some(Waiter::File(tx)) => {
                let _ = tx.send(Ok(ack));
            }
            None => {}
        }
    }

    async fn on_presence(&mut self, frame: &Value) {
        let (joined, left, users) = {
            let mut live = self.room.live();
            let before = live.users.clone();
            let now: BTreeSet<String> = match frame["users"].as_array() {
                Some(users) => users
                    .iter()
                    .filter_map(|u| u.as_str().map(String::from))
                    .collect(),
                None => {
                    let mut now = before.clone();
                    for name in strings(&frame["left"]) {
                        now.remove(&name);
                    }
                    now.extend(strings(&frame["joined"]));
                    now
                }
            };
            let joined: Vec<String> = now.difference(&before).cloned().collect();
            let left: Vec<String> = before.difference(&now).cloned().collect();
            live.users = now.clone();
            for name in &left {
                live.agents.remove(name);
            }
            (joined, left, now.into_iter().collect::<Vec<String>>())
        };
        let first = std::mem::replace(&mut self.first_presence, false);
        if !first && joined.is_empty() && left.is_empty() {
            return;
        }
        let (project, me) = (self.project().to_string(), self.room.name.clone());
        self.commit(move |c| inbound::presence(c, &project, &me, first, &joined, &left, &users))
            .await;
    }

    async fn on_file_start(&mut self, frame: Value) {
        if let Some(old) = self.receiving.take() {
            old.discard();
        }
        match Incoming::begin(&self.room.files_dir, &frame, self.room.settings.max_file) {
            Ok(incoming) => self.receiving = Some(incoming),
            Err(message) => self.notice(&format!("[nexscope] {message}")).await,
        }
        let (project, snap) = (self.project().to_string(), self.snapshot());
        self.commit(move |c| inbound::file_start(c, &project, &snap, &frame))
            .await;
    }

    async fn on_binary(&mut self, bytes: &[u8]) {
        let Some(incoming) = self.receiving.as_mut() else {
            tracing::debug!(project = %self.room.project, "orphan_binary");
            return;
        };
        if let Err(message) = incoming.write(bytes) {
            if let Some(incoming) = self.receiving.take() {
                incoming.discard();
            }
            self.notice(&format!("[nexscope] {message}")).await;
        }
    }

    async fn on_file_end(&mut self, frame: &Value) {
        let Some(incoming) = self
            .receiving
            .take_if(|r| Some(r.msg_id.as_str()) == frame["msgId"].as_str())
        else {
            tracing::debug!(project = %self.room.project, "stray_file_end");
            return;
        };
        let start = incoming.start.clone();
        let from = start["from"].as_str().unwrap_or_default().to_string();
        let thread = start["threadId"].as_str().unwrap_or_default().to_string();
        match incoming.finish(&from, &thread) {
            Ok(file) => {
                let (project, snap) = (self.project().to_string(), self.snapshot());
                self.commit(move |c| inbound::file_end(c, &project, &snap, &start, &file))
                    .await;
            }
            Err(message) => self.notice(&format!("[nexscope] {message}")).await,
        }
    }

    /// Streams a file: file-start, then a ping whose pong proves the relay
    /// gave us the transfer lock (a `transfer_busy` comes before the pong
    /// otherwise, and we retry after its hint), then the chunks and file-end.
    async fn send_file(
        &mut self,
        ws: &mut Ws,
        file: Box<files::Outgoing>,
        ack: oneshot::Sender<Result<Ack, ChatError>>,
    ) -> Result<(), Ended> {
        if !self.take_lock(ws, &file).await? {
            let _ = ack.send(Err(ChatError::JoinFailed {
                code: "transfer_busy".into(),
                message: "another file transfer held the room for 90 s; try again later".into(),
            }));
            return Ok(());
        }
        let mut reader = match tokio::fs::File::open(&file.path).await {
            Ok(reader) => reader,
            Err(e) => {
                let _ = ack.send(Err(ChatError::FileError {
                    path: file.path.display().to_string(),
                    message: e.to_string(),
                }));
                // The relay holds the lock for us: end the transfer cleanly.
                send(ws, Message::text(file.end_frame().to_string())).await?;
                return Ok(());
            }
        };
        let mut buf = vec![0u8; files::CHUNK];
        let mut sent = 0u64;
        let mut chunks = 0usize;
        while sent < file.size {
            let want = ((file.size - sent) as usize).min(files::CHUNK);
            if reader.read_exact(&mut buf[..want]).await.is_err() {
                break; // the file shrank: see below
            }
            sent += want as u64;
            chunks += 1;
            ws.feed(Message::Binary(Bytes::copy_from_slice(&buf[..want])))
                .await
                .map_err(|_| Ended::Lost { code: None })?;
            if chunks % FLUSH_EVERY == 0 {
                ws.flush().await.map_err(|_| Ended::Lost { code: None })?;
                // Keep reading while a large file streams: messages to us,
                // the relay's pings; else the relay finds us too slow.
                self.read_ready(ws).await?;
            }
        }
        if sent < file.size {
            // The file changed under us: end the transfer (the relay holds
            // the lock for us; receivers discard the short file) and say so.
            let _ = ack.send(Err(ChatError::FileError {
                path: file.path.display().to_string(),
                message: "the file changed while it was being sent; nothing was delivered".into(),
            }));
            return send(ws, Message::text(file.end_frame().to_string())).await;
        }
        self.waiters.insert(file.msg_id.clone(), Waiter::File(ack));
        send(ws, Message::text(file.end_frame().to_string())).await
    }

    /// The room's transfer lock for `file`: file-start, then a ping whose
    /// pong proves the relay gave us the lock (a `transfer_busy` comes before
    /// the pong otherwise, and we retry after its hint); false when it did
    /// not come free within `TRANSFER_WAIT`.
    async fn take_lock(&mut self, ws: &mut Ws, file: &files::Outgoing) -> Result<bool, Ended> {
        let deadline = tokio::time::Instant::now() + TRANSFER_WAIT;
        let ping = format!(
            r#"{{"type":"ping","from":{},"to":[]}}"#,
            serde_json::Value::from(self.room.name.as_str())
        );
        loop {
            send(ws, Message::text(file.start_frame().to_string())).await?;
            send(ws, Message::text(ping.clone())).await?;
            match self.await_lock(ws, deadline).await? {
                Lock::Granted => return Ok(true),
                Lock::Busy(retry) if tokio::time::Instant::now() + retry < deadline => {
                    tokio::time::sleep(retry).await
                }
                Lock::Busy(_) | Lock::Refused => return Ok(false),
            }
        }
    }

    /// Handles the frames that have already arrived, without waiting.
    async fn read_ready(&mut self, ws: &mut Ws) -> Result<(), Ended> {
        use futures_util::FutureExt;
        while let Some(incoming) = ws.next().now_or_never() {
            self.on_incoming(incoming).await?;
        }
        Ok(())
    }

    /// One frame from the relay, handled; Err when the connection ended.
    async fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(), Ended> {
        match incoming {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                self.on_text(frame).await;
            }
            Some(Ok(Message::Binary(bytes))) => self.on_binary(&bytes).await,
            Some(Ok(Message::Close(close))) => {
                return Err(Ended::Lost {
                    code: close.map(|c| u16::from(c.code)),
                });
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(Ended::Lost { code: None }),
        }
        Ok(())
    }

    /// Reads frames (handling them as usual) until the pong after our
    /// file-start, or a refusal of it.
    async fn await_lock(
        &mut self,
        ws: &mut Ws,
        deadline: tokio::time::Instant,
    ) -> Result<Lock, Ended> {
        loop {
            let frame = match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => return Ok(Lock::Refused),
                Ok(Some(Ok(Message::Text(text)))) => {
                    serde_json::from_str::<Value>(text.as_str()).unwrap_or(Value::Null)
                }
                Ok(Some(Ok(Message::Binary(bytes)))) => {
                    self.on_binary(&bytes).await;
                    continue;
                }
                Ok(Some(Ok(Message::Close(close)))) => {
                    return Err(Ended::Lost {
                        code: close.map(|c| u16::from(c.code)),
                    });
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return Err(Ended::Lost { code: None }),
            };
            match (frame["type"].as_str(), frame["code"].as_str()) {
                (Some("pong"), _) => return Ok(Lock::Granted),
                (Some("error"), Some("transfer_busy")) => {
                    let retry = frame["retryAfterMs"]
                        .as_u64()
                        .unwrap_or(2000)
                        .clamp(100, 10_000);
                    // Its pong follows; swallow it so it does not grant the next try.
                    self.await_pong(ws, deadline).await?;
                    return Ok(Lock::Busy(Duration::from_millis(retry)));
                }
                (Some("error"), Some("file_too_large" | "bad_file_start")) => {
                    self.on_text(frame).await;
                    return Ok(Lock::Refused);
                }
                _ => self.on_text(frame).await,
            }
        }
    }

    async fn await_pong(
        &mut self,
        ws: &mut Ws,
        deadline: tokio::time::Instant,
    ) -> Result<(), Ended> {
        loop {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => return Ok(()),
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame = serde_json::from_str::<Value>(text.as_str()).unwrap_or(Value::Null);
                    if frame["type"] == "pong" {
                        return Ok(());
                    }
                    self.on_text(frame).await;
                }
                Ok(Some(Ok(Message::Binary(bytes)))) => self.on_binary(&bytes).await,
                Ok(Some(Ok(Message::Close(close)))) => {
                    return Err(Ended::Lost {
                        code: close.map(|c| u16::from(c.code)),
                    });
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) | Ok(None) => return Err(Ended::Lost { code: None }),
            }
        }
    }
}

enum Lock {
    Granted,
    Busy(Duration),
    Refused,
}

async fn send(ws: &mut Ws, message: Message) -> Result<(), Ended> {
    ws.send(message)
        .await
        .map_err(|_| Ended::Lost { code: None })
}

/// A connection that closed before authentication: fatal when the relay
/// said why (or closed with a refusal code), else worth retrying.
fn refusal(error: Option<Value>, close: Option<u16>, name: &str) -> Ended {
    if let Some(frame) = error {
        let code = frame["code"].as_str().unwrap_or("refused").to_string();
        let message = frame["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| code.clone());
        return Ended::Fatal(match code.as_str() {
            "name_taken" => ChatError::NameTaken {
                name: name.to_string(),
            },
            _ => ChatError::JoinFailed { code, message },
        });
    }
    match close {
        Some(1008) => Ended::Fatal(ChatError::BadToken {
            detail: "close 1008".into(),
        }),
        Some(code @ (4009 | 4011 | 4012 | 4013 | 4015)) => Ended::Fatal(ChatError::JoinFailed {
            code: "auth_failed".into(),
            message: format!("the relay refused us (close {code})"),
        }),
        code => Ended::Lost { code },
    }
}
