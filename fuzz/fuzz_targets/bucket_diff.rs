//! Differential: arbitrary operation sequences on a `LeakyBucket` against the reference model.
//!
//! - Exact quotas: every decision (outcome, used, remaining, retry_after, reset_after), every
//!   error, `is_drained`, the exact span and the drain time must equal the model's.
//! - Any quota, exact or approximate: replaying only the admitted requests, each at its time
//!   raised to the latest time seen before it, through the exact model must admit every one
//!   (docs/semantics.md#exact-span, time going backwards; docs/semantics.md#quotas, an approximation never over-admits), with each quota
//!   change made at the latest time seen, by level (docs/semantics.md#quota-changes).
//!
//! This target found two bugs in `set_quota`, fixed in the engine with the regression tests in
//! `core/tests/fuzz_regressions.rs`: a change at an earlier `now` over-admitted when the new
//! rate was faster, and a level too large for an intermediate quota was capped and then lost.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tollgate::state::Mode;
use tollgate::{Error, LeakyBucket, Outcome, Quota};
use tollgate_fuzz::check_invariants;
use tollgate_fuzz::gen::{Param, SmallParam, Tick};
use tollgate_models::{gcra_span, Conversion, Gcra as BucketModel, Model as _};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    /// `Quota::new`: the default least span.
    New,
    /// `Quota::with_min_span(.., 0)`: any quota that fits.
    AnySpan,
    /// `Quota::approximate` with this least span.
    Approximate(Param),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct QuotaSpec {
    burst: SmallParam,
    count: Param,
    period: Param,
    kind: Kind,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Decide(Tick, SmallParam),
    Peek(Tick, SmallParam),
    IsDrained(Tick),
    Reset,
    SetQuota(Tick, QuotaSpec),
}

#[derive(Arbitrary, Debug)]
struct Input {
    quota: QuotaSpec,
    ops: Vec<Op>,
}

/// Builds the quota, checking a refusal against the rules of docs/semantics.md#quotas; `None` if refused.
fn build(spec: QuotaSpec) -> Option<(Quota, u64, u64, u64)> {
    let (b, c, p) = (spec.burst.get(), spec.count.get(), spec.period.get());
    let result = match spec.kind {
        Kind::New => Quota::new(b, c, p),
        Kind::AnySpan => Quota::with_min_span(b, c, p, 0),
        Kind::Approximate(min) => Quota::approximate(b, c, p, min.get()),
    };
    let expected_zero = match (b, c, p) {
        (0, _, _) => Some(Error::ZeroBurst),
        (_, 0, _) => Some(Error::ZeroCount),
        (_, _, 0) => Some(Error::ZeroPeriod),
        _ => None,
    };
    if let Some(e) = expected_zero {
        assert_eq!(result, Err(e), "{spec:?}");
        return None;
    }
    let min_span = match spec.kind {
        Kind::New => Quota::DEFAULT_MIN_SPAN,
        Kind::AnySpan => 0,
        Kind::Approximate(min) => min.get(),
    };
    match (result, gcra_span(b, c, p)) {
        (Ok(q), Some(span)) if q.is_exact() => {
            assert!(
                span >= min_span,
                "{spec:?}: exact span {span} below {min_span}"
            );
            assert_eq!(q.exact_span(), span, "{spec:?}");
            let drain = BucketModel::unbounded(b, c, p).drain_ticks();
            assert_eq!(u128::from(q.drain_ticks()), drain, "{spec:?}");
        }
        (Ok(q), exact) => {
            assert!(
                matches!(spec.kind, Kind::Approximate(_)),
                "{spec:?}: inexact {q:?}"
            );
            assert!(
                exact.map_or(true, |s| s < min_span),
                "{spec:?}: exact would do"
            );
            assert!(q.exact_span() >= min_span, "{spec:?}: {q:?}");
        }
        (Err(Error::QuotaOverflow), None) => return None,
        (Err(Error::QuotaOverflow), Some(_)) => {
            // Only an approximation can overflow where the exact quota fits: its emission
            // interval is rounded up to a finer unit.
            assert!(matches!(spec.kind, Kind::Approximate(_)), "{spec:?}");
            return None;
        }
        (Err(Error::SpanTooShort), exact) => {
            if let Some(span) = exact {
                assert!(span < min_span, "{spec:?}: span {span} is enough");
            }
            return None;
        }
        (Err(e), exact) => panic!("{spec:?}: unexpected {e:?} (exact span {exact:?})"),
    }
    Some((result.unwrap(), b, c, p))
}

