//! The page's WebSocket: varlink calls in, their replies out, each tagged
//! with the page's id for it. A call runs in-process through the same
//! handlers as the control socket (`control::call_local`), so the page can
//! do nothing that `nexscopectl` cannot, checked the same way; only the
//! methods a page needs are open to it, and a file to send comes by upload,
//! never as a path.
//!
//! Page → daemon: `{"id": 7, "method": "io.nexscope.Chat.Watch",
//! "parameters": {…}, "more": true}`, or `{"id": 7, "cancel": true}` to end
//! a streaming call. Daemon → page: the varlink reply with `id` added.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinSet};

use super::Ctx;
use super::guard::Session;
use crate::control;
use nexscope_proto::varlink::{Call, Reply, VarlinkError};

/// The methods a page may call.
const OPEN: &[&str] = &[
    "io.nexscope.Daemon.Status",
    "io.nexscope.Chat.Projects",
    "io.nexscope.Chat.Status",
    "io.nexscope.Chat.Who",
    "io.nexscope.Chat.Say",
    "io.nexscope.Chat.Inbox",
    "io.nexscope.Chat.Accept",
    "io.nexscope.Chat.Reject",
    "io.nexscope.Chat.Append",
    "io.nexscope.Chat.Mode",
    "io.nexscope.Chat.History",
    "io.nexscope.Chat.Files",
    "io.nexscope.Chat.Watch",
    "io.nexscope.Chat.Costs",
    "io.nexscope.Chat.Receipts",
    "io.nexscope.Chat.Live",
    "io.nexscope.Agent.Query",
    "io.nexscope.Agent.Cancel",
    "io.nexscope.Agent.Sessions",
    "io.nexscope.Agent.Status",
    "io.nexscope.Agent.Close",
    "io.nexscope.Agent.Usage",
];
/// The largest message a page may send (a message's text is in it).
const MAX_MESSAGE: usize = 1024 * 1024;
/// Calls one page may have running at once (streams included).
const MAX_CALLS: usize = 64;
/// Replies waiting for a slow page, per page.
const OUTBOX: usize = 256;
/// How often an open page's session is checked (logout, expiry).
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Deserialize)]
struct PageCall {
    id: u64,
    #[serde(default)]
    method: String,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    cancel: bool,
}

/// `GET /api/ws`: one page's bridge (the guard has checked its Origin and
/// session).
pub(super) async fn upgrade(
    State(ctx): State<Arc<Ctx>>,
    Extension(session): Extension<Session>,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(permit) = ctx.pages.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many pages open; close some and reload\n",
        )
            .into_response();
    };
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            run(socket, ctx, session.0).await;
            drop(permit);
        })
}

async fn run(socket: WebSocket, ctx: Arc<Ctx>, session: String) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut outbox) = mpsc::channel::<Message>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(message) = outbox.recv().await {
            let last = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || last {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut calls = Calls::new();
    let shutdown = ctx.daemon.shutdown_signal();
    let mut check = tokio::time::interval(SESSION_CHECK);
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => calls.take(&ctx, text.as_str(), &out).await,
                Some(Ok(Message::Binary(_))) => {
                    let _ = out.send(tagged(0, &Reply::from_error(&VarlinkError::invalid_parameter("message")))).await;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            Some(Ok((task, id))) = calls.streams.join_next_with_id(), if !calls.streams.is_empty() => {
                calls.finished(task, id);
            }
            _ = check.tick() => if !ctx.web.logins.alive(&session) {
                // Logged out, or the session expired: the page goes too.
                let close = CloseFrame { code: close_code::POLICY, reason: "logged out".into() };
                let _ = out.send(Message::Close(Some(close))).await;
                break;
            },
            _ = shutdown.wait() => break,
        }
    }
    // Streams end with the page (as a hung-up client's do); calls that
    // change something run to their end.
    calls.streams.abort_all();
    drop(out);
    let _ = writer.await;
}

/// One page's calls: its streams by the page's id (cancellable), and a
/// bound on its other calls, which run to their end even when the page
/// goes (a message sent is also recorded, as on the control socket).
struct Calls {
    streams: JoinSet<u64>,
    running: HashMap<u64, AbortHandle>,
    others: Arc<Semaphore>,
}

impl Calls {
    fn new() -> Calls {
        Calls {
            streams: JoinSet::new(),
            running: HashMap::new(),
            others: Arc::new(Semaphore::new(MAX_CALLS)),
        }
    }

