"""The in-process response cache (L1): hits, exact invalidation, and no stale
answer across instances.

Every instance here runs with a cache max-age of 30 s, so an answer that is
fresh can only be fresh because a write invalidated it, never because its
entry expired. Every cached answer is compared with the same read made with
consistency=strong, which bypasses every cache and reads the primary.
"""
import itertools
import random
import socket
import threading
import time

import pytest

from conftest import ADMIN_KEY, PAGE_READ_SQL, WINDOW_LOAD_SQL, WRITE_KEY, Client, create_board, metric, run_cli, submit_ok, unique, wait_for

LONG_TTL = {"http": {"cache_max_age": 30}}




def strong(client, path):
    sep = "&" if "?" in path else "?"
    r = client.get(path + sep + "consistency=strong", key=WRITE_KEY)
    return r.status, r.body


def same_as_primary(client, path):
    r = client.get(path)
    return (r.status, r.body) == strong(client, path)


def wait_fresh(client, path, bound_s=5.0):
    """Poll until the answer equals the primary's; fails after bound_s (well under the 30 s max-age,
    so a fresh answer still proves an invalidation; 0.5 s was a bound on the other instance's
    listener and two requests, one of them a strong read, under a sanitizer on a loaded machine)."""
    wait_for(lambda: same_as_primary(client, path), "%s to be fresh (well before the cache's max-age)" % path,
             bound_s, every=0.01)


def seed_batch(client, board, n):
    """Players p000..p(n-1) with scores 1000, 990, ... in one scores:batch."""
    items = [{"board": board, "player_id": "p%03d" % i, "score": 1000 - i * 10} for i in range(n)]
    r = client.post("/v1/scores:batch", json_body={"scores": items}, key=WRITE_KEY)
    assert r.status == 200, r.describe()


def test_hits_and_read_your_writes(rankd_factory):
    inst = rankd_factory(extra_config=LONG_TTL)
    c = inst.client(None)
    admin = inst.client(ADMIN_KEY)
    w = inst.client(WRITE_KEY)
    try:
        bid = create_board(admin)["id"]
        seed_batch(w, bid, 40)
        top = "/v1/leaderboards/%s/entries?limit=10" % bid

        def repeated_read_hits():
            # A key is kept from its second request on (one-hit reads are not cached); the
            # seed's own invalidation notices, which arrive asynchronously, may drop it again.
            c.get(top)
            first = c.get(top)
            hits = metric(c, "rankd_l1_hits_total")
            again = c.get(top)
            return again.body == first.body and again.header("ETag") == first.header("ETag") and \
                metric(c, "rankd_l1_hits_total") >= hits + 1
        wait_for(repeated_read_hits, "a repeated read answered from the cache")
        first = c.get(top)

        # A write below the page that leaves the total alone: the page's bytes cannot change.
        submit_ok(w, bid, "p030", 1000 - 25 * 10)          # rank 31 -> 26, still below the top 10
        kept = c.get(top)
        assert kept.body == first.body and same_as_primary(c, top)

        # A write into the page: answered from the primary's state at once.
        submit_ok(w, bid, "p035", 5000)
        assert same_as_primary(c, top)
        assert c.get(top).json()["entries"][0]["player_id"] == "p035"

        # A new player changes every page's total.
        deep = "/v1/leaderboards/%s/entries?limit=5&offset=30" % bid
        c.get(deep)
        submit_ok(w, bid, "newcomer", -1)
        assert same_as_primary(c, deep) and same_as_primary(c, top)

        # A player's standing and around-me follow a write that passes them.
        me = "/v1/leaderboards/%s/players/p005" % bid
        around = "/v1/leaderboards/%s/players/p005/around?before=2&after=2" % bid
        friends = "/v1/leaderboards/%s/players?ids=p005,p020,nobody" % bid
        for p in (me, around, friends):
            c.get(p)
        submit_ok(w, bid, "p020", 995)                      # from below p005 to above it
        for p in (me, around, friends):
            assert same_as_primary(c, p), p

        # Removal and deletion.
        assert admin.delete("/v1/leaderboards/%s/players/p020" % bid).status == 204
        for p in (me, top, friends):
            assert same_as_primary(c, p), p
        assert admin.delete("/v1/leaderboards/%s" % bid).status == 204
        assert c.get(top).status == 404
    finally:
        for x in (c, admin, w):
            x.close()


