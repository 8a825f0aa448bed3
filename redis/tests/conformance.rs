//! Conformance: generated traces (keys, per-key quota changes, costs, times going back and forth,
//! times at and beyond the exact span, odd rates and 64-bit-sized values) run through the core
//! (`LeakyBucket`, `FixedWindow`) and through Redis give identical results: every field of every
//! `Decision`, and the same errors.
//!
//! The reference keeps one core limiter per key, created by the key's first successful request
//! (a key Redis has never written is a new bucket), and applies a quota change with the core's
//! `set_quota` at the request's `now`, after the cost check — as the Redis limiter does.

mod common;

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use tollgate::state::Mode;
use tollgate::{Decision, Error, FixedWindow, LeakyBucket, Quota, WindowQuota};
use tollgate_redis::{Config, Limit, RedisLimiter, Request};

#[derive(Clone, Debug)]
struct Op {
    key: usize,
    quota: usize,
    /// Signed time step, in units of the trace's scale.
    step: i64,
    cost: u64,
    peek: bool,
}

#[derive(Clone, Debug)]
struct Trace<Q> {
    quotas: Vec<Q>,
    /// Where time starts: 0, or just below the first quota's span.
    start: u64,
    scale: u64,
    ops: Vec<Op>,
    /// Batch sizes the Redis side sends the ops in (1 = one by one).
    chunk: usize,
}

const CENTURY_NS: u64 = 100 * 365 * 86_400 * 1_000_000_000;

fn bucket_quota() -> impl Strategy<Value = Quota> {
    prop_oneof![
        // Small everything.
        (1u64..40, 1u64..12, 1u64..2_000)
            .prop_filter_map("fits", |(b, c, p)| Quota::with_min_span(b, c, p, 0).ok()),
        // Odd rational rates on common clocks.
        (
            1u64..100,
            prop::sample::select(vec![3u64, 7, 999_983, 1_000_003, 2, 50]),
            prop::sample::select(vec![
                1_000u64,
                1_000_000,
                1_000_000_000,
                1_000_003,
                86_400_000
            ]),
        )
            .prop_filter_map("fits", |(b, c, p)| Quota::with_min_span(b, c, p, 0).ok()),
        // Large values: products near 2^64, spans near the whole u64 range.
        (1u64..(1 << 32), 1u64..(1 << 40), 1u64..(1 << 31))
            .prop_filter_map("fits", |(b, c, p)| Quota::with_min_span(b, c, p, 0).ok()),
        (1u64..(1 << 20), 1u64..3, (1u64 << 40)..(1 << 43))
            .prop_filter_map("fits", |(b, c, p)| Quota::with_min_span(b, c, p, 0).ok()),
        // Approximate quotas (power-of-two units, rounded-up interval).
        (
            1u64..50,
            prop::sample::select(vec![999_983u64, 1_000_003, 3_000_017])
        )
            .prop_filter_map("fits", |(b, c)| {
                Quota::approximate(b, c, 1_000_000_000, CENTURY_NS).ok()
            }),
    ]
}

fn window_quota() -> impl Strategy<Value = WindowQuota> {
    prop_oneof![
        (1u64..20, 1u64..1_000, any::<u64>()),
        (
            1u64..5,
            prop::sample::select(vec![1u64, 3, 1 << 40, u64::MAX / 3]),
            any::<u64>()
        ),
        (
            prop::sample::select(vec![u64::from(u32::MAX), 1 << 31, 1_000_000]),
            1u64..2_000,
            any::<u64>()
        ),
    ]
    .prop_filter_map("valid", |(n, w, o)| {
        WindowQuota::new(n, w).ok()?.with_offset(o % w).ok()
    })
}

fn ops(keys: usize, quotas: usize, max_cost: u64) -> impl Strategy<Value = Vec<Op>> {
    let cost = prop_oneof![
        6 => 1u64..=max_cost.min(4),
        2 => 1u64..=max_cost,
        1 => Just(max_cost),
        1 => Just(max_cost + 1),
        1 => Just(0u64),
    ];
    let step = prop_oneof![
        6 => 0i64..3,
        2 => -3i64..0,
        1 => -1_000i64..1_000,
    ];
    prop::collection::vec(
        (0..keys, 0..quotas, step, cost, prop::bool::weighted(0.2)).prop_map(
            |(key, quota, step, cost, peek)| Op {
                key,
                quota,
                step,
                cost,
                peek,
            },
        ),
        1..40,
    )
}

