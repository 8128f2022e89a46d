-- 0013_archive_window_lock.sql — archiving a closed window no longer holds off the board's writers.
--
-- Writers took the board's archive lock (rankd_archive_lock_key) shared, and the archive took it
-- exclusively while it copied the window's rows and built its indexes: on a daily board of a
-- million players every write to the board waited at each reset until the statement timeout
-- cancelled it. A writer only needs to be kept apart from the archive of a window it writes
-- to, which is a closed window only for a submission received before the reset that commits
-- late. So there are two keys:
-- - the window's (rankd_archive_window_lock_key): writers take it shared for each window they
--   write, the archive exclusively, first. A late writer either commits before the archive
--   copies the window (its row is archived) or waits and finds the window archived (refused);
-- - the board's (rankd_archive_lock_key, as before): the archive takes it exclusively after the
--   window's, a player's deletion shared (it must not run while an archive copies the player).
--   Writers no longer take it.
-- Archives of one board still run one at a time; writers of the live window never wait on one.

-- The window as a day number: a date's text follows the session's DateStyle.
CREATE FUNCTION rankd_archive_window_lock_key(gen bigint, w date) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('rankd archive ' || gen || ' ' || (w - DATE '1970-01-01'), 0) $$;

-- The copy goes a chunk at a time into a table whose indexes exist already, and rests as long as
-- each chunk took before the next: an archive of a million standings built the table's three
-- indexes in single bursts of seconds, during which the live window's writes waited for the CPU
-- (on a shared server, p99 up tenfold). It takes about twice as long, spread out.
CREATE OR REPLACE FUNCTION rankd_archive_window(gen bigint, w date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    name text := rankd_archive_name(gen, w);
    started timestamptz := clock_timestamp();
    chunk constant int := 1000;
    chunk_started timestamptz;
    n bigint := 0;
    got bigint;
    sk bigint := -9223372036854775808;
    ms bigint := -9223372036854775808;
    pid text := '';
BEGIN
    -- The window's writers first (the only ones are late submissions), then the board's other
    -- archives and its player deletions.
    PERFORM pg_advisory_xact_lock(rankd_archive_window_lock_key(gen, w));
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
    EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (board_gen, player_id, win)', name);
    EXECUTE format('CREATE INDEX ON %I (board_gen, win, rank)', name);
    EXECUTE format('CREATE INDEX ON %I (board_gen, win, sort_key, achieved_ms, player_id)', name);
    -- In rank order, from after the last position copied.
    LOOP
        chunk_started := clock_timestamp();
        EXECUTE format('WITH c AS (SELECT board_gen, win, player_id, score, sort_key, achieved_ms, metadata'
                       '   FROM standings WHERE board_gen = $1 AND win = $2'
                       '   AND (sort_key, achieved_ms, player_id) > ($3, $4, $5 COLLATE "C")'
                       '   ORDER BY sort_key, achieved_ms, player_id LIMIT $6),'
                       ' i AS (INSERT INTO %I (board_gen, win, rank, player_id, score, sort_key, achieved_ms, metadata)'
                       '   SELECT board_gen, win, $7 + row_number() OVER (ORDER BY sort_key, achieved_ms, player_id),'
                       '   player_id, score, sort_key, achieved_ms, metadata FROM c'
                       '   RETURNING rank, sort_key, achieved_ms, player_id)'
                       ' SELECT count(*), (array_agg(sort_key ORDER BY rank DESC))[1],'
                       ' (array_agg(achieved_ms ORDER BY rank DESC))[1], (array_agg(player_id ORDER BY rank DESC))[1]'
                       ' FROM i', name)
            INTO got, sk, ms, pid USING gen, w, sk, ms, pid, chunk, n;
        n := n + got;
        EXIT WHEN got < chunk;
        PERFORM pg_sleep(extract(epoch FROM clock_timestamp() - chunk_started));
    END LOOP;
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
