-- 0019_leagues.sql — league boards: cohorts of at most N players per tier, ranked on their own,
-- with promotion and relegation at each reset (API.md, "Competitions"; core/league.h).
--
-- A board is a league when cohort_size is set; tiers is its ordered list, lowest first, of
-- {"name", "promote", "relegate"}. A player's first standing in a window places them
-- (rankd_league_place, called by the writer in the submission's own transaction) in the newest
-- cohort of their tier while it has room, else in a new one: cohorts are numbered 1, 2, ... per
-- window in the order they open, and a window's placements go one transaction at a time under its
-- league_windows row lock, so no cohort passes N whatever the concurrency.
--
-- Before a window places anyone (rankd_league_open), every earlier window of the board is settled
-- (rankd_league_settle): under the window's archive lock, taken exclusively (late writers hold it
-- shared; the writer refuses a window found settled, as one found archived), its final cohort
-- ranks give each player's move (league_moves, kept with the archive) and the tier their next
-- window places them in (league_tiers). The archiver settles a window too, before archiving it.

ALTER TABLE boards
    ADD COLUMN cohort_size int,
    ADD COLUMN tiers       jsonb,
    ADD CHECK (cohort_size IS NULL OR (cohort_size BETWEEN 2 AND 1000 AND jsonb_typeof(tiers) = 'array'
                                       AND NOT tournament));

CREATE TABLE league_windows (
    board_gen bigint NOT NULL,
    win       date NOT NULL,
    cohorts   int NOT NULL DEFAULT 0,         -- cohorts opened in the window: numbered 1..cohorts
    opened    boolean NOT NULL DEFAULT false, -- every earlier window settled: it may place players
    settled   boolean NOT NULL DEFAULT false, -- its moves are made: no late write may change it
    PRIMARY KEY (board_gen, win)
);

