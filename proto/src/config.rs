//! `config.toml` and the `NEXSCOPE_*` environment, which overrides it as in
//! v1 (docs/protocol.md §2.3).
//!
//! The file is optional: without it every project joins the relay embedded in
//! the daemon. The file is walked key by key rather than handed to a derive, so
//! that every refusal names the file (or variable), the key, the bad value and
//! what is allowed. Loading never changes anything on disk.
//!
//! ```toml
//! relay_url = "wss://relay.example.com/ws"   # absent: the embedded relay
//! token_file = "~/.config/nexscope/token"     # or token = "...", file must be 0600
//! default_name = "alice"
//! mode = "manual"                              # or "auto"
//! hop_limit = 3
//! [peer_index]
//! bob = 1
//! [projects."/home/alice/src/api"]
//! name = "alice-api"
//! mode = "auto"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::agent::{Backend, PERMISSION_MODES};

use toml::{Table, Value};

/// v1's defaults (docs/protocol.md §1.11, §2.3).
pub const DEFAULT_HOP_LIMIT: u32 = 3;
/// A hop limit bounds agent-to-agent ping-pong; past 100 it bounds nothing.
pub const MAX_HOP_LIMIT: u32 = 100;

/// A config file is a few hundred bytes; a megabyte is a mistake (a binary
/// pointed at by NEXSCOPE_CONFIG) that we refuse before reading it into memory.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
const MAX_TOKEN_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Manual,
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Manual => "manual",
            Mode::Auto => "auto",
        }
    }
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The settings a project's room membership uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// None: the relay embedded in this daemon.
    pub relay_url: Option<String>,
    pub token: Option<Secret>,
    pub name: Option<String>,
    pub mode: Mode,
    pub hop_limit: u32,
    pub max_payload: u64,
    pub max_file: u64,
    pub peer_index: BTreeMap<String, u32>,
    /// Who answers @mentions in auto mode.
    pub responder: Responder,
}

/// Who answers a project's @mentions in auto mode: the person's own agent
/// through the hooks and MCP tools (v1), or an agent session the daemon
/// hosts, headless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Responder {
    Hooks,
    Agent,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            relay_url: None,
            token: None,
            name: None,
            mode: Mode::Manual,
            hop_limit: DEFAULT_HOP_LIMIT,
            max_payload: crate::rules::DEFAULT_MAX_PAYLOAD as u64,
            max_file: crate::rules::DEFAULT_MAX_FILE,
            peer_index: BTreeMap::new(),
            responder: Responder::Hooks,
        }
    }
}

/// The agent host (`[agents]`) and its nx-ce WebSocket gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// The `claude` and `codex` executables (a name is looked up in PATH).
    pub claude: PathBuf,
    pub codex: PathBuf,
    pub backend: Backend,
    pub claude_model: Option<String>,
    pub codex_model: Option<String>,
    pub permission_mode: String,
    /// Agent processes alive at once; the longest idle one is stopped to
    /// make room.
    pub max_live: usize,
    pub idle_timeout: Duration,
    /// A turn running longer is interrupted (both CLIs retry a dead model
    /// endpoint for minutes or forever).
    pub turn_timeout: Duration,
    /// Where sessions of WebSocket clients that give no cwd run; None: HOME.
    pub cwd: Option<PathBuf>,
    /// The nx-ce gateway's address; None: off.
    pub listen: Option<SocketAddr>,
    pub token: Option<Secret>,
    pub allow_unauthenticated_loopback: bool,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            claude: PathBuf::from("claude"),
            codex: PathBuf::from("codex"),
            backend: Backend::Claude,
            claude_model: Some(DEFAULT_CLAUDE_MODEL.into()),
            codex_model: None,
            permission_mode: "bypassPermissions".into(),
            max_live: 8,
            idle_timeout: Duration::from_secs(300),
            turn_timeout: Duration::from_secs(3600),
            cwd: None,
            listen: None,
            token: None,
            allow_unauthenticated_loopback: false,
        }
    }
}

