#!/usr/bin/env bash
# scripts/dev.sh — a local rankd to try, in one command.
#
#   bash scripts/dev.sh          install packages, build, start PostgreSQL 15 (primary 127.0.0.1:5433,
#                                streaming replica 127.0.0.1:5434) and Redis (127.0.0.1:6380) in
#                                .run/, migrate, (re)start rankd on http://127.0.0.1:8080, seed the
#                                demo boards once, print examples
#   bash scripts/dev.sh --redis cluster
#                                the same on a Redis Cluster of 3 masters and 3 replicas
#                                (127.0.0.1:7000-7005) instead of one Redis
#   bash scripts/dev.sh stop     stop rankd, Redis and PostgreSQL (by the PIDs in .run/)
#   bash scripts/dev.sh status   show what is running
#   bash scripts/dev.sh reset    stop, then delete .run/ (all local data)
#
# Re-runnable: PostgreSQL and Redis are reused when up, rankd is rebuilt and restarted.
# Ports can be moved with RANKD_DEV_HTTP_PORT, RANKD_DEV_PG_PORT, RANKD_DEV_PG_REPLICA_PORT,
# RANKD_DEV_REDIS_PORT, RANKD_DEV_CLUSTER_PORT (the first of the cluster's six).
set -euo pipefail

LIB_TAG=dev
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RANKD_ROOT"

RUN="$RANKD_ROOT/.run"
HTTP_PORT="${RANKD_DEV_HTTP_PORT:-8080}"
PG_PORT="${RANKD_DEV_PG_PORT:-5433}"
PG_REPLICA_PORT="${RANKD_DEV_PG_REPLICA_PORT:-5434}"
REDIS_PORT="${RANKD_DEV_REDIS_PORT:-6380}"
CLUSTER_PORT="${RANKD_DEV_CLUSTER_PORT:-7000}"
REDIS_MODE=single
if [ "${1:-}" = "--redis" ]; then
  case "${2:-}" in
    single|cluster) REDIS_MODE="$2" ;;
    *) echo "dev: --redis takes single or cluster" >&2; exit 2 ;;
  esac
  shift 2
fi
CONFIG="config/rankd.yaml"
BIN="$RANKD_ROOT/build/rankd"
BASE="http://127.0.0.1:$HTTP_PORT"
WRITE_KEY="dev-write-key-change-me"   # as in config/rankd.yaml
ADMIN_KEY="dev-admin-key-change-me"   # as in config/rankd.yaml

# Point rankd at what this script starts (the same values config/rankd.yaml holds;
# the environment wins over the file, so the two cannot drift apart).
export RANKD_LISTEN="127.0.0.1:$HTTP_PORT"
export RANKD_POSTGRES_PRIMARY="host=127.0.0.1 port=$PG_PORT dbname=rankd user=rankd"
export RANKD_POSTGRES_REPLICAS="host=127.0.0.1 port=$PG_REPLICA_PORT dbname=rankd user=rankd"
export RANKD_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
if [ "$REDIS_MODE" = cluster ]; then
  export RANKD_REDIS_URL="redis+cluster://127.0.0.1:$CLUSTER_PORT,127.0.0.1:$(( CLUSTER_PORT + 1 ))"
fi

stop_all() {
  rankd_down "$RUN/rankd.pid"
  redis_down "$RUN"
  redis_cluster_down "$RUN/redis-cluster"
  pg_down "$RUN" pg-replica
  pg_down "$RUN"
}

status() {
  local pid
  pid="$(pidfile_pid "$RUN/rankd.pid")"
  if [ -n "$pid" ] && pid_matches "$pid" rankd; then echo "rankd       running, pid $pid, $BASE";
  else echo "rankd       stopped"; fi
  pid="$(pidfile_pid "$RUN/redis.pid")"
  if [ -n "$pid" ] && pid_matches "$pid" redis-server; then echo "redis       running, pid $pid, 127.0.0.1:$REDIS_PORT";
  else echo "redis       stopped"; fi
  pid="$(pidfile_pid "$RUN/pg/postmaster.pid")"
  if [ -n "$pid" ] && pid_matches "$pid" postgres; then echo "postgresql  running, pid $pid, 127.0.0.1:$PG_PORT (primary)";
  else echo "postgresql  stopped"; fi
  pid="$(pidfile_pid "$RUN/pg-replica/postmaster.pid")"
  if [ -n "$pid" ] && pid_matches "$pid" postgres; then echo "replica     running, pid $pid, 127.0.0.1:$PG_REPLICA_PORT (streaming)";
  else echo "replica     stopped"; fi
}

case "${1:-start}" in
  start|up|"") ;;
  stop|down) stop_all; say "stopped"; exit 0 ;;
  status) status; exit 0 ;;
  reset) stop_all; rm -rf "$RUN"; say "removed .run/"; exit 0 ;;
  -h|--help|help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown command '$1' (try: start, stop, status, reset)" ;;
