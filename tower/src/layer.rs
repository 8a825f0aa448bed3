//! The server side: [`RateLimitLayer`], its [`Policy`]s per route, and the [`RateLimit`]
//! service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tollgate::{header, pagination, Decision, Error, Outcome};
use tower_layer::Layer;
use tower_service::Service;

use crate::backend::Backend;
use crate::body::ResponseBody;
use crate::key::{KeyExtractor, RequestHead, RequestKey};
use crate::values;

/// The most tiers a policy reads from its backend.
const MAX_TIERS: usize = 256;

/// The response header that marks a shadow-mode decision: `would-limit` or `pass`.
pub const SHADOW_HEADER: &str = "x-tollgate-shadow";

type TierFn = dyn Fn(&RequestHead<'_>) -> usize + Send + Sync;

/// One rate limit: a backend holding the quotas, whose key a request spends, and how the
/// answers look.
///
/// ```
/// use tollgate_tower::{KeyExtractor, LocalTable, Policy};
/// // ShopBase's policy: (app, shop) from two id headers, X-Sb-Shop-Api-Call-Limit on every
/// // answer, deep pagination refused.
/// let shopbase = Policy::shopbase(
///     LocalTable::shopbase(15_000)?,
///     KeyExtractor::id_pair("x-app-id", "x-shop-id"),
/// );
/// // A policy of your own, trialled in shadow mode first.
/// let per_ip = Policy::new("per-ip", LocalTable::shopbase(15_000)?, KeyExtractor::peer_ip())?
///     .shadow(true);
/// assert_eq!((shopbase.name(), per_ip.name()), ("shopbase", "per-ip"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Policy<B> {
    name: String,
    backend: B,
    key: KeyExtractor,
    tier: Option<Arc<TierFn>>,
    shadow: bool,
    call_limit_header: bool,
    max_offset: Option<u64>,
    /// `RateLimit-Policy` by tier.
    tier_policies: Vec<HeaderValue>,
    /// `"{name}";r=`, the start of every `RateLimit` value.
    ratelimit_prefix: Vec<u8>,
    counters: Counters,
}

impl<B: fmt::Debug> fmt::Debug for Policy<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("shadow", &self.shadow)
            .field("call_limit_header", &self.call_limit_header)
            .field("max_offset", &self.max_offset)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Counters {
    allowed: AtomicU64,
    limited: AtomicU64,
    overloaded: AtomicU64,
    would_limit: AtomicU64,
    rejected_key: AtomicU64,
    errors: AtomicU64,
}

/// A policy's counters since the layer was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PolicyStats {
    /// Requests passed to the inner service (shadow-mode ones included).
    pub allowed: u64,
    /// Answered 429 (rate limited, or a request that can never pass).
    pub limited: u64,
    /// Answered 503 (a full key table, fail-closed).
    pub overloaded: u64,
    /// Shadow mode: requests enforcement would have refused.
    pub would_limit: u64,
    /// Refused because their key could not be read.
    pub rejected_key: u64,
    /// Answered 500 because the backend reported an error.
    pub errors: u64,
}

impl<B: Backend> Policy<B> {
    /// A policy named `name` (the name in the `RateLimit` headers: printable ASCII without `"`
    /// or `\`, else [`Error::InvalidArgument`]), deciding in `backend` for the key `key` reads,
    /// on tier 0, enforced, with `RateLimit` and `RateLimit-Policy` on every answer.
    pub fn new(name: &str, backend: B, key: KeyExtractor) -> Result<Policy<B>, Error> {
        header::write_ratelimit_policy(name, 0, 0, &mut [0u8; 128])?;
        Ok(Policy::named(name, backend, key))
    }

