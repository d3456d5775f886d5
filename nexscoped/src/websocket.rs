//! WebSocket endings shared by the relay and the agent gateway: the close
//! code for a broken frame, and a close that is not lost to a reset.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

/// RFC 6455 close codes for what a peer sent.
pub const PROTOCOL_ERROR: u16 = 1002;
pub const INVALID_DATA: u16 = 1007;
pub const TOO_BIG: u16 = 1009;

/// Time a closing peer gets to answer our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The close code and reason for a read error that is the peer's fault: a
/// frame over the size limit, text that is not UTF-8, broken framing (bad
/// opcode, unmasked, reserved bits, bad control frames). None for I/O
/// errors and a vanished peer, which get no close frame.
pub fn close_for(error: &tungstenite::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::ProtocolError;
    match error {
        tungstenite::Error::Capacity(_) => Some((TOO_BIG, "message_too_big")),
        tungstenite::Error::Utf8(_) => Some((INVALID_DATA, "invalid_utf8")),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        tungstenite::Error::Protocol(_) => Some((PROTOCOL_ERROR, "protocol_error")),
        _ => None,
    }
}

/// Sends a close frame and gives the peer a moment to answer it, so the
/// frame is not lost to a reset.
pub async fn close_with<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: u16,
    reason: impl Into<tungstenite::Utf8Bytes>,
) {
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.into(),
    };
    // Short: the peer may be the one that stopped reading.
    let deadline = Instant::now() + CLOSE_GRACE;
    let _ = tokio::time::timeout_at(deadline, ws.send(Message::Close(Some(frame)))).await;
    settle(ws, deadline).await;
}

/// After a close was sent or received: reads what the peer still sends
/// until its close frame (or the grace ends), then drains the rest raw.
pub async fn await_close<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    settle(ws, Instant::now() + CLOSE_GRACE).await;
}

async fn settle<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, deadline: Instant) {
    if !matches!(
        tokio::time::timeout_at(deadline, peer_closes(ws)).await,
        Ok(true)
    ) {
        drain(ws.get_mut(), deadline, CLOSE_DRAIN_BYTES).await;
    }
}

/// Whether the peer's close frame came (after everything it sent); without
/// one (an earlier read error fuses the stream) what is left is raw.
async fn peer_closes<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> bool {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(_))) => return true,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return false,
        }
    }
}

/// Bytes of a closing peer's unread input we read and discard.
const CLOSE_DRAIN_BYTES: usize = 16 * 1024 * 1024;

/// Reads and discards what the peer still sends (the rest of an oversized
/// frame, say) until it closes, the deadline or `limit`. Closing a socket
/// with unread input makes the kernel send a reset, and a reset can destroy
/// the error and close frames the peer has received but not yet read.
pub async fn drain<S: AsyncRead + Unpin>(stream: &mut S, deadline: Instant, limit: usize) {
    use tokio::io::AsyncReadExt;
    // On the heap and only now: every idle connection's task would carry
    // a buffer held in its state.
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    while total < limit {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => total += n,
            _ => break,
        }
    }
}
