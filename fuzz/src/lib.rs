//! Shared pieces of the fuzz targets: input shapes that reach the interesting corners, and plain
//! reference models of docs/semantics.md in `u128` arithmetic, written from docs/semantics.md, not from the
//! engine, so that any divergence between the two is a crash.

pub mod gen;
pub mod model;

use tollgate::{Decision, Outcome};

/// The numbers of a decision, without the flags, for comparing with a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// What was decided.
    pub outcome: Outcome,
    /// Units in use after the decision.
    pub used: u64,
    /// `limit - used`.
    pub remaining: u64,
    /// `Some(0)` when admitted, `None` for Never.
    pub retry_after: Option<u64>,
    /// Ticks until empty.
    pub reset_after: u64,
    /// The capacity.
    pub limit: u64,
}

impl Report {
    /// The report of an engine decision; also checks the invariants every decision keeps.
    pub fn of(d: &Decision) -> Report {
        check_invariants(d);
        Report {
            outcome: d.outcome,
            used: d.used,
            remaining: d.remaining,
            retry_after: d.retry_after,
            reset_after: d.reset_after,
            limit: d.limit,
        }
    }
}

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
