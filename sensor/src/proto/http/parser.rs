//! HTTP/1.x message heads (RFC 9112 §2-§6) and content probing.
//!
//! Heads are parsed with `httparse` first (strict, fast); when it rejects a
//! head, a lenient path re-parses the start line itself (RFC 9112 §3 allows
//! recipients to split the request line on any whitespace; §4 status lines
//! are split the same way) and the field section with `httparse::parse_headers`
//! or, failing that, line by line, skipping malformed field lines. Whatever
//! the lenient path had to forgive is returned as [`HeadIssue`]s, the evidence
//! the session turns into anomaly events.
//!
//! The body length rules of RFC 9112 §6.3 are here too, as pure functions of
//! the parsed fields ([`request_framing`], [`response_framing`]).
//!
//! Nothing here knows about flows: every function takes bytes and returns a
//! value, "incomplete" or a typed error.

use std::mem::MaybeUninit;

use httparse::{Header, ParserConfig, Status};
use thiserror::Error;

use super::events::{AnomalyKind, MAX_METHOD_BYTES, Method, Version};
use super::fields::{
    ContentLength, TransferEncoding, escape_capped, is_tchar, raw_value_irregular, redacted_line,
    trim_ows,
};
use crate::flow::Direction;
use crate::proto::Probe;

/// Upper bound for `HttpLimits::max_headers` (size of the on-stack header array).
pub const MAX_HEADERS_HARD_CAP: usize = 256;
/// Issues kept per head; more are dropped (the first ones are the evidence).
pub const MAX_ISSUES_PER_HEAD: usize = 8;
/// Bytes of offending input quoted in an issue's detail.
pub const MAX_DETAIL_BYTES: usize = 96;
/// Bytes [`probe`] looks at before deciding with what it has.
pub const PROBE_MAX_BYTES: usize = 4096;

/// Something the lenient path forgave in a head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadIssue {
    pub kind: AnomalyKind,
    pub detail: String,
}

fn push_issue(issues: &mut Vec<HeadIssue>, kind: AnomalyKind, detail: String) {
    if issues.len() < MAX_ISSUES_PER_HEAD {
        issues.push(HeadIssue { kind, detail });
    }
}

/// A head that cannot be used at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum HeadError {
    #[error("request line is not `method SP request-target SP HTTP-version`")]
    InvalidRequestLine,
    #[error("status line does not start with an HTTP version")]
    InvalidStatusLine,
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
}

/// Where the head that starts a buffer ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadEnd {
    /// The head (start line, fields and the empty line) is this many bytes.
    Complete(usize),
    /// No empty line yet; resume scanning at `resume` when more bytes arrive.
    Partial { resume: usize },
}

/// Finds the empty line that ends a head (RFC 9112 §2.1), accepting a bare
/// LF as line terminator (§2.2). `from` is a previous `Partial::resume`.
pub fn find_head_end(buf: &[u8], from: usize) -> HeadEnd {
    let mut i = from;
    while let Some(offset) = buf.get(i..).and_then(|rest| memchr::memchr(b'\n', rest)) {
        let lf = i + offset;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return HeadEnd::Complete(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return HeadEnd::Complete(lf + 3),
            (None, _) | (Some(b'\r'), None) => return HeadEnd::Partial { resume: lf },
            _ => i = lf + 1,
        }
    }
    HeadEnd::Partial {
        resume: buf.len().max(from),
    }
}

/// Number of CR/LF bytes before a start line: RFC 9112 §2.2 says a server
/// SHOULD ignore at least one empty line received before the request-line.
pub fn leading_empty_lines(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// The first line of `buf` without its terminator, and its length including
/// the LF; `None` while no LF has arrived.
pub fn split_first_line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let lf = memchr::memchr(b'\n', buf)?;
    let line = buf.get(..lf).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, lf + 1))
}

/// What a complete first line of a client's message looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestLineShape {
    /// `token SP ... SP ...`: a full request line to parse with its head.
    Full,
    /// `GET SP request-target` and nothing else: an HTTP/0.9 simple request
    /// (RFC 1945 §4.1), complete by itself.
    Simple,
    /// Neither.
    Invalid,
}

/// Classifies a complete first line (terminator removed).
pub fn classify_request_line(line: &[u8]) -> RequestLineShape {
    let method_len = line.iter().take_while(|&&b| is_tchar(b)).count();
    if method_len == 0 || line.get(method_len) != Some(&b' ') {
        return RequestLineShape::Invalid;
    }
    let after = line.get(method_len + 1..).unwrap_or_default();
    if after.contains(&b' ') {
        return RequestLineShape::Full;
    }
    let visible = !after.is_empty() && after.iter().all(|&b| b > 0x20 && b != 0x7f);
    if line.starts_with(b"GET ") && visible {
        RequestLineShape::Simple
    } else {
        RequestLineShape::Invalid
    }
}

/// What the first bytes of a client message say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestStart {
    /// A method token (within [`MAX_METHOD_BYTES`]) followed by SP.
    Started,
    /// Could still become `method SP`; more bytes needed.
    Undecided,
    /// Cannot be a request line.
    Mismatch,
}

/// Classifies the first bytes of a client message (complete line or not).
pub fn request_start(bytes: &[u8]) -> RequestStart {
    let method_len = bytes.iter().take_while(|&&b| is_tchar(b)).count();
    if method_len > MAX_METHOD_BYTES {
        return RequestStart::Mismatch;
    }
    match bytes.get(method_len) {
        None => RequestStart::Undecided,
        Some(b' ') if method_len > 0 => RequestStart::Started,
        Some(_) => RequestStart::Mismatch,
    }
}

/// Whether a complete line is a request line with an HTTP/1.x version
/// (used to find the next message after a loss of sync).
pub fn is_request_line(line: &[u8]) -> bool {
    let method_len = line.iter().take_while(|&&b| is_tchar(b)).count();
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    method_len <= MAX_METHOD_BYTES
        && classify_request_line(line) == RequestLineShape::Full
        && version.len() == 8
        && prefix_ci(version, b"HTTP/1.") == Probe::Match
}

/// Whether a complete line starts a status line (`HTTP/` and a digit).
pub fn is_status_line(line: &[u8]) -> bool {
    prefix_ci(line, b"HTTP/") == Probe::Match && line.get(5).is_some_and(u8::is_ascii_digit)
}

/// Compares `bytes` with `pattern` case-insensitively: `Match` when `bytes`
/// starts with it, `NeedMore` when `bytes` is a shorter prefix of it.
pub fn prefix_ci(bytes: &[u8], pattern: &[u8]) -> Probe {
    let n = bytes.len().min(pattern.len());
    match (bytes.get(..n), pattern.get(..n)) {
        (Some(b), Some(p)) if b.eq_ignore_ascii_case(p) => {
            if n == pattern.len() {
                Probe::Match
            } else {
                Probe::NeedMore
            }
        }
        _ => Probe::NoMatch,
    }
}

