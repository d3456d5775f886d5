//! The relay's text-frame parser on arbitrary input: it never panics, and
//! whatever it accepts it forwards and acknowledges as valid JSON with the
//! relay's `ts`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexscope::relay::frame;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(incoming) = frame::parse(text, "alice", 1 << 20) else {
        return;
    };
    let forwarded: Value = serde_json::from_str(&incoming.forward(text, 1234)).expect("forwarded frame is JSON");
    assert_eq!(forwarded["ts"], 1234);
    let ack = frame::ack(incoming.msg_id, incoming.thread_id, &incoming.to, &[] as &[&str]);
    let ack: Value = serde_json::from_str(&ack).expect("ack is JSON");
    assert!(ack["delivered"].is_array() && ack["offline"].is_array());
});
