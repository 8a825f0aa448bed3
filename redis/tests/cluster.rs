//! Redis Cluster: the local 3-primary cluster scripts/test-redis.sh starts
//! (`TOLLGATE_REDIS_CLUSTER` = its nodes, `TOLLGATE_REDIS_CLUSTER_DIR` = their directories).
//! Keys spread over every primary decide exactly as the core, batches included; a primary
//! killed with SIGKILL fails only the keys of its slots (by the policy, within the timeout)
//! while the others keep their exact answers, and decisions resume when it is back.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tollgate::state::Mode;
use tollgate::{Decision, Error, FixedWindow, LeakyBucket, Outcome, Quota, WindowQuota};
use tollgate_redis::{Config, FailurePolicy, Limit, RedisLimiter, Request};

fn nodes() -> Vec<String> {
    std::env::var("TOLLGATE_REDIS_CLUSTER")
        .expect("TOLLGATE_REDIS_CLUSTER: run these tests through scripts/test-redis.sh")
        .split(',')
        .map(str::to_owned)
        .collect()
}

fn cluster_limiter(prefix: &str, timeout: Duration) -> RedisLimiter {
    let urls: Vec<String> = nodes().iter().map(|n| format!("redis://{n}/")).collect();
    let mut config = Config::new(urls.join(","), 1_000);
    config.cluster = true;
    prefix.clone_into(&mut config.prefix);
    config.timeout = timeout;
    config.retry_interval = Duration::from_millis(100);
    config.policy = FailurePolicy::Closed;
    RedisLimiter::new(config).unwrap()
}

fn connect(node: &str) -> redis::Connection {
    redis::Client::open(format!("redis://{node}/"))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
        .expect("cluster node is up")
}

/// The node (of `nodes()`) that holds `key`'s slot.
fn owner(key: &str) -> String {
    let mut con = connect(&nodes()[0]);
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut con)
        .unwrap();
    let slots: Vec<(i64, i64, (String, i64))> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query::<Vec<redis::Value>>(&mut con)
        .unwrap()
        .into_iter()
        .map(|v| {
            let redis::Value::Array(f) = v else { panic!() };
            let first: i64 = redis::from_redis_value(&f[0]).unwrap();
            let last: i64 = redis::from_redis_value(&f[1]).unwrap();
            let redis::Value::Array(p) = &f[2] else {
                panic!()
            };
            let host: String = redis::from_redis_value(&p[0]).unwrap();
            let port: i64 = redis::from_redis_value(&p[1]).unwrap();
            (first, last, (host, port))
        })
        .collect();
    let (_, _, (host, port)) = slots
        .iter()
        .find(|(a, b, _)| (*a..=*b).contains(&slot))
        .expect("every slot is covered");
    format!("{host}:{port}")
}

/// A deterministic mixed trace on `keys` keys: quota changes, costs 0..=B+1, peeks, time going
/// back and forth.
fn ops(n: usize, keys: usize, quotas: usize) -> Vec<(usize, usize, u64, u64, bool)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut now = 10_000u64;
    (0..n)
        .map(|_| {
            let r = next();
            now = match r % 10 {
                0 => now.saturating_sub(r % 700),
                1..=3 => now + r % 900,
                _ => now,
            };
            let cost = (r >> 8) % 7;
            (
                usize::try_from((r >> 16) % keys as u64).unwrap(),
                usize::try_from((r >> 24) % quotas as u64).unwrap(),
                now,
                cost,
                (r >> 32) % 5 == 0,
            )
        })
        .collect()
}

type Op = (usize, usize, u64, u64, bool);

/// The core's answers: one limiter per key, created by the key's first successful request, a
/// quota change applied with `set_quota` at the request's `now` (as conformance.rs does).
fn expected_buckets(trace: &[Op], quotas: &[Quota]) -> Vec<Result<Decision, Error>> {
    let mut keys: HashMap<usize, LeakyBucket> = HashMap::new();
    trace
        .iter()
        .map(|&(k, q, now, cost, peek)| {
            if cost == 0 {
                return Err(Error::ZeroCost);
            }
            let q = quotas[q];
            let run = |b: &LeakyBucket| {
                if peek {
                    b.peek(now, cost)
                } else {
                    b.decide(now, cost)
                }
            };
            if let Some(b) = keys.get_mut(&k) {
                if *b.quota() != q {
                    b.set_quota(q, now)?;
                }
                return run(b);
            }
            let b = LeakyBucket::new(q);
            let d = run(&b);
            if d.is_ok() {
                keys.insert(k, b);
            }
            d
        })
        .collect()
}

fn expected_windows(trace: &[Op], quotas: &[WindowQuota]) -> Vec<Result<Decision, Error>> {
    let mut keys: HashMap<usize, FixedWindow> = HashMap::new();
    trace
        .iter()
        .map(|&(k, q, now, cost, peek)| {
            if cost == 0 {
                return Err(Error::ZeroCost);
            }
            let q = quotas[q];
            let run = |w: &FixedWindow| {
                if peek {
                    w.peek(now, cost)
                } else {
                    w.decide(now, cost)
                }
            };
            if let Some(w) = keys.get_mut(&k) {
                if *w.quota() != q {
                    w.set_quota(q, now)?;
                }
                return run(w);
            }
            let w = FixedWindow::new(q);
            let d = run(&w);
            if d.is_ok() {
                keys.insert(k, w);
            }
            d
        })
        .collect()
}

