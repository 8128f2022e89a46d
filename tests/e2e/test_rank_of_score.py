"""
tests/e2e/test_rank_of_score.py — GET /v1/leaderboards/{board}/rank?score=X (API.md, "The rank of
a score"): the rank a submission of X made now would take, after every standing with a better or
equal score, against a model computed from PostgreSQL's standings, on every path: Redis, the rank
tier, PostgreSQL alone, and a closed window's archive. Bad scores are refused with field "score";
a cached answer goes when a write moves a standing past the score.
"""
import datetime
import math
import random

import pytest

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, assert_error, batch, create_board, metric, submit, unique,
                      wait_for)

MAX = 9007199254740991


def model_rank(scores, x, sort):
    """1 + the standings with a score better than or equal to x."""
    better_or_equal = [s for s in scores if (s >= x if sort == "desc" else s <= x)]
    return len(better_or_equal) + 1


def board_scores(db, board, win=None):
    q = ("SELECT s.score FROM standings s JOIN boards b ON b.gen = s.board_gen WHERE b.id = %s"
         + (" AND s.win = %s::date" if win else ""))
    return [r[0] for r in db.query(q, (board, win) if win else (board,))]


def check(c, board, scores, sort, xs, window=None):
    for x in xs:
        r = c.get("/v1/leaderboards/%s/rank?score=%d%s" % (board, x, "&window=" + window if window else ""))
        assert r.status == 200, r.describe()
        got = r.json()
        want = model_rank(scores, x, sort)
        assert (got["rank"], got["total"], got["score"], got["board"]) == (want, len(scores), x, board), (x, got)
        assert abs(got["top_percent"] - math.ceil(want * 10000 / (len(scores) + 1)) / 100) < 1e-9, got


def fill(w, board, rng, n=300):
    items = [{"board": board, "player_id": "s%03d" % i, "score": rng.choice([rng.randint(-50, 50), 7, 7, -3])}
             for i in range(n)]
    items += [{"board": board, "player_id": "edge-hi", "score": MAX}, {"board": board, "player_id": "edge-lo",
                                                                        "score": -MAX}]
    r = batch(w, items)
    assert r.status == 200, r.describe()


@pytest.mark.parametrize("mode", ["redis", "tier", "no_redis"])
@pytest.mark.parametrize("sort", ["desc", "asc"])
def test_the_rank_of_a_score_on_every_path(rankd_factory, db, mode, sort):
    env = {"RANKD_RANK_TIER": "67108864"} if mode == "tier" else None
    inst = rankd_factory(redis=mode != "no_redis", env=env)
    admin, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY)
    board = create_board(admin, unique("ros"), sort=sort, operator="latest")["id"]
    rng = random.Random(31)
    fill(w, board, rng)
    scores = board_scores(db, board)
    xs = sorted(set(scores)) + [x + d for x in (7, -3, 0) for d in (-1, 1)] + [MAX, -MAX, 51, -51]
    if mode == "tier":
        wait_for(lambda: c.get("/v1/leaderboards/%s/rank?score=1" % board).status == 200 and
                 metric(inst, "rankd_reads_tier_total") > 0, "the tier answering", timeout=30)
    if mode == "redis":
        # The fill's window is cold in Redis until its rebuild ends (PostgreSQL answers
        # meanwhile); scores none of xs holds, so no answer of the wait is cached for check.
        probe = iter(range(1000, 1000000))
        wait_for(lambda: c.get("/v1/leaderboards/%s/rank?score=%d" % (board, next(probe))).status == 200 and
                 metric(inst, "rankd_reads_redis_total") > 0, "Redis answering (the window rebuilt)", timeout=30)
    counter = {"redis": "rankd_reads_redis_total", "tier": "rankd_reads_tier_total",
               "no_redis": "rankd_reads_postgres_total"}[mode]
    before = metric(inst, counter)
    check(c, board, scores, sort, xs)
    assert metric(inst, counter) > before, "answered by the %s path" % mode

    # A write that moves a standing past a cached score's rank changes it (the response cache
    # keeps the first answer until then).
    x = 7
    first = c.get("/v1/leaderboards/%s/rank?score=%d" % (board, x)).json()
    better = 40 if sort == "desc" else -40
    worse = -40 if sort == "desc" else 40
    assert submit(w, board, "s000", worse).status == 200
    assert submit(w, board, "s000", better).status == 200
    assert submit(w, board, "new-one", better).status == 200
    scores = board_scores(db, board)
    got = c.get("/v1/leaderboards/%s/rank?score=%d" % (board, x)).json()
    assert got["rank"] == model_rank(scores, x, sort) and got["total"] == len(scores), (first, got)
    assert inst.alive, inst.stderr_tail()
    for cl in (admin, w, c):
        cl.close()


