//! Replays the shared CoAP captures through [`CoapSession`]. Expected values
//! are tshark's: the `expected` column of `/work/shared/pcaps/MANIFEST.tsv`
//! and, where that has no field, tshark 4.0 field output quoted next to the
//! assertion. UDP datagrams are cut out with etherparse; the few lines of
//! pcap/pcapng walking below exist only because these tests must not depend on
//! the capture module being written in parallel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv6Addr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::*;
use crate::capture::Timestamp;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

fn le32(b: &[u8], at: usize) -> u32 {
    let s = b.get(at..at + 4).expect("record header inside the file");
    u32::from_le_bytes([s[0], s[1], s[2], s[3]])
}

/// (timestamp, frame) of every record of a little-endian, microsecond pcap or
/// pcapng file (the only kinds the CoAP captures are, per MANIFEST.tsv).
fn records(name: &str) -> Vec<(Timestamp, Vec<u8>)> {
    let bytes = std::fs::read(format!("{PCAPS}/coap/{name}")).expect("shared capture present");
    let mut out = Vec::new();
    match bytes.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) => {
            let mut pos = 24;
            while pos + 16 <= bytes.len() {
                let secs = i64::from(le32(&bytes, pos));
                let usecs = le32(&bytes, pos + 4);
                let incl = le32(&bytes, pos + 8) as usize;
                let data = bytes[pos + 16..pos + 16 + incl].to_vec();
                out.push((Timestamp::from_secs_nanos(secs, usecs * 1000), data));
                pos += 16 + incl;
            }
        }
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => {
            let mut pos = 0;
            while pos + 12 <= bytes.len() {
                let block_type = le32(&bytes, pos);
                let block_len = le32(&bytes, pos + 4) as usize;
                if block_type == 6 {
                    // Enhanced Packet Block; default resolution is microseconds.
                    let micros = (u64::from(le32(&bytes, pos + 12)) << 32)
                        | u64::from(le32(&bytes, pos + 16));
                    let caplen = le32(&bytes, pos + 20) as usize;
                    let data = bytes[pos + 28..pos + 28 + caplen].to_vec();
                    out.push((Timestamp(i64::try_from(micros).unwrap() * 1000), data));
                }
                pos += block_len;
            }
        }
        other => panic!("unexpected capture magic {other:02x?}"),
    }
    out
}

/// Feeds every IPv6/UDP datagram to the session of its flow (the first sender
/// of a flow is its client) and returns all events in order.
fn replay(name: &str) -> Vec<CoapEvent> {
    type Endpoint = (Ipv6Addr, u16);
    let mut sessions: HashMap<(Endpoint, Endpoint), CoapSession> = HashMap::new();
    let mut events = Vec::new();
    for (ts, frame) in records(name) {
        let Ok(p) = SlicedPacket::from_ethernet(&frame) else {
            continue;
        };
        let (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Udp(udp))) = (&p.net, &p.transport)
        else {
            continue;
        };
        let src = (ip.header().source_addr(), udp.source_port());
        let dst = (ip.header().destination_addr(), udp.destination_port());
        let (key, dir) = if sessions.contains_key(&(dst, src)) {
            ((dst, src), Direction::ToClient)
        } else {
            ((src, dst), Direction::ToServer)
        };
        sessions
            .entry(key)
            .or_insert_with(|| CoapSession::new(CoapLimits::default()))
            .on_datagram(ts, dir, udp.payload(), &mut events);
    }
    events
}

fn messages(events: &[CoapEvent]) -> Vec<&CoapMessageEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            CoapEvent::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn anomalies(events: &[CoapEvent]) -> Vec<&CoapAnomaly> {
    events
        .iter()
        .filter_map(|e| match e {
            CoapEvent::Anomaly(a) => Some(a),
            _ => None,
        })
        .collect()
}

fn count_by<K: Ord>(
    msgs: &[&CoapMessageEvent],
    key: impl Fn(&CoapMessageEvent) -> K,
) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for msg in msgs {
        *m.entry(key(msg)).or_insert(0) += 1;
    }
    m
}

