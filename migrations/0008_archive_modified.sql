-- 0008_archive_modified.sql — an archived window's time of change moves with its content.
--
-- `archived_at` is the statistics' "refreshed_at" and, from here on, the Last-Modified of every
-- read of the window from its archive (API.md: closed windows carry Last-Modified, and
-- If-Modified-Since answers 304). Deleting a player rewrites the window's ranks and statistics
-- (rankd_archive_stats); until now the time stayed that of the archiving, so a cache holding
-- the window since would have been told, wrongly, that nothing changed. HTTP dates count whole
-- seconds: a change moves the time to a later second than the last one, even within a second.
CREATE OR REPLACE FUNCTION rankd_archive_stats(gen bigint, w date) RETURNS void
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
    UPDATE archived_windows aw SET archived_at = greatest(clock_timestamp(), aw.archived_at + interval '1 second'),
           players = s.players, min_score = s.lo, max_score = s.hi, mean = s.mean,
           stddev = s.stddev, percentiles = s.pct,
           histogram = CASE WHEN s.players = 0 THEN NULL ELSE
               (SELECT array_agg(coalesce(h.n, 0) ORDER BY i)
                FROM generate_series(1, CASE WHEN s.hi = s.lo THEN 1 ELSE 20 END) i LEFT JOIN h ON h.bucket = i) END
    FROM s WHERE aw.board_gen = gen AND aw.win = w
$$;