def test_no_stale_answer_across_instances(rankd_factory):
    a = rankd_factory(extra_config=LONG_TTL)
    b = rankd_factory(extra_config=LONG_TTL)
    ca, cb = a.client(None), b.client(None)
    wa, wb = a.client(WRITE_KEY), b.client(WRITE_KEY)
    admin = a.client(ADMIN_KEY)
    try:
        bid = create_board(admin)["id"]
        seed_batch(wa, bid, 30)
        paths = ["/v1/leaderboards/%s/entries?limit=10" % bid,
                 "/v1/leaderboards/%s/entries?limit=10&offset=10" % bid,
                 "/v1/leaderboards/%s/players/p015" % bid,
                 "/v1/leaderboards/%s/players/p015/around?before=3&after=3" % bid,
                 "/v1/leaderboards/%s/players?ids=p001,p015,p029" % bid]
        rnd = random.Random(7)
        for step in range(40):
            for p in paths:            # fill both caches
                ca.get(p)
                cb.get(p)
            writer, other = (wa, cb) if step % 2 == 0 else (wb, ca)
            player = "p%03d" % rnd.randrange(32)   # p030, p031 are new players
            submit_ok(writer, bid, player, rnd.randrange(0, 1200))
            same = ca if writer is wa else cb
            for p in paths:
                assert same_as_primary(same, p), "same instance served a stale %s" % p
                wait_fresh(other, p)
    finally:
        for x in (ca, cb, wa, wb, admin):
            x.close()


def test_cache_off_still_correct(rankd_factory):
    inst = rankd_factory(env={"RANKD_CACHE_BYTES": "0"})
    c = inst.client(None)
    admin = inst.client(ADMIN_KEY)
    w = inst.client(WRITE_KEY)
    try:
        bid = create_board(admin)["id"]
        seed_batch(w, bid, 5)
        top = "/v1/leaderboards/%s/entries" % bid
        c.get(top)
        assert metric(c, "rankd_l1_entries") == 0
        submit_ok(w, bid, unique("x"), 99999)
        assert same_as_primary(c, top)
    finally:
        for x in (c, admin, w):
            x.close()


def test_cursor_page_sees_a_move_into_its_gap(rankd_factory):
    inst = rankd_factory(extra_config=LONG_TTL)
    c, admin, w = inst.client(None), inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        bid = create_board(admin)["id"]
        seed_batch(w, bid, 30)                       # p000 (1000) ... p029 (710)
        first = c.get("/v1/leaderboards/%s/entries?limit=5" % bid).json()
        nxt = "/v1/leaderboards/%s/entries?limit=5&cursor=%s" % (bid, first["next_cursor"])
        prv_page = c.get(nxt).json()
        prv = "/v1/leaderboards/%s/entries?limit=5&cursor=%s" % (bid, prv_page["prev_cursor"])
        c.get(prv)
        # p002 (rank 3, above the cursor) drops to just below the cursor: into the gap before the page.
        submit_ok(w, bid, "p002", 955)          # best on desc: lower is not better...
        r = w.post("/v1/leaderboards/%s/scores" % bid, json_body={"player_id": "p040", "score": 959})
        assert r.status == 200
        for p in (nxt, prv):
            assert same_as_primary(c, p), p
        # A move from above the cursor to between the cursor and the page's first entry.
        submit_ok(w, bid, "p001", 100000)       # p001 leaves the first page upwards? it stays rank 1
        for p in (nxt, prv):
            assert same_as_primary(c, p), p
    finally:
        for x in (c, admin, w):
            x.close()


def wait_warm(c, bid):
    """Read distinct pages (each misses the cache) until one is answered from Redis."""
    pages = itertools.count(1)
    wait_for(lambda: metric(c, "rankd_reads_redis_total") > 0, "a read answered from Redis (the window warm)", 10,
             poke=lambda: c.get("/v1/leaderboards/%s/entries?limit=%d" % (bid, next(pages))), every=0.1)


