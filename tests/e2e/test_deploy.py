"""config/crontab.example, run as written: every job line's command executes under /bin/sh with
the file's own variables, PATH leading to the binary under test and RANKD_CONFIG to the test's
configuration, and does what its comment says (exit 0; the views refreshed, or skipped when
recent)."""
import os
import re
import subprocess

from conftest import MIGRATIONS_DIR, RANKD_BIN, REPO

CRONTAB = os.path.join(REPO, "config", "crontab.example")


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
