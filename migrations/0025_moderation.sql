-- Moderation (issue 50 item 4): an admin hides a player on a board. A hidden player's standings
-- of the board's live windows leave `standings` for `hidden_standings`, which no ranking counts
-- (Redis, the rank buckets, the rank tier, the statistics and exports read `standings` only), and
-- a submission of a hidden player updates its hidden standing instead (worker/write_steps.c). A
-- restore moves them back, each a numbered change of its window as a write is.

-- Who is hidden on which board, since when, and why (the reason an admin gave, or NULL).
CREATE TABLE hidden_players (
    board_gen   bigint NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    hidden_at   timestamptz NOT NULL,
    reason      text,
    PRIMARY KEY (board_gen, player_id)
);
-- The admin's listing pages by (hidden_at, player_id).
CREATE INDEX hidden_players_by_time ON hidden_players (board_gen, hidden_at, player_id);

-- The standings of hidden players, as `standings` holds them (same columns, same key).
CREATE TABLE hidden_standings (
    board_gen   bigint NOT NULL,
    win         date NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    score       bigint NOT NULL,
    sort_key    bigint NOT NULL,
    achieved_ms bigint NOT NULL,
    metadata    text,
    version     bigint NOT NULL,
    PRIMARY KEY (board_gen, win, player_id)
);
CREATE INDEX hidden_standings_by_player ON hidden_standings (board_gen, player_id);
