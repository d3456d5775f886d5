//! `nexscopectl install claude` on a temporary HOME: the plugin's files and
//! the settings entries appear, a second run changes nothing, `--uninstall`
//! gives the original settings back byte for byte, `--dry-run` changes
//! nothing; and every slash command calls a nexscopectl command that exists.

use std::collections::BTreeMap;
use std::path::Path;

use nexscope_tests::{Env, bin};
use serde_json::{Value, json};

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

#[test]
fn install_claude_is_idempotent_and_uninstall_restores_the_original_settings() {
    let env = Env::new("install");
    let home = env.root.path().join("home");
    let settings = home.join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let original =
        b"{\n  \"model\": \"opus\",\n    \"permissions\": {\"allow\": [\"Bash(ls:*)\"]}\n}\n";
    std::fs::write(&settings, original).unwrap();
    let before = snapshot(env.root.path());

    let dry = env.ctl_ok(&["install", "claude", "--dry-run"]);
    assert!(dry.contains("would write"), "{dry}");
    assert_eq!(
        snapshot(env.root.path()),
        before,
        "--dry-run changes nothing"
    );

    env.ctl_ok(&["install", "claude"]);
    let after_first = snapshot(env.root.path());
    let wired: Value = serde_json::from_slice(&std::fs::read(&settings).unwrap()).unwrap();
    assert_eq!(wired["model"], "opus", "the rest of the file is kept");
    assert_eq!(wired["enabledPlugins"]["nexscope@nexscope"], true);
    let marketplace = wired["extraKnownMarketplaces"]["nexscope"]["source"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        wired["extraKnownMarketplaces"]["nexscope"]["source"]["source"],
        "directory"
    );
    let root = Path::new(&marketplace);
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(root.join(".claude-plugin/marketplace.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["plugins"][0]["source"], "./nexscope");
    assert!(root.join("nexscope/.claude-plugin/plugin.json").is_file());
    assert!(root.join("nexscope/hooks/hooks.json").is_file());
    assert_eq!(
        std::fs::read_dir(root.join("nexscope/commands"))
            .unwrap()
            .count(),
        11
    );

    let second = env.ctl_ok(&["install", "claude"]);
    assert_eq!(second.trim(), "nothing to do: already as asked");
    assert_eq!(
        snapshot(env.root.path()),
        after_first,
        "a second run gives the same files"
    );

    env.ctl_ok(&["install", "claude", "--uninstall"]);
    assert_eq!(std::fs::read(&settings).unwrap(), original, "byte for byte");
    assert_eq!(snapshot(env.root.path()), before);
}

#[test]
fn install_claude_for_a_project_and_without_prior_settings() {
    let env = Env::new("install-project");
    let project = env.root.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    let before = snapshot(env.root.path());
    env.ctl_ok(&["install", "claude", "--project", project.to_str().unwrap()]);
    let settings: Value =
        serde_json::from_slice(&std::fs::read(project.join(".claude/settings.json")).unwrap())
            .unwrap();
    assert_eq!(
        settings["enabledPlugins"],
        json!({"nexscope@nexscope": true})
    );
    env.ctl_ok(&[
        "--project",
        project.to_str().unwrap(),
        "install",
        "claude",
        "--uninstall",
    ]);
    assert!(
        !project.join(".claude/settings.json").exists(),
        "a file we created is removed"
    );
    // The shared plugin files stay for other projects; everything else is back.
    let after = snapshot(env.root.path());
    for (path, contents) in &before {
        assert_eq!(after.get(path), Some(contents));
    }
}

/// `nexscopectl args` with `variable=dir` added, as a user who keeps the
/// agent CLI's configuration elsewhere runs it.
fn ctl_with(env: &Env, variable: &str, dir: &Path, args: &[&str]) {
    let output = env
        .command(bin("nexscopectl"))
        .env(variable, dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "nexscopectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn installers_honour_claude_config_dir_and_codex_home() {
    let env = Env::new("install-dirs");
    let home = env.root.path().join("home");
    let claude_dir = env.root.path().join("elsewhere/claude");
    let codex_dir = env.root.path().join("elsewhere/codex");
    ctl_with(
        &env,
        "CLAUDE_CONFIG_DIR",
        &claude_dir,
        &["install", "claude"],
    );
    let settings: Value =
        serde_json::from_slice(&std::fs::read(claude_dir.join("settings.json")).unwrap()).unwrap();
    assert_eq!(
        settings["enabledPlugins"],
        json!({"nexscope@nexscope": true})
    );
    ctl_with(&env, "CODEX_HOME", &codex_dir, &["install", "codex"]);
    let config = std::fs::read_to_string(codex_dir.join("config.toml")).unwrap();
    assert!(config.contains("[mcp_servers.nexscope]"), "{config}");
    assert!(codex_dir.join("AGENTS.md").is_file());
    assert!(
        !home.join(".claude").exists() && !home.join(".codex").exists(),
        "nothing written to the default directories"
    );
    ctl_with(
        &env,
        "CLAUDE_CONFIG_DIR",
        &claude_dir,
        &["install", "claude", "--uninstall"],
    );
    ctl_with(
        &env,
        "CODEX_HOME",
        &codex_dir,
        &["install", "codex", "--uninstall"],
    );
    assert!(!claude_dir.join("settings.json").exists());
    assert!(!codex_dir.join("config.toml").exists());
}

#[test]
fn every_slash_command_calls_a_command_that_exists() {
    let commands = Path::new(env!("CARGO_MANIFEST_DIR")).join("../claude-plugin/commands");
    let mut count = 0;
    for entry in std::fs::read_dir(&commands).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("---\n"), "{}: frontmatter", path.display());
        let line = text
            .lines()
            .find(|l| l.starts_with("!`"))
            .unwrap_or_else(|| panic!("{}: no command", path.display()));
        let command = line.trim_start_matches("!`").trim_end_matches('`');
        let words: Vec<&str> = command
            .split_whitespace()
            .take_while(|w| !w.starts_with('$'))
            .collect();
        assert_eq!(words[0], "nexscopectl", "{}", path.display());
        // Each option the file passes must be accepted: run it with --help.
        let subcommand: Vec<&str> = words[1..]
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--") && *w != "userAgent")
            .collect();
        let output = std::process::Command::new(bin("nexscopectl"))
            .args(&subcommand)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: nexscopectl {subcommand:?} --help failed",
            path.display()
        );
        for option in words[1..].iter().filter(|w| w.starts_with("--")) {
            assert!(
                String::from_utf8_lossy(&output.stdout).contains(option),
                "{}: {option} is not an option",
                path.display()
            );
        }
        count += 1;
    }
    assert_eq!(count, 11, "the 11 slash commands of v1");
}

#[test]
fn hooks_json_runs_the_four_hooks() {
    let hooks: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../claude-plugin/hooks/hooks.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        hooks["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"],
        "nexscopectl hook user-prompt-submit"
    );
    assert_eq!(
        hooks["hooks"]["Stop"][0]["hooks"][0]["command"],
        "nexscopectl hook stop"
    );
    assert_eq!(
        hooks["hooks"]["Stop"][0]["hooks"][1]["command"],
        "nexscopectl hook watch"
    );
    assert_eq!(hooks["hooks"]["Stop"][0]["hooks"][1]["asyncRewake"], true);
    assert_eq!(
        hooks["hooks"]["SessionStart"][0]["hooks"][0]["command"],
        "nexscopectl hook session-start"
    );
}
