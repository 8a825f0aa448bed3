//! `FixedWindow` against the reference model of docs/semantics.md#time, docs/semantics.md#quotas and docs/semantics.md#fixed-window.
//!
//! docs/semantics.md#fixed-window fixes what an earlier `now` means (it is judged in the stored window, with times
//! measured to that window's end), so the model predicts every decision and every number exactly,
//! forward or back. On top of that, the docs/semantics.md#backwards-clocks replay property is checked as written.

use tollgate_models as models;
use tollgate_models::Model as _;

use models::FixedWindow as Model;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tollgate::{Decision, Error, FixedWindow, Outcome, WindowQuota};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_fixed_window.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// (limit, window, offset): small, vendor-like, count-bit boundaries, the largest limit, huge
/// windows, with offsets.
fn quota_params() -> impl Strategy<Value = (u64, u64, u64)> {
    let limit = prop_oneof![
        3 => 1..=10u64,
        1 => Just(50u64),
        1 => 1..=1_000u64,
        1 => (0..32u32).prop_map(|k| 1u64 << k),
        1 => (1..32u32).prop_map(|k| (1u64 << k) - 1),
        1 => Just(u64::from(u32::MAX)),
    ];
    let window = prop_oneof![
        2 => 1..=10u64,
        3 => 1..=2_000u64,
        1 => Just(1_000_000_000u64),
        1 => 1u64..1 << 40,
        1 => (u64::MAX - 1_000)..=u64::MAX,
    ];
    (limit, window, any::<u64>(), 0..4u8).prop_map(|(limit, window, raw, sel)| {
        let offset = if sel == 0 { 0 } else { raw % window };
        (limit, window, offset)
    })
}

fn cost(sel: u8, raw: u64, limit: u64) -> u64 {
    match sel {
        0..=2 => 0,
        3..=5 => limit + 1 + raw % 3,
        6..=54 => 1,
        55..=84 => 1 + raw % limit.min(4),
        _ => 1 + raw % limit,
    }
}

/// The next `now`: stalls, moves within a window, lands on or just before a window edge, jumps
/// windows, and with `backward`, steps back up to two windows.
fn next_time(t: u64, sel: u8, raw: u64, q: &Model, backward: bool) -> u64 {
    let w = q.window;
    let modulo = |m: u64| raw % m.saturating_add(1);
    // The next window edge after t.
    let edge = || {
        let next = q.window_of(t) + 1;
        let at = i128::from(q.offset) + next * i128::from(w);
        u64::try_from(at).unwrap_or(u64::MAX)
    };
    match sel {
        0..=14 => t,
        15..=49 => t.saturating_add(modulo(w / 3)),
        50..=59 => edge(),
        60..=64 => edge().saturating_sub(1),
        65..=79 => t.saturating_add(modulo(w)),
        80..=87 => t.saturating_add(modulo(w.saturating_mul(3))),
        _ if backward => t.saturating_sub(modulo(w.saturating_mul(2))),
        _ => t.saturating_add(modulo(w / 2)),
    }
}

fn start_time(sel: u8, raw: u64, q: &Model) -> u64 {
    match sel {
        0..=3 => 0,
        4..=5 => q.offset,
        6 => raw % q.window.saturating_mul(4),
        7 => raw,
        _ => q
            .span
            .saturating_sub(raw % q.window.saturating_mul(3).saturating_add(1)),
    }
}

use models::{ops, Op};

fn call(w: &FixedWindow, peek: bool, now: u64, cost: u64) -> Result<Decision, Error> {
    if peek {
        w.peek(now, cost)
    } else {
        w.decide(now, cost)
    }
}

fn model_call(m: &mut Model, peek: bool, now: u64, cost: u64) -> Result<Decision, Error> {
    if peek {
        m.peek(now, cost)
    } else {
        m.decide(now, cost)
    }
}

