"""PostgreSQL's rank buckets and supers (migrations/0009_rank_buckets.sql, 0010_rank_supers.sql):
exact under concurrent writers, player deletions and re-cuts.

Without Redis every rank comes from the buckets. While two writers, a deleter and a re-cutter
(targets changing all the time, so buckets split and merge constantly) run against one board,
a checker compares, in single statements (one snapshot each), every standing's bucket rank
with its count(*) rank, every bucket's and super's count with its range, the sums of both
levels with the window's player count, and offset positions with an ORDER BY ... OFFSET. Afterwards the API's
ranks and offset pages match a plain SQL ordering and `rankd verify` is clean; a bucket
corrupted by hand is listed by `rankd verify` and repaired by rankd_rank_buckets_build.
"""
import random
import threading
import time

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, batch, create_board, run_cli, submit,
                      unique, wait_for, metric)

WIN = "1970-01-01"  # a board that never resets has one window
PLAYERS = ["u%03d" % i for i in range(300)]
DURATION_S = 8.0


def rank_mismatches(db, gen):
    """Standings whose bucket rank differs from their count(*) rank, in one snapshot."""
    return db.query(
        "SELECT y.player_id, rankd_rank_before(%s, %s, y.sort_key, y.achieved_ms, y.player_id),"
        " (SELECT count(*) FROM standings x WHERE x.board_gen = %s AND x.win = %s"
        "  AND (x.sort_key, x.achieved_ms, x.player_id) < (y.sort_key, y.achieved_ms, y.player_id))"
        " FROM standings y WHERE y.board_gen = %s AND y.win = %s"
        " AND rankd_rank_before(%s, %s, y.sort_key, y.achieved_ms, y.player_id) <>"
        " (SELECT count(*) FROM standings x WHERE x.board_gen = %s AND x.win = %s"
        "  AND (x.sort_key, x.achieved_ms, x.player_id) < (y.sort_key, y.achieved_ms, y.player_id))",
        (gen, WIN) * 5)


def totals(db, gen):
    """(sum of bucket counts, sum of super counts, count(*) of standings, window_counts.players),
    one snapshot."""
    return db.query(
        "SELECT (SELECT coalesce(sum(n), 0) FROM rank_buckets WHERE board_gen = %s AND win = %s),"
        " (SELECT coalesce(sum(n), 0) FROM rank_supers WHERE board_gen = %s AND win = %s),"
        " (SELECT count(*) FROM standings WHERE board_gen = %s AND win = %s),"
        " (SELECT coalesce((SELECT players FROM window_counts WHERE board_gen = %s AND win = %s), 0))",
        (gen, WIN) * 4)[0]


def levels(db, gen):
    """(buckets, supers) of the window."""
    return db.query(
        "SELECT (SELECT count(*) FROM rank_buckets WHERE board_gen = %s AND win = %s),"
        " (SELECT count(*) FROM rank_supers WHERE board_gen = %s AND win = %s)", (gen, WIN) * 2)[0]


def offset_mismatches(db, gen, positions):
    """Positions where the bucket walk and ORDER BY ... OFFSET name different standings."""
    bad = []
    for pos in positions:
        row = db.query(
            "WITH k AS (SELECT * FROM rankd_rank_bucket_at(%s, %s, %s)),"
            " a AS (SELECT player_id FROM standings WHERE board_gen = %s AND win = %s"
            "   AND (sort_key, achieved_ms, player_id) >= ((SELECT lo_sk FROM k), (SELECT lo_ms FROM k),"
            "   (SELECT lo_pid FROM k)) ORDER BY sort_key, achieved_ms, player_id"
            "   OFFSET %s - (SELECT before FROM k) LIMIT 1),"
            " b AS (SELECT player_id FROM standings WHERE board_gen = %s AND win = %s"
            "   ORDER BY sort_key, achieved_ms, player_id OFFSET %s LIMIT 1)"
            " SELECT (SELECT player_id FROM a), (SELECT player_id FROM b)",
            (gen, WIN, pos, gen, WIN, pos, gen, WIN, pos))[0]
        if row[0] != row[1]:
            bad.append((pos, row))
    return bad


