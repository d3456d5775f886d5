//! The relay's accept loop: TCP (and TLS when configured), one task per
//! connection, a cap on connections, and a clean stop that closes every
//! member with 1001.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{Relay, connection};
use crate::shutdown::{DRAIN_TIMEOUT, wait_for};

/// Time a TLS client gets to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
                    // Each task is as large as its largest state, for as
                    // long as the member stays: plain connections get a
                    // task of their own size, TLS ones a boxed one.
                    match relay.settings.tls.clone() {
                        None => {
                            connections.spawn(connection::serve(relay, stream, peer, pending));
                        }
                        Some(tls) => {
                            connections.spawn(Box::pin(async move {
                                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                                    Ok(Ok(stream)) => connection::serve(relay, stream, peer, pending).await,
                                    _ => tracing::debug!(remote = %peer, "TLS handshake failed"),
                                }
                            }));
                        }
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What every idle member's task holds: the connection future, sized
    /// for its largest state.
    #[test]
    fn a_connection_task_is_small() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (_tx, rx) = tokio::sync::watch::channel(false);
            let relay = Relay::new(
                super::super::Settings::default(),
                super::super::auth::Auth::new(Some("t"), None).unwrap(),
                rx,
            );
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
            let (_client, (stream, peer)) =
                tokio::join!(client, async { listener.accept().await.unwrap() });
            let pending = relay.admission.pending(peer.ip()).unwrap();
            let future = connection::serve(relay.clone(), stream, peer, pending);
            let size = std::mem::size_of_val(&future);
            println!("connection future: {size} bytes");
            assert!(size < 100_000, "{size}");
        });
    }
}
