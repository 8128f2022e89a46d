-- 0006_archives.sql — closed windows archived with their ranks; the log without a default
-- partition, so that retention can detach its months CONCURRENTLY.
--
-- When a window closes (the next one started), the upkeep leader writes its final standings
-- once, each with its rank, into `archive`: one partition per board window, so retention and
-- board deletion drop whole tables. `archived_windows` says which windows are archived, with
-- their counts and statistics; a read of a closed window joins it, so a partition without a
-- row there (retention removed the row, the drop follows) is never read. The live `standings`
-- rows of a window stay while it is the previous one (Redis holds it and rebuilds from them),
-- then the leader deletes them.

SET LOCAL statement_timeout = 0;

CREATE TABLE archive (
    board_gen   bigint NOT NULL,
    win         date NOT NULL,
    rank        bigint NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    score       bigint NOT NULL,
    sort_key    bigint NOT NULL,
    achieved_ms bigint NOT NULL,
    metadata    text,
    -- (board_gen, player_id) first: deleting a player finds its rows of every window at once.
    PRIMARY KEY (board_gen, player_id, win)
) PARTITION BY RANGE (board_gen, win);
-- Offset pages and around-me walk ranks; cursor pages walk positions. Not unique: deleting a
-- player moves the ranks below it up by one in one statement.
CREATE INDEX archive_rank ON archive (board_gen, win, rank);
CREATE INDEX archive_order ON archive (board_gen, win, sort_key, achieved_ms, player_id);

CREATE TABLE archived_windows (
    board_gen    bigint NOT NULL,
    win          date NOT NULL,
    players      bigint NOT NULL,
    submissions  bigint NOT NULL,
    min_score    bigint,
    max_score    bigint,
    mean         float8,
    stddev       float8,
    percentiles  float8[],
    histogram    bigint[],             -- players per bucket, as window_histograms counts them
    archived_at  timestamptz NOT NULL, -- the statistics' "refreshed_at"
    archive_ms   bigint NOT NULL,      -- how long writing the archive took
    PRIMARY KEY (board_gen, win)
);

-- The partition of `archive` holding window (gen, w).
CREATE FUNCTION rankd_archive_name(gen bigint, w date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT format('archive_%s_%s', gen, to_char(w, 'YYYYMMDD')) $$;

-- Recompute a window's statistics in archived_windows from its archive (after a player's
-- deletion rewrote it): the same figures window_stats and window_histograms give a live one.
CREATE FUNCTION rankd_archive_stats(gen bigint, w date) RETURNS void
LANGUAGE sql AS $$
    WITH a AS (SELECT score FROM archive WHERE board_gen = gen AND win = w),
    s AS (SELECT count(*) AS players, min(score) AS lo, max(score) AS hi, avg(score)::float8 AS mean,
                 stddev_pop(score)::float8 AS stddev,
                 percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY score) AS pct
          FROM a),
    h AS (SELECT CASE WHEN s.hi = s.lo THEN 1
                      ELSE least(width_bucket(a.score::float8, s.lo::float8, s.hi::float8, 20), 20) END AS bucket,
                 count(*) AS n
          FROM a, s GROUP BY 1)
    UPDATE archived_windows aw SET players = s.players, min_score = s.lo, max_score = s.hi, mean = s.mean,
           stddev = s.stddev, percentiles = s.pct,
           histogram = CASE WHEN s.players = 0 THEN NULL ELSE
               (SELECT array_agg(coalesce(h.n, 0) ORDER BY i)
                FROM generate_series(1, CASE WHEN s.hi = s.lo THEN 1 ELSE 20 END) i LEFT JOIN h ON h.bucket = i) END
    FROM s WHERE aw.board_gen = gen AND aw.win = w
$$;

