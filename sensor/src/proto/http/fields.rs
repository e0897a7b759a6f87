//! Field value semantics: `Content-Length` (RFC 9110 §8.6), `Transfer-Encoding`
//! (RFC 9112 §6.1, §7), `Authorization` (RFC 9110 §11.6.2 with RFC 7617 Basic,
//! RFC 7616 Digest, RFC 6750 Bearer), base64 (RFC 4648 §4), and the small text
//! helpers (token characters, capping, escaping) the other parts share.
//!
//! Pure functions over borrowed bytes: no flow knowledge, no allocation except
//! for the capped strings that end up in events.

use std::borrow::Cow;

use thiserror::Error;

use crate::proto::credential::CredentialHasher;
use crate::proto::text::capped;

use super::events::Auth;

/// Longest authentication scheme name kept in [`Auth::Other`], in bytes.
pub const MAX_SCHEME_BYTES: usize = 32;

/// `tchar` (RFC 9110 §5.6.2): the characters of a token.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Strips optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
pub fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Printable ASCII kept, everything else as `\xNN`; at most `max` input bytes.
pub fn escape_capped(bytes: &[u8], max: usize) -> String {
    let cut = bytes.get(..max).unwrap_or(bytes);
    let mut out = String::with_capacity(cut.len());
    for &b in cut {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if cut.len() < bytes.len() {
        out.push_str("...");
    }
    out
}

/// Why a `Content-Length` is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ContentLengthError {
    #[error("not a decimal number")]
    NotNumeric,
    #[error("value does not fit in 64 bits")]
    Overflow,
    #[error("several different values")]
    Conflicting,
}

/// Combined `Content-Length` of a message (all fields, all list elements).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentLength {
    #[default]
    Absent,
    Valid(u64),
    Invalid(ContentLengthError),
}

impl ContentLength {
    /// The valid value, if any.
    pub fn value(self) -> Option<u64> {
        match self {
            ContentLength::Valid(n) => Some(n),
            _ => None,
        }
    }

    /// Folds one more field value in. RFC 9110 §8.6: `Content-Length =
    /// 1*DIGIT`; a list of identical values (`42, 42`) may be accepted as one,
    /// differing values make the framing invalid (RFC 9112 §6.3 item 5).
    pub fn with_field(self, value: &[u8]) -> Self {
        let mut acc = self;
        for element in value.split(|&b| b == b',') {
            let parsed = match parse_decimal(trim_ows(element)) {
                Ok(n) => n,
                Err(e) => return ContentLength::Invalid(e),
            };
            acc = match acc {
                ContentLength::Absent => ContentLength::Valid(parsed),
                ContentLength::Valid(n) if n == parsed => acc,
                ContentLength::Valid(_) => ContentLength::Invalid(ContentLengthError::Conflicting),
                invalid @ ContentLength::Invalid(_) => invalid,
            };
        }
        acc
    }
}

fn parse_decimal(digits: &[u8]) -> Result<u64, ContentLengthError> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ContentLengthError::NotNumeric);
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(ContentLengthError::Overflow)
    })
}

/// Transfer codings with a registered name (RFC 9112 §7, §7.2 aliases).
const KNOWN_CODINGS: [&[u8]; 6] = [
    b"chunked",
    b"compress",
    b"deflate",
    b"gzip",
    b"x-compress",
    b"x-gzip",
];

/// Combined `Transfer-Encoding` of a message (RFC 9112 §6.1: several fields
/// form one list, in order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferEncoding {
    /// Number of non-empty codings listed.
    pub codings: usize,
    /// The last coding is `chunked` (case-insensitive, RFC 9112 §7).
    pub chunked_final: bool,
    /// `chunked` was listed at least once.
    pub chunked_seen: bool,
    /// First reason the value is not in canonical form, if any.
    pub obfuscation: Option<&'static str>,
}

impl TransferEncoding {
    /// Folds one more field value in.
    pub fn add_field(&mut self, value: &[u8]) {
        for element in value.split(|&b| b == b',') {
            let coding = trim_ows(element);
            if coding.is_empty() {
                self.flag("empty list element");
                continue;
            }
            self.codings += 1;
            if !coding.iter().all(|&b| is_tchar(b)) {
                self.flag("coding is not a token");
                self.chunked_final = false;
                continue;
            }
            let chunked = coding.eq_ignore_ascii_case(b"chunked");
            if chunked && self.chunked_seen {
                // RFC 9112 §6.1: chunked MUST NOT be applied more than once.
                self.flag("chunked listed more than once");
            }
            if !KNOWN_CODINGS.iter().any(|k| coding.eq_ignore_ascii_case(k)) {
                self.flag("unknown transfer coding");
            }
            self.chunked_seen |= chunked;
            self.chunked_final = chunked;
        }
    }

