//! Whole-generator tests. Captures are read back with an independent pcap
//! record walker, etherparse's slicer and an RFC 1071 checksum written here.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::*;
use crate::capture::{FrameSource, Next};

struct Record<'a> {
    us: i64,
    data: &'a [u8],
}

/// Classic pcap records (magic a1b2c3d4 little endian, Ethernet).
fn records(pcap: &[u8]) -> Vec<Record<'_>> {
    assert!(pcap.len() >= 24, "no file header");
    assert_eq!(&pcap[..4], &[0xD4, 0xC3, 0xB2, 0xA1]);
    assert_eq!(u32::from_le_bytes(pcap[20..24].try_into().unwrap()), 1);
    let mut out = Vec::new();
    let mut rest = &pcap[24..];
    while !rest.is_empty() {
        let field = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().unwrap());
        let (secs, usecs, incl, orig) = (field(0), field(4), field(8), field(12));
        assert_eq!(incl, orig);
        assert!(usecs < 1_000_000);
        let len = incl as usize;
        out.push(Record {
            us: i64::from(secs) * 1_000_000 + i64::from(usecs),
            data: &rest[16..16 + len],
        });
        rest = &rest[16 + len..];
    }
    out
}

/// RFC 1071 one's-complement sum of 16-bit words.
fn ones_complement_sum(parts: &[&[u8]]) -> u16 {
    let mut bytes = Vec::new();
    for p in parts {
        bytes.extend_from_slice(p);
    }
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).map_or(0, |&b| u32::from(b));
        sum += hi | lo;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

#[derive(Clone, Debug)]
struct Tcp {
    seq: u32,
    ack: u32,
    syn: bool,
    fin: bool,
    rst: bool,
    has_ack: bool,
}

#[derive(Clone, Debug)]
struct Decoded {
    src_mac: [u8; 6],
    src: SocketAddr,
    dst: SocketAddr,
    /// None for UDP.
    tcp: Option<Tcp>,
    payload: Vec<u8>,
}

/// Parse a frame with etherparse and check its IPv4 and TCP/UDP checksums.
fn decode(rec: &Record) -> Decoded {
    assert!(
        rec.data.len() >= 60,
        "frame shorter than the Ethernet minimum"
    );
    let sliced = SlicedPacket::from_ethernet(rec.data).expect("etherparse parses the frame");
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4");
    };
    let header = ip.header();
    assert_eq!(
        ones_complement_sum(&[header.slice()]),
        0xFFFF,
        "IPv4 header checksum"
    );
    let segment = ip.payload().payload;
    let pseudo = |proto: u8| {
        let mut p = Vec::with_capacity(12);
        p.extend_from_slice(&header.source());
        p.extend_from_slice(&header.destination());
        p.extend_from_slice(&[0, proto]);
        p.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        p
    };
    let src_ip = Ipv4Addr::from(header.source());
    let dst_ip = Ipv4Addr::from(header.destination());
    let mac = match &sliced.link {
        Some(etherparse::LinkSlice::Ethernet2(e)) => e.source(),
        _ => panic!("not Ethernet II"),
    };
    match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            assert_eq!(
                ones_complement_sum(&[&pseudo(6), segment]),
                0xFFFF,
                "TCP checksum"
            );
            let etherparse_sum = t
                .calc_checksum_ipv4(header.source(), header.destination())
                .unwrap();
            assert_eq!(etherparse_sum, t.checksum());
            Decoded {
                src_mac: mac,
                src: SocketAddr::from((src_ip, t.source_port())),
                dst: SocketAddr::from((dst_ip, t.destination_port())),
                tcp: Some(Tcp {
                    seq: t.sequence_number(),
                    ack: t.acknowledgment_number(),
                    syn: t.syn(),
                    fin: t.fin(),
                    rst: t.rst(),
                    has_ack: t.ack(),
                }),
                payload: t.payload().to_vec(),
            }
        }
        Some(TransportSlice::Udp(u)) => {
            assert_ne!(u.checksum(), 0, "UDP checksum present");
            assert_eq!(
                ones_complement_sum(&[&pseudo(17), segment]),
                0xFFFF,
                "UDP checksum"
            );
            Decoded {
                src_mac: mac,
                src: SocketAddr::from((src_ip, u.source_port())),
                dst: SocketAddr::from((dst_ip, u.destination_port())),
                tcp: None,
                payload: u.payload().to_vec(),
            }
        }
        _ => panic!("neither TCP nor UDP"),
    }
}

