#!/usr/bin/env bash
# scripts/fuzz.sh — build the libFuzzer targets of tests/fuzz (clang, ASan + UBSan) in build-fuzz/
# and run each for a while: the request line and path as rankd routes them, query parameters and
# the headers rankd reads, cursors, JSON bodies of the write routes, the YAML configuration, and
# Redis replies as the read paths parse them, PROXY protocol headers and X-Forwarded-For, and
# identity providers' JWKS documents and player tokens (auth/).
#
#   bash scripts/fuzz.sh                 every target 30 s (CI runs --time 20)
#   bash scripts/fuzz.sh --time 600      ten minutes each, by hand
#   bash scripts/fuzz.sh --only cursor   one target
#
# Each target starts from tests/fuzz/corpus/<target>/ (seeds written from the requests, bodies
# and files the end-to-end tests use) and first replays tests/fuzz/regressions/<target>/, every
# input that once crashed it. New corpus entries go to a temporary folder, not to the repository;
# a crash stops the run (exit 1) and its input is kept in tests/fuzz/findings/: make it a
# regression (git mv it into regressions/<target>/) once fixed.
set -euo pipefail
LIB_TAG=fuzz
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RANKD_ROOT"

TIME=30 ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --time) TIME="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$TIME" =~ ^[1-9][0-9]*$ ]] || die "--time wants seconds"

bash scripts/deps.sh
if [ ! -f build-fuzz/build.ninja ]; then
  say "meson setup build-fuzz (clang, ASan + UBSan, libFuzzer)"
  CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Dwerror=false -Dbuildtype=debugoptimized >build-fuzz.log 2>&1 || { tail -n 30 build-fuzz.log >&2; exit 1; }
fi
ninja -C build-fuzz >build-fuzz/ninja-output.log 2>&1 || { tail -n 40 build-fuzz/ninja-output.log >&2; exit 1; }

WORK="$(mktemp -d /tmp/rankd-fuzz.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p tests/fuzz/findings
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
failed=()
for target in request cursor body config redis_reply proxy head jwt; do
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$target,"* ]]; then continue; fi
  bin="build-fuzz/tests/fuzz/fuzz_$target"
  mkdir -p "$WORK/$target"
  cp -r "tests/fuzz/corpus/$target/." "$WORK/$target/"
  mapfile -t regressions < <(find "tests/fuzz/regressions/$target" -type f ! -name .keep)
  if [ "${#regressions[@]}" -gt 0 ]; then
    say "$target: replaying ${#regressions[@]} regression input(s)"
    "$bin" -runs=0 "${regressions[@]}" >"$WORK/$target-regressions.log" 2>&1 \
      || { tail -n 30 "$WORK/$target-regressions.log" >&2; failed+=("$target (regression)"); continue; }
  fi
  say "$target: ${TIME}s"
  if "$bin" "$WORK/$target" -max_total_time="$TIME" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="tests/fuzz/findings/$target-" >"$WORK/$target.log" 2>&1; then
    awk -v t="$target" '/stat::number_of_executed_units/ { runs = $2 } /stat::average_exec_per_sec/ { eps = $2 }
      /^#[0-9]+.*cov: / { for (i = 1; i <= NF; i++) { if ($i == "cov:") cov = $(i + 1); if ($i == "ft:") ft = $(i + 1) } }
      END { printf "[fuzz] %s: %s runs, %s/s, coverage %s edges, %s features\n", t, runs, eps, cov, ft }' "$WORK/$target.log"
  else
    tail -n 40 "$WORK/$target.log" >&2
    failed+=("$target")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  say "FAILED: ${failed[*]} (inputs in tests/fuzz/findings/)"
  exit 1
fi
say "every target ran clean"
