//! MQTT 3.1.1 control packets (OASIS Standard, 29 October 2014) and the
//! device ⇄ broker session script.
//!
//! Every packet is a fixed header (§2.2: type in the high nibble of the first
//! byte, flags in the low nibble, then the Remaining Length varint of §2.2.3),
//! a variable header and a payload.

use std::io::Write;

use super::device::Device;
use super::rng::SplitMix64;
use super::session::{Dir, Session};

/// §2.2.3: the largest Remaining Length four bytes can carry.
const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Control packet types, §2.2.1 Table 2.1.
const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

/// CONNACK return codes, §3.2.2.3 Table 3.1.
const ACCEPTED: u8 = 0;
const BAD_USER_NAME_OR_PASSWORD: u8 = 4;
const NOT_AUTHORIZED: u8 = 5;

/// Largest binary payload of a "snapshot" PUBLISH (forces segmentation).
const MAX_SNAPSHOT_BYTES: u64 = 8 * 1024;

/// §2.2.3: Remaining Length as 1–4 bytes, 7 bits each, least significant first.
fn remaining_length(len: usize) -> ([u8; 4], usize) {
    let mut x = len.min(MAX_REMAINING_LENGTH);
    let mut out = [0u8; 4];
    let mut n = 0;
    for slot in &mut out {
        let mut byte = (x % 128) as u8;
        x /= 128;
        if x > 0 {
            byte |= 0x80;
        }
        *slot = byte;
        n += 1;
        if x == 0 {
            break;
        }
    }
    (out, n)
}

/// Append a control packet: first byte, Remaining Length, then what `body` writes.
fn packet(out: &mut Vec<u8>, first: u8, body: impl FnOnce(&mut Vec<u8>)) {
    out.push(first);
    let at = out.len();
    body(out);
    let (len, n) = remaining_length(out.len() - at);
    out.splice(at..at, len.iter().take(n).copied());
}

/// §1.5.3: UTF-8 string (or binary data, §3.1.3.5) with a two-byte length.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    let s = s.get(..usize::from(u16::MAX)).unwrap_or(s);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// Will message of a CONNECT (§3.1.2.5–§3.1.2.7).
pub(super) struct Will<'a> {
    pub topic: &'a str,
    pub message: &'a [u8],
    pub qos: u8,
    pub retain: bool,
}

/// Fields of a CONNECT packet (§3.1).
pub(super) struct Connect<'a> {
    pub client_id: &'a str,
    pub keep_alive: u16,
    pub clean_session: bool,
    pub will: Option<Will<'a>>,
    pub user: Option<&'a str>,
    pub password: Option<&'a [u8]>,
}

/// §3.1: CONNECT. Variable header: protocol name "MQTT", level 4, connect
/// flags (§3.1.2.3), keep alive; payload: client id, will topic and message,
/// user name, password, in that order.
pub(super) fn connect(out: &mut Vec<u8>, c: &Connect) {
    packet(out, CONNECT << 4, |o| {
        string(o, b"MQTT");
        o.push(4);
        let mut flags = 0u8;
        if c.user.is_some() {
            flags |= 0x80;
        }
        if c.password.is_some() {
            flags |= 0x40;
        }
        if let Some(w) = &c.will {
            flags |= 0x04 | ((w.qos & 3) << 3);
            if w.retain {
                flags |= 0x20;
            }
        }
        if c.clean_session {
            flags |= 0x02;
        }
        o.push(flags);
        o.extend_from_slice(&c.keep_alive.to_be_bytes());
        string(o, c.client_id.as_bytes());
        if let Some(w) = &c.will {
            string(o, w.topic.as_bytes());
            string(o, w.message);
        }
        if let Some(u) = c.user {
            string(o, u.as_bytes());
        }
        if let Some(p) = c.password {
            string(o, p);
        }
    });
}

/// §3.2: CONNACK, acknowledge flags then return code.
pub(super) fn connack(out: &mut Vec<u8>, session_present: bool, code: u8) {
    out.extend_from_slice(&[CONNACK << 4, 2, u8::from(session_present), code]);
}

/// §3.3: PUBLISH; flags DUP (bit 3), QoS (bits 2–1), RETAIN (bit 0); the
/// packet identifier is present only for QoS 1 and 2.
pub(super) fn publish(
    out: &mut Vec<u8>,
    topic: &str,
    qos: u8,
    retain: bool,
    packet_id: u16,
    payload: &[u8],
) {
    let first = (PUBLISH << 4) | ((qos & 3) << 1) | u8::from(retain);
    packet(out, first, |o| {
        string(o, topic.as_bytes());
        if qos > 0 {
            o.extend_from_slice(&packet_id.to_be_bytes());
        }
        o.extend_from_slice(payload);
    });
}

/// §3.4: PUBACK.
pub(super) fn puback(out: &mut Vec<u8>, packet_id: u16) {
    out.extend_from_slice(&[PUBACK << 4, 2]);
    out.extend_from_slice(&packet_id.to_be_bytes());
}

