//! `LeakyBucket` (GCRA) against the reference model of docs/semantics.md.
//!
//! - Forward time: every decision and every reported number equals the model's.
//! - Backward steps: the docs/semantics.md#backwards-clocks property as written — the requests the engine admitted, each at
//!   its time raised to the latest `now` seen before it, are all admitted by the model; calls that
//!   do not go back still equal the model exactly.
//! - Quota construction: the same errors and span as docs/semantics.md and the documented formula.
//! - Approximate quotas never admit more than the exact timeline.

use tollgate_models as models;
use tollgate_models::Model as _;

use models::Gcra as Model;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tollgate::{Decision, Error, LeakyBucket, Outcome, Quota};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_gcra.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// (burst, count, period): small, clock-like, with common factors, large and odd.
fn quota_params() -> impl Strategy<Value = (u64, u64, u64)> {
    prop_oneof![
        3 => (1..=40u64, 1..=10u64, 1..=2_000u64),
        1 => Just((30, 2, 1_000_000_000)),
        1 => (1..=1_000u64, prop_oneof![Just(3u64), Just(7)], prop_oneof![Just(1_000u64), Just(1_000_000_000)]),
        2 => (1..=50u64, 1..=1_000u64, 1..=1_000u64, 1..=1_000_000u64)
            .prop_map(|(b, c, p, g)| (b, c * g, p * g)),
        2 => (1..=1_000u64, (1u64..1 << 24).prop_map(|c| c | 1), 1u64..1 << 44),
        1 => (1u64..1 << 20, 1u64..1 << 12, 1u64..1 << 44),
        1 => (1u64..=u64::MAX, Just(1u64), Just(1u64)),
        1 => (1u64..1 << 16, 1u64..1 << 8, (1u64 << 40)..(1 << 48)),
    ]
}

/// A request's cost from a selector: 0 (an error), above the burst (Never), 1, small, any.
fn cost(sel: u8, raw: u64, burst: u64) -> u64 {
    match sel {
        0..=2 => 0,
        3..=5 => burst.checked_add(1 + raw % 3).unwrap_or(burst),
        6..=59 => 1,
        60..=84 => 1 + raw % burst.min(4),
        _ => 1 + raw % burst,
    }
}

/// Time scales of a quota: ticks per request ⌈P/C⌉ and for a full bucket ⌈B·P/C⌉.
#[derive(Clone, Copy, Debug)]
struct Scale {
    interval: u64,
    drain: u64,
}

fn scale(burst: u64, count: u64, period: u64) -> Scale {
    let clamp = |x: u128| u64::try_from(x).unwrap_or(u64::MAX);
    let p = u128::from(period);
    let c = u128::from(count);
    Scale {
        interval: clamp(p.div_ceil(c)).max(1),
        drain: clamp((u128::from(burst) * p).div_ceil(c)).max(1),
    }
}

/// The next `now`: mostly forward by up to a request or a bucket, sometimes stalled, and with
/// `backward`, sometimes back by up to a bucket.
fn next_time(t: u64, sel: u8, raw: u64, s: Scale, backward: bool) -> u64 {
    let modulo = |m: u64| raw % m.saturating_add(1);
    match sel {
        0..=14 => t,
        15..=54 => t.saturating_add(modulo(s.interval)),
        55..=74 => t.saturating_add(modulo(s.interval.saturating_mul(3))),
        75..=87 => t.saturating_add(modulo(s.drain.saturating_add(s.interval))),
        88..=89 => t.saturating_add(modulo(s.drain.saturating_mul(3))),
        _ if backward => t.saturating_sub(modulo(s.drain)),
        _ => t.saturating_add(modulo(s.interval / 2)),
    }
}

/// Where a run starts: at 0, a little later, or just below the quota's span.
fn start_time(sel: u8, raw: u64, s: Scale, span: u64) -> u64 {
    match sel {
        0..=3 => 0,
        4..=6 => raw % s.drain.saturating_mul(2).saturating_add(1),
        7 => raw,
        _ => span.saturating_sub(raw % s.drain.saturating_mul(4).saturating_add(2)),
    }
}

