//! Who gets a connection slot, for the servers that take TCP connections
//! from others (the relay, the agent gateway).
//!
//! A socket that has not finished its HTTP head yet is *pending*: it holds a
//! slot from a small budget of its own, at most a few per source address, so
//! half-finished handshakes (slowloris) from one address cannot keep others
//! out. Once its request is read it becomes *open*, counted against the
//! connection cap and a cap per source address; a relay member is further
//! counted against its user (per-user tokens), so one token holder cannot
//! occupy every slot. Slots are given back when their guards drop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::relay::http;

/// The caps. `None` means no cap of that kind.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sockets still sending their request head, in all.
    pub pending: usize,
    /// Of those, from one address.
    pub pending_per_address: usize,
    /// Connections past their request head, in all.
    pub open: usize,
    /// Of those, from one address.
    pub open_per_address: Option<usize>,
    /// Relay members of one user (per-user tokens).
    pub open_per_user: Option<usize>,
}

impl Limits {
    /// Pending sockets get a quarter of the connection cap, within bounds:
    /// enough for a burst of honest joins, too few to matter when stuck; one
    /// address gets a quarter of that, so it cannot fill it alone.
    pub fn for_connections(open: usize) -> Limits {
        let pending = (open / 4).clamp(16, 1024);
        Limits {
            pending,
            pending_per_address: (pending / 4).clamp(4, 64),
            open,
            open_per_address: None,
            open_per_user: None,
        }
    }
}

/// Why a connection was turned away; the text is what the peer is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("too many connections still in their handshake; try again shortly")]
    PendingFull,
    #[error("too many connections in their handshake from {0}; finish or close them first")]
    PendingPerAddress(IpAddr),
    #[error("the server is at its connection limit ({0}); try again later")]
    Full(usize),
    #[error("too many connections from {0} (at most {1})")]
    PerAddress(IpAddr, usize),
    #[error("too many connections for user {0} (at most {1})")]
    PerUser(String, usize),
}

#[derive(Default)]
struct Counts {
    pending: usize,
    open: usize,
    /// (pending, open) per address, removed at (0, 0).
    by_address: HashMap<IpAddr, (usize, usize)>,
    by_user: HashMap<String, usize>,
}

