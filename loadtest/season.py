"""loadtest/season.py — a season of rankd on the test clock (issue 27); run by loadtest/season.sh.

One PostgreSQL, one Redis and two rankd instances (either may lead the upkeep), all started here
in a temporary folder on free loopback ports and stopped by PID. Both instances follow test clock
files, so a simulated day passes in about a second: each day the clock crosses midnight (resets,
archives), a steady stream of submissions and a player's deletion go in, and every read path of
every board is checked against an oracle.

The oracle is computed here from the submissions sent, never copied from the server's answers:
each submission carries a unique tag in its metadata (`{"n": N}`) and an Idempotency-Key; the
oracle applies the board's operator (best, latest, sum) and its min_score/max_score to what was
sent, and orders standings by the contract's rule (score under the board's sort, then
achieved_at, then player id by bytes). A submission's achieved_at is the server's receive time:
the oracle takes it from the answer only after checking that it lies between the test clock's time
when the submission was first sent and when its answer came, and it checks each answer's score,
previous_score, updated and window against its own. A submission whose outcome is unknown (a
timeout, a connection cut, a 503) is sent again with the same key until it is answered, so the
fate of every one is known; one never answered is a failed check.

- boards: daily, weekly, monthly and never-reset, `best`, `latest` and `sum`, `desc` and `asc`,
  two with min_score/max_score (3 % of their submissions are outside and must be refused), most
  with retention (retention.board_windows), one keeping every window; the log keeps 2 months;
- each day: the current window's page, players, around-me, a strong read (the primary), the
  previous window, the oldest window retention keeps, and the one past it (404), through both
  instances; a whole board walked by cursors, forward and back (one board a day, current and
  previous windows in turn); `rank?score=` of a tie, a score above one, and past both ends, on
  three boards a day in turn; the statistics of every current window (after `POST
  /v1/admin/refresh`: API.md gives the statistics of the last refresh) and of every window closed
  that day (from its archive) against the oracle's; the export of every window closed that day,
  and of one current window, row by row; archives exact (their rows against the oracle's final
  ranks); the log's partitions at least 2 months ahead; retention done (no board keeps more
  archives than it should); `rankd verify` clean; RSS of both instances, Redis memory, table
  sizes and each upkeep job's duration recorded;
- faults, each at its day (and again every 100 days), each injected while three writers (their
  own players, singles and batches, each answer's standing read back from the instance that
  answered) and a reader are in flight against the instances clients use: a view refresh made
  to fail for a simulated week, Redis restarted from an older snapshot, the leader killed (and
  started again two days later), the leader's clock skewed three days ahead for two days, the
  primary restarted. Each fault must be shown to have taken effect (a failed check otherwise):
  the views job's failed counter moved; Redis came back under another run id with fewer keys
  and rankd found windows behind or rebuilt them; another instance took the lead; the skewed
  leader's guarded jobs were refused; PostgreSQL's start time changed and rankd saw it (its
  /readyz, its node errors, or requests answered 503). For each, the report counts the requests
  in flight when it was injected, those that overlapped it (sent, failed, sent again), and the
  submissions lost (acknowledged but not in the log, or logged twice): 0, or a failed check.

At the end: report.md with a table of the faults, a chart per series (SVG), results.txt, and exit
1 if any check failed. Flatness: in runs of 60 days or more, after a 10-day warm-up, the later
half's maximum of each instance's RSS, Redis memory and the idempotency keys' table at most 1.5
times the earlier half's (plus 1 MiB, or 64 KiB for a table); the other tables hold what retention
keeps (the log's two months, three months of a monthly board, every window of one board), which
grows for longer than a smoke run. Runs of 150 days or more: each size's mean over the last 30
days against its mean over the middle month, at most 10 % more; the archive is left out (one
board keeps every window). Idempotency keys expire by PostgreSQL's clock (25 h), which the test
clock does not move: at the first simulated midnight a key lives through, it is made 25 h old
(the upkeep then drops it)."""

import argparse
import datetime as dt
import functools
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import collections
from collections import namedtuple

import psycopg2
import redis as redis_mod
import requests

ADMIN = "season-admin-key-0123456789abcdef"
WRITE = "season-write-key-0123456789abcdef"
STMT_MS = 1000                      # postgres.statement_timeout_ms of both instances
GRACE_MS = 2 * STMT_MS + 5000       # a closed window is archived this long after its reset
DAY_MS = 86400000
PG_BIN = "/usr/lib/postgresql/15/bin"
EPOCH = dt.date(1970, 1, 1)

Board = namedtuple("Board", "id reset sort op keep lo hi")  # keep: closed windows kept (0 = all); lo/hi: min/max_score
BOARDS = [
    Board("d7", "daily", "desc", "best", 7, None, None),
    Board("d2", "daily", "desc", "latest", 2, None, None),
    Board("w4", "weekly", "asc", "latest", 4, 1, 999),
    Board("wk", "weekly", "desc", "best", 0, None, None),
    Board("m3", "monthly", "desc", "best", 3, None, None),
    Board("n0", "none", "desc", "latest", 0, None, None),
    Board("s3", "weekly", "desc", "sum", 3, -50, 500),
]
BOARD = {b.id: b for b in BOARDS}
# Day (of each 100) -> the fault made that day (Season.f_*).
FAULTS = {20: "f_views_fail", 27: "f_views_again", 34: "f_snapshot", 35: "f_redis_restore", 45: "f_kill_leader",
          47: "f_start_again", 50: "f_skew", 52: "f_unskew", 55: "f_primary_restart"}
CLOCK_BOARD = "zclock"  # set_clock's probe: when a submission's receive time shows the move, rankd follows
PLAYERS = 60                        # p00..p59: the day's stream; q<k>_<j>: the fault traffic's writers
WRITERS, WRITER_PLAYERS = 3, 8      # fault traffic: threads writing, players each owns
LANES = 4                           # the day's single submissions: sent this many at once
FLAT_TABLES = ["standings", "window_counts", "rank_buckets", "rank_supers", "submissions", "idempotency_keys",
               "daily_activity", "archived_windows"]


def free_ports(n):
    ss = [socket.socket() for _ in range(n)]
    for s in ss:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in ss]
    for s in ss:
        s.close()
    return ports


def ms_of(day, h=0, m=0, s=0):
    return (day - EPOCH).days * DAY_MS + ((h * 60 + m) * 60 + s) * 1000


def window_start(reset, day):
    if reset == "none":
        return EPOCH
    if reset == "daily":
        return day
    if reset == "weekly":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def prev_window(reset, start):
    if reset == "daily":
        return start - dt.timedelta(days=1)
    if reset == "weekly":
        return start - dt.timedelta(days=7)
    return (start - dt.timedelta(days=1)).replace(day=1)


@functools.lru_cache(maxsize=1 << 16)
def parse_at(s):
    t = dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int((t - dt.datetime(1970, 1, 1)).total_seconds() * 1000 + 0.5)


class Failures:
    """Failed checks, from the main thread and the fault traffic's threads."""

    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def add(self, day, what):
        with self.lock:
            self.items.append((day, what))
        print("FAIL day %s: %s" % (day, what), flush=True)


# ---------------------------------------------------------------------------------------------
# Servers

