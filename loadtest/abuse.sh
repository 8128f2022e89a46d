#!/usr/bin/env bash
# loadtest/abuse.sh — does one abusive address cost another client anything? (issue 28)
#
#   bash loadtest/abuse.sh [--secs 20] [--rounds 1] [--slow-readers [--before] | --strong-flood [--keyed|--plain] [--limits]]
#
# It starts its own PostgreSQL and Redis (loopback, free ports, a temporary folder) and one
# rankd with read limits (200 reads/s, a burst of 400, per client), on a 20,000-player board. A
# client with a read key reads ranks with 4 connections, each pausing 25 ms between requests (about 150 a second, under the limit):
# first alone, then while one address (127.0.0.2, no key) runs loadtest/abuse.py: a slow-loris of
# 400 connections that never finish their headers, and 8 connections posting /v1/batch of 50
# reads of 1,000 entries each, as fast as their answers come. Both phases last SECS.
#
# With --slow-readers the abuser is 200 slow readers instead (issue 34): connections with 4 KiB
# receive buffers, each asking for a /v1/batch of 40 pages of 1,000 entries uncompressed and
# reading 1 KiB of it a second. --before runs them against the bounds as they were before
# (no http.max_response_bytes_in_flight, http.response_bytes_per_ip or send buffer cap,
# http.send_timeout_s an hour, 256 connections per address), for comparison.
#
# With --strong-flood (issue 34) the client writes instead (a write key, 4 connections pausing
# 25 ms) and the abuser is 64 connections of `entries?limit=100&consistency=strong`, with no key
# (refused: strong reads are a privilege of write and admin keys), or with --keyed with a
# leaked write key (at most limits.strong_concurrency, 8, run at once), or with --plain the same
# flood without consistency=strong (cached reads: the reference a strong flood is compared
# with); no rate limits in this mode, so that only the privilege and the cap are measured, unless
# --limits sets those an internet-facing instance should have (docs/security.md: 200 reads a
# second per client, a burst of 400; the flood's refusals are then held back).
#
# --rounds N takes turns N times (the client alone, then with the abuser, SECS each) and judges
# the median of each phase's p99: this VM's quiet p99 alone moves 3-9 ms from one run to the next,
# more than the effect measured, so one pair of phases settles nothing.
#
# It reports the client's p50/p99 in each phase and their ratio (the target: at most 2), what
# the abuser got, and rankd's RSS and the kernel's TCP memory. It fails (exit 1) when the
# client got anything but 200. Output: loadtest/out/abuse[-slow[-before]]/report.md.
set -euo pipefail

LIB_TAG=abuse
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RANKD_ROOT"
LT="$RANKD_ROOT/loadtest"
SECS=20 ROUNDS=1 PLAYERS=20000 SERVER_CPUS=0 CLIENT_CPUS=1 MODE=flood BEFORE=0 KEYED=0 PLAIN=0 WITH_LIMITS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --secs) SECS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --slow-readers) MODE=slow; shift ;;
    --before) BEFORE=1; shift ;;
    --strong-flood) MODE=strong; shift ;;
    --keyed) KEYED=1; shift ;;
    --plain) PLAIN=1; shift ;;
    --limits) WITH_LIMITS=1; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
TMP="$(mktemp -d /tmp/rankd-abuse.XXXXXX)"
chmod 755 "$TMP"
OUT="$LT/out/abuse"
if [ "$MODE" = slow ]; then OUT="$OUT-slow"; fi
if [ "$MODE" = strong ]; then
  OUT="$OUT-strong"; [ "$KEYED" = 1 ] && OUT="$OUT-keyed"; [ "$PLAIN" = 1 ] && OUT="$OUT-plain"
  [ "$WITH_LIMITS" = 1 ] && OUT="$OUT-limits"
