//! Deduplication and aggregation per key, and a global rate cap, all on
//! packet time.
//!
//! A [`DedupeKey`] is a signature and the endpoints an alert is about: both
//! (source and target) for a targeted attack, only the target for a
//! distributed flood, only the source for a sweep of many hosts. The first
//! alert of a key is emitted; repeats closer than `dedupe_secs` to the last
//! emitted one are suppressed and counted, and the count rides on the next
//! emitted alert, with, for a key that leaves out one side, an estimate of how
//! many distinct addresses of that side the suppressed repeats came from.
//! Globally at most `max_alerts_per_sec` alerts are emitted per second of
//! packet time; an alert over the cap is dropped and counted (and also counts
//! as suppressed for its key). The key table is bounded; the least recently
//! seen key is evicted.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::capture::Timestamp;

/// What alerts are deduplicated and aggregated by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DedupeKey {
    pub signature_id: u32,
    /// `None`: alerts from any source are one episode (a distributed flood).
    pub source: Option<IpAddr>,
    /// `None`: alerts against any target are one episode (a sweep).
    pub target: Option<IpAddr>,
    /// Keeps apart alerts a detector already deduplicated itself (the
    /// model's findings, one per episode and behaviour); 0 for rules.
    pub episode: u64,
}

impl DedupeKey {
    /// One signature, one source, one target: a targeted attack.
    pub fn pair(signature_id: u32, source: IpAddr, target: IpAddr) -> Self {
        DedupeKey {
            signature_id,
            source: Some(source),
            target: Some(target),
            episode: 0,
        }
    }
}

/// Bits of the bitmap that estimates distinct addresses per aggregated key
/// (linear counting, Whang et al. 1990): 256 bytes per key, exact in practice
/// for tens of addresses, within a few per cent up to a few thousand, and
/// saturated (reported as a lower bound) beyond.
pub const DISTINCT_BITS: usize = 2048;

/// SplitMix64's finaliser (Steele, Lea, Flood 2014): every input bit
/// affects every output bit, so nearby addresses land on unrelated bits.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An estimate of how many distinct addresses were added, in bounded memory.
#[derive(Clone, Debug)]
pub struct DistinctCount {
    bits: Box<[u64; DISTINCT_BITS / 64]>,
}

impl Default for DistinctCount {
    fn default() -> Self {
        DistinctCount {
            bits: Box::new([0; DISTINCT_BITS / 64]),
        }
    }
}

impl DistinctCount {
    fn add(&mut self, addr: IpAddr) {
        let x = match addr {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let v = u128::from(a);
                (v as u64) ^ ((v >> 64) as u64).rotate_left(29) ^ 0x6a09_e667_f3bc_c909
            }
        };
        let bit = (mix64(x) % DISTINCT_BITS as u64) as usize;
        self.bits[bit / 64] |= 1 << (bit % 64);
    }

    fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// The estimate, and whether the bitmap is full (then only a lower bound).
    pub fn estimate(&self) -> (u64, bool) {
        let set: u32 = self.bits.iter().map(|w| w.count_ones()).sum();
        let m = DISTINCT_BITS as f64;
        let zero = m - f64::from(set);
        if zero == 0.0 {
            // ln(0): every bit set; m·ln(m) is what the estimator reaches last.
            return ((m * m.ln()).round() as u64, true);
        }
        ((-m * (zero / m).ln()).round() as u64, false)
    }
}

/// What to do with one alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Emit it, reporting this many suppressed repeats of its key and, for an
    /// aggregated key, the distinct addresses of the side the key leaves out
    /// among them.
    Emit {
        suppressed: u64,
        others: Option<(u64, bool)>,
    },
    /// A repeat inside the dedupe window.
    Deduped,
    /// Over the global per-second cap.
    RateLimited,
}

#[derive(Clone, Debug)]
struct Slot {
    /// Packet time of the last emitted alert; `None` if every one so far was
    /// rate-limited.
    last_emit: Option<Timestamp>,
    /// Suppressed since `last_emit`.
    pending: u64,
    /// Aggregated keys: the left-out side's addresses of the pending repeats.
    others: Option<DistinctCount>,
    /// Position in the LRU order.
    tick: u64,
}

#[derive(Debug)]
pub struct Limiter {
    dedupe_nanos: u64,
    /// 0: no cap.
    max_per_sec: u32,
    max_keys: usize,
    slots: HashMap<DedupeKey, Slot>,
    /// tick → key, oldest first.
    lru: BTreeMap<u64, DedupeKey>,
    next_tick: u64,
    /// The packet-time second being counted and how many were emitted in it.
    second: Option<i64>,
    in_second: u32,
    pub evictions: u64,
    /// Pending suppressed counts lost with evicted keys.
    pub lost_suppressed: u64,
}

