-- 0015_board_purges.sql — a board's deletion answers at once; its rows go in the background.
--
-- DELETE /v1/leaderboards/{board} deleted every standing of the board in the request's one
-- statement: on a board of ten million players that outlasts any statement timeout, and the
-- deletion failed. Now the request deletes the board's row (every read answers 404 from then
-- on, and no write can land: writers hold the row FOR KEY SHARE) and queues its generation
-- here, with the log purge (log_purges) beside it. The upkeep leader removes the rest in
-- bounded statements (store/upkeep.c, upkeep_purge_board): the counters, rank buckets and
-- archives' records first, then the standings a few thousand rows at a time, then idempotency
-- keys and daily activity; once the log's rows are gone too, the board's Redis keys (last: long
-- after any rebuild of one of its windows begun before the deletion), until a sweep of every
-- master finds none. A restart resumes where it stopped; the row goes with the Redis keys.

CREATE TABLE board_purges (
    board_gen    bigint PRIMARY KEY,
    deleted_at   timestamptz NOT NULL DEFAULT now(),
    counts_done  boolean NOT NULL DEFAULT false,  -- counters, buckets, archive records gone
    rows_done    boolean NOT NULL DEFAULT false   -- standings, keys, activity gone
);
