-- 0027_inlined_lock_keys.sql — the archive lock keys as SQL PostgreSQL can inline (issue 51).
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
