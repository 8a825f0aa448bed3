//! The key table against a plain map from key to the core's own bucket (docs/semantics.md#key-tables): random
//! decisions and peeks over a small key space, a random tier per decision, random times.
//!
//! - With room for every key, every answer (or error) is identical to the model's.
//! - With fewer slots than keys, answers still match, except where the full-table policy
//!   answers: then the key holds no state in the model either (its bucket is drained), and the
//!   model is left untouched. Keys are reclaimed and come back; a reclaimed key behaves exactly
//!   like a new one.
//! - With times that go backwards, replaying each key's admitted requests at times raised to the
//!   latest time the table has seen admits every one (docs/semantics.md#backwards-clocks).

use std::collections::HashMap;

use proptest::prelude::*;
use tollgate::key::{Key, Seed};
use tollgate::table::{FullPolicy, Table, TableQuota};
use tollgate::{Decision, Error, FixedWindow, LeakyBucket, Outcome, Quota, WindowQuota};

mod table_support;
use table_support::{bucket_tiers, key_of, memory, policy, window_tiers, words};

/// The reference: one core limiter per key, its tier changed with `set_quota`.
trait Model {
    type Q: TableQuota;
    fn new(quota: Self::Q) -> Self;
    fn set_quota(&mut self, quota: Self::Q, now: u64) -> Result<(), Error>;
    fn run(&self, now: u64, cost: u64, peek: bool) -> Result<Decision, Error>;
    fn is_drained(&self, now: u64) -> bool;
}

impl Model for LeakyBucket {
    type Q = Quota;
    fn new(quota: Quota) -> Self {
        LeakyBucket::new(quota)
    }
    fn set_quota(&mut self, quota: Quota, now: u64) -> Result<(), Error> {
        LeakyBucket::set_quota(self, quota, now)
    }
    fn run(&self, now: u64, cost: u64, peek: bool) -> Result<Decision, Error> {
        if peek {
            self.peek(now, cost)
        } else {
            self.decide(now, cost)
        }
    }
    fn is_drained(&self, now: u64) -> bool {
        LeakyBucket::is_drained(self, now)
    }
}

impl Model for FixedWindow {
    type Q = WindowQuota;
    fn new(quota: WindowQuota) -> Self {
        FixedWindow::new(quota)
    }
    fn set_quota(&mut self, quota: WindowQuota, now: u64) -> Result<(), Error> {
        FixedWindow::set_quota(self, quota, now)
    }
    fn run(&self, now: u64, cost: u64, peek: bool) -> Result<Decision, Error> {
        if peek {
            self.peek(now, cost)
        } else {
            self.decide(now, cost)
        }
    }
    fn is_drained(&self, now: u64) -> bool {
        FixedWindow::is_drained(self, now)
    }
}

#[derive(Clone, Debug)]
struct Op {
    key: u8,
    tier: usize,
    dt: u64,
    cost: u64,
    peek: bool,
}

fn ops(keys: u8) -> impl Strategy<Value = Vec<Op>> {
    let op = (
        0..keys,
        0..4usize,
        0..6u64,
        0..7u64,
        prop::bool::weighted(0.2),
    )
        .prop_map(|(key, tier, dt, cost, peek)| Op {
            key,
            // Tier 3 does not exist: an error, like the model's "no such quota".
            tier,
            dt: if dt == 5 { 40 } else { dt },
            cost,
            peek,
        });
    prop::collection::vec(op, 1..160)
}

