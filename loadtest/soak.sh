#!/usr/bin/env bash
# loadtest/soak.sh — rankd under a steady mixed load for a long time: does anything keep growing?
#
#   bash loadtest/soak.sh --soak 30m     the run issue 15 asks for
#   bash loadtest/soak.sh --soak 2m      CI's short version (.ci/run)
#
# It starts its own PostgreSQL and Redis (loopback, free ports, a temporary folder) and two
# rankd instances on one database. Instance A takes wrk's read-heavy mix on a 100,000-player
# board (90 % reads, 10 % writes, Zipf players, so the response cache churns). Instance B takes
# a trickle of writes on the same board, and each of them reaches A as a NOTIFY. Redis is
# stopped and started again once or twice (rankd answers from PostgreSQL meanwhile, then
# rebuilds).
#
# Every 10 s it samples A's RSS with its anonymous and file-backed parts, open descriptors and
# threads (/proc), its response cache's bytes (held to 256 KiB, so that it evicts) and the
# allocator's heap in use and free (/metrics), and the PostgreSQL connections of each instance
# (pg_stat_activity).
#
# Redis is stopped and started again during the warm-up (the first fifth of the run, at least
# 60 s; a third of a run shorter than 5 minutes), so that the restart path's one-time costs (the
# rebuild's first use of its thread, its pooled PostgreSQL connection) are paid before anything
# is judged; a run of 5 minutes or more restarts it a second time, three fifths in, inside the
# judged stretch, so that a restart that leaks shows as a step that is still there at the end.
# The run fails (exit 1) when, after the warm-up, the anonymous memory (RssAnon: what a leak
# grows; the rest of RSS is the code and data pages of the binary and its libraries, bounded by
# their size) of the judged stretch's last tenth exceeds its first tenth by more than 2 % (the
# medians of at least three samples each, so that one sample's jitter decides nothing), or the
# descriptors grow by more than 5; also when a request is answered 5xx other than a 503, when
# a request gets no answer, when an instance dies, or when `rankd verify` finds a difference.
# Output: loadtest/out/soak/report.md, samples.txt and samples.svg.
set -euo pipefail

LIB_TAG=soak
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$RANKD_ROOT"
LT="$RANKD_ROOT/loadtest"
SOAK=2m OUT="" BIN="" PLAYERS=100000 SERVER_CPUS=0 CLIENT_CPUS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --soak) SOAK="$2"; shift 2 ;;
    --players) PLAYERS="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$SOAK" in
  *m) SECS=$(( ${SOAK%m} * 60 )) ;;
  *s) SECS="${SOAK%s}" ;;
  *) die "--soak wants a duration such as 2m or 30m" ;;
esac
[ "$SECS" -ge 30 ] || die "--soak: at least 30s"
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL runs as user postgres via runuser)"
if [ "$(nproc --all)" -lt 2 ]; then SERVER_CPUS="" CLIENT_CPUS=""; fi
CLIENT=()
if [ -n "$CLIENT_CPUS" ]; then CLIENT=(taskset -c "$CLIENT_CPUS"); fi

bash scripts/deps.sh
if [ -z "$BIN" ]; then
  rankd_build build || die "build failed"
  BIN="$RANKD_ROOT/build/rankd"
fi
TMP="$(mktemp -d /tmp/rankd-soak.XXXXXX)"
chmod 755 "$TMP"
OUT="${OUT:-$LT/out/soak}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "${WRK_A:-}" ] && kill "$WRK_A" 2>/dev/null || true
  [ -n "${WRK_B:-}" ] && kill "$WRK_B" 2>/dev/null || true
  stack_down "$rc" "$TMP" "$TMP/a.pid" "$TMP/b.pid"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PG_PORT REDIS_PORT PORT_A PORT_B <<<"$(free_ports 4)"
ADMIN_KEY="soak-admin-$RANDOM$RANDOM"
WRITE_KEY="soak-write-$RANDOM$RANDOM"
stack_up "$TMP" "$PG_PORT" "$REDIS_PORT" "$SERVER_CPUS"

