//! `nexscopectl install claude`: wires Claude Code up to nexscope. The
//! plugin (slash commands and hooks, all calling nexscopectl) is carried in
//! this binary and written to `$XDG_DATA_HOME/nexscope/claude/` as a local
//! marketplace; Claude Code's settings (the user's, or the project's with
//! `--project`) get that marketplace and the plugin enabled.
//!
//! Idempotent: a second run changes nothing. `--uninstall` takes back exactly
//! what it added, and restores the settings file byte for byte when nothing
//! else changed in it since. `--dry-run` says what it would do.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::exit::CtlError;
use crate::output::Output;

const MARKETPLACE: &str = "nexscope";
const PLUGIN_ID: &str = "nexscope@nexscope";
/// The settings file as it was before our first change.
const BACKUP_SUFFIX: &str = ".before-nexscope";

/// The plugin's files, relative to the plugin directory.
const PLUGIN_FILES: &[(&str, &str)] = &[
    (
        ".claude-plugin/plugin.json",
        include_str!("../../claude-plugin/.claude-plugin/plugin.json"),
    ),
    (
        "hooks/hooks.json",
        include_str!("../../claude-plugin/hooks/hooks.json"),
    ),
    (
        "commands/start.md",
        include_str!("../../claude-plugin/commands/start.md"),
    ),
    (
        "commands/stop.md",
        include_str!("../../claude-plugin/commands/stop.md"),
    ),
    (
        "commands/say.md",
        include_str!("../../claude-plugin/commands/say.md"),
    ),
    (
        "commands/who.md",
        include_str!("../../claude-plugin/commands/who.md"),
    ),
    (
        "commands/inbox.md",
        include_str!("../../claude-plugin/commands/inbox.md"),
    ),
    (
        "commands/accept.md",
        include_str!("../../claude-plugin/commands/accept.md"),
    ),
    (
        "commands/reject.md",
        include_str!("../../claude-plugin/commands/reject.md"),
    ),
    (
        "commands/append.md",
        include_str!("../../claude-plugin/commands/append.md"),
    ),
    (
        "commands/mode.md",
        include_str!("../../claude-plugin/commands/mode.md"),
    ),
    (
        "commands/history.md",
        include_str!("../../claude-plugin/commands/history.md"),
    ),
    (
        "commands/update.md",
        include_str!("../../claude-plugin/commands/update.md"),
    ),
];

#[derive(clap::Subcommand, Debug)]
pub enum InstallCommand {
    /// Claude Code: the nexscope plugin (slash commands, hooks).
    /// With the global `--project [DIR]`: for that project only
    /// (<project>/.claude/settings.json) instead of the user.
    Claude {
        /// Enable it for this user (~/.claude/settings.json; the default).
        #[arg(long)]
        user: bool,
        /// Take it out again.
        #[arg(long)]
        uninstall: bool,
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn home() -> Result<PathBuf, CtlError> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| CtlError::Usage("$HOME is not set".into()))
}

fn io_error(path: &Path, e: std::io::Error) -> CtlError {
    CtlError::Usage(format!("{}: {e}", path.display()))
}

