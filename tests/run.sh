#!/usr/bin/env bash
# Runs every test suite (gtest unit tests, then bats end-to-end) and ends with one line:
# "N passed, N failed". Needs root. Usage: tests/run.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
export SHALE_BIN="$PWD/$BUILD/shale" PROBE_BIN="$PWD/$BUILD/shale_probe"
passed=0
failed=0
log_dir=$(mktemp -d /tmp/shale-tests.XXXXXX)

echo "== unit tests (gtest)"
"$BUILD/shale_unit_tests" --gtest_brief=1 >"$log_dir/gtest.log" 2>&1
gt_rc=$?
tail -n 40 "$log_dir/gtest.log" | grep -E '^\[  (FAILED|PASSED|SKIPPED) ' || true
gp=$(grep -cE '^\[       OK \]' "$log_dir/gtest.log" || true)
gf=$(grep -E '^\[  FAILED  \] [0-9]+ tests?, listed below' "$log_dir/gtest.log" | grep -oE '[0-9]+' | head -1)
gf=${gf:-0}
# --gtest_brief hides OK lines: count from the summary instead.
gtotal=$(grep -oE '^\[==========\] [0-9]+ tests? from' "$log_dir/gtest.log" | grep -oE '[0-9]+' | head -1)
if [ -n "${gtotal:-}" ]; then gp=$((gtotal - gf)); fi
if [ "$gt_rc" != 0 ] && [ "$gf" = 0 ]; then
  gf=1  # crashed before its summary
  cat "$log_dir/gtest.log" | tail -n 30
fi
grep -E '^\[  FAILED  \]' "$log_dir/gtest.log" | sort -u || true
echo "gtest: $gp passed, $gf failed"
passed=$((passed + gp)); failed=$((failed + gf))

echo "== end-to-end tests (bats)"
bats --tap tests/bats >"$log_dir/bats.tap" 2>&1
cat "$log_dir/bats.tap"
bp=$(grep -cE '^ok ' "$log_dir/bats.tap" || true)
bf=$(grep -cE '^not ok ' "$log_dir/bats.tap" || true)
echo "bats: $bp passed, $bf failed"
passed=$((passed + bp)); failed=$((failed + bf))

rm -rf "$log_dir"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
