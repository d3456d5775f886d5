//! Stopping: the signal every long-lived task holds, and how long they get
//! to finish. Its own module so that the relay, the agent host and the
//! control server can stop without knowing the daemon that started them.

use std::time::Duration;

use tokio::sync::watch;

/// How long connections and tasks get to finish once shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The stop signal as a long-lived task holds it. Clones are cheap, and
/// each holder waits on its own.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// The side that starts the stop: the daemon's state, or `nexscoped relay`'s
/// signal handler. Dropped, it stops every holder too (nobody is left to
/// tell them).
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// A new signal and its trigger.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    /// Begins the stop; every holder sees it, now or when it next looks.
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// True once the stop began.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop began (at once if it already has), or when
    /// its trigger is gone.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
