//! The shared limiter: requests, the pipelined round trip, quota changes and the failure policy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::{ErrorKind, RedisError, Script, Value};
use tollgate::state::bucket::{self, Units};
use tollgate::state::window::{self, State};
use tollgate::state::Mode;
use tollgate::{Decision, Error, Outcome, Quota, WindowQuota};

use crate::conn::Target;
use crate::fixed_window;
use crate::gcra;
use crate::node::{Counters, Topology};

// The one copy of the scripts, shipped with the Python package too (its `tollgate.redis` module
// runs the same files).
pub(crate) const GCRA_LUA: &str = include_str!("../../python/tollgate/lua/gcra.lua");
pub(crate) const WINDOW_LUA: &str = include_str!("../../python/tollgate/lua/fixed_window.lua");

/// Compare-and-set rounds for a key whose quota changed while other nodes write it.
const CONVERSION_ROUNDS: usize = 4;

/// What a node answers while Redis is down or slower than [`Config::timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailurePolicy {
    /// Let the request through: `outcome` Allowed, `verdict` Overloaded, flag
    /// [`Decision::FAIL_OPEN`]. Availability first; the limit is not enforced meanwhile.
    Open,
    /// Refuse the request: [`Outcome::Overloaded`] (HTTP 503). The limit first.
    Closed,
}

/// A limiter's configuration. [`Config::new`] gives the defaults listed on each field; set the
/// others by assignment.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The Redis URL, e.g. `redis://127.0.0.1:6379/` (`redis://[user:password@]host:port[/db]`;
    /// `rediss://` for TLS with the `tls` feature, certificates always checked; Unix sockets are
    /// refused by [`RedisLimiter::new`]). With [`Config::cluster`], one or more seed nodes
    /// separated by commas.
    pub url: String,
    /// Prefix of every key this limiter writes (default `tg:`); buckets live under
    /// `{prefix}b:{key}`, windows under `{prefix}w:{key}`.
    pub prefix: String,
    /// Ticks per second of the caller's clock. Used only for key expiry (Redis counts TTLs in
    /// wall-clock milliseconds) and for the retry hint of a fail-closed answer.
    pub ticks_per_second: u64,
    /// The longest a decision waits for Redis, connecting included (default 50 ms). Past it the
    /// [`FailurePolicy`] answers.
    pub timeout: Duration,
    /// After a failure, how long decisions answer by the policy at once, without trying Redis
    /// (default 250 ms); then the next decision tries again.
    pub retry_interval: Duration,
    /// What to answer while Redis cannot (default [`FailurePolicy::Closed`]).
    pub policy: FailurePolicy,
    /// Extra time a drained key is kept before it expires (default 1 s): covers nodes whose
    /// clocks run behind the one that wrote it. Set it to at least the fleet's clock skew.
    pub grace: Duration,
    /// Connections kept to Redis, each used by one decision at a time (default 4).
    pub connections: usize,
    /// Shadow (dry-run) mode: decisions are computed and the state updated as if enforced, but
    /// every outcome is Allowed, with [`Decision::SHADOW`] set (docs/semantics.md#outcomes-and-http-statuses).
    pub shadow: bool,
    /// Redis Cluster (default `false`): `url` then lists one or more seed nodes separated by
    /// commas; the primaries are found with `CLUSTER SLOTS`, each key is sent to the primary of
    /// its slot, and each primary has its own connections and circuit (docs/redis.md).
    pub cluster: bool,
    /// With the `tls` feature and a `rediss://` URL: a PEM file of certificate authorities to
    /// trust besides Mozilla's root store (default none), e.g. a private CA's.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl Config {
    /// The defaults, for Redis at `url` and a caller clock of `ticks_per_second`.
    pub fn new(url: impl Into<String>, ticks_per_second: u64) -> Config {
        Config {
            url: url.into(),
            prefix: "tg:".into(),
            ticks_per_second,
            timeout: Duration::from_millis(50),
            retry_interval: Duration::from_millis(250),
            policy: FailurePolicy::Closed,
            grace: Duration::from_secs(1),
            connections: 4,
            shadow: false,
            cluster: false,
            tls_ca_file: None,
        }
    }
}

