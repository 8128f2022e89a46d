#!/usr/bin/env bash
# loadtest/live.sh — live streams (issue 52, item 4): what L open streams cost one rankd, and how
# long a write takes to reach them, on the instance that took it and on another.
#
#   bash loadtest/live.sh                         the full run: 20,000 listeners, 2,000
#                                                 submissions/s, 20 s a phase (2.5 minutes)
#   bash loadtest/live.sh --listeners 400 --writes 100 --duration 20s --players 100000
#                                                 a small run (development)
#
# It starts its own PostgreSQL 15 (the settings of loadtest/run.sh), Redis and two rankd instances
# (A and B, sharing both; B hears A's commits through NOTIFY) on free loopback ports in a temporary
# folder, every server pinned to CPU 0 and the load (loadtest/live.py) to CPU 1, and stops all of
# them by PID at the end, also on failure or Ctrl-C. Boards: `big`, --players players (1,000,000;
# operator latest, seeded by SQL with loadtest/seed.sql -v det=1: known scores, then `rankd
# rebuild-cache`), and
# --boards boards t000… (100) of 100 players each (seeded through scores:batch).
#
# Listeners (all on A but the probes): half the top-10 streams of the t boards
# (GET /v1/leaderboards/tNNN/live?top=10), half player streams of --distinct-players random players
# of big (GET /v1/leaderboards/big/players/{p}/live?around=5) when the build has them (else all top
# streams, and results.txt says so). Phases, each --duration long unless said:
#   idle      RSS of A before and after the listeners opened (each has had its first event):
#             the bytes per idle listener; then 5 s with no write (heartbeats only). Before it, as
#             many plain keep-alive connections (one read each) to B: a connection's own bytes
#             (rankd keeps its connections under its descriptor limit: where `ulimit -Hn` cannot
#             rise (a container without CAP_SYS_RESOURCE), L is at most that limit less 400)
#   push      the writer sends --writes submissions/s to A (half new #1s of the t boards, each a
#             score of its own, half new scores of the listened players of big), scores:batch of
#             --batch items (1: lone POSTs): rankd's CPU and RSS, events delivered, CPU per event,
#             and the delay from each write's acknowledgement to the first event that shows it, on
#             probe listeners of A and of B (one per t board and per probed player on each), p50/p99
#   writes    the streams closed, the same writes (10 s at most): what the writes alone cost
#   poll      the same listeners as keep-alive connections reading the same answers once a second
#             (GET …/entries?limit=10, GET …/players/{p}/around?before=5&after=5), the same writes:
#             rankd's CPU for polling against push
# Output: loadtest/out/live/results.txt (key=value, as run.sh's) and report.md.
#
# Options: --listeners L (20000), --writes S (2000), --duration D (20s), --players N (1000000),
#   --boards K (100), --distinct-players P (1000), --batch N (10), --probe-players N (50),
#   --rank-tier SIZE (cache.rank_tier of both instances, 1GiB; 0: streams read from the primary),
#   --min-interval-ms MS (live.min_interval_ms, rankd's default 100: a stream that changes more often
#   than that waits for it),
#   --top-share F (the share of the writes that are new #1s of the top boards, evenly spread: 0.5,
#   the default, makes each board's top change writes*0.5/boards times a second, 10 at 2,000/s: about
#   5 events per top listener per second; the rest are new scores of listened players),
#   --moves small|random (a listened player's new score: its last + 1..1,000, passing few others,
#   the default; or anywhere in 0..1,000,000, passing a third of the board: every player stream
#   changes at each write), --a-cpus LIST (the CPUs of rankd A, the instance holding the listeners
#   and taking the writes; default: the servers' CPU 0. `--a-cpus 1` gives A the load's core, so
#   that it shares no core with PostgreSQL, Redis and B, as an instance of the capacity plan does),
#   --bin PATH (default: a release build in build-release/), --out DIR, --keep.
# Not in CI and not in loadtest/baseline.txt (too long for CI's budget): run it by hand.

# The EXIT trap is called indirectly:
# shellcheck disable=SC2317
set -euo pipefail

