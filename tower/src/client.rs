//! The client side: [`PacedMiddleware`], a reqwest-middleware that keeps an app under a
//! vendor's limits (see `docs/semantics.md#client-toolkit`).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Extensions, Method, StatusCode};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tokio::time::Instant;
use tollgate::client::{
    next_step, parse_retry_after, safe_burst, safe_window, seconds_to_ticks, Backoff, Class,
    Jitter, Next as Step, Pacer, RetryBudget, SplitMix64,
};
use tollgate::presets::{shopbase, tiktok_shop};
use tollgate::{header, Error, LeakyBucket, Quota, SlidingLog, WindowQuota};

/// Ticks per second of the middleware's clock: nanoseconds.
const TPS: u64 = 1_000_000_000;

/// The capacity of a window mirror's sliding log.
const LOG_CAPACITY: usize = 256;

/// The largest window limit a [`Vendor::window`] mirror holds (its sliding log's capacity).
pub const MAX_WINDOW_LIMIT: u64 = LOG_CAPACITY as u64;

/// Pacers kept before the idle ones are forgotten.
const PRUNE_AT: usize = 4_096;

/// Slots of the retry budget's sliding window.
const BUDGET_SLOTS: usize = 10;

/// Which (app, shop, api) a request belongs to: each key has its own pacer. Attach it to a
/// request with `RequestBuilder::with_extension`. Without one, a request is paced by the
/// middleware's default app and the URL's host as the shop.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PaceKey {
    app: u64,
    shop: u64,
    api: Option<String>,
}

impl PaceKey {
    /// The key of `shop` for `app`.
    pub const fn new(app: u64, shop: u64) -> PaceKey {
        PaceKey {
            app,
            shop,
            api: None,
        }
    }

    /// The same key for one API, for vendors that limit each API separately (TikTok Shop). A
    /// vendor limiting per (app, shop) ignores it.
    #[must_use]
    pub fn api(mut self, api: impl Into<String>) -> PaceKey {
        self.api = Some(api.into());
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    Bucket { burst: u64, per_second: u64 },
    Window { limit: u64, window: Duration },
}

/// A vendor's limit as its clients see it: the limiter to mirror, what its keys are, and which
/// headers it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vendor {
    limit: Limit,
    per_api: bool,
    call_limit_header: bool,
    never_without_retry_after: bool,
}

impl Vendor {
    /// ShopBase (see `docs/semantics.md#vendor-presets`): a leaky bucket of 30 draining 2 per
    /// second per (app, shop); `X-Sb-Shop-Api-Call-Limit` on every answer; a 429 without
    /// `Retry-After` is its deep-pagination refusal, which retrying cannot help.
    pub fn shopbase() -> Vendor {
        Vendor {
            limit: Limit::Bucket {
                burst: shopbase::BURST,
                per_second: shopbase::PER_SECOND,
            },
            per_api: false,
            call_limit_header: true,
            never_without_retry_after: true,
        }
    }

    /// TikTok Shop: 50 per second per (app, shop, api), mirrored by a strict sliding window.
    pub fn tiktok_shop() -> Vendor {
        Vendor {
            limit: Limit::Window {
                limit: tiktok_shop::PER_SECOND,
                window: Duration::from_secs(1),
            },
            per_api: true,
            call_limit_header: false,
            never_without_retry_after: false,
        }
    }

    /// A leaky bucket of `burst` draining `per_second` per (app, shop).
    pub fn bucket(burst: u64, per_second: u64) -> Vendor {
        Vendor {
            limit: Limit::Bucket { burst, per_second },
            per_api: false,
            call_limit_header: false,
            never_without_retry_after: false,
        }
    }

    /// At most `limit` (up to [`MAX_WINDOW_LIMIT`]) per `window` per (app, shop).
    pub fn window(limit: u64, window: Duration) -> Vendor {
        Vendor {
            limit: Limit::Window { limit, window },
            per_api: false,
            call_limit_header: false,
            never_without_retry_after: false,
        }
    }

