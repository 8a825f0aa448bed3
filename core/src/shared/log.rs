//! A strict sliding-window log in shared memory, lock-free and safe when a process dies. The
//! protocol (claim word, unit slots, helping) is in `src/log_ring.rs`, shared with its loom
//! models.

use std::path::Path;

use portable_atomic::AtomicU128;

use super::header::{Kind, Layout, Region};
use super::{Options, RegionError};
use crate::log_ring::Log;
pub use crate::log_ring::LOG_MAX_LIMIT;
use crate::{Decision, Error, WindowQuota};

/// A strict sliding-window log ([`SlidingLog`](crate::SlidingLog)) in shared memory: the same
/// decisions and numbers, lock-free, `&self`, and safe when a process dies at any instruction
/// (the module source documents the protocol). Limit at most 65 535; memory 16·(N + 1) bytes
/// after the header.
#[derive(Debug)]
pub struct SharedLog {
    quota: WindowQuota,
    region: Region,
}

impl SharedLog {
    /// Creates or opens (per `options`) the log at `path`. An existing region must hold a log
    /// with exactly this quota. [`Error::CapacityExceeded`] (as [`RegionError::Engine`]) for a
    /// limit above 65 535.
    pub fn open(
        path: impl AsRef<Path>,
        quota: WindowQuota,
        options: &Options,
    ) -> Result<SharedLog, RegionError> {
        let params = params(&quota)?;
        let region = Region::named(path.as_ref(), &layout(&quota, &params), *options)?;
        Ok(SharedLog { quota, region })
    }

    /// A new log in an anonymous shared mapping (shared with children forked afterwards).
    pub fn anonymous(quota: WindowQuota) -> Result<SharedLog, RegionError> {
        let params = params(&quota)?;
        let region = Region::anonymous(&layout(&quota, &params))?;
        Ok(SharedLog { quota, region })
    }

    /// The quota.
    pub const fn quota(&self) -> &WindowQuota {
        &self.quota
    }

    /// As [`SlidingLog::decide`](crate::SlidingLog::decide).
    pub fn decide(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, true)
    }

    /// As [`SlidingLog::peek`](crate::SlidingLog::peek); records the time only.
    pub fn peek(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, false)
    }

    /// `true` if this handle created the region (of several racing creators, exactly one
    /// does); `false` if it opened an existing one.
    pub fn created(&self) -> bool {
        self.region.created()
    }

    /// The version of the library that created the region.
    pub fn creator_version(&self) -> u64 {
        self.region.creator_version()
    }

    fn log(&self) -> Log<'_, AtomicU128> {
        let cells = self.region.state128();
        // limit ≤ 65 535 (checked at open): the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let n = self.quota.limit() as usize;
        Log {
            claim: &cells[0],
            slots: &cells[1..=n],
        }
    }

    fn judge(&self, now: u64, cost: u64, record: bool) -> Result<Decision, Error> {
        self.log().judge(&self.quota, now, cost, record)
    }
}

fn params(quota: &WindowQuota) -> Result<[(&'static str, u64); 2], RegionError> {
    if quota.limit() > LOG_MAX_LIMIT {
        return Err(RegionError::Engine(Error::CapacityExceeded));
    }
    Ok([("limit", quota.limit()), ("window", quota.window())])
}

fn layout<'a>(quota: &WindowQuota, params: &'a [(&'static str, u64)]) -> Layout<'a> {
    // limit ≤ 65 535: the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let n = quota.limit() as usize;
    Layout::new(Kind::Log, params, 16 * (n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_ring::{pack, pack_slot, unpack, Cell128};
    use crate::Outcome;

    /// A claimant that stops forever right after its CAS (killed before writing any unit):
    /// the next caller writes its units, counts them, and the log stays exact.
    #[test]
    fn a_claim_whose_claimant_died_before_writing_is_finished_by_the_next_caller() {
        let log = SharedLog::anonymous(WindowQuota::new(3, 10).unwrap()).unwrap();
        assert!(log.decide(0, 1).unwrap().is_allowed());
        // The dead process's claim: 2 units at time 4, none written.
        let ring = log.log();
        let cur = Cell128::load(ring.claim);
        let (k, _, _) = unpack(cur);
        Cell128::compare_exchange(ring.claim, cur, pack(k + 2, 2, 4)).unwrap();
        assert_eq!(ring.time_of(k), None);
        // The log is full (1 + 2 units): a peek counts the dead claim's units, written now.
        let d = log.peek(5, 1).unwrap();
        assert_eq!((d.outcome, d.used), (Outcome::Limited, 3));
        assert_eq!((ring.time_of(k), ring.time_of(k + 1)), (Some(4), Some(4)));
        // They leave the window when units at time 4 do: at 14, after the one at 0 (at 10).
        assert_eq!(log.decide(10, 1).unwrap().used, 3);
        assert!(!log.decide(13, 1).unwrap().is_allowed());
        let d = log.decide(14, 2).unwrap();
        assert!(d.is_allowed());
        assert_eq!(d.used, 3);
    }

    /// A claimant that wrote some of its units and not the others is finished the same way,
    /// and a stale helper (one that read an old claim) never overwrites a newer unit.
    #[test]
    fn a_half_written_claim_is_finished_and_stale_helpers_change_nothing() {
        let log = SharedLog::anonymous(WindowQuota::new(4, 100).unwrap()).unwrap();
        let ring = log.log();
        let cur = Cell128::load(ring.claim);
        Cell128::compare_exchange(ring.claim, cur, pack(3, 3, 7)).unwrap();
        let one = Cell128::load(&ring.slots[1]);
        // Unit 1 written, 0 and 2 not.
        Cell128::compare_exchange(&ring.slots[1], one, pack_slot(2, 7)).unwrap();
        assert_eq!(log.decide(8, 1).unwrap().used, 4);
        assert_eq!(
            [0, 1, 2, 3].map(|p| ring.time_of(p)),
            [Some(7), Some(7), Some(7), Some(8)]
        );
        // Wrap the ring: unit 4 reuses slot 0 at time 200.
        assert!(log.decide(200, 1).unwrap().is_allowed());
        // A helper still holding the first claim (k = 3, c = 3, t = 7) writes nothing now.
        ring.help(3, 3, 7);
        assert_eq!(ring.time_of(4), Some(200));
        assert_eq!(ring.time_of(0), None);
    }
}
