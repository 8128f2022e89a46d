"""Redis trusted only when it provably holds every write (issue 27).

Each transaction that changes a window adds one to the window's number in PostgreSQL
(window_counts.seq); each Redis update carries it, and Redis keeps the number up to which it has
every update (the window's mark). A window is read from Redis only once this instance found its
mark to reach PostgreSQL's number, since its start and Redis's last outage; a window found
behind is rebuilt. Before, the ready key alone was trusted: a Redis restarted from an older
snapshot served the old scores and ranks of every player written since the snapshot."""
import pytest

from conftest import ADMIN_KEY, WRITE_KEY, Rankd, batch, create_board, metric, run_cli, submit_ok, wait_for

PLAYERS = ["p%02d" % i for i in range(50)]


def scores_by_player(cl, board):
    r = cl.get("/v1/leaderboards/%s/entries?limit=100" % board)
    assert r.status == 200, r.describe()
    return {e["player_id"]: (e["rank"], e["score"]) for e in r.json()["entries"]}


def expected(scores):
    order = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))  # desc; ties never happen here
    return {p: (i + 1, s) for i, (p, s) in enumerate(order)}


def rank_of(cl, board, player):
    r = cl.get("/v1/leaderboards/%s/players/%s" % (board, player))
    assert r.status == 200, r.describe()
    return r.json()["rank"], r.json()["score"]


def write_scores(w, board, scores):
    r = batch(w, [{"board": board, "player_id": p, "score": s} for p, s in scores.items()])
    assert r.status == 200 and all("error" not in x for x in r.json()["results"]), r.describe()


_limits = iter(range(10**9))


def fresh_read(cl, board):
    """A page no cache holds yet (a limit not asked before): it reaches Redis or PostgreSQL."""
    r = cl.get("/v1/leaderboards/%s/entries?limit=%d" % (board, 51 + next(_limits) % 900))
    assert r.status == 200, r.describe()
    return r


def window_key(rcl, gen, day):
    return "rankd:{g%d}:%d" % (gen, day)


def answered_by_redis(inst, cl, board):
    """Whether a read no cache holds is answered from Redis (the window loaded, and trusted)."""
    before = metric(inst, "rankd_reads_redis_total")
    fresh_read(cl, board)
    return metric(inst, "rankd_reads_redis_total") > before


def restore_older_snapshot(private_redis, take_snapshot_then):
    """SAVE, run take_snapshot_then() (writes Redis then misses), and restart Redis from that snapshot."""
    rcl = private_redis.client()
    rcl.save()
    take_snapshot_then()
    private_redis.stop()  # no save on shutdown ("save" is off): the snapshot is what it restarts from
    private_redis.start()


def every_read_is_new(cl, board, want, checks=3):
    for _ in range(checks):
        got = scores_by_player(cl, board)
        assert got == want, "stale page: %s" % {p: (got.get(p), want[p]) for p in want if got.get(p) != want[p]}
        for p in PLAYERS[:5]:
            assert rank_of(cl, board, p) == want[p], (p, rank_of(cl, board, p), want[p])


