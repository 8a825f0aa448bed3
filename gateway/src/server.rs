//! The gateway: per-request policy decisions in front of a stand-in upstream.
//!
//! Per request, in order (see `docs/demo.md`):
//! 1. a request head over `--max-header-bytes` or with more than 100 headers → **400**;
//! 2. the route: `/shopbase/...` (ShopBase) or `/tiktok/API` (TikTok Shop, API = the rest of the
//!    path), anything else **404** (`/healthz` answers 200, unlimited);
//! 3. the caller: `X-App-Id` and `X-Shop-Id`, decimal u64 ids, missing or malformed → **400**;
//! 4. ShopBase GET: the deep-pagination rule on the query (`limit × page` > 100 000 → **429**,
//!    no `Retry-After`; a non-numeric `limit`/`page` → **400**);
//! 5. the concurrency cap in front of the upstream: none free → **503** `Retry-After: 1`;
//! 6. the key table of the policy decides for the key (ShopBase: (app, shop); TikTok Shop:
//!    (app, shop, API)) on the shop's tier: refused → **429** with `Retry-After` (or **503** for
//!    a full table, fail-closed);
//! 7. the upstream answers 200 after its latency.
//!
//! Every ShopBase 200, 429 and 503 carries `X-Sb-Shop-Api-Call-Limit`, and every 200, 429 and
//! 503 of either policy `RateLimit` (its numbers) and `RateLimit-Policy`. In shadow mode steps 4 and 6 only report:
//! `X-Tollgate-Shadow: would-limit` marks a request enforcement would have refused.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use tollgate::clock::StdClock;
use tollgate::key::{Key, Seed};
use tollgate::table::{self, BucketTable, FullPolicy, TableStats, WindowTable};
use tollgate::{
    header, pagination, ConcurrencyLimit, Decision, Outcome, Permit, Quota, WindowQuota,
};

use crate::config::Config;

/// Ticks per second of the gateway's clock ([`StdClock`], nanoseconds).
pub const TPS: u64 = StdClock::TICKS_PER_SECOND;

/// The request header naming the app.
pub const APP_HEADER: &str = "x-app-id";
/// The request header naming the shop.
pub const SHOP_HEADER: &str = "x-shop-id";
/// The response header marking a shadow-mode decision: `would-limit` or `pass`.
pub const SHADOW_HEADER: &str = "x-tollgate-shadow";

/// hyper's own read buffer per connection: a request head beyond it is refused by hyper's parser
/// (431) before the gateway sees it. Above the gateway's own limit, so that a merely large head
/// gets the gateway's 400.
const HYPER_MAX_BUF: usize = 256 * 1024;
/// hyper's own header count limit (431 beyond); the gateway's limit is `Config::max_headers`.
const HYPER_MAX_HEADERS: usize = 256;

/// Responses by status, counted as they are sent.
#[derive(Debug, Default)]
pub struct Counters {
    /// 200 from the upstream.
    pub ok: AtomicU64,
    /// 400 malformed.
    pub bad_request: AtomicU64,
    /// 404 unknown route.
    pub not_found: AtomicU64,
    /// 429 rate limited (or too deep a page).
    pub limited: AtomicU64,
    /// 503 shed by the concurrency cap or a full table.
    pub overloaded: AtomicU64,
    /// Shadow mode: requests that enforcement would have refused.
    pub would_limit: AtomicU64,
}

/// The gateway's state, shared by every connection.
pub struct Gateway {
    clock: StdClock,
    shopbase: BucketTable<'static>,
    tiktok: WindowTable<'static>,
    /// The tiers of each table, as given (the tables hold copies).
    shopbase_tiers: &'static [Quota],
    tiktok_tiers: &'static [WindowQuota],
    cap: ConcurrencyLimit,
    shadow: bool,
    shop_tiers: HashMap<u64, usize>,
    latency: Duration,
    max_header_bytes: usize,
    max_headers: usize,
    started: Instant,
    /// Responses by status.
    pub counters: Counters,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("shopbase", &self.shopbase)
            .field("tiktok", &self.tiktok)
            .field("cap", &self.cap)
            .field("shadow", &self.shadow)
            .finish_non_exhaustive()
    }
}

