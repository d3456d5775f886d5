//! Rooms for every project: the chat client inside the daemon.
//!
//! `Rooms` holds one `Room` per joined project; each has one connection task
//! (`client`) that owns its WebSocket, reconnects with backoff, and hands
//! inbound frames to `inbound`, which commits them to the store before any
//! watcher hears of them. `files` receives and sends files, `receipts`
//! follows how far messages got; how rows are shown is
//! `nexscope_proto::render`. The methods here are what `io.nexscope.Chat`
//! calls.

pub mod client;
pub mod files;
pub mod inbound;
pub mod live;
pub mod receipts;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::shutdown::{Shutdown, Trigger};
use crate::store::{self, Store, StoreError};
use nexscope_proto::api::chat::{
    AcceptOut, AppendOut, ChatError, Event, InboxItem, InboxOut, MAX_TEXT_BYTES, Receipt,
    ReceiptState, RejectOut, RoomState, SayIn, SayOut, StartIn,
};
use nexscope_proto::config::{self, Config, Mode, Secret, Settings};
use nexscope_proto::time::now_ms;

/// How long Start waits for the relay to accept us (v1: 6 s).
const START_TIMEOUT: Duration = Duration::from_secs(6);
/// How long Stop waits for the room's socket to close.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// How long a message waits for its ack (v1: 15 s).
const ACK_TIMEOUT: Duration = Duration::from_secs(15);
/// Handled mentions an Inbox reply shows after the pending ones.
const ARCHIVE_SHOWN: u64 = 10;
/// Bytes of mentions one Inbox reply holds at most: far below the control
/// socket's message limit, whatever was sent.
const INBOX_BYTES: usize = 1024 * 1024;
/// Pauses between attempts to rejoin a room after a restart.
const REJOIN_FIRST_PAUSE: Duration = Duration::from_secs(1);
const REJOIN_MAX_PAUSE: Duration = Duration::from_secs(60);
/// How long a file waits for its ack, from its file-start (v1: 90 s).
const FILE_ACK_TIMEOUT: Duration = Duration::from_secs(90);
/// Events buffered for slow watchers; one that falls further behind reads
/// the rest from the store.
const EVENT_BUFFER: usize = 1024;
/// Commands queued for a connection task.
const COMMAND_QUEUE: usize = 256;

impl From<StoreError> for ChatError {
    fn from(error: StoreError) -> Self {
        ChatError::internal(error)
    }
}

/// A relay's receipt.
#[derive(Debug, Clone, Default)]
pub struct Ack {
    pub delivered: Vec<String>,
    pub offline: Vec<String>,
}

pub enum Command {
    /// A text frame to send; `ack` gets the receipt.
    Send {
        frame: String,
        msg_id: String,
        ack: oneshot::Sender<Ack>,
    },
    /// A file to stream; `ack` gets the receipt or why it failed.
    File {
        file: Box<files::Outgoing>,
        ack: oneshot::Sender<Result<Ack, ChatError>>,
    },
    /// A frame beyond v1 (a receipt, our status), sent only where the
    /// relay said it carries them.
    Extension(String),
}

/// What a room is doing now; behind a short-held lock.
#[derive(Debug, Clone)]
pub struct Live {
    pub ready: bool,
    pub users: BTreeSet<String>,
    pub mode: Mode,
    pub error: Option<String>,
    /// What each member's daemon says is behind its name (claude, codex,
    /// person, daemon); only over a relay that carries status frames.
    pub agents: BTreeMap<String, String>,
    /// The relay connection carries receipts (and status frames).
    pub receipts: bool,
}

pub struct Room {
    pub project: String,
    pub name: String,
    pub relay_url: String,
    /// The relay as shown to people: the URL, or "embedded".
    pub relay_label: String,
    pub room_id: String,
    pub token: Option<Secret>,
    pub settings: Settings,
    pub files_dir: PathBuf,
    live: Mutex<Live>,
    pub commands: mpsc::Sender<Command>,
    pub events: broadcast::Sender<Event>,
    /// Our messages' receipts as they move.
    pub receipts: broadcast::Sender<Receipt>,
    /// The live agent sessions working in the project.
    pub leases: live::Leases,
    stop: Trigger,
    /// Set when the connection task has ended (its socket closed).
    finished: watch::Sender<bool>,
}

impl Room {
    pub fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> RoomState {
        let live = self.live().clone();
        RoomState {
            project: self.project.clone(),
            joined: true,
            ready: live.ready,
            name: self.name.clone(),
            mode: live.mode.as_str().to_string(),
            hop_limit: self.settings.hop_limit,
            relay: self.relay_label.clone(),
            room: self.room_id.clone(),
            users: live.users.into_iter().collect(),
            error: live.error,
        }
    }

