"""
tests/e2e/test_moderation.py — an admin hides a player on a board (issue 50 item 4; API.md,
"Moderation"): POST /v1/leaderboards/{board}/players/{player}/hide, DELETE to restore, GET
/v1/leaderboards/{board}/hidden.

A hidden player vanishes from every read of the board (entries, player, around, ids=, the rank
of a score, statistics, the export), on every path (Redis, the rank tier, PostgreSQL's rank
buckets), in every rank style, with the ranks of everyone else those of a Python model of the
board without them; their submissions while hidden are acknowledged with their own view's rank
and show nowhere; a restore brings them back at the exact place their standing gives, those
submissions included. The model is fed only by the answers of the submissions.
"""

import csv
import io
import urllib.parse

import pytest

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, assert_error, batch, create_board, metric, parse_ts,
                      refresh_views, run_cli, series, submit, unique, wait_for)

STYLES = ("ordinal", "competition", "dense")
NO_CACHE = {"RANKD_CACHE_BYTES": "0"}
TIER = {"RANKD_RANK_TIER": "67108864", "RANKD_CACHE_BYTES": "0"}
TOKENS = {"auth": {"player_token_secret": "test-moderation-token-secret-0123456789"}}


def q(s):
    return urllib.parse.quote(s, safe="")


def get_json(c, path):
    r = c.get(path)
    assert r.status == 200, "%s: %s" % (path, r.describe())
    return r.json()


class Model:
    """The board as its submissions' answers made it: player -> (score, achieved_ms)."""

    def __init__(self, sort, operator):
        self.sort, self.operator = sort, operator
        self.st = {}
        self.hidden = set()

    def take(self, result):
        """A Submit result (200): the standing it reports when it changed it."""
        assert "error" not in result, result
        if result["updated"] or result["player_id"] not in self.st:
            self.st[result["player_id"]] = (result["score"], parse_ts(result["achieved_at"]))

    def key(self, pid):
        s, ms = self.st[pid]
        return (-s if self.sort == "desc" else s, ms, pid.encode())

    def ordered(self, with_hidden=()):
        """[(player, score)] of the visible players (and `with_hidden`), in rank order."""
        ps = [p for p in self.st if p not in self.hidden or p in with_hidden]
        return [(p, self.st[p][0]) for p in sorted(ps, key=self.key)]

    def own_rank(self, pid, style="ordinal"):
        """A hidden player's own view: 1 + the visible standings before their place (competition:
        of a better score; dense: the better distinct scores)."""
        if style == "ordinal":
            return 1 + sum(1 for p, _ in self.ordered() if self.key(p) < self.key(pid))
        mine = self.key(pid)[0]
        better = [self.key(p)[0] for p, _ in self.ordered() if self.key(p)[0] < mine]
        return 1 + (len(better) if style == "competition" else len(set(better)))


def styled_ranks(ordered):
    out = {s: {} for s in STYLES}
    comp = dense = 0
    prev = object()
    for i, (pid, score) in enumerate(ordered):
        if score != prev:
            comp, dense, prev = i + 1, dense + 1, score
        out["ordinal"][pid], out["competition"][pid], out["dense"][pid] = i + 1, comp, dense
    return out


def score_rank(ordered, sort, x, style):
    better = [s for _, s in ordered if (s > x if sort == "desc" else s < x)]
    if style == "ordinal":
        return 1 + sum(1 for _, s in ordered if s == x) + len(better)
    return 1 + (len(better) if style == "competition" else len(set(better)))


