//! Helpers shared by the spanwatch fuzz targets.
//!
//! A fuzz input drives a whole session, not only a parser: its first bytes
//! are a schedule that splits the rest into per-direction chunks and gaps,
//! the way TCP reassembly would hand them over.
//!
//! Input layout:
//!
//! ```text
//! byte 0        config   bit 0: tiny limits (every bound is hit quickly)
//!                        bit 1: do not call on_close at the end
//!                        bits 2-3: clock tick between steps (see Config::tick_nanos)
//!                        bits 4-6: piece length - 1 for the split replay (see Config::piece_len
//!                        and SPLIT_EDGE_BYTES)
//! byte 1        n        number of schedule entries, n % 33 (0..=32)
//! 2n bytes      entries  each: a = dir (bit 7: ToClient), gap (bit 6),
//!                        length high 6 bits; b = length low 8 bits
//! rest          payload  the stream bytes, consumed in schedule order
//! ```
//!
//! The schedule is applied cyclically until the payload is used up. A data
//! entry takes `min(length, remaining)` bytes; a gap entry reports `length`
//! missing bytes (`0x3FFF` means [`HUGE_GAP`]). With no entries the payload
//! is one client chunk. A full cycle that consumed nothing ends the schedule
//! with the rest of the payload as one client chunk, so every input
//! terminates.

#![forbid(unsafe_code)]

pub mod coap;
pub mod dhcp;
pub mod http;
pub mod mqtt;
pub mod telnet;

use spanwatch::capture::Timestamp;
use spanwatch::flow::Direction;
use spanwatch::proto::http::{HttpEvent, HttpSession};
use spanwatch::proto::mqtt::{MqttEvent, MqttSession};

/// Most schedule entries an input can carry.
pub const MAX_ENTRIES: usize = 32;
/// Length code of a gap entry that stands for [`HUGE_GAP`].
const HUGE_GAP_CODE: u16 = 0x3FFF;
/// A gap larger than any buffer, window or body length a session holds.
pub const HUGE_GAP: u64 = 1 << 40;
/// Most gaps reported for one input (bounds the work per input).
pub const MAX_GAPS: usize = 64;

/// Run options taken from the first byte.
#[derive(Clone, Copy, Debug)]
pub struct Config(u8);

impl Config {
    /// Use the target's tiny limits instead of the defaults.
    pub fn tiny_limits(self) -> bool {
        self.0 & 0b01 != 0
    }

    /// Finish with `on_close`.
    pub fn close(self) -> bool {
        self.0 & 0b10 == 0
    }

    /// Clock advance per step: 1 µs, 1 s, 100 s (past a CoAP NON lifetime)
    /// or none.
    pub fn tick_nanos(self) -> i64 {
        match (self.0 >> 2) & 0b11 {
            0 => 1_000,
            1 => Timestamp::NANOS_PER_SEC,
            2 => 100 * Timestamp::NANOS_PER_SEC,
            _ => 0,
        }
    }

    /// Piece length (1..=8) for replaying the edges of every data step split
    /// finer (see [`pieces`]): a session must report the same events for any
    /// split of a stream.
    pub fn piece_len(self) -> usize {
        1 + usize::from((self.0 >> 4) & 0b111)
    }
}

/// Bytes at each end of a data step that the split replay feeds in pieces
/// of [`Config::piece_len`]; the bytes between them go in one piece. Where a
/// step starts and ends is chosen by the input's schedule, so libFuzzer still
/// puts a fine split anywhere in the stream, while the calls per step stay
/// bounded (one call per byte of a long input dominated the run time under
/// AddressSanitizer).
pub const SPLIT_EDGE_BYTES: usize = 32;

