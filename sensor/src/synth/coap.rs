//! CoAP messages (RFC 7252 §3) and the device ⇄ CoAP server exchange script,
//! with observe notifications (RFC 7641).
//!
//! Header: Ver (2 bits, = 1), Type (2 bits), Token Length (4 bits), Code
//! (3-bit class, 5-bit detail), Message ID; then the token, the options in
//! ascending number order as delta / length nibbles with the 13 / 14 escapes
//! of §3.1, and 0xFF before a non-empty payload.

use std::io::Write;

use super::rng::SplitMix64;
use super::session::{Dir, Session};

/// Message types, §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Type {
    Confirmable = 0,
    NonConfirmable = 1,
    Acknowledgement = 2,
    Reset = 3,
}

/// Codes (class << 5 | detail), §12.1.
pub(super) const EMPTY: u8 = 0x00;
pub(super) const GET: u8 = 0x01;
pub(super) const PUT: u8 = 0x03;
pub(super) const CHANGED: u8 = 0x44; // 2.04
pub(super) const CONTENT: u8 = 0x45; // 2.05
pub(super) const NOT_FOUND: u8 = 0x84; // 4.04

/// Option numbers, §5.10 and RFC 7641 §2.
pub(super) const OBSERVE: u16 = 6;
pub(super) const URI_PATH: u16 = 11;
pub(super) const CONTENT_FORMAT: u16 = 12;

/// Content-Format values, §12.3.
const TEXT_PLAIN: u32 = 0;
const LINK_FORMAT: u32 = 40;
const JSON: u32 = 50;

/// §5.3.1: tokens are 0 to 8 bytes.
const MAX_TOKEN_LEN: usize = 8;
/// Observe sequence numbers are 24-bit (RFC 7641 §4.4).
const OBSERVE_MODULUS: u32 = 1 << 24;

/// §3.2 uint option value: big endian without leading zero bytes (0 is empty).
pub(super) fn uint(value: u32) -> ([u8; 4], usize) {
    let bytes = value.to_be_bytes();
    let skip = (value.leading_zeros() / 8) as usize;
    let mut out = [0u8; 4];
    let n = 4 - skip;
    out[..n].copy_from_slice(&bytes[skip..]);
    (out, n)
}

/// §3.1 option delta or length nibble and its extension bytes.
fn nibble(value: usize) -> (u8, [u8; 2], usize) {
    match value {
        0..13 => (value as u8, [0, 0], 0),
        13..269 => (13, [(value - 13) as u8, 0], 1),
        _ => {
            let ext = (value.min(65_535 + 269) - 269) as u16;
            (14, ext.to_be_bytes(), 2)
        }
    }
}

/// Append one message. `options` must be sorted by option number.
pub(super) fn message(
    out: &mut Vec<u8>,
    ty: Type,
    code: u8,
    message_id: u16,
    token: &[u8],
    options: &[(u16, &[u8])],
    payload: &[u8],
) {
    let token = token.get(..MAX_TOKEN_LEN).unwrap_or(token);
    out.push(0x40 | ((ty as u8) << 4) | token.len() as u8);
    out.push(code);
    out.extend_from_slice(&message_id.to_be_bytes());
    out.extend_from_slice(token);
    let mut previous = 0u16;
    for &(number, value) in options {
        let (d, dext, dn) = nibble(usize::from(number.saturating_sub(previous)));
        let (l, lext, ln) = nibble(value.len());
        out.push((d << 4) | l);
        out.extend_from_slice(&dext[..dn]);
        out.extend_from_slice(&lext[..ln]);
        out.extend_from_slice(value);
        previous = number;
    }
    if !payload.is_empty() {
        out.push(0xFF);
        out.extend_from_slice(payload);
    }
}

/// Request from the device: CON with Uri-Path segments, maybe Observe and a
/// Content-Format for the payload.
struct Request<'a> {
    code: u8,
    path: &'a [&'a str],
    observe: Option<u32>,
    format: Option<u32>,
    payload: &'a [u8],
}

fn request(out: &mut Vec<u8>, mid: u16, token: &[u8], r: &Request) {
    let observe = r.observe.map(uint);
    let format = r.format.map(uint);
    let mut options: Vec<(u16, &[u8])> = Vec::with_capacity(r.path.len() + 2);
    if let Some((v, n)) = &observe {
        options.push((OBSERVE, &v[..*n]));
    }
    for segment in r.path {
        options.push((URI_PATH, segment.as_bytes()));
    }
    if let Some((v, n)) = &format {
        options.push((CONTENT_FORMAT, &v[..*n]));
    }
    message(
        out,
        Type::Confirmable,
        r.code,
        mid,
        token,
        &options,
        r.payload,
    );
}

