//! nexscoped under a service manager, without one running: socket activation
//! through `systemd-socket-activate`, sd_notify through a fake NOTIFY_SOCKET,
//! signals, and the uid check that guards the control socket.

use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nexscope_tests::{Daemon, Env, TempDir, WAIT, bin, call, mode_of, set_mode, wait_until};
use serde_json::json;

fn have(program: &str) -> bool {
    nexscope_tests::prereq::program("systemd", program, "systemd")
}

/// `systemd-socket-activate` listening on `socket` for nexscoped.
fn activator(env: &Env, socket: &Path) -> Child {
    let mut command = env.command("systemd-socket-activate");
    command.arg("-l").arg(socket).arg("--fdname=varlink");
    for var in [
        "HOME",
        "XDG_CONFIG_HOME",
        "XDG_STATE_HOME",
        "XDG_DATA_HOME",
        "XDG_RUNTIME_DIR",
    ] {
        let value = match var {
            "HOME" => env.root.path().join("home"),
            "XDG_CONFIG_HOME" => env.root.path().join("config"),
            "XDG_STATE_HOME" => env.root.path().join("state"),
            "XDG_DATA_HOME" => env.root.path().join("data"),
            _ => env.runtime_dir(),
        };
        command.arg(format!("-E{var}={}", value.display()));
    }
    let child = command
        .arg(bin("nexscoped"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn systemd-socket-activate");
    wait_until(|| socket.exists());
    child
}

/// Reads datagrams until one contains `line` (as a whole line).
fn expect_notification(listener: &UnixDatagram, line: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = listener.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let hit = text.lines().any(|l| l == line);
            seen.push(text);
            if hit {
                return seen;
            }
        }
    }
    panic!("no {line} within {WAIT:?}; got {seen:?}");
}

fn notify_listener(dir: &TempDir) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    (listener, path)
}

#[test]
fn socket_activation_passes_the_socket_and_a_call_through_it_succeeds() {
    if !have("systemd-socket-activate") {
        return;
    }
    let env = Env::new("activate");
    let dir = TempDir::new("activate-sock");
    let socket = dir.path().join("io.nexscope.Daemon");
    let mut activator = activator(&env, &socket);

    let reply = call(&socket, "io.nexscope.Daemon.Status", json!({})).unwrap();
    let status = &reply["parameters"]["status"];
    assert!(
        status["socket"]
            .as_str()
            .unwrap()
            .contains("socket activation, fd name varlink"),
        "{status}"
    );
    // The daemon did not bind a socket of its own.
    assert!(!env.socket().exists());

    let reply = call(&socket, "io.nexscope.Daemon.Shutdown", json!({})).unwrap();
    assert_eq!(reply, json!({"parameters": {}}));
    let _ = activator.kill();
    let _ = activator.wait();
}

