//! Rooms: who is online, routing, presence, and the file-transfer lock.
//!
//! A room's state sits behind one short-held mutex; nothing awaits while
//! holding it (pushes into outboxes never wait). Frames are built once and
//! shared by every recipient. Presence for the others is coalesced (v1's
//! full list to everyone on every change costs O(N²) bytes;
//! docs/protocol.md §1.6): the newcomer gets the full list at once, the rest
//! get one update per `PRESENCE_WINDOW` at most, a full list for v1 clients
//! and `joined`/`left` for clients that asked for `presence=delta`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::frame::{self, ErrorCode};
use super::outbox::Outbox;
use super::receipt::Receipt;

/// Presence updates to a room's members are at most this frequent: enough
/// for a person to see joins as they happen, and it turns a burst of 1,000
/// joins into a handful of lists instead of 1,000 × members.
pub const PRESENCE_WINDOW: Duration = Duration::from_millis(100);

pub fn text(s: String) -> Message {
    Message::Text(Utf8Bytes::from(s))
}

pub struct Member {
    pub id: u64,
    pub outbox: Outbox,
    pub delta: bool,
    /// Asked for receipt frames (`receipts=1`).
    pub receipts: bool,
    /// What the member said is behind its name (status frames).
    pub agent: Option<&'static str>,
    /// Asked for history sequences (`since`, in a relay tier).
    pub history: bool,
    /// The last presence event this member's view already includes.
    seen: u64,
}

/// A file transfer in flight: at most one per room (docs/protocol.md §1.7).
pub struct Transfer {
    pub sender_id: u64,
    /// The raw JSON of the file's msgId and threadId, as the sender wrote them.
    pub msg_id: String,
    pub thread_id: String,
    pub broadcast: bool,
    pub recipients: Vec<(String, Outbox)>,
    pub offline: Vec<String>,
    pub size: u64,
    pub bytes: u64,
}

#[derive(Default)]
struct State {
    members: BTreeMap<String, Member>,
    transfer: Option<Transfer>,
    /// Joins (true) and leaves (false) not yet told to the others.
    events: Vec<(u64, String, bool)>,
    seq: u64,
    flush_scheduled: bool,
    last_flush: Option<Instant>,
}

