/* store/write_sql.c — the SQL of the writer's transaction; see write_sql.h. */
#include "store/pg_error.h"
#include "store/write_sql.h"

#include <stdio.h>

#include "obs/log.h"
#include "store/pg_pipeline.h"
#include "store/pg_pool.h"
#include "store/pg_router.h"

/* The boards, held FOR KEY SHARE (not deleted under the batch). */
const char ws_boards_sql[] = "SELECT gen FROM boards WHERE gen = ANY($1::bigint[]) ORDER BY gen FOR KEY SHARE";
/* The batch statements' plans do not depend on the arrays' contents: an index lookup per
 * element. Planning them again for every batch only costs time, so the plans are generic; but a
 * generic plan guesses ten elements, and made while a table was small (rank_buckets, the keys) it
 * hashed that whole table to find ten rows: every transaction seq-scanned the windows' rank
 * buckets to update a few. Without hash and merge joins and with seq scans a last resort, every
 * lookup is a probe of a primary key, whatever the tables' sizes when the plan was made. LOCAL:
 * the window queries run after the commit keep their custom plans. */
const char ws_tx_settings_sql[] =
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_hashjoin', 'off', true),"
    " set_config('enable_mergejoin', 'off', true), set_config('enable_seqscan', 'off', true)";
/* Each window's archive lock, shared: an archive of one of them waits for this transaction, and
 * this one for an archive under way (then ws_archived_sql finds it archived). Only a late
 * submission writes to a closed window: writers of the live window never wait for an archive
 * (migrations/0013_archive_window_lock.sql). */
const char ws_window_lock_sql[] =
    "SELECT count(pg_advisory_xact_lock_shared(rankd_archive_window_lock_key(g, w)))"
    " FROM unnest($1::bigint[], $2::date[]) AS u(g, w)";
/* Of the batch's windows, those archived already, or whose league moves are made (settled): a
 * submission received before its window closed that reaches the writer after that is refused,
 * not lost. */
const char ws_archived_sql[] =
    "SELECT board_gen, win - DATE '1970-01-01' FROM archived_windows"
    " WHERE (board_gen, win) IN (SELECT * FROM unnest($1::bigint[], $2::date[]))"
    " UNION ALL SELECT board_gen, win - DATE '1970-01-01' FROM league_windows"
    " WHERE settled AND (board_gen, win) IN (SELECT * FROM unnest($1::bigint[], $2::date[]))";
const char ws_league_sql[] = "SELECT rankd_league_place($1::bigint[], $2::date[], $3::text[])";
const char ws_entrants_sql[] =
    "SELECT e.board_gen, e.win - DATE '1970-01-01', e.player_id, e.joined_ms, e.attempts, e.extra_attempts"
    " FROM unnest($1::bigint[], $2::date[], $3::text[]) AS u(g, w, p)"
    " JOIN tournament_entrants e ON e.board_gen = u.g AND e.win = u.w AND e.player_id = u.p";
const char ws_slots_make_sql[] =
    "INSERT INTO tournament_slots (board_gen, win)"
    " SELECT u.g, u.w FROM unnest($1::bigint[], $2::date[]) AS u(g, w) JOIN boards b ON b.gen = u.g"
    " ON CONFLICT (board_gen, win) DO NOTHING";
const char ws_slots_lock_sql[] =
    "SELECT s.board_gen, s.win - DATE '1970-01-01', s.entrants FROM tournament_slots s"
    " JOIN unnest($1::bigint[], $2::date[]) AS u(g, w) ON s.board_gen = u.g AND s.win = u.w"
    " ORDER BY s.board_gen, s.win FOR UPDATE OF s";
const char ws_tournament_sql[] =
    "WITH e AS (INSERT INTO tournament_entrants AS t (board_gen, win, player_id, attempts)"
    "  SELECT * FROM unnest($1::bigint[], $2::date[], $3::text[], $4::bigint[])"
    "  ON CONFLICT (board_gen, win, player_id) DO UPDATE SET attempts = t.attempts + EXCLUDED.attempts)"
    " UPDATE tournament_slots s SET entrants = s.entrants + u.n"
    " FROM unnest($5::bigint[], $6::date[], $7::bigint[]) AS u(g, w, n) WHERE s.board_gen = u.g AND s.win = u.w";