fn pcap(cfg: &SynthConfig) -> (Vec<u8>, SynthReport) {
    let mut out = Vec::new();
    let report = write_pcap(cfg, &mut out).unwrap();
    (out, report)
}

fn cfg(seed: u64, devices: u32, packets: u64) -> SynthConfig {
    SynthConfig {
        seed,
        devices,
        packets,
        ..SynthConfig::default()
    }
}

/// A TCP or UDP conversation: (client, server).
type Key = (SocketAddr, SocketAddr);

const SERVER_PORTS: [u16; 5] = [1883, 5683, 80, 8080, 23];

fn is_server(addr: &SocketAddr) -> bool {
    matches!(addr.ip(), std::net::IpAddr::V4(ip) if ip.octets()[..3] == [10, 0, 0])
        && SERVER_PORTS.contains(&addr.port())
}

/// (client, server) of a packet in either direction, and whether it goes to the server.
fn flow_key(d: &Decoded) -> (Key, bool) {
    if is_server(&d.dst) {
        ((d.src, d.dst), true)
    } else {
        assert!(is_server(&d.src), "{} -> {}", d.src, d.dst);
        ((d.dst, d.src), false)
    }
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let (a, _) = pcap(&cfg(7, 12, 3_000));
    let (b, _) = pcap(&cfg(7, 12, 3_000));
    let (c, _) = pcap(&cfg(8, 12, 3_000));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let distinct = SynthConfig {
        mode: Mode::DistinctFlows,
        ..cfg(7, 12, 500)
    };
    let other = SynthConfig {
        seed: 8,
        ..distinct
    };
    assert_eq!(pcap(&distinct).0, pcap(&distinct).0);
    assert_ne!(pcap(&distinct).0, pcap(&other).0);
}

#[test]
fn packet_count_is_exact_and_a_shorter_run_is_a_prefix() {
    let (long, report) = pcap(&cfg(3, 20, 2_345));
    let recs = records(&long);
    assert_eq!(recs.len(), 2_345);
    assert_eq!(report.packets, 2_345);
    let frame_bytes: usize = recs.iter().map(|r| r.data.len()).sum();
    assert_eq!(report.bytes, frame_bytes as u64);
    assert_eq!(long.len(), 24 + 16 * 2_345 + frame_bytes);
    let (short, _) = pcap(&cfg(3, 20, 1_000));
    assert_eq!(records(&short).len(), 1_000);
    assert_eq!(&long[..short.len()], &short[..]);
    let (empty, report) = pcap(&cfg(3, 20, 0));
    assert_eq!(empty.len(), 24);
    assert_eq!(report, SynthReport::default());
}

#[test]
fn every_frame_parses_with_valid_checksums_and_increasing_time() {
    let impaired = SynthConfig {
        impair: Impairments {
            reorder_permille: 50,
            retransmit_permille: 50,
            overlap_permille: 50,
            drop_permille: 50,
        },
        ..cfg(11, 30, 6_000)
    };
    let distinct = SynthConfig {
        mode: Mode::DistinctFlows,
        ..cfg(11, 30, 2_000)
    };
    for c in [impaired, distinct] {
        let (bytes, report) = pcap(&c);
        let recs = records(&bytes);
        assert_eq!(recs.len() as u64, c.packets);
        let start_us = c.start.as_nanos() / 1000;
        let mut last = start_us - 1;
        let (mut tcp, mut udp) = (HashSet::new(), HashSet::new());
        for r in &recs {
            assert!(r.us > last, "timestamps must increase");
            last = r.us;
            let d = decode(r);
            // Locally administered unicast MACs (IEEE 802 bit 1 set, bit 0 clear).
            assert_eq!(d.src_mac[0] & 0b11, 0b10);
            if d.tcp.is_some() {
                tcp.insert((d.src.min(d.dst), d.src.max(d.dst)));
            } else {
                udp.insert((d.src.min(d.dst), d.src.max(d.dst)));
            }
        }
        assert_eq!(report.flows_tcp, tcp.len() as u64);
        assert_eq!(report.flows_udp, udp.len() as u64);
    }
}

