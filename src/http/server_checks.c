/*
 * http/server_checks.c — what a request's headers alone decide, before any body is read: its id,
 * its client's address, its key, its route and the sizes it declares.
 *
 * Every answer's log line names its client, so the address comes first; then the sizes of the
 * request line and headers (API.md: 414 and 431 with the JSON error), the route, the key and the
 * route's admission, and a declared body over the route's limit (413 unread).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/ids.h"
#include "http/request_head.h"
#include "http/server_conn.h"
#include "util/netaddr.h"

#define HEADERS_MAX 8192               /* bytes of request line and headers (API.md) */

void set_request_id(http_server_t *s, struct MHD_Connection *conn, http_req_t *req)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    req->client_request_id[0] = '\0';
    if (given && id_request_id_valid(given, strlen(given)))
        snprintf(req->client_request_id, sizeof req->client_request_id, "%s", given);
    /* <8 hex digits of the instance>-<12 of the sequence>, formatted by hand (every request). */
    static const char hex[] = "0123456789abcdef";
    uint64_t n = atomic_fetch_add(&s->next_id, 1);
    char *p = req->request_id;
    for (int i = 7; i >= 0; i--)
        *p++ = hex[(s->id_prefix >> (4 * i)) & 0xf];
    *p++ = '-';
    for (int i = 11; i >= 0; i--)
        *p++ = hex[(n >> (4 * i)) & 0xf];
    *p = '\0';
}

static void authenticate(const http_server_deps_t *deps, struct MHD_Connection *conn, http_req_t *req)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    req->role = deps->cfg->public_reads ? ROLE_READ : ROLE_NONE;
    if (!auth)
        return;
    req->key_presented = true;
    role_t role = ROLE_NONE;
    int index = -1;
    /* One configuration for both: a reload in between would index another file's keys. */
    const rankd_config_t *live = atomic_load(deps->live);
    if (strncasecmp(auth, "Bearer ", 7) == 0) {
        role = config_key_role(live, auth + 7, &index);
        req->bearer = auth + 7; /* no key: the API may take it for a player token (api/player_auth.c) */
    }
    req->role = role; /* an invalid key is refused even where reads are public */
    if (role == ROLE_NONE)
        req->role = (role_t)-1;
    else { /* the key's digest, not its place in the file: a reload may reorder the keys */
        const unsigned char *d = live->keys[index].digest;
        static const char hex[] = "0123456789abcdef"; /* "k" and 8 bytes in hex, on every keyed request */
        _Static_assert(sizeof req->client >= 18, "room for a key's client name");
        req->client[0] = 'k';
        for (int i = 0; i < 8; i++) {
            req->client[1 + 2 * i] = hex[d[i] >> 4];
            req->client[2 + 2 * i] = hex[d[i] & 15];
        }
        req->client[17] = '\0';
        const config_key_t *k = &live->keys[index];
        const char *name = k->name ? k->name
                           : k->origin && strncmp(k->origin, "RANKD_", 6) == 0 ? k->origin : req->client;
        snprintf(req->key_name, sizeof req->key_name, "%s", name);
    }
}

/* One request header's values (an MHD_KeyValueIterator): X-Forwarded-For, joined with commas. */
static enum MHD_Result gather_forwarded(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    buf_t *xff = cls;
    if (strcasecmp(key, "X-Forwarded-For") == 0 && value) {
        if (xff->len > 0)
            buf_puts(xff, ",");
        buf_puts(xff, value);
    }
    return MHD_YES;
}

/*
 * The client's address into req->addr: the connection's peer (the client a PROXY header named,
 * with http.proxy_protocol), or, when that peer is one of http.trusted_proxies, the client its
 * X-Forwarded-For names (read from the right, past the trusted hops).
 */
static void client_address(const http_server_deps_t *deps, struct MHD_Connection *conn, http_req_t *req)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    netaddr_t peer;
    if (!ci || !ci->client_addr || !netaddr_from_sockaddr(ci->client_addr, &peer)) {
        snprintf(req->addr, sizeof req->addr, "?");
        snprintf(req->limit_addr, sizeof req->limit_addr, "?");
        return;
    }
    /* The live list: a reload may add or remove a proxy. */
    const rankd_config_t *live = atomic_load(deps->live);
    netaddr_t client = peer;
    if (live->n_trusted_proxies > 0 && netaddr_in_any(live->trusted_nets, live->n_trusted_proxies, &peer)) {
        buf_t xff;
        buf_init(&xff);
        MHD_get_connection_values(conn, MHD_HEADER_KIND, gather_forwarded, &xff);
        if (xff.len > 0)
            netaddr_forwarded_client(xff.data, &peer, live->trusted_nets, live->n_trusted_proxies, &client);
        buf_free(&xff);
    }
    _Static_assert(sizeof req->addr >= NETADDR_TEXT_MAX, "room for an address");
    netaddr_format(&client, req->addr);
    _Static_assert(sizeof req->limit_addr >= NETADDR_LIMIT_MAX, "room for a limit key");
    netaddr_limit_key(&client, req->limit_addr);
}

