//! A strict sliding-window log in shared memory, lock-free and safe when a process dies.
//!
//! # State
//!
//! The log of admitted **units** (a request of cost c is c units at one time) as a ring of N
//! 128-bit slots, N = the limit, plus one 128-bit **claim word**:
//!
//! - claim word: `k` (units ever admitted, 48 bits), `c` (units of the latest claim, 16 bits),
//!   `t` (the latest time the log has seen, 64 bits);
//! - slot `p mod N` holds unit p as `(p + 1, time)`; a slot whose sequence is below `p + 1`
//!   still holds an older unit.
//!
//! Unit times never decrease with p (each is the latest time seen), so the units in the
//! window `(T − W, T]` are the positions from the first one whose time is above `T − W` up to
//! `k`, found by binary search among the last N.
//!
//! # Protocol
//!
//! A decision loads the claim word, then **helps**: it writes `(p + 1, t)` into every slot of the
//! latest claim, `p` in `k − c .. k`, that does not hold it yet (a CAS from the older content,
//! which a sequence number makes ABA-free). Then it reads the last N units (a slot whose
//! sequence is not `p + 1` means the log moved on: start again) and decides:
//!
//! - **admit**: CAS the claim word from what was loaded to `(k + cost, cost, T)`, then help
//!   (write its own units). The CAS is the decision's linearization point.
//! - **deny, peek, never**: no unit is written; if `T` is later than `t`, CAS the claim word to
//!   `(k, 0, T)` to record the time (retry on failure), else the decision is linearized at the
//!   load (the units below `k` it read cannot change while their slots hold them).
//!
//! | slot of position p | meaning | who moves it on |
//! |---|---|---|
//! | sequence `p + 1 − N` or 0 | older unit (or none) | the claim of p, once the claim word covers p |
//! | sequence `p + 1` | unit p, time final | the claim of `p + N` |
//!
//! Every claim is complete before the next one: a new claim's CAS happens only after its
//! claimant helped the previous one. A process that stops forever at any instruction leaves
//! either no claim (before the CAS) or a claim whose every unit the next decision writes, with
//! the time recorded in the claim word: no slot is left unusable and no unit is lost, so the
//! log never admits more than N units in any window. Capacity: N ≤ 65 535 (16-bit `c`), and
//! 2⁴⁸ units over the region's life (nine years at a million units a second), after which a
//! decision to admit returns [`Error::CapacityExceeded`].

use std::path::Path;

use portable_atomic::AtomicU128;

use super::header::{Kind, Layout, Region};
use super::{Options, RegionError};
use crate::atomic::Ordering;
use crate::{Decision, Error, Outcome, WindowQuota};

/// The largest limit of a [`SharedLog`].
pub const LOG_MAX_LIMIT: u64 = 65_535;
const K_BITS: u32 = 48;
const K_MASK: u64 = (1 << K_BITS) - 1;

const fn pack(k: u64, c: u64, t: u64) -> u128 {
    ((t as u128) << 64) | ((c << K_BITS) | k) as u128
}

// The casts take the two halves of a u128: truncation is the point.
#[allow(clippy::cast_possible_truncation)]
const fn unpack(w: u128) -> (u64, u64, u64) {
    let lo = w as u64;
    (lo & K_MASK, lo >> K_BITS, (w >> 64) as u64)
}

