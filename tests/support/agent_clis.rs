//! The real agent CLIs under test: where the pinned `claude` and `codex` are,
//! the environment that points them at a [`MockModel`] and nothing else
//! (see docs/agent-cli-notes.md), and [`Cli`], a running
//! CLI spoken to in JSON lines with every wait bounded.
//!
//! A test whose binary is missing fails with the install hint, unless the
//! `agents` group is skipped (see [`crate::prereq`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::mock_model::MockModel;

/// The API key the CLIs are given; the mock takes any.
pub const API_KEY: &str = "test-key";

/// The pinned versions, here and nowhere else.
pub const CLAUDE_VERSION: &str = "2.1.330";
pub const CODEX_VERSION: &str = "0.169.0";

/// Claude Code driven as nx-ce's SDK drives it: stream-json both ways.
pub const STREAM_JSON_ARGS: &[&str] = &[
    "--output-format",
    "stream-json",
    "--verbose",
    "--input-format",
    "stream-json",
    "--model",
    "claude-sonnet-4-6",
    "--permission-mode",
    "bypassPermissions",
];

/// Longest a CLI may run in a test: a whole scripted session takes a few
/// seconds, and neither CLI gives up by itself when something goes wrong.
pub const CLI_LIFETIME: Duration = Duration::from_secs(60);
/// Stderr kept for a failure message: the tail is what explains a failure.
const STDERR_TAIL: usize = 64 * 1024;
/// How long a dropped Cli waits for its pipe readers to see the pipes close.
const READERS_GRACE: Duration = Duration::from_secs(2);
/// Stdout lines quoted in a failure message.
const LINES_QUOTED: usize = 12;
/// Characters of each quoted line.
const QUOTE_CHARS: usize = 600;

/// The npm prefix the binaries are installed under: `NEXSCOPE_AGENT_CLIS`,
/// else `<workspace>/target/agent-clis`.
pub fn npm_prefix() -> PathBuf {
    match std::env::var_os("NEXSCOPE_AGENT_CLIS") {
        Some(prefix) => PathBuf::from(prefix),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate is inside the workspace")
            .join("target/agent-clis"),
    }
}

/// `claude`: `CLAUDE_BIN`, else the npm prefix; None (and why) when absent.
pub fn claude_bin() -> Option<PathBuf> {
    let (npm_arch, _) = arch();
    find(
        "claude",
        "CLAUDE_BIN",
        &[
            format!("node_modules/@anthropic-ai/claude-code-linux-{npm_arch}/claude"),
            "node_modules/.bin/claude".into(),
        ],
    )
}

/// `codex`: `CODEX_BIN`, else the npm prefix; None (and why) when absent.
pub fn codex_bin() -> Option<PathBuf> {
    let (npm_arch, triple_arch) = arch();
    find(
        "codex",
        "CODEX_BIN",
        &[
            format!(
                "node_modules/@openai/codex-linux-{npm_arch}/vendor/{triple_arch}-unknown-linux-musl/bin/codex"
            ),
            "node_modules/.bin/codex".into(),
        ],
    )
}

/// This machine's architecture as npm packages and target triples name it.
fn arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "aarch64"),
        _ => ("x64", "x86_64"),
    }
}

fn find(name: &str, variable: &str, candidates: &[String]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Some(path);
        }
        crate::prereq::require(
            "agents",
            false,
            &format!(
                "{variable}={} is not a file; point it at the {name} binary",
                path.display()
            ),
        );
        return None;
    }
    let prefix = npm_prefix();
    if let Some(path) = candidates
        .iter()
        .map(|c| prefix.join(c))
        .find(|p| p.is_file())
    {
        return Some(path);
    }
    let why = format!(
        "{name} not found under {} (install with: npm install --prefix target/agent-clis \
         @anthropic-ai/claude-code@{CLAUDE_VERSION} @openai/codex@{CODEX_VERSION}, or set {variable})",
        prefix.display()
    );
    crate::prereq::require("agents", false, &why);
    None
}

