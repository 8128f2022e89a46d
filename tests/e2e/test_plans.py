"""The plans of the hot paths' lookups by player hold up as the tables grow (issue 33).

A prepared statement's generic plan is made once per connection and stays until something
invalidates it. Made on a table with no statistics (a new database, before autovacuum came by),
it cannot tell a lookup by primary key from a walk of the rank index, as both lead with (board,
window): it took either, or hashed the whole window. So the upkeep leader analyzes the hot tables
as soon as half of a table changed since its last statistics (upkeep_analyze), which invalidates
the cached plans; with statistics, the lookups take the primary key, which this file checks by
the rows each scan of standings produced.

Before: GET …/players/{p} read from PostgreSQL hashed the whole window, 50-100 ms a rank right
after a bulk load of 300,000 players, until autovacuum's analyze came by (20-40 s); the last
version of this file passed on it, as it looked only for rows removed by a filter."""
import os
import re

import pytest

from conftest import (ADMIN_KEY, REPO, WRITE_KEY, RankdFactory, batch, create_board, migrated_database, series, unique,
                      wait_for)


def c_string(name):
    """The text of `const char NAME[] = "..." "...";` in src/store/write_sql.c, as C compiles it."""
    src = re.sub(r"/\*.*?\*/", "", open(os.path.join(REPO, "src", "store", "write_sql.c")).read(), flags=re.S)
    lit = r'"(?:[^"\\]|\\.)*"'  # a C string literal, escapes and all
    m = re.search(r"const char %s\[\] =\s*((?:%s\s*)+);" % (re.escape(name), lit), src)
    assert m, name
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
    return "".join(p.replace('\\"', '"').replace("\\\\", "\\") for p in parts)


def planned_after_growth(db, sql, types, args, analyzed=True):
    """The EXPLAIN ANALYZE of `sql`, prepared (a generic plan, as the writer forces and the server
    may pick) on an empty copy of standings with its indexes, after 20,000 rows of one window
    arrived and, with `analyzed`, its statistics were made (as the upkeep leader does); and the
    rows the statement returns for `args`."""
    conn = db.connect()
    conn.autocommit = False
    try:
        cur = conn.cursor()
        cur.execute("CREATE TEMP TABLE standings (LIKE public.standings INCLUDING INDEXES) ON COMMIT DROP")
        cur.execute("SET LOCAL plan_cache_mode TO force_generic_plan")
        cur.execute("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, version)"
                    " SELECT 7, DATE '2026-11-25', 'p' || i, i, -i, 0, i FROM generate_series(1, 20000) i")
        if analyzed:
            cur.execute("ANALYZE standings")
        cur.execute("PREPARE r(%s) AS %s" % (types, sql))
        cur.execute("EXPLAIN (ANALYZE, COSTS OFF) EXECUTE r(%s)" % args)
        plan = "\n".join(r[0] for r in cur.fetchall())
        cur.execute("EXECUTE r(%s)" % args)
        return plan, cur.fetchall()
    finally:
        conn.rollback()
        conn.close()


def test_the_read_of_a_batch_probes_standings_by_primary_key(db):
    plan, rows = planned_after_growth(db, c_string("ws_read_sql"), "bigint, date, text[]",
                                      "7, '2026-11-25', ARRAY['p1', 'p2', 'p3', 'nobody']")
    assert "pkey" in plan, plan
    assert "Rows Removed by Filter" not in plan and "standings_rank" not in plan, plan
    assert standings_rows_read(plan) <= 1, plan
    assert sorted(r[2] for r in rows) == ["p1", "p2", "p3"]


