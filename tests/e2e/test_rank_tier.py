"""
tests/e2e/test_rank_tier.py — the in-process rank tier (cache.rank_tier, RANKD_RANK_TIER).

The property test runs two instances with the tier on (and no response cache, so that every
read is computed), both holding the window before the writes begin. Writers submit through
either instance while readers read pages, ranks and around-me from either; in the middle a
player is deleted, Redis restarts, the listeners' PostgreSQL sessions are cut and the window's
transaction number jumps (a gap in the stream). Checked:
- read-your-writes: after an instance acknowledges a submission, its next read of the player
  shows it (the tier answers only once it holds every write that instance made);
- every answer read meanwhile is a possible one: ranks contiguous, entries in rank order, and
  every score shown is one the player was given (or its current one);
- a deleted player is gone from the deleting instance's next read, and from the other's once
  it heard the deletion;
- once the writers stop, every page of either instance equals PostgreSQL's standings, and the
  tier answered most reads and loaded the window again after each event that called for it.
"""

import datetime
import random
import threading
import urllib.parse

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, create_board, metric, series, submit, unique, wait_for)
from test_archive import Clock

TIER = {"RANKD_RANK_TIER": "67108864", "RANKD_CACHE_BYTES": "0"}


def pg_order(db, board):
    """The board's standings in rank order, as (player, score) (a board of one window)."""
    return [tuple(r) for r in db.query(
        "SELECT s.player_id, s.score FROM standings s JOIN boards b ON b.gen = s.board_gen WHERE b.id = %s"
        " ORDER BY s.sort_key, s.achieved_ms, s.player_id COLLATE \"C\"", (board,))]


def read_all(c, board):
    out, off = [], 0
    while True:
        r = c.get("/v1/leaderboards/%s/entries?limit=1000&offset=%d" % (board, off))
        assert r.status == 200, r.describe()
        page = r.json()
        out += [(e["player_id"], e["score"]) for e in page["entries"]]
        off += 1000
        if off >= page["total"]:
            assert len(out) == page["total"], (len(out), page["total"])
            return out


def tier_answers(inst, c, board):
    """Read the board until the tier answers a read of it (the first read asks for the window)."""
    def answered():
        before = metric(inst, "rankd_reads_tier_total")
        assert c.get("/v1/leaderboards/%s/entries?limit=1" % board).status == 200
        return metric(inst, "rankd_reads_tier_total") > before
    wait_for(answered, "the rank tier answering reads of " + board, timeout=30)


def check_page(page, history, lock):
    """A page read while writes go on: contiguous ranks, rank order, scores the players had."""
    ents = page["entries"]
    for a, b in zip(ents, ents[1:]):  # a `desc` board: score down, then achieved_at up, then id
        assert b["rank"] == a["rank"] + 1, page
        assert (-a["score"], a["achieved_at"], a["player_id"]) < (-b["score"], b["achieved_at"], b["player_id"]), \
            ("order", a, b)
    with lock:
        for e in ents:
            assert e["score"] in history.get(e["player_id"], ()), ("a score never given", e)
        assert all(e["rank"] <= page["total"] for e in ents), page


