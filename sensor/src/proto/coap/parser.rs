//! Zero-copy CoAP message view (RFC 7252 §3, §3.1, §3.2, §4.1, §5.4, §5.10, §12.1).
//!
//! [`CoapMessage::parse`] is the single checked entry: it checks the 4-byte header
//! and the token, then walks the option list once to find where the options end
//! and the payload starts. After that every accessor is a plain read of the
//! borrowed datagram.
//!
//! A UDP datagram is complete by construction, so the three parser outcomes of
//! STYLE.md map as follows: a message (possibly carrying a recorded
//! [`ParseError`] for its option area, see below), "incomplete" becomes one of
//! the `Truncated*` errors (the datagram ended inside a field), and a typed
//! [`ParseError`].
//!
//! Lenient decoding: a message whose header and token are valid is always
//! returned, even when its option area breaks a §3.1 rule. The options up to the
//! first broken one stay readable and the problem is kept as
//! [`CoapMessage::format_error`], so the session can report what was parsed and
//! why the rest was not. [`CoapMessage::parse_strict`] turns that recorded
//! error into an `Err`, which is what an RFC 7252 endpoint would do.

use std::fmt;
use std::ops::Range;

use thiserror::Error;

/// Byte layout of the fixed header (RFC 7252 §3, Figure 7).
mod field {
    use std::ops::Range;
    /// Ver (2 bits) | T (2 bits) | TKL (4 bits).
    pub const VER_T_TKL: usize = 0;
    /// Code: class (3 bits) . detail (5 bits).
    pub const CODE: usize = 1;
    /// Message ID, network byte order.
    pub const MESSAGE_ID: Range<usize> = 2..4;
}

/// Length of the fixed header (RFC 7252 §3).
pub const HEADER_LEN: usize = 4;
/// Longest valid token; lengths 9-15 are reserved (RFC 7252 §3).
pub const MAX_TOKEN_LEN: usize = 8;
/// The only protocol version RFC 7252 defines (§3).
pub const COAP_VERSION: u8 = 1;
/// Byte that ends the options and starts a non-empty payload (RFC 7252 §3).
pub const PAYLOAD_MARKER: u8 = 0xFF;
/// Nibble value: one extension byte follows, value minus 13 (RFC 7252 §3.1).
const NIBBLE_EXT8: u8 = 13;
/// Nibble value: two extension bytes follow, value minus 269 (RFC 7252 §3.1).
const NIBBLE_EXT16: u8 = 14;
/// Nibble value reserved for the payload marker (RFC 7252 §3.1).
const NIBBLE_RESERVED: u8 = 15;
/// Bias of the one-byte extended delta/length (RFC 7252 §3.1).
pub const EXT8_BIAS: u32 = 13;
/// Bias of the two-byte extended delta/length (RFC 7252 §3.1).
pub const EXT16_BIAS: u32 = 269;
/// Largest delta or length the extended encoding can express: 65535 + 269.
pub const MAX_EXTENDED_VALUE: u32 = 0xFFFF + EXT16_BIAS;
/// Option numbers are 16-bit (RFC 7252 §12.2 registry range 0-65535).
pub const MAX_OPTION_NUMBER: u32 = 0xFFFF;
/// Option numbers the RFC 7252 registry marks Reserved (§12.2; 128-140 in §5.10.7).
pub const RESERVED_OPTION_NUMBERS: [u16; 5] = [0, 128, 132, 136, 140];

/// Why a datagram (or the option area of a message) is not valid CoAP.
///
/// The first four variants are fatal: [`CoapMessage::parse`] returns them as
/// `Err`. The others are message format errors inside an otherwise readable
/// message; `parse` records them (see [`CoapMessage::format_error`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("datagram of {len} bytes is shorter than the 4-byte CoAP header (RFC 7252 §3)")]
    TruncatedHeader { len: usize },
    #[error("version {0} is not CoAP version 1; such messages are silently ignored (RFC 7252 §3)")]
    BadVersion(u8),
    #[error("token length {0} is reserved (9-15 is a message format error, RFC 7252 §3)")]
    TokenLengthReserved(u8),
    #[error("token of {tkl} bytes runs past the end of the datagram ({available} bytes left)")]
    TruncatedToken { tkl: u8, available: usize },
    #[error("option delta 15 at offset {offset} is not the payload marker (RFC 7252 §3.1)")]
    OptionDeltaReserved { offset: usize },
    #[error("option length 15 at offset {offset} is reserved (RFC 7252 §3.1)")]
    OptionLengthReserved { offset: usize },
    #[error("option at offset {offset} runs past the end of the datagram")]
    TruncatedOption { offset: usize },
    #[error("option at offset {offset} has number {number}, above 65535 (RFC 7252 §12.2)")]
    OptionNumberOverflow { offset: usize, number: u32 },
    #[error("payload marker at offset {offset} is followed by no payload (RFC 7252 §3)")]
    PayloadMarkerWithoutPayload { offset: usize },
    #[error("Empty message (0.00) has {extra} bytes after the Message ID (RFC 7252 §4.1)")]
    EmptyMessageNotEmpty { extra: usize },
}

impl ParseError {
    /// True for errors that leave no message to look at (header or token broken).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ParseError::TruncatedHeader { .. }
                | ParseError::BadVersion(_)
                | ParseError::TokenLengthReserved(_)
                | ParseError::TruncatedToken { .. }
        )
    }

    /// Byte offset in the datagram where the problem starts, when it has one.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            ParseError::OptionDeltaReserved { offset }
            | ParseError::OptionLengthReserved { offset }
            | ParseError::TruncatedOption { offset }
            | ParseError::OptionNumberOverflow { offset, .. }
            | ParseError::PayloadMarkerWithoutPayload { offset } => Some(offset),
            ParseError::TruncatedToken { .. } => Some(HEADER_LEN),
            ParseError::EmptyMessageNotEmpty { .. } => Some(HEADER_LEN),
            ParseError::TruncatedHeader { .. }
            | ParseError::BadVersion(_)
            | ParseError::TokenLengthReserved(_) => Some(0),
        }
    }
}

/// Message type (RFC 7252 §3, §4). All four 2-bit values are assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Confirmable,
    NonConfirmable,
    Acknowledgement,
    Reset,
}

impl MessageType {
    fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => MessageType::Confirmable,
            1 => MessageType::NonConfirmable,
            2 => MessageType::Acknowledgement,
            _ => MessageType::Reset,
        }
    }

    /// Wire value (0 CON, 1 NON, 2 ACK, 3 RST), as tshark's `coap.type`.
    pub fn as_u8(self) -> u8 {
        match self {
            MessageType::Confirmable => 0,
            MessageType::NonConfirmable => 1,
            MessageType::Acknowledgement => 2,
            MessageType::Reset => 3,
        }
    }

    /// Short name used in RFC 7252 figures.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::Confirmable => "CON",
            MessageType::NonConfirmable => "NON",
            MessageType::Acknowledgement => "ACK",
            MessageType::Reset => "RST",
        }
    }
}

