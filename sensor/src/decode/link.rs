//! Link-layer headers up to the network protocol: Ethernet II with 802.1Q/802.1ad
//! tags and PPPoE sessions, Linux cooked capture v1 and v2, BSD loopback, raw IP and
//! 802.11 data frames behind radiotap.
//!
//! etherparse covers IP and above; these headers are small, and some of them (SLL2,
//! radiotap, PPPoE) it does not read, so they are walked here with one bounds check
//! per header.

use super::error::DecodeError;
use crate::capture::LinkType;

/// EtherType values this module dispatches on (IEEE registry).
pub mod ether_type {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86DD;
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    pub const PPPOE_SESSION: u16 = 0x8864;
    pub const QINQ: u16 = 0x88A8;
    pub const LLDP: u16 = 0x88CC;
    pub const VLAN_9100: u16 = 0x9100;
}

/// At most this many stacked VLAN tags are walked; deeper stacks are a decode error.
pub const MAX_VLAN_TAGS: usize = 4;

const ETHERNET_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const PPPOE_HEADER_LEN: usize = 6;
const PPP_PROTOCOL_LEN: usize = 2;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// Linux cooked capture v1: packet type, ARPHRD, address length, 8 address bytes, protocol.
const SLL_HEADER_LEN: usize = 16;
const SLL_PROTOCOL: usize = 14;
/// Linux cooked capture v2: protocol, reserved, ifindex, ARPHRD, packet type, address length, 8 address bytes.
const SLL2_HEADER_LEN: usize = 20;
const SLL2_PROTOCOL: usize = 0;
const NULL_HEADER_LEN: usize = 4;
/// BSD address family values for IPv4 and the several IPv6 values BSDs use.
const AF_INET: u32 = 2;
const AF_INET6: [u32; 3] = [24, 28, 30];
const RADIOTAP_MIN_LEN: usize = 8;
const IEEE80211_DATA_HEADER_LEN: usize = 24;
const LLC_SNAP: [u8; 6] = [0xAA, 0xAA, 0x03, 0x00, 0x00, 0x00];

/// What follows the link layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Ipv4,
    Ipv6,
    /// Not IP: counted by kind, not decoded further.
    NonIp(NonIpKind),
}

/// Frames that are legitimately not IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NonIpKind {
    Arp,
    Lldp,
    PppoeDiscovery,
    /// PPP inside PPPoE carrying something else than IP (LCP, IPCP, ...).
    PppControl,
    /// 802.11 management/control frames, or data frames without an LLC/SNAP IP payload.
    Ieee80211NonData,
    /// Any other EtherType or address family.
    Other,
}

impl NonIpKind {
    pub const ALL: [NonIpKind; 6] = [
        NonIpKind::Arp,
        NonIpKind::Lldp,
        NonIpKind::PppoeDiscovery,
        NonIpKind::PppControl,
        NonIpKind::Ieee80211NonData,
        NonIpKind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NonIpKind::Arp => "arp",
            NonIpKind::Lldp => "lldp",
            NonIpKind::PppoeDiscovery => "pppoe_discovery",
            NonIpKind::PppControl => "ppp_control",
            NonIpKind::Ieee80211NonData => "ieee80211_non_data",
            NonIpKind::Other => "other",
        }
    }
}

/// The link layer of one frame, walked.
#[derive(Clone, Copy, Debug)]
pub struct Link<'a> {
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Outer VLAN id and inner VLAN id (0 when absent).
    pub vlan: [u16; 2],
    pub network: Network,
    /// Bytes from the network header on.
    pub payload: &'a [u8],
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn mac(data: &[u8], at: usize) -> Option<[u8; 6]> {
    data.get(at..at + 6).and_then(|b| b.try_into().ok())
}

/// Walk the link-layer header of `data` captured with link type `link`.
pub fn walk(link: LinkType, data: &[u8]) -> Result<Link<'_>, DecodeError> {
    match link {
        LinkType::Ethernet => ethernet(data),
        LinkType::Raw => raw_ip(data),
        LinkType::Ipv4 => Ok(bare(Network::Ipv4, data)),
        LinkType::Ipv6 => Ok(bare(Network::Ipv6, data)),
        LinkType::Null => null_loopback(data, false),
        LinkType::Loop => null_loopback(data, true),
        LinkType::LinuxSll => cooked(data, SLL_HEADER_LEN, SLL_PROTOCOL),
        LinkType::LinuxSll2 => cooked(data, SLL2_HEADER_LEN, SLL2_PROTOCOL),
        LinkType::Ieee80211Radiotap => radiotap(data),
        LinkType::Other(_) => Err(DecodeError::UnsupportedLinkType),
    }
}

