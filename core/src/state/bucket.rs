//! The leaky bucket's (GCRA) state word and its arithmetic (docs/semantics.md#leaky-bucket).
//!
//! # State
//!
//! One 64-bit word S per bucket, in units of 1/D tick ([`Units`]; [`Quota`](crate::Quota) explains the
//! units). S is the larger of the theoretical arrival time (the moment the bucket will be
//! empty) and the latest `now` the bucket has been asked about; 0 is an empty bucket. The level
//! at time t is `L(t) = max(0, S − t·D) / I` requests, where I is the emission interval in
//! units. A request of cost c is admitted iff `max(S, t·D) + c·I ≤ t·D + B·I`, i.e.
//! `L(t) + c ≤ B`.
//!
//! # Time going backwards
//!
//! Keeping the latest `now` in S makes a request at an earlier `now` see the bucket as it was at
//! the latest time, plus the gap: it can only be judged more strictly, never more leniently, than
//! the true timeline would. Peeks and `Never` answers record a later `now` when the bucket has
//! drained (which changes no level), so every decision leaves its time in the state.

use super::Mode;
use crate::{Decision, Error, Outcome};

/// The numbers a leaky bucket's arithmetic runs on: the burst B, the units per tick D, the
/// units per request I (the emission interval), and what follows from them, the tolerance B·I
/// and the span. Two quotas with equal `Units` decide identically on the same state word.
///
/// For an exact quota of C requests per P ticks, D = C / gcd(C, P) and I = P / gcd(C, P); for
/// an [approximate](crate::Quota::approximate) one, D is a power of two and I = ⌈P·D / C⌉. Take them
/// from a quota with [`Quota::units`](crate::Quota::units); [`Units::new`] rebuilds them from B, D and I alone (for
/// example from a fingerprint a backend stored next to a state word).
///
/// ```
/// use tollgate::Quota;
/// let units = *Quota::new(10, 3, 1_000_000_000)?.units(); // 3 per second on nanoseconds
/// assert_eq!((units.burst(), units.unit(), units.interval()), (10, 3, 1_000_000_000));
/// assert_eq!(units.tolerance(), 10_000_000_000);
/// assert_eq!(tollgate::state::bucket::Units::new(10, 3, 1_000_000_000), Ok(units));
/// # Ok::<(), tollgate::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Units {
    burst: u64,
    /// Units per tick (C' when exact).
    unit: u64,
    /// Units per request: the emission interval (P' when exact).
    interval: u64,
    /// burst × interval: the bucket's capacity in units.
    tolerance: u64,
    /// Largest `now` in ticks the arithmetic accepts.
    span: u64,
}

impl Units {
    /// The units of a bucket of `burst` requests, counting time in units of 1/`unit` tick,
    /// where one request takes `interval` units to drain. Its span is the largest it can be,
    /// ⌊(2⁶⁴ − 1 − B·I) / D⌋ ticks.
    ///
    /// Errors: [`Error::ZeroBurst`] for a zero burst, [`Error::InvalidArgument`] for a zero
    /// unit or interval, [`Error::QuotaOverflow`] when B·I exceeds 64 bits.
    pub const fn new(burst: u64, unit: u64, interval: u64) -> Result<Units, Error> {
        if burst == 0 {
            return Err(Error::ZeroBurst);
        }
        if unit == 0 || interval == 0 {
            return Err(Error::InvalidArgument);
        }
        Units::build(burst, unit, interval)
    }

    /// [`Units::new`] for arguments known to be non-zero (the quota constructors').
    pub(crate) const fn build(burst: u64, unit: u64, interval: u64) -> Result<Units, Error> {
        let Some(tolerance) = burst.checked_mul(interval) else {
            return Err(Error::QuotaOverflow);
        };
        Ok(Units {
            burst,
            unit,
            interval,
            tolerance,
            span: (u64::MAX - tolerance) / unit,
        })
    }

    /// Units stored as words by [`Quota::to_words`](crate::Quota), taken as they are: the
    /// caller checked them once. The span may be shorter than [`Units::new`]'s (a key table
    /// keeps fewer than 64 bits of state).
    pub(crate) const fn from_words(
        burst: u64,
        unit: u64,
        interval: u64,
        tolerance: u64,
        span: u64,
    ) -> Units {
        Units {
            burst,
            unit,
            interval,
            tolerance,
            span,
        }
    }

    /// B: the bucket size in requests.
    pub const fn burst(&self) -> u64 {
        self.burst
    }

    /// D: units per tick. The state counts time in units of 1/D tick.
    pub const fn unit(&self) -> u64 {
        self.unit
    }

    /// I: units per request, the emission interval (one request drains in I units).
    pub const fn interval(&self) -> u64 {
        self.interval
    }

    /// B·I: the bucket's capacity in units.
    pub const fn tolerance(&self) -> u64 {
        self.tolerance
    }

