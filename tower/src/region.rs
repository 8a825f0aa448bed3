//! [`RegionTable`]: a key table in a shared-memory region (feature `shared`, Unix), so that
//! several processes of one host enforce one limit per key (see
//! `docs/semantics.md#shared-regions`).

use std::future::{ready, Ready};
use std::path::Path;

use tollgate::key::Key;
use tollgate::presets::{shopbase, tiktok_shop};
use tollgate::shared::{Options, RegionError, SharedBucketTable, SharedWindowTable};
use tollgate::table::FullPolicy;
use tollgate::{Decision, Error, Quota, WindowQuota};

use crate::backend::{Backend, TierInfo};
use crate::local::TableCounters;
use crate::tables::Tables;

/// A key table in a shared-memory region, on the host's monotonic clock in nanoseconds
/// ([`RegionTable::TICKS_PER_SECOND`]): the backend for several processes of one host — the
/// pre-forked workers of one server, or several instances sharing a port through
/// `SO_REUSEPORT` — that must enforce **one** limit per key, not one each.
///
/// Every process opens the same path with the same tiers, capacity and full-table policy; the
/// first creates the region, the others map it. Opening a region created with other parameters
/// is an error naming the difference ([`RegionError::Mismatch`]): nothing is ever
/// reinterpreted. The keys' hash seed is the region's own, drawn by its creator, so every
/// process hashes a key alike. Decisions and headers are exactly those of a [`LocalTable`]
/// with the same tiers.
///
/// Every process must read the same clock: a `RegionTable` reads `CLOCK_MONOTONIC`, one clock
/// for the whole host. A process deciding on the same region through `tollgate::shared`
/// directly passes `CLOCK_MONOTONIC` nanoseconds too.
///
/// A region is a file, typically under `/dev/shm` (memory, not disk), created owner-only
/// (`0600`; [`Options::mode`] widens it); it outlives the processes, keeping every key's state
/// across restarts until it is deleted. A table built before `fork` in an anonymous mapping
/// ([`SharedBucketTable::anonymous`]) is shared with the children: wrap it with `From`.
///
/// ```
/// use tollgate::shared::Options;
/// use tollgate::table::FullPolicy;
/// use tollgate::Quota;
/// use tollgate_tower::{Backend, KeyExtractor, Policy, RateLimitLayer, RegionTable};
///
/// let dir = std::env::temp_dir().join(format!("tollgate-tower-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// // In every worker process (typically under /dev/shm): ShopBase's bucket per (app, shop).
/// let shops = RegionTable::shopbase(dir.join("shopbase"), 15_000)?;
/// let other_process = RegionTable::shopbase(dir.join("shopbase"), 15_000)?;
/// let key = shops.key_bytes(b"app 7, shop 42"); // the region's seed: the same in every process
/// for _ in 0..15 {
///     assert!(shops.decide(key, 0, 1).into_inner()?.is_allowed());
///     assert!(other_process.decide(key, 0, 1).into_inner()?.is_allowed());
/// }
/// assert!(!shops.decide(key, 0, 1).into_inner()?.is_allowed()); // 30 in all, not 30 each
///
/// // Any tiers, answering a full table by letting new keys through.
/// let tps = RegionTable::TICKS_PER_SECOND;
/// let per_ip = RegionTable::buckets(
///     dir.join("per-ip"),
///     &[Quota::per_second(100, 100, tps)?],
///     100_000,
///     FullPolicy::FailOpen,
///     &Options::new(),
/// )?;
/// let limits = RateLimitLayer::builder()
///     .route("/shopbase", Policy::shopbase(shops, KeyExtractor::id_pair("x-app-id", "x-shop-id")))
///     .route("/", Policy::new("per-ip", per_ip, KeyExtractor::peer_ip())?)
///     .build();
/// # drop((limits, other_process));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`LocalTable`]: crate::LocalTable
#[derive(Debug)]
pub struct RegionTable {
    table: Held,
}

#[derive(Debug)]
enum Held {
    Buckets(SharedBucketTable),
    Windows(SharedWindowTable),
}

/// `CLOCK_MONOTONIC` in nanoseconds: the host's one monotonic clock.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(RegionTable::TICKS_PER_SECOND)
        .saturating_add(nanos)
}

impl RegionTable {
    /// Ticks per second of the table's clock: nanoseconds of `CLOCK_MONOTONIC`.
    pub const TICKS_PER_SECOND: u64 = 1_000_000_000;

