#!/usr/bin/env bash
# loadtest/windows.sh — the figures of a window's life (issue 14), in one run, each against a
# reference measured in the same run on the same machine:
#
#   archive      the time to archive a window of --players (1,000,000) players
#                (rankd_archive_window: copy in rank order, three indexes, attach, statistics)
#   arch_rank, arch_page, arch_around   reads of that archived window on rankd with every cache
#                off (PostgreSQL only): a random player's rank, the page at rank players/2, around
#                a random player; against live_rank, live_page, live_around: the same reads of
#                a live window holding the very same standings (the same seed)
#   stats_view   GET /stats of the live board (materialized view), caches off, against
#                stats_live: the same statistics computed from `standings` by pgbench
#   bloat        --updates (1,000,000) score changes through rankd (scores:batch of 100, a board
#                with operator `latest`, so each one rewrites its standing) on a board of
#                --players players, once with PostgreSQL's autovacuum defaults and once with
#                the per-table settings migration 0007 gives `standings`, and once more with those
#                and the server's autovacuum_naptime at 10 s; the table's and its indexes' size
#                sampled before, during and after (60 s after the last write)
#
#   bash loadtest/windows.sh            about 10 minutes
#   bash loadtest/windows.sh --smoke    20,000 players, 3 s per scenario, 50,000 updates
#   Options: --players N, --duration D (wrk: 15s), --updates N, --only LIST (archive,reads,stats,bloat),
#            --bin PATH, --out DIR (default loadtest/out/windows, or loadtest/out/windows-smoke),
#            --server-cpus LIST (0), --client-cpus LIST (1)
#
# It starts its own PostgreSQL 15 and Redis on free loopback ports in a temporary folder
# (the same settings as loadtest/run.sh), pins them and rankd to --server-cpus and wrk/pgbench to
# --client-cpus, and stops all of them by PID at the end. Output: report.md and results.txt
# (every figure as key=value). Asserts nothing on time; exit 1 only when something broke.
# Shares /tmp/rankd-loadtest.lock with loadtest/run.sh: one load test at a time.
set -euo pipefail

LIB_TAG=windows
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RANKD_ROOT"
LT="$RANKD_ROOT/loadtest"
COMMAND="bash loadtest/windows.sh${*:+ $*}"

SMOKE=0 BIN="" OUT="" ONLY="" PLAYERS="" DURATION="" UPDATES="" SERVER_CPUS=0 CLIENT_CPUS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --players) PLAYERS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --updates) UPDATES="$2"; shift 2 ;;
    --only) ONLY=",$2,"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --server-cpus) SERVER_CPUS="$2"; shift 2 ;;
    --client-cpus) CLIENT_CPUS="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  : "${PLAYERS:=20000}" "${DURATION:=3s}" "${UPDATES:=50000}"
else
  : "${PLAYERS:=1000000}" "${DURATION:=15s}" "${UPDATES:=1000000}"
fi
for v in PLAYERS UPDATES; do [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v,,} wants a positive integer"; done
[[ "$DURATION" =~ ^[1-9][0-9]*s$ ]] || die "--duration wants seconds, e.g. 15s"
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL runs as user postgres via runuser)"
if [ "$(nproc --all)" -lt 2 ]; then SERVER_CPUS="" CLIENT_CPUS=""; fi
want() { [ -z "$ONLY" ] || [[ "$ONLY" == *",$1,"* ]]; }
CLIENT=()
if [ -n "$CLIENT_CPUS" ]; then CLIENT=(taskset -c "$CLIENT_CPUS"); fi
DUR_S="${DURATION%s}"

loadtest_lock

bash scripts/deps.sh
for p in postgresql-contrib wrk; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null \
    || die "apt-get install $p failed"
done
if [ -z "$BIN" ]; then
  if [ "$SMOKE" = 1 ]; then
    rankd_build build || die "build failed"; BIN="$RANKD_ROOT/build/rankd"
  else
    rankd_build build-release --buildtype=release -Db_sanitize=none -Dwerror=false || die "build failed"
    BIN="$RANKD_ROOT/build-release/rankd"
  fi
