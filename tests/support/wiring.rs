//! The agent CLIs wired up as a person wires them: `nexscopectl install
//! claude|codex` in the user's own HOME, `nexscopectl` on PATH for the hooks
//! and the MCP server, and the CLI started from the user's shell against a
//! [`MockModel`]. Also the first-run state an interactive `claude` needs so
//! that it goes straight to its prompt.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent_clis::{API_KEY, claude_env, codex_env};
use crate::mock_model::MockModel;
use crate::rooms::Member;
use crate::{Env, bin};

/// The user's PATH: the built `nexscopectl` first, as after an install.
pub fn user_path() -> OsString {
    let dir = bin("nexscopectl")
        .parent()
        .expect("the binary is in a directory")
        .to_path_buf();
    let mut dirs = vec![dir];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("a PATH")
}

/// The user's HOME in `env`.
pub fn home(env: &Env) -> PathBuf {
    env.root.path().join("home")
}

/// What the daemon needs to host `claude` for this user: the CLI's mock
/// environment and a PATH on which the user's plugin finds `nexscopectl`.
pub fn daemon_claude_env(env: &Env, mock: &MockModel) -> Vec<(String, String)> {
    let mut vars = claude_env(mock, &home(env));
    vars.push(("PATH".into(), user_path().to_string_lossy().into_owned()));
    vars
}

/// `program` run from the user's shell in `cwd`: the user's XDG world
/// (`XDG_RUNTIME_DIR` included), PATH with `nexscopectl`, and `vars`.
pub fn user_command(env: &Env, program: &Path, cwd: &Path, vars: &[(String, String)]) -> Command {
    let mut command = env.command(program);
    command
        .env("PATH", user_path())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd);
    command
}

/// `claude` as the user runs it, against `mock`.
pub fn claude_command(env: &Env, mock: &MockModel, claude: &Path, cwd: &Path) -> Command {
    user_command(env, claude, cwd, &claude_env(mock, &home(env)))
}

/// `codex` as the user runs it, against `mock`; writes the provider config
/// into `$CODEX_HOME/config.toml` first (before `install codex` adds to it).
pub fn codex_command(env: &Env, mock: &MockModel, codex: &Path, cwd: &Path) -> Command {
    user_command(env, codex, cwd, &codex_vars(env, mock))
}

/// The Codex environment of the user in `env` (CODEX_HOME), config written.
pub fn codex_vars(env: &Env, mock: &MockModel) -> Vec<(String, String)> {
    let codex_home = home(env).join(".codex");
    if codex_home.join("config.toml").is_file() {
        return vec![("CODEX_HOME".into(), codex_home.display().to_string())];
    }
    codex_env(mock, &home(env))
}

/// Pre-answers the dialogs an interactive `claude` shows on a first run
/// (onboarding, trusting `project`, using the API key from the
/// environment), in `$CLAUDE_CONFIG_DIR/.claude.json` as the CLI keeps them.
pub fn trust_interactive_claude(env: &Env, project: &Path) {
    let config_dir = home(env).join(".claude");
    std::fs::create_dir_all(&config_dir).expect("create CLAUDE_CONFIG_DIR");
    let file = config_dir.join(".claude.json");
    let mut state: Value = std::fs::read(&file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| json!({}));
    // The CLI remembers an approved key by its last 20 characters.
    let key_tail: String = {
        let chars: Vec<char> = API_KEY.chars().collect();
        chars[chars.len().saturating_sub(20)..].iter().collect()
    };
    state["hasCompletedOnboarding"] = json!(true);
    state["lastOnboardingVersion"] = json!(crate::agent_clis::CLAUDE_VERSION);
    state["bypassPermissionsModeAccepted"] = json!(true);
    state["customApiKeyResponses"] = json!({"approved": [key_tail], "rejected": []});
    state["projects"][project.display().to_string()] = json!({
        "hasTrustDialogAccepted": true,
        "hasCompletedProjectOnboarding": true,
        "projectOnboardingSeenCount": 1,
        "allowedTools": [],
    });
    std::fs::write(&file, serde_json::to_vec_pretty(&state).expect("JSON"))
        .expect("write .claude.json");
}

