//! Regression tests for the bugs the fuzz targets in `fuzz/` found, one test per bug, each named
//! after what it proves. The fuzz target and the input shape that found it are in the comment.

use tollgate::{LeakyBucket, Outcome, Quota};

/// `fuzz/fuzz_targets/bucket_diff.rs`, replay check: a quota change at a `now` earlier than the
/// latest time the bucket has seen folds the gap into the level at the *old* rate and then
/// drains it at the *new* one. When the new rate is faster, a request at the latest time is
/// admitted although the true timeline (the change made at the latest time, docs/semantics.md#backwards-clocks) denies it.
#[test]
fn set_quota_at_an_earlier_now_never_admits_more_than_at_the_latest_time() {
    let mut bucket = LeakyBucket::new(Quota::with_min_span(1, 1, 100, 0).unwrap());
    assert!(bucket.decide(1_000, 1).unwrap().is_allowed());
    // The clock steps back to 0 for the quota change: 1 per tick instead of 1 per 100 ticks.
    bucket
        .set_quota(Quota::with_min_span(1, 1, 1, 0).unwrap(), 0)
        .unwrap();
    // Changed at 1 000 instead, the level of 1 carries over and this request is denied.
    let d = bucket.decide(1_000, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Limited, "{d:?}");
}

/// `fuzz/fuzz_targets/bucket_diff.rs`, replay check: `set_quota` used to cap a level that does not
/// fit the new quota's 64-bit state, and a second change carried the *capped* level on: two
/// changes at the same instant turned a full bucket of 1 000 into a level of 4. Now a change the
/// new quota cannot represent is refused and changes nothing.
#[test]
fn a_level_too_large_for_an_intermediate_quota_is_not_lost() {
    let fast = Quota::new(1_000, 1, 1).unwrap();
    let glacial = Quota::with_min_span(1, 1, 1 << 62, 0).unwrap();
    let mut bucket = LeakyBucket::new(fast);
    assert!(bucket.decide(0, 1_000).unwrap().is_allowed());
    assert_eq!(
        bucket.set_quota(glacial, 0),
        Err(tollgate::Error::ClockOutOfRange)
    );
    bucket.set_quota(fast, 0).unwrap();
    // No time has passed: the bucket still holds 1 000.
    let d = bucket.peek(0, 1).unwrap();
    assert_eq!((d.outcome, d.used), (Outcome::Limited, 1_000), "{d:?}");
}
