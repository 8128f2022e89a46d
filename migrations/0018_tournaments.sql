-- 0018_tournaments.sql — tournament boards: their rules, who joined each slot, attempts, places.
--
-- A board is a tournament when `tournament` is true (API.md, "Competitions"; core/tournament.h):
-- a one-off slot [t_start_ms, t_end_ms) on a board that never resets, whose one window is named by
-- the start's date (none_win), or a recurring slot, the first t_duration_s of each window.
-- tournament_entrants holds a row per player and slot (window) once the player joined or, where no
-- join is required, once a first submission was accepted: its attempts (accepted submissions) and
-- the attempts an admin added. tournament_slots counts a slot's entrants, under its row lock, so
-- that no race passes max_players: a join (store/tournament.c) and a writer that admits a new
-- entrant (worker/writer.c) both lock it, after the player's advisory lock.

ALTER TABLE boards
    ADD COLUMN tournament      boolean NOT NULL DEFAULT false,
    ADD COLUMN t_start_ms      bigint,
    ADD COLUMN t_end_ms        bigint,
    ADD COLUMN t_duration_s    bigint,
    ADD COLUMN t_max_players   bigint,
    ADD COLUMN t_max_attempts  bigint,
    ADD COLUMN t_join_required boolean NOT NULL DEFAULT false,
    ADD COLUMN t_category      text,
    -- the one window of a board that never resets: 1970-01-01, or a one-off tournament's start date
    ADD COLUMN none_win        date NOT NULL DEFAULT DATE '1970-01-01',
    ADD CHECK (NOT tournament OR (t_start_ms IS NOT NULL AND t_end_ms > t_start_ms AND t_duration_s IS NULL
                                  AND reset = 'none')
                              OR (t_start_ms IS NULL AND t_end_ms IS NULL AND t_duration_s >= 1 AND reset <> 'none')),
    ADD CHECK (t_max_players IS NULL OR t_max_players >= 1),
    ADD CHECK (t_max_attempts IS NULL OR t_max_attempts >= 1);

CREATE TABLE tournament_entrants (
    board_gen      bigint NOT NULL,
    win            date NOT NULL,
    player_id      text COLLATE "C" NOT NULL,
    joined_ms      bigint,                      -- NULL: never joined (scored where no join is required)
    attempts       bigint NOT NULL DEFAULT 0,   -- accepted submissions in the slot
    extra_attempts bigint NOT NULL DEFAULT 0,   -- added by an admin
    PRIMARY KEY (board_gen, win, player_id)
);

CREATE TABLE tournament_slots (
    board_gen bigint NOT NULL,
    win       date NOT NULL,
    entrants  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (board_gen, win)
);

-- A join (API.md: idempotent; never past max_players): under the player's advisory lock (the one
-- writers take, core/ids.c id_player_lock_key) and, where the slot's entrants are counted
-- (`counted`: a join is required, or there is a cap), the slot's row lock. Returns 'joined' or
-- 'again' with the join's instant, 'full', or 'gone' (the board was deleted).
CREATE FUNCTION rankd_tournament_join(g bigint, w date, p text, lock_key bigint, now_ms bigint, cap bigint,
                                      counted boolean)
RETURNS TABLE (outcome text, joined bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n bigint := 0;
    j bigint;
    a bigint;
    had boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    PERFORM 1 FROM boards WHERE gen = g FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'gone'::text, NULL::bigint;
        RETURN;
    END IF;
    IF counted THEN
        INSERT INTO tournament_slots (board_gen, win) VALUES (g, w) ON CONFLICT (board_gen, win) DO NOTHING;
        SELECT s.entrants INTO n FROM tournament_slots s WHERE s.board_gen = g AND s.win = w FOR UPDATE;
    END IF;
    SELECT e.joined_ms, e.attempts INTO j, a FROM tournament_entrants e
     WHERE e.board_gen = g AND e.win = w AND e.player_id = p;
    had := FOUND;
    IF had AND j IS NOT NULL THEN
        RETURN QUERY SELECT 'again'::text, j;
        RETURN;
    END IF;
    -- a player who scored already (where no join is required) holds a place
    had := had AND a > 0;
    IF counted AND NOT had AND cap IS NOT NULL AND n >= cap THEN
        RETURN QUERY SELECT 'full'::text, NULL::bigint;
        RETURN;
    END IF;
    INSERT INTO tournament_entrants (board_gen, win, player_id, joined_ms) VALUES (g, w, p, now_ms)
        ON CONFLICT (board_gen, win, player_id) DO UPDATE SET joined_ms = now_ms;
    IF counted AND NOT had THEN
        UPDATE tournament_slots s SET entrants = s.entrants + 1 WHERE s.board_gen = g AND s.win = w;
    END IF;
    RETURN QUERY SELECT 'joined'::text, now_ms;
END
$$;
