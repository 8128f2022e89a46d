"""The upkeep over weeks (issue 27): each job runs, is timed and fails on its own, the log's
partitions stay made ahead whatever else fails, and daily activity is counted again only for the
days that changed."""
import datetime as dt
import os
import signal
import threading
import time

import psycopg2

from conftest import ADMIN_KEY, WRITE_KEY, batch, create_board, metric, series, submit, submit_ok, wait_for


LEADER_LOCK = 0x6C656164  # src/store/upkeep.c: the upkeep leader's advisory lock


def month_name(months_ahead):
    d = dt.date.today().replace(day=1)
    y, m = d.year, d.month - 1 + months_ahead
    return "submissions_%04d_%02d" % (y + m // 12, m % 12 + 1)


def test_a_failing_view_refresh_stops_no_other_upkeep_job(rankd_factory, db):
    """Before: the jobs were chained behind the view refresh, so one refresh that failed (here: a
    lock it cannot get within refresh.timeout_s) left the log without next months' partitions and
    kept idempotency keys for ever."""
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1", "RANKD_REFRESH_TIMEOUT_S": "1"})
    wait_for(lambda: metric(inst, "rankd_upkeep_leader") == 1, "the instance to lead", 10)
    wait_for(lambda: series(inst, "rankd_log_partitions_ahead_months") == 3, "three months made ahead", 10)
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    board = create_board(adm)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]

    holder = psycopg2.connect(db.dsn)
    try:
        cur = holder.cursor()
        # A refresh left open holds the view's lock: every other refresh of it waits, then fails.
        cur.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY window_stats")
        failed = series(inst, "rankd_upkeep_runs_total", step="views", outcome="failed")
        db.query("DROP TABLE %s" % month_name(3))
        db.query("DROP TABLE %s" % month_name(2))
        db.query("INSERT INTO idempotency_keys (board_gen, key, request, response, created_at)"
                 " VALUES (%s, 'old-key', 'r', 'a', now() - interval '26 hours')", (gen,))
        submit_ok(w, board, "p1", 10)  # something written: the views are due
        wait_for(lambda: series(inst, "rankd_upkeep_runs_total", step="views", outcome="failed") > failed,
                 "a failed view refresh", 15)
        wait_for(lambda: series(inst, "rankd_log_partitions_ahead_months") == 3,
                 "the dropped months made again while the views fail", 15)
        assert db.query("SELECT to_regclass(%s) IS NOT NULL", (month_name(3),))[0][0]
        wait_for(lambda: not db.query("SELECT 1 FROM idempotency_keys WHERE key = 'old-key'"),
                 "the old idempotency key forgotten while the views fail", 15)
        assert series(inst, "rankd_upkeep_last_success_timestamp_seconds", step="partitions") > 0
        assert series(inst, "rankd_upkeep_runs_total", step="retention", outcome="ok") > 0
        holder.rollback()
    finally:
        holder.close()
    ok = series(inst, "rankd_upkeep_runs_total", step="views", outcome="ok")
    submit_ok(w, board, "p2", 20)
    wait_for(lambda: series(inst, "rankd_upkeep_runs_total", step="views", outcome="ok") > ok,
             "the views refreshed once the lock is gone", 15)
    # That count moves too for a round that read the tables before p2's commit (a refresh that
    # was waiting on the lock when it went, or a round that began just before p2, counted ok even
    # when it finds nothing written since the last refresh): p2 shows at a later round.
    def stats():
        c = inst.client()
        try:
            return c.get("/v1/leaderboards/%s/stats" % board)
        finally:
            c.close()
    wait_for(lambda: (lambda r: r.status == 200 and r.json()["players"] == 2)(stats()),
             lambda: "p2 in the refreshed statistics: %s" % stats().describe(), 15)
    adm.close()
    w.close()


def activity(inst, board, day):
    r = inst.client().get("/v1/leaderboards/%s/activity?from=%s&to=%s" % (board, day, day))
    assert r.status == 200, r.describe()
    d = r.json()["days"][0]
    return d["submissions"], d["players"]