#[test]
fn notify_socket_gets_ready_then_stopping_and_sigterm_exits_0() {
    let env = Env::new("notify");
    let dir = TempDir::new("notify");
    let (listener, path) = notify_listener(&dir);
    let child = env
        .command(bin("nexscoped"))
        .env("NOTIFY_SOCKET", &path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let daemon = Daemon { child };
    let seen = expect_notification(&listener, "READY=1");
    assert!(seen.concat().contains("STATUS=serving on"), "{seen:?}");
    // READY=1 comes after the socket answers.
    assert!(call(&env.socket(), "io.nexscope.Daemon.Ping", json!({})).is_ok());

    daemon.signal(libc::SIGTERM);
    expect_notification(&listener, "STOPPING=1");
    let (code, _) = daemon.wait_exit();
    assert_eq!(code, Some(0));
    assert!(!env.socket().exists(), "the socket file is removed on exit");
}

#[test]
fn sigint_exits_0() {
    let env = Env::new("sigint");
    let daemon = env.daemon();
    daemon.signal(libc::SIGINT);
    assert_eq!(daemon.wait_exit().0, Some(0));
}

#[test]
fn watchdog_is_pinged_when_watchdog_usec_is_set() {
    let env = Env::new("watchdog");
    let dir = TempDir::new("watchdog");
    let (listener, path) = notify_listener(&dir);
    let child = env
        .command(bin("nexscoped"))
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = Daemon { child };
    expect_notification(&listener, "READY=1");
    expect_notification(&listener, "WATCHDOG=1");
    expect_notification(&listener, "WATCHDOG=1");
}

#[test]
fn sighup_reloads_the_config_and_a_bad_one_keeps_the_running_one() {
    let env = Env::new("sighup");
    let mut daemon = env.daemon();
    let status = |env: &Env| {
        call(&env.socket(), "io.nexscope.Daemon.Status", json!({})).unwrap()["parameters"]["status"]
            .clone()
    };
    assert_eq!(status(&env)["configFound"], false);

    env.write_config("hop_limit = 4\n");
    daemon.signal(libc::SIGHUP);
    wait_until(|| status(&env)["configFound"] == true);

    env.write_config("hop_limit = \"many\"\n");
    daemon.signal(libc::SIGHUP);
    let reply = call(&env.socket(), "io.nexscope.Daemon.Reload", json!({})).unwrap();
    assert_eq!(reply["error"], "io.nexscope.Daemon.ConfigInvalid");
    assert_eq!(reply["parameters"]["code"], "config_invalid");
    assert!(
        reply["parameters"]["message"]
            .as_str()
            .unwrap()
            .contains("key `hop_limit`")
    );
    assert!(daemon.is_running());
    assert_eq!(status(&env)["configFound"], true);
}

#[test]
fn socket_is_0600_in_a_0700_directory_even_when_the_directory_was_wider() {
    let env = Env::new("modes");
    std::fs::create_dir_all(env.socket().parent().unwrap()).unwrap();
    set_mode(env.socket().parent().unwrap(), 0o755);
    let _daemon = env.daemon();
    assert_eq!(mode_of(&env.socket()) & 0o777, 0o600);
    assert_eq!(mode_of(env.socket().parent().unwrap()) & 0o777, 0o700);
}

const NOBODY: u32 = 65534;

fn as_nobody(env: &Env, socket: &Path) -> std::process::Output {
    // A copy nobody may run, wherever the checkout lives (/root is 0700).
    let dir = TempDir::new("nobody-bin");
    set_mode(dir.path(), 0o755);
    let ctl = dir.path().join("nexscopectl");
    std::fs::copy(bin("nexscopectl"), &ctl).unwrap();
    set_mode(&ctl, 0o755);
    env.command(&ctl)
        .args(["--no-autostart", "--socket"])
        .arg(socket)
        .arg("ping")
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("run nexscopectl as nobody")
}

#[test]
fn another_uid_cannot_call_the_daemon() {
    if nix_uid() != 0 && !nexscope_tests::prereq::root("switching to uid nobody") {
        return;
    }
    if !have("systemd-socket-activate") {
        return;
    }
    // Through the path: the 0700 directory keeps nobody out.
    let env = Env::new("nobody");
    let _daemon = env.daemon();
    let output = as_nobody(&env, &env.socket());
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Through a socket anyone may connect to (0666, as a careless socket unit
    // would make it): the peer-uid check refuses the call.
    let env = Env::new("nobody-open");
    let dir = TempDir::new("nobody-open");
    set_mode(dir.path(), 0o755);
    let socket = dir.path().join("open.sock");
    let mut activator = activator(&env, &socket);
    set_mode(&socket, 0o666);
    let output = as_nobody(&env, &socket);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("belongs to another user"), "{stderr}");
    // The owner still gets through.
    assert!(
        call(&socket, "io.nexscope.Daemon.Ping", json!({}))
            .unwrap()
            .get("error")
            .is_none()
    );
    let _ = call(&socket, "io.nexscope.Daemon.Shutdown", json!({}));
    let _ = activator.kill();
    let _ = activator.wait();
}

fn nix_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}
