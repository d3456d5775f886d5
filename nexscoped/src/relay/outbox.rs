//! A connection's send queue, bounded in bytes. Chat frames are pushed
//! without waiting: a client whose queue is full is too slow to follow its
//! room and is disconnected, never buffered without limit. File chunks wait
//! for room in the queue (with a deadline), so a big file paces itself to
//! its slowest recipient instead of dropping it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

/// Bytes a connection may have queued. A chat frame is a few hundred bytes
/// and a file chunk 64 KiB; 4 MiB lets a reader fall seconds behind a busy
/// room before it is cut off, and bounds 10,000 stalled clients to 40 GiB
/// only in theory: the kernel's socket buffers fill long before.
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// What each queued frame costs at least, so that a flood of tiny frames is
/// bounded in count too.
const MIN_COST: usize = 256;
/// How long a file chunk may wait for a recipient's queue.
pub const CHUNK_WAIT: Duration = Duration::from_secs(30);

/// A queued frame and the budget it holds until written. Kept small (no
/// permit object, no tungstenite `Message`): every idle connection's queue
/// allocates a block of these.
pub struct Queued {
    payload: Payload,
    cost: u32,
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

/// The sending side, held by the room.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Semaphore>,
    kicked: Arc<Notify>,
}

/// The receiving side, held by the connection.
pub struct Inbox {
    pub rx: mpsc::UnboundedReceiver<Queued>,
    pub kicked: Arc<Notify>,
    budget: Arc<Semaphore>,
}

impl Inbox {
    /// The frame to write; its budget is free again.
    pub fn take(&self, queued: Queued) -> Message {
        self.budget.add_permits(queued.cost as usize);
        match queued.payload {
            Payload::Text(text) => Message::Text(text),
            Payload::Binary(bytes) => Message::Binary(bytes),
        }
    }
}

pub fn channel() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let kicked = Arc::new(Notify::new());
    let budget = Arc::new(Semaphore::new(QUEUE_BYTES));
    (
        Outbox {
            tx,
            budget: budget.clone(),
            kicked: kicked.clone(),
        },
        Inbox { rx, kicked, budget },
    )
}

fn cost(message: &Message) -> u32 {
    message.len().clamp(MIN_COST, QUEUE_BYTES) as u32
}

impl Outbox {
    /// Queues without waiting. False when the client is too slow (it is then
    /// told to go) or already gone.
    pub fn push(&self, message: Message) -> bool {
        if self.is_closed() {
            return false;
        }
        let cost = cost(&message);
        match self.budget.try_acquire_many(cost) {
            Ok(permit) => {
                permit.forget();
                self.send(message, cost)
            }
            Err(_) => {
                self.kick();
                false
            }
        }
    }

    /// Queues, waiting up to `CHUNK_WAIT` for room. False if the client did
    /// not make room in time (it is told to go) or is gone.
    pub async fn push_waiting(&self, message: Message) -> bool {
        if self.is_closed() {
            return false;
        }
        let cost = cost(&message);
        let permit = tokio::time::timeout(CHUNK_WAIT, self.budget.acquire_many(cost)).await;
        match permit {
            Ok(Ok(permit)) => {
                permit.forget();
                self.send(message, cost)
            }
            _ => {
                self.kick();
                false
            }
        }
    }

    fn send(&self, message: Message, cost: u32) -> bool {
        let payload = match message {
            Message::Text(text) => Payload::Text(text),
            Message::Binary(bytes) => Payload::Binary(bytes),
            // Only data frames are queued; control frames are the
            // connection's own business.
            _ => return false,
        };
        if self.tx.send(Queued { payload, cost }).is_err() {
            // The connection is gone; its budget must not leak with it.
            self.budget.add_permits(cost as usize);
            return false;
        }
        true
    }

    /// Tells the connection to close as a slow consumer.
    pub fn kick(&self) {
        self.kicked.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
