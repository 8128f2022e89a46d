"""One leader for the upkeep jobs: of two instances only one refreshes the views (the views'
refresh log names one session), /metrics says which one leads, and when the leader is killed
(SIGKILL: no goodbye to PostgreSQL) the other takes over within a few seconds."""
import signal
import time

from conftest import ADMIN_KEY, WRITE_KEY, create_board, submit_ok, metric, wait_for




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
        written = time.time()
        submit_ok(w, b, "p1", 42)
        wait_for(lambda: last_refresh()[0] > quiet, "a refresh after the write", 5)
        took = time.time() - written
        assert took < 3, "the views were refreshed %.1f s after the write" % took
        r = inst.client().get("/v1/leaderboards/%s/stats" % b)
        assert r.status == 200 and r.json()["players"] == 1 and r.json()["max"] == 42, r.describe()
    finally:
        adm.close()
        w.close()