def test_ranks_exact_under_writers_deletions_and_recuts(rankd_factory, db):
    inst = rankd_factory(redis=False, env={"RANKD_RANK_BUCKET_ROWS": "2"})
    admin = inst.client(None)
    board = create_board(admin, unique("rb"), sort="desc", operator="latest")["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
    stop = threading.Event()
    errors = []
    counts = {"writes": 0, "deletes": 0, "recuts": 0, "checks": 0}

    def guarded(fn):
        def run():
            try:
                fn()
            except Exception as e:  # reported by the main thread
                errors.append(repr(e))
                stop.set()
        return run

    def writer(seed):
        rng = random.Random(seed)
        c = inst.client(WRITE_KEY)
        while not stop.is_set():
            if rng.random() < 0.3:
                r = submit(c, board, rng.choice(PLAYERS), rng.randint(0, 40))
            else:
                items = [{"board": board, "player_id": rng.choice(PLAYERS), "score": rng.randint(0, 40)}
                         for _ in range(rng.randint(1, 25))]
                r = batch(c, items)
            assert r.status == 200, r.describe()
            counts["writes"] += 1

    def deleter():
        rng = random.Random(7)
        while not stop.is_set():
            r = admin.delete("/v1/leaderboards/%s/players/%s" % (board, rng.choice(PLAYERS)), key=ADMIN_KEY)
            assert r.status in (204, 404), r.describe()
            counts["deletes"] += 1
            stop.wait(0.03)

    def recutter():
        rng = random.Random(11)
        conn = db.connect()
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("SELECT rankd_rank_buckets_recut(%s, %s, %s, 8)", (gen, WIN, rng.randint(2, 12)))
                counts["recuts"] += cur.fetchone()[0]
        conn.close()

    threads = [threading.Thread(target=guarded(lambda s=s: writer(s))) for s in (1, 2)]
    threads += [threading.Thread(target=guarded(deleter)), threading.Thread(target=guarded(recutter))]
    for t in threads:
        t.start()
    rng = random.Random(3)
    seen_supers = 0
    deadline = time.time() + DURATION_S
    try:
        while time.time() < deadline and not stop.is_set():
            assert rank_mismatches(db, gen) == []
            s, sup, n, players = totals(db, gen)
            assert s == sup == n == players, (s, sup, n, players)
            seen_supers = max(seen_supers, levels(db, gen)[1])
            assert db.query("SELECT * FROM rankd_rank_buckets_check(%s, %s)", (gen, WIN)) == []
            assert offset_mismatches(db, gen, [rng.randint(0, max(0, n)) for _ in range(5)]) == []
            counts["checks"] += 1
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert counts["checks"] >= 5 and counts["writes"] >= 20 and counts["deletes"] >= 20, counts
    assert counts["recuts"] >= 10, counts  # buckets did split and merge meanwhile
    assert rank_mismatches(db, gen) == []
    buckets, supers = levels(db, gen)
    assert buckets > 5, buckets
    assert seen_supers > 2, seen_supers  # both levels were cut, not only the buckets

    # The API's ranks and pages, now that nothing moves, against plain SQL.
    order = [r[0] for r in db.query(
        "SELECT player_id FROM standings WHERE board_gen = %s AND win = %s"
        " ORDER BY sort_key, achieved_ms, player_id", (gen, WIN))]
    c = inst.client(READ_KEY)
    for p in rng.sample(order, min(40, len(order))):
        r = c.get("/v1/leaderboards/%s/players/%s" % (board, p))
        assert r.status == 200 and r.json()["rank"] == order.index(p) + 1, (p, r.describe())
    for off in (0, 1, len(order) // 3, len(order) - 2):
        r = c.get("/v1/leaderboards/%s/entries?offset=%d&limit=5" % (board, off))
        assert r.status == 200, r.describe()
        got = [(e["player_id"], e["rank"]) for e in r.json()["entries"]]
        assert got == [(p, off + i + 1) for i, p in enumerate(order[off:off + 5])], (off, got)
    v = run_cli(["verify"], inst.config_path, env=inst.env)
    assert v.returncode == 0, v.stdout + v.stderr


def test_verify_lists_a_wrong_bucket_and_build_repairs_it(rankd_factory, db):
    inst = rankd_factory(redis=False, env={"RANKD_RANK_BUCKET_ROWS": "2"})
    admin = inst.client(None)
    board = create_board(admin, unique("rbv"), sort="asc", operator="best")["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
    c = inst.client(WRITE_KEY)
    r = batch(c, [{"board": board, "player_id": "v%02d" % i, "score": i % 7} for i in range(60)])
    assert r.status == 200, r.describe()
    # The batch (60 standings changed, at least refresh.rank_bucket_rows) cut the window's one
    # bucket before it committed.
    assert db.query("SELECT count(*) FROM rank_buckets WHERE board_gen = %s", (gen,))[0][0] > 3
    # Nothing is left out of shape: buckets of cbrt(60) -> 3 standings, supers of sqrt(60 x 3)
    # -> 13, never listed for ever.
    wait_for(lambda: db.query("SELECT count(*) FROM rankd_rank_buckets_drifted(2) WHERE board_gen = %s",
                              (gen,))[0][0] == 0, "the window in shape")
    assert db.query("SELECT count(*) FROM rank_supers WHERE board_gen = %s", (gen,))[0][0] >= 3
    v = run_cli(["verify"], inst.config_path, env=inst.env)
    assert v.returncode == 0, v.stdout + v.stderr

    db.query("UPDATE rank_buckets SET n = n + 1 WHERE board_gen = %s AND lo_pid = ''", (gen,))
    db.query("UPDATE rank_supers SET n = n - 1 WHERE board_gen = %s AND lo_pid = ''", (gen,))
    v = run_cli(["verify"], inst.config_path, env=inst.env)
    assert v.returncode == 1, v.stdout + v.stderr
    assert "rank bucket from" in v.stdout and "rankd_rank_buckets_build" in v.stdout, v.stdout
    assert "rank super from" in v.stdout, v.stdout

    # A super that starts inside a bucket (and counts none of it): ranks from it would be wrong.
    db.query("SELECT rankd_rank_buckets_build(%s, %s, 2)", (gen, WIN))
    db.query("INSERT INTO rank_supers SELECT board_gen, win, lo_sk, lo_ms, lo_pid || '~', 0 FROM rank_buckets"
             " WHERE board_gen = %s AND lo_pid <> '' ORDER BY lo_sk, lo_ms, lo_pid LIMIT 1", (gen,))
    v = run_cli(["verify"], inst.config_path, env=inst.env)
    assert v.returncode == 1 and "starts where no bucket does" in v.stdout, v.stdout + v.stderr

    assert db.query("SELECT rankd_rank_buckets_build(%s, %s, 2)", (gen, WIN))[0][0] == 60
    assert db.query("SELECT count(*) FROM rank_buckets WHERE board_gen = %s", (gen,))[0][0] > 3
    v = run_cli(["verify"], inst.config_path, env=inst.env)
    assert v.returncode == 0, v.stdout + v.stderr
    r = inst.client(READ_KEY).get("/v1/leaderboards/%s/players/v00" % board)
    assert r.status == 200 and r.json()["rank"] == 1, r.describe()


def test_a_drifted_player_count_fails_no_read_and_build_repairs_it(rankd_factory, db):
    """window_counts.players above the buckets' sum (written by hand, as by a tool that skipped
    rankd) makes a deep offset walk back past the first bucket: the page is answered (empty
    here), not a SQL error, `rankd verify` lists the count, and rankd_rank_buckets_build sets it
    right again."""
    inst = rankd_factory(redis=False, env={"RANKD_RANK_BUCKET_ROWS": "2"})
    admin, c = inst.client(None), inst.client(READ_KEY)
    board = create_board(admin, unique("rbd"), sort="desc", operator="best")["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
    r = batch(inst.client(WRITE_KEY), [{"board": board, "player_id": "d%02d" % i, "score": i} for i in range(30)])
    assert r.status == 200, r.describe()
    db.query("UPDATE window_counts SET players = players + 100 WHERE board_gen = %s", (gen,))
    r = c.get("/v1/leaderboards/%s/entries?offset=70&limit=5" % board)
    assert r.status == 200 and r.json()["entries"] == [], r.describe()
    v = run_cli(["verify"], inst.config_path, env=inst.env)
    assert v.returncode == 1 and "its player count is 130, its standings 30" in v.stdout, v.stdout + v.stderr
    assert db.query("SELECT rankd_rank_buckets_build(%s, %s, 2)", (gen, WIN))[0][0] == 30
    assert db.query("SELECT players FROM window_counts WHERE board_gen = %s", (gen,))[0][0] == 30
    r = c.get("/v1/leaderboards/%s/entries?offset=20&limit=3" % board)
    assert r.status == 200, r.describe()
    assert [(e["player_id"], e["rank"]) for e in r.json()["entries"]] == [("d09", 21), ("d08", 22), ("d07", 23)]
    assert r.json()["total"] == 30


def test_a_board_deleted_during_a_recut_leaves_no_bucket_behind(rankd_factory, db):
    """A re-cut's split commits while the board's purge (the upkeep leader's, after the deletion
    answered) waits for the window's counter: the purge still takes every bucket and super, those
    the split made included."""
    # Buckets of 1,000,000 rows: the leader finds nothing to re-cut, the test's own call does.
    inst = rankd_factory(redis=False, env={"RANKD_RANK_BUCKET_ROWS": "1000000"})
    admin = inst.client(None)
    board = create_board(admin, unique("rbx"), sort="desc", operator="best")["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
    r = batch(inst.client(WRITE_KEY), [{"board": board, "player_id": "x%02d" % i, "score": i} for i in range(60)])
    assert r.status == 200, r.describe()
    assert levels(db, gen) == (1, 1)

    recut = db.connect()
    recut.autocommit = False
    with recut.cursor() as cur:
        cur.execute("SELECT rankd_rank_buckets_recut(%s, %s, 3, 8)", (gen, WIN))
        assert cur.fetchone()[0] > 0
    try:
        r = inst.client(ADMIN_KEY).delete("/v1/leaderboards/%s" % board)
        assert r.status == 204, r.describe()
        wait_for(lambda: db.lock_waiters("%FROM window_counts%") > 0, "the purge to wait for the re-cut")
    finally:
        recut.commit()
        recut.close()
    wait_for(lambda: levels(db, gen) == (0, 0), "the buckets purged")
    assert db.query("SELECT count(*) FROM window_counts WHERE board_gen = %s", (gen,))[0][0] == 0


def test_the_leader_looks_again_only_at_windows_written_since(rankd_factory, db):
    """The leader remembers each window it found in shape with its counter row's version
    (migrations/0011_rank_checked.sql): a window nobody wrote is not scanned again, one written
    since is."""
    inst = rankd_factory(redis=False, env={"RANKD_RANK_BUCKET_ROWS": "2"})
    admin, w = inst.client(None), inst.client(WRITE_KEY)
    quiet = create_board(admin, unique("rbq"), sort="desc", operator="best")["id"]
    busy = create_board(admin, unique("rbb"), sort="desc", operator="best")["id"]
    gq, gb = (db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0] for b in (quiet, busy))
    r = batch(w, [{"board": quiet, "player_id": "q%02d" % i, "score": i} for i in range(60)])
    assert r.status == 200, r.describe()

    def checked(gen):
        return db.query("SELECT k.seen::text = c.xmin::text FROM rank_checked k JOIN window_counts c"
                        " USING (board_gen, win) WHERE k.board_gen = %s", (gen,))

    wait_for(lambda: checked(gq) == [(True,)], "the quiet window found in shape and remembered")
    assert levels(db, gq)[0] > 3

    # Out of shape behind the leader's back (one bucket and one super for all 60): no write
    # touched the window, so the leader does not look at it again.
    db.query("DELETE FROM rank_buckets WHERE board_gen = %s AND lo_pid <> ''", (gq,))
    db.query("DELETE FROM rank_supers WHERE board_gen = %s AND lo_pid <> ''", (gq,))
    db.query("UPDATE rank_buckets SET n = 60 WHERE board_gen = %s", (gq,))
    db.query("UPDATE rank_supers SET n = 60 WHERE board_gen = %s", (gq,))
    # Another window written and re-cut: the leader has looked at every window since.
    r = batch(w, [{"board": busy, "player_id": "b%02d" % i, "score": i} for i in range(60)])
    assert r.status == 200, r.describe()
    wait_for(lambda: checked(gb) == [(True,)], "the busy window re-cut and remembered")
    assert levels(db, gq) == (1, 1)

    # One write to the quiet window: the leader looks at it again, and re-cuts it.
    r = submit(w, quiet, "q99", 1000)
    assert r.status in (200, 201), r.describe()
    wait_for(lambda: checked(gq) == [(True,)] and levels(db, gq)[0] > 3, "the quiet window re-cut")
    # (a batch of one is under refresh.rank_bucket_rows: the leader's re-cut, counted when its
    # round ends)
    wait_for(lambda: metric(inst, "rankd_rank_bucket_recuts_total") > 0, "the leader's re-cuts counted")
    v = run_cli(["verify"], inst.config_path, env=inst.env)
    assert v.returncode == 0, v.stdout + v.stderr


def test_a_board_deletion_takes_its_locks_in_the_writers_order(rankd_factory, db):
    """A writer holds the board (FOR KEY SHARE) and then counts in window_counts; a deletion that
    took the counters first would deadlock with it. Here the writer is a session of the test,
    doing what the writer's statement does, while the deletion waits for it. (The deletion now
    takes only the board's row; the counters go later, in the leader's purge.)"""
    inst = rankd_factory(redis=False)
    admin = inst.client(None)
    board = create_board(admin, unique("rbl"), sort="desc", operator="best")["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
    r = batch(inst.client(WRITE_KEY), [{"board": board, "player_id": "l%02d" % i, "score": i} for i in range(10)])
    assert r.status == 200, r.describe()

    writer = db.connect()
    writer.autocommit = False
    result = {}
    deleter = threading.Thread(
        target=lambda: result.update(r=inst.client(ADMIN_KEY).delete("/v1/leaderboards/%s" % board)))
    try:
        with writer.cursor() as cur:
            cur.execute("SELECT gen FROM boards WHERE id = %s FOR KEY SHARE", (board,))
            deleter.start()
            wait_for(lambda: db.lock_waiters() > 0, "the deletion to wait for the writer")
            cur.execute("UPDATE window_counts SET submissions = submissions + 1 WHERE board_gen = %s", (gen,))
        writer.commit()  # a deadlock would have failed one of the two
    finally:
        writer.close()
    deleter.join(30)
    assert result["r"].status == 204, result["r"].describe()
    wait_for(lambda: levels(db, gen) == (0, 0), "the buckets purged")
    assert db.query("SELECT count(*) FROM window_counts WHERE board_gen = %s", (gen,))[0][0] == 0


LEADER_LOCK = 0x6C656164  # src/store/upkeep.c: the upkeep leader's advisory lock


def misfits(db, gen):
    """Buckets and supers of the window out of shape (rankd_rank_misfits, for the window's targets
    at refresh.rank_bucket_rows = 4, as the tests run)."""
    return db.query(
        "SELECT count(*) FROM window_counts c, LATERAL (SELECT rankd_rank_bucket_target(c.players, 4) AS t) t,"
        " LATERAL rankd_rank_misfits(c.board_gen, c.win, t.t, rankd_rank_super_target(c.players, t.t)) m"
        " WHERE c.board_gen = %s AND c.win = %s", (gen, WIN))[0][0]


def test_a_large_batch_commits_with_its_buckets_cut(rankd_factory, db):
    """A scores:batch of 1,000 new players into a window (at least refresh.rank_bucket_rows
    changed) re-cuts the window's buckets in its own transaction: when it is answered they are in
    shape, with nobody leading the upkeep (the test holds the leader's lock), and every rank from
    them is exact. Before, the window kept one bucket of 1,000 until the leader's re-cut came by.
    A batch under the threshold leaves the re-cut to the leader."""
    holder = db.connect()
    holder.autocommit = True
    try:
        cur = holder.cursor()
        wait_for(lambda: cur.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)) or cur.fetchone()[0],
                 "the test to hold the upkeep lead", 20)
        inst = rankd_factory(redis=False)
        assert metric(inst, "rankd_upkeep_leader") == 0
        board = create_board(inst.client(ADMIN_KEY), unique("bulk"))["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
        w = inst.client(WRITE_KEY)
        rng = random.Random(33)
        items = [{"board": board, "player_id": "b%04d" % i, "score": rng.randint(0, 10 ** 6)} for i in range(1000)]
        r = batch(w, items)
        assert r.status == 200 and all("rank" in x for x in r.json()["results"]), r.describe()
        assert misfits(db, gen) == 0
        buckets, supers = levels(db, gen)
        assert buckets >= 1000 // 20 and supers > 1, (buckets, supers)
        assert rank_mismatches(db, gen) == []
        assert totals(db, gen) == (1000, 1000, 1000, 1000)
        # Three more players: under the threshold, nothing is re-cut before the answer.
        before = levels(db, gen)
        r = batch(w, [{"board": board, "player_id": "c%d" % i, "score": 5} for i in range(3)])
        assert r.status == 200, r.describe()
        assert levels(db, gen) == before
        assert rank_mismatches(db, gen) == []
        v = run_cli(["verify", "--board", board], inst.config_path, env=inst.env)
        assert v.returncode == 0, v.stdout + v.stderr
    finally:
        holder.close()
