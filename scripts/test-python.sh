#!/usr/bin/env bash
# Python: build and install the package into a FRESH virtual environment (`pip install ./python`
# runs cargo and puts libtollgate inside the package), then run the tests against the installed
# package with no TOLLGATE_LIB. Needs only python3 (with venv) and cargo; pip fetches the build
# dependency (setuptools) and pytest from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

venv="$repo/target/python-test-venv"
rm -rf "$venv"
python3 -m venv "$venv"
py="$venv/bin/python"
# gunicorn: tests/test_gunicorn.py serves the WSGI middleware from several pre-forked workers.
"$py" -m pip install --quiet --disable-pip-version-check "pytest>=7" "gunicorn>=21"
# The build reuses the workspace's target/ (cargo's default for the workspace), so a library
# already built by `cargo build -p tollgate-ffi --release` is not compiled again.
"$py" -m pip install --quiet --disable-pip-version-check ./python

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
exit "$status"