#[test]
fn frame_source_yields_the_pcap_frames() {
    let c = cfg(5, 6, 700);
    let (bytes, _) = pcap(&c);
    let recs = records(&bytes);
    let mut g = Generator::new(&c);
    let mut n = 0;
    while g.advance().unwrap() == Next::Frame {
        let f = g.current();
        assert_eq!(f.data, recs[n].data);
        assert_eq!(f.ts.as_nanos(), recs[n].us * 1000);
        assert_eq!(f.orig_len as usize, f.data.len());
        n += 1;
    }
    assert_eq!(n, 700);
    assert_eq!(g.advance().unwrap(), Next::End);
}

/// Per-direction view of the captured segments of one flow.
#[derive(Default)]
struct Direction {
    isn: Option<u32>,
    /// Bytes the capture shows at each offset.
    captured: HashMap<u64, u8>,
    /// (offset, length) of every data segment in capture order.
    segments: Vec<(u64, usize)>,
    fin: bool,
}

#[derive(Default)]
struct FlowView {
    dirs: [Direction; 2],
}

fn flow_views(bytes: &[u8]) -> HashMap<Key, FlowView> {
    let mut flows: HashMap<Key, FlowView> = HashMap::new();
    for r in records(bytes) {
        let d = decode(&r);
        let Some(t) = &d.tcp else {
            continue;
        };
        let (key, to_server) = flow_key(&d);
        let dir = &mut flows.entry(key).or_default().dirs[usize::from(!to_server)];
        if t.syn {
            dir.isn = Some(t.seq);
            continue;
        }
        let isn = dir.isn.expect("data before SYN");
        if !d.payload.is_empty() {
            let off = u64::from(t.seq.wrapping_sub(isn).wrapping_sub(1));
            for (i, &b) in d.payload.iter().enumerate() {
                let prev = dir.captured.insert(off + i as u64, b);
                assert!(prev.is_none_or(|p| p == b), "overlap with different bytes");
            }
            dir.segments.push((off, d.payload.len()));
        }
        dir.fin |= t.fin;
    }
    flows
}

fn truth_map(truth: &[StreamTruth]) -> HashMap<Key, &StreamTruth> {
    let map: HashMap<_, _> = truth.iter().map(|t| ((t.client, t.server), t)).collect();
    assert_eq!(map.len(), truth.len(), "one truth per TCP flow");
    map
}

#[test]
fn unimpaired_streams_concatenated_by_seq_equal_the_truth() {
    let c = cfg(21, 10, 5_000);
    let (bytes, truth) = generate_with_truth(&c).unwrap();
    let truth = truth_map(&truth);
    let mut peers: HashMap<Key, [(u32, u64, bool); 2]> = HashMap::new();
    let mut streams: HashMap<Key, [Vec<u8>; 2]> = HashMap::new();
    let mut rsts = 0;
    for r in records(&bytes) {
        let d = decode(&r);
        let Some(t) = &d.tcp else {
            continue;
        };
        let (key, to_server) = flow_key(&d);
        let me = usize::from(!to_server);
        let state = peers.entry(key).or_insert([(0, 0, false); 2]);
        if t.syn {
            state[me] = (t.seq, 0, false);
            if t.has_ack {
                assert_eq!(t.ack, state[1 - me].0.wrapping_add(1));
            }
            continue;
        }
        let (isn, sent, fin) = state[me];
        // Every segment continues exactly where this side's previous one ended.
        let expected = isn
            .wrapping_add(1)
            .wrapping_add(sent as u32)
            .wrapping_add(u32::from(fin));
        assert_eq!(t.seq, expected, "{key:?}");
        // Every ACK covers exactly what the peer has sent so far.
        assert!(t.has_ack || t.rst);
        let (pisn, psent, pfin) = state[1 - me];
        let peer_next = pisn
            .wrapping_add(1)
            .wrapping_add(psent as u32)
            .wrapping_add(u32::from(pfin));
        assert_eq!(t.ack, peer_next, "{key:?}");
        state[me].1 += d.payload.len() as u64;
        state[me].2 |= t.fin;
        rsts += usize::from(t.rst);
        streams.entry(key).or_default()[me].extend_from_slice(&d.payload);
    }
    assert!(rsts > 0, "some sessions end with RST");
    assert_eq!(streams.len(), truth.len());
    let mut large = 0;
    for (key, [up, down]) in &streams {
        let t = truth[key];
        assert_eq!(&t.to_server, up, "{key:?}");
        assert_eq!(&t.to_client, down, "{key:?}");
        assert!(t.dropped_to_server.is_empty() && t.dropped_to_client.is_empty());
        large += usize::from(down.len() > 1460 || up.len() > 1460);
    }
    assert!(large > 0, "some payloads span several segments");
    assert!(truth.values().filter(|t| !t.complete).count() <= MAX_LIVE_SESSIONS);
}

