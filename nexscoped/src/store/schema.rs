//! Schema migrations, versioned in code: each entry runs once, in order, in
//! a transaction, and `user_version` records how far a database has come.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: rooms (issue 4).
    "CREATE TABLE projects (
        root TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        mode TEXT NOT NULL,
        relay TEXT,
        room TEXT NOT NULL DEFAULT '',
        joined INTEGER NOT NULL,
        error TEXT,
        updated INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL,
        dir TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        frame TEXT NOT NULL,
        UNIQUE (project, dir, msg_id)
    );
    CREATE INDEX messages_thread ON messages (project, thread_id);
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        status TEXT NOT NULL,
        item TEXT NOT NULL
    );
    CREATE INDEX inbox_thread ON inbox (project, thread_id, status);
    CREATE TABLE auto_tasks (
        id INTEGER PRIMARY KEY,
        project TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        hop_count INTEGER NOT NULL,
        task TEXT NOT NULL
    );
    CREATE INDEX auto_tasks_thread ON auto_tasks (project, thread_id);
    CREATE TABLE threads (
        project TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        auto_replies INTEGER NOT NULL,
        PRIMARY KEY (project, thread_id)
    );
    CREATE TABLE peers (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        idx INTEGER NOT NULL,
        PRIMARY KEY (project, name)
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        project TEXT NOT NULL,
        kind TEXT NOT NULL,
        ts INTEGER NOT NULL,
        row TEXT NOT NULL
    );
    CREATE INDEX events_project ON events (project, seq);
    CREATE TABLE consumers (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (project, name)
    );
    CREATE TABLE files (
        project TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        file TEXT NOT NULL,
        PRIMARY KEY (project, msg_id)
    );",
    // 2: agent sessions (issue 6).
    "CREATE TABLE agent_sessions (
        name TEXT NOT NULL,
        cwd TEXT NOT NULL,
        backend TEXT NOT NULL,
        agent_id TEXT,
        model TEXT,
        permission_mode TEXT NOT NULL,
        skills TEXT NOT NULL,
        metadata TEXT,
        turns INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        started_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_error TEXT,
        PRIMARY KEY (name, cwd)
    );
    CREATE TABLE agent_turns (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        cwd TEXT NOT NULL,
        turn TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER NOT NULL,
        model TEXT,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        error TEXT,
        cancelled INTEGER NOT NULL
    );
    CREATE INDEX agent_turns_session ON agent_turns (name, cwd, id);",
    // 3: receipts (issue 14). dir 'out': how far our message got at peer;
    // 'in': what we told peer about its message. state is the rank of
    // relayed (0), stored, surfaced, answered (3).
    "CREATE TABLE receipts (
        project TEXT NOT NULL,
        dir TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        peer TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        state INTEGER NOT NULL,
        via TEXT,
        ts INTEGER NOT NULL,
        PRIMARY KEY (project, dir, msg_id, peer)
    );
    CREATE INDEX receipts_thread ON receipts (project, dir, thread_id);",
    // 4: what an answer cost (issue 14): JSON usage on answered receipts.
    "ALTER TABLE receipts ADD COLUMN usage TEXT;",
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}
