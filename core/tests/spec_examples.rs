//! The worked examples of docs/semantics.md as named tests, the edge inputs of quota construction, and
//! the concurrency limit against its model, and the reported numbers of each limiter worked out by
//! hand. (Header and pagination unit examples live with the header and pagination tests; the
//! headers of live decisions are checked here.)

use tollgate_models as models;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tollgate::{
    ConcurrencyLimit, Decision, Error, FixedWindow, LeakyBucket, Outcome, Quota, SlidingLog,
    WindowQuota,
};

const SECOND: u64 = 1_000_000_000; // nanosecond ticks
const MS: u64 = 1_000; // millisecond ticks per second

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/spec_examples.txt"
        )))),
        ..ProptestConfig::default()
    }
}

fn shopbase() -> LeakyBucket {
    LeakyBucket::new(Quota::new(30, 2, SECOND).unwrap())
}

fn call_limit(d: &Decision) -> String {
    format!("{}/{}", d.used, d.limit)
}

// docs/semantics.md#leaky-bucket: Leaky bucket.

/// A decision's outcome and reported numbers, for comparing them with one `assert_eq!`.
fn numbers(d: &Decision) -> (Outcome, u64, u64, Option<u64>, u64) {
    (d.outcome, d.used, d.remaining, d.retry_after, d.reset_after)
}

#[test]
fn shopbase_29_at_zero_is_29_of_30_and_a_peek_ten_seconds_later_is_9_of_30() {
    let b = shopbase();
    let mut last = None;
    for _ in 0..29 {
        let d = b.decide(0, 1).unwrap();
        assert_eq!(d.outcome, Outcome::Allowed);
        last = Some(d);
    }
    assert_eq!(call_limit(&last.unwrap()), "29/30");
    let d = b.peek(10 * SECOND, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Allowed);
    assert_eq!((d.used, d.remaining), (9, 21));
    assert_eq!(call_limit(&d), "9/30");
    // The peek spent nothing: still 9 (level 9 drains in 4.5 s).
    assert_eq!(b.peek(10 * SECOND, 1).unwrap().used, 9);
    assert_eq!(d.reset_after, 4 * SECOND + SECOND / 2);
}

#[test]
fn shopbase_31_at_zero_admits_30_and_the_31st_retries_after_half_a_second() {
    let b = shopbase();
    let admitted = (0..31)
        .map(|_| b.decide(0, 1).unwrap())
        .filter(Decision::is_allowed)
        .count();
    assert_eq!(admitted, 30);
    let d = b.decide(0, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Limited);
    assert_eq!(d.retry_after, Some(SECOND / 2));
    assert_eq!(call_limit(&d), "30/30");
    assert_eq!(d.outcome.http_status(), Some(429));
    // A denial costs nothing: exactly half a second later it passes, one tick earlier it does not.
    assert_eq!(b.peek(SECOND / 2 - 1, 1).unwrap().outcome, Outcome::Limited);
    assert_eq!(b.decide(SECOND / 2, 1).unwrap().outcome, Outcome::Allowed);
}

#[test]
fn a_drained_bucket_is_indistinguishable_from_a_new_one() {
    let used = shopbase();
    for _ in 0..30 {
        assert!(used.decide(0, 1).unwrap().is_allowed());
    }
    let fresh = shopbase();
    let later = 15 * SECOND;
    assert!(used.is_drained(later));
    for cost in [1, 7, 22, 1, 30] {
        assert_eq!(used.decide(later, cost), fresh.decide(later, cost));
    }
}

