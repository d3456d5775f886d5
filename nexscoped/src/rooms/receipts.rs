//! Receipts (docs/protocol.md §1.13, §2.14): how far a message got at each
//! recipient. For our messages we record `relayed` from the relay's ack and
//! the later states from the recipients' receipt frames; for messages to us
//! we send `stored` once committed, `surfaced` once a hook, an MCP client or
//! a push handed them out, and `answered` once we wrote on their thread.
//!
//! Frames go out through the room's connection, which sends them only when
//! the relay said it carries receipts (a v1 relay never does); a receipt
//! due while the connection is down waits in the room's queue, and is
//! dropped when that queue is full.

use std::collections::HashSet;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{Value, json};

use super::{Context, Room, Rooms};
use crate::store::StoreError;
use crate::store::receipts::{self as table, Dir, Step};
use nexscope_proto::api::agent::Usage;
use nexscope_proto::api::chat::{ChatError, MCP_CONSUMERS, Receipt, ReceiptState, ThreadCost};
use nexscope_proto::time::now_ms;

/// A receipt frame from `me` about `msg_id` (sent by `to`).
pub fn frame(
    me: &str,
    to: &str,
    msg_id: &str,
    thread: &str,
    state: ReceiptState,
    via: Option<&str>,
) -> String {
    with_usage(me, to, msg_id, thread, state, via, None)
}

/// `frame`, with what the answer cost when a hosted agent wrote it.
fn with_usage(
    me: &str,
    to: &str,
    msg_id: &str,
    thread: &str,
    state: ReceiptState,
    via: Option<&str>,
    usage: Option<&Usage>,
) -> String {
    let mut frame = json!({
        "type": "receipt", "from": me, "to": [to], "msgId": msg_id, "threadId": thread,
        "state": state.as_str(),
    });
    if let Some(via) = via {
        frame["via"] = json!(via);
    }
    if let Some(usage) = usage {
        frame["usage"] = json!(usage);
    }
    frame.to_string()
}

/// How a consumer of notifications surfaces a message: the MCP shim's
/// family polls for its agent, anything else is a hook.
pub fn via_of(consumer: &str) -> &'static str {
    if consumer.split(':').next() == Some(MCP_CONSUMERS) {
        "mcp"
    } else {
        "hook"
    }
}

/// A receipt frame from a peer about one of our messages: recorded when it
/// moves that receipt forward. A peer cannot claim `relayed` (only our
/// relay's ack can), nor a receipt for a message that is not ours.
pub fn record(
    conn: &Connection,
    project: &str,
    frame: &Value,
) -> Result<Option<Receipt>, StoreError> {
    let text = |key: &str| frame[key].as_str().unwrap_or_default();
    let (msg_id, peer) = (text("msgId"), text("from"));
    let state = match ReceiptState::parse(text("state")) {
        Some(ReceiptState::Relayed) | None => return Ok(None),
        Some(state) => state,
    };
    if msg_id.is_empty() || peer.is_empty() {
        return Ok(None);
    }
    let Some(thread) = table::our_thread(conn, project, msg_id)? else {
        return Ok(None);
    };
    let via = (state == ReceiptState::Surfaced)
        .then(|| text("via"))
        .filter(|v| matches!(*v, "hook" | "mcp" | "push"));
    // Only an answer has a cost; figures a person could not have meant
    // (negative, not numbers) make it none.
    let usage = (state == ReceiptState::Answered)
        .then(|| serde_json::from_value::<Usage>(frame["usage"].clone()).ok())
        .flatten()
        .filter(|u| u.cost_usd.is_finite() && u.cost_usd >= 0.0);
    let step = Step {
        dir: Dir::Out,
        msg_id,
        thread_id: &thread,
        peer,
        state,
        via,
        ts: now_ms() as i64,
        usage: usage.as_ref(),
    };
    table::advance(conn, project, &step)
}

/// A message to us, as a receipt is about it: (msgId, thread, sender).
pub type Theirs = (String, String, String);

