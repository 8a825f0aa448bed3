//! Shared pieces of the fuzz targets: input shapes that reach the interesting corners, and the
//! invariants every engine decision keeps. The reference models the differential targets compare
//! the engine to are the core's (`tollgate-models`, core/models/): plain models of
//! docs/semantics.md in `u128` arithmetic, written from docs/semantics.md, not from the engine,
//! so that any divergence between the two is a crash.

pub mod gen;

use tollgate::{Decision, Outcome};

/// Invariants of any decision from a plain (non-shadow, non-table) limiter.
pub fn check_invariants(d: &Decision) {
    assert_eq!(d.outcome, d.verdict, "outcome differs from verdict: {d:?}");
    assert_eq!(d.flags, 0, "flags on a plain decision: {d:?}");
    assert!(d.used <= d.limit, "used above limit: {d:?}");
    assert_eq!(
        d.remaining,
        d.limit - d.used,
        "remaining != limit - used: {d:?}"
    );
    match d.outcome {
        Outcome::Allowed => assert_eq!(d.retry_after, Some(0), "{d:?}"),
        Outcome::Never => assert_eq!(d.retry_after, None, "{d:?}"),
        Outcome::Limited => assert!(d.retry_after.is_some(), "{d:?}"),
        Outcome::Overloaded => {}
    }
}