def test_redis_outage_and_return(rankd_factory, private_redis):
    inst = rankd_factory(redis=private_redis.url(0), extra_config=LONG_TTL)
    c, admin, w = inst.client(None), inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        bid = create_board(admin)["id"]
        seed_batch(w, bid, 20)
        paths = ["/v1/leaderboards/%s/entries?limit=10" % bid, "/v1/leaderboards/%s/players/p010" % bid]
        wait_warm(c, bid)

        # A stall longer than the command timeout: writes meanwhile miss Redis.
        rc = private_redis.client()
        rc.execute_command("CLIENT", "PAUSE", "800")  # in force once it returns
        submit_ok(w, bid, "p015", 5000)
        assert rc.ping()  # answered once the pause is over
        for p in paths:
            assert same_as_primary(c, p), "after a Redis stall: %s" % p

        # Redis goes away, writes go on, Redis comes back empty.
        private_redis.stop()
        submit_ok(w, bid, "p016", 6000)
        submit_ok(w, bid, "newbie", 7000)
        for p in paths:
            assert same_as_primary(c, p), "with Redis down: %s" % p
        private_redis.start()
        submit_ok(w, bid, "p017", 8000)
        limit = itertools.count(12)
        verified = {}

        def rebuilt():
            # Distinct pages miss the cache and reach Redis, which finds the window cold and asks for a rebuild.
            for p in paths + ["/v1/leaderboards/%s/entries?limit=%d" % (bid, next(limit))]:
                assert same_as_primary(c, p), "after Redis returned: %s" % p
            verified["v"] = v = run_cli(["verify", "--board", bid], inst.config_path, env=inst.env)
            return v.returncode == 0 and "cold" not in v.stdout
        wait_for(rebuilt, lambda: "Redis to be rebuilt: %s" % verified["v"].stdout[-2000:], 15, every=0.3)
    finally:
        for x in (c, admin, w):
            x.close()


def test_client_hanging_up_mid_read_releases_the_key(rankd_factory, private_redis):
    """A request that computes a key for others hangs up before its answer: the requests
    parked on that key are still answered, and the key is cached again afterwards."""
    inst = rankd_factory(redis=private_redis.url(0), extra_config=LONG_TTL)
    c, admin, w = inst.client(None), inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        bid = create_board(admin)["id"]
        seed_batch(w, bid, 20)
        wait_warm(c, bid)
        path = "/v1/leaderboards/%s/entries?limit=7" % bid
        assert c.get(path).status == 200      # first miss: the key is not claimed yet
        before = {k: metric(inst, k) for k in ("rankd_l1_parked_total", "rankd_l1_claims_abandoned_total",
                                                "rankd_l1_inserts_total")}
        rc = private_redis.client()
        rc.execute_command("CLIENT", "PAUSE", "1000")  # in force once it returns
        quitter = socket.create_connection(("127.0.0.1", inst.port))
        quitter.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        # The quitter has claimed the key and waits on Redis; then it hangs up.
        wait_for(lambda: metric(inst, "rankd_l1_claims") == 1, "the quitter's claim of the key")
        quitter.close()
        parked = inst.client(None)
        parked.timeout = 8
        got = {}

        def read_parked():
            try:
                got["r"] = parked.get(path)
            except OSError as e:              # timed out: never answered
                got["error"] = e
        t = threading.Thread(target=read_parked)
        t.start()
        # It parks on the quitter's claim (not a claim of its own: that would cover less).
        wait_for(lambda: metric(inst, "rankd_l1_parked_total") == before["rankd_l1_parked_total"] + 1,
                 "the second reader parked on the claim")
        t.join(10)
        assert "r" in got, "a request parked on a key whose claimer hung up was never answered: %r" % got
        assert got["r"].status == 200 and same_as_primary(c, path)
        # The claim was settled, none is left behind, and the key is cached again. Which way it
        # settled depends on Redis's pause against the read's 500 ms timeout: a suspended
        # connection does not see its client leave, so the quitter's read either finished (from
        # Redis or PostgreSQL) and inserted the answer, or failed and gave the claim up, and the
        # parked reader computed it again.
        wait_for(lambda: metric(inst, "rankd_l1_claims") == 0, "every claim settled")
        settled = (metric(inst, "rankd_l1_claims_abandoned_total") - before["rankd_l1_claims_abandoned_total"]) + \
            (metric(inst, "rankd_l1_inserts_total") - before["rankd_l1_inserts_total"])
        assert settled >= 1
        assert c.get(path).status == 200 and metric(inst, "rankd_l1_claims") == 0
        parked.close()
    finally:
        for x in (c, admin, w):
            x.close()


