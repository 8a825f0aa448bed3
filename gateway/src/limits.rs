//! Where the gateway's decisions are made: a small [`Backend`] trait with two implementations,
//! key tables ([`Local`], the core's `tollgate::table`, in this process's memory or in named
//! shared-memory regions that several gateway processes of one host map together, see
//! `docs/semantics.md#shared-regions`) and Redis ([`Shared`], the `tollgate-redis` crate, shared
//! or hybrid). This module is the only one that touches either API, so a change there is a
//! change here.

use std::future::Future;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate::clock::StdClock;
use tollgate::key::{Key, Seed};
use tollgate::shared::{Options, RegionError, SharedBucketTable, SharedWindowTable};
use tollgate::table::{self, BucketTable, FullPolicy, TableStats, WindowTable};
use tollgate::{Decision, Error, FixedWindow, LeakyBucket, Quota, WindowQuota};

use crate::config::{FullTable, Limits, Policy, QuotaSpec, Redis, RedisMode, Settings};

/// The most tiers a policy may have (the key table's limit).
pub const MAX_TIERS: usize = tollgate::table::MAX_TIERS;

/// A quota in a backend's ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Built {
    /// A leaky bucket.
    Bucket(Quota),
    /// A fixed window.
    Window(WindowQuota),
}

impl QuotaSpec {
    /// The quota in ticks of a clock of `ticks_per_second`.
    pub fn build(&self, ticks_per_second: u64) -> Result<Built, Error> {
        let ticks = |ms: u64| {
            u64::try_from(u128::from(ms) * u128::from(ticks_per_second) / 1_000)
                .map_err(|_| Error::InvalidArgument)
        };
        match *self {
            QuotaSpec::Bucket {
                burst,
                rate,
                period_ms,
            } => Ok(Built::Bucket(Quota::new(burst, rate, ticks(period_ms)?)?)),
            QuotaSpec::Window { limit, window_ms } => {
                Ok(Built::Window(WindowQuota::new(limit, ticks(window_ms)?)?))
            }
        }
    }
}

/// A request's key: the exact text (for Redis, shared by every node) and a 128-bit key (for
/// the in-process tables, a seeded hash of the same text).
#[derive(Clone, Debug)]
pub struct KeyId {
    /// `policy:` then each part as `length:text` (an injective encoding).
    pub text: String,
    /// The 128-bit key of `text`.
    pub key: Key,
    /// The key of the owner (the parts not chosen by the caller), for the new-key cap.
    pub owner: Key,
}

/// A decision still on its way (a Redis round trip), or ready.
pub type Pending = Pin<Box<dyn Future<Output = Result<Decision, Error>> + Send>>;

/// Counters of a key table.
#[derive(Clone, Debug)]
pub struct TableReport {
    /// The policy (or `new-keys`, the per-owner cap's own table).
    pub name: String,
    /// Its counters.
    pub stats: TableStats,
}

/// Counters of the Redis backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedisReport {
    /// Round trips made.
    pub round_trips: u64,
    /// Round trips that failed or timed out.
    pub failures: u64,
    /// Decisions answered by the failure policy.
    pub policy_answers: u64,
    /// Hybrid mode: denials answered from the local mirror.
    pub local_denials: u64,
}

/// Where decisions are made.
pub trait Backend: Send + Sync {
    /// Ticks per second of [`Backend::now`].
    fn ticks_per_second(&self) -> u64;
    /// The current time in ticks.
    fn now(&self) -> u64;
    /// The quotas of `policy` by tier, in this backend's ticks.
    fn quotas(&self, policy: usize) -> &[Built];
    /// Decides on one request of cost 1 for `key` on `tier` of `policy`.
    fn decide(&self, policy: usize, key: &KeyId, tier: usize, now: u64) -> Pending;
    /// The key's numbers for the headers of a refusal that spends nothing — without inserting
    /// the key and without a round trip: a key not held locally gets a new bucket's numbers
    /// (in-process) or `None` (Redis).
    fn peek_known(&self, policy: usize, key: &KeyId, tier: usize, now: u64) -> Option<Decision>;
    /// The in-process tables' counters.
    fn tables(&self) -> Vec<TableReport>;
    /// The Redis counters, in fleet mode.
    fn redis(&self) -> Option<RedisReport>;
    /// A one-line description for the start-up banner.
    fn describe(&self) -> String;
}

