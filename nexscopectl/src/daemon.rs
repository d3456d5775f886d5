//! `ping`, `status` and `daemon start|stop|restart|status`.

use std::time::{Duration, Instant};

use nexscope_proto::api::Empty;
use nexscope_proto::api::daemon::{DaemonStatus, Method, StatusOut};
use serde_json::json;

use crate::connect::{self, Control, Options};
use crate::exit::CtlError;
use crate::output::{Output, duration_ms};

/// How long `daemon stop` waits for the process to be gone.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Subcommand, Debug)]
pub enum DaemonCommand {
    /// Start nexscoped unless it is running (through systemd or launchd when
    /// they own it).
    Start,
    /// Stop nexscoped cleanly; succeeds when it is not running.
    Stop,
    /// Stop, then start.
    Restart,
    /// Show whether nexscoped runs, without starting it (exit 3 if not).
    Status,
}

pub fn ping(options: &Options, out: Output) -> Result<(), CtlError> {
    let mut control = Control::open(options)?;
    let started = Instant::now();
    control
        .connection
        .request::<serde_json::Value>(&Method::Ping(Empty {}))?;
    let rtt = started.elapsed();
    let version = control.info.version.clone();
    out.result(
        &json!({ "version": version, "rttUs": rtt.as_micros() as u64 }),
        || {
            format!(
                "pong from nexscoped {version} in {:.0} µs",
                rtt.as_secs_f64() * 1e6
            )
        },
    );
    Ok(())
}

pub fn status(options: &Options, out: Output) -> Result<(), CtlError> {
    let mut control = Control::open(options)?;
    print_status(&fetch_status(&mut control)?, out);
    Ok(())
}

pub fn command(command: &DaemonCommand, options: &Options, out: Output) -> Result<(), CtlError> {
    match command {
        DaemonCommand::Start => start(options, out),
        DaemonCommand::Stop => stop(options, out),
        DaemonCommand::Restart => {
            stop(options, out)?;
            start(options, out)
        }
        DaemonCommand::Status => {
            let mut control = Control::try_open(&options.socket)?;
            print_status(&fetch_status(&mut control)?, out);
            Ok(())
        }
    }
}

fn fetch_status(control: &mut Control) -> Result<DaemonStatus, CtlError> {
    Ok(control
        .connection
        .request::<StatusOut>(&Method::Status(Empty {}))?
        .status)
}

fn start(options: &Options, out: Output) -> Result<(), CtlError> {
    let (state, how) = match Control::try_open(&options.socket) {
        Ok(mut control) => (fetch_status(&mut control)?, None),
        Err(CtlError::NotRunning { .. }) => {
            let how = connect::start(&options.socket)?;
            let mut control = Control::try_open(&options.socket)?;
            (fetch_status(&mut control)?, Some(how))
        }
        Err(other) => return Err(other),
    };
    out.result(
        &json!({ "started": how.is_some(), "pid": state.pid, "version": state.version }),
        || match &how {
            Some(how) => format!("started nexscoped {} ({how})", state.version),
            None => format!(
                "nexscoped {} is already running (pid {})",
                state.version, state.pid
            ),
        },
    );
    Ok(())
}

fn stop(options: &Options, out: Output) -> Result<(), CtlError> {
    let mut control = match Control::try_open(&options.socket) {
        Ok(control) => control,
        Err(CtlError::NotRunning { .. }) => {
            out.result(&json!({ "stopped": false, "pid": null }), || {
                "nexscoped is not running".into()
            });
            return Ok(());
        }
        Err(other) => return Err(other),
    };
    let pid = fetch_status(&mut control)?.pid;
    control
        .connection
        .request::<serde_json::Value>(&Method::Shutdown(Empty {}))?;
    // Wait for the process, not the socket: under systemd the socket outlives
    // the daemon, and connecting to it would start a new one.
    let deadline = Instant::now() + STOP_TIMEOUT;
    while process_alive(pid) {
        if Instant::now() > deadline {
            return Err(CtlError::NoAnswer(format!(
                "nexscoped (pid {pid}) accepted Shutdown but is still running after {STOP_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    out.result(&json!({ "stopped": true, "pid": pid }), || {
        format!("stopped nexscoped (pid {pid})")
    });
    Ok(())
}

fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence. EPERM means it exists but is not ours, which
    // cannot be our daemon: the pid was reused.
    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None).is_err() {
        return false;
    }
    // A daemon we did not spawn has exited once it is a zombie; its reaper
    // (init, or a container's pid 1) may take its time.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z"),
        Err(_) => true,
    }
}

fn print_status(status: &DaemonStatus, out: Output) {
    let value = serde_json::to_value(status).unwrap_or_default();
    out.result(&value, || {
        let config = if status.config_found {
            status.config_file.clone()
        } else {
            format!("{} (not found: embedded defaults)", status.config_file)
        };
        let gateway = match &status.agent_gateway {
            Some(addr) => format!("\n  gateway:   ws://{addr} (nx-ce)"),
            None => String::new(),
        };
        let gateway = match &status.web {
            Some(url) => format!("{gateway}\n  web page:  {url} (log in with nexscopectl web)"),
            None => gateway,
        };
        format!(
            "nexscoped {} (pid {}), up {}\n  socket:    {}\n  config:    {}\n  projects:  {}\n  rooms:     {}\n  sessions:  {} ({} live){gateway}",
            status.version,
            status.pid,
            duration_ms(status.uptime_ms),
            status.socket,
            config,
            status.projects,
            status.rooms,
            status.agent_sessions,
            status.live_agents,
        )
    });
}
