//! What both agent CLIs need from a child process: NDJSON on stdout read
//! with a bound, stderr drained (a full stderr pipe blocks the CLI) with its
//! tail kept for crash reports, JSON lines written to stdin, and a stop that
//! cannot leave a zombie.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// A stdout line longer than this is skipped, not buffered: tool results
/// can be large, but not this large.
pub const MAX_LINE: usize = 16 * 1024 * 1024;
/// Lines of stderr kept to explain a crash.
const STDERR_TAIL: usize = 20;
/// How long a CLI gets to exit after its stdin closes, then after SIGTERM.
const GRACE: Duration = Duration::from_secs(5);

/// A running agent CLI.
pub struct AgentProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    pub label: String,
}

/// stdout, one parsed JSON value per line; the channel closes at EOF.
pub type Lines = mpsc::Receiver<Value>;

impl AgentProcess {
    /// Starts `command` with piped stdio; its stdout lines arrive on the
    /// returned channel.
    pub fn spawn(mut command: Command, label: String) -> std::io::Result<(AgentProcess, Lines)> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env(nexscope_proto::api::agent::HOSTED_ENV, "1")
            // Its own process group: a stop reaches the tools it runs too.
            .process_group(0);
        // If the daemon dies (kill -9), its agents go too instead of
        // finishing turns nobody will read.
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| std::io::Error::other("no stderr pipe"))?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(drain_stderr(stderr, stderr_tail.clone(), label.clone()));
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(read_lines(BufReader::new(stdout), tx, label.clone()));
        Ok((
            AgentProcess {
                child,
                stdin,
                stderr_tail,
                label,
            },
            rx,
        ))
    }

    /// Writes one JSON line. Only JSON ever goes to stdin: Claude Code exits
    /// on any other line.
    pub async fn send(&mut self, value: &Value) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        stdin.write_all(&line).await?;
        stdin.flush().await
    }

    /// Signals the agent's process group (the agent and the tools it runs).
    fn signal_group(&self, signal: nix::sys::signal::Signal) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), signal);
        }
    }

    /// The exit status and the last stderr lines, once the process has exited.
    pub fn exit_report(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => "still running".into(),
        };
        let tail = self.stderr_tail();
        if tail.is_empty() {
            status
        } else {
            format!("{status}: {tail}")
        }
    }

    pub fn stderr_tail(&self) -> String {
        let tail = match self.stderr_tail.lock() {
            Ok(tail) => tail.iter().cloned().collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        };
        tail.join(" | ")
    }

    /// Waits up to a few seconds for an exit and reports it.
    pub async fn wait_exit(&mut self) -> String {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        self.exit_report()
    }

    /// Closes stdin, gives the CLI time to exit, then SIGTERM, then SIGKILL;
    /// always reaps.
    pub async fn stop(mut self) {
        self.stdin.take();
        if tokio::time::timeout(GRACE, self.child.wait()).await.is_ok() {
            return;
        }
        self.signal_group(nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(GRACE, self.child.wait()).await.is_ok() {
            self.signal_group(nix::sys::signal::Signal::SIGKILL);
            return;
        }
        self.signal_group(nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.kill().await;
        tracing::warn!(agent = %self.label, "agent process did not stop; killed");
    }
}

async fn drain_stderr(
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    label: String,
) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_bounded_line(&mut reader, &mut line, 64 * 1024).await {
            Ok(None) | Err(_) => return,
            Ok(Some(false)) => continue,
            Ok(Some(true)) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            continue;
        }
        tracing::debug!(agent = %label, stderr = %text);
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(text);
        }
    }
}

async fn read_lines<R: AsyncBufRead + Unpin>(
    mut reader: R,
    tx: mpsc::Sender<Value>,
    label: String,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_bounded_line(&mut reader, &mut line, MAX_LINE).await {
            Ok(None) | Err(_) => return,
            Ok(Some(false)) => {
                tracing::warn!(agent = %label, limit = MAX_LINE, "skipped an over-long line from the agent");
                continue;
            }
            Ok(Some(true)) => {}
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(&line) {
            Ok(value) => {
                if tx.send(value).await.is_err() {
                    return;
                }
            }
            // The SDKs skip non-JSON lines too (banners, warnings).
            Err(_) => {
                tracing::debug!(agent = %label, line = %String::from_utf8_lossy(&line), "non-JSON line from the agent")
            }
        }
    }
}

/// Reads one line into `line` without ever holding more than `limit` bytes.
/// `Some(true)`: a line; `Some(false)`: a line over the limit, skipped;
/// `None`: end of stream.
pub async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Option<bool>> {
    let mut overflow = false;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(if line.is_empty() && !overflow {
                None
            } else {
                Some(!overflow)
            });
        }
        let (chunk, found) = match buffer.iter().position(|&b| b == b'\n') {
            Some(i) => (&buffer[..i], Some(i + 1)),
            None => (buffer, None),
        };
        if !overflow {
            if line.len() + chunk.len() > limit {
                overflow = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = found.unwrap_or(buffer.len());
        reader.consume(used);
        if found.is_some() {
            return Ok(Some(!overflow));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn over_long_lines_are_skipped_and_the_next_one_read() {
        let input = format!("{}\n{{\"a\":1}}\n", "x".repeat(100));
        let mut reader = BufReader::with_capacity(8, input.as_bytes());
        let mut line = Vec::new();
        assert_eq!(
            read_bounded_line(&mut reader, &mut line, 50).await.unwrap(),
            Some(false)
        );
        line.clear();
        assert_eq!(
            read_bounded_line(&mut reader, &mut line, 50).await.unwrap(),
            Some(true)
        );
        assert_eq!(line, b"{\"a\":1}");
        line.clear();
        assert_eq!(
            read_bounded_line(&mut reader, &mut line, 50).await.unwrap(),
            None
        );
    }
}
