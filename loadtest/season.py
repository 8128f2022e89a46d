"""loadtest/season.py — a season of rankd on the test clock (issue 27); run by loadtest/season.sh.

One PostgreSQL, one Redis and two rankd instances (either may lead the upkeep), all started here
in a temporary folder on free loopback ports and stopped by PID. Both instances follow test clock
files, so a simulated day passes in about a second: each day the clock crosses midnight (resets,
archives), a steady stream of submissions and a player's deletion go in, and every read path of
every board is checked against an oracle kept here from what the server acknowledged:

- boards: daily, weekly, monthly and never-reset, `best` and `latest`, `desc` and `asc`, most with
  retention (retention.board_windows), one keeping every window; the log keeps 2 months;
- each day: the current window's page, players, around-me, a strong read (the primary), the
  previous window, the oldest window retention keeps, and the one past it (404), through both
  instances; archives exact (their rows against the oracle's final ranks); the log's partitions at
  least 2 months ahead; retention done (no board keeps more archives than it should); `rankd
  verify` clean; RSS of both instances, Redis memory, table sizes and each upkeep job's duration
  recorded;
- faults, each at its day (and again every 100 days): a view refresh made to fail for a simulated
  week, Redis restarted from an older snapshot, the leader killed (and started again two days
  later), the primary restarted, the leader's clock skewed three days ahead for two days.

At the end: report.md with a chart per series (SVG), results.txt, and exit 1 if any check
failed. Flatness (runs of 150 days or more): each size's mean over the last 30 days against its
mean over the middle month (the log's two months, every retention and the tables' free space long
steady), at most 10 % more; the archive is left out (one board keeps every window)."""

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

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

BOARDS = [  # id, reset, sort, operator, retention (closed windows kept; 0 = all)
    ("d7", "daily", "desc", "best", 7),
    ("d2", "daily", "desc", "latest", 2),
    ("w4", "weekly", "asc", "latest", 4),
    ("wk", "weekly", "desc", "best", 0),
    ("m3", "monthly", "desc", "best", 3),
    ("n0", "none", "desc", "latest", 0),
]
PLAYERS = 60
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


def parse_at(s):
    t = dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int((t - dt.datetime(1970, 1, 1)).total_seconds() * 1000 + 0.5)


class Failures:
    def __init__(self):
        self.items = []

    def add(self, day, what):
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
                    "shared_buffers = 128MB\n" % (self.port, self.dir))
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
        c = self.connect(db)
        try:
            with c.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()


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

    def set(self, target_ms):
        self.offset = int(target_ms - time.time() * 1000)
        self.write()


class Rankd:
    def __init__(self, name, root, binary, port, pg, redis_url, clock):
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.binary = binary
        self.port = port
        self.clock = clock
        self.config = os.path.join(self.dir, "rankd.yaml")
        retention = ", ".join('"%s=%d"' % (b[0], b[4]) for b in BOARDS if b[4] > 0)
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
        self.s = requests.Session()
        self.retried_503 = 0
        self.skewed = False  # its host clock wrong: no client traffic (it would write the wrong windows)

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

class Oracle:
    """Per board and window: {player: (score, achieved_ms)} from acknowledged answers."""

    def __init__(self):
        self.w = {b[0]: {} for b in BOARDS}

    def set(self, board, window, player, score, at_ms):
        self.w[board].setdefault(window, {})[player] = (score, at_ms)

    def delete(self, board, player):
        for standings in self.w[board].values():
            standings.pop(player, None)

    def ranked(self, board, window):
        sort = next(b[2] for b in BOARDS if b[0] == board)
        rows = self.w[board].get(window, {})
        key = (lambda kv: (-kv[1][0] if sort == "desc" else kv[1][0], kv[1][1], kv[0].encode()))
        return [(i + 1, p, s, at) for i, (p, (s, at)) in enumerate(sorted(rows.items(), key=key))]


