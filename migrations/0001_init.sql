-- 0001_init.sql — boards, current standings, the submission log, idempotency keys.
--
-- Every table below a board is keyed by the board's generation, not its id:
-- a board deleted and re-created under the same id shares no row, cursor
-- or idempotency key with the old one.

CREATE SEQUENCE board_generation;
CREATE SEQUENCE standing_version;

CREATE TABLE boards (
    id          text COLLATE "C" PRIMARY KEY,
    gen         bigint NOT NULL UNIQUE DEFAULT nextval('board_generation'),
    title       text NOT NULL,
    sort        text NOT NULL CHECK (sort IN ('asc', 'desc')),
    operator    text NOT NULL CHECK (operator IN ('best', 'latest', 'sum')),
    reset       text NOT NULL CHECK (reset IN ('none', 'daily', 'weekly', 'monthly')),
    metadata    text,                     -- compact JSON object, key order kept
    min_score   bigint,
    max_score   bigint,
    created_ms  bigint NOT NULL,          -- creation instant, ms since epoch
    CHECK (min_score IS NULL OR max_score IS NULL OR min_score <= max_score)
);

-- Current standing of each player in each window of each board.
-- sort_key is the score for asc boards and -score for desc boards, so
-- (sort_key, achieved_ms, player_id) ascending is rank order on every board.
CREATE TABLE standings (
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
CREATE INDEX standings_rank ON standings (board_gen, win, sort_key, achieved_ms, player_id);

-- Per-window counters kept current by the writing transaction, so `total`
-- never needs count(*).
CREATE TABLE window_counts (
    board_gen   bigint NOT NULL,
    win         date NOT NULL,
    players     bigint NOT NULL DEFAULT 0,
    submissions bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (board_gen, win)
);

-- Append-only log of every accepted submission, partitioned by month.
CREATE TABLE submissions (
    board_gen   bigint NOT NULL,
    win         date NOT NULL,
    player_id   text COLLATE "C" NOT NULL,
    score       bigint NOT NULL,
    metadata    text,
    updated     boolean NOT NULL,
    received_at timestamptz NOT NULL
) PARTITION BY RANGE (received_at);
CREATE INDEX submissions_player ON submissions (board_gen, player_id);

-- Rows outside every monthly partition land here rather than fail a write;
-- rankd_ensure_partitions() keeps it empty in practice.
CREATE TABLE submissions_default PARTITION OF submissions DEFAULT;

CREATE TABLE idempotency_keys (
    board_gen   bigint NOT NULL,
    key         text COLLATE "C" NOT NULL,
    request     text NOT NULL,            -- canonical request the key was first used with
    response    text,                     -- the answer sent, byte for byte
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (board_gen, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

-- Create the monthly partitions of `submissions` from the month of `from_ts`
-- for `months` months; existing ones are left alone. Returns how many it made.
CREATE FUNCTION rankd_ensure_partitions(from_ts timestamptz, months int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', from_ts AT TIME ZONE 'UTC')::date;
    made int := 0;
    lo date;
    hi date;
    name text;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        lo := (first + make_interval(months => i))::date;
        hi := (first + make_interval(months => i + 1))::date;
        name := format('submissions_%s', to_char(lo, 'YYYY_MM'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF submissions FOR VALUES FROM (%L) TO (%L)',
                           name, lo::timestamp AT TIME ZONE 'UTC', hi::timestamp AT TIME ZONE 'UTC');
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;

SELECT rankd_ensure_partitions(now(), 3);