/* One query argument's bytes in the request line, "key=value&" (an MHD_KeyValueIterator). */
static enum MHD_Result count_argument(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? 1 + strlen(value) : 0) + 1;
    return MHD_YES;
}

/* The request line's length, as near as libmicrohttpd lets it be known: the method, the path,
 * the query as its arguments (kept raw: no_unescape) and "HTTP/1.1" (any other version is that
 * long, or refused before). */
static size_t request_line_size(struct MHD_Connection *conn, const char *method, const char *path)
{
    size_t query = 0;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_argument, &query);
    return strlen(method) + 1 + strlen(path) + query + 1 + 8;
}

/* The header fields as request_head_field checks them, one at a time (an MHD_KeyValueIterator);
 * stops at the first refused. */
typedef struct {
    head_framing_t framing;
    head_verdict_t verdict;
    bool refused;
} fields_check_t;

static enum MHD_Result check_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    fields_check_t *fc = cls;
    fc->refused = request_head_field(key, key_size, value ? value : "", value ? value_size : 0, &fc->framing,
                                     &fc->verdict) != HEAD_OK;
    return fc->refused ? MHD_NO : MHD_YES;
}

/*
 * Every request's framing, as the acceptor holds a connection's first request to it
 * (http/request_head.h): a later request of a kept-alive connection reaches libmicrohttpd's
 * parser first, which takes a space before the colon as part of a header's name, and one
 * Content-Length of two, or Transfer-Encoding over Content-Length, where a proxy in front may
 * frame the body otherwise: a request smuggled inside another's body. True when refused (400,
 * the rule in req).
 */
static bool framing_refused(struct MHD_Connection *conn, http_req_t *req)
{
    fields_check_t fc = {0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, check_field, &fc);
    if (!fc.refused && request_head_framing_end(&fc.framing, &fc.verdict) == HEAD_OK)
        return false;
    http_error(req, fc.verdict.status, fc.verdict.code, fc.verdict.field, "%s", fc.verdict.message);
    return true;
}

/* First call, headers only: route, method, key, size. True when answered already. */
bool early_checks(conn_ctx_t *cx, struct MHD_Connection *conn, const char *method)
{
    http_req_t *req = &cx->req;
    const http_server_deps_t *deps = &cx->server->deps;
    /* API.md: request headers over 8 KiB are 431 with the JSON error. Up to the connection's
     * memory limit (16 KiB) it is this one; libmicrohttpd refuses larger ones itself (431 too,
     * with its own page: it cannot hand them over). */
    /* First: every answer's log line names its client, a 404's or a 431's too. */
    client_address(deps, conn, req);
    const union MHD_ConnectionInfo *hs = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (hs && hs->header_size > HEADERS_MAX && request_line_size(conn, method, cx->path) > HEADERS_MAX) {
        http_error(req, 414, "invalid_argument", "path", "the request line is longer than %d bytes", HEADERS_MAX);
        return true;
    }
    if (hs && hs->header_size > HEADERS_MAX) {
        http_error(req, 431, "invalid_argument", "headers", "the request headers are larger than %d bytes", HEADERS_MAX);
        return true;
    }
    if (framing_refused(conn, req)) {
        cx->framing_refused = true; /* its body cannot be told from the next request: closed */
        return true;
    }
    if (deps->api.route(deps->api.app, method, cx->path, &cx->rt, req) != 0)
        return true;
    /* Before OPTIONS returns: a preflight's body, if any, is held to the route's limit too. */
    cx->limit = cx->rt.stream_body ? deps->cfg->import_body_limit
                : cx->rt.batch_body ? deps->cfg->batch_body_limit : deps->cfg->body_limit;
    if (strcmp(method, "OPTIONS") == 0)
        return false;
    authenticate(deps, conn, req);
    if (deps->api.admit(deps->api.app, &cx->rt, method, req) != 0)
        return true;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    uint64_t declared = 0;
    if (cl && !param_parse_uint(cl, UINT64_MAX, &declared))
        declared = 0; /* unreadable: libmicrohttpd checks it, or reads a chunked body */
    if (declared > cx->limit) {
        http_error(req, 413, "payload_too_large", NULL, "the body is larger than %zu bytes", cx->limit);
        return true;
    }
    cx->declared = declared;
    return false;
}
