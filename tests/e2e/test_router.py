"""The read-replica router against real streaming replicas (pg_basebackup -R) of a primary of
this module's own: reads land on replicas, proved by the replicas' own pg_stat_statements;
the policies spread as they say; a replica that has not replayed this instance's last write
of a board is not asked; a replica or the primary stopped costs at most a handful of
requests; a promoted replica takes the writes. The tests run in file order: the last one
stops the primary for good."""
import itertools
import threading
import time

import psycopg2
import pytest

from conftest import (ADMIN_KEY, WRITE_KEY, PgServer, RankdFactory, create_board, migrated_database, run_cli,
                      readyz, submit, submit_ok, unique, wait_for)

HEALTH_MS = 250
_n = itertools.count(1)


class Cluster:
    def __init__(self, primary, replicas, db):
        self.primary = primary
        self.replicas = replicas
        self.db = db

    def dsn(self, server):
        return server.dsn(self.db.name)

    def replica_dsns(self, idx=None):
        reps = self.replicas if idx is None else [self.replicas[i] for i in idx]
        return ";".join(self.dsn(r) for r in reps)

    def query(self, server, sql, args=None):
        c = psycopg2.connect(self.dsn(server), connect_timeout=3)
        c.autocommit = True
        try:
            with c.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()

    def reads(self, server):
        """Ranked reads this server ran (pg_stat_statements of its own): statements on standings
        that are not the writer's."""
        return self.query(server,
                          "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s"
                          " JOIN pg_database d ON d.oid = s.dbid AND d.datname = current_database()"
                          " WHERE s.query LIKE '%%FROM standings%%' AND s.query NOT LIKE '%%INSERT%%'"
                          " AND s.query NOT LIKE '%%FOR UPDATE%%' AND s.query NOT LIKE '%%DELETE%%'"
                          " AND s.query NOT LIKE '%%pg_stat_statements%%'")[0][0]

    def wait_caught_up(self, replicas=None, timeout=20):
        lsn = self.query(self.primary, "SELECT pg_current_wal_lsn()")[0][0]
        for r in replicas if replicas is not None else self.replicas:
            wait_for(lambda: self.query(r, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0] is True,
                     "the replica to catch up", timeout)


@pytest.fixture(scope="module")
def cluster(tmp_root):
    n = next(_n)
    stats = {"shared_preload_libraries": "pg_stat_statements"}
    primary = PgServer(tmp_root, "router%d-primary" % n, settings=stats)
    primary.start()
    db = migrated_database(primary, "rankd_router%d" % n, tmp_root)
    db.query("CREATE EXTENSION pg_stat_statements")
    replicas = []
    for i in range(2):
        rep = PgServer(tmp_root, "router%d-replica%d" % (n, i + 1), primary=primary, settings=stats)
        rep.start()
        replicas.append(rep)
    cl = Cluster(primary, replicas, db)
    cl.wait_caught_up()
    yield cl
    db.close()
    for s in replicas + [primary]:
        s.stop()


@pytest.fixture
def factory(tmp_root, cluster, redis_db):
    """rankd_factory's, on the cluster's database."""
    with RankdFactory.opened(tmp_root, cluster.db, redis_db[0]) as f:
        yield f


