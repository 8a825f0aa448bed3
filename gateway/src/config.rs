//! The gateway's configuration: a TOML file (see `docs/gateway.md`), validated into
//! [`Settings`], plus command-line flags that override parts of it.
//!
//! Every error names the file and line it comes from (`gateway.toml:12: ...`): syntax errors
//! and unknown or ill-typed keys through the TOML parser's spans, a route's errors (an undefined
//! upstream or policy, a bad key part or prefix) through the span of the value at fault, and
//! other values out of range (a zero rate) through the span of the table they are in.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use crate::limits::MAX_TIERS;
use serde::Deserialize;
use toml::Spanned;

/// The built-in configuration: the ShopBase and TikTok Shop policies in front of one upstream
/// (`docs/gateway.md` shows and explains it).
pub const VENDORS_TOML: &str = include_str!("../config/vendors.toml");

/// Why a config may not name both a shared directory and Redis.
pub const SHARED_AND_REDIS: &str =
    "fleet mode (Redis) and [limits] shared_dir exclude each other: choose one store";
/// The largest key table accepted: 2²⁶ slots (1.7 GB at 25.6 bytes a slot).
pub const MAX_TABLE_SLOTS: u64 = 1 << 26;
/// The most runtime worker threads accepted.
pub const MAX_THREADS: u64 = 1024;
/// The longest `--duration` accepted: one year.
pub const MAX_DURATION_SECS: f64 = 365.0 * 86_400.0;
/// The most bytes of one key part taken from a request header.
pub const MAX_KEY_PART_BYTES: usize = 256;

// ---------------------------------------------------------------- the file, as written

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    server: Option<Spanned<ServerFile>>,
    limits: Option<Spanned<LimitsFile>>,
    redis: Option<Spanned<RedisFile>>,
    #[serde(default)]
    upstreams: BTreeMap<String, Spanned<UpstreamFile>>,
    #[serde(default)]
    tiers: BTreeMap<String, Spanned<TierFile>>,
    #[serde(default)]
    policies: BTreeMap<String, Spanned<PolicyFile>>,
    #[serde(default)]
    routes: Vec<Spanned<RouteFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    listen: Option<Vec<String>>,
    admin_listen: Option<String>,
    threads: Option<u64>,
    max_connections: Option<u64>,
    header_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    write_timeout_ms: Option<u64>,
    max_header_bytes: Option<u64>,
    max_headers: Option<u64>,
    access_log: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    table_slots: Option<u64>,
    full_table: Option<String>,
    shared_dir: Option<String>,
    new_keys_burst: Option<u64>,
    new_keys_per_minute: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisFile {
    url: String,
    mode: Option<String>,
    failure: Option<String>,
    timeout_ms: Option<u64>,
    retry_interval_ms: Option<u64>,
    prefix: Option<String>,
    connections: Option<u64>,
    hybrid_keys: Option<u64>,
    grace_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamFile {
    url: String,
    max_in_flight: Option<u64>,
    connect_timeout_ms: Option<u64>,
    response_timeout_ms: Option<u64>,
    max_idle_connections: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    members: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    algorithm: String,
    burst: Option<u64>,
    rate: Option<u64>,
    period_ms: Option<u64>,
    limit: Option<u64>,
    window_ms: Option<u64>,
    call_limit_header: Option<bool>,
    max_offset: Option<u64>,
    #[serde(default)]
    tiers: BTreeMap<String, QuotaFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaFile {
    burst: Option<u64>,
    rate: Option<u64>,
    period_ms: Option<u64>,
    limit: Option<u64>,
    window_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    name: String,
    prefix: Spanned<String>,
    methods: Option<Spanned<Vec<String>>>,
    upstream: Spanned<String>,
    policy: Option<Spanned<String>>,
    key: Option<Spanned<Vec<String>>>,
    tier: Option<Spanned<String>>,
    apis: Option<Spanned<Vec<String>>>,
    shadow: Option<bool>,
    strip_prefix: Option<bool>,
}

// ---------------------------------------------------------------- validated settings

/// Where the access log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLog {
    /// No access log.
    Off,
    /// One JSON object per line on standard output.
    Stdout,
    /// One JSON object per line on standard error.
    Stderr,
    /// One JSON object per line appended to this file.
    File(String),
}

/// Server-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// A separate address for `/metrics` and `/healthz`; `None` serves them on every listener.
    pub admin_listen: Option<SocketAddr>,
    /// Runtime worker threads.
    pub threads: usize,
    /// Client connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// From the moment a request is awaited (a new connection, or the end of the previous
    /// answer), the longest until its whole head has arrived.
    pub header_timeout: Duration,
    /// The longest a connection with no request outstanding may read nothing.
    pub idle_timeout: Duration,
    /// The longest a write to a client may stay blocked (a client that does not read).
    pub write_timeout: Duration,
    /// The largest request head (request line and headers); larger → 431 and the connection
    /// is closed. Also bounds the read buffer of each connection.
    pub max_header_bytes: usize,
    /// The most request headers; more → 431.
    pub max_headers: usize,
    /// The access log.
    pub access_log: AccessLog,
}

/// What a full key table answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullTable {
    /// 503 (the default).
    Closed,
    /// Let the request through, flagged.
    Open,
}

