"""Plausibility rules for client writes (API.md, "Plausibility rules"; issue 50 item 3): a board's
client_rules (max_submissions_per_minute, max_rise_per_second) hold the submissions made with a
player token; one that breaks a rule is 422 `implausible` naming it, is not applied (the standing
and its rank unchanged, in reads and in PostgreSQL), and is kept in the log flagged, listed by
GET /v1/leaderboards/{board}/flagged (admin). Keyed writes are not held to the rules. Bad rule
values are 400 naming the field; a PATCH sets and removes rules. Time moves by the suite's test
clock (RANKD_TEST_CLOCK_FILE)."""
import os
import time

import pytest

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, assert_error, create_board, parse_ts, submit, unique,
                      wait_for, wait_tokens_judged)

SECRET = "test-player-token-secret-0123456789"
TOKENS = {"auth": {"player_token_secret": SECRET}}


class Clock:
    """The test clock file: rankd's wall clock `offset_ms` ahead of the real one (forward only here)."""

    def __init__(self, root):
        self.path = os.path.join(root, "rules-clock-%s" % unique("c"))
        self.offset = 0
        self.ticks = 0
        self._write()

    def _write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d" % self.offset)
        os.replace(tmp, self.path)

    def advance(self, inst, ms):
        """Move rankd's clock `ms` on, and wait until a submission is stamped with the new time."""
        self.offset += ms
        self._write()
        want = time.time() * 1000 + self.offset - 500
        w = inst.client(WRITE_KEY)
        try:
            def moved():
                self.ticks += 1  # a latest board's standing changes (and is stamped) with each new score
                r = submit(w, inst.clock_board, "clock", self.ticks)
                return r.status == 200 and parse_ts(r.json()["achieved_at"]) >= want
            wait_for(moved, "rankd's clock moved %d ms" % ms)
        finally:
            w.close()


@pytest.fixture(scope="module")
def clock(tmp_root):
    return Clock(tmp_root)


@pytest.fixture(scope="module")
def rankd(module_rankd_factory, clock):
    inst = module_rankd_factory(env={"RANKD_TEST_CLOCK_FILE": clock.path}, extra_config=TOKENS)
    adm = inst.client(ADMIN_KEY)
    inst.clock_board = create_board(adm, operator="latest")["id"]  # its achieved_at shows rankd's clock
    adm.close()
    wait_tokens_judged(inst, mint(inst, "warm-up"))
    return inst


def mint(inst, player):
    w = inst.client(WRITE_KEY)
    try:
        r = w.post("/v1/players/%s/tokens" % player, json_body={"ttl_s": 3600})
        assert r.status == 201, r.describe()
        return r.json()["token"]
    finally:
        w.close()


def rules_board(adm, rules, **extra):
    b = create_board(adm, client_writes=True, client_rules=rules, **extra)
    assert b["client_rules"] == rules, b
    return b["id"]


def standing(inst, board, player):
    """(score, rank) of the player's standing as a read key sees it, or None."""
    c = inst.client(READ_KEY)
    try:
        r = c.get("/v1/leaderboards/%s/players/%s" % (board, player))
        if r.status == 404:
            return None
        assert r.status == 200, r.describe()
        return r.json()["score"], r.json()["rank"]
    finally:
        c.close()


def pg_standing(db, board, player):
    rows = db.query("SELECT s.score FROM standings s JOIN boards b ON b.gen = s.board_gen"
                    " WHERE b.id = %s AND s.player_id = %s", (board, player))
    return rows[0][0] if rows else None


def pg_log(db, board, player):
    return db.query("SELECT s.score, s.flagged FROM submissions s JOIN boards b ON b.gen = s.board_gen"
                    " WHERE b.id = %s AND s.player_id = %s ORDER BY s.received_at, s.score", (board, player))


def flagged(inst, board, **params):
    adm = inst.client(ADMIN_KEY)
    try:
        q = "&".join("%s=%s" % kv for kv in params.items())
        r = adm.get("/v1/leaderboards/%s/flagged%s" % (board, "?" + q if q else ""))
        assert r.status == 200, r.describe()
        return r.json()
    finally:
        adm.close()


def assert_implausible(r, rule):
    err = assert_error(r, 422)
    assert rule in err["message"], r.describe()


