-- 0007_standings_autovacuum.sql — autovacuum keeps pace with `standings`.
--
-- Every score change rewrites its standing as a new row version that is never a HOT update
-- (sort_key is in standings_rank), so each one leaves a dead row in the table and in both of
-- its indexes. With the defaults a table of n standings is vacuumed only after 0.2 n dead rows,
-- and then slowly (cost-based delay): under a steady write load the table and its indexes grow
-- well past their live size before the space is reused. These per-table settings vacuum it
-- after 2 % (at least 10,000 rows), unthrottled. loadtest/windows.sh measures both ways
-- (`bloat`). A fillfactor below 100 would only help HOT updates, which this table never has.
ALTER TABLE standings SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.05
);