#[test]
fn three_per_second_is_exactly_three_per_second() {
    // C/P = 3 per 10⁹ ticks, not one per 333 333 333 ticks: the third request of each second
    // passes exactly at the second.
    // (A burst of 2 keeps the level above 0 between requests at whole ticks, so no fraction of
    // a tick is lost to an empty bucket.)
    let b = LeakyBucket::new(Quota::new(2, 3, SECOND).unwrap());
    assert!(b.decide(0, 2).unwrap().is_allowed());
    let mut t = 0;
    for k in 1..=3_000u64 {
        let d = b.decide(t, 1).unwrap();
        if !d.is_allowed() {
            t += d.retry_after.unwrap();
        }
        assert!(b.decide(t, 1).unwrap().is_allowed());
        assert_eq!(t, (k * SECOND).div_ceil(3), "request {k}");
    }
    assert_eq!(t, 1_000 * SECOND);
}

// docs/semantics.md#fixed-window: Fixed window (TikTok Shop server: 50 per second).

#[test]
fn tiktok_fixed_window_admits_50_per_window_and_retries_at_the_edge() {
    let w = FixedWindow::new(WindowQuota::new(50, MS).unwrap());
    for i in 0..50 {
        let d = w.decide(200 + i, 1).unwrap();
        assert_eq!(
            (d.outcome, d.used, d.remaining),
            (Outcome::Allowed, i + 1, 49 - i)
        );
    }
    let d = w.decide(300, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Limited);
    assert_eq!((d.retry_after, d.reset_after), (Some(700), 700));
    assert_eq!(w.decide(999, 1).unwrap().outcome, Outcome::Limited);
    let d = w.decide(1_000, 1).unwrap();
    assert_eq!(
        (d.outcome, d.used, d.reset_after),
        (Outcome::Allowed, 1, 1_000)
    );
}

#[test]
fn a_fixed_window_lets_up_to_2n_through_across_an_edge() {
    let w = FixedWindow::new(WindowQuota::new(50, MS).unwrap());
    assert!(w.decide(999, 50).unwrap().is_allowed());
    assert!(w.decide(1_000, 50).unwrap().is_allowed());
    // 100 in the two ticks 999 and 1 000: the documented cost of fixed windows.
    assert_eq!(w.decide(1_001, 1).unwrap().outcome, Outcome::Limited);
}

#[test]
fn a_now_in_an_earlier_window_is_judged_in_the_stored_window() {
    let w = FixedWindow::new(WindowQuota::new(3, 100).unwrap());
    assert!(w.decide(250, 3).unwrap().is_allowed());
    let d = w.decide(120, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Limited);
    // Measured to the end of the stored window [200, 300).
    assert_eq!((d.used, d.retry_after, d.reset_after), (3, Some(180), 180));
}

#[test]
fn a_fixed_window_cost_above_the_limit_is_never() {
    let w = FixedWindow::new(WindowQuota::new(50, MS).unwrap());
    let d = w.decide(0, 51).unwrap();
    assert_eq!((d.outcome, d.retry_after), (Outcome::Never, None));
    assert!(w.decide(0, 50).unwrap().is_allowed());
}

// docs/semantics.md#sliding-window-log: Sliding window log (TikTok Shop client: 50 per second).

#[test]
fn tiktok_sliding_log_holds_50_in_any_half_open_second() {
    let mut log: SlidingLog<50> = SlidingLog::new(WindowQuota::new(50, MS).unwrap()).unwrap();
    for i in 0..50 {
        assert!(log.decide(i * 10, 1).unwrap().is_allowed());
    }
    let d = log.decide(600, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Limited);
    // The entry at 0 leaves (t − 1000, t] at t = 1000.
    assert_eq!(d.retry_after, Some(400));
    assert_eq!(d.reset_after, 490 + MS - 600);
    assert_eq!(log.decide(999, 1).unwrap().outcome, Outcome::Limited);
    let d = log.decide(1_000, 1).unwrap();
    assert_eq!((d.outcome, d.used), (Outcome::Allowed, 50));
    assert_eq!(log.decide(1_000, 1).unwrap().retry_after, Some(10));
}

