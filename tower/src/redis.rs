//! [`RedisBackend`] (feature `redis`): one limit across a fleet of servers, kept in Redis by
//! `tollgate-redis`, whose decisions are identical to the in-process table's.
//!
//! `tollgate-redis` talks to Redis synchronously; each decision runs on tokio's blocking pool
//! (`spawn_blocking`), so the server's worker threads never wait on the network. Every server of
//! the fleet must use the same clock and the same [`Seed`]: the clock is Unix time in the
//! limiter's ticks (`Config::ticks_per_second`), and the seed folds byte-string keys alike on
//! every node.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tollgate::key::{Key, Seed};
use tollgate::{header, Decision, Error};
use tollgate_redis::{Limit, RedisLimiter};

use crate::backend::{Backend, TierInfo};

/// A [`Backend`] over a shared [`RedisLimiter`]: one quota per tier, keys under a namespace.
///
/// ```no_run
/// use tollgate::key::Seed;
/// use tollgate_redis::{Config, RedisLimiter};
/// use tollgate_tower::{KeyExtractor, Policy, RateLimitLayer, RedisBackend};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ms = 1_000; // the fleet's clock: Unix time in milliseconds
/// let limiter = RedisLimiter::new(Config::new("redis://127.0.0.1:6379/", ms))?;
/// let shopbase = tollgate::presets::shopbase::quota(ms)?;
/// // The seed is a secret shared by every server of the fleet.
/// let seed = Seed::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
/// let backend = RedisBackend::new(limiter.into(), "shopbase", &[shopbase.into()], seed)?;
/// let layer = RateLimitLayer::new(Policy::shopbase(
///     backend,
///     KeyExtractor::id_pair("x-app-id", "x-shop-id"),
/// ));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisBackend {
    limiter: Arc<RedisLimiter>,
    namespace: String,
    tiers: Vec<Limit>,
    seed: Seed,
    ticks_per_second: u64,
}

impl RedisBackend {
    /// A backend deciding in `limiter` for keys under `namespace` (distinct policies sharing one
    /// Redis need distinct namespaces), with these tiers (at least one), hashing byte-string
    /// keys with `seed`. [`Error::InvalidArgument`] for no tiers.
    pub fn new(
        limiter: Arc<RedisLimiter>,
        namespace: &str,
        tiers: &[Limit],
        seed: Seed,
    ) -> Result<RedisBackend, Error> {
        if tiers.is_empty() {
            return Err(Error::InvalidArgument);
        }
        let ticks_per_second = limiter.config().ticks_per_second;
        Ok(RedisBackend {
            limiter,
            namespace: namespace.to_owned(),
            tiers: tiers.to_vec(),
            seed,
            ticks_per_second,
        })
    }

    /// The limiter.
    pub fn limiter(&self) -> &RedisLimiter {
        &self.limiter
    }

    /// Unix time in the limiter's ticks (saturating).
    fn now(&self) -> u64 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let ticks = nanos.saturating_mul(u128::from(self.ticks_per_second)) / 1_000_000_000;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    fn run(&self, key: Key, tier: usize, cost: u64, peek: bool) -> RedisDecision {
        let Some(&limit) = self.tiers.get(tier) else {
            return RedisDecision(State::Ready(Some(Err(Error::InvalidArgument))));
        };
        let limiter = Arc::clone(&self.limiter);
        let name = format!("{}:{:032x}", self.namespace, key.get());
        let now = self.now();
        let fallback = limiter.policy_decision(&limit);
        let task = tokio::task::spawn_blocking(move || {
            if peek {
                limiter.peek(&name, limit, now, cost)
            } else {
                limiter.decide(&name, limit, now, cost)
            }
        });
        RedisDecision(State::Pending { task, fallback })
    }
}

/// A decision on tokio's blocking pool. If the task is lost (the runtime shuts down), the
/// limiter's failure policy answers.
#[derive(Debug)]
pub struct RedisDecision(State);

#[derive(Debug)]
enum State {
    /// Answered without Redis.
    Ready(Option<Result<Decision, Error>>),
    /// Waiting for the round trip; the failure policy's answer if the task is lost.
    Pending {
        task: JoinHandle<Result<Decision, Error>>,
        fallback: Decision,
    },
}

impl Future for RedisDecision {
    type Output = Result<Decision, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            State::Ready(answer) => {
                Poll::Ready(answer.take().unwrap_or(Err(Error::InvalidArgument)))
            }
            State::Pending { task, fallback } => Pin::new(task)
                .poll(cx)
                .map(|joined| joined.unwrap_or(Ok(*fallback))),
        }
    }
}

impl Backend for RedisBackend {
    type Future = RedisDecision;

    fn decide(&self, key: Key, tier: usize, cost: u64) -> RedisDecision {
        self.run(key, tier, cost, false)
    }

    fn peek(&self, key: Key, tier: usize, cost: u64) -> RedisDecision {
        self.run(key, tier, cost, true)
    }

    fn tier(&self, tier: usize) -> Option<TierInfo> {
        let tps = self.ticks_per_second;
        self.tiers.get(tier).map(|limit| match limit {
            Limit::Bucket(q) => TierInfo {
                limit: q.burst(),
                window_seconds: header::bucket_window_seconds(q, tps).unwrap_or(0),
            },
            Limit::Window(q) => TierInfo {
                limit: q.limit(),
                window_seconds: header::window_seconds(q, tps).unwrap_or(0),
            },
        })
    }

    fn ticks_per_second(&self) -> u64 {
        self.ticks_per_second
    }

    fn key_bytes(&self, bytes: &[u8]) -> Key {
        self.seed.key_bytes(bytes)
    }
}
