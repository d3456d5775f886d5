//! An offline model API for end-to-end tests that drive the real `claude` and
//! `codex` CLIs (the Anthropic Messages and OpenAI Responses streaming APIs, as
//! far as the pinned binaries use them).
//!
//! One loopback HTTP/1.1 server, two personalities routed by path only (the
//! query is dropped): `POST /v1/messages` speaks Anthropic Messages (plus
//! `/v1/messages/count_tokens`), `POST /v1/responses` speaks OpenAI Responses,
//! `GET /v1/models` lists nothing, anything else is a 404.
//!
//! Replies are scripted by the first directive in the last user text, never by
//! request order, so retries and side calls cannot shift the script:
//!
//! | directive                  | reply                                                     |
//! |----------------------------|-----------------------------------------------------------|
//! | none                       | `ok`                                                      |
//! | `[[mock:say TEXT]]`        | `TEXT`                                                    |
//! | `[[mock:count]]`           | `prompts=N`, N = user texts holding a directive, history included |
//! | `[[mock:tool COMMAND]]`    | a shell tool call running COMMAND; once its result is in the request, `tool done` |
//! | `[[mock:call NAME JSON]]`  | a call of the offered tool whose name ends with NAME (MCP tools are offered under prefixed names) with the JSON arguments; then `tool done` |
//! | `[[mock:slow MS N]]`       | N deltas `"tick "`, MS milliseconds apart                 |
//! | `[[mock:hold]]`            | the start of a reply (one delta `holding`), then the stream stays open until [`MockModel::release`] or the client hangs up |
//! | `[[mock:error STATUS MSG]]`| HTTP STATUS with the personality's JSON error body        |
//!
//! Every usage figure is [`INPUT_TOKENS`]/[`OUTPUT_TOKENS`], so accounting can
//! be asserted exactly. A client that closes a stream before the mock finished
//! it counts as one hang-up ([`MockModel::hangups`]), which is how tests see a
//! cancellation reach the model.
//!
//! The mock owns its accept thread and one thread per connection, all joined
//! on drop; every read, write, pause and hold is bounded, so each thread ends
//! by itself. It must never panic on what a client sends: bad input gets a 4xx.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod anthropic;
mod http;
mod openai;

use http::{HungUp, ReadError, Sse};

/// Input tokens reported for every model call.
pub const INPUT_TOKENS: u64 = 11;
/// Output tokens reported for every model call.
pub const OUTPUT_TOKENS: u64 = 7;

/// Longest a hold or a slow stream lasts: longer than any test, short enough
/// that a forgotten hold cannot keep a thread alive for long.
const STREAM_CAP: Duration = Duration::from_secs(120);
/// How long one read or write may stall: the CLIs send a request in one go
/// and read as fast as the mock writes.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting stream looks for a hang-up or a release.
const POLL: Duration = Duration::from_millis(20);
/// How often the accept thread looks for a connection or for the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// Connections served at once: a CLI opens one or two; more is a runaway client.
const MAX_CONNECTIONS: usize = 64;
/// Requests remembered: far above any test; bounds a runaway retry loop.
const MAX_REQUESTS: usize = 10_000;
/// What marks a directive, and so a prompt written by a test.
const DIRECTIVE: &str = "[[mock:";

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Without the `?query`.
    pub path: String,
    /// Names in lowercase, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The JSON body; `Null` when it was empty or not JSON.
    pub body: Value,
}

impl Request {
    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running mock model API on 127.0.0.1; stopped when dropped.
pub struct MockModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl MockModel {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start() -> MockModel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the mock model API");
        // Non-blocking so the accept thread can notice the stop flag.
        listener
            .set_nonblocking(true)
            .expect("make the mock listener non-blocking");
        let addr = listener.local_addr().expect("mock listener address");
        let shared = Arc::new(Shared::default());
        let accept = thread::Builder::new()
            .name("mock-model-accept".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || accept_loop(listener, &shared)
            })
            .expect("spawn the mock accept thread");
        MockModel {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests().clone()
    }