/// Content probe on the first bytes one side of a flow sent.
///
/// Client side: a method token, SP, a request-target, then SP and `HTTP/1.`
/// (RFC 9112 §3), or a line end after the target for an HTTP/0.9 `GET`
/// (RFC 1945 §4.1). Server side: `HTTP/1.` (RFC 9112 §4; the name is matched
/// case-insensitively because some servers send `http/1.1`). `NeedMore` while
/// undecidable; after [`PROBE_MAX_BYTES`] the probe decides with what it has
/// (a standard method with a long target is a match).
pub fn probe(first_bytes: &[u8], dir: Direction) -> Probe {
    let bytes = first_bytes.get(..PROBE_MAX_BYTES).unwrap_or(first_bytes);
    match dir {
        Direction::ToClient => prefix_ci(bytes, b"HTTP/1."),
        Direction::ToServer => probe_request(bytes, first_bytes.len() >= PROBE_MAX_BYTES),
    }
}

fn probe_request(bytes: &[u8], exhausted: bool) -> Probe {
    let bytes = bytes.get(leading_empty_lines(bytes)..).unwrap_or_default();
    let method_len = bytes.iter().take_while(|&&b| is_tchar(b)).count();
    if method_len > MAX_METHOD_BYTES {
        return Probe::NoMatch;
    }
    let method = bytes.get(..method_len).unwrap_or_default();
    let known = Method::standard(method).is_some();
    let undecided = if !exhausted {
        Probe::NeedMore
    } else if known {
        Probe::Match
    } else {
        Probe::NoMatch
    };
    match bytes.get(method_len) {
        None => return undecided,
        Some(b' ') if method_len > 0 => {}
        Some(_) => return Probe::NoMatch,
    }
    let target_start = method_len + 1;
    let after = bytes.get(target_start..).unwrap_or_default();
    let target_len = after
        .iter()
        .take_while(|&&b| !matches!(b, b' ' | b'\r' | b'\n'))
        .count();
    let target = after.get(..target_len).unwrap_or_default();
    if target.iter().any(|&b| b < 0x21 || b == 0x7f) {
        return Probe::NoMatch;
    }
    match after.get(target_len) {
        None => undecided,
        Some(_) if target.is_empty() => Probe::NoMatch,
        Some(b'\r' | b'\n') if method == b"GET" => Probe::Match,
        Some(b'\r' | b'\n') => Probe::NoMatch,
        Some(_) => match prefix_ci(after.get(target_len + 1..).unwrap_or_default(), b"HTTP/1.") {
            Probe::NeedMore => undecided,
            decided => decided,
        },
    }
}

/// A request head: start line and header fields.
#[derive(Debug)]
pub struct RequestHead<'b, 'h> {
    pub method: &'b str,
    pub target: &'b [u8],
    pub version: Version,
    pub headers: &'h [Header<'b>],
    pub issues: Vec<HeadIssue>,
}

/// A response head: status line and header fields.
#[derive(Debug)]
pub struct ResponseHead<'b, 'h> {
    pub version: Version,
    pub status: u16,
    pub reason: &'b [u8],
    pub headers: &'h [Header<'b>],
    pub issues: Vec<HeadIssue>,
}

/// Parses a complete request head (as delimited by [`find_head_end`]).
/// `storage.len()` is the header field limit.
pub fn parse_request_head<'b, 'h>(
    head: &'b [u8],
    storage: &'h mut [Header<'b>],
) -> Result<RequestHead<'b, 'h>, HeadError> {
    let limit = storage.len();
    let mut req = httparse::Request::new(storage);
    let strict = req.parse(head);
    if let Ok(Status::Complete(_)) = strict {
        if let Some(parsed) = strict_request_head(&mut req) {
            return Ok(parsed);
        }
    }
    if strict == Err(httparse::Error::TooManyHeaders) {
        return Err(HeadError::TooManyHeaders(limit));
    }
    let mut issues = Vec::new();
    let (line, _) = first_line_of_head(head).ok_or(HeadError::InvalidRequestLine)?;
    let (method, target, version) = parse_request_line_lenient(line, &mut issues)?;
    let headers = fields_after_start_line(head, req.headers, &mut issues)?;
    if issues.is_empty() {
        let kind = match strict {
            Err(httparse::Error::Token | httparse::Error::Version) => {
                AnomalyKind::InvalidRequestLine
            }
            _ => AnomalyKind::InvalidHeader,
        };
        push_issue(&mut issues, kind, strict_detail(strict));
    }
    Ok(RequestHead {
        method,
        target,
        version,
        headers,
        issues,
    })
}

/// The head the strict parser (`httparse`) accepts at the start of `bytes`,
/// which may go on past it (a body, the next message), and its length.
///
/// This is the head [`find_head_end`] would delimit, parsed as
/// [`parse_request_head`] would parse it: in a head the strict parser
/// accepts, every LF ends a non-empty line up to the empty line that ends
/// the head, so the first LF followed by an empty line is that one. `None`
/// when the strict parser does not accept a complete head (incomplete,
/// malformed, or more fields than `storage` holds): delimit the head and use
/// [`parse_request_head`], which also handles what the lenient path forgives.
///
/// `storage` needs no initialisation (only the strict parser writes it), so
/// a caller can offer the full field limit at no cost.
pub fn parse_strict_request_head<'b, 'h>(
    bytes: &'b [u8],
    storage: &'h mut [MaybeUninit<Header<'b>>],
) -> Option<(usize, RequestHead<'b, 'h>)> {
    let mut req = httparse::Request::new(&mut []);
    let Ok(Status::Complete(len)) = req.parse_with_uninit_headers(bytes, storage) else {
        return None;
    };
    strict_request_head(&mut req).map(|parsed| (len, parsed))
}

/// The head of a request `httparse` parsed completely.
fn strict_request_head<'b, 'h>(req: &mut httparse::Request<'h, 'b>) -> Option<RequestHead<'b, 'h>> {
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return None;
    };
    let headers: &'h mut [Header<'b>] = std::mem::take(&mut req.headers);
    Some(RequestHead {
        method,
        target: target.as_bytes(),
        version: if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        headers,
        issues: Vec::new(),
    })
}

/// Parses a complete response head (as delimited by [`find_head_end`]).
/// `storage.len()` is the header field limit.
pub fn parse_response_head<'b, 'h>(
    head: &'b [u8],
    storage: &'h mut [Header<'b>],
) -> Result<ResponseHead<'b, 'h>, HeadError> {
    let limit = storage.len();
    let mut resp = httparse::Response::new(storage);
    let strict = resp.parse(head);
    if let Ok(Status::Complete(_)) = strict {
        if let Some(parsed) = strict_response_head(&mut resp) {
            return Ok(parsed);
        }
    }
    if strict == Err(httparse::Error::TooManyHeaders) {
        return Err(HeadError::TooManyHeaders(limit));
    }
    let mut issues = Vec::new();
    let (line, _) = first_line_of_head(head).ok_or(HeadError::InvalidStatusLine)?;
    let (version, status, reason) = parse_status_line_lenient(line, &mut issues)?;
    let headers = fields_after_start_line(head, resp.headers, &mut issues)?;
    if issues.is_empty() {
        let kind = match strict {
            Err(httparse::Error::Version) => AnomalyKind::InvalidVersion,
            Err(httparse::Error::Status) => AnomalyKind::InvalidStatusLine,
            _ => AnomalyKind::InvalidHeader,
        };
        push_issue(&mut issues, kind, strict_detail(strict));
    }
    Ok(ResponseHead {
        version,
        status,
        reason,
        headers,
        issues,
    })
}