    /// [`Policy::new`] with a name known to be valid.
    fn named(name: &str, backend: B, key: KeyExtractor) -> Policy<B> {
        let tier_policies = (0..MAX_TIERS)
            .map_while(|tier| backend.tier(tier))
            .map(|info| {
                value(|b| header::write_ratelimit_policy(name, info.limit, info.window_seconds, b))
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        Policy {
            name: name.to_owned(),
            backend,
            key,
            tier: None,
            shadow: false,
            call_limit_header: false,
            max_offset: None,
            tier_policies,
            ratelimit_prefix: values::ratelimit_prefix(name),
            counters: Counters::default(),
        }
    }

    /// ShopBase's policy (see `docs/semantics.md#vendor-presets`) over `backend`, which should
    /// hold ShopBase's quota ([`LocalTable::shopbase`](crate::LocalTable::shopbase)): named
    /// `shopbase`, `X-Sb-Shop-Api-Call-Limit: used/limit` on every answer, and a GET whose
    /// `limit × page` exceeds 100 000 refused with 429 (see
    /// `docs/semantics.md#deep-pagination`).
    pub fn shopbase(backend: B, key: KeyExtractor) -> Policy<B> {
        let mut p = Policy::named("shopbase", backend, key);
        p.call_limit_header = true;
        p.max_offset = Some(tollgate::presets::shopbase::MAX_OFFSET);
        p
    }

    /// TikTok Shop's policy over `backend`, which should hold its fixed window
    /// ([`LocalTable::tiktok_shop`](crate::LocalTable::tiktok_shop)): named `tiktok`; key it by
    /// (app, shop, api), for example `KeyExtractor::id_pair(..).with_rest()`.
    pub fn tiktok_shop(backend: B, key: KeyExtractor) -> Policy<B> {
        Policy::named("tiktok", backend, key)
    }

    /// Shadow (dry-run) mode (see `docs/semantics.md#shadow-mode`): every decision is made and
    /// recorded as if enforced, every request passes, and `X-Tollgate-Shadow: would-limit`
    /// marks those enforcement would have refused.
    #[must_use]
    pub fn shadow(mut self, on: bool) -> Policy<B> {
        self.shadow = on;
        self
    }

    /// Adds ShopBase's `X-Sb-Shop-Api-Call-Limit: used/limit` to every answer.
    #[must_use]
    pub fn call_limit_header(mut self, on: bool) -> Policy<B> {
        self.call_limit_header = on;
        self
    }

    /// Refuses a GET whose `limit × page` exceeds `max` with 429 (never retryable: no
    /// `Retry-After`); a non-numeric `limit` or `page` gets 400. `None` turns the rule off.
    #[must_use]
    pub fn deep_pagination(mut self, max: Option<u64>) -> Policy<B> {
        self.max_offset = max;
        self
    }

    /// Chooses each request's tier (per-key quotas, see `docs/semantics.md#quota-changes`),
    /// for example from a plan header. A tier the backend does not have gets 500.
    #[must_use]
    pub fn tier_by<F>(mut self, f: F) -> Policy<B>
    where
        F: Fn(&RequestHead<'_>) -> usize + Send + Sync + 'static,
    {
        self.tier = Some(Arc::new(f));
        self
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The counters.
    pub fn stats(&self) -> PolicyStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PolicyStats {
            allowed: get(&c.allowed),
            limited: get(&c.limited),
            overloaded: get(&c.overloaded),
            would_limit: get(&c.would_limit),
            rejected_key: get(&c.rejected_key),
            errors: get(&c.errors),
        }
    }
}

struct Route<B> {
    prefix: String,
    policy: Policy<B>,
}

struct Shared<B> {
    /// Longest prefix first.
    routes: Vec<Route<B>>,
}

/// A tower [`Layer`] that rate-limits requests by route: each route prefix has its
/// [`Policy`]; a request on no route passes untouched. Cheap to clone; every clone shares the
/// policies (and so the limits).
///
/// Answers: 429 `Too Many Requests` when a key is over its limit (with `Retry-After`), or for a
/// request that can never pass (no `Retry-After`); 503 when a full key table refuses a new key;
/// 400 when a request's key cannot be read. Every answer of a policy, the inner service's
/// included, carries `RateLimit` and `RateLimit-Policy` (see
/// `docs/semantics.md#header-values`), and `X-Sb-Shop-Api-Call-Limit` when the policy asks.
///
/// ```
/// use axum::{body::Body, routing::get, Router};
/// use http::Request;
/// use tollgate_tower::{KeyExtractor, LocalTable, Policy, RateLimitLayer};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = RateLimitLayer::builder()
///     .route("/shopbase", Policy::shopbase(
///         LocalTable::shopbase(15_000)?,
///         KeyExtractor::id_pair("x-app-id", "x-shop-id"),
///     ))
///     .route("/tiktok", Policy::tiktok_shop(
///         LocalTable::tiktok_shop(15_000)?,
///         KeyExtractor::id_pair("x-app-id", "x-shop-id").with_rest(),
///     ))
///     .build();
/// let app = Router::new()
///     .route("/shopbase/orders", get(|| async { "orders" }))
///     .route("/tiktok/{api}", get(|| async { "tiktok" }))
///     .layer(layer);
///
/// let req = Request::get("/shopbase/orders")
///     .header("x-app-id", "7")
///     .header("x-shop-id", "42")
///     .body(Body::empty())?;
/// let resp = app.oneshot(req).await?;
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.headers()["x-sb-shop-api-call-limit"], "1/30");
/// assert_eq!(resp.headers()["ratelimit-policy"], "\"shopbase\";q=30;w=15");
/// # Ok(()) }
/// ```
pub struct RateLimitLayer<B> {
    shared: Arc<Shared<B>>,
}

impl<B> Clone for RateLimitLayer<B> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for RateLimitLayer<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_map();
        for r in &self.shared.routes {
            d.entry(&r.prefix, &r.policy);
        }
        d.finish()
    }
}

