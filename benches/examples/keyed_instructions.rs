//! Instructions per keyed decision, for `valgrind --tool=callgrind`: runs `n` decisions on 1 000
//! prepopulated (app, shop) keys drawn uniformly, with one limiter: `tollgate` (our
//! `BucketTable` at load 0.8, full decisions), `tollgate_check` (the same, outcome only), `floor` (`tollgate_benches::floor`) or `governor` (keyed
//! `DashMap`, `FakeRelativeClock`). Run it twice with different `n` and divide the difference of
//! the instruction counts by the difference of `n`: setup cancels out.
//!
//! ```sh
//! cargo build --release -p tollgate-benches --example keyed_instructions
//! for n in 100000 200000; do valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!   target/release/examples/keyed_instructions tollgate $n 2>&1 | grep refs; done
//! ```

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota as GQuota, RateLimiter};
use tollgate::key::{Key, Seed};
use tollgate::table::{self, AtomicU64, BucketTable, FullPolicy};
use tollgate::Quota;
use tollgate_benches::floor::Floor;
use tollgate_benches::{key_indices, keys_for, Skew};

const SECOND: u64 = 1_000_000_000;
const KEYS: u32 = 1_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let all = keys_for(&(0..KEYS).collect::<Vec<_>>());
    let stream = keys_for(&key_indices(KEYS, 1 << 16, Skew::Uniform, 0x7011_6a7e));
    let mask = stream.len() - 1;
    match which.as_str() {
        "tollgate" | "tollgate_check" => {
            let tiers = [Quota::new(30, 2, SECOND).expect("quota")];
            let words = table::words(KEYS as usize * 10 / 8 + 1, 1);
            let memory: Vec<AtomicU64> = (0..words).map(|_| AtomicU64::new(0)).collect();
            let t = BucketTable::init(
                &memory,
                &tiers,
                Seed::new(0x5eed, 0xcafe),
                FullPolicy::FailClosed,
            )
            .expect("table");
            for &(a, s) in &all {
                let _ = t.decide(Key::pair(a, s), 0, 0, 1);
            }
            let outcome_only = which == "tollgate_check";
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
        }
        "floor" => {
            let f = Floor::new(KEYS as usize, 30, SECOND / 2);
            for &(a, s) in &all {
                f.insert(a, s);
            }
            for i in 0..n {
                let (a, s) = stream[i & mask];
                let now = (i as u64 >> 16) * 20 * SECOND;
                black_box(f.decide(a, s, now));
            }
        }
        "governor" => {
            let quota = GQuota::per_second(NonZeroU32::new(2).expect("rate"))
                .allow_burst(NonZeroU32::new(30).expect("burst"));
            let clock = FakeRelativeClock::default();
            let limiter = RateLimiter::dashmap_with_clock(quota, clock.clone());
            for key in &all {
                let _ = limiter.check_key(key);
            }
            for i in 0..n {
                if i & mask == 0 {
                    clock.advance(Duration::from_secs(20));
                }
                black_box(limiter.check_key(&stream[i & mask]).is_ok());
            }
        }
        _ => eprintln!("usage: keyed_instructions tollgate|tollgate_check|floor|governor N"),
    }
}
