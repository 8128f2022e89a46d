#!/usr/bin/env bash
# scripts/test.sh — build rankd and run every test: unit tests (meson + cmocka) and
# end-to-end tests (pytest against real PostgreSQL and Redis started on free ports), among them
# the TypeScript client's tests (Node's test runner, run by tests/e2e/test_typescript_client.py
# against a real rankd) and the example web game's in headless Chromium.
#
# With --sanitize, or when CI=true, everything runs a second time against a build with
# AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/); a sanitizer report in
# rankd's stderr fails the test that was running. Every test case is counted (cmocka's,
# pytest's and Node's, as XML reports; a unit program that fails with no failed case counts one failure), and
# the last line of output is
# exactly "N passed, N failed[, N skipped]"; the exit status is non-zero if anything
# failed. Other arguments go to pytest (e.g. `bash scripts/test.sh -k oracle`).
#
# Environment: RANKD_ORACLE_SUBMISSIONS (submissions per oracle board; default 3000,
# also in the sanitizer pass), RANKD_SKIP_DEPS=1 skips scripts/deps.sh.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

SANITIZE=0
PYTEST_EXTRA=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) SANITIZE=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) PYTEST_EXTRA+=("$arg") ;;
  esac
done
if [ "${CI:-}" = "true" ]; then SANITIZE=1; fi

PASSED=0
FAILED=0
SKIPPED=0
OUT=$(mktemp -d /tmp/rankd-test.XXXXXX)
PYTHON=/usr/bin/python3

log() { echo "== test.sh: $*" >&2; }

fail_stage() {
  log "FAILED: $*"
  FAILED=$((FAILED + 1))
}

finish() {
  rm -rf "$OUT"
  local line="$PASSED passed, $FAILED failed"
  if [ "$SKIPPED" -gt 0 ]; then line="$line, $SKIPPED skipped"; fi
  echo "$line"
  if [ "$FAILED" -gt 0 ]; then exit 1; fi
  exit 0
}

# build DIR [meson setup options...]
build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    log "meson setup $dir $*"
    if ! meson setup "$dir" "$@" >&2; then
      if ! meson setup --wipe "$dir" "$@" >&2; then
        fail_stage "meson setup $dir"
        return 1
      fi
    fi
  fi
  log "ninja -C $dir"
  if ! ninja -C "$dir" >&2; then
    fail_stage "build ($dir)"
    return 1
  fi
}

# count_cases XML...: "passed failed skipped" of the test cases in JUnit-style reports (cmocka's and
# pytest's); a file that is no such report (a glob that matched nothing) counts nothing.
count_cases() {
  "$PYTHON" - "$@" <<'EOF'
import os, sys
import xml.etree.ElementTree as ET
t = f = s = 0
for path in sys.argv[1:]:
    if not os.path.exists(path):
        continue
    root = ET.parse(path).getroot()
    for su in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        t += int(su.get("tests", 0))
        f += int(su.get("failures", 0)) + int(su.get("errors", 0))
        s += int(su.get("skipped", 0))
print(max(t - f - s, 0), f, s)
EOF
}