/// The web page for the humans (`[web]`).
#[derive(Debug, Clone, PartialEq)]
pub struct WebSettings {
    /// None: off.
    pub listen: Option<SocketAddr>,
    /// Whether `listen` was set (config, environment or command line); the
    /// default's port may be taken by another user's daemon, and then the
    /// page moves to a free port instead of not serving.
    pub explicit: bool,
    /// Serve https with this certificate chain and key (both or neither).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// A non-loopback `listen` is refused without TLS and this.
    pub allow_remote: bool,
    /// The name people reach a remote page by (its Host header); loopback
    /// names are always accepted.
    pub host: Option<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_WEB_PORT))),
            explicit: false,
            tls: None,
            allow_remote: false,
            host: None,
        }
    }
}

impl WebSettings {
    /// Sets `listen` from "off" or an address, checked against the rest.
    pub fn set_listen(&mut self, text: &str) -> Check<()> {
        self.listen = parse_web_listen(text)?;
        self.explicit = true;
        self.check_remote()
    }

    /// A page off loopback is reachable by others: only over TLS, and only
    /// when asked for in so many words.
    fn check_remote(&self) -> Check<()> {
        match self.listen {
            Some(addr) if !addr.ip().is_loopback() && (self.tls.is_none() || !self.allow_remote) => Err(
                "the web page listens on loopback only (127.0.0.1 or [::1]) unless [web] sets tls_cert, tls_key and allow_remote = true".into(),
            ),
            _ => Ok(()),
        }
    }
}

/// "off", or an address such as "127.0.0.1:43721".
pub fn parse_web_listen(text: &str) -> Check<Option<SocketAddr>> {
    if text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        format!("it must be \"off\" or an address such as \"127.0.0.1:{DEFAULT_WEB_PORT}\"")
    })
}

/// What `nexscoped relay` takes from config.toml (`[relay]`): a node's
/// place in a relay tier. Flags and `NEXSCOPE_CLUSTER`/`NEXSCOPE_NODE_ID`
/// come first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelaySettings {
    pub cluster: Option<String>,
    pub node_id: Option<String>,
}

/// NATS URLs, comma-separated: `nats://HOST:PORT[,…]` (or `tls://`).
pub fn check_cluster(text: &str) -> Check<String> {
    let ok = !text.is_empty()
        && text.split(',').all(|url| {
            let rest = url
                .trim()
                .strip_prefix("nats://")
                .or_else(|| url.trim().strip_prefix("tls://"));
            rest.is_some_and(|r| !r.is_empty() && !r.contains(char::is_whitespace))
        });
    if ok {
        Ok(text.to_string())
    } else {
        Err("it must be NATS URLs such as \"nats://127.0.0.1:4222\", comma-separated".into())
    }
}

/// A node id: what a member name may be.
pub fn check_node_id(text: &str) -> Check<String> {
    if crate::rules::valid_name(text) {
        Ok(text.to_string())
    } else {
        Err("use 1 to 32 of a-z, A-Z, 0-9, _ and -".into())
    }
}

impl RelaySettings {
    /// The `[relay]` table of `file` alone (the daemon's keys and
    /// environment are not the relay's business); absent file: none.
    pub fn load(file: &Path) -> Result<RelaySettings, ConfigError> {
        let (text, mode) = match read_limited(file) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RelaySettings::default());
            }
            Err(e) => {
                return Err(ConfigError::Read {
                    file: file.to_path_buf(),
                    message: e.to_string(),
                });
            }
        };
        let table = parse_table(file, &text)?;
        let top = Section {
            file,
            file_mode: mode,
            prefix: String::new(),
            table: &table,
        };
        match top.table("relay")? {
            Some(section) => section.relay(),
            None => Ok(RelaySettings::default()),
        }
    }
}

/// The web page's port on loopback.
pub const DEFAULT_WEB_PORT: u16 = 43721;

/// nx-ce's default model.
pub const DEFAULT_CLAUDE_MODEL: &str = "claude-sonnet-4-6";
/// nx-ce's default port.
pub const DEFAULT_AGENTS_PORT: u16 = 43720;

/// A loaded, valid configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub file: PathBuf,
    /// False when the file does not exist and the embedded defaults apply.
    pub found: bool,
    pub log_level: Option<String>,
    pub defaults: Settings,
    /// Overrides per project root (canonical absolute path), already merged
    /// over the defaults.
    pub projects: BTreeMap<PathBuf, Settings>,
    pub agents: AgentSettings,
    pub web: WebSettings,
}

