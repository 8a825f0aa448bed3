//! `SlidingLog` against the reference model of docs/semantics.md#time and docs/semantics.md#sliding-window-log (a plain `Vec` of entries).
//!
//! The log judges every call at the latest `now` it has seen, and measures reported times from
//! the caller's `now`; the model does the same, so every decision and number is compared
//! exactly, forward or back. The docs/semantics.md#backwards-clocks replay property is checked on top, and runs use a log
//! whose capacity is exactly its limit, so the fixed ring is filled to the brim.

use tollgate_models as models;
use tollgate_models::Model as _;

use models::SlidingLog as Model;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tollgate::{Decision, Error, Outcome, SlidingLog, WindowQuota};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_sliding_log.txt"
        )))),
        ..ProptestConfig::default()
    }
}

fn window() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => 1..=10u64,
        3 => 1..=2_000u64,
        1 => Just(1_000_000_000u64),
        1 => 1u64..1 << 40,
        1 => (u64::MAX - 1_000)..=u64::MAX,
    ]
}

fn cost(sel: u8, raw: u64, limit: u64) -> u64 {
    match sel {
        0..=2 => 0,
        3..=5 => limit + 1 + raw % 3,
        6..=59 => 1,
        60..=84 => 1 + raw % limit.min(4),
        _ => 1 + raw % limit,
    }
}

fn next_time(t: u64, sel: u8, raw: u64, window: u64, backward: bool) -> u64 {
    let modulo = |m: u64| raw % m.saturating_add(1);
    match sel {
        0..=19 => t,
        20..=59 => t.saturating_add(modulo(window / 4)),
        60..=79 => t.saturating_add(modulo(window)),
        80..=84 => t.saturating_add(window),
        85..=89 => t.saturating_add(modulo(window.saturating_mul(3))),
        _ if backward => t.saturating_sub(modulo(window.saturating_mul(2))),
        _ => t.saturating_add(modulo(window / 2)),
    }
}

fn start_time(sel: u8, raw: u64, window: u64) -> u64 {
    match sel {
        0..=3 => 0,
        4..=5 => raw % window.saturating_mul(4),
        6 => raw,
        _ => u64::MAX - raw % window.saturating_mul(4).saturating_add(1),
    }
}

/// One call: (kind: 0 decide, 1 peek, 2 used, 3 next admit time; cost sel, cost raw, time sel,
/// time raw).
type Op = (u8, u8, u64, u8, u64);

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (
            prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
            0..100u8,
            any::<u64>(),
            0..100u8,
            any::<u64>(),
        ),
        1..max,
    )
}

fn check_shape(d: &Decision, limit: u64) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.outcome, d.verdict);
    prop_assert_eq!(d.limit, limit);
    prop_assert!(d.used <= limit);
    prop_assert_eq!(d.remaining, limit - d.used);
    match d.outcome {
        Outcome::Allowed => prop_assert_eq!(d.retry_after, Some(0)),
        Outcome::Limited => {
            prop_assert!(d.retry_after.is_some_and(|r| r > 0 && r <= d.reset_after));
        }
        Outcome::Never => prop_assert_eq!(d.retry_after, None),
        Outcome::Overloaded => prop_assert!(false, "a log never answers Overloaded"),
    }
    Ok(())
}

/// The definitions of the reported times (docs/semantics.md#reported-numbers), on the model after a decision at `t`:
/// `retry_after` is the least wait until enough old units leave for the same request to pass,
/// `reset_after` the least wait until the window is empty. (Saturated values are skipped.)
fn check_times(model: &Model, d: &Decision, t: u64, cost: u64) -> Result<(), TestCaseError> {
    let within = |dt: u64| t.checked_add(dt).filter(|_| dt < u64::MAX);
    if let (Outcome::Limited, Some(retry)) = (d.outcome, d.retry_after) {
        if let Some(at) = within(retry) {
            prop_assert!(model.clone().peek(at, cost).is_ok_and(|d| d.is_allowed()));
            prop_assert!(model
                .clone()
                .peek(at - 1, cost)
                .is_ok_and(|d| !d.is_allowed()));
        }
    }
    if let Some(at) = within(d.reset_after) {
        prop_assert_eq!(model.clone().used(at), 0);
        if d.reset_after > 0 {
            prop_assert!(model.clone().used(at - 1) > 0);
        }
    }
    Ok(())
}

