//! `nexscopectl web`: a one-time login link to the daemon's page, opened in
//! the browser when there is a display.

use std::process::{Command, Stdio};

use nexscope_proto::api::Empty;
use nexscope_proto::api::daemon::{Method, WebLoginOut};
use serde_json::json;

use crate::connect::{Control, Options};
use crate::exit::CtlError;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct WebArgs {
    /// Only print the link; do not start a browser.
    #[arg(long)]
    pub no_open: bool,
}

pub fn run(args: &WebArgs, options: &Options, out: Output) -> Result<(), CtlError> {
    let mut control = Control::open(options)?;
    let login: WebLoginOut = control.connection.request(&Method::WebLogin(Empty {}))?;
    let opened = !args.no_open && open(&login.url);
    out.result(
        &json!({ "url": login.url, "expiresIn": login.expires_in, "opened": opened }),
        || {
            let how = if opened { "Opening" } else { "Open" };
            format!(
                "{how} this link in a browser on this machine; it works once, within {} s:\n  {}",
                login.expires_in, login.url
            )
        },
    );
    Ok(())
}

/// Starts the desktop's browser on `url` without waiting for it; false
/// when there is no display to open it on. The browser gets a file that
/// redirects to the link, not the link itself: a command line is readable
/// by every user of the machine, a 0600 file is not.
fn open(url: &str) -> bool {
    let Some(page) = redirect_file(url) else {
        return false;
    };
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        return false;
    };
    Command::new(opener)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}

/// A private page that sends the browser on to `url`.
fn redirect_file(url: &str) -> Option<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = nexscope_proto::paths::runtime_dir();
    nexscope_proto::paths::ensure_private_dir(&dir).ok()?;
    let path = dir.join("web-login.html");
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .ok()?;
    // The URL is ours (hex token, address): nothing in it needs escaping.
    let html = format!(
        "<!doctype html><meta http-equiv=\"refresh\" content=\"0; url={url}\"><a href=\"{url}\">nexscope</a>\n"
    );
    file.write_all(html.as_bytes()).ok()?;
    Some(path)
}
