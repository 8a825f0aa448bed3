//! Keyed table (SPEC §10): one bucket per key in fixed, caller-provided memory; lock-free.
//!
//! A [`Table`] holds a leaky bucket ([`BucketTable`], tiers of [`Quota`]) or a fixed window
//! ([`WindowTable`], tiers of [`WindowQuota`]) for each [`Key`], in a slice of [`Slot`]s the
//! caller provides (a `static` array works). It never allocates and never grows.
//!
//! ```
//! use tollgate::table::{BucketTable, FullPolicy, Slot};
//! use tollgate::key::{Key, Seed};
//! use tollgate::{Outcome, Quota};
//!
//! const SECOND: u64 = 1_000; // a millisecond clock
//! // Two tiers: ShopBase's 30 draining 2/s, and a premium bucket twice as large.
//! static TIERS: [Quota; 2] = [
//!     match Quota::new(30, 2, SECOND) { Ok(q) => q, Err(_) => panic!() },
//!     match Quota::new(60, 2, SECOND) { Ok(q) => q, Err(_) => panic!() },
//! ];
//! static SLOTS: [Slot; 1024] = [const { Slot::new() }; 1024];
//!
//! // The seed must be secret and random in production (see `tollgate::key`).
//! let table = BucketTable::new(&SLOTS, &TIERS, Seed::new(0x5eed, 0xcafe))?
//!     .with_policy(FullPolicy::FailClosed);
//! let shop = Key::pair(7, 42); // (app 7, shop 42)
//! for _ in 0..30 {
//!     assert!(table.decide(shop, 0, 0, 1)?.is_allowed());
//! }
//! assert_eq!(table.decide(shop, 0, 0, 1)?.outcome, Outcome::Limited);
//! // Upgraded to premium: the level of 30 carries over into the larger bucket.
//! let d = table.decide(shop, 1, 0, 1)?;
//! assert!(d.is_allowed());
//! assert_eq!((d.used, d.limit), (31, 60));
//! assert_eq!(table.stats().occupied, 1);
//! # Ok::<(), tollgate::Error>(())
//! ```
//!
//! # Slot layout (32 bytes, 16-byte aligned)
//!
//! | bytes | content |
//! |---|---|
//! | 0..16 | one 128-bit atomic word: the bucket state (`u64`, the same word [`LeakyBucket`] or [`FixedWindow`] keeps) and a control `u64` |
//! | 16..24 | the key's high 64 bits |
//! | 24..32 | the key's low 64 bits |
//!
//! The control word packs a 3-bit tag (empty, busy, inserting, member, killed), the 8-bit index
//! of the tier whose units the state is in, and a 53-bit version that changes whenever the slot may
//! change hands. Every decision is **one 128-bit compare-and-swap** of state and control
//! together: it checks that the slot still belongs to the key (the version), in the tier it
//! read, and writes the new state and tier. A decision on another key, or a reclaim, in between
//! makes the swap fail, and the decision looks its key up again.
//!
//! # Probing, insertion and the probe bound
//!
//! A key's home slot comes from the seeded SipHash of the key ([`crate::key`]); the key lives
//! within the [`PROBE_BOUND`] = 32 slots from there (wrapping; fewer if the table is smaller).
//! A new key claims the first empty slot of that window (empty → busy, which bumps the version),
//! writes its key and a new bucket already holding the request, marks the slot *inserting*, and
//! only then becomes a *member* that decisions use. Two threads inserting the same key at once
//! may claim two slots; before a slot is promoted to member, the whole window is scanned twice
//! (the second time reading each word by read-modify-write, so that the memory model, not only
//! the hardware, orders it with the other threads' marks): any member of the key wins, else the
//! inserting slot nearest the home slot is promoted and the others are *killed* (their owners
//! turn them back to empty and apply their request to the winner). Every thread can finish
//! that promotion itself, so no thread ever waits for another (a busy slot, whose key is not
//! written yet, is simply skipped: its owner checks for duplicates itself). The result: **one
//! bucket per key**, lock-free insertion, lookups that read only the slots up to the key, and
//! decisions on different keys that never wait for each other.
//!
//! A lookup of a key in its home slot reads one slot (32 bytes); a new key reads the whole
//! window, twice. Measured on one core with 1M keys in 1.5M slots: about 0.3 µs per decision
//! on an existing key and 1.1 µs per new key (SipHash and cache misses included).
//!
//! # Reclamation
//!
//! When a new key finds no empty slot in its window, it may take a slot whose bucket is
//! **drained** at its `now` (a leaky bucket at level 0, a fixed window whose window has passed or
//! whose count is 0): drained and new are indistinguishable (SPEC §10), so this changes no
//! decision. The take is a compare-and-swap of the exact state it found drained, with a new
//! version, so a decision on the old key that raced it fails its own swap and starts over (it
//! finds its key gone and inserts it afresh, as a new bucket), and a decision that got in first
//! makes the take fail. A reclaim records its `now` in the table's *watermark*: a key inserted
//! later with an earlier `now` (clocks of different threads) is judged as at the watermark,
//! never more leniently than the true timeline (SPEC §1).
//!
//! # Full table
//!
//! When the window has no empty slot, no drained slot and not the key (confirmed by a scan that
//! reads every word's latest value), the table answers by its [`FullPolicy`] and counts it in
//! [`TableStats::rejected`] (slots held by other threads' insertions in flight count as taken):
//!
//! - [`FullPolicy::FailClosed`] (the default): outcome and verdict [`Outcome::Overloaded`]
//!   (HTTP 503);
//! - [`FullPolicy::FailOpen`]: outcome [`Outcome::Allowed`], verdict `Overloaded`, and
//!   [`Decision::FAIL_OPEN`] in `flags`.
//!
//! Either way `limit` is the tier's limit, `used` 0, `remaining` = `limit`, `retry_after`
//! `None` and `reset_after` 0: the table holds nothing for the key. A cost above the limit is
//! still [`Outcome::Never`], which needs no bucket. The answer changes nothing in the table.
//!
//! # Memory
//!
//! 32 bytes per slot ([`Slot::SIZE`]) plus the [`Table`] itself (under 100 bytes, and it may
//! live anywhere). Bytes per key are 32 / α at load factor α (keys over slots). With linear
//! probing bounded at 32, some keys find no room at high load; measured with 1M keys inserted
//! into an empty table:
//!
//! | slots | α | bytes per key | keys without room |
//! |---|---|---|---|
//! | 2 000 000 | 0.5 | 64 | 2 (2·10⁻⁶) |
//! | 1 500 000 | 0.67 | 48 | 482 (5·10⁻⁴) |
//! | 1 250 000 | 0.8 | 40 | 6 220 (6·10⁻³) |
//!
//! The recommended load is **α ≤ 0.67: 48 bytes per key** (48 MB for 1M keys in 1.5M slots);
//! size for α = 0.5 (64 bytes per key) where a 503 for a few keys in a million is not
//! acceptable. The 32-byte slot alone would reach 32 bytes per key only at α = 1. Drained keys
//! do not count towards α: their slots are taken again when needed, so α is the number of keys
//! active within one drain time (a full bucket's drain time, or one window) over slots.
//!
//! # Tiers
//!
//! A table is built with a short list of quotas, its tiers (at most [`MAX_TIERS`]); each
//! decision names its key's tier by index. The slot records the tier its state is in; a decision
//! naming another tier first converts the state exactly as [`LeakyBucket::set_quota`] and
//! [`FixedWindow::set_quota`] do (the key keeps its history: no free burst), in the same
//! compare-and-swap as the decision.
//!
//! [`LeakyBucket`]: crate::LeakyBucket
//! [`FixedWindow`]: crate::FixedWindow
//! [`LeakyBucket::set_quota`]: crate::LeakyBucket::set_quota
//! [`FixedWindow::set_quota`]: crate::FixedWindow::set_quota