config() {   # config NAME PORT
  cat >"$TMP/$1.yaml" <<EOF
development: true
listen: "127.0.0.1:$2"
log_level: warn
postgres:
  primary: "host=127.0.0.1 port=$PG_PORT dbname=rankd user=rankd"
redis:
  url: "redis://127.0.0.1:$REDIS_PORT/0"
refresh:
  interval_s: 5
cache:
  max_bytes: 262144   # full within the warm-up: the run measures eviction's churn, not the cache filling
auth:
  cursor_secret: "soak-cursor-secret-$RANDOM$RANDOM"
  keys:
    - key: "$ADMIN_KEY"
      role: admin
    - key: "$WRITE_KEY"
      role: write
EOF
}
config a "$PORT_A"
config b "$PORT_B"
rankd_migrate "$BIN" "$TMP/a.yaml" >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "migration failed"; }
rankd_up "$BIN" "$TMP/a.yaml" "$TMP/a.pid" "$TMP/a.log" "$SERVER_CPUS" || die "rankd A did not start"
wait_ready "http://127.0.0.1:$PORT_A" "$TMP/a.pid" "$TMP/a.log" 60 || die "rankd A is not ready"
code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT_A/v1/leaderboards" \
  -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d '{"id":"mix","title":"Soak","sort":"desc","operator":"best","reset":"none"}')"
[ "$code" = 201 ] || die "creating the board: $code"
GEN="$("${PSQL[@]}" -c "SELECT gen FROM boards WHERE id = 'mix'")"
timeout 600 "${PSQL[@]}" -v gen="$GEN" -v n="$PLAYERS" -v seed=0.5 -v base_ms="$(( $(date +%s) * 1000 - 86400000 ))" \
  -f "$LT/seed.sql" >"$TMP/seed.log" 2>&1 || { cat "$TMP/seed.log" >&2; die "seeding failed"; }
"$BIN" rebuild-cache --board mix -c "$TMP/a.yaml" >"$TMP/rebuild.log" 2>&1 || die "rebuild-cache failed"
rankd_up "$BIN" "$TMP/b.yaml" "$TMP/b.pid" "$TMP/b.log" "$SERVER_CPUS" || die "rankd B did not start"
wait_ready "http://127.0.0.1:$PORT_B" "$TMP/b.pid" "$TMP/b.log" 60 || die "rankd B is not ready"

PID_A="$(pidfile_pid "$TMP/a.pid")"
PID_B="$(pidfile_pid "$TMP/b.pid")"
metric() { curl -s --max-time 5 -H "Authorization: Bearer $ADMIN_KEY" "http://127.0.0.1:$PORT_A/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'; }
sample() {   # elapsed-s rss-kB fds threads l1-bytes pg-conns-a pg-conns-b heap-in-use heap-free anon-kB file-kB
  local t="$1"
  printf '%s %s %s %s %s %s %s %s %s %s %s\n' "$t" \
    "$(awk '/^VmRSS/ { print $2 }' "/proc/$PID_A/status")" \
    "$(find "/proc/$PID_A/fd" -mindepth 1 -maxdepth 1 | wc -l)" \
    "$(awk '/^Threads/ { print $2 }' "/proc/$PID_A/status")" \
    "$(metric rankd_l1_bytes)" \
    "$("${PSQL[@]}" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rankd/$PID_A'")" \
    "$("${PSQL[@]}" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rankd/$PID_B'")" \
    "$(metric rankd_heap_in_use_bytes)" "$(metric rankd_heap_free_bytes)" \
    "$(awk '/^RssAnon/ { print $2 }' "/proc/$PID_A/status")" "$(awk '/^RssFile/ { print $2 }' "/proc/$PID_A/status")"
}

# The warm-up, and when Redis goes down (see the top of this file).
if [ "$SECS" -ge 300 ]; then
  WARM=$(( SECS / 5 )); [ "$WARM" -ge 60 ] || WARM=60
  RESTARTS="$(( WARM / 2 )) $(( SECS * 3 / 5 ))"
else
  WARM=$(( SECS / 3 )) RESTARTS="$(( SECS / 6 ))"
fi
say "soak: ${SECS}s of the mix on A (32 connections), writes on B, warm-up ${WARM}s, Redis restarted at: ${RESTARTS// /s, }s"
"${CLIENT[@]}" wrk -t 1 -c 32 -d "${SECS}s" --timeout 10s -s "$LT/mix.lua" "http://127.0.0.1:$PORT_A" -- \
  board=mix players="$PLAYERS" width=12 key="$WRITE_KEY" zipf=0.9 >"$OUT/wrk-a.txt" 2>&1 &
WRK_A=$!
"${CLIENT[@]}" wrk -t 1 -c 2 -d "${SECS}s" --timeout 10s -s "$LT/submit.lua" "http://127.0.0.1:$PORT_B" -- \
  board=mix players="$PLAYERS" width=12 key="$WRITE_KEY" >"$OUT/wrk-b.txt" 2>&1 &
WRK_B=$!
: >"$OUT/samples.txt"
t0=$(date +%s)
pending="$RESTARTS"
restarted=""
died=""
while kill -0 "$WRK_A" 2>/dev/null; do
  t=$(( $(date +%s) - t0 ))
  for pf in a b; do
    pid_matches "$(pidfile_pid "$TMP/$pf.pid")" rankd || died="$died $pf@${t}s"
  done
  sample "$t" >>"$OUT/samples.txt"
  next="${pending%% *}"
  if [ -n "$pending" ] && [ "$t" -ge "$next" ]; then
    say "restarting Redis at ${t}s"
    redis_down "$TMP"
    sleep 2
    redis_up "$TMP" "$REDIS_PORT" "$SERVER_CPUS" || die "Redis did not start again"
    restarted="${restarted:+$restarted,}$t"
    if [ "$pending" = "$next" ]; then pending=""; else pending="${pending#* }"; fi
  fi
  sleep 10
done
wait "$WRK_A" || true
wait "$WRK_B" || true
WRK_A="" WRK_B=""
sample "$(( $(date +%s) - t0 ))" >>"$OUT/samples.txt"
errors_a="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$OUT/wrk-a.txt")"
errors_b="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$OUT/wrk-b.txt")"
# 5xx from each instance's own counters: those other than 503 (documented for a store that is
# down) fail the run; so does an instance that stopped answering.
bad5xx=0
for pf in a b; do
  port=$PORT_A; [ "$pf" = b ] && port=$PORT_B
  if ! curl -sf --max-time 5 -H "Authorization: Bearer $ADMIN_KEY" "http://127.0.0.1:$port/metrics" >"$OUT/metrics-$pf.txt"; then
    died="$died $pf(no /metrics at the end)"
    continue
  fi
  n="$(awk '/^rankd_http_requests_total\{.*code="5xx"/ { s += $2 } /^rankd_http_unavailable_total / { u = $2 }
    END { print s - u + 0 }' "$OUT/metrics-$pf.txt")"
  bad5xx=$(( bad5xx + n ))