/// The messages among notification rows, as receipts name them.
pub fn theirs(rows: impl Iterator<Item = Value>, me: &str) -> Vec<Theirs> {
    rows.filter_map(|row| {
        let text = |key: &str| row[key].as_str().map(str::to_string);
        let (msg, thread, from) = (text("msgId")?, text("threadId")?, text("from")?);
        (!msg.is_empty() && from != me).then_some((msg, thread, from))
    })
    .collect()
}

impl Room {
    /// Hands a receipt frame to the connection; dropped when its queue is
    /// full (receipts never hold up messages).
    pub fn send_receipt(&self, frame: String) {
        let _ = self.commands.try_send(super::Command::Extension(frame));
    }

    /// Tells watchers and waiting Says that one of our receipts moved.
    pub fn receipt_moved(&self, receipt: Receipt) {
        let _ = self.receipts.send(receipt);
    }
}

/// Reports `state` for messages to us back to their senders, each once.
pub async fn report(
    ctx: &Context,
    room: &Room,
    messages: Vec<Theirs>,
    state: ReceiptState,
    via: Option<&'static str>,
) -> Result<(), ChatError> {
    if messages.is_empty() {
        return Ok(());
    }
    let project = room.project.clone();
    let ts = now_ms() as i64;
    let moved = ctx
        .store
        .run(move |c| {
            let mut moved = Vec::new();
            for (msg_id, thread, from) in messages {
                let step = Step {
                    dir: Dir::In,
                    msg_id: &msg_id,
                    thread_id: &thread,
                    peer: &from,
                    state,
                    via,
                    ts,
                    usage: None,
                };
                if table::advance(c, &project, &step)?.is_some() {
                    moved.push((msg_id, thread, from));
                }
            }
            Ok(moved)
        })
        .await?;
    for (msg_id, thread, from) in moved {
        room.send_receipt(frame(&room.name, &from, &msg_id, &thread, state, via));
    }
    Ok(())
}

/// We wrote on `thread`: its messages to us are answered.
pub async fn answered(ctx: &Context, room: &Room, thread: &str) -> Result<(), ChatError> {
    let (project, key) = (room.project.clone(), thread.to_string());
    let open = ctx
        .store
        .run(move |c| table::unanswered(c, &project, &key))
        .await?;
    let messages = open
        .into_iter()
        .map(|(msg, from)| (msg, thread.to_string(), from))
        .collect();
    report(ctx, room, messages, ReceiptState::Answered, None).await
}

/// Our hosted agent answered on `thread` at this cost: it goes with the
/// answered receipt of the newest message to us there (once; the others
/// answered by the same turn carry none, so nothing is counted twice).
pub async fn answered_cost(
    ctx: &Context,
    room: &Room,
    thread: &str,
    usage: Usage,
) -> Result<(), ChatError> {
    let (project, key) = (room.project.clone(), thread.to_string());
    let ts = now_ms() as i64;
    let moved = ctx
        .store
        .run(move |c| {
            let Some((msg_id, from)) = table::newest_in(c, &project, &key)? else {
                return Ok(None);
            };
            let step = Step {
                dir: Dir::In,
                msg_id: &msg_id,
                thread_id: &key,
                peer: &from,
                state: ReceiptState::Answered,
                via: None,
                ts,
                usage: Some(&usage),
            };
            Ok(table::advance(c, &project, &step)?.map(|_| (msg_id, from, usage)))
        })
        .await?;
    if let Some((msg_id, from, usage)) = moved {
        let answered = ReceiptState::Answered;
        let frame = with_usage(
            &room.name,
            &from,
            &msg_id,
            thread,
            answered,
            None,
            Some(&usage),
        );
        room.send_receipt(frame);
    }
    Ok(())
}

/// Our message (text or file) is out: relayed to `delivered`, and what
/// came to us on its thread is answered. It was sent, so a receipt that
/// cannot be kept is logged, never reported as a failed send.
pub async fn sent(ctx: &Context, room: &Room, msg_id: &str, thread: &str, delivered: &[String]) {
    if let Err(error) = relayed(ctx, room, msg_id, thread, delivered).await {
        tracing::warn!(project = %room.project, %error, "relayed receipts not recorded");
    }
    if let Err(error) = answered(ctx, room, thread).await {
        tracing::warn!(project = %room.project, %error, "answered receipts not sent");
    }
}