def test_the_partitions_gauge_falls_while_making_them_fails_and_only_the_leader_exports_it(rankd_factory, db):
    """Before: the count was skipped when making the partitions failed, so the gauge stayed at its
    last value (3) in the very case its alert is for; and an instance that no longer led kept
    exporting its last count, which the alert's max() let hide the leader's."""
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1", "RANKD_REFRESH_TIMEOUT_S": "1"})
    other = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"})
    wait_for(lambda: metric(inst, "rankd_upkeep_leader") == 1, "the first instance to lead", 10)
    wait_for(lambda: series(inst, "rankd_log_partitions_ahead_months") == 3, "three months made ahead", 10)
    assert series(other, "rankd_log_partitions_ahead_months") is None  # a follower has no count
    db.query("DROP TABLE %s" % month_name(3))
    db.query("DROP TABLE %s" % month_name(2))
    holder = psycopg2.connect(db.dsn)
    try:
        cur = holder.cursor()
        # Nothing can be made while this lock is held; the months that exist can still be counted.
        cur.execute("LOCK TABLE submissions IN ACCESS EXCLUSIVE MODE")
        failed = series(inst, "rankd_upkeep_runs_total", step="partitions", outcome="failed")
        wait_for(lambda: series(inst, "rankd_upkeep_runs_total", step="partitions", outcome="failed") > failed,
                 "the partitions job failing on the lock", 20)
        wait_for(lambda: series(inst, "rankd_log_partitions_ahead_months") == 1,
                 "the gauge at the one month left while making them fails", 20)
    finally:
        holder.rollback()
        holder.close()
    wait_for(lambda: series(inst, "rankd_log_partitions_ahead_months") == 3, "the months made again", 20)

    # The lead taken away from a running instance (its session ended, the lock taken by this
    # test before either instance can take it again): neither exports a count any more.
    taker = psycopg2.connect(db.dsn)
    taker.autocommit = True
    try:
        cur = taker.cursor()

        def take_the_lead():
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND objid = %s AND granted AND pid <> pg_backend_pid()", (LEADER_LOCK,))
            cur.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
            return cur.fetchone()[0]
        wait_for(take_the_lead, "the test to hold the upkeep lead", 20)
        # Between a terminated holder's exit and the test's next try the lock is free, and either
        # instance may take it at its tick, run a round (its count 3) and lose it to the test's
        # next try: that one knows only at its next tick. A count that stays is the bug.
        wait_for(lambda: metric(inst, "rankd_upkeep_leader") == 0 and metric(other, "rankd_upkeep_leader") == 0 and
                 series(inst, "rankd_log_partitions_ahead_months") is None and
                 series(other, "rankd_log_partitions_ahead_months") is None,
                 "neither instance to lead or export a count", 20)
    finally:
        taker.close()  # the lock goes with the session
    wait_for(lambda: (series(inst, "rankd_log_partitions_ahead_months") or series(other, "rankd_log_partitions_ahead_months")) == 3,
             "the new leader's count", 20)

def test_activity_counts_only_the_days_that_changed(rankd_factory, db):
    """daily_activity is a table counted again from the log only for the days since the last
    refresh: an old day written into the log behind its back keeps its count (a full count happens
    only when nothing was ever counted). A deleted player's submissions leave the older days' counts
    at once, by the deletion itself, and the recent days at the next refresh."""
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0"})
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    board = create_board(adm)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
    for p in ("a", "b", "c"):
        submit_ok(w, board, p, 5)
    submit_ok(w, board, "a", 6)
    assert adm.post("/v1/admin/refresh").status == 200
    today = dt.datetime.utcnow().date()
    assert activity(inst, board, today) == (4, 3)
    # Forty days ago, rows of this board's log the refresh has counted past (a player's history).
    old = today - dt.timedelta(days=40)
    db.query("SELECT rankd_ensure_partitions(%s::timestamptz, 2)", (old.isoformat(),))
    db.query("INSERT INTO submissions (board_gen, win, player_id, score, metadata, updated, received_at)"
             " SELECT %s, DATE '1970-01-01', p, 1, NULL, true, %s::timestamptz + interval '1 hour'"
             " FROM unnest(ARRAY['a', 'b', 'a']) AS p", (gen, old.isoformat()))
    assert adm.post("/v1/admin/refresh").status == 200
    assert activity(inst, board, old) == (0, 0), "an old day was counted again"
    # Nothing counted yet (a new install): every day is counted.
    db.query("UPDATE activity_mark SET counted_to = NULL, recounted_from = NULL")
    assert adm.post("/v1/admin/refresh").status == 200
    assert activity(inst, board, old) == (3, 2)
    assert activity(inst, board, today) == (4, 3)
    # Deleting player a: the old day loses a's two submissions and a at once; today at the refresh.
    assert adm.delete("/v1/leaderboards/%s/players/a" % board).status == 204
    assert activity(inst, board, old) == (1, 1)
    assert adm.post("/v1/admin/refresh").status == 200
    assert activity(inst, board, old) == (1, 1)
    assert activity(inst, board, today) == (2, 2)
    adm.close()
    w.close()