/// The in-process clock (nanoseconds since the first use), one per process so that tables
/// kept across a reload keep their time base.
static CLOCK: LazyLock<StdClock> = LazyLock::new(StdClock::new);

/// The clock of tables in shared regions: `CLOCK_MONOTONIC` in nanoseconds, one clock for every
/// process of the host (what `Instant` reads on Linux, from the boot rather than from a point
/// of this process).
fn host_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// A new hash seed from the operating system's randomness ([`Seed::random`]); when the
/// system has none to give, the start-up or reload fails with the reason (never a weaker seed:
/// a predictable seed lets clients aim keys at one group of a table).
pub fn random_seed() -> Result<Seed, String> {
    Seed::random().map_err(|e| format!("cannot draw a random hash seed: {e}"))
}

/// A table's memory (its 64-bit words: header, tiers and slots), allocated without aborting
/// when memory is short.
fn alloc_words(slots: usize, tiers: usize) -> Result<Box<[table::AtomicU64]>, String> {
    let n = table::words(slots, tiers);
    if n == usize::MAX {
        return Err(format!(
            "a key table of {slots} slots does not fit this machine's memory"
        ));
    }
    let mut v: Vec<table::AtomicU64> = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| format!("cannot allocate a key table of {slots} slots"))?;
    v.extend((0..n).map(|_| table::AtomicU64::new(0)));
    Ok(v.into_boxed_slice())
}

/// A table's memory: one block of words holding its header, tiers and slots.
struct Storage {
    words: Box<[table::AtomicU64]>,
}

type BucketRef<'a> = BucketTable<'a>;
type WindowRef<'a> = WindowTable<'a>;

self_cell::self_cell!(
    /// A bucket table that owns its slots.
    struct OwnedBucket {
        owner: Storage,
        #[covariant]
        dependent: BucketRef,
    }
);

self_cell::self_cell!(
    /// A window table that owns its slots.
    struct OwnedWindow {
        owner: Storage,
        #[covariant]
        dependent: WindowRef,
    }
);

/// One policy's key table: in this process's memory, or in a shared-memory region.
enum Table {
    Bucket(OwnedBucket),
    Window(OwnedWindow),
    SharedBucket(SharedBucketTable),
    SharedWindow(SharedWindowTable),
}

