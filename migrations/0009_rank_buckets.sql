-- 0009_rank_buckets.sql — exact ranks from PostgreSQL in O(sqrt n), not O(rank).
--
-- A window's standings, in rank order (sort_key, achieved_ms, player_id), are cut into
-- consecutive buckets. Each bucket is named by the position of its first standing (its `lo`;
-- the first bucket's lo is below every position) and holds `n`, the number of standings from
-- its lo up to the next bucket's. A rank is then the sum of the counts of the buckets before the
-- player's own, plus an index range count inside it: with buckets of about sqrt(players)
-- standings each, both terms are about sqrt(players) rows.
--
-- Invariant, true at every commit: each n equals the standings in its range. Every transaction
-- that changes a window's standings (the writer, a player's deletion) holds that window's
-- window_counts row locked, and applies its bucket deltas (ws_buckets_sql in
-- src/store/write_sql.c: old bucket -1, new bucket +1) in a statement of its own after taking
-- that lock, so the statement sees the buckets as the last re-cut left them. The first bucket of
-- a window starts below every position and is never merged away: the writer makes it when it
-- first counts the window, so every position has a bucket. A re-cut (rankd_rank_buckets_recut)
-- takes the same row lock first: while it runs no transaction can commit a change to the
-- window, so its counts are exact; writers of that one window wait for it (one split reads about
-- one bucket of the index).

SET LOCAL statement_timeout = 0;

CREATE TABLE rank_buckets (
    board_gen   bigint NOT NULL,
    win         date NOT NULL,
    lo_sk       bigint NOT NULL,
    lo_ms       bigint NOT NULL,
    lo_pid      text COLLATE "C" NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (board_gen, win, lo_sk, lo_ms, lo_pid)
);
-- Every write updates a bucket row: n is in no index, so those are HOT updates.
ALTER TABLE rank_buckets SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02,
                              autovacuum_vacuum_cost_delay = 0);

