//! The accept loop the control socket, the relay and the agent gateway
//! share: one task per connection, a panic in one logged and survived, a
//! failing accept (out of descriptors) backed off instead of spun on, and
//! at shutdown the listener closed first, then connections given
//! `DRAIN_TIMEOUT` to finish before they are aborted.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::shutdown::{DRAIN_TIMEOUT, Shutdown};

/// A listening socket: TCP or unix.
pub trait Listen {
    type Stream;
    type Peer;
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Peer)>>;
}

impl Listen for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    type Peer = std::net::SocketAddr;
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Peer)>> {
        tokio::net::TcpListener::accept(self)
    }
}

impl Listen for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    type Peer = tokio::net::unix::SocketAddr;
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Peer)>> {
        tokio::net::UnixListener::accept(self)
    }
}

/// Where accepted connections go: `start` spawns each one's task into the
/// set (or answers and drops it), `probe`, when given, is answered by the
/// loop itself (the watchdog's proof that it still turns).
pub struct Loop<'a, L: Listen> {
    pub what: &'static str,
    pub listener: L,
    pub shutdown: Shutdown,
    pub probe: Option<&'a mut mpsc::Receiver<oneshot::Sender<()>>>,
}

impl<L: Listen> Loop<'_, L> {
    /// Accepts until shutdown; returns once every connection has ended or
    /// been aborted.
    pub async fn run(self, mut start: impl FnMut(L::Stream, L::Peer, &mut JoinSet<()>)) {
        let Loop {
            what,
            listener,
            shutdown,
            mut probe,
        } = self;
        let mut connections = JoinSet::new();
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(reply) = next_probe(&mut probe) => { let _ = reply.send(()); }
                Some(done) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(error) = done {
                        if error.is_panic() {
                            tracing::error!("a {what} connection panicked; the rest carry on");
                        }
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => start(stream, peer, &mut connections),
                    Err(error) => {
                        tracing::warn!(%error, "{what}: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        // No new connections while the others finish.
        drop(listener);
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            connections.abort_all();
        }
    }
}

async fn next_probe(
    probe: &mut Option<&mut mpsc::Receiver<oneshot::Sender<()>>>,
) -> Option<oneshot::Sender<()>> {
    match probe {
        Some(probe) => probe.recv().await,
        None => std::future::pending().await,
    }
}
