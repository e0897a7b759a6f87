//! Credential digests: how the parsers keep a (user, password) pair without
//! keeping the password.
//!
//! A parser that sees a login (Telnet, HTTP Basic per RFC 7617, MQTT CONNECT
//! per MQTT 3.1.1 §3.1.3.5 and 5.0 §3.1.3.6) turns the pair into a
//! [`CredentialDigest`] at parse time and drops the password bytes; the rules
//! ask a dictionary of known defaults whether the digest is one of them.
//!
//! The digest is `BLAKE3 keyed_hash(DIGEST_KEY, user || 0x00 || password)`.
//! [`DIGEST_KEY`] is a public constant. Its purpose is that no file, log or
//! alert of spanwatch ever holds a cleartext password, and that the shipped
//! dictionary (`rules/default-credentials.toml`) is not a plaintext password
//! list. It does **not** protect weak passwords: anyone who has the digests
//! and this key can test a password dictionary against them, as spanwatch
//! itself does.
//!
//! The 0x00 separator keeps `("ab", "c")` and `("a", "bc")` apart as long as
//! the user name holds no NUL: MQTT forbids U+0000 in strings [MQTT-1.5.4-2],
//! RFC 7617 §2 forbids control characters in the user-id, and the Telnet line
//! assembler drops control bytes, so a NUL can only come from a malformed
//! message, and then the digest simply matches nothing.

use std::fmt;

/// A keyed digest of a (user, password) pair. Its Debug output is redacted:
/// it is never logged or written in an alert.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialDigest(pub [u8; 32]);

impl fmt::Debug for CredentialDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialDigest(..)")
    }
}

/// The BLAKE3 key of every credential digest. Public by design; see the
/// module documentation for what it does and does not protect.
pub const DIGEST_KEY: [u8; 32] = *b"spanwatch-credential-digest-key1";

/// Digest of a (user, password) pair; `&str` and `&[u8]` both work.
pub fn digest(user: impl AsRef<[u8]>, password: impl AsRef<[u8]>) -> CredentialDigest {
    let mut hasher = CredentialHasher::new();
    hasher.update(user.as_ref());
    hasher.end_user();
    hasher.update(password.as_ref());
    hasher.finish()
}

/// Computes a [`digest`] from pieces, for parsers that decode a credential
/// byte by byte (HTTP Basic's base64) and should not buffer the password.
///
/// Bytes given to [`update`](Self::update) belong to the user name until
/// [`end_user`](Self::end_user), then to the password. Its Debug output is
/// redacted.
#[derive(Clone)]
pub struct CredentialHasher {
    hasher: blake3::Hasher,
    in_password: bool,
}

impl CredentialHasher {
    /// A hasher at the start of the user name.
    pub fn new() -> Self {
        CredentialHasher {
            hasher: blake3::Hasher::new_keyed(&DIGEST_KEY),
            in_password: false,
        }
    }

    /// Appends bytes to the user name or, after [`end_user`](Self::end_user),
    /// to the password.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Ends the user name: what follows is the password. Later calls do nothing.
    pub fn end_user(&mut self) {
        if !self.in_password {
            self.hasher.update(&[0]);
            self.in_password = true;
        }
    }

    /// The digest; a user name never ended counts as one with an empty password.
    pub fn finish(mut self) -> CredentialDigest {
        self.end_user();
        CredentialDigest(*self.hasher.finalize().as_bytes())
    }
}

impl Default for CredentialHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CredentialHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialHasher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &CredentialDigest) -> String {
        d.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    const ROOT_XC3511: &str = "ca7edf43813ab8d9ec2db4bedaea4eeb5afa5a3e81ba321155c1ca027a7cc024";

    #[test]
    fn digest_matches_an_independent_blake3() {
        // Expected values from Python's blake3 package:
        // blake3.blake3(b"root\0xc3511", key=b"spanwatch-credential-digest-key1").hexdigest()
        assert_eq!(hex(&digest("root", "xc3511")), ROOT_XC3511);
        // Empty user and password: the input is the single separator byte.
        assert_eq!(
            hex(&digest("", "")),
            "eea31bae91af8b2914e391d607f6135d88165422e3de76211fd3d3971233d566"
        );
    }

    #[test]
    fn digest_is_deterministic_and_separates_user_from_password() {
        assert_eq!(digest("admin", "admin"), digest("admin", "admin"));
        assert_eq!(digest("admin", b"admin"), digest(b"admin", "admin"));
        assert_ne!(digest("ab", "c"), digest("a", "bc"));
        assert_ne!(digest("root", ""), digest("", "root"));
        assert_ne!(digest("admin", "admin"), digest("admin", "Admin"));
        // Keyed: not the plain BLAKE3 hash of the same input.
        assert_ne!(
            digest("root", "xc3511").0,
            *blake3::hash(b"root\0xc3511").as_bytes()
        );
    }

    #[test]
    fn hasher_in_pieces_equals_digest() {
        let mut h = CredentialHasher::new();
        for b in b"root" {
            h.update(std::slice::from_ref(b));
        }
        h.end_user();
        h.end_user(); // a second call adds nothing
        for b in b"xc3511" {
            h.update(std::slice::from_ref(b));
        }
        assert_eq!(h.finish(), digest("root", "xc3511"));
        let mut h = CredentialHasher::new();
        h.update(b"admin");
        assert_eq!(h.finish(), digest("admin", ""));
        assert_eq!(
            format!("{:?}", CredentialHasher::new()),
            "CredentialHasher(..)"
        );
    }
}
