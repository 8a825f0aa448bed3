//! Keyed decisions: 1 000 and 1 000 000 (app, shop) keys, drawn uniformly or Zipf-skewed
//! (exponent 1) from pre-generated arrays of 2²⁰ keys: tollgate's `BucketTable` (full
//! decisions, `check`: the outcome alone, and both for 64 keys per call, `decide_many` and
//! `check_many`, timed per key) side by side with an open-addressing floor
//! (`tollgate_benches::floor`: 32-byte slots, one 64-bit CAS) and
//! governor 0.10's keyed `DashMap` limiter, with `FakeRelativeClock` and with its default
//! clock.
//!
//! All hold every key before the measurement starts (steady state: lookups, not first
//! insertions). The quota is ShopBase's (burst 30, 2 per second) on a nanosecond clock: the
//! caller's tick for our table and the floor, a `FakeRelativeClock` for governor, all moved on
//! by 20 s (a full drain) between batches, so a batch admits the first 30 hits on a key and
//! refuses the rest: uniform keys are nearly all admitted, hot Zipf keys mostly refused.
//! governor with its default clock (the TSC, via quanta) runs on real time instead.
//!
//! Our table is sized for a load of 0.8 (32 bytes per key, `tollgate::table` docs) in one
//! block aligned to 128 bytes, and again, in the rows whose names end in `_load50`, for the
//! floor's load of 0.5 (51 bytes per key); the floor at a load of at most 0.5 (64 bytes per
//! key).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};
use governor::clock::FakeRelativeClock;
use governor::{Quota as GQuota, RateLimiter};
use tollgate::key::{Key, Seed};
use tollgate::table::{self, AtomicU64, BucketTable, FullPolicy};
use tollgate::{Outcome, Quota};
use tollgate_benches::floor::Floor;
use tollgate_benches::{key_indices, keys_for, AppShop, Skew};

const SECOND: u64 = 1_000_000_000;
const BATCH_GAP: u64 = 20 * SECOND;
const STREAM: usize = 1 << 20;

/// Slots for `keys` keys at a load of `load_percent` %.
fn slots_for(keys: u32, load_percent: usize) -> usize {
    keys as usize * 100 / load_percent + 1
}

/// Zeroed words with room to start a table at a 128-byte boundary (the table's recommended
/// alignment; the Vec itself is only 8-byte aligned).
fn zeroed(words: usize) -> Vec<AtomicU64> {
    (0..words + 16).map(|_| AtomicU64::new(0)).collect()
}

/// The `words` words of `v` starting at its first 128-byte boundary.
fn aligned(v: &[AtomicU64], words: usize) -> &[AtomicU64] {
    let skip = v.as_ptr().cast::<u8>().align_offset(128) / 8;
    &v[skip..skip + words]
}

#[allow(clippy::too_many_lines)] // one group: four limiters side by side, set up alike
fn keyed(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyed");
    let tiers = [Quota::new(30, 2, SECOND).expect("quota")];
    let governor_quota = GQuota::per_second(NonZeroU32::new(2).expect("rate"))
        .allow_burst(NonZeroU32::new(30).expect("burst"));
    for keys in [1_000u32, 1_000_000] {
        let all: Vec<AppShop> = keys_for(&(0..keys).collect::<Vec<_>>());
        for (skew_name, skew) in [("uniform", Skew::Uniform), ("zipf", Skew::Zipf(1.0))] {
            let stream = keys_for(&key_indices(keys, STREAM, skew, 0x7011_6a7e));
            let param = format!("{keys}/{skew_name}");
            let mut now = 0u64;
            let mut tick = || {
                now += BATCH_GAP;
                now
            };

            // Ours, sized for a load of 0.8 (32 bytes per key) and, in the rows named `…_load50`,
            // for the floor's load of 0.5 (51 bytes per key; the floor's are 64).
            for (suffix, load_percent) in [("", 80), ("_load50", 50)] {
                let words = table::words(slots_for(keys, load_percent), 1);
                let memory = zeroed(words);
                let table = BucketTable::init(
                    aligned(&memory, words),
                    &tiers,
                    Seed::new(0x5eed, 0xcafe),
                    FullPolicy::FailClosed,
                )
                .expect("table");
                for &(app, shop) in &all {
                    let _ = table.decide(Key::pair(app, shop), 0, 0, 1).expect("decide");
                }
                let stats = table.stats();
                println!(
                    "keyed/tollgate{suffix}/{param}: {} keys held in {} slots ({} bytes), {} found no room",
                    stats.occupied,
                    stats.capacity,
                    words * 8,
                    stats.rejected
                );
                ours_rows(&mut g, &table, suffix, &param, &stream, &mut tick);
                drop(memory);
            }

            // The floor.
            let floor = Floor::new(keys as usize, 30, SECOND / 2);
            for &(app, shop) in &all {
                floor.insert(app, shop);
            }
            row(
                &mut g,
                "floor",
                &param,
                &stream,
                &mut tick,
                |&(app, shop), now| floor.decide(app, shop, now),
            );
            drop(floor);

            // governor, FakeRelativeClock.
            let clock = FakeRelativeClock::default();
            let limiter = RateLimiter::dashmap_with_clock(governor_quota, clock.clone());
            for key in &all {
                assert!(limiter.check_key(key).is_ok());
            }
            let mut advance = || {
                clock.advance(Duration::from_nanos(BATCH_GAP));
                0
            };
            row(
                &mut g,
                "governor",
                &param,
                &stream,
                &mut advance,
                |key, _| limiter.check_key(key).is_ok(),
            );
            drop(limiter);

            // governor, default clock (real time).
            let limiter = RateLimiter::dashmap(governor_quota);
            for key in &all {
                assert!(limiter.check_key(key).is_ok());
            }
            row(
                &mut g,
                "governor_default_clock",
                &param,
                &stream,
                &mut || 0,
                |key, _| limiter.check_key(key).is_ok(),
            );
        }
    }
    g.finish();
}

