//! The README's Rust key-table example ("Key tables"), kept compiling and true.

use core::time::Duration;
use tollgate::clock::StdClock;
use tollgate::key::{Key, Seed};
use tollgate::table::{self, BucketTable, FullPolicy, TableMemory};
use tollgate::Quota;

#[test]
fn readme_example() -> Result<(), Box<dyn std::error::Error>> {
    const TPS: u64 = StdClock::TICKS_PER_SECOND; // nanoseconds
    static MEMORY: TableMemory<{ table::words(10_000, 2) }> = TableMemory::new();

    let tiers = [
        Quota::per_second(30, 2, TPS)?, // tier 0: 30, draining 2 per second
        Quota::per_duration(60, 1, Duration::from_millis(250), TPS)?, // tier 1: 60, 4 per second
    ];
    let seed = Seed::random()?; // secret, from the operating system (feature `std`)
    let shops = BucketTable::init(MEMORY.words(), &tiers, seed, FullPolicy::FailClosed)?;
    let clock = StdClock::new();
    let d = shops.decide(Key::pair(7, 42), 0, clock.now(), 1)?; // app 7, shop 42, tier 0
    assert!(d.is_allowed());

    // The helpers are the raw constructors on the period in ticks.
    assert_eq!(tiers[0], Quota::new(30, 2, TPS)?);
    assert_eq!(tiers[1], Quota::new(60, 1, TPS / 4)?);
    Ok(())
}