/// [`parse_strict_request_head`] for a response head: the same reasoning,
/// with [`parse_response_head`] as the fallback.
pub fn parse_strict_response_head<'b, 'h>(
    bytes: &'b [u8],
    storage: &'h mut [MaybeUninit<Header<'b>>],
) -> Option<(usize, ResponseHead<'b, 'h>)> {
    let mut resp = httparse::Response::new(&mut []);
    let parsed =
        ParserConfig::default().parse_response_with_uninit_headers(&mut resp, bytes, storage);
    let Ok(Status::Complete(len)) = parsed else {
        return None;
    };
    strict_response_head(&mut resp).map(|parsed| (len, parsed))
}

/// The head of a response `httparse` parsed completely.
fn strict_response_head<'b, 'h>(
    resp: &mut httparse::Response<'h, 'b>,
) -> Option<ResponseHead<'b, 'h>> {
    let (Some(minor), Some(status), Some(reason)) = (resp.version, resp.code, resp.reason) else {
        return None;
    };
    let mut issues = Vec::new();
    check_status_range(status, &mut issues);
    let headers: &'h mut [Header<'b>] = std::mem::take(&mut resp.headers);
    Some(ResponseHead {
        version: if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        status,
        reason: reason.as_bytes(),
        headers,
        issues,
    })
}

fn strict_detail(strict: httparse::Result<usize>) -> String {
    match strict {
        Err(e) => format!("rejected by strict parser: {e}"),
        Ok(_) => "rejected by strict parser".to_owned(),
    }
}

fn first_line_of_head(head: &[u8]) -> Option<(&[u8], usize)> {
    let skip = leading_empty_lines(head);
    split_first_line(head.get(skip..)?).map(|(line, len)| (line, skip + len))
}

/// Parses the field section that follows the start line of a complete head,
/// into `storage`. Used by the head parsers and, for a head whose start line
/// is unusable, by the session to still learn the message framing.
pub fn fields_after_start_line<'b, 'h>(
    head: &'b [u8],
    storage: &'h mut [Header<'b>],
    issues: &mut Vec<HeadIssue>,
) -> Result<&'h [Header<'b>], HeadError> {
    let block = match first_line_of_head(head) {
        Some((_, len)) => head.get(len..).unwrap_or_default(),
        None => &[],
    };
    parse_fields(block, storage, issues)
}

/// Parses a field section (field lines up to and including the empty line).
fn parse_fields<'b, 'h>(
    block: &'b [u8],
    storage: &'h mut [Header<'b>],
    issues: &mut Vec<HeadIssue>,
) -> Result<&'h [Header<'b>], HeadError> {
    let strict = match httparse::parse_headers(block, storage) {
        Ok(Status::Complete((_, parsed))) => Ok(parsed.len()),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::TooManyHeaders(storage.len()));
        }
        Err(e) => Err(e),
        Ok(Status::Partial) => Err(httparse::Error::NewLine),
    };
    let count = match strict {
        Ok(n) => n,
        Err(_) => parse_fields_lenient(block, storage, issues)?,
    };
    let storage: &'h [Header<'b>] = storage;
    Ok(storage.get(..count).unwrap_or_default())
}

/// Line-by-line field parsing (RFC 9112 §5): keeps well-formed field lines,
/// skips the rest with an issue each. Returns the number of fields stored.
fn parse_fields_lenient<'b>(
    block: &'b [u8],
    storage: &mut [Header<'b>],
    issues: &mut Vec<HeadIssue>,
) -> Result<usize, HeadError> {
    let mut count = 0;
    for raw in block.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // RFC 9112 §5.2 obs-fold, or whitespace before the first field (§2.2).
            push_issue(
                issues,
                AnomalyKind::InvalidHeader,
                "whitespace-prefixed field line (obs-fold) skipped".to_owned(),
            );
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            push_issue(
                issues,
                AnomalyKind::InvalidHeader,
                // Only the would-be name is quoted: the rest may be a credential.
                format!(
                    "field line without ':' skipped: {}",
                    escape_capped(
                        line.split(|&b| b == b' ' || b == b'\t')
                            .next()
                            .unwrap_or_default(),
                        MAX_DETAIL_BYTES
                    )
                ),
            );
            continue;
        };
        let name = line.get(..colon).unwrap_or_default();
        let name_str = std::str::from_utf8(name)
            .ok()
            .filter(|_| !name.is_empty() && name.iter().all(|&b| is_tchar(b)));
        let Some(name_str) = name_str else {
            note_invalid_name(name, issues);
            continue;
        };
        let value = trim_ows(line.get(colon + 1..).unwrap_or_default());
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            push_issue(
                issues,
                AnomalyKind::InvalidHeader,
                format!(
                    "control byte in the value of {}",
                    escape_capped(name, MAX_DETAIL_BYTES)
                ),
            );
        }
        let limit = storage.len();
        let slot = storage
            .get_mut(count)
            .ok_or(HeadError::TooManyHeaders(limit))?;
        *slot = Header {
            name: name_str,
            value,
        };
        count += 1;
    }
    Ok(count)
}

/// A field name with whitespace or other non-token bytes (RFC 9112 §5.1: no
/// whitespace between name and colon). For framing fields this is a known
/// smuggling trick, reported as such; the line is skipped either way.
fn note_invalid_name(name: &[u8], issues: &mut Vec<HeadIssue>) {
    let detail = format!(
        "invalid field name skipped: {}",
        escape_capped(name, MAX_DETAIL_BYTES)
    );
    let trimmed = trim_ows(name);
    let kind = if trimmed.eq_ignore_ascii_case(b"transfer-encoding") {
        AnomalyKind::ObfuscatedTransferEncoding
    } else if trimmed.eq_ignore_ascii_case(b"content-length") {
        AnomalyKind::InvalidContentLength
    } else {
        AnomalyKind::InvalidHeader
    };
    push_issue(issues, kind, detail);
}

/// Whitespace that RFC 9112 §3 lets a recipient treat as the SP separator.
fn is_line_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c | b'\r')
}

fn parse_request_line_lenient<'b>(
    line: &'b [u8],
    issues: &mut Vec<HeadIssue>,
) -> Result<(&'b str, &'b [u8], Version), HeadError> {
    let mut words = line.split(|&b| is_line_space(b)).filter(|w| !w.is_empty());
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(HeadError::InvalidRequestLine);
    };
    if !method.iter().all(|&b| is_tchar(b)) || target.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(HeadError::InvalidRequestLine);
    }
    let method = std::str::from_utf8(method).map_err(|_| HeadError::InvalidRequestLine)?;
    let version = parse_version_word(version, issues).ok_or(HeadError::InvalidRequestLine)?;
    if line.len() != method.len() + target.len() + 10 || !line.starts_with(method.as_bytes()) {
        push_issue(
            issues,
            AnomalyKind::InvalidRequestLine,
            format!(
                "irregular whitespace in request line: {}",
                redacted_line(line, MAX_DETAIL_BYTES)
            ),
        );
    }
    Ok((method, target, version))
}