fn span_of(limit: &Limit) -> u64 {
    match limit {
        Limit::Bucket(q) => q.exact_span(),
        Limit::Window(q) => FixedWindow::new(*q).span(),
    }
}

fn trace<Q: Clone + std::fmt::Debug + Into<Limit> + 'static>(
    quota: impl Strategy<Value = Q>,
    scale_of: fn(&Q) -> u64,
    capacity_of: fn(&Q) -> u64,
) -> impl Strategy<Value = Trace<Q>> {
    (prop::collection::vec(quota, 1..3), any::<bool>(), 1usize..6).prop_flat_map(
        move |(quotas, near_span, chunk)| {
            let first: Limit = quotas[0].clone().into();
            let scale = scale_of(&quotas[0]).max(1);
            let start = if near_span {
                span_of(&first).saturating_sub(scale.saturating_mul(20))
            } else {
                0
            };
            let max_cost = quotas
                .iter()
                .map(capacity_of)
                .min()
                .unwrap_or(1)
                .min(1 << 20);
            let n = quotas.len();
            ops(3, n, max_cost).prop_map(move |ops| Trace {
                quotas: quotas.clone(),
                start,
                scale,
                ops,
                chunk,
            })
        },
    )
}

/// The times of a trace: a walk from `start` in steps of `scale`, saturating at 0 and u64::MAX.
fn times<Q>(t: &Trace<Q>) -> Vec<u64> {
    let mut now = t.start;
    t.ops
        .iter()
        .map(|op| {
            let delta = t.scale.saturating_mul(op.step.unsigned_abs());
            now = if op.step >= 0 {
                now.saturating_add(delta)
            } else {
                now.saturating_sub(delta)
            };
            now
        })
        .collect()
}

trait Reference {
    type Q: Copy + PartialEq;
    fn new(q: Self::Q) -> Self;
    fn quota(&self) -> Self::Q;
    fn set_quota(&mut self, q: Self::Q, now: u64) -> Result<(), Error>;
    fn decide(&self, now: u64, cost: u64) -> Result<Decision, Error>;
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, Error>;
}

impl Reference for LeakyBucket {
    type Q = Quota;
    fn new(q: Quota) -> Self {
        LeakyBucket::new(q)
    }
    fn quota(&self) -> Quota {
        *LeakyBucket::quota(self)
    }
    fn set_quota(&mut self, q: Quota, now: u64) -> Result<(), Error> {
        LeakyBucket::set_quota(self, q, now)
    }
    fn decide(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        LeakyBucket::decide(self, now, cost)
    }
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        LeakyBucket::peek(self, now, cost)
    }
}

impl Reference for FixedWindow {
    type Q = WindowQuota;
    fn new(q: WindowQuota) -> Self {
        FixedWindow::new(q)
    }
    fn quota(&self) -> WindowQuota {
        *FixedWindow::quota(self)
    }
    fn set_quota(&mut self, q: WindowQuota, now: u64) -> Result<(), Error> {
        FixedWindow::set_quota(self, q, now)
    }
    fn decide(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        FixedWindow::decide(self, now, cost)
    }
    fn peek(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        FixedWindow::peek(self, now, cost)
    }
}

/// Runs the trace through the core: one limiter per key.
fn reference<R: Reference>(t: &Trace<R::Q>, times: &[u64]) -> Vec<Result<Decision, Error>> {
    let mut keys: HashMap<usize, R> = HashMap::new();
    t.ops
        .iter()
        .zip(times)
        .map(|(op, &now)| {
            let q = t.quotas[op.quota];
            if op.cost == 0 {
                return Err(Error::ZeroCost);
            }
            let run = |r: &R| {
                if op.peek {
                    r.peek(now, op.cost)
                } else {
                    r.decide(now, op.cost)
                }
            };
            match keys.get_mut(&op.key) {
                None => {
                    let r = R::new(q);
                    let result = run(&r);
                    if result.is_ok() {
                        keys.insert(op.key, r);
                    }
                    result
                }
                Some(r) => {
                    if r.quota() != q {
                        r.set_quota(q, now)?;
                    }
                    run(r)
                }
            }
        })
        .collect()
}

