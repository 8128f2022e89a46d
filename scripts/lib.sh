# scripts/lib.sh — shell functions shared by scripts/dev.sh and loadtest/run.sh.
# Source it (bash only). It starts and stops local PostgreSQL 15, Redis and rankd,
# each in a state folder the caller chooses, and always stops them by PID.
# shellcheck shell=bash

RANKD_ROOT="${RANKD_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
PYTHON="${PYTHON:-/usr/bin/python3}"   # Debian's python3: it has requests (scripts/deps.sh)
LIB_TAG="${LIB_TAG:-rankd}"

say() { printf '[%s] %s\n' "$LIB_TAG" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$LIB_TAG" "$*" >&2; exit 1; }

# taskset prefix for a CPU list ("" = no pinning).
pin() { if [ -n "${1:-}" ]; then echo "taskset -c $1"; fi; }

# --- processes -----------------------------------------------------------------

# pid_matches PID WORD: PID is alive and its command line contains WORD
# (guards against stale pidfiles whose PID was reused by something else).
pid_matches() {
  local pid="$1" word="$2"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$word"  # a process exiting meanwhile: ESRCH on read
}

# pidfile_pid FILE: first line of FILE if it is a number, else nothing.
pidfile_pid() {
  local f="$1" p
  [ -r "$f" ] || return 0
  p="$(head -n1 "$f" 2>/dev/null | tr -dc '0-9')"
  [ -n "$p" ] && echo "$p"
  return 0
}

# stop_pid PID WORD [TIMEOUT_S]: SIGTERM, wait, then SIGKILL. Only if PID is WORD.
stop_pid() {
  local pid="$1" word="$2" t="${3:-15}" i
  pid_matches "$pid" "$word" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < t * 10; i++)); do
    pid_matches "$pid" "$word" || return 0
    sleep 0.1
  done
  say "$word (pid $pid) did not stop in ${t}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do pid_matches "$pid" "$word" || return 0; sleep 0.1; done
}

