//! Pacing (docs/semantics.md#client-toolkit): "when may I send next" — the earliest time at which the client's own
//! mirror of the server's limiter would admit the request — and the sync of that mirror with
//! what the server says.
//!
//! # Safety margins for network jitter
//!
//! A request sent at t reaches the server at t + d, with d in `0..=J` ticks. Jitter can bunch
//! requests that were well spaced when sent, so a mirror identical to the server's limiter is
//! not enough. Two margins restore the guarantee, whatever the server's clock alignment:
//!
//! - **Leaky bucket** (ShopBase): a mirror with the same rate C/P and a burst smaller by
//!   ⌈J·C/P⌉ ([`safe_burst`]). Sends that conform to GCRA with tolerance τ conform, after delays
//!   in `0..=J`, to GCRA with tolerance τ + J, and J·C/P requests of burst are worth J ticks of
//!   tolerance. ShopBase (30, 2/s) with J = 200 ms: a mirror of 29, 2/s.
//! - **Window** (TikTok Shop): a sliding log of the same limit over W + J ([`safe_window`]). The
//!   requests reaching the server in any window of W ticks were sent within W + J ticks, where
//!   the client allowed at most N. The sustained rate is N/(W + J): 97.5 % of 50/s for J = 25 ms.
//!
//! # Sync
//!
//! [`Pacer::observe_call_limit`] takes a server's `used/limit` header and raises the mirror so
//! that the mirror's `remaining` is at most the server's (`limit − used`): with a mirror of the
//! server's own burst, that is the sync rule of docs/semantics.md#client-toolkit, "raise the level to at least `used`"; with a margin, it
//! keeps the margin. It is applied at the time the request was **sent**: the server measured its
//! level after that, and the margin covers the difference. It never lowers the level.
//! [`Pacer::block_until`] makes a 429's `Retry-After` a hard floor for every later send.

use crate::{Decision, Error, LeakyBucket, Outcome, Quota, SlidingLog, WindowQuota};

/// A client-side copy of a server's limiter, as the [`Pacer`] uses it.
pub trait Mirror {
    /// Would a request of `cost` be admitted at `now`? Spends nothing.
    fn peek(&mut self, now: u64, cost: u64) -> Result<Decision, Error>;
    /// Decides on (and, if admitted, records) a request of `cost` at `now`.
    fn decide(&mut self, now: u64, cost: u64) -> Result<Decision, Error>;
    /// The capacity: a bucket's burst, a window's limit.
    fn capacity(&self) -> u64;
    /// Raises the units in use at `at` to at least `used`; never lowers them.
    fn raise_to(&mut self, at: u64, used: u64) -> Result<(), Error>;
}

impl Mirror for LeakyBucket {
    fn peek(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        LeakyBucket::peek(self, now, cost)
    }
    fn decide(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        LeakyBucket::decide(self, now, cost)
    }
    fn capacity(&self) -> u64 {
        self.quota().burst()
    }
    fn raise_to(&mut self, at: u64, used: u64) -> Result<(), Error> {
        self.raise_level_to(at, used)
    }
}

/// A shared bucket (for example a `static`) as a mirror: several pacers, one mirror, lock-free.
/// Each pacer keeps its own `Retry-After` block ([`Pacer::block_until`]); apply a 429's to all.
impl Mirror for &LeakyBucket {
    fn peek(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        LeakyBucket::peek(self, now, cost)
    }
    fn decide(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        LeakyBucket::decide(self, now, cost)
    }
    fn capacity(&self) -> u64 {
        self.quota().burst()
    }
    fn raise_to(&mut self, at: u64, used: u64) -> Result<(), Error> {
        self.raise_level_to(at, used)
    }
}

