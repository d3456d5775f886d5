//! Room memberships: which projects are in which room under which name, so a
//! restarted daemon rejoins them.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub root: String,
    pub name: String,
    pub mode: String,
    /// None: the daemon's embedded relay.
    pub relay: Option<String>,
    pub room: String,
    pub joined: bool,
    pub error: Option<String>,
}

fn now() -> i64 {
    nexscope_proto::time::now_ms() as i64
}

pub fn save(conn: &Connection, m: &Membership) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO projects (root, name, mode, relay, room, joined, error, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (root) DO UPDATE SET name = ?2, mode = ?3, relay = ?4, room = ?5,
             joined = ?6, error = ?7, updated = ?8",
    )?
    .execute(params![
        m.root,
        m.name,
        m.mode,
        m.relay,
        m.room,
        m.joined,
        m.error,
        now()
    ])?;
    Ok(())
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Membership> {
    Ok(Membership {
        root: row.get(0)?,
        name: row.get(1)?,
        mode: row.get(2)?,
        relay: row.get(3)?,
        room: row.get(4)?,
        joined: row.get(5)?,
        error: row.get(6)?,
    })
}

const COLUMNS: &str = "root, name, mode, relay, room, joined, error";

pub fn get(conn: &Connection, root: &str) -> Result<Option<Membership>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM projects WHERE root = ?1"),
            [root],
            from_row,
        )
        .optional()?)
}

/// The projects to rejoin at start.
pub fn joined(conn: &Connection) -> Result<Vec<Membership>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM projects WHERE joined = 1 ORDER BY root"
    ))?;
    let rows = stmt.query_map([], from_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn set_joined(
    conn: &Connection,
    root: &str,
    joined: bool,
    error: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE projects SET joined = ?2, error = ?3, updated = ?4 WHERE root = ?1",
    )?
    .execute(params![root, joined, error, now()])?;
    Ok(())
}

pub fn set_mode(conn: &Connection, root: &str, mode: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE projects SET mode = ?2, updated = ?3 WHERE root = ?1")?
        .execute(params![root, mode, now()])?;
    Ok(())
}
