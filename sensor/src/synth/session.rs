//! One synthetic conversation (a TCP connection or a UDP exchange), laid out
//! as a packet script before the scheduler replays it into the capture.
//!
//! The application bytes each side sends are appended to that side's stream;
//! packets refer to byte ranges of the streams, so the streams are also the
//! ground truth for reassembly tests. TCP follows RFC 9293: the SYN and the FIN
//! each take one sequence number, every segment after the SYN carries ACK with
//! the cumulative number of bytes the peer has sent (capture losses do not
//! change what the peer acknowledges).

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;

use super::rng::SplitMix64;
use super::{Impairments, StreamTruth};

/// TCP flag bits (RFC 9293 §3.1).
pub(super) const FIN: u8 = 0x01;
pub(super) const SYN: u8 = 0x02;
pub(super) const RST: u8 = 0x04;
pub(super) const PSH: u8 = 0x08;
pub(super) const ACK: u8 = 0x10;

/// MSS values announced by clients (lwIP-style stacks announce 536).
const CLIENT_MSS: [u16; 4] = [1460, 1460, 1400, 536];
/// MSS announced by the servers on the segment.
const SERVER_MSS: u16 = 1460;
/// How far ahead (in packets) a reordered segment looks for its swap partner.
const REORDER_WINDOW: usize = 16;
/// Most bytes an overlapping segment repeats from earlier data.
const MAX_OVERLAP: u32 = 48;

/// Direction of a packet: from the client (the device) or from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dir {
    ToServer,
    ToClient,
}

impl Dir {
    pub(super) fn idx(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }

    pub(super) fn peer(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    Tcp,
    Udp,
}

/// One side of a conversation.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Endpoint {
    pub mac: [u8; 6],
    pub ip: [u8; 4],
    pub port: u16,
}

impl Endpoint {
    fn socket(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::from(self.ip), self.port))
    }
}

/// One scripted packet.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pkt {
    /// Delay after the session's previous packet, in nanoseconds.
    pub gap_ns: u64,
    pub dir: Dir,
    /// TCP flags (unused for UDP).
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// Payload: `start..end` of the sender's stream.
    pub start: u32,
    pub end: u32,
    /// First byte this packet carries for the first time (`start` unless an
    /// overlap extended it backwards).
    pub novel: u32,
    /// Carries only bytes another packet of the script carries first.
    pub dup: bool,
    /// Never written to the capture (the `drop` impairment).
    pub dropped: bool,
    /// Already chosen by an impairment (each packet gets at most one).
    pub touched: bool,
    /// SYN / SYN-ACK carrying the MSS option.
    pub mss_option: bool,
}

impl Pkt {
    fn is_data(&self) -> bool {
        self.end > self.start
    }
}

/// A conversation's addresses, TCP parameters, streams and packet script.
///
/// Slots of the scheduler reuse one `Session` each, so its buffers keep their
/// capacity and memory stays bounded by the largest session ever scripted.
#[derive(Debug)]
pub(super) struct Session {
    pub transport: Transport,
    pub client: Endpoint,
    pub server: Endpoint,
    pub ttl: [u8; 2],
    pub window: [u16; 2],
    /// IPv4 identification counters, advanced per emitted packet.
    pub ip_id: [u16; 2],
    /// MSS each side announced (limits what its peer sends).
    pub mss: [u16; 2],
    isn: [u32; 2],
    streams: [Vec<u8>; 2],
    /// Bytes of each stream already cut into segments.
    sent: [u32; 2],
    fin_sent: [bool; 2],
    /// The side owes its peer an ACK for data not yet acknowledged.
    owes_ack: [bool; 2],
    rtt_ns: u64,
    pub pkts: Vec<Pkt>,
    /// Index of the next packet to replay.
    pub cursor: usize,
}

impl Session {
    pub(super) fn new() -> Self {
        Session {
            transport: Transport::Tcp,
            client: Endpoint::default(),
            server: Endpoint::default(),
            ttl: [64, 64],
            window: [0, 0],
            ip_id: [0, 0],
            mss: [SERVER_MSS, SERVER_MSS],
            isn: [0, 0],
            streams: [Vec::new(), Vec::new()],
            sent: [0, 0],
            fin_sent: [false, false],
            owes_ack: [false, false],
            rtt_ns: 0,
            pkts: Vec::new(),
            cursor: 0,
        }
    }

