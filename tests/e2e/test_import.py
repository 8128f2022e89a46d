"""Imports (API.md, "Import and export"): POST /v1/leaderboards/{board}/import and `rankd import`
take a CSV or NDJSON file into the current window by COPY and a set-based merge. Each row is a
submission under the board's operator, in file order (checked against an oracle that folds the
rows one by one); `replace` makes the window exactly the file; a bad row anywhere is refused by
its line and field with the board unchanged; every read path shows the import once answered."""
import csv
import io
import json
import random
import threading

import pytest

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, assert_error, batch, create_board, now_ms, run_cli, submit_ok,
                      unique, wait_for)


def iso(ms):
    import datetime
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (ms % 1000)


def fold(op, sort, start, rows):
    """The standings after `rows` (dicts with player_id, score, at, metadata) in order, from `start`
    ({player: (score, at, metadata)}), as one submission after another would leave them."""
    cur = dict(start)
    for r in rows:
        p, s = r["player_id"], r["score"]
        old = cur.get(p)
        if op == "best":
            better = old is None or (s > old[0] if sort == "desc" else s < old[0])
            new = s if better else None
        elif op == "latest":
            new = s if old is None or old[0] != s else None
        else:
            v = (old[0] if old else 0) + s
            new = v if old is None or v != old[0] else None
        if new is not None:
            cur[p] = (new, r["at"], r.get("metadata"))
    return cur


def stored(db, board):
    rows = db.query("SELECT s.player_id, s.score, s.achieved_ms, s.metadata FROM standings s JOIN boards b "
                    "ON b.gen = s.board_gen WHERE b.id = %s", (board,))
    return {p: (sc, ms, json.loads(md) if md else None) for p, sc, ms, md in rows}


def as_csv(rows, header=True):
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if header:
        w.writerow(["player_id", "score", "achieved_at", "metadata"])
    for r in rows:
        w.writerow([r["player_id"], r["score"], iso(r["at"]) if r.get("at") else "",
                    json.dumps(r["metadata"], separators=(",", ":")) if r.get("metadata") is not None else ""])
    return out.getvalue()


def as_ndjson(rows):
    out = []
    for r in rows:
        o = {"player_id": r["player_id"], "score": r["score"]}
        if r.get("at"):
            o["achieved_at"] = iso(r["at"])
        if r.get("metadata") is not None:
            o["metadata"] = r["metadata"]
        out.append(json.dumps(o))
    return "\n".join(out) + "\n"


def some_rows(n, players, t0, rng, scores=(-50, 50)):
    return [{"player_id": "p%03d" % rng.randrange(players), "score": rng.randint(*scores), "at": t0 + i,
             "metadata": {"i": i} if i % 3 == 0 else None} for i in range(n)]


def cli_import(rankd, db, board, text, *args, name="rows.csv"):
    path = rankd.dir + "/" + unique("imp") + "-" + name
    with open(path, "w") as f:
        f.write(text)
    return run_cli(["import", "--board", board] + list(args) + [path], rankd.config_path)


