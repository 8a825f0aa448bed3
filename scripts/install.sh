#!/usr/bin/env bash
# Installs the C library: header, static and shared library, pkg-config files.
#
#   bash scripts/install.sh --prefix DIR [--no-build]
#
# DIR/include/tollgate.h, DIR/lib/libtollgate.{a,so}, DIR/lib/pkgconfig/tollgate.pc (shared)
# and tollgate-static.pc (static). Then, with PKG_CONFIG_PATH=DIR/lib/pkgconfig:
#   cc app.c $(pkg-config --cflags --libs tollgate)          # shared (run with DIR/lib on the
#                                                             # loader path, or add -Wl,-rpath)
#   cc app.c $(pkg-config --cflags --libs tollgate-static)   # static
# --no-build installs what `cargo build -p tollgate-ffi --release` already built.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=""
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$prefix" ] || { echo "install.sh: --prefix DIR is required" >&2; exit 2; }
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"

target="${CARGO_TARGET_DIR:-target}"
if [ "$build" = 1 ]; then
  cargo build -p tollgate-ffi --release --locked
fi
for f in "$target/release/libtollgate.a" "$target/release/libtollgate.so"; do
  [ -f "$f" ] || { echo "install.sh: $f is missing (build first, or drop --no-build)" >&2; exit 1; }
done

# The version is the header's (a test ties it to Cargo.toml).
version="$(sed -n 's/^#define TG_VERSION_STRING "\(.*\)"$/\1/p' include/tollgate.h)"
# What a program linking the static library also needs (rustc --print native-static-libs on
# Linux/glibc).
native_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 644 include/tollgate.h "$prefix/include/tollgate.h"
install -m 644 "$target/release/libtollgate.a" "$prefix/lib/libtollgate.a"
install -m 755 "$target/release/libtollgate.so" "$prefix/lib/libtollgate.so"
for pc in tollgate tollgate-static; do
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@NATIVE_LIBS@|$native_libs|g" \
    "ffi/$pc.pc.in" > "$prefix/lib/pkgconfig/$pc.pc"
done
echo "installed tollgate $version to $prefix"