    /// Whether each API of a shop has its own limit.
    #[must_use]
    pub fn per_api(mut self, on: bool) -> Vendor {
        self.per_api = on;
        self
    }

    /// Whether the vendor sends `X-Sb-Shop-Api-Call-Limit: used/limit` to sync from.
    #[must_use]
    pub fn call_limit_header(mut self, on: bool) -> Vendor {
        self.call_limit_header = on;
        self
    }
}

/// A key's pacer: the mirror of the vendor's limiter, with its `Retry-After` block.
#[derive(Debug)]
enum KeyPacer {
    Bucket(Pacer<LeakyBucket>),
    Log(Box<Pacer<SlidingLog<LOG_CAPACITY>>>),
}

impl KeyPacer {
    fn reserve(&mut self, now: u64) -> Result<Option<u64>, Error> {
        match self {
            KeyPacer::Bucket(p) => p.reserve(now, 1),
            KeyPacer::Log(p) => p.reserve(now, 1),
        }
    }

    /// Whether forgetting this pacer changes nothing: its mirror is empty at `now` and no
    /// `Retry-After` is pending.
    fn is_idle(&mut self, now: u64) -> bool {
        // A request of the whole capacity could go now only into an empty mirror.
        let next = match self {
            KeyPacer::Bucket(p) => {
                let all = p.mirror().quota().burst();
                p.next_send(now, all)
            }
            KeyPacer::Log(p) => {
                let all = p.mirror().quota().limit();
                p.next_send(now, all)
            }
        };
        next == Ok(Some(now))
    }

    fn blocked_until(&self) -> u64 {
        match self {
            KeyPacer::Bucket(p) => p.blocked_until(),
            KeyPacer::Log(p) => p.blocked_until(),
        }
    }

    fn sync(
        &mut self,
        sent_at: u64,
        now: u64,
        call_limit: Option<&[u8]>,
        retry_after: Option<&[u8]>,
    ) {
        let now_unix = unix_now();
        // A malformed header is not applied; the rest of the answer still is.
        let _ = match self {
            KeyPacer::Bucket(p) => p.sync(sent_at, now, now_unix, TPS, call_limit, retry_after),
            KeyPacer::Log(p) => p.sync(sent_at, now, now_unix, TPS, call_limit, retry_after),
        };
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the state regardless.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ticks(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The middleware's counters since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientStats {
    /// Attempts sent (first tries and retries).
    pub sent: u64,
    /// Retries sent.
    pub retries: u64,
    /// Answers 429 received.
    pub limited: u64,
    /// Answers 503 received.
    pub unavailable: u64,
    /// Transport errors.
    pub transport_errors: u64,
    /// Requests given up because the retry budget refused a retry.
    pub budget_refused: u64,
    /// Requests given up because their retries were all used.
    pub attempts_exhausted: u64,
    /// Requests not retried because they can never succeed as they are.
    pub fatal: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    retries: AtomicU64,
    limited: AtomicU64,
    unavailable: AtomicU64,
    transport_errors: AtomicU64,
    budget_refused: AtomicU64,
    attempts_exhausted: AtomicU64,
    fatal: AtomicU64,
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug)]
struct Inner {
    vendor: Vendor,
    bucket: Option<Quota>,
    window: Option<WindowQuota>,
    backoff: Backoff,
    default_app: u64,
    origin: Instant,
    host_seed: RandomState,
    pacers: Mutex<HashMap<PaceKey, Arc<Mutex<KeyPacer>>>>,
    budget: Mutex<RetryBudget<BUDGET_SLOTS>>,
    rng: Mutex<SplitMix64>,
    counters: Counters,
}

/// Paces, syncs and retries the requests of a `reqwest_middleware::ClientWithMiddleware` by a
/// [`Vendor`]'s limits. Cheap to clone; clones share every pacer, the retry budget and the
/// counters, so one middleware serves all the tasks of an app. It keeps one pacer per key it
/// has seen; past 4 096, the idle ones (empty mirror, no `Retry-After` pending, no request
/// waiting) are forgotten, which changes nothing (a new pacer is the same).
///
/// # Why reqwest-middleware
///
/// The middleware plugs into `reqwest_middleware::ClientWithMiddleware`, the hook Rust HTTP
/// clients already use for tracing, caching and retries, rather than being a tower service
/// around `reqwest::Client`: callers keep reqwest's request builder (`client.get(url)
/// .header(..).send()`), and name the (app, shop, api) a request belongs to with
/// `.with_extension(PaceKey::new(..))` on the same builder. A tower service would make them
/// build `reqwest::Request`s by hand and drive `ready().await?.call(req)`. Put it in place of
/// any other retry middleware: it retries by itself, and two retry layers multiply attempts.
///
/// # What it does per request
///
/// 1. **Pace**: waits (with tokio's timer) until the key's mirror of the vendor's limiter
///    admits the request, booking its turn first, so tasks sharing a key go out in order
///    without waking one another.
/// 2. **Send**, then **sync** the mirror with the answer: ShopBase's `used/limit` header raises
///    it (never lowers it); a 429's `Retry-After` blocks the key until then.
/// 3. **Classify**: 2xx–3xx done; 429, 503 and (for idempotent methods) transport errors may
///    be retried; anything else, and a request that can never pass, is returned as it is.
/// 4. **Retry** with exponential backoff and jitter, never sooner than `Retry-After`, and only
///    while the retry budget (a share of recent successes, plus a floor) allows; each retry
///    is paced again. A request whose body cannot be cloned (a stream) is sent once.
///
/// ```no_run
/// use reqwest_middleware::ClientBuilder;
/// use tollgate_tower::{PaceKey, PacedMiddleware, Vendor};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let paced = PacedMiddleware::builder(Vendor::shopbase()).build()?;
/// let client = ClientBuilder::new(reqwest::Client::new()).with(paced.clone()).build();
/// // Any number of tasks may share `client`: the pacer of (app 7, shop 42) is shared.
/// let resp = client
///     .get("http://127.0.0.1:8080/admin/orders.json")
///     .with_extension(PaceKey::new(7, 42))
///     .send()
///     .await?;
/// println!("{} after {} retries", resp.status(), paced.stats().retries);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PacedMiddleware {
    inner: Arc<Inner>,
}

