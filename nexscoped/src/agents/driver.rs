//! What a session needs from an agent CLI, whichever it is: `Driver`, and
//! `spawn`, the one place that picks the CLI by the session's backend.
//!
//! A session (`session.rs`) keeps the queue, the turn lifecycle and the
//! record; it never asks which CLI runs. The CLIs differ in how they switch
//! model and permission mode (Claude by control requests answered before the
//! turn, Codex with the turn itself), in what metadata they know without a
//! turn, and in which failures to start a turn leave the process usable; the
//! trait says each of these in the session's terms. A new backend is a
//! module that implements `Driver`, and its arms in `spawn`, `program`,
//! `default_model` and `refused_mode` here.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde_json::{Map, Value};

use super::claude::Claude;
use super::codex::{Codex, CodexError};
use super::process::AgentProcess;
use super::{Output, SpawnSpec};
use nexscope_proto::api::agent::{Backend, Usage};
use nexscope_proto::config::AgentSettings;

/// A boxed future: the drivers are used as `dyn Driver`.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a turn did not start.
pub(super) enum StartError {
    /// The process is gone or broken: the turn ends as in a crash.
    Broken(String),
    /// The agent refused this turn and stays usable.
    Refused(String),
}

/// One live agent process, driven for one session.
pub(super) trait Driver: Send {
    /// What the process said next, translated; None once its output closed.
    fn next(&mut self) -> BoxFuture<'_, Option<Vec<Output>>>;

    fn process(&mut self) -> &mut AgentProcess;

    fn into_process(self: Box<Self>) -> AgentProcess;

    /// Stops the running turn (or ours, still queued by the CLI); the turn
    /// then ends with its usual last output.
    fn interrupt(&mut self) -> BoxFuture<'_, std::io::Result<()>>;

    /// The control request that switches the model before a turn, when the
    /// CLI switches that way; None when the turn itself carries the model.
    fn model_request(&self, model: &str) -> Option<Value>;

    /// The same for the permission mode.
    fn mode_request(&self, mode: &str) -> Option<Value>;

    /// Sends a control request; its answer arrives as `Output::Reply` with
    /// the returned id.
    fn control(&mut self, request: Value) -> BoxFuture<'_, std::io::Result<u64>>;

    /// Starts a turn with `prompt`. `model` and `mode` are the changes no
    /// control request made (see `model_request`).
    fn start_turn<'a>(
        &'a mut self,
        prompt: &'a str,
        session_id: &'a str,
        model: Option<&'a str>,
        mode: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StartError>>;

    /// The session's metadata when the CLI knows it without a turn (a Codex
    /// thread); None when it comes with the turn's own init.
    fn known_metadata(&self, cwd: &str, permission_mode: &str) -> Option<Map<String, Value>>;

    /// Asks the CLI for its metadata without a model turn, passing the
    /// session's skills; Some(request id) when the answer comes as
    /// `Output::Reply`, None when `known_metadata` has it.
    fn ask_metadata<'a>(
        &'a mut self,
        skills: &'a [String],
    ) -> BoxFuture<'a, std::io::Result<Option<u64>>>;

    /// The metadata in the answer to `ask_metadata`.
    fn metadata_from_reply(&self, reply: &Value, agent_id: &str, cwd: &str) -> Map<String, Value>;
}

/// A started agent process and what it told at start.
pub(super) struct Spawned {
    pub driver: Box<dyn Driver>,
    /// The conversation's id when the CLI chose it at start (Codex's
    /// thread); None when it comes with the first turn.
    pub agent_id: Option<String>,
    /// The metadata request sent at start (to pass the skills), if any.
    pub metadata_request: Option<u64>,
}

/// The CLI that runs a backend, as configured.
pub(super) fn program(backend: Backend, settings: &AgentSettings) -> PathBuf {
    match backend {
        Backend::Claude => settings.claude.clone(),
        Backend::Codex => settings.codex.clone(),
    }
}

/// The model a new session of a backend starts with, as configured.
pub(super) fn default_model(backend: Backend, settings: &AgentSettings) -> Option<String> {
    match backend {
        Backend::Claude => settings.claude_model.clone(),
        Backend::Codex => settings.codex_model.clone(),
    }
}

/// Why a backend would refuse a permission mode here, before any process
/// is started for it.
pub(super) fn refused_mode(backend: Backend, mode: &str) -> Option<String> {
    match backend {
        Backend::Claude => super::claude::refused_mode(mode),
        Backend::Codex => None,
    }
}

/// Starts the backend's CLI for a session. `skills` go to the CLI at once
/// (Claude: in its initialize request); `usage` is what a resumed
/// conversation has used so far (Codex replays its total).
pub(super) async fn spawn(
    backend: Backend,
    spec: &SpawnSpec,
    skills: &[String],
    usage: Usage,
) -> Result<Spawned, String> {
    let program = spec.program.display().to_string();
    match backend {
        Backend::Claude => {
            let mut claude = Claude::spawn(spec).map_err(|e| spawn_error(&program, e))?;
            // Skills reach the CLI as the SDK passes them: in initialize,
            // whose answer is also the session's metadata until a turn's init.
            let metadata_request = if skills.is_empty() {
                None
            } else {
                let id = claude
                    .initialize(skills)
                    .await
                    .map_err(|e| spawn_error(&program, e))?;
                Some(id)
            };
            Ok(Spawned {
                driver: Box::new(claude),
                agent_id: None,
                metadata_request,
            })
        }
        Backend::Codex => {
            let codex = Codex::spawn(spec, usage).await.map_err(|e| match e {
                CodexError::Io(e) => spawn_error(&program, e),
                other => other.to_string(),
            })?;
            Ok(Spawned {
                agent_id: Some(codex.thread_id.clone()),
                driver: Box::new(codex),
                metadata_request: None,
            })
        }
    }
}

fn spawn_error(program: &str, error: std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{program} was not found; install it or set its path in config.toml ([agents] claude = / codex =)"
        ),
        _ => format!("cannot start {program}: {error}"),
    }
}
