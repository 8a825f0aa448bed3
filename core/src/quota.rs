//! Quotas: a leaky bucket's burst and exact rational drain rate (docs/semantics.md#quotas), and a window's limit.
//!
//! # Exact arithmetic and its span
//!
//! A leaky-bucket quota drains `count` C requests every `period` P ticks. Let g = gcd(C, P),
//! C' = C / g and P' = P / g. The engine counts time in units of 1/C' tick, in which one request
//! drains in exactly P' units: no rounding, ever, so 3 per 10⁹ ticks is exactly 3 per second
//! for as long as the limiter runs. The state is one 64-bit word, so the clock may reach
//!
//! ```text
//! exact span = ⌊(2⁶⁴ − 1 − B·P') / C'⌋ ticks
//! ```
//!
//! | clock | quota | C' | exact span |
//! |---|---|---|---|
//! | nanoseconds | 50 / s (TikTok Shop) | 1 | 584 years |
//! | nanoseconds | 2 / s, burst 30 (ShopBase) | 1 | 584 years |
//! | nanoseconds | 3 / s | 3 | 194 years |
//! | nanoseconds | 7 / s | 7 | 83 years |
//! | nanoseconds | 999 983 / s | 999 983 | 5.1 hours |
//! | microseconds | 999 983 / s | 999 983 | 213 days |
//! | 1 kHz tick | 7 / 1000 ticks | 7 | 83 million years |
//!
//! [`Quota::new`] refuses a quota whose exact span is below [`Quota::DEFAULT_MIN_SPAN`] ticks;
//! [`Quota::with_min_span`] lets the caller name the span it needs, and [`Quota::approximate`]
//! opts in to a conservative approximation (the emission interval rounded up to a coarser unit,
//! so it admits never more, and at most one unit per request less, than the exact rate).
//! A decision at a `now` beyond the span returns [`Error::ClockOutOfRange`]: never a wrong
//! answer, never a panic.

use core::time::Duration;

use crate::state::bucket::Units;
use crate::Error;

/// `seconds` whole seconds in ticks of a clock of `ticks_per_second`, or
/// [`Error::InvalidArgument`] when they do not fit 64 bits or `ticks_per_second` is zero.
const fn seconds_to_ticks(seconds: u64, ticks_per_second: u64) -> Result<u64, Error> {
    if ticks_per_second == 0 {
        return Err(Error::InvalidArgument);
    }
    match seconds.checked_mul(ticks_per_second) {
        Some(ticks) => Ok(ticks),
        None => Err(Error::InvalidArgument),
    }
}

/// A duration in ticks of a clock of `ticks_per_second`, exactly: `d × ticks_per_second / 10⁹`
/// when it is a whole number that fits 64 bits.
///
/// Errors: [`Error::InvalidArgument`] when `ticks_per_second` is zero, when `d` is not a whole
/// number of ticks (1.5 ms on a millisecond clock), or when its ticks do not fit 64 bits. Never
/// rounds. A zero duration is zero ticks (which a quota refuses as [`Error::ZeroPeriod`]).
///
/// ```
/// use core::time::Duration;
/// use tollgate::{duration_to_ticks, Error};
/// assert_eq!(duration_to_ticks(Duration::from_millis(1_500), 1_000), Ok(1_500));
/// assert_eq!(duration_to_ticks(Duration::from_millis(1_500), 2), Ok(3));
/// assert_eq!(duration_to_ticks(Duration::from_millis(1_500), 1), Err(Error::InvalidArgument));
/// assert_eq!(duration_to_ticks(Duration::from_micros(1_500), 1_000), Err(Error::InvalidArgument));
/// ```
pub const fn duration_to_ticks(d: Duration, ticks_per_second: u64) -> Result<u64, Error> {
    const NANOS_PER_SECOND: u128 = 1_000_000_000;
    if ticks_per_second == 0 {
        return Err(Error::InvalidArgument);
    }
    // d × ticks_per_second in units of 10⁻⁹ tick; beyond 128 bits the ticks exceed 64 bits anyway.
    let Some(scaled) = d.as_nanos().checked_mul(ticks_per_second as u128) else {
        return Err(Error::InvalidArgument);
    };
    if scaled % NANOS_PER_SECOND != 0 {
        return Err(Error::InvalidArgument);
    }
    let ticks = scaled / NANOS_PER_SECOND;
    if ticks > u64::MAX as u128 {
        return Err(Error::InvalidArgument);
    }
    // In range: checked just above.
    #[allow(clippy::cast_possible_truncation)]
    Ok(ticks as u64)
}

