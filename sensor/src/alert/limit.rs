//! Deduplication per key and a global rate cap, both on packet time.
//!
//! Per dedupe key (rule, source, target): the first alert is emitted; repeats
//! closer than `dedupe_secs` to the last emitted one are suppressed and
//! counted, and the count rides on the next emitted alert. Globally at most
//! `max_alerts_per_sec` alerts are emitted per second of packet time; an alert
//! over the cap is dropped and counted (and also counts as suppressed for its
//! key). The key table is bounded; the least recently seen key is evicted.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::capture::Timestamp;

/// (signature id, source address, target address).
pub type DedupeKey = (u32, IpAddr, IpAddr);

/// What to do with one alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Emit it, reporting this many suppressed repeats of its key.
    Emit { suppressed: u64 },
    /// A repeat inside the dedupe window.
    Deduped,
    /// Over the global per-second cap.
    RateLimited,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Packet time of the last emitted alert; `None` if every one so far was
    /// rate-limited.
    last_emit: Option<Timestamp>,
    /// Suppressed since `last_emit`.
    pending: u64,
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

    pub fn check(&mut self, key: DedupeKey, ts: Timestamp) -> Decision {
        let tick = self.next_tick;
        self.next_tick += 1;
        if !self.slots.contains_key(&key) {
            self.make_room();
        }
        let slot = self.slots.entry(key).or_insert(Slot {
            last_emit: None,
            pending: 0,
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
            slot.pending += 1;
            return Decision::Deduped;
        }

        let second = ts.secs();
        if self.second != Some(second) {
            self.second = Some(second);
            self.in_second = 0;
        }
        if self.max_per_sec != 0 && self.in_second >= self.max_per_sec {
            slot.pending += 1;
            return Decision::RateLimited;
        }
        self.in_second += 1;
        let suppressed = std::mem::take(&mut slot.pending);
        slot.last_emit = Some(ts);
        Decision::Emit { suppressed }
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
        let k = (1, ip(1), ip(2));
        assert_eq!(l.check(k, at(1000, 0)), Decision::Emit { suppressed: 0 });
        assert_eq!(l.check(k, at(1010, 0)), Decision::Deduped);
        assert_eq!(l.check(k, at(1059, 999)), Decision::Deduped);
        // 60 s after the last emitted alert the window is over.
        assert_eq!(l.check(k, at(1060, 0)), Decision::Emit { suppressed: 2 });
        assert_eq!(l.check(k, at(1061, 0)), Decision::Deduped);
    }

    #[test]
    fn keys_differ_by_rule_source_and_target() {
        let mut l = Limiter::new(60, 0, 16);
        assert!(matches!(
            l.check((1, ip(1), ip(2)), at(0, 0)),
            Decision::Emit { .. }
        ));
        assert!(matches!(
            l.check((2, ip(1), ip(2)), at(0, 0)),
            Decision::Emit { .. }
        ));
        assert!(matches!(
            l.check((1, ip(3), ip(2)), at(0, 0)),
            Decision::Emit { .. }
        ));
        assert!(matches!(
            l.check((1, ip(1), ip(3)), at(0, 0)),
            Decision::Emit { .. }
        ));
        assert_eq!(l.check((1, ip(1), ip(2)), at(1, 0)), Decision::Deduped);
        assert_eq!(l.keys(), 4);
    }

    #[test]
    fn dedupe_zero_emits_every_alert() {
        let mut l = Limiter::new(0, 0, 16);
        let k = (1, ip(1), ip(2));
        for _ in 0..3 {
            assert_eq!(l.check(k, at(5, 0)), Decision::Emit { suppressed: 0 });
        }
    }

    #[test]
    fn global_cap_counts_per_second_of_packet_time() {
        let mut l = Limiter::new(60, 2, 16);
        assert!(matches!(
            l.check((1, ip(1), ip(9)), at(5, 100)),
            Decision::Emit { .. }
        ));
        assert!(matches!(
            l.check((1, ip(2), ip(9)), at(5, 200)),
            Decision::Emit { .. }
        ));
        assert_eq!(
            l.check((1, ip(3), ip(9)), at(5, 300)),
            Decision::RateLimited
        );
        // Deduped repeats do not use the budget of the next second.
        assert_eq!(l.check((1, ip(1), ip(9)), at(6, 0)), Decision::Deduped);
        // The rate-limited key was never emitted: it goes out at the next
        // second and reports the dropped one.
        assert_eq!(
            l.check((1, ip(3), ip(9)), at(6, 500)),
            Decision::Emit { suppressed: 1 }
        );
        assert!(matches!(
            l.check((1, ip(4), ip(9)), at(6, 600)),
            Decision::Emit { .. }
        ));
        assert_eq!(
            l.check((1, ip(5), ip(9)), at(6, 700)),
            Decision::RateLimited
        );
    }

    #[test]
    fn least_recently_seen_key_is_evicted() {
        let mut l = Limiter::new(60, 0, 2);
        let a = (1, ip(1), ip(9));
        let b = (1, ip(2), ip(9));
        let c = (1, ip(3), ip(9));
        assert!(matches!(l.check(a, at(0, 0)), Decision::Emit { .. }));
        assert!(matches!(l.check(b, at(1, 0)), Decision::Emit { .. }));
        assert_eq!(l.check(a, at(2, 0)), Decision::Deduped); // a is now the most recent
        assert!(matches!(l.check(c, at(3, 0)), Decision::Emit { .. })); // evicts b
        assert_eq!(l.evictions, 1);
        assert_eq!(l.keys(), 2);
        // b was forgotten, so it is emitted again inside its window; that
        // evicts a, whose pending repeat is lost and counted.
        assert_eq!(l.check(b, at(4, 0)), Decision::Emit { suppressed: 0 });
        assert_eq!(l.evictions, 2);
        assert_eq!(l.lost_suppressed, 1);
        assert_eq!(l.check(c, at(5, 0)), Decision::Deduped);
    }

    #[test]
    fn reconfigure_keeps_keys_and_judges_repeats_by_the_new_window() {
        let mut l = Limiter::new(3600, 0, 4);
        let keys: Vec<DedupeKey> = (1..=3).map(|i| (1, ip(i), ip(9))).collect();
        for (i, &k) in keys.iter().enumerate() {
            assert!(matches!(l.check(k, at(i as i64, 0)), Decision::Emit { .. }));
        }
        assert_eq!(l.check(keys[0], at(10, 0)), Decision::Deduped);
        // A 5 s window: 10 s after its last alert, key 0 goes out again,
        // reporting the repeat suppressed under the old window.
        l.reconfigure(5, 0, 4);
        assert_eq!(
            l.check(keys[0], at(11, 0)),
            Decision::Emit { suppressed: 1 }
        );
        assert_eq!(l.check(keys[0], at(12, 0)), Decision::Deduped);
        // Fewer keys: the least recently seen (keys 1, then 2) are evicted.
        l.reconfigure(5, 1, 1);
        assert_eq!((l.keys(), l.evictions), (1, 2));
        assert_eq!(l.check(keys[0], at(13, 0)), Decision::Deduped);
        // The new per-second cap holds.
        assert!(matches!(l.check(keys[1], at(20, 0)), Decision::Emit { .. }));
        assert_eq!(l.check(keys[2], at(20, 1)), Decision::RateLimited);
    }

    #[test]
    fn time_going_back_by_more_than_the_window_starts_a_new_window() {
        let mut l = Limiter::new(60, 0, 16);
        let k = (1, ip(1), ip(2));
        assert!(matches!(l.check(k, at(10_000, 0)), Decision::Emit { .. }));
        assert_eq!(l.check(k, at(9_990, 0)), Decision::Deduped);
        assert_eq!(l.check(k, at(100, 0)), Decision::Emit { suppressed: 1 });
    }
}
