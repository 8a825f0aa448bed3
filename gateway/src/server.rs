//! The gateway: per request, in order (see `docs/gateway.md`):
//!
//! 1. hyper refuses a request head over `max_header_bytes` or `max_headers` (431) and closes;
//! 2. the path is normalised ([`crate::path`]) or refused with **400**;
//! 3. `/healthz` and `/metrics` (on the admin listener if there is one);
//! 4. the route: the longest matching prefix (**404** for none), its methods (**405**);
//! 5. the key, from the route's key parts: **400** for a missing or malformed part, **401** for
//!    a missing API key, **404** for an API not in the route's list;
//! 6. the deep-pagination rule on GET and HEAD, after decoding the query: **429** without
//!    `Retry-After` (**400** for a malformed `limit` or `page`);
//! 7. the upstream's concurrency cap: **503** `Retry-After: 1`;
//! 8. for keys with caller-chosen parts, the cap on new keys per owner: **429**;
//! 9. the rate decision: **429** with `Retry-After` (**503** for a full table, fail-closed, or
//!    Redis down, fail-closed);
//! 10. the request is proxied; the upstream unreachable → **502**, too slow → **504**.
//!
//! Steps 2–7 spend nothing and insert no key (their headers come from a peek at a key already
//! held, or a new bucket's numbers). Every answer on a route with a policy carries
//! `RateLimit-Policy`, and where a decision or peek exists `RateLimit` (and, for a bucket policy
//! with `call_limit_header`, `X-Sb-Shop-Api-Call-Limit`) — 502 and 504 included. In shadow mode
//! steps 6, 8 and 9 only report: `X-Tollgate-Shadow: would-limit` or `pass`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self as h, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use tollgate::key::Seed;
use tollgate::{header, ConcurrencyLimit, Decision, Outcome};

use crate::config::{Cli, KeyPart, Route, Settings};
use crate::conn::{Busy, BusyGuard, Deadlines};
use crate::limits::{Backend, BackendSlot, Built, KeyId, NewKeys, RedisReport, TableReport};
use crate::observe::{
    DecisionLabels, Entry, Log, Metrics, ResponseLabels, Source, UpstreamErrorLabels,
    UpstreamLabels,
};
use crate::path;

/// The response header marking a shadow-mode decision: `would-limit` or `pass`.
pub const SHADOW_HEADER: &str = "x-tollgate-shadow";

/// Errors of a body on its way through the gateway.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response the gateway sends.
pub type GatewayBody = BoxBody<Bytes, BoxError>;

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded in either direction; nor is any header
/// a `Connection` header names.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// A fixed, public seed for the key text's hash of API keys sent to Redis: every node must
/// agree on it; it keeps credentials out of Redis's key names.
const API_KEY_SEED: Seed = Seed::new(0x746f_6c6c_6761_7465, 0x6170_692d_6b65_7973);

/// An upstream at run time: its client pool and its concurrency cap.
pub struct UpstreamRt {
    settings: crate::config::Upstream,
    client: Client<HttpConnector, Incoming>,
    cap: ConcurrencyLimit,
}

impl UpstreamRt {
    fn new(u: &crate::config::Upstream) -> UpstreamRt {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(u.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(u.max_idle_connections)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        UpstreamRt {
            settings: u.clone(),
            client,
            cap: ConcurrencyLimit::new(u.max_in_flight),
        }
    }
}

/// Everything one configuration generation needs; replaced whole on reload.
pub struct State {
    /// The validated settings.
    pub settings: Settings,
    slot: BackendSlot,
    backend: Arc<dyn Backend>,
    new_keys: Arc<NewKeys>,
    upstreams: Vec<Arc<UpstreamRt>>,
    /// Seeds the 128-bit keys of the in-process tables from the key text.
    seed: Seed,
}

impl State {
    /// Builds a generation; from `old`, tables, the new-key cap, upstream pools and caps are
    /// kept where unchanged.
    pub fn new(settings: Settings, old: Option<&State>) -> Result<State, String> {
        let slot = BackendSlot::build(&settings, old.map(|o| &o.slot))?;
        let backend = slot.get();
        let new_keys = NewKeys::new(&settings.limits, old.map(|o| &o.new_keys))?;
        let upstreams = settings
            .upstreams
            .iter()
            .map(|u| {
                old.and_then(|o| o.upstreams.iter().find(|x| x.settings == *u))
                    .map_or_else(|| Arc::new(UpstreamRt::new(u)), Arc::clone)
            })
            .collect();
        Ok(State {
            settings,
            slot,
            backend,
            new_keys,
            upstreams,
            seed: match old {
                Some(o) => o.seed,
                None => crate::limits::random_seed()?,
            },
        })
    }