/// A leaky-bucket (GCRA) quota: a bucket of `burst` requests draining `count` per `period` ticks.
///
/// ```
/// use tollgate::Quota;
/// // ShopBase: a bucket of 30 draining 2 per second, on a nanosecond clock.
/// let q = Quota::new(30, 2, 1_000_000_000).unwrap();
/// assert_eq!(q.burst(), 30);
/// assert!(q.is_exact());
/// assert_eq!(q.drain_ticks(), 15_000_000_000); // a full bucket empties in 15 s
/// // A quota can be a constant:
/// const TIKTOK: Quota = match Quota::per_second(50, 50, 1_000) {
///     Ok(q) => q,
///     Err(_) => panic!("invalid quota"),
/// };
/// assert_eq!(TIKTOK.count(), 50);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u64,
    period: u64,
    /// Burst, units per tick, units per request, tolerance and span: what the arithmetic
    /// runs on.
    units: Units,
    exact: bool,
}

pub(crate) const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Quota {
    /// The least exact span [`Quota::new`] accepts: 2⁵⁶ ticks — 2.3 years of nanoseconds,
    /// 2 284 years of microseconds. Every quota with C' ≤ 255 on any clock meets it.
    pub const DEFAULT_MIN_SPAN: u64 = 1 << 56;

    /// An exact quota: a bucket of `burst` draining `count` requests per `period` ticks.
    ///
    /// Errors: [`Error::ZeroBurst`], [`Error::ZeroCount`], [`Error::ZeroPeriod`],
    /// [`Error::QuotaOverflow`] when `burst × period / gcd(count, period)` exceeds 64 bits, and
    /// [`Error::SpanTooShort`] when the exact span is below [`Quota::DEFAULT_MIN_SPAN`].
    pub const fn new(burst: u64, count: u64, period: u64) -> Result<Quota, Error> {
        Quota::with_min_span(burst, count, period, Quota::DEFAULT_MIN_SPAN)
    }

    /// `count` requests per second on a clock of `ticks_per_second`, with a bucket of `burst`:
    /// exactly [`Quota::new`]`(burst, count, ticks_per_second)`.
    ///
    /// ```
    /// use tollgate::Quota;
    /// let q = Quota::per_second(30, 2, 1_000)?; // 2 per second on a millisecond clock
    /// assert_eq!(q, Quota::new(30, 2, 1_000)?);
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    pub const fn per_second(burst: u64, count: u64, ticks_per_second: u64) -> Result<Quota, Error> {
        Quota::new(burst, count, ticks_per_second)
    }

    /// `count` requests per minute on a clock of `ticks_per_second`, with a bucket of `burst`:
    /// exactly [`Quota::new`]`(burst, count, 60 × ticks_per_second)`.
    ///
    /// Errors: those of [`Quota::new`], and [`Error::InvalidArgument`] when a minute's ticks
    /// do not fit 64 bits.
    ///
    /// ```
    /// use tollgate::Quota;
    /// let q = Quota::per_minute(40, 40, 1_000_000_000)?; // 40 per minute on nanoseconds
    /// assert_eq!(q, Quota::new(40, 40, 60_000_000_000)?);
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    pub const fn per_minute(burst: u64, count: u64, ticks_per_second: u64) -> Result<Quota, Error> {
        match seconds_to_ticks(60, ticks_per_second) {
            Ok(period) => Quota::new(burst, count, period),
            Err(e) => Err(e),
        }
    }

    /// `count` requests per hour on a clock of `ticks_per_second`, with a bucket of `burst`:
    /// exactly [`Quota::new`]`(burst, count, 3600 × ticks_per_second)`.
    ///
    /// Errors: those of [`Quota::new`], and [`Error::InvalidArgument`] when an hour's ticks do
    /// not fit 64 bits.
    ///
    /// ```
    /// use tollgate::Quota;
    /// let q = Quota::per_hour(100, 5_000, 1_000)?; // 5 000 per hour on a millisecond clock
    /// assert_eq!(q, Quota::new(100, 5_000, 3_600_000)?);
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    pub const fn per_hour(burst: u64, count: u64, ticks_per_second: u64) -> Result<Quota, Error> {
        match seconds_to_ticks(3600, ticks_per_second) {
            Ok(period) => Quota::new(burst, count, period),
            Err(e) => Err(e),
        }
    }

    /// `count` requests per `period` of time on a clock of `ticks_per_second`, with a bucket
    /// of `burst`: exactly [`Quota::new`]`(burst, count, ticks)` where `ticks` is `period` in
    /// ticks — see [`duration_to_ticks`] for when a duration converts.
    ///
    /// Errors: those of [`duration_to_ticks`] ([`Error::InvalidArgument`] for a period that is
    /// not a whole number of ticks or whose ticks do not fit 64 bits), then those of
    /// [`Quota::new`] (a zero period is [`Error::ZeroPeriod`]).
    ///
    /// ```
    /// use core::time::Duration;
    /// use tollgate::Quota;
    /// // 3 requests per 250 ms on a microsecond clock.
    /// let q = Quota::per_duration(3, 3, Duration::from_millis(250), 1_000_000)?;
    /// assert_eq!(q, Quota::new(3, 3, 250_000)?);
    /// // 1 ns is not a whole number of microsecond ticks: refused, never rounded.
    /// let odd = Duration::from_nanos(250_000_001);
    /// assert_eq!(Quota::per_duration(3, 3, odd, 1_000_000), Err(tollgate::Error::InvalidArgument));
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    pub const fn per_duration(
        burst: u64,
        count: u64,
        period: Duration,
        ticks_per_second: u64,
    ) -> Result<Quota, Error> {
        match duration_to_ticks(period, ticks_per_second) {
            Ok(ticks) => Quota::new(burst, count, ticks),
            Err(e) => Err(e),
        }
    }

    /// An exact quota whose arithmetic must reach at least `min_span` ticks of the caller's
    /// clock, else [`Error::SpanTooShort`]. `min_span = 0` accepts any quota that fits.
    pub const fn with_min_span(
        burst: u64,
        count: u64,
        period: u64,
        min_span: u64,
    ) -> Result<Quota, Error> {
        if burst == 0 {
            return Err(Error::ZeroBurst);
        }
        if count == 0 {
            return Err(Error::ZeroCount);
        }
        if period == 0 {
            return Err(Error::ZeroPeriod);
        }
        let g = gcd(count, period);
        match Quota::build(burst, count, period, count / g, period / g, true) {
            Ok(q) if q.units.span() >= min_span => Ok(q),
            Ok(_) => Err(Error::SpanTooShort),
            Err(e) => Err(e),
        }
    }

    /// Exact when the exact span reaches `min_span` ticks; otherwise a conservative
    /// approximation whose span does: time is counted in units of 1/D tick for the largest
    /// D (a power of two, or 1) that reaches `min_span`, and a request drains in
    /// ⌈P·D / C⌉ units — the emission interval rounded up, so the approximate limiter never
    /// admits more than the exact one would. [`Quota::is_exact`] tells which was chosen.
    ///
    /// ```
    /// use tollgate::Quota;
    /// // 999 983 per second on nanoseconds spans only 5 hours exactly...
    /// assert!(Quota::new(10, 999_983, 1_000_000_000).is_err());
    /// // ...so ask for 100 years, approximately.
    /// let century = 100 * 365 * 86_400 * 1_000_000_000;
    /// let q = Quota::approximate(10, 999_983, 1_000_000_000, century).unwrap();
    /// assert!(!q.is_exact());
    /// assert!(q.exact_span() >= century);
    /// ```
    pub const fn approximate(
        burst: u64,
        count: u64,
        period: u64,
        min_span: u64,
    ) -> Result<Quota, Error> {
        match Quota::with_min_span(burst, count, period, min_span) {
            Err(Error::SpanTooShort) => {}
            other => return other,
        }
        // The largest power of two D with min_span·D < 2^64; halve until the tolerance fits too.
        let max_unit = match u64::MAX.checked_div(min_span) {
            Some(m) => m,
            None => u64::MAX,
        };
        let mut unit: u64 = 1 << max_unit.ilog2();
        loop {
            let interval = (period as u128 * unit as u128).div_ceil(count as u128);
            // A u64 interval whose tolerance fits; `as` is exact after the range check.
            #[allow(clippy::cast_possible_truncation)]
            if interval <= u64::MAX as u128 {
                if let Ok(q) = Quota::build(burst, count, period, unit, interval as u64, false) {
                    if q.units.span() >= min_span {
                        return Ok(q);
                    }
                }
            }
            if unit == 1 {
                return Err(Error::SpanTooShort);
            }
            unit /= 2;
        }
    }

    const fn build(
        burst: u64,
        count: u64,
        period: u64,
        unit: u64,
        interval: u64,
        exact: bool,
    ) -> Result<Quota, Error> {
        match Units::build(burst, unit, interval) {
            Ok(units) => Ok(Quota {
                count,
                period,
                units,
                exact,
            }),
            Err(e) => Err(e),
        }
    }

    /// The bucket size B: how many cost-1 requests pass back to back from empty.
    pub const fn burst(&self) -> u64 {
        self.units.burst()
    }

    /// C: requests drained per period.
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// P: the period in ticks.
    pub const fn period(&self) -> u64 {
        self.period
    }

    /// `true` if the arithmetic is exact (the rate is exactly C/P), `false` for an
    /// [`approximate`](Quota::approximate) quota.
    pub const fn is_exact(&self) -> bool {
        self.exact
    }

    /// The largest `now`, in ticks, a decision accepts; see the module docs for the formula.
    pub const fn exact_span(&self) -> u64 {
        self.units.span()
    }

    /// Ticks a full bucket takes to drain: ⌈B·P / C⌉ (for an approximate quota, at its rounded
    /// rate).
    pub const fn drain_ticks(&self) -> u64 {
        self.units.tolerance().div_ceil(self.units.unit())
    }

    /// The numbers the bucket's arithmetic runs on: B, D (units per tick), I (units per
    /// request), B·I and the span. The pure state functions of [`state::bucket`](crate::state::bucket)
    /// take them; two quotas with equal units decide identically.
    ///
    /// ```
    /// use tollgate::Quota;
    /// let q = Quota::new(30, 2, 1_000_000_000)?; // ShopBase on nanoseconds
    /// let units = q.units();
    /// assert_eq!((units.unit(), units.interval()), (1, 500_000_000)); // one request per 0.5 s
    /// assert_eq!(units.span(), q.exact_span());
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    pub const fn units(&self) -> &Units {
        &self.units
    }

    pub(crate) const fn unit(&self) -> u64 {
        self.units.unit()
    }

    pub(crate) const fn interval(&self) -> u64 {
        self.units.interval()
    }

    pub(crate) const fn tolerance(&self) -> u64 {
        self.units.tolerance()
    }

    /// The quota's fields as words, for a key table's memory: burst, count, period, unit,
    /// interval, tolerance, span, exact. [`Quota::from_words`] reverses it.
    pub(crate) const fn to_words(self) -> [u64; 8] {
        [
            self.units.burst(),
            self.count,
            self.period,
            self.units.unit(),
            self.units.interval(),
            self.units.tolerance(),
            self.units.span(),
            self.exact as u64,
        ]
    }

    /// The quota written by [`Quota::to_words`], taken as it is: the caller checked it once
    /// with [`Quota::check_words`]. Cheap (no division).
    pub(crate) const fn from_words(w: &[u64; 8]) -> Quota {
        Quota {
            count: w[1],
            period: w[2],
            units: Units::from_words(w[0], w[3], w[4], w[5], w[6]),
            exact: w[7] != 0,
        }
    }

    /// The quota whose burst, count, period, unit, interval and exactness are in `w`, rebuilt
    /// through the constructors' rules (so its arithmetic cannot overflow), or the error those
    /// rules give. Its span is the one [`Quota::build`] computes.
    pub(crate) fn check_words(w: &[u64; 8]) -> Result<Quota, Error> {
        let (burst, count, period, unit, interval) = (w[0], w[1], w[2], w[3], w[4]);
        let exact = match w[7] {
            0 => false,
            1 => true,
            _ => return Err(Error::InvalidArgument),
        };
        if exact {
            let q = Quota::with_min_span(burst, count, period, 0)?;
            if q.unit() != unit || q.interval() != interval {
                return Err(Error::InvalidArgument);
            }
            return Ok(q);
        }
        let expected = (u128::from(period) * u128::from(unit)).div_ceil(u128::from(count.max(1)));
        if burst == 0 || count == 0 || period == 0 || !unit.is_power_of_two() {
            return Err(Error::InvalidArgument);
        }
        if u128::from(interval) != expected {
            return Err(Error::InvalidArgument);
        }
        Quota::build(burst, count, period, unit, interval, false)
    }
}

