//! Errors of nexscopectl and the exit codes scripts can rely on:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | the daemon refused the request (a varlink error; its code and message are printed), or an agent's turn failed |
//! | 2 | bad command line |
//! | 3 | the daemon is not running and could not be started (or `--no-autostart`) |
//! | 4 | the daemon did not answer in time, or answered something unexpected |

use std::process::ExitCode;

use nexscope_proto::varlink::VarlinkError;
use nexscope_proto::varlink::client::ClientError;

pub const REFUSED: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOT_RUNNING: u8 = 3;
pub const NO_ANSWER: u8 = 4;

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("nexscoped is not running ({reason})")]
    NotRunning { reason: String },
    #[error("cannot start nexscoped: {0}")]
    StartFailed(String),
    #[error("{0}")]
    Remote(VarlinkError),
    /// The agent's turn ended in an error (a query streams, so the daemon
    /// reports it in the turn's last event, not as a varlink error).
    #[error("{0}")]
    TurnFailed(String),
    #[error("{0}")]
    NoAnswer(String),
    #[error("{0}")]
    Usage(String),
}

impl CtlError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CtlError::NotRunning { .. } | CtlError::StartFailed(_) => NOT_RUNNING,
            CtlError::Remote(_) | CtlError::TurnFailed(_) => REFUSED,
            CtlError::NoAnswer(_) => NO_ANSWER,
            CtlError::Usage(_) => USAGE,
        })
    }

    /// A short code for `--json` output.
    pub fn code(&self) -> String {
        match self {
            CtlError::NotRunning { .. } => "not_running".into(),
            CtlError::StartFailed(_) => "start_failed".into(),
            CtlError::Remote(error) => error.code(),
            CtlError::TurnFailed(_) => "turn_failed".into(),
            CtlError::NoAnswer(_) => "no_answer".into(),
            CtlError::Usage(_) => "usage".into(),
        }
    }
}

impl From<ClientError> for CtlError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Connect { path, source } => CtlError::NotRunning {
                reason: match source.kind() {
                    std::io::ErrorKind::NotFound => format!("no socket at {}", path.display()),
                    std::io::ErrorKind::ConnectionRefused => {
                        format!("nothing listens on {}", path.display())
                    }
                    _ => format!("{}: {source}", path.display()),
                },
            },
            ClientError::Remote(error) => CtlError::Remote(error),
            other => CtlError::NoAnswer(other.to_string()),
        }
    }
}
