//! Hybrid mode on one node: the mirror equals the shared state, so every answer — local denials
//! included — is exactly the core's, numbers and all; and the mirror really absorbs denials.

mod common;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use tollgate::{FixedWindow, LeakyBucket, Outcome, Quota, WindowQuota};
use tollgate_redis::HybridLimiter;

fn hybrid(name: &str) -> HybridLimiter {
    HybridLimiter::new(common::limiter(name, 1), 1_024)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    #[ignore = "needs a Redis server: scripts/test-redis.sh"]
    fn a_single_hybrid_node_decides_exactly_like_the_core(
        burst in 1u64..8,
        count in 1u64..4,
        period in 1u64..50,
        steps in prop::collection::vec((-20i64..40, 1u64..4, any::<bool>()), 1..60),
    ) {
        let h = hybrid("single");
        let key = format!("k{burst}:{count}:{period}:{}", steps.len());
        let q = Quota::with_min_span(burst, count, period, 0).unwrap();
        let bucket = LeakyBucket::new(q);
        let wq = WindowQuota::new(burst, period).unwrap();
        let window = FixedWindow::new(wq);
        let mut now: u64 = 1_000;
        for (step, cost, windowed) in steps {
            now = now.saturating_add_signed(step);
            if windowed {
                prop_assert_eq!(h.decide(&key, wq, now, cost), window.decide(now, cost));
            } else {
                prop_assert_eq!(h.decide(&key, q, now, cost), bucket.decide(now, cost));
            }
        }
        prop_assert_eq!(h.shared().stats().policy_answers, 0);
    }
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn the_mirror_absorbs_denials_without_a_round_trip() {
    let h = hybrid("absorb");
    let q = Quota::new(5, 1, 100).unwrap();
    let reference = LeakyBucket::new(q);
    for _ in 0..5 {
        assert_eq!(h.decide("k", q, 0, 1), reference.decide(0, 1));
    }
    let trips = h.shared().stats().round_trips;
    for now in [0, 10, 50, 99] {
        let d = h.decide("k", q, now, 1).unwrap();
        assert_eq!(d.outcome, Outcome::Limited);
        assert_eq!(Ok(d), reference.decide(now, 1));
    }
    assert_eq!(h.shared().stats().round_trips, trips, "answered locally");
    assert_eq!(h.local_denials(), 4);
    // Admissions always go to Redis.
    assert!(h.decide("k", q, 100, 1).unwrap().is_allowed());
    assert_eq!(h.shared().stats().round_trips, trips + 1);
    // Another quota for the key is never judged by the mirror (and converting the key's state
    // takes a second, compare-and-set round trip).
    let other = Quota::new(50, 1, 100).unwrap();
    assert!(h.decide("k", other, 100, 1).unwrap().is_allowed());
    assert_eq!(h.shared().stats().round_trips, trips + 3);
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn a_bounded_mirror_forgets_safely() {
    let h = HybridLimiter::new(common::limiter("bounded", 1), 2);
    let q = Quota::new(1, 1, 1_000).unwrap();
    let reference: Vec<LeakyBucket> = (0..5).map(|_| LeakyBucket::new(q)).collect();
    for round in 0..3 {
        for (k, r) in reference.iter().enumerate() {
            let now = round * 10;
            assert_eq!(h.decide(&format!("k{k}"), q, now, 1), r.decide(now, 1));
        }
    }
}