use core::fmt;

use crate::atomic::{const_fn, AtomicU64, Ordering};
use crate::gcra::Mode;
use crate::key::{Key, Seed};
use crate::{fixed_window, gcra, Decision, Error, Outcome, Quota, WindowQuota};

#[cfg(not(loom))]
use portable_atomic::AtomicU128;

/// Under loom there is no 128-bit atomic: a stand-in over one loom `AtomicU64`, so the loom
/// models check the table's algorithm (not portable-atomic's `cmpxchg16b`) with one loom step
/// per word operation. It holds the low 32 bits of the state and of the control word, which is
/// all the small states and versions of the loom models use (checked: it panics otherwise).
#[cfg(loom)]
#[derive(Debug)]
struct AtomicU128(AtomicU64);

#[cfg(loom)]
impl AtomicU128 {
    #[allow(clippy::cast_possible_truncation)] // checked by the assertion
    fn narrow(v: u128) -> u64 {
        let (state, ctl) = (v as u64, (v >> 64) as u64);
        assert!(
            state >> 32 == 0 && ctl >> 32 == 0,
            "loom stand-in: word too wide"
        );
        (ctl << 32) | state
    }

    fn widen(v: u64) -> u128 {
        (u128::from(v >> 32) << 64) | u128::from(v & 0xffff_ffff)
    }