/// A table's handle, wherever its memory is.
#[derive(Clone, Copy)]
enum Handle<'a> {
    Bucket(BucketRef<'a>),
    Window(WindowRef<'a>),
}

/// The tiers of `built` that are leaky buckets.
fn bucket_tiers(built: &[Built]) -> Box<[Quota]> {
    built
        .iter()
        .filter_map(|b| match b {
            Built::Bucket(q) => Some(*q),
            Built::Window(_) => None,
        })
        .collect()
}

/// The tiers of `built` that are fixed windows.
fn window_tiers(built: &[Built]) -> Box<[WindowQuota]> {
    built
        .iter()
        .filter_map(|b| match b {
            Built::Window(q) => Some(*q),
            Built::Bucket(_) => None,
        })
        .collect()
}

/// A region's error as a start-up or reload error: the path, what differs, and what to do.
fn region_error(path: &Path, e: &RegionError) -> String {
    let hint = match e {
        RegionError::Mismatch { .. } | RegionError::Kind { .. } | RegionError::Size { .. } => {
            ": the region was created with other quotas, table_slots or full_table; a region \
             is never reinterpreted: stop every gateway that maps it and delete it, or use \
             another shared_dir"
        }
        _ => "",
    };
    format!("{}: {e}{hint}", path.display())
}

impl Table {
    fn new(built: &[Built], slots: usize, policy: FullPolicy) -> Result<Table, String> {
        let seed = random_seed()?;
        let fail = |e: Error| format!("key table: {e}");
        match built.first() {
            Some(Built::Bucket(_)) => {
                let tiers = bucket_tiers(built);
                let storage = Storage {
                    words: alloc_words(slots, tiers.len())?,
                };
                OwnedBucket::try_new(storage, |s| {
                    BucketTable::init(&s.words, &tiers, seed, policy)
                })
                .map(Table::Bucket)
                .map_err(fail)
            }
            Some(Built::Window(_)) => {
                let tiers = window_tiers(built);
                let storage = Storage {
                    words: alloc_words(slots, tiers.len())?,
                };
                OwnedWindow::try_new(storage, |s| {
                    WindowTable::init(&s.words, &tiers, seed, policy)
                })
                .map(Table::Window)
                .map_err(fail)
            }
            None => Err("a policy without quotas".into()),
        }
    }

    /// Creates or opens the table in the shared region at `path` (owner-only). An existing
    /// region must hold exactly these tiers, slots and full-table policy; its seed is adopted.
    fn open(
        path: &Path,
        built: &[Built],
        slots: usize,
        policy: FullPolicy,
    ) -> Result<Table, String> {
        let options = Options::new();
        let table = match built.first() {
            Some(Built::Bucket(_)) => {
                SharedBucketTable::open(path, slots, &bucket_tiers(built), None, policy, &options)
                    .map(Table::SharedBucket)
            }
            Some(Built::Window(_)) => {
                SharedWindowTable::open(path, slots, &window_tiers(built), None, policy, &options)
                    .map(Table::SharedWindow)
            }
            None => return Err("a policy without quotas".into()),
        };
        table.map_err(|e| region_error(path, &e))
    }

    fn handle(&self) -> Handle<'_> {
        match self {
            Table::Bucket(t) => Handle::Bucket(*t.borrow_dependent()),
            Table::Window(t) => Handle::Window(*t.borrow_dependent()),
            Table::SharedBucket(t) => Handle::Bucket(t.table()),
            Table::SharedWindow(t) => Handle::Window(t.table()),
        }
    }

    /// The table's key for `key`: the request's own (hashed with this process's seed) for a
    /// table in this process; for a shared table, the text hashed with the region's seed,
    /// which every process sharing it uses.
    fn key_of(&self, key: &KeyId) -> Key {
        match self {
            Table::Bucket(_) | Table::Window(_) => key.key,
            Table::SharedBucket(t) => t.seed().key_bytes(key.text.as_bytes()),
            Table::SharedWindow(t) => t.seed().key_bytes(key.text.as_bytes()),
        }
    }

    fn decide(&self, key: Key, tier: usize, now: u64, peek: bool) -> Result<Decision, Error> {
        match (self.handle(), peek) {
            (Handle::Bucket(t), false) => t.decide(key, tier, now, 1),
            (Handle::Bucket(t), true) => t.peek(key, tier, now, 1),
            (Handle::Window(t), false) => t.decide(key, tier, now, 1),
            (Handle::Window(t), true) => t.peek(key, tier, now, 1),
        }
    }

    fn contains(&self, key: Key) -> bool {
        match self.handle() {
            Handle::Bucket(t) => t.probe_len(key).is_some(),
            Handle::Window(t) => t.probe_len(key).is_some(),
        }
    }

    fn stats(&self) -> TableStats {
        match self.handle() {
            Handle::Bucket(t) => t.stats(),
            Handle::Window(t) => t.stats(),
        }
    }
}

/// One policy's table with what it was built from (to tell whether a reload may keep it).
struct PolicyTable {
    name: String,
    quotas: Vec<Built>,
    slots: usize,
    full: FullTable,
    table: Arc<Table>,
}

/// Key tables, one per policy: in this process, or in shared regions under a directory.
pub struct Local {
    policies: Vec<PolicyTable>,
    /// The directory of the shared regions; `None`: in-process tables.
    shared_dir: Option<PathBuf>,
}

fn full_policy(f: FullTable) -> FullPolicy {
    match f {
        FullTable::Closed => FullPolicy::FailClosed,
        FullTable::Open => FullPolicy::FailOpen,
    }
}

fn build_quotas(p: &Policy, tps: u64) -> Result<Vec<Built>, String> {
    p.quotas
        .iter()
        .map(|q| q.build(tps))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("policy {}: {e}", p.name))
}

