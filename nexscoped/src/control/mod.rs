//! The control socket server: accepts connections, checks the peer's uid,
//! reads NUL-framed calls and answers them in order, one task per connection.
//!
//! What it must never do: let one connection's garbage, size or panic reach
//! another connection or the daemon. Each connection is bounded (message size,
//! pending bytes, write time) and runs in its own task; a task that panics is
//! logged and forgotten. Handlers live one module per interface.

mod agent;
mod chat;
mod daemon;
mod listener;
mod service;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use listener::{ListenError, Listener};

use crate::state::Daemon;
use nexscope_proto::api;
use nexscope_proto::varlink::codec::{self, Framer};
use nexscope_proto::varlink::{Call, MAX_MESSAGE, Reply, VarlinkError};

/// Concurrent connections. Hooks, MCP shims and watches of one user need
/// dozens; a thousand bounds the memory a runaway script can take.
const MAX_CONNECTIONS: usize = 1024;
/// A client that does not read its replies for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Read size per syscall; calls are small, large ones take several reads.
const READ_CHUNK: usize = 16 * 1024;
/// A connection with no call for this long is closed (clients reconnect).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A call begun but not finished within this is not coming: the
/// connection is closed, and the bytes it held with it.
const PARTIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections over the limit being told so at once, at most.
const REFUSALS: usize = 64;

/// Why a handler did not produce a final reply.
pub(crate) enum Failure {
    /// Answer with this varlink error.
    Error(VarlinkError),
    /// The client went away (or stopped reading) mid-stream.
    Disconnected,
}

impl From<VarlinkError> for Failure {
    fn from(error: VarlinkError) -> Self {
        Failure::Error(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(_: std::io::Error) -> Self {
        Failure::Disconnected
    }
}

/// Writes the replies of one call: nothing for oneway, `continues` only when
/// the caller asked for more.
pub(crate) struct Replies<'a> {
    sink: Sink<'a>,
    oneway: bool,
    more: bool,
}

/// Where replies go: a client's socket, or a caller inside the daemon (the
/// web page's bridge), which reads them from a channel.
enum Sink<'a> {
    Socket(&'a mut OwnedWriteHalf),
    Channel(&'a mpsc::Sender<Reply>),
}

impl Replies<'_> {
    pub async fn send(&mut self, parameters: Value, continues: bool) -> std::io::Result<()> {
        if continues && !self.more {
            return Ok(());
        }
        self.write(&Reply::ok(parameters, continues)).await
    }

    async fn write(&mut self, reply: &Reply) -> std::io::Result<()> {
        if self.oneway {
            return Ok(());
        }
        match &mut self.sink {
            Sink::Socket(writer) => write_reply(writer, reply).await,
            // A caller that stops reading is treated as a client that does.
            Sink::Channel(sender) => {
                match sender.send_timeout(reply.clone(), WRITE_TIMEOUT).await {
                    Ok(()) => Ok(()),
                    Err(_) => Err(std::io::ErrorKind::BrokenPipe.into()),
                }
            }
        }
    }
}

/// Runs one call from inside the daemon as if it came over the socket (the
/// same methods, checks and errors): every reply, the last included, goes to
/// `sink`. Dropping the future ends a streaming call, as a hang-up does.
pub(crate) async fn call_local(daemon: &Arc<Daemon>, call: &Call, sink: &mpsc::Sender<Reply>) {
    let mut replies = Replies {
        sink: Sink::Channel(sink),
        oneway: false,
        more: call.more,
    };
    let reply = match dispatch(daemon, call, &mut replies).await {
        Ok(parameters) => Reply::ok(parameters, false),
        Err(Failure::Error(error)) => Reply::from_error(&error),
        Err(Failure::Disconnected) => return,
    };
    let _ = replies.write(&reply).await;
}

async fn write_reply(writer: &mut OwnedWriteHalf, reply: &Reply) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&codec::encode(reply))).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Accepts until shutdown, then gives open connections a moment to finish.
/// `probe` is the watchdog's proof that this loop still turns.
pub(crate) async fn serve(
    listener: Listener,
    daemon: Arc<Daemon>,
    mut probe: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let Listener {
        listener,
        bound,
        label,
    } = listener;
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, socket = %label, "cannot serve the control socket");
            daemon.request_shutdown();
            return;
        }
    };
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let uid = nexscope_proto::paths::uid();
    let accept = crate::accept::Loop {
        what: "control",
        listener,
        shutdown: daemon.shutdown_signal(),
        probe: Some(&mut probe),
    };
    accept
        .run(|stream, _, connections| {
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                tracing::warn!(
                    limit = MAX_CONNECTIONS,
                    "too many control connections; refusing one"
                );
                if let Ok(permit) = refusals.clone().try_acquire_owned() {
                    connections.spawn(async move {
                        refuse_busy(stream).await;
                        drop(permit);
                    });
                }
                return;
            };
            let allowed = peer_allowed(&stream, uid);
            let daemon = daemon.clone();
            connections.spawn(async move {
                connection(stream, daemon, allowed).await;
                drop(permit);
            });
        })
        .await;
    if let Some(path) = bound {
        let _ = std::fs::remove_file(path);
    }
}

