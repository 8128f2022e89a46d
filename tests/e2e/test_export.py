"""Exports (API.md, "Import and export"): GET /v1/leaderboards/{board}/export streams every
standing of a window in rank order, as CSV or NDJSON, from one snapshot; `rankd export` writes the
same bytes without the HTTP server; GET /v1/players/{player}/export answers a player's request for
their data. Each is checked against the entries the API pages out and against PostgreSQL.
(Closed windows, from their archives: test_archive.)"""
import csv
import io
import json
import re
import socket

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, assert_error, batch, create_board, run_cli, stop_process, submit_ok,
                      unique, wait_for)

ODD = {"note": 'a "quoted", comma\nand a line', "n": 1}  # metadata CSV must quote


def fill(w, board, n, metadata_every=7):
    """n players with distinct scores (some tied), in batches; returns their ids."""
    players = ["x%05d" % i for i in range(n)]
    for at in range(0, n, 1000):
        items = []
        for i in range(at, min(at + 1000, n)):
            it = {"board": board, "player_id": players[i], "score": (i * 7919) % (n // 2 + 1)}
            if i % metadata_every == 0:
                it["metadata"] = ODD if i % 2 else {"level": i}
            items.append(it)
        r = batch(w, items)
        assert r.status == 200, r.describe()
    return players


def all_entries(c, board, style="ordinal"):
    out, cur = [], None
    while True:
        r = c.get("/v1/leaderboards/%s/entries?limit=1000&rank_style=%s%s" % (board, style,
                                                                             "&cursor=" + cur if cur else ""))
        assert r.status == 200, r.describe()
        out += r.json()["entries"]
        cur = r.json()["next_cursor"]
        if not cur:
            return out


def test_a_window_exports_in_rank_order_as_csv_and_ndjson_and_from_the_command_line(rankd, admin, writer, db):
    b = create_board(admin)["id"]
    fill(writer, b, 4500)  # more than two of the cursor's fetches
    want = all_entries(admin.with_key(READ_KEY), b)
    assert len(want) == 4500

    r = admin.get("/v1/leaderboards/%s/export?format=ndjson" % b)
    assert r.status == 200, r.describe()
    assert r.header("Content-Type") == "application/x-ndjson"
    assert r.header("Transfer-Encoding") == "chunked" and r.header("Content-Length") is None  # streamed
    day = "1970-01-01"  # the one window of a board that never resets
    assert r.header("Content-Disposition") == 'attachment; filename="%s-%s.ndjson"' % (b, day)
    assert r.header("Cache-Control") == "no-store"
    lines = r.body.decode().split("\n")
    assert lines[-1] == ""
    assert [json.loads(x) for x in lines[:-1]] == want

    r = admin.head("/v1/leaderboards/%s/export?format=ndjson" % b)  # what the GET would send, no body
    assert r.status == 200 and r.body == b"", r.describe()
    assert r.header("Content-Type") == "application/x-ndjson"
    assert r.header("Content-Disposition") == 'attachment; filename="%s-%s.ndjson"' % (b, day)

    r = admin.get("/v1/leaderboards/%s/export" % b)  # CSV by default
    assert r.status == 200, r.describe()
    assert r.header("Content-Type") == "text/csv; charset=utf-8"
    assert r.header("Content-Disposition") == 'attachment; filename="%s-%s.csv"' % (b, day)
    rows = list(csv.reader(io.StringIO(r.body.decode(), newline="")))
    assert rows[0] == ["rank", "player_id", "score", "achieved_at", "metadata"]
    got = [{"rank": int(x[0]), "player_id": x[1], "score": int(x[2]), "achieved_at": x[3],
            **({"metadata": json.loads(x[4])} if x[4] else {})} for x in rows[1:]]
    assert got == want
    assert any(e.get("metadata") == ODD for e in got)  # the quoting held

    # The command line writes the same bytes.
    out = rankd.dir + "/export-%s.csv" % b
    p = run_cli(["export", "--board", b, out], db.config_path)
    assert p.returncode == 0, p.stderr
    assert "4500 rows from its standings" in p.stderr
    with open(out, "rb") as f:
        assert f.read() == r.body
    p = run_cli(["export", "--board", b, "--format", "ndjson", "-"], db.config_path)
    assert p.returncode == 0, p.stderr
    assert [json.loads(x) for x in p.stdout.splitlines()] == want
    p = run_cli(["export", "--board", "no-such-board"], db.config_path)
    assert p.returncode == 1 and "not found" in p.stderr
    p = run_cli(["export", "--board", b, "--format", "xml"], db.config_path)
    assert p.returncode == 2


def test_an_export_ranks_in_the_rank_style_asked_for(rankd, admin, writer, db):
    """Issue 49, item 13: export honours rank_style= as reads do (API.md, "Rank styles"): the same
    rows in the same order, ranked ordinal, competition or dense; the command line's --rank-style
    too."""
    b = create_board(admin)["id"]
    fill(writer, b, 4500)  # scores in [0, 2250]: ties across more than one fetch of the cursor
    reader = admin.with_key(READ_KEY)
    want = {style: all_entries(reader, b, style) for style in ("ordinal", "competition", "dense")}
    for style, entries in want.items():
        assert [e["player_id"] for e in entries] == [e["player_id"] for e in want["ordinal"]]  # only ranks change
        ranks = [e["rank"] for e in entries]
        assert len(set(ranks)) < len(ranks) or style == "ordinal"  # ties share a rank
        r = admin.get("/v1/leaderboards/%s/export?format=ndjson&rank_style=%s" % (b, style))
        assert r.status == 200, r.describe()
        got = [json.loads(x) for x in r.body.decode().splitlines()]
        assert [(e["rank"], e["player_id"]) for e in got] == [(e["rank"], e["player_id"]) for e in entries], style
        assert got == entries, style
        r = admin.get("/v1/leaderboards/%s/export?rank_style=%s" % (b, style))
        assert r.status == 200, r.describe()
        rows = list(csv.reader(io.StringIO(r.body.decode(), newline="")))[1:]
        assert [(int(x[0]), x[1]) for x in rows] == [(e["rank"], e["player_id"]) for e in entries], style
    for style, entries in want.items():
        p = run_cli(["export", "--board", b, "--format", "ndjson", "--rank-style", style, "-"], db.config_path)
        assert p.returncode == 0, p.stderr
        assert [json.loads(x) for x in p.stdout.splitlines()] == entries, style
    p = run_cli(["export", "--board", b, "--rank-style", "Dense"], db.config_path)
    assert p.returncode == 2 and "--rank-style" in p.stderr


def test_an_empty_window_exports_its_header_alone(admin):
    b = create_board(admin)["id"]
    r = admin.get("/v1/leaderboards/%s/export" % b)
    assert r.status == 200 and r.body == b"rank,player_id,score,achieved_at,metadata\r\n", r.describe()
    r = admin.get("/v1/leaderboards/%s/export?format=ndjson" % b)
    assert r.status == 200 and r.body == b"", r.describe()


def test_export_refusals_change_nothing(admin, reader, writer, anon):
    b = create_board(admin)["id"]
    submit_ok(writer, b, "p1", 5)
    assert_error(admin.get("/v1/leaderboards/%s/export?format=xml" % b), 400, "format")
    assert_error(admin.get("/v1/leaderboards/%s/export?format=csv&format=ndjson" % b), 400, "format")
    assert_error(admin.get("/v1/leaderboards/%s/export?window=yesterday" % b), 400, "window")
    for bad in ("Dense", "", "rank", "ordinal&rank_style=dense"):
        assert_error(admin.get("/v1/leaderboards/%s/export?rank_style=%s" % (b, bad)), 400, "rank_style")
        assert admin.head("/v1/leaderboards/%s/export?rank_style=%s" % (b, bad)).status == 400
    assert_error(admin.get("/v1/leaderboards/%s/export?window=2020-01-01" % b), 400, "window")  # never resets
    daily = create_board(admin, reset="daily")["id"]
    assert_error(admin.get("/v1/leaderboards/%s/export?window=2020-01-01" % daily), 404, "window")
    assert_error(admin.get("/v1/leaderboards/nope-%s/export" % b), 404)
    assert_error(reader.get("/v1/leaderboards/%s/export" % b), 403)
    assert_error(writer.get("/v1/leaderboards/%s/export" % b), 403)
    assert_error(anon.get("/v1/leaderboards/%s/export" % b), 401)
    assert_error(admin.post("/v1/leaderboards/%s/export" % b, json_body={}), 405)
    assert_error(admin.get("/v1/players/%s/export" % ("x" * 65)), 400, "player_id")
    assert_error(reader.get("/v1/players/p1/export"), 403)


def _open_export(port, board):
    """A raw connection that asks for an export and reads only its first bytes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(("GET /v1/leaderboards/%s/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % (board, ADMIN_KEY)).encode())
    head = s.recv(1024)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return s


def test_exports_are_capped_and_a_client_that_leaves_frees_its_slot(rankd, admin, writer):
    # Big enough that neither export fits the socket buffers and the stream's: both stay open.
    b = create_board(admin)["id"]
    players = ["y%05d" % i for i in range(20000)]
    for at in range(0, len(players), 1000):
        r = batch(writer, [{"board": b, "player_id": p, "score": i, "metadata": {"pad": "z" * 150}}
                           for i, p in enumerate(players[at:at + 1000], at)])
        assert r.status == 200, r.describe()
    first, second = _open_export(rankd.port, b), _open_export(rankd.port, b)
    try:
        r = admin.get("/v1/leaderboards/%s/export" % b)
        assert_error(r, 503)
        assert r.header("Retry-After") == "5"
    finally:
        first.close()
        second.close()
    # Each producer stops at its next write once its client is gone; then an export runs whole.
    def whole():
        r = admin.get("/v1/leaderboards/%s/export?format=ndjson" % b)
        return r.status == 200 and len(r.body.decode().splitlines()) == 20000
    wait_for(whole, "an export after both clients left", timeout=30)
    # A producer gives its slot back just after its last bytes: waited for, not assumed.
    m = wait_for(lambda: (lambda t: re.search(r"^rankd_exports_running 0$", t, re.M) and t)(
        admin.get("/metrics").body.decode()), "every producer to end")
    cut = int(re.search(r'^rankd_exports_total\{outcome="cut"\} (\d+)$', m, re.M).group(1))
    whole_n = int(re.search(r'^rankd_exports_total\{outcome="whole"\} (\d+)$', m, re.M).group(1))
    assert cut >= 2 and whole_n >= 1, m


def test_a_player_export_holds_every_standing_and_submission(admin, writer, db):
    b1 = create_board(admin)["id"]
    b2 = create_board(admin, sort="asc", operator="latest")["id"]
    p = unique("gdpr")
    submit_ok(writer, b1, "other", 100)
    submit_ok(writer, b1, p, 50, metadata={"team": "red", "captain": None})
    submit_ok(writer, b1, p, 40)  # not an improvement on a best board: logged, not applied
    submit_ok(writer, b2, p, 9)
    r = admin.get("/v1/players/%s/export" % p)
    assert r.status == 200, r.describe()
    j = r.json()
    assert j["player_id"] == p
    st = {s["board"]: s for s in j["standings"]}
    assert set(st) == {b1, b2}
    assert st[b1]["rank"] == 2 and st[b1]["score"] == 50 and st[b1]["metadata"] == {"team": "red", "captain": None}
    assert st[b2]["rank"] == 1 and st[b2]["score"] == 9 and not st[b2]["archived"]
    subs = [(s["board"], s["score"], s["improved"]) for s in j["submissions"]]
    assert subs == [(b1, 50, True), (b1, 40, False), (b2, 9, True)]
    n = db.query("SELECT count(*) FROM submissions WHERE player_id = %s", (p,))[0][0]
    assert len(j["submissions"]) == n
    # Someone rankd holds nothing about: an empty answer, not an error.
    r = admin.get("/v1/players/%s/export" % unique("nobody"))
    assert r.status == 200 and r.json()["standings"] == [] and r.json()["submissions"] == []


def test_exports_cannot_be_batched(admin, writer):
    b = create_board(admin)["id"]
    submit_ok(writer, b, "p1", 5)
    r = admin.post("/v1/batch", json_body={"requests": [{"path": "/v1/leaderboards/%s/export" % b},
                                                        {"path": "/v1/players/p1/export"},
                                                        {"path": "/v1/leaderboards/%s/entries" % b}]})
    assert r.status == 200, r.describe()
    res = r.json()["responses"]
    assert [x["status"] for x in res] == [400, 400, 200]
    assert res[0]["body"]["error"]["field"] == "path" and "batched" in res[0]["body"]["error"]["message"]


def test_a_shutdown_cuts_an_export_in_flight_and_exits_cleanly(rankd_factory):
    """SIGTERM while a client holds an export open and reads nothing: the export is cut (the
    client's body ends without the chunked terminator) and rankd exits 0 at once, rather than
    waiting out the drain or aborting with a suspended connection."""
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    b = create_board(adm)["id"]
    for at in range(0, 20000, 1000):
        r = batch(w, [{"board": b, "player_id": "s%05d" % i, "score": i, "metadata": {"pad": "z" * 150}}
                      for i in range(at, at + 1000)])
        assert r.status == 200, r.describe()
    adm.close()
    w.close()
    s = _open_export(inst.port, b)
    try:
        # 0, not the 1 of a drain that gave up on requests in flight (20 s later), nor a SIGKILL.
        assert stop_process(inst.proc, timeout=30) == 0
        s.settimeout(10)
        data = b""
        while True:
            got = s.recv(65536)
            if not got:
                break
            data += got
        assert not data.endswith(b"0\r\n\r\n"), "the cut export ended as if it were whole"
    finally:
        s.close()
