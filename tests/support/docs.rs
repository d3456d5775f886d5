//! Man pages and shell completions, generated from the clap definitions of
//! both binaries plus the written sections in `man/sections/`. The checked-in
//! copies under `man/` and `packaging/completions/` must equal what this
//! makes (a test checks); `cargo run -p nexscope-tests --bin gen-docs`
//! rewrites them.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

/// Pages carry a fixed date so that regenerating them changes nothing.
const DATE: &str = "2026-11-22";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn section_text(root: &Path, page: &str) -> String {
    std::fs::read_to_string(root.join("man/sections").join(format!("{page}.roff")))
        .unwrap_or_default()
}

fn render(cmd: clap::Command, title: &str, section: &str, extra: &str) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .title(title)
        .section(section)
        .date(DATE)
        .source(format!("nexscope {}", env!("CARGO_PKG_VERSION")))
        .manual("nexscope")
        .render(&mut out)
        .expect("render a man page");
    let mut page = tidy(&String::from_utf8_lossy(&out));
    page.push_str(extra);
    page.into_bytes()
}

/// clap_mangen leaves blank lines (which roff reads as `.sp`) next to `.br`
/// around the lists of possible values; mandoc -Tlint warns about each.
/// Drop the blank lines and any `.br` that follows another line break.
fn tidy(page: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in page.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if line == ".br"
            && out.last().is_some_and(|prev| {
                *prev == ".br" || prev.starts_with(".TP") || prev.starts_with(".SH")
            })
        {
            continue;
        }
        out.push(line);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// Every generated file: (path relative to the repository, contents).
pub fn generate() -> Vec<(PathBuf, Vec<u8>)> {
    let root = repo_root();
    let mut files = Vec::new();

    let daemon = nexscope::cli::Cli::command();
    let relay = daemon
        .find_subcommand("relay")
        .cloned()
        .expect("relay subcommand")
        .name("nexscope-relay")
        .bin_name("nexscoped relay");
    files.push((
        PathBuf::from("man/nexscoped.8"),
        render(
            daemon.clone(),
            "NEXSCOPED",
            "8",
            &section_text(&root, "nexscoped.8"),
        ),
    ));
    files.push((
        PathBuf::from("man/nexscope-relay.8"),
        render(
            relay,
            "NEXSCOPE-RELAY",
            "8",
            &section_text(&root, "nexscope-relay.8"),
        ),
    ));

    let ctl = nexscopectl::Cli::command();
    files.push((
        PathBuf::from("man/nexscopectl.1"),
        render(
            ctl.clone(),
            "NEXSCOPECTL",
            "1",
            &section_text(&root, "nexscopectl.1"),
        ),
    ));
    for sub in ctl.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("nexscopectl-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("nexscopectl {}", sub.get_name()));
        files.push((
            PathBuf::from(format!("man/{name}.1")),
            render(page, &name.to_uppercase(), "1", ""),
        ));
    }

    for (mut cmd, name) in [
        (nexscopectl::Cli::command(), "nexscopectl"),
        (nexscope::cli::Cli::command(), "nexscoped"),
    ] {
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, name, &mut out);
            files.push((PathBuf::from("packaging/completions").join(file), out));
        }
    }
    files
}