CREATE TABLE league_cohorts (
    board_gen bigint NOT NULL,
    win       date NOT NULL,
    cohort    int NOT NULL,
    tier      int NOT NULL,
    members   int NOT NULL,                    -- places given (a deleted player's is not given again)
    PRIMARY KEY (board_gen, win, cohort)
);
CREATE INDEX league_cohorts_tier ON league_cohorts (board_gen, win, tier, cohort);

CREATE TABLE league_members (
    board_gen bigint NOT NULL,
    win       date NOT NULL,
    player_id text COLLATE "C" NOT NULL,
    tier      int NOT NULL,
    cohort    int NOT NULL,
    PRIMARY KEY (board_gen, win, player_id)
);
-- A cohort's players, read from the index alone (a cohort's read and a league standing's rank).
CREATE INDEX league_members_cohort ON league_members (board_gen, win, cohort, player_id);

-- A player's tier for the next window they are placed in (none: the lowest, 0).
CREATE TABLE league_tiers (
    board_gen bigint NOT NULL,
    player_id text COLLATE "C" NOT NULL,
    tier      int NOT NULL,
    PRIMARY KEY (board_gen, player_id)
);

-- A settled window's final cohort ranks and the moves they made.
CREATE TABLE league_moves (
    board_gen   bigint NOT NULL,
    win         date NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    cohort      int NOT NULL,
    cohort_rank int NOT NULL,
    from_tier   int NOT NULL,
    to_tier     int NOT NULL,
    PRIMARY KEY (board_gen, win, player_id)
);

-- Settle window w of league board g once: its final cohort ranks (ordinal, the board's order),
-- the top `promote` of each cohort up a tier, the bottom `relegate` down (promotion first where
-- a small cohort holds both; nobody above the highest tier or below the lowest).
CREATE FUNCTION rankd_league_settle(g bigint, w date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ts jsonb;
    n int;
BEGIN
    SELECT b.tiers INTO ts FROM boards b WHERE b.gen = g AND b.cohort_size IS NOT NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- Late writers of the window first (they hold it shared): the standings are final after.
    PERFORM pg_advisory_xact_lock(rankd_archive_window_lock_key(g, w));
    INSERT INTO league_windows (board_gen, win) VALUES (g, w) ON CONFLICT DO NOTHING;
    PERFORM 1 FROM league_windows WHERE board_gen = g AND win = w AND NOT settled FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    n := jsonb_array_length(ts);
    INSERT INTO league_moves (board_gen, win, player_id, cohort, cohort_rank, from_tier, to_tier)
    SELECT g, w, x.player_id, x.cohort, x.r, x.tier,
           CASE WHEN x.r <= (ts->x.tier->>'promote')::int AND x.tier < n - 1 THEN x.tier + 1
                WHEN x.r > x.k - (ts->x.tier->>'relegate')::int AND x.tier > 0 THEN x.tier - 1
                ELSE x.tier END
    FROM (SELECT m.player_id, m.cohort, m.tier,
                 row_number() OVER (PARTITION BY m.cohort
                                    ORDER BY s.sort_key, s.achieved_ms, s.player_id COLLATE "C") AS r,
                 count(*) OVER (PARTITION BY m.cohort) AS k
          FROM league_members m
          JOIN standings s ON s.board_gen = m.board_gen AND s.win = m.win AND s.player_id = m.player_id
          WHERE m.board_gen = g AND m.win = w) x;
    INSERT INTO league_tiers (board_gen, player_id, tier)
    SELECT board_gen, player_id, to_tier FROM league_moves WHERE board_gen = g AND win = w
    ON CONFLICT (board_gen, player_id) DO UPDATE SET tier = EXCLUDED.tier;
    UPDATE league_windows SET settled = true WHERE board_gen = g AND win = w;
END $$;

-- Lock window w of league board g for placing (until the transaction ends), settling every
-- earlier window first the first time.
CREATE FUNCTION rankd_league_open(g bigint, w date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    o boolean;
    p date;
BEGIN
    INSERT INTO league_windows (board_gen, win) VALUES (g, w) ON CONFLICT DO NOTHING;
    SELECT opened INTO o FROM league_windows WHERE board_gen = g AND win = w FOR UPDATE;
    IF o THEN
        RETURN;
    END IF;
    FOR p IN SELECT win FROM league_windows WHERE board_gen = g AND win < w AND NOT settled ORDER BY win LOOP
        PERFORM rankd_league_settle(g, p);
    END LOOP;
    UPDATE league_windows SET opened = true WHERE board_gen = g AND win = w;
END $$;

-- Place the players ps[i] (in that order) in windows (gs[i], ws[i]) of league boards, those not
-- placed there yet; the others and other boards are left alone. Windows are locked in (board,
-- window) order. Per window, one statement: the new players, numbered within their tier in
-- arrival order, fill the room the tier's newest cohort has left, then new cohorts of the tier,
-- `size` at a time (numbered after the window's others). Returns how many were placed.
CREATE FUNCTION rankd_league_place(gs bigint[], ws date[], ps text[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    gw record;
    size int;
    base int;
    n bigint;
    placed bigint := 0;
BEGIN
    FOR gw IN SELECT DISTINCT u.g, u.w FROM unnest(gs, ws) AS u(g, w) ORDER BY 1, 2 LOOP
        SELECT cohort_size INTO size FROM boards WHERE gen = gw.g;
        CONTINUE WHEN size IS NULL;
        PERFORM rankd_league_open(gw.g, gw.w);
        SELECT cohorts INTO base FROM league_windows WHERE board_gen = gw.g AND win = gw.w;
        -- Written as probes per player and per tier (scalar subqueries, LIMIT 1): the writer
        -- forces generic plans, and one made without statistics must still not read a window's
        -- members or cohorts whole (a hash join over them was 10 ms per call at 10,000 players).
        WITH fresh AS (
            SELECT u.p, u.i, coalesce((SELECT t.tier FROM league_tiers t
                                       WHERE t.board_gen = gw.g AND t.player_id = u.p LIMIT 1), 0) AS tier
            FROM unnest(gs, ws, ps) WITH ORDINALITY AS u(g, w, p, i)
            WHERE u.g = gw.g AND u.w = gw.w
              AND (SELECT true FROM league_members m
                   WHERE m.board_gen = gw.g AND m.win = gw.w AND m.player_id = u.p LIMIT 1) IS NULL),
        numbered AS (SELECT p, tier, row_number() OVER (PARTITION BY tier ORDER BY i) AS k FROM fresh),
        newest AS (SELECT t.tier, o.cohort, o.members FROM (SELECT DISTINCT tier FROM numbered) t
                   CROSS JOIN LATERAL (SELECT c.cohort, c.members FROM league_cohorts c
                                       WHERE c.board_gen = gw.g AND c.win = gw.w AND c.tier = t.tier
                                       ORDER BY c.cohort DESC LIMIT 1) o),
        slot AS (SELECT x.p, x.tier, x.k, o.cohort AS newest_cohort,
                        greatest(size - coalesce(o.members, size), 0) AS room
                 FROM numbered x LEFT JOIN newest o ON o.tier = x.tier),
        go AS (SELECT p, tier, CASE WHEN k <= room THEN newest_cohort END AS cohort,
                      CASE WHEN k > room THEN (k - room - 1) / size END AS j FROM slot),
        opened AS (SELECT tier, j, base + row_number() OVER (ORDER BY tier, j) AS cohort
                   FROM (SELECT DISTINCT tier, j FROM go WHERE j IS NOT NULL) d),
        ins AS (INSERT INTO league_members (board_gen, win, player_id, tier, cohort)
                SELECT gw.g, gw.w, go.p, go.tier, coalesce(go.cohort, o.cohort)
                FROM go LEFT JOIN opened o ON o.tier = go.tier AND o.j = go.j
                RETURNING tier, cohort),
        counted AS (INSERT INTO league_cohorts AS c (board_gen, win, cohort, tier, members)
                    SELECT gw.g, gw.w, cohort, tier, count(*) FROM ins GROUP BY cohort, tier
                    ON CONFLICT (board_gen, win, cohort) DO UPDATE SET members = c.members + EXCLUDED.members),
        numbers AS (UPDATE league_windows SET cohorts = cohorts + (SELECT count(*) FROM opened)
                    WHERE board_gen = gw.g AND win = gw.w)
        SELECT count(*) INTO n FROM ins;
        placed := placed + n;
    END LOOP;
    RETURN placed;
END $$;
