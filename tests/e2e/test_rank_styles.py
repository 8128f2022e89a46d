"""
tests/e2e/test_rank_styles.py — rank styles (API.md, "Rank styles") on every path that answers a
ranked read: Redis, the in-process rank tier and PostgreSQL.

`competition` and `dense` are answered where `ordinal` is (issue 49, item 13): with PostgreSQL
stopped, a styled read is answered from Redis as the ordinal one is, and a styled read of a hot
window costs the primary nothing. Every read kind that takes rank_style (offset and cursor
pages, a player, around a player, named players, the rank of a score) is compared, in every
style, between the three paths and with a model of the board's standings: many ties, scores
that come and go (a `latest` board), a deleted player, and a window rebuilt in Redis.
"""

import itertools
import urllib.parse

import pytest

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, PgServer, RankdFactory, batch, create_board, metric,
                      migrated_database, readyz, run_cli, unique, wait_for)

STYLES = ("ordinal", "competition", "dense")
# The styles Redis and the rank tier answer (the others are PostgreSQL's): every one.
OFF_PG = STYLES
NO_CACHE = {"RANKD_CACHE_BYTES": "0"}
TIER = {"RANKD_RANK_TIER": "67108864", "RANKD_CACHE_BYTES": "0"}


def q(s):
    return urllib.parse.quote(s, safe="")


def get_json(c, path):
    r = c.get(path)
    assert r.status == 200, "%s: %s" % (path, r.describe())
    return r.json()


def standings(c, board):
    """Every standing in rank order, read from the primary: [(player, score)]."""
    out, off = [], 0
    while True:
        page = get_json(c, "/v1/leaderboards/%s/entries?limit=1000&offset=%d&consistency=strong" % (board, off))
        out += [(e["player_id"], e["score"]) for e in page["entries"]]
        off += 1000
        if off >= page["total"]:
            return out


def styled_ranks(ordered):
    """{style: {player: rank}} of standings in rank order: ties on score share the best rank, and
    the next skips (competition) or follows (dense)."""
    out = {s: {} for s in STYLES}
    comp = dense = 0
    prev = object()
    for i, (pid, score) in enumerate(ordered):
        if score != prev:
            comp, dense, prev = i + 1, dense + 1, score
        out["ordinal"][pid], out["competition"][pid], out["dense"][pid] = i + 1, comp, dense
    return out


def score_rank(ordered, sort, x, style):
    """The rank a new submission of score x would show (API.md, "The rank of a score")."""
    better = [s for _, s in ordered if (s > x if sort == "desc" else s < x)]
    if style == "ordinal":
        return 1 + sum(1 for _, s in ordered if s == x) + len(better)
    return 1 + (len(better) if style == "competition" else len(set(better)))