def read_stmt(name):
    """The SQL of read statement `name` ("rankd_players") in src/store/queries.c, its macros of
    string literals expanded as C would."""
    src = re.sub(r"/\*.*?\*/", "", open(os.path.join(REPO, "src", "store", "queries.c")).read(), flags=re.S)
    lit = r"\"(?:[^\"\\\\]|\\\\.)*\""
    macros = {}
    for m in re.finditer(r"#define (\w+)\s+((?:(?:%s|\w+)\s*(?:\\\\\n\s*)?)+)\n" % lit, src):
        macros[m.group(1)] = m.group(2)

    def expand(text):
        out = []
        for tok in re.findall(r"%s|\w+" % lit, text):
            if tok.startswith('"'):
                out.append(tok[1:-1].replace('\\"', '"').replace("\\\\", "\\"))
            elif tok in macros:
                out.append(expand(macros[tok]))
        return "".join(out)
    m = re.search(r"\{\"%s\", \d+,\s*((?:(?:%s|\w+)\s*)+)\}" % (re.escape(name), lit), src)
    assert m, name
    return expand(m.group(1))


def standings_rows_read(plan):
    """The most rows any scan of `standings` in an EXPLAIN ANALYZE produced, in one of its loops:
    a plan that hashes or sorts the whole window reads it all there, and filters nothing (before,
    rankd_players did so: "Bitmap Heap Scan on standings ... rows=20000", which the filter check
    above did not see)."""
    most = 0
    for line in plan.splitlines():
        m = re.search(r"Scan (?:using \w+ )?on standings\b.*actual time=\S+ rows=(\d+)", line)
        if m:
            most = max(most, int(m.group(1)))
    return most


@pytest.mark.parametrize("name,types,args", [
    ("rankd_players", "bigint, date, text[]", "7, '2026-11-25', ARRAY['p1', 'p2', 'p3']"),
    ("rankd_around", "bigint, date, text, int, int", "7, '2026-11-25', 'p10000', 2, 2"),
])
def test_a_read_of_named_players_probes_standings_by_primary_key(db, name, types, args):
    """GET …/players?ids=, …/players/{p} from PostgreSQL and …/players/{p}/around: the named
    players are found by primary key, never by filtering, hashing or walking the window."""
    plan, _ = planned_after_growth(db, read_stmt(name), types, args)
    assert not re.search(r"Rows Removed by (Join )?Filter: [0-9]{3,}", plan), plan
    assert "pkey" in plan, plan
    assert standings_rows_read(plan) <= 10, plan


def without_autovacuum(database, *tables):
    """Autovacuum may analyze the tables first (the test server's databases come and go, so it
    visits a new one soon) and leave nothing for rankd to analyze: the CI failure of 2026-11-28."""
    for table in tables:
        database.query("ALTER TABLE %s SET (autovacuum_enabled = off)" % table)


def test_the_leader_makes_statistics_when_a_table_outgrew_its_own(tmp_root, pg_server):
    """On a new database, a table that half changed since its last statistics is analyzed by
    the upkeep leader within seconds (autovacuum comes by a minute apart at best), and the job is
    counted; a quiet table is left alone."""
    fresh = migrated_database(pg_server, "rankd_plans_analyze", tmp_root)
    without_autovacuum(fresh, "standings")
    factory = RankdFactory(tmp_root, fresh, None)
    try:
        inst = factory(redis=False, env={"RANKD_REFRESH_INTERVAL_S": "1"})

        def analyzed(table):
            return fresh.query("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", (table,))[0][0]
        wait_for(lambda: series(inst, "rankd_upkeep_runs_total", step="analyze", outcome="ok"), "the analyze job")
        assert analyzed("standings") is None  # empty: nothing to analyze
        board = create_board(inst.client(ADMIN_KEY), unique("an"))["id"]
        w = inst.client(WRITE_KEY)
        for k in range(2):
            r = batch(w, [{"board": board, "player_id": "a%d-%d" % (k, i), "score": i} for i in range(1000)])
            assert r.status == 200, r.describe()
        wait_for(lambda: "analyzed standings" in inst.stderr_text(), "standings analyzed by the leader", 30)
        assert analyzed("standings") is not None
        assert fresh.query("SELECT n_mod_since_analyze < 1000 FROM pg_stat_user_tables WHERE relname = 'standings'")[0][0]
    finally:
        factory.close()
        fresh.close()