#define WS_MS_OF(ts) "(extract(epoch FROM " ts ") * 1000)::bigint"
const char ws_client_sql[] =
    "SELECT 'r', u.g, u.p, r.ms, 0::bigint FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::int[])"
    "  AS u(g, p, since, lim)"
    " CROSS JOIN LATERAL (SELECT " WS_MS_OF("s.received_at") " AS ms FROM submissions s"
    "  WHERE s.board_gen = u.g AND s.player_id = u.p AND s.auth_by LIKE 'token:%'"
    "  AND s.received_at > timestamptz 'epoch' + u.since * interval '1 millisecond'"
    "  ORDER BY s.received_at DESC LIMIT u.lim) r"
    " UNION ALL"
    " SELECT 'p', u.g, u.p, r.ms, r.score FROM unnest($1::bigint[], $2::text[], $5::boolean[]) AS u(g, p, want)"
    " CROSS JOIN LATERAL (SELECT " WS_MS_OF("s.received_at") " AS ms, s.score FROM submissions s"
    "  WHERE u.want AND s.board_gen = u.g AND s.player_id = u.p AND s.auth_by LIKE 'token:%' AND s.flagged IS NULL"
    "  ORDER BY s.received_at DESC LIMIT 1) r";
const char ws_lock_sql[] = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k";
/* One primary-key probe per player, written as a join so that even a generic plan made while the
 * table was empty (the writer forces generic plans) can only take the primary key: as
 * `player_id = ANY($3)`, such a plan could take standings_rank on (board_gen, win) with player_id
 * as a filter, reading the whole window per batch (a first bulk load of n players was O(n^2)). */
/* After the standings, the hidden players (migrations/0025_moderation.sql), with their hidden
 * standing if any: a hidden player has no row in standings (a hide moves them all), so no player
 * comes twice. */
const char ws_read_sql[] =
    "SELECT s.board_gen, s.win - DATE '1970-01-01', s.player_id, s.score, s.achieved_ms, s.metadata, false"
    " FROM unnest($3::text[]) AS u(p) JOIN standings s ON s.board_gen = $1 AND s.win = $2::date AND s.player_id = u.p"
    " UNION ALL SELECT h.board_gen, $2::date - DATE '1970-01-01', h.player_id, hs.score, hs.achieved_ms,"
    " hs.metadata, true FROM unnest($3::text[]) AS u(p) JOIN hidden_players h ON h.board_gen = $1 AND h.player_id = u.p"
    " LEFT JOIN hidden_standings hs ON hs.board_gen = $1 AND hs.win = $2::date AND hs.player_id = u.p";
/* A hidden player's changed standings, into hidden_standings: $1 gens, $2 days, $3 players,
 * $4 scores, $5 sort keys, $6 achieved_ms, $7 metadata. */
const char ws_hidden_write_sql[] =
    "INSERT INTO hidden_standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)"
    " SELECT g, w, p, sc, sk, ms, md, nextval('standing_version')"
    " FROM unnest($1::bigint[], $2::date[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[])"
    " AS u(g, w, p, sc, sk, ms, md)"
    " ON CONFLICT (board_gen, win, player_id) DO UPDATE SET score = EXCLUDED.score, sort_key = EXCLUDED.sort_key,"
    " achieved_ms = EXCLUDED.achieved_ms, metadata = EXCLUDED.metadata, version = EXCLUDED.version";