    /// Set when the room stops (Stop, a fatal refusal, shutdown).
    pub fn stop_signal(&self) -> Shutdown {
        self.stop.subscribe()
    }

    /// Hands events to watchers; called only after they were committed.
    pub fn publish(&self, events: Vec<Event>) {
        for event in events {
            let _ = self.events.send(event);
        }
    }
}

/// What every room shares.
pub struct Context {
    pub store: Store,
    pub files_root: PathBuf,
    pub embedded_url: String,
    pub embedded_token: String,
    pub shutdown: Shutdown,
}

pub struct Rooms {
    pub ctx: Arc<Context>,
    map: Mutex<HashMap<String, Arc<Room>>>,
    /// Rooms that stopped on their own, and why, until the next Start.
    failed: Mutex<HashMap<String, String>>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
    /// Every room as it starts, for those who act on rooms (the responder).
    started: broadcast::Sender<Arc<Room>>,
}

/// The canonical project root, or why it is not one.
pub fn project_root(project: &str) -> Result<PathBuf, ChatError> {
    let path = Path::new(project);
    if !path.is_absolute() {
        return Err(ChatError::bad_args(format!(
            "project {project:?} must be an absolute path"
        )));
    }
    let root = std::fs::canonicalize(path).map_err(|e| ChatError::FileError {
        path: project.to_string(),
        message: format!("not a usable project directory ({e})"),
    })?;
    if !root.is_dir() {
        return Err(ChatError::bad_args(format!(
            "project {project:?} is not a directory"
        )));
    }
    Ok(root)
}

/// A short, readable, collision-proof directory name for a project's files.
fn files_dir_name(root: &Path) -> String {
    use sha2::Digest;
    let base: String = root
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(40)
                .collect()
        })
        .unwrap_or_else(|| "root".into());
    let hash = sha2::Sha256::digest(root.to_string_lossy().as_bytes());
    format!("{base}-{}", nexscope_proto::ids::hex(&hash[..4]))
}

impl Rooms {
    pub fn new(ctx: Context) -> Arc<Rooms> {
        Arc::new(Rooms {
            ctx: Arc::new(ctx),
            map: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            tasks: Mutex::new(tokio::task::JoinSet::new()),
            started: broadcast::channel(64).0,
        })
    }

    /// Rooms started from now on (Start and rejoin alike).
    pub fn subscribe_started(&self) -> broadcast::Receiver<Arc<Room>> {
        self.started.subscribe()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Room>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn list(&self) -> Vec<Arc<Room>> {
        let mut rooms: Vec<Arc<Room>> = self.map().values().cloned().collect();
        rooms.sort_by(|a, b| a.project.cmp(&b.project));
        rooms
    }

    pub fn get(&self, project: &str) -> Result<Arc<Room>, ChatError> {
        let root = match project_root(project) {
            Ok(root) => root,
            // The directory is gone or renamed: its room can still be found
            // (and stopped) by the path it had.
            Err(error) => return self.map().get(project).cloned().ok_or(error),
        };
        let key = root.to_string_lossy();
        if let Some(room) = self.map().get(key.as_ref()) {
            return Ok(room.clone());
        }
        match self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key.as_ref())
        {
            Some(why) => Err(ChatError::JoinFailed {
                code: "left_room".into(),
                message: format!(
                    "this project left its room: {why}. Run `nexscopectl start` to join again."
                ),
            }),
            None => Err(ChatError::NotJoined),
        }
    }

    /// Joins `project`'s room and waits until the relay accepted us.
    pub async fn start(
        self: &Arc<Self>,
        config: &Config,
        request: StartIn,
        keep_trying: bool,
    ) -> Result<RoomState, ChatError> {
        let root = project_root(&request.project)?;
        let key = root.to_string_lossy().into_owned();
        let settings = config.settings_for(&root).clone();
        let stored = {
            let key = key.clone();
            self.ctx
                .store
                .run(move |c| store::projects::get(c, &key))
                .await?
        };
        let (name, mode) = identity(&request, stored.as_ref(), &settings)?;
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        if let Some(existing) = self.map().get(&key) {
            return if existing.name == name {
                Ok(existing.state())
            } else {
                Err(ChatError::AlreadyJoined {
                    name: existing.name.clone(),
                })
            };
        }
        let (relay, room_id) = place(request, stored.as_ref(), &settings)?;
        let files_dir = self.ctx.files_root.join(files_dir_name(&root));
        let (room, ready) = self.open(
            key.clone(),
            name.clone(),
            mode,
            relay.as_deref(),
            room_id.clone(),
            settings,
            files_dir,
        );
        if !self.accepted(&room, ready, keep_trying).await? {
            return Ok(room.state());
        }
        let membership = store::projects::Membership {
            root: key,
            name,
            mode: mode.as_str().into(),
            relay,
            room: room_id,
            joined: true,
            error: None,
        };
        self.ctx
            .store
            .run(move |c| store::projects::save(c, &membership))
            .await?;
        Ok(room.state())
    }

