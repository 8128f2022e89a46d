-- loadtest/seed.sql — fill one board's window straight in PostgreSQL, much faster than the API.
--   psql -v gen=GEN -v n=PLAYERS -v seed=0.42 -v base_ms=MS [-v win=YYYY-MM-DD] [-v det=1] -f loadtest/seed.sql
-- Writes n standings into window `win` (default 1970-01-01, the only window of a `reset: none` board) of the
-- board with generation GEN, players p000000000001 … (12 digits: the ids redis-benchmark's
-- __rand_int__ produces), scores uniform in 0..1,000,000 (desc board: sort_key = -score),
-- achieved_ms within the day after base_ms, versions from standing_version, and the window's
-- counters in window_counts and its rank buckets. Deterministic for a given seed. Redis is then loaded from these
-- rows by `rankd rebuild-cache --board ID`.
\set ON_ERROR_STOP on
\if :{?win}
\else
\set win 1970-01-01
\endif
-- -v det=1: player i's score is (i * 7919) % 1000003 instead of a random one, so that a load
-- generator knows every seeded score (writes_mix.lua) and an oracle can recompute them.
\if :{?det}
\else
\set det 0
\endif
BEGIN;
SELECT setseed(:seed);
INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)
SELECT :gen, :'win'::date, 'p' || lpad(x.i::text, 12, '0'), x.s, -x.s,
       :base_ms + x.t, NULL, nextval('standing_version')
FROM (SELECT i, CASE WHEN :det = 1 THEN (i::bigint * 7919) % 1000003 ELSE (random() * 1000000)::bigint END AS s,
             (random() * 86400000)::bigint AS t
      FROM generate_series(1, :n) AS i) AS x;
INSERT INTO window_counts (board_gen, win, players, submissions)
VALUES (:gen, :'win'::date, :n, :n)
ON CONFLICT (board_gen, win) DO UPDATE SET players = EXCLUDED.players, submissions = EXCLUDED.submissions;
-- The window's rank buckets and supers (migrations/0010_rank_supers.sql), as the writer would have kept them.
SELECT rankd_rank_buckets_build(:gen, :'win'::date);
COMMIT;
-- VACUUM as well as ANALYZE: a million rows inserted make autovacuum vacuum the table (its
-- insert threshold) within a minute, on the servers' CPU and in the middle of whichever
-- scenario runs then: read latency tails of several milliseconds that are not rankd's.
VACUUM (ANALYZE) standings;
VACUUM (ANALYZE) window_counts;
VACUUM (ANALYZE) rank_buckets;
VACUUM (ANALYZE) rank_supers;
