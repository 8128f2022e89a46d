-- 0022_event_limits.sql — an end-of-window event stays small enough to deliver, and events do not
-- pile up (API.md, "Competitions"; issue 49 item 14). Its body held every standing of the window
-- (about 100 MB at a million players), POSTed whole under a 10 s timeout: it failed every try for
-- 24 h. Now it holds the top `standings_limit` standings (events.standings_limit, default 1,000)
-- and as many moves, with `standings_total` and `moves_total` and the export that streams the
-- whole closed window (`standings_export`). The limit an event was made with is kept with it, so
-- that a player's deletion makes its body again with the same one. Delivered and failed events
-- are dropped by the upkeep leader once events.keep_days have passed (rankd_events_expire).

-- standings_total and moves_total: the body's, kept as columns so that a player's deletion finds
-- the events whose counts included them without parsing every body (NULL: made before this).
ALTER TABLE events
    ADD COLUMN standings_limit int NOT NULL DEFAULT 1000 CHECK (standings_limit > 0),
    ADD COLUMN standings_total bigint,
    ADD COLUMN moves_total     bigint;
CREATE INDEX events_done ON events (created_ms) WHERE state <> 'pending';

DROP FUNCTION rankd_window_event_body(bigint, date, text, text);

-- Where the whole of a closed window is read: its export (admin key), relative to rankd's URL.
CREATE FUNCTION rankd_event_export_path(board text, w date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '/v1/leaderboards/' || board || '/export?window=' || to_char(w, 'YYYY-MM-DD') $$;

-- The body of window w's event of board g: {id, type, board, window, closed_at, standings (the top
-- `top_n`), standings_total, standings_export, moves and moves_total (a league's; the first
-- `top_n` by cohort and place)}, from the archive (ranks final) and the league moves; NULL when
-- the board is gone.
CREATE FUNCTION rankd_window_event_body(g bigint, w date, eid text, closed_at text, top_n int) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b record;
    standings json;
    total bigint;
    moves json;
    moves_total bigint;
BEGIN
    SELECT id, cohort_size, tiers INTO b FROM boards WHERE gen = g;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- Entries as reads render them: metadata only where there is some. The archive's primary
    -- key leads with (board_gen, win, rank): the top N is read by index, not sorted.
    SELECT coalesce(json_agg(CASE WHEN a.metadata IS NULL
                THEN json_build_object('rank', a.rank, 'player_id', a.player_id, 'score', a.score, 'achieved_at', a.at)
                ELSE json_build_object('rank', a.rank, 'player_id', a.player_id, 'score', a.score, 'achieved_at', a.at,
                                       'metadata', a.metadata::json) END ORDER BY a.rank), '[]'::json)
    INTO standings
    FROM (SELECT x.rank, x.player_id, x.score, x.metadata,
                 to_char((timestamptz 'epoch' + x.achieved_ms * interval '1 millisecond') AT TIME ZONE 'UTC',
                         'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
          FROM archive x WHERE x.board_gen = g AND x.win = w ORDER BY x.rank LIMIT top_n) a;
    -- The archive's statistics count its rows (kept up to date by a player's deletion too).
    SELECT aw.players INTO total FROM archived_windows aw WHERE aw.board_gen = g AND aw.win = w;
    IF total IS NULL THEN
        SELECT count(*) INTO total FROM archive x WHERE x.board_gen = g AND x.win = w;
    END IF;
    IF b.cohort_size IS NULL THEN
        RETURN json_build_object('id', eid, 'type', 'window_closed', 'board', b.id, 'window', to_char(w, 'YYYY-MM-DD'),
                                 'closed_at', closed_at, 'standings', standings, 'standings_total', total,
                                 'standings_export', rankd_event_export_path(b.id, w));
    END IF;
    SELECT coalesce(json_agg(json_build_object('player_id', m.player_id, 'from', b.tiers->m.from_tier->>'name',
                                               'to', b.tiers->m.to_tier->>'name') ORDER BY m.cohort, m.cohort_rank),
                    '[]'::json)
    INTO moves
    FROM (SELECT * FROM league_moves m WHERE m.board_gen = g AND m.win = w AND m.from_tier <> m.to_tier
          ORDER BY m.cohort, m.cohort_rank LIMIT top_n) m;
    SELECT count(*) INTO moves_total
    FROM league_moves m WHERE m.board_gen = g AND m.win = w AND m.from_tier <> m.to_tier;
    RETURN json_build_object('id', eid, 'type', 'window_closed', 'board', b.id, 'window', to_char(w, 'YYYY-MM-DD'),
                             'closed_at', closed_at, 'standings', standings, 'standings_total', total,
                             'standings_export', rankd_event_export_path(b.id, w),
                             'moves', moves, 'moves_total', moves_total);
