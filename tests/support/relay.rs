//! Relay fixtures: `nexscoped relay` on a loopback port the OS picks, and a
//! plain WebSocket client (tungstenite, blocking) that speaks raw v1 frames.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::protocol::CloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::{WAIT, bin};

pub const TOKEN: &str = "test-token-0123456789";

/// A running `nexscoped relay`, stopped when dropped.
pub struct Relay {
    pub child: Child,
    /// `ws://127.0.0.1:PORT/ws`
    pub url: String,
    pub port: u16,
}

impl Relay {
    /// Starts a relay with the shared TOKEN and extra arguments.
    pub fn start(args: &[&str]) -> Relay {
        Relay::start_with(args, &[("NEXSCOPE_TOKEN", TOKEN)])
    }

    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Relay {
        Relay::spawn("127.0.0.1:0", args, env)
    }

    /// Starts again on the port it had (after `stop`), as a restarted relay would.
    pub fn restart(&mut self, args: &[&str]) {
        self.stop();
        let listen = format!("127.0.0.1:{}", self.port);
        let deadline = std::time::Instant::now() + WAIT;
        // The old socket may linger a moment in the kernel.
        loop {
            if std::net::TcpListener::bind(&listen).is_ok() || std::time::Instant::now() > deadline
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        *self = Relay::spawn(&listen, args, &[("NEXSCOPE_TOKEN", TOKEN)]);
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn spawn(listen: &str, args: &[&str], env: &[(&str, &str)]) -> Relay {
        let mut command = Command::new(bin("nexscoped"));
        command
            .args(["relay", "--listen", listen])
            .args(args)
            .env_remove("NEXSCOPE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn nexscoped relay");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("relay prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches("/ws").parse().ok())
            .expect("port in url");
        Relay { child, url, port }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The v1 reference relay (Node + ws, `tests/support/v1-relay`, which
    /// scripts/test installs into target/v1-relay), with the shared TOKEN;
    /// None when its group is skipped on request.
    pub fn start_v1() -> Option<Relay> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/v1-relay");
        if !crate::prereq::program("v1relay", "node", "nodejs")
            || !crate::prereq::require(
                "v1relay",
                dir.join("node_modules/ws").is_dir(),
                "the v1 reference relay is not installed in target/v1-relay (scripts/test installs it: npm install there)",
            )
        {
            return None;
        }
        let mut child = Command::new("node")
            .arg(dir.join("relay.js"))
            .env("NEXSCOPE_TOKEN", TOKEN)
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node relay.js");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("the v1 relay logs where it listens");
        // It logs a line per connection: read them all (until it exits), or
        // a closed pipe would end it.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let port = event["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Some(Relay {
            child,
            url: format!("ws://127.0.0.1:{port}/ws"),
            port,
        })
    }

    /// `name` joins with the shared token and v=1, plus `extra` query text.
    pub fn join(&self, name: &str) -> Client {
        self.join_with(name, TOKEN, "")
    }

    pub fn join_with(&self, name: &str, token: &str, extra: &str) -> Client {
        Client::connect(self.port, &format!("name={name}&token={token}&v=1{extra}"))
    }

    /// An HTTP GET on the relay's port: (status line, body).
    pub fn get(&self, path: &str) -> (String, String) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let response = crate::http::request(addr, "GET", path, &[("Host", "x")], b"", WAIT)
            .expect("the relay answers");
        (response.status_line.clone(), response.text())
    }

    /// The value of one Prometheus line (`name{labels}` as written).
    pub fn metric(&self, series: &str) -> u64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in metrics:\n{body}"))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw v1 client.
pub struct Client {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
    /// Every text frame it read (as JSON), and how it ended
    /// (`{"type":"ended","code":…}`): what the relay tier's invariants are
    /// checked over.
    pub log: Vec<Value>,
}

/// How a connection ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(u16),
    /// Reset or EOF without a close frame.
    Dropped,
}

/// Of sockets that sent part of a request, the responses of those the
/// server turned away, once `expected` of them have answered (waiting up to
/// `WAIT`); the others are still waiting for their request head.
pub fn refusals(streams: &mut [TcpStream], expected: usize) -> Vec<String> {
    use std::io::Read;
    // What each has sent so far; an answer counts once it is whole (its
    // body may come in a later segment than its head).
    let mut answers: Vec<Vec<u8>> = vec![Vec::new(); streams.len()];
    let whole = |a: &Vec<u8>| crate::http::complete(a);
    let deadline = Instant::now() + WAIT;
    while answers.iter().filter(|a| whole(a)).count() < expected && Instant::now() < deadline {
        for (stream, answer) in streams.iter_mut().zip(&mut answers) {
            if whole(answer) {
                continue;
            }
            stream.set_nonblocking(true).unwrap();
            let mut response = [0u8; 1024];
            if let Ok(n) = stream.read(&mut response) {
                answer.extend_from_slice(&response[..n]);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    answers
        .into_iter()
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(&a).into_owned())
        .collect()
}

/// A TCP connection to 127.0.0.1:`port` from the loopback address
/// `source` (any of 127.0.0.0/8), so a test can act as several machines.
pub fn connect_from(source: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let sockaddr = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // sockaddr values live across each call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(source, 0);
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = sockaddr([127, 0, 0, 1], port);
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

impl Client {
    pub fn connect(port: u16, query: &str) -> Client {
        Client::try_connect_from([127, 0, 0, 1], port, query).expect("WebSocket handshake")
    }

    /// A join from another loopback address; the handshake's error (an HTTP
    /// refusal, say) when it fails.
    pub fn try_connect_from(
        source: [u8; 4],
        port: u16,
        query: &str,
    ) -> Result<Client, tungstenite::Error> {
        let stream = connect_from(source, port)?;
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let url = format!("ws://127.0.0.1:{port}/ws?{query}");
        let (ws, _) = tungstenite::client::client(url, MaybeTlsStream::Plain(stream)).map_err(
            |e| match e {
                tungstenite::HandshakeError::Failure(e) => e,
                tungstenite::HandshakeError::Interrupted(_) => {
                    tungstenite::Error::Io(std::io::ErrorKind::WouldBlock.into())
                }
            },
        )?;
        Ok(Client {
            ws,
            log: Vec::new(),
        })
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        if let MaybeTlsStream::Plain(s) = self.ws.get_ref() {
            s.set_read_timeout(Some(timeout)).unwrap();
        }
    }

    pub fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .expect("send");
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_string())).expect("send");
    }

    pub fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).expect("send binary");
    }

    /// The next message (pings answered along the way), or how it ended.
    pub fn read(&mut self) -> Result<Message, Ended> {
        self.read_logged()
            .unwrap_or_else(|| panic!("no frame within the read timeout"))
    }

    /// `read`, None when nothing came within the read timeout.
    fn read_logged(&mut self) -> Option<Result<Message, Ended>> {
        let read = self.read_unlogged()?;
        match &read {
            Ok(Message::Text(text)) => self
                .log
                .push(serde_json::from_str(text.as_str()).unwrap_or(Value::Null)),
            Err(Ended::Closed(code)) => self
                .log
                .push(serde_json::json!({"type": "ended", "code": code})),
            Err(Ended::Dropped) => self.log.push(serde_json::json!({"type": "ended"})),
            Ok(_) => {}
        }
        Some(read)
    }

    /// The next message or how it ended; None when the read timed out.
    fn read_unlogged(&mut self) -> Option<Result<Message, Ended>> {
        loop {
            return Some(match self.ws.read() {
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => continue,
                Ok(Message::Close(frame)) => Err(Ended::Closed(
                    frame.map(|f: CloseFrame| u16::from(f.code)).unwrap_or(1005),
                )),
                Ok(message) => Ok(message),
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return None;
                }
                Err(_) => Err(Ended::Dropped),
            });
        }
    }

    /// The next message within `within`: None when none came.
    pub fn try_read(&mut self, within: Duration) -> Option<Result<Message, Ended>> {
        self.set_timeout(within);
        let read = self.read_logged();
        self.set_timeout(WAIT);
        read
    }

    /// The next text frame as JSON; panics on anything else.
    pub fn json(&mut self) -> Value {
        match self.read() {
            Ok(Message::Text(text)) => {
                serde_json::from_str(text.as_str()).expect("text frame is JSON")
            }
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Text frames until one of `kind`, skipping others (presence updates).
    pub fn until(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.json();
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Every frame up to the relay's answer to a ping, which follows
    /// whatever was already on its way to us.
    pub fn frames_until_pong(&mut self) -> Vec<Value> {
        self.send(serde_json::json!({"type": "ping"}));
        let mut seen = Vec::new();
        loop {
            let frame = self.json();
            if frame["type"] == "pong" {
                return seen;
            }
            seen.push(frame);
        }
    }

    /// Presence frames until one lists exactly `users`.
    pub fn presence_until(&mut self, users: &[&str]) -> Value {
        loop {
            let frame = self.until("presence");
            if frame["users"] == serde_json::json!(users) {
                return frame;
            }
        }
    }

    /// Reads until the relay closes; the close code.
    pub fn closed(&mut self) -> Ended {
        loop {
            match self.read() {
                Ok(_) => continue,
                Err(ended) => return ended,
            }
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub fn assert_silent(&mut self, quiet: Duration) {
        self.set_timeout(quiet);
        let started = Instant::now();
        match self.ws.read() {
            Err(tungstenite::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Ok(Message::Ping(_)) if started.elapsed() < quiet => {}
            other => panic!("expected silence, got {other:?}"),
        }
        self.set_timeout(WAIT);
    }

    /// Everything the relay wrote until it closed, read straight off the
    /// socket without answering anything.
    pub fn raw_bytes(&mut self) -> Vec<u8> {
        use std::io::Read;
        let mut bytes = Vec::new();
        if let MaybeTlsStream::Plain(stream) = self.ws.get_mut() {
            let _ = stream.read_to_end(&mut bytes);
        }
        bytes
    }

    /// The close code in what the relay wrote, read straight off the socket
    /// without answering anything: for a client that stopped reading, whose
    /// pongs would hit a closed socket if tungstenite sent them.
    pub fn raw_close_code(&mut self) -> Option<u16> {
        let bytes = self.raw_bytes();
        frames(&bytes)
            .into_iter()
            .find(|(opcode, payload)| *opcode == 0x8 && payload.len() >= 2)
            .map(|(_, payload)| u16::from_be_bytes([payload[0], payload[1]]))
    }

    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
        while self.ws.read().is_ok() {}
    }
}

/// The whole unmasked frames in `bytes` as (opcode, payload), up to the
/// first one cut short.
pub fn frames(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut found = Vec::new();
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let length = |from: usize, to: usize| bytes.get(at + from..at + to);
        let (len, header) = match bytes[at + 1] & 0x7f {
            126 => match length(2, 4) {
                Some(b) => (u16::from_be_bytes([b[0], b[1]]) as usize, 4),
                None => break,
            },
            127 => match length(2, 10).and_then(|b| b.try_into().ok()) {
                Some(b) => (u64::from_be_bytes(b) as usize, 10),
                None => break,
            },
            n => (n as usize, 2),
        };
        let Some(payload) = bytes.get(at + header..at + header + len) else {
            break;
        };
        found.push((bytes[at] & 0x0f, payload));
        at += header + len;
    }
    found
}

/// A v1 `msg` frame.
pub fn msg(from: &str, to: &[&str], id: &str, text: &str) -> Value {
    serde_json::json!({
        "type": "msg", "msgId": id, "from": from, "to": to, "role": "userAgent",
        "threadId": format!("t-{id}"), "text": text, "hopCount": 0, "attachments": []
    })
}
