-- 0017_recut_in_batch.sql — a large batch re-cuts its window's rank buckets before it commits.
--
-- A bulk load by 1,000-item batches grew the buckets of a new window faster than the upkeep
-- leader's re-cut (a fifth of each second, 8 changes a transaction) could split them: right after
-- 300,000 players, a rank read from PostgreSQL counted inside buckets of thousands of standings,
-- about 20 s long. The writer now calls this, in the batch's transaction, for each window the
-- batch changed refresh.rank_bucket_rows standings of or more (store/write_sql.c, ws_recut_sql):
-- the batch commits with buckets of their size.

-- rankd_rank_buckets_recut until the window is in shape or `max_steps` changes were made. Each
-- call finds what is out of shape from scratch, so the part a split leaves over 2 x target is
-- split in turn. Returns the changes made.
CREATE FUNCTION rankd_rank_buckets_recut_until(g bigint, w date, target bigint, max_steps int) RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    total int := 0;
    done int;
BEGIN
    LOOP
        EXIT WHEN total >= max_steps;
        done := rankd_rank_buckets_recut(g, w, target, least(8, max_steps - total));
        EXIT WHEN done = 0;
        total := total + done;
    END LOOP;
    RETURN total;
END $$;
