//! What opening the store found: a write-ahead log left by a daemon that
//! did not stop cleanly, whether SQLite could use all of it, and whether
//! the database passes its quick check. SQLite silently ignores a damaged
//! log (from its first bad frame on), which would look like an empty or
//! older store; here it is said, and the log is kept for inspection.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// Bytes of the log's header, and of each frame's header.
const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// The log as it was before SQLite opened (and so recovered) it.
pub struct Wal {
    path: PathBuf,
    copy: Option<PathBuf>,
    /// Frames up to the log's last commit of its current generation: what
    /// SQLite should take from a whole log.
    committed: u64,
}

impl Wal {
    /// Notes the log left behind, and keeps a copy of it until it is
    /// known to be whole.
    pub fn before_open(db: &Path) -> Wal {
        let path = suffixed(db, "-wal");
        let committed = std::fs::read(&path)
            .map(|log| committed_frames(&log))
            .unwrap_or(0);
        let mut copy = None;
        if committed > 0 {
            let target = suffixed(
                db,
                &format!("-wal.damaged-{}", nexscope_proto::time::now_ms()),
            );
            if std::fs::copy(&path, &target).is_ok() {
                copy = Some(target);
            }
        }
        Wal {
            path,
            copy,
            committed,
        }
    }

    /// Compares the frames the log held with those SQLite took from it.
    pub fn after_open(self, conn: &Connection) {
        let Some(copy) = self.copy else { return };
        // (busy, frames in the log, frames checkpointed): the frames SQLite
        // accepted; a damaged log counts only those before the damage.
        let used = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                row.get::<_, i64>(1)
            })
            .ok();
        let frames = self.committed;
        match used {
            // -1: the log could not be read now (busy); nothing to say.
            Some(used) if used >= 0 && (used as u64) < frames => tracing::error!(
                log = %self.path.display(),
                kept = %copy.display(),
                frames,
                used,
                "the store's write-ahead log was damaged: {} of its {frames} committed pages were \
                 not recovered, so the last writes before the daemon stopped may be missing; \
                 the log as found is kept",
                frames - used as u64
            ),
            _ => {
                tracing::info!(frames, "recovered the store's write-ahead log");
                let _ = std::fs::remove_file(copy);
            }
        }
    }
}

/// Frames of the log's current generation (their salts are the header's)
/// up to its last commit frame. Frames past it are an unfinished
/// transaction, or older generations' left in a log SQLite reuses from
/// its start: neither is damage.
fn committed_frames(log: &[u8]) -> u64 {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(log.get(at..at + 4)?.try_into().ok()?))
    };
    let (Some(page_size), Some(salt1), Some(salt2)) = (word(8), word(16), word(20)) else {
        return 0;
    };
    let frame = FRAME_HEADER + page_size as usize;
    let (mut at, mut index, mut committed) = (WAL_HEADER, 0u64, 0u64);
    while at + frame <= log.len() {
        if word(at + 8) != Some(salt1) || word(at + 12) != Some(salt2) {
            break;
        }
        index += 1;
        if word(at + 4).is_some_and(|size| size != 0) {
            committed = index;
        }
        at += frame;
    }
    committed
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A log with `frames` (page number, commit size, salts) of 512-byte pages.
    fn log(salts: (u32, u32), frames: &[(u32, u32, (u32, u32))]) -> Vec<u8> {
        let mut out = vec![0u8; WAL_HEADER];
        out[8..12].copy_from_slice(&512u32.to_be_bytes());
        out[16..20].copy_from_slice(&salts.0.to_be_bytes());
        out[20..24].copy_from_slice(&salts.1.to_be_bytes());
        for (page, commit, (s1, s2)) in frames {
            let mut header = vec![0u8; FRAME_HEADER];
            header[0..4].copy_from_slice(&page.to_be_bytes());
            header[4..8].copy_from_slice(&commit.to_be_bytes());
            header[8..12].copy_from_slice(&s1.to_be_bytes());
            header[12..16].copy_from_slice(&s2.to_be_bytes());
            out.extend(header);
            out.extend(vec![0u8; 512]);
        }
        out
    }

    #[test]
    fn only_committed_frames_of_the_current_generation_count() {
        let now = (7, 9);
        let old = (1, 2);
        // Two transactions, then an unfinished one, then an older
        // generation's frames past the end a reused log had.
        let frames = [
            (1, 0, now),
            (2, 2, now),
            (3, 3, now),
            (4, 0, now),
            (5, 0, old),
            (6, 6, old),
        ];
        assert_eq!(committed_frames(&log(now, &frames)), 3);
        assert_eq!(committed_frames(&log(now, &[])), 0);
        assert_eq!(committed_frames(&[1, 2, 3]), 0);
    }
}