/// One call: (peek?, cost selector, cost raw, time selector, time raw).
use models::{ops, Op};

fn call(bucket: &LeakyBucket, peek: bool, now: u64, cost: u64) -> Result<Decision, Error> {
    if peek {
        bucket.peek(now, cost)
    } else {
        bucket.decide(now, cost)
    }
}

/// The same call through the outcome-only path (`check` for a decision; a peek stays a peek):
/// it must give the same outcome or error and leave the same state as `call` on a twin.
fn twin_call(
    twin: &LeakyBucket,
    peek: bool,
    now: u64,
    cost: u64,
    got: Result<Decision, Error>,
) -> Result<(), TestCaseError> {
    if peek {
        prop_assert_eq!(twin.peek(now, cost), got);
    } else {
        prop_assert_eq!(twin.check(now, cost), got.map(|d| d.outcome));
    }
    Ok(())
}

/// After a run, the bucket and its `check`-driven twin are in the same state.
fn same_state(bucket: &LeakyBucket, twin: &LeakyBucket, t: u64) -> Result<(), TestCaseError> {
    prop_assert_eq!(bucket.is_drained(t), twin.is_drained(t));
    prop_assert_eq!(bucket.peek(t, 1), twin.peek(t, 1));
    Ok(())
}

fn model_call(model: &mut Model, peek: bool, now: u64, cost: u64) -> Result<Decision, Error> {
    if peek {
        model.peek(now, cost)
    } else {
        model.decide(now, cost)
    }
}

/// A model's result as a test-case result (`tollgate::Error` is not `std::error::Error` here).
fn ok<T>(r: Result<T, Error>) -> Result<T, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(format!("the model refused: {e:?}")))
}

/// Reported numbers that hold for any decision, whatever the clock did.
fn check_shape(d: &Decision, burst: u64) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.outcome, d.verdict);
    prop_assert_eq!(d.flags, 0);
    prop_assert_eq!(d.limit, burst);
    prop_assert!(d.used <= burst);
    prop_assert_eq!(d.remaining, burst - d.used);
    match d.outcome {
        Outcome::Allowed => prop_assert_eq!(d.retry_after, Some(0)),
        Outcome::Limited => prop_assert!(d.retry_after.is_some_and(|r| r > 0)),
        Outcome::Never => prop_assert_eq!(d.retry_after, None),
        Outcome::Overloaded => prop_assert!(false, "a bucket never answers Overloaded"),
    }
    Ok(())
}

/// The definitions of the reported times (docs/semantics.md#reported-numbers), checked on the model after a decision at `t`:
/// `retry_after` is the least wait after which the same request passes with no other traffic,
/// `reset_after` the least wait until the bucket is empty.
fn check_times(model: &Model, d: &Decision, t: u64, cost: u64) -> Result<(), TestCaseError> {
    let within = |dt: u64| t.checked_add(dt).filter(|&at| at <= model.span);
    if let (Outcome::Limited, Some(retry)) = (d.outcome, d.retry_after) {
        if let Some(at) = within(retry) {
            prop_assert!(ok(model.clone().peek(at, cost))?.is_allowed());
            prop_assert!(!ok(model.clone().peek(at - 1, cost))?.is_allowed());
        }
    }
    if let Some(at) = within(d.reset_after) {
        prop_assert_eq!(model.level(at).0, 0);
        if d.reset_after > 0 {
            prop_assert!(model.level(at - 1).0 > 0);
        }
    }
    Ok(())
}

