//! The control socket's listening end: the one systemd handed us
//! (`LISTEN_FDS`, preferring the fd named `varlink`), or our own, bound under
//! umask 077 as 0600 in a 0700 directory. A stale socket file is removed only
//! after a connect to it fails, so a second daemon never steals a live one's
//! socket.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nexscope_proto::paths::{self, PathError};

pub struct Listener {
    /// Still a std listener: it is opened before the runtime starts (taking
    /// the activation fds must happen while the process has one thread) and
    /// registered with the runtime by `control::serve`.
    pub listener: std::os::unix::net::UnixListener,
    /// The path we bound and must remove at exit; None when systemd owns it.
    pub bound: Option<PathBuf>,
    /// For Status and logs.
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(transparent)]
    Dir(#[from] PathError),
    #[error("another nexscoped already answers on {0}; stop it first (nexscopectl daemon stop)")]
    InUse(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the socket passed by the service manager is unusable: {0}")]
    Activation(std::io::Error),
}

impl Listener {
    /// The activated socket if there is one, else `path`.
    pub fn open(path: &Path) -> Result<Listener, ListenError> {
        match activated_fd().map_err(ListenError::Activation)? {
            Some((fd, name)) => {
                let std_listener = std::os::unix::net::UnixListener::from(fd);
                let label = match std_listener
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(Path::to_path_buf))
                {
                    Some(p) => format!("{} (socket activation, fd name {name})", p.display()),
                    None => format!("socket activation, fd name {name}"),
                };
                std_listener
                    .set_nonblocking(true)
                    .map_err(ListenError::Activation)?;
                Ok(Listener {
                    listener: std_listener,
                    bound: None,
                    label,
                })
            }
            None => bind(path),
        }
    }
}

/// The fd systemd passed for us: the one named `varlink`, else the first.
fn activated_fd() -> std::io::Result<Option<(OwnedFd, String)>> {
    if std::env::var_os("LISTEN_FDS").is_none() {
        return Ok(None);
    }
    let fds: Vec<(i32, String)> = sd_notify::listen_fds_with_names()?.collect();
    let chosen = fds
        .iter()
        .find(|(_, name)| name == "varlink")
        .or_else(|| fds.first())
        .cloned();
    // Children we spawn (agents) must not see the activation variables.
    // SAFETY: called before the runtime starts any thread (main is sync until
    // then), which is what remove_var requires.
    unsafe {
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    // SAFETY: systemd passed these fds to this process (listen_fds checked
    // LISTEN_PID); we take ownership of the chosen one exactly once.
    Ok(chosen.map(|(fd, name)| (unsafe { OwnedFd::from_raw_fd(fd) }, name)))
}

fn bind(path: &Path) -> Result<Listener, ListenError> {
    if let Some(dir) = path.parent() {
        paths::ensure_private_dir(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ListenError::InUse(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    let bind_error = |source| ListenError::Bind {
        path: path.to_path_buf(),
        source,
    };
    let std_listener = std::os::unix::net::UnixListener::bind(path).map_err(bind_error)?;
    // The umask (077, set at start) already made it 0600; say so explicitly
    // in case we were started with a different one.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_error)?;
    std_listener.set_nonblocking(true).map_err(bind_error)?;
    Ok(Listener {
        listener: std_listener,
        bound: Some(path.to_path_buf()),
        label: path.display().to_string(),
    })
}
