//! Reference models, straight from docs/semantics.md, in `u128` with checked arithmetic.
//!
//! They know nothing of the engine's state words: the bucket keeps its level as a rational, the
//! fixed window its window number and count, the sliding log every admitted entry.

use tollgate::{Error, Outcome};

use crate::Report;

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

/// ⌈a · b / d⌉ without overflow in between, for `b, d < 2⁶⁴`; `None` if the result does not
/// fit u128.
fn mul_div_ceil(a: u128, b: u128, d: u128) -> Option<u128> {
    let (q, r) = (a / d, a % d);
    // r < d < 2⁶⁴ and b < 2⁶⁴: r · b fits.
    q.checked_mul(b)?.checked_add(ceil_div(r * b, d))
}

fn sat64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// How a bucket model converts its level to a new quota; see [`BucketModel::set_quota`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// The true timeline of docs/semantics.md#backwards-clocks: by level.
    ByLevel,
    /// What the engine does: the larger of by level and by time; refused if it does not fit.
    Engine,
}

/// A leaky bucket (docs/semantics.md#leaky-bucket). The level L is kept as `x = L · P'` where C'/P' is the drain rate
/// in lowest terms, so the level drains by exactly C' per tick and a request of cost c adds
/// c · P'. Time going backwards is judged as docs/semantics.md#backwards-clocks says: at the latest time
/// seen, plus the gap (so the level at an earlier `now` is the latest level plus the drain the
/// gap would have brought).
#[derive(Clone, Debug)]
pub struct BucketModel {
    /// B.
    pub burst: u128,
    /// C' = C / gcd(C, P).
    pub count: u128,
    /// P' = P / gcd(C, P).
    pub period: u128,
    x: u128,
    latest: u64,
}

impl BucketModel {
    /// An empty bucket of `burst`, draining `count` per `period` ticks. All must be ≥ 1.
    pub fn new(burst: u64, count: u64, period: u64) -> BucketModel {
        let (c, p) = (u128::from(count), u128::from(period));
        let g = gcd(c, p);
        BucketModel {
            burst: u128::from(burst),
            count: c / g,
            period: p / g,
            x: 0,
            latest: 0,
        }
    }

    /// The exact span ⌊(2⁶⁴ − 1 − B·P') / C'⌋, or `None` if B·P' does not fit 64 bits.
    pub fn exact_span(&self) -> Option<u64> {
        let tol = self.burst.checked_mul(self.period)?;
        let room = u128::from(u64::MAX).checked_sub(tol)?;
        Some(sat64(room / self.count))
    }

    /// The level scaled by P' at `now`, without moving time: the latest level drained to `now`,
    /// or raised by the gap when `now` is earlier.
    fn level_at(&self, now: u64) -> u128 {
        if now >= self.latest {
            let drained = self.count * u128::from(now - self.latest);
            self.x.saturating_sub(drained)
        } else {
            // Saturates only far beyond any capacity, where every answer is a refusal anyway.
            self.x
                .saturating_add(self.count * u128::from(self.latest - now))
        }
    }

    fn advance(&mut self, now: u64) {
        if now > self.latest {
            self.x = self.level_at(now);
            self.latest = now;
        }
    }