fi

TMP="$(mktemp -d /tmp/rankd-windows.XXXXXX)"
chmod 755 "$TMP"
if [ -z "$OUT" ]; then
  if [ "$SMOKE" = 1 ]; then OUT="$LT/out/windows-smoke"; else OUT="$LT/out/windows"; fi
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
RES="$OUT/results.txt"
: >"$RES"
rm -rf "$OUT/raw"
mkdir -p "$OUT/raw"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  rankd_down "$TMP/rankd.pid"
  redis_down "$TMP"
  pg_down "$TMP"
  loadtest_unlock
  if [ "$rc" != 0 ]; then say "kept $TMP (rankd.log, pg.log)"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rec() { printf '%s=%s\n' "$1" "$2" >>"$RES"; say "  $1 = $2"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

read -r PG_PORT REDIS_PORT PORT <<<"$(free_ports 3)"
BASE="http://127.0.0.1:$PORT"
ADMIN_KEY="windows-admin-$RANDOM$RANDOM"
WRITE_KEY="windows-write-$RANDOM$RANDOM"
export PG_EXTRA_CONF="
shared_buffers = 1GB
synchronous_commit = on
max_connections = 100"
pg_up "$TMP" "$PG_PORT" "$SERVER_CPUS" || die "PostgreSQL did not start"
redis_up "$TMP" "$REDIS_PORT" "$SERVER_CPUS" || die "Redis did not start"
PSQL=(psql -h 127.0.0.1 -p "$PG_PORT" -U rankd -XtAq -v ON_ERROR_STOP=1)

# config DB REDIS: a configuration of this run's own (no replicas, no declared boards).
config() {
  cat >"$TMP/$1.yaml" <<EOF
development: true
listen: "127.0.0.1:$PORT"
log_level: warn
postgres:
  primary: "host=127.0.0.1 port=$PG_PORT dbname=$1 user=rankd"
  pool_size: 8
redis:
  url: "$2"
refresh:
  interval_s: 0
cache:
  max_bytes: 0
auth:
  cursor_secret: "windows-cursor-secret-$RANDOM$RANDOM"
  keys:
    - key: "$ADMIN_KEY"
      role: admin
    - key: "$WRITE_KEY"
      role: write
EOF
}

# database NAME: created and migrated.
database() {
  pg_db "$PG_PORT" "$1"
  config "$1" ""
  rankd_migrate "$BIN" "$TMP/$1.yaml" >"$TMP/migrate-$1.log" 2>&1 || { cat "$TMP/migrate-$1.log" >&2; die "migration failed"; }
}

# serve DB [REDIS_URL]: rankd serve on this run's port.
serve() {
  config "$1" "${2:-}"
  rankd_down "$TMP/rankd.pid"
  rankd_up "$BIN" "$TMP/$1.yaml" "$TMP/rankd.pid" "$TMP/rankd.log" "$SERVER_CPUS" || die "rankd did not start"
  wait_ready "$BASE" "$TMP/rankd.pid" "$TMP/rankd.log" 60 || die "rankd is not ready"
}

# board ID RESET OPERATOR: create it through the API; prints its generation.
board() {
  local code
  code="$(curl -s -o "$TMP/board.json" -w '%{http_code}' --max-time 10 -X POST "$BASE/v1/leaderboards" \
    -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d "{\"id\":\"$1\",\"title\":\"$1\",\"sort\":\"desc\",\"operator\":\"$3\",\"reset\":\"$2\"}")"
  [ "$code" = 201 ] || die "POST /v1/leaderboards ($1) -> $code: $(head -c 300 "$TMP/board.json")"
}

# seed DB GEN WINDOW: --players standings, seed 0.42 (the same rows whatever the board).
BASE_MS=$(( $(date +%s) * 1000 - 5 * 86400000 ))
seed() {
  timeout 1800 "${PSQL[@]}" -d "$1" -v gen="$2" -v n="$PLAYERS" -v seed=0.42 -v base_ms="$BASE_MS" \
    -v win="$3" -f "$LT/seed.sql" >"$TMP/seed.log" 2>&1 || { cat "$TMP/seed.log" >&2; die "seeding failed"; }
}

# settle DB: wait (at most 5 min) until no statement runs in DB but ours: a slow scenario's
# requests that wrk gave up on are still being answered, and would slow the next one down.
settle() {
  local i
  for ((i = 0; i < 3000; i++)); do
    [ "$("${PSQL[@]}" -d "$1" -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1'
      AND state = 'active' AND pid <> pg_backend_pid()")" = 0 ] && return 0
    sleep 0.1
  done
  say "warning: statements still running in $1 after 5 minutes"
}

# wrk_scenario NAME SCRIPT [LUA ARGS...]: one wrk run on the client CPU; its figures recorded.
wrk_scenario() {
  local name="$1" script="$2" line kv
  shift 2
  settle rankd
  say "scenario $name ($DURATION)"
  timeout $(( DUR_S + 60 )) "${CLIENT[@]}" wrk --latency -t 1 -c 32 -d "$DURATION" --timeout 5s \
    -s "$LT/$script.lua" "$BASE" -- "$@" >"$OUT/raw/wrk-$name.txt" 2>&1 || die "wrk failed for $name"
  line="$(grep '^RESULT ' "$OUT/raw/wrk-$name.txt" | tail -n1)"
  for kv in ${line#RESULT }; do
    case "$kv" in rps=*|p50_us=*|p99_us=*|non2xx=*|timeouts=*) rec "$name.${kv%%=*}" "${kv#*=}" ;; esac
  done
}

rec meta.command "$COMMAND"
rec meta.date "$(date -u +'%Y-%m-%d %H:%M UTC')"
rec meta.commit "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
rec meta.players "$PLAYERS"
rec meta.duration "$DURATION"
rec meta.cpus "$(nproc --all) × $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"

# --- archives, reads, statistics --------------------------------------------------------------
if want archive || want reads || want stats; then
  database rankd
  serve rankd
  board live none best
  board arch daily best
  rankd_down "$TMP/rankd.pid"
  LIVE_GEN="$("${PSQL[@]}" -d rankd -c "SELECT gen FROM boards WHERE id = 'live'")"
  ARCH_GEN="$("${PSQL[@]}" -d rankd -c "SELECT gen FROM boards WHERE id = 'arch'")"
  WIN="$(date -u -d '3 days ago' +%F)"
  say "seeding live (window 1970-01-01) and arch (window $WIN): $PLAYERS players each, the same rows"
  seed rankd "$LIVE_GEN" 1970-01-01
  seed rankd "$ARCH_GEN" "$WIN"
  "${PSQL[@]}" -d rankd -c "UPDATE boards SET created_ms = created_ms - 7 * 86400000 WHERE gen = $ARCH_GEN"
  say "archiving arch's window $WIN"
  t0=$EPOCHREALTIME
  rows="$("${PSQL[@]}" -d rankd -c "SET statement_timeout = 0; SELECT rankd_archive_window($ARCH_GEN, '$WIN')")"
  rec archive.wall_ms "$(since "$t0")"
  rec archive.rows "$rows"
  rec archive.ms "$("${PSQL[@]}" -d rankd -c "SELECT archive_ms FROM archived_windows WHERE board_gen = $ARCH_GEN")"
  rec archive.bytes "$("${PSQL[@]}" -d rankd -c "SELECT pg_total_relation_size(rankd_archive_name($ARCH_GEN, '$WIN'))")"
  rec live.bytes "$("${PSQL[@]}" -d rankd -c "SELECT pg_total_relation_size('standings') / 2")"
  "$BIN" refresh -c "$TMP/rankd.yaml" >"$OUT/raw/refresh.txt" 2>&1 || die "rankd refresh failed"
  "${PSQL[@]}" -d rankd -c "VACUUM (ANALYZE)" -c "CHECKPOINT"
  serve rankd
  common=(players="$PLAYERS" width=12)
  mid=$(( PLAYERS / 2 ))
  if want reads; then
    wrk_scenario live_rank rank board=live "${common[@]}"
    wrk_scenario arch_rank rank board=arch query="window=$WIN" "${common[@]}"
    wrk_scenario live_page fixed path="/v1/leaderboards/live/entries?limit=10&offset=$mid" "${common[@]}"
    wrk_scenario arch_page fixed path="/v1/leaderboards/arch/entries?limit=10&offset=$mid&window=$WIN" "${common[@]}"
    wrk_scenario live_around around board=live "${common[@]}"
    wrk_scenario arch_around around board=arch query="window=$WIN" "${common[@]}"
    # The same answers both ways (ranks included): one page deep in each.
    settle rankd
    a="$(curl -s "$BASE/v1/leaderboards/live/entries?limit=5&offset=$mid" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["entries"])')"
    b="$(curl -s "$BASE/v1/leaderboards/arch/entries?limit=5&offset=$mid&window=$WIN" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["entries"])')"
    [ "$a" = "$b" ] && rec reads.same_answers yes || { rec reads.same_answers no; die "the archived page differs from the live one"; }
  fi
  if want stats; then
    wrk_scenario stats_view fixed path="/v1/leaderboards/live/stats" "${common[@]}"
    cat >"$TMP/stats_live.sql" <<EOF
SELECT count(*), min(score), max(score), avg(score)::float8, stddev_pop(score)::float8,
       percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY score)