LIB_TAG=live
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RANKD_ROOT"
LT="$RANKD_ROOT/loadtest"
COMMAND="bash loadtest/live.sh${*:+ $*}"

LISTENERS=20000 WRITES=2000 DURATION=20s PLAYERS=1000000 BOARDS=100 DISTINCT=1000 BATCH=10 PROBE_PLAYERS=50
BIN="" OUT="" KEEP=0 SERVER_CPUS=0 CLIENT_CPUS=1 A_CPUS="" RANK_TIER=1GiB MIN_INTERVAL_MS=100 MOVES=small TOP_SHARE=0.5
while [ $# -gt 0 ]; do
  case "$1" in
    --listeners) LISTENERS="$2"; shift 2 ;;
    --writes) WRITES="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --players) PLAYERS="$2"; shift 2 ;;
    --boards) BOARDS="$2"; shift 2 ;;
    --distinct-players) DISTINCT="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    --probe-players) PROBE_PLAYERS="$2"; shift 2 ;;
    --rank-tier) RANK_TIER="$2"; shift 2 ;;
    --min-interval-ms) MIN_INTERVAL_MS="$2"; shift 2 ;;
    --moves) MOVES="$2"; shift 2 ;;
    --top-share) TOP_SHARE="$2"; shift 2 ;;
    --a-cpus) A_CPUS="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^# Not in CI/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for v in LISTENERS WRITES PLAYERS BOARDS DISTINCT BATCH PROBE_PLAYERS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--$(tr 'A-Z_' 'a-z-' <<<"$v") wants a positive integer"
done
[[ "$DURATION" =~ ^[1-9][0-9]*s?$ ]] || die "--duration wants seconds, e.g. 30s"
DUR_S="${DURATION%s}"
[ "$BATCH" -le 1000 ] || die "--batch: at most 1,000"
case "$MOVES" in small|random) ;; *) die "--moves: small or random" ;; esac
[[ "$TOP_SHARE" =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || die "--top-share: a number from 0 to 1"
[ "$BOARDS" -le 1000 ] || die "--boards: at most 1,000"
[ "$DISTINCT" -le "$PLAYERS" ] || die "--distinct-players: at most --players"
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL runs as user postgres via runuser)"
if [ "$(nproc --all)" -lt 2 ]; then say "fewer than 2 CPUs: not pinning"; SERVER_CPUS="" CLIENT_CPUS="" A_CPUS=""; fi
A_CPUS="${A_CPUS:-$SERVER_CPUS}"
CLIENT=()
if [ -n "$CLIENT_CPUS" ]; then CLIENT=(taskset -c "$CLIENT_CPUS"); fi

# Every stream is a descriptor, in rankd (its connection limit: http.max_connections, kept by rankd
# under its descriptor limit less 256) and in the client (which spreads them over processes of 15,000).
# Take the hard limit; raising it needs CAP_SYS_RESOURCE, which a container may not give.
ulimit -Hn $(( LISTENERS + 20000 )) 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" || die "cannot raise the descriptor limit (ulimit -n)"
NOFILE="$(ulimit -n)"
[ "$NOFILE" = unlimited ] || [ $(( LISTENERS + 400 )) -le "$NOFILE" ] \
  || die "--listeners $LISTENERS: rankd may hold $NOFILE descriptors here (ulimit -Hn, not raisable without CAP_SYS_RESOURCE): at most $(( NOFILE - 400 ))"

trap loadtest_unlock EXIT
loadtest_lock

if [ -z "$BIN" ]; then
  say "building a release binary (ninja -C build-release)"
  rankd_build build-release --buildtype=release -Db_sanitize=none -Dwerror=false || die "build failed"
  BIN="$RANKD_ROOT/build-release/rankd"
fi
[ -x "$BIN" ] || die "no rankd binary at $BIN"

TMP="$(mktemp -d /tmp/rankd-live.XXXXXX)"
chmod 755 "$TMP"
OUT="${OUT:-$LT/out/live}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT/results.txt" "$OUT/report.md"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  rankd_down "$TMP/a.pid"
  rankd_down "$TMP/b.pid"
  redis_down "$TMP"
  pg_down "$TMP"
  loadtest_unlock
  if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then say "kept $TMP (a.log, b.log, pg.log, seed output)"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PG_PORT REDIS_PORT A_PORT B_PORT <<<"$(free_ports 4)"
export PG_EXTRA_CONF="
# --- loadtest/live.sh (as loadtest/run.sh) ---
shared_buffers = 1GB
synchronous_commit = on
fsync = on
max_connections = 200"
stack_up "$TMP" "$PG_PORT" "$REDIS_PORT" "$SERVER_CPUS"
ADMIN_KEY="live-admin-$RANDOM$RANDOM$RANDOM"
WRITE_KEY="live-write-$RANDOM$RANDOM$RANDOM"
cat >"$TMP/rankd.yaml" <<EOF
development: true
listen: "127.0.0.1:$A_PORT"
log_level: warn
postgres:
  primary: "host=127.0.0.1 port=$PG_PORT dbname=rankd user=rankd"
  replicas: []
redis:
  url: "redis://127.0.0.1:$REDIS_PORT/0"
refresh:
  interval_s: 0
cache:
  rank_tier: $RANK_TIER   # streams read through it when it holds the window (0: from the primary)
http:
  # every stream and poller of the load comes from loopback addresses: raise what one address may hold
  max_connections: $(( LISTENERS + 10000 ))
  max_connections_per_ip: 0
live:
  max_listeners: $(( LISTENERS + 10000 ))
  max_listeners_per_address: 1000000
  min_interval_ms: $MIN_INTERVAL_MS
auth:
  public_reads: true
  cursor_secret: "live-cursor-secret-$RANDOM$RANDOM$RANDOM$RANDOM"
  keys:
    - key: "$ADMIN_KEY"
      role: admin
    - key: "$WRITE_KEY"
      role: write
EOF
export RANKD_MIGRATIONS_DIR="$RANKD_ROOT/migrations"
unset RANKD_POSTGRES_REPLICAS RANKD_REDIS_URL RANKD_LISTEN 2>/dev/null || true
rankd_migrate "$BIN" "$TMP/rankd.yaml" >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "migration failed"; }