fuzz_target!(|input: Input| {
    let Some((quota, b, c, p)) = build(input.quota) else {
        return;
    };
    let mut bucket = LeakyBucket::new(quota);
    let fresh_model = |q: &Quota| {
        q.is_exact().then(|| {
            BucketModel::new(q.burst(), q.count(), q.period()).expect("an exact quota is valid")
        })
    };
    // The exact model of the engine (exact quotas only).
    let mut model = fresh_model(&quota);
    // The replay model: admitted requests only, at raised times, under the exact rate.
    let mut replay = BucketModel::unbounded(b, c, p);
    let mut latest_seen = 0u64;
    let mut now = 0u64;
    for op in input.ops.iter().take(256) {
        let span = bucket.quota().exact_span();
        match *op {
            Op::Decide(tick, cost) | Op::Peek(tick, cost) => {
                now = tick.apply(now);
                let cost = cost.get();
                let mode = if matches!(op, Op::Decide(..)) {
                    Mode::Decide
                } else {
                    Mode::Peek
                };
                let got = match mode {
                    Mode::Decide => bucket.decide(now, cost),
                    Mode::Peek => bucket.peek(now, cost),
                };
                let got = got.inspect(check_invariants);
                if let Some(m) = model.as_mut() {
                    assert_eq!(m.span, span, "the model's span on {m:?}");
                    let want = m.judge(now, cost, mode);
                    assert_eq!(got, want, "{op:?} at {now} on {m:?}");
                }
                match got {
                    Ok(r) => {
                        assert_eq!(r.limit, bucket.quota().burst());
                        let raised = now.max(latest_seen);
                        if mode == Mode::Decide && r.outcome == Outcome::Allowed {
                            let again = replay.decide(raised, cost).unwrap();
                            assert_eq!(
                                again.outcome,
                                Outcome::Allowed,
                                "over-admission: {op:?} at {now} (raised {raised}) on {replay:?}"
                            );
                        }
                        latest_seen = raised;
                    }
                    Err(Error::ZeroCost) => assert_eq!(cost, 0),
                    Err(Error::ClockOutOfRange) => assert!(now > span),
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            Op::IsDrained(tick) => {
                now = tick.apply(now);
                let got = bucket.is_drained(now);
                if let Some(m) = model.as_ref() {
                    assert_eq!(got, m.is_drained(now), "is_drained at {now} on {m:?}");
                }
            }
            Op::Reset => {
                bucket.reset();
                model = fresh_model(bucket.quota());
                replay.reset();
                latest_seen = 0;
            }
            Op::SetQuota(tick, spec) => {
                now = tick.apply(now);
                let Some((next, b2, c2, p2)) = build(spec) else {
                    continue;
                };
                let old_span = bucket.quota().exact_span();
                let result = bucket.set_quota(next, now);
                if now > old_span || now > next.exact_span() {
                    assert_eq!(result, Err(Error::ClockOutOfRange));
                    continue;
                }
                match model.as_mut() {
                    Some(m) if next.is_exact() => {
                        let before = m.clone();
                        let exact = BucketModel::new(b2, c2, p2).expect("an exact quota is valid");
                        let want = m.set_quota(&exact, now, Conversion::Engine);
                        assert_eq!(result, want, "set_quota at {now} on {before:?}");
                    }
                    _ => {
                        // An approximate quota on either side: its units decide what fits.
                        assert!(matches!(result, Ok(()) | Err(Error::ClockOutOfRange)));
                        if result.is_ok() {
                            model = None;
                        }
                    }
                }
                if result.is_err() {
                    continue; // nothing changed
                }
                // The true timeline: the change made at the latest time seen, by level.
                let raised = now.max(latest_seen);
                replay
                    .set_quota(
                        &BucketModel::unbounded(b2, c2, p2),
                        raised,
                        Conversion::ByLevel,
                    )
                    .expect("by level always converts");
                latest_seen = raised;
            }
        }
    }
});
