//! Notifications: the events a project's watchers, hooks and MCP clients
//! see, numbered, and each named consumer's position in them.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{StoreError, parse_json};
use nexscope_proto::api::chat::Event;

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

/// Events after `seq`, oldest first, at most `limit` of them.
fn since(conn: &Connection, project: &str, seq: i64, limit: i64) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, kind, ts, row FROM events WHERE project = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows: Vec<(i64, String, i64, String)> = stmt
        .query_map(params![project, seq, limit], |r| {
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

/// Events one drain hands out at most: a hook puts them in front of a model
/// and a reply must stay far below the varlink message limit.
pub const DRAIN_EVENTS: i64 = 500;
/// Bytes of event rows one drain hands out at most (one event always goes).
pub const DRAIN_BYTES: usize = 1024 * 1024;

/// Where `consumer` has got to. A new "family:instance" consumer starts where
/// the furthest of its family is: a new session sees what arrives from now
/// on and what no session of its kind has seen yet, not the whole past.
fn position(conn: &Connection, project: &str, consumer: &str) -> Result<i64, StoreError> {
    let seen = conn
        .prepare_cached("SELECT seq FROM consumers WHERE project = ?1 AND name = ?2")?
        .query_row(params![project, consumer], |row| row.get(0))
        .optional()?;
    if let Some(seen) = seen {
        return Ok(seen);
    }
    let Some((family, _)) = consumer.split_once(':') else {
        return Ok(0);
    };
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(MAX(seq), 0) FROM consumers
             WHERE project = ?1 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || ':')",
        )?
        .query_row(params![project, family], |row| row.get(0))?)
}

/// The events `consumer` has not seen, at most `limit` and within the byte
/// bound, and whether more wait. The position moves past exactly what is
/// returned; with `limit` 0 the consumer is only registered.
pub fn drain(
    conn: &Connection,
    project: &str,
    consumer: &str,
    limit: i64,
) -> Result<(Vec<Event>, bool), StoreError> {
    let seen = position(conn, project, consumer)?;
    let mut events = since(conn, project, seen, limit + 1)?;
    let mut more = events.len() as i64 > limit;
    let mut bytes = 0;
    let fit = events
        .iter()
        .take(limit as usize)
        .take_while(|e| {
            bytes += e.row.to_string().len();
            bytes <= DRAIN_BYTES
        })
        .count()
        .max(usize::from(limit > 0));
    if fit < events.len() {
        more = true;
        events.truncate(fit);
    }
    // Also recorded when nothing is new, so a new instance keeps its start.
    let last = events.last().map_or(seen, |e| e.seq);
    conn.prepare_cached(
        "INSERT INTO consumers (project, name, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (project, name) DO UPDATE SET seq = ?3",
    )?
    .execute(params![project, consumer, last])?;
    Ok((events, more))
}

pub fn prune(conn: &Connection, project: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM events WHERE project = ?1 AND seq <= (SELECT MAX(seq) FROM events WHERE project = ?1) - ?2")?.execute(
        params![project, KEEP],
    )?;
    Ok(())
}

/// Events after `seq`, for a watcher that fell behind the live stream.
pub fn after(conn: &Connection, project: &str, seq: i64) -> Result<Vec<Event>, StoreError> {
    since(conn, project, seq, i64::MAX)
}

/// The newest event's number (0 when there is none).
pub fn last_seq(conn: &Connection, project: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE project = ?1")?
        .query_row([project], |r| r.get(0))?)
}
