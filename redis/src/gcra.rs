//! The leaky bucket (GCRA, docs/semantics.md#leaky-bucket) split between the caller and Redis.
//!
//! The state is the core's: one u64 S in units of 1/D tick, S = max(TAT, latest now). The script
//! (`lua/gcra.lua`) does the atomic part with exact two-limb arithmetic: it compares S with the
//! caller's precomputed `now·D` and `now·D + B·I − c·I`, stores `max(S, now·D) + c·I` on
//! admission (or the later `now·D`), and returns the S it decided on. Every reported number is a
//! pure function of that S and the request, computed here in u64/u128 by [`step`] — the same
//! formulas as `tollgate::LeakyBucket`, checked field by field against it by the conformance
//! tests.

use tollgate::{Decision, Error, Outcome, Quota};

/// Whether a step spends capacity or only looks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Decide,
    Peek,
}

/// The integers the arithmetic runs on: B, D (units per tick), I (units per request),
/// B·I and the exact span. Two quotas with equal `Params` decide identically.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub(crate) struct Params {
    pub(crate) burst: u64,
    unit: u64,
    interval: u64,
    tolerance: u64,
    span: u64,
}

const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Params {
    fn build(burst: u64, unit: u64, interval: u64) -> Option<Params> {
        if burst == 0 || unit == 0 || interval == 0 {
            return None;
        }
        let tolerance = burst.checked_mul(interval)?;
        Some(Params {
            burst,
            unit,
            interval,
            tolerance,
            span: (u64::MAX - tolerance) / unit,
        })
    }

    /// Recovers D and I from a [`Quota`]'s public getters: exact quotas count in units of
    /// 1/(C/gcd) tick; approximate ones in 1/2^k tick with I = ⌈P·2^k / C⌉ for the largest k
    /// that reaches the quota's span (as `Quota::approximate` chooses). The candidate is checked
    /// against the quota's span and drain time, so a mismatch is an error, never a silent guess.
    pub(crate) fn of(q: &Quota) -> Result<Params, Error> {
        let (burst, count, period) = (q.burst(), q.count(), q.period());
        let matches = |p: &Params| p.span == q.exact_span() && p.drain_ticks() == q.drain_ticks();
        if q.is_exact() {
            let g = gcd(count, period);
            return Params::build(burst, count / g, period / g)
                .filter(matches)
                .ok_or(Error::InvalidArgument);
        }
        (0..64)
            .rev()
            .find_map(|k| {
                let unit = 1u64 << k;
                let interval = (u128::from(period) * u128::from(unit)).div_ceil(u128::from(count));
                Params::build(burst, unit, u64::try_from(interval).ok()?)
                    .filter(|p| p.span >= q.exact_span())
            })
            .filter(matches)
            .ok_or(Error::InvalidArgument)
    }

    fn drain_ticks(&self) -> u64 {
        self.tolerance.div_ceil(self.unit)
    }

    /// Milliseconds per unit on a clock of `ticks_per_second`, for the key's expiry.
    pub(crate) fn ms_per_unit(&self, ticks_per_second: u64) -> f64 {
        // Floating point for the TTL only; the script rounds up with a margin.
        #[allow(clippy::cast_precision_loss)]
        let ms = 1000.0 / (ticks_per_second as f64 * self.unit as f64);
        ms
    }

    /// The quota's fingerprint stored next to the state: `B:D:I`.
    pub(crate) fn fingerprint(&self) -> String {
        format!("{}:{}:{}", self.burst, self.unit, self.interval)
    }

    /// Parses a fingerprint written by [`Params::fingerprint`].
    pub(crate) fn parse(fingerprint: &str) -> Option<Params> {
        let mut parts = fingerprint.split(':').map(str::parse::<u64>);
        let (Some(Ok(b)), Some(Ok(d)), Some(Ok(i)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Params::build(b, d, i)
    }
}

/// What the script needs for one request, all precomputed in exact u64 arithmetic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScriptArgs {
    /// `true`: try to admit; `false`: only record the time (peek, Never).
    pub(crate) decide: bool,
    pub(crate) now_units: u64,
    pub(crate) need: u64,
    pub(crate) threshold: u64,
    /// `now·D + B·I`: a full bucket at `now`, what the script repairs a corrupt key to.
    pub(crate) full: u64,
}

/// Validates a request and prepares the script's arguments.
pub(crate) fn script_args(
    p: &Params,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<ScriptArgs, Error> {
    if cost == 0 {
        return Err(Error::ZeroCost);
    }
    if now > p.span {
        return Err(Error::ClockOutOfRange);
    }
    // now ≤ span = (MAX − B·I) / D, so now·D + B·I fits; cost ≤ B makes c·I ≤ B·I.
    let now_units = now * p.unit;
    let full = now_units + p.tolerance;
    if mode == Mode::Peek || cost > p.burst {
        return Ok(ScriptArgs {
            decide: false,
            now_units,
            need: 0,
            threshold: 0,
            full,
        });
    }
    let need = cost * p.interval;
    Ok(ScriptArgs {
        decide: true,
        now_units,
        need,
        threshold: full - need,
        full,
    })
}

/// A full bucket at `now` (`now·D + B·I`): what a state of unknown meaning is taken to be.
pub(crate) fn full(p: &Params, now: u64) -> Result<u64, Error> {
    if now > p.span {
        return Err(Error::ClockOutOfRange);
    }
    Ok(now * p.unit + p.tolerance)
}

/// One decision on the state `state` the script decided on: the state after it (`None`:
/// unchanged) and the decision, exactly as `tollgate::LeakyBucket` computes them.
pub(crate) fn step(
    state: u64,
    p: &Params,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<(Option<u64>, Decision), Error> {
    if cost == 0 {
        return Err(Error::ZeroCost);
    }
    if now > p.span {
        return Err(Error::ClockOutOfRange);
    }
    let now_units = now * p.unit;
    let limit = p.burst;
    let report = |verdict, s: u64, retry_after| {
        let excess = s.saturating_sub(now_units);
        let used = excess.div_ceil(p.interval).min(limit);
        Decision {
            outcome: verdict,
            verdict,
            limit,
            used,
            remaining: limit - used,
            retry_after,
            reset_after: excess.div_ceil(p.unit),
            flags: 0,
        }
    };
    let later = (now_units > state).then_some(now_units);
    if cost > limit {
        return Ok((later, report(Outcome::Never, state, None)));
    }
    let need = cost * p.interval;
    let base = state.max(now_units);
    let admitted = base
        .checked_add(need)
        .filter(|&next| next <= now_units + p.tolerance);
    match admitted {
        Some(next) if mode == Mode::Decide => {
            Ok((Some(next), report(Outcome::Allowed, next, Some(0))))
        }
        Some(_) => Ok((later, report(Outcome::Allowed, state, Some(0)))),
        None => {
            // ⌈(L + c − B)·P/C⌉ ticks = ⌈(base − now·D + c·I − B·I) / D⌉, in u128.
            let over = u128::from(base - now_units) + u128::from(need) - u128::from(p.tolerance);
            let ticks = u64::try_from(over.div_ceil(u128::from(p.unit))).unwrap_or(u64::MAX);
            let unchanged = if mode == Mode::Peek { later } else { None };
            Ok((unchanged, report(Outcome::Limited, state, Some(ticks))))
        }
    }
}

/// Re-expresses `state` from `old` units in `new` units at `now` — `LeakyBucket::set_quota`'s
/// conversion: the backlog above `now` is converted by level (same number of requests) and by
/// time (empties at the same moment), and the larger kept, since the state cannot tell a backlog
/// from the gap a clock that stepped back leaves. `ClockOutOfRange` if `now` is beyond either
/// span or the result does not fit the new state.
pub(crate) fn convert(state: u64, old: &Params, new: &Params, now: u64) -> Result<u64, Error> {
    if now > old.span || now > new.span {
        return Err(Error::ClockOutOfRange);
    }
    let backlog = u128::from(state.saturating_sub(now * old.unit));
    let by_level = (backlog * u128::from(new.interval)).div_ceil(u128::from(old.interval));
    let by_time = (backlog * u128::from(new.unit)).div_ceil(u128::from(old.unit));
    let converted = u128::from(now * new.unit) + by_level.max(by_time);
    u64::try_from(converted).map_err(|_| Error::ClockOutOfRange)
}

/// `true` if a bucket in `state` would deny a request of `cost` at `now` (the local check of
/// the hybrid mode): a denial on a lower bound of S is a denial on S, since the admission test
/// `max(S, now·D) + c·I ≤ now·D + B·I` only gets harder as S grows.
pub(crate) fn denies(state: u64, p: &Params, now: u64, cost: u64) -> bool {
    matches!(
        step(state, p, now, cost, Mode::Peek),
        Ok((_, d)) if d.verdict == Outcome::Limited
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_recover_exact_and_approximate_quotas() {
        let ns = 1_000_000_000;
        let p = Params::of(&Quota::new(30, 2, ns).unwrap()).unwrap();
        assert_eq!((p.burst, p.unit, p.interval), (30, 1, ns / 2));
        let p = Params::of(&Quota::new(10, 3, ns).unwrap()).unwrap();
        assert_eq!((p.unit, p.interval), (3, ns));
        let century = 100 * 365 * 86_400 * ns;
        for (b, c) in [
            (1, 999_983),
            (10, 999_983),
            (7, 1_000_003),
            (1 << 20, 3_000_017),
        ] {
            let q = Quota::approximate(b, c, ns, century).unwrap();
            assert!(!q.is_exact());
            let p = Params::of(&q).unwrap();
            assert!(p.unit.is_power_of_two());
            assert_eq!(p.span, q.exact_span());
            assert_eq!(p.interval, (ns * p.unit).div_ceil(c));
        }
    }

    #[test]
    fn fingerprints_round_trip() {
        let p = Params::of(&Quota::new(30, 7, 1_000_000_000).unwrap()).unwrap();
        assert_eq!(Params::parse(&p.fingerprint()), Some(p));
        assert_eq!(Params::parse("1:2"), None);
        assert_eq!(Params::parse("1:2:3:4"), None);
        assert_eq!(Params::parse("0:2:3"), None);
        assert_eq!(Params::parse("a:2:3"), None);
    }

    #[test]
    fn script_threshold_is_the_admission_test() {
        let p = Params::of(&Quota::new(30, 2, 1_000).unwrap()).unwrap();
        let a = script_args(&p, 10, 3, Mode::Decide).unwrap();
        // Admit iff max(S, now·D) + c·I ≤ now·D + B·I.
        assert_eq!(a.threshold + a.need, a.now_units + 30 * 500);
        assert!(!script_args(&p, 10, 31, Mode::Decide).unwrap().decide);
        assert!(!script_args(&p, 10, 1, Mode::Peek).unwrap().decide);
        assert_eq!(script_args(&p, 10, 0, Mode::Decide), Err(Error::ZeroCost));
        assert_eq!(
            script_args(&p, p.span + 1, 1, Mode::Decide),
            Err(Error::ClockOutOfRange)
        );
    }

    proptest::proptest! {
        /// The caller-side arithmetic, with the state threaded through by hand as the script
        /// would, equals the core's `LeakyBucket` — decisions, numbers, errors and quota changes.
        #[test]
        fn step_and_convert_match_the_core(
            quotas in proptest::collection::vec((1u64..40, 1u64..12, 1u64..3_000), 2),
            ops in proptest::collection::vec((0usize..2, -50i64..200, 0u64..45, proptest::bool::ANY), 1..80),
        ) {
            let quotas: Vec<Quota> = quotas
                .iter()
                .map(|&(b, c, p)| Quota::with_min_span(b, c, p, 0).unwrap())
                .collect();
            let mut core = tollgate::LeakyBucket::new(quotas[0]);
            let mut state = 0u64;
            let mut params = Params::of(&quotas[0]).unwrap();
            let mut now = 0u64;
            for (qi, dt, cost, peek) in ops {
                now = now.saturating_add_signed(dt);
                let q = quotas[qi];
                if cost != 0 && *core.quota() != q {
                    let converted = core.set_quota(q, now);
                    let new = Params::of(&q).unwrap();
                    let ours = convert(state, &params, &new, now);
                    proptest::prop_assert_eq!(converted.is_ok(), ours.is_ok());
                    if let Ok(s) = ours {
                        state = s;
                        params = new;
                    }
                }
                let mode = if peek { Mode::Peek } else { Mode::Decide };
                let expected = if peek { core.peek(now, cost) } else { core.decide(now, cost) };
                let got = step(state, &params, now, cost, mode);
                proptest::prop_assert_eq!(got.map(|(_, d)| d), expected);
                if let Ok((Some(next), _)) = got {
                    state = next;
                }
            }
        }
    }
}
