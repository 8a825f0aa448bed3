//! Keys expire once their bucket has drained or their window has ended (plus the grace period),
//! so Redis does not grow with every key ever seen; an expired key is a new one, which is what a
//! drained key is.

mod common;

use std::thread::sleep;
use std::time::Duration;

use tollgate::{Quota, WindowQuota};
use tollgate_redis::{Config, RedisLimiter};

fn limiter(grace: Duration) -> RedisLimiter {
    // Milliseconds as ticks: TTLs are the drain times themselves.
    let mut config = Config::new(common::url(), 1_000);
    config.prefix = common::fresh_prefix("expiry");
    config.grace = grace;
    RedisLimiter::new(config).unwrap()
}

fn pttl(l: &RedisLimiter, kind: &str, key: &str) -> i64 {
    let name = format!("{}{kind}:{key}", l.config().prefix);
    redis::cmd("PTTL")
        .arg(name)
        .query(&mut common::connection())
        .unwrap()
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn a_bucket_expires_when_drained() {
    let l = limiter(Duration::ZERO);
    // 2 per 300 ms: two requests fill it; it drains in 300 ms.
    let q = Quota::new(2, 2, 300).unwrap();
    assert!(l.decide("k", q, 0, 2).unwrap().is_allowed());
    let ttl = pttl(&l, "b", "k");
    assert!((100..=302).contains(&ttl), "{ttl}");
    // Caller time and wall time move together: 150 ms later half has drained and the TTL
    // follows the new level.
    sleep(Duration::from_millis(150));
    let d = l.decide("k", q, 150, 1).unwrap();
    assert_eq!((d.used, d.reset_after), (2, 300));
    assert!((100..=302).contains(&pttl(&l, "b", "k")));
    sleep(Duration::from_millis(500));
    assert_eq!(pttl(&l, "b", "k"), -2, "gone once drained");
    // An expired key is a new bucket.
    let d = l.decide("k", q, 650, 1).unwrap();
    assert_eq!((d.used, d.reset_after), (1, 150));
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn a_window_expires_at_its_end_and_grace_extends_both() {
    let l = limiter(Duration::ZERO);
    let w = WindowQuota::new(5, 1_000).unwrap();
    assert!(l.decide("w", w, 800, 1).unwrap().is_allowed());
    let ttl = pttl(&l, "w", "w");
    assert!((50..=201).contains(&ttl), "{ttl}");
    let l = limiter(Duration::from_secs(5));
    assert!(l.decide("w", w, 800, 1).unwrap().is_allowed());
    assert!((5_050..=5_201).contains(&pttl(&l, "w", "w")));
    let q = Quota::new(1, 1, 100).unwrap();
    assert!(l.peek("b", q, 0, 1).unwrap().is_allowed());
    // A key only looked at holds nothing: it lives for the grace period only.
    assert!((4_800..=5_001).contains(&pttl(&l, "b", "b")));
}
