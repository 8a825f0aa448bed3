//! Long runs: exact rates do not drift (docs/semantics.md#quotas), over simulated years.
//!
//! The runs step time smartly: a request is asked for at exactly the tick `retry_after` names,
//! in batches (costs up to the burst), so ten years take a few thousand decisions. A saturating
//! client that never lets the bucket run empty is admitted exactly `B + ⌊C·t/P⌋` units by time
//! t; that is checked at arbitrary, non-aligned times along the way.

use tollgate_models as models;
use tollgate_models::Model as _;

use tollgate::{FixedWindow, LeakyBucket, Outcome, Quota, SlidingLog, WindowQuota};

const NS: u64 = 1_000_000_000;
const YEAR_S: u64 = 365 * 86_400 + 86_400 / 4;

/// A small deterministic generator (xorshift64*), so the runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `true` with probability 1/n.
    fn one_in(&mut self, n: u64) -> bool {
        self.range(1, n) == 1
    }

    /// Uniform in `lo..=hi` (bias irrelevant here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Units a saturating client has been admitted by `t` plus what it could take at `t`:
/// B + ⌊C·t/P⌋, in exact integer arithmetic.
fn bound(burst: u64, count: u64, period: u64, t: u64) -> u128 {
    u128::from(burst) + u128::from(t) * u128::from(count) / u128::from(period)
}

/// Saturates a bucket of `burst` draining `count` per `period` ticks from t = 0 to `end`, in
/// batches asked for at the exact tick they become admissible, and checks at arbitrary times
/// that admitted + admissible-now = B + ⌊C·t/P⌋. Returns the number of batches.
fn saturate(burst: u64, count: u64, period: u64, end: u64, seed: u64) -> u64 {
    let bucket = LeakyBucket::new(Quota::new(burst, count, period).unwrap());
    let mut rng = Rng(seed);
    let mut admitted = u128::from(burst);
    assert!(bucket.decide(0, burst).unwrap().is_allowed());
    let mut t = 0u64;
    let mut batches = 0;
    // Check times, strictly increasing, at arbitrary ticks.
    let mut check = rng.range(1, end / 1_000);
    // Never the whole burst, so the level stays above 0 and no drain is lost.
    let mut cost = rng.range(1, burst - 1);
    while t < end {
        let d = bucket.peek(t, cost).unwrap();
        let at = t + d.retry_after.unwrap();
        if check < at {
            // A check time before the batch is admissible: admitted + admissible-now is exact.
            let d = bucket.peek(check, 1).unwrap();
            assert_eq!(
                admitted + u128::from(d.remaining),
                bound(burst, count, period, check),
                "at tick {check}"
            );
            if rng.one_in(4) && d.remaining > 0 {
                // Take everything that is admissible now; then nothing more passes.
                assert!(bucket.decide(check, d.remaining).unwrap().is_allowed());
                admitted += u128::from(d.remaining);
                assert_eq!(bucket.decide(check, 1).unwrap().outcome, Outcome::Limited);
                t = check;
            }
            check += rng.range(1, end / 1_000);
            continue;
        }
        if at > t {
            // retry_after is the least wait: one tick earlier is still too early.
            assert_eq!(bucket.peek(at - 1, cost).unwrap().outcome, Outcome::Limited);
        }
        let d = bucket.decide(at, cost).unwrap();
        assert_eq!(d.outcome, Outcome::Allowed, "batch {batches} at tick {at}");
        admitted += u128::from(cost);
        t = at;
        batches += 1;
        assert!(admitted <= bound(burst, count, period, t));
        cost = rng.range(1, burst - 1);
    }
    // At the end (the last batch, ten years in): exactly B + C·t/P, no drift.
    let d = bucket.peek(t, 1).unwrap();
    assert_eq!(
        admitted + u128::from(d.remaining),
        bound(burst, count, period, t)
    );
    batches
}

#[test]
fn three_per_second_on_nanoseconds_for_ten_years_admits_burst_plus_three_per_second() {
    let end = 10 * YEAR_S * NS;
    let batches = saturate(1_000_000, 3, NS, end, 0x9e37_79b9_7f4a_7c15);
    assert!(batches > 1_000);
    // The total: burst + 3 × elapsed seconds, exactly.
    assert_eq!(
        bound(1_000_000, 3, NS, end),
        1_000_000 + 3 * u128::from(10 * YEAR_S)
    );
}

#[test]
fn seven_per_thousand_ticks_on_a_1khz_clock_for_ten_years_admits_burst_plus_seven_per_second() {
    let end = 10 * YEAR_S * 1_000;
    let batches = saturate(1_000_000, 7, 1_000, end, 0x2545_f491_4f6c_dd1d);
    assert!(batches > 1_000);
    assert_eq!(
        bound(1_000_000, 7, 1_000, end),
        1_000_000 + 7 * u128::from(10 * YEAR_S)
    );
}

/// One request at a time, each at the exact tick it becomes admissible, from an arbitrary start
/// ten years in: the k-th request after the burst passes at exactly start + ⌈k·P/C⌉.
fn paced_one_by_one(burst: u64, count: u64, period: u64, start: u64, requests: u64) {
    let bucket = LeakyBucket::new(Quota::new(burst, count, period).unwrap());
    assert!(bucket.decide(start, burst).unwrap().is_allowed());
    let mut t = start;
    for k in 1..=requests {
        let d = bucket.decide(t, 1).unwrap();
        assert_eq!(d.outcome, Outcome::Limited);
        t += d.retry_after.unwrap();
        let d = bucket.decide(t, 1).unwrap();
        assert!(d.is_allowed());
        let due = (u128::from(k) * u128::from(period)).div_ceil(u128::from(count));
        assert_eq!(u128::from(t - start), due, "request {k}");
    }
}

