//! MQTT data representation: integers, Variable Byte Integers, UTF-8 strings
//! and binary data (OASIS MQTT 3.1.1 §1.5, MQTT 5.0 §1.5).
//!
//! [`Reader`] is a bounds-checked cursor over a packet body. It knows two
//! lengths: the bytes it holds and the logical length of the whole body (the
//! Remaining Length minus the variable header already read). Running past the
//! logical length means the packet is malformed; running past the held bytes
//! only means more input is needed. That split gives the parser its three
//! outcomes (message, incomplete, typed error).

use std::borrow::Cow;

/// A Variable Byte Integer uses at most four bytes (MQTT 5.0 §1.5.5,
/// MQTT 3.1.1 §2.2.3).
pub const MAX_VBI_BYTES: usize = 4;

/// Largest value a four-byte Variable Byte Integer can carry (268,435,455).
pub const MAX_VBI_VALUE: u32 = 0x0FFF_FFFF;

/// Outcome of a parse step that may need more input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// The value was decoded.
    Done(T),
    /// More input is needed: the input must be at least this many bytes long
    /// (counted from the start of the slice that was given) to make progress.
    Incomplete(usize),
}

/// A decoded Variable Byte Integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vbi {
    pub value: u32,
    /// Number of bytes the encoding used (1..=4).
    pub len: usize,
    /// False when the value was encoded with more bytes than needed, which
    /// MQTT 5.0 §1.5.5 forbids [MQTT-1.5.5-1] (e.g. `0x80 0x00` for 0).
    pub minimal: bool,
}

/// The fifth byte of a Variable Byte Integer would be needed: the encoding is
/// malformed (MQTT 5.0 §1.5.5, MQTT 3.1.1 §2.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VbiTooLong;

/// Decode a Variable Byte Integer from the start of `input`
/// (MQTT 5.0 §1.5.5 / MQTT 3.1.1 §2.2.3): seven value bits per byte, least
/// significant group first, bit 7 set when another byte follows.
pub fn decode_vbi(input: &[u8]) -> Result<Status<Vbi>, VbiTooLong> {
    let mut value: u32 = 0;
    for i in 0..MAX_VBI_BYTES {
        let Some(&byte) = input.get(i) else {
            return Ok(Status::Incomplete(i + 1));
        };
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let len = i + 1;
            return Ok(Status::Done(Vbi {
                value,
                len,
                minimal: len == 1 || byte != 0,
            }));
        }
    }
    Err(VbiTooLong)
}

/// Number of bytes the minimal Variable Byte Integer encoding of `value` takes.
pub fn vbi_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// A length-prefixed MQTT string as it appeared on the wire (MQTT 5.0 §1.5.4,
/// MQTT 3.1.1 §1.5.3). The bytes are kept as they are so a malformed string is
/// still evidence; [`MqttStr::is_well_formed`] tells whether it obeys the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MqttStr<'a>(&'a [u8]);

impl<'a> MqttStr<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        MqttStr(bytes)
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The string when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.0).ok()
    }

    /// Well-formed UTF-8 without U+0000 (MQTT 5.0 §1.5.4 [MQTT-1.5.4-1],
    /// [MQTT-1.5.4-2]; MQTT 3.1.1 §1.5.3 [MQTT-1.5.3-1], [MQTT-1.5.3-2]).
    /// Rust's decoder already rejects the UTF-16 surrogate range.
    pub fn is_well_formed(&self) -> bool {
        // Nearly every string on the wire is ASCII: one pass (without early
        // exit, so it vectorises) settles it.
        let ascii_without_nul = self
            .0
            .iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(1) < 0x7F));
        ascii_without_nul || (!self.0.contains(&0) && self.as_str().is_some())
    }

    /// At most `max_bytes` bytes of the string, invalid sequences replaced,
    /// cut on a character boundary. Borrowed when the string is valid UTF-8.
    pub fn capped(&self, max_bytes: usize) -> Cow<'a, str> {
        match self.as_str() {
            Some(s) => Cow::Borrowed(cut(s, max_bytes)),
            None => Cow::Owned(cut(&String::from_utf8_lossy(self.0), max_bytes).to_owned()),
        }
    }

    /// An owned copy of at most `max_bytes` bytes, invalid sequences replaced,
    /// cut on a character boundary.
    pub fn to_capped_string(&self, max_bytes: usize) -> String {
        self.capped(max_bytes).into_owned()
    }
}