    /// Streams the client closed before the mock finished them.
    pub fn hangups(&self) -> usize {
        self.shared.hangups.load(Ordering::SeqCst)
    }

    /// Lets every stream held so far by `[[mock:hold]]` finish its reply.
    pub fn release(&self) {
        self.shared.releases.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for MockModel {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// State the test and the connection threads share; each lock is short-held.
#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Request>>,
    hangups: AtomicUsize,
    /// Bumped by `release()`: a hold ends once this differs from the value
    /// read just before its request was recorded.
    releases: AtomicU64,
    stopping: AtomicBool,
    /// For message and response ids only, never for choosing a reply.
    next_id: AtomicU64,
}

impl Shared {
    fn requests(&self) -> MutexGuard<'_, Vec<Request>> {
        // A poisoned lock still holds a usable log.
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs `request`; returns the release count it must outlive to be released.
    fn record(&self, request: Request) -> u64 {
        let mut requests = self.requests();
        let releases = self.releases.load(Ordering::SeqCst);
        if requests.len() < MAX_REQUESTS {
            requests.push(request);
        }
        releases
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// Accepts until the stop flag, then closes and joins every connection.
fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    let mut connections: Vec<(TcpStream, JoinHandle<()>)> = Vec::new();
    while !shared.stopping.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        let (done, live): (Vec<_>, Vec<_>) = connections
            .into_iter()
            .partition(|(_, handle)| handle.is_finished());
        connections = live;
        for (_, handle) in done {
            let _ = handle.join();
        }
        if connections.len() >= MAX_CONNECTIONS || stream.set_nonblocking(false).is_err() {
            continue;
        }
        let Ok(watch) = stream.try_clone() else {
            continue;
        };
        let spawned = thread::Builder::new()
            .name("mock-model-conn".into())
            .spawn({
                let shared = Arc::clone(shared);
                move || serve(stream, &shared)
            });
        if let Ok(handle) = spawned {
            connections.push((watch, handle));
        }
    }
    for (stream, handle) in connections {
        // Wakes a connection blocked in a read, write or hold.
        let _ = stream.shutdown(Shutdown::Both);
        let _ = handle.join();
    }
}

/// One request, one response, then close.
fn serve(stream: TcpStream, shared: &Shared) {
    answer(&stream, shared);
    // The accept thread holds a clone, so dropping ours would not end the
    // response; a stream without a length ends only here.
    let _ = stream.shutdown(Shutdown::Both);
}

fn answer(stream: &TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let incoming = match http::read_request(stream) {
        Ok(incoming) => incoming,
        Err(ReadError::Closed) => return,
        Err(ReadError::Bad(why)) => {
            let body = json!({"error": {"type": "invalid_request_error", "message": why}});
            let _ = http::respond_json(stream, 400, &body);
            return;
        }
    };
    let path = http::path_of(&incoming.target).to_owned();
    let body = if incoming.body.is_empty() {
        Some(Value::Null)
    } else {
        serde_json::from_slice::<Value>(&incoming.body).ok()
    };
    let since = shared.record(Request {
        method: incoming.method.clone(),
        path: path.clone(),
        headers: incoming.headers,
        body: body.clone().unwrap_or(Value::Null),
    });
    let exchange = Exchange {
        stream,
        shared,
        since,
    };
    let object = body.filter(Value::is_object);
    let outcome = match (incoming.method.as_str(), path.as_str()) {
        ("POST", "/v1/messages") => match &object {
            Some(body) => anthropic::respond(&exchange, body),
            None => http::respond_json(stream, 400, &anthropic::error_body(NOT_AN_OBJECT)),
        },
        ("POST", "/v1/messages/count_tokens") => match &object {
            Some(_) => http::respond_json(stream, 200, &json!({"input_tokens": INPUT_TOKENS})),
            None => http::respond_json(stream, 400, &anthropic::error_body(NOT_AN_OBJECT)),
        },
        ("POST", "/v1/responses") => match &object {
            Some(body) => openai::respond(&exchange, body),
            None => http::respond_json(stream, 400, &openai::error_body(NOT_AN_OBJECT)),
        },
        ("GET", "/v1/models") => http::respond_json(stream, 200, &json!({"models": []})),
        (method, path) => {
            let message = format!("mock model API: no route for {method} {path}");
            let body =
                json!({"error": {"message": message, "type": "not_found_error", "code": null}});
            http::respond_json(stream, 404, &body)
        }
    };
    if outcome.is_err() {
        shared.hangups.fetch_add(1, Ordering::SeqCst);
    }
}

const NOT_AN_OBJECT: &str = "mock model API: the request body is not a JSON object";

/// One request being answered: where to write, and what a hold waits for.
struct Exchange<'a> {
    stream: &'a TcpStream,
    shared: &'a Shared,
    since: u64,
}

impl Exchange<'_> {
    /// Keeps `sse` open until `release()`, the mock stops, the cap, or a hang-up.
    fn hold(&self, sse: &Sse) -> Result<(), HungUp> {
        let deadline = Instant::now() + STREAM_CAP;
        while self.shared.releases.load(Ordering::SeqCst) == self.since
            && !self.shared.stopping.load(Ordering::SeqCst)
            && Instant::now() < deadline
        {
            sse.watch(POLL)?;
        }
        Ok(())
    }

