//! Keyed table (docs/semantics.md#key-tables): one bucket per key in one block of caller-provided memory;
//! lock-free, position-independent.
//!
//! A [`Table`] holds a leaky bucket ([`BucketTable`], tiers of [`Quota`]) or a fixed window
//! ([`WindowTable`], tiers of [`WindowQuota`]) for each [`Key`]. Its whole state — header,
//! tiers, slots, counters — lives in one slice of 64-bit atomic words the caller provides
//! ([`words`] of them; a [`TableMemory`] `static`, a `Vec`, or shared memory mapped by several
//! processes). It never allocates, never grows, and holds no pointers: only offsets.
//!
//! ```
//! use tollgate::table::{self, BucketTable, FullPolicy, TableMemory};
//! use tollgate::key::{Key, Seed};
//! use tollgate::{Outcome, Quota};
//!
//! const SECOND: u64 = 1_000; // a millisecond clock
//! static MEMORY: TableMemory<{ table::words(1000, 2) }> = TableMemory::new();
//! // Two tiers: ShopBase's 30 draining 2/s, and a premium bucket twice as large.
//! let tiers = [Quota::new(30, 2, SECOND)?, Quota::new(60, 2, SECOND)?];
//! // The seed must be secret and random in production: `Seed::random()` (feature `std`).
//! let seed = Seed::new(0x5eed, 0xcafe);
//! let table = BucketTable::init(MEMORY.words(), &tiers, seed, FullPolicy::FailClosed)?;
//! let shop = Key::pair(7, 42); // (app 7, shop 42)
//! for _ in 0..30 {
//!     assert!(table.decide(shop, 0, 0, 1)?.is_allowed());
//! }
//! assert_eq!(table.decide(shop, 0, 0, 1)?.outcome, Outcome::Limited);
//! // Upgraded to premium: the level of 30 carries over into the larger bucket.
//! let d = table.decide(shop, 1, 0, 1)?;
//! assert!(d.is_allowed());
//! assert_eq!((d.used, d.limit), (31, 60));
//! // Another handle on the same memory (another thread, or another process that maps it).
//! let again = BucketTable::attach(MEMORY.words()).expect("initialised above");
//! assert_eq!(again.peek(shop, 1, 0, 1)?.used, 31);
//! assert_eq!(again.stats().occupied, 1);
//! # Ok::<(), tollgate::Error>(())
//! ```
//!
//! # Memory layout
//!
//! All offsets are in 64-bit words from the start of the block; nothing depends on the block's
//! address.
//!
//! | words | content |
//! |---|---|
//! | 0 | [`MAGIC`] (written last by [`Table::init`]) |
//! | 1 | [`LAYOUT_VERSION`] |
//! | 2 | the table's size in words |
//! | 3 | kind: 1 buckets, 2 windows |
//! | 4 | capacity (slots, a multiple of 5) |
//! | 5 | tier count |
//! | 6 | full-table policy |
//! | 7, 8 | the seed |
//! | 9 | the epoch |
//! | 10, 11 | the home-hash secrets, derived from the seed |
//! | 12 | checksum of words 1..12 and the tiers |
//! | 13 | the pid namespace of claimants' process ids (0: none; see [`Table::claim_namespace`]) |
//! | 14..16 | zero |
//! | 16..24 | counters: watermark, claim versions, occupied, reclaimed, rejected (own cache line) |
//! | 24 .. 24 + 8·T | the T tiers, 8 words each (a [`Quota`]'s fields, or a [`WindowQuota`]'s) |
//! | then, from a multiple of 16 | groups of 16 words (128 bytes), 5 slots each |
//!
//! A **group** is two cache lines (aligned to them when the block is aligned to [`ALIGN`]):
//!
//! | word | 0..5 | 5, 6 | 7 | 8..16 |
//! |---|---|---|---|---|
//! | content | the state words of slots 0..5 | key of slot 4 | zero | keys of slots 0..4 (two words each) |
//!
//! 24 bytes per slot (a 16-byte exact key and an 8-byte state word) plus 1.6 bytes of group
//! padding: **25.6 bytes per slot**. A key in slot 4 is read from one cache line; in slots 0..4
//! from the group's two adjacent lines (one 128-byte block, which x86's adjacent-line
//! prefetcher fetches together).
//!
//! # Copies and other addresses
//!
//! Because the block holds no pointers, a copy (`memcpy`, `fork`, a file written and read back)
//! of a table at rest is an **independent table** that works at its new address, with the
//! state and counters it had; the same memory mapped at two addresses by two processes is one
//! table. A copy taken while other threads decide in the original may catch a slot mid-insert
//! (busy); call [`Table::recover`] on the copy before using it (no one else uses the copy yet).
//!
//! # Slots: state word and protocol
//!
//! Each slot's **state word** is either a *member* word (bit 63 set: the key's tier index in
//! the bits below it, the bucket state in the low [`Table::state_bits`] bits) or a *control*
//! word (bit 63 clear: a tag, the inserting tier, and a 52-bit claim version taken from the
//! table's claim counter, so every claim has its own version). The key's two words are written
//! only while its owner holds the slot busy.
//!
//! | state | meaning | transitions (every one a 64-bit compare-and-swap of the state word) | who |
//! |---|---|---|---|
//! | empty | no key (all-zero memory is empty) | → busy(v): claim with a new version v | an inserter |
//! | busy(v) | claimed; its owner writes the key words | → inserting(v) | the owner only |
//! | inserting(v) | key written, waiting | → member (fresh bucket) when it is the copy nearest home; → killed(v) when a nearer copy of the key exists | anyone looking the key up (or [`Table::recover`]) |
//! | killed(v) | a duplicate that lost | → empty | anyone scanning the slot |
//! | member(tier, state) | the key's bucket | → member(tier′, state′) by a decision; → busy(v) (reclaim) when drained strictly before the reclaimer's `now` | deciders; an inserter that needs room |
//!
//! **The hit path.** Hash the key ([`hash`](self) — two multiplications), read the few words
//! of its tier a decision needs and judge the request against them (once, before the lookup),
//! compare the low halves of its home group's five keys without a branch per slot into one
//! mask (which slot holds a key is random: a branch per slot is mispredicted on most lookups);
//! for the matching slot, load its state word, then confirm, reading its key's halves after
//! it, that it is a member holding the key (the next group's while a group is full and the key
//! was not in it), then
//! one compare-and-swap of the member word (allowed, or a peek that records a later time) or no
//! store at all (denied: the word is read again to check the slot did not change hands while
//! the key was read). No empty-bucket step, no array in memory, no 128-bit atomic anywhere.
//! Everything else — the rest of the probe window, insertion, reclaim, settling, a tier change,
//! the full answer — is in `#[cold]` functions.
//!
//! **Why a stale compare-and-swap cannot land on another key (ABA).** A decision reads the
//! member word w of key A, and later swaps w for w′. If meanwhile A's slot was reclaimed and
//! taken by key B, the swap must fail: B's word must never equal w. It cannot, because each
//! member word has a *moment* M — for a bucket, the time it empties (state / units per tick of
//! the tier in the word); for a window, the end of its stored window — and along the life of a
//! slot, M never decreases while one key holds it and strictly increases when it changes hands:
//! - a decision raises M or keeps it (an admitted request adds to the backlog; a peek or a
//!   denial records a later time only when it is later);
//! - a tier change converts the state ([`LeakyBucket::set_quota`] / [`FixedWindow::set_quota`]
//!   rules): for a bucket the converted backlog is at least the backlog *by time*, so it empties
//!   no earlier; for a window whose stored window is over, M ≤ `now` and the state starts in the
//!   new tier's current window, which ends after `now`; for any other window state (a count of
//!   zero in `now`'s window included) the count goes into the new tier's window holding the old
//!   window's last tick, M − 1 (or `now`, if later), which therefore ends at M or later;
//! - a reclaim at the reclaimer's `now` = r takes only a slot with M < r (a bucket empty before
//!   r; a window whose window ended by r), raises the table's *watermark* to r first, and the
//!   new key's bucket starts fresh at the watermark (≥ r), so its M ≥ r.
//!
//! Since M is a function of the word (the tier index is in the word, so the units are known),
//! every word B ever holds has M ≥ r > M(w), and `w` never comes back. This holds for bucket and
//! window tables alike, across tiers with different units or different window lengths and
//! offsets, and needs no generation counter; the loom model
//! `a_stale_decision_never_lands_on_the_next_key` checks it with two tiers of different units,
//! and the proptest `a_quota_change_never_moves_the_windows_end_earlier_and_equals_the_model`
//! (core/tests/proptest_fixed_window.rs) that a window's conversion never lowers M.
//!
//! **Settling duplicates.** Two threads inserting the same key at once may claim two slots.
//! Before an inserting copy is promoted, the whole window is scanned twice (the second time
//! reading each word by read-modify-write, so the memory model orders it with other threads'
//! changes): a member of the key wins; otherwise the inserting copy nearest the home slot is
//! promoted and the others are killed. Result: one bucket per key.
//!
//! **Never wedged.** A participant that stops forever (a thread, or a process killed):
//! - before its claim, or after marking its copy inserting: nothing is held that others cannot
//!   finish — an inserting copy is promoted or killed by the next lookup of its key, a killed
//!   copy emptied by the next scan; its request was never counted, so nothing is over-admitted;
//! - while a slot is busy (between the claim and marking it inserting: two stores): that one
//!   slot stays busy. The key is not blocked (others skip busy slots and insert the key
//!   elsewhere, and a busy slot never served a decision). Others cannot simply undo a busy
//!   claim: its owner may only be slow, and would then write its key into a slot that is
//!   someone else's. A handle given [`Claimants`] ([`Table::with_claimants`]) records the
//!   claimant in the busy word and empties a busy slot whose claimant is gone (a process that
//!   has exited writes nothing more). Without claimants, the slot is lost to the table until
//!   [`Table::recover`] runs while no one else uses the table.
//!
//!   **Process ids as claimants** (std, Unix, feature `shared`). The shared regions' tables,
//!   and the tables the C ABI's `tg_table_init_*` initialises in caller memory (which the
//!   Python `KeyTable` and the nginx binding's shared mappings use), record the creating
//!   process's pid namespace in the header ([`Table::claim_namespace`]); every handle the
//!   shared regions or the C ABI make on such a table claims with the calling process's id and
//!   empties a busy slot whose process no longer exists (`kill(pid, 0)` fails with `ESRCH`;
//!   a child is gone once its parent has reaped it, not while it is a zombie). What that means
//!   for users:
//!   - *Threads* of one process share its id: a thread's claim is undone only once the whole
//!     process has exited — a thread cannot stop alone at an arbitrary point, and a stalled
//!     thread's live process keeps its claim, which is the safe answer. A process id reused
//!     by a new process reads as alive: the slot stays busy until that one exits too.
//!   - *Claim versions* then hold the claimant's id (22 bits) above the low 30 bits of the
//!     claim counter (see [`Claimants`]): distinct between processes, repeating within one
//!     process only after 2³⁰ claims, which a participant would have to sleep through inside
//!     one compare-and-swap loop.
//!   - *Other pid namespaces* (another container mapping the same memory) cannot check the
//!     ids: their claims carry id 0 and are never undone, and they undo no one's. So do
//!     handles without claimants on such a table ([`Table::attach`] from Rust, a C library
//!     built without `shared`): they never misread the claim counter as a process id.
//!   - *Cost*: one `getpid` per claim (new keys and reclaims only; never on a hit), and one
//!     `kill(pid, 0)` when an insertion meets a busy slot.
//!   - *Without `shared`* (no_std, firmware, non-Unix) nothing is recorded or checked: a busy
//!     slot waits for [`Table::recover`], as above. A firmware's tables have no processes.
//! - mid-decision: a decision's only store is its compare-and-swap; before it, nothing
//!   happened; after it, the decision is complete.
//!
//! A slow participant that resumes later finds every word it compares against changed (unique
//! claim versions, and the ABA argument above for members): its swap fails and it looks again.
//!
//! # Probing, the probe bound and the full table
//!
//! A key lives in the [`PROBE_GROUPS`] = 16 groups (80 slots) from its home group (wrapping).
//! A new key takes the first empty slot there, else the first slot drained before its `now`.
//! When there is neither, nor the key (confirmed by two scans in a row that read the latest
//! words and agree), the table answers by its [`FullPolicy`] and counts it in
//! [`TableStats::rejected`]:
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
//! # Many keys in one call
//!
//! [`Table::decide_many`] and [`Table::check_many`] decide a list of keys with one tier, time
//! and cost, exactly as [`decide`](Table::decide) and [`check`](Table::check) on the keys in
//! order would. They hash up to eight keys and prefetch their home groups (on x86; elsewhere
//! they load them) before deciding any, so the memory accesses of a table larger than the
//! processor's cache overlap rather than queue one behind another; at a million keys that takes
//! less than half the time per key of the single calls (BENCHMARKS.md).
//!
//! # Memory and load
//!
//! Bytes per key are 25.6 / α at load α (keys active within one drain time, over slots).
//! Measured with random keys inserted into an empty table of 1M keys:
//!
//! | slots | α | bytes per key (whole block) | new keys refused (no room) | keys past their home group |
//! |---|---|---|---|---|
//! | 2 000 005 | 0.5 | 51.2 | 0 | 2.6 % |
//! | 1 428 575 | 0.7 | 36.6 | 21 (0.002 %) | 8.4 % |
//! | 1 249 990 | 0.8 | 32.0 | 603 (0.06 %) | 12.8 % |
//! | 1 111 115 | 0.9 | 28.4 | 7 237 (0.7 %) | 17.7 % |
//!
//! (The row for 0.5 and the last column: the keyed bench's 1M keys, `tollgate_benches::key_of`.)
//!
//! Size for α ≤ 0.8 (32 bytes per key). Drained keys do not count: their slots are taken again.
//!
//! The load also sets the speed. A key past its home group costs a mispredicted branch and a
//! second group's match on every decision and, in a table larger than the processor's cache, a
//! second memory access that the batched calls do not overlap. Where memory allows, a table
//! sized for α = 0.5 decides faster. Medians of three runs (BENCHMARKS.md, "Our table at the
//! floor's load"), time per key at α = 0.5 against 0.8:
//!
//! - 1 000 keys: `check_many` 9.7 ns against 12.6, `check` 13.0 against 15.8;
//! - 1M keys: `check_many` 42 ns against 58, `decide_many` 55 against 80. The single calls'
//!   gain there is within the noise of the runs: each waits for its own memory access.
//!
//! # Tiers, the state's bits and the exact span
//!
//! A table is built with a list of at most [`MAX_TIERS`] quotas, its tiers; each decision names
//! its key's tier by index, and a key that changes tier keeps its history exactly as
//! [`LeakyBucket::set_quota`] and [`FixedWindow::set_quota`] do, in the same compare-and-swap
//! as the decision. The tier index takes `⌈log₂ T⌉` bits of the member word, so the bucket
//! state keeps `s = 63 − ⌈log₂ T⌉` bits ([`Table::state_bits`]: 63 for one tier, 60 for up to
//! 8, 55 for 256), and a leaky-bucket tier's exact span in the table is
//!
//! ```text
//! table span = min(exact span, ⌊(2^s − 1 − B·P′) / C′⌋) ticks after the epoch
//! ```
//!
//! | clock | quota | C′ | s = 63 (1 tier) | s = 60 (≤ 8 tiers) | s = 55 (256 tiers) |
//! |---|---|---|---|---|---|
//! | nanoseconds | 2 / s, burst 30 | 1 | 292 years | 36 years | 417 days |
//! | nanoseconds | 7 / s | 7 | 41 years | 5.2 years | 60 days |
//! | microseconds | 7 / s | 7 | 41 000 years | 5 200 years | 163 years |
//! | 1 kHz tick | 7 / 1000 ticks | 7 | 41 million years | 5 million years | 163 000 years |
//!
//! (fixed windows: the window index keeps `s − k` bits, k the bits of the limit.) Time is
//! counted from the table's **epoch** ([`Table::init_with_epoch`]; 0 for [`Table::init`]):
//! pass the clock's reading at initialisation to spend the span on the table's life, not on
//! the clock's past (a realtime nanosecond clock is already 2^60.6 ticks past 1970). A `now`
//! before the epoch is judged as at the epoch (never more leniently than the true timeline:
//! the table treats the epoch as a time it has already seen). A tier whose bucket does not fit
//! the state at all is refused by `init` with [`Error::SpanTooShort`]; a decision past a tier's
//! table span is [`Error::ClockOutOfRange`] (see [`Table::tier_span`]).
//!
//! [`LeakyBucket::set_quota`]: crate::LeakyBucket::set_quota
//! [`FixedWindow::set_quota`]: crate::FixedWindow::set_quota