#[test]
fn a_sliding_log_now_earlier_than_the_newest_entry_is_judged_at_the_newest_entry() {
    let mut log: SlidingLog<2> = SlidingLog::new(WindowQuota::new(2, 10).unwrap()).unwrap();
    assert!(log.decide(100, 2).unwrap().is_allowed());
    // At 50 a fresh timeline would be empty; the log judges it at 100: full.
    let d = log.decide(50, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Limited);
    assert_eq!(d.retry_after, Some(60));
    assert!(log.decide(110, 1).unwrap().is_allowed());
}

/// A client's demand: (gap before it wants to send, cost).
fn demand() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec((0..400u64, 1..=5u64), 1..300)
}

proptest! {
    #![proptest_config(config(256))]

    /// docs/semantics.md#sliding-window-log: a client pacing with a sliding log never receives a 429 from a server with a
    /// fixed window (any alignment), a GCRA with B = N and C/P = N/W, or a sliding window of
    /// the same N and W — when requests arrive when they were sent.
    #[test]
    fn a_client_pacing_with_a_sliding_log_never_gets_a_429(
        limit in 5..=20u64,
        window in 1..=1_000u64,
        offset_raw in any::<u64>(),
        wants in demand(),
    ) {
        let quota = WindowQuota::new(limit, window).unwrap();
        let mut client: SlidingLog<20> = SlidingLog::new(quota).unwrap();
        let fixed = FixedWindow::new(quota.with_offset(offset_raw % window).unwrap());
        let gcra = LeakyBucket::new(Quota::with_min_span(limit, limit, window, 0).unwrap());
        let mut server_log: SlidingLog<20> = SlidingLog::new(quota).unwrap();
        let mut t = 0u64;
        for (i, &(gap, cost)) in wants.iter().enumerate() {
            t += gap;
            let send = client.next_admit_time(t, cost).unwrap();
            prop_assert!(client.decide(send, cost).unwrap().is_allowed());
            t = send;
            prop_assert!(fixed.decide(send, cost).unwrap().is_allowed(), "fixed window, request {}", i);
            prop_assert!(gcra.decide(send, cost).unwrap().is_allowed(), "GCRA, request {}", i);
            prop_assert!(server_log.decide(send, cost).unwrap().is_allowed(), "sliding log, request {}", i);
        }
    }
}

// docs/semantics.md#concurrency-limit: Concurrency.

#[test]
fn a_release_without_acquire_is_not_acquired_and_never_underflows() {
    let c = ConcurrencyLimit::new(2);
    assert_eq!(c.release(), Err(Error::NotAcquired));
    assert_eq!(c.in_flight(), 0);
    assert!(c.try_acquire().is_allowed());
    assert_eq!(c.release(), Ok(()));
    assert_eq!(c.release(), Err(Error::NotAcquired));
    assert_eq!(c.in_flight(), 0);
    assert_eq!(c.try_acquire().used, 1);
}

#[test]
fn a_concurrency_denial_is_overloaded_503_not_a_rate_limit() {
    let c = ConcurrencyLimit::new(1);
    let permit = c.acquire().unwrap();
    let d = c.acquire().unwrap_err();
    assert_eq!(d.outcome, Outcome::Overloaded);
    assert_eq!(d.outcome.http_status(), Some(503));
    assert!(d.outcome.is_retryable());
    assert_eq!(
        (d.limit, d.used, d.remaining, d.retry_after),
        (1, 1, 0, None)
    );
    permit.release();
    assert_eq!(c.in_flight(), 0);
    assert!(c.acquire().is_ok());
    // The permit above was a temporary: dropped at once, it released exactly once.
    assert_eq!(c.in_flight(), 0);
    assert_eq!(c.release(), Err(Error::NotAcquired));
}

