//! Shared by the Redis tests: where the test server is, and fresh key names.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tollgate_redis::{Config, FailurePolicy, RedisLimiter};

/// The port of the Redis that scripts/test-redis.sh started.
pub fn port() -> u16 {
    std::env::var("TOLLGATE_REDIS_PORT")
        .expect("TOLLGATE_REDIS_PORT: run these tests through scripts/test-redis.sh")
        .parse()
        .expect("TOLLGATE_REDIS_PORT is a port number")
}

pub fn url_for(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/")
}

pub fn url() -> String {
    url_for(port())
}

/// A key prefix no other test (or earlier run) uses.
pub fn fresh_prefix(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "test:{name}:{}:{nanos}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A limiter for conformance runs: generous timeout (debug builds on a loaded machine), and a
/// fail-closed policy whose answers the tests check never happened.
pub fn limiter(name: &str, ticks_per_second: u64) -> RedisLimiter {
    node(&fresh_prefix(name), ticks_per_second)
}

/// One more node on the keys under `prefix`: its own connections, the same shared state.
pub fn node(prefix: &str, ticks_per_second: u64) -> RedisLimiter {
    let mut config = Config::new(url(), ticks_per_second);
    prefix.clone_into(&mut config.prefix);
    config.timeout = Duration::from_secs(5);
    config.policy = FailurePolicy::Closed;
    RedisLimiter::new(config).expect("valid config")
}

/// A direct connection, to inspect keys.
pub fn connection() -> redis::Connection {
    redis::Client::open(url())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
        .expect("Redis is up")
}