/// The trace through the cluster: chunks of 7, every third chunk one by one, the rest batched.
fn through<Q: Copy + Into<Limit>>(
    l: &RedisLimiter,
    keys: &[String],
    trace: &[Op],
    quotas: &[Q],
) -> Vec<Result<Decision, Error>> {
    let requests: Vec<Request<'_>> = trace
        .iter()
        .map(|&(k, q, now, cost, peek)| Request {
            key: &keys[k],
            limit: quotas[q].into(),
            now,
            cost,
            mode: if peek { Mode::Peek } else { Mode::Decide },
        })
        .collect();
    let mut got = Vec::new();
    for (i, chunk) in requests.chunks(7).enumerate() {
        if i % 3 == 0 {
            for r in chunk {
                got.push(if r.mode == Mode::Peek {
                    l.peek(r.key, r.limit, r.now, r.cost)
                } else {
                    l.decide(r.key, r.limit, r.now, r.cost)
                });
            }
        } else {
            got.extend(l.decide_batch(chunk));
        }
    }
    got
}

#[test]
#[ignore = "needs a Redis Cluster: scripts/test-redis.sh"]
fn keys_on_every_primary_decide_like_the_core() {
    let _guard = KILL_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let prefix = common::fresh_prefix("cluster");
    let l = cluster_limiter(&prefix, Duration::from_secs(5));
    let keys: Vec<String> = (0..30).map(|k| format!("key{k}")).collect();
    let buckets = [
        Quota::new(5, 1, 1_000).unwrap(),
        Quota::new(8, 3, 1_000).unwrap(),
    ];
    let trace = ops(600, keys.len(), buckets.len());
    let got = through(&l, &keys, &trace, &buckets);
    for (i, (g, e)) in got
        .iter()
        .zip(expected_buckets(&trace, &buckets))
        .enumerate()
    {
        assert_eq!(*g, e, "bucket request {i}: {:?}", trace[i]);
    }
    let windows = [
        WindowQuota::new(4, 1_000).unwrap(),
        WindowQuota::new(6, 700).unwrap().with_offset(5).unwrap(),
    ];
    let got = through(&l, &keys, &trace, &windows);
    for (i, (g, e)) in got
        .iter()
        .zip(expected_windows(&trace, &windows))
        .enumerate()
    {
        assert_eq!(*g, e, "window request {i}: {:?}", trace[i]);
    }
    let stats = l.stats();
    assert_eq!((stats.policy_answers, stats.failures), (0, 0), "{stats:?}");
    // Every primary holds some of the keys, and each key is where the cluster says.
    for node in nodes() {
        let mut con = connect(&node);
        let held: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut con)
            .unwrap();
        assert!(held.len() >= 5, "{} keys on {node}", held.len());
        for k in held {
            assert_eq!(owner(&k), node);
        }
    }
}

#[test]
#[ignore = "needs a Redis Cluster: scripts/test-redis.sh"]
fn a_killed_primary_fails_only_its_own_keys_and_resumes_when_back() {
    // Never while the other test uses the cluster.
    let _guard = KILL_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let timeout = Duration::from_millis(400);
    let slack = Duration::from_millis(80);
    let prefix = common::fresh_prefix("clusterkill");
    let l = cluster_limiter(&prefix, timeout);
    let q = Quota::new(3, 1, 1_000).unwrap();
    let keys: Vec<String> = (0..30).map(|k| format!("k{k}")).collect();
    let victim = nodes()[1].clone();
    let on_victim: Vec<bool> = keys
        .iter()
        .map(|k| owner(&format!("{prefix}b:{k}")) == victim)
        .collect();
    assert!(on_victim.iter().any(|&v| v) && !on_victim.iter().all(|&v| v));
    let batch: Vec<Request<'_>> = keys.iter().map(|k| Request::decide(k, q, 0, 1)).collect();
    let expected = vec![LeakyBucket::new(q).decide(0, 1); keys.len()];
    assert_eq!(l.decide_batch(&batch), expected);

    // SIGKILL the victim.
    let mut con = connect(&victim);
    let info: String = redis::cmd("INFO").arg("server").query(&mut con).unwrap();
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap()
        .success());
    sleep(Duration::from_millis(50));

    let reference = LeakyBucket::new(q);
    assert!(reference.decide(0, 1).unwrap().is_allowed());
    for round in 0..3 {
        let start = Instant::now();
        let got = l.decide_batch(&batch);
        let took = start.elapsed();
        assert!(
            took < timeout + slack,
            "round {round} answered after {took:?}"
        );
        let exact = reference.decide(0, 1);
        for (i, g) in got.iter().enumerate() {
            if on_victim[i] {
                assert_eq!(g.unwrap().outcome, Outcome::Overloaded, "key {i}");
            } else {
                assert_eq!(*g, exact, "round {round} key {i}");
            }
        }
    }
    assert!(l.stats().failures >= 1);

    // Restart it from its directory (its nodes.conf keeps its slots): no persistence, so its
    // keys start fresh; the other keys keep their state.
    let dir = std::env::var("TOLLGATE_REDIS_CLUSTER_DIR").unwrap();
    let port = victim.rsplit(':').next().unwrap().to_owned();
    let bin = std::env::var("TOLLGATE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    Command::new(bin)
        .current_dir(format!("{dir}/{port}"))
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--cluster-enabled",
            "yes",
        ])
        .args([
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-require-full-coverage",
            "no",
        ])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "yes"])
        .args(["--logfile", "redis.log", "--pidfile", "redis.pid"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let victim_key = on_victim.iter().position(|&v| v).unwrap();
    loop {
        let d = l.decide(&keys[victim_key], q, 10_000, 1).unwrap();
        if d.verdict != Outcome::Overloaded {
            assert_eq!((d.outcome, d.used), (Outcome::Allowed, 1));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted primary was not used again"
        );
        sleep(Duration::from_millis(50));
    }
}

static KILL_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
