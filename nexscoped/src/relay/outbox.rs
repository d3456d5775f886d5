//! A connection's send queue, bounded in bytes. Chat frames are pushed
//! without waiting; file chunks wait for room in the queue (with a
//! deadline), so a big file paces itself to its slowest recipient.
//!
//! A reader is judged by sustained lag, not by one burst: its queue may go
//! past `QUEUE_BYTES` (a burst of large messages to a reader that reads at
//! full speed), and it is told to go only when the queue has stayed over
//! that for `LAG_LIMIT`, or reaches the hard cap `HARD_BYTES`.
//!
//! One allocation per connection while it is idle: the queue itself takes
//! memory only while frames wait (10,000 idle members must stay cheap).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use super::receipt::Ticket;

/// Bytes a connection may have queued and still count as keeping up. A
/// chat frame is a few hundred bytes and a file chunk 64 KiB.
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Bytes no connection may have queued, however briefly: a burst of large
/// frames fits, and 10,000 stalled clients are still bounded.
const HARD_BYTES: usize = 64 * 1024 * 1024;
/// How long a queue may stay over `QUEUE_BYTES` before its reader is too
/// slow for its room: well below the 15 s a v1 client waits for an ack.
pub const LAG_LIMIT: Duration = Duration::from_secs(5);
/// What each queued frame costs at least, so that a flood of tiny frames is
/// bounded in count too.
const MIN_COST: usize = 256;
/// How long a file chunk may wait for a recipient's queue.
pub const CHUNK_WAIT: Duration = Duration::from_secs(30);

/// A queued frame and the budget it holds until written.
pub struct Queued {
    payload: Payload,
    cost: u32,
    /// The sender's receipt, for a routed message.
    ticket: Option<Ticket>,
}

enum Payload {
    Text(Utf8Bytes),
    Binary(Bytes),
}

impl Queued {
    /// Payload bytes, for the metrics.
    pub fn payload_len(&self) -> usize {
        match &self.payload {
            Payload::Text(text) => text.len(),
            Payload::Binary(bytes) => bytes.len(),
        }
    }
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Queued>,
    bytes: usize,
    /// Since when `bytes` has been over `QUEUE_BYTES`.
    over_since: Option<Instant>,
    /// The reader is gone: nothing more is queued.
    closed: bool,
    kicked: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the reader: a frame arrived, or it was told to go.
    ready: Notify,
    /// Wakes chunk senders waiting for room.
    room: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Plain data, consistent between statements.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending side, held by the room.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving side, held by the connection.
pub struct Inbox {
    shared: Arc<Shared>,
}

pub fn channel() -> (Outbox, Inbox) {
    let shared = Arc::new(Shared::default());
    (
        Outbox {
            shared: shared.clone(),
        },
        Inbox { shared },
    )
}

/// What the reader should do next.
pub enum Next {
    Frame(Queued),
    /// Too slow for its room: close it.
    Kicked,
}

impl Inbox {
    /// The next frame, waiting for one.
    pub async fn next(&self) -> Next {
        loop {
            let notified = self.shared.ready.notified();
            if let Some(next) = self.try_next() {
                return next;
            }
            notified.await;
        }
    }

    /// The next frame if one waits.
    pub fn try_next(&self) -> Option<Next> {
        let mut queue = self.shared.lock();
        if queue.kicked {
            return Some(Next::Kicked);
        }
        queue.frames.pop_front().map(Next::Frame)
    }

    /// The frame to write, and its ticket to mark written once it is; its
    /// budget is free again.
    pub fn take(&self, queued: Queued) -> (Message, Option<Ticket>) {
        {
            let mut queue = self.shared.lock();
            queue.bytes -= queued.cost as usize;
            if queue.bytes <= QUEUE_BYTES {
                queue.over_since = None;
            }
            if queue.frames.is_empty() {
                queue.frames = VecDeque::new();
            }
        }
        self.shared.room.notify_waiters();
        let message = match queued.payload {
            Payload::Text(text) => Message::Text(text),
            Payload::Binary(bytes) => Message::Binary(bytes),
        };
        (message, queued.ticket)
    }