/// A random 128-bit table seed from std's randomly keyed `RandomState` (seeded by the OS).
fn random_seed() -> Seed {
    let a = std::collections::hash_map::RandomState::new();
    let b = std::collections::hash_map::RandomState::new();
    Seed::new(a.hash_one(0x7467_u64), b.hash_one(0x6774_u64))
}

/// Memory for a table of `n` slots and `tiers` tiers: allocated once at start, never freed
/// (the gateway lives as long as the process), so the table can be shared as `'static`.
fn leak_memory(n: usize, tiers: usize) -> &'static [table::AtomicU64] {
    // No such table (0 slots): no memory, which `init` refuses.
    let words = match table::words(n, tiers) {
        usize::MAX => 0,
        w => w,
    };
    let memory: Vec<table::AtomicU64> = (0..words).map(|_| table::AtomicU64::new(0)).collect();
    Box::leak(memory.into_boxed_slice())
}

impl Gateway {
    /// Builds the tables and the cap from `config`.
    pub fn new(config: &Config) -> Result<Gateway, tollgate::Error> {
        let mut sb = Vec::with_capacity(config.tiers.len());
        let mut tt = Vec::with_capacity(config.tiers.len());
        for t in &config.tiers {
            sb.push(Quota::per_second(
                t.shopbase_burst,
                t.shopbase_per_second,
                TPS,
            )?);
            tt.push(WindowQuota::new(t.tiktok_per_second, TPS)?);
        }
        let policy = if config.fail_open {
            FullPolicy::FailOpen
        } else {
            FullPolicy::FailClosed
        };
        let sb: &'static [Quota] = Box::leak(sb.into_boxed_slice());
        let tt: &'static [WindowQuota] = Box::leak(tt.into_boxed_slice());
        Ok(Gateway {
            clock: StdClock::new(),
            shopbase: BucketTable::init(
                leak_memory(config.slots, sb.len()),
                sb,
                random_seed(),
                policy,
            )?,
            tiktok: WindowTable::init(
                leak_memory(config.slots, tt.len()),
                tt,
                random_seed(),
                policy,
            )?,
            shopbase_tiers: sb,
            tiktok_tiers: tt,
            cap: ConcurrencyLimit::new(config.max_in_flight),
            shadow: config.shadow,
            shop_tiers: config.shop_tiers.clone(),
            latency: config.upstream_latency,
            max_header_bytes: config.max_header_bytes,
            max_headers: config.max_headers,
            started: Instant::now(),
            counters: Counters::default(),
        })
    }

    /// The ShopBase table's counters.
    pub fn shopbase_stats(&self) -> TableStats {
        self.shopbase.stats()
    }

    /// The TikTok Shop table's counters.
    pub fn tiktok_stats(&self) -> TableStats {
        self.tiktok.stats()
    }

    /// The closing report: responses by status and each table's counters.
    pub fn report(&self) -> String {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let total = get(&c.ok)
            + get(&c.bad_request)
            + get(&c.not_found)
            + get(&c.limited)
            + get(&c.overloaded);
        let table = |name: &str, s: TableStats| {
            format!(
                "{name} table: {} slots, occupied {}, reclaimed {}, rejected {}\n",
                s.capacity, s.occupied, s.reclaimed, s.rejected
            )
        };
        let mut out = format!(
            "gateway: {:.1} s, {total} responses: 200 {}, 400 {}, 404 {}, 429 {}, 503 {}",
            self.started.elapsed().as_secs_f64(),
            get(&c.ok),
            get(&c.bad_request),
            get(&c.not_found),
            get(&c.limited),
            get(&c.overloaded),
        );
        if self.shadow {
            let _ = write!(
                out,
                " (shadow mode: {} would have been limited)",
                get(&c.would_limit)
            );
        }
        out.push('\n');
        out += &table("shopbase", self.shopbase.stats());
        out += &table("tiktok", self.tiktok.stats());
        out
    }

