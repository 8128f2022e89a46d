"""The submission log's layout (migration 0004): each month split 32 ways by a hash of the
player and no B-tree index (only migration 0012's block range index on received_at), so that a
write pays no index entry for its log row and erasing a player
reads one part in 32 of each month. Checked in PostgreSQL's catalog and plans, through the API,
and across the migration of a database whose log holds rows in the old form."""
import os
import re
import shutil
import signal
import time

import psycopg2

from conftest import (ADMIN_KEY, MIGRATIONS_DIR, WRITE_KEY, create_board, free_port, make_config, run_cli, submit_ok,
                      to_yaml, unique, wait_for)


def log_parts(db):
    """{month partition: sorted hash bounds of its parts} for every partition of `submissions`."""
    rows = db.query(
        "SELECT m.relname, pg_get_expr(m.relpartbound, m.oid), p.relname, pg_get_expr(p.relpartbound, p.oid)"
        " FROM pg_inherits i JOIN pg_class m ON m.oid = i.inhrelid"
        " LEFT JOIN pg_inherits j ON j.inhparent = m.oid LEFT JOIN pg_class p ON p.oid = j.inhrelid"
        " WHERE i.inhparent = 'submissions'::regclass")
    parts = {}
    for month, bound, part, part_bound in rows:
        parts.setdefault((month, bound), [])
        if part is not None:
            parts[(month, bound)].append((part, part_bound))
    return parts


def assert_split_months(db):
    parts = log_parts(db)
    months = [k for k in parts if k[1] != "DEFAULT"]
    assert len(months) >= 3, parts
    for (month, _), children in parts.items():
        if month == "submissions_default":
            assert children == []
            continue
        assert sorted(children) == sorted(
            ("%s_p%02d" % (month, i), "FOR VALUES WITH (modulus 32, remainder %d)" % i) for i in range(32)), month
    # The month being written has no B-tree of keyed rows: its one such index is a block range index on received_at
    # (migration 0012), which a write into a range not yet summarized leaves alone and daily
    # activity reads recent days by. A finished month's parts may also have the upkeep leader's
    # (board_gen, player_id) index (upkeep_index_log_months).
    indexes = db.query("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'submissions%%'")
    assert indexes, indexes
    this_month = time.strftime("submissions_%Y_%m", time.gmtime())
    for table, name, d in indexes:
        if "USING brin (received_at)" in d:
            continue
        # The partial indexes of migration 0026 hold token rows and flagged rows only: a keyed
        # write adds no entry to them (the client rules' reads, and /flagged).
        if "WHERE (auth_by ~~ 'token:%'::text)" in d or "WHERE (flagged IS NOT NULL)" in d:
            continue
        assert name == table + "_player" and "USING btree (board_gen, player_id)" in d, (table, name, d)
        assert table[:len("submissions_YYYY_MM")] < this_month, (table, "a month being written has a B-tree")


def test_each_month_of_the_log_is_split_by_player(db):
    assert_split_months(db)
    conn = db.connect()
    cur = conn.cursor()
    cur.execute("SET TimeZone = 'America/New_York'")  # months are UTC months whatever the session's zone
    cur.execute("SELECT rankd_ensure_partitions(TIMESTAMPTZ '2031-01-01 02:00:00+00', 2)")
    assert cur.fetchone()[0] == 2
    cur.execute("SELECT rankd_ensure_partitions(TIMESTAMPTZ '2031-01-01 02:00:00+00', 2)")
    assert cur.fetchone()[0] == 0
    conn.close()
    bounds = {m: b for m, b in log_parts(db) if m in ("submissions_2031_01", "submissions_2031_02")}
    assert bounds == {
        "submissions_2031_01": "FOR VALUES FROM ('2031-01-01 00:00:00+00') TO ('2031-02-01 00:00:00+00')",
        "submissions_2031_02": "FOR VALUES FROM ('2031-02-01 00:00:00+00') TO ('2031-03-01 00:00:00+00')"}, bounds
    assert_split_months(db)


def test_erasing_a_player_reads_one_part_of_each_month(admin, writer, db):
    bid = create_board(admin)["id"]
    players = ["p%02d" % i for i in range(40)]
    for i, p in enumerate(players):
        submit_ok(writer, bid, p, 100 + i)
        submit_ok(writer, bid, p, 200 + i)
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (bid,))[0][0]
    before = dict(db.query("SELECT player_id, count(*) FROM submissions WHERE board_gen = %s GROUP BY 1", (gen,)))
    assert before == {p: 2 for p in players}

    plan = [r[0] for r in db.query("EXPLAIN (COSTS OFF) DELETE FROM submissions"
                                   " WHERE board_gen = %s AND player_id = 'p07'", (gen,))]
    # A scan of the part, or of its index where the month is finished (upkeep_index_log_months).
    scanned = sorted(m.group(1) for m in (re.search(r"(?:Seq Scan on|Bitmap Heap Scan on|Index Scan using \S+ on) (\S+)",
                                                    line) for line in plan) if m)
    months = sorted(m for m, b in log_parts(db) if b != "DEFAULT")
    assert len(scanned) == len(months), plan  # one part per month (0006 dropped the default partition)
    assert [s.rsplit("_p", 1)[0] for s in scanned] == months, plan
    assert len({s.rsplit("_p", 1)[1] for s in scanned}) == 1, plan  # the same part of each

    assert admin.delete("/v1/leaderboards/%s/players/p07" % bid).status == 204
    after = dict(db.query("SELECT player_id, count(*) FROM submissions WHERE board_gen = %s GROUP BY 1", (gen,)))
    assert after == {p: 2 for p in players if p != "p07"}


