"""
tests/e2e/test_events.py — end-of-window events (API.md, "Competitions"): a league board with a
webhook; when the upkeep leader archives a closed window, the event (its final standings and
moves) is POSTed to a real HTTP server here, signed (X-Rankd-Signature: HMAC-SHA256 of the raw
body with the board's secret), with X-Rankd-Event-Id; a refused try (500) is made again, with the
same id and bytes, once its back-off passes (the injected clock moves on), and GET /v1/events/{id}
(admin) shows the delivery. The secret never appears in a Board; bad webhooks are 400 with their
field. A module of its own: its clocked rankd is the upkeep leader (test_tournament_upkeep.py).
"""
import datetime
import hashlib
import hmac
import http.server
import json
import threading

from conftest import ADMIN_KEY, READ_KEY, WRITE_KEY, assert_error, free_port, metric, submit_ok, unique, wait_for
from test_archive import GUARD_TIMEOUT_MS, Clock, archived, daily_instance, day_ms
from test_leagues import TIERS

SECRET = "s3cret-of-the-game-server"


class Hook:
    """An HTTP server on loopback that records every POST and answers the statuses queued."""

    def __init__(self, statuses):
        self.got = []
        self.statuses = list(statuses)
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.got.append((dict(self.headers), body))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def board_body(hook_url, **extra):
    body = {"id": unique("ev"), "title": "t", "sort": "desc", "operator": "best", "reset": "daily",
            "cohorts": {"size": 2}, "tiers": TIERS, "webhook": {"url": hook_url, "secret": SECRET}}
    body.update(extra)
    return body


