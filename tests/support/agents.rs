//! A daemon hosting agent sessions of the real `claude` or `codex` against a
//! [`MockModel`]: the world of the agent and gateway tests.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use crate::agent_clis::{claude_bin, claude_env, codex_bin, codex_env};
use crate::mock_model::MockModel;
use crate::{Daemon, Env, Raw};

/// Agent tests run one at a time: each starts real agent CLIs, and two
/// cores do not run several of them side by side in bounded time.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long one turn against the mock may take (a cold claude start is
/// about half a second).
pub const TURN_WAIT: Duration = Duration::from_secs(60);

pub struct AgentWorld {
    pub mock: MockModel,
    pub env: Env,
    /// The directory sessions run in by default.
    pub work: PathBuf,
    agent_env: Vec<(String, String)>,
}

impl AgentWorld {
    /// None (with the reason printed) when the backend's binary is missing.
    /// `extra` is added to the `[agents]` section of config.toml.
    pub fn new(tag: &str, backend: &str, extra: &str) -> Option<AgentWorld> {
        let (claude, codex) = match backend {
            "claude" => (Some(claude_bin()?), codex_bin()),
            _ => (claude_bin(), Some(codex_bin()?)),
        };
        Some(AgentWorld::with_programs(
            tag, backend, claude, codex, extra,
        ))
    }

    /// A world whose daemon runs these programs as `claude` and `codex`.
    pub fn with_programs(
        tag: &str,
        backend: &str,
        claude: Option<PathBuf>,
        codex: Option<PathBuf>,
        extra: &str,
    ) -> AgentWorld {
        let mock = MockModel::start();
        let env = Env::new(tag);
        let home = env.root.path().join("home");
        let work = env.root.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let mut agent_env = claude_env(&mock, &home);
        agent_env.extend(codex_env(&mock, &home));
        let mut config = format!(
            "[agents]\nbackend = \"{backend}\"\ncwd = \"{}\"\n",
            work.display()
        );
        if let Some(path) = claude {
            config.push_str(&format!("claude = \"{}\"\n", path.display()));
        }
        if let Some(path) = codex {
            config.push_str(&format!("codex = \"{}\"\n", path.display()));
        }
        config.push_str(extra);
        env.write_config(&config);
        AgentWorld {
            mock,
            env,
            work,
            agent_env,
        }
    }

    pub fn daemon(&self) -> Daemon {
        self.env.daemon_with(&self.agent_env)
    }

    /// The daemon, with `extra` in its environment too.
    pub fn daemon_plus(&self, extra: &[(String, String)]) -> Daemon {
        let mut env = self.agent_env.clone();
        env.extend_from_slice(extra);
        self.env.daemon_with(&env)
    }

    /// The daemon, without `variable` in what its agents inherit.
    pub fn daemon_without(&self, variable: &str) -> Daemon {
        let env: Vec<(String, String)> = self
            .agent_env
            .iter()
            .filter(|(name, _)| name != variable)
            .cloned()
            .collect();
        self.env.daemon_with(&env)
    }

    /// A directory under the world, created.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.env.root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::canonicalize(dir).unwrap()
    }

    /// One varlink call; its reply (possibly an error reply).
    pub fn call(&self, method: &str, parameters: Value) -> Value {
        crate::call(&self.env.socket(), method, parameters).expect("call the daemon")
    }

    /// A Query, streamed to its end: every event, or the error reply.
    pub fn query(&self, parameters: Value) -> Result<Vec<Value>, Value> {
        let mut raw = Raw::connect(&self.env.socket()).expect("connect");
        raw.stream.set_read_timeout(Some(TURN_WAIT)).unwrap();
        raw.send_call(
            json!({"method": "io.nexscope.Agent.Query", "parameters": parameters, "more": true}),
        )
        .unwrap();
        let mut events = Vec::new();
        loop {
            let reply = raw.reply().expect("the query stream ended without done");
            if reply.get("error").is_some() {
                return Err(reply);
            }
            events.push(reply["parameters"]["event"].clone());
            if reply.get("continues") != Some(&Value::Bool(true)) {
                return Ok(events);
            }
        }
    }

    /// A query that must succeed with a `done` without error.
    pub fn ask(&self, parameters: Value) -> Vec<Value> {
        let events = self
            .query(parameters.clone())
            .unwrap_or_else(|e| panic!("query {parameters} refused: {e}"));
        let done = done(&events);
        assert!(
            done.get("error").is_none(),
            "turn {parameters} failed: {done}"
        );
        events
    }
}

/// The texts of a turn, joined.
pub fn text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "text")
        .filter_map(|e| e["content"].as_str())
        .collect::<Vec<_>>()
        .join("")
}

pub fn done(events: &[Value]) -> &Value {
    let last = events.last().expect("a turn has events");
    assert_eq!(last["type"], "done", "the last event is done: {events:?}");
    last
}

/// The pids whose parent is `pid` (a daemon's agent processes).
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("PPid:"))
                        .and_then(|v| v.trim().parse::<i32>().ok())
                })
                == Some(pid)
        })
        .collect()
}

/// The directive the mock answered a request with: the last one in the
/// last user message (Anthropic `messages`, OpenAI Responses `input`).
pub fn answered_directive(request: &crate::mock_model::Request) -> Option<String> {
    let entries = request
        .body
        .get("messages")
        .or_else(|| request.body.get("input"))?
        .as_array()?;
    let last_user = entries
        .iter()
        .rev()
        .find(|e| e.get("role").and_then(Value::as_str) == Some("user"))?;
    let text = last_user.get("content")?.to_string();
    let at = text.rfind("[[mock:")?;
    let end = text[at..].find("]]")? + at + 2;
    Some(text[at..end].to_string())
}

/// The mock's requests (history included) that hold `needle`.
pub fn requests_with(mock: &MockModel, needle: &str) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.body.to_string().contains(needle))
        .count()
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}
