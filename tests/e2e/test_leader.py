"""One leader for the upkeep jobs: of two instances only one refreshes the views (the views'
refresh log names one session), /metrics says which one leads, and when the leader is killed
(SIGKILL: no goodbye to PostgreSQL) the other takes over within a few seconds."""
import re
import signal
import threading
import time

from conftest import ADMIN_KEY, WRITE_KEY, create_board, metric, run_cli, submit_ok, wait_for




def leads(inst):
    return metric(inst, "rankd_upkeep_leader") == 1


def unchanged_rounds(inst):
    return metric(inst, "rankd_views_unchanged_rounds_total")


def refreshers_during(db, seconds, since, write=None):
    """The sessions named by the views' refresh log for refreshes after `since`, watched for
    `seconds`; write() is called now and then (the views are refreshed only after writes)."""
    seen = set()
    deadline = time.time() + seconds
    next_write = 0
    while time.time() < deadline:
        if write and time.time() >= next_write:
            write()
            next_write = time.time() + 0.3
        for (who,) in db.query("SELECT refreshed_by FROM view_refreshes WHERE refreshed_at > to_timestamp(%s)",
                               (since,)):
            seen.add(who)
        time.sleep(0.05)
    return seen




def test_one_instance_leads_the_upkeep_and_another_takes_over(rankd_factory, db):
    env = {"RANKD_REFRESH_INTERVAL_S": "1"}
    a = rankd_factory(env=env)
    b = rankd_factory(env=env)
    wait_for(lambda: leads(a) or leads(b), "a leader", 10)
    assert leads(a) != leads(b), "both instances lead"
    leader, follower = (a, b) if leads(a) else (b, a)
    adm = follower.client(ADMIN_KEY)
    board = create_board(adm)["id"]
    adm.close()
    scores = iter(range(1, 10 ** 6))

    def write(inst):
        def go():
            w = inst.client(WRITE_KEY)
            try:
                submit_ok(w, board, "p%d" % (next(scores) % 7), next(scores))
            finally:
                w.close()
        return go

    since = time.time()
    seen = refreshers_during(db, 4.0, since, write(follower))
    assert seen == {"rankd/%d" % leader.proc.pid}, "the views were refreshed by %r (leader %d, follower %d)" % (
        seen, leader.proc.pid, follower.proc.pid)

    killed_at = time.time()
    leader.stop(signal.SIGKILL)
    wait_for(lambda: leads(follower), "the other instance to take the lead", 10)
    took = time.time() - killed_at
    assert took < 5, "the lead moved only after %.1f s" % took
    wait_for(lambda: refreshers_during(db, 0.4, killed_at, write(follower)) == {"rankd/%d" % follower.proc.pid},
             "the new leader's view refresh", 10)
    cl = follower.client()
    try:
        assert cl.get("/healthz").status == 200
    finally:
        cl.close()


def test_views_are_refreshed_only_after_something_was_written(rankd_factory, db):
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"})
    wait_for(lambda: leads(inst), "the instance to lead", 10)
    me = "rankd/%d" % inst.proc.pid

    def last_refresh():
        rows = db.query("SELECT refreshed_at, refreshed_by FROM view_refreshes WHERE view = 'window_stats'")
        return rows[0] if rows else (None, None)

    wait_for(lambda: last_refresh()[1] == me, "the refresh on taking the lead", 10)
    quiet = last_refresh()[0]
    rounds = unchanged_rounds(inst)
    # Three upkeep rounds with nothing written (the leader says so) leave the views as they were.
    wait_for(lambda: unchanged_rounds(inst) >= rounds + 3, "three quiet upkeep rounds", 10)
    assert last_refresh()[0] == quiet, "the views were refreshed with nothing written"

    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(adm)["id"]
        submit_ok(w, b, "p1", 42)
        wait_for(lambda: last_refresh()[0] > quiet, "a refresh after the write", 10)
        r = inst.client().get("/v1/leaderboards/%s/stats" % b)
        assert r.status == 200 and r.json()["players"] == 1 and r.json()["max"] == 42, r.describe()
    finally:
        adm.close()
        w.close()


def test_a_refresh_may_take_longer_than_a_read(rankd_factory, db):
    """A view's refresh runs under refresh.timeout_s, not postgres.statement_timeout_ms: over ten
    million players it takes seconds (loadtest/run.sh --players 10000000 found `rankd refresh`
    cancelled by the 5 s read timeout). Here a lock on the standings holds the refresh for longer
    than the statement timeout; the refresh waits for it and succeeds. A refresh longer than
    refresh.timeout_s is cancelled, fails, and leaves the views as they were."""
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0"},
                         extra_config={"postgres": {"statement_timeout_ms": 300}})
    held_s = 1.5

    def refresh_while_locked(env=None):
        conn = db.connect()
        conn.autocommit = False
        try:
            conn.cursor().execute("LOCK TABLE standings IN ACCESS EXCLUSIVE MODE")
            out = {}
            t = threading.Thread(target=lambda: out.setdefault("r", run_cli(["refresh"], inst.config_path, env=env)))
            t.start()
            wait_for(lambda: db.lock_waiters("%REFRESH MATERIALIZED VIEW%") == 1, "the refresh to wait for the lock", 10)
            # Held until PostgreSQL says the waiting refresh has waited longer than held_s (past
            # the 300 ms statement timeout), or until it no longer waits (refresh.timeout_s 1:
            # cancelled).
            def held():
                waiting = db.query(
                    "SELECT coalesce(max(extract(epoch FROM now() - query_start)), -1) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query LIKE %s",
                    ("%REFRESH MATERIALIZED VIEW%",))[0][0]
                return waiting < 0 or waiting >= held_s
            wait_for(held, "the refresh to be held for %.1f s" % held_s, 30)
            conn.rollback()
            t.join(60)
            return out["r"]
        finally:
            conn.close()

    r = refresh_while_locked()
    assert r.returncode == 0, r.stdout + r.stderr
    ms = int(re.search(r"^window_stats: \d+ rows in (\d+) ms$", r.stdout, re.M).group(1))
    assert ms >= held_s * 1000, r.stdout   # it outlived the 300 ms statement timeout
    before = db.query("SELECT refreshed_at FROM view_refreshes WHERE view = 'window_stats'")[0][0]
    r = refresh_while_locked(env={"RANKD_REFRESH_TIMEOUT_S": "1"})
    assert r.returncode == 1 and "statement timeout" in r.stderr, r.stdout + r.stderr
    assert db.query("SELECT refreshed_at FROM view_refreshes WHERE view = 'window_stats'")[0][0] == before


def test_a_stop_cancels_the_view_refresh_in_progress(rankd_factory, db):
    """SIGTERM while the leader refreshes the views (held here by a lock on the standings) ends the
    refresh instead of waiting for it, up to refresh.timeout_s (600 s): systemd's stop timeout is
    60 s (deploy/rankd.service)."""
    conn = db.connect()
    conn.autocommit = False
    try:
        conn.cursor().execute("LOCK TABLE standings IN ACCESS EXCLUSIVE MODE")
        inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"})
        wait_for(lambda: db.lock_waiters("%REFRESH MATERIALIZED VIEW%") == 1, "the leader's refresh to wait", 15)
        status, took, killed = inst.stop(signal.SIGTERM, timeout=30)
        assert not killed and status == 0 and took < 10, (status, took, killed)
        assert db.lock_waiters("%REFRESH MATERIALIZED VIEW%") == 0
    finally:
        conn.rollback()
        conn.close()
