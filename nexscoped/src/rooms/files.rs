//! Files in and out of a room. Incoming files are written as `.part` in the
//! project's files directory under a name we make (never a path from the
//! network), checked against the declared size and sha256, then renamed.
//! Outgoing files are checked, hashed and described before a byte is sent.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use nexscope_proto::api::chat::{ChatError, ReceivedFile};

/// Bytes per binary frame (v1 recommends 64 KiB).
pub const CHUNK: usize = 64 * 1024;

/// `[a-zA-Z0-9._-]` kept, anything else `_`, at most `max` characters, and
/// never empty, `.` or `..` (docs/protocol.md §1.7).
pub fn safe_name(name: &str, max: usize) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "file".into()
    } else {
        cleaned
    }
}

fn guess_mime(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "ts" => "text/x-typescript",
        "rs" => "text/x-rust",
        "py" => "text/x-python",
        "toml" => "application/toml",
        "yaml" | "yml" => "application/yaml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}

/// Trees where the kernel, not a disk, answers reads. A file there passes
/// for a regular one (`/proc/self/environ` is), and sending it would hand
/// the room this daemon's environment, memory maps or a device's output.
const KERNEL_TREES: &[&str] = &["/proc", "/sys", "/dev"];

fn not_on_disk(path: &str) -> ChatError {
    ChatError::bad_args(format!(
        "{path} is not a file on disk but a kernel interface (such as /proc, /sys or /dev); \
         only regular files on a normal filesystem can be sent"
    ))
}

/// A regular file on a normal filesystem, opened: where it really is (links
/// followed, then judged by where they lead) and the size it declares.
struct Regular {
    file: std::fs::File,
    canonical: PathBuf,
    declared: u64,
}

/// Opens what `path` names, if it is a regular file on a normal filesystem.
fn open_regular(path: &str, resolved: &Path) -> Result<Regular, ChatError> {
    let file_error = |message: String| ChatError::FileError {
        path: path.to_string(),
        message,
    };
    let canonical =
        std::fs::canonicalize(resolved).map_err(|e| file_error(format!("cannot read it ({e})")))?;
    if KERNEL_TREES.iter().any(|tree| canonical.starts_with(tree)) {
        return Err(not_on_disk(path));
    }
    let meta =
        std::fs::metadata(&canonical).map_err(|e| file_error(format!("cannot read it ({e})")))?;
    if meta.is_dir() {
        return Err(ChatError::bad_args(format!(
            "{path} is a directory; give a file (archive a directory first)"
        )));
    }
    let not_regular = || {
        ChatError::bad_args(format!(
            "{path} is not a regular file (a device, pipe or socket); only regular files can be sent"
        ))
    };
    if !meta.is_file() {
        return Err(not_regular());
    }
    let file =
        std::fs::File::open(&canonical).map_err(|e| file_error(format!("cannot open it ({e})")))?;
    // What was opened is what is sent: judge the handle, not the name again.
    let meta = file
        .metadata()
        .map_err(|e| file_error(format!("cannot read it ({e})")))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    Ok(Regular {
        file,
        canonical,
        declared: meta.len(),
    })
}

enum HashError {
    TooLarge,
    Io(std::io::Error),
}

/// Size and sha256 of what `file` holds, refused as soon as it passes
/// `max_file` (a file may grow after it was measured).
fn hash(mut file: std::fs::File, max_file: u64) -> Result<(u64, String), HashError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(HashError::Io)?;
        if n == 0 {
            return Ok((size, nexscope_proto::ids::hex(&hasher.finalize())));
        }
        size += n as u64;
        if size > max_file {
            return Err(HashError::TooLarge);
        }
        hasher.update(&buf[..n]);
    }
}

/// A file about to be sent.
pub struct Outgoing {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub mime: String,
    pub msg_id: String,
    pub from: String,
    pub to: Vec<String>,
    pub role: String,
    pub thread_id: String,
    pub hop_count: i64,
    pub caption: String,
}

impl Outgoing {
    /// Checks the file (a regular file on a normal filesystem, within
    /// `max_file`) and hashes it.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        path: &str,
        max_file: u64,
        from: &str,
        to: Vec<String>,
        role: &str,
        thread_id: String,
        hop_count: i64,
        caption: String,
    ) -> Result<Outgoing, ChatError> {
        let file_error = |message: String| ChatError::FileError {
            path: path.to_string(),
            message,
        };
        let resolved = PathBuf::from(path);
        if !resolved.is_absolute() {
            return Err(ChatError::bad_args(format!(
                "file {path:?} must be an absolute path"
            )));
        }
        let Regular {
            file,
            canonical,
            declared,
        } = open_regular(path, &resolved)?;
        let too_large = |size: u64| ChatError::TooLarge {
            size,
            limit: max_file,
        };
        if declared > max_file {
            return Err(too_large(declared));
        }
        let (size, sha256) = hash(file, max_file).map_err(|e| match e {
            HashError::TooLarge => too_large(max_file.saturating_add(1)),
            HashError::Io(e) => file_error(format!("cannot read it ({e})")),
        })?;
        // procfs mounted somewhere else still gives itself away: a file that
        // says it is empty and then reads as something.
        if declared == 0 && size > 0 {
            return Err(not_on_disk(path));
        }
        let name = resolved
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        Ok(Outgoing {
            mime: guess_mime(&name).into(),
            name,
            size,
            sha256,
            msg_id: super::new_msg_id(),
            from: from.into(),
            to,
            role: role.into(),
            thread_id,
            hop_count,
            caption,
            // The sender opens it again: the checked file, not the link.
            path: canonical,
        })
    }

    pub fn start_frame(&self) -> Value {
        json!({
            "type": "file-start", "msgId": self.msg_id, "from": self.from, "to": self.to, "role": self.role,
            "threadId": self.thread_id, "text": self.caption, "hopCount": self.hop_count,
            "attachment": {"name": self.name, "size": self.size, "mime": self.mime, "sha256": self.sha256, "chunkSize": CHUNK},
        })
    }

    pub fn end_frame(&self) -> Value {
        json!({"type": "file-end", "msgId": self.msg_id, "from": self.from})
    }
}

