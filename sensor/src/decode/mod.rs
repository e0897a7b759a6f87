//! Link, network and transport decoding into a borrowed packet view.
//!
//! The link layer is walked by [`link`]; IPv4/IPv6 (with extension headers) and
//! TCP/UDP are sliced with etherparse's lax slicers, so a frame cut by the snap
//! length still yields what was captured. Fragmented datagrams go through a
//! bounded [`defrag::Defragmenter`]. Every frame that is not decoded is counted
//! by reason in [`DecodeStats`]; nothing here panics on input.

pub mod arp;
pub mod defrag;
pub mod error;
pub mod link;

use std::net::IpAddr;

use etherparse::{IpNumber, Ipv6ExtensionSlice, LaxIpSlice, TcpSlice, UdpSlice};

use crate::capture::{Frame, Timestamp};
use defrag::{DefragLimits, Defragmenter, Fragment};
pub use error::DecodeError;
use link::Network;
pub use link::NonIpKind;

/// TCP flag bits (RFC 9293 §3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A TCP segment as seen on the wire.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// Captured payload bytes.
    pub payload: &'a [u8],
    /// Payload length according to the IP header; larger than `payload.len()`
    /// when the snap length cut the frame.
    pub payload_wire_len: u32,
}

/// Transport layer of a decoded packet.
#[derive(Clone, Copy, Debug)]
pub enum Transport<'a> {
    Tcp(TcpSegment<'a>),
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    Icmp {
        v6: bool,
        icmp_type: u8,
        code: u8,
    },
    /// Another IP protocol, by number.
    Other {
        protocol: u8,
    },
}

impl Transport<'_> {
    /// IANA protocol number.
    pub fn protocol(&self) -> u8 {
        match self {
            Transport::Tcp(_) => 6,
            Transport::Udp { .. } => 17,
            Transport::Icmp { v6: false, .. } => 1,
            Transport::Icmp { v6: true, .. } => 58,
            Transport::Other { protocol } => *protocol,
        }
    }

    /// Source and destination ports (zero for port-less protocols).
    pub fn ports(&self) -> (u16, u16) {
        match self {
            Transport::Tcp(t) => (t.src_port, t.dst_port),
            Transport::Udp {
                src_port, dst_port, ..
            } => (*src_port, *dst_port),
            _ => (0, 0),
        }
    }
}

/// A decoded IP packet, borrowed from the frame (or from the reassembler's
/// buffer for a reassembled datagram).
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    /// Frame length on the wire.
    pub wire_len: u32,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Outer and inner VLAN ids, 0 when absent.
    pub vlan: [u16; 2],
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport<'a>,
    /// True when this packet was rebuilt from IP fragments.
    pub reassembled: bool,
}

/// A valid frame that does not carry IP: its kind, addresses and length,
/// and for ARP what its sender says of itself.
#[derive(Clone, Copy, Debug)]
pub struct NonIp {
    pub kind: NonIpKind,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Frame length on the wire.
    pub wire_len: u32,
    pub arp: Option<arp::ArpSender>,
}

/// A frame counted by its addresses alone, where no flow counts it for its
/// devices: a frame without IP, an IP fragment held for reassembly, a frame
/// whose IP or transport header does not decode, a packet whose MAC
/// addresses are not those of its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameNote {
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Frame length on the wire.
    pub wire_len: u32,
    /// Source and destination address of an IP frame.
    pub ips: Option<(IpAddr, IpAddr)>,
    /// What an ARP frame says of its sender.
    pub arp: Option<arp::ArpSender>,
}

impl FrameNote {
    pub fn of_packet(p: &Packet<'_>) -> Self {
        FrameNote {
            src_mac: p.src_mac,
            dst_mac: p.dst_mac,
            wire_len: p.wire_len,
            ips: Some((p.src, p.dst)),
            arp: None,
        }
    }
}

impl From<&NonIp> for FrameNote {
    fn from(f: &NonIp) -> Self {
        FrameNote {
            src_mac: f.src_mac,
            dst_mac: f.dst_mac,
            wire_len: f.wire_len,
            ips: None,
            arp: f.arp,
        }
    }
}

/// What became of one frame.
#[derive(Debug)]
pub enum Decoded<'a> {
    Packet(Packet<'a>),
    /// A valid frame that does not carry IP (ARP, LLDP, 802.11 management...).
    NotIp(NonIp),
    /// An IP fragment held until its datagram is complete: the frame's
    /// addresses and length (its bytes count with the whole datagram's
    /// protocol only once the last fragment arrives).
    FragmentHeld(FrameNote),
    /// A frame that does not decode, and its addresses when its link header
    /// decoded.
    Error(DecodeError, Option<FrameNote>),
}

