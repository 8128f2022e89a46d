"""
tests/e2e/test_previous_rank.py — `previous_rank` on submission answers (API.md, "The rank of a
score"): the player's rank just before the submission, null for a first standing, whether or not
the submission changed anything. Checked against PostgreSQL's standings read before each write,
with Redis (the rank read in the same script that applies the batch) and without it (PostgreSQL's
count of the old place, the batch's own moves taken back); in a batch, every player's first item
counts the standings as the batch found them, and a player's later item the rank its earlier one
answered. A draft completed after a lost answer carries one too.
"""
import json
import random

import pytest

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, batch, create_board, metric, stored_key, submit, unique,
                      wait_for)


def ranks_now(db, board):
    """{player: rank} of the board's current window, as API.md orders standings."""
    rows = db.query("SELECT s.player_id FROM standings s JOIN boards b ON b.gen = s.board_gen WHERE b.id = %s"
                    " ORDER BY s.sort_key, s.achieved_ms, s.player_id COLLATE \"C\"", (board,))
    return {r[0]: i + 1 for i, r in enumerate(rows)}


def warm(inst, c, board):
    """Wait until the board's window is read from Redis: the writer then ranks there too."""
    def from_redis():
        before = metric(inst, "rankd_reads_redis_total")
        return c.get("/v1/leaderboards/%s/players/p00" % board).status == 200 and \
            metric(inst, "rankd_reads_redis_total") > before
    wait_for(from_redis, "the window loaded into Redis", timeout=30)


@pytest.mark.parametrize("mode", ["redis", "no_redis"])
@pytest.mark.parametrize("operator", ["best", "latest"])
def test_previous_rank_is_the_rank_just_before_each_submission(rankd_factory, db, mode, operator):
    inst = rankd_factory(redis=mode == "redis")
    admin, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY)
    board = create_board(admin, unique("prv"), sort="desc", operator=operator)["id"]
    rng = random.Random(7)
    r = batch(w, [{"board": board, "player_id": "p%02d" % i, "score": rng.randint(0, 40)} for i in range(30)])
    assert r.status == 200, r.describe()
    if mode == "redis":
        warm(inst, c, board)
    for step in range(60):
        player = "p%02d" % rng.randint(0, 34)  # now and then a first standing
        before = ranks_now(db, board)
        got = submit(w, board, player, rng.choice([rng.randint(0, 40), 20, 20]))
        assert got.status == 200, got.describe()
        a = got.json()
        assert a["previous_rank"] == before.get(player), (step, player, a)
        assert a["rank"] == ranks_now(db, board)[player], (step, a)
        if not a["updated"]:
            assert a["previous_rank"] == a["rank"], a


@pytest.mark.parametrize("mode", ["redis", "no_redis"])
def test_previous_rank_in_a_batch_counts_the_standings_the_batch_found(rankd_factory, db, mode):
    inst = rankd_factory(redis=mode == "redis")
    admin, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY)
    board = create_board(admin, unique("prb"), sort="desc", operator="best")["id"]
    r = batch(w, [{"board": board, "player_id": "p%02d" % i, "score": 10 * i} for i in range(10)])
    assert r.status == 200, r.describe()
    if mode == "redis":
        warm(inst, c, board)
    before = ranks_now(db, board)
    items = [("p02", 55), ("p05", 95), ("p02", 75), ("new", 65), ("p07", 10), ("p05", 5), ("p02", 99),
             ("p09", 90)]
    r = batch(w, [{"board": board, "player_id": p, "score": s} for p, s in items])
    assert r.status == 200, r.describe()
    answers = r.json()["results"]
    last = {}
    for (player, _), a in zip(items, answers):
        want = last[player] if player in last else before.get(player)
        assert a["previous_rank"] == want, (player, a, before)
        last[player] = a["rank"]
    assert answers[3]["previous_rank"] is None  # a first standing
    assert answers[4]["updated"] is False and answers[4]["previous_rank"] == before["p07"]
    after = ranks_now(db, board)
    assert [a["rank"] for a in answers if a is answers[-1] or a is answers[6]] == [after["p02"], after["p09"]]


def test_previous_rank_of_a_draft_completed_after_a_lost_answer(rankd_factory, db):
    """The draft stored with the batch holds the old place; its replay ranks that place now, as
    its rank is the player's rank now (test_api's drafts)."""
    inst = rankd_factory()
    admin, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    board = create_board(admin, unique("prd"), sort="desc", operator="best")["id"]
    for p, s in (("a", 50), ("b", 40), ("p", 30)):
        assert submit(w, board, p, s).status == 200
    key = "k-" + unique("d")
    body = {"player_id": "p", "score": 45}
    r1 = w.post("/v1/leaderboards/%s/scores" % board, json_body=body, headers={"Idempotency-Key": key})
    assert r1.status == 200, r1.describe()
    first = r1.json()
    assert (first["rank"], first["previous_rank"]) == (2, 3), first
    draft = db.query("SELECT k.draft FROM idempotency_keys k JOIN boards b ON b.gen = k.board_gen "
                     "WHERE b.id = %s AND k.key = %s", (board, stored_key(key)))[0][0]
    assert '"rank":0,"previous_rank":{"ms":' in draft, draft
    db.query("UPDATE idempotency_keys k SET response = NULL FROM boards b "
             "WHERE b.gen = k.board_gen AND b.id = %s AND k.key = %s", (board, stored_key(key)))
    # Two players pass p's old place (30) since: it ranks 5th now, p itself being ahead of it.
    assert submit(w, board, "c", 35).status == 200
    assert submit(w, board, "d", 44).status == 200
    r2 = w.post("/v1/leaderboards/%s/scores" % board, json_body=body, headers={"Idempotency-Key": key})
    assert r2.status == 200, r2.describe()
    replay = r2.json()
    assert (replay["rank"], replay["previous_rank"]) == (2, 5), replay
    assert json.loads(r2.body) == dict(first, rank=2, previous_rank=5)