impl Local {
    /// Tables for `settings`; a table of `old` whose policy name, quotas, size, full-table
    /// policy and shared directory are unchanged is kept, with its state.
    ///
    /// With `shared_dir`, each policy's table is the region `<shared_dir>/<policy>`, created
    /// if missing (the directory too, owner-only); a region created with other parameters is
    /// an error naming the difference.
    pub fn new(settings: &Settings, old: Option<&Local>) -> Result<Local, String> {
        let tps = StdClock::TICKS_PER_SECOND;
        let shared_dir = settings.limits.shared_dir.clone();
        let old = old.filter(|o| o.shared_dir == shared_dir);
        if let Some(dir) = &shared_dir {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("[limits] shared_dir {}: {e}", dir.display()))?;
        }
        let mut policies = Vec::new();
        for p in &settings.policies {
            let quotas = build_quotas(p, tps)?;
            let slots = settings.limits.table_slots;
            let full = settings.limits.full_table;
            let kept = old.and_then(|o| {
                o.policies.iter().find(|t| {
                    t.name == p.name && t.quotas == quotas && t.slots == slots && t.full == full
                })
            });
            let table = match (kept, &shared_dir) {
                (Some(t), _) => Arc::clone(&t.table),
                (None, None) => Arc::new(Table::new(&quotas, slots, full_policy(full))?),
                (None, Some(dir)) => Arc::new(
                    Table::open(&dir.join(&p.name), &quotas, slots, full_policy(full))
                        .map_err(|e| format!("policy {}: {e}", p.name))?,
                ),
            };
            policies.push(PolicyTable {
                name: p.name.clone(),
                quotas,
                slots,
                full,
                table,
            });
        }
        Ok(Local {
            policies,
            shared_dir,
        })
    }

    /// Names of the policies whose tables were kept from `old`.
    pub fn kept_from(&self, old: &Local) -> Vec<String> {
        self.policies
            .iter()
            .filter(|p| old.policies.iter().any(|o| Arc::ptr_eq(&o.table, &p.table)))
            .map(|p| p.name.clone())
            .collect()
    }
}

impl Backend for Local {
    fn ticks_per_second(&self) -> u64 {
        StdClock::TICKS_PER_SECOND
    }

    fn now(&self) -> u64 {
        if self.shared_dir.is_some() {
            host_ns()
        } else {
            CLOCK.now()
        }
    }

    fn quotas(&self, policy: usize) -> &[Built] {
        &self.policies[policy].quotas
    }

    fn decide(&self, policy: usize, key: &KeyId, tier: usize, now: u64) -> Pending {
        let table = &self.policies[policy].table;
        let d = table.decide(table.key_of(key), tier, now, false);
        Box::pin(std::future::ready(d))
    }

    fn peek_known(&self, policy: usize, key: &KeyId, tier: usize, now: u64) -> Option<Decision> {
        let p = &self.policies[policy];
        let k = p.table.key_of(key);
        if p.table.contains(k) {
            if let Ok(d) = p.table.decide(k, tier, now, true) {
                return Some(d);
            }
        }
        // Not in the table: it is a new bucket, whose numbers a fresh limiter gives.
        match p.quotas.get(tier)? {
            Built::Bucket(q) => LeakyBucket::new(*q).peek(now, 1).ok(),
            Built::Window(q) => FixedWindow::new(*q).peek(now, 1).ok(),
        }
    }

    fn tables(&self) -> Vec<TableReport> {
        self.policies
            .iter()
            .map(|p| TableReport {
                name: p.name.clone(),
                stats: p.table.stats(),
            })
            .collect()
    }

    fn redis(&self) -> Option<RedisReport> {
        None
    }

    fn describe(&self) -> String {
        let slots = self.policies.first().map_or(0, |p| p.slots);
        match &self.shared_dir {
            None => format!("in-process key tables ({slots} slots per policy)"),
            Some(dir) => format!(
                "key tables in shared regions under {} ({slots} slots per policy)",
                dir.display()
            ),
        }
    }
}

/// The Redis limiter, shared or hybrid.
enum Remote {
    Shared(tollgate_redis::RedisLimiter),
    Hybrid(tollgate_redis::HybridLimiter),
}

/// Fleet mode: every decision through Redis (on tokio's blocking pool: the Redis client
/// blocks), in milliseconds since the Unix epoch, the timeline every node shares.
pub struct Shared {
    remote: Arc<Remote>,
    config: Redis,
    quotas: Vec<Vec<Built>>,
}

