//! The leaky bucket (GCRA, docs/semantics.md#leaky-bucket) split between the caller and Redis:
//! what the caller sends the script, and how it names a quota in Redis.
//!
//! The state is the core's word (`tollgate::state::bucket`): one u64 S in units of 1/D tick,
//! S = max(TAT, latest now). The script (`lua/gcra.lua`) does the atomic part with exact
//! two-limb arithmetic: it runs the core's admission test (`bucket::admission`: admitted iff
//! `max(S, now·D) + c·I ≤ now·D + B·I`), stores `max(S, now·D) + c·I` on admission (or the
//! later `now·D`), and returns the S it decided on. The decision and every reported number are
//! then `tollgate::state::bucket::step` on that S: the core's arithmetic, not a copy.

use tollgate::state::bucket::{self, Units};
use tollgate::state::Mode;
use tollgate::Error;

/// Milliseconds per unit on a clock of `ticks_per_second`, for the key's expiry.
pub(crate) fn ms_per_unit(units: &Units, ticks_per_second: u64) -> f64 {
    // Floating point for the TTL only; the script rounds up with a margin.
    #[allow(clippy::cast_precision_loss)]
    let ms = 1000.0 / (ticks_per_second as f64 * units.unit() as f64);
    ms
}

/// The quota's fingerprint stored next to the state: `B:D:I`. Quotas with equal units share
/// it, and decide identically on the same state.
pub(crate) fn fingerprint(units: &Units) -> String {
    format!("{}:{}:{}", units.burst(), units.unit(), units.interval())
}

/// The units named by a fingerprint written by [`fingerprint`], or `None` for anything else.
pub(crate) fn parse_fingerprint(fingerprint: &str) -> Option<Units> {
    let mut parts = fingerprint.split(':').map(str::parse::<u64>);
    let (Some(Ok(b)), Some(Ok(d)), Some(Ok(i)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Units::new(b, d, i).ok()
}

/// What the script needs for one request: the core's admission test, in exact u64 arithmetic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScriptArgs {
    pub(crate) now_units: u64,
    /// `c·I`; 0: only record the time (a peek, or a cost above the burst: `Never`).
    pub(crate) need: u64,
    /// `now·D + B·I − c·I`: the largest S the request is admitted on.
    pub(crate) threshold: u64,
    /// `now·D + B·I`: a full bucket at `now`, what the script repairs a corrupt key to.
    pub(crate) full: u64,
}

/// Validates a request and prepares the script's arguments (the same errors as the core's
/// step, in the same order).
pub(crate) fn script_args(
    units: &Units,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<ScriptArgs, Error> {
    let a = bucket::admission(units, now, cost)?;
    let full = bucket::at_level(units, now, units.burst())?;
    let need = if mode == Mode::Peek { 0 } else { a.need };
    Ok(ScriptArgs {
        now_units: a.now,
        need,
        // need ≤ B·I, so the deadline (= full when need > 0) minus need does not wrap.
        threshold: if need == 0 { 0 } else { a.deadline - need },
        full,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate::Quota;

    #[test]
    fn fingerprints_round_trip() {
        let q = Quota::new(30, 7, 1_000_000_000).unwrap();
        assert_eq!(fingerprint(q.units()), "30:7:1000000000");
        assert_eq!(parse_fingerprint(&fingerprint(q.units())), Some(*q.units()));
        let ns = 1_000_000_000;
        let approximate = Quota::approximate(10, 999_983, ns, 100 * 365 * 86_400 * ns).unwrap();
        assert_eq!(
            parse_fingerprint(&fingerprint(approximate.units())),
            Some(*approximate.units())
        );
        assert_eq!(parse_fingerprint("1:2"), None);
        assert_eq!(parse_fingerprint("1:2:3:4"), None);
        assert_eq!(parse_fingerprint("0:2:3"), None);
        assert_eq!(parse_fingerprint("1:0:3"), None);
        assert_eq!(parse_fingerprint("a:2:3"), None);
        assert_eq!(parse_fingerprint(&format!("2:1:{}", u64::MAX)), None);
    }

    #[test]
    fn script_threshold_is_the_admission_test() {
        let units = *Quota::new(30, 2, 1_000).unwrap().units();
        let a = script_args(&units, 10, 3, Mode::Decide).unwrap();
        // Admit iff max(S, now·D) + c·I ≤ now·D + B·I.
        assert_eq!(a.threshold + a.need, a.now_units + 30 * 500);
        assert_eq!(a.full, a.now_units + 30 * 500);
        assert_eq!(script_args(&units, 10, 31, Mode::Decide).unwrap().need, 0);
        assert_eq!(script_args(&units, 10, 1, Mode::Peek).unwrap().need, 0);
        assert_eq!(
            script_args(&units, 10, 0, Mode::Decide),
            Err(Error::ZeroCost)
        );
        assert_eq!(
            script_args(&units, units.span() + 1, 1, Mode::Decide),
            Err(Error::ClockOutOfRange)
        );
    }
}