def test_a_closed_league_window_is_posted_signed_and_retried_until_taken(rankd_factory, db, tmp_root):
    start = datetime.date(2029, 9, 3)
    hook = Hook([500])
    clock, inst, adm, w, c = daily_instance(rankd_factory, tmp_root, start)
    try:
        r = adm.post("/v1/leaderboards", json_body=board_body(hook.url))
        assert r.status == 201, r.describe()
        board = r.json()
        assert board["webhook"] == {"configured": True, "url": hook.url} and SECRET not in r.body.decode(), board
        b = board["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        submit_ok(w, b, "a", 9, metadata={"lvl": 3})
        submit_ok(w, b, "b", 5)
        submit_ok(w, b, "c", 7)
        nxt = start + datetime.timedelta(days=1)
        clock.set(day_ms(nxt) + 3600000)  # the leader archives day 1, and makes its event
        wait_for(lambda: archived(db, gen) == 1, "the archive", 30)
        wait_for(lambda: len(hook.got) >= 1, "the first try", 30)
        headers, body = hook.got[0]
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Rankd-Signature"] == sig, headers
        ev = json.loads(body)
        assert headers["X-Rankd-Event-Id"] == ev["id"]
        assert (ev["type"], ev["board"], ev["window"], ev["closed_at"]) == \
            ("window_closed", b, start.isoformat(), nxt.isoformat() + "T00:00:00.000Z"), ev
        assert [(e["rank"], e["player_id"], e["score"]) for e in ev["standings"]] == [(1, "a", 9), (2, "c", 7),
                                                                                     (3, "b", 5)]
        assert ev["standings"][0]["metadata"] == {"lvl": 3} and "metadata" not in ev["standings"][1]
        assert ev["moves"] == [{"player_id": "a", "from": "bronze", "to": "silver"},
                               {"player_id": "c", "from": "bronze", "to": "silver"}], ev
        # Refused (500): pending, tried again after its back-off with the same id and bytes.
        def state():
            return adm.get("/v1/events/%s" % ev["id"]).json()
        wait_for(lambda: state()["last_status"] == 500, "the failed try recorded")
        s = state()
        assert (s["state"], s["attempts"], s["delivered_at"]) == ("pending", 1, None), s
        assert s["event"] == ev
        retried = metric(inst, "rankd_events_retried_total")
        assert retried >= 1
        clock.set(day_ms(nxt) + 3600000 + 20000)  # past the first retry's 15 s
        wait_for(lambda: len(hook.got) >= 2, "the second try", 30)
        assert hook.got[1][1] == body and hook.got[1][0]["X-Rankd-Event-Id"] == ev["id"]
        wait_for(lambda: state()["state"] == "delivered", "the delivery recorded")
        s = state()
        assert (s["attempts"], s["last_status"], s["next_attempt_at"]) == (2, 200, None), s
        assert s["delivered_at"] is not None
        assert metric(inst, "rankd_events_delivered_total") >= 1
        assert len(hook.got) == 2
        # Admin only; unknown and malformed ids.
        assert_error(c.get("/v1/events/%s" % ev["id"], key=READ_KEY), 403)
        assert_error(adm.get("/v1/events/ev-0-20000101"), 404, field="id")
        assert_error(adm.get("/v1/events/nope"), 400, field="id")
    finally:
        hook.close()
        for x in (adm, w, c):
            x.close()


def test_a_one_off_slot_is_archived_once_it_ends_and_its_event_sent(rankd_factory, db, tmp_root):
    """A one-off tournament slot (a board that never resets) is archived once its end and the grace
    have passed, and its event says when the slot closed."""
    start = datetime.date(2029, 10, 1)
    hook = Hook([])
    clock, inst, adm, w, c = daily_instance(rankd_factory, tmp_root, start)  # an hour into the day
    try:
        body = {"id": unique("once"), "title": "t", "sort": "desc", "operator": "best", "reset": "none",
                "tournament": {"start_at": start.isoformat() + "T00:30:00Z", "end_at": start.isoformat() + "T02:00:00Z"},
                "webhook": {"url": hook.url, "secret": SECRET}}
        r = adm.post("/v1/leaderboards", json_body=body)
        assert r.status == 201, r.describe()
        b = r.json()["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        submit_ok(w, b, "x", 3)
        submit_ok(w, b, "y", 8)
        assert archived(db, gen) == 0
        clock.set(day_ms(start) + 2 * 3600000 + 60000)  # the slot ended a minute ago: past the grace
        wait_for(lambda: archived(db, gen) == 1, "the slot's archive", 30)
        wait_for(lambda: len(hook.got) == 1, "the event", 30)
        ev = json.loads(hook.got[0][1])
        assert (ev["window"], ev["closed_at"], "moves" in ev) == (start.isoformat(), start.isoformat() + "T02:00:00.000Z",
                                                                  False), ev
        assert [(e["rank"], e["player_id"]) for e in ev["standings"]] == [(1, "y"), (2, "x")]
        # Its window is still the board's, read as before.
        top = c.get("/v1/leaderboards/%s/entries" % b).json()
        assert [e["player_id"] for e in top["entries"]] == ["y", "x"] and top["window"] == start.isoformat(), top
    finally:
        hook.close()
        for x in (adm, w, c):
            x.close()


def test_a_deleted_player_leaves_the_events_that_named_them(rankd_factory, db, tmp_root):
    """Deleting a player makes the board's events that named them again without them: the ranks
    after theirs move up as the archive's do, their move is gone, id and closed_at stay, and a
    delivered event is not sent again."""
    start = datetime.date(2029, 11, 5)
    hook = Hook([])
    clock, inst, adm, w, c = daily_instance(rankd_factory, tmp_root, start)
    try:
        r = adm.post("/v1/leaderboards", json_body=board_body(hook.url))
        assert r.status == 201, r.describe()
        b = r.json()["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        for p, s in (("a", 9), ("b", 5), ("c", 7), ("d", 1)):
            submit_ok(w, b, p, s)  # cohorts of 2: {a, b} and {c, d}
        nxt = start + datetime.timedelta(days=1)
        clock.set(day_ms(nxt) + 3600000)
        wait_for(lambda: archived(db, gen) == 1, "the archive", 30)
        wait_for(lambda: len(hook.got) == 1, "the event", 30)
        ev = json.loads(hook.got[0][1])

        def state():
            return adm.get("/v1/events/%s" % ev["id"]).json()
        wait_for(lambda: state()["state"] == "delivered", "the delivery recorded")
        assert [(e["rank"], e["player_id"]) for e in ev["standings"]] == [(1, "a"), (2, "c"), (3, "b"), (4, "d")]
        assert [m["player_id"] for m in ev["moves"]] == ["a", "c"], ev
        # A player the board never had changes nothing.
        assert_error(adm.delete("/v1/leaderboards/%s/players/nobody" % b), 404)
        assert state()["event"] == ev
        r = adm.delete("/v1/leaderboards/%s/players/c" % b)
        assert r.status == 204, r.describe()
        after = state()
        got = after["event"]
        assert (got["id"], got["closed_at"], got["window"], got["board"]) == (ev["id"], ev["closed_at"], ev["window"], b)
        assert [(e["rank"], e["player_id"], e["score"]) for e in got["standings"]] == [(1, "a", 9), (2, "b", 5),
                                                                                      (3, "d", 1)], got
        assert got["moves"] == [{"player_id": "a", "from": "bronze", "to": "silver"}], got
        assert "\"c\"" not in db.query("SELECT body FROM events WHERE id = %s", (ev["id"],))[0][0]
        # The archive agrees; the delivered event stays delivered and is not sent again.
        page = c.get("/v1/leaderboards/%s/entries?window=%s" % (b, start.isoformat())).json()
        assert [(e["rank"], e["player_id"]) for e in page["entries"]] == [(1, "a"), (2, "b"), (3, "d")], page
        assert (after["state"], after["attempts"]) == ("delivered", 1), after
        assert len(hook.got) == 1
    finally:
        hook.close()
        for x in (adm, w, c):
            x.close()


def test_an_event_holds_the_top_n_and_the_way_to_the_rest_and_is_dropped_after_keep_days(rankd_factory, db,
                                                                                          tmp_root):
    """An event holds the top events.standings_limit standings and as many moves, with their totals
    and the export that streams the whole window; a deletion below the top N updates the total;
    a delivered event is dropped events.keep_days after it was made (issue 49 item 14)."""
    start = datetime.date(2029, 12, 3)
    hook = Hook([])
    clock = Clock(tmp_root)
    clock.set(day_ms(start) + 3600000)
    inst = rankd_factory(env=clock.env(), extra_config={"postgres": {"statement_timeout_ms": GUARD_TIMEOUT_MS},
                                                        "events": {"standings_limit": 3, "keep_days": 2}})
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        r = adm.post("/v1/leaderboards", json_body=board_body(hook.url))
        assert r.status == 201, r.describe()
        b = r.json()["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        scores = [("p%d" % i, 10 * (i + 1)) for i in range(9)]  # cohorts of 2 by arrival: 5 cohorts
        for p, s in scores:
            submit_ok(w, b, p, s)
        nxt = start + datetime.timedelta(days=1)
        clock.set(day_ms(nxt) + 3600000)
        wait_for(lambda: archived(db, gen) == 1, "the archive", 30)
        wait_for(lambda: len(hook.got) == 1, "the event", 30)
        ev = json.loads(hook.got[0][1])
        assert [(e["rank"], e["player_id"]) for e in ev["standings"]] == [(1, "p8"), (2, "p7"), (3, "p6")], ev
        assert ev["standings_total"] == 9, ev
        assert ev["standings_export"] == "/v1/leaderboards/%s/export?window=%s" % (b, start.isoformat()), ev
        # Each cohort's best moves up: five moves, the first three (by cohort) in the body.
        assert ev["moves_total"] == 5 and [m["player_id"] for m in ev["moves"]] == ["p1", "p3", "p5"], ev
        # The rest is where the body says: the export of the closed window, every standing.
        r = adm.get(ev["standings_export"] + "&format=ndjson")
        assert r.status == 200, r.describe()
        rows = [json.loads(x) for x in r.body.decode().splitlines() if x]
        assert [(e["rank"], e["player_id"]) for e in rows] == [(i + 1, "p%d" % (8 - i)) for i in range(9)], rows

        def state():
            return adm.get("/v1/events/%s" % ev["id"]).json()
        wait_for(lambda: state()["state"] == "delivered", "the delivery recorded")
        # A player below the top N, who made no move, leaves the totals; the top N stays.
        assert adm.delete("/v1/leaderboards/%s/players/p0" % b).status == 204
        got = state()["event"]
        assert (got["standings_total"], got["moves_total"]) == (8, 5), got
        assert got["standings"] == ev["standings"], got
        # One with a move below the first three moves leaves moves_total too.
        assert adm.delete("/v1/leaderboards/%s/players/p7" % b).status == 204
        got = state()["event"]
        assert [(e["rank"], e["player_id"]) for e in got["standings"]] == [(1, "p8"), (2, "p6"), (3, "p5")], got
        assert (got["standings_total"], got["moves_total"]) == (7, 4), got
        assert [m["player_id"] for m in got["moves"]] == ["p1", "p3", "p5"], got
        assert len(hook.got) == 1
        # Kept two days after it was made, then dropped by the upkeep leader.
        clock.set(day_ms(nxt) + 2 * 86400000 + 2 * 3600000)
        wait_for(lambda: adm.get("/v1/events/%s" % ev["id"]).status == 404, "the event dropped", 30)
        assert db.query("SELECT count(*) FROM events WHERE id = %s", (ev["id"],))[0][0] == 0
    finally:
        hook.close()
        for x in (adm, w):
            x.close()


def test_bad_webhooks_are_refused_with_their_field(rankd_factory):
    inst = rankd_factory()
    adm = inst.client(ADMIN_KEY)
    try:
        ok = "http://127.0.0.1:9/hook"
        for webhook, field, extra in (
                ({"url": ok, "secret": SECRET}, "webhook", {"cohorts": None, "tiers": None}),  # a plain board
                ("x", "webhook", {}), ({"url": ok}, "webhook.secret", {}),
                ({"url": ok, "secret": ""}, "webhook.secret", {}), ({"url": "ftp://h/x", "secret": SECRET}, "webhook.url", {}),
                ({"url": "http://", "secret": SECRET}, "webhook.url", {}),
                ({"url": "http://h/a b", "secret": SECRET}, "webhook.url", {}),
                ({"url": ok, "secret": SECRET, "x": 1}, "webhook", {})):
            body = board_body(ok, **extra)
            body["webhook"] = webhook
            body = {k: v for k, v in body.items() if v is not None}
            assert_error(adm.post("/v1/leaderboards", json_body=body), 400, field=field)
        b = adm.post("/v1/leaderboards", json_body=board_body(ok)).json()["id"]
        assert_error(adm.patch("/v1/leaderboards/%s" % b, json_body={"webhook": None}), 400, field="webhook")
        got = adm.get("/v1/leaderboards/%s" % b)
        assert got.json()["webhook"] == {"configured": True, "url": ok} and SECRET not in got.body.decode()
    finally:
        adm.close()


def test_a_webhook_url_is_shown_to_admins_alone(rankd_factory):
    """A webhook URL carries tokens and credentials: a Board shows it to admin keys only; every
    other caller (no key, a read key, a write key; one board, the list, a batch) sees only that
    a webhook is configured. An admin's Board is kept by no cache (Cache-Control: no-store), so
    no shared cache hands it to anyone else."""
    url = "https://user:pass@hooks.example/tok123"
    inst = rankd_factory()
    adm = inst.client(ADMIN_KEY)
    c = inst.client()
    try:
        r = adm.post("/v1/leaderboards", json_body=board_body(url))
        assert r.status == 201, r.describe()
        b = r.json()["id"]
        created = r.json()
        secrets = ("tok123", "user:pass", "hooks.example")
        for key in (None, READ_KEY, WRITE_KEY):
            # Twice each: the second may be an answer some cache kept.
            for _ in range(2):
                one = c.get("/v1/leaderboards/%s" % b, key=key)
                assert one.status == 200, one.describe()
                assert one.json()["webhook"] == {"configured": True}, one.json()
                listed = c.get("/v1/leaderboards?limit=1000", key=key)
                assert listed.status == 200, listed.describe()
                mine = [x for x in listed.json()["leaderboards"] if x["id"] == b]
                assert mine and mine[0]["webhook"] == {"configured": True}, mine
                for text in (one.body.decode(), listed.body.decode()):
                    assert not any(s in text for s in secrets), text
        got = c.post("/v1/batch", json_body={"requests": [{"path": "/v1/leaderboards/%s" % b}]}, key=READ_KEY)
        assert got.status == 200 and got.json()["responses"][0]["body"]["webhook"] == {"configured": True}, got.describe()
        assert not any(s in got.body.decode() for s in secrets), got.describe()
        # The admin's own view, after the public ones: never a public render from a cache.
        assert created["webhook"] == {"configured": True, "url": url}, created
        for _ in range(2):
            mine = adm.get("/v1/leaderboards/%s" % b)
            assert mine.json()["webhook"] == {"configured": True, "url": url}, mine.json()
            assert mine.header("Cache-Control") == "no-store", mine.describe()
            listed = adm.get("/v1/leaderboards?limit=1000")
            row = [x for x in listed.json()["leaderboards"] if x["id"] == b]
            assert row and row[0]["webhook"] == {"configured": True, "url": url}, row
            assert listed.header("Cache-Control") == "no-store", listed.describe()
        got = adm.post("/v1/batch", json_body={"requests": [{"path": "/v1/leaderboards/%s" % b}]})
        assert got.json()["responses"][0]["body"]["webhook"] == {"configured": True, "url": url}, got.describe()
        # And the public view after the admin's: still without the URL.
        one = c.get("/v1/leaderboards/%s" % b)
        assert one.json()["webhook"] == {"configured": True} and "tok123" not in one.body.decode(), one.json()
    finally:
        adm.close()
        c.close()
