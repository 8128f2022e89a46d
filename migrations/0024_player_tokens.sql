-- 0024_player_tokens.sql — players as clients (issue 50): boards that take players' own
-- submissions, the revocation of a player's tokens, and who authorised each logged submission.
--
-- client_writes: a player token may submit and join on this board (API.md); false, the
-- default, keeps every board made before it server-only.
ALTER TABLE boards ADD COLUMN client_writes boolean NOT NULL DEFAULT false;

-- The instant before which a player's tokens are refused (an admin's revocation, the player's
-- deletion); one row per player, the latest instant kept. Every instance loads the table when it
-- starts listening and hears each change (NOTIFY rankd_revoke, 'ms player').
CREATE TABLE player_token_revocations (
    player_id  text COLLATE "C" PRIMARY KEY,
    revoked_ms bigint NOT NULL
);

-- Audit: what authorised each logged submission ("key:<name>", or "token:<issuer>:<subject>")
-- and the client's address. NULL on rows logged before this version and on imported rows.
ALTER TABLE submissions
    ADD COLUMN auth_by     text,
    ADD COLUMN client_addr text;
