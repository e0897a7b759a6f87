//! CoAP over UDP: RFC 7252 (messages, options, matching, deduplication),
//! RFC 7641 (Observe), RFC 7959 (Block-wise transfers), RFC 6690 (link format
//! for `/.well-known/core`).
//!
//! - [`parser`]: zero-copy checked view of one datagram ([`CoapMessage`]).
//! - [`linkformat`]: RFC 6690 §2 resource lists.
//! - [`session`]: per-flow exchange tracker ([`CoapSession`]).
//! - [`events`]: what the session reports ([`CoapEvent`]).
//! - [`counts`], [`log`], [`normalize`]: what the rest of spanwatch makes of
//!   the events.
//!
//! # Pre-RFC (draft) CoAP
//!
//! Drafts -08 to -12 of CoAP also set version 1 in the first two bits, but
//! used the low nibble as an option count, had no token field (Token was option
//! 11) and numbered options differently (Uri-Path was 9, Uri-Port 7 ...). Such
//! datagrams cannot be told apart from RFC 7252 ones by their header, so they
//! are decoded with RFC 7252 rules, as tshark does, and whatever that reading
//! breaks is reported: the option-count nibble becomes a token length, options
//! land on unassigned numbers (carried as `Unknown(n)`; elective ones are
//! silently ignored as §5.4.1 requires) or on known numbers with impossible
//! lengths (`OptionValueLengthOutOfRange`, and a critical one such as Uri-Port
//! is listed in `unknown_critical_options`, §5.4.3). The shared capture
//! `coap/coap-get-post-put-delete-ipv6.pcapng` is such traffic; the test
//! `capture_tests::draft_era_capture_is_reported_under_rfc7252_rules` states
//! exactly what is reported for it.
pub mod counts;
pub mod events;
pub mod linkformat;
pub mod log;
pub mod normalize;
pub mod parser;
pub mod session;

#[cfg(test)]
mod capture_tests;

pub use counts::CoapCounts;
pub use events::{
    AnomalyKind, BlockKind, CoapAnomaly, CoapEvent, CoapMessageEvent, DiscoveryEvent,
    ObserveEndReason, ResponseKind, ResponseMatch, Token,
};
pub use linkformat::{LinkFormat, LinkFormatLimits, LinkResource, parse_link_format};
pub use parser::{
    BlockValue, CoapMessage, CoapOption, Code, CodeKind, MessageType, Method, OptionNumber,
    OptionValue, ParseError,
};
pub use session::{CoapLimits, CoapSession, CoapStats};

use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::Probe;
use crate::proto::contract::{CountsView, Protocol};
use crate::proto::norm::{Event, NormContext};

/// CoAP over UDP.
pub struct Coap;

impl Protocol for Coap {
    const NAME: &'static str = "coap";
    const FLOW_KIND: &'static str = "coap.flow";
    /// 5683 (RFC 7252 §6.1).
    const UDP_PORTS: &'static [u16] = &[5683];

    type Limits = CoapLimits;
    type Session = CoapSession;
    type Event = CoapEvent;
    type Counts = CoapCounts;
    type Record<'a> = log::CoapRecord<'a>;

    fn probe_datagram(payload: &[u8], dir: Direction) -> Probe {
        probe(payload, dir)
    }

    fn session(limits: &CoapLimits) -> CoapSession {
        CoapSession::new(*limits)
    }

    fn on_datagram(
        s: &mut CoapSession,
        ts: Timestamp,
        dir: Direction,
        payload: &[u8],
        out: &mut Vec<CoapEvent>,
    ) {
        s.on_datagram(ts, dir, payload, out);
    }

    /// Held responses are handled; every exchange still open ends unanswered.
    fn on_close(s: &mut CoapSession, _ts: Timestamp, out: &mut Vec<CoapEvent>) {
        s.close(out);
    }

    fn count_flow(c: &mut CoapCounts) {
        c.flows += 1;
    }

    fn count(c: &mut CoapCounts, ev: &CoapEvent) {
        c.count(ev);
    }

    fn view(c: &CoapCounts) -> CountsView<'_> {
        CountsView {
            flows: c.flows,
            messages: vec![("message", c.messages)],
            anomalies: &c.anomalies,
        }
    }

    fn log_record(ev: &CoapEvent) -> Option<(Option<Direction>, log::CoapRecord<'_>)> {
        Some(log::record(ev))
    }

    fn normalize<'e>(ev: &'e CoapEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>) {
        normalize::normalize(ev, cx, out);
    }
}