pub struct Room {
    pub id: String,
    state: Mutex<State>,
    /// Bumped when this relay stops being the room's home (a relay tier):
    /// its members close with 1012 and reconnect to the new one.
    pub deposed: tokio::sync::watch::Sender<u64>,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge the room: the state is plain data
        // and stays consistent between statements.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn members(&self) -> usize {
        self.lock().members.len()
    }

    /// Sends one routed frame. The sender's ack follows once every
    /// recipient's connection has written it or dropped it (`receipt`).
    /// `to` empty: every other member (docs/protocol.md §1.4).
    /// `numbered`: the frame with its history sequence, for members that
    /// asked for sequences (a relay tier).
    pub fn route(
        &self,
        sender: &str,
        incoming: &frame::Incoming,
        out: Message,
        numbered: Option<Message>,
    ) -> Option<Arc<Receipt>> {
        let state = self.lock();
        let sender_outbox = state.members.get(sender).map(|m| m.outbox.clone())?;
        let mut targets: Vec<(&str, &Member)> = Vec::new();
        let mut offline: Vec<Box<str>> = Vec::new();
        if incoming.to.is_empty() {
            targets.extend(
                state
                    .members
                    .iter()
                    .filter(|(n, _)| n.as_str() != sender)
                    .map(|(n, m)| (n.as_str(), m)),
            );
        } else {
            for name in incoming.to.iter() {
                match state.members.get(&**name) {
                    Some(member) => targets.push((name, member)),
                    None => offline.push(name.clone()),
                }
            }
        }
        let receipt = Receipt::new(
            sender_outbox,
            incoming.msg_id.clone(),
            incoming.thread_id.clone(),
            targets.iter().map(|(n, _)| Box::from(*n)).collect(),
            offline,
        );
        // A push that fails drops its ticket: that recipient is offline.
        for (index, (_, member)) in targets.iter().enumerate() {
            let frame = match (&numbered, member.history) {
                (Some(numbered), true) => numbered.clone(),
                _ => out.clone(),
            };
            member.outbox.push_routed(frame, receipt.ticket(index));
        }
        Some(receipt)
    }

    /// Forwards a receipt frame to the named members that asked for
    /// receipts; nobody else ever sees one, and nothing is acknowledged.
    pub fn route_receipt(&self, incoming: &frame::Incoming, out: Message) {
        let state = self.lock();
        for name in incoming.to.iter() {
            if let Some(member) = state.members.get(&**name).filter(|m| m.receipts) {
                member.outbox.push(out.clone());
            }
        }
    }

    /// Records what is behind `sender`'s name and tells the other members
    /// that asked for receipts.
    pub fn set_status(&self, sender: &str, agent: &'static str, out: Message) {
        let mut state = self.lock();
        if let Some(member) = state.members.get_mut(sender) {
            member.agent = Some(agent);
        }
        for (name, member) in &state.members {
            if name != sender && member.receipts {
                member.outbox.push(out.clone());
            }
        }
    }

    /// Takes the transfer lock and forwards the file-start
    /// (docs/protocol.md §1.7 step 1).
    pub fn start_transfer(
        &self,
        sender: &str,
        sender_id: u64,
        incoming: &frame::Incoming,
        out: Message,
    ) -> Result<(), ErrorCode> {
        let mut state = self.lock();
        if state.transfer.is_some() {
            return Err(ErrorCode::TransferBusy);
        }
        let mut recipients = Vec::new();
        let mut offline = Vec::new();
        // Never the sender itself: its own chunks would wait on its own loop.
        let targets: Vec<&str> = if incoming.to.is_empty() {
            state
                .members
                .keys()
                .map(String::as_str)
                .filter(|n| *n != sender)
                .collect()
        } else {
            incoming
                .to
                .iter()
                .map(|n| &**n)
                .filter(|n| *n != sender)
                .collect()
        };
        for name in targets {
            match state.members.get(name) {
                Some(member) if member.outbox.push(out.clone()) => {
                    recipients.push((name.to_string(), member.outbox.clone()))
                }
                _ => offline.push(name.to_string()),
            }
        }
        state.transfer = Some(Transfer {
            sender_id,
            msg_id: incoming
                .msg_id
                .as_deref()
                .map(|r| r.get().to_string())
                .unwrap_or_else(|| "null".into()),
            thread_id: incoming
                .thread_id
                .as_deref()
                .map(|r| r.get().to_string())
                .unwrap_or_else(|| "null".into()),
            broadcast: incoming.to.is_empty(),
            recipients,
            offline,
            size: incoming.size.unwrap_or(0),
            bytes: 0,
        });
        Ok(())
    }

    /// The recipients of one binary chunk from `sender_id`, if it holds the
    /// lock and the chunk fits the declared size.
    pub fn chunk_recipients(&self, sender_id: u64, len: usize) -> Result<Vec<Outbox>, ErrorCode> {
        let mut state = self.lock();
        let Some(transfer) = state.transfer.as_mut().filter(|t| t.sender_id == sender_id) else {
            return Err(ErrorCode::UnexpectedBinary);
        };
        // Recipients that left get nothing more (and cost no waiting).
        transfer
            .recipients
            .retain(|(_, outbox)| !outbox.is_closed());
        transfer.bytes += len as u64;
        if transfer.bytes > transfer.size {
            drop(state);
            self.abort_transfer(sender_id);
            return Err(ErrorCode::FileTooLarge);
        }
        Ok(transfer.recipients.iter().map(|(_, o)| o.clone()).collect())
    }

    /// Releases the lock for a matching file-end and hands over the transfer.
    pub fn end_transfer(&self, sender_id: u64, msg_id: Option<&str>) -> Option<Transfer> {
        let mut state = self.lock();
        let matches = state
            .transfer
            .as_ref()
            .is_some_and(|t| t.sender_id == sender_id && Some(t.msg_id.as_str()) == msg_id);
        if matches { state.transfer.take() } else { None }
    }

    /// Whether `name` is still the member it was (for file-end delivery).
    pub fn is_member(&self, name: &str) -> bool {
        self.lock().members.contains_key(name)
    }

    /// Drops the transfer held by `sender_id` (timeout, disconnect, bad size)
    /// and tells the recipients that got its file-start.
    pub fn abort_transfer(&self, sender_id: u64) -> bool {
        let transfer = {
            let mut state = self.lock();
            if state
                .transfer
                .as_ref()
                .is_none_or(|t| t.sender_id != sender_id)
            {
                return false;
            }
            state.transfer.take()
        };
        if let Some(transfer) = transfer {
            let notice = text(frame::transfer_incomplete(&transfer.msg_id));
            for (_, outbox) in &transfer.recipients {
                outbox.push(notice.clone());
            }
        }
        true
    }
}

