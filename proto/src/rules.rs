//! The rules both ends apply to what crosses the wire: the v1 name rule,
//! room ids, and v1's default size limits. The relay enforces them; the
//! daemon and `nexscopectl` check them early so a person hears why at once.

/// v1's largest frame (docs/protocol.md §1.11), the relay's default.
pub const DEFAULT_MAX_PAYLOAD: usize = 10 * 1024 * 1024;
/// v1's largest file transfer, the relay's default.
pub const DEFAULT_MAX_FILE: u64 = 100 * 1024 * 1024;

/// The v1 name rule: `^[a-zA-Z0-9_-]{1,32}$`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Room ids: the name rule with dots, up to 64, so a project path's hash or
/// a team's name fits.
pub fn valid_room(room: &str) -> bool {
    (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// What a member can say is behind its name in a status frame: a live
/// Claude Code or Codex session, a person, or a daemon with neither.
pub const AGENTS: [&str; 4] = ["claude", "codex", "person", "daemon"];
