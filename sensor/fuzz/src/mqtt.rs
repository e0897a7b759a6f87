//! MQTT 3.1 / 3.1.1 / 5.0: drives an `MqttSession` with the scheduled chunks
//! and gaps of the input (see `spanwatch_fuzz`), checks the documented
//! bounds of every event and that every framed packet gives exactly one
//! packet event, then runs the probe, the fixed-header framer and the packet
//! parsers (all three versions) on the payload.

use crate::{Input, assert_bytes_capped, replay};
use spanwatch::flow::Direction;
use spanwatch::proto::mqtt::parser::{
    FixedHeader, Packet, infer_version, parse_fixed_header, parse_packet, parse_publish,
    peek_connect_level,
};
use spanwatch::proto::mqtt::wire::{MAX_VBI_BYTES, Status, decode_vbi};
use spanwatch::proto::mqtt::{
    AnomalyKind, MqttEvent, MqttLimits, MqttSession, MqttStats, PropertySummary, ProtocolVersion,
    probe,
};

/// Packets framed from the payload by the stateless pass.
const MAX_STATELESS_PACKETS: usize = 64;
/// Payload bytes asked of `parse_publish` on a partial packet.
const PUBLISH_WANT: usize = 4;

fn tiny_limits() -> MqttLimits {
    MqttLimits {
        max_packet_bytes: 64,
        max_text_bytes: 8,
        payload_head_bytes: 4,
        max_inflight: 2,
        max_filters_per_event: 2,
        max_topic_aliases: 2,
        max_anomalies: 4,
    }
}

fn check_props(p: &Option<Box<PropertySummary>>, cap: usize) {
    let Some(p) = p else { return };
    let texts = [
        &p.content_type,
        &p.response_topic,
        &p.assigned_client_id,
        &p.auth_method,
        &p.response_information,
        &p.server_reference,
        &p.reason_string,
    ];
    for s in texts.into_iter().flatten() {
        assert_bytes_capped(s, cap, "property");
    }
    if let Some((k, v)) = &p.first_user_property {
        assert_bytes_capped(k, cap, "user property name");
        assert_bytes_capped(v, cap, "user property value");
        assert!(p.user_properties >= 1);
    }
}

/// Checks one batch of events; returns (packet events, emitted anomalies).
fn check_events(events: &[MqttEvent], l: &MqttLimits) -> (u64, u64) {
    let text = l.max_text_bytes;
    let items = l.max_filters_per_event;
    let mut packets = 0;
    let mut anomalies = 0;
    for ev in events {
        if ev.msg_type().is_some() {
            packets += 1;
        }
        match ev {
            MqttEvent::Connect(c) => {
                assert_bytes_capped(&c.protocol_name, text, "protocol name");
                assert_bytes_capped(&c.client_id, text, "client id");
                if let Some(u) = &c.username {
                    assert_bytes_capped(u, text, "user name");
                }
                assert!(c.has_password || c.password_len == 0);
                if let Some(w) = &c.will {
                    assert_bytes_capped(&w.topic, text, "will topic");
                    check_props(&w.properties, text);
                }
                check_props(&c.properties, text);
            }
            MqttEvent::Connack(c) => check_props(&c.properties, text),
            MqttEvent::Publish(p) => {
                assert_bytes_capped(&p.topic, text, "topic");
                assert!(p.payload_head.len() <= l.payload_head_bytes);
                assert!(p.payload_head.len() as u64 <= u64::from(p.payload_len));
                check_props(&p.properties, text);
            }
            MqttEvent::Puback(a)
            | MqttEvent::Pubrec(a)
            | MqttEvent::Pubrel(a)
            | MqttEvent::Pubcomp(a) => check_props(&a.properties, text),
            MqttEvent::Subscribe(s) => {
                assert!(s.filters.len() <= items && s.filters.len() <= s.filter_count);
                for f in &s.filters {
                    assert_bytes_capped(&f.filter, text, "filter");
                }
                check_props(&s.properties, text);
            }
            MqttEvent::Suback(s) => {
                assert!(s.codes.len() <= items && s.codes.len() <= s.code_count);
                check_props(&s.properties, text);
            }
            MqttEvent::Unsubscribe(u) => {
                assert!(u.filters.len() <= items && u.filters.len() <= u.filter_count);
                for f in &u.filters {
                    assert_bytes_capped(f, text, "filter");
                }
                check_props(&u.properties, text);
            }
            MqttEvent::Unsuback(u) => {
                assert!(u.codes.len() <= items && u.codes.len() <= u.code_count);
                check_props(&u.properties, text);
            }
            MqttEvent::Disconnect(d) => check_props(&d.properties, text),
            MqttEvent::Auth(a) => check_props(&a.properties, text),
            MqttEvent::Pingreq | MqttEvent::Pingresp | MqttEvent::Unparsed { .. } => {}
            MqttEvent::Anomaly(a) => {
                if a.kind != AnomalyKind::AnomalyLimitReached {
                    anomalies += 1;
                    assert_bytes_capped(&a.detail, text, "anomaly detail");
                }
            }
        }
    }
    (packets, anomalies)
}