/// A window quota: at most `limit` cost units per window of `window` ticks, for the fixed window
/// and the sliding window log. Fixed windows start at every tick s with s ≡ `offset` (mod
/// `window`).
///
/// ```
/// use tollgate::WindowQuota;
/// // TikTok Shop: 50 per second, on a millisecond clock.
/// let q = WindowQuota::new(50, 1_000).unwrap();
/// assert_eq!((q.limit(), q.window(), q.offset()), (50, 1_000, 0));
/// let shifted = q.with_offset(250).unwrap();
/// assert_eq!(shifted.offset(), 250);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowQuota {
    limit: u64,
    window: u64,
    offset: u64,
}

impl WindowQuota {
    /// The largest window limit: 2³² − 1 units, so a fixed window's state keeps at least 32
    /// bits for the window index.
    pub const MAX_LIMIT: u64 = u32::MAX as u64;

    /// At most `limit` units per `window` ticks, windows aligned to tick 0.
    ///
    /// Errors: [`Error::ZeroBurst`] for a zero limit, [`Error::ZeroPeriod`] for a zero window,
    /// [`Error::QuotaOverflow`] for a limit above [`WindowQuota::MAX_LIMIT`].
    pub const fn new(limit: u64, window: u64) -> Result<WindowQuota, Error> {
        if limit == 0 {
            return Err(Error::ZeroBurst);
        }
        if window == 0 {
            return Err(Error::ZeroPeriod);
        }
        if limit > WindowQuota::MAX_LIMIT {
            return Err(Error::QuotaOverflow);
        }
        Ok(WindowQuota {
            limit,
            window,
            offset: 0,
        })
    }

