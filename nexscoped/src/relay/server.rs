//! The relay's accept loop: TCP (and TLS when configured), one task per
//! connection, a cap on connections, and a clean stop that closes every
//! member with 1001.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{Relay, connection};
use crate::daemon::wait_for;

/// Time a TLS client gets to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time members get to receive their close frames at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn serve(listener: TcpListener, relay: Arc<Relay>) {
    let mut connections = JoinSet::new();
    let stop = wait_for(relay.shutdown.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = done {
                    if error.is_panic() {
                        tracing::error!("a relay connection panicked; the relay carries on");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let pending = match relay.admission.pending(peer.ip()) {
                        Ok(pending) => pending,
                        Err(refused) => {
                            relay.metrics.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::debug!(remote = %peer, %refused, "refused");
                            if relay.settings.tls.is_none() {
                                relay.admission.refuse(stream, &refused);
                            }
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let relay = relay.clone();
                    connections.spawn(async move {
                        match relay.settings.tls.clone() {
                            None => connection::serve(relay, stream, peer, pending).await,
                            Some(tls) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                                Ok(Ok(stream)) => connection::serve(relay, stream, peer, pending).await,
                                _ => tracing::debug!(remote = %peer, "TLS handshake failed"),
                            },
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off, do not spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}
