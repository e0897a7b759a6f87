//! Feature windows through the whole packet path (decode, flows, the
//! hand-off, the extractor) on frames built here; every expected value is
//! counted by hand from the frames (see `features/FEATURES.md`).

use std::sync::{Arc, Mutex};

use etherparse::{IpFragOffset, IpNumber, Ipv4Header, PacketBuilder, PacketBuilderStep, TcpHeader};

use super::{Pipeline, PipelineConfig};
use crate::capture::{Frame, LinkType, Timestamp};
use crate::device::inventory::Device;
use crate::features::{Extractor, Feature, Window, WindowSink};

const CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// A router's shared (VRRP) MAC the client sends to, and its own MAC that
/// the answers come from.
const VIRTUAL: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x03];
const PHYSICAL: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];
const CLIENT_IP: [u8; 4] = [10, 0, 0, 1];
const SERVER_IP: [u8; 4] = [10, 0, 0, 2];

/// Collects the windows as they close.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Window>>>);

impl WindowSink for Collect {
    fn window(&mut self, w: &Window, _device: Option<&Device>) -> std::io::Result<()> {
        self.0.lock().expect("lock").push(w.clone());
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `frames` (time in milliseconds, bytes) through a pipeline with
/// 10-second windows; the windows of every device.
fn windows(frames: &[(i64, Vec<u8>)]) -> Vec<Window> {
    windows_of(frames, 100)
}

/// [`windows`] with at most `max_devices` devices kept.
fn windows_of(frames: &[(i64, Vec<u8>)], max_devices: usize) -> Vec<Window> {
    let mut p = Pipeline::new(PipelineConfig {
        app_thread: false,
        ..PipelineConfig::default()
    });
    p.profile_devices(Extractor::new(10, max_devices, Vec::new()));
    let out = Collect::default();
    p.add_window_sink(Box::new(out.clone()));
    for (ms, data) in frames {
        p.process(&Frame {
            ts: Timestamp(ms * 1_000_000),
            link: LinkType::Ethernet,
            data,
            orig_len: data.len() as u32,
        });
    }
    p.finish();
    out.0.lock().expect("lock").clone()
}

/// The sum of `f` over the windows of `mac`.
fn total(ws: &[Window], mac: [u8; 6], f: Feature) -> f64 {
    ws.iter()
        .filter(|w| w.device == mac)
        .map(|w| w.get(f))
        .sum()
}

fn write(b: PacketBuilderStep<TcpHeader>) -> Vec<u8> {
    let mut v = Vec::new();
    b.write(&mut v, &[]).expect("frame");
    v
}

/// A SYN retransmitted with the same initial sequence number (one
/// connection attempt) after each of the server's RSTs: Windows' connect()
/// tries three times. Seen in the corpus capture
/// telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap.
#[test]
fn a_connection_refused_by_several_rsts_counts_once() {
    let syn = || {
        write(
            PacketBuilder::ethernet2(CLIENT, SERVER)
                .ipv4(CLIENT_IP, SERVER_IP, 64)
                .tcp(49382, 139, 3287701173, 8192)
                .syn(),
        )
    };
    let rst = || {
        write(
            PacketBuilder::ethernet2(SERVER, CLIENT)
                .ipv4(SERVER_IP, CLIENT_IP, 64)
                .tcp(139, 49382, 0, 0)
                .rst()
                .ack(3287701174),
        )
    };
    let ws = windows(&[
        (100, syn()),
        (150, rst()),
        (2_100, syn()),
        (2_150, rst()),
        (4_100, syn()),
        (4_150, rst()),
    ]);
    assert_eq!(total(&ws, CLIENT, Feature::FlowsOut), 1.0);
    assert_eq!(total(&ws, CLIENT, Feature::TcpRefusedOut), 1.0);
    assert_eq!(total(&ws, SERVER, Feature::TcpRefusedIn), 1.0);
    assert_eq!(total(&ws, CLIENT, Feature::PacketsOut), 3.0);
    assert_eq!(total(&ws, SERVER, Feature::PacketsOut), 3.0);
}

/// A client talks to a server behind a router with a shared MAC: its
/// frames go to the shared MAC, the answers come from the router's own.
/// Every frame counts for the MAC addresses it carries, not for those of
/// its flow's first packet (seen in the corpus capture
/// http/http-head-500.pcap).
#[test]
fn frames_count_for_their_own_mac_addresses() {
    let request = |seq: u32| {
        write(
            PacketBuilder::ethernet2(CLIENT, VIRTUAL)
                .ipv4(CLIENT_IP, SERVER_IP, 64)
                .tcp(40000, 80, seq, 512)
                .ack(1),
        )
    };
    let answer = write(
        PacketBuilder::ethernet2(PHYSICAL, CLIENT)
            .ipv4(SERVER_IP, CLIENT_IP, 64)
            .tcp(80, 40000, 1, 512)
            .ack(2),
    );
    let (req, ans) = (request(1).len() as f64, answer.len() as f64);
    let ws = windows(&[(100, request(1)), (200, answer), (300, request(2))]);
    assert_eq!(total(&ws, CLIENT, Feature::PacketsOut), 2.0);
    assert_eq!(total(&ws, CLIENT, Feature::PacketsIn), 1.0);
    assert_eq!(total(&ws, CLIENT, Feature::BytesIn), ans);
    assert_eq!(total(&ws, PHYSICAL, Feature::PacketsOut), 1.0);
    assert_eq!(total(&ws, PHYSICAL, Feature::BytesOut), ans);
    assert_eq!(total(&ws, PHYSICAL, Feature::PacketsIn), 0.0);
    assert_eq!(total(&ws, PHYSICAL, Feature::Peers), 1.0);
    // The shared MAC only receives; the flow is the client's, to it.
    assert_eq!(total(&ws, VIRTUAL, Feature::PacketsIn), 2.0);
    assert_eq!(total(&ws, VIRTUAL, Feature::BytesIn), 2.0 * req);
    assert_eq!(total(&ws, VIRTUAL, Feature::PacketsOut), 0.0);
    assert_eq!(total(&ws, VIRTUAL, Feature::FlowsIn), 1.0);
    assert_eq!(total(&ws, CLIENT, Feature::FlowsOut), 1.0);
    assert_eq!(total(&ws, CLIENT, Feature::Peers), 1.0);
}

/// One UDP datagram (8-byte header and 24 bytes) in two IPv4 fragments
/// (RFC 791 §3.2): two frames on the wire, whose bytes all count, although
/// the flow sees one datagram (seen in the corpus capture
/// generic/ipv4-fragmented-http-request.pcap).
#[test]
fn held_ip_fragments_count_as_frames() {
    // Port 40000 to 5683, length 32, no checksum.
    let mut udp = vec![0x9c, 0x40, 0x16, 0x33, 0x00, 32, 0x00, 0x00];
    udp.extend_from_slice(b"0123456789abcdefghijklmn");
    let fragment = |offset_units: u16, more: bool, body: &[u8]| {
        let mut h = Ipv4Header::new(body.len() as u16, 64, IpNumber::UDP, CLIENT_IP, SERVER_IP)
            .expect("header");
        h.identification = 7;
        h.more_fragments = more;
        h.fragment_offset = IpFragOffset::try_new(offset_units).expect("offset");
        h.header_checksum = h.calc_header_checksum();
        let mut f = SERVER.to_vec();
        f.extend_from_slice(&CLIENT);
        f.extend_from_slice(&[0x08, 0x00]);
        h.write(&mut f).expect("header");
        f.extend_from_slice(body);
        f
    };
    let (first, second) = (
        fragment(0, true, &udp[..16]),
        fragment(2, false, &udp[16..]),
    );
    let bytes = (first.len() + second.len()) as f64;
    let ws = windows(&[(100, first), (101, second)]);
    assert_eq!(total(&ws, CLIENT, Feature::PacketsOut), 2.0);
    assert_eq!(total(&ws, CLIENT, Feature::BytesOut), bytes);
    assert_eq!(total(&ws, SERVER, Feature::PacketsIn), 2.0);
    assert_eq!(total(&ws, SERVER, Feature::BytesIn), bytes);
    assert_eq!(total(&ws, CLIENT, Feature::FlowsOut), 1.0);
    assert_eq!(total(&ws, CLIENT, Feature::Peers), 1.0);
}

/// A frame whose IPv4 header does not decode (a header length of 4 words,
/// below the minimum of 5, RFC 791 §3.1) is still a frame its sender sent:
/// counted, with no peer, as the decode error it also is.
#[test]
fn a_frame_whose_ip_header_does_not_decode_still_counts() {
    let mut f = SERVER.to_vec();
    f.extend_from_slice(&CLIENT);
    f.extend_from_slice(&[0x08, 0x00, 0x44]);
    f.resize(60, 0);
    let ws = windows(&[(100, f)]);
    assert_eq!(total(&ws, CLIENT, Feature::PacketsOut), 1.0);
    assert_eq!(total(&ws, CLIENT, Feature::BytesOut), 60.0);
    assert_eq!(total(&ws, SERVER, Feature::PacketsIn), 1.0);
    assert_eq!(total(&ws, CLIENT, Feature::Peers), 0.0);
}

/// With room for two devices, a third one takes the place of the least
/// recently seen (the client, whose server answered after it last sent):
/// the client's open window goes with it, and the newcomer starts a window
/// of its own, with none of the client's counts.
#[test]
fn a_device_evicted_at_the_cap_takes_its_window_along() {
    const THIRD: [u8; 6] = [0x02, 0, 0, 0, 0, 0x04];
    const THIRD_IP: [u8; 4] = [10, 0, 0, 4];
    let datagram = |(src, src_ip, sport): ([u8; 6], [u8; 4], u16),
                    (dst, dst_ip, dport): ([u8; 6], [u8; 4], u16)| {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(src, dst)
            .ipv4(src_ip, dst_ip, 64)
            .udp(sport, dport)
            .write(&mut v, b"ping")
            .expect("frame");
        v
    };
    let (client, server, third) = (
        (CLIENT, CLIENT_IP, 40000),
        (SERVER, SERVER_IP, 5683),
        (THIRD, THIRD_IP, 40001),
    );
    let ws = windows_of(
        &[
            (100, datagram(client, server)),
            (200, datagram(client, server)),
            (500, datagram(server, client)),
            (1_100, datagram(third, server)),
        ],
        2,
    );
    assert!(ws.iter().all(|w| w.device != CLIENT), "{ws:?}");
    assert_eq!(total(&ws, THIRD, Feature::PacketsOut), 1.0);
    assert_eq!(total(&ws, THIRD, Feature::PacketsIn), 0.0);
    assert_eq!(total(&ws, SERVER, Feature::PacketsIn), 3.0);
    assert_eq!(total(&ws, SERVER, Feature::PacketsOut), 1.0);
}
