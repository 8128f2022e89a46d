-- sql/explain.sql — the plans of rankd's hot PostgreSQL queries, for an operator to check.
--
-- Run with psql against a migrated database (set :gen and :win first), e.g.
--   psql "$RANKD_POSTGRES_PRIMARY" -v gen=1 -v win="'1970-01-01'" -f sql/explain.sql
-- Every ranked read must use standings_rank (an index in rank order, one for
-- every board: sort_key is the score negated on desc boards), never a sort.

-- Top of a board: an index range scan, no sort node.
EXPLAIN (COSTS OFF)
SELECT player_id, score, sort_key, achieved_ms, metadata FROM standings
WHERE board_gen = :gen AND win = :win ORDER BY sort_key, achieved_ms, player_id LIMIT 10;

-- A keyset page after a cursor position.
EXPLAIN (COSTS OFF)
SELECT player_id FROM standings
WHERE board_gen = :gen AND win = :win AND (sort_key, achieved_ms, player_id) > (0, 0, '')
ORDER BY sort_key, achieved_ms, player_id LIMIT 10;

-- A rank (rankd_rank_before, migrations/0010_rank_supers.sql) runs five statements: the
-- player's super and bucket (backward scans of rank_supers_pkey and rank_buckets_pkey, one row
-- each), the counts of the supers before it (a range of rank_supers_pkey), the counts of its
-- super's buckets before its bucket (a range of rank_buckets_pkey, bounded on both sides), and
-- the count inside the bucket (a range of standings_rank, bounded on both sides).
EXPLAIN (COSTS OFF)
SELECT lo_sk, lo_ms, lo_pid FROM rank_supers
WHERE board_gen = :gen AND win = :win AND (lo_sk, lo_ms, lo_pid) <= (0, 0, 'x')
ORDER BY lo_sk DESC, lo_ms DESC, lo_pid DESC LIMIT 1;
EXPLAIN (COSTS OFF)
SELECT sum(n) FROM rank_supers
WHERE board_gen = :gen AND win = :win AND (lo_sk, lo_ms, lo_pid) < (0, 0, 'x');
EXPLAIN (COSTS OFF)
SELECT lo_sk, lo_ms, lo_pid FROM rank_buckets
WHERE board_gen = :gen AND win = :win AND (lo_sk, lo_ms, lo_pid) <= (0, 0, 'x')
ORDER BY lo_sk DESC, lo_ms DESC, lo_pid DESC LIMIT 1;
EXPLAIN (COSTS OFF)
SELECT sum(n) FROM rank_buckets
WHERE board_gen = :gen AND win = :win AND (lo_sk, lo_ms, lo_pid) >= (-10, 0, '')
  AND (lo_sk, lo_ms, lo_pid) < (0, 0, 'x');
EXPLAIN (COSTS OFF)
SELECT count(*) FROM standings
WHERE board_gen = :gen AND win = :win AND (sort_key, achieved_ms, player_id) >= (-10, 0, '')
  AND (sort_key, achieved_ms, player_id) < (0, 0, 'x');

-- The submission log prunes to one monthly partition when a time range is given.
EXPLAIN (COSTS OFF)
SELECT count(*) FROM submissions
WHERE received_at >= date_trunc('month', now()) AND received_at < date_trunc('month', now()) + interval '1 month';

-- Erasing a player reads one of the 32 parts of each month (they split by a hash of the
-- player; the log has no index), and the default partition.
EXPLAIN (COSTS OFF)
DELETE FROM submissions WHERE board_gen = :gen AND player_id = 'some-player';
