//! Retry budget arithmetic (docs/semantics.md#client-toolkit) against an unbounded reference model of its documented
//! rule: one more retry iff r + 1 ≤ floor + ⌊s · per_mille / 1000⌋ over the recent slots.

use proptest::prelude::*;
use tollgate::client::RetryBudget;

const SLOTS: usize = 8;

#[derive(Clone, Debug)]
enum Op {
    Success(u64),
    Retry(u64),
    Available(u64),
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly forward steps, sometimes a step back (a clock that jumps back).
    let dt = prop_oneof![8 => 0u64..40, 1 => 0u64..2_000];
    prop_oneof![
        4 => dt.clone().prop_map(Op::Success),
        3 => dt.clone().prop_map(Op::Retry),
        1 => dt.prop_map(Op::Available),
    ]
}

struct Model {
    slot_len: u64,
    per_mille: u64,
    floor: u64,
    latest: u64,
    /// (epoch, is_retry) of every recorded event.
    events: Vec<(u64, bool)>,
}

impl Model {
    fn available(&self) -> u64 {
        let epoch = self.latest / self.slot_len;
        let oldest = epoch.saturating_sub(SLOTS as u64 - 1);
        let recent = self
            .events
            .iter()
            .filter(|(e, _)| (oldest..=epoch).contains(e));
        let (s, r) = recent.fold(
            (0u64, 0u64),
            |(s, r), &(_, retry)| {
                if retry {
                    (s, r + 1)
                } else {
                    (s + 1, r)
                }
            },
        );
        (self.floor + s * self.per_mille / 1000).saturating_sub(r)
    }
}

proptest! {
    #[test]
    fn the_budget_follows_its_rule(
        window in (SLOTS as u64)..1_000,
        per_mille in 0u32..2_000,
        floor in 0u64..5,
        ops in proptest::collection::vec((op(), any::<bool>()), 1..300),
    ) {
        let mut budget: RetryBudget<SLOTS> = RetryBudget::new(window, per_mille, floor).unwrap();
        let mut model = Model {
            slot_len: window / SLOTS as u64,
            per_mille: u64::from(per_mille),
            floor,
            latest: 0,
            events: Vec::new(),
        };
        let mut now = 0u64;
        for (op, backwards) in ops {
            let dt = match op { Op::Success(d) | Op::Retry(d) | Op::Available(d) => d };
            // The caller's clock; the budget and the model both keep the latest time.
            now = if backwards { now.saturating_sub(dt) } else { now + dt };
            model.latest = model.latest.max(now);
            let epoch = model.latest / model.slot_len;
            match op {
                Op::Success(_) => {
                    budget.record_success(now);
                    model.events.push((epoch, false));
                }
                Op::Retry(_) => {
                    let expected = model.available() > 0;
                    prop_assert_eq!(budget.try_retry(now), expected);
                    if expected {
                        model.events.push((epoch, true));
                    }
                }
                Op::Available(_) => prop_assert_eq!(budget.available(now), model.available()),
            }
        }
    }

    /// The storm bound, checked from the outside: the retries granted in any `SLOTS`
    /// consecutive slots never exceed floor + per_mille/1000 of the successes of those slots
    /// and the `SLOTS − 1` before them (each grant was judged on the window ending at its own
    /// slot, which lies inside that span).
    #[test]
    fn retries_stay_within_their_share(
        per_mille in 0u32..500,
        floor in 0u64..4,
        successes_per_slot in proptest::collection::vec(0u64..30, 20..60),
    ) {
        let slot = 10u64;
        let mut budget: RetryBudget<SLOTS> = RetryBudget::new(slot * SLOTS as u64, per_mille, floor).unwrap();
        let mut granted = Vec::new();
        for (i, &s) in successes_per_slot.iter().enumerate() {
            let t = i as u64 * slot;
            for _ in 0..s {
                budget.record_success(t);
            }
            let mut g = 0;
            while budget.try_retry(t + 5) {
                g += 1;
            }
            granted.push(g);
        }
        for end in 0..successes_per_slot.len() {
            let start = end.saturating_sub(SLOTS - 1);
            let earned_from = end.saturating_sub(2 * (SLOTS - 1));
            let s: u64 = successes_per_slot[earned_from..=end].iter().sum();
            let r: u64 = granted[start..=end].iter().sum();
            prop_assert!(r <= floor + s * u64::from(per_mille) / 1000, "slots {}..={}", start, end);
        }
    }
}