def entries_of(body):
    return [(e["rank"], e["player_id"], e["score"], parse_at(e["achieved_at"])) for e in body["entries"]]


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
        self.counts = {"submissions": 0, "deletions": 0, "reads": 0, "retried": 0, "late_notices": 0, "faults": []}
        self.listener_gap_days = set()
        self.redis_restored_days = set()
        self.counts["verify_during_rebuild"] = 0
        self.created = {}
        self.held = None  # the connection holding a view's refresh lock (a fault)

    # -- plumbing -------------------------------------------------------------------------------
    def set_clock(self, ms):
        """Move both test clocks, and wait until every instance clients use has seen it: its
        daily board's current window is the day of `ms` (each polls its file every 10 ms)."""
        for c in self.clocks:
            c.set(ms)
        day = (EPOCH + dt.timedelta(days=ms // DAY_MS)).isoformat()
        if not getattr(self, "created", None):
            return  # no board yet
        for inst in self.alive_instances():
            self.wait(lambda: inst.get("/v1/leaderboards/d7").json()["current_window"] == day,
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
        deadline = time.time() + timeout
        while True:
            try:
                v = pred()
            except (requests.RequestException, psycopg2.Error, redis_mod.exceptions.RedisError):
                v = None
            if v:
                return v
            if time.time() > deadline:
                self.fail.add(day, "timed out waiting for " + what)
                return None
            time.sleep(0.02)

    def record(self, name, day_index, value):
        self.series.setdefault(name, []).append((day_index, value))

    def alive_instances(self):
        """The instances clients use: running, and with a right clock."""
        return [i for i in self.inst if i.alive and not i.skewed]

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
        for bid, reset, sort, op, _ in BOARDS:
            r = self.inst[0].post("/v1/leaderboards", {"id": bid, "title": bid, "sort": sort, "operator": op,
                                                       "reset": reset}, key=ADMIN)
            if r.status_code != 201:
                raise RuntimeError("create %s: %s %s" % (bid, r.status_code, r.text))
            self.created[bid] = start
        self.wait(lambda: self.leader(), "a leader", "setup")

    # -- a day ----------------------------------------------------------------------------------
    def cross_midnight(self, day, i):
        """The clock to just after this day's midnight, then past the archive grace: wait for
        the archives of the windows the reset closed."""
        lead = self.leader()
        rolled = lead.metrics().get("rankd_rollovers_total", 0) if lead else 0
        self.set_clock(ms_of(day, 0, 0, 1))
        closing = [b for b in BOARDS if b[1] != "none" and window_start(b[1], day) == day]
        if closing and lead and not self.skewed:
            self.wait(lambda: lead.metrics().get("rankd_rollovers_total", 0) >= rolled + len(closing),
                      "the rollover", day)
        self.set_clock(ms_of(day, 0, 0, GRACE_MS // 1000 + 2))
        if closing and not self.skewed:
            want = [(self.gen[b[0]], prev_window(b[1], day)) for b in closing
                    if prev_window(b[1], day) >= window_start(b[1], self.created[b[0]])]

            def archived():
                got = set(self.pg.query("rankd", "SELECT board_gen, win FROM archived_windows"))
                return all((g, w) in got or self.past_retention(g, w, day) for g, w in want)
            self.wait(archived, "the archives of the windows the reset closed", day)

    def past_retention(self, gen, win, day):
        b = next(b for b in BOARDS if self.gen[b[0]] == gen)
        keep = b[4]
        if keep == 0:
            return False
        start = window_start(b[1], day)
        kept = start
        for _ in range(keep):
            kept = prev_window(b[1], kept)
        return win < kept

    def submit_day(self, day, i):
        self.set_clock(ms_of(day, 10))
        for bid, reset, _, _, _ in BOARDS:
            win = window_start(reset, day).isoformat()
            items = [{"board": bid, "player_id": "p%02d" % self.rng.randrange(PLAYERS),
                      "score": self.rng.randrange(1, 1000)} for _ in range(self.args.per_day)]
            if self.rng.random() < 0.5:
                results = self.batch(day, items)
            else:
                results = [self.single(day, it) for it in items]
            for it, res in zip(items, results):
                if res is None:
                    continue
                if res.get("window") != win:
                    self.fail.add(day, "a submission to %s landed in %s, not %s" % (bid, res.get("window"), win))
                self.oracle.set(bid, win, res["player_id"], res["score"], parse_at(res["achieved_at"]))
                self.counts["submissions"] += 1
        # One player's deletion a day (their standings, archives and log go).
        bid = self.rng.choice(BOARDS)[0]
        player = "p%02d" % self.rng.randrange(PLAYERS)
        for attempt in range(60):
            r = self.writer().delete("/v1/leaderboards/%s/players/%s" % (bid, player))
            if r.status_code in (204, 404):
                break
            time.sleep(0.1)
        else:
            self.fail.add(day, "a player's deletion never succeeded: %s" % r.text[:200])
        self.oracle.delete(bid, player)
        self.counts["deletions"] += 1

    def writer(self):
        return self.alive_instances()[0]

    def batch(self, day, items):
        for attempt in range(100):
            try:
                r = self.writer().post("/v1/scores:batch", {"scores": items})
            except requests.RequestException:
                r = None
            if r is not None and r.status_code == 200 and all("error" not in x for x in r.json()["results"]):
                return r.json()["results"]
            self.counts["retried"] += 1
            time.sleep(0.1)  # the primary restarting: retried (best and latest make a retry harmless)
        self.fail.add(day, "a batch was never acknowledged")
        return [None] * len(items)

    def single(self, day, it):
        for attempt in range(100):
            try:
                r = self.writer().post("/v1/leaderboards/%s/scores" % it["board"],
                                       {"player_id": it["player_id"], "score": it["score"]})
            except requests.RequestException:
                r = None
            if r is not None and r.status_code == 200:
                return r.json()
            self.counts["retried"] += 1
            time.sleep(0.1)
        self.fail.add(day, "a submission was never acknowledged")
        return None

    # -- checks ---------------------------------------------------------------------------------
    def check_reads(self, day):
        for inst in self.alive_instances():
            for bid, reset, _, _, keep in BOARDS:
                cur = window_start(reset, day)
                want = self.oracle.ranked(bid, cur.isoformat())
                self.expect_page(day, inst, bid, "", want, "current")
                if inst is self.inst[0]:
                    self.expect_page(day, inst, bid, "&consistency=strong", want, "current, strong", key=WRITE)
                for rank, p, s, at in self.rng.sample(want, min(3, len(want))):
                    r = inst.get("/v1/leaderboards/%s/players/%s" % (bid, p))
                    self.counts["reads"] += 1
                    if r.status_code == 200 and (r.json()["rank"], r.json()["score"]) != (rank, s) and \
                            self.late_notice_allowed(inst, day):
                        time.sleep(1.1)
                        r = inst.get("/v1/leaderboards/%s/players/%s" % (bid, p))
                        self.counts["late_notices"] += 1
                    if r.status_code != 200 or (r.json()["rank"], r.json()["score"]) != (rank, s):
                        self.fail.add(day, "%s %s player %s: %s %s, want rank %d score %d" % (
                            inst.name, bid, p, r.status_code, r.text[:200], rank, s))
                if want:
                    rank, p, s, at = self.rng.choice(want)
                    r = inst.get("/v1/leaderboards/%s/players/%s/around?before=2&after=2" % (bid, p))
                    self.counts["reads"] += 1
                    exp = want[max(rank - 3, 0):rank + 2]
                    if r.status_code == 200 and entries_of(r.json()) != exp and self.late_notice_allowed(inst, day):
                        time.sleep(1.1)
                        r = inst.get("/v1/leaderboards/%s/players/%s/around?before=2&after=2" % (bid, p))
                        self.counts["late_notices"] += 1
                    if r.status_code != 200 or entries_of(r.json()) != exp:
                        self.fail.add(day, "%s %s around %s: %s" % (inst.name, bid, p, r.text[:300]))
                if reset == "none":
                    continue
                prev = prev_window(reset, cur)
                if prev >= window_start(reset, self.created[bid]):
                    self.expect_page(day, inst, bid, "&window=previous", self.oracle.ranked(bid, prev.isoformat()),
                                     "previous")
                if keep:
                    oldest = cur
                    for _ in range(keep):
                        oldest = prev_window(reset, oldest)
                    if oldest >= window_start(reset, self.created[bid]):
                        self.expect_page(day, inst, bid, "&window=" + oldest.isoformat(),
                                         self.oracle.ranked(bid, oldest.isoformat()), "the oldest kept")
                        gone = prev_window(reset, oldest)
                        if gone >= window_start(reset, self.created[bid]):
                            r = inst.get("/v1/leaderboards/%s/entries?window=%s" % (bid, gone.isoformat()))
                            if r.status_code != 404:
                                self.fail.add(day, "%s %s window %s past retention answered %s" % (
                                    inst.name, bid, gone, r.status_code))

    def late_notice_allowed(self, inst, day):
        """Whether `inst` may answer from its cache what another instance's write changed, for up
        to the cache's max-age (API.md: the invalidation arrives "never later than the cache
        max-age"): only while its notices may have been lost, the day the primary restarted and
        the next (its listener reconnects). Any other read must be exact at once."""
        return inst is not self.writer() and day in self.listener_gap_days

    def expect_page(self, day, inst, bid, query, want, what, key=None):
        r = inst.get("/v1/leaderboards/%s/entries?limit=1000%s" % (bid, query), key=key)
        self.counts["reads"] += 1
        if r.status_code == 200 and entries_of(r.json()) != want and self.late_notice_allowed(inst, day):
            time.sleep(1.1)  # past the cache's max-age (1 s)
            r = inst.get("/v1/leaderboards/%s/entries?limit=1000%s" % (bid, query), key=key)
            self.counts["late_notices"] += 1
        if r.status_code != 200:
            self.fail.add(day, "%s %s %s: %s %s" % (inst.name, bid, what, r.status_code, r.text[:200]))
            return
        got = entries_of(r.json())
        if got != want or r.json()["total"] != len(want):
            diff = [(g, w) for g, w in zip(got, want) if g != w][:3]
            self.fail.add(day, "%s %s %s window: %d entries, want %d; first differences %s" % (
                inst.name, bid, what, len(got), len(want), diff))

    def check_archives(self, day):
        """Every archive row against the oracle's final ranks of its window."""
        rows = self.pg.query("rankd", "SELECT a.board_gen, a.win, a.rank, a.player_id, a.score, a.achieved_ms"
                                      " FROM archive a JOIN archived_windows w USING (board_gen, win)"
                                      " ORDER BY 1, 2, 3")
        by = {}
        for g, w, rank, p, s, at in rows:
            by.setdefault((g, w), []).append((rank, p, s, at))
        for (g, w), got in by.items():
            bid = next(b[0] for b in BOARDS if self.gen[b[0]] == g)
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
        if relaxed:
            return
        # Retention done: no board keeps more closed windows than its retention, once the leader
        # has had a round since the reset.
        def retained():
            counts = dict(self.pg.query("rankd", "SELECT board_gen, count(*) FROM archived_windows GROUP BY 1"))
            return all(counts.get(self.gen[b[0]], 0) <= b[4] for b in BOARDS if b[4] > 0)
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
                self.counts["verify_during_rebuild"] += 1
                return
            self.fail.add(day, "rankd verify: %s %s" % (r.stdout[-500:], r.stderr[-300:]))

    # -- faults ---------------------------------------------------------------------------------
    skewed = False

    def faults(self, day, di):
        k = di % 100
        did = None
        if k == 20:  # views fail for a week: a refresh left open holds window_stats
            self.held = self.pg.connect()
            self.held.autocommit = False
            self.held.cursor().execute("REFRESH MATERIALIZED VIEW CONCURRENTLY window_stats")
            did = "a view's refresh made to fail for a week"
        elif k == 27 and self.held:
            self.held.rollback()
            self.held.close()
            self.held = None
            did = "the views refresh again"
        elif k == 34:
            self.redis.client().save()  # the snapshot: today's writes follow it
            did = "Redis snapshot taken (restored tomorrow)"
        elif k == 35:
            self.redis.stop()
            self.redis.start()
            self.redis_restored_days.add(day)
            did = "Redis restarted from yesterday's snapshot"
        elif k == 45:
            lead = self.leader()
            if lead:
                lead.kill(signal.SIGKILL)
                did = "the leader (%s) killed" % lead.name
        elif k == 47:
            for inst in self.inst:
                if not inst.alive:
                    inst.start()
                    did = "%s started again" % inst.name
        elif k == 50:
            lead = self.leader()
            if lead:
                lead.clock.skew = 3 * DAY_MS
                lead.clock.write()
                lead.skewed = True
                self.skewed = True
                did = "the leader's (%s) clock skewed 3 days ahead" % lead.name
        elif k == 52:
            for c in self.clocks:
                c.skew = 0
                c.write()
            for inst in self.inst:
                inst.skewed = False
            self.skewed = False
            did = "the clocks agree again"
        elif k == 55:
            self.pg.restart()
            self.listener_gap_days |= {day, day + dt.timedelta(days=1)}
            did = "the primary restarted"
        if did:
            self.counts["faults"].append((day.isoformat(), did))
            print("day %s: %s" % (day, did), flush=True)

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
                self.cross_midnight(day, di)
            self.faults(day, di)
            if self.skewed or (di % 100) in (53,):
                relaxed_until = di + 1
            self.submit_day(day, di)
            self.check_reads(day)
            if not self.skewed:
                self.check_archives(day)
            self.check_upkeep(day, di, di <= relaxed_until)
            self.measure(day, di)
            self.verify(day)
            if di % 10 == 0:
                print("day %d (%s): %.0f s so far, %d failures" % (di, day, time.time() - t0, len(self.fail.items)),
                      flush=True)
        self.elapsed = time.time() - t0
        self.end = start + dt.timedelta(days=self.args.days - 1)
        self.check_flat()

    def check_flat(self):
        self.flat = []
        n = self.args.days
        if n < 150:
            return  # the smoke run: too short for retention to be steady
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
            self.flat.append((name, a, b, ok))
            if not ok:
                self.fail.add(self.end, "%s grew from %.0f (the middle month) to %.0f (the last 30 days)" % (name, a, b))

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
        with open(os.path.join(out, "results.txt"), "w") as f:
            f.write("days=%d\nelapsed_s=%.0f\nfailures=%d\nsubmissions=%d\ndeletions=%d\nreads=%d\nretried=%d\n"
                    "reads_retried_503=%d\nlate_notices=%d\nverify_during_rebuild=%d\n" % (
                        self.args.days, self.elapsed, len(self.fail.items), self.counts["submissions"],
                        self.counts["deletions"], self.counts["reads"], self.counts["retried"],
                        sum(i.retried_503 for i in self.inst), self.counts["late_notices"],
                        self.counts["verify_during_rebuild"]))
            for name, pts in sorted(self.series.items()):
                vals = [v for _, v in pts]
                key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
                f.write("%s.first=%.1f\n%s.last=%.1f\n%s.max=%.1f\n" % (key, vals[0], key, vals[-1], key, max(vals)))
        L = ["# A season of rankd on the test clock (loadtest/season.sh)", "",
             "`%s`: %d simulated days in %.0f s (real), %d submissions, %d player deletions, %d reads "
             "checked against the oracle, %d writes retried (the primary restarting)." % (
                 self.args.command, self.args.days, self.elapsed, self.counts["submissions"],
                 self.counts["deletions"], self.counts["reads"], self.counts["retried"]), "",
             "**%d failed check(s).**" % len(self.fail.items), ""]
        if self.fail.items:
            L += ["| day | what |", "|---|---|"] + ["| %s | %s |" % (d, w.replace("|", "/")) for d, w in
                                                    self.fail.items[:50]] + [""]
        L += ["## Faults", "", "| day | fault |", "|---|---|"] + ["| %s | %s |" % f for f in self.counts["faults"]] + [""]
        if self.flat:
            L += ["## Sizes once retention is steady", "",
                  "| series | mean, the middle month | mean, last 30 days | flat |", "|---|---:|---:|---|"]
            L += ["| %s | %.1f | %.1f | %s |" % (n, a, b, "yes" if ok else "**no**") for n, a, b, ok in self.flat]
            L.append("")
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
