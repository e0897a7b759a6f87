//! TCP stream reassembly, one [`Stream`] per direction (RFC 9293 sequence space).
//!
//! Bytes are handed to the consumer in order, exactly once. Policy, chosen to be
//! predictable and the same for every flow:
//! - **first received wins**: where a retransmission or an overlapping segment
//!   covers bytes already buffered or delivered, the earlier bytes stand and a
//!   disagreement is counted as an overlap conflict (an evasion indicator);
//! - **gaps are skipped and reported**: bytes the capture never saw are announced
//!   with [`StreamEvent::Gap`] once it is certain they will not come, on evidence
//!   a reordering tap cannot fake: the peer acknowledged past them, the sender has
//!   since sent past that point, *and* the hole has stayed open for
//!   [`HOLE_WAIT_PACKETS`] packets of the flow and [`HOLE_WAIT_NANOS`] of packet
//!   time (a SPAN port that merges two directions delivers a segment a few
//!   packets and microseconds to milliseconds late, and may deliver the peer's
//!   ACK and the sender's next segment before it); or the out-of-order buffer hit
//!   its cap, the snap length cut the segment, or the flow ended with holes. A
//!   late segment that fills a hole is delivered in order and is not a
//!   retransmission.
//!
//! Memory is bounded per stream (`max_buffered_bytes`) and globally (a shared
//! [`ReassemblyBudget`]); hitting either is counted.

use std::collections::BTreeMap;

/// Bookkeeping cost charged to the budget for each buffered segment, on top of
/// its bytes (map node and vector header), so that floods of tiny segments are
/// bounded too.
pub const SEGMENT_OVERHEAD_BYTES: usize = 64;

/// Farthest a FIN, a RST or an acknowledgement may lie from the bytes seen
/// in its direction and still be taken as part of the connection. RFC 5961
/// (§3.2 RST, §4.2 SYN, §5.2 ACK) has a receiver ignore segments outside its
/// receive window; a passive sensor does not know the window (its scale is
/// in the SYN options), so it uses this bound: above the receive buffers of
/// the hosts on these segments (Linux's default `tcp_rmem` maximum is 6 MiB)
/// and far below the ±2 GiB a random sequence number lands in. A scanner's
/// or a reused port's stray RST would otherwise mark the end of the stream
/// hundreds of MiB away and report that distance as lost bytes.
pub const MAX_WINDOW_BYTES: u64 = 16 << 20;

/// Packets of the flow (either direction) that must pass while a hole stays
/// open before an acknowledged hole is given up: more than the displacement
/// a merging SPAN port causes (a few packets).
pub const HOLE_WAIT_PACKETS: u32 = 8;

/// Packet time a hole must stay open before an acknowledged hole is given
/// up: well above the reordering delay of a tap or switch (microseconds to a
/// few milliseconds), well below a retransmission timeout (RFC 6298: 1 s
/// minimum).
pub const HOLE_WAIT_NANOS: i64 = 200_000_000;

/// Since when the current hole has been open.
#[derive(Clone, Copy, Debug)]
struct HoleWatch {
    /// Stream offset where the hole starts (`delivered` when it opened).
    at: u64,
    /// Packet time it opened, and of the latest packet of the flow since.
    since_nanos: i64,
    last_nanos: i64,
    /// Packets of the flow seen since it opened.
    packets: u32,
}

/// What a stream hands to its consumer.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// The next bytes of the stream, in order.
    Data(&'a [u8]),
    /// This many bytes of the stream are missing; the next data follows them.
    Gap(u64),
}

/// Reassembly limits (config section `[flows.reassembly]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReassemblyLimits {
    /// Out-of-order bytes one direction may buffer before the hole is given up.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_buffered_bytes: usize,
    /// Out-of-order segments one direction may buffer.
    pub max_buffered_segments: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_buffered_bytes: 256 * 1024,
            max_buffered_segments: 1024,
        }
    }
}

/// Memory shared by all streams for out-of-order data.
#[derive(Clone, Copy, Debug)]
pub struct ReassemblyBudget {
    pub cap_bytes: usize,
    pub used_bytes: usize,
}

impl ReassemblyBudget {
    pub fn new(cap_bytes: usize) -> Self {
        ReassemblyBudget {
            cap_bytes,
            used_bytes: 0,
        }
    }

    fn fits(&self, n: usize) -> bool {
        self.used_bytes + n <= self.cap_bytes
    }

    fn take(&mut self, n: usize) -> bool {
        if self.used_bytes + n > self.cap_bytes {
            return false;
        }
        self.used_bytes += n;
        true
    }

    fn give_back(&mut self, n: usize) {
        self.used_bytes = self.used_bytes.saturating_sub(n);
    }
}

