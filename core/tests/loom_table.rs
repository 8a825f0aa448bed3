//! loom models of the key table's insertion, settling and reclamation (SPEC §10).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p tollgate --release --test loom_table
//! --target-dir target/loom`. Under loom the slot's 128-bit word is a mutex-backed stand-in
//! (loom has no 128-bit atomic); the key words, counters and watermark are loom atomics.
#![cfg(loom)]

use loom::thread;
use tollgate::key::{Key, Seed};
use tollgate::table::{BucketTable, Slot};
use tollgate::{Outcome, Quota};

/// Runs a loom model, with at most `LOOM_MAX_PREEMPTIONS` (default 3) preemptions per
/// execution: enough to interleave every step of two racing decisions.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// A table of `n` slots and one tier (burst `burst`, draining 1 per 10 ticks), leaked so that
/// loom threads can share it.
fn table(n: usize, burst: u64) -> &'static BucketTable<'static> {
    let slots: &'static [Slot] = Vec::leak((0..n).map(|_| Slot::new()).collect());
    let tiers: &'static [Quota] = Vec::leak(vec![Quota::new(burst, 1, 10).unwrap()]);
    Box::leak(Box::new(
        BucketTable::new(slots, tiers, Seed::new(1, 2)).unwrap(),
    ))
}

/// Two threads decide on the same new key: one bucket, so exactly the burst (1) is admitted.
#[test]
fn two_threads_insert_the_same_key() {
    model(|| {
        let tbl = table(2, 1);
        let k = Key::new(7);
        let other = thread::spawn(move || tbl.decide(k, 0, 0, 1).unwrap().is_allowed());
        let mine = tbl.decide(k, 0, 0, 1).unwrap().is_allowed();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one admitted: {mine} {theirs}");
        assert_eq!(tbl.stats().occupied, 1);
        assert!(tbl.probe_len(k).is_some());
        assert_eq!(tbl.decide(k, 0, 0, 1).unwrap().outcome, Outcome::Limited);
    });
}

/// Three threads race on one new key, in a table of three slots (each thread holds at most
/// one slot for an insertion in flight, so none finds the table full).
#[test]
fn three_threads_insert_the_same_key() {
    model(|| {
        let tbl = table(3, 2);
        let k = Key::new(9);
        let hs: Vec<_> = (0..2)
            .map(|_| thread::spawn(move || tbl.decide(k, 0, 0, 1).unwrap().outcome))
            .collect();
        let mut outcomes = vec![tbl.decide(k, 0, 0, 1).unwrap().outcome];
        outcomes.extend(hs.into_iter().map(|h| h.join().unwrap()));
        let admitted = outcomes.iter().filter(|o| **o == Outcome::Allowed).count();
        assert_eq!(admitted, 2, "a burst of 2, one bucket: {outcomes:?}");
        assert!(outcomes.contains(&Outcome::Limited), "{outcomes:?}");
        assert_eq!(tbl.stats().occupied, 1);
        assert_eq!(tbl.peek(k, 0, 0, 1).unwrap().used, 2);
    });
}

/// Two threads insert different keys into one probe run (a table of two slots): both get a
/// bucket of their own, and each key is found.
#[test]
fn different_keys_race_into_one_probe_run() {
    model(|| {
        let tbl = table(2, 1);
        let (a, b) = (Key::new(1), Key::new(2));
        let other = thread::spawn(move || tbl.decide(a, 0, 0, 1).unwrap().outcome);
        let mine = tbl.decide(b, 0, 0, 1).unwrap().outcome;
        assert_eq!(other.join().unwrap(), Outcome::Allowed);
        assert_eq!(mine, Outcome::Allowed);
        assert_eq!(tbl.stats().occupied, 2);
        assert!(tbl.probe_len(a).is_some() && tbl.probe_len(b).is_some());
        assert_eq!(tbl.decide(a, 0, 0, 1).unwrap().outcome, Outcome::Limited);
        assert_eq!(tbl.decide(b, 0, 0, 1).unwrap().outcome, Outcome::Limited);
    });
}

