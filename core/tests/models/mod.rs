//! Reference models of the limiters, written plainly from docs/semantics.md: u128 arithmetic, a level
//! kept as an exact rational, a `Vec` of log entries, no atomics, no packed state, no cleverness.
//! Each test file includes this module with `mod models;` and compares the engine to it.
//!
//! The models describe a timeline that never goes back: callers that test backward clocks raise
//! each time to the latest time seen before feeding a model (docs/semantics.md#backwards-clocks), and the models assert it.
//! They return `tollgate::Decision` (with `outcome == verdict` and no flags) so a test compares
//! every reported number with one `assert_eq!`.

// Each test binary uses a different part of the models; `pub` so any test file may reuse them.
#![allow(dead_code, unreachable_pub)]

use tollgate::{Decision, Error, Outcome};

/// A decision with `outcome == verdict`, no flags, and `remaining = limit − used`.
pub fn decision(
    outcome: Outcome,
    limit: u64,
    used: u64,
    retry_after: Option<u64>,
    reset_after: u64,
) -> Decision {
    Decision {
        outcome,
        verdict: outcome,
        limit,
        used,
        remaining: limit - used,
        retry_after,
        reset_after,
        flags: 0,
    }
}

/// Greatest common divisor.
pub fn gcd(a: u128, b: u128) -> u128 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// ⌈a / b⌉.
pub fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

/// A tick count back to `u64`; the models only produce values docs/semantics.md says fit.
pub fn ticks(x: u128) -> u64 {
    u64::try_from(x).expect("a reported time fits 64 bits")
}

/// The exact span of a leaky-bucket quota, as documented in `quota.rs`:
/// ⌊(2⁶⁴ − 1 − B·P') / C'⌋ with C' = C / gcd(C, P), P' = P / gcd(C, P).
/// `None` when B·P' does not fit 64 bits (the quota is refused with `QuotaOverflow`).
pub fn gcra_span(burst: u64, count: u64, period: u64) -> Option<u64> {
    let g = gcd(u128::from(count), u128::from(period));
    let c1 = u128::from(count) / g;
    let p1 = u128::from(period) / g;
    let tolerance = u128::from(burst) * p1;
    let max = u128::from(u64::MAX);
    if tolerance > max {
        return None;
    }
    Some(ticks((max - tolerance) / c1))
}

/// docs/semantics.md#quotas validation of a leaky-bucket quota (with no minimum span).
pub fn gcra_validate(burst: u64, count: u64, period: u64) -> Result<u64, Error> {
    if burst == 0 {
        return Err(Error::ZeroBurst);
    }
    if count == 0 {
        return Err(Error::ZeroCount);
    }
    if period == 0 {
        return Err(Error::ZeroPeriod);
    }
    gcra_span(burst, count, period).ok_or(Error::QuotaOverflow)
}

/// docs/semantics.md#leaky-bucket: a bucket whose level L is an exact rational, draining C/P per tick, never below 0.
///
/// The level is kept as `L·P`, an integer: a request of cost c adds c·P, and one tick drains C.
#[derive(Clone, Debug)]
pub struct Gcra {
    /// B.
    pub burst: u64,
    /// C.
    pub count: u64,
    /// P.
    pub period: u64,
    /// The largest `now` accepted (`u64::MAX` for a model without a span limit).
    pub span: u64,
    /// L·P at time `at`.
    level: u128,
    at: u64,
}

impl Gcra {
    /// An empty bucket, validated as the engine validates (`Quota::with_min_span(.., 0)`).
    pub fn new(burst: u64, count: u64, period: u64) -> Result<Gcra, Error> {
        let span = gcra_validate(burst, count, period)?;
        Ok(Gcra {
            burst,
            count,
            period,
            span,
            level: 0,
            at: 0,
        })
    }

    /// An empty bucket with no span limit: the exact timeline an approximate quota is held to.
    pub fn unbounded(burst: u64, count: u64, period: u64) -> Gcra {
        assert!(burst > 0 && count > 0 && period > 0);
        Gcra {
            burst,
            count,
            period,
            span: u64::MAX,
            level: 0,
            at: 0,
        }
    }

    /// L·P at `now` (≥ the last time the model saw).
    fn scaled_level(&self, now: u64) -> u128 {
        assert!(now >= self.at, "the model's timeline never goes back");
        let drained = u128::from(now - self.at) * u128::from(self.count);
        self.level.saturating_sub(drained)
    }

    /// The level at `now` as the rational (numerator, denominator) = (L·P, P).
    pub fn level(&self, now: u64) -> (u128, u128) {
        (self.scaled_level(now), u128::from(self.period))
    }

    /// `true` if the bucket is empty at `now` (indistinguishable from a new one).
    pub fn is_drained(&self, now: u64) -> bool {
        self.scaled_level(now) == 0
    }

