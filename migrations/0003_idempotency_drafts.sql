-- 0003_idempotency_drafts.sql — what a keyed submission answers, stored with its batch.
--
-- The answer of a keyed submission needs the player's rank, known only after the commit,
-- so `response` is stored just after it. `draft` is that answer with rank 0, written in
-- the submission's own transaction: if the writing instance stops between its commit and
-- storing `response`, a replay completes the draft with the rank of the moment and stores
-- it, instead of answering 409 until the key expires.
ALTER TABLE idempotency_keys ADD COLUMN draft text;