#define WS_STR_(n) #n
#define WS_STR(n) WS_STR_(n)
/* "$<n>" of a parameter named in write_sql.h. */
#define WW(name) "$" WS_STR(WW_##name)
const char ws_write_sql[] =
    "WITH st AS (INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)"
    "  SELECT g, w, p, sc, sk, ms, md, nextval('standing_version')"
    "  FROM unnest(" WW(ST_GEN) "::bigint[], " WW(ST_DAY) "::date[], " WW(ST_PLAYER) "::text[], " WW(ST_SCORE)
    "::bigint[], " WW(ST_SORT_KEY) "::bigint[], " WW(ST_ACHIEVED_MS) "::bigint[], " WW(ST_METADATA) "::text[])"
    "  AS u(g, w, p, sc, sk, ms, md)"
    "  ON CONFLICT (board_gen, win, player_id) DO UPDATE SET score = EXCLUDED.score, sort_key = EXCLUDED.sort_key,"
    "  achieved_ms = EXCLUDED.achieved_ms, metadata = EXCLUDED.metadata, version = EXCLUDED.version"
    "  RETURNING board_gen, win, player_id, version),"
    /* Each window's count of changing transactions (migrations/0014_window_seq.sql): the number
     * this one's Redis update carries. */
    " cnt AS (INSERT INTO window_counts (board_gen, win, players, submissions, seq)"
    "  SELECT *, 1 FROM unnest(" WW(CNT_GEN) "::bigint[], " WW(CNT_DAY) "::date[], " WW(CNT_PLAYERS) "::bigint[], "
    WW(CNT_SUBMISSIONS) "::bigint[])"
    "  ON CONFLICT (board_gen, win) DO UPDATE SET players = window_counts.players + EXCLUDED.players,"
    "  submissions = window_counts.submissions + EXCLUDED.submissions, seq = window_counts.seq + 1"
    "  RETURNING board_gen, win, seq),"
    /* Each window's first rank bucket and super, from below every position (a no-op once they
     * exist): the statement after this one counts every standing into ones that exist. */
    " fb AS (INSERT INTO rank_buckets (board_gen, win, lo_sk, lo_ms, lo_pid, n)"
    "  SELECT g, w, -9223372036854775808, -9223372036854775808, '', 0 FROM unnest(" WW(CNT_GEN) "::bigint[], "
    WW(CNT_DAY) "::date[]) AS u(g, w)"
    "  ON CONFLICT DO NOTHING),"
    " fs AS (INSERT INTO rank_supers (board_gen, win, lo_sk, lo_ms, lo_pid, n)"
    "  SELECT g, w, -9223372036854775808, -9223372036854775808, '', 0 FROM unnest(" WW(CNT_GEN) "::bigint[], "
    WW(CNT_DAY) "::date[]) AS u(g, w)"
    "  ON CONFLICT DO NOTHING),"
    " log AS (INSERT INTO submissions (board_gen, win, player_id, score, metadata, updated, received_at, auth_by,"
    "  client_addr, flagged)"
    "  SELECT g, w, p, sc, md, up, timestamptz 'epoch' + ms * interval '1 millisecond', ab, ca, fl"
    "  FROM unnest(" WW(LOG_GEN) "::bigint[], " WW(LOG_DAY) "::date[], " WW(LOG_PLAYER) "::text[], " WW(LOG_SCORE)
    "::bigint[], " WW(LOG_METADATA) "::text[], " WW(LOG_UPDATED) "::boolean[],"
    "  " WW(LOG_RECEIVED_MS) "::bigint[], " WW(LOG_AUTH_BY) "::text[], " WW(LOG_CLIENT_ADDR) "::text[], "
    WW(LOG_FLAGGED) "::text[])"
    "  AS u(g, w, p, sc, md, up, ms, ab, ca, fl)),"
    " kd AS (DELETE FROM idempotency_keys WHERE (board_gen, key) IN"
    "  (SELECT * FROM unnest(" WW(FORGET_GEN) "::bigint[], " WW(FORGET_KEY) "::text[]))),"
    " dr AS (UPDATE idempotency_keys k SET draft = u.d"
    "  FROM unnest(" WW(DRAFT_GEN) "::bigint[], " WW(DRAFT_KEY) "::text[], " WW(DRAFT_TEXT) "::text[]) AS u(g, key, d)"
    "  WHERE k.board_gen = u.g AND k.key = u.key)"
    " SELECT board_gen, win - DATE '1970-01-01', player_id, version FROM st"
    " UNION ALL SELECT board_gen, win - DATE '1970-01-01', NULL, seq FROM cnt";
