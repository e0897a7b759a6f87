//! Known default credentials, recognised by keyed digest (passwords are never kept).
//!
//! Issue 5: a login with a well-known default credential on Telnet, HTTP Basic
//! (RFC 7617) or MQTT CONNECT (MQTT 3.1.1 §3.1.3.5, 5.0 §3.1.3.6) is a finding
//! of its own (OWASP IoT Top 10 I1 "Weak, Guessable, or Hardcoded Passwords",
//! ETSI EN 303 645 provision 5.1-1). The parsers turn each (user, password)
//! pair they see into a [`CredentialDigest`] at parse time and drop the
//! password bytes; the rule engine asks a [`Dictionary`] whether the digest is
//! a known default.
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
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

pub use super::event::CredentialDigest;

/// The BLAKE3 key of every credential digest. Public by design; see the
/// module documentation for what it does and does not protect.
pub const DIGEST_KEY: [u8; 32] = *b"spanwatch-credential-digest-key1";

/// Name of the dictionary file in a rules directory.
pub const DEFAULT_FILE_NAME: &str = "default-credentials.toml";

/// Largest dictionary file read, in bytes.
pub const MAX_DICTIONARY_BYTES: u64 = 1 << 20;

/// Most entries in one dictionary.
pub const MAX_DICTIONARY_ENTRIES: usize = 10_000;

/// Longest user name of a dictionary entry, in bytes.
pub const MAX_USER_BYTES: usize = 64;

/// Hexadecimal digits of a digest in the dictionary file.
const DIGEST_HEX_LEN: usize = 64;

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

/// Why a dictionary could not be loaded. Every variant names the file.
#[derive(Debug, Error)]
pub enum CredentialsError {
    #[error("cannot read credential dictionary {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "credential dictionary {} is larger than {max} bytes (MAX_DICTIONARY_BYTES)",
        path.display()
    )]
    TooLarge { path: PathBuf, max: u64 },
    #[error(
        "credential dictionary {} is not a list of [[credential]] tables with keys user, digest, source: {message}",
        path.display()
    )]
    Syntax { path: PathBuf, message: String },
    #[error(
        "credential dictionary {} has more than {max} entries (MAX_DICTIONARY_ENTRIES)",
        path.display()
    )]
    TooManyEntries { path: PathBuf, max: usize },
    #[error("credential dictionary {}, line {line} (entry {entry}): {problem}", path.display())]
    Entry {
        path: PathBuf,
        /// 1-based line of the entry's `[[credential]]` header.
        line: usize,
        /// 1-based position of the entry in the file.
        entry: usize,
        problem: EntryProblem,
    },
}

/// What is wrong with one dictionary entry.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EntryProblem {
    #[error(
        "digest must be {DIGEST_HEX_LEN} hexadecimal digits (a BLAKE3 keyed hash), not {len} characters"
    )]
    DigestLength { len: usize },
    #[error("digest has a character that is not a hexadecimal digit")]
    DigestNotHex,
    #[error("source must be \"mirai\" or \"vendor:<name>\" (name without spaces), not {0:?}")]
    Source(String),
    #[error("user name is longer than {MAX_USER_BYTES} bytes (MAX_USER_BYTES)")]
    UserTooLong,
    #[error("user name contains a NUL character")]
    UserHasNul,
    #[error("same digest as entry {first}")]
    Duplicate { first: usize },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    credential: Vec<toml::Spanned<EntryDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    user: String,
    digest: String,
    source: String,
}

/// A set of known default credentials: digests with their user names.
#[derive(Clone, Default)]
pub struct Dictionary {
    users: HashMap<CredentialDigest, String>,
}

