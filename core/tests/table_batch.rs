//! Decisions on many keys in one call (`Table::decide_many`, `Table::check_many`): the same
//! answers and the same table, word for word, as the single calls on the keys in order; whole
//! call errors change nothing; under two threads, exact totals.

use std::thread;

use proptest::prelude::*;
use tollgate::key::{Key, Seed};
use tollgate::table::{BucketTable, FullPolicy, Table, TableQuota};
use tollgate::{Decision, Error, Outcome, Quota};

mod table_support;
use table_support::{bucket_tiers, key_of, memory, policy, window_tiers, words};

/// One call: its keys, tier, time step and cost.
#[derive(Clone, Debug)]
struct Batch {
    keys: Vec<u8>,
    tier: usize,
    dt: u64,
    cost: u64,
}

fn batches(keys: u8) -> impl Strategy<Value = Vec<Batch>> {
    // Up to 40 keys: batches shorter than, equal to and spanning several internal batches.
    let batch = (
        prop::collection::vec(0..keys, 0..40),
        0..4usize,
        0..6u64,
        0..7u64,
    )
        .prop_map(|(keys, tier, dt, cost)| Batch {
            keys,
            // Tier 3 does not exist: an error for the whole call.
            tier,
            dt: if dt == 5 { 40 } else { dt },
            // Cost 0 is an error for the whole call; 6 is above some tiers' limits.
            cost,
        });
    prop::collection::vec(batch, 1..24)
}