/// Counts of impairment events seen in a capture, classified independently
/// of the generator from the offsets of the captured segments.
#[derive(Debug, Default)]
struct Seen {
    segments: usize,
    retransmitted: usize,
    overlapping: usize,
    reordered: usize,
    dropped: usize,
}

fn classify(c: &SynthConfig) -> Seen {
    let (bytes, truth) = generate_with_truth(c).unwrap();
    let truth = truth_map(&truth);
    let flows = flow_views(&bytes);
    let mut seen = Seen::default();
    for (key, view) in &flows {
        let t = truth[key];
        for (i, dir) in view.dirs.iter().enumerate() {
            let (stream, dropped) = match i {
                0 => (&t.to_server, &t.dropped_to_server),
                _ => (&t.to_client, &t.dropped_to_client),
            };
            // Every captured byte is the truth's byte at that offset.
            for (&off, &b) in &dir.captured {
                if off < stream.len() as u64 {
                    assert_eq!(stream[off as usize], b, "{key:?} offset {off}");
                }
            }
            // The bytes the capture lacks are exactly the dropped ranges.
            let mut holes: Vec<std::ops::Range<u64>> = Vec::new();
            for off in 0..stream.len() as u64 {
                if dir.captured.contains_key(&off) {
                    continue;
                }
                match holes.last_mut() {
                    Some(h) if h.end == off => h.end += 1,
                    _ => holes.push(off..off + 1),
                }
            }
            assert_eq!(&holes, dropped, "{key:?}");
            seen.dropped += dropped.len();
            let mut covered: HashSet<u64> = HashSet::new();
            let mut earlier: HashSet<(u64, usize)> = HashSet::new();
            let mut max_end = 0;
            for &(off, len) in &dir.segments {
                let end = off + len as u64;
                if !earlier.insert((off, len)) {
                    seen.retransmitted += 1;
                } else if (off..end).any(|o| covered.contains(&o)) {
                    seen.overlapping += 1;
                } else {
                    seen.segments += 1;
                    if off < max_end {
                        seen.reordered += 1;
                    }
                }
                covered.extend(off..end);
                max_end = max_end.max(end);
            }
        }
    }
    seen
}

fn impaired(imp: Impairments) -> SynthConfig {
    SynthConfig {
        impair: imp,
        ..cfg(33, 24, 8_000)
    }
}

fn rate(events: usize, segments: usize) -> f64 {
    events as f64 / segments.max(1) as f64
}

#[test]
fn retransmissions_occur_at_the_requested_rate() {
    let s = classify(&impaired(Impairments {
        retransmit_permille: 100,
        ..Impairments::NONE
    }));
    assert!(s.segments > 1_000, "{s:?}");
    let r = rate(s.retransmitted, s.segments);
    assert!((0.07..0.13).contains(&r), "{r} {s:?}");
    assert_eq!((s.overlapping, s.reordered, s.dropped), (0, 0, 0), "{s:?}");
}

#[test]
fn drops_occur_at_the_requested_rate_and_match_the_truth() {
    let s = classify(&impaired(Impairments {
        drop_permille: 100,
        ..Impairments::NONE
    }));
    let r = rate(s.dropped, s.segments + s.dropped);
    assert!((0.06..0.13).contains(&r), "{r} {s:?}");
    assert_eq!(
        (s.retransmitted, s.overlapping, s.reordered),
        (0, 0, 0),
        "{s:?}"
    );
}

#[test]
fn overlaps_occur_and_repeat_the_same_bytes() {
    let s = classify(&impaired(Impairments {
        overlap_permille: 100,
        ..Impairments::NONE
    }));
    // The first segment of each direction has nothing to overlap.
    let r = rate(s.overlapping, s.segments);
    assert!((0.03..0.13).contains(&r), "{r} {s:?}");
    assert_eq!(
        (s.retransmitted, s.reordered, s.dropped),
        (0, 0, 0),
        "{s:?}"
    );
}

