"""
tests/e2e/test_tournament_upkeep.py — the upkeep leader deletes a tournament's entrant rows and
slot counts once their window is older than the previous one (they decide nothing any more),
and keeps those of the current and previous windows. A module of its own: the one rankd here,
on an injected clock, is the upkeep leader (another instance on the real clock would lead in a
shared module and judge the windows by today's date).
"""
import datetime

from conftest import ADMIN_KEY, WRITE_KEY, create_board, submit_ok, wait_for
from test_archive import Clock, day_ms
from test_tournaments import entrant_rows, join, slot_entrants


def test_entrants_of_slots_two_windows_back_are_deleted(rankd_factory, db, tmp_root):
    clock = Clock(tmp_root)
    day = datetime.date(2027, 5, 3)
    clock.set(day_ms(day) + 10 * 60 * 1000)
    inst = rankd_factory(env=clock.env())
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(adm, reset="daily", tournament={"duration_s": 3600, "max_players": 10,
                                                          "join_required": True})["id"]
        assert join(w, b, "a").status == 200
        submit_ok(w, b, "a", 5)
        assert entrant_rows(db, b) == [("a", True, 1, 0)] and slot_entrants(db, b) == [1]
        nxt = day + datetime.timedelta(days=1)
        clock.set(day_ms(nxt) + 10 * 60 * 1000)  # the next window: yesterday's slot is the previous one, kept
        wait_for(lambda: adm.get("/v1/leaderboards/%s" % b).json()["window"] == nxt.isoformat(), "the clock to move")
        assert join(w, b, "a").json()["window"] == nxt.isoformat()
        assert [r[0] for r in entrant_rows(db, b)] == ["a", "a"]
        later = day + datetime.timedelta(days=3)
        clock.set(day_ms(later) + 10 * 60 * 1000)  # both are now two windows back or more
        wait_for(lambda: entrant_rows(db, b) == [] and slot_entrants(db, b) == [],
                 "the entrants and slots of old windows to go", 30)
    finally:
        adm.close()
        w.close()