    fn tables(&self) -> Vec<TableReport> {
        let mut t = self.backend.tables();
        if self.settings.routes.iter().any(has_caller_chosen) {
            t.extend(self.new_keys.tables());
        }
        t
    }
}

fn has_caller_chosen(r: &Route) -> bool {
    r.key.iter().any(|k| k.caller_chosen(r.apis.is_some()))
}

/// The running configuration, swapped whole on reload.
#[derive(Debug)]
pub struct Current(RwLock<Arc<State>>);

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Current {
    /// The running generation.
    pub fn get(&self) -> Arc<State> {
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn set(&self, s: Arc<State>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = s;
    }
}

impl Source for Current {
    fn tables(&self) -> Vec<TableReport> {
        self.get().tables()
    }

    fn redis(&self) -> Option<RedisReport> {
        self.get().backend.redis()
    }
}

/// Responses by status class, for the exit report.
#[derive(Debug, Default)]
pub struct Counters {
    by_status: [AtomicU64; 6],
    would_limit: AtomicU64,
}

const REPORTED: [u16; 6] = [200, 400, 404, 429, 503, 0];

/// The gateway: the running configuration and what outlives it.
#[derive(Debug)]
pub struct Gateway {
    current: Arc<Current>,
    /// The metrics.
    pub metrics: Metrics,
    log: Log,
    counters: Counters,
    started: Instant,
    conns: Arc<Semaphore>,
    /// The admin listener's own cap, so that scrapes work while clients fill the main one.
    admin_conns: Arc<Semaphore>,
    max_connections: usize,
}

/// Connections the admin listener (`/metrics`, `/healthz`) serves at once.
pub const ADMIN_CONNECTIONS: usize = 16;

/// A caller's key on a route, once extracted.
struct Call {
    policy: usize,
    key: KeyId,
    tier: usize,
    caller_chosen: bool,
}

/// What the pipeline knows about a request, for the log and the metrics.
#[derive(Default)]
struct Note {
    route: Option<String>,
    decision: Option<&'static str>,
    tier: Option<String>,
    upstream_ms: Option<f64>,
    reason: Option<&'static str>,
    would_limit: bool,
}

/// Guards released when a response body is finished or dropped.
#[derive(Default)]
struct Guards {
    _busy: Option<BusyGuard>,
    permit: Option<InFlight>,
}

/// A permit of an upstream's cap, and its gauge.
struct InFlight {
    upstream: Arc<UpstreamRt>,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let _ = self.upstream.cap.release();
        self.gauge.dec();
    }
}

/// A body that holds its guards until it is finished or dropped.
struct Guarded {
    inner: GatewayBody,
    guards: Option<Guards>,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None | Some(Err(_)))) {
            self.guards = None;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn full(body: impl Into<Bytes>) -> GatewayBody {
    Full::new(body.into()).map_err(|e| match e {}).boxed()
}

fn plain(status: StatusCode, body: &'static str) -> Response<GatewayBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(h::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// Formats a header with one of tollgate's allocation-free writers.
fn put(
    headers: &mut HeaderMap,
    name: &'static str,
    write: impl FnOnce(&mut [u8]) -> Result<usize, tollgate::Error>,
) {
    let mut buf = [0u8; 128];
    if let Ok(n) = write(&mut buf) {
        if let Ok(v) = HeaderValue::from_bytes(&buf[..n]) {
            headers.insert(name, v);
        }
    }
}

fn outcome_label(d: &Decision) -> &'static str {
    if d.would_limit() {
        "would_limit"
    } else if d.is_fail_open() {
        "fail_open"
    } else {
        match d.outcome {
            Outcome::Allowed => "allowed",
            Outcome::Limited => "limited",
            Outcome::Overloaded => "overloaded",
            Outcome::Never => "never",
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The value of `name`, exactly once, visible ASCII, at most [`crate::config::MAX_KEY_PART_BYTES`].
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut all = headers.get_all(name).iter();
    let v = all.next()?;
    if all.next().is_some() {
        return None;
    }
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= crate::config::MAX_KEY_PART_BYTES
        && s.bytes().all(|b| b.is_ascii_graphic()))
    .then_some(s)
}

/// A decimal u64: digits only, no sign, at most 20 digits, no overflow.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Gateway {
    /// A gateway running `settings`, serving at most `max_connections` client connections at
    /// once (`settings.server.max_connections`, or fewer if the open-file limit requires).
    pub fn new(settings: Settings, max_connections: usize) -> Result<Gateway, String> {
        let log = Log::new(&settings.server.access_log).map_err(|e| format!("access_log: {e}"))?;
        let state = State::new(settings, None)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(state))));
        let metrics = Metrics::new(Arc::clone(&current) as Arc<dyn Source>);
        Ok(Gateway {
            current,
            metrics,
            log,
            counters: Counters::default(),
            started: Instant::now(),
            conns: Arc::new(Semaphore::new(max_connections)),
            admin_conns: Arc::new(Semaphore::new(ADMIN_CONNECTIONS)),
            max_connections,
        })
    }

    /// The running configuration.
    pub fn state(&self) -> Arc<State> {
        self.current.get()
    }

    /// Replaces the running configuration with `settings`: tables whose quota is unchanged
    /// keep their state. Listen addresses, the connection cap, threads and the access log are
    /// fixed at start (a change is refused). Returns the policies whose state was kept.
    pub fn reload(&self, settings: Settings) -> Result<Vec<String>, String> {
        let old = self.state();
        let (a, b) = (&old.settings.server, &settings.server);
        if a.listen != b.listen
            || a.admin_listen != b.admin_listen
            || a.max_connections != b.max_connections
            || a.threads != b.threads
            || a.access_log != b.access_log
        {
            return Err(
                "listen, admin_listen, max_connections, threads and access_log take a restart"
                    .into(),
            );
        }
        let new = State::new(settings, Some(&old))?;
        let kept = new.slot.kept_from(&old.slot, &new.settings);
        self.current.set(Arc::new(new));
        Ok(kept)
    }

    /// The closing report: responses by status and each table's counters.
    pub fn report(&self) -> String {
        let get = |i: usize| self.counters.by_status[i].load(Ordering::Relaxed);
        let total: u64 = (0..REPORTED.len()).map(get).sum();
        let mut out = format!(
            "gateway: {:.1} s, {total} responses: 200 {}, 400 {}, 404 {}, 429 {}, 503 {}, other {}",
            self.started.elapsed().as_secs_f64(),
            get(0),
            get(1),
            get(2),
            get(3),
            get(4),
            get(5),
        );
        let shadow = self.counters.would_limit.load(Ordering::Relaxed);
        if shadow > 0 {
            let _ = write!(out, " (shadow mode: {shadow} would have been limited)");
        }
        out.push('\n');
        let state = self.state();
        for t in state.tables() {
            let s = t.stats;
            let _ = writeln!(
                out,
                "{} table: {} slots, occupied {}, reclaimed {}, rejected {}",
                t.name, s.capacity, s.occupied, s.reclaimed, s.rejected
            );
        }
        if let Some(r) = state.backend.redis() {
            let _ = writeln!(
                out,
                "redis: {} round trips, {} failures, {} answered by the failure policy, {} local denials",
                r.round_trips, r.failures, r.policy_answers, r.local_denials
            );
        }
        out
    }

    fn count(&self, status: StatusCode) {
        let i = REPORTED
            .iter()
            .position(|&s| s == status.as_u16())
            .unwrap_or(REPORTED.len() - 1);
        self.counters.by_status[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Answers one request from `peer`. `admin`: the admin listener (only `/metrics` and
    /// `/healthz`).
    pub async fn handle(
        self: &Arc<Gateway>,
        req: Request<Incoming>,
        peer: SocketAddr,
        admin: bool,
        busy: BusyGuard,
    ) -> Response<GatewayBody> {
        let start = Instant::now();
        let state = self.state();
        let method = req.method().clone();
        let raw_path = req.uri().path().to_owned();
        let mut note = Note::default();
        let mut guards = Guards {
            _busy: Some(busy),
            permit: None,
        };
        let (resp, path) = self
            .pipeline(&state, req, peer, admin, &mut note, &mut guards)
            .await;
        let status = resp.status();
        self.count(status);
        if note.would_limit {
            self.counters.would_limit.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics
            .responses
            .get_or_create(&ResponseLabels {
                route: note.route.clone().unwrap_or_else(|| "-".into()),
                status: status.as_u16(),
            })
            .inc();
        if self.log.enabled() {
            let entry = Entry {
                ts_ms: unix_ms(),
                client: peer.to_string(),
                method: method.to_string(),
                path: path.unwrap_or(raw_path),
                route: note.route,
                status: status.as_u16(),
                decision: note.decision,
                tier: note.tier,
                upstream_ms: note.upstream_ms,
                total_ms: start.elapsed().as_secs_f64() * 1e3,
                reason: note.reason,
            };
            if !self.log.write(&entry) {
                self.metrics.log_dropped.inc();
            }
        }
        let (parts, body) = resp.into_parts();
        Response::from_parts(
            parts,
            Guarded {
                inner: body,
                guards: Some(guards),
            }
            .boxed(),
        )
    }

    /// Steps 2–10; the response and the normalised path.
    #[allow(clippy::too_many_lines)] // the steps of the module docs, in order
    async fn pipeline(
        &self,
        state: &Arc<State>,
        req: Request<Incoming>,
        peer: SocketAddr,
        admin: bool,
        note: &mut Note,
        guards: &mut Guards,
    ) -> (Response<GatewayBody>, Option<String>) {
        // 2. the path
        let npath = match path::normalize(req.uri().path()) {
            Ok(p) => p,
            Err(e) => {
                note.reason = Some("path");
                let mut r = plain(StatusCode::BAD_REQUEST, "malformed path\n");
                *r.body_mut() = full(format!("malformed path: {e}\n"));
                return (r, None);
            }
        };
        // 3. health and metrics
        let admin_here = admin || state.settings.server.admin_listen.is_none();
        if admin_here && npath == "/healthz" {
            return (plain(StatusCode::OK, "ok\n"), Some(npath));
        }
        if admin_here && npath == "/metrics" {
            let mut r = Response::new(full(self.metrics.encode()));
            r.headers_mut().insert(
                h::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return (r, Some(npath));
        }
        if admin {
            return (
                plain(StatusCode::NOT_FOUND, "admin: /metrics, /healthz\n"),
                Some(npath),
            );
        }
        // 4. the route
        let Some(route) = state
            .settings
            .routes
            .iter()
            .filter(|r| {
                r.prefix.is_empty()
                    || npath == r.prefix
                    || npath
                        .strip_prefix(r.prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|r| r.prefix.len())
        else {
            note.reason = Some("no route");
            return (plain(StatusCode::NOT_FOUND, "no route\n"), Some(npath));
        };
        note.route = Some(route.name.clone());
        if let Some(ms) = &route.methods {
            if !ms.contains(req.method()) {
                note.reason = Some("method");
                return (
                    plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
                    Some(npath),
                );
            }
        }
        // 5. the key
        let call = match route.policy {
            None => None,
            Some(policy) => match key(state, route, policy, &req, peer, &npath) {
                Ok(c) => Some(c),
                Err(r) => {
                    note.reason = Some("key");
                    return (*r, Some(npath));
                }
            },
        };
        if let Some(c) = &call {
            note.tier = Some(state.settings.tiers[c.tier].clone());
        }
        let backend = &state.backend;
        let tps = backend.ticks_per_second();
        let now = backend.now();
        let mut shadow_refused = false;
        // 6. pagination
        if let (Some(c), true) = (&call, matches!(*req.method(), Method::GET | Method::HEAD)) {
            if let Some(max) = state.settings.policies[c.policy].max_offset {
                match path::deep_page(req.uri().query().unwrap_or(""), max) {
                    Err(path::MalformedPage) => {
                        note.reason = Some("pagination parameters");
                        return (
                            plain(StatusCode::BAD_REQUEST, "limit, page: decimal u64\n"),
                            Some(npath),
                        );
                    }
                    Ok(true) if route.shadow => shadow_refused = true,
                    Ok(true) => {
                        note.decision = Some("never");
                        self.decided(route, "never");
                        let mut r = plain(
                            StatusCode::TOO_MANY_REQUESTS,
                            "page too deep: limit x page is over the maximum\n",
                        );
                        let d = backend.peek_known(c.policy, &c.key, c.tier, now);
                        policy_headers(r.headers_mut(), state, c, d.as_ref(), tps);
                        return (r, Some(npath));
                    }
                    Ok(false) => {}
                }
            }
        }
        // 7. the upstream's cap
        let upstream = Arc::clone(&state.upstreams[route.upstream]);
        if upstream.cap.acquire().map(std::mem::forget).is_err() {
            note.reason = Some("concurrency cap");
            if call.is_some() {
                note.decision = Some("overloaded");
                self.decided(route, "overloaded");
            }
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "upstream busy, retry\n");
            set(r.headers_mut(), "retry-after", "1");
            if let Some(c) = &call {
                let d = backend.peek_known(c.policy, &c.key, c.tier, now);
                policy_headers(r.headers_mut(), state, c, d.as_ref(), tps);
            }
            return (r, Some(npath));
        }
        let gauge = self
            .metrics
            .in_flight
            .get_or_create(&UpstreamLabels {
                upstream: upstream.settings.name.clone(),
            })
            .clone();
        gauge.inc();
        guards.permit = Some(InFlight {
            upstream: Arc::clone(&upstream),
            gauge,
        });
        // 8. new keys per owner, 9. the rate decision
        let mut limiter_headers = HeaderMap::new();
        if let Some(c) = &call {
            if c.caller_chosen {
                if let Err(d) = state.new_keys.admit(&c.key, route.shadow) {
                    guards.permit = None;
                    note.reason = Some("new keys per owner");
                    note.decision = Some("new_key_limited");
                    self.decided(route, "new_key_limited");
                    let mut r = plain(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too many new keys for this caller\n",
                    );
                    let s = header::retry_after_seconds(&d, 1_000_000_000)
                        .ok()
                        .flatten()
                        .unwrap_or(1);
                    set(r.headers_mut(), "retry-after", &s.to_string());
                    return (r, Some(npath));
                }
            }
            let decided = backend.decide(c.policy, &c.key, c.tier, now).await;
            let Ok(mut d) = decided else {
                guards.permit = None;
                note.reason = Some("limiter error");
                note.decision = Some("overloaded");
                self.decided(route, "overloaded");
                let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "limiter unavailable\n");
                set(r.headers_mut(), "retry-after", "1");
                return (r, Some(npath));
            };
            if route.shadow {
                d = d.shadow();
                shadow_refused |= d.would_limit();
                set(
                    &mut limiter_headers,
                    SHADOW_HEADER,
                    if shadow_refused {
                        "would-limit"
                    } else {
                        "pass"
                    },
                );
                note.would_limit = shadow_refused;
            }
            let label = if shadow_refused {
                "would_limit"
            } else {
                outcome_label(&d)
            };
            note.decision = Some(label);
            self.decided(route, label);
            policy_headers(&mut limiter_headers, state, c, Some(&d), tps);
            if !d.is_allowed() {
                guards.permit = None;
                let mut r = if d.outcome == Outcome::Overloaded {
                    note.reason = Some("limiter overloaded");
                    plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "rate limiter overloaded, retry\n",
                    )
                } else {
                    note.reason = Some("rate limit");
                    plain(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n")
                };
                r.headers_mut().extend(limiter_headers);
                let s = header::retry_after_seconds(&d, tps)
                    .ok()
                    .flatten()
                    .unwrap_or(1);
                set(r.headers_mut(), "retry-after", &s.to_string());
                return (r, Some(npath));
            }
        }
        // 10. proxy
        let resp = self
            .forward(&upstream, route, req, peer, &npath, limiter_headers, note)
            .await;
        (resp, Some(npath))
    }

    fn decided(&self, route: &Route, outcome: &'static str) {
        self.metrics
            .decisions
            .get_or_create(&DecisionLabels {
                route: route.name.clone(),
                outcome,
            })
            .inc();
    }

    /// Step 10: proxies `req` to `upstream`, streaming both bodies.
    #[allow(clippy::too_many_arguments, clippy::too_many_lines)] // one request's journey
    async fn forward(
        &self,
        upstream: &Arc<UpstreamRt>,
        route: &Route,
        req: Request<Incoming>,
        peer: SocketAddr,
        npath: &str,
        limiter_headers: HeaderMap,
        note: &mut Note,
    ) -> Response<GatewayBody> {
        let u = &upstream.settings;
        let (mut parts, body) = req.into_parts();
        let rest = if route.strip_prefix {
            let r = npath.strip_prefix(route.prefix.as_str()).unwrap_or(npath);
            if r.is_empty() {
                "/"
            } else {
                r
            }
        } else {
            npath
        };
        let base = u.url.path().trim_end_matches('/');
        let mut pq = String::with_capacity(base.len() + rest.len() + 32);
        pq.push_str(base);
        pq.push_str(rest);
        if let Some(q) = parts.uri.query() {
            pq.push('?');
            pq.push_str(q);
        }
        let uri = Uri::builder()
            .scheme("http")
            .authority(u.url.authority().map_or("", |a| a.as_str()))
            .path_and_query(pq)
            .build();
        let Ok(uri) = uri else {
            note.reason = Some("upstream uri");
            let mut r = plain(StatusCode::BAD_GATEWAY, "bad upstream URI\n");
            r.headers_mut().extend(limiter_headers);
            return r;
        };
        let host = parts.headers.get(h::HOST).cloned();
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(h::HOST);
        let ip = peer.ip().to_string();
        let xff = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip,
        };
        set(&mut parts.headers, "x-forwarded-for", &xff);
        set(&mut parts.headers, "x-forwarded-proto", "http");
        if let Some(host) = host {
            parts.headers.insert("x-forwarded-host", host);
        }
        parts.uri = uri;
        parts.version = hyper::Version::HTTP_11;
        let up_req = Request::from_parts(parts, body);
        let sent = Instant::now();
        let labels = UpstreamLabels {
            upstream: u.name.clone(),
        };
        let result =
            tokio::time::timeout(u.response_timeout, upstream.client.request(up_req)).await;
        let elapsed = sent.elapsed().as_secs_f64();
        let fail = |status: StatusCode, kind: &'static str, body: &'static str| {
            self.metrics
                .upstream_errors
                .get_or_create(&UpstreamErrorLabels {
                    upstream: u.name.clone(),
                    kind,
                })
                .inc();
            let mut r = plain(status, body);
            r.headers_mut().extend(limiter_headers.clone());
            r
        };
        match result {
            Err(_) => {
                note.reason = Some("upstream timeout");
                fail(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    "upstream timed out\n",
                )
            }
            Ok(Err(e)) if e.is_connect() => {
                note.reason = Some("upstream unreachable");
                fail(StatusCode::BAD_GATEWAY, "connect", "upstream unreachable\n")
            }
            Ok(Err(_)) => {
                note.reason = Some("upstream error");
                fail(StatusCode::BAD_GATEWAY, "other", "upstream failed\n")
            }
            Ok(Ok(answer)) => {
                self.metrics
                    .upstream_latency
                    .get_or_create(&labels)
                    .observe(elapsed);
                note.upstream_ms = Some(elapsed * 1e3);
                let (mut parts, body) = answer.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                parts.headers.extend(limiter_headers);
                Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
            }
        }
    }
}

/// Step 5: the key of `req` on `route`; a refusal is boxed (it is large next to a [`Call`]).
fn key(
    state: &State,
    route: &Route,
    policy: usize,
    req: &Request<Incoming>,
    peer: SocketAddr,
    npath: &str,
) -> Result<Call, Box<Response<GatewayBody>>> {
    let headers = req.headers();
    let mut text = String::with_capacity(64);
    let mut owner = String::with_capacity(32);
    text.push_str(&state.settings.policies[policy].name);
    text.push(':');
    owner.push_str(&route.name);
    owner.push(':');
    let mut tier_value: Option<String> = None;
    let mut caller_chosen = false;
    let has_list = route.apis.is_some();
    for part in &route.key {
        let value: String = match part {
            KeyPart::Id(name) => {
                let Some(n) = single(headers, name).and_then(decimal) else {
                    let mut r = plain(StatusCode::BAD_REQUEST, "");
                    *r.body_mut() = full(format!("{name}: a decimal u64 id, exactly once\n"));
                    return Err(Box::new(r));
                };
                n.to_string()
            }
            KeyPart::Header(name) => {
                let Some(v) = single(headers, name) else {
                    let mut r = plain(StatusCode::BAD_REQUEST, "");
                    *r.body_mut() = full(format!(
                        "{name}: exactly once, printable, at most {} bytes\n",
                        crate::config::MAX_KEY_PART_BYTES
                    ));
                    return Err(Box::new(r));
                };
                v.to_owned()
            }
            KeyPart::ApiKey(name) => {
                let Some(v) = single(headers, name) else {
                    let mut r = plain(StatusCode::UNAUTHORIZED, "");
                    *r.body_mut() = full(format!("{name}: an API key is required\n"));
                    return Err(Box::new(r));
                };
                format!("{:032x}", API_KEY_SEED.key_bytes(v.as_bytes()).get())
            }
            KeyPart::ClientIp => peer.ip().to_string(),
            KeyPart::Api => {
                let rest = npath
                    .strip_prefix(route.prefix.as_str())
                    .unwrap_or(npath)
                    .trim_start_matches('/');
                let api = path::trimmed(rest).trim_end_matches('/');
                if api.is_empty() {
                    return Err(Box::new(plain(StatusCode::NOT_FOUND, "no API named\n")));
                }
                if let Some(list) = &route.apis {
                    if !list.iter().any(|a| a == api) {
                        return Err(Box::new(plain(StatusCode::NOT_FOUND, "unknown API\n")));
                    }
                }
                api.to_owned()
            }
            KeyPart::Path => path::trimmed(npath).to_owned(),
        };
        let chosen = part.caller_chosen(has_list);
        caller_chosen |= chosen;
        let _ = write!(text, "{}:{value}", value.len());
        if !chosen {
            let _ = write!(owner, "{}:{value}", value.len());
        }
        if route.tier.as_ref() == Some(part) {
            tier_value = Some(value);
        }
    }
    let tier = tier_value
        .and_then(|v| state.settings.tier_members.get(&v).copied())
        .unwrap_or(0);
    let key = KeyId {
        key: state.seed.key_bytes(text.as_bytes()),
        owner: state.seed.key_bytes(owner.as_bytes()),
        text,
    };
    Ok(Call {
        policy,
        key,
        tier,
        caller_chosen,
    })
}

/// Removes the hop-by-hop headers and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(h::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
}

/// `X-Sb-Shop-Api-Call-Limit` (bucket policies that ask for it), `RateLimit` (with a decision)
/// and `RateLimit-Policy` (the caller's tier).
fn policy_headers(
    headers: &mut HeaderMap,
    state: &State,
    call: &Call,
    d: Option<&Decision>,
    tps: u64,
) {
    let policy = &state.settings.policies[call.policy];
    let name = policy.name.as_str();
    if let Some(d) = d {
        if policy.call_limit_header {
            put(headers, "x-sb-shop-api-call-limit", |b| {
                header::write_shop_api_call_limit(d, b)
            });
        }
        put(headers, "ratelimit", |b| {
            header::write_ratelimit(name, d, tps, b)
        });
    }
    match state.backend.quotas(call.policy).get(call.tier) {
        Some(Built::Bucket(q)) => put(headers, "ratelimit-policy", |b| {
            header::write_ratelimit_policy_bucket(name, q, tps, b)
        }),
        Some(Built::Window(q)) => put(headers, "ratelimit-policy", |b| {
            header::write_ratelimit_policy_window(name, q, tps, b)
        }),
        None => {}
    }
}

/// The answer to a connection over the cap: written without waiting, then closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 21\r\n\r\ntoo many connections\n";

/// Serves one listener until the task is dropped: the connection cap, then hyper with the
/// deadlines. Accept errors (out of file descriptors) pause the loop briefly.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>, admin: bool) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let cap = if admin {
            &gateway.admin_conns
        } else {
            &gateway.conns
        };
        let Ok(permit) = Arc::clone(cap).try_acquire_owned() else {
            gateway.metrics.connections_refused.inc();
            let _ = stream.try_write(REFUSED);
            drop(stream);
            continue;
        };
        let gw = Arc::clone(&gateway);
        tokio::spawn(async move {
            gw.metrics.connections.inc();
            let timed_out = connection(&gw, stream, peer, admin).await;
            if timed_out {
                gw.metrics.connections_timed_out.inc();
            }
            gw.metrics.connections.dec();
            drop(permit);
        });
    }
}

