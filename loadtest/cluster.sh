#!/usr/bin/env bash
# loadtest/cluster.sh — rank reads past one Redis (issue 17), measured on this machine.
#
#   bash loadtest/cluster.sh [--players N] [--boards K] [--duration 20s] [--out DIR]
#
# It starts its own PostgreSQL, one Redis, and a Redis Cluster of two masters with a replica
# each (loopback, free ports, a temporary folder), seeds K boards of N players, and runs wrk's
# rank reads (a random seeded player of a random board; rankd's response cache off, so every
# read reaches Redis) against one rankd at a time:
#   single    K boards, one Redis (redis://)
#   spread    K boards, the cluster's two masters (redis+cluster://): the boards' slots fall on both
#   hot       one board, the cluster, reads from its master only
#   replicas  one board, the cluster, redis.read_from: replicas (a caught-up replica answers)
#   hot_w, replicas_w   the same two with a write stream on that board meanwhile (one wrk
#             connection of submissions, on CPU 1): how often the replica is behind its master
# For each: requests/s, and the CPU microseconds per request of rankd and of every Redis process
# (/proc), so that where the CPU went is on the record. The ratios spread/single and
# replicas/hot are the figures issue 17 asks for. rankd and every Redis share CPU 0, wrk runs on
# CPU 1 (on a 2-core machine there is no third core for a second master to scale onto).
# Output: loadtest/out/cluster/report.md and results.txt.
set -euo pipefail

LIB_TAG=cluster
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RANKD_ROOT"
LT="$RANKD_ROOT/loadtest"
PLAYERS=100000 BOARDS=4 DUR=20s OUT="" SERVER_CPUS=0 CLIENT_CPUS=1 CONNS=64
while [ $# -gt 0 ]; do
  case "$1" in
    --players) PLAYERS="$2"; shift 2 ;;
    --boards) BOARDS="$2"; shift 2 ;;
    --duration) DUR="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL runs as user postgres via runuser)"
if [ "$(nproc --all)" -lt 2 ]; then SERVER_CPUS="" CLIENT_CPUS=""; fi
CLIENT=()
if [ -n "$CLIENT_CPUS" ]; then CLIENT=(taskset -c "$CLIENT_CPUS"); fi

bash scripts/deps.sh
rankd_build build || die "build failed"
BIN="$RANKD_ROOT/build/rankd"
TMP="$(mktemp -d /tmp/rankd-cluster-lt.XXXXXX)"
chmod 755 "$TMP"
OUT="${OUT:-$LT/out/cluster}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  rankd_down "$TMP/rankd.pid"
  redis_cluster_down "$TMP/cluster"
  stack_down "$rc" "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PG_PORT REDIS_PORT HTTP_PORT <<<"$(free_ports 3)"
# Four consecutive ports whose cluster bus ports (10000 above) are free too.
CL_PORT=""
for try in $(seq 1 50); do
  p=$(( 20000 + (RANDOM % 20000) ))
  ok=1
  for i in 0 1 2 3; do
    if port_in_use $(( p + i )) || port_in_use $(( p + i + 10000 )); then ok=0; fi
  done
  if [ "$ok" = 1 ]; then CL_PORT="$p"; break; fi
done
[ -n "$CL_PORT" ] || die "no four free consecutive ports for the cluster"
stack_up "$TMP" "$PG_PORT" "$REDIS_PORT" "$SERVER_CPUS"
redis_cluster_up "$TMP/cluster" "$CL_PORT" 2 1 "$SERVER_CPUS" || die "the Redis Cluster did not start"
CLUSTER_URL="redis+cluster://127.0.0.1:$CL_PORT,127.0.0.1:$(( CL_PORT + 1 ))"
ADMIN_KEY="cluster-admin-$RANDOM$RANDOM"
WRITE_KEY="cluster-write-$RANDOM$RANDOM"

config() {   # config REDIS_URL READ_FROM
  cat >"$TMP/rankd.yaml" <<EOF
development: true
listen: "127.0.0.1:$HTTP_PORT"
log_level: warn
postgres:
  primary: "host=127.0.0.1 port=$PG_PORT dbname=rankd user=rankd"
redis:
  url: "$1"
  read_from: $2
refresh:
  interval_s: 0
http:
  max_connections_per_ip: 0   # every connection of the load comes from 127.0.0.1
cache:
  max_bytes: 0   # every read reaches Redis: this measures Redis, not the response cache
auth:
  cursor_secret: "cluster-cursor-secret-$RANDOM$RANDOM"
  keys:
    - key: "$ADMIN_KEY"
      role: admin
    - key: "$WRITE_KEY"
      role: write
EOF
}
start_rankd() {   # start_rankd REDIS_URL READ_FROM
  rankd_down "$TMP/rankd.pid"
  config "$1" "$2"
  rankd_up "$BIN" "$TMP/rankd.yaml" "$TMP/rankd.pid" "$TMP/rankd.log" "$SERVER_CPUS" || die "rankd did not start"
  wait_ready "http://127.0.0.1:$HTTP_PORT" "$TMP/rankd.pid" "$TMP/rankd.log" 60 || die "rankd is not ready"
}

