"""
tests/e2e/test_api.py — the contract of API.md, endpoint by endpoint, against a
real rankd with PostgreSQL and Redis.

Each test makes its own boards (unique ids) in the module's database, so the
tests are independent of one another and of their order.
"""

import datetime as dt
import gzip
import json
import math
import re
import threading
import time
import urllib.parse

import pytest

from conftest import (ADMIN_KEY, CORS_ORIGIN, READ_KEY, SCORE_MAX, SCORE_MIN, TS_RE, WRITE_KEY,
                      assert_error, batch, create_board, next_window_start, now_ms, parse_ts,
                      free_port, make_config, run_cli, stored_key, submit, submit_ok, to_yaml, unique, wait_for,
                      refresh_views, window_start)


def q(s):
    return urllib.parse.quote(s, safe="")


def rows(page):
    return [(e["rank"], e["player_id"], e["score"]) for e in page["entries"]]


def entries(client, board, **params):
    qs = urllib.parse.urlencode(params)
    return client.get("/v1/leaderboards/%s/entries%s" % (board, ("?" + qs) if qs else ""))


def entries_ok(client, board, **params):
    r = entries(client, board, **params)
    assert r.status == 200, r.describe()
    return r.json()


def player(client, board, pid, **params):
    qs = urllib.parse.urlencode(params)
    return client.get("/v1/leaderboards/%s/players/%s%s" % (board, q(pid), ("?" + qs) if qs else ""))


def seed(client, board, scores):
    """Submit {player: score} one by one, in the given order."""
    out = {}
    for pid, s in scores.items():
        out[pid] = submit_ok(client, board, pid, s)
    return out


def top_percent(rank, total):
    return math.ceil(rank * 10000 / total) / 100


def check_entry_shape(e):
    assert set(e) <= {"rank", "player_id", "score", "achieved_at", "metadata"}, e
    for k in ("rank", "player_id", "score", "achieved_at"):
        assert k in e, e
    assert isinstance(e["rank"], int) and e["rank"] >= 1
    assert isinstance(e["score"], int) and not isinstance(e["score"], bool)
    assert TS_RE.match(e["achieved_at"]), e
    if "metadata" in e:
        assert isinstance(e["metadata"], dict), e


def check_page_shape(page, board, window):
    for k in ("board", "window", "total", "entries", "next_cursor", "prev_cursor"):
        assert k in page, "page without %r: %r" % (k, page)
    assert page["board"] == board
    assert page["window"] == window
    for e in page["entries"]:
        check_entry_shape(e)
    ranks = [e["rank"] for e in page["entries"]]
    assert ranks == sorted(ranks), "entries not in rank order: %r" % ranks


# ---------------------------------------------------------------------------
# Health, readiness, metrics, command line
# ---------------------------------------------------------------------------

def test_healthz(anon):
    r = anon.get("/healthz")
    assert r.status == 200, r.describe()
    assert r.json() == {"status": "ok"}
    assert "no-store" in r.header_tokens("Cache-Control")


def test_readyz(anon, admin):
    """API.md of 2026-11-25: without the admin key the body is the status alone (the topology,
    pools and lag are not for anyone who asks); with it, every dependency and node."""
    r = anon.get("/readyz")
    assert r.status == 200, r.describe()
    assert r.json() == {"status": "ok"}, r.describe()
    assert "no-store" in r.header_tokens("Cache-Control")
    r = admin.get("/readyz")
    assert r.status == 200, r.describe()
    body = r.json()
    assert isinstance(body.get("status"), str)
    deps = body.get("dependencies")
    assert isinstance(deps, dict), body
    assert deps.get("postgres_primary") == "ok", body
    assert deps.get("redis") == "ok", body
    for v in deps.values():
        assert v in ("ok", "degraded", "down"), body
    assert "no-store" in r.header_tokens("Cache-Control")


def test_metrics(anon, reader, admin, rankd_factory):
    """API.md of 2026-11-25: /metrics is the admin key's by default (it was open to anyone);
    auth.metrics_auth: none opens it, for a private scrape network."""
    assert_error(anon.get("/metrics"), 401)
    assert_error(reader.get("/metrics"), 403)
    open_one = rankd_factory(extra_config={"auth": {"metrics_auth": "none"}})
    c = open_one.client()
    try:
        assert c.get("/metrics").status == 200
    finally:
        c.close()
    r = admin.get("/metrics")
    assert r.status == 200, r.describe()
    assert r.header("Content-Type", "").startswith("text/plain"), r.headers
    assert "no-store" in r.header_tokens("Cache-Control")
    text = r.body.decode()
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+( \d+)?$')
    samples = 0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        assert sample.match(line), "not Prometheus text format: %r" % line
        samples += 1
    assert samples > 0, "no samples in /metrics"


def test_cli_version():
    r = run_cli(["version"])
    assert r.returncode == 0, r.stderr
    assert (r.stdout + r.stderr).strip(), "rankd version printed nothing"


def test_cli_config_check(rankd, tmp_path):
    r = run_cli(["config", "check"], rankd.config_path)
    assert r.returncode == 0, "config check of a good file: %s %s" % (r.stdout, r.stderr)
    bad = tmp_path / "bad.yaml"
    bad.write_text('listen: "127.0.0.1:1"\nworker_threads: lots\npostgres:\n  primary: "host=127.0.0.1"\n')
    r = run_cli(["config", "check"], str(bad))
    assert r.returncode != 0, "config check accepted worker_threads: lots"
    assert re.search(re.escape(str(bad)) + r":2:\d+", r.stdout + r.stderr), \
        "no file:line:column for the bad key: %r" % (r.stdout + r.stderr)


def test_serve_refuses_to_start_without_a_cursor_secret_of_its_own(db, tmp_path):
    cfg = make_config(free_port(), db.dsn)
    del cfg["auth"]["cursor_secret"]
    path = tmp_path / "no-secret.yaml"
    path.write_text(to_yaml(cfg))
    r = run_cli(["serve"], str(path), timeout=30)
    assert r.returncode != 0, "rankd serve started without a cursor secret"
    assert "auth.cursor_secret" in r.stderr, r.stderr
    assert "rankd-dev-cursor-secret" not in r.stderr + r.stdout  # the message names no secret


def test_cli_migrate(db):
    env = {"RANKD_POSTGRES_PRIMARY": db.dsn}
    for args in (["migrate", "up"], ["migrate", "status"], ["migrate", "verify"]):
        r = run_cli(args, db.config_path, env=env)
        assert r.returncode == 0, "%s: exit %d\n%s\n%s" % (args, r.returncode, r.stdout, r.stderr)


# ---------------------------------------------------------------------------
# Boards
# ---------------------------------------------------------------------------

def test_create_board_shape(admin):
    bid = unique("cb")
    t0 = now_ms()
    body = {"id": bid, "title": "Create test", "sort": "asc", "operator": "latest", "reset": "none",
            "metadata": {"game": "x", "n": 1}, "min_score": -5, "max_score": 500}
    r = admin.post("/v1/leaderboards", json_body=body)
    t1 = now_ms()
    assert r.status == 201, r.describe()
    loc = r.header("Location")
    assert loc and loc.endswith("/v1/leaderboards/" + bid), "Location %r" % loc
    assert "no-store" in r.header_tokens("Cache-Control")
    b = r.json()
    for k in ("id", "title", "sort", "operator", "reset", "metadata", "min_score", "max_score"):
        assert b.get(k) == body[k], (k, b)
    assert t0 - 1000 <= parse_ts(b["created_at"]) <= t1 + 1000, b
    assert b["current_window"] == "1970-01-01"
    assert b["next_reset_at"] is None
    assert b["players"] == 0
    g = admin.get("/v1/leaderboards/" + bid)
    assert g.status == 200, g.describe()
    assert g.json() == b


def test_create_board_minimal_has_no_optional_fields(admin):
    b = create_board(admin)
    assert b.get("metadata") is None and b.get("min_score") is None and b.get("max_score") is None, b


def test_create_identical_200_differing_409(admin):
    bid = unique("cb")
    body = {"id": bid, "title": "T", "sort": "desc", "operator": "best", "reset": "none"}
    r1 = admin.post("/v1/leaderboards", json_body=body)
    assert r1.status == 201, r1.describe()
    r2 = admin.post("/v1/leaderboards", json_body=body)
    assert r2.status == 200, r2.describe()
    assert r2.json() == r1.json()
    for change in ({"title": "T2"}, {"sort": "asc"}, {"operator": "sum"}, {"reset": "daily"},
                   {"min_score": 0}, {"metadata": {"a": 1}}):
        b = dict(body, **change)
        r = admin.post("/v1/leaderboards", json_body=b)
        assert_error(r, 409)
    assert admin.get("/v1/leaderboards/" + bid).json() == r1.json()


def test_get_board_missing(reader):
    r = reader.get("/v1/leaderboards/" + unique("missing"))
    assert_error(r, 404, field="board")
    assert "no-store" in r.header_tokens("Cache-Control")


def test_list_boards(admin, reader):
    prefix = unique("ls")
    ids = [prefix + s for s in ("-c", "-a", "-b", "_z", "-0")]
    for i in ids:
        create_board(admin, i)
    r = reader.get("/v1/leaderboards?limit=1000")
    assert r.status == 200, r.describe()
    body = r.json()
    allids = [b["id"] for b in body["leaderboards"]]
    assert allids == sorted(allids, key=lambda s: s.encode()), allids
    for i in ids:
        assert i in allids
    assert body.get("next_cursor") is None
    for b in body["leaderboards"]:
        for k in ("id", "title", "sort", "operator", "reset", "created_at", "current_window", "players"):
            assert k in b, b
    # Default limit is 25.
    d = reader.get("/v1/leaderboards").json()
    assert len(d["leaderboards"]) == min(25, len(allids))
    # Paging with limit=2 and next_cursor visits every board once, in order.
    seen = []
    page = reader.get("/v1/leaderboards?limit=2").json()
    for _ in range(10000):
        assert len(page["leaderboards"]) <= 2
        seen.extend(b["id"] for b in page["leaderboards"])
        if page.get("next_cursor") is None:
            break
        r = reader.get("/v1/leaderboards?limit=2&cursor=" + q(page["next_cursor"]))
        assert r.status == 200, r.describe()
        page = r.json()
    assert seen == allids


def test_patch_board(admin, reader):
    b = create_board(admin, sort="asc", operator="sum")
    bid = b["id"]
    r = admin.patch("/v1/leaderboards/" + bid, json_body={"title": "New title"})
    assert r.status == 200, r.describe()
    nb = r.json()
    assert nb["title"] == "New title"
    for k in ("id", "sort", "operator", "reset", "created_at"):
        assert nb[k] == b[k]
    r = admin.patch("/v1/leaderboards/" + bid, json_body={"metadata": {"season": 3, "a": "b"}})
    assert r.status == 200, r.describe()
    assert r.json()["metadata"] == {"season": 3, "a": "b"}
    assert r.json()["title"] == "New title"
    g = reader.get("/v1/leaderboards/" + bid).json()
    assert g["title"] == "New title" and g["metadata"] == {"season": 3, "a": "b"}
    r = admin.patch("/v1/leaderboards/" + bid, json_body={"sort": "desc"})
    assert r.status in (400, 409), "PATCH of sort must be refused: " + r.describe()
    assert reader.get("/v1/leaderboards/" + bid).json()["sort"] == "asc"
    assert_error(admin.patch("/v1/leaderboards/" + unique("nope"), json_body={"title": "x"}), 404, field="board")
    assert_error(admin.patch("/v1/leaderboards/" + bid, json_body={"title": "x"}, key=WRITE_KEY), 403)


