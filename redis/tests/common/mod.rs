//! Shared by the Redis tests: where the test server is, and fresh key names.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

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

/// A redis-server of the test's own (same binary as the suite's), to kill, stop and restart.
pub struct Server {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Server {
    pub fn start(port: u16) -> Server {
        let bin = std::env::var("TOLLGATE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let dir =
            std::env::temp_dir().join(format!("tg-redis-fault-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(bin)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let up = redis::Client::open(url_for(port))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if up.is_ok() {
                return server;
            }
            sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not come up on port {port}");
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn kill(mut self) -> u16 {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.port
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
