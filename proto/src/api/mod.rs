//! The Rust side of our varlink interfaces: method names and the parameter and
//! result types, once, for the daemon's handlers and for every client.
//! Field names follow the `.varlink` files (camelCase on the wire).

pub mod agent;
pub mod chat;
pub mod daemon;
pub mod service;
