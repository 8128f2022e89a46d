#!/usr/bin/env bash
# loadtest/season.sh — a season of rankd on the test clock (issue 27): 400 simulated days (about
# 10 minutes here) of daily, weekly, monthly and never-reset boards (best, latest and sum; two with
# min/max_score), with retention, a steady stream of submissions and player deletions, and faults
# injected under traffic (a view refresh failing for a week, Redis restarted from an older
# snapshot, the leader killed, the primary restarted, the leader's clock skewed), each shown to
# have taken effect, with the requests it touched counted and none acknowledged lost; every read
# path (pages, cursors, players, around-me, rank of a score, statistics, exports, archives)
# checked each simulated day against an oracle computed from the submissions sent, with
# partitions ahead, retention and `rankd verify`; RSS, Redis memory, table sizes and each upkeep
# job's duration charted per day and checked flat (loadtest/season.py says what exactly).
#
#   bash loadtest/season.sh            400 days
#   bash loadtest/season.sh --smoke    60 days (CI)
#   Options: --days N, --per-day N (submissions per board per day, 20), --bin PATH,
#            --out DIR (default loadtest/out/season, or loadtest/out/season-smoke), --keep
#
# Starts its own PostgreSQL 15, Redis and two rankd instances on free loopback ports in a
# temporary folder and stops them by PID. Exit 1 when any check failed (the report lists them).
# Shares /tmp/rankd-loadtest.lock with the other load tests: one at a time.
set -euo pipefail

LIB_TAG=season
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RANKD_ROOT"
COMMAND="bash loadtest/season.sh${*:+ $*}"

DAYS=400 SMOKE=0 BIN="" OUT="" EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --days) DAYS="$2"; shift 2 ;;
    --per-day) EXTRA+=(--per-day "$2"); shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --keep) EXTRA+=(--keep); shift ;;
    --smoke) SMOKE=1; DAYS=60; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$DAYS" =~ ^[1-9][0-9]*$ ]] || die "--days wants a positive integer"
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL runs as user postgres via runuser)"

loadtest_lock
trap loadtest_unlock EXIT

bash scripts/deps.sh
if [ -z "$BIN" ]; then
  rankd_build build || die "build failed"
  BIN="$RANKD_ROOT/build/rankd"
fi
if [ -z "$OUT" ]; then
  if [ "$SMOKE" = 1 ]; then OUT="$RANKD_ROOT/loadtest/out/season-smoke"; else OUT="$RANKD_ROOT/loadtest/out/season"; fi
fi
rm -rf "$OUT"
mkdir -p "$OUT"
export RANKD_MIGRATIONS_DIR="${RANKD_MIGRATIONS_DIR:-$RANKD_ROOT/migrations}"
say "$DAYS simulated days; report in $OUT/report.md"
"$PYTHON" "$RANKD_ROOT/loadtest/season.py" --days "$DAYS" --bin "$BIN" --out "$OUT" --command "$COMMAND" \
  ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee "$OUT/season.log"
exit "${PIPESTATUS[0]}"
