//! The lock-free log of admitted units behind `shared::SharedLog` (feature `shared`): a strict
//! sliding-window log over 128-bit cells, safe when a participant dies at any instruction.
//!
//! Not part of the public API (hidden): public only so the loom models in
//! `tests/loom_log.rs` run this exact code over modelled cells. The algorithm is generic over
//! [`Cell128`], so the region's atomics and loom's model share it.
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

use crate::{Decision, Error, Outcome, WindowQuota};

/// The largest limit of a log (16 bits of the claim word count a claim's units).
pub const LOG_MAX_LIMIT: u64 = 65_535;
const K_BITS: u32 = 48;
const K_MASK: u64 = (1 << K_BITS) - 1;

/// A 128-bit cell of the log: an atomic load and compare-and-swap (acquire loads, acquire-release
/// swaps).
pub trait Cell128 {
    /// The cell's value.
    fn load(&self) -> u128;
    /// Replaces `current` with `new`; `Err(actual)` if the cell held something else.
    ///
    /// # Errors
    ///
    /// The value found, when it was not `current`.
    fn compare_exchange(&self, current: u128, new: u128) -> Result<u128, u128>;
}

#[cfg(feature = "shared")]
impl Cell128 for portable_atomic::AtomicU128 {
    #[inline]
    fn load(&self) -> u128 {
        portable_atomic::AtomicU128::load(self, portable_atomic::Ordering::Acquire)
    }

    #[inline]
    fn compare_exchange(&self, current: u128, new: u128) -> Result<u128, u128> {
        portable_atomic::AtomicU128::compare_exchange(
            self,
            current,
            new,
            portable_atomic::Ordering::AcqRel,
            portable_atomic::Ordering::Acquire,
        )
    }
}

/// The claim word `(k, c, t)`: `k` units ever admitted, `c` units of the latest claim, `t` the
/// latest time seen.
#[must_use]
pub const fn pack(k: u64, c: u64, t: u64) -> u128 {
    ((t as u128) << 64) | ((c << K_BITS) | k) as u128
}

/// The claim word's `(k, c, t)`.
// The casts take the two halves of a u128: truncation is the point.
#[allow(clippy::cast_possible_truncation)]
#[must_use]
pub const fn unpack(w: u128) -> (u64, u64, u64) {
    let lo = w as u64;
    (lo & K_MASK, lo >> K_BITS, (w >> 64) as u64)
}

#[allow(clippy::cast_possible_truncation)]
const fn slot_parts(w: u128) -> (u64, u64) {
    (w as u64, (w >> 64) as u64)
}

/// A slot holding unit `seq − 1` at `time`.
#[must_use]
pub const fn pack_slot(seq: u64, time: u64) -> u128 {
    ((time as u128) << 64) | seq as u128
}

/// The log: its claim word and its N slots (N = the quota's limit).
pub struct Log<'a, C: Cell128> {
    /// The claim word.
    pub claim: &'a C,
    /// The ring of N unit slots.
    pub slots: &'a [C],
}

impl<C: Cell128> Log<'_, C> {
    fn slot(&self, p: u64) -> Option<&C> {
        let n = self.slots.len() as u64;
        if n == 0 {
            return None;
        }
        // p mod N < N: the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        self.slots.get((p % n) as usize)
    }

    /// Writes every unit of the claim `(k, c, t)` that is not written yet.
    pub fn help(&self, k: u64, c: u64, t: u64) {
        for p in k - c..k {
            let Some(slot) = self.slot(p) else {
                return;
            };
            let mut v = slot.load();
            loop {
                let (seq, _) = slot_parts(v);
                if seq > p {
                    break; // written (seq = p + 1), or already reused by a later claim
                }
                match slot.compare_exchange(v, pack_slot(p + 1, t)) {
                    Ok(_) => break,
                    Err(actual) => v = actual,
                }
            }
        }
    }

    /// The time of unit `p`, or `None` if its slot has moved on (start again).
    #[must_use]
    pub fn time_of(&self, p: u64) -> Option<u64> {
        let (seq, time) = slot_parts(self.slot(p)?.load());
        (seq == p + 1).then_some(time)
    }

    /// A decision (`record`) or a peek of `cost` at `now` under `quota`, whose limit must be
    /// the number of slots (at most [`LOG_MAX_LIMIT`]).
    ///
    /// # Errors
    ///
    /// [`Error::ZeroCost`]; [`Error::CapacityExceeded`] once 2⁴⁸ units were admitted, or for a
    /// quota whose limit is not the number of slots.
    // k, c, t and w are the names the module docs use.
    #[allow(clippy::many_single_char_names)]
    pub fn judge(
        &self,
        quota: &WindowQuota,
        now: u64,
        cost: u64,
        record: bool,
    ) -> Result<Decision, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        let limit = quota.limit();
        if limit != self.slots.len() as u64 || limit > LOG_MAX_LIMIT {
            return Err(Error::CapacityExceeded);
        }
        let w = u128::from(quota.window());
        let until_gone =
            |time: u64| u64::try_from(u128::from(time) + w - u128::from(now)).unwrap_or(u64::MAX);
        'again: loop {
            let cur = self.claim.load();
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
                    if self.claim.compare_exchange(cur, next).is_err() {
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
                    .claim
                    .compare_exchange(cur, pack(k, 0, latest))
                    .is_err()
            {
                continue 'again;
            }
            return Ok(decision);
        }
    }
}
