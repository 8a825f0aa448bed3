//! Helpers shared by the benchmarks in `benches/`: pre-generated key arrays (uniform and
//! Zipf-skewed), a two-thread runner for contention, and the resident set size of this process.
//!
//! Nothing here is timed itself; the benches call it outside their measured loops.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// A (app, shop) key, the shape of the ShopBase and TikTok Shop limits.
pub type AppShop = (u64, u64);

/// The `i`-th distinct key: app ids cycle through 97 apps, shop ids are spread over 64 bits by
/// an odd multiplier, so distinct `i` give distinct keys and keys do not look sequential.
pub fn key_of(i: u32) -> AppShop {
    let i = u64::from(i);
    (
        i % 97 + 1,
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995,
    )
}

/// SplitMix64, a small seeded generator (the benches' inputs are reproducible).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..n` (`n ≥ 1`; the modulo bias is negligible for the sizes here).
    #[allow(clippy::cast_possible_truncation)] // The remainder is below `n`, a u32.
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next_u64() % u64::from(n)) as u32
    }

    /// A uniform value in `[0, 1)`.
    #[allow(clippy::cast_precision_loss)]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How keys are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Skew {
    /// Every key equally likely.
    Uniform,
    /// Zipf with this exponent: the key of rank k is drawn with weight 1/k^s.
    Zipf(f64),
}

/// `len` key indices in `0..keys`, drawn as `skew` says, from `seed`. For Zipf, ranks are
/// shuffled onto key indices so the hot keys are not the first ones.
pub fn key_indices(keys: u32, len: usize, skew: Skew, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    match skew {
        Skew::Uniform => (0..len).map(|_| rng.below(keys)).collect(),
        Skew::Zipf(s) => {
            let mut cdf = Vec::with_capacity(keys as usize);
            let mut total = 0.0;
            for rank in 1..=keys {
                total += 1.0 / f64::from(rank).powf(s);
                cdf.push(total);
            }
            let mut rank_to_key: Vec<u32> = (0..keys).collect();
            for i in (1..keys).rev() {
                let j = rng.below(i + 1);
                rank_to_key.swap(i as usize, j as usize);
            }
            (0..len)
                .map(|_| {
                    let x = rng.unit() * total;
                    let rank = cdf.partition_point(|&c| c <= x).min(cdf.len() - 1);
                    rank_to_key[rank]
                })
                .collect()
        }
    }
}

/// The keys for `indices`.
pub fn keys_for(indices: &[u32]) -> Vec<AppShop> {
    indices.iter().map(|&i| key_of(i)).collect()
}

/// Runs `work(thread, iters)` on two threads started together and returns the wall time until
/// both are done. Each thread does `iters` operations, so `elapsed / iters` is the time per
/// operation as one thread sees it while the other runs too.
pub fn two_threads(iters: u64, work: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let barrier = Barrier::new(3);
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                work(thread, iters);
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Leaving the scope joins both threads.
        start
    })
    .elapsed()
}

/// The resident set size of this process in bytes (`VmRSS` of `/proc/self/status`), or `None`
/// where that is not available.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A value on its own 128-byte line pair, so two of them side by side never share a cache line
/// (nor an adjacent-line prefetch pair).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_zipf_is_skewed() {
        let mut keys: Vec<AppShop> = (0..10_000).map(key_of).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 10_000);
        let zipf = key_indices(1_000, 100_000, Skew::Zipf(1.0), 1);
        let uniform = key_indices(1_000, 100_000, Skew::Uniform, 1);
        let top = |v: &[u32]| {
            let mut counts = vec![0u32; 1_000];
            for &i in v {
                counts[i as usize] += 1;
            }
            *counts.iter().max().unwrap()
        };
        // Rank 1 of Zipf(1) over 1 000 keys has weight 1/H(1000) ≈ 13 %.
        assert!(top(&zipf) > 10_000, "{}", top(&zipf));
        assert!(top(&uniform) < 300, "{}", top(&uniform));
        assert!(zipf.iter().chain(&uniform).all(|&i| i < 1_000));
    }
}