/// Configures a [`PacedMiddleware`].
#[derive(Clone, Debug)]
pub struct PacedMiddlewareBuilder {
    vendor: Vendor,
    jitter: Duration,
    backoff: (Duration, Duration, u32, Jitter),
    budget: (Duration, u32, u64),
    seed: Option<u64>,
    default_app: u64,
}

impl PacedMiddlewareBuilder {
    /// The network jitter the pacers allow for (default 25 ms): a bucket mirror gives up
    /// ⌈jitter × rate⌉ of its burst, a window mirror lengthens its window by `jitter`, so
    /// requests bunched by the network still pass (see `docs/semantics.md#client-toolkit`).
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The backoff between retries (default 100 ms doubling to 10 s, 5 retries, full jitter).
    /// A delay is never shorter than the server's `Retry-After`.
    #[must_use]
    pub fn backoff(
        mut self,
        base: Duration,
        cap: Duration,
        max_retries: u32,
        jitter: Jitter,
    ) -> Self {
        self.backoff = (base, cap, max_retries, jitter);
        self
    }

    /// The retry budget (default: 10 % of the successes of the last 10 s, plus 10): retries
    /// beyond `per_mille`/1000 of the successes of the last `window`, plus `floor`, are refused.
    #[must_use]
    pub fn budget(mut self, window: Duration, per_mille: u32, floor: u64) -> Self {
        self.budget = (window, per_mille, floor);
        self
    }

    /// Seeds the jitter's generator (default: random), for reproducible runs.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The app of requests without a [`PaceKey`] (default 0).
    #[must_use]
    pub fn default_app(mut self, app: u64) -> Self {
        self.default_app = app;
        self
    }

