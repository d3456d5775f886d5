//! Relay frames, bytes to meaning and back (docs/protocol.md §1.3–§1.8).
//!
//! Client text frames are parsed once into `Incoming`, which owns the few
//! fields the relay reads (so a large frame can be parsed off the I/O
//! thread); what the relay forwards is the client's own text with `ts`
//! added, built once and shared by every recipient. Nothing here knows about
//! connections or rooms, so the parser can be fuzzed on its own.

use serde::Deserialize;
use serde_json::value::RawValue;

/// The error codes of the relay, with the close code when the frame ends the
/// connection (docs/protocol.md §1.8, §1.9): v1's codes, plus ours for what
/// v1 left open (a full room, bad file-starts, stray binary frames, slow
/// readers, too many recipients or connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    VersionMismatch,
    InvalidName,
    InvalidRoom,
    NameTaken,
    RoomFull,
    MissingFrom,
    FromMismatch,
    MissingTo,
    UnknownType,
    BadJson,
    MsgTooLarge,
    TransferBusy,
    TransferIncomplete,
    BadFileStart,
    BadFileEnd,
    FileTooLarge,
    UnexpectedBinary,
    TooManyIllegal,
    HeartbeatTimeout,
    TransferTimeout,
    SlowConsumer,
    TooManyRecipients,
    TooManyConnections,
    BadReceipt,
    BadStatus,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::VersionMismatch,
        ErrorCode::InvalidName,
        ErrorCode::InvalidRoom,
        ErrorCode::NameTaken,
        ErrorCode::RoomFull,
        ErrorCode::MissingFrom,
        ErrorCode::FromMismatch,
        ErrorCode::MissingTo,
        ErrorCode::UnknownType,
        ErrorCode::BadJson,
        ErrorCode::MsgTooLarge,
        ErrorCode::TransferBusy,
        ErrorCode::TransferIncomplete,
        ErrorCode::BadFileStart,
        ErrorCode::BadFileEnd,
        ErrorCode::FileTooLarge,
        ErrorCode::UnexpectedBinary,
        ErrorCode::TooManyIllegal,
        ErrorCode::HeartbeatTimeout,
        ErrorCode::TransferTimeout,
        ErrorCode::SlowConsumer,
        ErrorCode::TooManyRecipients,
        ErrorCode::TooManyConnections,
        ErrorCode::BadReceipt,
        ErrorCode::BadStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::MissingFrom => "missing_from",
            ErrorCode::FromMismatch => "from_mismatch",
            ErrorCode::MissingTo => "missing_to",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadJson => "bad_json",
            ErrorCode::MsgTooLarge => "msg_too_large",
            ErrorCode::TransferBusy => "transfer_busy",
            ErrorCode::TransferIncomplete => "transfer_incomplete",
            ErrorCode::BadFileStart => "bad_file_start",
            ErrorCode::BadFileEnd => "bad_file_end",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::UnexpectedBinary => "unexpected_binary",
            ErrorCode::TooManyIllegal => "too_many_illegal_frames",
            ErrorCode::HeartbeatTimeout => "heartbeat_timeout",
            ErrorCode::TransferTimeout => "transfer_timeout",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::TooManyRecipients => "too_many_recipients",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::BadReceipt => "bad_receipt",
            ErrorCode::BadStatus => "bad_status",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the frame that caused it counts toward the illegal-frame limit.
    pub fn counted(self) -> bool {
        matches!(
            self,
            ErrorCode::MissingFrom
                | ErrorCode::FromMismatch
                | ErrorCode::MissingTo
                | ErrorCode::UnexpectedBinary
        )
    }
}

/// Close codes (docs/protocol.md §1.9), plus ours where v1 says nothing:
/// 4015 for a full room and 1013 for a client too slow to take its messages.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const NAME_TAKEN: u16 = 4009;
    pub const HEARTBEAT: u16 = 4010;
    pub const TOO_LARGE: u16 = 4011;
    pub const INVALID_NAME: u16 = 4012;
    pub const TOO_MANY_ILLEGAL: u16 = 4013;
    pub const TRANSFER_TIMEOUT: u16 = 4014;
    pub const ROOM_FULL: u16 = 4015;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Msg,
    FileStart,
    FileEnd,
    Ping,
    /// Beyond v1, for clients that asked for `receipts=1`: how far a message
    /// got at one recipient, sent back to its sender (docs/protocol.md §1.13).
    Receipt,
    /// Beyond v1, for the same clients: what is behind the sender's name
    /// (docs/protocol.md §1.14).
    Status,
}