/// The floor a key table is measured against: open addressing with 32-byte slots (key, state,
/// an occupied mark; aligned to 32 so none straddles a cache line), a multiply-fold home hash,
/// linear probing, and a decision that is one 64-bit compare-and-swap of a GCRA state in units
/// of one tick. Nothing else: no tiers, no reclamation, no concurrent insertion, no reported
/// numbers (only allowed or not). Keys are inserted once, single-threaded, before measuring.
pub mod floor {
    use std::sync::atomic::{AtomicU64, Ordering};

    #[repr(C, align(32))]
    #[derive(Default)]
    struct Slot {
        hi: AtomicU64,
        lo: AtomicU64,
        state: AtomicU64,
        used: AtomicU64,
    }

    /// A table of `2^k ≥ 2 × keys` slots (load ≤ 0.5) of one quota.
    pub struct Floor {
        slots: Vec<Slot>,
        shift: u32,
        interval: u64,
        tolerance: u64,
    }

    #[allow(clippy::cast_possible_truncation)] // the halves, on purpose
    const fn fold(x: u64, y: u64) -> u64 {
        let p = (x as u128) * (y as u128);
        (p as u64) ^ ((p >> 64) as u64)
    }

    impl Floor {
        /// Room for `keys` keys at load ≤ 0.5, each a bucket of `burst` draining one per
        /// `interval` ticks.
        pub fn new(keys: usize, burst: u64, interval: u64) -> Floor {
            let n = (2 * keys).next_power_of_two();
            Floor {
                slots: (0..n).map(|_| Slot::default()).collect(),
                shift: 64 - n.trailing_zeros(),
                interval,
                tolerance: burst * interval,
            }
        }

        /// Bytes of slots.
        pub fn bytes(&self) -> usize {
            self.slots.len() * std::mem::size_of::<Slot>()
        }

        #[inline]
        fn home(&self, hi: u64, lo: u64) -> usize {
            let h = fold(
                fold(lo ^ 0x243f_6a88_85a3_08d3, hi ^ 0x1319_8a2e_0370_7344),
                0x9e37_79b9_7f4a_7c15,
            );
            usize::try_from(h >> self.shift).unwrap_or(0)
        }

        /// Inserts a key (setup only).
        pub fn insert(&self, hi: u64, lo: u64) {
            let mask = self.slots.len() - 1;
            let mut i = self.home(hi, lo);
            loop {
                let s = &self.slots[i];
                if s.used.load(Ordering::Relaxed) == 0 {
                    s.hi.store(hi, Ordering::Relaxed);
                    s.lo.store(lo, Ordering::Relaxed);
                    s.used.store(1, Ordering::Release);
                    return;
                }
                if s.hi.load(Ordering::Relaxed) == hi && s.lo.load(Ordering::Relaxed) == lo {
                    return;
                }
                i = (i + 1) & mask;
            }
        }

        /// One decision of cost 1 at `now` on a present key: allowed or not.
        #[inline]
        pub fn decide(&self, hi: u64, lo: u64, now: u64) -> bool {
            let mask = self.slots.len() - 1;
            let mut i = self.home(hi, lo);
            loop {
                let s = &self.slots[i];
                if s.hi.load(Ordering::Relaxed) == hi && s.lo.load(Ordering::Relaxed) == lo {
                    let mut state = s.state.load(Ordering::Acquire);
                    loop {
                        let next = state.max(now) + self.interval;
                        if next > now + self.tolerance {
                            return false;
                        }
                        match s.state.compare_exchange_weak(
                            state,
                            next,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => return true,
                            Err(actual) => state = actual,
                        }
                    }
                }
                if s.used.load(Ordering::Relaxed) == 0 {
                    return false;
                }
                i = (i + 1) & mask;
            }
        }
    }
}