/// Decoder counters, all monotonic.
#[derive(Clone, Debug, Default)]
pub struct DecodeStats {
    pub frames: u64,
    pub ip_packets: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    /// Frames whose capture was shorter than the frame on the wire.
    pub snap_truncated: u64,
    errors: [u64; DecodeError::ALL.len()],
    non_ip: [u64; NonIpKind::ALL.len()],
}

impl DecodeStats {
    pub fn errors(&self) -> impl Iterator<Item = (DecodeError, u64)> + '_ {
        DecodeError::ALL
            .iter()
            .map(|e| (*e, self.errors[e.index()]))
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn non_ip(&self) -> impl Iterator<Item = (NonIpKind, u64)> + '_ {
        NonIpKind::ALL
            .iter()
            .map(|k| (*k, self.non_ip[*k as usize]))
    }
}

/// Frame decoder: holds the fragment reassembler and the counters.
pub struct Decoder {
    defrag: Defragmenter,
    pub stats: DecodeStats,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DefragLimits::default())
    }
}

impl Decoder {
    pub fn new(limits: DefragLimits) -> Self {
        Decoder {
            defrag: Defragmenter::new(limits),
            stats: DecodeStats::default(),
        }
    }

    pub fn defrag_stats(&self) -> &defrag::DefragStats {
        &self.defrag.stats
    }

    /// Decode one frame. Counts the outcome.
    pub fn decode<'a>(&'a mut self, frame: &Frame<'a>) -> Decoded<'a> {
        self.stats.frames += 1;
        if (frame.data.len() as u64) < u64::from(frame.orig_len) {
            self.stats.snap_truncated += 1;
        }
        let outcome = match link::walk(frame.link, frame.data) {
            Err(e) => Decoded::Error(e, None),
            Ok(l) => match l.network {
                Network::NonIp(kind) => Decoded::NotIp(NonIp {
                    kind,
                    src_mac: l.src_mac,
                    dst_mac: l.dst_mac,
                    wire_len: frame.orig_len,
                    arp: (kind == NonIpKind::Arp)
                        .then(|| arp::sender(l.payload))
                        .flatten(),
                }),
                Network::Ipv4 | Network::Ipv6 => decode_ip(&mut self.defrag, frame, &l),
            },
        };
        match &outcome {
            Decoded::Packet(p) => {
                self.stats.ip_packets += 1;
                if p.src.is_ipv4() {
                    self.stats.ipv4 += 1;
                } else {
                    self.stats.ipv6 += 1;
                }
            }
            Decoded::Error(e, _) => self.stats.errors[e.index()] += 1,
            Decoded::NotIp(n) => self.stats.non_ip[n.kind as usize] += 1,
            Decoded::FragmentHeld(_) => {}
        }
        outcome
    }
}

fn decode_ip<'a>(
    defrag: &'a mut Defragmenter,
    frame: &Frame<'a>,
    l: &link::Link<'a>,
) -> Decoded<'a> {
    let (ip, ext_err) = match LaxIpSlice::from_slice(l.payload) {
        Ok(v) => v,
        Err(e) => {
            let frame = FrameNote {
                src_mac: l.src_mac,
                dst_mac: l.dst_mac,
                wire_len: frame.orig_len,
                ips: None,
                arp: None,
            };
            return Decoded::Error(ip_error(&e), Some(frame));
        }
    };
    let ipv6_ext_error = ext_err.is_some();
    let src = ip.source_addr();
    let dst = ip.destination_addr();
    let payload = ip.payload();
    let protocol = payload.ip_number;
    let base = Packet {
        ts: frame.ts,
        wire_len: frame.orig_len,
        src_mac: l.src_mac,
        dst_mac: l.dst_mac,
        vlan: l.vlan,
        src,
        dst,
        transport: Transport::Other {
            protocol: protocol.0,
        },
        reassembled: false,
    };
    if payload.fragmented {
        let Some(fragment) = fragment_of(&ip, l.vlan, payload.payload) else {
            return Decoded::Error(DecodeError::IpMalformed, Some(FrameNote::of_packet(&base)));
        };
        let ts = frame.ts;
        return match defrag.add(ts, fragment) {
            None => Decoded::FragmentHeld(FrameNote::of_packet(&base)),
            Some(whole) => {
                let whole_len = whole.len() as u32;
                match transport(protocol, whole, whole_len) {
                    Ok(t) => Decoded::Packet(Packet {
                        transport: t,
                        reassembled: true,
                        ..base
                    }),
                    Err(e) => Decoded::Error(e, Some(FrameNote::of_packet(&base))),
                }
            }
        };
    }
    if ipv6_ext_error && payload.payload.is_empty() {
        return Decoded::Error(
            DecodeError::Ipv6ExtMalformed,
            Some(FrameNote::of_packet(&base)),
        );
    }
    // When the snap length cut the packet, the headers still say how much the
    // wire carried; reassembly needs that to mark the missing bytes as a gap.
    let wire_len = if payload.incomplete {
        wire_payload_len(&ip)
    } else {
        payload.payload.len() as u32
    };
    match transport(protocol, payload.payload, wire_len) {
        Ok(t) => Decoded::Packet(Packet {
            transport: t,
            ..base
        }),
        Err(e) => Decoded::Error(e, Some(FrameNote::of_packet(&base))),
    }
}

