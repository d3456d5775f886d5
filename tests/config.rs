//! config.toml and the NEXSCOPE_* environment, through the real binary
//! (`nexscoped --check-config`, and a start that must refuse): every kind of
//! bad value is refused with a message naming the file or variable, the key
//! and what is allowed, and exit status 78 (EX_CONFIG).

use nexscope_tests::{Env, bin, set_mode};

/// Runs `nexscoped --check-config` with `config` as the file and `vars` set.
fn check(config: Option<&str>, vars: &[(&str, &str)]) -> (Option<i32>, String, String, Env) {
    let env = Env::new("config");
    if let Some(text) = config {
        env.write_config(text);
    }
    let mut command = env.command(bin("nexscoped"));
    command.arg("--check-config");
    for (key, value) in vars {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.code(), stdout, stderr, env)
}

/// Asserts a refusal whose message contains every one of `parts`.
fn refused(config: Option<&str>, vars: &[(&str, &str)], parts: &[&str]) -> String {
    let (code, _, stderr, env) = check(config, vars);
    assert_eq!(code, Some(78), "{stderr}");
    if config.is_some() {
        assert!(
            stderr.contains(&env.config_file().display().to_string()),
            "names the file: {stderr}"
        );
    }
    for part in parts {
        assert!(stderr.contains(part), "expected {part:?} in {stderr:?}");
    }
    stderr
}

#[test]
fn no_file_means_the_embedded_defaults() {
    let (code, stdout, _, _) = check(None, &[]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("does not exist; the embedded defaults apply"),
        "{stdout}"
    );
}

#[test]
fn a_full_valid_file_is_accepted() {
    let env = Env::new("valid");
    let token = env.root.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    set_mode(&token, 0o600);
    env.write_config(&format!(
        "relay_url = \"wss://relay.example.com/ws\"\ntoken_file = \"{}\"\ndefault_name = \"alice\"\nmode = \"auto\"\nhop_limit = 5\nmax_payload = 1048576\nmax_file = 1000\nlog_level = \"debug\"\n[peer_index]\nbob = 1\n[projects.\"/src/api\"]\nname = \"alice-api\"\nmode = \"manual\"\n",
        token.display()
    ));
    let output = env
        .command(bin("nexscoped"))
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("is valid"));
}

#[test]
fn syntax_error_names_the_line() {
    refused(
        Some("mode = \"auto\"\nhop_limit = \n"),
        &[],
        &["is not valid TOML", "line 2"],
    );
}

#[test]
fn unknown_key_lists_the_allowed_ones() {
    refused(
        Some("colour = \"blue\"\n"),
        &[],
        &["unknown key `colour`", "allowed here: relay_url, token"],
    );
    refused(
        Some("[projects.\"/p\"]\nlog_level = \"x\"\n"),
        &[],
        &["unknown key `projects.\"/p\".log_level`"],
    );
}

#[test]
fn wrong_type_says_what_type() {
    refused(
        Some("hop_limit = \"3\"\n"),
        &[],
        &[
            "key `hop_limit`",
            "\"3\" is not allowed; it must be an integer",
        ],
    );
    refused(
        Some("mode = 1\n"),
        &[],
        &["key `mode`", "it must be a string"],
    );
    refused(
        Some("projects = 1\n"),
        &[],
        &["key `projects`", "it must be a table"],
    );
}

#[test]
fn bad_mode_lists_manual_and_auto() {
    refused(
        Some("mode = \"sometimes\"\n"),
        &[],
        &["key `mode`: \"sometimes\" is not allowed; use \"manual\" or \"auto\""],
    );
}

#[test]
fn hop_limit_out_of_range_gives_the_range() {
    refused(
        Some("hop_limit = 0\n"),
        &[],
        &["key `hop_limit`: 0 is not allowed; use an integer from 1 to 100"],
    );
}

#[test]
fn sizes_out_of_range_give_the_range() {
    refused(
        Some("max_payload = 10\n"),
        &[],
        &[
            "key `max_payload`",
            "number of bytes from 65536 to 268435456",
        ],
    );
    refused(
        Some("max_file = -1\n"),
        &[],
        &["key `max_file`", "from 1 to"],
    );
}

#[test]
fn relay_url_must_be_websocket() {
    refused(
        Some("relay_url = \"https://relay.example.com/ws\"\n"),
        &[],
        &["key `relay_url`", "ws:// or wss://"],
    );
    refused(
        Some("relay_url = \"wss://REPLACE_ME/ws\"\n"),
        &[],
        &["key `relay_url`"],
    );
}