/// Builds a [`RateLimitLayer`] route by route.
pub struct RateLimitLayerBuilder<B> {
    routes: Vec<Route<B>>,
}

impl<B> fmt::Debug for RateLimitLayerBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|r| &r.prefix))
            .finish()
    }
}

impl<B: Backend> RateLimitLayerBuilder<B> {
    /// Applies `policy` to the paths under `prefix`: the path `prefix` itself and every path
    /// `prefix/...` (`/` is every path). The longest matching prefix wins; the rest of the
    /// path is [`RequestHead::rest`].
    ///
    /// # Panics
    /// If `prefix` does not start with `/` (a configuration error, found at start-up).
    #[must_use]
    pub fn route(mut self, prefix: &str, policy: Policy<B>) -> RateLimitLayerBuilder<B> {
        assert!(prefix.starts_with('/'), "a route prefix starts with '/'");
        let prefix = if prefix.len() > 1 {
            prefix.trim_end_matches('/')
        } else {
            prefix
        };
        self.routes.retain(|r| r.prefix != prefix);
        self.routes.push(Route {
            prefix: prefix.to_owned(),
            policy,
        });
        self
    }

    /// The layer.
    pub fn build(mut self) -> RateLimitLayer<B> {
        self.routes
            .sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        RateLimitLayer {
            shared: Arc::new(Shared {
                routes: self.routes,
            }),
        }
    }
}

impl<B: Backend> RateLimitLayer<B> {
    /// A layer with one policy for every path.
    pub fn new(policy: Policy<B>) -> RateLimitLayer<B> {
        RateLimitLayer::builder().route("/", policy).build()
    }

    /// A builder, to add policies route by route.
    pub fn builder() -> RateLimitLayerBuilder<B> {
        RateLimitLayerBuilder { routes: Vec::new() }
    }

    /// The policy of the route `prefix`, as given to the builder.
    pub fn policy(&self, prefix: &str) -> Option<&Policy<B>> {
        self.shared
            .routes
            .iter()
            .find(|r| r.prefix == prefix)
            .map(|r| &r.policy)
    }
}

impl<S, B> Layer<S> for RateLimitLayer<B> {
    type Service = RateLimit<S, B>;

    fn layer(&self, inner: S) -> RateLimit<S, B> {
        RateLimit {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`RateLimitLayer`] wraps around an inner service.
pub struct RateLimit<S, B> {
    inner: S,
    shared: Arc<Shared<B>>,
}

impl<S: Clone, B> Clone for RateLimit<S, B> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, B> fmt::Debug for RateLimit<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The headers a policy adds to an answer. Kept small: it travels in the response future.
#[derive(Debug, Default)]
struct Extra {
    ratelimit: Option<HeaderValue>,
    policy: Option<HeaderValue>,
    call_limit: Option<HeaderValue>,
    /// Shadow mode: `Some(true)` for `would-limit`, `Some(false)` for `pass`.
    shadow: Option<bool>,
}

impl Extra {
    fn apply(self, headers: &mut HeaderMap) {
        let pairs = [
            (values::RATELIMIT, self.ratelimit),
            (values::RATELIMIT_POLICY, self.policy),
            (values::CALL_LIMIT, self.call_limit),
        ];
        for (name, value) in pairs {
            if let Some(v) = value {
                headers.insert(name, v);
            }
        }
        if let Some(would) = self.shadow {
            let v = if would { "would-limit" } else { "pass" };
            headers.insert(values::SHADOW, HeaderValue::from_static(v));
        }
    }
}

/// A header value written by one of tollgate's allocation-free writers.
fn value(write: impl FnOnce(&mut [u8]) -> Result<usize, Error>) -> Option<HeaderValue> {
    let mut buf = [0u8; 128];
    let n = write(&mut buf).ok()?;
    HeaderValue::from_bytes(&buf[..n]).ok()
}

/// An answer of the layer's own.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    text: &'static str,
    extra: Extra,
    retry_after: Option<HeaderValue>,
}

impl Refusal {
    fn plain(status: StatusCode, text: &'static str) -> Refusal {
        Refusal {
            status,
            text,
            extra: Extra::default(),
            retry_after: None,
        }
    }