/// Runs the schedule (see [`replay`]) through a new session; returns its
/// events and final counters.
fn run(
    input: &Input<'_>,
    limits: &MqttLimits,
    piece: Option<usize>,
) -> (Vec<MqttEvent>, MqttStats) {
    let mut s = MqttSession::new(limits.clone());
    let out = replay(&mut s, input, piece);
    (out, *s.stats())
}

fn session(input: &Input<'_>, limits: &MqttLimits) {
    let (events, stats) = run(input, limits, None);
    let (packets, anomalies) = check_events(&events, limits);
    assert_eq!(stats.packets, packets, "one packet event per framed packet");
    assert!(anomalies <= u64::from(limits.max_anomalies));
    assert!(stats.anomalies >= anomalies);
    // After framing is lost the resynchronisation search decides on the
    // bytes that have arrived so far, so only in-sync streams must give the
    // same events whatever the split.
    if stats.desyncs == 0 {
        let (split, split_stats) = run(input, limits, Some(input.config.piece_len()));
        if split_stats.desyncs == 0 {
            assert_eq!(events, split, "events depend on how the stream was split");
        }
    }
}

fn check_frame(h: &FixedHeader, available: usize) {
    assert!((2..=1 + MAX_VBI_BYTES).contains(&h.header_len));
    assert!(h.header_len <= available);
}

fn stateless(payload: &[u8]) {
    for dir in [Direction::ToServer, Direction::ToClient] {
        let _ = probe(payload, dir);
    }
    if let Ok(Status::Done(v)) = decode_vbi(payload) {
        assert!((1..=MAX_VBI_BYTES).contains(&v.len));
    }
    let mut rest = payload;
    for _ in 0..MAX_STATELESS_PACKETS {
        let h = match parse_fixed_header(rest) {
            Ok(Status::Done(h)) => h,
            Ok(Status::Incomplete(n)) => {
                assert!(n > rest.len(), "incomplete needs more than it has");
                return;
            }
            Err(_) => return,
        };
        check_frame(&h, rest.len());
        let start = h.header_len;
        let end = usize::try_from(h.total_len()).unwrap_or(usize::MAX);
        let Some(body) = rest.get(start..end) else {
            // A partial packet: only a PUBLISH can be decoded from a prefix.
            let prefix = rest.get(start..).unwrap_or_default();
            let mut violations = Vec::new();
            let version = ProtocolVersion::V5;
            if let Ok(Status::Done(p)) =
                parse_publish(&h, prefix, version, PUBLISH_WANT, &mut violations)
            {
                assert!(p.payload_head.len() <= PUBLISH_WANT);
            }
            return;
        };
        for version in [
            ProtocolVersion::V3_1,
            ProtocolVersion::V3_1_1,
            ProtocolVersion::V5,
        ] {
            let mut violations = Vec::new();
            if let Ok(Packet::Publish(p)) = parse_packet(&h, body, version, &mut violations) {
                assert!(p.payload_head.len() as u64 <= u64::from(p.payload_len));
                assert!(p.topic.len() <= body.len());
            }
        }
        let _ = infer_version(&h, body);
        let _ = peek_connect_level(body);
        rest = rest.get(end..).unwrap_or_default();
    }
}

/// One fuzz input: the body of the `mqtt` fuzz target, also replayed over the
/// committed corpus by `tests/corpus.rs` on stable.
pub fn fuzz_one(data: &[u8]) {
    let input = Input::parse(data);
    let limits = if input.config.tiny_limits() {
        tiny_limits()
    } else {
        MqttLimits::default()
    };
    session(&input, &limits);
    stateless(input.payload);
}
