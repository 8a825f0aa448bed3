#!/usr/bin/env bash
# The one test command (README "Run every test"): every suite of the project, in order.
# Each suite is a script in scripts/ that installs what it needs, idempotently. Suites listed in
# TOLLGATE_ONLY (space-separated names) run alone, for local iteration: TOLLGATE_ONLY="rust c".
set -uo pipefail
cd "$(dirname "$0")/.."

suites=(rust loom c python python-web firmware redis gateway fuzz examples docs package cross nginx)
passed=0
failed=0
failed_names=()
start=$(date +%s)
for suite in "${suites[@]}"; do
  if [ -n "${TOLLGATE_ONLY:-}" ] && [[ " $TOLLGATE_ONLY " != *" $suite "* ]]; then
    continue
  fi
  script="scripts/test-$suite.sh"
  [ -f "$script" ] || continue
  t0=$(date +%s)
  echo "=== suite: $suite"
  if bash "$script"; then
    passed=$((passed + 1))
    echo "=== suite $suite: ok ($(( $(date +%s) - t0 )) s)"
  else
    failed=$((failed + 1))
    failed_names+=("$suite")
    echo "=== suite $suite: FAILED ($(( $(date +%s) - t0 )) s)"
  fi
done
echo "=== total $(( $(date +%s) - start )) s"
[ "$failed" -eq 0 ] || echo "failed suites: ${failed_names[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