def read_paths(board, ordered, hidden):
    """Reads that take rank_style: offset pages, players, around (the hidden players' neighbours
    too), ids= naming the hidden, the rank of scores, the hidden players' own among them."""
    b = "/v1/leaderboards/" + board
    n = len(ordered)
    paths = ["%s/entries?limit=%d&offset=%d" % (b, lim, off) for lim, off in ((10, 0), (7, 3), (9, n // 2), (50, 0))]
    for i in sorted({0, 1, 3, n // 3, n // 2, n - 1}):
        p = ordered[i][0]
        paths.append("%s/players/%s" % (b, q(p)))
        paths.append("%s/players/%s/around?before=3&after=4" % (b, q(p)))
    paths.append("%s/players?ids=%s" % (b, ",".join(q(x) for x in [o[0] for o in ordered[::3]] + sorted(hidden))))
    scores = sorted({s for _, s in ordered})
    for x in [scores[0], scores[len(scores) // 2], scores[-1], scores[0] - 1, scores[-1] + 1]:
        paths.append("%s/rank?score=%d" % (b, x))
    return paths


def check(c, path, style, ordered, sort, hidden):
    p = path + ("&" if "?" in path else "?") + "rank_style=" + style
    answer = get_json(c, p)
    want = styled_ranks(ordered)[style]
    if "/rank?" in path:
        x = int(path.split("score=")[1].split("&")[0])
        assert answer["rank"] == score_rank(ordered, sort, x, style), (p, answer)
        assert answer["total"] == len(ordered), (p, answer)
        return answer
    entries = answer["entries"] if "entries" in answer else [answer]
    got = [(e["player_id"], e["rank"]) for e in entries]
    assert got == [(e["player_id"], want[e["player_id"]]) for e in entries], (p, got)
    assert not {e["player_id"] for e in entries} & hidden, (p, got)
    assert answer["total"] == len(ordered), (p, answer["total"])
    if "/entries?" in path:  # a page is the model's slice
        off = int(path.split("offset=")[1])
        lim = int(path.split("limit=")[1].split("&")[0])
        assert [e["player_id"] for e in entries] == [o[0] for o in ordered[off:off + lim]], p
    if "/around?" in path:  # the neighbours are the model's
        pid = urllib.parse.unquote(path.split("/players/")[1].split("/")[0])
        i = [o[0] for o in ordered].index(pid)
        assert [e["player_id"] for e in entries] == [o[0] for o in ordered[max(0, i - 3):i + 5]], p
    return answer


def compare(clients, board, model, label):
    """Every path of every client answers the model in every style; a hidden player is 404."""
    ordered = model.ordered()
    strong = []
    page = get_json(clients["redis"], "/v1/leaderboards/%s/entries?limit=1000&consistency=strong" % board)
    strong = [(e["player_id"], e["score"]) for e in page["entries"]]
    assert strong == ordered, (label, strong, ordered)
    paths = read_paths(board, ordered, model.hidden)
    for name, c in clients.items():
        # Another instance follows a hide, a restore or a write through the notices: within their
        # delay (the rank tier applies them on its own thread), not at once.
        def caught_up():
            got = get_json(c, "/v1/leaderboards/%s/entries?limit=1000" % board)
            return [(e["player_id"], e["score"]) for e in got["entries"]] == ordered
        wait_for(caught_up, "%s: the %s instance answering the change" % (label, name), 10)
        for path in paths:
            for style in STYLES:
                check(c, path, style, ordered, model.sort, model.hidden)
        for h in model.hidden:
            assert_error(c.get("/v1/leaderboards/%s/players/%s" % (board, q(h))), 404, field="player_id")
            assert_error(c.get("/v1/leaderboards/%s/players/%s/around" % (board, q(h))), 404, field="player_id")
            assert board not in [x["board"] for x in get_json(c, "/v1/players/%s/standings" % q(h))["standings"]]


def admin_views(adm, board, model):
    """The admin sees each hidden player, flagged, in their own view (ranked among the visible
    players as if they alone of the hidden stood with them), and around them."""
    for p in sorted(model.hidden):
        for style in STYLES:
            got = get_json(adm, "/v1/leaderboards/%s/players/%s?rank_style=%s" % (board, q(p), style))
            assert got["hidden"] is True and got["player_id"] == p, got
            assert (got["score"], parse_ts(got["achieved_at"])) == model.st[p], (got, model.st[p])
            assert got["rank"] == model.own_rank(p, style), (p, style, got)
            assert got["total"] == len(model.ordered()) + 1, got
        # ... and around them: the board as if they alone of the hidden stood with the others.
        own = model.ordered(with_hidden={p})
        i = [o[0] for o in own].index(p)
        for style in STYLES:
            want = styled_ranks(own)[style]
            got = get_json(adm, "/v1/leaderboards/%s/players/%s/around?before=3&after=4&rank_style=%s"
                           % (board, q(p), style))
            assert [(e["player_id"], e["rank"]) for e in got["entries"]] == \
                [(o[0], want[o[0]]) for o in own[max(0, i - 3):i + 5]], (p, style, got)
            assert [e.get("hidden") for e in got["entries"]] == \
                [True if o[0] == p else None for o in own[max(0, i - 3):i + 5]], got
            assert got["total"] == len(own)
            assert want[p] == model.own_rank(p, style)


def own_views(insts, board, model):
    """A hidden player's own token sees them (a shadow ban): their rank among the visible players
    as the admin's view gives it, unflagged, on every path; another player's token, and the read
    key, get the 404 (checked by compare)."""
    for p in sorted(model.hidden):
        tokens = [inst.client(mint_token(inst, p)) for inst in insts]
        try:
            own = model.ordered(with_hidden={p})
            i = [o[0] for o in own].index(p)
            for c in tokens:
                for style in STYLES:
                    got = get_json(c, "/v1/leaderboards/%s/players/%s?rank_style=%s" % (board, q(p), style))
                    assert "hidden" not in got and got["player_id"] == p, got
                    assert got["rank"] == model.own_rank(p, style) and got["total"] == len(model.ordered()) + 1, got
                    got = get_json(c, "/v1/leaderboards/%s/players/%s/around?before=2&after=2&rank_style=%s"
                                   % (board, q(p), style))
                    want = styled_ranks(own)[style]
                    assert [(e["player_id"], e["rank"]) for e in got["entries"]] == \
                        [(o[0], want[o[0]]) for o in own[max(0, i - 2):i + 3]], (p, style, got)
                    assert all("hidden" not in e for e in got["entries"]), got
                for h in model.hidden - {p}:  # another hidden player: 404, as for anyone
                    assert_error(c.get("/v1/leaderboards/%s/players/%s" % (board, q(h))), 404, field="player_id")
                for style in STYLES:
                    got = get_json(c, "/v1/players/%s/standings?rank_style=%s" % (q(p), style))
                    mine = [x for x in got["standings"] if x["board"] == board]
                    assert [(x["rank"], x["total"], "hidden" in x) for x in mine] == \
                        [(model.own_rank(p, style), len(model.ordered()) + 1, False)], (p, style, got)
                ex = get_json(c, "/v1/players/%s/export" % q(p))
                assert all("hidden" not in x for x in ex["standings"]), ex
                assert [x["rank"] for x in ex["standings"] if x["board"] == board] == [model.own_rank(p)], ex
        finally:
            for c in tokens:
                c.close()


def mint_token(inst, player):
    r = inst.client(WRITE_KEY).post("/v1/players/%s/tokens" % q(player), json_body={})
    assert r.status == 201, r.describe()
    return r.json()["token"]


def reads_count(inst, name):
    return metric(inst, name)


def answered_by(inst, c, board, counter):
    def answered():
        before = metric(inst, counter)
        get_json(c, "/v1/leaderboards/%s/entries?limit=1" % board)
        return metric(inst, counter) > before
    wait_for(answered, "%s answering reads of %s" % (counter, board), timeout=30)


def export_rows(adm, board):
    r = adm.get("/v1/leaderboards/%s/export?format=csv" % board)
    assert r.status == 200, r.describe()
    return list(csv.DictReader(io.StringIO(r.body.decode())))


def tied_items(board, players, scores):
    return [{"board": board, "player_id": p, "score": scores[i % len(scores)]} for i, p in enumerate(players)]


def take_batch(model, w, items):
    r = batch(w, items)
    assert r.status == 200, r.describe()
    for res in r.json()["results"]:
        model.take(res)
    return r.json()["results"]


@pytest.mark.parametrize("sort,operator", [("desc", "best"), ("asc", "latest")])
def test_a_hidden_player_vanishes_from_every_read_and_a_restore_brings_them_back(sort, operator, rankd_factory, db,
                                                                               redis_db):
    via_redis = rankd_factory(env=NO_CACHE, extra_config=TOKENS)
    via_tier = rankd_factory(env=TIER, extra_config=TOKENS)
    via_pg = rankd_factory(redis=False, env=NO_CACHE, extra_config=TOKENS)
    adm, w = via_redis.client(ADMIN_KEY), via_redis.client(WRITE_KEY)
    clients = {name: inst.client(WRITE_KEY) for name, inst in
               (("redis", via_redis), ("tier", via_tier), ("pg", via_pg))}
    try:
        model = Model(sort, operator)
        board = create_board(adm, unique("mod-%s" % sort), sort=sort, operator=operator)["id"]
        players = ["p%02d" % i for i in range(40)]
        scores = [1000, 640, 640, 333, 200, 200, 17, 17, 17, -5]
        take_batch(model, w, tied_items(board, players, scores) + [{"board": board, "player_id": "solo",
                                                                    "score": 777}])
        compare(clients, board, model, "before the hide")
        answered_by(via_tier, clients["tier"], board, "rankd_reads_tier_total")
        answered_by(via_redis, clients["redis"], board, "rankd_reads_redis_total")
        refresh_views(adm)
        stats0 = get_json(clients["pg"], "/v1/leaderboards/%s/stats" % board)
        assert stats0["players"] == 41

        # Hide three: the top one, one inside a tie group, and "solo" (the only one of its score:
        # the dense ranks after it close up too).
        top = model.ordered()[0][0]
        hide = [top, "p11", "solo"]
        for i, p in enumerate(hide):
            body = {"reason": "cheating %d" % i} if i != 1 else None
            path = "/v1/leaderboards/%s/players/%s/hide" % (board, p)
            r = adm.post(path, json_body=body) if body else adm.post(path)
            assert r.status == 204, r.describe()
            model.hidden.add(p)
        compare(clients, board, model, "after the hide")
        admin_views(adm, board, model)  # tied with visible players: dense counts no new score
        own_views((via_redis, via_tier, via_pg), board, model)
        # The tier and Redis answered those reads (they follow the hide; no reload needed).
        answered_by(via_tier, clients["tier"], board, "rankd_reads_tier_total")
        answered_by(via_redis, clients["redis"], board, "rankd_reads_redis_total")
        listed = get_json(adm, "/v1/leaderboards/%s/hidden" % board)
        assert sorted(h["player_id"] for h in listed["hidden"]) == sorted(hide)
        assert {h["player_id"]: h["reason"] for h in listed["hidden"]} == {top: "cheating 0", "p11": None,
                                                                           "solo": "cheating 2"}
        assert listed["next_cursor"] is None
        # Statistics and the export: the totals drop.
        refresh_views(adm)
        stats = get_json(clients["pg"], "/v1/leaderboards/%s/stats" % board)
        assert stats["players"] == 38
        assert stats["submissions"] == stats0["submissions"] - 3
        visible_scores = [s for _, s in model.ordered()]
        assert (stats["min"], stats["max"]) == (min(visible_scores), max(visible_scores))
        rows = export_rows(adm, board)
        assert [r["player_id"] for r in rows] == [p for p, _ in model.ordered()]

        # The hidden players submit: acknowledged as usual, with their own view's rank (their
        # place among the visible players); nothing shows.
        better = 5000 if sort == "desc" else -5000
        for p, s in ((top, better), ("p11", better + (1 if sort == "desc" else -1)), ("solo", 900 if sort == "desc" else 16)):
            r = submit(w, board, p, s)
            assert r.status == 200, r.describe()
            res = r.json()
            prev_own = model.own_rank(p)
            model.take(res)
            assert res["updated"] is True and res["score"] == s
            assert res["rank"] == model.own_rank(p), (p, res, model.own_rank(p))
            assert res["previous_rank"] == prev_own, (p, res, prev_own)
        # A batch mixing visible and hidden players in one window.
        take_batch(model, w, [{"board": board, "player_id": "p02", "score": 999},
                              {"board": board, "player_id": "solo", "score": 2 if sort == "desc" else 3000},
                              {"board": board, "player_id": "newbie", "score": 640}])
        compare(clients, board, model, "after the hidden players' submissions")
        admin_views(adm, board, model)
        own_views((via_redis, via_tier, via_pg), board, model)
        # The player's export (admin) shows their hidden standing, flagged, at its own place.
        ex = get_json(adm, "/v1/players/%s/export" % q(top))
        mine = [x for x in ex["standings"] if x["board"] == board]
        assert len(mine) == 1 and mine[0]["hidden"] is True and mine[0]["rank"] == model.own_rank(top), mine
        assert len([x for x in ex["submissions"] if x["board"] == board]) == 2
        for p in ("p02", model.ordered()[-1][0]):
            assert get_json(adm, "/v1/leaderboards/%s/players/%s" % (board, p)) == \
                get_json(clients["pg"], "/v1/leaderboards/%s/players/%s" % (board, p))
        answered_by(via_tier, clients["tier"], board, "rankd_reads_tier_total")
        refresh_views(adm)
        stats = get_json(clients["pg"], "/v1/leaderboards/%s/stats" % board)
        assert stats["players"] == len(model.ordered())

        # rankd verify: Redis and the rank buckets agree with PostgreSQL's standings.
        v = run_cli(["verify", "--board", board], via_redis.config_path, env=via_redis.env)
        assert v.returncode == 0 and "0 difference(s)" in v.stdout, v.stdout + v.stderr

        # Restore: each comes back at the place their standing gives, hidden submissions included.
        for p in hide:
            assert adm.delete("/v1/leaderboards/%s/players/%s/hide" % (board, p)).status == 204
            model.hidden.discard(p)
            compare(clients, board, model, "after restoring " + p)
        assert get_json(adm, "/v1/leaderboards/%s/hidden" % board)["hidden"] == []
        answered_by(via_tier, clients["tier"], board, "rankd_reads_tier_total")
        answered_by(via_redis, clients["redis"], board, "rankd_reads_redis_total")
        refresh_views(adm)
        stats = get_json(clients["pg"], "/v1/leaderboards/%s/stats" % board)
        assert stats["players"] == len(model.st)
        subs = db.query("SELECT count(*) FROM submissions s JOIN boards b ON b.gen = s.board_gen WHERE b.id = %s",
                        (board,))[0][0]
        assert stats["submissions"] == subs
        v = run_cli(["verify", "--board", board], via_redis.config_path, env=via_redis.env)
        assert v.returncode == 0 and "0 difference(s)" in v.stdout, v.stdout + v.stderr
        assert db.query("SELECT count(*) FROM hidden_standings h JOIN boards b ON b.gen = h.board_gen"
                        " WHERE b.id = %s", (board,))[0][0] == 0
    finally:
        for c in list(clients.values()) + [adm, w]:
            c.close()


def test_bad_input_gets_the_contracts_errors_and_changes_nothing(rankd_factory, db):
    inst = rankd_factory()
    adm, w, rd, anon = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY), inst.client(None)
    try:
        board = create_board(adm, unique("modbad"))["id"]
        for i, p in enumerate(["a", "b", "c"]):
            assert submit(w, board, p, 10 * i).status == 200
        base = "/v1/leaderboards/%s/players/%%s/hide" % board

        def state():
            return (get_json(adm, "/v1/leaderboards/%s/entries?limit=10" % board),
                    get_json(adm, "/v1/leaderboards/%s/hidden" % board),
                    db.query("SELECT count(*) FROM hidden_players")[0][0])
        before = state()
        assert_error(w.post(base % "a"), 403)
        assert_error(rd.post(base % "a"), 403)
        assert_error(anon.post(base % "a"), 401)
        assert_error(w.get("/v1/leaderboards/%s/hidden" % board), 403)
        assert_error(adm.post("/v1/leaderboards/nope-%s/players/a/hide" % unique("x")), 404,
                     field="board")
        assert_error(adm.post(base % "nobody"), 404, field="player_id")
        assert_error(adm.post(base % "bad%20id"), 400, field="player_id")
        assert_error(adm.post(base % "a", json_body={"reason": ""}), 400, field="reason")
        assert_error(adm.post(base % "a", json_body={"reason": 5}), 400, field="reason")
        assert_error(adm.post(base % "a", json_body={"reason": "x" * 501}), 400, field="reason")
        assert_error(adm.post(base % "a", json_body={"why": "x"}), 400)
        assert_error(adm.delete(base % "a"), 404, field="player_id")  # not hidden
        assert_error(adm.get("/v1/leaderboards/%s/hidden?limit=0" % board), 400, field="limit")
        assert_error(adm.get("/v1/leaderboards/%s/hidden?cursor=xyz" % board), 400, field="cursor")
        r = adm.request("PATCH", base % "a", json_body={})
        assert r.status == 405
        assert state() == before
        # Already hidden: 409, and the first hide stands as it was.
        assert adm.post(base % "a", json_body={"reason": "first"}).status == 204
        hidden = get_json(adm, "/v1/leaderboards/%s/hidden" % board)
        assert_error(adm.post(base % "a", json_body={"reason": "second"}), 409, field="player_id")
        assert get_json(adm, "/v1/leaderboards/%s/hidden" % board) == hidden
        assert hidden["hidden"][0]["reason"] == "first"
        # A cursor of another board's listing is refused.
        other = create_board(adm, unique("modbad2"))["id"]
        for p in ("x", "y"):
            assert submit(w, other, p, 1).status == 200
            assert adm.post("/v1/leaderboards/%s/players/%s/hide" % (other, p)).status == 204
        cur = get_json(adm, "/v1/leaderboards/%s/hidden?limit=1" % other)["next_cursor"]
        assert cur
        assert_error(adm.get("/v1/leaderboards/%s/hidden?cursor=%s" % (board, q(cur))), 400, field="cursor")
    finally:
        for c in (adm, w, rd, anon):
            c.close()


def test_the_hidden_list_pages_with_cursors(rankd_factory):
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        board = create_board(adm, unique("modlist"))["id"]
        names = ["h%d" % i for i in range(7)]
        for i, p in enumerate(names):
            assert submit(w, board, p, i).status == 200
            assert adm.post("/v1/leaderboards/%s/players/%s/hide" % (board, p),
                            json_body={"reason": "r%d" % i}).status == 204
        seen, cur = [], None
        while True:
            page = get_json(adm, "/v1/leaderboards/%s/hidden?limit=3%s" % (board, "&cursor=" + q(cur) if cur else ""))
            assert len(page["hidden"]) <= 3
            seen += page["hidden"]
            cur = page["next_cursor"]
            if not cur:
                break
        assert [h["player_id"] for h in seen] == names  # hidden_at order
        assert [h["reason"] for h in seen] == ["r%d" % i for i in range(7)]
        assert [parse_ts(h["hidden_at"]) for h in seen] == sorted(parse_ts(h["hidden_at"]) for h in seen)
    finally:
        adm.close()
        w.close()


def test_another_instance_sees_the_hide_and_the_restore(rankd_factory):
    """Two instances with their caches (and one with the rank tier): the other instance's cached
    answers and tier follow the hide and the restore within the notice delay."""
    a = rankd_factory()
    b = rankd_factory(env={"RANKD_RANK_TIER": "67108864"})
    adm, w, rb = a.client(ADMIN_KEY), a.client(WRITE_KEY), b.client(READ_KEY)
    try:
        board = create_board(adm, unique("mod2i"))["id"]
        for i in range(12):
            assert submit(w, board, "q%02d" % i, 100 - i).status == 200
        top = "/v1/leaderboards/%s/entries?limit=5" % board
        who = "/v1/leaderboards/%s/players/q05" % board
        wait_for(lambda: get_json(rb, top)["total"] == 12, "instance b seeing the board")
        answered_by(b, rb, board, "rankd_reads_tier_total")
        assert get_json(rb, who)["rank"] == 6
        assert adm.post("/v1/leaderboards/%s/players/q01/hide" % board).status == 204
        wait_for(lambda: [e["player_id"] for e in get_json(rb, top)["entries"]] == ["q00", "q02", "q03", "q04", "q05"],
                 "instance b's top without q01")
        wait_for(lambda: get_json(rb, who)["rank"] == 5, "instance b's rank of q05 closing up")
        assert get_json(rb, top)["total"] == 11
        assert rb.get("/v1/leaderboards/%s/players/q01" % board).status == 404
        assert adm.delete("/v1/leaderboards/%s/players/q01/hide" % board).status == 204
        wait_for(lambda: get_json(rb, who)["rank"] == 6, "instance b's rank of q05 back")
        assert [e["player_id"] for e in get_json(rb, top)["entries"]] == ["q00", "q01", "q02", "q03", "q04"]
        assert get_json(rb, top)["total"] == 12
    finally:
        for c in (adm, w, rb):
            c.close()


def test_deleting_a_hidden_player_removes_their_hidden_rows(rankd_factory, db):
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        board = create_board(adm, unique("moddel"))["id"]
        for i, p in enumerate(["d1", "d2", "d3"]):
            assert submit(w, board, p, i).status == 200
        assert adm.post("/v1/leaderboards/%s/players/d2/hide" % board).status == 204
        assert submit(w, board, "d2", 50).status == 200  # while hidden: logged, not counted
        assert adm.delete("/v1/leaderboards/%s/players/d2" % board).status == 204
        assert get_json(adm, "/v1/leaderboards/%s/hidden" % board)["hidden"] == []
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
        assert db.query("SELECT count(*) FROM hidden_standings WHERE board_gen = %s", (gen,))[0][0] == 0
        assert db.query("SELECT players, submissions FROM window_counts WHERE board_gen = %s", (gen,))[0] == (2, 2)
        assert adm.delete("/v1/leaderboards/%s/players/d2" % board).status == 404
        v = run_cli(["verify", "--board", board], inst.config_path, env=inst.env)
        assert v.returncode == 0 and "0 difference(s)" in v.stdout, v.stdout + v.stderr
    finally:
        adm.close()
        w.close()


@pytest.mark.parametrize("mode", ["submit", "replace"])
def test_an_import_folds_a_hidden_players_rows_into_their_hidden_standing(rankd_factory, db, mode):
    """An import's rows of a hidden player fold onto their hidden standing under the board's
    operator (never onto a visible one), count in no total, and a restore shows the result."""
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        board = create_board(adm, unique("modimp"), operator="best")["id"]
        for p, s in (("a", 10), ("b", 50), ("c", 30), ("gone", 5)):
            assert submit(w, board, p, s).status == 200
        for p in ("b", "gone"):
            assert adm.post("/v1/leaderboards/%s/players/%s/hide" % (board, p)).status == 204
        # b: 40 does not beat 50 (best), 70 does; c improves; "new" is new; "gone" is not in the
        # file (replace: its hidden standing goes with the rest of the window's).
        text = "player_id,score\r\nb,40\r\nc,35\r\nb,70\r\nnew,1\r\n" if mode == "submit" else \
            "player_id,score\r\nb,70\r\nc,35\r\nnew,1\r\n"  # replace: one row each, the file's score
        r = adm.request("POST", "/v1/leaderboards/%s/import?mode=%s" % (board, mode), body=text,
                        content_type="text/csv")
        assert r.status == 200, r.describe()
        page = get_json(adm, "/v1/leaderboards/%s/entries?limit=10" % board)
        assert [(e["player_id"], e["score"]) for e in page["entries"]] == \
            ([("c", 35), ("a", 10), ("new", 1)] if mode == "submit" else [("c", 35), ("new", 1)])
        assert page["total"] == len(page["entries"])
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
        assert db.query("SELECT player_id, score FROM hidden_standings WHERE board_gen = %s ORDER BY 1",
                        (gen,)) == ([("b", 70), ("gone", 5)] if mode == "submit" else [("b", 70)])
        visible_log = db.query("SELECT count(*) FROM submissions WHERE board_gen = %s"
                               " AND player_id NOT IN ('b', 'gone')", (gen,))[0][0]
        assert db.query("SELECT submissions FROM window_counts WHERE board_gen = %s", (gen,))[0][0] == visible_log
        v = run_cli(["verify", "--board", board], inst.config_path, env=inst.env)
        assert v.returncode == 0 and "0 difference(s)" in v.stdout, v.stdout + v.stderr
        assert adm.delete("/v1/leaderboards/%s/players/b/hide" % board).status == 204
        wait_for(lambda: get_json(adm, "/v1/leaderboards/%s/entries?limit=1" % board)["entries"][0]["player_id"] == "b",
                 "b back on top")
        assert get_json(adm, "/v1/leaderboards/%s/players/b" % board)["score"] == 70
    finally:
        adm.close()
        w.close()


def test_archived_windows_are_final_and_a_window_archived_while_hidden_is_without_them(rankd_factory, db,
                                                                                      tmp_root):
    """Hiding applies to windows not archived: a window archived before the hide keeps the
    player; one archived while they are hidden is archived without them (ranks closed up) and
    stays so after the restore, which brings back the current window's standing only."""
    from test_archive import GRACE_MS, GUARD_TIMEOUT_MS, Clock, day_ms
    import datetime
    clock = Clock(tmp_root)
    d1 = datetime.date(2029, 3, 1)
    clock.set(day_ms(d1) + 1000)
    inst = rankd_factory(env=clock.env(), extra_config={"postgres": {"statement_timeout_ms": GUARD_TIMEOUT_MS}})
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        board = create_board(adm, unique("modarc"), reset="daily")["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
        for p, s in (("a", 30), ("x", 20), ("y", 10)):
            assert submit(w, board, p, s).status == 200
        # Day 1 closes and is archived with x.
        clock.set(day_ms(d1 + datetime.timedelta(days=1)) + GRACE_MS + 1000)
        wait_for(lambda: db.query("SELECT count(*) FROM archived_windows WHERE board_gen = %s", (gen,))[0][0] == 1,
                 "day 1 archived")
        for p, s in (("a", 5), ("x", 50), ("y", 7)):
            assert submit(w, board, p, s).status == 200  # day 2
        assert adm.post("/v1/leaderboards/%s/players/x/hide" % board).status == 204
        # Day 1's archive keeps x (it was archived before the hide); day 2 hides them.
        got = get_json(adm.with_key(WRITE_KEY), "/v1/leaderboards/%s/entries?window=%s" % (board, d1.isoformat()))
        assert [(e["player_id"], e["rank"]) for e in got["entries"]] == [("a", 1), ("x", 2), ("y", 3)]
        got = get_json(w, "/v1/leaderboards/%s/entries" % board)
        assert [(e["player_id"], e["rank"]) for e in got["entries"]] == [("y", 1), ("a", 2)]
        # Day 2 closes while x is hidden: archived without x.
        d2 = d1 + datetime.timedelta(days=1)
        clock.set(day_ms(d2 + datetime.timedelta(days=1)) + GRACE_MS + 1000)
        wait_for(lambda: db.query("SELECT count(*) FROM archived_windows WHERE board_gen = %s", (gen,))[0][0] == 2,
                 "day 2 archived")
        assert db.query("SELECT player_id, rank FROM archive WHERE board_gen = %s AND win = %s ORDER BY rank",
                        (gen, d2.isoformat())) == [("y", 1), ("a", 2)]
        assert submit(w, board, "x", 3).status == 200  # day 3, hidden
        assert submit(w, board, "a", 1).status == 200
        assert [e["player_id"] for e in get_json(w, "/v1/leaderboards/%s/entries" % board)["entries"]] == ["a"]
        assert adm.delete("/v1/leaderboards/%s/players/x/hide" % board).status == 204
        assert [(e["player_id"], e["rank"]) for e in get_json(w, "/v1/leaderboards/%s/entries" % board)["entries"]] \
            == [("x", 1), ("a", 2)]
        got = get_json(w, "/v1/leaderboards/%s/entries?window=%s" % (board, d2.isoformat()))
        assert [(e["player_id"], e["rank"]) for e in got["entries"]] == [("y", 1), ("a", 2)]
        v = run_cli(["verify", "--board", board], inst.config_path, env=inst.env)
        assert v.returncode == 0 and "0 difference(s)" in v.stdout, v.stdout + v.stderr
        # Retention takes day 2's standings once it is older than the previous window and its
        # archive past the guard, and x's hidden standing of day 2 with them (it is in no archive,
        # and no restore brings it back).
        clock.set(day_ms(d2 + datetime.timedelta(days=2)) + GRACE_MS + 1000)
        wait_for(lambda: db.query("SELECT count(*) FROM archived_windows WHERE board_gen = %s", (gen,))[0][0] == 3,
                 "day 3 archived")
        wait_for(lambda: db.query("SELECT count(*) FROM standings WHERE board_gen = %s AND win = %s",
                                  (gen, d2.isoformat()))[0][0] == 0, "day 2's standings retired", 30)
        wait_for(lambda: db.query("SELECT count(*) FROM hidden_standings WHERE board_gen = %s AND win = %s",
                                  (gen, d2.isoformat()))[0][0] == 0, "day 2's hidden standing retired", 10)
        assert db.query("SELECT count(*) FROM hidden_standings WHERE board_gen = %s", (gen,))[0][0] == 0
    finally:
        adm.close()
        w.close()


def test_a_hidden_players_lost_answer_is_completed_in_their_own_view(rankd_factory, db):
    """An answer lost after its commit (the key holds its draft and no response) is completed
    at its replay: for a hidden player, with their place among the visible players (it was a 409
    saying their standing no longer existed, which told them they were hidden)."""
    from conftest import stored_key
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        board = create_board(adm, unique("modkey"), operator="best")["id"]
        for p, s in (("a", 10), ("h", 5)):
            assert submit(w, board, p, s).status == 200
        assert adm.post("/v1/leaderboards/%s/players/h/hide" % board).status == 204
        key = "k-" + unique("h")
        body = {"player_id": "h", "score": 50}
        r1 = w.post("/v1/leaderboards/%s/scores" % board, json_body=body, headers={"Idempotency-Key": key})
        assert r1.status == 200 and r1.json()["rank"] == 1 and r1.json()["previous_rank"] == 2, r1.describe()
        db.query("UPDATE idempotency_keys k SET response = NULL FROM boards b "
                 "WHERE b.gen = k.board_gen AND b.id = %s AND k.key = %s", (board, stored_key(key)))
        assert submit(w, board, "q", 90).status == 200  # h's place among the visible is now 2nd
        r2 = w.post("/v1/leaderboards/%s/scores" % board, json_body=body, headers={"Idempotency-Key": key})
        assert r2.status == 200, r2.describe()
        assert r2.json()["rank"] == 2 and r2.json()["score"] == 50, r2.json()
        assert [e["player_id"] for e in get_json(w, "/v1/leaderboards/%s/entries" % board)["entries"]] == ["q", "a"]
    finally:
        adm.close()
        w.close()