/// What is known of the members' statuses, for a client that can read it.
fn statuses(state: &State) -> String {
    let known = state
        .members
        .iter()
        .filter_map(|(n, m)| Some((n.as_str(), m.agent?)));
    frame::status_snapshot(known, nexscope_proto::time::now_ms())
}

/// What a member asked for beyond v1 when it connected.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wants {
    /// `presence=delta`: joins and leaves instead of full lists.
    pub delta: bool,
    /// `receipts=1`: receipt frames, sent and received.
    pub receipts: bool,
    /// `since=<seq>|now`: history sequences on messages, and (a number)
    /// what was missed after it first.
    pub since: Option<Since>,
}

/// Where a member's catch-up starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Since {
    /// After this history sequence.
    Seq(u64),
    /// Nothing missed to replay; sequences from now on.
    Now,
}

impl Since {
    pub fn parse(text: &str) -> Option<Since> {
        match text {
            "now" => Some(Since::Now),
            _ => text.parse().ok().map(Since::Seq),
        }
    }
}

/// What a successful join gives the connection.
pub struct Joined {
    pub room: Arc<Room>,
    /// The full list, to be sent as the connection's first frame.
    pub presence: String,
    /// For a receipts client: what is behind each member, sent next.
    pub statuses: Option<String>,
}

/// Every room of a relay, created on first join and dropped when empty.
#[derive(Default)]
pub struct Rooms {
    map: Mutex<HashMap<String, Arc<Room>>>,
}

impl Rooms {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Room>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// The rooms held now.
    pub fn all(&self) -> Vec<Arc<Room>> {
        self.lock().values().cloned().collect()
    }

    /// Adds a member, checking the name and the cap (docs/protocol.md §1.2
    /// steps 4 and 5). The registry stays locked across the room's join so
    /// an emptied room is never removed under a joiner.
    pub fn join(
        &self,
        room_id: &str,
        name: &str,
        member_id: u64,
        outbox: Outbox,
        wants: Wants,
        max_users: usize,
    ) -> Result<Joined, ErrorCode> {
        let mut map = self.lock();
        let room = map
            .entry(room_id.to_string())
            .or_insert_with(|| {
                Arc::new(Room {
                    id: room_id.to_string(),
                    state: Mutex::new(State::default()),
                    deposed: tokio::sync::watch::channel(0).0,
                })
            })
            .clone();
        let mut state = room.lock();
        if state.members.contains_key(name) {
            drop(state);
            drop_if_empty(&mut map, &room);
            return Err(ErrorCode::NameTaken);
        }
        if state.members.len() >= max_users {
            drop(state);
            drop_if_empty(&mut map, &room);
            return Err(ErrorCode::RoomFull);
        }
        state.seq += 1;
        let seq = state.seq;
        state.events.push((seq, name.to_string(), true));
        state.members.insert(
            name.to_string(),
            Member {
                id: member_id,
                outbox,
                delta: wants.delta,
                receipts: wants.receipts,
                agent: None,
                history: wants.since.is_some(),
                seen: seq,
            },
        );
        let presence = frame::presence(
            state.members.keys().map(String::as_str),
            state.members.len(),
            nexscope_proto::time::now_ms(),
            wants.receipts,
        );
        let statuses = wants.receipts.then(|| statuses(&state));
        schedule_flush(&room, &mut state);
        drop(state);
        Ok(Joined {
            room,
            presence,
            statuses,
        })
    }