    /// Start a new conversation, keeping the buffers' capacity.
    pub(super) fn reset(
        &mut self,
        transport: Transport,
        client: Endpoint,
        server: Endpoint,
        rng: &mut SplitMix64,
    ) {
        self.transport = transport;
        self.client = client;
        self.server = server;
        self.ttl = [64, rng.pick(&[64, 64, 255])];
        self.window = [
            rng.pick(&[5840, 8192, 29_200, 64_240]),
            rng.pick(&[29_200, 64_240, 65_535]),
        ];
        self.ip_id = [rng.next_u64() as u16, rng.next_u64() as u16];
        self.mss = [rng.pick(&CLIENT_MSS), SERVER_MSS];
        self.isn = [rng.next_u64() as u32, rng.next_u64() as u32];
        for s in &mut self.streams {
            s.clear();
        }
        self.sent = [0, 0];
        self.fin_sent = [false, false];
        self.owes_ack = [false, false];
        self.rtt_ns = rng.range(150_000, 3_000_000);
        self.pkts.clear();
        self.cursor = 0;
    }

    pub(super) fn stream(&self, dir: Dir) -> &[u8] {
        match dir {
            Dir::ToServer => &self.streams[0],
            Dir::ToClient => &self.streams[1],
        }
    }

    pub(super) fn endpoints(&self, dir: Dir) -> (&Endpoint, &Endpoint) {
        match dir {
            Dir::ToServer => (&self.client, &self.server),
            Dir::ToClient => (&self.server, &self.client),
        }
    }

    /// The peer's answer delay: half a round trip plus processing time.
    pub(super) fn reply_gap(&self, rng: &mut SplitMix64) -> u64 {
        self.rtt_ns / 2 + rng.range(30_000, 1_500_000)
    }

    /// A device's pause between application messages.
    pub(super) fn think_gap(&self, rng: &mut SplitMix64) -> u64 {
        rng.range(5_000_000, 400_000_000)
    }

    /// Back-to-back segments of one write.
    fn burst_gap(rng: &mut SplitMix64) -> u64 {
        rng.range(12_000, 120_000)
    }

    /// Sequence number of the next byte (or FIN) `dir` sends.
    fn next_seq(&self, dir: Dir) -> u32 {
        let d = dir.idx();
        self.isn[d]
            .wrapping_add(1)
            .wrapping_add(self.sent[d])
            .wrapping_add(u32::from(self.fin_sent[d]))
    }

    fn push(&mut self, gap_ns: u64, dir: Dir, flags: u8, seq: u32, range: Range<u32>) {
        let ack = if flags & ACK != 0 {
            self.next_seq(dir.peer())
        } else {
            0
        };
        self.pkts.push(Pkt {
            gap_ns,
            dir,
            flags,
            seq,
            ack,
            start: range.start,
            end: range.end,
            novel: range.start,
            dup: false,
            dropped: false,
            touched: false,
            mss_option: flags & SYN != 0,
        });
    }

    fn pure_ack(&mut self, gap_ns: u64, dir: Dir) {
        let seq = self.next_seq(dir);
        let at = self.sent[dir.idx()];
        self.push(gap_ns, dir, ACK, seq, at..at);
        self.owes_ack[dir.idx()] = false;
    }

    /// Three-way handshake (RFC 9293 §3.5), MSS option on SYN and SYN-ACK.
    pub(super) fn open(&mut self, rng: &mut SplitMix64) {
        self.push(0, Dir::ToServer, SYN, self.isn[0], 0..0);
        let gap = self.reply_gap(rng);
        self.push(gap, Dir::ToClient, SYN | ACK, self.isn[1], 0..0);
        let gap = self.rtt_ns / 2;
        self.push(gap, Dir::ToServer, ACK, self.isn[0].wrapping_add(1), 0..0);
    }

    /// `dir` writes what `write` appends, `gap_ns` after the previous packet:
    /// cut into segments of at most the peer's MSS, PSH on the last one, the
    /// peer ACKing every second full segment (RFC 9293 §3.8.6.3, RFC 1122).
    pub(super) fn send(
        &mut self,
        rng: &mut SplitMix64,
        dir: Dir,
        gap_ns: u64,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let d = dir.idx();
        let peer = dir.peer();
        let start = self.sent[d];
        let stream = &mut self.streams[d];
        write(stream);
        let end = u32::try_from(stream.len()).unwrap_or(u32::MAX);
        if end <= start {
            return;
        }
        let mut gap = gap_ns;
        if self.owes_ack[peer.idx()] {
            // A delayed ACK for `dir`'s previous write comes first.
            let ack_gap = self.reply_gap(rng).min(gap_ns);
            self.pure_ack(ack_gap, peer);
            gap = gap_ns - ack_gap;
        }
        self.owes_ack[d] = false;
        let mss = u32::from(self.mss[peer.idx()]).max(1);
        let mut off = start;
        let mut segments = 0u32;
        while off < end {
            let seg_end = end.min(off.saturating_add(mss));
            let flags = if seg_end == end { ACK | PSH } else { ACK };
            let seq = self.next_seq(dir);
            self.push(gap, dir, flags, seq, off..seg_end);
            self.sent[d] = seg_end;
            segments += 1;
            off = seg_end;
            gap = Self::burst_gap(rng);
            if segments & 1 == 0 && off < end {
                let g = Self::burst_gap(rng);
                self.pure_ack(g, peer);
            }
        }
        self.owes_ack[peer.idx()] = true;
    }