def test_keys_of_the_old_redis_layout_are_removed(rankd_factory, private_redis):
    """Keys of the layouts before this one are deleted once rankd starts: 1, before sorted-set
    scores (…:z, …:p, …:r), 2, before the metadata rode in the members (…:zs, …:h:<n>,
    …:ready, …:b, …:m, …:mp), 3, before the sort key did (…:z3, …:h3:<n>, …:ready3, …:b3,
    …:m3, …:mp3), and 4, before the distinct sort keys were kept (…:z4, …:h4:<n>, …:ready4,
    …:b4, …:m4, …:mp4); the current layout's keys are left alone."""
    rc = private_redis.client()
    old = ["rankd:{g424242}:0:z", "rankd:{g424242}:0:p", "rankd:{g424242}:19000:r",
           "rankd:{g424243}:0:zs", "rankd:{g424243}:0:h:17", "rankd:{g424243}:0:ready", "rankd:{g424243}:0:b",
           "rankd:{g424243}:0:m", "rankd:{g424243}:0:mp",
           "rankd:{g424244}:0:z3", "rankd:{g424244}:0:h3:17", "rankd:{g424244}:0:ready3",
           "rankd:{g424244}:0:b3", "rankd:{g424244}:0:m3", "rankd:{g424244}:0:mp3",
           "rankd:{g424245}:0:z4", "rankd:{g424245}:0:h4:17", "rankd:{g424245}:0:ready4",
           "rankd:{g424245}:0:b4", "rankd:{g424245}:0:m4", "rankd:{g424245}:0:mp4"]
    for k in old:
        if k.endswith((":z", ":zs", ":z3", ":z4")):
            rc.zadd(k, {"m": 0})
        elif k.endswith((":p", ":h:17", ":h3:17", ":h4:17", ":m", ":m3", ":m4")):
            rc.hset(k, "p", "v")
        else:
            rc.set(k, 1)
    keep = ["rankd:{g424242}:0:z5", "rankd:{g424242}:0:ready5", "rankd:{g424242}:0:h5:17", "other:z",
            "rankd:{g424242}:0:s5"]
    rc.zadd(keep[0], {"m": 1})
    rc.set(keep[1], 1)
    rc.hset(keep[2], "p", "v")
    rc.set(keep[3], 1)
    rc.zadd(keep[4], {"m": 1})
    inst = rankd_factory(redis=private_redis.url(0))
    wait_for(lambda: not rc.exists(*old), "the old layout's keys to go", 10)
    assert rc.exists(*keep) == len(keep)
    assert inst.client(None).get("/healthz").status == 200


def test_a_slow_postgres_read_does_not_hold_up_other_requests(rankd_factory, db):
    """Reads that go to PostgreSQL run off the event loop: with one event-loop thread and a
    read stuck behind a table lock, other requests are still answered at once."""
    inst = rankd_factory(env={"RANKD_WORKER_THREADS": "1"})
    admin, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(None)
    locker = None
    try:
        bid = create_board(admin)["id"]
        seed_batch(w, bid, 10)
        # A primary connection made and prepared before the lock: under it a new one could not
        # even prepare its statements (lock timeout), and the read would be a quick 503. And the
        # window checked into Redis first: that check reads standings too, and would be the
        # waiter seen below.
        assert c.get("/v1/leaderboards/%s/entries?limit=5&consistency=strong" % bid, key=WRITE_KEY).status == 200
        assert c.get("/v1/leaderboards/%s/entries?limit=5" % bid).status == 200
        wait_for(lambda: metric(inst, "rankd_redis_windows_rebuilt_total") + metric(inst, "rankd_redis_windows_verified_total") >= 1,
                 "the window's check")
        locker = db.connect()
        locker.autocommit = False
        cur = locker.cursor()
        cur.execute("LOCK TABLE standings IN ACCESS EXCLUSIVE MODE")
        stuck = inst.client(None)
        got = {}

        def read_strong():
            got["r"] = stuck.get("/v1/leaderboards/%s/entries?limit=5&consistency=strong" % bid, key=WRITE_KEY)
        t = threading.Thread(target=read_strong)
        t.start()
        wait_for(lambda: db.lock_waiters(PAGE_READ_SQL) == 1, "the strong read waiting on the lock")
        # Answered while the strong read still waits on the lock (held until the rollback below):
        # a request queued behind that read would not be answered before it.
        assert c.get("/healthz").status == 200
        assert c.get("/v1/leaderboards/%s" % bid).status == 200
        assert t.is_alive() and db.lock_waiters(PAGE_READ_SQL) == 1, got
        locker.rollback()
        t.join(10)
        assert got["r"].status == 200 and [e["player_id"] for e in got["r"].json()["entries"]] == \
            ["p000", "p001", "p002", "p003", "p004"]
        stuck.close()
    finally:
        if locker is not None:  # never left holding the lock: every later test would wait on it
            locker.close()
        for x in (c, admin, w):
            x.close()