    /// At most `limit` units per second on a clock of `ticks_per_second`: exactly
    /// [`WindowQuota::new`]`(limit, ticks_per_second)`.
    ///
    /// ```
    /// use tollgate::WindowQuota;
    /// assert_eq!(WindowQuota::per_second(50, 1_000)?, WindowQuota::new(50, 1_000)?);
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    pub const fn per_second(limit: u64, ticks_per_second: u64) -> Result<WindowQuota, Error> {
        WindowQuota::new(limit, ticks_per_second)
    }

    /// At most `limit` units per minute on a clock of `ticks_per_second`: exactly
    /// [`WindowQuota::new`]`(limit, 60 × ticks_per_second)`, or [`Error::InvalidArgument`] when
    /// a minute's ticks do not fit 64 bits.
    ///
    /// ```
    /// use tollgate::WindowQuota;
    /// assert_eq!(WindowQuota::per_minute(600, 1_000)?, WindowQuota::new(600, 60_000)?);
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    pub const fn per_minute(limit: u64, ticks_per_second: u64) -> Result<WindowQuota, Error> {
        match seconds_to_ticks(60, ticks_per_second) {
            Ok(window) => WindowQuota::new(limit, window),
            Err(e) => Err(e),
        }
    }

    /// At most `limit` units per hour on a clock of `ticks_per_second`: exactly
    /// [`WindowQuota::new`]`(limit, 3600 × ticks_per_second)`, or [`Error::InvalidArgument`]
    /// when an hour's ticks do not fit 64 bits.
    ///
    /// ```
    /// use tollgate::WindowQuota;
    /// assert_eq!(WindowQuota::per_hour(5_000, 1)?, WindowQuota::new(5_000, 3_600)?);
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    pub const fn per_hour(limit: u64, ticks_per_second: u64) -> Result<WindowQuota, Error> {
        match seconds_to_ticks(3600, ticks_per_second) {
            Ok(window) => WindowQuota::new(limit, window),
            Err(e) => Err(e),
        }
    }

