//! One limiter, one thread: a decision that is admitted (a CAS) and one that is refused (a
//! load), tollgate's `LeakyBucket` side by side with governor 0.10's direct `RateLimiter`.
//!
//! - `caller_tick`: our bucket is given `now` by the caller; governor reads a
//!   `FakeRelativeClock` (one relaxed load). Neither reads a real clock: the limiter alone.
//! - `real_clock`: governor's default clock (quanta: the TSC, scaled to nanoseconds); our bucket
//!   with the same TSC read (`quanta::Clock::raw`, our ticks are CPU cycles) and with
//!   `tollgate::clock::StdClock` (`Instant`, nanoseconds).
//!
//! For ours, `check(..)` (the outcome alone) and `decide(..).is_allowed()` answer what governor's
//! `check().is_ok()` answers; `full` also keeps the whole `Decision` (used, remaining,
//! retry_after, reset_after) alive.
//!
//! Every admitted case uses a quota that admits every request in the batch (a rate of one per
//! tick or nanosecond and a burst of 2³²; time is moved on between batches), every refused case
//! a full bucket of 1 that refills once an hour.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use governor::clock::{Clock, FakeRelativeClock};
use governor::{Quota as GQuota, RateLimiter};
use tollgate::clock::StdClock;
use tollgate::{LeakyBucket, Outcome, Quota};

const BURST: u32 = u32::MAX;
const HOUR_NS: u64 = 3_600_000_000_000;

fn ours_allowing() -> LeakyBucket {
    LeakyBucket::new(Quota::new(u64::from(BURST), 1, 1).expect("quota"))
}

fn ours_refusing() -> LeakyBucket {
    let b = LeakyBucket::new(Quota::new(1, 1, HOUR_NS).expect("quota"));
    assert!(b.decide(0, 1).expect("decide").is_allowed());
    b
}

fn governor_allowing() -> GQuota {
    GQuota::with_period(Duration::from_nanos(1))
        .expect("quota")
        .allow_burst(NonZeroU32::new(BURST).expect("burst"))
}

fn governor_refusing() -> GQuota {
    GQuota::with_period(Duration::from_nanos(HOUR_NS)).expect("quota")
}

fn caller_tick(c: &mut Criterion) {
    let mut g = c.benchmark_group("direct/caller_tick");

    // Admitted: a fresh batch starts 2^33 ticks later, when the bucket has drained.
    let bucket = ours_allowing();
    let mut now = 0u64;
    g.bench_function("allow/tollgate", |b| {
        b.iter_custom(|iters| {
            now += 1 << 33;
            let t = Instant::now();
            for _ in 0..iters {
                black_box(
                    bucket
                        .decide(black_box(now), 1)
                        .is_ok_and(|d| d.is_allowed()),
                );
            }
            t.elapsed()
        });
    });
    let bucket = ours_allowing();
    let mut now = 0u64;
    g.bench_function("allow/tollgate_check", |b| {
        b.iter_custom(|iters| {
            now += 1 << 33;
            let t = Instant::now();
            for _ in 0..iters {
                black_box(bucket.check(black_box(now), 1) == Ok(Outcome::Allowed));
            }
            t.elapsed()
        });
    });
    let bucket = ours_allowing();
    let mut now = 0u64;
    g.bench_function("allow/tollgate_full", |b| {
        b.iter_custom(|iters| {
            now += 1 << 33;
            let t = Instant::now();
            for _ in 0..iters {
                let _ = black_box(bucket.decide(black_box(now), 1));
            }
            t.elapsed()
        });
    });
    let clock = FakeRelativeClock::default();
    let limiter = RateLimiter::direct_with_clock(governor_allowing(), clock.clone());
    g.bench_function("allow/governor_fake_clock", |b| {
        b.iter_custom(|iters| {
            clock.advance(Duration::from_nanos(1 << 33));
            let t = Instant::now();
            for _ in 0..iters {
                black_box(limiter.check().is_ok());
            }
            t.elapsed()
        });
    });

    // Refused: a full bucket at a fixed time.
    let bucket = ours_refusing();
    g.bench_function("deny/tollgate", |b| {
        b.iter(|| black_box(bucket.decide(black_box(1), 1).is_ok_and(|d| d.is_allowed())));
    });
    g.bench_function("deny/tollgate_check", |b| {
        b.iter(|| black_box(bucket.check(black_box(1), 1) == Ok(Outcome::Allowed)));
    });
    g.bench_function("deny/tollgate_full", |b| {
        b.iter(|| black_box(bucket.decide(black_box(1), 1)));
    });
    let clock = FakeRelativeClock::default();
    let limiter = RateLimiter::direct_with_clock(governor_refusing(), clock.clone());
    assert!(limiter.check().is_ok());
    clock.advance(Duration::from_nanos(1));
    g.bench_function("deny/governor_fake_clock", |b| {
        b.iter(|| black_box(limiter.check().is_ok()));
    });
    g.finish();
}

fn real_clock(c: &mut Criterion) {
    let mut g = c.benchmark_group("direct/real_clock");
    let tsc = quanta::Clock::new();
    let std_clock = StdClock::new();

    let bucket = ours_allowing();
    g.bench_function("allow/tollgate_tsc", |b| {
        b.iter(|| black_box(bucket.decide(tsc.raw(), 1).is_ok_and(|d| d.is_allowed())));
    });
    let bucket = ours_allowing();
    g.bench_function("allow/tollgate_instant", |b| {
        b.iter(|| {
            black_box(
                bucket
                    .decide(std_clock.now(), 1)
                    .is_ok_and(|d| d.is_allowed()),
            )
        });
    });
    let limiter = RateLimiter::direct(governor_allowing());
    g.bench_function("allow/governor_default_clock", |b| {
        b.iter(|| black_box(limiter.check().is_ok()));
    });

    // Refused: the refill period is an hour of whatever the clock counts (TSC cycles run faster
    // than nanoseconds, so this bucket stays full for well under an hour: still the whole run).
    let bucket = ours_refusing();
    let start = tsc.raw();
    g.bench_function("deny/tollgate_tsc", |b| {
        b.iter(|| {
            black_box(
                bucket
                    .decide(tsc.raw() - start, 1)
                    .is_ok_and(|d| d.is_allowed()),
            )
        });
    });
    let bucket = ours_refusing();
    g.bench_function("deny/tollgate_instant", |b| {
        b.iter(|| {
            black_box(
                bucket
                    .decide(std_clock.now(), 1)
                    .is_ok_and(|d| d.is_allowed()),
            )
        });
    });
    let limiter = RateLimiter::direct(governor_refusing());
    assert!(limiter.check().is_ok());
    g.bench_function("deny/governor_default_clock", |b| {
        b.iter(|| black_box(limiter.check().is_ok()));
    });
    // What the clocks alone cost, to read the rows above.
    g.bench_function("clock/quanta_raw", |b| {
        b.iter(|| black_box(tsc.raw()));
    });
    g.bench_function("clock/std_instant", |b| {
        b.iter(|| black_box(std_clock.now()));
    });
    let default_clock = governor::clock::DefaultClock::default();
    g.bench_function("clock/governor_default", |b| {
        b.iter(|| black_box(default_clock.now()));
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = caller_tick, real_clock
}
criterion_main!(benches);
