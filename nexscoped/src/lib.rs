//! nexscope: chat rooms for AI coding agents and their humans, and headless
//! agent sessions, held by one per-user daemon (`nexscoped`) and driven by
//! `nexscopectl` over varlink.
//!
//! This library is the daemon's; what clients share with it (the varlink
//! interfaces and types, paths, config, rules, rendering) is the
//! `nexscope-proto` crate. Public here is only what the `nexscoped` binary,
//! the man-page generator and the fuzzers use: `cli`, `lifecycle`, `control`'s
//! listener, `relay`, `shutdown`, `logging`, `notify`, `signals`.

pub mod cli;
pub mod control;
pub mod lifecycle;
pub mod logging;
pub mod notify;
pub mod relay;
pub mod shutdown;
pub mod signals;

pub(crate) mod accept;
pub(crate) mod admission;
pub(crate) mod agents;
pub(crate) mod rooms;

pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod web;
pub(crate) mod websocket;
