-- 0002_stats_views.sql — materialized views for what is too expensive to compute live.
--
-- Each view is refreshed as a whole (CONCURRENTLY, hence the unique indexes)
-- by `rankd refresh` or POST /v1/admin/refresh; view_refreshes records when.

-- Per board window: players, accepted submissions and score statistics.
CREATE MATERIALIZED VIEW window_stats AS
SELECT wc.board_gen,
       wc.win,
       coalesce(a.players, 0)  AS players,
       wc.submissions,
       a.min_score,
       a.max_score,
       a.mean,
       a.stddev,
       a.percentiles
FROM window_counts wc
LEFT JOIN (
    SELECT board_gen,
           win,
           count(*)                  AS players,
           min(score)                AS min_score,
           max(score)                AS max_score,
           avg(score)::float8        AS mean,
           stddev_pop(score)::float8 AS stddev,
           percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY score) AS percentiles
    FROM standings
    GROUP BY board_gen, win
) a USING (board_gen, win);
CREATE UNIQUE INDEX window_stats_key ON window_stats (board_gen, win);

-- 20 equal-width buckets [lower, upper) between a window's min and max, the
-- last one closed; a window whose scores are all equal has one bucket.
CREATE MATERIALIZED VIEW window_histograms AS
WITH bounds AS (
    SELECT board_gen, win, min(score) AS lo, max(score) AS hi FROM standings GROUP BY board_gen, win
)
SELECT s.board_gen,
       s.win,
       CASE WHEN b.hi = b.lo THEN 1
            ELSE least(width_bucket(s.score::float8, b.lo::float8, b.hi::float8, 20), 20) END AS bucket,
       count(*) AS players
FROM standings s JOIN bounds b USING (board_gen, win)
GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX window_histograms_key ON window_histograms (board_gen, win, bucket);

-- Accepted submissions per board and UTC day, from the submission log.
CREATE MATERIALIZED VIEW daily_activity AS
SELECT board_gen,
       (received_at AT TIME ZONE 'UTC')::date AS day,
       count(*)                               AS submissions,
       count(DISTINCT player_id)              AS players
FROM submissions
GROUP BY 1, 2;
CREATE UNIQUE INDEX daily_activity_key ON daily_activity (board_gen, day);

CREATE TABLE view_refreshes (
    view          text PRIMARY KEY,
    refreshed_at  timestamptz NOT NULL,
    rows          bigint NOT NULL,
    ms            bigint NOT NULL
);
