-- 0012_activity_days.sql — daily activity counted again only for the days that changed.
--
-- daily_activity was a materialized view over the whole submission log: each refresh counted
-- distinct players per day over every month ever kept, so its cost grew for ever (the log is
-- kept forever by default) until it passed refresh.timeout_s. It is now a table with the same
-- name and columns, which rankd_refresh_activity brings up to date:
-- - the days from the last refresh's instant (less a grace for submissions still committing)
--   to now are counted again from the log; a block range index on received_at makes that a read
--   of the recent rows of the current month, not of the whole month;
-- - days of older months that changed since (a player's deletion removes their submissions)
--   are queued in activity_dirty by whoever changed them, and counted again too;
-- - days before the log's retention go when their months do (rankd_activity_forget).
-- The instants are rankd's clock, passed in (the clock that stamps received_at), never now().

SET LOCAL statement_timeout = 0;

DROP MATERIALIZED VIEW daily_activity;

CREATE TABLE daily_activity (
    board_gen    bigint NOT NULL,
    day          date NOT NULL,
    submissions  bigint NOT NULL,
    players      bigint NOT NULL,
    PRIMARY KEY (board_gen, day)
);

-- The instant (rankd's clock) up to which the last refresh counted; NULL: count every day.
CREATE TABLE activity_mark (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    counted_to   timestamptz
);
INSERT INTO activity_mark VALUES (true, NULL);

-- Days whose counts changed behind the refresh's back (a player's deletion).
CREATE TABLE activity_dirty (
    board_gen    bigint NOT NULL,
    day          date NOT NULL,
    PRIMARY KEY (board_gen, day)
);

-- Rows are appended in about received_at order: a range of 32 pages summarises a few minutes.
-- Created on each month and each of its parts (rankd_ensure_partitions makes new ones with it).
CREATE INDEX submissions_received ON submissions USING brin (received_at) WITH (pages_per_range = 32, autosummarize = on);

-- Count again the days from `now_ts - grace` (or from the last refresh's instant less the grace,
-- whichever is earlier) and the dirty days; returns the days written. The caller holds the
-- views' refresh lock: refreshes never overlap.
CREATE FUNCTION rankd_refresh_activity(now_ts timestamptz, grace interval) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    mark timestamptz;
    since date;
    dirty_gen bigint[];
    dirty_day date[];
    n bigint := 0;
    m bigint;
BEGIN
    SELECT counted_to INTO mark FROM activity_mark FOR UPDATE;
    -- The earlier instant: a clock set back (tests move it) still counts its own days.
    since := CASE WHEN mark IS NULL THEN NULL
                  ELSE ((least(mark, now_ts) - grace) AT TIME ZONE 'UTC')::date END;
    WITH d AS (DELETE FROM activity_dirty RETURNING board_gen, day)
    SELECT array_agg(board_gen), array_agg(day) INTO dirty_gen, dirty_day FROM d;
    IF since IS NULL THEN
        DELETE FROM daily_activity;
        INSERT INTO daily_activity (board_gen, day, submissions, players)
        SELECT s.board_gen, (s.received_at AT TIME ZONE 'UTC')::date, count(*), count(DISTINCT s.player_id)
        FROM submissions s WHERE s.board_gen IN (SELECT gen FROM boards) GROUP BY 1, 2;
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        DELETE FROM daily_activity WHERE day >= since;
        INSERT INTO daily_activity (board_gen, day, submissions, players)
        SELECT s.board_gen, (s.received_at AT TIME ZONE 'UTC')::date, count(*), count(DISTINCT s.player_id)
        FROM submissions s
        WHERE s.received_at >= since::timestamp AT TIME ZONE 'UTC' AND s.board_gen IN (SELECT gen FROM boards)
        GROUP BY 1, 2;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF dirty_gen IS NOT NULL THEN
            DELETE FROM daily_activity a USING unnest(dirty_gen, dirty_day) AS d(g, day)
            WHERE a.board_gen = d.g AND a.day = d.day AND d.day < since;
            INSERT INTO daily_activity (board_gen, day, submissions, players)
            SELECT s.board_gen, d.day, count(*), count(DISTINCT s.player_id)
            FROM (SELECT DISTINCT g, day FROM unnest(dirty_gen, dirty_day) AS u(g, day) WHERE day < since) d
            JOIN submissions s ON s.board_gen = d.g
             AND s.received_at >= d.day::timestamp AT TIME ZONE 'UTC'
             AND s.received_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
            GROUP BY s.board_gen, d.day;
            GET DIAGNOSTICS m = ROW_COUNT;
            n := n + m;
        END IF;
    END IF;
    UPDATE activity_mark SET counted_to = greatest(coalesce(counted_to, now_ts), now_ts);
    RETURN n;
END $$;

-- The days before `before` go with the log's months (retention).
CREATE FUNCTION rankd_activity_forget(before timestamptz) RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (DELETE FROM daily_activity WHERE day < (before AT TIME ZONE 'UTC')::date RETURNING 1)
    SELECT count(*) FROM d
$$;
