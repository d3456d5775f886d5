//! The binary itself (and, because this test needs it, cargo builds it
//! before any test runs: the end-to-end tests in `tests/` use it too).

use std::process::Command;

#[test]
fn version_and_help_describe_the_daemon_and_the_relay() {
    let exe = env!("CARGO_BIN_EXE_nexscoped");
    let version = Command::new(exe).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("nexscoped {}", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(exe)
        .args(["relay", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--token-file",
        "--users-file",
        "--tls-cert",
        "--max-users",
        "--max-payload",
        "--max-file",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
}
