#!/usr/bin/env bash
# The vendor-policy example (the demo before the gateway) must run and tell the truth: 30 of 40
# simultaneous ShopBase calls pass, then 4 of every 5 calls at 2.5/s (the bucket drains 2/s);
# TikTok Shop passes 50 in each 1 s window.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(cargo run -q --release -p tollgate --example vendor_policies)
echo "$out"
grep -q '46 passed, 14 got 429' <<<"$out"
grep -q '100 passed, 20 got 429' <<<"$out"
grep -q 'RateLimit-Policy: "shopbase";q=30;w=15' <<<"$out"
grep -q 'limit=250&page=401: offset 100250 -> 429' <<<"$out"
echo "examples: 4 passed, 0 failed"
