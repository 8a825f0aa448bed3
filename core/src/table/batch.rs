//! Decisions on many keys in one call ([`Table::decide_many`], [`Table::check_many`]).
//!
//! A decision on a key that is not in the processor's cache waits for memory: about 100 ns,
//! most of a decision's cost in a table of a million keys. A processor overlaps the waits of
//! consecutive decisions only as far as its instruction window reaches, a few decisions. A
//! batch first finds the home groups of up to [`BATCH`] keys and asks for them all, so their
//! misses overlap, then decides the keys in order on cached memory. It also checks the tier,
//! the cost and the clock once for all of them.
//!
//! On x86 it asks with a prefetch hint (`prefetcht0`, through `safe_arch`), which waits for
//! nothing; elsewhere (no prefetch in stable Rust without unsafe code) with plain loads of the
//! groups' words, which overlap as well but hold the processor until the first arrives.

use super::{hash, Key, Table, TableQuota, GROUP_WORDS};
use crate::{Decision, Error, Outcome};

/// Keys whose groups one batch loads together before deciding them.
pub(super) const BATCH: usize = 8;

impl<Q: TableQuota> Table<'_, Q> {
    /// [`decide`](Table::decide) for each of `keys` in turn, with one tier, time and cost:
    /// `out[i]` gets the answer for `keys[i]`, exactly as if `decide` had been called on the
    /// keys in order (a key that appears twice is decided twice). Faster than the calls one by
    /// one when the table is larger than the processor's cache (see the module docs).
    ///
    /// ```
    /// use tollgate::table::{self, BucketTable, FullPolicy, TableMemory};
    /// use tollgate::key::{Key, Seed};
    /// use tollgate::{Error, Quota};
    ///
    /// static MEMORY: TableMemory<{ table::words(100, 1) }> = TableMemory::new();
    /// let tiers = [Quota::new(2, 1, 1_000)?];
    /// let table = BucketTable::init(MEMORY.words(), &tiers, Seed::new(1, 2), FullPolicy::FailClosed)?;
    /// let keys = [Key::pair(7, 1), Key::pair(7, 2), Key::pair(7, 1), Key::pair(7, 1)];
    /// let mut out = [Err(Error::InvalidArgument); 4];
    /// table.decide_many(&keys, 0, 0, 1, &mut out)?;
    /// let allowed: Vec<bool> = out.iter().map(|d| d.is_ok_and(|d| d.is_allowed())).collect();
    /// assert_eq!(allowed, [true, true, true, false]); // the third request for (7, 1) is over
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    ///
    /// Errors for the whole call, before anything is decided: [`Error::InvalidArgument`] for a
    /// tier out of range or `out` shorter than `keys`, [`Error::ZeroCost`], and
    /// [`Error::ClockOutOfRange`] for `now` past the tier's table span. An error of one key
    /// (the old tier's span, when that key changes tier) is its own `out` entry, and changes
    /// nothing for that key. Entries of `out` past `keys.len()` are left as they are.
    pub fn decide_many(
        &self,
        keys: &[Key],
        tier: usize,
        now: u64,
        cost: u64,
        out: &mut [Result<Decision, Error>],
    ) -> Result<(), Error> {
        self.many(
            keys,
            tier,
            now,
            cost,
            out,
            |p, state| Q::step(p, state, false),
            |table, key, now, home| table.run_cold(key, tier, now, cost, false, home),
        )
    }

    /// The outcomes alone of [`decide_many`](Table::decide_many), as [`check`](Table::check)
    /// is of [`decide`](Table::decide): the same state changes, none of the numbers.
    ///
    /// Errors: as [`decide_many`](Table::decide_many).
    pub fn check_many(
        &self,
        keys: &[Key],
        tier: usize,
        now: u64,
        cost: u64,
        out: &mut [Result<Outcome, Error>],
    ) -> Result<(), Error> {
        self.many(
            keys,
            tier,
            now,
            cost,
            out,
            |p, state| Q::admit(p, state),
            |table, key, now, home| {
                table
                    .run_cold(key, tier, now, cost, false, home)
                    .map(|d| d.outcome)
            },
        )
    }

    /// The batches of `keys`: each one's groups loaded, then its keys decided in order.
    #[allow(clippy::inline_always, clippy::too_many_arguments)]
    #[inline(always)]
    fn many<R>(
        &self,
        keys: &[Key],
        tier: usize,
        now: u64,
        cost: u64,
        out: &mut [Result<R, Error>],
        step: impl Fn(&Q::Prepared, u64) -> Result<(Option<u64>, R), Error> + Copy,
        cold: impl Fn(&Self, Key, u64, usize) -> Result<R, Error> + Copy,
    ) -> Result<(), Error> {
        let (prepared, now) = self.prepare(tier, now, cost)?;
        if out.len() < keys.len() {
            return Err(Error::InvalidArgument);
        }
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let mut homes = [0usize; BATCH];
            for (home, &key) in homes.iter_mut().zip(keys) {
                *home = hash::home(self.secrets, key, self.groups);
                self.fetch(*home);
            }
            for ((out, &key), &home) in out.iter_mut().zip(keys).zip(&homes) {
                *out = self.lookup(key, home, tier, now, &prepared, step, |table, now, home| {
                    cold(table, key, now, home)
                });
            }
        }
        Ok(())
    }

    /// Asks for group `g`'s two cache lines without waiting for them: a prefetch hint on x86
    /// (SSE, which every x86-64 processor has); elsewhere (no prefetch in stable Rust without
    /// unsafe code) a load of each line's first word, whose value is of no use: the loads,
    /// issued together for the batch, bring the lines in.
    #[inline]
    fn fetch(&self, g: usize) {
        let at = g * GROUP_WORDS;
        let Some(group) = self.slots.get(at..at + GROUP_WORDS) else {
            return;
        };
        for line in [&group[0], &group[GROUP_WORDS / 2]] {
            #[cfg(all(
                any(target_arch = "x86", target_arch = "x86_64"),
                target_feature = "sse",
                not(loom)
            ))]
            safe_arch::prefetch_t0(line);
            // The load must happen, not be dropped as unused.
            #[cfg(not(all(
                any(target_arch = "x86", target_arch = "x86_64"),
                target_feature = "sse",
                not(loom)
            )))]
            core::hint::black_box(line.load(super::Ordering::Relaxed));
        }
    }
}
