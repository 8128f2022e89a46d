"""
tests/e2e/test_tournaments.py — tournament boards (API.md, "Competitions"; issue 31): the
`tournament` object of a board and its checks, a one-off slot's window named by its start date, a
recurring slot under an injected clock, every refusal (not_active, not_joined, attempts_exhausted,
tournament_full) with its 409 code and nothing changed, joins and attempts, the cap under racing
joins and racing first submissions (exactly max_players get in), and the list's filters, checked
against PostgreSQL's rows.
"""
import datetime
import threading


from conftest import (ADMIN_KEY, WRITE_KEY, Client, assert_error, create_board, metric, now_ms, submit, submit_ok, unique,
                      wait_for)
from test_archive import Clock, day_ms

HOUR = 3600 * 1000


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def day_of(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc).date().isoformat()


def refused(r, code):
    """`r` is the 409 of a tournament's rule `code`: the Error object with that code."""
    assert r.status == 409, r.describe()
    err = r.json()["error"]
    assert err["code"] == code and err["message"], r.describe()
    return err


def open_now(adm, **rules):
    """A one-off tournament whose slot opened an hour ago and closes in an hour: its id."""
    now = now_ms()
    tournament = {"start_at": iso(now - HOUR), "end_at": iso(now + HOUR)}
    tournament.update(rules)
    return create_board(adm, reset="none", tournament=tournament)["id"]


def join(client, board, player):
    return client.post("/v1/leaderboards/%s/players/%s/join" % (board, player), key=WRITE_KEY)


def entrant_rows(db, board):
    return db.query("SELECT e.player_id, e.joined_ms IS NOT NULL, e.attempts, e.extra_attempts"
                    " FROM tournament_entrants e JOIN boards b ON b.gen = e.board_gen WHERE b.id = %s"
                    " ORDER BY e.player_id", (board,))


def slot_entrants(db, board):
    rows = db.query("SELECT s.entrants FROM tournament_slots s JOIN boards b ON b.gen = s.board_gen"
                    " WHERE b.id = %s", (board,))
    return [r[0] for r in rows]


def standings(db, board):
    return db.query("SELECT s.player_id, s.score FROM standings s JOIN boards b ON b.gen = s.board_gen"
                    " WHERE b.id = %s ORDER BY s.player_id", (board,))


