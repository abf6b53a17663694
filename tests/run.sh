#!/usr/bin/env bash
# Runs every test suite (gtest unit tests, then bats end-to-end) and ends with one line:
# "N passed, N failed" (skips are counted on the line before it). Needs root.
# Usage: tests/run.sh [BUILD_DIR [ASAN_BUILD_DIR]]
#   ASAN_BUILD_DIR: a tree configured with -DSHALE_SANITIZE=ON (tools/quickstart.sh test
#   builds build-asan); its unit tests and the bats suites that drive export, commit, load
#   and run are run again under ASan/UBSan, and their results count in the same totals.
# SHALE_CI=1 (set by tools/quickstart.sh test and .ci/run): a skipped test is a failure, since
# the quickstart installs everything the tests need.
set -u
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
ASAN_BUILD="${2:-}"
passed=0
failed=0
skipped=0
suite_start=$SECONDS
log_dir=$(mktemp -d /tmp/shale-tests.XXXXXX)
trap 'rm -rf "$log_dir"' EXIT

# Adds one suite's counts to the totals; under SHALE_CI=1 its skips count as failures.
tally() {  # tally NAME PASSED FAILED SKIPPED
  local name=$1 p=$2 f=$3 s=$4
  if [ "${SHALE_CI:-0}" = 1 ] && [ "$s" -gt 0 ]; then
    echo "$name: $s skipped, counted as failed (SHALE_CI=1: every dependency is installed)"
    f=$((f + s))
  fi
  echo "$name: $p passed, $f failed, $s skipped ($((SECONDS - suite_start)) s)"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

# run_gtest NAME BINARY: the gtest binary with its summary parsed; a crash before the
# summary counts as one failure.
run_gtest() {
  local name=$1 bin=$2 log="$log_dir/$1.gtest.log"
  suite_start=$SECONDS
  echo "== $name (gtest)"
  "$bin" --gtest_brief=1 >"$log" 2>&1
  local rc=$?
  local total p f s
  total=$(grep -oE '^\[==========\] [0-9]+ tests? from .* ran' "$log" | grep -oE '[0-9]+' | head -1)
  p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | head -1)
  f=$(grep -E '^\[  FAILED  \] [0-9]+ tests?, listed below' "$log" | grep -oE '[0-9]+' | head -1)
  s=$(grep -E '^\[  SKIPPED \] [0-9]+ tests?[.,]' "$log" | grep -oE '[0-9]+' | head -1)
  p=${p:-0}; f=${f:-0}; s=${s:-0}
  # --gtest_brief leaves out the "N tests, listed below" lines: the rest of the total failed.
  if [ -n "${total:-}" ] && [ "$((total - p - s))" -gt "$f" ]; then f=$((total - p - s)); fi
  if [ -z "${total:-}" ] || { [ "$rc" != 0 ] && [ "$f" = 0 ]; }; then
    f=$((f + 1))  # crashed (or a sanitizer aborted it) before its summary
    tail -n 40 "$log"
  fi
  grep -E '^\[  (FAILED|SKIPPED) \] [A-Za-z]' "$log" | sort -u || true
  tally "$name" "$p" "$f" "$s"
}

# run_bats NAME PREFIX FILE...: TAP lines, "# skip" apart; PREFIX marks the tests in the log.
run_bats() {
  local name=$1 prefix=$2
  shift 2
  local tap="$log_dir/$name.tap"
  suite_start=$SECONDS
  echo "== $name (bats)"
  bats --tap --timing "$@" >"$tap" 2>&1
  sed "s/^\(\(not \)\?ok [0-9]* \)/\1$prefix/" "$tap"
  local p f s
  s=$(grep -cE '^ok .* # skip' "$tap" || true)
  p=$(grep -E '^ok ' "$tap" | grep -cvE ' # skip' || true)
  f=$(grep -cE '^not ok ' "$tap" || true)
  if ! grep -qE '^1\.\.[0-9]+' "$tap"; then f=$((f + 1)); fi  # bats itself failed
  tally "$name" "$p" "$f" "$s"
}

export SHALE_BIN="$PWD/$BUILD/shale" PROBE_BIN="$PWD/$BUILD/shale_probe"
run_gtest "gtest" "$BUILD/shale_unit_tests"
run_bats "bats" "" tests/bats

if [ -n "$ASAN_BUILD" ]; then
  # Every report goes to a file (log_path) and each file counts as a failure: a sanitizer
  # error in a command that a test expects to fail (non-zero status) must still fail the run.
  # LeakSanitizer is on: its stop-the-world ptrace works here as root (checked: a leak-free
  # `shale images` exits 0 with detect_leaks=1). Processes that leave by _exit (the monitor)
  # or execve (the container's init) are not checked, the CLI processes are.
  asan_logs="$log_dir/asan-reports"
  mkdir -p "$asan_logs"
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:log_path=$asan_logs/asan:log_exe_name=1"
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$asan_logs/ubsan:log_exe_name=1"
  # shale-init and the probe are static C helpers built without sanitizers (they run in the
  # container); the sanitized tree's own copies are used.
  export SHALE_BIN="$PWD/$ASAN_BUILD/shale" PROBE_BIN="$PWD/$ASAN_BUILD/shale_probe"
  run_gtest "asan gtest" "$ASAN_BUILD/shale_unit_tests"
  # The suites that drive export, commit, load and run (SHALE_ASAN_BATS to choose others).
  read -r -a suites <<<"${SHALE_ASAN_BATS:-tests/bats/seed.bats tests/bats/image_load.bats tests/bats/container_run.bats tests/bats/container_lifecycle.bats tests/bats/store_concurrency.bats $(ls tests/bats/attack_*.bats 2>/dev/null | tr '\n' ' ')}"
  run_bats "asan bats" "asan: " "${suites[@]}"
  reports=$(ls "$asan_logs" 2>/dev/null | wc -l)
  if [ "$reports" -gt 0 ]; then
    echo "== sanitizer reports: $reports (each counts as a failure)"
    for r in "$asan_logs"/*; do
      echo "--- $r"
      head -n 60 "$r"
    done
    failed=$((failed + reports))
  fi
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
