//! Differential: arbitrary operation sequences on a key table — a `BucketTable` or a
//! `WindowTable` — against a map of reference limiters (one `BucketModel` or `WindowModel` per
//! key, converted when the key changes tier, docs/semantics.md#quota-changes).
//!
//! - Roomy tables (1 024 slots, at most 16 keys: no window ever fills, nothing is reclaimed),
//!   any clock, backwards included: every decision and error equals the key's model.
//! - Tiny tables (one or two groups of 5 slots, up to 32 keys), a clock that only moves
//!   forward: a key that finds
//!   no room gets the full-table answer, which the table may give only when the key's bucket is
//!   absent or drained (so nothing live was evicted); every other decision equals the model.
//!   The counters agree: `rejected` counts the full-table answers, `occupied` ≤ capacity.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tollgate::key::{Key, Seed};
use tollgate::state::Mode;
use tollgate::table::{self, AtomicU64, FullPolicy, Table, TableQuota};
use tollgate::{Decision, Error, Outcome, Quota, WindowQuota};
use tollgate_fuzz::check_invariants;
use tollgate_fuzz::gen::{Param, SmallParam, Tick};
use tollgate_models::{Conversion, FixedWindow as WindowModel, Gcra as BucketModel, Model as _};

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Tier {
    burst: SmallParam,
    count: Param,
    period: Param,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Decide {
        key: u8,
        tier: u8,
        tick: Tick,
        cost: SmallParam,
    },
    Peek {
        key: u8,
        tier: u8,
        tick: Tick,
        cost: SmallParam,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    windows: bool,
    roomy: bool,
    tiny_slots: u8,
    fail_open: bool,
    seed: (u64, u64),
    tiers: Vec<Tier>,
    ops: Vec<Op>,
}

struct KeyModel<M> {
    tier: usize,
    bucket: M,
}

fn forward_only(tick: Tick) -> Tick {
    match tick {
        Tick::Back(_) | Tick::Abs(_) => Tick::Same,
        other => other,
    }
}

/// A table kind: its tier type and the reference model of one key.
trait Kind: TableQuota + Sized {
    type Model: Clone + std::fmt::Debug;
    fn build(t: &Tier) -> Option<Self>;
    fn limit(&self) -> u64;
    fn fresh(&self) -> Self::Model;
    /// The checks a new bucket makes first: the named tier's clock range.
    fn in_range(&self, now: u64) -> Result<(), Error>;
    /// The key changes tier from `old` to `self` at `now`.
    fn to_tier(&self, old: &Self, m: &mut Self::Model, now: u64) -> Result<(), Error>;
    fn judge(
        &self,
        m: &mut Self::Model,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<Decision, Error>;
    fn drained(m: &Self::Model, now: u64) -> bool;
}

impl Kind for Quota {
    type Model = BucketModel;
    fn build(t: &Tier) -> Option<Quota> {
        Quota::with_min_span(t.burst.get(), t.count.get(), t.period.get(), 0).ok()
    }
    fn limit(&self) -> u64 {
        self.burst()
    }
    fn fresh(&self) -> BucketModel {
        BucketModel::new(self.burst(), self.count(), self.period()).expect("an exact quota")
    }
    fn in_range(&self, now: u64) -> Result<(), Error> {
        if now > self.exact_span() {
            Err(Error::ClockOutOfRange)
        } else {
            Ok(())
        }
    }
    fn to_tier(&self, old: &Quota, m: &mut BucketModel, now: u64) -> Result<(), Error> {
        old.in_range(now)?;
        m.set_quota(&self.fresh(), now, Conversion::Engine)
    }
    fn judge(
        &self,
        m: &mut BucketModel,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<Decision, Error> {
        // The model's span is this tier's: it was made for it, or converted to it.
        assert_eq!(m.span, self.exact_span());
        m.judge(now, cost, mode)
    }
    fn drained(m: &BucketModel, now: u64) -> bool {
        m.is_drained(now)
    }
}

impl Kind for WindowQuota {
    type Model = WindowModel;
    fn build(t: &Tier) -> Option<WindowQuota> {
        let q = WindowQuota::new(t.burst.get(), t.count.get()).ok()?;
        q.with_offset(t.period.get() % q.window()).ok()
    }
    fn limit(&self) -> u64 {
        WindowQuota::limit(self)
    }
    fn fresh(&self) -> WindowModel {
        WindowModel::new(WindowQuota::limit(self), self.window(), self.offset())
            .expect("a valid window quota")
    }
    fn in_range(&self, now: u64) -> Result<(), Error> {
        self.fresh().peek(now, 1).map(|_| ())
    }
    fn to_tier(&self, _old: &WindowQuota, m: &mut WindowModel, now: u64) -> Result<(), Error> {
        m.set_quota(&self.fresh(), now)
    }
    fn judge(
        &self,
        m: &mut WindowModel,
        now: u64,
        cost: u64,
        mode: Mode,
    ) -> Result<Decision, Error> {
        m.judge(now, cost, mode)
    }
    fn drained(m: &WindowModel, now: u64) -> bool {
        m.is_drained(now)
    }
}

fuzz_target!(|input: Input| {
    if input.windows {
        run::<WindowQuota>(&input);
    } else {
        run::<Quota>(&input);
    }
});

fn run<Q: Kind>(input: &Input) {
    let tiers: Vec<Q> = input.tiers.iter().take(4).filter_map(Q::build).collect();
    if tiers.is_empty() {
        return;
    }
    let (capacity, keys) = if input.roomy {
        (1024, 16)
    } else {
        (usize::from(input.tiny_slots % 8) + 1, 32)
    };
    let memory: Vec<AtomicU64> = (0..table::words(capacity, tiers.len()))
        .map(|_| AtomicU64::new(0))
        .collect();
    let policy = if input.fail_open {
        FullPolicy::FailOpen
    } else {
        FullPolicy::FailClosed
    };
    // A tier whose bucket does not fit the table's state bits is refused (SpanTooShort).
    let Ok(table) = Table::init(&memory, &tiers, Seed::new(input.seed.0, input.seed.1), policy)
    else {
        return;
    };
    let capacity = table.capacity();
    let mut models: HashMap<u8, KeyModel<Q::Model>> = HashMap::new();
    let mut now = 0u64;
    let mut rejected = 0u64;
    for op in input.ops.iter().take(256) {
        let (Op::Decide {
            key,
            tier,
            tick,
            cost,
        }
        | Op::Peek {
            key,
            tier,
            tick,
            cost,
        }) = *op;
        let mode = if matches!(op, Op::Decide { .. }) {
            Mode::Decide
        } else {
            Mode::Peek
        };
        let tick = if input.roomy {
            tick
        } else {
            forward_only(tick)
        };
        now = tick.apply(now);
        let key_id = key % keys;
        let key = Key::pair(
            u64::from(key_id) + 1,
            u64::from(key_id).wrapping_mul(0x9E37_79B9),
        );
        let tier = usize::from(tier) % (tiers.len() + 1); // one past the end: an invalid tier
        let cost = cost.get();
        let got = match mode {
            Mode::Decide => table.decide(key, tier, now, cost),
            Mode::Peek => table.peek(key, tier, now, cost),
        };
        let Some(quota) = tiers.get(tier) else {
            assert_eq!(got, Err(Error::InvalidArgument));
            continue;
        };
        // The table's state keeps fewer bits than a single limiter's (the tier index takes
        // some): past a tier's table span, or for a conversion whose result does not fit, it
        // refuses where the model may not. An error changes nothing in the table: skip it.
        if got == Err(Error::ClockOutOfRange) {
            let past = |t: usize| table.tier_span(t).is_some_and(|s| now > s);
            let changes_tier = models.get(&key_id).is_some_and(|m| m.tier != tier);
            if past(tier) || changes_tier {
                continue;
            }
        }
        let fresh = || Kind::fresh(quota);
        if let Ok(d) = got {
            if d.verdict == Outcome::Overloaded {
                assert!(!input.roomy, "a roomy table answered full: {d:?}");
                let want = Decision {
                    outcome: if input.fail_open {
                        Outcome::Allowed
                    } else {
                        Outcome::Overloaded
                    },
                    verdict: Outcome::Overloaded,
                    limit: Kind::limit(quota),
                    used: 0,
                    remaining: Kind::limit(quota),
                    retry_after: None,
                    reset_after: 0,
                    flags: if input.fail_open {
                        Decision::FAIL_OPEN
                    } else {
                        0
                    },
                };
                assert_eq!(d, want);
                if let Some(m) = models.remove(&key_id) {
                    assert!(
                        Q::drained(&m.bucket, now),
                        "a live bucket was evicted: {:?}",
                        m.bucket
                    );
                }
                rejected += 1;
                assert_eq!(table.stats().rejected, rejected);
                continue;
            }
        }
        // The key's model: converted to the named tier first, as the table does.
        let existed = models.contains_key(&key_id);
        let mut m = match models.remove(&key_id) {
            Some(m) => m,
            None => KeyModel {
                tier,
                bucket: fresh(),
            },
        };
        let step = |m: &mut KeyModel<Q::Model>| {
            if cost == 0 {
                return Err(Error::ZeroCost);
            }
            quota.in_range(now)?;
            if m.tier != tier {
                quota.to_tier(&tiers[m.tier], &mut m.bucket, now)?;
                m.tier = tier;
            }
            quota.judge(&mut m.bucket, now, cost, mode)
        };
        // In a tiny table a drained bucket may have been reclaimed for another key: the key
        // then starts over as a new bucket in the named tier, which is indistinguishable on a
        // forward clock, except that no conversion from the old tier takes place.
        let reclaimable = !input.roomy && Q::drained(&m.bucket, now);
        let before = m.bucket.clone();
        let want = step(&mut m);
        let got = got.inspect(check_invariants);
        if got != want && reclaimable {
            m = KeyModel {
                tier,
                bucket: fresh(),
            };
            let again = step(&mut m);
            assert_eq!(
                got, again,
                "{op:?} at {now}, as a new bucket (was {before:?})"
            );
        } else {
            assert_eq!(got, want, "{op:?} at {now} on {before:?}");
        }
        let stats = table.stats();
        assert!(stats.occupied <= capacity as u64);
        assert_eq!(stats.rejected, rejected);
        // An error changes nothing: a new key stays out.
        if got.is_ok() || existed {
            models.insert(key_id, m);
        }
    }
}