/// Milliseconds since the Unix epoch (0 before it).
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Shared {
    /// A Redis backend for `settings` (whose `redis` must be set); the connection to Redis of
    /// `old` is kept when the Redis settings are unchanged.
    pub fn new(settings: &Settings, old: Option<&Shared>) -> Result<Shared, String> {
        let config = settings.redis.clone().ok_or("fleet mode without [redis]")?;
        let quotas = settings
            .policies
            .iter()
            .map(|p| build_quotas(p, 1_000))
            .collect::<Result<Vec<_>, _>>()?;
        let remote = match old {
            Some(o) if o.config == config => Arc::clone(&o.remote),
            _ => {
                let mut c = tollgate_redis::Config::new(config.url.clone(), 1_000);
                c.prefix.clone_from(&config.prefix);
                c.timeout = config.timeout;
                c.retry_interval = config.retry_interval;
                c.connections = config.connections;
                c.grace = config.grace;
                c.policy = if config.fail_closed {
                    tollgate_redis::FailurePolicy::Closed
                } else {
                    tollgate_redis::FailurePolicy::Open
                };
                let shared =
                    tollgate_redis::RedisLimiter::new(c).map_err(|e| format!("[redis] {e}"))?;
                Arc::new(match config.mode {
                    RedisMode::Shared => Remote::Shared(shared),
                    RedisMode::Hybrid => Remote::Hybrid(tollgate_redis::HybridLimiter::new(
                        shared,
                        config.hybrid_keys,
                    )),
                })
            }
        };
        Ok(Shared {
            remote,
            config,
            quotas,
        })
    }
}

fn limit_of(b: Built) -> tollgate_redis::Limit {
    match b {
        Built::Bucket(q) => tollgate_redis::Limit::Bucket(q),
        Built::Window(q) => tollgate_redis::Limit::Window(q),
    }
}

impl Backend for Shared {
    fn ticks_per_second(&self) -> u64 {
        1_000
    }

    fn now(&self) -> u64 {
        unix_ms()
    }

    fn quotas(&self, policy: usize) -> &[Built] {
        &self.quotas[policy]
    }

    fn decide(&self, policy: usize, key: &KeyId, tier: usize, now: u64) -> Pending {
        let Some(&quota) = self.quotas[policy].get(tier) else {
            return Box::pin(std::future::ready(Err(Error::InvalidArgument)));
        };
        let remote = Arc::clone(&self.remote);
        let text = key.text.clone();
        // Bounded: the limiter gives up after its timeout (connecting included).
        let budget = self.config.timeout * 4 + Duration::from_millis(100);
        Box::pin(async move {
            let job = tokio::task::spawn_blocking(move || match &*remote {
                Remote::Shared(r) => r.decide(&text, limit_of(quota), now, 1),
                Remote::Hybrid(h) => h.decide(&text, limit_of(quota), now, 1),
            });
            match tokio::time::timeout(budget, job).await {
                Ok(Ok(d)) => d,
                // The blocking pool is saturated or the task failed: the request is shed (503).
                _ => Err(Error::CapacityExceeded),
            }
        })
    }

    fn peek_known(&self, _: usize, _: &KeyId, _: usize, _: u64) -> Option<Decision> {
        None
    }

    fn tables(&self) -> Vec<TableReport> {
        Vec::new()
    }

    fn redis(&self) -> Option<RedisReport> {
        let (s, local_denials) = match &*self.remote {
            Remote::Shared(r) => (r.stats(), 0),
            Remote::Hybrid(h) => (h.shared().stats(), h.local_denials()),
        };
        Some(RedisReport {
            round_trips: s.round_trips,
            failures: s.failures,
            policy_answers: s.policy_answers,
            local_denials,
        })
    }

    fn describe(&self) -> String {
        format!(
            "Redis at {} ({}, fail-{}, timeout {} ms)",
            self.config.url,
            match self.config.mode {
                RedisMode::Shared => "shared",
                RedisMode::Hybrid => "hybrid",
            },
            if self.config.fail_closed {
                "closed"
            } else {
                "open"
            },
            self.config.timeout.as_millis()
        )
    }
}

/// The backend of the running config, rebuilt on reload with what can be kept.
pub enum BackendSlot {
    /// In-process tables.
    Local(Arc<Local>),
    /// Redis.
    Shared(Arc<Shared>),
}