def test_migration_moves_the_log_into_the_new_form(pg_server, tmp_root):
    """A database migrated up to 0003 with rows in the log (in two months and in the default
    partition) keeps every row, byte for byte, when 0004 and 0006 are applied; the months are
    split, the index is gone, and so is the default partition (its row in a month of its own)."""
    name = unique("rankd_mig").replace("-", "_")
    admin = psycopg2.connect(pg_server.dsn("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute('CREATE DATABASE "%s" OWNER rankd' % name)
    admin.close()
    old_dir = os.path.join(tmp_root, name + "-migrations")
    os.mkdir(old_dir)
    for f in sorted(os.listdir(MIGRATIONS_DIR)):
        if f.endswith(".sql") and f < "0004":
            shutil.copy(os.path.join(MIGRATIONS_DIR, f), old_dir)
    dsn = pg_server.dsn(name)
    config = os.path.join(tmp_root, name + ".yaml")
    with open(config, "w") as f:
        f.write(to_yaml(make_config(free_port(), dsn)))
    r = run_cli(["migrate", "up"], config, env={"RANKD_POSTGRES_PRIMARY": dsn, "RANKD_MIGRATIONS_DIR": old_dir})
    assert r.returncode == 0, r.stdout + r.stderr

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'submissions_player'")
    assert cur.fetchone()[0] == 1  # the old form
    cur.execute("INSERT INTO submissions (board_gen, win, player_id, score, metadata, updated, received_at)"
                " SELECT 1 + i % 3, DATE '1970-01-01', 'player-' || i, i * 7, CASE WHEN i % 5 = 0 THEN '{\"m\":1}' END,"
                "        i % 2 = 0, date_trunc('month', now()) + (i % 2) * interval '1 month' + i * interval '1 second'"
                " FROM generate_series(1, 3000) AS i")
    cur.execute("INSERT INTO submissions VALUES (9, DATE '1990-01-01', 'old', 1, NULL, true, '1990-01-01 00:00:00+00')")
    rows_sql = "SELECT board_gen, win, player_id, score, metadata, updated, received_at FROM submissions ORDER BY 3, 7"
    cur.execute(rows_sql)
    before = cur.fetchall()
    assert len(before) == 3001

    r = run_cli(["migrate", "up"], config, env={"RANKD_POSTGRES_PRIMARY": dsn})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "applied 0004_submissions_by_player_hash.sql" in r.stdout
    assert "applied 0006_archives.sql" in r.stdout
    cur.execute(rows_sql)
    assert cur.fetchall() == before
    # 0006 moved the default partition's row into a month of its own, and dropped it.
    cur.execute("SELECT to_regclass('submissions_default'), (SELECT count(*) FROM submissions_1990_01)")
    assert cur.fetchone() == (None, 1)

    class Db:
        @staticmethod
        def query(sql, args=None):
            cur.execute(sql, args)
            return cur.fetchall()
    assert_split_months(Db)
    r = run_cli(["migrate", "verify"], config, env={"RANKD_POSTGRES_PRIMARY": dsn})
    assert r.returncode == 0, r.stdout + r.stderr
    conn.close()


def log_rows(db, gen):
    return db.query("SELECT count(*) FROM submissions WHERE board_gen = %s", (gen,))[0][0]


def test_a_deleted_boards_log_is_purged_a_few_parts_at_a_time(module_rankd_factory, db):
    """rankd_purge_log removes a queued board's rows from at most `parts` partitions per call,
    resuming where it stopped, and leaves other boards' rows alone. rankd no longer calls it (the
    leader purges a range of blocks per statement, store/purge.c); it stays for an older instance
    leading during an upgrade, and starts each partition after the one it finished from its first
    block (migration 0023)."""
    for other in module_rankd_factory.instances:  # it leads the upkeep, which purges the log each second
        other.stop(signal.SIGTERM, 10)
    gens = [900001, 900002, 900003]
    db.query("INSERT INTO submissions (board_gen, win, player_id, score, metadata, updated, received_at)"
             " SELECT g, DATE '1970-01-01', 'pp' || i, i, NULL, true, now() - (i %% 2) * interval '1 second'"
             " FROM unnest(%s::bigint[]) AS g, generate_series(1, 400) AS i", (gens,))
    db.query("SELECT rankd_ensure_partitions('1990-01-01', 1)")
    db.query("INSERT INTO submissions VALUES (900001, DATE '1970-01-01', 'x', 1, NULL, true, '1990-01-01')")
    assert [log_rows(db, g) for g in gens] == [401, 400, 400]
    db.query("INSERT INTO log_purges (board_gen, next_block) VALUES (900001, 7), (900002, 0)")
    leaves = db.query("SELECT count(*) FROM pg_partition_tree('submissions') WHERE isleaf")[0][0]
    calls, purged = 0, []
    while True:
        n = db.query("SELECT rankd_purge_log(5)")[0][0]
        calls += 1
        assert 0 <= n <= 5
        purged.append(n)
        if n < 5:
            break
        assert calls < 100
    assert sum(purged) == 2 * leaves  # every part once per board, the first one whole
    assert [log_rows(db, g) for g in gens] == [0, 0, 400]
    assert db.query("SELECT count(*) FROM log_purges")[0][0] == 0
    assert db.query("SELECT rankd_purge_log(5)")[0][0] == 0


def test_deleting_a_board_leaves_its_log_to_the_refresh_worker(rankd_factory, module_rankd_factory, db):
    """The delete answers at once and queues the board's log; an instance with no refresh
    worker leaves it queued, the next instance's worker removes it and nothing else."""
    for other in module_rankd_factory.instances:  # it leads the upkeep (every 60 s): let the new one lead
        other.stop(signal.SIGTERM, 10)
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0"})
    admin, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        keep, gone = create_board(admin)["id"], create_board(admin)["id"]
        for bid in (keep, gone):
            for i in range(30):
                submit_ok(w, bid, "p%02d" % i, i)
        gen = {b: db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0] for b in (keep, gone)}
        assert admin.delete("/v1/leaderboards/" + gone).status == 204
        assert db.query("SELECT board_gen FROM log_purges") == [(gen[gone],)]
        assert log_rows(db, gen[gone]) == 30
    finally:
        admin.close()
        w.close()
    inst.stop(signal.SIGTERM, 10)
    rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"})
    wait_for(lambda: not log_rows(db, gen[gone]) and not db.query("SELECT count(*) FROM log_purges")[0][0],
             "the deleted board's log to be purged", 15, every=0.2)
    assert log_rows(db, gen[keep]) == 30


def test_a_finished_month_is_indexed_by_player_and_a_deletion_reads_it_by_index(rankd_factory, db):
    """A year of log means a player's deletion scanned one 32nd of every month ever kept: the
    upkeep leader indexes each finished month's parts by (board_gen, player_id), CONCURRENTLY,
    and the deletion reads those by index; the month being written stays without one (issue 27)."""
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"})
    admin = inst.client(ADMIN_KEY)
    bid = create_board(admin)["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (bid,))[0][0]
    db.query("SELECT rankd_ensure_partitions(date_trunc('month', now()) - interval '2 months', 1)")
    old = time.strftime("submissions_%Y_%m", time.gmtime(time.time() - 62 * 86400))
    db.query("INSERT INTO submissions (board_gen, win, player_id, score, metadata, updated, received_at)"
             " SELECT %s, DATE '1970-01-01', 'q' || (i %% 20000), i, NULL, true,"
             "   date_trunc('month', now()) - interval '2 months' + i * interval '5 seconds'"
             " FROM generate_series(1, 400000) i", (gen,))
    db.query("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)"
             " VALUES (%s, DATE '1970-01-01', 'q7', 1, -1, 0, NULL, nextval('standing_version'))", (gen,))
    db.query("INSERT INTO window_counts (board_gen, win, players, submissions) VALUES (%s, DATE '1970-01-01', 1, 20)"
             " ON CONFLICT DO NOTHING", (gen,))  # as the writer keeps it with every standing
    wait_for(lambda: db.query("SELECT count(*) FROM pg_indexes WHERE tablename LIKE %s AND indexname LIKE '%%_player'",
                              (old + "_p%",))[0][0] == 32, "the finished month indexed", 30)
    assert_split_months(db)
    db.query("ANALYZE submissions")
    plan = "\n".join(r[0] for r in db.query("EXPLAIN (COSTS OFF) DELETE FROM submissions"
                                            " WHERE board_gen = %s AND player_id = 'q7'", (gen,)))
    assert re.search(r"Index Scan using %s_p\d\d_player|Bitmap Index Scan on %s_p\d\d_player" % (old, old), plan), plan
    assert admin.delete("/v1/leaderboards/%s/players/q7" % bid).status == 204
    assert db.query("SELECT count(*) FROM submissions WHERE board_gen = %s AND player_id = 'q7'", (gen,))[0][0] == 0
    assert log_rows(db, gen) == 400000 - 20
    admin.close()
