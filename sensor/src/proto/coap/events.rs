//! Owned events a [`CoapSession`](super::CoapSession) emits.
//!
//! Events borrow nothing from the datagram: strings are copied and capped
//! (lengths are [`CoapLimits`](super::CoapLimits) fields), the token is kept
//! inline (at most 8 bytes, RFC 7252 §3). A request's Uri-Path is copied once
//! into an `Arc<str>`, which the message event, the session's exchange and
//! observation tables and every later event about that request share.

use std::fmt;
use std::sync::Arc;

use super::linkformat::LinkResource;
use super::parser::{BlockValue, Code, MessageType, ParseError};
use crate::flow::Direction;

/// A CoAP token (0-8 bytes, RFC 7252 §5.3.1), stored inline.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token {
    bytes: [u8; 8],
    len: u8,
}

impl Token {
    /// `None` when `bytes` is longer than 8.
    pub fn new(bytes: &[u8]) -> Option<Token> {
        let mut t = Token::default();
        t.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        t.len = u8::try_from(bytes.len()).ok()?;
        Some(t)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Display for Token {
    /// Lower-case hex, as tshark prints `coap.token`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({self})")
    }
}

/// How a response was matched to its request (RFC 7252 §5.2, §5.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseKind {
    /// In the ACK of a CON request: Message ID and token both matched.
    Piggybacked,
    /// In its own CON or NON message: token matched.
    Separate,
}

/// The request a response answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseMatch {
    pub kind: ResponseKind,
    pub request_code: Code,
    pub request_message_id: u16,
    /// Uri-Path of the request, joined with '/' and capped.
    pub request_uri_path: Option<Arc<str>>,
    /// From the first transmission of the request to this response.
    pub rtt_nanos: u64,
}

/// One CoAP message as seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoapMessageEvent {
    pub dir: Direction,
    pub msg_type: MessageType,
    pub code: Code,
    pub message_id: u16,
    pub token: Token,
    pub uri_host: Option<String>,
    /// Uri-Path segments joined with '/' (no leading '/'), capped.
    pub uri_path: Option<Arc<str>>,
    /// Uri-Query arguments joined with '&', capped.
    pub uri_query: Option<String>,
    pub content_format: Option<u16>,
    pub accept: Option<u16>,
    pub observe: Option<u32>,
    pub block1: Option<BlockValue>,
    pub block2: Option<BlockValue>,
    pub size1: Option<u32>,
    pub size2: Option<u32>,
    pub payload_len: usize,
    /// Well-formed options in the datagram (may exceed what was inspected).
    pub option_count: usize,
    /// Same Message ID from the same endpoint within its lifetime (RFC 7252 §4.5).
    pub is_retransmission: bool,
    /// Critical options the recipient must treat as unrecognised (RFC 7252
    /// §5.4.1, §5.4.3, §5.4.5): unknown numbers, known ones whose length is out
    /// of range, and repeats of non-repeatable ones. Capped.
    pub unknown_critical_options: Vec<u16>,
    /// A string field or list above was cut at its cap.
    pub capped: bool,
    /// The option area broke a §3.1 rule; only the options before it are used.
    pub format_error: Option<ParseError>,
    pub response_to: Option<ResponseMatch>,
}

/// Why an observation ended (RFC 7641 §3.2, §3.6, §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObserveEndReason {
    /// The response to the registration carried no Observe option.
    NotAccepted,
    /// A later response without Observe, or an error response.
    FinalResponse,
    /// The client rejected a notification with RST.
    Reset,
    /// GET with Observe = 1 (explicit deregistration).
    Deregistered,
    /// The session's observation table was full.
    Evicted,
}

/// Which block option a transfer uses (RFC 7959 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// Request payload (client to server).
    Block1,
    /// Response payload (server to client).
    Block2,
}

/// A resource list from `/.well-known/core` (RFC 6690 §4, RFC 7252 §7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryEvent {
    /// Direction of the response that carried the links.
    pub dir: Direction,
    pub token: Token,
    pub request_uri_path: Option<Arc<str>>,
    pub links: Vec<LinkResource>,
    /// Links or attribute values were dropped or cut at their caps, or the
    /// payload is only the first block of a block-wise transfer.
    pub truncated: bool,
    /// Links that did not follow the RFC 6690 §2 syntax and were skipped.
    pub malformed_links: u32,
}