def test_a_burst_over_the_per_minute_rule_is_implausible_unapplied_and_flagged(rankd, db, clock):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = rules_board(adm, {"max_submissions_per_minute": 3})
        assert submit(adm, b, "rival", 35, key=WRITE_KEY).status == 200
        tok = mint(rankd, "alice")
        c = rankd.client(tok)
        for s in (10, 20, 30):
            r = submit(c, b, "alice", s, key=tok)
            assert r.status == 200, r.describe()
        assert standing(rankd, b, "alice") == (30, 2)
        # The fourth and fifth in the minute: 422, and the standing stays (40 and 50 would be first).
        assert_implausible(submit(c, b, "alice", 40, key=tok), "max_submissions_per_minute")
        assert_implausible(submit(c, b, "alice", 50, key=tok), "max_submissions_per_minute")
        assert standing(rankd, b, "alice") == (30, 2)
        assert standing(rankd, b, "rival") == (35, 1)
        assert pg_standing(db, b, "alice") == 30
        assert pg_log(db, b, "alice") == [(10, None), (20, None), (30, None), (40, "max_submissions_per_minute"),
                                          (50, "max_submissions_per_minute")]
        got = flagged(rankd, b)
        assert [(f["player_id"], f["score"], f["rule"]) for f in got["flagged"]] == \
            [("alice", 50, "max_submissions_per_minute"), ("alice", 40, "max_submissions_per_minute")]
        assert got["flagged"][0]["auth_by"] == "token:rankd:alice" and got["flagged"][0]["client_addr"]
        assert got["next_cursor"] is None
        # The player's own export shows them, flagged and not improving.
        r = c.get("/v1/players/alice/export", key=tok)
        assert r.status == 200, r.describe()
        subs = [(x["score"], x.get("flagged"), x["improved"]) for x in r.json()["submissions"] if x["board"] == b]
        assert subs == [(10, None, True), (20, None, True), (30, None, True),
                        (40, "max_submissions_per_minute", False), (50, "max_submissions_per_minute", False)]
        # A minute later the player may submit again.
        clock.advance(rankd, 61 * 1000)
        r = submit(c, b, "alice", 60, key=tok)
        assert r.status == 200, r.describe()
        assert standing(rankd, b, "alice") == (60, 1)
        c.close()
    finally:
        adm.close()


def test_a_too_fast_rise_is_implausible_and_a_plausible_one_is_taken(rankd, db, clock):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = rules_board(adm, {"max_rise_per_second": 10})
        tok = mint(rankd, "bea")
        c = rankd.client(tok)
        assert submit(c, b, "bea", 100, key=tok).status == 200  # no previous submission: nothing to rise over
        assert submit(adm, b, "cid", 150, key=WRITE_KEY).status == 200
        # At once (well under 6 s), 60 more is too fast.
        assert_implausible(submit(c, b, "bea", 160, key=tok), "max_rise_per_second")
        clock.advance(rankd, 5000)
        # 100 more in about 5 s is 20 a second: over 10.
        assert_implausible(submit(c, b, "bea", 200, key=tok), "max_rise_per_second")
        assert standing(rankd, b, "bea") == (100, 2)
        assert pg_standing(db, b, "bea") == 100
        # 40 more in 5 s is 8 a second; a fall is no rise.
        assert submit(c, b, "bea", 140, key=tok).status == 200
        assert submit(c, b, "bea", 50, key=tok).status == 200
        assert standing(rankd, b, "bea") == (140, 2)
        rules = [(f["score"], f["rule"]) for f in flagged(rankd, b)["flagged"]]
        assert rules == [(200, "max_rise_per_second"), (160, "max_rise_per_second")]
        # The previous accepted submission is the fall to 50 (flagged ones do not count): 50 -> 90
        # at once is a rise.
        assert_implausible(submit(c, b, "bea", 90, key=tok), "max_rise_per_second")
        c.close()
    finally:
        adm.close()


def test_on_an_asc_board_a_rise_is_a_decrease(rankd, clock):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = rules_board(adm, {"max_rise_per_second": 1}, sort="asc")
        tok = mint(rankd, "dan")
        c = rankd.client(tok)
        assert submit(c, b, "dan", 1000, key=tok).status == 200
        assert submit(c, b, "dan", 1200, key=tok).status == 200  # worse on asc: no rise
        assert_implausible(submit(c, b, "dan", 900, key=tok), "max_rise_per_second")
        assert standing(rankd, b, "dan") == (1000, 1)
        c.close()
    finally:
        adm.close()


def test_a_keyed_write_is_not_held_to_the_rules(rankd, db):
    adm, w = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY)
    try:
        b = rules_board(adm, {"max_submissions_per_minute": 1, "max_rise_per_second": 1})
        for s in (1, 1000, 10 ** 9, 10 ** 12):
            r = submit(w, b, "eve", s)
            assert r.status == 200, r.describe()
        assert standing(rankd, b, "eve") == (10 ** 12, 1)
        assert [f for _, f in pg_log(db, b, "eve")] == [None] * 4
        assert flagged(rankd, b)["flagged"] == []
        # A token's first write after them is judged against token writes only.
        tok = mint(rankd, "eve")
        assert submit(w, b, "eve", 5, key=tok).status == 200
    finally:
        adm.close()
        w.close()


