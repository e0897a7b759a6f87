//! Distinct values of a window in bounded memory.
//!
//! Peers ([`Distinct`]): the first [`EXACT_DISTINCT`] are kept and counted
//! exactly (a sweep of a /24 still is), further ones only set a bit of a
//! bitmap whose count of set bits gives an estimate (linear counting, Whang,
//! Vander-Zanden and Taylor, "A linear-time probabilistic counting algorithm
//! for database applications", ACM TODS 15(2), 1990).
//!
//! Ports ([`Ports`]): exact, a few in a list, then one bit per port (8 KiB).

use std::collections::HashSet;

use foldhash::fast::RandomState;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Values kept and counted exactly per window.
pub const EXACT_DISTINCT: usize = 256;
/// Bits of the bitmap that counts the values beyond (1 KiB): within about
/// 2 % up to a few thousand distinct values.
pub const DISTINCT_BITMAP_BITS: usize = 8192;

/// The distinct values seen: exact, then estimated.
#[derive(Debug)]
pub struct Distinct<T> {
    exact: HashSet<T, RandomState>,
    beyond: Option<Box<[u64; DISTINCT_BITMAP_BITS / 64]>>,
    /// Bits set in `beyond`, counted as they are set: `len` is asked at
    /// every insertion, and counting a flood's bitmap each time was most of
    /// its cost.
    ones: u32,
}

impl<T> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            exact: HashSet::default(),
            beyond: None,
            ones: 0,
        }
    }
}

impl<T: Hash + Eq> Distinct<T> {
    /// Adds `value`; whether it was not seen before (beyond the exact part:
    /// whether its bit was not set, so a few late ones count as seen).
    pub fn insert(&mut self, value: T) -> bool {
        if self.exact.len() < EXACT_DISTINCT {
            return self.exact.insert(value);
        }
        self.insert_beyond(&value)
    }

    /// [`Distinct::insert`] past the exact part; out of line (few windows
    /// get there).
    #[cold]
    #[inline(never)]
    fn insert_beyond(&mut self, value: &T) -> bool {
        if self.exact.contains(value) {
            return false;
        }
        // The same hasher every run (SipHash with fixed keys): a capture
        // always gives the same counts.
        let mut h = DefaultHasher::new();
        value.hash(&mut h);
        let bit = (h.finish() % DISTINCT_BITMAP_BITS as u64) as usize;
        let bits = self
            .beyond
            .get_or_insert_with(|| Box::new([0; DISTINCT_BITMAP_BITS / 64]));
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        let new = bits[word] & mask == 0;
        bits[word] |= mask;
        self.ones += u32::from(new);
        new
    }

    /// How many distinct values were added (estimated past the exact part).
    pub fn len(&self) -> usize {
        if self.beyond.is_none() {
            return self.exact.len();
        }
        let m = DISTINCT_BITMAP_BITS as f64;
        let zero = (m - f64::from(self.ones)).max(1.0);
        self.exact.len() + (-m * (zero / m).ln()).round() as usize
    }

    /// The values kept exactly (the first [`EXACT_DISTINCT`]), sorted: the
    /// same order in every run, whatever the set's hasher, so that what a
    /// bounded profile keeps of them does not change from run to run.
    pub fn kept(&self) -> Vec<&T>
    where
        T: Ord,
    {
        let mut kept: Vec<&T> = self.exact.iter().collect();
        kept.sort_unstable();
        kept
    }

    /// Empties the count for the next window, keeping the kept values'
    /// room (at most [`EXACT_DISTINCT`] of them) so that it need not grow
    /// again.
    pub fn clear(&mut self) {
        self.exact.clear();
        self.beyond = None;
        self.ones = 0;
    }
}

/// Ports kept in a list before the bitmap of every port is allocated.
pub const LISTED_PORTS: usize = 16;

/// The distinct ports seen, exactly.
#[derive(Debug, Default)]
pub struct Ports {
    listed: Vec<u16>,
    bits: Option<Box<[u64; 1024]>>,
    count: usize,
}

impl Ports {
    /// Adds `port`; whether it was not seen before.
    pub fn insert(&mut self, port: u16) -> bool {
        if let Some(bits) = self.bits.as_mut() {
            let (word, mask) = (usize::from(port / 64), 1u64 << (port % 64));
            if bits[word] & mask != 0 {
                return false;
            }
            bits[word] |= mask;
        } else if self.listed.contains(&port) {
            return false;
        } else if self.listed.len() < LISTED_PORTS {
            self.listed.push(port);
        } else {
            let mut bits = Box::new([0u64; 1024]);
            for p in self.listed.drain(..).chain(std::iter::once(port)) {
                bits[usize::from(p / 64)] |= 1u64 << (p % 64);
            }
            self.bits = Some(bits);
        }
        self.count += 1;
        true
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Empties the set for the next window, keeping the list's room.
    pub fn clear(&mut self) {
        self.listed.clear();
        self.bits = None;
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_up_to_the_kept_values_and_close_beyond() {
        let mut d = Distinct::default();
        for port in 0..EXACT_DISTINCT as u16 {
            assert!(d.insert(port));
            assert!(!d.insert(port), "seen");
        }
        assert_eq!(d.len(), EXACT_DISTINCT);
        assert_eq!(d.kept().len(), EXACT_DISTINCT);
        // 3 000 more: linear counting's standard error at this load is
        // about 1 % (Whang et al., table 2); allow 3 %.
        for port in 1000..4000u16 {
            d.insert(port);
            d.insert(port);
        }
        let n = d.len() as f64;
        let truth = (EXACT_DISTINCT + 3000) as f64;
        assert!((n - truth).abs() / truth < 0.03, "{n} for {truth}");
        assert_eq!(d.kept().len(), EXACT_DISTINCT, "memory stays bounded");
    }

    #[test]
    fn ports_are_counted_exactly_through_the_switch_to_the_bitmap() {
        let mut p = Ports::default();
        for round in 0..2 {
            for port in (0..=u16::MAX).step_by(7) {
                assert_eq!(p.insert(port), round == 0, "{port}");
            }
        }
        // 0, 7, ..., 65534: 65535 / 7 + 1.
        assert_eq!(p.len(), 9363);
    }
}