/// Serves one connection; `true` if a deadline closed it.
async fn connection(gw: &Arc<Gateway>, stream: TcpStream, peer: SocketAddr, admin: bool) -> bool {
    let _ = stream.set_nodelay(true);
    let server = gw.state().settings.server.clone();
    let busy = Busy::default();
    let io = Deadlines::new(
        stream,
        busy.clone(),
        server.idle_timeout,
        server.write_timeout,
    );
    let gw2 = Arc::clone(gw);
    let service = hyper::service::service_fn(move |req| {
        let gw = Arc::clone(&gw2);
        let guard = busy.enter();
        async move { Ok::<_, Infallible>(gw.handle(req, peer, admin, guard).await) }
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(server.header_timeout)
        .max_buf_size(server.max_header_bytes.max(8192))
        .max_headers(server.max_headers)
        .serve_connection(TokioIo::new(io), service)
        .await;
    match result {
        Err(e) => {
            let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = src {
                if let Some(io) = s.downcast_ref::<std::io::Error>() {
                    return io.kind() == std::io::ErrorKind::TimedOut;
                }
                src = s.source();
            }
            e.is_timeout()
        }
        Ok(()) => false,
    }
}

/// Raises the soft limit of open files to the hard limit; the limit after.
fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// The gateway program: binds, prints `listening on ADDR` (one line per listener, the admin
/// listener's as `admin on ADDR`), serves until SIGINT, SIGTERM or `--duration`, reloads the
/// config on SIGHUP, then prints the counters.
pub fn run(cli: &Cli, settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let nofile = raise_fd_limit();
    // Each client connection may hold one upstream connection; keep 64 for the rest, and the
    // admin listener's own. A cap the limit cannot hold is lowered to fit, and said so.
    let configured = settings.server.max_connections;
    let reserve = 64 + ADMIN_CONNECTIONS as u64;
    let fits = if nofile == 0 {
        configured
    } else {
        usize::try_from(nofile.saturating_sub(reserve) / 2).unwrap_or(usize::MAX)
    };
    if fits == 0 {
        return Err(format!(
            "the open-file limit ({nofile}) leaves no room for client connections: raise it (ulimit -n)"
        )
        .into());
    }
    let cap = configured.min(fits);
    let cap_note = if cap < configured {
        format!(" (max_connections {configured} lowered to fit {nofile} open files)")
    } else {
        String::new()
    };
    let listeners = settings
        .server
        .listen
        .iter()
        .map(|a| {
            let l = std::net::TcpListener::bind(a).map_err(|e| format!("listen {a}: {e}"))?;
            l.set_nonblocking(true)?;
            Ok::<_, Box<dyn std::error::Error>>(l)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let admin = match settings.server.admin_listen {
        Some(a) => {
            let l = std::net::TcpListener::bind(a).map_err(|e| format!("admin_listen {a}: {e}"))?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        None => None,
    };
    let threads = settings.server.threads;
    let gateway = Arc::new(Gateway::new(settings, cap)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let stop = rt.block_on(async {
        let mut out = std::io::stdout().lock();
        for l in &listeners {
            writeln!(out, "listening on {}", l.local_addr()?)?;
        }
        if let Some(l) = &admin {
            writeln!(out, "admin on {}", l.local_addr()?)?;
        }
        let state = gateway.state();
        writeln!(
            out,
            "routes: {}; limits: {}; connections: at most {}{cap_note}; open files: {nofile}",
            state
                .settings
                .routes
                .iter()
                .map(|r| format!(
                    "{} {} -> {}{}",
                    r.name,
                    if r.prefix.is_empty() { "/" } else { &r.prefix },
                    state.settings.upstreams[r.upstream].url,
                    if r.shadow { " (shadow)" } else { "" }
                ))
                .collect::<Vec<_>>()
                .join(", "),
            state.backend.describe(),
            gateway.max_connections,
        )?;
        out.flush()?;
        drop(out);
        for l in listeners {
            tokio::spawn(serve(
                TcpListener::from_std(l)?,
                Arc::clone(&gateway),
                false,
            ));
        }
        if let Some(l) = admin {
            tokio::spawn(serve(TcpListener::from_std(l)?, Arc::clone(&gateway), true));
        }
        spawn_reloader(cli.clone(), Arc::clone(&gateway));
        Ok::<_, std::io::Error>(stop_signal(cli.duration).await)
    })?;
    rt.shutdown_timeout(Duration::from_millis(200));
    println!("stopping ({stop})");
    print!("{}", gateway.report());
    Ok(())
}

/// Reloads the config file on SIGHUP; a failed reload keeps the running config.
fn spawn_reloader(cli: Cli, gateway: Arc<Gateway>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let cli = cli.clone();
            let gw = Arc::clone(&gateway);
            // Reading the file and allocating tables is blocking work.
            let result = tokio::task::spawn_blocking(move || {
                let settings = cli.settings().map_err(|e| e.to_string())?;
                gw.reload(settings)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            let label = match &result {
                Ok(kept) => {
                    println!(
                        "reload: ok (state kept for: {})",
                        if kept.is_empty() {
                            "none".to_owned()
                        } else {
                            kept.join(", ")
                        }
                    );
                    "ok"
                }
                Err(e) => {
                    println!("reload: failed, the running config is unchanged: {e}");
                    "failed"
                }
            };
            let _ = std::io::stdout().flush();
            gateway
                .metrics
                .reloads
                .get_or_create(&vec![("result".to_owned(), label.to_owned())])
                .inc();
        }
    });
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