fi
if [ "$BEFORE" = 1 ]; then
  OUT="$OUT-before"
  export RANKD_MAX_RESPONSE_BYTES_IN_FLIGHT=0 RANKD_RESPONSE_BYTES_PER_IP=0 RANKD_SEND_BUFFER_BYTES=0 \
    RANKD_SEND_TIMEOUT_S=3600 RANKD_MAX_CONNECTIONS_PER_IP=256
fi
mkdir -p "$OUT"
WRK_V="" ABUSER=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$WRK_V" ] && kill "$WRK_V" 2>/dev/null || true
  [ -n "$ABUSER" ] && kill "$ABUSER" 2>/dev/null || true
  stack_down "$rc" "$TMP" "$TMP/rankd.pid"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PG_PORT REDIS_PORT PORT <<<"$(free_ports 3)"
ADMIN_KEY="ab-admin-$RANDOM$RANDOM" CLIENT_KEY="ab-client-$RANDOM$RANDOM"
WRITER_KEY="ab-writer-$RANDOM$RANDOM" LEAKED_KEY="ab-leaked-$RANDOM$RANDOM"
LIMITS="limits: {reads_per_s: 200, burst: 400}"
if [ "$MODE" = strong ]; then
  LIMITS="http: {max_connections_per_ip: 0}"
  [ "$WITH_LIMITS" = 1 ] && LIMITS="$LIMITS
limits: {reads_per_s: 200, burst: 400}"
fi
stack_up "$TMP" "$PG_PORT" "$REDIS_PORT" "$SERVER_CPUS"
cat >"$TMP/rankd.yaml" <<YAML
development: true
listen: "127.0.0.1:$PORT"
log_level: warn
postgres:
  primary: "host=127.0.0.1 port=$PG_PORT dbname=rankd user=rankd"
redis:
  url: "redis://127.0.0.1:$REDIS_PORT/0"
$LIMITS
auth:
  cursor_secret: "abuse-cursor-secret-$RANDOM$RANDOM"
  keys:
    - key: "$ADMIN_KEY"
      role: admin
    - key: "$CLIENT_KEY"
      role: read
    - key: "$WRITER_KEY"
      role: write
    - key: "$LEAKED_KEY"
      role: write
YAML
rankd_migrate "$BIN" "$TMP/rankd.yaml" >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "migration failed"; }
rankd_up "$BIN" "$TMP/rankd.yaml" "$TMP/rankd.pid" "$TMP/rankd.log" "$SERVER_CPUS" || die "rankd did not start"
BASE="http://127.0.0.1:$PORT"
wait_ready "$BASE" "$TMP/rankd.pid" "$TMP/rankd.log" 60 || die "rankd is not ready"
code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/v1/leaderboards" \
  -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d '{"id":"ab","title":"Abuse","sort":"desc","operator":"best","reset":"none"}')"
[ "$code" = 201 ] || die "creating the board: $code"
GEN="$("${PSQL[@]}" -c "SELECT gen FROM boards WHERE id = 'ab'")"
timeout 600 "${PSQL[@]}" -v gen="$GEN" -v n="$PLAYERS" -v seed=0.5 -v base_ms="$(( $(date +%s) * 1000 - 86400000 ))" \
  -f "$LT/seed.sql" >"$TMP/seed.log" 2>&1 || { cat "$TMP/seed.log" >&2; die "seeding failed"; }
"$BIN" rebuild-cache --board ab -c "$TMP/rankd.yaml" >"$TMP/rebuild.log" 2>&1 || die "rebuild-cache failed"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$(cat "$TMP/rankd.pid")/status"; }
# The kernel's TCP buffers, every socket of the machine (pages of 4 KiB, in KiB).
tcp_kb() { awk '/^TCP:/ {for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1) * 4}' /proc/net/sockstat; }
CLIENT_ARGS=(key="$CLIENT_KEY")
if [ "$MODE" = strong ]; then CLIENT_ARGS=(key="$WRITER_KEY" write=1); fi
client() {   # client OUTFILE: the client, SECS seconds
  "${CLIENT[@]}" wrk -t 1 -c 4 -d "${SECS}s" --latency --timeout 5s -s "$LT/keyed.lua" "$BASE" -- \
    board=ab players="$PLAYERS" width=12 pace_ms=25 "${CLIENT_ARGS[@]}" >"$1" 2>&1
}
say "warm-up (5 s), then the client alone (${SECS}s)"
"${CLIENT[@]}" wrk -t 1 -c 4 -d 5s -s "$LT/keyed.lua" "$BASE" -- board=ab players="$PLAYERS" width=12 \
  pace_ms=25 "${CLIENT_ARGS[@]}" >/dev/null 2>&1
