//! A real browser for the web page's tests: Debian's chromium, headless,
//! driven by Debian's chromedriver over the W3C WebDriver protocol (what
//! Selenium speaks), with a client small enough to read here.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::TempDir;
use crate::http;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for the page lasts at most.
pub const PAGE_WAIT: Duration = Duration::from_secs(20);

/// The chromium and chromedriver to use, or the test fails with the install
/// hint (group `browser`).
pub fn programs() -> Option<(PathBuf, PathBuf)> {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let driver = Some(PathBuf::from("/usr/bin/chromedriver")).filter(|p| p.is_file());
    let present = chromium.is_some() && driver.is_some();
    crate::prereq::require(
        "browser",
        present,
        "Debian's chromium and chromedriver are not installed (sudo apt-get install chromium chromium-driver)",
    )
    .then(|| (chromium.unwrap_or_default(), driver.unwrap_or_default()))
}

/// A chromedriver and one headless chromium session, ended when dropped.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: TempDir,
}

impl Browser {
    /// A browser with a window of `width`×`height` CSS pixels.
    pub fn start(chromium: &Path, chromedriver: &Path, width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let up = Instant::now();
        while http::request(
            addr,
            "GET",
            "/status",
            &[("Host", "127.0.0.1")],
            b"",
            Duration::from_secs(1),
        )
        .is_err()
        {
            assert!(
                up.elapsed() < PAGE_WAIT,
                "chromedriver did not answer on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = TempDir::new("chromium");
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let created = browser.post(
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        browser
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.exchange(method, path, body);
        assert!(
            status == 200,
            "WebDriver {method} {path} failed ({status}): {value}"
        );
        value["value"].clone()
    }

    /// One WebDriver command: the HTTP status and the JSON answer.
    fn exchange(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![("Host", "127.0.0.1")];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        let response = http::request(
            self.addr,
            method,
            path,
            &headers,
            body.as_bytes(),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let value: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, value)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.send("POST", path, Some(body))
    }

    fn session_post(&self, path: &str, body: Value) -> Value {
        self.send(
            "POST",
            &format!("/session/{}{path}", self.session),
            Some(body),
        )
    }

    pub fn goto(&self, url: &str) {
        self.session_post("/url", json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.send("GET", &format!("/session/{}/url", self.session), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.session_post("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Runs an async script: it calls `arguments[arguments.length - 1]`
    /// with its result.
    pub fn run_async(&self, script: &str, args: Value) -> Value {
        self.session_post("/execute/async", json!({ "script": script, "args": args }))
    }

    /// The first element matching `css`, waiting for it to be there.
    pub fn find(&self, css: &str) -> String {
        let path = format!("/session/{}/element", self.session);
        let started = Instant::now();
        loop {
            let (status, found) = self.exchange(
                "POST",
                &path,
                Some(json!({ "using": "css selector", "value": css })),
            );
            if let Some(id) = found["value"][ELEMENT].as_str().filter(|_| status == 200) {
                return id.to_string();
            }
            assert!(
                started.elapsed() < PAGE_WAIT,
                "no element {css} on the page: {found}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the first element matching `css`.
    pub fn click(&self, css: &str) {
        self.act(css, "click", json!({}));
    }

    /// Types `text` into the element as keystrokes.
    pub fn type_into(&self, css: &str, text: &str) {
        self.act(css, "value", json!({ "text": text }));
    }

    /// Runs an element command on the first element matching `css`. The
    /// page redraws lists as they change (the sessions table every few
    /// seconds): an element gone between finding and acting is found again.
    fn act(&self, css: &str, command: &str, body: Value) {
        for _ in 0..10 {
            let element = self.find(css);
            let path = format!("/session/{}/element/{element}/{command}", self.session);
            let (status, answer) = self.exchange("POST", &path, Some(body.clone()));
            if status == 200 {
                return;
            }
            assert!(
                answer["value"]["error"] == "stale element reference",
                "{command} on {css} failed ({status}): {answer}"
            );
        }
        panic!("{css} kept being redrawn before it could be used");
    }

    /// Empties an input, then types `text` into it.
    pub fn replace_text(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.session_post(&format!("/element/{element}/clear"), json!({}));
        self.session_post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
    }

    /// Sets a file input's file.
    pub fn choose_file(&self, css: &str, path: &Path) {
        self.type_into(css, &path.display().to_string());
    }

    /// The text of every element matching `css`.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let value = self.run(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);",
            json!([css]),
        );
        serde_json::from_value(value).unwrap_or_default()
    }

    /// Runs `script` every `every` until it returns something other than
    /// null (at most `PAGE_WAIT`); that value.
    pub fn wait_for(&self, script: &str, args: Value, every: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script, args.clone());
            if !value.is_null() {
                return value;
            }
            assert!(
                started.elapsed() < PAGE_WAIT,
                "the page never answered {script}"
            );
            std::thread::sleep(every);
        }
    }

    /// Waits until some element matching `css` has `needle` in its text;
    /// that text.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(found) = self.texts(css).into_iter().find(|t| t.contains(needle)) {
                return found;
            }
            assert!(
                started.elapsed() < PAGE_WAIT,
                "no {css} with {needle:?} on the page; there are: {:?}",
                self.texts(css)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let data = self.send(
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Opens a new tab and switches to it.
    pub fn new_tab(&self) {
        let opened = self.session_post("/window/new", json!({ "type": "tab" }));
        let handle = opened["handle"]
            .as_str()
            .expect("a window handle")
            .to_string();
        self.session_post("/window", json!({ "handle": handle }));
    }

    pub fn resize(&self, width: u32, height: u32) {
        self.session_post("/window/rect", json!({ "width": width, "height": height }));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = http::request(
                self.addr,
                "DELETE",
                &path,
                &[("Host", "127.0.0.1")],
                b"",
                Duration::from_secs(10),
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