use core::fmt;
use core::marker::PhantomData;

use crate::atomic::Ordering;
use crate::gcra::Mode;
use crate::key::{Key, Seed};
use crate::state::bucket::{self, Admission, Units};
use crate::{fixed_window, gcra, Decision, Error, Outcome, Quota, WindowQuota};

mod batch;
mod claimants;
mod hash;
mod layout;
mod word;

pub use claimants::{Claimants, MAX_CLAIMANT};

pub use layout::{
    bytes, capacity_in, words, AttachError, TableHeader, TableKind, TableMemory, ALIGN,
    HEADER_WORDS, LAYOUT_VERSION, MAGIC, TIER_WORDS,
};
use layout::{
    H_CLAIMS, H_CLAIM_NAMESPACE, H_HASH0, H_HASH1, H_OCCUPIED, H_RECLAIMED, H_REJECTED, H_SEED0,
    H_SEED1, H_WATERMARK, TIERS_AT,
};
/// The atomic word a table's memory is made of (portable-atomic's `AtomicU64`; loom's under
/// `--cfg loom`).
#[cfg(loom)]
pub use loom::sync::atomic::AtomicU64;
#[cfg(not(loom))]
pub use portable_atomic::AtomicU64;
use word::{BUSY, EMPTY, INSERTING, KILLED};

