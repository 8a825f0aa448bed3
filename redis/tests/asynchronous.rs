//! The async front end (feature `tokio`): the blocking limiter's decisions, and a stalled Redis
//! never blocks the runtime: other tasks keep running while calls wait for their deadline.
#![cfg(feature = "tokio")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate::{LeakyBucket, Outcome, Quota};
use tollgate_redis::{AsyncRedisLimiter, Config, Request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
async fn async_decisions_equal_the_core() {
    let l = AsyncRedisLimiter::new(common::limiter("async", 1_000));
    let q = Quota::new(3, 1, 1_000).unwrap();
    let reference = LeakyBucket::new(q);
    for now in [0, 0, 0, 0, 500, 1_000, 1_000] {
        assert_eq!(l.decide("k", q, now, 1).await, reference.decide(now, 1));
    }
    assert_eq!(l.peek("k", q, 1_000, 1).await, reference.peek(1_000, 1));
    let batch = [Request::decide("a", q, 0, 2), Request::decide("a", q, 0, 2)];
    let reference = LeakyBucket::new(q);
    let expected = vec![reference.decide(0, 2), reference.decide(0, 2)];
    assert_eq!(l.decide_batch(&batch).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
async fn a_stopped_redis_never_blocks_the_runtime() {
    let server = common::Server::start(common::free_port());
    let timeout = Duration::from_millis(400);
    let mut config = Config::new(common::url_for(server.port), 1_000);
    config.timeout = timeout;
    config.retry_interval = Duration::from_millis(1);
    let l = AsyncRedisLimiter::new(tollgate_redis::RedisLimiter::new(config).unwrap());
    let q = Quota::new(100, 1, 1_000).unwrap();
    assert!(l.decide("k", q, 0, 1).await.unwrap().is_allowed());
    server.signal("-STOP");
    // A ticker on the runtime: it must keep ticking while 16 calls wait on the stopped server.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let start = Instant::now();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let l = l.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let d = l.decide("k", q, 0, 1).await.unwrap();
                (d, t.elapsed())
            })
        })
        .collect();
    for call in calls {
        let (d, took) = call.await.unwrap();
        assert_eq!(d.outcome, Outcome::Overloaded);
        assert!(took < timeout + Duration::from_millis(80), "{took:?}");
    }
    let elapsed = start.elapsed();
    let seen = ticks.load(Ordering::Relaxed);
    ticker.abort();
    // At least a third of the 5 ms ticks the elapsed time allows (scheduling on a loaded
    // machine); a blocked runtime would show none.
    let possible = u64::try_from(elapsed.as_millis() / 5).unwrap();
    assert!(seen * 3 >= possible, "{seen} ticks in {elapsed:?}");
    server.signal("-CONT");
}
