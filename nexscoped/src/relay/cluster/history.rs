//! The relay tier's history: every routed message in the stream `NX_HIST`
//! (subject `nx.hist.<room key>`), de-duplicated by its msgId, with who it
//! was for. A client that reconnects with `since=<seq>` is given, before
//! live frames, what it was a recipient of after that sequence.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use serde::{Deserialize, Serialize};

use super::{ClusterError, room_key};

const STREAM: &str = "NX_HIST";
/// A msgId seen again within this is a duplicate (a sender's retry).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long history is kept, and how much per room.
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
const PER_ROOM: i64 = 10_000;
/// Frames one catch-up replays at most; older ones are the client's
/// history to ask for another way.
pub const MAX_REPLAY: usize = 1000;
/// Bytes one catch-up holds at most.
const MAX_REPLAY_BYTES: usize = 16 * 1024 * 1024;
/// How long one catch-up may take.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct History {
    js: jetstream::Context,
    stream: stream::Stream,
}

/// One stored message.
#[derive(Serialize, Deserialize)]
struct Stored {
    from: String,
    /// Empty: everyone in the room then, or who joins later and asks.
    to: Vec<String>,
    /// The frame as recipients got it (without seq).
    frame: String,
}

impl History {
    pub async fn open(js: &jetstream::Context) -> Result<History, ClusterError> {
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["nx.hist.>".into()],
                duplicate_window: DUPLICATE_WINDOW,
                max_age: MAX_AGE,
                max_messages_per_subject: PER_ROOM,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::JetStream {
                what: "the stream NX_HIST",
                message: e.to_string(),
            })?;
        Ok(History {
            js: js.clone(),
            stream,
        })
    }

    /// Stores a routed frame; its sequence, or None when NATS did not take
    /// it (the message is still delivered live).
    pub async fn append(
        &self,
        room: &str,
        msg_id: Option<&str>,
        from: &str,
        to: &[String],
        frame: &str,
    ) -> Option<u64> {
        let stored = Stored {
            from: from.to_string(),
            to: to.to_vec(),
            frame: frame.to_string(),
        };
        let payload = serde_json::to_vec(&stored).ok()?;
        let mut headers = async_nats::HeaderMap::new();
        if let Some(id) = msg_id {
            // Whatever the sender wrote, a header gets a hash of it (and
            // one sender's id never collides with another's).
            let key = nexscope_proto::ids::sha256_hex(format!("{room}\n{from}\n{id}").as_bytes());
            headers.insert("Nats-Msg-Id", key.as_str());
        }
        let subject = format!("nx.hist.{}", room_key(room));
        let publish = self
            .js
            .publish_with_headers(subject, headers, payload.into());
        let ack = tokio::time::timeout(Duration::from_secs(2), publish)
            .await
            .ok()?
            .ok()?;
        tokio::time::timeout(Duration::from_secs(2), ack)
            .await
            .ok()?
            .ok()
            .map(|a| a.sequence)
    }

    /// What `name` was a recipient of in `room` after `since`, oldest first
    /// (at most `MAX_REPLAY`): (sequence, frame).
    pub async fn replay(&self, room: &str, since: u64, name: &str) -> Vec<(u64, String)> {
        let subject = format!("nx.hist.{}", room_key(room));
        let mut found = Vec::new();
        let mut bytes = 0usize;
        let mut next = since.saturating_add(1);
        let started = tokio::time::Instant::now();
        while found.len() < MAX_REPLAY && started.elapsed() < REPLAY_TIMEOUT {
            let Ok(message) = self
                .stream
                .direct_get_next_for_subject(subject.clone(), Some(next))
                .await
            else {
                break; // none left (or NATS is away: the client gets what came)
            };
            next = message.sequence + 1;
            let Ok(stored) = serde_json::from_slice::<Stored>(&message.payload) else {
                continue;
            };
            let for_them = stored.from != name
                && (stored.to.is_empty() || stored.to.iter().any(|n| n == name));
            if for_them {
                bytes += stored.frame.len();
                if bytes > MAX_REPLAY_BYTES {
                    break;
                }
                found.push((message.sequence, stored.frame));
            }
        }
        found
    }
}

/// A frame with its history sequence (and the replay mark) added, for a
/// client that asked for them with `since`.
pub fn with_seq(frame: &str, seq: u64, replay: bool) -> String {
    let rest = frame.strip_prefix('{').unwrap_or(frame);
    let replay = if replay { "\"replay\":true," } else { "" };
    format!("{{\"seq\":{seq},{replay}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_goes_first_and_the_frame_stays_json() {
        let framed = with_seq(r#"{"type":"msg","text":"hi"}"#, 7, true);
        let value: serde_json::Value = serde_json::from_str(&framed).unwrap();
        assert_eq!(value["seq"], 7);
        assert_eq!(value["replay"], true);
        assert_eq!(value["text"], "hi");
    }
}
