//! Agent sessions: which conversation each (name, cwd) holds, on which
//! backend, and what its turns cost. A record outlives its process, so any
//! restart resumes the same conversation.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use nexscope_proto::api::agent::{Backend, TurnRecord, Usage};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_latest_turns_are_kept() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::schema_for_tests(&mut conn);
        let turn = |n: u64| TurnRecord {
            turn: format!("t{n}"),
            started_at: n,
            finished_at: n,
            model: None,
            usage: Usage::default(),
            error: None,
            cancelled: false,
        };
        for n in 0..10 {
            add_turn(&conn, "s", "/w", &turn(n)).unwrap();
        }
        add_turn(&conn, "other", "/w", &turn(0)).unwrap();
        prune(&conn, "s", "/w", 3).unwrap();
        let kept = turns(&conn, "s", "/w", 100).unwrap();
        let names: Vec<&str> = kept.iter().map(|t| t.turn.as_str()).collect();
        assert_eq!(names, ["t7", "t8", "t9"]);
        assert_eq!(turns(&conn, "other", "/w", 5).unwrap().len(), 1);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub name: String,
    pub cwd: String,
    pub backend: Backend,
    /// Claude's session id or Codex's thread id, once known.
    pub agent_id: Option<String>,
    pub model: Option<String>,
    pub permission_mode: String,
    pub skills: Vec<String>,
    /// The latest init metadata (nx-ce's fields), as JSON.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub turns: u64,
    pub usage: Usage,
    pub started_at: u64,
    pub updated_at: u64,
    pub last_error: Option<String>,
}

const COLUMNS: &str =
    "name, cwd, backend, agent_id, model, permission_mode, skills, metadata, turns,
    input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, started_at,
    updated_at, last_error";

pub fn save(conn: &Connection, r: &AgentRecord) -> Result<(), StoreError> {
    let skills =
        serde_json::to_string(&r.skills).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let metadata = r
        .metadata
        .as_ref()
        .map(|m| serde_json::Value::Object(m.clone()).to_string());
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO agent_sessions ({COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))?
    .execute(params![
        r.name,
        r.cwd,
        r.backend.as_str(),
        r.agent_id,
        r.model,
        r.permission_mode,
        skills,
        metadata,
        r.turns as i64,
        r.usage.input_tokens as i64,
        r.usage.output_tokens as i64,
        r.usage.cache_creation_input_tokens as i64,
        r.usage.cache_read_input_tokens as i64,
        r.usage.cost_usd,
        r.started_at as i64,
        r.updated_at as i64,
        r.last_error,
    ])?;
    Ok(())
}

/// Writes what a turn changes: everything but the skills and metadata.
pub fn save_progress(conn: &Connection, r: &AgentRecord) -> Result<(), StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE agent_sessions SET agent_id = ?3, model = ?4, permission_mode = ?5, turns = ?6,
                input_tokens = ?7, output_tokens = ?8, cache_creation_tokens = ?9,
                cache_read_tokens = ?10, cost_usd = ?11, updated_at = ?12, last_error = ?13
             WHERE name = ?1 AND cwd = ?2",
        )?
        .execute(params![
            r.name,
            r.cwd,
            r.agent_id,
            r.model,
            r.permission_mode,
            r.turns as i64,
            r.usage.input_tokens as i64,
            r.usage.output_tokens as i64,
            r.usage.cache_creation_input_tokens as i64,
            r.usage.cache_read_input_tokens as i64,
            r.usage.cost_usd,
            r.updated_at as i64,
            r.last_error,
        ])?;
    // No row yet (forgotten meanwhile): write it whole, without metadata.
    if updated == 0 {
        save(conn, r)?;
    }
    Ok(())
}