/// Reassembly counters (summed over streams by the flow table).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ReassemblyStats {
    /// Bytes handed to consumers.
    pub delivered_bytes: u64,
    /// Segments that arrived ahead of a hole and were buffered.
    pub out_of_order_segments: u64,
    /// Bytes received again that were already buffered or delivered.
    pub retransmitted_bytes: u64,
    /// Overlapping bytes that disagreed with the bytes received first.
    pub overlap_conflicts: u64,
    /// Gaps reported to consumers, and the bytes they skipped.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Holes given up because a stream's own buffer was full.
    pub stream_cap_hits: u64,
    /// Data segments that arrived before their direction's SYN and were
    /// kept until it came (or the hole wait ended).
    pub early_segments: u64,
    /// In-order segments held until the peer data they acknowledge was
    /// delivered (cross-direction causality), and holds released without
    /// it (the peer data did not come within the hole wait, or a bound).
    pub held_for_peer_segments: u64,
    pub holds_released_early: u64,
    /// Segments not buffered because the global budget was exhausted.
    pub budget_drops: u64,
    /// Streams picked up without seeing their SYN.
    pub midstream_pickups: u64,
    /// FIN / RST segments and acknowledgements ignored because their
    /// sequence or acknowledgement number lay outside the window
    /// ([`MAX_WINDOW_BYTES`], RFC 5961).
    pub out_of_window: u64,
}

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Stream {
    /// Sequence number of the byte at stream offset `delivered`; `None` until
    /// the first SYN or data segment of this direction.
    next_seq: Option<u32>,
    /// Stream offset of the next byte to deliver.
    delivered: u64,
    /// Out-of-order segments by stream offset; never overlapping.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Stream offset of the FIN (or RST), once seen.
    fin_at: Option<u64>,
    /// The peer acknowledged up to here while bytes before it were missing.
    acked_past_hole: Option<u64>,
    /// The open hole's age, kept by [`Stream::note_packet`].
    hole: Option<HoleWatch>,
    /// Bytes were not buffered for want of budget: the hole they leave is
    /// certain, not to be waited for.
    dropped: bool,
    /// Data of this direction that acknowledged peer bytes not yet
    /// delivered, held until the peer's stream gets there (see
    /// [`Stream::hold_for_peer`]); in stream order, at most [`MAX_HOLDS`].
    holds: Vec<Hold>,
    /// The peer's SYN was seen, so this direction's SYN is due: data that
    /// overtakes it is kept in `early` (at most [`MAX_EARLY_SEGMENTS`])
    /// rather than taken as the stream's start.
    expect_syn: bool,
    early: Vec<Early>,
}

/// A data segment kept before its direction's SYN: its sequence number,
/// its acknowledgement number (when it carried one) and its bytes.
#[derive(Debug)]
pub struct Early {
    pub seq: u32,
    pub ack: Option<u32>,
    pub bytes: Vec<u8>,
    /// A FIN or RST: it marks the end of the stream.
    pub ends_stream: bool,
}

/// Data segments kept per stream while its SYN, overtaken by them on a
/// reordering tap, is due.
pub const MAX_EARLY_SEGMENTS: usize = 8;

/// Holds kept apart per stream; beyond it the two latest are merged (which
/// may hold some bytes longer than needed, never lose them).
pub const MAX_HOLDS: usize = 8;

/// Data held for the peer: this stream's bytes from `from` on wait until
/// the peer's stream has delivered up to `until`.
#[derive(Clone, Copy, Debug)]
struct Hold {
    from: u64,
    until: u64,
}

impl Stream {
    /// The peer's SYN (or SYN-ACK) fixes this direction's initial sequence number.
    pub fn on_syn(&mut self, seq: u32) {
        if self.next_seq.is_none() {
            self.next_seq = Some(seq.wrapping_add(1));
        }
    }

    /// The peer opened the connection: this direction's SYN-ACK is due, and
    /// data seen before it is kept for it rather than taken as a mid-stream
    /// start.
    pub fn expect_syn(&mut self) {
        if self.next_seq.is_none() {
            self.expect_syn = true;
        }
    }

    /// The data kept before the SYN, handed to `segment` now that the
    /// stream's start is known.
    fn replay_early(
        &mut self,
        limits: &ReassemblyLimits,
        budget: &mut ReassemblyBudget,
        stats: &mut ReassemblyStats,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) {
        for e in self.take_early(budget) {
            let len = e.bytes.len() as u32;
            self.segment(
                e.seq,
                &e.bytes,
                len,
                e.ends_stream,
                limits,
                budget,
                stats,
                sink,
            );
        }
    }

    /// Whether data was kept for a SYN that has now come: the caller hands
    /// it to [`Stream::segment`] ([`Stream::take_early`]) with what its
    /// acknowledgements ask of the peer.
    #[inline]
    pub fn early_ready(&self) -> bool {
        self.next_seq.is_some() && !self.early.is_empty()
    }