/// §3.8: SUBSCRIBE; fixed header flags must be 0010 (§3.8.1).
pub(super) fn subscribe(out: &mut Vec<u8>, packet_id: u16, filters: &[(&str, u8)]) {
    packet(out, (SUBSCRIBE << 4) | 0x02, |o| {
        o.extend_from_slice(&packet_id.to_be_bytes());
        for (filter, qos) in filters {
            string(o, filter.as_bytes());
            o.push(qos & 3);
        }
    });
}

/// §3.9: SUBACK, one return code per filter.
pub(super) fn suback(out: &mut Vec<u8>, packet_id: u16, codes: &[u8]) {
    packet(out, SUBACK << 4, |o| {
        o.extend_from_slice(&packet_id.to_be_bytes());
        o.extend_from_slice(codes);
    });
}

/// §3.12, §3.13, §3.14: the two-byte packets.
pub(super) fn pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[PINGREQ << 4, 0]);
}

pub(super) fn pingresp(out: &mut Vec<u8>) {
    out.extend_from_slice(&[PINGRESP << 4, 0]);
}

pub(super) fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[DISCONNECT << 4, 0]);
}

/// A device's MQTT session with the broker: CONNECT / CONNACK (sometimes
/// refused, then the broker closes, §3.2.2.3), maybe SUBSCRIBE / SUBACK, a
/// few telemetry PUBLISHes at QoS 0 or 1 (PUBACK), commands from the broker,
/// keep-alive pings, then DISCONNECT and FIN — or an abrupt RST.
pub(super) fn script(s: &mut Session, rng: &mut SplitMix64, dev: &Device) {
    s.open(rng);
    let telemetry = format!("site/{}/telemetry", dev.name);
    let status = format!("site/{}/status", dev.name);
    let commands = format!("site/{}/cmd", dev.name);
    let with_will = rng.chance(300);
    let anonymous = rng.chance(100);
    let password = if dev.wrong_password {
        "wrong-password"
    } else {
        dev.password.as_str()
    };
    let hello = Connect {
        client_id: &dev.name,
        keep_alive: rng.pick(&[30, 60, 120, 300]),
        clean_session: rng.chance(800),
        will: with_will.then_some(Will {
            topic: &status,
            message: b"offline",
            qos: 1,
            retain: true,
        }),
        user: (!anonymous).then_some(dev.user.as_str()),
        password: (!anonymous).then_some(password.as_bytes()),
    };
    let gap = s.think_gap(rng) / 8;
    s.send(rng, Dir::ToServer, gap, |o| connect(o, &hello));
    let refused = dev.wrong_password || rng.chance(20);
    let gap = s.reply_gap(rng);
    if refused {
        let code = if anonymous {
            NOT_AUTHORIZED
        } else {
            BAD_USER_NAME_OR_PASSWORD
        };
        s.send(rng, Dir::ToClient, gap, |o| connack(o, false, code));
        let gap = s.reply_gap(rng);
        s.close(rng, Dir::ToClient, gap);
        return;
    }
    s.send(rng, Dir::ToClient, gap, |o| connack(o, false, ACCEPTED));

    let mut packet_id = (rng.next_u64() as u16).max(1);
    let mut next_id = || {
        packet_id = packet_id.checked_add(1).unwrap_or(1);
        packet_id
    };
    let subscribed = rng.chance(600);
    if subscribed {
        let id = next_id();
        let gap = s.think_gap(rng) / 4;
        s.send(rng, Dir::ToServer, gap, |o| {
            subscribe(o, id, &[(&commands, 1), ("site/broadcast/#", 0)]);
        });
        let gap = s.reply_gap(rng);
        s.send(rng, Dir::ToClient, gap, |o| suback(o, id, &[1, 0]));
    }
    if with_will {
        // Retained "online" status, replacing the will's "offline".
        let id = next_id();
        let gap = s.think_gap(rng) / 4;
        s.send(rng, Dir::ToServer, gap, |o| {
            publish(o, &status, 1, true, id, b"online")
        });
        let gap = s.reply_gap(rng);
        s.send(rng, Dir::ToClient, gap, |o| puback(o, id));
    }
    let messages = rng.range(1, 6);
    for seq in 0..messages {
        let gap = s.think_gap(rng);
        if rng.chance(60) {
            let mut blob = vec![0u8; rng.range(1500, MAX_SNAPSHOT_BYTES) as usize];
            rng.fill(&mut blob);
            let topic = format!("site/{}/snapshot", dev.name);
            s.send(rng, Dir::ToServer, gap, |o| {
                publish(o, &topic, 0, false, 0, &blob)
            });
            continue;
        }
        let qos = u8::from(rng.chance(400));
        let id = if qos > 0 { next_id() } else { 0 };
        let temp = rng.range(150, 320);
        let hum = rng.range(20, 80);
        let mut body = Vec::with_capacity(64);
        // Writing into a Vec cannot fail.
        let _ = write!(
            body,
            r#"{{"seq":{seq},"temp":{}.{},"hum":{hum}}}"#,
            temp / 10,
            temp % 10
        );
        s.send(rng, Dir::ToServer, gap, |o| {
            publish(o, &telemetry, qos, false, id, &body)
        });
        if qos == 1 {
            let gap = s.reply_gap(rng);
            s.send(rng, Dir::ToClient, gap, |o| puback(o, id));
        }
        if subscribed && rng.chance(150) {
            let gap = s.think_gap(rng) / 2;
            let cmd = rng.pick(&[
                &br#"{"cmd":"reboot"}"#[..],
                br#"{"cmd":"report"}"#,
                br#"{"led":"on"}"#,
            ]);
            s.send(rng, Dir::ToClient, gap, |o| {
                publish(o, &commands, 0, false, 0, cmd)
            });
        }
        if rng.chance(150) {
            let gap = s.think_gap(rng);
            s.send(rng, Dir::ToServer, gap, pingreq);
            let gap = s.reply_gap(rng);
            s.send(rng, Dir::ToClient, gap, pingresp);
        }
    }
    let gap = s.think_gap(rng) / 4;
    if rng.chance(850) {
        s.send(rng, Dir::ToServer, gap, disconnect);
        let gap = rng.range(20_000, 500_000);
        s.close(rng, Dir::ToServer, gap);
    } else {
        s.abort(Dir::ToServer, gap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_length_matches_the_spec_table() {
        // §2.2.3 Table 2.4: boundaries of the 1- to 4-byte encodings.
        let cases: [(usize, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for (len, want) in cases {
            let (bytes, n) = remaining_length(len);
            assert_eq!(&bytes[..n], want, "{len}");
        }
    }

    #[test]
    fn connect_matches_the_spec_layout() {
        let mut out = Vec::new();
        connect(
            &mut out,
            &Connect {
                client_id: "d1",
                keep_alive: 10,
                clean_session: true,
                will: None,
                user: Some("u"),
                password: Some(b"pw"),
            },
        );
        #[rustfmt::skip]
        let want = [
            0x10, 21,                       // CONNECT, remaining length
            0, 4, b'M', b'Q', b'T', b'T',   // protocol name (§3.1.2.1)
            4,                              // protocol level 4 = 3.1.1
            0xC2,                           // user name, password, clean session
            0, 10,                          // keep alive 10 s (Figure 3.6)
            0, 2, b'd', b'1',               // client id
            0, 1, b'u',                     // user name
            0, 2, b'p', b'w',               // password
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn connect_with_will_sets_flag_bits_and_orders_the_payload() {
        let mut out = Vec::new();
        let will = Will {
            topic: "t",
            message: b"m",
            qos: 1,
            retain: true,
        };
        connect(
            &mut out,
            &Connect {
                client_id: "",
                keep_alive: 60,
                clean_session: false,
                will: Some(will),
                user: None,
                password: None,
            },
        );
        // Will flag 0x04, will QoS 1 = 0x08, will retain 0x20.
        assert_eq!(out[9], 0x2C);
        assert_eq!(&out[12..], &[0, 0, 0, 1, b't', 0, 1, b'm']);
    }

    #[test]
    fn small_packets_match_the_spec_bytes() {
        let mut out = Vec::new();
        connack(&mut out, false, BAD_USER_NAME_OR_PASSWORD);
        puback(&mut out, 0x1234);
        pingreq(&mut out);
        pingresp(&mut out);
        disconnect(&mut out);
        let want = [
            0x20, 2, 0, 4, 0x40, 2, 0x12, 0x34, 0xC0, 0, 0xD0, 0, 0xE0, 0,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn publish_and_subscribe_headers() {
        let mut out = Vec::new();
        publish(&mut out, "a/b", 1, false, 10, b"xy");
        // §3.3.1: 0x32 = PUBLISH, QoS 1; topic, packet id 10, payload.
        assert_eq!(out, [0x32, 9, 0, 3, b'a', b'/', b'b', 0, 10, b'x', b'y']);
        out.clear();
        publish(&mut out, "a", 0, true, 99, b"");
        // QoS 0 has no packet identifier (§3.3.2.2).
        assert_eq!(out, [0x31, 3, 0, 1, b'a']);
        out.clear();
        subscribe(&mut out, 7, &[("a/#", 1)]);
        assert_eq!(out, [0x82, 8, 0, 7, 0, 3, b'a', b'/', b'#', 1]);
        out.clear();
        suback(&mut out, 7, &[1, 0x80]);
        assert_eq!(out, [0x90, 4, 0, 7, 1, 0x80]);
    }

    #[test]
    fn long_publish_uses_a_two_byte_remaining_length() {
        let mut out = Vec::new();
        publish(&mut out, "t", 0, false, 0, &[0u8; 200]);
        // 2 + 1 topic bytes + 200 = 203 = 0xCB 0x01.
        assert_eq!(&out[..3], &[0x30, 0xCB, 0x01]);
        assert_eq!(out.len(), 3 + 203);
    }
}
