-- 0014_window_seq.sql — each window counts the transactions that changed it, so that rankd can
-- tell a Redis that holds every write from one that missed some.
--
-- Redis used to be trusted whenever a window's ready key existed. A Redis restarted from an
-- older snapshot (RDB, AOF everysec), a failover to a replica that had not caught up, or a
-- writer that committed and then died before its Redis update all leave a ready window that
-- misses acknowledged writes, and nothing told them apart. Now every transaction that changes a
-- window (the writer's batch, a player's deletion) adds one to its `seq` while it holds the
-- window's counter row, so the numbers follow the order of the commits. Each Redis update carries
-- the number of the transaction it applies, and Redis keeps, per window, the highest number up
-- to which it applied every transaction (store/redis_board.h). A window whose Redis number is
-- behind PostgreSQL's once the writers in flight have had time to land is rebuilt.

ALTER TABLE window_counts ADD COLUMN seq bigint NOT NULL DEFAULT 0;