def test_delete_board(admin, writer, reader):
    b = create_board(admin)
    bid = b["id"]
    submit_ok(writer, bid, "p1", 5)
    r = admin.delete("/v1/leaderboards/" + bid)
    assert r.status == 204, r.describe()
    assert r.body == b""
    assert_error(reader.get("/v1/leaderboards/" + bid), 404, field="board")
    assert_error(entries(reader, bid), 404, field="board")
    assert_error(player(reader, bid, "p1"), 404, field="board")
    assert_error(admin.delete("/v1/leaderboards/" + bid), 404)
    assert_error(submit(writer, bid, "p1", 6), 404, field="board")


def test_recreated_board_shares_nothing(admin, writer, reader, db):
    bid = unique("re")
    create_board(admin, bid, sort="desc", operator="best")
    for i in range(12):
        submit_ok(writer, bid, "p%02d" % i, 100 + i)
    key = "idem-" + unique("k")
    first = submit(writer, bid, "idem-player", 7, headers={"Idempotency-Key": key})
    assert first.status == 200, first.describe()
    page = entries_ok(reader, bid, limit=5)
    cursor = page["next_cursor"]
    assert cursor
    assert admin.delete("/v1/leaderboards/" + bid).status == 204
    create_board(admin, bid, sort="asc", operator="sum")
    page2 = entries_ok(reader, bid)
    assert page2["total"] == 0 and page2["entries"] == []
    assert reader.get("/v1/leaderboards/" + bid).json()["players"] == 0
    assert_error(player(reader, bid, "p01"), 404, field="player_id")
    r = reader.get("/v1/leaderboards/%s/entries?limit=5&cursor=%s" % (bid, q(cursor)))
    assert_error(r, 400)
    again = submit(writer, bid, "idem-player", 7, headers={"Idempotency-Key": key})
    assert again.status == 200, again.describe()
    res = again.json()
    assert res["updated"] is True and res["previous_score"] is None and res["score"] == 7, res
    assert entries_ok(reader, bid)["total"] == 1
    assert db.submission_count(bid) == 1


def test_board_players_is_live(admin, writer, reader):
    bid = create_board(admin)["id"]
    for i in range(3):
        submit_ok(writer, bid, "p%d" % i, i)
    submit_ok(writer, bid, "p0", 10)
    assert reader.get("/v1/leaderboards/" + bid).json()["players"] == 3


# ---------------------------------------------------------------------------
# Submissions and operators
# ---------------------------------------------------------------------------

def test_submit_result_shape(admin, writer):
    bid = create_board(admin)["id"]
    t0 = now_ms()
    r = submit(writer, bid, "shape", 42)
    t1 = now_ms()
    assert r.status == 200, r.describe()
    assert "no-store" in r.header_tokens("Cache-Control")
    res = r.json()
    assert set(res) == {"board", "window", "player_id", "score", "previous_score", "rank", "previous_rank",
                        "achieved_at", "updated"}, res
    assert res["board"] == bid and res["window"] == "1970-01-01" and res["player_id"] == "shape"
    assert res["score"] == 42 and res["previous_score"] is None and res["rank"] == 1
    assert res["previous_rank"] is None and res["updated"] is True
    assert t0 - 1000 <= parse_ts(res["achieved_at"]) <= t1 + 1000


def test_best_desc(admin, writer, reader):
    bid = create_board(admin, sort="desc", operator="best")["id"]
    a = submit_ok(writer, bid, "p", 100)
    assert (a["updated"], a["previous_score"], a["score"]) == (True, None, 100)
    time.sleep(0.005)
    b = submit_ok(writer, bid, "p", 50, metadata={"x": 1})
    assert (b["updated"], b["previous_score"], b["score"]) == (False, 100, 100)
    g = player(reader, bid, "p").json()
    assert g["score"] == 100 and g["achieved_at"] == a["achieved_at"] and "metadata" not in g
    b2 = submit_ok(writer, bid, "p", 100)
    assert (b2["updated"], b2["previous_score"], b2["score"]) == (False, 100, 100)
    time.sleep(0.005)
    c = submit_ok(writer, bid, "p", 150, metadata={"y": 2})
    assert (c["updated"], c["previous_score"], c["score"]) == (True, 100, 150)
    g = player(reader, bid, "p").json()
    assert g["score"] == 150 and g["achieved_at"] == c["achieved_at"] and g["metadata"] == {"y": 2}
    assert parse_ts(c["achieved_at"]) >= parse_ts(a["achieved_at"])


def test_best_asc(admin, writer, reader):
    bid = create_board(admin, sort="asc", operator="best")["id"]
    assert submit_ok(writer, bid, "p", 100)["updated"] is True
    r = submit_ok(writer, bid, "p", 150)
    assert (r["updated"], r["previous_score"], r["score"]) == (False, 100, 100)
    r = submit_ok(writer, bid, "p", -3)
    assert (r["updated"], r["previous_score"], r["score"]) == (True, 100, -3)
    submit_ok(writer, bid, "q", 5)
    assert rows(entries_ok(reader, bid)) == [(1, "p", -3), (2, "q", 5)]


def test_latest(admin, writer, reader):
    bid = create_board(admin, sort="desc", operator="latest")["id"]
    a = submit_ok(writer, bid, "p", 100, metadata={"m": 1})
    r = submit_ok(writer, bid, "p", 50)
    assert (r["updated"], r["previous_score"], r["score"]) == (True, 100, 50)
    g = player(reader, bid, "p").json()
    assert "metadata" not in g, "metadata must be absent after an update that sent none: %r" % g
    time.sleep(0.005)
    r2 = submit_ok(writer, bid, "p", 50, metadata={"ignored": True})
    assert (r2["updated"], r2["previous_score"], r2["score"]) == (False, 50, 50)
    g2 = player(reader, bid, "p").json()
    assert g2["achieved_at"] == r["achieved_at"] and "metadata" not in g2
    r3 = submit_ok(writer, bid, "p", 70, metadata={"k": "v"})
    assert (r3["updated"], r3["previous_score"], r3["score"]) == (True, 50, 70)
    assert player(reader, bid, "p").json()["metadata"] == {"k": "v"}
    assert a["updated"] is True


def test_sum_and_overflow(admin, writer, reader, db):
    bid = create_board(admin, sort="desc", operator="sum")["id"]
    r = submit_ok(writer, bid, "p", 10)
    assert (r["updated"], r["previous_score"], r["score"]) == (True, None, 10)
    r = submit_ok(writer, bid, "p", 5)
    assert (r["updated"], r["previous_score"], r["score"]) == (True, 10, 15)
    r = submit_ok(writer, bid, "p", -20)
    assert (r["updated"], r["previous_score"], r["score"]) == (True, 15, -5)
    r = submit_ok(writer, bid, "p", 0)
    assert (r["updated"], r["previous_score"], r["score"]) == (False, -5, -5)
    z = submit_ok(writer, bid, "z", 0)
    assert (z["updated"], z["previous_score"], z["score"]) == (True, None, 0)
    # Overflow upwards and downwards: 400 field score, nothing changes or is counted.
    submit_ok(writer, bid, "hi", SCORE_MAX - 10)
    before = (player(reader, bid, "hi").json(), db.submission_count(bid, "hi"), db.snapshot())
    assert_error(submit(writer, bid, "hi", 11), 400, field="score")
    after = (player(reader, bid, "hi").json(), db.submission_count(bid, "hi"), db.snapshot())
    assert before == after
    r = submit_ok(writer, bid, "hi", 10)
    assert r["score"] == SCORE_MAX
    submit_ok(writer, bid, "lo", SCORE_MIN)
    assert_error(submit(writer, bid, "lo", -1), 400, field="score")
    assert player(reader, bid, "lo").json()["score"] == SCORE_MIN
    assert db.submission_count(bid, "lo") == 1


def test_score_range(admin, writer, reader):
    bid = create_board(admin, sort="desc", operator="latest")["id"]
    assert submit_ok(writer, bid, "max", SCORE_MAX)["score"] == SCORE_MAX
    assert submit_ok(writer, bid, "min", SCORE_MIN)["score"] == SCORE_MIN
    assert_error(submit(writer, bid, "x", SCORE_MAX + 1), 400, field="score")
    assert_error(submit(writer, bid, "x", SCORE_MIN - 1), 400, field="score")
    page = entries_ok(reader, bid)
    assert rows(page) == [(1, "max", SCORE_MAX), (2, "min", SCORE_MIN)]


def test_min_max_score(admin, writer, reader, db):
    bid = create_board(admin, operator="latest", min_score=0, max_score=100)["id"]
    submit_ok(writer, bid, "a", 0)
    submit_ok(writer, bid, "b", 100)
    assert_error(submit(writer, bid, "c", -1), 400, field="score")
    assert_error(submit(writer, bid, "c", 101), 400, field="score")
    assert_error(submit(writer, bid, "a", 101), 400, field="score")
    assert player(reader, bid, "a").json()["score"] == 0
    assert db.submission_count(bid) == 2
    assert entries_ok(reader, bid)["total"] == 2


def test_metadata_compact_key_order(admin, writer, reader):
    bid = create_board(admin)["id"]
    raw = b'{"player_id":"m1","score":5,"metadata":{ "z" : 1, "a" : [1, 2, {"k": "v"}], "m" : null , "b": true}}'
    r = writer.post("/v1/leaderboards/%s/scores" % bid, body=raw)
    assert r.status == 200, r.describe()
    compact = b'{"z":1,"a":[1,2,{"k":"v"}],"m":null,"b":true}'
    g = player(reader, bid, "m1")
    assert g.status == 200, g.describe()
    assert b'"metadata":' + compact in g.body, g.body
    e = entries(reader, bid)
    assert b'"metadata":' + compact in e.body, e.body
    # Reals in their shortest form that reads back the same (as JavaScript and Python print them).
    raw = b'{"player_id":"m2","score":5,"metadata":{"a":0.1,"b":1e2,"c":1.50,"d":-0,"e":0.30000000000000004}}'
    assert writer.post("/v1/leaderboards/%s/scores" % bid, body=raw).status == 200
    g = player(reader, bid, "m2")
    assert b'"metadata":{"a":0.1,"b":100.0,"c":1.5,"d":0,"e":0.30000000000000004}' in g.body, g.body


