//! Reaching the daemon: connect, or start it when nothing answers, then check
//! its version. Health is "connect + GetInfo answers in time", never a pid
//! file. Starting prefers the service manager that owns nexscoped (systemd's
//! socket unit, a launchd agent); only without one do we spawn it ourselves,
//! detached, logging to a file in the state directory.

use std::io::{BufRead, Seek};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nexscope_proto::api::Empty;
use nexscope_proto::api::service::{Info, Method, VERSION};
use nexscope_proto::paths;
use nexscope_proto::varlink::client::{ClientError, Connection};

use crate::exit::CtlError;

/// How long a call may take before we give up on the daemon.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a starting daemon gets to answer GetInfo.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const START_POLL: Duration = Duration::from_millis(10);
const LAUNCHD_LABEL: &str = "io.nexscope.nexscoped";

pub struct Options {
    pub socket: PathBuf,
    pub autostart: bool,
}

/// A connection whose daemon answered GetInfo.
pub struct Control {
    pub connection: Connection,
    pub info: Info,
}

impl Control {
    /// Connects, starting the daemon if allowed and needed.
    pub fn open(options: &Options) -> Result<Control, CtlError> {
        match Control::try_open(&options.socket) {
            Err(CtlError::NotRunning { .. }) if options.autostart => {
                start(&options.socket)?;
                Control::try_open(&options.socket)
            }
            other => other,
        }
    }

    /// Connects without starting anything.
    pub fn try_open(socket: &Path) -> Result<Control, CtlError> {
        let mut connection = Connection::connect(socket, Some(CALL_TIMEOUT))?;
        let info: Info = connection.request(&Method::GetInfo(Empty {}))?;
        if info.version != VERSION {
            eprintln!(
                "nexscopectl: warning: nexscoped is version {}, nexscopectl is {VERSION}; \
                 run `nexscopectl daemon restart` to run the installed daemon",
                info.version
            );
        }
        Ok(Control { connection, info })
    }
}

/// Starts nexscoped and waits until it answers. Returns how it was started.
pub fn start(socket: &Path) -> Result<String, CtlError> {
    if let Some(how) = start_with_service_manager() {
        wait_until_answering(socket, None)?;
        return Ok(how);
    }
    let (mut child, log) = spawn_detached(socket)?;
    let pid = child.id();
    wait_until_answering(socket, Some((&mut child, &log)))?;
    Ok(format!("pid {pid}, log {}", log.display()))
}

/// systemd (a user manager runs and knows nexscoped.socket) or launchd (the
/// agent's plist is installed) starts it; None when neither owns nexscoped.
fn start_with_service_manager() -> Option<String> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    if runtime.is_some_and(|dir| dir.join("systemd/private").exists()) {
        let known = Command::new("systemctl")
            .args(["--user", "cat", "nexscoped.socket"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if known
            && Command::new("systemctl")
                .args(["--user", "start", "nexscoped.socket", "nexscoped.service"])
                .status()
                .is_ok_and(|s| s.success())
        {
            return Some("systemctl --user start nexscoped".into());
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let plist = home.join(format!("Library/LaunchAgents/{LAUNCHD_LABEL}.plist"));
    if cfg!(target_os = "macos") && plist.exists() {
        let domain = format!("gui/{}", paths::uid());
        // bootstrap fails harmlessly when the agent is already loaded.
        let _ = Command::new("launchctl")
            .arg("bootstrap")
            .arg(&domain)
            .arg(&plist)
            .status();
        let started = Command::new("launchctl")
            .args(["kickstart", &format!("{domain}/{LAUNCHD_LABEL}")])
            .status()
            .is_ok_and(|s| s.success());
        if started {
            return Some("launchctl kickstart".into());
        }
    }
    None
}

/// The daemon binary: next to this one (an install or a cargo build), else
/// on PATH.
fn daemon_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("nexscoped")))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("nexscoped"))
}

/// The daemon's log, private: it names projects, peers and relay URLs. One
/// left wider by an older nexscopectl is narrowed too.
fn open_log(log: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

fn spawn_detached(socket: &Path) -> Result<(std::process::Child, PathBuf), CtlError> {
    let failed = |what: String| CtlError::StartFailed(what);
    let state = paths::state_dir().map_err(|e| failed(e.to_string()))?;
    paths::ensure_private_dir(&state).map_err(|e| failed(e.to_string()))?;
    let log = state.join(paths::LOG_NAME);
    let file = open_log(&log)
        .map_err(|e| failed(format!("cannot open the log file {}: {e}", log.display())))?;
    let err_file = file
        .try_clone()
        .map_err(|e| failed(format!("cannot open the log file {}: {e}", log.display())))?;
    let binary = daemon_binary();
    let mut command = Command::new(&binary);
    command
        .arg("--socket")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file);
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our
    // terminal and process group so that ^C on this command does not stop it.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", binary.display())))?;
    Ok((child, log))
}

fn wait_until_answering(
    socket: &Path,
    mut child: Option<(&mut std::process::Child, &PathBuf)>,
) -> Result<(), CtlError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut connection) = Connection::connect(socket, Some(START_TIMEOUT)) {
            match connection.request::<Info>(&Method::GetInfo(Empty {})) {
                Ok(_) => return Ok(()),
                Err(ClientError::Connect { .. }) | Err(ClientError::Io(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        if let Some((child, log)) = child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(CtlError::StartFailed(format!(
                    "nexscoped exited ({status}): {}",
                    last_line(log).unwrap_or_else(|| format!("see {}", log.display()))
                )));
            }
        }
        if Instant::now() > deadline {
            return Err(CtlError::StartFailed(format!(
                "nexscoped did not answer on {} within {START_TIMEOUT:?}",
                socket.display()
            )));
        }
        std::thread::sleep(START_POLL);
    }
}

/// The daemon's last words, to show why it would not start.
fn last_line(log: &Path) -> Option<String> {
    let mut file = std::fs::File::open(log).ok()?;
    // Only the tail: the log may be long-lived and large.
    let len = file.metadata().ok()?.len();
    file.seek(std::io::SeekFrom::Start(len.saturating_sub(4096)))
        .ok()?;
    std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|line| !line.trim().is_empty())
        .last()
        .map(|line| line.trim_start_matches("nexscoped: ").to_string())
}