def hold_archive_locks(db, gen, day):
    """A transaction holding what an archive of window (gen, day) holds while it copies the
    window's rows and builds its indexes (migrations/0013_archive_window_lock.sql)."""
    conn = psycopg2.connect(db.dsn)
    cur = conn.cursor()
    cur.execute("SELECT pg_advisory_xact_lock(rankd_archive_window_lock_key(%s, %s::date)),"
                " pg_advisory_xact_lock(rankd_archive_lock_key(%s))", (gen, day, gen))
    return conn


def test_an_archive_in_progress_holds_off_no_write_to_the_live_window(rankd_factory, db):
    """Before: writers took the board's archive lock, so while a closed window of a million
    players was archived every write to the board waited until the statement timeout cancelled
    it, and its whole batch (other boards' items too) was answered 500."""
    inst = rankd_factory(extra_config={"postgres": {"statement_timeout_ms": 1000}})
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    board = create_board(adm, reset="daily")
    other = create_board(adm)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board["id"],))[0][0]
    yesterday = (dt.date.fromisoformat(board["current_window"]) - dt.timedelta(days=1)).isoformat()
    held = hold_archive_locks(db, gen, yesterday)
    try:
        # Answered, and applied, while the archive's locks are still held: a write that waited for
        # them would have met the 1 s statement timeout and failed, not succeeded.
        r = batch(w, [{"board": board["id"], "player_id": "p1", "score": 5},
                      {"board": other, "player_id": "p1", "score": 6}])
        assert r.status == 200 and all("error" not in x for x in r.json()["results"]), r.describe()
    finally:
        held.rollback()
        held.close()
    adm.close()
    w.close()