END $$;

-- The window_closed event of window w of board g, once, as 0021 made it, with the top `top_n`.
DROP FUNCTION rankd_window_event(bigint, date, bigint);
CREATE FUNCTION rankd_window_event(g bigint, w date, now_ms bigint, top_n int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    b record;
    closed_at text;
    eid text;
    body json;
BEGIN
    SELECT * INTO b FROM boards WHERE gen = g;
    IF NOT FOUND OR b.webhook_url IS NULL OR NOT (b.tournament OR b.cohort_size IS NOT NULL) THEN
        RETURN;
    END IF;
    closed_at := to_char(CASE WHEN b.t_end_ms IS NOT NULL THEN timestamptz 'epoch' + b.t_end_ms * interval '1 millisecond'
                              WHEN b.tournament THEN (w::timestamp AT TIME ZONE 'UTC') + b.t_duration_s * interval '1 second'
                              ELSE (CASE b.reset WHEN 'daily' THEN w + 1 WHEN 'weekly' THEN w + 7
                                                 ELSE (w + interval '1 month')::date END)::timestamp AT TIME ZONE 'UTC'
                         END AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
    eid := 'ev-' || g || '-' || to_char(w, 'YYYYMMDD');
    body := rankd_window_event_body(g, w, eid, closed_at, top_n);
    INSERT INTO events (id, board_gen, win, type, body, url, secret, created_ms, next_ms, standings_limit,
                        standings_total, moves_total)
    VALUES (eid, g, w, 'window_closed', body::text, b.webhook_url, b.webhook_secret, now_ms, now_ms, top_n,
            (body->>'standings_total')::bigint, (body->>'moves_total')::bigint)
    ON CONFLICT DO NOTHING;
END $$;

-- Board g's events that named player p, or whose totals counted them below the top N, made again
-- without them with the limit each was made with (called in the player's delete, after their
-- archive rows, archive statistics and league moves are gone). The text search only narrows the
-- bodies parsed; the JSON test decides. A total that no longer matches the archive's count (or
-- the moves') says the player stood below the top N of that window.
CREATE OR REPLACE FUNCTION rankd_events_forget(g bigint, p text) RETURNS void
LANGUAGE sql AS $$
    WITH hit AS (
        SELECT e.id, e.board_gen, e.win, e.body::json->>'closed_at' AS closed_at, e.standings_limit
        FROM events e
        WHERE e.board_gen = g
          AND ((strpos(e.body, p) > 0
                AND (EXISTS (SELECT 1 FROM json_array_elements(e.body::json->'standings') x WHERE x->>'player_id' = p)
                     OR EXISTS (SELECT 1 FROM json_array_elements(coalesce(e.body::json->'moves', '[]'::json)) x
                                WHERE x->>'player_id' = p)))
               OR e.standings_total <> (SELECT aw.players FROM archived_windows aw
                                        WHERE aw.board_gen = e.board_gen AND aw.win = e.win)
               OR (e.moves_total > e.standings_limit
                   AND e.moves_total <> (SELECT count(*) FROM league_moves m
                                         WHERE m.board_gen = e.board_gen AND m.win = e.win
                                           AND m.from_tier <> m.to_tier)))),
    made AS (
        SELECT h.id, rankd_window_event_body(h.board_gen, h.win, h.id, h.closed_at, h.standings_limit) AS body
        FROM hit h)
    UPDATE events e
    SET body = made.body::text,
        standings_total = (made.body->>'standings_total')::bigint,
        moves_total = (made.body->>'moves_total')::bigint
    FROM made WHERE e.id = made.id AND made.body IS NOT NULL;
$$;

-- Drop the delivered and failed events made before `before_ms`, at most `batch`; how many.
CREATE FUNCTION rankd_events_expire(before_ms bigint, batch int) RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (DELETE FROM events WHERE id IN (SELECT id FROM events WHERE state <> 'pending' AND created_ms < before_ms
                                               ORDER BY created_ms LIMIT batch)
               RETURNING 1)
    SELECT count(*) FROM d;
$$;
