//! Printing results: JSON on stdout with `--json`, else text for people.
//! Messages and warnings always go to stderr, so stdout stays parseable.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::exit::CtlError;

#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints a result: `value` as JSON, or `text()` for a person.
    pub fn result(&self, value: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }

    /// Reports an error and returns its exit code.
    pub fn error(&self, error: &CtlError) -> ExitCode {
        if self.json {
            println!(
                "{}",
                json!({ "error": { "code": error.code(), "message": error.to_string() } })
            );
        }
        match error {
            // A refusal names its code, as v1 printed `[<code>] <message>`.
            CtlError::Remote(remote) => eprintln!("nexscopectl: [{}] {error}", remote.code()),
            CtlError::TurnFailed(_) => eprintln!("nexscopectl: [{}] {error}", error.code()),
            _ => eprintln!("nexscopectl: {error}"),
        }
        error.exit_code()
    }
}

/// `2h03m`, `4m12s`, `3.2s`: an uptime a person reads at a glance.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}
