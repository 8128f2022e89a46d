/*
 * worker/write_notice.c — what every instance hears of a batch: its changed standings as notice
 * lines (core/notice.h), in parts under PostgreSQL's NOTIFY limit.
 *
 * The notice goes twice: inside the transaction, numbered per window (a listener hears it only
 * if the batch commits, in commit order: the rank tier's feed), and again after the Redis update
 * as a hint without metadata, so that a read served from Redis in between is dropped too. The
 * hint rides in the writer's next transaction (batch_t.carry_hint), or goes alone in one of its
 * own when none begins soon (writer.c).
 */
#include "worker/write_batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/notice.h"
#include "core/order.h"
#include "store/pg_pipeline.h"
#include "store/write_sql.h"
#include "util/alloc.h"
#include "util/buf.h"

/* The notice line of a changed group (core/notice.h). */
static void put_change(buf_t *line, const write_group_t *gr, bool with_metadata)
{
    notice_change_t c = {.gen = gr->gen,
                         .day = gr->day,
                         .existed = gr->existed,
                         .old_sort_key = gr->existed ? order_sort_key(gr->board->sort, gr->old_value) : 0,
                         .old_ms = gr->old_achieved_ms,
                         .new_sort_key = order_sort_key(gr->board->sort, gr->cur.value),
                         .new_ms = gr->achieved_ms,
                         .player = gr->player,
                         .player_len = strlen(gr->player),
                         .metadata = gr->metadata,
                         .metadata_len = gr->metadata ? strlen(gr->metadata) : 0};
    buf_reset(line);
    notice_put_change(line, &c, with_metadata);
}

/* Room for a part's W lines: PostgreSQL's 8000-byte NOTIFY limit, less the S line. */
#define NOTICE_PART_BYTES 7800

/*
 * Tell every instance what moved (core/notice.h), one W line per changed standing, in parts
 * under PostgreSQL's 8000-byte NOTIFY limit.
 * - `commit`: the notice sent inside the writing transaction (listeners hear it only if the
 *   transaction commits), for ws_notify_seq_sql: each window the transaction numbers (one with
 *   a submission applied) gets its own parts, an empty one when no standing of it changed, so
 *   that a listener sees every number of the window in order; the W lines carry metadata.
 *   Five arrays.
 * - else the hint sent again after the Redis update (ws_notify_sql): W lines without metadata,
 *   any windows to a part. One array.
 * False when there is nothing to send.
 */
bool notify_params(batch_t *bt, pg_arrays_t *as, const char **param, bool commit)
{
    pg_arrays_open(as, commit ? 5 : 1);
    buf_t payload, line;
    buf_init(&payload);
    buf_init(&line);
    bool *numbered = xcalloc(bt->n_groups ? bt->n_groups : 1, sizeof *numbered);
    for (size_t i = 0; commit && i < bt->n; i++) /* the hint carries no numbers */
        if (bt->fold[i].applied && bt->group_of[i] >= 0)
            numbered[bt->group_of[i]] = true;
    size_t n = 0;
    for (size_t g = 0; g < bt->n_groups;) {
        size_t h = g;
        bool window_numbered = false;
        for (; h < bt->n_groups && bt->groups[h].gen == bt->groups[g].gen && bt->groups[h].day == bt->groups[g].day; h++)
            window_numbered |= numbered[h];
        int parts = 0;
        for (size_t k = g; k < h; k++) {
            write_group_t *gr = &bt->groups[k];
            if (!gr->changed)
                continue;
            put_change(&line, gr, commit);
            if (payload.len + line.len + 1 > NOTICE_PART_BYTES) {
                pg_arr_text(&as->a[0], payload.data);
                if (commit) {
                    pg_arr_i64(&as->a[1], gr->gen);
                    pg_arr_day(&as->a[2], gr->day);
                    pg_arr_i64(&as->a[3], ++parts);
                }
                buf_reset(&payload);
            }
            if (payload.len)
                buf_putc(&payload, '\n');
            buf_append(&payload, line.data, line.len);
            n++;
        }
        if (commit) {
            if (window_numbered && (payload.len || parts == 0)) {
                pg_arr_text(&as->a[0], payload.len ? payload.data : "");
                pg_arr_i64(&as->a[1], bt->groups[g].gen);
                pg_arr_day(&as->a[2], bt->groups[g].day);
                pg_arr_i64(&as->a[3], ++parts);
                n++;
            }
            for (int k = 0; k < parts; k++)
                pg_arr_i64(&as->a[4], parts);
            buf_reset(&payload);
        }
        g = h;
    }
    if (!commit && payload.len)
        pg_arr_text(&as->a[0], payload.data);
    free(numbered);
    buf_free(&payload);
    buf_free(&line);
    pg_arrays_close(as, param);
    return n > 0;
}

char *notify_hint_take(batch_t *bt)
{
    pg_arrays_t as;
    const char *p[1];
    char *hint = notify_params(bt, &as, p, false) ? xstrdup(p[0]) : NULL;
    pg_arrays_free(&as);
    return hint;
}

/*
 * The hint, in a transaction of its own. A NOTIFY gives its transaction an xid, so its commit
 * would wait for a WAL flush like a write: this one is only a hint (the durable notice went out
 * with the batch), so it commits without waiting. One round trip, and no BEGIN or COMMIT: the
 * pipeline's statements are one implicit transaction, committed at its Sync, with the setting
 * still in force.
 */
step_t notify_hint(PGconn *c, const char *hint)
{
    const char *p[1] = {hint};
    const pg_stmt_t stmts[] = {
        {ws_async_commit_sql, 0, NULL, WS_ASYNC_COMMIT},
        {ws_notify_sql, 1, p, WS_NOTIFY},
    };
    PGresult *res[2];
    pg_pipeline_run(c, stmts, 2, res);
    step_t st = STEP_OK;
    for (int i = 0; i < 2; i++) {
        if (st == STEP_OK)
            st = step_check(c, res[i], "notify");
        PQclear(res[i]);
    }
    if (st != STEP_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK"));
    return st;
}