fn run_forward(
    (burst, count, period): (u64, u64, u64),
    (start_sel, start_raw): (u8, u64),
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let Ok(quota) = Quota::with_min_span(burst, count, period, 0) else {
        return Ok(());
    };
    let mut model = Model::new(burst, count, period).expect("the engine accepted it");
    let bucket = LeakyBucket::new(quota);
    let twin = LeakyBucket::new(quota);
    let s = scale(burst, count, period);
    let mut t = start_time(start_sel, start_raw, s, model.span);
    for (i, &(peek, cost_sel, cost_raw, dt_sel, dt_raw)) in ops.iter().enumerate() {
        t = next_time(t, dt_sel, dt_raw, s, false);
        let c = cost(cost_sel, cost_raw, burst);
        let got = call(&bucket, peek, t, c);
        twin_call(&twin, peek, t, c, got)?;
        let want = model_call(&mut model, peek, t, c);
        prop_assert_eq!(got, want, "call {} (peek {}) at {} cost {}", i, peek, t, c);
        if let Ok(d) = got {
            check_shape(&d, burst)?;
            prop_assert_eq!(
                bucket.is_drained(t),
                model.is_drained(t),
                "is_drained at {}",
                t
            );
            check_times(&model, &d, t, c)?;
        }
    }
    same_state(&bucket, &twin, t)
}

fn run_backward(
    (burst, count, period): (u64, u64, u64),
    (start_sel, start_raw): (u8, u64),
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let Ok(quota) = Quota::with_min_span(burst, count, period, 0) else {
        return Ok(());
    };
    let mut model = Model::new(burst, count, period).expect("the engine accepted it");
    let bucket = LeakyBucket::new(quota);
    let twin = LeakyBucket::new(quota);
    let s = scale(burst, count, period);
    let mut t = start_time(start_sel, start_raw, s, model.span);
    // The latest `now` of any successful call (decide or peek) so far.
    let mut latest: Option<u64> = None;
    for (i, &(peek, cost_sel, cost_raw, dt_sel, dt_raw)) in ops.iter().enumerate() {
        t = next_time(t, dt_sel, dt_raw, s, true);
        let c = cost(cost_sel, cost_raw, burst);
        let got = call(&bucket, peek, t, c);
        twin_call(&twin, peek, t, c, got)?;
        let raised = latest.map_or(t, |l| l.max(t));
        let d = match got {
            Err(e) => {
                let want = if c == 0 {
                    Error::ZeroCost
                } else {
                    Error::ClockOutOfRange
                };
                prop_assert_eq!(e, want, "call {} at {} cost {}", i, t, c);
                prop_assert!(c == 0 || t > model.span);
                continue;
            }
            Ok(d) => d,
        };
        check_shape(&d, burst)?;
        if raised == t {
            // Not back in time: the model, fed the engine's admitted requests at their raised
            // times, is in the engine's state and answers identically.
            let want = model_call(&mut model, peek, t, c);
            prop_assert_eq!(
                Ok(d),
                want,
                "call {} (peek {}) at {} cost {}",
                i,
                peek,
                t,
                c
            );
        } else if d.outcome == Outcome::Allowed {
            // Back in time and admitted (or would be): the true timeline admits it too.
            let want = ok(model_call(&mut model, peek, raised, c))?;
            prop_assert_eq!(
                want.outcome,
                Outcome::Allowed,
                "call {} (peek {}) at {} raised to {}, cost {}: the engine admitted more than the timeline",
                i,
                peek,
                t,
                raised,
                c
            );
        }
        latest = Some(raised);
    }
    same_state(&bucket, &twin, t)
}

proptest! {
    #![proptest_config(config(1_536))]

    #[test]
    fn forward_decisions_equal_the_model(
        params in quota_params(),
        start in (0..10u8, any::<u64>()),
        ops in ops(200),
    ) {
        run_forward(params, start, &ops)?;
    }

    #[test]
    fn backward_steps_never_admit_more_than_the_timeline(
        params in quota_params(),
        start in (0..10u8, any::<u64>()),
        ops in ops(200),
    ) {
        run_backward(params, start, &ops)?;
    }
}

/// Quota parameters anywhere in 64 bits, biased to the edges.
fn raw_param() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        1..1_000u64,
        any::<u64>(),
        (0..64u32).prop_map(|k| 1u64 << k),
    ]
}