def test_bad_scores_are_refused(rankd_factory):
    inst = rankd_factory()
    admin, c = inst.client(ADMIN_KEY), inst.client(READ_KEY)
    board = create_board(admin, unique("ros-bad"), min_score=0, max_score=1000)["id"]
    for bad in ("", "abc", "1.5", "+3", "01", "1e3", " 1", "9007199254740992", "-9007199254740992", "0x10"):
        assert_error(c.get("/v1/leaderboards/%s/rank?score=%s" % (board, bad.replace(" ", "%20"))), 400,
                     field="score")
    assert_error(c.get("/v1/leaderboards/%s/rank" % board), 400, field="score")
    assert_error(c.get("/v1/leaderboards/%s/rank?score=1&score=2" % board), 400, field="score")
    assert_error(c.get("/v1/leaderboards/%s/rank?score=-1" % board), 400, field="score")  # below min_score
    assert_error(c.get("/v1/leaderboards/%s/rank?score=1001" % board), 400, field="score")  # above max_score
    assert_error(c.get("/v1/leaderboards/nope-%s/rank?score=1" % unique("x")), 404)
    r = c.get("/v1/leaderboards/%s/rank?score=0" % board)
    assert r.status == 200 and r.json()["rank"] == 1 and r.json()["total"] == 0 and r.json()["top_percent"] == 100, \
        r.describe()
    assert c.get("/v1/leaderboards/%s/rank?score=-0" % board).json()["score"] == 0
    admin.close()
    c.close()


def test_a_closed_window_answers_from_its_archive(rankd_factory, db, tmp_root):
    from test_archive import GRACE_MS, GUARD_TIMEOUT_MS, Clock, day_ms
    boundary = datetime.date(2029, 6, 1)
    clock = Clock(tmp_root)
    clock.set(day_ms(boundary) - 20000)
    inst = rankd_factory(env=clock.env(), extra_config={"postgres": {"statement_timeout_ms": GUARD_TIMEOUT_MS}})
    admin, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY)
    board = create_board(admin, unique("ros-day"), reset="daily", sort="desc")["id"]
    fill(w, board, random.Random(6), n=120)
    old = (boundary - datetime.timedelta(days=1)).isoformat()
    scores = board_scores(db, board, old)
    xs = sorted(set(scores))[::7] + [MAX, -MAX, 0]
    clock.set(day_ms(boundary) + GRACE_MS + 1000)
    wait_for(lambda: db.query("SELECT count(*) FROM archived_windows a JOIN boards b ON b.gen = a.board_gen"
                              " WHERE b.id = %s", (board,))[0][0] == 1, "the archive", timeout=30)
    check(c, board, scores, "desc", xs, window=old)
    check(c, board, [], "desc", [0, 5])  # the new window: empty
    r = c.get("/v1/leaderboards/%s/rank?score=0&window=%s" % (board, old))
    assert r.header("Last-Modified"), "a closed window's answer says when it last changed"
    assert inst.alive, inst.stderr_tail()
    for cl in (admin, w, c):
        cl.close()


def test_a_players_standings_in_each_style(rankd_factory, db):
    """GET /v1/players/{player}/standings?rank_style=: each board's rank in the style asked."""
    inst = rankd_factory()
    admin, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY)
    me = unique("me")
    boards = []
    for sort in ("desc", "asc"):
        b = create_board(admin, unique("st-" + sort), sort=sort)["id"]
        # 10 (x2), 8, 8, 5 on both; `me` ties at 8 after the two earlier ones.
        for p, s in (("a", 10), ("b", 10), ("c", 8), ("d", 8), ("e", 5)):
            assert submit(w, b, p, s).status == 200
        assert submit(w, b, me, 8).status == 200
        boards.append((b, sort))
    want = {"desc": {"ordinal": 5, "competition": 3, "dense": 2}, "asc": {"ordinal": 4, "competition": 2,
                                                                         "dense": 2}}
    for style in ("ordinal", "competition", "dense"):
        r = c.get("/v1/players/%s/standings?rank_style=%s" % (me, style))
        assert r.status == 200, r.describe()
        got = {s["board"]: s["rank"] for s in r.json()["standings"]}
        for b, sort in boards:
            assert got[b] == want[sort][style], (style, sort, r.json())
    assert_error(c.get("/v1/players/%s/standings?rank_style=best" % me), 400, field="rank_style")
    for cl in (admin, w, c):
        cl.close()
