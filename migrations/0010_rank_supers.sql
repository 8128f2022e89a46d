-- 0010_rank_supers.sql — a second level over the rank buckets: a rank in O(n^(1/3)) rows.
--
-- With 0009's buckets of sqrt(n) standings, a rank read about 2 sqrt(n) rows: 6,300 on a
-- 10,000,000-player window. Buckets now hold about n^(1/3) standings (at least
-- refresh.rank_bucket_rows), and `rank_supers` counts runs of consecutive buckets the same way:
-- each super is named by the position it starts at, always where a bucket starts, and holds
-- about sqrt(n x bucket target) standings, so about as many buckets as there are supers. A rank
-- is the counts of the supers before the player's, plus the counts of the buckets of that super
-- before the player's bucket, plus an index range count inside the bucket: about 3 n^(1/3)
-- rows, 650 at 10,000,000 (two sums of heap rows and one index-only count).
--
-- Invariants, true at every commit, kept under 0009's lock (a window's window_counts row):
--   * each super's n equals the standings in its range, as each bucket's does;
--   * each super starts where a bucket starts, and the first of each starts below every
--     position (made together by the writer and by rankd_rank_buckets_build).
-- The writer and a player's deletion count each delta into both levels in one statement
-- (ws_buckets_sql). A re-cut splits and merges buckets inside a super only, so a super never
-- straddles a bucket; it splits a super where one of its buckets starts.

SET LOCAL statement_timeout = 0;

CREATE TABLE rank_supers (
    board_gen   bigint NOT NULL,
    win         date NOT NULL,
    lo_sk       bigint NOT NULL,
    lo_ms       bigint NOT NULL,
    lo_pid      text COLLATE "C" NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (board_gen, win, lo_sk, lo_ms, lo_pid)
);
-- Writes update the super of each bucket they change, all the time: HOT updates, as rank_buckets.
ALTER TABLE rank_supers SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02,
                             autovacuum_vacuum_cost_delay = 0);