/// The environment that points `claude` at `mock`, keeps its state under
/// `home`, and turns off everything that would leave the machine.
pub fn claude_env(mock: &MockModel, home: &Path) -> Vec<(String, String)> {
    let config_dir = home.join(".claude");
    [
        ("ANTHROPIC_BASE_URL", mock.url()),
        ("ANTHROPIC_API_KEY", API_KEY.into()),
        ("CLAUDE_CONFIG_DIR", config_dir.display().to_string()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
        ("DISABLE_TELEMETRY", "1".into()),
        ("DISABLE_ERROR_REPORTING", "1".into()),
        ("DISABLE_AUTOUPDATER", "1".into()),
        ("CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS", "1".into()),
        // Root may use bypassPermissions only inside a declared sandbox.
        ("IS_SANDBOX", "1".into()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// Writes `<home>/.codex/config.toml` with a custom provider pointing at
/// `mock` (a built-in provider would try websockets and log-in first) and
/// returns the environment that selects it.
pub fn codex_env(mock: &MockModel, home: &Path) -> Vec<(String, String)> {
    let codex_home = home.join(".codex");
    std::fs::create_dir_all(&codex_home).expect("create CODEX_HOME");
    // `gpt-5.5` is in the built-in catalog; an unknown slug adds an error
    // item to every turn (as the pinned codex did).
    let config = format!(
        r#"model = "gpt-5.5"
model_provider = "mock"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
cli_auth_credentials_store = "file"

[features]
plugins = false
apps = false
shell_snapshot = false

[model_providers.mock]
name = "mock"
base_url = "{}/v1"
wire_api = "responses"
supports_websockets = false
request_max_retries = 0
stream_max_retries = 0
"#,
        mock.url()
    );
    std::fs::write(codex_home.join("config.toml"), config).expect("write codex config.toml");
    vec![("CODEX_HOME".into(), codex_home.display().to_string())]
}

/// `bin` in `cwd` with nothing of the caller's environment but PATH, and
/// HOME and `env` added.
pub fn cli_command(bin: &Path, home: &Path, cwd: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(bin);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .current_dir(cwd);
    command
}

/// A running CLI spoken to in JSON lines; killed when dropped. Stdout is read
/// on its own thread, stderr drained into a bounded tail (a full pipe would
/// block the CLI). Every wait ends by [`CLI_LIFETIME`] after spawn, failing
/// the test.
pub struct Cli {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    deadline: Instant,
    /// Every stdout line so far, parsed (a non-JSON line as a JSON string).
    pub seen: Vec<Value>,
}

impl Cli {
    /// Spawns `command` with piped stdio. `NEXSCOPE_TEST_TRACE=1` prints every
    /// line in and out.
    pub fn spawn(name: &str, mut command: Command) -> Cli {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        let stdout_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = thread::spawn({
            let stderr = Arc::clone(&stderr);
            move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = stderr_pipe.read(&mut chunk) {
                    let mut tail = stderr.lock().unwrap_or_else(|e| e.into_inner());
                    tail.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    if tail.len() > STDERR_TAIL {
                        let mut cut = tail.len() - STDERR_TAIL;
                        while !tail.is_char_boundary(cut) {
                            cut += 1;
                        }
                        tail.drain(..cut);
                    }
                }
            }
        });
        Cli {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            stderr,
            readers: vec![stdout_reader, stderr_reader],
            deadline: Instant::now() + CLI_LIFETIME,
            seen: Vec::new(),
        }
    }

    /// Writes `line` and a newline to stdin.
    pub fn send(&mut self, line: &Value) {
        trace(&format!("{} <", self.name), &line.to_string());
        let stdin = self.stdin.as_mut().expect("stdin is open");
        let result = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
        if let Err(e) = result {
            self.fail(&format!("write to stdin: {e}"));
        }
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line within `timeout`; fails the test otherwise.
    pub fn next(&mut self, timeout: Duration) -> Value {
        let deadline = (Instant::now() + timeout).min(self.deadline);
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                trace(&format!("{} >", self.name), &line);
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                self.seen.push(value.clone());
                value
            }
            Err(RecvTimeoutError::Timeout) => self.fail(&format!("no line within {timeout:?}")),
            Err(RecvTimeoutError::Disconnected) => self.fail("stdout closed"),
        }
    }

    /// Reads lines until one satisfies `wanted`, within `timeout`; returns it.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        mut wanted: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail(&format!("no {what} within {timeout:?}"));
            }
            let line = self.next(left);
            if wanted(&line) {
                return line;
            }
        }
    }

    /// The exit code once the CLI exits within `timeout`; fails the test otherwise.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = (Instant::now() + timeout).min(self.deadline);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if Instant::now() >= deadline {
                self.fail(&format!("did not exit within {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Fails the test, quoting the last lines and stderr.
    pub fn fail(&self, why: &str) -> ! {
        let start = self.seen.len().saturating_sub(LINES_QUOTED);
        let lines: Vec<String> = self.seen[start..]
            .iter()
            .map(|line| line.to_string().chars().take(QUOTE_CHARS).collect())
            .collect();
        let stderr = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        panic!(
            "{}: {why}\nlast stdout lines:\n{}\nstderr tail:\n{stderr}",
            self.name,
            lines.join("\n")
        );
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The pipes close with the process; a grandchild still holding one
        // open would keep its reader waiting, so that one is left to end alone.
        let deadline = Instant::now() + READERS_GRACE;
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        for reader in self.readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

fn trace(tag: &str, line: &str) {
    if std::env::var_os("NEXSCOPE_TEST_TRACE").is_some() {
        eprintln!("{tag} {line}");
    }
}
