//! Receipts: how far each of our messages got at each recipient (`Out`),
//! and what we told each sender about its messages (`In`). A receipt only
//! moves forward; a step back or a repeat changes nothing.

use rusqlite::{Connection, params};

use super::StoreError;
use nexscope_proto::api::agent::Usage;
use nexscope_proto::api::chat::{Receipt, ReceiptState, ThreadCost};

/// Whose message a receipt is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Ours, at a recipient.
    Out,
    /// A peer's, as we reported it back.
    In,
}

impl Dir {
    fn as_str(self) -> &'static str {
        match self {
            Dir::Out => "out",
            Dir::In => "in",
        }
    }
}

/// One receipt step: `msg_id` on `thread_id` reached `state` at `peer`.
#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub dir: Dir,
    pub msg_id: &'a str,
    pub thread_id: &'a str,
    pub peer: &'a str,
    pub state: ReceiptState,
    pub via: Option<&'a str>,
    pub ts: i64,
    /// On answered: what the answering turn cost, when a hosted agent wrote it.
    pub usage: Option<&'a Usage>,
}

/// Records `step` if it moves the receipt forward (or adds the cost of an
/// answer already recorded); the receipt as it now is when it did, None
/// when it was there already.
pub fn advance(
    conn: &Connection,
    project: &str,
    step: &Step<'_>,
) -> Result<Option<Receipt>, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO receipts (project, dir, msg_id, peer, thread_id, state, via, ts, usage)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (project, dir, msg_id, peer) DO UPDATE
             SET state = excluded.state, via = excluded.via, ts = excluded.ts,
                 usage = COALESCE(excluded.usage, receipts.usage)
             WHERE excluded.state > receipts.state
                OR (excluded.state = receipts.state AND receipts.usage IS NULL
                    AND excluded.usage IS NOT NULL)",
        )?
        .execute(params![
            project,
            step.dir.as_str(),
            step.msg_id,
            step.peer,
            step.thread_id,
            rank(step.state),
            step.via,
            step.ts,
            step.usage.and_then(|u| serde_json::to_string(u).ok())
        ])?;
    Ok((changed == 1).then(|| Receipt {
        msg_id: step.msg_id.into(),
        thread_id: step.thread_id.into(),
        recipient: step.peer.into(),
        state: step.state.as_str().into(),
        via: step.via.map(str::to_string),
        ts: step.ts,
        usage: step.usage.copied(),
    }))
}

/// The receipts of our message `id`, or of our messages on thread `id`,
/// oldest first.
pub fn of(conn: &Connection, project: &str, id: &str) -> Result<Vec<Receipt>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT msg_id, thread_id, peer, state, via, ts, usage FROM receipts
         WHERE project = ?1 AND dir = 'out' AND (msg_id = ?2 OR thread_id = ?2)
         ORDER BY ts, msg_id, peer LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![project, id, MAX_LISTED], |r| {
            Ok(Receipt {
                msg_id: r.get(0)?,
                thread_id: r.get(1)?,
                recipient: r.get(2)?,
                state: state_of(r.get(3)?).as_str().into(),
                via: r.get(4)?,
                ts: r.get(5)?,
                usage: usage_of(r.get(6)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Receipts one answer lists at most (a thread of 100 messages to a full room).
pub const MAX_LISTED: i64 = 5000;

/// The thread of our message `msg_id`, None when it is not ours: a peer's
/// receipt for anything else is not recorded.
pub fn our_thread(
    conn: &Connection,
    project: &str,
    msg_id: &str,
) -> Result<Option<String>, StoreError> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached(
            "SELECT thread_id FROM messages WHERE project = ?1 AND dir = 'out' AND msg_id = ?2",
        )?
        .query_row(params![project, msg_id], |r| r.get(0))
        .optional()?)
}

/// The newest message to us on `thread`: (msgId, sender).
pub fn newest_in(
    conn: &Connection,
    project: &str,
    thread: &str,
) -> Result<Option<(String, String)>, StoreError> {
    use rusqlite::OptionalExtension;
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached(
            "SELECT msg_id, json_extract(frame, '$.from') FROM messages
             WHERE project = ?1 AND dir = 'in' AND thread_id = ?2 ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![project, thread], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(msg, from)| Some((msg, from?))))
}

/// Messages to us on `thread` not yet reported answered: (msgId, sender).
/// At most 100, the newest: older ones are long past answering.
pub fn unanswered(
    conn: &Connection,
    project: &str,
    thread: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.msg_id, json_extract(m.frame, '$.from') FROM messages m
         WHERE m.project = ?1 AND m.dir = 'in' AND m.thread_id = ?2
           AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.project = m.project AND r.dir = 'in'
                           AND r.msg_id = m.msg_id AND r.state >= ?3)
         ORDER BY m.id DESC LIMIT 100",
    )?;
    let rows: Vec<(String, Option<String>)> = stmt
        .query_map(
            params![project, thread, rank(ReceiptState::Answered)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(msg, from)| Some((msg, from?)))
        .collect())
}

