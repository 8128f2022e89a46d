"""
tests/e2e/test_leagues.py — league boards (API.md, "Competitions"): a board created with
`cohorts: {"size": N}` and `tiers` places each player's first standing of a window in a cohort of
their tier, first come, first served, never past N (also when 40 first submissions race); a
player's cohort and a cohort's pages are ranked among themselves, in every rank style, checked
against PostgreSQL; at each reset the top `promote` of every cohort move up a tier and the bottom
`relegate` down, from the closed window's final cohort ranks, before the new window places
anyone (two resets under an injected clock). Bad definitions are 400 with their field.
"""
import datetime

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, assert_error, batch, create_board, metric, submit, submit_ok, unique,
                      wait_for)
from test_archive import Clock, day_ms
from test_tournaments import race, racer

TIERS = [{"name": "bronze", "promote": 1, "relegate": 0}, {"name": "silver", "promote": 1, "relegate": 1},
         {"name": "gold", "promote": 0, "relegate": 1}]


def members(db, board, win=None):
    """{player: (tier, cohort)} of the board's league members (of one window when given)."""
    q = ("SELECT m.player_id, m.tier, m.cohort FROM league_members m JOIN boards b ON b.gen = m.board_gen"
         " WHERE b.id = %s" + (" AND m.win = %s::date" if win else ""))
    return {r[0]: (r[1], r[2]) for r in db.query(q, (board, win) if win else (board,))}


def cohort_model(db, board, cohort, style="ordinal"):
    """[(rank, player, score)] of a cohort of the current window, from its standings."""
    rows = db.query("SELECT s.player_id, s.score, s.sort_key FROM league_members m JOIN boards b ON b.gen = m.board_gen"
                    " JOIN standings s ON s.board_gen = m.board_gen AND s.win = m.win AND s.player_id = m.player_id"
                    " WHERE b.id = %s AND m.cohort = %s ORDER BY s.sort_key, s.achieved_ms, s.player_id COLLATE \"C\"",
                    (board, cohort))
    out, keys = [], []
    for i, (p, score, sk) in enumerate(rows):
        if style == "ordinal":
            rank = i + 1
        elif style == "competition":
            rank = 1 + sum(1 for k in keys if k < sk)
        else:
            rank = 1 + len(set(k for k in keys if k < sk))
        keys.append(sk)
        out.append((rank, p, score))
    return out


def test_a_league_board_and_its_refusals(rankd):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = create_board(adm, reset="weekly", cohorts={"size": 5}, tiers=TIERS)
        assert b["cohorts"] == {"size": 5} and b["tiers"] == TIERS, b
        plain = create_board(adm, cohorts={"size": 2})
        assert plain["tiers"] == [{"name": "default", "promote": 0, "relegate": 0}], plain
        bad = [({"cohorts": {"size": 1}}, "cohorts.size"), ({"cohorts": {"size": 1001}}, "cohorts.size"),
               ({"cohorts": 5}, "cohorts.size"), ({"cohorts": {"size": 5, "x": 1}}, "cohorts.size"),
               ({"tiers": TIERS}, "tiers"), ({"cohorts": {"size": 5}, "tiers": []}, "tiers"),
               ({"cohorts": {"size": 5}, "tiers": [{"name": "a"}, {"name": "a"}]}, "tiers"),
               ({"cohorts": {"size": 5}, "tiers": [{"name": "a", "promote": 3, "relegate": 3}]}, "tiers"),
               ({"cohorts": {"size": 5}, "tiers": [{"name": "a", "up": 1}]}, "tiers"),
               ({"cohorts": {"size": 5}, "tiers": [{"name": ""}]}, "tiers"),
               ({"cohorts": {"size": 5}, "tournament": {"duration_s": 60}, "reset": "daily"}, "cohorts")]
        for extra, field in bad:
            body = {"id": unique("lb"), "title": "t", "sort": "desc", "operator": "best", "reset": "none"}
            body.update(extra)
            assert_error(adm.post("/v1/leaderboards", json_body=body), 400, field=field)
        assert_error(adm.patch("/v1/leaderboards/%s" % b["id"], json_body={"cohorts": {"size": 3}}), 400,
                     field="cohorts")
        # A board that is no league has no cohorts to read.
        other = create_board(adm)["id"]
        assert_error(adm.get("/v1/leaderboards/%s/cohorts/1/entries" % other, key=READ_KEY), 404, field="board")
        assert_error(adm.get("/v1/leaderboards/%s/cohorts/0/entries" % b["id"], key=READ_KEY), 400, field="cohort")
        assert_error(adm.get("/v1/leaderboards/%s/cohorts/x/entries" % b["id"], key=READ_KEY), 400, field="cohort")
        assert_error(adm.get("/v1/leaderboards/%s/cohorts/1/entries?limit=0" % b["id"], key=READ_KEY), 400,
                     field="limit")
        assert_error(adm.get("/v1/leaderboards/%s/players/nobody/cohort" % b["id"], key=READ_KEY), 404,
                     field="player_id")
        assert_error(adm.get("/v1/leaderboards/%s/cohorts/1/entries" % b["id"], key=READ_KEY), 404, field="cohort")
        assert_error(adm.post("/v1/leaderboards/%s/import" % b["id"], body=b"p,1\n",
                              headers={"Content-Type": "text/csv"}), 409)
    finally:
        adm.close()