    /// Waits for the relay to take the new room: true once it did, false
    /// when it is not reachable yet and `keep_trying` (rejoining after a
    /// restart: retried with backoff, docs/protocol.md §2.5, rather than
    /// given up on). Otherwise the room is removed and the error says why.
    async fn accepted(
        &self,
        room: &Arc<Room>,
        ready: oneshot::Receiver<Result<(), ChatError>>,
        keep_trying: bool,
    ) -> Result<bool, ChatError> {
        let outcome = tokio::time::timeout(START_TIMEOUT, ready).await;
        if let Ok(Ok(Ok(()))) = outcome {
            return Ok(true);
        }
        if outcome.is_err() && keep_trying {
            tracing::info!(project = %room.project, "relay not reachable yet; retrying in the background");
            return Ok(false);
        }
        self.remove(room);
        Err(match outcome {
            Ok(Ok(Err(error))) => error,
            Ok(Err(_)) => ChatError::internal("the room's connection task ended"),
            _ => ChatError::JoinFailed {
                code: "start_timeout".into(),
                message: format!(
                    "the relay at {} did not accept us within {START_TIMEOUT:?}",
                    room.relay_label
                ),
            },
        })
    }

    /// A room for the project, in the map, its connection task started;
    /// the receiver says when the relay took it (or why not).
    #[allow(clippy::too_many_arguments)]
    fn open(
        self: &Arc<Self>,
        key: String,
        name: String,
        mode: Mode,
        relay: Option<&str>,
        room_id: String,
        settings: Settings,
        files_dir: PathBuf,
    ) -> (Arc<Room>, oneshot::Receiver<Result<(), ChatError>>) {
        let (relay_url, relay_label, token) = match relay {
            Some(url) => (url.to_string(), url.to_string(), settings.token.clone()),
            None => (
                self.ctx.embedded_url.clone(),
                "embedded".to_string(),
                Some(Secret::new(self.ctx.embedded_token.clone())),
            ),
        };
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let room = Arc::new(Room {
            project: key.clone(),
            name,
            relay_url,
            relay_label,
            room_id,
            token,
            settings,
            files_dir,
            live: Mutex::new(Live {
                ready: false,
                users: BTreeSet::new(),
                mode,
                error: None,
                agents: BTreeMap::new(),
                receipts: false,
            }),
            commands,
            events: broadcast::channel(EVENT_BUFFER).0,
            receipts: broadcast::channel(EVENT_BUFFER).0,
            leases: live::Leases::default(),
            stop: crate::shutdown::channel().0,
            finished: watch::channel(false).0,
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        self.map().insert(key, room.clone());
        let _ = self.started.send(room.clone());
        let rooms = self.clone();
        let task_room = room.clone();
        let stop = room.stop.subscribe();
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        // Finished connection tasks (stopped rooms) are reaped here.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            client::run(rooms, task_room.clone(), commands_rx, stop, ready_tx).await;
            task_room.finished.send_replace(true);
        });
        (room, ready_rx)
    }