def test_two_instances_follow_every_write(rankd_factory, private_redis, db):
    a = rankd_factory(redis=private_redis.url(0), env=TIER)
    b = rankd_factory(redis=private_redis.url(0), env=TIER)
    admin = a.client(ADMIN_KEY)
    board = create_board(admin, unique("tier"), sort="desc", operator="latest")["id"]
    rng = random.Random(30)
    players = ["t%03d" % i for i in range(240)]
    history = {}  # player -> every score given (a read may show any of them while writes go on)
    lock = threading.Lock()
    w = a.client(WRITE_KEY)
    for p in players:
        s = rng.randint(0, 50)  # few values: many ties, broken by achieved_at and id
        assert submit(w, board, p, s).status == 200
        history[p] = {s}
    w.close()
    readers = {x: x.client(READ_KEY) for x in (a, b)}
    for x in (a, b):
        tier_answers(x, readers[x], board)
    reloads0 = {x: metric(x, "rankd_rank_tier_reloads_total") for x in (a, b)}

    stop = threading.Event()
    errors = []

    def writer(inst, mine, seed):
        r = random.Random(seed)
        cw, cr = inst.client(WRITE_KEY), inst.client(READ_KEY)
        try:
            while not stop.is_set():
                p = r.choice(mine)
                s = r.randint(0, 50)
                with lock:
                    history[p].add(s)
                resp = submit(cw, board, p, s)
                if resp.status != 200:
                    continue  # a 503 while PostgreSQL's sessions were cut: not acknowledged
                got = cr.get("/v1/leaderboards/%s/players/%s" % (board, p))
                assert got.status == 200, got.describe()
                assert got.json()["score"] == s, ("read-your-writes", inst.port, p, s, got.json())
        except AssertionError as e:
            errors.append(e)
        finally:
            cw.close()
            cr.close()

    def reader(seed):
        r = random.Random(seed)
        cs = {x: x.client(READ_KEY) for x in (a, b)}
        try:
            while not stop.is_set():
                x = r.choice((a, b))
                if r.random() < 0.5:
                    resp = cs[x].get("/v1/leaderboards/%s/entries?limit=%d&offset=%d" % (board, r.randint(1, 60),
                                                                                          r.randint(0, 230)))
                else:
                    resp = cs[x].get("/v1/leaderboards/%s/players/%s/around?before=5&after=5" % (
                        board, r.choice(players[:-2])))
                if resp.status == 404:
                    continue  # around a player deleted meanwhile
                assert resp.status == 200, resp.describe()
                check_page(resp.json(), history, lock)
        except AssertionError as e:
            errors.append(e)
        finally:
            for c in cs.values():
                c.close()

    # Disjoint players per writer: each one's last acknowledged score is the player's.
    groups = [players[i::4] for i in range(4)]
    deleted = players[-1]
    for g in groups:
        if deleted in g:
            g.remove(deleted)
    threads = [threading.Thread(target=writer, args=(inst, g, i)) for i, (inst, g) in
               enumerate(zip((a, b, a, b), groups))]
    threads += [threading.Thread(target=reader, args=(100 + i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        def writes_go_on(n=60):
            before = metric(a, "rankd_submissions_total") + metric(b, "rankd_submissions_total")
            wait_for(lambda: metric(a, "rankd_submissions_total") + metric(b, "rankd_submissions_total") >= before + n,
                     "writes going on", timeout=60)

        writes_go_on()
        # A player's deletion: gone from the deleting instance's next read, and from the other's.
        assert admin.delete("/v1/leaderboards/%s/players/%s" % (board, deleted)).status == 204
        assert readers[a].get("/v1/leaderboards/%s/players/%s" % (board, deleted)).status == 404
        wait_for(lambda: readers[b].get("/v1/leaderboards/%s/players/%s" % (board, deleted)).status == 404,
                 "the other instance hearing the deletion", timeout=30)
        writes_go_on()
        # Redis restarts: the tier does not read it.
        private_redis.stop()
        writes_go_on(20)
        private_redis.start()
        writes_go_on()
        # The listeners' sessions are cut: notices may be lost, so every window loads again.
        # (The listener's session last ran its LISTEN or a heartbeat to its own channel.)
        cut = db.query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                       " WHERE query LIKE 'LISTEN rankd_l1%' OR query LIKE 'NOTIFY rankd_hb_%'")[0][0]
        assert cut == 2, "%d listener sessions cut, not one per instance" % cut
        writes_go_on()
        # A gap in the stream: the window's number jumps past one no notice carries.
        db.query("UPDATE window_counts c SET seq = seq + 1 FROM boards b WHERE b.gen = c.board_gen AND b.id = %s",
                 (board,))
        writes_go_on()
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors[:3]

    want = pg_order(db, board)
    assert deleted not in [p for p, _ in want]
    for x in (a, b):
        wait_for(lambda x=x: read_all(readers[x], board) == want, "instance %d agreeing with PostgreSQL" % x.port,
                 timeout=30)
        # Loaded again after the cut session and the gap at least (a deletion reloads nothing).
        assert metric(x, "rankd_rank_tier_reloads_total") >= reloads0[x] + 2, x.port
        wait_for(lambda x=x: (readers[x].get("/v1/leaderboards/%s/entries?limit=1" % board) and
                              series(x, "rankd_rank_tier_windows", state="ready") == 1),
                 "instance %d's tier holding the window again" % x.port, timeout=30)
        # The instance's own check of its tier against PostgreSQL, at one transaction number.
        v = admin.post("/v1/admin/verify-tier?board=" + board, json_body={}, key=ADMIN_KEY) if x is a else \
            x.client(ADMIN_KEY).post("/v1/admin/verify-tier?board=" + board, json_body={})
        assert v.status == 200, v.describe()
        assert v.json()["agrees"] == 1 and v.json()["differs"] == 0, v.json()
        before = metric(x, "rankd_reads_tier_total")
        assert read_all(readers[x], board) == want
        assert metric(x, "rankd_reads_tier_total") > before, "the last reads were the tier's"
        assert x.alive, x.stderr_tail()
    for c in readers.values():
        c.close()
    admin.close()


def test_a_window_larger_than_the_budget_is_not_kept(rankd_factory, db):
    inst = rankd_factory(redis=True, env={"RANKD_RANK_TIER": "65536", "RANKD_CACHE_BYTES": "0"})
    admin = inst.client(ADMIN_KEY)
    board = create_board(admin, unique("tier-big"), sort="asc", operator="best")["id"]
    items = [{"board": board, "player_id": "p%05d" % i, "score": i % 97} for i in range(3000)]
    for k in range(0, len(items), 1000):
        r = admin.post("/v1/scores:batch", json_body={"scores": items[k:k + 1000]}, key=WRITE_KEY)
        assert r.status == 200, r.describe()
    c = inst.client(READ_KEY)
    small = create_board(admin, unique("tier-small"))["id"]
    assert submit(inst.client(WRITE_KEY), small, "only", 1).status == 200
    tier_answers(inst, c, small)
    wait_for(lambda: metric(inst, "rankd_rank_tier_too_big_total") >= 1, "the window found too big", timeout=30,
             poke=lambda: c.get("/v1/leaderboards/%s/entries?limit=5" % board))
    assert metric(inst, "rankd_rank_tier_bytes") <= 65536
    # The small window stays: a window too big alone is dropped, not the others for it.
    before = metric(inst, "rankd_reads_tier_total")
    assert c.get("/v1/leaderboards/%s/entries" % small).status == 200
    assert metric(inst, "rankd_reads_tier_total") == before + 1
    v = admin.post("/v1/admin/verify-tier", json_body={})
    assert v.status == 200, v.describe()
    assert v.json()["agrees"] == 1 and v.json()["differs"] == 0, v.json()  # the small window only
    assert read_all(c, board) == pg_order(db, board)  # from Redis
    assert inst.alive, inst.stderr_tail()
    c.close()
    admin.close()


def test_reads_name_players_with_spaces_in_their_metadata(rankd_factory, db):
    """Metadata rides in the notices after the player id: spaces, quotes and unicode in it."""
    inst = rankd_factory(redis=True, env=TIER)
    admin = inst.client(ADMIN_KEY)
    board = create_board(admin, unique("tier-md"), operator="latest")["id"]
    w = inst.client(WRITE_KEY)
    assert submit(w, board, "first", 1).status == 200
    c = inst.client(READ_KEY)
    tier_answers(inst, c, board)
    md = {"name": "a b  c", "q": "\"x\" y", "u": "\u00e9t\u00e9 \u2603"}
    assert submit(w, board, "m.d", 5, metadata=md).status == 200
    assert submit(w, board, "plain", 3).status == 200
    before = metric(inst, "rankd_reads_tier_total")
    got = c.get("/v1/leaderboards/%s/players/%s/around?before=3&after=3" % (board, urllib.parse.quote("m.d")))
    assert got.status == 200, got.describe()
    ents = got.json()["entries"]
    assert [e["player_id"] for e in ents] == ["m.d", "plain", "first"]
    assert ents[0]["metadata"] == md
    assert ents[1].get("metadata") is None
    assert metric(inst, "rankd_reads_tier_total") > before
    w.close()
    c.close()
    admin.close()


def test_a_rollover_moves_the_tier_to_the_new_window(rankd_factory, db, tmp_root):
    """Across a daily reset: the tier answers the new window (loaded empty at its first read) and
    the previous one until it is archived; then the archive answers the previous window."""
    from test_archive import GRACE_MS, GUARD_TIMEOUT_MS, Clock, day_ms
    boundary = datetime.date(2029, 3, 1)
    clock = Clock(tmp_root)
    clock.set(day_ms(boundary) - 20000)
    env = dict(TIER, **clock.env())
    cfg = {"postgres": {"statement_timeout_ms": GUARD_TIMEOUT_MS}}
    a = rankd_factory(env=env, extra_config=cfg)
    b = rankd_factory(env=env, extra_config=cfg)
    admin = a.client(ADMIN_KEY)
    board = create_board(admin, unique("tier-day"), reset="daily", operator="best")["id"]
    wa, wb = a.client(WRITE_KEY), b.client(WRITE_KEY)
    ca, cb = a.client(READ_KEY), b.client(READ_KEY)
    for i in range(30):
        assert submit(wa if i % 2 else wb, board, "d%02d" % i, i % 7).status == 200
    for x, c in ((a, ca), (b, cb)):
        tier_answers(x, c, board)
    old = db.query("SELECT min(win)::text FROM standings s JOIN boards b ON b.gen = s.board_gen WHERE b.id = %s",
                   (board,))[0][0]
    want_old = pg_order(db, board)
    assert len(want_old) == 30

    clock.set(day_ms(boundary) + 200)  # midnight, once both instances' clocks have followed
    for c in (ca, cb):
        wait_for(lambda c=c: c.get("/v1/leaderboards/" + board).json()["current_window"] == boundary.isoformat(),
                 "the instance's clock past midnight", timeout=30)
    for i in range(12):
        assert submit(wb if i % 2 else wa, board, "n%02d" % i, i % 5).status == 200
    new_want = pg_order_window(db, board, boundary.isoformat())
    assert len(new_want) == 12
    for x, c in ((a, ca), (b, cb)):
        tier_answers(x, c, board)  # the new window, asked for at its first read
        before = metric(x, "rankd_reads_tier_total")
        assert read_all(c, board) == new_want
        assert read_window(c, board, "previous") == want_old
        assert metric(x, "rankd_reads_tier_total") >= before + 2, "both windows from the tier"
    # A write to the new window through one instance is seen by both.
    assert submit(wa, board, "n00", 99).status == 200
    new_want = pg_order_window(db, board, boundary.isoformat())
    for c in (ca, cb):
        wait_for(lambda c=c: read_all(c, board) == new_want, "the new window's write on both instances", timeout=30)

    clock.set(day_ms(boundary) + GRACE_MS + 1000)  # archived: the archive answers the old window
    wait_for(lambda: db.query("SELECT count(*) FROM archived_windows w JOIN boards b ON b.gen = w.board_gen"
                              " WHERE b.id = %s", (board,))[0][0] == 1, "the archive", timeout=30)
    for x, c in ((a, ca), (b, cb)):
        assert read_window(c, board, old) == want_old
        assert read_all(c, board) == new_want
        assert x.alive, x.stderr_tail()
    for c in (wa, wb, ca, cb, admin):
        c.close()


def pg_order_window(db, board, win):
    return [tuple(r) for r in db.query(
        "SELECT s.player_id, s.score FROM standings s JOIN boards b ON b.gen = s.board_gen WHERE b.id = %s"
        " AND s.win = %s::date ORDER BY s.sort_key, s.achieved_ms, s.player_id COLLATE \"C\"", (board, win))]


def read_window(c, board, win):
    r = c.get("/v1/leaderboards/%s/entries?limit=1000&window=%s" % (board, win))
    assert r.status == 200, r.describe()
    return [(e["player_id"], e["score"]) for e in r.json()["entries"]]


def test_a_player_deletion_changes_that_players_windows_only(rankd_factory, private_redis, db, pg_server):
    """Before: a player's deletion told every instance "B gen", as a board's deletion does: each
    dropped the board from its board catalog, its response cache and its rank tier, and (with
    the deletion's "P" notices) stopped trusting the window's Redis copy. So the other
    instance's tier loaded the window again, and with PostgreSQL unreachable its reads of the
    board answered 503 until PostgreSQL came back. Now the deletion is one numbered change of
    each window the player stood in, as a write is: every instance takes the player out of its
    tier's window (no reload) and drops that window's cached answers (every one shows the
    window's total, and the ranks after the player's moved up); Redis loses the member, and the
    board stays in every catalog. Instance b, whose PostgreSQL goes through a fault proxy,
    keeps answering other players' ranks (from its tier, then from Redis with PostgreSQL
    unreachable), and the deleted player is 404 on both."""
    import re
    from faultproxy import FaultProxy
    proxy = FaultProxy(("127.0.0.1", pg_server.port)).start()
    try:
        a = rankd_factory(redis=private_redis.url(0), env=TIER)
        b = rankd_factory(redis=private_redis.url(0), env=dict(TIER, RANKD_CACHE_BYTES="8388608"),
                          extra_config={"postgres": {"primary": re.sub(r"port=\d+", "port=%d" % proxy.port,
                                                                         db.dsn, count=1)}})
        admin = a.client(ADMIN_KEY)
        board = create_board(admin, unique("tier-del"), sort="desc", operator="best")["id"]
        other = create_board(admin, unique("tier-other"), sort="desc", operator="best")["id"]
        w = a.client(WRITE_KEY)
        players = ["p%02d" % i for i in range(30)]
        for i, p in enumerate(players):  # p00 first (300 points) ... p29 last
            assert submit(w, board, p, 300 - 10 * i).status == 200
            assert submit(w, other, p, 300 - 10 * i).status == 200
        ca, cb = a.client(READ_KEY), b.client(READ_KEY)
        for x, c in ((a, ca), (b, cb)):
            tier_answers(x, c, board)
            tier_answers(x, c, other)
        wait_for(lambda: metric(b, "rankd_redis_windows_verified_total") >= 2, "b trusting Redis's windows", timeout=30,
                 poke=lambda: cb.get("/v1/leaderboards/%s/entries?limit=1&rank_style=dense" % board))

        def rank(c, board_id, p):
            r = c.get("/v1/leaderboards/%s/players/%s" % (board_id, p))
            return r.json()["rank"] if r.status == 200 else r.status

        assert rank(cb, board, "p20") == 21
        page = cb.get("/v1/leaderboards/%s/entries?limit=30" % board).json()  # cached by b
        assert page["total"] == 30
        loads = {x: (metric(x, "rankd_rank_tier_loads_total"), metric(x, "rankd_rank_tier_reloads_total"))
                 for x in (a, b)}

        assert admin.delete("/v1/leaderboards/%s/players/p10" % board).status == 204
        assert rank(ca, board, "p10") == 404
        wait_for(lambda: rank(cb, board, "p10") == 404, "b hearing the deletion", timeout=30)
        # Every rank after the deleted player's moved up, on both, from the tier.
        for x, c in ((a, ca), (b, cb)):
            before = metric(x, "rankd_reads_tier_total")
            assert rank(c, board, "p20") == 20 and rank(c, board, "p05") == 6
            assert rank(c, other, "p10") == 11 and rank(c, other, "p20") == 21
            page = c.get("/v1/leaderboards/%s/entries?limit=30" % board).json()
            assert page["total"] == 29 and [e["rank"] for e in page["entries"]] == list(range(1, 30))
            assert "p10" not in [e["player_id"] for e in page["entries"]]
            assert metric(x, "rankd_reads_tier_total") >= before + 5, x.port
            # Neither window was dropped or loaded again.
            assert (metric(x, "rankd_rank_tier_loads_total"), metric(x, "rankd_rank_tier_reloads_total")) == \
                loads[x], x.port
            assert series(x, "rankd_rank_tier_windows", state="ready") == 2, x.port
        # PostgreSQL unreachable from b: the board is still in its catalog (once its board cache's
        # second is over, the board comes from there), and Redis answers its reads.
        proxy.set("reset")
        fallbacks = metric(b, "rankd_board_catalog_fallbacks_total")
        wait_for(lambda: rank(cb, board, "p20") == 20 and metric(b, "rankd_board_catalog_fallbacks_total") > fallbacks,
                 "b answering from its catalog and Redis without PostgreSQL", timeout=30)
        assert rank(cb, board, "p10") == 404
        assert rank(cb, other, "p10") == 11
        r = cb.get("/v1/leaderboards/%s/entries?limit=30" % board)
        assert r.status == 200 and r.json()["total"] == 29, r.describe()
        proxy.set("pass")
        for c in (w, ca, cb, admin):
            c.close()
        assert a.alive and b.alive
    finally:
        proxy.stop()


def tier_read(inst, read):
    """Whether the tier answered read() (a read of one window)."""
    before = metric(inst, "rankd_reads_tier_total")
    read()
    return metric(inst, "rankd_reads_tier_total") > before


def test_a_player_deletion_leaves_the_boards_other_windows_alone(rankd_factory, db, tmp_root):
    """A daily board's previous window (the victim played then) and current one (they did not),
    both in both instances' tiers: the deletion takes the victim out of the previous window on
    both, from the stream (no window is loaded again), and the current window is not touched.
    Before: every window of the board went from every tier ("B gen")."""
    from test_archive import Clock, day_ms
    boundary = datetime.date(2029, 4, 1)
    clock = Clock(tmp_root)
    clock.set(day_ms(boundary) - 20000)
    env = dict(TIER, **clock.env())
    # The previous window is archived 2 x the statement timeout + 5 s after midnight, and then
    # read from its archive, not from the tier: 65 s, longer than this test takes.
    cfg = {"postgres": {"statement_timeout_ms": 30000}}
    a = rankd_factory(env=env, extra_config=cfg)
    b = rankd_factory(env=env, extra_config=cfg)
    admin = a.client(ADMIN_KEY)
    board = create_board(admin, unique("tier-days"), reset="daily", operator="best")["id"]
    wa = a.client(WRITE_KEY)
    ca, cb = a.client(READ_KEY), b.client(READ_KEY)
    for i in range(20):
        assert submit(wa, board, "d%02d" % i, 100 - i).status == 200
    clock.set(day_ms(boundary) + 200)  # midnight: the window above is the previous one now
    for c in (ca, cb):
        wait_for(lambda c=c: c.get("/v1/leaderboards/" + board).json()["current_window"] == boundary.isoformat(),
                 "the instance's clock past midnight", timeout=30)
    for i in range(10):
        assert submit(wa, board, "n%02d" % i, 50 - i).status == 200
    current = pg_order_window(db, board, boundary.isoformat())
    for x, c in ((a, ca), (b, cb)):
        tier_answers(x, c, board)
        wait_for(lambda x=x, c=c: (read_window(c, board, "previous") == [("d%02d" % i, 100 - i) for i in range(20)]
                                   and tier_read(x, lambda: read_window(c, board, "previous"))),
                 "the previous window in the tier", timeout=30)
    reloads = {x: metric(x, "rankd_rank_tier_reloads_total") for x in (a, b)}
    assert admin.delete("/v1/leaderboards/%s/players/d05" % board).status == 204
    previous = [("d%02d" % i, 100 - i) for i in range(20) if i != 5]
    for x, c in ((a, ca), (b, cb)):
        wait_for(lambda c=c: read_window(c, board, "previous") == previous, "the previous window without d05",
                 timeout=30)
        before = metric(x, "rankd_reads_tier_total")
        r = c.get("/v1/leaderboards/%s/players/d10?window=previous" % board)
        assert r.status == 200 and r.json()["rank"] == 10, r.describe()
        assert c.get("/v1/leaderboards/%s/players/d05?window=previous" % board).status == 404
        assert read_all(c, board) == current
        assert metric(x, "rankd_reads_tier_total") >= before + 3, x.port
        # No window was distrusted and loaded again (before: the previous window was, on "P").
        assert metric(x, "rankd_rank_tier_reloads_total") == reloads[x], x.port
        assert x.alive, x.stderr_tail()
    for c in (wa, ca, cb, admin):
        c.close()


def test_a_window_too_big_is_not_loaded_again_until_it_changes(rankd_factory, db, tmp_root):
    """Before: a window alone larger than the budget was asked for again 30 s after it was found
    too big, at its next read: loaded again (a scan of the primary), found too big, thrown away,
    every 30 s for as long as it was read. Now the tier remembers it does not fit (state
    too_big) until the window changes wholesale (an import here); the budget is set at
    start-up. The wall clock is the test's: moved a minute at a time."""
    from conftest import now_ms, parse_ts, submit_ok
    import itertools
    scores = itertools.count(1)
    clock = Clock(tmp_root)
    t0 = now_ms()
    clock.set(t0)
    inst = rankd_factory(redis=True, env=dict(clock.env(), RANKD_RANK_TIER="65536", RANKD_CACHE_BYTES="0",
                                              RANKD_REFRESH_INTERVAL_S="0"))
    admin, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    board = create_board(admin, unique("tier-big"), sort="asc", operator="best")["id"]
    items = [{"board": board, "player_id": "p%05d" % i, "score": i % 97} for i in range(3000)]
    for k in range(0, len(items), 1000):
        r = admin.post("/v1/scores:batch", json_body={"scores": items[k:k + 1000]}, key=WRITE_KEY)
        assert r.status == 200, r.describe()
    ticks = create_board(admin, unique("tier-clock"), operator="latest")["id"]  # shows rankd's clock
    c = inst.client(READ_KEY)

    def read_big():
        assert c.get("/v1/leaderboards/%s/players/p00007" % board).status == 200

    def minute_later(k):
        target = t0 + k * 60000
        clock.set(target)
        wait_for(lambda: parse_ts(submit_ok(w, ticks, "t", next(scores))["achieved_at"]) >= target,
                 "rankd's clock moved")
        read_big()  # a read asks for a load there and then (no I/O): the state shows it at once
        wait_for(lambda: metric(inst, "rankd_rank_tier_loads_total") > loads or
                 series(inst, "rankd_rank_tier_windows", state="too_big") == 1, "the read's outcome")

    def settled():
        return (series(inst, "rankd_rank_tier_windows", state="too_big") == 1 and
                series(inst, "rankd_rank_tier_windows", state="loading") == 0)

    wait_for(lambda: metric(inst, "rankd_rank_tier_too_big_total") >= 1, "the window found too big", timeout=30,
             poke=read_big)
    loads, too_big = metric(inst, "rankd_rank_tier_loads_total"), metric(inst, "rankd_rank_tier_too_big_total")
    for k in range(1, 4):
        minute_later(k)
        assert metric(inst, "rankd_rank_tier_loads_total") == loads, "loaded again %d minute(s) on" % k
        assert metric(inst, "rankd_rank_tier_too_big_total") == too_big
        assert settled()
    # An import changes the window wholesale: it may fit now, so it is loaded again (and is still
    # too big). (A player's deletion is one change of the window, as a write is: no reload.)
    r = admin.request("POST", "/v1/leaderboards/%s/import" % board, body=b"player_id,score\nq00001,5\n",
                      content_type="text/csv")
    assert r.status == 200, r.describe()
    wait_for(lambda: metric(inst, "rankd_rank_tier_too_big_total") > too_big and settled(),
             "the changed window tried again", timeout=30, poke=read_big)
    loads = metric(inst, "rankd_rank_tier_loads_total")
    minute_later(4)
    assert metric(inst, "rankd_rank_tier_loads_total") == loads, "loaded again after the change had been tried"
    assert inst.alive, inst.stderr_tail()
    for x in (c, w, admin):
        x.close()


def test_a_stalled_listener_stops_the_tier_within_the_max_age(rankd_factory, private_redis, db, pg_server):
    """Another instance's writes reach the tier only through the listener's session. Before: when
    that session stalled without TCP saying so (here: a proxy that holds every byte, and answers
    keepalives), the tier went on answering the ranks it had, for as long as the stall lasted,
    while Redis had the new ones. Now the listener sends itself a heartbeat, and the tier answers
    only while one came back within http.cache_max_age (1 s here): past it, Redis answers."""
    import re
    from faultproxy import FaultProxy
    proxy = FaultProxy(("127.0.0.1", pg_server.port)).start()
    try:
        a = rankd_factory(redis=private_redis.url(0), env=TIER)
        b = rankd_factory(redis=private_redis.url(0), env=TIER,
                          extra_config={"postgres": {"listener": re.sub(r"port=\d+", "port=%d" % proxy.port, db.dsn)}})
        admin, w = a.client(ADMIN_KEY), a.client(WRITE_KEY)
        board = create_board(admin, unique("tier-stall"), operator="latest")["id"]
        for i in range(20):
            assert submit(w, board, "s%02d" % i, i).status == 200
        cb = b.client(READ_KEY)
        tier_answers(b, cb, board)

        def score():
            r = cb.get("/v1/leaderboards/%s/players/s07" % board)
            assert r.status == 200, r.describe()
            return r.json()["score"]
        assert score() == 7
        proxy.set("stall")
        assert submit(w, board, "s07", 1007).status == 200  # on the other instance: Redis has it at once
        wait_for(lambda: score() == 1007, "the second instance's read of s07 showing the write", timeout=1 + 4)
        assert metric(b, "rankd_rank_tier_stale_total") > 0  # refused by the tier, answered by Redis
        # A stall that lasts: the heartbeat not back in 10 s, the listener drops the session (the
        # tier stops and will load its windows again) and makes a new one once it can.
        wait_for(lambda: metric(b, "rankd_rank_tier_listening") == 0, "the stalled session dropped", timeout=30)
        assert score() == 1007
        proxy.set("pass")
        tier_answers(b, cb, board)
        assert score() == 1007
        assert b.alive and a.alive
        for x in (cb, w, admin):
            x.close()
    finally:
        proxy.stop()