fn bare(network: Network, payload: &[u8]) -> Link<'_> {
    Link {
        src_mac: None,
        dst_mac: None,
        vlan: [0, 0],
        network,
        payload,
    }
}

fn raw_ip(data: &[u8]) -> Result<Link<'_>, DecodeError> {
    match data.first().map(|b| b >> 4) {
        Some(4) => Ok(bare(Network::Ipv4, data)),
        Some(6) => Ok(bare(Network::Ipv6, data)),
        Some(_) => Err(DecodeError::IpVersion),
        None => Err(DecodeError::LinkTruncated),
    }
}

fn null_loopback(data: &[u8], network_order: bool) -> Result<Link<'_>, DecodeError> {
    let family: [u8; 4] = data
        .get(..NULL_HEADER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::LinkTruncated)?;
    // DLT_NULL stores the family in the capturing host's byte order, which the
    // file does not record: accept either order.
    let candidates = if network_order {
        [u32::from_be_bytes(family), u32::from_be_bytes(family)]
    } else {
        [u32::from_le_bytes(family), u32::from_be_bytes(family)]
    };
    let payload = &data[NULL_HEADER_LEN..];
    let network = if candidates.contains(&AF_INET) {
        Network::Ipv4
    } else if candidates.iter().any(|f| AF_INET6.contains(f)) {
        Network::Ipv6
    } else {
        // Some writers put an EtherType in the low half instead of a family.
        match be16(&family, 2) {
            Some(ether_type::IPV4) => Network::Ipv4,
            Some(ether_type::IPV6) => Network::Ipv6,
            _ => Network::NonIp(NonIpKind::Other),
        }
    };
    Ok(bare(network, payload))
}

fn cooked(data: &[u8], header_len: usize, protocol_at: usize) -> Result<Link<'_>, DecodeError> {
    if data.len() < header_len {
        return Err(DecodeError::LinkTruncated);
    }
    let protocol = be16(data, protocol_at).ok_or(DecodeError::LinkTruncated)?;
    let mut link = bare(Network::NonIp(NonIpKind::Other), &data[header_len..]);
    after_ether_type(&mut link, protocol, 0)?;
    Ok(link)
}

fn ethernet(data: &[u8]) -> Result<Link<'_>, DecodeError> {
    if data.len() < ETHERNET_HEADER_LEN {
        return Err(DecodeError::LinkTruncated);
    }
    let mut link = Link {
        dst_mac: mac(data, 0),
        src_mac: mac(data, 6),
        vlan: [0, 0],
        network: Network::NonIp(NonIpKind::Other),
        payload: &data[ETHERNET_HEADER_LEN..],
    };
    let ether_type = be16(data, 12).ok_or(DecodeError::LinkTruncated)?;
    after_ether_type(&mut link, ether_type, 0)?;
    Ok(link)
}

/// Dispatch on an EtherType, walking VLAN tags and PPPoE sessions.
fn after_ether_type<'a>(
    link: &mut Link<'a>,
    mut ether_type: u16,
    mut tags: usize,
) -> Result<(), DecodeError> {
    loop {
        match ether_type {
            ether_type::VLAN | ether_type::QINQ | ether_type::VLAN_9100 => {
                if tags == MAX_VLAN_TAGS {
                    return Err(DecodeError::VlanTooDeep);
                }
                let tci = be16(link.payload, 0).ok_or(DecodeError::LinkTruncated)?;
                ether_type = be16(link.payload, 2).ok_or(DecodeError::LinkTruncated)?;
                if tags < 2 {
                    link.vlan[tags] = tci & 0x0FFF;
                }
                tags += 1;
                link.payload = &link.payload[VLAN_TAG_LEN..];
            }
            ether_type::PPPOE_SESSION => {
                let protocol =
                    be16(link.payload, PPPOE_HEADER_LEN).ok_or(DecodeError::LinkTruncated)?;
                link.payload = &link.payload[PPPOE_HEADER_LEN + PPP_PROTOCOL_LEN..];
                link.network = match protocol {
                    PPP_IPV4 => Network::Ipv4,
                    PPP_IPV6 => Network::Ipv6,
                    _ => Network::NonIp(NonIpKind::PppControl),
                };
                return Ok(());
            }
            other => {
                link.network = match other {
                    ether_type::IPV4 => Network::Ipv4,
                    ether_type::IPV6 => Network::Ipv6,
                    ether_type::ARP => Network::NonIp(NonIpKind::Arp),
                    ether_type::LLDP => Network::NonIp(NonIpKind::Lldp),
                    ether_type::PPPOE_DISCOVERY => Network::NonIp(NonIpKind::PppoeDiscovery),
                    _ => Network::NonIp(NonIpKind::Other),
                };
                return Ok(());
            }
        }
    }
}

