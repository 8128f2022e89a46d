#!/usr/bin/env bash
# loadtest/run.sh — measure rankd with wrk against its own PostgreSQL + Redis.
#
#   bash loadtest/run.sh [--duration 10s] [--players 100000] [--connections 32]
#   bash loadtest/run.sh --smoke          # CI: 2 s per scenario, 5,000 players
#
# Starts PostgreSQL 15, Redis and rankd in a temporary folder on free loopback ports,
# creates a board `load` (desc, best, no reset), seeds it through /v1/scores:batch, then
# runs three wrk scenarios (wrk --latency):
#   top10   GET  /v1/leaderboards/load/entries?limit=10
#   rank    GET  /v1/leaderboards/load/players/{random player}
#   submit  POST /v1/leaderboards/load/scores  {random player, random score}, write key
# The server side (rankd, PostgreSQL, Redis) is pinned to CPU 0 and wrk to CPU 1 with
# taskset. Results go to stdout and loadtest/out/report.md (raw wrk output next to it).
# Everything it started is stopped by PID on exit, also on failure or Ctrl-C.
#
# Options: --duration D (wrk syntax: 10s, 1m), --players N, --connections C,
#          --threads T (wrk threads, default 1), --server-cpus LIST (0), --client-cpus LIST (1),
#          --bin PATH (a rankd binary; default: a release build in build-release/),
#          --keep (keep the temporary folder and its logs).
set -euo pipefail

LIB_TAG=loadtest
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RANKD_ROOT"

DURATION=10s PLAYERS=100000 CONNECTIONS=32 THREADS=1 SMOKE=0 KEEP=0 BIN=""
SERVER_CPUS=0 CLIENT_CPUS=1 WARMUP=2s
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --duration=*) DURATION="${1#*=}"; shift ;;
    --players) PLAYERS="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --server-cpus) SERVER_CPUS="$2"; shift 2 ;;
    --client-cpus) CLIENT_CPUS="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
if [ "$SMOKE" = 1 ]; then DURATION=2s PLAYERS=5000 WARMUP=""; fi
[[ "$PLAYERS" =~ ^[1-9][0-9]*$ ]] || die "--players wants a positive integer"
[[ "$DURATION" =~ ^[0-9]+[smh]?$ ]] || die "--duration wants e.g. 10s or 1m"
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL runs as user postgres via runuser)"
if [ "$(nproc --all)" -lt 2 ]; then
  say "fewer than 2 CPUs: not pinning"; SERVER_CPUS="" CLIENT_CPUS=""
fi

