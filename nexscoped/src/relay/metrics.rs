//! Counters for `GET /metrics` (Prometheus text format). Connections add
//! their frame and byte counts in batches, so a busy room does not fight
//! over these cache lines once per frame.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use super::frame::ErrorCode;

#[derive(Default)]
pub struct Metrics {
    pub connections: AtomicI64,
    pub members: AtomicI64,
    pub accepted: AtomicU64,
    /// Turned away by the connection caps (admission).
    pub refused: AtomicU64,
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub auth_failures: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
}

impl Metrics {
    pub fn error(&self, code: ErrorCode) {
        self.errors[code.index()].fetch_add(1, Relaxed);
    }

    /// Every series, one after the other (long for their number).
    pub fn render(&self, rooms: usize) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "nexscope_relay_connections",
            "gauge",
            "Open WebSocket connections.",
            self.connections.load(Relaxed).to_string(),
        );
        metric(
            "nexscope_relay_members",
            "gauge",
            "Members online in all rooms.",
            self.members.load(Relaxed).to_string(),
        );
        metric(
            "nexscope_relay_rooms",
            "gauge",
            "Rooms with at least one member.",
            rooms.to_string(),
        );
        metric(
            "nexscope_relay_connections_total",
            "counter",
            "Connections accepted.",
            self.accepted.load(Relaxed).to_string(),
        );
        metric(
            "nexscope_relay_refused_total",
            "counter",
            "Connections turned away by the connection caps.",
            self.refused.load(Relaxed).to_string(),
        );
        metric(
            "nexscope_relay_frames_in_total",
            "counter",
            "Frames received from clients.",
            self.frames_in.load(Relaxed).to_string(),
        );
        metric(
            "nexscope_relay_bytes_in_total",
            "counter",
            "Payload bytes received from clients.",
            self.bytes_in.load(Relaxed).to_string(),
        );
        metric(
            "nexscope_relay_frames_out_total",
            "counter",
            "Frames sent to clients.",
            self.frames_out.load(Relaxed).to_string(),
        );
        metric(
            "nexscope_relay_bytes_out_total",
            "counter",
            "Payload bytes sent to clients.",
            self.bytes_out.load(Relaxed).to_string(),
        );
        metric(
            "nexscope_relay_auth_failures_total",
            "counter",
            "Handshakes refused for a bad or missing token.",
            self.auth_failures.load(Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP nexscope_relay_errors_total Error frames and closes, by code.\n# TYPE nexscope_relay_errors_total counter"
        );
        for code in ErrorCode::ALL {
            let _ = writeln!(
                out,
                "nexscope_relay_errors_total{{code=\"{}\"}} {}",
                code.as_str(),
                self.errors[code.index()].load(Relaxed)
            );
        }
        out
    }
}