def reference_bucket(player):
    """A player's hash bucket, computed apart from rankd: h = (h*31 + byte) % 1000003, then % 16384."""
    h = 0
    for byte in player.encode():
        h = (h * 31 + byte) % 1000003
    return h % 16384


def test_player_entries_sit_in_the_bucket_every_script_computes(rankd_factory, redis_db, db):
    """rankd computes a named player's hash bucket itself (submissions, rank and around-me
    reads); the Lua scripts compute it for members found by a range. Both must land on the
    same bucket, or a page would lose metadata that a rank read shows."""
    _, rc = redis_db
    inst = rankd_factory()
    admin, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(None)
    try:
        bid = create_board(admin)["id"]
        players = ["p%03d" % i for i in range(30)] + ["Zo:e@7", "a", "x" * 64, "ID_with.dots-and_9"]
        items = [{"board": bid, "player_id": p, "score": 1000 - i, "metadata": {"n": i}}
                 for i, p in enumerate(players)]
        r = w.post("/v1/scores:batch", json_body={"scores": items}, key=WRITE_KEY)
        assert r.status == 200, r.describe()
        assert all("error" not in x for x in r.json()["results"]), r.json()
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (bid,))[0][0]
        prefix = "rankd:{g%d}:0:" % gen
        wait_for(lambda: rc.exists(prefix + "ready5"), "window %s loaded on its first read" % prefix, 10,
                 poke=lambda: c.get("/v1/leaderboards/%s/entries?limit=1" % bid), every=0.1)
        assert rc.zcard(prefix + "z5") == len(players)
        for p in players:
            assert rc.hexists(prefix + "h5:%d" % reference_bucket(p), p), p
        from_redis = metric(c, "rankd_reads_redis_total")
        page = c.get("/v1/leaderboards/%s/entries?limit=100" % bid).json()["entries"]
        assert [e["player_id"] for e in page] == players
        for i, e in enumerate(page):
            assert e["metadata"] == {"n": i}, e
            one = c.get("/v1/leaderboards/%s/players/%s" % (bid, e["player_id"]))
            assert one.status == 200 and one.json()["metadata"] == {"n": i}, one.describe()
            around = c.get("/v1/leaderboards/%s/players/%s/around?before=1&after=1" % (bid, e["player_id"]))
            assert around.status == 200, around.describe()
            lo = max(i - 1, 0)
            assert [(x["player_id"], x.get("metadata")) for x in around.json()["entries"]] == \
                [(p, {"n": lo + k}) for k, p in enumerate(players[lo:i + 2])]
        # every read above (a page, then a rank and an around-me read per player) came from Redis
        assert metric(c, "rankd_reads_redis_total") - from_redis == 1 + 2 * len(players)
    finally:
        for x in (c, admin, w):
            x.close()


def uncached_instance(rankd_factory):
    """An instance with no L1 cache and no refresh worker (reads reach Redis or PostgreSQL), and
    its admin, writer and reader clients."""
    inst = rankd_factory(extra_config=LONG_TTL, env={"RANKD_CACHE_BYTES": "0", "RANKD_REFRESH_INTERVAL_S": "0"})
    return inst, inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(None)