impl Dictionary {
    /// A dictionary that knows nothing (no default-credential findings).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Reads and validates a dictionary file (at most [`MAX_DICTIONARY_BYTES`]).
    pub fn load(path: &Path) -> Result<Dictionary, CredentialsError> {
        let read_error = |source| CredentialsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut text = String::new();
        file.take(MAX_DICTIONARY_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > MAX_DICTIONARY_BYTES {
            return Err(CredentialsError::TooLarge {
                path: path.to_path_buf(),
                max: MAX_DICTIONARY_BYTES,
            });
        }
        Self::parse(path, &text)
    }

    /// Validates a dictionary held in memory; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Dictionary, CredentialsError> {
        let doc: FileDoc = toml::from_str(text).map_err(|e| CredentialsError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if doc.credential.len() > MAX_DICTIONARY_ENTRIES {
            return Err(CredentialsError::TooManyEntries {
                path: path.to_path_buf(),
                max: MAX_DICTIONARY_ENTRIES,
            });
        }
        let mut users = HashMap::with_capacity(doc.credential.len());
        let mut first_entry = HashMap::with_capacity(doc.credential.len());
        for (index, spanned) in doc.credential.into_iter().enumerate() {
            let entry = index + 1;
            let line = line_of(text, spanned.span().start);
            let fail = |problem| CredentialsError::Entry {
                path: path.to_path_buf(),
                line,
                entry,
                problem,
            };
            let e = spanned.into_inner();
            let digest = parse_digest(&e.digest).map_err(fail)?;
            check_source(&e.source).map_err(fail)?;
            if e.user.len() > MAX_USER_BYTES {
                return Err(fail(EntryProblem::UserTooLong));
            }
            if e.user.contains('\0') {
                return Err(fail(EntryProblem::UserHasNul));
            }
            if let Some(&first) = first_entry.get(&digest) {
                return Err(fail(EntryProblem::Duplicate { first }));
            }
            first_entry.insert(digest, entry);
            users.insert(digest, e.user);
        }
        Ok(Dictionary { users })
    }

    /// Whether `digest` is a known default credential.
    pub fn contains(&self, digest: &CredentialDigest) -> bool {
        self.users.contains_key(digest)
    }

    /// The user name of a known default credential.
    pub fn user_of(&self, digest: &CredentialDigest) -> Option<&str> {
        self.users.get(digest).map(String::as_str)
    }

    /// Number of known credentials.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dictionary")
            .field("entries", &self.users.len())
            .finish()
    }
}

/// 1-based line number of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    let before = text.get(..at).unwrap_or(text);
    before.bytes().filter(|&b| b == b'\n').count() + 1
}