    /// The data kept before the SYN, its memory returned to the budget.
    pub fn take_early(&mut self, budget: &mut ReassemblyBudget) -> Vec<Early> {
        let kept = std::mem::take(&mut self.early);
        for e in &kept {
            budget.give_back(e.bytes.len() + SEGMENT_OVERHEAD_BYTES);
        }
        kept
    }

    /// Keeps the data segment `seq`/`payload` (acknowledging `ack`) for the
    /// SYN due before it, when this stream has not started yet and expects
    /// one (bounded in count, budget and the hole wait). False when it is
    /// to be handled now.
    #[allow(clippy::too_many_arguments)]
    pub fn keep_early(
        &mut self,
        seq: u32,
        ack: Option<u32>,
        payload: &[u8],
        ends_stream: bool,
        budget: &mut ReassemblyBudget,
        stats: &mut ReassemblyStats,
    ) -> bool {
        if self.next_seq.is_some()
            || !self.expect_syn
            || (payload.is_empty() && !ends_stream)
            || self.early.len() >= MAX_EARLY_SEGMENTS
            || (!self.early.is_empty() && self.hole_is_old())
            || !budget.take(payload.len() + SEGMENT_OVERHEAD_BYTES)
        {
            return false;
        }
        stats.early_segments += 1;
        self.early.push(Early {
            seq,
            ack,
            bytes: payload.to_vec(),
            ends_stream,
        });
        true
    }

    /// A packet of the flow (either direction) at packet time `now_nanos`:
    /// ages the open hole, if any. Call before handing the packet's segment
    /// and acknowledgement to the streams.
    #[inline]
    pub fn note_packet(&mut self, now_nanos: i64) {
        if self.pending.is_empty() && self.acked_past_hole.is_none() && self.early.is_empty() {
            return;
        }
        match self.hole.as_mut() {
            Some(h) if h.at == self.delivered => {
                h.packets = h.packets.saturating_add(1);
                h.last_nanos = now_nanos;
            }
            _ => {
                self.hole = Some(HoleWatch {
                    at: self.delivered,
                    since_nanos: now_nanos,
                    last_nanos: now_nanos,
                    packets: 0,
                })
            }
        }
    }

    /// Whether the hole at `delivered` has been open long enough, in
    /// packets and in packet time, that reordering cannot explain it.
    fn hole_is_old(&self) -> bool {
        self.hole.is_some_and(|h| {
            h.at == self.delivered
                && h.packets >= HOLE_WAIT_PACKETS
                && h.last_nanos.saturating_sub(h.since_nanos) >= HOLE_WAIT_NANOS
        })
    }

    /// Where the peer's data acknowledged by `ack` ends, when this stream
    /// has not delivered that far yet (and `ack` is within the window): the
    /// offset the peer's data carrying this acknowledgement must wait for.
    pub fn unseen_ack(&self, ack: u32) -> Option<u64> {
        let next_seq = self.next_seq?;
        let acked = self.offset_of(next_seq, ack);
        (acked > i128::from(self.settled()) && self.offset_in_window(acked)).then_some(acked as u64)
    }

    /// Stream offset this direction has accounted for: the delivered bytes,
    /// plus the FIN's sequence number once the FIN was seen there.
    fn settled(&self) -> u64 {
        match self.fin_at {
            Some(fin) if fin == self.delivered => fin + 1,
            _ => self.delivered,
        }
    }

    /// Cross-direction causality (Suricata inspects a direction's data on
    /// the peer's ACK): this direction's next data acknowledges peer bytes up
    /// to `peer_offset` that the peer's stream has not delivered yet (a tap
    /// delivered the answer before the request), so it is held until they
    /// are — see [`Stream::release_hold`].
    pub fn hold_for_peer(&mut self, seq: u32, peer_offset: u64) {
        let from = self.next_seq.map_or(self.delivered, |n| {
            self.offset_of(n, seq).max(i128::from(self.delivered)) as u64
        });
        // Kept in stream order: the bytes from one hold's `from` to the
        // next's wait for it and for every hold before it.
        let pos = self.holds.partition_point(|h| h.from < from);
        if pos > 0 && self.holds[pos - 1].until >= peer_offset {
            // Earlier data already waits at least as long.
            return;
        }
        if let Some(h) = self.holds.get_mut(pos).filter(|h| h.from == from) {
            h.until = h.until.max(peer_offset);
            return;
        }
        if self.holds.len() >= MAX_HOLDS {
            let i = pos.min(self.holds.len() - 1);
            let h = &mut self.holds[i];
            h.from = h.from.min(from);
            h.until = h.until.max(peer_offset);
            return;
        }
        self.holds.insert(
            pos,
            Hold {
                from,
                until: peer_offset,
            },
        );
    }