#[test]
fn a_concurrency_limit_of_zero_sheds_everything() {
    let c = ConcurrencyLimit::new(0);
    let d = c.try_acquire();
    assert_eq!(
        (d.outcome, d.limit, d.used, d.remaining),
        (Outcome::Overloaded, 0, 0, 0)
    );
    assert_eq!(c.release(), Err(Error::NotAcquired));
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn the_concurrency_limit_equals_the_counter_model(
        max in prop_oneof![0..=4u32, Just(u32::MAX)],
        ops in prop::collection::vec(0..3u8, 1..200),
    ) {
        let engine = ConcurrencyLimit::new(max);
        let mut model = models::Concurrency::new(max);
        let mut held = Vec::new();
        for op in ops {
            match op {
                0 => prop_assert_eq!(engine.try_acquire(), model.try_acquire()),
                1 => prop_assert_eq!(engine.release(), model.release()),
                _ => {
                    // A permit, kept until a later release-by-drop.
                    let want = model.try_acquire();
                    match engine.acquire() {
                        Ok(p) => {
                            prop_assert!(want.is_allowed());
                            held.push(p);
                        }
                        Err(d) => prop_assert_eq!(d, want),
                    }
                    if held.len() > 2 {
                        // A permit releases once; if a bare release took its slot, it finds
                        // none in flight and the counter stays at 0, as in the model.
                        drop(held.remove(0));
                        let _ = model.release();
                    }
                }
            }
            prop_assert_eq!(engine.in_flight(), model.in_flight);
            prop_assert!(engine.in_flight() <= max);
        }
        for permit in held {
            drop(permit);
            let _ = model.release();
            prop_assert_eq!(engine.in_flight(), model.in_flight);
        }
    }
}

// docs/semantics.md#shadow-mode: Shadow mode.

#[test]
fn shadow_mode_reports_the_refusal_but_allows_and_spends_as_if_enforced() {
    let b = LeakyBucket::new(Quota::new(1, 1, SECOND).unwrap());
    let d = b.decide(0, 1).unwrap().shadow();
    assert_eq!(
        (d.outcome, d.verdict, d.would_limit()),
        (Outcome::Allowed, Outcome::Allowed, false)
    );
    let d = b.decide(0, 1).unwrap().shadow();
    assert_eq!((d.outcome, d.verdict), (Outcome::Allowed, Outcome::Limited));
    assert!(d.would_limit());
    assert_eq!(d.flags & Decision::SHADOW, Decision::SHADOW);
    assert_eq!(d.retry_after, Some(SECOND));
    // The first request was spent as if enforced; the refused one changed nothing.
    assert_eq!(b.peek(SECOND, 1).unwrap().used, 0);
}

// docs/semantics.md#quotas: Edge inputs of quota construction: each a named error, no panic.

#[test]
fn zero_quota_parameters_are_named_errors() {
    assert_eq!(Quota::new(0, 2, SECOND), Err(Error::ZeroBurst));
    assert_eq!(Quota::new(30, 0, SECOND), Err(Error::ZeroCount));
    assert_eq!(Quota::new(30, 2, 0), Err(Error::ZeroPeriod));
    assert_eq!(Quota::new(0, 0, 0), Err(Error::ZeroBurst));
    assert_eq!(Quota::approximate(30, 0, SECOND, 1), Err(Error::ZeroCount));
    assert_eq!(WindowQuota::new(0, MS), Err(Error::ZeroBurst));
    assert_eq!(WindowQuota::new(50, 0), Err(Error::ZeroPeriod));
}

#[test]
fn overflowing_quota_parameters_are_named_errors() {
    // B·P' beyond 64 bits.
    assert_eq!(Quota::new(u64::MAX, 1, 2), Err(Error::QuotaOverflow));
    assert_eq!(Quota::new(1 << 33, 1, 1 << 31), Err(Error::QuotaOverflow));
    assert_eq!(
        Quota::approximate(u64::MAX, 1, u64::MAX, 0),
        Err(Error::QuotaOverflow)
    );
    // The gcd is taken first: 2⁴⁰ per 2⁴⁰ ticks is one per tick, and fits.
    assert!(Quota::new(1 << 30, 1 << 40, 1 << 40).is_ok());
    // A window limit above 2³² − 1.
    assert_eq!(WindowQuota::new(1 << 32, MS), Err(Error::QuotaOverflow));
    assert_eq!(
        WindowQuota::new(50, MS).unwrap().with_offset(MS),
        Err(Error::OffsetOutOfRange)
    );
}

