#!/usr/bin/env bash
# Python, web: the server middleware (ASGI, WSGI, Flask, Django) under real servers (uvicorn,
# gunicorn) and the paced clients (requests, httpx) against a fake vendor server, all on
# 127.0.0.1. Installs the package with its `web-test` extra (versions pinned by
# python/tests_web/constraints.txt) from PyPI into a FRESH virtual environment, then runs
# python/tests_web against the installed package. Needs only python3 (with venv) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

venv="$repo/target/python-web-venv"
rm -rf "$venv"
python3 -m venv "$venv"
py="$venv/bin/python"
pip=("$py" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" -c python/tests_web/constraints.txt "./python[web-test]"

unset TOLLGATE_LIB
cd "$venv"
status=0
TOLLGATE_EXPECT_INSTALLED=1 timeout 600 "$venv/bin/pytest" -p no:cacheprovider -q \
  --rootdir "$repo/python/tests_web" -c "$repo/python/pyproject.toml" "$repo/python/tests_web" \
  --durations=5 || status=$?
if [ "$status" -eq 5 ]; then
  echo "test-python-web: pytest collected no tests" >&2
fi
exit "$status"