    /// Stream offset up to which bytes may be delivered now.
    #[inline]
    fn deliverable_until(&self) -> u64 {
        self.holds.first().map_or(u64::MAX, |h| h.from)
    }

    /// Whether this stream holds data for its peer.
    #[inline]
    pub fn is_holding(&self) -> bool {
        !self.holds.is_empty()
    }

    /// Delivers the held data once `peer` has delivered what it waited for,
    /// or once the hold is older than reordering explains
    /// ([`HOLE_WAIT_PACKETS`], [`HOLE_WAIT_NANOS`]): the peer data was lost
    /// by the capture. True when a hold ended.
    pub fn release_hold(
        &mut self,
        peer: &Stream,
        budget: &mut ReassemblyBudget,
        stats: &mut ReassemblyStats,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) -> bool {
        let before = self.holds.len();
        if before == 0 {
            return false;
        }
        if self.hole_is_old() {
            // The peer data did not come: the capture lost it.
            stats.holds_released_early += 1;
            self.holds.clear();
        }
        let settled = peer.settled();
        let done = self.holds.iter().take_while(|h| h.until <= settled).count();
        self.holds.drain(..done);
        if self.holds.first().is_none_or(|h| h.from > self.delivered) {
            self.drain(budget, stats, sink);
        }
        self.holds.len() != before
    }

    /// Whether sequence number `seq` lies within [`MAX_WINDOW_BYTES`] of
    /// what this direction has shown so far (anything does before the first
    /// segment). A FIN or RST outside it is not acceptable (RFC 5961 §3.2).
    pub fn in_window(&self, seq: u32) -> bool {
        let Some(next_seq) = self.next_seq else {
            return true;
        };
        self.offset_in_window(self.offset_of(next_seq, seq))
    }

    fn offset_in_window(&self, offset: i128) -> bool {
        let w = i128::from(MAX_WINDOW_BYTES);
        let low = i128::from(self.delivered) - w;
        let high = i128::from(self.frontier()) + w;
        (low..=high).contains(&offset)
    }

    /// Stream offset just past the farthest byte seen, buffered or marked.
    fn frontier(&self) -> u64 {
        let buffered = self
            .pending
            .last_key_value()
            .map_or(0, |(&k, v)| k + v.len() as u64);
        self.delivered
            .max(buffered)
            .max(self.fin_at.unwrap_or(0))
            .max(self.acked_past_hole.unwrap_or(0))
    }

    /// Offset in this stream of sequence number `seq` (handles wrap-around:
    /// sequence numbers within ±2 GiB of the next expected byte).
    fn offset_of(&self, next_seq: u32, seq: u32) -> i128 {
        i128::from(self.delivered) + i128::from(seq.wrapping_sub(next_seq) as i32)
    }

