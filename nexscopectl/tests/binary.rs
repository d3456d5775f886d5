//! The binary itself (and, because this test needs it, cargo builds it
//! before any test runs: the end-to-end tests in `tests/` use it too).

use std::process::Command;

#[test]
fn version_and_help_list_the_commands() {
    let exe = env!("CARGO_BIN_EXE_nexscopectl");
    let version = Command::new(exe).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("nexscopectl {}", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(exe).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for command in [
        "ping",
        "status",
        "daemon",
        "start",
        "say",
        "inbox",
        "watch",
        "hook",
        "install",
        "mcp",
        "completions",
    ] {
        assert!(help.contains(command), "{command}");
    }
    let bad = Command::new(exe).arg("frobnicate").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