/// A one-slot table holds A, drained at 10. At 10, one thread decides on A while another
/// decides on B, which needs A's slot. Whatever the interleaving, exactly one is admitted (the
/// other finds no room), and the admitted key's bucket holds exactly its own request: a decision
/// meant for A never lands in B's bucket, nor B's in A's.
#[test]
fn a_reclaim_races_a_decision_on_the_old_key() {
    model(|| {
        let tbl = table(1, 1);
        let (a, b) = (Key::new(1), Key::new(2));
        assert!(tbl.decide(a, 0, 0, 1).unwrap().is_allowed());
        let other = thread::spawn(move || tbl.decide(a, 0, 10, 1).unwrap().outcome);
        let on_b = tbl.decide(b, 0, 10, 1).unwrap().outcome;
        let on_a = other.join().unwrap();
        let (winner, loser) = match (on_a, on_b) {
            (Outcome::Allowed, Outcome::Overloaded) => (a, b),
            (Outcome::Overloaded, Outcome::Allowed) => (b, a),
            other => panic!("exactly one admitted, one refused: {other:?}"),
        };
        assert_eq!(tbl.probe_len(winner), Some(1));
        assert_eq!(tbl.probe_len(loser), None);
        // The winner's bucket holds one request at 10: full (burst 1) until 20.
        let d = tbl.peek(winner, 0, 10, 1).unwrap();
        assert_eq!((d.used, d.reset_after), (1, 10));
        let stats = tbl.stats();
        assert_eq!((stats.occupied, stats.rejected), (1, 1));
        assert_eq!(stats.reclaimed, u64::from(winner == b));
    });
}

/// A one-slot table holds A, drained at 10. Two threads bring new keys B and C at 10: one of
/// them takes A's slot, the other finds no room; the slot is never given to both.
#[test]
fn two_new_keys_race_to_reclaim_one_slot() {
    model(|| {
        let tbl = table(1, 1);
        let (a, b, c) = (Key::new(1), Key::new(2), Key::new(3));
        assert!(tbl.decide(a, 0, 0, 1).unwrap().is_allowed());
        let other = thread::spawn(move || tbl.decide(b, 0, 10, 1).unwrap().outcome);
        let on_c = tbl.decide(c, 0, 10, 1).unwrap().outcome;
        let on_b = other.join().unwrap();
        let winner = match (on_b, on_c) {
            (Outcome::Allowed, Outcome::Overloaded) => b,
            (Outcome::Overloaded, Outcome::Allowed) => c,
            other => panic!("exactly one admitted, one refused: {other:?}"),
        };
        assert_eq!(tbl.probe_len(winner), Some(1));
        assert_eq!(tbl.probe_len(a), None);
        let stats = tbl.stats();
        assert_eq!((stats.occupied, stats.reclaimed, stats.rejected), (1, 1, 1));
        assert_eq!(tbl.peek(winner, 0, 10, 1).unwrap().used, 1);
    });
}

/// A new key A is inserted at 0 while, in a one-slot table, a new key B arrives at 100, when
/// A's bucket has drained: B may take A's slot even before A's call returns. A's request counted
/// in its bucket exactly when A is told it was admitted: A is refused only if it never had the
/// slot (nothing was reclaimed), never after its bucket held its request.
#[test]
fn a_new_bucket_reclaimed_before_its_inserter_returns() {
    model(|| {
        let tbl = table(1, 1);
        let (a, b) = (Key::new(1), Key::new(2));
        let other = thread::spawn(move || tbl.decide(a, 0, 0, 1).unwrap().outcome);
        let on_b = tbl.decide(b, 0, 100, 1).unwrap().outcome;
        let on_a = other.join().unwrap();
        let stats = tbl.stats();
        match (on_a, on_b) {
            (Outcome::Allowed, Outcome::Allowed) => assert_eq!(stats.reclaimed, 1),
            // A never had the slot, or B found A's insertion in flight in the only slot.
            (Outcome::Overloaded, Outcome::Allowed) | (Outcome::Allowed, Outcome::Overloaded) => {
                assert_eq!(stats.reclaimed, 0);
            }
            other => panic!("unexpected: {other:?}"),
        }
    });
}
