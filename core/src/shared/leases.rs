//! A concurrency limit across processes, with leases.
//!
//! # State
//!
//! M slots of 128 bits, one per permit: `(deadline, generation)`. A slot is **free** when its
//! deadline is 0 or not later than `now`: released, never taken, or **expired** (its holder did
//! not release or renew it in time — typically because it died). Acquiring is one CAS from a
//! free slot's content to `(now + lease, generation + 1)`; the [`Lease`] names the slot and the
//! generation, so a release or renewal acts only on the lease it names: once a slot expired and
//! was taken again, the old lease's release is [`Error::NotAcquired`] and changes nothing.
//!
//! At most M leases are unexpired at any time, and a process killed at any instant leaves
//! either nothing or a lease that expires by its deadline: the limit is never wedged for longer
//! than the longest lease. [`SharedLeases::max_lease`] bounds what a caller may ask for.

use std::path::Path;

use portable_atomic::AtomicU128;

use super::header::{Kind, Layout, Region};
use super::{Options, RegionError};
use crate::atomic::Ordering;
use crate::{Decision, Error, Outcome};

const fn pack(deadline: u64, generation: u64) -> u128 {
    ((generation as u128) << 64) | deadline as u128
}

#[allow(clippy::cast_possible_truncation)]
const fn unpack(w: u128) -> (u64, u64) {
    (w as u64, (w >> 64) as u64)
}

/// A permit of a [`SharedLeases`], valid until its deadline unless released or renewed.
/// Plain data: it may be sent to another process, which may release it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The permit's slot.
    pub slot: u32,
    /// The slot's generation when this lease was granted.
    pub generation: u64,
    /// The tick at which the lease expires unless renewed.
    pub deadline: u64,
}

/// At most M requests in flight across every process that maps the region, each holding a
/// [`Lease`] that expires if not released in time, so a process that dies holding permits never
/// wedges the limit. A refusal is [`Outcome::Overloaded`] (HTTP 503).
#[derive(Debug)]
pub struct SharedLeases {
    max: u32,
    max_lease: u64,
    region: Region,
}

impl SharedLeases {
    /// Creates or opens (per `options`) the limit at `path`: `max` permits (at most 65 536),
    /// leases of at most `max_lease` ticks. An existing region must have the same two numbers.
    pub fn open(
        path: impl AsRef<Path>,
        max: u32,
        max_lease: u64,
        options: &Options,
    ) -> Result<SharedLeases, RegionError> {
        let params = params(max, max_lease)?;
        let region = Region::named(path.as_ref(), &layout(max, &params), *options)?;
        Ok(SharedLeases {
            max,
            max_lease,
            region,
        })
    }

    /// A new limit in an anonymous shared mapping (shared with children forked afterwards).
    pub fn anonymous(max: u32, max_lease: u64) -> Result<SharedLeases, RegionError> {
        let params = params(max, max_lease)?;
        let region = Region::anonymous(&layout(max, &params))?;
        Ok(SharedLeases {
            max,
            max_lease,
            region,
        })
    }

    /// The cap M.
    pub const fn max(&self) -> u32 {
        self.max
    }

    /// The longest lease a caller may ask for, in ticks.
    pub const fn max_lease(&self) -> u64 {
        self.max_lease
    }

    fn slots(&self) -> &[AtomicU128] {
        &self.region.state128()[..self.max as usize]
    }