/// Key-table settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Slots of each policy's key table.
    pub table_slots: usize,
    /// What a full table answers.
    pub full_table: FullTable,
    /// A directory for the policies' key tables in named shared-memory regions (one file per
    /// policy, named after it), mapped by every gateway process of the host that names it;
    /// `None`: tables in this process's memory.
    pub shared_dir: Option<PathBuf>,
    /// New keys one owner may create at once on a route whose key has caller-chosen parts.
    pub new_keys_burst: u64,
    /// New keys per minute one owner may create after its burst.
    pub new_keys_per_minute: u64,
}

/// How the gateway uses Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisMode {
    /// Every decision is one round trip.
    Shared,
    /// A local mirror answers clear denials without a round trip.
    Hybrid,
}

/// Fleet mode: the limits live in Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redis {
    /// The Redis URL.
    pub url: String,
    /// Shared or hybrid.
    pub mode: RedisMode,
    /// `true`: Redis down → 503; `false`: let requests through.
    pub fail_closed: bool,
    /// The longest a decision waits for Redis.
    pub timeout: Duration,
    /// After a failure, how long the failure policy answers before Redis is tried again.
    pub retry_interval: Duration,
    /// Prefix of every Redis key.
    pub prefix: String,
    /// Connections kept to Redis.
    pub connections: usize,
    /// Keys the hybrid mirror holds.
    pub hybrid_keys: usize,
    /// Extra time a drained key is kept in Redis: at least the fleet's clock skew.
    pub grace: Duration,
}

/// An upstream server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// Its name in the config.
    pub name: String,
    /// `http://host:port` plus an optional path prefix.
    pub url: hyper::Uri,
    /// The concurrency cap in front of it: requests in flight at once; more → 503.
    pub max_in_flight: u32,
    /// Connecting longer than this → 502.
    pub connect_timeout: Duration,
    /// No response head within this → 504.
    pub response_timeout: Duration,
    /// Idle connections kept open to it.
    pub max_idle_connections: usize,
}

/// A quota in the user's units; the backend converts it to its clock's ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaSpec {
    /// A leaky bucket of `burst` draining `rate` per `period_ms`.
    Bucket {
        /// Bucket size.
        burst: u64,
        /// Requests per period.
        rate: u64,
        /// The period in milliseconds.
        period_ms: u64,
    },
    /// A fixed window of `limit` per `window_ms`.
    Window {
        /// Requests per window.
        limit: u64,
        /// The window in milliseconds.
        window_ms: u64,
    },
}

/// A named rate policy with its quota per tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Its name (used in `RateLimit` headers and metrics).
    pub name: String,
    /// The quota of each tier, by tier index (tier 0 is `standard`).
    pub quotas: Vec<QuotaSpec>,
    /// Send `X-Sb-Shop-Api-Call-Limit: used/limit` (a bucket policy only).
    pub call_limit_header: bool,
    /// The deep-pagination rule: GET and HEAD with `limit × page` above this → 429.
    pub max_offset: Option<u64>,
}

/// One part of a route's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyPart {
    /// `id:HEADER`: a header holding a decimal u64, exactly once.
    Id(hyper::header::HeaderName),
    /// `header:HEADER`: a header's value, exactly once (chosen by the caller).
    Header(hyper::header::HeaderName),
    /// `api-key:HEADER`: a credential header; hashed, never logged; missing → 401.
    ApiKey(hyper::header::HeaderName),
    /// `client-ip`: the address of the connection's peer.
    ClientIp,
    /// `api`: the normalised path after the route's prefix (from the route's `apis` list, if any).
    Api,
    /// `path`: the whole normalised path (chosen by the caller).
    Path,
}

impl KeyPart {
    fn parse(s: &str) -> Result<KeyPart, String> {
        let header = |h: &str| {
            hyper::header::HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| format!("{h:?} is not a header name"))
        };
        Ok(match s.split_once(':') {
            Some(("id", h)) => KeyPart::Id(header(h)?),
            Some(("header", h)) => KeyPart::Header(header(h)?),
            Some(("api-key", h)) => KeyPart::ApiKey(header(h)?),
            None if s == "client-ip" => KeyPart::ClientIp,
            None if s == "api" => KeyPart::Api,
            None if s == "path" => KeyPart::Path,
            _ => {
                return Err(format!(
                    "unknown key part {s:?} (id:HEADER, header:HEADER, api-key:HEADER, client-ip, api, path)"
                ))
            }
        })
    }

    /// `true` for parts the caller picks freely (a header's text, a path not from a fixed
    /// list): keys with such parts are capped per owner.
    pub fn caller_chosen(&self, has_api_list: bool) -> bool {
        match self {
            KeyPart::Header(_) | KeyPart::Path => true,
            KeyPart::Api => !has_api_list,
            KeyPart::Id(_) | KeyPart::ApiKey(_) | KeyPart::ClientIp => false,
        }
    }
}