@pytest.mark.parametrize("op,sort", [("best", "desc"), ("best", "asc"), ("latest", "desc"), ("sum", "desc")])
def test_the_command_line_import_folds_every_row_under_the_operator_in_file_order(rankd, admin, writer, db, op, sort):
    b = create_board(admin, operator=op, sort=sort)["id"]
    # Players with standings before the import, some of them in the file too.
    for i in range(0, 40, 3):
        submit_ok(writer, b, "p%03d" % i, i - 20, metadata={"before": i})
    start = {p: v for p, v in stored(db, b).items()}
    start = {p: (sc, ms, md) for p, (sc, ms, md) in start.items()}
    rng = random.Random(hash((op, sort)) & 0xffff)
    t0 = now_ms() - 60000
    rows = some_rows(600, 60, t0, rng)
    want = fold(op, sort, start, rows)
    p = cli_import(rankd, db, b, as_csv(rows))
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    assert answer["board"] == b and answer["rows"] == 600 and answer["removed"] == 0
    files_players = {r["player_id"] for r in rows}
    changed = {q for q in files_players if want.get(q) != start.get(q)}
    assert answer["created"] == len(files_players - set(start))
    assert answer["created"] + answer["updated"] == len(changed)
    assert answer["created"] + answer["updated"] + answer["unchanged"] == len(files_players)
    assert stored(db, b) == want
    # Every row is in the log as a submission; the window's counts follow.
    assert db.submission_count(b) == len(start) + 600
    (players, subs), = db.query("SELECT c.players, c.submissions FROM window_counts c JOIN boards x "
                                "ON x.gen = c.board_gen WHERE x.id = %s", (b,))
    assert players == len(want) and subs == len(start) + 600
    # Ranks from Redis and from PostgreSQL agree with the oracle's order.
    order = sorted(want.items(), key=lambda kv: ((-kv[1][0] if sort == "desc" else kv[1][0]), kv[1][1], kv[0]))
    r = admin.get("/v1/leaderboards/%s/entries?limit=100" % b, key=READ_KEY)
    assert [e["player_id"] for e in r.json()["entries"]] == [k for k, _ in order][:100]
    r = admin.get("/v1/leaderboards/%s/entries?limit=100&consistency=strong" % b, key=ADMIN_KEY)
    assert [e["player_id"] for e in r.json()["entries"]] == [k for k, _ in order][:100]
    v = run_cli(["verify", "--board", b], db.config_path)
    assert v.returncode == 0, v.stdout + v.stderr


def test_ndjson_and_replace_make_the_window_exactly_the_file(rankd, admin, writer, db):
    b = create_board(admin)["id"]
    for i in range(30):
        submit_ok(writer, b, "p%03d" % i, i)
    t0 = now_ms() - 1000
    rows = [{"player_id": "p%03d" % i, "score": 1000 + i, "at": t0 + i, "metadata": {"k": i}} for i in range(10, 50)]
    rows[0]["score"] = 10  # p010 keeps its score: given no achieved_at it keeps its time too
    rows[0]["at"] = None
    rows[0]["metadata"] = None
    before = stored(db, b)
    p = cli_import(rankd, db, b, as_ndjson(rows), "--mode", "replace", name="rows.ndjson")
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    assert (answer["rows"], answer["created"], answer["updated"], answer["unchanged"], answer["removed"]) == \
        (40, 20, 19, 1, 10)
    got = stored(db, b)
    assert set(got) == {r["player_id"] for r in rows}
    assert got["p010"] == before["p010"]
    assert got["p011"] == (1011, t0 + 11, {"k": 11})
    r = admin.get("/v1/leaderboards/%s/entries?limit=1" % b, key=READ_KEY)
    assert r.json()["total"] == 40 and r.json()["entries"][0]["player_id"] == "p049"
    # A player twice is refused in replace mode, by the second line.
    p = cli_import(rankd, db, b, "a,1\nb,2\na,3\n", "--mode", "replace")
    assert p.returncode == 1 and "line 3 (field player_id)" in p.stderr, p.stderr
    assert stored(db, b) == got


def test_a_bad_row_anywhere_is_refused_by_its_line_and_field_and_changes_nothing(rankd, admin, writer, db):
    b = create_board(admin, min_score=0)["id"]
    submit_ok(writer, b, "someone", 5)
    snap = db.snapshot()
    good = "player_id,score\n" + "".join("g%06d,%d\n" % (i, i) for i in range(99998))  # lines 1..99,999
    cases = [
        ("bad player!,1", "player_id"), ("p,1.5", "score"), ("p,-1", "score"), ("p,1,yesterday", "achieved_at"),
        ("p,1,%s" % iso(now_ms() + 3600000), "achieved_at"), ('p,1,,"[1]"', "metadata"),
        ("p,1,,,5", "line"), ('p,"1', "line"), ("p", "score"),
    ]
    for bad, field in cases:
        for text, line in ((good + bad + "\n" + "z,1\n", 100000), ("a,1\n" + bad, 2)):
            p = cli_import(rankd, db, b, text)
            assert p.returncode == 1, p.stdout
            assert "line %d (field %s)" % (line, field) in p.stderr, (bad, p.stderr)
            assert db.snapshot() == snap
