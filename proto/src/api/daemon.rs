//! `io.nexscope.Daemon`.

use serde::{Deserialize, Serialize};

pub const INTERFACE: &str = "io.nexscope.Daemon";
pub const PING: &str = "io.nexscope.Daemon.Ping";
pub const STATUS: &str = "io.nexscope.Daemon.Status";
pub const MONITOR: &str = "io.nexscope.Daemon.Monitor";
pub const RELOAD: &str = "io.nexscope.Daemon.Reload";
pub const SHUTDOWN: &str = "io.nexscope.Daemon.Shutdown";
pub const EMBEDDED_RELAY: &str = "io.nexscope.Daemon.EmbeddedRelay";

pub const ERROR_CONFIG_INVALID: &str = "io.nexscope.Daemon.ConfigInvalid";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DaemonStatus {
    pub version: String,
    pub pid: u32,
    pub uptime_ms: u64,
    pub socket: String,
    pub embedded_relay: String,
    pub config_file: String,
    pub config_found: bool,
    pub projects: u64,
    pub rooms: u64,
    pub agent_sessions: u64,
    pub live_agents: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_gateway: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusOut {
    pub status: DaemonStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadOut {
    pub config_file: String,
}

/// Methods without parameters take exactly `{}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddedRelayOut {
    pub url: String,
    pub token: String,
}