    /// At most `limit` units per `window` of time on a clock of `ticks_per_second`: exactly
    /// [`WindowQuota::new`]`(limit, ticks)` where `ticks` is `window` in ticks. Errors: those
    /// of [`duration_to_ticks`], then those of [`WindowQuota::new`].
    ///
    /// ```
    /// use core::time::Duration;
    /// use tollgate::WindowQuota;
    /// let q = WindowQuota::per_duration(10, Duration::from_secs(10), 1_000)?;
    /// assert_eq!(q, WindowQuota::new(10, 10_000)?);
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    pub const fn per_duration(
        limit: u64,
        window: Duration,
        ticks_per_second: u64,
    ) -> Result<WindowQuota, Error> {
        match duration_to_ticks(window, ticks_per_second) {
            Ok(ticks) => WindowQuota::new(limit, ticks),
            Err(e) => Err(e),
        }
    }

    /// The same quota with fixed windows starting at ticks ≡ `offset` (mod window).
    /// [`Error::OffsetOutOfRange`] unless `offset < window`.
    pub const fn with_offset(self, offset: u64) -> Result<WindowQuota, Error> {
        if offset >= self.window {
            return Err(Error::OffsetOutOfRange);
        }
        Ok(WindowQuota { offset, ..self })
    }

    /// A window quota from fields checked before (a key table's memory).
    pub(crate) const fn from_fields(limit: u64, window: u64, offset: u64) -> WindowQuota {
        WindowQuota {
            limit,
            window,
            offset,
        }
    }

