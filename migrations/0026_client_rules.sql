-- 0026_client_rules.sql — plausibility rules for client writes (issue 50 item 3; API.md,
-- "Plausibility rules"). Numbered 0026 to stay clear of 0024/0025 on the other branches of the
-- issue (the lead renumbers on merge).
--
-- A board's rules for the submissions made with a player token; NULL: the rule is off.
--   cr_max_per_minute: at most this many submissions (accepted or flagged) of one player on
--     the board in any 60 s;
--   cr_max_rise_per_s: the score's rise over the player's previous accepted token submission,
--     divided by the seconds between the two, at most this.
ALTER TABLE boards
    ADD COLUMN cr_max_per_minute integer CHECK (cr_max_per_minute > 0),
    ADD COLUMN cr_max_rise_per_s double precision CHECK (cr_max_rise_per_s > 0);

-- A submission that broke a rule is kept in the log, not applied: `flagged` names the rule.
-- NULL on every accepted row (and on every row logged before this version).
ALTER TABLE submissions ADD COLUMN flagged text;

-- The writer's check of a token write reads the player's recent token submissions on the board
-- and the last accepted one: an index of the token rows only, so that keyed writes (a game
-- server's, trusted) add no entry to it and pay only the predicate (migrations/0004 dropped the
-- log's index by player: it was a third of the writer's time). Built on each month and part;
-- on a large log this migration reads it whole once (stop rankd first, as for 0004).
SET LOCAL statement_timeout = 0;
CREATE INDEX submissions_client ON submissions (board_gen, player_id, received_at) WHERE auth_by LIKE 'token:%';
-- GET /v1/leaderboards/{board}/flagged: a board's flagged rows, newest first.
CREATE INDEX submissions_flagged ON submissions (board_gen, received_at) WHERE flagged IS NOT NULL;

-- As in 0012, counting accepted submissions only: a flagged row is no activity.
CREATE OR REPLACE FUNCTION rankd_refresh_activity(now_ts timestamptz, grace interval) RETURNS bigint
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
        FROM submissions s WHERE s.board_gen IN (SELECT gen FROM boards) AND s.flagged IS NULL GROUP BY 1, 2;
    ELSE
        DELETE FROM daily_activity WHERE day >= since;
        INSERT INTO daily_activity (board_gen, day, submissions, players)
        SELECT s.board_gen, (s.received_at AT TIME ZONE 'UTC')::date, count(*), count(DISTINCT s.player_id)
        FROM submissions s
        WHERE s.received_at >= since::timestamp AT TIME ZONE 'UTC' AND s.board_gen IN (SELECT gen FROM boards)
          AND s.flagged IS NULL
        GROUP BY 1, 2;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE activity_mark SET counted_to = greatest(coalesce(counted_to, now_ts), now_ts),
           recounted_from = ((greatest(coalesce(counted_to, now_ts), now_ts) - grace) AT TIME ZONE 'UTC')::date;
    RETURN n;
END $$;