/// What a code says a message carries (RFC 7252 §3, §12.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeKind {
    /// 0.00.
    Empty,
    /// 0.01-0.31.
    Request,
    /// 2.00-5.31.
    Response,
    /// Classes 1, 6 and 7. Class 7 is signalling in RFC 8323, which exists only
    /// on reliable transports; over UDP it stays reserved.
    Reserved,
}

/// Request method (RFC 7252 §5.8, §12.1.1; FETCH/PATCH/iPATCH from RFC 8132).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Fetch,
    Patch,
    IPatch,
    /// An unassigned detail in 0.08-0.31.
    Unknown(u8),
}

impl Method {
    /// The method's name (RFC 7252 §12.1.1, RFC 8132 §6), `None` for an
    /// unassigned one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Fetch => "FETCH",
            Method::Patch => "PATCH",
            Method::IPatch => "iPATCH",
            Method::Unknown(_) => return None,
        })
    }
}

/// Every code's text, "c.dd", four bytes each, in the order of the raw byte.
const CODE_TEXT: &str = {
    const BYTES: [u8; 1024] = {
        let mut t = [0u8; 1024];
        let mut i = 0;
        while i < 256 {
            let (class, detail) = ((i >> 5) as u8, (i & 0x1F) as u8);
            t[i * 4] = b'0' + class;
            t[i * 4 + 1] = b'.';
            t[i * 4 + 2] = b'0' + detail / 10;
            t[i * 4 + 3] = b'0' + detail % 10;
            i += 1;
        }
        t
    };
    match std::str::from_utf8(&BYTES) {
        Ok(text) => text,
        Err(_) => panic!("code text is ASCII"),
    }
};

/// The 8-bit Code field: class (3 bits) and detail (5 bits), written "c.dd".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code(u8);

impl Code {
    pub const EMPTY: Code = Code(0);
    pub const GET: Code = Code(1);
    pub const POST: Code = Code(2);
    pub const PUT: Code = Code(3);
    pub const DELETE: Code = Code(4);
    pub const FETCH: Code = Code(5);
    /// 2.04 Changed.
    pub const CHANGED: Code = Code::new(2, 4);
    /// 2.05 Content.
    pub const CONTENT: Code = Code::new(2, 5);
    /// 2.31 Continue (RFC 7959 §2.9.1).
    pub const CONTINUE: Code = Code::new(2, 31);
    /// 4.02 Bad Option.
    pub const BAD_OPTION: Code = Code::new(4, 2);
    /// 4.04 Not Found.
    pub const NOT_FOUND: Code = Code::new(4, 4);

    /// Builds a code from class and detail (masked to 3 and 5 bits).
    pub const fn new(class: u8, detail: u8) -> Code {
        Code(((class & 0x07) << 5) | (detail & 0x1F))
    }

    pub const fn from_u8(raw: u8) -> Code {
        Code(raw)
    }

    pub fn class(self) -> u8 {
        self.0 >> 5
    }

    pub fn detail(self) -> u8 {
        self.0 & 0x1F
    }

    /// The raw byte, i.e. `class * 32 + detail`: the number tshark shows as
    /// `coap.code` (1 GET, 69 = 2.05 Content, ...).
    pub fn number(self) -> u8 {
        self.0
    }

    pub fn kind(self) -> CodeKind {
        match self.class() {
            0 if self.detail() == 0 => CodeKind::Empty,
            0 => CodeKind::Request,
            2..=5 if self.class() != 3 => CodeKind::Response,
            _ => CodeKind::Reserved,
        }
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn is_request(self) -> bool {
        self.kind() == CodeKind::Request
    }

    pub fn is_response(self) -> bool {
        self.kind() == CodeKind::Response
    }

    /// 2.xx.
    pub fn is_success(self) -> bool {
        self.class() == 2
    }

    /// The code as text, "c.dd" (RFC 7252 §3), without formatting.
    pub fn as_str(self) -> &'static str {
        let at = usize::from(self.0) * 4;
        CODE_TEXT.get(at..at + 4).unwrap_or_default()
    }

    pub fn method(self) -> Option<Method> {
        if !self.is_request() {
            return None;
        }
        Some(match self.detail() {
            1 => Method::Get,
            2 => Method::Post,
            3 => Method::Put,
            4 => Method::Delete,
            5 => Method::Fetch,
            6 => Method::Patch,
            7 => Method::IPatch,
            d => Method::Unknown(d),
        })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Option value format (RFC 7252 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueFormat {
    Empty,
    Opaque,
    Uint,
    String,
}

/// Registry properties of a known option: the columns of RFC 7252 Table 4
/// (§5.10) and of the tables in the RFCs that added options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub format: ValueFormat,
    pub min_len: usize,
    pub max_len: usize,
    pub repeatable: bool,
}

/// Option number, typed where known (RFC 7252 §5.10 Table 4, RFC 7641 §2,
/// RFC 7959 §2.1 and §4, RFC 7967 §2, RFC 8613 §2, RFC 8768 §3, RFC 9175 §2.2.1
/// and §3.2.1); every other number is carried as `Unknown(n)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptionNumber {
    IfMatch,
    UriHost,
    ETag,
    IfNoneMatch,
    Observe,
    UriPort,
    LocationPath,
    Oscore,
    UriPath,
    ContentFormat,
    MaxAge,
    UriQuery,
    HopLimit,
    Accept,
    LocationQuery,
    Block2,
    Block1,
    Size2,
    ProxyUri,
    ProxyScheme,
    Size1,
    Echo,
    NoResponse,
    RequestTag,
    Unknown(u16),
}

impl From<u16> for OptionNumber {
    fn from(n: u16) -> Self {
        match n {
            1 => OptionNumber::IfMatch,
            3 => OptionNumber::UriHost,
            4 => OptionNumber::ETag,
            5 => OptionNumber::IfNoneMatch,
            6 => OptionNumber::Observe,
            7 => OptionNumber::UriPort,
            8 => OptionNumber::LocationPath,
            9 => OptionNumber::Oscore,
            11 => OptionNumber::UriPath,
            12 => OptionNumber::ContentFormat,
            14 => OptionNumber::MaxAge,
            15 => OptionNumber::UriQuery,
            16 => OptionNumber::HopLimit,
            17 => OptionNumber::Accept,
            20 => OptionNumber::LocationQuery,
            23 => OptionNumber::Block2,
            27 => OptionNumber::Block1,
            28 => OptionNumber::Size2,
            35 => OptionNumber::ProxyUri,
            39 => OptionNumber::ProxyScheme,
            60 => OptionNumber::Size1,
            252 => OptionNumber::Echo,
            258 => OptionNumber::NoResponse,
            292 => OptionNumber::RequestTag,
            other => OptionNumber::Unknown(other),
        }
    }
}

impl OptionNumber {
    pub fn number(self) -> u16 {
        match self {
            OptionNumber::IfMatch => 1,
            OptionNumber::UriHost => 3,
            OptionNumber::ETag => 4,
            OptionNumber::IfNoneMatch => 5,
            OptionNumber::Observe => 6,
            OptionNumber::UriPort => 7,
            OptionNumber::LocationPath => 8,
            OptionNumber::Oscore => 9,
            OptionNumber::UriPath => 11,
            OptionNumber::ContentFormat => 12,
            OptionNumber::MaxAge => 14,
            OptionNumber::UriQuery => 15,
            OptionNumber::HopLimit => 16,
            OptionNumber::Accept => 17,
            OptionNumber::LocationQuery => 20,
            OptionNumber::Block2 => 23,
            OptionNumber::Block1 => 27,
            OptionNumber::Size2 => 28,
            OptionNumber::ProxyUri => 35,
            OptionNumber::ProxyScheme => 39,
            OptionNumber::Size1 => 60,
            OptionNumber::Echo => 252,
            OptionNumber::NoResponse => 258,
            OptionNumber::RequestTag => 292,
            OptionNumber::Unknown(n) => n,
        }
    }