/// Only our own uid may call us (SO_PEERCRED), whatever the socket's mode.
fn peer_allowed(stream: &UnixStream, uid: u32) -> bool {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == uid => true,
        Ok(cred) => {
            tracing::warn!(peer_uid = cred.uid(), peer_pid = ?cred.pid(), "control connection from another user refused");
            false
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the peer's credentials; refusing");
            false
        }
    }
}

/// One client: calls in, replies out, in order, until it hangs up, breaks the
/// protocol or the daemon stops.
async fn connection(stream: UnixStream, daemon: Arc<Daemon>, allowed: bool) {
    let (mut reader, mut writer) = stream.into_split();
    let mut framer = Framer::new(MAX_MESSAGE);
    let shutdown = daemon.shutdown_signal();
    loop {
        let call = tokio::select! {
            biased;
            call = next_call(&mut reader, &mut writer, &mut framer) => call,
            _ = shutdown.wait() => return,
        };
        let Some(call) = call else { return };
        if !allowed {
            let error = VarlinkError::permission_denied();
            let _ = write_reply(&mut writer, &Reply::from_error(&error)).await;
            return;
        }
        let mut replies = Replies {
            sink: Sink::Socket(&mut writer),
            oneway: call.oneway,
            more: call.more,
        };
        // A streaming call waits on events: notice a client that left. Any
        // other call runs to its end even if its caller gave up, so that a
        // message sent is also recorded and a room started is kept or undone.
        let outcome = if call.more {
            tokio::select! {
                outcome = dispatch(&daemon, &call, &mut replies) => outcome,
                _ = hung_up(&mut reader, &mut framer) => return,
            }
        } else {
            dispatch(&daemon, &call, &mut replies).await
        };
        let reply = match outcome {
            Ok(parameters) => Reply::ok(parameters, false),
            Err(Failure::Error(error)) => Reply::from_error(&error),
            Err(Failure::Disconnected) => return,
        };
        if replies.write(&reply).await.is_err() {
            return;
        }
    }
}

/// The client's next call; None when it hung up, stayed idle too long, or
/// sent something too large or not a call object (answered once: the client
/// and we no longer agree on where messages begin, so the connection ends).
async fn next_call(
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    framer: &mut Framer,
) -> Option<Call> {
    let message = loop {
        match framer.next_message() {
            Ok(Some(message)) => break message,
            Ok(None) if more_bytes(reader, framer).await => continue,
            Ok(None) => return None,
            Err(too_large) => {
                tracing::warn!(
                    limit = too_large.limit,
                    "control message too large; closing the connection"
                );
                return refuse_message(writer).await;
            }
        }
    };
    match serde_json::from_slice::<Call>(&message) {
        Ok(call) => Some(call),
        Err(_) => {
            tracing::debug!(
                bytes = message.len(),
                "not a varlink call; closing the connection"
            );
            refuse_message(writer).await
        }
    }
}