impl Limiter {
    /// `dedupe_secs` 0 disables deduplication, `max_per_sec` 0 the cap;
    /// `max_keys` is at least 1.
    pub fn new(dedupe_secs: u64, max_per_sec: u32, max_keys: usize) -> Self {
        Limiter {
            dedupe_nanos: dedupe_secs.saturating_mul(Timestamp::NANOS_PER_SEC as u64),
            max_per_sec,
            max_keys: max_keys.max(1),
            slots: HashMap::new(),
            lru: BTreeMap::new(),
            next_tick: 0,
            second: None,
            in_second: 0,
            evictions: 0,
            lost_suppressed: 0,
        }
    }

    /// New settings, as [`Limiter::new`] takes them; remembered keys stay
    /// (the least recently seen are evicted when `max_keys` shrank).
    pub fn reconfigure(&mut self, dedupe_secs: u64, max_per_sec: u32, max_keys: usize) {
        self.dedupe_nanos = dedupe_secs.saturating_mul(Timestamp::NANOS_PER_SEC as u64);
        self.max_per_sec = max_per_sec;
        self.max_keys = max_keys.max(1);
        self.evict_above(self.max_keys);
    }

    pub fn keys(&self) -> usize {
        self.slots.len()
    }

    /// Decides on an alert of `key` at `ts`; `other` is the address of the
    /// side an aggregated key leaves out (ignored for a pair key).
    pub fn check(&mut self, key: DedupeKey, ts: Timestamp, other: IpAddr) -> Decision {
        let tick = self.next_tick;
        self.next_tick += 1;
        if !self.slots.contains_key(&key) {
            self.make_room();
        }
        let aggregated = key.source.is_none() || key.target.is_none();
        let slot = self.slots.entry(key).or_insert_with(|| Slot {
            last_emit: None,
            pending: 0,
            others: aggregated.then(DistinctCount::default),
            tick,
        });
        self.lru.remove(&slot.tick);
        slot.tick = tick;
        self.lru.insert(tick, key);

        // Distance in either direction: replaying an older capture after a
        // newer one starts a fresh window instead of suppressing everything.
        let in_window = slot
            .last_emit
            .is_some_and(|last| last.as_nanos().abs_diff(ts.as_nanos()) < self.dedupe_nanos);
        if in_window {
            slot.suppress(other);
            return Decision::Deduped;
        }

        let second = ts.secs();
        if self.second != Some(second) {
            self.second = Some(second);
            self.in_second = 0;
        }
        if self.max_per_sec != 0 && self.in_second >= self.max_per_sec {
            slot.suppress(other);
            return Decision::RateLimited;
        }
        self.in_second += 1;
        let suppressed = std::mem::take(&mut slot.pending);
        let others = slot.others.as_mut().map(|o| {
            let estimate = if o.is_empty() {
                (0, false)
            } else {
                o.estimate()
            };
            *o = DistinctCount::default();
            estimate
        });
        slot.last_emit = Some(ts);
        Decision::Emit { suppressed, others }
    }
    /// Evicts least recently seen keys until one more fits.
    fn make_room(&mut self) {
        self.evict_above(self.max_keys - 1);
    }

    /// Evicts least recently seen keys until at most `keep` remain.
    fn evict_above(&mut self, keep: usize) {
        while self.slots.len() > keep {
            let Some((_, old)) = self.lru.pop_first() else {
                return;
            };
            if let Some(slot) = self.slots.remove(&old) {
                self.evictions += 1;
                self.lost_suppressed += slot.pending;
            }
        }
    }
}

