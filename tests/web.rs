//! The web page, end to end: the real daemons and a relay, the page in
//! Debian's headless chromium, and what a hostile page or a stale link
//! would try. Screenshots go to target/web-screenshots; the README's
//! picture is the room one.

use std::path::PathBuf;
use std::time::Duration;

use nexscope_tests::agents::{AgentWorld, requests_with, serial};
use nexscope_tests::browser::{self, Browser};
use nexscope_tests::http;
use nexscope_tests::relay::Relay;
use nexscope_tests::rooms::Member;
use nexscope_tests::web::{
    self, Login, bridge, bridge_call, get, login, login_url, login_with, send_url, split,
};
use nexscope_tests::{bin, wait_until};
use serde_json::{Value, json};

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots")
}

/// alice (whose page it is) and bob, in one room, each seeing the other.
fn alice_and_bob(relay: &Relay, tag: &str) -> (Member, Member) {
    let mut alice = Member::with_env(&format!("{tag}a"), &relay.url, "", |_| web::daemon_env());
    let bob = Member::with_env(&format!("{tag}b"), &relay.url, "", |_| web::daemon_env());
    alice.start("alice");
    bob.start("bob");
    alice.wait_line("bob joined");
    (alice, bob)
}

fn history_texts(member: &Member) -> Vec<String> {
    member.chat("History", json!({"limit": 500}))["parameters"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str().map(String::from))
        .collect()
}

