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