def test_metadata_size_limit(admin, writer, db):
    bid = create_board(admin, operator="latest")["id"]
    ok = {"s": "x" * 1016}  # compact form is exactly 1024 bytes
    assert len(json.dumps(ok, separators=(",", ":"))) == 1024
    submit_ok(writer, bid, "p1", 1, metadata=ok)
    # Whitespace does not count: compact size is what matters.
    raw = b'{"player_id":"p2","score":1,"metadata":{   "s"   :   "' + b"x" * 1016 + b'"   }}'
    assert writer.post("/v1/leaderboards/%s/scores" % bid, body=raw).status == 200
    assert_error(submit(writer, bid, "p3", 1, metadata={"s": "x" * 1017}), 400, field="metadata")
    raw = b'{"player_id":"p4","score":1,"metadata":{"a":1,"a":2}}'
    assert_error(writer.post("/v1/leaderboards/%s/scores" % bid, body=raw), 400, field="metadata")
    assert_error(submit(writer, bid, "p5", 1, metadata=[1, 2]), 400, field="metadata")
    assert_error(submit(writer, bid, "p5", 1, metadata="str"), 400, field="metadata")
    assert db.submission_count(bid) == 2


def test_tie_breaks(admin, writer, reader):
    bid = create_board(admin, sort="desc", operator="best")["id"]
    # Same score: the earlier achieved_at ranks higher, regardless of id order.
    first = submit_ok(writer, bid, "zzz", 10)
    time.sleep(0.01)
    second = submit_ok(writer, bid, "aaa", 10)
    assert parse_ts(first["achieved_at"]) < parse_ts(second["achieved_at"])
    assert [e["player_id"] for e in entries_ok(reader, bid)["entries"]] == ["zzz", "aaa"]
    # Byte order of player ids for equal (score, achieved_at): use one batch.
    bid2 = create_board(admin, sort="asc", operator="best")["id"]
    ids = ["a", "B", "_", "-", "0", "Z", "a.b", "a:b", "a@b", "A", "a-", "a_", "9z", "..a"]
    r = batch(writer, [{"board": bid2, "player_id": p, "score": 3} for p in ids])
    assert r.status == 200, r.describe()
    res = r.json()["results"]
    ach = {p: parse_ts(x["achieved_at"]) for p, x in zip(ids, res)}
    expected = sorted(ids, key=lambda p: (ach[p], p.encode()))
    page = entries_ok(reader, bid2, limit=100)
    assert [e["player_id"] for e in page["entries"]] == expected
    assert [e["rank"] for e in page["entries"]] == list(range(1, len(ids) + 1))


def test_single_submit_rank(admin, writer):
    bid = create_board(admin, sort="asc", operator="best")["id"]
    assert submit_ok(writer, bid, "a", 50)["rank"] == 1
    assert submit_ok(writer, bid, "b", 40)["rank"] == 1
    assert submit_ok(writer, bid, "c", 60)["rank"] == 3
    assert submit_ok(writer, bid, "c", 45)["rank"] == 2
    assert submit_ok(writer, bid, "a", 55)["rank"] == 3  # not updated, still third


# ---------------------------------------------------------------------------
# Entries, pages and cursors
# ---------------------------------------------------------------------------

def test_entries_paging(admin, writer, reader):
    bid = create_board(admin, sort="desc", operator="best")["id"]
    scores = {"p%02d" % i: 1000 - i for i in range(25)}
    seed(writer, bid, scores)
    order = [(i + 1, "p%02d" % i, 1000 - i) for i in range(25)]
    p1 = entries_ok(reader, bid)
    check_page_shape(p1, bid, "1970-01-01")
    assert rows(p1) == order[:10] and p1["total"] == 25
    assert p1["prev_cursor"] is None and p1["next_cursor"]
    mid = entries_ok(reader, bid, offset=10)
    assert rows(mid) == order[10:20] and mid["prev_cursor"] and mid["next_cursor"]
    last = entries_ok(reader, bid, offset=20, limit=10)
    assert rows(last) == order[20:] and last["next_cursor"] is None and last["prev_cursor"]
    assert rows(entries_ok(reader, bid, limit=25)) == order
    assert entries_ok(reader, bid, limit=25)["next_cursor"] is None
    assert entries_ok(reader, bid, offset=30)["entries"] == []
    assert rows(entries_ok(reader, bid, limit=1000)) == order
    assert rows(entries_ok(reader, bid, limit=1)) == order[:1]
    # Forward with next_cursor.
    c2 = entries_ok(reader, bid, limit=10, cursor=p1["next_cursor"])
    check_page_shape(c2, bid, "1970-01-01")
    assert rows(c2) == order[10:20] and c2["prev_cursor"] and c2["next_cursor"]
    c3 = entries_ok(reader, bid, limit=10, cursor=c2["next_cursor"])
    assert rows(c3) == order[20:] and c3["next_cursor"] is None
    # Backward with prev_cursor: pages stay in rank order; null at the top.
    b2 = entries_ok(reader, bid, limit=10, cursor=c3["prev_cursor"])
    assert rows(b2) == order[10:20]
    b1 = entries_ok(reader, bid, limit=10, cursor=b2["prev_cursor"])
    assert rows(b1) == order[:10] and b1["prev_cursor"] is None and b1["next_cursor"]
    # prev_cursor of an offset page.
    assert rows(entries_ok(reader, bid, limit=10, cursor=last["prev_cursor"])) == order[10:20]
    # A cursor with another limit pages on from its position.
    assert rows(entries_ok(reader, bid, limit=3, cursor=p1["next_cursor"])) == order[10:13]


def test_entries_cursor_survives_score_changes(admin, writer, reader):
    bid = create_board(admin, sort="desc", operator="latest")["id"]
    seed(writer, bid, {"p%d" % i: 100 - 10 * i for i in range(10)})  # p0=100 ... p9=10
    page = entries_ok(reader, bid, limit=3)
    assert [e["player_id"] for e in page["entries"]] == ["p0", "p1", "p2"]
    cur = page["next_cursor"]
    submit_ok(writer, bid, "p5", 1000)   # jumps above the boundary
    submit_ok(writer, bid, "new", 85)    # lands above the boundary (p2 = 80)
    nxt = entries_ok(reader, bid, limit=3, cursor=cur)
    assert rows(nxt) == [(6, "p3", 70), (7, "p4", 60), (8, "p6", 40)], nxt
    assert nxt["total"] == 11


def test_cursor_whose_player_moved_among_ties(admin, writer, reader):
    """Cursor pages from a position no longer in the board, among players tied on score:
    Redis's answer (found by searching the ties) equals PostgreSQL's, both ways."""
    bid = create_board(admin, sort="desc", operator="latest")["id"]
    for i in range(30):  # ten players on each of three scores, achieved one after another
        submit_ok(writer, bid, "t%02d" % i, 50 - 10 * (i % 3))
    for boundary in (4, 15, 25):
        page = entries_ok(reader, bid, limit=boundary)
        mover = page["entries"][-1]["player_id"]
        nxt, prv = page["next_cursor"], page["prev_cursor"] or None
        submit_ok(writer, bid, mover, 7 + boundary)  # leaves its tie group for the bottom
        for cur in (nxt, entries_ok(reader, bid, limit=boundary, cursor=nxt)["prev_cursor"]):
            path = "/v1/leaderboards/%s/entries?limit=6&cursor=%s" % (bid, cur)
            fast, slow = reader.get(path), reader.get(path + "&consistency=strong", key=WRITE_KEY)
            assert fast.status == 200 and fast.body == slow.body, (boundary, fast.body, slow.body)
        submit_ok(writer, bid, mover, 50 - 10 * (int(mover[1:]) % 3))  # back to its score, now achieved last


def test_entries_offset_and_cursor_together(admin, writer, reader):
    bid = create_board(admin)["id"]
    seed(writer, bid, {"p%d" % i: i for i in range(5)})
    c = entries_ok(reader, bid, limit=2)["next_cursor"]
    assert_error(entries(reader, bid, limit=2, offset=2, cursor=c), 400)


def test_entries_empty_board(admin, reader):
    bid = create_board(admin)["id"]
    p = entries_ok(reader, bid)
    check_page_shape(p, bid, "1970-01-01")
    assert p["total"] == 0 and p["entries"] == [] and p["next_cursor"] is None and p["prev_cursor"] is None


def test_entries_missing_board(reader):
    assert_error(entries(reader, unique("nope")), 404, field="board")


def test_cursor_is_bound_to_its_board(admin, writer, reader):
    a = create_board(admin)["id"]
    b = create_board(admin)["id"]
    seed(writer, a, {"p%d" % i: i for i in range(6)})
    seed(writer, b, {"p%d" % i: i for i in range(6)})
    c = entries_ok(reader, a, limit=2)["next_cursor"]
    assert_error(entries(reader, b, limit=2, cursor=c), 400)
    lc = reader.get("/v1/leaderboards?limit=1").json()["next_cursor"]
    assert lc
    assert_error(entries(reader, a, limit=2, cursor=lc), 400)


# ---------------------------------------------------------------------------
# Players: standing, around, friends, delete, standings across boards
# ---------------------------------------------------------------------------

def test_player_standing(admin, writer, reader):
    bid = create_board(admin, sort="desc")["id"]
    res = seed(writer, bid, {"a": 30, "b": 20, "c": 10})
    for rank, pid, score in ((1, "a", 30), (2, "b", 20), (3, "c", 10)):
        r = player(reader, bid, pid)
        assert r.status == 200, r.describe()
        s = r.json()
        assert set(s) >= {"rank", "player_id", "score", "achieved_at", "board", "window", "total", "top_percent"}
        assert (s["rank"], s["player_id"], s["score"]) == (rank, pid, score)
        assert s["board"] == bid and s["window"] == "1970-01-01" and s["total"] == 3
        assert s["achieved_at"] == res[pid]["achieved_at"]
        assert isinstance(s["top_percent"], (int, float)) and not isinstance(s["top_percent"], bool)
        assert abs(s["top_percent"] - top_percent(rank, 3)) < 1e-9, (s["top_percent"], top_percent(rank, 3))
    assert_error(player(reader, bid, "nobody"), 404, field="player_id")
    assert_error(player(reader, unique("nope"), "a"), 404, field="board")


def test_top_percent_rounds_up(admin, writer, reader):
    bid = create_board(admin, sort="desc")["id"]
    items = [{"board": bid, "player_id": "p%04d" % i, "score": 10000 - i} for i in range(1000)]
    assert batch(writer, items).status == 200
    for rank in (1, 7, 333, 999, 1000):
        s = player(reader, bid, "p%04d" % (rank - 1)).json()
        assert s["rank"] == rank
        assert abs(s["top_percent"] - top_percent(rank, 1000)) < 1e-9, (rank, s["top_percent"])