    /// Rejoins the rooms the daemon was in before it stopped. A failure
    /// that may pass (a full disk, say) is retried with a growing pause
    /// until it works, the project is stopped or started by hand, or the
    /// daemon stops.
    pub async fn rejoin(self: &Arc<Self>, config: &Config) {
        let mut pause = REJOIN_FIRST_PAUSE;
        let mut retry: Option<Vec<String>> = None;
        loop {
            let memberships = match self.ctx.store.run(store::projects::joined).await {
                Ok(memberships) => memberships,
                Err(error) => {
                    tracing::error!(%error, "cannot read the rooms to rejoin");
                    return;
                }
            };
            let mut failed = Vec::new();
            for m in memberships {
                let wanted = retry.as_ref().is_none_or(|r| r.contains(&m.root));
                if !wanted || self.get(&m.root).is_ok() {
                    continue;
                }
                let request = StartIn {
                    project: m.root.clone(),
                    name: Some(m.name.clone()),
                    mode: Some(m.mode.clone()),
                    relay: m.relay.clone(),
                    room: Some(m.room.clone()),
                };
                match self.start(config, request, true).await {
                    Ok(_) => tracing::info!(project = %m.root, name = %m.name, "rejoined"),
                    Err(error) if passing(&error) => {
                        tracing::warn!(project = %m.root, name = %m.name, %error, retry_in_s = pause.as_secs(), "could not rejoin; will retry");
                        failed.push(m.root);
                    }
                    Err(error) => {
                        tracing::warn!(project = %m.root, name = %m.name, %error, "could not rejoin; run `nexscopectl start` to join again")
                    }
                }
            }
            if failed.is_empty() {
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(REJOIN_MAX_PAUSE);
            retry = Some(failed);
        }
    }

    fn remove(&self, room: &Arc<Room>) {
        room.stop.fire();
        let mut map = self.map();
        if map.get(&room.project).is_some_and(|r| Arc::ptr_eq(r, room)) {
            map.remove(&room.project);
        }
    }

    /// Leaves the room of `project`; what it stored stays.
    pub async fn stop(&self, project: &str) -> Result<String, ChatError> {
        let room = match self.get(project) {
            Ok(room) => room,
            Err(error) => return self.stop_waiting(project, error).await,
        };
        let mut finished = room.finished.subscribe();
        self.remove(&room);
        // Wait (briefly) for the close to reach the relay, so that a Start
        // right after this one is not refused as name_taken.
        let _ = tokio::time::timeout(STOP_WAIT, finished.wait_for(|done| *done)).await;
        let key = room.project.clone();
        self.ctx
            .store
            .run(move |c| store::projects::set_joined(c, &key, false, None))
            .await?;
        Ok(room.name.clone())
    }

    /// Stops a project that is not live but still waits to be rejoined
    /// (after a restart that could not rejoin it yet): it stays out. Any
    /// other project gets `not_live`, the error `get` gave.
    async fn stop_waiting(&self, project: &str, not_live: ChatError) -> Result<String, ChatError> {
        let key = project.to_string();
        let stopped = self
            .ctx
            .store
            .run(move |c| {
                let waiting = store::projects::get(c, &key)?.filter(|m| m.joined);
                if waiting.is_some() {
                    store::projects::set_joined(c, &key, false, None)?;
                }
                Ok(waiting.map(|m| m.name))
            })
            .await?;
        stopped.ok_or(not_live)
    }

    /// A room stopped on its own (fatal error after a reconnect): the human
    /// must act, so it is not rejoined automatically.
    pub async fn fail(&self, room: &Arc<Room>, error: &ChatError) {
        room.live().error = Some(error.to_string());
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(room.project.clone(), error.to_string());
        self.remove(room);
        let (key, message) = (room.project.clone(), error.to_string());
        let _ = self
            .ctx
            .store
            .run(move |c| store::projects::set_joined(c, &key, false, Some(&message)))
            .await;
    }

    /// Waits for every connection task after shutdown was signalled.
    pub async fn join_all(&self) {
        for room in self.list() {
            room.stop.fire();
        }
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        while tasks.join_next().await.is_some() {}
    }

    /// Sends a message (or, with `file`, a file) to the room. In auto mode
    /// a message on a thread with a waiting task is an auto-reply: its hop
    /// count follows the mention's, and the thread's tasks are done.
    pub async fn say(&self, input: SayIn) -> Result<SayOut, ChatError> {
        let room = self.get(&input.project)?;
        let role = say_role(input.role.as_deref())?;
        let wait = input.checked_wait()?;
        let to = check_targets(input.to.unwrap_or_default())?;
        let text = input.text.unwrap_or_default();
        if text.len() > MAX_TEXT_BYTES {
            return Err(ChatError::TextTooLarge { bytes: text.len() });
        }
        if let Some(file) = input.file {
            return send_file(
                &room,
                &self.ctx,
                &file,
                to,
                role,
                input.thread,
                input.hop_count,
                text,
            )
            .await;
        }
        if text.trim().is_empty() {
            return Err(ChatError::bad_args(
                "nothing to say: give a text (or --file PATH)",
            ));
        }
        let auto = self.auto_reply_to(&room, input.thread.as_deref()).await?;
        let hop_count = match auto {
            Some(max_incoming) => max_incoming.saturating_add(1),
            None => input.hop_count.unwrap_or(0),
        };
        let thread = input.thread.unwrap_or_else(new_thread_id);
        // Before the message leaves, so no receipt of it is missed.
        let moves = room.receipts.subscribe();
        let (msg_id, ack) =
            send_text(&room, &self.ctx, &to, role, &thread, hop_count, &text).await?;
        if auto.is_some() {
            self.auto_replied(&room, &thread).await?;
        }
        let receipts = match wait {
            Some(wait) => Some(
                self.wait_receipts(&room, &msg_id, &ack.delivered, wait, moves)
                    .await?,
            ),
            None => None,
        };
        Ok(SayOut {
            msg_id,
            thread_id: thread,
            delivered: ack.delivered,
            offline: ack.offline,
            auto_reply: auto.is_some(),
            hop_count,
            file_name: None,
            file_size: None,
            receipts,
        })
    }

    /// When a message on `thread` is an auto-reply (auto mode, a task
    /// waiting on the thread): the highest hop count of its mentions.
    async fn auto_reply_to(
        &self,
        room: &Room,
        thread: Option<&str>,
    ) -> Result<Option<i64>, ChatError> {
        let (Some(thread), Mode::Auto) = (thread, room.live().mode) else {
            return Ok(None);
        };
        let (project, thread) = (room.project.clone(), thread.to_string());
        let tasks = self
            .ctx
            .store
            .run(move |c| store::inbox::tasks(c, &project, Some(&thread)))
            .await?;
        Ok(tasks.iter().filter_map(|t| t["hopCount"].as_i64()).max())
    }

    /// An auto-reply went out on `thread`: its tasks are done, and the
    /// room hears when the thread reached the hop limit.
    async fn auto_replied(&self, room: &Room, thread: &str) -> Result<(), ChatError> {
        let (project, thread, limit) = (
            room.project.clone(),
            thread.to_string(),
            room.settings.hop_limit,
        );
        let events = self
            .ctx
            .store
            .run(move |c| {
                let count = store::inbox::count_auto_reply(c, &project, &thread)?;
                store::inbox::delete_tasks(c, &project, &thread)?;
                let mut events = Vec::new();
                if count >= limit {
                    let text = format!("thread {thread} reached hop limit ({limit}); auto-reply disabled on this thread. New @mentions on it will go to inbox.");
                    events.push(inbound::system(c, &project, &text)?);
                }
                Ok(events)
            })
            .await?;
        room.publish(events);
        Ok(())
    }

    /// A page of pending mentions and the latest handled ones, within
    /// `INBOX_BYTES` whatever the mentions hold.
    pub async fn inbox(
        &self,
        project: &str,
        offset: u64,
        limit: u64,
    ) -> Result<InboxOut, ChatError> {
        let room = self.get(project)?;
        let key = room.project.clone();
        let (mut pending, archive, total) = self
            .ctx
            .store
            .run(move |c| {
                store::inbox::sweep(c, &key, now_ms() as i64)?;
                store::inbox::page(c, &key, offset, limit, ARCHIVE_SHOWN)
            })
            .await?;
        let mut bytes = 0;
        let fits = pending
            .iter()
            .take_while(|item| {
                bytes += item.text.len() + 512;
                bytes <= INBOX_BYTES
            })
            .count();
        pending.truncate(fits.max(1));
        pending.extend(archive);
        Ok(InboxOut {
            items: pending,
            pending: total,
        })
    }

    /// Moves the thread's pending mentions to `status` (stale tasks and
    /// expiries first); NotFound when there were none.
    async fn resolve(
        &self,
        project: &str,
        thread: &str,
        status: &'static str,
    ) -> Result<(Arc<Room>, Vec<InboxItem>), ChatError> {
        let room = self.get(project)?;
        let (key, thread2) = (room.project.clone(), thread.to_string());
        let items = self
            .ctx
            .store
            .run(move |c| {
                store::inbox::sweep(c, &key, now_ms() as i64)?;
                store::inbox::resolve(c, &key, &thread2, status)
            })
            .await?;
        if items.is_empty() {
            return Err(ChatError::NotFound {
                what: format!("no pending inbox message on thread {thread}"),
            });
        }
        Ok((room, items))
    }

    pub async fn accept(
        &self,
        project: &str,
        thread: &str,
        extra: Option<String>,
        asking: Option<String>,
    ) -> Result<AcceptOut, ChatError> {
        let (room, items) = self.resolve(project, thread, "accepted").await?;
        // In manual mode the accepted request goes to the live session, if
        // there is one and it is not the one accepting.
        if room.live().mode == Mode::Manual {
            let rows: Vec<Value> = items.iter().map(|i| json!(i)).collect();
            self.push_accepted(&room, thread, &rows, extra.as_deref(), asking.as_deref())
                .await?;
        }
        Ok(AcceptOut { items, extra })
    }

    pub async fn reject(
        &self,
        project: &str,
        thread: &str,
        reason: Option<String>,
    ) -> Result<RejectOut, ChatError> {
        let (room, items) = self.resolve(project, thread, "rejected").await?;
        let mut to: Vec<String> = Vec::new();
        for item in &items {
            if !to.contains(&item.from) {
                to.push(item.from.clone());
            }
        }
        let text = format!(
            "[reject] {}",
            reason
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| "(no reason given)".into())
        );
        if let Err(error) = send_text(&room, &self.ctx, &to, "user", thread, 0, &text).await {
            tracing::warn!(%error, "reject_send_failed");
        }
        Ok(RejectOut {
            rejected: items.len() as u64,
            to,
        })
    }