done
# wrk's socket errors (connect, read, write, timeout): a request that got no answer at all.
sockerr="$(cat "$OUT/wrk-a.txt" "$OUT/wrk-b.txt" | awk '/Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i }
  END { print s + 0 }')"
say "rankd verify (every window Redis holds against PostgreSQL)"
verify_rc=0
"$BIN" verify -c "$TMP/a.yaml" >"$OUT/verify.txt" 2>&1 || verify_rc=$?

"$PYTHON" - "$OUT" "$SECS" "$WARM" "${restarted:-none}" "${errors_a:-0}" "${errors_b:-0}" "$bad5xx" "$verify_rc" "$sockerr" "${died:-}" <<'EOF'
import sys
import statistics
out, secs, warm, restarted = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
err_a, err_b, bad5xx, verify_rc, sockerr = map(int, sys.argv[5:10])
died = sys.argv[10].strip()
rows = [list(map(float, l.split())) for l in open(out + "/samples.txt") if len(l.split()) == 11]
after = [r for r in rows if warm <= r[0] <= secs]  # the last sample, after the load stopped, is shown only
# Samples are 10 s apart plus the time taking one takes (longer on a busy machine); an instance
# that died is caught above, so this only refuses a run too thin to judge.
if len(after) < 6 or len(rows) < secs // 15:
    print("too few samples (%d): rankd A may have died" % len(rows))
    sys.exit(1)