    /// Records irregular whitespace found in the raw field line (see
    /// [`raw_value_irregular`]).
    pub fn flag_raw_whitespace(&mut self) {
        self.flag("irregular whitespace around the value");
    }

    fn flag(&mut self, reason: &'static str) {
        self.obfuscation.get_or_insert(reason);
    }
}

/// Whether the raw bytes after a field's colon (line terminator removed)
/// differ from the canonical `SP value` form in whitespace: a tab, several
/// leading spaces, or trailing spaces. Legal OWS per RFC 9110 §5.6.3, but a
/// classic way to hide `Transfer-Encoding` from one hop of a proxy chain
/// (RFC 9112 §11.2).
pub fn raw_value_irregular(after_colon: &[u8]) -> bool {
    let leading = after_colon.iter().take_while(|&&b| b == b' ').count();
    let trailing = after_colon.last() == Some(&b' ') && after_colon.len() > leading;
    after_colon.contains(&b'\t') || leading > 1 || trailing
}

/// Why base64 decoding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Base64Error {
    #[error("byte {0:#04x} is not in the base64 alphabet")]
    InvalidByte(u8),
    #[error("data after padding")]
    DataAfterPadding,
    #[error("truncated base64 quantum")]
    Truncated,
}

fn base64_value(b: u8) -> Option<u32> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes standard base64 (RFC 4648 §4), handing each decoded byte to `sink`
/// so that the caller decides what to keep. Padding is optional (lenient);
/// returns the number of decoded bytes.
pub fn decode_base64(input: &[u8], mut sink: impl FnMut(u8)) -> Result<usize, Base64Error> {
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut symbols = 0usize;
    let mut padding = 0usize;
    let mut decoded = 0usize;
    for &b in input {
        if b == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return Err(Base64Error::DataAfterPadding);
        }
        let v = base64_value(b).ok_or(Base64Error::InvalidByte(b))?;
        acc = (acc << 6) | v;
        bits += 6;
        symbols += 1;
        if bits >= 8 {
            bits -= 8;
            // Truncation to the low byte is the decoding step itself.
            sink(((acc >> bits) & 0xff) as u8);
            decoded += 1;
            acc &= (1 << bits) - 1;
        }
    }
    // A lone symbol in the last quantum carries only 6 bits: not a byte.
    if symbols % 4 == 1 || padding > 2 || (padding > 0 && (symbols + padding) % 4 != 0) {
        return Err(Base64Error::Truncated);
    }
    Ok(decoded)
}

/// Why an `Authorization` value could not be understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("empty Authorization value")]
    Empty,
    #[error("Basic credentials are not valid base64: {0}")]
    Base64(Base64Error),
    #[error("Basic credentials have no ':' between user-id and password")]
    MissingColon,
}

/// Interprets an `Authorization` field value (RFC 9110 §11.6.2:
/// `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`).
///
/// For Basic (RFC 7617 §2) the user-id is everything before the first `:` of
/// the decoded `user-pass`; the password bytes are counted and fed to the
/// credential digest (with the whole user-id) as they are decoded, through a
/// 64-byte block on the stack, and never kept in anything that outlives the
/// call.
pub fn parse_authorization(value: &[u8], max_user: usize) -> (Auth, Option<AuthError>) {
    let value = trim_ows(value);
    let scheme_len = value.iter().take_while(|&&b| is_tchar(b)).count();
    let (scheme, rest) = value.split_at(scheme_len);
    if scheme.is_empty() {
        return (Auth::Other(String::new()), Some(AuthError::Empty));
    }
    let rest = trim_ows(rest);
    if scheme.eq_ignore_ascii_case(b"basic") {
        return match basic_credentials(rest, max_user) {
            Ok(auth) => (auth, None),
            Err(e) => (Auth::Other(capped(scheme, MAX_SCHEME_BYTES)), Some(e)),
        };
    }
    if scheme.eq_ignore_ascii_case(b"digest") {
        return (
            Auth::Digest {
                user: auth_param(rest, b"username", max_user),
            },
            None,
        );
    }
    if scheme.eq_ignore_ascii_case(b"bearer") {
        return (Auth::Bearer, None);
    }
    (Auth::Other(capped(scheme, MAX_SCHEME_BYTES)), None)
}