fn parse_digest(hex: &str) -> Result<CredentialDigest, EntryProblem> {
    let digits = hex.as_bytes();
    if digits.len() != DIGEST_HEX_LEN {
        return Err(EntryProblem::DigestLength {
            len: hex.chars().count(),
        });
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (Some(hi), Some(lo)) = (
            pair.first().and_then(|&d| hex_value(d)),
            pair.get(1).and_then(|&d| hex_value(d)),
        ) else {
            return Err(EntryProblem::DigestNotHex);
        };
        *byte = hi << 4 | lo;
    }
    Ok(CredentialDigest(out))
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn check_source(source: &str) -> Result<(), EntryProblem> {
    let valid = source == "mirai"
        || source
            .strip_prefix("vendor:")
            .is_some_and(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()));
    if valid {
        Ok(())
    } else {
        Err(EntryProblem::Source(source.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &CredentialDigest) -> String {
        d.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn shipped() -> Dictionary {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../rules/default-credentials.toml"
        ));
        match Dictionary::load(path) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    fn parse(text: &str) -> Result<Dictionary, CredentialsError> {
        Dictionary::parse(Path::new("test.toml"), text)
    }

    fn entry_problem(text: &str) -> (usize, usize, EntryProblem) {
        match parse(text) {
            Err(CredentialsError::Entry {
                line,
                entry,
                problem,
                ..
            }) => (line, entry, problem),
            other => panic!("expected an entry error, got {other:?}"),
        }
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

    #[test]
    fn shipped_dictionary_knows_public_defaults() {
        let d = shipped();
        // Mirai scanner.c: root/xc3511, root/vizxv, admin/admin, root/root,
        // root with an empty password; vendor defaults pi/raspberry (Raspberry
        // Pi OS before 2022), admin/public (EMQX dashboard), linksys ""/admin.
        for (user, password) in [
            ("root", "xc3511"),
            ("root", "vizxv"),
            ("admin", "admin"),
            ("root", "root"),
            ("root", ""),
            ("pi", "raspberry"),
            ("admin", "public"),
            ("", "admin"),
        ] {
            let dg = digest(user, password);
            assert!(d.contains(&dg), "{user}/{password} missing");
            assert_eq!(d.user_of(&dg), Some(user));
        }
        for (user, password) in [
            ("root", "not-a-default"),
            ("root", "xc3512"),
            ("toor", "root"),
        ] {
            let dg = digest(user, password);
            assert!(!d.contains(&dg));
            assert_eq!(d.user_of(&dg), None);
        }
        // 61 distinct Mirai pairs (62 table rows, guest/12345 twice) and 40
        // vendor pairs not already in Mirai's table.
        assert_eq!(d.len(), 101);
        assert_eq!(format!("{d:?}"), "Dictionary { entries: 101 }");
    }

    #[test]
    fn shipped_dictionary_holds_no_cleartext_password() {
        let text = include_str!("../../../rules/default-credentials.toml");
        for password in [
            "xc3511", "vizxv", "7ujMko0", "xmhdipc", "juantech", "tluafed", "calvin",
        ] {
            assert!(!text.contains(password), "{password} in cleartext");
        }
        // Only the three keys of an entry are allowed (deny_unknown_fields).
        let with_password = "[[credential]]\nuser = \"root\"\npassword = \"root\"\n\
            digest = \"ca7edf43813ab8d9ec2db4bedaea4eeb5afa5a3e81ba321155c1ca027a7cc024\"\nsource = \"mirai\"\n";
        assert!(matches!(
            parse(with_password),
            Err(CredentialsError::Syntax { .. })
        ));
    }

    #[test]
    fn empty_and_blank_dictionaries() {
        let d = Dictionary::empty();
        assert!(d.is_empty());
        assert_eq!(d.len(), 0);
        assert!(!d.contains(&digest("root", "xc3511")));
        let d = parse("# nothing yet\n").map_err(|e| e.to_string());
        assert_eq!(d.map(|d| d.len()), Ok(0));
    }

    #[test]
    fn entry_errors_name_line_and_entry() {
        let good = format!(
            "[[credential]]\nuser = \"root\"\ndigest = \"{ROOT_XC3511}\"\nsource = \"mirai\"\n"
        );
        let text = format!(
            "# header\n{good}\n[[credential]]\nuser = \"admin\"\ndigest = \"abc\"\nsource = \"mirai\"\n"
        );
        assert_eq!(
            entry_problem(&text),
            (7, 2, EntryProblem::DigestLength { len: 3 })
        );
        let not_hex = ROOT_XC3511.replace('c', "g");
        let text = format!(
            "[[credential]]\nuser = \"root\"\ndigest = \"{not_hex}\"\nsource = \"mirai\"\n"
        );
        assert_eq!(entry_problem(&text), (1, 1, EntryProblem::DigestNotHex));
        for source in ["vendor:", "botnet", "vendor:two words"] {
            let text = good.replace("\"mirai\"", &format!("{source:?}"));
            assert_eq!(
                entry_problem(&text),
                (1, 1, EntryProblem::Source(source.into()))
            );
        }
        let text = good.replace(
            "\"root\"",
            &format!("\"{}\"", "u".repeat(MAX_USER_BYTES + 1)),
        );
        assert_eq!(entry_problem(&text), (1, 1, EntryProblem::UserTooLong));
        let text = good.replace("\"root\"", "\"ro\\u0000ot\"");
        assert_eq!(entry_problem(&text), (1, 1, EntryProblem::UserHasNul));
        let text = format!("{good}{good}");
        assert_eq!(
            entry_problem(&text),
            (5, 2, EntryProblem::Duplicate { first: 1 })
        );
        // Upper-case hex is the same digest.
        let upper = good.replace(ROOT_XC3511, &ROOT_XC3511.to_uppercase());
        assert_eq!(
            parse(&format!("{good}{upper}"))
                .err()
                .map(|e| e.to_string()),
            Some(
                "credential dictionary test.toml, line 5 (entry 2): same digest as entry 1".into()
            )
        );
    }

    #[test]
    fn syntax_errors_and_missing_keys() {
        for text in [
            "[[credential]]\nuser = \"root\"\n",
            "[[credential]\nuser = \"root\"\n",
            "[[credentials]]\nuser = \"root\"\n",
            "credential = 3\n",
        ] {
            let err = parse(text).err();
            assert!(
                matches!(err, Some(CredentialsError::Syntax { .. })),
                "{text:?}: {err:?}"
            );
            let message = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.starts_with("credential dictionary test.toml"),
                "{message}"
            );
        }
    }

    #[test]
    fn load_reports_missing_and_oversized_files() {
        let dir = std::env::temp_dir().join(format!("spanwatch-creds-{}", std::process::id()));
        assert!(std::fs::create_dir_all(&dir).is_ok());
        let missing = dir.join("absent.toml");
        match Dictionary::load(&missing) {
            Err(e @ CredentialsError::Read { .. }) => {
                assert!(e.to_string().contains("absent.toml"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        let big = dir.join("big.toml");
        let comment = "#".repeat(MAX_DICTIONARY_BYTES as usize + 1);
        assert!(std::fs::write(&big, comment).is_ok());
        assert!(matches!(
            Dictionary::load(&big),
            Err(CredentialsError::TooLarge { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn too_many_entries() {
        let one = "[[credential]]\nuser = \"u\"\ndigest = \"\"\nsource = \"mirai\"\n";
        let text = one.repeat(MAX_DICTIONARY_ENTRIES + 1);
        assert!(matches!(
            parse(&text),
            Err(CredentialsError::TooManyEntries { .. })
        ));
    }
}