    fn into_response<R>(self) -> Response<ResponseBody<R>> {
        let mut resp = Response::new(ResponseBody::refusal(self.text));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.extra.apply(resp.headers_mut());
        if let Some(v) = self.retry_after {
            resp.headers_mut().insert(RETRY_AFTER, v);
        }
        resp
    }
}

/// What a decision is for.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Decide; `shape_never` if a request-shape rule refused the request in shadow mode.
    Decide { shape_never: bool },
    /// The request can never pass (deep pagination); the backend was only asked for the
    /// numbers of the headers.
    NeverPeek,
}

/// A decision in flight.
#[derive(Clone, Copy, Debug)]
struct Pending {
    route: usize,
    tier: usize,
    mode: Mode,
}

impl<B: Backend> Shared<B> {
    /// The route of `path` and where the rest of the path starts.
    fn find(&self, path: &str) -> Option<(usize, usize)> {
        self.routes.iter().enumerate().find_map(|(i, r)| {
            if r.prefix == "/" {
                return Some((i, 1.min(path.len())));
            }
            let tail = path.strip_prefix(r.prefix.as_str())?;
            if tail.is_empty() {
                Some((i, path.len()))
            } else if tail.starts_with('/') {
                Some((i, r.prefix.len() + 1))
            } else {
                None
            }
        })
    }

    /// The answer to a decision: the headers to add to the inner service's answer, or the
    /// layer's own.
    fn conclude(&self, p: Pending, result: Result<Decision, Error>) -> Result<Extra, Box<Refusal>> {
        let policy = &self.routes[p.route].policy;
        let c = &policy.counters;
        let tps = policy.backend.ticks_per_second();
        let mut extra = Extra {
            policy: policy.tier_policies.get(p.tier).cloned(),
            ..Extra::default()
        };
        let d = match (result, p.mode) {
            (Ok(d), _) => d,
            (Err(_), Mode::NeverPeek) => {
                c.limited.fetch_add(1, Ordering::Relaxed);
                return Err(Box::new(Refusal {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    text: "page too deep: limit x page exceeds the maximum offset\n",
                    extra,
                    retry_after: None,
                }));
            }
            (Err(_), Mode::Decide { .. }) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                return Err(Box::new(Refusal::plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "rate limiter error\n",
                )));
            }
        };
        extra.ratelimit = values::ratelimit(&policy.ratelimit_prefix, &d, tps);
        if policy.call_limit_header {
            extra.call_limit = values::call_limit(&d);
        }
        if let Mode::NeverPeek = p.mode {
            c.limited.fetch_add(1, Ordering::Relaxed);
            return Err(Box::new(Refusal {
                status: StatusCode::TOO_MANY_REQUESTS,
                text: "page too deep: limit x page exceeds the maximum offset\n",
                extra,
                retry_after: None,
            }));
        }
        let mut d = d;
        if policy.shadow {
            d = d.shadow();
            let would = d.would_limit() || matches!(p.mode, Mode::Decide { shape_never: true });
            if would {
                c.would_limit.fetch_add(1, Ordering::Relaxed);
            }
            extra.shadow = Some(would);
        }
        if d.is_allowed() {
            c.allowed.fetch_add(1, Ordering::Relaxed);
            return Ok(extra);
        }
        let retry_after = values::retry_after(&d, tps);
        let (status, text) = if d.outcome == Outcome::Overloaded {
            c.overloaded.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "rate limiter full, retry later\n",
            )
        } else {
            c.limited.fetch_add(1, Ordering::Relaxed);
            (StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n")
        };
        Err(Box::new(Refusal {
            status,
            text,
            extra,
            retry_after,
        }))
    }
}