    fn new(v: u128) -> AtomicU128 {
        AtomicU128(AtomicU64::new(Self::narrow(v)))
    }

    fn load(&self, order: Ordering) -> u128 {
        Self::widen(self.0.load(order))
    }

    fn fetch_or(&self, v: u128, order: Ordering) -> u128 {
        Self::widen(self.0.fetch_or(Self::narrow(v), order))
    }

    fn compare_exchange(
        &self,
        current: u128,
        new: u128,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u128, u128> {
        self.0
            .compare_exchange(Self::narrow(current), Self::narrow(new), success, failure)
            .map(Self::widen)
            .map_err(Self::widen)
    }
}

/// How many slots from its home slot a key may live: lookups read at most this many slots, and
/// a key that finds no room within them gets the [`FullPolicy`] answer.
pub const PROBE_BOUND: usize = 32;

/// The most tiers a table can have (the tier index is 8 bits of the slot's control word).
pub const MAX_TIERS: usize = 256;

// The control word: tag in bits 0..3, tier in bits 3..11, version in bits 11..64.
const TAG_MASK: u64 = 0b111;
const EMPTY: u64 = 0;
const BUSY: u64 = 1;
const INSERTING: u64 = 2;
const MEMBER: u64 = 3;
/// An inserting copy that lost to another; its owner turns it back to empty.
const KILLED: u64 = 4;
const TIER_SHIFT: u32 = 3;
const TIER_MASK: u64 = 0xff << TIER_SHIFT;
const VERSION_SHIFT: u32 = 11;

/// A slot's 128-bit word: the bucket state and the control word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Word {
    state: u64,
    ctl: u64,
}

impl Word {
    #[allow(clippy::cast_possible_truncation)] // the low half, on purpose
    const fn from_bits(bits: u128) -> Word {
        Word {
            state: bits as u64,
            ctl: (bits >> 64) as u64,
        }
    }

    const fn bits(self) -> u128 {
        ((self.ctl as u128) << 64) | self.state as u128
    }

    const fn tag(self) -> u64 {
        self.ctl & TAG_MASK
    }

    const fn tier(self) -> usize {
        ((self.ctl & TIER_MASK) >> TIER_SHIFT) as usize
    }

    const fn version(self) -> u64 {
        self.ctl >> VERSION_SHIFT
    }

    const fn with_tag(self, tag: u64) -> Word {
        Word {
            state: self.state,
            ctl: (self.ctl & !TAG_MASK) | tag,
        }
    }

    /// A new holder: `tag`, `tier`, `state`, and the next version.
    const fn next(self, tag: u64, tier: usize, state: u64) -> Word {
        let version = self.version().wrapping_add(1) << VERSION_SHIFT;
        Word {
            state,
            ctl: version | ((tier as u64) << TIER_SHIFT) | tag,
        }
    }

    /// The same holder and version, with `state` in `tier`.
    const fn update(self, tier: usize, state: u64) -> Word {
        Word {
            state,
            ctl: (self.ctl & !TIER_MASK) | ((tier as u64) << TIER_SHIFT),
        }
    }

    /// Whether the slot holds a key that can be read (written and published).
    const fn has_key(self) -> bool {
        matches!(self.tag(), INSERTING | MEMBER)
    }
}

/// One slot of a [`Table`]: 32 bytes, 16-byte aligned (see the [module docs](self) for the
/// layout). Make an array of `Slot::new()` and hand it to [`Table::new`].
#[repr(C)]
pub struct Slot {
    word: AtomicU128,
    key_hi: AtomicU64,
    key_lo: AtomicU64,
}

impl Slot {
    /// The size of a slot in bytes: 32 (on targets with 128-bit atomics or portable-atomic's
    /// fallback alike).
    pub const SIZE: usize = core::mem::size_of::<Slot>();

    /// The alignment of a slot in bytes: 16.
    pub const ALIGN: usize = core::mem::align_of::<Slot>();

    const_fn! {
        /// An empty slot.
        pub fn new() -> Slot {
            Slot { word: AtomicU128::new(0), key_hi: AtomicU64::new(0), key_lo: AtomicU64::new(0) }
        }
    }