impl Slot {
    fn suppress(&mut self, other: IpAddr) {
        self.pending += 1;
        if let Some(o) = self.others.as_mut() {
            o.add(other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn at(secs: i64, millis: u32) -> Timestamp {
        Timestamp::from_secs_nanos(secs, millis * 1_000_000)
    }

    #[test]
    fn repeats_inside_the_window_are_counted_into_the_next_alert() {
        let mut l = Limiter::new(60, 0, 16);
        let k = DedupeKey::pair(1, ip(1), ip(2));
        assert_eq!(
            l.check(k, at(1000, 0), ip(99)),
            Decision::Emit {
                suppressed: 0,
                others: None
            }
        );
        assert_eq!(l.check(k, at(1010, 0), ip(99)), Decision::Deduped);
        assert_eq!(l.check(k, at(1059, 999), ip(99)), Decision::Deduped);
        // 60 s after the last emitted alert the window is over.
        assert_eq!(
            l.check(k, at(1060, 0), ip(99)),
            Decision::Emit {
                suppressed: 2,
                others: None
            }
        );
        assert_eq!(l.check(k, at(1061, 0), ip(99)), Decision::Deduped);
    }

    #[test]
    fn keys_differ_by_rule_source_and_target() {
        let mut l = Limiter::new(60, 0, 16);
        assert!(matches!(
            l.check(DedupeKey::pair(1, ip(1), ip(2)), at(0, 0), ip(99)),
            Decision::Emit { .. }
        ));
        assert!(matches!(
            l.check(DedupeKey::pair(2, ip(1), ip(2)), at(0, 0), ip(99)),
            Decision::Emit { .. }
        ));
        assert!(matches!(
            l.check(DedupeKey::pair(1, ip(3), ip(2)), at(0, 0), ip(99)),
            Decision::Emit { .. }
        ));
        assert!(matches!(
            l.check(DedupeKey::pair(1, ip(1), ip(3)), at(0, 0), ip(99)),
            Decision::Emit { .. }
        ));
        assert_eq!(
            l.check(DedupeKey::pair(1, ip(1), ip(2)), at(1, 0), ip(99)),
            Decision::Deduped
        );
        assert_eq!(l.keys(), 4);
    }

    #[test]
    fn dedupe_zero_emits_every_alert() {
        let mut l = Limiter::new(0, 0, 16);
        let k = DedupeKey::pair(1, ip(1), ip(2));
        for _ in 0..3 {
            assert_eq!(
                l.check(k, at(5, 0), ip(99)),
                Decision::Emit {
                    suppressed: 0,
                    others: None
                }
            );
        }
    }

    #[test]
    fn global_cap_counts_per_second_of_packet_time() {
        let mut l = Limiter::new(60, 2, 16);
        assert!(matches!(
            l.check(DedupeKey::pair(1, ip(1), ip(9)), at(5, 100), ip(99)),
            Decision::Emit { .. }
        ));
        assert!(matches!(
            l.check(DedupeKey::pair(1, ip(2), ip(9)), at(5, 200), ip(99)),
            Decision::Emit { .. }
        ));
        assert_eq!(
            l.check(DedupeKey::pair(1, ip(3), ip(9)), at(5, 300), ip(99)),
            Decision::RateLimited
        );
        // Deduped repeats do not use the budget of the next second.
        assert_eq!(
            l.check(DedupeKey::pair(1, ip(1), ip(9)), at(6, 0), ip(99)),
            Decision::Deduped
        );
        // The rate-limited key was never emitted: it goes out at the next
        // second and reports the dropped one.
        assert_eq!(
            l.check(DedupeKey::pair(1, ip(3), ip(9)), at(6, 500), ip(99)),
            Decision::Emit {
                suppressed: 1,
                others: None
            }
        );
        assert!(matches!(
            l.check(DedupeKey::pair(1, ip(4), ip(9)), at(6, 600), ip(99)),
            Decision::Emit { .. }
        ));
        assert_eq!(
            l.check(DedupeKey::pair(1, ip(5), ip(9)), at(6, 700), ip(99)),
            Decision::RateLimited
        );
    }

    #[test]
    fn least_recently_seen_key_is_evicted() {
        let mut l = Limiter::new(60, 0, 2);
        let a = DedupeKey::pair(1, ip(1), ip(9));
        let b = DedupeKey::pair(1, ip(2), ip(9));
        let c = DedupeKey::pair(1, ip(3), ip(9));
        assert!(matches!(
            l.check(a, at(0, 0), ip(99)),
            Decision::Emit { .. }
        ));
        assert!(matches!(
            l.check(b, at(1, 0), ip(99)),
            Decision::Emit { .. }
        ));
        assert_eq!(l.check(a, at(2, 0), ip(99)), Decision::Deduped); // a is now the most recent
        assert!(matches!(
            l.check(c, at(3, 0), ip(99)),
            Decision::Emit { .. }
        )); // evicts b
        assert_eq!(l.evictions, 1);
        assert_eq!(l.keys(), 2);
        // b was forgotten, so it is emitted again inside its window; that
        // evicts a, whose pending repeat is lost and counted.
        assert_eq!(
            l.check(b, at(4, 0), ip(99)),
            Decision::Emit {
                suppressed: 0,
                others: None
            }
        );
        assert_eq!(l.evictions, 2);
        assert_eq!(l.lost_suppressed, 1);
        assert_eq!(l.check(c, at(5, 0), ip(99)), Decision::Deduped);
    }

    #[test]
    fn reconfigure_keeps_keys_and_judges_repeats_by_the_new_window() {
        let mut l = Limiter::new(3600, 0, 4);
        let keys: Vec<DedupeKey> = (1..=3).map(|i| DedupeKey::pair(1, ip(i), ip(9))).collect();
        for (i, &k) in keys.iter().enumerate() {
            assert!(matches!(
                l.check(k, at(i as i64, 0), ip(99)),
                Decision::Emit { .. }
            ));
        }
        assert_eq!(l.check(keys[0], at(10, 0), ip(99)), Decision::Deduped);
        // A 5 s window: 10 s after its last alert, key 0 goes out again,
        // reporting the repeat suppressed under the old window.
        l.reconfigure(5, 0, 4);
        assert_eq!(
            l.check(keys[0], at(11, 0), ip(99)),
            Decision::Emit {
                suppressed: 1,
                others: None
            }
        );
        assert_eq!(l.check(keys[0], at(12, 0), ip(99)), Decision::Deduped);
        // Fewer keys: the least recently seen (keys 1, then 2) are evicted.
        l.reconfigure(5, 1, 1);
        assert_eq!((l.keys(), l.evictions), (1, 2));
        assert_eq!(l.check(keys[0], at(13, 0), ip(99)), Decision::Deduped);
        // The new per-second cap holds.
        assert!(matches!(
            l.check(keys[1], at(20, 0), ip(99)),
            Decision::Emit { .. }
        ));
        assert_eq!(l.check(keys[2], at(20, 1), ip(99)), Decision::RateLimited);
    }

    #[test]
    fn time_going_back_by_more_than_the_window_starts_a_new_window() {
        let mut l = Limiter::new(60, 0, 16);
        let k = DedupeKey::pair(1, ip(1), ip(2));
        assert!(matches!(
            l.check(k, at(10_000, 0), ip(99)),
            Decision::Emit { .. }
        ));
        assert_eq!(l.check(k, at(9_990, 0), ip(99)), Decision::Deduped);
        assert_eq!(
            l.check(k, at(100, 0), ip(99)),
            Decision::Emit {
                suppressed: 1,
                others: None
            }
        );
    }

    #[test]
    fn a_flood_from_many_sources_is_one_alert_per_target_with_its_sources() {
        let mut l = Limiter::new(60, 0, 16);
        let per_target = DedupeKey {
            signature_id: 7,
            source: None,
            target: Some(ip(10)),
            episode: 0,
        };
        let spoofed = |n: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
        assert_eq!(
            l.check(per_target, at(100, 0), spoofed(0)),
            Decision::Emit {
                suppressed: 0,
                others: Some((0, false))
            }
        );
        // 40 more firings from 20 distinct sources, each twice, in the window.
        for n in 0..40 {
            assert_eq!(
                l.check(per_target, at(101, n), spoofed(1 + n / 2)),
                Decision::Deduped
            );
        }
        let Decision::Emit {
            suppressed,
            others: Some((sources, saturated)),
        } = l.check(per_target, at(160, 0), spoofed(0))
        else {
            panic!("the next window emits");
        };
        assert_eq!(suppressed, 40);
        // Linear counting with 2048 bits: 20 addresses collide with
        // probability ~9 %; the estimate is then still 19..=20.
        assert!((19..=20).contains(&sources), "{sources}");
        assert!(!saturated);
        // Another target of the same signature is its own episode.
        let other_target = DedupeKey {
            target: Some(ip(11)),
            ..per_target
        };
        assert!(matches!(
            l.check(other_target, at(160, 1), spoofed(0)),
            Decision::Emit { .. }
        ));
    }

    #[test]
    fn distinct_count_estimates_stay_close_and_saturate() {
        let mut d = DistinctCount::default();
        for n in 0..1000u32 {
            d.add(IpAddr::V4(Ipv4Addr::from(n)));
            d.add(IpAddr::V4(Ipv4Addr::from(n)));
        }
        let (estimate, saturated) = d.estimate();
        // Linear counting's standard error at load 1000/2048 is about 2 %.
        assert!((940..=1060).contains(&estimate), "{estimate}");
        assert!(!saturated);
        for n in 0..100_000u32 {
            d.add(IpAddr::V4(Ipv4Addr::from(n)));
        }
        assert!(d.estimate().1);
    }
}
