//! nexscopectl against the real daemon: auto-start, daemon start/stop/restart/
//! status, --json, exit codes, and the version warning.

use std::process::{Command, Stdio};

use nexscope_tests::{Env, mode_of, python_varlink_available, set_mode, wait_until};
use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn status_starts_the_daemon_when_none_runs_and_daemon_stop_stops_it() {
    let env = Env::new("autostart");
    let output = env.ctl(&["daemon", "status"]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "daemon status does not start it"
    );
    assert!(text(&output.stderr).contains("nexscoped is not running"));

    let output = env.ctl(&["status"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with(&format!("nexscoped {} (pid ", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    assert!(stdout.contains(&env.socket().display().to_string()));
    assert!(
        env.state_dir().join("nexscoped.log").exists(),
        "the spawned daemon logs to the state directory"
    );

    let output = env.ctl(&["--json", "daemon", "status"]);
    assert_eq!(output.status.code(), Some(0));
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    let pid = status["pid"].as_i64().unwrap();

    let output = env.ctl(&["daemon", "stop"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        format!("stopped nexscoped (pid {pid})")
    );
    assert!(!env.socket().exists());
    // SAFETY: kill(pid, 0) only probes.
    wait_until(|| unsafe { libc::kill(pid as i32, 0) } != 0 || zombie(pid));

    let output = env.ctl(&["daemon", "stop"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stopping a stopped daemon is not an error"
    );
    assert_eq!(text(&output.stdout).trim(), "nexscoped is not running");
}

#[test]
fn the_autostart_log_is_private_even_when_an_older_one_was_not() {
    let env = Env::new("logmode");
    let log = env.state_dir().join("nexscoped.log");
    std::fs::create_dir_all(env.state_dir()).unwrap();
    std::fs::write(&log, "an older run\n").unwrap();
    set_mode(&log, 0o644);
    let output = env.ctl(&["status"]);
    env.ctl_ok(&["daemon", "stop"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(mode_of(&log) & 0o777, 0o600, "narrowed");

    let fresh = Env::new("logmode2");
    let output = fresh.ctl(&["status"]);
    fresh.ctl_ok(&["daemon", "stop"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let log = fresh.state_dir().join("nexscoped.log");
    assert_eq!(mode_of(&log) & 0o777, 0o600, "created private");
}

fn zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn daemon_start_is_idempotent_and_restart_gives_a_new_process() {
    let env = Env::new("restart");
    let output = env.ctl(&["--json", "daemon", "start"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let first: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(first["started"], true);

    let output = env.ctl(&["--json", "daemon", "start"]);
    let again: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(again["started"], false);
    assert_eq!(again["pid"], first["pid"]);
    assert!(text(&env.ctl(&["daemon", "start"]).stdout).contains("is already running"));

    let output = env.ctl(&["--json", "daemon", "restart"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let lines: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["stopped"], true);
    assert_eq!(lines[1]["started"], true);
    assert_ne!(lines[1]["pid"], first["pid"]);
    assert_eq!(env.ctl(&["daemon", "stop"]).status.code(), Some(0));
}

#[test]
fn json_goes_to_stdout_and_errors_have_codes() {
    let env = Env::new("json");
    let output = env.ctl(&["--json", "--no-autostart", "ping"]);
    assert_eq!(output.status.code(), Some(3));
    let error: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(error["error"]["code"], "not_running");
    assert!(text(&output.stderr).contains("no socket at"));

    let _daemon = env.daemon();
    let output = env.ctl(&["--json", "ping"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stderr.is_empty(),
        "nothing on stderr: {}",
        text(&output.stderr)
    );
    let pong: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(pong["version"], env!("CARGO_PKG_VERSION"));
    assert!(pong["rttUs"].as_u64().is_some());
    assert!(text(&env.ctl(&["ping"]).stdout).starts_with("pong from nexscoped"));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new("usage");
    assert_eq!(env.ctl(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(env.ctl(&["daemon"]).status.code(), Some(2));
}

#[test]
fn a_daemon_that_cannot_start_is_reported_with_its_reason() {
    let env = Env::new("cannotstart");
    env.write_config("hop_limit = 0\n");
    let output = env.ctl(&["status"]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("cannot start nexscoped"), "{stderr}");
    assert!(
        stderr.contains("key `hop_limit`: 0 is not allowed"),
        "{stderr}"
    );
}

/// The only stand-in in these tests: a varlink service (the Python reference
/// implementation) claiming another version, since a real older nexscoped
/// cannot be built here.
const OLD_DAEMON: &str = r#"
import os, sys, varlink
service = varlink.Service(vendor="nexscope", product="nexscoped", version="0.0.1", url="x",
                          interface_dir=sys.argv[2])
@service.interface("io.nexscope.Daemon")
class Daemon:
    def Ping(self):
        return {}
class Handler(varlink.RequestHandler):
    service = service
server = varlink.ThreadingServer("unix:" + sys.argv[1], Handler)
print("ready", flush=True)
server.serve_forever()
"#;

#[test]
fn a_version_mismatch_is_warned_about_on_stderr() {
    if !python_varlink_available() {
        return;
    }
    let env = Env::new("version");
    let socket = env.root.path().join("old.sock");
    let interfaces = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/interfaces");
    let mut old = Command::new(nexscope_tests::prereq::python())
        .args(["-c", OLD_DAEMON])
        .arg(&socket)
        .arg(&interfaces)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(|| socket.exists());
    let output = env.ctl(&["--json", "--socket", socket.to_str().unwrap(), "ping"]);
    let _ = old.kill();
    let _ = old.wait();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("warning: nexscoped is version 0.0.1"),
        "{stderr}"
    );
    assert!(stderr.contains("nexscopectl daemon restart"));
    let pong: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(pong["version"], "0.0.1", "stdout stays pure JSON");
}
