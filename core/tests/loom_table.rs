//! loom models of the key table's insertion, settling, reclamation, the ABA argument, and
//! participants that stop mid-protocol (docs/semantics.md#key-tables).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p tollgate --release --test loom_table
//! --target-dir target/loom`. Under loom the table's memory is a slice of loom `AtomicU64`s:
//! every word the table reads or swaps is a loom step, exactly as shipped.
//!
//! A table has at least one group of five slots; "a table with room for n keys" is one group
//! whose other slots hold filler keys in a slow tier (never drained during the model).
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;
use tollgate::key::{Key, Seed};
use tollgate::table::{self, BucketTable, FullPolicy};
use tollgate::{Outcome, Quota};

/// Runs a loom model, with at most `LOOM_MAX_PREEMPTIONS` (default 3) preemptions per
/// execution: enough to interleave every step of two racing decisions.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    // Setting a table up (writing its words, inserting the fillers) takes many steps.
    b.max_branches = 100_000;
    b.check(f);
}

/// Tiers: 0 — burst `burst`, 1 per 10 ticks (units of 1 tick); 1 — burst 2, 2 per 21 ticks
/// (units of 1/2 tick); 2 — fillers: burst 1, 1 per 1000 ticks.
fn tiers(burst: u64) -> Vec<Quota> {
    vec![
        Quota::new(burst, 1, 10).unwrap(),
        Quota::new(2, 2, 21).unwrap(),
        Quota::new(1, 1, 1000).unwrap(),
    ]
}

/// The state words of the table's one group start here.
const GROUP: usize = 48;

/// A one-group table (5 slots) with room for `room` keys: the other slots hold fillers.
fn table(room: usize, burst: u64) -> &'static BucketTable<'static> {
    let mem: &'static [AtomicU64] =
        Vec::leak((0..table::words(5, 3)).map(|_| AtomicU64::new(0)).collect());
    assert_eq!(mem.len(), GROUP + 16);
    let t = BucketTable::init(mem, &tiers(burst), Seed::new(1, 2), FullPolicy::FailClosed).unwrap();
    for f in 0..5 - room {
        assert!(t.decide(filler(f), 2, 0, 1).unwrap().is_allowed());
    }
    Box::leak(Box::new(t))
}

fn filler(i: usize) -> Key {
    Key::pair(1000 + i as u64, 0)
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
        assert_eq!(tbl.stats().occupied, 4);
        assert!(tbl.probe_len(k).is_some());
        assert_eq!(tbl.decide(k, 0, 0, 1).unwrap().outcome, Outcome::Limited);
    });
}

/// Three threads race on one new key with room for three (each thread holds at most one slot
/// for an insertion in flight, so none finds the table full).
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
        assert_eq!(tbl.stats().occupied, 3);
        assert_eq!(tbl.peek(k, 0, 0, 1).unwrap().used, 2);
    });
}

/// Two threads insert different keys with room for two: both get a bucket of their own.
#[test]
fn different_keys_race_into_one_probe_run() {
    model(|| {
        let tbl = table(2, 1);
        let (a, b) = (Key::new(1), Key::new(2));
        let other = thread::spawn(move || tbl.decide(a, 0, 0, 1).unwrap().outcome);
        let mine = tbl.decide(b, 0, 0, 1).unwrap().outcome;
        assert_eq!(other.join().unwrap(), Outcome::Allowed);
        assert_eq!(mine, Outcome::Allowed);
        assert_eq!(tbl.stats().occupied, 5);
        assert!(tbl.probe_len(a).is_some() && tbl.probe_len(b).is_some());
        assert_eq!(tbl.decide(a, 0, 0, 1).unwrap().outcome, Outcome::Limited);
        assert_eq!(tbl.decide(b, 0, 0, 1).unwrap().outcome, Outcome::Limited);
    });
}

/// Room for one key, held by A, drained at 10. At 11, one thread decides on A while another
/// decides on B, which needs A's slot. Whatever the interleaving, exactly one is admitted (the
/// other finds no room), and the admitted key's bucket holds exactly its own request.
#[test]
fn a_reclaim_races_a_decision_on_the_old_key() {
    model(|| {
        let tbl = table(1, 1);
        let (a, b) = (Key::new(1), Key::new(2));
        assert!(tbl.decide(a, 0, 0, 1).unwrap().is_allowed());
        let other = thread::spawn(move || tbl.decide(a, 0, 11, 1).unwrap().outcome);
        let on_b = tbl.decide(b, 0, 11, 1).unwrap().outcome;
        let on_a = other.join().unwrap();
        let (winner, loser) = match (on_a, on_b) {
            (Outcome::Allowed, Outcome::Overloaded) => (a, b),
            (Outcome::Overloaded, Outcome::Allowed) => (b, a),
            other => panic!("exactly one admitted, one refused: {other:?}"),
        };
        assert!(tbl.probe_len(winner).is_some());
        assert_eq!(tbl.probe_len(loser), None);
        // The winner's bucket holds one request at 11: full (burst 1) until 21.
        let d = tbl.peek(winner, 0, 11, 1).unwrap();
        assert_eq!((d.used, d.reset_after), (1, 10));
        let stats = tbl.stats();
        assert_eq!((stats.occupied, stats.rejected), (5, 1));
        assert_eq!(stats.reclaimed, u64::from(winner == b));
    });
}

