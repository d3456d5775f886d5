//! The control socket's NUL framing and call decoding on arbitrary bytes
//! split at arbitrary points: never a panic, never more held than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexscope_proto::varlink::Call;
use nexscope_proto::varlink::codec::Framer;

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| *b as usize % 64 + 1).unwrap_or(1);
    let mut framer = Framer::new(LIMIT);
    for chunk in data.chunks(split) {
        framer.feed(chunk);
        loop {
            match framer.next_message() {
                Ok(Some(message)) => {
                    assert!(message.len() <= LIMIT && !message.contains(&0));
                    if let Ok(call) = serde_json::from_slice::<Call>(&message) {
                        let _ = call.interface_and_member();
                        let _ = call.decode::<serde_json::Value>();
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