impl BackendSlot {
    /// The backend for `settings`; from `old`, tables (in-process) or the Redis connection are
    /// kept where the settings allow.
    pub fn build(settings: &Settings, old: Option<&BackendSlot>) -> Result<BackendSlot, String> {
        if settings.redis.is_some() && settings.limits.shared_dir.is_some() {
            return Err(crate::config::SHARED_AND_REDIS.into());
        }
        if settings.redis.is_some() {
            let prev = match old {
                Some(BackendSlot::Shared(s)) => Some(&**s),
                _ => None,
            };
            Ok(BackendSlot::Shared(Arc::new(Shared::new(settings, prev)?)))
        } else {
            let prev = match old {
                Some(BackendSlot::Local(l)) => Some(&**l),
                _ => None,
            };
            Ok(BackendSlot::Local(Arc::new(Local::new(settings, prev)?)))
        }
    }

    /// The backend as the trait.
    pub fn get(&self) -> Arc<dyn Backend> {
        match self {
            BackendSlot::Local(l) => Arc::clone(l) as Arc<dyn Backend>,
            BackendSlot::Shared(s) => Arc::clone(s) as Arc<dyn Backend>,
        }
    }

    /// Policies whose tables were kept from `old` (in-process), or every policy (Redis keeps
    /// all state).
    pub fn kept_from(&self, old: &BackendSlot, settings: &Settings) -> Vec<String> {
        match (self, old) {
            (BackendSlot::Local(n), BackendSlot::Local(o)) => n.kept_from(o),
            (BackendSlot::Shared(_), BackendSlot::Shared(_)) => {
                settings.policies.iter().map(|p| p.name.clone()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The cap on new keys per owner for routes whose key has caller-chosen parts: an owner (the
/// key's other parts, e.g. (app, shop)) creates at most `new_keys_burst` keys at once, then
/// `new_keys_per_minute`. Itself two in-process tables: the owners' leaky buckets, and the keys
/// seen in the last minute.
pub struct NewKeys {
    limits: (u64, u64, usize),
    owners: Table,
    seen: Table,
}

const MINUTE_NS: u64 = 60_000_000_000;

impl NewKeys {
    /// The cap for `limits`; `old` is kept if its limits are the same.
    pub fn new(limits: &Limits, old: Option<&Arc<NewKeys>>) -> Result<Arc<NewKeys>, String> {
        let l = (
            limits.new_keys_burst,
            limits.new_keys_per_minute,
            limits.table_slots,
        );
        if let Some(o) = old.filter(|o| o.limits == l) {
            return Ok(Arc::clone(o));
        }
        let owner_quota = Quota::new(l.0, l.1, MINUTE_NS).map_err(|e| format!("new keys: {e}"))?;
        let seen_quota =
            WindowQuota::new(1 << 16, MINUTE_NS).map_err(|e| format!("new keys: {e}"))?;
        Ok(Arc::new(NewKeys {
            limits: l,
            owners: Table::new(&[Built::Bucket(owner_quota)], l.2, FullPolicy::FailClosed)?,
            seen: Table::new(&[Built::Window(seen_quota)], l.2, FullPolicy::FailOpen)?,
        }))
    }

    /// `Ok` if `key` was seen in the last minute or its owner may create it (it is then
    /// recorded); else the owner's refusal (429, with its retry time).
    pub fn admit(&self, key: &KeyId, shadow: bool) -> Result<(), Decision> {
        let now = CLOCK.now();
        if self.seen.contains(key.key) {
            return Ok(());
        }
        match self.owners.decide(key.owner, 0, now, false) {
            Ok(d) if !d.is_allowed() && !shadow => return Err(d),
            Err(_) => {
                return Err(Decision {
                    outcome: tollgate::Outcome::Overloaded,
                    verdict: tollgate::Outcome::Overloaded,
                    limit: 0,
                    used: 0,
                    remaining: 0,
                    retry_after: Some(0),
                    reset_after: 0,
                    flags: 0,
                })
            }
            Ok(_) => {}
        }
        let _ = self.seen.decide(key.key, 0, now, false);
        Ok(())
    }

    /// The two tables' counters.
    pub fn tables(&self) -> Vec<TableReport> {
        vec![
            TableReport {
                name: "new-keys-owners".into(),
                stats: self.owners.stats(),
            },
            TableReport {
                name: "new-keys-seen".into(),
                stats: self.seen.stats(),
            },
        ]
    }
}
