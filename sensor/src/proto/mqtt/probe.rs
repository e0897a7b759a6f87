//! Content-based MQTT detection (no port needed).
//!
//! A client's stream normally opens with CONNECT, whose Protocol Name and
//! Level are distinctive (3.1.1 §3.1.2.1-§3.1.2.2, 5.0 §3.1.2.1-§3.1.2.2).
//! Midstream flows, and the server side, are recognised when their bytes
//! form a chain of well-formed fixed headers that ends exactly at the end of
//! the data (or in a PUBLISH whose Topic Name is already visible and valid).
//! The same check finds packet boundaries again after a gap.

use super::parser::{
    FixedHeader, PacketType, ProtocolVersion, Qos, parse_fixed_header, reason_code_allowed,
};
use super::topic::check_topic_name;
use super::wire::{MqttStr, Status};
use crate::flow::Direction;
use crate::proto::Probe;

/// Packets walked before a chain is accepted as MQTT.
pub const PROBE_MAX_PACKETS: usize = 32;

/// Past this many bytes without a decision, the probe answers `NoMatch`.
pub const PROBE_MAX_BYTES: usize = 512;

/// Decide whether the first bytes one side sent on a flow are MQTT.
pub fn probe(first_bytes: &[u8], dir: Direction) -> Probe {
    let verdict = if dir == Direction::ToServer && first_bytes.first() == Some(&0x10) {
        probe_connect(first_bytes)
    } else {
        chain_plausible(first_bytes, dir)
    };
    match verdict {
        Probe::NeedMore if first_bytes.len() >= PROBE_MAX_BYTES => Probe::NoMatch,
        other => other,
    }
}

/// CONNECT: "MQTT" with level 4 or 5, or "MQIsdp" with level 3 (mosquitto
/// bridges add bit 7 to the level).
fn probe_connect(data: &[u8]) -> Probe {
    let h = match parse_fixed_header(data) {
        Ok(Status::Done(h)) => h,
        Ok(Status::Incomplete(_)) => return Probe::NeedMore,
        Err(_) => return Probe::NoMatch,
    };
    // Protocol name (2+4), level, flags, keep alive, client id length.
    if !h.minimal_length || h.remaining_len < 10 {
        return Probe::NoMatch;
    }
    let body = data.get(h.header_len..).unwrap_or_default();
    let Some(len) = body.get(..2) else {
        return Probe::NeedMore;
    };
    let name: &[u8] = match len {
        [0, 4] => b"MQTT",
        [0, 6] => b"MQIsdp",
        _ => return Probe::NoMatch,
    };
    let seen = body.get(2..).unwrap_or_default();
    let cmp = seen.len().min(name.len());
    if seen.get(..cmp) != name.get(..cmp) {
        return Probe::NoMatch;
    }
    let Some(&level) = seen.get(name.len()) else {
        return Probe::NeedMore;
    };
    match ProtocolVersion::from_connect_level(level) {
        Some(v) if v.protocol_name().as_bytes() == name => Probe::Match,
        _ => Probe::NoMatch,
    }
}

/// Smallest Remaining Length each type can have in any version.
fn min_remaining(pt: PacketType) -> u32 {
    match pt {
        PacketType::Connect => 10,
        PacketType::Subscribe | PacketType::Unsubscribe => 5,
        PacketType::Suback => 3,
        PacketType::Connack
        | PacketType::Publish
        | PacketType::Puback
        | PacketType::Pubrec
        | PacketType::Pubrel
        | PacketType::Pubcomp
        | PacketType::Unsuback => 2,
        PacketType::Reserved
        | PacketType::Pingreq
        | PacketType::Pingresp
        | PacketType::Disconnect
        | PacketType::Auth => 0,
    }
}

fn header_plausible(h: &FixedHeader, dir: Direction) -> bool {
    let pt = h.packet_type;
    let direction_ok = match dir {
        Direction::ToServer => pt.client_may_send(),
        Direction::ToClient => pt.server_may_send(None),
    };
    let length_ok = match pt {
        PacketType::Pingreq | PacketType::Pingresp => h.remaining_len == 0,
        _ => h.remaining_len >= min_remaining(pt),
    };
    pt != PacketType::Reserved
        && direction_ok
        && length_ok
        && h.minimal_length
        && h.flags_valid(Some(ProtocolVersion::V3_1))
        && !(pt == PacketType::Publish && h.publish_qos() == Qos::Reserved)
}

