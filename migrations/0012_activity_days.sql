-- 0012_activity_days.sql — daily activity counted again only for the days that changed.
--
-- daily_activity was a materialized view over the whole submission log: each refresh counted
-- distinct players per day over every month ever kept, so its cost grew for ever (the log is
-- kept forever by default) until it passed refresh.timeout_s. It is now a table with the same
-- name and columns, which rankd_refresh_activity brings up to date:
-- - the days from the last refresh's instant (less a grace for submissions still committing)
--   to now are counted again from the log; a block range index on received_at makes that a read
--   of the recent rows of the current month, not of the whole month;
-- - a player's deletion takes its submissions out of the older days' counts itself (their
--   submissions, and the player from their players), in its own transaction;
-- - days before the log's retention go when their months do (rankd_activity_forget).
-- The instants are rankd's clock, passed in (the clock that stamps received_at), never now().
-- The table starts as the view was at its last refresh, counted from that refresh's start on.

SET LOCAL statement_timeout = 0;

ALTER MATERIALIZED VIEW daily_activity RENAME TO daily_activity_view;

CREATE TABLE daily_activity (
    board_gen    bigint NOT NULL,
    day          date NOT NULL,
    submissions  bigint NOT NULL,
    players      bigint NOT NULL,
    PRIMARY KEY (board_gen, day)
);
INSERT INTO daily_activity SELECT board_gen, day, submissions, players FROM daily_activity_view;
DROP MATERIALIZED VIEW daily_activity_view;

-- counted_to: the instant (rankd's clock) up to which the last refresh counted (NULL: count every
-- day next time); recounted_from: the first day the next refresh counts again at the latest: a
-- deletion takes its submissions out of the days before it itself (NULL: none).
CREATE TABLE activity_mark (
    one             boolean PRIMARY KEY DEFAULT true CHECK (one),
    counted_to      timestamptz,
    recounted_from  date
);
INSERT INTO activity_mark
SELECT true, refreshed_at - ms * interval '1 millisecond', NULL::date FROM view_refreshes WHERE view = 'daily_activity'
UNION ALL SELECT true, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM view_refreshes WHERE view = 'daily_activity');

-- Rows are appended in about received_at order: a range of 32 pages summarises a few minutes.
-- Created on each month and each of its parts (rankd_ensure_partitions makes new ones with it).
CREATE INDEX submissions_received ON submissions USING brin (received_at) WITH (pages_per_range = 32, autosummarize = on);

-- Count again the days from `now_ts - grace` (or from the last refresh's instant less the grace,
-- whichever is earlier); returns the days written. The caller holds the views' refresh lock:
-- refreshes never overlap. A player's deletion holds the mark's row FOR SHARE: a refresh waits
-- for it, and then counts without the player.
CREATE FUNCTION rankd_refresh_activity(now_ts timestamptz, grace interval) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    mark timestamptz;
    since date;
    n bigint := 0;
BEGIN
    SELECT counted_to INTO mark FROM activity_mark FOR UPDATE;
    -- The earlier instant: a clock set back (tests move it) still counts its own days.
    since := CASE WHEN mark IS NULL THEN NULL
                  ELSE ((least(mark, now_ts) - grace) AT TIME ZONE 'UTC')::date END;
    IF since IS NULL THEN
        DELETE FROM daily_activity;
        INSERT INTO daily_activity (board_gen, day, submissions, players)
        SELECT s.board_gen, (s.received_at AT TIME ZONE 'UTC')::date, count(*), count(DISTINCT s.player_id)
        FROM submissions s WHERE s.board_gen IN (SELECT gen FROM boards) GROUP BY 1, 2;
    ELSE
        DELETE FROM daily_activity WHERE day >= since;
        INSERT INTO daily_activity (board_gen, day, submissions, players)
        SELECT s.board_gen, (s.received_at AT TIME ZONE 'UTC')::date, count(*), count(DISTINCT s.player_id)
        FROM submissions s
        WHERE s.received_at >= since::timestamp AT TIME ZONE 'UTC' AND s.board_gen IN (SELECT gen FROM boards)
        GROUP BY 1, 2;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- The next refresh counts again from its instant's least with this mark, less the grace: at
    -- the earliest from the new mark less the grace. Days before that, a deletion corrects itself.
    UPDATE activity_mark SET counted_to = greatest(coalesce(counted_to, now_ts), now_ts),
           recounted_from = ((greatest(coalesce(counted_to, now_ts), now_ts) - grace) AT TIME ZONE 'UTC')::date;
    RETURN n;
END $$;

-- The days before `before` go with the log's months (retention).
CREATE FUNCTION rankd_activity_forget(before timestamptz) RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (DELETE FROM daily_activity WHERE day < (before AT TIME ZONE 'UTC')::date RETURNING 1)
    SELECT count(*) FROM d
$$;