    /// Creates or opens (per `options`) a table of leaky buckets (see
    /// `docs/semantics.md#leaky-bucket`) at `path`, with these tiers in nanosecond ticks, room
    /// for `capacity` keys active at once (rounded up to a multiple of 5) and the full-table
    /// `policy`: [`FullPolicy::FailClosed`] answers a new key that finds no room with 503,
    /// [`FullPolicy::FailOpen`] lets it through.
    pub fn buckets(
        path: impl AsRef<Path>,
        tiers: &[Quota],
        capacity: usize,
        policy: FullPolicy,
        options: &Options,
    ) -> Result<RegionTable, RegionError> {
        SharedBucketTable::open(path, capacity, tiers, None, policy, options).map(Self::from)
    }

    /// The same, for a table of fixed windows (see `docs/semantics.md#fixed-window`).
    pub fn windows(
        path: impl AsRef<Path>,
        tiers: &[WindowQuota],
        capacity: usize,
        policy: FullPolicy,
        options: &Options,
    ) -> Result<RegionTable, RegionError> {
        SharedWindowTable::open(path, capacity, tiers, None, policy, options).map(Self::from)
    }

    /// ShopBase's policy (see `docs/semantics.md#vendor-presets`), a bucket of 30 draining 2 per
    /// second per key, at `path`: owner-only, created if missing, 503 when full.
    pub fn shopbase(path: impl AsRef<Path>, capacity: usize) -> Result<RegionTable, RegionError> {
        let quota = shopbase::quota(Self::TICKS_PER_SECOND).map_err(RegionError::Engine)?;
        Self::buckets(
            path,
            &[quota],
            capacity,
            FullPolicy::FailClosed,
            &Options::new(),
        )
    }

    /// TikTok Shop's server policy, a fixed window of 50 per second per key, at `path`:
    /// owner-only, created if missing, 503 when full.
    pub fn tiktok_shop(
        path: impl AsRef<Path>,
        capacity: usize,
    ) -> Result<RegionTable, RegionError> {
        let quota =
            tiktok_shop::server_quota(Self::TICKS_PER_SECOND).map_err(RegionError::Engine)?;
        Self::windows(
            path,
            &[quota],
            capacity,
            FullPolicy::FailClosed,
            &Options::new(),
        )
    }

    /// The table's counters (every process's keys: they share the slots).
    pub fn counters(&self) -> TableCounters {
        self.tables().counters()
    }

    /// `true` if this process created the region, `false` if it opened an existing one.
    pub fn created(&self) -> bool {
        match &self.table {
            Held::Buckets(t) => t.created(),
            Held::Windows(t) => t.created(),
        }
    }

    fn tables(&self) -> Tables<'_> {
        match &self.table {
            Held::Buckets(t) => Tables::Buckets(t.table()),
            Held::Windows(t) => Tables::Windows(t.table()),
        }
    }
}

impl From<SharedBucketTable> for RegionTable {
    /// The backend over a bucket table already opened (or created anonymous, before `fork`);
    /// its quotas must be in nanoseconds of `CLOCK_MONOTONIC`.
    fn from(table: SharedBucketTable) -> RegionTable {
        RegionTable {
            table: Held::Buckets(table),
        }
    }
}

impl From<SharedWindowTable> for RegionTable {
    /// The backend over a window table already opened (or created anonymous, before `fork`);
    /// its quotas must be in nanoseconds of `CLOCK_MONOTONIC`.
    fn from(table: SharedWindowTable) -> RegionTable {
        RegionTable {
            table: Held::Windows(table),
        }
    }
}

impl Backend for RegionTable {
    type Future = Ready<Result<Decision, Error>>;

    fn decide(&self, key: Key, tier: usize, cost: u64) -> Self::Future {
        ready(self.tables().run(key, tier, monotonic_ns(), cost, false))
    }

    fn peek(&self, key: Key, tier: usize, cost: u64) -> Self::Future {
        ready(self.tables().run(key, tier, monotonic_ns(), cost, true))
    }

    fn tier(&self, tier: usize) -> Option<TierInfo> {
        self.tables().tier_info(tier, Self::TICKS_PER_SECOND)
    }

    fn ticks_per_second(&self) -> u64 {
        Self::TICKS_PER_SECOND
    }

    fn key_bytes(&self, bytes: &[u8]) -> Key {
        self.tables().seed().key_bytes(bytes)
    }
}
