#!/usr/bin/env bash
# README command 1: the demo. Builds and runs the vendor-policy example.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p tollgate --example vendor_policies
