//! # tollgate-gateway — a rate-limiting HTTP reverse proxy
//!
//! An HTTP/1.1 reverse proxy that enforces rate limits with `tollgate` in front of real
//! upstreams, configured by a TOML file (`docs/gateway.md`):
//!
//! - [`config`]: the config file and the flags, validated with errors that name the line;
//! - [`server`]: the request pipeline (path normalisation, routes, keys, the pagination rule,
//!   concurrency caps, rate decisions, proxying), the connection cap and deadlines, SIGHUP
//!   reload;
//! - [`limits`]: where decisions are made — key tables (in-process, or in shared-memory regions
//!   that the gateways of one host map together) or Redis (shared or hybrid), behind one small
//!   trait;
//! - [`path`]: one normal form per path, and the decoded query the pagination rule reads;
//! - [`conn`]: per-connection idle and write deadlines;
//! - [`observe`]: Prometheus metrics and the JSON access log;
//! - [`upstream`]: the demo's stand-in upstream;
//! - [`load`] and [`client`]: the demo's load program and its small HTTP client.
//!
//! Run the demo: `bash scripts/demo.sh` (`docs/demo.md`).

pub mod client;
pub mod config;
pub mod conn;
pub mod limits;
pub mod load;
pub mod observe;
pub mod path;
pub mod server;
pub mod upstream;