/// Where a bad value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    File { file: PathBuf, key: String },
    Env { var: &'static str },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { file, key } => write!(f, "{}: key `{key}`", file.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {message}")]
    Read { file: PathBuf, message: String },
    #[error("{file} is not valid TOML: {message}")]
    Syntax { file: PathBuf, message: String },
    #[error("{file}: unknown key `{key}`; allowed here: {allowed}")]
    UnknownKey {
        file: PathBuf,
        key: String,
        allowed: String,
    },
    #[error("{origin}: {value} is not allowed; {allowed}")]
    Invalid {
        origin: Origin,
        value: String,
        allowed: String,
    },
}

impl ConfigError {
    /// A short stable code, for varlink errors and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_unreadable",
            ConfigError::Syntax { .. } => "config_syntax",
            ConfigError::UnknownKey { .. } => "config_unknown_key",
            ConfigError::Invalid { .. } => "config_invalid",
        }
    }
}

/// What a value failed: the text after "is not allowed; ".
type Check<T> = Result<T, String>;

const TOP_KEYS: &[&str] = &[
    "relay_url",
    "token",
    "token_file",
    "default_name",
    "mode",
    "hop_limit",
    "max_payload",
    "max_file",
    "peer_index",
    "responder",
    "log_level",
    "projects",
    "agents",
    "web",
    "relay",
];
const RELAY_KEYS: &[&str] = &["cluster", "node_id"];
const WEB_KEYS: &[&str] = &["listen", "tls_cert", "tls_key", "allow_remote", "host"];
const AGENT_KEYS: &[&str] = &[
    "claude",
    "codex",
    "backend",
    "claude_model",
    "codex_model",
    "permission_mode",
    "max_live",
    "idle_timeout",
    "turn_timeout",
    "cwd",
    "listen",
    "token",
    "token_file",
    "allow_unauthenticated_loopback",
];
const PROJECT_KEYS: &[&str] = &[
    "relay_url",
    "token",
    "token_file",
    "name",
    "mode",
    "hop_limit",
    "max_payload",
    "max_file",
    "peer_index",
    "responder",
];
const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

pub fn check_relay_url(url: &str) -> Check<String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !url.contains(char::is_whitespace)
                && !url.contains("REPLACE_ME") =>
        {
            Ok(url.to_string())
        }
        _ => {
            Err("use a ws:// or wss:// URL with a host, such as wss://relay.example.com/ws".into())
        }
    }
}

pub fn check_token(token: &str) -> Check<Secret> {
    let token = token.trim();
    if token.is_empty()
        || token.len() > MAX_TOKEN_BYTES
        || token.contains(char::is_whitespace)
        || token == "REPLACE_ME"
    {
        return Err(format!(
            "use the relay's token: 1 to {MAX_TOKEN_BYTES} bytes without spaces"
        ));
    }
    Ok(Secret(token.to_string()))
}

/// v1's name rule (docs/protocol.md §1.1), minus the REPLACE_ME placeholder
/// v1 let through.
pub fn check_name(name: &str) -> Check<String> {
    let valid = crate::rules::valid_name(name) && name != "REPLACE_ME";
    if valid {
        Ok(name.to_string())
    } else {
        Err("use 1 to 32 characters from a-z, A-Z, 0-9, _ and -".into())
    }
}

fn check_responder(text: &str) -> Check<Responder> {
    match text {
        "hooks" => Ok(Responder::Hooks),
        "agent" => Ok(Responder::Agent),
        _ => Err("use \"hooks\" (the person's agent answers) or \"agent\" (an agent session of the daemon answers)".into()),
    }
}

pub fn check_mode(mode: &str) -> Check<Mode> {
    match mode {
        "manual" => Ok(Mode::Manual),
        "auto" => Ok(Mode::Auto),
        _ => Err("use \"manual\" or \"auto\"".into()),
    }
}

fn check_range(value: i64, low: u64, high: u64, unit: &str) -> Check<u64> {
    u64::try_from(value)
        .ok()
        .filter(|v| (low..=high).contains(v))
        .ok_or_else(|| format!("use an integer{unit} from {low} to {high}"))
}

pub fn check_hop_limit(value: i64) -> Check<u32> {
    check_range(value, 1, MAX_HOP_LIMIT.into(), "").map(|v| v as u32)
}

pub fn check_max_payload(value: i64) -> Check<u64> {
    // Below 64 KiB a file chunk no longer fits; above 256 MiB one frame could
    // take a daemon's memory.
    check_range(value, 64 * 1024, 256 * 1024 * 1024, " number of bytes")
}