def test_reads_of_a_cold_window_take_turns(rankd_factory, redis_db, db):
    """Reads of a window that is not in Redis go to PostgreSQL one at a time per window:
    while the first is stuck behind a table lock, the others wait their turn instead of
    piling more counts onto PostgreSQL, and once the lock goes every one is answered exactly."""
    _, rc = redis_db
    inst, admin, w, c = uncached_instance(rankd_factory)
    locker = None
    try:
        bid = create_board(admin)["id"]
        seed_batch(w, bid, 300)
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (bid,))[0][0]
        paths = ["/v1/leaderboards/%s/players/p%03d" % (bid, i) for i in range(0, 60, 10)]
        expected = {p: strong(c, p) for p in paths}
        rc.set("rankd:{g%d}:0:b5" % gen, "held-by-the-test", ex=60)  # no rebuild: the window stays cold
        rc.delete("rankd:{g%d}:0:ready5" % gen)  # a rebuild under way when the lock was taken does not mark it
        waits_before = metric(c, "rankd_redis_cold_waits_total")
        locker = db.connect()
        locker.autocommit = False
        locker.cursor().execute("LOCK TABLE standings IN ACCESS EXCLUSIVE MODE")
        got, errors = {}, []

        def read(path):
            cl = inst.client(None)
            try:
                r = cl.get(path)
                got[path] = (r.status, r.body)
            except Exception as e:  # a hung request must fail the test, not vanish
                errors.append((path, repr(e)))
            finally:
                cl.close()
        threads = []
        for p in paths:
            threads.append(threading.Thread(target=read, args=(p,)))
            threads[-1].start()
        wait_for(lambda: metric(c, "rankd_redis_cold_waits_total") - waits_before >= len(paths) - 1,
                 "the reads to wait their turn", 10)
        # The first read's statement reaches the lock a moment after the others start waiting
        # (the upkeep leader's retention, which may wait on it too, is not a read).
        def reads_waiting():
            return db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                            " AND query NOT LIKE 'WITH cut AS%%'")[0][0]
        wait_for(lambda: reads_waiting() >= 1, "the first read to wait on the lock", timeout=10)
        stuck = reads_waiting()
        assert stuck == 1, "%d PostgreSQL reads of one cold window at once" % stuck
        locker.rollback()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "reads still unanswered after the lock went"
        assert not errors, errors
        assert got == expected
        rc.delete("rankd:{g%d}:0:b5" % gen)
        wait_for(lambda: rc.exists("rankd:{g%d}:0:ready5" % gen), "the window loaded again by the next cold read",
                 10, poke=lambda: c.get(paths[0]), every=0.05)
        assert same_as_primary(c, paths[0])
    finally:
        if locker is not None:
            locker.close()
        for x in (c, admin, w):
            x.close()


class HeldRebuild:
    """An operator's rebuild of a seeded board, held at its first PostgreSQL read: it waits for
    the rebuild the seeding asked for (the writes found the window cold) to end, locks
    `standings`, starts POST /v1/admin/rebuild-cache in a thread, and returns once that rebuild
    holds its Redis lock and waits for PostgreSQL. release() lets it go and returns its answer."""

    def __init__(self, inst, rc, db, bid):
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (bid,))[0][0]
        self.gen = gen
        self.lock_key, self.ready_key = "rankd:{g%d}:0:b5" % gen, "rankd:{g%d}:0:ready5" % gen
        wait_for(lambda: not rc.exists(self.lock_key) and rc.exists(self.ready_key),
                 "the rebuild the seeding asked for to end", 10)
        self.locker = db.connect()
        self.locker.autocommit = False
        self.locker.cursor().execute("LOCK TABLE standings IN ACCESS EXCLUSIVE MODE")
        self.answer = {}
        self.thread = threading.Thread(target=self._rebuild, args=(inst, bid))
        self.thread.start()
        wait_for(lambda: rc.exists(self.lock_key) and db.lock_waiters(WINDOW_LOAD_SQL) == 1,
                 "the rebuild to take its lock and wait for PostgreSQL", 10)

    def _rebuild(self, inst, bid):
        cl = inst.client(ADMIN_KEY)
        try:
            self.answer["r"] = cl.post("/v1/admin/rebuild-cache?board=" + bid)
        finally:
            cl.close()

    def release(self):
        self.locker.rollback()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the rebuild did not end"
        return self.answer["r"]

    def close(self):
        self.locker.close()