    /// A request of `cost` at `now` that spends capacity when admitted.
    pub fn decide(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, true)
    }

    /// Would a request of `cost` pass at `now`? Spends nothing.
    pub fn peek(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, false)
    }

    fn judge(&mut self, now: u64, cost: u64, spend: bool) -> Result<Decision, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        if now > self.span {
            return Err(Error::ClockOutOfRange);
        }
        let p = u128::from(self.period);
        let c = u128::from(self.count);
        let b = u128::from(self.burst);
        let level = self.scaled_level(now);
        self.level = level;
        self.at = now;
        // used = ⌈L⌉ (capped at the limit, as the engine documents; never needed forward),
        // reset_after = ⌈L·P/C⌉.
        let report = |outcome, level: u128, retry_after| {
            let used = ticks(ceil_div(level, p).min(b));
            decision(
                outcome,
                self.burst,
                used,
                retry_after,
                ticks(ceil_div(level, c)),
            )
        };
        if u128::from(cost) > b {
            return Ok(report(Outcome::Never, level, None));
        }
        let need = u128::from(cost) * p;
        if level + need <= b * p {
            if spend {
                self.level = level + need;
            }
            return Ok(report(Outcome::Allowed, self.level, Some(0)));
        }
        // retry_after = ⌈(L + c − B)·P/C⌉.
        let retry = ceil_div(level + need - b * p, c);
        Ok(report(Outcome::Limited, level, Some(ticks(retry))))
    }
}

/// The span of a fixed window, as documented in `fixed_window.rs`: o + (2^(64−k) − 1)·W − 1 with
/// k = ⌊log₂ N⌋ + 1 count bits, or `u64::MAX` when that is beyond 64 bits.
pub fn fixed_window_span(limit: u64, window: u64, offset: u64) -> u64 {
    let k = 64 - limit.leading_zeros();
    let max_index = (1u128 << (64 - k)) - 1;
    let end = u128::from(offset) + max_index * u128::from(window) - 1;
    u64::try_from(end).unwrap_or(u64::MAX)
}

/// docs/semantics.md#fixed-window validation of a window quota (limit, window, offset).
pub fn window_validate(limit: u64, window: u64, offset: u64) -> Result<(), Error> {
    if limit == 0 {
        return Err(Error::ZeroBurst);
    }
    if window == 0 {
        return Err(Error::ZeroPeriod);
    }
    if limit > u64::from(u32::MAX) {
        return Err(Error::QuotaOverflow);
    }
    if offset >= window {
        return Err(Error::OffsetOutOfRange);
    }
    Ok(())
}

/// docs/semantics.md#fixed-window: windows of W ticks starting at every s ≡ o (mod W), at most N units per window.
/// A `now` in an earlier window than the latest one seen is judged in that latest window, with
/// times measured from `now` to its end.
#[derive(Clone, Debug)]
pub struct FixedWindow {
    /// N.
    pub limit: u64,
    /// W.
    pub window: u64,
    /// o.
    pub offset: u64,
    /// The largest `now` accepted.
    pub span: u64,
    /// The latest window seen, numbered so that window k is [o + k·W, o + (k+1)·W).
    latest: Option<i128>,
    count: u64,
}

impl FixedWindow {
    /// An empty window counter.
    pub fn new(limit: u64, window: u64, offset: u64) -> Result<FixedWindow, Error> {
        window_validate(limit, window, offset)?;
        Ok(FixedWindow {
            limit,
            window,
            offset,
            span: fixed_window_span(limit, window, offset),
            latest: None,
            count: 0,
        })
    }

    /// The window holding `now`.
    pub fn window_of(&self, now: u64) -> i128 {
        (i128::from(now) - i128::from(self.offset)).div_euclid(i128::from(self.window))
    }

    /// `true` if nothing counts against the limit at `now`: no units in the latest window, or
    /// `now` is past it.
    pub fn is_drained(&self, now: u64) -> bool {
        self.count == 0 || self.latest.is_none_or(|l| self.window_of(now) > l)
    }

    /// A request of `cost` at `now` that spends capacity when admitted.
    pub fn decide(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, true)
    }

    /// Would a request of `cost` pass at `now`? Spends nothing.
    pub fn peek(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, false)
    }

    fn judge(&mut self, now: u64, cost: u64, spend: bool) -> Result<Decision, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        if now > self.span {
            return Err(Error::ClockOutOfRange);
        }
        let current = self.window_of(now);
        let window = match self.latest {
            Some(latest) if latest >= current => latest,
            _ => {
                self.latest = Some(current);
                self.count = 0;
                current
            }
        };
        let end = i128::from(self.offset) + (window + 1) * i128::from(self.window);
        let to_end = u64::try_from(end - i128::from(now)).unwrap_or(u64::MAX);
        if cost > self.limit {
            return Ok(decision(
                Outcome::Never,
                self.limit,
                self.count,
                None,
                to_end,
            ));
        }
        if self.count + cost <= self.limit {
            if spend {
                self.count += cost;
            }
            return Ok(decision(
                Outcome::Allowed,
                self.limit,
                self.count,
                Some(0),
                to_end,
            ));
        }
        Ok(decision(
            Outcome::Limited,
            self.limit,
            self.count,
            Some(to_end),
            to_end,
        ))
    }
}