proptest! {
    #![proptest_config(config(4_096))]

    #[test]
    fn quota_construction_follows_the_spec(
        burst in raw_param(),
        count in raw_param(),
        period in raw_param(),
        min_span in prop_oneof![Just(0u64), Just(Quota::DEFAULT_MIN_SPAN), any::<u64>()],
    ) {
        let want = models::gcra_validate(burst, count, period).and_then(|span| {
            if span >= min_span { Ok(span) } else { Err(Error::SpanTooShort) }
        });
        let got = Quota::with_min_span(burst, count, period, min_span);
        prop_assert_eq!(got.map(|q| q.exact_span()), want);
        if let Ok(q) = got {
            prop_assert!(q.is_exact());
            prop_assert_eq!((q.burst(), q.count(), q.period()), (burst, count, period));
            let drain = (u128::from(burst) * u128::from(period)).div_ceil(u128::from(count));
            prop_assert_eq!(u128::from(q.drain_ticks()), drain);
        }
        let default = models::gcra_validate(burst, count, period).and_then(|span| {
            if span >= Quota::DEFAULT_MIN_SPAN { Ok(span) } else { Err(Error::SpanTooShort) }
        });
        prop_assert_eq!(Quota::new(burst, count, period).map(|q| q.exact_span()), default);
    }
}

/// Quotas whose exact span is short (large C'), and the span asked of the approximation.
fn approximate_params() -> impl Strategy<Value = ((u64, u64, u64), u64)> {
    (
        prop_oneof![
            (
                1..=100u64,
                (1u64 << 16..1 << 40).prop_map(|c| c | 1),
                1u64..1 << 44
            ),
            (1..=100u64, Just(999_983u64), Just(1_000_000_000u64)),
            (
                1..=1_000u64,
                (1u64 << 8..1 << 24).prop_map(|c| c | 1),
                1u64..1 << 30
            ),
        ],
        prop_oneof![(30u32..63).prop_map(|k| 1u64 << k), any::<u64>()],
    )
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn approximate_quotas_never_admit_more_than_the_exact_timeline(
        ((burst, count, period), min_span) in approximate_params(),
        start in (0..10u8, any::<u64>()),
        ops in ops(200),
        unit_only in any::<bool>(),
    ) {
        let Ok(quota) = Quota::approximate(burst, count, period, min_span) else {
            // Only an impossible span may be refused.
            prop_assert!(Quota::approximate(burst, count, period, 0).is_ok());
            return Ok(());
        };
        prop_assert!(quota.exact_span() >= min_span);
        let bucket = LeakyBucket::new(quota);
        let mut exact = Model::unbounded(burst, count, period);
        // Unit-cost requests through the exact model on their own: the greedy exact count.
        let mut greedy = Model::unbounded(burst, count, period);
        let (mut admitted_units, mut greedy_units) = (0u64, 0u64);
        let s = scale(burst, count, period);
        let mut t = start_time(start.0, start.1, s, quota.exact_span());
        for (i, &(peek, cost_sel, cost_raw, dt_sel, dt_raw)) in ops.iter().enumerate() {
            t = next_time(t, dt_sel, dt_raw, s, false);
            // Half the runs decide only unit costs, for the count comparison below.
            let (peek, c) = if unit_only {
                (false, 1)
            } else {
                (peek, cost(cost_sel, cost_raw, burst).max(1))
            };
            let Ok(d) = call(&bucket, peek, t, c) else {
                prop_assert!(t > quota.exact_span());
                continue;
            };
            check_shape(&d, burst)?;
            let want = ok(model_call(&mut exact, true, t, c))?;
            if d.outcome == Outcome::Allowed {
                prop_assert_eq!(want.outcome, Outcome::Allowed, "call {} at {} cost {}", i, t, c);
                if !peek {
                    let replay = ok(exact.decide(t, c))?;
                    prop_assert!(replay.is_allowed());
                }
            }
            if let (Outcome::Limited, Some(retry)) = (d.outcome, d.retry_after) {
                // The approximate promise is never earlier than the exact one.
                let later = t.saturating_add(retry);
                prop_assert!(ok(exact.clone().peek(later, c))?.outcome == Outcome::Allowed);
            }
            if unit_only {
                // Unit costs only: at every point, never more admitted than the exact limiter
                // given the same requests (greedy is optimal for unit costs).
                admitted_units += u64::from(d.outcome == Outcome::Allowed);
                greedy_units += u64::from(ok(greedy.decide(t, 1))?.outcome == Outcome::Allowed);
                prop_assert!(admitted_units <= greedy_units, "call {} at {}", i, t);
            }
        }
    }
}