config "redis://127.0.0.1:$REDIS_PORT/0" master
rankd_migrate "$BIN" "$TMP/rankd.yaml" >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "migration failed"; }
start_rankd "redis://127.0.0.1:$REDIS_PORT/0" master
LIST=""
for i in $(seq 1 "$BOARDS"); do
  id="b$i"
  code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$HTTP_PORT/v1/leaderboards" \
    -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    -d "{\"id\":\"$id\",\"title\":\"$id\",\"sort\":\"desc\",\"operator\":\"best\",\"reset\":\"none\"}")"
  [ "$code" = 201 ] || die "creating board $id: $code"
  gen="$("${PSQL[@]}" -c "SELECT gen FROM boards WHERE id = '$id'")"
  say "seeding $id: $PLAYERS players"
  timeout 600 "${PSQL[@]}" -v gen="$gen" -v n="$PLAYERS" -v seed="0.$i" \
    -v base_ms="$(( $(date +%s) * 1000 - 86400000 ))" -f "$LT/seed.sql" >"$TMP/seed.log" 2>&1 \
    || { cat "$TMP/seed.log" >&2; die "seeding failed"; }
  LIST="${LIST:+$LIST,}$id"
done
rankd_down "$TMP/rankd.pid"
for url in "redis://127.0.0.1:$REDIS_PORT/0" "$CLUSTER_URL"; do
  config "$url" master
  for i in $(seq 1 "$BOARDS"); do
    "$BIN" rebuild-cache --board "b$i" -c "$TMP/rankd.yaml" >>"$TMP/rebuild.log" 2>&1 || die "rebuild-cache b$i failed"
  done
done

# The Redis processes, by name, for the CPU figures.
declare -A RPID=([redis]="$(pidfile_pid "$TMP/redis.pid")")
for i in 0 1 2 3; do
  port=$(( CL_PORT + i ))
  role="$(redis-cli -p "$port" role | head -n1)"
  RPID["${role}_$port"]="$(pidfile_pid "$TMP/cluster/node-$port/redis.pid")"
done
for i in 0 1 2 3; do
  port=$(( CL_PORT + i ))
  say "cluster node $port: $(redis-cli -p "$port" role | head -n1), $(redis-cli -p "$port" dbsize) keys"
done

ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
: >"$OUT/results.txt"
rec() { echo "$1 $2" >>"$OUT/results.txt"; }

run() {   # run NAME BOARDS [writes]
  local name="$1" boards="$2" writes="${3:-}" k before=() after=() rankd_pid wpid=""
  rankd_pid="$(pidfile_pid "$TMP/rankd.pid")"
  # a warm-up, unmeasured: connections, scripts, the first replica offsets
  "${CLIENT[@]}" wrk -t 1 -c "$CONNS" -d 3s -s "$LT/rank.lua" "http://127.0.0.1:$HTTP_PORT" -- \
    boards="$boards" players="$PLAYERS" width=12 >/dev/null 2>&1 || true
  local keys=(rankd "${!RPID[@]}")
  before=("$(ticks "$rankd_pid")")
  for k in "${!RPID[@]}"; do before+=("$(ticks "${RPID[$k]}")"); done
  if [ -n "$writes" ]; then
    "${CLIENT[@]}" wrk -t 1 -c 1 -d "$DUR" --timeout 5s -s "$LT/submit.lua" "http://127.0.0.1:$HTTP_PORT" -- \
      board="${boards%%,*}" players="$PLAYERS" width=12 key="$WRITE_KEY" >"$OUT/wrk-$name-writes.txt" 2>&1 &
    wpid=$!
  fi
  "${CLIENT[@]}" wrk -t 1 -c "$CONNS" -d "$DUR" --timeout 5s -s "$LT/rank.lua" "http://127.0.0.1:$HTTP_PORT" -- \
    boards="$boards" players="$PLAYERS" width=12 >"$OUT/wrk-$name.txt" 2>&1 || die "wrk failed: $name"
  if [ -n "$wpid" ]; then
    wait "$wpid" || die "the writes' wrk failed: $name"
    rec "$name.writes_per_s" "$(grep '^RESULT ' "$OUT/wrk-$name-writes.txt" | sed 's/.* rps=\([0-9.]*\).*/\1/')"
  fi
  after=("$(ticks "$rankd_pid")")
  for k in "${!RPID[@]}"; do after+=("$(ticks "${RPID[$k]}")"); done
  local line requests rps bad
  line="$(grep '^RESULT ' "$OUT/wrk-$name.txt")"
  requests="$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$line")"
  rps="$(sed 's/.* rps=\([0-9.]*\).*/\1/' <<<"$line")"
  bad="$(sed 's/.* non2xx=\([0-9]*\).*/\1/' <<<"$line")"
  rec "$name.rps" "$rps"
  rec "$name.non2xx" "$bad"
  for i in "${!keys[@]}"; do
    rec "$name.cpu_us.${keys[$i]}" "$(awk -v a="${after[$i]}" -v b="${before[$i]}" -v n="$requests" -v hz="$CLK_TCK" \
      'BEGIN { printf "%.1f", (n > 0 ? (a - b) * 1e6 / hz / n : 0) }')"
  done
  curl -s -H "Authorization: Bearer $ADMIN_KEY" "http://127.0.0.1:$HTTP_PORT/metrics" >"$OUT/metrics-$name.txt"
  for m in rankd_reads_redis_total rankd_redis_replica_reads_total rankd_redis_replica_behind_total \
           rankd_redis_redirects_total; do
    rec "$name.$m" "$(awk -v n="$m" '$1 == n { print $2 }' "$OUT/metrics-$name.txt")"
  done
  say "$name: $rps requests/s, $bad not 2xx"
}

