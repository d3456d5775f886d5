//! Test fixtures, once: temporary XDG homes, the real binaries, a running
//! daemon, and small helpers to speak varlink by hand. Every wait is bounded.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod agent_clis;
pub mod agents;
pub mod browser;
pub mod cluster;
pub mod docs;
pub mod http;
pub mod mock_model;
pub mod prereq;
pub mod relay;
pub mod rooms;
pub mod tls;
pub mod web;
pub mod wiring;

/// How long anything in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("nxt-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The built binaries: next to the test executable's `deps` directory.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("NEXSCOPE_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// A user's world: its own HOME, XDG directories and runtime directory.
pub struct Env {
    pub root: TempDir,
}

impl Env {
    pub fn new(tag: &str) -> Env {
        let root = TempDir::new(tag);
        for dir in ["home", "config", "state", "data", "run"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        set_mode(&root.path().join("run"), 0o700);
        Env { root }
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.root.path().join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.runtime_dir().join("nexscope/nexscoped.sock")
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.path().join("config/nexscope/config.toml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state/nexscope")
    }

    /// Writes config.toml as the documentation says to keep it: 0600, since
    /// it may hold a token (the daemon refuses an inline token otherwise).
    pub fn write_config(&self, text: &str) {
        let file = self.config_file();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
        set_mode(&file, 0o600);
    }

    /// A command with this user's environment and nothing of the caller's
    /// nexscope settings.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        let root = self.root.path();
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", root.join("home"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_STATE_HOME", root.join("state"))
            .env("XDG_DATA_HOME", root.join("data"))
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .stdin(Stdio::null());
        command
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.command(bin("nexscopectl"))
            .args(args)
            .output()
            .expect("run nexscopectl")
    }

    /// nexscopectl, asserting success; its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let output = self.ctl(args);
        assert!(
            output.status.success(),
            "nexscopectl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts nexscoped in the foreground and waits until it answers.
    pub fn daemon(&self) -> Daemon {
        self.daemon_with(&[])
    }

    /// `daemon`, with `env` added to its environment (what its agents see).
    pub fn daemon_with(&self, env: &[(String, String)]) -> Daemon {
        let child = self
            .command(bin("nexscoped"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nexscoped");
        let daemon = Daemon { child };
        wait_until(|| {
            call(
                &self.socket(),
                "org.varlink.service.GetInfo",
                serde_json::json!({}),
            )
            .is_ok()
        });
        daemon
    }
}

/// A running nexscoped, killed when dropped.
pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Waits for the exit and returns the status code and what it wrote to stderr.
    pub fn wait_exit(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return (status.code(), stderr);
            }
            assert!(
                Instant::now() < deadline,
                "nexscoped did not exit within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Polls `ready` until it holds, failing the test after `WAIT`.
pub fn wait_until(mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` to exit within `timeout`, its stdin held open (not
/// closed, unlike `wait_with_output`), and returns what it printed; kills it
/// and fails the test when it does not exit.
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let stdin = child.stdin.take();
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => break,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the process did not exit within {timeout:?}");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    drop(stdin);
    child.wait_with_output().expect("collect the output")
}

/// A raw varlink connection: write bytes, read NUL-terminated replies.
pub struct Raw {
    pub stream: UnixStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(socket: &Path) -> std::io::Result<Raw> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(WAIT))?;
        stream.set_write_timeout(Some(WAIT))?;
        Ok(Raw {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send_call(&mut self, call: Value) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(&call).unwrap();
        bytes.push(0);
        self.send(&bytes)
    }

    /// The next reply, or None when the daemon closed the connection.
    pub fn reply(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == 0) {
                let message: Vec<u8> = self.buf.drain(..=end).collect();
                return Some(serde_json::from_slice(&message[..end]).expect("reply is JSON"));
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// One call on a fresh connection; the reply (which may be an error reply).
pub fn call(socket: &Path, method: &str, parameters: Value) -> std::io::Result<Value> {
    let mut raw = Raw::connect(socket)?;
    raw.send_call(serde_json::json!({ "method": method, "parameters": parameters }))?;
    raw.reply()
        .ok_or_else(|| std::io::Error::other("connection closed without a reply"))
}

/// True when the test Python imports `varlink` (see [`prereq`]).
pub fn python_varlink_available() -> bool {
    prereq::python_module("varlink", "varlink")
}

/// The lines a child writes to `stdout`, as they come, read on a thread of
/// their own (a test reads them with a timeout).
pub fn line_reader(stdout: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A process's resident set size in KiB (0 when it cannot be read).
pub fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The `p` quantile (0 to 1) of sorted samples.
/// CPU time (user + system) a process has used.
pub fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