def test_the_tournament_object_is_checked_and_shown(rankd):
    adm = rankd.client(ADMIN_KEY)
    now = now_ms()
    try:
        bad = [
            ({"reset": "none", "tournament": {"duration_s": 60}}, "tournament.duration_s"),
            ({"reset": "daily", "tournament": {"duration_s": 0}}, "tournament.duration_s"),
            ({"reset": "daily", "tournament": {"duration_s": 86401}}, "tournament.duration_s"),
            ({"reset": "weekly", "tournament": {"duration_s": 7 * 86400 + 1}}, "tournament.duration_s"),
            ({"reset": "daily", "tournament": {"start_at": iso(now), "end_at": iso(now + HOUR)}}, "tournament.start_at"),
            ({"reset": "none", "tournament": {"start_at": iso(now)}}, "tournament.end_at"),
            ({"reset": "none", "tournament": {"end_at": iso(now)}}, "tournament.start_at"),
            ({"reset": "none", "tournament": {"start_at": iso(now), "end_at": iso(now)}}, "tournament.end_at"),
            ({"reset": "none", "tournament": {"start_at": "yesterday", "end_at": iso(now)}}, "tournament.start_at"),
            ({"reset": "daily", "tournament": {"start_at": iso(now), "end_at": iso(now + 1), "duration_s": 5}},
             "tournament.duration_s"),
            ({"reset": "daily", "tournament": {}}, "tournament"),
            ({"reset": "daily", "tournament": []}, "tournament"),
            ({"reset": "daily", "tournament": {"duration_s": 60, "prize": 1}}, "tournament.prize"),
            ({"reset": "daily", "tournament": {"duration_s": 60, "max_players": 0}}, "tournament.max_players"),
            ({"reset": "daily", "tournament": {"duration_s": 60, "max_players": 1.5}}, "tournament.max_players"),
            ({"reset": "daily", "tournament": {"duration_s": 60, "max_attempts": -1}}, "tournament.max_attempts"),
            ({"reset": "daily", "tournament": {"duration_s": 60, "join_required": "yes"}}, "tournament.join_required"),
            ({"reset": "daily", "tournament": {"duration_s": 60, "category": "x" * 65}}, "tournament.category"),
            ({"reset": "daily", "tournament": {"duration_s": 60, "category": 7}}, "tournament.category"),
        ]
        for extra, field in bad:
            body = {"id": unique("t"), "title": "T", "sort": "desc", "operator": "best"}
            body.update(extra)
            assert_error(adm.post("/v1/leaderboards", json_body=body), 400, field)
        start = now - HOUR
        b = create_board(adm, reset="none", tournament={"start_at": iso(start), "end_at": iso(now + HOUR),
                                                          "max_players": 5, "max_attempts": 3, "join_required": True,
                                                          "category": "cup"})
        t = b["tournament"]
        assert (t["start_at"], t["end_at"], t["max_players"], t["max_attempts"], t["join_required"], t["category"]) == \
            (iso(start), iso(now + HOUR), 5, 3, True, "cup")
        assert b["state"] == "active" and b["opens_at"] == iso(start) and b["closes_at"] == iso(now + HOUR)
        assert b["current_window"] == day_of(start) and b["window"] == day_of(start) and b["next_reset_at"] is None
        assert b["max_players"] == 5 and b["players"] == 0
        # the same definition again: 200; another: 409
        same = {k: b[k] for k in ("id", "title", "sort", "operator", "reset")}
        same["tournament"] = {"start_at": iso(start), "end_at": iso(now + HOUR), "max_players": 5, "max_attempts": 3,
                              "join_required": True, "category": "cup"}
        assert adm.post("/v1/leaderboards", json_body=same).status == 200
        same["tournament"]["max_players"] = 6
        assert adm.post("/v1/leaderboards", json_body=same).status == 409
        plain = create_board(adm)
        assert "tournament" not in plain and "opens_at" not in plain
        assert create_board(adm, reset="daily", tournament={"duration_s": 60, "category": ""})["tournament"]["category"] is None
        # the rules are fixed: PATCH names the field; an import would skip them
        assert_error(adm.patch("/v1/leaderboards/%s" % b["id"], json_body={"tournament": {"duration_s": 5}}), 400,
                     "tournament")
        r = adm.post("/v1/leaderboards/%s/import" % b["id"], body="player_id,score\na,1\n", content_type="text/csv")
        assert_error(r, 409)
    finally:
        adm.close()


def test_a_one_off_slot_names_its_window_by_its_start_date_and_refuses_outside_it(rankd, db):
    adm, w, c = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY), rankd.client()
    now = now_ms()
    try:
        start = now - 3 * 86400 * 1000  # three days ago: its window is that date, not today's
        live = create_board(adm, reset="none", tournament={"start_at": iso(start), "end_at": iso(now + HOUR)})["id"]
        r = submit_ok(w, live, "p1", 10)
        assert r["window"] == day_of(start)
        assert db.query("SELECT s.win::text FROM standings s JOIN boards b ON b.gen = s.board_gen WHERE b.id = %s",
                        (live,)) == [(day_of(start),)]
        page = c.get("/v1/leaderboards/%s/entries?window=%s" % (live, day_of(start))).json()
        assert [e["player_id"] for e in page["entries"]] == ["p1"] and page["window"] == day_of(start)
        assert c.get("/v1/leaderboards/%s/players/p1" % live).json()["rank"] == 1
        assert_error(c.get("/v1/leaderboards/%s/entries?window=1970-01-01" % live), 400, "window")
        standing = [s for s in c.get("/v1/players/p1/standings").json()["standings"] if s["board"] == live]
        assert standing and standing[0]["window"] == day_of(start)

        upcoming = create_board(adm, reset="none",
                                tournament={"start_at": iso(now + HOUR), "end_at": iso(now + 2 * HOUR)})
        assert upcoming["state"] == "upcoming" and upcoming["current_window"] == day_of(now + HOUR)
        refused(submit(w, upcoming["id"], "p1", 10), "not_active")
        j = join(w, upcoming["id"], "p1")
        assert j.status == 200 and j.json()["window"] == day_of(now + HOUR), j.describe()

        ended = create_board(adm, reset="none", tournament={"start_at": iso(now - 2 * HOUR), "end_at": iso(now - HOUR)})
        assert ended["state"] == "ended"
        refused(submit(w, ended["id"], "p1", 10), "not_active")
        refused(join(w, ended["id"], "p1"), "not_active")
        assert standings(db, ended["id"]) == [] and standings(db, upcoming["id"]) == []
        # its final standings stay readable
        assert c.get("/v1/leaderboards/%s/entries" % ended["id"]).json()["entries"] == []
        assert metric(rankd, "rankd_tournament_refusals_total") >= 2
    finally:
        for x in (adm, w, c):
            x.close()