#[test]
fn a_short_exact_span_is_refused_unless_approximation_is_chosen() {
    assert_eq!(Quota::new(10, 999_983, SECOND), Err(Error::SpanTooShort));
    let q = Quota::approximate(10, 999_983, SECOND, Quota::DEFAULT_MIN_SPAN).unwrap();
    assert!(!q.is_exact());
    assert!(q.exact_span() >= Quota::DEFAULT_MIN_SPAN);
    let b = LeakyBucket::new(q);
    assert_eq!(b.decide(q.exact_span() + 1, 1), Err(Error::ClockOutOfRange));
    assert!(b.decide(q.exact_span(), 10).unwrap().is_allowed());
}

#[test]
fn every_error_names_its_problem() {
    let all = [
        Error::ZeroBurst,
        Error::ZeroCount,
        Error::ZeroPeriod,
        Error::QuotaOverflow,
        Error::SpanTooShort,
        Error::OffsetOutOfRange,
        Error::ZeroCost,
        Error::ClockOutOfRange,
        Error::CapacityExceeded,
        Error::NotAcquired,
        Error::BufferTooSmall(7),
        Error::Malformed,
        Error::InvalidArgument,
    ];
    let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
    for (e, text) in all.iter().zip(&texts) {
        assert!(!text.is_empty(), "{e:?}");
        assert_eq!(
            texts.iter().filter(|t| *t == text).count(),
            1,
            "{e:?} is ambiguous"
        );
    }
    assert!(texts[10].contains('7'));
}

// Audit of docs/semantics.md: the reported numbers of each limiter, computed by hand from the rules.

#[test]
fn a_fractional_level_reports_used_and_reset_after_rounded_up() {
    // B = 3, C = 2 per P = 3 ticks: the level drains 2/3 per tick.
    let b = LeakyBucket::new(Quota::new(3, 2, 3).unwrap());
    let d = b.decide(0, 3).unwrap();
    // L = 3; reset_after = ⌈3 · 3 / 2⌉ = ⌈4.5⌉ = 5.
    assert_eq!(d.limit, 3);
    assert_eq!(numbers(&d), (Outcome::Allowed, 3, 0, Some(0), 5));
    // At t = 1: L = 3 − 2/3 = 7/3, so used = ⌈7/3⌉ = 3, remaining = 0,
    // reset_after = ⌈7/3 · 3/2⌉ = ⌈3.5⌉ = 4, and a cost-1 request waits
    // ⌈(7/3 + 1 − 3) · 3/2⌉ = ⌈0.5⌉ = 1 tick.
    let d = b.peek(1, 1).unwrap();
    assert_eq!(numbers(&d), (Outcome::Limited, 3, 0, Some(1), 4));
    // At t = 2: L = 3 − 4/3 = 5/3; 5/3 + 1 = 8/3 ≤ 3 is admitted; after it L = 8/3:
    // used = ⌈8/3⌉ = 3, remaining 0, reset_after = ⌈8/3 · 3/2⌉ = 4.
    let d = b.decide(2, 1).unwrap();
    assert_eq!(numbers(&d), (Outcome::Allowed, 3, 0, Some(0), 4));
}

#[test]
fn a_gcra_retry_after_is_the_excess_of_the_cost_times_p_over_c() {
    let b = shopbase();
    assert!(b.decide(0, 30).unwrap().is_allowed());
    // Cost 5 on a full bucket: ⌈(30 + 5 − 30) · 10⁹ / 2⌉ = 2.5 s; the denial reports the
    // unchanged level: used 30, remaining 0, reset_after = ⌈30 · 10⁹ / 2⌉ = 15 s.
    let d = b.decide(0, 5).unwrap();
    assert_eq!(
        numbers(&d),
        (Outcome::Limited, 30, 0, Some(5 * SECOND / 2), 15 * SECOND)
    );
    // The denial cost nothing: exactly 2.5 s later cost 5 passes, one tick earlier it does not.
    assert_eq!(
        b.peek(5 * SECOND / 2 - 1, 5).unwrap().outcome,
        Outcome::Limited
    );
    let d = b.decide(5 * SECOND / 2, 5).unwrap();
    // At 2.5 s: L = 30 − 5 = 25, + 5 = 30 ≤ 30: used 30, reset_after 15 s again.
    assert_eq!(
        (d.outcome, d.used, d.reset_after),
        (Outcome::Allowed, 30, 15 * SECOND)
    );
}