def test_players_fill_cohorts_in_order_and_read_them_ranked(rankd, db):
    adm, w, c = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY), rankd.client(READ_KEY)
    try:
        b = create_board(adm, sort="desc", operator="best", cohorts={"size": 3}, tiers=TIERS)["id"]
        for i, s in enumerate([50, 10, 30, 30, 70, 20, 40]):
            submit_ok(w, b, "p%d" % i, s)
        submit_ok(w, b, "p1", 99)  # not a first standing: placed once
        got = members(db, b)
        assert {p: co for p, (t, co) in got.items()} == {"p0": 1, "p1": 1, "p2": 1, "p3": 2, "p4": 2, "p5": 2,
                                                          "p6": 3}
        assert all(t == 0 for t, _ in got.values())
        r = c.get("/v1/leaderboards/%s/players/p2/cohort" % b)
        assert r.status == 200, r.describe()
        a = r.json()
        assert (a["board"], a["cohort"], a["tier"], a["total"]) == (b, 1, "bronze", 3), a
        assert [(e["rank"], e["player_id"], e["score"]) for e in a["entries"]] == cohort_model(db, b, 1)
        assert "moves" not in a  # the window is not settled
        for style in ("ordinal", "competition", "dense"):
            r = c.get("/v1/leaderboards/%s/cohorts/2/entries?limit=2&offset=1&rank_style=%s" % (b, style))
            assert r.status == 200, r.describe()
            a = r.json()
            assert (a["cohort"], a["tier"], a["total"]) == (2, "bronze", 3), a
            assert [(e["rank"], e["player_id"], e["score"]) for e in a["entries"]] == cohort_model(db, b, 2, style)[1:3]
        # A standing on a league board carries its cohort, its rank there and its tier, in
        # every rank style (PostgreSQL answers it, the global rank from the same snapshot).
        for p_, style in (("p3", "ordinal"), ("p2", "competition"), ("p3", "dense"), ("p6", "ordinal")):
            r = c.get("/v1/leaderboards/%s/players/%s?rank_style=%s" % (b, p_, style))
            assert r.status == 200, r.describe()
            a = r.json()
            co = members(db, b)[p_][1]
            want = [rank for rank, pl, _ in cohort_model(db, b, co, style) if pl == p_][0]
            assert (a["cohort"], a["cohort_rank"], a["tier"]) == (co, want, "bronze"), (p_, style, a)
        # So does the league board's row of the player's standings on every board; a board that
        # is no league has none of the three.
        plain = create_board(adm, sort="desc", operator="best")["id"]
        submit_ok(w, plain, "p3", 5)
        for p_, style in (("p3", "ordinal"), ("p2", "competition"), ("p3", "dense")):
            r = c.get("/v1/players/%s/standings?rank_style=%s" % (p_, style))
            assert r.status == 200, r.describe()
            rows = {s_["board"]: s_ for s_ in r.json()["standings"]}
            co = members(db, b)[p_][1]
            want = [rank for rank, pl, _ in cohort_model(db, b, co, style) if pl == p_][0]
            assert (rows[b]["cohort"], rows[b]["cohort_rank"], rows[b]["tier"]) == (co, want, "bronze"), rows[b]
            single = c.get("/v1/leaderboards/%s/players/%s?rank_style=%s" % (b, p_, style)).json()
            assert rows[b]["rank"] == single["rank"], (rows[b], single)
            if p_ == "p3":
                assert not {"cohort", "cohort_rank", "tier"} & set(rows[plain]), rows[plain]
        # A batch places its new players in arrival order, in the same transaction.
        r = batch(w, [{"board": b, "player_id": "q%d" % i, "score": i} for i in range(4)])
        assert r.status == 200, r.describe()
        got = members(db, b)
        assert [got["q%d" % i][1] for i in range(4)] == [3, 3, 4, 4], got
    finally:
        adm.close()
        w.close()
        c.close()


def test_a_submission_that_reaches_a_settled_window_is_refused(rankd, db):
    """A late submission (received before the reset, written after the window's moves were made)
    is refused as one after the archive: it would change final cohort ranks. Here the window is
    made to look settled."""
    adm, w = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY)
    try:
        board = create_board(adm, reset="daily", cohorts={"size": 4})
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (board["id"],))[0][0]
        submit_ok(w, board["id"], "early", 5)
        db.query("UPDATE league_windows SET settled = true WHERE board_gen = %s", (gen,))
        late = batch(w, [{"board": board["id"], "player_id": "late", "score": 7}]).json()["results"][0]
        assert late["error"]["code"] == "conflict", late
        assert db.query("SELECT count(*) FROM standings WHERE board_gen = %s AND player_id = 'late'", (gen,))[0][0] == 0
        assert "late" not in members(db, board["id"])
    finally:
        adm.close()
        w.close()