#[test]
fn reorders_occur_at_roughly_the_requested_rate() {
    let s = classify(&impaired(Impairments {
        reorder_permille: 100,
        ..Impairments::NONE
    }));
    // The last segment of each direction has no later one to swap with.
    let r = rate(s.reordered, s.segments);
    assert!((0.03..0.13).contains(&r), "{r} {s:?}");
    assert_eq!(
        (s.retransmitted, s.overlapping, s.dropped),
        (0, 0, 0),
        "{s:?}"
    );
}

#[test]
fn all_impairments_together_keep_the_bytes_consistent() {
    let s = classify(&impaired(Impairments {
        reorder_permille: 60,
        retransmit_permille: 60,
        overlap_permille: 60,
        drop_permille: 60,
    }));
    assert!(
        s.retransmitted > 0 && s.overlapping > 0 && s.reordered > 0 && s.dropped > 0,
        "{s:?}"
    );
}

#[test]
fn distinct_flows_have_distinct_five_tuples() {
    for (devices, packets) in [(3, 10_000), (1, 66_000)] {
        let c = SynthConfig {
            mode: Mode::DistinctFlows,
            ..cfg(9, devices, packets)
        };
        let (bytes, report) = pcap(&c);
        let mut tuples = HashSet::new();
        let mut hosts = HashSet::new();
        for r in records(&bytes) {
            let d = decode(&r);
            if let Some(t) = &d.tcp {
                assert!(t.syn && !t.has_ack && d.payload.is_empty());
            } else {
                assert_eq!(d.dst.port(), 5683);
                assert_eq!(d.payload[0] >> 6, 1, "CoAP version 1");
            }
            hosts.insert(d.src.ip());
            assert!(
                tuples.insert((d.src, d.dst, d.tcp.is_some())),
                "repeated tuple"
            );
        }
        assert_eq!(tuples.len() as u64, packets);
        assert_eq!(hosts.len(), devices as usize);
        assert_eq!(report.flows_tcp + report.flows_udp, packets);
    }
}

/// Walk an MQTT byte stream packet by packet (OASIS MQTT 3.1.1 §2.2),
/// returning the control packet types.
fn mqtt_types(stream: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = stream;
    while let Some(&first) = rest.first() {
        let mut len = 0usize;
        let mut shift = 0;
        let mut i = 1;
        loop {
            let b = rest[i];
            len |= usize::from(b & 0x7F) << shift;
            shift += 7;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            assert!(i <= 4, "Remaining Length longer than 4 bytes");
        }
        types.push(first >> 4);
        rest = &rest[i + len..];
    }
    types
}