def test_around(admin, writer, reader):
    bid = create_board(admin, sort="desc")["id"]
    seed(writer, bid, {"p%02d" % i: 100 - i for i in range(20)})

    def around(pid, **params):
        qs = urllib.parse.urlencode(params)
        r = reader.get("/v1/leaderboards/%s/players/%s/around%s" % (bid, pid, ("?" + qs) if qs else ""))
        assert r.status == 200, r.describe()
        body = r.json()
        assert body["board"] == bid and body["window"] == "1970-01-01" and body["total"] == 20
        for e in body["entries"]:
            check_entry_shape(e)
        return [e["rank"] for e in body["entries"]]

    assert around("p09", before=2, after=3) == list(range(8, 14))
    assert around("p09") == list(range(5, 16))
    assert around("p00", before=5) == list(range(1, 7))
    assert around("p19", after=5) == list(range(15, 21))
    assert around("p05", before=0, after=0) == [6]
    assert around("p05", before=100, after=100) == list(range(1, 21))
    r = reader.get("/v1/leaderboards/%s/players/nobody/around" % bid)
    assert_error(r, 404, field="player_id")


def test_players_ids(admin, writer, reader):
    bid = create_board(admin, sort="asc")["id"]
    seed(writer, bid, {"p%d" % i: i for i in range(10)})
    r = reader.get("/v1/leaderboards/%s/players?ids=p7,p3,absent,p1,p3" % bid)
    assert r.status == 200, r.describe()
    body = r.json()
    assert body["board"] == bid and body["window"] == "1970-01-01" and body["total"] == 10
    assert rows(body) == [(2, "p1", 1), (4, "p3", 3), (8, "p7", 7)]
    # 100 distinct ids (plus a duplicate) are fine, 101 are not.
    ids = ["p%d" % i for i in range(10)] + ["x%d" % i for i in range(90)]
    r = reader.get("/v1/leaderboards/%s/players?ids=%s" % (bid, ",".join(ids + ["p0"])))
    assert r.status == 200, r.describe()
    assert [e["player_id"] for e in r.json()["entries"]] == ["p%d" % i for i in range(10)]
    r = reader.get("/v1/leaderboards/%s/players?ids=%s" % (bid, ",".join(ids + ["y"])))
    assert_error(r, 400)
    assert_error(reader.get("/v1/leaderboards/%s/players?ids=p1,.." % bid), 400)
    r = reader.get("/v1/leaderboards/%s/players?ids=nobody" % bid)
    assert r.status == 200 and r.json()["entries"] == []


def test_delete_player(admin, writer, reader, db):
    bid = create_board(admin, sort="desc")["id"]
    seed(writer, bid, {"p1": 50, "p2": 40, "p3": 30, "p4": 20})
    submit_ok(writer, bid, "p2", 45)
    assert_error(admin.delete("/v1/leaderboards/%s/players/p2" % bid, key=WRITE_KEY), 403)
    r = admin.delete("/v1/leaderboards/%s/players/p2" % bid)
    assert r.status == 204, r.describe()
    assert_error(player(reader, bid, "p2"), 404, field="player_id")
    assert player(reader, bid, "p3").json()["rank"] == 2
    page = entries_ok(reader, bid)
    assert rows(page) == [(1, "p1", 50), (2, "p3", 30), (3, "p4", 20)] and page["total"] == 3
    assert reader.get("/v1/leaderboards/" + bid).json()["players"] == 3
    assert db.submission_count(bid, "p2") == 0
    assert_error(admin.delete("/v1/leaderboards/%s/players/p2" % bid), 404)
    assert_error(admin.delete("/v1/leaderboards/%s/players/never" % bid), 404)


def test_player_standings_across_boards(admin, writer, reader):
    b1 = create_board(admin, sort="desc")["id"]
    b2 = create_board(admin, sort="asc", reset="daily")["id"]
    b3 = create_board(admin)["id"]
    pid = unique("pl")
    submit_ok(writer, b1, pid, 10)
    submit_ok(writer, b1, "other", 20)
    submit_ok(writer, b2, pid, 5)
    submit_ok(writer, b3, "other", 1)
    r = reader.get("/v1/players/%s/standings" % pid)
    assert r.status == 200, r.describe()
    body = r.json()
    assert body["player_id"] == pid
    got = {s["board"]: s for s in body["standings"]}
    assert set(got) == {b1, b2}
    assert (got[b1]["rank"], got[b1]["score"], got[b1]["total"]) == (2, 10, 2)
    assert got[b1]["window"] == "1970-01-01"
    assert (got[b2]["rank"], got[b2]["score"], got[b2]["total"]) == (1, 5, 1)
    assert abs(got[b1]["top_percent"] - 100) < 1e-9
    r = reader.get("/v1/players/%s/standings" % unique("nobody"))
    assert r.status == 200 and r.json()["standings"] == []


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------

def test_scores_batch_per_item_results(admin, writer, reader, db):
    b1 = create_board(admin, sort="desc", operator="best")["id"]
    b2 = create_board(admin, sort="asc", operator="latest")["id"]
    missing = unique("missing")
    items = [
        {"board": b1, "player_id": "p1", "score": 10},
        {"board": "BAD ID", "player_id": "p1", "score": 10},
        {"board": missing, "player_id": "p1", "score": 10},
        {"board": b1, "player_id": "..", "score": 10},
        {"board": b1, "player_id": "p2", "score": SCORE_MAX + 1},
        {"board": b1, "player_id": "p1", "score": 5},
        {"board": b2, "player_id": "p1", "score": 7, "metadata": {"a": 1}},
        {"board": b1, "player_id": "p3", "score": 1, "metadata": {"s": "x" * 1100}},
    ]
    r = batch(writer, items)
    assert r.status == 200, r.describe()
    assert "no-store" in r.header_tokens("Cache-Control")
    res = r.json()["results"]
    assert len(res) == len(items)
    assert res[0]["score"] == 10 and res[0]["updated"] is True and res[0]["board"] == b1
    for i, (code, field) in ((1, ("invalid_argument", "board")), (2, ("not_found", "board")),
                             (3, ("invalid_argument", "player_id")), (4, ("invalid_argument", "score")),
                             (7, ("invalid_argument", "metadata"))):
        assert set(res[i]) == {"error"}, (i, res[i])
        assert res[i]["error"]["code"] == code, (i, res[i])
        assert res[i]["error"].get("field") == field, (i, res[i])
        assert isinstance(res[i]["error"].get("message"), str)
    assert (res[5]["updated"], res[5]["score"], res[5]["previous_score"]) == (False, 10, 10)
    assert res[6]["board"] == b2 and res[6]["score"] == 7
    assert rows(entries_ok(reader, b1)) == [(1, "p1", 10)]
    assert player(reader, b2, "p1").json()["metadata"] == {"a": 1}
    assert db.submission_count(b1) == 2


def test_scores_batch_same_player_in_order(admin, writer, reader):
    bid = create_board(admin, operator="sum")["id"]
    items = [{"board": bid, "player_id": "p", "score": s} for s in (10, 20, 5, 0, SCORE_MAX, -7)]
    res = batch(writer, items).json()["results"]
    assert [(x.get("previous_score"), x.get("score"), x.get("updated")) for x in res[:4]] == \
        [(None, 10, True), (10, 30, True), (30, 35, True), (35, 35, False)]
    assert res[4]["error"]["field"] == "score"
    assert (res[5]["previous_score"], res[5]["score"]) == (35, 28)
    assert player(reader, bid, "p").json()["score"] == 28


def test_scores_batch_limits(admin, writer, reader):
    bid = create_board(admin)["id"]
    items = [{"board": bid, "player_id": "p%04d" % i, "score": i} for i in range(1000)]
    r = batch(writer, items)
    assert r.status == 200, r.describe()
    assert len(r.json()["results"]) == 1000
    assert entries_ok(reader, bid)["total"] == 1000
    assert_error(batch(writer, items + [{"board": bid, "player_id": "x", "score": 1}]), 400)
    assert_error(batch(writer, []), 400)
    assert_error(batch(writer, items[:1], key=READ_KEY), 403)
    assert_error(batch(writer, items[:1], key=None), 401)
    assert entries_ok(reader, bid)["total"] == 1000


def test_v1_batch(admin, writer, reader):
    bid = create_board(admin)["id"]
    seed(writer, bid, {"a": 3, "b": 2, "c": 1})
    missing = unique("missing")
    paths = [
        "/v1/leaderboards/" + bid,
        "/v1/leaderboards/%s/entries?limit=2" % bid,
        "/v1/leaderboards/%s/players/b" % bid,
        "/v1/leaderboards/" + missing,
        "/v1/leaderboards/%s/players?ids=a,c" % bid,
        "/v1/scores:batch",
        "/healthz",
    ]
    r = reader.post("/v1/batch", json_body={"requests": [{"path": p} for p in paths]})
    assert r.status == 200, r.describe()
    assert "no-store" in r.header_tokens("Cache-Control")
    resp = r.json()["responses"]
    assert len(resp) == len(paths)
    for i in range(5):
        direct = reader.get(paths[i])
        assert resp[i]["status"] == direct.status, (paths[i], resp[i])
        assert resp[i]["body"] == direct.json(), (paths[i], resp[i])
    assert resp[3]["status"] == 404 and resp[3]["body"]["error"]["code"] == "not_found"
    for i in (5, 6):
        assert resp[i]["status"] == 400, (paths[i], resp[i])
        assert resp[i]["body"]["error"]["code"] == "invalid_argument", resp[i]
    assert_error(reader.post("/v1/batch", json_body={"requests": []}), 400)
    assert_error(reader.post("/v1/batch", json_body={"requests": [{"path": paths[0]}] * 51}), 400)
    r = reader.post("/v1/batch", json_body={"requests": [{"path": paths[0]}] * 50})
    assert r.status == 200 and len(r.json()["responses"]) == 50


# ---------------------------------------------------------------------------
# Roles and the order of checks
# ---------------------------------------------------------------------------