fn parse_status_line_lenient<'b>(
    line: &'b [u8],
    issues: &mut Vec<HeadIssue>,
) -> Result<(Version, u16, &'b [u8]), HeadError> {
    let split = |bytes: &'b [u8]| -> (&'b [u8], &'b [u8]) {
        let end = bytes
            .iter()
            .position(|&b| is_line_space(b))
            .unwrap_or(bytes.len());
        let (word, rest) = bytes.split_at(end);
        let skip = rest.iter().take_while(|&&b| is_line_space(b)).count();
        (word, rest.get(skip..).unwrap_or_default())
    };
    let (version_word, rest) = split(line);
    let version = parse_version_word(version_word, issues).ok_or(HeadError::InvalidStatusLine)?;
    let (code, rest) = split(rest);
    let digits = code.iter().take_while(|b| b.is_ascii_digit()).take(3);
    let status = digits.fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        push_issue(
            issues,
            AnomalyKind::InvalidStatusCode,
            format!(
                "status code is not 3 digits: {}",
                escape_capped(code, MAX_DETAIL_BYTES)
            ),
        );
    } else {
        check_status_range(status, issues);
    }
    Ok((version, status, trim_ows(rest)))
}

/// RFC 9110 §15: status codes are three-digit integers from 100 to 599.
fn check_status_range(status: u16, issues: &mut Vec<HeadIssue>) {
    if !(100..=599).contains(&status) {
        push_issue(
            issues,
            AnomalyKind::InvalidStatusCode,
            format!("status code {status} outside 100..=599"),
        );
    }
}

/// `HTTP-version = HTTP-name "/" DIGIT "." DIGIT` (RFC 9112 §2.3), with the
/// case-sensitive name accepted in any case (an issue says so).
fn parse_version_word(word: &[u8], issues: &mut Vec<HeadIssue>) -> Option<Version> {
    let [h, t1, t2, p, b'/', major, b'.', minor] = *word else {
        return None;
    };
    if !(major.is_ascii_digit() && minor.is_ascii_digit()) {
        return None;
    }
    let name = [h, t1, t2, p];
    if !name.eq_ignore_ascii_case(b"HTTP") {
        return None;
    }
    if &name != b"HTTP" {
        push_issue(
            issues,
            AnomalyKind::InvalidVersion,
            format!("HTTP-name is case-sensitive: {}", escape_capped(word, 8)),
        );
    }
    match (major - b'0', minor - b'0') {
        (1, 0) => Some(Version::Http10),
        (1, 1) => Some(Version::Http11),
        (major, minor) => {
            push_issue(
                issues,
                AnomalyKind::InvalidVersion,
                format!("HTTP/{major}.{minor} in an HTTP/1.x message"),
            );
            Some(Version::Other { major, minor })
        }
    }
}

/// The fields of a head that matter to the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSummary<'b> {
    pub host: Option<&'b [u8]>,
    pub host_count: usize,
    pub user_agent: Option<&'b [u8]>,
    /// `Server` (RFC 9110 §10.2.4): the origin server's software.
    pub server: Option<&'b [u8]>,
    pub content_type: Option<&'b [u8]>,
    pub content_length: ContentLength,
    pub transfer_encoding: Option<TransferEncoding>,
    pub authorization: Option<&'b [u8]>,
    /// `Upgrade` value (RFC 9110 §7.8).
    pub upgrade: Option<&'b [u8]>,
    /// `Connection` lists the `upgrade` option (RFC 9110 §7.6.1).
    pub connection_upgrade: bool,
    /// `Expect: 100-continue` (RFC 9110 §10.1.1).
    pub expect_continue: bool,
}

fn list_contains(value: &[u8], member: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|m| trim_ows(m).eq_ignore_ascii_case(member))
}

/// Collects the fields the session needs (names are case-insensitive,
/// RFC 9110 §5.1). `head` is the raw head the fields were parsed from: it is
/// re-read for the raw whitespace around `Transfer-Encoding` values, which
/// the field parsers trim.
pub fn summarize_fields<'b>(head: &'b [u8], headers: &[Header<'b>]) -> FieldSummary<'b> {
    let mut s = FieldSummary::default();
    for h in headers {
        let name = h.name.as_bytes();
        let first = |slot: Option<&'b [u8]>| slot.or(Some(h.value));
        // The names that matter have distinct lengths but two pairs (6 and 10
        // bytes): one jump on the length, then one name (two for those
        // lengths) compared per field, each trying the usual spelling before
        // the case-insensitive match.
        let is = |usual: &[u8]| name == usual || name.eq_ignore_ascii_case(usual);
        match name.len() {
            4 if is(b"Host") => {
                s.host = first(s.host);
                s.host_count += 1;
            }
            10 if is(b"User-Agent") => s.user_agent = first(s.user_agent),
            12 if is(b"Content-Type") => s.content_type = first(s.content_type),
            14 if is(b"Content-Length") => {
                s.content_length = s.content_length.with_field(h.value);
            }
            17 if is(b"Transfer-Encoding") => s
                .transfer_encoding
                .get_or_insert_with(TransferEncoding::default)
                .add_field(h.value),
            13 if is(b"Authorization") => s.authorization = first(s.authorization),
            7 if is(b"Upgrade") => s.upgrade = first(s.upgrade),
            10 if is(b"Connection") => {
                s.connection_upgrade |= list_contains(h.value, b"upgrade");
            }
            6 if is(b"Expect") => {
                s.expect_continue |= list_contains(h.value, b"100-continue");
            }
            6 if is(b"Server") => s.server = first(s.server),
            _ => {}
        }
    }
    if let Some(te) = s.transfer_encoding.as_mut() {
        let irregular = head.split(|&b| b == b'\n').any(|raw| {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            line.iter().position(|&b| b == b':').is_some_and(|colon| {
                let name = line.get(..colon).unwrap_or_default();
                name.eq_ignore_ascii_case(b"transfer-encoding")
                    && raw_value_irregular(line.get(colon + 1..).unwrap_or_default())
            })
        });
        if irregular {
            te.flag_raw_whitespace();
        }
    }
    s
}

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: the message ends with its head.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes (responses only).
    UntilClose,
    /// The connection becomes a tunnel after the head (101, 2xx to CONNECT).
    Tunnel,
}

/// Transfer-Encoding checks common to requests and responses (RFC 9112 §6.1,
/// §6.3 item 3). Returns whether chunked is the final coding.
fn check_transfer_encoding(
    te: &TransferEncoding,
    fields: &FieldSummary<'_>,
    version: Version,
    issues: &mut Vec<HeadIssue>,
) -> bool {
    if let Some(reason) = te.obfuscation {
        push_issue(
            issues,
            AnomalyKind::ObfuscatedTransferEncoding,
            reason.to_owned(),
        );
    }
    if fields.content_length != ContentLength::Absent {
        push_issue(
            issues,
            AnomalyKind::TransferEncodingWithContentLength,
            "Transfer-Encoding overrides Content-Length (RFC 9112 §6.3)".to_owned(),
        );
    }
    if version == Version::Http10 {
        push_issue(
            issues,
            AnomalyKind::TransferEncodingInHttp10,
            "framing of an HTTP/1.0 message with Transfer-Encoding is faulty".to_owned(),
        );
    }
    te.chunked_final
}

