-- 0016_archive_pacing.sql — an archive takes at most a quarter of a CPU, in short steps.
--
-- 0013 copied a closed window 1,000 rows at a time and rested as long as each chunk took: half of
-- a CPU in bursts of about 13 ms (an archived row costs about 13 us: its copy and three index
-- entries, the player key's in random order). On a server whose CPU the live window's writes
-- already fill, the writes' p99 during an archive of a million standings was 21-25 ms against
-- 9-16 ms before it (loadtest/scale.sh --only archive_writes, four rounds each). Chunks of 100
-- rows (about 1.5 ms) with three times as long at rest leave the writes more of the CPU and
-- shorter waits for it: 18-23 ms in the same rounds, and more writes per second. The archive takes
-- about twice as long (80-110 s for a million standings here); reads of the window are served
-- from its standings until it is done, so nothing waits for it.

CREATE OR REPLACE FUNCTION rankd_archive_window(gen bigint, w date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    name text := rankd_archive_name(gen, w);
    started timestamptz := clock_timestamp();
    chunk constant int := 100;
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
        PERFORM pg_sleep(3 * extract(epoch FROM clock_timestamp() - chunk_started));
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
