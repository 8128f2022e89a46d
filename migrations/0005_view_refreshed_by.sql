-- 0005_view_refreshed_by.sql — which session last refreshed each view.
--
-- Of several rankd instances only the upkeep leader refreshes the views; `refreshed_by` holds
-- the refreshing session's application_name ("rankd/<pid>" for rankd serve and the CLI), so
-- that an operator, or a test, can see who did it.
ALTER TABLE view_refreshes ADD COLUMN refreshed_by text;
