//! The store: SQLite (WAL, bundled with rusqlite) owned by one writer thread.
//!
//! Every read and write is a job run on that thread; jobs that arrive
//! together share one transaction (group commit), each inside its own
//! savepoint so that one failing job does not undo the others. A job's
//! result is handed back only after its transaction committed, so nothing is
//! reported that a kill -9 could take back. Tables live one family per
//! module: `schema` (migrations), `messages`, `inbox`, `events`, `projects`,
//! `agents`.

pub mod agents;
pub mod events;
pub mod inbox;
pub mod messages;
pub mod projects;
pub mod receipts;
mod recovery;
mod schema;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tokio::sync::oneshot;

pub const FILE_NAME: &str = "nexscope.db";
/// Jobs committed together at most: bounds how long one commit holds
/// results back.
const BATCH: usize = 512;
/// Jobs waiting for the writer at most. A room that receives faster than
/// the disk takes it waits here (and, further back, at the relay), instead
/// of queueing without bound.
const QUEUE: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("store error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the store's data is damaged: {0}")]
    Corrupt(String),
    #[error("the store has stopped")]
    Stopped,
    #[error("the store could not commit: {0}")]
    Commit(String),
}

type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// What the writer thread is asked to do.
enum Work {
    Job(Job),
    /// Move the write-ahead log into the database (at a clean shutdown, so
    /// the file alone holds everything), then answer.
    Checkpoint(oneshot::Sender<Result<(), String>>),
}

#[derive(Clone)]
pub struct Store {
    jobs: tokio::sync::mpsc::Sender<Work>,
}

impl Store {
    /// Opens (creating and migrating) the database and starts its thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        let wal = recovery::Wal::before_open(path);
        let mut conn = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        // WAL with synchronous=NORMAL: a commit survives the process being
        // killed (it is in the OS's hands); only a power cut may lose the
        // last ones. busy_timeout for a second process (sqlite3 CLI).
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(|e| open_error(e.to_string()))?;
        wal.after_open(&conn);
        recovery::quick_check(&conn, path);
        schema::migrate(&mut conn).map_err(|e| open_error(e.to_string()))?;
        let (jobs, rx) = tokio::sync::mpsc::channel::<Work>(QUEUE);
        std::thread::Builder::new()
            .name("nexscoped-store".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| open_error(e.to_string()))?;
        Ok(Store { jobs })
    }

    /// Runs `job` in a transaction; its result once committed.
    pub async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(job, move |result| {
            let _ = tx.send(result);
        })
        .await?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// Queues `job` (waiting only for room in the queue); `done` gets its
    /// result after the commit, on the store thread: keep it short, e.g.
    /// publish to a channel.
    pub async fn submit<T, F, D>(&self, job: F, done: D) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        D: FnOnce(Result<T, StoreError>) + Send + 'static,
        T: Send + 'static,
    {
        let job: Job = Box::new(move |conn| {
            let result = job(conn);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |committed| {
                done(match committed {
                    Ok(()) => result,
                    Err(message) => Err(StoreError::Commit(message)),
                })
            });
            (ok, completion)
        });
        self.jobs
            .send(Work::Job(job))
            .await
            .map_err(|_| StoreError::Stopped)
    }

    /// Writes the log back into the database file, after every job queued
    /// before it: what a clean shutdown does last.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Work::Checkpoint(tx))
            .await
            .map_err(|_| StoreError::Stopped)?;
        rx.await
            .map_err(|_| StoreError::Stopped)?
            .map_err(StoreError::Commit)
    }
}

/// The writer thread: batches of jobs, one transaction each.
fn writer(mut conn: Connection, mut rx: tokio::sync::mpsc::Receiver<Work>) {
    while let Some(first) = rx.blocking_recv() {
        let mut checkpoint = None;
        let mut batch = Vec::new();
        match first {
            Work::Job(job) => batch.push(job),
            Work::Checkpoint(reply) => checkpoint = Some(reply),
        }
        while batch.len() < BATCH && checkpoint.is_none() {
            match rx.try_recv() {
                Ok(Work::Job(job)) => batch.push(job),
                Ok(Work::Checkpoint(reply)) => checkpoint = Some(reply),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, batch);
        }
        if let Some(reply) = checkpoint {
            let done = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    row.get::<_, i64>(0)
                })
                .map_err(|e| e.to_string())
                .and_then(|busy| match busy {
                    0 => Ok(()),
                    _ => Err("the database was busy; the log stays for the next start".into()),
                });
            let _ = reply.send(done);
        }
    }
}

/// One transaction for a batch of jobs; every job's caller hears back.
fn commit_batch(conn: &mut Connection, mut batch: Vec<Job>) {
    {
        let mut completions = Vec::with_capacity(batch.len());
        let committed = match conn.transaction() {
            Ok(mut tx) => {
                for job in batch.drain(..) {
                    completions.push(run_job(&mut tx, job));
                }
                tx.commit().map_err(|e| e.to_string())
            }
            Err(error) => Err(error.to_string()),
        };
        // No transaction could begin: the jobs still run (so their callers
        // hear back) but are reported as not committed.
        for job in batch {
            let (_, completion) = job(conn);
            completions.push(completion);
        }
        if let Err(message) = &committed {
            tracing::error!(error = %message, "store commit failed");
        }
        for completion in completions {
            completion(committed.clone());
        }
    }
}

/// One job in its own savepoint: a failing job is rolled back alone. A job
/// that panics is caught: the writer thread must outlive any bug in a job.
fn run_job(tx: &mut rusqlite::Transaction<'_>, job: Job) -> Completion {
    // Savepoint statements are prepared once: at thousands of jobs a second,
    // parsing them each time shows.
    let step = |sql: &str| {
        tx.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
            .map(|_| ())
    };
    if let Err(error) = step("SAVEPOINT job") {
        let message = error.to_string();
        return Box::new(move |_| tracing::error!(error = %message, "savepoint failed"));
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(tx)));
    let undo = || {
        let _ = step("ROLLBACK TO job");
        let _ = step("RELEASE job");
    };
    match outcome {
        Ok((true, completion)) => match step("RELEASE job") {
            Ok(()) => completion,
            Err(error) => {
                undo();
                let message = error.to_string();
                Box::new(move |_| completion(Err(message)))
            }
        },
        Ok((false, completion)) => {
            undo();
            completion
        }
        Err(_) => {
            undo();
            tracing::error!("a store job panicked; it was rolled back");
            Box::new(|_| {})
        }
    }
}

/// A migrated database for unit tests of the table modules.
#[cfg(test)]
pub fn schema_for_tests(conn: &mut Connection) {
    schema::migrate(conn).expect("migrate");
}

pub fn parse_json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}
