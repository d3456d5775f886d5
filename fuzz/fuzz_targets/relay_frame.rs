//! The relay's text-frame parser on arbitrary input: it never panics, and
//! whatever it accepts it forwards and acknowledges as valid JSON carrying
//! the relay's `ts` (numbers a JSON value cannot hold, such as 8e888, are
//! still valid JSON and pass through as the client wrote them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexscope::relay::frame;
use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Deserialize)]
struct Forwarded {
    ts: u64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Ack {
    #[serde(rename = "msgId")]
    msg_id: IgnoredAny,
    #[serde(rename = "threadId")]
    thread_id: IgnoredAny,
    delivered: Vec<String>,
    offline: Vec<String>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = frame::Limits { max_file: 1 << 20, max_to: 1000, receipts: true };
    let Ok(incoming) = frame::parse(text, "alice", limits) else {
        return;
    };
    let forwarded = incoming.forward(text, 1234);
    let parsed: Forwarded = serde_json::from_str(&forwarded).expect("forwarded frame is JSON with a ts");
    assert_eq!(parsed.ts, 1234);
    let ack = frame::ack(incoming.msg_id.as_deref(), incoming.thread_id.as_deref(), &incoming.to, &[] as &[&str]);
    let _: Ack = serde_json::from_str(&ack).expect("ack is JSON with all four fields");
});