    /// Unexpired leases at `now`.
    pub fn in_flight(&self, now: u64) -> u32 {
        let n = self
            .slots()
            .iter()
            .filter(|s| unpack(s.load(Ordering::Acquire)).0 > now)
            .count();
        // At most M ≤ 65 536 slots.
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Takes a permit at `now` for `lease` ticks (1 ≤ `lease` ≤ [`max_lease`](Self::max_lease),
    /// else [`Error::InvalidArgument`]; `now + lease` must fit 64 bits, else
    /// [`Error::ClockOutOfRange`]). Admitted: the decision reports `used` = unexpired leases
    /// after it, and the lease. Refused: [`Outcome::Overloaded`] with `retry_after` the ticks
    /// until the first lease expires (a bound: one may be released sooner).
    pub fn try_acquire(&self, now: u64, lease: u64) -> Result<(Decision, Option<Lease>), Error> {
        if lease == 0 || lease > self.max_lease {
            return Err(Error::InvalidArgument);
        }
        let deadline = now.checked_add(lease).ok_or(Error::ClockOutOfRange)?;
        let limit = u64::from(self.max);
        let slots = self.slots();
        // Processes start their search at different slots, so they rarely race for one.
        let start = std::process::id() as usize % slots.len().max(1);
        let mut earliest = u64::MAX;
        for i in (start..slots.len()).chain(0..start) {
            let slot = &slots[i];
            let mut v = slot.load(Ordering::Acquire);
            loop {
                let (d, generation) = unpack(v);
                if d > now {
                    earliest = earliest.min(d);
                    break;
                }
                let granted = pack(deadline, generation.wrapping_add(1));
                match slot.compare_exchange(v, granted, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        let used = u64::from(self.in_flight(now)).clamp(1, limit);
                        let d = Decision::plain(Outcome::Allowed, limit, used, Some(0), 0);
                        let lease = Lease {
                            slot: u32::try_from(i).unwrap_or(u32::MAX),
                            generation: generation.wrapping_add(1),
                            deadline,
                        };
                        return Ok((d, Some(lease)));
                    }
                    Err(actual) => v = actual,
                }
            }
        }
        // No slot at all (M = 0): no time can be promised.
        let retry = (earliest != u64::MAX).then(|| earliest - now);
        let d = Decision::plain(Outcome::Overloaded, limit, limit, retry, retry.unwrap_or(0));
        Ok((d, None))
    }

    fn slot_of(&self, lease: &Lease) -> Result<&AtomicU128, Error> {
        self.slots()
            .get(lease.slot as usize)
            .ok_or(Error::InvalidArgument)
    }

    /// Returns a permit. [`Error::NotAcquired`] if the lease was already released, or expired
    /// and was taken by another caller; nothing changes then. Releasing an expired lease that
    /// nobody took yet succeeds.
    pub fn release(&self, lease: &Lease) -> Result<(), Error> {
        let slot = self.slot_of(lease)?;
        let mut v = slot.load(Ordering::Acquire);
        loop {
            let (d, generation) = unpack(v);
            if generation != lease.generation || d == 0 {
                return Err(Error::NotAcquired);
            }
            match slot.compare_exchange(v, pack(0, generation), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => v = actual,
            }
        }
    }

    /// Extends an unexpired lease to `now + lease` ticks (the same bounds as
    /// [`try_acquire`](Self::try_acquire)) and updates its deadline. [`Error::NotAcquired`] if
    /// it was released or has expired at `now`.
    pub fn renew(&self, lease: &mut Lease, now: u64, ticks: u64) -> Result<(), Error> {
        if ticks == 0 || ticks > self.max_lease {
            return Err(Error::InvalidArgument);
        }
        let deadline = now.checked_add(ticks).ok_or(Error::ClockOutOfRange)?;
        let slot = self.slot_of(lease)?;
        let mut v = slot.load(Ordering::Acquire);
        loop {
            let (d, generation) = unpack(v);
            if generation != lease.generation || d <= now {
                return Err(Error::NotAcquired);
            }
            match slot.compare_exchange(
                v,
                pack(deadline, generation),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    lease.deadline = deadline;
                    return Ok(());
                }
                Err(actual) => v = actual,
            }
        }
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
}

fn params(max: u32, max_lease: u64) -> Result<[(&'static str, u64); 2], RegionError> {
    if max > 65_536 {
        return Err(RegionError::Engine(Error::CapacityExceeded));
    }
    if max_lease == 0 {
        return Err(RegionError::Engine(Error::InvalidArgument));
    }
    Ok([("max", u64::from(max)), ("max_lease", max_lease)])
}

fn layout<'a>(max: u32, params: &'a [(&'static str, u64)]) -> Layout<'a> {
    Layout::new(Kind::Leases, params, 16 * (max as usize).max(1))
}