    pub async fn append(
        &self,
        project: &str,
        thread: &str,
        text: &str,
    ) -> Result<AppendOut, ChatError> {
        let room = self.get(project)?;
        if text.trim().is_empty() {
            return Err(ChatError::bad_args("nothing to append: give a text"));
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(ChatError::TextTooLarge { bytes: text.len() });
        }
        let (key, thread2, me) = (room.project.clone(), thread.to_string(), room.name.clone());
        let to = self
            .ctx
            .store
            .run(move |c| store::messages::participants(c, &key, &thread2, &me))
            .await?
            .ok_or_else(|| ChatError::NotFound {
                what: format!(
                    "unknown thread {thread}: no message on it in this project's history"
                ),
            })?;
        let (msg_id, ack) = send_text(&room, &self.ctx, &to, "user", thread, 0, text).await?;
        Ok(AppendOut {
            msg_id,
            thread_id: thread.to_string(),
            delivered: ack.delivered,
            offline: ack.offline,
        })
    }

    pub async fn set_mode(
        &self,
        project: &str,
        mode: Option<String>,
    ) -> Result<(Mode, u32), ChatError> {
        let room = self.get(project)?;
        let Some(mode) = mode else {
            return Ok((room.live().mode, room.settings.hop_limit));
        };
        let mode = config::check_mode(&mode).map_err(|allowed| {
            ChatError::bad_args(format!("mode {mode:?} is not allowed; {allowed}"))
        })?;
        room.live().mode = mode;
        let key = room.project.clone();
        let events = self
            .ctx
            .store
            .run(move |c| {
                store::projects::set_mode(c, &key, mode.as_str())?;
                Ok(vec![inbound::system(
                    c,
                    &key,
                    &format!("[nexscope] mode set to {}", mode.as_str()),
                )?])
            })
            .await?;
        room.publish(events);
        Ok((mode, room.settings.hop_limit))
    }