/// The longest prefix of `s` of at most `max_bytes` bytes that ends on a
/// character boundary.
fn cut(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Why a read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadFail {
    /// The field runs past the end of the packet: malformed. Carries what was
    /// being read and the body offset where it started.
    Malformed(&'static str, usize),
    /// The field runs past the bytes received so far: the body must be at
    /// least this many bytes long.
    Incomplete(usize),
}

pub(crate) type ReadResult<T> = Result<T, ReadFail>;

/// Bounds-checked cursor over (a prefix of) a packet body.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Logical end of the body (the packet's full length); `buf.len() <= limit`.
    limit: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a complete body.
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Reader {
            buf: body,
            pos: 0,
            limit: body.len(),
        }
    }

    /// A reader over the first bytes of a body whose full length is `limit`.
    pub(crate) fn with_limit(prefix: &'a [u8], limit: usize) -> Self {
        Reader {
            buf: prefix,
            pos: 0,
            limit: limit.max(prefix.len()),
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left before the logical end of the body.
    pub(crate) fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.pos)
    }

    pub(crate) fn at_end(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes received between the cursor and the logical end.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Take `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> ReadResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(ReadFail::Malformed(what, self.pos))?;
        if end > self.limit {
            return Err(ReadFail::Malformed(what, self.pos));
        }
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(ReadFail::Incomplete(end))?;
        self.pos = end;
        Ok(bytes)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> ReadResult<u8> {
        let b = self.take(1, what)?;
        Ok(b.first().copied().unwrap_or_default())
    }

    /// Two Byte Integer, big-endian (MQTT 5.0 §1.5.2).
    pub(crate) fn u16(&mut self, what: &'static str) -> ReadResult<u16> {
        let b = self.take(2, what)?;
        match b {
            [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
            _ => Err(ReadFail::Malformed(what, self.pos)),
        }
    }

    /// Four Byte Integer, big-endian (MQTT 5.0 §1.5.3).
    pub(crate) fn u32(&mut self, what: &'static str) -> ReadResult<u32> {
        let b = self.take(4, what)?;
        match b {
            [a, b2, c, d] => Ok(u32::from_be_bytes([*a, *b2, *c, *d])),
            _ => Err(ReadFail::Malformed(what, self.pos)),
        }
    }

    /// Variable Byte Integer (MQTT 5.0 §1.5.5).
    pub(crate) fn vbi(&mut self, what: &'static str) -> ReadResult<Vbi> {
        let start = self.pos;
        match decode_vbi(self.rest()) {
            Ok(Status::Done(v)) => {
                self.take(v.len, what)?;
                Ok(v)
            }
            Ok(Status::Incomplete(n)) => {
                let end = start.saturating_add(n);
                if end > self.limit {
                    Err(ReadFail::Malformed(what, start))
                } else {
                    Err(ReadFail::Incomplete(end))
                }
            }
            Err(VbiTooLong) => Err(ReadFail::Malformed(what, start)),
        }
    }

    /// UTF-8 Encoded String: Two Byte Integer length then the bytes
    /// (MQTT 5.0 §1.5.4, MQTT 3.1.1 §1.5.3).
    pub(crate) fn string(&mut self, what: &'static str) -> ReadResult<MqttStr<'a>> {
        let start = self.pos;
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
            .map(MqttStr)
            .map_err(|e| match e {
                ReadFail::Malformed(w, _) => ReadFail::Malformed(w, start),
                other => other,
            })
    }

    /// Binary Data: Two Byte Integer length then the bytes (MQTT 5.0 §1.5.6).
    pub(crate) fn binary(&mut self, what: &'static str) -> ReadResult<&'a [u8]> {
        let start = self.pos;
        let len = self.u16(what)?;
        self.take(usize::from(len), what).map_err(|e| match e {
            ReadFail::Malformed(w, _) => ReadFail::Malformed(w, start),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // MQTT 5.0 §1.5.5 Table 1-1 / MQTT 3.1.1 §2.2.3 Table 2.4: the boundary
    // values of each encoding length.
    #[test]
    fn vbi_table_boundaries() {
        let cases: &[(&[u8], u32)] = &[
            (&[0x00], 0),
            (&[0x7F], 127),
            (&[0x80, 0x01], 128),
            (&[0xFF, 0x7F], 16_383),
            (&[0x80, 0x80, 0x01], 16_384),
            (&[0xFF, 0xFF, 0x7F], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
            (&[0xFF, 0xFF, 0xFF, 0x7F], 268_435_455),
        ];
        for (bytes, value) in cases {
            let got = decode_vbi(bytes);
            assert_eq!(
                got,
                Ok(Status::Done(Vbi {
                    value: *value,
                    len: bytes.len(),
                    minimal: true
                })),
                "{bytes:02x?}"
            );
            assert_eq!(vbi_len(*value), bytes.len());
        }
    }

    #[test]
    fn vbi_fifth_byte_is_malformed() {
        assert_eq!(decode_vbi(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]), Err(VbiTooLong));
        assert_eq!(decode_vbi(&[0x80, 0x80, 0x80, 0x80]), Err(VbiTooLong));
    }

    #[test]
    fn vbi_incomplete_says_how_much() {
        assert_eq!(decode_vbi(&[]), Ok(Status::Incomplete(1)));
        assert_eq!(decode_vbi(&[0x80]), Ok(Status::Incomplete(2)));
        assert_eq!(decode_vbi(&[0x80, 0x80, 0x80]), Ok(Status::Incomplete(4)));
    }

    // [MQTT-1.5.5-1]: 0x80 0x00 encodes 0 with two bytes.
    #[test]
    fn vbi_non_minimal_is_flagged() {
        assert_eq!(
            decode_vbi(&[0x80, 0x00]),
            Ok(Status::Done(Vbi {
                value: 0,
                len: 2,
                minimal: false
            }))
        );
        assert_eq!(
            decode_vbi(&[0x81, 0x80, 0x00]),
            Ok(Status::Done(Vbi {
                value: 1,
                len: 3,
                minimal: false
            }))
        );
    }

    // MQTT 3.1.1 §1.5.3 Figure 1.1 / MQTT 5.0 §1.5.4: "A" (U+0041) then
    // U+2A6D4 as F0 AA 9B 94, length 5.
    #[test]
    fn string_example_from_spec() {
        let bytes = [0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94];
        let mut r = Reader::new(&bytes);
        let s = r.string("s").expect("string");
        assert_eq!(s.as_str(), Some("A\u{2A6D4}"));
        assert!(s.is_well_formed());
        assert!(r.at_end());
    }

    #[test]
    fn string_rules() {
        assert!(!MqttStr::new(b"a\0b").is_well_formed());
        assert!(!MqttStr::new(&[0xC3, 0x28]).is_well_formed());
        // U+D800 encoded as ED A0 80 is not UTF-8 [MQTT-1.5.4-1].
        assert!(!MqttStr::new(&[0xED, 0xA0, 0x80]).is_well_formed());
        assert!(!MqttStr::new(b"\0").is_well_formed());
        assert!(!MqttStr::new("é\0".as_bytes()).is_well_formed());
        assert!(MqttStr::new(b"").is_well_formed());
        assert!(MqttStr::new(b"a/b\x7f").is_well_formed());
        assert!(MqttStr::new("a/é".as_bytes()).is_well_formed());
    }

    #[test]
    fn capped_string_cuts_on_char_boundary() {
        let s = MqttStr::new("aé".as_bytes());
        assert_eq!(s.to_capped_string(2), "a");
        assert_eq!(s.to_capped_string(3), "aé");
        assert_eq!(MqttStr::new(b"abcdef").to_capped_string(4), "abcd");
        // Invalid sequences are replaced before the cut: "a", U+FFFD (3
        // bytes), "b".
        let bad = MqttStr::new(&[b'a', 0xC3, b'b']);
        assert_eq!(bad.to_capped_string(10), "a\u{FFFD}b");
        assert_eq!(bad.to_capped_string(3), "a");
        assert_eq!(bad.to_capped_string(4), "a\u{FFFD}");
        assert!(matches!(s.capped(3), Cow::Borrowed("aé")));
    }

    #[test]
    fn reader_separates_incomplete_from_malformed() {
        // Body of 6 bytes of which 3 arrived: a 2-byte length of 4 then data.
        let prefix = [0x00, 0x04, b'a'];
        let mut r = Reader::with_limit(&prefix, 6);
        assert_eq!(r.string("topic"), Err(ReadFail::Incomplete(6)));
        let mut r = Reader::with_limit(&prefix, 5);
        assert_eq!(r.string("topic"), Err(ReadFail::Malformed("topic", 0)));
    }
}
