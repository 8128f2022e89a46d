"""
tests/e2e/test_oracle.py — the ranking oracle.

For every sort × operator, a few thousand random submissions over ~300 players
(small score range, so many ties; a few values at ±(2^53-1)) go to a fresh
board, mostly through /v1/scores:batch, some one by one. A Python model applies
the same operators; its standings are (score, achieved_at, player_id) where
achieved_at is the server's receive time reported by each result that updated
the standing. Then every way of reading ranks must agree with the model:
each player's standing, offset pages, next/prev cursors, around-me, ids=,
totals. Each combination runs with Redis, with a Redis Cluster (3 masters,
3 replicas), without Redis, and with Redis stopped halfway (reads and writes
must go on from PostgreSQL).

test_concurrent_writers races several writers on the same players of `best`
and `sum` boards, whose final scores do not depend on the order of arrival.

RANKD_ORACLE_SUBMISSIONS sets the number of submissions per board (default 3000);
RANKD_ORACLE_SEED fixes the random seed.
"""

import hashlib
import math
import os
import random
import threading
import urllib.parse

import pytest

from conftest import (ADMIN_KEY, READ_KEY, SCORE_MAX, SCORE_MIN, WRITE_KEY, assert_error, create_board, metric, parse_ts,
                      run_cli, unique, wait_for)

N_SUBMISSIONS = int(os.environ.get("RANKD_ORACLE_SUBMISSIONS", "3000"))
N_PLAYERS = int(os.environ.get("RANKD_ORACLE_PLAYERS", "300"))
SEED = os.environ.get("RANKD_ORACLE_SEED", "")

SPECIAL_IDS = ["A", "a", "Z", "z", "0", "9", "_", "-", "a.b", "a:b", "a@b", "..x", "x..", "x" * 64, "X" * 64,
               "a-b_c.d:e@f", "p001.", "P001", ":", "@", "._", "-.", "aa", "aA", "Aa", "a0", "a_",
               "a-", "a."]


def q(s):
    return urllib.parse.quote(s, safe="")


class Model:
    def __init__(self, sort, op):
        self.sort = sort
        self.op = op
        self.st = {}  # player -> (score, achieved_ms, achieved_str, metadata or None)
        self.placed = []  # players in the order of their first standing (a league's placing order)

    def better(self, s, v):
        return s > v if self.sort == "desc" else s < v

    def expect(self, pid, s):
        """(new score, updated) or None when the submission must be refused."""
        cur = self.st.get(pid)
        v = cur[0] if cur else None
        if self.op == "best":
            if v is None or self.better(s, v):
                return s, True
            return v, False
        if self.op == "latest":
            return s, (v is None or s != v)
        n = (v or 0) + s
        if n > SCORE_MAX or n < SCORE_MIN:
            return None
        return n, (v is None or s != 0)

    def previous(self, pid):
        cur = self.st.get(pid)
        return cur[0] if cur else None

    def apply(self, pid, new, achieved, metadata):
        self.st[pid] = (new, parse_ts(achieved), achieved, metadata)

    def sort_key(self, pid):
        s, a, _, _ = self.st[pid]
        return (-s if self.sort == "desc" else s, a, pid.encode())

    def ordered(self):
        order = sorted(self.st, key=self.sort_key)
        return [(i + 1, p, self.st[p][0], self.st[p][2], self.st[p][3]) for i, p in enumerate(order)]


def entry_tuple(e):
    if "metadata" in e:
        assert e["metadata"] is not None, "metadata present but null: %r" % e
    return (e["rank"], e["player_id"], e["score"], e["achieved_at"], e.get("metadata"))


def gen_score(rng, op):
    r = rng.random()
    if r < 0.02:
        return rng.choice([SCORE_MAX, SCORE_MIN, SCORE_MAX - 1, SCORE_MIN + 1])
    if r < 0.04:
        big = SCORE_MAX - rng.randint(0, 3)
        return big if rng.random() < 0.5 else -big
    if op == "sum":
        return rng.randint(-3, 3)
    return rng.randint(-4, 4)