#[test]
fn a_gcra_never_on_a_partly_full_bucket_reports_the_unchanged_level() {
    let b = shopbase();
    assert!(b.decide(0, 10).unwrap().is_allowed());
    // At 1 s: L = 10 − 2 = 8. Cost 31 > B = 30 is Never; used 8, remaining 22,
    // reset_after = 8 · 10⁹ / 2 = 4 s, retry_after "never".
    let d = b.decide(SECOND, 31).unwrap();
    assert_eq!(d.limit, 30);
    assert_eq!(numbers(&d), (Outcome::Never, 8, 22, None, 4 * SECOND));
    assert_eq!(d.outcome.http_status(), Some(429));
    assert!(!d.outcome.is_retryable());
    // State unchanged: 22 more pass at 1 s, the 23rd does not.
    assert!(b.decide(SECOND, 22).unwrap().is_allowed());
    assert_eq!(b.decide(SECOND, 1).unwrap().outcome, Outcome::Limited);
}

#[test]
fn a_fixed_window_denial_uses_up_nothing() {
    let w = FixedWindow::new(WindowQuota::new(3, 100).unwrap());
    let d = w.decide(10, 2).unwrap();
    // count 2 in [0, 100): used 2, remaining 3 − 2 = 1, reset_after 100 − 10 = 90.
    assert_eq!(numbers(&d), (Outcome::Allowed, 2, 1, Some(0), 90));
    // 2 + 2 > 3: denied, retry and reset at the window's end, 100 − 20 = 80.
    let d = w.decide(20, 2).unwrap();
    assert_eq!(numbers(&d), (Outcome::Limited, 2, 1, Some(80), 80));
    // The denial spent nothing: 2 + 1 ≤ 3 passes.
    let d = w.decide(30, 1).unwrap();
    assert_eq!(
        (d.outcome, d.used, d.remaining, d.reset_after),
        (Outcome::Allowed, 3, 0, 70)
    );
}

#[test]
fn a_sliding_log_denial_records_nothing() {
    let mut log: SlidingLog<3> = SlidingLog::new(WindowQuota::new(3, 100).unwrap()).unwrap();
    assert!(log.decide(0, 2).unwrap().is_allowed());
    // At 10: 2 + 2 > 3. Two units must leave: the entry at 0 leaves (t − 100, t] at t = 100,
    // so retry_after = 90; the window empties then too: reset_after = 90.
    let d = log.decide(10, 2).unwrap();
    assert_eq!(numbers(&d), (Outcome::Limited, 2, 1, Some(90), 90));
    // Had the denial been recorded, 2 + 2 + 1 > 3; it was not: 2 + 1 ≤ 3 passes, and the
    // window now empties when the entry at 10 leaves, at 110: reset_after 110 − 10 = 100.
    let d = log.decide(10, 1).unwrap();
    assert_eq!(
        (d.outcome, d.used, d.remaining, d.reset_after),
        (Outcome::Allowed, 3, 0, 100)
    );
    // At 100 only the unit at 10 remains: 1 + 2 ≤ 3.
    let d = log.decide(100, 2).unwrap();
    assert_eq!((d.outcome, d.used), (Outcome::Allowed, 3));
}

