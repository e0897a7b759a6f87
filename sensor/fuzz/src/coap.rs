//! CoAP over UDP: each scheduled data chunk of the input (see
//! `spanwatch_fuzz`) is one datagram given to `CoapSession::on_datagram`; a
//! scheduled gap moves the clock on by that many seconds and calls `expire`,
//! so exchange, observation and block-transfer state ages out. Checks the
//! documented bounds of events and state, then runs the probe, the datagram
//! parser (lenient and strict) and the link-format reader on the payload.

use crate::{Clock, Input, Step, assert_bytes_capped};
use spanwatch::flow::Direction;
use spanwatch::proto::Probe;
use spanwatch::proto::coap::linkformat::MAX_CONTENT_FORMATS_PER_LINK;
use spanwatch::proto::coap::parser::MAX_TOKEN_LEN;
use spanwatch::proto::coap::{
    CoapEvent, CoapLimits, CoapMessage, CoapSession, LinkFormatLimits, LinkResource,
    parse_link_format, probe,
};

/// Sanity bound on an anomaly detail: details are fixed sentences with
/// numbers and at most a couple of capped strings, never raw input.
const DETAIL_SLACK: usize = 256;

fn tiny_limits() -> CoapLimits {
    CoapLimits {
        max_open_exchanges: 2,
        max_recent_messages: 2,
        max_observations: 1,
        max_block_transfers: 1,
        max_options: 3,
        max_string_len: 6,
        max_unknown_critical: 1,
        exchange_lifetime_secs: 5,
        non_lifetime_secs: 2,
        link_format: LinkFormatLimits {
            max_links: 2,
            max_value_len: 4,
        },
    }
}

fn check_uri(uri: Option<&str>, cap: usize) {
    if let Some(s) = uri {
        assert_bytes_capped(s, cap, "uri");
    }
}

fn check_links(links: &[LinkResource], l: LinkFormatLimits) {
    assert!(links.len() <= l.max_links);
    let cap = l.max_value_len;
    for link in links {
        assert_bytes_capped(&link.target, cap, "link target");
        let attrs = [
            &link.rt,
            &link.interface,
            &link.title,
            &link.anchor,
            &link.rel,
        ];
        for s in attrs.into_iter().flatten() {
            assert_bytes_capped(s, cap, "link attribute");
        }
        assert!(link.content_formats.len() <= MAX_CONTENT_FORMATS_PER_LINK);
    }
}

/// Checks one batch of events; returns the number of message events.
fn check_events(events: &[CoapEvent], l: &CoapLimits) -> u64 {
    let cap = l.max_string_len;
    let mut messages = 0;
    for ev in events {
        match ev {
            CoapEvent::Message(m) => {
                messages += 1;
                check_uri(m.uri_host.as_deref(), cap);
                check_uri(m.uri_path.as_deref(), cap);
                check_uri(m.uri_query.as_deref(), cap);
                assert!(m.token.len() <= MAX_TOKEN_LEN);
                assert!(m.unknown_critical_options.len() <= l.max_unknown_critical);
                if let Some(r) = &m.response_to {
                    check_uri(r.request_uri_path.as_deref(), cap);
                }
            }
            CoapEvent::ObserveRegister { uri_path, .. }
            | CoapEvent::ObserveDeregister { uri_path, .. }
            | CoapEvent::ObserveNotify { uri_path, .. }
            | CoapEvent::ObserveEnd { uri_path, .. }
            | CoapEvent::BlockTransferComplete { uri_path, .. }
            | CoapEvent::Unanswered { uri_path, .. } => check_uri(uri_path.as_deref(), cap),
            CoapEvent::Discovery(d) => {
                check_uri(d.request_uri_path.as_deref(), cap);
                check_links(&d.links, l.link_format);
            }
            CoapEvent::Anomaly(a) => {
                assert_bytes_capped(&a.detail, 2 * cap + DETAIL_SLACK, "anomaly detail");
            }
        }
    }
    messages
}

fn check_state(s: &CoapSession, l: &CoapLimits) {
    assert!(s.open_exchanges() <= l.max_open_exchanges);
    assert!(s.active_observations() <= l.max_observations);
}

fn session(input: &Input<'_>, limits: &CoapLimits) {
    let mut s = CoapSession::new(*limits);
    let mut clock = Clock::new(input.config);
    let mut out = Vec::new();
    let mut datagrams = 0u64;
    let mut messages = 0u64;
    for step in input.steps() {
        match step {
            Step::Data(dir, payload) => {
                datagrams += 1;
                s.on_datagram(clock.tick(), dir, payload, &mut out);
            }
            Step::Gap(_, secs) => {
                clock.advance_secs(secs);
                s.expire(clock.tick(), &mut out);
            }
        }
        messages += check_events(&out, limits);
        out.clear();
        check_state(&s, limits);
    }
    // The flow's end releases the responses still waiting for their request.
    s.close(&mut out);
    messages += check_events(&out, limits);
    let stats = *s.stats();
    assert_eq!(stats.datagrams, datagrams);
    assert_eq!(stats.messages, messages);
    assert_eq!(stats.messages + stats.rejected_datagrams, datagrams);
}

fn stateless(payload: &[u8]) {
    let strict = CoapMessage::parse_strict(payload);
    let matched = probe(payload, Direction::ToServer);
    assert_eq!(matched, probe(payload, Direction::ToClient));
    assert!(matched != Probe::NeedMore, "a datagram is always complete");
    if matched == Probe::Match {
        assert!(strict.is_ok());
    }
    match CoapMessage::parse(payload) {
        Ok(msg) => {
            assert_eq!(strict.is_ok(), msg.is_well_formed());
            assert!(msg.token().len() <= MAX_TOKEN_LEN);
            assert_eq!(msg.options().count(), msg.option_count());
            for opt in msg.options() {
                let _ = opt.typed();
                let _ = opt.as_uint();
                assert!(opt.offset() + opt.value().len() <= payload.len());
            }
            assert!(msg.payload().len() <= payload.len());
            let _ = msg.type_code_violation();
        }
        Err(e) => {
            assert!(strict.is_err());
            assert!(e.is_fatal());
        }
    }
    for limits in [LinkFormatLimits::default(), tiny_limits().link_format] {
        let lf = parse_link_format(payload, limits);
        check_links(&lf.links, limits);
    }
}

/// One fuzz input: the body of the `coap` fuzz target, also replayed over the
/// committed corpus by `tests/corpus.rs` on stable.
pub fn fuzz_one(data: &[u8]) {
    let input = Input::parse(data);
    let limits = if input.config.tiny_limits() {
        tiny_limits()
    } else {
        CoapLimits::default()
    };
    session(&input, &limits);
    stateless(input.payload);
}
