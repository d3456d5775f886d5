//! The agent CLIs wired up as a person wires them: `nexscopectl install
//! claude|codex` in the user's own HOME, `nexscopectl` on PATH for the hooks
//! and the MCP server, and the CLI started from the user's shell against a
//! [`MockModel`]. Also the first-run state an interactive `claude` needs so
//! that it goes straight to its prompt.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::agent_clis::{API_KEY, claude_env, codex_env};
use crate::mock_model::MockModel;
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
