/*
 * store/resp.h — a command in RESP, the protocol Redis reads, written by hand.
 *
 * Pure: no I/O. The pipe writes every command of a batch through it and hands the text to
 * hiredis (redisAppendFormattedCommand): hiredis's own formatting runs its printf-like
 * sdscatfmt once per argument, and a merged read of 31 around reads has 130 arguments.
 */
#ifndef RANKD_STORE_RESP_H
#define RANKD_STORE_RESP_H

#include <stddef.h>

#include "util/buf.h"

/* Append to `out` the command of `argc` arguments: argv[i] of argvlen[i] bytes, or of
 * strlen(argv[i]) when argvlen is NULL. The same bytes as hiredis's redisFormatCommandArgv. */
void resp_command(buf_t *out, int argc, const char *const *argv, const size_t *argvlen);

#endif
