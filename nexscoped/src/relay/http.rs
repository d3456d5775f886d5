//! The HTTP in front of the WebSocket: one request head per connection,
//! read with a size bound, then an upgrade on `/ws`, or `/healthz` and
//! `/metrics` answered on the same port.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Browsers send a few KiB of headers at most; 16 KiB bounds a slow drip.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Query,
    headers: Vec<(String, String)>,
    /// Bytes after the head (a client may pipeline its first frame).
    pub rest: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    pub fn is_websocket_upgrade(&self) -> bool {
        self.method == "GET"
            && self.header_has_token("connection", "upgrade")
            && self.header_has_token("upgrade", "websocket")
            && self.header("sec-websocket-version") == Some("13")
            && self.header("sec-websocket-key").is_some()
    }
}

/// The decoded query of the request target.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// A query passed on by another node of a relay tier.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Query {
        Query(pairs)
    }

    /// The pairs but those called `name` (the token, before a query
    /// travels to another node).
    pub fn without(&self, name: &str) -> Vec<(String, String)> {
        self.0.iter().filter(|(k, _)| k != name).cloned().collect()
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub enum HeadError {
    Io,
    TooLarge,
    Malformed,
}

pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Request, HeadError> {
    // Read into the Vec's own spare room: a buffer on the stack would live
    // in every connection's task for as long as the connection does.
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(2048);
        }
        let n = stream.read_buf(&mut buf).await.map_err(|_| HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Io);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let target = request.path.unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                return Ok(Request {
                    method: request.method.unwrap_or("").to_string(),
                    path: path.to_string(),
                    query: Query(parse_query(query)),
                    headers: request
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    rest: buf[len..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed),
        }
    }
}

/// `a=1&b=x%20y` → pairs, percent- and plus-decoded; bad escapes stay as-is.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    content_type: &str,
    body: &str,
) {
    write_response(stream, status, "", content_type, body).await;
}

/// A 503: the server is at a connection cap; `why` says which.
pub async fn unavailable<S: AsyncWrite + Unpin>(
    stream: &mut S,
    why: &(dyn std::fmt::Display + Sync),
) {
    let body = format!("{why}\n");
    let retry = "Retry-After: 5\r\n";
    write_response(
        stream,
        "503 Service Unavailable",
        retry,
        "text/plain",
        &body,
    )
    .await;
}

async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    extra_headers: &str,
    content_type: &str,
    body: &str,
) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Answers a WebSocket upgrade request with 101, from its Sec-WebSocket-Key.
pub async fn switching_protocols<S: AsyncWrite + Unpin>(
    stream: &mut S,
    request: &Request,
) -> std::io::Result<()> {
    let key = request.header("sec-websocket-key").unwrap_or_default();
    let accept =
        tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded() {
        let q = parse_query("name=al%69ce&token=a+b&v=1&room=&x");
        assert_eq!(q[0], ("name".into(), "alice".into()));
        assert_eq!(q[1], ("token".into(), "a b".into()));
        assert_eq!(q[3], ("room".into(), "".into()));
        assert_eq!(q[4], ("x".into(), "".into()));
        assert_eq!(parse_query("a=%zz%4")[0].1, "%zz%4");
    }
}