pub struct Admission {
    limits: Limits,
    counts: Mutex<Counts>,
    refusals: Arc<tokio::sync::Semaphore>,
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            counts: Mutex::new(Counts::default()),
            refusals: Arc::new(tokio::sync::Semaphore::new(REFUSALS_IN_FLIGHT)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Plain counters, consistent between statements: a panic elsewhere
        // must not lock everyone out.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a socket just accepted from `address`.
    pub fn pending(self: &Arc<Self>, address: IpAddr) -> Result<Pending, Refused> {
        let mut counts = self.lock();
        if counts.pending >= self.limits.pending {
            return Err(Refused::PendingFull);
        }
        let entry = counts.by_address.entry(address).or_default();
        if entry.0 >= self.limits.pending_per_address {
            return Err(Refused::PendingPerAddress(address));
        }
        entry.0 += 1;
        counts.pending += 1;
        Ok(Pending {
            admission: self.clone(),
            address,
        })
    }

    /// Open connections now (for metrics and tests).
    pub fn open_count(&self) -> usize {
        self.lock().open
    }
}

/// A pending socket's slot.
pub struct Pending {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Pending {
    /// Its request is read: it becomes an open connection, if there is room.
    pub fn open(self) -> Result<Open, Refused> {
        let admission = self.admission.clone();
        let address = self.address;
        let limits = admission.limits;
        let mut counts = admission.lock();
        if counts.open >= limits.open {
            return Err(Refused::Full(limits.open));
        }
        let open_here = counts.by_address.get(&address).map_or(0, |e| e.1);
        if let Some(cap) = limits.open_per_address.filter(|&cap| open_here >= cap) {
            return Err(Refused::PerAddress(address, cap));
        }
        counts.open += 1;
        counts.by_address.entry(address).or_default().1 += 1;
        drop(counts);
        // The pending slot goes back when `self` drops, after the open one
        // is taken, so the address entry never disappears in between.
        drop(self);
        Ok(Open {
            admission,
            address,
            user: None,
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.pending -= 1;
        release(&mut counts, self.address, |e| e.0 -= 1);
    }
}

/// An open connection's slot.
pub struct Open {
    admission: Arc<Admission>,
    address: IpAddr,
    user: Option<String>,
}

impl Open {
    /// Counts the connection against `user` too.
    pub fn claim_user(&mut self, user: &str) -> Result<(), Refused> {
        let Some(cap) = self.admission.limits.open_per_user else {
            return Ok(());
        };
        let mut counts = self.admission.lock();
        let count = counts.by_user.entry(user.to_string()).or_default();
        if *count >= cap {
            if *count == 0 {
                counts.by_user.remove(user);
            }
            return Err(Refused::PerUser(user.to_string(), cap));
        }
        *count += 1;
        self.user = Some(user.to_string());
        Ok(())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.open -= 1;
        release(&mut counts, self.address, |e| e.1 -= 1);
        if let Some(user) = self.user.take() {
            if let Some(count) = counts.by_user.get_mut(&user) {
                *count -= 1;
                if *count == 0 {
                    counts.by_user.remove(&user);
                }
            }
        }
    }
}

fn release(counts: &mut Counts, address: IpAddr, change: impl FnOnce(&mut (usize, usize))) {
    if let Some(entry) = counts.by_address.get_mut(&address) {
        change(entry);
        if *entry == (0, 0) {
            counts.by_address.remove(&address);
        }
    }
}

/// Refusals being answered at once; past this, refused sockets are just
/// closed (a flood gets no more of our time than its accepts).
const REFUSALS_IN_FLIGHT: usize = 256;
/// Time a refused peer gets to take its 503 (and we to read its request:
/// closing with its request unread would reset the connection, and a reset
/// can destroy the 503 before the peer reads it).
const REFUSAL_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// Bytes of a refused peer's request read (and dropped) at most.
const REFUSAL_READ: usize = 16 * 1024;

impl Admission {
    /// Answers `stream` with an HTTP 503 saying why, in the background.
    pub fn refuse(self: &Arc<Self>, mut stream: tokio::net::TcpStream, refused: &Refused) {
        let Ok(permit) = self.refusals.clone().try_acquire_owned() else {
            return;
        };
        let refused = refused.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + REFUSAL_GRACE;
            let _ =
                tokio::time::timeout_at(deadline, http::unavailable(&mut stream, &refused)).await;
            crate::websocket::drain(&mut stream, deadline, REFUSAL_READ).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            pending: 3,
            pending_per_address: 2,
            open: 3,
            open_per_address: Some(2),
            open_per_user: Some(1),
        }
    }

    #[test]
    fn pending_slots_are_capped_per_address_and_in_all() {
        let admission = Admission::new(limits());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = admission.pending(a).unwrap();
        let _second = admission.pending(a).unwrap();
        assert_eq!(
            admission.pending(a).err(),
            Some(Refused::PendingPerAddress(a))
        );
        let _third = admission.pending(b).unwrap();
        assert_eq!(admission.pending(b).err(), Some(Refused::PendingFull));
        drop(first);
        assert!(admission.pending(b).is_ok());
    }

    #[test]
    fn open_slots_are_capped_per_address_per_user_and_given_back() {
        let admission = Admission::new(limits());
        let a: IpAddr = [10, 0, 0, 1].into();
        let mut one = admission.pending(a).unwrap().open().unwrap();
        let two = admission.pending(a).unwrap().open().unwrap();
        assert_eq!(
            admission.pending(a).unwrap().open().err(),
            Some(Refused::PerAddress(a, 2))
        );
        one.claim_user("mallory").unwrap();
        let mut three = admission
            .pending([10, 0, 0, 3].into())
            .unwrap()
            .open()
            .unwrap();
        assert_eq!(
            three.claim_user("mallory").err(),
            Some(Refused::PerUser("mallory".into(), 1))
        );
        assert_eq!(admission.open_count(), 3);
        drop((one, two, three));
        assert_eq!(admission.open_count(), 0);
        assert!(admission.lock().by_address.is_empty());
        assert!(admission.lock().by_user.is_empty());
    }
}