    fn tier_of(&self, shop: u64) -> usize {
        self.shop_tiers.get(&shop).copied().unwrap_or(0)
    }

    fn count(&self, status: StatusCode) {
        let c = &self.counters;
        let counter = match status.as_u16() {
            200 => &c.ok,
            400 => &c.bad_request,
            404 => &c.not_found,
            429 => &c.limited,
            _ => &c.overloaded,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let resp = match self.caller(&req).and_then(|call| self.admit(&req, call)) {
            Ok(plan) => self.serve(plan).await,
            Err(refusal) => *refusal,
        };
        self.count(resp.status());
        resp
    }

    /// Steps 1–3 (see the module docs): who is calling, on which policy.
    fn caller<B>(&self, req: &Request<B>) -> Result<Call, Refusal> {
        let head_bytes = req.uri().to_string().len()
            + req
                .headers()
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 4)
                .sum::<usize>();
        if head_bytes > self.max_header_bytes || req.headers().len() > self.max_headers {
            return Err(plain(
                StatusCode::BAD_REQUEST,
                "request headers too large\n",
            ));
        }
        let path = req.uri().path();
        let route = if path == "/healthz" {
            return Err(plain(StatusCode::OK, "ok\n"));
        } else if path == "/shopbase" || path.starts_with("/shopbase/") {
            Route::ShopBase
        } else if let Some(api) = path.strip_prefix("/tiktok/") {
            if api.is_empty() {
                return Err(plain(
                    StatusCode::BAD_REQUEST,
                    "no API named: /tiktok/{api}\n",
                ));
            }
            Route::TikTok(api.as_bytes().to_vec())
        } else {
            return Err(plain(
                StatusCode::NOT_FOUND,
                "routes: /shopbase/..., /tiktok/{api}\n",
            ));
        };
        let app = id(req, APP_HEADER)
            .ok_or_else(|| plain(StatusCode::BAD_REQUEST, "X-App-Id: a decimal u64 id\n"))?;
        let shop = id(req, SHOP_HEADER)
            .ok_or_else(|| plain(StatusCode::BAD_REQUEST, "X-Shop-Id: a decimal u64 id\n"))?;
        let key = match &route {
            Route::ShopBase => Key::pair(app, shop),
            Route::TikTok(api) => {
                // (app, shop, API): fixed-width ids, then the API's bytes — an injective
                // encoding, folded by the table's seeded SipHash-2-4-128.
                let mut bytes = Vec::with_capacity(16 + api.len());
                bytes.extend_from_slice(&app.to_le_bytes());
                bytes.extend_from_slice(&shop.to_le_bytes());
                bytes.extend_from_slice(api);
                self.tiktok.seed().key_bytes(&bytes)
            }
        };
        Ok(Call {
            route,
            app,
            shop,
            tier: self.tier_of(shop),
            key,
        })
    }