def test_roles(admin, writer, reader, anon, rankd):
    bid = create_board(admin)["id"]
    body = {"id": unique("r"), "title": "t", "sort": "desc", "operator": "best", "reset": "none"}
    assert_error(anon.post("/v1/leaderboards", json_body=body), 401)
    assert_error(reader.post("/v1/leaderboards", json_body=body), 403)
    assert_error(writer.post("/v1/leaderboards", json_body=body), 403)
    assert_error(writer.delete("/v1/leaderboards/" + bid), 403)
    assert_error(writer.post("/v1/admin/refresh"), 403)
    assert_error(reader.post("/v1/admin/rebuild-cache"), 403)
    assert_error(submit(anon, bid, "p", 1, key=None), 401)
    assert_error(submit(reader, bid, "p", 1, key=READ_KEY), 403)
    assert submit(admin, bid, "p", 1, key=ADMIN_KEY).status == 200  # admin includes write
    assert writer.get("/v1/leaderboards/" + bid).status == 200       # write includes read
    assert anon.get("/v1/leaderboards/" + bid).status == 200          # public reads
    bad = rankd.client("not-a-valid-key")
    try:
        assert_error(bad.get("/v1/leaderboards/" + bid), 401)  # a presented key must be valid
        assert_error(bad.get("/v1/leaderboards"), 401)
        r = bad.get("/v1/leaderboards/%s/entries" % bid, headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert_error(r, 401)
    finally:
        bad.close()


def test_order_of_checks(admin, writer, rankd):
    bid = create_board(admin)["id"]
    bad = rankd.client("not-a-valid-key")
    try:
        # route before method before authentication
        assert_error(bad.get("/v1/nope"), 404)
        assert_error(bad.get("/v1/leaderboards/%s/nope" % bid), 404)
        r = bad.request("PUT", "/v1/leaderboards", body=b"{}")
        assert_error(r, 405)
        allow = r.header_tokens("Allow")
        assert "get" in allow and "post" in allow, allow
        r = bad.request("PUT", "/v1/leaderboards/%s/scores" % bid, body=b"{}")
        assert_error(r, 405)
        assert "post" in r.header_tokens("Allow")
    finally:
        bad.close()
    path = "/v1/leaderboards/%s/scores" % bid
    big = b'{"player_id":"p","score":1,"metadata":{"s":"' + b"x" * 70000 + b'"}}'
    # authentication before body size
    assert_error(writer.post(path, body=big, key=None), 401)
    assert_error(writer.post(path, body=big, key=READ_KEY), 403)
    # body size before content type
    assert_error(writer.post(path, body=big), 413)
    assert_error(writer.post(path, body=big, content_type="text/plain"), 413)
    # content type before syntax
    assert_error(writer.post(path, body=b"{not json", content_type="text/plain"), 415)
    assert_error(writer.post(path, body=b"{not json"), 400)
    # syntax and values before existence
    missing = "/v1/leaderboards/%s/scores" % unique("missing")
    assert_error(writer.post(missing, body=b"{not json"), 400)
    assert_error(writer.post(missing, json_body={"player_id": "p", "score": 1.5}), 400, field="score")
    assert_error(writer.post(missing, json_body={"player_id": "p", "score": 1}), 404, field="board")
    # authentication before existence
    assert_error(writer.delete("/v1/leaderboards/" + unique("missing")), 403)
    # a Content-Type with parameters is still JSON
    r = writer.post(path, body=b'{"player_id":"p","score":1}', content_type="application/json; charset=utf-8")
    assert r.status == 200, r.describe()


def test_no_body_no_415(admin):
    r = admin.post("/v1/admin/refresh", body=None)
    assert r.status == 200, r.describe()
    body = r.json()
    assert "refreshed" in body or "skipped" in body, body
    r = admin.post("/v1/admin/refresh", json_body={})  # an empty object carries nothing either
    assert r.status == 200, r.describe()
    bid = create_board(admin)["id"]
    assert admin.delete("/v1/leaderboards/" + bid).status == 204


def test_public_reads_false(rankd_factory, admin):
    bid = create_board(admin)["id"]
    submit_ok(admin, bid, "p", 1, key=WRITE_KEY)
    inst = rankd_factory(public_reads=False)
    anon = inst.client(None)
    rd = inst.client(READ_KEY)
    try:
        assert_error(anon.get("/v1/leaderboards/%s/entries" % bid), 401)
        assert_error(anon.get("/v1/leaderboards"), 401)
        r = rd.get("/v1/leaderboards/%s/entries" % bid)
        assert r.status == 200, r.describe()
        cc = r.header_tokens("Cache-Control")
        assert "private" in cc and "public" not in cc, cc
        assert anon.get("/healthz").status == 200
        # What needs no key is the same for everyone: public whatever the reads.
        for path in ("/v1/openapi.json", "/dashboard/"):
            r = anon.get(path)
            assert r.status == 200 and "public" in r.header_tokens("Cache-Control"), (path, r.headers)
    finally:
        anon.close()
        rd.close()


def test_env_overrides(rankd_factory):
    key = "env-admin-key-0123456789"
    inst = rankd_factory(env={"RANKD_ADMIN_KEY": key, "RANKD_PUBLIC_READS": "false"})
    c = inst.client(key)
    anon = inst.client(None)
    try:
        b = create_board(c)
        assert b["id"]
        assert_error(anon.get("/v1/leaderboards/" + b["id"]), 401)
    finally:
        c.close()
        anon.close()


# ---------------------------------------------------------------------------
# HTTP behaviour: request ids, CORS, HEAD, caching headers, compression
# ---------------------------------------------------------------------------

def test_request_id(anon):
    rid = "req-ABC_123.xyz~!"
    r = anon.get("/healthz", headers={"X-Request-Id": rid})
    assert r.header("X-Request-Id") == rid
    r = anon.get("/v1/nope", headers={"X-Request-Id": rid})
    assert r.header("X-Request-Id") == rid
    r = anon.get("/healthz", headers={"X-Request-Id": "x" * 64})
    assert r.header("X-Request-Id") == "x" * 64
    for bad in ("x" * 65, "has space", "tab\there", b"caf\xc3\xa9"):
        r = anon.get("/healthz", headers={"X-Request-Id": bad})
        got = r.header("X-Request-Id")
        assert got, "no generated X-Request-Id for invalid %r" % bad
        assert got != (bad if isinstance(bad, str) else bad.decode("latin-1"))
        assert 1 <= len(got) <= 64 and all(0x21 <= ord(ch) <= 0x7E for ch in got), got


CORS_HEADERS = {"authorization", "content-type", "idempotency-key", "if-none-match", "last-event-id", "x-request-id"}
CORS_EXPOSE = {"etag", "location", "retry-after", "x-request-id"}


def test_cors_preflight_allowed_origin(anon, admin):
    bid = create_board(admin)["id"]
    r = anon.options("/v1/leaderboards/%s/scores" % bid,
                     headers={"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST",
                              "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status == 204, r.describe()
    assert r.header("Access-Control-Allow-Methods"), r.headers
    assert CORS_HEADERS <= set(r.header_tokens("Access-Control-Allow-Headers")), r.headers
    assert r.header("Access-Control-Max-Age"), r.headers
    assert r.header("Access-Control-Allow-Origin") in (CORS_ORIGIN, "*"), r.headers
    assert CORS_EXPOSE <= set(r.header_tokens("Access-Control-Expose-Headers")), r.headers


def test_cors_preflight_other_origin(anon, admin):
    bid = create_board(admin)["id"]
    r = anon.options("/v1/leaderboards/%s/scores" % bid,
                     headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert r.status == 204, r.describe()
    for h in ("Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age",
              "Access-Control-Allow-Origin", "Access-Control-Expose-Headers"):
        assert r.header(h) is None, (h, r.headers)


def test_options_without_origin(anon):
    r = anon.options("/v1/leaderboards")
    assert r.status == 204, r.describe()
    allow = r.header_tokens("Allow")
    assert "get" in allow and "post" in allow, r.headers


def test_cors_on_responses(anon, admin):
    bid = create_board(admin)["id"]
    r = anon.get("/v1/leaderboards/" + bid, headers={"Origin": CORS_ORIGIN})
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") in (CORS_ORIGIN, "*"), r.headers
    assert CORS_EXPOSE <= set(r.header_tokens("Access-Control-Expose-Headers")), r.headers
    assert "origin" in r.header_tokens("Vary"), r.headers
    r = anon.get("/v1/leaderboards/" + unique("missing"), headers={"Origin": CORS_ORIGIN})
    assert r.status == 404 and r.header("Access-Control-Allow-Origin") in (CORS_ORIGIN, "*")
    r = anon.get("/v1/leaderboards/" + bid, headers={"Origin": "https://evil.example"})
    assert r.status == 200 and r.header("Access-Control-Allow-Origin") is None, r.headers


def _comparable_headers(r):
    skip = {"date", "x-request-id", "connection", "keep-alive"}
    return sorted((k.lower(), v) for k, v in r.headers if k.lower() not in skip)


def test_head(admin, writer, anon):
    bid = create_board(admin)["id"]
    seed(writer, bid, {"a": 1, "b": 2})
    for path in ("/v1/leaderboards/%s/entries" % bid, "/v1/leaderboards/" + bid, "/healthz",
                 "/v1/leaderboards/%s/players/a" % bid, "/v1/leaderboards/" + unique("missing"),
                 "/v1/leaderboards/%s/players/zz" % bid):
        g = anon.get(path)
        h = anon.head(path)
        assert h.status == g.status, (path, g.status, h.status)
        assert h.body == b"", path
        assert h.header("Content-Length") == str(len(g.body)), (path, h.headers)
        assert _comparable_headers(h) == _comparable_headers(g), path


def test_etag_and_conditional_get(admin, writer, anon):
    bid = create_board(admin, operator="best")["id"]
    seed(writer, bid, {"a": 10, "b": 5})
    path = "/v1/leaderboards/%s/entries" % bid
    r1 = anon.get(path)
    etag = r1.header("ETag")
    assert etag and etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/"), etag
    cc = r1.header_tokens("Cache-Control")
    assert "public" in cc and "max-age=1" in cc, cc
    r2 = anon.get(path)
    assert r2.body == r1.body and r2.header("ETag") == etag, "bodies carry no per-response state"
    r = anon.get(path, headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b"", r.describe()
    r = anon.get(path, headers={"If-None-Match": '"nope", %s' % etag})
    assert r.status == 304, r.describe()
    r = anon.get(path, headers={"If-None-Match": '"nope"'})
    assert r.status == 200 and r.body == r1.body
    submit_ok(writer, bid, "b", 1)  # best: changes nothing
    assert anon.get(path).header("ETag") == etag
    submit_ok(writer, bid, "b", 20)
    r3 = anon.get(path)
    assert r3.header("ETag") != etag
    assert anon.get(path, headers={"If-None-Match": etag}).status == 200


def test_cache_control_errors_and_writes(admin, writer, anon):
    bid = create_board(admin)["id"]
    r = anon.get("/v1/leaderboards/%s/players/nobody" % bid)
    assert r.status == 404 and "no-store" in r.header_tokens("Cache-Control"), r.headers
    r = submit(writer, bid, "p", 1)
    assert "no-store" in r.header_tokens("Cache-Control")
    r = admin.post("/v1/admin/refresh")
    assert "no-store" in r.header_tokens("Cache-Control")


def test_compression(admin, writer, anon):
    bid = create_board(admin)["id"]
    items = [{"board": bid, "player_id": "player-%03d" % i, "score": i, "metadata": {"level": i, "n": "x" * 20}}
             for i in range(60)]
    assert batch(writer, items).status == 200
    path = "/v1/leaderboards/%s/entries?limit=50" % bid
    ident = anon.get(path)
    assert len(ident.body) >= 1024
    assert ident.header("Content-Encoding") in (None, "identity")
    assert "accept-encoding" in ident.header_tokens("Vary"), ident.headers
    gz = anon.get(path, headers={"Accept-Encoding": "gzip"})
    assert gz.header("Content-Encoding") == "gzip", gz.headers
    assert gzip.decompress(gz.body) == ident.body
    assert "accept-encoding" in gz.header_tokens("Vary")
    assert gz.header("ETag") and gz.header("ETag") != ident.header("ETag")
    br = anon.get(path, headers={"Accept-Encoding": "gzip, br"})
    assert br.header("Content-Encoding") == "br", br.headers
    nb = anon.get(path, headers={"Accept-Encoding": "br;q=0, gzip"})
    assert nb.header("Content-Encoding") == "gzip", nb.headers
    no = anon.get(path, headers={"Accept-Encoding": "gzip;q=0"})
    assert no.header("Content-Encoding") in (None, "identity") and no.body == ident.body
    # Any variant's ETag matches.
    r = anon.get(path, headers={"Accept-Encoding": "gzip", "If-None-Match": ident.header("ETag")})
    assert r.status == 304, r.describe()
    # A 304 carries the tag its 200 would have (RFC 9110 15.4.5): the client's variant.
    assert r.header("ETag") == gz.header("ETag"), r.headers
    r = anon.get(path, headers={"If-None-Match": gz.header("ETag")})
    assert r.status == 304 and r.header("ETag") == ident.header("ETag"), r.describe()
    r = anon.get(path, headers={"Accept-Encoding": "br", "If-None-Match": gz.header("ETag")})
    assert r.status == 304 and r.header("ETag") == br.header("ETag"), r.describe()
    # Small bodies stay identity.
    small = anon.get("/v1/leaderboards/%s/entries?limit=1" % bid, headers={"Accept-Encoding": "gzip, br"})
    assert len(small.body) < 1024 and small.header("Content-Encoding") in (None, "identity")
    # Answers that are not cacheable reads are compressed too, without a tag: a batch of reads, /metrics.
    reads = {"requests": [{"path": path}] * 3}
    plain = anon.post("/v1/batch", json_body=reads)
    assert plain.status == 200 and len(plain.body) >= 1024, plain.describe()
    assert plain.header("Content-Encoding") in (None, "identity") and "accept-encoding" in plain.header_tokens("Vary")
    zb = anon.post("/v1/batch", json_body=reads, headers={"Accept-Encoding": "gzip"})
    assert zb.header("Content-Encoding") == "gzip" and zb.header("ETag") is None, zb.headers
    assert json.loads(gzip.decompress(zb.body)) == plain.json()
    m = admin.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert m.status == 200 and m.header("Content-Encoding") == "gzip", m.headers
    assert b"rankd_" in gzip.decompress(m.body)


# ---------------------------------------------------------------------------
# Idempotency keys
# ---------------------------------------------------------------------------

def test_idempotent_replay(admin, writer, db):
    bid = create_board(admin, sort="desc", operator="sum")["id"]
    key = "k-" + unique("i")
    body = {"player_id": "p", "score": 5, "metadata": {"a": 1}}
    r1 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=body, headers={"Idempotency-Key": key})
    assert r1.status == 200, r1.describe()
    submit_ok(writer, bid, "other", 100)  # moves p to rank 2
    snap = db.snapshot()
    r2 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=body, headers={"Idempotency-Key": key})
    assert r2.status == 200, r2.describe()
    assert r2.body == r1.body, "replay is not byte for byte:\n%r\n%r" % (r1.body, r2.body)
    assert db.snapshot() == snap
    r3 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=dict(body, score=6),
                     headers={"Idempotency-Key": key})
    assert_error(r3, 409)
    assert db.snapshot() == snap
    # Scoped to the board: the same key on another board is a new submission.
    other = create_board(admin, operator="sum")["id"]
    r4 = writer.post("/v1/leaderboards/%s/scores" % other, json_body=body, headers={"Idempotency-Key": key})
    assert r4.status == 200 and r4.json()["board"] == other and r4.json()["updated"] is True


def key_row(db, bid, key):
    return db.query("SELECT k.response, k.draft FROM idempotency_keys k JOIN boards b ON b.gen = k.board_gen "
                    "WHERE b.id = %s AND k.key = %s", (bid, stored_key(key)))


def test_idempotency_answer_lost_after_commit_is_completed_from_its_draft(admin, writer, db):
    """An instance that stops between its commit and storing the answer leaves the key
    with a draft and no response: a replay answers 200 (never 409 until the key expires),
    the same bytes every time, and changes nothing."""
    bid = create_board(admin, sort="desc", operator="best")["id"]
    key = "k-" + unique("d")
    body = {"player_id": "p", "score": 50}
    r1 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=body, headers={"Idempotency-Key": key})
    assert r1.status == 200, r1.describe()
    assert r1.json()["rank"] == 1
    response, draft = key_row(db, bid, key)[0]
    assert response == r1.body.decode()
    assert draft == r1.body.decode().replace('"rank":1,', '"rank":0,'), draft
    # What a stop right after the commit leaves behind; then p falls to rank 2.
    db.query("UPDATE idempotency_keys k SET response = NULL FROM boards b "
             "WHERE b.gen = k.board_gen AND b.id = %s AND k.key = %s", (bid, stored_key(key)))
    submit_ok(writer, bid, "q", 90)
    snap = db.snapshot()
    r2 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=body, headers={"Idempotency-Key": key})
    assert r2.status == 200, r2.describe()
    assert r2.body == draft.replace('"rank":0,', '"rank":2,').encode(), r2.body
    assert db.snapshot() == snap
    assert db.submission_count(bid, "p") == 1
    assert key_row(db, bid, key)[0][0] == r2.body.decode()
    # Stored: later replays, alone or twice in one batch, send the same bytes.
    r3 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=body, headers={"Idempotency-Key": key})
    assert r3.status == 200 and r3.body == r2.body, r3.describe()
    item = {"board": bid, "player_id": "p", "score": 50, "idempotency_key": key}
    rb = batch(writer, [item, item])
    assert rb.status == 200, rb.describe()
    assert rb.json()["results"] == [json.loads(r2.body)] * 2
    # A different body is still a conflict.
    assert_error(writer.post("/v1/leaderboards/%s/scores" % bid, json_body=dict(body, score=51),
                             headers={"Idempotency-Key": key}), 409)
    assert db.snapshot() == snap