/// The quota a request is judged by: each request carries its key's quota (per-key tiers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// A leaky bucket (GCRA, docs/semantics.md#leaky-bucket).
    Bucket(Quota),
    /// A fixed window (docs/semantics.md#fixed-window).
    Window(WindowQuota),
}

impl From<Quota> for Limit {
    fn from(q: Quota) -> Limit {
        Limit::Bucket(q)
    }
}

impl From<WindowQuota> for Limit {
    fn from(q: WindowQuota) -> Limit {
        Limit::Window(q)
    }
}

impl Limit {
    fn capacity(&self) -> u64 {
        match self {
            Limit::Bucket(q) => q.burst(),
            Limit::Window(q) => q.limit(),
        }
    }
}

/// One request of a batch: a key, its quota, the caller's `now` in ticks and the cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The key (for example `"app:42/shop:7"`).
    pub key: &'a str,
    /// The key's quota. A different quota than the key's last one converts its state, keeping
    /// its history as `LeakyBucket::set_quota` / `FixedWindow::set_quota` do.
    pub limit: Limit,
    /// The caller's time in ticks; all nodes must share one timeline (see docs/redis.md).
    pub now: u64,
    /// The request's cost, at least 1.
    pub cost: u64,
    /// [`Mode::Decide`] for a decision; [`Mode::Peek`] for a peek: would it pass? Spends
    /// nothing.
    pub mode: Mode,
}

impl<'a> Request<'a> {
    /// A decision request.
    pub fn decide(key: &'a str, limit: impl Into<Limit>, now: u64, cost: u64) -> Request<'a> {
        Request {
            key,
            limit: limit.into(),
            now,
            cost,
            mode: Mode::Decide,
        }
    }

    /// A peek request.
    pub fn peek(key: &'a str, limit: impl Into<Limit>, now: u64, cost: u64) -> Request<'a> {
        Request {
            mode: Mode::Peek,
            ..Request::decide(key, limit, now, cost)
        }
    }
}

/// Counters of a limiter, for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Round trips to Redis that completed.
    pub round_trips: u64,
    /// Round trips that failed (error, timeout, refused connection).
    pub failures: u64,
    /// Requests answered by the failure policy (every cause: Redis down or late, a server
    /// error on the request's own command, a malformed reply).
    pub policy_answers: u64,
    /// Requests whose own command failed in Redis while the round trip succeeded (for example
    /// `NOPERM`, `OOM`, a script error), or whose reply was malformed: each answered by the
    /// policy alone, with the connection kept and the other requests decided.
    pub server_errors: u64,
    /// Keys found holding no valid state (another type, a malformed or out-of-range field, a
    /// fingerprint this crate did not write) and repaired as full (docs/redis.md).
    pub repaired: u64,
}

/// A key's state as Redis holds it, after a decision: what the hybrid mode caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    Bucket(Units, u64),
    Window(WindowQuota, State),
}

/// One request on its way through the round trips.
struct Job {
    redis_key: String,
    kind: Kind,
    /// The compare-and-set arguments of a conversion, once the old state is known.
    conversion: Vec<String>,
    /// A window's converted index, when it is later than `now`'s (the key must live to its end).
    converted_window: Option<u64>,
    result: Option<Result<(Decision, Option<Known>), Error>>,
    /// Answered by the policy for this request alone (its own command failed in Redis).
    by_policy: bool,
}

/// Why one reply did not decide its request.
enum ReplyError {
    /// The command failed in Redis (`ServerError`), with the server's message.
    Server(String),
    /// `NOSCRIPT`: the server lost the scripts; load them and send the command again.
    NoScript,
    /// `MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`: the cluster changed; look again, send again.
    Moved,
    /// Not the shape the script returns.
    Malformed,
}

enum Kind {
    Bucket(Units, gcra::ScriptArgs),
    Window(WindowQuota, u64),
}