@pytest.mark.parametrize("restart_rankd", [False, True], ids=["rankd-runs-through", "rankd-restarted"])
def test_a_redis_restored_from_an_older_snapshot_serves_no_stale_read(tmp_root, db, private_redis, restart_rankd):
    url = private_redis.url(0)
    inst = Rankd(tmp_root, db, redis_url=url).start()
    try:
        adm, w, cl = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()
        board = create_board(adm)
        b = board["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        day = 0  # reset none: window 1970-01-01
        first = {p: 100 + i for i, p in enumerate(PLAYERS)}
        write_scores(w, b, first)
        rcl = private_redis.client()
        # Read until Redis answers it (loaded at creation; checked at the first read).
        wait_for(lambda: answered_by_redis(inst, cl, b), "reads from Redis")
        assert scores_by_player(cl, b) == expected(first)
        improved = {p: 10000 - 7 * i for i, p in enumerate(PLAYERS)}  # the order turns over too

        def improve():
            write_scores(w, b, improved)
            if restart_rankd:
                inst.stop()

        restore_older_snapshot(private_redis, improve)
        # Redis holds the window, ready, with the first scores: the snapshot's.
        assert rcl.exists(window_key(rcl, gen, day) + ":ready5")
        member = rcl.zrange(window_key(rcl, gen, day) + ":z5", 0, 0)[0]
        assert member.endswith(b"p49"), member  # p49 led with the first scores; p00 leads now
        if restart_rankd:
            inst.start()
            cl.close()
            cl = inst.client()
            # A write before Redis is trusted again answers its rank from PostgreSQL, and that
            # answer is what its Idempotency-Key replays (before: the writer took the restored
            # Redis's rank, 1 here, where p00's 10000 is ahead of it, and kept it for 24 h).
            w.close()
            w = inst.client(WRITE_KEY)
            improved["p25"] = 9999
            sent = w.post("/v1/leaderboards/%s/scores" % b, {"player_id": "p25", "score": 9999},
                          headers={"Idempotency-Key": "after-the-restore"})
            assert sent.status == 200 and sent.json()["rank"] == 2, sent.describe()
            again = w.post("/v1/leaderboards/%s/scores" % b, {"player_id": "p25", "score": 9999},
                           headers={"Idempotency-Key": "after-the-restore"})
            assert again.status == 200 and again.body == sent.body, again.describe()
        want = expected(improved)
        every_read_is_new(cl, b, want)
        # The window is found behind and rebuilt: Redis answers again, with the new scores.
        wait_for(lambda: answered_by_redis(inst, cl, b), "reads from Redis again")
        assert metric(inst, "rankd_redis_windows_behind_total") >= 1
        wait_for(lambda: (rcl.zrange(window_key(rcl, gen, day) + ":z5", 0, 0) or [b""])[0].endswith(b"p00"),
                 "the rebuild")
        every_read_is_new(cl, b, want)
        r = run_cli(["verify", "--board", b], inst.config_path, env={"RANKD_REDIS_URL": url})
        assert r.returncode == 0, r.stdout + r.stderr
        for c in (adm, w, cl):
            c.close()
    finally:
        inst.stop()


def test_a_window_whose_updates_never_reached_redis_is_marked_cold(rankd_factory, db, redis_db):
    """A committed change whose Redis update is lost (here: its writer's update undone by hand,
    as when a writer dies between its commit and its update): the window's mark stays behind
    PostgreSQL's; an instance that checks the window (after its start) rebuilds it."""
    url, rcl = redis_db
    a = rankd_factory()
    adm, w = a.client(ADMIN_KEY), a.client(WRITE_KEY)
    b = create_board(adm)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
    submit_ok(w, b, "x", 1)
    submit_ok(w, b, "y", 2)
    key = window_key(rcl, gen, 0)
    wait_for(lambda: rcl.hget(key + ":m5", "seq") == b"2", "the mark at 2")
    # A third transaction reaches PostgreSQL but not Redis.
    db.query("UPDATE standings SET score = 99, sort_key = -99, version = nextval('standing_version')"
             " WHERE board_gen = %s AND player_id = 'x'", (gen,))
    db.query("UPDATE window_counts SET seq = seq + 1 WHERE board_gen = %s", (gen,))
    other = rankd_factory()  # checks the window at its first read
    cl = other.client()
    # Its reads are PostgreSQL's until then: never the old score.
    r = cl.get("/v1/leaderboards/%s/players/x" % b)
    assert r.status == 200 and r.json()["score"] == 99, r.describe()
    wait_for(lambda: fresh_read(cl, b) and metric(other, "rankd_redis_windows_behind_total") >= 1,
             "the window found behind", 15)
    wait_for(lambda: rcl.hget(key + ":m5", "seq") == b"3", "the rebuild's mark")
    r = cl.get("/v1/leaderboards/%s/players/x" % b)
    assert r.status == 200 and r.json()["score"] == 99 and r.json()["rank"] == 1, r.describe()
    for c in (adm, w, cl):
        c.close()


def test_the_leaders_audit_finds_a_change_redis_never_got_on_a_window_already_trusted(rankd_factory, db, redis_db):
    """The instance checked the window and trusts it; then a transaction reaches PostgreSQL and
    not Redis, with no outage anywhere (a writer that died between its commit and its update).
    The leader's audit sees the mark stay behind PostgreSQL's number for a whole round, marks the
    window cold, and reads come back right. Before: Redis was read for good, the change missing."""
    url, rcl = redis_db
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"})
    wait_for(lambda: metric(inst, "rankd_upkeep_leader") == 1, "the instance to lead", 10)
    adm, w, cl = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()
    b = create_board(adm)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
    submit_ok(w, b, "x", 1)
    submit_ok(w, b, "y", 2)
    wait_for(lambda: answered_by_redis(inst, cl, b), "reads from Redis")
    db.query("UPDATE standings SET score = 99, sort_key = -99, version = nextval('standing_version')"
             " WHERE board_gen = %s AND player_id = 'x'", (gen,))
    db.query("UPDATE window_counts SET seq = seq + 1 WHERE board_gen = %s", (gen,))

    def x_right():
        r = fresh_read(cl, b).json()["entries"]
        return r[0]["player_id"] == "x" and r[0]["score"] == 99

    # No read until the audit has spoken: a read could have the window checked again (any
    # distrust of it, say a Redis command timed out under load, sends it to the rebuilder, which
    # finds the same gap and rebuilds it first), and then the audit has nothing left to find.
    wait_for(lambda: metric(inst, "rankd_redis_audit_windows_lost_total") >= 1, "the audit to find the loss", 20)
    wait_for(x_right, "reads with the change", 20)
    wait_for(lambda: answered_by_redis(inst, cl, b), "reads from Redis again (rebuilt)")
    assert x_right()
    for c in (adm, w, cl):
        c.close()


def test_a_change_whose_writer_died_before_its_redis_update_is_not_read_from_redis_for_long(rankd_factory, db,
                                                                                          redis_db):
    """The instance trusts the window; then a transaction reaches PostgreSQL, with its notice (the
    S line of its number), and never Redis: its writer was killed between the commit and the
    update (the 60-day season found this after the leader was killed: the other instance kept
    answering without the submission for two simulated days, until the new leader's audit). No
    leader here, so no audit: every instance sees each number it hears reach the window's Redis
    mark (worker/mark_watch.c), and reads the window from PostgreSQL when one heard a second ago
    has not; its rebuilder then loads it again."""
    url, rcl = redis_db
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0"})  # the cron setup: it never leads
    adm, w, cl = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()
    b = create_board(adm)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
    submit_ok(w, b, "x", 1)
    submit_ok(w, b, "y", 2)
    wait_for(lambda: answered_by_redis(inst, cl, b), "reads from Redis")
    assert metric(inst, "rankd_upkeep_leader") == 0  # no audit
    # The dead writer's transaction: its change, its number, and its notice; no Redis update.
    db.query("UPDATE standings SET score = 99, sort_key = -99, version = nextval('standing_version')"
             " WHERE board_gen = %s AND player_id = 'x'", (gen,))
    seq = db.query("UPDATE window_counts SET seq = seq + 1 WHERE board_gen = %s RETURNING seq", (gen,))[0][0]
    db.query("SELECT pg_notify('rankd_l1', %s)", ("S %d 0 %d 1 1" % (gen, seq),))

    def x_right():
        r = fresh_read(cl, b).json()["entries"]
        return r[0]["player_id"] == "x" and r[0]["score"] == 99

    # No read until the watch has counted the mark late (as for the audit above): a read past the
    # second sends the window to the rebuilder, whose rebuild brings the mark to the number, and
    # a watch tick delayed past it (under load) then finds nothing late.
    wait_for(lambda: metric(inst, "rankd_redis_marks_late_total") >= 1, "the mark seen late")
    wait_for(x_right, "reads with the change", 10)
    wait_for(lambda: rcl.hget(window_key(rcl, gen, 0) + ":m5", "seq") == str(seq).encode(), "the rebuild's mark", 15)
    wait_for(lambda: answered_by_redis(inst, cl, b), "reads from Redis again (rebuilt)")
    assert x_right()
    for c in (adm, w, cl):
        c.close()
