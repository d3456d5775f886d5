//! What tests need from outside the project, and what happens when it is
//! missing: the test fails with the install hint, unless the person running
//! the tests asked to skip that group in `NEXSCOPE_SKIP` (a comma-separated
//! list of group names; `scripts/test` prints the skipped groups in its last
//! line, and CI never sets it). A test that returns early is only ever a
//! skip somebody asked for.
//!
//! Groups: `python` (the reference varlink client, the websockets and mcp
//! packages), `systemd` (systemd-socket-activate), `tls` (openssl), `docs`
//! (mandoc), `agents` (the pinned claude and codex, tmux), `v1relay` (the
//! Node reference relay), `browser` (Debian's chromium and chromedriver, for
//! the web page), `cluster` (Debian's nats-server, for the relay tier),
//! `root` (tests that switch users or check root-only behaviour).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What installs everything the tests need, for every hint.
const INSTALL: &str = "scripts/test installs what the tests need (as root it also runs apt-get)";

/// Whether `group` is in `NEXSCOPE_SKIP`.
pub fn skipped(group: &str) -> bool {
    std::env::var("NEXSCOPE_SKIP")
        .unwrap_or_default()
        .split(',')
        .any(|g| g.trim() == group)
}

/// True when `present`; otherwise false for a group the person skips (with
/// a line saying so), or a failure that says what is missing and how to
/// get it.
pub fn require(group: &str, present: bool, missing: &str) -> bool {
    if present {
        return true;
    }
    if skipped(group) {
        eprintln!("SKIPPED (NEXSCOPE_SKIP={group}): {missing}");
        return false;
    }
    panic!("{missing}\n{INSTALL}; or set NEXSCOPE_SKIP={group} to skip this group of tests");
}

/// Whether `program` is on PATH.
pub fn have_program(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The workspace's `target` directory.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .join("target")
}

/// The Python the tests run: `$NEXSCOPE_PYTHON`, else the virtualenv that
/// `scripts/test` makes under `target/py`, else `python3` on PATH.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("NEXSCOPE_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = target_dir().join("py/bin/python3");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("python3")
}

/// True when the test Python imports `module`; otherwise as [`require`]
/// says (group `python`).
pub fn python_module(module: &str, package: &str) -> bool {
    let present = Command::new(python())
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        "python",
        present,
        &format!(
            "the Python package `{package}` is not importable by {} (pip install {package})",
            python().display()
        ),
    )
}

/// True when `program` is on PATH; otherwise as [`require`] says, naming
/// the Debian package that has it.
pub fn program(group: &str, program: &str, debian_package: &str) -> bool {
    require(
        group,
        have_program(program),
        &format!("{program} is not installed (Debian package {debian_package})"),
    )
}

/// True when the tests run as root; otherwise as [`require`] says.
pub fn root(why: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    require(
        "root",
        is_root,
        &format!("{why} needs root (CI runs as root)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_prerequisite_fails_with_what_to_do() {
        let failure = std::panic::catch_unwind(|| {
            require("no-such-group", false, "frobnicate is not installed")
        })
        .expect_err("a missing prerequisite fails the test");
        let message = failure
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            message.starts_with("frobnicate is not installed\n"),
            "{message}"
        );
        assert!(message.contains("scripts/test installs"), "{message}");
        assert!(message.contains("NEXSCOPE_SKIP=no-such-group"), "{message}");
        assert!(require("no-such-group", true, "present"));
    }
}
