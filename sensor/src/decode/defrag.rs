//! Bounded IP fragment reassembly (RFC 791 §3.2 for IPv4, RFC 8200 §4.5 for IPv6).
//!
//! Attackers control fragments, so every dimension is bounded: datagrams under
//! reassembly, fragments per datagram, bytes per datagram, and time. Overlapping
//! fragments keep the bytes that arrived first, and a conflicting overlap is counted.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::capture::Timestamp;

/// Largest reassembled IP payload (the 16-bit IPv4 total length bounds it).
pub const MAX_DATAGRAM_BYTES: usize = 65_535;

/// Limits of the fragment reassembler (config section `[defrag]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefragLimits {
    /// Datagrams under reassembly at once; the oldest is dropped beyond this.
    pub max_datagrams: usize,
    /// Fragments accepted for one datagram.
    pub max_fragments: usize,
    /// Seconds of packet time a datagram may wait for its missing fragments.
    pub timeout_secs: u64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_datagrams: 4096,
            max_fragments: 128,
            timeout_secs: 30,
        }
    }
}

/// Counters of the reassembler, all monotonic.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub timed_out: u64,
    pub evicted: u64,
    pub too_many_fragments: u64,
    pub too_large: u64,
    pub overlap_conflicts: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct DatagramKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    protocol: u8,
    vlan: [u16; 2],
}

struct Pending {
    first_ts: Timestamp,
    data: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    have: Vec<(usize, usize)>,
    fragments: usize,
    /// Total length, known once the last fragment (MF = 0) arrived.
    total: Option<usize>,
}

impl Pending {
    /// Copy the parts of `[offset, offset+payload.len())` not yet received.
    /// Returns true when an already received byte differed.
    fn fill(&mut self, offset: usize, payload: &[u8]) -> bool {
        let end = offset + payload.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        let mut conflict = false;
        let mut cursor = offset;
        let mut merged = Vec::with_capacity(self.have.len() + 1);
        for &(s, e) in &self.have {
            if e <= cursor || s >= end {
                continue;
            }
            if s > cursor {
                self.data[cursor..s].copy_from_slice(&payload[cursor - offset..s - offset]);
            }
            let overlap_end = e.min(end);
            let start = s.max(cursor);
            conflict |=
                self.data[start..overlap_end] != payload[start - offset..overlap_end - offset];
            cursor = cursor.max(overlap_end);
        }
        if cursor < end {
            self.data[cursor..end].copy_from_slice(&payload[cursor - offset..]);
        }
        let mut new = (offset, end);
        for &(s, e) in &self.have {
            if e < new.0 || s > new.1 {
                merged.push((s, e));
            } else {
                new = (new.0.min(s), new.1.max(e));
            }
        }
        merged.push(new);
        merged.sort_unstable();
        self.have = merged;
        conflict
    }

    fn complete(&self) -> bool {
        matches!(self.total, Some(total) if self.have == [(0, total)])
    }
}

/// One fragment, as the decoder found it.
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub protocol: u8,
    pub vlan: [u16; 2],
    /// Byte offset of this fragment's payload in the original datagram.
    pub offset: usize,
    pub more: bool,
    pub payload: &'a [u8],
}

/// Reassembles fragmented datagrams within [`DefragLimits`].
pub struct Defragmenter {
    limits: DefragLimits,
    pending: HashMap<DatagramKey, Pending>,
    /// The last reassembled payload, borrowed by the packet built from it.
    done: Vec<u8>,
    pub stats: DefragStats,
}

impl Defragmenter {
    pub fn new(limits: DefragLimits) -> Self {
        Defragmenter {
            limits,
            pending: HashMap::new(),
            done: Vec::new(),
            stats: DefragStats::default(),
        }
    }