    /// Sends `n` deltas `ms` apart through `send`; stops early at the cap.
    fn slow(
        &self,
        sse: &Sse,
        ms: u64,
        n: u32,
        mut send: impl FnMut() -> Result<(), HungUp>,
    ) -> Result<(), HungUp> {
        let deadline = Instant::now() + STREAM_CAP;
        for i in 0..n {
            if i > 0 {
                sse.pause(Duration::from_millis(ms))?;
            }
            if Instant::now() >= deadline {
                break;
            }
            send()?;
        }
        Ok(())
    }
}

/// What a request's conversation is made of, as far as scripting cares.
enum Item {
    /// The real texts of one user message (wrappers such as
    /// `<system-reminder>` and tool results left out); never empty.
    Prompt(Vec<String>),
    /// A tool's result coming back to the model.
    ToolResult,
}

/// A text the CLI wrapped around the prompt (`<system-reminder>`,
/// `<environment_context>`, …) rather than one a person typed.
fn is_wrapper(text: &str) -> bool {
    text.trim_start().starts_with('<')
}

/// A directive found in a prompt.
#[derive(Debug, Clone, PartialEq)]
enum Script {
    Say(String),
    Count,
    Call(Call),
    Slow { ms: u64, n: u32 },
    Hold,
    Error { status: u16, message: String },
}

/// The first directive in `text`. One the mock cannot read becomes a `Say`
/// that explains why, so a typo shows up in the test's output.
fn parse_directive(text: &str) -> Option<Script> {
    let rest = &text[text.find(DIRECTIVE)? + DIRECTIVE.len()..];
    let inner = rest[..rest.find("]]")?].trim();
    let (verb, arg) = match inner.split_once(char::is_whitespace) {
        Some((verb, arg)) => (verb, arg.trim()),
        None => (inner, ""),
    };
    let unreadable = || Script::Say(format!("mock: cannot read directive [[mock:{inner}]]"));
    Some(match verb {
        "say" => Script::Say(arg.to_owned()),
        "count" => Script::Count,
        "tool" if !arg.is_empty() => Script::Call(Call::Shell(arg.to_owned())),
        "call" => {
            let (name, args) = arg.split_once(char::is_whitespace).unwrap_or((arg, "{}"));
            match serde_json::from_str::<Value>(args.trim()) {
                Ok(args @ Value::Object(_)) if !name.is_empty() => Script::Call(Call::Named {
                    suffix: name.to_owned(),
                    args,
                }),
                _ => unreadable(),
            }
        }
        "slow" => {
            let mut numbers = arg.split_whitespace();
            match (
                numbers.next().and_then(|ms| ms.parse().ok()),
                numbers.next().and_then(|n| n.parse().ok()),
            ) {
                (Some(ms), Some(n)) => Script::Slow { ms, n },
                _ => unreadable(),
            }
        }
        "hold" => Script::Hold,
        "error" => {
            let (status, message) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
            match status.parse() {
                Ok(status @ 400..=599) => Script::Error {
                    status,
                    message: message.trim().to_owned(),
                },
                _ => unreadable(),
            }
        }
        _ => unreadable(),
    })
}