/// `data` split for the finer replay: pieces of at most `piece` bytes over
/// its first and last [`SPLIT_EDGE_BYTES`], the middle as one piece (one
/// empty piece for empty data).
pub fn pieces(data: &[u8], piece: usize) -> impl Iterator<Item = &[u8]> {
    let empty = data.is_empty().then_some(data);
    let head_len = data.len().min(SPLIT_EDGE_BYTES);
    let (head, rest) = data.split_at(head_len);
    let (middle, tail) = rest.split_at(rest.len().saturating_sub(SPLIT_EDGE_BYTES));
    let piece = piece.max(1);
    head.chunks(piece)
        .chain((!middle.is_empty()).then_some(middle))
        .chain(tail.chunks(piece))
        .chain(empty)
}

/// One thing to tell a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    Data(Direction, &'a [u8]),
    Gap(Direction, u64),
}

/// A decoded fuzz input.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub config: Config,
    entries: &'a [u8],
    /// The stream bytes (everything after the schedule).
    pub payload: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn parse(data: &'a [u8]) -> Self {
        let (config, rest) = match data {
            [c, rest @ ..] => (*c, rest),
            [] => (0, data),
        };
        let (n, rest) = match rest {
            [n, rest @ ..] => (usize::from(*n) % (MAX_ENTRIES + 1), rest),
            [] => (0, rest),
        };
        let table = (2 * n).min(rest.len() / 2 * 2);
        let (entries, payload) = rest.split_at(table);
        Input {
            config: Config(config),
            entries,
            payload,
        }
    }

    /// The steps, in order.
    pub fn steps(&self) -> Steps<'a> {
        Steps {
            entries: self.entries,
            payload: self.payload,
            next: 0,
            gaps: 0,
            idle: 0,
        }
    }
}

/// Iterator over the steps of an [`Input`].
#[derive(Clone, Debug)]
pub struct Steps<'a> {
    entries: &'a [u8],
    payload: &'a [u8],
    next: usize,
    gaps: usize,
    /// Entries in a row that consumed no payload.
    idle: usize,
}

impl<'a> Steps<'a> {
    fn take(&mut self, len: usize) -> &'a [u8] {
        let (chunk, rest) = self.payload.split_at(len.min(self.payload.len()));
        self.payload = rest;
        chunk
    }
}

impl<'a> Iterator for Steps<'a> {
    type Item = Step<'a>;

    fn next(&mut self) -> Option<Step<'a>> {
        let count = self.entries.len() / 2;
        loop {
            let entry = self
                .entries
                .get(2 * self.next..2 * self.next + 2)
                .filter(|_| self.idle < count);
            let Some(&[a, b]) = entry else {
                // No schedule, or a whole cycle without progress.
                return (!self.payload.is_empty())
                    .then(|| Step::Data(Direction::ToServer, self.take(usize::MAX)));
            };
            self.next = (self.next + 1) % count;
            let dir = if a & 0x80 != 0 {
                Direction::ToClient
            } else {
                Direction::ToServer
            };
            let len = u16::from(a & 0x3F) << 8 | u16::from(b);
            if a & 0x40 != 0 {
                self.idle += 1;
                if self.gaps >= MAX_GAPS {
                    continue;
                }
                self.gaps += 1;
                let missing = if len == HUGE_GAP_CODE {
                    HUGE_GAP
                } else {
                    u64::from(len)
                };
                return Some(Step::Gap(dir, missing));
            }
            if self.payload.is_empty() {
                // Trailing gaps are still reported, data entries end it.
                return None;
            }
            let chunk = self.take(usize::from(len));
            self.idle = if chunk.is_empty() { self.idle + 1 } else { 0 };
            return Some(Step::Data(dir, chunk));
        }
    }
}

/// Packet timestamps for a run, starting at a fixed epoch.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    now: i64,
    tick: i64,
}

impl Clock {
    pub fn new(config: Config) -> Self {
        Clock {
            now: 1_700_000_000 * Timestamp::NANOS_PER_SEC,
            tick: config.tick_nanos(),
        }
    }

    /// The time of the next step.
    pub fn tick(&mut self) -> Timestamp {
        self.now = self.now.saturating_add(self.tick);
        Timestamp(self.now)
    }

