//! The relay's accept loop: TCP (and TLS when configured), one task per
//! connection, a cap on connections, and a clean stop that closes every
//! member with 1001.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::net::TcpListener;

use super::{Relay, connection};
use crate::accept::Loop;

/// Time a TLS client gets to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(listener: TcpListener, relay: Arc<Relay>) {
    let accept = Loop {
        what: "relay",
        listener,
        shutdown: relay.shutdown.clone(),
        probe: None,
    };
    accept
        .run(|stream, peer, connections| {
            let pending = match relay.admission.pending(peer.ip()) {
                Ok(pending) => pending,
                Err(refused) => {
                    relay.metrics.refused.fetch_add(1, Relaxed);
                    tracing::debug!(remote = %peer, %refused, "refused");
                    if relay.settings.tls.is_none() {
                        relay.admission.refuse(stream, &refused);
                    }
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let relay = relay.clone();
            // Each task is as large as its largest state, for as long as
            // the member stays: plain connections get a task of their own
            // size, TLS ones a boxed one.
            match relay.settings.tls.clone() {
                None => {
                    connections.spawn(connection::serve(relay, stream, peer, pending));
                }
                Some(tls) => {
                    connections.spawn(Box::pin(async move {
                        let handshake = tls.accept(stream);
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                            Ok(Ok(stream)) => connection::serve(relay, stream, peer, pending).await,
                            _ => tracing::debug!(remote = %peer, "TLS handshake failed"),
                        }
                    }));
                }
            }
        })
        .await;
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
            let (_tx, rx) = crate::shutdown::channel();
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