/// A route: requests whose normalised path starts with `prefix` (and whose method is listed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Its name (metrics, access log).
    pub name: String,
    /// The path prefix: `/shopbase` matches `/shopbase` and `/shopbase/...`.
    pub prefix: String,
    /// Methods served (`None` = all); others → 405.
    pub methods: Option<Vec<hyper::Method>>,
    /// Index into [`Settings::upstreams`].
    pub upstream: usize,
    /// Index into [`Settings::policies`]; `None` = proxied without a rate limit.
    pub policy: Option<usize>,
    /// The key's parts, in order.
    pub key: Vec<KeyPart>,
    /// The part whose value picks the tier (`None`: every caller on tier 0).
    pub tier: Option<KeyPart>,
    /// The fixed list of API names (`api` key part); others → 404.
    pub apis: Option<Vec<String>>,
    /// Shadow mode: decide and report, refuse nothing for rates or pagination.
    pub shadow: bool,
    /// Forward the path without the prefix.
    pub strip_prefix: bool,
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Server-wide settings.
    pub server: Server,
    /// Key-table settings.
    pub limits: Limits,
    /// Fleet mode, if configured.
    pub redis: Option<Redis>,
    /// Upstreams, sorted by name.
    pub upstreams: Vec<Upstream>,
    /// Tier names by index; `standard` is 0.
    pub tiers: Vec<String>,
    /// Tier key value → tier index.
    pub tier_members: HashMap<String, usize>,
    /// Policies, sorted by name.
    pub policies: Vec<Policy>,
    /// Routes, in file order (the longest matching prefix wins).
    pub routes: Vec<Route>,
}

/// A configuration that could not be used: the message names the file and line when there is
/// one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .split(|&b| b == b'\n')
        .count()
}

struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn at(&self, span: &Range<usize>, msg: impl fmt::Display) -> ConfigError {
        ConfigError(format!(
            "{}:{}: {msg}",
            self.origin,
            line_of(self.text, span.start)
        ))
    }
}

fn ms(v: Option<u64>, default: u64) -> Duration {
    Duration::from_millis(v.unwrap_or(default))
}