/// Runs the trace through Redis, in batches of `t.chunk` requests.
fn through_redis<Q: Copy + Into<Limit>>(
    limiter: &RedisLimiter,
    case: &str,
    t: &Trace<Q>,
    times: &[u64],
) -> Vec<Result<Decision, Error>> {
    let names: Vec<String> = (0..3).map(|k| format!("{case}:{k}")).collect();
    let requests: Vec<Request<'_>> = t
        .ops
        .iter()
        .zip(times)
        .map(|(op, &now)| Request {
            key: &names[op.key],
            limit: t.quotas[op.quota].into(),
            now,
            cost: op.cost,
            mode: if op.peek { Mode::Peek } else { Mode::Decide },
        })
        .collect();
    if t.chunk == 1 {
        return requests
            .iter()
            .map(|r| {
                if r.mode == Mode::Peek {
                    limiter.peek(r.key, r.limit, r.now, r.cost)
                } else {
                    limiter.decide(r.key, r.limit, r.now, r.cost)
                }
            })
            .collect();
    }
    requests
        .chunks(t.chunk)
        .flat_map(|c| limiter.decide_batch(c))
        .collect()
}

fn case_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CASE: AtomicU64 = AtomicU64::new(0);
    format!("case{}", CASE.fetch_add(1, Ordering::Relaxed))
}

fn bucket_scale(q: &Quota) -> u64 {
    // About one emission interval, in ticks.
    q.drain_ticks() / q.burst()
}

fn window_scale(q: &WindowQuota) -> u64 {
    (q.window() / 3).max(1)
}

