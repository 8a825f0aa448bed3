//! Randomness for jitter: a small seeded generator, or the caller's own.
//!
//! Backoff jitter needs a few random numbers per retry, not cryptographic ones. [`SplitMix64`]
//! (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014; the
//! generator Java's `SplittableRandom` and the xoshiro authors' seeding use) is one `u64` of
//! state, passes BigCrush, and is reproducible from its seed, so simulations replay exactly.
//! A caller with its own source (a hardware RNG, `rand`) implements [`Random`] instead.

/// A source of uniformly distributed 64-bit values.
pub trait Random {
    /// The next uniformly distributed `u64`.
    fn next_u64(&mut self) -> u64;

    /// A uniform value in `0..=max` (inclusive), without modulo bias: Lemire's multiply-shift
    /// with rejection. A degenerate source (say, one that always returns 0) cannot make it
    /// loop for ever: after 64 rejections it takes the last draw, slightly biased.
    fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        let range = max + 1;
        // Reject the low products that would make some values more likely than others.
        let threshold = range.wrapping_neg() % range;
        let mut product = 0u128;
        for _ in 0..64 {
            product = u128::from(self.next_u64()) * u128::from(range);
            // Truncation intended: the low 64 bits of the product.
            #[allow(clippy::cast_possible_truncation)]
            let low = product as u64;
            if low >= threshold {
                break;
            }
        }
        // The high 64 bits: below `range`, so it fits.
        u64::try_from(product >> 64).unwrap_or(max)
    }

    /// A uniform value in `low..=high` (inclusive); `low` when `high < low`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.up_to(high - low)
    }
}

impl<R: Random + ?Sized> Random for &mut R {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

/// SplitMix64: one `u64` of state, seeded by the caller, reproducible.
///
/// ```
/// use tollgate::client::{Random, SplitMix64};
/// let mut a = SplitMix64::new(42);
/// let mut b = SplitMix64::new(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.between(10, 20) <= 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed` (any value, zero included).
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }
}

impl Random for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs for seed 1234567, from the reference C implementation (Vigna's
        // splitmix64.c), as quoted by the xoshiro test vectors.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn up_to_covers_its_range_and_no_more() {
        let mut r = SplitMix64::new(7);
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            let v = r.up_to(4);
            seen[usize::try_from(v).unwrap()] += 1;
        }
        // Each of the 5 values about 2 000 times.
        assert!(
            seen.iter().all(|&n| (1_700..2_300).contains(&n)),
            "{seen:?}"
        );
        assert_eq!(r.up_to(0), 0);
        assert_eq!(r.between(5, 5), 5);
        assert_eq!(r.between(9, 3), 9);
        let _ = r.up_to(u64::MAX);
    }
}