impl<const CAP: usize> Mirror for SlidingLog<CAP> {
    fn peek(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        SlidingLog::peek(self, now, cost)
    }
    fn decide(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        SlidingLog::decide(self, now, cost)
    }
    fn capacity(&self) -> u64 {
        self.quota().limit()
    }
    /// Records the units the server counted and the log did not, at `at` (they leave the
    /// window W later, like real entries).
    fn raise_to(&mut self, at: u64, used: u64) -> Result<(), Error> {
        let have = self.used(at);
        let extra = used.min(self.quota().limit()).saturating_sub(have);
        if extra > 0 {
            let _ = SlidingLog::decide(self, at, extra)?;
        }
        Ok(())
    }
}

/// A leaky-bucket mirror quota that stays safe under network jitter of up to `jitter` ticks:
/// the same rate, a burst smaller by ⌈jitter · C / P⌉. [`Error::CapacityExceeded`] if nothing
/// of the burst would be left.
///
/// ```
/// use tollgate::client::safe_burst;
/// use tollgate::Quota;
/// let shopbase = Quota::new(30, 2, 1_000).unwrap(); // milliseconds
/// let mirror = safe_burst(&shopbase, 200).unwrap(); // up to 200 ms of jitter
/// assert_eq!((mirror.burst(), mirror.count(), mirror.period()), (29, 2, 1_000));
/// ```
pub fn safe_burst(server: &Quota, jitter: u64) -> Result<Quota, Error> {
    let margin =
        (u128::from(jitter) * u128::from(server.count())).div_ceil(u128::from(server.period()));
    let margin = u64::try_from(margin).unwrap_or(u64::MAX);
    if margin >= server.burst() {
        return Err(Error::CapacityExceeded);
    }
    Quota::with_min_span(server.burst() - margin, server.count(), server.period(), 0)
}

/// A window mirror quota that stays safe under network jitter of up to `jitter` ticks: the same
/// limit over `window + jitter` ticks. [`Error::InvalidArgument`] if that overflows.
///
/// ```
/// use tollgate::client::safe_window;
/// use tollgate::WindowQuota;
/// let tiktok = WindowQuota::new(50, 1_000).unwrap();
/// assert_eq!(safe_window(&tiktok, 10).unwrap().window(), 1_010);
/// ```
pub fn safe_window(server: &WindowQuota, jitter: u64) -> Result<WindowQuota, Error> {
    let window = server
        .window()
        .checked_add(jitter)
        .ok_or(Error::InvalidArgument)?;
    WindowQuota::new(server.limit(), window)
}

/// The pacer's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pace {
    /// Send now; the mirror has counted the request.
    Send,
    /// Not before this time (in ticks); nothing was counted.
    Wait(u64),
    /// The cost exceeds the mirror's capacity: no time will do.
    Never,
}

/// A pacer: a mirror of the server's limiter, plus the time before which a server's
/// `Retry-After` forbids sending.
///
/// ```
/// use tollgate::client::{Pace, Pacer};
/// use tollgate::{LeakyBucket, Quota};
/// // ShopBase (30, 2 per second), milliseconds, no margin.
/// let mut pacer = Pacer::new(LeakyBucket::new(Quota::new(30, 2, 1_000).unwrap()));
/// for _ in 0..30 {
///     assert_eq!(pacer.acquire(0, 1).unwrap(), Pace::Send);
/// }
/// assert_eq!(pacer.acquire(0, 1).unwrap(), Pace::Wait(500));
/// assert_eq!(pacer.next_send(0, 1).unwrap(), Some(500));
/// // A 429 said "Retry-After: 3": nothing before 3 s.
/// pacer.block_until(3_000);
/// assert_eq!(pacer.acquire(600, 1).unwrap(), Pace::Wait(3_000));
/// assert_eq!(pacer.acquire(3_000, 1).unwrap(), Pace::Send);
/// ```
#[derive(Clone, Debug)]
pub struct Pacer<M> {
    mirror: M,
    blocked_until: u64,
}

impl<M: Mirror> Pacer<M> {
    /// A pacer over `mirror`, not blocked.
    pub const fn new(mirror: M) -> Pacer<M> {
        Pacer {
            mirror,
            blocked_until: 0,
        }
    }

