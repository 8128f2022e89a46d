-- 0023_purge_progress.sql — a deleted board's purge says how far it is, and goes on a block range
-- at a time (issue 49 item 9). Each purge step removed 5,000 standings, or four whole log
-- partitions, whatever the statement timeout: where one step takes longer (a big board, a short
-- timeout, a busy server) it was cancelled every round, for ever. The leader now paces its
-- steps (store/purge.c): a step that times out is halved, quick ones grow back.
--
-- rows_left: what is left to remove, from the board's counters at its deletion (players for
-- the standings, submissions for the log), counted down by each step; NULL when the board was
-- deleted by an older version (unknown). /metrics sums them (rankd_purge_rows_left).
ALTER TABLE board_purges ADD COLUMN rows_left bigint;
-- next_block: the first block of the partition after done_through not yet purged (0: none of it).
ALTER TABLE log_purges
    ADD COLUMN rows_left  bigint,
    ADD COLUMN next_block bigint NOT NULL DEFAULT 0;

-- An older instance leading during an upgrade still calls this: it purges whole partitions,
-- and a partition it finishes starts the next one from its first block.
CREATE OR REPLACE FUNCTION rankd_purge_log(parts int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    g record;
    leaf text;
    done int := 0;
BEGIN
    FOR g IN SELECT board_gen, done_through FROM log_purges ORDER BY board_gen LOOP
        FOR leaf IN
            SELECT c.relname FROM pg_partition_tree('submissions') t JOIN pg_class c ON c.oid = t.relid
            WHERE t.isleaf AND c.relname COLLATE "C" > g.done_through ORDER BY c.relname COLLATE "C"
        LOOP
            IF done >= parts THEN
                RETURN done;
            END IF;
            EXECUTE format('DELETE FROM %I WHERE board_gen = $1', leaf) USING g.board_gen;
            UPDATE log_purges SET done_through = leaf, next_block = 0 WHERE board_gen = g.board_gen;
            done := done + 1;
        END LOOP;
        DELETE FROM log_purges WHERE board_gen = g.board_gen;
    END LOOP;
    RETURN done;
END $$;