pub fn check_max_file(value: i64) -> Check<u64> {
    check_range(value, 1, 64 * 1024 * 1024 * 1024, " number of bytes")
}

fn check_peer_index(value: i64) -> Check<u32> {
    check_range(value, 1, 999, "").map(|v| v as u32)
}

/// The gateway speaks plain ws:// and trusts its peer's machine: it may only
/// listen on loopback.
pub fn check_agents_listen(text: &str) -> Check<SocketAddr> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| "it must be an address such as \"127.0.0.1:43720\"".to_string())?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err("the agent gateway listens on loopback only (127.0.0.1 or [::1])".into())
    }
}

/// A host name as a browser sends it in Host: letters, digits, dots and
/// dashes.
fn check_web_host(text: &str) -> Check<String> {
    let ok = !text.is_empty()
        && text.len() <= 253
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if ok {
        Ok(text.to_ascii_lowercase())
    } else {
        Err("it must be a host name such as \"nexscope.example.org\"".into())
    }
}

fn check_backend(text: &str) -> Check<Backend> {
    Backend::parse(text).map_err(|_| "use \"claude\" or \"codex\"".to_string())
}

fn check_permission_mode(text: &str) -> Check<String> {
    if PERMISSION_MODES.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!("use one of: {}", PERMISSION_MODES.join(", ")))
    }
}

fn check_model(text: &str) -> Check<String> {
    if text.trim().is_empty() {
        Err("it must be a model name such as \"claude-sonnet-4-6\"".into())
    } else {
        Ok(text.to_string())
    }
}

fn check_program(text: &str) -> Check<PathBuf> {
    if text.trim().is_empty() {
        Err("it must be a program name or path".into())
    } else {
        Ok(expand_home(text))
    }
}

fn check_seconds(low: u64, high: u64) -> impl Fn(i64) -> Check<Duration> {
    move |n| check_range(n, low, high, " (seconds)").map(Duration::from_secs)
}

fn check_log_level(level: &str) -> Check<String> {
    if LOG_LEVELS.contains(&level) {
        Ok(level.to_string())
    } else {
        Err(format!("use one of {}", LOG_LEVELS.join(", ")))
    }
}