/// `v` (or `default`) within `lo..=hi`, else an error naming `what`.
fn bounded(v: Option<u64>, default: u64, lo: u64, hi: u64, what: &str) -> Result<u64, String> {
    let v = v.unwrap_or(default);
    if v < lo || v > hi {
        return Err(format!("{what} must be between {lo} and {hi}, got {v}"));
    }
    Ok(v)
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn addr(s: &str, what: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{what}: {s:?} is not an address like 127.0.0.1:8080"))
}

impl Settings {
    /// Parses and validates a config file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        let cx = Ctx { origin, text };
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            ConfigError(format!("{origin}:{line}: {}", e.message().trim_end()))
        })?;
        Settings::validate(&file, &cx)
    }

    /// Reads and validates the config file at `path`.
    pub fn load(path: &str) -> Result<Settings, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{path}: {e}")))?;
        Settings::parse(&text, path)
    }

    #[allow(clippy::too_many_lines)] // one table after the other, in file order
    fn validate(file: &File, cx: &Ctx<'_>) -> Result<Settings, ConfigError> {
        // [server]
        let no_server = ServerFile::default();
        let (sv, server_span) = file
            .server
            .as_ref()
            .map_or((&no_server, 0..0), |s| (s.get_ref(), s.span()));
        let e = |m: String| cx.at(&server_span, format!("[server] {m}"));
        let listen = match &sv.listen {
            None => vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            Some(list) if list.is_empty() => return Err(e("listen: at least one address".into())),
            Some(list) => list
                .iter()
                .map(|a| addr(a, "listen"))
                .collect::<Result<_, _>>()
                .map_err(e)?,
        };
        let admin_listen = match &sv.admin_listen {
            None => None,
            Some(a) => Some(addr(a, "admin_listen").map_err(e)?),
        };
        let server = Server {
            listen,
            admin_listen,
            threads: to_usize(bounded(sv.threads, 2, 1, MAX_THREADS, "threads").map_err(e)?),
            max_connections: to_usize(
                bounded(sv.max_connections, 4096, 1, 1 << 20, "max_connections").map_err(e)?,
            ),
            header_timeout: ms(
                Some(
                    bounded(
                        sv.header_timeout_ms,
                        10_000,
                        1,
                        3_600_000,
                        "header_timeout_ms",
                    )
                    .map_err(e)?,
                ),
                0,
            ),
            idle_timeout: ms(
                Some(
                    bounded(sv.idle_timeout_ms, 10_000, 1, 86_400_000, "idle_timeout_ms")
                        .map_err(e)?,
                ),
                0,
            ),
            write_timeout: ms(
                Some(
                    bounded(
                        sv.write_timeout_ms,
                        30_000,
                        1,
                        86_400_000,
                        "write_timeout_ms",
                    )
                    .map_err(e)?,
                ),
                0,
            ),
            max_header_bytes: to_usize(
                bounded(
                    sv.max_header_bytes,
                    16_384,
                    1_024,
                    1 << 20,
                    "max_header_bytes",
                )
                .map_err(e)?,
            ),
            max_headers: to_usize(
                bounded(sv.max_headers, 100, 1, 1_000, "max_headers").map_err(e)?,
            ),
            access_log: match sv.access_log.as_deref() {
                None | Some("off") => AccessLog::Off,
                Some("stdout") => AccessLog::Stdout,
                Some("stderr") => AccessLog::Stderr,
                Some("") => return Err(e("access_log: off, stdout, stderr or a file path".into())),
                Some(path) => AccessLog::File(path.to_owned()),
            },
        };

        // [limits]
        let no_limits = LimitsFile::default();
        let (lv, limits_span) = file
            .limits
            .as_ref()
            .map_or((&no_limits, 0..0), |l| (l.get_ref(), l.span()));
        let e = |m: String| cx.at(&limits_span, format!("[limits] {m}"));
        let limits = Limits {
            table_slots: to_usize(
                bounded(lv.table_slots, 65_536, 1, MAX_TABLE_SLOTS, "table_slots").map_err(e)?,
            ),
            full_table: match lv.full_table.as_deref() {
                None | Some("closed") => FullTable::Closed,
                Some("open") => FullTable::Open,
                Some(o) => return Err(e(format!("full_table: \"closed\" or \"open\", got {o:?}"))),
            },
            shared_dir: match lv.shared_dir.as_deref() {
                None => None,
                Some("") => return Err(e("shared_dir: a directory path expected".into())),
                Some(d) => Some(PathBuf::from(d)),
            },
            new_keys_burst: bounded(lv.new_keys_burst, 64, 1, 1 << 20, "new_keys_burst")
                .map_err(e)?,
            new_keys_per_minute: bounded(
                lv.new_keys_per_minute,
                60,
                1,
                1 << 20,
                "new_keys_per_minute",
            )
            .map_err(e)?,
        };

        // [redis]
        let redis = match &file.redis {
            None => None,
            Some(r) => {
                let span = r.span();
                let e = |m: String| cx.at(&span, format!("[redis] {m}"));
                if limits.shared_dir.is_some() {
                    return Err(e(SHARED_AND_REDIS.into()));
                }
                Some(redis_settings(r.get_ref()).map_err(e)?)
            }
        };

        // [upstreams.NAME]
        let mut upstreams = Vec::new();
        for (name, u) in &file.upstreams {
            let span = u.span();
            let e = |m: String| cx.at(&span, format!("[upstreams.{name}] {m}"));
            upstreams.push(upstream(name, u.get_ref()).map_err(e)?);
        }

        // [tiers.NAME]
        let mut tiers = vec!["standard".to_owned()];
        let mut tier_members = HashMap::new();
        for (name, t) in &file.tiers {
            let span = t.span();
            let e = |m: String| cx.at(&span, format!("[tiers.{name}] {m}"));
            if name == "standard" {
                return Err(e(
                    "standard is every caller not listed elsewhere: it has no members".into(),
                ));
            }
            if tiers.len() >= MAX_TIERS {
                return Err(e(format!("at most {MAX_TIERS} tiers, standard included")));
            }
            for m in &t.get_ref().members {
                if tier_members.insert(m.clone(), tiers.len()).is_some() {
                    return Err(e(format!("{m:?} is a member of two tiers")));
                }
            }
            tiers.push(name.clone());
        }

        // [policies.NAME]
        let mut policies = Vec::new();
        for (name, p) in &file.policies {
            let span = p.span();
            let e = |m: String| cx.at(&span, format!("[policies.{name}] {m}"));
            policies.push(policy(name, p.get_ref(), &tiers).map_err(e)?);
        }

        // [[routes]]
        let mut routes: Vec<Route> = Vec::new();
        for r in &file.routes {
            let span = r.span();
            let rv = r.get_ref();
            let e = |m: String| cx.at(&span, format!("route {:?}: {m}", rv.name));
            let route = route(rv, &upstreams, &policies).map_err(|(sp, m)| {
                cx.at(
                    &sp.unwrap_or_else(|| span.clone()),
                    format!("route {:?}: {m}", rv.name),
                )
            })?;
            if routes.iter().any(|o| o.name == route.name) {
                return Err(e("two routes of this name".into()));
            }
            routes.push(route);
        }
        if routes.is_empty() {
            return Err(ConfigError(format!("{}: no [[routes]]", cx.origin)));
        }
        Ok(Settings {
            server,
            limits,
            redis,
            upstreams,
            tiers,
            tier_members,
            policies,
            routes,
        })
    }

    /// The built-in configuration ([`VENDORS_TOML`]).
    ///
    /// # Panics
    ///
    /// Never: the built-in text is checked by a unit test.
    pub fn vendors() -> Settings {
        // Checked by a unit test; a broken built-in config is a build defect.
        Settings::parse(VENDORS_TOML, "vendors.toml").unwrap_or_else(|e| panic!("{e}"))
    }
}

