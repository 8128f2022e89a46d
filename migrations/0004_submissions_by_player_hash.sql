-- 0004_submissions_by_player_hash.sql — each month of the submission log split 32 ways by a
-- hash of the player, with no index.
--
-- The log had an index on (board_gen, player_id): one entry per accepted submission, at a
-- random place of an index as large as the log. Keeping it was about a third of the writer's
-- PostgreSQL time (batched writes on one CPU: 59,000 submissions/s with it, 78,000 without).
-- The log is searched for only two things:
-- - erasing a player (DELETE .../players/{player}) reads one part in 32 of each month
--   (partition pruning on player_id);
-- - deleting a board no longer deletes its log rows in the request: it queues the board in
--   `log_purges`, and the refresh worker removes them a few parts at a time
--   (rankd_purge_log), each step a bounded scan. A board's log can be larger than any one
--   statement may take (5 s by default), with the index or without.
-- The default partition is left as it is: rankd_ensure_partitions keeps it empty.
--
-- The existing months are copied into the new form in this one transaction, which holds the
-- log's lock until it commits: writes wait for it (stop rankd first on a large log).

SET LOCAL statement_timeout = 0;

DROP INDEX submissions_player;

-- The partition of `submissions` named `name` with partition bound `bound` (FOR VALUES ...), and its 32 parts
-- name_p00 .. name_p31.
CREATE FUNCTION rankd_create_submissions_month(name text, bound text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I PARTITION OF submissions %s PARTITION BY HASH (player_id)', name, bound);
    FOR i IN 0 .. 31 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS 32, REMAINDER %s)',
                       name || '_p' || lpad(i::text, 2, '0'), name, i);
    END LOOP;
END $$;

-- The months that exist are made again in the new form, their rows moved into it.
DO $$
DECLARE
    m record;
BEGIN
    FOR m IN
        SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'submissions'::regclass AND c.relkind = 'r'
          AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE submissions DETACH PARTITION %I', m.name);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', m.name, m.name || '_moving');
        PERFORM rankd_create_submissions_month(m.name, m.bound);
        EXECUTE format('INSERT INTO submissions (board_gen, win, player_id, score, metadata, updated, received_at)'
                       ' SELECT board_gen, win, player_id, score, metadata, updated, received_at FROM %I',
                       m.name || '_moving');
        EXECUTE format('DROP TABLE %I', m.name || '_moving');
    END LOOP;
END $$;

-- As in 0001 (the months from from_ts's, `months` of them, those missing made; returns how
-- many it made), each month now made with its parts. Months are counted in UTC.
CREATE OR REPLACE FUNCTION rankd_ensure_partitions(from_ts timestamptz, months int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    m timestamp;
    made int := 0;
BEGIN
    FOR m IN SELECT generate_series(date_trunc('month', from_ts AT TIME ZONE 'UTC'),
                                    date_trunc('month', from_ts AT TIME ZONE 'UTC') + (months - 1) * interval '1 month',
                                    interval '1 month')
    LOOP
        CONTINUE WHEN to_regclass('submissions_' || to_char(m, 'YYYY_MM')) IS NOT NULL;
        PERFORM rankd_create_submissions_month('submissions_' || to_char(m, 'YYYY_MM'),
            format('FOR VALUES FROM (%L) TO (%L)', m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC'));
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- Boards deleted whose log rows are still to be removed, and the last part of the log (by
-- name, in pg_partition_tree's leaves) already purged of each.
CREATE TABLE log_purges (
    board_gen    bigint PRIMARY KEY,
    done_through text COLLATE "C" NOT NULL DEFAULT ''
);

-- Remove the log rows of deleted boards from at most `parts` leaf partitions (parts in name
-- order, from where the last call stopped); a board leaves log_purges once every part is
-- done. Returns how many parts it purged: `parts` means there may be more to do. No row of a
-- deleted board arrives after its deletion (writes take the board's row FOR KEY SHARE).
CREATE FUNCTION rankd_purge_log(parts int) RETURNS int
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
            UPDATE log_purges SET done_through = leaf WHERE board_gen = g.board_gen;
            done := done + 1;
        END LOOP;
        DELETE FROM log_purges WHERE board_gen = g.board_gen;
    END LOOP;
    RETURN done;
END $$;