def read_paths(c, board, ordered):
    """The reads that take rank_style, without it: offset pages (the first, ones starting inside
    a tie group, the last), cursor pages both ways, players, around, named players, the rank of
    scores held, not held and beyond either end."""
    b = "/v1/leaderboards/" + board
    n = len(ordered)
    paths = ["%s/entries?limit=%d&offset=%d" % (b, lim, off)
             for lim, off in ((10, 0), (7, 3), (5, 11), (9, n // 2), (4, max(0, n - 4)), (3, n + 2))]
    mid = get_json(c, "%s/entries?limit=6&offset=9&consistency=strong" % b)
    for cur in (mid["next_cursor"], mid["prev_cursor"]):
        paths.append("%s/entries?limit=5&cursor=%s" % (b, q(cur)))
    picks = [ordered[i][0] for i in sorted({0, 1, 5, n // 3, n // 2, n - 1})]
    for p in picks:
        paths.append("%s/players/%s" % (b, q(p)))
        paths.append("%s/players/%s/around?before=3&after=4" % (b, q(p)))
    named = [ordered[i][0] for i in range(0, n, 4)] + ["nobody"]
    paths.append("%s/players?ids=%s" % (b, ",".join(q(x) for x in named)))
    scores = sorted({s for _, s in ordered})
    for x in [scores[0], scores[len(scores) // 2], scores[-1], scores[0] - 1, scores[-1] + 1,
              scores[len(scores) // 2] + 1, 0]:
        paths.append("%s/rank?score=%d" % (b, x))
    return paths


def with_style(path, style):
    return path + ("&" if "?" in path else "?") + "rank_style=" + style


def check_model(path, style, answer, ordered, sort):
    """The answer's ranks are the model's in `style`."""
    want = styled_ranks(ordered)[style]
    if "/rank?" in path:
        x = int(path.split("score=")[1].split("&")[0])
        assert answer["rank"] == score_rank(ordered, sort, x, style), (path, style, answer)
        return
    entries = answer["entries"] if "entries" in answer else [answer]
    got = [(e["player_id"], e["rank"]) for e in entries]
    assert got == [(e["player_id"], want[e["player_id"]]) for e in entries], (path, style, got)
    if style == "ordinal" and "entries" in answer:
        assert [r for _, r in got] == sorted(r for _, r in got), (path, got)


# ---------------------------------------------------------------- PostgreSQL stopped

_own = itertools.count(1)


@pytest.fixture
def own_pg(tmp_root):
    """A PostgreSQL server of the test's own, with a migrated database: the test stops it (by PID)."""
    n = next(_own)
    srv = PgServer(tmp_root, "styles-own%d" % n)
    srv.start()
    database = migrated_database(srv, "rankd_styles_own%d" % n, tmp_root)
    yield srv, database
    database.close()
    srv.stop()


def tied_items(board, players, scores, offset=0):
    """One submission per player, scores cycling through a few values: groups of ties."""
    return [{"board": board, "player_id": p, "score": scores[(i + offset) % len(scores)]}
            for i, p in enumerate(players)]


def test_with_postgres_stopped_every_rank_style_is_answered_from_redis(own_pg, private_redis, tmp_root):
    """Issue 49, item 13: with the only PostgreSQL stopped, `?rank_style=competition` (and dense)
    answered 503 while the ordinal read answered 200. Now every read kind in every style is
    answered from Redis, and each answer equals the one PostgreSQL gave before it stopped."""
    srv, database = own_pg
    f = RankdFactory(tmp_root, database, private_redis.url())
    try:
        inst = f(env=NO_CACHE)
        adm, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY)
        strong = w  # consistency=strong is for write and admin keys
        boards = {create_board(adm, unique("sd"), sort="desc")["id"]: "desc",
                  create_board(adm, unique("sa"), sort="asc", operator="latest")["id"]: "asc"}
        players = ["p%02d" % i for i in range(40)]
        for board in boards:
            r = batch(w, tied_items(board, players, [500, 300, 300, 120, 90, 90, 90, 7]))
            assert r.status == 200, r.describe()
        paths, expected, model = [], {}, {}
        for board, sort in boards.items():
            # The window is in Redis and this instance trusts it: an ordinal read is Redis's.
            before = metric(inst, "rankd_reads_redis_total")
            wait_for(lambda: get_json(c, "/v1/leaderboards/%s/entries?limit=1" % board) and
                     metric(inst, "rankd_reads_redis_total") > before, "Redis answering reads of " + board)
            model[board] = ordered = standings(strong, board)
            for path in read_paths(strong, board, ordered):
                for style in OFF_PG:
                    p = with_style(path, style)
                    expected[p] = get_json(strong, p + "&consistency=strong")
                    check_model(p, style, expected[p], ordered, sort)
                    paths.append(p)

        srv.stop()
        wait_for(lambda: readyz(inst)[1]["dependencies"]["postgres_primary"] == "down",
                 "/readyz to show the primary down")
        pg_reads = metric(inst, "rankd_reads_postgres_total")
        redis_reads = metric(inst, "rankd_reads_redis_total")
        for p in paths:
            r = c.get(p)
            assert r.status == 200, "%s with PostgreSQL stopped: %s" % (p, r.describe())
            assert r.json() == expected[p], (p, r.json(), expected[p])
        assert metric(inst, "rankd_reads_postgres_total") == pg_reads
        assert metric(inst, "rankd_reads_redis_total") == redis_reads + len(paths)
        for x in (adm, w, c):
            x.close()
    finally:
        f.close()


# ---------------------------------------------------------------- every path agrees

def read_all_styles(c, paths, ordered, sort, suffix="", styles=STYLES):
    """{path with its style: answer}, each checked against the model."""
    out = {}
    for path in paths:
        for style in styles:
            p = with_style(path, style)
            out[p] = get_json(c, p + suffix)
            check_model(p, style, out[p], ordered, sort)
    return out


def tier_holds(inst, c, board):
    """Read the board until the rank tier answers a read of it."""
    def answered():
        before = metric(inst, "rankd_reads_tier_total")
        get_json(c, "/v1/leaderboards/%s/entries?limit=1" % board)
        return metric(inst, "rankd_reads_tier_total") > before
    wait_for(answered, "the rank tier answering reads of " + board, timeout=30)


def redis_holds(inst, c, board):
    def answered():
        before = metric(inst, "rankd_reads_redis_total")
        get_json(c, "/v1/leaderboards/%s/entries?limit=1" % board)
        return metric(inst, "rankd_reads_redis_total") > before
    wait_for(answered, "Redis answering reads of " + board, timeout=30)


@pytest.mark.parametrize("sort,operator", [("desc", "best"), ("asc", "latest")])
def test_every_rank_style_agrees_through_redis_the_tier_and_postgres(sort, operator, rankd_factory, db, redis_db):
    """Many ties; scores that move up and down (a score group emptied, a new one made), deleted
    players (one the last of its score) and a window rebuilt in Redis: every read kind in every
    style answers the model's ranks, and Redis, the rank tier, a strong read (the primary) and an
    instance without Redis give the same answers. Styled reads of a hot window are answered by
    Redis or the tier, not PostgreSQL; Redis's set of distinct sort keys holds the window's."""
    via_redis = rankd_factory(env=NO_CACHE)
    via_tier = rankd_factory(env=TIER)
    via_pg = rankd_factory(redis=False, env=NO_CACHE)
    adm, w = via_redis.client(ADMIN_KEY), via_redis.client(WRITE_KEY)
    clients = {name: inst.client(WRITE_KEY) for name, inst in
               (("redis", via_redis), ("tier", via_tier), ("pg", via_pg))}
    try:
        board = create_board(adm, unique("st-%s" % sort), sort=sort, operator=operator)["id"]
        players = ["p%03d" % i for i in range(90)]
        scores = [1000, 640, 640, 640, 333, 200, 200, 17, 17, 17, 17, -5]
        assert batch(w, tied_items(board, players, scores) + [{"board": board, "player_id": "solo",
                                                              "score": 777}]).status == 200
        # Moves: on `best` only improvements count, on `latest` every score does: group 333 empties
        # (on `latest`), new scores make new groups, ties move between groups.
        moves = [{"board": board, "player_id": p, "score": s} for p, s in
                 [("p004", 2000 if sort == "desc" else -100), ("p016", 999), ("p028", 640), ("p040", 17),
                  ("p052", 17), ("p064", 1500), ("p076", 1500), ("p088", 1500), ("p007", 200), ("p019", 200)]]
        assert batch(w, moves).status == 200
        for p in ("p005", "solo"):  # solo: the only standing of its score
            assert adm.delete("/v1/leaderboards/%s/players/%s" % (board, p)).status == 204
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]

        def compare(label):
            ordered = standings(clients["pg"], board)
            paths = read_paths(clients["pg"], board, ordered)
            tier_holds(via_tier, clients["tier"], board)
            redis_holds(via_redis, clients["redis"], board)
            answers = {}
            counts = {"redis": (via_redis, "rankd_reads_redis_total"), "tier": (via_tier, "rankd_reads_tier_total")}
            for name, c in clients.items():
                before = {k: metric(inst, m) for k, (inst, m) in counts.items()}
                pg_before = metric(via_redis, "rankd_reads_postgres_total"), metric(via_tier, "rankd_reads_postgres_total")
                answers[name] = read_all_styles(c, paths, ordered, sort, styles=OFF_PG)
                n = len(answers[name])
                if name in counts:
                    inst, m = counts[name]
                    assert metric(inst, m) == before[name] + n, "%s: not every read answered by %s" % (label, name)
                    # ... and none by PostgreSQL (a tier read it cannot answer would go on to Redis).
                    assert (metric(via_redis, "rankd_reads_postgres_total"),
                            metric(via_tier, "rankd_reads_postgres_total")) == pg_before, label
                answers[name].update(read_all_styles(c, paths, ordered, sort,
                                                     styles=[s for s in STYLES if s not in OFF_PG]))
            answers["strong"] = read_all_styles(clients["redis"], paths, ordered, sort, "&consistency=strong")
            # The distinct sort keys Redis keeps (dense ranks count them): the window's scores.
            held = redis_db[1].zrange("rankd:{g%d}:0:s5" % gen, 0, -1, withscores=True)
            assert sorted(int(x) for _, x in held) == sorted({-v if sort == "desc" else v for _, v in ordered}), label
            for name in ("tier", "pg", "strong"):
                for p, a in answers["redis"].items():
                    assert answers[name][p] == a, (label, name, p, answers[name][p], a)

        compare("after the writes")

        # rankd verify compares Redis's distinct sort keys with PostgreSQL's too.
        def verify():
            v = run_cli(["verify", "--board", board], via_redis.config_path, env=via_redis.env)
            return v.returncode, v.stdout
        code, out = verify()
        assert code == 0 and "0 difference(s)" in out, out
        rc, key = redis_db[1], "rankd:{g%d}:0:s5" % gen
        held = rc.zrange(key, 0, -1, withscores=True)
        rc.zrem(key, held[1][0])
        rc.zadd(key, {b"\x80\x00\x00\x00\x00\x00\x99\x99": 0x9999})
        code, out = verify()
        assert code == 1 and "2 difference(s)" in out, out
        assert "%d missing in redis" % held[1][1] in out and "%d in redis only" % 0x9999 in out, out
        # The window loaded into Redis again from PostgreSQL (what a rebuild keeps, for dense).
        r = run_cli(["rebuild-cache", "--board", board], via_redis.config_path, env=via_redis.env)
        assert r.returncode == 0, r.stdout + r.stderr
        code, out = verify()
        assert code == 0 and "0 difference(s)" in out, out
        compare("after a rebuild")
    finally:
        for c in list(clients.values()) + [adm, w]:
            c.close()


def test_verify_compares_the_distinct_sort_keys_page_by_page(rankd_factory, db, redis_db):
    """`rankd verify` reads PostgreSQL's standings 1,000 at a time: Redis's distinct sort keys are
    compared page by page, tie groups crossing a page's end included, and a key missing or extra
    on any page is a difference."""
    inst = rankd_factory(env=NO_CACHE)
    adm, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY)
    try:
        board = create_board(adm, unique("sv"), sort="asc")["id"]
        players = ["v%04d" % i for i in range(2600)]
        score = {p: (i * 3) % 700 for i, p in enumerate(players)}  # 0..699: ties of 3 or 4, across pages
        for at in range(0, len(players), 1000):
            assert batch(w, [{"board": board, "player_id": p, "score": score[p]}
                             for p in players[at:at + 1000]]).status == 200
        redis_holds(inst, c, board)
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
        rc, key = redis_db[1], "rankd:{g%d}:0:s5" % gen
        assert rc.zcard(key) == 700

        def verify():
            v = run_cli(["verify", "--board", board], inst.config_path, env=inst.env)
            return v.returncode, v.stdout
        code, out = verify()
        assert code == 0 and "0 difference(s)" in out, out
        held = dict((int(v), m) for m, v in rc.zrange(key, 0, -1, withscores=True))
        ordered = sorted(score.values())
        # The score of the 1,000th standing (the first page's last, its ties on the next page too)
        # and one on the last page.
        gone = [ordered[999], ordered[2500]]
        assert ordered[1000] == ordered[999]
        for x in gone:
            rc.zrem(key, held[x])
        rc.zadd(key, {(100000 + (1 << 63)).to_bytes(8, "big"): 100000})  # past every standing
        code, out = verify()
        assert code == 1 and "3 difference(s)" in out, out
        for x in gone:
            assert "%d missing in redis" % x in out, out
        assert "100000 in redis only" in out, out
    finally:
        for x in (adm, w, c):
            x.close()
