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
    /// Codex: `nexscopectl mcp` as an MCP server in $CODEX_HOME/config.toml
    /// (~/.codex by default), how to use it in $CODEX_HOME/AGENTS.md, and
    /// hooks in $CODEX_HOME/hooks.json (trusted in config.toml) that let a
    /// `codex --no-daemon` session be woken by the room.
    Codex {
        /// The server's name in config.toml.
        #[arg(long, default_value = "nexscope")]
        name: String,
        /// Take it out again.
        #[arg(long)]
        uninstall: bool,
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Claude Code: the nexscope plugin (slash commands, hooks).
    /// With the global `--project [DIR]`: for that project only
    /// (<project>/.claude/settings.json) instead of the user.
    Claude {
        /// Enable it for this user ($CLAUDE_CONFIG_DIR/settings.json, by
        /// default ~/.claude/settings.json; the default).
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

/// An agent CLI's configuration directory: `$variable` when set (as the CLI
/// itself reads it), else `~/<dot_dir>`.
fn cli_config_dir(variable: &str, dot_dir: &str) -> Result<PathBuf, CtlError> {
    match std::env::var_os(variable).filter(|v| !v.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(home()?.join(dot_dir)),
    }
}

/// What the MCP server is given of the environment Codex starts it from.
/// Codex passes only HOME, PATH and PWD to MCP servers unless told more;
/// these are what `nexscopectl` needs to find the same daemon, files and
/// configuration as the user's shell, and to know it runs inside an agent
/// that nexscoped hosts.
const CODEX_ENV_VARS: &[&str] = &[
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_DATA_HOME",
    "NEXSCOPE_SOCKET",
    "NEXSCOPE_CONFIG",
    nexscope_proto::api::agent::HOSTED_ENV,
];

fn io_error(path: &Path, e: std::io::Error) -> CtlError {
    CtlError::Usage(format!("{}: {e}", path.display()))
}

pub fn command(
    command: &InstallCommand,
    project: Option<&PathBuf>,
    out: Output,
) -> Result<(), CtlError> {
    let (user, uninstall, dry_run) = match command {
        InstallCommand::Claude {
            user,
            uninstall,
            dry_run,
        } => (user, uninstall, dry_run),
        InstallCommand::Codex {
            name,
            uninstall,
            dry_run,
        } => return codex(name, *uninstall, *dry_run, out),
    };
    if *user && project.is_some() {
        return Err(CtlError::Usage("--user and --project: choose one".into()));
    }
    let for_project = &project.is_some();
    let marketplace = nexscope_proto::paths::data_dir()
        .map_err(|e| CtlError::Usage(e.to_string()))?
        .join("claude");
    let settings = if *for_project {
        PathBuf::from(crate::chat::project(project)?).join(".claude/settings.json")
    } else {
        cli_config_dir("CLAUDE_CONFIG_DIR", ".claude")?.join("settings.json")
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
    print(out, *dry_run, actions);
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

/// What Codex is told about the tools (v1's AGENTS.md fragment).
const AGENTS_FRAGMENT: &str = "## nexscope chat room (MCP server `{name}`)

- Call `nexscope_poll` once at the start of every turn; it returns new room events and waiting auto tasks.
- Call `nexscope_before_stop` at the end of every turn, and keep answering until it returns `can_stop: true`.
- Use `nexscope_watch` when asked to wait for the room.
- In auto mode, answer each `auto_tasks` item with `nexscope_say` (to = task.from, threadId = task.threadId) before the user's prompt.
- In manual mode, never reply in the room on your own; mentions wait in `nexscope_inbox` for the user.
";

fn print(out: Output, dry_run: bool, actions: Vec<String>) {
    out.result(&json!({ "dryRun": dry_run, "actions": actions }), || {
        if actions.is_empty() {
            "nothing to do: already as asked".into()
        } else {
            let prefix = if dry_run { "would " } else { "" };
            actions
                .iter()
                .map(|a| format!("{prefix}{a}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    });
}

/// `[mcp_servers.<name>]` in ~/.codex/config.toml (the rest of the file and
/// its comments kept, by toml_edit) and the fragment between markers in
/// ~/.codex/AGENTS.md.
fn codex(name: &str, uninstall: bool, dry_run: bool, out: Output) -> Result<(), CtlError> {
    if !nexscope_proto::rules::valid_name(name) {
        return Err(CtlError::Usage(format!(
            "--name {name:?}: use 1 to 32 letters, digits, _ and -"
        )));
    }
    let dir = cli_config_dir("CODEX_HOME", ".codex")?;
    let config = dir.join("config.toml");
    let agents = dir.join("AGENTS.md");
    let mut actions = Vec::new();
    let text = match std::fs::read_to_string(&config) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(&config, e)),
    };
    let mut doc: toml_edit::DocumentMut = text
        .as_deref()
        .unwrap_or("")
        .parse()
        .map_err(|e| CtlError::Usage(format!("{} is not valid TOML: {e}", config.display())))?;
    if uninstall {
        if let Some(servers) = doc
            .get_mut("mcp_servers")
            .and_then(|s| s.as_table_like_mut())
        {
            servers.remove(name);
            if servers.is_empty() {
                doc.remove("mcp_servers");
            }
        }
    } else {
        add_codex_server(&mut doc, name, &config)?;
    }
    codex_hooks(&dir, &mut doc, uninstall, dry_run, &mut actions)?;
    let rendered = doc.to_string();
    match (&text, rendered.trim().is_empty()) {
        (Some(_), true) if uninstall => {
            actions.push(format!("remove {}", config.display()));
            if !dry_run {
                std::fs::remove_file(&config).map_err(|e| io_error(&config, e))?;
            }
        }
        (None, true) => {}
        _ => put(&config, rendered.as_bytes(), dry_run, &mut actions)?,
    }
    agents_fragment(&agents, name, uninstall, dry_run, &mut actions)?;
    print(out, dry_run, actions);
    Ok(())
}

/// The Codex hook events that register a live TUI, and their names in
/// Codex's trust keys.
const CODEX_HOOKS: [(&str, &str); 2] = [
    ("SessionStart", "session_start"),
    ("UserPromptSubmit", "user_prompt_submit"),
];
/// Seconds Codex gives each of them.
const CODEX_HOOK_TIMEOUT: u64 = 5;

/// Our hooks in `$CODEX_HOME/hooks.json` (after the user's own), and in
/// config.toml the trust entries Codex needs before it runs them, computed
/// as Codex 0.169 does (docs/codex-hooks-observed.md, Q1).
fn codex_hooks(
    dir: &Path,
    doc: &mut toml_edit::DocumentMut,
    uninstall: bool,
    dry_run: bool,
    actions: &mut Vec<String>,
) -> Result<(), CtlError> {
    let file = dir.join("hooks.json");
    let command = codex_hook_command()?;
    let original = std::fs::read_to_string(&file).ok();
    let mut hooks: Value = match &original {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| CtlError::Usage(format!("{} is not valid JSON: {e}", file.display())))?,
        None => json!({}),
    };
    if !hooks["hooks"].is_object() {
        hooks["hooks"] = json!({});
    }
    // Codex keys trust by the file's real path.
    let real = std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .join("hooks.json");
    for (event, snake) in CODEX_HOOKS {
        if !hooks["hooks"][event].is_array() {
            hooks["hooks"][event] = json!([]);
        }
        let Some(groups) = hooks["hooks"][event].as_array_mut() else {
            continue;
        };
        let Some(at) = place_codex_hook(groups, &command, uninstall) else {
            continue;
        };
        let key = format!("{}:{snake}:{at}:0", real.display());
        trust_codex_hook(doc, &key, snake, &command, uninstall);
        if groups.is_empty() {
            if let Some(events) = hooks["hooks"].as_object_mut() {
                events.remove(event);
            }
        }
    }
    let empty = hooks["hooks"].as_object().is_some_and(Map::is_empty)
        && hooks.as_object().is_some_and(|h| h.len() == 1);
    if uninstall && empty {
        if original.is_some() {
            actions.push(format!("remove {}", file.display()));
            if !dry_run {
                std::fs::remove_file(&file).map_err(|e| io_error(&file, e))?;
            }
        }
        return Ok(());
    }
    let text = serde_json::to_string_pretty(&hooks).unwrap_or_default() + "\n";
    put(&file, text.as_bytes(), dry_run, actions)
}

/// Our group among an event's groups: found, added after the user's, or
/// removed on uninstall; its index (which Codex's trust key names), or
/// None when there is nothing of ours to remove.
fn place_codex_hook(groups: &mut Vec<Value>, command: &str, uninstall: bool) -> Option<usize> {
    let ours = groups
        .iter()
        .position(|g| g["hooks"][0]["command"] == command);
    match (uninstall, ours) {
        (true, Some(at)) => {
            groups.remove(at);
            Some(at)
        }
        (true, None) => None,
        (false, Some(at)) => Some(at),
        (false, None) => {
            let hook =
                json!({"type": "command", "command": command, "timeout": CODEX_HOOK_TIMEOUT});
            groups.push(json!({"hooks": [hook]}));
            Some(groups.len() - 1)
        }
    }
}

/// The hook command: this nexscopectl, quoted for the shell when it must be.
fn codex_hook_command() -> Result<String, CtlError> {
    let exe = std::env::current_exe()
        .map_err(|e| CtlError::Usage(format!("cannot tell where nexscopectl is: {e}")))?;
    let exe = exe.display().to_string();
    let plain = exe
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b));
    Ok(if plain {
        format!("{exe} hook codex")
    } else {
        format!("'{}' hook codex", exe.replace('\'', "'\\''"))
    })
}

/// `[hooks.state."<key>"] trusted_hash`: SHA-256 of the hook's identity as
/// compact JSON with sorted keys, or the entry removed on uninstall.
fn trust_codex_hook(
    doc: &mut toml_edit::DocumentMut,
    key: &str,
    snake: &str,
    command: &str,
    uninstall: bool,
) {
    let implicit = || {
        let mut table = toml_edit::Table::new();
        table.set_implicit(true);
        toml_edit::Item::Table(table)
    };
    if uninstall {
        if let Some(state) = doc
            .get_mut("hooks")
            .and_then(|h| h.get_mut("state"))
            .and_then(|s| s.as_table_like_mut())
        {
            state.remove(key);
            if state.is_empty() {
                if let Some(hooks) = doc.get_mut("hooks").and_then(|h| h.as_table_like_mut()) {
                    hooks.remove("state");
                }
            }
        }
        if doc
            .get("hooks")
            .and_then(|h| h.as_table_like())
            .is_some_and(|h| h.is_empty())
        {
            doc.remove("hooks");
        }
        return;
    }
    let command = serde_json::to_string(command).unwrap_or_default();
    let identity = format!(
        r#"{{"event_name":"{snake}","hooks":[{{"async":false,"command":{command},"timeout":{CODEX_HOOK_TIMEOUT},"type":"command"}}]}}"#
    );
    let hash = format!(
        "sha256:{}",
        nexscope_proto::ids::sha256_hex(identity.as_bytes())
    );
    let hooks = doc.entry("hooks").or_insert_with(implicit);
    let Some(state) = hooks
        .as_table_like_mut()
        .map(|h| h.entry("state").or_insert(implicit()))
        .and_then(|s| s.as_table_like_mut())
    else {
        return;
    };
    let mut entry = toml_edit::Table::new();
    entry["trusted_hash"] = toml_edit::value(hash);
    state.insert(key, toml_edit::Item::Table(entry));
}

/// `[mcp_servers.<name>]` running this nexscopectl's `mcp`, unless it is
/// there already as it would be written.
fn add_codex_server(
    doc: &mut toml_edit::DocumentMut,
    name: &str,
    config: &Path,
) -> Result<(), CtlError> {
    let exe = std::env::current_exe()
        .map_err(|e| CtlError::Usage(format!("cannot tell where nexscopectl is: {e}")))?;
    let servers = doc.entry("mcp_servers").or_insert_with(|| {
        let mut table = toml_edit::Table::new();
        table.set_implicit(true);
        toml_edit::Item::Table(table)
    });
    let Some(servers) = servers.as_table_mut() else {
        return Err(CtlError::Usage(format!(
            "{}: mcp_servers is not a table",
            config.display()
        )));
    };
    let mut server = toml_edit::Table::new();
    server["command"] = toml_edit::value(exe.display().to_string());
    let mut args = toml_edit::Array::new();
    args.push("mcp");
    server["args"] = toml_edit::value(args);
    server["env_vars"] =
        toml_edit::value(CODEX_ENV_VARS.iter().copied().collect::<toml_edit::Array>());
    let unchanged = servers
        .get(name)
        .and_then(|s| s.as_table())
        .is_some_and(|s| s.to_string() == server.to_string());
    if !unchanged {
        servers.insert(name, toml_edit::Item::Table(server));
    }
    Ok(())
}

fn agents_fragment(
    path: &Path,
    name: &str,
    uninstall: bool,
    dry_run: bool,
    actions: &mut Vec<String>,
) -> Result<(), CtlError> {
    let start = format!("<!-- nexscope-codex:{name}:start -->");
    let end = format!("<!-- nexscope-codex:{name}:end -->");
    let current = std::fs::read_to_string(path).ok();
    let text = current.clone().unwrap_or_default();
    // Without ours: the text before our block and after it, as it was.
    let without = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if b > a => {
            let before = text[..a].strip_suffix('\n').unwrap_or(&text[..a]);
            let after = text[b + end.len()..]
                .strip_prefix('\n')
                .unwrap_or(&text[b + end.len()..]);
            format!("{before}{after}")
        }
        _ => text.clone(),
    };
    let wanted = if uninstall {
        without
    } else {
        let block = format!(
            "{start}\n{}{end}\n",
            AGENTS_FRAGMENT.replace("{name}", name)
        );
        if without.is_empty() {
            block
        } else {
            format!("{without}\n{block}")
        }
    };
    if current.is_some() && wanted.is_empty() {
        actions.push(format!("remove {}", path.display()));
        if !dry_run {
            std::fs::remove_file(path).map_err(|e| io_error(path, e))?;
        }
        return Ok(());
    }
    if current.is_none() && wanted.is_empty() {
        return Ok(());
    }
    put(path, wanted.as_bytes(), dry_run, actions)
}