const char ws_buckets_sql[] =
    "WITH k AS (SELECT u.g, u.w, k.lo_sk, k.lo_ms, k.lo_pid, sum(u.d) AS d"
    "  FROM unnest($1::bigint[], $2::date[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[])"
    "  AS u(g, w, sk, ms, p, d)"
    /* The bucket of each position: the last one that starts at or before it. */
    "  JOIN LATERAL (SELECT r.lo_sk, r.lo_ms, r.lo_pid FROM rank_buckets r"
    "   WHERE r.board_gen = u.g AND r.win = u.w AND (r.lo_sk, r.lo_ms, r.lo_pid) <= (u.sk, u.ms, u.p COLLATE \"C\")"
    "   ORDER BY r.lo_sk DESC, r.lo_ms DESC, r.lo_pid DESC LIMIT 1) k ON true"
    "  GROUP BY 1, 2, 3, 4, 5 HAVING sum(u.d) <> 0),"
    " ub AS (UPDATE rank_buckets b SET n = b.n + k.d FROM k"
    "  WHERE b.board_gen = k.g AND b.win = k.w AND b.lo_sk = k.lo_sk AND b.lo_ms = k.lo_ms AND b.lo_pid = k.lo_pid)"
    /* The super of each bucket (supers start where buckets do): one probe per bucket changed. */
    " UPDATE rank_supers s SET n = s.n + x.d FROM (SELECT k.g, k.w, y.lo_sk, y.lo_ms, y.lo_pid, sum(k.d) AS d FROM k"
    "  JOIN LATERAL (SELECT r.lo_sk, r.lo_ms, r.lo_pid FROM rank_supers r"
    "   WHERE r.board_gen = k.g AND r.win = k.w AND (r.lo_sk, r.lo_ms, r.lo_pid) <= (k.lo_sk, k.lo_ms, k.lo_pid)"
    "   ORDER BY r.lo_sk DESC, r.lo_ms DESC, r.lo_pid DESC LIMIT 1) y ON true"
    "  GROUP BY 1, 2, 3, 4, 5 HAVING sum(k.d) <> 0) x"
    " WHERE s.board_gen = x.g AND s.win = x.w AND s.lo_sk = x.lo_sk AND s.lo_ms = x.lo_ms AND s.lo_pid = x.lo_pid";
const char ws_recut_sql[] =
    "SELECT coalesce(sum(rankd_rank_buckets_recut_until(c.board_gen, c.win, rankd_rank_bucket_target(c.players, $3), $4)), 0)"
    " FROM unnest($1::bigint[], $2::date[]) AS u(g, w)"
    " JOIN window_counts c ON c.board_gen = u.g AND c.win = u.w";
const char ws_import_held_sql[] =
    "SELECT coalesce(bool_or(NOT pg_try_advisory_xact_lock_shared(" WS_IMPORT_LOCK_KEY("g", "w") ")), false)"
    " FROM unnest($1::bigint[], $2::date[]) AS u(g, w)";
const char ws_notify_sql[] = "SELECT count(pg_notify('rankd_l1', x)) FROM unnest($1::text[]) AS x";
const char ws_async_commit_sql[] = "SELECT set_config('synchronous_commit', 'off', true)";
const char ws_notify_seq_sql[] =
    "SELECT count(pg_notify('rankd_l1', 'S ' || u.g || ' ' || (u.w - DATE '1970-01-01') || ' ' || c.seq || ' ' || u.part"
    "  || ' ' || u.parts || CASE WHEN u.x = '' THEN '' ELSE E'\\n' || u.x END))"
    " FROM unnest($1::text[], $2::bigint[], $3::date[], $4::int[], $5::int[]) AS u(x, g, w, part, parts)"
    " JOIN window_counts c ON c.board_gen = u.g AND c.win = u.w";
const char ws_wal_lsn_sql[] = PG_COMMITTED_LSN_SQL;
/* A key is stored as "<presenting key's tag> <key>" (api/scores.c). One stored by a version
 * before that, as "<key>" alone, is still the same key until it expires: it is not claimed
 * again, and the lookup finds it (under the scoped name the writer asks for). */
#define WS_BARE_KEY(k) "substr(" k ", strpos(" k ", ' ') + 1)"
const char ws_key_claim_sql[] =
    "INSERT INTO idempotency_keys (board_gen, key, request)"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(g, k, r)"
    " WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys o WHERE o.board_gen = u.g AND o.key = " WS_BARE_KEY("u.k") ")"
    " ON CONFLICT DO NOTHING RETURNING board_gen, key";
