//! Backoff bounds per jitter strategy, the Retry-After floor and the attempt limit
//! (docs/semantics.md#client-toolkit), against the formulas of the AWS "Exponential Backoff and Jitter" article.

use proptest::prelude::*;
use tollgate::client::{Backoff, Jitter, Random, SplitMix64};

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated)
    ]
}

/// min(cap, base·2^k) computed with u128, independently of the crate.
fn expo(base: u64, cap: u64, k: u32) -> u64 {
    if k >= 64 {
        return cap;
    }
    let v = u128::from(base) << k;
    u64::try_from(v.min(u128::from(cap))).unwrap()
}

proptest! {
    #[test]
    fn every_delay_is_within_its_strategys_bounds(
        base in 1u64..1_000_000,
        extra in 0u64..u64::MAX / 2,
        jitter in jitter(),
        max_retries in 0u32..80,
        seed: u64,
        retry_after in proptest::option::of(0u64..u64::MAX),
    ) {
        let cap = base.saturating_add(extra);
        let policy = Backoff::new(base, cap, max_retries, jitter).unwrap();
        let mut rng = SplitMix64::new(seed);
        let mut retries = policy.start();
        let mut previous = base;
        for k in 0..max_retries {
            let floor = if k % 3 == 0 { retry_after } else { None };
            // The same generator state gives the strategy's own delay.
            let own = policy.delay(k, previous, &mut rng.clone());
            let d = retries.next_delay(floor, &mut rng).unwrap();
            // Never shorter than the server's Retry-After, else the strategy's delay.
            prop_assert_eq!(d, own.max(floor.unwrap_or(0)));
            let e = expo(base, cap, k);
            match jitter {
                Jitter::None => prop_assert_eq!(own, e),
                Jitter::Full => prop_assert!(own <= e),
                Jitter::Equal => prop_assert!(own >= e - e / 2 && own <= e),
                Jitter::Decorrelated => {
                    prop_assert!(own >= base && own <= cap);
                    prop_assert!(own <= previous.saturating_mul(3));
                }
            }
            previous = own;
        }
        prop_assert_eq!(retries.next_delay(None, &mut rng), None);
        prop_assert_eq!(retries.retries(), max_retries);
    }

    #[test]
    fn the_pure_delay_matches_the_article(
        base in 1u64..1_000_000_000,
        extra in 0u64..10_000_000_000,
        k in 0u32..100,
        previous in 0u64..100_000_000_000,
        seed: u64,
    ) {
        let cap = base + extra;
        let e = expo(base, cap, k);
        let mut rng = SplitMix64::new(seed);
        let none = Backoff::new(base, cap, 1, Jitter::None).unwrap();
        prop_assert_eq!(none.delay(k, previous, &mut rng), e);
        prop_assert_eq!(none.exponential(k), e);
        let full = Backoff::new(base, cap, 1, Jitter::Full).unwrap();
        prop_assert!(full.delay(k, previous, &mut rng) <= e);
        let equal = Backoff::new(base, cap, 1, Jitter::Equal).unwrap();
        let d = equal.delay(k, previous, &mut rng);
        prop_assert!(d >= e.div_ceil(2) && d <= e);
        let deco = Backoff::new(base, cap, 1, Jitter::Decorrelated).unwrap();
        let d = deco.delay(k, previous, &mut rng);
        let high = previous.max(base).saturating_mul(3);
        prop_assert!(d >= base && d <= high.min(cap));
    }
}

/// The jittered strategies really spread: the mean of full jitter is about e/2, of equal
/// jitter about 3e/4; decorrelated delays are not all equal.
#[test]
fn jitter_spreads_delays_as_the_article_says() {
    let mut rng = SplitMix64::new(2015);
    let e = 1_000_000u64;
    let full = Backoff::new(e, e, 1, Jitter::Full).unwrap();
    let equal = Backoff::new(e, e, 1, Jitter::Equal).unwrap();
    let n = 20_000u64;
    let mean = |b: &Backoff, rng: &mut SplitMix64| {
        (0..n).map(|_| u128::from(b.delay(0, e, rng))).sum::<u128>() / u128::from(n)
    };
    let m = mean(&full, &mut rng);
    assert!((490_000..510_000).contains(&m), "full jitter mean {m}");
    let m = mean(&equal, &mut rng);
    assert!((740_000..760_000).contains(&m), "equal jitter mean {m}");
    let deco = Backoff::new(100, 1_000_000, 10, Jitter::Decorrelated).unwrap();
    let mut r = deco.start();
    let delays: Vec<u64> = (0..10)
        .map(|_| r.next_delay(None, &mut rng).unwrap())
        .collect();
    assert!(delays.windows(2).any(|w| w[0] != w[1]), "{delays:?}");
    assert!(delays.iter().all(|&d| (100..=1_000_000).contains(&d)));
}

/// Caller-supplied randomness: the extremes of the source give the extremes of the range.
#[test]
fn caller_randomness_is_used() {
    struct Fixed(u64);
    impl Random for Fixed {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }
    let full = Backoff::new(10, 1_000, 3, Jitter::Full).unwrap();
    assert_eq!(full.delay(2, 0, &mut Fixed(0)), 0);
    assert_eq!(full.delay(2, 0, &mut Fixed(u64::MAX)), 40);
    let deco = Backoff::new(10, 1_000, 3, Jitter::Decorrelated).unwrap();
    assert_eq!(deco.delay(0, 500, &mut Fixed(0)), 10);
    assert_eq!(deco.delay(0, 500, &mut Fixed(u64::MAX)), 1_000);
}
