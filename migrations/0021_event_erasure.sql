-- 0021_event_erasure.sql — a player deleted from a board is gone from its end-of-window events
-- too (API.md, "Competitions"). An event's body is made from the window's archive and its league
-- moves; deleting a player removes their archive rows (the ranks after theirs move up) and their
-- moves, and now makes again, from those, the body of every event of the board that named them,
-- keeping its id and closed_at. A pending event is delivered with the new body (signed as it is
-- sent); one delivered already is not sent again, and GET /v1/events/{id} shows the new body.

-- The body of window w's event of board g: {id, type, board, window, closed_at, standings,
-- moves (a league's)}, from the archive (ranks final) and the league moves; NULL when the board
-- is gone.
CREATE FUNCTION rankd_window_event_body(g bigint, w date, eid text, closed_at text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
    b record;
    standings json;
    moves json;
BEGIN
    SELECT id, cohort_size, tiers INTO b FROM boards WHERE gen = g;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- Entries as reads render them: metadata only where there is some.
    SELECT coalesce(json_agg(CASE WHEN a.metadata IS NULL
                THEN json_build_object('rank', a.rank, 'player_id', a.player_id, 'score', a.score, 'achieved_at', a.at)
                ELSE json_build_object('rank', a.rank, 'player_id', a.player_id, 'score', a.score, 'achieved_at', a.at,
                                       'metadata', a.metadata::json) END ORDER BY a.rank), '[]'::json)
    INTO standings
    FROM (SELECT x.rank, x.player_id, x.score, x.metadata,
                 to_char((timestamptz 'epoch' + x.achieved_ms * interval '1 millisecond') AT TIME ZONE 'UTC',
                         'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
          FROM archive x WHERE x.board_gen = g AND x.win = w) a;
    IF b.cohort_size IS NULL THEN
        RETURN json_build_object('id', eid, 'type', 'window_closed', 'board', b.id, 'window', to_char(w, 'YYYY-MM-DD'),
                                 'closed_at', closed_at, 'standings', standings);
    END IF;
    SELECT coalesce(json_agg(json_build_object('player_id', m.player_id, 'from', b.tiers->m.from_tier->>'name',
                                               'to', b.tiers->m.to_tier->>'name') ORDER BY m.cohort, m.cohort_rank),
                    '[]'::json)
    INTO moves FROM league_moves m WHERE m.board_gen = g AND m.win = w AND m.from_tier <> m.to_tier;
    RETURN json_build_object('id', eid, 'type', 'window_closed', 'board', b.id, 'window', to_char(w, 'YYYY-MM-DD'),
                             'closed_at', closed_at, 'standings', standings, 'moves', moves);
END $$;

-- The window_closed event of window w of board g, once, as 0020_events.sql made it, its body now
-- made by rankd_window_event_body.
CREATE OR REPLACE FUNCTION rankd_window_event(g bigint, w date, now_ms bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    b record;
    closed_at text;
    eid text;
BEGIN
    SELECT * INTO b FROM boards WHERE gen = g;
    IF NOT FOUND OR b.webhook_url IS NULL OR NOT (b.tournament OR b.cohort_size IS NOT NULL) THEN
        RETURN;
    END IF;
    -- A tournament's slot closes at its end (one-off) or duration_s after its window opens; a
    -- league's window at the next reset.
    closed_at := to_char(CASE WHEN b.t_end_ms IS NOT NULL THEN timestamptz 'epoch' + b.t_end_ms * interval '1 millisecond'
                              WHEN b.tournament THEN (w::timestamp AT TIME ZONE 'UTC') + b.t_duration_s * interval '1 second'
                              ELSE (CASE b.reset WHEN 'daily' THEN w + 1 WHEN 'weekly' THEN w + 7
                                                 ELSE (w + interval '1 month')::date END)::timestamp AT TIME ZONE 'UTC'
                         END AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
    eid := 'ev-' || g || '-' || to_char(w, 'YYYYMMDD');
    INSERT INTO events (id, board_gen, win, type, body, url, secret, created_ms, next_ms)
    VALUES (eid, g, w, 'window_closed', rankd_window_event_body(g, w, eid, closed_at)::text, b.webhook_url,
            b.webhook_secret, now_ms, now_ms)
    ON CONFLICT DO NOTHING;
END $$;

-- Board g's events that name player p, made again without them (called in the player's delete,
-- after their archive rows and league moves are gone). The text search only narrows the bodies
-- parsed; the JSON test decides.
CREATE FUNCTION rankd_events_forget(g bigint, p text) RETURNS void
LANGUAGE sql AS $$
    UPDATE events e
    SET body = coalesce(rankd_window_event_body(e.board_gen, e.win, e.id, e.body::json->>'closed_at')::text, e.body)
    WHERE e.board_gen = g AND strpos(e.body, p) > 0
      AND (EXISTS (SELECT 1 FROM json_array_elements(e.body::json->'standings') x WHERE x->>'player_id' = p)
           OR EXISTS (SELECT 1 FROM json_array_elements(coalesce(e.body::json->'moves', '[]'::json)) x
                      WHERE x->>'player_id' = p));
$$;