#[test]
fn name_must_match_the_v1_rule() {
    refused(
        Some("default_name = \"alice smith\"\n"),
        &[],
        &[
            "key `default_name`",
            "1 to 32 characters from a-z, A-Z, 0-9, _ and -",
        ],
    );
    refused(
        Some("default_name = \"REPLACE_ME\"\n"),
        &[],
        &["key `default_name`"],
    );
    refused(Some("[peer_index]\n\"b b\" = 1\n"), &[], &["peer_index"]);
}

#[test]
fn token_file_readable_by_others_is_refused() {
    let env = Env::new("tokenmode");
    let token = env.root.path().join("token");
    std::fs::write(&token, "s3cret").unwrap();
    set_mode(&token, 0o644);
    let stderr = refused(
        Some(&format!("token_file = \"{}\"\n", token.display())),
        &[],
        &["key `token_file`", "mode 644", "chmod 600"],
    );
    assert!(!stderr.contains("s3cret"));
}

#[test]
fn an_inline_token_in_a_config_readable_by_others_is_refused_like_a_token_file() {
    let env = Env::new("inlinemode");
    env.write_config("token = \"s3cret-token\"\n");
    set_mode(&env.config_file(), 0o644);
    let file = env.config_file().display().to_string();
    let (status, stderr) = check_in(&env);
    assert_eq!(status, Some(78));
    assert!(
        stderr.contains(&format!("{file}: key `token`"))
            && stderr.contains("mode 644 and others may read it")
            && stderr.contains(&format!("chmod 600 {file}")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // Without a token the same mode is fine; with 0600 the token is too.
    set_mode(&env.config_file(), 0o600);
    assert_eq!(check_in(&env).0, Some(0));
    env.write_config("mode = \"auto\"\n");
    set_mode(&env.config_file(), 0o644);
    assert_eq!(check_in(&env).0, Some(0));
}

/// The exit status and stderr of `nexscoped --check-config` in `env`
/// (which loads the file exactly as a starting daemon does).
fn check_in(env: &Env) -> (Option<i32>, String) {
    let output = env
        .command(bin("nexscoped"))
        .arg("--check-config")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn token_and_token_file_together_are_refused() {
    let env = Env::new("tokenboth");
    let token = env.root.path().join("token");
    std::fs::write(&token, "s3cret").unwrap();
    set_mode(&token, 0o600);
    refused(
        Some(&format!(
            "token = \"abc\"\ntoken_file = \"{}\"\n",
            token.display()
        )),
        &[],
        &["set either token or token_file, not both"],
    );
}

#[test]
fn a_bad_token_is_never_echoed() {
    let stderr = refused(
        Some("token = \"has spaces inside\"\n"),
        &[],
        &["key `token`", "without spaces"],
    );
    assert!(!stderr.contains("has spaces"), "{stderr}");
    let stderr = refused(
        None,
        &[("NEXSCOPE_TOKEN", "two words")],
        &["environment variable NEXSCOPE_TOKEN"],
    );
    assert!(!stderr.contains("two words"), "{stderr}");
}

#[test]
fn project_keys_must_be_absolute_paths() {
    refused(
        Some("[projects.\"src/api\"]\nmode = \"auto\"\n"),
        &[],
        &["absolute paths"],
    );
}

#[test]
fn environment_overrides_are_checked_and_named() {
    refused(
        None,
        &[("NEXSCOPE_MODE", "loud")],
        &[
            "environment variable NEXSCOPE_MODE: \"loud\" is not allowed; use \"manual\" or \"auto\"",
        ],
    );
    refused(
        None,
        &[("NEXSCOPE_HOP_LIMIT", "many")],
        &[
            "environment variable NEXSCOPE_HOP_LIMIT",
            "use an integer from 1 to 100",
        ],
    );
    refused(
        None,
        &[("NEXSCOPE_RELAY_URL", "relay:8080")],
        &["environment variable NEXSCOPE_RELAY_URL", "ws://"],
    );
    refused(
        None,
        &[("NEXSCOPE_MAX_PAYLOAD", "1")],
        &["environment variable NEXSCOPE_MAX_PAYLOAD"],
    );
    refused(
        None,
        &[("NEXSCOPE_MAX_FILE", "0")],
        &["environment variable NEXSCOPE_MAX_FILE"],
    );
    refused(
        None,
        &[("NEXSCOPE_DEFAULT_NAME", "a/b")],
        &["environment variable NEXSCOPE_DEFAULT_NAME"],
    );
}

#[test]
fn a_directory_as_the_config_file_is_refused() {
    let env = Env::new("configdir");
    std::fs::create_dir_all(env.config_file()).unwrap();
    let output = env
        .command(bin("nexscoped"))
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read config file"));
}

#[test]
fn the_daemon_refuses_to_start_on_a_bad_file() {
    let env = Env::new("badstart");
    env.write_config("mode = \"x\"\n");
    let output = env.command(bin("nexscoped")).output().unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("key `mode`"));
    assert!(!env.socket().exists());
}

#[test]
fn a_v1_config_json_is_imported_on_request() {
    let env = Env::new("importv1");
    let project = env.root.path().join("proj");
    let v1 = project.join(".claude/plugin-data/nexscope");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(
        v1.join("config.json"),
        r#"{"relayUrl":"wss://relay.example.com/ws","token":"t0k-secret","defaultName":"alice","mode":"auto","hopLimit":5,"peerIndexMap":{"bob":2}}"#,
    )
    .unwrap();
    env.write_config("# mine\nlog_level = \"debug\"\n");
    let project = std::fs::canonicalize(project).unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--project", project.to_str().unwrap()];
        all.extend_from_slice(args);
        env.ctl(&all)
    };
    let output = run(&["config", "import-v1"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(env.config_file()).unwrap();
    assert!(
        text.starts_with("# mine\nlog_level = \"debug\"\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("[projects.\"{}\"]", project.display())),
        "{text}"
    );
    assert!(
        text.contains("relay_url = \"wss://relay.example.com/ws\"")
            && text.contains("name = \"alice\"")
            && text.contains("hop_limit = 5"),
        "{text}"
    );
    assert!(!text.contains("t0k-secret"), "the token is not inline");
    let token_file = text
        .lines()
        .find_map(|l| l.strip_prefix("token_file = \""))
        .unwrap()
        .trim_end_matches('"');
    assert_eq!(std::fs::read_to_string(token_file).unwrap(), "t0k-secret");
    assert_eq!(
        nexscope_tests::mode_of(std::path::Path::new(token_file)) & 0o777,
        0o600
    );
    let check = env
        .command(bin("nexscoped"))
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let again = run(&["config", "import-v1"]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "nothing to do: already imported"
    );
}

#[test]
fn a_bad_v1_value_names_the_file_and_the_key() {
    let env = Env::new("importbad");
    let project = env.root.path().join("proj");
    let v1 = project.join(".claude/plugin-data/nexscope");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(
        v1.join("config.json"),
        r#"{"relayUrl":"wss://REPLACE_ME/ws","mode":"loud"}"#,
    )
    .unwrap();
    let output = env.ctl(&[
        "--project",
        project.to_str().unwrap(),
        "config",
        "import-v1",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "config.json: key `mode`: \"loud\" is not allowed; use \"manual\" or \"auto\""
        ),
        "{stderr}"
    );
    assert!(!env.config_file().exists(), "nothing written");
}

#[test]
fn agents_settings_are_checked_with_what_is_allowed() {
    refused(
        Some("[agents]\nlisten = \"0.0.0.0:43720\"\n"),
        &[],
        &["agents.listen", "loopback only"],
    );
    refused(
        Some("[agents]\npermission_mode = \"yolo\"\n"),
        &[],
        &["agents.permission_mode", "\"yolo\"", "bypassPermissions"],
    );
    refused(
        Some("[agents]\nbackend = \"gemini\"\n"),
        &[],
        &["agents.backend", "\"claude\" or \"codex\""],
    );
    refused(
        Some("[agents]\nmax_live = 0\n"),
        &[],
        &["agents.max_live", "1 to 256"],
    );
    refused(
        Some("[agents]\nidle_timeout = \"5m\"\n"),
        &[],
        &["agents.idle_timeout", "integer"],
    );
    refused(
        Some("[agents]\nmodel = \"x\"\n"),
        &[],
        &["agents.model", "claude_model"],
    );
    refused(
        Some("responder = \"robot\"\n"),
        &[],
        &["responder", "\"hooks\"", "\"agent\""],
    );
    let (code, stdout, stderr, _) = check(
        Some(
            "responder = \"agent\"\n[agents]\nbackend = \"codex\"\nmax_live = 2\nlisten = \"127.0.0.1:43720\"\nallow_unauthenticated_loopback = true\n",
        ),
        &[],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("is valid"), "{stdout}");
}