    pub async fn history(
        &self,
        project: &str,
        limit: Option<i64>,
    ) -> Result<Vec<Value>, ChatError> {
        let room = self.get(project)?;
        let key = room.project.clone();
        let configured = room.settings.peer_index.clone();
        let limit = limit.unwrap_or(50).clamp(1, 500);
        Ok(self
            .ctx
            .store
            .run(move |c| {
                let mut items = store::messages::history(c, &key, limit)?;
                // Each message in carries the label the hooks showed for it.
                for item in items.iter_mut().filter(|i| i["dir"] == "in") {
                    let label = inbound::sender_label(c, &key, &configured, item)?;
                    if let Some(object) = item.as_object_mut() {
                        object.insert("label".into(), label.into());
                    }
                }
                receipts::with_receipts(c, &key, items)
            })
            .await?)
    }

    pub async fn files(
        &self,
        project: &str,
    ) -> Result<Vec<nexscope_proto::api::chat::ReceivedFile>, ChatError> {
        let room = self.get(project)?;
        let key = room.project.clone();
        Ok(self
            .ctx
            .store
            .run(move |c| store::messages::files(c, &key))
            .await?)
    }

    /// Auto tasks still waiting, after moving stale ones to the inbox.
    pub async fn tasks(&self, project: &str) -> Result<Vec<Value>, ChatError> {
        let room = self.get(project)?;
        let key = room.project.clone();
        let (moved, tasks) = self
            .ctx
            .store
            .run(move |c| {
                let moved = store::inbox::sweep(c, &key, now_ms() as i64)?;
                Ok((moved, store::inbox::tasks(c, &key, None)?))
            })
            .await?;
        if !moved.is_empty() {
            tracing::info!(project = %room.project, moved = moved.len(), "stale auto tasks moved to the inbox");
        }
        Ok(tasks)
    }

