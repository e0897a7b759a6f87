//! DHCPv4 over UDP: RFC 2131 (protocol, message format), RFC 2132 (options),
//! RFC 3396 (long options), RFC 951 (the BOOTP header).
//!
//! - [`parser`]: zero-copy checked view of one datagram ([`DhcpMessage`]) and
//!   its options, overloaded `sname`/`file` fields included.
//! - [`session`]: per-flow reader ([`DhcpSession`]) turning each datagram
//!   into one message event and its anomalies.
//! - [`events`]: what the session reports ([`DhcpEvent`]).
//! - [`counts`], [`log`], [`normalize`]: what the rest of spanwatch makes of
//!   the events.
//!
//! Messages of a client (DISCOVER, REQUEST, INFORM) become `dhcp.request`
//! events whose `hostname` (option 12) names the device; OFFER and ACK
//! become `dhcp.ack`.
pub mod counts;
pub mod events;
pub mod log;
pub mod normalize;
pub mod parser;
pub mod session;

pub use counts::DhcpCounts;
pub use events::{AnomalyKind, DhcpAnomaly, DhcpEvent, DhcpMessageEvent, HwAddr};
pub use parser::{
    Area, DhcpMessage, DhcpOption, MessageType, Op, OptionCode, OptionError, OptionItem,
    ParseError, looks_like_dhcp,
};
pub use session::{DhcpLimits, DhcpSession, DhcpStats};

use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::Probe;
use crate::proto::contract::{CountsView, Protocol};
use crate::proto::norm::{Event, NormContext};

/// DHCPv4 over UDP.
pub struct Dhcp;

impl Protocol for Dhcp {
    const NAME: &'static str = "dhcp";
    const FLOW_KIND: &'static str = "dhcp.flow";
    /// 67 server, 68 client (RFC 2131 §4.1).
    const UDP_PORTS: &'static [u16] = &[67, 68];

    type Limits = DhcpLimits;
    type Session = DhcpSession;
    type Event = DhcpEvent;
    type Counts = DhcpCounts;
    type Record<'a> = log::DhcpRecord<'a>;

    fn probe_datagram(payload: &[u8], dir: Direction) -> Probe {
        probe(payload, dir)
    }

    fn session(limits: &DhcpLimits) -> DhcpSession {
        DhcpSession::new(*limits)
    }

    fn on_datagram(
        s: &mut DhcpSession,
        ts: Timestamp,
        dir: Direction,
        payload: &[u8],
        out: &mut Vec<DhcpEvent>,
    ) {
        s.on_datagram(ts, dir, payload, out);
    }

    /// Nothing is pending across datagrams.
    fn on_close(_s: &mut DhcpSession, _ts: Timestamp, _out: &mut Vec<DhcpEvent>) {}

    fn count_flow(c: &mut DhcpCounts) {
        c.flows += 1;
    }

    fn count(c: &mut DhcpCounts, ev: &DhcpEvent) {
        c.count(ev);
    }

    fn view(c: &DhcpCounts) -> CountsView<'_> {
        CountsView {
            flows: c.flows,
            messages: vec![("message", c.messages)],
            anomalies: &c.anomalies,
        }
    }

    fn log_record(ev: &DhcpEvent) -> Option<(Option<Direction>, log::DhcpRecord<'_>)> {
        Some(log::record(ev))
    }

    fn normalize<'e>(ev: &'e DhcpEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>) {
        normalize::normalize(ev, cx, out);
    }
}

/// Content probe for DHCP on any UDP port (DESIGN.md: detection by content).
///
/// `Match` for a datagram holding the BOOTP header with `op` 1 or 2, a
/// non-zero hardware type whose address fits `chaddr`, and the magic cookie
/// 99.130.83.99 at offset 236 (RFC 2131 §2, §3). A datagram is complete, so
/// the answer is never `NeedMore`; either side may send first.
pub fn probe(payload: &[u8], _dir: Direction) -> Probe {
    if looks_like_dhcp(payload) {
        Probe::Match
    } else {
        Probe::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::coap;
    use parser::tests::{Builder, MAC};

    #[test]
    fn probe_tells_dhcp_from_other_udp_protocols() {
        let discover = Builder::new(1, 1, MAC).options(&[53, 1, 1, 255]);
        for dir in [Direction::ToServer, Direction::ToClient] {
            assert_eq!(probe(&discover, dir), Probe::Match);
            // op 1 or 2 reads as CoAP version 0 (RFC 7252 §3): not CoAP.
            assert_eq!(coap::probe(&discover, dir), Probe::NoMatch);
            // RFC 7252 Appendix A, Figure 16: a CoAP GET is not DHCP.
            assert_eq!(
                probe(b"\x40\x01\x7d\x34\xbbtemperature", dir),
                Probe::NoMatch
            );
            // A DNS query for example.com (RFC 1035 §4.1), and an empty datagram.
            let dns = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
                        \x07example\x03com\x00\x00\x01\x00\x01";
            assert_eq!(probe(dns, dir), Probe::NoMatch);
            assert_eq!(probe(&[], dir), Probe::NoMatch);
        }
    }
}
