//! Mentions waiting for a person (the inbox), mentions an agent should answer
//! on its own (auto tasks), per-thread auto-reply counts, and peer indexes.
//! All of it stored, so hop limits and labels survive restarts.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{StoreError, parse_json};
use nexscope_proto::api::chat::InboxItem;

/// A pending inbox row is marked expired after 24 h; v1 only displayed it
/// as expired (docs/protocol.md §2.10).
pub const EXPIRY_MS: i64 = 24 * 60 * 60 * 1000;
/// An auto task older than 5 minutes is stale and moves to the inbox
/// (docs/protocol.md §2.9).
pub const STALE_TASK_MS: i64 = 5 * 60 * 1000;

fn item_json(item: &InboxItem) -> Result<String, StoreError> {
    serde_json::to_string(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn add(conn: &Connection, project: &str, item: &InboxItem) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO inbox (project, thread_id, ts, status, item) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        project,
        item.thread_id,
        item.ts,
        item.status,
        item_json(item)?
    ])?;
    Ok(())
}

fn items(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<(i64, InboxItem)>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows: Vec<(i64, String, String)> = stmt
        .query_map(args, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(id, status, json)| {
            let mut item: InboxItem =
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            item.status = status;
            Ok((id, item))
        })
        .collect()
}

/// Pending rows from `offset` (at most `limit`), the latest `archive`
/// handled ones (oldest first), and how many are pending in all.
pub fn page(
    conn: &Connection,
    project: &str,
    offset: u64,
    limit: u64,
    archive: u64,
) -> Result<(Vec<InboxItem>, Vec<InboxItem>, u64), StoreError> {
    let strip = |rows: Vec<(i64, InboxItem)>| rows.into_iter().map(|(_, item)| item).collect();
    let pending: Vec<InboxItem> = strip(items(
        conn,
        "SELECT id, status, item FROM inbox WHERE project = ?1 AND status = 'pending' ORDER BY id LIMIT ?2 OFFSET ?3",
        params![project, limit as i64, offset as i64],
    )?);
    let mut handled: Vec<InboxItem> = strip(items(
        conn,
        "SELECT id, status, item FROM inbox WHERE project = ?1 AND status != 'pending' ORDER BY id DESC LIMIT ?2",
        params![project, archive as i64],
    )?);
    handled.reverse();
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM inbox WHERE project = ?1 AND status = 'pending'")?
        .query_row([project], |r| r.get(0))?;
    Ok((pending, handled, total as u64))
}

/// Moves the thread's pending rows to `status`; the rows moved.
pub fn resolve(
    conn: &Connection,
    project: &str,
    thread: &str,
    status: &str,
) -> Result<Vec<InboxItem>, StoreError> {
    let rows = items(
        conn,
        "SELECT id, status, item FROM inbox WHERE project = ?1 AND thread_id = ?2 AND status = 'pending' ORDER BY id",
        params![project, thread],
    )?;
    for (id, _) in &rows {
        conn.prepare_cached("UPDATE inbox SET status = ?2 WHERE id = ?1")?
            .execute(params![id, status])?;
    }
    Ok(rows
        .into_iter()
        .map(|(_, mut item)| {
            item.status = status.to_string();
            item
        })
        .collect())
}

pub fn add_task(
    conn: &Connection,
    project: &str,
    thread: &str,
    ts: i64,
    hop_count: i64,
    task: &Value,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO auto_tasks (project, thread_id, ts, hop_count, task) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
        params![project, thread, ts, hop_count, task.to_string()],
    )?;
    Ok(())
}

/// Auto tasks, oldest first, of one thread or all.
pub fn tasks(
    conn: &Connection,
    project: &str,
    thread: Option<&str>,
) -> Result<Vec<Value>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT task FROM auto_tasks WHERE project = ?1 AND (?2 IS NULL OR thread_id = ?2) ORDER BY id",
    )?;
    let rows: Vec<String> = stmt
        .query_map(params![project, thread], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    rows.iter().map(|t| parse_json(t)).collect()
}

