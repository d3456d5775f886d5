//! Logging: to journald when systemd connected our stderr to the journal
//! (`JOURNAL_STREAM` names stderr's device and inode), else plain lines on
//! stderr. Never logs tokens or message text; callers log names and sizes.

use std::os::fd::AsFd;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

pub fn parse_level(level: &str) -> Option<LevelFilter> {
    match level {
        "error" => Some(LevelFilter::ERROR),
        "warn" => Some(LevelFilter::WARN),
        "info" => Some(LevelFilter::INFO),
        "debug" => Some(LevelFilter::DEBUG),
        "trace" => Some(LevelFilter::TRACE),
        _ => None,
    }
}

/// True when stderr is the journal stream systemd set up for us.
fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr().as_fd()) else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(stat.st_dev) && ino.parse::<u64>().ok() == Some(stat.st_ino)
}

/// Installs the global subscriber; `identifier` is the syslog identifier in
/// the journal (`journalctl --user -t nexscoped`).
pub fn init(level: LevelFilter, identifier: &str) {
    let journald = if stderr_is_journal() {
        tracing_journald::layer()
            .ok()
            .map(|layer| layer.with_syslog_identifier(identifier.to_string()))
    } else {
        None
    };
    let fmt = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(nix::unistd::isatty(std::io::stderr().as_fd()).unwrap_or(false))
            .with_target(false)
    });
    let _ = tracing_subscriber::registry()
        .with(level)
        .with(journald)
        .with(fmt)
        .try_init();
}