/// The five usage columns (input, output, cache creation, cache read,
/// cost) from column `first` on.
fn usage_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Usage> {
    let count = |i: usize| row.get::<_, i64>(first + i).map(|n| n.max(0) as u64);
    Ok(Usage {
        input_tokens: count(0)?,
        output_tokens: count(1)?,
        cache_creation_input_tokens: count(2)?,
        cache_read_input_tokens: count(3)?,
        cost_usd: row.get(first + 4)?,
    })
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(AgentRecord, String, Option<String>)> {
    let backend: String = row.get(2)?;
    let skills: String = row.get(6)?;
    let metadata: Option<String> = row.get(7)?;
    let count = |i: usize| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
    Ok((
        AgentRecord {
            name: row.get(0)?,
            cwd: row.get(1)?,
            backend: if backend == "codex" {
                Backend::Codex
            } else {
                Backend::Claude
            },
            agent_id: row.get(3)?,
            model: row.get(4)?,
            permission_mode: row.get(5)?,
            skills: Vec::new(),
            metadata: None,
            turns: count(8)?,
            usage: usage_at(row, 9)?,
            started_at: count(14)?,
            updated_at: count(15)?,
            last_error: row.get(16)?,
        },
        skills,
        metadata,
    ))
}

fn finish(
    (mut record, skills, metadata): (AgentRecord, String, Option<String>),
) -> Result<AgentRecord, StoreError> {
    record.skills =
        serde_json::from_str(&skills).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    record.metadata = match metadata {
        Some(text) => match super::parse_json(&text)? {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        },
        None => None,
    };
    Ok(record)
}

pub fn get(conn: &Connection, name: &str, cwd: &str) -> Result<Option<AgentRecord>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM agent_sessions WHERE name = ?1 AND cwd = ?2"),
        [name, cwd],
        from_row,
    )
    .optional()?
    .map(finish)
    .transpose()
}

pub fn list(conn: &Connection) -> Result<Vec<AgentRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM agent_sessions ORDER BY updated_at DESC, name, cwd"
    ))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(finish).collect()
}

/// Forgets a session and its turns.
pub fn delete(conn: &Connection, name: &str, cwd: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM agent_sessions WHERE name = ?1 AND cwd = ?2")?
        .execute([name, cwd])?;
    conn.prepare_cached("DELETE FROM agent_turns WHERE name = ?1 AND cwd = ?2")?
        .execute([name, cwd])?;
    Ok(())
}

pub fn add_turn(
    conn: &Connection,
    name: &str,
    cwd: &str,
    t: &TurnRecord,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO agent_turns (name, cwd, turn, started_at, finished_at, model, input_tokens,
            output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, error, cancelled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        name,
        cwd,
        t.turn,
        t.started_at as i64,
        t.finished_at as i64,
        t.model,
        t.usage.input_tokens as i64,
        t.usage.output_tokens as i64,
        t.usage.cache_creation_input_tokens as i64,
        t.usage.cache_read_input_tokens as i64,
        t.usage.cost_usd,
        t.error,
        t.cancelled,
    ])?;
    // A session keeps its latest turns; its totals keep the rest. Pruning
    // walks the kept ones, so it runs once in a while, not every turn.
    if conn.last_insert_rowid() % 256 == 0 {
        prune(conn, name, cwd, TURNS_KEPT)?;
    }
    Ok(())
}

/// Deletes all but the latest `keep` turns of a session.
fn prune(conn: &Connection, name: &str, cwd: &str, keep: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM agent_turns WHERE name = ?1 AND cwd = ?2 AND id <= (
            SELECT id FROM agent_turns WHERE name = ?1 AND cwd = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)",
    )?
    .execute(params![name, cwd, keep])?;
    Ok(())
}

/// Turns kept per session, for `usage --turns`.
pub const TURNS_KEPT: i64 = 10_000;

/// The latest `limit` turns of a session, oldest first.
pub fn turns(
    conn: &Connection,
    name: &str,
    cwd: &str,
    limit: u32,
) -> Result<Vec<TurnRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT turn, started_at, finished_at, model, input_tokens, output_tokens,
            cache_creation_tokens, cache_read_tokens, cost_usd, error, cancelled
         FROM agent_turns WHERE name = ?1 AND cwd = ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let mut rows = stmt
        .query_map(params![name, cwd, limit], |row| {
            let count = |i: usize| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
            Ok(TurnRecord {
                turn: row.get(0)?,
                started_at: count(1)?,
                finished_at: count(2)?,
                model: row.get(3)?,
                usage: usage_at(row, 4)?,
                error: row.get(9)?,
                cancelled: row.get(10)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.reverse();
    Ok(rows)
}
