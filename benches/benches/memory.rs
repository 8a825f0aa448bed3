//! Bytes per key resident with 1 000 000 (app, shop) keys: tollgate's `BucketTable` (computed
//! from the memory it is given, and measured as the growth of this process's resident set)
//! and governor 0.10's keyed `DashMap` limiter (measured). Not a criterion bench: it prints
//! one line per limiter, which `scripts/bench.sh` collects.
//!
//! `cargo bench -p tollgate-benches --bench memory`

use std::hint::black_box;
use std::num::NonZeroU32;

use governor::{Quota as GQuota, RateLimiter};
use tollgate::key::{Key, Seed};
use tollgate::table::{self, AtomicU64, BucketTable, FullPolicy};
use tollgate::Quota;
use tollgate_benches::{key_of, rss_bytes};

const KEYS: u32 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

#[allow(clippy::cast_precision_loss)] // bytes per key, for printing
fn per_key(bytes: u64) -> f64 {
    bytes as f64 / f64::from(KEYS)
}

fn report(name: &str, detail: &str, before: Option<u64>, after: Option<u64>) {
    match (before, after) {
        (Some(b), Some(a)) => println!(
            "memory/{name}: {:.1} bytes per key resident ({} bytes for {KEYS} keys; {detail})",
            per_key(a.saturating_sub(b)),
            a.saturating_sub(b)
        ),
        _ => println!("memory/{name}: resident set size not available on this system ({detail})"),
    }
}

fn main() {
    let tiers = [Quota::new(30, 2, SECOND).expect("quota")];
    for (name, slots_n) in [
        ("tollgate_table_load_0.7", KEYS as usize * 10 / 7 + 1),
        // 249 998 groups: exactly 32 000 000 bytes with the header, 32 bytes per key.
        ("tollgate_table_load_0.8", 1_249_990),
        ("tollgate_table_load_0.9", KEYS as usize * 10 / 9 + 1),
    ] {
        let before = rss_bytes();
        let words = table::words(slots_n, 1);
        let memory: Vec<AtomicU64> = (0..words).map(|_| AtomicU64::new(0)).collect();
        let table = BucketTable::init(&memory, &tiers, Seed::new(1, 2), FullPolicy::FailClosed)
            .expect("table");
        for i in 0..KEYS {
            let (app, shop) = key_of(i);
            let _ = table.decide(Key::pair(app, shop), 0, 0, 1).expect("decide");
        }
        let after = rss_bytes();
        let stats = table.stats();
        #[allow(clippy::cast_precision_loss)] // a fraction, for printing
        let refused = stats.rejected as f64 / f64::from(KEYS);
        println!(
            "memory/{name}: {} keys held, {} refused for lack of room ({:.4} % of new keys)",
            stats.occupied,
            stats.rejected,
            refused * 100.0
        );
        let given = std::mem::size_of_val(memory.as_slice());
        println!(
            "memory/{name}: {:.2} bytes per key given ({given} bytes: {} slots in groups of 5, \
             header and tier included)",
            per_key(given as u64),
            stats.capacity
        );
        report(name, "measured", before, after);
        black_box(&table);
        drop(memory);
    }

    let before = rss_bytes();
    let quota = GQuota::per_second(NonZeroU32::new(2).expect("rate"))
        .allow_burst(NonZeroU32::new(30).expect("burst"));
    let limiter = RateLimiter::dashmap(quota);
    for i in 0..KEYS {
        assert!(limiter.check_key(&key_of(i)).is_ok());
    }
    let after = rss_bytes();
    report("governor_dashmap", "measured", before, after);
    black_box(&limiter);
}
