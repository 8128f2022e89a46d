"""One leader for the upkeep jobs: of two instances only one refreshes the views (the views'
refresh log names one session), /metrics says which one leads, and when the leader is killed
(SIGKILL: no goodbye to PostgreSQL) the other takes over within a few seconds."""
import signal
import time


def leads(inst):
    cl = inst.client()
    try:
        body = cl.get("/metrics").body.decode()
    finally:
        cl.close()
    for line in body.splitlines():
        if line.startswith("rankd_upkeep_leader "):
            return line.split()[1] == "1"
    raise AssertionError("/metrics has no rankd_upkeep_leader")


def refreshers_during(db, seconds, since):
    """The sessions named by the views' refresh log for refreshes after `since`, watched for `seconds`."""
    seen = set()
    deadline = time.time() + seconds
    while time.time() < deadline:
        for (who,) in db.query("SELECT refreshed_by FROM view_refreshes WHERE refreshed_at > to_timestamp(%s)",
                               (since,)):
            seen.add(who)
        time.sleep(0.05)
    return seen


def wait_for(pred, what, timeout):
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def test_one_instance_leads_the_upkeep_and_another_takes_over(rankd_factory, db):
    env = {"RANKD_REFRESH_INTERVAL_S": "1"}
    a = rankd_factory(env=env)
    b = rankd_factory(env=env)
    wait_for(lambda: leads(a) or leads(b), "a leader", 10)
    assert leads(a) != leads(b), "both instances lead"
    leader, follower = (a, b) if leads(a) else (b, a)

    since = time.time()
    seen = refreshers_during(db, 4.0, since)
    assert seen == {"rankd/%d" % leader.proc.pid}, "the views were refreshed by %r (leader %d, follower %d)" % (
        seen, leader.proc.pid, follower.proc.pid)

    killed_at = time.time()
    leader.stop(signal.SIGKILL)
    wait_for(lambda: leads(follower), "the other instance to take the lead", 10)
    took = time.time() - killed_at
    assert took < 5, "the lead moved only after %.1f s" % took
    wait_for(lambda: refreshers_during(db, 0.2, killed_at) == {"rankd/%d" % follower.proc.pid},
             "the new leader's view refresh", 10)
    cl = follower.client()
    try:
        assert cl.get("/healthz").status == 200
    finally:
        cl.close()
