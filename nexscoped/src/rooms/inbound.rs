//! What an inbound frame does to a project's store (docs/protocol.md §2.6):
//! history de-duplicated by msgId, notifications, inbox rows and auto tasks
//! under the stored hop count. Each function runs inside one store
//! job, so a frame's effects commit together; the events it returns are
//! published only after that commit.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::store::{self, StoreError};
use nexscope_proto::api::chat::{Event, InboxItem, ReceivedFile};
use nexscope_proto::config::Mode;
use nexscope_proto::render;
use nexscope_proto::time::now_ms;

/// The room's settings at the time a frame arrived.
#[derive(Clone)]
pub struct Snapshot {
    pub me: String,
    pub mode: Mode,
    pub hop_limit: u32,
    pub peer_index: BTreeMap<String, u32>,
}

fn now() -> i64 {
    now_ms() as i64
}

pub fn system(conn: &Connection, project: &str, text: &str) -> Result<Event, StoreError> {
    let ts = now();
    store::events::append(
        conn,
        project,
        "system",
        ts,
        &json!({"kind": "system", "ts": ts, "text": text}),
    )
}

/// The strings of a JSON array (anything else: none).
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A peer's `hopCount` as we keep it. A peer can send anything there
/// (2^63−1, −5, 1.5, "x"), and one more reply to it must still fit in an
/// i64; past the largest hop limit every count means the same ("over the
/// limit"). So: a number is truncated into 0..=MAX_HOP_LIMIT, anything else
/// is 0.
pub fn hop_count(value: &Value) -> i64 {
    let max = i64::from(nexscope_proto::config::MAX_HOP_LIMIT);
    // `as` saturates: 1e300 is i64::MAX, then the clamp makes it the max.
    value.as_f64().map_or(0, |n| (n as i64).clamp(0, max))
}

fn text_of<'a>(frame: &'a Value, key: &str) -> &'a str {
    frame[key].as_str().unwrap_or_default()
}

/// The sender's label and the target as this member sees them.
fn label_and_target(
    conn: &Connection,
    project: &str,
    snap: &Snapshot,
    frame: &Value,
) -> Result<(String, String), StoreError> {
    let from = text_of(frame, "from");
    let index = store::inbox::peer_index(conn, project, from, &snap.peer_index)?;
    let label = render::peer_label(text_of(frame, "role"), index, from);
    Ok((label, render::target(&strings(&frame["to"]), &snap.me)))
}

/// The sender's role label (`[userAgent2 bob]`) of a message already
/// received, as the hooks showed it (read only: its index was given then).
pub fn sender_label(
    conn: &Connection,
    project: &str,
    configured: &BTreeMap<String, u32>,
    frame: &Value,
) -> Result<String, StoreError> {
    let from = text_of(frame, "from");
    let index = store::inbox::known_peer_index(conn, project, from, configured)?.unwrap_or(0);
    Ok(render::peer_label(text_of(frame, "role"), index, from))
}

/// A `msg` (docs/protocol.md §2.6): history, a notification, then for a
/// direct mention an auto task (auto mode, under the hop limit) or an inbox
/// row.
pub fn message(
    conn: &Connection,
    project: &str,
    snap: &Snapshot,
    frame: &Value,
) -> Result<Vec<Event>, StoreError> {
    let msg_id = text_of(frame, "msgId");
    let thread = text_of(frame, "threadId");
    let ts = frame["ts"].as_i64().unwrap_or_else(now);
    if !store::messages::insert(conn, project, "in", msg_id, thread, ts, frame)? {
        return Ok(Vec::new()); // seen before: handled once
    }
    let (label, target) = label_and_target(conn, project, snap, frame)?;
    let to = strings(&frame["to"]);
    let mentions_me = to.contains(&snap.me);
    let hop_count = hop_count(&frame["hopCount"]);
    let row = json!({
        "kind": "msg", "ts": ts, "from": text_of(frame, "from"), "to": to, "role": text_of(frame, "role"),
        "threadId": thread, "text": text_of(frame, "text"), "hopCount": hop_count, "label": label,
        "target": target, "mentionsMe": mentions_me, "isBroadcast": to.is_empty(), "msgId": msg_id,
    });
    let mut events = vec![store::events::append(conn, project, "msg", ts, &row)?];
    if !mentions_me {
        return Ok(events);
    }
    let replies = store::inbox::auto_replies(conn, project, thread)?;
    if snap.mode == Mode::Auto && replies < snap.hop_limit {
        let task = json!({
            "ts": ts, "threadId": thread, "from": text_of(frame, "from"), "role": text_of(frame, "role"),
            "text": text_of(frame, "text"), "hopCount": hop_count, "msgId": msg_id, "label": label, "mentions": to,
        });
        store::inbox::add_task(conn, project, thread, now(), hop_count, &task)?;
    } else {
        let item = InboxItem {
            thread_id: thread.into(),
            from: text_of(frame, "from").into(),
            role: text_of(frame, "role").into(),
            mentions: to,
            text: text_of(frame, "text").into(),
            hop_count,
            msg_id: msg_id.into(),
            label,
            ts,
            status: "pending".into(),
        };
        store::inbox::add(conn, project, &item)?;
        if snap.mode == Mode::Auto {
            let text = format!(
                "thread {thread} reached hop limit ({}); latest mention fell through to inbox (see `nexscopectl inbox`)",
                snap.hop_limit
            );
            events.push(system(conn, project, &text)?);
        }
    }
    Ok(events)
}

