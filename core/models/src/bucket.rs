//! The leaky bucket (docs/semantics.md#leaky-bucket), its quota rules (docs/semantics.md#quotas)
//! and quota changes (docs/semantics.md#quota-changes).

use tollgate::{Decision, Error, Outcome};

use crate::{ceil_div, decision, gcd, mul_div_ceil, sat64, Mode, Model};

/// The exact span of a leaky-bucket quota, as documented in the core's `quota.rs`:
/// ⌊(2⁶⁴ − 1 − B·P') / C'⌋ with C' = C / gcd(C, P), P' = P / gcd(C, P).
/// `None` when B·P' does not fit 64 bits (the quota is refused with `QuotaOverflow`).
///
/// # Panics
///
/// If `count` and `period` are both 0.
pub fn gcra_span(burst: u64, count: u64, period: u64) -> Option<u64> {
    let g = gcd(u128::from(count), u128::from(period));
    let c1 = u128::from(count) / g;
    let p1 = u128::from(period) / g;
    let tolerance = u128::from(burst) * p1;
    let max = u128::from(u64::MAX);
    if tolerance > max {
        return None;
    }
    Some(sat64((max - tolerance) / c1))
}

/// docs/semantics.md#quotas validation of a leaky-bucket quota (with no minimum span): the
/// exact span, or the error the engine must give.
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

/// How a bucket converts its level to a new quota; see [`Gcra::set_quota`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// The true timeline of docs/semantics.md#quota-changes: the level carries over, rounded up.
    ByLevel,
    /// What the engine (`LeakyBucket::set_quota`) does: the larger of the conversions by level
    /// and by time; refused if the result does not fit the engine's 64-bit state.
    Engine,
}

/// docs/semantics.md#leaky-bucket: a bucket of B units whose level L is an exact rational,
/// draining C per P ticks, never below 0.
///
/// The level is kept as `x = L·P'`, an integer, where C'/P' is the drain rate in lowest terms:
/// one tick drains exactly C', a request of cost c adds c·P'. A `now` earlier than the latest
/// time seen (docs/semantics.md#backwards-clocks) is judged at the latest time plus the gap: the
/// level there is the latest level plus the drain the gap would have brought.
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
    /// C' = C / gcd(C, P).
    c: u128,
    /// P' = P / gcd(C, P).
    p: u128,
    /// L·P' at time `latest`.
    x: u128,
    /// The latest time seen.
    latest: u64,
}

impl Gcra {
    /// An empty bucket, validated as the engine validates (`Quota::with_min_span(.., 0)`); its
    /// span is the quota's exact span.
    pub fn new(burst: u64, count: u64, period: u64) -> Result<Gcra, Error> {
        let span = gcra_validate(burst, count, period)?;
        Ok(Gcra::with_span(burst, count, period, span))
    }

    /// An empty bucket with no span limit: the exact timeline an approximate quota is held to.
    ///
    /// # Panics
    ///
    /// If `burst`, `count` or `period` is 0.
    pub fn unbounded(burst: u64, count: u64, period: u64) -> Gcra {
        assert!(burst > 0 && count > 0 && period > 0, "an invalid quota");
        Gcra::with_span(burst, count, period, u64::MAX)
    }

    fn with_span(burst: u64, count: u64, period: u64, span: u64) -> Gcra {
        let (c, p) = (u128::from(count), u128::from(period));
        let g = gcd(c, p);
        Gcra {
            burst,
            count,
            period,
            span,
            c: c / g,
            p: p / g,
            x: 0,
            latest: 0,
        }
    }

    /// ⌈B·P/C⌉: the ticks a full bucket takes to drain.
    pub fn drain_ticks(&self) -> u128 {
        ceil_div(u128::from(self.burst) * self.p, self.c)
    }

    /// L·P' at `now`, without moving time: the latest level drained to `now`, or raised by the
    /// gap when `now` is earlier.
    fn level_at(&self, now: u64) -> u128 {
        if now >= self.latest {
            let drained = self.c * u128::from(now - self.latest);
            self.x.saturating_sub(drained)
        } else {
            // Saturates only far beyond any capacity, where every answer is a refusal anyway.
            self.x
                .saturating_add(self.c * u128::from(self.latest - now))
        }
    }

