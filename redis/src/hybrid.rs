//! Hybrid mode: a local, in-process mirror of each key's shared state that answers clear
//! denials without a round trip.
//!
//! The mirror holds, per key, the state Redis returned with the node's latest decision on it.
//! Under one quota the shared state only grows (S = max(TAT, latest now) never decreases; a
//! window's (index, count) only moves forward), so the mirror is a **lower bound** of the shared
//! state. Admission only gets harder as the state grows, so a request the mirror denies, Redis
//! would deny too, and a denial changes nothing in Redis: answering it locally changes no other
//! decision. Every admission still goes through Redis. Hence the hybrid limiter never admits
//! more than the shared limit — and on a single node, where the mirror equals the shared state,
//! it answers exactly what [`RedisLimiter`] answers, numbers included.
//!
//! With several nodes, a local denial's numbers (`used`, `retry_after`, `reset_after`) come from
//! the lower bound, so they may be smaller than Redis's; `retry_after` is then early, never late
//! enough to hide capacity. Forgetting a mirror entry is always safe (it only costs a round trip),
//! so the mirror is bounded: when full, drained entries go first, then all of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tollgate::state::{bucket, window, Mode};
use tollgate::{Decision, Error, Outcome};

use crate::limiter::{Known, Limit, RedisLimiter, Request};

/// A [`RedisLimiter`] with a local mirror that absorbs clear denials (see the module docs).
#[derive(Debug)]
pub struct HybridLimiter {
    shared: RedisLimiter,
    mirror: Mutex<HashMap<String, Known>>,
    capacity: usize,
    local_denials: AtomicU64,
}

impl HybridLimiter {
    /// A hybrid limiter over `shared`, mirroring at most `capacity` keys.
    pub fn new(shared: RedisLimiter, capacity: usize) -> HybridLimiter {
        HybridLimiter {
            shared,
            mirror: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            local_denials: AtomicU64::new(0),
        }
    }

    /// The shared limiter underneath.
    pub fn shared(&self) -> &RedisLimiter {
        &self.shared
    }

    /// How many denials were answered locally, without a round trip.
    pub fn local_denials(&self) -> u64 {
        self.local_denials.load(Ordering::Relaxed)
    }

    /// Forgets every mirrored state (for example after an operator reset a key in Redis).
    pub fn clear_mirror(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.mirror
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides like [`RedisLimiter::decide`]; a request the mirror surely denies is answered at
    /// once.
    pub fn decide(
        &self,
        key: &str,
        limit: impl Into<Limit>,
        now: u64,
        cost: u64,
    ) -> Result<Decision, Error> {
        let request = Request::decide(key, limit, now, cost);
        let mut out = self.decide_batch(std::slice::from_ref(&request));
        out.pop().unwrap_or(Err(Error::InvalidArgument))
    }

    /// Decides a batch like [`RedisLimiter::decide_batch`]: the requests the mirror denies are
    /// answered locally, the rest in one pipelined round trip.
    pub fn decide_batch(&self, requests: &[Request<'_>]) -> Vec<Result<Decision, Error>> {
        let mut answers: Vec<Option<Result<Decision, Error>>> = vec![None; requests.len()];
        let mut remote = Vec::with_capacity(requests.len());
        {
            let mirror = self.lock();
            for (i, r) in requests.iter().enumerate() {
                match mirror.get(r.key).and_then(|k| local_denial(k, r)) {
                    Some(d) => {
                        self.local_denials.fetch_add(1, Ordering::Relaxed);
                        answers[i] = Some(Ok(if self.shared.config().shadow {
                            d.shadow()
                        } else {
                            d
                        }));
                    }
                    None => remote.push(i),
                }
            }
        }
        if !remote.is_empty() {
            let batch: Vec<Request<'_>> = remote.iter().map(|&i| requests[i]).collect();
            let results = self.shared.run(&batch);
            let mut mirror = self.lock();
            for (&i, result) in remote.iter().zip(results) {
                if let Ok((_, Some(known))) = &result {
                    self.remember(&mut mirror, requests[i].key, *known, requests[i].now);
                }
                answers[i] = Some(result.map(|(d, _)| d));
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or(Err(Error::InvalidArgument)))
            .collect()
    }

    fn remember(&self, mirror: &mut HashMap<String, Known>, key: &str, known: Known, now: u64) {
        if let Some(old) = mirror.get_mut(key) {
            // Replies of one node's concurrent requests may arrive out of order: keep the larger.
            let newer = match (*old, known) {
                (Known::Bucket(p, a), Known::Bucket(q, b)) => p != q || b > a,
                (Known::Window(p, a), Known::Window(q, b)) => p != q || b > a,
                _ => true,
            };
            if newer {
                *old = known;
            }
            return;
        }
        if mirror.len() >= self.capacity {
            mirror.retain(|_, k| !drained(k, now));
            if mirror.len() >= self.capacity {
                mirror.clear();
            }
        }
        mirror.insert(key.to_owned(), known);
    }
}

/// The denial the mirror is sure of, if any: same quota, a decision (not a peek), and the
/// mirrored lower bound already denies. A bucket's admission only gets harder as its state
/// grows; a window's only within the mirrored window (a later one starts from zero), so a
/// window is judged locally only when `now` falls in it.
fn local_denial(known: &Known, r: &Request<'_>) -> Option<Decision> {
    if r.mode == Mode::Peek {
        return None;
    }
    let decision = match (known, &r.limit) {
        (Known::Bucket(units, s), Limit::Bucket(q)) if q.units() == units => {
            bucket::step(*s, units, r.now, r.cost, Mode::Decide).ok()?.1
        }
        (Known::Window(p, s), Limit::Window(q))
            if q == p && window::index_of(q, r.now) == Ok(s.index) =>
        {
            window::step(*s, q, r.now, r.cost, Mode::Decide).ok()?.1
        }
        _ => return None,
    };
    (decision.verdict == Outcome::Limited).then_some(decision)
}

fn drained(known: &Known, now: u64) -> bool {
    match known {
        // Drained: nothing above now (reset_after 0). Forgetting is always safe.
        Known::Bucket(units, s) => {
            bucket::step(*s, units, now, 1, Mode::Peek).map_or(true, |(_, d)| d.reset_after == 0)
        }
        Known::Window(q, s) => {
            s.count == 0 || window::index_of(q, now).map_or(true, |i| i > s.index)
        }
    }
}