-- The rows a bucket should hold in a window of `players` standings, at least `min_rows`.
CREATE FUNCTION rankd_rank_bucket_target(players bigint, min_rows bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT greatest(min_rows, floor(sqrt(greatest(players, 0)))::bigint) $$;

-- The standings of window (g, w) strictly before position (sk, ms, p): the rank of a standing
-- at that position is this plus one. STABLE: it reads the caller's snapshot, so a rank agrees
-- with the rows and the total read beside it.
CREATE FUNCTION rankd_rank_before(g bigint, w date, sk bigint, ms bigint, p text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b_sk bigint := -9223372036854775808;
    b_ms bigint := -9223372036854775808;
    b_pid text COLLATE "C" := '';
    before bigint;
    inside bigint;
BEGIN
    SELECT r.lo_sk, r.lo_ms, r.lo_pid INTO b_sk, b_ms, b_pid FROM rank_buckets r
     WHERE r.board_gen = g AND r.win = w AND (r.lo_sk, r.lo_ms, r.lo_pid) <= (sk, ms, p COLLATE "C")
     ORDER BY r.lo_sk DESC, r.lo_ms DESC, r.lo_pid DESC LIMIT 1;
    IF NOT FOUND THEN -- no bucket: a window with no standing (or a count from the start)
        b_sk := -9223372036854775808; b_ms := -9223372036854775808; b_pid := '';
    END IF;
    SELECT coalesce(sum(r.n), 0) INTO before FROM rank_buckets r
     WHERE r.board_gen = g AND r.win = w AND (r.lo_sk, r.lo_ms, r.lo_pid) < (b_sk, b_ms, b_pid);
    SELECT count(*) INTO inside FROM standings x
     WHERE x.board_gen = g AND x.win = w
       AND (x.sort_key, x.achieved_ms, x.player_id) >= (b_sk, b_ms, b_pid)
       AND (x.sort_key, x.achieved_ms, x.player_id) < (sk, ms, p COLLATE "C");
    RETURN before + inside;
END $$;

-- The bucket holding 0-based position `pos` of window (g, w), and how many standings come
-- before it; past the end, the last bucket (an offset read from it finds nothing); with no
-- bucket, the start. Walks the buckets from the nearer end, in index order (enable_sort off:
-- the generic plan would otherwise sort every bucket of the window on each call).
CREATE FUNCTION rankd_rank_bucket_at(g bigint, w date, pos bigint,
                                     OUT lo_sk bigint, OUT lo_ms bigint, OUT lo_pid text, OUT before bigint)
LANGUAGE plpgsql STABLE SET enable_sort = off AS $$
DECLARE
    r record;
    acc bigint := 0;
    total bigint;
BEGIN
    lo_sk := -9223372036854775808; lo_ms := -9223372036854775808; lo_pid := ''; before := 0;
    SELECT c.players INTO total FROM window_counts c WHERE c.board_gen = g AND c.win = w;
    IF total IS NULL OR pos < total / 2 THEN
        FOR r IN SELECT b.lo_sk, b.lo_ms, b.lo_pid, b.n FROM rank_buckets b WHERE b.board_gen = g AND b.win = w
                 ORDER BY b.lo_sk, b.lo_ms, b.lo_pid LOOP
            lo_sk := r.lo_sk; lo_ms := r.lo_ms; lo_pid := r.lo_pid; before := acc;
            acc := acc + r.n;
            EXIT WHEN acc > pos;
        END LOOP;
    ELSE -- from the end: `acc` counts the standings from each bucket on (window_counts.players
         -- is the sum of the counts, kept in the same transactions)
        FOR r IN SELECT b.lo_sk, b.lo_ms, b.lo_pid, b.n FROM rank_buckets b WHERE b.board_gen = g AND b.win = w
                 ORDER BY b.lo_sk DESC, b.lo_ms DESC, b.lo_pid DESC LOOP
            acc := acc + r.n;
            lo_sk := r.lo_sk; lo_ms := r.lo_ms; lo_pid := r.lo_pid; before := total - acc;
            EXIT WHEN before <= pos;
        END LOOP;
        -- The first bucket has none before it, whatever a drifted total says (rankd verify).
        IF lo_sk = -9223372036854775808 AND lo_ms = -9223372036854775808 AND lo_pid = '' THEN
            before := 0;
        END IF;
    END IF;
END $$;

-- Re-cut window (g, w) towards buckets of `target` standings, at most `max_steps` changes in
-- this transaction: a bucket over 2 x target gives its first `target` standings a bucket of
-- their own (one index read of `target` entries: its n is exact, so the rest is n - target); a
-- bucket that fits in its predecessor within `target` joins it. Returns the changes made.
CREATE FUNCTION rankd_rank_buckets_recut(g bigint, w date, target bigint, max_steps int) RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    steps int := 0;
    b record;
    k record;
    have_prev boolean := false;
    p_sk bigint;
    p_ms bigint;
    p_pid text COLLATE "C";
    p_n bigint;
BEGIN
    -- No transaction commits a change to this window while the lock is held (top of the file).
    PERFORM 1 FROM window_counts c WHERE c.board_gen = g AND c.win = w FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    FOR b IN SELECT r.lo_sk, r.lo_ms, r.lo_pid, r.n FROM rank_buckets r WHERE r.board_gen = g AND r.win = w
             ORDER BY r.lo_sk, r.lo_ms, r.lo_pid LOOP
        EXIT WHEN steps >= max_steps;
        IF b.n > 2 * target THEN
            SELECT x.sort_key, x.achieved_ms, x.player_id INTO k FROM standings x
             WHERE x.board_gen = g AND x.win = w
               AND (x.sort_key, x.achieved_ms, x.player_id) >= (b.lo_sk, b.lo_ms, b.lo_pid)
             ORDER BY x.sort_key, x.achieved_ms, x.player_id OFFSET target LIMIT 1;
            IF FOUND THEN
                UPDATE rank_buckets r SET n = target WHERE r.board_gen = g AND r.win = w
                   AND (r.lo_sk, r.lo_ms, r.lo_pid) = (b.lo_sk, b.lo_ms, b.lo_pid);
                INSERT INTO rank_buckets VALUES (g, w, k.sort_key, k.achieved_ms, k.player_id, b.n - target);
                steps := steps + 1;
                have_prev := false; -- the rest of this bucket is looked at next time
                CONTINUE;
            END IF;
        ELSIF have_prev AND p_n + b.n <= target THEN
            DELETE FROM rank_buckets r WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) = (b.lo_sk, b.lo_ms, b.lo_pid);
            UPDATE rank_buckets r SET n = r.n + b.n WHERE r.board_gen = g AND r.win = w
               AND (r.lo_sk, r.lo_ms, r.lo_pid) = (p_sk, p_ms, p_pid);
            p_n := p_n + b.n;
            steps := steps + 1;
            CONTINUE;
        END IF;
        have_prev := true;
        p_sk := b.lo_sk; p_ms := b.lo_ms; p_pid := b.lo_pid; p_n := b.n;
    END LOOP;
    RETURN steps;
END $$;

-- The windows whose buckets are out of shape for `min_rows` (rankd_rank_buckets_recut would
-- change something), each with its target.
CREATE FUNCTION rankd_rank_buckets_drifted(min_rows bigint)
RETURNS TABLE (board_gen bigint, win date, target bigint) LANGUAGE sql STABLE AS $$
    SELECT s.board_gen, s.win, min(s.target) FROM (
        SELECT r.board_gen, r.win, r.n, lag(r.n) OVER (PARTITION BY r.board_gen, r.win
                                                       ORDER BY r.lo_sk, r.lo_ms, r.lo_pid) AS prev_n,
               rankd_rank_bucket_target(c.players, min_rows) AS target
          FROM rank_buckets r JOIN window_counts c ON c.board_gen = r.board_gen AND c.win = r.win
         -- An archived window is read from its archive, and retention deletes its standings
         -- in batches without counting them out: its buckets are left alone until they go.
         WHERE NOT EXISTS (SELECT 1 FROM archived_windows a WHERE a.board_gen = r.board_gen AND a.win = r.win)) s
     WHERE s.n > 2 * s.target OR s.n + s.prev_n <= s.target
     GROUP BY s.board_gen, s.win
$$;

-- Buckets whose count is not the standings in their range: empty when the invariant holds
-- (`rankd verify`). A window with standings and no bucket shows as one row with lo NULL.
CREATE FUNCTION rankd_rank_buckets_check(g bigint, w date)
RETURNS TABLE (lo_sk bigint, lo_ms bigint, lo_pid text, n bigint, actual bigint) LANGUAGE sql STABLE AS $$
    WITH b AS (SELECT r.lo_sk, r.lo_ms, r.lo_pid, r.n,
                      lead(r.lo_sk) OVER o AS hi_sk, lead(r.lo_ms) OVER o AS hi_ms, lead(r.lo_pid) OVER o AS hi_pid
                 FROM rank_buckets r WHERE r.board_gen = g AND r.win = w
               WINDOW o AS (ORDER BY r.lo_sk, r.lo_ms, r.lo_pid)),
         c AS (SELECT b.lo_sk, b.lo_ms, b.lo_pid, b.n,
                      (SELECT count(*) FROM standings x WHERE x.board_gen = g AND x.win = w
                          AND (x.sort_key, x.achieved_ms, x.player_id) >= (b.lo_sk, b.lo_ms, b.lo_pid)
                          AND (b.hi_sk IS NULL
                               OR (x.sort_key, x.achieved_ms, x.player_id) < (b.hi_sk, b.hi_ms, b.hi_pid))) AS actual
                 FROM b)
    SELECT * FROM c WHERE c.n <> c.actual
    UNION ALL
    SELECT NULL, NULL, NULL, 0, count(*) FROM standings x
     WHERE x.board_gen = g AND x.win = w AND NOT EXISTS (SELECT 1 FROM b)
    HAVING count(*) > 0
$$;

-- Cut window (g, w)'s buckets afresh from its standings, about sqrt(players) (at least
-- `min_rows`) each, in one pass over its index, and set its window_counts.players to the
-- standings counted, which it returns. The repair for
-- a window `rankd verify` lists, and how bulk loads (loadtest/seed.sql) make theirs. Its
-- writers wait for that pass.
CREATE FUNCTION rankd_rank_buckets_build(g bigint, w date, min_rows bigint DEFAULT 256) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    total bigint;
    t bigint;
