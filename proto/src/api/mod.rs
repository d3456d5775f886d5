//! The Rust side of our varlink interfaces: method names and the parameter and
//! result types, once, for the daemon's handlers and for every client.
//! Field names follow the `.varlink` files (camelCase on the wire).

pub mod agent;
pub mod chat;
pub mod daemon;
pub mod service;

use serde::{Deserialize, Serialize};

/// The parameters of a method that takes none: exactly `{}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}