start() {   # start NAME PORT [CPUS]
  say "starting rankd $1 on 127.0.0.1:$2${3:+ (CPUs $3)}"
  ( export RANKD_LISTEN="127.0.0.1:$2"
    rankd_up "$BIN" "$TMP/rankd.yaml" "$TMP/$1.pid" "$TMP/$1.log" "${3:-$SERVER_CPUS}" ) || die "rankd $1 did not start"
  wait_ready "http://127.0.0.1:$2" "$TMP/$1.pid" "$TMP/$1.log" 60 || die "rankd $1 is not ready"
}
create_board() {   # create_board ID OPERATOR
  local code
  code="$(curl -s -o "$TMP/board.json" -w '%{http_code}' --max-time 10 -X POST "http://127.0.0.1:$A_PORT/v1/leaderboards" \
    -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d "{\"id\":\"$1\",\"title\":\"Live load $1\",\"sort\":\"desc\",\"operator\":\"$2\",\"reset\":\"none\"}" || echo 000)"
  case "$code" in 200|201) ;; *) die "POST /v1/leaderboards ($1) -> $code: $(head -c 300 "$TMP/board.json")" ;; esac
}

start a "$A_PORT" "$A_CPUS"
say "creating big and $BOARDS top boards"
create_board big latest
for ((i = 0; i < BOARDS; i++)); do create_board "$(printf 't%03d' "$i")" best; done
rankd_down "$TMP/a.pid"   # big is seeded behind rankd's back: it must hold nothing about it
BIG_GEN="$("${PSQL[@]}" -c "SELECT gen FROM boards WHERE id = 'big'")"
say "seeding big ($PLAYERS players) by SQL (loadtest/seed.sql)"
t0=$EPOCHREALTIME
timeout 1200 "${PSQL[@]}" -v gen="$BIG_GEN" -v n="$PLAYERS" -v seed=0.52 -v det=1 \
  -v base_ms="$(( $(date +%s) * 1000 - 86400000 ))" -f "$LT/seed.sql" >"$TMP/seed-big.log" 2>&1 \
  || { cat "$TMP/seed-big.log" >&2; die "seeding big failed"; }