fn run<const CAP: usize>(
    limit: u64,
    window: u64,
    (start_sel, start_raw): (u8, u64),
    ops: &[Op],
    backward: bool,
) -> Result<(), TestCaseError> {
    let quota = WindowQuota::new(limit, window).expect("a valid quota");
    let mut log: SlidingLog<CAP> = SlidingLog::new(quota).expect("limit ≤ CAP");
    // Driven by `check` instead of `decide`: the same outcomes, the same entries.
    let mut twin = log.clone();
    let mut model = Model::new(limit, window).expect("a valid quota");
    let mut replay = model.clone();
    let mut latest: Option<u64> = None;
    let mut t = start_time(start_sel, start_raw, window);
    for (i, &(kind, cost_sel, cost_raw, dt_sel, dt_raw)) in ops.iter().enumerate() {
        t = next_time(t, dt_sel, dt_raw, window, backward);
        let c = cost(cost_sel, cost_raw, limit);
        let raised = latest.map_or(t, |l| l.max(t));
        // Every call that does not fail records its time: the latest `now` seen.
        if c != 0 || kind == 2 {
            latest = Some(raised);
        }
        match kind {
            2 => {
                prop_assert_eq!(log.used(t), model.used(t), "used at {}", t);
                prop_assert_eq!(twin.used(t), model.used(t));
                continue;
            }
            3 => {
                let want = model
                    .peek(t, c)
                    .ok()
                    .and_then(|d| t.checked_add(d.retry_after?));
                prop_assert_eq!(log.next_admit_time(t, c), want, "next admit time at {}", t);
                prop_assert_eq!(twin.next_admit_time(t, c), want);
                continue;
            }
            _ => {}
        }
        let peek = kind == 1;
        let got = if peek {
            log.peek(t, c)
        } else {
            log.decide(t, c)
        };
        let want = if peek {
            model.peek(t, c)
        } else {
            model.decide(t, c)
        };
        prop_assert_eq!(got, want, "call {} (peek {}) at {} cost {}", i, peek, t, c);
        if peek {
            prop_assert_eq!(twin.peek(t, c), got);
        } else {
            prop_assert_eq!(twin.check(t, c), got.map(|d| d.outcome));
        }
        let Ok(d) = got else {
            prop_assert_eq!(c, 0);
            continue;
        };
        check_shape(&d, limit)?;
        check_times(&model, &d, t, c)?;
        if d.outcome == Outcome::Allowed && !peek {
            let r = replay.decide(raised, c);
            prop_assert!(
                r.is_ok_and(|r| r.is_allowed()),
                "replay of call {} at {}",
                i,
                raised
            );
        }
    }
    prop_assert_eq!(log.peek(t, 1), twin.peek(t, 1));
    Ok(())
}

proptest! {
    #![proptest_config(config(768))]

    #[test]
    fn forward_decisions_equal_the_model(
        limit in 1..=16u64,
        window in window(),
        start in (0..10u8, any::<u64>()),
        ops in ops(200),
    ) {
        run::<16>(limit, window, start, &ops, false)?;
    }

    #[test]
    fn backward_steps_equal_the_model_and_never_admit_more_than_the_timeline(
        limit in 1..=16u64,
        window in window(),
        start in (0..10u8, any::<u64>()),
        ops in ops(200),
    ) {
        run::<16>(limit, window, start, &ops, true)?;
    }

    #[test]
    fn a_ring_of_exactly_the_limit_never_runs_out(
        window in window(),
        start in (0..10u8, any::<u64>()),
        ops in ops(200),
        backward in any::<bool>(),
    ) {
        run::<5>(5, window, start, &ops, backward)?;
    }

}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_larger_limit_equals_the_model(
        limit in 17..=64u64,
        window in window(),
        start in (0..10u8, any::<u64>()),
        ops in ops(300),
        backward in any::<bool>(),
    ) {
        run::<64>(limit, window, start, &ops, backward)?;
    }
}

// Named edge inputs of the sliding log.

#[test]
fn a_limit_above_the_capacity_is_refused() {
    let q = WindowQuota::new(9, 10).unwrap();
    assert_eq!(
        SlidingLog::<8>::new(q).unwrap_err(),
        Error::CapacityExceeded
    );
    assert!(SlidingLog::<9>::new(q).is_ok());
}

#[test]
fn zero_cost_and_cost_above_the_limit() {
    let mut log: SlidingLog<3> = SlidingLog::new(WindowQuota::new(3, 10).unwrap()).unwrap();
    assert_eq!(log.decide(0, 0), Err(Error::ZeroCost));
    assert_eq!(log.peek(0, 0), Err(Error::ZeroCost));
    assert!(log.decide(2, 1).unwrap().is_allowed());
    let d = log.decide(4, 4).unwrap();
    assert_eq!(
        (d.outcome, d.retry_after, d.used, d.reset_after),
        (Outcome::Never, None, 1, 8)
    );
    assert_eq!(log.next_admit_time(4, 4), None);
    assert_eq!(log.next_admit_time(4, 0), None);
}

#[test]
fn now_near_u64_max_and_a_window_of_u64_max() {
    let mut log: SlidingLog<2> = SlidingLog::new(WindowQuota::new(2, u64::MAX).unwrap()).unwrap();
    assert!(log.decide(u64::MAX, 2).unwrap().is_allowed());
    let d = log.decide(0, 1).unwrap();
    // Judged at u64::MAX; the entry leaves at 2·u64::MAX, measured from 0: saturated.
    assert_eq!(
        (d.outcome, d.retry_after, d.reset_after),
        (Outcome::Limited, Some(u64::MAX), u64::MAX)
    );
    assert_eq!(log.next_admit_time(0, 1), Some(u64::MAX));
}