#[test]
fn pacing_one_by_one_ten_years_in_lands_on_the_exact_ticks() {
    let n = if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    paced_one_by_one(2, 3, NS, 10 * YEAR_S * NS + 123_456_789, n);
    paced_one_by_one(2, 7, 1_000, 10 * YEAR_S * 1_000 + 777, n);
    // ShopBase: 2 per second, burst 30.
    paced_one_by_one(30, 2, NS, 10 * YEAR_S * NS + 1, n / 10);
}

#[test]
fn a_fixed_window_keeps_its_edges_exact_over_ten_years() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for (limit, window, offset) in [(50, NS, 0), (50, NS, 123_456_789), (7, 1_000, 999)] {
        let w = FixedWindow::new(
            WindowQuota::new(limit, window)
                .unwrap()
                .with_offset(offset)
                .unwrap(),
        );
        // Each window is one second of its clock.
        let end = 10 * YEAR_S * window;
        let mut k = 0u64; // window k is [offset + k·W, offset + (k+1)·W)
        let mut sampled = 0;
        while offset + (k + 1) * window < end {
            let start = offset + k * window;
            let edge = start + window;
            let t = rng.range(start, edge - 1);
            let d = w.decide(t, limit).unwrap();
            assert_eq!(
                (d.outcome, d.used, d.reset_after),
                (Outcome::Allowed, limit, edge - t)
            );
            let d = w.decide(edge - 1, 1).unwrap();
            assert_eq!((d.outcome, d.retry_after), (Outcome::Limited, Some(1)));
            let d = w.decide(edge, 1).unwrap();
            assert_eq!(
                (d.outcome, d.used, d.reset_after),
                (Outcome::Allowed, 1, window)
            );
            sampled += 1;
            k += rng.range(1, 2_000_000);
        }
        assert!(sampled > 100);
    }
}

#[test]
fn a_fixed_window_admits_exactly_n_per_window_over_many_consecutive_windows() {
    let windows = if cfg!(debug_assertions) {
        50_000
    } else {
        500_000
    };
    let (limit, window, offset) = (7u64, 1_000u64, 333u64);
    let w = FixedWindow::new(
        WindowQuota::new(limit, window)
            .unwrap()
            .with_offset(offset)
            .unwrap(),
    );
    let mut rng = Rng(7);
    let mut admitted = 0u64;
    let start = 10 * YEAR_S * 1_000 + offset;
    for k in 0..windows {
        let edge = start + (k + 1) * window;
        let mut t = start + k * window + rng.range(0, 50);
        loop {
            let cost = rng.range(1, 3);
            let d = w.decide(t, cost).unwrap();
            if d.is_allowed() {
                admitted += cost;
                t += rng.range(0, 30);
                continue;
            }
            assert_eq!(d.retry_after, Some(edge - t));
            // Fill the rest exactly; then the window is closed until its edge.
            let rest = limit - d.used;
            if rest > 0 {
                assert!(w.decide(t, rest).unwrap().is_allowed());
                admitted += rest;
            }
            break;
        }
        assert_eq!(w.peek(edge - 1, 1).unwrap().outcome, Outcome::Limited);
    }
    assert_eq!(admitted, limit * windows);
}

#[test]
fn a_sliding_log_paced_greedily_admits_exactly_n_per_window_for_days() {
    let windows = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    let quota = WindowQuota::new(50, NS).unwrap();
    let mut log: SlidingLog<50> = SlidingLog::new(quota).unwrap();
    let start = 10 * YEAR_S * NS + 987_654_321;
    let mut t = start;
    let mut admitted = 0u64;
    for k in 1..=windows {
        // Everything up to the k-th window's end: exactly 50 per window, all at its start.
        let end = start + k * NS;
        loop {
            let next = log.next_admit_time(t, 1).unwrap();
            if next >= end {
                break;
            }
            assert!(log.decide(next, 1).unwrap().is_allowed());
            admitted += 1;
            t = next;
        }
        assert_eq!(admitted, 50 * k, "by the end of window {k}");
    }
}

#[test]
fn a_sliding_log_with_random_costs_equals_the_model_for_hours() {
    let requests = if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    let quota = WindowQuota::new(50, NS).unwrap();
    let mut log: SlidingLog<50> = SlidingLog::new(quota).unwrap();
    let mut model = models::SlidingLog::new(50, NS).unwrap();
    let mut rng = Rng(42);
    let mut t = 10 * YEAR_S * NS + 5;
    for i in 0..requests {
        let cost = rng.range(1, 5);
        t += rng.range(0, NS / 25);
        let want = model.decide(t, cost);
        assert_eq!(log.decide(t, cost), want, "request {i} at {t}");
        if let Some(next) = want
            .unwrap()
            .retry_after
            .filter(|&r| r > 0 && rng.one_in(2))
        {
            // Sometimes wait exactly as told: then it passes.
            t += next;
            let d = log.decide(t, cost).unwrap();
            assert_eq!(Ok(d), model.decide(t, cost));
            assert!(d.is_allowed());
        }
    }
}