    fn load(&self) -> Word {
        Word::from_bits(self.word.load(Ordering::SeqCst))
    }

    /// The word, read by a read-modify-write that changes nothing: it reads the latest value
    /// in the word's modification order and orders itself with every other change of the
    /// word. The settling scan reads this way (see `Table::find`).
    fn load_latest(&self) -> Word {
        Word::from_bits(self.word.fetch_or(0, Ordering::SeqCst))
    }

    fn cas(&self, current: Word, new: Word) -> Result<Word, Word> {
        self.word
            .compare_exchange(
                current.bits(),
                new.bits(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .map(Word::from_bits)
            .map_err(Word::from_bits)
    }

    /// The word, and the key if the word says one is published. The key is read between two
    /// loads of the word and kept only if the version did not change (the key is written only
    /// while the slot is busy, which takes a new version).
    fn read(&self, latest: bool) -> (Word, Option<Key>) {
        loop {
            let first = if latest {
                self.load_latest()
            } else {
                self.load()
            };
            if !first.has_key() {
                return (first, None);
            }
            let hi = self.key_hi.load(Ordering::Acquire);
            let lo = self.key_lo.load(Ordering::Acquire);
            let second = self.load();
            if second.version() == first.version() {
                let key = Key::new((u128::from(hi) << 64) | u128::from(lo));
                return (second, second.has_key().then_some(key));
            }
        }
    }

    /// Ends a thread's own inserting copy (word `w`) after a lookup that did not settle on it:
    /// `true` if it had been promoted (the request in it took effect), `false` if it lost, in
    /// which case it is empty again. Only the owner empties a killed copy, so until then its
    /// version cannot change unless it was promoted and then reclaimed.
    fn give_back(&self, w: Word) -> bool {
        match self.cas(w, w.with_tag(EMPTY)) {
            Ok(_) => false,
            Err(actual) if actual.version() != w.version() => true,
            Err(actual) if actual.tag() == KILLED => {
                let _ = self.cas(actual, actual.with_tag(EMPTY));
                false
            }
            Err(actual) => actual.tag() == MEMBER,
        }
    }
}

impl Default for Slot {
    fn default() -> Slot {
        Slot::new()
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, key) = self.read(false);
        f.debug_struct("Slot")
            .field("tag", &word.tag())
            .field("tier", &word.tier())
            .field("version", &word.version())
            .field("key", &key)
            .finish_non_exhaustive()
    }
}

#[cfg(not(loom))]
const _: () = {
    assert!(core::mem::size_of::<Slot>() == 32);
    assert!(core::mem::align_of::<Slot>() == 16);
};

mod sealed {
    use crate::{Decision, Error};

    /// The bucket arithmetic a table needs from a quota kind.
    pub trait Sealed: Copy {
        fn step(
            &self,
            state: u64,
            now: u64,
            cost: u64,
            peek: bool,
        ) -> Result<(Option<u64>, Decision), Error>;
        fn convert(&self, state: u64, new: &Self, now: u64) -> Result<u64, Error>;
        fn is_drained(&self, state: u64, now: u64) -> bool;
        fn limit(&self) -> u64;
    }
}

/// The quota kinds a table can hold: [`Quota`] (leaky buckets) and [`WindowQuota`] (fixed
/// windows). Sealed.
pub trait TableQuota: sealed::Sealed + fmt::Debug {}

const fn mode(peek: bool) -> Mode {
    if peek {
        Mode::Peek
    } else {
        Mode::Decide
    }
}

impl sealed::Sealed for Quota {
    fn step(
        &self,
        state: u64,
        now: u64,
        cost: u64,
        peek: bool,
    ) -> Result<(Option<u64>, Decision), Error> {
        gcra::step(state, self, now, cost, mode(peek))
    }

    fn convert(&self, state: u64, new: &Quota, now: u64) -> Result<u64, Error> {
        gcra::convert(state, self, new, now)
    }

    fn is_drained(&self, state: u64, now: u64) -> bool {
        gcra::is_drained(state, self, now)
    }

    fn limit(&self) -> u64 {
        self.burst()
    }
}

impl TableQuota for Quota {}

impl sealed::Sealed for WindowQuota {
    fn step(
        &self,
        state: u64,
        now: u64,
        cost: u64,
        peek: bool,
    ) -> Result<(Option<u64>, Decision), Error> {
        fixed_window::step(state, self, now, cost, mode(peek))
    }