def test_a_player_deletion_during_an_archive_answers_503_and_succeeds_when_retried(rankd_factory, db):
    """A player's deletion must not run while an archive of the board copies its rows, and an
    archive holds the board's archive lock for minutes (about 96 s per million standings). Before:
    the deletion waited for it until the statement timeout cancelled it, and answered 500 (after
    5 s, `player delete lock failed: canceling statement due to statement timeout`). Now it waits
    for the lock at most a second (less than the statement timeout), then answers 503 with
    Retry-After and changes nothing; retried once the archive is done, it succeeds."""
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    board = create_board(adm, reset="daily")["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]
    for p, score in (("p1", 5), ("p2", 7), ("p1", 9)):
        submit_ok(w, board, p, score)
    yesterday = (dt.date.fromisoformat(adm.get("/v1/leaderboards/" + board).json()["current_window"])
                 - dt.timedelta(days=1)).isoformat()

    def rows(player):
        return (db.query("SELECT count(*) FROM standings WHERE board_gen = %s AND player_id = %s", (gen, player))[0][0],
                db.submission_count(board, player))

    assert rows("p1") == (1, 2)
    held = hold_archive_locks(db, gen, yesterday)
    try:
        r = adm.delete("/v1/leaderboards/%s/players/p1" % board)
        assert r.status == 503, r.describe()
        assert int(r.header("Retry-After")) >= 1, r.describe()
        assert r.json()["error"]["code"] == "unavailable"
        assert rows("p1") == (1, 2)
        assert adm.get("/v1/leaderboards/%s/players/p1" % board).status == 200
    finally:
        held.rollback()
        held.close()
    r = adm.delete("/v1/leaderboards/%s/players/p1" % board)
    assert r.status == 204, r.describe()
    assert rows("p1") == (0, 0) and rows("p2") == (1, 1)
    assert adm.get("/v1/leaderboards/%s/players/p1" % board).status == 404
    assert adm.get("/v1/leaderboards/%s/players/p2" % board).json()["rank"] == 1
    assert "player delete lock failed" not in inst.stderr_text()
    adm.close()
    w.close()


def test_a_write_that_waits_too_long_for_a_lock_is_tried_again(rankd_factory, db):
    """A write to a window whose archive lock is held (a late submission while its window is
    archived) waits at most half the statement timeout (lock_timeout), then its transaction runs
    again; once the lock is free it commits. Before: the statement timeout cancelled it (57014),
    which was not retried: 500."""
    inst = rankd_factory(extra_config={"postgres": {"statement_timeout_ms": 2000}})
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    board = create_board(adm, reset="daily")
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board["id"],))[0][0]
    held = hold_archive_locks(db, gen, board["current_window"])
    done = {}
    th = threading.Thread(target=lambda: done.setdefault("r", submit(w, board["id"], "p1", 5)))
    try:
        th.start()
        wait_for(lambda: "canceling statement due to lock timeout" in inst.stderr_text(),
                 "the write's first attempt to give up on the lock", 10)
        assert "r" not in done
    finally:
        held.rollback()
        held.close()
    th.join(20)
    assert done["r"].status == 200, done["r"].describe()
    assert done["r"].json()["rank"] == 1
    # Held for longer than every attempt: 503 with Retry-After, nothing stored.
    held = hold_archive_locks(db, gen, board["current_window"])
    try:
        r = submit(w, board["id"], "p2", 7)
        assert r.status == 503 and r.header("Retry-After"), r.describe()
    finally:
        held.rollback()
        held.close()
    assert db.query("SELECT count(*) FROM standings WHERE board_gen = %s AND player_id = 'p2'", (gen,))[0][0] == 0
    adm.close()
    w.close()


def board_rows(db, gen):
    """Rows of board generation `gen` left in each table a board's deletion empties."""
    out = {}
    for t in ("standings", "window_counts", "rank_buckets", "rank_supers", "archived_windows", "idempotency_keys",
              "daily_activity", "submissions", "board_purges", "log_purges", "hidden_players", "hidden_standings"):
        out[t] = db.query("SELECT count(*) FROM %s WHERE board_gen = %%s" % t, (gen,))[0][0]
    return out


def test_a_board_deletion_answers_at_once_and_its_rows_go_in_the_background(rankd_factory, db, redis_db):
    """Before: one statement deleted every standing of the board inside the request, which on a
    board of millions outlasts the statement timeout (the deletion failed). Now the request
    deletes the board's row and queues the rest; the upkeep leader removes it in bounded
    statements, and a purge interrupted by a restart goes on where it stopped. Here the request
    runs on an instance that never leads (nothing is purged), and 30,000 standings (more than one
    statement's batch) go only once a leader starts."""
    url, rcl = redis_db
    follower = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0"})
    adm, w = follower.client(ADMIN_KEY), follower.client(WRITE_KEY)
    b = create_board(adm)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
    r = batch(w, [{"board": b, "player_id": "p%d" % i, "score": i, "idempotency_key": "k%d" % i} for i in range(100)])
    assert r.status == 200
    assert adm.post("/v1/leaderboards/%s/players/p7/hide" % b).status == 204  # its hidden rows go too
    db.query("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)"
             " SELECT %s, DATE '1970-01-01', 'x' || i, i, -i, 0, NULL, nextval('standing_version')"
             " FROM generate_series(1, 30000) i", (gen,))
    assert adm.post("/v1/admin/refresh").status == 200
    assert any(k.startswith(b"rankd:{g%d}" % gen) for k in rcl.scan_iter(count=1000))
    assert adm.delete("/v1/leaderboards/" + b).status == 204
    assert follower.client().get("/v1/leaderboards/%s/entries" % b).status == 404
    assert follower.client().get("/v1/leaderboards/%s/players/p1" % b).status == 404
    left = board_rows(db, gen)
    assert left["board_purges"] == 1 and left["standings"] == 30099, left  # queued, not deleted in the request
    assert left["hidden_standings"] == 1 and left["hidden_players"] == 1, left
    # A board of the same id is a new one at once.
    assert create_board(adm, b)["players"] == 0
    leader = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"})
    wait_for(lambda: metric(leader, "rankd_upkeep_leader") == 1, "a leader", 10)
    wait_for(lambda: not any(board_rows(db, gen).values()), "every row of the deleted board gone", 60)
    assert not any(k.startswith(b"rankd:{g%d}" % gen) for k in rcl.scan_iter(count=1000))
    adm.close()
    w.close()