    /// One UDP datagram holding what `write` appends.
    pub(super) fn datagram(&mut self, dir: Dir, gap_ns: u64, write: impl FnOnce(&mut Vec<u8>)) {
        let d = dir.idx();
        let stream = &mut self.streams[d];
        let start = u32::try_from(stream.len()).unwrap_or(u32::MAX);
        write(stream);
        let end = u32::try_from(stream.len()).unwrap_or(u32::MAX);
        self.sent[d] = end;
        self.push(gap_ns, dir, 0, 0, start..end);
    }

    /// Orderly release started by `initiator` (RFC 9293 §3.6): FIN, the peer's
    /// FIN (sometimes after a separate ACK), the initiator's last ACK.
    pub(super) fn close(&mut self, rng: &mut SplitMix64, initiator: Dir, gap_ns: u64) {
        let peer = initiator.peer();
        self.owes_ack = [false, false];
        let seq = self.next_seq(initiator);
        self.push(gap_ns, initiator, FIN | ACK, seq, 0..0);
        self.fin_sent[initiator.idx()] = true;
        let gap = self.reply_gap(rng);
        if rng.chance(300) {
            self.pure_ack(gap, peer);
            let gap = rng.range(50_000, 5_000_000);
            let seq = self.next_seq(peer);
            self.push(gap, peer, FIN | ACK, seq, 0..0);
        } else {
            let seq = self.next_seq(peer);
            self.push(gap, peer, FIN | ACK, seq, 0..0);
        }
        self.fin_sent[peer.idx()] = true;
        let gap = self.rtt_ns / 2;
        self.pure_ack(gap, initiator);
    }

    /// Abortive close: `dir` sends RST|ACK (RFC 9293 §3.5.2).
    pub(super) fn abort(&mut self, dir: Dir, gap_ns: u64) {
        let seq = self.next_seq(dir);
        self.push(gap_ns, dir, RST | ACK, seq, 0..0);
    }

    /// Apply capture impairments to the TCP data segments of the script.
    ///
    /// One draw per data segment picks at most one impairment; the rates are
    /// cumulative slices of that draw (drop, retransmit, overlap, reorder), so
    /// each occurs at its requested rate as long as they sum to at most 1000.
    /// A segment that cannot take the chosen impairment (no earlier data to
    /// overlap, no later segment to swap with) is left alone.
    pub(super) fn impair(&mut self, imp: &Impairments, rng: &mut SplitMix64) {
        if self.transport != Transport::Tcp || imp.is_none() {
            return;
        }
        let drop = u64::from(imp.drop_permille).min(1000);
        let retransmit = (drop + u64::from(imp.retransmit_permille)).min(1000);
        let overlap = (retransmit + u64::from(imp.overlap_permille)).min(1000);
        let reorder = (overlap + u64::from(imp.reorder_permille)).min(1000);
        let mut i = 0;
        while let Some(&p) = self.pkts.get(i) {
            if p.is_data() && !p.touched && !p.dup {
                let r = rng.below(1000);
                if r < drop {
                    self.pkts[i].dropped = true;
                    self.pkts[i].touched = true;
                } else if r < retransmit {
                    self.retransmit(i, rng);
                } else if r < overlap {
                    self.overlap(i, rng);
                } else if r < reorder {
                    self.reorder(i);
                }
            }
            i += 1;
        }
    }

    /// Send packet `i` again, one to three packets later, byte for byte.
    fn retransmit(&mut self, i: usize, rng: &mut SplitMix64) {
        let Some(p) = self.pkts.get_mut(i) else {
            return;
        };
        p.touched = true;
        let mut copy = *p;
        copy.dup = true;
        copy.novel = copy.end;
        copy.gap_ns = rng.range(200_000, 20_000_000);
        let at = (i + 1 + rng.below(3) as usize).min(self.pkts.len());
        self.pkts.insert(at, copy);
    }