/// Presence changes as events: a snapshot for the first list, then one row
/// per user who came or went (never ourselves).
pub fn presence(
    conn: &Connection,
    project: &str,
    me: &str,
    first: bool,
    joined: &[String],
    left: &[String],
    users: &[String],
) -> Result<Vec<Event>, StoreError> {
    let ts = now();
    if first {
        let row = json!({"kind": "presence", "ts": ts, "event": "snapshot", "users": users});
        return Ok(vec![store::events::append(
            conn, project, "presence", ts, &row,
        )?]);
    }
    let mut events = Vec::new();
    for (event, names) in [("joined", joined), ("left", left)] {
        for user in names.iter().filter(|u| *u != me) {
            let row =
                json!({"kind": "presence", "ts": ts, "event": event, "user": user, "users": users});
            events.push(store::events::append(conn, project, "presence", ts, &row)?);
        }
    }
    Ok(events)
}

/// A `file-start`: history and a notification. Files never become inbox
/// rows or auto tasks.
pub fn file_start(
    conn: &Connection,
    project: &str,
    snap: &Snapshot,
    frame: &Value,
) -> Result<Vec<Event>, StoreError> {
    let msg_id = text_of(frame, "msgId");
    let ts = frame["ts"].as_i64().unwrap_or_else(now);
    if !store::messages::insert(
        conn,
        project,
        "in",
        msg_id,
        text_of(frame, "threadId"),
        ts,
        frame,
    )? {
        return Ok(Vec::new());
    }
    let (label, target) = label_and_target(conn, project, snap, frame)?;
    let row = json!({
        "kind": "file_start", "ts": ts, "from": text_of(frame, "from"), "to": strings(&frame["to"]),
        "role": text_of(frame, "role"), "threadId": text_of(frame, "threadId"),
        "name": frame["attachment"]["name"], "size": frame["attachment"]["size"], "msgId": msg_id,
        "label": label, "target": target,
    });
    Ok(vec![store::events::append(
        conn,
        project,
        "file_start",
        ts,
        &row,
    )?])
}

/// A file received whole and checked: recorded, with its notification.
pub fn file_end(
    conn: &Connection,
    project: &str,
    snap: &Snapshot,
    start: &Value,
    file: &ReceivedFile,
) -> Result<Vec<Event>, StoreError> {
    store::messages::add_file(conn, project, file)?;
    let (label, target) = label_and_target(conn, project, snap, start)?;
    let ts = now();
    let row = json!({
        "kind": "file_end", "ts": ts, "from": file.from, "to": strings(&start["to"]), "role": text_of(start, "role"),
        "threadId": file.thread_id, "name": file.name, "size": file.size, "msgId": file.msg_id,
        "label": label, "target": target, "path": file.path, "sha256": file.sha256,
    });
    Ok(vec![store::events::append(
        conn, project, "file_end", ts, &row,
    )?])
}

#[cfg(test)]
mod tests {
    use super::hop_count;
    use serde_json::json;

    #[test]
    fn hop_counts_from_peers_are_bounded_before_any_arithmetic() {
        assert_eq!(hop_count(&json!(2)), 2);
        assert_eq!(hop_count(&json!(i64::MAX)), 100);
        assert_eq!(hop_count(&json!(u64::MAX)), 100);
        assert_eq!(hop_count(&json!(1e300)), 100);
        assert_eq!(hop_count(&json!(-5)), 0);
        assert_eq!(hop_count(&json!(i64::MIN)), 0);
        assert_eq!(hop_count(&json!(1.5)), 1);
        assert_eq!(hop_count(&json!("7")), 0);
        assert_eq!(hop_count(&json!(null)), 0);
        assert!(hop_count(&json!(i64::MAX)).checked_add(1).is_some());
    }
}