def test_a_join_required_board_refuses_players_who_did_not_join(rankd, db):
    adm, w = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY)
    try:
        b = open_now(adm, join_required=True)
        refused(submit(w, b, "a", 5), "not_joined")
        assert standings(db, b) == []
        first = join(w, b, "a")
        assert first.status == 200, first.describe()
        body = first.json()
        assert (body["board"], body["player_id"]) == (b, "a") and body["joined_at"].endswith("Z")
        again = join(w, b, "a")
        assert again.status == 200 and again.json() == body  # idempotent: the first join's answer
        assert submit_ok(w, b, "a", 5)["rank"] == 1
        # a batch: each item on its own
        r = w.post("/v1/scores:batch", json_body={"scores": [{"board": b, "player_id": "a", "score": 7},
                                                              {"board": b, "player_id": "b", "score": 9}]})
        assert r.status == 200, r.describe()
        res = r.json()["results"]
        assert res[0]["score"] == 7 and res[1]["error"]["code"] == "not_joined", res
        assert standings(db, b) == [("a", 7)]
        assert entrant_rows(db, b) == [("a", True, 2, 0)]
        assert slot_entrants(db, b) == [1]
        assert adm.get("/v1/leaderboards/%s" % b).json()["players"] == 1
        assert_error(w.post("/v1/leaderboards/%s/players/%s/join" % (b, "bad%20id"), key=WRITE_KEY), 400, "player_id")
        assert_error(w.post("/v1/leaderboards/nope/players/a/join", key=WRITE_KEY), 404, "board")
        assert_error(w.post("/v1/leaderboards/%s/players/a/join" % b, key=None), 401)
        plain = create_board(adm)["id"]
        refused(join(w, plain, "a"), "conflict")
        # the player's export holds the slot; a deletion of the player frees its place
        exp = adm.get("/v1/players/a/export").json()
        mine = [t for t in exp["tournaments"] if t["board"] == b]
        assert len(mine) == 1 and mine[0]["joined_at"] == body["joined_at"] and mine[0]["attempts"] == 2, exp
        assert adm.delete("/v1/leaderboards/%s/players/a" % b).status == 204
        assert entrant_rows(db, b) == [] and slot_entrants(db, b) == [0]
        refused(submit(w, b, "a", 5), "not_joined")
    finally:
        adm.close()
        w.close()


def test_attempts_are_counted_and_an_admin_adds_more(rankd, db):
    adm, w = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY)
    try:
        b = open_now(adm, max_attempts=2)
        submit_ok(w, b, "a", 5)
        assert submit_ok(w, b, "a", 3)["updated"] is False  # changes nothing, and is an attempt
        refused(submit(w, b, "a", 50), "attempts_exhausted")
        assert standings(db, b) == [("a", 5)]
        path = "/v1/leaderboards/%s/players/a/attempts" % b
        assert_error(w.post(path, json_body={"add": 1}), 403)
        for bad in ({"add": 0}, {"add": 1001}, {"add": "1"}, {}, {"add": 1, "x": 2}):
            assert_error(adm.post(path, json_body=bad), 400)
        r = adm.post(path, json_body={"add": 1})
        assert r.status == 200 and r.json()["attempts_left"] == 1, r.describe()
        assert submit_ok(w, b, "a", 50)["score"] == 50
        refused(submit(w, b, "a", 60), "attempts_exhausted")
        assert entrant_rows(db, b) == [("a", False, 3, 1)]
        # a player with no row yet gets the attempts ahead of playing
        assert adm.post("/v1/leaderboards/%s/players/z/attempts" % b, json_body={"add": 2}).json()["attempts_left"] == 4
        unlimited = open_now(adm)
        refused(adm.post("/v1/leaderboards/%s/players/a/attempts" % unlimited, json_body={"add": 1}), "conflict")
    finally:
        adm.close()
        w.close()