/// The largest receipt frame: a few ids, a state and a usage summary.
pub const MAX_RECEIPT: usize = 4096;

/// A client text frame that passed the relay's checks.
#[derive(Debug)]
pub struct Incoming {
    pub kind: Kind,
    /// `to` as the client sent it: names, duplicates and non-strings removed.
    /// Empty means broadcast.
    pub to: Vec<Box<str>>,
    /// Raw JSON of `msgId` and `threadId`, echoed back in acks as sent.
    pub msg_id: Option<Box<RawValue>>,
    pub thread_id: Option<Box<RawValue>>,
    /// file-start only: the declared size.
    pub size: Option<u64>,
    /// status only: what is behind the sender's name, one of `AGENTS`.
    pub agent: Option<&'static str>,
    /// The client's own `ts`: when present the frame is rebuilt, not spliced.
    has_ts: bool,
}

/// The fields the relay reads; everything else passes through untouched.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    from: Option<&'a RawValue>,
    #[serde(borrow)]
    to: Option<&'a RawValue>,
    #[serde(rename = "msgId", borrow)]
    msg_id: Option<&'a RawValue>,
    #[serde(rename = "threadId", borrow)]
    thread_id: Option<&'a RawValue>,
    #[serde(borrow)]
    attachment: Option<&'a RawValue>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    agent: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Attachment {
    size: Option<serde_json::Number>,
}

/// JavaScript's Number.MAX_SAFE_INTEGER: sizes above it cannot come from a
/// v1 client and would not survive one.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A string inside raw JSON, borrowed when it has no escapes.
fn as_str(raw: &RawValue) -> Option<&str> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    // Names and types never need escapes; one that has them is not a match.
    (!inner.contains('\\')).then_some(inner)
}

fn is_string(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}

/// What the parser needs to know of the room.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file: u64,
    /// Distinct names a `to` may list: the room's member cap, since no more
    /// can be online. Bounds the work and the ack one frame can cost.
    pub max_to: usize,
    /// The sender asked for receipt frames (`receipts=1`); for anyone else
    /// `receipt` is an unknown type, as in v1.
    pub receipts: bool,
}

/// Parses and checks one client text frame from `me` (the order of checks in
/// docs/protocol.md §1.3, with our choices for v1's gaps), in that order in
/// one function so the order can be checked against the table. Linear in
/// the frame.
pub fn parse(text: &str, me: &str, limits: Limits) -> Result<Incoming, ErrorCode> {
    if !text.trim_start().starts_with('{') {
        return Err(ErrorCode::BadJson);
    }
    let fields: Fields<'_> = serde_json::from_str(text).map_err(|_| ErrorCode::BadJson)?;
    let kind = match fields.kind.and_then(as_str) {
        Some("msg") => Kind::Msg,
        Some("file-start") => Kind::FileStart,
        Some("file-end") => Kind::FileEnd,
        Some("ping") => Kind::Ping,
        Some("receipt") if limits.receipts => Kind::Receipt,
        Some("status") if limits.receipts => Kind::Status,
        _ => return Err(ErrorCode::UnknownType),
    };
    // A client `ts` means the frame is rebuilt on the way out; one whose
    // numbers JSON values cannot hold (1e999) cannot be, and is refused.
    if fields.ts.is_some()
        && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).is_err()
    {
        return Err(ErrorCode::BadJson);
    }
    let mut incoming = Incoming {
        kind,
        to: Vec::new(),
        msg_id: fields.msg_id.map(RawValue::to_owned),
        thread_id: fields.thread_id.map(RawValue::to_owned),
        size: None,
        agent: None,
        has_ts: fields.ts.is_some(),
    };
    match kind {
        Kind::Ping => return Ok(incoming),
        // The reference client sends file-end as {type, msgId, from}: no `to`,
        // and `from` is checked only when present (docs/protocol.md §1.3).
        Kind::FileEnd => {
            if let Some(from) = fields.from {
                if as_str(from) != Some(me) {
                    return Err(ErrorCode::FromMismatch);
                }
            }
            return Ok(incoming);
        }
        Kind::Msg | Kind::FileStart | Kind::Receipt | Kind::Status => {}
    }
    match fields.from {
        Some(from) if is_string(from) => {
            if as_str(from) != Some(me) {
                return Err(ErrorCode::FromMismatch);
            }
        }
        _ => return Err(ErrorCode::MissingFrom),
    }
    if kind == Kind::Status {
        return with_agent(incoming, fields.agent, text);
    }
    let to: Vec<&RawValue> = match fields.to {
        Some(raw) if raw.get().starts_with('[') => {
            serde_json::from_str(raw.get()).map_err(|_| ErrorCode::MissingTo)?
        }
        _ => return Err(ErrorCode::MissingTo),
    };
    let mut seen = std::collections::HashSet::new();
    for name in to.iter().filter_map(|raw| as_str(raw)) {
        if seen.insert(name) {
            if seen.len() > limits.max_to {
                return Err(ErrorCode::TooManyRecipients);
            }
            incoming.to.push(name.into());
        }
    }
    if kind == Kind::Receipt && !receipt_ok(text, &incoming) {
        return Err(ErrorCode::BadReceipt);
    }
    if kind == Kind::FileStart {
        let size = fields
            .attachment
            .and_then(|raw| serde_json::from_str::<Attachment>(raw.get()).ok())
            .and_then(|a| a.size)
            .and_then(|n| n.as_u64())
            .filter(|&n| n <= MAX_SAFE_INTEGER)
            .ok_or(ErrorCode::BadFileStart)?;
        if size > limits.max_file {
            return Err(ErrorCode::FileTooLarge);
        }
        incoming.size = Some(size);
    }
    Ok(incoming)
}