WIDTH=$(( ${#PLAYERS} > 6 ? ${#PLAYERS} : 6 ))   # player ids p000001…, as seed() writes them
OUT="$RANKD_ROOT/loadtest/out"
BOARD=load
ADMIN_KEY="loadtest-admin-$RANDOM$RANDOM"
WRITE_KEY="loadtest-write-$RANDOM$RANDOM"

say "checking packages (scripts/deps.sh)"
bash scripts/deps.sh

if [ -z "$BIN" ]; then
  if [ "$SMOKE" = 1 ]; then
    say "building (ninja -C build)"
    rankd_build build || die "build failed"
    BIN="$RANKD_ROOT/build/rankd"
  else
    # Measure an optimized build without sanitizers, whatever build/ is configured with.
    say "building a release binary (ninja -C build-release)"
    rankd_build build-release --buildtype=release -Db_sanitize=none -Dwerror=false \
      || die "build failed"
    BIN="$RANKD_ROOT/build-release/rankd"
  fi
fi
[ -x "$BIN" ] || die "no rankd binary at $BIN"

TMP="$(mktemp -d /tmp/rankd-load.XXXXXX)"
chmod 755 "$TMP"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  rankd_down "$TMP/rankd.pid"
  redis_down "$TMP"
  pg_down "$TMP"
  if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
    say "kept $TMP (rankd.log, pg.log, redis.log)"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PG_PORT="$(free_port)"
REDIS_PORT="$(free_port)"
while [ "$REDIS_PORT" = "$PG_PORT" ]; do REDIS_PORT="$(free_port)"; done
HTTP_PORT="$(free_port)"
while [ "$HTTP_PORT" = "$PG_PORT" ] || [ "$HTTP_PORT" = "$REDIS_PORT" ]; do HTTP_PORT="$(free_port)"; done
BASE="http://127.0.0.1:$HTTP_PORT"

pg_up "$TMP" "$PG_PORT" "$SERVER_CPUS" || die "PostgreSQL did not start"
pg_db "$PG_PORT" rankd
redis_up "$TMP" "$REDIS_PORT" "$SERVER_CPUS" || die "Redis did not start"

export RANKD_LISTEN="127.0.0.1:$HTTP_PORT"
export RANKD_POSTGRES_PRIMARY="host=127.0.0.1 port=$PG_PORT dbname=rankd user=rankd"
export RANKD_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export RANKD_ADMIN_KEY="$ADMIN_KEY" RANKD_WRITE_KEY="$WRITE_KEY"
export RANKD_PUBLIC_READS=true
export RANKD_LOG_LEVEL="${RANKD_LOG_LEVEL:-warn}"   # no access log line per request
export RANKD_MIGRATIONS_DIR="$RANKD_ROOT/migrations"

rankd_migrate "$BIN" config/rankd.yaml >"$TMP/migrate.log" 2>&1 \
  || { cat "$TMP/migrate.log" >&2; die "migration failed"; }
say "starting rankd on $BASE (cpus ${SERVER_CPUS:-any})"
rankd_up "$BIN" config/rankd.yaml "$TMP/rankd.pid" "$TMP/rankd.log" "$SERVER_CPUS"
wait_ready "$BASE" "$TMP/rankd.pid" "$TMP/rankd.log" 60 || die "rankd is not ready"

code="$(curl -s -o "$TMP/board.json" -w '%{http_code}' -X POST "$BASE/v1/leaderboards" \
  -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d "{\"id\":\"$BOARD\",\"title\":\"Load test\",\"sort\":\"desc\",\"operator\":\"best\",\"reset\":\"none\"}")"
case "$code" in
  200|201) ;;
  *) die "POST /v1/leaderboards -> $code: $(head -c 500 "$TMP/board.json")" ;;
esac

say "seeding $PLAYERS players on board $BOARD"
seed_t0=$EPOCHREALTIME
seed "$BASE" "$WRITE_KEY" "$BOARD" "$PLAYERS" uniform 2>&1 | tee "$TMP/seed.log" >&2 \
  || die "seeding failed"
seed_s=$(awk -v a="$seed_t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
players_now="$(json_get "$BASE/v1/leaderboards/$BOARD" players)"
[ "$players_now" = "$PLAYERS" ] || say "warning: board reports players=$players_now, expected $PLAYERS"

mkdir -p "$OUT"
declare -A R
SCEN=(top10 rank submit)
declare -A DESC=(
  [top10]="GET /v1/leaderboards/$BOARD/entries?limit=10"
  [rank]="GET /v1/leaderboards/$BOARD/players/{random}"
  [submit]="POST /v1/leaderboards/$BOARD/scores {random}"
)

# One request of each kind first: a scenario whose request fails is reported as such.
probe() {
  local name="$1" p c
  p="$(printf "p%0${WIDTH}d" $(( (RANDOM * 32768 + RANDOM) % PLAYERS + 1 )))"
  case "$name" in
    top10) c="$(curl -s -o "$TMP/probe.json" -w '%{http_code}' "$BASE/v1/leaderboards/$BOARD/entries?limit=10")" ;;
    rank) c="$(curl -s -o "$TMP/probe.json" -w '%{http_code}' "$BASE/v1/leaderboards/$BOARD/players/$p")" ;;
    submit) c="$(curl -s -o "$TMP/probe.json" -w '%{http_code}' -X POST "$BASE/v1/leaderboards/$BOARD/scores" \
              -H "Authorization: Bearer $WRITE_KEY" -H 'Content-Type: application/json' \
              -d "{\"player_id\":\"$p\",\"score\":1}")" ;;
  esac
  if [ "$c" != 200 ]; then
    say "warning: probe for $name answered $c: $(head -c 300 "$TMP/probe.json")"
  fi
  echo "$c"
}

run_wrk() {  # run_wrk NAME DURATION OUTFILE
  # shellcheck disable=SC2046
  $(pin "$CLIENT_CPUS") wrk --latency -t "$THREADS" -c "$CONNECTIONS" -d "$2" --timeout 5s \
    -s "$RANKD_ROOT/loadtest/$1.lua" "$BASE" -- "$BOARD" "$PLAYERS" "$WRITE_KEY" >"$3" 2>&1
}