timeout 1200 "$BIN" rebuild-cache --board big -c "$TMP/rankd.yaml" >"$TMP/rebuild-big.log" 2>&1 \
  || { cat "$TMP/rebuild-big.log" >&2; die "rankd rebuild-cache --board big failed"; }
seed_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
start a "$A_PORT" "$A_CPUS"
start b "$B_PORT"
say "seeding the top boards (100 players each, through scores:batch)"
"$PYTHON" - "http://127.0.0.1:$A_PORT" "$WRITE_KEY" "$BOARDS" <<'PY' || die "seeding the top boards failed"
import json, random, sys, urllib.request
base, key, boards = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(52)
items = [{"board": "t%03d" % b, "player_id": "s%03d" % i, "score": rng.randint(0, 1000000)}
         for b in range(boards) for i in range(100)]
for k in range(0, len(items), 1000):
    req = urllib.request.Request(base + "/v1/scores:batch", data=json.dumps({"scores": items[k:k + 1000]}).encode(),
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    body = json.load(urllib.request.urlopen(req, timeout=60))
    bad = [r for r in body["results"] if "error" in r]
    if bad:
        sys.exit("seed: %s" % json.dumps(bad[0]))
PY

: >"$OUT/results.txt"
rec() { printf '%s=%s\n' "$1" "$2" >>"$OUT/results.txt"; }
rec live.meta.command "$COMMAND"
rec live.meta.date "$(date -u +'%Y-%m-%d %H:%M UTC')"
rec live.meta.commit "$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo '+uncommitted src changes')"
rec live.meta.binary "${BIN#"$RANKD_ROOT"/}"
rec live.meta.cpus "$(nproc --all)"
rec live.meta.cpu_model "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
rec live.meta.server_cpus "${SERVER_CPUS:-any}"
rec live.meta.a_cpus "${A_CPUS:-any}"
rec live.meta.client_cpus "${CLIENT_CPUS:-any}"
rec live.meta.seed_big_s "$seed_s"
rec live.meta.nofile "$(ulimit -n)"
rec live.meta.rank_tier "$RANK_TIER"
rec live.meta.min_interval_ms "$MIN_INTERVAL_MS"

say "load: $LISTENERS listeners, $WRITES submissions/s, ${DUR_S} s a phase (loadtest/live.py)"
"${CLIENT[@]}" "$PYTHON" "$LT/live.py" \
  --a "127.0.0.1:$A_PORT" --b "127.0.0.1:$B_PORT" \
  --pid-a "$(pidfile_pid "$TMP/a.pid")" --pid-b "$(pidfile_pid "$TMP/b.pid")" \
  --pid-pg "$(pidfile_pid "$TMP/pg/postmaster.pid")" --pid-redis "$(pidfile_pid "$TMP/redis.pid")" \
  --admin-key "$ADMIN_KEY" --write-key "$WRITE_KEY" \
  --listeners "$LISTENERS" --writes "$WRITES" --duration "$DUR_S" --players "$PLAYERS" \
  --boards "$BOARDS" --distinct-players "$DISTINCT" --batch "$BATCH" --probe-players "$PROBE_PLAYERS" \
  --rank-tier "$RANK_TIER" --moves "$MOVES" --top-share "$TOP_SHARE" --min-interval-ms "$MIN_INTERVAL_MS" \
  --out "$OUT" 2>&1 | tee "$OUT/live.log" && rc=0 || rc=${PIPESTATUS[0]}
for n in a b; do
  pid_matches "$(pidfile_pid "$TMP/$n.pid")" rankd || { say "rankd $n died during the run"; tail -n 30 "$TMP/$n.log" >&2; rc=1; }
  grep -E 'error|warn' "$TMP/$n.log" | tail -n 20 >"$OUT/rankd-$n.warnings.txt" || true
done
[ "$rc" = 0 ] || die "live.py failed (exit $rc)"
say "results: $OUT/results.txt, report: $OUT/report.md"