#[test]
fn periodic_get_put_con_ack() {
    let events = replay("coap-periodic-get-put-con-ack-ipv6.pcap");
    let msgs = messages(&events);
    // MANIFEST: messages 30, code {1:8, 3:7, 68:7, 69:8}, type {0:15, 2:15},
    // distinct_tokens 15, no Observe, no Block.
    assert_eq!(msgs.len(), 30);
    assert_eq!(
        count_by(&msgs, |m| m.code.number()),
        BTreeMap::from([(1, 8), (3, 7), (68, 7), (69, 8)])
    );
    assert_eq!(
        count_by(&msgs, |m| m.msg_type.as_u8()),
        BTreeMap::from([(0, 15), (2, 15)])
    );
    let tokens: BTreeSet<_> = msgs.iter().map(|m| m.token).collect();
    assert_eq!(tokens.len(), 15);
    assert!(
        msgs.iter()
            .all(|m| m.observe.is_none() && m.block1.is_none() && m.block2.is_none())
    );
    // uri_paths coap://user.ackl.io/time and coap://user.ackl.io/other/block.
    let paths: BTreeSet<_> = msgs.iter().filter_map(|m| m.uri_path.as_deref()).collect();
    assert_eq!(paths, BTreeSet::from(["other/block", "time"]));
    assert!(
        msgs.iter()
            .filter(|m| m.code.is_request())
            .all(|m| m.uri_host.as_deref() == Some("user.ackl.io"))
    );
    // Every ACK is a piggy-backed response to the request before it
    // (tshark: "[Request In: ...]" on each of them).
    let responses: Vec<_> = msgs.iter().filter(|m| m.code.is_response()).collect();
    assert_eq!(responses.len(), 15);
    for r in &responses {
        let matched = r.response_to.as_ref().expect("matched");
        assert_eq!(matched.kind, ResponseKind::Piggybacked);
        assert_eq!(matched.request_message_id, r.message_id);
        let want = if r.code == Code::CONTENT {
            Code::GET
        } else {
            Code::PUT
        };
        assert_eq!(matched.request_code, want);
    }
    // tshark frame 2: "[Response Time: 0.003307000 seconds]".
    assert_eq!(
        responses[0].response_to.as_ref().unwrap().rtt_nanos,
        3_307_000
    );
    assert!(msgs.iter().all(|m| !m.is_retransmission));
    assert_eq!(anomalies(&events), Vec::<&CoapAnomaly>::new());
    assert_eq!(events.len(), 30, "nothing but the 30 messages");
}

#[test]
fn get_answered_by_icmp_port_unreachable() {
    // tshark counts 2 CoAP messages, the second being the copy quoted inside
    // the ICMPv6 error; on UDP there is one: CON GET MID 33090 token ddad /time.
    let events = replay("coap-get-icmpv6-port-unreachable.pcap");
    let msgs = messages(&events);
    assert_eq!(msgs.len(), 1);
    let m = msgs[0];
    assert_eq!(
        (m.msg_type, m.code, m.message_id),
        (MessageType::Confirmable, Code::GET, 33090)
    );
    assert_eq!(m.token.to_string(), "ddad");
    assert_eq!(m.uri_path.as_deref(), Some("time"));
    assert!(anomalies(&events).is_empty());
}

#[test]
fn draft_era_capture_is_reported_under_rfc7252_rules() {
    let events = replay("coap-get-post-put-delete-ipv6.pcapng");
    let msgs = messages(&events);
    // MANIFEST: messages 5, code {1:2, 2:1, 3:1, 4:1}, type {0:5}, 2 tokens.
    assert_eq!(msgs.len(), 5);
    assert_eq!(
        count_by(&msgs, |m| m.code.number()),
        BTreeMap::from([(1, 2), (2, 1), (3, 1), (4, 1)])
    );
    assert!(msgs.iter().all(|m| m.msg_type == MessageType::Confirmable));
    let tokens: BTreeSet<_> = msgs.iter().map(|m| m.token.to_string()).collect();
    // tshark coap.token: 721633 (frames 1-4) and 7216332b2e (frame 5).
    assert_eq!(
        tokens,
        BTreeSet::from(["721633".to_string(), "7216332b2e".to_string()])
    );
    // Frames 1-4: two instances of unassigned elective option 2 (tshark:
    // "Unknown Option (2)" twice); elective, so ignored without an anomaly.
    for m in &msgs[..4] {
        assert_eq!(m.option_count, 2);
        assert!(m.unknown_critical_options.is_empty());
        assert_eq!(m.uri_path, None);
    }
    // Frame 5: Uri-Port and Max-Age with 7-byte values (tshark: "Invalid Option
    // Range: 7"), then Uri-Query "=\xd4" (tshark shows "=\u{FFFD}").
    let last = msgs[4];
    assert_eq!(last.option_count, 3);
    assert_eq!(last.unknown_critical_options, vec![7]);
    assert_eq!(last.uri_query.as_deref(), Some("=\u{FFFD}"));
    let found: Vec<_> = anomalies(&events)
        .iter()
        .map(|a| (a.kind, a.option))
        .collect();
    assert_eq!(
        found,
        vec![
            (AnomalyKind::OptionValueLengthOutOfRange, Some(7)),
            (AnomalyKind::OptionValueLengthOutOfRange, Some(14)),
        ]
    );
}