    /// Whether the reader was told to go (checked while it writes).
    pub async fn kicked(&self) {
        loop {
            let notified = self.shared.ready.notified();
            if self.shared.lock().kicked {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let unsent = {
            let mut queue = self.shared.lock();
            queue.closed = true;
            std::mem::take(&mut queue.frames)
        };
        // Dropped unlocked: their tickets tell senders (maybe this very
        // connection's own outbox) that they were not delivered.
        drop(unsent);
        self.shared.room.notify_waiters();
    }
}

fn cost(message: &Message) -> usize {
    message.len().clamp(MIN_COST, HARD_BYTES)
}

/// What a push found.
enum Pushed {
    Queued,
    /// The reader was (or has now been) told to go.
    Kicked,
    Gone,
}

impl Outbox {
    /// Queues without waiting. False when the client is too slow (it is then
    /// told to go) or already gone.
    pub fn push(&self, message: Message) -> bool {
        matches!(self.try_push(message, false, None), Ok(Pushed::Queued))
    }

    /// `push` for a routed message: `ticket` is settled when the frame is
    /// written, or dropped (not delivered) if it never is.
    pub fn push_routed(&self, message: Message, ticket: Ticket) -> bool {
        matches!(
            self.try_push(message, false, Some(ticket)),
            Ok(Pushed::Queued)
        )
    }

    /// Queues, waiting up to `CHUNK_WAIT` for the queue to come back under
    /// `QUEUE_BYTES`. False if the client did not make room in time (it is
    /// told to go) or is gone.
    pub async fn push_waiting(&self, message: Message) -> bool {
        let deadline = tokio::time::Instant::now() + CHUNK_WAIT;
        let mut message = Some(message);
        loop {
            let notified = self.shared.room.notified();
            let Some(next) = message.take() else {
                return false;
            };
            match self.try_push(next, true, None) {
                Ok(Pushed::Queued) => return true,
                Ok(Pushed::Kicked | Pushed::Gone) => return false,
                Err(back) => message = Some(back),
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                self.kick();
                return false;
            }
        }
    }

    /// Queues `message`; when `wait` and the queue is over `QUEUE_BYTES`,
    /// gives it back to wait for room.
    fn try_push(
        &self,
        message: Message,
        wait: bool,
        ticket: Option<Ticket>,
    ) -> Result<Pushed, Message> {
        let cost = cost(&message);
        let payload = match message {
            Message::Text(text) => Payload::Text(text),
            Message::Binary(bytes) => Payload::Binary(bytes),
            // Only data frames are queued; control frames are the
            // connection's own business.
            _ => return Ok(Pushed::Gone),
        };
        let mut queue = self.shared.lock();
        if queue.closed || queue.kicked {
            return Ok(Pushed::Gone);
        }
        if wait && queue.bytes > QUEUE_BYTES {
            drop(queue);
            return Err(match payload {
                Payload::Text(text) => Message::Text(text),
                Payload::Binary(bytes) => Message::Binary(bytes),
            });
        }
        let now = Instant::now();
        let lagging = queue
            .over_since
            .is_some_and(|since| now.duration_since(since) >= LAG_LIMIT);
        if queue.bytes + cost > HARD_BYTES || lagging {
            queue.kicked = true;
            drop(queue);
            self.shared.ready.notify_one();
            return Ok(Pushed::Kicked);
        }
        queue.bytes += cost;
        if queue.bytes > QUEUE_BYTES && queue.over_since.is_none() {
            queue.over_since = Some(now);
        }
        queue.frames.push_back(Queued {
            payload,
            cost: cost as u32,
            ticket,
        });
        drop(queue);
        self.shared.ready.notify_one();
        Ok(Pushed::Queued)
    }

    /// Tells the connection to close as a slow consumer.
    pub fn kick(&self) {
        self.shared.lock().kicked = true;
        self.shared.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: usize) -> Message {
        Message::Binary(Bytes::from(vec![0u8; bytes]))
    }

    #[test]
    fn a_burst_over_the_soft_limit_is_taken_while_the_reader_keeps_up() {
        let (outbox, inbox) = channel();
        for _ in 0..10 {
            assert!(outbox.push(frame(1024 * 1024)), "10 MiB fit a burst");
        }
        let mut read = 0;
        while let Some(Next::Frame(queued)) = inbox.try_next() {
            let _ = inbox.take(queued);
            read += 1;
        }
        assert_eq!(read, 10);
        assert!(outbox.push(frame(1024)));
    }

    #[test]
    fn the_hard_cap_and_sustained_lag_tell_the_reader_to_go() {
        let (outbox, inbox) = channel();
        for _ in 0..63 {
            assert!(outbox.push(frame(1024 * 1024)));
        }
        assert!(!outbox.push(frame(2 * 1024 * 1024)), "past the hard cap");
        assert!(matches!(inbox.try_next(), Some(Next::Kicked)));

        let (outbox, inbox) = channel();
        assert!(outbox.push(frame(QUEUE_BYTES + 1)));
        inbox.shared.lock().over_since = Some(Instant::now() - LAG_LIMIT);
        assert!(!outbox.push(frame(10)), "over the limit for LAG_LIMIT");
        assert!(matches!(inbox.try_next(), Some(Next::Kicked)));
    }

    #[test]
    fn a_closed_reader_takes_nothing_and_frees_its_queue() {
        let (outbox, inbox) = channel();
        assert!(outbox.push(frame(10)));
        drop(inbox);
        assert!(outbox.is_closed());
        assert!(!outbox.push(frame(10)));
        assert!(outbox.shared.lock().frames.capacity() == 0);
    }
}
