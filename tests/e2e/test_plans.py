"""The plans of the writer's statements hold up as the tables grow (issue 33). The writer forces
generic plans (planning cost more than running), and a generic plan is made once per connection,
often while a board's window is still empty: on a fresh database it stays until something
invalidates it. Each statement here is prepared as the writer prepares it, planned on an empty
copy of its table, then run against 20,000 rows of one window: it must still probe by primary key.

Before: the read of a batch's standings (`player_id = ANY($3)`) took standings_rank on
(board_gen, win) with player_id as a filter, reading the whole window for every batch: a first
bulk load of 100,000 players by scores:batch took 81.8 s here, each batch slower than the last
(0.3 s, then 1.6 s); after, 21.8 s, the same as a second board's 21.3 s."""
import os
import re

import pytest

from conftest import REPO


def c_string(name):
    """The text of `const char NAME[] = "..." "...";` in src/store/write_sql.c, as C compiles it."""
    src = open(os.path.join(REPO, "src", "store", "write_sql.c")).read()
    m = re.search(r"const char %s\[\] =\s*((?:\"(?:[^\"\\\\]|\\\\.)*\"\s*)+);" % re.escape(name), src)
    assert m, name
    parts = re.findall(r"\"((?:[^\"\\\\]|\\\\.)*)\"", m.group(1))
    return "".join(p.replace('\\"', '"').replace("\\\\", "\\") for p in parts)


def test_the_read_of_a_batch_probes_standings_by_primary_key_whatever_the_plan_was_made_on(db):
    sql = c_string("ws_read_sql")
    conn = db.connect()
    conn.autocommit = False
    try:
        cur = conn.cursor()
        # An empty copy of standings, with its indexes and no statistics, in front of the real one.
        cur.execute("CREATE TEMP TABLE standings (LIKE public.standings INCLUDING INDEXES) ON COMMIT DROP")
        cur.execute("SET LOCAL plan_cache_mode TO force_generic_plan")  # as the writer does
        cur.execute("PREPARE w_read(bigint, date, text[]) AS " + sql)
        for _ in range(3):
            cur.execute("EXECUTE w_read(7, '2026-11-25', ARRAY['p1', 'p2'])")
        cur.execute("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, version)"
                    " SELECT 7, DATE '2026-11-25', 'p' || i, i, -i, 0, i FROM generate_series(1, 20000) i")
        cur.execute("EXPLAIN (ANALYZE, COSTS OFF) EXECUTE w_read(7, '2026-11-25', ARRAY['p1', 'p2', 'p3'])")
        plan = "\n".join(r[0] for r in cur.fetchall())
        assert "pkey" in plan, plan
        assert "Rows Removed by Filter" not in plan and "standings_rank" not in plan, plan
        cur.execute("EXECUTE w_read(7, '2026-11-25', ARRAY['p1', 'p2', 'p3', 'nobody'])")
        assert sorted(r[2] for r in cur.fetchall()) == ["p1", "p2", "p3"]
    finally:
        conn.rollback()
        conn.close()


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


@pytest.mark.parametrize("name,types,args", [
    ("rankd_players", "bigint, date, text[]", "7, '2026-11-25', ARRAY['p1', 'p2', 'p3']"),
    ("rankd_around", "bigint, date, text, int, int", "7, '2026-11-25', 'p10000', 2, 2"),
])
def test_a_read_of_named_players_probes_standings_by_primary_key_whatever_the_plan_was_made_on(db, name, types, args):
    """GET …/players?ids= and …/players/{p}/around: the same trap as the writer's read, on the read
    path (a prepared statement may go generic after five runs, and a plan of an empty window stays).
    The named players are found by primary key, never by filtering the window."""
    sql = read_stmt(name)
    conn = db.connect()
    conn.autocommit = False
    try:
        cur = conn.cursor()
        cur.execute("CREATE TEMP TABLE standings (LIKE public.standings INCLUDING INDEXES) ON COMMIT DROP")
        cur.execute("SET LOCAL plan_cache_mode TO force_generic_plan")  # the worst the server may pick
        cur.execute("PREPARE r(%s) AS %s" % (types, sql))
        for _ in range(3):
            cur.execute("EXECUTE r(%s)" % args)
        cur.execute("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, version)"
                    " SELECT 7, DATE '2026-11-25', 'p' || i, i, -i, 0, i FROM generate_series(1, 20000) i")
        cur.execute("EXPLAIN (ANALYZE, COSTS OFF) EXECUTE r(%s)" % args)
        plan = "\n".join(r[0] for r in cur.fetchall())
        assert not re.search(r"Rows Removed by (Join )?Filter: [0-9]{3,}", plan), plan
    finally:
        conn.rollback()
        conn.close()
