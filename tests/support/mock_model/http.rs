//! Just enough HTTP/1.1 for the mock: one request per connection (a body by
//! `Content-Length` or chunked), answered with `Connection: close`, and SSE
//! written event by event while watching for the client hanging up. Knows
//! nothing of the model APIs.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Request line plus headers: the CLIs send about 1 KiB.
const MAX_HEAD: usize = 64 * 1024;
/// A body: claude sends the whole history each call, a few hundred KiB in a
/// long test.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A request as read off the wire.
pub(super) struct Incoming {
    pub method: String,
    /// As sent, query included.
    pub target: String,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub(super) enum ReadError {
    /// The client went away; nobody to answer.
    Closed,
    /// Not HTTP the mock can read; answered with a 400.
    Bad(String),
}

/// The client closed the connection before the mock finished writing.
#[derive(Debug)]
pub(super) struct HungUp;

/// The path of a request target: no query, no scheme and host.
pub(super) fn path_of(target: &str) -> &str {
    let target = target.split(['?', '#']).next().unwrap_or_default();
    match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => target,
    }
}

/// Reads one request; answers `Expect: 100-continue` on the way.
pub(super) fn read_request(stream: &TcpStream) -> Result<Incoming, ReadError> {
    let mut input = Input {
        stream,
        buf: Vec::new(),
    };
    let request_line = input.line()?;
    let mut parts = request_line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(format!(
            "malformed request line {request_line:?}"
        )));
    };
    let mut headers = Vec::new();
    let mut head_len = request_line.len();
    loop {
        let line = input.line()?;
        if line.is_empty() {
            break;
        }
        head_len += line.len();
        if head_len > MAX_HEAD {
            return Err(ReadError::Bad("request headers too large".into()));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad(format!("malformed header {line:?}")));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    if header("expect").is_some_and(|v| v == "100-continue") {
        write_all(stream, b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|_| ReadError::Closed)?;
    }
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(&mut input)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| ReadError::Bad(format!("bad content-length {length:?}")))?;
        if length > MAX_BODY {
            return Err(ReadError::Bad("request body too large".into()));
        }
        input.take(length)?
    } else {
        Vec::new()
    };
    Ok(Incoming {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body,
    })
}

fn read_chunked(input: &mut Input) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = input.line()?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| ReadError::Bad(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the blank line.
            while !input.line()?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Bad("request body too large".into()));
        }
        body.extend(input.take(size)?);
        if input.take(2)? != b"\r\n" {
            return Err(ReadError::Bad("chunk not followed by CRLF".into()));
        }
    }
}

/// Buffered reads off a stream, bounded by MAX_HEAD and MAX_BODY.
struct Input<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
}

impl Input<'_> {
    fn fill(&mut self) -> Result<(), ReadError> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            return match (&*self.stream).read(&mut chunk) {
                Ok(0) => Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => Err(ReadError::Closed),
            };
        }
    }

    /// One CRLF-terminated line, without the CRLF.
    fn line(&mut self) -> Result<String, ReadError> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..at + 2).take(at).collect();
                return String::from_utf8(line)
                    .map_err(|_| ReadError::Bad("request head is not UTF-8".into()));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Bad("request line too long".into()));
            }
            self.fill()?;
        }
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }
}

fn write_all(stream: &TcpStream, bytes: &[u8]) -> Result<(), HungUp> {
    let mut stream = stream;
    stream
        .write_all(bytes)
        .and_then(|()| stream.flush())
        .map_err(|_| HungUp)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// A whole JSON response.
pub(super) fn respond_json(stream: &TcpStream, status: u16, body: &Value) -> Result<(), HungUp> {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    write_all(stream, (head + &body).as_bytes())
}

/// A server-sent event stream, ended by closing the connection.
pub(super) struct Sse<'a> {
    stream: &'a TcpStream,
}

impl<'a> Sse<'a> {
    pub(super) fn start(stream: &'a TcpStream) -> Result<Sse<'a>, HungUp> {
        write_all(
            stream,
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
        )?;
        Ok(Sse { stream })
    }

    /// Writes and flushes one event named after the data's `type`.
    pub(super) fn event(&self, data: &Value) -> Result<(), HungUp> {
        let name = data["type"].as_str().unwrap_or("message");
        write_all(
            self.stream,
            format!("event: {name}\ndata: {data}\n\n").as_bytes(),
        )
    }

    /// Waits `length`, failing as soon as the client hangs up.
    pub(super) fn pause(&self, length: Duration) -> Result<(), HungUp> {
        let deadline = Instant::now() + length;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.watch(left.min(super::POLL))?;
        }
    }

    /// Waits up to `slice` for the client to hang up. The request was read
    /// whole, so a read returning 0 or failing means the client is gone.
    pub(super) fn watch(&self, slice: Duration) -> Result<(), HungUp> {
        let slice = slice.max(Duration::from_millis(1));
        self.stream
            .set_read_timeout(Some(slice))
            .map_err(|_| HungUp)?;
        let mut scratch = [0u8; 512];
        match (&*self.stream).read(&mut scratch) {
            Ok(0) => Err(HungUp),
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(_) => Err(HungUp),
        }
    }
}