/// A tmux session of its own (its own server socket), killed when dropped.
pub struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    /// Starts `script` in a 200x50 pane; fails with the install hint when
    /// tmux is missing.
    pub fn start(dir: &std::path::Path, script: &std::path::Path) -> Option<Tmux> {
        if !crate::prereq::program("agents", "tmux", "tmux") {
            return None;
        }
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let status = tmux
            .command()
            .args(["new-session", "-d", "-x", "200", "-y", "50"])
            .arg(script)
            .status()
            .unwrap_or_else(|e| panic!("cannot run tmux ({e}); install it: apt-get install tmux"));
        assert!(status.success(), "tmux new-session failed");
        Some(tmux)
    }

    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new("tmux");
        command.arg("-S").arg(&self.socket);
        command
    }

    pub fn send(&self, keys: &[&str]) {
        let status = self.command().arg("send-keys").args(keys).status().unwrap();
        assert!(status.success(), "tmux send-keys failed");
    }

    pub fn screen(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Already gone when the program in it exited: nothing to say.
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The status Claude Code keeps for its running session
/// (`$CLAUDE_CONFIG_DIR/sessions/<pid>.json`): "idle" at its prompt.
pub fn session_status(config_dir: &std::path::Path) -> Option<String> {
    let entries = std::fs::read_dir(config_dir.join("sessions")).ok()?;
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .find_map(|v| v["status"].as_str().map(str::to_owned))
}

/// An interactive `claude` for `member` in a tmux pane, as the person
/// starts it from their shell (plus `args`), once at its prompt: the pane
/// and Claude Code's config directory.
pub fn interactive_claude(
    member: &Member,
    mock: &MockModel,
    claude: &std::path::Path,
    args: &str,
) -> Option<(Tmux, std::path::PathBuf)> {
    member.env.ctl_ok(&["install", "claude"]);
    trust_interactive_claude(&member.env, &member.project);
    // The person's shell: the same environment a terminal would give claude.
    let command = claude_command(&member.env, mock, claude, &member.project);
    let script_path = pane_script(member, &command, claude, args);
    let tmux = Tmux::start(member.env.root.path(), &script_path)?;
    let config_dir = home(&member.env).join(".claude");
    wait_screen(&tmux, "claude reaching its prompt", &|| {
        config_dir
            .join("sessions")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
            && tmux.screen().contains("Claude Code v")
    });
    // The banner is drawn before the input box takes keys.
    std::thread::sleep(Duration::from_secs(1));
    Some((tmux, config_dir))
}

/// A shell script that runs `program` with `args` as `command` would (its
/// environment, in the member's project), for a tmux pane; at most 120 s.
fn pane_script(member: &Member, command: &Command, program: &Path, args: &str) -> PathBuf {
    let mut script = String::from("#!/bin/sh\n");
    for (name, value) in command.get_envs() {
        if let Some(value) = value {
            script.push_str(&format!(
                "export {}='{}'\n",
                name.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    script.push_str(&format!(
        "export TERM=xterm-256color\ncd '{}'\nexec timeout --foreground 120 '{}' {args}\n",
        member.project.display(),
        program.display()
    ));
    let name = program.file_name().unwrap_or_default().to_string_lossy();
    let script_path = member.env.root.path().join(format!("{name}.sh"));
    std::fs::write(&script_path, script).unwrap();
    std::fs::set_permissions(
        &script_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    script_path
}

/// An interactive Codex TUI for `member` (`--no-daemon`, so that it runs
/// its hooks itself), wired with `nexscopectl install codex`, first-run
/// notices answered, and a first prompt typed by the person (Codex starts
/// the thread, and runs its hooks, only then): the pane.
pub fn interactive_codex(member: &Member, mock: &MockModel, codex: &Path) -> Option<Tmux> {
    let vars = codex_vars(&member.env, mock);
    let config = home(&member.env).join(".codex/config.toml");
    let mut text = std::fs::read_to_string(&config).expect("codex config");
    text.push_str(&format!(
        "\n[tui]\nscreen_reader_detection_done = true\n\n[notice.model_migrations]\n\"gpt-5.5\" = \"gpt-6-sol\"\n\n[projects.\"{}\"]\ntrust_level = \"trusted\"\n",
        member.project.display()
    ));
    std::fs::write(&config, text).unwrap();
    let output = member
        .env
        .command(crate::bin("nexscopectl"))
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .args(["install", "codex"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let command = codex_command(&member.env, mock, codex, &member.project);
    // As the README says: `codex --no-daemon`, in the project.
    let args = "--no-daemon";
    let script_path = pane_script(member, &command, codex, args);
    let tmux = Tmux::start(member.env.root.path(), &script_path)?;
    wait_screen(&tmux, "codex at its prompt", &|| {
        tmux.screen().contains("›")
    });
    std::thread::sleep(Duration::from_secs(1));
    Some(tmux)
}

/// Types `text` into a TUI's prompt and submits it (one send-keys with the
/// Enter reads as a paste in Codex).
pub fn type_prompt(tmux: &Tmux, text: &str) {
    tmux.send(&["-l", text]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.send(&["C-m"]);
}

/// How long an interactive turn may take to show.
pub const SCREEN_WAIT: Duration = Duration::from_secs(60);

/// Waits up to SCREEN_WAIT for `ready`, failing with the screen.
pub fn wait_screen(tmux: &Tmux, what: &str, ready: &dyn Fn() -> bool) {
    let deadline = Instant::now() + SCREEN_WAIT;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen; the screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