class Postgres:
    def __init__(self, root, port):
        self.dir = os.path.join(root, "pg")
        self.data = os.path.join(self.dir, "data")
        self.port = port
        self.log = os.path.join(self.dir, "pg.log")
        self.local = threading.local()

    def _pg(self, *args, check=True):
        r = subprocess.run(["runuser", "-u", "postgres", "--"] + list(args), capture_output=True, text=True,
                           cwd="/tmp")
        if check and r.returncode != 0:
            raise RuntimeError("%s: %s%s" % (args[0], r.stdout, r.stderr))
        return r

    def start(self):
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        self._pg(PG_BIN + "/initdb", "-D", self.data, "-U", "rankd", "--auth=trust", "-E", "UTF8", "--no-locale",
                 "--no-sync")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"
                    "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\nmax_connections = 100\n"
                    "shared_buffers = 128MB\n"
                    # A simulated day is about a second: autovacuum looks every second, not every
                    # simulated two months (its default of a minute).
                    "autovacuum_naptime = 1\n" % (self.port, self.dir))
        self.up()
        self.query("postgres", "CREATE DATABASE rankd")

    def up(self):
        self._pg(PG_BIN + "/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def restart(self):
        self._pg(PG_BIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "restart", "-l", self.log)

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._pg(PG_BIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop", check=False)

    def dsn(self, db="rankd"):
        return "host=127.0.0.1 port=%d dbname=%s user=rankd" % (self.port, db)

    def connect(self, db="rankd"):
        c = psycopg2.connect(self.dsn(db), connect_timeout=5)
        c.autocommit = True
        return c

    def query(self, db, sql, args=None):
        """One statement on this thread's connection to `db` (kept: a connection costs more than
        most of these statements), made again once if the server closed it (a restart)."""
        held = self.local.__dict__.setdefault("conns", {})
        for attempt in (0, 1):
            c = held.get(db)
            if c is None or c.closed:
                c = held[db] = self.connect(db)
            try:
                with c.cursor() as cur:
                    cur.execute(sql, args)
                    return cur.fetchall() if cur.description else None
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                c.close()
                held.pop(db, None)
                if attempt:
                    raise


class Redis:
    def __init__(self, root, port):
        self.dir = os.path.join(root, "redis")
        os.makedirs(self.dir)
        self.port = port
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
                                      "--save", "", "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        for _ in range(200):
            try:
                self.client().ping()
                return
            except redis_mod.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self):
        return redis_mod.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port


class Clock:
    """A test clock file: the offset from the real clock (simulated time), and a skew of this
    instance's host clock (util/clock.h)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.skew = 0

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %d" % (self.offset, self.skew))
        os.replace(tmp, self.path)


class Rankd:
    def __init__(self, name, root, binary, port, pg, redis_url, clock):
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.binary = binary
        self.port = port
        self.clock = clock
        self.config = os.path.join(self.dir, "rankd.yaml")
        retention = ", ".join('"%s=%d"' % (b.id, b.keep) for b in BOARDS if b.keep > 0)
        with open(self.config, "w") as f:
            f.write("""development: true
listen: "127.0.0.1:%d"
log_level: info
postgres:
  primary: "%s"
  pool_size: 4
  statement_timeout_ms: %d
redis:
  url: "%s"
refresh:
  interval_s: 1
  timeout_s: 1
retention:
  windows: 0
  board_windows: [%s]
  log_months: 2
auth:
  cursor_secret: "season-cursor-secret-0123456789abcdef"
  keys:
    - {key: "%s", role: admin}
    - {key: "%s", role: write}
""" % (port, pg.dsn(), STMT_MS, redis_url, retention, ADMIN, WRITE))
        self.proc = None
        self.local = threading.local()  # a requests session per thread: the checks run at once
        self.lock = threading.Lock()
        self.retried_503 = 0
        self.skewed = False  # its host clock wrong: no client traffic (it would write the wrong windows)
        self.starting = False  # started again, not yet following the clock: no client traffic

    @property
    def s(self):
        if not hasattr(self.local, "s"):
            self.local.s = requests.Session()
        return self.local.s

    def start(self):
        log = open(os.path.join(self.dir, "rankd.log"), "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RANKD_")}
        env.update({"RANKD_TEST_CLOCK_FILE": self.clock.path, "RANKD_RANK_BUCKET_ROWS": "4",
                    "RANKD_MIGRATIONS_DIR": os.environ.get("RANKD_MIGRATIONS_DIR", "migrations")})
        self.proc = subprocess.Popen([self.binary, "serve", "-c", self.config], stdout=log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        log.close()
        for _ in range(400):
            try:
                if self.s.get(self.url("/healthz"), timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start" % self.name)
            time.sleep(0.05)
        raise RuntimeError("%s did not start" % self.name)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(30)

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get(self, path, key=None):
        """GET, sent again on a 503 for up to 5 s (as a client honouring Retry-After: the primary
        restarting, say); `retried_503` counts those."""
        h = {"Authorization": "Bearer " + key} if key else {}
        for _ in range(50):
            r = self.s.get(self.url(path), headers=h, timeout=30)
            if r.status_code != 503:
                return r
            with self.lock:
                self.retried_503 += 1
            time.sleep(0.1)
        return r

    def post(self, path, body, key=WRITE):
        return self.s.post(self.url(path), json=body, headers={"Authorization": "Bearer " + key}, timeout=30)

    def delete(self, path):
        return self.s.delete(self.url(path), headers={"Authorization": "Bearer " + ADMIN}, timeout=30)

    def metrics(self):
        out = {}
        body = self.get("/metrics", key=ADMIN).text
        for line in body.splitlines():
            m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cli(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RANKD_")}
        env["RANKD_MIGRATIONS_DIR"] = os.environ.get("RANKD_MIGRATIONS_DIR", "migrations")
        return subprocess.run([self.binary] + list(args) + ["-c", self.config], capture_output=True, text=True,
                              env=env, timeout=300)


# ---------------------------------------------------------------------------------------------
# The oracle

def better(board, a, b):
    """Whether score a ranks above score b on `board`."""
    return a > b if board.sort == "desc" else a < b


def percentile_cont(asc, p):
    """PostgreSQL's percentile_cont over ascending values."""
    pos = p * (len(asc) - 1)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return asc[lo] + (pos - lo) * (asc[hi] - asc[lo])


class Oracle:
    """Per board and window: {player: [score, achieved_ms, tag]}, computed from the submissions
    sent under the board's operator; and per board and window {player: accepted submissions}."""

    def __init__(self):
        self.w = {b.id: {} for b in BOARDS}
        self.nsubs = {b.id: {} for b in BOARDS}
        self.lock = threading.Lock()

    @staticmethod
    def refuses(board, score):
        """Whether the board refuses a submitted score (its min_score / max_score)."""
        return (board.lo is not None and score < board.lo) or (board.hi is not None and score > board.hi)

    def apply(self, sub, res):
        """Apply acknowledged submission `sub` (its answer `res`) under its board's operator.
        Returns the differences between the answer and what the oracle computed (empty: none);
        the oracle goes by its own computation either way. achieved_at is the server's receive
        time: taken from the answer once it is shown to lie between the test clock's time when
        the submission was first sent and when its answer came."""
        b = sub.board
        problems = []
        with self.lock:
            rows = self.w[b.id].setdefault(sub.win, {})
            cur = rows.get(sub.player)
            prev = cur[0] if cur else None
            if b.op == "best":
                updated = cur is None or better(b, sub.score, prev)
                new = sub.score if updated else prev
            elif b.op == "latest":
                updated = cur is None or sub.score != prev
                new = sub.score
            else:  # sum
                new = (prev or 0) + sub.score
                updated = cur is None or sub.score != 0
            got = (res.get("window"), res.get("score"), res.get("previous_score"), res.get("updated"))
            if got != (sub.win, new, prev, updated):
                problems.append("answered (window, score, previous_score, updated) %s, the oracle computed %s" % (
                    got, (sub.win, new, prev, updated)))
            try:
                at = parse_at(res["achieved_at"])
            except (KeyError, TypeError, ValueError):
                at = None
                problems.append("answered no achieved_at")
            if updated:
                if at is None or not sub.sent_ms - 2 <= at <= sub.acked_ms + 2:
                    problems.append("achieved_at %s is not between the send (%d) and the answer (%d)" % (
                        res.get("achieved_at"), sub.sent_ms, sub.acked_ms))
                    at = sub.sent_ms if at is None else at
                rows[sub.player] = [new, at, sub.n]
            elif at != cur[1]:
                problems.append("achieved_at %s changed although the standing did not (it was %d)" % (
                    res.get("achieved_at"), cur[1]))
            counts = self.nsubs[b.id].setdefault(sub.win, {})
            counts[sub.player] = counts.get(sub.player, 0) + 1
            sub.updated = updated
        return problems

    def delete(self, board_id, player):
        with self.lock:
            for standings in self.w[board_id].values():
                standings.pop(player, None)
            for counts in self.nsubs[board_id].values():
                counts.pop(player, None)

    def rows(self, board_id, window):
        with self.lock:
            return dict(self.w[board_id].get(window, {}))

    def standing(self, board_id, window, player):
        with self.lock:
            v = self.w[board_id].get(window, {}).get(player)
            return tuple(v) if v else None

    def submissions(self, board_id, window):
        with self.lock:
            return sum(self.nsubs[board_id].get(window, {}).values())

    def ranked(self, board_id, window):
        """[(rank, player, score, achieved_ms, tag)] in the contract's order."""
        b = BOARD[board_id]
        rows = self.rows(board_id, window)
        key = (lambda kv: (-kv[1][0] if b.sort == "desc" else kv[1][0], kv[1][1], kv[0].encode()))
        return [(i + 1, p, s, at, n) for i, (p, (s, at, n)) in enumerate(sorted(rows.items(), key=key))]

    def stats(self, board_id, window):
        """The statistics API.md defines, over the window's standings."""
        scores = sorted(v[0] for v in self.rows(board_id, window).values())
        n = len(scores)
        out = {"players": n}
        if not n:
            out.update({"min": None, "max": None, "mean": None, "stddev": None, "histogram": [],
                        "percentiles": {"p50": None, "p90": None, "p95": None, "p99": None}})
            return out
        mean = sum(scores) / n
        lo, hi = scores[0], scores[-1]
        out.update({"min": lo, "max": hi, "mean": mean,
                    "stddev": math.sqrt(sum((x - mean) ** 2 for x in scores) / n),
                    "percentiles": {"p%d" % int(p * 100): percentile_cont(scores, p) for p in (0.5, 0.9, 0.95, 0.99)}})
        if hi == lo:
            out["histogram"] = [(lo, hi, n)]
        else:
            counts = [0] * 20
            for x in scores:  # width_bucket over [lo, hi), the last bucket closed
                counts[min(int(20 * ((x - lo) / (hi - lo))) + 1, 20) - 1] += 1
            width = (hi - lo) / 20
            out["histogram"] = [(lo + width * i, hi if i == 19 else lo + width * (i + 1), counts[i]) for i in range(20)]
        return out


def entries_of(body):
    return [(e["rank"], e["player_id"], e["score"], parse_at(e["achieved_at"]), (e.get("metadata") or {}).get("n"))
            for e in body["entries"]]


# ---------------------------------------------------------------------------------------------
# Submissions and the traffic that runs through each fault

class Sub:
    """One submission: what was sent, and its fate (pending, acked, refused or unknown)."""
    _n = itertools.count(1)

    def __init__(self, board, player, score, win):
        self.n = next(Sub._n)
        self.board, self.player, self.score, self.win = board, player, score, win
        self.state = "pending"
        self.updated = None
        self.sent_ms = self.acked_ms = None
        self.inst = None  # the instance that answered

    def item(self):
        return {"board": self.board.id, "player_id": self.player, "score": self.score, "metadata": {"n": self.n},
                "idempotency_key": "k%d" % self.n}


def failure_label(path, r):
    """What a failed request was, for the report: its route's last word and its status."""
    route = re.sub(r"\?.*", "", path).rstrip("/").split("/")[-1]
    route = {"scores:batch": "batch"}.get(route, route)
    if re.match(r"^[pq][0-9_]+$", route):
        route = "player"
    if r is None:
        return route + " cut"
    try:
        why = r.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        why = ""
    return "%s %s%s" % (route, r.status_code, " (%s)" % why[:60] if why else "")


class ReqLog:
    """Every request the fault traffic sent: (start, end, kind, ok, sent again, what failed), and how many are
    in flight to each instance right now."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = []
        self.inflight = {}

    def begin(self, inst, kind):
        with self.lock:
            self.inflight[inst.name, kind] = self.inflight.get((inst.name, kind), 0) + 1
        return time.time()

    def end(self, inst, t0, kind, ok, again, label=""):
        with self.lock:
            self.inflight[inst.name, kind] -= 1
            self.events.append((t0, time.time(), kind, ok, again, label))

    def in_flight(self, name=None, kind=None):
        with self.lock:
            return sum(v for (n, k), v in self.inflight.items() if name in (None, n) and kind in (None, k))

    def overlapping(self, w0, w1):
        with self.lock:
            return [e for e in self.events if e[0] <= w1 and e[1] >= w0]


class Sender:
    """Sends submissions (one, or a batch) until each one's fate is known: acknowledged (the
    oracle applies it and checks the answer), refused as the oracle expects, or, after a minute of
    tries, unknown (a failed check). An attempt that failed (a connection error, a timeout, a 503,
    a 409 while another try of the same key is still in flight) is sent again with the same keys,
    to whichever instance clients use next: the key makes it harmless."""

    def __init__(self, season, day, log=None, rot=0):
        self.season, self.day, self.log, self.rot = season, day, log, rot
        self.s = requests.Session()
        self.attempts = self.failed = self.retried = 0

    def send(self, subs, batch):
        season = self.season
        pending = list(subs)
        first_ms = season.sim_ms()
        for sub in pending:
            sub.sent_ms = first_ms
        deadline = time.time() + 60
        again = False
        while pending:
            insts = season.client_instances()
            if not insts:
                time.sleep(0.05)
                if time.time() > deadline:
                    break
                continue
            inst = insts[self.rot % len(insts)]
            self.rot += 1
            if batch:
                path, body, headers = "/v1/scores:batch", {"scores": [x.item() for x in pending]}, {}
            else:
                x = pending[0]
                path = "/v1/leaderboards/%s/scores" % x.board.id
                body = {"player_id": x.player, "score": x.score, "metadata": {"n": x.n}}
                headers = {"Idempotency-Key": "k%d" % x.n}
            headers["Authorization"] = "Bearer " + WRITE
            t0 = self.log.begin(inst, "write") if self.log else time.time()
            try:
                r = self.s.post(inst.url(path), json=body, headers=headers, timeout=10)
            except requests.RequestException:
                r = None
            acked_ms = season.sim_ms()
            self.attempts += 1
            self.retried += again
            results = None
            if r is not None and r.status_code == 200:
                results = r.json()["results"] if batch else [r.json()]
            elif r is not None and r.status_code == 400 and not batch:
                results = [r.json()]
            ok = results is not None and all(x.get("error", {}).get("code") != "unavailable" for x in results)
            if self.log:
                self.log.end(inst, t0, "write", ok, again, "" if ok else failure_label(path, r))
            if not ok:
                self.failed += 1
                code = r.status_code if r is not None else None
                if not (code in (None, 200, 502, 503, 504) or (code == 409 and again)):
                    season.fail.add(self.day, "%s %s answered %s %s" % (inst.name, path, code, r.text[:200]))
                    if code < 500:  # refused whole: nothing changed (API.md)
                        for sub in pending:
                            sub.state = "refused"
                        pending = []
                        break
                again = True  # its fate unknown (a 500 too): sent again with the same keys
                if time.time() > deadline:
                    break
                time.sleep(0.05)
                continue
            still = []
            for sub, res in zip(pending, results):
                if "error" in res:
                    e = res["error"]
                    if e.get("code") == "unavailable":
                        still.append(sub)
                    elif e.get("code") == "invalid_argument" and e.get("field") == "score" and \
                            Oracle.refuses(sub.board, sub.score):
                        sub.state = "refused"
                    else:
                        sub.state = "refused"
                        season.fail.add(self.day, "%s refused submission %d (%s %s %d): %s" % (
                            inst.name, sub.n, sub.board.id, sub.player, sub.score, json.dumps(e)[:200]))
                    continue
                sub.acked_ms, sub.inst, sub.state = acked_ms, inst, "acked"
                if Oracle.refuses(sub.board, sub.score):
                    season.fail.add(self.day, "%s accepted submission %d of %d to %s, outside its min/max_score" % (
                        inst.name, sub.n, sub.score, sub.board.id))
                for p in season.oracle.apply(sub, res):
                    season.fail.add(self.day, "%s submission %d (%s %s %d): %s" % (
                        inst.name, sub.n, sub.board.id, sub.player, sub.score, p))
            if still:
                again = True
                time.sleep(0.05)
            pending = still
        for sub in pending:
            sub.state = "unknown"
            season.fail.add(self.day, "submission %d (%s %s %d) was never answered within a minute: its fate is unknown"
                            % (sub.n, sub.board.id, sub.player, sub.score))
        return subs


class Traffic:
    """Writers and a reader sent through a fault. Each writer owns its players (so the order of a
    player's submissions is known) and sends singles and batches of 2-5 on every board; after an
    answer it reads the player's standing back from the instance that answered (API.md: a read
    sent after a submit's answer reflects it on the same instance). The reader reads pages,
    players, around-me, a rank of a score and stats on the instances clients use. Every request is
    logged (ReqLog) with its times, so the fault's window can be matched against them."""

    def __init__(self, season, day):
        self.season, self.day = season, day
        self.log = ReqLog()
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.subs = []
        self.acks = []  # times of acknowledged answers
        self.reads = self.reads_failed = self.readbacks = 0
        self.senders = []
        self.threads = [threading.Thread(target=self.writer, args=(k,), daemon=True) for k in range(WRITERS)]
        self.threads.append(threading.Thread(target=self.reader, daemon=True))

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(120)

    def acked_since(self, t):
        with self.lock:
            return sum(1 for a in self.acks if a >= t)

    def wait_acks(self, n, since, what):
        """Until `n` answers came after `since` (so the fault meets requests in flight, and the
        service answers again after it)."""
        deadline = time.time() + 60
        while self.acked_since(since) < n:
            if time.time() > deadline:
                self.season.fail.add(self.day, "the traffic got no %d answers %s within 60 s" % (n, what))
                return
            time.sleep(0.01)

    def writer(self, k):
        season = self.season
        rng = random.Random("%s-%s-%d" % (season.args.seed, self.day, k))
        players = ["q%d_%d" % (k, j) for j in range(WRITER_PLAYERS)]
        sender = Sender(season, self.day, self.log, rot=k)
        self.senders.append(sender)
        s = requests.Session()
        while not self.stop_ev.is_set():
            batch = rng.random() < 0.3
            subs = [season.new_sub(rng, rng.choice(BOARDS), rng.choice(players), self.day)
                    for _ in range(rng.randrange(2, 6) if batch else 1)]
            sender.send(subs, batch)
            with self.lock:
                self.subs.extend(subs)
                if any(x.state in ("acked", "refused") for x in subs):
                    self.acks.append(time.time())
            done = [x for x in subs if x.state == "acked"]
            if done and rng.random() < 0.5:
                self.read_back(s, done[-1])
            time.sleep(0.01)  # paced: the fault needs requests in flight, not the most the machine can take

    def read_back(self, s, sub):
        """The standing as the instance that answered shows it: the oracle's (this thread alone
        writes the player)."""
        inst = sub.inst
        want = self.season.oracle.standing(sub.board.id, sub.win, sub.player)
        path = "/v1/leaderboards/%s/players/%s" % (sub.board.id, sub.player)
        deadline = time.time() + 10
        while inst.alive:
            t0 = self.log.begin(inst, "read")
            try:
                r = s.get(inst.url(path), timeout=10)
            except requests.RequestException:
                r = None
            self.log.end(inst, t0, "read", r is not None and r.status_code == 200, False, failure_label(path, r))
            if r is not None and r.status_code == 200:
                b = r.json()
                got = (b["score"], parse_at(b["achieved_at"]), (b.get("metadata") or {}).get("n"))
                self.readbacks += 1
                if got != (want[0], want[1], want[2]):
                    self.season.fail.add(self.day, "%s showed %s %s as %s right after answering submission %d; "
                                         "the oracle has %s" % (inst.name, sub.board.id, sub.player, got, sub.n, want))
                return
            if r is not None and r.status_code not in (502, 503, 504):
                self.season.fail.add(self.day, "%s %s answered %s %s after acknowledging submission %d" % (
                    inst.name, path, r.status_code, r.text[:200], sub.n))
                return
            if time.time() > deadline:
                return
            time.sleep(0.05)

    def reader(self):
        season = self.season
        rng = random.Random("%s-%s-r" % (season.args.seed, self.day))
        s = requests.Session()
        while not self.stop_ev.is_set():
            insts = season.client_instances()
            if not insts:
                time.sleep(0.05)
                continue
            inst = rng.choice(insts)
            b = rng.choice(BOARDS)
            player = rng.choice(["p%02d" % rng.randrange(PLAYERS), "q%d_%d" % (rng.randrange(WRITERS),
                                                                             rng.randrange(WRITER_PLAYERS))])
            path = rng.choice(["/v1/leaderboards/%s/entries?limit=10" % b.id,
                               "/v1/leaderboards/%s/players/%s" % (b.id, player),
                               "/v1/leaderboards/%s/players/%s/around?before=2&after=2" % (b.id, player),
                               "/v1/leaderboards/%s/rank?score=%d" % (b.id, rng.randrange(1, 500)),
                               "/v1/leaderboards/%s/stats" % b.id])
            t0 = self.log.begin(inst, "read")
            try:
                r = s.get(inst.url(path), timeout=10)
            except requests.RequestException:
                r = None
            ok = r is not None and (r.status_code == 200 or (r.status_code == 404 and "/players/" in path))
            self.log.end(inst, t0, "read", ok, False, "" if ok else failure_label(path, r))
            self.reads += 1
            if not ok:
                self.reads_failed += 1
                if r is not None and r.status_code not in (502, 503, 504):
                    season.fail.add(self.day, "%s %s answered %s %s during a fault" % (
                        inst.name, path, r.status_code, r.text[:200]))
                time.sleep(0.05)
            time.sleep(0.005)


class ReadyWatch:
    """Polls /readyz (admin: each dependency's state) on every running instance while a fault is
    under way; remembers each dependency state other than ok that it saw."""

    def __init__(self, season):
        self.season = season
        self.seen = set()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        s = requests.Session()
        while not self.stop_ev.is_set():
            for inst in list(self.season.inst):
                if not inst.alive:
                    continue
                try:
                    r = s.get(inst.url("/readyz"), headers={"Authorization": "Bearer " + ADMIN}, timeout=2)
                    for dep, state in r.json().get("dependencies", {}).items():
                        if state != "ok":
                            self.seen.add((inst.name, dep, state))
                except (requests.RequestException, ValueError):
                    pass
            time.sleep(0.02)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(10)
        return self.seen


# ---------------------------------------------------------------------------------------------
# The season

class Season:
    def __init__(self, args):
        self.args = args
        self.root = tempfile.mkdtemp(prefix="rankd-season.")
        os.chmod(self.root, 0o755)
        pg_port, redis_port, a_port, b_port = free_ports(4)
        self.pg = Postgres(self.root, pg_port)
        self.redis = Redis(self.root, redis_port)
        self.clocks = [Clock(os.path.join(self.root, "clock-a")), Clock(os.path.join(self.root, "clock-b"))]
        self.inst = [Rankd("rankd-a", self.root, args.bin, a_port, self.pg, self.redis.url(), self.clocks[0]),
                     Rankd("rankd-b", self.root, args.bin, b_port, self.pg, self.redis.url(), self.clocks[1])]
        self.oracle = Oracle()
        self.fail = Failures()
        self.rng = random.Random(args.seed)
        self.series = {}  # name -> [(day index, value)]
        self.counts = {"submissions": 0, "refused": 0, "deletions": 0, "reads": 0, "retried": 0, "late_notices": 0,
                       "verify_during_rebuild": 0, "cursor_pages": 0, "rank_reads": 0, "stats_checked": 0,
                       "exports_checked": 0, "traffic_submissions": 0, "traffic_reads": 0, "readbacks": 0}
        self.fault_rows = []
        self.listener_gap_days = set()
        self.redis_restored_days = set()
        self.created = {}
        self.held = None  # the connection holding a view's refresh lock (a fault)
        self.held_refreshed_at = None
        self.skewed = False
        self.retention_due = None  # the day whose retention is checked before the next midnight
        self.phase_s = {}
        self.phase_lock = threading.Lock()
        self.senders = [Sender(self, None, rot=k) for k in range(LANES + 1)]  # the day's stream (submit_day)

    # -- plumbing -------------------------------------------------------------------------------
    def sim_ms(self):
        """The test clock's time (the clients' instances: no skew)."""
        return int(time.time() * 1000) + self.clocks[0].offset

    def set_clock(self, ms, probe=False):
        """Move both test clocks, and wait until every instance clients use has seen it (each
        polls its file every 10 ms): its daily board's current window is the day of `ms`; with
        `probe` (a move within the day, before submissions whose receive time the oracle checks),
        a submission to the clock board (not checked; `latest` of a new score each time) is
        received at `ms` or later."""
        offset = int(ms - time.time() * 1000)  # one offset for both: the oracle's clock is theirs
        for c in self.clocks:
            c.offset = offset
            c.write()
        day = (EPOCH + dt.timedelta(days=ms // DAY_MS)).isoformat()
        if not self.created:
            return  # no board yet

        def follows(inst):
            r = inst.post("/v1/leaderboards/%s/scores" % CLOCK_BOARD,
                          {"player_id": inst.name, "score": int(time.time() * 1000)})
            return r.status_code == 200 and parse_at(r.json()["achieved_at"]) >= ms
        for inst in self.alive_instances():
            self.wait(lambda: follows(inst) if probe else
                      inst.get("/v1/leaderboards/d7").json()["current_window"] == day,
                      "%s to follow the clock to %s" % (inst.name, day), day, timeout=10)

    def leader(self):
        for i in self.inst:
            if i.alive:
                try:
                    if i.metrics().get("rankd_upkeep_leader") == 1:
                        return i
                except requests.RequestException:
                    pass
        return None

    def wait(self, pred, what, day, timeout=20):
        v = self.poll(pred, timeout)
        if not v:
            self.fail.add(day, "timed out waiting for " + what)
        return v

    @staticmethod
    def poll(pred, timeout):
        """pred() until it is true, for up to `timeout` s: its value, or None."""
        deadline = time.time() + timeout
        while True:
            try:
                v = pred()
            except (requests.RequestException, psycopg2.Error, redis_mod.exceptions.RedisError, ValueError, KeyError):
                v = None
            if v:
                return v
            if time.time() > deadline:
                return None
            time.sleep(0.02)

    def record(self, name, day_index, value):
        self.series.setdefault(name, []).append((day_index, value))

    def alive_instances(self):
        """The instances clients use: running, with a right clock, following it."""
        return [i for i in self.inst if i.alive and not i.skewed and not i.starting]

    def client_instances(self):
        return self.alive_instances()

    def writer(self):
        return self.alive_instances()[0]

    def count(self, key, n=1):
        with self.phase_lock:
            self.counts[key] += n

    def at_once(self, checks):
        """Each (phase, fn, args…) in a thread of its own; a check that raised is a failed check."""
        def run(phase, fn, *args):
            try:
                self.timed(phase, fn, *args)
            except Exception as e:  # noqa: BLE001 — reported, the run goes on
                self.fail.add(args[0] if args else "-", "%s raised %r" % (phase, e))
        threads = [threading.Thread(target=run, args=c) for c in checks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def timed(self, phase, fn, *args):
        t = time.time()
        try:
            return fn(*args)
        finally:
            with self.phase_lock:
                self.phase_s[phase] = self.phase_s.get(phase, 0.0) + time.time() - t

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, start):
        self.pg.start()
        self.redis.start()
        self.set_clock(ms_of(start, 1))
        r = self.inst[0].cli("migrate", "up")
        if r.returncode != 0:
            raise RuntimeError("migrate: " + r.stdout + r.stderr)
        for i in self.inst:
            i.start()
        for b in BOARDS:
            body = {"id": b.id, "title": b.id, "sort": b.sort, "operator": b.op, "reset": b.reset}
            if b.lo is not None:
                body.update({"min_score": b.lo, "max_score": b.hi})
            r = self.inst[0].post("/v1/leaderboards", body, key=ADMIN)
            if r.status_code != 201:
                raise RuntimeError("create %s: %s %s" % (b.id, r.status_code, r.text))
            self.created[b.id] = start
        r = self.inst[0].post("/v1/leaderboards", {"id": CLOCK_BOARD, "title": "the test clock as rankd sees it",
                                                   "sort": "desc", "operator": "latest", "reset": "none"}, key=ADMIN)
        if r.status_code != 201:
            raise RuntimeError("create %s: %s %s" % (CLOCK_BOARD, r.status_code, r.text))
        self.wait(lambda: self.leader(), "a leader", "setup")

    # -- a day ----------------------------------------------------------------------------------
    def cross_midnight(self, day, i):
        """The clock to just after this day's midnight, then past the archive grace: wait for
        the archives of the windows the reset closed."""
        if self.retention_due:
            self.check_retention(self.retention_due)
            self.retention_due = None
        # Idempotency keys expire by PostgreSQL's clock (25 h), which the test clock leaves alone:
        # a simulated day passes for them too: each key lives through its first midnight, then expires.
        self.pg.query("rankd", "UPDATE idempotency_keys SET created_at = created_at - interval '25 hours'"
                               " WHERE created_at > now() - interval '25 hours'")
        lead = self.leader()
        rolled = lead.metrics().get("rankd_rollovers_total", 0) if lead else 0
        self.set_clock(ms_of(day, 0, 0, 1))
        closing = [b for b in BOARDS if b.reset != "none" and window_start(b.reset, day) == day]
        if closing and lead and not self.skewed:
            self.wait(lambda: lead.metrics().get("rankd_rollovers_total", 0) >= rolled + len(closing),
                      "the rollover", day)
        self.set_clock(ms_of(day, 0, 0, GRACE_MS // 1000 + 2))
        if closing and not self.skewed:
            want = [(self.gen[b.id], prev_window(b.reset, day)) for b in closing
                    if prev_window(b.reset, day) >= window_start(b.reset, self.created[b.id])]

            def archived():
                got = set(self.pg.query("rankd", "SELECT board_gen, win FROM archived_windows"))
                return all((g, w) in got or self.past_retention(g, w, day) for g, w in want)
            self.wait(archived, "the archives of the windows the reset closed", day)

    def past_retention(self, gen, win, day):
        b = next(b for b in BOARDS if self.gen[b.id] == gen)
        if b.keep == 0:
            return False
        kept = window_start(b.reset, day)
        for _ in range(b.keep):
            kept = prev_window(b.reset, kept)
        return win < kept

    def new_sub(self, rng, board, player, day):
        """A submission of a random score; 3 % of those to a board with min/max_score outside them."""
        if board.lo is not None and rng.random() < 0.03:
            score = rng.choice([board.lo - 1 - rng.randrange(100), board.hi + 1 + rng.randrange(100)])
        elif board.op == "sum":
            score = rng.randrange(board.lo, board.hi + 1)
        else:
            score = rng.randrange(1, 1000)
        return Sub(board, player, score, window_start(board.reset, day).isoformat())

    def submit_day(self, day, i):
        """The day's stream: per board, `per_day` submissions of random players, half the boards
        in one batch, the others one by one. Batches go one after another; single submissions go
        in LANES lanes at once (as several game servers would send them), each player's always in
        the same lane, so the order of a player's submissions is the order they were sent."""
        for sender in self.senders:
            sender.day = day
        singles = [[] for _ in range(LANES)]
        batches, sent = [], []
        for b in BOARDS:
            subs = [self.new_sub(self.rng, b, "p%02d" % self.rng.randrange(PLAYERS), day)
                    for _ in range(self.args.per_day)]
            if self.rng.random() < 0.5:
                batches.append(subs)
            else:
                for sub in subs:
                    singles[int(sub.player[1:]) % LANES].append(sub)
            sent += subs
        # A board's submissions are all in one batch or all single, and a batch goes in a lane of
        # its own: no two submissions of one player to one board are ever in flight at once.
        lanes = [threading.Thread(target=lambda k=k: [self.senders[k].send([x], False) for x in singles[k]])
                 for k in range(LANES)]
        lanes.append(threading.Thread(target=lambda: [self.senders[LANES].send(x, True) for x in batches]))
        for t in lanes:
            t.start()
        for t in lanes:
            t.join()
        self.count_subs(sent)
        for sender in self.senders:
            self.count("retried", sender.retried)
            sender.retried = 0
        # One player's deletion a day (their standings, archives and log go).
        bid = self.rng.choice(BOARDS).id
        player = "p%02d" % self.rng.randrange(PLAYERS)
        for attempt in range(60):
            r = self.writer().delete("/v1/leaderboards/%s/players/%s" % (bid, player))
            if r.status_code in (204, 404):
                break
            time.sleep(0.1)
        else:
            self.fail.add(day, "a player's deletion never succeeded: %s" % r.text[:200])
        if self.oracle.standing(bid, window_start(BOARD[bid].reset, day).isoformat(), player) and r.status_code != 204:
            self.fail.add(day, "deleting %s from %s answered %s; the oracle has a standing" % (
                player, bid, r.status_code))
        self.oracle.delete(bid, player)
        self.count("deletions", 1)

    def count_subs(self, subs):
        self.count("submissions", sum(1 for x in subs if x.state == "acked"))
        self.count("refused", sum(1 for x in subs if x.state == "refused"))

    # -- checks ---------------------------------------------------------------------------------
    def check_reads(self, day):
        """Every instance clients use, at once (one thread each)."""
        counts = []
        threads = [threading.Thread(target=lambda i=i: counts.append(self.check_reads_on(day, i)))
                   for i in self.alive_instances()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in counts:
            for k, v in c.items():
                self.count(k, v)

    def check_reads_on(self, day, inst):
        """The current window's page (and a strong read on rankd-a), two players, an around-me,
        the previous window, the oldest retention keeps and the one past it: returns its counts."""
        counts = {"reads": 0, "late_notices": 0}
        rng = random.Random("%s-%s-%s" % (self.args.seed, day, inst.name))
        for b in BOARDS:
            bid, reset, keep = b.id, b.reset, b.keep
            cur = window_start(reset, day)
            want = self.oracle.ranked(bid, cur.isoformat())
            self.expect_page(counts, day, inst, bid, "", want, "current")
            if inst is self.inst[0]:
                self.expect_page(counts, day, inst, bid, "&consistency=strong", want, "current, strong", key=WRITE)
            for rank, p, s, at, n in rng.sample(want, min(2, len(want))):
                path = "/v1/leaderboards/%s/players/%s" % (bid, p)
                r = inst.get(path)
                counts["reads"] += 1
                got = lambda r: (r.json()["rank"], r.json()["score"], (r.json().get("metadata") or {}).get("n"))
                if r.status_code == 200 and got(r) != (rank, s, n) and self.late_notice_allowed(inst, day):
                    time.sleep(1.1)
                    r = inst.get(path)
                    counts["late_notices"] += 1
                if r.status_code != 200 or got(r) != (rank, s, n):
                    self.fail.add(day, "%s %s player %s: %s %s, want rank %d score %d tag %s" % (
                        inst.name, bid, p, r.status_code, r.text[:200], rank, s, n))
            if want:
                rank, p, s, at, n = rng.choice(want)
                path = "/v1/leaderboards/%s/players/%s/around?before=2&after=2" % (bid, p)
                r = inst.get(path)
                counts["reads"] += 1
                exp = want[max(rank - 3, 0):rank + 2]
                if r.status_code == 200 and entries_of(r.json()) != exp and self.late_notice_allowed(inst, day):
                    time.sleep(1.1)
                    r = inst.get(path)
                    counts["late_notices"] += 1
                if r.status_code != 200 or entries_of(r.json()) != exp:
                    self.fail.add(day, "%s %s around %s: %s" % (inst.name, bid, p, r.text[:300]))
            if reset == "none":
                continue
            prev = prev_window(reset, cur)
            if prev >= window_start(reset, self.created[bid]):
                self.expect_page(counts, day, inst, bid, "&window=previous", self.oracle.ranked(bid, prev.isoformat()),
                                 "previous")
            if keep:
                oldest = cur
                for _ in range(keep):
                    oldest = prev_window(reset, oldest)
                if oldest >= window_start(reset, self.created[bid]):
                    self.expect_page(counts, day, inst, bid, "&window=" + oldest.isoformat(),
                                     self.oracle.ranked(bid, oldest.isoformat()), "the oldest kept")
                    gone = prev_window(reset, oldest)
                    if gone >= window_start(reset, self.created[bid]):
                        r = inst.get("/v1/leaderboards/%s/entries?window=%s" % (bid, gone.isoformat()))
                        if r.status_code != 404:
                            self.fail.add(day, "%s %s window %s past retention answered %s" % (
                                inst.name, bid, gone, r.status_code))
        return counts

    def late_notice_allowed(self, inst, day):
        """Whether `inst` may answer from its cache what another instance's write changed, for up
        to the cache's max-age (API.md: the invalidation arrives "never later than the cache
        max-age"): only while its notices may have been lost, the day the primary restarted and
        the next (its listener reconnects; the fault's traffic wrote through both instances).
        Any other read must be exact at once."""
        return day in self.listener_gap_days

    def expect_page(self, counts, day, inst, bid, query, want, what, key=None):
        r = inst.get("/v1/leaderboards/%s/entries?limit=1000%s" % (bid, query), key=key)
        counts["reads"] += 1
        if r.status_code == 200 and entries_of(r.json()) != want and self.late_notice_allowed(inst, day):
            time.sleep(1.1)  # past the cache's max-age (1 s)
            r = inst.get("/v1/leaderboards/%s/entries?limit=1000%s" % (bid, query), key=key)
            counts["late_notices"] += 1
        if r.status_code != 200:
            self.fail.add(day, "%s %s %s: %s %s" % (inst.name, bid, what, r.status_code, r.text[:200]))
            return
        got = entries_of(r.json())
        if got != want or r.json()["total"] != len(want):
            diff = [(g, w) for g, w in zip(got, want) if g != w][:3]
            self.fail.add(day, "%s %s %s window: %d entries, want %d; first differences %s" % (
                inst.name, bid, what, len(got), len(want), diff))

    def check_cursors(self, day, di):
        """One board a day (in turn), on one instance (in turn), its current or previous window
        (in turn) walked by next_cursor to the end and back by prev_cursor, `limit` 7-16: the
        pages joined are the oracle's order, every entry once."""
        insts = self.alive_instances()
        inst = insts[di % len(insts)]
        b = BOARDS[di % len(BOARDS)]
        win = window_start(b.reset, day)
        query = ""
        if (di // len(BOARDS)) % 2 and b.reset != "none":
            prev = prev_window(b.reset, win)
            if prev >= window_start(b.reset, self.created[b.id]):
                win, query = prev, "&window=" + prev.isoformat()
        want = self.oracle.ranked(b.id, win.isoformat())
        limit = 7 + di % 10
        base = "/v1/leaderboards/%s/entries?limit=%d" % (b.id, limit)
        pages, url = [], base + query
        for _ in range(len(want) // limit + 3):
            r = inst.get(url)
            self.count("cursor_pages", 1)
            if r.status_code != 200:
                self.fail.add(day, "%s %s cursor walk: %s %s" % (inst.name, b.id, r.status_code, r.text[:200]))
                return
            pages.append(r.json())
            if not r.json()["next_cursor"]:
                break
            url = base + "&cursor=" + r.json()["next_cursor"]
        got = [e for p in pages for e in entries_of(p)]
        if got != want:
            self.fail.add(day, "%s %s window %s walked by cursors (limit %d, %d pages): %d entries, want %d; "
                               "first differences %s" % (inst.name, b.id, win, limit, len(pages), len(got), len(want),
                                                         [(g, w) for g, w in zip(got, want) if g != w][:3]))
            return
        back, cur = [], pages[-1].get("prev_cursor")
        while cur and len(back) < len(pages) + 2:
            r = inst.get(base + "&cursor=" + cur)
            self.count("cursor_pages", 1)
            if r.status_code != 200:
                self.fail.add(day, "%s %s cursor walk back: %s %s" % (inst.name, b.id, r.status_code, r.text[:200]))
                return
            back.insert(0, r.json())
            cur = r.json()["prev_cursor"]
        got = [e for p in back for e in entries_of(p)] + entries_of(pages[-1])
        if got != want:
            self.fail.add(day, "%s %s window %s walked back by prev_cursor: %d entries, want %d" % (
                inst.name, b.id, win, len(got), len(want)))

    def check_rank_of_score(self, day, di):
        """`rank?score=X` on three boards a day (in turn): the first one's previous window, the
        others' current; X a score some player holds (the new submission ranks after all its
        ties), one above a held score, past the best and past the worst; outside min/max_score a
        400."""
        insts = self.alive_instances()
        inst = insts[(di + 1) % len(insts)]
        for k in range(3):
            b = BOARDS[(di + k) % len(BOARDS)]
            win = window_start(b.reset, day)
            query = ""
            if k == 0 and b.reset != "none" and \
                    prev_window(b.reset, win) >= window_start(b.reset, self.created[b.id]):
                win = prev_window(b.reset, win)
                query = "&window=" + win.isoformat()
            scores = [v[0] for v in self.oracle.rows(b.id, win.isoformat()).values()]
            xs = [self.rng.choice(scores), self.rng.choice(scores) + 1, max(scores) + 7, min(scores) - 7] if scores \
                else [self.rng.randrange(1, 1000)]
            if b.lo is not None:
                xs.append(self.rng.choice([b.lo - 1, b.hi + 1]))
            for x in xs:
                r = inst.get("/v1/leaderboards/%s/rank?score=%d%s" % (b.id, x, query))
                self.count("rank_reads", 1)
                if Oracle.refuses(b, x):
                    if r.status_code != 400 or r.json()["error"].get("field") != "score":
                        self.fail.add(day, "%s %s rank?score=%d outside min/max_score: %s %s" % (
                            inst.name, b.id, x, r.status_code, r.text[:200]))
                    continue
                ahead = sum(1 for s in scores if s == x or better(b, s, x))
                rank, total = ahead + 1, len(scores)
                top = math.ceil(10000 * rank / (total + 1) - 1e-9) / 100
                if r.status_code != 200:
                    self.fail.add(day, "%s %s rank?score=%d: %s %s" % (inst.name, b.id, x, r.status_code, r.text[:200]))
                    continue
                got = r.json()
                if (got["rank"], got["total"], got["window"]) != (rank, total, win.isoformat()) or \
                        abs(got["top_percent"] - top) > 0.001:
                    self.fail.add(day, "%s %s window %s rank?score=%d answered rank %s of %s (top %s %%), the oracle "
                                       "%d of %d (top %s %%)" % (inst.name, b.id, win, x, got["rank"], got["total"],
                                                                 got["top_percent"], rank, total, top))

    def expect_stats(self, day, inst, b, win, query, key=None, submissions=True):
        r = inst.get("/v1/leaderboards/%s/stats?x=1%s" % (b.id, query), key=key)
        self.count("stats_checked", 1)
        if r.status_code != 200:
            self.fail.add(day, "%s %s stats of %s: %s %s" % (inst.name, b.id, win, r.status_code, r.text[:200]))
            return
        got, want = r.json(), self.oracle.stats(b.id, win)
        close = lambda a, e: (a is None and e is None) or (a is not None and e is not None and
                                                          abs(a - e) <= 1e-4 + 1e-9 * abs(e))
        bad = []
        if got["window"] != win or got["players"] != want["players"]:
            bad.append("window %s players %s, want %s %s" % (got["window"], got["players"], win, want["players"]))
        if submissions and got["submissions"] != self.oracle.submissions(b.id, win):
            bad.append("submissions %s, want %s" % (got["submissions"], self.oracle.submissions(b.id, win)))
        for f in ("min", "max", "mean", "stddev"):
            if not close(got[f], want[f]):
                bad.append("%s %s, want %s" % (f, got[f], want[f]))
        for f, v in want["percentiles"].items():
            if not close(got["percentiles"][f], v):
                bad.append("%s %s, want %s" % (f, got["percentiles"][f], v))
        hist = [(h["lower"], h["upper"], h["count"]) for h in got["histogram"]]
        if len(hist) != len(want["histogram"]) or any(g[2] != w[2] or not close(g[0], w[0]) or not close(g[1], w[1])
                                                      for g, w in zip(hist, want["histogram"])):
            bad.append("histogram %s, want %s" % (hist, want["histogram"]))
        if bad:
            self.fail.add(day, "%s %s stats of %s: %s" % (inst.name, b.id, win, "; ".join(bad)[:400]))

    def check_stats(self, day, di):
        """Every board's current window after a refresh of the views (API.md: the statistics are
        those of the last refresh), read past every cache (strong). While a refresh is held open
        (the fault), the views must not move: window_stats' refresh time stays where it was."""
        inst = self.writer()
        if self.held:
            at = self.pg.query("rankd", "SELECT refreshed_at FROM view_refreshes WHERE view = 'window_stats'")[0][0]
            if at != self.held_refreshed_at:
                self.fail.add(day, "window_stats was refreshed (%s) while a refresh held it (since %s)" % (
                    at, self.held_refreshed_at))
            return
        for attempt in range(100):
            r = inst.s.post(inst.url("/v1/admin/refresh"), headers={"Authorization": "Bearer " + ADMIN}, timeout=30)
            if r.status_code == 200 and "refreshed" in r.json():
                break
            time.sleep(0.05)  # the leader's own refresh under way
        else:
            self.fail.add(day, "POST /v1/admin/refresh never refreshed: %s %s" % (r.status_code, r.text[:200]))
            return
        for b in BOARDS:
            # The never-reset window's count of submissions loses only the logged ones of a
            # deleted player (the log keeps 2 months): not modelled.
            self.expect_stats(day, inst, b, window_start(b.reset, day).isoformat(), "&consistency=strong", key=WRITE,
                              submissions=b.reset != "none")

    def check_closed(self, day):
        """The windows the reset closed today: their export row by row and their statistics (from
        the archive: no refresh lag) against the oracle's final standings; and one current window's
        export (round robin), from one snapshot."""
        inst = self.writer()
        for b in BOARDS:
            if b.reset == "none" or window_start(b.reset, day) != day:
                continue
            prev = prev_window(b.reset, day)
            if prev < window_start(b.reset, self.created[b.id]):
                continue
            self.expect_export(day, inst, b, prev.isoformat())
            self.expect_stats(day, inst, b, prev.isoformat(), "&window=" + prev.isoformat())
        b = BOARDS[(day - EPOCH).days % len(BOARDS)]
        self.expect_export(day, inst, b, window_start(b.reset, day).isoformat())

    def expect_export(self, day, inst, b, win):
        r = inst.get("/v1/leaderboards/%s/export?window=%s&format=ndjson" % (b.id, win), key=ADMIN)
        self.count("exports_checked", 1)
        if r.status_code != 200:
            self.fail.add(day, "%s %s export of %s: %s %s" % (inst.name, b.id, win, r.status_code, r.text[:200]))
            return
        got = entries_of({"entries": [json.loads(line) for line in r.text.splitlines() if line.strip()]})
        want = self.oracle.ranked(b.id, win)
        if got != want:
            self.fail.add(day, "%s %s export of %s: %d rows, want %d; first differences %s" % (
                inst.name, b.id, win, len(got), len(want), [(g, w) for g, w in zip(got, want) if g != w][:3]))

    def check_archives(self, day):
        """Every archive row against the oracle's final ranks of its window."""
        rows = self.pg.query("rankd", "SELECT a.board_gen, a.win, a.rank, a.player_id, a.score, a.achieved_ms,"
                                      " a.metadata FROM archive a JOIN archived_windows w USING (board_gen, win)"
                                      " ORDER BY 1, 2, 3")
        by = {}
        for g, w, rank, p, s, at, meta in rows:
            by.setdefault((g, w), []).append((rank, p, s, at, json.loads(meta).get("n") if meta else None))
        for (g, w), got in by.items():
            bid = next(b.id for b in BOARDS if self.gen[b.id] == g)
            want = self.oracle.ranked(bid, w.isoformat())
            if got != want:
                self.fail.add(day, "archive of %s window %s differs from the oracle (%d rows, want %d)" % (
                    bid, w, len(got), len(want)))

    def check_upkeep(self, day, di, relaxed):
        # The day the leader is killed, another takes the lead at its next election tick (1 s)
        # and exports its count of log partitions once it has looked: waited for, not sampled
        # (a short day reached this check first; a lead that never comes still fails here).
        def counted_leader():
            lead = self.leader()
            return lead if lead and "rankd_log_partitions_ahead_months" in lead.metrics() else None
        lead = self.wait(counted_leader, "an instance to lead the upkeep and count the log's partitions", day)
        if not lead:
            return
        m = lead.metrics()
        ahead = m.get("rankd_log_partitions_ahead_months", -9)
        self.record("log partitions ahead (months)", di, ahead)
        if ahead < 2:
            self.fail.add(day, "the log has partitions for %s months ahead" % ahead)
        for job in ("partitions", "views", "archive", "retention", "recut", "redis_audit", "log_index",
                    "board_purge"):
            self.record("upkeep %s last run (ms)" % job, di,
                        1000 * m.get('rankd_upkeep_last_duration_seconds{step="%s"}' % job, 0))
        if not relaxed:
            self.retention_due = day  # checked before the next midnight: the leader has had its rounds

    def check_retention(self, day):
        """Retention done: no board keeps more closed windows than its retention, once the leader
        has had a round since the reset (checked at the end of the day, before the clock moves)."""
        def retained():
            counts = dict(self.pg.query("rankd", "SELECT board_gen, count(*) FROM archived_windows GROUP BY 1"))
            return all(counts.get(self.gen[b.id], 0) <= b.keep for b in BOARDS if b.keep > 0)
        self.wait(retained, "retention", day, timeout=10)

    def measure(self, day, di):
        for inst in self.alive_instances():
            self.record("RSS %s (MiB)" % inst.name, di, inst.rss_kb() / 1024.0)
        info = self.redis.client().info("memory")
        self.record("Redis used memory (MiB)", di, info["used_memory"] / 1048576.0)
        sizes = self.pg.query("rankd", "SELECT t, coalesce((SELECT sum(pg_total_relation_size(relid))"
                                       "   FROM pg_partition_tree(t::regclass) WHERE isleaf),"
                                       "   pg_total_relation_size(t::regclass))"
                                       " FROM unnest(%s::text[]) AS t", (FLAT_TABLES + ["archive"],))
        for t, size in sizes:
            self.record("table %s (KiB)" % t, di, float(size or 0) / 1024.0)

    def verify(self, day):
        """`rankd verify` clean. The day Redis restarted from an older snapshot it finds what the
        snapshot lacks, as it should, until each window is rebuilt (no instance reads one before
        its mark is checked: the day's reads checked that); from the next day on it must be clean."""
        r = self.writer().cli("verify")
        if r.returncode != 0 or "0 difference(s)" not in r.stdout:
            if day in self.redis_restored_days:
                self.count("verify_during_rebuild", 1)
                return
            self.fail.add(day, "rankd verify: %s %s" % (r.stdout[-500:], r.stderr[-300:]))

    # -- faults ---------------------------------------------------------------------------------
    def faults_today(self, di):
        name = FAULTS.get(di % 100)
        return getattr(self, name) if name else None

    def run_fault(self, day, fn):
        """`fn` injected while the traffic runs: the writers have had answers before it, and get
        answers again after it (the service recovered), then stop (every submission's fate
        known). The fault's window runs from just before its action to the moment its effect was
        shown (or the wait for it gave up). Then every submission the traffic sent is looked up in
        the log (the player's export): each one acknowledged is there once, each refused one is
        not."""
        t = Traffic(self, day)
        t.watch = ReadyWatch(self)
        t.w0 = t.w1 = None
        t.start()
        t.wait_acks(2 * WRITERS, 0, "before the fault")

        def inject():
            """Just before the fault's action: once a write and a read are in flight (the writers
            pause 10 ms between submissions), for up to 2 s."""
            deadline = time.time() + 2
            while time.time() < deadline and not (t.log.in_flight(kind="write") and t.log.in_flight(kind="read")):
                time.sleep(0.0005)
            t.w0 = time.time()
            t.inflight0 = t.log.in_flight()
        t.inject = inject
        try:
            desc, evidence = fn(day, t)
        except Exception as e:  # a fault that could not be made is a failed check, not the end of the run
            desc, evidence = fn.__name__, None
            self.fail.add(day, "%s raised %r" % (fn.__name__, e))
        t.w1 = time.time()
        if t.w0 is None:
            t.w0, t.inflight0 = t.w1, 0
        t.wait_acks(2 * WRITERS, t.w1, "after the fault")
        t.stop()
        t.watch.stop()
        if not evidence:
            self.fail.add(day, "the fault did not take effect: " + desc)
        touched = t.log.overlapping(t.w0, t.w1)
        writes = [e for e in touched if e[2] == "write"]
        reads = [e for e in touched if e[2] == "read"]
        lost, twice = self.check_log(day, t)
        acked = sum(1 for x in t.subs if x.state == "acked")
        row = {"day": day.isoformat(), "fault": desc, "inflight": t.inflight0, "window_s": t.w1 - t.w0,
               "writes": len(writes), "writes_failed": sum(1 for e in writes if not e[3]),
               "writes_retried": sum(1 for e in writes if e[4]), "reads": len(reads),
               "reads_failed": sum(1 for e in reads if not e[3]), "acked": acked, "lost": lost, "twice": twice,
               "evidence": evidence or "**none: did not take effect**",
               "failures": ", ".join("%s x%d" % kv for kv in sorted(collections.Counter(
                   e[5] for e in touched if not e[3]).items()))}
        self.fault_rows.append(row)
        self.count_subs(t.subs)
        self.count("traffic_submissions", acked)
        self.count("traffic_reads", t.reads)
        self.count("readbacks", t.readbacks)
        self.count("retried", sum(s.retried for s in t.senders))
        print("day %s: %s; %d requests in flight at it, %d writes (%d failed, %d sent again) and %d reads (%d failed) "
              "in its %.1f s (%s); %d submissions acknowledged, %d lost, %d logged twice; %s" % (
                  day, desc, t.inflight0, row["writes"], row["writes_failed"], row["writes_retried"], row["reads"],
                  row["reads_failed"], row["window_s"], row["failures"] or "none failed", acked, lost, twice, evidence),
              flush=True)

    def check_log(self, day, t):
        """Each submission the traffic got acknowledged is in the log once, as sent (board,
        window, score, improved as the oracle computed); none refused or unknown is there. The
        log (PostgreSQL's `submissions`) holds what the players' exports list; read at once."""
        board_of = {g: bid for bid, g in self.gen.items()}
        since = min((x.sent_ms for x in t.subs if x.sent_ms), default=self.sim_ms()) - 1000
        logged = {}
        for meta, gen, win, score, updated in self.pg.query(
                "rankd", "SELECT metadata, board_gen, win, score, updated FROM submissions"
                         " WHERE player_id = ANY(%s) AND received_at >= to_timestamp(%s / 1000.0)",
                (sorted({x.player for x in t.subs}), since)):
            n = json.loads(meta).get("n") if meta else None
            logged.setdefault(n, []).append({"board": board_of.get(gen), "window": win.isoformat(), "score": score,
                                             "improved": updated})
        lost = twice = 0
        for x in t.subs:
            rows = logged.get(x.n, [])
            if x.state != "acked":
                if rows:
                    self.fail.add(day, "submission %d (%s) was logged: %s" % (x.n, x.state, rows))
                continue
            if not rows:
                lost += 1
                self.fail.add(day, "submission %d (%s %s %d) was acknowledged and is not in the log" % (
                    x.n, x.board.id, x.player, x.score))
            elif len(rows) > 1:
                twice += 1
                self.fail.add(day, "submission %d (%s %s %d) is in the log %d times" % (
                    x.n, x.board.id, x.player, x.score, len(rows)))
            elif (rows[0]["board"], rows[0]["window"], rows[0]["score"], rows[0]["improved"]) != \
                    (x.board.id, x.win, x.score, x.updated):
                self.fail.add(day, "submission %d is logged as %s; sent %s" % (
                    x.n, rows[0], (x.board.id, x.win, x.score, x.updated)))
        return lost, twice

    @staticmethod
    def msum(inst, prefix, outcome=None):
        """The sum of an instance's series whose name starts with `prefix` (and whose labels
        hold `outcome`)."""
        if not inst.alive:
            return 0.0
        return sum(v for k, v in inst.metrics().items() if k.startswith(prefix) and (outcome is None or outcome in k))

    def f_views_fail(self, day, t):
        failed = lambda: sum(self.msum(i, 'rankd_upkeep_runs_total{step="views",outcome="failed"}') for i in self.inst)
        before = failed()
        t.inject()
        self.held = self.pg.connect()
        self.held.autocommit = False
        self.held.cursor().execute("REFRESH MATERIALIZED VIEW CONCURRENTLY window_stats")
        moved = self.poll(lambda: failed() > before, 15)
        # From now on no refresh of window_stats can finish (check_stats): where it stands.
        self.held_refreshed_at = self.pg.query(
            "rankd", "SELECT refreshed_at FROM view_refreshes WHERE view = 'window_stats'")[0][0]
        return ("a view's refresh held open: the views fail for a week",
                moved and "the views job failed (rankd_upkeep_runs_total{step=views,outcome=failed} %d -> %d)" % (
                    before, failed()))

    def f_views_again(self, day, t):
        ok = lambda: sum(self.msum(i, 'rankd_upkeep_runs_total{step="views",outcome="ok"}') for i in self.inst)
        at = lambda: self.pg.query("rankd", "SELECT refreshed_at FROM view_refreshes WHERE view = 'window_stats'")[0][0]
        before, before_at = ok(), at()
        t.inject()
        if self.held:
            self.held.rollback()
            self.held.close()
            self.held = None
        moved = self.poll(lambda: ok() > before and at() > before_at, 15)
        return ("the held refresh let go: the views refresh again",
                moved and "the views job succeeded (ok %d -> %d) and window_stats was refreshed (%s -> %s)" % (
                    before, ok(), before_at.strftime("%H:%M:%S"), at().strftime("%H:%M:%S")))

    def f_snapshot(self, day, t):
        path = os.path.join(self.redis.dir, "dump.rdb")
        t.inject()
        self.redis.client().save()  # the snapshot: today's writes follow it
        self.snapshot_keys = self.redis.client().dbsize()
        fresh = os.path.exists(path) and os.path.getmtime(path) >= t.w0 - 1
        return ("Redis snapshot taken (restored tomorrow)",
                fresh and "dump.rdb written at the fault (%d keys)" % self.snapshot_keys)

    def f_redis_restore(self, day, t):
        c = self.redis.client()
        run_id, keys = c.info("server")["run_id"], c.dbsize()
        seen = lambda: sum(self.msum(i, p) for i in self.inst for p in (
            "rankd_redis_windows_behind_total", "rankd_redis_windows_rebuilt_total",
            "rankd_redis_audit_windows_lost_total"))
        before = seen()
        t.inject()
        self.redis.stop()
        self.redis.start()
        self.redis_restored_days.add(day)
        c = self.redis.client()
        new_id, new_keys = c.info("server")["run_id"], c.dbsize()
        moved = self.poll(lambda: seen() > before, 20)
        ok = moved and new_id != run_id
        return ("Redis restarted from yesterday's snapshot",
                ok and "Redis came back under another run id with %d keys (%d before the restart); rankd found %d "
                       "window(s) behind, lost or rebuilt" % (new_keys, keys, seen() - before))

    def f_kill_leader(self, day, t):
        lead = self.leader()
        if not lead:
            return "the leader killed", None
        t.inject()
        lead.kill(signal.SIGKILL)
        other = self.poll(lambda: self.leader(), 20)
        return ("the leader (%s) killed" % lead.name,
                other and other is not lead and "%s exited by signal %d; %s leads (rankd_upkeep_leader 1)" % (
                    lead.name, -lead.proc.returncode, other.name))

    def f_start_again(self, day, t):
        dead = [i for i in self.inst if not i.alive]
        if not dead:
            return "an instance started again", None
        inst = dead[0]
        t.inject()
        inst.starting = True
        inst.start()
        now = self.sim_ms()
        follows = self.poll(lambda: parse_at(inst.post("/v1/leaderboards/%s/scores" % CLOCK_BOARD, {
            "player_id": inst.name, "score": int(time.time() * 1000)}).json()["achieved_at"]) >= now, 10)
        inst.starting = False
        return ("%s started again" % inst.name,
                follows and "%s (pid %d) answers and follows the clock; clients use it again" % (
                    inst.name, inst.proc.pid))

    def f_skew(self, day, t):
        lead = self.leader()
        if not lead:
            return "the leader's clock skewed", None
        refused = lambda: self.msum(lead, "rankd_upkeep_runs_total", 'outcome="refused"')
        before = refused()
        lead.skewed = True  # clients leave it first: a write it took now would land days ahead
        self.skewed = True
        self.poll(lambda: t.log.in_flight(lead.name) == 0, 10)
        t.inject()
        lead.clock.skew = 3 * DAY_MS
        lead.clock.write()
        moved = self.poll(lambda: refused() > before and lead.metrics().get("rankd_clock_skew_ms", 0) > DAY_MS, 20)
        return ("the leader's (%s) clock skewed 3 days ahead" % lead.name,
                moved and "its guarded jobs refused (%d -> %d); rankd_clock_skew_ms %.0f" % (
                    before, refused(), lead.metrics()["rankd_clock_skew_ms"]))

    def f_unskew(self, day, t):
        skewed = [i for i in self.inst if i.skewed]
        t.inject()
        for c in self.clocks:
            c.skew = 0
            c.write()
        agreed = all(self.poll(lambda: i.alive and abs(i.metrics().get("rankd_clock_skew_ms", 1e12)) < 5000, 20)
                     for i in skewed)
        for i in self.inst:
            i.skewed = False
        self.skewed = False
        return ("the clocks agree again",
                skewed and agreed and "rankd_clock_skew_ms under 5 s again on %s" % ", ".join(i.name for i in skewed))

    def f_primary_restart(self, day, t):
        started = lambda: self.pg.query("rankd", "SELECT pg_postmaster_start_time()")[0][0]
        errors = lambda: sum(self.msum(i, "rankd_pg_node_errors_total") for i in self.inst)
        before, errs = started(), errors()
        t.inject()
        self.pg.restart()
        self.listener_gap_days |= {day, day + dt.timedelta(days=1)}
        after = started()
        failed = sum(1 for e in t.log.overlapping(t.w0, time.time()) if not e[3])
        seen = sorted(s for s in t.watch.seen if s[1] == "postgres_primary")
        saw = failed or seen or errors() > errs
        return ("the primary restarted",
                after != before and saw and
                "pg_postmaster_start_time %s -> %s; rankd: node errors %d -> %d, /readyz %s, %d requests failed" % (
                    before.strftime("%H:%M:%S.%f")[:-3], after.strftime("%H:%M:%S.%f")[:-3], errs, errors(),
                    ", ".join("%s %s" % (s[0], s[2]) for s in seen) or "ok throughout", failed))

    # -- run ------------------------------------------------------------------------------------
    def run(self):
        today = dt.datetime.utcnow().date()
        start = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)  # next month's first
        t0 = time.time()
        self.setup(start)
        self.gen = dict(self.pg.query("rankd", "SELECT id, gen FROM boards"))
        relaxed_until = -1
        for di in range(self.args.days):
            day = start + dt.timedelta(days=di)
            if di > 0:
                self.timed("midnight", self.cross_midnight, day, di)
            self.set_clock(ms_of(day, 10), probe=True)
            fn = self.faults_today(di)
            if fn:
                self.timed("faults", self.run_fault, day, fn)
            if self.skewed or FAULTS.get(di % 100 - 1) == "f_unskew":
                relaxed_until = di + 1
            self.timed("submit", self.submit_day, day, di)
            # The checks only read: all at once (each in a thread; rankd, PostgreSQL and Redis
            # answer them side by side), then the upkeep's (it waits for a leader).
            checks = [("reads", self.check_reads, day), ("cursors", self.check_cursors, day, di),
                      ("rank of a score", self.check_rank_of_score, day, di), ("stats", self.check_stats, day, di),
                      ("measure", self.measure, day, di), ("verify", self.verify, day)]
            if not self.skewed and di > relaxed_until:
                checks.append(("closed windows", self.check_closed, day))
            if not self.skewed:
                checks.append(("archives", self.check_archives, day))
            self.timed("checks, all at once", self.at_once, checks)
            self.timed("upkeep", self.check_upkeep, day, di, di <= relaxed_until)
            if di % 10 == 0:
                print("day %d (%s): %.0f s so far, %d failures" % (di, day, time.time() - t0, len(self.fail.items)),
                      flush=True)
        if self.retention_due:
            self.check_retention(self.retention_due)
        self.elapsed = time.time() - t0
        self.end = start + dt.timedelta(days=self.args.days - 1)
        self.check_flat()

    def check_flat(self):
        """Runs of 60 days or more, after a 10-day warm-up: the later half's maximum of each
        instance's RSS, Redis memory and the idempotency keys' table at most 1.5 times the earlier
        half's (plus 1 MiB, or 64 KiB for a table). Runs of 150 days or more also: every size's mean over the
        last 30 days at most 10 % above its mean over the middle month."""
        self.flat = []
        n, warm = self.args.days, 10
        mid = warm + (n - warm) // 2
        # Shorter runs: the week a refresh is held open (the fault of day 20: vacuum held back,
        # the tables grow, then keep their size) would fall in the later half alone.
        for name, pts in sorted(self.series.items()) if n >= 60 else ():
            if not (name.startswith("RSS") or name.startswith("Redis") or name == "table idempotency_keys (KiB)"):
                continue
            early = [v for d, v in pts if warm <= d < mid]
            late = [v for d, v in pts if d >= mid]
            if not early or not late:
                continue
            a, b = max(early), max(late)
            ok = b <= a * 1.5 + (64 if name.startswith("table ") else 1)
            self.flat.append((name, "max, days %d-%d vs %d-%d" % (warm, mid - 1, mid, n - 1), a, b, ok))
            if not ok:
                self.fail.add(self.end, "%s grew: its maximum %.1f over days %d-%d, %.1f over days %d-%d (at most 1.5x)"
                              % (name, b, mid, n - 1, a, warm, mid - 1))
        if n < 150:
            return  # the other tables grow for as long as retention keeps more (the log's two months)
        for name, pts in sorted(self.series.items()):
            if not (name.startswith("table ") or name.startswith("RSS") or name.startswith("Redis")):
                continue
            if "archive" in name:
                continue  # one board keeps every window: its archive grows, as it should
            # The middle month against the last: the tables' free space settles within a few
            # months (vacuum keeps up with the rewrites), after which a leak would show.
            early = [v for d, v in pts if n // 2 <= d < n // 2 + 30]
            late = [v for d, v in pts if d >= n - 30]
            if not early or not late:
                continue
            a, b = sum(early) / len(early), sum(late) / len(late)
            ok = b <= a * 1.10 + (64 if name.startswith("table ") else 1)  # 64 KiB or 1 MiB of slack
            self.flat.append((name, "mean, days %d-%d vs %d-%d" % (n // 2, n // 2 + 29, n - 30, n - 1), a, b, ok))
            if not ok:
                self.fail.add(self.end, "%s grew from %.0f (the middle month) to %.0f (the last 30 days)" % (
                    name, a, b))

    def stop(self):
        for inst in self.inst:
            inst.kill(signal.SIGTERM)
        if self.held:
            self.held.close()
        self.redis.stop()
        self.pg.stop()

    # -- report ---------------------------------------------------------------------------------
    def report(self, out):
        os.makedirs(out, exist_ok=True)
        charts = []
        for idx, (name, pts) in enumerate(sorted(self.series.items())):
            fname = "chart-%02d.svg" % idx
            with open(os.path.join(out, fname), "w") as f:
                f.write(svg(name, pts))
            charts.append((name, fname))
        c = self.counts
        with open(os.path.join(out, "results.txt"), "w") as f:
            f.write("days=%d\nelapsed_s=%.0f\nfailures=%d\n" % (self.args.days, self.elapsed, len(self.fail.items)))
            for k in sorted(c):
                f.write("%s=%d\n" % (k, c[k]))
            f.write("reads_retried_503=%d\n" % sum(i.retried_503 for i in self.inst))
            for k, v in sorted(self.phase_s.items()):
                f.write("phase_s.%s=%.1f\n" % (re.sub(r"[^a-z0-9]+", "_", k), v))
            for i, row in enumerate(self.fault_rows):
                f.write("fault.%d=%s|%s|inflight=%d|writes=%d|writes_failed=%d|writes_retried=%d|reads=%d|"
                        "reads_failed=%d|acked=%d|lost=%d|twice=%d|took_effect=%s\n" % (
                            i, row["day"], row["fault"], row["inflight"], row["writes"], row["writes_failed"],
                            row["writes_retried"], row["reads"], row["reads_failed"], row["acked"], row["lost"],
                            row["twice"], "no" if row["evidence"].startswith("**") else "yes"))
            for name, pts in sorted(self.series.items()):
                vals = [v for _, v in pts]
                key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
                f.write("%s.first=%.1f\n%s.last=%.1f\n%s.max=%.1f\n" % (key, vals[0], key, vals[-1], key, max(vals)))
        L = ["# A season of rankd on the test clock (loadtest/season.sh)", "",
             "`%s`: %d simulated days in %.0f s (real). %d submissions acknowledged (%d of them by the traffic sent "
             "through the faults) and %d refused as the oracle expected (min/max_score), %d player deletions, %d reads "
             "checked against the oracle (and %d standings read back right after their answer, %d cursor pages, %d "
             "ranks of a score, %d statistics, %d exports), %d requests sent again after a failure." % (
                 self.args.command, self.args.days, self.elapsed, c["submissions"], c["traffic_submissions"],
                 c["refused"], c["deletions"], c["reads"], c["readbacks"], c["cursor_pages"], c["rank_reads"],
                 c["stats_checked"], c["exports_checked"], c["retried"]), "",
             "**%d failed check(s).**" % len(self.fail.items), ""]
        if self.fail.items:
            L += ["| day | what |", "|---|---|"] + ["| %s | %s |" % (d, w.replace("|", "/")) for d, w in
                                                    self.fail.items[:50]] + [""]
        L += ["## Faults, each injected under traffic", "",
              "Three writers and a reader run through each fault. *In flight*: requests under way when it was "
              "injected. *Writes*, *reads*: requests that overlapped its window (from its injection to the moment its "
              "effect was shown), with those that failed (503, a connection cut, a timeout) and the writes that were "
              "tries again of a submission (same Idempotency-Key). *Acknowledged*: submissions the traffic got "
              "answered; *lost*: of those, not in the log (or logged twice), which must be 0.", "",
              "| day | fault | window (s) | in flight | writes (failed, sent again) | reads (failed) | failed as "
              "| acknowledged | lost | took effect: evidence |", "|---|---|---:|---:|---:|---:|---|---:|---:|---|"]
        for r in self.fault_rows:
            L.append("| %s | %s | %.2f | %d | %d (%d, %d) | %d (%d) | %s | %d | %d | %s |" % (
                r["day"], r["fault"], r["window_s"], r["inflight"], r["writes"], r["writes_failed"],
                r["writes_retried"], r["reads"], r["reads_failed"], r["failures"] or "-", r["acked"],
                r["lost"] + r["twice"], r["evidence"].replace("|", "/")))
        L.append("")
        if self.flat:
            L += ["## Sizes flat", "", "| series | compared | earlier | later | flat |", "|---|---|---:|---:|---|"]
            L += ["| %s | %s | %.1f | %.1f | %s |" % (n, how, a, b, "yes" if ok else "**no**")
                  for n, how, a, b, ok in self.flat]
            L.append("")
        L += ["## Time per phase (s)", "",
              "The checks run at once: each has its own time, *checks, all at once* their wall time.", "",
              "| phase | s |", "|---|---:|"] + \
             ["| %s | %.1f |" % kv for kv in sorted(self.phase_s.items(), key=lambda kv: -kv[1])] + [""]
        L += ["## Per day", ""] + ["![%s](%s)" % (n, f) for n, f in charts] + [""]
        with open(os.path.join(out, "report.md"), "w") as f:
            f.write("\n".join(L))


def svg(title, pts, w=640, h=200):
    xs = [d for d, _ in pts]
    ys = [v for _, v in pts]
    x0, x1 = min(xs), max(xs) or 1
    y0, y1 = min(0, min(ys)), max(ys) if max(ys) > 0 else 1
    sx = lambda x: 50 + (x - x0) * (w - 70) / max(x1 - x0, 1)
    sy = lambda y: h - 30 - (y - y0) * (h - 60) / max(y1 - y0, 1e-9)
    path = " ".join("%.1f,%.1f" % (sx(x), sy(y)) for x, y in pts)
    return ("<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='11'>"
            "<rect width='100%%' height='100%%' fill='white'/>"
            "<text x='50' y='16' font-size='13'>%s</text>"
            "<line x1='50' y1='%d' x2='%d' y2='%d' stroke='#999'/><line x1='50' y1='30' x2='50' y2='%d' stroke='#999'/>"
            "<text x='4' y='%.0f'>%.4g</text><text x='4' y='%.0f'>%.4g</text>"
            "<text x='50' y='%d'>day %d</text><text x='%d' y='%d' text-anchor='end'>day %d</text>"
            "<polyline fill='none' stroke='#1f6fb4' stroke-width='1.5' points='%s'/></svg>\n") % (
        w, h, title.replace("<", "&lt;"), h - 30, w - 20, h - 30, h - 30, sy(y1) + 4, y1, sy(y0), y0, h - 12, x0,
        w - 20, h - 12, x1, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=400)
    ap.add_argument("--per-day", type=int, default=20, help="submissions per board per day")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=27)
    ap.add_argument("--command", default="bash loadtest/season.sh")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    season = Season(args)
    ok = False
    try:
        season.run()
        season.report(args.out)
        ok = not season.fail.items
        print("%d days in %.0f s: %d failed check(s); report %s" % (
            args.days, season.elapsed, len(season.fail.items), os.path.join(args.out, "report.md")), flush=True)
    finally:
        season.stop()
        if args.keep or not ok:
            print("kept " + season.root, flush=True)
        else:
            shutil.rmtree(season.root, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