/// 2.05 Content carrying a representation: Observe (if any), Content-Format.
fn content(
    out: &mut Vec<u8>,
    ty: Type,
    mid: u16,
    token: &[u8],
    observe: Option<u32>,
    format: u32,
    payload: &[u8],
) {
    let observe = observe.map(uint);
    let (f, fnum) = uint(format);
    let mut options: Vec<(u16, &[u8])> = Vec::with_capacity(2);
    if let Some((v, n)) = &observe {
        options.push((OBSERVE, &v[..*n]));
    }
    if !payload.is_empty() {
        options.push((CONTENT_FORMAT, &f[..fnum]));
    }
    message(out, ty, CONTENT, mid, token, &options, payload);
}

fn reading(rng: &mut SplitMix64, json: bool) -> Vec<u8> {
    let v = rng.range(100, 350);
    let mut out = Vec::with_capacity(32);
    // Writing into a Vec cannot fail.
    let _ = if json {
        write!(out, r#"{{"v":{}.{},"u":"C"}}"#, v / 10, v % 10)
    } else {
        write!(out, "{}.{}", v / 10, v % 10)
    };
    out
}

/// A device's CoAP exchanges with the server (UDP 5683): one to three of
/// GET of a sensor resource (piggy-backed ACK 2.05, §5.2.1), PUT to an
/// actuator (ACK 2.04), GET /.well-known/core (RFC 6690), GET of a missing
/// resource (4.04), or an observe registration followed by NON notifications
/// (RFC 7641 §3–4) that the device ends with a Reset (§3.6).
pub(super) fn script(s: &mut Session, rng: &mut SplitMix64) {
    let mut mid = rng.next_u64() as u16;
    let mut server_mid = rng.next_u64() as u16;
    let exchanges = rng.range(1, 3);
    let mut gap = rng.range(1_000_000, 50_000_000);
    for _ in 0..exchanges {
        let mut token = [0u8; MAX_TOKEN_LEN];
        let tkl = rng.range(1, MAX_TOKEN_LEN as u64) as usize;
        rng.fill(&mut token[..tkl]);
        let token = &token[..tkl];
        mid = mid.wrapping_add(1);
        let sensor = rng.pick(&["temperature", "humidity", "light"]);
        let json = rng.chance(500);
        let format = if json { JSON } else { TEXT_PLAIN };
        match rng.below(100) {
            0..50 => {
                let r = Request {
                    code: GET,
                    path: &["sensors", sensor],
                    observe: None,
                    format: None,
                    payload: b"",
                };
                s.datagram(Dir::ToServer, gap, |o| request(o, mid, token, &r));
                let body = reading(rng, json);
                let g = s.reply_gap(rng);
                s.datagram(Dir::ToClient, g, |o| {
                    content(o, Type::Acknowledgement, mid, token, None, format, &body);
                });
            }
            50..75 => {
                let actuator = rng.pick(&["led", "relay"]);
                let state = rng.pick(&[&b"on"[..], b"off"]);
                let r = Request {
                    code: PUT,
                    path: &["actuators", actuator],
                    observe: None,
                    format: Some(TEXT_PLAIN),
                    payload: state,
                };
                s.datagram(Dir::ToServer, gap, |o| request(o, mid, token, &r));
                let g = s.reply_gap(rng);
                s.datagram(Dir::ToClient, g, |o| {
                    message(o, Type::Acknowledgement, CHANGED, mid, token, &[], b"");
                });
            }
            75..80 => {
                let r = Request {
                    code: GET,
                    path: &[".well-known", "core"],
                    observe: None,
                    format: None,
                    payload: b"",
                };
                s.datagram(Dir::ToServer, gap, |o| request(o, mid, token, &r));
                let g = s.reply_gap(rng);
                let links = br#"</sensors/temperature>;rt="temperature";obs,</sensors/humidity>;rt="humidity";obs,</actuators/led>;rt="switch""#;
                s.datagram(Dir::ToClient, g, |o| {
                    content(
                        o,
                        Type::Acknowledgement,
                        mid,
                        token,
                        None,
                        LINK_FORMAT,
                        links,
                    );
                });
            }
            80..85 => {
                let r = Request {
                    code: GET,
                    path: &["config", "firmware"],
                    observe: None,
                    format: None,
                    payload: b"",
                };
                s.datagram(Dir::ToServer, gap, |o| request(o, mid, token, &r));
                let g = s.reply_gap(rng);
                s.datagram(Dir::ToClient, g, |o| {
                    message(o, Type::Acknowledgement, NOT_FOUND, mid, token, &[], b"");
                });
            }
            _ => {
                let r = Request {
                    code: GET,
                    path: &["sensors", sensor],
                    observe: Some(0),
                    format: None,
                    payload: b"",
                };
                s.datagram(Dir::ToServer, gap, |o| request(o, mid, token, &r));
                let mut seq = rng.below(u64::from(OBSERVE_MODULUS)) as u32;
                let body = reading(rng, json);
                let g = s.reply_gap(rng);
                s.datagram(Dir::ToClient, g, |o| {
                    content(
                        o,
                        Type::Acknowledgement,
                        mid,
                        token,
                        Some(seq),
                        format,
                        &body,
                    );
                });
                for _ in 0..rng.range(2, 5) {
                    seq = (seq + 1) % OBSERVE_MODULUS;
                    server_mid = server_mid.wrapping_add(1);
                    let body = reading(rng, json);
                    let g = rng.range(500_000_000, 3_000_000_000);
                    s.datagram(Dir::ToClient, g, |o| {
                        content(
                            o,
                            Type::NonConfirmable,
                            server_mid,
                            token,
                            Some(seq),
                            format,
                            &body,
                        );
                    });
                }
                // The device is no longer interested: Reset to the last notification.
                let g = s.reply_gap(rng);
                s.datagram(Dir::ToServer, g, |o| {
                    message(o, Type::Reset, EMPTY, server_mid, &[], &[], b"");
                });
            }
        }
        gap = s.think_gap(rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_with_uri_path_matches_the_rfc_layout() {
        let mut out = Vec::new();
        // The request of RFC 7252 Appendix A: CON GET, MID 0x7d34, token 0x20,
        // Uri-Path "temperature" (delta 11, length 11 = 0xBB).
        message(
            &mut out,
            Type::Confirmable,
            GET,
            0x7d34,
            &[0x20],
            &[(URI_PATH, b"temperature")],
            b"",
        );
        let mut want = vec![0x41, 0x01, 0x7d, 0x34, 0x20, 0xBB];
        want.extend_from_slice(b"temperature");
        assert_eq!(out, want);
    }

    #[test]
    fn repeated_options_use_delta_zero_and_payload_marker() {
        let mut out = Vec::new();
        let options: [(u16, &[u8]); 3] =
            [(URI_PATH, b"a"), (URI_PATH, b"bc"), (CONTENT_FORMAT, &[])];
        message(
            &mut out,
            Type::Acknowledgement,
            CONTENT,
            1,
            &[],
            &options,
            b"22",
        );
        // 0x60: ver 1, type ACK (2), TKL 0; 0x45 = 2.05.
        assert_eq!(
            out,
            [
                0x60, 0x45, 0, 1, 0xB1, b'a', 0x02, b'b', b'c', 0x10, 0xFF, b'2', b'2'
            ]
        );
    }

    #[test]
    fn extended_delta_and_length_escapes() {
        let mut out = Vec::new();
        // Option 60 (Size1): delta 60 = 13 + 47; a 300-byte value: 14, 300 - 269 = 31.
        let value = [0u8; 300];
        message(
            &mut out,
            Type::NonConfirmable,
            CONTENT,
            2,
            &[],
            &[(60, &value)],
            b"",
        );
        assert_eq!(&out[4..8], &[0xDE, 47, 0, 31]);
        assert_eq!(out.len(), 8 + 300);
        assert_eq!(out[0], 0x50);
    }

    #[test]
    fn uint_values_drop_leading_zero_bytes() {
        let check = |v: u32, want: &[u8]| {
            let (b, n) = uint(v);
            assert_eq!(&b[..n], want, "{v}");
        };
        check(0, &[]);
        check(50, &[50]);
        check(0x1234, &[0x12, 0x34]);
        check(0x00AB_CDEF, &[0xAB, 0xCD, 0xEF]);
    }

    #[test]
    fn reset_is_an_empty_message() {
        let mut out = Vec::new();
        message(&mut out, Type::Reset, EMPTY, 0xBEEF, &[], &[], b"");
        // §4.1: an Empty message has code 0.00, TKL 0 and nothing after the MID.
        assert_eq!(out, [0x70, 0x00, 0xBE, 0xEF]);
    }
}