/// Slots per group.
pub const GROUP_SLOTS: usize = 5;
/// Words per group (128 bytes).
pub const GROUP_WORDS: usize = 16;
/// How many groups from its home group a key may live: a new key reads at most this many, and
/// a key that finds no room within them gets the [`FullPolicy`] answer.
pub const PROBE_GROUPS: usize = 16;
/// The most tiers a table can have.
pub const MAX_TIERS: usize = 256;

/// Where each slot of a group keeps its key (words from the group's start).
const KEY_AT: [usize; GROUP_SLOTS] = [8, 10, 12, 14, 5];

/// Where slot `i` of a group keeps its key (words from the group's start).
const fn key_at(i: usize) -> usize {
    KEY_AT[i % GROUP_SLOTS]
}

mod sealed {
    use super::{AtomicU64, TableKind, TIER_WORDS};
    use crate::{Decision, Error, Outcome};

    /// The bucket arithmetic a table needs from a quota kind.
    pub trait Sealed: Copy + Sized {
        const KIND: TableKind;
        /// What a decision on a present key needs of its tier: a few of the tier's words,
        /// read on every decision (the rest are read only on the cold paths).
        type Hot: Copy;
        /// The tier's words in a table whose states have `bits` bits (the table span included).
        fn encode(&self, bits: u32) -> Result<[u64; 8], Error>;
        /// The tier and its table span from words written by `encode` (trusted: checked once).
        fn decode(w: &[u64; 8]) -> (Self, u64);
        /// The hot part of the tier in words written by `encode` (trusted: checked once).
        fn hot(w: &[AtomicU64; TIER_WORDS]) -> Self::Hot;
        /// The hot part of a decoded tier whose table span is `span`.
        fn hot_of(&self, span: u64) -> Self::Hot;
        /// The tier in `w`, checked to be exactly what `encode` writes.
        fn check(w: &[u64; 8], bits: u32) -> Result<Self, Error>;
        /// The request's part of a decision, computed once before the lookup: what depends
        /// on the tier, `now` and `cost` but not on the key's state.
        type Prepared: Copy;
        /// Checks the request against the tier (the errors a decision can give, other than
        /// a key's tier change) and prepares it.
        fn prepare(hot: &Self::Hot, now: u64, cost: u64) -> Result<Self::Prepared, Error>;
        /// A decision or peek on the bucket `state`: the new state (if it changes) and the
        /// decision.
        fn step(
            p: &Self::Prepared,
            state: u64,
            peek: bool,
        ) -> Result<(Option<u64>, Decision), Error>;
        /// The outcome-only [`step`](Sealed::step) of a decision (not a peek): the same new
        /// state and outcome, none of the numbers.
        fn admit(p: &Self::Prepared, state: u64) -> Result<(Option<u64>, Outcome), Error>;
        fn convert(&self, state: u64, new: &Self, now: u64) -> Result<u64, Error>;
        /// Drained strictly before `now` (see the ABA argument in the module docs).
        fn reclaimable(&self, state: u64, now: u64) -> bool;
        /// A new state that has seen `at` (≤ the table span).
        fn fresh(&self, at: u64) -> u64;
        fn limit(&self) -> u64;
    }
}

#[inline]
const fn mode(peek: bool) -> Mode {
    if peek {
        Mode::Peek
    } else {
        Mode::Decide
    }
}

/// The quota kinds a table can hold: [`Quota`] (leaky buckets) and [`WindowQuota`] (fixed
/// windows). Sealed.
pub trait TableQuota: sealed::Sealed + fmt::Debug {}

impl sealed::Sealed for Quota {
    const KIND: TableKind = TableKind::Buckets;
    type Hot = Units;
    type Prepared = (Units, Admission);

    fn encode(&self, bits: u32) -> Result<[u64; 8], Error> {
        let max_state = (1u64 << bits) - 1;
        let Some(room) = max_state.checked_sub(self.tolerance()) else {
            return Err(Error::SpanTooShort);
        };
        let mut w = self.to_words();
        w[6] = self.exact_span().min(room / self.unit());
        Ok(w)
    }

    fn decode(w: &[u64; 8]) -> (Quota, u64) {
        (Quota::from_words(w), w[6])
    }

    #[inline]
    fn hot(w: &[AtomicU64; TIER_WORDS]) -> Units {
        let at = |i: usize| w[i].load(Ordering::Relaxed);
        // burst, unit, interval, tolerance and the table span (`to_words`' order, span
        // replaced by the table span in `encode`).
        Units::from_words(at(0), at(3), at(4), at(5), at(6))
    }

    fn hot_of(&self, span: u64) -> Units {
        let w = self.to_words();
        Units::from_words(w[0], w[3], w[4], w[5], span)
    }

    fn check(w: &[u64; 8], bits: u32) -> Result<Quota, Error> {
        let q = Quota::check_words(w)?;
        if q.encode(bits)? != *w {
            return Err(Error::InvalidArgument);
        }
        Ok(q)
    }

    #[inline]
    fn prepare(units: &Units, now: u64, cost: u64) -> Result<(Units, Admission), Error> {
        // The units' span is the table span.
        Ok((*units, bucket::admission(units, now, cost)?))
    }

    // Measured: left to `#[inline]`, the compiler keeps the full step out of line, its 64-byte
    // answer returned through memory (callgrind, benches/examples/keyed_instructions.rs).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn step(
        (units, a): &(Units, Admission),
        state: u64,
        peek: bool,
    ) -> Result<(Option<u64>, Decision), Error> {
        Ok(bucket::judge(state, units, *a, mode(peek)))
    }

    #[inline]
    fn admit((_, a): &(Units, Admission), state: u64) -> Result<(Option<u64>, Outcome), Error> {
        if a.need == 0 {
            // Never: a later `now` is recorded, as the full step does.
            return Ok((
                if a.now > state { Some(a.now) } else { None },
                Outcome::Never,
            ));
        }
        Ok(bucket::admit(state, a.now, a.need, a.deadline))
    }

    fn convert(&self, state: u64, new: &Quota, now: u64) -> Result<u64, Error> {
        gcra::convert(state, self, new, now)
    }

    fn reclaimable(&self, state: u64, now: u64) -> bool {
        now.checked_mul(self.unit())
            .is_none_or(|now_u| state < now_u)
    }

    fn fresh(&self, at: u64) -> u64 {
        at.saturating_mul(self.unit())
    }

    fn limit(&self) -> u64 {
        self.burst()
    }
}

impl TableQuota for Quota {}

impl sealed::Sealed for WindowQuota {
    const KIND: TableKind = TableKind::Windows;
    type Hot = (WindowQuota, u64);
    type Prepared = (WindowQuota, u64, u64);

    fn encode(&self, bits: u32) -> Result<[u64; 8], Error> {
        let span = fixed_window::span_in_bits(self, bits).ok_or(Error::SpanTooShort)?;
        Ok([self.limit(), self.window(), self.offset(), span, 0, 0, 0, 0])
    }

    fn decode(w: &[u64; 8]) -> (WindowQuota, u64) {
        (WindowQuota::from_fields(w[0], w[1], w[2]), w[3])
    }

    #[inline]
    fn hot(w: &[AtomicU64; TIER_WORDS]) -> (WindowQuota, u64) {
        let at = |i: usize| w[i].load(Ordering::Relaxed);
        (WindowQuota::from_fields(at(0), at(1), at(2)), at(3))
    }