    /// The mirror.
    pub const fn mirror(&self) -> &M {
        &self.mirror
    }

    /// The time before which nothing may be sent (0: not blocked).
    pub const fn blocked_until(&self) -> u64 {
        self.blocked_until
    }

    /// The earliest time at or after `now` at which a request of `cost` may be sent, with no
    /// other traffic; `None` if never (the cost exceeds the capacity). Spends nothing.
    pub fn next_send(&mut self, now: u64, cost: u64) -> Result<Option<u64>, Error> {
        let d = self.mirror.peek(now, cost)?;
        Ok(d.retry_after
            .map(|r| now.saturating_add(r).max(self.blocked_until)))
    }

    /// May a request of `cost` be sent at `now`? If so the mirror counts it ([`Pace::Send`]);
    /// otherwise [`Pace::Wait`] says until when.
    pub fn acquire(&mut self, now: u64, cost: u64) -> Result<Pace, Error> {
        if now < self.blocked_until {
            return Ok(match self.next_send(now, cost)? {
                Some(t) => Pace::Wait(t),
                None => Pace::Never,
            });
        }
        let d = self.mirror.decide(now, cost)?;
        Ok(match (d.outcome, d.retry_after) {
            (Outcome::Allowed, _) => Pace::Send,
            (_, Some(r)) => Pace::Wait(now.saturating_add(r)),
            (_, None) => Pace::Never,
        })
    }

    /// Books the earliest time at or after `now` for a request of `cost` and returns it: the
    /// mirror counts the request at that time, so later calls book later times. `None` if never.
    pub fn reserve(&mut self, now: u64, cost: u64) -> Result<Option<u64>, Error> {
        let mut t = now;
        loop {
            let Some(at) = self.next_send(t, cost)? else {
                return Ok(None);
            };
            if self.mirror.decide(at, cost)?.is_allowed() {
                return Ok(Some(at));
            }
            // Another user of a shared mirror took the slot: look again from there.
            t = at;
        }
    }

    /// Takes in a server's `used/limit` for a request sent at `sent_at`: the mirror's remaining
    /// becomes at most the server's (`limit − used`); never lowered.
    pub fn observe_call_limit(
        &mut self,
        sent_at: u64,
        header: super::CallLimit,
    ) -> Result<(), Error> {
        let target = self.mirror.capacity().saturating_sub(header.remaining());
        self.mirror.raise_to(sent_at, target)
    }

    /// No request before `until` (a 429's `Retry-After`, in ticks, added to the time it was
    /// received). A later block never shortens an earlier one.
    pub fn block_until(&mut self, until: u64) {
        self.blocked_until = self.blocked_until.max(until);
    }

    /// Reads a response's headers and applies them: `call_limit` is the value of
    /// `X-Sb-Shop-Api-Call-Limit` (if any) for the request sent at `sent_at`, `retry_after` the
    /// value of `Retry-After` (if any) received at `now` (Unix time `now_unix`, a clock of
    /// `ticks_per_second`). Each well-formed value is applied; a malformed one is not, and the
    /// first is reported as [`Error::Malformed`].
    pub fn sync(
        &mut self,
        sent_at: u64,
        now: u64,
        now_unix: u64,
        ticks_per_second: u64,
        call_limit: Option<&[u8]>,
        retry_after: Option<&[u8]>,
    ) -> Result<(), Error> {
        let mut result = Ok(());
        if let Some(v) = call_limit {
            match super::parse_call_limit(v) {
                Ok(h) => self.observe_call_limit(sent_at, h)?,
                Err(e) => result = Err(e),
            }
        }
        if let Some(v) = retry_after {
            match super::parse_retry_after(v, now_unix) {
                Ok(s) => self
                    .block_until(now.saturating_add(super::seconds_to_ticks(s, ticks_per_second))),
                Err(e) => result = result.and(Err(e)),
            }
        }
        result
    }
}
