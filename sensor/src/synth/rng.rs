//! The generator's own seeded PRNG.
//!
//! SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
//! generators", OOPSLA 2014; constants of Vigna's reference `splitmix64.c`).
//! It is written out here instead of taken from the `rand` crate so that a
//! given seed produces byte-identical captures across crate versions: `rand`
//! documents that its value streams may change between releases.

/// SplitMix64 state: one 64-bit counter advanced by the golden-ratio gamma.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough value in `0..n` (multiply-high; the bias is below
    /// n / 2^64, irrelevant here). Returns 0 when `n` is 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Value in `lo..=hi` (`lo` when `hi < lo`).
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// True with probability `permille / 1000`.
    pub(crate) fn chance(&mut self, permille: u16) -> bool {
        self.below(1000) < u64::from(permille)
    }

    /// One element of a non-empty array.
    pub(crate) fn pick<T: Copy, const N: usize>(&mut self, items: &[T; N]) -> T {
        const { assert!(N > 0) };
        items[self.below(N as u64) as usize]
    }

    /// Fill `out` with random bytes.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// An independent generator for a sub-task (its seed is the next output).
    pub(crate) fn fork(&mut self) -> SplitMix64 {
        SplitMix64(self.next_u64())
    }
}

/// Stateless mix of a seed and an index into a seed for a per-item generator.
pub(crate) fn derive(seed: u64, salt: u64, index: u64) -> SplitMix64 {
    let mut r = SplitMix64::new(seed ^ salt.rotate_left(32));
    let a = r.next_u64();
    SplitMix64::new(a ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_outputs_for_seed_1234567() {
        // Rosetta Code, "Pseudo-random numbers/Splitmix64": first five outputs.
        let mut r = SplitMix64::new(1_234_567);
        let want = [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for w in want {
            assert_eq!(r.next_u64(), w);
        }
    }

    #[test]
    fn below_and_range_stay_in_bounds() {
        let mut r = SplitMix64::new(7);
        assert_eq!(r.below(0), 0);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let v = r.range(5, 9);
            assert!((5..=9).contains(&v));
        }
        assert_eq!(r.range(9, 3), 9);
    }

    #[test]
    fn chance_follows_the_requested_rate() {
        let mut r = SplitMix64::new(99);
        let hits = (0..100_000).filter(|_| r.chance(250)).count();
        assert!((23_500..26_500).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| r.chance(0)));
        assert!((0..1000).all(|_| r.chance(1000)));
    }

    #[test]
    fn derived_generators_differ_by_index_and_salt() {
        let a = derive(1, 2, 3).next_u64();
        assert_eq!(a, derive(1, 2, 3).next_u64());
        assert_ne!(a, derive(1, 2, 4).next_u64());
        assert_ne!(a, derive(1, 5, 3).next_u64());
        assert_ne!(a, derive(6, 2, 3).next_u64());
    }
}