/// Typed reason of an anomaly. `as_str` gives a stable label for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    TruncatedHeader,
    BadVersion,
    TokenLengthReserved,
    TruncatedToken,
    OptionDeltaReserved,
    OptionLengthReserved,
    TruncatedOption,
    OptionNumberOverflow,
    PayloadMarkerWithoutPayload,
    EmptyMessageNotEmpty,
    /// Code class 1, 6 or 7 (RFC 7252 §4.2, §4.3).
    ReservedCodeClass,
    /// Type and code combination that RFC 7252 §4.3 Table 1 does not allow
    /// (request in ACK/RST, response in RST, Empty NON).
    InvalidTypeForCode,
    OptionValueLengthOutOfRange,
    /// A non-repeatable option occurs more than once (RFC 7252 §5.4.5).
    OptionRepeated,
    /// An unassigned odd (critical) option number, in a request or a response
    /// (RFC 7252 §5.4.1: 4.02 Bad Option, or rejection).
    UnknownCriticalOption,
    /// Option 0, 128, 132, 136 or 140 (RFC 7252 §12.2).
    ReservedOptionNumber,
    /// More options than the session inspects (`CoapLimits::max_options`).
    TooManyOptions,
    /// A Uri-Path segment is "." or ".." (RFC 7252 §5.10.1).
    UriPathDotSegment,
    BlockSzxReserved,
    /// A block number other than the next expected one (RFC 7959 §2.3, §2.5).
    BlockOutOfOrder,
    /// A block with M set whose payload is not the block size (RFC 7959 §2.2).
    BlockSizeMismatch,
    /// A response no open request or observation explains (RFC 7252 §5.3.2).
    UnmatchedResponse,
    /// Piggy-backed response whose Message ID matches a request but whose
    /// token does not (RFC 7252 §5.3.2 rule 2).
    TokenMismatch,
    /// A Message ID reused within its lifetime for a different message
    /// (RFC 7252 §4.4).
    MessageIdReused,
    /// RST rejecting a message (other than the answer to a CoAP ping).
    ResetReceived,
    /// A link-format payload with links that do not parse (RFC 6690 §2).
    LinkFormatMalformed,
}

impl AnomalyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::TruncatedHeader => "truncated_header",
            AnomalyKind::BadVersion => "bad_version",
            AnomalyKind::TokenLengthReserved => "token_length_reserved",
            AnomalyKind::TruncatedToken => "truncated_token",
            AnomalyKind::OptionDeltaReserved => "option_delta_reserved",
            AnomalyKind::OptionLengthReserved => "option_length_reserved",
            AnomalyKind::TruncatedOption => "truncated_option",
            AnomalyKind::OptionNumberOverflow => "option_number_overflow",
            AnomalyKind::PayloadMarkerWithoutPayload => "payload_marker_without_payload",
            AnomalyKind::EmptyMessageNotEmpty => "empty_message_not_empty",
            AnomalyKind::ReservedCodeClass => "reserved_code_class",
            AnomalyKind::InvalidTypeForCode => "invalid_type_for_code",
            AnomalyKind::OptionValueLengthOutOfRange => "option_value_length_out_of_range",
            AnomalyKind::OptionRepeated => "option_repeated",
            AnomalyKind::UnknownCriticalOption => "unknown_critical_option",
            AnomalyKind::ReservedOptionNumber => "reserved_option_number",
            AnomalyKind::TooManyOptions => "too_many_options",
            AnomalyKind::UriPathDotSegment => "uri_path_dot_segment",
            AnomalyKind::BlockSzxReserved => "block_szx_reserved",
            AnomalyKind::BlockOutOfOrder => "block_out_of_order",
            AnomalyKind::BlockSizeMismatch => "block_size_mismatch",
            AnomalyKind::UnmatchedResponse => "unmatched_response",
            AnomalyKind::TokenMismatch => "token_mismatch",
            AnomalyKind::MessageIdReused => "message_id_reused",
            AnomalyKind::ResetReceived => "reset_received",
            AnomalyKind::LinkFormatMalformed => "link_format_malformed",
        }
    }
}

