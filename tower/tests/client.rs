//! The client middleware against a local fake vendor on 127.0.0.1 that enforces the real
//! policies with the server layer (ShopBase: bucket of 30 draining 2 per second per (app, shop),
//! with its header; TikTok Shop: 50 per one-second window per (app, shop, api), with jittered
//! network delay in front of the limiter), in real time. Each run is bounded (about 10 s at
//! most) and prints its figures.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tokio::net::TcpListener;
use tollgate::client::{Random, SplitMix64};
use tollgate_tower::{
    Jitter, KeyExtractor, LocalTable, PaceKey, PacedMiddleware, Policy, RateLimitLayer, Vendor,
};

/// What the fake vendor saw, per (app, shop, path).
#[derive(Debug, Default)]
struct Seen {
    /// Admission times of the requests answered 200.
    ok: Vec<Instant>,
    /// Injected 503s.
    injected: u64,
}

#[derive(Debug)]
struct Vendorland {
    seen: Mutex<HashMap<String, Seen>>,
    rng: Mutex<SplitMix64>,
    /// Per mille of admitted requests answered 503 (overload protection after the limiter).
    fault_per_mille: u64,
    /// Upper bound of the network delay before the limiter, in milliseconds.
    jitter_ms: u64,
}

impl Vendorland {
    fn new(fault_per_mille: u64, jitter_ms: u64) -> Arc<Vendorland> {
        Arc::new(Vendorland {
            seen: Mutex::new(HashMap::new()),
            rng: Mutex::new(SplitMix64::new(0x7e57)),
            fault_per_mille,
            jitter_ms,
        })
    }

    fn draw(&self, max: u64) -> u64 {
        self.rng.lock().unwrap().up_to(max)
    }

    fn totals(&self) -> (usize, u64) {
        let seen = self.seen.lock().unwrap();
        (
            seen.values().map(|s| s.ok.len()).sum(),
            seen.values().map(|s| s.injected).sum(),
        )
    }
}

fn key_of(req: &Request) -> String {
    let h = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    format!("{}/{} {}", h("x-app-id"), h("x-shop-id"), req.uri().path())
}

/// The upstream behind the limiter: records admissions, injects faults.
fn upstream(state: &Vendorland, req: &Request) -> Response {
    let key = key_of(req);
    let fault = state.fault_per_mille > 0 && state.draw(999) < state.fault_per_mille;
    let mut seen = state.seen.lock().unwrap();
    let entry = seen.entry(key).or_default();
    if fault {
        entry.injected += 1;
        drop(seen);
        return (StatusCode::SERVICE_UNAVAILABLE, "overloaded, retry").into_response();
    }
    entry.ok.push(Instant::now());
    drop(seen);
    (StatusCode::OK, "{\"ok\":true}").into_response()
}

/// The network in front of the vendor: a random delay of 0..=jitter_ms before the limiter.
async fn network(state: Arc<Vendorland>, req: Request, next: Next) -> Response {
    if state.jitter_ms > 0 {
        let us = state.draw(state.jitter_ms * 1_000);
        tokio::time::sleep(Duration::from_micros(us)).await;
    }
    next.run(req).await
}

/// The fake vendor: ShopBase on /shopbase/..., TikTok Shop on /tiktok/{api}, real policies.
async fn vendor(state: Arc<Vendorland>) -> (SocketAddr, RateLimitLayer<LocalTable>) {
    let limits = RateLimitLayer::builder()
        .route(
            "/shopbase",
            Policy::shopbase(
                LocalTable::shopbase(1_024).unwrap(),
                KeyExtractor::id_pair("x-app-id", "x-shop-id"),
            ),
        )
        .route(
            "/tiktok",
            Policy::tiktok_shop(
                LocalTable::tiktok_shop(1_024).unwrap(),
                KeyExtractor::id_pair("x-app-id", "x-shop-id").with_rest(),
            ),
        )
        .build();
    let up = Arc::clone(&state);
    let app = Router::new()
        .route(
            "/{*path}",
            get(move |req: Request| {
                let up = Arc::clone(&up);
                async move { upstream(&up, &req) }
            }),
        )
        .layer(limits.clone())
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            network(Arc::clone(&state), req, next)
        }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, limits)
}