/// Runs `ops` on a table of `capacity` slots and on the model; returns how many answers came
/// from the full-table policy.
fn check<M: Model>(
    tiers: &[M::Q],
    capacity: usize,
    seed: (u64, u64),
    policy: FullPolicy,
    ops: &[Op],
) -> Result<u64, TestCaseError>
where
    M::Q: LimitForTest,
{
    let mem = memory(capacity, tiers.len());
    let table = Table::init(&mem, tiers, Seed::new(seed.0, seed.1), policy).unwrap();
    // The same table driven through `check` for every decision: the same outcomes, and in the
    // end the same memory, word for word.
    let twin_mem = memory(capacity, tiers.len());
    let twin = Table::init(&twin_mem, tiers, Seed::new(seed.0, seed.1), policy).unwrap();
    let capacity = table.capacity();
    let mut model: HashMap<u8, (M, usize)> = HashMap::new();
    let mut now = 0;
    let mut full = 0;
    for op in ops {
        now += op.dt;
        let got = if op.peek {
            table.peek(key_of(op.key), op.tier, now, op.cost)
        } else {
            table.decide(key_of(op.key), op.tier, now, op.cost)
        };
        if op.peek {
            prop_assert_eq!(twin.peek(key_of(op.key), op.tier, now, op.cost), got);
        } else {
            prop_assert_eq!(
                twin.check(key_of(op.key), op.tier, now, op.cost),
                got.map(|d| d.outcome)
            );
        }
        let Some(&quota) = tiers.get(op.tier) else {
            prop_assert_eq!(got, Err(Error::InvalidArgument));
            continue;
        };
        if let Ok(d) = got {
            if d.verdict == Outcome::Overloaded {
                full += 1;
                let expected_outcome = match policy {
                    FullPolicy::FailClosed => Outcome::Overloaded,
                    FullPolicy::FailOpen => Outcome::Allowed,
                };
                prop_assert_eq!(d.outcome, expected_outcome);
                prop_assert_eq!(d.is_fail_open(), policy == FullPolicy::FailOpen);
                prop_assert_eq!(
                    (d.limit, d.used, d.retry_after),
                    (quota.limit_for_test(), 0, None)
                );
                prop_assert_eq!(table.probe_len(key_of(op.key)), None);
                if let Some((m, _)) = model.get(&op.key) {
                    prop_assert!(m.is_drained(now), "refused a key that holds state");
                }
                continue;
            }
        }
        let (m, t) = model
            .entry(op.key)
            .or_insert_with(|| (M::new(quota), op.tier));
        // An error changes nothing: a zero cost must not change the model's tier either.
        let want = if op.cost == 0 {
            Err(Error::ZeroCost)
        } else if *t == op.tier {
            m.run(now, op.cost, op.peek)
        } else {
            match m.set_quota(quota, now) {
                Ok(()) => {
                    *t = op.tier;
                    m.run(now, op.cost, op.peek)
                }
                Err(e) => Err(e),
            }
        };
        prop_assert_eq!(got, want, "op {:?} at {}", op, now);
        // A key the table does not hold (a cost above the limit on a full table, answered
        // without a bucket, or an error) is a new key: its model starts over too.
        if table.probe_len(key_of(op.key)).is_none() {
            model.remove(&op.key);
        }
    }
    prop_assert_eq!(
        words(&mem),
        words(&twin_mem),
        "check left other state than decide"
    );
    let stats = table.stats();
    prop_assert_eq!(stats.rejected, full);
    prop_assert!(stats.occupied <= capacity as u64);
    Ok(full)
}

