//! [`LocalTable`]: the in-process backend, a lock-free key table of leaky buckets or fixed
//! windows (see `docs/semantics.md#key-tables`) in this process's memory. This is the only
//! module that builds a `tollgate::table` in private memory.

use std::fmt;
use std::future::{ready, Ready};

use tollgate::key::{Key, Seed};
use tollgate::presets::{shopbase, tiktok_shop};
use tollgate::table::{self, BucketTable, FullPolicy, Table, TableQuota, WindowTable};
use tollgate::{Decision, Error, Quota, WindowQuota};

use crate::backend::{Backend, TierInfo};
use crate::tables::Tables;

/// A key table in this process, on a nanosecond clock ([`LocalTable::TICKS_PER_SECOND`]).
///
/// Its slots are allocated once, when it is built, and live for the rest of the process: build
/// tables at start-up, not per request. A table never grows; a new key that finds no room gets
/// the full-table answer, 503 by default ([`LocalTable::fail_open`] lets it through instead).
///
/// ```
/// use tollgate::Quota;
/// use tollgate_tower::LocalTable;
/// // ShopBase's bucket for up to about 10 000 active (app, shop) pairs.
/// let shopbase = LocalTable::shopbase(15_000)?;
/// // Or any tiers: a free tier of 10 per second and a paid one of 100.
/// let tps = LocalTable::TICKS_PER_SECOND;
/// let tiers = [Quota::per_second(10, 10, tps)?, Quota::per_second(100, 100, tps)?];
/// let plans = LocalTable::buckets(&tiers, 15_000)?;
/// assert_eq!(shopbase.counters().capacity, 15_000);
/// assert_eq!(plans.counters().occupied, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LocalTable {
    table: Tables<'static>,
    clock: Clock,
}

/// Nanoseconds since the table was built, from the CPU's time-stamp counter where it is
/// invariant (quanta; the OS's monotonic clock elsewhere): a few nanoseconds per reading where
/// the OS clock can take over a hundred on a virtual machine. A reading on a core whose counter
/// is behind is a clock stepping back a little, which the engine takes in its stride (see
/// `docs/semantics.md#backwards-clocks`).
#[derive(Debug)]
struct Clock {
    source: quanta::Clock,
    origin: u64,
}

impl Clock {
    fn new() -> Clock {
        let source = quanta::Clock::new();
        let origin = source.raw();
        Clock { source, origin }
    }

    fn now(&self) -> u64 {
        self.source.delta_as_nanos(self.origin, self.source.raw())
    }
}

/// A snapshot of a [`LocalTable`]'s counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableCounters {
    /// Slots in the table.
    pub capacity: usize,
    /// Slots holding a key now.
    pub occupied: u64,
    /// Decisions answered by the full-table policy for lack of room, since the table was built.
    pub rejected: u64,
}

/// Why a [`LocalTable`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum LocalTableError {
    /// Parameters no table takes: a capacity of 0 or one too large for memory, no tiers or
    /// too many, a tier whose bucket does not fit the table (the errors of
    /// [`Table::init`](tollgate::table::Table::init)).
    Table(Error),
    /// The operating system could not supply the table's random hash seed
    /// ([`Seed::random`]; for example a Linux kernel whose random pool is not yet
    /// initialised). No table is built with a weaker seed instead: a predictable seed lets
    /// clients aim their keys at one group of slots.
    Seed(std::io::Error),
}

impl From<Error> for LocalTableError {
    fn from(e: Error) -> LocalTableError {
        LocalTableError::Table(e)
    }
}

impl fmt::Display for LocalTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalTableError::Table(e) => write!(f, "key table: {e}"),
            LocalTableError::Seed(e) => write!(f, "key table: cannot draw a random hash seed: {e}"),
        }
    }
}

impl std::error::Error for LocalTableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LocalTableError::Table(e) => Some(e),
            LocalTableError::Seed(e) => Some(e),
        }
    }
}

/// The table's hash seed, from the operating system's randomness.
fn random_seed() -> Result<Seed, LocalTableError> {
    Seed::random().map_err(LocalTableError::Seed)
}

/// The memory of a table of `capacity` slots and `tiers` tiers, allocated once and kept for the
/// rest of the process.
fn leak_memory(capacity: usize, tiers: usize) -> Result<&'static [table::AtomicU64], Error> {
    let words = table::words(capacity, tiers);
    if words == usize::MAX {
        return Err(Error::CapacityExceeded);
    }
    let memory: Vec<table::AtomicU64> = (0..words).map(|_| table::AtomicU64::new(0)).collect();
    Ok(Box::leak(memory.into_boxed_slice()))
}