    /// The middleware. Errors: a limit of 0, a jitter margin that leaves nothing of the burst
    /// ([`Error::CapacityExceeded`]), a window limit above [`MAX_WINDOW_LIMIT`], a backoff
    /// with a zero base or a cap below it, a budget window under 10 ns.
    pub fn build(self) -> Result<PacedMiddleware, Error> {
        let jitter = ticks(self.jitter);
        let (bucket, window) = match self.vendor.limit {
            Limit::Bucket { burst, per_second } => {
                let server = Quota::per_second(burst, per_second, TPS)?;
                (Some(safe_burst(&server, jitter)?), None)
            }
            Limit::Window { limit, window } => {
                if limit > MAX_WINDOW_LIMIT {
                    return Err(Error::CapacityExceeded);
                }
                let server = WindowQuota::new(limit, ticks(window))?;
                (None, Some(safe_window(&server, jitter)?))
            }
        };
        let (base, cap, max_retries, jit) = self.backoff;
        let backoff = Backoff::new(ticks(base), ticks(cap), max_retries, jit)?;
        let (bw, per_mille, floor) = self.budget;
        let budget = RetryBudget::new(ticks(bw), per_mille, floor)?;
        let seed = self
            .seed
            .unwrap_or_else(|| RandomState::new().hash_one(0x7061_6365_u64));
        Ok(PacedMiddleware {
            inner: Arc::new(Inner {
                vendor: self.vendor,
                bucket,
                window,
                backoff,
                default_app: self.default_app,
                origin: Instant::now(),
                host_seed: RandomState::new(),
                pacers: Mutex::new(HashMap::new()),
                budget: Mutex::new(budget),
                rng: Mutex::new(SplitMix64::new(seed)),
                counters: Counters::default(),
            }),
        })
    }
}

/// The error a request gets when it can never pass the vendor's limit as it is (its cost is
/// above the mirror's capacity): it is not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeverError;

impl std::fmt::Display for NeverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request can never pass the vendor's limit")
    }
}

impl std::error::Error for NeverError {}

impl PacedMiddleware {
    /// A builder for `vendor`'s limits.
    pub fn builder(vendor: Vendor) -> PacedMiddlewareBuilder {
        PacedMiddlewareBuilder {
            vendor,
            jitter: Duration::from_millis(25),
            backoff: (
                Duration::from_millis(100),
                Duration::from_secs(10),
                5,
                Jitter::Full,
            ),
            budget: (Duration::from_secs(10), 100, 10),
            seed: None,
            default_app: 0,
        }
    }

