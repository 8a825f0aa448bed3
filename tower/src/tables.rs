//! What the key-table backends share: a bucket or window table handle, whichever memory it
//! lives in ([`LocalTable`](crate::LocalTable): this process's heap; `RegionTable`: a
//! shared-memory region), and the backend's answers computed from it. The backends differ only
//! in where the table's memory is and which clock they read.

use tollgate::key::{Key, Seed};
use tollgate::table::{BucketTable, WindowTable};
use tollgate::{header, Decision, Error};

use crate::backend::TierInfo;
use crate::local::TableCounters;

/// A key table's handle: leaky buckets or fixed windows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Tables<'a> {
    Buckets(BucketTable<'a>),
    Windows(WindowTable<'a>),
}

impl Tables<'_> {
    /// Decides (or, with `peek`, only looks) on `cost` for `key` on `tier` at `now`.
    pub(crate) fn run(
        self,
        key: Key,
        tier: usize,
        now: u64,
        cost: u64,
        peek: bool,
    ) -> Result<Decision, Error> {
        match (self, peek) {
            (Tables::Buckets(t), false) => t.decide(key, tier, now, cost),
            (Tables::Buckets(t), true) => t.peek(key, tier, now, cost),
            (Tables::Windows(t), false) => t.decide(key, tier, now, cost),
            (Tables::Windows(t), true) => t.peek(key, tier, now, cost),
        }
    }

    /// A tier's numbers for `RateLimit-Policy`, on a clock of `tps` ticks per second.
    pub(crate) fn tier_info(self, tier: usize, tps: u64) -> Option<TierInfo> {
        match self {
            Tables::Buckets(t) => t.tier(tier).map(|q| TierInfo {
                limit: q.burst(),
                window_seconds: header::bucket_window_seconds(&q, tps).unwrap_or(0),
            }),
            Tables::Windows(t) => t.tier(tier).map(|q| TierInfo {
                limit: q.limit(),
                window_seconds: header::window_seconds(&q, tps).unwrap_or(0),
            }),
        }
    }

    /// The table's hash seed.
    pub(crate) fn seed(self) -> Seed {
        match self {
            Tables::Buckets(t) => t.seed(),
            Tables::Windows(t) => t.seed(),
        }
    }

    /// The table's counters.
    pub(crate) fn counters(self) -> TableCounters {
        let s = match self {
            Tables::Buckets(t) => t.stats(),
            Tables::Windows(t) => t.stats(),
        };
        TableCounters {
            capacity: s.capacity,
            occupied: s.occupied,
            rejected: s.rejected,
        }
    }
}