    /// Add a fragment. Returns the whole payload when this fragment completed it.
    pub fn add(&mut self, ts: Timestamp, frag: Fragment<'_>) -> Option<&[u8]> {
        self.stats.fragments += 1;
        self.expire(ts);
        let key = DatagramKey {
            src: frag.src,
            dst: frag.dst,
            id: frag.id,
            protocol: frag.protocol,
            vlan: frag.vlan,
        };
        let end = frag.offset + frag.payload.len();
        if end > MAX_DATAGRAM_BYTES {
            self.stats.too_large += 1;
            self.pending.remove(&key);
            return None;
        }
        if !self.pending.contains_key(&key) && self.pending.len() >= self.limits.max_datagrams {
            self.evict_oldest();
        }
        let entry = self.pending.entry(key).or_insert_with(|| Pending {
            first_ts: ts,
            data: Vec::new(),
            have: Vec::new(),
            fragments: 0,
            total: None,
        });
        entry.fragments += 1;
        if entry.fragments > self.limits.max_fragments {
            self.stats.too_many_fragments += 1;
            self.pending.remove(&key);
            return None;
        }
        if !frag.more {
            entry.total = Some(end);
        }
        if entry.fill(frag.offset, frag.payload) {
            self.stats.overlap_conflicts += 1;
        }
        if !entry.complete() {
            return None;
        }
        let mut whole = self.pending.remove(&key)?;
        if let Some(total) = whole.total {
            whole.data.truncate(total);
        }
        self.stats.reassembled += 1;
        self.done = whole.data;
        Some(&self.done)
    }

    fn expire(&mut self, now: Timestamp) {
        let timeout = self.limits.timeout_secs;
        let before = self.pending.len();
        self.pending
            .retain(|_, p| p.first_ts.saturating_add_secs(timeout) > now);
        self.stats.timed_out += (before - self.pending.len()) as u64;
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.first_ts)
            .map(|(k, _)| *k);
        if let Some(key) = oldest {
            self.pending.remove(&key);
            self.stats.evicted += 1;
        }
    }

    /// Datagrams still waiting for fragments.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn frag(offset: usize, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id: 7,
            protocol: 17,
            vlan: [0, 0],
            offset,
            more,
            payload,
        }
    }

    #[test]
    fn reassembles_out_of_order_fragments() {
        let mut d = Defragmenter::new(DefragLimits::default());
        assert!(d.add(Timestamp(0), frag(16, false, b"QRST")).is_none());
        assert!(d.add(Timestamp(1), frag(0, true, b"ABCDEFGH")).is_none());
        let whole = d.add(Timestamp(2), frag(8, true, b"IJKLMNOP")).unwrap();
        assert_eq!(whole, b"ABCDEFGHIJKLMNOPQRST");
        assert_eq!(d.stats.reassembled, 1);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn first_fragment_wins_on_overlap_and_conflict_is_counted() {
        let mut d = Defragmenter::new(DefragLimits::default());
        d.add(Timestamp(0), frag(0, true, b"ABCDEFGH"));
        d.add(Timestamp(0), frag(8, false, b"IJKL"));
        // Already complete above; start another datagram with a conflicting overlap.
        let mut d2 = Defragmenter::new(DefragLimits::default());
        d2.add(Timestamp(0), frag(0, true, b"ABCDEFGH"));
        d2.add(Timestamp(0), frag(4, true, b"xxxxyyyy"));
        let whole = d2
            .add(Timestamp(0), frag(12, false, b"MNOP"))
            .unwrap()
            .to_vec();
        assert_eq!(whole, b"ABCDEFGHyyyyMNOP");
        assert_eq!(d2.stats.overlap_conflicts, 1);
        assert_eq!(d.stats.reassembled, 1);
    }

    #[test]
    fn timeout_drops_incomplete_datagram() {
        let mut d = Defragmenter::new(DefragLimits::default());
        d.add(Timestamp(0), frag(0, true, b"ABCDEFGH"));
        let later = Timestamp::from_secs_nanos(31, 0);
        assert!(d.add(later, frag(8, false, b"IJ")).is_none());
        assert_eq!(d.stats.timed_out, 1);
        assert_eq!(d.pending(), 1);
    }

    #[test]
    fn bounds_are_enforced_and_counted() {
        let limits = DefragLimits {
            max_datagrams: 2,
            max_fragments: 3,
            timeout_secs: 30,
        };
        let mut d = Defragmenter::new(limits);
        for id in 0..3 {
            let mut f = frag(0, true, b"AAAAAAAA");
            f.id = id;
            d.add(Timestamp(i64::from(id)), f);
        }
        assert_eq!(d.stats.evicted, 1);
        assert_eq!(d.pending(), 2);
        for i in 0..4 {
            d.add(Timestamp(5), frag(8 * i, true, b"BBBBBBBB"));
        }
        assert_eq!(d.stats.too_many_fragments, 1);
        assert!(
            d.add(Timestamp(6), frag(65_530, false, b"CCCCCCCC"))
                .is_none()
        );
        assert_eq!(d.stats.too_large, 1);
    }
}
