//! The sender's ack for a message, sent once every recipient's connection
//! has written the message to its socket or dropped it: `delivered` names
//! only those that wrote it. A recipient whose connection ends with the
//! message still queued (cut off as too slow, gone) is listed `offline`.
//!
//! Each queued copy carries a `Ticket`; a ticket dropped without being
//! marked written counts as not delivered, so no path can forget one. A
//! recipient still writing after `ACK_DEADLINE` does not hold the ack back
//! (clients wait 15 s for it): it then goes out with that recipient under
//! `pending`, in neither list.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;

use super::frame;
use super::outbox::Outbox;
use super::room::text;

/// How long an ack waits for slow recipients.
pub const ACK_DEADLINE: Duration = Duration::from_secs(5);

pub struct Receipt {
    sender: Outbox,
    msg_id: Option<Box<RawValue>>,
    thread_id: Option<Box<RawValue>>,
    state: Mutex<Progress>,
}

/// Freed once the ack is out: a receipt lives on while copies of its
/// message wait in slow recipients' queues.
struct Progress {
    left: usize,
    /// Recipients the message was handed to, in routing order, and per
    /// recipient: written (true), dropped (false), not yet (None).
    names: Vec<Box<str>>,
    written: Vec<Option<bool>>,
    /// Named recipients that were not online.
    offline: Vec<Box<str>>,
    sent: bool,
}

impl Receipt {
    /// A receipt for `names`; with none, the ack goes out at once.
    pub fn new(
        sender: Outbox,
        msg_id: Option<Box<RawValue>>,
        thread_id: Option<Box<RawValue>>,
        names: Vec<Box<str>>,
        offline: Vec<Box<str>>,
    ) -> Arc<Receipt> {
        let count = names.len();
        let receipt = Arc::new(Receipt {
            sender,
            msg_id,
            thread_id,
            state: Mutex::new(Progress {
                left: count,
                names,
                written: vec![None; count],
                offline,
                sent: false,
            }),
        });
        if count == 0 {
            receipt.send();
        }
        receipt
    }

    /// The ticket for recipient `index` (of `names`).
    pub fn ticket(self: &Arc<Self>, index: usize) -> Ticket {
        Ticket {
            receipt: Some(self.clone()),
            index,
        }
    }

    fn settle(&self, index: usize, written: bool) {
        let done = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = state.written.get_mut(index) {
                *slot = Some(written);
            }
            state.left = state.left.saturating_sub(1);
            state.left == 0
        };
        if done {
            self.send();
        }
    }

    /// Sends the ack now if it has not gone yet (its deadline passed).
    pub fn expire(&self) {
        self.send();
    }

    /// The ack, once: recipients not settled yet are `pending`.
    fn send(&self) {
        let ack = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if std::mem::replace(&mut state.sent, true) {
                return;
            }
            let mut delivered = Vec::new();
            let mut pending = Vec::new();
            let mut offline: Vec<&str> = state.offline.iter().map(|n| &**n).collect();
            for (name, written) in state.names.iter().zip(&state.written) {
                match written {
                    Some(true) => delivered.push(&**name),
                    Some(false) => offline.push(name),
                    None => pending.push(&**name),
                }
            }
            let ack = frame::ack_pending(
                self.msg_id.as_deref(),
                self.thread_id.as_deref(),
                &delivered,
                &offline,
                &pending,
            );
            drop((delivered, pending, offline));
            state.names = Vec::new();
            state.written = Vec::new();
            state.offline = Vec::new();
            ack
        };
        // A sender that has gone no longer needs it.
        self.sender.push(text(ack));
    }
}

/// One recipient's part of a receipt.
pub struct Ticket {
    receipt: Option<Arc<Receipt>>,
    index: usize,
}

impl Ticket {
    /// The message went to this recipient's socket.
    pub fn written(mut self) {
        if let Some(receipt) = self.receipt.take() {
            receipt.settle(self.index, true);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(receipt) = self.receipt.take() {
            receipt.settle(self.index, false);
        }
    }
}