#[test]
fn the_page_follows_the_room_live_and_acts_in_it() {
    let Some((chromium, driver)) = browser::programs() else {
        return;
    };
    let relay = Relay::start(&[]);
    let (alice, bob) = alice_and_bob(&relay, "page");
    let page = Browser::start(&chromium, &driver, 1280, 900);

    // The link logs in once and lands on the page.
    let url = login_url(&alice.env);
    page.goto(&url);
    let (_, host, _) = split(&url);
    // On the page, showing the room (its project in the address's fragment).
    wait_until(|| page.url().starts_with(&format!("http://{host}/#")));
    page.wait_text("#room-title", "project");
    page.wait_text("#members .member", "bob");
    assert!(
        page.texts("#members .member")
            .iter()
            .any(|m| m.contains("alice"))
    );

    // What bob says shows up without a reload, with the label the hooks show.
    bob.ok(&["say", "@alice", "can you review the parser change?"]);
    page.wait_text(".msg.in .text", "can you review the parser change?");
    let label = page.wait_text(".msg.in .label", "bob");
    assert!(
        label.starts_with("[user") && label.ends_with(" bob]"),
        "{label}"
    );
    assert_eq!(
        page.run(
            "return performance.getEntriesByType('navigation').length",
            json!([])
        ),
        json!(1),
        "no reload"
    );

    // Peer text is text: markup in it is shown, never run.
    bob.ok(&["say", "<img src=x onerror=\"window.pwned=1\"><b>bold?</b>"]);
    page.wait_text(
        ".msg.in .text",
        "<img src=x onerror=\"window.pwned=1\"><b>bold?</b>",
    );
    assert_eq!(
        page.run(
            "return document.querySelectorAll('#timeline img, #timeline .text b').length",
            json!([])
        ),
        json!(0)
    );
    assert_eq!(
        page.run("return window.pwned === undefined", json!([])),
        json!(true)
    );

    // The mention is in the inbox: accepted from the page, with extra text.
    page.click("button[data-tab=inbox]");
    page.wait_text("#inbox .inbox-item.pending", "parser change");
    page.type_into("#inbox .extra", "focus on the error paths");
    page.click("#inbox button.accept");
    wait_until(|| {
        let inbox = alice.chat("Inbox", json!({}));
        inbox["parameters"]["pending"] == 0
            && inbox["parameters"]["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| {
                    i["text"] == "can you review the parser change?" && i["status"] == "accepted"
                })
    });
    page.wait_text("#inbox-done .inbox-item", "accepted");

    // Another one is rejected with a reason, which reaches bob.
    bob.ok(&["say", "@alice", "and rewrite the lexer?"]);
    page.wait_text("#inbox .inbox-item.pending", "rewrite the lexer");
    page.replace_text("#inbox .extra", "not this week");
    page.click("#inbox button.reject");
    wait_until(|| {
        history_texts(&bob)
            .iter()
            .any(|t| t.contains("not this week"))
    });
    page.wait_text("#inbox-done .inbox-item", "rejected");

    // Typed on the page, with @mention completion from the member list.
    page.click("button[data-tab=timeline]");
    page.type_into("#say-text", "@b");
    page.wait_text("#mention-list li", "@bob");
    page.type_into("#say-text", "\u{E004}"); // Tab completes
    assert_eq!(
        page.run(
            "return document.querySelector('#say-text').value",
            json!([])
        ),
        json!("@bob ")
    );
    page.type_into("#say-text", "yes, on it\u{E007}"); // Enter sends
    wait_until(|| history_texts(&bob).iter().any(|t| t == "yes, on it"));
    let sent = bob.chat("History", json!({}))["parameters"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"] == "yes, on it")
        .cloned()
        .unwrap();
    assert_eq!(sent["from"], "alice");
    assert_eq!(sent["to"], json!(["bob"]));
    assert_eq!(sent["role"], "user", "a person on the page speaks as user");
    // Its delivery receipt, per recipient, on the message.
    page.wait_text(".msg.out .receipt", "bob: stored");

    // A file from bob: name, size and sha256 on the page, and the download
    // is the same bytes.
    let file = bob.env.root.path().join("notes.txt");
    std::fs::write(&file, "line one\nline two\n").unwrap();
    bob.ok(&[
        "say",
        "--file",
        file.to_str().unwrap(),
        "@alice",
        "the notes",
    ]);
    let sha = "sha256 ".to_string() + &nexscope_proto::ids::sha256_hex(b"line one\nline two\n");
    page.wait_text(".msg.in .file .sha", &sha);
    // The link comes once the file has arrived whole and been checked.
    page.find(".msg.in .file a");
    page.wait_text(".msg.in .file .checked", "checked on arrival");
    let downloaded = page.run_async(
        "const done = arguments[arguments.length - 1];
         fetch(document.querySelector('.msg.in .file a').href).then(r => r.text()).then(done, e => done('failed: ' + e));",
        json!([]),
    );
    assert_eq!(downloaded, json!("line one\nline two\n"));

    // A file uploaded from the page reaches bob, intact.
    let upload = alice.env.root.path().join("plan.md");
    std::fs::write(&upload, "# plan\n1. parse\n").unwrap();
    page.choose_file("#say-file", &upload);
    page.type_into("#say-text", "@bob the plan");
    page.click("#say-send");
    wait_until(|| {
        bob.chat("Files", json!({}))["parameters"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| {
                f["name"] == "plan.md"
                    && f["sha256"] == nexscope_proto::ids::sha256_hex(b"# plan\n1. parse\n")
            })
    });
    // The upload's copy is removed once sent.
    let uploads = alice.env.runtime_dir().join("nexscope/web-uploads");
    wait_until(|| uploads.read_dir().unwrap().next().is_none());

    // The mode switch is the room's.
    page.run("const s = document.querySelector('#mode'); s.value = 'auto'; s.dispatchEvent(new Event('change'));", json!([]));
    wait_until(|| alice.chat("Status", json!({}))["parameters"]["state"]["mode"] == "auto");
    page.run("const s = document.querySelector('#mode'); s.value = 'manual'; s.dispatchEvent(new Event('change'));", json!([]));
    wait_until(|| alice.chat("Status", json!({}))["parameters"]["state"]["mode"] == "manual");

    bob.ok(&["say", "@alice", "thanks, merging after CI"]);
    page.wait_text(".msg.in .text", "merging after CI");
    page.screenshot(&screenshots().join("room.png"));

    // A phone-sized window: the same page, the project picker instead of the
    // side bar, nothing wider than the screen.
    page.resize(390, 844);
    wait_until(|| {
        page.run("return window.innerWidth", json!([]))
            .as_u64()
            .unwrap_or(0)
            <= 400
    });
    let fits = page.run(
        "return document.documentElement.scrollWidth <= window.innerWidth",
        json!([]),
    );
    assert_eq!(
        fits,
        json!(true),
        "no sideways scrolling on a narrow window"
    );
    assert_eq!(
        page.run(
            "return getComputedStyle(document.querySelector('#projects')).display",
            json!([])
        ),
        json!("none")
    );
    page.screenshot(&screenshots().join("room-narrow.png"));
}