def test_idempotency_answer_stored_first_elsewhere_is_the_one_sent(admin, writer, rankd, db):
    """Two parties complete one lost answer (a replay here, the batch's writer or a replay on
    another instance): the first stored wins, and the other sends those bytes, not its own."""
    bid = create_board(admin, sort="desc", operator="best")["id"]
    key = "k-" + unique("w")
    item = {"board": bid, "player_id": "p", "score": 20, "idempotency_key": key}
    r1 = batch(writer, [item])
    assert r1.status == 200, r1.describe()
    db.query("UPDATE idempotency_keys k SET response = NULL FROM boards b "
             "WHERE b.gen = k.board_gen AND b.id = %s AND k.key = %s", (bid, stored_key(key)))
    # Hold the board row: the replay's batch reads the key's draft, then waits for the
    # board lock it takes for its other item.
    locker = db.connect()
    locker.autocommit = False
    got = {}
    try:
        with locker.cursor() as cur:
            cur.execute("SELECT 1 FROM boards WHERE id = %s FOR UPDATE", (bid,))

        def replay():
            c = rankd.client(WRITE_KEY)
            try:
                got["r"] = batch(c, [item, {"board": bid, "player_id": "q", "score": 1}])
            finally:
                c.close()
        t = threading.Thread(target=replay)
        t.start()
        wait_for(lambda: db.lock_waiters("SELECT gen FROM boards%") == 1, "the replay's batch to wait for the board",
                 10)
        first = json.loads(r1.body)["results"][0]
        first["rank"] = 999  # bytes no rank query would give
        stored = json.dumps(first, separators=(",", ":"))
        db.query("UPDATE idempotency_keys k SET response = %s FROM boards b "
                 "WHERE b.gen = k.board_gen AND b.id = %s AND k.key = %s", (stored, bid, stored_key(key)))
        locker.rollback()
        t.join(30)
        assert not t.is_alive(), "the replay was not answered"
    finally:
        locker.close()
    r2 = got["r"]
    assert r2.status == 200, r2.describe()
    assert r2.json()["results"][0] == first
    assert key_row(db, bid, key)[0][0] == stored
    assert db.submission_count(bid, "p") == 1 and db.submission_count(bid, "q") == 1


def test_idempotency_answer_lost_is_completed_in_its_own_window_after_rollover(admin, writer, db):
    """The rank that completes a draft is the one in the submission's window, not in the
    window current at the replay. Moved a day back by SQL: what a replay tomorrow sees."""
    bid = create_board(admin, sort="desc", operator="best", reset="daily")["id"]
    key = "k-" + unique("r")
    body = {"player_id": "p", "score": 5}
    r1 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=body, headers={"Idempotency-Key": key})
    assert r1.status == 200, r1.describe()
    today = r1.json()["window"]
    yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (bid,))[0][0]
    db.query("UPDATE standings SET win = %s WHERE board_gen = %s", (yesterday, gen))
    db.query("UPDATE window_counts SET win = %s WHERE board_gen = %s", (yesterday, gen))
    db.query("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, version) "
             "SELECT %s, %s, 'ahead', 9, -9, 0, nextval('standing_version')", (gen, yesterday))
    db.query("DELETE FROM rank_buckets WHERE board_gen = %s", (gen,))  # what rankd writes beside standings
    db.query("DELETE FROM rank_supers WHERE board_gen = %s", (gen,))
    db.query("UPDATE window_counts SET players = 2 WHERE board_gen = %s", (gen,))
    db.query("SELECT rankd_rank_buckets_build(%s, %s)", (gen, yesterday))
    db.query("UPDATE idempotency_keys SET response = NULL, draft = replace(draft, %s, %s) "
             "WHERE board_gen = %s AND key = %s", ('"window":"%s"' % today, '"window":"%s"' % yesterday, gen,
                                                    stored_key(key)))
    r2 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=body, headers={"Idempotency-Key": key})
    assert r2.status == 200, r2.describe()
    assert r2.json()["window"] == yesterday and r2.json()["rank"] == 2, r2.body
    assert db.submission_count(bid, "p") == 1


def test_idempotency_answer_lost_for_a_player_deleted_since_is_a_conflict(admin, writer, db):
    """A draft whose standing is gone cannot be completed: 409, never a 503 to retry forever."""
    bid = create_board(admin, operator="sum")["id"]
    key = "k-" + unique("x")
    body = {"player_id": "gone", "score": 7}
    r1 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=body, headers={"Idempotency-Key": key})
    assert r1.status == 200, r1.describe()
    db.query("UPDATE idempotency_keys k SET response = NULL FROM boards b "
             "WHERE b.gen = k.board_gen AND b.id = %s AND k.key = %s", (bid, stored_key(key)))
    assert admin.delete("/v1/leaderboards/%s/players/gone" % bid).status == 204
    snap = db.snapshot()
    r2 = writer.post("/v1/leaderboards/%s/scores" % bid, json_body=body, headers={"Idempotency-Key": key})
    assert_error(r2, 409)
    assert db.snapshot() == snap
    assert key_row(db, bid, key)[0][0] is None