/// The relay wrote our message to `delivered`.
pub async fn relayed(
    ctx: &Context,
    room: &Room,
    msg_id: &str,
    thread: &str,
    delivered: &[String],
) -> Result<(), ChatError> {
    let (project, msg_id, thread) = (room.project.clone(), msg_id.to_string(), thread.to_string());
    let delivered = delivered.to_vec();
    let ts = now_ms() as i64;
    let moved = ctx
        .store
        .run(move |c| {
            let mut moved = Vec::new();
            for peer in &delivered {
                let step = Step {
                    dir: Dir::Out,
                    msg_id: &msg_id,
                    thread_id: &thread,
                    peer,
                    state: ReceiptState::Relayed,
                    via: None,
                    ts,
                    usage: None,
                };
                moved.extend(table::advance(c, &project, &step)?);
            }
            Ok(moved)
        })
        .await?;
    for receipt in moved {
        room.receipt_moved(receipt);
    }
    Ok(())
}

impl Rooms {
    /// What the room's conversations between agents cost.
    pub async fn costs(&self, project: &str) -> Result<Vec<ThreadCost>, ChatError> {
        let room = self.get(project)?;
        let key = room.project.clone();
        Ok(self.ctx.store.run(move |c| table::costs(c, &key)).await?)
    }

    /// Our hosted agent's answer on `thread` cost `usage`.
    pub async fn answer_cost(
        &self,
        project: &str,
        thread: &str,
        usage: Usage,
    ) -> Result<(), ChatError> {
        let room = self.get(project)?;
        answered_cost(&self.ctx, &room, thread, usage).await
    }

    /// The receipts of our message `id`, or of our messages on thread `id`.
    pub async fn receipts(&self, project: &str, id: &str) -> Result<Vec<Receipt>, ChatError> {
        let room = self.get(project)?;
        if id.is_empty() || id.len() > 200 {
            return Err(ChatError::bad_args(
                "id must be a msgId or a thread id (1 to 200 characters)",
            ));
        }
        let (key, id) = (room.project.clone(), id.to_string());
        Ok(self.ctx.store.run(move |c| table::of(c, &key, &id)).await?)
    }

    /// Waits until every one of `targets` reached `state` for `msg_id`, or
    /// `seconds` passed; the receipts as they then are. `moves` was
    /// subscribed before the message went out, so no step is missed.
    pub async fn wait_receipts(
        &self,
        room: &Room,
        msg_id: &str,
        targets: &[String],
        (state, seconds): (ReceiptState, u64),
        mut moves: tokio::sync::broadcast::Receiver<Receipt>,
    ) -> Result<Vec<Receipt>, ChatError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        // Across a relay without receipts nothing will come: say so at once.
        let carried = room.live().receipts;
        loop {
            let receipts = self.receipts(&room.project, msg_id).await?;
            let reached: HashSet<&str> = receipts
                .iter()
                .filter(|r| ReceiptState::parse(&r.state).is_some_and(|s| s >= state))
                .map(|r| r.recipient.as_str())
                .collect();
            if !carried || targets.iter().all(|t| reached.contains(t.as_str())) {
                return Ok(receipts);
            }
            // Any move (or a lagging receiver) is a reason to look again.
            match tokio::time::timeout_at(deadline, moves.recv()).await {
                Err(_) => return Ok(receipts),
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return Ok(receipts),
                Ok(_) => {}
            }
        }
    }
}

/// Our messages' receipts folded into history rows (`receipts` on each
/// message we sent).
pub fn with_receipts(
    conn: &Connection,
    project: &str,
    mut items: Vec<Value>,
) -> Result<Vec<Value>, StoreError> {
    for item in items.iter_mut().filter(|i| i["dir"] == "out") {
        let Some(msg_id) = item["msgId"].as_str().map(str::to_string) else {
            continue;
        };
        let receipts = table::of(conn, project, &msg_id)?;
        item["receipts"] = json!(
            receipts
                .into_iter()
                .filter(|r| r.msg_id == msg_id)
                .collect::<Vec<_>>()
        );
    }
    Ok(items)
}