def test_a_tokens_batch_item_over_a_rule_is_its_422(rankd, db):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = rules_board(adm, {"max_submissions_per_minute": 2})
        tok = mint(rankd, "fay")
        c = rankd.client(tok)
        r = c.post("/v1/scores:batch", json_body={"scores": [{"board": b, "player_id": "fay", "score": s}
                                                              for s in (1, 2, 3)]}, key=tok)
        assert r.status == 200, r.describe()
        res = r.json()["results"]
        assert res[0]["score"] == 1 and res[1]["score"] == 2
        assert res[2]["error"]["code"] == "implausible" and "max_submissions_per_minute" in res[2]["error"]["message"]
        assert pg_standing(db, b, "fay") == 2
        assert pg_log(db, b, "fay") == [(1, None), (2, None), (3, "max_submissions_per_minute")]
        c.close()
    finally:
        adm.close()


@pytest.mark.parametrize("rules,field", [
    ({"max_submissions_per_minute": 0}, "client_rules.max_submissions_per_minute"),
    ({"max_submissions_per_minute": 1.5}, "client_rules.max_submissions_per_minute"),
    ({"max_submissions_per_minute": "3"}, "client_rules.max_submissions_per_minute"),
    ({"max_submissions_per_minute": 60001}, "client_rules.max_submissions_per_minute"),
    ({"max_rise_per_second": 0}, "client_rules.max_rise_per_second"),
    ({"max_rise_per_second": -2.5}, "client_rules.max_rise_per_second"),
    ({"max_rise_per_second": "fast"}, "client_rules.max_rise_per_second"),
    ({"max_rise_per_second": 1e19}, "client_rules.max_rise_per_second"),
    ({"max_per_hour": 3}, "client_rules"),
    ([1], "client_rules"),
    ("strict", "client_rules"),
])
def test_bad_rule_values_are_400_naming_the_field(rankd, db, rules, field):
    adm = rankd.client(ADMIN_KEY)
    try:
        bid = unique("b")
        r = adm.post("/v1/leaderboards", json_body={"id": bid, "title": "t", "sort": "desc", "operator": "best",
                                                    "reset": "none", "client_rules": rules})
        assert_error(r, 400, field)
        assert db.query("SELECT count(*) FROM boards WHERE id = %s", (bid,))[0][0] == 0
        b = rules_board(adm, {"max_submissions_per_minute": 5})
        assert_error(adm.patch("/v1/leaderboards/%s" % b, json_body={"client_rules": rules}), 400, field)
        assert adm.get("/v1/leaderboards/%s" % b).json()["client_rules"] == {"max_submissions_per_minute": 5}
    finally:
        adm.close()


def test_patch_sets_and_removes_rules(rankd, db):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = rules_board(adm, {})
        assert adm.get("/v1/leaderboards/%s" % b).json()["client_rules"] == {}
        r = adm.patch("/v1/leaderboards/%s" % b,
                      json_body={"client_rules": {"max_submissions_per_minute": 1, "max_rise_per_second": 2.5}})
        assert r.status == 200, r.describe()
        assert r.json()["client_rules"] == {"max_submissions_per_minute": 1, "max_rise_per_second": 2.5}
        tok = mint(rankd, "gil")
        c = rankd.client(tok)
        assert submit(c, b, "gil", 1, key=tok).status == 200
        # A board's definition reaches the writer's checks at once on this instance (its cache forgot it).
        assert_implausible(submit(c, b, "gil", 1, key=tok), "max_submissions_per_minute")
        # Removing one rule keeps the other.
        r = adm.patch("/v1/leaderboards/%s" % b, json_body={"client_rules": {"max_submissions_per_minute": None}})
        assert r.status == 200 and r.json()["client_rules"] == {"max_rise_per_second": 2.5}, r.describe()
        assert submit(c, b, "gil", 1, key=tok).status == 200
        assert_implausible(submit(c, b, "gil", 100, key=tok), "max_rise_per_second")
        # A PATCH without client_rules keeps them; null removes them all.
        r = adm.patch("/v1/leaderboards/%s" % b, json_body={"title": "renamed"})
        assert r.json()["client_rules"] == {"max_rise_per_second": 2.5}
        r = adm.patch("/v1/leaderboards/%s" % b, json_body={"client_rules": None})
        assert r.status == 200 and r.json()["client_rules"] == {}, r.describe()
        assert submit(c, b, "gil", 100, key=tok).status == 200
        assert standing(rankd, b, "gil") == (100, 1)
        c.close()
    finally:
        adm.close()


