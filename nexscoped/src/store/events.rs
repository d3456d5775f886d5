//! Notifications: the events a project's watchers, hooks and MCP clients
//! see, numbered, and each named consumer's position in them.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{StoreError, parse_json};
use crate::api::chat::Event;

/// Events kept per project; older ones are pruned. A consumer that falls
/// this far behind has missed them.
pub const KEEP: i64 = 10_000;

pub fn append(
    conn: &Connection,
    project: &str,
    kind: &str,
    ts: i64,
    row: &Value,
) -> Result<Event, StoreError> {
    conn.prepare_cached("INSERT INTO events (project, kind, ts, row) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![project, kind, ts, row.to_string()])?;
    let seq = conn.last_insert_rowid();
    // Now and then, forget what no consumer can still need.
    if seq % 1000 == 0 {
        prune(conn, project)?;
    }
    Ok(Event {
        seq,
        kind: kind.to_string(),
        ts,
        row: row.clone(),
    })
}

fn since(conn: &Connection, project: &str, seq: i64) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, kind, ts, row FROM events WHERE project = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let rows: Vec<(i64, String, i64, String)> = stmt
        .query_map(params![project, seq], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(seq, kind, ts, row)| {
            Ok(Event {
                seq,
                kind,
                ts,
                row: parse_json(&row)?,
            })
        })
        .collect()
}

/// The events `consumer` has not seen, and it has now.
pub fn drain(conn: &Connection, project: &str, consumer: &str) -> Result<Vec<Event>, StoreError> {
    let seen: i64 = conn
        .query_row(
            "SELECT seq FROM consumers WHERE project = ?1 AND name = ?2",
            params![project, consumer],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let events = since(conn, project, seen)?;
    if let Some(last) = events.last() {
        conn.prepare_cached(
            "INSERT INTO consumers (project, name, seq) VALUES (?1, ?2, ?3)
             ON CONFLICT (project, name) DO UPDATE SET seq = ?3",
        )?
        .execute(params![project, consumer, last.seq])?;
    }
    Ok(events)
}

pub fn prune(conn: &Connection, project: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM events WHERE project = ?1 AND seq <= (SELECT MAX(seq) FROM events WHERE project = ?1) - ?2")?.execute(
        params![project, KEEP],
    )?;
    Ok(())
}

/// Events after `seq`, for a watcher that fell behind the live stream.
pub fn after(conn: &Connection, project: &str, seq: i64) -> Result<Vec<Event>, StoreError> {
    since(conn, project, seq)
}

/// The newest event's number (0 when there is none).
pub fn last_seq(conn: &Connection, project: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE project = ?1")?
        .query_row([project], |r| r.get(0))?)
}