fn check_shape(d: &Decision, limit: u64) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.outcome, d.verdict);
    prop_assert_eq!(d.limit, limit);
    prop_assert!(d.used <= limit);
    prop_assert_eq!(d.remaining, limit - d.used);
    prop_assert!(d.reset_after >= 1, "a window always has a tick left");
    match d.outcome {
        Outcome::Allowed => prop_assert_eq!(d.retry_after, Some(0)),
        Outcome::Limited => prop_assert_eq!(d.retry_after, Some(d.reset_after)),
        Outcome::Never => prop_assert_eq!(d.retry_after, None),
        Outcome::Overloaded => prop_assert!(false, "a window never answers Overloaded"),
    }
    Ok(())
}

/// The definitions of the reported times (docs/semantics.md#reported-numbers), on the model after a decision at `t`:
/// `retry_after` is the least wait after which the same request passes, `reset_after` the least
/// wait until nothing counts (both: the end of the window the call was judged in).
fn check_times(model: &Model, d: &Decision, t: u64, cost: u64) -> Result<(), TestCaseError> {
    let within = |dt: u64| {
        t.checked_add(dt)
            .filter(|&at| dt < u64::MAX && at <= model.span)
    };
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
        prop_assert!(model.is_drained(at));
        prop_assert_eq!(model.is_drained(at - 1), d.used == 0);
    }
    Ok(())
}

fn run(
    (limit, window, offset): (u64, u64, u64),
    (start_sel, start_raw): (u8, u64),
    ops: &[Op],
    backward: bool,
) -> Result<(), TestCaseError> {
    let quota = WindowQuota::new(limit, window).and_then(|q| q.with_offset(offset));
    let model = Model::new(limit, window, offset);
    prop_assert_eq!(
        quota.map(|_| ()),
        model.as_ref().map(|_| ()).map_err(|e| *e)
    );
    let (Ok(quota), Ok(mut model)) = (quota, model) else {
        return Ok(());
    };
    let engine = FixedWindow::new(quota);
    // Driven by `check` instead of `decide`: the same outcomes, the same state.
    let twin = FixedWindow::new(quota);
    prop_assert_eq!(engine.span(), model.span);
    // The docs/semantics.md#backwards-clocks replay: only the admitted requests, at their times raised to the latest seen.
    let mut replay = model.clone();
    let mut latest: Option<u64> = None;
    let mut t = start_time(start_sel, start_raw, &model);
    for (i, &(peek, cost_sel, cost_raw, dt_sel, dt_raw)) in ops.iter().enumerate() {
        t = next_time(t, dt_sel, dt_raw, &model, backward);
        let c = cost(cost_sel, cost_raw, limit);
        let got = call(&engine, peek, t, c);
        if peek {
            prop_assert_eq!(twin.peek(t, c), got);
        } else {
            prop_assert_eq!(twin.check(t, c), got.map(|d| d.outcome));
        }
        let want = model_call(&mut model, peek, t, c);
        prop_assert_eq!(got, want, "call {} (peek {}) at {} cost {}", i, peek, t, c);
        let Ok(d) = got else { continue };
        check_shape(&d, limit)?;
        let raised = latest.map_or(t, |l| l.max(t));
        latest = Some(raised);
        if d.outcome == Outcome::Allowed && !peek {
            let r = replay.decide(raised, c);
            prop_assert!(
                r.is_ok_and(|r| r.is_allowed()),
                "replay of call {} at {}",
                i,
                raised
            );
        }
        if raised == t {
            prop_assert_eq!(engine.is_drained(t), model.is_drained(t));
        }
        check_times(&model, &d, t, c)?;
    }
    prop_assert_eq!(engine.is_drained(t), twin.is_drained(t));
    prop_assert_eq!(engine.peek(t, 1), twin.peek(t, 1));
    Ok(())
}

