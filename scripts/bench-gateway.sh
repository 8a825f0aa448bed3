#!/usr/bin/env bash
# The gateway under wrk (BENCHMARKS.md, "The gateway under load"): not a test, a measurement.
# Builds the gateway and the stand-in upstream optimised, installs wrk and redis-server if
# missing, then runs wrk against the same upstream (no latency) five ways: directly, through the
# gateway with no limiter, with the in-process limiter, with Redis (shared) and with Redis
# (hybrid). Each throughput run spreads requests over 1 000 keys whose quota is never reached
# (every request is decided and admitted); each exactness run sends everything to one ShopBase
# key (30 @ 2/s) and counts the 200s. Prints one table row per run.
# GATEWAY_BENCH_SECONDS (default 10), GATEWAY_BENCH_CONNECTIONS (default 64).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${GATEWAY_BENCH_SECONDS:-10}"
conns="${GATEWAY_BENCH_CONNECTIONS:-64}"

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi

cargo build -q --release --locked -p tollgate-gateway --bins
bin="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
address() {
  for _ in $(seq 100); do
    a=$(sed -n 's/^listening on //p' "$1" | head -n 1)
    if [ -n "$a" ]; then echo "$a"; return; fi
    sleep 0.1
  done
  echo "bench: no address in $1" >&2; cat "$1" >&2; exit 1
}

"$bin/tollgate-upstream" --port 0 --latency-ms 0 --threads 1 >"$work/up.log" &
pids+=($!)
up=$(address "$work/up.log")
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
  --logfile "$work/redis.log" --daemonize no &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done

# wrk script: request i goes to shop (i mod $KEYS), counts statuses per thread.
cat >"$work/keys.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  keys = tonumber(os.getenv("KEYS") or "1"); n = 0; c200 = 0; c429 = 0; other = 0
end
function request()
  n = n + 1
  return wrk.format("GET", "/shopbase/admin/products.json", {
    ["X-App-Id"] = "1", ["X-Shop-Id"] = tostring(n % keys) })
end
function response(status)
  if status == 200 then c200 = c200 + 1 elseif status == 429 then c429 = c429 + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local a, b, o = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("c200"); b = b + t:get("c429"); o = o + t:get("other") end
  io.write(string.format("STATUS %d %d %d\n", a, b, o))
  io.write(string.format("LAT %.3f %.3f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA

# Config: $1 = policy quota lines, $2 = extra top-level tables (redis).
config() {
  cat <<TOML
[server]
listen = ["127.0.0.1:0"]
threads = 2
max_connections = 4096
$2
[limits]
table_slots = 65536

[upstreams.api]
url = "http://$up"
max_in_flight = 4096
max_idle_connections = 256

[policies.shopbase]
algorithm = "leaky-bucket"
$1
call_limit_header = true
max_offset = 100000

[[routes]]
name = "shopbase"
prefix = "/shopbase"
upstream = "api"
policy = "shopbase"
key = ["id:x-app-id", "id:x-shop-id"]
TOML
}
nolimit() {
  cat <<TOML
[server]
listen = ["127.0.0.1:0"]
threads = 2
max_connections = 4096

[upstreams.api]
url = "http://$up"
max_in_flight = 4096
max_idle_connections = 256

[[routes]]
name = "shopbase"
prefix = "/shopbase"
upstream = "api"
TOML
}
generous='burst = 100000
rate = 100000'
vendor='burst = 30
rate = 2
period_ms = 1000'
shared="[redis]
url = \"redis://127.0.0.1:$redis_port/\"
mode = \"shared\"
timeout_ms = 1000
connections = 16"
hybrid="${shared/shared/hybrid}"

printf '%-26s %6s %10s %8s %8s %9s %7s %6s\n' run keys "req/s" "p50 ms" "p99 ms" "200" "429" other
run() { # name, keys, target address, config file or "-"
  local name=$1 keys=$2 target=$3 cfg=$4 gw="" addr
  if [ "$cfg" != "-" ]; then
    "$bin/tollgate-gateway" --config "$cfg" >"$work/gw.log" 2>&1 &
    gw=$!
    addr=$(address "$work/gw.log")
  else
    addr=$target
  fi
  redis-cli -p "$redis_port" flushall >/dev/null
  out=$(KEYS=$keys wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/keys.lua" "http://$addr")
  local rps p50 p99 st
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  read -r _ p50 p99 <<<"$(grep '^LAT' <<<"$out")"
  read -r _ s200 s429 so <<<"$(grep '^STATUS' <<<"$out")"
  printf '%-26s %6s %10.0f %8s %8s %9s %7s %6s\n' "$name" "$keys" "$rps" "$p50" "$p99" "$s200" "$s429" "$so"
  if [ -n "$gw" ]; then kill "$gw"; wait "$gw" 2>/dev/null || true; fi
}

nolimit >"$work/none.toml"
config "$generous" "" >"$work/local.toml"
config "$generous" "$shared" >"$work/shared.toml"
config "$generous" "$hybrid" >"$work/hybrid.toml"
config "$vendor" "" >"$work/local-v.toml"
config "$vendor" "$shared" >"$work/shared-v.toml"
config "$vendor" "$hybrid" >"$work/hybrid-v.toml"

run "upstream directly" 1000 "$up" -
run "gateway, no limiter" 1000 - "$work/none.toml"
run "gateway, in-process" 1000 - "$work/local.toml"
run "gateway, Redis shared" 1000 - "$work/shared.toml"
run "gateway, Redis hybrid" 1000 - "$work/hybrid.toml"
echo "exactness: one ShopBase key (30 @ 2/s) for ${secs} s: at most 30 + 2 x ${secs} = $((30 + 2 * secs)) admitted (wrk's run lasts a little longer)"
run "1 key, in-process" 1 - "$work/local-v.toml"
run "1 key, Redis shared" 1 - "$work/shared-v.toml"
run "1 key, Redis hybrid" 1 - "$work/hybrid-v.toml"
