//! The headless responder (issue 5 part 4): in a project with
//! `responder = "agent"`, the @mentions that auto mode turns into auto tasks
//! are answered by an agent session the daemon hosts (session
//! "nexscope-responder" in the project's root), on the mention's thread, as
//! role userAgent. The reply goes through the same Say as a person's agent,
//! so the stored hop count and the hop limit apply unchanged: past the limit
//! mentions fall to the inbox, make no task, and get no answer.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;

use super::Agents;
use crate::rooms::{Room, Rooms};
use crate::shutdown::Shutdown;
use nexscope_proto::api::agent::{QueryIn, SessionRef, TurnEvent, Usage};
use nexscope_proto::api::chat::{MAX_TEXT_BYTES, SayIn};
use nexscope_proto::config::Responder;

/// The agent session that answers a project's mentions.
pub const SESSION: &str = "nexscope-responder";

/// Follows every room that starts (`started`, from `Rooms::subscribe_started`,
/// taken before any room starts); answers in those whose responder is an agent.
pub async fn run(
    rooms: Arc<Rooms>,
    agents: Arc<Agents>,
    mut started: broadcast::Receiver<Arc<Room>>,
    shutdown: Shutdown,
) {
    let mut answering = JoinSet::new();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = answering.join_next(), if !answering.is_empty() => {}
            room = started.recv() => match room {
                Ok(room) if room.settings.responder == Responder::Agent => {
                    tracing::info!(project = %room.project, "an agent session answers this project's mentions in auto mode");
                    answering.spawn(answer_room(rooms.clone(), agents.clone(), room));
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
        }
    }
    answering.abort_all();
}

/// Answers one room's auto tasks until the room stops.
async fn answer_room(rooms: Arc<Rooms>, agents: Arc<Agents>, room: Arc<Room>) {
    let mut events = room.events.subscribe();
    let room_stop = room.stop_signal();
    let stop = room_stop.wait();
    tokio::pin!(stop);
    // Mentions whose turn failed: not retried on every new mention (each try
    // costs tokens); unanswered, they move to the inbox when stale.
    let mut failed = HashSet::new();
    // Tasks left from before a restart.
    answer_pending(&rooms, &agents, &room, &mut failed).await;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            event = events.recv() => match event {
                Ok(event) if event.kind == "msg" && event.row["mentionsMe"] == Value::Bool(true) => {
                    answer_pending(&rooms, &agents, &room, &mut failed).await;
                }
                Ok(_) => {}
                // Missed events: the tasks themselves are the truth.
                Err(RecvError::Lagged(_)) => answer_pending(&rooms, &agents, &room, &mut failed).await,
                Err(RecvError::Closed) => return,
            },
        }
    }
}

/// Answers the latest auto task of each thread (a reply clears them all).
async fn answer_pending(rooms: &Rooms, agents: &Agents, room: &Room, failed: &mut HashSet<String>) {
    let tasks = match rooms.tasks(&room.project).await {
        Ok(tasks) => tasks,
        Err(error) => {
            tracing::warn!(project = %room.project, %error, "cannot read auto tasks");
            return;
        }
    };
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    for task in tasks {
        if let Some(thread) = task["threadId"].as_str() {
            latest.insert(thread.to_string(), task);
        }
    }
    for (thread, task) in latest {
        let msg_id = task["msgId"].as_str().unwrap_or_default().to_string();
        if failed.contains(&msg_id) {
            continue;
        }
        if !answer(rooms, agents, room, &thread, &task).await {
            failed.insert(msg_id);
        }
    }
}

/// True once the reply is sent.
async fn answer(rooms: &Rooms, agents: &Agents, room: &Room, thread: &str, task: &Value) -> bool {
    let from = task["from"].as_str().unwrap_or_default().to_string();
    let label = task["label"].as_str().unwrap_or(&from);
    let text = task["text"].as_str().unwrap_or_default();
    let prompt = format!(
        "{label} wrote to you ({name}) in the nexscope chat room, thread {thread}:\n\n{text}\n\n\
         Your final answer is sent back to them on that thread; keep it under 4 KB of plain text.",
        name = room.name
    );
    let (reply, usage) = match ask(agents, room, prompt).await {
        Ok(answer) => answer,
        Err(why) => {
            // The task stays; unanswered, it moves to the inbox when stale.
            tracing::warn!(project = %room.project, %thread, %why, "the responder has no answer");
            return false;
        }
    };
    let said = rooms
        .say(SayIn {
            project: room.project.clone(),
            text: Some(truncate(&reply, MAX_TEXT_BYTES).to_string()),
            to: Some(vec![from]),
            role: Some("userAgent".into()),
            thread: Some(thread.to_string()),
            hop_count: None,
            ..SayIn::default()
        })
        .await;
    match said {
        Ok(out) => {
            tracing::info!(project = %room.project, %thread, hop = out.hop_count, "the responder answered");
            // The asker's receipt says what the answer cost.
            if let Err(error) = rooms.answer_cost(&room.project, thread, usage).await {
                tracing::warn!(project = %room.project, %thread, %error, "the answer's cost was not recorded");
            }
            true
        }
        Err(error) => {
            tracing::warn!(project = %room.project, %thread, %error, "the responder's reply was not sent");
            false
        }
    }
}

/// One turn of the room's hosted agent on `prompt`: its last text (earlier
/// ones narrate tool use) and what the turn cost, or why there is none.
async fn ask(agents: &Agents, room: &Room, prompt: String) -> Result<(String, Usage), String> {
    let input = QueryIn {
        target: SessionRef {
            session: Some(SESSION.into()),
            cwd: Some(room.project.clone()),
        },
        prompt,
        // Chat text is not the user's instruction: tools that need approval
        // are refused (nobody is there to approve), never bypassed.
        permission_mode: Some("default".into()),
        ..QueryIn::default()
    };
    let mut stream = agents
        .query(input)
        .await
        .map_err(|error| format!("cannot ask its agent: {error}"))?;
    let mut reply = None;
    let usage = loop {
        match stream.recv().await {
            Some(TurnEvent::Text { content, .. }) => reply = Some(content),
            Some(TurnEvent::Done {
                error: Some(error), ..
            }) => return Err(format!("the turn failed: {error}")),
            Some(TurnEvent::Done { usage, .. }) => break usage,
            Some(_) => {}
            None => return Err("the turn ended without finishing".into()),
        }
    };
    let reply = reply
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| "the agent gave no text".to_string())?;
    Ok((reply, usage))
}

/// At most `limit` bytes, cut at a character boundary.
fn truncate(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("héllo", 3), "hé");
        assert_eq!(super::truncate("hi", 10), "hi");
    }
}