    /// Moves the clock on by `secs` seconds.
    pub fn advance_secs(&mut self, secs: u64) {
        let nanos = i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(Timestamp::NANOS_PER_SEC);
        self.now = self.now.saturating_add(nanos);
    }
}

/// A TCP stream session as the dispatcher drives it: in-order data, gaps
/// and the close of the flow, each appending events to `out`.
pub trait StreamSession {
    type Event;
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut Vec<Self::Event>);
    fn gap(&mut self, ts: Timestamp, dir: Direction, missing: u64, out: &mut Vec<Self::Event>);
    fn close(&mut self, ts: Timestamp, out: &mut Vec<Self::Event>);
}

impl StreamSession for HttpSession {
    type Event = HttpEvent;
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut Vec<HttpEvent>) {
        self.on_data(ts, dir, data, out);
    }
    fn gap(&mut self, ts: Timestamp, dir: Direction, missing: u64, out: &mut Vec<HttpEvent>) {
        self.on_gap(ts, dir, missing, out);
    }
    fn close(&mut self, ts: Timestamp, out: &mut Vec<HttpEvent>) {
        self.on_close(ts, out);
    }
}

impl StreamSession for MqttSession {
    type Event = MqttEvent;
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut Vec<MqttEvent>) {
        self.on_data(ts, dir, data, out);
    }
    fn gap(&mut self, ts: Timestamp, dir: Direction, missing: u64, out: &mut Vec<MqttEvent>) {
        self.on_gap(ts, dir, missing, out);
    }
    fn close(&mut self, ts: Timestamp, out: &mut Vec<MqttEvent>) {
        self.on_close(ts, out);
    }
}

/// Runs the schedule of `input` through `session` and returns its events;
/// with `piece`, every data step is fed in pieces of that many bytes (same
/// timestamp) instead of whole.
pub fn replay<S: StreamSession>(
    session: &mut S,
    input: &Input<'_>,
    piece: Option<usize>,
) -> Vec<S::Event> {
    let mut clock = Clock::new(input.config);
    let mut out = Vec::new();
    for step in input.steps() {
        let ts = clock.tick();
        match (step, piece) {
            (Step::Data(dir, data), None) => session.data(ts, dir, data, &mut out),
            (Step::Data(dir, data), Some(n)) => {
                for p in pieces(data, n) {
                    session.data(ts, dir, p, &mut out);
                }
            }
            (Step::Gap(dir, missing), _) => session.gap(ts, dir, missing, &mut out),
        }
    }
    if input.config.close() {
        session.close(clock.tick(), &mut out);
    }
    out
}

/// Panics when a capped string is longer than its cap in bytes.
pub fn assert_bytes_capped(s: &str, cap: usize, what: &str) {
    assert!(
        s.len() <= cap,
        "{what}: {} bytes, cap {cap}: {s:?}",
        s.len()
    );
}

