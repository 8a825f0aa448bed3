//! Decisions per second through Redis: `tollgate-redis-bench URL [SECONDS]`.
//!
//! Run by hand against a Redis on this machine (docs/redis.md has the numbers and how they were
//! taken): `cargo run --release -p tollgate-redis --bin tollgate-redis-bench -- redis://127.0.0.1:6379/`.
//! Each line is one workload, run three times for SECONDS each (default 2): median and best
//! decisions per second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tollgate::{Quota, WindowQuota};
use tollgate_redis::{Config, HybridLimiter, RedisLimiter, Request};

const SECOND: u64 = 1_000_000_000;

fn limiter(url: &str, connections: usize) -> RedisLimiter {
    let mut config = Config::new(url, SECOND);
    config.prefix = format!("bench:{}:", std::process::id());
    config.timeout = Duration::from_secs(1);
    config.connections = connections;
    RedisLimiter::new(config).expect("valid Redis URL")
}

/// Runs `work` (which returns how many decisions it made) on `threads` threads for `seconds`,
/// three times, and prints the median and the best rate (the machine may be shared).
fn measure(name: &str, seconds: f64, threads: usize, work: &(dyn Fn(usize, u64) -> u64 + Sync)) {
    let mut rates: Vec<f64> = (0..3).map(|_| rate(seconds, threads, work)).collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "{name:<52} median {:>10.0}  best {:>10.0} decisions/s",
        rates[1], rates[2]
    );
}

fn rate(seconds: f64, threads: usize, work: &(dyn Fn(usize, u64) -> u64 + Sync)) -> f64 {
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, total) = (&stop, &total);
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    total.fetch_add(work(t, i), Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = total.load(Ordering::Relaxed) as f64 / elapsed;
    rate
}

fn now() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The ceiling: plain native writes through the same client on the same server.
fn ceilings(raw: &std::sync::Mutex<&mut redis::Connection>, seconds: f64) {
    let counter = format!("bench:{}:n", std::process::id());
    measure("ceiling: INCR, one per round trip", seconds, 1, &|_, _| {
        let mut c = raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        redis::cmd("INCR").arg(&counter).exec(*c).map_or(0, |()| 1)
    });
    measure("ceiling: HSET, one per round trip", seconds, 1, &|_, i| {
        let mut c = raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        redis::cmd("HSET")
            .arg(format!("{counter}h"))
            .arg("f")
            .arg(i)
            .exec(*c)
            .map_or(0, |()| 1)
    });
    measure("ceiling: INCR, pipelined 16", seconds, 1, &|_, _| {
        let mut c = raw
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut pipe = redis::pipe();
        for _ in 0..16 {
            pipe.cmd("INCR").arg(format!("{counter}i"));
        }
        pipe.exec(*c).map_or(0, |()| 16)
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .map_or("redis://127.0.0.1:6379/", String::as_str);
    let seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    // ShopBase-like: 30 burst, 2 per second, spread over 10 000 keys (mostly admitted).
    let shopbase = Quota::new(30, 2, SECOND).expect("valid quota");
    let tiktok = WindowQuota::new(50, SECOND).expect("valid quota");
    let keys: Vec<String> = (0..10_000).map(|k| format!("app:{k}")).collect();
    let key = |i: u64| keys[usize::try_from(i % 10_000).unwrap_or(0)].as_str();

    let one = limiter(url, 1);
    let mut raw = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("Redis is up");
    let raw = std::sync::Mutex::new(&mut raw);
    measure(
        "baseline: PING round trip, 1 connection",
        seconds,
        1,
        &|_, _| {
            let mut c = raw
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            redis::cmd("PING").exec(*c).map_or(0, |()| 1)
        },
    );
    ceilings(&raw, seconds);
    measure(
        "leaky bucket, one decision per round trip",
        seconds,
        1,
        &|_, i| u64::from(one.decide(key(i), shopbase, now(), 1).is_ok()),
    );
    measure(
        "fixed window, one decision per round trip",
        seconds,
        1,
        &|_, i| u64::from(one.decide(key(i), tiktok, now(), 1).is_ok()),
    );
    for batch in [16u64, 64] {
        measure(
            &format!("leaky bucket, pipelined batches of {batch}"),
            seconds,
            1,
            &|_, i| {
                let t = now();
                let requests: Vec<Request<'_>> = (0..batch)
                    .map(|j| Request::decide(key(i * batch + j), shopbase, t, 1))
                    .collect();
                one.decide_batch(&requests)
                    .iter()
                    .filter(|r| r.is_ok())
                    .count() as u64
            },
        );
    }
    let four = limiter(url, 4);
    measure(
        "leaky bucket, 4 threads, 4 connections",
        seconds,
        4,
        &|t, i| {
            u64::from(
                four.decide(key(i * 4 + t as u64), shopbase, now(), 1)
                    .is_ok(),
            )
        },
    );
    // A hot key far over its limit (1 per second, burst 5): almost every request is denied.
    let hot = Quota::new(5, 1, SECOND).expect("valid quota");
    measure(
        "hot key over its limit, shared only",
        seconds,
        1,
        &|_, _| u64::from(one.decide("hot", hot, now(), 1).is_ok()),
    );
    let hybrid = HybridLimiter::new(limiter(url, 1), 10_000);
    measure(
        "hot key over its limit, hybrid (local denials)",
        seconds,
        1,
        &|_, _| u64::from(hybrid.decide("hot", hot, now(), 1).is_ok()),
    );
    measure(
        "many keys under their limits, hybrid",
        seconds,
        1,
        &|_, i| u64::from(hybrid.decide(key(i), shopbase, now(), 1).is_ok()),
    );
    println!(
        "hybrid: {} of the decisions answered locally",
        hybrid.local_denials()
    );
}
