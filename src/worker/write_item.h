/*
 * worker/write_item.h — one score submission as the writer takes it: what was asked, and what
 * became of it. Its own header because both the writer (worker/writer.h) and the pure fold of a
 * batch (worker/write_fold.h) speak of it.
 */
#ifndef RANKD_WORKER_WRITE_ITEM_H
#define RANKD_WORKER_WRITE_ITEM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/model.h"

typedef struct {
    /* input, borrowed from the caller for the duration of writer_submit() */
    const board_t *board;
    int64_t day;              /* window, chosen from received_ms */
    const char *player;
    int64_t score;
    const char *metadata;     /* compact JSON object, or NULL */
    const char *idem_key;     /* NULL when none */
    const char *request;      /* canonical request, compared on replay */
    int64_t received_ms;
    const char *auth_by;      /* what authorised it, for the log: "key:<name>", "token:<issuer>:<subject>"; or NULL */
    const char *client_addr;  /* the client's address, for the log; or NULL */

    /* output */
    int status;               /* 200, or the HTTP error status */
    const char *err_code;     /* static strings, for an error */
    const char *err_field;
    const char *err_message;
    char *response;           /* owned by the item: the Submit result JSON; writer_items_clear() frees it */
    bool maybe_stored;        /* an error, but the submission is (or may be) committed: not to be resent blindly */
} write_item_t;

#endif