    fn convert(&self, state: u64, new: &WindowQuota, now: u64) -> Result<u64, Error> {
        fixed_window::convert(state, self, new, now)
    }

    fn is_drained(&self, state: u64, now: u64) -> bool {
        fixed_window::is_drained(state, self, now)
    }

    fn limit(&self) -> u64 {
        WindowQuota::limit(self)
    }
}

impl TableQuota for WindowQuota {}

/// What a table answers when a key finds no room (SPEC §10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FullPolicy {
    /// Refuse: outcome and verdict [`Outcome::Overloaded`] (HTTP 503). The default.
    #[default]
    FailClosed = 0,
    /// Let the request through: outcome [`Outcome::Allowed`], verdict `Overloaded`, flag
    /// [`Decision::FAIL_OPEN`].
    FailOpen = 1,
}

/// A snapshot of a table's counters. Each counter is exact; they are read one after the other,
/// so under concurrent use they may come from slightly different moments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableStats {
    /// Slots in the table.
    pub capacity: usize,
    /// Slots holding a key now.
    pub occupied: u64,
    /// Slots taken from a drained key for a new one, since initialisation.
    pub reclaimed: u64,
    /// Decisions answered by the [`FullPolicy`] for lack of room, since initialisation.
    pub rejected: u64,
}

/// A lock-free table of buckets keyed by [`Key`], in caller-provided slots, with a fixed list of
/// tiers. See the [module docs](self).
pub struct Table<'a, Q: TableQuota> {
    slots: &'a [Slot],
    tiers: &'a [Q],
    seed: Seed,
    policy: FullPolicy,
    watermark: AtomicU64,
    occupied: AtomicU64,
    reclaimed: AtomicU64,
    rejected: AtomicU64,
}

/// A table of leaky buckets (GCRA, SPEC §3), with tiers of [`Quota`].
pub type BucketTable<'a> = Table<'a, Quota>;

/// A table of fixed windows (SPEC §4), with tiers of [`WindowQuota`].
pub type WindowTable<'a> = Table<'a, WindowQuota>;

impl<Q: TableQuota> fmt::Debug for Table<'_, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("tiers", &self.tiers)
            .field("policy", &self.policy)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Where a key was found.
enum Found {
    /// A member slot and the word read there.
    Member(usize, Word),
    /// Not in the table; the first empty slot and the first slot drained at `now`, if any.
    Absent {
        empty: Option<(usize, Word)>,
        drained: Option<(usize, Word)>,
    },
}

/// The key's high and low 64 bits.
#[allow(clippy::cast_possible_truncation)] // each half, on purpose
const fn key_halves(key: Key) -> [u64; 2] {
    [(key.get() >> 64) as u64, key.get() as u64]
}

/// What an insertion attempt did.
enum Claim {
    /// Marked this slot inserting, with this word, its bucket holding this decision.
    Claimed(usize, Word, Decision),
    /// Another thread took the slot first.
    Lost,
    /// No empty or drained slot in the window.
    NoRoom,
    /// The request is invalid.
    Failed(Error),
}