    /// Make packet `i` repeat the tail of the previous segment of its direction
    /// with the same bytes: by starting earlier when that still fits the MSS,
    /// else by a later extra segment straddling the boundary between the two.
    fn overlap(&mut self, i: usize, rng: &mut SplitMix64) {
        let Some(&p) = self.pkts.get(i) else {
            return;
        };
        let prev = self
            .pkts
            .iter()
            .find(|q| q.dir == p.dir && !q.dup && q.is_data() && q.end == p.start);
        let Some(prev) = prev.filter(|q| !q.dropped) else {
            return;
        };
        let k = 1 + rng.below(u64::from((prev.end - prev.start).min(MAX_OVERLAP))) as u32;
        let len = p.end - p.start;
        let mss = u32::from(self.mss[p.dir.peer().idx()]);
        if len + k <= mss {
            if let Some(q) = self.pkts.get_mut(i) {
                q.start -= k;
                q.seq = q.seq.wrapping_sub(k);
                q.touched = true;
            }
        } else {
            let m = 1 + rng.below(u64::from(len.saturating_sub(k).max(1))) as u32;
            let mut extra = p;
            extra.start = p.start - k;
            extra.end = p.start + m.min(len);
            extra.seq = p.seq.wrapping_sub(k);
            extra.novel = extra.end;
            extra.dup = true;
            extra.touched = true;
            extra.flags = ACK;
            extra.gap_ns = rng.range(200_000, 20_000_000);
            self.pkts[i].touched = true;
            self.pkts.insert(i + 1, extra);
        }
    }

    /// Swap packet `i` with the next data segment of the same direction
    /// (timing stays with the positions, so timestamps remain increasing).
    fn reorder(&mut self, i: usize) {
        let Some(&p) = self.pkts.get(i) else {
            return;
        };
        let limit = (i + 1 + REORDER_WINDOW).min(self.pkts.len());
        let partner = (i + 1..limit).find(|&j| {
            self.pkts.get(j).is_some_and(|q| {
                q.dir == p.dir && q.is_data() && !q.dup && !q.touched && !q.dropped
            })
        });
        let Some(j) = partner else {
            return;
        };
        let (gi, gj) = (self.pkts[i].gap_ns, self.pkts[j].gap_ns);
        self.pkts.swap(i, j);
        self.pkts[i].gap_ns = gi;
        self.pkts[j].gap_ns = gj;
        self.pkts[i].touched = true;
        self.pkts[j].touched = true;
    }

    /// Ground truth for a TCP session whose first `cursor` packets were
    /// replayed: each direction's stream up to the first byte not yet sent
    /// (or dropped), and the dropped ranges within it.
    pub(super) fn truth(&self) -> Option<StreamTruth> {
        if self.transport != Transport::Tcp || self.cursor == 0 {
            return None;
        }
        let done = self.pkts.get(..self.cursor).unwrap_or(&self.pkts);
        let pending = self.pkts.get(self.cursor..).unwrap_or(&[]);
        let part = |dir: Dir| {
            let stream = self.stream(dir);
            let total = u32::try_from(stream.len()).unwrap_or(u32::MAX);
            let prefix = pending
                .iter()
                .filter(|p| p.dir == dir && p.is_data() && !p.dup)
                .map(|p| p.novel)
                .min()
                .unwrap_or(total)
                .min(total);
            let mut dropped: Vec<Range<u64>> = done
                .iter()
                .filter(|p| p.dir == dir && p.dropped && p.start < prefix)
                .map(|p| u64::from(p.start)..u64::from(p.end.min(prefix)))
                .collect();
            dropped.sort_by_key(|r| r.start);
            let mut merged: Vec<Range<u64>> = Vec::with_capacity(dropped.len());
            for r in dropped {
                match merged.last_mut() {
                    Some(last) if last.end == r.start => last.end = r.end,
                    _ => merged.push(r),
                }
            }
            let bytes = stream.get(..prefix as usize).unwrap_or(stream).to_vec();
            (bytes, merged)
        };
        let (to_server, dropped_to_server) = part(Dir::ToServer);
        let (to_client, dropped_to_client) = part(Dir::ToClient);
        Some(StreamTruth {
            client: self.client.socket(),
            server: self.server.socket(),
            to_server,
            to_client,
            dropped_to_server,
            dropped_to_client,
            complete: self.cursor >= self.pkts.len(),
        })
    }
}