/// The tool a scripted call asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// The personality's shell tool, running this command.
    Shell(String),
    /// The offered tool whose name ends with `suffix`, with `args`.
    Named { suffix: String, args: Value },
}

/// The name of the tool the request offers that ends with `suffix`, else
/// `suffix` itself (the CLI then reports an unknown tool, which shows).
fn offered_tool(body: &Value, suffix: &str) -> String {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| tool["name"].as_str())
        .find(|name| name.ends_with(suffix))
        .unwrap_or(suffix)
        .to_owned()
}

/// What the mock answers, whatever the personality.
enum Reply {
    Text(String),
    /// A tool call; `anchor` makes its id stable across retries.
    Call {
        call: Call,
        anchor: usize,
    },
    Slow {
        ms: u64,
        n: u32,
    },
    Hold,
    Error {
        status: u16,
        message: String,
    },
}

/// Text sent before a hold.
const HOLD_TEXT: &str = "holding";
/// Text of each slow delta.
const TICK: &str = "tick ";

impl Reply {
    /// The reply a conversation asks for: the first directive of the last
    /// prompt (its last text holding one), or `ok`.
    fn to(items: &[Item]) -> Reply {
        let prompts = items
            .iter()
            .map(|item| match item {
                Item::Prompt(texts) => texts.iter().filter(|t| t.contains(DIRECTIVE)).count(),
                Item::ToolResult => 0,
            })
            .sum::<usize>();
        let last = items
            .iter()
            .enumerate()
            .rev()
            .find_map(|(at, item)| match item {
                Item::Prompt(texts) => Some((at, texts)),
                Item::ToolResult => None,
            });
        let Some((anchor, texts)) = last else {
            return Reply::Text("ok".into());
        };
        let answered = items[anchor + 1..]
            .iter()
            .any(|i| matches!(i, Item::ToolResult));
        match texts.iter().rev().find_map(|t| parse_directive(t)) {
            None => Reply::Text("ok".into()),
            Some(Script::Say(text)) => Reply::Text(text),
            Some(Script::Count) => Reply::Text(format!("prompts={prompts}")),
            Some(Script::Call(_)) if answered => Reply::Text("tool done".into()),
            Some(Script::Call(call)) => Reply::Call { call, anchor },
            Some(Script::Slow { ms, n }) => Reply::Slow { ms, n },
            Some(Script::Hold) => Reply::Hold,
            Some(Script::Error { status, message }) => Reply::Error { status, message },
        }
    }

    /// The whole text of a non-streamed answer (a hold or a slow reply
    /// collapses to its text).
    fn text(&self) -> String {
        match self {
            Reply::Text(text) => text.clone(),
            Reply::Slow { n, .. } => TICK.repeat(*n as usize),
            Reply::Hold => HOLD_TEXT.into(),
            Reply::Call { .. } | Reply::Error { .. } => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_parse_and_unreadable_ones_explain() {
        assert_eq!(
            parse_directive("x [[mock:say hello there]] [[mock:hold]]"),
            Some(Script::Say("hello there".into()))
        );
        assert_eq!(
            parse_directive("[[mock:slow 50 3]]"),
            Some(Script::Slow { ms: 50, n: 3 })
        );
        assert_eq!(
            parse_directive("[[mock:error 400 boom now]]"),
            Some(Script::Error {
                status: 400,
                message: "boom now".into()
            })
        );
        assert_eq!(parse_directive("no directive"), None);
        assert!(matches!(
            parse_directive("[[mock:slow x]]"),
            Some(Script::Say(why)) if why.contains("cannot read")
        ));
    }
}
