//! Known default credentials, recognised by keyed digest (passwords are never kept).
//!
//! A login with a well-known default credential on Telnet, HTTP Basic
//! (RFC 7617) or MQTT CONNECT (MQTT 3.1.1 §3.1.3.5, 5.0 §3.1.3.6) is a finding
//! of its own (OWASP IoT Top 10 I1 "Weak, Guessable, or Hardcoded Passwords",
//! ETSI EN 303 645 provision 5.1-1). The parsers turn each (user, password)
//! pair into a [`CredentialDigest`] ([`crate::proto::credential`]); the rule
//! engine asks a [`Dictionary`] whether the digest is a known default.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::proto::credential::CredentialDigest;

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
    use crate::proto::credential::digest;

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