/// Room for one key, held by A, drained at 10. Two threads bring new keys B and C at 11: one
/// of them takes A's slot, the other finds no room; the slot is never given to both.
#[test]
fn two_new_keys_race_to_reclaim_one_slot() {
    model(|| {
        let tbl = table(1, 1);
        let (a, b, c) = (Key::new(1), Key::new(2), Key::new(3));
        assert!(tbl.decide(a, 0, 0, 1).unwrap().is_allowed());
        let other = thread::spawn(move || tbl.decide(b, 0, 11, 1).unwrap().outcome);
        let on_c = tbl.decide(c, 0, 11, 1).unwrap().outcome;
        let on_b = other.join().unwrap();
        let winner = match (on_b, on_c) {
            (Outcome::Allowed, Outcome::Overloaded) => b,
            (Outcome::Overloaded, Outcome::Allowed) => c,
            other => panic!("exactly one admitted, one refused: {other:?}"),
        };
        assert!(tbl.probe_len(winner).is_some());
        assert_eq!(tbl.probe_len(a), None);
        let stats = tbl.stats();
        assert_eq!((stats.occupied, stats.reclaimed, stats.rejected), (5, 1, 1));
        assert_eq!(tbl.peek(winner, 0, 11, 1).unwrap().used, 1);
    });
}

/// A new key A is inserted at 0 while a new key B arrives at 100, with room for one: B may
/// take A's new bucket before A's request counts in it. Whoever is told "admitted" has its
/// request in its own bucket, and never both with one slot unless A's bucket was reclaimed
/// after A's request (a bucket drained by 100).
#[test]
fn a_new_bucket_reclaimed_before_its_inserter_returns() {
    model(|| {
        let tbl = table(1, 1);
        let (a, b) = (Key::new(1), Key::new(2));
        let other = thread::spawn(move || tbl.decide(a, 0, 0, 1).unwrap().outcome);
        let on_b = tbl.decide(b, 0, 100, 1).unwrap().outcome;
        let on_a = other.join().unwrap();
        let stats = tbl.stats();
        assert_ne!((on_a, on_b), (Outcome::Overloaded, Outcome::Overloaded));
        if on_b == Outcome::Allowed {
            assert_eq!(tbl.peek(b, 0, 100, 1).unwrap().used, 1);
        }
        if on_a == Outcome::Allowed && tbl.probe_len(a).is_some() {
            assert_eq!(tbl.peek(a, 0, 0, 1).unwrap().used, 1);
        }
        if (on_a, on_b) == (Outcome::Allowed, Outcome::Allowed) {
            assert_eq!(stats.reclaimed, 1);
        }
        assert_eq!(stats.occupied, 5);
    });
}

/// The ABA argument across tiers with different units. A (tier 1: units of 1/2 tick) holds
/// state 21 — empty at 10.5 ticks. A stale decision on A reads that word and swaps it at some
/// later point; meanwhile B (tier 0: units of 1 tick) may reclaim the slot at 11 and, after
/// its own request, hold state 21 too. Without the tier in the word, the stale swap would land
/// on B's bucket (A's admitted request recorded nowhere). With it, exactly one is admitted and
/// B's bucket holds only B's request.
#[test]
fn a_stale_decision_never_lands_on_the_next_key() {
    model(|| {
        let tbl = table(1, 1);
        let (a, b) = (Key::new(1), Key::new(2));
        assert!(tbl.decide(a, 1, 0, 1).unwrap().is_allowed());
        let other = thread::spawn(move || tbl.decide(a, 1, 0, 1).unwrap().outcome);
        let on_b = tbl.decide(b, 0, 11, 1).unwrap().outcome;
        let on_a = other.join().unwrap();
        match (on_a, on_b) {
            (Outcome::Allowed, Outcome::Overloaded) => {
                assert_eq!(tbl.peek(a, 1, 0, 1).unwrap().used, 2);
            }
            (Outcome::Overloaded, Outcome::Allowed) => {
                let d = tbl.peek(b, 0, 11, 1).unwrap();
                assert_eq!((d.used, d.reset_after), (1, 10));
                assert_eq!(tbl.probe_len(a), None);
            }
            other => panic!("exactly one admitted, one refused: {other:?}"),
        }
    });
}