def test_an_instance_that_never_leads_analyzes_what_it_wrote(tmp_root, pg_server):
    """With refresh.interval_s: 0 (the cron setup: no instance leads the upkeep) the writer's own
    instance analyzes the tables its writes grew (worker/analyzer.c), tournament entrants among
    them; without it a first load kept the plans made on empty tables (issue 49 item 15)."""
    fresh = migrated_database(pg_server, "rankd_plans_no_leader", tmp_root)
    factory = RankdFactory(tmp_root, fresh, None)
    try:
        without_autovacuum(fresh, "standings", "tournament_entrants")
        inst = factory(redis=False, env={"RANKD_REFRESH_INTERVAL_S": "0"})

        def analyzed(table):
            return fresh.query("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", (table,))[0][0]
        adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
        board = create_board(adm, unique("nl"))["id"]
        r = adm.post("/v1/leaderboards", json_body={"id": unique("nt"), "title": "t", "sort": "desc", "operator": "best",
                                                     "reset": "daily", "tournament": {"duration_s": 86400, "max_players": 100000}})
        assert r.status == 201, r.describe()
        tour = r.json()["id"]
        # One row first: the writer's backend reports its statistics when it goes idle after it,
        # and then keeps the next report (the big batches') for 10 s, PostgreSQL's
        # PGSTAT_IDLE_INTERVAL, because it reported less than a second before. The analyzer must
        # still be looking when those counts arrive.
        r = batch(w, [{"board": board, "player_id": "first", "score": 1}])
        assert r.status == 200, r.describe()
        for k in range(2):
            for b in (board, tour):
                r = batch(w, [{"board": b, "player_id": "a%d-%d" % (k, i), "score": i} for i in range(1000)])
                assert r.status == 200, r.describe()
        wait_for(lambda: analyzed("standings") is not None, lambda: "standings analyzed with no leader: %r" % (
            fresh.query("SELECT n_live_tup, n_mod_since_analyze, last_autoanalyze FROM pg_stat_user_tables"
                        " WHERE relname = 'standings'"),), 30)
        wait_for(lambda: analyzed("tournament_entrants") is not None, lambda: "tournament entrants analyzed: %r" % (
            fresh.query("SELECT n_live_tup, n_mod_since_analyze, schemaname FROM pg_stat_user_tables"
                        " WHERE relname = 'tournament_entrants'"),), 30)
        # last_analyze is a manual ANALYZE's (autovacuum's is last_autoanalyze): this instance's.
        wait_for(lambda: "analyzed tournament_entrants" in inst.stderr_text(), "the analyzer's log line", 10)
    finally:
        factory.close()
        fresh.close()


def test_the_writers_archive_lock_key_is_inlined(db):
    """Every write transaction takes its windows' archive locks. The key's SQL function was
    declared immutable over a stable body (`text || bigint`), so PostgreSQL ran it as a function
    call, parsing and planning its body in every transaction (0.1 ms of a lone submission's 2 ms
    of PostgreSQL time, issue 51): the plan must show the key's expression, not the call."""
    conn = db.connect()
    try:
        cur = conn.cursor()
        cur.execute("EXPLAIN VERBOSE " + c_string("ws_window_lock_sql").replace("$1::bigint[]", "'{7}'::bigint[]")
                    .replace("$2::date[]", "'{2026-11-25}'::date[]"))
        plan = "\n".join(r[0] for r in cur.fetchall())
        assert "hashtextextended" in plan and "rankd_archive_window_lock_key" not in plan, plan
        # a column, not a constant: a constant argument is folded before inlining is tried
        cur.execute("EXPLAIN VERBOSE SELECT rankd_archive_lock_key(g) FROM generate_series(7, 7) g")
        plan = "\n".join(r[0] for r in cur.fetchall())
        assert "rankd_archive_lock_key" not in plan, plan
        # the same keys as before: an archive of the previous version and a writer of this one
        # still exclude each other
        cur.execute("SELECT rankd_archive_window_lock_key(7, DATE '2026-11-25'), rankd_archive_lock_key(7),"
                    " hashtextextended('rankd archive 7 20782', 0), hashtextextended('rankd archive 7', 0)")
        a, b, a0, b0 = cur.fetchone()
        assert (a, b) == (a0, b0)
    finally:
        conn.close()