    /// Removes the member if it is still `member_id` (a newer connection may
    /// have the name by now), aborting its transfer.
    pub fn leave(&self, room: &Arc<Room>, name: &str, member_id: u64) {
        room.abort_transfer(member_id);
        let mut map = self.lock();
        {
            let mut state = room.lock();
            if state.members.get(name).is_some_and(|m| m.id == member_id) {
                state.members.remove(name);
                state.seq += 1;
                let seq = state.seq;
                state.events.push((seq, name.to_string(), false));
                schedule_flush(room, &mut state);
            }
        }
        drop_if_empty(&mut map, room);
    }
}

fn drop_if_empty(map: &mut HashMap<String, Arc<Room>>, room: &Arc<Room>) {
    let empty = room.lock().members.is_empty();
    if empty && map.get(&room.id).is_some_and(|r| Arc::ptr_eq(r, room)) {
        map.remove(&room.id);
    }
}

/// Arranges for the others to hear about the change: now if the room was
/// quiet for a window, else at the end of the current window.
fn schedule_flush(room: &Arc<Room>, state: &mut State) {
    if state.flush_scheduled {
        return;
    }
    state.flush_scheduled = true;
    let delay = match state.last_flush {
        Some(at) => PRESENCE_WINDOW.saturating_sub(at.elapsed()),
        None => Duration::ZERO,
    };
    let room = room.clone();
    // Short-lived (one window at most) and self-contained: it only pushes
    // into outboxes, so nobody needs to join it.
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        flush_presence(&room);
    });
}

/// Tells every member the changes it has not seen.
fn flush_presence(room: &Room) {
    let mut state = room.lock();
    state.flush_scheduled = false;
    state.last_flush = Some(Instant::now());
    let events = std::mem::take(&mut state.events);
    let Some(&(first, _, _)) = events.first() else {
        return;
    };
    let ts = nexscope_proto::time::now_ms();
    // The full list only if a v1 member needs it.
    let full = state.members.values().any(|m| !m.delta).then(|| {
        let users = state.members.keys().map(String::as_str);
        text(frame::presence(users, state.members.len(), ts, false))
    });
    // Members who saw nothing of this window share one delta frame.
    let shared_delta = delta_since(&events, first - 1, ts);
    for member in state.members.values() {
        if member.seen >= events.last().map(|e| e.0).unwrap_or(0) {
            continue; // joined after every event here: its first frame had it all
        }
        let message = if let (false, Some(full)) = (member.delta, &full) {
            full.clone()
        } else if member.seen < first {
            match &shared_delta {
                Some(frame) => frame.clone(),
                None => continue,
            }
        } else {
            match delta_since(&events, member.seen, ts) {
                Some(frame) => frame,
                None => continue,
            }
        };
        member.outbox.push(message);
    }
}

/// The net joins and leaves after event `seen`; None when they cancel out.
fn delta_since(events: &[(u64, String, bool)], seen: u64, ts: u64) -> Option<Message> {
    let mut net: BTreeMap<&str, i32> = BTreeMap::new();
    for (_, name, joined) in events.iter().filter(|e| e.0 > seen) {
        *net.entry(name).or_default() += if *joined { 1 } else { -1 };
    }
    let joined: Vec<&str> = net
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, _)| *k)
        .collect();
    let left: Vec<&str> = net
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(k, _)| *k)
        .collect();
    if joined.is_empty() && left.is_empty() {
        return None;
    }
    Some(text(frame::presence_delta(&joined, &left, ts)))
}