    /// The counters.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            sent: get(&c.sent),
            retries: get(&c.retries),
            limited: get(&c.limited),
            unavailable: get(&c.unavailable),
            transport_errors: get(&c.transport_errors),
            budget_refused: get(&c.budget_refused),
            attempts_exhausted: get(&c.attempts_exhausted),
            fatal: get(&c.fatal),
        }
    }

    /// Ticks (nanoseconds) since the middleware was built.
    fn now(&self) -> u64 {
        ticks(self.inner.origin.elapsed())
    }

    fn at(&self, t: u64) -> Instant {
        self.inner.origin + Duration::from_nanos(t)
    }

    /// The pacer of the request's key.
    fn pacer(&self, req: &Request, ext: &Extensions) -> Arc<Mutex<KeyPacer>> {
        let inner = &self.inner;
        let mut key = ext.get::<PaceKey>().cloned().unwrap_or_else(|| {
            let url = req.url();
            let host = (url.host_str().unwrap_or(""), url.port_or_known_default());
            PaceKey::new(inner.default_app, inner.host_seed.hash_one(host))
                .api(url.path().to_owned())
        });
        if !inner.vendor.per_api {
            key.api = None;
        }
        let mut pacers = lock(&inner.pacers);
        if pacers.len() >= PRUNE_AT && !pacers.contains_key(&key) {
            // Forget the pacers no task holds whose mirrors are empty: a new one is the same.
            let now = self.now();
            pacers.retain(|_, p| Arc::strong_count(p) > 1 || !lock(p).is_idle(now));
        }
        Arc::clone(pacers.entry(key).or_insert_with(|| {
            let pacer = match (inner.bucket, inner.window) {
                (Some(q), _) => KeyPacer::Bucket(Pacer::new(LeakyBucket::new(q))),
                (None, Some(w)) => match SlidingLog::new(w) {
                    Ok(log) => KeyPacer::Log(Box::new(Pacer::new(log))),
                    // Checked by the builder: the limit fits the log.
                    Err(_) => unreachable!("window limit checked at build"),
                },
                (None, None) => unreachable!("a vendor has a bucket or a window"),
            };
            Arc::new(Mutex::new(pacer))
        }))
    }

    /// Waits for the key's turn; returns the time the request may be sent (now or just past).
    async fn pace(&self, pacer: &Mutex<KeyPacer>) -> Result<u64, NeverError> {
        let booked = lock(pacer).reserve(self.now());
        let Ok(Some(at)) = booked else {
            return Err(NeverError);
        };
        tokio::time::sleep_until(self.at(at)).await;
        // A 429 that arrived meanwhile blocks the key: wait out its Retry-After too.
        let blocked = lock(pacer).blocked_until();
        if blocked > self.now() {
            tokio::time::sleep_until(self.at(blocked)).await;
        }
        Ok(self.now())
    }

    async fn run(
        &self,
        req: Request,
        ext: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let inner = &self.inner;
        let c = &inner.counters;
        let pacer = self.pacer(&req, ext);
        let idempotent = matches!(
            *req.method(),
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        );
        let mut retries = inner.backoff.start();
        let mut pending = Some(req);
        loop {
            let Some(req) = pending.take() else {
                unreachable!("a request is pending at the top of the loop")
            };
            // Keep a copy for a retry, if the body allows one.
            pending = req.try_clone();
            let sent_at = self
                .pace(&pacer)
                .await
                .map_err(reqwest_middleware::Error::middleware)?;
            bump(&c.sent);
            let result = next.clone().run(req, ext).await;
            let now = self.now();
            let (class, retry_after) = if let Ok(resp) = &result {
                self.observe(&pacer, resp, sent_at, now)
            } else {
                bump(&c.transport_errors);
                let class = if idempotent {
                    Class::of_transport_error()
                } else {
                    Class::Fatal
                };
                (class, None)
            };
            if pending.is_none() && class == Class::Retryable {
                return result;
            }
            let step = {
                let mut budget = lock(&inner.budget);
                let mut rng = lock(&inner.rng);
                next_step(
                    class,
                    now,
                    retry_after,
                    &mut retries,
                    &mut *budget,
                    &mut *rng,
                )
            };
            match step {
                Step::Done => return result,
                Step::GiveUp(why) => {
                    bump(match why {
                        tollgate::client::GiveUp::Fatal => &c.fatal,
                        tollgate::client::GiveUp::BudgetExhausted => &c.budget_refused,
                        tollgate::client::GiveUp::AttemptsExhausted => &c.attempts_exhausted,
                    });
                    return result;
                }
                Step::RetryAt(t) => {
                    bump(&c.retries);
                    tokio::time::sleep_until(self.at(t)).await;
                }
            }
        }
    }

    /// Syncs the key's pacer with an answer; returns its class and the `Retry-After` in ticks.
    fn observe(
        &self,
        pacer: &Mutex<KeyPacer>,
        resp: &Response,
        sent_at: u64,
        now: u64,
    ) -> (Class, Option<u64>) {
        let vendor = &self.inner.vendor;
        let c = &self.inner.counters;
        let status = resp.status();
        let headers = resp.headers();
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .map(http::HeaderValue::as_bytes);
        let call_limit = if vendor.call_limit_header {
            headers
                .get(header::SHOP_API_CALL_LIMIT)
                .map(http::HeaderValue::as_bytes)
        } else {
            None
        };
        let limited = status == StatusCode::TOO_MANY_REQUESTS;
        if limited {
            bump(&c.limited);
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            bump(&c.unavailable);
        }
        // Only a 429's Retry-After blocks the key; a 503's delays this request's retry.
        lock(pacer).sync(
            sent_at,
            now,
            call_limit,
            if limited { retry_after } else { None },
        );
        let mut class = Class::of_status(status.as_u16());
        if limited && retry_after.is_none() && vendor.never_without_retry_after {
            class = Class::Fatal;
        }
        let wait = retry_after
            .and_then(|v| parse_retry_after(v, unix_now()).ok())
            .map(|s| seconds_to_ticks(s, TPS));
        (class, wait)
    }
}