def test_40_first_submissions_racing_fill_8_cohorts_of_5(rankd, db):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = create_board(adm, cohorts={"size": 5})["id"]

        def one(i):
            cl = racer(rankd, i)
            try:
                return submit(cl, b, "r%02d" % i, i).status
            finally:
                cl.close()
        placed = metric(rankd, "rankd_league_placements_total")
        assert race(40, one) == [200] * 40
        assert metric(rankd, "rankd_league_placements_total") == placed + 40
        counts = {}
        for _, (_, co) in members(db, b).items():
            counts[co] = counts.get(co, 0) + 1
        assert counts == {k: 5 for k in range(1, 9)}, counts
        rows = db.query("SELECT k.cohort, k.members FROM league_cohorts k JOIN boards b ON b.gen = k.board_gen"
                        " WHERE b.id = %s ORDER BY 1", (b,))
        assert rows == [(k, 5) for k in range(1, 9)], rows
    finally:
        adm.close()


def test_promotion_and_relegation_across_two_resets(rankd_factory, db, tmp_root):
    clock = Clock(tmp_root)
    day1 = datetime.date(2027, 6, 7)
    clock.set(day_ms(day1) + 3600 * 1000)
    inst = rankd_factory(env=clock.env())
    adm, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY)

    def at(day):
        clock.set(day_ms(day) + 3600 * 1000)
        wait_for(lambda: adm.get("/v1/leaderboards/%s" % b).json()["current_window"] == day.isoformat(), "the clock to move")

    try:
        b = create_board(adm, sort="desc", operator="best", reset="daily", cohorts={"size": 3}, tiers=TIERS)["id"]
        for p, s in [("a", 90), ("b", 50), ("c", 10), ("d", 80), ("e", 60), ("f", 5)]:
            submit_ok(w, b, p, s)
        assert {p: co for p, (_, co) in members(db, b, day1.isoformat()).items()} == \
            {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2, "f": 2}

        day2 = day1 + datetime.timedelta(days=1)
        at(day2)
        # The first placement of day 2 settles day 1: a and d (their cohorts' best) move up.
        for p, s in [("c", 70), ("a", 20), ("d", 30), ("b", 40)]:
            submit_ok(w, b, p, s)
        got = members(db, b, day2.isoformat())
        assert {p: t for p, (t, _) in got.items()} == {"a": 1, "d": 1, "b": 0, "c": 0}, got
        assert got["a"][1] == got["d"][1] and got["b"][1] == got["c"][1] != got["a"][1], got
        prev = c.get("/v1/leaderboards/%s/players/d/cohort?window=%s" % (b, day1.isoformat()))
        assert prev.status == 200, prev.describe()
        assert prev.json()["moves"] == [{"player_id": "d", "from": "bronze", "to": "silver"}], prev.json()
        st = c.get("/v1/leaderboards/%s/players/a" % b).json()
        assert (st["tier"], st["cohort_rank"], st["rank"]) == ("silver", 2, 4), st
        old = c.get("/v1/leaderboards/%s/players/d?window=%s" % (b, day1.isoformat())).json()
        assert (old["tier"], old["cohort"], old["cohort_rank"], old["rank"]) == ("bronze", 2, 1, 2), old
        now = c.get("/v1/leaderboards/%s/players/a/cohort" % b).json()
        assert (now["tier"], [e["player_id"] for e in now["entries"]]) == ("silver", ["d", "a"]), now

        day3 = day2 + datetime.timedelta(days=1)
        at(day3)
        # Silver's cohort {d 30, a 20}: d is promoted to gold, a relegated to bronze; bronze's
        # {c 70, b 40}: c is promoted to silver, b (bronze is the lowest) stays.
        for p in ["a", "b", "c", "d"]:
            submit_ok(w, b, p, 1)
        got = members(db, b, day3.isoformat())
        assert {p: t for p, (t, _) in got.items()} == {"d": 2, "a": 0, "c": 1, "b": 0}, got
        moves = db.query("SELECT m.player_id, m.cohort_rank, m.from_tier, m.to_tier FROM league_moves m"
                         " JOIN boards b ON b.gen = m.board_gen WHERE b.id = %s AND m.win = %s ORDER BY 1",
                         (b, day2.isoformat()))
        assert moves == [("a", 2, 1, 0), ("b", 2, 0, 0), ("c", 1, 0, 1), ("d", 1, 1, 2)], moves
        # Every window keeps its cohorts: day 1's read again from the archive or the standings.
        first = c.get("/v1/leaderboards/%s/cohorts/1/entries?window=%s" % (b, day1.isoformat())).json()
        assert [e["player_id"] for e in first["entries"]] == ["a", "b", "c"], first
    finally:
        adm.close()
        w.close()
        c.close()