FROM standings WHERE board_gen = $LIVE_GEN AND win = DATE '1970-01-01';
WITH b AS (SELECT min(score) AS lo, max(score) AS hi FROM standings WHERE board_gen = $LIVE_GEN AND win = DATE '1970-01-01')
SELECT least(width_bucket(score::float8, b.lo::float8, b.hi::float8, 20), 20), count(*)
FROM standings, b WHERE board_gen = $LIVE_GEN AND win = DATE '1970-01-01' GROUP BY 1;
EOF
    say "scenario stats_live (pgbench, 2 clients, $DURATION)"
    timeout $(( DUR_S + 600 )) "${CLIENT[@]}" pgbench -h 127.0.0.1 -p "$PG_PORT" -U rankd -n -M prepared \
      -f "$TMP/stats_live.sql" -c 2 -j 1 -T "$DUR_S" rankd >"$OUT/raw/pgbench-stats_live.txt" 2>&1 || die "pgbench failed"
    rec stats_live.rps "$(awk '/^tps = / { print $3 }' "$OUT/raw/pgbench-stats_live.txt")"
    rec stats_live.mean_ms "$(awk '/latency average/ { print $4 }' "$OUT/raw/pgbench-stats_live.txt")"
  fi
  rankd_down "$TMP/rankd.pid"
