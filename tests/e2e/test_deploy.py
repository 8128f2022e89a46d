"""The deployment kit under deploy/, each file exercised as shipped (issue 16):

- rankd.cron: every job line's command executes under /bin/sh with the file's own variables,
  PATH leading to the binary under test and RANKD_CONFIG to the test's configuration, and does
  what its comment says (exit 0; the views refreshed, or skipped when recent);
- rankd.service: `systemd-analyze verify` passes without a warning, its sandbox scores OK in
  `systemd-analyze security --offline`, and its reload is the signal rankd reloads on;
- haproxy.cfg: HAProxy runs it in front of two instances; one is stopped under a read and write
  load and started again: no read fails, nothing acknowledged is lost, and the time until the
  instance is back in rotation is measured."""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ADMIN_KEY, MIGRATIONS_DIR, RANKD_BIN, REPO, WRITE_KEY, Client, ReadWriteLoad, create_board, \
    free_port, metric, sanitized, submit, wait_for, wait_pid

DEPLOY = os.path.join(REPO, "deploy")
REPORT = []

CRONTAB = os.path.join(DEPLOY, "rankd.cron")


def crontab_jobs():
    """(variables, [(schedule, user, command)]) of a cron.d file."""
    env, jobs = {}, []
    with open(CRONTAB) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([A-Z_]+)=(.*)$", line)
            if m:
                env[m.group(1)] = m.group(2)
                continue
            fields = line.split(None, 6)
            assert len(fields) == 7, "not a cron.d job line: %r" % line
            jobs.append((" ".join(fields[:5]), fields[5], fields[6]))
    return env, jobs


def run_job(command, env, config_path):
    full = dict(env)
    full["PATH"] = os.path.dirname(RANKD_BIN) + ":" + env.get("PATH", "/usr/bin:/bin")
    full["RANKD_CONFIG"] = config_path
    full["RANKD_MIGRATIONS_DIR"] = MIGRATIONS_DIR
    return subprocess.run([env.get("SHELL", "/bin/sh"), "-c", command], env=full, capture_output=True, text=True,
                          timeout=120)


def test_the_crontab_example_runs_as_written(db):
    env, jobs = crontab_jobs()
    assert len(jobs) == 2, jobs
    for schedule, user, _ in jobs:
        assert re.match(r"^(\S+ ){4}\S+$", schedule) and user == "rankd", (schedule, user)
    every_minute, nightly = jobs[0][2], jobs[1][2]

    db.query("DELETE FROM view_refreshes")
    r = run_job(every_minute, env, db.config_path)
    assert r.returncode == 0, r.stdout + r.stderr
    views = {v for (v,) in db.query("SELECT view FROM view_refreshes")}
    assert views == {"window_stats", "window_histograms", "daily_activity"}, views
    # Again at once: younger than --if-older-than, skipped, still exit 0.
    r = run_job(every_minute, env, db.config_path)
    assert r.returncode == 0 and "skipped" in r.stdout, r.stdout + r.stderr

    before = db.query("SELECT refreshed_at FROM view_refreshes WHERE view = 'daily_activity'")[0][0]
    r = run_job(nightly, env, db.config_path)
    assert r.returncode == 0, r.stdout + r.stderr
    after = dict(db.query("SELECT view, refreshed_at FROM view_refreshes"))
    assert after["daily_activity"] > before, "the nightly job did not refresh daily_activity"