/// What the answers on each thread cost, newest thread first: ours (dir
/// `in`: our answers to others) and theirs (dir `out`: answers to us).
pub fn costs(conn: &Connection, project: &str) -> Result<Vec<ThreadCost>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT thread_id, dir, usage, ts FROM receipts
         WHERE project = ?1 AND usage IS NOT NULL ORDER BY ts",
    )?;
    let rows: Vec<(String, String, Option<String>)> = stmt
        .query_map(params![project], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut threads: Vec<ThreadCost> = Vec::new();
    for (thread, dir, usage) in rows {
        let Some(usage) = usage_of(usage) else {
            continue;
        };
        let at = match threads.iter().position(|t| t.thread_id == thread) {
            Some(at) => at,
            None => {
                threads.push(ThreadCost {
                    thread_id: thread,
                    ..ThreadCost::default()
                });
                threads.len() - 1
            }
        };
        let cost = &mut threads[at];
        cost.answers += 1;
        match dir.as_str() {
            "in" => cost.ours.add(&usage),
            _ => cost.theirs.add(&usage),
        }
    }
    threads.reverse();
    Ok(threads)
}

fn usage_of(text: Option<String>) -> Option<Usage> {
    serde_json::from_str(&text?).ok()
}

fn rank(state: ReceiptState) -> i64 {
    ReceiptState::ALL
        .iter()
        .position(|s| *s == state)
        .unwrap_or(0) as i64
}

fn state_of(rank: i64) -> ReceiptState {
    usize::try_from(rank)
        .ok()
        .and_then(|i| ReceiptState::ALL.get(i).copied())
        .unwrap_or(ReceiptState::Relayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(state: ReceiptState) -> Step<'static> {
        Step {
            dir: Dir::Out,
            msg_id: "m1",
            thread_id: "t1",
            peer: "bob",
            state,
            via: None,
            ts: 1,
            usage: None,
        }
    }

    #[test]
    fn a_receipt_only_moves_forward() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema_for_tests(&mut conn);
        assert!(
            advance(&conn, "p", &step(ReceiptState::Stored))
                .unwrap()
                .is_some()
        );
        assert!(
            advance(&conn, "p", &step(ReceiptState::Relayed))
                .unwrap()
                .is_none()
        );
        assert!(
            advance(&conn, "p", &step(ReceiptState::Stored))
                .unwrap()
                .is_none()
        );
        let moved = advance(&conn, "p", &step(ReceiptState::Answered)).unwrap();
        assert_eq!(moved.map(|r| r.state), Some("answered".to_string()));
        let listed = of(&conn, "p", "t1").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, "answered");
        assert_eq!(of(&conn, "p", "m1").unwrap().len(), 1);
        assert!(of(&conn, "q", "m1").unwrap().is_empty());
    }
}
