//! The checked-in man pages and completions are what the code generates, and
//! every man page passes `mandoc -Tlint` without a warning.

use std::process::Command;

use nexscope_tests::docs::{generate, repo_root};

#[test]
fn generated_man_pages_and_completions_are_up_to_date() {
    let root = repo_root();
    let mut stale = Vec::new();
    for (path, contents) in generate() {
        match std::fs::read(root.join(&path)) {
            Ok(current) if current == contents => {}
            _ => stale.push(path.display().to_string()),
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run `cargo run -p nexscope-tests --bin gen-docs`): {stale:?}"
    );
}

#[test]
fn every_man_page_passes_mandoc_lint() {
    if !nexscope_tests::prereq::program("docs", "mandoc", "mandoc") {
        return;
    }
    let mut pages: Vec<_> = std::fs::read_dir(repo_root().join("man"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    pages.sort();
    assert!(pages.len() >= 4);
    for page in pages {
        let output = Command::new("mandoc")
            .args(["-Tlint", "-W", "warning"])
            .arg(&page)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && report.trim().is_empty(),
            "{}: {report}",
            page.display()
        );
    }
}

#[test]
fn completions_name_the_subcommands() {
    let bash = std::fs::read_to_string(repo_root().join("packaging/completions/nexscopectl.bash"))
        .unwrap();
    for sub in ["start", "say", "inbox", "daemon", "completions"] {
        assert!(bash.contains(sub), "{sub}");
    }
}