    pub async fn notifications(
        &self,
        project: &str,
        consumer: &str,
        limit: Option<i64>,
    ) -> Result<(Vec<Event>, bool), ChatError> {
        let room = self.get(project)?;
        if consumer.is_empty() || consumer.len() > 64 {
            return Err(ChatError::bad_args("consumer must be 1 to 64 characters"));
        }
        let limit = limit.unwrap_or(store::events::DRAIN_EVENTS);
        if !(0..=store::events::DRAIN_EVENTS).contains(&limit) {
            return Err(ChatError::bad_args(format!(
                "limit must be 0 to {} (got {limit})",
                store::events::DRAIN_EVENTS
            )));
        }
        let via = receipts::via_of(consumer);
        let (key, consumer) = (room.project.clone(), consumer.to_string());
        let (events, more) = self
            .ctx
            .store
            .run(move |c| store::events::drain(c, &key, &consumer, limit))
            .await?;
        // Handed to a hook or an MCP client: in front of the agent now.
        let messages = events
            .iter()
            .filter(|e| e.kind == "msg")
            .map(|e| e.row.clone());
        let theirs = receipts::theirs(messages, &room.name);
        // The events are drained (committed): a receipt failing must not lose them.
        if let Err(error) =
            receipts::report(&self.ctx, &room, theirs, ReceiptState::Surfaced, Some(via)).await
        {
            tracing::warn!(project = %room.project, %error, "surfaced receipts not sent");
        }
        Ok((events, more))
    }

    /// The number of the newest event already committed for `room`.
    pub async fn last_event(&self, room: &Room) -> Result<i64, ChatError> {
        let key = room.project.clone();
        Ok(self
            .ctx
            .store
            .run(move |c| store::events::last_seq(c, &key))
            .await?)
    }

    pub async fn events_since(&self, room: &Room, seq: i64) -> Result<Vec<Event>, ChatError> {
        let key = room.project.clone();
        Ok(self
            .ctx
            .store
            .run(move |c| store::events::after(c, &key, seq))
            .await?)
    }
}

/// The role a Say may speak as: `userAgent` (the default) or `user`.
fn say_role(role: Option<&str>) -> Result<&'static str, ChatError> {
    match role {
        None | Some("userAgent") => Ok("userAgent"),
        Some("user") => Ok("user"),
        Some(other) => Err(ChatError::bad_args(format!(
            "role {other:?} is not allowed; use \"user\" or \"userAgent\""
        ))),
    }
}

