//! # tollgate-gateway — the demo
//!
//! An HTTP gateway enforcing two vendors' published rate limits with `tollgate`, and a load
//! program whose clients stay under them (or, deliberately, do not):
//!
//! - [`server`]: the gateway. Per (app, shop) from the `X-App-Id` and `X-Shop-Id` headers:
//!   ShopBase on `/shopbase/...` (leaky bucket 30 @ 2/s, `X-Sb-Shop-Api-Call-Limit`, 429 with
//!   `Retry-After`, the deep-pagination rule on GET), TikTok Shop on `/tiktok/{api}` (50 per
//!   second per (app, shop, api)), a concurrency cap that sheds with 503, shadow mode, per-shop
//!   tiers, key tables sized by a flag whose counters are printed on exit.
//! - [`load`]: the load program — a client built on `tollgate::client` (pacing, header sync,
//!   backoff with jitter, retry budget), a naive client and bursts — and its summary.
//! - [`client`]: the small HTTP client both use (hyper, one keep-alive connection).
//! - [`config`]: the gateway's flags and config file.
//!
//! Run it: `bash scripts/demo.sh`; see `docs/demo.md`.

pub mod client;
pub mod config;
pub mod load;
pub mod server;
