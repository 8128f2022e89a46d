#!/usr/bin/env bash
# loadtest/ratelimit.sh — does one client over its rate limit cost another client anything?
#
#   bash loadtest/ratelimit.sh [--secs 20] [--rate 500] [--burst 1000]
#
# It starts its own PostgreSQL and Redis (loopback, free ports, a temporary folder) and one
# rankd with read limits (limits.reads_per_s = RATE, limits.burst = BURST) and two read keys,
# on a 100,000-player board. The client within its limit reads ranks with 4 connections, each
# pausing 10 ms between requests (about 350 requests/s, under RATE): first alone, then while the
# abuser, with the other key, reads as fast as 32 connections go. Both phases last SECS.
#
# It reports the client's p50/p99 in each phase and their ratio, and the abuser's answers.
# It fails (exit 1) when the client within its limit got anything but 200, when the abuser got
# no 429, or when the abuser got more 200s than its bucket allows (BURST + RATE x its time, with
# one second of slack for wrk's start and stop).
# Output: loadtest/out/ratelimit/report.md.
set -euo pipefail

LIB_TAG=ratelimit
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RANKD_ROOT"
LT="$RANKD_ROOT/loadtest"
SECS=20 RATE=500 BURST=1000 PLAYERS=100000 SERVER_CPUS=0 CLIENT_CPUS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --secs) SECS="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --burst) BURST="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
TMP="$(mktemp -d /tmp/rankd-ratelimit.XXXXXX)"
chmod 755 "$TMP"
OUT="$LT/out/ratelimit"
mkdir -p "$OUT"
WRK_V="" WRK_A=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$WRK_V" ] && kill "$WRK_V" 2>/dev/null || true
  [ -n "$WRK_A" ] && kill "$WRK_A" 2>/dev/null || true
  stack_down "$rc" "$TMP" "$TMP/rankd.pid"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PG_PORT REDIS_PORT PORT <<<"$(free_ports 3)"
ADMIN_KEY="rl-admin-$RANDOM$RANDOM" CLIENT_KEY="rl-client-$RANDOM$RANDOM" ABUSER_KEY="rl-abuser-$RANDOM$RANDOM"
stack_up "$TMP" "$PG_PORT" "$REDIS_PORT" "$SERVER_CPUS"
cat >"$TMP/rankd.yaml" <<YAML
development: true
listen: "127.0.0.1:$PORT"
log_level: warn
postgres:
  primary: "host=127.0.0.1 port=$PG_PORT dbname=rankd user=rankd"
redis:
  url: "redis://127.0.0.1:$REDIS_PORT/0"
limits:
  reads_per_s: $RATE
  burst: $BURST
auth:
  cursor_secret: "ratelimit-cursor-secret-$RANDOM$RANDOM"
  keys:
    - key: "$ADMIN_KEY"
      role: admin
    - key: "$CLIENT_KEY"
      role: read
    - key: "$ABUSER_KEY"
      role: read
YAML
rankd_migrate "$BIN" "$TMP/rankd.yaml" >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "migration failed"; }
rankd_up "$BIN" "$TMP/rankd.yaml" "$TMP/rankd.pid" "$TMP/rankd.log" "$SERVER_CPUS" || die "rankd did not start"
BASE="http://127.0.0.1:$PORT"
wait_ready "$BASE" "$TMP/rankd.pid" "$TMP/rankd.log" 60 || die "rankd is not ready"
code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/v1/leaderboards" \
  -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d '{"id":"rl","title":"Rate limits","sort":"desc","operator":"best","reset":"none"}')"
[ "$code" = 201 ] || die "creating the board: $code"
GEN="$("${PSQL[@]}" -c "SELECT gen FROM boards WHERE id = 'rl'")"
timeout 600 "${PSQL[@]}" -v gen="$GEN" -v n="$PLAYERS" -v seed=0.5 -v base_ms="$(( $(date +%s) * 1000 - 86400000 ))" \
  -f "$LT/seed.sql" >"$TMP/seed.log" 2>&1 || { cat "$TMP/seed.log" >&2; die "seeding failed"; }
"$BIN" rebuild-cache --board rl -c "$TMP/rankd.yaml" >"$TMP/rebuild.log" 2>&1 || die "rebuild-cache failed"