/// Our four rows on `table`: full decisions (`decide`), the outcome alone (`check`), and both
/// for 64 keys per call (`decide_many`, `check_many`), named `tollgate…{suffix}`.
fn ours_rows(
    g: &mut BenchmarkGroup<'_, WallTime>,
    table: &BucketTable<'_>,
    suffix: &str,
    param: &str,
    stream: &[AppShop],
    tick: &mut impl FnMut() -> u64,
) {
    let ours: Vec<Key> = stream.iter().map(|&(a, s)| Key::pair(a, s)).collect();
    row(
        g,
        &format!("tollgate{suffix}"),
        param,
        &ours,
        tick,
        |&key, now| table.decide(key, 0, now, 1).is_ok_and(|d| d.is_allowed()),
    );
    // The outcome alone (`check`): the floor's answer.
    row(
        g,
        &format!("tollgate_check{suffix}"),
        param,
        &ours,
        tick,
        |&key, now| table.check(key, 0, now, 1).is_ok_and(Outcome::is_allowed),
    );
    // In batches of 64 keys (`decide_many`, `check_many`): their groups loaded together, their
    // memory accesses overlapped. Time per key.
    let chunks: Vec<&[Key]> = ours.chunks(BATCH_KEYS).collect();
    let mut decisions = vec![Err(tollgate::Error::Malformed); BATCH_KEYS];
    batch_row(
        g,
        &format!("tollgate_many{suffix}"),
        param,
        &chunks,
        tick,
        |keys, now| {
            table.decide_many(keys, 0, now, 1, &mut decisions).is_ok()
                && decisions
                    .first()
                    .is_some_and(|d| d.is_ok_and(|d| d.is_allowed()))
        },
    );
    let mut outcomes = vec![Err(tollgate::Error::Malformed); BATCH_KEYS];
    batch_row(
        g,
        &format!("tollgate_check_many{suffix}"),
        param,
        &chunks,
        tick,
        |keys, now| {
            table.check_many(keys, 0, now, 1, &mut outcomes).is_ok()
                && outcomes.first() == Some(&Ok(Outcome::Allowed))
        },
    );
}

/// One limiter's row: `decide(item, now)` on the stream's items in turn, `batch()` called
/// before each batch of iterations for the batch's `now` (moving the clock on by `BATCH_GAP`).
fn row<T>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    param: &str,
    stream: &[T],
    batch: &mut impl FnMut() -> u64,
    mut decide: impl FnMut(&T, u64) -> bool,
) {
    let mut at = 0usize;
    g.bench_function(BenchmarkId::new(name, param), |b| {
        b.iter_custom(|iters| {
            let now = batch();
            let t = Instant::now();
            for _ in 0..iters {
                let item = &stream[at];
                at = (at + 1) & (STREAM - 1);
                black_box(decide(item, now));
            }
            t.elapsed()
        });
    });
}

/// Keys per call in the batched rows.
const BATCH_KEYS: usize = 64;

/// A batched row: `decide(keys, now)` on the stream's batches in turn, `batch()` called before
/// each batch of iterations. One iteration is one key, so the row's time is per key, comparable
/// with the single-call rows.
fn batch_row(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    param: &str,
    chunks: &[&[Key]],
    batch: &mut impl FnMut() -> u64,
    mut decide: impl FnMut(&[Key], u64) -> bool,
) {
    let mut at = 0usize;
    g.bench_function(BenchmarkId::new(name, param), |b| {
        b.iter_custom(|iters| {
            let now = batch();
            // One iteration is one key: a batch of BATCH_KEYS counts as that many iterations.
            let calls = iters.div_ceil(BATCH_KEYS as u64);
            let t = Instant::now();
            for _ in 0..calls {
                black_box(decide(chunks[at], now));
                at = (at + 1) % chunks.len();
            }
            // The keys decided were `calls × BATCH_KEYS`, a few more than `iters`.
            #[allow(clippy::cast_precision_loss)] // a ratio near 1
            let per_iteration = iters as f64 / (calls * BATCH_KEYS as u64) as f64;
            t.elapsed().mul_f64(per_iteration)
        });
    });
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
    targets = keyed
}
criterion_main!(benches);