/// Length of the IP payload according to the headers (not the capture).
fn wire_payload_len(ip: &LaxIpSlice<'_>) -> u32 {
    match ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            u32::from(h.total_len()).saturating_sub(u32::from(h.ihl()) * 4)
        }
        LaxIpSlice::Ipv6(v6) => {
            let ext_len = v6.extensions().slice().len() as u32;
            u32::from(v6.header().payload_length()).saturating_sub(ext_len)
        }
    }
}

fn ip_error(e: &etherparse::err::ip::LaxHeaderSliceError) -> DecodeError {
    use etherparse::err::ip::{HeaderError, LaxHeaderSliceError};
    match e {
        LaxHeaderSliceError::Len(_) => DecodeError::IpTruncated,
        LaxHeaderSliceError::Content(HeaderError::UnsupportedIpVersion { .. }) => {
            DecodeError::IpVersion
        }
        LaxHeaderSliceError::Content(_) => DecodeError::IpMalformed,
    }
}

fn fragment_of<'a>(ip: &LaxIpSlice<'_>, vlan: [u16; 2], payload: &'a [u8]) -> Option<Fragment<'a>> {
    match ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            Some(Fragment {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                id: u32::from(h.identification()),
                protocol: h.protocol().0,
                vlan,
                offset: usize::from(h.fragments_offset().value()) * 8,
                more: h.more_fragments(),
                payload,
            })
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            v6.extensions()
                .clone()
                .into_iter()
                .find_map(|ext| match ext {
                    Ipv6ExtensionSlice::Fragment(f) => Some(Fragment {
                        src: IpAddr::V6(h.source_addr()),
                        dst: IpAddr::V6(h.destination_addr()),
                        id: f.identification(),
                        protocol: v6.payload().ip_number.0,
                        vlan,
                        offset: usize::from(f.fragment_offset().value()) * 8,
                        more: f.more_fragments(),
                        payload,
                    }),
                    _ => None,
                })
        }
    }
}

/// ICMP type and code are the first two bytes of both ICMPv4 and ICMPv6.
const ICMP_MIN_LEN: usize = 4;

