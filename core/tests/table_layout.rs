//! The key table's memory block: initialisation, attach and its named refusals, copies at
//! another address, the epoch, the state bits and recovery.

use tollgate::key::{Key, Seed};
use tollgate::table::{
    self, AtomicU64, AttachError, BucketTable, FullPolicy, Table, TableKind, WindowTable,
};
use tollgate::{Error, Outcome, Quota, WindowQuota};

fn memory(words: usize) -> Vec<AtomicU64> {
    (0..words).map(|_| AtomicU64::new(0)).collect()
}

fn copy(mem: &[AtomicU64]) -> Vec<AtomicU64> {
    mem.iter()
        .map(|w| AtomicU64::new(w.load(std::sync::atomic::Ordering::SeqCst)))
        .collect()
}

fn tiers() -> [Quota; 2] {
    [Quota::new(3, 1, 10).unwrap(), Quota::new(6, 1, 10).unwrap()]
}

#[test]
fn sizes_follow_the_layout() {
    // Header 24 words, tiers 8 words each, groups of 16 words from a multiple of 16.
    assert_eq!(table::words(5, 1), 32 + 16);
    assert_eq!(table::words(6, 1), 32 + 32);
    assert_eq!(table::words(5, 2), 48 + 16);
    assert_eq!(table::bytes(5, 1), 48 * 8);
    assert_eq!(table::words(0, 1), usize::MAX);
    assert_eq!(table::words(5, 0), usize::MAX);
    assert_eq!(table::words(5, 257), usize::MAX);
    assert_eq!(table::words(usize::MAX, 1), usize::MAX);
    assert_eq!(table::capacity_in(table::words(1_000_000, 3), 3), 1_000_000);
    // 1M keys at a load of 0.8 fit 32 MB: 32 bytes per key.
    assert!(table::bytes(1_249_990, 1) <= 32 * 1_000_000);
}

#[test]
fn init_refuses_bad_parameters_and_writes_nothing() {
    let mem = memory(table::words(5, 1));
    let seed = Seed::new(1, 2);
    let none: [Quota; 0] = [];
    assert_eq!(
        BucketTable::init(&mem, &none, seed, FullPolicy::FailClosed).unwrap_err(),
        Error::InvalidArgument
    );
    assert_eq!(
        BucketTable::init(&mem[..20], &tiers(), seed, FullPolicy::FailClosed).unwrap_err(),
        Error::CapacityExceeded
    );
    // A bucket whose tolerance does not fit 63 bits of state.
    let huge = Quota::with_min_span(1 << 63, 1, 1, 0).unwrap();
    assert_eq!(
        BucketTable::init(&mem, &[huge], seed, FullPolicy::FailClosed).unwrap_err(),
        Error::SpanTooShort
    );
    assert!(mem
        .iter()
        .all(|w| w.load(std::sync::atomic::Ordering::SeqCst) == 0));
}

#[test]
fn attach_names_every_mismatch() {
    let mem = memory(table::words(10, 2));
    let seed = Seed::new(1, 2);
    let t = BucketTable::init(&mem, &tiers(), seed, FullPolicy::FailOpen).unwrap();
    assert!(t.decide(Key::pair(1, 1), 0, 0, 1).unwrap().is_allowed());
    let a = BucketTable::attach(&mem).unwrap();
    assert_eq!(a.header(), t.header());
    assert_eq!(a.peek(Key::pair(1, 1), 0, 0, 1).unwrap().used, 1);
    assert_eq!(
        WindowTable::attach(&mem).unwrap_err(),
        AttachError::Kind { found: 1 }
    );
    assert!(matches!(
        BucketTable::attach(&mem[..mem.len() - 1]).unwrap_err(),
        AttachError::Size { .. }
    ));
    let fresh = memory(mem.len());
    assert_eq!(BucketTable::attach(&fresh).unwrap_err(), AttachError::Magic);
    let damaged = |word: usize, value: u64| {
        let c = copy(&mem);
        c[word].store(value, std::sync::atomic::Ordering::SeqCst);
        BucketTable::attach(&c).map(|_| ()).unwrap_err()
    };
    assert_eq!(damaged(1, 1), AttachError::LayoutVersion { found: 1 });
    assert_eq!(damaged(6, 7), AttachError::Parameter("full-table policy"));
    assert_eq!(damaged(5, 0), AttachError::Parameter("tier count"));
    assert!(matches!(damaged(7, 99), AttachError::Checksum { .. }));
    assert!(matches!(damaged(9, 99), AttachError::Checksum { .. }));
    // Tier 1's burst changed: not what the constructor builds from its other fields.
    assert!(matches!(
        damaged(24 + 8, 7),
        AttachError::Tier { index: 1, .. }
    ));
    // The error texts name the problem.
    assert!(damaged(1, 1).to_string().contains("layout version 1"));
}