/// A file holding a secret (a token file, or config.toml with an inline
/// token) must not be readable by group or others.
fn private_mode(mode: u32, path: &Path, what: &str) -> Check<()> {
    if mode & 0o077 != 0 {
        return Err(format!(
            "{what} has mode {:o} and others may read it; run chmod 600 {}",
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

/// A token file holds a secret: it must be a regular file only we can read.
pub fn read_token_file(path: &Path) -> Check<Secret> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("the token file cannot be read ({e}); create it with mode 0600"))?;
    if !meta.is_file() {
        return Err(
            "it is not a regular file; point token_file at a file holding the token".into(),
        );
    }
    private_mode(meta.permissions().mode(), path, "the token file")?;
    if meta.uid() != crate::paths::uid() {
        return Err("the token file belongs to another user".into());
    }
    if meta.len() > MAX_TOKEN_BYTES as u64 + 2 {
        return Err(format!(
            "the token file is larger than {MAX_TOKEN_BYTES} bytes"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it ({e})"))?;
    check_token(&text).map_err(|_| format!("the token file must hold the relay's token: 1 to {MAX_TOKEN_BYTES} bytes without spaces"))
}

/// A value as a person would write it in the file.
fn render(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        Value::Integer(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(_) => "an array".into(),
        Value::Table(_) => "a table".into(),
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// One TOML table being read, with the dotted path of its keys for messages.
struct Section<'a> {
    file: &'a Path,
    /// The file's permission bits: an inline token needs them private.
    file_mode: u32,
    prefix: String,
    table: &'a Table,
}

impl<'a> Section<'a> {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn invalid(&self, key: &str, value: &Value, allowed: String) -> ConfigError {
        ConfigError::Invalid {
            origin: Origin::File {
                file: self.file.to_path_buf(),
                key: self.key(key),
            },
            // A token is never repeated back, not even a malformed one.
            value: if key == "token" {
                "the value".into()
            } else {
                render(value)
            },
            allowed,
        }
    }

    fn only_keys(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        match self.table.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(ConfigError::UnknownKey {
                file: self.file.to_path_buf(),
                key: self.key(key),
                allowed: allowed.join(", "),
            }),
            None => Ok(()),
        }
    }

    fn string<T>(
        &self,
        key: &str,
        check: impl Fn(&str) -> Check<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(value @ Value::String(text)) => check(text)
                .map(Some)
                .map_err(|allowed| self.invalid(key, value, allowed)),
            Some(value) => Err(self.invalid(key, value, "it must be a string".into())),
        }
    }

    fn integer<T>(
        &self,
        key: &str,
        check: impl Fn(i64) -> Check<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(value @ Value::Integer(n)) => check(*n)
                .map(Some)
                .map_err(|allowed| self.invalid(key, value, allowed)),
            Some(value) => Err(self.invalid(key, value, "it must be an integer".into())),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(value) => Err(self.invalid(key, value, "it must be true or false".into())),
        }
    }

    /// An inline token is as secret as a token file, and held to the same
    /// rule: the file it is written in must be readable by us alone.
    fn inline_token(&self, token: &str) -> Check<Secret> {
        let token = check_token(token)?;
        private_mode(self.file_mode, self.file, "the file holding the token")?;
        Ok(token)
    }

    /// `[agents]`.
    fn agents(&self) -> Result<AgentSettings, ConfigError> {
        self.only_keys(AGENT_KEYS)?;
        let mut a = AgentSettings::default();
        if let Some(path) = self.string("claude", check_program)? {
            a.claude = path;
        }
        if let Some(path) = self.string("codex", check_program)? {
            a.codex = path;
        }
        if let Some(backend) = self.string("backend", check_backend)? {
            a.backend = backend;
        }
        if let Some(model) = self.string("claude_model", check_model)? {
            a.claude_model = Some(model);
        }
        if let Some(model) = self.string("codex_model", check_model)? {
            a.codex_model = Some(model);
        }
        if let Some(mode) = self.string("permission_mode", check_permission_mode)? {
            a.permission_mode = mode;
        }
        if let Some(n) = self.integer("max_live", |n| check_range(n, 1, 256, " (processes)"))? {
            a.max_live = n as usize;
        }
        if let Some(d) = self.integer("idle_timeout", check_seconds(1, 86_400))? {
            a.idle_timeout = d;
        }
        if let Some(d) = self.integer("turn_timeout", check_seconds(1, 86_400))? {
            a.turn_timeout = d;
        }
        if let Some(dir) = self.string("cwd", |p| Ok(expand_home(p)))? {
            a.cwd = Some(dir);
        }
        if let Some(addr) = self.string("listen", check_agents_listen)? {
            a.listen = Some(addr);
        }
        let token = self.string("token", |t| self.inline_token(t))?;
        let token_file = self.string("token_file", |p| read_token_file(&expand_home(p)))?;
        a.token = match (token, token_file) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "token_file",
                    &self.table["token_file"],
                    "set either token or token_file, not both".into(),
                ));
            }
            (t, f) => t.or(f),
        };
        if let Some(allow) = self.boolean("allow_unauthenticated_loopback")? {
            a.allow_unauthenticated_loopback = allow;
        }
        Ok(a)
    }

    /// `[relay]`.
    fn relay(&self) -> Result<RelaySettings, ConfigError> {
        self.only_keys(RELAY_KEYS)?;
        Ok(RelaySettings {
            cluster: self.string("cluster", check_cluster)?,
            node_id: self.string("node_id", check_node_id)?,
        })
    }

    /// `[web]`.
    fn web(&self) -> Result<WebSettings, ConfigError> {
        self.only_keys(WEB_KEYS)?;
        let mut w = WebSettings::default();
        let cert = self.string("tls_cert", |p| Ok(expand_home(p)))?;
        let key = self.string("tls_key", |p| Ok(expand_home(p)))?;
        w.tls = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                let (key, value) = match (self.table.get("tls_cert"), self.table.get("tls_key")) {
                    (Some(value), _) => ("tls_cert", value),
                    (None, Some(value)) => ("tls_key", value),
                    (None, None) => return Ok(w),
                };
                return Err(self.invalid(
                    key,
                    value,
                    "set both tls_cert and tls_key, or neither".into(),
                ));
            }
        };
        if let Some(allow) = self.boolean("allow_remote")? {
            w.allow_remote = allow;
        }
        if let Some(host) = self.string("host", check_web_host)? {
            w.host = Some(host);
        }
        if let Some(listen) = self.table.get("listen") {
            let text = listen.as_str().unwrap_or_default();
            w.set_listen(text)
                .map_err(|message| self.invalid("listen", listen, message))?;
        }
        Ok(w)
    }

    fn table(&self, key: &str) -> Result<Option<Section<'a>>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Table(table)) => Ok(Some(Section {
                file: self.file,
                file_mode: self.file_mode,
                prefix: format!("{}{key}.", self.prefix),
                table,
            })),
            Some(value) => Err(self.invalid(key, value, "it must be a table".into())),
        }
    }

    /// The settings keys shared by the top level and `[projects."…"]`, laid
    /// over `base`.
    fn settings(&self, base: &Settings, name_key: &str) -> Result<Settings, ConfigError> {
        let mut s = base.clone();
        if let Some(url) = self.string("relay_url", check_relay_url)? {
            s.relay_url = Some(url);
        }
        let token = self.string("token", |t| self.inline_token(t))?;
        let token_file = self.string("token_file", |p| read_token_file(&expand_home(p)))?;
        match (token, token_file) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "token_file",
                    &self.table["token_file"],
                    "set either token or token_file, not both".into(),
                ));
            }
            (Some(t), None) | (None, Some(t)) => s.token = Some(t),
            (None, None) => {}
        }
        if let Some(name) = self.string(name_key, check_name)? {
            s.name = Some(name);
        }
        if let Some(mode) = self.string("mode", check_mode)? {
            s.mode = mode;
        }
        if let Some(hop_limit) = self.integer("hop_limit", check_hop_limit)? {
            s.hop_limit = hop_limit;
        }
        if let Some(max_payload) = self.integer("max_payload", check_max_payload)? {
            s.max_payload = max_payload;
        }
        if let Some(max_file) = self.integer("max_file", check_max_file)? {
            s.max_file = max_file;
        }
        if let Some(responder) = self.string("responder", check_responder)? {
            s.responder = responder;
        }
        if let Some(peers) = self.table("peer_index")? {
            for key in peers.table.keys() {
                check_name(key).map_err(|allowed| {
                    peers.invalid(
                        key,
                        &Value::String(key.clone()),
                        format!("peer names: {allowed}"),
                    )
                })?;
                if let Some(index) = peers.integer(key, check_peer_index)? {
                    s.peer_index.insert(key.clone(), index);
                }
            }
        }
        Ok(s)
    }
}

