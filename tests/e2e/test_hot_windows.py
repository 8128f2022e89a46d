"""Redis holds a board's current and previous windows only: a read of an older window is
answered from PostgreSQL, exactly, and never loads that window into Redis (it would stay there
for good); the current window is still answered from Redis."""
import datetime

from conftest import ADMIN_KEY, WRITE_KEY, create_board, now_ms, run_cli, submit_ok, wait_for


def counters(inst):
    cl = inst.client()
    try:
        text = cl.get("/metrics", key=ADMIN_KEY).body.decode()
    finally:
        cl.close()
    out = {}
    for line in text.splitlines():
        if line.startswith(("rankd_reads_", "rankd_redis_cold_reads_total")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_an_old_window_is_read_from_postgres_and_never_loaded_into_redis(rankd_factory, db, redis_db):
    url, rcl = redis_db
    inst = rankd_factory()
    # The board existed five days ago. Started again, the instance's upkeep leader knows it as
    # such: with the board's creation today in its list, it would retire the old window written
    # below as older than the board (a created_ms that never moves outside this test).
    b, gen = backdated_daily_board(inst, db)
    inst.stop()
    inst.start()
    adm, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()
    try:
        # Three days ago it had a window of its own. One transaction: the upkeep leader archives
        # a closed window it finds, and must find it whole.
        old = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=3)
        t = now_ms() - 3 * 86400000
        conn = db.connect()
        with conn, conn.cursor() as cur:
            for i, (player, score) in enumerate([("x", 30), ("y", 50), ("z", 40)]):
                cur.execute("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, version)"
                            " VALUES (%s, %s, %s, %s, %s, %s, nextval('standing_version'))",
                            (gen, old, player, score, -score, t + i))
            cur.execute("INSERT INTO window_counts (board_gen, win, players, submissions) VALUES (%s, %s, 3, 3)",
                        (gen, old))
            cur.execute("SELECT rankd_rank_buckets_build(%s, %s)", (gen, old))  # as the writer keeps them
        conn.close()
        before = counters(inst)  # nothing has read the board yet: its backdated definition is read now

        r = c.get("/v1/leaderboards/%s/entries?window=%s" % (b, old))
        assert r.status == 200, r.describe()
        assert [(e["rank"], e["player_id"], e["score"]) for e in r.json()["entries"]] == [
            (1, "y", 50), (2, "z", 40), (3, "x", 30)]
        assert r.json()["total"] == 3
        r = c.get("/v1/leaderboards/%s/players/z?window=%s" % (b, old))
        assert r.status == 200 and r.json()["rank"] == 2, r.describe()
        r = c.get("/v1/leaderboards/%s/players/x/around?window=%s&before=1&after=1" % (b, old))
        assert r.status == 200 and [e["player_id"] for e in r.json()["entries"]] == ["z", "x"], r.describe()
        after = counters(inst)
        assert after.get("rankd_redis_cold_reads_total", 0) == before.get("rankd_redis_cold_reads_total", 0), \
            "a read of the old window went to Redis (found it cold, asked for it to be loaded)"
        pg = [k for k in after if k.startswith("rankd_reads_postgres")]
        assert pg and sum(after[k] - before.get(k, 0) for k in pg) == 3, (before, after)
        old_day = (old - datetime.date(1970, 1, 1)).days
        assert list(rcl.scan_iter("rankd:{g%d}:%d:*" % (gen, old_day))) == [], "the old window went into Redis"

        # The current window is Redis's.
        submit_ok(w, b, "now", 7)
        r = c.get("/v1/leaderboards/%s/players/now" % b)
        assert r.status == 200 and r.json()["rank"] == 1, r.describe()
    finally:
        for x in (adm, w, c):
            x.close()


def backdated_daily_board(inst, db):
    """A daily board made through `inst`, then moved five days back: (id, generation)."""
    adm = inst.client(ADMIN_KEY)
    try:
        b = create_board(adm, reset="daily")["id"]
    finally:
        adm.close()
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
    db.query("UPDATE boards SET created_ms = created_ms - 5 * 86400000 WHERE gen = %s", (gen,))
    return b, gen


def test_rebuild_and_verify_cover_the_current_and_previous_windows(rankd_factory, db, redis_db):
    url, rcl = redis_db
    inst = rankd_factory()
    b, gen = backdated_daily_board(inst, db)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    yesterday = today - datetime.timedelta(days=1)
    db.query("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, version)"
             " VALUES (%s, %s, 'y1', 9, -9, %s, nextval('standing_version'))", (gen, yesterday, now_ms() - 86400000))
    db.query("INSERT INTO window_counts (board_gen, win, players, submissions) VALUES (%s, %s, 1, 1)", (gen, yesterday))
    db.query("SELECT rankd_rank_buckets_build(%s, %s)", (gen, yesterday))  # as the writer keeps them
    r = run_cli(["rebuild-cache", "--board", b], inst.config_path, env={"RANKD_REDIS_URL": url})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rebuilt %s window %s: 0 players" % (b, today) in r.stdout, r.stdout
    assert "rebuilt %s window %s: 1 players" % (b, yesterday) in r.stdout, r.stdout
    ydays = (yesterday - datetime.date(1970, 1, 1)).days
    assert rcl.exists("rankd:{g%d}:%d:ready5" % (gen, ydays))
    r = run_cli(["verify", "--board", b], inst.config_path, env={"RANKD_REDIS_URL": url})
    assert r.returncode == 0 and "0 difference(s)" in r.stdout, r.stdout + r.stderr
    # A difference in the previous window is found.
    rcl.delete("rankd:{g%d}:%d:z5" % (gen, ydays))
    r = run_cli(["verify", "--board", b], inst.config_path, env={"RANKD_REDIS_URL": url})
    assert r.returncode == 1, r.stdout + r.stderr



def test_the_leader_removes_the_keys_of_windows_older_than_the_previous(rankd_factory, db, redis_db):
    url, rcl = redis_db
    _, gen = backdated_daily_board(rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0"}), db)
    today = (datetime.datetime.now(datetime.timezone.utc).date() - datetime.date(1970, 1, 1)).days
    # Keys an older rankd left (it loaded any window it was asked for): three days back, and
    # the two Redis should keep.
    for day in (today - 3, today - 2):
        rcl.zadd("rankd:{g%d}:%d:z5" % (gen, day), {"m": 0})
        rcl.set("rankd:{g%d}:%d:ready5" % (gen, day), "1")
    for day in (today - 1, today):
        rcl.set("rankd:{g%d}:%d:ready5" % (gen, day), "1")
    # And an older layout's keys of a live window (an instance of the version before, during an
    # upgrade): nothing of this version reads them.
    rcl.zadd("rankd:{g%d}:%d:zs" % (gen, today), {"m": 0})
    rcl.set("rankd:{g%d}:%d:ready" % (gen, today), "1")
    other = "rankd:{g%d}:%d:ready5" % (gen + 1000000, today - 3)  # no such board: not ours to judge
    rcl.set(other, "1")
    rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"})  # the only instance that may lead

    def left():
        return sorted(k.decode() for k in rcl.scan_iter("rankd:{g%d}:*" % gen))

    want = ["rankd:{g%d}:%d:ready5" % (gen, today - 1), "rankd:{g%d}:%d:ready5" % (gen, today)]
    wait_for(lambda: left() == want, "only the two live windows' keys of this layout left", 10)
    assert rcl.exists(other)
    rcl.delete(other)
