//! `io.nexscope.Daemon`.

use serde::{Deserialize, Serialize};

use super::Empty;

crate::interface! {
    "io.nexscope.Daemon";
    methods {
        Ping(Empty),
        Status(Empty),
        Monitor(Empty),
        Reload(Empty),
        EmbeddedRelay(Empty),
        WebLogin(Empty),
        Shutdown(Empty),
    }
    errors {
        ConfigInvalid,
        TooManyConnections,
        WebOff,
    }
}

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<String>,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddedRelayOut {
    pub url: String,
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebLoginOut {
    pub url: String,
    pub expires_in: u64,
}