impl<'a, Q: TableQuota> Table<'a, Q> {
    const_fn! {
        /// A table over `slots` with these `tiers` and hash `seed`, fail-closed when full.
        /// Cheap: it reads nothing and writes nothing in `slots`, which must be empty
        /// ([`Slot::new`]; all-zero bytes are an empty slot) — a table's slots are its own for
        /// as long as it lives.
        ///
        /// Errors: [`Error::CapacityExceeded`] for no slots; [`Error::InvalidArgument`] for no
        /// tiers or more than [`MAX_TIERS`].
        pub fn new(slots: &'a [Slot], tiers: &'a [Q], seed: Seed) -> Result<Table<'a, Q>, Error> {
            if slots.is_empty() {
                return Err(Error::CapacityExceeded);
            }
            if tiers.is_empty() || tiers.len() > MAX_TIERS {
                return Err(Error::InvalidArgument);
            }
            Ok(Table {
                slots,
                tiers,
                seed,
                policy: FullPolicy::FailClosed,
                watermark: AtomicU64::new(0),
                occupied: AtomicU64::new(0),
                reclaimed: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            })
        }
    }

    /// The same table with this full-table policy.
    #[must_use]
    pub const fn with_policy(mut self, policy: FullPolicy) -> Table<'a, Q> {
        self.policy = policy;
        self
    }

    /// The number of slots.
    pub const fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The tiers, indexed by the `tier` argument of [`Table::decide`].
    pub const fn tiers(&self) -> &'a [Q] {
        self.tiers
    }

    /// The full-table policy.
    pub const fn policy(&self) -> FullPolicy {
        self.policy
    }

    /// The hash seed, for deriving hashed keys ([`Seed::key_bytes`], [`Seed::key_triple`]).
    pub const fn seed(&self) -> &Seed {
        &self.seed
    }

    /// The counters.
    pub fn stats(&self) -> TableStats {
        TableStats {
            capacity: self.slots.len(),
            occupied: self.occupied.load(Ordering::Relaxed),
            reclaimed: self.reclaimed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// Decides on a request of `cost` at `now` for `key`, whose quota is `tiers()[tier]`:
    /// exactly what a [`LeakyBucket`](crate::LeakyBucket) or
    /// [`FixedWindow`](crate::FixedWindow) of that quota holding the key's history answers,
    /// unless the table has no room for a new key (see [`FullPolicy`]). Shadow mode is the
    /// caller's: [`Decision::shadow`].
    ///
    /// Errors: [`Error::InvalidArgument`] for a tier out of range, [`Error::ZeroCost`],
    /// [`Error::ClockOutOfRange`] (for the named tier's span or, when the key changes tier, the
    /// old tier's). An error changes nothing.
    pub fn decide(&self, key: Key, tier: usize, now: u64, cost: u64) -> Result<Decision, Error> {
        self.run(key, tier, now, cost, false)
    }

    /// Would a request of `cost` be admitted now? Spends nothing; the numbers describe the
    /// key's current level (see [`LeakyBucket::peek`](crate::LeakyBucket::peek)). A peek
    /// records its time and tier in the key's bucket as the core limiters do, so it inserts a
    /// new key, and gets the [`FullPolicy`] answer when there is no room.
    pub fn peek(&self, key: Key, tier: usize, now: u64, cost: u64) -> Result<Decision, Error> {
        self.run(key, tier, now, cost, true)
    }

    /// How many slots a lookup of `key` reads to find it (1 = its home slot), or `None` if the
    /// key is not in the table. For tests and monitoring of probe lengths.
    pub fn probe_len(&self, key: Key) -> Option<usize> {
        let home = self.seed.home(key, self.slots.len());
        (0..self.window()).find_map(|pos| {
            let (word, k) = self.slot(home, pos).read(false);
            (word.tag() == MEMBER && k == Some(key)).then_some(pos + 1)
        })
    }

    fn window(&self) -> usize {
        self.slots.len().min(PROBE_BOUND)
    }

    fn slot(&self, home: usize, pos: usize) -> &Slot {
        let n = self.slots.len();
        // home < n and pos < n, so this neither overflows nor leaves the slice.
        let i = if pos >= n - home {
            pos - (n - home)
        } else {
            home + pos
        };
        &self.slots[i]
    }

    fn run(
        &self,
        key: Key,
        tier: usize,
        now: u64,
        cost: u64,
        peek: bool,
    ) -> Result<Decision, Error> {
        let quota = self.tiers.get(tier).ok_or(Error::InvalidArgument)?;
        // What a new bucket answers: checks the arguments before anything is touched.
        let (_, fresh) = quota.step(0, now, cost, peek)?;
        let home = self.seed.home(key, self.slots.len());
        // The slot this call marked inserting, if it is still waiting to be settled, and the
        // decision already applied to the new bucket there.
        let mut mine: Option<(usize, Word, Decision)> = None;
        // Whether the lookup reads the latest words (after plain reads found no room or a slot
        // changed under us), what the last scan read (`find`), and what the last "no room" scan
        // read.
        let mut confirm = false;
        let mut seen = [0u128; PROBE_BOUND];
        let mut last_full: Option<[u128; PROBE_BOUND]> = None;
        loop {
            match self.find(key, home, now, confirm, &mut seen) {
                Found::Member(pos, word) => {
                    if let Some((p, w, decision)) = mine.take() {
                        let ours = p == pos && w.version() == word.version();
                        if ours || self.slot(home, p).give_back(w) {
                            // Our copy became the key's bucket, with our request in it.
                            return Ok(decision);
                        }
                    }
                    let slot = self.slot(home, pos);
                    if let Some(result) = self.apply(slot, word, tier, quota, now, cost, peek) {
                        return result;
                    }
                }
                Found::Absent {
                    empty: None,
                    drained: None,
                } if !confirm || last_full != Some(seen) => {
                    // No room, by plain reads: look again reading the latest words; then until
                    // two scans in a row read the same slots, so that "no room" was true at one
                    // moment (between them), not pieced together from different moments.
                    // Every difference is another thread's progress (a claim, a promotion, a
                    // kill or a bucket draining).
                    last_full = confirm.then_some(seen);
                    confirm = true;
                }
                Found::Absent { empty, drained } => {
                    if let Some((p, w, decision)) = mine.take() {
                        // Our copy is no longer inserting: killed, or promoted and since
                        // reclaimed.
                        if self.slot(home, p).give_back(w) {
                            return Ok(decision);
                        }
                    }
                    match self.insert(key, home, tier, now, cost, peek, empty, drained) {
                        Claim::Claimed(pos, word, decision) => mine = Some((pos, word, decision)),
                        // The slot changed since it was read: read the latest words from now on.
                        Claim::Lost => confirm = true,
                        Claim::NoRoom => return Ok(self.full(quota, fresh)),
                        Claim::Failed(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// The answer when there is no room for the key.
    fn full(&self, quota: &Q, fresh: Decision) -> Decision {
        if fresh.verdict == Outcome::Never {
            return fresh;
        }
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let mut d = Decision::plain(Outcome::Overloaded, quota.limit(), 0, None, 0);
        if self.policy == FullPolicy::FailOpen {
            d.outcome = Outcome::Allowed;
            d.flags |= Decision::FAIL_OPEN;
        }
        d
    }

    /// The decision's compare-and-swap loop on a member slot. `None`: the slot no longer holds
    /// the key (reclaimed); look it up again.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        slot: &Slot,
        mut word: Word,
        tier: usize,
        quota: &Q,
        now: u64,
        cost: u64,
        peek: bool,
    ) -> Option<Result<Decision, Error>> {
        let version = word.version();
        loop {
            if word.tag() != MEMBER || word.version() != version {
                return None;
            }
            let state = if word.tier() == tier {
                word.state
            } else {
                let Some(old) = self.tiers.get(word.tier()) else {
                    // Only a slot written by another table could hold this; see `Table::new`.
                    return Some(Err(Error::InvalidArgument));
                };
                match old.convert(word.state, quota, now) {
                    Ok(s) => s,
                    Err(e) => return Some(Err(e)),
                }
            };
            let (next, decision) = match quota.step(state, now, cost, peek) {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let new = word.update(tier, next.unwrap_or(state));
            if new == word {
                return Some(Ok(decision));
            }
            match slot.cas(word, new) {
                Ok(_) => return Some(Ok(decision)),
                Err(actual) => word = actual,
            }
        }
    }

    /// Looks `key` up in its window. Inserting copies of the key (other threads' insertions in
    /// flight) are settled here: the one nearest home is promoted to member once two scans in
    /// a row agree on it, the others are killed.
    ///
    /// Why one member: say copies q and s are promoted by threads H and P, q nearer home. H's
    /// second scan came after its first saw q inserting. If that scan saw s inserting, H emptied
    /// s (or failed to, because P promoted s first, and then H did not promote q): only one
    /// of the two swaps on s wins. If it saw s not yet inserting, s became inserting after H's
    /// read, and P's own second scan, later still, sees q inserting and does not promote s. The
    /// second scan reads by read-modify-write, and every change of a word is a swap, so "after"
    /// holds in the memory model, not only with sequentially consistent loads: each
    /// read-modify-write of a word is ordered with every other one of that word.
    ///
    /// With `confirm`, every scan reads by read-modify-write (the latest value of each word),
    /// so "no room" is never concluded from stale reads.
    /// With `confirm`, what the last scan read is left in `seen` (up to the window's length):
    /// each slot's control word and whether it is a drained member.
    fn find(
        &self,
        key: Key,
        home: usize,
        now: u64,
        confirm: bool,
        seen: &mut [u128; PROBE_BOUND],
    ) -> Found {
        let mut candidate: Option<(usize, Word)> = None;
        loop {
            let mut member = None;
            let mut first_inserting: Option<(usize, Word)> = None;
            let mut empty = None;
            let mut drained = None;
            let mut restart = false;
            // A scan that may promote a copy reads every word by read-modify-write: see below.
            let latest = confirm || candidate.is_some();
            for (pos, seen) in seen.iter_mut().enumerate().take(self.window()) {
                let slot = self.slot(home, pos);
                let (word, k) = slot.read(latest);
                if confirm {
                    // What matters for room: the control word, and whether a member is
                    // drained (not its state, which other keys' decisions change all the time).
                    let drained_now = word.tag() == MEMBER && self.is_drained(word, now);
                    *seen = (u128::from(word.ctl) << 1) | u128::from(drained_now);
                }
                match word.tag() {
                    EMPTY if empty.is_none() => empty = Some((pos, word)),
                    MEMBER if k == Some(key) => {
                        member = Some((pos, word));
                        break;
                    }
                    MEMBER if drained.is_none() && self.is_drained(word, now) => {
                        drained = Some((pos, word));
                    }
                    INSERTING if k == Some(key) => {
                        if first_inserting.is_none() {
                            first_inserting = Some((pos, word));
                        } else if candidate == first_inserting {
                            // A later copy, while settling on the first: kill it. If it was
                            // promoted meanwhile, it is the member: scan again.
                            if let Err(actual) = slot.cas(word, word.with_tag(KILLED)) {
                                if actual.tag() == MEMBER && actual.version() == word.version() {
                                    restart = true;
                                    break;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            if restart {
                candidate = None;
                continue;
            }
            if let Some((pos, word)) = member {
                return Found::Member(pos, word);
            }
            let Some(first) = first_inserting else {
                return Found::Absent { empty, drained };
            };
            if candidate != Some(first) {
                // Not yet seen by a whole earlier scan: scan again before promoting it.
                candidate = Some(first);
                continue;
            }
            let (pos, word) = first;
            let promoted = word.with_tag(MEMBER);
            // Counted before the swap, so a reclaim of this member (which subtracts one after
            // reading the member word) never finds the counter below zero.
            self.occupied.fetch_add(1, Ordering::Relaxed);
            if self.slot(home, pos).cas(word, promoted).is_ok() {
                return Found::Member(pos, promoted);
            }
            self.occupied.fetch_sub(1, Ordering::Relaxed);
            candidate = None;
        }
    }

    /// Claims the first empty slot, else the first drained one, for `key`, writes the key and
    /// marks it inserting (the caller's next lookup settles it). The new bucket already holds
    /// this call's request: if the copy is promoted, the request took effect there and then
    /// (so a new key's bucket is not drained, hence not reclaimable, before its first request
    /// counts); if another copy wins, this one never served a decision and the request is
    /// applied to the winner.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &self,
        key: Key,
        home: usize,
        tier: usize,
        now: u64,
        cost: u64,
        peek: bool,
        empty: Option<(usize, Word)>,
        drained: Option<(usize, Word)>,
    ) -> Claim {
        let (pos, word, reclaim) = match (empty, drained) {
            (Some((pos, word)), _) => (pos, word, false),
            (None, Some((pos, word))) => (pos, word, true),
            (None, None) => return Claim::NoRoom,
        };
        let quota = &self.tiers[tier];
        if reclaim {
            self.watermark.fetch_max(now, Ordering::SeqCst);
        }
        // A new bucket is empty at the latest time a reclaim saw (or now, if later).
        let at = now.max(self.watermark.load(Ordering::SeqCst));
        let fresh = match quota.step(0, at, 1, true) {
            Ok((Some(s), _)) => s,
            _ => 0,
        };
        let (next, decision) = match quota.step(fresh, now, cost, peek) {
            Ok(r) => r,
            // The arguments were checked on a new bucket already; kept for completeness.
            Err(e) => return Claim::Failed(e),
        };
        let state = next.unwrap_or(fresh);
        let slot = self.slot(home, pos);
        let busy = word.next(BUSY, tier, state);
        if slot.cas(word, busy).is_err() {
            return Claim::Lost; // Someone else took it: look again.
        }
        if reclaim {
            self.occupied.fetch_sub(1, Ordering::Relaxed);
            self.reclaimed.fetch_add(1, Ordering::Relaxed);
        }
        let [hi, lo] = key_halves(key);
        slot.key_hi.store(hi, Ordering::Release);
        slot.key_lo.store(lo, Ordering::Release);
        // Only the owner changes a busy slot, so this swap cannot fail; it is a swap (not a
        // store) so that it orders itself with the settling scans' reads (see `find`).
        let inserting = busy.with_tag(INSERTING);
        if slot.cas(busy, inserting).is_err() {
            return Claim::Lost;
        }
        Claim::Claimed(pos, inserting, decision)
    }

    fn is_drained(&self, word: Word, now: u64) -> bool {
        self.tiers
            .get(word.tier())
            .is_some_and(|q| q.is_drained(word.state, now))
    }
}
