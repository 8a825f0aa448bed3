#!/usr/bin/env bash
# Documentation: every link in the tracked Markdown files resolves inside the repository (files
# and heading anchors), every anchor of docs/semantics.md named in code exists, and nothing refers
# to files outside the repository (scripts/check-links.py says exactly what is checked).
set -euo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
if python3 scripts/check-links.py; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
# The checker's own self-test: a broken link and a missing anchor must be reported.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git clone -q --no-hardlinks . "$tmp/repo" 2>/dev/null
cp scripts/check-links.py "$tmp/repo/scripts/check-links.py"
printf '# Probe\n[gone](no-such-file.md) [bad anchor](../README.md#no-such-heading)\n' \
  > "$tmp/repo/docs/probe.md"
git -C "$tmp/repo" add docs/probe.md
probe="$(python3 "$tmp/repo/scripts/check-links.py" 2>&1 || true)"
if grep -q 'no-such-file.md: no such file' <<<"$probe" &&
   grep -q 'no heading with anchor #no-such-heading' <<<"$probe"; then
  echo "check-links self-test: broken link and missing anchor reported"
  passed=$((passed + 1))
else
  echo "check-links self-test FAILED: the checker missed a planted broken link"
  failed=$((failed + 1))
fi
echo "docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