    /// Steps 4–6: pagination, the concurrency cap, the rate limit.
    fn admit<B>(&self, req: &Request<B>, call: Call) -> Result<Plan<'_>, Refusal> {
        let now = self.clock.now();
        let mut shadow_refused = false;
        if call.route == Route::ShopBase && req.method() == Method::GET {
            let query = req.uri().query().unwrap_or("");
            match pagination::check_query(query.as_bytes(), pagination::DEFAULT_MAX_OFFSET) {
                Err(_) => {
                    return Err(plain(StatusCode::BAD_REQUEST, "limit, page: decimal u64\n"));
                }
                Ok(Outcome::Never) if self.shadow => shadow_refused = true,
                Ok(Outcome::Never) => {
                    let mut resp = plain(
                        StatusCode::TOO_MANY_REQUESTS,
                        "page too deep: limit x page must not exceed 100000\n",
                    );
                    let d = self.peek(&call, now);
                    self.policy_headers(resp.headers_mut(), &call, d.as_ref());
                    return Err(resp);
                }
                Ok(_) => {}
            }
        }
        // Held until the upstream has answered (`serve`); a refusal below drops it at once.
        let Ok(permit) = self.cap.acquire() else {
            let mut resp = plain(StatusCode::SERVICE_UNAVAILABLE, "upstream busy, retry\n");
            set(resp.headers_mut(), header::RETRY_AFTER, "1");
            let d = self.peek(&call, now);
            self.policy_headers(resp.headers_mut(), &call, d.as_ref());
            return Err(resp);
        };
        let decided = match &call.route {
            Route::ShopBase => self.shopbase.decide(call.key, call.tier, now, 1),
            Route::TikTok(_) => self.tiktok.decide(call.key, call.tier, now, 1),
        };
        let Ok(mut d) = decided else {
            return Err(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "clock out of range\n",
            ));
        };
        if self.shadow {
            d = d.shadow();
            shadow_refused |= d.would_limit();
        }
        let mut headers = HeaderMap::new();
        self.policy_headers(&mut headers, &call, Some(&d));
        if self.shadow {
            if shadow_refused {
                self.counters.would_limit.fetch_add(1, Ordering::Relaxed);
            }
            let v = if shadow_refused {
                "would-limit"
            } else {
                "pass"
            };
            set(&mut headers, SHADOW_HEADER, v);
        }
        if !d.is_allowed() {
            let mut resp = if d.outcome == Outcome::Overloaded {
                plain(StatusCode::SERVICE_UNAVAILABLE, "key table full\n")
            } else {
                plain(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n")
            };
            resp.headers_mut().extend(headers);
            if let Ok(Some(s)) = header::retry_after_seconds(&d, TPS) {
                set(resp.headers_mut(), header::RETRY_AFTER, &s.to_string());
            }
            return Err(resp);
        }
        Ok(Plan {
            permit,
            call,
            headers,
        })
    }

    /// Step 7: the stand-in upstream. The concurrency permit is released when `plan` is
    /// dropped: after the answer, or when the connection goes away mid-await.
    async fn serve(&self, plan: Plan<'_>) -> Response<Full<Bytes>> {
        tokio::time::sleep(self.latency).await;
        let what = match &plan.call.route {
            Route::ShopBase => "shopbase".to_owned(),
            Route::TikTok(api) => format!("tiktok {}", String::from_utf8_lossy(api)),
        };
        let body = format!(
            "{{\"ok\":true,\"upstream\":\"{what}\",\"app\":{},\"shop\":{}}}\n",
            plan.call.app, plan.call.shop
        );
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        resp.headers_mut().extend(plan.headers);
        set(resp.headers_mut(), "content-type", "application/json");
        drop(plan.permit);
        resp
    }

    /// The key's numbers for the headers of a refusal that spends nothing.
    fn peek(&self, call: &Call, now: u64) -> Option<Decision> {
        match call.route {
            Route::ShopBase => self.shopbase.peek(call.key, call.tier, now, 1).ok(),
            Route::TikTok(_) => self.tiktok.peek(call.key, call.tier, now, 1).ok(),
        }
    }

    /// `X-Sb-Shop-Api-Call-Limit` (ShopBase), `RateLimit` (with a decision) and
    /// `RateLimit-Policy` (the shop's tier).
    fn policy_headers(&self, headers: &mut HeaderMap, call: &Call, d: Option<&Decision>) {
        let (resp, tier) = (headers, call.tier);
        match call.route {
            Route::ShopBase => {
                if let Some(d) = d {
                    put(resp, header::SHOP_API_CALL_LIMIT, |b| {
                        header::write_shop_api_call_limit(d, b)
                    });
                    put(resp, header::RATELIMIT, |b| {
                        header::write_ratelimit("shopbase", d, TPS, b)
                    });
                }
                let q = &self.shopbase_tiers[tier];
                put(resp, header::RATELIMIT_POLICY, |b| {
                    header::write_ratelimit_policy_bucket("shopbase", q, TPS, b)
                });
            }
            Route::TikTok(_) => {
                if let Some(d) = d {
                    put(resp, header::RATELIMIT, |b| {
                        header::write_ratelimit("tiktok", d, TPS, b)
                    });
                }
                let q = &self.tiktok_tiers[tier];
                put(resp, header::RATELIMIT_POLICY, |b| {
                    header::write_ratelimit_policy_window("tiktok", q, TPS, b)
                });
            }
        }
    }
}

