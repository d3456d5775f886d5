//! `io.nexscope.Chat`: thin handlers over `rooms`; every error a named
//! varlink error with `{code, message}`.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::service::to_value;
use super::{Failure, Replies};
use crate::state::Daemon;
use nexscope_proto::api::agent::Usage;
use nexscope_proto::api::chat::*;
use nexscope_proto::varlink::{Call, VarlinkError};

impl From<ChatError> for Failure {
    fn from(error: ChatError) -> Self {
        Failure::Error(error.into())
    }
}

/// The dispatch of `io.nexscope.Chat`: one short arm per method, thin
/// over `rooms` (long only for their number).
pub async fn call(
    daemon: &Arc<Daemon>,
    call: &Call,
    replies: &mut Replies<'_>,
) -> Result<Value, Failure> {
    let rooms = &daemon.rooms;
    match Method::decode(call)? {
        Method::Start(input) => {
            // What Start asks for; None: the stored membership, else the config.
            let state = rooms.start(&daemon.config(), input, false).await?;
            Ok(to_value(StateOut { state })?)
        }
        Method::Stop(input) => Ok(to_value(StopOut {
            name: rooms.stop(&input.project).await?,
        })?),
        Method::Status(input) => Ok(to_value(StateOut {
            state: rooms.get(&input.project)?.state(),
        })?),
        Method::Projects(_) => Ok(to_value(ProjectsOut {
            rooms: rooms.list().iter().map(|r| r.state()).collect(),
        })?),
        Method::Say(input) => Ok(to_value(rooms.say(input).await?)?),
        Method::Who(input) => {
            let room = rooms.get(&input.project)?;
            let state = room.state();
            let mut agents = room.live().agents.clone();
            agents.insert(room.name.clone(), room.leases.kind().to_string());
            agents.retain(|name, _| state.users.contains(name));
            Ok(to_value(WhoOut {
                users: state.users,
                ready: Some(state.ready),
                agents: Some(agents),
            })?)
        }
        Method::Inbox(input) => {
            let (offset, limit) = input.checked_page()?;
            Ok(to_value(rooms.inbox(&input.project, offset, limit).await?)?)
        }
        Method::Accept(input) => Ok(to_value(
            rooms
                .accept(&input.project, &input.thread, input.extra, input.session)
                .await?,
        )?),
        Method::Reject(input) => Ok(to_value(
            rooms
                .reject(&input.project, &input.thread, input.reason)
                .await?,
        )?),
        Method::Append(input) => {
            let text = input.text.unwrap_or_default();
            Ok(to_value(
                rooms.append(&input.project, &input.thread, &text).await?,
            )?)
        }
        Method::Mode(input) => {
            let (mode, hop_limit) = rooms.set_mode(&input.project, input.mode).await?;
            Ok(to_value(ModeOut {
                mode: mode.as_str().into(),
                hop_limit,
            })?)
        }
        Method::History(input) => {
            let limit = input.checked_limit()?;
            Ok(to_value(HistoryOut {
                items: rooms.history(&input.project, Some(limit)).await?,
            })?)
        }
        Method::Files(input) => Ok(to_value(FilesOut {
            files: rooms.files(&input.project).await?,
        })?),
        Method::Tasks(input) => Ok(to_value(TasksOut {
            tasks: rooms.tasks(&input.project).await?,
        })?),
        Method::Costs(input) => {
            let threads = rooms.costs(&input.project).await?;
            let (mut ours, mut theirs) = (Usage::default(), Usage::default());
            for thread in &threads {
                ours.add(&thread.ours);
                theirs.add(&thread.theirs);
            }
            Ok(to_value(CostsOut {
                threads,
                ours,
                theirs,
            })?)
        }
        Method::Register(input) => {
            let room = rooms.get(&input.project)?;
            Ok(to_value(LiveOut {
                sessions: room.leases.register(input)?,
            })?)
        }
        Method::Live(input) => Ok(to_value(LiveOut {
            sessions: rooms.get(&input.project)?.leases.live(),
        })?),
        Method::Receipts(input) => Ok(to_value(ReceiptsOut {
            receipts: rooms.receipts(&input.project, &input.id).await?,
        })?),
        Method::Notifications(input) => {
            let (events, more) = rooms
                .notifications(&input.project, &input.consumer, input.limit)
                .await?;
            Ok(to_value(NotificationsOut { events, more })?)
        }
        Method::Watch(input) => {
            if !call.more {
                return Err(VarlinkError::expected_more().into());
            }
            watch(daemon, &input.project, replies).await
        }
    }
}

/// The room's state, then each event as it is committed and each receipt
/// of ours as it moves, until the room or the daemon stops.
async fn watch(
    daemon: &Arc<Daemon>,
    project: &str,
    replies: &mut Replies<'_>,
) -> Result<Value, Failure> {
    let room = daemon.rooms.get(project)?;
    // Subscribe before reading the state, so nothing falls between them.
    let mut events = room.events.subscribe();
    let mut receipts = room.receipts.subscribe();
    let stopped = room.stop_signal();
    let shutdown = daemon.shutdown_signal();
    let state = WatchOut {
        state: Some(room.state()),
        ..WatchOut::default()
    };
    replies.send(to_value(state)?, true).await?;
    // Only what is committed from now on; a lagging watcher catches up from here.
    let mut last_seq = daemon.rooms.last_event(&room).await?;
    loop {
        let next = tokio::select! {
            next = events.recv() => next,
            receipt = receipts.recv() => {
                // A lagging watcher misses receipts; `receipts` has them all.
                if let Ok(receipt) = receipt {
                    let out = WatchOut { receipt: Some(receipt), ..WatchOut::default() };
                    replies.send(to_value(out)?, true).await?;
                }
                continue;
            }
            _ = stopped.wait() => break,
            _ = shutdown.wait() => break,
        };
        let batch = match next {
            Ok(event) => vec![event],
            // Too far behind the live stream: the store has the rest.
            Err(RecvError::Lagged(_)) => daemon.rooms.events_since(&room, last_seq).await?,
            Err(RecvError::Closed) => break,
        };
        for event in batch {
            if event.seq <= last_seq {
                continue;
            }
            last_seq = event.seq;
            let out = WatchOut {
                event: Some(event),
                ..WatchOut::default()
            };
            replies.send(to_value(out)?, true).await?;
        }
    }
    Ok(to_value(WatchOut {
        state: Some(room.state()),
        ..WatchOut::default()
    })?)
}
