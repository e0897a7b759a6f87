//! DHCP over UDP: each scheduled data chunk of the input (see
//! `spanwatch_fuzz`) is one datagram given to `DhcpSession::on_datagram`
//! (gaps only move the clock: DHCP keeps nothing across datagrams). Checks
//! the documented bounds of the events and the session counters, then runs
//! the probe, the header view and the option walk on the payload.

use crate::{Clock, Input, Step, assert_bytes_capped};
use spanwatch::flow::Direction;
use spanwatch::proto::Probe;
use spanwatch::proto::dhcp::parser::{CHADDR_LEN, HEADER_LEN, OPTIONS_START};
use spanwatch::proto::dhcp::{
    Area, DhcpEvent, DhcpLimits, DhcpMessage, DhcpSession, OptionError, OptionItem, probe,
};

/// Sanity bound on an anomaly detail: details are fixed sentences with a
/// few numbers, never input bytes.
const DETAIL_MAX: usize = 256;

fn tiny_limits() -> DhcpLimits {
    DhcpLimits {
        max_options: 2,
        max_string_bytes: 3,
        max_param_requests: 1,
    }
}

/// Checks one batch of events; returns the number of message events.
fn check_events(events: &[DhcpEvent], l: &DhcpLimits) -> u64 {
    let mut messages = 0;
    for ev in events {
        match ev {
            DhcpEvent::Message(m) => {
                messages += 1;
                for s in [&m.hostname, &m.vendor_class, &m.client_id]
                    .into_iter()
                    .flatten()
                {
                    assert_bytes_capped(s, l.max_string_bytes, "dhcp string");
                }
                assert!(m.param_request_list.len() <= l.max_param_requests);
                assert!(m.option_count <= l.max_options);
                assert!(m.chaddr.as_bytes().len() <= CHADDR_LEN);
                if let Some(mac) = m.client_mac {
                    assert_eq!(m.chaddr.as_bytes(), mac);
                }
            }
            DhcpEvent::Anomaly(a) => assert_bytes_capped(&a.detail, DETAIL_MAX, "anomaly detail"),
        }
    }
    messages
}

fn session(input: &Input<'_>, limits: &DhcpLimits) {
    let mut s = DhcpSession::new(*limits);
    let mut clock = Clock::new(input.config);
    let mut out = Vec::new();
    let (mut datagrams, mut messages) = (0u64, 0u64);
    for step in input.steps() {
        match step {
            Step::Data(dir, payload) => {
                datagrams += 1;
                s.on_datagram(clock.tick(), dir, payload, &mut out);
            }
            Step::Gap(_, secs) => clock.advance_secs(secs),
        }
        messages += check_events(&out, limits);
        out.clear();
    }
    let stats = *s.stats();
    assert_eq!(stats.datagrams, datagrams);
    assert_eq!(stats.messages, messages);
    assert_eq!(stats.messages + stats.rejected_datagrams, datagrams);
}

fn stateless(payload: &[u8]) {
    let matched = probe(payload, Direction::ToServer);
    assert_eq!(matched, probe(payload, Direction::ToClient));
    assert!(matched != Probe::NeedMore, "a datagram is always complete");
    let Ok(msg) = DhcpMessage::parse(payload) else {
        assert!(matched == Probe::NoMatch);
        return;
    };
    assert!(payload.len() >= HEADER_LEN);
    if matched == Probe::Match {
        assert!(msg.has_magic_cookie() && msg.hlen_valid());
    }
    let _ = (
        msg.xid(),
        msg.secs(),
        msg.flags(),
        msg.ciaddr(),
        msg.giaddr(),
    );
    assert!(msg.chaddr().len() <= CHADDR_LEN);
    // Every option lies inside the datagram; the walk ends, and reports at
    // most one missing cookie, first.
    let mut items = 0usize;
    for (i, item) in msg.options().enumerate() {
        items += 1;
        assert!(items <= payload.len(), "option walk does not end");
        match item {
            OptionItem::Option(o) => {
                assert!(o.offset + 2 + o.value.len() <= payload.len());
                match o.area {
                    Area::Options => assert!(o.offset >= OPTIONS_START),
                    Area::File | Area::Sname => assert!(o.offset + 2 + o.value.len() <= HEADER_LEN),
                }
            }
            OptionItem::Error(OptionError::MissingMagicCookie) => {
                assert_eq!(i, 0);
                assert!(!msg.has_magic_cookie());
            }
            OptionItem::Error(_) => {}
        }
    }
}

/// One fuzz input: the body of the `dhcp` fuzz target, also replayed over the
/// committed corpus by `tests/corpus.rs` on stable.
pub fn fuzz_one(data: &[u8]) {
    let input = Input::parse(data);
    let limits = if input.config.tiny_limits() {
        tiny_limits()
    } else {
        DhcpLimits::default()
    };
    session(&input, &limits);
    stateless(input.payload);
}