def test_idempotency_key_without_answer_or_draft_is_in_progress(admin, writer, db):
    """A key row with neither (another transaction's claim, seen by no one but PostgreSQL
    until it commits, or a row from before drafts) is 409, not a second application."""
    bid = create_board(admin, operator="sum")["id"]
    key = "k-" + unique("n")
    r1 = submit(writer, bid, "p", 3, headers={"Idempotency-Key": key})
    assert r1.status == 200, r1.describe()
    db.query("UPDATE idempotency_keys k SET response = NULL, draft = NULL FROM boards b "
             "WHERE b.gen = k.board_gen AND b.id = %s AND k.key = %s", (bid, stored_key(key)))
    snap = db.snapshot()
    assert_error(submit(writer, bid, "p", 3, headers={"Idempotency-Key": key}), 409)
    assert db.snapshot() == snap


def test_idempotency_failed_not_remembered(admin, writer):
    bid = create_board(admin, operator="sum")["id"]
    submit_ok(writer, bid, "p", SCORE_MAX)
    key = "k-" + unique("f")
    assert_error(submit(writer, bid, "p", 1, headers={"Idempotency-Key": key}), 400, field="score")
    r = submit(writer, bid, "p", -1, headers={"Idempotency-Key": key})
    assert r.status == 200, "a refused submission's key must not be remembered: " + r.describe()