pub fn command(
    command: &InstallCommand,
    project: Option<&PathBuf>,
    out: Output,
) -> Result<(), CtlError> {
    let InstallCommand::Claude {
        user,
        uninstall,
        dry_run,
    } = command;
    if *user && project.is_some() {
        return Err(CtlError::Usage("--user and --project: choose one".into()));
    }
    let for_project = &project.is_some();
    let marketplace = nexscope::paths::data_dir()
        .map_err(|e| CtlError::Usage(e.to_string()))?
        .join("claude");
    let settings = if *for_project {
        PathBuf::from(crate::chat::project(project)?).join(".claude/settings.json")
    } else {
        home()?.join(".claude/settings.json")
    };
    let mut actions: Vec<String> = Vec::new();
    if *uninstall {
        unwire(&settings, *dry_run, &mut actions)?;
        if !*for_project && marketplace.exists() {
            actions.push(format!("remove {}", marketplace.display()));
            if !*dry_run {
                std::fs::remove_dir_all(&marketplace).map_err(|e| io_error(&marketplace, e))?;
            }
        }
    } else {
        write_plugin(&marketplace, *dry_run, &mut actions)?;
        wire(&settings, &marketplace, *dry_run, &mut actions)?;
    }
    out.result(&json!({ "dryRun": dry_run, "actions": actions }), || {
        if actions.is_empty() {
            "nothing to do: already as asked".into()
        } else {
            let prefix = if *dry_run { "would " } else { "" };
            actions
                .iter()
                .map(|a| format!("{prefix}{a}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    });
    Ok(())
}

/// Writes a file only when its contents differ; records the action.
fn put(
    path: &Path,
    contents: &[u8],
    dry_run: bool,
    actions: &mut Vec<String>,
) -> Result<(), CtlError> {
    if std::fs::read(path).is_ok_and(|current| current == contents) {
        return Ok(());
    }
    actions.push(format!("write {}", path.display()));
    if dry_run {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    std::fs::write(path, contents).map_err(|e| io_error(path, e))
}

fn write_plugin(
    marketplace: &Path,
    dry_run: bool,
    actions: &mut Vec<String>,
) -> Result<(), CtlError> {
    let manifest = json!({
        "name": MARKETPLACE,
        "owner": { "name": "nexscope" },
        "plugins": [{ "name": "nexscope", "source": "./nexscope", "description": "Chat rooms for AI coding agents and their humans" }],
    });
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    put(
        &marketplace.join(".claude-plugin/marketplace.json"),
        text.as_bytes(),
        dry_run,
        actions,
    )?;
    for (path, contents) in PLUGIN_FILES {
        put(
            &marketplace.join("nexscope").join(path),
            contents.as_bytes(),
            dry_run,
            actions,
        )?;
    }
    Ok(())
}

fn read_settings(path: &Path) -> Result<Option<Map<String, Value>>, CtlError> {
    match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            _ => Err(CtlError::Usage(format!(
                "{} is not a JSON object; fix or move it, then run again",
                path.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

fn render(map: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(map).unwrap_or_default() + "\n"
}

fn backup_path(settings: &Path) -> PathBuf {
    let mut name = settings.as_os_str().to_owned();
    name.push(BACKUP_SUFFIX);
    PathBuf::from(name)
}

fn wire(
    settings: &Path,
    marketplace: &Path,
    dry_run: bool,
    actions: &mut Vec<String>,
) -> Result<(), CtlError> {
    let original = read_settings(settings)?;
    let mut map = original.clone().unwrap_or_default();
    let source = json!({ "source": { "source": "directory", "path": marketplace } });
    let markets = map
        .entry("extraKnownMarketplaces")
        .or_insert_with(|| json!({}));
    let plugins_missing;
    if let Value::Object(markets) = markets {
        markets.insert(MARKETPLACE.into(), source);
    }
    {
        let enabled = map.entry("enabledPlugins").or_insert_with(|| json!({}));
        plugins_missing = !enabled.is_object();
        if let Value::Object(enabled) = enabled {
            enabled.insert(PLUGIN_ID.into(), Value::Bool(true));
        }
    }
    if plugins_missing {
        return Err(CtlError::Usage(format!(
            "{}: enabledPlugins is not an object",
            settings.display()
        )));
    }
    if original.as_ref() == Some(&map) {
        return Ok(());
    }
    // Keep the file as it was, once, so that uninstall can give it back.
    let backup = backup_path(settings);
    if original.is_some() && !backup.exists() {
        actions.push(format!(
            "keep a copy of {} as {}",
            settings.display(),
            backup.display()
        ));
        if !dry_run {
            std::fs::copy(settings, &backup).map_err(|e| io_error(&backup, e))?;
        }
    }
    put(settings, render(&map).as_bytes(), dry_run, actions)
}

fn unwire(settings: &Path, dry_run: bool, actions: &mut Vec<String>) -> Result<(), CtlError> {
    let Some(mut map) = read_settings(settings)? else {
        return Ok(());
    };
    let before = map.clone();
    for (key, entry) in [
        ("extraKnownMarketplaces", MARKETPLACE),
        ("enabledPlugins", PLUGIN_ID),
    ] {
        let now_empty = match map.get_mut(key) {
            Some(Value::Object(inner)) => {
                inner.remove(entry);
                inner.is_empty()
            }
            _ => false,
        };
        if now_empty {
            map.remove(key);
        }
    }
    if map == before {
        return Ok(());
    }
    let backup = backup_path(settings);
    let restored = read_settings(&backup).ok().flatten();
    match restored {
        // Nothing else changed since we came: the original bytes go back.
        Some(original) if original == map => {
            actions.push(format!(
                "restore {} from {}",
                settings.display(),
                backup.display()
            ));
            if !dry_run {
                std::fs::rename(&backup, settings).map_err(|e| io_error(settings, e))?;
            }
        }
        _ if map.is_empty() && !backup.exists() => {
            actions.push(format!("remove {}", settings.display()));
            if !dry_run {
                std::fs::remove_file(settings).map_err(|e| io_error(settings, e))?;
            }
        }
        _ => put(settings, render(&map).as_bytes(), dry_run, actions)?,
    }
    Ok(())
}