/// Panics when a string kept from at most `cap` input bytes (decoded with
/// replacement characters) has more than `cap` characters.
pub fn assert_chars_capped(s: &str, cap: usize, what: &str) {
    let chars = s.chars().count();
    assert!(chars <= cap, "{what}: {chars} chars, cap {cap}: {s:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Direction = Direction::ToServer;
    const S: Direction = Direction::ToClient;

    fn steps(data: &[u8]) -> Vec<Step<'_>> {
        Input::parse(data).steps().collect()
    }

    #[test]
    fn no_schedule_is_one_client_chunk() {
        assert_eq!(steps(&[0, 0, b'a', b'b']), [Step::Data(C, b"ab")]);
        assert!(steps(&[]).is_empty());
        assert!(steps(&[0]).is_empty());
    }

    #[test]
    fn entries_split_cyclically_with_gaps() {
        // Two entries, used in turn: client data of 2 bytes, server gap of 5.
        let data = [0, 2, 0x00, 2, 0xC0, 5, b'a', b'b', b'c', b'd', b'e'];
        assert_eq!(
            steps(&data),
            [
                Step::Data(C, b"ab"),
                Step::Gap(S, 5),
                Step::Data(C, b"cd"),
                Step::Gap(S, 5),
                Step::Data(C, b"e"),
                Step::Gap(S, 5),
            ]
        );
    }

    #[test]
    fn huge_gap_code_and_stuck_schedule() {
        // Only a zero-length data entry and a huge gap: the first cycle
        // makes no progress, so the rest arrives as one client chunk.
        let data = [0, 2, 0x80, 0, 0x7F, 0xFF, b'x', b'y'];
        assert_eq!(
            steps(&data),
            [
                Step::Data(S, b""),
                Step::Gap(C, HUGE_GAP),
                Step::Data(C, b"xy"),
            ]
        );
    }

    #[test]
    fn lone_gap_entry_flushes_after_one_cycle() {
        let s = steps(&[0, 1, 0x40, 1, b'z']);
        assert_eq!(s, [Step::Gap(C, 1), Step::Data(C, b"z")]);
    }

    #[test]
    fn gaps_are_bounded() {
        // Client byte, server gap of 1, repeated over 100 payload bytes.
        let mut data = vec![0, 2, 0x00, 1, 0xC0, 1];
        data.extend_from_slice(&[b'q'; 100]);
        let s = steps(&data);
        let gaps = s.iter().filter(|st| matches!(st, Step::Gap(..))).count();
        let bytes: usize = s
            .iter()
            .map(|st| match st {
                Step::Data(_, d) => d.len(),
                Step::Gap(..) => 0,
            })
            .sum();
        assert_eq!(gaps, MAX_GAPS);
        assert_eq!(bytes, 100);
    }

    #[test]
    fn truncated_table_uses_whole_entries_only() {
        // n = 3 but only 3 bytes follow: one entry, the odd byte is payload.
        assert_eq!(steps(&[0, 3, 0x00, 1, 0x07]), [Step::Data(C, &[0x07])]);
    }

    #[test]
    fn config_bits() {
        let c = Input::parse(&[0b1011]).config;
        assert!(c.tiny_limits());
        assert!(!c.close());
        assert_eq!(c.tick_nanos(), 100 * Timestamp::NANOS_PER_SEC);
        assert_eq!(c.piece_len(), 1);
        let c = Input::parse(&[0b0111_1100]).config;
        assert!(!c.tiny_limits());
        assert!(c.close());
        assert_eq!(c.tick_nanos(), 0);
        assert_eq!(c.piece_len(), 8);
    }

    #[test]
    fn pieces_cover_the_data() {
        let p: Vec<&[u8]> = pieces(b"abcde", 2).collect();
        assert_eq!(p, [&b"ab"[..], b"cd", b"e"]);
        let p: Vec<&[u8]> = pieces(b"", 3).collect();
        assert_eq!(p, [&b""[..]]);
    }

    #[test]
    fn pieces_split_only_the_edges_of_a_long_step() {
        // 32 + 5 + 32 bytes: 'a's, then "MIDDL", then 'z's.
        let mut data = vec![b'a'; SPLIT_EDGE_BYTES];
        data.extend_from_slice(b"MIDDL");
        data.extend_from_slice(&[b'z'; SPLIT_EDGE_BYTES]);
        let p: Vec<&[u8]> = pieces(&data, 8).collect();
        let mut expected: Vec<&[u8]> = vec![&[b'a'; 8]; 4];
        expected.push(b"MIDDL");
        expected.extend([&[b'z'; 8][..]; 4]);
        assert_eq!(p, expected);
        // Between one and two edges long: no middle piece, the tail
        // starts where the head ends.
        let p: Vec<&[u8]> = pieces(&data[..40], 16).collect();
        assert_eq!(p, [&data[..16], &data[16..32], &data[32..40]]);
    }
}