    /// The level at `now` as the rational (numerator, denominator) = (L·P', P').
    pub fn level(&self, now: u64) -> (u128, u128) {
        (self.level_at(now), self.p)
    }

    /// `true` if the level at `now` is zero (a bucket indistinguishable from a new one).
    pub fn is_drained(&self, now: u64) -> bool {
        self.level_at(now) == 0
    }

    /// Empties the bucket and forgets the latest time (an operator's reset).
    pub fn reset(&mut self) {
        self.x = 0;
        self.latest = 0;
    }

    /// Changes the quota at `now` to `next`'s (a new model, from [`Gcra::new`] or
    /// [`Gcra::unbounded`]; its span becomes this model's), carrying the level over.
    ///
    /// A `now` past either span is refused with `ClockOutOfRange`, changing nothing.
    ///
    /// The true timeline ([`Conversion::ByLevel`], docs/semantics.md#quota-changes): the level
    /// carries over, rounded up to the new quota's units (no free burst). The engine
    /// ([`Conversion::Engine`], `LeakyBucket::set_quota` since the fix of the two bugs the
    /// `bucket_diff` fuzz target found): a state cannot tell a backlog from the gap a clock that
    /// stepped back leaves, so the larger of the conversion by level and by time (the backlog
    /// empties when it would have) is kept, and a result that does not fit the new 64-bit state
    /// is refused with `ClockOutOfRange`, changing nothing.
    pub fn set_quota(&mut self, next: &Gcra, now: u64, how: Conversion) -> Result<(), Error> {
        if now > self.span || now > next.span {
            return Err(Error::ClockOutOfRange);
        }
        let level = self.level_at(now);
        let by_level = mul_div_ceil(level, next.p, self.p);
        let carried = match how {
            // A level beyond u128 units (1/C' tick each, C' < 2⁶⁴) takes more than 2⁶⁴ ticks to
            // drain: out of reach of any u64 clock, so saturating keeps every answer.
            Conversion::ByLevel => by_level.unwrap_or(u128::MAX),
            Conversion::Engine => {
                let by_time = mul_div_ceil(level, next.c, self.c);
                let start = u128::from(now) * next.c;
                let state = by_level
                    .zip(by_time)
                    .and_then(|(l, t)| start.checked_add(l.max(t)))
                    .filter(|&state| state <= u128::from(u64::MAX))
                    .ok_or(Error::ClockOutOfRange)?;
                state - start
            }
        };
        *self = Gcra {
            x: carried,
            latest: now,
            ..*next
        };
        Ok(())
    }
}

impl Model for Gcra {
    /// A request of `cost` at `now`: a decision (`Mode::Decide`) or a peek (`Mode::Peek`).
    fn judge(&mut self, now: u64, cost: u64, mode: Mode) -> Result<Decision, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        if now > self.span {
            return Err(Error::ClockOutOfRange);
        }
        if now > self.latest {
            self.x = self.level_at(now);
            self.latest = now;
        }
        let mut level = self.level_at(now);
        let b = u128::from(self.burst);
        let need = u128::from(cost) * self.p;
        let capacity = b * self.p;
        let (outcome, retry_after) = if u128::from(cost) > b {
            (Outcome::Never, None)
        } else if level.saturating_add(need) <= capacity {
            if mode == Mode::Decide {
                self.x += need;
                level += need;
            }
            (Outcome::Allowed, Some(0))
        } else {
            // retry_after = ⌈(L + c − B)·P'/C'⌉.
            let over = level.saturating_add(need) - capacity;
            (Outcome::Limited, Some(sat64(ceil_div(over, self.c))))
        };
        // used = ⌈L⌉ (capped at the limit, as the engine documents; reached only backwards),
        // reset_after = ⌈L·P'/C'⌉.
        let used = sat64(ceil_div(level, self.p).min(b));
        Ok(decision(
            outcome,
            self.burst,
            used,
            retry_after,
            sat64(ceil_div(level, self.c)),
        ))
    }
}