def check_result(model, pid, s, md, res, board, where):
    exp = model.expect(pid, s)
    if exp is None:
        assert "error" in res, "%s: %s += %d must overflow, got %r" % (where, pid, s, res)
        assert res["error"].get("code") == "invalid_argument" and res["error"].get("field") == "score", res
        return
    assert "error" not in res, "%s: unexpected error for %s score %d: %r" % (where, pid, s, res)
    new, upd = exp
    assert res["board"] == board and res["player_id"] == pid and res["window"] == "1970-01-01", res
    assert res["previous_score"] == model.previous(pid), (where, pid, s, res, model.st.get(pid))
    assert res["score"] == new, (where, pid, s, res, model.st.get(pid))
    assert res["updated"] is upd, (where, pid, s, res, model.st.get(pid))
    if upd:
        if pid not in model.st:
            model.placed.append(pid)
        model.apply(pid, new, res["achieved_at"], md)


def submit_all(c, board, model, players, subs, rng, label):
    """Send `subs` (list of (pid, score, metadata)) in batches and singles; check each result."""
    i = 0
    while i < len(subs):
        if rng.random() < 0.1:
            n = rng.randint(1, 20)
            for pid, s, md in subs[i:i + n]:
                body = {"player_id": pid, "score": s}
                if md is not None:
                    body["metadata"] = md
                before = {x[1]: x[0] for x in model.ordered()}
                r = c.post("/v1/leaderboards/%s/scores" % board, json_body=body, key=WRITE_KEY)
                exp = model.expect(pid, s)
                if exp is None:
                    assert_error(r, 400, field="score")
                    continue
                assert r.status == 200, "%s single submit: %s" % (label, r.describe())
                res = r.json()
                check_result(model, pid, s, md, res, board, label + " single")
                ordered = model.ordered()
                rank = next(x[0] for x in ordered if x[1] == pid)
                assert res["rank"] == rank, "%s: rank in the submit result %r, model %d" % (label, res, rank)
                assert res["previous_rank"] == before.get(pid), "%s: previous_rank %r, model %r" % (
                    label, res, before.get(pid))
            i += n
        else:
            n = rng.randint(50, 1000)
            chunk = subs[i:i + n]
            items = []
            for pid, s, md in chunk:
                it = {"board": board, "player_id": pid, "score": s}
                if md is not None:
                    it["metadata"] = md
                items.append(it)
            before = {x[1]: x[0] for x in model.ordered()}
            r = c.post("/v1/scores:batch", json_body={"scores": items}, key=WRITE_KEY)
            assert r.status == 200, "%s batch: %s" % (label, r.describe())
            results = r.json()["results"]
            assert len(results) == len(chunk)
            # previous_rank: a player's first item counts the standings as the batch found them
            # (the model before it), a later one has the rank the one before it answered.
            last = {}
            for (pid, s, md), res in zip(chunk, results):
                check_result(model, pid, s, md, res, board, label + " batch")
                if "error" in res:
                    continue
                want = last[pid] if pid in last else before.get(pid)
                assert res["previous_rank"] == want, "%s batch: previous_rank %r, expected %r" % (label, res, want)
                last[pid] = res["rank"]
            i += n


