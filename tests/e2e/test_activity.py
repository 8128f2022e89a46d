"""GET /v1/leaderboards/{board}/activity: accepted submissions and distinct players per UTC day
from the daily_activity view, every day of the span listed (zeros included), checked against the
submission log in PostgreSQL; its parameters' bounds; Last-Modified = refreshed_at."""
import datetime

from conftest import assert_error, create_board, parse_ts, refresh_views, submit_ok


def utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def test_activity_counts_today_and_lists_every_day(rankd, admin, writer, db):
    b = create_board(admin)["id"]
    for player, score in [("a", 1), ("b", 2), ("a", 3), ("c", 1), ("a", 0)]:
        submit_ok(writer, b, player, score)
    refresh_views(admin)
    r = rankd.client().get("/v1/leaderboards/%s/activity" % b)
    assert r.status == 200, r.describe()
    body = r.json()
    today = utc_today()
    assert body["board"] == b
    days = body["days"]
    assert len(days) == 30
    assert [d["day"] for d in days] == [(today - datetime.timedelta(days=29 - i)).isoformat() for i in range(30)]
    subs, players = db.query(
        "SELECT count(*), count(DISTINCT player_id) FROM submissions s JOIN boards b ON b.gen = s.board_gen"
        " WHERE b.id = %s AND (s.received_at AT TIME ZONE 'UTC')::date = %s", (b, today))[0]
    assert (days[-1]["submissions"], days[-1]["players"]) == (subs, players) == (5, 3)
    assert all(d["submissions"] == 0 and d["players"] == 0 for d in days[:-1])
    assert body["refreshed_at"] is not None
    assert r.header("Last-Modified"), r.headers
    assert abs(parse_ts(body["refreshed_at"]) / 1000.0 -
               datetime.datetime.strptime(r.header("Last-Modified"), "%a, %d %b %Y %H:%M:%S GMT")
               .replace(tzinfo=datetime.timezone.utc).timestamp()) < 1

    # A span of our own: from/to inclusive, oldest first.
    f, t = today - datetime.timedelta(days=2), today
    r = rankd.client().get("/v1/leaderboards/%s/activity?from=%s&to=%s" % (b, f, t))
    assert r.status == 200, r.describe()
    assert [d["day"] for d in r.json()["days"]] == [(f + datetime.timedelta(days=i)).isoformat() for i in range(3)]
    # 366 days apart is the most.
    r = rankd.client().get("/v1/leaderboards/%s/activity?from=%s&to=%s" % (b, t - datetime.timedelta(days=366), t))
    assert r.status == 200 and len(r.json()["days"]) == 367, r.describe()


def test_activity_parameters_are_checked(rankd, admin):
    b = create_board(admin)["id"]
    c = rankd.client()
    today = utc_today()
    for q, field in [("from=2026-13-01", "from"), ("to=yesterday", "to"), ("from=2026-02-30", "from"),
                     ("from=%s&to=%s" % (today, today - datetime.timedelta(days=1)), "from"),
                     ("from=%s&to=%s" % (today - datetime.timedelta(days=367), today), "from"),
                     ("from=%s&from=%s" % (today, today), "from"),
                     ("to=0001-01-05", "to"), ("from=0000-01-01&to=0000-02-01", "to"),
                     ("from=1969-12-31&to=1970-01-10", "from")]:
        assert_error(c.get("/v1/leaderboards/%s/activity?%s" % (b, q)), 400, field=field)
    assert_error(c.get("/v1/leaderboards/no-such-board-x/activity"), 404, field="board")
    assert_error(c.get("/v1/leaderboards/BAD/activity"), 400, field="board")


def test_if_modified_since_answers_304_from_the_modification_time(rankd, admin, writer):
    b = create_board(admin)["id"]
    submit_ok(writer, b, "a", 5)
    refresh_views(admin)
    c = rankd.client()
    for path in ("/v1/leaderboards/%s/stats" % b, "/v1/leaderboards/%s/activity" % b):
        r = c.get(path)
        assert r.status == 200, r.describe()
        lm = r.header("Last-Modified")
        assert lm, r.headers
        t = datetime.datetime.strptime(lm, "%a, %d %b %Y %H:%M:%S GMT")
        older = (t - datetime.timedelta(seconds=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        newer = (t + datetime.timedelta(days=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        r = c.get(path, headers={"If-Modified-Since": lm})
        assert r.status == 304 and r.body == b"", r.describe()
        assert r.header("ETag") and r.header("Last-Modified") == lm, r.headers
        assert c.get(path, headers={"If-Modified-Since": newer}).status == 304
        assert c.get(path, headers={"If-Modified-Since": older}).status == 200
        assert c.get(path, headers={"If-Modified-Since": "yesterday"}).status == 200  # not a date: ignored
        # If-None-Match decides when both are sent.
        assert c.get(path, headers={"If-Modified-Since": lm, "If-None-Match": '"nope"'}).status == 200
    # An answer without a modification time ignores it.
    r = c.get("/v1/leaderboards/%s/entries" % b, headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})
    assert r.status == 200 and not r.header("Last-Modified"), r.describe()