proptest! {
    #![proptest_config(config(1_536))]

    #[test]
    fn forward_decisions_equal_the_model(
        params in quota_params(),
        start in (0..10u8, any::<u64>()),
        ops in ops(200),
    ) {
        run(params, start, &ops, false)?;
    }

    #[test]
    fn backward_steps_equal_the_model_and_never_admit_more_than_the_timeline(
        params in quota_params(),
        start in (0..10u8, any::<u64>()),
        ops in ops(200),
    ) {
        run(params, start, &ops, true)?;
    }
}

proptest! {
    #![proptest_config(config(4_096))]

    #[test]
    fn window_quota_construction_follows_the_spec(
        limit in prop_oneof![Just(0u64), 1..100u64, Just(u64::from(u32::MAX)), Just(1u64 << 32), any::<u64>()],
        window in prop_oneof![Just(0u64), Just(1u64), 1..100u64, Just(u64::MAX), any::<u64>()],
        offset in prop_oneof![Just(0u64), 0..100u64, any::<u64>()],
    ) {
        let got = WindowQuota::new(limit, window).and_then(|q| q.with_offset(offset));
        prop_assert_eq!(got.map(|_| ()), models::window_validate(limit, window, offset));
        if let Ok(q) = got {
            prop_assert_eq!((q.limit(), q.window(), q.offset()), (limit, window, offset));
            let engine = FixedWindow::new(q);
            prop_assert_eq!(engine.span(), models::fixed_window_span(limit, window, offset));
        }
    }
}

// Named edge inputs of the fixed window.

#[test]
fn the_largest_limit_on_a_one_tick_window_ends_its_span_with_a_clock_error() {
    let q = WindowQuota::new(u64::from(u32::MAX), 1).unwrap();
    let w = FixedWindow::new(q);
    assert_eq!(w.span(), (1 << 32) - 2);
    let d = w.decide(w.span(), u64::from(u32::MAX)).unwrap();
    assert_eq!(
        (d.outcome, d.used, d.remaining),
        (Outcome::Allowed, u64::from(u32::MAX), 0)
    );
    assert_eq!(w.decide(w.span(), 1).unwrap().retry_after, Some(1));
    for now in [w.span() + 1, u64::MAX] {
        assert_eq!(w.decide(now, 1), Err(Error::ClockOutOfRange));
        assert_eq!(w.peek(now, 1), Err(Error::ClockOutOfRange));
    }
    // Nothing changed: the window at the span is still full.
    assert_eq!(w.peek(w.span(), 1).unwrap().outcome, Outcome::Limited);
}

#[test]
fn now_at_u64_max_works_when_the_span_is_the_whole_clock() {
    let w = FixedWindow::new(WindowQuota::new(3, u64::MAX).unwrap());
    assert_eq!(w.span(), u64::MAX);
    let d = w.decide(u64::MAX, 3).unwrap();
    // Window [u64::MAX, 2·u64::MAX): the whole window is left.
    assert_eq!((d.outcome, d.reset_after), (Outcome::Allowed, u64::MAX));
    let d = w.decide(0, 1).unwrap();
    assert_eq!(
        (d.outcome, d.retry_after),
        (Outcome::Limited, Some(u64::MAX))
    );
}

#[test]
fn zero_cost_and_cost_above_the_limit() {
    let w = FixedWindow::new(WindowQuota::new(2, 10).unwrap());
    assert_eq!(w.decide(0, 0), Err(Error::ZeroCost));
    assert_eq!(w.peek(0, 0), Err(Error::ZeroCost));
    let d = w.decide(3, 3).unwrap();
    assert_eq!(
        (d.outcome, d.retry_after, d.used, d.reset_after),
        (Outcome::Never, None, 0, 7)
    );
    assert!(w.decide(3, 2).unwrap().is_allowed());
}

#[test]
fn a_window_edge_is_exact_with_an_offset() {
    // Windows [7, 17), [17, 27), ...; [0, 7) is the partial first window.
    let w = FixedWindow::new(WindowQuota::new(1, 10).unwrap().with_offset(7).unwrap());
    assert!(w.decide(0, 1).unwrap().is_allowed());
    assert_eq!(w.decide(6, 1).unwrap().retry_after, Some(1));
    assert!(w.decide(7, 1).unwrap().is_allowed());
    assert_eq!(w.decide(16, 1).unwrap().retry_after, Some(1));
    assert!(w.decide(17, 1).unwrap().is_allowed());
}

