//! The server layer's overhead per request, beside tower_governor 0.8 on the same service.
//!
//! One inner service (a `service_fn` answering an empty 200 at once), wrapped by nothing (the
//! baseline), by tollgate's `RateLimitLayer` (a `LocalTable` keyed by the peer's IP, which adds
//! `RateLimit` and `RateLimit-Policy` to every answer; and the same layer over a `RegionTable`,
//! the same table in a shared-memory region under `/dev/shm`, on `CLOCK_MONOTONIC`), and by
//! tower_governor's `GovernorLayer`
//! (its peer-IP extractor over governor's keyed limiter), with and without its
//! `x-ratelimit-*` headers. Each iteration builds a request carrying axum's
//! `ConnectInfo<SocketAddr>`, calls the service and polls the answer once (every service here
//! answers at once). The request is built in the baseline too, so a layer's overhead is its
//! time minus the baseline's.
//!
//! - `allow/1 key` and `allow/1000 keys`: a quota no request reaches (1e9 per second, burst
//!   1e9), so every request passes; the keys are IPv4 addresses, cycled.
//! - `deny/1 key`: a bucket of 1 that refills once an hour, taken by a first request: every
//!   measured request is refused (429).
//!
//! Run: `cargo bench -p tollgate-tower --bench layer`.

use std::convert::Infallible;
use std::future::{ready, Future};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use tollgate::shared::Options;
use tollgate::table::FullPolicy;
use tollgate::Quota;
use tollgate_tower::{KeyExtractor, LocalTable, Policy, RateLimitLayer, RegionTable};
use tower::{service_fn, Layer, Service};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

const TPS: u64 = LocalTable::TICKS_PER_SECOND;

fn request(ip: u32) -> Request<()> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 4_000);
    let mut req = Request::new(());
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

/// Calls `svc` and polls the answer once; every service here answers at once.
fn call<S>(svc: &mut S, req: Request<()>) -> u16
where
    S: Service<Request<()>, Response = Response<Body>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let fut = pin!(svc.call(req));
    match fut.poll(&mut cx) {
        Poll::Ready(Ok(resp)) => resp.status().as_u16(),
        _ => unreachable!("answers at once"),
    }
}

/// The same, for tollgate's layer, whose body type wraps the inner one.
fn call_tollgate<S, B>(svc: &mut S, req: Request<()>) -> u16
where
    S: Service<Request<()>, Response = Response<B>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let fut = pin!(svc.call(req));
    match fut.poll(&mut cx) {
        Poll::Ready(Ok(resp)) => resp.status().as_u16(),
        _ => unreachable!("answers at once"),
    }
}

fn inner() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|_req: Request<()>| ready(Ok::<_, Infallible>(Response::new(Body::empty()))))
}

fn tollgate_layer(quota: Quota) -> RateLimitLayer<LocalTable> {
    let table = LocalTable::buckets(&[quota], 4_096).expect("table");
    RateLimitLayer::new(Policy::new("api", table, KeyExtractor::peer_ip()).expect("policy"))
}

/// The same layer over a table of the same size in a fresh shared region at `path`.
fn region_layer(quota: Quota, path: &std::path::Path) -> RateLimitLayer<RegionTable> {
    let _ = std::fs::remove_file(path);
    let table = RegionTable::buckets(
        path,
        &[quota],
        4_096,
        FullPolicy::FailClosed,
        &Options::new(),
    )
    .expect("region");
    RateLimitLayer::new(Policy::new("api", table, KeyExtractor::peer_ip()).expect("policy"))
}

/// Where the benchmark's regions go: tmpfs where there is one.
fn region_dir() -> std::path::PathBuf {
    let shm = std::path::PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

fn layer(c: &mut Criterion) {
    let open = Quota::per_second(1_000_000_000, 1_000_000_000, TPS).expect("quota");
    let shut = Quota::new(1, 1, 3_600 * TPS).expect("quota");
    for (group, keys, deny) in [
        ("allow/1 key", 1u32, false),
        ("allow/1000 keys", 1_000, false),
        ("deny/1 key", 1, true),
    ] {
        let mut g = c.benchmark_group(group);
        let base = 0x0a00_0001_u32;
        let mut n = 0u32;
        let mut next_ip = move || {
            n = (n + 1) % keys;
            base + n
        };
        let expect = if deny { 429 } else { 200 };

        let mut no_layer = inner();
        g.bench_function("baseline (no layer)", |b| {
            b.iter(|| black_box(call(&mut no_layer, request(next_ip()))));
        });

        let mut ours = tollgate_layer(if deny { shut } else { open }).layer(inner());
        assert_eq!(call_tollgate(&mut ours, request(base)), 200);
        assert_eq!(call_tollgate(&mut ours, request(base)), expect);
        g.bench_function("tollgate RateLimitLayer", |b| {
            b.iter(|| black_box(call_tollgate(&mut ours, request(next_ip()))));
        });

        let path = region_dir().join(format!("tollgate-bench-layer-{}", std::process::id()));
        let mut region = region_layer(if deny { shut } else { open }, &path).layer(inner());
        assert_eq!(call_tollgate(&mut region, request(base)), 200);
        assert_eq!(call_tollgate(&mut region, request(base)), expect);
        g.bench_function("tollgate RateLimitLayer over RegionTable", |b| {
            b.iter(|| black_box(call_tollgate(&mut region, request(next_ip()))));
        });
        drop(region);
        let _ = std::fs::remove_file(&path);

        let mut conf = GovernorConfigBuilder::default();
        if deny {
            conf.per_second(3_600).burst_size(1);
        } else {
            conf.per_nanosecond(1).burst_size(1_000_000_000);
        }
        let mut gov = GovernorLayer::new(conf.finish().expect("config")).layer(inner());
        assert_eq!(call(&mut gov, request(base)), 200);
        assert_eq!(call(&mut gov, request(base)), expect);
        g.bench_function("tower_governor", |b| {
            b.iter(|| black_box(call(&mut gov, request(next_ip()))));
        });

        let mut conf = GovernorConfigBuilder::default();
        if deny {
            conf.per_second(3_600).burst_size(1);
        } else {
            conf.per_nanosecond(1).burst_size(1_000_000_000);
        }
        let mut gov_h =
            GovernorLayer::new(conf.use_headers().finish().expect("config")).layer(inner());
        assert_eq!(call(&mut gov_h, request(base)), 200);
        assert_eq!(call(&mut gov_h, request(base)), expect);
        g.bench_function("tower_governor use_headers", |b| {
            b.iter(|| black_box(call(&mut gov_h, request(next_ip()))));
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = layer
}
criterion_main!(benches);