/// A file being received.
pub struct Incoming {
    pub msg_id: String,
    pub start: Value,
    name: String,
    size: u64,
    sha256: Option<String>,
    hasher: Sha256,
    file: std::fs::File,
    part: PathBuf,
    dest: PathBuf,
    bytes: u64,
}

impl Incoming {
    pub fn begin(dir: &Path, start: &Value, max_file: u64) -> Result<Incoming, String> {
        let msg_id = start["msgId"].as_str().unwrap_or_default().to_string();
        let name = start["attachment"]["name"]
            .as_str()
            .unwrap_or("file")
            .to_string();
        let size = start["attachment"]["size"]
            .as_u64()
            .ok_or("file-start without attachment.size")?;
        if size > max_file {
            return Err(format!(
                "{name}: {size} bytes is over max_file ({max_file}); dropped"
            ));
        }
        nexscope_proto::paths::ensure_private_dir(dir).map_err(|e| e.to_string())?;
        let base = format!("{}-{}", safe_name(&msg_id, 64), safe_name(&name, 128));
        let dest = dir.join(&base);
        let part = dir.join(format!("{base}.part"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        Ok(Incoming {
            msg_id,
            start: start.clone(),
            sha256: start["attachment"]["sha256"]
                .as_str()
                .map(|s| s.to_ascii_lowercase()),
            name,
            size,
            hasher: Sha256::new(),
            file,
            part,
            dest,
            bytes: 0,
        })
    }

    /// Appends a chunk; an error means the transfer is dropped (call `discard`).
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.size {
            return Err(format!(
                "{}: more bytes than the declared {}; oversized, dropped",
                self.name, self.size
            ));
        }
        self.hasher.update(chunk);
        self.file
            .write_all(chunk)
            .map_err(|e| format!("cannot write {}: {e}", self.part.display()))
    }

    /// Checks size and sha256 and renames the `.part` into place.
    pub fn finish(self, from: &str, thread_id: &str) -> Result<ReceivedFile, String> {
        let Incoming {
            msg_id,
            start,
            name,
            size,
            sha256,
            hasher,
            file,
            part,
            dest,
            bytes,
        } = self;
        drop(file);
        let fail = |message: String| {
            let _ = std::fs::remove_file(&part);
            Err(message)
        };
        if bytes != size {
            return fail(format!(
                "{name}: size mismatch ({bytes} of {size} bytes); discarded"
            ));
        }
        let digest = nexscope_proto::ids::hex(&hasher.finalize());
        if let Some(expected) = sha256 {
            if expected != digest {
                return fail(format!("{name}: sha256 mismatch; discarded"));
            }
        }
        // A link, not a rename: it fails instead of replacing a file already
        // received (a peer reusing a msgId must not swap its contents).
        if let Err(e) = std::fs::hard_link(&part, &dest) {
            let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
                "a file of that name was already received".to_string()
            } else {
                e.to_string()
            };
            return fail(format!("cannot save {name}: {why}; discarded"));
        }
        let _ = std::fs::remove_file(&part);
        Ok(ReceivedFile {
            msg_id,
            from: from.into(),
            name,
            size: size as i64,
            sha256: digest,
            mime: start["attachment"]["mime"].as_str().map(String::from),
            path: dest.display().to_string(),
            thread_id: thread_id.into(),
            ts: nexscope_proto::time::now_ms() as i64,
        })
    }

    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_network_cannot_escape() {
        assert_eq!(safe_name("../../etc/passwd", 128), ".._.._etc_passwd");
        assert_eq!(safe_name("..", 128), "file");
        assert_eq!(safe_name("", 128), "file");
        assert_eq!(safe_name("a b/c.txt", 128), "a_b_c.txt");
        assert_eq!(safe_name(&"x".repeat(300), 128).len(), 128);
    }

    /// The refusal `Outgoing::open` gives `path`.
    fn refusal(path: &str) -> String {
        let opened = Outgoing::open(
            path,
            1 << 20,
            "a",
            Vec::new(),
            "user",
            "t".into(),
            0,
            "".into(),
        );
        match opened {
            Err(ChatError::BadArgs { message }) => message,
            Err(other) => panic!("{path}: {other}"),
            Ok(_) => panic!("{path} would have been sent"),
        }
    }

    #[test]
    fn kernel_files_are_refused_even_behind_a_link() {
        assert!(refusal("/proc/self/environ").contains("not a file on disk"));
        assert!(refusal("/dev/null").contains("not a file on disk"));
        let dir = std::env::temp_dir().join(format!("nx-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("notes.txt");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/proc/self/environ", &link).unwrap();
        let refused = refusal(link.to_str().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            refused.contains("only regular files on a normal filesystem can be sent"),
            "{refused}"
        );
    }
}