def test_a_deleted_boards_redis_keys_go_even_if_redis_was_down_when_it_was_deleted(rankd_factory, db,
                                                                                   private_redis):
    """Before: the deletion's one sweep of Redis, in the request, was all there was: keys of a
    board deleted while Redis did not answer stayed for ever."""
    inst = rankd_factory(redis=private_redis.url(0), env={"RANKD_REFRESH_INTERVAL_S": "1"})
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    b = create_board(adm)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
    submit_ok(w, b, "p1", 5)
    rcl = private_redis.client()
    wait_for(lambda: rcl.exists("rankd:{g%d}:0:ready5" % gen), "the window in Redis")
    os.kill(private_redis.proc.pid, signal.SIGSTOP)  # it answers nothing, and keeps its keys
    try:
        assert adm.delete("/v1/leaderboards/" + b).status == 204
        wait_for(lambda: board_rows(db, gen)["standings"] == 0 and board_rows(db, gen)["submissions"] == 0,
                 "the rows gone while Redis does not answer", 30)
        assert board_rows(db, gen)["board_purges"] == 1  # the Redis keys still to go
    finally:
        os.kill(private_redis.proc.pid, signal.SIGCONT)
    wait_for(lambda: board_rows(db, gen)["board_purges"] == 0, "the purge done", 30)
    assert not list(rcl.scan_iter(match="rankd:{g%d}:*" % gen))
    adm.close()
    w.close()


def test_each_folded_item_of_a_batch_reports_a_rank_consistent_with_its_own_score(rankd_factory):
    """Two `latest` submissions of one player in one batch: each answers its own score, and the
    rank that score has in the committed window (the player's own final standing set aside).
    Before: the first answered its score with the final standing's rank. The same for `best`
    items that an earlier one of the batch beat."""
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    latest = create_board(adm, operator="latest")["id"]
    r = batch(w, [{"board": latest, "player_id": "p", "score": 10}, {"board": latest, "player_id": "q", "score": 15},
                  {"board": latest, "player_id": "p", "score": 20}])
    got = [(x["player_id"], x["score"], x["rank"]) for x in r.json()["results"]]
    assert got == [("p", 10, 2), ("q", 15, 2), ("p", 20, 1)], got
    best = create_board(adm, operator="best")["id"]
    r = batch(w, [{"board": best, "player_id": "q", "score": 25}, {"board": best, "player_id": "p", "score": 20},
                  {"board": best, "player_id": "p", "score": 10}, {"board": best, "player_id": "p", "score": 30}])
    got = [(x["player_id"], x["score"], x["rank"], x["updated"]) for x in r.json()["results"]]
    assert got == [("q", 25, 2, True), ("p", 20, 2, True), ("p", 20, 2, False), ("p", 30, 1, True)], got
    adm.close()
    w.close()


