#!/usr/bin/env bash
# nginx / OpenResty: the LuaJIT FFI binding (lua/resty/tollgate.lua) and the access handler
# (lua/resty/tollgate/nginx.lua) in a real nginx. Checks that the generated ffi.cdef
# declarations match include/tollgate.h, runs the binding's unit tests under LuaJIT, then
# tests/nginx/test_nginx.py: Debian's nginx with 4 workers on loopback in front of an upstream,
# driven by curl and wrk (about 30 s of load).
# Installs what it needs if missing: nginx, libnginx-mod-http-lua, lua-resty-core, luajit2
# (the OpenResty LuaJIT the module links, with its interpreter), wrk, curl, cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

missing=()
command -v nginx >/dev/null || missing+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || missing+=(libnginx-mod-http-lua)
[ -f /usr/share/lua/5.1/resty/core.lua ] || missing+=(lua-resty-core)
command -v luajit >/dev/null || missing+=(luajit2)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v cpp >/dev/null || missing+=(cpp)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  # The package starts the distribution's own server (port 80): stopped right after.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
  if command -v systemctl >/dev/null; then $sudo systemctl stop nginx 2>/dev/null || true; fi
  $sudo service nginx stop 2>/dev/null || true
fi

cargo build -p tollgate-ffi --release --locked
lib="${CARGO_TARGET_DIR:-$PWD/target}/release/libtollgate.so"

echo "--- lua/resty/tollgate/cdefs.lua is generated from include/tollgate.h"
python3 lua/tools/gen_cdefs.py --check
# ...and the check fails when the header changes: one more declaration is drift.
drifted="$(mktemp)"
sed 's/^uint32_t tg_version_number(void);$/&\nuint32_t tg_drift_probe(void);/' include/tollgate.h > "$drifted"
if python3 lua/tools/gen_cdefs.py --check --header "$drifted" 2>/dev/null; then
  rm -f "$drifted"; echo "FAILED: gen_cdefs.py --check did not notice a changed header"; exit 1
fi
rm -f "$drifted"
echo "a changed header is detected"

echo "--- binding unit tests (LuaJIT)"
TOLLGATE_LIB="$lib" luajit lua/tests/test_binding.lua

echo "--- nginx with 4 workers, curl and wrk"
TOLLGATE_LIB="$lib" timeout 600 python3 tests/nginx/test_nginx.py

echo "=== nginx suite: ok ($(( $(date +%s) - start )) s)"
