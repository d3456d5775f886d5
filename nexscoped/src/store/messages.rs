//! History (every message in and out, de-duplicated by msgId) and received
//! files.

use rusqlite::{Connection, params};
use serde_json::Value;

use super::{StoreError, parse_json};
use nexscope_proto::api::chat::ReceivedFile;

/// Records a message; false when this msgId was already recorded (a frame
/// seen twice is handled once).
pub fn insert(
    conn: &Connection,
    project: &str,
    dir: &str,
    msg_id: &str,
    thread_id: &str,
    ts: i64,
    frame: &Value,
) -> Result<bool, StoreError> {
    let changed = conn.prepare_cached("INSERT INTO messages (project, dir, msg_id, thread_id, ts, frame) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (project, dir, msg_id) DO NOTHING")?.execute(
        params![project, dir, msg_id, thread_id, ts, frame.to_string()],
    )?;
    Ok(changed == 1)
}

/// The highest relay-tier history sequence among the messages received in
/// the project: where a reconnect's catch-up starts.
pub fn last_seq(conn: &Connection, project: &str) -> Result<Option<u64>, StoreError> {
    let seq: Option<i64> = conn
        .prepare_cached(
            "SELECT MAX(json_extract(frame, '$.seq')) FROM messages WHERE project = ?1 AND dir = 'in'",
        )?
        .query_row(params![project], |r| r.get(0))?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()))
}

/// The last `limit` messages, oldest first, as `{dir, ...frame}`.
pub fn history(conn: &Connection, project: &str, limit: i64) -> Result<Vec<Value>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT dir, frame FROM (SELECT id, dir, frame FROM messages WHERE project = ?1 ORDER BY id DESC LIMIT ?2)
         ORDER BY id",
    )?;
    let rows: Vec<(String, String)> = stmt
        .query_map(params![project, limit], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(dir, frame)| {
            let mut value = parse_json(&frame)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("dir".into(), dir.into());
            }
            Ok(value)
        })
        .collect()
}

/// Who took part in a thread besides `me`: senders of messages in, and
/// recipients of messages out. None when the thread has no history at all.
pub fn participants(
    conn: &Connection,
    project: &str,
    thread: &str,
    me: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT dir, frame FROM messages WHERE project = ?1 AND thread_id = ?2 ORDER BY id",
    )?;
    let rows: Vec<(String, String)> = stmt
        .query_map(params![project, thread], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut names: Vec<String> = Vec::new();
    for (dir, frame) in rows {
        let frame = parse_json(&frame)?;
        let mut add = |name: &str| {
            if name != me && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        };
        if dir == "in" {
            if let Some(from) = frame["from"].as_str() {
                add(from);
            }
        } else if let Some(to) = frame["to"].as_array() {
            to.iter().filter_map(Value::as_str).for_each(add);
        }
    }
    Ok(Some(names))
}

pub fn add_file(conn: &Connection, project: &str, file: &ReceivedFile) -> Result<(), StoreError> {
    let json = serde_json::to_string(file).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    conn.prepare_cached("INSERT INTO files (project, msg_id, ts, file) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (project, msg_id) DO NOTHING")?.execute(
        params![project, file.msg_id, file.ts, json],
    )?;
    Ok(())
}

pub fn files(conn: &Connection, project: &str) -> Result<Vec<ReceivedFile>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT file FROM files WHERE project = ?1 ORDER BY ts, msg_id")?;
    let rows: Vec<String> = stmt
        .query_map([project], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    rows.iter()
        .map(|text| serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}