    /// A stream ended: forgotten, unless its id already names a newer one.
    fn finished(&mut self, task: tokio::task::Id, id: u64) {
        if self.running.get(&id).is_some_and(|h| h.id() == task) {
            self.running.remove(&id);
        }
    }

    async fn take(&mut self, ctx: &Arc<Ctx>, text: &str, out: &mpsc::Sender<Message>) {
        let call: PageCall = match serde_json::from_str(text) {
            Ok(call) => call,
            Err(_) => {
                let error = VarlinkError::invalid_parameter("message");
                let _ = out.send(tagged(0, &Reply::from_error(&error))).await;
                return;
            }
        };
        if call.cancel {
            if let Some(handle) = self.running.remove(&call.id) {
                handle.abort();
            }
            return;
        }
        let permit = match self.admit(&call) {
            Ok(permit) => permit,
            Err(error) => {
                let _ = out.send(tagged(call.id, &Reply::from_error(&error))).await;
                return;
            }
        };
        let (id, daemon, out) = (call.id, ctx.daemon.clone(), out.clone());
        let call = Call {
            method: call.method,
            parameters: call.parameters,
            more: call.more,
            ..Call::default()
        };
        if call.more {
            let handle = self.streams.spawn(async move {
                forward(&daemon, &call, id, &out).await;
                id
            });
            self.running.insert(id, handle);
        } else {
            tokio::spawn(async move {
                forward(&daemon, &call, id, &out).await;
                drop(permit);
            });
        }
    }

    /// Whether the page may make this call now; for a call that is not a
    /// stream, its slot.
    fn admit(&self, call: &PageCall) -> Result<Option<OwnedSemaphorePermit>, VarlinkError> {
        if !OPEN.contains(&call.method.as_str()) {
            return Err(VarlinkError::method_not_found(&call.method));
        }
        let file = call.parameters.as_ref().and_then(|p| p.get("file"));
        if call.method == "io.nexscope.Chat.Say" && file.is_some_and(|f| !f.is_null()) {
            // The daemon would read any file of its user's; a page sends
            // files by upload.
            return Err(VarlinkError::invalid_parameter("file"));
        }
        let busy = || {
            VarlinkError::coded(
                "io.nexscope.Daemon.TooManyConnections",
                "too_many_calls",
                format!("a page may run {MAX_CALLS} streams and {MAX_CALLS} other calls at once"),
            )
        };
        if !call.more {
            return self
                .others
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| busy());
        }
        if self.running.contains_key(&call.id) {
            return Err(VarlinkError::invalid_parameter("id"));
        }
        if self.running.len() >= MAX_CALLS {
            return Err(busy());
        }
        Ok(None)
    }
}

/// Runs one call and sends each of its replies to the page.
async fn forward(
    daemon: &Arc<crate::state::Daemon>,
    call: &Call,
    id: u64,
    out: &mpsc::Sender<Message>,
) {
    let (sink, mut replies) = mpsc::channel(16);
    let run = async move {
        control::call_local(daemon, call, &sink).await;
    };
    let pass = async {
        while let Some(reply) = replies.recv().await {
            if out.send(tagged(id, &reply)).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(run, pass);
}

/// Runs one call that has one reply (for the file routes).
pub(super) async fn call_once(
    daemon: &Arc<crate::state::Daemon>,
    method: &str,
    parameters: Value,
) -> Reply {
    let (sink, mut replies) = mpsc::channel(1);
    let call = Call::new(method, parameters);
    control::call_local(daemon, &call, &sink).await;
    drop(sink);
    replies.recv().await.unwrap_or_else(|| {
        Reply::from_error(&VarlinkError::coded(
            "io.nexscope.Chat.Internal",
            "internal",
            "the call ended without a reply",
        ))
    })
}

/// A reply as the page reads it: the varlink reply with the call's id.
fn tagged(id: u64, reply: &Reply) -> Message {
    let mut value = serde_json::to_value(reply).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("id".into(), id.into());
    }
    Message::Text(value.to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_methods_exist() {
        use nexscope_proto::api::{agent, chat, daemon};
        for method in OPEN {
            let (interface, member) = method.rsplit_once('.').unwrap();
            let known = match interface {
                chat::INTERFACE => chat::Method::MEMBERS.contains(&member),
                agent::INTERFACE => agent::Method::MEMBERS.contains(&member),
                daemon::INTERFACE => daemon::Method::MEMBERS.contains(&member),
                _ => false,
            };
            assert!(known, "{method} is not a method of ours");
        }
    }
}
