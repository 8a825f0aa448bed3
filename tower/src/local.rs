//! [`LocalTable`]: the in-process backend, a lock-free key table of leaky buckets or fixed
//! windows (see `docs/semantics.md#key-tables`). This is the only module that builds a
//! `tollgate::table`.

use std::collections::hash_map::RandomState;
use std::future::{ready, Ready};
use std::hash::BuildHasher;

use tollgate::key::{Key, Seed};
use tollgate::presets::{shopbase, tiktok_shop};
use tollgate::table::{BucketTable, FullPolicy, Slot, WindowTable};
use tollgate::{header, Decision, Error, Quota, WindowQuota};

use crate::backend::{Backend, TierInfo};

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
/// # Ok::<(), tollgate::Error>(())
/// ```
#[derive(Debug)]
pub struct LocalTable {
    table: Kind,
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

#[derive(Debug)]
enum Kind {
    Buckets(BucketTable<'static>),
    Windows(WindowTable<'static>),
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

/// A random 128-bit seed from std's randomly keyed `RandomState` (seeded by the OS).
fn random_seed() -> Seed {
    let a = RandomState::new();
    let b = RandomState::new();
    Seed::new(a.hash_one(0x7467_u64), b.hash_one(0x6774_u64))
}

fn leak_slots(capacity: usize) -> &'static [Slot] {
    let slots: Vec<Slot> = (0..capacity).map(|_| Slot::new()).collect();
    Box::leak(slots.into_boxed_slice())
}

impl LocalTable {
    /// Ticks per second of the table's clock: nanoseconds.
    pub const TICKS_PER_SECOND: u64 = 1_000_000_000;

    /// A table of leaky buckets (see `docs/semantics.md#leaky-bucket`) with these tiers, in
    /// nanosecond ticks, and room for `capacity` keys active at once (size it at 1.5 times the
    /// keys you expect).
    pub fn buckets(tiers: &[Quota], capacity: usize) -> Result<LocalTable, Error> {
        Self::check(capacity)?;
        let tiers: &'static [Quota] = Box::leak(tiers.to_vec().into_boxed_slice());
        let table = BucketTable::new(leak_slots(capacity), tiers, random_seed())?;
        Ok(LocalTable {
            table: Kind::Buckets(table),
            clock: Clock::new(),
        })
    }

    /// A table of fixed windows (see `docs/semantics.md#fixed-window`) with these tiers, in
    /// nanosecond ticks.
    pub fn windows(tiers: &[WindowQuota], capacity: usize) -> Result<LocalTable, Error> {
        Self::check(capacity)?;
        let tiers: &'static [WindowQuota] = Box::leak(tiers.to_vec().into_boxed_slice());
        let table = WindowTable::new(leak_slots(capacity), tiers, random_seed())?;
        Ok(LocalTable {
            table: Kind::Windows(table),
            clock: Clock::new(),
        })
    }

    /// ShopBase's policy (see `docs/semantics.md#vendor-presets`): a bucket of 30 draining 2
    /// per second per key.
    pub fn shopbase(capacity: usize) -> Result<LocalTable, Error> {
        Self::buckets(&[shopbase::quota(Self::TICKS_PER_SECOND)?], capacity)
    }

    /// TikTok Shop's server policy: a fixed window of 50 per second per key.
    pub fn tiktok_shop(capacity: usize) -> Result<LocalTable, Error> {
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
    /// instead of answering 503.
    #[must_use]
    pub fn fail_open(self, open: bool) -> LocalTable {
        let policy = if open {
            FullPolicy::FailOpen
        } else {
            FullPolicy::FailClosed
        };
        let table = match self.table {
            Kind::Buckets(t) => Kind::Buckets(t.with_policy(policy)),
            Kind::Windows(t) => Kind::Windows(t.with_policy(policy)),
        };
        LocalTable {
            table,
            clock: self.clock,
        }
    }

    /// The table's counters.
    pub fn counters(&self) -> TableCounters {
        let s = match &self.table {
            Kind::Buckets(t) => t.stats(),
            Kind::Windows(t) => t.stats(),
        };
        TableCounters {
            capacity: s.capacity,
            occupied: s.occupied,
            rejected: s.rejected,
        }
    }

    fn run(&self, key: Key, tier: usize, cost: u64, peek: bool) -> Result<Decision, Error> {
        let now = self.clock.now();
        match (&self.table, peek) {
            (Kind::Buckets(t), false) => t.decide(key, tier, now, cost),
            (Kind::Buckets(t), true) => t.peek(key, tier, now, cost),
            (Kind::Windows(t), false) => t.decide(key, tier, now, cost),
            (Kind::Windows(t), true) => t.peek(key, tier, now, cost),
        }
    }
}

impl Backend for LocalTable {
    type Future = Ready<Result<Decision, Error>>;

    fn decide(&self, key: Key, tier: usize, cost: u64) -> Self::Future {
        ready(self.run(key, tier, cost, false))
    }

    fn peek(&self, key: Key, tier: usize, cost: u64) -> Self::Future {
        ready(self.run(key, tier, cost, true))
    }

    fn tier(&self, tier: usize) -> Option<TierInfo> {
        let tps = Self::TICKS_PER_SECOND;
        match &self.table {
            Kind::Buckets(t) => t.tiers().get(tier).map(|q| TierInfo {
                limit: q.burst(),
                window_seconds: header::bucket_window_seconds(q, tps).unwrap_or(0),
            }),
            Kind::Windows(t) => t.tiers().get(tier).map(|q| TierInfo {
                limit: q.limit(),
                window_seconds: header::window_seconds(q, tps).unwrap_or(0),
            }),
        }
    }

    fn ticks_per_second(&self) -> u64 {
        Self::TICKS_PER_SECOND
    }

    fn key_bytes(&self, bytes: &[u8]) -> Key {
        match &self.table {
            Kind::Buckets(t) => t.seed().key_bytes(bytes),
            Kind::Windows(t) => t.seed().key_bytes(bytes),
        }
    }
}