-- The advisory lock key that keeps archiving a board (exclusive) and deleting one of its players
-- (shared, store/queries.c) apart: a player deleted while its window is archived is not copied
-- into the archive after its deletion.
CREATE FUNCTION rankd_archive_lock_key(gen bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('rankd archive ' || gen, 0) $$;

-- Archive window (gen, w) from its standings: the rows are written into a table of their own
-- in rank order, indexed, then attached (attaching takes no lock that stops readers of the
-- other partitions). Returns the rows archived, or -1 when the window was archived already or
-- its board is gone (the board's row is held FOR KEY SHARE: a deletion of the board waits for
-- the archive, and then removes its archived_windows rows with the rest).
CREATE FUNCTION rankd_archive_window(gen bigint, w date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    name text := rankd_archive_name(gen, w);
    started timestamptz := clock_timestamp();
    n bigint;
BEGIN
    -- One archiver at a time per board (a second one waits, then sees it done), and no player
    -- deletion of the board meanwhile.
    PERFORM pg_advisory_xact_lock(rankd_archive_lock_key(gen));
    PERFORM 1 FROM boards WHERE boards.gen = rankd_archive_window.gen FOR KEY SHARE;
    IF NOT FOUND OR EXISTS (SELECT 1 FROM archived_windows WHERE board_gen = gen AND win = w) THEN
        RETURN -1;
    END IF;
    -- A partition left by a retention whose drop did not finish: it is no one's now.
    IF to_regclass(name) IS NOT NULL THEN
        EXECUTE format('DROP TABLE %I', name);
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE archive)', name);
    EXECUTE format('INSERT INTO %I (board_gen, win, rank, player_id, score, sort_key, achieved_ms, metadata)'
                   ' SELECT board_gen, win, row_number() OVER (ORDER BY sort_key, achieved_ms, player_id),'
                   ' player_id, score, sort_key, achieved_ms, metadata FROM standings'
                   ' WHERE board_gen = $1 AND win = $2 ORDER BY sort_key, achieved_ms, player_id', name)
        USING gen, w;
    GET DIAGNOSTICS n = ROW_COUNT;
    EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (board_gen, player_id, win)', name);
    EXECUTE format('CREATE INDEX ON %I (board_gen, win, rank)', name);
    EXECUTE format('CREATE INDEX ON %I (board_gen, win, sort_key, achieved_ms, player_id)', name);
    -- Proves the partition bound, so ATTACH need not scan the rows.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (board_gen = %s AND win = %L)',
                   name, name || '_bound', gen, w);
    EXECUTE format('ALTER TABLE archive ATTACH PARTITION %I FOR VALUES FROM (%s, %L) TO (%s, %L)',
                   name, gen, w, gen, w + 1);
    INSERT INTO archived_windows (board_gen, win, players, submissions, archived_at, archive_ms)
    SELECT gen, w, n, coalesce((SELECT submissions FROM window_counts WHERE board_gen = gen AND win = w), 0),
           now(), 0;
    PERFORM rankd_archive_stats(gen, w);
    UPDATE archived_windows SET archive_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::bigint
    WHERE board_gen = gen AND win = w;
    RETURN n;
END $$;

-- The partitions of `archive` no archived_windows row names (retention and board deletion
-- remove the rows; the leader then detaches and drops these), and whether a detach of each is
-- already under way: true, false, or null for a table detached already whose drop failed.
CREATE FUNCTION rankd_archive_orphans() RETURNS TABLE (name text, detaching boolean)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text, i.inhdetachpending
    FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'archive'::regclass
    WHERE c.relname ~ '^archive_[0-9]+_[0-9]{8}$' AND c.relkind = 'r' AND pg_table_is_visible(c.oid)
      AND (i.inhrelid IS NOT NULL OR NOT c.relispartition)
      AND NOT EXISTS (SELECT 1 FROM archived_windows a WHERE rankd_archive_name(a.board_gen, a.win) = c.relname)
    ORDER BY 1
$$;

-- The log's months (partitions of `submissions`, or months detached already whose drop failed)
-- that end before `before`, oldest first: retention detaches and drops them.
CREATE FUNCTION rankd_log_months_before(before timestamptz) RETURNS TABLE (name text, detaching boolean)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text, i.inhdetachpending
    FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'submissions'::regclass
    WHERE c.relname ~ '^submissions_[0-9]{4}_[0-9]{2}$' AND c.relkind = 'p' AND pg_table_is_visible(c.oid)
      AND (i.inhrelid IS NOT NULL OR NOT c.relispartition)
      AND (to_date(substr(c.relname, 13), 'YYYY_MM') + interval '1 month') <= (before AT TIME ZONE 'UTC')
    ORDER BY 1
$$;

-- DETACH ... CONCURRENTLY refuses a table with a default partition. rankd_ensure_partitions
-- makes each month ahead of time, so the default partition was always empty in practice: any
-- rows it holds are moved into months of their own, and it goes.
DO $$
DECLARE
    m timestamptz;
BEGIN
    IF to_regclass('submissions_default') IS NOT NULL THEN
        CREATE TEMP TABLE rankd_moving ON COMMIT DROP AS SELECT * FROM submissions_default;
        DROP TABLE submissions_default;
        FOR m IN SELECT DISTINCT date_trunc('month', received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                 FROM rankd_moving LOOP
            PERFORM rankd_ensure_partitions(m, 1);
        END LOOP;
        INSERT INTO submissions SELECT * FROM rankd_moving;
    END IF;
END $$;