#[test]
fn up_to_twice_the_limit_across_an_edge_is_the_documented_outcome() {
    let w = FixedWindow::new(WindowQuota::new(5, 100).unwrap());
    assert!(w.decide(99, 5).unwrap().is_allowed());
    assert!(w.decide(100, 5).unwrap().is_allowed());
    assert!(!w.decide(101, 1).unwrap().is_allowed());
}

// Quota changes (docs/semantics.md#quota-changes).

/// Quota parameters for a change: those of [`quota_params`], or small windows near each other.
fn change_params() -> impl Strategy<Value = (u64, u64, u64)> {
    prop_oneof![
        1 => quota_params(),
        1 => (1..=6u64, 1..=40u64, any::<u64>(), 0..3u8).prop_map(|(limit, window, raw, sel)| {
            (limit, window, if sel == 0 { 0 } else { raw % window })
        }),
    ]
}

/// The end of window `index`, o + index·W, in 128 bits: the state's moment.
fn end_of(q: &WindowQuota, index: u64) -> u128 {
    u128::from(q.offset()) + u128::from(index) * u128::from(q.window())
}

/// An engine or model error where the property expects none, as a test failure (without the
/// `std` feature `tollgate::Error` is no `std::error::Error`, so `?` cannot convert it).
#[allow(clippy::needless_pass_by_value)] // the shape `map_err` takes
fn failed(e: tollgate::Error) -> TestCaseError {
    TestCaseError::fail(format!("unexpected error: {e:?}"))
}

