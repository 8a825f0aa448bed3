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
use tollgate::table::{BucketTable, Slot};
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
        ("tollgate_table_load_0.5", KEYS as usize * 2),
        ("tollgate_table_load_0.7", KEYS as usize * 10 / 7 + 1),
        ("tollgate_table_load_0.8", KEYS as usize * 10 / 8 + 1),
    ] {
        let before = rss_bytes();
        let slots: Vec<Slot> = (0..slots_n).map(|_| Slot::new()).collect();
        let table = BucketTable::new(&slots, &tiers, Seed::new(1, 2)).expect("table");
        for i in 0..KEYS {
            let (app, shop) = key_of(i);
            let _ = table.decide(Key::pair(app, shop), 0, 0, 1).expect("decide");
        }
        let after = rss_bytes();
        let stats = table.stats();
        println!(
            "memory/{name}: {} keys held, {} found no room within the probe bound",
            stats.occupied, stats.rejected
        );
        let given = std::mem::size_of_val(slots.as_slice()) + std::mem::size_of_val(&table);
        println!(
            "memory/{name}: {:.1} bytes per key given ({given} bytes: {slots_n} slots of {} bytes)",
            per_key(given as u64),
            std::mem::size_of::<Slot>()
        );
        report(name, "measured", before, after);
        black_box(&table);
        drop(slots);
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