/// A leaky bucket and fixed window per key, shared through Redis by every node that uses the
/// same Redis and key prefix. Thread-safe (`&self` decisions over a small connection pool).
///
/// Decisions and every reported number are identical to `tollgate::LeakyBucket` /
/// `tollgate::FixedWindow` run on the same sequence of requests (docs/redis.md gives the
/// argument; the conformance tests check it field by field).
pub struct RedisLimiter {
    config: Config,
    topology: Topology,
    gcra: Script,
    window: Script,
    counters: Counters,
    policy_answers: AtomicU64,
    server_errors: AtomicU64,
    repaired: AtomicU64,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A limiter on the Redis at `config.url`. Connects lazily: a Redis that is down now is
    /// not an error here (the failure policy answers until it is up).
    ///
    /// Errors: an invalid URL, a Unix socket, `rediss://` without the `tls` feature (or with
    /// `#insecure`, or an unreadable [`Config::tls_ca_file`]), `ticks_per_second == 0` or
    /// `connections == 0`.
    pub fn new(config: Config) -> Result<RedisLimiter, RedisError> {
        if config.ticks_per_second == 0 || config.connections == 0 {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "ticks_per_second and connections must be at least 1",
            )));
        }
        let topology = if config.cluster {
            let seeds = config
                .url
                .split(',')
                .map(|u| Target::parse(u.trim(), config.tls_ca_file.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            Topology::cluster(seeds, config.connections)
        } else {
            Topology::single(
                Target::parse(&config.url, config.tls_ca_file.as_deref())?,
                config.connections,
            )
        };
        Ok(RedisLimiter {
            topology,
            gcra: Script::new(GCRA_LUA),
            window: Script::new(WINDOW_LUA),
            counters: Counters::default(),
            policy_answers: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            repaired: AtomicU64::new(0),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            round_trips: self.counters.round_trips.load(Ordering::Relaxed),
            failures: self.counters.failures.load(Ordering::Relaxed),
            policy_answers: self.policy_answers.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            repaired: self.repaired.load(Ordering::Relaxed),
        }
    }

    /// Decides on a request of `cost` at `now` for `key` under `limit`: one round trip.
    ///
    /// Errors (nothing changed): [`Error::ZeroCost`], [`Error::ClockOutOfRange`], and
    /// [`Error::InvalidArgument`] for a quota this crate cannot reproduce. Redis being down is
    /// not an error: the [`FailurePolicy`] answers.
    pub fn decide(
        &self,
        key: &str,
        limit: impl Into<Limit>,
        now: u64,
        cost: u64,
    ) -> Result<Decision, Error> {
        self.one(Request::decide(key, limit, now, cost))
    }

    /// Would a request of `cost` pass at `now`? Spends nothing; the numbers describe the current
    /// level. Errors as [`RedisLimiter::decide`].
    pub fn peek(
        &self,
        key: &str,
        limit: impl Into<Limit>,
        now: u64,
        cost: u64,
    ) -> Result<Decision, Error> {
        self.one(Request::peek(key, limit, now, cost))
    }

    fn one(&self, request: Request<'_>) -> Result<Decision, Error> {
        let mut out = self.run(std::slice::from_ref(&request));
        out.pop()
            .map_or(Err(Error::InvalidArgument), |r| r.map(|(d, _)| d))
    }

    /// Decides on several requests (any keys, any quotas) in one pipelined round trip; the
    /// answers come back in the order of `requests`. Requests on the same key are decided in
    /// order, as if sent one by one.
    pub fn decide_batch(&self, requests: &[Request<'_>]) -> Vec<Result<Decision, Error>> {
        self.run(requests)
            .into_iter()
            .map(|r| r.map(|(d, _)| d))
            .collect()
    }

    /// The decision a node answers without Redis, by its policy.
    pub fn policy_decision(&self, limit: &Limit) -> Decision {
        let capacity = limit.capacity();
        let decision = match self.config.policy {
            FailurePolicy::Open => Decision {
                outcome: Outcome::Allowed,
                verdict: Outcome::Overloaded,
                limit: capacity,
                used: 0,
                remaining: capacity,
                retry_after: Some(0),
                reset_after: 0,
                flags: Decision::FAIL_OPEN,
            },
            FailurePolicy::Closed => {
                let hint = u128::from(self.config.ticks_per_second)
                    * self.config.retry_interval.as_nanos();
                let hint = u64::try_from(hint.div_ceil(1_000_000_000)).unwrap_or(u64::MAX);
                Decision {
                    outcome: Outcome::Overloaded,
                    verdict: Outcome::Overloaded,
                    limit: capacity,
                    used: capacity,
                    remaining: 0,
                    retry_after: Some(hint),
                    reset_after: hint,
                    flags: 0,
                }
            }
        };
        self.finish(decision)
    }

    fn finish(&self, decision: Decision) -> Decision {
        if self.config.shadow {
            decision.shadow()
        } else {
            decision
        }
    }

    fn redis_key(&self, kind: char, key: &str) -> String {
        let mut k = String::with_capacity(self.config.prefix.len() + 2 + key.len());
        k.push_str(&self.config.prefix);
        k.push(kind);
        k.push(':');
        k.push_str(key);
        k
    }

    fn prepare(&self, r: &Request<'_>) -> Result<Job, Error> {
        let (redis_key, kind) = match &r.limit {
            Limit::Bucket(q) => {
                let units = *q.units();
                let args = gcra::script_args(&units, r.now, r.cost, r.mode)?;
                (self.redis_key('b', r.key), Kind::Bucket(units, args))
            }
            Limit::Window(q) => {
                if r.cost == 0 {
                    return Err(Error::ZeroCost);
                }
                let index = window::index_of(q, r.now)?;
                (self.redis_key('w', r.key), Kind::Window(*q, index))
            }
        };
        Ok(Job {
            redis_key,
            kind,
            conversion: Vec::new(),
            converted_window: None,
            result: None,
            by_policy: false,
        })
    }

    fn invocation(&self, job: &Job, r: &Request<'_>) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        match &job.kind {
            Kind::Bucket(p, a) => {
                let grace = self.config.grace.as_millis();
                cmd.arg(self.gcra.get_hash())
                    .arg(1)
                    .arg(&job.redis_key)
                    .arg(gcra::fingerprint(p))
                    .arg(if a.need > 0 { "d" } else { "r" })
                    .arg(a.now_units.to_string())
                    .arg(a.need.to_string())
                    .arg(a.threshold.to_string())
                    .arg(format!(
                        "{:e}",
                        gcra::ms_per_unit(p, self.config.ticks_per_second)
                    ))
                    .arg(grace.to_string())
                    .arg(a.full.to_string());
            }
            Kind::Window(p, index) => {
                let decide = r.mode == Mode::Decide && r.cost <= p.limit();
                cmd.arg(self.window.get_hash())
                    .arg(1)
                    .arg(&job.redis_key)
                    .arg(fixed_window::fingerprint(p))
                    .arg(if decide { "d" } else { "r" })
                    .arg(index.to_string())
                    .arg(r.cost.min(p.limit()).to_string())
                    .arg(p.limit().to_string())
                    .arg(
                        self.window_ttl_ms(
                            p,
                            job.converted_window.map_or(*index, |c| c.max(*index)),
                            r.now,
                        )
                        .to_string(),
                    );
            }
        }
        for a in &job.conversion {
            cmd.arg(a);
        }
        cmd
    }

    /// Milliseconds to the end of window `index` seen from `now`, rounded up, plus grace.
    fn window_ttl_ms(&self, p: &WindowQuota, index: u64, now: u64) -> u64 {
        let ticks = u128::from(window::ticks_to_end(p, index, now));
        let ms = (ticks * 1000).div_ceil(u128::from(self.config.ticks_per_second));
        let ms = ms + self.config.grace.as_millis() + 1;
        // Capped like the bucket script's TTL: 10^15 ms is 31 000 years.
        u64::try_from(ms.min(10u128.pow(15))).unwrap_or(u64::MAX)
    }

    /// Reads one script reply; returns `true` when the job needs another (conversion) round, and
    /// whether the script repaired the key. Only the first of a segment's jobs on a key
    /// converts: the later ones run after it, so they find the key converted (or, if that
    /// conversion failed, convert at their own `now`).
    fn absorb(
        job: &mut Job,
        r: &Request<'_>,
        reply: &Value,
        first: bool,
    ) -> Result<(bool, bool), ReplyError> {
        if let Value::ServerError(e) = reply {
            match e.code() {
                "NOSCRIPT" => return Err(ReplyError::NoScript),
                "MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN" => return Err(ReplyError::Moved),
                _ => {}
            }
            return Err(ReplyError::Server(format!(
                "{} {}",
                e.code(),
                e.details().unwrap_or("")
            )));
        }
        let fields = strings(reply).ok_or(ReplyError::Malformed)?;
        if !first && fields.first().map(String::as_str) == Some("0") {
            job.conversion.clear();
            job.converted_window = None;
            return Ok((true, false));
        }
        let num = |i: usize| {
            fields
                .get(i)
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(ReplyError::Malformed)
        };
        let repaired = |i: usize| fields.get(i).map(String::as_str) == Some("repaired");
        match (&job.kind, fields.first().map(String::as_str)) {
            (Kind::Bucket(p, _), Some("1")) => {
                let state = num(1)?;
                job.result = Some(
                    bucket::step(state, p, r.now, r.cost, r.mode)
                        .map(|(next, d)| (d, Some(Known::Bucket(*p, next.unwrap_or(state))))),
                );
                Ok((false, repaired(2)))
            }
            (Kind::Bucket(p, _), Some("0")) => {
                let state = num(1)?;
                let old_fp = fields.get(2).ok_or(ReplyError::Malformed)?;
                // A fingerprint this crate did not write: the state's meaning is unknown, so
                // the key is taken as a full bucket at now (never a fresh one: no free burst).
                let (converted, foreign) = match gcra::parse_fingerprint(old_fp) {
                    Some(old) => (bucket::convert(state, &old, p, r.now), false),
                    None => (bucket::at_level(p, r.now, p.burst()), true),
                };
                match converted {
                    Ok(s) => {
                        job.conversion = vec![fields[1].clone(), old_fp.clone(), s.to_string()];
                        Ok((true, foreign))
                    }
                    Err(e) => {
                        job.result = Some(Err(e));
                        Ok((false, false))
                    }
                }
            }
            (Kind::Window(p, _), Some("1")) => {
                let state = State {
                    index: num(1)?,
                    count: num(2)?,
                };
                job.result = Some(
                    window::step(state, p, r.now, r.cost, r.mode)
                        .map(|(next, d)| (d, Some(Known::Window(*p, next.unwrap_or(state))))),
                );
                Ok((false, repaired(3)))
            }
            (Kind::Window(p, _), Some("0")) => {
                let state = State {
                    index: num(1)?,
                    count: num(2)?,
                };
                let old_fp = fields.get(3).ok_or(ReplyError::Malformed)?;
                // A foreign fingerprint: a full window (the later of the stored one and now's).
                let (converted, foreign) = match fixed_window::parse_fingerprint(old_fp) {
                    Some(old) => (window::convert(state, &old, p, r.now), false),
                    None => (
                        window::index_of(p, r.now).map(|i| State {
                            index: i.max(state.index),
                            count: p.limit(),
                        }),
                        true,
                    ),
                };
                match converted {
                    Ok(converted) => {
                        job.converted_window = Some(converted.index);
                        job.conversion = vec![
                            fields[1].clone(),
                            fields[2].clone(),
                            old_fp.clone(),
                            converted.index.to_string(),
                            converted.count.to_string(),
                        ];
                        Ok((true, foreign))
                    }
                    Err(e) => {
                        job.result = Some(Err(e));
                        Ok((false, false))
                    }
                }
            }
            _ => Err(ReplyError::Malformed),
        }
    }

    /// Decides every request; the `Known` state feeds the hybrid mode's cache.
    ///
    /// The batch is cut into segments in which each key appears under one quota only, and each
    /// segment is one pipeline (plus a compare-and-set round for keys whose quota changed): the
    /// script returns before writing anything when a key needs converting, so every request of
    /// a segment on that key waits for the conversion and the order of the batch is kept.
    pub(crate) fn run(
        &self,
        requests: &[Request<'_>],
    ) -> Vec<Result<(Decision, Option<Known>), Error>> {
        let deadline = Instant::now() + self.config.timeout;
        let mut jobs: Vec<Result<Job, Error>> = requests.iter().map(|r| self.prepare(r)).collect();
        let mut start = 0;
        while start < jobs.len() {
            let mut quotas: HashMap<&str, &Limit> = HashMap::new();
            let mut end = start;
            while end < jobs.len() {
                if let Ok(job) = &jobs[end] {
                    let limit = &requests[end].limit;
                    if *quotas.entry(job.redis_key.as_str()).or_insert(limit) != limit {
                        break;
                    }
                }
                end += 1;
            }
            self.run_segment(&mut jobs[start..end], &requests[start..end], deadline);
            start = end;
        }
        jobs.into_iter()
            .zip(requests)
            .map(|(job, r)| {
                let Some(result) = job?.result else {
                    self.policy_answers.fetch_add(1, Ordering::Relaxed);
                    return Ok((self.policy_decision(&r.limit), None));
                };
                let (decision, known) = result?;
                Ok((self.finish(decision), known))
            })
            .collect()
    }

    fn run_segment(
        &self,
        jobs: &mut [Result<Job, Error>],
        requests: &[Request<'_>],
        deadline: Instant,
    ) {
        for _ in 0..CONVERSION_ROUNDS {
            let pending: Vec<usize> = jobs
                .iter()
                .enumerate()
                .filter(|(_, j)| matches!(j, Ok(job) if job.result.is_none() && !job.by_policy))
                .map(|(i, _)| i)
                .collect();
            if pending.is_empty() {
                return;
            }
            let commands: Vec<(redis::Cmd, &str)> = pending
                .iter()
                .filter_map(|&i| match &jobs[i] {
                    Ok(job) => Some((self.invocation(job, &requests[i]), job.redis_key.as_str())),
                    Err(_) => None,
                })
                .collect();
            let replies = self.topology.exchange(
                &commands,
                deadline,
                self.config.retry_interval,
                &self.counters,
            );
            drop(commands);
            let mut converting: Vec<String> = Vec::new();
            for (&i, reply) in pending.iter().zip(&replies) {
                let Ok(job) = &mut jobs[i] else { continue };
                let Some((reply, node)) = reply else {
                    // Its node is down or late: the policy answers it (counted at the end).
                    job.by_policy = true;
                    continue;
                };
                let first = !converting.contains(&job.redis_key);
                match Self::absorb(job, &requests[i], reply, first) {
                    Ok((again, repaired)) => {
                        if repaired {
                            self.repaired.fetch_add(1, Ordering::Relaxed);
                            log::warn!(
                                "tollgate-redis: key {} held no valid state; repaired as full",
                                job.redis_key
                            );
                        }
                        if again {
                            converting.push(job.redis_key.clone());
                        }
                    }
                    // Sent again next round, after the scripts are loaded.
                    Err(ReplyError::NoScript) => self.topology.reload_scripts(node.as_ref()),
                    // The key's slot moved: rediscover the cluster, send it again next round.
                    Err(ReplyError::Moved) => self.topology.topology_changed(),
                    Err(ReplyError::Server(message)) => {
                        self.answer_by_policy(job, &message);
                    }
                    Err(ReplyError::Malformed) => {
                        self.answer_by_policy(job, "malformed reply");
                    }
                }
            }
        }
    }

    /// One request's own command failed: the policy answers it alone; the connection, the
    /// circuit and every other request of the round trip are untouched.
    fn answer_by_policy(&self, job: &mut Job, message: &str) {
        job.by_policy = true;
        self.server_errors.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "tollgate-redis: {} answered by the failure policy: {message}",
            job.redis_key
        );
    }
}

/// The strings of a script's reply array.
fn strings(reply: &Value) -> Option<Vec<String>> {
    let Value::Array(items) = reply else {
        return None;
    };
    items
        .iter()
        .map(|v| match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            Value::SimpleString(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        })
        .collect()
}
