-- loadtest/pg_upsert1.sql — pgbench script: PostgreSQL's durable single-row write, one upsert per
-- transaction (synchronous_commit on) into the `standings` table rankd writes, on board
-- generation :gen (-1: no board, so it disturbs no board rankd serves), random player of :players.
--   pgbench -n -M prepared -f loadtest/pg_upsert1.sql -D gen=-1 -D players=1000000 -c C -T S
\set p random(1, :players)
\set s random(0, 1000000)
INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)
VALUES (:gen, DATE '1970-01-01', 'p' || lpad(:p::text, 12, '0'), :s::bigint, -(:s::bigint),
        (extract(epoch FROM clock_timestamp()) * 1000)::bigint, NULL, nextval('standing_version'))
ON CONFLICT (board_gen, win, player_id) DO UPDATE SET score = EXCLUDED.score,
  sort_key = EXCLUDED.sort_key, achieved_ms = EXCLUDED.achieved_ms, metadata = EXCLUDED.metadata,
  version = EXCLUDED.version;