def test_a_write_whose_rank_cannot_be_read_is_never_answered_rank_0(rankd_factory, db):
    """No Redis, and the rank query after the commit fails (here: its function made to fail):
    the submission is stored, and its answer is 503 saying so. Before: 200 with "rank": 0."""
    inst = rankd_factory(redis=False)
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    b = create_board(adm)["id"]
    sig = "bigint, date, bigint, bigint, text"
    db.query("ALTER FUNCTION rankd_rank_before(%s) RENAME TO rankd_rank_before_kept" % sig)
    try:
        db.query("CREATE FUNCTION rankd_rank_before(g bigint, w date, sk bigint, ms bigint, p text) RETURNS bigint"
                 " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'rank unreadable (test)'; END $$")
        r = submit(w, b, "p1", 5)
        assert r.status == 503 and "stored" in r.json()["error"]["message"], r.describe()
        r = batch(w, [{"board": b, "player_id": "p2", "score": 6}])
        assert r.json()["results"][0]["error"]["code"] == "unavailable", r.describe()
    finally:
        db.query("DROP FUNCTION IF EXISTS rankd_rank_before(%s)" % sig)
        db.query("ALTER FUNCTION rankd_rank_before_kept(%s) RENAME TO rankd_rank_before" % sig)
    assert sorted(db.board_standings(b)) == [("p1", 5), ("p2", 6)]  # stored all the same
    r = inst.client().get("/v1/leaderboards/%s/players/p1" % b)
    assert r.status == 200 and r.json()["rank"] == 2, r.describe()
    adm.close()
    w.close()


def test_archive_and_retention_refuse_to_act_while_the_leaders_clock_is_off(rankd_factory, db, tmp_root):
    """The upkeep leader's clock runs three days ahead of PostgreSQL's (a host without NTP). By its
    clock today's window of a daily board closed long ago: it would archive it (every later
    submission refused, 409) and age it out. Archive and retention refuse while the clocks
    disagree by more than retention.max_clock_skew_ms, say so, and act once the clock is right."""
    clock = os.path.join(tmp_root, "skewed-clock-%d" % os.getpid())
    with open(clock, "w") as f:
        f.write("0 %d" % (3 * 86400000))  # no simulated time; the host's clock 3 days ahead
    leader = rankd_factory(env={"RANKD_TEST_CLOCK_FILE": clock, "RANKD_REFRESH_INTERVAL_S": "1",
                                "RANKD_RETENTION_WINDOWS": "1"})
    other = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0"})  # right clock, never leads
    wait_for(lambda: metric(leader, "rankd_upkeep_leader") == 1, "the skewed instance to lead", 10)
    adm, w = other.client(ADMIN_KEY), other.client(WRITE_KEY)
    board = create_board(adm, reset="daily")
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (board["id"],))[0][0]
    submit_ok(w, board["id"], "p1", 5)
    refused = lambda job: series(leader, "rankd_upkeep_runs_total", step=job, outcome="refused")
    wait_for(lambda: refused("archive") >= 2 and refused("retention") >= 2, "archive and retention refused", 15)
    skew = metric(leader, "rankd_clock_skew_ms")
    assert abs(skew - 3 * 86400000) < 5000, skew
    assert db.query("SELECT count(*) FROM archived_windows WHERE board_gen = %s", (gen,))[0][0] == 0
    r = submit(w, board["id"], "p2", 6)
    assert r.status == 200, r.describe()  # the live window is not archived
    assert "refused: this host's clock is" in leader.stderr_text()
    with open(clock + ".tmp", "w") as f:
        f.write("0 0")
    os.replace(clock + ".tmp", clock)
    ok = series(leader, "rankd_upkeep_runs_total", step="archive", outcome="ok")
    wait_for(lambda: series(leader, "rankd_upkeep_runs_total", step="archive", outcome="ok") > ok, "archive runs again", 15)
    assert db.query("SELECT count(*) FROM archived_windows WHERE board_gen = %s", (gen,))[0][0] == 0
    assert sorted(db.board_standings(board["id"])) == [("p1", 5), ("p2", 6)]
    adm.close()
    w.close()


