/*
 * api/docs.c — GET /v1/openapi.json and GET /dashboard/…: files of the repository, compiled in
 * (api/assets.h), served as any read is (ETag, If-None-Match, compression). The dashboard's
 * pages carry a Content-Security-Policy that lets them load nothing but their own files and
 * talk to nothing but this server.
 */
#include <string.h>

#include "api/app.h"
#include "api/assets.h"

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

static int serve(http_req_t *req, const asset_t *a)
{
    buf_append(&req->out, a->bytes, a->len);
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

int api_dashboard(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)app;
    /* Only the dashboard's own files: never the OpenAPI document under another name. */
    const char *name = rt->id == R_DASHBOARD ? "index.html" : rt->board;
    const asset_t *a = strcmp(name, "openapi.json") != 0 ? asset_find(name) : NULL;
    if (!a)
        return http_error(req, 404, "not_found", NULL, "no such resource");
    req->security_policy = DASHBOARD_CSP;
    return serve(req, a);
}