BEGIN
    PERFORM 1 FROM window_counts c WHERE c.board_gen = g AND c.win = w FOR UPDATE;
    DELETE FROM rank_buckets r WHERE r.board_gen = g AND r.win = w;
    SELECT count(*) INTO total FROM standings x WHERE x.board_gen = g AND x.win = w;
    t := rankd_rank_bucket_target(total, min_rows);
    INSERT INTO rank_buckets (board_gen, win, lo_sk, lo_ms, lo_pid, n)
    SELECT g, w, CASE WHEN rn = 0 THEN -9223372036854775808 ELSE x.sort_key END,
           CASE WHEN rn = 0 THEN -9223372036854775808 ELSE x.achieved_ms END,
           CASE WHEN rn = 0 THEN '' ELSE x.player_id END, least(t, total - rn)
      FROM (SELECT s.sort_key, s.achieved_ms, s.player_id,
                   row_number() OVER (ORDER BY s.sort_key, s.achieved_ms, s.player_id) - 1 AS rn
              FROM standings s WHERE s.board_gen = g AND s.win = w) x
     WHERE x.rn % t = 0;
    IF total = 0 THEN -- the first bucket all the same: a writer that found it counts into it
        INSERT INTO rank_buckets VALUES (g, w, -9223372036854775808, -9223372036854775808, '', 0);
    END IF;
    -- The window's player count is the same count (rankd_rank_bucket_at walks back from it).
    UPDATE window_counts c SET players = total WHERE c.board_gen = g AND c.win = w AND c.players <> total;
    RETURN total;
END $$;

-- The buckets of the windows there are.
SELECT count(rankd_rank_buckets_build(board_gen, win)) FROM window_counts;