@pytest.mark.parametrize("buckets", [40, 4000])
def test_the_rank_bucket_counts_are_updated_by_primary_key(db, buckets):
    """The writer's bucket upkeep (ws_buckets_sql), planned generic under the writer's settings
    (ws_tx_settings_sql) whatever the tables held when the plan was made: each changed position
    finds and updates its bucket and super by primary key. Before (issue 51), the generic plan
    hashed-joined a seq scan of all of rank_buckets and rank_supers, every window of every board,
    to update the few a transaction changed: 0.39 ms of PostgreSQL time per lone submissions'
    transaction of 16, growing with the number of windows kept."""
    conn = db.connect()
    conn.autocommit = False
    try:
        cur = conn.cursor()
        for t in ("rank_buckets", "rank_supers"):
            cur.execute("CREATE TEMP TABLE %s (LIKE public.%s INCLUDING INDEXES) ON COMMIT DROP" % (t, t))
        cur.execute(c_string("ws_tx_settings_sql"))
        # buckets of 100 standings each, from below every position; a super every 20 buckets
        cur.execute("INSERT INTO rank_buckets (board_gen, win, lo_sk, lo_ms, lo_pid, n)"
                    " SELECT 7, DATE '2026-11-25', CASE WHEN i = 0 THEN -9223372036854775808 ELSE i * 100 END,"
                    " CASE WHEN i = 0 THEN -9223372036854775808 ELSE 0 END, '', 100"
                    " FROM generate_series(0, %d) i" % (buckets - 1))
        cur.execute("INSERT INTO rank_supers (board_gen, win, lo_sk, lo_ms, lo_pid, n)"
                    " SELECT 7, DATE '2026-11-25', CASE WHEN i = 0 THEN -9223372036854775808 ELSE i * 2000 END,"
                    " CASE WHEN i = 0 THEN -9223372036854775808 ELSE 0 END, '', 2000"
                    " FROM generate_series(0, %d) i" % ((buckets - 1) // 20))
        cur.execute("PREPARE b(bigint[], date[], bigint[], bigint[], text[], bigint[]) AS " + c_string("ws_buckets_sql"))
        # p1 moves from sort key 150 (bucket 100) to 1250 (bucket 1200); p2 arrives at 2550 (2500)
        args = ("'{7,7,7}', '{2026-11-25,2026-11-25,2026-11-25}', '{150,1250,2550}', '{5,5,5}',"
                " '{p1,p1,p2}', '{-1,1,1}'")
        cur.execute("EXPLAIN (ANALYZE, COSTS OFF) EXECUTE b(%s)" % args)
        plan = "\n".join(r[0] for r in cur.fetchall())
        assert not re.search(r"Seq Scan|Hash (Semi |Anti )?Join|Merge Join", plan), plan
        # EXPLAIN ANALYZE ran it: the counts moved
        cur.execute("SELECT lo_sk, n FROM rank_buckets WHERE n <> 100 ORDER BY lo_sk")
        assert cur.fetchall() == [(100, 99), (1200, 101), (2500, 101)]
        cur.execute("SELECT lo_sk, n FROM rank_supers WHERE n <> 2000 ORDER BY lo_sk")
        assert cur.fetchall() == [(2000, 2001)]
    finally:
        conn.rollback()
        conn.close()


def test_the_functions_a_write_calls_plan_with_the_servers_settings(db):
    """The writer turns hash joins, merge joins and seq scans off for its transaction (its own
    statements probe primary keys); a league window's settling and a re-cut, which it may call,
    do set-wide work and keep the server's settings (migrations/0027_writer_plans.sql)."""
    conn = db.connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT proname, proconfig FROM pg_proc"
                    " WHERE proname IN ('rankd_league_place', 'rankd_rank_buckets_recut_until') ORDER BY proname")
        got = cur.fetchall()
        assert [g[0] for g in got] == ["rankd_league_place", "rankd_rank_buckets_recut_until"]
        for name, config in got:
            assert {"enable_hashjoin=on", "enable_mergejoin=on", "enable_seqscan=on"} <= set(config or []), name
    finally:
        conn.close()

