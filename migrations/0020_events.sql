-- 0020_events.sql — end-of-window events (API.md, "Competitions"): a tournament or league board
-- may name a webhook; when one of its windows closes (it is archived, after the grace, its
-- league's moves made), an event with its final standings and moves is written here in the
-- archive's own transaction, and delivered at least once by every instance's event sender
-- (worker/events.c), which claims due events with SKIP LOCKED: retried with the same id and body,
-- backing off from 30 s to an hour, for 24 hours.

ALTER TABLE boards
    ADD COLUMN webhook_url    text,
    ADD COLUMN webhook_secret text,
    ADD CHECK ((webhook_url IS NULL) = (webhook_secret IS NULL));

CREATE TABLE events (
    id           text PRIMARY KEY,
    board_gen    bigint NOT NULL,
    win          date NOT NULL,
    type         text NOT NULL,
    body         text NOT NULL,            -- the bytes POSTed and signed, the same at every try
    url          text NOT NULL,            -- the board's webhook when the event was made
    secret       text NOT NULL,
    created_ms   bigint NOT NULL,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     int NOT NULL DEFAULT 0,
    next_ms      bigint NOT NULL,          -- when it is due again (a try in flight pushes it on)
    delivered_ms bigint,
    last_status  int,                      -- the last try's HTTP status; NULL: no answer
    last_error   text,
    UNIQUE (board_gen, win, type)
);
CREATE INDEX events_due ON events (next_ms) WHERE state = 'pending';

-- The window_closed event of window w of board g, once (nothing for a board without a webhook,
-- one that is neither a tournament nor a league, or one whose event exists), from its archive
-- (ranks final) and its league moves; `now_ms` is when it is written (the injected clock).
CREATE FUNCTION rankd_window_event(g bigint, w date, now_ms bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    b record;
    closed_at text;
    eid text;
    standings json;
    moves json;
    body json;
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
    body := json_build_object('id', eid, 'type', 'window_closed', 'board', b.id, 'window', to_char(w, 'YYYY-MM-DD'),
                              'closed_at', closed_at, 'standings', standings);
    IF b.cohort_size IS NOT NULL THEN
        SELECT coalesce(json_agg(json_build_object('player_id', m.player_id, 'from', b.tiers->m.from_tier->>'name',
                                                   'to', b.tiers->m.to_tier->>'name') ORDER BY m.cohort, m.cohort_rank),
                        '[]'::json)
        INTO moves FROM league_moves m WHERE m.board_gen = g AND m.win = w AND m.from_tier <> m.to_tier;
        body := json_build_object('id', eid, 'type', 'window_closed', 'board', b.id, 'window', to_char(w, 'YYYY-MM-DD'),
                                  'closed_at', closed_at,
                                  'standings', standings, 'moves', moves);
    END IF;
    INSERT INTO events (id, board_gen, win, type, body, url, secret, created_ms, next_ms)
    VALUES (eid, g, w, 'window_closed', body::text, b.webhook_url, b.webhook_secret, now_ms, now_ms)
    ON CONFLICT DO NOTHING;
END $$;
