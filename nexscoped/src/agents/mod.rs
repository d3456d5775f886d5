//! The agent host (nx-ce's sessions without its defects, docs/nx-ce.md §16):
//! sessions keyed by (name, canonical
//! cwd), each an actor task that owns its queue, its record and at most one
//! agent process (`claude` in stream-json mode or `codex app-server`).
//!
//! The host only finds or creates actors and forwards commands; everything a
//! session does happens in its own task, so one session's slow process or bug
//! never holds up another. Records live in the store and outlive processes:
//! a session stopped for idleness, by a crash or by a daemon restart resumes
//! its conversation with the agent's own session id on its next query.

mod claude;
mod codex;
mod driver;
pub mod gateway;
mod process;
pub mod responder;
mod session;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Map, Value};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::store::agents::{self as records, AgentRecord};
use nexscope_proto::api::agent::*;
use nexscope_proto::config::AgentSettings;

pub use session::TurnStream;

/// What an agent process said, in backend-neutral terms.
#[derive(Debug)]
pub enum Output {
    Init {
        agent_id: Option<String>,
        metadata: Map<String, Value>,
    },
    Text(String),
    Thinking(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        id: String,
        content: String,
        is_error: bool,
    },
    TurnDone {
        usage: Usage,
        error: Option<String>,
    },
    /// The answer to one of our control requests.
    Reply {
        id: u64,
        result: Result<Value, String>,
    },
}

/// How to start an agent process for a session.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub program: PathBuf,
    pub cwd: String,
    pub model: Option<String>,
    pub permission_mode: String,
    /// The conversation to resume, if the session has one.
    pub resume: Option<String>,
    /// The id a new Claude conversation gets.
    pub new_id: String,
    /// For logs: `name@cwd`.
    pub label: String,
}

/// A session's identity: its name and canonical working directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub name: String,
    pub cwd: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.cwd)
    }
}

/// Longest session name: names are typed by people and shown in lists.
const MAX_NAME: usize = 128;

pub struct Agents {
    shared: Arc<Shared>,
}