client() {   # client OUTFILE: the client within its limit, SECS seconds
  "${CLIENT[@]}" wrk -t 1 -c 4 -d "${SECS}s" --latency --timeout 5s -s "$LT/keyed.lua" "$BASE" -- \
    board=rl players="$PLAYERS" width=12 key="$CLIENT_KEY" pace_ms=10 >"$1" 2>&1
}
say "warm-up (5 s), then the client alone (${SECS}s)"
"${CLIENT[@]}" wrk -t 1 -c 4 -d 5s -s "$LT/keyed.lua" "$BASE" -- board=rl players="$PLAYERS" width=12 \
  key="$CLIENT_KEY" pace_ms=10 >/dev/null 2>&1
client "$OUT/alone.txt"
say "the client again, with the abuser at full speed (${SECS}s)"
"${CLIENT[@]}" wrk -t 1 -c 32 -d "${SECS}s" --timeout 5s -s "$LT/keyed.lua" "$BASE" -- \
  board=rl players="$PLAYERS" width=12 key="$ABUSER_KEY" >"$OUT/abuser.txt" 2>&1 &
WRK_A=$!
client "$OUT/with-abuser.txt" &
WRK_V=$!
wait "$WRK_V"; WRK_V=""
wait "$WRK_A"; WRK_A=""

"$PYTHON" - "$OUT" "$SECS" "$RATE" "$BURST" <<'PY'
import re, sys
out, secs, rate, burst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def read(name):
    t = open(f"{out}/{name}.txt").read()
    st = re.search(r"statuses 200=(\d+) 429=(\d+) other=(\d+)", t)
    if not st:
        print(f"{name}: no wrk summary:\n{t[-2000:]}")
        sys.exit(1)
    def pct(p):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, t, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
    errs = re.search(r"Socket errors: (.*)", t)
    return {"ok": int(st.group(1)), "limited": int(st.group(2)), "other": int(st.group(3)),
            "p50": pct(50), "p99": pct(99), "rps": float(rps.group(1)) if rps else 0.0,
            "socket_errors": errs.group(1) if errs else "none"}

alone, shared, abuser = read("alone"), read("with-abuser"), read("abuser")
allowed = burst + rate * (secs + 1)
fails = []
for name, r in (("alone", alone), ("with the abuser", shared)):
    if r["limited"] or r["other"] or r["socket_errors"] != "none":
        fails.append(f"the client within its limit ({name}) got {r['limited']} 429, {r['other']} other, "
                     f"socket errors {r['socket_errors']}")
if abuser["limited"] == 0:
    fails.append("the abuser was never limited")
if abuser["ok"] > allowed:
    fails.append(f"the abuser got {abuser['ok']} answers, more than its bucket allows ({allowed})")
ratio = shared["p99"] / alone["p99"] if alone["p99"] and shared["p99"] else float("nan")
L = [f"# rankd rate limits: {secs} s per phase, limits.reads_per_s = {rate}, limits.burst = {burst}", "",
     f"Verdict: **{'pass' if not fails else 'FAIL'}**." + ("" if not fails else " " + "; ".join(fails)), "",
     "| client within its limit | requests/s | 200 | 429 | other | p50 ms | p99 ms |",
     "|---|---:|---:|---:|---:|---:|---:|",
     f"| alone | {alone['rps']:,.0f} | {alone['ok']:,} | {alone['limited']} | {alone['other']} | {alone['p50']:.2f} | {alone['p99']:.2f} |",
     f"| with the abuser | {shared['rps']:,.0f} | {shared['ok']:,} | {shared['limited']} | {shared['other']} | {shared['p50']:.2f} | {shared['p99']:.2f} |",
     "",
     f"The client's p99 with the abuser / alone: **{ratio:.2f}**.",
     f"The abuser (32 connections, no pause): {abuser['rps']:,.0f} requests/s answered, {abuser['ok']:,} of them 200 "
     f"(its bucket allows {allowed:,} at most: {burst:,} + {rate:,}/s), {abuser['limited']:,} answered 429, "
     f"{abuser['other']} other."]
open(f"{out}/report.md", "w").write("\n".join(L) + "\n")
print("\n".join(L))
sys.exit(1 if fails else 0)
PY