/// Decoded credential bytes on their way to the digest, handed to the hasher
/// a block at a time: one hasher call per byte cost more than the decoding.
/// The block lives on the stack for the duration of one
/// [`parse_authorization`] call, like the hasher's own input buffer. It
/// borrows the hasher, which is large: moving it costs more than hashing.
struct DigestFeed<'h> {
    hasher: &'h mut CredentialHasher,
    block: [u8; 64],
    len: usize,
}

impl<'h> DigestFeed<'h> {
    fn new(hasher: &'h mut CredentialHasher) -> Self {
        DigestFeed {
            hasher,
            block: [0; 64],
            len: 0,
        }
    }

    fn push(&mut self, b: u8) {
        if self.len == self.block.len() {
            self.flush();
        }
        if let Some(slot) = self.block.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn flush(&mut self) {
        self.hasher
            .update(self.block.get(..self.len).unwrap_or_default());
        self.len = 0;
    }

    fn end_user(&mut self) {
        self.flush();
        self.hasher.end_user();
    }
}

fn basic_credentials(token68: &[u8], max_user: usize) -> Result<Auth, AuthError> {
    let mut user = Vec::new();
    let mut in_password = false;
    let mut password_len = 0usize;
    let mut hasher = CredentialHasher::new();
    let mut credential = DigestFeed::new(&mut hasher);
    decode_base64(token68, |b| {
        if in_password {
            password_len += 1;
            credential.push(b);
        } else if b == b':' {
            in_password = true;
            credential.end_user();
        } else {
            credential.push(b);
            if user.len() < max_user {
                user.push(b);
            }
        }
    })
    .map_err(AuthError::Base64)?;
    if !in_password {
        return Err(AuthError::MissingColon);
    }
    credential.flush();
    let user = String::from_utf8(user)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok(Auth::Basic {
        user,
        has_password: password_len > 0,
        password_len,
        credential: Some(hasher.finish()),
    })
}

/// Value of the auth-param `name` (case-insensitive) in a comma-separated
/// `#auth-param` list (RFC 9110 §11.2), unquoting a quoted-string.
fn auth_param(params: &[u8], name: &[u8], max: usize) -> Option<String> {
    let mut i = 0;
    let at = |i: usize| params.get(i).copied();
    loop {
        while matches!(at(i), Some(b' ' | b'\t' | b',')) {
            i += 1;
        }
        let start = i;
        while at(i).is_some_and(is_tchar) {
            i += 1;
        }
        let key = params.get(start..i)?;
        while matches!(at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if key.is_empty() || at(i) != Some(b'=') {
            return None;
        }
        i += 1;
        while matches!(at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        let mut value = Vec::new();
        if at(i) == Some(b'"') {
            i += 1;
            loop {
                match at(i)? {
                    b'"' => break,
                    b'\\' => {
                        value.push(at(i + 1)?);
                        i += 2;
                    }
                    b => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
            i += 1;
        } else {
            while let Some(b) = at(i).filter(|b| !matches!(b, b',' | b' ' | b'\t')) {
                value.push(b);
                i += 1;
            }
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(capped(&value, max));
        }
    }
}

/// Removes the password from `userinfo` in a request target (RFC 3986 §3.2.1;
/// its use is deprecated by RFC 9110 §4.2.4). Returns the target to store and
/// whether userinfo was present. The authority is the part after `://` in
/// absolute-form, or the whole target in authority-form (RFC 9112 §3.2.3).
pub fn redact_userinfo(target: &[u8]) -> (Cow<'_, [u8]>, bool) {
    let authority_start = match target.windows(3).position(|w| w == b"://") {
        Some(i) => i + 3,
        None if matches!(target.first(), Some(b'/' | b'*') | None) => {
            return (Cow::Borrowed(target), false);
        }
        None => 0,
    };
    let tail = target.get(authority_start..).unwrap_or_default();
    let authority_len = tail
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(tail.len());
    let authority = tail.get(..authority_len).unwrap_or_default();
    let Some(at) = authority.iter().rposition(|&b| b == b'@') else {
        return (Cow::Borrowed(target), false);
    };
    let Some(colon) = authority
        .get(..at)
        .and_then(|u| u.iter().position(|&b| b == b':'))
    else {
        return (Cow::Borrowed(target), true);
    };
    let mut out = Vec::with_capacity(target.len());
    out.extend_from_slice(target.get(..authority_start + colon).unwrap_or_default());
    out.extend_from_slice(target.get(authority_start + at..).unwrap_or_default());
    (Cow::Owned(out), true)
}

/// A start line quoted as evidence: each space-separated word loses any
/// userinfo password (see [`redact_userinfo`]), then the line is escaped and
/// capped at `max` bytes.
pub fn redacted_line(line: &[u8], max: usize) -> String {
    let mut out = Vec::with_capacity(line.len());
    for (i, word) in line.split(|&b| b == b' ').enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(&redact_userinfo(word).0);
    }
    escape_capped(&out, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::credential::digest;

    fn b64(input: &str) -> Result<Vec<u8>, Base64Error> {
        let mut out = Vec::new();
        decode_base64(input.as_bytes(), |b| out.push(b)).map(|_| out)
    }

    #[test]
    fn base64_rfc4648_section10_vectors() {
        assert_eq!(b64("").unwrap(), b"");
        assert_eq!(b64("Zg==").unwrap(), b"f");
        assert_eq!(b64("Zm8=").unwrap(), b"fo");
        assert_eq!(b64("Zm9v").unwrap(), b"foo");
        assert_eq!(b64("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(b64("Zm9vYmE=").unwrap(), b"fooba");
        assert_eq!(b64("Zm9vYmFy").unwrap(), b"foobar");
    }

    #[test]
    fn base64_lenient_padding_and_errors() {
        assert_eq!(b64("Zg").unwrap(), b"f");
        assert_eq!(b64("Zm8").unwrap(), b"fo");
        assert_eq!(b64("Z"), Err(Base64Error::Truncated));
        assert_eq!(b64("Zg="), Err(Base64Error::Truncated));
        assert_eq!(b64("Zg==="), Err(Base64Error::Truncated));
        assert_eq!(b64("Zg==Zg=="), Err(Base64Error::DataAfterPadding));
        assert_eq!(b64("Zm9v!"), Err(Base64Error::InvalidByte(b'!')));
        assert_eq!(b64("Zm 9v"), Err(Base64Error::InvalidByte(b' ')));
    }

    #[test]
    fn basic_rfc7617_section2_example() {
        // RFC 7617 §2: user "Aladdin", password "open sesame".
        let (auth, err) = parse_authorization(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", 64);
        assert_eq!(err, None);
        assert_eq!(
            auth,
            Auth::Basic {
                user: "Aladdin".into(),
                has_password: true,
                password_len: "open sesame".len(),
                credential: Some(digest("Aladdin", "open sesame")),
            }
        );
        let Auth::Basic { credential, .. } = auth else {
            panic!("{auth:?}")
        };
        assert_ne!(credential, Some(digest("Aladdin", "open sesam")));
        assert_ne!(credential, Some(digest("aladdin", "open sesame")));
    }

    #[test]
    fn basic_password_with_colons_user_is_before_first_colon() {
        // base64("test:S3cr:3t:Pw") computed with Python's base64 module.
        let (auth, err) = parse_authorization(b"basic dGVzdDpTM2NyOjN0OlB3", 64);
        assert_eq!(err, None);
        assert_eq!(
            auth,
            Auth::Basic {
                user: "test".into(),
                has_password: true,
                password_len: "S3cr:3t:Pw".len(),
                credential: Some(digest("test", "S3cr:3t:Pw")),
            }
        );
        let debug = format!("{auth:?}");
        assert!(
            !debug.contains("S3cr") && !debug.contains("3t:Pw"),
            "{debug}"
        );
    }

    #[test]
    fn basic_empty_password_and_user_cap() {
        // base64("admin:") = "YWRtaW46"
        let (auth, _) = parse_authorization(b"Basic YWRtaW46", 64);
        assert_eq!(
            auth,
            Auth::Basic {
                user: "admin".into(),
                has_password: false,
                password_len: 0,
                // An empty password is still a credential (Mirai tries admin
                // with an empty password).
                credential: Some(digest("admin", "")),
            }
        );
        // The user name kept is capped; the digest is over the whole user-id.
        let (auth, _) = parse_authorization(b"Basic YWRtaW46", 3);
        assert!(matches!(auth, Auth::Basic { ref user, .. } if user == "adm"));
        assert!(matches!(
            auth,
            Auth::Basic { credential: Some(d), .. } if d == digest("admin", "")
        ));
    }

    /// Unpadded base64 (RFC 4648 §4; padding is optional for the decoder).
    fn b64_encode(input: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            }
        }
        out
    }

    #[test]
    fn basic_long_credentials_digest_whole_user_and_password() {
        // Longer than the 64-byte blocks the digest is fed in.
        let user = format!("{}ser", "u".repeat(70));
        let password: String = (0..150u8).map(|i| char::from(b'!' + i % 90)).collect();
        let value = format!(
            "Basic {}",
            b64_encode(format!("{user}:{password}").as_bytes())
        );
        let (auth, err) = parse_authorization(value.as_bytes(), 256);
        assert_eq!(err, None);
        assert_eq!(
            auth,
            Auth::Basic {
                user: user.clone(),
                has_password: true,
                password_len: 150,
                credential: Some(digest(&user, &password)),
            }
        );
        let (auth, _) = parse_authorization(value.as_bytes(), 8);
        let Auth::Basic { credential, .. } = auth else {
            panic!("{auth:?}")
        };
        assert_eq!(credential, Some(digest(&user, &password)));
        assert_ne!(credential, Some(digest(&user, &password[1..])));
    }

    #[test]
    fn basic_malformed_credentials() {
        // base64("nocolon") = "bm9jb2xvbg=="
        let (auth, err) = parse_authorization(b"Basic bm9jb2xvbg==", 64);
        assert_eq!(auth, Auth::Other("Basic".into()));
        assert_eq!(err, Some(AuthError::MissingColon));
        let (auth, err) = parse_authorization(b"Basic ***", 64);
        assert_eq!(auth, Auth::Other("Basic".into()));
        assert_eq!(err, Some(AuthError::Base64(Base64Error::InvalidByte(b'*'))));
        let (_, err) = parse_authorization(b"", 64);
        assert_eq!(err, Some(AuthError::Empty));
    }

    #[test]
    fn digest_rfc7616_username() {
        // RFC 7616 §3.9.1 example (abridged).
        let value = br#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5"#;
        let (auth, err) = parse_authorization(value, 64);
        assert_eq!(err, None);
        assert_eq!(
            auth,
            Auth::Digest {
                user: Some("Mufasa".into())
            }
        );
        let (auth, _) = parse_authorization(br#"Digest realm="x", username=bob"#, 64);
        assert_eq!(
            auth,
            Auth::Digest {
                user: Some("bob".into())
            }
        );
        let (auth, _) = parse_authorization(br#"Digest username="a\"b""#, 64);
        assert_eq!(
            auth,
            Auth::Digest {
                user: Some("a\"b".into())
            }
        );
        let (auth, _) = parse_authorization(br#"Digest realm="unterminated"#, 64);
        assert_eq!(auth, Auth::Digest { user: None });
    }

    #[test]
    fn bearer_and_other_schemes_keep_no_secret() {
        let (auth, _) = parse_authorization(b"Bearer mF_9.B5f-4.1JqM", 64);
        assert_eq!(auth, Auth::Bearer);
        let (auth, _) = parse_authorization(b"Negotiate YIIGhgYGKwYBBQUC", 64);
        assert_eq!(auth, Auth::Other("Negotiate".into()));
    }

    #[test]
    fn content_length_rfc9110_8_6() {
        let cl = |vals: &[&[u8]]| {
            vals.iter()
                .fold(ContentLength::Absent, |a, v| a.with_field(v))
        };
        assert_eq!(cl(&[b"3495"]), ContentLength::Valid(3495));
        assert_eq!(cl(&[b"42, 42"]), ContentLength::Valid(42));
        assert_eq!(cl(&[b"42", b"42"]), ContentLength::Valid(42));
        assert_eq!(
            cl(&[b"42", b"43"]),
            ContentLength::Invalid(ContentLengthError::Conflicting)
        );
        assert_eq!(
            cl(&[b"-1"]),
            ContentLength::Invalid(ContentLengthError::NotNumeric)
        );
        assert_eq!(
            cl(&[b"0x10"]),
            ContentLength::Invalid(ContentLengthError::NotNumeric)
        );
        assert_eq!(
            cl(&[b""]),
            ContentLength::Invalid(ContentLengthError::NotNumeric)
        );
        assert_eq!(
            cl(&[b"18446744073709551615"]),
            ContentLength::Valid(u64::MAX)
        );
        assert_eq!(
            cl(&[b"18446744073709551616"]),
            ContentLength::Invalid(ContentLengthError::Overflow)
        );
    }

    fn te(values: &[&[u8]]) -> TransferEncoding {
        let mut t = TransferEncoding::default();
        for v in values {
            t.add_field(v);
        }
        t
    }

    #[test]
    fn transfer_encoding_rfc9112_6_1() {
        // RFC 9112 §6.1 example: "Transfer-Encoding: gzip, chunked".
        let t = te(&[b"gzip, chunked"]);
        assert!(t.chunked_final && t.obfuscation.is_none());
        assert_eq!(t.codings, 2);
        // Two fields form one list in order.
        let t = te(&[b"gzip", b"chunked"]);
        assert!(t.chunked_final && t.obfuscation.is_none());
        let t = te(&[b"chunked, gzip"]);
        assert!(!t.chunked_final && t.chunked_seen && t.obfuscation.is_none());
        // Coding names are case-insensitive (RFC 9112 §7).
        assert!(te(&[b"Chunked"]).chunked_final);
    }

    #[test]
    fn transfer_encoding_obfuscations() {
        let t = te(&[b",\tchunked,"]);
        assert!(t.chunked_final);
        assert_eq!(t.obfuscation, Some("empty list element"));
        let t = te(&[b"xchunked"]);
        assert!(!t.chunked_final);
        assert_eq!(t.obfuscation, Some("unknown transfer coding"));
        let t = te(&[b"chunked, chunked"]);
        assert_eq!(t.obfuscation, Some("chunked listed more than once"));
        let t = te(&[b"\"chunked\""]);
        assert!(!t.chunked_final);
        assert_eq!(t.obfuscation, Some("coding is not a token"));
    }

    #[test]
    fn raw_whitespace_irregularities() {
        assert!(!raw_value_irregular(b" chunked"));
        assert!(!raw_value_irregular(b"chunked"));
        assert!(raw_value_irregular(b" chunked "));
        assert!(raw_value_irregular(b"\tchunked"));
        assert!(raw_value_irregular(b"  chunked"));
        assert!(raw_value_irregular(b" chunked\t"));
    }

    #[test]
    fn userinfo_password_is_removed() {
        let (t, had) = redact_userinfo(b"http://user:secret@example.com/a?b=c");
        assert!(had);
        assert_eq!(&*t, b"http://user@example.com/a?b=c");
        let (t, had) = redact_userinfo(b"http://user@example.com/");
        assert!(had);
        assert_eq!(&*t, b"http://user@example.com/");
        let (t, had) = redact_userinfo(b"/path?email=a@b.c");
        assert!(!had);
        assert_eq!(&*t, b"/path?email=a@b.c");
        let (t, had) = redact_userinfo(b"http://example.com/x@y");
        assert!(!had);
        assert_eq!(&*t, b"http://example.com/x@y");
        let (t, had) = redact_userinfo(b"u:p@host:443");
        assert!(had);
        assert_eq!(&*t, b"u@host:443");
    }

    #[test]
    fn redacted_start_lines() {
        assert_eq!(
            redacted_line(b"GET  http://u:secret@h/x HTTP/1.1", 96),
            "GET  http://u@h/x HTTP/1.1"
        );
        assert_eq!(redacted_line(b"a b", 1), "a...");
    }

    #[test]
    fn text_helpers() {
        assert_eq!(escape_capped(b"a\r\n\x00\\", 16), "a\\x0d\\x0a\\x00\\x5c");
        assert_eq!(escape_capped(b"abcdef", 3), "abc...");
        assert_eq!(trim_ows(b" \t x \t"), b"x");
        assert!(is_tchar(b'~') && is_tchar(b'Z') && !is_tchar(b'(') && !is_tchar(b' '));
    }
}