    /// A decision (`spend = false` for a peek). `span` is the engine's clock limit for this
    /// quota (checked against [`BucketModel::exact_span`] by the caller for exact quotas).
    pub fn decide(&mut self, now: u64, cost: u64, spend: bool, span: u64) -> Result<Report, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        if now > span {
            return Err(Error::ClockOutOfRange);
        }
        self.advance(now);
        let mut level = self.level_at(now);
        let cost = u128::from(cost);
        let capacity = self.burst * self.period;
        let need = cost * self.period;
        let burst = self.burst;
        let (outcome, retry) = if cost > burst {
            (Outcome::Never, None)
        } else if level.saturating_add(need) <= capacity {
            if spend {
                self.x += need;
                level += need;
            }
            (Outcome::Allowed, Some(0))
        } else {
            let over = level.saturating_add(need).saturating_sub(capacity);
            (Outcome::Limited, Some(sat64(ceil_div(over, self.count))))
        };
        let used = sat64(ceil_div(level, self.period).min(burst));
        let limit = sat64(burst);
        Ok(Report {
            outcome,
            used,
            remaining: limit - used,
            retry_after: retry,
            reset_after: sat64(ceil_div(level, self.count)),
            limit,
        })
    }

    /// `true` if the level at `now` is zero.
    pub fn is_drained(&self, now: u64) -> bool {
        self.level_at(now) == 0
    }

    /// Empties the bucket and forgets the latest time (an operator's reset).
    pub fn reset(&mut self) {
        self.x = 0;
        self.latest = 0;
    }

    /// Changes the quota at `now`.
    ///
    /// The true timeline (`Conversion::ByLevel`, docs/semantics.md#quota-changes): the level carries over, rounded up
    /// (no free burst). The engine (`Conversion::Engine`, `LeakyBucket::set_quota` since the
    /// fix of the two bugs `bucket_diff` found): a state cannot tell a backlog from the gap a
    /// clock that stepped back leaves, so the larger of the conversion by level and by time
    /// (the backlog empties when it would have) is kept, and a result that does not fit the new
    /// 64-bit state is refused with `ClockOutOfRange`, changing nothing.
    pub fn set_quota(
        &mut self,
        burst: u64,
        count: u64,
        period: u64,
        now: u64,
        how: Conversion,
    ) -> Result<(), Error> {
        let level = self.level_at(now);
        let next = BucketModel::new(burst, count, period);
        let by_level = mul_div_ceil(level, next.period, self.period);
        let carried = match how {
            // A level beyond u128 units (1/C' tick each, C' < 2⁶⁴) takes more than 2⁶⁴ ticks to
            // drain: out of reach of any u64 clock, so saturating keeps every answer.
            Conversion::ByLevel => by_level.unwrap_or(u128::MAX),
            Conversion::Engine => {
                let by_time = mul_div_ceil(level, next.count, self.count);
                let state = by_level
                    .zip(by_time)
                    .and_then(|(l, t)| (u128::from(now) * next.count).checked_add(l.max(t)))
                    .filter(|&state| state <= u128::from(u64::MAX))
                    .ok_or(Error::ClockOutOfRange)?;
                state - u128::from(now) * next.count
            }
        };
        *self = BucketModel {
            x: carried,
            latest: now,
            ..next
        };
        Ok(())
    }

    /// The latest time seen.
    pub fn latest(&self) -> u64 {
        self.latest
    }
}

/// A fixed window (docs/semantics.md#fixed-window): windows [o + (i − 1)·W, o + i·W) numbered from 0, at most N units
/// each; an earlier window than the stored one is judged in the stored one.
#[derive(Clone, Debug)]
pub struct WindowModel {
    /// N.
    pub limit: u64,
    /// W.
    pub window: u64,
    /// o.
    pub offset: u64,
    index: u128,
    count: u64,
}

impl WindowModel {
    /// A fresh window counter.
    pub fn new(limit: u64, window: u64, offset: u64) -> WindowModel {
        WindowModel {
            limit,
            window,
            offset,
            index: 0,
            count: 0,
        }
    }

    /// The largest window number the engine's word holds: it keeps the count in
    /// ⌊log₂ N⌋ + 1 bits and the window number in the rest (the documented span).
    fn max_index(&self) -> u128 {
        u128::from(u64::MAX >> (64 - self.limit.leading_zeros()))
    }

    fn index_of(&self, now: u64) -> Result<u128, Error> {
        let w = u128::from(self.window);
        let i = (u128::from(now) + w - u128::from(self.offset)) / w;
        if i > self.max_index() {
            Err(Error::ClockOutOfRange)
        } else {
            Ok(i)
        }
    }

    /// The documented span: o + (2^(64−k) − 1)·W − 1, capped at `u64::MAX`.
    pub fn span(&self) -> u64 {
        sat64(u128::from(self.offset) + self.max_index() * u128::from(self.window) - 1)
    }