def test_a_board_made_just_before_its_first_reset_rolls_over(rankd_factory, tmp_root, db, redis_db):
    """The leader read its list of boards every refresh.interval_s and rolled over only the boards
    it knew: one made within that of its first reset was never warmed nor loaded at it. The list is
    read again at every UTC midnight crossed."""
    clock = os.path.join(tmp_root, "clock-first-reset-%d" % os.getpid())
    tomorrow = dt.datetime.combine(dt.datetime.utcnow().date() + dt.timedelta(days=1), dt.time())
    def set_clock(t):
        with open(clock + ".tmp", "w") as f:
            f.write(str(int((t - dt.datetime.utcnow()).total_seconds() * 1000)))
        os.replace(clock + ".tmp", clock)
    set_clock(tomorrow - dt.timedelta(seconds=30))
    inst = rankd_factory(env={"RANKD_TEST_CLOCK_FILE": clock, "RANKD_REFRESH_INTERVAL_S": "60"})
    wait_for(lambda: metric(inst, "rankd_upkeep_leader") == 1, "the instance to lead", 10)
    adm = inst.client(ADMIN_KEY)
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (create_board(adm, reset="daily")["id"],))[0][0]
    set_clock(tomorrow + dt.timedelta(seconds=1))
    # The rollover loads the new window into Redis (nothing reads it here).
    day = (tomorrow.date() - dt.date(1970, 1, 1)).days
    wait_for(lambda: redis_db[1].exists("rankd:{g%d}:%d:ready5" % (gen, day)), "the new board's first rollover", 10)
    adm.close()


def test_a_board_purge_finishes_when_its_steps_outlast_the_statement_timeout(rankd_factory, db):
    """Before: each purge step deleted 5,000 standings (and the log four parts at a time) in one
    statement, whatever the statement timeout: where one step takes longer, it was cancelled
    every round, for ever (`purging a board's standings failed: canceling statement due to
    statement timeout`, and `upkeep job log_purge failed`). Now a step that times out is halved
    and the purge goes on, and each step's cost is what it removes (not the board's size: a bitmap
    scan of every entry of the board, 10-40 ms here), and /metrics says how many rows are left.
    Here 200,000 standings and 400,000 log rows of a board deleted, purged by a leader whose
    statements may take 10 ms."""
    follower = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0"})
    adm, w = follower.client(ADMIN_KEY), follower.client(WRITE_KEY)
    b = create_board(adm)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
    submit_ok(w, b, "p0", 1)
    n = 200000
    db.query("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)"
             " SELECT %s, win, 'x' || i, i, -i, 0, NULL, nextval('standing_version')"
             " FROM generate_series(1, %s) i, (SELECT win FROM window_counts WHERE board_gen = %s) w",
             (gen, n, gen))
    db.query("INSERT INTO submissions (board_gen, win, player_id, score, metadata, updated, received_at)"
             " SELECT %s, win, 'x' || (i / 2), i, NULL, true, now()"
             " FROM generate_series(2, %s) i, (SELECT win FROM window_counts WHERE board_gen = %s) w",
             (gen, 2 * n + 1, gen))
    db.query("UPDATE window_counts SET players = players + %s, submissions = submissions + %s WHERE board_gen = %s",
             (n, 2 * n, gen))
    keep = create_board(adm)["id"]
    for i in range(50):
        submit_ok(w, keep, "k%d" % i, i)
    keep_gen = db.query("SELECT gen FROM boards WHERE id = %s", (keep,))[0][0]
    primary = ("standings", "window_counts", "submissions", "idempotency_keys")  # (the leader makes the others)
    kept = {t: board_rows(db, keep_gen)[t] for t in primary}
    assert adm.delete("/v1/leaderboards/" + b).status == 204
    leader = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"},
                           extra_config={"postgres": {"statement_timeout_ms": 10}})
    wait_for(lambda: metric(leader, "rankd_upkeep_leader") == 1, "a leader", 20)
    seen = {"standings": [], "submissions": []}

    def gone():
        for t in seen:
            v = series(leader, "rankd_purge_rows_left", table=t)
            if v is not None:
                seen[t].append(v)
        return not any(board_rows(db, gen).values())
    wait_for(gone, lambda: "every row of the deleted board gone; left %s" % board_rows(db, gen), 120, every=0.2)
    for t in seen:
        wait_for(lambda: series(leader, "rankd_purge_rows_left", table=t) == 0, "no %s row left in /metrics" % t, 20)
        # What is left only goes down (it is counted from the rows each step removed).
        assert seen[t] == sorted(seen[t], reverse=True), (t, seen[t])
    # The other board's rows, in the same tables and partitions, are all there.
    assert {t: board_rows(db, keep_gen)[t] for t in primary} == kept
    adm.close()
    w.close()