@pytest.mark.parametrize("players", [300, 2500])
def test_a_flush_during_a_rebuild_leaves_the_window_cold(rankd_factory, redis_db, db, players):
    """A rebuild whose lock vanishes midway (FLUSHALL, a Redis restart) may have lost the chunks
    it loaded: it must not mark the window ready, or reads would answer from a partial set
    (players missing, 404s, wrong ranks). Nor may it write the chunk it read before it noticed:
    another rebuild may be loading the window by then, and a player deleted meanwhile would come
    back. The flush comes before the first chunk is written, so both sizes stop there (a
    refusal after some chunks were written takes the same check); 2,500 players then reload
    in two chunks. The next read asks for a rebuild, which loads it whole."""
    _, rc = redis_db
    inst, admin, w, c = uncached_instance(rankd_factory)
    held = None
    try:
        bid = create_board(admin)["id"]
        for start in range(0, players, 1000):
            items = [{"board": bid, "player_id": "f%05d" % i, "score": i}
                     for i in range(start, min(start + 1000, players))]
            r = w.post("/v1/scores:batch", json_body={"scores": items}, key=WRITE_KEY)
            assert r.status == 200, r.describe()
        held = HeldRebuild(inst, rc, db, bid)
        rc.flushdb()  # the rebuild holds its lock and waits for its first chunk
        r = held.release()
        assert r.status == 503 and r.json()["error"]["code"] == "unavailable", r.describe()
        assert not rc.exists(held.ready_key), "a rebuild that lost its lock marked the window ready"
        assert "lost its lock" in inst.stderr_text()
        left = sorted(k for k in rc.keys("rankd:{g%d}:*" % held.gen))
        assert left == [], "a rebuild that lost its lock still wrote %d keys: %r" % (len(left), left[:5])
        paths = ["/v1/leaderboards/%s/players/f%05d" % (bid, i) for i in (0, players // 2, players - 1)]
        wait_for(lambda: rc.exists(held.ready_key), "the window loaded again by the next cold read", 10,
                 poke=lambda: c.get(paths[0]), every=0.05)
        assert rc.zcard("rankd:{g%d}:0:z5" % held.gen) == players
        for p in paths:
            assert same_as_primary(c, p), p
        v = run_cli(["verify", "--board", bid], inst.config_path, env=inst.env)
        assert v.returncode == 0, "rankd verify: %s\n%s" % (v.stdout[-3000:], v.stderr[-3000:])
    finally:
        if held is not None:
            held.close()
        for x in (c, admin, w):
            x.close()


def test_an_operator_rebuild_leaves_the_event_loops_free(rankd_factory, redis_db, db):
    """A rebuild runs for as long as its board takes (here held at its first PostgreSQL read by
    a table lock). Meanwhile every new connection is answered at once, whichever event-loop
    thread it lands on: the job runs on a thread of its own."""
    _, rc = redis_db
    inst, admin, w, c = uncached_instance(rankd_factory)
    held = None
    try:
        bid = create_board(admin)["id"]
        seed_batch(w, bid, 300)
        held = HeldRebuild(inst, rc, db, bid)
        for i in range(8):  # new connections, spread over the event-loop threads
            cl = Client("127.0.0.1", inst.port, None, 3)
            try:
                r = cl.get("/healthz")
                assert r.status == 200, r.describe()
            except OSError as e:
                raise AssertionError("connection %d not answered while a rebuild ran: %r" % (i, e))
            finally:
                cl.close()
        r = held.release()
        assert r.status == 200 and r.json()["players"] == 300, r.describe()
    finally:
        if held is not None:
            held.close()
        for x in (c, admin, w):
            x.close()


def test_an_unchanged_standing_is_ranked_as_postgresql_holds_it(rankd_factory, redis_db, db):
    """A submission that changes nothing is answered with the rank of the standing the writer
    read from PostgreSQL. The writer asks Redis for that standing's member alone; when Redis
    holds another standing of the player (an update not applied yet), the rank comes from
    PostgreSQL, never from the standing Redis holds (fails where the writer looked the
    player up in Redis's hash: rank 2 instead of 3)."""
    _, rc = redis_db
    _, admin, w, c = uncached_instance(rankd_factory)
    try:
        bid = create_board(admin, sort="desc", operator="best")["id"]
        for p, s in (("a", 100), ("b", 90), ("c", 80)):
            submit_ok(w, bid, p, s)
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (bid,))[0][0]
        prefix = "rankd:{g%d}:0:" % gen
        wait_for(lambda: rc.exists(prefix + "ready5"), "window %s loaded on its first read" % prefix, 10,
                 poke=lambda: c.get("/v1/leaderboards/%s/entries?limit=1" % bid), every=0.1)
        assert submit_ok(w, bid, "c", 10)["rank"] == 3   # from Redis, which agrees

        # Redis now holds an older standing of c, 95 (second), under another achieved time.
        # A member is sort key (+2^63) ‖ achieved (+2^62) ‖ id; the hash value version ‖ the
        # member's first 16 bytes ‖ metadata.
        real = [m for m in rc.zrange(prefix + "z5", 0, -1) if m[16:] == b"c"]
        assert len(real) == 1, rc.zrange(prefix + "z5", 0, -1)
        older = (-95 + (1 << 63)).to_bytes(8, "big") + bytes(real[0][8:15]) + bytes([(real[0][15] - 1) % 256]) + b"c"
        rc.zrem(prefix + "z5", real[0])
        rc.zadd(prefix + "z5", {older: -95})
        bucket = prefix + "h5:%d" % reference_bucket("c")
        held = rc.hget(bucket, "c")
        rc.hset(bucket, "c", held[:8] + older[:16] + held[24:])
        assert c.get("/v1/leaderboards/%s/players/c" % bid).json()["rank"] == 2   # what Redis says

        r = submit_ok(w, bid, "c", 20)
        assert (r["updated"], r["score"], r["rank"]) == (False, 80, 3), r
        strong_rank = c.get("/v1/leaderboards/%s/players/c?consistency=strong" % bid, key=WRITE_KEY).json()["rank"]
        assert strong_rank == 3
    finally:
        for x in (c, admin, w):
            x.close()


def rank_path(board, player, i):
    return "/v1/leaderboards/%s/players/%s" % (board, player)


def around_path(board, player, i):
    return "/v1/leaderboards/%s/players/%s/around?before=%d&after=%d" % (board, player, i % 4, (i * 3) % 5)


@pytest.mark.parametrize("path_of", [rank_path, around_path], ids=["rank", "around"])
def test_reads_merged_by_the_redis_pipe_are_each_exact(rankd_factory, redis_db, db, path_of):
    """Concurrent rank reads (or around reads) of one window go to Redis as one script call (the
    pipe merges them); each request still gets its own player's answer: two boards read at once,
    ties, a player never seen and a removed one (its tombstone) among them, each equal to
    PostgreSQL's answer and to what the same read gets alone."""
    _, rc = redis_db
    inst, admin, w, c = uncached_instance(rankd_factory)
    clients = []
    try:
        boards = [create_board(admin)["id"] for _ in range(2)]
        for k, bid in enumerate(boards):
            items = [{"board": bid, "player_id": "p%03d" % i, "score": 500 - (i // 3) * 7 - k}
                     for i in range(90)]  # three players per score: ties
            assert w.post("/v1/scores:batch", json_body={"scores": items}, key=WRITE_KEY).status == 200
        assert admin.delete("/v1/leaderboards/%s/players/p005" % boards[0]).status == 204
        gens = [db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0] for b in boards]
        wait_for(lambda: all(rc.exists("rankd:{g%d}:0:ready5" % g) for g in gens), "the windows loaded", 10,
                 poke=lambda: [c.get("/v1/leaderboards/%s/entries?limit=1" % b) for b in boards], every=0.1)
        paths = [path_of(b, p, i) for b in boards
                 for i, p in enumerate(["p%03d" % i for i in range(0, 90, 5)] + ["nobody"])]
        expected = {p: strong(c, p) for p in paths}
        assert expected[paths[1]][0] == 404 and expected[paths[-1]][0] == 404
        assert all(c.get(p).body == expected[p][1] for p in paths)  # one at a time
        clients = [inst.client(None) for _ in paths]
        merged_before = metric(c, "rankd_redis_pipe_merged_total")
        from_pg = metric(c, "rankd_reads_postgres_total")
        for _ in range(30):
            from_redis = metric(c, "rankd_reads_redis_total")
            got, errors = {}, []
            start = threading.Barrier(len(paths))

            def read(cl, path):
                try:
                    start.wait(10)
                    r = cl.get(path)
                    got[path] = (r.status, r.body)
                except Exception as e:  # a hung request must fail the test, not vanish
                    errors.append((path, repr(e)))
            threads = [threading.Thread(target=read, args=(cl, p)) for cl, p in zip(clients, paths)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert not errors, errors
            assert got == expected
            # Every answer came from Redis: a merged reply that failed would have gone to
            # PostgreSQL, which answers the same.
            assert metric(c, "rankd_reads_redis_total") - from_redis == len(paths)
            assert metric(c, "rankd_reads_postgres_total") == from_pg
            if metric(c, "rankd_redis_pipe_merged_total") > merged_before:
                break
        assert metric(c, "rankd_redis_pipe_merged_total") > merged_before, "no reads were ever merged"
    finally:
        for x in [c, admin, w] + clients:
            x.close()