def verify_reads(c, board, model, players, absent, rng):
    ordered = model.ordered()
    total = len(ordered)
    by_pid = {x[1]: x for x in ordered}
    assert total > 0

    def get(path):
        r = c.get(path)
        assert r.status == 200, r.describe()
        return r.json()

    b = get("/v1/leaderboards/" + board)
    assert b["players"] == total, ("board players", b["players"], total)

    # Every player's standing.
    for pid in players:
        r = c.get("/v1/leaderboards/%s/players/%s" % (board, q(pid)))
        if pid not in by_pid:
            assert_error(r, 404, field="player_id")
            continue
        assert r.status == 200, r.describe()
        s = r.json()
        assert entry_tuple(s) == by_pid[pid], ("player", pid, s, by_pid[pid])
        assert s["total"] == total and s["board"] == board
        tp = math.ceil(s["rank"] * 10000 / total) / 100
        assert abs(s["top_percent"] - tp) < 1e-9, (s, tp)
    for pid in absent:
        assert_error(c.get("/v1/leaderboards/%s/players/%s" % (board, q(pid))), 404, field="player_id")

    # Offset pages.
    for limit in (37, 1000):
        for off in range(0, total, limit):
            p = get("/v1/leaderboards/%s/entries?limit=%d&offset=%d" % (board, limit, off))
            assert p["total"] == total
            assert [entry_tuple(e) for e in p["entries"]] == ordered[off:off + limit], ("offset", limit, off)
            assert (p["prev_cursor"] is None) == (off == 0), ("prev_cursor", off, p["prev_cursor"])
            assert (p["next_cursor"] is None) == (off + limit >= total), ("next_cursor", off, p["next_cursor"])

    # Forward with next_cursor, then back with prev_cursor.
    limit = 50
    p = get("/v1/leaderboards/%s/entries?limit=%d" % (board, limit))
    pages = [p]
    seen = [entry_tuple(e) for e in p["entries"]]
    while p["next_cursor"] is not None:
        assert len(pages) < total + 2, "next_cursor does not end"
        p = get("/v1/leaderboards/%s/entries?limit=%d&cursor=%s" % (board, limit, q(p["next_cursor"])))
        assert p["total"] == total
        assert p["prev_cursor"] is not None
        start = len(seen)
        assert [entry_tuple(e) for e in p["entries"]] == ordered[start:start + limit], ("cursor page", start)
        seen += [entry_tuple(e) for e in p["entries"]]
        pages.append(p)
    assert seen == ordered, "following next_cursor does not visit the board in order"
    start = limit * (len(pages) - 1)
    p = pages[-1]
    while p["prev_cursor"] is not None:
        p = get("/v1/leaderboards/%s/entries?limit=%d&cursor=%s" % (board, limit, q(p["prev_cursor"])))
        new_start = max(0, start - limit)
        assert [entry_tuple(e) for e in p["entries"]] == ordered[new_start:start], ("prev page", start)
        assert p["next_cursor"] is not None
        start = new_start
    assert start == 0, "prev_cursor ended before the first page"

    # A cursor from an offset page in the middle, with another limit.
    if total > 60:
        mid = get("/v1/leaderboards/%s/entries?limit=20&offset=40" % board)
        nxt = get("/v1/leaderboards/%s/entries?limit=7&cursor=%s" % (board, q(mid["next_cursor"])))
        assert [entry_tuple(e) for e in nxt["entries"]] == ordered[60:67]
        prv = get("/v1/leaderboards/%s/entries?limit=7&cursor=%s" % (board, q(mid["prev_cursor"])))
        assert [entry_tuple(e) for e in prv["entries"]] == ordered[33:40]

    # Around me.
    sample = {ordered[0][1], ordered[-1][1], ordered[total // 2][1]}
    sample |= set(rng.sample([x[1] for x in ordered], min(40, total)))
    for pid in sorted(sample):
        before = rng.choice([0, 1, 5, 17, 100])
        after = rng.choice([0, 2, 5, 33, 100])
        a = get("/v1/leaderboards/%s/players/%s/around?before=%d&after=%d" % (board, q(pid), before, after))
        r = by_pid[pid][0]
        want = ordered[max(0, r - 1 - before):r + after]
        assert [entry_tuple(e) for e in a["entries"]] == want, ("around", pid, before, after)
        assert a["total"] == total and a["board"] == board

    verify_styles(get, board, model, ordered, rng, players + absent)

    # Friends: ids=.
    pool = players + absent
    for _ in range(20):
        group = rng.sample(pool, rng.randint(1, min(100, len(pool))))
        listed = group + rng.sample(group, min(3, len(group)))  # duplicates fold
        rng.shuffle(listed)
        f = get("/v1/leaderboards/%s/players?ids=%s" % (board, ",".join(q(x) for x in listed)))
        want = sorted((by_pid[x] for x in set(group) if x in by_pid), key=lambda t: t[0])
        assert [entry_tuple(e) for e in f["entries"]] == want, ("ids", group)
        assert f["total"] == total


def wait_tier_ready(inst, c, board, timeout=30):
    """Read the board until the rank tier answers a read of it (the first read asks for the
    window; it loads in the background)."""
    def answered():
        before = metric(inst, "rankd_reads_tier_total")
        r = c.get("/v1/leaderboards/%s/entries?limit=1" % board)
        assert r.status == 200, r.describe()
        return metric(inst, "rankd_reads_tier_total") > before
    wait_for(answered, "the rank tier answering a read of " + board, timeout=timeout)


def styled(model, ordered):
    """{player: (competition rank, dense rank)} of the model's standings: ties on score share the
    best rank, and the next skips (competition) or follows (dense)."""
    out, comp, dense, prev = {}, 0, 0, None
    for rank, pid, score, _, _ in ordered:
        if score != prev:
            comp, dense, prev = rank, dense + 1, score
        out[pid] = (comp, dense)
    return out


def verify_styles(get, board, model, ordered, rng, pool):
    """rank_style=competition|dense on pages, around-me, ids= and the rank of a score (API.md,
    "Rank styles"): only the rank numbers change."""
    want = styled(model, ordered)
    total = len(ordered)
    scores = sorted({x[2] for x in ordered})
    for k, style in enumerate(("competition", "dense")):
        def ranks(entries):
            return [(e["rank"], e["player_id"]) for e in entries]

        def expect(pids):
            return [(want[p][k], p) for p in pids]
        for limit in (1, 37):
            for off in sorted({0, 1, rng.randrange(total), max(0, total - limit)}):
                page = get("/v1/leaderboards/%s/entries?limit=%d&offset=%d&rank_style=%s" % (board, limit, off, style))
                assert ranks(page["entries"]) == expect([x[1] for x in ordered[off:off + limit]]), (style, off)
        first = get("/v1/leaderboards/%s/entries?limit=13&rank_style=%s" % (board, style))
        if first["next_cursor"]:
            nxt = get("/v1/leaderboards/%s/entries?limit=13&rank_style=%s&cursor=%s" % (
                board, style, q(first["next_cursor"])))
            assert ranks(nxt["entries"]) == expect([x[1] for x in ordered[13:26]]), (style, "cursor")
        for pid in rng.sample([x[1] for x in ordered], min(8, total)):
            a = get("/v1/leaderboards/%s/players/%s/around?before=3&after=3&rank_style=%s" % (board, q(pid), style))
            r = next(x[0] for x in ordered if x[1] == pid)
            assert ranks(a["entries"]) == expect([x[1] for x in ordered[max(0, r - 4):r + 3]]), (style, "around")
            one = get("/v1/leaderboards/%s/players/%s?rank_style=%s" % (board, q(pid), style))
            assert one["rank"] == want[pid][k], (style, pid, one)
        group = rng.sample(pool, min(30, len(pool)))
        f = get("/v1/leaderboards/%s/players?ids=%s&rank_style=%s" % (board, ",".join(q(x) for x in group), style))
        named = set(group)
        assert ranks(f["entries"]) == expect([x[1] for x in ordered if x[1] in named]), (style, "ids")
        for x in rng.sample(scores, min(5, len(scores))) + [SCORE_MAX, SCORE_MIN]:
            r = get("/v1/leaderboards/%s/rank?score=%d&rank_style=%s" % (board, x, style))
            better = [v for v in scores if (v > x if model.sort == "desc" else v < x)]
            n = sum(1 for o in ordered if o[2] in set(better)) if k == 0 else len(better)
            assert r["rank"] == n + 1 and r["total"] == total, (style, x, r)


def cohort_styled(model, players, style):
    """{player: rank} among `players` (their standings in the model) in a rank style."""
    order = sorted(players, key=model.sort_key)
    out, keys = {}, []
    for i, p in enumerate(order):
        k = model.sort_key(p)[:1]
        out[p] = (i + 1 if style == "ordinal" else 1 + sum(1 for x in keys if x < k) if style == "competition"
                  else 1 + len(set(x for x in keys if x < k)))
        keys.append(k)
    return out


@pytest.mark.parametrize("mode", ["redis", "no_redis"])
@pytest.mark.parametrize("operator", ["best", "sum"])
def test_oracle_cohorts(operator, mode, rankd_factory, request):
    """A league board under the oracle's submissions: players are placed in cohorts of 7 in the
    order of their first standing (first come, first served), each cohort read, every player's
    cohort and every standing's cohort rank agree with the model, in every rank style."""
    seed = SEED or hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    rng = random.Random(seed)
    inst = rankd_factory(redis=mode == "redis")
    c, admin = inst.client(READ_KEY), inst.client(ADMIN_KEY)
    size = 7
    try:
        board = create_board(admin, unique("orc-%s" % operator), sort="desc", operator=operator,
                             cohorts={"size": size})["id"]
        players = ["p%03d" % i for i in range(80)] + SPECIAL_IDS[:20]
        model = Model("desc", operator)
        subs = [(rng.choice(players), gen_score(rng, operator), None) for _ in range(min(N_SUBMISSIONS, 1500))]
        submit_all(c, board, model, players, subs, rng, "seed %s cohorts/%s/%s" % (seed, operator, mode))
        cohorts = [model.placed[i:i + size] for i in range(0, len(model.placed), size)]
        for k, members in enumerate(cohorts, start=1):
            for style in ("ordinal", "competition", "dense"):
                want = cohort_styled(model, members, style)
                r = c.get("/v1/leaderboards/%s/cohorts/%d/entries?limit=1000&rank_style=%s" % (board, k, style))
                assert r.status == 200, r.describe()
                got = r.json()
                assert (got["cohort"], got["tier"], got["total"]) == (k, "default", len(members)), got
                assert [(e["player_id"], e["rank"], e["score"]) for e in got["entries"]] == \
                    [(p, want[p], model.st[p][0]) for p in sorted(members, key=model.sort_key)], (k, style)
            pid = rng.choice(members)
            mine = c.get("/v1/leaderboards/%s/players/%s/cohort" % (board, q(pid))).json()
            assert mine["cohort"] == k and sorted(e["player_id"] for e in mine["entries"]) == sorted(members)
            style = rng.choice(["ordinal", "competition", "dense"])
            st = c.get("/v1/leaderboards/%s/players/%s?rank_style=%s" % (board, q(pid), style)).json()
            assert (st["cohort"], st["cohort_rank"], st["tier"]) == (k, cohort_styled(model, members, style)[pid],
                                                                     "default"), (pid, style, st)
        assert_error(c.get("/v1/leaderboards/%s/cohorts/%d/entries" % (board, len(cohorts) + 1)), 404, field="cohort")
    finally:
        c.close()
        admin.close()


@pytest.mark.parametrize("mode", ["redis", "cluster", "no_redis", "redis_stopped", "tier"])
@pytest.mark.parametrize("operator", ["best", "latest", "sum"])
@pytest.mark.parametrize("sort", ["desc", "asc"])
def test_oracle(sort, operator, mode, rankd_factory, request):
    seed = SEED or hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    rng = random.Random(seed)
    priv = None
    if mode == "redis":
        inst = rankd_factory(redis=True)
    elif mode == "cluster":
        inst = rankd_factory(redis=request.getfixturevalue("redis_cluster").url())
    elif mode == "no_redis":
        inst = rankd_factory(redis=False)
    elif mode == "tier":
        # The in-process rank tier on, in front of Redis; no response cache, so that every
        # read below is computed (from the tier once it holds the window).
        inst = rankd_factory(redis=True, env={"RANKD_RANK_TIER": "67108864", "RANKD_CACHE_BYTES": "0"})
    else:
        priv = request.getfixturevalue("private_redis")
        inst = rankd_factory(redis=priv.url(0))
    c = inst.client(READ_KEY)
    admin = inst.client(ADMIN_KEY)
    try:
        board = create_board(admin, unique("or-%s-%s" % (sort, operator)), sort=sort, operator=operator)["id"]
        players = ["p%03d" % i for i in range(max(0, N_PLAYERS - len(SPECIAL_IDS)))] + SPECIAL_IDS
        absent = ["never-%d" % i for i in range(10)]
        model = Model(sort, operator)
        subs = []
        for _ in range(N_SUBMISSIONS):
            pid = rng.choice(players)
            md = None
            if rng.random() < 0.2:
                md = {"lvl": rng.randint(1, 50), "tag": rng.choice(["x", "yy", "z z"])}
            subs.append((pid, gen_score(rng, operator), md))
        label = "seed %s %s/%s/%s" % (seed, sort, operator, mode)
        if mode == "redis_stopped":
            half = len(subs) // 2
            submit_all(c, board, model, players, subs[:half], rng, label + " (redis up)")
            priv.stop()
            submit_all(c, board, model, players, subs[half:], rng, label + " (redis stopped)")
            r = admin.get("/readyz")  # its dependencies are the admin key's to see
            assert r.status == 200, "readyz with Redis down: " + r.describe()
            deps = r.json().get("dependencies", {})
            assert deps.get("redis") != "ok" and deps.get("postgres_primary") == "ok", r.json()
        else:
            submit_all(c, board, model, players, subs, rng, label)
        redis_reads = metric(inst, "rankd_reads_redis_total")
        if mode == "tier":
            wait_tier_ready(inst, c, board)
        tier_reads = metric(inst, "rankd_reads_tier_total")
        verify_reads(c, board, model, players, absent, rng)
        if mode == "tier":
            # Answered by the tier, not by Redis behind a tier that never loaded.
            assert metric(inst, "rankd_reads_tier_total") > tier_reads + 100, label
        if mode in ("redis", "cluster"):
            # Answered by Redis, not by PostgreSQL behind a Redis that failed.
            assert metric(inst, "rankd_reads_redis_total") > redis_reads, label
            v = run_cli(["verify", "--board", board], inst.config_path, env=inst.env)
            assert v.returncode == 0, "rankd verify: exit %d\n%s\n%s" % (v.returncode, v.stdout[-3000:],
                                                                        v.stderr[-3000:])
        assert inst.alive, "rankd died:\n" + inst.stderr_tail()
    finally:
        c.close()
        admin.close()


@pytest.mark.parametrize("mode", ["redis", "no_redis"])
@pytest.mark.parametrize("operator", ["best", "sum"])
def test_concurrent_writers(operator, mode, rankd_factory, request):
    """Writers racing on the same players: `best` and `sum` do not depend on the order
    of arrival, so the final scores are known; the order served must be the rule's
    order over the served (score, achieved_at, player_id), and Redis must match
    PostgreSQL."""
    seed = SEED or hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    inst = rankd_factory(redis=(mode == "redis"))
    admin = inst.client(ADMIN_KEY)
    board = create_board(admin, unique("cc-" + operator), sort="desc", operator=operator)["id"]
    admin.close()
    players = ["c%02d" % i for i in range(40)]
    acked = []
    errors = []
    lock = threading.Lock()

    def work(n):
        rng = random.Random("%s-%d" % (seed, n))
        c = inst.client(WRITE_KEY)
        try:
            for _ in range(60):
                if rng.random() < 0.5:
                    pid, s = rng.choice(players), rng.randint(-50, 50)
                    r = c.post("/v1/leaderboards/%s/scores" % board, json_body={"player_id": pid, "score": s})
                    if r.status != 200:
                        errors.append(r.describe())
                        continue
                    with lock:
                        acked.append((pid, s))
                else:
                    items = [{"board": board, "player_id": rng.choice(players), "score": rng.randint(-50, 50)}
                             for _ in range(rng.randint(1, 40))]
                    r = c.post("/v1/scores:batch", json_body={"scores": items})
                    if r.status != 200:
                        errors.append(r.describe())
                        continue
                    for it, res in zip(items, r.json()["results"]):
                        if "error" in res:
                            errors.append(repr(res))
                        else:
                            with lock:
                                acked.append((it["player_id"], it["score"]))
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    want = {}
    for pid, s in acked:
        if operator == "sum":
            want[pid] = want.get(pid, 0) + s
        else:
            want[pid] = max(want.get(pid, s), s)
    c = inst.client(READ_KEY)
    try:
        page = c.get("/v1/leaderboards/%s/entries?limit=1000" % board).json()
        assert page["total"] == len(want)
        got = {e["player_id"]: e["score"] for e in page["entries"]}
        assert got == want
        keys = [(-e["score"], parse_ts(e["achieved_at"]), e["player_id"].encode()) for e in page["entries"]]
        assert keys == sorted(keys), "entries not in the order of the rule"
        assert [e["rank"] for e in page["entries"]] == list(range(1, len(want) + 1))
        for e in page["entries"]:
            s = c.get("/v1/leaderboards/%s/players/%s" % (board, e["player_id"])).json()
            assert (s["rank"], s["score"], s["achieved_at"]) == (e["rank"], e["score"], e["achieved_at"])
    finally:
        c.close()
    if mode == "redis":
        v = run_cli(["verify", "--board", board], inst.config_path, env=inst.env)
        assert v.returncode == 0, "rankd verify: exit %d\n%s\n%s" % (v.returncode, v.stdout[-3000:], v.stderr[-3000:])