/// The limit a full-table answer reports.
trait LimitForTest {
    fn limit_for_test(&self) -> u64;
}
impl LimitForTest for Quota {
    fn limit_for_test(&self) -> u64 {
        self.burst()
    }
}
impl LimitForTest for WindowQuota {
    fn limit_for_test(&self) -> u64 {
        self.limit()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn buckets_with_room_match_the_model(ops in ops(8), seed: (u64, u64)) {
        let full = check::<LeakyBucket>(&bucket_tiers(), 64, seed, FullPolicy::FailClosed, &ops)?;
        prop_assert_eq!(full, 0);
    }

    #[test]
    fn windows_with_room_match_the_model(ops in ops(8), seed: (u64, u64)) {
        let full = check::<FixedWindow>(&window_tiers(), 64, seed, FullPolicy::FailClosed, &ops)?;
        prop_assert_eq!(full, 0);
    }

    #[test]
    fn buckets_in_a_small_table_match_the_model_but_for_the_policy(
        ops in ops(12), seed: (u64, u64), capacity in 1..11usize, policy in policy(),
    ) {
        check::<LeakyBucket>(&bucket_tiers(), capacity, seed, policy, &ops)?;
    }

    #[test]
    fn windows_in_a_small_table_match_the_model_but_for_the_policy(
        ops in ops(12), seed: (u64, u64), capacity in 1..11usize, policy in policy(),
    ) {
        check::<FixedWindow>(&window_tiers(), capacity, seed, policy, &ops)?;
    }

    /// Times go backwards; each key's admitted requests, replayed in order through a fresh
    /// model at their times raised to the latest time seen before them, all pass (docs/semantics.md#backwards-clocks).
    /// "Seen" is the key's own earlier decisions, and for a key that gets a new bucket, the
    /// latest reclaim before it: a new bucket is empty as at that time (the table's watermark).
    /// Tiers change at random: a change at an earlier `now` never gives back more than the
    /// change at the raised time would.
    #[test]
    fn backwards_time_never_admits_more_than_the_true_timeline(
        steps in prop::collection::vec((0..9u8, 0..3usize, 0..60u64, 1..4u64), 1..120),
        seed: (u64, u64),
        capacity in 1..11usize,
    ) {
        let tiers = bucket_tiers();
        let mem = memory(capacity, tiers.len());
        let table =
            Table::init(&mem, &tiers, Seed::new(seed.0, seed.1), FullPolicy::FailClosed).unwrap();
        let mut replay: HashMap<u8, (LeakyBucket, usize)> = HashMap::new();
        let mut seen: HashMap<u8, u64> = HashMap::new();
        let mut watermark = 0;
        for (key, tier, now, cost) in steps {
            let reclaimed = table.stats().reclaimed;
            let resident = table.probe_len(key_of(key)).is_some();
            let d = table.decide(key_of(key), tier, now, cost).unwrap();
            if table.stats().reclaimed > reclaimed {
                watermark = watermark.max(now);
            }
            if d.verdict == Outcome::Overloaded {
                continue;
            }
            let mut raised = now.max(seen.get(&key).copied().unwrap_or(0));
            if !resident {
                // A new bucket: empty at the watermark.
                raised = raised.max(watermark);
            }
            seen.insert(key, raised);
            if d.verdict != Outcome::Allowed {
                continue;
            }
            let (m, t) = replay
                .entry(key)
                .or_insert_with(|| (LeakyBucket::new(tiers[tier]), tier));
            if *t != tier {
                m.set_quota(tiers[tier], raised).unwrap();
                *t = tier;
            }
            let r = m.decide(raised, cost).unwrap();
            prop_assert!(r.is_allowed(), "table admitted key {} at {} (raised {}), the model does not", key, now, raised);
        }
    }
}

#[test]
fn a_reclaimed_key_starts_like_a_new_one() {
    let tiers = [Quota::new(2, 1, 10).unwrap()];
    // One group: five slots.
    let mem = memory(5, 1);
    let table = Table::init(&mem, &tiers, Seed::new(1, 2), FullPolicy::FailClosed).unwrap();
    assert_eq!(table.capacity(), 5);
    let (a, b) = (Key::pair(1, 1), Key::pair(2, 2));
    assert!(table.decide(a, 0, 0, 2).unwrap().is_allowed());
    // Four more keys fill the group.
    for k in 10..14 {
        assert!(table.decide(Key::pair(k, k), 0, 5, 2).unwrap().is_allowed());
    }
    // B: no room while A holds state, nor at 20, when A is empty only just (a slot is taken
    // only from a bucket that emptied strictly before the taker's `now`).
    for now in [19, 20] {
        let d = table.decide(b, 0, now, 1).unwrap();
        assert_eq!(
            (d.outcome, d.verdict),
            (Outcome::Overloaded, Outcome::Overloaded)
        );
    }
    // At 21, A has drained: B takes its slot, A is gone.
    let d = table.decide(b, 0, 21, 2).unwrap();
    assert!(d.is_allowed());
    assert_eq!(d.used, 2);
    assert_eq!(table.probe_len(a), None);
    assert!(table.probe_len(b).is_some());
    let s = table.stats();
    assert_eq!((s.occupied, s.reclaimed, s.rejected), (5, 1, 2));
    // At 45, every bucket has drained: A comes back as new, with a full burst.
    let d = table.decide(a, 0, 45, 2).unwrap();
    assert!(d.is_allowed());
    assert_eq!((d.used, d.remaining), (2, 0));
    assert_eq!(table.stats().reclaimed, 2);
}