    /// The largest `now`, in ticks, the arithmetic accepts ([`Quota::exact_span`](crate::Quota::exact_span)); beyond it
    /// a step answers [`Error::ClockOutOfRange`].
    pub const fn span(&self) -> u64 {
        self.span
    }

    /// ⌈units / interval⌉: the requests `units` of backlog hold.
    #[inline]
    pub(crate) const fn requests_in(&self, units: u64) -> u64 {
        units.div_ceil(self.interval)
    }
}

/// A request's admission test in units, for a backend that runs the test itself (a script on a
/// server) and then calls [`step`] on the state it decided on.
///
/// The request is admitted iff `max(S, now) + need ≤ deadline`, and the new state is then
/// `max(S, now) + need`. A `need` of 0 means the cost exceeds the burst: the answer is
/// [`Outcome::Never`] whatever the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Admission {
    /// `now` in units: now·D.
    pub now: u64,
    /// The request's size in units, c·I (0 for a cost above the burst).
    pub need: u64,
    /// The latest admissible end of the bucket, now·D + B·I: also the state of a full bucket at
    /// `now` (0 when `need` is 0).
    pub deadline: u64,
}

/// The admission test of a request of `cost` at `now` ([`Admission`]).
///
/// Errors: [`Error::ZeroCost`]; [`Error::ClockOutOfRange`] if `now` is beyond the span. The
/// same checks, in the same order, as [`step`].
#[inline]
pub fn admission(units: &Units, now: u64, cost: u64) -> Result<Admission, Error> {
    if cost == 0 {
        return Err(Error::ZeroCost);
    }
    if now > units.span {
        return Err(Error::ClockOutOfRange);
    }
    // Fits: now ≤ span = (MAX − tolerance) / unit.
    let now_u = now * units.unit;
    if cost > units.burst {
        return Ok(Admission {
            now: now_u,
            need: 0,
            deadline: 0,
        });
    }
    // cost ≤ burst, so cost·interval ≤ tolerance fits, and so does now_u + tolerance.
    Ok(Admission {
        now: now_u,
        need: cost * units.interval,
        deadline: now_u + units.tolerance,
    })
}

/// The state word of a bucket that holds `used` requests (at most the burst) at `now`:
/// now·D + min(used, B)·I. With `used` = B, a full bucket: what a backend takes a state of
/// unknown meaning to be (never an empty one, which would grant a free burst).
///
/// Errors: [`Error::ClockOutOfRange`] if `now` is beyond the span.
pub fn at_level(units: &Units, now: u64, used: u64) -> Result<u64, Error> {
    if now > units.span {
        return Err(Error::ClockOutOfRange);
    }
    // Fits: now·unit + burst·interval ≤ span·unit + tolerance ≤ u64::MAX.
    Ok(now * units.unit + used.min(units.burst) * units.interval)
}

/// `⌈x / d⌉`, skipping the division when `d == 1` (the usual unit: C' = 1 whenever the count
/// divides the period, as for 50/s or 2/s on any common clock).
#[inline]
const fn div_ceil_fast(x: u64, d: u64) -> u64 {
    if d == 1 {
        x
    } else {
        x.div_ceil(d)
    }
}