/// What every session actor may reach.
pub(crate) struct Shared {
    store: Store,
    settings: RwLock<AgentSettings>,
    /// One permit per live agent process.
    slots: Arc<Semaphore>,
    max_live: usize,
    sessions: Mutex<HashMap<Key, session::Handle>>,
    shutdown: Shutdown,
    next_generation: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn settings(&self) -> AgentSettings {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// (idle timeout, turn timeout), read without copying the settings: the
    /// actor asks on every event.
    fn timeouts(&self) -> (std::time::Duration, std::time::Duration) {
        match self.settings.read() {
            Ok(s) => (s.idle_timeout, s.turn_timeout),
            Err(poisoned) => {
                let s = poisoned.into_inner();
                (s.idle_timeout, s.turn_timeout)
            }
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Key, session::Handle>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the live session idle the longest (not `except`) to stop its
    /// process, to make room for another.
    fn evict_idle(&self, except: &Key) -> bool {
        let sessions = self.sessions();
        let victim = sessions
            .iter()
            .filter(|(key, _)| *key != except)
            .filter_map(|(_, handle)| {
                let info = handle.info();
                (info.live && !info.processing && info.queue_length == 0)
                    .then_some((info.updated_at, handle))
            })
            .min_by_key(|(updated, _)| *updated);
        match victim {
            Some((_, handle)) => handle.stop_idle(),
            None => false,
        }
    }

    /// Forgets an actor that ended, unless it has been replaced already.
    fn remove(&self, key: &Key, generation: u64) {
        let mut sessions = self.sessions();
        if sessions
            .get(key)
            .is_some_and(|h| h.generation == generation)
        {
            sessions.remove(key);
        }
    }
}

impl Agents {
    pub fn new(store: Store, settings: AgentSettings, shutdown: Shutdown) -> Arc<Agents> {
        let max_live = settings.max_live;
        Arc::new(Agents {
            shared: Arc::new(Shared {
                store,
                settings: RwLock::new(settings),
                slots: Arc::new(Semaphore::new(max_live)),
                max_live,
                sessions: Mutex::new(HashMap::new()),
                shutdown,
                next_generation: std::sync::atomic::AtomicU64::new(1),
            }),
        })
    }

    /// New settings from a reload; `max_live` takes effect at the next start.
    pub fn set_settings(&self, settings: AgentSettings) {
        *self
            .shared
            .settings
            .write()
            .unwrap_or_else(|p| p.into_inner()) = settings;
    }

    /// Where a session runs when the caller names no directory.
    pub fn default_cwd(&self) -> PathBuf {
        self.shared
            .settings()
            .cwd
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    /// The key a caller's reference names: default name, canonical cwd.
    pub fn key(&self, target: &SessionRef) -> Result<Key, AgentError> {
        let name = target.session.as_deref().unwrap_or(DEFAULT_SESSION);
        check_name(name)?;
        let cwd = match target.cwd.as_deref() {
            Some(cwd) if !cwd.is_empty() => PathBuf::from(cwd),
            _ => self.default_cwd(),
        };
        let shown = cwd.display().to_string();
        let canonical = std::fs::canonicalize(&cwd).map_err(|e| AgentError::BadCwd {
            cwd: shown.clone(),
            message: match e.kind() {
                std::io::ErrorKind::NotFound => "does not exist".into(),
                _ => format!("cannot be opened ({e})"),
            },
        })?;
        if !canonical.is_dir() {
            return Err(AgentError::BadCwd {
                cwd: shown,
                message: "is not a directory".into(),
            });
        }
        let cwd = canonical.to_str().ok_or_else(|| AgentError::BadCwd {
            cwd: shown,
            message: "is not valid UTF-8".into(),
        })?;
        Ok(Key {
            name: name.to_string(),
            cwd: cwd.to_string(),
        })
    }

    /// Queues a turn; its events arrive on the returned stream, ending with
    /// `done`.
    pub async fn query(&self, input: QueryIn) -> Result<TurnStream, AgentError> {
        self.query_for(input, None).await
    }

    /// A query on behalf of `owner` (a gateway connection), which `cancel_for`
    /// then names when it cancels this turn.
    pub async fn query_for(
        &self,
        input: QueryIn,
        owner: Option<u64>,
    ) -> Result<TurnStream, AgentError> {
        validate_query(
            &input.prompt,
            input
                .model
                .as_ref()
                .map(|m| Value::String(m.clone()))
                .as_ref(),
            input
                .permission_mode
                .as_ref()
                .map(|m| Value::String(m.clone()))
                .as_ref(),
        )?;
        if let Some(skills) = &input.skills {
            if skills.len() > 64 || skills.iter().any(|s| s.is_empty() || s.len() > 128) {
                return Err(AgentError::bad_args(
                    "skills must be at most 64 names of 1 to 128 bytes",
                ));
            }
        }
        let key = self.key(&input.target)?;
        let (events, stream) = mpsc::channel(session::EVENT_BUFFER);
        let turn = session::Queued {
            prompt: input.prompt,
            model: input.model,
            permission_mode: input.permission_mode,
            skills: input.skills,
            events,
            owner,
        };
        let mut command = session::Command::Query(turn);
        // An actor may end (idle) between lookup and send: then start anew.
        for _ in 0..3 {
            let handle = self.handle(&key, input.backend, true).await?;
            match handle.send(command) {
                Ok(()) => return Ok(stream),
                Err(back) => command = back,
            }
        }
        Err(AgentError::internal("the session kept ending; try again"))
    }

    /// The actor of `key`, started from its record (or a new record when
    /// `create`).
    async fn handle(
        &self,
        key: &Key,
        backend: Option<Backend>,
        create: bool,
    ) -> Result<session::Handle, AgentError> {
        if self.shared.shutdown.requested() {
            return Err(AgentError::Stopped);
        }
        if let Some(handle) = self.shared.sessions().get(key) {
            if let Some(backend) = backend {
                if backend != handle.info().backend {
                    return Err(AgentError::BackendMismatch {
                        session: key.name.clone(),
                        backend: handle.info().backend,
                    });
                }
            }
            return Ok(handle.clone());
        }
        let record = {
            let (name, cwd) = (key.name.clone(), key.cwd.clone());
            self.shared
                .store
                .run(move |conn| records::get(conn, &name, &cwd))
                .await
                .map_err(AgentError::internal)?
        };
        let record = match record {
            Some(record) => {
                if let Some(backend) = backend {
                    if backend != record.backend {
                        return Err(AgentError::BackendMismatch {
                            session: key.name.clone(),
                            backend: record.backend,
                        });
                    }
                }
                record
            }
            None if create => self.new_record(key, backend),
            None => {
                return Err(AgentError::NotFound {
                    session: key.name.clone(),
                    cwd: key.cwd.clone(),
                });
            }
        };
        let mut sessions = self.shared.sessions();
        // Another caller may have started it while we read the store.
        if let Some(handle) = sessions.get(key) {
            return Ok(handle.clone());
        }
        let generation = self
            .shared
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let handle = session::start(self.shared.clone(), key.clone(), record, generation);
        sessions.insert(key.clone(), handle.clone());
        Ok(handle)
    }

    fn new_record(&self, key: &Key, backend: Option<Backend>) -> AgentRecord {
        let settings = self.shared.settings();
        let backend = backend.unwrap_or(settings.backend);
        let now = nexscope_proto::time::now_ms();
        AgentRecord {
            name: key.name.clone(),
            cwd: key.cwd.clone(),
            backend,
            agent_id: None,
            model: driver::default_model(backend, &settings),
            permission_mode: settings.permission_mode,
            skills: Vec::new(),
            metadata: None,
            turns: 0,
            usage: Usage::default(),
            started_at: now,
            updated_at: now,
            last_error: None,
        }
    }

    /// Interrupts the running turn of a session.
    pub async fn cancel(&self, key: &Key) -> Result<SessionInfo, AgentError> {
        self.cancel_for(key).await.map(|(info, _)| info)
    }

    /// Cancels the running turn; also says whose query it was.
    pub async fn cancel_for(&self, key: &Key) -> Result<(SessionInfo, Option<u64>), AgentError> {
        let handle = self.shared.sessions().get(key).cloned();
        let Some(handle) = handle else {
            return Err(AgentError::NoActiveTurn);
        };
        let (reply, answer) = oneshot::channel();
        handle
            .send(session::Command::Cancel(reply))
            .map_err(|_| AgentError::NoActiveTurn)?;
        answer.await.map_err(|_| AgentError::NoActiveTurn)?
    }

    /// Stops sessions (all in-memory ones of that name when `cwd` is None,
    /// as nx-ce does); their records stay unless `forget`.
    pub async fn close(
        &self,
        name: &str,
        cwd: Option<&Key>,
        forget: bool,
    ) -> Result<Vec<SessionInfo>, AgentError> {
        // Left in the map: the actor takes itself out once its process has
        // stopped, and hands on whatever reaches it meanwhile, so a query
        // right after a close never runs beside the closing process.
        let handles: Vec<session::Handle> = self
            .shared
            .sessions()
            .iter()
            .filter(|(k, _)| match cwd {
                Some(key) => *k == key,
                None => k.name == name,
            })
            .map(|(_, h)| h.clone())
            .collect();
        let mut closed = Vec::new();
        let mut reached = 0;
        for handle in &handles {
            let (reply, answer) = oneshot::channel();
            if handle
                .send(session::Command::Close { forget, reply })
                .is_ok()
            {
                reached += 1;
                if let Ok(info) = answer.await {
                    closed.push(info);
                }
            }
        }
        // A session with only a record (or whose actor just ended):
        // forgetting it still means something.
        if forget && reached == 0 {
            if let Some(key) = cwd {
                if let Some(info) = self.status(key).await? {
                    self.forget(key).await?;
                    closed.push(info);
                }
            }
        }
        Ok(closed)
    }

    async fn forget(&self, key: &Key) -> Result<(), AgentError> {
        let (name, cwd) = (key.name.clone(), key.cwd.clone());
        self.shared
            .store
            .run(move |conn| records::delete(conn, &name, &cwd))
            .await
            .map_err(AgentError::internal)
    }

    /// Every session: live actors first-hand, the rest from their records.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, AgentError> {
        let stored = self
            .shared
            .store
            .run(records::list)
            .await
            .map_err(AgentError::internal)?;
        let live: HashMap<Key, SessionInfo> = self
            .shared
            .sessions()
            .iter()
            .map(|(k, h)| (k.clone(), h.info()))
            .collect();
        let mut out: Vec<SessionInfo> = stored
            .iter()
            .map(|r| {
                let key = Key {
                    name: r.name.clone(),
                    cwd: r.cwd.clone(),
                };
                live.get(&key)
                    .cloned()
                    .unwrap_or_else(|| session::info(r, false))
            })
            .collect();
        for (key, info) in &live {
            if !stored
                .iter()
                .any(|r| r.name == key.name && r.cwd == key.cwd)
            {
                out.push(info.clone());
            }
        }
        Ok(out)
    }

    pub async fn status(&self, key: &Key) -> Result<Option<SessionInfo>, AgentError> {
        if let Some(handle) = self.shared.sessions().get(key) {
            return Ok(Some(handle.info()));
        }
        let (name, cwd) = (key.name.clone(), key.cwd.clone());
        let record = self
            .shared
            .store
            .run(move |conn| records::get(conn, &name, &cwd))
            .await
            .map_err(AgentError::internal)?;
        Ok(record.map(|r| session::info(&r, false)))
    }

    /// A session's metadata (skills, tools, slash commands, model…): the
    /// stored init when there is one, else asked of the agent without a
    /// model turn.
    pub async fn skills(
        &self,
        key: &Key,
        backend: Option<Backend>,
    ) -> Result<Map<String, Value>, AgentError> {
        let handle = self.handle(key, backend, true).await?;
        let (reply, answer) = oneshot::channel();
        handle
            .send(session::Command::Skills(reply))
            .map_err(|_| AgentError::internal("the session ended; try again"))?;
        answer
            .await
            .map_err(|_| AgentError::internal("the session ended; try again"))?
    }

    pub async fn usage(&self, key: &Key, turns: u32) -> Result<UsageOut, AgentError> {
        let session = self
            .status(key)
            .await?
            .ok_or_else(|| AgentError::NotFound {
                session: key.name.clone(),
                cwd: key.cwd.clone(),
            })?;
        let (name, cwd) = (key.name.clone(), key.cwd.clone());
        let turns = self
            .shared
            .store
            .run(move |conn| records::turns(conn, &name, &cwd, turns.min(10_000)))
            .await
            .map_err(AgentError::internal)?;
        Ok(UsageOut { session, turns })
    }

    /// (sessions in memory, live agent processes).
    pub fn counts(&self) -> (u64, u64) {
        let live = self.shared.max_live - self.shared.slots.available_permits();
        (self.shared.sessions().len() as u64, live as u64)
    }

    /// Waits (bounded by the caller) for every actor to stop its process
    /// after shutdown was requested.
    pub async fn join_all(&self) {
        let handles: Vec<session::Handle> = self.shared.sessions().values().cloned().collect();
        for handle in handles {
            handle.stopped().await;
        }
    }
}

fn check_name(name: &str) -> Result<(), AgentError> {
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AgentError::bad_args(format!(
            "session name {name:?} is not allowed: use 1 to {MAX_NAME} bytes without control characters"
        )));
    }
    Ok(())
}

/// nx-ce's turn ids: `turn_<base36 ms>_<12 hex>`.
fn turn_id() -> String {
    let mut ms = nexscope_proto::time::now_ms();
    let mut digits = Vec::new();
    loop {
        digits.push(std::char::from_digit((ms % 36) as u32, 36).unwrap_or('0'));
        ms /= 36;
        if ms == 0 {
            break;
        }
    }
    let base36: String = digits.iter().rev().collect();
    format!("turn_{base36}_{}", nexscope_proto::ids::random_hex(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shapes() {
        let id = nexscope_proto::ids::uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        let turn = turn_id();
        assert!(turn.starts_with("turn_"));
        assert_eq!(turn.rsplit('_').next().map(str::len), Some(12));
    }

    #[test]
    fn names_are_bounded() {
        assert!(check_name("default").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(129)).is_err());
    }
}