-- A bucket's standings: about n^(1/3), at least `min_rows`.
CREATE OR REPLACE FUNCTION rankd_rank_bucket_target(players bigint, min_rows bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT greatest(min_rows, floor(cbrt(greatest(players, 0)))::bigint) $$;

-- A super's standings, for buckets of `bucket_target`: as many buckets per super as supers
-- (sqrt(players x bucket_target)), and at least two buckets' worth, so that a super over twice
-- its target always has a bucket start to split at once its buckets are in shape.
CREATE FUNCTION rankd_rank_super_target(players bigint, bucket_target bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT greatest(2 * bucket_target, floor(sqrt(greatest(players, 0)::float8 * bucket_target))::bigint)
$$;

-- The standings of window (g, w) strictly before position (sk, ms, p): see the top of the file.
CREATE OR REPLACE FUNCTION rankd_rank_before(g bigint, w date, sk bigint, ms bigint, p text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s_sk bigint;
    s_ms bigint;
    s_pid text COLLATE "C";
    b_sk bigint;
    b_ms bigint;
    b_pid text COLLATE "C";
    supers bigint;
    buckets bigint;
    inside bigint;
BEGIN
    SELECT r.lo_sk, r.lo_ms, r.lo_pid INTO s_sk, s_ms, s_pid FROM rank_supers r
     WHERE r.board_gen = g AND r.win = w AND (r.lo_sk, r.lo_ms, r.lo_pid) <= (sk, ms, p COLLATE "C")
     ORDER BY r.lo_sk DESC, r.lo_ms DESC, r.lo_pid DESC LIMIT 1;
    IF NOT FOUND THEN -- a window with no standing: everything counts from the start
        s_sk := -9223372036854775808; s_ms := -9223372036854775808; s_pid := '';
    END IF;
    SELECT r.lo_sk, r.lo_ms, r.lo_pid INTO b_sk, b_ms, b_pid FROM rank_buckets r
     WHERE r.board_gen = g AND r.win = w AND (r.lo_sk, r.lo_ms, r.lo_pid) <= (sk, ms, p COLLATE "C")
     ORDER BY r.lo_sk DESC, r.lo_ms DESC, r.lo_pid DESC LIMIT 1;
    IF NOT FOUND THEN
        b_sk := s_sk; b_ms := s_ms; b_pid := s_pid;
    END IF;
    SELECT coalesce(sum(r.n), 0) INTO supers FROM rank_supers r
     WHERE r.board_gen = g AND r.win = w AND (r.lo_sk, r.lo_ms, r.lo_pid) < (s_sk, s_ms, s_pid);
    SELECT coalesce(sum(r.n), 0) INTO buckets FROM rank_buckets r
     WHERE r.board_gen = g AND r.win = w AND (r.lo_sk, r.lo_ms, r.lo_pid) >= (s_sk, s_ms, s_pid)
       AND (r.lo_sk, r.lo_ms, r.lo_pid) < (b_sk, b_ms, b_pid);
    SELECT count(*) INTO inside FROM standings x
     WHERE x.board_gen = g AND x.win = w
       AND (x.sort_key, x.achieved_ms, x.player_id) >= (b_sk, b_ms, b_pid)
       AND (x.sort_key, x.achieved_ms, x.player_id) < (sk, ms, p COLLATE "C");
    RETURN supers + buckets + inside;
END $$;

-- The bucket holding 0-based position `pos` of window (g, w), and how many standings come
-- before it; past the end, the last bucket (an offset read from it finds nothing); with no
-- bucket, the start. The super is found from the nearer end of the window, then the bucket
-- inside it from the super's start (enable_sort off: the generic plans would otherwise sort the
-- window's rows on each call).
CREATE OR REPLACE FUNCTION rankd_rank_bucket_at(g bigint, w date, pos bigint,
                                                OUT lo_sk bigint, OUT lo_ms bigint, OUT lo_pid text, OUT before bigint)
LANGUAGE plpgsql STABLE SET enable_sort = off AS $$
DECLARE
    r record;
    acc bigint := 0;
    total bigint;
    s_sk bigint;
    s_ms bigint;
    s_pid text COLLATE "C";
BEGIN
    lo_sk := -9223372036854775808; lo_ms := -9223372036854775808; lo_pid := ''; before := 0;
    SELECT c.players INTO total FROM window_counts c WHERE c.board_gen = g AND c.win = w;
    IF total IS NULL OR pos < total / 2 THEN
        FOR r IN SELECT s.lo_sk, s.lo_ms, s.lo_pid, s.n FROM rank_supers s WHERE s.board_gen = g AND s.win = w
                 ORDER BY s.lo_sk, s.lo_ms, s.lo_pid LOOP
            lo_sk := r.lo_sk; lo_ms := r.lo_ms; lo_pid := r.lo_pid; before := acc;
            acc := acc + r.n;
            EXIT WHEN acc > pos;
        END LOOP;
    ELSE -- from the end: `acc` counts the standings from each super on (window_counts.players
         -- is the sum of the counts, kept in the same transactions)
        FOR r IN SELECT s.lo_sk, s.lo_ms, s.lo_pid, s.n FROM rank_supers s WHERE s.board_gen = g AND s.win = w
                 ORDER BY s.lo_sk DESC, s.lo_ms DESC, s.lo_pid DESC LOOP
            acc := acc + r.n;
            lo_sk := r.lo_sk; lo_ms := r.lo_ms; lo_pid := r.lo_pid; before := total - acc;
            EXIT WHEN before <= pos;
        END LOOP;
        -- The first super has none before it, whatever a drifted total says (rankd verify).
        IF lo_sk = -9223372036854775808 AND lo_ms = -9223372036854775808 AND lo_pid = '' THEN
            before := 0;
        END IF;
    END IF;
    -- The super starts where a bucket does: walk its buckets.
    s_sk := lo_sk; s_ms := lo_ms; s_pid := lo_pid;
    acc := before;
    FOR r IN SELECT b.lo_sk, b.lo_ms, b.lo_pid, b.n FROM rank_buckets b WHERE b.board_gen = g AND b.win = w
               AND (b.lo_sk, b.lo_ms, b.lo_pid) >= (s_sk, s_ms, s_pid)
             ORDER BY b.lo_sk, b.lo_ms, b.lo_pid LOOP
        lo_sk := r.lo_sk; lo_ms := r.lo_ms; lo_pid := r.lo_pid; before := acc;
        acc := acc + r.n;
        EXIT WHEN acc > pos;
    END LOOP;
END $$;

-- A bucket or super of window (g, w), named by its level (1 bucket, 2 super) and its start.
CREATE TYPE rankd_rank_cut AS (lvl int, lo_sk bigint, lo_ms bigint, lo_pid text);

-- The buckets and supers of window (g, w) out of shape for bucket target `t` and super target
-- `st`: over twice their target (to split), or fitting in their predecessor within it (to merge
-- into it), except a bucket that starts a super (supers start where buckets start). Once the
-- buckets are in shape every super out of shape can change too (rankd_rank_super_target), so
-- a window is never listed for ever.
CREATE FUNCTION rankd_rank_misfits(g bigint, w date, t bigint, st bigint)
RETURNS SETOF rankd_rank_cut LANGUAGE sql STABLE AS $$
    SELECT 1, b.lo_sk, b.lo_ms, b.lo_pid FROM (
        SELECT r.lo_sk, r.lo_ms, r.lo_pid, r.n, s.n IS NOT NULL AS heads,
               lag(r.n) OVER (ORDER BY r.lo_sk, r.lo_ms, r.lo_pid) AS prev_n
          FROM rank_buckets r LEFT JOIN rank_supers s ON s.board_gen = g AND s.win = w
               AND s.lo_sk = r.lo_sk AND s.lo_ms = r.lo_ms AND s.lo_pid = r.lo_pid
         WHERE r.board_gen = g AND r.win = w) b
     WHERE b.n > 2 * t OR (NOT b.heads AND b.n + b.prev_n <= t)
    UNION ALL
    SELECT 2, s.lo_sk, s.lo_ms, s.lo_pid FROM (
        SELECT r.lo_sk, r.lo_ms, r.lo_pid, r.n, lag(r.n) OVER (ORDER BY r.lo_sk, r.lo_ms, r.lo_pid) AS prev_n
          FROM rank_supers r WHERE r.board_gen = g AND r.win = w) s
     WHERE s.n > 2 * st OR s.n + s.prev_n <= st
$$;

-- Re-cut window (g, w) towards buckets of `target` standings (and supers of
-- rankd_rank_super_target), at most `max_steps` changes in this transaction. What is out of
-- shape is found before the lock, from the last commit, so that the window's writers do not
-- wait for a scan of all its buckets; under the lock each one is read again and changed only
-- if it still is: a bucket over 2 x target gives its first `target` standings a bucket of their
-- own (one index read of `target` entries: its n is exact, so the rest is n - target); a super
-- over 2 x its target is split where the first of its buckets past that target starts; a
-- bucket or super that fits in its predecessor within the target joins it. Returns the changes.
DROP FUNCTION rankd_rank_buckets_recut(bigint, date, bigint, int);
CREATE FUNCTION rankd_rank_buckets_recut(g bigint, w date, target bigint, max_steps int) RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    steps int := 0;
    st bigint;
    todo rankd_rank_cut[];
    m rankd_rank_cut;
    cnt bigint;
    split_at boolean;
    acc bigint;
    b record;
    k record;
    prev record;
BEGIN
    SELECT rankd_rank_super_target(c.players, target) INTO st FROM window_counts c
     WHERE c.board_gen = g AND c.win = w;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    todo := ARRAY(SELECT x FROM rankd_rank_misfits(g, w, target, st) x ORDER BY x.lvl, x.lo_sk, x.lo_ms, x.lo_pid
                  LIMIT 4 * max_steps);
    IF cardinality(todo) = 0 THEN
        RETURN 0;
    END IF;
    -- No transaction commits a change to this window while the lock is held (0009's header).
    PERFORM 1 FROM window_counts c WHERE c.board_gen = g AND c.win = w FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    FOREACH m IN ARRAY todo LOOP
        EXIT WHEN steps >= max_steps;
        IF m.lvl = 1 THEN
            SELECT r.n INTO cnt FROM rank_buckets r WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) = (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C");
            CONTINUE WHEN NOT FOUND; -- merged away by an earlier step
            IF cnt > 2 * target THEN
                SELECT x.sort_key, x.achieved_ms, x.player_id INTO k FROM standings x
                 WHERE x.board_gen = g AND x.win = w
                   AND (x.sort_key, x.achieved_ms, x.player_id) >= (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C")
                 ORDER BY x.sort_key, x.achieved_ms, x.player_id OFFSET target LIMIT 1;
                CONTINUE WHEN NOT FOUND;
                -- Inside the bucket, as exact counts make it; a window whose standings go
                -- uncounted (retention deleting a window) must not get a bucket twice.
                CONTINUE WHEN EXISTS (SELECT 1 FROM rank_buckets r WHERE r.board_gen = g AND r.win = w
                    AND (r.lo_sk, r.lo_ms, r.lo_pid) > (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C")
                    AND (r.lo_sk, r.lo_ms, r.lo_pid) <= (k.sort_key, k.achieved_ms, k.player_id));
                UPDATE rank_buckets r SET n = target WHERE r.board_gen = g AND r.win = w
                   AND (r.lo_sk, r.lo_ms, r.lo_pid) = (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C");
                INSERT INTO rank_buckets VALUES (g, w, k.sort_key, k.achieved_ms, k.player_id, cnt - target);
                steps := steps + 1;
                CONTINUE;
            END IF;
            CONTINUE WHEN EXISTS (SELECT 1 FROM rank_supers s WHERE s.board_gen = g AND s.win = w
                                     AND (s.lo_sk, s.lo_ms, s.lo_pid) = (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C"));
            SELECT r.lo_sk, r.lo_ms, r.lo_pid, r.n INTO prev FROM rank_buckets r WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) < (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C")
             ORDER BY r.lo_sk DESC, r.lo_ms DESC, r.lo_pid DESC LIMIT 1;
            CONTINUE WHEN NOT FOUND;
            CONTINUE WHEN prev.n + cnt > target;
            DELETE FROM rank_buckets r WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) = (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C");
            UPDATE rank_buckets r SET n = r.n + cnt WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) = (prev.lo_sk, prev.lo_ms, prev.lo_pid);
            steps := steps + 1;
        ELSE
            SELECT r.n INTO cnt FROM rank_supers r WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) = (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C");
            CONTINUE WHEN NOT FOUND;
            IF cnt > 2 * st THEN
                -- The first bucket start at least `st` standings in: the super's first part
                -- ends there, if that is still inside the super (buckets over 2 x target may
                -- not have been split yet).
                acc := 0;
                split_at := false;
                FOR b IN SELECT r.lo_sk, r.lo_ms, r.lo_pid, r.n FROM rank_buckets r WHERE r.board_gen = g AND r.win = w
                           AND (r.lo_sk, r.lo_ms, r.lo_pid) >= (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C")
                         ORDER BY r.lo_sk, r.lo_ms, r.lo_pid LOOP
                    IF acc >= st THEN
                        k := b;
                        split_at := true;
                        EXIT;
                    END IF;
                    acc := acc + b.n;
                END LOOP;
                CONTINUE WHEN NOT split_at OR acc >= cnt;
                UPDATE rank_supers r SET n = acc WHERE r.board_gen = g AND r.win = w
                   AND (r.lo_sk, r.lo_ms, r.lo_pid) = (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C");
                INSERT INTO rank_supers VALUES (g, w, k.lo_sk, k.lo_ms, k.lo_pid, cnt - acc);
                steps := steps + 1;
                CONTINUE;
            END IF;
            SELECT r.lo_sk, r.lo_ms, r.lo_pid, r.n INTO prev FROM rank_supers r WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) < (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C")
             ORDER BY r.lo_sk DESC, r.lo_ms DESC, r.lo_pid DESC LIMIT 1;
            CONTINUE WHEN NOT FOUND;
            CONTINUE WHEN prev.n + cnt > st;
            DELETE FROM rank_supers r WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) = (m.lo_sk, m.lo_ms, m.lo_pid COLLATE "C");
            UPDATE rank_supers r SET n = r.n + cnt WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) = (prev.lo_sk, prev.lo_ms, prev.lo_pid);
            steps := steps + 1;
        END IF;
    END LOOP;
    RETURN steps;
END $$;

-- The windows with a bucket or super out of shape for `min_rows`, each with its bucket target.
CREATE OR REPLACE FUNCTION rankd_rank_buckets_drifted(min_rows bigint)
RETURNS TABLE (board_gen bigint, win date, target bigint) LANGUAGE sql STABLE AS $$
    SELECT c.board_gen, c.win, t.t
      FROM window_counts c CROSS JOIN LATERAL (SELECT rankd_rank_bucket_target(c.players, min_rows) AS t) t
     -- An archived window is read from its archive, and retention deletes its standings
     -- in batches without counting them out: its buckets are left alone until they go.
     WHERE NOT EXISTS (SELECT 1 FROM archived_windows a WHERE a.board_gen = c.board_gen AND a.win = c.win)
       AND EXISTS (SELECT 1 FROM rankd_rank_misfits(c.board_gen, c.win, t.t, rankd_rank_super_target(c.players, t.t)))
$$;

-- What is wrong with window (g, w)'s buckets and supers: empty when the invariants hold
-- (`rankd verify`). A row per bucket or super (`level`) whose count is not the standings in
-- its range; a super that does not start where a bucket does (actual NULL); with lo NULL,
-- standings before the first bucket or super, or with none at all; and level 'players' when
-- window_counts.players (n) is not the window's standings (actual).
DROP FUNCTION rankd_rank_buckets_check(bigint, date);
CREATE FUNCTION rankd_rank_buckets_check(g bigint, w date)
RETURNS TABLE (level text, lo_sk bigint, lo_ms bigint, lo_pid text, n bigint, actual bigint)
LANGUAGE sql STABLE AS $$
    WITH r AS (SELECT 'bucket' AS level, r.lo_sk, r.lo_ms, r.lo_pid, r.n FROM rank_buckets r
                WHERE r.board_gen = g AND r.win = w
               UNION ALL
               SELECT 'super', r.lo_sk, r.lo_ms, r.lo_pid, r.n FROM rank_supers r
                WHERE r.board_gen = g AND r.win = w),
         b AS (SELECT r.*, lead(r.lo_sk) OVER o AS hi_sk, lead(r.lo_ms) OVER o AS hi_ms,
                      lead(r.lo_pid) OVER o AS hi_pid
                 FROM r WINDOW o AS (PARTITION BY r.level ORDER BY r.lo_sk, r.lo_ms, r.lo_pid)),
         -- Each count reads its own range of the index and no more (a bound under an OR would
         -- not bound the index scan: every count would read to the end of the window).
         c AS (SELECT b.level, b.lo_sk, b.lo_ms, b.lo_pid, b.n,
                      CASE WHEN b.hi_sk IS NULL THEN
                          (SELECT count(*) FROM standings x WHERE x.board_gen = g AND x.win = w
                              AND (x.sort_key, x.achieved_ms, x.player_id) >= (b.lo_sk, b.lo_ms, b.lo_pid))
                      ELSE
                          (SELECT count(*) FROM standings x WHERE x.board_gen = g AND x.win = w
                              AND (x.sort_key, x.achieved_ms, x.player_id) >= (b.lo_sk, b.lo_ms, b.lo_pid)
                              AND (x.sort_key, x.achieved_ms, x.player_id) < (b.hi_sk, b.hi_ms, b.hi_pid))
                      END AS actual
                 FROM b)
    SELECT * FROM c WHERE c.n <> c.actual
    UNION ALL
    SELECT 'super', s.lo_sk, s.lo_ms, s.lo_pid, s.n, NULL FROM rank_supers s
     WHERE s.board_gen = g AND s.win = w AND NOT EXISTS (SELECT 1 FROM rank_buckets k
           WHERE k.board_gen = g AND k.win = w AND (k.lo_sk, k.lo_ms, k.lo_pid) = (s.lo_sk, s.lo_ms, s.lo_pid))
    UNION ALL
    SELECT l.level, NULL, NULL, NULL, 0, x.cnt FROM (VALUES ('bucket'), ('super')) AS l(level)
      LEFT JOIN LATERAL (SELECT r.lo_sk, r.lo_ms, r.lo_pid FROM r WHERE r.level = l.level
                          ORDER BY r.lo_sk, r.lo_ms, r.lo_pid LIMIT 1) f ON true
     CROSS JOIN LATERAL (SELECT CASE WHEN f.lo_sk IS NULL THEN
                                    (SELECT count(*) FROM standings x WHERE x.board_gen = g AND x.win = w)
                                ELSE
                                    (SELECT count(*) FROM standings x WHERE x.board_gen = g AND x.win = w
                                        AND (x.sort_key, x.achieved_ms, x.player_id) < (f.lo_sk, f.lo_ms, f.lo_pid))
                                END AS cnt) x
     WHERE x.cnt > 0
    UNION ALL
    -- The player count rankd_rank_bucket_at walks back from (an archived window's standings
    -- go in batches without being counted out).
    SELECT 'players', NULL, NULL, NULL, c.players, x.cnt FROM window_counts c
     CROSS JOIN LATERAL (SELECT count(*) AS cnt FROM standings x WHERE x.board_gen = g AND x.win = w) x
     WHERE c.board_gen = g AND c.win = w AND c.players <> x.cnt
       AND NOT EXISTS (SELECT 1 FROM archived_windows a WHERE a.board_gen = g AND a.win = w)
$$;

-- Cut window (g, w)'s buckets and supers afresh from its standings in one pass over its
-- index, and set its window_counts.players to the standings counted, which it returns. The
-- repair for a window `rankd verify` lists, and how bulk loads (loadtest/seed.sql) make theirs.
-- Its writers wait for that pass.
CREATE OR REPLACE FUNCTION rankd_rank_buckets_build(g bigint, w date, min_rows bigint DEFAULT 256) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    total bigint;
    t bigint;
    st bigint;
BEGIN
    PERFORM 1 FROM window_counts c WHERE c.board_gen = g AND c.win = w FOR UPDATE;
    DELETE FROM rank_buckets r WHERE r.board_gen = g AND r.win = w;
    DELETE FROM rank_supers r WHERE r.board_gen = g AND r.win = w;
    SELECT count(*) INTO total FROM standings x WHERE x.board_gen = g AND x.win = w;
    t := rankd_rank_bucket_target(total, min_rows);
    -- Supers of a whole number of buckets, so that each starts where a bucket does.
    st := t * greatest(1, round(rankd_rank_super_target(total, t)::numeric / t))::bigint;
    WITH cut AS (SELECT CASE WHEN rn = 0 THEN -9223372036854775808 ELSE x.sort_key END AS lo_sk,
                        CASE WHEN rn = 0 THEN -9223372036854775808 ELSE x.achieved_ms END AS lo_ms,
                        CASE WHEN rn = 0 THEN '' ELSE x.player_id END AS lo_pid, rn
                   FROM (SELECT s.sort_key, s.achieved_ms, s.player_id,
                                row_number() OVER (ORDER BY s.sort_key, s.achieved_ms, s.player_id) - 1 AS rn
                           FROM standings s WHERE s.board_gen = g AND s.win = w) x
                  WHERE x.rn % t = 0),
         ib AS (INSERT INTO rank_buckets (board_gen, win, lo_sk, lo_ms, lo_pid, n)
                SELECT g, w, c.lo_sk, c.lo_ms, c.lo_pid, least(t, total - c.rn) FROM cut c)
    INSERT INTO rank_supers (board_gen, win, lo_sk, lo_ms, lo_pid, n)
    SELECT g, w, c.lo_sk, c.lo_ms, c.lo_pid, least(st, total - c.rn) FROM cut c WHERE c.rn % st = 0;
    IF total = 0 THEN -- the first bucket and super all the same: a writer that finds them counts into them
        INSERT INTO rank_buckets VALUES (g, w, -9223372036854775808, -9223372036854775808, '', 0);
        INSERT INTO rank_supers VALUES (g, w, -9223372036854775808, -9223372036854775808, '', 0);
    END IF;
    -- The window's player count is the same count (rankd_rank_bucket_at walks back from it).
    UPDATE window_counts c SET players = total WHERE c.board_gen = g AND c.win = w AND c.players <> total;
    RETURN total;
END $$;

-- Every window's buckets cut again for the new sizes, with its supers.
SELECT count(rankd_rank_buckets_build(board_gen, win)) FROM window_counts;