/// Reads an environment variable; unset and empty are the same
/// (docs/protocol.md §2.3).
fn env_value(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn from_env<T>(
    var: &'static str,
    check: impl Fn(&str) -> Check<T>,
) -> Result<Option<T>, ConfigError> {
    match env_value(var) {
        None => Ok(None),
        Some(text) => check(&text)
            .map(Some)
            .map_err(|allowed| ConfigError::Invalid {
                origin: Origin::Env { var },
                // The token's value is never repeated back.
                value: if var == "NEXSCOPE_TOKEN" {
                    "the value".into()
                } else {
                    format!("{text:?}")
                },
                allowed,
            }),
    }
}

fn parse_integer<T>(check: impl Fn(i64) -> Check<T>) -> impl Fn(&str) -> Check<T> {
    move |text| {
        let n = text
            .trim()
            .parse::<i64>()
            .map_err(|_| check(-1).err().unwrap_or_default())?;
        check(n)
    }
}

/// The environment overrides, which win over the file (docs/protocol.md §2.3).
fn apply_env(settings: &mut Settings) -> Result<(), ConfigError> {
    if let Some(url) = from_env("NEXSCOPE_RELAY_URL", check_relay_url)? {
        settings.relay_url = Some(url);
    }
    if let Some(token) = from_env("NEXSCOPE_TOKEN", check_token)? {
        settings.token = Some(token);
    }
    if let Some(name) = from_env("NEXSCOPE_DEFAULT_NAME", check_name)? {
        settings.name = Some(name);
    }
    if let Some(mode) = from_env("NEXSCOPE_MODE", check_mode)? {
        settings.mode = mode;
    }
    if let Some(v) = from_env("NEXSCOPE_HOP_LIMIT", parse_integer(check_hop_limit))? {
        settings.hop_limit = v;
    }
    if let Some(v) = from_env("NEXSCOPE_MAX_PAYLOAD", parse_integer(check_max_payload))? {
        settings.max_payload = v;
    }
    if let Some(v) = from_env("NEXSCOPE_MAX_FILE", parse_integer(check_max_file))? {
        settings.max_file = v;
    }
    Ok(())
}

impl Config {
    /// Loads `file` (absent: the embedded defaults) and the environment.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = match read_limited(file) {
            Ok(read) => Some(read),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(ConfigError::Read {
                    file: file.to_path_buf(),
                    message: e.to_string(),
                });
            }
        };
        let mut config = match &text {
            Some((text, mode)) => Self::parse(file, text, *mode)?,
            None => Config {
                file: file.to_path_buf(),
                found: false,
                log_level: None,
                defaults: Settings::default(),
                projects: BTreeMap::new(),
                agents: AgentSettings::default(),
                web: WebSettings::default(),
            },
        };
        apply_env(&mut config.defaults)?;
        for settings in config.projects.values_mut() {
            apply_env(settings)?;
        }
        Ok(config)
    }

    /// The settings of the project rooted at `root`.
    pub fn settings_for(&self, root: &Path) -> &Settings {
        self.projects.get(root).unwrap_or(&self.defaults)
    }

    fn parse(file: &Path, text: &str, file_mode: u32) -> Result<Config, ConfigError> {
        let table = parse_table(file, text)?;
        let top = Section {
            file,
            file_mode,
            prefix: String::new(),
            table: &table,
        };
        top.only_keys(TOP_KEYS)?;
        let log_level = top.string("log_level", check_log_level)?;
        let defaults = top.settings(&Settings::default(), "default_name")?;
        let mut projects = BTreeMap::new();
        if let Some(section) = top.table("projects")? {
            for (root, value) in section.table {
                let project = section
                    .table(root)?
                    .ok_or_else(|| section.invalid(root, value, "it must be a table".into()))?;
                let root = PathBuf::from(root);
                if !root.is_absolute() {
                    return Err(section.invalid(
                        &format!("{root:?}"),
                        &Value::String(root.display().to_string()),
                        "project keys must be absolute paths, such as [projects.\"/home/alice/src/api\"]".into(),
                    ));
                }
                let project = Section {
                    prefix: format!("projects.{:?}.", root.display().to_string()),
                    ..project
                };
                project.only_keys(PROJECT_KEYS)?;
                projects.insert(root, project.settings(&defaults, "name")?);
            }
        }
        let agents = match top.table("agents")? {
            Some(section) => section.agents()?,
            None => AgentSettings::default(),
        };
        // The relay's own section, checked here too so a mistake in it is
        // found by `nexscoped --check-config`.
        if let Some(section) = top.table("relay")? {
            section.relay()?;
        }
        let web = match top.table("web")? {
            Some(section) => section.web()?,
            None => WebSettings::default(),
        };
        Ok(Config {
            file: file.to_path_buf(),
            found: true,
            log_level,
            defaults,
            projects,
            agents,
            web,
        })
    }
}

