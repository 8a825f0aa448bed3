//! Instructions per keyed decision, for `valgrind --tool=callgrind`: runs `n` decisions on
//! `keys` prepopulated (app, shop) keys (default 1 000) drawn uniformly, with one limiter:
//! `tollgate` (our `BucketTable` at load 0.8, or at the load given in percent as a fourth
//! argument; full decisions), `tollgate_check` (the same, outcome only), `tollgate_many` and
//! `tollgate_check_many` (the same in batches of 64 keys: `decide_many`, `check_many`; give `n`
//! as a multiple of 64), `floor` (`tollgate_benches::floor`) or `governor` (keyed `DashMap`,
//! `FakeRelativeClock`). Run it twice with different `n` and divide the difference of the
//! instruction counts by the difference of `n`: setup cancels out. It also prints the time per decision of its loop to standard error
//! (one run, for quick paired comparisons; the criterion benches are the reference).
//!
//! ```sh
//! cargo build --release -p tollgate-benches --example keyed_instructions
//! for n in 100000 200000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!   target/release/examples/keyed_instructions tollgate $n 2>&1 | grep refs; done
//! # time per decision at a million keys
//! target/release/examples/keyed_instructions tollgate_check_many 20000000 1000000
//! # our table at the floor's load (0.5) instead of 0.8
//! target/release/examples/keyed_instructions tollgate_check 20000000 1000 50
//! ```

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::FakeRelativeClock;
use governor::{Quota as GQuota, RateLimiter};
use tollgate::key::{Key, Seed};
use tollgate::table::{self, AtomicU64, BucketTable, FullPolicy};
use tollgate::Quota;
use tollgate_benches::floor::Floor;
use tollgate_benches::{key_indices, keys_for, Skew};

const SECOND: u64 = 1_000_000_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let n: usize = next_or(&mut args, 100_000);
    let keys: u32 = next_or(&mut args, 1_000);
    let load_percent: usize = next_or(&mut args, 80).clamp(1, 100);
    let all = keys_for(&(0..keys).collect::<Vec<_>>());
    let stream_len = (keys as usize).next_power_of_two().max(1 << 16);
    let stream = keys_for(&key_indices(keys, stream_len, Skew::Uniform, 0x7011_6a7e));
    let mask = stream.len() - 1;
    match which.as_str() {
        "tollgate" | "tollgate_check" | "tollgate_many" | "tollgate_check_many" => {
            let tiers = [Quota::new(30, 2, SECOND).expect("quota")];
            let words = table::words(keys as usize * 100 / load_percent + 1, 1);
            // Started at a 128-byte boundary, the table's recommended alignment, as in the
            // keyed bench.
            let memory: Vec<AtomicU64> = (0..words + 16).map(|_| AtomicU64::new(0)).collect();
            let skip = memory.as_ptr().cast::<u8>().align_offset(128) / 8;
            let t = BucketTable::init(
                &memory[skip..skip + words],
                &tiers,
                Seed::new(0x5eed, 0xcafe),
                FullPolicy::FailClosed,
            )
            .expect("table");
            for &(a, s) in &all {
                let _ = t.decide(Key::pair(a, s), 0, 0, 1);
            }
            let outcome_only = which.starts_with("tollgate_check");
            if which.ends_with("_many") {
                let ours: Vec<Key> = stream.iter().map(|&(a, s)| Key::pair(a, s)).collect();
                let mut decisions = vec![Err(tollgate::Error::InvalidArgument); 64];
                let mut outcomes = vec![Err(tollgate::Error::InvalidArgument); 64];
                let started = Instant::now();
                for i in (0..n).step_by(64) {
                    let now = (i as u64 >> 16) * 20 * SECOND;
                    let keys = &ours[i & mask..(i & mask) + 64];
                    if outcome_only {
                        t.check_many(keys, 0, now, 1, &mut outcomes).expect("batch");
                        black_box(&outcomes);
                    } else {
                        t.decide_many(keys, 0, now, 1, &mut decisions)
                            .expect("batch");
                        black_box(&decisions);
                    }
                }
                timed(n, started);
                return;
            }
            let started = Instant::now();
            for i in 0..n {
                let (a, s) = stream[i & mask];
                let now = (i as u64 >> 16) * 20 * SECOND;
                if outcome_only {
                    black_box(
                        t.check(Key::pair(a, s), 0, now, 1)
                            .is_ok_and(tollgate::Outcome::is_allowed),
                    );
                } else {
                    black_box(
                        t.decide(Key::pair(a, s), 0, now, 1)
                            .is_ok_and(|d| d.is_allowed()),
                    );
                }
            }
            timed(n, started);
        }
        "floor" => {
            let f = Floor::new(keys as usize, 30, SECOND / 2);
            for &(a, s) in &all {
                f.insert(a, s);
            }
            let started = Instant::now();
            for i in 0..n {
                let (a, s) = stream[i & mask];
                let now = (i as u64 >> 16) * 20 * SECOND;
                black_box(f.decide(a, s, now));
            }
            timed(n, started);
        }
        "governor" => {
            let quota = GQuota::per_second(NonZeroU32::new(2).expect("rate"))
                .allow_burst(NonZeroU32::new(30).expect("burst"));
            let clock = FakeRelativeClock::default();
            let limiter = RateLimiter::dashmap_with_clock(quota, clock.clone());
            for key in &all {
                let _ = limiter.check_key(key);
            }
            let started = Instant::now();
            for i in 0..n {
                if i & mask == 0 {
                    clock.advance(Duration::from_secs(20));
                }
                black_box(limiter.check_key(&stream[i & mask]).is_ok());
            }
            timed(n, started);
        }
        _ => eprintln!(
            "usage: keyed_instructions tollgate|tollgate_check|tollgate_many|tollgate_check_many|floor|governor N [KEYS [LOAD%]]"
        ),
    }
}

/// The next argument parsed, or `default` when there is none (or it does not parse).
fn next_or<T: std::str::FromStr>(args: &mut impl Iterator<Item = String>, default: T) -> T {
    args.next().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Prints the time per decision of the `n` decisions since `started` (to standard error, so
/// callgrind's counts are not disturbed by formatting).
fn timed(n: usize, started: Instant) {
    #[allow(clippy::cast_precision_loss)] // a figure to read
    let ns = started.elapsed().as_nanos() as f64 / n as f64;
    eprintln!("{ns:.2} ns per decision");
}
