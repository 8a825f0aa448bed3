//! The async front end (feature `tokio`): the same limiter, for async gateways.

use std::sync::Arc;

use tollgate::state::Mode;
use tollgate::{Decision, Error};

use crate::limiter::{Limit, RedisLimiter, Request, Stats};

/// A [`RedisLimiter`] for async code (feature `tokio`): each call runs the blocking client on
/// tokio's blocking thread pool (`spawn_blocking`), so the runtime's worker threads never wait on
/// Redis. A call still ends by [`Config::timeout`](crate::Config::timeout) (the blocking
/// client's deadline covers every read, write and connect), so it holds a blocking thread for at
/// most that long; the decisions, failure policy, cluster routing and counters are the
/// [`RedisLimiter`]'s.
///
/// Cheap to clone (an `Arc`): clones share connections, circuit and counters.
#[derive(Clone, Debug)]
pub struct AsyncRedisLimiter {
    inner: Arc<RedisLimiter>,
}

/// An owned request, for moving into the blocking pool.
struct Owned {
    key: String,
    limit: Limit,
    now: u64,
    cost: u64,
    mode: Mode,
}

impl AsyncRedisLimiter {
    /// An async front end over `limiter`.
    pub fn new(limiter: RedisLimiter) -> AsyncRedisLimiter {
        AsyncRedisLimiter {
            inner: Arc::new(limiter),
        }
    }

    /// The blocking limiter underneath.
    pub fn blocking(&self) -> &RedisLimiter {
        &self.inner
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// [`RedisLimiter::decide`], awaited.
    ///
    /// # Panics
    /// If called outside a tokio runtime.
    pub async fn decide(
        &self,
        key: &str,
        limit: impl Into<Limit>,
        now: u64,
        cost: u64,
    ) -> Result<Decision, Error> {
        let mut out = self.batch(&[Request::decide(key, limit, now, cost)]).await;
        out.pop().unwrap_or(Err(Error::InvalidArgument))
    }

    /// [`RedisLimiter::peek`], awaited.
    ///
    /// # Panics
    /// If called outside a tokio runtime.
    pub async fn peek(
        &self,
        key: &str,
        limit: impl Into<Limit>,
        now: u64,
        cost: u64,
    ) -> Result<Decision, Error> {
        let mut out = self.batch(&[Request::peek(key, limit, now, cost)]).await;
        out.pop().unwrap_or(Err(Error::InvalidArgument))
    }

    /// [`RedisLimiter::decide_batch`], awaited: one pipelined round trip (per cluster node).
    ///
    /// # Panics
    /// If called outside a tokio runtime.
    pub async fn decide_batch(&self, requests: &[Request<'_>]) -> Vec<Result<Decision, Error>> {
        self.batch(requests).await
    }

    async fn batch(&self, requests: &[Request<'_>]) -> Vec<Result<Decision, Error>> {
        let owned: Vec<Owned> = requests
            .iter()
            .map(|r| Owned {
                key: r.key.to_owned(),
                limit: r.limit,
                now: r.now,
                cost: r.cost,
                mode: r.mode,
            })
            .collect();
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            let borrowed: Vec<Request<'_>> = owned
                .iter()
                .map(|o| Request {
                    key: &o.key,
                    limit: o.limit,
                    now: o.now,
                    cost: o.cost,
                    mode: o.mode,
                })
                .collect();
            inner.decide_batch(&borrowed)
        })
        .await;
        // The blocking task panicked or the runtime is shutting down: no Redis answer, so the
        // policy answers.
        joined.unwrap_or_else(|_| {
            requests
                .iter()
                .map(|r| Ok(self.inner.policy_decision(&r.limit)))
                .collect()
        })
    }
}