#[test]
fn expected_header_matches_an_initialised_table_and_names_differences() {
    let seed = Seed::new(1, 2);
    let n = table::words(10, 2);
    let mem = memory(n);
    let t = BucketTable::init(&mem, &tiers(), seed, FullPolicy::FailClosed).unwrap();
    let want = BucketTable::expected_header(10, &tiers(), seed, FullPolicy::FailClosed, 0).unwrap();
    assert_eq!(t.header(), want);
    assert_eq!(want.kind, TableKind::Buckets);
    let other =
        BucketTable::expected_header(10, &tiers(), Seed::new(1, 3), FullPolicy::FailClosed, 0)
            .unwrap();
    assert_eq!(
        want.first_difference(&other),
        Some("tiers or seed (checksum)")
    );
    let bigger =
        BucketTable::expected_header(20, &tiers(), seed, FullPolicy::FailClosed, 0).unwrap();
    assert_eq!(want.first_difference(&bigger), Some("size"));
    assert_eq!(want.first_difference(&want), None);
}

/// A copy of the memory at another address is an independent table with the same state.
#[test]
fn a_copy_is_an_independent_table() {
    let seed = Seed::new(5, 6);
    let mem = memory(table::words(10, 2));
    let original = BucketTable::init(&mem, &tiers(), seed, FullPolicy::FailClosed).unwrap();
    let k = Key::pair(3, 4);
    for _ in 0..3 {
        assert!(original.decide(k, 0, 0, 1).unwrap().is_allowed());
    }
    let copied = copy(&mem);
    drop(mem);
    let first = BucketTable::attach(&copied).unwrap();
    assert_eq!(first.decide(k, 0, 0, 1).unwrap().outcome, Outcome::Limited);
    assert_eq!(first.stats().occupied, 1);
    let c2 = copy(&copied);
    // The copy's copy decides on its own: spending in one leaves the other untouched.
    assert!(first.decide(k, 0, 10, 1).unwrap().is_allowed());
    let second = BucketTable::attach(&c2).unwrap();
    assert_eq!(second.peek(k, 0, 10, 1).unwrap().used, 2);
    assert_eq!(first.peek(k, 0, 10, 1).unwrap().used, 3);
}

#[test]
fn the_epoch_moves_the_span_and_an_earlier_now_is_judged_at_the_epoch() {
    let q = Quota::new(2, 1, 10).unwrap();
    let epoch = 1 << 62;
    let mem = memory(table::words(5, 1));
    let t =
        BucketTable::init_with_epoch(&mem, &[q], Seed::new(1, 1), FullPolicy::FailClosed, epoch)
            .unwrap();
    assert_eq!(t.state_bits(), 63);
    assert_eq!(
        t.tier_span(0),
        Some(q.exact_span().min((1 << 63) - 1 - 20) + epoch)
    );
    let k = Key::pair(1, 2);
    assert!(t.decide(k, 0, epoch + 5, 2).unwrap().is_allowed());
    // Before the epoch: judged as at the epoch, i.e. later than the true time never.
    let d = t.decide(k, 0, 3, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Limited);
    assert_eq!(d.retry_after, Some(15));
    assert_eq!(t.decide(k, 0, u64::MAX, 1), Err(Error::ClockOutOfRange));
}

#[test]
fn state_bits_shrink_with_tiers_and_spans_follow() {
    for (n, bits) in [(1, 63), (2, 62), (8, 60), (9, 59), (256, 55)] {
        let tiers = vec![Quota::new(30, 2, 1_000_000_000).unwrap(); n];
        let mem = memory(table::words(5, n));
        let t = BucketTable::init(&mem, &tiers, Seed::new(1, 1), FullPolicy::FailClosed).unwrap();
        assert_eq!(t.state_bits(), bits);
        // C' = 1, B·P' = 15e9: span = 2^bits − 1 − 15e9 ticks.
        assert_eq!(t.tier_span(n - 1), Some((1 << bits) - 1 - 15_000_000_000));
        let k = Key::pair(9, 9);
        let end = t.tier_span(0).unwrap();
        assert!(t.decide(k, n - 1, end, 1).unwrap().is_allowed());
        assert_eq!(t.decide(k, n - 1, end + 1, 1), Err(Error::ClockOutOfRange));
    }
    let windows = [WindowQuota::new(50, 10).unwrap()];
    let mem = memory(table::words(5, 1));
    let t = WindowTable::init(&mem, &windows, Seed::new(1, 1), FullPolicy::FailClosed).unwrap();
    // 6 bits of count: the window index keeps 57 bits.
    assert_eq!(t.tier_span(0), Some(((1u64 << 57) - 1) * 10 - 1));
}