#[test]
fn an_agent_query_streams_from_the_page_and_cancel_stops_it() {
    let Some((chromium, driver)) = browser::programs() else {
        return;
    };
    let _serial = serial();
    let Some(world) = AgentWorld::new("pagequery", "claude", "") else {
        return;
    };
    let _daemon = world.daemon_plus(&web::daemon_env());
    let page = Browser::start(&chromium, &driver, 1280, 900);
    page.goto(&login_url(&world.env));
    wait_until(|| {
        page.run("return !document.querySelector('#app').hidden", json!([])) == json!(true)
    });
    page.click("button[data-tab=sessions]");

    // Events stream in as the agent makes them: the tool call shows while
    // the tool still runs, its answer after.
    page.replace_text("#q-session", "pagework");
    page.type_into("#q-prompt", "[[mock:tool sleep 3; echo slept]]");
    page.click("#q-run");
    page.wait_text("#q-out", "[tool Bash]");
    assert!(
        !page.texts("#q-out")[0].contains("tool done"),
        "shown before the turn ends"
    );
    assert_eq!(page.texts("#q-state")[0], "running");
    page.wait_text("#q-out", "tool done");
    let state = page.wait_text("#q-state", "done");
    assert!(state.contains("tokens") && state.contains('$'), "{state}");
    let row = page.wait_text("#sessions tbody tr", "pagework");
    assert!(row.contains("claude") && row.contains('$'), "{row}");

    // Cancel stops a running turn.
    page.type_into("#q-prompt", "[[mock:hold]]");
    page.click("#q-run");
    wait_until(|| requests_with(&world.mock, "[[mock:hold]]") == 1);
    page.wait_text("#q-state", "running");
    std::thread::sleep(Duration::from_millis(300)); // the CLI reads the start of the reply
    page.click("#q-cancel");
    page.wait_text("#q-state", "cancelled");
    let usage = world.call(
        "io.nexscope.Agent.Usage",
        json!({"session": "pagework", "cwd": world.work, "turns": 5}),
    );
    let turns = usage["parameters"]["turns"].as_array().unwrap().clone();
    assert_eq!(turns.len(), 2, "{usage}");
    assert!(turns.iter().any(|t| t["cancelled"] == true), "{usage}");
    let status = world.call(
        "io.nexscope.Agent.Status",
        json!({"session": "pagework", "cwd": world.work}),
    );
    assert_eq!(
        status["parameters"]["session"]["processing"], false,
        "{status}"
    );

    // Per-turn usage on the page.
    page.click("#sessions tbody tr[data-session=pagework] button:nth-of-type(2)");
    page.wait_text("#turns h3", "Turns of pagework");
    assert_eq!(page.texts("#turns tbody tr").len(), 2);
    page.screenshot(&screenshots().join("sessions.png"));
}