    /// Odd numbers are critical (RFC 7252 §5.4.6, Figure 11).
    pub fn is_critical(self) -> bool {
        self.number() & 0x01 != 0
    }

    /// Bit 1 set: Unsafe to forward (RFC 7252 §5.4.6).
    pub fn is_unsafe(self) -> bool {
        self.number() & 0x02 != 0
    }

    /// Safe-to-forward and not part of the cache key (RFC 7252 §5.4.6).
    pub fn is_no_cache_key(self) -> bool {
        self.number() & 0x1E == 0x1C
    }

    /// Number the registry marks Reserved (RFC 7252 §12.2, §5.10.7).
    pub fn is_reserved(self) -> bool {
        RESERVED_OPTION_NUMBERS.contains(&self.number())
    }

    pub fn is_known(self) -> bool {
        !matches!(self, OptionNumber::Unknown(_))
    }

    /// Format, length bounds and repeatability of a known option.
    pub fn spec(self) -> Option<OptionSpec> {
        use ValueFormat::{Empty, Opaque, String, Uint};
        let (name, format, min_len, max_len, repeatable) = match self {
            OptionNumber::IfMatch => ("If-Match", Opaque, 0, 8, true),
            OptionNumber::UriHost => ("Uri-Host", String, 1, 255, false),
            OptionNumber::ETag => ("ETag", Opaque, 1, 8, true),
            OptionNumber::IfNoneMatch => ("If-None-Match", Empty, 0, 0, false),
            OptionNumber::Observe => ("Observe", Uint, 0, 3, false),
            OptionNumber::UriPort => ("Uri-Port", Uint, 0, 2, false),
            OptionNumber::LocationPath => ("Location-Path", String, 0, 255, true),
            OptionNumber::Oscore => ("OSCORE", Opaque, 0, 255, false),
            OptionNumber::UriPath => ("Uri-Path", String, 0, 255, true),
            OptionNumber::ContentFormat => ("Content-Format", Uint, 0, 2, false),
            OptionNumber::MaxAge => ("Max-Age", Uint, 0, 4, false),
            OptionNumber::UriQuery => ("Uri-Query", String, 0, 255, true),
            OptionNumber::HopLimit => ("Hop-Limit", Uint, 1, 1, false),
            OptionNumber::Accept => ("Accept", Uint, 0, 2, false),
            OptionNumber::LocationQuery => ("Location-Query", String, 0, 255, true),
            OptionNumber::Block2 => ("Block2", Uint, 0, 3, false),
            OptionNumber::Block1 => ("Block1", Uint, 0, 3, false),
            OptionNumber::Size2 => ("Size2", Uint, 0, 4, false),
            OptionNumber::ProxyUri => ("Proxy-Uri", String, 1, 1034, false),
            OptionNumber::ProxyScheme => ("Proxy-Scheme", String, 1, 255, false),
            OptionNumber::Size1 => ("Size1", Uint, 0, 4, false),
            OptionNumber::Echo => ("Echo", Opaque, 1, 40, false),
            OptionNumber::NoResponse => ("No-Response", Uint, 0, 1, false),
            OptionNumber::RequestTag => ("Request-Tag", Opaque, 0, 8, true),
            OptionNumber::Unknown(_) => return None,
        };
        Some(OptionSpec {
            name,
            format,
            min_len,
            max_len,
            repeatable,
        })
    }
}

/// Decodes a `uint` option value (RFC 7252 §3.2): 0-4 bytes, network byte order,
/// leading zero bytes allowed. `None` for longer values.
pub fn decode_uint(value: &[u8]) -> Option<u32> {
    if value.len() > 4 {
        return None;
    }
    Some(value.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// Block1/Block2 option value (RFC 7959 §2.2): NUM (up to 20 bits), M, SZX.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockValue {
    pub num: u32,
    pub more: bool,
    pub szx: u8,
}

/// SZX value that RFC 7959 §2.2 reserves (it would mean 2048 bytes).
pub const BLOCK_SZX_RESERVED: u8 = 7;

impl BlockValue {
    /// Splits a decoded uint: NUM = value >> 4, M = bit 3, SZX = bits 0-2.
    pub fn from_uint(value: u32) -> BlockValue {
        BlockValue {
            num: value >> 4,
            more: value & 0x08 != 0,
            szx: (value & 0x07) as u8,
        }
    }

    /// Block size 2**(SZX+4) bytes; `None` for the reserved SZX 7.
    pub fn size(self) -> Option<u16> {
        (self.szx < BLOCK_SZX_RESERVED).then(|| 1u16 << (self.szx + 4))
    }

    pub fn is_szx_reserved(self) -> bool {
        self.szx == BLOCK_SZX_RESERVED
    }
}

/// A typed option value. String-format values (RFC 7252 §3.2) are carried as the
/// raw bytes: they should be UTF-8 but a sensor keeps them even when they are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionValue<'a> {
    IfMatch(&'a [u8]),
    UriHost(&'a [u8]),
    ETag(&'a [u8]),
    IfNoneMatch,
    Observe(u32),
    UriPort(u16),
    LocationPath(&'a [u8]),
    Oscore(&'a [u8]),
    UriPath(&'a [u8]),
    ContentFormat(u16),
    MaxAge(u32),
    UriQuery(&'a [u8]),
    HopLimit(u8),
    Accept(u16),
    LocationQuery(&'a [u8]),
    Block2(BlockValue),
    Block1(BlockValue),
    Size2(u32),
    ProxyUri(&'a [u8]),
    ProxyScheme(&'a [u8]),
    Size1(u32),
    Echo(&'a [u8]),
    NoResponse(u8),
    RequestTag(&'a [u8]),
    /// A known option whose value length is outside its defined range: the
    /// receiver must treat it like an unrecognised option (RFC 7252 §5.4.3).
    BadLength {
        number: OptionNumber,
        value: &'a [u8],
    },
    Unknown {
        number: u16,
        value: &'a [u8],
    },
}

/// One option instance, borrowed from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoapOption<'a> {
    number: OptionNumber,
    value: &'a [u8],
    offset: usize,
}

impl<'a> CoapOption<'a> {
    pub fn number(&self) -> OptionNumber {
        self.number
    }

    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Offset of the option's first header byte in the datagram.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// True when the value length is within the option's defined bounds
    /// (always true for unknown options, which have none).
    pub fn length_in_range(&self) -> bool {
        self.number
            .spec()
            .is_none_or(|s| (s.min_len..=s.max_len).contains(&self.value.len()))
    }

    /// The value read as a `uint` (RFC 7252 §3.2), whatever the option.
    pub fn as_uint(&self) -> Option<u32> {
        decode_uint(self.value)
    }

    /// The value typed by the option's definition.
    pub fn typed(&self) -> OptionValue<'a> {
        let v = self.value;
        let number = self.number;
        if !self.length_in_range() {
            return OptionValue::BadLength { number, value: v };
        }
        // Within bounds every uint option has at most 4 bytes, and the narrower
        // ones fit their target type; the fallbacks below keep that total.
        let uint = decode_uint(v).unwrap_or(0);
        let u16v = u16::try_from(uint).unwrap_or(u16::MAX);
        let u8v = u8::try_from(uint).unwrap_or(u8::MAX);
        match number {
            OptionNumber::IfMatch => OptionValue::IfMatch(v),
            OptionNumber::UriHost => OptionValue::UriHost(v),
            OptionNumber::ETag => OptionValue::ETag(v),
            OptionNumber::IfNoneMatch => OptionValue::IfNoneMatch,
            OptionNumber::Observe => OptionValue::Observe(uint),
            OptionNumber::UriPort => OptionValue::UriPort(u16v),
            OptionNumber::LocationPath => OptionValue::LocationPath(v),
            OptionNumber::Oscore => OptionValue::Oscore(v),
            OptionNumber::UriPath => OptionValue::UriPath(v),
            OptionNumber::ContentFormat => OptionValue::ContentFormat(u16v),
            OptionNumber::MaxAge => OptionValue::MaxAge(uint),
            OptionNumber::UriQuery => OptionValue::UriQuery(v),
            OptionNumber::HopLimit => OptionValue::HopLimit(u8v),
            OptionNumber::Accept => OptionValue::Accept(u16v),
            OptionNumber::LocationQuery => OptionValue::LocationQuery(v),
            OptionNumber::Block2 => OptionValue::Block2(BlockValue::from_uint(uint)),
            OptionNumber::Block1 => OptionValue::Block1(BlockValue::from_uint(uint)),
            OptionNumber::Size2 => OptionValue::Size2(uint),
            OptionNumber::ProxyUri => OptionValue::ProxyUri(v),
            OptionNumber::ProxyScheme => OptionValue::ProxyScheme(v),
            OptionNumber::Size1 => OptionValue::Size1(uint),
            OptionNumber::Echo => OptionValue::Echo(v),
            OptionNumber::NoResponse => OptionValue::NoResponse(u8v),
            OptionNumber::RequestTag => OptionValue::RequestTag(v),
            OptionNumber::Unknown(n) => OptionValue::Unknown {
                number: n,
                value: v,
            },
        }
    }
}

/// One step of the option walk (RFC 7252 §3.1).
enum Step {
    Option {
        number: u32,
        value: Range<usize>,
        next: usize,
    },
    PayloadMarker,
    End,
}

/// Reads the extended part of a delta or length nibble at `*pos`.
#[inline]
fn read_extended(buf: &[u8], pos: &mut usize, nibble: u8, start: usize) -> Result<u32, ParseError> {
    let truncated = ParseError::TruncatedOption { offset: start };
    match nibble {
        NIBBLE_EXT8 => {
            let b = *buf.get(*pos).ok_or(truncated)?;
            *pos += 1;
            Ok(u32::from(b) + EXT8_BIAS)
        }
        NIBBLE_EXT16 => {
            let bytes = buf.get(*pos..*pos + 2).ok_or(truncated)?;
            *pos += 2;
            Ok(u32::from(u16::from_be_bytes([bytes[0], bytes[1]])) + EXT16_BIAS)
        }
        n => Ok(u32::from(n)),
    }
}

/// Decodes the option (or marker) starting at `pos`, after option `prev`.
#[inline]
fn step(buf: &[u8], pos: usize, prev: u32) -> Result<Step, ParseError> {
    let Some(&first) = buf.get(pos) else {
        return Ok(Step::End);
    };
    if first == PAYLOAD_MARKER {
        return Ok(Step::PayloadMarker);
    }
    let delta_nibble = first >> 4;
    let len_nibble = first & 0x0F;
    if delta_nibble == NIBBLE_RESERVED {
        return Err(ParseError::OptionDeltaReserved { offset: pos });
    }
    if len_nibble == NIBBLE_RESERVED {
        return Err(ParseError::OptionLengthReserved { offset: pos });
    }
    let mut cursor = pos + 1;
    let delta = read_extended(buf, &mut cursor, delta_nibble, pos)?;
    let length = read_extended(buf, &mut cursor, len_nibble, pos)?;
    let number = prev + delta;
    if number > MAX_OPTION_NUMBER {
        return Err(ParseError::OptionNumberOverflow {
            offset: pos,
            number,
        });
    }
    let value_end = cursor
        .checked_add(length as usize)
        .filter(|&end| end <= buf.len())
        .ok_or(ParseError::TruncatedOption { offset: pos })?;
    Ok(Step::Option {
        number,
        value: cursor..value_end,
        next: value_end,
    })
}

/// A checked view of one CoAP message borrowed from a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoapMessage<'a> {
    buf: &'a [u8],
    token_end: usize,
    options_end: usize,
    payload_start: usize,
    option_count: usize,
    format_error: Option<ParseError>,
}

impl<'a> CoapMessage<'a> {
    /// Checks header and token (fatal errors are returned) and walks the options
    /// once; a broken option area is recorded, not returned (see module doc).
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        if buf.len() < HEADER_LEN {
            return Err(ParseError::TruncatedHeader { len: buf.len() });
        }
        let first = buf[field::VER_T_TKL];
        let version = first >> 6;
        if version != COAP_VERSION {
            return Err(ParseError::BadVersion(version));
        }
        let tkl = first & 0x0F;
        if usize::from(tkl) > MAX_TOKEN_LEN {
            return Err(ParseError::TokenLengthReserved(tkl));
        }
        let token_end = HEADER_LEN + usize::from(tkl);
        if token_end > buf.len() {
            return Err(ParseError::TruncatedToken {
                tkl,
                available: buf.len() - HEADER_LEN,
            });
        }

        let mut pos = token_end;
        let mut number = 0u32;
        let mut option_count = 0usize;
        let mut payload_start = buf.len();
        let mut format_error = None;
        loop {
            match step(buf, pos, number) {
                Ok(Step::End) => break,
                Ok(Step::PayloadMarker) => {
                    if pos + 1 == buf.len() {
                        format_error =
                            Some(ParseError::PayloadMarkerWithoutPayload { offset: pos });
                    } else {
                        payload_start = pos + 1;
                    }
                    break;
                }
                Ok(Step::Option {
                    number: n, next, ..
                }) => {
                    number = n;
                    option_count += 1;
                    pos = next;
                }
                Err(e) => {
                    format_error = Some(e);
                    break;
                }
            }
        }
        let code = Code(buf[field::CODE]);
        if format_error.is_none() && code.is_empty() && buf.len() > HEADER_LEN {
            format_error = Some(ParseError::EmptyMessageNotEmpty {
                extra: buf.len() - HEADER_LEN,
            });
        }
        Ok(CoapMessage {
            buf,
            token_end,
            options_end: pos,
            payload_start,
            option_count,
            format_error,
        })
    }

    /// Like [`parse`](Self::parse) but every message format error is an `Err`,
    /// as an RFC 7252 endpoint would treat it.
    pub fn parse_strict(buf: &'a [u8]) -> Result<Self, ParseError> {
        let msg = Self::parse(buf)?;
        match msg.format_error {
            Some(e) => Err(e),
            None => Ok(msg),
        }
    }

    pub fn message_type(&self) -> MessageType {
        MessageType::from_bits(self.buf[field::VER_T_TKL] >> 4)
    }

    pub fn code(&self) -> Code {
        Code(self.buf[field::CODE])
    }

    pub fn message_id(&self) -> u16 {
        let b = &self.buf[field::MESSAGE_ID];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Token bytes (0-8).
    pub fn token(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..self.token_end]
    }

    /// The well-formed options, in wire order.
    pub fn options(&self) -> Options<'a> {
        Options {
            buf: &self.buf[..self.options_end],
            pos: self.token_end,
            number: 0,
        }
    }

    /// Number of well-formed options (those [`options`](Self::options) yields).
    pub fn option_count(&self) -> usize {
        self.option_count
    }

    /// First well-formed option with this number.
    pub fn option(&self, number: OptionNumber) -> Option<CoapOption<'a>> {
        self.options().find(|o| o.number == number)
    }

    /// Payload after the marker; empty when there is none or when the option
    /// area was broken (the payload start is then unknown).
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..]
    }

    /// The message format error found after the header, if any.
    pub fn format_error(&self) -> Option<ParseError> {
        self.format_error
    }

    pub fn is_well_formed(&self) -> bool {
        self.format_error.is_none()
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Why this type cannot carry this code, per RFC 7252 §4.2, §4.3 and
    /// Table 1: requests travel in CON/NON, responses in CON/NON/ACK, Empty
    /// messages in CON (ping), ACK and RST. Reserved classes are not judged here.
    pub fn type_code_violation(&self) -> Option<&'static str> {
        match (self.code().kind(), self.message_type()) {
            (CodeKind::Request, MessageType::Acknowledgement) => Some("request carried in an ACK"),
            (CodeKind::Request, MessageType::Reset) => Some("request carried in an RST"),
            (CodeKind::Response, MessageType::Reset) => Some("response carried in an RST"),
            (CodeKind::Empty, MessageType::NonConfirmable) => Some("Empty NON message"),
            _ => None,
        }
    }
}

/// Iterator over the well-formed options of a [`CoapMessage`].
#[derive(Clone, Debug)]
pub struct Options<'a> {
    buf: &'a [u8],
    pos: usize,
    number: u32,
}

impl<'a> Iterator for Options<'a> {
    type Item = CoapOption<'a>;

    fn next(&mut self) -> Option<CoapOption<'a>> {
        // The range was validated by `CoapMessage::parse`; a failure here can
        // only mean the end, so it simply stops.
        match step(self.buf, self.pos, self.number) {
            Ok(Step::Option {
                number,
                value,
                next,
            }) => {
                let offset = self.pos;
                self.pos = next;
                self.number = number;
                let value = self.buf.get(value)?;
                let number = u16::try_from(number).ok()?;
                Some(CoapOption {
                    number: OptionNumber::from(number),
                    value,
                    offset,
                })
            }
            Ok(Step::PayloadMarker | Step::End) | Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7252 Appendix A, Figure 16: CON GET, MID 0x7d34, no token,
    /// Uri-Path "temperature" (delta 11, length 11); 16 bytes.
    const FIG16_REQUEST: &[u8] = b"\x40\x01\x7d\x34\xbbtemperature";
    /// Figure 16 response: ACK 2.05 (=69), MID 0x7d34, payload "22.3 C"; 11 bytes.
    const FIG16_RESPONSE: &[u8] = b"\x60\x45\x7d\x34\xff22.3 C";
    /// Figure 17: as Figure 16 with token 0x20 and MID 0x7d35; 17 and 12 bytes.
    const FIG17_REQUEST: &[u8] = b"\x41\x01\x7d\x35\x20\xbbtemperature";
    const FIG17_RESPONSE: &[u8] = b"\x61\x45\x7d\x35\x20\xff22.3 C";

    fn header(tkl: u8, code: u8) -> Vec<u8> {
        vec![0x40 | tkl, code, 0x12, 0x34]
    }

    #[test]
    fn appendix_a_figure_16_request() {
        assert_eq!(FIG16_REQUEST.len(), 16, "RFC says 16 bytes");
        let m = CoapMessage::parse_strict(FIG16_REQUEST).unwrap();
        assert_eq!(m.message_type(), MessageType::Confirmable);
        assert_eq!(m.code(), Code::GET);
        assert_eq!((m.code().class(), m.code().detail()), (0, 1));
        assert_eq!(m.message_id(), 0x7d34);
        assert!(m.token().is_empty());
        let opts: Vec<_> = m.options().collect();
        assert_eq!(opts.len(), 1);
        assert_eq!(opts[0].number(), OptionNumber::UriPath);
        assert_eq!(opts[0].typed(), OptionValue::UriPath(b"temperature"));
        assert!(m.payload().is_empty());
    }

    #[test]
    fn appendix_a_figure_16_response() {
        assert_eq!(FIG16_RESPONSE.len(), 11, "RFC says 11 bytes");
        let m = CoapMessage::parse_strict(FIG16_RESPONSE).unwrap();
        assert_eq!(m.message_type(), MessageType::Acknowledgement);
        assert_eq!(m.code().number(), 69);
        assert_eq!(m.code().to_string(), "2.05");
        assert_eq!(m.message_id(), 0x7d34);
        assert_eq!(m.option_count(), 0);
        assert_eq!(m.payload(), b"22.3 C");
    }

    #[test]
    fn appendix_a_figure_17_token() {
        assert_eq!(FIG17_REQUEST.len(), 17);
        assert_eq!(FIG17_RESPONSE.len(), 12);
        let req = CoapMessage::parse_strict(FIG17_REQUEST).unwrap();
        assert_eq!(req.token(), &[0x20]);
        assert_eq!(req.message_id(), 0x7d35);
        assert_eq!(
            req.option(OptionNumber::UriPath).unwrap().value(),
            b"temperature"
        );
        let resp = CoapMessage::parse_strict(FIG17_RESPONSE).unwrap();
        assert_eq!(resp.token(), &[0x20]);
        assert_eq!(resp.payload(), b"22.3 C");
    }

    #[test]
    fn appendix_a_figure_20_empty_ack() {
        // Figure 20: (T=ACK, Code=0.00, MID=0x7d38), nothing after the header.
        let d = [0x60, 0x00, 0x7d, 0x38];
        let m = CoapMessage::parse_strict(&d).unwrap();
        assert_eq!(m.message_type(), MessageType::Acknowledgement);
        assert_eq!(m.code().kind(), CodeKind::Empty);
        assert_eq!(m.message_id(), 0x7d38);
    }

    #[test]
    fn all_four_types_decode() {
        for (bits, t) in [
            (0u8, MessageType::Confirmable),
            (1, MessageType::NonConfirmable),
            (2, MessageType::Acknowledgement),
            (3, MessageType::Reset),
        ] {
            let d = [0x40 | (bits << 4), 0, 0, 0];
            let m = CoapMessage::parse(&d).unwrap();
            assert_eq!(m.message_type(), t);
            assert_eq!(t.as_u8(), bits);
        }
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            CoapMessage::parse(&[]),
            Err(ParseError::TruncatedHeader { len: 0 })
        );
        assert_eq!(
            CoapMessage::parse(&[0x40, 1, 0]),
            Err(ParseError::TruncatedHeader { len: 3 })
        );
        for (byte, version) in [(0x00u8, 0u8), (0x80, 2), (0xC0, 3)] {
            assert_eq!(
                CoapMessage::parse(&[byte, 1, 0, 0]),
                Err(ParseError::BadVersion(version))
            );
        }
        for tkl in 9..=15u8 {
            let mut d = header(tkl, 1);
            d.extend_from_slice(&[0; 16]);
            assert_eq!(
                CoapMessage::parse(&d),
                Err(ParseError::TokenLengthReserved(tkl))
            );
        }
        let mut d = header(8, 1);
        d.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            CoapMessage::parse(&d),
            Err(ParseError::TruncatedToken {
                tkl: 8,
                available: 3
            })
        );
        assert!(
            ParseError::TruncatedToken {
                tkl: 8,
                available: 3
            }
            .is_fatal()
        );
    }

    #[test]
    fn token_lengths_zero_to_eight() {
        for tkl in 0..=8u8 {
            let mut d = header(tkl, 1);
            d.extend((0..tkl).map(|i| i + 0xA0));
            let m = CoapMessage::parse_strict(&d).unwrap();
            assert_eq!(m.token().len(), usize::from(tkl));
            assert_eq!(m.token().first().copied(), (tkl > 0).then_some(0xA0));
        }
    }

    /// Encodes one option (delta, value) with the §3.1 rules, written out by
    /// hand per boundary in the tests below rather than by a helper under test.
    fn msg_with(option_bytes: &[u8]) -> Vec<u8> {
        let mut d = header(0, 1);
        d.extend_from_slice(option_bytes);
        d
    }

    #[test]
    fn delta_boundaries() {
        // 12: fits the nibble. Option 12 = Content-Format, empty value.
        let d = msg_with(&[0xC0]);
        let m = CoapMessage::parse_strict(&d).unwrap();
        assert_eq!(m.options().next().unwrap().number().number(), 12);
        // 13: nibble 13 + byte 0.
        let d = msg_with(&[0xD0, 0x00]);
        let m = CoapMessage::parse_strict(&d).unwrap();
        assert_eq!(m.options().next().unwrap().number().number(), 13);
        // 268: nibble 13 + byte 255.
        let d = msg_with(&[0xD0, 0xFF]);
        let m = CoapMessage::parse_strict(&d).unwrap();
        assert_eq!(m.options().next().unwrap().number().number(), 268);
        // 269: nibble 14 + 0x0000.
        let d = msg_with(&[0xE0, 0x00, 0x00]);
        let m = CoapMessage::parse_strict(&d).unwrap();
        assert_eq!(m.options().next().unwrap().number().number(), 269);
        // 65535: nibble 14 + (65535 - 269) = 0xFEF2, the largest option number.
        let d = msg_with(&[0xE0, 0xFE, 0xF2]);
        let m = CoapMessage::parse_strict(&d).unwrap();
        assert_eq!(
            m.options().next().unwrap().number(),
            OptionNumber::Unknown(65535)
        );
        // 65804 (nibble 14 + 0xFFFF) is encodable but no such option number exists.
        let d = msg_with(&[0xE0, 0xFF, 0xFF]);
        let m = CoapMessage::parse(&d).unwrap();
        assert_eq!(
            m.format_error(),
            Some(ParseError::OptionNumberOverflow {
                offset: 4,
                number: 65804
            })
        );
        assert_eq!(m.option_count(), 0);
        // Deltas accumulate: 65535 then delta 1 overflows too.
        let d = msg_with(&[0xE0, 0xFE, 0xF2, 0x10]);
        let m = CoapMessage::parse(&d).unwrap();
        assert_eq!(
            m.format_error(),
            Some(ParseError::OptionNumberOverflow {
                offset: 7,
                number: 65536
            })
        );
        assert_eq!(m.option_count(), 1);
    }

    #[test]
    fn length_boundaries() {
        // Option 8 (Location-Path) with lengths at each encoding boundary;
        // the value starts after 1, 2 or 3 header bytes.
        for (len, hdr) in [
            (12usize, vec![0x8C]),
            (13, vec![0x8D, 0x00]),
            (268, vec![0x8D, 0xFF]),
            (269, vec![0x8E, 0x00, 0x00]),
            (65804, vec![0x8E, 0xFF, 0xFF]),
        ] {
            let mut d = msg_with(&hdr);
            d.extend(std::iter::repeat_n(b'x', len));
            let m = CoapMessage::parse_strict(&d).unwrap();
            let o = m.options().next().unwrap();
            assert_eq!(o.value().len(), len, "length {len}");
            assert_eq!(o.offset(), 4);
            // Location-Path allows 0-255 bytes (Table 4).
            assert_eq!(o.length_in_range(), len <= 255, "length {len}");
            // One byte short of the declared length: truncated.
            d.pop();
            assert_eq!(
                CoapMessage::parse(&d).unwrap().format_error(),
                Some(ParseError::TruncatedOption { offset: 4 }),
                "length {len}"
            );
        }
    }

    #[test]
    fn delta_and_length_extensions_combined() {
        // Delta 14 ext (269) and length 13 ext (13 + 2 = 15): header 0xED, 00 00, 02.
        let mut d = msg_with(&[0xED, 0x00, 0x00, 0x02]);
        d.extend_from_slice(&[7; 15]);
        d.extend_from_slice(b"\xffP");
        let m = CoapMessage::parse_strict(&d).unwrap();
        let o = m.options().next().unwrap();
        assert_eq!(o.number().number(), 269);
        assert_eq!(o.value(), &[7; 15]);
        assert_eq!(m.payload(), b"P");
    }

    #[test]
    fn option_area_errors() {
        let cases: [(&[u8], ParseError); 8] = [
            (&[0xF0], ParseError::OptionDeltaReserved { offset: 4 }),
            (
                &[0xF3, 1, 2, 3],
                ParseError::OptionDeltaReserved { offset: 4 },
            ),
            (&[0x1F], ParseError::OptionLengthReserved { offset: 4 }),
            (&[0xD0], ParseError::TruncatedOption { offset: 4 }),
            (&[0xE0, 0x00], ParseError::TruncatedOption { offset: 4 }),
            (&[0x0D], ParseError::TruncatedOption { offset: 4 }),
            (&[0x0E, 0x01], ParseError::TruncatedOption { offset: 4 }),
            (
                &[0xFF],
                ParseError::PayloadMarkerWithoutPayload { offset: 4 },
            ),
        ];
        for (bytes, want) in cases {
            let d = msg_with(bytes);
            let m = CoapMessage::parse(&d).unwrap();
            assert_eq!(m.format_error(), Some(want), "{bytes:02x?}");
            assert!(!want.is_fatal());
            assert_eq!(want.offset(), Some(4));
            assert_eq!(CoapMessage::parse_strict(&d), Err(want));
            assert!(m.payload().is_empty());
        }
    }

    #[test]
    fn lenient_keeps_options_before_the_error() {
        // Uri-Path "a", Uri-Path "b", then a reserved length nibble.
        let d = msg_with(&[0xB1, b'a', 0x01, b'b', 0x0F]);
        let m = CoapMessage::parse(&d).unwrap();
        assert_eq!(
            m.format_error(),
            Some(ParseError::OptionLengthReserved { offset: 8 })
        );
        let values: Vec<_> = m.options().map(|o| o.value()).collect();
        assert_eq!(values, vec![&b"a"[..], &b"b"[..]]);
    }

    #[test]
    fn payload_marker_inside_value_is_data() {
        // §3 implementation note: 0xFF inside a value is not a marker.
        let d = msg_with(&[0x42, 0xFF, 0xFF, 0xFF, b'p']);
        let m = CoapMessage::parse_strict(&d).unwrap();
        assert_eq!(m.options().next().unwrap().value(), &[0xFF, 0xFF]);
        assert_eq!(m.payload(), b"p");
    }

    #[test]
    fn empty_message_rules() {
        // §4.1: 0.00 with token, options or payload is a format error.
        let with_token = [0x41, 0x00, 0, 1, 0xAA];
        let with_option = [0x40, 0x00, 0, 1, 0x10];
        let with_payload = [0x40, 0x00, 0, 1, 0xFF, 0x01];
        for (d, extra) in [
            (&with_token[..], 1),
            (&with_option[..], 1),
            (&with_payload[..], 2),
        ] {
            assert_eq!(
                CoapMessage::parse(d).unwrap().format_error(),
                Some(ParseError::EmptyMessageNotEmpty { extra })
            );
        }
        // RST with no bytes after the header is fine.
        assert!(CoapMessage::parse_strict(&[0x70, 0x00, 0xad, 0x7c]).is_ok());
    }

    #[test]
    fn table_1_type_code_combinations() {
        // RFC 7252 Table 1: X = allowed, * = CON ping, - = not allowed.
        let cases = [
            (0x40u8, 0x01u8, true), // CON request
            (0x50, 0x01, true),     // NON request
            (0x60, 0x01, false),    // ACK request
            (0x70, 0x01, false),    // RST request
            (0x40, 0x45, true),     // CON response
            (0x50, 0x45, true),     // NON response
            (0x60, 0x45, true),     // ACK response
            (0x70, 0x45, false),    // RST response
            (0x40, 0x00, true),     // CON empty (ping)
            (0x50, 0x00, false),    // NON empty
            (0x60, 0x00, true),     // ACK empty
            (0x70, 0x00, true),     // RST empty
        ];
        for (first, code, ok) in cases {
            let d = [first, code, 0, 0];
            let m = CoapMessage::parse(&d).unwrap();
            assert_eq!(
                m.type_code_violation().is_none(),
                ok,
                "{first:#x} {code:#x}"
            );
        }
    }

    #[test]
    fn code_classes() {
        assert_eq!(Code::from_u8(0).kind(), CodeKind::Empty);
        assert_eq!(Code::new(0, 31).kind(), CodeKind::Request);
        assert_eq!(Code::new(0, 31).method(), Some(Method::Unknown(31)));
        assert_eq!(Code::new(0, 7).method(), Some(Method::IPatch));
        for class in [1, 3, 6, 7] {
            assert_eq!(
                Code::new(class, 0).kind(),
                CodeKind::Reserved,
                "class {class}"
            );
        }
        for class in [2, 4, 5] {
            assert_eq!(Code::new(class, 0).kind(), CodeKind::Response);
        }
        // tshark numbers quoted in the shared MANIFEST: 68 = 2.04, 69 = 2.05.
        assert_eq!(Code::CHANGED.number(), 68);
        assert_eq!(Code::CONTENT.number(), 69);
        assert_eq!(Code::new(4, 4).to_string(), "4.04");
        assert_eq!(Code::CONTINUE.to_string(), "2.31");
        assert_eq!(Code::CONTENT.method(), None);
    }

    #[test]
    fn every_code_reads_class_dot_two_digit_detail() {
        // RFC 7252 §3: "c.dd", c the class (3 bits), dd the detail (5 bits).
        for raw in 0..=u8::MAX {
            let text = format!("{}.{:02}", raw >> 5, raw & 0x1F);
            assert_eq!(Code::from_u8(raw).as_str(), text);
        }
    }

    #[test]
    fn option_properties_match_table_4() {
        // (number, C, U, N) from RFC 7252 Table 4; N is "-" (false) when Unsafe.
        let table = [
            (1, true, false, false),
            (3, true, true, false),
            (4, false, false, false),
            (5, true, false, false),
            (7, true, true, false),
            (8, false, false, false),
            (11, true, true, false),
            (12, false, false, false),
            (14, false, true, false),
            (15, true, true, false),
            (17, true, false, false),
            (20, false, false, false),
            (35, true, true, false),
            (39, true, true, false),
            (60, false, false, true),
        ];
        for (n, c, u, nck) in table {
            let o = OptionNumber::from(n);
            assert!(o.is_known(), "{n}");
            assert_eq!(o.number(), n);
            assert_eq!(o.is_critical(), c, "C of {n}");
            assert_eq!(o.is_unsafe(), u, "U of {n}");
            assert_eq!(o.is_no_cache_key(), nck, "N of {n}");
        }
        // Observe (RFC 7641 §2): elective, unsafe. Block1/2 (RFC 7959): critical,
        // unsafe. Size2: NoCacheKey. OSCORE (RFC 8613): critical, safe.
        assert!(!OptionNumber::Observe.is_critical() && OptionNumber::Observe.is_unsafe());
        assert!(OptionNumber::Block1.is_critical() && OptionNumber::Block2.is_unsafe());
        assert!(OptionNumber::Size2.is_no_cache_key());
        assert!(OptionNumber::Oscore.is_critical() && !OptionNumber::Oscore.is_unsafe());
        assert_eq!(OptionNumber::from(2), OptionNumber::Unknown(2));
        assert!(OptionNumber::from(0).is_reserved());
        assert!(OptionNumber::from(140).is_reserved());
        assert!(!OptionNumber::from(2).is_reserved());
    }

    #[test]
    fn option_specs_match_table_4_lengths() {
        let table: [(u16, ValueFormat, usize, usize, bool); 15] = [
            (1, ValueFormat::Opaque, 0, 8, true),
            (3, ValueFormat::String, 1, 255, false),
            (4, ValueFormat::Opaque, 1, 8, true),
            (5, ValueFormat::Empty, 0, 0, false),
            (7, ValueFormat::Uint, 0, 2, false),
            (8, ValueFormat::String, 0, 255, true),
            (11, ValueFormat::String, 0, 255, true),
            (12, ValueFormat::Uint, 0, 2, false),
            (14, ValueFormat::Uint, 0, 4, false),
            (15, ValueFormat::String, 0, 255, true),
            (17, ValueFormat::Uint, 0, 2, false),
            (20, ValueFormat::String, 0, 255, true),
            (35, ValueFormat::String, 1, 1034, false),
            (39, ValueFormat::String, 1, 255, false),
            (60, ValueFormat::Uint, 0, 4, false),
        ];
        for (n, format, min_len, max_len, repeatable) in table {
            let s = OptionNumber::from(n).spec().unwrap();
            assert_eq!(
                (s.format, s.min_len, s.max_len, s.repeatable),
                (format, min_len, max_len, repeatable),
                "{}",
                s.name
            );
        }
        assert_eq!(OptionNumber::Unknown(2).spec(), None);
    }

    #[test]
    fn uint_decoding() {
        // §3.2: 0 is the empty value, 1 is one byte 0x01, leading zeros allowed.
        assert_eq!(decode_uint(&[]), Some(0));
        assert_eq!(decode_uint(&[1]), Some(1));
        assert_eq!(decode_uint(&[0, 0, 1]), Some(1));
        assert_eq!(decode_uint(&[1, 0]), Some(256));
        assert_eq!(decode_uint(&[0xFF; 4]), Some(u32::MAX));
        assert_eq!(decode_uint(&[0, 0, 0, 0, 1]), None);
    }

    #[test]
    fn block_values() {
        // RFC 7959 §3.1 Figure 3 notation NUM/M/size: 0/1/128, 1/1/128, 2/0/128.
        // 128 = 2**(3+4) so SZX = 3; value = NUM << 4 | M << 3 | SZX.
        for (value, num, more) in [(0x0Bu32, 0u32, true), (0x1B, 1, true), (0x23, 2, false)] {
            let b = BlockValue::from_uint(value);
            assert_eq!((b.num, b.more, b.szx, b.size()), (num, more, 3, Some(128)));
        }
        assert_eq!(BlockValue::from_uint(0).size(), Some(16));
        assert_eq!(BlockValue::from_uint(6).size(), Some(1024));
        let reserved = BlockValue::from_uint(7);
        assert!(reserved.is_szx_reserved());
        assert_eq!(reserved.size(), None);
        // Largest 3-byte value: NUM 2**20 - 1.
        assert_eq!(BlockValue::from_uint(0xFF_FFFF).num, 0xF_FFFF);
    }

    #[test]
    fn typed_values() {
        // Observe 3 bytes, Uri-Port 2, Content-Format 1 (ct 40), Block2 1 byte,
        // then unknown critical option 65001 (delta 65001 - 23 = 64978 = 269 + 0xFCC5).
        let d = msg_with(&[
            0x63, 0x01, 0x02, 0x03, // Observe (6) = 0x010203
            0x12, 0x16, 0x33, // Uri-Port (7) = 5683
            0x51, 40, // Content-Format (12) = 40
            0xB1, 0x0B, // Block2 (23) = 0/1/128
            0xE0, 0xFC, 0xC5, // 65001, empty
        ]);
        let m = CoapMessage::parse_strict(&d).unwrap();
        let typed: Vec<_> = m.options().map(|o| o.typed()).collect();
        assert_eq!(
            typed,
            vec![
                OptionValue::Observe(0x010203),
                OptionValue::UriPort(5683),
                OptionValue::ContentFormat(40),
                OptionValue::Block2(BlockValue {
                    num: 0,
                    more: true,
                    szx: 3
                }),
                OptionValue::Unknown {
                    number: 65001,
                    value: &[]
                },
            ]
        );
        assert!(OptionNumber::Unknown(65001).is_critical());
    }

    #[test]
    fn out_of_range_length_is_bad_length() {
        // Table 4 bounds: Uri-Port 0-2, ETag 1-8, If-None-Match 0.
        let cases: [(&[u8], OptionNumber, &[u8]); 3] = [
            (&[0x73, 1, 2, 3], OptionNumber::UriPort, &[1, 2, 3]),
            (&[0x40], OptionNumber::ETag, &[]),
            (&[0x51, 0], OptionNumber::IfNoneMatch, &[0]),
        ];
        for (bytes, number, value) in cases {
            let d = msg_with(bytes);
            let m = CoapMessage::parse_strict(&d).unwrap();
            let o = m.options().next().unwrap();
            assert!(!o.length_in_range(), "{number:?}");
            assert_eq!(o.typed(), OptionValue::BadLength { number, value });
        }
        let d = msg_with(&[0x50]);
        let m = CoapMessage::parse_strict(&d).unwrap();
        assert_eq!(
            m.options().next().unwrap().typed(),
            OptionValue::IfNoneMatch
        );
    }
}