# Each end of the judged stretch is the median of its tenth (at least three samples).
k = max(3, len(after) // 10)
med = lambda rs, c: statistics.median(r[c] for r in rs)
head, tail = after[:k], after[-k:]
level = lambda c: (med(head, c), med(tail, c))
growth = lambda c: 100.0 * (level(c)[1] - level(c)[0]) / level(c)[0]
rss_growth = growth(1)
# Anonymous memory is what a leak grows: the rest of RSS is the binary's and the libraries' code
# and data pages, file-backed, which grow as new code paths run (a Redis restart's) and are
# bounded by those files' sizes.
anon_growth = growth(9)
fd_growth = level(2)[1] - level(2)[0]
first, last = after[0], after[-1]
ok = (anon_growth <= 2.0 and fd_growth <= 5 and bad5xx == 0 and verify_rc == 0 and sockerr == 0 and not died)
def svg(path):
    W, H, P = 720, 300, 40
    series = [(1, "RSS kB", "#1f77b4"), (9, "RssAnon kB", "#9467bd"), (7, "heap in use / 1024", "#ff7f0e"),
              (4, "L1 bytes / 1024", "#2ca02c")]
    kb = lambda r, c: r[c] / (1 if c in (1, 9) else 1024)
    ys = [kb(r, c) for r in rows for c, _, _ in series]
    ymax = max(ys) * 1.1 or 1
    tmax = max(r[0] for r in rows) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<line x1="{P}" y1="{H-P}" x2="{W-10}" y2="{H-P}" stroke="#999"/><line x1="{P}" y1="10" x2="{P}" y2="{H-P}" stroke="#999"/>',
             f'<text x="{P}" y="{H-12}">0 s</text><text x="{W-60}" y="{H-12}">{tmax:.0f} s</text>',
             f'<text x="2" y="20">{ymax:,.0f}</text>']
    for i, (c, name, color) in enumerate(series):
        pts = " ".join(f"{P + (W-P-10) * r[0] / tmax:.1f},{H - P - (H-P-10) * kb(r, c) / ymax:.1f}" for r in rows)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{P + 10 + 150 * i}" y="24" fill="{color}">{name}</text>')
    wx = P + (W-P-10) * warm / tmax
    parts.append(f'<line x1="{wx:.1f}" y1="10" x2="{wx:.1f}" y2="{H-P}" stroke="#d62728" stroke-dasharray="4"/>')
    parts.append(f'<text x="{wx+4:.1f}" y="{H-P-6}" fill="#d62728">end of warm-up</text>')
    for t in (int(x) for x in restarted.split(",") if x.isdigit()):
        rx = P + (W-P-10) * t / tmax
        parts.append(f'<line x1="{rx:.1f}" y1="10" x2="{rx:.1f}" y2="{H-P}" stroke="#7f7f7f" stroke-dasharray="2"/>')
        parts.append(f'<text x="{rx+4:.1f}" y="{H-P-20}" fill="#7f7f7f">Redis restart</text>')
    parts.append('</svg>')
    open(path, "w").write("\n".join(parts))
svg(out + "/samples.svg")
L = [f"# rankd soak: {secs} s", "",
     f"Verdict: **{'pass' if ok else 'FAIL'}**. Judged from the end of the warm-up ({warm} s) to the end, "
     f"each end the median of {k} samples: anonymous memory (RssAnon) "
     f"{level(9)[0]:,.0f} → {level(9)[1]:,.0f} kB ({anon_growth:+.2f} %; limit +2 %); RSS {level(1)[0]:,.0f} → "
     f"{level(1)[1]:,.0f} kB ({rss_growth:+.2f} %; of it file-backed {level(10)[0]:,.0f} → {level(10)[1]:,.0f} kB); "
     f"descriptors {level(2)[0]:.0f} → {level(2)[1]:.0f} ({fd_growth:+.0f}, limit +5); "
     f"threads {first[3]:.0f} → {last[3]:.0f}; L1 {first[4]:,.0f} → {last[4]:,.0f} bytes; "
     f"heap in use {first[7]:,.0f} → {last[7]:,.0f} bytes, free but kept {first[8]:,.0f} → {last[8]:,.0f}.",
     f"Redis restarted at (s): {restarted}. Non-2xx answers: A {err_a}, B {err_b}; 5xx other than 503: {bad5xx}; "
     f"requests with no answer (wrk socket errors): {sockerr}; instances that died: {died or 'none'}. "
     f"`rankd verify` at the end: {'clean' if verify_rc == 0 else 'exit %d (verify.txt)' % verify_rc}.", "",
     "![samples](samples.svg)", "",
     "| s | RSS kB | RssAnon kB | RssFile kB | fds | threads | L1 bytes | PG conns A | PG conns B | heap in use | heap free |",
     "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
L += [f"| {r[0]:.0f} | {r[1]:,.0f} | {r[9]:,.0f} | {r[10]:,.0f} | {r[2]:.0f} | {r[3]:.0f} | {r[4]:,.0f} | {r[5]:.0f} | "
      f"{r[6]:.0f} | {r[7]:,.0f} | {r[8]:,.0f} |" for r in rows]
open(out + "/report.md", "w").write("\n".join(L) + "\n")
print("\n".join(L[:4]))
sys.exit(0 if ok else 1)
EOF