#[cfg(test)]
impl Session {
    /// Capacity of the session's buffers in bytes.
    pub(super) fn buffered_bytes(&self) -> usize {
        self.streams.iter().map(Vec::capacity).sum::<usize>()
            + self.pkts.capacity() * std::mem::size_of::<Pkt>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(rng: &mut SplitMix64) -> Session {
        let mut s = Session::new();
        let client = Endpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: [10, 0, 1, 1],
            port: 50_000,
        };
        let server = Endpoint {
            mac: [2, 0, 0, 0, 0, 2],
            ip: [10, 0, 0, 1],
            port: 1883,
        };
        s.reset(Transport::Tcp, client, server, rng);
        s
    }

    #[test]
    fn handshake_data_and_close_have_coherent_numbers() {
        let mut rng = SplitMix64::new(3);
        let mut s = session(&mut rng);
        s.mss = [1460, 1460];
        s.open(&mut rng);
        s.send(&mut rng, Dir::ToServer, 10, |o| {
            o.extend_from_slice(b"hello")
        });
        s.send(&mut rng, Dir::ToClient, 10, |o| o.extend_from_slice(b"hi"));
        s.send(&mut rng, Dir::ToServer, 10, |o| o.extend_from_slice(b"bye"));
        s.close(&mut rng, Dir::ToServer, 10);
        let (c, v) = (s.isn[0], s.isn[1]);
        let p = &s.pkts;
        // SYN, SYN-ACK, ACK
        assert_eq!((p[0].flags, p[0].seq), (SYN, c));
        assert_eq!((p[1].flags, p[1].seq, p[1].ack), (SYN | ACK, v, c + 1));
        assert_eq!((p[2].flags, p[2].seq, p[2].ack), (ACK, c + 1, v + 1));
        // "hello" at c+1, answered by "hi" which acknowledges 5 bytes
        assert_eq!((p[3].seq, p[3].start, p[3].end), (c + 1, 0, 5));
        assert_eq!((p[4].seq, p[4].ack), (v + 1, c + 6));
        // "hi" carried the server's ACK, so no pure ACK precedes "bye", which
        // itself acknowledges "hi".
        assert_eq!((p[5].seq, p[5].ack, p[5].start), (c + 6, v + 3, 5));
        // Server owed an ACK for "bye": the client's FIN comes next and the
        // server's FIN acknowledges bytes and FIN together.
        let fin = p.iter().position(|q| q.flags & FIN != 0).unwrap();
        assert_eq!(p[fin].seq, c + 9);
        let last = p.last().unwrap();
        assert_eq!(last.flags, ACK);
        assert_eq!(last.seq, c + 10);
        assert_eq!(last.ack, v + 4);
    }

    #[test]
    fn large_writes_are_cut_at_the_peer_mss() {
        let mut rng = SplitMix64::new(4);
        let mut s = session(&mut rng);
        s.mss = [536, 1460];
        s.open(&mut rng);
        s.send(&mut rng, Dir::ToClient, 10, |o| o.resize(2000, 7));
        let data: Vec<&Pkt> = s.pkts.iter().filter(|p| p.is_data()).collect();
        let sizes: Vec<u32> = data.iter().map(|p| p.end - p.start).collect();
        assert_eq!(sizes, [536, 536, 536, 392]);
        assert!(data[3].flags & PSH != 0 && data[0].flags & PSH == 0);
        // The client ACKs after the second full segment.
        let acks = s
            .pkts
            .iter()
            .skip(3)
            .filter(|p| p.dir == Dir::ToServer)
            .count();
        assert_eq!(acks, 1);
    }

    #[test]
    fn truth_of_a_cut_session_stops_before_the_first_unsent_byte() {
        let mut rng = SplitMix64::new(5);
        let mut s = session(&mut rng);
        s.mss = [536, 536];
        s.open(&mut rng);
        s.send(&mut rng, Dir::ToServer, 10, |o| o.resize(1000, 1));
        s.cursor = 4; // SYN, SYN-ACK, ACK, first segment
        let t = s.truth().unwrap();
        assert_eq!(t.to_server.len(), 536);
        assert!(!t.complete);
        s.pkts[4].dropped = true;
        s.cursor = s.pkts.len();
        let t = s.truth().unwrap();
        assert_eq!(t.to_server.len(), 1000);
        assert_eq!(t.dropped_to_server, vec![536..1000]);
        assert!(t.complete);
    }
}