const char ws_key_lookup_sql[] =
    "SELECT u.g, u.k, k.request, k.response, k.draft FROM unnest($1::bigint[], $2::text[]) AS u(g, k)"
    " JOIN LATERAL (SELECT request, response, draft FROM idempotency_keys k"
    "  WHERE k.board_gen = u.g AND k.key IN (u.k, " WS_BARE_KEY("u.k") ") ORDER BY k.key = u.k DESC LIMIT 1) k ON true";
const char ws_store_answers_sql[] =
    "UPDATE idempotency_keys k SET response = u.r"
    " FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS u(i, g, key, r)"
    " WHERE k.board_gen = u.g AND k.key = u.key AND k.response IS NULL RETURNING u.i";
const char ws_stored_answers_sql[] =
    "SELECT u.i, k.response FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(i, g, key)"
    " JOIN idempotency_keys k ON k.board_gen = u.g AND k.key = u.key"
    " WHERE k.response IS NOT NULL";

/* Parsing and planning the batch statements cost PostgreSQL more than running them. */
bool write_sql_prepare(PGconn *c, void *arg)
{
    /* A lock wait fails on its own (55P03, which the writer retries) well before the statement
     * timeout cancels the whole statement (57014, which it does not: the statement may have been
     * slow for good). */
    const int *lock_timeout_ms = arg;
    if (lock_timeout_ms && *lock_timeout_ms > 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "SET lock_timeout = %d", *lock_timeout_ms);
        PGresult *r = PQexec(c, sql);
        bool ok = pg_ok(r);
        char pe[PG_ERROR_MAX];
        if (!ok)
            log_error(NULL, "setting the writer's lock timeout failed: %s", pg_error_text(c, r, pe, sizeof pe));
        PQclear(r);
        if (!ok)
            return false;
    }
    /* In one round trip (pipeline mode): a new connection to a distant primary is ready in two
     * round trips, not twenty. */
    static const pg_stmt_t all[] = {
        {ws_boards_sql, 1, NULL, WS_BOARDS}, {ws_lock_sql, 1, NULL, WS_LOCK}, {ws_read_sql, 3, NULL, WS_READ},
        {ws_write_sql, WW_PARAMS, NULL, WS_WRITE}, {ws_notify_sql, 1, NULL, WS_NOTIFY},
        {ws_notify_seq_sql, 5, NULL, WS_NOTIFY_SEQ}, {ws_archived_sql, 2, NULL, WS_ARCHIVED},
        {ws_buckets_sql, 6, NULL, WS_BUCKETS}, {ws_window_lock_sql, 2, NULL, WS_WINDOW_LOCK},
        {ws_recut_sql, 4, NULL, WS_RECUT}, {ws_entrants_sql, 3, NULL, WS_ENTRANTS},
        {ws_slots_make_sql, 2, NULL, WS_SLOTS_MAKE}, {ws_slots_lock_sql, 2, NULL, WS_SLOTS_LOCK},
        {ws_tournament_sql, 7, NULL, WS_TOURNAMENT}, {ws_league_sql, 3, NULL, WS_LEAGUE},
        {ws_hidden_write_sql, 7, NULL, WS_HIDDEN_WRITE}, {ws_client_sql, 5, NULL, WS_CLIENT},
        {ws_tx_settings_sql, 0, NULL, WS_TX_SETTINGS}, {ws_async_commit_sql, 0, NULL, WS_ASYNC_COMMIT},
    };
    enum { N = sizeof all / sizeof *all };
    PGresult *res[N];
    pg_pipeline_prepare(c, all, N, res);
    bool ok = true;
    for (int i = 0; i < N; i++) {
        if (ok && !pg_ok(res[i])) {
            char pe[PG_ERROR_MAX];
            log_error(NULL, "preparing %s failed: %s", all[i].name, pg_error_text(c, res[i], pe, sizeof pe));
            ok = false;
        }
        PQclear(res[i]);
    }
    return ok;
}