/// One request of `cost` at `now` on the state word `state`: the new word (`None`: unchanged)
/// and the decision, exactly as [`LeakyBucket::decide`](crate::LeakyBucket::decide)
/// ([`Mode::Decide`]) or [`LeakyBucket::peek`](crate::LeakyBucket::peek) ([`Mode::Peek`])
/// compute them on a bucket holding `state`.
///
/// An admitted decision spends the request; a denial changes nothing; a peek or a
/// [`Outcome::Never`] answer may record a later `now` in a drained bucket (which changes no
/// level), so the state keeps the latest time it was asked about.
///
/// ```
/// use tollgate::state::{bucket, Mode};
/// use tollgate::{Outcome, Quota};
/// let units = *Quota::new(1, 1, 1_000)?.units(); // one request per second, no burst
/// let (next, d) = bucket::step(0, &units, 0, 1, Mode::Decide)?;
/// assert_eq!((d.outcome, next), (Outcome::Allowed, Some(1_000)));
/// let (next, d) = bucket::step(1_000, &units, 400, 1, Mode::Decide)?;
/// assert_eq!((d.outcome, d.retry_after, next), (Outcome::Limited, Some(600), None));
/// # Ok::<(), tollgate::Error>(())
/// ```
///
/// Errors: [`Error::ZeroCost`]; [`Error::ClockOutOfRange`] if `now` is beyond the span.
#[inline]
pub fn step(
    state: u64,
    units: &Units,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<(Option<u64>, Decision), Error> {
    let a = admission(units, now, cost)?;
    Ok(judge(state, units, a, mode))
}

/// [`step`] after [`admission`]: the outcome and new word come from [`admit`] (the
/// outcome-only path), the numbers from [`report`], so the two paths cannot disagree.
#[inline]
pub(crate) fn judge(
    state: u64,
    units: &Units,
    a: Admission,
    mode: Mode,
) -> (Option<u64>, Decision) {
    let now_u = a.now;
    // Recording a later `now` into a drained bucket changes no level (see the module docs).
    let record_time = if now_u > state { Some(now_u) } else { None };
    if a.need == 0 {
        return (
            record_time,
            report(units, Outcome::Never, state, now_u, None),
        );
    }
    match (admit(state, now_u, a.need, a.deadline), mode) {
        ((Some(next), _), Mode::Decide) => (
            Some(next),
            report(units, Outcome::Allowed, next, now_u, Some(0)),
        ),
        ((Some(_), _), Mode::Peek) => (
            record_time,
            report(units, Outcome::Allowed, state, now_u, Some(0)),
        ),
        ((None, _), mode) => {
            let retry = retry_after(units, state, now_u, a.need);
            let new = if mode == Mode::Peek {
                record_time
            } else {
                None
            };
            (
                new,
                report(units, Outcome::Limited, state, now_u, Some(retry)),
            )
        }
    }
}

/// The numbers reported for a bucket whose word is `state`, at `now_u` (in units).
#[inline]
pub(crate) fn report(
    units: &Units,
    verdict: Outcome,
    state: u64,
    now_u: u64,
    retry_after: Option<u64>,
) -> Decision {
    let excess = state.saturating_sub(now_u);
    let limit = units.burst;
    // ⌈excess / interval⌉, capped at the burst (a clock that stepped back can leave more).
    let used = if excess >= units.tolerance {
        limit
    } else {
        units.requests_in(excess)
    };
    Decision::plain(
        verdict,
        limit,
        used,
        retry_after,
        div_ceil_fast(excess, units.unit),
    )
}

/// A denied request's `retry_after`: ⌈(L(t) + c − B) · P / C⌉ in ticks, computed in units as
/// (excess + need − tolerance) / unit = (excess − (tolerance − need)) / unit, where the denial
/// means excess > tolerance − need (even if `base + need` overflowed) and need ≤ tolerance.
/// Exact in u64: no 128-bit division on the decision path (800 bytes of code on a Cortex-M).
#[inline]
pub(crate) fn retry_after(units: &Units, state: u64, now_u: u64, need: u64) -> u64 {
    let base = if state > now_u { state } else { now_u };
    let over = (base - now_u) - (units.tolerance - need);
    div_ceil_fast(over, units.unit)
}

/// The outcome-only [`Mode::Decide`] step for a cost within the burst (`need ≥ 1`): the new
/// word if admitted. Exactly the state change [`step`] makes.
#[inline]
pub(crate) const fn admit(
    state: u64,
    now_u: u64,
    need: u64,
    deadline: u64,
) -> (Option<u64>, Outcome) {
    let base = if state > now_u { state } else { now_u };
    match base.checked_add(need) {
        Some(next) if next <= deadline => (Some(next), Outcome::Allowed),
        _ => (None, Outcome::Limited),
    }
}

/// `true` if a bucket in `state` is empty at `now` (indistinguishable from a new one).
pub(crate) fn is_drained(state: u64, units: &Units, now: u64) -> bool {
    match now.checked_mul(units.unit) {
        Some(now_u) => state <= now_u,
        None => true,
    }
}

/// Re-expresses the state word `state` from `old` units in `new` units at `now`, so a key that
/// changes quota keeps its history: no free burst, and a backlog that never drains sooner than
/// it would have. [`LeakyBucket::set_quota`](crate::LeakyBucket::set_quota) is this conversion.
///
/// The state cannot tell a backlog (level) from a gap left by a clock that stepped back (the
/// latest `now` it recorded), so the backlog is converted both ways and the larger result kept:
/// **by level** (the same number of requests in the new bucket; this is the larger when the new
/// rate is slower or equal) and **by time** (the bucket empties at the same moment it would
/// have; the larger when the new rate is faster). Either way the bucket is empty no later than
/// under the slower of the two quotas, and no request is admitted that the true timeline, with
/// the change made at the latest time seen, would refuse (docs/semantics.md#backwards-clocks).
///
/// Errors: [`Error::ClockOutOfRange`] if `now` is beyond either span or the converted backlog
/// does not fit the new state (it would drain past the new span).
pub fn convert(state: u64, old: &Units, new: &Units, now: u64) -> Result<u64, Error> {
    if now > old.span || now > new.span {
        return Err(Error::ClockOutOfRange);
    }
    let old_excess = u128::from(state.saturating_sub(now * old.unit));
    let by_level = (old_excess * u128::from(new.interval)).div_ceil(u128::from(old.interval));
    let by_time = (old_excess * u128::from(new.unit)).div_ceil(u128::from(old.unit));
    let converted = u128::from(now * new.unit) + by_level.max(by_time);
    u64::try_from(converted).map_err(|_| Error::ClockOutOfRange)
}