/// Content probe for CoAP on any UDP port (DESIGN.md: detection by content).
///
/// `Match` only for a datagram that is a well-formed RFC 7252 message
/// ([`CoapMessage::parse_strict`]) with an assigned method or a response or
/// Empty code, a type that may carry that code (Table 1), and no reserved
/// option number (0 shows up in nearly every non-CoAP datagram that gets this
/// far, e.g. DNS, whose count fields are mostly zero bytes). A datagram is
/// complete, so the answer is never `NeedMore`; the direction is not used
/// because either side of a CoAP flow may speak first (notifications,
/// server-initiated requests).
pub fn probe(payload: &[u8], _dir: Direction) -> Probe {
    let Ok(msg) = CoapMessage::parse_strict(payload) else {
        return Probe::NoMatch;
    };
    let code = msg.code();
    let plausible_code = match code.kind() {
        CodeKind::Empty | CodeKind::Response => true,
        CodeKind::Request => !matches!(code.method(), Some(Method::Unknown(_))),
        CodeKind::Reserved => false,
    };
    if !plausible_code
        || msg.type_code_violation().is_some()
        || msg.options().any(|o| o.number().is_reserved())
    {
        return Probe::NoMatch;
    }
    Probe::Match
}

#[cfg(test)]
mod tests {
    use super::*;

    const TO_SERVER: Direction = Direction::ToServer;

    #[test]
    fn probe_matches_rfc_examples() {
        // RFC 7252 Appendix A, Figures 16, 17 and 20.
        for d in [
            &b"\x40\x01\x7d\x34\xbbtemperature"[..],
            b"\x60\x45\x7d\x34\xff22.3 C",
            b"\x41\x01\x7d\x35\x20\xbbtemperature",
            &[0x60, 0x00, 0x7d, 0x38],
            &[0x40, 0x00, 0x12, 0x34], // CoAP ping (Table 1 "*")
        ] {
            assert_eq!(probe(d, TO_SERVER), Probe::Match, "{d:02x?}");
        }
    }

    #[test]
    fn probe_rejects_other_udp_protocols() {
        // DNS query for example.com, ID 0x4101 chosen so that the first byte
        // passes the version check (ver 1, CON, TKL 1) and byte 1 reads as GET:
        // QDCOUNT's low byte then encodes option 0, which is reserved.
        let dns = b"\x41\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
                    \x07example\x03com\x00\x00\x01\x00\x01";
        assert_eq!(probe(dns, TO_SERVER), Probe::NoMatch);
        // The same query with a typical random ID: version 0.
        let mut dns2 = dns.to_vec();
        dns2[0] = 0x12;
        assert_eq!(probe(&dns2, TO_SERVER), Probe::NoMatch);
        // NTP v4 client (LI 0, VN 4, mode 3 = 0x23): version 0.
        let mut ntp = vec![0x23u8];
        ntp.extend_from_slice(&[0; 47]);
        assert_eq!(probe(&ntp, TO_SERVER), Probe::NoMatch);
        // SSDP: 'M' = 0x4D reads as version 1 with token length 13.
        assert_eq!(probe(b"M-SEARCH * HTTP/1.1\r\n", TO_SERVER), Probe::NoMatch);
        // DTLS record header (content type 22): version 0.
        assert_eq!(
            probe(&[0x16, 0xfe, 0xfd, 0, 0, 0, 0], TO_SERVER),
            Probe::NoMatch
        );
        assert_eq!(probe(&[], TO_SERVER), Probe::NoMatch);
    }

    #[test]
    fn probe_rejects_invalid_coap() {
        let cases: [&[u8]; 7] = [
            &[0x40, 0x01, 0, 1, 0xFF],       // marker without payload
            &[0x40, 0x20, 0, 1],             // class 1 (reserved)
            &[0x40, 0xE1, 0, 1],             // class 7 (signalling: TCP only)
            &[0x40, 0x08, 0, 1],             // 0.08 unassigned method
            &[0x60, 0x01, 0, 1],             // request in an ACK
            &[0x41, 0x00, 0, 1, 0xAA],       // Empty with a token
            &[0x40, 0x01, 0, 1, 0xF1, 0x00], // option delta 15
        ];
        for d in cases {
            assert_eq!(probe(d, Direction::ToClient), Probe::NoMatch, "{d:02x?}");
        }
    }
}