/// The file's TOML, or the syntax error with its place.
fn parse_table(file: &Path, text: &str) -> Result<Table, ConfigError> {
    text.parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
}

/// The file's text and permission bits.
fn read_limited(file: &Path) -> std::io::Result<(String, u32)> {
    let meta = std::fs::metadata(file)?;
    if meta.is_dir() {
        return Err(std::io::Error::other("it is a directory"));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(std::io::Error::other(format!(
            "it is larger than {MAX_CONFIG_BYTES} bytes"
        )));
    }
    Ok((std::fs::read_to_string(file)?, meta.permissions().mode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/c/config.toml"), text, 0o600)
    }

    fn message(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn empty_file_is_the_embedded_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.defaults, Settings::default());
        assert!(config.defaults.relay_url.is_none());
    }

    #[test]
    fn the_web_page_serves_on_loopback_unless_told_otherwise() {
        let web = parse("").unwrap().web;
        assert_eq!(
            web.listen,
            Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_WEB_PORT)))
        );
        assert!(!web.explicit);
        assert_eq!(parse("[web]\nlisten = \"off\"\n").unwrap().web.listen, None);
        let remote = "[web]\nlisten = \"0.0.0.0:8443\"\n";
        assert!(
            message(remote).contains("loopback only"),
            "{}",
            message(remote)
        );
        let without_allow = format!("{remote}tls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n");
        assert!(message(&without_allow).contains("allow_remote"));
        let allowed = parse(&format!(
            "{without_allow}allow_remote = true\nhost = \"Box.Example\"\n"
        ))
        .unwrap()
        .web;
        assert!(allowed.explicit && allowed.tls.is_some());
        assert_eq!(allowed.host.as_deref(), Some("box.example"));
        assert!(message("[web]\ntls_cert = \"/c.pem\"\n").contains("both tls_cert and tls_key"));
        assert!(message("[web]\nlisten = \"here\"\n").contains("\"off\" or an address"));
        assert!(message("[web]\nhost = \"a b\"\n").contains("host name"));
    }

    #[test]
    fn the_relay_section_names_a_tier_and_is_checked() {
        let dir =
            std::env::temp_dir().join(format!("nexscope-relay-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.toml");
        std::fs::write(
            &file,
            "[relay]\ncluster = \"nats://a:4222,nats://b:4222\"\nnode_id = \"n1\"\n",
        )
        .unwrap();
        let relay = RelaySettings::load(&file).unwrap();
        assert_eq!(
            relay.cluster.as_deref(),
            Some("nats://a:4222,nats://b:4222")
        );
        assert_eq!(relay.node_id.as_deref(), Some("n1"));
        assert_eq!(
            RelaySettings::load(&dir.join("absent.toml")).unwrap(),
            RelaySettings::default()
        );
        std::fs::write(&file, "[relay]\ncluster = \"http://a\"\n").unwrap();
        assert!(
            RelaySettings::load(&file)
                .unwrap_err()
                .to_string()
                .contains("NATS URLs")
        );
        std::fs::write(&file, "[relay]\nnode_id = \"a b\"\n").unwrap();
        assert!(RelaySettings::load(&file).is_err());
        // The daemon's own check finds a bad [relay] too.
        assert!(message("[relay]\nclusters = \"x\"\n").contains("clusters"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn project_overrides_merge_over_the_defaults() {
        let config = parse(
            "default_name = \"alice\"\nhop_limit = 5\n[projects.\"/src/api\"]\nmode = \"auto\"\n",
        )
        .unwrap();
        let api = config.settings_for(Path::new("/src/api"));
        assert_eq!(api.mode, Mode::Auto);
        assert_eq!(api.hop_limit, 5);
        assert_eq!(api.name.as_deref(), Some("alice"));
        assert_eq!(config.settings_for(Path::new("/other")).mode, Mode::Manual);
    }

    #[test]
    fn bad_values_name_file_key_and_what_is_allowed() {
        assert_eq!(
            message("mode = \"sometimes\""),
            "/c/config.toml: key `mode`: \"sometimes\" is not allowed; use \"manual\" or \"auto\""
        );
        assert_eq!(
            message("hop_limit = 0"),
            "/c/config.toml: key `hop_limit`: 0 is not allowed; use an integer from 1 to 100"
        );
        assert_eq!(
            message("[projects.\"/p\"]\nhop_limit = \"3\""),
            "/c/config.toml: key `projects.\"/p\".hop_limit`: \"3\" is not allowed; it must be an integer"
        );
        assert!(message("relay_url = \"http://x/ws\"").contains("use a ws:// or wss:// URL"));
        assert!(message("default_name = \"a b\"").contains("key `default_name`"));
        assert!(
            message("colour = 1")
                .starts_with("/c/config.toml: unknown key `colour`; allowed here: relay_url")
        );
        assert!(message("[projects.\"rel\"]").contains("absolute paths"));
        assert!(message("mode = ").contains("is not valid TOML"));
    }

    #[test]
    fn an_inline_token_needs_a_private_file_like_a_token_file() {
        let file = Path::new("/c/config.toml");
        let token = "token = \"abcdef\"\n";
        let refused = Config::parse(file, token, 0o644).unwrap_err().to_string();
        assert_eq!(
            refused,
            "/c/config.toml: key `token`: the value is not allowed; the file holding the token \
             has mode 644 and others may read it; run chmod 600 /c/config.toml"
        );
        let agents = "[agents]\ntoken = \"abcdef\"\n";
        assert!(
            Config::parse(file, agents, 0o640)
                .unwrap_err()
                .to_string()
                .contains("key `agents.token`")
        );
        assert!(Config::parse(file, token, 0o600).is_ok());
        assert!(Config::parse(file, "mode = \"auto\"\n", 0o644).is_ok());
    }
}
