//! One session's actor: its FIFO queue, one turn at a time, its agent
//! process (started on demand, stopped when idle), its record.
//!
//! Everything about a session changes here and only here, in one task, so
//! there is no lock to hold across an await: callers send commands and read a
//! published snapshot (`SessionInfo`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::driver::{self, Driver, StartError};
use super::{Key, Output, Shared, SpawnSpec};
use crate::store::agents::{self as records, AgentRecord};
use nexscope_proto::api::agent::*;
use nexscope_proto::time::now_ms;

/// Events of one turn waiting for a slow reader; past this the reader is
/// dropped (the turn goes on).
pub const EVENT_BUFFER: usize = 4096;
/// Queued turns per session.
const MAX_QUEUE: usize = 256;
/// Commands waiting for the actor.
const COMMANDS: usize = 64;
/// How long a turn gets after an interrupt before its process is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);
/// How long the agent gets to answer a control request (model, mode).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a query waits for a free process slot.
const SLOT_WAIT: Duration = Duration::from_secs(30);

pub type TurnStream = mpsc::Receiver<TurnEvent>;

/// A query waiting for its turn.
pub struct Queued {
    pub prompt: String,
    pub model: Option<String>,
    pub permission_mode: Option<String>,
    pub skills: Option<Vec<String>>,
    pub events: mpsc::Sender<TurnEvent>,
    /// Who asked (a gateway connection), for the cancel's answer.
    pub owner: Option<u64>,
}

pub enum Command {
    Query(Queued),
    /// Answered with the session and the owner of the cancelled turn.
    Cancel(oneshot::Sender<Result<(SessionInfo, Option<u64>), AgentError>>),
    Close {
        forget: bool,
        reply: oneshot::Sender<SessionInfo>,
    },
    Skills(oneshot::Sender<Result<Map<String, Value>, AgentError>>),
    /// Stop the process if idle, to free its slot.
    StopIdle,
}

#[derive(Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    info: Arc<Mutex<SessionInfo>>,
    pub generation: u64,
    done: watch::Receiver<bool>,
}

impl Handle {
    pub fn info(&self) -> SessionInfo {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Hands a command to the actor; gives it back if the actor has ended.
    pub fn send(&self, command: Command) -> Result<(), Command> {
        match self.commands.try_send(command) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(c)) => Err(c),
            Err(mpsc::error::TrySendError::Full(c)) => match c {
                // A flood of commands: refuse queries rather than block the
                // caller (the queue limit would refuse them anyway).
                Command::Query(q) => {
                    let _ = q.events.try_send(failed_done(
                        None,
                        now_ms(),
                        "the session is busy; try again",
                    ));
                    Ok(())
                }
                other => Err(other),
            },
        }
    }

    pub fn stop_idle(&self) -> bool {
        self.commands.try_send(Command::StopIdle).is_ok()
    }

    pub async fn stopped(mut self) {
        let _ = self.done.wait_for(|d| *d).await;
    }
}

/// A `done` for a turn that never ran.
fn failed_done(session_id: Option<String>, time: u64, error: &str) -> TurnEvent {
    TurnEvent::Done {
        session_id,
        time,
        usage: Usage::default(),
        error: Some(error.to_string()),
        cancelled: false,
    }
}

/// The snapshot of a stored session that no actor holds.
pub fn info(record: &AgentRecord, live: bool) -> SessionInfo {
    SessionInfo {
        name: record.name.clone(),
        cwd: record.cwd.clone(),
        backend: record.backend,
        session_id: record.agent_id.clone(),
        model: record.model.clone(),
        permission_mode: record.permission_mode.clone(),
        queue_length: 0,
        processing: false,
        lifecycle_state: if live { "running" } else { "stopped" }.into(),
        live,
        turns: record.turns,
        usage: record.usage,
        started_at: record.started_at,
        updated_at: record.updated_at,
        last_error: record.last_error.clone(),
    }
}

pub fn start(shared: Arc<Shared>, key: Key, record: AgentRecord, generation: u64) -> Handle {
    let (commands, rx) = mpsc::channel(COMMANDS);
    let info = Arc::new(Mutex::new(info(&record, false)));
    let (done_tx, done) = watch::channel(false);
    let session = Session {
        shared,
        key,
        record,
        driver: None,
        slot: None,
        queue: VecDeque::new(),
        current: None,
        clock: 0,
        info: info.clone(),
        pending_skills: Vec::new(),
        skills_request: None,
        idle_since: Instant::now(),
        generation,
        dirty: true,
        closing: None,
        metadata_dirty: false,
        slot_wait: None,
    };
    tokio::spawn(async move {
        let key = session.key.clone();
        let shared = session.shared.clone();
        // A panic in one session ends that session, not the daemon.
        let outcome = tokio::spawn(session.run(rx)).await;
        if let Err(error) = outcome {
            if error.is_panic() {
                tracing::error!(session = %key, "agent session panicked; it was dropped");
            }
        }
        shared.remove(&key, generation);
        let _ = done_tx.send(true);
    });
    Handle {
        commands,
        info,
        generation,
        done,
    }
}