// Named edge inputs of the leaky bucket.

const SECOND: u64 = 1_000_000_000;

#[test]
fn zero_cost_is_an_error_for_decide_and_peek_and_changes_nothing() {
    let b = LeakyBucket::new(Quota::new(2, 1, SECOND).unwrap());
    assert_eq!(b.decide(0, 0), Err(Error::ZeroCost));
    assert_eq!(b.peek(5, 0), Err(Error::ZeroCost));
    assert!(b.is_drained(0));
    assert!(b.decide(0, 2).unwrap().is_allowed());
}

#[test]
fn cost_above_burst_is_never_with_no_retry_time_and_spends_nothing() {
    let b = LeakyBucket::new(Quota::new(3, 1, SECOND).unwrap());
    assert!(b.decide(0, 1).unwrap().is_allowed());
    for d in [b.decide(0, 4).unwrap(), b.peek(0, u64::MAX).unwrap()] {
        assert_eq!(d.outcome, Outcome::Never);
        assert_eq!(d.retry_after, None);
        assert_eq!((d.used, d.remaining, d.reset_after), (1, 2, SECOND));
        assert_eq!(d.outcome.http_status(), Some(429));
        assert!(!d.outcome.is_retryable());
    }
    assert!(b.decide(0, 2).unwrap().is_allowed());
}

#[test]
fn now_zero_is_an_ordinary_time() {
    let b = LeakyBucket::new(Quota::new(1, 1, 1).unwrap());
    let d = b.decide(0, 1).unwrap();
    assert_eq!((d.used, d.reset_after), (1, 1));
    let d = b.decide(0, 1).unwrap();
    assert_eq!((d.outcome, d.retry_after), (Outcome::Limited, Some(1)));
    assert!(b.decide(1, 1).unwrap().is_allowed());
}

#[test]
fn just_past_the_span_and_near_u64_max_are_clock_errors_that_change_nothing() {
    for (burst, count, period) in [(30, 2, SECOND), (1, 1, 1), (5, 3, SECOND), (u64::MAX, 1, 1)] {
        let q = Quota::with_min_span(burst, count, period, 0).unwrap();
        assert_eq!(
            Some(q.exact_span()),
            models::gcra_span(burst, count, period)
        );
        let b = LeakyBucket::new(q);
        let near_max = (u64::MAX - 1).max(q.exact_span() + 1);
        for now in [q.exact_span() + 1, near_max, u64::MAX] {
            assert_eq!(b.decide(now, 1), Err(Error::ClockOutOfRange));
            assert_eq!(b.peek(now, 1), Err(Error::ClockOutOfRange));
            assert_eq!(b.peek(now, 0), Err(Error::ZeroCost));
        }
        // At the span itself everything still works, exactly as the model says.
        let mut m = Model::new(burst, count, period).unwrap();
        let at = q.exact_span();
        for cost in [1, burst, 1, burst] {
            assert_eq!(b.decide(at, cost), m.decide(at, cost));
        }
        assert_eq!(b.peek(at, 1), m.peek(at, 1));
    }
}