/// The same table, initialised again (empty) with another full-table policy.
fn with_policy<Q: TableQuota + Copy>(
    t: Table<'static, Q>,
    policy: FullPolicy,
) -> Result<Table<'static, Q>, Error> {
    let tiers: Vec<Q> = (0..t.tier_count()).filter_map(|i| t.tier(i)).collect();
    Table::init_with_epoch(t.memory(), &tiers, t.seed(), policy, t.epoch())
}

impl LocalTable {
    /// Ticks per second of the table's clock: nanoseconds.
    pub const TICKS_PER_SECOND: u64 = 1_000_000_000;

    /// A table of leaky buckets (see `docs/semantics.md#leaky-bucket`) with these tiers, in
    /// nanosecond ticks, and room for `capacity` keys active at once (size it at 1.5 times the
    /// keys you expect). Its hash seed is drawn from the operating system's randomness
    /// ([`Seed::random`]).
    ///
    /// Errors: [`LocalTableError::Table`] for parameters no table takes,
    /// [`LocalTableError::Seed`] when the system has no randomness to give.
    pub fn buckets(tiers: &[Quota], capacity: usize) -> Result<LocalTable, LocalTableError> {
        Self::check(capacity)?;
        let seed = random_seed()?;
        let memory = leak_memory(capacity, tiers.len())?;
        let table = BucketTable::init(memory, tiers, seed, FullPolicy::FailClosed)?;
        Ok(LocalTable {
            table: Tables::Buckets(table),
            clock: Clock::new(),
        })
    }

    /// A table of fixed windows (see `docs/semantics.md#fixed-window`) with these tiers, in
    /// nanosecond ticks. Errors: as [`LocalTable::buckets`].
    pub fn windows(tiers: &[WindowQuota], capacity: usize) -> Result<LocalTable, LocalTableError> {
        Self::check(capacity)?;
        let seed = random_seed()?;
        let memory = leak_memory(capacity, tiers.len())?;
        let table = WindowTable::init(memory, tiers, seed, FullPolicy::FailClosed)?;
        Ok(LocalTable {
            table: Tables::Windows(table),
            clock: Clock::new(),
        })
    }

    /// ShopBase's policy (see `docs/semantics.md#vendor-presets`): a bucket of 30 draining 2
    /// per second per key.
    pub fn shopbase(capacity: usize) -> Result<LocalTable, LocalTableError> {
        Self::buckets(&[shopbase::quota(Self::TICKS_PER_SECOND)?], capacity)
    }

    /// TikTok Shop's server policy: a fixed window of 50 per second per key.
    pub fn tiktok_shop(capacity: usize) -> Result<LocalTable, LocalTableError> {
        Self::windows(
            &[tiktok_shop::server_quota(Self::TICKS_PER_SECOND)?],
            capacity,
        )
    }

    fn check(capacity: usize) -> Result<(), Error> {
        if capacity == 0 {
            Err(Error::CapacityExceeded)
        } else {
            Ok(())
        }
    }

    /// The same table, letting a new key through (flagged, not counted) when it finds no room,
    /// instead of answering 503. Call it when building the table: the table starts empty again.
    #[must_use]
    pub fn fail_open(self, open: bool) -> LocalTable {
        let policy = if open {
            FullPolicy::FailOpen
        } else {
            FullPolicy::FailClosed
        };
        // Re-initialising memory this table already initialised, with the same tiers, cannot
        // fail; should it, the table keeps its policy.
        let table = match self.table {
            Tables::Buckets(t) => Tables::Buckets(with_policy(t, policy).unwrap_or(t)),
            Tables::Windows(t) => Tables::Windows(with_policy(t, policy).unwrap_or(t)),
        };
        LocalTable {
            table,
            clock: self.clock,
        }
    }

    /// The table's counters.
    pub fn counters(&self) -> TableCounters {
        self.table.counters()
    }
}

impl Backend for LocalTable {
    type Future = Ready<Result<Decision, Error>>;

    fn decide(&self, key: Key, tier: usize, cost: u64) -> Self::Future {
        ready(self.table.run(key, tier, self.clock.now(), cost, false))
    }

    fn peek(&self, key: Key, tier: usize, cost: u64) -> Self::Future {
        ready(self.table.run(key, tier, self.clock.now(), cost, true))
    }

    fn tier(&self, tier: usize) -> Option<TierInfo> {
        self.table.tier_info(tier, Self::TICKS_PER_SECOND)
    }

    fn ticks_per_second(&self) -> u64 {
        Self::TICKS_PER_SECOND
    }

    fn key_bytes(&self, bytes: &[u8]) -> Key {
        self.table.seed().key_bytes(bytes)
    }
}
