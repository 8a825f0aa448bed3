//! The layer over Redis (feature `redis`): two axum servers, one limit. Needs a Redis server on
//! 127.0.0.1 at `TOLLGATE_REDIS_PORT`: scripts/test-redis.sh starts one and runs these tests.
#![cfg(feature = "redis")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tollgate::key::Seed;
use tollgate::Quota;
use tollgate_redis::{Config, RedisLimiter};
use tollgate_tower::{KeyExtractor, Policy, RateLimitLayer, RedisBackend};

fn limiter() -> Arc<RedisLimiter> {
    let port = std::env::var("TOLLGATE_REDIS_PORT").expect("TOLLGATE_REDIS_PORT");
    let mut config = Config::new(format!("redis://127.0.0.1:{port}/"), 1_000);
    config.timeout = Duration::from_secs(2);
    Arc::new(RedisLimiter::new(config).expect("limiter"))
}

/// A namespace no earlier run used.
fn fresh_namespace() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!("tower-test-{}-{nanos}", std::process::id())
}

async fn node(backend: RedisBackend) -> SocketAddr {
    let layer = RateLimitLayer::new(
        Policy::new("fleet", backend, KeyExtractor::header("x-api-key"))
            .expect("policy")
            .call_limit_header(true),
    );
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Redis server: scripts/test-redis.sh"]
async fn two_servers_share_one_limit() {
    // 6 per key, draining one per hour: exact counts whatever the timing.
    let quota = Quota::new(6, 1, 3_600_000).expect("quota");
    let namespace = fresh_namespace();
    let hash_seed = Seed::new(0x5eed, 0xf1ee7);
    let shared = limiter();
    let a = node(
        RedisBackend::new(Arc::clone(&shared), &namespace, &[quota.into()], hash_seed)
            .expect("backend"),
    )
    .await;
    let b =
        node(RedisBackend::new(shared, &namespace, &[quota.into()], hash_seed).expect("backend"))
            .await;
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for i in 0..10 {
        let addr = if i % 2 == 0 { a } else { b };
        let resp = client
            .get(format!("http://{addr}/"))
            .header("x-api-key", "shared")
            .send()
            .await
            .expect("send");
        seen.push((
            resp.status().as_u16(),
            resp.headers()
                .get("x-sb-shop-api-call-limit")
                .map(|v| v.to_str().expect("text").to_owned())
                .unwrap_or_default(),
        ));
    }
    let ok = |n: u64| (200, format!("{n}/6"));
    let limited = (429, "6/6".to_owned());
    assert_eq!(
        seen,
        [
            ok(1),
            ok(2),
            ok(3),
            ok(4),
            ok(5),
            ok(6),
            limited.clone(),
            limited.clone(),
            limited.clone(),
            limited
        ]
    );
    // Another key has its own limit, on either server.
    let other = client
        .get(format!("http://{b}/"))
        .header("x-api-key", "other")
        .send()
        .await
        .expect("send");
    assert_eq!(other.status().as_u16(), 200);
    assert_eq!(other.headers()["ratelimit-policy"], "\"fleet\";q=6;w=21600");
}