RSS0="$(rss_kb)" TCP0="$(tcp_kb)"
RSS_MAX="$RSS0" TCP_MAX="$TCP0"
for round in $(seq 1 "$ROUNDS"); do
client "$OUT/alone-$round.txt"
say "round $round of $ROUNDS: the client again, with 127.0.0.2's abuse ($MODE, ${SECS}s)"
if [ "$MODE" = strong ]; then
  # wrk cannot choose its source address: the flood comes from 127.0.0.1 too (no limits here).
  STRONG_KEY=""; [ "$KEYED" = 1 ] && STRONG_KEY="$LEAKED_KEY"
  FLOOD_PATH="/v1/leaderboards/ab/entries?limit=100&consistency=strong"
  [ "$PLAIN" = 1 ] && FLOOD_PATH="/v1/leaderboards/ab/entries?limit=100"
  ( "${CLIENT[@]}" wrk -t 1 -c 64 -d "$((SECS + 2))s" --timeout 5s -s "$LT/fixed.lua" "$BASE" -- \
      path="$FLOOD_PATH" key="$STRONG_KEY" >"$OUT/abuser-$round.txt" 2>&1
    "$PYTHON" - "$OUT/abuser-$round.txt" >"$OUT/abuser-$round.json" <<'PY'
import json, re, sys
t = open(sys.argv[1]).read()
total = re.search(r"(\d+) requests in", t)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
n, bad = int(total.group(1)) if total else 0, int(non2xx.group(1)) if non2xx else 0
print(json.dumps({"flood": {"2xx": n - bad, "non-2xx": bad, "requests/s": float(rps.group(1)) if rps else 0.0},
                  "loris_most_open": 0, "loris_refused": 0}))
PY
  ) &
else
  "${CLIENT[@]}" "$PYTHON" "$LT/abuse.py" 127.0.0.1 "$PORT" 127.0.0.2 "$((SECS + 2))" ab "$MODE" >"$OUT/abuser-$round.json" 2>&1 &
fi
ABUSER=$!
sleep 2 # the slow-loris connections open first (a pause between phases, not a wait for state)
client "$OUT/with-abuser-$round.txt" &
WRK_V=$!
while kill -0 "$WRK_V" 2>/dev/null; do
  r="$(rss_kb)"; [ "$r" -gt "$RSS_MAX" ] && RSS_MAX="$r"
  t="$(tcp_kb)"; [ "$t" -gt "$TCP_MAX" ] && TCP_MAX="$t"
  sleep 0.5
done
wait "$WRK_V"; WRK_V=""
wait "$ABUSER"; ABUSER=""
done

"$PYTHON" - "$OUT" "$SECS" "$RSS0" "$RSS_MAX" "$TCP0" "$TCP_MAX" "$MODE" "$BEFORE" "$ROUNDS" <<'PY'
import json, re, statistics, sys
out, secs, rss0, rss_max = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tcp0, tcp_max, mode, before = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], sys.argv[8] == "1"
rounds = int(sys.argv[9])

def read(name):
    t = open(f"{out}/{name}.txt").read()
    st = re.search(r"statuses 200=(\d+) 429=(\d+) other=(\d+)", t)
    if not st:
        print(f"{name}: no wrk summary:\n{t[-2000:]}")
        sys.exit(1)
    def pct(p):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, t, re.M)
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else None
    rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
    errs = re.search(r"Socket errors: (.*)", t)
    return {"ok": int(st.group(1)), "limited": int(st.group(2)), "other": int(st.group(3)),
            "p50": pct(50), "p99": pct(99), "rps": float(rps.group(1)) if rps else 0.0,
            "socket_errors": errs.group(1) if errs else "none"}

