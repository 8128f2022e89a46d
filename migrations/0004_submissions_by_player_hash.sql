-- 0004_submissions_by_player_hash.sql — each month of the submission log split 32 ways by a
-- hash of the player, with no index.
--
-- The log had an index on (board_gen, player_id): one entry per accepted submission, at a
-- random place of an index as large as the log. Keeping it was about a third of the writer's
-- PostgreSQL time (batched writes on one CPU: 59,000 submissions/s with it, 78,000 without).
-- The log is searched for only two things: erasing a player (DELETE .../players/{player}),
-- which now reads one part in 32 of each month (partition pruning on player_id), and deleting
-- a board, which reads the whole log, as rare as it is. The default partition is left as it
-- is: rankd_ensure_partitions keeps it empty.

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
        EXECUTE format('INSERT INTO submissions SELECT * FROM %I', m.name || '_moving');
        EXECUTE format('DROP TABLE %I', m.name || '_moving');
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION rankd_ensure_partitions(from_ts timestamptz, months int) RETURNS int
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
            PERFORM rankd_create_submissions_month(name, format('FOR VALUES FROM (%L) TO (%L)',
                lo::timestamp AT TIME ZONE 'UTC', hi::timestamp AT TIME ZONE 'UTC'));
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;