    /// N: units allowed per window.
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// W: the window length in ticks.
    pub const fn window(&self) -> u64 {
        self.window
    }

    /// o: where fixed windows start, modulo the window.
    pub const fn offset(&self) -> u64 {
        self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: u64 = 1_000_000_000;

    #[test]
    fn unit_helpers_equal_the_raw_constructors() {
        assert_eq!(Quota::per_minute(40, 40, NS), Quota::new(40, 40, 60 * NS));
        assert_eq!(Quota::per_hour(1, 7, 1_000), Quota::new(1, 7, 3_600_000));
        assert_eq!(WindowQuota::per_second(5, 10), WindowQuota::new(5, 10));
        assert_eq!(WindowQuota::per_minute(5, 10), WindowQuota::new(5, 600));
        assert_eq!(WindowQuota::per_hour(5, 10), WindowQuota::new(5, 36_000));
        // Errors of the raw constructor pass through unchanged.
        assert_eq!(Quota::per_minute(0, 1, 1), Err(Error::ZeroBurst));
        assert_eq!(WindowQuota::per_hour(0, 1), Err(Error::ZeroBurst));
    }

    #[test]
    fn periods_that_overflow_or_use_no_clock_are_refused() {
        assert_eq!(
            Quota::per_minute(1, 1, u64::MAX / 59),
            Err(Error::InvalidArgument)
        );
        assert_eq!(Quota::per_hour(1, 1, 0), Err(Error::InvalidArgument));
        assert_eq!(
            WindowQuota::per_minute(1, u64::MAX),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            duration_to_ticks(Duration::MAX, 1),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            duration_to_ticks(Duration::MAX, u64::MAX),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            duration_to_ticks(Duration::from_secs(1), 0),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            duration_to_ticks(Duration::from_secs(u64::MAX), 1),
            Ok(u64::MAX)
        );
        assert_eq!(
            Quota::per_duration(1, 1, Duration::ZERO, NS),
            Err(Error::ZeroPeriod)
        );
    }

    #[test]
    fn durations_convert_exactly_or_not_at_all() {
        assert_eq!(duration_to_ticks(Duration::from_nanos(1), NS), Ok(1));
        assert_eq!(
            duration_to_ticks(Duration::from_nanos(1), NS - 1),
            Err(Error::InvalidArgument)
        );
        assert_eq!(duration_to_ticks(Duration::from_millis(100), 10), Ok(1));
        assert_eq!(
            duration_to_ticks(Duration::from_millis(100), 15),
            Err(Error::InvalidArgument)
        );
        assert_eq!(duration_to_ticks(Duration::from_millis(200), 15), Ok(3));
        assert_eq!(
            Quota::per_duration(30, 2, Duration::from_secs(1), NS),
            Quota::new(30, 2, NS)
        );
        assert_eq!(
            WindowQuota::per_duration(50, Duration::from_millis(1_500), 1_000),
            WindowQuota::new(50, 1_500)
        );
        assert_eq!(
            WindowQuota::per_duration(50, Duration::from_micros(1_500), 1_000),
            Err(Error::InvalidArgument)
        );
    }

    proptest::proptest! {
        #[test]
        fn per_duration_is_the_raw_constructor_on_whole_ticks(
            burst in 1u64..1_000,
            count in 1u64..1_000,
            tps in 1u64..=NS,
            ticks in 1u64..1 << 40,
        ) {
            // `ticks` ticks of a clock of `tps` per second is ticks·10⁹/tps ns: a Duration
            // exactly when that divides.
            let nanos = u128::from(ticks) * u128::from(NS);
            let d = Duration::from_nanos(u64::try_from(nanos / u128::from(tps)).unwrap());
            let whole = nanos % u128::from(tps) == 0;
            let got = Quota::per_duration(burst, count, d, tps);
            if whole {
                proptest::prop_assert_eq!(got, Quota::new(burst, count, ticks));
                proptest::prop_assert_eq!(
                    WindowQuota::per_duration(burst, d, tps),
                    WindowQuota::new(burst, ticks)
                );
            } else {
                // Refused, or the floor landed on another whole number of ticks exactly.
                match duration_to_ticks(d, tps) {
                    Ok(t) => {
                        proptest::prop_assert_eq!(u128::from(t) * u128::from(NS), d.as_nanos() * u128::from(tps));
                        proptest::prop_assert_eq!(got, Quota::new(burst, count, t));
                    }
                    Err(e) => {
                        proptest::prop_assert_eq!(e, Error::InvalidArgument);
                        proptest::prop_assert_eq!(got, Err(Error::InvalidArgument));
                    }
                }
            }
        }

        #[test]
        fn a_duration_converts_only_when_its_ticks_are_whole(
            nanos in 0u64..u64::MAX,
            tps in 1u64..u64::MAX,
        ) {
            let scaled = u128::from(nanos) * u128::from(tps);
            let got = duration_to_ticks(Duration::from_nanos(nanos), tps);
            let want = if scaled % u128::from(NS) == 0 {
                u64::try_from(scaled / u128::from(NS)).map_err(|_| Error::InvalidArgument)
            } else {
                Err(Error::InvalidArgument)
            };
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn zero_parameters_are_named_errors() {
        assert_eq!(Quota::new(0, 1, 1), Err(Error::ZeroBurst));
        assert_eq!(Quota::new(1, 0, 1), Err(Error::ZeroCount));
        assert_eq!(Quota::new(1, 1, 0), Err(Error::ZeroPeriod));
        assert_eq!(WindowQuota::new(0, 1), Err(Error::ZeroBurst));
        assert_eq!(WindowQuota::new(1, 0), Err(Error::ZeroPeriod));
        assert_eq!(
            WindowQuota::new(1, 10).unwrap().with_offset(10),
            Err(Error::OffsetOutOfRange)
        );
        assert_eq!(
            WindowQuota::new(WindowQuota::MAX_LIMIT + 1, 10),
            Err(Error::QuotaOverflow)
        );
    }

    #[test]
    fn overflowing_products_are_refused() {
        assert_eq!(Quota::new(u64::MAX, 1, 2), Err(Error::QuotaOverflow));
        assert_eq!(
            Quota::with_min_span(u64::MAX, 1, 1, 0).map(|q| q.tolerance()),
            Ok(u64::MAX)
        );
        // P' reduced by the gcd: 2^40 per 2^40 ticks is one per tick.
        assert!(Quota::new(1 << 30, 1 << 40, 1 << 40).is_ok());
    }

    #[test]
    fn exact_span_matches_the_documented_formula() {
        let ns = 1_000_000_000;
        let q = Quota::new(50, 50, ns).unwrap();
        assert_eq!(q.exact_span(), u64::MAX - 50 * 20_000_000);
        let q = Quota::new(10, 3, ns).unwrap();
        assert_eq!(q.exact_span(), (u64::MAX - 10 * ns) / 3);
        let years = |t: u64| t / ns / 86_400 / 365;
        assert_eq!(years(Quota::new(30, 2, ns).unwrap().exact_span()), 584);
        assert_eq!(years(Quota::new(1, 3, ns).unwrap().exact_span()), 194);
        assert_eq!(years(Quota::new(1, 7, ns).unwrap().exact_span()), 83);
        let q = Quota::with_min_span(1, 999_983, ns, 0).unwrap();
        assert_eq!(q.exact_span() / ns / 3600, 5);
    }

    #[test]
    fn a_short_span_is_refused_unless_approximation_is_chosen() {
        let ns = 1_000_000_000;
        assert_eq!(Quota::new(1, 999_983, ns), Err(Error::SpanTooShort));
        let century = 100 * 365 * 86_400 * ns;
        assert_eq!(
            Quota::with_min_span(1, 7, ns, century),
            Err(Error::SpanTooShort)
        );
        let q = Quota::approximate(1, 999_983, ns, century).unwrap();
        assert!(!q.is_exact());
        assert!(q.exact_span() >= century);
        // The approximate emission interval is never shorter than the exact one:
        // interval / unit >= P / C.
        assert!(u128::from(q.interval()) * 999_983 >= u128::from(q.unit()) * u128::from(ns));
        // An exact quota stays exact through approximate().
        assert!(Quota::approximate(30, 2, ns, century).unwrap().is_exact());
    }
}