esac

[ "$(id -u)" = 0 ] || die "run as root (apt-get, and PostgreSQL runs as user postgres via runuser)"

say "checking packages (scripts/deps.sh)"
bash scripts/deps.sh

say "building (ninja -C build)"
rankd_build build || die "build failed; see the compiler output above"

mkdir -p "$RUN"
pg_up "$RUN" "$PG_PORT" || die "PostgreSQL did not start; see $RUN/pg.log"
pg_db "$PG_PORT" rankd
pg_replica_up "$RUN" "$PG_PORT" "$PG_REPLICA_PORT" || die "the PostgreSQL replica did not start; see $RUN/pg-replica.log"
if [ "$REDIS_MODE" = cluster ]; then
  redis_cluster_up "$RUN/redis-cluster" "$CLUSTER_PORT" 3 1 || die "the Redis Cluster did not start; see $RUN/redis-cluster/"
else
  redis_up "$RUN" "$REDIS_PORT" || die "Redis did not start; see $RUN/redis.log"
fi

# A clean restart: stop the rankd we started before, then migrate, then start.
rankd_down "$RUN/rankd.pid"
if port_in_use "$HTTP_PORT"; then
  die "port $HTTP_PORT is taken by a process this script did not start (see: ss -ltnp 'sport = :$HTTP_PORT')"
fi

say "migrating (rankd migrate up)"
rankd_migrate "$BIN" "$CONFIG" || die "migration failed"

say "starting rankd (log: .run/rankd.log)"
echo "--- $(date -u +%FT%TZ) rankd serve" >>"$RUN/rankd.log"
rankd_up "$BIN" "$CONFIG" "$RUN/rankd.pid" "$RUN/rankd.log"
wait_ready "$BASE" "$RUN/rankd.pid" "$RUN/rankd.log" 30 || die "rankd is not ready"

# Seed once: only while arcade has no players.
players="$(json_get "$BASE/v1/leaderboards/arcade" players)"
if [ -z "$players" ]; then
  die "GET /v1/leaderboards/arcade did not answer with a board; is it declared in $CONFIG?"
elif [ "$players" = 0 ]; then
  say "seeding demo boards: arcade 3000 players, speedrun 2000 players"
  seed "$BASE" "$WRITE_KEY" arcade 3000 arcade || die "seeding arcade failed"
  seed "$BASE" "$WRITE_KEY" speedrun 2000 speedrun || die "seeding speedrun failed"
  # Statistics come from materialized views: refresh them now rather than within the minute.
  "$BIN" refresh -c "$CONFIG" >/dev/null || die "rankd refresh failed"
else
  say "arcade already has $players players; not seeding"
fi

# The examples below must work: check the reads before printing them.
examples_ok=1
for path in "/v1/leaderboards" "/v1/leaderboards/arcade/entries?limit=10" \
            "/v1/leaderboards/arcade/players/p000042" \
            "/v1/leaderboards/arcade/players/p000042/around?before=2&after=2" \
            "/v1/leaderboards/arcade/players?ids=p000001,p000042,p000777"; do
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE$path" || true)"
  if [ "$code" != 200 ]; then say "warning: GET $path answered $code"; examples_ok=0; fi
done

cat <<EOF

rankd is running at $BASE   (dashboard $BASE/dashboard/; pid $(pidfile_pid "$RUN/rankd.pid"); log .run/rankd.log)
PostgreSQL primary 127.0.0.1:$PG_PORT (psql -h 127.0.0.1 -p $PG_PORT -U rankd rankd),
streaming replica 127.0.0.1:$PG_REPLICA_PORT (reads go there), Redis $RANKD_REDIS_URL

Try:
  # the boards
  curl -s $BASE/v1/leaderboards
  # top 10 of arcade
  curl -s '$BASE/v1/leaderboards/arcade/entries?limit=10'
  # one player's rank
  curl -s $BASE/v1/leaderboards/arcade/players/p000042
  # the players around them
  curl -s '$BASE/v1/leaderboards/arcade/players/p000042/around?before=2&after=2'
  # friends: several players at once, in rank order
  curl -s '$BASE/v1/leaderboards/arcade/players?ids=p000001,p000042,p000777'
  # which PostgreSQL node answers what: roles, states, lag (an admin key; without one, the status alone)
  curl -s $BASE/readyz -H 'Authorization: Bearer $ADMIN_KEY'
  # submit a score (write key)
  curl -s -X POST $BASE/v1/leaderboards/arcade/scores \\
       -H 'Authorization: Bearer $WRITE_KEY' -H 'Content-Type: application/json' \\
       -d '{"player_id":"p000042","score":900000}'

Stop everything with: bash scripts/dev.sh stop
EOF
[ "$examples_ok" = 1 ] || say "warning: some examples did not answer 200 (see above)"