def test_flagged_pages_with_a_cursor_and_is_an_admins(rankd):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = rules_board(adm, {"max_submissions_per_minute": 1})
        tok = mint(rankd, "hal")
        c = rankd.client(tok)
        assert submit(c, b, "hal", 1, key=tok).status == 200
        for s in (2, 3, 4):
            assert_implausible(submit(c, b, "hal", s, key=tok), "max_submissions_per_minute")
        seen, cursor = [], None
        while True:
            page = flagged(rankd, b, limit=2, **({"cursor": cursor} if cursor else {}))
            assert len(page["flagged"]) <= 2
            seen += [f["score"] for f in page["flagged"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [4, 3, 2]
        assert_error(adm.get("/v1/leaderboards/%s/flagged?cursor=bogus" % b), 400, "cursor")
        assert_error(adm.get("/v1/leaderboards/%s/flagged?limit=0" % b), 400, "limit")
        assert_error(adm.get("/v1/leaderboards/no-such-board-%s/flagged" % unique("x")), 404)
        rd = rankd.client(READ_KEY)
        assert_error(rd.get("/v1/leaderboards/%s/flagged" % b), 403)
        rd.close()
        assert_error(c.get("/v1/leaderboards/%s/flagged" % b, key=tok), 403)
        c.close()
    finally:
        adm.close()


def test_flagged_rows_are_no_accepted_submissions_in_the_counts_and_go_with_the_player(rankd, db):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = rules_board(adm, {"max_submissions_per_minute": 1})
        tok = mint(rankd, "ivy")
        c = rankd.client(tok)
        assert submit(c, b, "ivy", 5, key=tok).status == 200
        assert_implausible(submit(c, b, "ivy", 6, key=tok), "max_submissions_per_minute")
        assert submit(adm, b, "jon", 7, key=WRITE_KEY).status == 200
        c.close()

        def submissions():
            r = adm.get("/v1/leaderboards/%s/windows" % b)
            assert r.status == 200, r.describe()
            return r.json()["windows"][0]["submissions"]
        assert submissions() == 2
        r = adm.delete("/v1/leaderboards/%s/players/ivy" % b)
        assert r.status in (200, 204), r.describe()
        assert submissions() == 1
        assert pg_log(db, b, "ivy") == []
        assert flagged(rankd, b)["flagged"] == []
    finally:
        adm.close()


def test_the_rules_hold_across_instances(rankd, rankd_factory, db, clock):
    """Two instances on one database (and one test clock): the minute's count and the previous
    accepted submission are the log's, whichever instance wrote them."""
    other = rankd_factory(env={"RANKD_TEST_CLOCK_FILE": clock.path}, extra_config=TOKENS)
    adm = rankd.client(ADMIN_KEY)
    try:
        b = rules_board(adm, {"max_submissions_per_minute": 3, "max_rise_per_second": 1})
        tok = mint(rankd, "kim")
        wait_tokens_judged(other, tok)  # started just now: 503 until its revocations are loaded
        here, there = rankd.client(tok), other.client(tok)
        assert submit(here, b, "kim", 10, key=tok).status == 200
        # The other instance sees the accepted 10: 1000 at once is too fast there too.
        assert_implausible(submit(there, b, "kim", 1000, key=tok), "max_rise_per_second")
        assert submit(there, b, "kim", 10, key=tok).status == 200
        # Three in the minute (the flagged one counts), two of them through the other instance.
        assert_implausible(submit(here, b, "kim", 5, key=tok), "max_submissions_per_minute")
        assert pg_log(db, b, "kim") == [(10, None), (1000, "max_rise_per_second"), (10, None),
                                        (5, "max_submissions_per_minute")]
        assert standing(rankd, b, "kim") == (10, 1)
        here.close()
        there.close()
    finally:
        adm.close()


def test_hiding_and_restoring_a_player_counts_their_accepted_submissions_only(rankd):
    adm = rankd.client(ADMIN_KEY)
    try:
        b = rules_board(adm, {"max_submissions_per_minute": 1})
        tok = mint(rankd, "lou")
        c = rankd.client(tok)
        assert submit(c, b, "lou", 5, key=tok).status == 200
        assert_implausible(submit(c, b, "lou", 6, key=tok), "max_submissions_per_minute")
        c.close()
        assert submit(adm, b, "max", 7, key=WRITE_KEY).status == 200

        def submissions():
            r = adm.get("/v1/leaderboards/%s/windows" % b)
            assert r.status == 200, r.describe()
            return r.json()["windows"][0]["submissions"]
        assert submissions() == 2
        r = adm.post("/v1/leaderboards/%s/players/lou/hide" % b)
        assert r.status == 204, r.describe()
        assert submissions() == 1
        r = adm.delete("/v1/leaderboards/%s/players/lou/hide" % b)
        assert r.status == 204, r.describe()
        assert submissions() == 2
        assert standing(rankd, b, "lou") == (5, 2)
    finally:
        adm.close()