/// A status names one of `AGENTS` and stays small.
fn with_agent(
    mut incoming: Incoming,
    agent: Option<&RawValue>,
    text: &str,
) -> Result<Incoming, ErrorCode> {
    let agent = agent.and_then(as_str);
    incoming.agent = nexscope_proto::rules::AGENTS
        .into_iter()
        .find(|a| Some(*a) == agent);
    if incoming.agent.is_none() || text.len() > MAX_RECEIPT {
        return Err(ErrorCode::BadStatus);
    }
    Ok(incoming)
}

/// A receipt names the message by a string msgId and stays small.
fn receipt_ok(text: &str, incoming: &Incoming) -> bool {
    text.len() <= MAX_RECEIPT && incoming.msg_id.as_deref().is_some_and(is_string)
}

impl Incoming {
    /// The frame as recipients get it: the client's text with `"ts"` added
    /// (or replaced), nothing else changed (docs/protocol.md §1.4).
    pub fn forward(&self, text: &str, ts: u64) -> String {
        if !self.has_ts {
            let body = text.trim_end();
            // parse() saw a JSON object, so the text ends with '}'.
            if let Some(open) = body.strip_suffix('}') {
                let open = open.trim_end();
                let separator = if open.ends_with('{') { "" } else { "," };
                return format!("{open}{separator}\"ts\":{ts}}}");
            }
        }
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
            Ok(mut object) => {
                object.insert("ts".into(), ts.into());
                serde_json::Value::Object(object).to_string()
            }
            Err(_) => text.to_string(),
        }
    }
}

fn raw_or_null(raw: Option<&RawValue>) -> &str {
    raw.map(RawValue::get).unwrap_or("null")
}

fn names(list: &[impl AsRef<str>]) -> String {
    let mut out = String::new();
    push_names(&mut out, list.iter().map(AsRef::as_ref));
    out
}

/// Appends `names` as a JSON array, straight into `out`: a room's full
/// list is built once per join, and 10,000 names should cost one buffer,
/// not three.
fn push_names<'a>(out: &mut String, names: impl Iterator<Item = &'a str>) {
    out.push('[');
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Member names are plain (the name rule); anything else is escaped.
        if name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            out.push('"');
            out.push_str(name);
            out.push('"');
        } else {
            out.push_str(&serde_json::Value::from(name).to_string());
        }
    }
    out.push(']');
}

/// `{"type":"ack",...}`: msgId and threadId as the client sent them (null
/// when absent), delivered and offline always arrays (docs/protocol.md §1.5).
pub fn ack(
    msg_id: Option<&RawValue>,
    thread_id: Option<&RawValue>,
    delivered: &[impl AsRef<str>],
    offline: &[impl AsRef<str>],
) -> String {
    format!(
        "{{\"type\":\"ack\",\"msgId\":{},\"threadId\":{},\"delivered\":{},\"offline\":{}}}",
        raw_or_null(msg_id),
        raw_or_null(thread_id),
        names(delivered),
        names(offline)
    )
}