#[test]
fn application_payloads_follow_their_specs() {
    let c = cfg(4, 40, 12_000);
    let (bytes, truth) = generate_with_truth(&c).unwrap();
    let mut seen_ports = HashSet::new();
    for t in truth.iter().filter(|t| t.complete) {
        seen_ports.insert(t.server.port());
        match t.server.port() {
            1883 => {
                // CONNECT: type 1, flags 0 (§3.1.1), protocol name "MQTT", level 4.
                assert_eq!(t.to_server[0], 0x10);
                let name_at = t
                    .to_server
                    .iter()
                    .skip(1)
                    .position(|b| b & 0x80 == 0)
                    .unwrap()
                    + 2;
                assert_eq!(&t.to_server[name_at..name_at + 7], b"\x00\x04MQTT\x04");
                // CONNACK: 0x20, remaining length 2 (§3.2.1).
                assert_eq!(&t.to_client[..2], &[0x20, 0x02]);
                let up = mqtt_types(&t.to_server);
                let down = mqtt_types(&t.to_client);
                assert!(up.iter().all(|ty| [1, 3, 8, 12, 14].contains(ty)), "{up:?}");
                assert!(
                    down.iter().all(|ty| [2, 3, 4, 9, 13].contains(ty)),
                    "{down:?}"
                );
                // Each QoS 1 PUBLISH from the device gets one PUBACK.
                let qos1 = {
                    let mut n = 0;
                    let mut rest = &t.to_server[..];
                    while let Some(&first) = rest.first() {
                        let (mut len, mut shift, mut i) = (0usize, 0, 1);
                        loop {
                            let b = rest[i];
                            len |= usize::from(b & 0x7F) << shift;
                            shift += 7;
                            i += 1;
                            if b & 0x80 == 0 {
                                break;
                            }
                        }
                        n += usize::from(first >> 4 == 3 && (first >> 1) & 3 == 1);
                        rest = &rest[i + len..];
                    }
                    n
                };
                assert_eq!(qos1, down.iter().filter(|&&ty| ty == 4).count());
            }
            80 | 8080 => {
                assert!(t.to_server.starts_with(b"GET ") || t.to_server.starts_with(b"POST "));
                assert!(t.to_client.starts_with(b"HTTP/1.1 "));
                let head = String::from_utf8_lossy(&t.to_server);
                assert!(head.contains("\r\nHost: 10.0.0.3") && head.contains("\r\nUser-Agent: "));
            }
            23 => {
                // The telnet device opens with IAC DO TERMINAL-TYPE (RFC 854, RFC 1091).
                assert_eq!(&t.to_client[..3], &[255, 253, 24]);
                assert!(t.to_client.windows(7).any(|w| w == b"login: "));
            }
            other => panic!("unexpected TCP server port {other}"),
        }
    }
    for p in [1883, 80, 23] {
        assert!(seen_ports.contains(&p), "no complete session on port {p}");
    }

    // CoAP datagrams (RFC 7252 §3): version 1, TKL <= 8, well-formed options.
    let mut coap = 0;
    for r in records(&bytes) {
        let d = decode(&r);
        if d.tcp.is_some() {
            continue;
        }
        coap += 1;
        let m = &d.payload;
        assert_eq!(m[0] >> 6, 1);
        let ty = (m[0] >> 4) & 3;
        let tkl = usize::from(m[0] & 0x0F);
        assert!(tkl <= 8);
        let code = m[1];
        let to_server = d.dst.port() == 5683;
        match (to_server, ty) {
            (true, 0) => assert!(code == 0x01 || code == 0x03, "request {code:#x}"),
            (true, 3) => assert_eq!((code, m.len()), (0, 4), "empty Reset"),
            (false, 2) => assert!(code >> 5 == 2 || code >> 5 == 4, "response {code:#x}"),
            (false, 1) => assert_eq!(code, 0x45, "notification is 2.05"),
            other => panic!("unexpected type/direction {other:?}"),
        }
        let mut i = 4 + tkl;
        let mut number = 0u32;
        while i < m.len() {
            if m[i] == 0xFF {
                assert!(i + 1 < m.len(), "payload marker needs a payload");
                break;
            }
            let (delta, len) = (u32::from(m[i] >> 4), usize::from(m[i] & 0x0F));
            assert!(delta < 15 && len < 15);
            i += 1;
            let delta = match delta {
                13 => {
                    i += 1;
                    u32::from(m[i - 1]) + 13
                }
                14 => {
                    i += 2;
                    u32::from(u16::from_be_bytes([m[i - 2], m[i - 1]])) + 269
                }
                d => d,
            };
            number += delta;
            assert!([6, 11, 12].contains(&number), "option {number}");
            i += len;
        }
        assert!(i <= m.len());
    }
    assert!(coap > 0);
}

#[test]
fn memory_stays_bounded_by_the_live_sessions() {
    let c = SynthConfig {
        packets: 60_000,
        ..cfg(2, 500, 0)
    };
    let mut g = Generator::new(&c);
    assert_eq!(g.live_sessions(), MAX_LIVE_SESSIONS);
    let mut peak = 0;
    while g.next_frame().unwrap().is_some() {
        peak = peak.max(g.buffered_bytes());
    }
    // Largest session: three 12 KiB HTTP bodies or six 8 KiB MQTT snapshots,
    // plus its packet script; 160 KiB per slot is a generous ceiling.
    assert!(peak <= MAX_LIVE_SESSIONS * 160 * 1024, "{peak}");
    assert!(g.take_truth().is_empty(), "no truth kept unless asked");
}

#[test]
fn device_count_is_clamped_and_addresses_stay_on_the_segment() {
    let (bytes, _) = pcap(&cfg(1, 0, 300));
    let clients: HashSet<_> = records(&bytes)
        .iter()
        .map(|r| {
            let d = decode(r);
            let (key, _) = flow_key(&d);
            key.0.ip()
        })
        .collect();
    assert_eq!(clients.len(), 1);
    assert!(clients.contains(&std::net::IpAddr::from([10, 0, 1, 1])));
}