/// Radiotap header (its own length field, little endian) then an 802.11 frame.
/// Only unprotected data frames with an LLC/SNAP header carry IP we can read.
fn radiotap(data: &[u8]) -> Result<Link<'_>, DecodeError> {
    if data.len() < RADIOTAP_MIN_LEN {
        return Err(DecodeError::LinkTruncated);
    }
    let len = usize::from(u16::from_le_bytes([data[2], data[3]]));
    let frame = data.get(len..).ok_or(DecodeError::LinkTruncated)?;
    if frame.len() < IEEE80211_DATA_HEADER_LEN {
        return Err(DecodeError::LinkTruncated);
    }
    let fc0 = frame[0];
    let fc1 = frame[1];
    let frame_type = (fc0 >> 2) & 0b11;
    let subtype = fc0 >> 4;
    let protected = fc1 & 0x40 != 0;
    let non_data = bare(Network::NonIp(NonIpKind::Ieee80211NonData), &[]);
    // Type 2 is data; subtypes with bit 2 set carry no payload (Null, QoS Null).
    if frame_type != 2 || subtype & 0b0100 != 0 || protected {
        return Ok(non_data);
    }
    let to_ds = fc1 & 0x01 != 0;
    let from_ds = fc1 & 0x02 != 0;
    let mut header_len = IEEE80211_DATA_HEADER_LEN;
    if to_ds && from_ds {
        header_len += 6;
    }
    if subtype & 0b1000 != 0 {
        // QoS control, and the HT control field when the order bit is set.
        header_len += 2;
        if fc1 & 0x80 != 0 {
            header_len += 4;
        }
    }
    // Address fields (IEEE 802.11-2020 §9.3.2.1): destination and source depend on the DS bits.
    let (dst_at, src_at) = match (to_ds, from_ds) {
        (false, false) => (4, 10),
        (true, false) => (16, 10),
        (false, true) => (4, 16),
        (true, true) => (16, 24),
    };
    let body = frame.get(header_len..).ok_or(DecodeError::LinkTruncated)?;
    if body.get(..LLC_SNAP.len()) != Some(&LLC_SNAP[..]) {
        return Ok(non_data);
    }
    let ether_type = be16(body, LLC_SNAP.len()).ok_or(DecodeError::LinkTruncated)?;
    let mut link = Link {
        dst_mac: mac(frame, dst_at),
        src_mac: mac(frame, src_at),
        vlan: [0, 0],
        network: Network::NonIp(NonIpKind::Other),
        payload: &body[LLC_SNAP.len() + 2..],
    };
    after_ether_type(&mut link, ether_type, 0)?;
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ether_type: u16, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0xAA; 6];
        f.extend_from_slice(&[0xBB; 6]);
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn ethernet_ipv4_gives_macs_and_payload() {
        let f = eth(0x0800, &[0x45, 0, 0, 20]);
        let l = walk(LinkType::Ethernet, &f).unwrap();
        assert_eq!(l.network, Network::Ipv4);
        assert_eq!(l.dst_mac, Some([0xAA; 6]));
        assert_eq!(l.src_mac, Some([0xBB; 6]));
        assert_eq!(l.payload, &[0x45, 0, 0, 20]);
    }

    #[test]
    fn qinq_records_both_vlan_ids() {
        // 802.1ad outer tag 100, 802.1Q inner tag 200, then IPv6.
        let mut rest = vec![0x00, 100, 0x81, 0x00, 0x00, 200, 0x86, 0xDD];
        rest.push(0x60);
        let f = eth(0x88A8, &rest);
        let l = walk(LinkType::Ethernet, &f).unwrap();
        assert_eq!(l.vlan, [100, 200]);
        assert_eq!(l.network, Network::Ipv6);
        assert_eq!(l.payload, &[0x60]);
    }

    #[test]
    fn too_many_vlan_tags_is_an_error() {
        let mut rest = Vec::new();
        for _ in 0..=MAX_VLAN_TAGS {
            rest.extend_from_slice(&[0x00, 0x01, 0x81, 0x00]);
        }
        let f = eth(0x8100, &rest);
        assert_eq!(
            walk(LinkType::Ethernet, &f).unwrap_err(),
            DecodeError::VlanTooDeep
        );
    }

    #[test]
    fn pppoe_session_with_ppp_ipv4() {
        // RFC 2516 §4: ver/type 0x11, code 0, session id, length; then PPP protocol 0x0021.
        let f = eth(
            0x8864,
            &[0x11, 0x00, 0x12, 0x34, 0x00, 0x04, 0x00, 0x21, 0x45],
        );
        let l = walk(LinkType::Ethernet, &f).unwrap();
        assert_eq!(l.network, Network::Ipv4);
        assert_eq!(l.payload, &[0x45]);
    }

    #[test]
    fn truncated_headers_are_errors_not_panics() {
        for len in 0..14 {
            assert_eq!(
                walk(LinkType::Ethernet, &vec![0u8; len]).unwrap_err(),
                DecodeError::LinkTruncated
            );
        }
        assert!(walk(LinkType::LinuxSll2, &[0u8; 19]).is_err());
        assert!(walk(LinkType::LinuxSll, &[0u8; 15]).is_err());
        assert!(walk(LinkType::Null, &[2, 0, 0]).is_err());
        assert!(walk(LinkType::Ieee80211Radiotap, &[0, 0, 200, 0, 0, 0, 0, 0]).is_err());
        assert!(walk(LinkType::Ethernet, &eth(0x8100, &[0])).is_err());
    }

    #[test]
    fn sll2_protocol_is_first_field() {
        let mut f = vec![0x86, 0xDD];
        f.extend_from_slice(&[0u8; 18]);
        f.push(0x60);
        let l = walk(LinkType::LinuxSll2, &f).unwrap();
        assert_eq!(l.network, Network::Ipv6);
        assert_eq!(l.payload, &[0x60]);
    }

    #[test]
    fn null_loopback_accepts_either_byte_order() {
        let le = [2, 0, 0, 0, 0x45];
        let be = [0, 0, 0, 2, 0x45];
        let v6 = [30, 0, 0, 0, 0x60];
        assert_eq!(walk(LinkType::Null, &le).unwrap().network, Network::Ipv4);
        assert_eq!(walk(LinkType::Null, &be).unwrap().network, Network::Ipv4);
        assert_eq!(walk(LinkType::Null, &v6).unwrap().network, Network::Ipv6);
        let ether_type_in_low_half = [0x0f, 0x00, 0x08, 0x00, 0x45];
        assert_eq!(
            walk(LinkType::Null, &ether_type_in_low_half)
                .unwrap()
                .network,
            Network::Ipv4
        );
        assert_eq!(
            walk(LinkType::Null, &[0x0f, 0, 0x12, 0x34, 0x45])
                .unwrap()
                .network,
            Network::NonIp(NonIpKind::Other)
        );
    }

    #[test]
    fn radiotap_qos_data_with_snap_reaches_ip() {
        let mut f = vec![0, 0, 8, 0, 0, 0, 0, 0];
        // QoS data (type 2, subtype 8), from DS.
        f.extend_from_slice(&[0x88, 0x02, 0, 0]);
        f.extend_from_slice(&[1; 6]); // addr1 = destination
        f.extend_from_slice(&[2; 6]); // addr2 = BSSID
        f.extend_from_slice(&[3; 6]); // addr3 = source
        f.extend_from_slice(&[0, 0]); // sequence control
        f.extend_from_slice(&[0, 0]); // QoS control
        f.extend_from_slice(&LLC_SNAP);
        f.extend_from_slice(&[0x08, 0x00, 0x45]);
        let l = walk(LinkType::Ieee80211Radiotap, &f).unwrap();
        assert_eq!(l.network, Network::Ipv4);
        assert_eq!(l.dst_mac, Some([1; 6]));
        assert_eq!(l.src_mac, Some([3; 6]));
        assert_eq!(l.payload, &[0x45]);
    }
}