fn shared_limiter(name: &str) -> &'static RedisLimiter {
    // Seconds as ticks: keys live for the whole run (expiry is tested in expiry.rs).
    Box::leak(Box::new(common::limiter(name, 1)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    #[ignore = "needs a Redis server: scripts/test-redis.sh"]
    fn leaky_bucket_traces_decide_identically(t in trace(bucket_quota(), bucket_scale, Quota::burst)) {
        static LIMITER: std::sync::OnceLock<&'static RedisLimiter> = std::sync::OnceLock::new();
        let limiter = LIMITER.get_or_init(|| shared_limiter("bucket"));
        let times = times(&t);
        let expected = reference::<LeakyBucket>(&t, &times);
        let got = through_redis(limiter, &case_name(), &t, &times);
        prop_assert_eq!(limiter.stats().policy_answers, 0);
        prop_assert_eq!(got, expected);
    }

    #[test]
    #[ignore = "needs a Redis server: scripts/test-redis.sh"]
    fn fixed_window_traces_decide_identically(t in trace(window_quota(), window_scale, WindowQuota::limit)) {
        static LIMITER: std::sync::OnceLock<&'static RedisLimiter> = std::sync::OnceLock::new();
        let limiter = LIMITER.get_or_init(|| shared_limiter("window"));
        let times = times(&t);
        let expected = reference::<FixedWindow>(&t, &times);
        let got = through_redis(limiter, &case_name(), &t, &times);
        prop_assert_eq!(limiter.stats().policy_answers, 0);
        prop_assert_eq!(got, expected);
    }
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn shopbase_example_through_redis() {
    const SECOND: u64 = 1_000_000_000;
    let limiter = common::limiter("shopbase", SECOND);
    let q = Quota::new(30, 2, SECOND).unwrap();
    for i in 1..=29 {
        let d = limiter.decide("shop", q, 0, 1).unwrap();
        assert!(d.is_allowed());
        assert_eq!(d.used, i);
    }
    let d = limiter.peek("shop", q, 10 * SECOND, 1).unwrap();
    assert_eq!((d.used, d.limit, d.remaining), (9, 30, 21));
    let d = limiter.decide("burst", q, 0, 30).unwrap();
    assert!(d.is_allowed());
    let d = limiter.decide("burst", q, 0, 1).unwrap();
    assert_eq!(d.outcome, tollgate::Outcome::Limited);
    assert_eq!(d.retry_after, Some(SECOND / 2));
    assert_eq!(d.reset_after, 15 * SECOND);
    let d = limiter.decide("burst", q, 0, 31).unwrap();
    assert_eq!((d.outcome, d.retry_after), (tollgate::Outcome::Never, None));
    assert_eq!(limiter.decide("burst", q, 0, 0), Err(Error::ZeroCost));
    assert_eq!(
        limiter.decide("burst", q, q.exact_span() + 1, 1),
        Err(Error::ClockOutOfRange)
    );
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn shadow_mode_reports_what_enforcement_would_do_and_updates_state() {
    let mut config = Config::new(common::url(), 1_000);
    config.prefix = common::fresh_prefix("shadow");
    config.shadow = true;
    let limiter = RedisLimiter::new(config).unwrap();
    let reference = LeakyBucket::new(Quota::new(3, 1, 1_000).unwrap());
    let q = *reference.quota();
    for now in [0, 0, 0, 0, 0, 500, 1_000, 1_000, 1_000] {
        let got = limiter.decide("k", q, now, 1).unwrap();
        let expected = reference.decide(now, 1).unwrap().shadow();
        assert_eq!(got, expected);
        assert!(got.is_allowed());
    }
    let w = WindowQuota::new(2, 100).unwrap();
    let reference = FixedWindow::new(w);
    for now in [0, 10, 20, 99, 100] {
        let got = limiter.decide("w", w, now, 1).unwrap();
        assert_eq!(got, reference.decide(now, 1).unwrap().shadow());
    }
    assert!(limiter.decide("k", q, 1_000, 1).unwrap().would_limit());
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn a_quota_change_keeps_the_level_like_set_quota() {
    const SECOND: u64 = 1_000;
    let limiter = common::limiter("tiers", SECOND);
    let basic = Quota::new(30, 2, SECOND).unwrap();
    let bigger = Quota::new(60, 2, SECOND).unwrap();
    let premium = Quota::new(60, 4, SECOND).unwrap();
    let tiny = Quota::new(10, 1, SECOND).unwrap();
    let mut reference = LeakyBucket::new(basic);
    for _ in 0..20 {
        assert_eq!(limiter.decide("k", basic, 0, 1), reference.decide(0, 1));
    }
    // Same rate, bigger bucket: the level of 20 carries over.
    reference.set_quota(bigger, 0).unwrap();
    let d = limiter.peek("k", bigger, 0, 1);
    assert_eq!(d, reference.peek(0, 1));
    assert_eq!(d.unwrap().used, 20);
    // Every change is the core's set_quota, whatever its rule (faster rates keep the backlog's
    // time, slower ones its level).
    for q in [premium, tiny, basic] {
        reference.set_quota(q, 0).unwrap();
        assert_eq!(limiter.peek("k", q, 0, 1), reference.peek(0, 1));
    }
    // In one batch, requests on a key under two quotas keep their order.
    let batch = [
        Request::decide("b", basic, 0, 5),
        Request::decide("b", tiny, 0, 2),
        Request::decide("b", basic, 0, 4),
        Request::peek("b", tiny, 0, 1),
    ];
    let mut reference = LeakyBucket::new(basic);
    let mut expected = vec![reference.decide(0, 5)];
    reference.set_quota(tiny, 0).unwrap();
    expected.push(reference.decide(0, 2));
    reference.set_quota(basic, 0).unwrap();
    expected.push(reference.decide(0, 4));
    reference.set_quota(tiny, 0).unwrap();
    expected.push(reference.peek(0, 1));
    assert_eq!(limiter.decide_batch(&batch), expected);
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn states_across_the_scripts_limb_boundaries_match_the_core() {
    // The script splits a u64 into base-10^10 limbs: carries, equal high limbs and the top of
    // the u64 range are where an off-by-one would hide.
    let limiter = common::limiter("limbs", 1);
    let e: u64 = 10_000_000_000;
    let mut starts = vec![0, 1, e - 2, e - 1, e, 2 * e - 1, 1_844_674_407 * e - 3];
    let mut case = 0;
    for (b, c, p) in [(1, 1, 1), (2, 1, 1), (5, 1, 1), (3, 2, 3), (7, 1, 1 << 40)] {
        let q = Quota::with_min_span(b, c, p, 0).unwrap();
        starts.push(q.exact_span() - 2);
        starts.push(q.exact_span());
        for &start in &starts {
            if start > q.exact_span() {
                continue;
            }
            case += 1;
            let key = format!("limb{case}");
            let reference = LeakyBucket::new(q);
            for i in 0..(b + 2) {
                let now = (start + i / 2).min(q.exact_span());
                assert_eq!(
                    limiter.decide(&key, q, now, 1),
                    reference.decide(now, 1),
                    "{q:?} start {start} step {i}"
                );
                assert_eq!(limiter.peek(&key, q, now, 1), reference.peek(now, 1));
            }
            let now = start.saturating_sub(1);
            assert_eq!(limiter.decide(&key, q, now, b), reference.decide(now, b));
        }
    }
}

/// JSON for one `Result<Decision, Error>`: the decision's fields in order (outcomes as the C
/// ABI's numbers), or the error's name.
fn result_json(r: &Result<Decision, Error>) -> String {
    let outcome = |o: tollgate::Outcome| match o {
        tollgate::Outcome::Allowed => 0,
        tollgate::Outcome::Limited => 1,
        tollgate::Outcome::Overloaded => 2,
        tollgate::Outcome::Never => 3,
    };
    match r {
        Ok(d) => format!(
            "[{},{},{},{},{},{},{},{}]",
            outcome(d.outcome),
            outcome(d.verdict),
            d.limit,
            d.used,
            d.remaining,
            d.retry_after.map_or("null".into(), |t| t.to_string()),
            d.reset_after,
            d.flags
        ),
        Err(e) => format!("\"{e:?}\""),
    }
}

fn trace_json<Q>(
    kind: &str,
    t: &Trace<Q>,
    quota: impl Fn(&Q) -> String,
    times: &[u64],
    expected: &[Result<Decision, Error>],
) -> String {
    let quotas: Vec<String> = t.quotas.iter().map(quota).collect();
    let ops: Vec<String> = t
        .ops
        .iter()
        .zip(times)
        .map(|(op, now)| format!("[{},{},{},{},{}]", op.key, op.quota, now, op.cost, op.peek))
        .collect();
    let expected: Vec<String> = expected.iter().map(result_json).collect();
    format!(
        "{{\"kind\":\"{kind}\",\"chunk\":{},\"quotas\":[{}],\"ops\":[{}],\"expected\":[{}]}}",
        t.chunk,
        quotas.join(","),
        ops.join(","),
        expected.join(",")
    )
}

/// Writes generated traces and the core's answers to `$TOLLGATE_TRACE_OUT` (JSON lines), for
/// the Python backend's conformance test (python/tests/test_redis.py): the same generators,
/// from a fixed seed, so Python checks the traces this file checks.
#[test]
#[ignore = "writes the Python suite's traces: scripts/test-redis.sh"]
fn export_traces_for_python() {
    use proptest::strategy::ValueTree;
    let Ok(path) = std::env::var("TOLLGATE_TRACE_OUT") else {
        return;
    };
    let cases: usize = std::env::var("TOLLGATE_TRACE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(128);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut lines = Vec::new();
    let buckets = trace(bucket_quota(), bucket_scale, Quota::burst);
    let windows = trace(window_quota(), window_scale, WindowQuota::limit);
    for _ in 0..cases {
        let t = buckets.new_tree(&mut runner).unwrap().current();
        let at = times(&t);
        let expected = reference::<LeakyBucket>(&t, &at);
        lines.push(trace_json(
            "bucket",
            &t,
            |q| {
                // An approximate quota is rebuilt as `Quota::approximate(.., CENTURY_NS)`; an
                // exact one as `Quota::with_min_span(.., 0)`.
                let span = if q.is_exact() {
                    "null".to_string()
                } else {
                    CENTURY_NS.to_string()
                };
                format!("[{},{},{},{span}]", q.burst(), q.count(), q.period())
            },
            &at,
            &expected,
        ));
        let t = windows.new_tree(&mut runner).unwrap().current();
        let at = times(&t);
        let expected = reference::<FixedWindow>(&t, &at);
        lines.push(trace_json(
            "window",
            &t,
            |q| format!("[{},{},{}]", q.limit(), q.window(), q.offset()),
            &at,
            &expected,
        ));
    }
    std::fs::write(&path, lines.join("\n") + "\n").expect("the trace file is writable");
}