fi

# --- standings under constant updates ------------------------------------------------------------
# size DB: heap bytes, index bytes, dead tuples, autovacuums of `standings`
size() {
  "${PSQL[@]}" -d "$1" -F ' ' -c "SELECT pg_table_size('standings'), pg_indexes_size('standings'),
    n_dead_tup, autovacuum_count FROM pg_stat_user_tables WHERE relname = 'standings'"
}
bloat_run() {
  local name="$1" db="bloat_$1" gen acked=0 step=0 line kv ok max_heap=0 max_idx=0 t0 heap idx dead av
  database "$db"
  if [ "$name" = naptime10s ]; then
    "${PSQL[@]}" -d "$db" -c "ALTER SYSTEM SET autovacuum_naptime = '10s'" -c "SELECT pg_reload_conf()" >/dev/null
  fi
  if [ "$name" = defaults ]; then
    "${PSQL[@]}" -d "$db" -c "ALTER TABLE standings RESET (autovacuum_vacuum_scale_factor,
      autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay, autovacuum_vacuum_cost_limit,
      autovacuum_analyze_scale_factor)"
  fi
  rec "bloat.$name.reloptions" "$("${PSQL[@]}" -d "$db" -c "SELECT coalesce(array_to_string(reloptions, ' '), 'defaults') FROM pg_class WHERE relname = 'standings'")"
  serve "$db" "redis://127.0.0.1:$REDIS_PORT/$2"
  board churn none latest
  rankd_down "$TMP/rankd.pid"
  gen="$("${PSQL[@]}" -d "$db" -c "SELECT gen FROM boards WHERE id = 'churn'")"
  seed "$db" "$gen" 1970-01-01
  "${PSQL[@]}" -d "$db" -c "CHECKPOINT"
  serve "$db" "redis://127.0.0.1:$REDIS_PORT/$2"
  "$BIN" rebuild-cache --board churn -c "$TMP/$db.yaml" >"$OUT/raw/rebuild-$name.txt" 2>&1 || die "rebuild-cache failed"
  read -r heap idx dead av <<<"$(size "$db")"
  rec "bloat.$name.before_heap" "$heap"; rec "bloat.$name.before_idx" "$idx"
  : >"$OUT/raw/bloat-$name.txt"
  t0=$EPOCHREALTIME
  say "bloat ($name): $UPDATES score changes through scores:batch"
  while [ "$acked" -lt "$UPDATES" ]; do
    timeout 120 "${CLIENT[@]}" wrk -t 1 -c 8 -d 5s --timeout 10s -s "$LT/submit_batch.lua" "$BASE" -- \
      board=churn players="$PLAYERS" width=12 key="$WRITE_KEY" items=100 >"$TMP/wrk-bloat.txt" 2>&1 || die "wrk failed (bloat)"
    line="$(grep '^RESULT ' "$TMP/wrk-bloat.txt" | tail -n1)"
    ok=0
    for kv in ${line#RESULT }; do case "$kv" in w_ok=*) ok="${kv#*=}" ;; esac; done
    [ "$ok" -gt 0 ] || die "no submission acknowledged in 5 s (bloat): $(tail -n 3 "$TMP/wrk-bloat.txt")"
    acked=$(( acked + ok ))
    step=$(( step + 1 ))
    read -r heap idx dead av <<<"$(size "$db")"
    echo "$(since "$t0") $acked $heap $idx $dead $av" >>"$OUT/raw/bloat-$name.txt"
    [ "$heap" -gt "$max_heap" ] && max_heap="$heap"
    [ "$idx" -gt "$max_idx" ] && max_idx="$idx"
  done
  rec "bloat.$name.updates" "$acked"
  rec "bloat.$name.write_s" "$(awk -v ms="$(since "$t0")" 'BEGIN { printf "%.1f", ms / 1000 }')"
  rec "bloat.$name.after_heap" "$heap"; rec "bloat.$name.after_idx" "$idx"; rec "bloat.$name.after_dead" "$dead"
  say "bloat ($name): 60 s without writes (autovacuum's naptime is 60 s)"
  sleep 60
  read -r heap idx dead av <<<"$(size "$db")"
  echo "$(since "$t0") $acked $heap $idx $dead $av" >>"$OUT/raw/bloat-$name.txt"
  rec "bloat.$name.settled_heap" "$heap"; rec "bloat.$name.settled_idx" "$idx"
  rec "bloat.$name.settled_dead" "$dead"; rec "bloat.$name.autovacuums" "$av"
  rec "bloat.$name.max_heap" "$max_heap"; rec "bloat.$name.max_idx" "$max_idx"
  rankd_down "$TMP/rankd.pid"
  if [ "$name" = naptime10s ]; then
    "${PSQL[@]}" -d "$db" -c "ALTER SYSTEM RESET autovacuum_naptime" -c "SELECT pg_reload_conf()" >/dev/null
  fi
}
if want bloat; then
  bloat_run defaults 1
  bloat_run tuned 2
  bloat_run naptime10s 3  # tuned, and the server's autovacuum_naptime at 10 s (the default is 60 s)