/// Runs `batches` through `decide_many` on one table, `check_many` on a second and
/// `decide` key by key on a third: the same answers, and the same memory in the end.
fn same_as_in_order<Q: TableQuota + Copy>(
    tiers: &[Q],
    capacity: usize,
    seed: (u64, u64),
    policy: FullPolicy,
    batches: &[Batch],
) -> Result<(), TestCaseError> {
    let seed = Seed::new(seed.0, seed.1);
    let mems = [(); 3].map(|()| memory(capacity, tiers.len()));
    let [many, checked, single] =
        [0, 1, 2].map(|i| Table::init(&mems[i], tiers, seed, policy).unwrap());
    let mut now = 0;
    for b in batches {
        now += b.dt;
        let keys: Vec<Key> = b.keys.iter().map(|&k| key_of(k)).collect();
        let mut decisions = vec![Err(Error::Malformed); keys.len() + 1];
        let mut outcomes = vec![Err(Error::Malformed); keys.len()];
        let whole = many.decide_many(&keys, b.tier, now, b.cost, &mut decisions);
        prop_assert_eq!(
            checked.check_many(&keys, b.tier, now, b.cost, &mut outcomes),
            whole
        );
        // The entry past the keys is never written.
        prop_assert_eq!(decisions[keys.len()], Err(Error::Malformed));
        let one_by_one: Vec<Result<Decision, Error>> = keys
            .iter()
            .map(|&k| single.decide(k, b.tier, now, b.cost))
            .collect();
        if let Err(e) = whole {
            // The call's own errors: what every single call answers, and nothing written.
            prop_assert!(one_by_one.iter().all(|d| *d == Err(e)), "{:?}", one_by_one);
            prop_assert!(decisions.iter().all(|d| *d == Err(Error::Malformed)));
            prop_assert!(outcomes.iter().all(|d| *d == Err(Error::Malformed)));
        } else {
            prop_assert_eq!(
                &decisions[..keys.len()],
                &one_by_one[..],
                "{:?} at {}",
                b,
                now
            );
            let expected: Vec<Result<Outcome, Error>> =
                one_by_one.iter().map(|d| d.map(|d| d.outcome)).collect();
            prop_assert_eq!(outcomes, expected);
        }
    }
    prop_assert_eq!(
        words(&mems[0]),
        words(&mems[2]),
        "decide_many left other state"
    );
    prop_assert_eq!(
        words(&mems[1]),
        words(&mems[2]),
        "check_many left other state"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Small tables too (one group of five slots for twelve keys): insertions, reclaims and
    /// the full policy inside a batch.
    #[test]
    fn bucket_batches_decide_as_the_calls_in_order(
        batches in batches(12), seed: (u64, u64), capacity in 1..70usize, policy in policy(),
    ) {
        same_as_in_order(&bucket_tiers(), capacity, seed, policy, &batches)?;
    }

    #[test]
    fn window_batches_decide_as_the_calls_in_order(
        batches in batches(12), seed: (u64, u64), capacity in 1..70usize, policy in policy(),
    ) {
        same_as_in_order(&window_tiers(), capacity, seed, policy, &batches)?;
    }
}

#[test]
fn errors_of_the_whole_call_change_nothing() {
    let tiers = [Quota::new(2, 1, 100).unwrap()];
    let mem = memory(10, 1);
    let table = BucketTable::init(&mem, &tiers, Seed::new(1, 1), FullPolicy::FailClosed).unwrap();
    let before = words(&mem);
    let keys = [Key::new(1), Key::new(2)];
    let mut out = [Err(Error::Malformed); 2];
    assert_eq!(
        table.decide_many(&keys, 0, 0, 1, &mut out[..1]),
        Err(Error::InvalidArgument),
        "out shorter than keys"
    );
    assert_eq!(
        table.decide_many(&keys, 1, 0, 1, &mut out),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        table.decide_many(&keys, 0, 0, 0, &mut out),
        Err(Error::ZeroCost)
    );
    assert_eq!(
        table.decide_many(&keys, 0, u64::MAX, 1, &mut out),
        Err(Error::ClockOutOfRange)
    );
    let mut outcomes = [Err(Error::Malformed); 2];
    assert_eq!(
        table.check_many(&keys, 0, 0, 0, &mut outcomes),
        Err(Error::ZeroCost)
    );
    assert_eq!(out, [Err(Error::Malformed); 2]);
    assert_eq!(outcomes, [Err(Error::Malformed); 2]);
    assert_eq!(words(&mem), before);
    // No keys: nothing to do, even with an empty `out`.
    assert_eq!(table.decide_many(&[], 0, 0, 1, &mut []), Ok(()));
    assert_eq!(words(&mem), before);
}

/// Two threads ask 2 000 keys 12 times each at one instant, one in batches of 50 and one key
/// by key (`check`), walking the keys in opposite orders: each key admits exactly its burst.
#[test]
fn a_batch_racing_single_decisions_admits_exactly_the_burst() {
    const KEYS: u64 = 2_000;
    let tiers = [Quota::new(5, 1, 1_000).unwrap()];
    let mem = memory(4_000, 1);
    let table = BucketTable::init(&mem, &tiers, Seed::new(3, 4), FullPolicy::FailClosed).unwrap();
    let keys: Vec<Key> = (0..KEYS).map(|k| Key::pair(k, 9)).collect();
    let [batched, single] = thread::scope(|s| {
        let batched = s.spawn(|| {
            let mut admitted = vec![0u64; keys.len()];
            let mut out = vec![Err(Error::Malformed); 50];
            for _ in 0..12 {
                for (c, chunk) in keys.chunks(50).enumerate() {
                    table.decide_many(chunk, 0, 77, 1, &mut out).unwrap();
                    for (i, d) in out.iter().enumerate() {
                        let d = d.unwrap();
                        assert_ne!(d.verdict, Outcome::Overloaded, "the table has room");
                        admitted[c * 50 + i] += u64::from(d.is_allowed());
                    }
                }
            }
            admitted
        });
        let single = s.spawn(|| {
            let mut admitted = vec![0u64; keys.len()];
            for _ in 0..12 {
                for (i, &k) in keys.iter().enumerate().rev() {
                    let o = table.check(k, 0, 77, 1).unwrap();
                    admitted[i] += u64::from(o == Outcome::Allowed);
                }
            }
            admitted
        });
        [batched.join().unwrap(), single.join().unwrap()]
    });
    for k in 0..keys.len() {
        assert_eq!(batched[k] + single[k], 5, "key {k}");
    }
    assert_eq!(table.stats().occupied, KEYS);
}

/// A larger table (8 200 groups) filled to a load of 0.85, so that many keys live past their
/// home group: batches of present and new keys, some refused for lack of room, decide as the
/// single calls in order, and leave the same memory.
#[test]
fn a_large_table_with_displaced_keys_decides_as_the_calls_in_order() {
    const SLOTS: usize = 8_200 * 5;
    let tiers = [Quota::new(3, 1, 10).unwrap(), Quota::new(5, 2, 10).unwrap()];
    let seed = Seed::new(11, 12);
    let mems = [memory(SLOTS, 2), memory(SLOTS, 2)];
    let [many, single] =
        [0, 1].map(|i| BucketTable::init(&mems[i], &tiers, seed, FullPolicy::FailClosed).unwrap());
    let resident = SLOTS as u64 * 85 / 100;
    for k in 0..resident {
        for t in [&many, &single] {
            // A new key: admitted, or refused for lack of room.
            let d = t.decide(Key::pair(k, 1), 0, 0, 1).unwrap();
            assert!(d.is_allowed() || d.verdict == Outcome::Overloaded, "{d:?}");
        }
    }
    let displaced = (0..resident)
        .filter(|&k| single.probe_len(Key::pair(k, 1)).is_some_and(|p| p > 5))
        .count();
    assert!(displaced > 1_000, "{displaced} displaced keys");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = vec![Err(Error::Malformed); 100];
    for round in 0..200u64 {
        // Keys drawn from the residents and beyond them (new keys, some refused: the table is
        // nearly full); tiers change.
        let keys: Vec<Key> = (0..100)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                Key::pair(x % (resident + 2_000), 1)
            })
            .collect();
        let tier = usize::from(round % 7 == 0);
        let now = round / 3;
        many.decide_many(&keys, tier, now, 1, &mut out).unwrap();
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(
                out[i],
                single.decide(k, tier, now, 1),
                "round {round}, key {i}"
            );
        }
    }
    assert_eq!(words(&mems[0]), words(&mems[1]));
}