def racer(inst, i):
    """A write client of its own loopback address: the racers are not cut by the per-address
    connection cap (http.max_connections_per_ip)."""
    return Client("127.0.0.1", inst.port, WRITE_KEY, source="127.0.%d.%d" % (1 + i // 200, 1 + i % 200))


def race(n, fn):
    """Run fn(i) for i in 0..n-1 on n threads released together; the results in order."""
    out = [None] * n
    gate = threading.Barrier(n)

    def run(i):
        gate.wait()
        out[i] = fn(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_100_joins_racing_for_10_places_let_exactly_10_in(rankd, db):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = open_now(adm, max_players=10, join_required=True)

        def one(i):
            c = racer(rankd, i)
            try:
                r = join(c, b, "p%03d" % i)
                return r.status, r.json()["error"]["code"] if r.status != 200 else None
            finally:
                c.close()
        got = race(100, one)
        assert sorted(s for s, _ in got).count(200) == 10, got
        assert all(code == "tournament_full" for s, code in got if s != 200), got
        joined = [r[0] for r in entrant_rows(db, b)]
        assert len(joined) == 10 and slot_entrants(db, b) == [10]
        assert sorted("p%03d" % i for i, (s, _) in enumerate(got) if s == 200) == joined
        # the ones in join again and play; the others stay out
        w = rankd.client(WRITE_KEY)
        assert join(w, b, joined[0]).status == 200
        refused(join(w, b, "late"), "tournament_full")
        submit_ok(w, b, joined[0], 1)
        refused(submit(w, b, "late", 1), "not_joined")
        w.close()
        assert adm.get("/v1/leaderboards/%s" % b).json()["players"] == 10
        assert metric(rankd, "rankd_tournament_full_total") >= 91
        # one player joining 20 times at once (joins meet in one transaction): one place, one instant
        b2 = open_now(adm, max_players=3, join_required=True)

        def same(i):
            c = racer(rankd, i)
            try:
                r = join(c, b2, "twin")
                return r.status, r.json().get("joined_at")
            finally:
                c.close()
        got = race(20, same)
        assert {s for s, _ in got} == {200} and len({at for _, at in got}) == 1, got
        assert slot_entrants(db, b2) == [1] and [r[0] for r in entrant_rows(db, b2)] == ["twin"]
    finally:
        adm.close()


def test_first_submissions_racing_for_a_capped_slot_let_exactly_its_cap_in(rankd, db):
    """No join required: a player's first accepted submission takes a place; 40 new players
    submitting at once (singly, and in batches that go into one transaction) for 7 places."""
    adm = rankd.client(ADMIN_KEY)
    try:
        b = open_now(adm, max_players=7)

        def one(i):
            c = racer(rankd, i)
            try:
                if i % 2:
                    r = submit(c, b, "q%02d" % i, i)
                    return [(r.status, r.json().get("error", {}).get("code"))]
                r = c.post("/v1/scores:batch", json_body={"scores": [{"board": b, "player_id": "q%02d" % i, "score": i},
                                                                     {"board": b, "player_id": "r%02d" % i, "score": i}]})
                return [(200, None) if "error" not in x else (409, x["error"]["code"]) for x in r.json()["results"]]
            finally:
                c.close()
        got = [x for res in race(30, one) for x in res]
        assert len(got) == 45
        assert [s for s, _ in got].count(200) == 7, got
        assert all(code == "tournament_full" for s, code in got if s != 200), got
        assert len(standings(db, b)) == 7 and slot_entrants(db, b) == [7]
        assert len(entrant_rows(db, b)) == 7
        # a player in plays again; a join reserves no further place
        w = rankd.client(WRITE_KEY)
        inside = standings(db, b)[0][0]
        submit_ok(w, b, inside, 1000)
        assert join(w, b, inside).status == 200
        refused(join(w, b, "outsider"), "tournament_full")
        w.close()
        assert adm.get("/v1/leaderboards/%s" % b).json()["players"] == 7
    finally:
        adm.close()


def test_a_recurring_slot_opens_at_each_reset_for_its_duration(rankd_factory, db, tmp_root):
    clock = Clock(tmp_root)
    day = datetime.date(2027, 3, 10)
    clock.set(day_ms(day) + 30 * 60 * 1000)  # 00:30 on a day: inside a one-hour slot
    inst = rankd_factory(env=clock.env())
    adm, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()
    try:
        board = create_board(adm, reset="daily", tournament={"duration_s": 3600, "category": "hourly"})
        b = board["id"]
        assert board["state"] == "active" and board["opens_at"] == iso(day_ms(day))
        assert board["closes_at"] == iso(day_ms(day) + HOUR) and board["tournament"]["duration_s"] == 3600
        assert submit_ok(w, b, "a", 5)["window"] == day.isoformat()
        listed = c.get("/v1/leaderboards?kind=tournament&state=active&category=hourly&limit=1000").json()
        assert b in [x["id"] for x in listed["leaderboards"]]
        clock.set(day_ms(day) + 2 * HOUR)  # 02:00: the slot has closed, the next opens tomorrow
        wait_for(lambda: adm.get("/v1/leaderboards/%s" % b).json()["state"] == "upcoming", "the slot to close")
        refused(submit(w, b, "a", 50), "not_active")
        later = adm.get("/v1/leaderboards/%s" % b).json()
        tomorrow = day + datetime.timedelta(days=1)
        assert later["opens_at"] == iso(day_ms(tomorrow)) and later["window"] == tomorrow.isoformat()
        j = join(w, b, "a")
        assert j.status == 200 and j.json()["window"] == tomorrow.isoformat(), j.describe()
        listed = c.get("/v1/leaderboards?kind=tournament&state=upcoming&category=hourly&limit=1000").json()
        assert b in [x["id"] for x in listed["leaderboards"]]
        assert b not in [x["id"] for x in
                         c.get("/v1/leaderboards?kind=tournament&state=active&limit=1000").json()["leaderboards"]]
        clock.set(day_ms(tomorrow) + 10 * 60 * 1000)
        wait_for(lambda: adm.get("/v1/leaderboards/%s" % b).json()["state"] == "active", "the next slot to open")
        assert submit_ok(w, b, "a", 7)["window"] == tomorrow.isoformat()
        # yesterday's slot is a closed window: its standings read as they were
        old = c.get("/v1/leaderboards/%s/entries?window=%s" % (b, day.isoformat())).json()
        assert [(e["player_id"], e["score"]) for e in old["entries"]] == [("a", 5)]
    finally:
        for x in (adm, w, c):
            x.close()


def test_the_list_filters_tournaments(rankd):
    adm, c = rankd.client(ADMIN_KEY), rankd.client()
    now = now_ms()
    cat = unique("cat")
    try:
        ids = {}
        for state, (s, e) in (("active", (now - HOUR, now + HOUR)), ("upcoming", (now + HOUR, now + 2 * HOUR)),
                              ("ended", (now - 2 * HOUR, now - HOUR))):
            for k in range(2):
                ids.setdefault(state, []).append(create_board(
                    adm, unique("t" + state), reset="none",
                    tournament={"start_at": iso(s), "end_at": iso(e), "category": cat})["id"])
        create_board(adm)
        every = []
        cursor = None
        while True:  # pages of 1: the filter pages as the list does
            r = c.get("/v1/leaderboards?kind=tournament&category=%s&limit=1%s" % (cat, "&cursor=" + cursor if cursor else ""))
            assert r.status == 200, r.describe()
            every += [x["id"] for x in r.json()["leaderboards"]]
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        assert sorted(every) == sorted(ids["active"] + ids["upcoming"] + ids["ended"])
        for state, want in ids.items():
            got = c.get("/v1/leaderboards?kind=tournament&state=%s&category=%s&limit=1000" % (state, cat)).json()
            assert sorted(x["id"] for x in got["leaderboards"]) == sorted(want), state
            assert all(x["state"] == state for x in got["leaderboards"])
        for q, field in (("kind=league", "kind"), ("state=active", "state"), ("kind=tournament&state=over", "state"),
                         ("category=x", "category"), ("kind=tournament&kind=tournament", "kind")):
            assert_error(c.get("/v1/leaderboards?" + q), 400, field)
    finally:
        adm.close()
        c.close()
