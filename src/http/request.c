/* http/request.c — request parameters and the JSON error object. */
#include "http/request.h"
#include "http/stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/l1.h"
#include "core/ids.h"
#include "util/alloc.h"

void http_req_init(http_req_t *req)
{
    memset(req, 0, sizeof *req);
    req->method = "GET";
    buf_init(&req->out);
    arena_init(&req->arena);
}

void http_req_clear(http_req_t *req)
{
    req->params = NULL; /* in the arena, cleared below */
    req->n_params = 0;
    req->cap_params = 0;
    buf_free(&req->out);
    l1_release(req->cached);
    req->cached = NULL;
    if (req->stream) /* never handed to libmicrohttpd: the producer stops at its next write */
        http_stream_release(req->stream);
    req->stream = NULL;
    arena_clear(&req->arena);
}

/* The decoded text, in the request's arena; NULL when it does not decode. */
static char *decode(arena_t *a, const char *raw, size_t n)
{
    char *out = arena_alloc(a, n + 1);
    size_t len;
    if (!id_percent_decode(raw, n, out, &len) || memchr(out, '\0', len))
        return NULL;
    out[len] = '\0';
    return out;
}

/* The parameters live in the request's arena: a request's few of them cost no allocation each. */
static void add_param(http_req_t *req, const char *name, size_t nlen, const char *value, size_t vlen)
{
    char *n = decode(&req->arena, name, nlen);
    if (!n)
        return; /* an undecodable name cannot be a known parameter */
    if (req->n_params == req->cap_params) {
        size_t cap = req->cap_params ? 2 * req->cap_params : 8;
        http_param_t *p = arena_alloc(&req->arena, cap * sizeof *p);
        if (req->n_params)
            memcpy(p, req->params, req->n_params * sizeof *p);
        req->params = p;
        req->cap_params = cap;
    }
    req->params[req->n_params].name = n;
    req->params[req->n_params].value = decode(&req->arena, value, vlen);
    req->n_params++;
}

void http_req_add_param(http_req_t *req, const char *raw_name, const char *raw_value)
{
    const char *v = raw_value ? raw_value : "";
    add_param(req, raw_name, strlen(raw_name), v, strlen(v));
}

void http_req_parse_query(http_req_t *req, const char *query)
{
    const char *p = query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            if (eq)
                add_param(req, p, (size_t)(eq - p), eq + 1, len - (size_t)(eq - p) - 1);
            else
                add_param(req, p, len, "", 0);
        }
        p = amp ? amp + 1 : NULL;
    }
}

const char *http_param(const http_req_t *req, const char *name, bool *bad)
{
    const char *found = NULL;
    int count = 0;
    for (size_t i = 0; i < req->n_params; i++) {
        if (strcmp(req->params[i].name, name) != 0)
            continue;
        count++;
        found = req->params[i].value;
        if (!found)
            *bad = true;
    }
    if (count > 1)
        *bad = true;
    return count ? (found ? found : "") : NULL;
}

int http_error(http_req_t *req, int status, const char *code, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    buf_reset(&req->out);
    buf_puts(&req->out, "{\"error\":{\"code\":");
    buf_json_str(&req->out, code, strlen(code));
    buf_puts(&req->out, ",\"message\":");
    buf_json_str(&req->out, msg, strlen(msg));
    if (field) {
        buf_puts(&req->out, ",\"field\":");
        buf_json_str(&req->out, field, strlen(field));
    }
    buf_puts(&req->out, "}}");
    req->status = status;
    req->cacheable = false;
    return status;
}

int http_not_found(http_req_t *req, const char *field, const char *what)
{
    return http_error(req, 404, "not_found", field, "%s not found", what);
}

int http_bad_param(http_req_t *req, const char *name, const char *rule_fmt, ...)
{
    char rule[400];
    va_list ap;
    va_start(ap, rule_fmt);
    vsnprintf(rule, sizeof rule, rule_fmt, ap);
    va_end(ap);
    return http_error(req, 400, "invalid_argument", name, "%s", rule);
}

int http_unavailable(http_req_t *req, const char *what)
{
    req->retry_after = 1;
    return http_error(req, 503, "unavailable", NULL, "%s is unavailable", what);
}

int http_internal(http_req_t *req)
{
    return http_error(req, 500, "internal", NULL, "internal error");
}

int http_ok(http_req_t *req, int status)
{
    req->status = status;
    return status;
}
