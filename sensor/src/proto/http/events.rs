//! Typed events emitted by [`HttpSession`](super::HttpSession).
//!
//! Every string is owned and capped in length (see
//! [`HttpLimits`](super::HttpLimits)); no event ever holds a password: Basic
//! credentials keep only the user name, a presence flag, the password's
//! length (RFC 7617 §2) and the keyed credential digest, and `userinfo` in a
//! request target loses its password part before it is stored (RFC 9110
//! §4.2.4).

use crate::flow::Direction;
use crate::proto::credential::CredentialDigest;
use crate::proto::inline::InlineStr;
use crate::proto::text::capped;

/// Longest extension method name kept in [`Method::Unknown`], in bytes.
pub const MAX_METHOD_BYTES: usize = 32;

/// One thing the HTTP session observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpEvent {
    /// A request head (request line and header section) was parsed.
    Request(HttpRequest),
    /// A response head was parsed (interim 1xx responses included).
    Response(HttpResponse),
    /// A message body ended (completely, or cut short by a gap or the close).
    Body(HttpBody),
    /// The connection stopped carrying HTTP: both directions are now opaque.
    Tunnel(TunnelKind),
    /// Something was wrong; see [`AnomalyKind`].
    Anomaly(HttpAnomaly),
}

/// Request method (RFC 9110 §9). Method names are case-sensitive (§9.1), so
/// `get` is an extension method, carried as `Unknown("get")`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    /// RFC 5789.
    Patch,
    /// Any other token, e.g. `QUERY`, `M-SEARCH`, `CCM_POST` (capped at
    /// [`MAX_METHOD_BYTES`]).
    Unknown(String),
}

impl Method {
    /// Maps a method token to its variant (exact, case-sensitive match).
    pub fn from_token(token: &str) -> Self {
        Self::standard(token.as_bytes())
            .unwrap_or_else(|| Method::Unknown(capped(token.as_bytes(), MAX_METHOD_BYTES)))
    }

    /// The variant of a standard method token (exact, case-sensitive match),
    /// `None` for an extension method; allocates nothing.
    pub fn standard(token: &[u8]) -> Option<Self> {
        Some(match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            _ => return None,
        })
    }

    /// The method name as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Unknown(name) => name,
            standard => standard.standard_name().unwrap_or_default(),
        }
    }

    /// The name of a standard method; `None` for an extension method.
    pub fn standard_name(&self) -> Option<&'static str> {
        Some(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Unknown(_) => return None,
        })
    }
}

/// Protocol version of a message (RFC 9112 §2.3; HTTP/0.9 is RFC 1945 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// A simple request (`GET /path` without a version) or its bare reply.
    Http09,
    Http10,
    Http11,
    /// Any other `HTTP/<digit>.<digit>`; always reported as an anomaly too.
    Other {
        major: u8,
        minor: u8,
    },
}

/// Credentials seen in the `Authorization` header (RFC 9110 §11.6.2).
///
/// Passwords and tokens are never kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// RFC 7617: `user` is the user-id (everything before the first `:` of the
    /// decoded credentials, capped); the password is only measured.
    Basic {
        user: String,
        has_password: bool,
        password_len: usize,
        /// [`crate::proto::credential::digest`] of the whole user-id and the
        /// password (empty included). Always `Some` for Basic; an `Option` like
        /// the other protocols' logins. Debug-redacted, never logged.
        credential: Option<CredentialDigest>,
    },
    /// RFC 7616: the `username` parameter, when present (capped).
    Digest { user: Option<String> },
    /// RFC 6750; the token is not kept.
    Bearer,
    /// Any other scheme (capped), or a `Basic` header whose credentials could
    /// not be decoded (then an [`AnomalyKind::InvalidAuthorization`] follows).
    Other(String),
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    /// The request-target (RFC 9112 §3.2), capped, userinfo password removed.
    pub uri: InlineStr<URI_INLINE>,
    pub version: Version,
    pub host: Option<InlineStr<HOST_INLINE>>,
    pub user_agent: Option<InlineStr<USER_AGENT_INLINE>>,
    pub content_type: Option<InlineStr<CONTENT_TYPE_INLINE>>,
    /// Valid `Content-Length` value, if any (RFC 9110 §8.6).
    pub content_length: Option<u64>,
    /// The body uses the chunked transfer coding (RFC 9112 §7.1).
    pub chunked: bool,
    pub auth: Auth,
}

