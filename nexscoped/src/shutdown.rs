//! Stopping: the signal every long-lived task watches, and how long they
//! get to finish. Its own module so that the relay, the agent host and the
//! control server can stop without knowing the daemon that started them.

use std::time::Duration;

use tokio::sync::watch;

/// How long connections and tasks get to finish once shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until `shutdown` is set (or its sender is gone).
pub async fn wait_for(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