struct Current {
    turn: String,
    events: Option<mpsc::Sender<TurnEvent>>,
    started_at: u64,
    deadline: Instant,
    model: Option<String>,
    cancelled: bool,
    /// Why the turn was interrupted by us, if it was (a timeout).
    interrupted: Option<String>,
    owner: Option<u64>,
}

struct Session {
    shared: Arc<Shared>,
    key: Key,
    record: AgentRecord,
    driver: Option<Box<dyn Driver>>,
    slot: Option<OwnedSemaphorePermit>,
    queue: VecDeque<Queued>,
    current: Option<Current>,
    /// Last `time` handed out: epoch ms forced strictly increasing (nx-ce).
    clock: u64,
    info: Arc<Mutex<SessionInfo>>,
    pending_skills: Vec<oneshot::Sender<Result<Map<String, Value>, AgentError>>>,
    skills_request: Option<u64>,
    idle_since: Instant,
    generation: u64,
    /// The published snapshot is stale: set by anything but a plain turn
    /// event, so streaming text does not rebuild it each time.
    dirty: bool,
    /// A Close being carried out: forget the record?, and whom to answer.
    closing: Option<(bool, oneshot::Sender<SessionInfo>)>,
    /// The metadata changed since the record was last written whole.
    metadata_dirty: bool,
    /// Waiting for a process slot for the next turn, until the deadline.
    slot_wait: Option<(SlotFuture, Instant)>,
}

type SlotFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>>
            + Send,
    >,
>;

/// How a wait for a process slot went.
enum SlotWait {
    Got(OwnedSemaphorePermit),
    /// Still waiting: time to look again for an idle process to stop (one
    /// may have become idle since).
    Again,
    TimedOut,
}

/// How often a session waiting for a slot asks idle ones to give theirs up.
const EVICT_EVERY: Duration = Duration::from_millis(500);

/// The slot being waited for. Pending while nothing is waited for.
async fn wait_slot(wait: &mut Option<(SlotFuture, Instant)>) -> SlotWait {
    let Some((future, deadline)) = wait else {
        return std::future::pending().await;
    };
    let until = (*deadline).min(Instant::now() + EVICT_EVERY);
    match tokio::time::timeout_at(until, future).await {
        Ok(Ok(slot)) => SlotWait::Got(slot),
        Ok(Err(_)) => SlotWait::TimedOut,
        Err(_) if Instant::now() >= *deadline => SlotWait::TimedOut,
        Err(_) => SlotWait::Again,
    }
}

/// Why an actor ends.
enum End {
    Idle,
    Closed,
    Shutdown,
}