#[test]
fn tier_changes_convert_and_the_tier_is_in_the_word() {
    let mem = memory(table::words(5, 2));
    let t = BucketTable::init(&mem, &tiers(), Seed::new(1, 1), FullPolicy::FailClosed).unwrap();
    let k = Key::pair(1, 1);
    for _ in 0..3 {
        assert!(t.decide(k, 0, 0, 1).unwrap().is_allowed());
    }
    let d = t.decide(k, 1, 0, 1).unwrap();
    assert!(d.is_allowed());
    assert_eq!((d.used, d.limit), (4, 6));
    assert_eq!(t.decide(k, 2, 0, 1), Err(Error::InvalidArgument));
    assert_eq!(t.tier(1), Some(tiers()[1]));
    assert_eq!(t.tier(2), None);
}

/// A busy slot left by an insertion that stopped (here: a copy taken mid-insert, simulated by
/// writing the word) is skipped by others and emptied by `recover`.
#[test]
fn recover_empties_busy_slots_and_settles_inserting_copies() {
    let q = [Quota::new(2, 1, 10).unwrap()];
    let mem = memory(table::words(5, 1));
    let t = BucketTable::init(&mem, &q, Seed::new(1, 1), FullPolicy::FailClosed).unwrap();
    let groups_at = table::words(5, 1) - 16;
    // Every state word busy (tag 1, version 9 + i).
    for i in 0..5 {
        mem[groups_at + i].store(
            ((9 + i as u64) << 11) | 1,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
    let d = t.decide(Key::pair(1, 1), 0, 0, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Overloaded);
    assert_eq!(t.recover(), 5);
    assert!(t.decide(Key::pair(1, 1), 0, 0, 1).unwrap().is_allowed());
    assert_eq!(t.recover(), 0);
    assert_eq!(t.stats().occupied, 1);
}

#[test]
fn a_window_slot_is_taken_only_once_its_window_is_over() {
    let w = [WindowQuota::new(2, 10).unwrap()];
    let mem = memory(table::words(5, 1));
    let t = WindowTable::init(&mem, &w, Seed::new(1, 1), FullPolicy::FailClosed).unwrap();
    for k in 0..5 {
        // Peeks leave a count of zero in window [0, 10).
        assert!(t.peek(Key::pair(k, k), 0, 0, 1).unwrap().is_allowed());
    }
    // A count of zero in a window not yet over is not taken: the slot's next holder must
    // start in a later window.
    let d = t.decide(Key::pair(9, 9), 0, 9, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Overloaded);
    assert!(t.decide(Key::pair(9, 9), 0, 10, 1).unwrap().is_allowed());
    let _: Table<'_, WindowQuota> = t;
}

#[test]
fn a_tier_change_with_nothing_counted_never_frees_a_slot_sooner() {
    // Tier 0: windows [10, 20), ...; tier 1: 3-tick windows [18, 21), ...
    let w = [
        WindowQuota::new(2, 10).unwrap(),
        WindowQuota::new(2, 3).unwrap(),
    ];
    let mem = memory(table::words(5, 2));
    let t = WindowTable::init(&mem, &w, Seed::new(1, 1), FullPolicy::FailClosed).unwrap();
    for k in 0..5 {
        // A count of zero in [10, 20), then a change to tier 1 at 12: the state moves to
        // [18, 21), the window holding 19, not to [12, 15).
        assert!(t.peek(Key::pair(k, k), 0, 12, 1).unwrap().is_allowed());
        let d = t.peek(Key::pair(k, k), 1, 12, 1).unwrap();
        assert_eq!((d.used, d.reset_after), (0, 9));
    }
    // No window ends before 21: nothing is taken at 20, where [12, 15) would have been.
    let d = t.decide(Key::pair(9, 9), 0, 20, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Overloaded);
    assert!(t.decide(Key::pair(9, 9), 0, 21, 1).unwrap().is_allowed());
}