/// The one answer to a message that cannot be a call.
async fn refuse_message(writer: &mut OwnedWriteHalf) -> Option<Call> {
    let error = VarlinkError::invalid_parameter("message");
    let _ = write_reply(writer, &Reply::from_error(&error)).await;
    None
}

/// Answers a connection over the limit: its first call gets
/// TooManyConnections instead of a hang-up that reads as a broken pipe.
/// The call is read first: closing with it unread would reset the socket
/// and the answer with it.
async fn refuse_busy(stream: UnixStream) {
    let (mut reader, mut writer) = stream.into_split();
    let mut framer = Framer::new(MAX_MESSAGE);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while !matches!(framer.next_message(), Ok(Some(_)) | Err(_)) {
            if !read_some(&mut reader, &mut framer).await {
                break;
            }
        }
    })
    .await;
    let error = VarlinkError::coded(
        api::daemon::ErrorName::TooManyConnections.name(),
        "too_many_connections",
        format!(
            "nexscoped already serves {MAX_CONNECTIONS} control connections; close idle clients (watches, MCP servers) or try again"
        ),
    );
    let _ = write_reply(&mut writer, &Reply::from_error(&error)).await;
}

/// Waits for more of the next call: false when the client hung up, stayed
/// idle for `IDLE_TIMEOUT`, or began a call and did not finish it within
/// `PARTIAL_TIMEOUT`.
async fn more_bytes(reader: &mut OwnedReadHalf, framer: &mut Framer) -> bool {
    let patience = if framer.pending() > 0 {
        PARTIAL_TIMEOUT
    } else {
        IDLE_TIMEOUT
    };
    matches!(
        tokio::time::timeout(patience, read_some(reader, framer)).await,
        Ok(true)
    )
}

/// Reads once into the framer; false at end of stream or on error.
async fn read_some(reader: &mut OwnedReadHalf, framer: &mut Framer) -> bool {
    let mut chunk = [0u8; READ_CHUNK];
    match reader.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            framer.feed(&chunk[..n]);
            true
        }
    }
}

/// Resolves when the client hangs up, or pipelines more than one message's
/// worth while a call runs. Bytes read meanwhile are kept for later calls.
async fn hung_up(reader: &mut OwnedReadHalf, framer: &mut Framer) {
    while read_some(reader, framer).await {
        if framer.pending() > 2 * MAX_MESSAGE {
            return;
        }
    }
}

async fn dispatch(
    daemon: &Arc<Daemon>,
    call: &Call,
    replies: &mut Replies<'_>,
) -> Result<Value, Failure> {
    if call.upgrade {
        return Err(VarlinkError::invalid_parameter("upgrade").into());
    }
    let (interface, _) = call.interface_and_member();
    match interface {
        api::service::INTERFACE => Ok(service::call(call)?),
        api::daemon::INTERFACE => daemon::call(daemon, call, replies).await,
        api::chat::INTERFACE => chat::call(daemon, call, replies).await,
        api::agent::INTERFACE => agent::call(daemon, call, replies).await,
        _ => Err(VarlinkError::interface_not_found(interface).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_and_half_sent_connections_are_given_up() {
        let (client, server) = UnixStream::pair().unwrap();
        let (mut reader, _writer) = server.into_split();
        let mut framer = Framer::new(MAX_MESSAGE);
        let (_client_reader, mut client_writer) = client.into_split();
        // Half a call, then nothing: closed after PARTIAL_TIMEOUT.
        client_writer.write_all(b"{\"method\":").await.unwrap();
        assert!(more_bytes(&mut reader, &mut framer).await);
        let started = tokio::time::Instant::now();
        assert!(!more_bytes(&mut reader, &mut framer).await);
        assert_eq!(started.elapsed(), PARTIAL_TIMEOUT);
        // Nothing at all: closed after IDLE_TIMEOUT.
        let mut framer = Framer::new(MAX_MESSAGE);
        let started = tokio::time::Instant::now();
        assert!(!more_bytes(&mut reader, &mut framer).await);
        assert_eq!(started.elapsed(), IDLE_TIMEOUT);
    }
}
