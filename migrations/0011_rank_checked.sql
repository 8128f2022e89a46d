-- 0011_rank_checked.sql — the upkeep leader looks for drifted rank buckets only in windows
-- written since it last found them in shape.
--
-- rankd_rank_buckets_drifted (0009, 0010) ran rankd_rank_misfits over every live window each
-- second: a scan of each window's buckets and supers, whether anything was written there or not,
-- so its cost grew with the number of windows kept, idle ones included. Every transaction that
-- changes a window's standings updates the window's window_counts row (0009's lock), which gives
-- the row a new version and so a new xmin. A window whose row still has the xmin it had when its
-- buckets were last found in shape, for the same refresh.rank_bucket_rows, is still in shape:
-- what else changes buckets (a re-cut, rankd_rank_buckets_build) leaves none out of shape.

SET LOCAL statement_timeout = 0;

CREATE TABLE rank_checked (
    board_gen   bigint NOT NULL,
    win         date NOT NULL,
    seen        xid NOT NULL,     -- window_counts.xmin when found in shape
    min_rows    bigint NOT NULL,  -- for this refresh.rank_bucket_rows
    PRIMARY KEY (board_gen, win)
);

-- The windows with a bucket or super out of shape for `min_rows`, each with its bucket target.
-- Those found in shape are remembered in rank_checked, and the windows gone are forgotten there.
-- The plan's estimate (a scan of buckets for every window) is far above jit_above_cost, and
-- compiling it took 400 ms of the 410 (20,000 windows, none written since): no JIT.
CREATE OR REPLACE FUNCTION rankd_rank_buckets_drifted(min_rows bigint)
RETURNS TABLE (board_gen bigint, win date, target bigint) LANGUAGE sql VOLATILE SET jit = off AS $$
    WITH cand AS (
        SELECT c.board_gen, c.win, c.xmin AS seen, t.t, rankd_rank_super_target(c.players, t.t) AS st
          FROM window_counts c CROSS JOIN LATERAL (SELECT rankd_rank_bucket_target(c.players, min_rows) AS t) t
         -- An archived window is read from its archive, and retention deletes its standings
         -- in batches without counting them out: its buckets are left alone until they go.
         WHERE NOT EXISTS (SELECT 1 FROM archived_windows a WHERE a.board_gen = c.board_gen AND a.win = c.win)
           AND NOT EXISTS (SELECT 1 FROM rank_checked k WHERE k.board_gen = c.board_gen AND k.win = c.win
                              AND k.seen = c.xmin AND k.min_rows = rankd_rank_buckets_drifted.min_rows)),
    judged AS (
        SELECT cand.*, EXISTS (SELECT 1 FROM rankd_rank_misfits(cand.board_gen, cand.win, cand.t, cand.st)) AS drifted
          FROM cand),
    fine AS (
        INSERT INTO rank_checked (board_gen, win, seen, min_rows)
        SELECT j.board_gen, j.win, j.seen, rankd_rank_buckets_drifted.min_rows FROM judged j WHERE NOT j.drifted
        ON CONFLICT ON CONSTRAINT rank_checked_pkey DO UPDATE SET seen = EXCLUDED.seen, min_rows = EXCLUDED.min_rows),
    gone AS (
        DELETE FROM rank_checked k
         WHERE NOT EXISTS (SELECT 1 FROM window_counts c WHERE c.board_gen = k.board_gen AND c.win = k.win))
    SELECT j.board_gen, j.win, j.t FROM judged j WHERE j.drifted
$$;
