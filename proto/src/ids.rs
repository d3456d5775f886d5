//! Random identifiers, once for every part of the daemon: message ids
//! (v1's clients use UUIDs), Claude session and prompt ids, turn ids.

/// A random (version 4) UUID.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    // getrandom only fails without an entropy source; an id is still made.
    let _ = getrandom::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    dashed(&hex(&b), &[8, 4, 4, 4, 12])
}

/// `bytes` random bytes as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let _ = getrandom::fill(&mut buf);
    hex(&buf)
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short, stable name for a path or key (12 hex digits of its SHA-256):
/// per-project token files, per-session watcher slots.
pub fn short_hash(text: &str) -> String {
    sha256_hex(text.as_bytes())[..12].to_string()
}

/// SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// `hex` cut into groups of these lengths, joined by dashes (UUIDs, nx-ce's
/// machine id).
pub fn dashed(hex: &str, groups: &[usize]) -> String {
    let mut parts = Vec::with_capacity(groups.len());
    let mut at = 0;
    for len in groups {
        parts.push(hex.get(at..at + len).unwrap_or(""));
        at += len;
    }
    parts.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (uuid_v4(), uuid_v4());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }
}
