//! What opening the store found: a write-ahead log left by a daemon that
//! did not stop cleanly, whether SQLite could use all of it, and whether
//! the database passes its quick check. SQLite silently ignores a damaged
//! log (from its first bad frame on), which would look like an empty or
//! older store; here it is said, and the log is kept for inspection.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// Bytes of the log's header, and of each frame's header.
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;

/// The log as it was before SQLite opened (and so recovered) it.
pub struct Wal {
    path: PathBuf,
    copy: Option<PathBuf>,
    len: u64,
}

impl Wal {
    /// Notes the log left behind, and keeps a copy of it until it is
    /// known to be whole.
    pub fn before_open(db: &Path) -> Wal {
        let path = suffixed(db, "-wal");
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut copy = None;
        if len > WAL_HEADER {
            let target = suffixed(
                db,
                &format!("-wal.damaged-{}", crate::relay::frame::now_ms()),
            );
            if std::fs::copy(&path, &target).is_ok() {
                copy = Some(target);
            }
        }
        Wal { path, copy, len }
    }

    /// Compares the frames the log held with those SQLite took from it.
    pub fn after_open(self, conn: &Connection) {
        if self.len <= WAL_HEADER {
            return;
        }
        let page_size: u64 = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .unwrap_or(4096);
        let frames = (self.len - WAL_HEADER) / (page_size + FRAME_HEADER);
        // (busy, frames in the log, frames checkpointed): the frames SQLite
        // accepted; a damaged log counts only those before the damage.
        let used: Option<u64> = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                row.get::<_, i64>(1)
            })
            .ok()
            .map(|n| n.max(0) as u64);
        let Some(copy) = self.copy else { return };
        match used {
            Some(used) if used < frames => tracing::error!(
                log = %self.path.display(),
                kept = %copy.display(),
                frames,
                used,
                "the store's write-ahead log was damaged: {} of its {frames} pages were not \
                 recovered, so the last writes before the daemon stopped may be missing; \
                 the log as found is kept",
                frames - used
            ),
            _ => {
                tracing::info!(frames, "recovered the store's write-ahead log");
                let _ = std::fs::remove_file(copy);
            }
        }
    }
}

/// SQLite's quick check; what it finds is logged (the daemon still starts,
/// so what can be read stays available).
pub fn quick_check(conn: &Connection, db: &Path) {
    let findings: Vec<String> = conn
        .prepare("PRAGMA quick_check(20)")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(0))?.collect())
        .unwrap_or_else(|e| vec![e.to_string()]);
    if findings != ["ok"] {
        tracing::error!(
            store = %db.display(),
            findings = %findings.join("; "),
            "the store failed its integrity check; back it up and see nexscoped(8)"
        );
    }
}

fn suffixed(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
