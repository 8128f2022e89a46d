-- 0027_writer_plans.sql — the writer's plans (issue 51): the archive lock keys as SQL PostgreSQL can
-- inline, and the functions a write transaction calls planned as before under its settings.
--
-- Both functions are declared IMMUTABLE, but `text || bigint` is anytextcat, which is STABLE (a
-- type's output function may be): PostgreSQL then refuses to inline them and runs each call as
-- an SQL function, parsing and planning its body in every statement that calls it. The writer
-- takes each window's archive lock in every transaction, and that one call cost about 0.1 ms of
-- PostgreSQL's time, a twentieth of a lone submission's. With explicit casts (int8out and
-- int4out are immutable) the bodies inline; the keys are the same text, so the same numbers, and
-- a writer of this version and an archive of the last one still exclude each other.
CREATE OR REPLACE FUNCTION rankd_archive_window_lock_key(gen bigint, w date) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('rankd archive ' || gen::text || ' ' || (w - DATE '1970-01-01')::text, 0) $$;

CREATE OR REPLACE FUNCTION rankd_archive_lock_key(gen bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('rankd archive ' || gen::text, 0) $$;

-- A write transaction plans its statements with hash joins, merge joins and seq scans off
-- (src/store/write_sql.c, ws_tx_settings_sql): its statements look rows up by primary key, and a
-- generic plan made while a table was small must not hash the whole table. Two functions it calls
-- do set-wide work that a hash or merge join serves better (a league window's settling joins all
-- its members to their standings; a re-cut compares all of a window's buckets with its supers):
-- they, and everything they call, plan with the server's settings. A CREATE OR REPLACE of either
-- drops this: repeat it.
ALTER FUNCTION rankd_league_place(bigint[], date[], text[])
    SET enable_hashjoin = on SET enable_mergejoin = on SET enable_seqscan = on;
ALTER FUNCTION rankd_rank_buckets_recut_until(bigint, date, bigint, int)
    SET enable_hashjoin = on SET enable_mergejoin = on SET enable_seqscan = on;