fn redis_settings(r: &RedisFile) -> Result<Redis, String> {
    if !(r.url.starts_with("redis://") || r.url.starts_with("unix://")) {
        return Err(format!("url: redis://HOST:PORT/ expected, got {:?}", r.url));
    }
    Ok(Redis {
        url: r.url.clone(),
        mode: match r.mode.as_deref() {
            None | Some("shared") => RedisMode::Shared,
            Some("hybrid") => RedisMode::Hybrid,
            Some(m) => return Err(format!("mode: \"shared\" or \"hybrid\", got {m:?}")),
        },
        fail_closed: match r.failure.as_deref() {
            None | Some("closed") => true,
            Some("open") => false,
            Some(f) => return Err(format!("failure: \"closed\" or \"open\", got {f:?}")),
        },
        timeout: ms(Some(bounded(r.timeout_ms, 50, 1, 60_000, "timeout_ms")?), 0),
        retry_interval: ms(
            Some(bounded(
                r.retry_interval_ms,
                250,
                1,
                600_000,
                "retry_interval_ms",
            )?),
            0,
        ),
        prefix: r.prefix.clone().unwrap_or_else(|| "tg:".to_owned()),
        connections: to_usize(bounded(r.connections, 4, 1, 1024, "connections")?),
        hybrid_keys: to_usize(bounded(r.hybrid_keys, 65_536, 1, 1 << 24, "hybrid_keys")?),
        grace: ms(
            Some(bounded(r.grace_ms, 1_000, 0, 3_600_000, "grace_ms")?),
            0,
        ),
    })
}

fn upstream(name: &str, u: &UpstreamFile) -> Result<Upstream, String> {
    let url: hyper::Uri = u
        .url
        .parse()
        .map_err(|_| format!("url: {:?} is not a URL", u.url))?;
    if url.scheme_str() != Some("http") || url.authority().is_none() {
        return Err(format!(
            "url: http://HOST:PORT expected (TLS upstreams are not supported), got {:?}",
            u.url
        ));
    }
    if url.query().is_some() {
        return Err("url: no query string".into());
    }
    Ok(Upstream {
        name: name.to_owned(),
        url,
        max_in_flight: u32::try_from(bounded(u.max_in_flight, 256, 1, 1 << 20, "max_in_flight")?)
            .unwrap_or(u32::MAX),
        connect_timeout: ms(
            Some(bounded(
                u.connect_timeout_ms,
                1_000,
                1,
                600_000,
                "connect_timeout_ms",
            )?),
            0,
        ),
        response_timeout: ms(
            Some(bounded(
                u.response_timeout_ms,
                30_000,
                1,
                3_600_000,
                "response_timeout_ms",
            )?),
            0,
        ),
        max_idle_connections: to_usize(bounded(
            u.max_idle_connections,
            64,
            0,
            1 << 16,
            "max_idle_connections",
        )?),
    })
}

fn quota_of(
    algorithm: &str,
    burst: Option<u64>,
    rate: Option<u64>,
    period_ms: Option<u64>,
    limit: Option<u64>,
    window_ms: Option<u64>,
    base: Option<QuotaSpec>,
) -> Result<QuotaSpec, String> {
    let nonzero = |v: u64, what: &str| {
        if v == 0 {
            Err(format!("{what} must be at least 1"))
        } else {
            Ok(v)
        }
    };
    let q = match (algorithm, base) {
        ("leaky-bucket", b) => {
            let (b0, r0, p0) = match b {
                Some(QuotaSpec::Bucket {
                    burst,
                    rate,
                    period_ms,
                }) => (Some(burst), Some(rate), Some(period_ms)),
                _ => (None, None, Some(1_000)),
            };
            if limit.is_some() || window_ms.is_some() {
                return Err("limit and window_ms belong to a fixed-window policy".into());
            }
            QuotaSpec::Bucket {
                burst: nonzero(burst.or(b0).ok_or("burst is required")?, "burst")?,
                rate: nonzero(rate.or(r0).ok_or("rate is required")?, "rate")?,
                period_ms: nonzero(period_ms.or(p0).unwrap_or(1_000), "period_ms")?,
            }
        }
        ("fixed-window", b) => {
            let (l0, w0) = match b {
                Some(QuotaSpec::Window { limit, window_ms }) => (Some(limit), Some(window_ms)),
                _ => (None, Some(1_000)),
            };
            if burst.is_some() || rate.is_some() || period_ms.is_some() {
                return Err("burst, rate and period_ms belong to a leaky-bucket policy".into());
            }
            QuotaSpec::Window {
                limit: nonzero(limit.or(l0).ok_or("limit is required")?, "limit")?,
                window_ms: nonzero(window_ms.or(w0).unwrap_or(1_000), "window_ms")?,
            }
        }
        (a, _) => {
            return Err(format!(
                "algorithm: \"leaky-bucket\" or \"fixed-window\", got {a:?}"
            ))
        }
    };
    // Every quota must be one the engine represents exactly at nanosecond and millisecond ticks.
    for tps in [1_000_000_000, 1_000] {
        q.build(tps)
            .map_err(|e| format!("this quota cannot be enforced: {e}"))?;
    }
    Ok(q)
}

impl QuotaSpec {
    /// The capacity: a bucket's burst, a window's limit.
    pub fn capacity(&self) -> u64 {
        match *self {
            QuotaSpec::Bucket { burst, .. } => burst,
            QuotaSpec::Window { limit, .. } => limit,
        }
    }
}