/// A request to the page with these headers (Host is the page's unless
/// given).
fn send(
    login: &Login,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> http::Response {
    let (addr, host, _) = split(&login.url);
    let mut all: Vec<(&str, &str)> = Vec::new();
    if !headers.iter().any(|(n, _)| *n == "Host") {
        all.push(("Host", &host));
    }
    all.extend_from_slice(headers);
    http::request(addr, method, path, &all, body, Duration::from_secs(10))
        .expect("the page answers")
}

fn no_cors(response: &http::Response) {
    assert!(
        response
            .headers
            .iter()
            .all(|(n, _)| !n.starts_with("access-control-")),
        "{:?}",
        response.headers
    );
}

#[test]
fn stale_links_foreign_hosts_and_origins_and_missing_cookies_are_refused() {
    let relay = Relay::start(&[]);
    let (alice, _bob) = alice_and_bob(&relay, "guard");
    // A link previewed (HEAD) is not used up.
    let url = login_url(&alice.env);
    assert_eq!(send_url(&url, "HEAD").status, 200);
    let page = login_with(&url);
    let (url, cookie, key) = (page.url.clone(), page.cookie.clone(), page.key.clone());
    let (_, host, path) = split(&url);
    let own = format!("http://{host}");
    let both = [
        ("Cookie", cookie.as_str()),
        ("X-Nexscope-Key", key.as_str()),
    ];

    // The link worked once; again it is refused and sets no cookie.
    let again = get(&url, &path, &[]);
    assert_eq!(again.status, 403);
    assert!(again.header("set-cookie").is_none());
    assert!(again.text().contains("nexscopectl web"), "{}", again.text());

    // The cookie is HttpOnly and SameSite=Strict.
    let fresh = login_url(&alice.env);
    let set = get(&fresh, &split(&fresh).2, &[]);
    let set_cookie = set.header("set-cookie").unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );

    // Logged in (cookie and page key), the API answers; with either alone,
    // a wrong one or neither, it does not. The cookie alone is what another
    // local user's server on another port of 127.0.0.1 could collect.
    assert_eq!(send(&page, "GET", "/api/me", &both, b"").status, 200);
    for headers in [
        vec![("Cookie", cookie.as_str())],
        vec![("X-Nexscope-Key", key.as_str())],
        vec![
            ("Cookie", "nexscope_session=0000"),
            ("X-Nexscope-Key", key.as_str()),
        ],
        vec![("Cookie", cookie.as_str()), ("X-Nexscope-Key", "0000")],
        vec![],
    ] {
        let response = send(&page, "GET", "/api/me", &headers, b"");
        assert_eq!(response.status, 401, "{headers:?}");
        assert!(response.header("content-security-policy").is_some());
    }
    assert_eq!(
        get(&url, "/api/file?project=/x&msgId=y", &[("Cookie", &cookie)]).status,
        401
    );
    assert_eq!(bridge(&url, &key, &[("Origin", &own)]).err(), Some(401));
    assert_eq!(
        bridge(&url, "", &[("Origin", &own), ("Cookie", &cookie)]).err(),
        Some(401)
    );

    // DNS rebinding: another name for 127.0.0.1 is refused, logged in or not.
    let port = split(&url).0.port();
    for bad in [
        format!("evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        "127.0.0.1:1".into(),
    ] {
        let mut headers = vec![("Host", bad.as_str())];
        headers.extend_from_slice(&both);
        let response = send(&page, "GET", "/api/me", &headers, b"");
        assert_eq!(response.status, 421, "Host {bad}");
        assert!(response.header("content-security-policy").is_some());
    }
    assert_eq!(
        get(&url, "/", &[("Host", "localhost")]).status,
        400,
        "a second Host header is not a way around it"
    );

    // A foreign Origin on a POST: refused, and nothing is sent. So is an
    // OPTIONS preflight (no CORS here).
    let before = history_texts(&alice).len();
    let upload = format!(
        "/api/upload?project={}&name=x.txt&to=bob",
        alice.project.display()
    );
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    for origin in [
        "http://evil.example",
        "null",
        "http://localhost:1",
        other_port.as_str(),
    ] {
        let mut headers = vec![("Origin", origin)];
        headers.extend_from_slice(&both);
        let response = send(&page, "POST", &upload, &headers, b"payload");
        assert_eq!(response.status, 403, "Origin {origin}");
        no_cors(&response);
    }
    assert_eq!(
        send(&page, "POST", &upload, &both, b"payload").status,
        403,
        "a POST without Origin"
    );
    let preflight = send(
        &page,
        "OPTIONS",
        &upload,
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_ne!(preflight.status / 100, 2, "{}", preflight.status);
    no_cors(&preflight);
    let mut foreign = vec![("Origin", "http://evil.example")];
    foreign.extend_from_slice(&both);
    assert_eq!(send(&page, "POST", "/logout", &foreign, b"").status, 403);
    assert_eq!(
        send(&page, "GET", "/api/me", &both, b"").status,
        200,
        "the session survived"
    );
    // And the WebSocket upgrade: foreign, another port's, missing or right Origin.
    for origin in ["http://evil.example", other_port.as_str()] {
        assert_eq!(
            bridge(&url, &key, &[("Origin", origin), ("Cookie", &cookie)]).err(),
            Some(403),
            "{origin}"
        );
    }
    assert_eq!(bridge(&url, &key, &[("Cookie", &cookie)]).err(), Some(403));
    assert_eq!(history_texts(&alice).len(), before, "nothing was sent");

    // An upload to a project without a room: refused before its body is
    // kept, and nothing stays behind.
    let mut own_origin = vec![("Origin", own.as_str())];
    own_origin.extend_from_slice(&both);
    let roomless = alice.env.root.path().join("roomless");
    std::fs::create_dir_all(&roomless).unwrap();
    let nowhere = send(
        &page,
        "POST",
        &format!("/api/upload?project={}&name=x.txt", roomless.display()),
        &own_origin,
        b"payload",
    );
    assert_eq!(nowhere.status, 422, "{}", nowhere.text());
    assert!(nowhere.text().contains("NotJoined"), "{}", nowhere.text());
    let uploads = alice.env.runtime_dir().join("nexscope/web-uploads");
    assert!(!uploads.exists() || uploads.read_dir().unwrap().next().is_none());

    // The page's own origin, cookie and key: the bridge works, and opens
    // only the page's methods.
    let mut ws = bridge(&url, &key, &[("Origin", &own), ("Cookie", &cookie)])
        .expect("the page's own bridge");
    let refused = bridge_call(&mut ws, 1, "io.nexscope.Daemon.Shutdown", json!({}));
    assert_eq!(
        refused["error"], "org.varlink.service.MethodNotFound",
        "{refused}"
    );
    let secret = alice.env.root.path().join("config/nexscope/config.toml");
    let file = bridge_call(
        &mut ws,
        2,
        "io.nexscope.Chat.Say",
        json!({"project": alice.project, "file": secret, "to": ["bob"]}),
    );
    assert_eq!(
        file["error"], "org.varlink.service.InvalidParameter",
        "{file}"
    );
    assert_eq!(file["parameters"]["parameter"], "file");
    let bad = bridge_call(
        &mut ws,
        3,
        "io.nexscope.Chat.Mode",
        json!({"project": alice.project, "mode": "sometimes"}),
    );
    assert!(
        bad["parameters"]["message"]
            .as_str()
            .unwrap()
            .contains("manual"),
        "a bad value is explained as on the socket: {bad}"
    );
    let said = bridge_call(
        &mut ws,
        4,
        "io.nexscope.Chat.Say",
        json!({"project": alice.project, "text": "over the bridge", "to": ["bob"]}),
    );
    assert_eq!(said["parameters"]["delivered"], json!(["bob"]), "{said}");
    assert_eq!(
        alice.chat("Status", json!({}))["parameters"]["state"]["mode"],
        "manual"
    );

    // Every response carries the CSP and no CORS.
    let index = get(&url, "/", &[("Origin", "http://evil.example")]);
    assert_eq!(index.status, 200);
    let csp = index.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    no_cors(&index);

    // Logging out ends the session, and the page open with it.
    assert_eq!(send(&page, "POST", "/logout", &own_origin, b"").status, 204);
    assert_eq!(send(&page, "GET", "/api/me", &both, b"").status, 401);
    let closed = (0..100).find_map(|_| match ws.read() {
        Ok(tungstenite::Message::Close(frame)) => Some(frame.map(|f| u16::from(f.code))),
        Ok(_) => None,
        Err(_) => Some(None),
    });
    assert_eq!(closed, Some(Some(1008)), "the open page is closed");
}

#[test]
fn an_expired_link_is_refused() {
    let env = nexscope_tests::Env::new("webexpire");
    let _daemon = env.daemon_with(&web::daemon_env());
    let url = login_url(&env);
    // A fresh link of this daemon works (so the refusal below is the expiry).
    login(&env);
    std::thread::sleep(Duration::from_secs(61));
    let response = get(&url, &split(&url).2, &[]);
    assert_eq!(response.status, 403);
    assert!(response.header("set-cookie").is_none());
}

#[test]
fn a_page_off_loopback_needs_tls_and_an_explicit_allow() {
    let env = nexscope_tests::Env::new("webremote");
    let check = |extra: &[(&str, &str)]| {
        env.command(bin("nexscoped"))
            .arg("--check-config")
            .envs(extra.iter().copied())
            .output()
            .unwrap()
    };
    let refused = check(&[("NEXSCOPE_WEB_LISTEN", "0.0.0.0:43721")]);
    assert_eq!(refused.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("loopback only") && stderr.contains("allow_remote"),
        "{stderr}"
    );
    env.write_config("[web]\nlisten = \"0.0.0.0:43721\"\nallow_remote = true\n");
    let refused = check(&[]);
    assert_eq!(refused.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("key `web.listen`"));
    env.write_config("[web]\nlisten = \"127.0.0.1:43721\"\nbogus = 1\n");
    assert_eq!(check(&[]).status.code(), Some(78));
    env.write_config("[web]\nlisten = \"off\"\n");
    assert_eq!(check(&[]).status.code(), Some(0));
    // Off: nexscopectl web says so.
    let _daemon = env.daemon();
    let out = env.ctl(&["web", "--no-open"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not serve") && stderr.contains("off"),
        "{stderr}"
    );
    let status = env.ctl_ok(&["--json", "status"]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert!(status.get("web").is_none(), "{status}");
}

#[test]
fn over_tls_the_login_is_the_same_and_the_cookie_is_secure() {
    let env = nexscope_tests::Env::new("webtls");
    let Some((cert, key)) = nexscope_tests::tls::self_signed(env.root.path()) else {
        return;
    };
    if !nexscope_tests::prereq::program("tls", "curl", "curl") {
        return;
    }
    // Off loopback it would need allow_remote too (checked without binding).
    let remote = format!(
        "[web]\nlisten = \"0.0.0.0:43721\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nallow_remote = true\nhost = \"localhost\"\n",
        cert.display(),
        key.display()
    );
    env.write_config(&remote);
    let checked = env
        .command(bin("nexscoped"))
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    env.write_config(&format!(
        "[web]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let _daemon = env.daemon();
    let url = env.ctl_ok(&["--json", "web", "--no-open"]);
    let url: Value = serde_json::from_str(&url).unwrap();
    let url = url["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let curl = |url: &str| {
        let out = env
            .command("curl")
            .args(["-s", "-i", "--max-time", "10", "--cacert"])
            .arg(&cert)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let response = curl(&url);
    assert!(response.starts_with("HTTP/1.1 303"), "{response}");
    let cookie = response
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain http on that port gets no HTTP answer at all.
    let plain = curl(&url.replace("https://", "http://"));
    assert!(!plain.contains("HTTP/"), "{plain}");
}

#[test]
fn nexscopectl_web_opens_the_browser_without_the_link_on_a_command_line() {
    let env = nexscope_tests::Env::new("webopen");
    let _daemon = env.daemon_with(&web::daemon_env());
    // A stand-in xdg-open that writes down what it was given.
    let bin_dir = env.root.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let seen = env.root.path().join("opened");
    let opener = bin_dir.join("xdg-open");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$@\" > {}\n", seen.display()),
    )
    .unwrap();
    nexscope_tests::set_mode(&opener, 0o755);
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env
        .command(bin("nexscopectl"))
        .args(["--json", "web"])
        .env("PATH", path)
        .env("DISPLAY", ":0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(said["opened"], true, "{said}");
    let url = said["url"].as_str().unwrap();
    wait_until(|| {
        seen.exists()
            && !std::fs::read_to_string(&seen)
                .unwrap_or_default()
                .is_empty()
    });
    let argument = std::fs::read_to_string(&seen).unwrap();
    let page = argument
        .trim()
        .strip_prefix("file://")
        .expect("a file, not the link");
    assert!(
        !argument.contains("token="),
        "the token is not on the command line: {argument}"
    );
    assert_eq!(
        nexscope_tests::mode_of(std::path::Path::new(page)) & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(page).unwrap().contains(url),
        "the file sends the browser on"
    );
    // And the link in it logs in.
    assert_eq!(login_with(url).url, url);
}