#[test]
fn a_full_bucket_of_u64_max_tolerance_reports_without_overflow() {
    // B·P' = 2⁶⁴ − 1: the largest tolerance; span 0 (only now = 0 is representable).
    let q = Quota::with_min_span(u64::MAX, 1, 1, 0).unwrap();
    assert_eq!(q.exact_span(), 0);
    let b = LeakyBucket::new(q);
    let d = b.decide(0, u64::MAX).unwrap();
    assert!(d.is_allowed());
    assert_eq!(
        (d.used, d.remaining, d.reset_after),
        (u64::MAX, 0, u64::MAX)
    );
    let d = b.decide(0, u64::MAX).unwrap();
    assert_eq!(
        (d.outcome, d.retry_after),
        (Outcome::Limited, Some(u64::MAX))
    );
    assert_eq!(b.decide(1, 1), Err(Error::ClockOutOfRange));
}

#[test]
fn a_clock_stepping_back_is_judged_at_the_latest_time() {
    // B = 2, 1 per second. Two at t = 10 s fill the bucket; at t = 0 (back 10 s) nothing more
    // passes, though a fresh bucket at 0 would have been empty.
    let b = LeakyBucket::new(Quota::new(2, 1, SECOND).unwrap());
    assert!(b.decide(10 * SECOND, 2).unwrap().is_allowed());
    let d = b.decide(0, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Limited);
    // A peek at a later time, then a call between: judged no more leniently than the peek's time.
    assert!(b.peek(12 * SECOND, 2).unwrap().is_allowed());
    assert!(!b.decide(11 * SECOND, 2).unwrap().is_allowed());
    assert!(b.decide(12 * SECOND, 2).unwrap().is_allowed());
}

/// D for an approximate quota, as documented: the largest power of two with `min_span`·D < 2⁶⁴
/// (the tolerance fits for the quotas used here, so D is not halved further).
fn approximate_unit(min_span: u64) -> u64 {
    let max = u64::MAX / min_span;
    1 << max.ilog2()
}

proptest! {
    #![proptest_config(config(64))]

    /// The approximation rounds the emission interval up to whole units of 1/D tick: paced one
    /// by one, the k-th request after a full burst passes no sooner than exactly (⌈k·P/C⌉) and
    /// no later than with one unit more per request (⌈k·(P/C + 1/D)⌉). (B ≥ 2 and P ≥ C keep
    /// the level above 0 between whole ticks, so no fraction of a tick is lost to an empty
    /// bucket.)
    #[test]
    fn approximate_quotas_lose_at_most_one_unit_per_request(
        (burst, count, period) in prop_oneof![
            (2..=100u64, Just(999_983u64), Just(1_000_000_000u64)),
            (2..=100u64, (1u64 << 20..1 << 40), 0..1u64 << 43)
                .prop_map(|(b, c, extra)| (b, c | 1, (c | 1) + extra)),
        ],
        min_span in (40u32..62).prop_map(|k| 1u64 << k),
        requests in 1..2_000u64,
    ) {
        let quota = Quota::approximate(burst, count, period, min_span).unwrap();
        prop_assume!(!quota.is_exact());
        let d = approximate_unit(min_span);
        let (p, c, du) = (u128::from(period), u128::from(count), u128::from(d));
        let interval = (p * du).div_ceil(c);
        let span = (u128::from(u64::MAX) - u128::from(burst) * interval) / du;
        prop_assert_eq!(u128::from(quota.exact_span()), span, "D = {}", d);
        let bucket = LeakyBucket::new(quota);
        prop_assert!(bucket.decide(0, burst).unwrap().is_allowed());
        let mut t = 0u64;
        for k in 1..=u128::from(requests) {
            let d = bucket.decide(t, 1).unwrap();
            prop_assert_eq!(d.outcome, Outcome::Limited);
            t += d.retry_after.unwrap();
            prop_assert!(bucket.decide(t, 1).unwrap().is_allowed());
            let exact = (k * p).div_ceil(c);
            let one_unit_more = (k * (p * du + c)).div_ceil(c * du);
            prop_assert!((exact..=one_unit_more).contains(&u128::from(t)), "request {} at {}", k, t);
        }
    }
}