fn policy(name: &str, p: &PolicyFile, tiers: &[String]) -> Result<Policy, String> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("a policy name is letters, digits, '-' and '_'".into());
    }
    let base = quota_of(
        &p.algorithm,
        p.burst,
        p.rate,
        p.period_ms,
        p.limit,
        p.window_ms,
        None,
    )?;
    let mut quotas = vec![base];
    for tier in &tiers[1..] {
        quotas.push(match p.tiers.get(tier) {
            None => base,
            Some(t) => quota_of(
                &p.algorithm,
                t.burst,
                t.rate,
                t.period_ms,
                t.limit,
                t.window_ms,
                Some(base),
            )
            .map_err(|e| format!("tiers.{tier}: {e}"))?,
        });
    }
    if let Some(t) = p.tiers.keys().find(|t| !tiers.contains(t)) {
        return Err(format!("tiers.{t}: no [tiers.{t}] is defined"));
    }
    let call_limit_header = p.call_limit_header.unwrap_or(false);
    if call_limit_header && !matches!(base, QuotaSpec::Bucket { .. }) {
        return Err("call_limit_header needs a leaky-bucket policy".into());
    }
    if p.max_offset == Some(0) {
        return Err("max_offset must be at least 1".into());
    }
    Ok(Policy {
        name: name.to_owned(),
        quotas,
        call_limit_header,
        max_offset: p.max_offset,
    })
}

/// A route's error: the span of the value at fault (`None`: the route's table) and the message.
type RouteError = (Option<Range<usize>>, String);

