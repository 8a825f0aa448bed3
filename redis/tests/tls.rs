//! TLS (feature `tls`): a redis-server of the test's own on a TLS port only, with a certificate
//! authority and a server certificate made here by openssl. Decisions over `rediss://` equal the
//! core's; a client that does not trust the CA gets no answer from Redis (the policy answers);
//! a stopped server stalls the TLS handshake, and the call still ends by its deadline.
#![cfg(feature = "tls")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tollgate::{LeakyBucket, Outcome, Quota};
use tollgate_redis::{Config, FailurePolicy, RedisLimiter};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/test-redis.sh installs it)");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

struct TlsServer {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tls_server() -> TlsServer {
    let dir = std::env::temp_dir().join(format!("tg-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=tollgate test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    let port = common::free_port();
    let bin = std::env::var("TOLLGATE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let child = Command::new(bin)
        .current_dir(&dir)
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
        ])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    TlsServer { child, port, dir }
}

fn limiter(server: &TlsServer, ca: bool, timeout: Duration) -> RedisLimiter {
    let mut config = Config::new(format!("rediss://127.0.0.1:{}/", server.port), 1_000);
    config.timeout = timeout;
    config.policy = FailurePolicy::Closed;
    config.retry_interval = Duration::from_millis(1);
    config.prefix = common::fresh_prefix("tls");
    if ca {
        config.tls_ca_file = Some(server.dir.join("ca.crt"));
    }
    RedisLimiter::new(config).unwrap()
}

#[test]
#[ignore = "needs redis-server with TLS and openssl: scripts/test-redis.sh"]
fn decisions_over_tls_equal_the_core_and_deadlines_hold_in_the_handshake() {
    let server = tls_server();
    let l = limiter(&server, true, Duration::from_secs(5));
    let q = Quota::new(3, 1, 1_000).unwrap();
    // Wait for the server (the first calls may find it still starting).
    let deadline = Instant::now() + Duration::from_secs(10);
    while l.peek("probe", q, 0, 1).unwrap().verdict == Outcome::Overloaded {
        assert!(Instant::now() < deadline, "the TLS server did not come up");
        sleep(Duration::from_millis(50));
    }
    let reference = LeakyBucket::new(q);
    for now in [0, 0, 0, 0, 500, 1_000, 1_000] {
        assert_eq!(l.decide("k", q, now, 1), reference.decide(now, 1));
    }
    // Not trusting the CA: the handshake fails, the policy answers.
    let untrusting = limiter(&server, false, Duration::from_secs(5));
    let d = untrusting.decide("k", q, 0, 1).unwrap();
    assert_eq!(d.outcome, Outcome::Overloaded);
    assert_eq!(untrusting.stats().failures, 1);
    // A stopped server: the TCP connection is accepted, the handshake never answered.
    let timeout = Duration::from_millis(400);
    let stalled = limiter(&server, true, timeout);
    let status = Command::new("kill")
        .args(["-STOP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..3 {
        let start = Instant::now();
        let d = stalled.decide("k", q, 0, 1).unwrap();
        let took = start.elapsed();
        assert_eq!(d.outcome, Outcome::Overloaded);
        assert!(took < timeout + Duration::from_millis(80), "{took:?}");
    }
    let status = Command::new("kill")
        .args(["-CONT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