/// Sets header `name` to what `write` formats (tollgate's allocation-free header writers).
fn put(
    resp: &mut HeaderMap,
    name: &str,
    write: impl FnOnce(&mut [u8]) -> Result<usize, tollgate::Error>,
) {
    let mut buf = [0u8; 96];
    if let Ok(n) = write(&mut buf) {
        if let Ok(v) = std::str::from_utf8(&buf[..n]) {
            set(resp, name, v);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    ShopBase,
    TikTok(Vec<u8>),
}

/// Who is calling, on which policy.
struct Call {
    route: Route,
    app: u64,
    shop: u64,
    tier: usize,
    key: Key,
}

/// An admitted request on its way to the upstream.
struct Plan<'a> {
    /// The concurrency permit, held until the upstream answered.
    permit: Permit<'a>,
    call: Call,
    /// The policy headers to add to the upstream's answer.
    headers: HeaderMap,
}

/// A decimal u64 id in header `name`: digits only, exactly one such header.
fn id<B>(req: &Request<B>, name: &str) -> Option<u64> {
    let mut values = req.headers().get_all(name).iter();
    let v = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let s = v.to_str().ok()?;
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn set(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
    }
}

/// A refusal: a whole response, boxed (it is large next to a [`Plan`]).
type Refusal = Box<Response<Full<Bytes>>>;

fn plain(status: StatusCode, body: &'static str) -> Refusal {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    set(resp.headers_mut(), "content-type", "text/plain");
    Box::new(resp)
}

/// Serves `listener` with `gateway` until the task is dropped. Accept errors (out of file
/// descriptors under load) pause the loop briefly; a failing connection ends only itself.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let gw = Arc::clone(&gateway);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let gw = Arc::clone(&gw);
                async move { Ok::<_, Infallible>(gw.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(HYPER_MAX_BUF)
                .max_headers(HYPER_MAX_HEADERS)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds 127.0.0.1 on the configured port.
pub fn bind(config: &Config) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.port)))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The gateway program: binds, prints `listening on 127.0.0.1:PORT`, serves until SIGINT,
/// SIGTERM or `--duration`, then prints the counters.
pub fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let gateway = Arc::new(Gateway::new(config)?);
    let listener = bind(config)?;
    let addr = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()?;
    let stop = rt.block_on(async {
        let listener = TcpListener::from_std(listener)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        writeln!(
            out,
            "policies: ShopBase bucket 30 @ 2/s per (app, shop) on /shopbase/..., TikTok Shop 50/s per (app, shop, api) on /tiktok/{{api}}; cap {} in flight; {} slots per table{}",
            config.max_in_flight,
            config.slots,
            if config.shadow { "; SHADOW MODE" } else { "" }
        )?;
        out.flush()?;
        drop(out);
        tokio::spawn(serve(listener, Arc::clone(&gateway)));
        Ok::<_, std::io::Error>(stop_signal(config.duration).await)
    })?;
    rt.shutdown_timeout(Duration::from_millis(200));
    println!("stopping ({stop})");
    print!("{}", gateway.report());
    Ok(())
}

/// Waits for SIGINT, SIGTERM or the duration; says which.
async fn stop_signal(duration: Option<Duration>) -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(3);
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
    ] {
        if let Ok(mut s) = signal(kind) {
            let tx = tx.clone();
            tokio::spawn(async move {
                s.recv().await;
                let _ = tx.send(name).await;
            });
        }
    }
    if let Some(d) = duration {
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            let _ = tx.send("--duration elapsed").await;
        });
    }
    drop(tx);
    rx.recv().await.unwrap_or("no stop source")
}
