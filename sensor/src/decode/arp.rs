//! ARP over Ethernet for IPv4 (RFC 826): who says it holds which address.
//! Only what the device inventory needs: the sender's hardware and protocol
//! addresses of a well-formed Ethernet/IPv4 ARP message.

use std::net::Ipv4Addr;

/// `ar$hrd` of Ethernet (RFC 826; IANA ARP parameters: 1).
const HTYPE_ETHERNET: u16 = 1;
/// `ar$pro` of IPv4: the IPv4 EtherType.
const PTYPE_IPV4: u16 = 0x0800;
/// Hardware and protocol address lengths of Ethernet/IPv4.
const HLEN: u8 = 6;
const PLEN: u8 = 4;
/// The fixed header: hrd (2), pro (2), hln (1), pln (1), op (2).
const HEADER_LEN: usize = 8;
/// Header plus sha (6), spa (4), tha (6), tpa (4).
const MESSAGE_LEN: usize = HEADER_LEN + 2 * (HLEN as usize + PLEN as usize);
/// Offsets of the sender's addresses.
const SHA: usize = HEADER_LEN;
const SPA: usize = SHA + HLEN as usize;

/// What an ARP message says of its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpSender {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
}

/// The sender of an Ethernet/IPv4 ARP request or reply; `None` for other
/// hardware or protocol types, a short message, or a probe's all-zero
/// sender address (RFC 5227 §2.1.1: the sender has no address yet).
pub fn sender(payload: &[u8]) -> Option<ArpSender> {
    let m = payload.get(..MESSAGE_LEN)?;
    let be16 = |at: usize| u16::from_be_bytes([m[at], m[at + 1]]);
    if be16(0) != HTYPE_ETHERNET || be16(2) != PTYPE_IPV4 || m[4] != HLEN || m[5] != PLEN {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&m[SHA..SHA + 6]);
    let ip = Ipv4Addr::new(m[SPA], m[SPA + 1], m[SPA + 2], m[SPA + 3]);
    (!ip.is_unspecified()).then_some(ArpSender { mac, ip })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ARP request "who has 10.77.0.10? tell 10.77.0.21" from
    /// 02:77:00:00:00:15 (RFC 826 layout: hrd 1, pro 0800, hln 6, pln 4, op 1).
    const REQUEST: [u8; 28] = [
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0x77, 0, 0, 0, 0x15, 10, 77, 0, 21, 0, 0, 0, 0, 0, 0, 10, 77, 0,
        10,
    ];

    #[test]
    fn sender_of_a_request() {
        assert_eq!(
            sender(&REQUEST),
            Some(ArpSender {
                mac: [2, 0x77, 0, 0, 0, 0x15],
                ip: Ipv4Addr::new(10, 77, 0, 21)
            })
        );
    }

    #[test]
    fn other_types_short_messages_and_probes_say_nothing() {
        let mut probe = REQUEST;
        probe[14..18].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(sender(&probe), None);
        assert_eq!(sender(&REQUEST[..27]), None);
        let mut ipv6 = REQUEST;
        ipv6[2..4].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(sender(&ipv6), None);
        let mut token_ring = REQUEST;
        token_ring[1] = 6;
        assert_eq!(sender(&token_ring), None);
    }
}
