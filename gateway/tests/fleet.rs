//! Fleet mode: two gateway processes sharing one real Redis (started and killed by the test).
//! One key's admitted total across both is exactly the single limit (shared and hybrid modes);
//! Redis killed → the failure policy answers within its timeout; restarted → decisions resume.
//!
//! These need `redis-server` (`TOLLGATE_REDIS_SERVER`, else from `PATH`): they are ignored in a
//! plain `cargo test` and run by `scripts/test-gateway.sh` with `--include-ignored`.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{block_on, dead_port, upstream, Gateway};

struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start_on(port: u16, dir: std::path::PathBuf) -> Redis {
        let bin = std::env::var("TOLLGATE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(bin)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (set TOLLGATE_REDIS_SERVER or put it on PATH)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port, dir }
    }

    fn start() -> Redis {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-gw-redis-{}-{}",
            std::process::id(),
            dead_port()
        ));
        Redis::start_on(dead_port(), dir)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A bucket of 30 that refills 1 per hour (nothing drains during the test), keyed by
/// (app, shop), shared through Redis at `url`. The timeout is generous (1 s) for a busy test
/// machine: a timeout is answered by the failure policy, which these tests count exactly.
fn fleet_config(up: SocketAddr, url: &str, mode: &str, failure: &str, prefix: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[redis]
url = "{url}"
mode = "{mode}"
failure = "{failure}"
timeout_ms = 1000
retry_interval_ms = 200
prefix = "{prefix}"

[upstreams.main]
url = "http://{up}"

[policies.shop]
algorithm = "leaky-bucket"
burst = 30
rate = 1
period_ms = 3600000
call_limit_header = true

[[routes]]
name = "shop"
prefix = "/shop"
upstream = "main"
policy = "shop"
key = ["id:x-app-id", "id:x-shop-id"]
"#
    )
}

/// 8 clients per gateway, 20 requests each, all on key (1, 1) at once; (200s, 429s).
fn hammer(gateways: &[&Gateway]) -> (usize, usize) {
    let addrs: Vec<SocketAddr> = gateways.iter().map(|g| g.addr).collect();
    block_on(async move {
        let mut tasks = Vec::new();
        for addr in addrs {
            for _ in 0..8 {
                let mut c = common::Client::new(addr);
                tasks.push(tokio::spawn(async move {
                    let mut s = Vec::new();
                    for _ in 0..20 {
                        s.push(c.get("/shop/x", 1, 1).await.map_or(0, |r| r.status));
                    }
                    s
                }));
            }
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        assert!(all.iter().all(|&s| matches!(s, 200 | 429)), "{all:?}");
        (
            all.iter().filter(|&&s| s == 200).count(),
            all.iter().filter(|&&s| s == 429).count(),
        )
    })
}

fn exact_across_two_gateways(mode: &str) {
    let redis = Redis::start();
    let up = upstream(Duration::ZERO);
    let prefix = format!("t-{mode}:");
    let a = Gateway::with_config(
        &fleet_config(up, &redis.url(), mode, "closed", &prefix),
        &[],
    );
    let b = Gateway::with_config(
        &fleet_config(up, &redis.url(), mode, "closed", &prefix),
        &[],
    );
    let (ok, limited) = hammer(&[&a, &b]);
    assert_eq!(
        (ok, limited),
        (30, 290),
        "{mode}: one limit across both gateways"
    );
    // Each gateway served part of the 30 (both really shared the key).
    let a_ok = a.metric("tollgate_decisions_total{route=\"shop\",outcome=\"allowed\"}");
    let b_ok = b.metric("tollgate_decisions_total{route=\"shop\",outcome=\"allowed\"}");
    assert_eq!(a_ok + b_ok, 30);
    assert!(a.metric("tollgate_redis_round_trips_total") > 0);
    if mode == "hybrid" {
        let local = a.metric("tollgate_redis_local_denials_total")
            + b.metric("tollgate_redis_local_denials_total");
        assert!(local > 0, "the mirror answered no denial");
    }
}

#[test]
#[ignore = "needs redis-server: scripts/test-gateway.sh runs it"]
fn two_gateways_share_one_exact_limit() {
    exact_across_two_gateways("shared");
}

#[test]
#[ignore = "needs redis-server: scripts/test-gateway.sh runs it"]
fn two_hybrid_gateways_share_one_exact_limit() {
    exact_across_two_gateways("hybrid");
}

#[test]
#[ignore = "needs redis-server: scripts/test-gateway.sh runs it"]
fn redis_down_gets_the_failure_policy_and_up_again_resumes() {
    let mut redis = Redis::start();
    let (port, dir) = (redis.port, redis.dir.clone());
    let up = upstream(Duration::ZERO);
    let closed = Gateway::with_config(
        &fleet_config(up, &redis.url(), "shared", "closed", "t-down:"),
        &[],
    );
    let open = Gateway::with_config(
        &fleet_config(up, &redis.url(), "hybrid", "open", "t-down:"),
        &[],
    );
    block_on(async {
        let mut c = closed.client();
        let mut o = open.client();
        let r = c.get("/shop/x", 2, 2).await.unwrap();
        assert_eq!(
            (r.status, r.header_str("x-sb-shop-api-call-limit")),
            (200, "1/30")
        );
        let r = o.get("/shop/x", 2, 2).await.unwrap();
        assert_eq!(
            (r.status, r.header_str("x-sb-shop-api-call-limit")),
            (200, "2/30")
        );
    });
    redis.kill();
    block_on(async {
        let mut c = closed.client();
        let mut o = open.client();
        for _ in 0..5 {
            let t = Instant::now();
            let r = c.get("/shop/x", 2, 2).await.unwrap();
            // Fail-closed: 503 within the timeout (1 s; a refused connection fails at once).
            assert_eq!(r.status, 503, "{r:?}");
            assert!(r.header_str("retry-after").parse::<u64>().unwrap() >= 1);
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
            let t = Instant::now();
            let r = o.get("/shop/x", 2, 2).await.unwrap();
            // Fail-open: let through.
            assert_eq!(r.status, 200, "{r:?}");
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        }
    });
    assert!(closed.metric("tollgate_redis_policy_answers_total") >= 5);
    assert!(closed.metric("tollgate_decisions_total{route=\"shop\",outcome=\"overloaded\"}") >= 5);
    assert!(open.metric("tollgate_decisions_total{route=\"shop\",outcome=\"fail_open\"}") >= 5);
    // Redis back (empty: it keeps nothing on disk): decisions go through it again.
    let _redis = Redis::start_on(port, dir);
    block_on(async {
        let mut c = closed.client();
        let mut resumed = None;
        for _ in 0..50 {
            let r = c.get("/shop/x", 2, 2).await.unwrap();
            if r.status == 200 {
                resumed = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = resumed.expect("decisions resumed");
        assert_eq!(r.header_str("x-sb-shop-api-call-limit"), "1/30");
        // The other gateway tries Redis again once its retry interval has passed.
        let mut o = open.client();
        let mut seen = Vec::new();
        for _ in 0..50 {
            let r = o.get("/shop/x", 2, 2).await.unwrap();
            seen.push((
                r.status,
                r.header_str("x-sb-shop-api-call-limit").to_owned(),
            ));
            if !r.header_str("x-sb-shop-api-call-limit").starts_with("0/") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Fail-open answers meanwhile (0/30), then the shared bucket again: 2/30.
        assert_eq!(seen.last().unwrap(), &(200, "2/30".to_owned()), "{seen:?}");
    });
}