#[allow(clippy::cast_possible_truncation)]
const fn slot_parts(w: u128) -> (u64, u64) {
    (w as u64, (w >> 64) as u64)
}

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

    fn claim(&self) -> &AtomicU128 {
        &self.region.state128()[0]
    }

    fn slot(&self, p: u64) -> &AtomicU128 {
        // p mod N < N ≤ 65 535: the cast is exact, and the state holds N + 1 words.
        #[allow(clippy::cast_possible_truncation)]
        let i = (p % self.quota.limit()) as usize;
        &self.region.state128()[1 + i]
    }

    /// Writes every unit of the claim `(k, c, t)` that is not written yet.
    fn help(&self, k: u64, c: u64, t: u64) {
        for p in k - c..k {
            let slot = self.slot(p);
            let mut v = slot.load(Ordering::Acquire);
            loop {
                let (seq, _) = slot_parts(v);
                if seq > p {
                    break; // written (seq = p + 1), or already reused by a later claim
                }
                match slot.compare_exchange_weak(
                    v,
                    pack_slot(p + 1, t),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(actual) => v = actual,
                }
            }
        }
    }

    /// The time of unit `p`, or `None` if its slot has moved on (start again).
    fn time_of(&self, p: u64) -> Option<u64> {
        let (seq, time) = slot_parts(self.slot(p).load(Ordering::Acquire));
        (seq == p + 1).then_some(time)
    }

    // k, c, t and w are the names the module docs use.
    #[allow(clippy::many_single_char_names)]
    fn judge(&self, now: u64, cost: u64, record: bool) -> Result<Decision, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        let limit = self.quota.limit();
        let w = u128::from(self.quota.window());
        let until_gone =
            |time: u64| u64::try_from(u128::from(time) + w - u128::from(now)).unwrap_or(u64::MAX);
        'again: loop {
            let cur = self.claim().load(Ordering::Acquire);
            let (k, c, t) = unpack(cur);
            self.help(k, c, t);
            let latest = now.max(t);
            // The first position, among the last N, whose unit is still in the window.
            let (mut lo, mut hi) = (k.saturating_sub(limit), k);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let Some(time) = self.time_of(mid) else {
                    continue 'again;
                };
                if u128::from(time) + w > u128::from(latest) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            let first = lo;
            let used = k - first;
            let newest = if used > 0 {
                match self.time_of(k - 1) {
                    Some(time) => until_gone(time),
                    None => continue 'again,
                }
            } else {
                0
            };
            let decision = if cost > limit {
                Decision::plain(Outcome::Never, limit, used, None, newest)
            } else if used + cost <= limit {
                if record {
                    if k + cost > K_MASK {
                        return Err(Error::CapacityExceeded);
                    }
                    let next = pack(k + cost, cost, latest);
                    if self
                        .claim()
                        .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        continue 'again;
                    }
                    self.help(k + cost, cost, latest);
                    let d = Decision::plain(
                        Outcome::Allowed,
                        limit,
                        used + cost,
                        Some(0),
                        until_gone(latest),
                    );
                    return Ok(d);
                }
                Decision::plain(Outcome::Allowed, limit, used, Some(0), newest)
            } else {
                // The oldest units must leave until `used + cost − limit` are gone.
                let Some(time) = self.time_of(first + (used + cost - limit) - 1) else {
                    continue 'again;
                };
                Decision::plain(
                    Outcome::Limited,
                    limit,
                    used,
                    Some(until_gone(time)),
                    newest,
                )
            };
            if latest > t
                && self
                    .claim()
                    .compare_exchange(cur, pack(k, 0, latest), Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                continue 'again;
            }
            return Ok(decision);
        }
    }
}

const fn pack_slot(seq: u64, time: u64) -> u128 {
    ((time as u128) << 64) | seq as u128
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

    /// A claimant that stops forever right after its CAS (killed before writing any unit):
    /// the next caller writes its units, counts them, and the log stays exact.
    #[test]
    fn a_claim_whose_claimant_died_before_writing_is_finished_by_the_next_caller() {
        let log = SharedLog::anonymous(WindowQuota::new(3, 10).unwrap()).unwrap();
        assert!(log.decide(0, 1).unwrap().is_allowed());
        // The dead process's claim: 2 units at time 4, none written.
        let cur = log.claim().load(Ordering::Acquire);
        let (k, _, _) = unpack(cur);
        log.claim()
            .compare_exchange(cur, pack(k + 2, 2, 4), Ordering::AcqRel, Ordering::Acquire)
            .unwrap();
        assert_eq!(log.time_of(k), None);
        // The log is full (1 + 2 units): a peek counts the dead claim's units, written now.
        let d = log.peek(5, 1).unwrap();
        assert_eq!((d.outcome, d.used), (Outcome::Limited, 3));
        assert_eq!((log.time_of(k), log.time_of(k + 1)), (Some(4), Some(4)));
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
        let cur = log.claim().load(Ordering::Acquire);
        log.claim()
            .compare_exchange(cur, pack(3, 3, 7), Ordering::AcqRel, Ordering::Acquire)
            .unwrap();
        log.slot(1).store(pack_slot(2, 7), Ordering::Release); // unit 1 written, 0 and 2 not
        assert_eq!(log.decide(8, 1).unwrap().used, 4);
        assert_eq!(
            [0, 1, 2, 3].map(|p| log.time_of(p)),
            [Some(7), Some(7), Some(7), Some(8)]
        );
        // Wrap the ring: unit 4 reuses slot 0 at time 200.
        assert!(log.decide(200, 1).unwrap().is_allowed());
        // A helper still holding the first claim (k = 3, c = 3, t = 7) writes nothing now.
        log.help(3, 3, 7);
        assert_eq!(log.time_of(4), Some(200));
        assert_eq!(log.time_of(0), None);
    }
}