    /// Process one segment of this direction.
    ///
    /// `wire_len` is the payload length on the wire; when it exceeds
    /// `payload.len()` the missing tail is a gap. `ends_stream` is set for a
    /// FIN or RST: its sequence number marks the end of what was sent.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        wire_len: u32,
        ends_stream: bool,
        limits: &ReassemblyLimits,
        budget: &mut ReassemblyBudget,
        stats: &mut ReassemblyStats,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) {
        let next_seq = match self.next_seq {
            Some(n) => {
                if !self.early.is_empty() {
                    self.replay_early(limits, budget, stats, sink);
                }
                n
            }
            None => {
                if payload.is_empty() && !ends_stream {
                    return;
                }
                if self.keep_early(seq, None, payload, ends_stream, budget, stats) {
                    return;
                }
                // A FIN or RST alone does not start a stream whose SYN is
                // due (a reordering tap may deliver it before the SYN-ACK
                // and the data), even when no more can be kept.
                if payload.is_empty() && self.expect_syn {
                    return;
                }
                // Start at the earliest data seen (sequence order).
                let first = earliest(seq, &self.early);
                stats.midstream_pickups += 1;
                self.next_seq = Some(first);
                if !self.early.is_empty() {
                    self.replay_early(limits, budget, stats, sink);
                    // The stream moved on: start over with this segment.
                    return self.segment(
                        seq,
                        payload,
                        wire_len,
                        ends_stream,
                        limits,
                        budget,
                        stats,
                        sink,
                    );
                }
                first
            }
        };
        let start = self.offset_of(next_seq, seq);
        let wire_end = start + i128::from(wire_len.max(payload.len() as u32));
        if ends_stream && self.fin_at.is_none() && wire_end >= 0 {
            let fin = wire_end as u64;
            self.fin_at = Some(fin);
            // The peer's ACK of the FIN may have arrived first: the FIN's
            // sequence number carries no byte.
            if let Some(a) = self.acked_past_hole.as_mut() {
                *a = (*a).min(fin);
            }
        }
        if payload.is_empty() {
            if ends_stream {
                self.give_up_acked_hole(start, budget, stats, sink);
            }
            return;
        }
        let end = start + payload.len() as i128;
        let delivered = i128::from(self.delivered);
        if end <= delivered {
            stats.retransmitted_bytes += payload.len() as u64;
            return;
        }
        // Trim what was already delivered (first received wins).
        let skip = (delivered - start).max(0) as usize;
        if skip > 0 {
            stats.retransmitted_bytes += skip as u64;
        }
        let data = &payload[skip..];
        let offset = (start + skip as i128) as u64;

        if self.is_holding() && !budget.fits(data.len() + SEGMENT_OVERHEAD_BYTES) {
            // Holding would lose bytes: deliver now.
            stats.holds_released_early += 1;
            self.holds.clear();
            self.drain(budget, stats, sink);
        }
        if offset == self.delivered {
            // In order: hand over directly whatever precedes the first buffered
            // segment and any held part (no copy); only the rest is buffered.
            let limit = self.deliverable_until().saturating_sub(offset);
            let direct = self
                .pending
                .keys()
                .next()
                .map_or(data.len(), |&p| data.len().min((p - offset) as usize))
                .min(usize::try_from(limit).unwrap_or(usize::MAX));
            self.deliver(&data[..direct], stats, sink);
            if direct < data.len() {
                let held = self.is_holding();
                if held {
                    stats.held_for_peer_segments += 1;
                }
                self.insert(
                    offset + direct as u64,
                    &data[direct..],
                    !held,
                    budget,
                    stats,
                );
            }
        } else {
            self.insert(offset, data, true, budget, stats);
        }
        self.drain(budget, stats, sink);
        if self.pending_bytes > limits.max_buffered_bytes
            || self.pending.len() > limits.max_buffered_segments
        {
            if self.is_holding() {
                self.holds.clear();
                stats.holds_released_early += 1;
                self.drain(budget, stats, sink);
            }
            if self.pending_bytes > limits.max_buffered_bytes
                || self.pending.len() > limits.max_buffered_segments
            {
                stats.stream_cap_hits += 1;
                self.skip_to_first_pending(stats, sink);
                self.drain(budget, stats, sink);
            }
        }
        self.give_up_acked_hole(start, budget, stats, sink);
        // A snap-length cut: the rest of this segment is known to be lost.
        if wire_end > end && end == i128::from(self.delivered) {
            self.gap((wire_end - end) as u64, stats, sink);
            self.drain(budget, stats, sink);
        }
    }

    /// A segment starting at `start` arrived: if the peer had already
    /// acknowledged past the hole, this segment starts beyond what the peer
    /// acknowledged, and the hole is older than reordering explains
    /// ([`HOLE_WAIT_PACKETS`], [`HOLE_WAIT_NANOS`]), the sender has moved
    /// on: the acknowledged bytes were received by the peer, so no
    /// retransmission will bring them, and a tap that delayed them has had
    /// the time to deliver them.
    fn give_up_acked_hole(
        &mut self,
        start: i128,
        budget: &mut ReassemblyBudget,
        stats: &mut ReassemblyStats,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) {
        let Some(acked) = self.acked_past_hole else {
            return;
        };
        if acked <= self.delivered {
            self.acked_past_hole = None;
            return;
        }
        if start <= i128::from(acked) || !(self.dropped || self.hole_is_old()) {
            return;
        }
        self.acked_past_hole = None;
        self.dropped = false;
        let hole_end = self
            .pending
            .keys()
            .next()
            .map_or(acked, |&first| acked.min(first));
        if hole_end > self.delivered {
            self.gap(hole_end - self.delivered, stats, sink);
            self.drain(budget, stats, sink);
        }
    }

    /// The peer acknowledged up to `ack`: bytes before it were sent. A hole
    /// there is given up once the sender is seen sending past it. An
    /// acknowledgement beyond the window is ignored (RFC 5961 §5.2) and
    /// counted.
    pub fn acked(&mut self, ack: u32, stats: &mut ReassemblyStats) {
        let Some(next_seq) = self.next_seq else {
            return;
        };
        let mut acked = self.offset_of(next_seq, ack);
        if acked > i128::from(self.delivered) && !self.offset_in_window(acked) {
            stats.out_of_window += 1;
            return;
        }
        if let Some(fin) = self.fin_at {
            // The FIN takes one sequence number but carries no byte.
            acked = acked.min(i128::from(fin));
        }
        if acked <= i128::from(self.delivered) {
            return;
        }
        let acked = acked as u64;
        self.acked_past_hole = Some(self.acked_past_hole.map_or(acked, |a| a.max(acked)));
    }

    /// The flow is over: hand out everything still buffered, holes as gaps.
    pub fn close(
        &mut self,
        budget: &mut ReassemblyBudget,
        stats: &mut ReassemblyStats,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) {
        self.holds.clear();
        if !self.early.is_empty() {
            // The SYN never came: start at the earliest data kept.
            self.expect_syn = false;
            let kept = self.take_early(budget);
            let first = earliest(kept[0].seq, &kept);
            let next = *self.next_seq.get_or_insert_with(|| {
                stats.midstream_pickups += 1;
                first
            });
            for e in kept {
                let offset = self.offset_of(next, e.seq);
                if offset >= i128::from(self.delivered) {
                    self.insert(offset as u64, &e.bytes, false, budget, stats);
                }
            }
            self.drain(budget, stats, sink);
        }
        while !self.pending.is_empty() {
            self.skip_to_first_pending(stats, sink);
            self.drain(budget, stats, sink);
        }
        // Bytes the FIN or the peer's ACK prove were sent, but never seen.
        let sent_up_to = self.fin_at.max(self.acked_past_hole).unwrap_or(0);
        if sent_up_to > self.delivered {
            self.gap(sent_up_to - self.delivered, stats, sink);
        }
        self.acked_past_hole = None;
    }

    fn deliver(
        &mut self,
        data: &[u8],
        stats: &mut ReassemblyStats,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) {
        if data.is_empty() {
            return;
        }
        self.delivered += data.len() as u64;
        if let Some(n) = self.next_seq.as_mut() {
            *n = n.wrapping_add(data.len() as u32);
        }
        stats.delivered_bytes += data.len() as u64;
        sink(StreamEvent::Data(data));
    }

    fn gap(
        &mut self,
        len: u64,
        stats: &mut ReassemblyStats,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) {
        self.delivered += len;
        if let Some(n) = self.next_seq.as_mut() {
            *n = n.wrapping_add(len as u32);
        }
        stats.gaps += 1;
        stats.gap_bytes += len;
        sink(StreamEvent::Gap(len));
    }

    fn skip_to_first_pending(
        &mut self,
        stats: &mut ReassemblyStats,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) {
        if let Some(&first) = self.pending.keys().next() {
            if first > self.delivered {
                self.gap(first - self.delivered, stats, sink);
            }
        }
    }

    /// Deliver buffered segments that are now in order.
    fn drain(
        &mut self,
        budget: &mut ReassemblyBudget,
        stats: &mut ReassemblyStats,
        sink: &mut dyn FnMut(StreamEvent<'_>),
    ) {
        let limit = self.deliverable_until();
        while let Some(entry) = self.pending.first_entry() {
            let offset = *entry.key();
            if offset > self.delivered || offset >= limit {
                break;
            }
            let data = entry.remove();
            self.pending_bytes -= data.len();
            budget.give_back(data.len() + SEGMENT_OVERHEAD_BYTES);
            let skip = (self.delivered - offset) as usize;
            if skip < data.len() {
                self.deliver(&data[skip..], stats, sink);
            }
        }
    }

    /// Buffer `data` at `offset`, filling only the holes between buffered
    /// segments (first received wins) and counting conflicting overlaps.
    fn insert(
        &mut self,
        offset: u64,
        data: &[u8],
        out_of_order: bool,
        budget: &mut ReassemblyBudget,
        stats: &mut ReassemblyStats,
    ) {
        if out_of_order {
            stats.out_of_order_segments += 1;
        }
        let end = offset + data.len() as u64;
        let mut cursor = offset;
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        // Segments that start before `offset` may reach into it.
        let first_key = self
            .pending
            .range(..=offset)
            .next_back()
            .map_or(offset, |(&k, _)| k);
        for (&s, seg) in self.pending.range(first_key..end) {
            let e = s + seg.len() as u64;
            if e <= cursor {
                continue;
            }
            if s > cursor {
                pieces.push((cursor, s));
            }
            let ov_start = s.max(cursor);
            let ov_end = e.min(end);
            if ov_start < ov_end {
                let old = &seg[(ov_start - s) as usize..(ov_end - s) as usize];
                let new = &data[(ov_start - offset) as usize..(ov_end - offset) as usize];
                stats.retransmitted_bytes += old.len() as u64;
                if old != new {
                    stats.overlap_conflicts += 1;
                }
            }
            cursor = cursor.max(e);
        }
        if cursor < end {
            pieces.push((cursor, end));
        }
        for (s, e) in pieces {
            let len = (e - s) as usize;
            if !budget.take(len + SEGMENT_OVERHEAD_BYTES) {
                stats.budget_drops += 1;
                self.dropped = true;
                continue;
            }
            let bytes = data[(s - offset) as usize..(e - offset) as usize].to_vec();
            self.pending_bytes += len;
            self.pending.insert(s, bytes);
        }
    }

    /// Return every buffered byte to the budget (the flow is being dropped).
    pub fn release(&mut self, budget: &mut ReassemblyBudget) {
        budget.give_back(self.pending_bytes + self.pending.len() * SEGMENT_OVERHEAD_BYTES);
        self.take_early(budget);
        self.pending.clear();
        self.pending_bytes = 0;
    }
}

