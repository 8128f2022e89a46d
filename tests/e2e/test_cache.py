"""The in-process response cache (L1): hits, exact invalidation, and no stale
answer across instances.

Every instance here runs with a cache max-age of 30 s, so an answer that is
fresh can only be fresh because a write invalidated it, never because its
entry expired. Every cached answer is compared with the same read made with
consistency=strong, which bypasses every cache and reads the primary.
"""
import random
import time

from conftest import ADMIN_KEY, WRITE_KEY, create_board, submit_ok, unique

LONG_TTL = {"http": {"cache_max_age": 30}}


def metric(client, name):
    for line in client.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("metric %s not exported" % name)


def strong(client, path):
    sep = "&" if "?" in path else "?"
    r = client.get(path + sep + "consistency=strong")
    return r.status, r.body


def same_as_primary(client, path):
    r = client.get(path)
    return (r.status, r.body) == strong(client, path)


def wait_fresh(client, path, bound_s=0.5):
    """Poll until the answer equals the primary's; fails after bound_s (well under the 30 s max-age)."""
    deadline = time.time() + bound_s
    while not same_as_primary(client, path):
        assert time.time() < deadline, "%s still stale %.1f s after the write" % (path, bound_s)
        time.sleep(0.01)


def seed(client, board, n):
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
        seed(w, bid, 40)
        top = "/v1/leaderboards/%s/entries?limit=10" % bid
        first = c.get(top)
        hits = metric(c, "rankd_l1_hits_total")
        again = c.get(top)
        assert again.body == first.body and again.header("ETag") == first.header("ETag")
        assert metric(c, "rankd_l1_hits_total") >= hits + 1, "a repeated read was not a cache hit"

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
        seed(wa, bid, 30)
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
        seed(w, bid, 5)
        top = "/v1/leaderboards/%s/entries" % bid
        c.get(top)
        assert metric(c, "rankd_l1_entries") == 0
        submit_ok(w, bid, unique("x"), 99999)
        assert same_as_primary(c, top)
    finally:
        for x in (c, admin, w):
            x.close()
