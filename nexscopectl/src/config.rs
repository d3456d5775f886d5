//! `nexscopectl config import-v1`: takes a project's nexscope v1 settings
//! (`.claude/plugin-data/nexscope/config.json`) into config.toml as
//! `[projects."<root>"]`, only when asked to: the daemon never reads v1's
//! file itself. Values
//! are checked by the daemon's own rules; placeholders are skipped; the token
//! goes to a 0600 file beside config.toml, never inline. The rest of
//! config.toml, comments included, is kept.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nexscope_proto::config;
use serde_json::{Value, json};

use crate::exit::CtlError;
use crate::output::Output;

const V1_CONFIG: &str = ".claude/plugin-data/nexscope/config.json";

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Import the project's v1 config.json into config.toml.
    ImportV1 {
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn usage(message: String) -> CtlError {
    CtlError::Usage(message)
}

/// `import-v1`: v1's settings into `[projects."<root>"]`, its token into
/// a private file.
pub fn command(command: &ConfigCommand, project: &str, out: Output) -> Result<(), CtlError> {
    let ConfigCommand::ImportV1 { dry_run } = command;
    let source = Path::new(project).join(V1_CONFIG);
    let text = std::fs::read_to_string(&source)
        .map_err(|e| usage(format!("{}: {e}", source.display())))?;
    let v1: Value = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{} is not JSON: {e}", source.display())))?;
    let target = nexscope_proto::paths::config_file().map_err(|e| usage(e.to_string()))?;
    let current = std::fs::read_to_string(&target).unwrap_or_default();
    let mut doc: toml_edit::DocumentMut = current
        .parse()
        .map_err(|e| usage(format!("{} is not valid TOML: {e}", target.display())))?;

    let mut table = v1_settings(&v1, &source)?;
    let mut actions = Vec::new();
    let token_file = token_path(&target, project);
    if let Some(token) = v1_field(&v1, "token") {
        let token =
            config::check_token(token).map_err(|a| invalid(&source, "token", "the value", a))?;
        table["token_file"] = toml_edit::value(token_file.display().to_string());
        if std::fs::read_to_string(&token_file).ok().as_deref() != Some(token.expose()) {
            actions.push(format!(
                "write the token to {} (mode 0600)",
                token_file.display()
            ));
            if !dry_run {
                write_private(&token_file, token.expose())?;
            }
        }
    }
    put_project(&mut doc, &target, project, table, *dry_run, &mut actions)?;
    out.result(&json!({ "dryRun": dry_run, "actions": actions }), || {
        if actions.is_empty() {
            "nothing to do: already imported".into()
        } else {
            let prefix = if *dry_run { "would " } else { "" };
            let mut text = actions.iter().map(|a| format!("{prefix}{a}")).collect::<Vec<_>>().join("\n");
            if !dry_run {
                text.push_str("\nthe daemon reads it at its next reload: systemctl --user reload nexscoped, or nexscopectl daemon restart");
            }
            text
        }
    });
    Ok(())
}

/// `[projects."<project>"]` set to `table` in the config file `target`
/// (unless it is already so), then checked as the daemon would load it.
fn put_project(
    doc: &mut toml_edit::DocumentMut,
    target: &Path,
    project: &str,
    table: toml_edit::Table,
    dry_run: bool,
    actions: &mut Vec<String>,
) -> Result<(), CtlError> {
    let projects = doc.entry("projects").or_insert_with(|| {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        toml_edit::Item::Table(t)
    });
    let projects = projects
        .as_table_mut()
        .ok_or_else(|| usage(format!("{}: projects is not a table", target.display())))?;
    let same = projects
        .get(project)
        .and_then(|p| p.as_table())
        .is_some_and(|p| p.to_string() == table.to_string());
    if !same {
        projects.insert(project, toml_edit::Item::Table(table));
        actions.push(format!(
            "set [projects.{project:?}] in {}",
            target.display()
        ));
        if !dry_run {
            if let Some(dir) = target.parent() {
                nexscope_proto::paths::ensure_private_dir(dir).map_err(|e| usage(e.to_string()))?;
            }
            std::fs::write(target, doc.to_string())
                .map_err(|e| usage(format!("{}: {e}", target.display())))?;
            // The daemon checks what we wrote; a refusal is reported, not hidden.
            config::Config::load(target).map_err(|e| usage(e.to_string()))?;
        }
    }
    Ok(())
}

/// v1's settings as a `[projects."<root>"]` table, each value checked by
/// the daemon's own rules; placeholders are left out.
fn v1_settings(v1: &Value, source: &Path) -> Result<toml_edit::Table, CtlError> {
    let mut table = toml_edit::Table::new();
    if let Some(url) = v1_field(v1, "relayUrl") {
        table["relay_url"] = toml_edit::value(
            config::check_relay_url(url).map_err(|a| invalid(source, "relayUrl", url, a))?,
        );
    }
    if let Some(name) = v1_field(v1, "defaultName") {
        table["name"] = toml_edit::value(
            config::check_name(name).map_err(|a| invalid(source, "defaultName", name, a))?,
        );
    }
    if let Some(mode) = v1_field(v1, "mode") {
        table["mode"] = toml_edit::value(
            config::check_mode(mode)
                .map_err(|a| invalid(source, "mode", mode, a))?
                .as_str(),
        );
    }
    if let Some(hop) = v1.get("hopLimit") {
        let n = hop.as_i64().ok_or_else(|| {
            invalid(
                source,
                "hopLimit",
                &hop.to_string(),
                "it must be an integer".into(),
            )
        })?;
        table["hop_limit"] = toml_edit::value(
            config::check_hop_limit(n)
                .map_err(|a| invalid(source, "hopLimit", &n.to_string(), a))? as i64,
        );
    }
    if let Some(Value::Object(peers)) = v1.get("peerIndexMap") {
        let mut inline = toml_edit::InlineTable::new();
        for (name, index) in peers {
            let index = index
                .as_i64()
                .filter(|i| (1..=999).contains(i))
                .ok_or_else(|| {
                    invalid(
                        source,
                        "peerIndexMap",
                        name,
                        "indexes are integers from 1 to 999".into(),
                    )
                })?;
            inline.insert(name, index.into());
        }
        if !inline.is_empty() {
            table["peer_index"] = toml_edit::value(inline);
        }
    }
    Ok(table)
}

/// A v1 string setting, unless it is still the template's placeholder.
fn v1_field<'a>(v1: &'a Value, key: &str) -> Option<&'a str> {
    v1.get(key)
        .and_then(Value::as_str)
        .filter(|v| !v.contains("REPLACE_ME"))
}

fn invalid(source: &Path, key: &str, value: &str, allowed: String) -> CtlError {
    usage(format!(
        "{}: key `{key}`: {value:?} is not allowed; {allowed}",
        source.display()
    ))
}

/// One token file per project, named by a hash of its root.
fn token_path(config_file: &Path, project: &str) -> PathBuf {
    let hash = nexscope_proto::ids::short_hash(project);
    config_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("tokens")
        .join(format!("{hash}.token"))
}

fn write_private(path: &Path, contents: &str) -> Result<(), CtlError> {
    if let Some(dir) = path.parent() {
        nexscope_proto::paths::ensure_private_dir(dir).map_err(|e| usage(e.to_string()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| usage(format!("{}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, contents.as_bytes())
        .map_err(|e| usage(format!("{}: {e}", path.display())))
}