fn paced_client(m: &PacedMiddleware) -> ClientWithMiddleware {
    let inner = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    ClientBuilder::new(inner).with(m.clone()).build()
}

/// `tasks` tasks per key, each sending until `deadline`; returns the statuses received.
async fn hammer(
    client: &ClientWithMiddleware,
    addr: SocketAddr,
    keys: &[(u64, u64, &'static str)],
    tasks: usize,
    run: Duration,
) -> Vec<u16> {
    let deadline = Instant::now() + run;
    let mut handles = Vec::new();
    for &(app, shop, path) in keys {
        for _ in 0..tasks {
            let client = client.clone();
            let url = format!("http://{addr}{path}");
            handles.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                let api = path.rsplit('/').next().unwrap_or("").to_owned();
                while Instant::now() < deadline {
                    let resp = client
                        .get(&url)
                        .header("x-app-id", app.to_string())
                        .header("x-shop-id", shop.to_string())
                        .with_extension(PaceKey::new(app, shop).api(api.clone()))
                        .send()
                        .await
                        .unwrap();
                    statuses.push(resp.status().as_u16());
                }
                statuses
            }));
        }
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all
}

fn float(n: usize) -> f64 {
    f64::from(u32::try_from(n).expect("a small count"))
}

/// Per key: admitted count, and the share of the allowed rate it reached.
///
/// - Bucket (`window == None`): over the span from the first to the last admission the policy
///   allows at most `limit + rate × span`; the share is admitted over that.
/// - Window of `limit` per second: a client that sends each window's `limit` at once and is cut
///   off by the end of the run mid-window would look slow by that formula, so the share is the
///   sustained rate between the first admission and the first of the last whole group of
///   `limit`: n / (t[n] − t[0]) with n the largest multiple of `limit` below the count, over
///   `limit` per second.
fn shares(
    state: &Vendorland,
    limit: usize,
    per_second: f64,
    window: bool,
) -> Vec<(String, usize, f64)> {
    let seen = state.seen.lock().unwrap();
    let mut out: Vec<_> = seen
        .iter()
        .map(|(k, s)| {
            let t = &s.ok;
            let share = if window {
                let n = (t.len() - 1) / limit * limit;
                let span = t[n].duration_since(t[0]).as_secs_f64();
                float(n) / span / per_second
            } else {
                let span = t.last().unwrap().duration_since(t[0]).as_secs_f64();
                float(t.len()) / (float(limit) + per_second * span)
            };
            (k.clone(), t.len(), share)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shopbase_zero_429_and_at_least_95_percent_of_the_allowed_rate() {
    let state = Vendorland::new(0, 0);
    let (addr, limits) = vendor(Arc::clone(&state)).await;
    let paced = PacedMiddleware::builder(Vendor::shopbase())
        .seed(1)
        .build()
        .unwrap();
    let client = paced_client(&paced);
    // Three shops of two apps, four tasks each sharing one middleware.
    let keys = [
        (1, 10, "/shopbase/orders.json"),
        (1, 11, "/shopbase/products.json"),
        (2, 10, "/shopbase/orders.json"),
    ];
    let started = Instant::now();
    let statuses = hammer(&client, addr, &keys, 4, Duration::from_secs(7)).await;
    let took = started.elapsed();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    let shares = shares(&state, 30, 2.0, false);
    println!(
        "shopbase: {} requests in {took:?}, 429s {limited}, per key (admitted, share of allowed): {shares:?}, client {:?}",
        statuses.len(),
        paced.stats()
    );
    assert_eq!(limited, 0);
    assert_eq!(limits.policy("/shopbase").unwrap().stats().limited, 0);
    assert!(statuses.iter().all(|&s| s == 200));
    assert_eq!(shares.len(), 3);
    for (key, n, share) in &shares {
        assert!(*n >= 40, "{key}: only {n} admitted");
        assert!(*share >= 0.95, "{key}: {share:.3} of the allowed rate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiktok_zero_429_and_at_least_90_percent_under_jittered_latency() {
    // Up to 20 ms of network delay in front of the limiter; the client allows 40 ms (the rest
    // covers the time a loaded machine takes to schedule the tasks).
    let state = Vendorland::new(0, 20);
    let (addr, limits) = vendor(Arc::clone(&state)).await;
    let paced = PacedMiddleware::builder(Vendor::tiktok_shop())
        .jitter(Duration::from_millis(40))
        .seed(2)
        .build()
        .unwrap();
    let client = paced_client(&paced);
    // Two APIs of one shop, and one of another shop: three separate limits.
    let keys = [
        (5, 50, "/tiktok/orders"),
        (5, 50, "/tiktok/products"),
        (5, 51, "/tiktok/orders"),
    ];
    let statuses = hammer(&client, addr, &keys, 6, Duration::from_secs(4)).await;
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    let shares = shares(&state, 50, 50.0, true);
    println!(
        "tiktok: {} requests, 429s {limited}, per key (admitted, share of allowed): {shares:?}, client {:?}",
        statuses.len(),
        paced.stats()
    );
    assert_eq!(limited, 0);
    assert_eq!(limits.policy("/tiktok").unwrap().stats().limited, 0);
    assert_eq!(shares.len(), 3);
    for (key, n, share) in &shares {
        assert!(*n >= 150, "{key}: only {n} admitted");
        assert!(*share >= 0.90, "{key}: {share:.3} of the allowed rate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_503s_are_all_retried_within_the_budget() {
    let state = Vendorland::new(50, 5);
    let (addr, limits) = vendor(Arc::clone(&state)).await;
    let paced = PacedMiddleware::builder(Vendor::tiktok_shop())
        .backoff(
            Duration::from_millis(20),
            Duration::from_millis(500),
            5,
            Jitter::Full,
        )
        .budget(Duration::from_secs(10), 100, 10)
        .seed(3)
        .build()
        .unwrap();
    let client = paced_client(&paced);
    // 400 logical requests on two keys, 20 tasks each sending 10.
    let mut handles = Vec::new();
    for (shop, api) in [(70u64, "orders"), (71, "returns")] {
        for _ in 0..20 {
            let client = client.clone();
            let url = format!("http://{addr}/tiktok/{api}");
            handles.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..10 {
                    let resp = client
                        .get(&url)
                        .header("x-app-id", "9")
                        .header("x-shop-id", shop.to_string())
                        .with_extension(PaceKey::new(9, shop).api(api))
                        .send()
                        .await
                        .unwrap();
                    statuses.push(resp.status().as_u16());
                }
                statuses
            }));
        }
    }
    let started = Instant::now();
    let mut statuses = Vec::new();
    for h in handles {
        statuses.extend(h.await.unwrap());
    }
    let client_counts = paced.stats();
    let (ok, injected) = state.totals();
    println!(
        "faults: {} logical requests in {:?}, server 200s {ok}, injected 503s {injected}, client {client_counts:?}",
        statuses.len(),
        started.elapsed()
    );
    assert_eq!(statuses.len(), 400);
    assert!(
        statuses.iter().all(|&s| s == 200),
        "every request ends in 200"
    );
    assert_eq!(ok, 400);
    // About 5 % of the 400-odd attempts were answered 503, and each was retried.
    assert!((8..=40).contains(&injected), "{injected} injected");
    assert_eq!(client_counts.unavailable, injected);
    assert_eq!(client_counts.retries, injected);
    assert_eq!(client_counts.sent, 400 + injected);
    assert_eq!(
        (
            client_counts.budget_refused,
            client_counts.attempts_exhausted
        ),
        (0, 0)
    );
    assert_eq!(client_counts.limited, 0);
    assert_eq!(limits.policy("/tiktok").unwrap().stats().limited, 0);
}

/// A vendor that answers each key's first request 429 with `Retry-After: 1`, a request for a
/// deep page 429 without it, and `/broken` 500.
async fn scripted() -> (SocketAddr, Arc<Mutex<Vec<(String, Instant)>>>) {
    let log: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let l = Arc::clone(&log);
    let app = Router::new().route(
        "/{*path}",
        get(move |req: Request| {
            let l = Arc::clone(&l);
            async move {
                let path = req.uri().to_string();
                let mut log = l.lock().unwrap();
                let first = !log.iter().any(|(p, _)| *p == path);
                log.push((path.clone(), Instant::now()));
                drop(log);
                if path.starts_with("/broken") {
                    return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
                }
                if path.contains("page=401") {
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("x-sb-shop-api-call-limit", "0/30")],
                        "too deep",
                    )
                        .into_response();
                }
                if first {
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1"), ("x-sb-shop-api-call-limit", "30/30")],
                        "slow down",
                    )
                        .into_response();
                }
                (StatusCode::OK, [("x-sb-shop-api-call-limit", "1/30")], "ok").into_response()
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_and_never_outcomes_are_not_retried() {
    let (addr, log) = scripted().await;
    let paced = PacedMiddleware::builder(Vendor::shopbase())
        .backoff(
            Duration::from_millis(10),
            Duration::from_millis(100),
            3,
            Jitter::Full,
        )
        .seed(4)
        .build()
        .unwrap();
    let client = paced_client(&paced);
    let t0 = Instant::now();
    let resp = client
        .get(format!("http://{addr}/orders.json"))
        .with_extension(PaceKey::new(1, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    {
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 2);
        let gap = log[1].1.duration_since(log[0].1);
        assert!(gap >= Duration::from_millis(990), "retried after {gap:?}");
    }
    assert!(t0.elapsed() >= Duration::from_secs(1));
    // The 429 blocked the key: the server's 30/30 also filled the mirror, so the next request
    // waits for the bucket to drain one (500 ms) after the time it was sent.
    // Deep pagination: a 429 without Retry-After from ShopBase can never pass: sent once.
    let deep = client
        .get(format!("http://{addr}/orders.json?limit=250&page=401"))
        .with_extension(PaceKey::new(1, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status().as_u16(), 429);
    let broken = client
        .get(format!("http://{addr}/broken"))
        .with_extension(PaceKey::new(1, 3))
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status().as_u16(), 500);
    let log = log.lock().unwrap();
    let count = |p: &str| log.iter().filter(|(x, _)| x.contains(p)).count();
    assert_eq!(count("page=401"), 1);
    assert_eq!(count("/broken"), 1);
    let stats = paced.stats();
    assert_eq!((stats.retries, stats.fatal, stats.limited), (1, 2, 2));
}

/// A bare HTTP/1.1 server that drops the first connection of every GET and every connection of
/// a POST after reading the request (a transport error for the client), and answers the others
/// 200. Returns its address and the number of requests it read, by method.
async fn flaky() -> (SocketAddr, Arc<Mutex<HashMap<String, u32>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let seen = Arc::clone(&counts);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let method = String::from_utf8_lossy(&head)
                    .split(' ')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let n = {
                    let mut seen = seen.lock().unwrap();
                    let n = seen.entry(method.clone()).or_default();
                    *n += 1;
                    *n
                };
                if method == "POST" || n == 1 {
                    return; // dropped: the client sees the connection close mid-exchange
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (addr, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_errors_are_retried_for_idempotent_requests_only() {
    let (addr, counts) = flaky().await;
    let paced = PacedMiddleware::builder(Vendor::bucket(100, 100))
        .backoff(
            Duration::from_millis(10),
            Duration::from_millis(50),
            3,
            Jitter::Full,
        )
        .seed(5)
        .build()
        .unwrap();
    let client = paced_client(&paced);
    let got = client
        .get(format!("http://{addr}/a"))
        .with_extension(PaceKey::new(1, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.text().await.unwrap(), "ok");
    let posted = client
        .post(format!("http://{addr}/a"))
        .with_extension(PaceKey::new(1, 1))
        .body("not idempotent")
        .send()
        .await;
    assert!(posted.is_err());
    let counts = counts.lock().unwrap().clone();
    assert_eq!(counts.get("GET"), Some(&2));
    assert_eq!(counts.get("POST"), Some(&1));
    let stats = paced.stats();
    assert_eq!(
        (
            stats.sent,
            stats.retries,
            stats.transport_errors,
            stats.fatal
        ),
        (3, 1, 2, 1)
    );
}