alones = [read(f"alone-{i}") for i in range(1, rounds + 1)]
shareds = [read(f"with-abuser-{i}") for i in range(1, rounds + 1)]
abuser = json.loads(open(f"{out}/abuser-{rounds}.json").read().strip().splitlines()[-1])
fails = []
for i, (a, w) in enumerate(zip(alones, shareds), 1):
    for name, r in (("alone", a), ("with the abuser", w)):
        if r["limited"] or r["other"] or r["socket_errors"] != "none":
            fails.append(f"the client ({name}, round {i}) got {r['limited']} 429, {r['other']} other, "
                         f"socket errors {r['socket_errors']}")
p99_alone = statistics.median(r["p99"] for r in alones)
p99_shared = statistics.median(r["p99"] for r in shareds)
ratio = p99_shared / p99_alone if p99_alone and p99_shared else float("nan")
what = {"slow": "200 slow readers (/v1/batch of 40 pages, 1 KiB read a second)",
        "strong": "64 connections of consistency=strong reads",
        "flood": "a slow-loris and a /v1/batch flood"}[mode]
L = [f"# One abusive address against another client: {what}, {secs} s per phase"
     + (f", {rounds} rounds" if rounds > 1 else "")
     + (" (the bounds as they were before)" if before else ""), "",
     f"Verdict: **{'pass' if not fails else 'FAIL'}**." + ("" if not fails else " " + "; ".join(fails)), "",
     f"| the client ({'a write key writing' if mode == 'strong' else 'a read key reading ranks'}, 4 connections, 25 ms pauses) | requests/s | 200 | p50 ms | p99 ms |",
     "|---|---:|---:|---:|---:|"]
for i, (a, w) in enumerate(zip(alones, shareds), 1):
    at = f" (round {i})" if rounds > 1 else ""
    L.append(f"| alone{at} | {a['rps']:,.0f} | {a['ok']:,} | {a['p50']:.2f} | {a['p99']:.2f} |")
    L.append(f"| with the abuser{at} | {w['rps']:,.0f} | {w['ok']:,} | {w['p50']:.2f} | {w['p99']:.2f} |")
each = ", ".join("%.2f" % (w["p99"] / a["p99"]) for a, w in zip(alones, shareds))
L += ["",
      (f"Each round's ratio: {each}. The medians: p99 {p99_alone:.2f} ms alone, {p99_shared:.2f} ms with the "
       f"abuser. " if rounds > 1 else "")
      + f"The client's p99 with the abuser / alone{' (medians)' if rounds > 1 else ''}: **{ratio:.2f}** "
      f"(target: at most 2).",
      (f"The abuser (127.0.0.2, no key): its requests' answers by status {abuser['flood']}."
       if mode == "slow" else
       f"The abuser (64 connections): its strong reads' answers {abuser['flood']}." if mode == "strong" else
       f"The abuser (127.0.0.2, no key): the /v1/batch flood's answers by status {abuser['flood']}; the slow-loris "
       f"held at most {abuser['loris_most_open']} connections open, {abuser['loris_refused']} refused or closed.")
      + (" (the last round)" if rounds > 1 else ""),
      f"rankd's RSS: {rss0 / 1024:.0f} MiB before, at most {rss_max / 1024:.0f} MiB during the abuse.",
      f"The kernel's TCP buffers (every socket of the machine): {tcp0 / 1024:.0f} MiB before, at most "
      f"{tcp_max / 1024:.0f} MiB during the abuse."]
open(f"{out}/report.md", "w").write("\n".join(L) + "\n")
print("\n".join(L))
sys.exit(1 if fails else 0)
PY