/// Names in `to`: the v1 rule, each once.
fn check_targets(to: Vec<String>) -> Result<Vec<String>, ChatError> {
    let mut names: Vec<String> = Vec::new();
    for name in to {
        let name = name.trim_start_matches('@').to_string();
        if !nexscope_proto::rules::valid_name(&name) {
            return Err(ChatError::bad_args(format!(
                "recipient {name:?} is not a valid name (1 to 32 of a-z, A-Z, 0-9, _ and -)"
            )));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// `t-<epoch ms>-<6 base-36 chars>` (docs/protocol.md §2.7).
pub fn new_thread_id() -> String {
    let mut bytes = [0u8; 6];
    let _ = getrandom::fill(&mut bytes);
    let suffix: String = bytes
        .iter()
        .map(|b| char::from_digit((*b % 36) as u32, 36).unwrap_or('0'))
        .collect();
    format!("t-{}-{suffix}", now_ms())
}

/// A random UUID v4, as v1's clients use for msgId.
pub fn new_msg_id() -> String {
    nexscope_proto::ids::uuid_v4()
}

/// The name and mode a Start joins with: asked for, else stored, else
/// configured; checked.
fn identity(
    request: &StartIn,
    stored: Option<&store::projects::Membership>,
    settings: &Settings,
) -> Result<(String, Mode), ChatError> {
    let name = request
        .name
        .clone()
        .or_else(|| stored.map(|m| m.name.clone()))
        .or_else(|| settings.name.clone())
        .ok_or_else(|| {
            ChatError::bad_args("no name: pass -n NAME, or set default_name in config.toml")
        })?;
    let name = config::check_name(&name).map_err(|allowed| {
        ChatError::bad_args(format!("name {name:?} is not allowed; {allowed}"))
    })?;
    let mode = match request
        .mode
        .clone()
        .or_else(|| stored.map(|m| m.mode.clone()))
    {
        Some(mode) => config::check_mode(&mode).map_err(|allowed| {
            ChatError::bad_args(format!("mode {mode:?} is not allowed; {allowed}"))
        })?,
        None => settings.mode,
    };
    Ok((name, mode))
}

/// The relay (None: the embedded one) and the room a Start joins, checked.
fn place(
    request: StartIn,
    stored: Option<&store::projects::Membership>,
    settings: &Settings,
) -> Result<(Option<String>, String), ChatError> {
    let relay = match request.relay {
        Some(url) => Some(config::check_relay_url(&url).map_err(|allowed| {
            ChatError::bad_args(format!("relay {url:?} is not allowed; {allowed}"))
        })?),
        None => settings.relay_url.clone(),
    };
    let room_id = request
        .room
        .or_else(|| stored.map(|m| m.room.clone()))
        .unwrap_or_default();
    if !room_id.is_empty() && !nexscope_proto::rules::valid_room(&room_id) {
        return Err(ChatError::bad_args(format!(
            "room {room_id:?} is not allowed; use 1 to 64 characters from a-z, A-Z, 0-9, ., _ and -"
        )));
    }
    Ok((relay, room_id))
}

/// Whether a failure to join may pass by itself (the store could not
/// commit, the relay did not answer), as opposed to one a person must fix.
fn passing(error: &ChatError) -> bool {
    matches!(
        error,
        ChatError::Internal { .. } | ChatError::RelayNotReady | ChatError::AckTimeout { .. }
    )
}

/// Commits the outbound history row of a frame about to be sent: first, so
/// that a send reported as failed was not sent (a retry cannot duplicate
/// it), and the row stays even when the ack later times out
/// (docs/protocol.md §2.7).
async fn commit_outbound(
    ctx: &Context,
    room: &Room,
    msg_id: &str,
    thread: &str,
    frame: &Value,
) -> Result<(), ChatError> {
    let (key, id, thread) = (room.project.clone(), msg_id.to_string(), thread.to_string());
    let mut row = frame.clone();
    row["ts"] = json!(now_ms());
    ctx.store
        .run(move |c| store::messages::insert(c, &key, "out", &id, &thread, now_ms() as i64, &row))
        .await?;
    Ok(())
}

/// Sends one `msg` and waits for its ack.
async fn send_text(
    room: &Room,
    ctx: &Context,
    to: &[String],
    role: &str,
    thread: &str,
    hop_count: i64,
    text: &str,
) -> Result<(String, Ack), ChatError> {
    if !room.live().ready {
        return Err(ChatError::RelayNotReady);
    }
    let msg_id = new_msg_id();
    let frame = json!({
        "type": "msg", "msgId": msg_id, "from": room.name, "to": to, "role": role,
        "threadId": thread, "text": text, "hopCount": hop_count, "attachments": []
    });
    commit_outbound(ctx, room, &msg_id, thread, &frame).await?;
    let (ack_tx, ack_rx) = oneshot::channel();
    room.commands
        .send(Command::Send {
            frame: frame.to_string(),
            msg_id: msg_id.clone(),
            ack: ack_tx,
        })
        .await
        .map_err(|_| ChatError::RelayNotReady)?;
    let ack = tokio::time::timeout(ACK_TIMEOUT, ack_rx).await;
    match ack {
        Ok(Ok(ack)) => {
            receipts::sent(ctx, room, &msg_id, thread, &ack.delivered).await;
            Ok((msg_id, ack))
        }
        Ok(Err(_)) => Err(ChatError::RelayNotReady),
        Err(_) => Err(ChatError::AckTimeout {
            seconds: ACK_TIMEOUT.as_secs(),
        }),
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_file(
    room: &Room,
    ctx: &Context,
    path: &str,
    to: Vec<String>,
    role: &str,
    thread: Option<String>,
    hop_count: Option<i64>,
    caption: String,
) -> Result<SayOut, ChatError> {
    let outgoing = files::Outgoing::open(
        path,
        room.settings.max_file,
        &room.name,
        to,
        role,
        thread.unwrap_or_else(new_thread_id),
        hop_count.unwrap_or(0),
        caption,
    )?;
    if !room.live().ready {
        return Err(ChatError::RelayNotReady);
    }
    let (name, size, msg_id, thread_id, start) = (
        outgoing.name.clone(),
        outgoing.size,
        outgoing.msg_id.clone(),
        outgoing.thread_id.clone(),
        outgoing.start_frame(),
    );
    commit_outbound(ctx, room, &msg_id, &thread_id, &start).await?;
    let (ack_tx, ack_rx) = oneshot::channel();
    room.commands
        .send(Command::File {
            file: Box::new(outgoing),
            ack: ack_tx,
        })
        .await
        .map_err(|_| ChatError::RelayNotReady)?;
    let ack = match tokio::time::timeout(FILE_ACK_TIMEOUT, ack_rx).await {
        Ok(Ok(result)) => result?,
        Ok(Err(_)) => return Err(ChatError::RelayNotReady),
        Err(_) => {
            return Err(ChatError::AckTimeout {
                seconds: FILE_ACK_TIMEOUT.as_secs(),
            });
        }
    };
    receipts::sent(ctx, room, &msg_id, &thread_id, &ack.delivered).await;
    Ok(SayOut {
        msg_id,
        thread_id,
        delivered: ack.delivered,
        offline: ack.offline,
        auto_reply: false,
        hop_count: hop_count.unwrap_or(0),
        file_name: Some(name),
        file_size: Some(size),
        receipts: None,
    })
}
