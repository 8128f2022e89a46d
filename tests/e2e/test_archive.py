"""The life of a window: at each board's reset the upkeep leader archives the window that closed
(once, with its ranks), loads the new one into Redis empty and renders its top page; every read
of a closed window answers from the archive with the ranks it had at its end; a player's
deletion rewrites the ranks of its archived windows; retention drops whole partitions and a
window past it answers 404.

The tests move rankd's wall clock (RANKD_TEST_CLOCK_FILE, test-only) across midnight instead of
waiting for it. Ranks are checked against an oracle computed here from what the server
acknowledged (score and achieved_at of every standing), not from the server's own reads."""
import datetime
import email.utils
import json
import os

import pytest

from conftest import ADMIN_KEY, WRITE_KEY, assert_error, batch, create_board, now_ms, unique, metric, wait_for

EPOCH = datetime.date(1970, 1, 1)
GUARD_TIMEOUT_MS = 1000  # statement timeout of these instances: standings go 3 s after the archive
GRACE_MS = 2 * GUARD_TIMEOUT_MS + 5000  # a window is archived this long after it closed


def day_ms(d):
    return (d - EPOCH).days * 86400000


def day_num(d):
    return (d - EPOCH).days


class Clock:
    """The file rankd's wall clock follows: it holds the offset from the real clock, in ms."""

    def __init__(self, root):
        self.path = os.path.join(root, "clock-%s" % unique("c"))
        self.set(now_ms())

    def set(self, target_ms):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(int(target_ms - now_ms())))
        os.replace(tmp, self.path)  # rankd sees the whole number or the old one

    def env(self):
        return {"RANKD_TEST_CLOCK_FILE": self.path, "RANKD_REFRESH_INTERVAL_S": "1"}






def oracle(standings, sort):
    """[(rank, player, score, achieved_ms)] in the order API.md defines."""
    key = (lambda p: (-p[1][0] if sort == "desc" else p[1][0], p[1][1], p[0].encode()))
    return [(i + 1, p, v[0], v[1]) for i, (p, v) in enumerate(sorted(standings.items(), key=key))]


def fill(w, board, players, rounds=3):
    """Submit a few rounds of scores (with ties) for `players`; returns {player: (score, achieved_ms)}
    from the acknowledged results."""
    out = {}
    for r in range(rounds):
        items = [{"board": board, "player_id": p, "score": (i * 37 + r * 11) % 50}
                 for i, p in enumerate(players)]
        resp = batch(w, items)
        assert resp.status == 200, resp.describe()
        for res in resp.json()["results"]:
            assert "error" not in res, res
            at = datetime.datetime.strptime(res["achieved_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
            at_ms = int((at - datetime.datetime(1970, 1, 1)).total_seconds() * 1000 + 0.5)
            out[res["player_id"]] = (res["score"], at_ms)
    return out


def entries_of(resp):
    assert resp.status == 200, resp.describe()
    return [(e["rank"], e["player_id"], e["score"], e["achieved_at"]) for e in resp.json()["entries"]]


def expected(rows):
    def fmt(ms):
        t = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ms)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)
    return [(r, p, s, fmt(a)) for r, p, s, a in rows]