def test_the_systemd_unit_verifies_and_is_sandboxed(tmp_path):
    unit = os.path.join(DEPLOY, "rankd.service")
    # A root holding what the unit names: the binary where it says, the units it orders after.
    root = tmp_path / "root"
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    shutil.copy(RANKD_BIN, root / "usr/local/bin/rankd")
    shutil.copy("/bin/kill", root / "bin/kill")
    for target in glob.glob("/usr/lib/systemd/system/*.target"):
        shutil.copy(target, root / "usr/lib/systemd/system")
    shutil.copy(unit, root / "etc/systemd/system/rankd.service")
    r = subprocess.run(["systemd-analyze", "verify", "--root=%s" % root, "--man=no",
                        "/etc/systemd/system/rankd.service"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r.stdout + r.stderr
    sec = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for rankd.service: ([0-9.]+) (\w+)", sec.stdout + sec.stderr)
    assert m and float(m.group(1)) <= 2.0, sec.stdout[-3000:] + sec.stderr
    REPORT.append("systemd-analyze security: exposure %s %s" % (m.group(1), m.group(2)))
    text = open(unit).read()
    for directive in ("User=rankd", "NoNewPrivileges=yes", "ProtectSystem=strict", "ExecReload=/bin/kill -HUP $MAINPID",
                      "KillSignal=SIGTERM", "ExecStart=/usr/local/bin/rankd serve -c /etc/rankd/rankd.yaml"):
        assert directive in text.splitlines(), directive
    # The commands it runs exist as written: `config check` (ExecStartPre) and `serve`.
    r = subprocess.run([RANKD_BIN, "config", "check", "-c", os.path.join(REPO, "config", "rankd.example.yaml")],
                       capture_output=True, text=True)
    assert "usage" not in r.stderr, r.stderr


class HAProxy:
    """deploy/haproxy.cfg as shipped, run by HAProxy in front of instances `a` and `b`."""

    def __init__(self, tmp_root, a, b):
        self.lb, self.stats = free_port(), free_port()
        env = dict(os.environ, RANKD_LB_BIND="127.0.0.1:%d" % self.lb, RANKD_1="127.0.0.1:%d" % a.port,
                   RANKD_2="127.0.0.1:%d" % b.port, RANKD_LB_STATS="127.0.0.1:%d" % self.stats)
        self.log = open(os.path.join(tmp_root, "haproxy-%d.log" % self.lb), "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", os.path.join(DEPLOY, "haproxy.cfg")], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def client(self, key=None, source=None):
        return Client("127.0.0.1", self.lb, key, 10, source=source)

    def server_status(self, name):
        """A server's status as HAProxy sees it (UP, DOWN, or a transition such as 'UP 1/2')."""
        c = Client("127.0.0.1", self.stats, None, 5)
        try:
            lines = c.get("/stats;csv").body.decode().splitlines()
        except OSError:  # not listening yet
            return None
        finally:
            c.close()
        head = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == "rankd" and row.get("svname") == name:
                return row["status"]
        return None

    def wait_ready(self):
        wait_for(lambda: self.server_status("rankd1") == "UP" and self.server_status("rankd2") == "UP",
                 "HAProxy to see both instances up")

    def stop(self):
        os.kill(self.proc.pid, signal.SIGTERM)
        if not wait_pid(self.proc, 10):
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


# deploy/haproxy.cfg sends a PROXY header: the instances behind it expect one.
BEHIND_HAPROXY = {"RANKD_PROXY_PROTOCOL": "true"}


def test_haproxy_in_front_of_two_instances(rankd_factory, db, tmp_root):
    a, b = rankd_factory(env=BEHIND_HAPROXY), rankd_factory(env=BEHIND_HAPROXY)
    hp = HAProxy(tmp_root, a, b)
    lb = hp.lb

    def state_of_a():
        return hp.server_status("rankd1")
    adm = Client("127.0.0.1", lb, ADMIN_KEY)
    load = None
    try:
        def lb_ready():
            try:
                return adm.get("/healthz").status == 200
            except OSError:
                return False
        wait_for(lb_ready, "HAProxy to answer")
        hp.wait_ready()
        board = create_board(adm)["id"]
        w = Client("127.0.0.1", lb, WRITE_KEY)
        for i in range(20):
            assert submit(w, board, "p%d" % i, 100 + i).status == 200
        w.close()
        load = ReadWriteLoad(lambda key: Client("127.0.0.1", lb, key, 10), board, readers=2, read_pause=0.01,
                             write_pause=0.02)
        wait_for(lambda: {e[1] for e in load.events if e[2] == 200} == {"read", "write"}, "a steady load")
        t_stop = time.time()
        a.stop(signal.SIGTERM)
        wait_for(lambda: state_of_a() == "DOWN", "HAProxy to take the stopped instance out of rotation")
        down_s = time.time() - t_stop
        a.start()
        t_up = time.time()
        wait_for(lambda: state_of_a() == "UP", "HAProxy to put the instance back in rotation", timeout=30)
        back_s = time.time() - t_up
        # And it serves the load's requests again.
        before = metric(a, "rankd_l1_misses_total") + metric(a, "rankd_l1_hits_total")
        wait_for(lambda: metric(a, "rankd_l1_misses_total") + metric(a, "rankd_l1_hits_total") > before + 5,
                 "the restarted instance serving the load")
    finally:
        if load:
            load.stop()
        adm.close()
        hp.stop()
    reads = [e for e in load.events if e[1] == "read"]
    writes = [e for e in load.events if e[1] == "write"]
    failed_reads = [e for e in reads if e[2] != 200]
    failed_writes = [e for e in writes if e[2] != 200]
    REPORT.append("haproxy, one of two instances stopped (SIGTERM) and started again: %d reads, %d failed %s; "
                  "%d writes, %d failed %s; out of rotation %.1f s after SIGTERM, back in %.1f s after it started" % (
                      len(reads), len(failed_reads), sorted({e[2] for e in failed_reads}), len(writes),
                      len(failed_writes), sorted({e[2] for e in failed_writes}), down_s, back_s))
    assert reads and not failed_reads, REPORT[-1]
    logged = {r[0] for r in db.query("SELECT s.player_id FROM submissions s JOIN boards b ON b.gen = s.board_gen"
                                     " WHERE b.id = %s", (board,))}
    assert load.acked and load.acked <= logged, "acknowledged but lost: %s" % sorted(load.acked - logged)[:10]
    assert all(e[2] in (200, 502, 503, 0) for e in writes), REPORT[-1]
    assert t_stop < t_up


def test_two_clients_behind_haproxy_are_limited_apart(rankd_factory, tmp_root):
    """Without the PROXY header both would be HAProxy's address, one bucket: one client over
    its limit would get the other 429 too."""
    limits = {"limits": {"reads_per_s": 1, "burst": 3}}
    a = rankd_factory(env=BEHIND_HAPROXY, extra_config=limits)
    b = rankd_factory(env=BEHIND_HAPROXY, extra_config=limits)
    hp = HAProxy(tmp_root, a, b)
    # Two clients of this machine with addresses of their own (127.0.0.0/8 is all loopback).
    one, two = hp.client(source="127.0.0.2"), hp.client(source="127.0.0.3")
    try:
        hp.wait_ready()
        # Round robin over two instances, each with its own bucket: 3 + 3 reads, then 429.
        got = []
        while not got or got[-1] != 429:
            got.append(one.get("/v1/leaderboards").status)
            assert len(got) <= 12, got
        assert got.count(200) >= 3, got
        # The other client, on both instances (round robin), has its whole burst.
        assert [two.get("/v1/leaderboards").status for _ in range(2)] == [200, 200]
        # Each instance's log names the client, not HAProxy's address.
        for inst in (a, b):
            wait_for(lambda: "from 127.0.0.2" in inst.stderr_text() and "from 127.0.0.3" in inst.stderr_text(),
                     "%s's access log to name both clients" % inst.name)
        REPORT.append("haproxy (send-proxy-v2), two clients with a burst of 3 on each of two instances: the first "
                      "limited after %d reads, the second still served" % (len(got) - 1))
    finally:
        one.close()
        two.close()
        hp.stop()


def series_named(text):
    """The series names an expression (or a whole file of them) refers to: rankd's and the
    standard process ones."""
    return set(re.findall(r"\b((?:rankd|process)_[a-z_]+)\b", text))


def exported_series(inst):
    """The series names a live instance's /metrics has, after some traffic of every kind (and
    the heap series, which a build with AddressSanitizer leaves out)."""
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(adm)["id"]
        assert submit(w, b, "p1", 5).status == 200
        for _ in range(2):
            adm.get("/v1/leaderboards/%s/entries" % b)
        adm.post("/v1/admin/refresh")
        # The views' ages are gathered by the prober once a second: there once it has looked.
        body = wait_for(lambda: (lambda t: t if "\nrankd_view_age_seconds{" in t else None)(
            adm.get("/metrics").body.decode()), "the views' ages in /metrics", 10)
    finally:
        adm.close()
        w.close()
    names = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line and not line.startswith("#")}
    if sanitized(inst):
        names |= {"rankd_heap_in_use_bytes", "rankd_heap_free_bytes"}
    return names


def test_prometheus_configuration_and_alert_rules(rankd_factory, tmp_path):
    prom = os.path.join(DEPLOY, "prometheus")
    # The scrape presents the admin key from a file promtool wants to see: a copy of the
    # configuration beside its rules, with the key file where the copy says.
    conf = open(os.path.join(prom, "prometheus.yml")).read()
    assert "credentials_file: /etc/prometheus/rankd-admin-key" in conf
    (tmp_path / "rankd-admin-key").write_text("an-admin-key-of-the-operators\n")
    (tmp_path / "prometheus.yml").write_text(conf.replace("/etc/prometheus/rankd-admin-key",
                                                          str(tmp_path / "rankd-admin-key")))
    shutil.copy(os.path.join(prom, "rankd.rules.yml"), str(tmp_path))
    for cwd, args in ((str(tmp_path), ["check", "config", "prometheus.yml"]), (prom, ["check", "rules", "rankd.rules.yml"]),
                      (prom, ["test", "rules", "rankd.rules.test.yml"])):
        r = subprocess.run(["promtool"] + args, cwd=cwd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "SUCCESS" in r.stdout, "promtool %s:\n%s%s" % (" ".join(args), r.stdout, r.stderr)
    rules = open(os.path.join(prom, "rankd.rules.yml")).read()
    for alert in ("RankdHighErrorRate", "RankdHighLatencyP99", "RankdRedisDown", "RankdReplicaLagging",
                  "RankdPrimaryUnreachable", "RankdStatisticsStale", "RankdCacheHitRatioCollapsed"):
        assert "alert: " + alert in rules, alert
    tests = open(os.path.join(prom, "rankd.rules.test.yml")).read()
    for alert in re.findall(r"alert: (\w+)", rules):
        assert "alertname: " + alert in tests, "no unit test for " + alert
    missing = series_named(rules) - exported_series(rankd_factory())
    assert not missing, "the rules name series /metrics does not export: %s" % sorted(missing)


def test_every_grafana_query_names_exported_series(rankd_factory):
    dash = json.load(open(os.path.join(DEPLOY, "grafana", "rankd.json")))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    named = series_named("\n".join(exprs))
    assert len(named) >= 15, named
    missing = named - exported_series(rankd_factory())
    assert not missing, "the dashboard names series /metrics does not export: %s" % sorted(missing)


@pytest.fixture(scope="module", autouse=True)
def deploy_report():
    """The figures the module's tests measured, printed once they have all run (they are each
    asserted by the test that measured it)."""
    yield
    if REPORT:
        sys.stderr.write("\n" + "\n".join(REPORT) + "\n")