for s in "${SCEN[@]}"; do
  R[$s.probe]="$(probe "$s")"
  if [ -n "$WARMUP" ]; then run_wrk "$s" "$WARMUP" "$TMP/warmup-$s.txt" || true; fi
  say "scenario $s: ${DESC[$s]} for $DURATION, $CONNECTIONS connections"
  if ! run_wrk "$s" "$DURATION" "$OUT/wrk-$s.txt"; then
    say "warning: wrk failed for $s:"; cat "$OUT/wrk-$s.txt" >&2
  fi
  line="$(grep '^RESULT ' "$OUT/wrk-$s.txt" | tail -n1 || true)"
  for kv in $line; do
    case "$kv" in *=*) R[$s.${kv%%=*}]="${kv#*=}" ;; esac
  done
  pid="$(pidfile_pid "$TMP/rankd.pid")"
  pid_matches "$pid" rankd || die "rankd died during scenario $s; see $TMP/rankd.log"
done

rss_kb="$(awk '/^VmRSS/ {print $2}' "/proc/$(pidfile_pid "$TMP/rankd.pid")/status" 2>/dev/null || echo "?")"
ms() { awk -v u="${1:-}" 'BEGIN { if (u == "") print "–"; else printf "%.2f", u / 1000 }'; }
commas() { awk -v n="${1:-}" 'BEGIN { if (n == "") { print "–"; exit } s = sprintf("%.0f", n);
  o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }

{
  echo "# rankd load test"
  echo
  echo "$(date -u +'%Y-%m-%d %H:%M UTC'), $("$BIN" version 2>/dev/null | head -n1 || echo 'rankd ?')," \
       "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo '+changes'), binary ${BIN#"$RANKD_ROOT"/}"
  echo
  echo "- machine: $(nproc --all) × $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "- rankd, PostgreSQL 15 and Redis $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p') on CPU ${SERVER_CPUS:-any}; wrk on CPU ${CLIENT_CPUS:-any}"
  echo "- board \`$BOARD\` (desc, best, no reset), $(commas "$PLAYERS") players seeded through /v1/scores:batch in $seed_s s"
  echo "- rankd log level $RANKD_LOG_LEVEL${RANKD_WORKER_THREADS:+, RANKD_WORKER_THREADS=$RANKD_WORKER_THREADS}"
  echo "- wrk: $THREADS thread(s), $CONNECTIONS connections, $DURATION per scenario${WARMUP:+ after a $WARMUP warm-up}$([ "$SMOKE" = 1 ] && echo ' (smoke run: figures are not meaningful)')"
  echo
  echo "| scenario | request | requests/s | p50 ms | p99 ms | max ms | non-2xx | socket errors |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for s in "${SCEN[@]}"; do
    sock=""
    if [ -n "${R[$s.connect_err]:-}" ]; then
      sock=$(( ${R[$s.connect_err]} + ${R[$s.read_err]} + ${R[$s.write_err]} + ${R[$s.timeouts]} ))
    fi
    echo "| $s | \`${DESC[$s]}\` | $(commas "${R[$s.rps]:-}") | $(ms "${R[$s.p50_us]:-}") | $(ms "${R[$s.p99_us]:-}") | $(ms "${R[$s.max_us]:-}") | ${R[$s.non2xx]:-–} | ${sock:-–} |"
  done
  echo
  for s in "${SCEN[@]}"; do
    if [ "${R[$s.probe]}" != 200 ]; then
      echo "- **$s**: a single probe request answered HTTP ${R[$s.probe]}; its figures measure errors."
    fi
    if [ -n "${R[$s.non2xx]:-}" ] && [ "${R[$s.non2xx]}" != 0 ]; then
      echo "- **$s**: ${R[$s.non2xx]} of ${R[$s.requests]} responses were 4xx/5xx."
    fi
  done
  echo "- rankd resident memory after the run: $(commas "$rss_kb") KiB"
  echo "- raw wrk output: loadtest/out/wrk-{top10,rank,submit}.txt"
} >"$OUT/report.md"

echo
cat "$OUT/report.md"
echo
say "report written to loadtest/out/report.md"