    fn hot_of(&self, span: u64) -> (WindowQuota, u64) {
        (*self, span)
    }

    fn check(w: &[u64; 8], bits: u32) -> Result<WindowQuota, Error> {
        let q = WindowQuota::new(w[0], w[1])?.with_offset(w[2])?;
        if q.encode(bits)? != *w {
            return Err(Error::InvalidArgument);
        }
        Ok(q)
    }

    #[inline]
    fn prepare(
        &(quota, span): &(WindowQuota, u64),
        now: u64,
        cost: u64,
    ) -> Result<(WindowQuota, u64, u64), Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        if now > span {
            return Err(Error::ClockOutOfRange);
        }
        Ok((quota, now, cost))
    }

    #[inline]
    fn step(
        &(quota, now, cost): &(WindowQuota, u64, u64),
        state: u64,
        peek: bool,
    ) -> Result<(Option<u64>, Decision), Error> {
        fixed_window::step(state, &quota, now, cost, mode(peek))
    }

    #[inline]
    fn admit(
        &(quota, now, cost): &(WindowQuota, u64, u64),
        state: u64,
    ) -> Result<(Option<u64>, Outcome), Error> {
        fixed_window::admit(state, &quota, now, cost)
    }

    fn convert(&self, state: u64, new: &WindowQuota, now: u64) -> Result<u64, Error> {
        fixed_window::convert(state, self, new, now)
    }

    fn reclaimable(&self, state: u64, now: u64) -> bool {
        fixed_window::is_over(state, self, now)
    }

    fn fresh(&self, at: u64) -> u64 {
        fixed_window::fresh(self, at)
    }

    fn limit(&self) -> u64 {
        WindowQuota::limit(self)
    }
}

impl TableQuota for WindowQuota {}

/// What a table answers when a key finds no room (docs/semantics.md#key-tables).
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

/// A handle on a lock-free table of buckets keyed by [`Key`], living in a block of memory
/// (see the [module docs](self)). The handle is small and `Copy`; any number of handles, in
/// any number of threads or processes, may use one table at once.
#[derive(Clone, Copy)]
pub struct Table<'a, Q: TableQuota> {
    mem: &'a [AtomicU64],
    /// The groups' words.
    slots: &'a [AtomicU64],
    groups: usize,
    tier_count: usize,
    bits: u32,
    secrets: [u64; 2],
    epoch: u64,
    policy: FullPolicy,
    /// Who claims slots, when busy claims of participants that are gone may be undone.
    claimants: Option<&'a dyn Claimants>,
    /// The table records a claim namespace (read at open): its claims carry claimant ids, so
    /// this handle's claims without claimants carry id 0 (never undone), not the whole counter.
    claim_ids: bool,
    kind: PhantomData<Q>,
}

/// A table of leaky buckets (GCRA, docs/semantics.md#leaky-bucket), with tiers of [`Quota`].
pub type BucketTable<'a> = Table<'a, Quota>;

/// A table of fixed windows (docs/semantics.md#fixed-window), with tiers of [`WindowQuota`].
pub type WindowTable<'a> = Table<'a, WindowQuota>;

impl<Q: TableQuota> fmt::Debug for Table<'_, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("tier_count", &self.tier_count)
            .field("policy", &self.policy)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Where a key was found.
enum Found {
    /// A member slot (position in the window) and the word read there.
    Member(usize, u64),
    /// Not in the table; the first empty slot and the first reclaimable one, if any, and a
    /// fingerprint of what the scan read (with `confirm`).
    Absent {
        empty: Option<(usize, u64)>,
        drained: Option<(usize, u64)>,
        seen: u64,
    },
}

/// A member slot found holding a key: its state word, its key's words (high, low) and the
/// state it held, read before the key.
type Hit<'a> = (&'a AtomicU64, (&'a AtomicU64, &'a AtomicU64), u64);

/// What a plain-read match of one group found.
enum Matched<'a> {
    /// A member holding the key.
    Member(Hit<'a>),
    /// Not here, and the group has an empty slot: the key is not further on either.
    Open,
    /// Not here, and every slot is taken: the key may be in a later group.
    Full,
    /// The group is not in the table's memory (only a damaged handle).
    Outside,
}

/// What an insertion attempt did.
enum Claim {
    /// Marked a slot inserting.
    Claimed,
    /// Another thread took the slot first.
    Lost,
    /// No empty or drained slot in the window.
    NoRoom,
}

/// The key's high and low 64 bits.
#[allow(clippy::cast_possible_truncation)] // each half, on purpose
const fn halves(key: Key) -> [u64; 2] {
    [(key.get() >> 64) as u64, key.get() as u64]
}

/// Folds one scanned slot into a scan's fingerprint.
const fn fold_seen(seen: u64, x: u64) -> u64 {
    (seen ^ x)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(23)
}