# port_in_use PORT: something listens on 127.0.0.1:PORT (or on every address).
port_in_use() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# free_port: a TCP port nothing listens on now.
free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# free_ports N: N distinct TCP ports nothing listens on now (bound together, so all differ).
free_ports() {
  "$PYTHON" -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# bg_up PIDFILE LOGFILE CPUS CMD [ARGS...]: start CMD in the background in its own session,
# pinned to CPUS when given ("" = not pinned), and record its PID (the exec'd shell's PID is CMD's).
bg_up() {
  local pidfile="$1" log="$2" cpus="$3" name="$4" i
  shift 3
  rm -f "$pidfile"
  # shellcheck disable=SC2016,SC2046
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" $(pin "$cpus") "$@" \
    </dev/null >>"$log" 2>&1 &
  for ((i = 0; i < 50; i++)); do [ -s "$pidfile" ] && break; sleep 0.05; done
  [ -s "$pidfile" ] || { say "$name did not start"; return 1; }
}

# bg_down PIDFILE WORD: stop what bg_up started (only while its command line still has WORD).
bg_down() {
  local pid; pid="$(pidfile_pid "$1")"
  if [ -n "$pid" ] && pid_matches "$pid" "$2"; then stop_pid "$pid" "$2" 10; fi
  rm -f "$1"
}

# --- one load test at a time on this machine ----------------------------------------------
# Two runs at once share the two CPUs (and loadtest/out/): both would measure nonsense. A run
# holds /tmp/rankd-loadtest.lock (a folder with its PID); the next one waits, at most 30 min.
# A lock whose holder is no longer a load test's script (*.sh) is stale and removed.
LOADTEST_LOCK=/tmp/rankd-loadtest.lock

# loadtest_lock: take the lock (waiting for another run); loadtest_unlock: give it back if ours.
loadtest_lock() {
  local i holder
  for ((i = 0; i < 1800; i++)); do
    if mkdir "$LOADTEST_LOCK" 2>/dev/null; then echo "$$" >"$LOADTEST_LOCK/pid"; return 0; fi
    holder="$(pidfile_pid "$LOADTEST_LOCK/pid")"
    if [ "$i" -gt 2 ] && { [ -z "$holder" ] || ! pid_matches "$holder" .sh; }; then
      say "removing a stale lock of PID ${holder:-?}"; rm -rf "$LOADTEST_LOCK"; continue
    fi
    if [ "$i" = 0 ]; then say "another load test (PID ${holder:-?}) is running; waiting for it (at most 30 min)"; fi
    sleep 1
  done
  die "another load test still holds $LOADTEST_LOCK after 30 minutes"
}
loadtest_unlock() {
  if [ "$(pidfile_pid "$LOADTEST_LOCK/pid")" = "$$" ]; then rm -rf "$LOADTEST_LOCK"; fi
}

# --- build ---------------------------------------------------------------------

# rankd_build BUILDDIR [MESON_SETUP_ARGS...]: configure once, then ninja.
rankd_build() {
  local dir="$1"; shift
  ( cd "$RANKD_ROOT" || exit 1
    mkdir -p "$dir"
    if [ ! -f "$dir/build.ninja" ]; then
      say "meson setup $dir $*"
      meson setup "$dir" "$@" >"$dir/setup-output.log" 2>&1 \
        || { tail -n 20 "$dir/setup-output.log" >&2; exit 1; }
    fi
    ninja -C "$dir" >"$dir/ninja-output.log" 2>&1 || { tail -n 40 "$dir/ninja-output.log" >&2; exit 1; }
  ) || return 1
  [ -x "$RANKD_ROOT/$dir/rankd" ] || { say "$dir/rankd was not built"; return 1; }
}

# --- PostgreSQL 15 ----------------------------------------------------------------
# The cluster lives in DIR/pg (owned by postgres), its unix socket in DIR/pgsock, its
# log in DIR/pg.log; it listens on 127.0.0.1:PORT only; role rankd, trust auth.

# pg_up DIR PORT [CPUS]: initdb if needed, start if not running (reuse otherwise).
pg_up() {
  local dir="$1" port="$2" cpus="${3:-}"
  local data="$dir/pg" sock="$dir/pgsock" log="$dir/pg.log"
  mkdir -p "$dir" "$sock"
  chmod 755 "$dir"
  chown postgres: "$sock"
  touch "$log"; chown postgres: "$log"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initdb $data"
    rm -rf "$data"; mkdir -p "$data"; chown postgres: "$data"; chmod 700 "$data"
    runuser -u postgres -- "$PGBIN/initdb" -D "$data" -U rankd --auth=trust \
      -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$data/postgresql.conf" <<EOF

# --- rankd local cluster (scripts/lib.sh) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
max_connections = 100
logging_collector = off
EOF
    # Callers add settings (loadtest/run.sh: shared_preload_libraries, ...) through PG_EXTRA_CONF.
    if [ -n "${PG_EXTRA_CONF:-}" ]; then
      printf '%s\n' "$PG_EXTRA_CONF" >>"$data/postgresql.conf"
    fi
  fi
  if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "PostgreSQL already running (pid $(pidfile_pid "$data/postmaster.pid"), port $port)"
  else
    if port_in_use "$port"; then
      say "port $port is taken by another process; PostgreSQL cannot start"; return 1
    fi
    say "starting PostgreSQL on 127.0.0.1:$port"
    # shellcheck disable=SC2046
    $(pin "$cpus") runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -l "$log" \
      -o "-p $port -k $sock" -w -t 60 start >/dev/null \
      || { tail -n 20 "$log" >&2; return 1; }
  fi
}

# pg_db PORT DBNAME: create the database once.
pg_db() {
  local port="$1" db="$2"
  if [ "$(psql -h 127.0.0.1 -p "$port" -U rankd -d postgres -XtAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
    say "creating database $db"
    "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U rankd "$db"
  fi
}

# pg_replica_up DIR PRIMARY_PORT PORT [CPUS]: a streaming replica of the primary on PRIMARY_PORT in
# DIR/pg-replica (pg_basebackup -R the first time), its socket in DIR/pgsock-replica, its log
# in DIR/pg-replica.log, listening on 127.0.0.1:PORT; reused when already running.
pg_replica_up() {
  local dir="$1" primary_port="$2" port="$3" cpus="${4:-}"
  local data="$dir/pg-replica" sock="$dir/pgsock-replica" log="$dir/pg-replica.log"
  mkdir -p "$sock"
  chown postgres: "$sock"
  touch "$log"; chown postgres: "$log"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "pg_basebackup -R from 127.0.0.1:$primary_port into $data"
    rm -rf "$data"; mkdir -p "$data"; chown postgres: "$data"; chmod 700 "$data"
    runuser -u postgres -- "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U rankd -D "$data" \
      -R -X stream --checkpoint=fast >"$dir/basebackup.log" 2>&1 \
      || { cat "$dir/basebackup.log" >&2; return 1; }
    cat >>"$data/postgresql.conf" <<EOF

# --- rankd local replica (scripts/lib.sh) ---
port = $port
unix_socket_directories = '$sock'
hot_standby = on
EOF
  fi
  if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "PostgreSQL replica already running (pid $(pidfile_pid "$data/postmaster.pid"), port $port)"
  else
    if port_in_use "$port"; then
      say "port $port is taken by another process; the replica cannot start"; return 1
    fi
    say "starting the PostgreSQL replica on 127.0.0.1:$port"
    # shellcheck disable=SC2046
    $(pin "$cpus") runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -l "$log" -o "-p $port -k $sock" -w -t 60 start >/dev/null \
      || { tail -n 20 "$log" >&2; return 1; }
  fi
}

# pg_down DIR [SUBDIR]: fast shutdown of the cluster in DIR/SUBDIR (default pg; pg_ctl
# signals the postmaster PID recorded in its postmaster.pid).
pg_down() {
  local data="$1/${2:-pg}"
  [ -f "$data/postmaster.pid" ] || return 0
  if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "stopping PostgreSQL (pid $(pidfile_pid "$data/postmaster.pid"))"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null || true
  fi
}

# --- Redis ----------------------------------------------------------------------

# redis_up DIR PORT [CPUS]: redis-server on 127.0.0.1:PORT, daemonized, pidfile
# DIR/redis.pid, log DIR/redis.log, no persistence. Reused when already running.
redis_up() {
  local dir="$1" port="$2" cpus="${3:-}" pid i
  mkdir -p "$dir"
  pid="$(pidfile_pid "$dir/redis.pid")"
  if [ -n "$pid" ] && pid_matches "$pid" redis-server \
     && redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
    say "Redis already running (pid $pid, port $port)"; return 0
  fi
  rm -f "$dir/redis.pid"
  if port_in_use "$port"; then say "port $port is taken by another process; Redis cannot start"; return 1; fi
  say "starting Redis on 127.0.0.1:$port"
  # shellcheck disable=SC2046
  $(pin "$cpus") redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
    --save '' --appendonly no --protected-mode yes >/dev/null
  for ((i = 0; i < 100; i++)); do
    if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && [ -s "$dir/redis.pid" ]; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$dir/redis.log" >&2; return 1
}

redis_down() {
  local pid; pid="$(pidfile_pid "$1/redis.pid")"
  if [ -n "$pid" ] && pid_matches "$pid" redis-server; then
    say "stopping Redis (pid $pid)"; stop_pid "$pid" redis-server 10
  fi
  rm -f "$1/redis.pid"
}

# redis_cluster_up DIR FIRST_PORT MASTERS REPLICAS [CPUS]: a Redis Cluster of MASTERS masters with
# REPLICAS replicas each on ports FIRST_PORT.. (bus ports 10000 above), in DIR/node-PORT/;
# created once (redis-cli --cluster create), reused while every node answers.
redis_cluster_up() {
  local dir="$1" first="$2" masters="$3" replicas="$4" cpus="${5:-}" n port i addrs=()
  n=$(( masters * (1 + replicas) ))
  for ((i = 0; i < n; i++)); do
    port=$(( first + i ))
    mkdir -p "$dir/node-$port"
    local pid; pid="$(pidfile_pid "$dir/node-$port/redis.pid")"
    if ! { [ -n "$pid" ] && pid_matches "$pid" redis-server; }; then
      if port_in_use "$port"; then say "port $port is taken by another process; Redis cannot start"; return 1; fi
      # shellcheck disable=SC2046
      $(pin "$cpus") redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
        --pidfile "$dir/node-$port/redis.pid" --logfile "$dir/node-$port/redis.log" --dir "$dir/node-$port" \
        --save '' --appendonly no --protected-mode yes --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-node-timeout 2000 >/dev/null
    fi
    addrs+=("127.0.0.1:$port")
  done
  for ((i = 0; i < 100; i++)); do
    local up=0
    for a in "${addrs[@]}"; do redis-cli -h 127.0.0.1 -p "${a##*:}" ping 2>/dev/null | grep -q PONG && up=$(( up + 1 )); done
    [ "$up" = "$n" ] && break
    sleep 0.1
  done
  if ! redis-cli -p "$first" cluster info 2>/dev/null | grep -q 'cluster_slots_assigned:16384'; then
    say "creating a Redis Cluster: $masters masters, $replicas replica(s) each, ports $first-$(( first + n - 1 ))"
    if [ "$masters" -ge 3 ]; then
      redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1 \
        || { tail -n 20 "$dir/create.log" >&2; return 1; }
    else
      redis_cluster_by_hand "$first" "$masters" "$replicas" >"$dir/create.log" 2>&1 \
        || { tail -n 20 "$dir/create.log" >&2; return 1; }
    fi
  fi
  for ((i = 0; i < 300; i++)); do
    local ok=0 slots
    for a in "${addrs[@]}"; do
      redis-cli -p "${a##*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && ok=$(( ok + 1 ))
    done
    # and every node, replicas included, in the slot map (replica reads need them there)
    slots="$(redis-cli -p "$first" cluster slots 2>/dev/null)"
    for a in "${addrs[@]}"; do grep -qx "${a##*:}" <<<"$slots" && ok=$(( ok + 1 )); done
    [ "$ok" = $(( 2 * n )) ] && return 0
    sleep 0.1
  done
  say "the Redis Cluster did not reach cluster_state:ok"; return 1
}

# redis_cluster_by_hand FIRST_PORT MASTERS REPLICAS: what redis-cli --cluster create does, for
# fewer than the 3 masters it insists on: every node meets the first, the masters share the
# slots evenly, each replica follows its master (nodes FIRST.. are masters first, then replicas).
redis_cluster_by_hand() {
  local first="$1" masters="$2" replicas="$3" n i m from to id
  n=$(( masters * (1 + replicas) ))
  for ((i = 1; i < n; i++)); do redis-cli -p $(( first + i )) cluster meet 127.0.0.1 "$first" >/dev/null; done
  for ((i = 0; i < 100; i++)); do
    [ "$(redis-cli -p "$first" cluster nodes | grep -c connected)" = "$n" ] && break
    sleep 0.1
  done
  for ((m = 0; m < masters; m++)); do
    from=$(( 16384 * m / masters )); to=$(( 16384 * (m + 1) / masters - 1 ))
    redis-cli -p $(( first + m )) cluster addslotsrange "$from" "$to" | grep -q OK || return 1
  done
  for ((i = masters; i < n; i++)); do
    id="$(redis-cli -p $(( first + (i - masters) % masters )) cluster myid)"
    for ((m = 0; m < 100; m++)); do   # the replica must know the master's id first
      redis-cli -p $(( first + i )) cluster replicate "$id" 2>/dev/null | grep -q OK && break
      sleep 0.1
    done
  done
}

# redis_cluster_down DIR: stop every node redis_cluster_up started there.
redis_cluster_down() {
  local f pid
  for f in "$1"/node-*/redis.pid; do
    [ -e "$f" ] || continue
    pid="$(pidfile_pid "$f")"
    if [ -n "$pid" ] && pid_matches "$pid" redis-server; then stop_pid "$pid" redis-server 10; fi
    rm -f "$f"
  done
}

# --- rankd ------------------------------------------------------------------------
# Runs from the repository root (migrations are ./migrations unless
# RANKD_MIGRATIONS_DIR says otherwise); RANKD_* variables of the caller pass through.

# rankd_migrate BIN CONFIG
rankd_migrate() {
  ( cd "$RANKD_ROOT" && "$1" migrate up -c "$2" )
}

# rankd_up BIN CONFIG PIDFILE LOGFILE [CPUS]: start `rankd serve` in the background,
# in its own session, and record its PID (the exec'd shell's PID is rankd's).
rankd_up() {
  local bin="$1" cfg="$2" pidfile="$3" log="$4" cpus="${5:-}"
  rm -f "$pidfile"
  ( cd "$RANKD_ROOT" || exit 1
    # shellcheck disable=SC2016,SC2046
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pidfile" \
      $(pin "$cpus") "$bin" serve -c "$cfg" </dev/null >>"$log" 2>&1 &
  )
  local i
  for ((i = 0; i < 50; i++)); do [ -s "$pidfile" ] && break; sleep 0.05; done
  [ -s "$pidfile" ] || { say "rankd did not start"; return 1; }
}

# rankd_down PIDFILE
rankd_down() {
  local pid; pid="$(pidfile_pid "$1")"
  if [ -n "$pid" ] && pid_matches "$pid" rankd; then
    say "stopping rankd (pid $pid)"; stop_pid "$pid" rankd 15
  fi
  rm -f "$1"
}

# wait_ready BASE_URL PIDFILE LOGFILE [TIMEOUT_S]: until GET /readyz answers 200.
wait_ready() {
  local base="$1" pidfile="$2" log="$3" t="${4:-30}" i code pid
  pid="$(pidfile_pid "$pidfile")"
  for ((i = 0; i < t * 10; i++)); do
    if ! pid_matches "$pid" rankd; then
      say "rankd exited during start; last lines of $log:"; tail -n 25 "$log" >&2; return 1
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/readyz" || true)"
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  say "rankd not ready after ${t}s (last /readyz: ${code:-no answer}); last lines of $log:"
  tail -n 25 "$log" >&2
  curl -s --max-time 2 "$base/readyz" >&2 || true
  return 1
}

# json_get URL KEY [AUTH]: print top-level KEY of the JSON body (empty on any failure).
json_get() {
  local url="$1" key="$2" auth="${3:-}"
  curl -s --max-time 5 ${auth:+-H "Authorization: Bearer $auth"} "$url" 2>/dev/null \
    | "$PYTHON" -c 'import json,sys
try: v = json.load(sys.stdin)[sys.argv[1]]
except Exception: sys.exit(0)
print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$key"
}

# seed BASE_URL WRITE_KEY BOARD COUNT KIND: submit COUNT players (p000001…) to BOARD
# through POST /v1/scores:batch, 1000 per request. KIND picks the score shape:
# arcade (points, desc), speedrun (milliseconds, asc, >= 1), uniform (0..1,000,000).
# Deterministic (fixed random seed), so a re-seed writes the same scores.
seed() {
  "$PYTHON" - "$@" <<'PY'
import json, random, sys, time
import requests

base, key, board, count, kind = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
rng = random.Random(f"{board}:{count}:{kind}")
width = max(6, len(str(count)))
countries = ["FR", "DE", "US", "BR", "JP", "KR", "SE", "PL", "CA", "IN"]

def item(n):
    pid = f"p{n:0{width}d}"
    if kind == "arcade":
        score = int(max(0, rng.gauss(250_000, 120_000)))
        it = {"board": board, "player_id": pid, "score": score,
              "metadata": {"name": f"Player {n}", "country": rng.choice(countries)}}
    elif kind == "speedrun":
        score = int(max(45_000, rng.gauss(300_000, 60_000)))
        it = {"board": board, "player_id": pid, "score": score}
    else:
        it = {"board": board, "player_id": pid, "score": rng.randint(0, 1_000_000)}
    return it

s = requests.Session()
s.headers.update({"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
t0, errors, sent = time.monotonic(), 0, 0
for start in range(1, count + 1, 1000):
    items = [item(n) for n in range(start, min(count, start + 999) + 1)]
    r = s.post(f"{base}/v1/scores:batch", data=json.dumps({"scores": items}), timeout=120)
    if r.status_code != 200:
        sys.exit(f"seed: POST /v1/scores:batch -> {r.status_code}: {r.text[:500]}")
    results = r.json().get("results", [])
    bad = [x for x in results if "error" in x]
    if len(results) != len(items) or bad:
        errors += len(bad) + abs(len(items) - len(results))
        if bad and errors == len(bad):
            print(f"seed: first item error: {json.dumps(bad[0])}", file=sys.stderr)
    sent += len(items)
dt = time.monotonic() - t0
print(f"seed: {board}: {sent} players in {dt:.2f} s ({sent / dt:,.0f}/s), {errors} item errors",
      file=sys.stderr)
sys.exit(1 if errors else 0)
PY
}

# stack_up TMP PG_PORT REDIS_PORT [CPUS]: PostgreSQL (database `rankd`) and Redis in TMP on
# loopback; sets PSQL to a psql command line for that database.
stack_up() {
  pg_up "$1" "$2" "${4:-}" || die "PostgreSQL did not start"
  pg_db "$2" rankd
  redis_up "$1" "$3" "${4:-}" || die "Redis did not start"
  PSQL=(psql -h 127.0.0.1 -p "$2" -U rankd -XtAq -v ON_ERROR_STOP=1 -d rankd)
}

# stack_down RC TMP PIDFILE...: stop each rankd by its pid file, then the Redis and PostgreSQL of
# stack_up; TMP is removed after a clean run (RC 0), kept to look at otherwise.
stack_down() {
  local rc="$1" tmp="$2" pf
  shift 2
  for pf in "$@"; do rankd_down "$pf"; done
  redis_down "$tmp"
  pg_down "$tmp"
  if [ "$rc" != 0 ]; then say "kept $tmp (its logs)"; else rm -rf "$tmp"; fi
}