fi

# --- report --------------------------------------------------------------------------------------
"$PYTHON" - "$RES" "$OUT/report.md" <<'EOF'
import sys
r = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition("=")
    r[k] = v
def f(k):
    try:
        return float(r[k])
    except (KeyError, ValueError):
        return None
def n(v, d=0):
    return "–" if v is None else f"{v:,.{d}f}"
def x(a, b):
    return "–" if a is None or not b else f"{a / b:.2f} ×"
def mib(k):
    v = f(k)
    return "–" if v is None else f"{v / 1048576:,.1f} MiB"
L = ["# rankd: a window's life (issue 14)", "",
     f"{r.get('meta.date')} · commit {r.get('meta.commit')} · `{r.get('meta.command')}` · {r.get('meta.cpus')}", "",
     f"Boards of {n(f('meta.players'))} players (seed 0.42: the same standings in each), rankd with every cache "
     f"off and no Redis (PostgreSQL answers), wrk 1 thread × 32 connections for {r.get('meta.duration')} per scenario.", ""]
if "archive.ms" in r:
    L += [f"**Archiving a window** of {n(f('archive.rows'))} players: {n(f('archive.ms'))} ms in "
          f"rankd_archive_window ({n(f('archive.wall_ms'))} ms wall); the archive partition takes "
          f"{mib('archive.bytes')} (table and three indexes).", ""]
