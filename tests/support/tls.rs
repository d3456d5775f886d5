//! A self-signed certificate for 127.0.0.1 and localhost, made by openssl.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// (certificate, key) in `dir`, the key 0600; None when the person skips
/// the `tls` group, a failure with the install hint when openssl is
/// missing.
pub fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status();
    if !crate::prereq::require(
        "tls",
        made.is_ok_and(|s| s.success()),
        "openssl could not make a certificate (Debian package openssl)",
    ) {
        return None;
    }
    crate::set_mode(&key, 0o600);
    Some((cert, key))
}