#[async_trait::async_trait]
impl Middleware for PacedMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.run(req, extensions, next).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request::new(Method::GET, "http://127.0.0.1:1/x".parse().unwrap())
    }

    fn key(shop: u64) -> Extensions {
        let mut ext = Extensions::new();
        ext.insert(PaceKey::new(1, shop));
        ext
    }

    #[test]
    fn idle_pacers_are_forgotten_busy_and_held_ones_kept() {
        let m = PacedMiddleware::builder(Vendor::shopbase())
            .build()
            .unwrap();
        let held = m.pacer(&request(), &key(0));
        for shop in 1..PRUNE_AT as u64 {
            let p = m.pacer(&request(), &key(shop));
            if shop % 2 == 0 {
                // A request in the mirror: not idle for another 500 ms.
                assert!(lock(&p).reserve(m.now()).unwrap().is_some());
            }
        }
        assert_eq!(lock(&m.inner.pacers).len(), PRUNE_AT);
        let _new = m.pacer(&request(), &key(u64::MAX));
        let pacers = lock(&m.inner.pacers);
        // Kept: the held one, the 2 047 busy ones, the new one.
        assert_eq!(pacers.len(), 1 + (PRUNE_AT - 1) / 2 + 1);
        assert!(pacers.contains_key(&PaceKey::new(1, 0)));
        assert!(pacers.contains_key(&PaceKey::new(1, 2)));
        assert!(!pacers.contains_key(&PaceKey::new(1, 1)));
        drop(pacers);
        drop(held);
    }

    #[test]
    fn keys_per_vendor() {
        let shopbase = PacedMiddleware::builder(Vendor::shopbase())
            .build()
            .unwrap();
        let tiktok = PacedMiddleware::builder(Vendor::tiktok_shop())
            .build()
            .unwrap();
        let mut a = Extensions::new();
        a.insert(PaceKey::new(1, 2).api("orders"));
        let mut b = Extensions::new();
        b.insert(PaceKey::new(1, 2).api("products"));
        // ShopBase limits per (app, shop): one pacer; TikTok Shop per (app, shop, api): two.
        assert!(Arc::ptr_eq(
            &shopbase.pacer(&request(), &a),
            &shopbase.pacer(&request(), &b)
        ));
        assert!(!Arc::ptr_eq(
            &tiktok.pacer(&request(), &a),
            &tiktok.pacer(&request(), &b)
        ));
        // Without a key: the URL's host and path.
        let none = Extensions::new();
        assert!(Arc::ptr_eq(
            &tiktok.pacer(&request(), &none),
            &tiktok.pacer(&request(), &none)
        ));
        assert_eq!(lock(&tiktok.inner.pacers).len(), 3);
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert_eq!(
            PacedMiddleware::builder(Vendor::window(MAX_WINDOW_LIMIT + 1, Duration::from_secs(1)))
                .build()
                .unwrap_err(),
            Error::CapacityExceeded
        );
        // A margin eating the whole burst: 1 request, 1 per second, 2 s of jitter.
        assert_eq!(
            PacedMiddleware::builder(Vendor::bucket(1, 1))
                .jitter(Duration::from_secs(2))
                .build()
                .unwrap_err(),
            Error::CapacityExceeded
        );
        assert_eq!(
            PacedMiddleware::builder(Vendor::bucket(0, 1))
                .build()
                .unwrap_err(),
            Error::ZeroBurst
        );
        assert!(PacedMiddleware::builder(Vendor::tiktok_shop())
            .backoff(Duration::ZERO, Duration::from_secs(1), 3, Jitter::Full)
            .build()
            .is_err());
    }
}
