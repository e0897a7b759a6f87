//! Keyed pseudonyms for the identifying values of a dataset: MAC addresses,
//! IP addresses and names become `mac-…`, `ip-…` and `name-…` followed by
//! hex of a keyed BLAKE3 hash. The same value gives the same pseudonym under
//! one key (so files of many runs join on them), another key gives unrelated
//! ones, and without the key they cannot be turned back nor recomputed from
//! a guessed address.
//!
//! The 32-byte BLAKE3 key is derived from the whole content of a key file
//! (`blake3::derive_key` with [`KEY_CONTEXT`]), so any file of enough random
//! bytes is a key: `head -c 32 /dev/urandom > dataset.key`.

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use super::DatasetError;

/// Context string of the key derivation (BLAKE3 `derive_key`): globally
/// unique, fixed for this use.
pub const KEY_CONTEXT: &str = "spanwatch 2025-06 dataset pseudonyms v1";
/// Fewest bytes a key file may hold.
pub const MIN_KEY_BYTES: usize = 16;
/// Largest key file read.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;
/// Bytes of hash in a pseudonym (96 bits: no collision among millions).
pub const PSEUDONYM_BYTES: usize = 12;

/// What a pseudonym stands for; part of the hashed input, so a MAC and a
/// name with the same bytes get different pseudonyms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mac,
    Ip,
    Name,
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Kind::Mac => 1,
            Kind::Ip => 2,
            Kind::Name => 3,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Mac => "mac-",
            Kind::Ip => "ip-",
            Kind::Name => "name-",
        }
    }
}

/// Replaces identifying values by keyed pseudonyms.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: [u8; 32],
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer { key: <hidden> }")
    }
}

impl Pseudonymizer {
    /// The key of a key file (its whole content is the key material).
    pub fn from_key_file(path: &Path) -> Result<Self, DatasetError> {
        let fail = |reason: String| DatasetError::Key {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let mut material = Vec::new();
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut material)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if material.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(fail(format!(
                "larger than {MAX_KEY_FILE_BYTES} bytes: is it the right file?"
            )));
        }
        Self::from_material(&material).map_err(fail)
    }

    /// The key derived from `material` (at least [`MIN_KEY_BYTES`] bytes).
    pub fn from_material(material: &[u8]) -> Result<Self, String> {
        if material.len() < MIN_KEY_BYTES {
            return Err(format!(
                "holds {} bytes, a key needs at least {MIN_KEY_BYTES} (make one with: head -c 32 /dev/urandom > KEYFILE)",
                material.len()
            ));
        }
        Ok(Pseudonymizer {
            key: blake3::derive_key(KEY_CONTEXT, material),
        })
    }

    fn pseudonym(&self, kind: Kind, value: &[u8]) -> String {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&[kind.tag()]);
        hasher.update(value);
        let hash = hasher.finalize();
        let mut out = String::with_capacity(kind.prefix().len() + 2 * PSEUDONYM_BYTES);
        out.push_str(kind.prefix());
        for b in &hash.as_bytes()[..PSEUDONYM_BYTES] {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    pub fn mac(&self, mac: [u8; 6]) -> String {
        self.pseudonym(Kind::Mac, &mac)
    }

    /// An IPv4-mapped IPv6 address is the IPv4 address it maps.
    pub fn ip(&self, ip: IpAddr) -> String {
        match ip.to_canonical() {
            IpAddr::V4(v4) => self.pseudonym(Kind::Ip, &v4.octets()),
            IpAddr::V6(v6) => self.pseudonym(Kind::Ip, &v6.octets()),
        }
    }

    pub fn name(&self, name: &str) -> String {
        self.pseudonym(Kind::Name, name.as_bytes())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(byte: u8) -> Pseudonymizer {
        Pseudonymizer::from_material(&[byte; 32]).expect("key")
    }

    #[test]
    fn a_pseudonym_is_the_keyed_blake3_hash_of_kind_and_value() {
        // Recomputed here from the blake3 crate's documented API, not from
        // the code under test: derive_key(context, material), then
        // keyed_hash(key, tag || value), first 12 bytes as hex.
        let derived = blake3::derive_key(KEY_CONTEXT, &[7u8; 32]);
        let mac = [0x02, 0x77, 0, 0, 0, 0x0a];
        let mut input = vec![1u8];
        input.extend_from_slice(&mac);
        let hash = blake3::keyed_hash(&derived, &input);
        let hex: String = hash.as_bytes()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(key(7).mac(mac), format!("mac-{hex}"));
    }

    #[test]
    fn stable_for_one_key_different_across_keys_and_kinds() {
        let (a, b) = (key(1), key(2));
        let ip = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 10));
        assert_eq!(a.ip(ip), key(1).ip(ip));
        assert_ne!(a.ip(ip), b.ip(ip));
        assert_ne!(a.name("cam1"), b.name("cam1"));
        // The four bytes of an IPv4 address as a name are another value.
        assert_ne!(a.ip(ip)[3..], a.name("\u{a}M\0\u{a}")[5..]);
        let mapped: IpAddr = "::ffff:10.77.0.10".parse().expect("v6");
        assert_eq!(a.ip(mapped), a.ip(ip));
        assert!(a.mac([2, 0, 0, 0, 0, 1]).starts_with("mac-"));
        assert_eq!(a.name("x").len(), "name-".len() + 2 * PSEUDONYM_BYTES);
    }

    #[test]
    fn a_short_or_missing_key_file_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("spanwatch-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let short = dir.join("short.key");
        std::fs::write(&short, "secret\n").expect("write");
        let e = Pseudonymizer::from_key_file(&short)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("short.key") && e.contains("holds 7 bytes"),
            "{e}"
        );
        let e = Pseudonymizer::from_key_file(&dir.join("none.key"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.key") && e.contains("cannot open"), "{e}");
        let good = dir.join("good.key");
        std::fs::write(&good, [9u8; 32]).expect("write");
        let from_file = Pseudonymizer::from_key_file(&good).expect("valid key");
        assert_eq!(from_file.name("hub"), key(9).name("hub"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
