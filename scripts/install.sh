#!/usr/bin/env bash
# Installs the C library: header, shared library with its SONAME and symlinks, static library,
# pkg-config files and a CMake package.
#
#   bash scripts/install.sh [--prefix DIR] [--no-build]
#
# DIR (default /usr/local) receives:
#   include/tollgate.h
#   lib/libtollgate.so.X.Y.Z, lib/libtollgate.so.SOVERSION -> it, lib/libtollgate.so -> SONAME
#   lib/libtollgate.a          the static library, one object exporting only tg_* symbols
#   lib/pkgconfig/tollgate.pc (shared) and tollgate-static.pc (static)
#   lib/cmake/tollgate/        find_package(tollgate CONFIG): tollgate::tollgate, tollgate::tollgate_static
#   share/doc/tollgate/        the licences
# For /usr/local or /usr nothing else is needed: `cc app.c $(pkg-config --cflags --libs tollgate)`.
# For any other DIR, export PKG_CONFIG_PATH=DIR/lib/pkgconfig (CMake: CMAKE_PREFIX_PATH=DIR); the
# shared .pc file then carries -Wl,-rpath,DIR/lib so the program finds the library when it runs.
# --no-build installs what `cargo build -p tollgate-ffi --release` already built.
# Needs binutils (ld, objcopy, ar: part of any C toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="/usr/local"
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"

target="${CARGO_TARGET_DIR:-target}"
if [ "$build" = 1 ]; then
  cargo build -p tollgate-ffi --release --locked
fi
for f in "$target/release/libtollgate.a" "$target/release/libtollgate.so"; do
  [ -f "$f" ] || { echo "install.sh: $f is missing (build first, or drop --no-build)" >&2; exit 1; }
done

# The version is the header's (a test ties it to Cargo.toml). SOVERSION is the part that changes
# when the C ABI may break: MAJOR, or 0.MINOR before 1.0 (CHANGELOG.md, "Versioning").
version="$(sed -n 's/^#define TG_VERSION_STRING "\(.*\)"$/\1/p' include/tollgate.h)"
major="${version%%.*}"
minor="${version#*.}"; minor="${minor%%.*}"
if [ "$major" = 0 ]; then soversion="0.$minor"; else soversion="$major"; fi
soname="$(readelf -d "$target/release/libtollgate.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[ "$soname" = "libtollgate.so.$soversion" ] || {
  echo "install.sh: libtollgate.so has SONAME '$soname', expected libtollgate.so.$soversion" >&2
  exit 1
}
# What a program linking the static library also needs (rustc --print native-static-libs on
# Linux/glibc).
native_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
case "$prefix" in
  /usr|/usr/local) rpath="" ;;                # directories the loader already searches
  *) rpath='-Wl,-rpath,${libdir}' ;;          # anywhere else: the program remembers where
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The static library as cargo builds it holds the whole Rust standard library with hundreds of
# global symbols, which clash with any other Rust static library in the same program. Link it
# partially into one object (keeping only what the tg_* functions reach), make every symbol but
# tg_* local, drop debug info and embedded LLVM bitcode, and archive that one object.
nm -g --defined-only "$target/release/libtollgate.a" 2>/dev/null |
  awk '$2 ~ /^[TDRB]$/ && $3 ~ /^tg_/ { print $3 }' | sort -u > "$work/exports.txt"
[ -s "$work/exports.txt" ] || { echo "install.sh: no tg_* symbols in libtollgate.a" >&2; exit 1; }
roots=()
while read -r sym; do roots+=(-u "$sym"); done < "$work/exports.txt"
ld -r --gc-sections "${roots[@]}" -o "$work/tollgate-full.o" \
  --whole-archive "$target/release/libtollgate.a" --no-whole-archive
objcopy --keep-global-symbols="$work/exports.txt" --strip-debug \
  --remove-section=.llvmbc --remove-section=.llvmcmd "$work/tollgate-full.o" "$work/tollgate.o"
ar rcs "$work/libtollgate.a" "$work/tollgate.o"

install -d "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/tollgate" \
  "$prefix/share/doc/tollgate"
install -m 644 include/tollgate.h "$prefix/include/tollgate.h"
install -m 644 "$work/libtollgate.a" "$prefix/lib/libtollgate.a"
install -m 755 "$target/release/libtollgate.so" "$prefix/lib/libtollgate.so.$version"
ln -sfn "libtollgate.so.$version" "$prefix/lib/libtollgate.so.$soversion"
ln -sfn "libtollgate.so.$soversion" "$prefix/lib/libtollgate.so"
subst=(-e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@SOVERSION@|$soversion|g"
       -e "s|@MAJOR@|$major|g" -e "s|@MINOR@|$minor|g" -e "s|@NATIVE_LIBS@|$native_libs|g"
       -e "s|@RPATH@|$rpath|g" -e "s|@SIZEOF_VOID_P@|$(getconf LONG_BIT | awk '{print $1/8}')|g")
for pc in tollgate tollgate-static; do
  sed "${subst[@]}" -e 's/ *$//' "ffi/$pc.pc.in" > "$prefix/lib/pkgconfig/$pc.pc"
done
for f in tollgate-config tollgate-config-version; do
  sed "${subst[@]}" "ffi/cmake/$f.cmake.in" > "$prefix/lib/cmake/tollgate/$f.cmake"
done
install -m 644 LICENSE-MIT LICENSE-APACHE "$prefix/share/doc/tollgate/"
if [ -z "$rpath" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then
  ldconfig
fi
echo "installed tollgate $version to $prefix (SONAME libtollgate.so.$soversion)"