/// The earliest, in sequence space, of `seq` and the kept segments'.
fn earliest(seq: u32, kept: &[Early]) -> u32 {
    kept.iter().map(|e| e.seq).fold(
        seq,
        |a, b| if (b.wrapping_sub(a) as i32) < 0 { b } else { a },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Harness {
        stream: Stream,
        limits: ReassemblyLimits,
        budget: ReassemblyBudget,
        stats: ReassemblyStats,
        out: Vec<u8>,
        gaps: Vec<u64>,
        /// Packet time, advanced 1 ms by every segment and ACK.
        now: i64,
    }

    impl Harness {
        fn new(isn: u32) -> Self {
            let mut h = Harness::midstream();
            h.stream.on_syn(isn);
            h
        }

        /// A stream whose SYN was not seen.
        fn midstream() -> Self {
            Harness {
                stream: Stream::default(),
                limits: ReassemblyLimits::default(),
                budget: ReassemblyBudget::new(1 << 20),
                stats: ReassemblyStats::default(),
                out: Vec::new(),
                gaps: Vec::new(),
                now: 0,
            }
        }

        /// One packet of the flow, 1 ms after the previous one.
        fn tick(&mut self) {
            self.now += 1_000_000;
            self.stream.note_packet(self.now);
        }

        fn seg(&mut self, seq: u32, data: &[u8]) {
            self.seg_wire(seq, data, data.len() as u32);
        }

        fn seg_wire(&mut self, seq: u32, data: &[u8], wire: u32) {
            self.segment(seq, data, wire, false);
        }

        /// A FIN without data at `seq`.
        fn fin(&mut self, seq: u32) {
            self.segment(seq, b"", 0, true);
        }

        fn segment(&mut self, seq: u32, data: &[u8], wire: u32, fin: bool) {
            self.tick();
            let (out, gaps) = (&mut self.out, &mut self.gaps);
            self.stream.segment(
                seq,
                data,
                wire,
                fin,
                &self.limits,
                &mut self.budget,
                &mut self.stats,
                &mut |ev| match ev {
                    StreamEvent::Data(d) => out.extend_from_slice(d),
                    StreamEvent::Gap(n) => gaps.push(n),
                },
            );
        }

        fn ack(&mut self, ack: u32) {
            self.tick();
            self.stream.acked(ack, &mut self.stats);
        }

        fn close(&mut self) {
            let (out, gaps) = (&mut self.out, &mut self.gaps);
            self.stream
                .close(&mut self.budget, &mut self.stats, &mut |ev| match ev {
                    StreamEvent::Data(d) => out.extend_from_slice(d),
                    StreamEvent::Gap(n) => gaps.push(n),
                });
        }
    }

    #[test]
    fn in_order_segments_pass_straight_through() {
        let mut h = Harness::new(999);
        h.seg(1000, b"hello ");
        h.seg(1006, b"world");
        assert_eq!(h.out, b"hello world");
        assert_eq!(h.stats.out_of_order_segments, 0);
    }

    #[test]
    fn out_of_order_is_reordered() {
        let mut h = Harness::new(0);
        h.seg(7, b"world");
        h.seg(4, b"lo ");
        assert!(h.out.is_empty());
        h.seg(1, b"hel");
        assert_eq!(h.out, b"hello world");
        assert_eq!(h.budget.used_bytes, 0);
    }

    #[test]
    fn retransmission_and_overlap_keep_first_bytes() {
        let mut h = Harness::new(0);
        h.seg(1, b"abcd");
        h.seg(1, b"abcd");
        h.seg(9, b"ijkl");
        // Overlaps delivered "cd", fills "efgh", overlaps buffered "ij" with different bytes.
        h.seg(3, b"cdefghXX");
        assert_eq!(h.out, b"abcdefghijkl");
        assert_eq!(h.stats.overlap_conflicts, 1);
        assert!(h.stats.retransmitted_bytes >= 8);
    }

    #[test]
    fn sequence_wraparound() {
        let mut h = Harness::new(u32::MAX - 2);
        h.seg(u32::MAX - 1, b"ab");
        h.seg(0, b"cd");
        assert_eq!(h.out, b"abcd");
    }

    #[test]
    fn peer_ack_past_a_hole_then_later_data_reports_the_gap() {
        let mut h = Harness::new(0);
        h.seg(1, b"abc");
        h.seg(8, b"hij");
        h.ack(11);
        // The ACK alone may have overtaken the data: nothing is given up yet,
        // nor when the next segment starts exactly at the acknowledged point.
        assert_eq!(h.out, b"abc");
        h.seg(11, b"klm");
        assert_eq!(h.out, b"abc");
        // The sender has moved past the ACK, but the hole is 5 packets and
        // 5 ms old: a tap may still deliver the missing segment.
        h.seg(14, b"nop");
        assert_eq!(h.out, b"abc");
        // HOLE_WAIT_PACKETS more packets over HOLE_WAIT_NANOS: given up at
        // the next segment past the ACK.
        h.now += HOLE_WAIT_NANOS;
        for _ in 0..HOLE_WAIT_PACKETS {
            h.ack(11);
        }
        assert_eq!(h.out, b"abc");
        h.seg(17, b"q");
        assert_eq!(h.out, b"abchijklmnopq");
        assert_eq!(h.gaps, vec![4]);
        assert_eq!(h.stats.retransmitted_bytes, 0);
    }

    // Issue 16: under a reordering SPAN port the segment 4..8 arrives after
    // the peer's ACK of it and after the sender's next two segments. It is
    // delivered in order: no gap, nothing counted as retransmitted.
    #[test]
    fn late_segment_after_ack_and_later_data_fills_its_hole() {
        let mut h = Harness::new(0);
        h.seg(1, b"abc");
        h.seg(8, b"hij");
        h.ack(11);
        h.seg(11, b"klm");
        h.seg(14, b"nop");
        h.seg(4, b"defg");
        assert_eq!(h.out, b"abcdefghijklmnop");
        assert!(h.gaps.is_empty());
        assert_eq!(h.stats.retransmitted_bytes, 0);
        h.close();
        assert!(h.gaps.is_empty());
    }

    // The peer's ACK of the FIN arrives before the FIN: the FIN's sequence
    // number carries no byte, so the close reports no gap.
    #[test]
    fn ack_of_the_fin_before_the_fin_is_no_gap() {
        let mut h = Harness::new(0);
        h.seg(1, b"abc");
        h.ack(5);
        h.fin(4);
        h.close();
        assert_eq!(h.out, b"abc");
        assert!(h.gaps.is_empty());
    }

    #[test]
    fn data_arriving_after_its_ack_is_not_lost() {
        let mut h = Harness::new(0);
        h.seg(1, b"abc");
        h.seg(8, b"hij");
        h.ack(11);
        h.seg(4, b"defg");
        assert_eq!(h.out, b"abcdefghij");
        assert!(h.gaps.is_empty());
    }

    #[test]
    fn lost_tail_before_fin_is_a_gap_at_close() {
        let mut h = Harness::new(0);
        h.seg(1, b"abc");
        // FIN at seq 9: bytes 4..9 were sent but the capture lost them.
        h.fin(9);
        h.close();
        assert_eq!(h.out, b"abc");
        assert_eq!(h.gaps, vec![5]);
    }

    #[test]
    fn close_flushes_holes_as_gaps() {
        let mut h = Harness::new(0);
        h.seg(1, b"abc");
        h.seg(10, b"jk");
        h.seg(20, b"tu");
        h.close();
        assert_eq!(h.out, b"abcjktu");
        assert_eq!(h.gaps, vec![6, 8]);
    }

    #[test]
    fn snap_cut_segment_gaps_its_tail_at_once() {
        let mut h = Harness::new(0);
        h.seg_wire(1, b"abc", 10);
        h.seg(11, b"next");
        assert_eq!(h.out, b"abcnext");
        assert_eq!(h.gaps, vec![7]);
    }

    #[test]
    fn per_stream_cap_gives_up_the_hole() {
        let mut h = Harness::new(0);
        h.limits.max_buffered_bytes = 8;
        h.seg(1, b"a");
        h.seg(10, b"0123");
        assert!(h.gaps.is_empty());
        h.seg(14, b"45678");
        assert_eq!(h.gaps, vec![8]);
        assert_eq!(h.out, b"a012345678");
        assert_eq!(h.stats.stream_cap_hits, 1);
    }

    #[test]
    fn global_budget_drops_are_counted_and_become_gaps() {
        let mut h = Harness::new(0);
        h.budget = ReassemblyBudget::new(4 + SEGMENT_OVERHEAD_BYTES);
        h.seg(5, b"efgh");
        h.seg(9, b"ijkl");
        assert_eq!(h.stats.budget_drops, 1);
        h.seg(1, b"abcd");
        h.close();
        assert_eq!(h.out, b"abcdefgh");
        h.ack(13);
        h.seg(14, b"n");
        assert_eq!(h.gaps, vec![4]);
        assert_eq!(h.out, b"abcdefgh");
        h.close();
        assert_eq!(h.gaps, vec![4, 1]);
        assert_eq!(h.out, b"abcdefghn");
    }

    #[test]
    fn midstream_pickup_starts_at_first_data() {
        let mut h = Harness::midstream();
        h.seg(5000, b"xyz");
        assert_eq!(h.out, b"xyz");
        assert!(h.gaps.is_empty());
        assert_eq!(h.stats.midstream_pickups, 1);
    }
}
