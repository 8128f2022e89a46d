"""
tests/e2e/test_league_upkeep.py — the archiver settles a league window that no later submission
settled: its moves are made from the final standings in the archive's own transaction, kept beside
the archive, and applied when the next window places the player; the closed window's cohorts are
then read from the archive. A module of its own: the one rankd here, on an injected clock, is the
upkeep leader (test_tournament_upkeep.py says why).
"""
import datetime

from conftest import submit_ok, wait_for
from test_archive import archived, daily_instance, day_ms
from test_leagues import TIERS, members


def test_the_archiver_settles_a_league_window_no_submission_settled(rankd_factory, db, tmp_root):
    start = datetime.date(2029, 8, 6)
    clock, inst, adm, w, c = daily_instance(rankd_factory, tmp_root, start)
    try:
        b = adm.post("/v1/leaderboards", json_body={"id": "lu-" + str(day_ms(start)), "title": "t", "sort": "desc",
                                                     "operator": "best", "reset": "daily", "cohorts": {"size": 2},
                                                     "tiers": TIERS}).json()["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        for p, s in [("a", 9), ("b", 5), ("c", 7)]:
            submit_ok(w, b, p, s)
        assert {p: co for p, (_, co) in members(db, b).items()} == {"a": 1, "b": 1, "c": 2}
        nxt = start + datetime.timedelta(days=1)
        clock.set(day_ms(nxt) + 3600000)  # past the grace: the leader archives the day
        wait_for(lambda: archived(db, gen) == 1, "the archive", 30)
        assert db.query("SELECT settled FROM league_windows WHERE board_gen = %s AND win = %s",
                        (gen, start.isoformat()))[0][0] is True
        moves = db.query("SELECT player_id, cohort, cohort_rank, from_tier, to_tier FROM league_moves"
                         " WHERE board_gen = %s AND win = %s ORDER BY player_id", (gen, start.isoformat()))
        assert moves == [("a", 1, 1, 0, 1), ("b", 1, 2, 0, 0), ("c", 2, 1, 0, 1)], moves
        # Read from the archive (the window is archived): the same ranks, and its moves.
        r = c.get("/v1/leaderboards/%s/cohorts/1/entries?window=%s" % (b, start.isoformat()))
        assert r.status == 200, r.describe()
        assert [(e["rank"], e["player_id"]) for e in r.json()["entries"]] == [(1, "a"), (2, "b")]
        assert r.json()["moves"] == [{"player_id": "a", "from": "bronze", "to": "silver"}]
        st = c.get("/v1/leaderboards/%s/players/c?window=%s" % (b, start.isoformat())).json()
        assert (st["cohort"], st["cohort_rank"], st["tier"]) == (2, 1, "bronze"), st
        # The next window places each player in the tier the archive's moves gave.
        for p in ("b", "c", "a"):
            submit_ok(w, b, p, 1)
        got = members(db, b, nxt.isoformat())
        assert {p: t for p, (t, _) in got.items()} == {"a": 1, "b": 0, "c": 1}, got
        assert got["a"][1] == got["c"][1] != got["b"][1], got
    finally:
        for x in (adm, w, c):
            x.close()
