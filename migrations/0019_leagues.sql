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
CREATE INDEX league_members_cohort ON league_members (board_gen, win, cohort);

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
-- window) order. Returns how many were placed.
CREATE FUNCTION rankd_league_place(gs bigint[], ws date[], ps text[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    gw record;
    pl text;
    t int;
    c int;
    k int;
    size int;
    placed bigint := 0;
BEGIN
    FOR gw IN SELECT DISTINCT u.g, u.w FROM unnest(gs, ws) AS u(g, w) ORDER BY 1, 2 LOOP
        SELECT cohort_size INTO size FROM boards WHERE gen = gw.g;
        CONTINUE WHEN size IS NULL;
        PERFORM rankd_league_open(gw.g, gw.w);
        FOR pl IN SELECT u.p FROM unnest(gs, ws, ps) WITH ORDINALITY AS u(g, w, p, i)
                  WHERE u.g = gw.g AND u.w = gw.w ORDER BY u.i LOOP
            CONTINUE WHEN EXISTS (SELECT 1 FROM league_members
                                  WHERE board_gen = gw.g AND win = gw.w AND player_id = pl);
            t := coalesce((SELECT tier FROM league_tiers WHERE board_gen = gw.g AND player_id = pl), 0);
            SELECT cohort, members INTO c, k FROM league_cohorts
            WHERE board_gen = gw.g AND win = gw.w AND tier = t ORDER BY cohort DESC LIMIT 1;
            IF c IS NULL OR k >= size THEN
                UPDATE league_windows SET cohorts = cohorts + 1 WHERE board_gen = gw.g AND win = gw.w
                RETURNING cohorts INTO c;
                INSERT INTO league_cohorts (board_gen, win, cohort, tier, members) VALUES (gw.g, gw.w, c, t, 1);
            ELSE
                UPDATE league_cohorts SET members = members + 1 WHERE board_gen = gw.g AND win = gw.w AND cohort = c;
            END IF;
            INSERT INTO league_members (board_gen, win, player_id, tier, cohort) VALUES (gw.g, gw.w, pl, t, c);
            placed := placed + 1;
        END LOOP;
    END LOOP;
    RETURN placed;
END $$;