fn length_framing(cl: ContentLength) -> Result<BodyFraming, HeadIssue> {
    match cl {
        ContentLength::Absent | ContentLength::Valid(0) => Ok(BodyFraming::None),
        ContentLength::Valid(n) => Ok(BodyFraming::Length(n)),
        ContentLength::Invalid(e) => Err(HeadIssue {
            kind: AnomalyKind::InvalidContentLength,
            detail: e.to_string(),
        }),
    }
}

/// Request body length (RFC 9112 §6.3 items 3-6). `Err` carries the issue
/// that makes the framing undeterminable: the direction cannot be followed.
pub fn request_framing(
    fields: &FieldSummary<'_>,
    version: Version,
    issues: &mut Vec<HeadIssue>,
) -> Result<BodyFraming, HeadIssue> {
    if let Some(te) = &fields.transfer_encoding {
        if check_transfer_encoding(te, fields, version, issues) {
            return Ok(BodyFraming::Chunked);
        }
        return Err(HeadIssue {
            kind: AnomalyKind::UnsupportedTransferEncoding,
            detail: "final transfer coding of a request is not chunked (RFC 9112 §6.3)".to_owned(),
        });
    }
    length_framing(fields.content_length)
}

/// Response body length (RFC 9112 §6.3 items 1-8); `request` is the method
/// of the request it answers, when known.
pub fn response_framing(
    status: u16,
    request: Option<&Method>,
    fields: &FieldSummary<'_>,
    version: Version,
    issues: &mut Vec<HeadIssue>,
) -> Result<BodyFraming, HeadIssue> {
    let success = (200..300).contains(&status);
    if status == 101 || (success && request == Some(&Method::Connect)) {
        return Ok(BodyFraming::Tunnel);
    }
    if request == Some(&Method::Head)
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        return Ok(BodyFraming::None);
    }
    if let Some(te) = &fields.transfer_encoding {
        if check_transfer_encoding(te, fields, version, issues) {
            return Ok(BodyFraming::Chunked);
        }
        return Ok(BodyFraming::UntilClose);
    }
    match length_framing(fields.content_length)? {
        BodyFraming::None if fields.content_length == ContentLength::Absent => {
            Ok(BodyFraming::UntilClose)
        }
        framing => Ok(framing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use httparse::EMPTY_HEADER;

    /// Owned copy of a parsed request head: method, target, version, fields, issues.
    type OwnedRequest = (
        String,
        Vec<u8>,
        Version,
        Vec<(String, Vec<u8>)>,
        Vec<HeadIssue>,
    );
    /// Owned copy of a parsed response head: version, status, reason, field count, issues.
    type OwnedResponse = (Version, u16, Vec<u8>, usize, Vec<HeadIssue>);

    fn req(head: &[u8]) -> Result<OwnedRequest, HeadError> {
        let mut storage = [EMPTY_HEADER; 16];
        let h = parse_request_head(head, &mut storage)?;
        let fields = h
            .headers
            .iter()
            .map(|f| (f.name.to_owned(), f.value.to_vec()))
            .collect();
        Ok((
            h.method.to_owned(),
            h.target.to_vec(),
            h.version,
            fields,
            h.issues,
        ))
    }

    fn resp(head: &[u8]) -> Result<OwnedResponse, HeadError> {
        let mut storage = [EMPTY_HEADER; 16];
        let h = parse_response_head(head, &mut storage)?;
        Ok((
            h.version,
            h.status,
            h.reason.to_vec(),
            h.headers.len(),
            h.issues,
        ))
    }

    fn kinds(issues: &[HeadIssue]) -> Vec<AnomalyKind> {
        issues.iter().map(|i| i.kind).collect()
    }

    #[test]
    fn rfc9110_3_9_example_request() {
        let head = b"GET /hello.txt HTTP/1.1\r\nUser-Agent: curl/7.64.1\r\nHost: www.example.com\r\nAccept-Language: en, mi\r\n\r\n";
        assert_eq!(find_head_end(head, 0), HeadEnd::Complete(head.len()));
        let (method, target, version, fields, issues) = req(head).unwrap();
        assert_eq!(
            (method.as_str(), target.as_slice(), version),
            ("GET", &b"/hello.txt"[..], Version::Http11)
        );
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[1], ("Host".to_owned(), b"www.example.com".to_vec()));
        assert!(issues.is_empty());
    }

    #[test]
    fn rfc9112_3_2_request_target_forms() {
        // §3.2.1 origin-form, §3.2.2 absolute-form, §3.2.3 authority-form, §3.2.4 asterisk-form.
        for (head, method, target) in [
            (
                &b"GET /where?q=now HTTP/1.1\r\nHost: www.example.org\r\n\r\n"[..],
                "GET",
                &b"/where?q=now"[..],
            ),
            (
                b"GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\n\r\n",
                "GET",
                b"http://www.example.org/pub/WWW/TheProject.html",
            ),
            (
                b"CONNECT www.example.com:80 HTTP/1.1\r\n\r\n",
                "CONNECT",
                b"www.example.com:80",
            ),
            (b"OPTIONS * HTTP/1.1\r\n\r\n", "OPTIONS", b"*"),
        ] {
            let (m, t, _, _, issues) = req(head).unwrap();
            assert_eq!((m.as_str(), t.as_slice()), (method, target));
            assert!(issues.is_empty());
        }
    }

    #[test]
    fn rfc9110_3_9_example_response() {
        let head = b"HTTP/1.1 200 OK\r\nDate: Mon, 27 Jul 2009 12:28:53 GMT\r\nServer: Apache\r\nLast-Modified: Wed, 22 Jul 2009 19:15:56 GMT\r\nETag: \"34aa387-d-1568eb00\"\r\nAccept-Ranges: bytes\r\nContent-Length: 51\r\nVary: Accept-Encoding\r\nContent-Type: text/plain\r\n\r\n";
        let (version, status, reason, n, issues) = resp(head).unwrap();
        assert_eq!(
            (version, status, reason.as_slice(), n),
            (Version::Http11, 200, &b"OK"[..], 8)
        );
        assert!(issues.is_empty());
        let mut storage = [EMPTY_HEADER; 16];
        let h = parse_response_head(head, &mut storage).unwrap();
        let s = summarize_fields(head, h.headers);
        assert_eq!(s.content_length, ContentLength::Valid(51));
        assert_eq!(s.content_type, Some(&b"text/plain"[..]));
        assert_eq!(
            response_framing(
                200,
                Some(&Method::Get),
                &s,
                Version::Http11,
                &mut Vec::new()
            ),
            Ok(BodyFraming::Length(51))
        );
    }

    #[test]
    fn field_names_match_in_any_case_rfc9110_5_1() {
        let spellings = [
            "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\nContent-Type: t\r\n\
Content-Length: 5\r\nAuthorization: Bearer x\r\nUpgrade: ws\r\n\
Connection: Upgrade\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\
Server: s\r\n\r\n",
            "GET / HTTP/1.1\r\nHOST: h\r\nuser-agent: ua\r\ncontent-TYPE: t\r\n\
CONTENT-LENGTH: 5\r\nauthorization: Bearer x\r\nuPgRaDe: ws\r\n\
connection: Upgrade\r\nEXPECT: 100-continue\r\ntransfer-encoding: chunked\r\n\
sErVeR: s\r\n\r\n",
        ];
        for head in spellings {
            let (s, _) = summary_of(head.as_bytes());
            assert_eq!(
                (s.host, s.host_count, s.user_agent, s.content_type),
                (Some(&b"h"[..]), 1, Some(&b"ua"[..]), Some(&b"t"[..])),
                "{head}"
            );
            assert_eq!(s.content_length, ContentLength::Valid(5));
            assert_eq!(s.authorization, Some(&b"Bearer x"[..]));
            assert_eq!(s.upgrade, Some(&b"ws"[..]));
            assert_eq!(s.server, Some(&b"s"[..]));
            assert!(s.connection_upgrade && s.expect_continue);
            assert!(s.transfer_encoding.is_some_and(|te| te.chunked_final));
        }
        // Names of the same lengths that are none of these.
        let (s, _) = summary_of(
            b"GET / HTTP/1.1\r\nHosT: a\r\nDate: d\r\nKeep-Alive: k\r\nAccept: a\r\n\
Content-Types: x\r\nContent-Lengt: 1\r\nX-Authorization: y\r\nServir: s\r\n\r\n",
        );
        assert_eq!((s.host, s.host_count), (Some(&b"a"[..]), 1));
        assert_eq!((s.user_agent, s.content_type), (None, None));
        assert_eq!(s.content_length, ContentLength::Absent);
        assert_eq!((s.authorization, s.server), (None, None));
        assert!(!s.connection_upgrade && !s.expect_continue);
    }

    #[test]
    fn head_end_detection() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.0\n\nrest", 0),
            HeadEnd::Complete(16)
        );
        assert_eq!(
            find_head_end(b"GET / HTTP/1.0\r\n\r\n", 0),
            HeadEnd::Complete(18)
        );
        assert_eq!(
            find_head_end(b"GET / HTTP/1.0\r\n", 0),
            HeadEnd::Partial { resume: 15 }
        );
        assert_eq!(
            find_head_end(b"GET / HTTP/1.0\r\n\r", 0),
            HeadEnd::Partial { resume: 15 }
        );
        assert_eq!(
            find_head_end(b"GET / HTT", 0),
            HeadEnd::Partial { resume: 9 }
        );
        assert_eq!(
            find_head_end(b"GET / HTTP/1.0\r\nA: b\r\n\r\n", 15),
            HeadEnd::Complete(24)
        );
    }

    #[test]
    fn request_line_shapes() {
        assert_eq!(
            classify_request_line(b"GET / HTTP/1.1"),
            RequestLineShape::Full
        );
        assert_eq!(
            classify_request_line(b"OPTIONS  HTTP/1.1"),
            RequestLineShape::Full
        );
        assert_eq!(
            classify_request_line(b"GET /zeek.html"),
            RequestLineShape::Simple
        );
        assert_eq!(
            classify_request_line(b"GET /HTTP/1.1"),
            RequestLineShape::Simple
        );
        assert_eq!(classify_request_line(b"HEAD /x"), RequestLineShape::Invalid);
        assert_eq!(
            classify_request_line(b"GET/ HTTP/1.1"),
            RequestLineShape::Invalid
        );
        assert_eq!(classify_request_line(b"OPTIONS"), RequestLineShape::Invalid);
        assert_eq!(
            classify_request_line(b"\xc3\x83 / HTTP/1.1"),
            RequestLineShape::Invalid
        );
        assert_eq!(
            classify_request_line(b"login=foo&password=bar3"),
            RequestLineShape::Invalid
        );
        assert!(is_request_line(b"POST /a HTTP/1.1"));
        assert!(!is_request_line(b"POST /a HTTP/2"));
        assert!(!is_request_line(b"GET /a"));
        assert!(is_status_line(b"HTTP/1.1 200 OK"));
        assert!(is_status_line(b"http/1.0 404"));
        assert!(!is_status_line(b"HTTP/x"));
        assert_eq!(request_start(b"GE"), RequestStart::Undecided);
        assert_eq!(request_start(b""), RequestStart::Undecided);
        assert_eq!(request_start(b"GET /partial"), RequestStart::Started);
        assert_eq!(request_start(b"\x16\x03\x01"), RequestStart::Mismatch);
        assert_eq!(request_start(b" GET"), RequestStart::Mismatch);
        assert_eq!(request_start(b"OPTIONS\n"), RequestStart::Mismatch);
        assert_eq!(
            request_start(&[b'A'; MAX_METHOD_BYTES + 1]),
            RequestStart::Mismatch
        );
        assert_eq!(
            request_start(&[b'A'; MAX_METHOD_BYTES]),
            RequestStart::Undecided
        );
    }

    #[test]
    fn lenient_request_lines() {
        // RFC 9112 §3: whitespace-delimited parsing is allowed, with evidence.
        let (m, t, v, _, issues) = req(b"GET  /a\tHTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            (m.as_str(), t.as_slice(), v),
            ("GET", &b"/a"[..], Version::Http11)
        );
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidRequestLine]);
        let (_, _, v, _, issues) = req(b"GET / HTTP/1.2\r\n\r\n").unwrap();
        assert_eq!(v, Version::Other { major: 1, minor: 2 });
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidVersion]);
        let (_, _, v, _, issues) = req(b"GET / http/1.1\r\n\r\n").unwrap();
        assert_eq!(v, Version::Http11);
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidVersion]);
        assert_eq!(
            req(b"OPTIONS  HTTP/1.1\r\n\r\n").unwrap_err(),
            HeadError::InvalidRequestLine
        );
        assert_eq!(
            req(b"GET / HTTP/1.1 extra\r\n\r\n").unwrap_err(),
            HeadError::InvalidRequestLine
        );
        assert_eq!(
            req(b"GET / FTP/1.1\r\n\r\n").unwrap_err(),
            HeadError::InvalidRequestLine
        );
        // Empty lines before the request line are skipped (RFC 9112 §2.2).
        let (m, ..) = req(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(m, "GET");
    }

    #[test]
    fn lenient_status_lines() {
        // Non-numeric status "2XX": keep the leading digits, report it.
        let (v, status, reason, n, issues) =
            resp(b"HTTP/1.0 2XX OK\r\nServer: POC\r\nContent-Length:4\r\n\r\n").unwrap();
        assert_eq!(
            (v, status, reason.as_slice(), n),
            (Version::Http10, 2, &b"OK"[..], 2)
        );
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidStatusCode]);
        // Missing reason phrase is fine (RFC 9112 §4: reason-phrase is optional).
        let (_, status, reason, _, issues) = resp(b"HTTP/1.1 204\r\n\r\n").unwrap();
        assert_eq!((status, reason.as_slice()), (204, &b""[..]));
        assert!(issues.is_empty());
        // Lower-case HTTP-name.
        let (v, status, _, _, issues) = resp(b"http/1.1 200 OK\r\nserver: nginx\r\n\r\n").unwrap();
        assert_eq!((v, status), (Version::Http11, 200));
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidVersion]);
        // Out-of-range code.
        let (_, status, _, _, issues) = resp(b"HTTP/1.1 999 Odd\r\n\r\n").unwrap();
        assert_eq!(status, 999);
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidStatusCode]);
        let (_, status, _, _, issues) = resp(b"HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(status, 0);
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidStatusCode]);
        assert_eq!(
            resp(b"SSH-2.0-OpenSSH_8.9\r\n\r\n").unwrap_err(),
            HeadError::InvalidStatusLine
        );
    }

    #[test]
    fn malformed_field_lines_are_skipped_with_evidence() {
        // A field line without ':' (seen in a real S3 403 response).
        let head = b"HTTP/1.1 403 Forbidden\r\nx-amz-request-id2 CA4DB8F36423461F\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut storage = [EMPTY_HEADER; 16];
        let h = parse_response_head(head, &mut storage).unwrap();
        assert_eq!(h.status, 403);
        assert_eq!(h.headers.len(), 2);
        assert_eq!(kinds(&h.issues), [AnomalyKind::InvalidHeader]);
        let s = summarize_fields(head, h.headers);
        assert!(s.transfer_encoding.is_some_and(|t| t.chunked_final));

        // Whitespace before the colon of Transfer-Encoding (RFC 9112 §5.1).
        let (_, _, _, fields, issues) =
            req(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n").unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(kinds(&issues), [AnomalyKind::ObfuscatedTransferEncoding]);
        let (_, _, _, _, issues) = req(b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n").unwrap();
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidContentLength]);
        // obs-fold (RFC 9112 §5.2).
        let (_, _, _, fields, issues) =
            req(b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n").unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidHeader]);
        // A control byte in a value is kept, with evidence.
        let (_, _, _, fields, issues) = req(b"GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n").unwrap();
        assert_eq!(fields, [("X-A".to_owned(), b"a\x01b".to_vec())]);
        assert_eq!(kinds(&issues), [AnomalyKind::InvalidHeader]);
    }

    #[test]
    fn control_byte_detail_caps_a_long_field_name() {
        // Found by the fuzz target: the detail quoted the whole field name,
        // as long as the head allows (64 KiB by default).
        let name = "N".repeat(300);
        let head = format!("GET / HTTP/1.1\r\n{name}: a\x01b\r\n\r\n");
        let (.., issues) = req(head.as_bytes()).unwrap();
        let expected = format!(
            "control byte in the value of {}...",
            "N".repeat(MAX_DETAIL_BYTES)
        );
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].detail, expected);
    }

    #[test]
    fn issue_count_is_bounded() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..50 {
            head.extend_from_slice(b"no colon here\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let (.., issues) = req(&head).unwrap();
        assert_eq!(issues.len(), MAX_ISSUES_PER_HEAD);
    }

    #[test]
    fn too_many_headers() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..17 {
            head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert_eq!(req(&head).unwrap_err(), HeadError::TooManyHeaders(16));
        // Exactly at the limit is fine.
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..16 {
            head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert_eq!(req(&head).unwrap().3.len(), 16);
        // Also on the lenient path.
        let mut head = b"GET  / HTTP/1.1\r\n".to_vec();
        for i in 0..17 {
            head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert_eq!(req(&head).unwrap_err(), HeadError::TooManyHeaders(16));
    }

    fn summary_of(head: &[u8]) -> (FieldSummary<'_>, Version) {
        let mut storage = [EMPTY_HEADER; 16];
        let h = parse_request_head(head, &mut storage).unwrap();
        (summarize_fields(head, h.headers), h.version)
    }

    #[test]
    fn request_framing_rfc9112_6_3() {
        let framing = |head: &[u8]| {
            let (s, v) = summary_of(head);
            let mut issues = Vec::new();
            (request_framing(&s, v, &mut issues), kinds(&issues))
        };
        assert_eq!(
            framing(b"GET / HTTP/1.1\r\n\r\n"),
            (Ok(BodyFraming::None), vec![])
        );
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            (Ok(BodyFraming::None), vec![])
        );
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nContent-Length: 22\r\n\r\n"),
            (Ok(BodyFraming::Length(22)), vec![])
        );
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            (Ok(BodyFraming::Chunked), vec![])
        );
        // Item 3: TE and CL together, TE wins.
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n"),
            (
                Ok(BodyFraming::Chunked),
                vec![AnomalyKind::TransferEncodingWithContentLength]
            )
        );
        // Item 4: chunked not final in a request.
        let (result, issues) =
            framing(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        assert_eq!(
            result.unwrap_err().kind,
            AnomalyKind::UnsupportedTransferEncoding
        );
        assert!(issues.is_empty());
        let (result, issues) = framing(b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n");
        assert_eq!(
            result.unwrap_err().kind,
            AnomalyKind::UnsupportedTransferEncoding
        );
        assert_eq!(issues, [AnomalyKind::ObfuscatedTransferEncoding]);
        // Trailing space after "chunked": canonical framing, flagged.
        assert_eq!(
            framing(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked \r\n\r\n"),
            (
                Ok(BodyFraming::Chunked),
                vec![AnomalyKind::ObfuscatedTransferEncoding]
            )
        );
        // Item 5: invalid Content-Length.
        let (result, _) =
            framing(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(result.unwrap_err().kind, AnomalyKind::InvalidContentLength);
        let (result, _) = framing(b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n");
        assert_eq!(result.unwrap_err().kind, AnomalyKind::InvalidContentLength);
        // §6.1: Transfer-Encoding in HTTP/1.0.
        assert_eq!(
            framing(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (
                Ok(BodyFraming::Chunked),
                vec![AnomalyKind::TransferEncodingInHttp10]
            )
        );
    }

    #[test]
    fn response_framing_rfc9112_6_3() {
        let fields = |head: &'static [u8]| {
            let mut storage = [EMPTY_HEADER; 16];
            let h = parse_response_head(head, &mut storage).unwrap();
            summarize_fields(head, h.headers)
        };
        let cl = fields(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
        let te = fields(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let te_gzip = fields(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        let none = fields(b"HTTP/1.1 200 OK\r\n\r\n");
        let bad = fields(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n");
        let f = |status, method: Option<Method>, s: &FieldSummary<'_>| {
            response_framing(status, method.as_ref(), s, Version::Http11, &mut Vec::new())
        };
        // Item 1: HEAD, 1xx, 204, 304 have no body whatever the fields say.
        assert_eq!(f(200, Some(Method::Head), &cl), Ok(BodyFraming::None));
        assert_eq!(f(100, Some(Method::Post), &cl), Ok(BodyFraming::None));
        assert_eq!(f(204, Some(Method::Get), &te), Ok(BodyFraming::None));
        assert_eq!(f(304, Some(Method::Get), &cl), Ok(BodyFraming::None));
        // Item 2: 2xx to CONNECT, and 101, become tunnels.
        assert_eq!(f(200, Some(Method::Connect), &cl), Ok(BodyFraming::Tunnel));
        assert_eq!(
            f(407, Some(Method::Connect), &cl),
            Ok(BodyFraming::Length(10))
        );
        assert_eq!(f(101, Some(Method::Get), &none), Ok(BodyFraming::Tunnel));
        // Items 3, 6, 8.
        assert_eq!(f(200, Some(Method::Get), &te), Ok(BodyFraming::Chunked));
        assert_eq!(
            f(200, Some(Method::Get), &te_gzip),
            Ok(BodyFraming::UntilClose)
        );
        assert_eq!(f(200, None, &cl), Ok(BodyFraming::Length(10)));
        assert_eq!(f(200, None, &none), Ok(BodyFraming::UntilClose));
        // Item 5.
        assert_eq!(
            f(200, None, &bad).unwrap_err().kind,
            AnomalyKind::InvalidContentLength
        );
    }

    #[test]
    fn field_summary() {
        let head = b"GET / HTTP/1.1\r\nhost: a\r\nHOST: b\r\nuser-agent: ua\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nExpect: 100-Continue\r\nAuthorization: Basic x\r\n\r\n";
        let (s, _) = summary_of(head);
        assert_eq!((s.host, s.host_count), (Some(&b"a"[..]), 2));
        assert_eq!(s.user_agent, Some(&b"ua"[..]));
        assert!(s.connection_upgrade && s.expect_continue);
        assert_eq!(s.upgrade, Some(&b"websocket"[..]));
        assert_eq!(s.authorization, Some(&b"Basic x"[..]));
        // The obfuscated header of the suricata capture: ",<TAB>chunked,".
        let (s, _) = summary_of(
            b"HEAD / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: ,\tchunked,\r\n\r\n",
        );
        let te = s.transfer_encoding.unwrap();
        assert!(te.chunked_final);
        assert!(te.obfuscation.is_some());
    }

    #[test]
    fn probe_client_side() {
        use Direction::ToServer as C;
        assert_eq!(probe(b"GET / HTTP/1.1\r\n", C), Probe::Match);
        assert_eq!(probe(b"QUERY /users HTTP/1.1\r\n", C), Probe::Match);
        assert_eq!(probe(b"M-SEARCH * HTTP/1.1\r\n", C), Probe::Match);
        assert_eq!(probe(b"\r\nGET / HTTP/1.0", C), Probe::Match);
        assert_eq!(probe(b"GET /zeek.html\r\n", C), Probe::Match);
        assert_eq!(probe(b"POST /x\r\n", C), Probe::NoMatch);
        assert_eq!(probe(b"", C), Probe::NeedMore);
        assert_eq!(probe(b"GE", C), Probe::NeedMore);
        assert_eq!(probe(b"GET /long/path", C), Probe::NeedMore);
        assert_eq!(probe(b"GET / HTT", C), Probe::NeedMore);
        assert_eq!(probe(b"GET / FTP/1.1", C), Probe::NoMatch);
        assert_eq!(probe(b"GET  / HTTP/1.1", C), Probe::NoMatch);
        assert_eq!(probe(b"\x16\x03\x01\x02\x00", C), Probe::NoMatch);
        assert_eq!(probe(b"\x10\x0c\x00\x04MQTT", C), Probe::NoMatch);
        assert_eq!(probe(b"SSH-2.0-OpenSSH_8.9\r\n", C), Probe::NoMatch);
        // Bounded: a standard method with a huge target decides at the limit.
        let mut long = b"GET /".to_vec();
        long.resize(PROBE_MAX_BYTES + 10, b'a');
        assert_eq!(probe(&long, C), Probe::Match);
        let mut long = b"FOO /".to_vec();
        long.resize(PROBE_MAX_BYTES + 10, b'a');
        assert_eq!(probe(&long, C), Probe::NoMatch);
        assert_eq!(probe(&[b'A'; MAX_METHOD_BYTES + 1], C), Probe::NoMatch);
    }

    #[test]
    fn probe_server_side() {
        use Direction::ToClient as S;
        assert_eq!(probe(b"HTTP/1.1 200 OK\r\n", S), Probe::Match);
        assert_eq!(probe(b"http/1.1 200 OK\r\n", S), Probe::Match);
        assert_eq!(probe(b"HTTP/1", S), Probe::NeedMore);
        assert_eq!(probe(b"", S), Probe::NeedMore);
        assert_eq!(probe(b"HTTP/2.0 200", S), Probe::NoMatch);
        assert_eq!(probe(b"SSH-2.0", S), Probe::NoMatch);
        assert_eq!(probe(b"<html>", S), Probe::NoMatch);
    }

    #[test]
    fn mutated_heads_keep_the_parsers_properties() {
        let seeds: [&[u8]; 4] = [
            b"GET /hello.txt HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.0 2XX OK\r\nServer: POC\r\nContent-Length:4\r\n\r\n",
            b"POST / HTTP/1.1\r\nAuthorization: Basic dGVzdDpwYTpzczp3b3Jk\r\n\r\n",
            b"GET /x\r\n",
        ];
        let mut state = 0x2545_f491_u32;
        for seed in seeds {
            for round in 0..400 {
                let mut bytes = seed.to_vec();
                for _ in 0..(1 + round % 4) {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    let i = state as usize % bytes.len();
                    bytes[i] = (state >> 8) as u8;
                }
                bytes.truncate(state as usize % (bytes.len() + 1));
                check_mutated_head(&bytes);
            }
        }
    }

    /// What the head parsers may say about any bytes: the head ends at the
    /// first empty line (RFC 9112 §2.2: a bare LF ends a line too), found here
    /// by a plain scan; a parsed request's method and target are bytes of the
    /// input; a parsed status is at most three digits of the status line; a line
    /// taken for a request line ends in an HTTP/1.x version (RFC 9112 §3).
    fn check_mutated_head(bytes: &[u8]) {
        let empty_line = (0..bytes.len()).find_map(|i| {
            let rest = &bytes[i..];
            if rest.starts_with(b"\n\n") {
                Some(i + 2)
            } else if rest.starts_with(b"\n\r\n") {
                Some(i + 3)
            } else {
                None
            }
        });
        match find_head_end(bytes, 0) {
            HeadEnd::Complete(n) => assert_eq!(Some(n), empty_line, "{bytes:?}"),
            HeadEnd::Partial { resume } => {
                assert_eq!(empty_line, None, "{bytes:?}");
                assert!(resume <= bytes.len(), "{bytes:?}");
            }
        }
        let contains = |part: &[u8]| bytes.windows(part.len().max(1)).any(|w| w == part);
        let mut storage = [EMPTY_HEADER; 8];
        if let Ok(h) = parse_request_head(bytes, &mut storage) {
            assert!(bytes.starts_with(h.method.as_bytes()), "{bytes:?}");
            assert!(h.target.is_empty() || contains(h.target), "{bytes:?}");
            assert!(h.headers.len() <= 8);
        }
        let mut storage = [EMPTY_HEADER; 8];
        if let Ok(h) = parse_response_head(bytes, &mut storage) {
            let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
            // A malformed code such as "2XX" keeps its leading digits.
            let digits = h.status.to_string();
            assert!(
                h.status <= 999
                    && first_line
                        .windows(digits.len())
                        .any(|w| w == digits.as_bytes()),
                "{bytes:?} status {}",
                h.status
            );
            let s = summarize_fields(bytes, h.headers);
            let _ = response_framing(h.status, None, &s, h.version, &mut Vec::new());
        }
        if let Some((line, _)) = split_first_line(bytes)
            && is_request_line(line)
        {
            let version = &line[line.len() - 8..];
            assert!(version[..7].eq_ignore_ascii_case(b"HTTP/1."), "{line:?}");
            assert_eq!(classify_request_line(line), RequestLineShape::Full);
        }
    }
}
