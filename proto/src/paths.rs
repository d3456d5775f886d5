//! Where nexscope keeps things, resolved once for daemon and client alike:
//! systemd's `$RUNTIME_DIRECTORY`/`$STATE_DIRECTORY` when it set them, else the
//! XDG base directories, else the conventional fallbacks under `$HOME`.
//!
//! Also the one place that creates private directories: 0700, owned by us,
//! refused when someone else owns them.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const SOCKET_NAME: &str = "nexscoped.sock";
pub const CONFIG_NAME: &str = "config.toml";
pub const LOG_NAME: &str = "nexscoped.log";

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("neither ${0} nor $HOME is set: cannot tell where nexscope keeps its files")]
    NoHome(&'static str),
    #[error("cannot create directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} belongs to uid {owner}, not to you (uid {uid}); refusing to use it")]
    Foreign { path: PathBuf, owner: u32, uid: u32 },
    #[error("{path} exists and is not a directory")]
    NotDirectory { path: PathBuf },
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// systemd may list several directories separated by colons; ours is the first.
fn systemd_dir(name: &str) -> Option<PathBuf> {
    let value = std::env::var(name).ok()?;
    let first = value.split(':').next()?;
    Some(PathBuf::from(first)).filter(|p| p.is_absolute())
}

fn home_relative(xdg: &'static str, fallback: &str) -> Result<PathBuf, PathError> {
    if let Some(dir) = env_path(xdg) {
        return Ok(dir.join("nexscope"));
    }
    let home = env_path("HOME").ok_or(PathError::NoHome(xdg))?;
    Ok(home.join(fallback).join("nexscope"))
}

pub fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Whether `pid` is a live process of ours (one of another user, or none,
/// is not): the liveness of an agent session, whichever side asks.
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid > 1 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// The directory of the control socket.
pub fn runtime_dir() -> PathBuf {
    if let Some(dir) = systemd_dir("RUNTIME_DIRECTORY") {
        return dir;
    }
    if let Some(dir) = env_path("XDG_RUNTIME_DIR").or_else(login_runtime_dir) {
        return dir.join("nexscope");
    }
    // No login session (cron, ssh without pam_systemd): a per-uid directory
    // that `ensure_private_dir` refuses if another user made it.
    std::env::temp_dir().join(format!("nexscope-{}", uid()))
}

/// `/run/user/$UID` when it is ours: what `$XDG_RUNTIME_DIR` would say in the
/// user's login session, found the way systemd's own tools find it, for
/// callers started with a bare environment (Codex gives its MCP servers only
/// HOME, PATH and PWD).
fn login_runtime_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(format!("/run/user/{}", uid()));
    let meta = std::fs::metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid() && meta.mode() & 0o077 == 0).then_some(dir)
}

/// The control socket: `$NEXSCOPE_SOCKET`, else in the runtime directory.
pub fn socket_path() -> PathBuf {
    env_path("NEXSCOPE_SOCKET").unwrap_or_else(|| runtime_dir().join(SOCKET_NAME))
}

pub fn state_dir() -> Result<PathBuf, PathError> {
    match systemd_dir("STATE_DIRECTORY") {
        Some(dir) => Ok(dir),
        None => home_relative("XDG_STATE_HOME", ".local/state"),
    }
}

pub fn config_dir() -> Result<PathBuf, PathError> {
    home_relative("XDG_CONFIG_HOME", ".config")
}

pub fn data_dir() -> Result<PathBuf, PathError> {
    home_relative("XDG_DATA_HOME", ".local/share")
}

/// The configuration file: `$NEXSCOPE_CONFIG`, else `config.toml` in the
/// config directory.
pub fn config_file() -> Result<PathBuf, PathError> {
    match env_path("NEXSCOPE_CONFIG") {
        Some(file) => Ok(file),
        None => Ok(config_dir()?.join(CONFIG_NAME)),
    }
}

/// Creates `path` (and parents) as 0700, or checks an existing one: it must be
/// a directory we own, and is narrowed to 0700 if it was wider.
pub fn ensure_private_dir(path: &Path) -> Result<(), PathError> {
    let create = |source| PathError::Create {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(PathError::NotDirectory {
                    path: path.to_path_buf(),
                });
            }
            if meta.uid() != uid() {
                return Err(PathError::Foreign {
                    path: path.to_path_buf(),
                    owner: meta.uid(),
                    uid: uid(),
                });
            }
            if meta.mode() & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                    .map_err(create)?;
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(create),
        Err(error) => Err(create(error)),
    }
}
