-- 0018_tournaments.sql — tournament boards: their rules, who joined each slot, attempts, places.
--
-- A board is a tournament when `tournament` is true (API.md, "Competitions"; core/tournament.h):
-- a one-off slot [t_start_ms, t_end_ms) on a board that never resets, whose one window is named by
-- the start's date (none_win), or a recurring slot, the first t_duration_s of each window.
-- tournament_entrants holds a row per player and slot (window) once the player joined or, where no
-- join is required, once a first submission was accepted: its attempts (accepted submissions) and
-- the attempts an admin added. tournament_slots counts a slot's entrants, under its row lock, so
-- that no race passes max_players: joins (store/tournament.c, q_tournament_join_batch) and a
-- writer that admits a new entrant (worker/writer.c) both lock it, after the players' advisory
-- locks, in the same order.

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