/// Writes a control word (tag, tier 0, version) into slot `slot`'s state word and, for
/// inserting copies, `key` into its key words.
fn leave(tbl: &BucketTable<'_>, slot: usize, tag: u64, version: u64, key: Option<Key>) {
    let mem = tbl.memory();
    if let Some(k) = key {
        let at = if slot < 4 {
            GROUP + 8 + 2 * slot
        } else {
            GROUP + 5
        };
        mem[at].store((k.get() >> 64) as u64, Ordering::SeqCst);
        mem[at + 1].store(k.get() as u64, Ordering::SeqCst);
    }
    mem[GROUP + slot].store((version << 11) | tag, Ordering::SeqCst);
}

const BUSY: u64 = 1;
const INSERTING: u64 = 2;
const KILLED: u64 = 3;

/// A participant stopped forever after marking its copy of K inserting (slot 0). Two threads
/// then decide on K: the stopped copy is settled by them (promoted, or killed in favour of a
/// nearer copy), one bucket results, and exactly the burst is admitted.
#[test]
fn a_participant_stopped_after_marking_inserting() {
    model(|| {
        let tbl = table(3, 1);
        let k = Key::new(7);
        // The three free slots are 2, 3, 4 (fillers took 0 and 1): leave the copy in slot 3.
        leave(tbl, 3, INSERTING, 1 << 40, Some(k));
        let other = thread::spawn(move || tbl.decide(k, 0, 0, 1).unwrap().is_allowed());
        let mine = tbl.decide(k, 0, 0, 1).unwrap().is_allowed();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one admitted: {mine} {theirs}");
        assert_eq!(tbl.decide(k, 0, 0, 1).unwrap().outcome, Outcome::Limited);
        assert_eq!(tbl.stats().occupied, 3);
    });
}

/// Participants stopped forever mid-claim (a busy slot: key not written) and after losing (a
/// killed copy). Two threads decide on a new key K: they skip the busy slot, empty the killed
/// one and use it; one bucket, exactly the burst admitted. `recover` (no one else running)
/// then empties the busy slot.
#[test]
fn participants_stopped_busy_and_killed() {
    model(|| {
        let tbl = table(2, 1);
        let k = Key::new(5);
        leave(tbl, 2, BUSY, 1 << 40, None);
        leave(tbl, 3, KILLED, (1 << 40) + 1, Some(Key::new(99)));
        let other = thread::spawn(move || tbl.decide(k, 0, 0, 1).unwrap().is_allowed());
        let mine = tbl.decide(k, 0, 0, 1).unwrap().is_allowed();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one admitted: {mine} {theirs}");
        assert_eq!(tbl.stats().occupied, 4);
        assert_eq!(tbl.recover(), 1);
        assert!(tbl.decide(Key::new(6), 0, 0, 1).unwrap().is_allowed());
    });
}

/// Claimants for the model: this model's threads are claimant 1 (alive); claimant 9 is gone,
/// claimant 8 alive but stopped.
struct ModelClaimants;

impl table::Claimants for ModelClaimants {
    fn current(&self) -> u32 {
        1
    }
    fn is_gone(&self, id: u32) -> bool {
        id == 9
    }
}

/// Two participants stopped forever mid-claim (busy slots, keys not written): claimant 9 is
/// gone, claimant 8 alive. Two threads decide on a new key K with claimants: the gone
/// claimant's slot is emptied and used, the live one's is left alone; one bucket, exactly the
/// burst admitted, and with the live claim still busy there is no room for another key.
#[test]
fn a_slot_busy_for_a_gone_claimant_is_taken_again() {
    static CLAIMANTS: ModelClaimants = ModelClaimants;
    model(|| {
        let tbl: &'static BucketTable<'static> =
            Box::leak(Box::new(table(2, 1).with_claimants(&CLAIMANTS)));
        let k = Key::new(5);
        leave(tbl, 3, BUSY, (9 << 30) | 5, None);
        leave(tbl, 4, BUSY, (8 << 30) | 6, None);
        let other = thread::spawn(move || tbl.decide(k, 0, 0, 1).unwrap().is_allowed());
        let mine = tbl.decide(k, 0, 0, 1).unwrap().is_allowed();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one admitted: {mine} {theirs}");
        assert_eq!(tbl.stats().occupied, 4);
        assert_eq!(
            tbl.decide(Key::new(6), 0, 0, 1).unwrap().outcome,
            Outcome::Overloaded
        );
    });
}
