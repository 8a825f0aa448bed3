#!/usr/bin/env bash
# Rust: formatting, clippy (warnings denied here, not in source), tests, doctests, docs, and a
# no_std build of the core with no `std` feature.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p tollgate --no-default-features --locked -- -D warnings
# tollgate-tower without its default features (a server with neither axum nor reqwest), and with
# its Redis backend (whose test needs a server: the redis suite runs it).
cargo clippy -p tollgate-tower --no-default-features --locked -- -D warnings
cargo clippy -p tollgate-tower --all-targets --features redis --locked -- -D warnings
cargo test --workspace --locked
# The client-toolkit simulations again, printing their figures (docs/semantics.md#client-toolkit).
cargo test -p tollgate --locked --test sim_shopbase --test sim_tiktok --test sim_faulty \
  --test sim_contention -- --nocapture --test-threads 1
# The ffi crate's library is also named `tollgate`: its docs go to their own directory.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --exclude tollgate-ffi --no-deps --locked
RUSTDOCFLAGS="-D warnings" cargo doc -p tollgate-ffi --no-deps --locked --target-dir target/doc-ffi
