//! What a nexscope client may rely on, and all it needs: the varlink
//! interfaces (`interfaces/*.varlink`, the source of truth) with their codec
//! and blocking client (`varlink`), the typed methods, parameters, results
//! and errors of each interface (`api`), where the sockets and files live
//! (`paths`), the configuration file (`config`), the rules both ends apply
//! (`rules`), how events are shown (`render`), and ids and times.
//!
//! `nexscopectl`, the hooks and the MCP shim link only this crate; the
//! daemon (`nexscoped`) builds on it.

pub mod api;
pub mod config;
pub mod ids;
pub mod paths;
pub mod render;
pub mod rules;
pub mod time;
pub mod varlink;