    /// A decision (`spend = false` for a peek).
    pub fn decide(&mut self, now: u64, cost: u64, spend: bool) -> Result<Report, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        let current = self.index_of(now)?;
        if current > self.index {
            self.index = current;
            self.count = 0;
        }
        let end = u128::from(self.offset) + self.index * u128::from(self.window);
        let to_end = sat64(end - u128::from(now));
        let (outcome, retry) = if cost > self.limit {
            (Outcome::Never, None)
        } else if u128::from(self.count) + u128::from(cost) <= u128::from(self.limit) {
            if spend {
                self.count += cost;
            }
            (Outcome::Allowed, Some(0))
        } else {
            (Outcome::Limited, Some(to_end))
        };
        Ok(Report {
            outcome,
            used: self.count,
            remaining: self.limit - self.count,
            retry_after: retry,
            reset_after: to_end,
            limit: self.limit,
        })
    }

    /// `true` if nothing counts at `now` and no later time: the stored window is over, or it is
    /// `now`'s window with a count of zero (a later stored window is a record of time).
    pub fn is_drained(&self, now: u64) -> bool {
        self.index_of(now).map_or(true, |i| {
            i > self.index || (i == self.index && self.count == 0)
        })
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.index = 0;
        self.count = 0;
    }

    /// Changes the quota at `now`: a drained state becomes a new one in `now`'s window;
    /// otherwise the stored count, capped at the new limit, goes into the new quota's window
    /// holding the stored window's last tick (or `now`'s, if later): the latest time the state
    /// may have seen, so a clock that stepped back cannot move the count into an earlier window.
    pub fn set_quota(
        &mut self,
        limit: u64,
        window: u64,
        offset: u64,
        now: u64,
    ) -> Result<(), Error> {
        let next = WindowModel::new(limit, window, offset);
        let current_new = next.index_of(now)?;
        self.index_of(now)?;
        let (index, count) = if self.is_drained(now) {
            (current_new, 0)
        } else {
            let end = u128::from(self.offset) + self.index * u128::from(self.window);
            let at = sat64(end.saturating_sub(1)).max(now);
            (next.index_of(at)?, self.count.min(limit))
        };
        *self = WindowModel {
            index,
            count,
            ..next
        };
        Ok(())
    }
}

/// A strict sliding-window log (docs/semantics.md#sliding-window-log): every admitted (time, cost), judged at the latest time
/// seen; a unit counts while `time + W > t`.
#[derive(Clone, Debug)]
pub struct LogModel {
    /// N.
    pub limit: u64,
    /// W.
    pub window: u64,
    entries: Vec<(u64, u64)>,
    latest: u64,
}

impl LogModel {
    /// An empty log.
    pub fn new(limit: u64, window: u64) -> LogModel {
        LogModel {
            limit,
            window,
            entries: Vec::new(),
            latest: 0,
        }
    }

    fn counts_at(&self, time: u64, t: u128) -> bool {
        u128::from(time) + u128::from(self.window) > t
    }

    fn units_at(&self, t: u128) -> u64 {
        self.entries
            .iter()
            .filter(|&&(time, _)| self.counts_at(time, t))
            .map(|&(_, c)| c)
            .sum()
    }

    /// Units in the window at the latest time seen (moved to `now` if later).
    pub fn used(&mut self, now: u64) -> u64 {
        self.latest = self.latest.max(now);
        self.units_at(u128::from(self.latest))
    }

    /// A decision (`record = false` for a peek).
    pub fn decide(&mut self, now: u64, cost: u64, record: bool) -> Result<Report, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        self.latest = self.latest.max(now);
        let t = u128::from(self.latest);
        let w = u128::from(self.window);
        let used = self.units_at(t);
        let gone = |time: u64| sat64(u128::from(time) + w - u128::from(now));
        let newest = self
            .entries
            .iter()
            .filter(|&&(time, _)| self.counts_at(time, t))
            .map(|&(time, _)| time)
            .max();
        let reset = |newest: Option<u64>| newest.map_or(0, gone);
        let limit = self.limit;
        let report = |outcome, used: u64, retry_after, reset_after| Report {
            outcome,
            used,
            remaining: limit - used,
            retry_after,
            reset_after,
            limit,
        };
        if cost > limit {
            return Ok(report(Outcome::Never, used, None, reset(newest)));
        }
        if used + cost <= limit {
            if !record {
                return Ok(report(Outcome::Allowed, used, Some(0), reset(newest)));
            }
            self.entries.push((self.latest, cost));
            let after = used + cost;
            return Ok(report(Outcome::Allowed, after, Some(0), gone(self.latest)));
        }
        // The least Δ such that at now + Δ (≥ latest, else it is judged at latest, which just
        // failed) the units still in the window leave room for `cost`. It is one of the times
        // an entry leaves the window.
        let retry = self
            .entries
            .iter()
            .filter(|&&(time, _)| self.counts_at(time, t))
            .map(|&(time, _)| u128::from(time) + w - u128::from(now))
            .filter(|&delta| self.units_at(u128::from(now) + delta) + cost <= limit)
            .min()
            .expect("a full window empties eventually");
        Ok(report(
            Outcome::Limited,
            used,
            Some(sat64(retry)),
            reset(newest),
        ))
    }

    /// Earliest time at or after `now` a request of `cost` passes with no other traffic.
    pub fn next_admit_time(&mut self, now: u64, cost: u64) -> Option<u64> {
        let d = self.decide(now, cost, false).ok()?;
        now.checked_add(d.retry_after?)
    }

    /// Forgets every entry; the latest time is kept.
    pub fn reset(&mut self) {
        self.entries.clear();
    }
}