#[test]
fn a_sliding_log_peek_raises_the_time_an_earlier_now_is_judged_at() {
    let mut log: SlidingLog<2> = SlidingLog::new(WindowQuota::new(2, 10).unwrap()).unwrap();
    assert!(log.decide(0, 2).unwrap().is_allowed());
    // A peek at 20 sees the window (10, 20] empty.
    let d = log.peek(20, 1).unwrap();
    assert_eq!((d.outcome, d.used), (Outcome::Allowed, 0));
    // A decision at 5 is judged at 20, the latest time seen (a peek counts): (10, 20] is empty,
    // so it passes, where (−5, 5] would have held the 2 units at 0.
    let d = log.decide(5, 1).unwrap();
    assert_eq!((d.outcome, d.used), (Outcome::Allowed, 1));
}

#[test]
fn outcomes_map_to_http_and_retryability_as_documented() {
    assert_eq!(Outcome::Allowed.http_status(), None);
    assert_eq!(Outcome::Limited.http_status(), Some(429));
    assert_eq!(Outcome::Overloaded.http_status(), Some(503));
    assert_eq!(Outcome::Never.http_status(), Some(429));
    // Retry only what can succeed: 429 Limited and 503 Overloaded, never a Never.
    assert!(Outcome::Limited.is_retryable());
    assert!(Outcome::Overloaded.is_retryable());
    assert!(!Outcome::Never.is_retryable());
    assert!(!Outcome::Allowed.is_retryable());
}

#[test]
fn shopbase_headers_from_live_decisions() {
    use tollgate::header::{
        write_ratelimit, write_ratelimit_policy_window, write_retry_after,
        write_shop_api_call_limit,
    };
    let b = shopbase();
    let mut buf = [0u8; 64];
    // 22 admitted: "22/30".
    let d = b.decide(0, 22).unwrap();
    let n = write_shop_api_call_limit(&d, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"22/30");
    assert!(b.decide(0, 8).unwrap().is_allowed());
    // At 0.25 s: L = 30 − 0.5 = 29.5: used 30, r = 0, reset_after = 29.5 / 2 s = 14.75 s,
    // t = ⌈14.75⌉ = 15. A cost-1 request waits ⌈0.5 · 10⁹ / 2⌉ = 0.25 s: Retry-After ⌈0.25⌉ = 1.
    let d = b.decide(SECOND / 4, 1).unwrap();
    assert_eq!(
        numbers(&d),
        (
            Outcome::Limited,
            30,
            0,
            Some(SECOND / 4),
            14 * SECOND + 3 * SECOND / 4
        )
    );
    let n = write_ratelimit("shopbase", &d, SECOND, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"\"shopbase\";r=0;t=15");
    let n = write_retry_after(&d, SECOND, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"1");
    // A window of 1.5 s rounds up to w = 2.
    let q = WindowQuota::new(50, 1_500).unwrap();
    let n = write_ratelimit_policy_window("tiktok", &q, MS, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"\"tiktok\";q=50;w=2");
}

#[test]
fn the_full_table_policy_defaults_to_fail_closed() {
    // docs/semantics.md#key-tables: fail-closed (Overloaded, 503) is the default policy.
    assert_eq!(
        tollgate::table::FullPolicy::default(),
        tollgate::table::FullPolicy::FailClosed
    );
}

#[test]
fn a_peek_of_a_cost_above_the_burst_is_never_and_changes_nothing() {
    let b = shopbase();
    assert!(b.decide(0, 4).unwrap().is_allowed());
    // Cost 31 > B = 30: Never even as a peek. At 1 s, L = 4 − 2 = 2: used 2, remaining 28,
    // reset_after = 2 · 10⁹ / 2 = 1 s.
    let d = b.peek(SECOND, 31).unwrap();
    assert_eq!(numbers(&d), (Outcome::Never, 2, 28, None, SECOND));
    // Nothing spent: 28 more pass at 1 s, and then the bucket is full.
    assert!(b.decide(SECOND, 28).unwrap().is_allowed());
    assert_eq!(b.decide(SECOND, 1).unwrap().outcome, Outcome::Limited);
}
