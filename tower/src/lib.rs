//! # tollgate-tower — tollgate for Rust services
//!
//! Both sides of a rate-limited API, on tollgate's exact engine:
//!
//! - **Servers**: [`RateLimitLayer`], a tower [`Layer`](tower_layer::Layer) for axum, hyper or
//!   any tower stack. Per route a [`Policy`]: whose limit a request spends ([`KeyExtractor`]:
//!   headers, the peer's address, a closure), the quotas ([`LocalTable`], a lock-free key
//!   table in this process; `RegionTable`, the same table in a shared-memory region, one limit
//!   across the processes of one host; `RedisBackend`, one limit across a fleet; or any
//!   [`Backend`]),
//!   shadow mode, and the answers: 429 and 503 with `RateLimit`,
//!   `RateLimit-Policy`, `Retry-After` and, for ShopBase, `X-Sb-Shop-Api-Call-Limit`; the
//!   same headers on the requests that pass.
//! - **Clients** (feature `reqwest`, on by default): [`PacedMiddleware`], a reqwest-middleware
//!   that paces an app's calls per (app, shop[, api]) by a vendor's limits, syncs with the
//!   vendor's headers and retries what can succeed, with backoff, jitter and a retry budget,
//!   waiting on tokio's timer. (Why a reqwest-middleware rather than a tower service around the
//!   client: see [`PacedMiddleware`].)
//!
//! The semantics (leaky bucket, fixed window, outcomes, headers, client toolkit) are tollgate's:
//! see `docs/semantics.md`.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use axum::{routing::get, Router};
//! use tollgate_tower::{KeyExtractor, LocalTable, Policy, RateLimitLayer};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // ShopBase's policy per (app, shop), and 100 per second per client IP elsewhere.
//! let tps = LocalTable::TICKS_PER_SECOND;
//! let per_ip = LocalTable::buckets(&[tollgate::Quota::per_second(100, 100, tps)?], 100_000)?;
//! let limits = RateLimitLayer::builder()
//!     .route("/shopbase", Policy::shopbase(
//!         LocalTable::shopbase(15_000)?,
//!         KeyExtractor::id_pair("x-app-id", "x-shop-id"),
//!     ))
//!     .route("/", Policy::new("per-ip", per_ip, KeyExtractor::peer_ip())?)
//!     .build();
//! let app = Router::new()
//!     .route("/shopbase/orders", get(|| async { "orders" }))
//!     .route("/", get(|| async { "home" }))
//!     .layer(limits);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // The peer's address reaches the layer through axum's ConnectInfo.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `axum` (default): [`KeyExtractor::peer_ip`] reads axum's `ConnectInfo<SocketAddr>`.
//! - `reqwest` (default): the client middleware.
//! - `shared` (default; Unix, nothing elsewhere): `RegionTable`, a key table in a shared-memory
//!   region, so that several processes of one host (pre-forked workers, instances sharing a
//!   port through `SO_REUSEPORT`) enforce one limit per key. Each process opens the same path:
//!
//! ```no_run
//! # #[cfg(unix)] {
//! use tollgate_tower::{KeyExtractor, Policy, RateLimitLayer, RegionTable};
//! // In every process: one ShopBase bucket per (app, shop) for all of them.
//! let shops = RegionTable::shopbase("/dev/shm/myapp-shopbase", 15_000)?;
//! let limits = RateLimitLayer::new(Policy::shopbase(
//!     shops,
//!     KeyExtractor::id_pair("x-app-id", "x-shop-id"),
//! ));
//! # drop(limits);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - `redis`: `RedisBackend`, one limit across a fleet of servers, in Redis.
//!
//! A server that needs none of them: `default-features = false`.
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod backend;
mod body;
#[cfg(feature = "reqwest")]
mod client;
mod key;
mod layer;
mod local;
#[cfg(feature = "redis")]
mod redis;
#[cfg(all(feature = "shared", unix))]
mod region;
mod tables;
mod values;

pub use backend::{Backend, TierInfo};
pub use body::ResponseBody;
#[cfg(feature = "reqwest")]
pub use client::{
    ClientStats, NeverError, PaceKey, PacedMiddleware, PacedMiddlewareBuilder, Vendor,
    MAX_WINDOW_LIMIT,
};
pub use key::{KeyExtractor, KeyRejection, RequestHead, RequestKey};
pub use layer::{
    Policy, PolicyStats, RateLimit, RateLimitLayer, RateLimitLayerBuilder, ResponseFuture,
    SHADOW_HEADER,
};
pub use local::{LocalTable, LocalTableError, TableCounters};
#[cfg(feature = "redis")]
pub use redis::{RedisBackend, RedisDecision};
#[cfg(all(feature = "shared", unix))]
pub use region::RegionTable;
#[cfg(feature = "reqwest")]
pub use tollgate::client::Jitter;