/// Bytes of a request-target held in a request event without a heap
/// allocation ("/api/v1/devices/42/state?verbose=1").
pub const URI_INLINE: usize = 46;
/// ...of a `Host` field ("camera-07.lan:8080", "192.168.100.200:8443").
pub const HOST_INLINE: usize = 30;
/// ...of a `User-Agent` field ("curl/7.88.1", "Wget/1.21.3", "okhttp/4.12.0").
pub const USER_AGENT_INLINE: usize = 38;
/// Bytes of a reason phrase held in a response event without a heap
/// allocation ("Not Found", "Internal Server Error").
pub const REASON_INLINE: usize = 22;
/// ...of a media type ("application/json; charset=utf-8").
pub const CONTENT_TYPE_INLINE: usize = 38;
/// ...of a `Server` field ("Apache/2.4.57 (Debian)", "lighttpd/1.4.69").
pub const SERVER_INLINE: usize = 30;

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code; for a malformed code such as `2XX` this is the value of
    /// its leading digits (here 2), with an anomaly beside it.
    pub status: u16,
    pub reason: InlineStr<REASON_INLINE>,
    pub version: Version,
    pub content_type: Option<InlineStr<CONTENT_TYPE_INLINE>>,
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// The first `Server` field (RFC 9110 §10.2.4), capped at `max_field_bytes`.
    pub server: Option<InlineStr<SERVER_INLINE>>,
    /// Method of the request this response answers (FIFO pairing), when known.
    pub request_method: Option<Method>,
}

/// Number of leading body bytes kept for content sniffing (e.g. `\x7fELF`).
pub const BODY_HEAD_BYTES: usize = 64;

/// The first bytes of a body (at most [`BODY_HEAD_BYTES`]), held inline so
/// that tracking a body and emitting its event allocate nothing. Reads as a
/// byte slice (`Deref<Target = [u8]>`).
#[derive(Clone, Copy)]
pub struct BodyHead {
    bytes: [u8; BODY_HEAD_BYTES],
    len: usize,
}

impl BodyHead {
    /// The first [`BODY_HEAD_BYTES`] of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut head = BodyHead::default();
        head.extend(bytes);
        head
    }

    /// Appends as much of `data` as there is room for.
    pub fn extend(&mut self, data: &[u8]) {
        let Some(room) = self.bytes.get_mut(self.len..) else {
            return;
        };
        let n = room.len().min(data.len());
        if let (Some(dst), Some(src)) = (room.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
            self.len += n;
        }
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl Default for BodyHead {
    fn default() -> Self {
        BodyHead {
            bytes: [0; BODY_HEAD_BYTES],
            len: 0,
        }
    }
}

impl std::ops::Deref for BodyHead {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&[u8]> for BodyHead {
    fn from(bytes: &[u8]) -> Self {
        BodyHead::new(bytes)
    }
}

impl PartialEq for BodyHead {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for BodyHead {}

impl std::fmt::Debug for BodyHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_bytes().fmt(f)
    }
}

/// End of one message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpBody {
    pub dir: Direction,
    /// Body length in bytes after removing the chunked framing; bytes lost in
    /// capture gaps are counted.
    pub total_len: u64,
    /// First bytes of the body (at most [`BODY_HEAD_BYTES`]).
    pub head: BodyHead,
    /// The body ended where its framing said it would (or at the close for a
    /// close-delimited body) and no bytes of it were missing.
    pub complete: bool,
}

/// Why the connection became an opaque tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunnelKind {
    /// 2xx answer to CONNECT (RFC 9110 §9.3.6); the requested authority.
    Connect { authority: String },
    /// 101 Switching Protocols (RFC 9110 §15.2.2); the response's `Upgrade`
    /// value (RFC 9110 §7.8), empty if absent.
    Upgrade { protocol: String },
}

/// What the session did after an anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyEffect {
    /// Parsing went on normally.
    Continue,
    /// Bytes are skipped until a line that starts a message.
    Resync,
    /// This direction is no longer parsed.
    StopDirection,
}

/// Kind of protocol anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// HTTP/0.9 simple request (RFC 1945 §4.1), obsolete.
    Http09Request,
    /// Request line not `method SP request-target SP HTTP-version` (RFC 9112 §3).
    InvalidRequestLine,
    /// Response does not start with a status line (RFC 9112 §4).
    InvalidStatusLine,
    /// Status code not three digits in 100..=599 (RFC 9110 §15).
    InvalidStatusCode,
    /// Version other than `HTTP/1.0` or `HTTP/1.1` (RFC 9112 §2.3).
    InvalidVersion,
    /// Malformed field line, skipped or kept as evidence (RFC 9112 §5).
    InvalidHeader,
    /// More header fields than `HttpLimits::max_headers`.
    TooManyHeaders,
    /// Head larger than `HttpLimits::max_head_bytes`.
    HeadTooLarge,
    /// HTTP/1.1 request without a `Host` or with several (RFC 9112 §3.2).
    InvalidHost,
    /// Both `Transfer-Encoding` and `Content-Length`: request smuggling
    /// indicator; chunked framing is followed (RFC 9112 §6.3 item 3, §11.2).
    TransferEncodingWithContentLength,
    /// `Transfer-Encoding` value not in canonical form (extra whitespace,
    /// empty list elements, unknown or repeated codings, e.g. `xchunked`).
    ObfuscatedTransferEncoding,
    /// Request `Transfer-Encoding` whose final coding is not chunked: framing
    /// cannot be determined (RFC 9112 §6.3 item 4).
    UnsupportedTransferEncoding,
    /// `Transfer-Encoding` in an HTTP/1.0 message (RFC 9112 §6.1).
    TransferEncodingInHttp10,
    /// Non-numeric, overflowing or conflicting `Content-Length`
    /// (RFC 9110 §8.6, RFC 9112 §6.3 item 5).
    InvalidContentLength,
    /// Chunk size does not fit in 64 bits (RFC 9112 §7.1).
    ChunkSizeOverflow,
    /// Malformed chunked framing (RFC 9112 §7.1).
    InvalidChunk,
    /// Trailer section larger than `HttpLimits::max_trailer_bytes`.
    TrailerTooLarge,
    /// `Authorization` value that could not be decoded.
    InvalidAuthorization,
    /// `userinfo` in the request target (RFC 9110 §4.2.4).
    UserinfoInUri,
    /// More pipelined requests awaiting a response than
    /// `HttpLimits::max_pending_requests`.
    PipelineLimit,
    /// A capture gap could not be skipped inside a body.
    GapLostSync,
    /// The connection closed in the middle of a head.
    TruncatedHead,
    /// Too much data while a CONNECT or Upgrade request awaited its answer.
    BufferLimit,
    /// Client data sent after an Upgrade request and before the 101 that
    /// switched the connection (RFC 9110 §7.8, RFC 6455 §4.1).
    DataBeforeSwitch,
}