impl From<ParseError> for AnomalyKind {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::TruncatedHeader { .. } => AnomalyKind::TruncatedHeader,
            ParseError::BadVersion(_) => AnomalyKind::BadVersion,
            ParseError::TokenLengthReserved(_) => AnomalyKind::TokenLengthReserved,
            ParseError::TruncatedToken { .. } => AnomalyKind::TruncatedToken,
            ParseError::OptionDeltaReserved { .. } => AnomalyKind::OptionDeltaReserved,
            ParseError::OptionLengthReserved { .. } => AnomalyKind::OptionLengthReserved,
            ParseError::TruncatedOption { .. } => AnomalyKind::TruncatedOption,
            ParseError::OptionNumberOverflow { .. } => AnomalyKind::OptionNumberOverflow,
            ParseError::PayloadMarkerWithoutPayload { .. } => {
                AnomalyKind::PayloadMarkerWithoutPayload
            }
            ParseError::EmptyMessageNotEmpty { .. } => AnomalyKind::EmptyMessageNotEmpty,
        }
    }
}

/// Something in the traffic broke a rule; carried as evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoapAnomaly {
    pub kind: AnomalyKind,
    pub dir: Direction,
    /// Message ID of the offending message, when its header was readable.
    pub message_id: Option<u16>,
    /// Option number concerned, for option anomalies.
    pub option: Option<u16>,
    /// Human-readable detail (short, built from typed values).
    pub detail: String,
}

/// Everything a CoAP session reports.
///
/// `Message` is by far the most frequent variant (one per datagram), so it is
/// kept inline rather than boxed: the events of a datagram live in a reused
/// buffer, and a larger slot there costs less than an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoapEvent {
    Message(CoapMessageEvent),
    /// GET (or FETCH) with Observe = 0 (RFC 7641 §3.1). `dir` is the client's.
    ObserveRegister {
        dir: Direction,
        token: Token,
        uri_path: Option<Arc<str>>,
    },
    /// GET with Observe = 1 (RFC 7641 §3.6).
    ObserveDeregister {
        dir: Direction,
        token: Token,
        uri_path: Option<Arc<str>>,
    },
    /// A response carrying Observe for a registered token (RFC 7641 §4.2);
    /// the first one answers the registration. `dir` is the server's.
    ObserveNotify {
        dir: Direction,
        token: Token,
        uri_path: Option<Arc<str>>,
        sequence: u32,
        code: Code,
        notifications: u32,
    },
    ObserveEnd {
        token: Token,
        uri_path: Option<Arc<str>>,
        reason: ObserveEndReason,
        notifications: u32,
    },
    /// The last block (M = 0) of a block-wise transfer arrived (RFC 7959 §2).
    /// `dir` is the direction the data flowed.
    BlockTransferComplete {
        dir: Direction,
        kind: BlockKind,
        uri_path: Option<Arc<str>>,
        blocks: u32,
        bytes: u64,
        block_size: u16,
    },
    Discovery(Box<DiscoveryEvent>),
    /// A request that got no response within its lifetime (EXCHANGE_LIFETIME
    /// for CON, NON_LIFETIME for NON, RFC 7252 §4.8.2). `dir` is the requester's.
    Unanswered {
        dir: Direction,
        token: Token,
        message_id: u16,
        request_code: Code,
        uri_path: Option<Arc<str>>,
        retransmissions: u16,
        acknowledged: bool,
    },
    Anomaly(CoapAnomaly),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bounds_and_display() {
        assert_eq!(Token::new(&[0x3e, 0xb7]).unwrap().to_string(), "3eb7");
        assert_eq!(Token::new(&[]).unwrap().len(), 0);
        assert!(Token::new(&[]).unwrap().is_empty());
        assert_eq!(Token::new(&[1; 8]).unwrap().as_bytes(), &[1; 8]);
        assert_eq!(Token::new(&[1; 9]), None);
        assert_ne!(Token::new(&[0]), Token::new(&[]));
    }

    #[test]
    fn anomaly_labels_are_snake_case() {
        for kind in [
            AnomalyKind::TokenLengthReserved,
            AnomalyKind::PayloadMarkerWithoutPayload,
            AnomalyKind::UnknownCriticalOption,
        ] {
            let s = kind.as_str();
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
        assert_eq!(
            AnomalyKind::from(ParseError::OptionDeltaReserved { offset: 4 }),
            AnomalyKind::OptionDeltaReserved
        );
    }
}