/// What the visible part of a PUBLISH says: `Some(true)` when its Topic Name
/// is complete and valid, `Some(false)` when it is impossible, `None` when
/// not yet visible.
fn publish_topic_plausible(h: &FixedHeader, body: &[u8]) -> Option<bool> {
    let [hi, lo] = *body.get(..2)? else {
        return None;
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len == 0 || len as u64 + 2 > u64::from(h.remaining_len) {
        return Some(false);
    }
    let topic = MqttStr::new(body.get(2..2 + len)?);
    Some(topic.is_well_formed() && check_topic_name(topic.as_bytes()).is_ok())
}

/// CONNACK body rules usable without knowing the version.
fn connack_plausible(h: &FixedHeader, body: &[u8]) -> bool {
    match body {
        [flags, code, ..] => {
            *flags <= 1
                && if h.remaining_len == 2 {
                    *code <= 5
                } else {
                    reason_code_allowed(PacketType::Connack, *code)
                }
        }
        _ => true,
    }
}

/// Whether `data`, starting at a packet boundary, reads as a chain of MQTT
/// packets that one side of a flow in direction `dir` could send.
pub(crate) fn chain_plausible(data: &[u8], dir: Direction) -> Probe {
    if data.is_empty() {
        return Probe::NeedMore;
    }
    let mut pos = 0usize;
    for _ in 0..PROBE_MAX_PACKETS {
        let rest = data.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return Probe::Match;
        }
        let h = match parse_fixed_header(rest) {
            Ok(Status::Done(h)) => h,
            Ok(Status::Incomplete(_)) => return Probe::NeedMore,
            Err(_) => return Probe::NoMatch,
        };
        if !header_plausible(&h, dir) {
            return Probe::NoMatch;
        }
        let body = rest.get(h.header_len..).unwrap_or_default();
        let complete = h.total_len() <= rest.len() as u64;
        let body = if complete {
            body.get(..h.remaining_len as usize).unwrap_or_default()
        } else {
            body
        };
        match h.packet_type {
            PacketType::Publish => match publish_topic_plausible(&h, body) {
                Some(false) => return Probe::NoMatch,
                Some(true) if !complete => return Probe::Match,
                None => return Probe::NeedMore,
                Some(true) => {}
            },
            PacketType::Connack if !connack_plausible(&h, body) => return Probe::NoMatch,
            _ => {}
        }
        if !complete {
            return Probe::NeedMore;
        }
        pos += h.header_len + h.remaining_len as usize;
    }
    Probe::Match
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    const CONNECT_311: &str = "102b00044d51545404c2003c00136d79766f69636569736d7970617373706f7274000475736572000470617373";

    #[test]
    fn connect_is_recognised_byte_by_byte() {
        let bytes = hex(CONNECT_311);
        // "10 2b 00 04 M Q T T 04": decided once the level byte arrives.
        for n in 0..9 {
            assert_eq!(
                probe(&bytes[..n], Direction::ToServer),
                Probe::NeedMore,
                "{n}"
            );
        }
        assert_eq!(probe(&bytes[..9], Direction::ToServer), Probe::Match);
        assert_eq!(probe(&bytes, Direction::ToServer), Probe::Match);
        // MQIsdp level 3 (mqtt31-mqisdp-subscribe.pcap frame 4).
        let v31 = hex("102d00064d514973647003c2003c0013");
        assert_eq!(probe(&v31, Direction::ToServer), Probe::Match);
    }

    #[test]
    fn wrong_connects_are_rejected() {
        // Name/level mismatch, unknown level, wrong name.
        assert_eq!(
            probe(&hex("102b00044d51545403"), Direction::ToServer),
            Probe::NoMatch
        );
        assert_eq!(
            probe(&hex("102b00044d51545409"), Direction::ToServer),
            Probe::NoMatch
        );
        assert_eq!(
            probe(&hex("102b00044d515858"), Direction::ToServer),
            Probe::NoMatch
        );
        assert_eq!(probe(&hex("102b0005"), Direction::ToServer), Probe::NoMatch);
    }

    #[test]
    fn other_protocols_do_not_match() {
        for (bytes, dir) in [
            (
                &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                Direction::ToServer,
            ),
            (&b"HTTP/1.1 200 OK\r\n\r\n"[..], Direction::ToClient),
            (&b"SSH-2.0-OpenSSH_9.0\r\n"[..], Direction::ToServer),
            (
                &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01][..],
                Direction::ToServer,
            ),
            (
                &[0xFF, 0xFD, 0x18, 0xFF, 0xFD, 0x20][..],
                Direction::ToClient,
            ),
            (&[0x17, 0x03, 0x03, 0x00, 0x5a][..], Direction::ToServer),
        ] {
            assert_eq!(probe(bytes, dir), Probe::NoMatch, "{bytes:02x?}");
        }
    }

    // mqtt-pingreq-pingresp-only.pcap: c0 00 then d0 00.
    #[test]
    fn midstream_chains() {
        assert_eq!(probe(&hex("c000"), Direction::ToServer), Probe::Match);
        assert_eq!(probe(&hex("d000"), Direction::ToClient), Probe::Match);
        // A PINGRESP cannot come from the client.
        assert_eq!(probe(&hex("d000"), Direction::ToServer), Probe::NoMatch);
        // mqtt5-midstream-no-connect-split-connack: the CONNACK type byte
        // alone, then the whole CONNACK.
        assert_eq!(probe(&hex("20"), Direction::ToClient), Probe::NeedMore);
        let connack = hex(concat!(
            "203200002f22000a1200296175746f2d31423433453830302d303845332d334241312d",
            "324539372d453941304234303634424635"
        ));
        assert_eq!(probe(&connack, Direction::ToClient), Probe::Match);
        // A large PUBLISH seen from its start: the topic decides.
        assert_eq!(
            probe(&hex("30b797020006746f7069635800ffd8"), Direction::ToServer),
            Probe::Match
        );
        // Two UNSUBSCRIBEs in one segment (mqtt311-subscribe-unsubscribe).
        assert_eq!(
            probe(
                &hex("a20a00020006746f70696358a20a00030006746f70696359"),
                Direction::ToServer
            ),
            Probe::Match
        );
        // The ASCII '0' stream of the mixed capture: a PUBLISH header whose
        // topic length (0x3030) exceeds its remaining length (0x30).
        assert_eq!(probe(b"0", Direction::ToServer), Probe::NeedMore);
        assert_eq!(probe(b"0000", Direction::ToServer), Probe::NoMatch);
    }

    #[test]
    fn undecided_probe_gives_up() {
        // A SUBSCRIBE header announcing far more than arrives.
        let mut bytes = hex("82ff7f00");
        bytes.resize(PROBE_MAX_BYTES, 0x61);
        assert_eq!(probe(&bytes[..100], Direction::ToServer), Probe::NeedMore);
        assert_eq!(probe(&bytes, Direction::ToServer), Probe::NoMatch);
    }
}