# unit DIR [meson test options...]: every cmocka test case counts, as every pytest case does
# (each program writes its cases' results as XML); a program that fails without a failed case
# (a crash, a sanitizer report) counts as one failure.
unit() {
  local dir=$1; shift
  local logf="$OUT/unit-$(basename "$dir").log"
  local xmld="$OUT/cmocka-$(basename "$dir")"
  mkdir -p "$xmld"
  log "meson test -C $dir --suite unit"
  CMOCKA_MESSAGE_OUTPUT=xml CMOCKA_XML_FILE="$xmld/%g.xml" \
    meson test -C "$dir" --suite unit --print-errorlogs "$@" 2>&1 | tee "$logf" >&2
  local rc=${PIPESTATUS[0]}
  local ok fail exp unexp tout skip
  ok=$(sed -n 's/^Ok:[[:space:]]*\([0-9]\+\).*/\1/p' "$logf" | tail -n1)
  exp=$(sed -n 's/^Expected Fail:[[:space:]]*\([0-9]\+\).*/\1/p' "$logf" | tail -n1)
  fail=$(sed -n 's/^Fail:[[:space:]]*\([0-9]\+\).*/\1/p' "$logf" | tail -n1)
  unexp=$(sed -n 's/^Unexpected Pass:[[:space:]]*\([0-9]\+\).*/\1/p' "$logf" | tail -n1)
  tout=$(sed -n 's/^Timeout:[[:space:]]*\([0-9]\+\).*/\1/p' "$logf" | tail -n1)
  skip=$(sed -n 's/^Skipped:[[:space:]]*\([0-9]\+\).*/\1/p' "$logf" | tail -n1)
  if [ -z "$ok" ] && [ -z "$fail" ]; then
    if [ "$rc" -ne 0 ]; then fail_stage "meson test ($dir) exited $rc without a summary"; fi
    return
  fi
  # Each program that passed wrote its own file, named after its group: two programs with the
  # same group name (cmocka_run_group_tests names it "tests") would count as one.
  local files
  files=$(find "$xmld" -name '*.xml' | wc -l)
  if [ "$files" -lt "${ok:-0}" ]; then
    fail_stage "$files result files for ${ok:-0} unit programs that passed in $dir: give each its own group name (cmocka_run_group_tests_name)"
  fi
  local cases
  cases=$(count_cases "$xmld"/*.xml) || { fail_stage "cannot read the unit tests' results in $xmld"; return; }
  local p f s
  read -r p f s <<<"$cases"
  local programs_failed=$((${fail:-0} + ${unexp:-0} + ${tout:-0}))
  if [ "$programs_failed" -gt "$f" ]; then f=$programs_failed; fi
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  SKIPPED=$((SKIPPED + s + ${skip:-0}))
  if [ "$rc" -ne 0 ] && [ $((${fail:-0} + ${unexp:-0} + ${tout:-0})) -eq 0 ]; then
    fail_stage "meson test ($dir) exited $rc"
  fi
}

# e2e DIR LABEL: pytest's cases, and those of the test runners a pytest test runs (Node's, for the
# TypeScript client: tests/e2e/ts_client.py writes their counts as JUnit-style files in
# $RANKD_TEST_EXTRA_RESULTS), each case counted once.
e2e() {
  local dir=$1 label=$2
  local xml="$OUT/e2e-$label.xml"
  local extra="$OUT/extra-$label"
  log "pytest tests/e2e against $dir/rankd ($label)"
  RANKD_BIN="$ROOT/$dir/rankd" RANKD_MIGRATIONS_DIR="$ROOT/migrations" RANKD_TEST_EXTRA_RESULTS="$extra" \
    "$PYTHON" -m pytest tests/e2e -q -p no:cacheprovider -rfE --junitxml="$xml" \
    ${PYTEST_EXTRA[@]+"${PYTEST_EXTRA[@]}"} >&2
  local rc=$?
  if [ ! -s "$xml" ]; then
    fail_stage "pytest ($label) exited $rc without a report"
    return
  fi
  local counts
  counts=$(count_cases "$xml" "$extra"/*.xml) || { fail_stage "cannot read $xml"; return; }
  local p f s
  read -r p f s <<<"$counts"
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  SKIPPED=$((SKIPPED + s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ "$rc" -ne 5 ]; then
    fail_stage "pytest ($label) exited $rc"
  fi
}

if [ "${RANKD_SKIP_DEPS:-}" != "1" ]; then
  if ! bash scripts/deps.sh; then fail_stage "scripts/deps.sh"; fi
fi

# --- pass 1: the regular build ------------------------------------------------------
if build build; then
  unit build
  e2e build plain
fi

# --- pass 2: sanitizers ---------------------------------------------------------------
if [ "$SANITIZE" = "1" ]; then
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  export RANKD_ORACLE_SUBMISSIONS="${RANKD_ORACLE_SUBMISSIONS_ASAN:-${RANKD_ORACLE_SUBMISSIONS:-3000}}"
  if build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug; then
    unit build-asan --timeout-multiplier 3
    e2e build-asan asan
  fi
fi

finish