start_rankd "redis://127.0.0.1:$REDIS_PORT/0" master
run single "$LIST"
start_rankd "$CLUSTER_URL" master
run spread "$LIST"
run hot b1
run hot_w b1 writes
start_rankd "$CLUSTER_URL" replicas
run replicas b1
run replicas_w b1 writes
rankd_down "$TMP/rankd.pid"

"$PYTHON" - "$OUT" "$PLAYERS" "$BOARDS" "$DUR" <<'EOF'
import sys
out, players, boards, dur = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
R = dict((l.split(None, 1) + [""])[:2] for l in open(out + "/results.txt").read().splitlines() if l.strip())
f = lambda k: float(R.get(k, "0") or 0)
L = [f"# Rank reads past one Redis: {boards} boards of {players:,} players, {dur} per run", "",
     "rankd and every Redis process share CPU 0, wrk runs on CPU 1; rankd's response cache is off.", "",
     "| run | requests/s | not 2xx | CPU µs/request: rankd | " + " | ".join(
         sorted(k.split(".", 2)[2] for k in R if k.startswith("single.cpu_us.") and k != "single.cpu_us.rankd")) +
     " | commands a replica answered | sent again to the master |",
     "|---|---:|---:|---:|" + "---:|" * (len([k for k in R if k.startswith("single.cpu_us.")]) - 1) + "---:|---:|"]
procs = sorted(k.split(".", 2)[2] for k in R if k.startswith("single.cpu_us.") and k != "single.cpu_us.rankd")
for run in ("single", "spread", "hot", "replicas", "hot_w", "replicas_w"):
    L.append(f"| {run} | {f(run + '.rps'):,.0f} | {f(run + '.non2xx'):.0f} | {f(run + '.cpu_us.rankd'):.1f} | " +
             " | ".join(f"{f(run + '.cpu_us.' + p):.1f}" for p in procs) +
             f" | {f(run + '.rankd_redis_replica_reads_total'):,.0f} | {f(run + '.rankd_redis_replica_behind_total'):,.0f} |")
spread = f("spread.rps") / f("single.rps") if f("single.rps") else 0
rep = f("replicas.rps") / f("hot.rps") if f("hot.rps") else 0
rep_w = f("replicas_w.rps") / f("hot_w.rps") if f("hot_w.rps") else 0
L += ["", f"- spread over two masters / one Redis: **{spread:.2f}**",
      f"- one hot board, replica reads / master only: **{rep:.2f}**",
      f"- the same under {f('replicas_w.writes_per_s'):,.0f} writes/s to that board: **{rep_w:.2f}**"]
open(out + "/report.md", "w").write("\n".join(L) + "\n")
open(out + "/results.txt", "a").write(f"ratio.spread_over_single {spread:.3f}\nratio.replicas_over_master {rep:.3f}\n"
                                     f"ratio.replicas_over_master_with_writes {rep_w:.3f}\n")
print("\n".join(L))
EOF