/// An ack with `pending` (beyond v1, which ignores it): recipients whose
/// connection had not yet written the message when the ack was due.
pub fn ack_pending(
    msg_id: Option<&RawValue>,
    thread_id: Option<&RawValue>,
    delivered: &[impl AsRef<str>],
    offline: &[impl AsRef<str>],
    pending: &[impl AsRef<str>],
) -> String {
    let mut frame = ack(msg_id, thread_id, delivered, offline);
    if !pending.is_empty() {
        frame.pop();
        frame.push_str(&format!(",\"pending\":{}}}", names(pending)));
    }
    frame
}

pub fn error(code: ErrorCode, message: Option<&str>) -> String {
    let mut frame = serde_json::json!({ "type": "error", "code": code.as_str() });
    if let Some(message) = message {
        frame["message"] = message.into();
    }
    frame.to_string()
}

pub fn transfer_busy(retry_after_ms: u64) -> String {
    format!("{{\"type\":\"error\",\"code\":\"transfer_busy\",\"retryAfterMs\":{retry_after_ms}}}")
}

pub fn transfer_incomplete(msg_id: &str) -> String {
    format!("{{\"type\":\"error\",\"code\":\"transfer_incomplete\",\"msgId\":{msg_id}}}")
}

pub fn bad_file_end(msg_id: Option<&RawValue>) -> String {
    format!(
        "{{\"type\":\"error\",\"code\":\"bad_file_end\",\"msgId\":{}}}",
        raw_or_null(msg_id)
    )
}

pub fn pong(ts: u64) -> String {
    format!("{{\"type\":\"pong\",\"ts\":{ts}}}")
}

/// The full, sorted list (docs/protocol.md §1.6); `count` sizes the buffer.
/// `receipts`: the joiner asked for receipt frames and is told they work
/// here (a v1 relay never says so, and then the client sends none).
pub fn presence<'a>(
    users: impl Iterator<Item = &'a str>,
    count: usize,
    ts: u64,
    receipts: bool,
) -> String {
    let mut out = String::with_capacity(64 + count * 12);
    out.push_str("{\"type\":\"presence\",\"users\":");
    push_names(&mut out, users);
    if receipts {
        out.push_str(",\"receipts\":true");
    }
    out.push_str(&format!(",\"ts\":{ts}}}"));
    out
}

/// One member's status as the others get it: only what the relay checked.
pub fn status(from: &str, agent: &str, ts: u64) -> String {
    serde_json::json!({"type": "status", "from": from, "agent": agent, "ts": ts}).to_string()
}

/// What is behind each named member, for a client that asked for receipts
/// as it joins: `{"type":"status","agents":{"bob":"claude"},"ts":…}`.
pub fn status_snapshot<'a>(agents: impl Iterator<Item = (&'a str, &'a str)>, ts: u64) -> String {
    let agents: serde_json::Map<String, serde_json::Value> = agents
        .map(|(name, agent)| (name.to_string(), agent.into()))
        .collect();
    serde_json::json!({"type": "status", "agents": agents, "ts": ts}).to_string()
}