impl<S, B, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, B>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    B: Backend,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &*self.shared;
        let Some((route, rest_at)) = shared.find(req.uri().path()) else {
            return ResponseFuture::inner(self.inner.call(req), None);
        };
        let policy = &shared.routes[route].policy;
        let (key, tier, mode) = {
            let path = req.uri().path();
            let head = RequestHead::new(&req, path.get(rest_at..).unwrap_or(""));
            let key = match policy.key.extract(&head) {
                Ok(RequestKey::Exact(k)) => k,
                Ok(RequestKey::Bytes(b)) => policy.backend.key_bytes(&b),
                Err(rej) => {
                    policy.counters.rejected_key.fetch_add(1, Ordering::Relaxed);
                    return ResponseFuture::done(Box::new(Refusal::plain(rej.status, rej.message)));
                }
            };
            let tier = policy.tier.as_ref().map_or(0, |f| f(&head));
            let mut mode = Mode::Decide { shape_never: false };
            if let (Some(max), &Method::GET) = (policy.max_offset, req.method()) {
                let query = req.uri().query().unwrap_or("");
                match pagination::check_query(query.as_bytes(), max) {
                    Err(_) => {
                        policy.counters.rejected_key.fetch_add(1, Ordering::Relaxed);
                        return ResponseFuture::done(Box::new(Refusal::plain(
                            StatusCode::BAD_REQUEST,
                            "limit, page: decimal u64\n",
                        )));
                    }
                    Ok(Outcome::Never) if policy.shadow => {
                        mode = Mode::Decide { shape_never: true }
                    }
                    Ok(Outcome::Never) => mode = Mode::NeverPeek,
                    Ok(_) => {}
                }
            }
            (key, tier, mode)
        };
        let mut decision = match mode {
            Mode::NeverPeek => policy.backend.peek(key, tier, 1),
            Mode::Decide { .. } => policy.backend.decide(key, tier, 1),
        };
        let pending = Pending { route, tier, mode };
        // An in-process backend is ready at once: answer without cloning the inner service. A
        // backend that is not ready gets the real waker when the response future is polled.
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut decision).poll(&mut cx) {
            Poll::Ready(result) => match shared.conclude(pending, result) {
                Ok(extra) => ResponseFuture::inner(self.inner.call(req), Some(extra)),
                Err(refusal) => ResponseFuture::done(refusal),
            },
            Poll::Pending => {
                let clone = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    state: State::Deciding {
                        parked: Some(Box::new(Parked {
                            decision,
                            service,
                            request: req,
                            shared: Arc::clone(&self.shared),
                            pending,
                        })),
                    },
                }
            }
        }
    }
}

/// A request waiting for its decision (boxed: only a backend that is not ready at once needs
/// it, and it would make every response future larger).
struct Parked<D, S, Q, H> {
    decision: D,
    service: S,
    request: Q,
    shared: H,
    pending: Pending,
}

pin_project! {
    #[project = StateProj]
    enum State<F, D, S, Q, H> {
        Inner { #[pin] future: F, extra: Option<Extra> },
        Deciding { parked: Option<Box<Parked<D, S, Q, H>>> },
        Done { refusal: Option<Box<Refusal>> },
    }
}

pin_project! {
    /// The response future of [`RateLimit`].
    pub struct ResponseFuture<S, B, ReqBody>
    where
        S: Service<Request<ReqBody>>,
        B: Backend,
    {
        #[pin]
        state: State<S::Future, B::Future, S, Request<ReqBody>, Arc<Shared<B>>>,
    }
}

impl<S, B, ReqBody> fmt::Debug for ResponseFuture<S, B, ReqBody>
where
    S: Service<Request<ReqBody>>,
    B: Backend,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<S, B, ReqBody> ResponseFuture<S, B, ReqBody>
where
    S: Service<Request<ReqBody>>,
    B: Backend,
{
    fn inner(future: S::Future, extra: Option<Extra>) -> Self {
        ResponseFuture {
            state: State::Inner { future, extra },
        }
    }

    fn done(refusal: Box<Refusal>) -> Self {
        ResponseFuture {
            state: State::Done {
                refusal: Some(refusal),
            },
        }
    }
}

impl<S, B, ReqBody, ResBody> Future for ResponseFuture<S, B, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    B: Backend,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProj::Inner { future, extra } => {
                    let resp = std::task::ready!(future.poll(cx))?;
                    let (parts, body) = resp.into_parts();
                    let mut resp = Response::from_parts(parts, ResponseBody::inner(body));
                    if let Some(extra) = extra.take() {
                        extra.apply(resp.headers_mut());
                    }
                    return Poll::Ready(Ok(resp));
                }
                StateProj::Done { refusal } => {
                    let refusal = refusal.take().expect("polled after completion");
                    return Poll::Ready(Ok((*refusal).into_response()));
                }
                StateProj::Deciding { parked } => {
                    let p = parked.as_mut().expect("polled after completion");
                    let result = std::task::ready!(Pin::new(&mut p.decision).poll(cx));
                    let Parked {
                        mut service,
                        request,
                        shared,
                        pending,
                        ..
                    } = *parked.take().expect("polled after completion");
                    match shared.conclude(pending, result) {
                        Ok(extra) => State::Inner {
                            future: service.call(request),
                            extra: Some(extra),
                        },
                        Err(refusal) => State::Done {
                            refusal: Some(refusal),
                        },
                    }
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}