impl Session {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let shutdown = self.shared.shutdown.clone();
        tracing::debug!(session = %self.key, generation = self.generation, "agent session started");
        let why = loop {
            self.dispatch().await;
            if self.dirty {
                self.publish();
            }
            let (idle_timeout, _) = self.shared.timeouts();
            // Idle with or without a process: an actor that holds nothing
            // ends, so sessions never pile up in memory.
            let idle =
                self.current.is_none() && self.queue.is_empty() && self.pending_skills.is_empty();
            let idle_deadline = self.idle_since + idle_timeout;
            let turn_deadline = self.current.as_ref().map(|c| c.deadline);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => if self.command(command).await { break End::Closed },
                    None => break End::Closed,
                },
                output = next_output(&mut self.driver) => match output {
                    Some(outputs) => for output in outputs { self.output(output).await },
                    None => self.crashed().await,
                },
                _ = tokio::time::sleep_until(idle_deadline), if idle => {
                    if self.driver.is_some() {
                        tracing::info!(session = %self.key, "agent idle; stopping its process (the session is kept)");
                    }
                    break End::Idle;
                }
                _ = sleep_until_opt(turn_deadline) => {
                    self.dirty = true;
                    self.turn_timed_out().await;
                }
                slot = wait_slot(&mut self.slot_wait) => self.slot_wait_ended(slot),
                _ = shutdown.wait() => break End::Shutdown,
            }
        };
        self.end(why, commands).await;
    }

    /// How a wait for a process slot went, taken in.
    fn slot_wait_ended(&mut self, slot: SlotWait) {
        match slot {
            SlotWait::Got(slot) => {
                self.dirty = true;
                self.slot_wait = None;
                self.slot = Some(slot);
            }
            SlotWait::Again => {
                self.shared.evict_idle(&self.key);
            }
            SlotWait::TimedOut => {
                self.dirty = true;
                self.slot_timed_out();
            }
        }
    }

    /// The actor's end: the process stopped, the session out of the map,
    /// and what was still sent to it handed over.
    async fn end(&mut self, why: End, mut commands: mpsc::Receiver<Command>) {
        let message = match why {
            End::Shutdown => "the daemon is shutting down",
            _ => "the session was closed",
        };
        // Still in the map while the process stops, so no second actor can
        // start this conversation beside it; commands sent meanwhile wait in
        // the channel and then go to a successor (or are answered).
        self.finish(message).await;
        self.shared.remove(&self.key, self.generation);
        commands.close();
        let mut leftover = Vec::new();
        while let Ok(command) = commands.try_recv() {
            leftover.push(command);
        }
        self.hand_over(leftover, matches!(why, End::Shutdown)).await;
    }

    /// Commands that reached the actor while it ended: queries and skills go
    /// to a new actor for the same session, the rest are answered here.
    async fn hand_over(&mut self, leftover: Vec<Command>, shutting_down: bool) {
        let mut successor: Option<Handle> = None;
        for command in leftover {
            match command {
                Command::Query(_) | Command::Skills(_) if !shutting_down => {
                    let handle = successor.get_or_insert_with(|| {
                        let mut sessions = self.shared.sessions();
                        sessions
                            .entry(self.key.clone())
                            .or_insert_with(|| {
                                let generation = self
                                    .shared
                                    .next_generation
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                start(
                                    self.shared.clone(),
                                    self.key.clone(),
                                    self.record.clone(),
                                    generation,
                                )
                            })
                            .clone()
                    });
                    if let Err(Command::Query(item)) = handle.send(command) {
                        let _ = item.events.try_send(failed_done(
                            None,
                            now_ms(),
                            "the session was closed; send the query again",
                        ));
                    }
                }
                Command::Query(item) => {
                    let _ = item.events.try_send(failed_done(
                        None,
                        now_ms(),
                        "the daemon is shutting down",
                    ));
                }
                Command::Skills(reply) => {
                    let _ = reply.send(Err(AgentError::Stopped));
                }
                Command::Cancel(reply) => {
                    let _ = reply.send(Err(AgentError::NoActiveTurn));
                }
                Command::Close { forget, reply } => {
                    if forget {
                        self.forget().await;
                    }
                    let _ = reply.send(self.snapshot());
                }
                Command::StopIdle => {}
            }
        }
    }

    /// Handles a command; true when the actor should end.
    async fn command(&mut self, command: Command) -> bool {
        self.dirty = true;
        match command {
            Command::Query(item) => {
                if self.queue.len() >= MAX_QUEUE {
                    let time = self.tick();
                    let _ = item.events.try_send(failed_done(
                        self.record.agent_id.clone(),
                        time,
                        &format!("{MAX_QUEUE} turns are already queued in this session; wait for some to finish"),
                    ));
                } else {
                    self.queue.push_back(item);
                }
                false
            }
            Command::Cancel(reply) => {
                let _ = reply.send(self.cancel().await);
                false
            }
            Command::Close { forget, reply } => {
                // Answered by `finish`, once the process has stopped.
                self.closing = Some((forget, reply));
                true
            }
            Command::Skills(reply) => {
                self.skills(reply).await;
                false
            }
            Command::StopIdle => {
                if self.current.is_none() && self.queue.is_empty() && self.pending_skills.is_empty()
                {
                    self.stop_process().await;
                }
                false
            }
        }
    }

    async fn cancel(&mut self) -> Result<(SessionInfo, Option<u64>), AgentError> {
        let owner = match &mut self.current {
            Some(current) if !current.cancelled => {
                current.cancelled = true;
                current.deadline = Instant::now() + INTERRUPT_GRACE;
                current.owner
            }
            _ => return Err(AgentError::NoActiveTurn),
        };
        if let Some(driver) = &mut self.driver {
            if let Err(error) = driver.interrupt().await {
                tracing::warn!(session = %self.key, %error, "could not send the interrupt");
            }
        }
        Ok((self.snapshot(), owner))
    }

    async fn interrupt_current(&mut self) {
        if self.current.is_some() {
            let _ = self.cancel().await;
        }
    }

    /// Starts the next queued turn when none is running.
    async fn dispatch(&mut self) {
        self.start_next().await;
        // A slot taken for a turn that did not start is given back.
        if self.driver.is_none() && self.current.is_none() {
            self.slot = None;
        }
    }

    async fn start_next(&mut self) {
        while self.current.is_none() {
            if self.queue.is_empty() || !self.has_slot() {
                return;
            }
            let Some(item) = self.queue.pop_front() else {
                return;
            };
            self.dirty = true;
            // Its client left before its turn: nobody waits for the answer.
            if item.events.is_closed() {
                continue;
            }
            if let Err(message) = self.start_turn(&item).await {
                let time = self.tick();
                let _ =
                    item.events
                        .try_send(failed_done(self.record.agent_id.clone(), time, &message));
                self.record.last_error = Some(message);
                self.save().await;
            }
        }
    }

    /// Starts `item`'s turn; Err (nothing started, nothing changed) when the
    /// process cannot start or refuses the model or mode.
    async fn start_turn(&mut self, item: &Queued) -> Result<(), String> {
        let (model_change, mode_change) = self.prepare(item).await?;
        let turn = super::turn_id();
        let time = self.tick();
        let _ = item.events.try_send(TurnEvent::TurnStart {
            turn: turn.clone(),
            time,
        });
        let prompt = with_skills(&self.record.skills, &item.prompt);
        let session_id = self.record.agent_id.clone().unwrap_or_default();
        self.current = Some(Current {
            turn,
            events: Some(item.events.clone()),
            started_at: now_ms(),
            deadline: Instant::now() + self.shared.timeouts().1,
            model: model_change.clone().or_else(|| self.record.model.clone()),
            cancelled: false,
            interrupted: None,
            owner: item.owner,
        });
        let started = match self.driver.as_mut() {
            Some(driver) => {
                let (model, mode) = (model_change.as_deref(), mode_change.as_deref());
                driver.start_turn(&prompt, &session_id, model, mode).await
            }
            None => Err(StartError::Broken("no agent process".into())),
        };
        self.started(started, model_change, mode_change).await;
        Ok(())
    }

    /// Readies the process for `item`: its skills, a process (a new one
    /// starts with the wanted model and mode directly), and the switches;
    /// the model and mode changes left for the turn to carry.
    async fn prepare(&mut self, item: &Queued) -> Result<(Option<String>, Option<String>), String> {
        self.apply_skills(item.skills.as_deref()).await;
        if self.driver.is_none() {
            let mode = item
                .permission_mode
                .as_ref()
                .unwrap_or(&self.record.permission_mode);
            self.check_mode(mode)?;
            if let Some(model) = &item.model {
                self.record.model = Some(model.clone());
            }
            if let Some(mode) = &item.permission_mode {
                self.record.permission_mode = mode.clone();
            }
        }
        self.ensure_driver()
            .await
            .map_err(|message| format!("session create failed: {message}"))?;
        self.switch(item).await
    }

    /// What starting the turn did: the changes it carried are the
    /// session's now; a broken process ends the turn as a crash does, a
    /// refusal ends it with the agent's reason.
    async fn started(
        &mut self,
        started: Result<(), StartError>,
        model_change: Option<String>,
        mode_change: Option<String>,
    ) {
        match started {
            Ok(()) => {
                if let Some(model) = model_change {
                    self.record.model = Some(model);
                }
                if let Some(mode) = mode_change {
                    self.record.permission_mode = mode;
                }
            }
            Err(StartError::Broken(message)) => {
                tracing::warn!(session = %self.key, %message, "could not start the turn");
                return self.crashed().await;
            }
            Err(StartError::Refused(message)) => {
                return self.turn_done(Usage::default(), Some(message)).await;
            }
        }
        let metadata = self
            .driver
            .as_ref()
            .and_then(|d| d.known_metadata(&self.key.cwd, &self.record.permission_mode));
        if let Some(metadata) = metadata {
            self.forward_init(metadata);
        }
    }

    /// The model and mode `item` changes. Those the driver switches by
    /// control request are switched now, answered before the turn (a
    /// refusal leaves the session as it was and says why); the rest are
    /// returned for the turn to carry.
    async fn switch(&mut self, item: &Queued) -> Result<(Option<String>, Option<String>), String> {
        let mut model_change = item
            .model
            .clone()
            .filter(|m| Some(m) != self.record.model.as_ref());
        let mut mode_change = item
            .permission_mode
            .clone()
            .filter(|m| *m != self.record.permission_mode);
        if let Some(mode) = &mode_change {
            self.check_mode(mode)?;
        }
        let Some(driver) = self.driver.as_ref() else {
            return Ok((model_change, mode_change));
        };
        let model_request = model_change
            .as_deref()
            .and_then(|m| driver.model_request(m));
        let mode_request = mode_change.as_deref().and_then(|m| driver.mode_request(m));
        if let Some(request) = model_request {
            let model = model_change.take().unwrap_or_default();
            self.control(request)
                .await
                .map_err(|e| format!("cannot switch the model to {model}: {e}"))?;
            self.record.model = Some(model);
        }
        if let Some(request) = mode_request {
            let mode = mode_change.take().unwrap_or_default();
            self.control(request)
                .await
                .map_err(|e| format!("cannot switch the permission mode to {mode}: {e}"))?;
            self.record.permission_mode = mode;
        }
        Ok((model_change, mode_change))
    }

    /// Refuses a permission mode the agent would refuse, with the reason.
    fn check_mode(&self, mode: &str) -> Result<(), String> {
        match driver::refused_mode(self.record.backend, mode) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Sends a control request to the agent and waits for its answer,
    /// handling whatever else arrives meanwhile.
    async fn control(&mut self, request: Value) -> Result<(), String> {
        let Some(driver) = self.driver.as_mut() else {
            return Err("no agent process".into());
        };
        let id = driver.control(request).await.map_err(|e| e.to_string())?;
        let deadline = Instant::now() + CONTROL_TIMEOUT;
        loop {
            // Only the read is timed: what arrived is always handled whole.
            let outputs = match tokio::time::timeout_at(deadline, next_output(&mut self.driver))
                .await
            {
                Err(_) => return Err(format!("no answer within {}s", CONTROL_TIMEOUT.as_secs())),
                Ok(None) => {
                    self.crashed().await;
                    return Err("the agent process exited".into());
                }
                Ok(Some(outputs)) => outputs,
            };
            let mut answer = None;
            for output in outputs {
                match output {
                    Output::Reply { id: got, result } if got == id => answer = Some(result),
                    other => self.output(other).await,
                }
            }
            if let Some(result) = answer {
                return result.map(|_| ());
            }
        }
    }

    /// A different non-empty skills list starts a fresh conversation with
    /// it (nx-ce's rule); an empty or absent one keeps what there is.
    async fn apply_skills(&mut self, skills: Option<&[String]>) {
        let Some(skills) = skills.filter(|s| !s.is_empty()) else {
            return;
        };
        let same = skills.len() == self.record.skills.len()
            && skills.iter().all(|s| self.record.skills.contains(s));
        if same {
            return;
        }
        self.stop_process().await;
        self.record.skills = skills.to_vec();
        self.record.agent_id = None;
        self.record.metadata = None;
    }

    /// Starts the agent process if there is none, within the live limit.
    async fn ensure_driver(&mut self) -> Result<(), String> {
        if self.driver.is_some() {
            return Ok(());
        }
        let slot = self.take_slot().await?;
        let backend = self.record.backend;
        let spec = SpawnSpec {
            program: driver::program(backend, &self.shared.settings()),
            cwd: self.key.cwd.clone(),
            model: self.record.model.clone(),
            permission_mode: self.record.permission_mode.clone(),
            resume: self.record.agent_id.clone(),
            new_id: nexscope_proto::ids::uuid_v4(),
            label: self.key.to_string(),
        };
        let spawned = driver::spawn(backend, &spec, &self.record.skills, self.record.usage).await?;
        if spawned.agent_id.is_some() {
            self.record.agent_id = spawned.agent_id;
        }
        if let Some(metadata) = spawned
            .driver
            .known_metadata(&self.key.cwd, &self.record.permission_mode)
        {
            self.record.metadata = Some(metadata);
        }
        self.skills_request = spawned.metadata_request;
        let driver = spawned.driver;
        tracing::info!(session = %self.key, backend = self.record.backend.as_str(), resume = spec.resume.is_some(), "agent process started");
        self.driver = Some(driver);
        self.slot = Some(slot);
        self.idle_since = Instant::now();
        self.save().await;
        Ok(())
    }

    /// True when the next turn may start: a live process, or a slot for
    /// one. Otherwise the wait for a slot is set up, and the event loop
    /// (which keeps answering cancel, close and shutdown) finishes it.
    fn has_slot(&mut self) -> bool {
        if self.driver.is_some() || self.slot.is_some() {
            return true;
        }
        if self.slot_wait.is_some() {
            return false;
        }
        let slots = self.shared.slots.clone();
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            self.slot = Some(slot);
            return true;
        }
        self.shared.evict_idle(&self.key);
        self.slot_wait = Some((Box::pin(slots.acquire_owned()), Instant::now() + SLOT_WAIT));
        false
    }

    /// No slot came free in time: the turn at the head of the queue fails.
    fn slot_timed_out(&mut self) {
        self.slot_wait = None;
        let message = format!(
            "session create failed: {} agent processes are busy (agents.max_live) and none became free within {}s",
            self.shared.max_live,
            SLOT_WAIT.as_secs()
        );
        if let Some(item) = self.queue.pop_front() {
            let time = self.tick();
            let _ = item
                .events
                .try_send(failed_done(self.record.agent_id.clone(), time, &message));
        }
    }

    async fn take_slot(&mut self) -> Result<OwnedSemaphorePermit, String> {
        if let Some(slot) = self.slot.take() {
            return Ok(slot);
        }
        let slots = self.shared.slots.clone();
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        self.shared.evict_idle(&self.key);
        let waited = tokio::select! {
            waited = tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()) => waited,
            _ = self.shared.shutdown.wait() => {
                return Err("the daemon is shutting down".into());
            }
        };
        match waited {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(format!(
                "{} agent processes are busy (agents.max_live) and none became free within {}s",
                self.shared.max_live,
                SLOT_WAIT.as_secs()
            )),
        }
    }

    async fn skills(&mut self, reply: oneshot::Sender<Result<Map<String, Value>, AgentError>>) {
        if let Some(metadata) = &self.record.metadata {
            let _ = reply.send(Ok(metadata.clone()));
            return;
        }
        if let Err(message) = self.ensure_driver().await {
            let _ = reply.send(Err(AgentError::CreateFailed { message }));
            return;
        }
        if self.skills_request.is_none() {
            let Some(driver) = self.driver.as_mut() else {
                let message = "the agent process exited".to_string();
                let _ = reply.send(Err(AgentError::CreateFailed { message }));
                return;
            };
            match driver.ask_metadata(&self.record.skills).await {
                Ok(Some(id)) => self.skills_request = Some(id),
                // Known without asking.
                Ok(None) => {
                    let metadata = self.record.metadata.clone().unwrap_or_default();
                    let _ = reply.send(Ok(metadata));
                    return;
                }
                Err(error) => {
                    let _ = reply.send(Err(AgentError::CreateFailed {
                        message: error.to_string(),
                    }));
                    return;
                }
            }
        }
        self.pending_skills.push(reply);
    }

    /// One output of the agent, in the session's terms.
    async fn output(&mut self, output: Output) {
        if matches!(
            output,
            Output::Init { .. } | Output::TurnDone { .. } | Output::Reply { .. }
        ) {
            self.dirty = true;
        }
        match output {
            Output::Init { agent_id, metadata } => self.init(agent_id, metadata).await,
            Output::Text(content) => self.forward(|time| TurnEvent::Text { content, time }),
            Output::Thinking(content) => self.forward(|time| TurnEvent::Thinking { content, time }),
            Output::ToolUse { id, name, input } => self.forward(|time| TurnEvent::ToolUse {
                name,
                input,
                id,
                time,
            }),
            Output::ToolResult {
                id,
                content,
                is_error,
            } => self.forward(|time| TurnEvent::ToolResult {
                id,
                content,
                is_error,
                time,
            }),
            Output::TurnDone { usage, error } => self.turn_done(usage, error).await,
            Output::Reply { id, result } => self.reply(id, result),
        }
    }

    /// The agent's init: its conversation id, model and metadata are the
    /// session's now, and the turn's client sees them.
    async fn init(&mut self, agent_id: Option<String>, metadata: Map<String, Value>) {
        let changed = agent_id.is_some() && agent_id != self.record.agent_id;
        if let Some(id) = agent_id {
            self.record.agent_id = Some(id);
        }
        if let Some(model) = metadata.get("model").and_then(Value::as_str) {
            self.record.model = Some(model.to_string());
        }
        if self.record.metadata.as_ref() != Some(&metadata) {
            self.metadata_dirty = true;
            self.record.metadata = Some(metadata.clone());
        }
        for waiter in self.pending_skills.drain(..) {
            let _ = waiter.send(Ok(metadata.clone()));
        }
        if changed {
            self.save().await;
        }
        self.forward_init(metadata);
    }

    /// The answer to a control request: the metadata asked for by Skills,
    /// or a switch's (those are awaited in `control`; a late one is logged).
    fn reply(&mut self, id: u64, result: Result<Value, String>) {
        if Some(id) != self.skills_request {
            if let Err(message) = result {
                tracing::warn!(session = %self.key, %message, "the agent refused a control request");
            }
            return;
        }
        self.skills_request = None;
        let agent_id = self.record.agent_id.as_deref().unwrap_or("");
        let metadata = match (&self.driver, result) {
            (Some(driver), Ok(reply)) => {
                Ok(driver.metadata_from_reply(&reply, agent_id, &self.key.cwd))
            }
            (None, Ok(_)) => Err("the agent process exited".to_string()),
            (_, Err(message)) => Err(message),
        }
        .map_err(|message| AgentError::CreateFailed { message });
        // Kept, so the next Skills asks nothing (a turn's init replaces it).
        if let (Ok(metadata), None) = (&metadata, &self.record.metadata) {
            self.record.metadata = Some(metadata.clone());
        }
        for waiter in self.pending_skills.drain(..) {
            let _ = waiter.send(metadata.clone());
        }
    }

    fn forward_init(&mut self, metadata: Map<String, Value>) {
        let time = self.tick();
        if let Some(current) = &mut self.current {
            if !current.cancelled {
                send(&mut current.events, TurnEvent::Init { metadata, time });
            }
        }
    }

    /// Sends a turn event to the turn's client; after a cancel nothing but
    /// the final `done` goes out (nx-ce drops the rest).
    fn forward(&mut self, event: impl FnOnce(u64) -> TurnEvent) {
        let time = self.tick();
        if let Some(current) = &mut self.current {
            if !current.cancelled {
                send(&mut current.events, event(time));
            }
        }
    }

    async fn turn_done(&mut self, usage: Usage, error: Option<String>) {
        self.end_turn(usage, error, false).await;
    }

    /// Ends the running turn. `forced`: the error ended it (a crash, a
    /// kill), so it is reported even when the turn was cancelled.
    async fn end_turn(&mut self, usage: Usage, error: Option<String>, forced: bool) {
        self.dirty = true;
        // A result with no turn of ours (an interrupt while idle): nothing
        // to finish.
        let Some(mut current) = self.current.take() else {
            return;
        };
        let error = match (&current.interrupted, current.cancelled) {
            _ if forced => error,
            (Some(why), _) => Some(why.clone()),
            (None, true) => None,
            (None, false) => error,
        };
        self.record.usage.add(&usage);
        self.record.turns += 1;
        self.record.last_error = error.clone();
        self.record.updated_at = now_ms();
        let turn = TurnRecord {
            turn: current.turn.clone(),
            started_at: current.started_at,
            finished_at: now_ms(),
            model: current.model.clone(),
            usage,
            error: error.clone(),
            cancelled: current.cancelled,
        };
        self.save_turn(turn).await;
        let time = self.tick();
        send(
            &mut current.events,
            TurnEvent::Done {
                session_id: self.record.agent_id.clone(),
                time,
                usage,
                error,
                cancelled: current.cancelled,
            },
        );
        self.idle_since = Instant::now();
    }

    async fn turn_timed_out(&mut self) {
        let (_, timeout) = self.shared.timeouts();
        let Some(current) = &mut self.current else {
            return;
        };
        if current.interrupted.is_none() && !current.cancelled {
            current.interrupted = Some(format!(
                "the turn ran longer than agents.turn_timeout ({}s) and was interrupted",
                timeout.as_secs()
            ));
            current.deadline = Instant::now() + INTERRUPT_GRACE;
            if let Some(driver) = &mut self.driver {
                let _ = driver.interrupt().await;
            }
            return;
        }
        // The interrupt did not end the turn: the process is stuck.
        tracing::warn!(session = %self.key, "the agent did not stop after an interrupt; killing it");
        self.stop_process().await;
        self.end_turn_with_error("the agent did not stop after an interrupt and was killed".into())
            .await;
    }

    /// The agent process ended on its own (or had to be killed).
    async fn crashed(&mut self) {
        self.dirty = true;
        let Some(mut driver) = self.driver.take() else {
            return;
        };
        let report = driver.process().wait_exit().await;
        self.slot = None;
        tracing::warn!(session = %self.key, report = %report, "agent process exited");
        // A conversation the CLI does not have cannot be resumed; the next
        // query starts a new one rather than failing forever.
        if report.contains("No conversation found") {
            self.record.agent_id = None;
        }
        let message = format!("the agent process exited ({report})");
        for waiter in self.pending_skills.drain(..) {
            let _ = waiter.send(Err(AgentError::CreateFailed {
                message: message.clone(),
            }));
        }
        self.skills_request = None;
        self.end_turn_with_error(message).await;
    }

    async fn end_turn_with_error(&mut self, message: String) {
        if self.current.is_some() {
            // The turn ends with the error that ended it; a cancelled one
            // stays cancelled, so its client hears nothing more of it.
            self.end_turn(Usage::default(), Some(message), true).await;
        } else {
            self.record.last_error = Some(message);
            self.save().await;
        }
    }

    async fn stop_process(&mut self) {
        // Nobody is left to answer them.
        for waiter in self.pending_skills.drain(..) {
            let _ = waiter.send(Err(AgentError::CreateFailed {
                message: "the agent process was stopped before it answered; try again".into(),
            }));
        }
        if let Some(driver) = self.driver.take() {
            driver.into_process().stop().await;
            tracing::debug!(session = %self.key, "agent process stopped");
        }
        self.slot = None;
        self.skills_request = None;
        self.publish();
    }

    /// The actor ends: the running turn is interrupted, the process stopped,
    /// and queued turns answered.
    async fn finish(&mut self, why: &str) {
        self.interrupt_current().await;
        // Give the interrupt a moment to produce the turn's end; only the
        // read is timed, so a `done` being sent is never cut off.
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.current.is_some() && self.driver.is_some() {
            match tokio::time::timeout_at(deadline, next_output(&mut self.driver)).await {
                Ok(Some(outputs)) => {
                    for output in outputs {
                        self.output(output).await;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        self.stop_process().await;
        if self.current.is_some() {
            self.end_turn_with_error(why.to_string()).await;
        }
        for item in self.queue.drain(..) {
            let _ = item
                .events
                .try_send(failed_done(self.record.agent_id.clone(), now_ms(), why));
        }
        for waiter in self.pending_skills.drain(..) {
            let _ = waiter.send(Err(AgentError::Stopped));
        }
        let closing = self.closing.take();
        if let Some((true, _)) = &closing {
            self.forget().await;
        } else {
            self.save().await;
        }
        if let Some((_, reply)) = closing {
            let _ = reply.send(self.snapshot());
        }
    }

    /// Deletes the record and its turns; a successor starts a new conversation.
    async fn forget(&mut self) {
        let (name, cwd) = (self.key.name.clone(), self.key.cwd.clone());
        if let Err(error) = self
            .shared
            .store
            .run(move |conn| records::delete(conn, &name, &cwd))
            .await
        {
            tracing::error!(session = %self.key, %error, "could not forget the agent session");
        }
        self.record = AgentRecord {
            agent_id: None,
            metadata: None,
            turns: 0,
            usage: Usage::default(),
            started_at: now_ms(),
            last_error: None,
            ..self.record.clone()
        };
    }

    fn tick(&mut self) -> u64 {
        self.clock = now_ms().max(self.clock + 1);
        self.clock
    }

    fn snapshot(&self) -> SessionInfo {
        let mut info = info(&self.record, self.driver.is_some());
        info.queue_length = self.queue.len() as u64;
        // Answering a Skills request is work too: not idle, not evictable.
        info.processing = self.current.is_some() || !self.pending_skills.is_empty();
        info
    }

    fn publish(&mut self) {
        *self.info.lock().unwrap_or_else(|p| p.into_inner()) = self.snapshot();
        self.dirty = false;
    }

    async fn save(&mut self) {
        self.metadata_dirty = false;
        self.record.updated_at = now_ms();
        let record = self.record.clone();
        if let Err(error) = self
            .shared
            .store
            .run(move |conn| records::save(conn, &record))
            .await
        {
            tracing::error!(session = %self.key, %error, "could not save the agent session");
        }
    }

    async fn save_turn(&mut self, turn: TurnRecord) {
        // Claude repeats its init (a few KiB) every turn: it is written only
        // when it changed, the counters every turn.
        let full = std::mem::take(&mut self.metadata_dirty);
        let record = if full {
            self.record.clone()
        } else {
            AgentRecord {
                name: self.record.name.clone(),
                cwd: self.record.cwd.clone(),
                backend: self.record.backend,
                agent_id: self.record.agent_id.clone(),
                model: self.record.model.clone(),
                permission_mode: self.record.permission_mode.clone(),
                skills: Vec::new(),
                metadata: None,
                turns: self.record.turns,
                usage: self.record.usage,
                started_at: self.record.started_at,
                updated_at: self.record.updated_at,
                last_error: self.record.last_error.clone(),
            }
        };
        let result = self
            .shared
            .store
            .run(move |conn| {
                if full {
                    records::save(conn, &record)?;
                } else {
                    records::save_progress(conn, &record)?;
                }
                records::add_turn(conn, &record.name, &record.cwd, &turn)
            })
            .await;
        if let Err(error) = result {
            tracing::error!(session = %self.key, %error, "could not save the turn");
        }
    }
}

/// Sends to a turn's client without waiting; a client that cannot keep up
/// is dropped, the turn goes on.
fn send(events: &mut Option<mpsc::Sender<TurnEvent>>, event: TurnEvent) {
    let Some(tx) = events else { return };
    if tx.try_send(event).is_err() {
        *events = None;
    }
}

async fn next_output(driver: &mut Option<Box<dyn Driver>>) -> Option<Vec<Output>> {
    match driver {
        Some(driver) => driver.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// nx-ce's skills instruction in front of each prompt while a session has
/// skills, so the agent runs them before it answers.
fn with_skills(skills: &[String], prompt: &str) -> String {
    if skills.is_empty() {
        return prompt.to_string();
    }
    let list: Vec<String> = skills.iter().map(|s| format!("/{s}")).collect();
    format!(
        "[You must call the Skill tool to run these skills: {}, then answer the user's question following the skill instructions]\n\n{prompt}",
        list.join(" ")
    )
}
