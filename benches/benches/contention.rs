//! Two threads deciding at once, on one key (one shared limiter: every admitted decision is a
//! contended CAS on the same cache line) and on disjoint keys (one limiter each, on separate
//! cache lines), against one thread alone. Reported as the time per decision as one thread sees
//! it. On a machine with 2 vCPUs that share a core's worth of throughput, the point is the
//! contention cost (one key vs disjoint keys), not a speed-up.
//!
//! Caller tick for ours, `FakeRelativeClock` for governor, as in `direct/caller_tick`; every
//! decision is admitted (rate one per tick, burst 2³²), so every one is a CAS. Group
//! `contention` uses single limiters (our `LeakyBucket`, governor's direct limiter), group
//! `contention_keyed` the keyed ones (our `BucketTable`, governor's keyed `DashMap`).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use governor::clock::{Clock, FakeRelativeClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota as GQuota, RateLimiter};
use tollgate::key::{Key, Seed};
use tollgate::table::{self, AtomicU64, BucketTable, FullPolicy};
use tollgate::{LeakyBucket, Quota};
use tollgate_benches::{two_threads, Padded};

type GovernorDirect = RateLimiter<
    NotKeyed,
    InMemoryState,
    FakeRelativeClock,
    NoOpMiddleware<<FakeRelativeClock as Clock>::Instant>,
>;

fn ours() -> Padded<LeakyBucket> {
    Padded(LeakyBucket::new(
        Quota::new(u64::from(u32::MAX), 1, 1).expect("quota"),
    ))
}

fn governor(clock: &FakeRelativeClock) -> Padded<GovernorDirect> {
    let quota = GQuota::with_period(Duration::from_nanos(1))
        .expect("quota")
        .allow_burst(NonZeroU32::MAX);
    Padded(RateLimiter::direct_with_clock(quota, clock.clone()))
}

fn decide_ours(bucket: &LeakyBucket, now: u64, iters: u64) {
    for _ in 0..iters {
        black_box(
            bucket
                .decide(black_box(now), 1)
                .is_ok_and(|d| d.is_allowed()),
        );
    }
}

fn decide_governor(limiter: &GovernorDirect, iters: u64) {
    for _ in 0..iters {
        black_box(limiter.check().is_ok());
    }
}

fn contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("contention");

    let shared = ours();
    let apart = [ours(), ours()];
    let mut now = 0u64;
    g.bench_function("tollgate/one_thread", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            let t = Instant::now();
            decide_ours(&shared.0, now, iters);
            t.elapsed()
        });
    });
    g.bench_function("tollgate/two_threads_one_key", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            two_threads(iters, &|_, n| decide_ours(&shared.0, now, n))
        });
    });
    g.bench_function("tollgate/two_threads_disjoint_keys", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            two_threads(iters, &|thread, n| decide_ours(&apart[thread].0, now, n))
        });
    });

    let clock = FakeRelativeClock::default();
    let shared = governor(&clock);
    let apart = [governor(&clock), governor(&clock)];
    g.bench_function("governor/one_thread", |b| {
        b.iter_custom(|iters| {
            clock.advance(Duration::from_nanos(1 << 34));
            let t = Instant::now();
            decide_governor(&shared.0, iters);
            t.elapsed()
        });
    });
    g.bench_function("governor/two_threads_one_key", |b| {
        b.iter_custom(|iters| {
            clock.advance(Duration::from_nanos(1 << 34));
            two_threads(iters, &|_, n| decide_governor(&shared.0, n))
        });
    });
    g.bench_function("governor/two_threads_disjoint_keys", |b| {
        b.iter_custom(|iters| {
            clock.advance(Duration::from_nanos(1 << 34));
            two_threads(iters, &|thread, n| decide_governor(&apart[thread].0, n))
        });
    });
    g.finish();
}

/// The same on a keyed table: ours (1 025 slots) and governor's keyed `DashMap`, one key shared
/// by both threads or one key each.
fn keyed_contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("contention_keyed");
    let tiers = [Quota::new(u64::from(u32::MAX), 1, 1).expect("quota")];
    let memory: Vec<AtomicU64> = (0..table::words(1024, 1))
        .map(|_| AtomicU64::new(0))
        .collect();
    let table =
        BucketTable::init(&memory, &tiers, Seed::new(3, 4), FullPolicy::FailClosed).expect("table");
    let keys = [Key::pair(1, 1), Key::pair(2, 2)];
    let decide = |key: Key, now: u64, iters: u64| {
        for _ in 0..iters {
            black_box(
                table
                    .decide(key, 0, black_box(now), 1)
                    .is_ok_and(|d| d.is_allowed()),
            );
        }
    };
    let mut now = 0u64;
    g.bench_function("tollgate/one_thread", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            let t = Instant::now();
            decide(keys[0], now, iters);
            t.elapsed()
        });
    });
    g.bench_function("tollgate/two_threads_one_key", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            two_threads(iters, &|_, n| decide(keys[0], now, n))
        });
    });
    g.bench_function("tollgate/two_threads_disjoint_keys", |b| {
        b.iter_custom(|iters| {
            now += 1 << 34;
            two_threads(iters, &|thread, n| decide(keys[thread], now, n))
        });
    });

    let clock = FakeRelativeClock::default();
    let quota = GQuota::with_period(Duration::from_nanos(1))
        .expect("quota")
        .allow_burst(NonZeroU32::MAX);
    let limiter = RateLimiter::dashmap_with_clock(quota, clock.clone());
    let gkeys = [(1u64, 1u64), (2, 2)];
    let check = |key: &(u64, u64), iters: u64| {
        for _ in 0..iters {
            black_box(limiter.check_key(key).is_ok());
        }
    };
    g.bench_function("governor/one_thread", |b| {
        b.iter_custom(|iters| {
            clock.advance(Duration::from_nanos(1 << 34));
            let t = Instant::now();
            check(&gkeys[0], iters);
            t.elapsed()
        });
    });
    g.bench_function("governor/two_threads_one_key", |b| {
        b.iter_custom(|iters| {
            clock.advance(Duration::from_nanos(1 << 34));
            two_threads(iters, &|_, n| check(&gkeys[0], n))
        });
    });
    g.bench_function("governor/two_threads_disjoint_keys", |b| {
        b.iter_custom(|iters| {
            clock.advance(Duration::from_nanos(1 << 34));
            two_threads(iters, &|thread, n| check(&gkeys[thread], n))
        });
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = contention, keyed_contention
}
criterion_main!(benches);
