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
/// when there is no display to open it on.
fn open(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        return false;
    };
    Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}