impl AnomalyKind {
    /// Stable snake_case name, the one every output uses (logs, summary,
    /// rule events).
    pub fn as_str(self) -> &'static str {
        use AnomalyKind as K;
        match self {
            K::Http09Request => "http09_request",
            K::InvalidRequestLine => "invalid_request_line",
            K::InvalidStatusLine => "invalid_status_line",
            K::InvalidStatusCode => "invalid_status_code",
            K::InvalidVersion => "invalid_version",
            K::InvalidHeader => "invalid_header",
            K::TooManyHeaders => "too_many_headers",
            K::HeadTooLarge => "head_too_large",
            K::InvalidHost => "invalid_host",
            K::TransferEncodingWithContentLength => "transfer_encoding_with_content_length",
            K::ObfuscatedTransferEncoding => "obfuscated_transfer_encoding",
            K::UnsupportedTransferEncoding => "unsupported_transfer_encoding",
            K::TransferEncodingInHttp10 => "transfer_encoding_in_http10",
            K::InvalidContentLength => "invalid_content_length",
            K::ChunkSizeOverflow => "chunk_size_overflow",
            K::InvalidChunk => "invalid_chunk",
            K::TrailerTooLarge => "trailer_too_large",
            K::InvalidAuthorization => "invalid_authorization",
            K::UserinfoInUri => "userinfo_in_uri",
            K::PipelineLimit => "pipeline_limit",
            K::GapLostSync => "gap_lost_sync",
            K::TruncatedHead => "truncated_head",
            K::BufferLimit => "buffer_limit",
            K::DataBeforeSwitch => "data_before_switch",
        }
    }
}

/// A protocol anomaly with evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnomaly {
    pub dir: Direction,
    pub kind: AnomalyKind,
    /// Escaped, capped evidence (never credentials).
    pub detail: String,
    pub effect: AnomalyEffect,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_rfc9110_9_1() {
        assert_eq!(Method::from_token("GET"), Method::Get);
        assert_eq!(Method::from_token("get"), Method::Unknown("get".into()));
        assert_eq!(Method::from_token("QUERY"), Method::Unknown("QUERY".into()));
        assert_eq!(Method::from_token("PATCH").as_str(), "PATCH");
        assert_eq!(Method::from_token("M-SEARCH").as_str(), "M-SEARCH");
        assert_eq!(Method::standard(b"PUT"), Some(Method::Put));
        assert_eq!(Method::standard(b"put"), None);
        assert_eq!(Method::standard(b"M-SEARCH"), None);
    }

    #[test]
    fn unknown_method_is_capped() {
        let long = "X".repeat(MAX_METHOD_BYTES + 10);
        assert_eq!(Method::from_token(&long).as_str().len(), MAX_METHOD_BYTES);
    }

    #[test]
    fn body_head_keeps_the_first_bytes_only() {
        let mut head = BodyHead::new(b"abc");
        assert_eq!(head.as_bytes(), b"abc");
        head.extend(&[b'x'; BODY_HEAD_BYTES]);
        assert_eq!(head.len(), BODY_HEAD_BYTES);
        assert_eq!(&head[..4], b"abcx");
        head.extend(b"more");
        assert_eq!(head.len(), BODY_HEAD_BYTES);
        assert_eq!(BodyHead::new(&[7; 100])[..], [7; BODY_HEAD_BYTES]);
        assert_eq!(BodyHead::default().as_bytes(), b"");
        assert_eq!(format!("{:?}", BodyHead::new(b"\x01\x02")), "[1, 2]");
    }
}
