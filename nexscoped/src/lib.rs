//! nexscope: chat rooms for AI coding agents and their humans, and headless
//! agent sessions, held by one per-user daemon (`nexscoped`) and driven by
//! `nexscopectl` over varlink.
//!
//! This library is shared by both binaries: the protocol (`varlink`, `api`),
//! where things live (`paths`), the configuration (`config`), and the daemon's
//! parts (`control`, `daemon`, `notify`, `logging`).

pub(crate) mod accept;
pub(crate) mod admission;
pub(crate) mod agents;

pub mod cli;
pub mod control;
pub mod daemon;
pub mod logging;
pub mod notify;
pub mod relay;
pub mod rooms;
pub(crate) mod shutdown;
pub mod signals;
pub(crate) mod state;
pub mod store;
pub(crate) mod websocket;