impl<'a, Q: TableQuota> Table<'a, Q> {
    /// Initialises a table in `mem` — all of it: the capacity is the most slots that fit
    /// ([`capacity_in`]; give `&mem[..words(capacity, tiers)]` for an exact one) — with these
    /// `tiers` (copied into the memory), hash `seed` and full-table `policy`, and returns a
    /// handle. The epoch is 0 (see [`Table::init_with_epoch`]). Whatever `mem` held is
    /// overwritten; no one else may use it during the call.
    ///
    /// Errors (nothing written): [`Error::CapacityExceeded`] if not one group fits;
    /// [`Error::InvalidArgument`] for no tiers or more than [`MAX_TIERS`];
    /// [`Error::SpanTooShort`] for a tier whose bucket does not fit the table's state bits.
    pub fn init(
        mem: &'a [AtomicU64],
        tiers: &[Q],
        seed: Seed,
        policy: FullPolicy,
    ) -> Result<Table<'a, Q>, Error> {
        Table::init_with_epoch(mem, tiers, seed, policy, 0)
    }

    /// [`Table::init`] with an epoch: the tick the table's time starts at. Decisions take
    /// `now` on the caller's clock as always; the table subtracts the epoch (a `now` before it
    /// is judged as at the epoch), so the tiers' spans count from the epoch.
    pub fn init_with_epoch(
        mem: &'a [AtomicU64],
        tiers: &[Q],
        seed: Seed,
        policy: FullPolicy,
        epoch: u64,
    ) -> Result<Table<'a, Q>, Error> {
        layout::write(
            mem,
            tiers.len(),
            |i| tiers.get(i).copied(),
            &seed,
            policy,
            epoch,
        )?;
        Table::open(mem).map_err(|_| Error::InvalidArgument)
    }

    /// [`Table::init_with_epoch`] with the tiers given by a function: `tier(i)` for each
    /// `i < tier_count` (called twice per tier; `None` is [`Error::InvalidArgument`]). For
    /// callers that hold tiers in another form and have no room for an array of them (a
    /// firmware stack, the C ABI).
    pub fn init_from_fn(
        mem: &'a [AtomicU64],
        tier_count: usize,
        tier: impl Fn(usize) -> Option<Q>,
        seed: Seed,
        policy: FullPolicy,
        epoch: u64,
    ) -> Result<Table<'a, Q>, Error> {
        layout::write(mem, tier_count, tier, &seed, policy, epoch)?;
        Table::open(mem).map_err(|_| Error::InvalidArgument)
    }

    /// A handle on a table another handle (or process) initialised in `mem`, after checking
    /// everything: magic, layout version, kind, size, every tier and the checksum of all
    /// parameters. Reads only.
    ///
    /// Errors: an [`AttachError`] naming the mismatch.
    pub fn attach(mem: &'a [AtomicU64]) -> Result<Table<'a, Q>, AttachError> {
        layout::check::<Q>(mem)?;
        Table::open(mem)
    }

    /// A handle after the cheap checks only (magic, layout version, kind, size and ranges; not
    /// the tiers or the checksum): for a layer that attached once with [`Table::attach`] and
    /// makes a handle per call. A table whose tiers were changed after initialisation gives
    /// wrong answers (never undefined behaviour: the core has no `unsafe`).
    pub fn open(mem: &'a [AtomicU64]) -> Result<Table<'a, Q>, AttachError> {
        let header = layout::read_header::<Q>(mem)?;
        let groups = header.capacity / GROUP_SLOTS;
        let at = layout::groups_at(header.tier_count);
        let word = |i: usize| mem[i].load(Ordering::Relaxed);
        Ok(Table {
            mem,
            slots: &mem[at..header.words],
            groups,
            tier_count: header.tier_count,
            bits: layout::state_bits(header.tier_count),
            secrets: [word(H_HASH0), word(H_HASH1)],
            epoch: header.epoch,
            policy: header.policy,
            claimants: None,
            claim_ids: word(H_CLAIM_NAMESPACE) != 0,
            kind: PhantomData,
        })
    }

    /// This handle with `claimants`: its insertions record the claimant in each busy slot, and
    /// a busy slot whose claimant [`is_gone`](Claimants::is_gone) is emptied by the next
    /// insertion that meets it, so a participant that stops mid-insert loses no slot for good
    /// (see [`Claimants`]). Every handle on one table should use the same kind of claimants;
    /// the shared regions and the C ABI do this for the tables whose
    /// [claim namespace](Table::claim_namespace) is set. A handle without claimants on such a
    /// table claims with claimant id 0: its own interrupted claims are never undone, and it
    /// undoes no one's.
    #[must_use]
    pub fn with_claimants(mut self, claimants: &'a dyn Claimants) -> Table<'a, Q> {
        self.claimants = Some(claimants);
        self
    }

    /// The pid namespace whose process ids this table's claims record, or 0 when its claims
    /// record none. A shared region's creator sets it (outside the checksum), and so does the C
    /// ABI's `tg_table_init_*` in a hosted Unix build (`tollgate::shared::record_process_claims`),
    /// so every handle on the table — from Rust, C, Python or nginx — can be given the same
    /// [`Claimants`] (`tollgate::shared::table_claimants`).
    pub fn claim_namespace(&self) -> u64 {
        self.counter(H_CLAIM_NAMESPACE).load(Ordering::Acquire)
    }

    /// Records the pid namespace whose process ids the table's claims carry (before anyone
    /// else uses the table).
    #[cfg(feature = "shared")]
    pub(crate) fn record_claim_namespace(&self, namespace: u64) {
        self.counter(H_CLAIM_NAMESPACE)
            .store(namespace, Ordering::Release);
    }

    /// The header's parameters (for comparing with what a process expects).
    pub fn header(&self) -> TableHeader {
        // Checked when the handle was made; a header changed since reads as it is now.
        layout::read_header::<Q>(self.mem).unwrap_or(TableHeader {
            layout_version: 0,
            words: 0,
            kind: Q::KIND,
            capacity: 0,
            tier_count: 0,
            policy: self.policy,
            epoch: self.epoch,
            checksum: 0,
        })
    }

    /// The header a table initialised with these parameters in exactly
    /// `words(capacity, tiers.len())` words would have: compare it with [`Table::header`]
    /// ([`TableHeader::first_difference`] names the field). Computed in a scratch table of
    /// one group, so it costs no memory of that size.
    ///
    /// Errors: those of [`Table::init`].
    pub fn expected_header(
        capacity: usize,
        tiers: &[Q],
        seed: Seed,
        policy: FullPolicy,
        epoch: u64,
    ) -> Result<TableHeader, Error> {
        let n = words(capacity, tiers.len());
        if n == usize::MAX {
            return Err(if capacity == 0 {
                Error::CapacityExceeded
            } else {
                Error::InvalidArgument
            });
        }
        header_of(n, tiers, &seed, policy, epoch)
    }

    /// The number of slots.
    pub const fn capacity(&self) -> usize {
        self.groups * GROUP_SLOTS
    }

    /// The number of tiers.
    pub const fn tier_count(&self) -> usize {
        self.tier_count
    }

    /// Tier `index`, as it was given to [`Table::init`] (`None` out of range, or if the
    /// recorded tier was damaged).
    pub fn tier(&self, index: usize) -> Option<Q> {
        self.tier_words(index)
            .and_then(|w| Q::check(&w, self.bits).ok())
    }

    /// The last `now` (on the caller's clock) tier `index` accepts: its table span after the
    /// epoch (see the module docs), saturated at `u64::MAX`.
    pub fn tier_span(&self, index: usize) -> Option<u64> {
        self.tier_words(index)
            .map(|w| Q::decode(&w).1.saturating_add(self.epoch))
    }

    /// The bits of a member word that hold the bucket state: 63 − ⌈log₂ tiers⌉.
    pub const fn state_bits(&self) -> u32 {
        self.bits
    }

    /// The full-table policy.
    pub const fn policy(&self) -> FullPolicy {
        self.policy
    }

    /// The epoch (see [`Table::init_with_epoch`]).
    pub const fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The hash seed, for deriving hashed keys ([`Seed::key_bytes`], [`Seed::key_triple`]).
    pub fn seed(&self) -> Seed {
        Seed::new(self.word(H_SEED0), self.word(H_SEED1))
    }

    /// The memory the table lives in.
    pub const fn memory(&self) -> &'a [AtomicU64] {
        self.mem
    }

    /// The counters.
    pub fn stats(&self) -> TableStats {
        TableStats {
            capacity: self.capacity(),
            occupied: self.counter(H_OCCUPIED).load(Ordering::Relaxed),
            reclaimed: self.counter(H_RECLAIMED).load(Ordering::Relaxed),
            rejected: self.counter(H_REJECTED).load(Ordering::Relaxed),
        }
    }

    /// Decides on a request of `cost` at `now` for `key`, whose quota is tier `tier`: exactly
    /// what a [`LeakyBucket`](crate::LeakyBucket) or [`FixedWindow`](crate::FixedWindow) of
    /// that quota holding the key's history answers, unless the table has no room for a new
    /// key (see [`FullPolicy`]). Shadow mode is the caller's: [`Decision::shadow`].
    ///
    /// Errors: [`Error::InvalidArgument`] for a tier out of range, [`Error::ZeroCost`],
    /// [`Error::ClockOutOfRange`] (for the named tier's table span or, when the key changes
    /// tier, the old tier's). An error changes nothing.
    #[inline]
    pub fn decide(&self, key: Key, tier: usize, now: u64, cost: u64) -> Result<Decision, Error> {
        self.run(key, tier, now, cost, false)
    }

    /// Would a request of `cost` be admitted now? Spends nothing; the numbers describe the
    /// key's current level (see [`LeakyBucket::peek`](crate::LeakyBucket::peek)). A peek
    /// records its time and tier in the key's bucket as the core limiters do, so it inserts a
    /// new key, and gets the [`FullPolicy`] answer when there is no room.
    #[inline]
    pub fn peek(&self, key: Key, tier: usize, now: u64, cost: u64) -> Result<Decision, Error> {
        self.run(key, tier, now, cost, true)
    }

    /// The outcome alone of [`decide`](Table::decide): the same state change and
    /// [`Outcome`], none of the numbers. A key found in its home group (the usual case) is
    /// decided with no division and nothing large returned; any other path (insertion, a full
    /// table) is the full decision's, answered by its outcome.
    ///
    /// ```
    /// use tollgate::table::{self, BucketTable, FullPolicy, TableMemory};
    /// use tollgate::key::{Key, Seed};
    /// use tollgate::{Outcome, Quota};
    ///
    /// static MEMORY: TableMemory<{ table::words(100, 1) }> = TableMemory::new();
    /// let tiers = [Quota::new(2, 1, 1_000)?];
    /// let table = BucketTable::init(MEMORY.words(), &tiers, Seed::new(1, 2), FullPolicy::FailClosed)?;
    /// let shop = Key::pair(7, 42);
    /// assert_eq!(table.check(shop, 0, 0, 1)?, Outcome::Allowed);
    /// assert_eq!(table.check(shop, 0, 0, 1)?, Outcome::Allowed);
    /// assert_eq!(table.check(shop, 0, 0, 1)?, Outcome::Limited);
    /// assert_eq!(table.peek(shop, 0, 0, 1)?.used, 2);
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    ///
    /// Errors: as [`decide`](Table::decide).
    #[inline]
    pub fn check(&self, key: Key, tier: usize, now: u64, cost: u64) -> Result<Outcome, Error> {
        self.run_with(
            key,
            tier,
            now,
            cost,
            |p, state| Q::admit(p, state),
            move |table, now, home| {
                table
                    .run_cold(key, tier, now, cost, false, home)
                    .map(|d| d.outcome)
            },
        )
    }

    /// How many slots a lookup of `key` reads to find it (1 = the first slot of its home
    /// group), or `None` if the key is not in the table. For tests and monitoring.
    pub fn probe_len(&self, key: Key) -> Option<usize> {
        let home = hash::home(self.secrets, key, self.groups);
        (0..self.probe_window()).find_map(|pos| {
            let (w, k) = self.read(home, pos, false);
            (word::is_member(w) && k == Some(key)).then_some(pos + 1)
        })
    }

    /// Puts every slot left mid-insert back in order: busy slots (whose owner stopped, or that
    /// were copied mid-insert) become empty, inserting copies are settled, killed ones
    /// emptied. Returns the number of busy slots emptied.
    ///
    /// Call it only while **no one else uses the table** (after a crash, before the other
    /// processes attach again; on a fresh copy). With others deciding it could empty a slot an
    /// insertion in flight still holds, and that insertion would then write its key into a
    /// slot that is no longer its own.
    pub fn recover(&self) -> usize {
        let mut emptied = 0;
        let wm = self.counter(H_WATERMARK).load(Ordering::SeqCst);
        for i in 0..self.capacity() {
            let (g, s) = (i / GROUP_SLOTS, i % GROUP_SLOTS);
            let Some(cell) = self.slots.get(g * GROUP_WORDS + s) else {
                break;
            };
            let w = cell.load(Ordering::SeqCst);
            if word::is_member(w) {
                continue;
            }
            match word::tag(w) {
                BUSY | KILLED => {
                    let empty = word::with_tag(w, EMPTY);
                    if cell
                        .compare_exchange(w, empty, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                        && word::tag(w) == BUSY
                    {
                        emptied += 1;
                    }
                }
                INSERTING => {
                    let kw = g * GROUP_WORDS + key_at(s);
                    let (Some(hi), Some(lo)) = (self.slots.get(kw), self.slots.get(kw + 1)) else {
                        break;
                    };
                    let key = Key::new(
                        (u128::from(hi.load(Ordering::Acquire)) << 64)
                            | u128::from(lo.load(Ordering::Acquire)),
                    );
                    let home = hash::home(self.secrets, key, self.groups);
                    // Settles every copy of the key (promotes one, kills the rest).
                    let _ = self.find(key, home, wm, true);
                    // A copy outside the key's window (damaged memory) is emptied.
                    let _ = cell.compare_exchange(
                        w,
                        word::with_tag(w, EMPTY),
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
                _ => {}
            }
        }
        emptied
    }

    fn word(&self, i: usize) -> u64 {
        self.mem.get(i).map_or(0, |w| w.load(Ordering::Relaxed))
    }

    fn counter(&self, i: usize) -> &AtomicU64 {
        // The header was checked to be in the memory.
        &self.mem[i]
    }

    #[inline]
    fn tier_words(&self, index: usize) -> Option<[u64; 8]> {
        if index >= self.tier_count {
            return None;
        }
        let at = TIERS_AT + index * TIER_WORDS;
        let words: &[AtomicU64; TIER_WORDS] = self.mem.get(at..at + TIER_WORDS)?.try_into().ok()?;
        Some(core::array::from_fn(|i| words[i].load(Ordering::Relaxed)))
    }

    #[inline]
    fn tier_of(&self, index: usize) -> Result<(Q, u64), Error> {
        match self.tier_words(index) {
            Some(w) => Ok(Q::decode(&w)),
            None => Err(Error::InvalidArgument),
        }
    }

    /// The hot part of tier `index` (what a decision on a present key needs), or `None` for
    /// an index out of range.
    #[inline]
    fn hot_tier(&self, index: usize) -> Option<Q::Hot> {
        if index >= self.tier_count {
            return None;
        }
        let at = TIERS_AT + index * TIER_WORDS;
        let words: &[AtomicU64; TIER_WORDS] = self.mem.get(at..at + TIER_WORDS)?.try_into().ok()?;
        Some(Q::hot(words))
    }

    /// Slots in a key's probe window.
    fn probe_window(&self) -> usize {
        self.groups.min(PROBE_GROUPS) * GROUP_SLOTS
    }

    /// The state word's and key words' indices in `slots` of position `pos` of the window
    /// starting at group `home`.
    fn locate(&self, home: usize, pos: usize) -> (usize, usize) {
        let g = home + pos / GROUP_SLOTS;
        let g = if g >= self.groups { g - self.groups } else { g };
        let s = pos % GROUP_SLOTS;
        (g * GROUP_WORDS + s, g * GROUP_WORDS + key_at(s))
    }

    #[inline]
    fn run(
        &self,
        key: Key,
        tier: usize,
        now: u64,
        cost: u64,
        peek: bool,
    ) -> Result<Decision, Error> {
        self.run_with(
            key,
            tier,
            now,
            cost,
            |p, state| Q::step(p, state, peek),
            move |table, now, home| table.run_cold(key, tier, now, cost, peek, home),
        )
    }

    /// The lookup shared by full and outcome-only decisions: `step` answers on the key's state
    /// (a hit), `cold` on everything else (the rest of the window, insertion, the full answer).
    // Measured: with plain `#[inline]` the compiler keeps it out of line behind the closures,
    // 67 more instructions per decision (callgrind, benches/examples/keyed_instructions.rs).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn run_with<R>(
        &self,
        key: Key,
        tier: usize,
        now: u64,
        cost: u64,
        step: impl Fn(&Q::Prepared, u64) -> Result<(Option<u64>, R), Error>,
        cold: impl FnOnce(&Self, u64, usize) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let (prepared, now) = self.prepare(tier, now, cost)?;
        let home = hash::home(self.secrets, key, self.groups);
        self.lookup(key, home, tier, now, &prepared, step, cold)
    }

    /// A request of `cost` at `now` judged against tier `tier` (what every key's decision
    /// needs), and `now` relative to the epoch; the errors a decision checks first.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn prepare(&self, tier: usize, now: u64, cost: u64) -> Result<(Q::Prepared, u64), Error> {
        let Some(hot) = self.hot_tier(tier) else {
            return Err(Error::InvalidArgument);
        };
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        let now = now.saturating_sub(self.epoch);
        Ok((Q::prepare(&hot, now, cost)?, now))
    }

    /// The hit path of a decision prepared for its tier (`now` relative to the epoch), from
    /// the key's home group on; `cold` answers everything else.
    #[allow(clippy::inline_always, clippy::too_many_arguments)]
    #[inline(always)]
    fn lookup<R>(
        &self,
        key: Key,
        home: usize,
        tier: usize,
        now: u64,
        prepared: &Q::Prepared,
        step: impl Fn(&Q::Prepared, u64) -> Result<(Option<u64>, R), Error>,
        cold: impl FnOnce(&Self, u64, usize) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let [hi, lo] = halves(key);
        if let Some((cell, keys, w)) = self.probe(home, hi, lo) {
            if let Some(r) = self.apply(cell, keys, w, key, tier, now, |st| step(prepared, st)) {
                return r;
            }
        }
        cold(self, now, home)
    }

    /// The member slot holding the key whose halves are `hi` and `lo`, found by plain reads:
    /// its state word, its key's words, and the state word as read before its key. The home group,
    /// then the next ones while they are full (a key is inserted into the first empty slot of
    /// its window, so one is rarely found past a group with an empty slot; when it is, or when
    /// the key is absent, the cold path's scan is the authority).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn probe(&self, home: usize, hi: u64, lo: u64) -> Option<Hit<'a>> {
        match self.match_group(home, hi, lo) {
            Matched::Member(hit) => Some(hit),
            Matched::Full if self.groups > 1 => self.probe_on(home, hi, lo),
            _ => None,
        }
    }

    /// [`probe`](Table::probe) past a full home group.
    #[cold]
    #[inline(never)]
    fn probe_on(&self, home: usize, hi: u64, lo: u64) -> Option<Hit<'a>> {
        let mut g = home;
        for _ in 1..self.groups.min(PROBE_GROUPS) {
            g = if g + 1 == self.groups { 0 } else { g + 1 };
            match self.match_group(g, hi, lo) {
                Matched::Member(hit) => return Some(hit),
                Matched::Full => {}
                Matched::Open | Matched::Outside => return None,
            }
        }
        None
    }

    /// Group `g` matched against a key's halves without a branch per slot: the five keys' low
    /// halves compared into one mask (a hint: plain reads, in any order). For a slot whose low
    /// half matched (nearly always one: the key's), its state word, then its key's halves after
    /// it, as the ABA argument needs: a member holding the whole key is the match; anything
    /// else (an inserting or killed copy, stale key words of a slot being reused) is not. Which
    /// slot holds a key is random, so a branch per slot would be mispredicted on most lookups;
    /// a branch on the mask is not. Only when the key is not matched are the state words read,
    /// to tell an open group from a full one.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn match_group(&self, g: usize, hi: u64, lo: u64) -> Matched<'a> {
        let start = g * GROUP_WORDS;
        let Some(Ok(group)) = self
            .slots
            .get(start..start + GROUP_WORDS)
            .map(<&[AtomicU64; GROUP_WORDS]>::try_from)
        else {
            return Matched::Outside;
        };
        let mut hits = 0u32;
        for (s, &k) in KEY_AT.iter().enumerate() {
            hits |= u32::from(group[k + 1].load(Ordering::Relaxed) == lo) << s;
        }
        while hits != 0 {
            let s = hits.trailing_zeros() as usize;
            hits &= hits - 1;
            if let (Some(&k), Some(cell)) = (KEY_AT.get(s), group.get(s)) {
                let w = cell.load(Ordering::SeqCst);
                let keys = (&group[k], &group[k + 1]);
                if word::is_member(w)
                    && keys.1.load(Ordering::Acquire) == lo
                    && keys.0.load(Ordering::Acquire) == hi
                {
                    return Matched::Member((cell, keys, w));
                }
            }
        }
        if group[..GROUP_SLOTS]
            .iter()
            .any(|w| word::is_empty(w.load(Ordering::SeqCst)))
        {
            Matched::Open
        } else {
            Matched::Full
        }
    }

    /// The decision's compare-and-swap loop on a member slot holding `key` (word `w` read
    /// before its key). `None`: the slot no longer holds the key; look it up again.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn apply<R>(
        &self,
        cell: &AtomicU64,
        keys: (&AtomicU64, &AtomicU64),
        mut w: u64,
        key: Key,
        tier: usize,
        now: u64,
        step: impl Fn(u64) -> Result<(Option<u64>, R), Error>,
    ) -> Option<Result<R, Error>> {
        let [hi, lo] = halves(key);
        loop {
            let state = if word::member_tier(w, self.bits) == tier {
                word::member_state(w, self.bits)
            } else {
                match self.convert(w, tier, now) {
                    Ok(s) => s,
                    Err(e) => return Some(Err(e)),
                }
            };
            let (next, decision) = match step(state) {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let next = next.unwrap_or(state);
            if !word::fits(next, self.bits) {
                return Some(Err(Error::ClockOutOfRange));
            }
            let new = word::member(tier, next, self.bits);
            if new == w {
                // No store: check the slot did not change hands while its key was read.
                let again = cell.load(Ordering::SeqCst);
                if again == w {
                    return Some(Ok(decision));
                }
                w = again;
            } else {
                match cell.compare_exchange(w, new, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => return Some(Ok(decision)),
                    Err(actual) => w = actual,
                }
            }
            // Changed: another decision on the key, or the slot changed hands.
            if !word::is_member(w)
                || keys.1.load(Ordering::Acquire) != lo
                || keys.0.load(Ordering::Acquire) != hi
            {
                return None;
            }
        }
    }

    /// The state of member word `w` converted into tier `tier` at `now`.
    #[cold]
    #[inline(never)]
    fn convert(&self, w: u64, tier: usize, now: u64) -> Result<u64, Error> {
        // Only a damaged table holds a tier index out of range.
        let (old, _) = self.tier_of(word::member_tier(w, self.bits))?;
        let (new, _) = self.tier_of(tier)?;
        old.convert(word::member_state(w, self.bits), &new, now)
    }

    /// Everything but a hit in the home group: the rest of the window, insertion, settling,
    /// the full answer.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn run_cold(
        &self,
        key: Key,
        tier: usize,
        now: u64,
        cost: u64,
        peek: bool,
        home: usize,
    ) -> Result<Decision, Error> {
        let (quota, span) = self.tier_of(tier)?;
        let prepared = Q::prepare(&quota.hot_of(span), now, cost)?;
        // What a new bucket answers.
        let (_, fresh) = Q::step(&prepared, quota.fresh(now.min(span)), peek)?;
        let mut confirm = false;
        let mut last_full: Option<u64> = None;
        loop {
            match self.find(key, home, now, confirm) {
                Found::Member(pos, w) => {
                    let (cell, k) = self.locate(home, pos);
                    let (Some(cell), Some(k0), Some(k1)) = (
                        self.slots.get(cell),
                        self.slots.get(k),
                        self.slots.get(k + 1),
                    ) else {
                        return Err(Error::InvalidArgument);
                    };
                    if let Some(r) = self.apply(cell, (k0, k1), w, key, tier, now, |st| {
                        Q::step(&prepared, st, peek)
                    }) {
                        return r;
                    }
                }
                Found::Absent {
                    empty: None,
                    drained: None,
                    seen,
                } if !confirm || last_full != Some(seen) => {
                    // No room, by plain reads: look again reading the latest words; then until
                    // two scans in a row read the same slots, so that "no room" was true at one
                    // moment (between them). Every difference is another thread's progress.
                    last_full = confirm.then_some(seen);
                    confirm = true;
                }
                Found::Absent { empty, drained, .. } => {
                    match self.claim(key, home, tier, span, now, empty, drained) {
                        // The next lookup settles the copy.
                        Claim::Claimed => {}
                        // The slot changed since it was read: read the latest words from now on.
                        Claim::Lost => confirm = true,
                        Claim::NoRoom => return Ok(self.full(&quota, fresh)),
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
        self.counter(H_REJECTED).fetch_add(1, Ordering::Relaxed);
        let mut d = Decision::plain(Outcome::Overloaded, quota.limit(), 0, None, 0);
        if self.policy == FullPolicy::FailOpen {
            d.outcome = Outcome::Allowed;
            d.flags |= Decision::FAIL_OPEN;
        }
        d
    }

    /// The state word at position `pos` of the window from `home`, and the key if the word
    /// says one is written (member or inserting). The key is read between two loads of the
    /// word and kept only if the word did not change: by the ABA argument and the unique claim
    /// versions, an unchanged word means an unchanged holder. With `latest`, the first read is
    /// a read-modify-write (the latest value, ordered with every change of the word).
    fn read(&self, home: usize, pos: usize, latest: bool) -> (u64, Option<Key>) {
        let (c, k) = self.locate(home, pos);
        let (Some(cell), Some(k0), Some(k1)) =
            (self.slots.get(c), self.slots.get(k), self.slots.get(k + 1))
        else {
            return (0, None);
        };
        loop {
            let first = if latest {
                cell.fetch_add(0, Ordering::SeqCst)
            } else {
                cell.load(Ordering::SeqCst)
            };
            if !(word::is_member(first) || word::tag(first) == INSERTING) {
                return (first, None);
            }
            let hi = k0.load(Ordering::Acquire);
            let lo = k1.load(Ordering::Acquire);
            if cell.load(Ordering::SeqCst) == first {
                return (
                    first,
                    Some(Key::new((u128::from(hi) << 64) | u128::from(lo))),
                );
            }
        }
    }

    /// `true` if busy word `w` was claimed by a participant that is gone (never writes again),
    /// so emptying the slot is safe.
    #[cold]
    fn claimant_gone(&self, w: u64) -> bool {
        self.claimants.is_some_and(|c| {
            let id = claimants::claimant(word::version(w));
            id != 0 && c.is_gone(id)
        })
    }

    fn cas(&self, home: usize, pos: usize, current: u64, new: u64) -> Result<u64, u64> {
        let (c, _) = self.locate(home, pos);
        match self.slots.get(c) {
            Some(cell) => cell.compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst),
            None => Err(current),
        }
    }

    fn is_reclaimable(&self, w: u64, now: u64) -> bool {
        word::is_member(w)
            && self
                .tier_of(word::member_tier(w, self.bits))
                .is_ok_and(|(q, _)| q.reclaimable(word::member_state(w, self.bits), now))
    }

    /// Looks `key` up in its window. Inserting copies of the key (insertions in flight) are
    /// settled here: the one nearest home is promoted to member once two scans in a row agree
    /// on it, the others are killed. Killed slots met on the way are emptied.
    ///
    /// Why one member: say copies q and s are promoted by threads H and P, q nearer home. H's
    /// second scan came after its first saw q inserting. If that scan saw s inserting, H killed
    /// s (or failed to, because P promoted s first, and then H did not promote q): only one
    /// of the two swaps on s wins. If it saw s not yet inserting, s became inserting after H's
    /// read, and P's own second scan, later still, sees q inserting and does not promote s. The
    /// second scan reads by read-modify-write, and every change of a word is a swap, so "after"
    /// holds in the memory model, not only with sequentially consistent loads.
    ///
    /// With `confirm`, every scan reads by read-modify-write, and `seen` fingerprints what the
    /// last scan read (each slot's control word, or a member's key, tier and drained flag).
    fn find(&self, key: Key, home: usize, now: u64, confirm: bool) -> Found {
        let mut candidate: Option<(usize, u64)> = None;
        loop {
            let mut member = None;
            let mut first_inserting: Option<(usize, u64)> = None;
            let mut empty = None;
            let mut drained = None;
            let mut restart = false;
            let mut seen: u64 = 0;
            let latest = confirm || candidate.is_some();
            for pos in 0..self.probe_window() {
                let (mut w, k) = self.read(home, pos, latest);
                if word::is_member(w) {
                    if k == Some(key) {
                        member = Some((pos, w));
                        break;
                    }
                    let reclaimable = self.is_reclaimable(w, now);
                    if confirm {
                        let [hi, lo] = halves(k.unwrap_or(Key::new(0)));
                        let tier = word::member_tier(w, self.bits) as u64;
                        seen = fold_seen(
                            seen,
                            hi ^ lo.rotate_left(17) ^ (tier << 1) ^ u64::from(reclaimable),
                        );
                    }
                    if reclaimable && drained.is_none() {
                        drained = Some((pos, w));
                    }
                    continue;
                }
                if word::tag(w) == KILLED || (word::tag(w) == BUSY && self.claimant_gone(w)) {
                    let e = word::with_tag(w, EMPTY);
                    if self.cas(home, pos, w, e).is_ok() {
                        w = e;
                    }
                }
                if confirm {
                    seen = fold_seen(seen, w);
                }
                match word::tag(w) {
                    EMPTY if empty.is_none() => empty = Some((pos, w)),
                    INSERTING if k == Some(key) => {
                        if first_inserting.is_none() {
                            first_inserting = Some((pos, w));
                        } else if candidate == first_inserting {
                            // A later copy, while settling on the first: kill it. If it was
                            // promoted meanwhile, it is the member: scan again.
                            if let Err(actual) = self.cas(home, pos, w, word::with_tag(w, KILLED)) {
                                if word::is_member(actual) {
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
            if let Some((pos, w)) = member {
                return Found::Member(pos, w);
            }
            let Some(first) = first_inserting else {
                return Found::Absent {
                    empty,
                    drained,
                    seen,
                };
            };
            if candidate != Some(first) {
                // Not yet seen by a whole earlier scan: scan again before promoting it.
                candidate = Some(first);
                continue;
            }
            let (pos, w) = first;
            let tier = word::control_tier(w);
            let promoted = match self.tier_of(tier) {
                Ok((q, span)) => {
                    // A new bucket that has seen the watermark: later than any state a
                    // reclaimed holder of this slot had (the ABA argument).
                    let wm = self.counter(H_WATERMARK).load(Ordering::SeqCst);
                    word::member(tier, q.fresh(wm.min(span)), self.bits)
                }
                // Only a damaged table holds a tier out of range: drop the copy.
                Err(_) => word::with_tag(w, KILLED),
            };
            // Counted before the swap, so a reclaim of this member (which subtracts one after
            // its own swap) never finds the counter below zero.
            self.counter(H_OCCUPIED).fetch_add(1, Ordering::Relaxed);
            if word::is_member(promoted) && self.cas(home, pos, w, promoted).is_ok() {
                return Found::Member(pos, promoted);
            }
            self.counter(H_OCCUPIED).fetch_sub(1, Ordering::Relaxed);
            if !word::is_member(promoted) {
                let _ = self.cas(home, pos, w, promoted);
            }
            candidate = None;
        }
    }

    /// Claims the first empty slot, else the first reclaimable one, for `key`, writes the key
    /// and marks it inserting (the caller's next lookup settles it).
    #[allow(clippy::too_many_arguments)]
    fn claim(
        &self,
        key: Key,
        home: usize,
        tier: usize,
        span: u64,
        now: u64,
        empty: Option<(usize, u64)>,
        drained: Option<(usize, u64)>,
    ) -> Claim {
        let (pos, w, reclaim) = match (empty, drained) {
            (Some((pos, w)), _) => (pos, w, false),
            (None, Some((pos, w))) => (pos, w, true),
            (None, None) => return Claim::NoRoom,
        };
        if reclaim {
            // Before the swap: the new holder starts at the watermark, ≥ now (ABA argument).
            self.counter(H_WATERMARK)
                .fetch_max(now.min(span), Ordering::SeqCst);
        }
        let count = self.counter(H_CLAIMS).fetch_add(1, Ordering::Relaxed);
        let version = match self.claimants {
            Some(c) => claimants::version(c.current(), count),
            // Other handles read a claimant id in these bits: this handle's is 0 (never gone).
            None if self.claim_ids => claimants::version(0, count),
            None => count,
        };
        let busy = word::control(BUSY, tier, version);
        if self.cas(home, pos, w, busy).is_err() {
            return Claim::Lost;
        }
        if reclaim {
            self.counter(H_OCCUPIED).fetch_sub(1, Ordering::Relaxed);
            self.counter(H_RECLAIMED).fetch_add(1, Ordering::Relaxed);
        }
        let (_, k) = self.locate(home, pos);
        let [hi, lo] = halves(key);
        if let (Some(k0), Some(k1)) = (self.slots.get(k), self.slots.get(k + 1)) {
            k0.store(hi, Ordering::Release);
            k1.store(lo, Ordering::Release);
        }
        // Only the owner changes a busy slot, so this swap cannot fail; a swap (not a store)
        // so that it orders itself with the settling scans' reads.
        if self
            .cas(home, pos, busy, word::with_tag(busy, INSERTING))
            .is_err()
        {
            return Claim::Lost;
        }
        Claim::Claimed
    }
}

/// The header of a table with these parameters in `n` words.
fn header_of<Q: TableQuota>(
    n: usize,
    tiers: &[Q],
    seed: &Seed,
    policy: FullPolicy,
    epoch: u64,
) -> Result<TableHeader, Error> {
    let bits = layout::state_bits(tiers.len());
    for t in tiers {
        t.encode(bits)?;
    }
    let capacity = capacity_in(n, tiers.len());
    let size = layout::groups_at(tiers.len()) + capacity / GROUP_SLOTS * GROUP_WORDS;
    let [s0, s1] = seed.halves();
    let [h0, h1] = hash::secrets(seed);
    // Header words 1..12 in order, then the tiers: what `layout::checksum` reads.
    let params = [
        LAYOUT_VERSION,
        size as u64,
        Q::KIND as u64,
        capacity as u64,
        tiers.len() as u64,
        policy as u64,
        s0,
        s1,
        epoch,
        h0,
        h1,
    ];
    let tier_words = tiers
        .iter()
        .flat_map(|t| t.encode(bits).unwrap_or([0; TIER_WORDS]));
    Ok(TableHeader {
        layout_version: LAYOUT_VERSION,
        words: size,
        kind: Q::KIND,
        capacity,
        tier_count: tiers.len(),
        policy,
        epoch,
        checksum: layout::checksum_of(params.into_iter().chain(tier_words)),
    })
}

#[cfg(all(test, feature = "shared", not(loom)))]
mod claim_id_tests {
    use super::*;

    /// A handle without claimants on a table whose claims carry claimant ids (a claim namespace
    /// is recorded) claims with id 0, never with the claim counter's high bits, which another
    /// handle would read as a claimant's id (and might find gone). On a table with no claim
    /// namespace the whole counter is the version, as before.
    #[test]
    fn a_handle_without_claimants_claims_with_id_zero_on_a_table_with_ids() {
        for (namespace, id) in [(0, 5), (12345, 0)] {
            let mem = TableMemory::<{ words(5, 1) }>::new();
            let tiers = [Quota::new(30, 2, 1000).unwrap()];
            let init =
                BucketTable::init(mem.words(), &tiers, Seed::new(1, 2), FullPolicy::FailClosed);
            init.unwrap().record_claim_namespace(namespace);
            let t = BucketTable::attach(mem.words()).unwrap();
            // A counter past 2³⁰ claims, whose bits above the sequence read as claimant 5.
            t.counter(H_CLAIMS)
                .store((5 << claimants::SEQUENCE_BITS) | 3, Ordering::Relaxed);
            let empty = t.slots[0].load(Ordering::Relaxed);
            let claim = t.claim(Key::pair(1, 1), 0, 0, u64::MAX, 0, Some((0, empty)), None);
            assert!(matches!(claim, Claim::Claimed));
            let w = t.slots[0].load(Ordering::Relaxed);
            assert_eq!(word::tag(w), INSERTING);
            assert_eq!(
                claimants::claimant(word::version(w)),
                id,
                "namespace {namespace}"
            );
        }
    }
}
