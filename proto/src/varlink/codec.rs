//! NUL framing, without I/O: bytes go in with `feed`, whole messages come out of
//! `next_message`. The server (async) and the client (blocking) read their
//! sockets in their own way and share this one decoder.

/// Splits a byte stream at NUL bytes, holding at most `max` bytes of one
/// unfinished message.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a NUL, so that a message arriving
    /// in many small reads is scanned once, not once per read.
    scanned: usize,
    max: usize,
}

/// A message grew past the limit before its NUL arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "message larger than {} bytes without a NUL terminator",
            self.limit
        )
    }
}

impl Framer {
    pub fn new(max: usize) -> Self {
        Framer {
            buf: Vec::new(),
            scanned: 0,
            max,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet form a whole message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message without its NUL, `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, TooLarge> {
        match self.buf[self.scanned..].iter().position(|&b| b == 0) {
            Some(offset) => {
                let end = self.scanned + offset;
                if end > self.max {
                    return Err(TooLarge { limit: self.max });
                }
                let rest = self.buf.split_off(end + 1);
                let mut message = std::mem::replace(&mut self.buf, rest);
                message.truncate(end);
                self.scanned = 0;
                Ok(Some(message))
            }
            None if self.buf.len() > self.max => Err(TooLarge { limit: self.max }),
            None => {
                self.scanned = self.buf.len();
                // A burst of pipelined calls may have grown the buffer; do not
                // keep megabytes reserved for an idle connection.
                if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
                    self.buf = Vec::new();
                }
                Ok(None)
            }
        }
    }
}

/// One message on the wire: the JSON text and its NUL.
pub fn encode(value: &impl serde::Serialize) -> Vec<u8> {
    // Serializing our own reply types cannot fail: they hold only JSON values
    // and strings. Fall back to an empty object rather than panic.
    let mut bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(0);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pipelined_messages_and_keeps_the_rest() {
        let mut framer = Framer::new(100);
        framer.feed(b"{\"a\":1}\0{\"b\"");
        assert_eq!(framer.next_message().unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(framer.next_message().unwrap(), None);
        framer.feed(b":2}\0");
        assert_eq!(framer.next_message().unwrap().unwrap(), b"{\"b\":2}");
        assert_eq!(framer.pending(), 0);
    }

    #[test]
    fn refuses_a_message_over_the_limit_with_or_without_nul() {
        let mut framer = Framer::new(4);
        framer.feed(b"12345");
        assert_eq!(framer.next_message(), Err(TooLarge { limit: 4 }));
        let mut framer = Framer::new(4);
        framer.feed(b"12345\0");
        assert_eq!(framer.next_message(), Err(TooLarge { limit: 4 }));
        let mut framer = Framer::new(4);
        framer.feed(b"1234\0");
        assert_eq!(framer.next_message().unwrap().unwrap(), b"1234");
    }
}