fn transport(protocol: IpNumber, data: &[u8], wire_len: u32) -> Result<Transport<'_>, DecodeError> {
    match protocol {
        IpNumber::TCP => {
            let tcp = TcpSlice::from_slice(data).map_err(|_| DecodeError::TcpMalformed)?;
            let header_len = tcp.header_slice().len() as u32;
            let mut flags = 0u8;
            for (set, bit) in [
                (tcp.fin(), TcpFlags::FIN),
                (tcp.syn(), TcpFlags::SYN),
                (tcp.rst(), TcpFlags::RST),
                (tcp.psh(), TcpFlags::PSH),
                (tcp.ack(), TcpFlags::ACK),
            ] {
                if set {
                    flags |= bit;
                }
            }
            let payload = tcp.payload();
            Ok(Transport::Tcp(TcpSegment {
                src_port: tcp.source_port(),
                dst_port: tcp.destination_port(),
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                flags: TcpFlags(flags),
                window: tcp.window_size(),
                payload,
                payload_wire_len: wire_len
                    .saturating_sub(header_len)
                    .max(payload.len() as u32),
            }))
        }
        IpNumber::UDP => {
            let udp = UdpSlice::from_slice_lax(data).map_err(|_| DecodeError::UdpTruncated)?;
            Ok(Transport::Udp {
                src_port: udp.source_port(),
                dst_port: udp.destination_port(),
                payload: udp.payload(),
            })
        }
        IpNumber::ICMP | IpNumber::IPV6_ICMP => {
            if data.len() < ICMP_MIN_LEN {
                return Err(DecodeError::IcmpTruncated);
            }
            Ok(Transport::Icmp {
                v6: protocol == IpNumber::IPV6_ICMP,
                icmp_type: data[0],
                code: data[1],
            })
        }
        other => Ok(Transport::Other { protocol: other.0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use etherparse::PacketBuilder;

    fn frame(data: &[u8]) -> Frame<'_> {
        Frame {
            ts: Timestamp(0),
            link: LinkType::Ethernet,
            data,
            orig_len: data.len() as u32,
        }
    }

    #[test]
    fn decodes_ethernet_ipv4_tcp() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 1883, 1000, 512)
            .syn();
        let mut buf = Vec::new();
        b.write(&mut buf, b"hello").unwrap();
        let mut d = Decoder::default();
        let Decoded::Packet(p) = d.decode(&frame(&buf)) else {
            panic!("not decoded")
        };
        assert_eq!(p.src.to_string(), "10.0.0.1");
        assert_eq!(p.src_mac, Some([1; 6]));
        let Transport::Tcp(t) = p.transport else {
            panic!("not tcp")
        };
        assert_eq!((t.src_port, t.dst_port, t.seq), (40000, 1883, 1000));
        assert!(t.flags.syn() && !t.flags.ack());
        assert_eq!(t.payload, b"hello");
        assert_eq!(t.payload_wire_len, 5);
    }

    #[test]
    fn snap_cut_tcp_keeps_wire_payload_length() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4);
        let mut buf = Vec::new();
        b.write(&mut buf, &[7u8; 100]).unwrap();
        let cut = &buf[..buf.len() - 60];
        let f = Frame {
            orig_len: buf.len() as u32,
            ..frame(cut)
        };
        let mut d = Decoder::default();
        let Decoded::Packet(p) = d.decode(&f) else {
            panic!("not decoded")
        };
        let Transport::Tcp(t) = p.transport else {
            panic!("not tcp")
        };
        assert_eq!(t.payload.len(), 40);
        assert_eq!(t.payload_wire_len, 100);
        assert_eq!(d.stats.snap_truncated, 1);
    }

    #[test]
    fn ipv4_fragments_are_reassembled_into_udp() {
        // One UDP datagram (8-byte header + 24 bytes) split in two IPv4 fragments by hand.
        let mut udp = vec![0x13, 0x88, 0x16, 0x33, 0x00, 32, 0x00, 0x00];
        udp.extend_from_slice(b"0123456789abcdefghijklmn");
        let ip_frag = |offset_units: u16, more: bool, body: &[u8]| {
            let mut h = etherparse::Ipv4Header::new(
                body.len() as u16,
                64,
                IpNumber::UDP,
                [10, 0, 0, 1],
                [10, 0, 0, 2],
            )
            .unwrap();
            h.identification = 99;
            h.more_fragments = more;
            h.fragment_offset = etherparse::IpFragOffset::try_new(offset_units).unwrap();
            h.header_checksum = h.calc_header_checksum();
            let mut f = vec![2u8; 6];
            f.extend_from_slice(&[1u8; 6]);
            f.extend_from_slice(&[0x08, 0x00]);
            h.write(&mut f).unwrap();
            f.extend_from_slice(body);
            f
        };
        let first = ip_frag(0, true, &udp[..16]);
        let second = ip_frag(2, false, &udp[16..]);
        let mut d = Decoder::default();
        let Decoded::FragmentHeld(held) = d.decode(&frame(&first)) else {
            panic!("first fragment not held")
        };
        // The held fragment is still a frame of its sender and receiver.
        assert_eq!(held.src_mac, Some([1; 6]));
        assert_eq!(held.dst_mac, Some([2; 6]));
        assert_eq!(held.wire_len, first.len() as u32);
        assert_eq!(held.ips, Some(([10, 0, 0, 1].into(), [10, 0, 0, 2].into())));
        let Decoded::Packet(p) = d.decode(&frame(&second)) else {
            panic!("not reassembled")
        };
        assert!(p.reassembled);
        let Transport::Udp {
            src_port, payload, ..
        } = p.transport
        else {
            panic!("not udp")
        };
        assert_eq!(src_port, 5000);
        assert_eq!(payload, b"0123456789abcdefghijklmn");
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        let mut d = Decoder::default();
        let mut junk = vec![0u8; 12];
        junk.extend_from_slice(&[0x08, 0x00, 0x47, 0xFF]);
        // The link header decoded: the frame keeps its (here all-zero) addresses.
        let Decoded::Error(_, Some(note)) = d.decode(&frame(&junk)) else {
            panic!("not an error with addresses")
        };
        assert_eq!(
            (note.src_mac, note.dst_mac, note.ips),
            (Some([0; 6]), Some([0; 6]), None)
        );
        assert!(matches!(
            d.decode(&frame(&[1, 2, 3])),
            Decoded::Error(DecodeError::LinkTruncated, None)
        ));
        assert_eq!(d.stats.errors_total(), 2);
        // Every prefix of a valid frame decodes to something without panicking.
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2);
        let mut buf = Vec::new();
        b.write(&mut buf, b"payload").unwrap();
        for n in 0..buf.len() {
            let _ = d.decode(&frame(&buf[..n]));
        }
        assert_eq!(d.stats.frames, 2 + buf.len() as u64);
    }
}