#[allow(clippy::too_many_lines)] // one check per field, in file order
fn route(r: &RouteFile, upstreams: &[Upstream], policies: &[Policy]) -> Result<Route, RouteError> {
    let at = |sp: Range<usize>| move |m: String| (Some(sp), m);
    if r.name.is_empty()
        || !r
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err((None, "a route name is letters, digits, '-' and '_'".into()));
    }
    let raw_prefix = r.prefix.get_ref();
    let prefix = raw_prefix.trim_end_matches('/').to_owned();
    let normal = crate::path::normalize(if prefix.is_empty() { "/" } else { &prefix });
    if !raw_prefix.starts_with('/')
        || normal.as_deref().ok() != Some(if prefix.is_empty() { "/" } else { &prefix })
    {
        return Err(at(r.prefix.span())(format!(
            "prefix: a normalised absolute path like /api, got {raw_prefix:?}"
        )));
    }
    let methods = match &r.methods {
        None => None,
        Some(ms) => Some(
            ms.get_ref()
                .iter()
                .map(|m| {
                    hyper::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| format!("methods: {m:?} is not a method"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(at(ms.span()))?,
        ),
    };
    let upstream = upstreams
        .iter()
        .position(|u| &u.name == r.upstream.get_ref())
        .ok_or_else(|| {
            at(r.upstream.span())(format!(
                "upstream {:?} is not defined in [upstreams]",
                r.upstream.get_ref()
            ))
        })?;
    let policy = match &r.policy {
        None => None,
        Some(p) => Some(
            policies
                .iter()
                .position(|q| &q.name == p.get_ref())
                .ok_or_else(|| {
                    at(p.span())(format!(
                        "policy {:?} is not defined in [policies]",
                        p.get_ref()
                    ))
                })?,
        ),
    };
    let key_span = r.key.as_ref().map(Spanned::span);
    let key = r
        .key
        .as_ref()
        .map_or(&[][..], |k| k.get_ref().as_slice())
        .iter()
        .map(|k| KeyPart::parse(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| (key_span.clone(), m))?;
    if policy.is_some() && key.is_empty() {
        return Err((
            key_span,
            "a route with a policy needs a key (e.g. key = [\"client-ip\"])".into(),
        ));
    }
    if policy.is_none() && r.key.is_some() {
        return Err((key_span, "a key without a policy limits nothing".into()));
    }
    let tier = match &r.tier {
        None => None,
        Some(t) => {
            let part = KeyPart::parse(t.get_ref()).map_err(at(t.span()))?;
            if !key.contains(&part) {
                return Err(at(t.span())("tier must be one of the key's parts".into()));
            }
            Some(part)
        }
    };
    let apis = match &r.apis {
        None => None,
        Some(list) => {
            let e = at(list.span());
            if !key.contains(&KeyPart::Api) {
                return Err(e("apis needs the \"api\" key part".into()));
            }
            for a in list.get_ref() {
                let p = format!("/{a}");
                if a.is_empty()
                    || crate::path::normalize(&p).as_deref().ok() != Some(p.as_str())
                    || a.ends_with('/')
                {
                    return Err(e(format!(
                        "apis: {a:?} is not a normalised path like product/search"
                    )));
                }
            }
            Some(list.get_ref().clone())
        }
    };
    Ok(Route {
        name: r.name.clone(),
        prefix,
        methods,
        upstream,
        policy,
        key,
        tier,
        apis,
        shadow: r.shadow.unwrap_or(false),
        strip_prefix: r.strip_prefix.unwrap_or(false),
    })
}

// ---------------------------------------------------------------- command line

/// The usage text of the gateway binary.
pub const USAGE: &str = "\
tollgate-gateway: a rate-limiting HTTP reverse proxy (docs/gateway.md)

Without --config it runs the built-in config: ShopBase on /shopbase/... (leaky bucket 30 @ 2/s
per (app, shop) from X-App-Id and X-Shop-Id) and TikTok Shop on /tiktok/{api} (50 per second per
(app, shop, api)) in front of the upstream given by --upstream.

  --config FILE            the TOML config file (SIGHUP reloads it)
  --check                  validate the config, print it as understood, and exit
  --listen ADDR            listen on ADDR instead of the config's addresses (repeatable)
  --port N                 shorthand for --listen 127.0.0.1:N (0 = any free port, printed)
  --upstream URL           the URL of every upstream (e.g. http://127.0.0.1:9000)
  --slots N                slots of each key table
  --max-in-flight N        the concurrency cap of every upstream
  --max-connections N      client connections open at once
  --shadow                 shadow mode on every route
  --fail-open              a full key table lets requests through
  --shared-dir DIR         key tables in shared-memory regions under DIR, shared by every
                           gateway process of the host that names it (e.g. /dev/shm/tollgate-gw)
  --redis URL              fleet mode: limits shared through Redis
  --redis-mode M           shared (default) or hybrid
  --redis-failure P        closed (default: 503 while Redis is down) or open
  --access-log DEST        off, stdout, stderr or a file path
  --threads N              runtime worker threads
  --duration S             stop after S seconds (else on SIGINT/SIGTERM); prints the counters
";

/// What the command line asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cli {
    /// `--config FILE`.
    pub config: Option<String>,
    /// `--check`.
    pub check: bool,
    /// `--duration S`.
    pub duration: Option<Duration>,
    overrides: Vec<(String, String)>,
}

fn flag_takes_value(name: &str) -> Option<bool> {
    match name {
        "check" | "shadow" | "fail-open" => Some(false),
        "config" | "listen" | "port" | "upstream" | "slots" | "max-in-flight"
        | "max-connections" | "redis" | "redis-mode" | "redis-failure" | "access-log"
        | "threads" | "duration" | "shared-dir" => Some(true),
        _ => None,
    }
}

impl Cli {
    /// Parses the arguments (without the program name). Values are checked here or by
    /// [`Cli::settings`]; nothing panics on any input.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        let mut cli = Cli::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return err(format!("unexpected argument {arg:?} (try --help)"));
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (name.to_owned(), None),
            };
            let Some(takes) = flag_takes_value(&name) else {
                return err(format!("unknown flag --{name} (try --help)"));
            };
            let value = if takes {
                match inline.or_else(|| args.next()) {
                    Some(v) => v,
                    None => return err(format!("--{name} needs a value")),
                }
            } else if let Some(v) = inline {
                return err(format!("--{name} takes no value, got {v:?}"));
            } else {
                String::new()
            };
            match name.as_str() {
                "config" => cli.config = Some(value),
                "check" => cli.check = true,
                "duration" => {
                    let secs: f64 = value
                        .parse()
                        .map_err(|_| ConfigError(format!("--duration: not a number: {value:?}")))?;
                    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_DURATION_SECS) {
                        return err(format!(
                            "--duration must be a number of seconds above 0 and at most {MAX_DURATION_SECS}, got {value}"
                        ));
                    }
                    cli.duration = Some(Duration::from_secs_f64(secs));
                }
                _ => cli.overrides.push((name, value)),
            }
        }
        Ok(cli)
    }

    /// The settings: the config file (or the built-in one) with the flags applied, validated.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut s = match &self.config {
            Some(path) => Settings::load(path)?,
            None => Settings::vendors(),
        };
        self.apply(&mut s)?;
        Ok(s)
    }

    /// Applies the flags to `s` (also after a reload).
    pub fn apply(&self, s: &mut Settings) -> Result<(), ConfigError> {
        let mut listen: Vec<SocketAddr> = Vec::new();
        for (name, v) in &self.overrides {
            let e = |m: String| ConfigError(format!("--{name}: {m}"));
            let num = |lo: u64, hi: u64| -> Result<u64, ConfigError> {
                let n: u64 = v
                    .parse()
                    .map_err(|_| e(format!("not a whole number: {v:?}")))?;
                bounded(Some(n), 0, lo, hi, "the value").map_err(e)
            };
            match name.as_str() {
                "listen" => listen.push(addr(v, "listen").map_err(e)?),
                "port" => {
                    let port = u16::try_from(num(0, 65_535)?).unwrap_or(0);
                    listen.push(SocketAddr::from(([127, 0, 0, 1], port)));
                }
                "upstream" => {
                    let u = upstream(
                        "cli",
                        &UpstreamFile {
                            url: v.clone(),
                            max_in_flight: None,
                            connect_timeout_ms: None,
                            response_timeout_ms: None,
                            max_idle_connections: None,
                        },
                    )
                    .map_err(e)?;
                    for up in &mut s.upstreams {
                        up.url = u.url.clone();
                    }
                }
                "slots" => s.limits.table_slots = to_usize(num(1, MAX_TABLE_SLOTS)?),
                "max-in-flight" => {
                    let n = u32::try_from(num(1, 1 << 20)?).unwrap_or(u32::MAX);
                    for up in &mut s.upstreams {
                        up.max_in_flight = n;
                    }
                }
                "max-connections" => s.server.max_connections = to_usize(num(1, 1 << 20)?),
                "threads" => s.server.threads = to_usize(num(1, MAX_THREADS)?),
                "shadow" => s.routes.iter_mut().for_each(|r| r.shadow = true),
                "fail-open" => s.limits.full_table = FullTable::Open,
                "shared-dir" => {
                    if v.is_empty() {
                        return Err(e("a directory path expected".into()));
                    }
                    s.limits.shared_dir = Some(PathBuf::from(v));
                }
                "access-log" => {
                    s.server.access_log = match v.as_str() {
                        "off" => AccessLog::Off,
                        "stdout" => AccessLog::Stdout,
                        "stderr" => AccessLog::Stderr,
                        "" => return Err(e("off, stdout, stderr or a file path".into())),
                        p => AccessLog::File(p.to_owned()),
                    }
                }
                "redis" => {
                    let r = redis_settings(&RedisFile {
                        url: v.clone(),
                        mode: None,
                        failure: None,
                        timeout_ms: None,
                        retry_interval_ms: None,
                        prefix: None,
                        connections: None,
                        hybrid_keys: None,
                        grace_ms: None,
                    })
                    .map_err(e)?;
                    match &mut s.redis {
                        Some(old) => old.url = r.url,
                        None => s.redis = Some(r),
                    }
                }
                "redis-mode" | "redis-failure" => {
                    let Some(r) = &mut s.redis else {
                        return Err(e("needs --redis URL or a [redis] table".into()));
                    };
                    match (name.as_str(), v.as_str()) {
                        ("redis-mode", "shared") => r.mode = RedisMode::Shared,
                        ("redis-mode", "hybrid") => r.mode = RedisMode::Hybrid,
                        ("redis-failure", "closed") => r.fail_closed = true,
                        ("redis-failure", "open") => r.fail_closed = false,
                        _ => return Err(e(format!("unknown value {v:?}"))),
                    }
                }
                _ => return Err(e("unknown flag".into())),
            }
        }
        if !listen.is_empty() {
            s.server.listen = listen;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_built_in_config_is_valid() {
        let s = Settings::vendors();
        assert_eq!(s.routes.len(), 2);
        assert_eq!(s.policies.len(), 2);
    }

    #[test]
    fn flags_override_the_config() {
        let cli = Cli::parse(args(
            "--port 0 --slots 128 --shadow --upstream http://127.0.0.1:9 --duration 1.5",
        ))
        .unwrap();
        let s = cli.settings().unwrap();
        assert_eq!(s.server.listen, vec!["127.0.0.1:0".parse().unwrap()]);
        assert_eq!(s.limits.table_slots, 128);
        assert!(s.routes.iter().all(|r| r.shadow));
        assert_eq!(s.upstreams[0].url, "http://127.0.0.1:9");
        assert_eq!(cli.duration, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_flags_are_errors_not_panics() {
        for bad in [
            "--port x",
            "--port 70000",
            "--slots 0",
            "--slots 99999999999999",
            "--threads 0",
            "--threads 100000",
            "--duration 2e19",
            "--duration -1",
            "--duration nan",
            "--duration inf",
            "--nope",
            "stray",
            "--port",
            "--shadow=maybe",
            "--upstream https://x",
            "--redis-mode hybrid",
            "--redis http://x",
        ] {
            let r = Cli::parse(args(bad)).and_then(|c| c.settings());
            assert!(r.is_err(), "{bad}");
        }
    }

    fn parse_err(text: &str) -> String {
        Settings::parse(text, "t.toml").unwrap_err().0
    }

    const UP: &str = "[upstreams.api]\nurl = \"http://127.0.0.1:9000\"\n";

    #[test]
    fn errors_name_the_line() {
        let e = parse_err("[server]\nlisten = [\"127.0.0.1:8080\"]\nthreads = \"two\"\n");
        assert!(e.starts_with("t.toml:3:"), "{e}");
        let e = parse_err("[server]\n\nbogus = 1\n");
        assert!(e.starts_with("t.toml:3:") && e.contains("bogus"), "{e}");
        let e = parse_err(&format!(
            "{UP}\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"nope\"\n"
        ));
        assert!(e.starts_with("t.toml:7:") && e.contains("\"nope\""), "{e}");
        let e = parse_err(&format!(
            "{UP}[policies.p]\nalgorithm = \"leaky-bucket\"\nburst = 0\nrate = 1\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"api\"\npolicy = \"p\"\nkey = [\"client-ip\"]\n"
        ));
        assert!(e.starts_with("t.toml:3:") && e.contains("burst"), "{e}");
        let e = parse_err(&format!(
            "{UP}[[routes]]\nname = \"a\"\nprefix = \"/a/../b\"\nupstream = \"api\"\n"
        ));
        assert!(e.starts_with("t.toml:5:") && e.contains("prefix"), "{e}");
        let e = parse_err(&format!(
            "{UP}[policies.p]\nalgorithm = \"fixed-window\"\nlimit = 5\n[[routes]]\nname = \"a\"\nprefix = \"/a\"\nupstream = \"api\"\npolicy = \"p\"\nkey = [\"cookie:x\"]\n"
        ));
        assert!(e.contains("unknown key part"), "{e}");
        let e = parse_err("[limits]\ntable_slots = 99999999999999\n");
        assert!(
            e.starts_with("t.toml:1:") && e.contains("table_slots"),
            "{e}"
        );
        assert!(parse_err("x = [").starts_with("t.toml:1:"));
        assert!(parse_err(UP).contains("no [[routes]]"));
    }
}
