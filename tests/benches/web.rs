//! The web page's figures, measured in Debian's headless chromium: page
//! load (navigation start to the first message on screen, from the page's
//! own performance timeline), a message said on another daemon to its
//! appearance on the page (p50/p99 over 200), and the daemon's RSS with the
//! page open on 5 projects.
//!
//!   cargo build --release --workspace && cargo bench -p nexscope-tests --bench web
//!
//! Prints figures; asserts nothing (the machine is shared and noisy).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nexscope_proto::varlink::client::Connection;
use nexscope_tests::browser::{self, Browser};
use nexscope_tests::relay::Relay;
use nexscope_tests::rooms::Member;
use nexscope_tests::web::{self, login_url};
use nexscope_tests::{percentile, rss_kib};
use serde_json::{Value, json};

const LOADS: usize = 10;
const MESSAGES: usize = 200;
const PROJECTS: usize = 5;

/// Records, in the page, when each message text first shows: epoch ms
/// with the browser's sub-millisecond clock.
const OBSERVE: &str = "
window.seen = {};
new MutationObserver(() => {
  const now = performance.timeOrigin + performance.now();
  for (const t of document.querySelectorAll('.msg .text')) {
    if (!(t.textContent in window.seen)) window.seen[t.textContent] = now;
  }
}).observe(document.querySelector('#timeline'), { childList: true, subtree: true });";

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1e3
}

fn main() {
    let Some((chromium, driver)) = browser::programs() else {
        return;
    };
    let relay = Relay::start(&[]);
    let alice = Member::with_env("webbench-a", &relay.url, "", |_| web::daemon_env());
    let bob = Member::new("webbench-b", &relay.url, "");
    alice.start("alice");
    bob.start("bob");
    std::thread::sleep(Duration::from_millis(300));
    let mut say = Connection::connect(&bob.env.socket(), Some(Duration::from_secs(10))).unwrap();
    let bob_project = bob.project.to_str().unwrap().to_string();
    let mut said = |text: &str| {
        let _: Value = say
            .call(
                "io.nexscope.Chat.Say",
                json!({ "project": bob_project, "text": text, "to": ["alice"] }),
            )
            .unwrap();
    };
    for i in 0..50 {
        said(&format!("warm-up {i}"));
    }

    // 1. Page load.
    let page = Browser::start(&chromium, &driver, 1280, 900);
    let loaded = |page: &Browser| -> f64 {
        let mark = "const m = performance.getEntriesByName('timeline'); return m.length ? m[0].startTime : null;";
        page.wait_for(mark, json!([]), Duration::from_millis(20))
            .as_f64()
            .unwrap_or_default()
    };
    page.goto(&login_url(&alice.env));
    let first = loaded(&page);
    let home = page.url();
    let mut loads = Vec::new();
    for _ in 0..LOADS {
        page.goto("about:blank");
        page.goto(&home);
        loads.push(Duration::from_secs_f64(loaded(&page) / 1e3));
    }
    loads.sort();

    // 2. Another daemon says, the page shows.
    page.run(OBSERVE, json!([]));
    let mut latencies = Vec::new();
    for i in 0..MESSAGES {
        let text = format!("bench message {i}");
        let sent = epoch_ms();
        said(&text);
        let shown = page
            .wait_for(
                "return window.seen[arguments[0]] || null;",
                json!([text]),
                Duration::from_millis(2),
            )
            .as_f64()
            .unwrap_or_default();
        latencies.push(Duration::from_secs_f64(((shown - sent) / 1e3).max(0.0)));
    }
    latencies.sort();

    // 3. RSS with the page open on 5 projects, each with a timeline.
    let alice_pid = alice.daemon.as_ref().unwrap().pid();
    let mut projects = vec![alice.project.to_str().unwrap().to_string()];
    for i in 1..PROJECTS {
        let dir = alice.env.root.path().join(format!("p{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = std::fs::canonicalize(dir)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        alice
            .env
            .ctl_ok(&["--project", &dir, "start", "-n", &format!("alice{i}")]);
        projects.push(dir);
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(alice_pid);
    let origin = home.split('#').next().unwrap_or_default().to_string();
    for (i, project) in projects.iter().enumerate() {
        if i > 0 {
            page.new_tab();
        }
        page.goto(&format!("{origin}#{}", project.replace('/', "%2F")));
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(1));
    let open = rss_kib(alice_pid);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| figure | value |\n|---|---|");
    println!(
        "| page load through the login link, to the first message on screen | {first:.0} ms |"
    );
    println!(
        "| page load, logged in, to the first message on screen (p50 / max of {LOADS}) | {:.0} / {:.0} ms |",
        ms(percentile(&loads, 0.5)),
        ms(*loads.last().unwrap())
    );
    println!(
        "| message said on another daemon → on the page, p50 ({MESSAGES} messages) | {:.1} ms |",
        ms(percentile(&latencies, 0.5))
    );
    println!("| same, p99 | {:.1} ms |", ms(percentile(&latencies, 0.99)));
    println!(
        "| daemon RSS, {PROJECTS} projects joined, no page | {:.1} MiB |",
        before as f64 / 1024.0
    );
    println!(
        "| daemon RSS, the page open on each of the {PROJECTS} projects (5 tabs) | {:.1} MiB |",
        open as f64 / 1024.0
    );
}
