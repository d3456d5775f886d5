//! Who may join: the shared token of v1 and, beyond v1, per-user tokens from
//! a users file, so that nobody can take another's name.
//!
//! Tokens are compared as SHA-256 digests in constant time, never logged and
//! never kept in the clear longer than loading takes. The users file holds
//! `name = "sha256:<salt hex>:<hex of sha256(salt ‖ token)>"` lines; `nexscoped
//! relay hash-token` makes one. Tokens are random secrets, not passwords, so
//! a salted SHA-256 is enough: there is nothing to guess by dictionary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nexscope_proto::ids::hex;
use sha2::{Digest, Sha256};

type Digest32 = [u8; 32];

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the relay needs a token: set NEXSCOPE_TOKEN, --token-file or --users-file")]
    NoToken,
    #[error("cannot read {file}: {message}")]
    Read { file: PathBuf, message: String },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
}

struct UserEntry {
    salt: Vec<u8>,
    digest: Digest32,
}

pub struct Auth {
    shared: Option<Digest32>,
    users: HashMap<String, UserEntry>,
}

fn sha256(parts: &[&[u8]]) -> Digest32 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Equal without an early exit, so timing says nothing about where two
/// digests differ.
pub fn constant_time_eq(a: &Digest32, b: &Digest32) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fresh random token: 32 bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // getrandom only fails without an entropy source, where nothing secure
    // could run; fall back to time and pid rather than abort the daemon.
    if getrandom::fill(&mut bytes).is_err() {
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        bytes = sha256(&[seed.as_bytes()]);
    }
    hex(&bytes)
}

/// The users-file value for `token`, with a new random salt.
pub fn hash_token(token: &str) -> String {
    let mut salt = [0u8; 16];
    if getrandom::fill(&mut salt).is_err() {
        salt = sha256(&[random_token().as_bytes()])[..16]
            .try_into()
            .unwrap_or([7u8; 16]);
    }
    format!(
        "sha256:{}:{}",
        hex(&salt),
        hex(&sha256(&[&salt, token.as_bytes()]))
    )
}

impl Auth {
    pub fn new(shared: Option<&str>, users_file: Option<&Path>) -> Result<Auth, AuthError> {
        let users = match users_file {
            Some(file) => load_users(file)?,
            None => HashMap::new(),
        };
        if shared.is_none() && users.is_empty() {
            return Err(AuthError::NoToken);
        }
        Ok(Auth {
            shared: shared.map(|t| sha256(&[t.as_bytes()])),
            users,
        })
    }

    /// Whether `token` lets `name` in: a listed name needs its own token; any
    /// other name needs the shared one, if the relay has one.
    /// Whether `name` has its own token (so its connections are its own).
    pub fn is_user(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    pub fn allows(&self, name: Option<&str>, token: Option<&str>) -> bool {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return false;
        };
        if let Some(entry) = name.and_then(|n| self.users.get(n)) {
            return constant_time_eq(&sha256(&[&entry.salt, token.as_bytes()]), &entry.digest);
        }
        match &self.shared {
            Some(shared) => constant_time_eq(&sha256(&[token.as_bytes()]), shared),
            None => false,
        }
    }
}

fn load_users(file: &Path) -> Result<HashMap<String, UserEntry>, AuthError> {
    let text = std::fs::read_to_string(file).map_err(|e| AuthError::Read {
        file: file.to_path_buf(),
        message: e.to_string(),
    })?;
    let invalid = |message: String| AuthError::Invalid {
        file: file.to_path_buf(),
        message,
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        invalid(format!("not valid TOML: {}", e.to_string().trim_end()))
    })?;
    let mut users = HashMap::new();
    for (name, value) in &table {
        if !nexscope_proto::rules::valid_name(name) {
            return Err(invalid(format!(
                "user `{name}`: names are 1 to 32 characters from a-z, A-Z, 0-9, _ and -"
            )));
        }
        let entry = value
            .as_str()
            .and_then(|v| v.strip_prefix("sha256:"))
            .and_then(|v| v.split_once(':'))
            .and_then(|(salt, digest)| Some((unhex(salt)?, unhex(digest)?)))
            .and_then(|(salt, digest)| Some(UserEntry { salt, digest: digest.try_into().ok()? }))
            .ok_or_else(|| {
                invalid(format!(
                    "user `{name}`: expected \"sha256:<salt hex>:<digest hex>\" as printed by `nexscoped relay hash-token`"
                ))
            })?;
        users.insert(name.clone(), entry);
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_and_per_user_tokens() {
        let dir = std::env::temp_dir().join(format!("nx-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("users.toml");
        std::fs::write(
            &file,
            format!("alice = \"{}\"\n", hash_token("alice-secret")),
        )
        .unwrap();
        let auth = Auth::new(Some("shared"), Some(&file)).unwrap();
        assert!(auth.allows(Some("alice"), Some("alice-secret")));
        assert!(
            !auth.allows(Some("alice"), Some("shared")),
            "a listed name needs its own token"
        );
        assert!(auth.allows(Some("bob"), Some("shared")));
        assert!(!auth.allows(Some("bob"), Some("alice-secret")));
        assert!(!auth.allows(Some("bob"), None));
        let only_users = Auth::new(None, Some(&file)).unwrap();
        assert!(!only_users.allows(Some("bob"), Some("shared")));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
