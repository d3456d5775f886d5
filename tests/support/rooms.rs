//! Room fixtures: members, each a daemon with its own XDG directories and a
//! project directory, configured for one relay; and the lines a person sees.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::relay::TOKEN;
use crate::{Daemon, Env, WAIT, bin, call};

pub struct Member {
    pub env: Env,
    pub daemon: Option<Daemon>,
    pub project: PathBuf,
    /// Lines seen so far through Notifications (consumer "test").
    pub lines: Vec<String>,
}

impl Member {
    /// A daemon whose config points at `relay_url` with the shared token.
    pub fn new(tag: &str, relay_url: &str, extra_config: &str) -> Member {
        Member::with_env(tag, relay_url, extra_config, |_| Vec::new())
    }

    /// `new`, with `daemon_env(env)` added to the daemon's environment.
    pub fn with_env(
        tag: &str,
        relay_url: &str,
        extra_config: &str,
        daemon_env: impl FnOnce(&Env) -> Vec<(String, String)>,
    ) -> Member {
        let env = Env::new(tag);
        env.write_config(&format!(
            "relay_url = \"{relay_url}\"\ntoken = \"{TOKEN}\"\n{extra_config}"
        ));
        let project = env.root.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        let project = std::fs::canonicalize(project).unwrap();
        let daemon = Some(env.daemon_with(&daemon_env(&env)));
        Member {
            env,
            daemon,
            project,
            lines: Vec::new(),
        }
    }

    /// nexscopectl with `--project` set.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut all = vec!["--project", self.project.to_str().unwrap()];
        all.extend_from_slice(args);
        self.env.ctl(&all)
    }

    /// Like `ctl`, asserting success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let mut all = vec!["--project", self.project.to_str().unwrap()];
        all.extend_from_slice(args);
        self.env.ctl_ok(&all)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("--json prints JSON")
    }

    pub fn start(&self, name: &str) -> String {
        self.ok(&["start", "-n", name])
    }

    /// Varlink call to io.nexscope.Chat.<method> for this project.
    pub fn chat(&self, method: &str, mut params: Value) -> Value {
        params["project"] = json!(self.project.to_str().unwrap());
        call(
            &self.env.socket(),
            &format!("io.nexscope.Chat.{method}"),
            params,
        )
        .expect("chat call")
    }

    /// Waits until a notification line contains `needle`; returns it.
    pub fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.lines.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let reply = self.chat("Notifications", json!({"consumer": "test"}));
            if let Some(events) = reply["parameters"]["events"].as_array() {
                for event in events {
                    self.lines
                        .push(nexscope_proto::render::render(&event["row"]));
                }
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {WAIT:?}; saw {:#?}",
                self.lines
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.child.kill();
            let _ = daemon.child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.daemon = Some(self.env.daemon());
    }
}

impl Drop for Member {
    /// A test may have had nexscopectl restart the daemon (detached, not our
    /// child): stop whatever serves this member's socket.
    fn drop(&mut self) {
        if self.env.socket().exists() {
            let _ = self.env.ctl(&["--no-autostart", "daemon", "stop"]);
        }
    }
}

/// Runs a hook with `input` on stdin and `vars` added to its environment.
pub fn hook_with(
    env: &Env,
    input: &Value,
    which: &str,
    vars: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut child = env
        .command(bin("nexscopectl"))
        .args(["hook", which])
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}