def check_reads(c, board, win, want, strong):
    """Every read path of window `win` against the oracle `want` (strong reads with a write key:
    API.md makes them its privilege)."""
    q = "&consistency=strong" if strong else ""
    if strong:
        c = c.with_key(WRITE_KEY)
    exp = expected(want)
    n = len(want)
    # Offset pages, and the whole window through cursors forward and back.
    assert entries_of(c.get("/v1/leaderboards/%s/entries?window=%s&limit=7&offset=5%s" % (board, win, q))) == exp[5:12]
    got, cur, pages = [], None, 0
    while True:
        path = "/v1/leaderboards/%s/entries?window=%s&limit=4%s" % (board, win, q)
        r = c.get(path + ("&cursor=" + cur if cur else ""))
        got += entries_of(r)
        assert r.json()["total"] == n
        cur = r.json()["next_cursor"]
        pages += 1
        if not cur:
            break
    assert got == exp and pages == (n + 3) // 4
    back = c.get("/v1/leaderboards/%s/entries?window=%s&limit=4&offset=8%s" % (board, win, q)).json()["prev_cursor"]
    assert entries_of(c.get("/v1/leaderboards/%s/entries?window=%s&limit=4&cursor=%s%s" % (board, win, back, q))) == exp[4:8]
    # A player, around a player, several players.
    for rank, player, _, _ in (want[0], want[n // 2], want[-1]):
        r = c.get("/v1/leaderboards/%s/players/%s?window=%s%s" % (board, player, win, q))
        assert r.status == 200 and r.json()["rank"] == rank and r.json()["total"] == n, r.describe()
    mid = want[n // 2]
    assert entries_of(c.get("/v1/leaderboards/%s/players/%s/around?window=%s&before=2&after=3%s"
                            % (board, mid[1], win, q))) == exp[mid[0] - 3:mid[0] + 3]
    ids = ",".join(p for _, p, _, _ in want[::3])
    assert entries_of(c.get("/v1/leaderboards/%s/players?ids=%s&window=%s%s" % (board, ids, win, q))) == exp[::3]
    assert c.get("/v1/leaderboards/%s/players/nobody?window=%s%s" % (board, win, q)).status == 404


def check_stats(c, board, win, want):
    r = c.get("/v1/leaderboards/%s/stats?window=%s" % (board, win))
    assert r.status == 200, r.describe()
    s = r.json()
    scores = [x[2] for x in want]
    assert s["players"] == len(want) and s["min"] == min(scores) and s["max"] == max(scores)
    assert sum(b["count"] for b in s["histogram"]) == len(want)
    assert s["refreshed_at"] is not None


def redis_keys(rcl, gen, day):
    return list(rcl.scan_iter("rankd:{g%d}:%d:*" % (gen, day)))


ROLLOVERS = [
    # (reset, the instant the window closes): a Monday, the first of a month, a year boundary.
    ("weekly", datetime.date(2027, 3, 1), datetime.timedelta(days=7)),
    ("monthly", datetime.date(2027, 4, 1), None),
    ("daily", datetime.date(2028, 1, 1), datetime.timedelta(days=1)),
]


@pytest.mark.parametrize("reset,boundary,step", ROLLOVERS, ids=[r[0] for r in ROLLOVERS])
def test_rollover_archives_the_closed_window_once_and_every_read_keeps_its_ranks(
        rankd_factory, db, redis_db, tmp_root, reset, boundary, step):
    _, rcl = redis_db
    clock = Clock(tmp_root)
    clock.set(day_ms(boundary) - 20000)
    inst = rankd_factory(env=clock.env(), extra_config={"postgres": {"statement_timeout_ms": GUARD_TIMEOUT_MS}})
    adm, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()
    try:
        board = create_board(adm, reset=reset, sort="asc" if reset == "monthly" else "desc")
        b, sort = board["id"], board["sort"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        players = ["p%02d" % i for i in range(23)] + ["a.b", "Z-9"]
        want = oracle(fill(w, b, players), sort)
        old = board["current_window"]
        old_day = day_num(datetime.date.fromisoformat(old))
        rollovers = metric(inst, "rankd_rollovers_total")
        # Writes only so far: nothing cached. (Asked before the clock moves: the reset renders the
        # new window's top page into the cache within milliseconds of it.)
        assert metric(inst, "rankd_l1_entries") == 0

        # Midnight (UTC) of the reset.
        clock.set(day_ms(boundary) + 200)
        wait_for(lambda: metric(inst, "rankd_rollovers_total") > rollovers, "the rollover")
        # Counted once done: the new top page is in the response cache. Not archived yet: what was
        # received before the reset has GRACE_MS to commit.
        assert metric(inst, "rankd_l1_entries") >= 1, "the new window's top page was not rendered at the reset"
        assert db.query("SELECT count(*) FROM archived_windows WHERE board_gen = %s", (gen,))[0][0] == 0
        new = boundary.isoformat()
        # The new window: current, empty, loaded into Redis (its ready key), its top page rendered.
        r = c.get("/v1/leaderboards/%s/entries" % b)
        assert r.status == 200 and r.json()["window"] == new and r.json()["total"] == 0, r.describe()
        wait_for(lambda: rcl.exists("rankd:{g%d}:%d:ready5" % (gen, day_num(boundary))), "the new window in Redis")
        # Archived once the grace is over, with exact ranks.
        clock.set(day_ms(boundary) + GRACE_MS + 1000)
        wait_for(lambda: db.query("SELECT count(*) FROM archived_windows WHERE board_gen = %s", (gen,))[0][0] == 1,
                 "the archive")
        rows = db.query("SELECT rank, player_id, score, achieved_ms FROM archive WHERE board_gen = %s"
                        " AND win = %s ORDER BY rank", (gen, old))
        assert [tuple(x) for x in rows] == want
        assert db.query("SELECT players FROM archived_windows WHERE board_gen = %s AND win = %s",
                        (gen, old))[0][0] == len(want)
        # The metric says how long an archive took (it said 0 whatever it took).
        wait_for(lambda: metric(inst, "rankd_windows_archived_total") >= 1, "the archive counted")
        assert db.query("SELECT archive_ms FROM archived_windows WHERE board_gen = %s AND win = %s",
                        (gen, old))[0][0] > 0
        assert metric(inst, "rankd_last_archive_ms") > 0
        # Late submissions land in the new window.
        late = batch(w, [{"board": b, "player_id": "late", "score": 1}]).json()["results"][0]
        assert late["window"] == new
        # The previous window: Redis (it holds it) and the archive (strong reads go to PostgreSQL).
        for strong in (False, True):
            check_reads(c, b, "previous", want, strong)
            check_reads(c, b, old, want, strong)
        check_stats(c, b, old, want)
        ws = c.get("/v1/leaderboards/%s/windows" % b).json()["windows"]
        assert ws[0]["window"] == new and ws[0]["players"] == 1
        assert ws[1]["window"] == old and ws[1]["players"] == len(want)

        # One more window: the old one is two back. Its Redis keys go, its standings go (after
        # the guard), and every read answers from the archive alone.
        after = (boundary + step) if step else datetime.date(boundary.year + (boundary.month == 12),
                                                            boundary.month % 12 + 1, 1)
        rollovers = metric(inst, "rankd_rollovers_total")
        clock.set(day_ms(after) + GRACE_MS + 1000)
        wait_for(lambda: metric(inst, "rankd_rollovers_total") > rollovers, "the second rollover")
        wait_for(lambda: not redis_keys(rcl, gen, old_day), "the old window's Redis keys to go")
        wait_for(lambda: db.query("SELECT count(*) FROM standings WHERE board_gen = %s AND win = %s",
                                  (gen, old))[0][0] == 0, "the old window's standings to go")
        wait_for(lambda: db.query("SELECT count(*) FROM window_counts WHERE board_gen = %s AND win = %s",
                                  (gen, old))[0][0] == 0, "the old window's counts to go")
        for strong in (False, True):
            check_reads(c, b, old, want, strong)
        check_stats(c, b, old, want)
        assert not redis_keys(rcl, gen, old_day), "a read loaded the archived window into Redis"
        ws = c.get("/v1/leaderboards/%s/windows" % b).json()["windows"]
        assert [x["window"] for x in ws] == [after.isoformat(), new, old]
        assert ws[2]["players"] == len(want)
        # Archived once: the second rollover archived the window `new`, not `old` again.
        assert db.query("SELECT count(*) FROM archived_windows WHERE board_gen = %s AND win = %s",
                        (gen, old))[0][0] == 1
        wait_for(lambda: metric(inst, "rankd_windows_archived_total") == 2, "the second window's archive")
    finally:
        for x in (adm, w, c):
            x.close()


def daily_instance(rankd_factory, tmp_root, start):
    """(clock, instance, admin, writer, reader clients) of an instance whose clock reads an hour
    into day `start`, with a short statement timeout (the archive comes GRACE_MS after a reset)."""
    clock = Clock(tmp_root)
    clock.set(day_ms(start) + 3600000)
    inst = rankd_factory(env=clock.env(), extra_config={"postgres": {"statement_timeout_ms": GUARD_TIMEOUT_MS}})
    return clock, inst, inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()


def archived(db, gen):
    return db.query("SELECT count(*) FROM archived_windows WHERE board_gen = %s", (gen,))[0][0]


def a_day_archived(clock, adm, w, db, start):
    """A daily board whose players p00-p11 played on day `start`, that day archived an hour into
    the next: (board, generation, the day's oracle)."""
    b = create_board(adm, reset="daily")["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
    day1 = oracle(fill(w, b, ["p%02d" % i for i in range(12)]), "desc")
    clock.set(day_ms(start + datetime.timedelta(days=1)) + 3600000)
    wait_for(lambda: archived(db, gen) == 1, "the first day's archive")
    return b, gen, day1


def test_deleting_a_player_rewrites_the_ranks_of_its_archived_windows_only(rankd_factory, db, redis_db, tmp_root):
    start = datetime.date(2029, 5, 10)
    clock, inst, adm, w, c = daily_instance(rankd_factory, tmp_root, start)
    try:
        b, gen, day1 = a_day_archived(clock, adm, w, db, start)
        # The victim did not play on day 2; others did.
        day2 = oracle(fill(w, b, ["q%02d" % i for i in range(6)]), "desc")
        clock.set(day_ms(start + datetime.timedelta(days=2)) + 3600000)
        wait_for(lambda: archived(db, gen) == 2, "the second archive")
        victim = day1[4][1]
        before_day2 = db.query("SELECT rank, player_id FROM archive WHERE board_gen = %s AND win = %s ORDER BY rank",
                               (gen, start + datetime.timedelta(days=1)))
        r = adm.delete("/v1/leaderboards/%s/players/%s" % (b, victim))
        assert r.status == 204, r.describe()
        rest = [(i + 1, p, s, a) for i, (_, p, s, a) in enumerate(x for x in day1 if x[1] != victim)]
        check_reads(c, b, start.isoformat(), rest, strong=True)
        check_stats(c, b, start.isoformat(), rest)
        # The other window's archive is untouched.
        assert db.query("SELECT rank, player_id FROM archive WHERE board_gen = %s AND win = %s ORDER BY rank",
                        (gen, start + datetime.timedelta(days=1))) == before_day2
        assert len(day2) == len(before_day2)
        assert c.get("/v1/leaderboards/%s/players/%s?window=%s" % (b, victim, start.isoformat())).status == 404
        assert adm.delete("/v1/leaderboards/%s/players/%s" % (b, victim)).status == 404
    finally:
        for x in (adm, w, c):
            x.close()


def test_closed_window_reads_carry_last_modified_and_answer_if_modified_since(rankd_factory, db, redis_db,
                                                                              tmp_root):
    """API.md, edge caches: a read of a closed window carries Last-Modified (when its archive last
    changed), If-Modified-Since not older than it answers 304, an older one 200; a player's
    deletion moves it on. The current window changes at any moment: no Last-Modified."""
    start = datetime.date(2029, 7, 10)
    clock, inst, adm, w, c = daily_instance(rankd_factory, tmp_root, start)
    try:
        b = create_board(adm, reset="daily")["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        fill(w, b, ["p%02d" % i for i in range(10)], rounds=1)
        clock.set(day_ms(start + datetime.timedelta(days=1)) + 3600000)
        wait_for(lambda: archived(db, gen) == 1, "the archive")
        win = start.isoformat()
        reads = ["/v1/leaderboards/%s/entries?window=%s&limit=5" % (b, win),
                 "/v1/leaderboards/%s/players/p03?window=%s" % (b, win),
                 "/v1/leaderboards/%s/players/p03/around?window=%s&before=1&after=1" % (b, win),
                 "/v1/leaderboards/%s/players?ids=p01,p02&window=%s" % (b, win),
                 "/v1/leaderboards/%s/entries?window=previous" % b]

        def archived_at():
            return db.query("SELECT archived_at FROM archived_windows WHERE board_gen = %s", (gen,))[0][0]
        at = archived_at()
        lm = email.utils.format_datetime(at.astimezone(datetime.timezone.utc), usegmt=True)
        for path in reads:
            for _ in range(2):  # computed, then from the response cache
                r = c.get(path)
                assert r.status == 200 and r.header("Last-Modified") == lm, (path, r.describe())
            assert c.get(path, headers={"If-Modified-Since": lm}).status == 304, path
            earlier = email.utils.format_datetime(at.astimezone(datetime.timezone.utc) -
                                                  datetime.timedelta(seconds=1), usegmt=True)
            assert c.get(path, headers={"If-Modified-Since": earlier}).status == 200, path
        assert c.get("/v1/leaderboards/%s/entries" % b).header("Last-Modified") is None

        # A deletion rewrites the archive: a later Last-Modified (HTTP dates count whole seconds:
        # the deletion comes in a later second than the archive).
        wait_for(lambda: datetime.datetime.now(datetime.timezone.utc) >= at + datetime.timedelta(seconds=1),
                 "the next second")
        assert adm.delete("/v1/leaderboards/%s/players/p07" % b).status == 204
        assert archived_at() > at
        for path in reads:
            r = c.get(path, headers={"If-Modified-Since": lm})
            assert r.status == 200, (path, r.describe())
            assert email.utils.parsedate_to_datetime(r.header("Last-Modified")) > \
                email.utils.parsedate_to_datetime(lm), path
    finally:
        for x in (adm, w, c):
            x.close()


def test_edge_cache_directives_from_configuration(rankd_factory):
    """http.s_maxage and http.stale_while_revalidate on public reads (for shared caches); none on
    reads that need a key, none by default."""
    plain = rankd_factory()
    edge = rankd_factory(extra_config={"http": {"s_maxage": 600, "stale_while_revalidate": 30}})
    keyed = rankd_factory(public_reads=False, extra_config={"http": {"s_maxage": 600, "stale_while_revalidate": 30}})
    for inst, want in ((plain, "public, max-age=1"), (edge, "public, max-age=1, s-maxage=600, stale-while-revalidate=30"),
                       (keyed, "private, max-age=1")):
        adm, c = inst.client(ADMIN_KEY), inst.client(ADMIN_KEY if inst is keyed else None)
        try:
            b = create_board(adm)["id"]
            r = c.get("/v1/leaderboards/%s/entries" % b)
            assert r.status == 200 and r.header("Cache-Control") == want, r.describe()
            assert adm.post("/v1/leaderboards/%s/scores" % b, json_body={"player_id": "x", "score": 1},
                            key=WRITE_KEY).header("Cache-Control") == "no-store"
        finally:
            adm.close()
            c.close()


def partitions(db, parent):
    return sorted(r[0] for r in db.query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass", (parent,)))


def test_retention_drops_whole_partitions_and_a_window_past_it_answers_404(rankd_factory, db, redis_db, tmp_root):
    clock = Clock(tmp_root)
    start = datetime.date(2030, 1, 30)
    clock.set(day_ms(start) + 3600000)
    b = unique("ret")
    inst = rankd_factory(env=clock.env(), extra_config={
        "postgres": {"statement_timeout_ms": GUARD_TIMEOUT_MS},
        "retention": {"windows": 0, "board_windows": ["%s=2" % b], "log_months": 1}})
    adm, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()
    try:
        create_board(adm, board_id=b, reset="daily")
        keep_all = create_board(adm, reset="daily")["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        days = [start + datetime.timedelta(days=i) for i in range(4)]  # Jan 30, 31, Feb 1, 2
        for i, d in enumerate(days):
            if i:
                rolls = metric(inst, "rankd_rollovers_total")
                clock.set(day_ms(d) + 3600000)
                wait_for(lambda: metric(inst, "rankd_rollovers_total") > rolls, "the rollover to %s" % d)
            fill(w, b, ["p%d" % k for k in range(5)], rounds=1)
            fill(w, keep_all, ["p%d" % k for k in range(5)], rounds=1)
        # Closed: Jan 30, Jan 31, Feb 1. Two are kept: Jan 30 is past retention.
        wait_for(lambda: all("archive_%d_%s" % (gen, d.strftime("%Y%m%d")) in partitions(db, "archive")
                             for d in days[1:3]), "the windows retention keeps archived")
        wait_for(lambda: "archive_%d_%s" % (gen, days[0].strftime("%Y%m%d")) not in partitions(db, "archive"),
                 "the partition past retention to be dropped")
        assert_error(c.get("/v1/leaderboards/%s/entries?window=%s" % (b, days[0].isoformat())), 404, "window")
        assert_error(c.get("/v1/leaderboards/%s/stats?window=%s" % (b, days[0].isoformat())), 404, "window")
        for d in days[1:3]:
            r = c.get("/v1/leaderboards/%s/entries?window=%s" % (b, d.isoformat()))
            assert r.status == 200 and r.json()["total"] == 5, r.describe()
            assert "archive_%d_%s" % (gen, d.strftime("%Y%m%d")) in partitions(db, "archive")
        ws = [x["window"] for x in c.get("/v1/leaderboards/%s/windows" % b).json()["windows"]]
        assert ws == [d.isoformat() for d in reversed(days[1:])]
        # The board without a retention of its own keeps everything.
        r = c.get("/v1/leaderboards/%s/entries?window=%s" % (keep_all, days[0].isoformat()))
        assert r.status == 200 and r.json()["total"] == 5, r.describe()
        assert len(c.get("/v1/leaderboards/%s/windows" % keep_all).json()["windows"]) == 4
        # The log keeps one month: January's partition (and its 32 parts) went, February's stays.
        wait_for(lambda: "submissions_2030_01" not in partitions(db, "submissions"), "January's log to be dropped")
        assert "submissions_2030_02" in partitions(db, "submissions")
        # Detached first (CONCURRENTLY), then dropped: wait for the drop too.
        wait_for(lambda: db.query("SELECT count(*) FROM pg_class WHERE relname LIKE 'submissions_2030_01%%'")[0][0] == 0,
                 "January's log partitions dropped")
        assert metric(inst, "rankd_retention_partitions_dropped_total") >= 2
        # A deleted board's archives go too, whole partitions.
        keep_gen = db.query("SELECT gen FROM boards WHERE id = %s", (keep_all,))[0][0]
        assert len([p for p in partitions(db, "archive") if p.startswith("archive_%d_" % keep_gen)]) == 3
        assert adm.delete("/v1/leaderboards/" + keep_all).status == 204
        wait_for(lambda: not [p for p in partitions(db, "archive") if p.startswith("archive_%d_" % keep_gen)],
                 "the deleted board's archive partitions to be dropped")
    finally:
        for x in (adm, w, c):
            x.close()


def test_a_submission_that_reaches_the_writer_after_its_window_was_archived_is_refused(rankd_factory, db):
    """The writer checks, under the board's archive lock, that the window it writes is not archived
    yet: a submission received before the reset but committed after the archive (a long queue, a
    retry) is refused with 409 rather than written where no read would see it. Here the window is
    made to look archived already."""
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        board = create_board(adm, reset="daily")
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (board["id"],))[0][0]
        ok = batch(w, [{"board": board["id"], "player_id": "early", "score": 5}]).json()["results"][0]
        assert ok.get("updated") is True, ok
        db.query("INSERT INTO archived_windows (board_gen, win, players, submissions, archived_at, archive_ms)"
                 " VALUES (%s, %s, 1, 1, now(), 0)", (gen, board["current_window"]))
        late = batch(w, [{"board": board["id"], "player_id": "late", "score": 7}]).json()["results"][0]
        assert late["error"]["code"] == "conflict", late
        assert db.query("SELECT count(*) FROM standings WHERE board_gen = %s AND player_id = 'late'", (gen,))[0][0] == 0
        db.query("DELETE FROM archived_windows WHERE board_gen = %s", (gen,))
    finally:
        adm.close()
        w.close()


def test_a_cursor_goes_on_paging_its_window_across_a_reset(rankd_factory, db, tmp_root):
    """Issue 28: a cursor taken before a reset, sent without window= after it, pages the window it
    was taken in (the answer names it), before and after that window is archived; sent with
    another window it is 400 naming its own."""
    start = datetime.date(2029, 7, 10)
    clock, inst, adm, w, c = daily_instance(rankd_factory, tmp_root, start)
    try:
        b = create_board(adm, reset="daily")["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        day1 = expected(oracle(fill(w, b, ["p%02d" % i for i in range(12)]), "desc"))
        first = c.get("/v1/leaderboards/%s/entries?limit=5" % b)
        assert entries_of(first) == day1[:5]
        cur = first.json()["next_cursor"]
        clock.set(day_ms(start + datetime.timedelta(days=1)) + 3600000)
        wait_for(lambda: c.get("/v1/leaderboards/%s/entries" % b).json()["window"] != start.isoformat(),
                 "the reset")
        for when in ("before its archive", "after its archive"):
            r = c.get("/v1/leaderboards/%s/entries?limit=5&cursor=%s" % (b, cur))
            assert entries_of(r) == day1[5:10], (when, r.describe())
            assert r.json()["window"] == start.isoformat(), when
            last = c.get("/v1/leaderboards/%s/entries?limit=5&cursor=%s" % (b, r.json()["next_cursor"]))
            assert entries_of(last) == day1[10:], when
            wrong = c.get("/v1/leaderboards/%s/entries?limit=5&window=current&cursor=%s" % (b, cur))
            assert_error(wrong, 400, field="cursor")
            assert "window %s" % start.isoformat() in wrong.json()["error"]["message"], wrong.describe()
            if when == "before its archive":
                wait_for(lambda: archived(db, gen) == 1, "the archive")
    finally:
        for x in (adm, w, c):
            x.close()


def test_a_closed_window_exports_from_its_archive_and_a_player_export_holds_it(rankd_factory, db, redis_db, tmp_root):
    start = datetime.date(2029, 7, 10)
    clock, inst, adm, w, c = daily_instance(rankd_factory, tmp_root, start)
    try:
        b, gen, day1 = a_day_archived(clock, adm, w, db, start)
        r = w.post("/v1/leaderboards/%s/scores" % b, json_body={"player_id": day1[3][1], "score": 7})
        assert r.status == 200, r.describe()
        # What the export reads of a closed window is its archive: the standings, kept for a
        # while after it, are made to disagree.
        db.query("UPDATE standings SET score = score + 1000 WHERE board_gen = %s AND win = %s", (gen, start))
        r = adm.get("/v1/leaderboards/%s/export?window=%s&format=ndjson" % (b, start.isoformat()))
        assert r.status == 200, r.describe()
        assert r.header("Content-Disposition") == 'attachment; filename="%s-%s.ndjson"' % (b, start.isoformat())
        rows = [json.loads(x) for x in r.body.decode().splitlines()]
        assert [(x["rank"], x["player_id"], x["score"], x["achieved_at"]) for x in rows] == expected(day1)
        # In another rank style (issue 49, item 13): the archive's rows in the same order, ranked
        # by their scores as a read of the closed window ranks them.
        for style in ("competition", "dense"):
            r = adm.get("/v1/leaderboards/%s/export?window=%s&format=ndjson&rank_style=%s" % (b, start.isoformat(), style))
            assert r.status == 200, r.describe()
            got = [(x["rank"], x["player_id"]) for x in map(json.loads, r.body.decode().splitlines())]
            read = c.get("/v1/leaderboards/%s/entries?window=%s&limit=100&rank_style=%s" % (b, start.isoformat(), style))
            assert got == [(e["rank"], e["player_id"]) for e in read.json()["entries"]], style
            ranks, prev = [], None
            for i, (_, p, score, _) in enumerate(day1):
                ranks.append(ranks[-1] if score == prev else i + 1 if style == "competition" else len(set(ranks)) + 1)
                prev = score
            assert got == [(k, p) for k, (_, p, _, _) in zip(ranks, day1)], style
        # The window that is open now: the one submission of today.
        r = adm.get("/v1/leaderboards/%s/export?format=ndjson" % b)
        assert [(x["rank"], x["player_id"], x["score"]) for x in map(json.loads, r.body.decode().splitlines())] == \
            [(1, day1[3][1], 7)]
        # The player's own export: the archived standing with the rank it closed with, today's, and
        # every submission (three rounds of fill, then today's).
        r = adm.get("/v1/players/%s/export" % day1[3][1])
        assert r.status == 200, r.describe()
        # (Other tests' boards in this database have players of the same names.)
        st = sorted((s["window"], s["rank"], s["score"], s["archived"]) for s in r.json()["standings"] if s["board"] == b)
        assert st == [(start.isoformat(), 4, day1[3][2], True),
                      ((start + datetime.timedelta(days=1)).isoformat(), 1, 7, False)]
        assert [s["window"] for s in r.json()["submissions"] if s["board"] == b] == [start.isoformat()] * 3 + \
            [(start + datetime.timedelta(days=1)).isoformat()]
    finally:
        for x in (adm, w, c):
            x.close()
