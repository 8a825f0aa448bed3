//! Concurrency: many nodes (threads with their own connections, one limiter shared by threads,
//! separate processes, hybrid nodes) hammering one key through Redis admit exactly the bound.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use tollgate::{Outcome, Quota};
use tollgate_redis::{HybridLimiter, RedisLimiter};

/// A bucket of `burst` that does not drain during a test (one request per ~2^63 ticks).
fn no_drain(burst: u64) -> Quota {
    Quota::with_min_span(burst, 1, 1 << 40, 0).unwrap()
}

fn hammer(nodes: usize, per_node: u64, decide: impl Fn(usize) -> Outcome + Sync) -> (u64, u64) {
    let admitted = AtomicU64::new(0);
    let denied = AtomicU64::new(0);
    thread::scope(|s| {
        for n in 0..nodes {
            let (admitted, denied, decide) = (&admitted, &denied, &decide);
            s.spawn(move || {
                for _ in 0..per_node {
                    match decide(n) {
                        Outcome::Allowed => admitted.fetch_add(1, Ordering::Relaxed),
                        Outcome::Limited => denied.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected outcome {other:?}"),
                    };
                }
            });
        }
    });
    (admitted.into_inner(), denied.into_inner())
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn threads_as_separate_nodes_admit_exactly_the_burst() {
    let q = no_drain(300);
    let prefix = common::fresh_prefix("threads");
    let nodes: Vec<RedisLimiter> = (0..6).map(|_| common::node(&prefix, 1_000)).collect();
    let (admitted, denied) = hammer(6, 100, |n| nodes[n].decide("hot", q, 0, 1).unwrap().outcome);
    assert_eq!(admitted, 300);
    assert_eq!(denied, 300);
    let d = nodes[0].peek("hot", q, 0, 1).unwrap();
    assert_eq!((d.used, d.remaining), (300, 0));
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn one_limiter_shared_by_threads_admits_exactly_the_burst_with_mixed_costs() {
    let q = no_drain(1_000);
    let limiter = common::limiter("shared", 1_000);
    let spent = AtomicU64::new(0);
    let (admitted, _) = hammer(8, 150, |n| {
        let cost = 1 + (n as u64 % 3);
        let d = limiter.decide("hot", q, 0, cost).unwrap();
        if d.is_allowed() {
            spent.fetch_add(cost, Ordering::Relaxed);
        }
        d.outcome
    });
    // 8 × 150 requests of cost 1..3 ask for far more than 1 000: whatever the interleaving, the
    // units admitted are at most 1 000 and the bucket is left with less than the largest cost.
    let spent = spent.into_inner();
    assert!(spent <= 1_000, "{spent}");
    assert!(spent > 1_000 - 3, "{spent}");
    assert!(admitted > 0);
    assert_eq!(limiter.peek("hot", q, 0, 1).unwrap().used, spent);
    assert_eq!(limiter.stats().policy_answers, 0);
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn separate_processes_admit_exactly_the_burst() {
    for mode in ["shared", "hybrid"] {
        let prefix = common::fresh_prefix("processes");
        let children: Vec<_> = (0..4)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_tollgate-redis-hammer"))
                    .args([&common::url(), &prefix, "hot", "250", "150", mode])
                    .output_spawn()
            })
            .collect();
        let mut admitted = 0;
        let mut denied = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{out:?}");
            let text = String::from_utf8(out.stdout).unwrap();
            let words: Vec<&str> = text.split_whitespace().collect();
            admitted += words[1].parse::<u64>().unwrap();
            denied += words[3].parse::<u64>().unwrap();
        }
        assert_eq!((admitted, denied), (250, 350), "{mode}");
    }
}

trait SpawnPiped {
    fn output_spawn(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_spawn(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[test]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
fn hybrid_nodes_never_admit_more_than_the_shared_limit() {
    // At a fixed now: exactly the burst, and the mirrors absorb most denials.
    let q = no_drain(200);
    let prefix = common::fresh_prefix("hybrid");
    let nodes: Vec<HybridLimiter> = (0..4)
        .map(|_| HybridLimiter::new(common::node(&prefix, 1_000), 64))
        .collect();
    let (admitted, denied) = hammer(4, 150, |n| nodes[n].decide("hot", q, 0, 1).unwrap().outcome);
    assert_eq!((admitted, denied), (200, 400));
    let local: u64 = nodes.iter().map(HybridLimiter::local_denials).sum();
    // Each node asks Redis at most once after the bucket is full, then its mirror knows.
    assert!(local >= 400 - 4, "{local}");

    // With time moving (a shared clock, each request at the next tick): never more than the
    // burst plus what drained, B + ⌊T·C/P⌋, whatever order the requests reach Redis in.
    let q = Quota::new(20, 1, 10).unwrap();
    let clock = Arc::new(AtomicU64::new(0));
    let (admitted, _) = hammer(4, 300, |n| {
        let now = clock.fetch_add(1, Ordering::Relaxed);
        nodes[n].decide("moving", q, now, 1).unwrap().outcome
    });
    let t = clock.load(Ordering::Relaxed);
    assert!(admitted <= 20 + t / 10, "{admitted} > 20 + {t}/10");
    assert!(admitted >= 20, "{admitted}");
}