def router_env(cluster, replicas=None, **extra):
    env = {"RANKD_CACHE_BYTES": "0", "RANKD_POSTGRES_REPLICAS": cluster.replica_dsns(replicas),
           "RANKD_POSTGRES_HEALTH_INTERVAL_MS": str(HEALTH_MS)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_nodes(inst, want, timeout=15):
    """Wait until /readyz shows each node named in `want` in the state given."""
    seen = {}

    def reached():
        _, seen["body"] = readyz(inst)
        states = {n["name"]: n["state"] for n in seen["body"].get("nodes", [])}
        return all(states.get(k) == v for k, v in want.items()) and seen["body"]
    return wait_for(reached, lambda: "nodes to reach %r: %r" % (want, seen.get("body")), timeout, every=0.05)


def all_ok(n_replicas):
    want = {"postgres_primary": "ok"}
    want.update({"postgres_replica_%d" % (i + 1): "ok" for i in range(n_replicas)})
    return want


def seeded_board(inst, players=20):
    adm = inst.client(ADMIN_KEY)
    b = create_board(adm, unique("rt"))["id"]
    adm.close()
    w = inst.client(WRITE_KEY)
    for i in range(players):
        submit_ok(w, b, "p%d" % i, 1000 + i)
    w.close()
    return b


def read_many(inst, board, n, players=20):
    cl = inst.client()
    try:
        for i in range(n):
            r = cl.get("/v1/leaderboards/%s/players/p%d" % (board, i % players))
            assert r.status == 200, r.describe()
    finally:
        cl.close()


def read_deltas(cluster, fn):
    nodes = [cluster.primary] + cluster.replicas
    before = [cluster.reads(s) for s in nodes]
    fn()
    return [cluster.reads(s) - b for s, b in zip(nodes, before)]


def test_weighted_reads_land_on_the_replicas_three_to_one(cluster, factory):
    inst = factory(redis=False, env=router_env(cluster, RANKD_POSTGRES_REPLICA_POLICY="weighted",
                                               RANKD_POSTGRES_REPLICA_WEIGHTS="3,1"))
    board = seeded_board(inst)
    cluster.wait_caught_up()
    wait_nodes(inst, all_ok(2))
    d = read_deltas(cluster, lambda: read_many(inst, board, 2000))
    assert d[0] == 0, "the primary ran %d reads while both replicas were healthy: %r" % (d[0], d)
    assert d[1] + d[2] >= 2000, d
    assert 2.7 <= d[1] / d[2] <= 3.3, "weighted 3:1 spread %r" % d


@pytest.mark.parametrize("policy", ["round_robin", "least_connections"])
def test_round_robin_and_least_connections_spread_evenly(cluster, factory, policy):
    inst = factory(redis=False, env=router_env(cluster, RANKD_POSTGRES_REPLICA_POLICY=policy))
    board = seeded_board(inst)
    cluster.wait_caught_up()
    wait_nodes(inst, all_ok(2))

    def load():
        ts = [threading.Thread(target=read_many, args=(inst, board, 250)) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    d = read_deltas(cluster, load)
    assert d[0] == 0, d
    share = d[1] / (d[1] + d[2])
    assert 0.4 <= share <= 0.6, "%s spread %r" % (policy, d)


def player_score(inst, board, player, **kw):
    cl = inst.client()
    try:
        r = cl.get("/v1/leaderboards/%s/players/%s" % (board, player), **kw)
        assert r.status == 200, r.describe()
        return r.json()["score"]
    finally:
        cl.close()


def test_reads_wait_for_a_replica_that_has_replayed_the_write(cluster, factory):
    rep = cluster.replicas[0]
    env = router_env(cluster, [0], RANKD_POSTGRES_MAX_LAG_MS=600000)
    a = factory(redis=False, env=env)
    env_b = dict(env)
    del env_b["RANKD_CACHE_BYTES"]  # the second instance keeps its response cache
    b = factory(redis=False, env=env_b)
    board = seeded_board(a)
    cluster.wait_caught_up([rep])
    wait_nodes(a, all_ok(1))
    wait_nodes(b, all_ok(1))
    assert player_score(a, board, "p1") == 1001
    assert player_score(b, board, "p1") == 1001
    cluster.query(rep, "SELECT pg_wal_replay_pause()")
    try:
        w = a.client(WRITE_KEY)
        submit_ok(w, board, "p1", 5000)
        w.close()
        # The writing instance: its next read shows the write (the primary answers it).
        d = read_deltas(cluster, lambda: player_score(a, board, "p1") == 5000 or pytest.fail("a lost its own write"))
        assert d[0] >= 1 and d[1] == 0, "the read of the written board went to the paused replica: %r" % (d,)
        # The other instance: once the notification arrived, it never reads the paused replica.
        wait_for(lambda: player_score(b, board, "p1") == 5000,
                 "the second instance to stop reading the replica that had not replayed the write", 5)
    finally:
        cluster.query(rep, "SELECT pg_wal_replay_resume()")
    cluster.wait_caught_up([rep])
    # Once a probe has seen the replay, reads go back to the replica (none to the primary).
    back = lambda: (lambda d: d[0] == 0 and d[1] >= 50)(read_deltas(cluster, lambda: read_many(a, board, 50)))
    wait_for(back, "reads to return to the replica after it replayed", timeout=10)
    d = read_deltas(cluster, lambda: read_many(b, board, 50))
    assert d[0] == 0, "the second instance still reads the primary: %r" % (d,)


def test_statistics_never_go_back_to_a_replica_behind_a_refresh(cluster, factory):
    """A view refresh is a write that the statistics read: once an instance has refreshed, or heard
    of a refresh (its notice), no replica that has not replayed it answers that instance's
    statistics, so refreshed_at never goes backwards (issue 27). Before: stats reads followed
    the board's own writes only, and the paused replica answered with the refresh before."""
    rep = cluster.replicas[0]
    env = router_env(cluster, [0], RANKD_POSTGRES_MAX_LAG_MS=600000, RANKD_REFRESH_INTERVAL_S=0)
    a = factory(redis=False, env=env)
    b = factory(redis=False, env=env)
    board = seeded_board(a)
    adm = a.client(ADMIN_KEY)
    assert adm.post("/v1/admin/refresh").status == 200
    cluster.wait_caught_up([rep])
    wait_nodes(a, all_ok(1))
    wait_nodes(b, all_ok(1))

    def refreshed_at(inst):
        r = inst.client().get("/v1/leaderboards/%s/stats" % board)
        assert r.status == 200, r.describe()
        return r.json()["refreshed_at"]

    before = refreshed_at(a)
    assert refreshed_at(b) == before
    cluster.query(rep, "SELECT pg_wal_replay_pause()")
    try:
        assert adm.post("/v1/admin/refresh").status == 200
        after = refreshed_at(a)
        assert after > before, "the refreshing instance read a replica behind its refresh: %s, %s" % (before, after)
        wait_for(lambda: refreshed_at(b) == after, "the other instance to stop reading the replica behind the refresh",
                 5)
        for _ in range(20):
            assert refreshed_at(a) == after and refreshed_at(b) == after
    finally:
        cluster.query(rep, "SELECT pg_wal_replay_resume()")
    adm.close()


def rebuild_reads(cluster, server):
    return cluster.query(server,
                         "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s"
                         " JOIN pg_database d ON d.oid = s.dbid AND d.datname = current_database()"
                         " WHERE s.query LIKE 'SELECT player_id, sort_key, achieved_ms, metadata, version FROM standings%%'")[0][0]


def test_cold_windows_load_from_a_caught_up_replica(cluster, factory, redis_db):
    url, rcl = redis_db
    inst = factory(redis=True, env=router_env(cluster, RANKD_CACHE_BYTES="67108864"))
    board = seeded_board(inst)
    gen = cluster.db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
    cluster.wait_caught_up()
    wait_nodes(inst, all_ok(2))
    for k in rcl.scan_iter("rankd:{g%d}:*" % gen):
        rcl.delete(k)
    nodes = [cluster.primary] + cluster.replicas
    before = [rebuild_reads(cluster, n) for n in nodes]
    cl = inst.client()
    def cold_read():  # cold: answered from a replica, a rebuild asked for
        r = cl.get("/v1/leaderboards/%s/entries" % board)
        assert r.status == 200, r.describe()
    wait_for(lambda: list(rcl.scan_iter("rankd:{g%d}:*:ready5" % gen)), "the window loaded again", 15,
             poke=cold_read, every=0.05)
    cl.close()
    d = [rebuild_reads(cluster, n) - b for n, b in zip(nodes, before)]
    assert d[0] == 0 and d[1] + d[2] >= 1, "the rebuild read from %r (primary, replica 1, replica 2)" % (d,)
    v = run_cli(["verify", "--board", board], inst.config_path, env={"RANKD_REDIS_URL": url})
    assert v.returncode == 0, v.stdout + v.stderr


def load_until(inst, board, stop, results, players=20):
    cl = inst.client()
    cl.timeout = 10
    i = 0
    try:
        while not stop.is_set():
            t = time.time()
            try:
                r = cl.get("/v1/leaderboards/%s/players/p%d" % (board, i % players))
                results.append((t, r.status))
            except OSError:
                results.append((t, -1))
                cl.close()
            i += 1
            time.sleep(0.005)
    finally:
        cl.close()


def test_a_replica_stopped_under_load_costs_a_handful_of_requests(cluster, factory):
    victim = cluster.replicas[1]
    inst = factory(redis=False, env=router_env(cluster, RANKD_POSTGRES_REPLICA_POLICY="round_robin"))
    board = seeded_board(inst)
    cluster.wait_caught_up()
    wait_nodes(inst, all_ok(2))
    stop, results = threading.Event(), []
    threads = [threading.Thread(target=load_until, args=(inst, board, stop, results)) for _ in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(results) >= 100, "the load to run")
    victim.stop()
    # Settled: the router says the replica is down (observed, not a fixed 3 health intervals after
    # the stop, which a loaded machine can pass before the router has looked twice).
    wait_nodes(inst, {"postgres_replica_2": "down"})
    settle = time.time()
    # The load goes on until 200 requests were sent after the router settled: enough to tell.
    wait_for(lambda: time.time() > settle and sum(1 for r in list(results) if r[0] > settle) >= 200,
             "200 requests after the replica stopped and the router settled", timeout=30)
    stop.set()
    for t in threads:
        t.join()
    failed = [r for r in results if r[1] != 200]
    assert len(failed) <= 5, "%d of %d requests failed: %r" % (len(failed), len(results), failed[:10])
    assert not [r for r in failed if r[0] > settle], failed
    body = wait_nodes(inst, {"postgres_replica_2": "down"})
    assert body["dependencies"]["postgres_replica_2"] == "down"
    assert readyz(inst)[0] == 200
    # It rejoins by itself.
    victim.launch()
    cluster.wait_caught_up([victim])
    wait_nodes(inst, all_ok(2), timeout=20)
    d = read_deltas(cluster, lambda: read_many(inst, board, 100))
    assert d[0] == 0 and d[2] >= 40, "the restarted replica did not rejoin: %r" % (d,)


def timed_submit(inst, board, player, score):
    w = inst.client(WRITE_KEY)
    w.timeout = 10
    t = time.time()
    try:
        r = submit(w, board, player, score)
    finally:
        w.close()
    return r, time.time() - t


def test_the_primary_stopped_and_restarted(cluster, factory, redis_db):
    url, rcl = redis_db
    # A write that waited on the dead primary would wait 30 s for the pool or for a connection,
    # past the client's 10 s: that it is answered at all shows it was refused at once, with no
    # clock read by the test.
    slow = {"postgres": {"connect_timeout_s": 30, "pool_wait_ms": 30000}}
    inst = factory(redis=True, env=router_env(cluster, RANKD_CACHE_BYTES="67108864"), extra_config=slow)
    hot = seeded_board(inst)
    cold = seeded_board(inst)
    adm = inst.client(ADMIN_KEY)
    r = adm.post("/v1/admin/rebuild-cache?board=" + hot)
    assert r.status == 200, r.describe()
    adm.close()
    gen = cluster.db.query("SELECT gen FROM boards WHERE id = %s", (cold,))[0][0]
    for k in rcl.scan_iter("rankd:{g%d}:*" % gen):  # the cold board: only PostgreSQL can answer it
        rcl.delete(k)
    cluster.wait_caught_up()
    wait_nodes(inst, all_ok(2))
    cl = inst.client()
    assert cl.get("/v1/leaderboards/%s/entries" % hot).status == 200  # into the response cache

    cluster.primary.stop()
    body = wait_nodes(inst, {"postgres_primary": "down"})
    try:
        for path in ["/v1/leaderboards/%s/entries" % hot, "/v1/leaderboards/%s/players/p3" % hot,
                     "/v1/leaderboards/%s/entries?limit=5&offset=3" % hot, "/v1/leaderboards/%s/entries" % cold,
                     "/v1/leaderboards/%s/players/p4" % cold, "/v1/leaderboards/" + cold,
                     "/v1/leaderboards/%s/windows" % cold]:
            r = cl.get(path)
            assert r.status == 200, "%s with the primary down: %s" % (path, r.describe())
        for i in range(3):
            r, _ = timed_submit(inst, hot, "late%d" % i, 7)  # an OSError: it waited on the primary
            assert r.status == 503, r.describe()
            assert r.header("Retry-After"), r.describe()
        status, body = readyz(inst)
        assert status == 200 and body["dependencies"]["postgres_primary"] == "down", body
        assert body["status"] == "degraded", body
    finally:
        cluster.primary.launch()
    # Once the health checker has seen the primary back, the first write succeeds.
    wait_nodes(inst, {"postgres_primary": "ok"}, timeout=20)
    r, _ = timed_submit(inst, hot, "back", 9)
    assert r.status == 200, "the first write after the primary came back: %s" % r.describe()
    cl.close()


def test_a_promoted_replica_takes_the_writes(cluster, factory):
    """Last: the old primary stays stopped."""
    new = cluster.replicas[0]
    multi = "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s user=rankd target_session_attrs=read-write" % (
        cluster.primary.port, new.port, cluster.db.name)
    env = router_env(cluster, [1])
    env["RANKD_POSTGRES_PRIMARY"] = multi
    inst = factory(redis=False, env=env)
    board = seeded_board(inst, players=2)
    cluster.wait_caught_up([new], timeout=30)  # after the last test's restart it reconnects within ~5 s
    cluster.primary.stop()
    new.promote()

    def written():
        r, _ = timed_submit(inst, board, "after", 77)
        assert r.status in (200, 503), r.describe()
        return r.status == 200
    wait_for(written, "writes to move to the promoted replica", 15, every=0.2)
    assert cluster.query(new, "SELECT score FROM standings WHERE player_id = 'after'")[0][0] == 77
    assert player_score(inst, board, "after") == 77


def test_a_standby_on_another_timeline_than_the_primary_answers_no_read(tmp_root):
    """A failover to a standby that had less than another (issue 27): the other standby, left on
    the old timeline, holds a write the new primary never got, and its replay position is past
    the new primary's, so by positions it looks caught up. The router compares timelines: that
    standby is down for reads, and every read shows the new primary's truth. Before: it answered
    reads with the write the failover lost."""
    n = next(_n)
    p = PgServer(tmp_root, "tl%d-primary" % n)
    p.start()
    db = migrated_database(p, "rankd_tl%d" % n, tmp_root)
    r1 = PgServer(tmp_root, "tl%d-r1" % n, primary=p)
    r2 = PgServer(tmp_root, "tl%d-r2" % n, primary=p)
    r1.start()
    r2.start()
    cl = Cluster(p, [r1, r2], db)
    before = RankdFactory(tmp_root, db, None)
    after = None
    try:
        inst = before(redis=False)
        board = seeded_board(inst, players=3)
        cl.wait_caught_up()
        r1.stop()  # the standby to be promoted misses what follows
        w = inst.client(WRITE_KEY)
        submit_ok(w, board, "p0", 999999)  # rank 1 on the old timeline only
        w.close()
        cl.wait_caught_up([r2])
        before.close()
        p.stop()
        r1.launch()
        r1.promote()
        assert cl.query(r2, "SELECT pg_last_wal_replay_lsn() > %s::pg_lsn",
                        (cl.query(r1, "SELECT pg_current_wal_lsn()")[0][0],))[0][0], "not diverged ahead"
        after = RankdFactory(tmp_root, db, None)
        inst = after(redis=False, env={"RANKD_POSTGRES_PRIMARY": cl.dsn(r1), "RANKD_POSTGRES_REPLICAS": cl.dsn(r2),
                                       "RANKD_CACHE_BYTES": "0", "RANKD_POSTGRES_HEALTH_INTERVAL_MS": str(HEALTH_MS),
                                       "RANKD_POSTGRES_MAX_LAG_MS": "600000"})
        body = wait_nodes(inst, {"postgres_primary": "ok", "postgres_replica_1": "down"})
        c = inst.client()
        for _ in range(30):
            r = c.get("/v1/leaderboards/%s/players/p0" % board)
            assert r.status == 200 and r.json()["score"] == 1000, r.describe()  # seeded_board's
        m = c.get("/metrics", key=ADMIN_KEY).body.decode()
        assert 'rankd_pg_node_timeline{node="postgres_primary",role="primary"} 2' in m, m
        assert 'rankd_pg_node_timeline{node="postgres_replica_1",role="replica"} 1' in m
        c.close()
        assert body
    finally:
        if after:
            after.close()
        before.close()
        for s in (r2, r1, p):
            s.stop()