def test_idempotency_concurrent(admin, writer, rankd, db):
    bid = create_board(admin, operator="sum")["id"]
    key = "k-" + unique("c")
    results = []

    def go():
        c = rankd.client(WRITE_KEY)
        try:
            results.append(submit(c, bid, "p", 3, headers={"Idempotency-Key": key}))
        finally:
            c.close()

    ts = [threading.Thread(target=go) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    oks = [r for r in results if r.status == 200]
    assert len(results) == 6
    assert all(r.status in (200, 409) for r in results), [r.describe() for r in results]
    assert oks, "no request succeeded"
    assert len({r.body for r in oks}) == 1
    assert db.submission_count(bid, "p") == 1
    assert oks[0].json()["score"] == 3


def test_idempotency_in_batch(admin, writer, db):
    bid = create_board(admin, operator="sum")["id"]
    key = "bk-" + unique("b")
    item = {"board": bid, "player_id": "p", "score": 4, "idempotency_key": key}
    r1 = batch(writer, [item])
    assert r1.status == 200, r1.describe()
    snap = db.snapshot()
    r2 = batch(writer, [item, {"board": bid, "player_id": "q", "score": 1}])
    assert r2.status == 200
    assert r2.json()["results"][0] == r1.json()["results"][0]
    assert db.submission_count(bid, "p") == 1
    r3 = batch(writer, [dict(item, score=5)])
    assert r3.json()["results"][0]["error"]["code"] == "conflict"
    assert db.submission_count(bid, "p") == 1
    assert snap["idempotency_keys"] == db.snapshot()["idempotency_keys"]


def test_idempotency_key_validation(admin, writer, db):
    bid = create_board(admin)["id"]
    for bad in ("", "x" * 129, "has space", "tab\tkey", b"caf\xc3\xa9"):
        r = submit(writer, bid, "p", 1, headers={"Idempotency-Key": bad})
        assert_error(r, 400)
    r = submit(writer, bid, "p", 1, headers={"Idempotency-Key": "!" + "~" * 127})
    assert r.status == 200, r.describe()
    assert db.submission_count(bid) == 1


# ---------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("reset", ["daily", "weekly", "monthly"])
def test_windowed_board(admin, writer, reader, reset):
    before = window_start(reset)
    b = create_board(admin, reset=reset)
    after = window_start(reset)
    win = b["current_window"]
    assert win in (before.isoformat(), after.isoformat()), (win, before)
    day = dt.date.fromisoformat(win)
    assert window_start(reset, day) == day
    nxt = next_window_start(reset, day)
    assert b["next_reset_at"] == nxt.isoformat() + "T00:00:00.000Z", b
    res = submit_ok(writer, b["id"], "p", 10)
    if res["window"] != win:  # the window rolled over between the calls
        pytest.skip("window rolled over during the test")
    page = entries_ok(reader, b["id"])
    assert page["window"] == win and rows(page) == [(1, "p", 10)]
    assert entries_ok(reader, b["id"], window=win) == page
    assert entries_ok(reader, b["id"], window="current") == page
    s = player(reader, b["id"], "p").json()
    assert s["window"] == win
    # A well-formed date of a window that does not exist: 404 field window.
    old = window_start(reset, dt.date(2000, 1, 5)).isoformat()
    assert_error(entries(reader, b["id"], window=old), 404, field="window")
    if reset == "weekly":
        not_monday = day + dt.timedelta(days=1)
        assert_error(entries(reader, b["id"], window=not_monday.isoformat()), 400, field="window")
    if reset == "monthly":
        assert_error(entries(reader, b["id"], window=day.replace(day=2).isoformat()), 400, field="window")


def test_window_values(admin, reader):
    bid = create_board(admin)["id"]
    assert entries(reader, bid, window="1970-01-01").status == 200
    for bad in ("bogus", "2024-02-30", "2024-1-01", "20240101", ""):
        assert_error(entries(reader, bid, window=bad), 400, field="window")
    d = create_board(admin, reset="daily")["id"]
    p = entries_ok(reader, d)
    assert p["total"] == 0 and p["entries"] == []


# ---------------------------------------------------------------------------
# More of the contract: query handling, limits, configuration, instances
# ---------------------------------------------------------------------------

def test_unknown_query_params_ignored(admin, writer, anon):
    bid = create_board(admin)["id"]
    seed(writer, bid, {"a": 1, "b": 2})
    base = anon.get("/v1/leaderboards/%s/entries" % bid)
    r = anon.get("/v1/leaderboards/%s/entries?_=12345&foo=bar&utm_source=x" % bid)
    assert r.status == 200 and r.body == base.body, r.describe()
    r = anon.get("/v1/leaderboards/%s?cachebuster=1" % bid)
    assert r.status == 200, r.describe()


def test_consistency_strong(admin, writer, reader, anon):
    """consistency=strong reads what the plain read reads, from the primary. API.md of 2026-11-25:
    it is a privilege of write and admin keys; anyone else gets a 403 that says so (it was open to
    every anonymous client, one flood of them enough to slow every write)."""
    bid = create_board(admin)["id"]
    seed(writer, bid, {"a": 1, "b": 2})
    for path in ("/v1/leaderboards/%s/entries" % bid, "/v1/leaderboards/%s/players/a" % bid,
                 "/v1/leaderboards/%s/players/a/around" % bid, "/v1/leaderboards/%s/players?ids=a,b" % bid,
                 "/v1/leaderboards/" + bid, "/v1/leaderboards/%s/stats" % bid, "/v1/leaderboards"):
        plain = anon.get(path)
        sep = "&" if "?" in path else "?"
        for c in (writer, admin):
            strong = c.get(path + sep + "consistency=strong")
            assert strong.status == 200, strong.describe()
            assert strong.json() == plain.json(), path
        for c in (reader, anon):
            r = c.get(path + sep + "consistency=strong")
            assert_error(r, 403, field="consistency")
            assert "write and admin keys" in r.json()["error"]["message"], r.describe()
    # In a batch each strong item asked by a read key is its own 403; the others are answered.
    r = reader.post("/v1/batch", {"requests": [{"path": "/v1/leaderboards/%s/entries?consistency=strong" % bid},
                                               {"path": "/v1/leaderboards/%s/entries" % bid}]})
    assert r.status == 200, r.describe()
    got = r.json()["responses"]
    assert [x["status"] for x in got] == [403, 200], got
    assert got[0]["body"]["error"]["field"] == "consistency", got
    r = writer.post("/v1/batch", {"requests": [{"path": "/v1/leaderboards/%s/entries?consistency=strong" % bid}]})
    assert r.status == 200 and r.json()["responses"][0]["status"] == 200, r.describe()


def test_percent_encoded_path_segments(admin, writer, anon):
    bid = create_board(admin)["id"]
    submit_ok(writer, bid, "a:b@c", 5)
    enc_board = "".join("%%%02X" % ord(ch) for ch in bid)  # every byte encoded
    r = anon.get("/v1/leaderboards/%s/players/a%%3Ab%%40c" % enc_board)
    assert r.status == 200, r.describe()
    assert r.json()["player_id"] == "a:b@c" and r.json()["board"] == bid
    r = anon.get("/v1/leaderboards/%s/players/a:b@c" % bid)
    assert r.status == 200, r.describe()
    # the longest id, every byte encoded: a 192-byte segment decodes to 64
    longest = "@" * 64
    submit_ok(writer, bid, longest, 6)
    r = anon.get("/v1/leaderboards/%s/players/%s" % (enc_board, "%40" * 64))
    assert r.status == 200, r.describe()
    assert r.json()["player_id"] == longest
    # one byte more is refused as an invalid id, encoded or not
    for seg in ("%40" * 65, "@" * 65, "%40" * 90):
        r = anon.get("/v1/leaderboards/%s/players/%s" % (bid, seg))
        assert r.status == 400 and r.json()["error"]["field"] == "player_id", r.describe()


def test_batch_body_between_limits(admin, writer, reader):
    bid = create_board(admin)["id"]
    items = [{"board": bid, "player_id": "p%04d" % i, "score": i, "metadata": {"pad": "x" * 200}}
             for i in range(1000)]
    body = json.dumps({"scores": items}).encode()
    assert 65536 < len(body) < 2097152
    r = writer.post("/v1/scores:batch", body=body)
    assert r.status == 200, r.describe()
    assert entries_ok(reader, bid)["total"] == 1000


def test_body_limit_env(rankd_factory, admin):
    bid = create_board(admin)["id"]
    inst = rankd_factory(env={"RANKD_BODY_LIMIT": "2048", "RANKD_BATCH_BODY_LIMIT": "8192"})
    c = inst.client(WRITE_KEY)
    try:
        assert submit(c, bid, "p", 1, metadata={"s": "x" * 500}).status == 200
        assert_error(submit(c, bid, "p", 1, metadata={"s": "x" * 3000}), 413)
        items = [{"board": bid, "player_id": "q%d" % i, "score": 1, "metadata": {"s": "x" * 500}}
                 for i in range(20)]
        assert_error(batch(c, items), 413)
        r = batch(c, items[:2])
        assert r.status == 200, r.describe()
    finally:
        c.close()


def test_declared_boards(rankd_factory):
    bid = unique("decl")
    decl = [{"id": bid, "title": "Declared", "sort": "asc", "operator": "sum", "reset": "weekly",
             "min_score": 0, "max_score": 1000}]
    inst = rankd_factory(boards=decl)
    c = inst.client(None)
    try:
        r = c.get("/v1/leaderboards/" + bid)
        assert r.status == 200, r.describe()
        b = r.json()
        assert (b["title"], b["sort"], b["operator"], b["reset"], b["min_score"], b["max_score"]) == \
            ("Declared", "asc", "sum", "weekly", 0, 1000)
        # Issue 28: a PATCH of a declared board never blocks the next start. The database wins,
        # and the warning names the field.
        r = c.request("PATCH", "/v1/leaderboards/" + bid, json_body={"title": "Renamed"}, key=ADMIN_KEY)
        assert r.status == 200, r.describe()
        inst.stop()
        inst.start()
        assert c.get("/v1/leaderboards/" + bid).json()["title"] == "Renamed"
        warned = [l for l in inst.stderr_text().splitlines() if "board %s is declared" % bid in l]
        assert warned and "another title than the database's" in warned[-1], warned
    finally:
        c.close()


def test_a_declared_board_takes_client_writes_and_rules(rankd_factory):
    """A board declared in the file may be client-writable with plausibility rules, as one made
    over the API (docs/api.md, "Plausibility rules")."""
    bid = unique("declc")
    decl = [{"id": bid, "title": "Client", "client_writes": True,
             "client_rules": {"max_submissions_per_minute": 10, "max_rise_per_second": 2.5}}]
    inst = rankd_factory(boards=decl)
    c = inst.client(None)
    try:
        b = c.get("/v1/leaderboards/" + bid).json()
        assert b["client_writes"] is True, b
        assert b["client_rules"] == {"max_submissions_per_minute": 10, "max_rise_per_second": 2.5}, b
        inst.stop()
        inst.start()  # the same declaration again: no difference to warn of
        assert not [l for l in inst.stderr_text().splitlines() if "board %s is declared" % bid in l]
    finally:
        c.close()


def test_two_instances_see_each_others_writes(rankd_factory, admin, writer):
    """Across instances a read reflects a write no later than the cache max-age (1 s)."""
    bid = create_board(admin)["id"]
    seed(writer, bid, {"a": 10, "b": 5})
    other = rankd_factory()
    rc = other.client(None)
    try:
        path = "/v1/leaderboards/%s/entries" % bid
        assert [e["player_id"] for e in rc.get(path).json()["entries"]] == ["a", "b"]  # now cached there
        rc.get("/v1/leaderboards/%s/players/b" % bid)
        submit_ok(writer, bid, "b", 20)
        wait_for(lambda: [e["player_id"] for e in rc.get(path).json()["entries"]] == ["b", "a"],
                 "the other instance to serve the new page", 10)
        assert rc.get("/v1/leaderboards/%s/players/b" % bid).json()["rank"] == 1
    finally:
        rc.close()


def test_request_id_in_logs(rankd, anon):
    rid = "trace-" + unique("r")
    anon.get("/v1/leaderboards?limit=1", headers={"X-Request-Id": rid})
    wait_for(lambda: rid in rankd.stderr_text(), "request id %s in rankd's log" % rid, 3)


def test_readyz_without_redis(rankd_factory):
    inst = rankd_factory(redis=False)
    c = inst.client(ADMIN_KEY)
    try:
        r = c.get("/readyz")
        assert r.status == 200, r.describe()
        assert r.json()["dependencies"]["postgres_primary"] == "ok"
    finally:
        c.close()


# ---------------------------------------------------------------------------
# Stats, windows listing, admin
# ---------------------------------------------------------------------------

def test_stats_carry_no_binary_noise(admin, writer, reader):
    """Issue 28: a mean of 375963.7 is written 375963.7, not 375963.70000000007: statistics of
    integer scores are rounded to 4 decimal places."""
    bid = create_board(admin)["id"]
    seed(writer, bid, dict(("p%d" % i, 375963) for i in range(9)))
    submit_ok(writer, bid, "p9", 375970)
    refresh_views(admin)
    r = reader.get("/v1/leaderboards/%s/stats?consistency=strong" % bid, key=WRITE_KEY)
    assert r.status == 200, r.describe()
    assert b'"mean":375963.7,' in r.body, r.body[:300]
    assert all(len(repr(float(x)).split(".")[-1]) <= 4 for x in
               [r.json()["stddev"]] + [v for v in r.json()["percentiles"].values()] +
               [e[k] for e in r.json()["histogram"] for k in ("lower", "upper")]), r.body


def test_stats(admin, writer, reader):
    bid = create_board(admin, operator="best")["id"]
    seed(writer, bid, {"a": 10, "b": 20, "c": 30, "d": 40, "e": 50})
    submit_ok(writer, bid, "a", 5)  # accepted, changes nothing
    refresh_views(admin)
    r = reader.get("/v1/leaderboards/%s/stats?consistency=strong" % bid, key=WRITE_KEY)
    assert r.status == 200, r.describe()
    s = r.json()
    assert s["board"] == bid and s["window"] == "1970-01-01"
    assert s["players"] == 5 and s["submissions"] == 6
    assert s["min"] == 10 and s["max"] == 50
    assert abs(s["mean"] - 30) < 1e-9
    assert s["stddev"] == round(math.sqrt(200), 4)  # statistics to 4 decimal places (issue 28)
    pc = s["percentiles"]
    for k, v in (("p50", 30), ("p90", 46), ("p95", 48), ("p99", 49.6)):
        assert abs(pc[k] - v) < 1e-6, (k, pc)
    h = s["histogram"]
    assert len(h) == 20 and sum(b["count"] for b in h) == 5
    assert h[0]["lower"] == 10 and h[-1]["upper"] == 50
    assert h[0]["count"] == 1 and h[-1]["count"] == 1  # the last bucket is closed
    assert TS_RE.match(s["refreshed_at"])
    assert r.header("Last-Modified"), r.headers


def test_stats_empty_and_single(admin, writer, reader):
    bid = create_board(admin)["id"]
    one = create_board(admin)["id"]
    submit_ok(writer, one, "p", 7)
    submit_ok(writer, one, "q", 7)
    refresh_views(admin)
    s = reader.get("/v1/leaderboards/%s/stats?consistency=strong" % bid, key=WRITE_KEY).json()
    assert s["players"] == 0 and s["histogram"] == []
    for k in ("min", "max", "mean", "stddev"):
        assert s[k] is None, s
    s = reader.get("/v1/leaderboards/%s/stats?consistency=strong" % one, key=WRITE_KEY).json()
    assert s["players"] == 2 and s["min"] == 7 and s["max"] == 7 and s["stddev"] == 0
    assert len(s["histogram"]) == 1 and s["histogram"][0]["count"] == 2


def test_windows_listing(admin, writer, reader):
    bid = create_board(admin, operator="best")["id"]
    seed(writer, bid, {"a": 1, "b": 2})
    submit_ok(writer, bid, "a", 0)
    r = reader.get("/v1/leaderboards/%s/windows" % bid)
    assert r.status == 200, r.describe()
    body = r.json()
    assert body["board"] == bid and body["next_cursor"] is None
    assert body["windows"] == [{"window": "1970-01-01", "players": 2, "submissions": 3}]
    assert_error(reader.get("/v1/leaderboards/%s/windows" % unique("missing")), 404, field="board")


def test_rebuild_of_a_window_larger_than_one_chunk(admin, writer, reader, rankd):
    """A rebuild loads a window in chunks of 2,000 players, paging by (sort key, achieved,
    id): 4,500 players, tied in long runs across the chunk boundaries, all come back."""
    bid = create_board(admin)["id"]
    for start in range(0, 4500, 900):
        items = [{"board": bid, "player_id": "c%04d" % i, "score": i // 700} for i in range(start, start + 900)]
        r = writer.post("/v1/scores:batch", json_body={"scores": items}, key=WRITE_KEY)
        assert r.status == 200 and all("error" not in x for x in r.json()["results"]), r.describe()
    r = admin.post("/v1/admin/rebuild-cache?board=" + bid)
    assert r.status == 200 and r.json()["players"] == 4500, r.describe()
    v = run_cli(["verify", "--board", bid], rankd.config_path, env=rankd.env)
    assert v.returncode == 0, "rankd verify --board: %s\n%s" % (v.stdout[-3000:], v.stderr[-3000:])
    for player in ("c0000", "c1999", "c2000", "c3999", "c4000", "c4499"):
        got = reader.get("/v1/leaderboards/%s/players/%s" % (bid, player))
        strong = reader.get("/v1/leaderboards/%s/players/%s?consistency=strong" % (bid, player), key=WRITE_KEY)
        assert got.status == 200 and got.json()["rank"] == strong.json()["rank"], (player, got.body, strong.body)


def test_rebuild_cache_and_verify(admin, writer, rankd):
    bid = create_board(admin)["id"]
    seed(writer, bid, {"p%d" % i: i % 3 for i in range(30)})
    # Runs last in this module: Redis, as the writes of every test above left it,
    # must match PostgreSQL before any rebuild.
    v = run_cli(["verify"], rankd.config_path, env=rankd.env)
    assert v.returncode == 0, "rankd verify before any rebuild: %s\n%s" % (v.stdout[-3000:], v.stderr[-3000:])
    r = admin.post("/v1/admin/rebuild-cache?board=" + bid)
    assert r.status == 200, r.describe()
    body = r.json()
    assert {"boards", "players", "ms"} <= set(body), body
    v = run_cli(["verify", "--board", bid], rankd.config_path, env=rankd.env)
    assert v.returncode == 0, "rankd verify --board: %s\n%s" % (v.stdout, v.stderr)
    r = admin.post("/v1/admin/rebuild-cache")
    assert r.status == 200, r.describe()
    v = run_cli(["verify"], rankd.config_path, env=rankd.env)
    assert v.returncode == 0, "rankd verify: %s\n%s" % (v.stdout, v.stderr)


@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_postgres_ranks_from_either_end(admin, writer, reader, sort):
    """Once statistics exist, a PostgreSQL rank counts from the nearer end of the window (the
    total minus the players after it): every player's rank and around-me page read from
    PostgreSQL equals its place in the listing."""
    bid = create_board(admin, sort=sort, operator="latest")["id"]
    for i in range(60):  # ties on score, broken by arrival and by id
        submit_ok(writer, bid, "q%02d" % (59 - i), (i * 7) % 11)
    refresh_views(admin)
    listing = entries_ok(writer, bid, limit=100, consistency="strong")["entries"]
    assert len(listing) == 60
    for pos, e in enumerate(listing, start=1):
        path = "/v1/leaderboards/%s/players/%s?consistency=strong" % (bid, e["player_id"])
        r = reader.get(path, key=WRITE_KEY)
        assert r.status == 200 and r.json()["rank"] == pos, (pos, e, r.body)
        a = reader.get("/v1/leaderboards/%s/players/%s/around?before=2&after=2&consistency=strong"
                       % (bid, e["player_id"]), key=WRITE_KEY)
        assert a.status == 200
        want = [(x["rank"], x["player_id"]) for x in listing[max(pos - 3, 0):pos + 2]]
        assert [(x["rank"], x["player_id"]) for x in a.json()["entries"]] == want, (pos, a.body)


def test_the_auth_scheme_is_case_insensitive(anon):
    """RFC 9110 11.1: the scheme name is case-insensitive."""
    for scheme in ("bearer", "BEARER", "Bearer"):
        r = anon.get("/v1/leaderboards", headers={"Authorization": "%s %s" % (scheme, ADMIN_KEY)})
        assert r.status == 200, (scheme, r.describe())
    assert_error(anon.get("/v1/leaderboards", headers={"Authorization": "Basic " + ADMIN_KEY}), 401)
