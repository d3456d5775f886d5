//! A blocking varlink client over a unix socket: what `nexscopectl`, the hooks
//! and the MCP shim use. Blocking on purpose: a command that makes one or two
//! calls and exits should not pay for starting an async runtime.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::codec::{self, Framer};
use super::{Call, MAX_MESSAGE, Reply, Request, VarlinkError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to nexscoped at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no answer from nexscoped within {0:?}")]
    Timeout(Duration),
    #[error("connection to nexscoped lost: {0}")]
    Io(std::io::Error),
    #[error("nexscoped sent something that is not a varlink reply: {0}")]
    Protocol(String),
    #[error("{0}")]
    Remote(VarlinkError),
}

impl From<std::io::Error> for ClientError {
    fn from(error: std::io::Error) -> Self {
        ClientError::Io(error)
    }
}

pub struct Connection {
    stream: UnixStream,
    framer: Framer,
    timeout: Option<Duration>,
}

impl Connection {
    /// Connects; `timeout` bounds every later read and write (None: wait as long
    /// as it takes, for streams such as Watch).
    pub fn connect(path: &Path, timeout: Option<Duration>) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        Ok(Connection {
            stream,
            framer: Framer::new(MAX_MESSAGE),
            timeout,
        })
    }

    /// Changes how long reads and writes may take from now on.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.stream.set_read_timeout(timeout)?;
        self.stream.set_write_timeout(timeout)?;
        self.timeout = timeout;
        Ok(())
    }

    /// Writes a call without waiting: several may be pipelined, their replies
    /// then come back in order.
    pub fn send(&mut self, call: &Call) -> Result<(), ClientError> {
        self.stream
            .write_all(&codec::encode(call))
            .map_err(|e| self.io_error(e))
    }

    /// Reads the next reply.
    pub fn receive(&mut self) -> Result<Reply, ClientError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.framer.next_message() {
                Ok(Some(bytes)) => {
                    return serde_json::from_slice(&bytes)
                        .map_err(|e| ClientError::Protocol(e.to_string()));
                }
                Ok(None) => {}
                Err(too_large) => return Err(ClientError::Protocol(too_large.to_string())),
            }
            let n = self.stream.read(&mut chunk).map_err(|e| self.io_error(e))?;
            if n == 0 {
                return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.framer.feed(&chunk[..n]);
        }
    }

    /// One typed call (an interface's `Method`), one reply decoded into
    /// `T`; a varlink error becomes `ClientError::Remote`.
    pub fn request<T: DeserializeOwned>(
        &mut self,
        request: &impl Request,
    ) -> Result<T, ClientError> {
        self.exchange(request.call())
    }

    /// A typed streaming call (`more`): `on_reply` sees every reply until
    /// the last one or until it returns false.
    pub fn request_more(
        &mut self,
        request: &impl Request,
        on_reply: impl FnMut(Value) -> bool,
    ) -> Result<(), ClientError> {
        self.stream_replies(request.call(), on_reply)
    }

    /// Untyped `request`, by method name: for tests and tools that must
    /// send what no `Method` would (unknown methods, bad parameters).
    pub fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        parameters: Value,
    ) -> Result<T, ClientError> {
        self.exchange(Call::new(method, parameters))
    }

    /// Untyped `request_more`, by method name.
    pub fn call_more(
        &mut self,
        method: &str,
        parameters: Value,
        on_reply: impl FnMut(Value) -> bool,
    ) -> Result<(), ClientError> {
        self.stream_replies(Call::new(method, parameters), on_reply)
    }

    fn exchange<T: DeserializeOwned>(&mut self, call: Call) -> Result<T, ClientError> {
        self.send(&call)?;
        decode_reply(self.receive()?)
    }

    fn stream_replies(
        &mut self,
        call: Call,
        mut on_reply: impl FnMut(Value) -> bool,
    ) -> Result<(), ClientError> {
        let call = Call { more: true, ..call };
        self.send(&call)?;
        loop {
            let reply = self.receive()?;
            let continues = reply.continues;
            let value: Value = decode_reply(reply)?;
            if !on_reply(value) || !continues {
                return Ok(());
            }
        }
    }

    fn io_error(&self, error: std::io::Error) -> ClientError {
        match (error.kind(), self.timeout) {
            (std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut, Some(timeout)) => {
                ClientError::Timeout(timeout)
            }
            _ => ClientError::Io(error),
        }
    }
}

/// A reply's parameters as `T`, or its error.
pub fn decode_reply<T: DeserializeOwned>(reply: Reply) -> Result<T, ClientError> {
    if let Some(name) = reply.error {
        return Err(ClientError::Remote(VarlinkError::new(
            name,
            reply.parameters.unwrap_or(Value::Null),
        )));
    }
    let parameters = reply
        .parameters
        .unwrap_or_else(|| Value::Object(Default::default()));
    serde_json::from_value(parameters).map_err(|e| ClientError::Protocol(e.to_string()))
}