if "live_rank.rps" in r:
    L += ["| read | live window req/s | p50 / p99 ms | archived window req/s | p50 / p99 ms | archived / live |",
          "|---|---:|---:|---:|---:|---:|"]
    for s, what in (("rank", "a random player's rank"), ("page", "the page at rank players/2"),
                    ("around", "around a random player (5 + 5)")):
        a, b = f"live_{s}", f"arch_{s}"
        L.append(f"| {what} | {n(f(a + '.rps'))} | {n(f(a + '.p50_us', ) and f(a + '.p50_us') / 1000, 2)} / "
                 f"{n(f(a + '.p99_us') and f(a + '.p99_us') / 1000, 2)} | {n(f(b + '.rps'))} | "
                 f"{n(f(b + '.p50_us') and f(b + '.p50_us') / 1000, 2)} / {n(f(b + '.p99_us') and f(b + '.p99_us') / 1000, 2)} | "
                 f"{x(f(b + '.rps'), f(a + '.rps'))} |")
    L += ["", f"The same entries both ways (a page at players/2 compared): {r.get('reads.same_answers', '?')}.", ""]
if "stats_view.rps" in r:
    L += [f"**Statistics**: `GET /stats` from the materialized view {n(f('stats_view.rps'))} req/s "
          f"(p99 {n(f('stats_view.p99_us') and f('stats_view.p99_us') / 1000, 2)} ms); the same statistics computed "
          f"live from `standings` (pgbench, 2 clients) {n(f('stats_live.rps'), 2)} per second "
          f"({n(f('stats_live.mean_ms'))} ms each): {x(f('stats_view.rps'), f('stats_live.rps'))}.", ""]
if "bloat.defaults.updates" in r:
    L += [f"**`standings` under {n(f('bloat.defaults.updates'))} score changes** (operator `latest`, scores:batch of 100; "
          "every change is a non-HOT update: `sort_key` is indexed):", "",
          "| settings | before: table / indexes | right after: table / indexes | dead rows | 60 s later: table / indexes | dead rows | autovacuums | writes took |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("defaults", "tuned", "naptime10s"):
        p = f"bloat.{name}."
        if p + "updates" not in r:
            continue
        setting = f"{name} (`{r.get(p + 'reloptions')}`" + (", server autovacuum_naptime 10 s" if name == "naptime10s" else "") + ")"
        L.append(f"| {setting} | {mib(p + 'before_heap')} / {mib(p + 'before_idx')} | "
                 f"{mib(p + 'after_heap')} / {mib(p + 'after_idx')} | {n(f(p + 'after_dead'))} | "
                 f"{mib(p + 'settled_heap')} / {mib(p + 'settled_idx')} | {n(f(p + 'settled_dead'))} | "
                 f"{n(f(p + 'autovacuums'))} | {r.get(p + 'write_s', '–')} s |")
    L += ["", "Samples every 5 s (ms, acknowledged, table bytes, index bytes, dead rows, autovacuums): "
          "`raw/bloat-*.txt`.", ""]
open(sys.argv[2], "w").write("\n".join(L) + "\n")
EOF
say "report: ${OUT#"$RANKD_ROOT"/}/report.md"
cat "$OUT/report.md"