/// docs/semantics.md#sliding-window-log: at most N units in any half-open window (t − W, t], over a plain list of the admitted
/// (time, cost) entries. Every call is judged at the latest `now` seen (a clock that steps back
/// stands still); reported times are measured from the caller's `now`.
#[derive(Clone, Debug)]
pub struct SlidingLog {
    /// N.
    pub limit: u64,
    /// W.
    pub window: u64,
    entries: Vec<(u64, u64)>,
    latest: u64,
}

impl SlidingLog {
    /// An empty log.
    pub fn new(limit: u64, window: u64) -> Result<SlidingLog, Error> {
        window_validate(limit, window, 0)?;
        Ok(SlidingLog {
            limit,
            window,
            entries: Vec::new(),
            latest: 0,
        })
    }

    /// Units of entries inside (t − W, t].
    fn units_at(&self, t: u128) -> u64 {
        self.entries
            .iter()
            .filter(|&&(time, _)| u128::from(time) + u128::from(self.window) > t)
            .map(|&(_, cost)| cost)
            .sum()
    }

    /// Ticks from `now` to the absolute time `t` (saturating at `u64::MAX`).
    fn from_now(t: u128, now: u64) -> u64 {
        u64::try_from(t - u128::from(now)).unwrap_or(u64::MAX)
    }

    /// Units in the window at the latest time seen (or `now`, if later); `now` counts as seen.
    pub fn used(&mut self, now: u64) -> u64 {
        self.latest = self.latest.max(now);
        self.units_at(u128::from(self.latest))
    }

    /// A request of `cost` at `now` that records an entry when admitted.
    pub fn decide(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, true)
    }

    /// Would a request of `cost` pass at `now`? Records nothing.
    pub fn peek(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, false)
    }

    fn judge(&mut self, now: u64, cost: u64, record: bool) -> Result<Decision, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        self.latest = self.latest.max(now);
        let t = self.latest;
        let w = u128::from(self.window);
        // Entries that left the window can never count again (t never goes back).
        self.entries
            .retain(|&(time, _)| u128::from(time) + w > u128::from(t));
        let used = self.units_at(u128::from(t));
        let reset = |entries: &[(u64, u64)]| {
            entries
                .iter()
                .map(|&(time, _)| u128::from(time) + w)
                .max()
                .map_or(0, |gone| Self::from_now(gone, now))
        };
        if cost > self.limit {
            let reset_after = reset(&self.entries);
            return Ok(decision(
                Outcome::Never,
                self.limit,
                used,
                None,
                reset_after,
            ));
        }
        if used + cost <= self.limit {
            if record {
                self.entries.push((t, cost));
            }
            let used = self.units_at(u128::from(t));
            let reset_after = reset(&self.entries);
            return Ok(decision(
                Outcome::Allowed,
                self.limit,
                used,
                Some(0),
                reset_after,
            ));
        }
        // The earliest moment one of the entries leaves after which the request fits.
        let retry = self
            .entries
            .iter()
            .map(|&(time, _)| u128::from(time) + w)
            .filter(|&gone| self.units_at(gone) + cost <= self.limit)
            .min()
            .expect("once every entry has left, a cost within the limit fits");
        Ok(decision(
            Outcome::Limited,
            self.limit,
            used,
            Some(Self::from_now(retry, now)),
            reset(&self.entries),
        ))
    }
}

/// docs/semantics.md#concurrency-limit: a counter of requests in flight, at most `max`.
#[derive(Clone, Debug)]
pub struct Concurrency {
    /// M.
    pub max: u32,
    /// Requests in flight.
    pub in_flight: u32,
}

impl Concurrency {
    /// No request in flight.
    pub fn new(max: u32) -> Concurrency {
        Concurrency { max, in_flight: 0 }
    }

    /// Admits iff fewer than M are in flight; a refusal is Overloaded with no retry time.
    pub fn try_acquire(&mut self) -> Decision {
        let limit = u64::from(self.max);
        if self.in_flight < self.max {
            self.in_flight += 1;
            decision(
                Outcome::Allowed,
                limit,
                u64::from(self.in_flight),
                Some(0),
                0,
            )
        } else {
            decision(
                Outcome::Overloaded,
                limit,
                u64::from(self.in_flight),
                None,
                0,
            )
        }
    }

    /// Returns a permit; an error when none is in flight.
    pub fn release(&mut self) -> Result<(), Error> {
        if self.in_flight == 0 {
            return Err(Error::NotAcquired);
        }
        self.in_flight -= 1;
        Ok(())
    }
}

/// One random call for the bucket and window proptests: (peek?, time-step selector, raw time,
/// cost selector, raw cost); each test file maps the selectors to its own time and cost shapes.
pub type Op = (bool, u8, u64, u8, u64);

/// A random sequence of up to `max` calls, a quarter of them peeks.
pub fn ops(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
    use proptest::prelude::*;
    prop::collection::vec(
        (
            prop::bool::weighted(0.25),
            0..100u8,
            any::<u64>(),
            0..100u8,
            any::<u64>(),
        ),
        1..max,
    )
}
