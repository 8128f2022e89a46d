/*
 * api/docs.c — GET /v1/openapi.json and GET /dashboard/…: files of the repository, compiled in
 * (api/assets.h), served as any read is (ETag, If-None-Match, compression). The dashboard's
 * pages carry a Content-Security-Policy that lets them load nothing but their own files and
 * talk to nothing but this server.
 */
#include <pthread.h>
#include <string.h>

#include "api/app.h"
#include "api/assets.h"
#include "util/encoding.h"
#include "util/alloc.h"

const asset_t *asset_find(const char *name)
{
    for (size_t i = 0; i < rankd_n_assets; i++)
        if (strcmp(rankd_assets[i].name, name) == 0)
            return &rankd_assets[i];
    return NULL;
}

#define DASHBOARD_CSP                                                                              \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';" \
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* Each asset's ETag and encodings, made once for the life of the process: a request for the
 * 90 KB document costs no hashing and no compression. */
static http_static_t *statics;
static pthread_once_t statics_once = PTHREAD_ONCE_INIT;

static void make_statics(void)
{
    statics = xcalloc(rankd_n_assets ? rankd_n_assets : 1, sizeof *statics);
    for (size_t i = 0; i < rankd_n_assets; i++) {
        http_static_t *st = &statics[i];
        st->body = rankd_assets[i].bytes;
        st->len = rankd_assets[i].len;
        encoding_etag(st->body, st->len, st->etag);
        for (encoding_t e = ENC_GZIP; e <= ENC_BR && st->len >= ENCODING_MIN_BODY; e++) {
            st->enc_body[e] = encoding_compress(e, st->body, st->len, &st->enc_len[e]); /* kept for good */
            if (st->enc_body[e])
                encoding_variant_etag(st->etag, e, st->enc_etag[e]);
        }
    }
}

static int serve(http_req_t *req, const asset_t *a)
{
    pthread_once(&statics_once, make_statics);
    req->static_body = &statics[a - rankd_assets];
    req->content_type_out = a->content_type;
    req->cacheable = true;
    return http_ok(req, 200);
}

int api_openapi(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)app;
    (void)rt;
    const asset_t *a = asset_find("openapi.json");
    return a ? serve(req, a) : http_error(req, 404, "not_found", NULL, "no such resource");
}

/* The page's own address ends in '/' (its files are relative to it): a browser given the path
 * without it is sent there, with the method kept (308). */
int api_dashboard_root(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)app;
    (void)rt;
    snprintf(req->location, sizeof req->location, "/dashboard/");
    req->status = 308;
    return req->status;
}

int api_dashboard(app_t *app, const route_t *rt, http_req_t *req)
{
    /* What the page needs to know before it asks for anything: whether reads need a key (so
     * that it asks for none it would be refused, which a browser reports as an error). */
    if (rt->id == R_DASHBOARD_FILE && strcmp(rt->board, "config.json") == 0) {
        buf_printf(&req->out, "{\"public_reads\":%s}", app->cfg->public_reads ? "true" : "false");
        req->cacheable = true;
        req->security_policy = DASHBOARD_CSP;
        return http_ok(req, 200);
    }
    /* Only the dashboard's own files: never the OpenAPI document under another name. */
    const char *name = rt->id == R_DASHBOARD ? "index.html" : rt->board;
    const asset_t *a = strcmp(name, "openapi.json") != 0 ? asset_find(name) : NULL;
    if (!a)
        return http_error(req, 404, "not_found", NULL, "no such resource");
    req->security_policy = DASHBOARD_CSP;
    return serve(req, a);
}