/// A state (index, count) left by one request at `t0`, then a quota change at `now`: the
/// engine's `set_quota` and `window::convert` match the model's rule, and the end of the stored
/// window never moves earlier (the property a key table's lock-free protocol needs).
fn change(
    (limit, window, offset): (u64, u64, u64),
    next: (u64, u64, u64),
    (t0_sel, t0_raw): (u8, u64),
    count_raw: u64,
    (now_sel, now_raw): (u8, u64),
) -> Result<(), TestCaseError> {
    use tollgate::state::window::{self as state, State};
    let (Ok(old), Ok(mut model)) = (
        WindowQuota::new(limit, window).and_then(|q| q.with_offset(offset)),
        Model::new(limit, window, offset),
    ) else {
        return Ok(());
    };
    let (Ok(new), Ok(next_model)) = (
        WindowQuota::new(next.0, next.1).and_then(|q| q.with_offset(next.2)),
        Model::new(next.0, next.1, next.2),
    ) else {
        return Ok(());
    };
    let t0 = start_time(t0_sel, t0_raw, &model);
    let Ok(index) = state::index_of(&old, t0) else {
        return Ok(());
    };
    // A count of zero a third of the time: left by a peek.
    let count = if count_raw.is_multiple_of(3) {
        0
    } else {
        1 + count_raw % limit
    };
    let mut engine = FixedWindow::new(old);
    if count == 0 {
        prop_assert!(engine.peek(t0, 1).map_err(failed)?.is_allowed());
        prop_assert!(model.peek(t0, 1).map_err(failed)?.is_allowed());
    } else {
        prop_assert!(engine.decide(t0, count).map_err(failed)?.is_allowed());
        prop_assert!(model.decide(t0, count).map_err(failed)?.is_allowed());
    }
    let stored = State { index, count };
    // `now`: the same tick, later or earlier in the stored window, at or just before its end,
    // windows later, windows earlier, anywhere.
    let end = u64::try_from(end_of(&old, index)).unwrap_or(u64::MAX);
    let w = old.window();
    let now = match now_sel {
        0..=1 => t0,
        2..=4 => t0.saturating_add(now_raw % (end - t0).max(1)),
        5..=6 => t0.saturating_sub(now_raw % w.saturating_add(1)),
        7 => end,
        8 => end.saturating_sub(1),
        9 => t0.saturating_add(now_raw % w.saturating_mul(3).saturating_add(1)),
        10 => t0.saturating_sub(now_raw % w.saturating_mul(3).saturating_add(1)),
        _ => now_raw,
    };

    let converted = state::convert(stored, &old, &new, now);
    let set = engine.set_quota(new, now);
    let modelled = model.set_quota(&next_model, now);
    prop_assert_eq!(set, modelled, "set_quota at {} from {:?}", now, stored);
    prop_assert_eq!(converted.map(|_| ()), set);
    let Ok(converted) = converted else {
        return Ok(());
    };

    // The moment never moves earlier. (A stored window ending past the last 64-bit tick is
    // placed in the window holding u64::MAX, which ends past every clock too.)
    let (m_old, m_new) = (end_of(&old, index), end_of(&new, converted.index));
    if m_old <= 1 << 64 {
        prop_assert!(
            m_new >= m_old,
            "{:?} → {:?}: moment {} → {}",
            stored,
            converted,
            m_old,
            m_new
        );
    } else {
        prop_assert!(m_new > u128::from(u64::MAX));
    }
    // Over: a new state in now's window; otherwise the count, capped, in a window at least now's.
    let now_new = state::index_of(&new, now).map_err(failed)?;
    if state::index_of(&old, now).map_err(failed)? > index {
        prop_assert_eq!(
            converted,
            State {
                index: now_new,
                count: 0
            }
        );
    } else {
        prop_assert_eq!(converted.count, count.min(new.limit()));
        prop_assert!(converted.index >= now_new);
    }

    // The converted state decides as the engine and the model do after the change.
    let probe = state::step(converted, &new, now, 1, tollgate::state::Mode::Peek).map(|(_, d)| d);
    prop_assert_eq!(probe, engine.peek(now, 1));
    prop_assert_eq!(probe, model.peek(now, 1));
    let last = u64::try_from(m_new - 1).unwrap_or(u64::MAX);
    if last >= now {
        prop_assert_eq!(engine.peek(last, 1), model.peek(last, 1));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(4_096))]

    #[test]
    fn a_quota_change_never_moves_the_windows_end_earlier_and_equals_the_model(
        old in change_params(),
        new in change_params(),
        t0 in (0..10u8, any::<u64>()),
        count in any::<u64>(),
        now in (0..12u8, any::<u64>()),
    ) {
        change(old, new, t0, count, now)?;
    }
}

#[test]
fn a_quota_change_keeps_a_count_of_zero_in_a_window_not_over() {
    use tollgate::state::window::{self, State};
    // Windows [100, 200) under the old quota; 30-tick windows under the new one.
    let old = WindowQuota::new(5, 100).unwrap();
    let new = WindowQuota::new(5, 30).unwrap();
    let zero = State { index: 2, count: 0 };
    // At 120 nothing is counted, but the window is not over: the state goes to [180, 210),
    // which holds 199, as a count would; before this rule it became [120, 150) (index 5).
    let s = window::convert(zero, &old, &new, 120).unwrap();
    assert_eq!(s, State { index: 7, count: 0 });
    assert_eq!(
        s,
        window::convert(State { count: 3, ..zero }, &old, &new, 120)
            .map(|s| State { count: 0, ..s })
            .unwrap()
    );
    // At 200 it is over: a new state in now's window [180, 210).
    assert_eq!(
        window::convert(zero, &old, &new, 200),
        Ok(State { index: 7, count: 0 })
    );
    let mut m = Model::new(5, 100, 0).unwrap();
    assert!(m.peek(120, 1).unwrap().is_allowed());
    m.set_quota(&Model::new(5, 30, 0).unwrap(), 120).unwrap();
    assert_eq!(m.peek(120, 1).unwrap().reset_after, 90);
}