pub fn delete_tasks(conn: &Connection, project: &str, thread: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM auto_tasks WHERE project = ?1 AND thread_id = ?2")?
        .execute(params![project, thread])?;
    Ok(())
}

pub fn auto_replies(conn: &Connection, project: &str, thread: &str) -> Result<u32, StoreError> {
    Ok(conn
        .prepare_cached("SELECT auto_replies FROM threads WHERE project = ?1 AND thread_id = ?2")?
        .query_row(params![project, thread], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

pub fn count_auto_reply(conn: &Connection, project: &str, thread: &str) -> Result<u32, StoreError> {
    conn.prepare_cached(
        "INSERT INTO threads (project, thread_id, auto_replies) VALUES (?1, ?2, 1)
         ON CONFLICT (project, thread_id) DO UPDATE SET auto_replies = auto_replies + 1",
    )?
    .execute(params![project, thread])?;
    auto_replies(conn, project, thread)
}

/// Stale auto tasks become pending inbox rows; pending rows older than a
/// day become expired. Returns the tasks moved.
pub fn sweep(conn: &Connection, project: &str, now: i64) -> Result<Vec<InboxItem>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, task FROM auto_tasks WHERE project = ?1 AND ts < ?2 ORDER BY id",
    )?;
    let stale: Vec<(i64, String)> = stmt
        .query_map(params![project, now - STALE_TASK_MS], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut moved = Vec::new();
    for (id, task) in stale {
        let task = parse_json(&task)?;
        let item = InboxItem {
            thread_id: task["threadId"].as_str().unwrap_or_default().to_string(),
            from: task["from"].as_str().unwrap_or_default().to_string(),
            role: task["role"].as_str().unwrap_or("userAgent").to_string(),
            mentions: task["mentions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            text: task["text"].as_str().unwrap_or_default().to_string(),
            hop_count: task["hopCount"].as_i64().unwrap_or(0),
            msg_id: task["msgId"].as_str().unwrap_or_default().to_string(),
            label: task["label"].as_str().unwrap_or_default().to_string(),
            ts: task["ts"].as_i64().unwrap_or(now),
            status: "pending".into(),
        };
        add(conn, project, &item)?;
        conn.prepare_cached("DELETE FROM auto_tasks WHERE id = ?1")?
            .execute([id])?;
        moved.push(item);
    }
    conn.prepare_cached(
        "UPDATE inbox SET status = 'expired' WHERE project = ?1 AND status = 'pending' AND ts < ?2",
    )?
    .execute(params![project, now - EXPIRY_MS])?;
    Ok(moved)
}

/// The peer's index if it has one (read only).
pub fn known_peer_index(
    conn: &Connection,
    project: &str,
    name: &str,
    configured: &BTreeMap<String, u32>,
) -> Result<Option<u32>, StoreError> {
    if let Some(index) = configured.get(name) {
        return Ok(Some(*index));
    }
    Ok(conn
        .prepare_cached("SELECT idx FROM peers WHERE project = ?1 AND name = ?2")?
        .query_row(params![project, name], |r| r.get(0))
        .optional()?)
}

/// The peer's index for role labels: fixed by config, else first contact
/// order after the highest configured one, kept once given
/// (docs/protocol.md §2.8).
pub fn peer_index(
    conn: &Connection,
    project: &str,
    name: &str,
    configured: &BTreeMap<String, u32>,
) -> Result<u32, StoreError> {
    if let Some(index) = known_peer_index(conn, project, name, configured)? {
        return Ok(index);
    }
    let stored: u32 = conn.query_row(
        "SELECT COALESCE(MAX(idx), 0) FROM peers WHERE project = ?1",
        [project],
        |r| r.get(0),
    )?;
    let next = stored.max(configured.values().copied().max().unwrap_or(0)) + 1;
    conn.prepare_cached("INSERT INTO peers (project, name, idx) VALUES (?1, ?2, ?3)")?
        .execute(params![project, name, next])?;
    Ok(next)
}