/// The change since the last presence a `presence=delta` client got.
pub fn presence_delta(joined: &[impl AsRef<str>], left: &[impl AsRef<str>], ts: u64) -> String {
    format!(
        "{{\"type\":\"presence\",\"joined\":{},\"left\":{},\"ts\":{ts}}}",
        names(joined),
        names(left)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(max_file: u64) -> Limits {
        Limits {
            max_file,
            max_to: 50,
            receipts: false,
        }
    }

    #[test]
    fn msg_is_forwarded_verbatim_with_ts() {
        let text = r#"{"type":"msg","msgId":"m1","from":"alice","to":["bob"],"role":"userAgent","threadId":"t1","text":"ping","hopCount":0}"#;
        let incoming = parse(text, "alice", lim(100)).unwrap();
        assert_eq!(incoming.kind, Kind::Msg);
        assert_eq!(incoming.to, vec!["bob".into()] as Vec<Box<str>>);
        let out = incoming.forward(text, 42);
        assert_eq!(out, format!("{},\"ts\":42}}", &text[..text.len() - 1]));
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["ts"], 42);
    }

    #[test]
    fn a_client_ts_is_replaced_not_duplicated() {
        let text = r#"{"type":"msg","from":"a","to":[],"ts":1}"#;
        let out = parse(text, "a", lim(1)).unwrap().forward(text, 9);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap()["ts"],
            9
        );
        assert_eq!(out.matches("\"ts\"").count(), 1);
    }

    #[test]
    fn a_client_ts_with_an_unrepresentable_number_is_refused_not_forwarded_as_is() {
        // Found by the relay_frame fuzz target: the rebuilt frame kept the client's ts.
        let text = r#"{"type":"msg","from":"alice","to":["b",8e888,"b"],"ts":5}"#;
        assert_eq!(
            parse(text, "alice", lim(1)).unwrap_err(),
            ErrorCode::BadJson
        );
    }

    #[test]
    fn checks_come_in_the_spec_order() {
        assert_eq!(
            parse("not json", "a", lim(1)).unwrap_err(),
            ErrorCode::BadJson
        );
        assert_eq!(parse("[1]", "a", lim(1)).unwrap_err(), ErrorCode::BadJson);
        assert_eq!(
            parse(r#"{"type":"shout"}"#, "a", lim(1)).unwrap_err(),
            ErrorCode::UnknownType
        );
        assert_eq!(
            parse(r#"{"type":"msg","to":[]}"#, "a", lim(1)).unwrap_err(),
            ErrorCode::MissingFrom
        );
        assert_eq!(
            parse(r#"{"type":"msg","from":5,"to":[]}"#, "a", lim(1)).unwrap_err(),
            ErrorCode::MissingFrom
        );
        assert_eq!(
            parse(r#"{"type":"msg","from":"b","to":[]}"#, "a", lim(1)).unwrap_err(),
            ErrorCode::FromMismatch
        );
        assert_eq!(
            parse(r#"{"type":"msg","from":"a","to":"b"}"#, "a", lim(1)).unwrap_err(),
            ErrorCode::MissingTo
        );
        assert_eq!(
            parse(r#"{"type":"ping"}"#, "a", lim(1)).unwrap().kind,
            Kind::Ping
        );
        assert_eq!(
            parse(r#"{"type":"file-end","msgId":"f"}"#, "a", lim(1))
                .unwrap()
                .kind,
            Kind::FileEnd
        );
        assert_eq!(
            parse(r#"{"type":"file-end","msgId":"f","from":"b"}"#, "a", lim(1)).unwrap_err(),
            ErrorCode::FromMismatch
        );
    }

    #[test]
    fn file_start_needs_a_size_within_the_limit() {
        let start =
            |att: &str| format!(r#"{{"type":"file-start","from":"a","to":[],"attachment":{att}}}"#);
        assert_eq!(
            parse(&start(r#"{"size":10}"#), "a", lim(10)).unwrap().size,
            Some(10)
        );
        assert_eq!(
            parse(&start(r#"{"size":11}"#), "a", lim(10)).unwrap_err(),
            ErrorCode::FileTooLarge
        );
        assert_eq!(
            parse(&start(r#"{"size":-1}"#), "a", lim(10)).unwrap_err(),
            ErrorCode::BadFileStart
        );
        assert_eq!(
            parse(&start(r#""x""#), "a", lim(10)).unwrap_err(),
            ErrorCode::BadFileStart
        );
    }

    #[test]
    fn to_drops_duplicates_and_non_strings() {
        let text = r#"{"type":"msg","from":"a","to":["b",1,"b","c",null]}"#;
        let to = parse(text, "a", lim(1)).unwrap().to;
        assert_eq!(to, vec!["b".into(), "c".into()] as Vec<Box<str>>);
    }

    #[test]
    fn to_is_capped_at_the_rooms_member_cap_counting_distinct_names() {
        let names = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!("\"u{i}\"")).collect();
            format!(r#"{{"type":"msg","from":"a","to":[{}]}}"#, list.join(","))
        };
        assert_eq!(parse(&names(50), "a", lim(1)).unwrap().to.len(), 50);
        assert_eq!(
            parse(&names(51), "a", lim(1)).unwrap_err(),
            ErrorCode::TooManyRecipients
        );
        // Repeats of one name are one recipient, however many.
        let repeated = format!(
            r#"{{"type":"msg","from":"a","to":[{}]}}"#,
            vec!["\"b\""; 200_000].join(",")
        );
        assert_eq!(parse(&repeated, "a", lim(1)).unwrap().to.len(), 1);
    }

    #[test]
    fn ack_always_has_all_four_fields() {
        let ack: serde_json::Value =
            serde_json::from_str(&ack(None, None, &["b"], &[] as &[&str])).unwrap();
        assert_eq!(ack["msgId"], serde_json::Value::Null);
        assert_eq!(ack["threadId"], serde_json::Value::Null);
        assert_eq!(ack["delivered"], serde_json::json!(["b"]));
        assert_eq!(ack["offline"], serde_json::json!([]));
    }
}
