/*
 * http/server_response.c — an answer's body and headers: conditional requests, ETags,
 * compression, caching, CORS and the headers every answer carries.
 *
 * A cached answer is sent by reference from the response cache (each encoding made once), a
 * file's compiled-in bytes as they are, a streamed one through its producer; anything else is
 * the handler's buffer, compressed when the client asks and it is large enough.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/l1.h"
#include "http/server_conn.h"

/*
 * CORS headers (API.md). `api`: a /v1/ route, whose answers a configured CORS list may change
 * whatever the request: Vary: Origin on all of them, so that a shared cache never hands a browser
 * the variant made for a request without an Origin.
 */
static void add_cors(const http_server_deps_t *deps, struct MHD_Connection *conn, struct MHD_Response *r, bool preflight,
                     const char *allow, bool api)
{
    const rankd_config_t *live = atomic_load(deps->live);
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if ((api && live->n_cors_origins > 0) || origin)
        MHD_add_response_header(r, "Vary", "Origin");
    if (!origin || !config_cors_allowed(live, origin))
        return;
    /* "*" is answered as "*", never by reflecting the origin. */
    MHD_add_response_header(r, "Access-Control-Allow-Origin", config_cors_any(live) ? "*" : origin);
    if (preflight) {
        MHD_add_response_header(r, "Access-Control-Allow-Methods", allow ? allow : "GET, HEAD, OPTIONS");
        MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Idempotency-Key, If-None-Match, Last-Event-ID, "
                                "X-Request-Id");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    }
    /* API.md: every response to an allowed origin, preflights included. */
    MHD_add_response_header(r, "Access-Control-Expose-Headers",
                            "ETag, Location, Retry-After, X-Request-Id, RateLimit-Limit, RateLimit-Remaining, "
                            "RateLimit-Reset");
}

/* `sec` (Unix time) as an HTTP date, in a buffer of the calling thread valid until its next
 * call. A hot entry's Last-Modified is the same second request after request: formatted once
 * (gmtime_r and strftime were 1.2 % of a cached read). Per thread, so never shared. */
const char *http_date(int64_t sec)
{
    static _Thread_local int64_t last = -1;
    static _Thread_local char text[40];
    if (sec != last) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = sec;
    }
    return text;
}

/*
 * Whether a read may answer 304: If-None-Match decides when present (any listed tag, any
 * variant); otherwise If-Modified-Since not older than the answer's modification time.
 */
static bool not_modified(struct MHD_Connection *conn, const char *etag, int64_t last_modified_ms)
{
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm)
        return encoding_none_match(inm, etag);
    const char *ims = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Modified-Since");
    if (!ims || last_modified_ms <= 0)
        return false;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return false; /* not an IMF-fixdate: ignored, as RFC 9110 says */
    return (int64_t)timegm(&tm) >= last_modified_ms / 1000;
}

/* The ETag of a 304: the one the 200 would carry (RFC 9110 15.4.5), the encoded variant's when
 * the client would get an encoded body of `identity_len` bytes. */
static void etag_not_modified(struct MHD_Connection *conn, size_t identity_len, char etag[ETAG_MAX])
{
    if (identity_len < ENCODING_MIN_BODY)
        return;
    encoding_t enc = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
    if (enc == ENC_IDENTITY)
        return;
    char variant[ETAG_MAX];
    encoding_variant_etag(etag, enc, variant);
    memcpy(etag, variant, ETAG_MAX);
}

/* `*body` (malloc'd, `*len` bytes) in the encoding the client prefers, replaced in place; the
 * encoding applied (identity when none is wanted or compressing failed). Made on the encoder
 * thread already when it is large (compress_off_loop). */
static encoding_t compress_body(conn_ctx_t *cx, struct MHD_Connection *conn, char **body, size_t *len)
{
    encoding_t enc = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
    size_t zlen = 0;
    char *z;
    if (cx->encoded_off_loop && cx->pre_enc == enc) {
        z = cx->pre_body;
        zlen = cx->pre_len;
        cx->pre_body = NULL;
    } else {
        z = enc == ENC_IDENTITY ? NULL : encoding_compress(enc, *body, *len, &zlen);
    }
    if (!z)
        return ENC_IDENTITY;
    free(*body);
    *body = z;
    *len = zlen;
    return enc;
}

static void release_cached(void *entry)
{
    l1_release(entry);
}

#define STREAM_BLOCK 32768 /* bytes libmicrohttpd asks a streamed answer for at a time */

/* The answer to `req`, its body and headers; NULL when out of memory. */
struct MHD_Response *build_response(conn_ctx_t *cx, struct MHD_Connection *conn, bool preflight)
{
    http_req_t *req = &cx->req;
    const http_server_deps_t *deps = &cx->server->deps;
    size_t len = 0;
    char *body = buf_steal(&req->out, &len);
    char etag[ETAG_MAX] = "";
    encoding_t enc = ENC_IDENTITY;
    bool reads = req->cacheable && req->status == 200;
    struct MHD_Response *r = NULL;
    bool persistent = false; /* the bytes are the program's own, held by nobody */
    bool streamed = false;   /* the bytes come from a producer as they are sent */
    if (req->stream && req->status == 200) {
        http_stream_t *st = req->stream;
        req->stream = NULL;
        free(body);
        body = NULL;
        len = 0;
        http_stream_attach(st, conn, cx->server->stream_writer, cx->http11);
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, http_stream_read, st, http_stream_release);
        if (!r) {
            http_stream_release(st);
            return NULL;
        }
        track_stream(cx, conn, st);
        streamed = true;
    } else if (reads && req->cached) {
        /* A cached answer: its ETag was computed once, each encoding is made once (l1_encoded),
         * and the bytes are shared by reference. */
        l1_view_t v;
        l1_view(req->cached, &v);
        memcpy(etag, v.etag, sizeof etag); /* both ETAG_MAX, NUL-terminated */
        req->last_modified_ms = v.last_modified_ms;
        const char *bytes = v.body;
        size_t n = v.len;
        if (not_modified(conn, etag, req->last_modified_ms)) {
            req->status = 304;
            etag_not_modified(conn, n, etag);
            n = 0;
        } else if (n >= ENCODING_MIN_BODY) {
            enc = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
            size_t zn = 0;
            const char *z = enc == ENC_IDENTITY ? NULL : l1_encoded(deps->l1, req->cached, enc, &zn);
            if (z) {
                bytes = z;
                n = zn;
                char variant[ETAG_MAX];
                encoding_variant_etag(v.etag, enc, variant);
                memcpy(etag, variant, sizeof etag);
            } else {
                enc = ENC_IDENTITY;
            }
        }
        l1_hold(req->cached); /* the response's reference, dropped when MHD is done with the bytes */
        r = MHD_create_response_from_buffer_with_free_callback_cls(n, (void *)bytes, release_cached, req->cached);
        free(body);
        body = NULL;
        len = n;
        if (!r) {
            l1_release(req->cached);
            return NULL;
        }
    } else if (reads && req->static_body) {
        const http_static_t *sb = req->static_body;
        memcpy(etag, sb->etag, sizeof etag);
        const char *bytes = sb->body;
        size_t n = sb->len;
        if (not_modified(conn, etag, req->last_modified_ms)) {
            req->status = 304;
            encoding_t want = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
            if (want != ENC_IDENTITY && sb->enc_body[want])
                memcpy(etag, sb->enc_etag[want], sizeof etag);
            n = 0;
        } else {
            enc = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
            if (enc != ENC_IDENTITY && sb->enc_body[enc]) {
                bytes = sb->enc_body[enc];
                n = sb->enc_len[enc];
                memcpy(etag, sb->enc_etag[enc], sizeof etag);
            } else {
                enc = ENC_IDENTITY;
            }
        }
        r = MHD_create_response_from_buffer(n, (void *)bytes, MHD_RESPMEM_PERSISTENT);
        free(body);
        body = NULL;
        len = n;
        persistent = true;
        if (!r)
            return NULL;
    } else if (reads) {
        /* The tag names the identity bytes; an encoded body carries its variant's tag. */
        encoding_etag(body, len, etag);
        if (not_modified(conn, etag, req->last_modified_ms)) {
            req->status = 304;
            etag_not_modified(conn, len, etag);
        } else if (len >= ENCODING_MIN_BODY) {
            enc = compress_body(cx, conn, &body, &len);
            if (enc != ENC_IDENTITY) {
                char variant[ETAG_MAX];
                encoding_variant_etag(etag, enc, variant);
                memcpy(etag, variant, sizeof etag);
            }
        }
    }
    /* Other answers of 1024 bytes or more (/metrics, batches, admin calls) are compressed too
     * (API.md: every compressible response), without a tag. */
    bool compressible = !reads && req->status == 200 && len >= ENCODING_MIN_BODY;
    if (compressible)
        enc = compress_body(cx, conn, &body, &len);
    if (!r) {
        if (req->status == 204 || req->status == 304)
            len = 0;
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(body);
            return NULL;
        }
    }
    cx->answer_len = req->head || persistent ? 0 : len;
    if (reads)
        MHD_add_response_header(r, "ETag", etag);
    if (reads || compressible) {
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
        if (enc != ENC_IDENTITY)
            MHD_add_response_header(r, "Content-Encoding", encoding_name(enc));
    }
    if (len || streamed || (req->head && req->content_type_out)) /* a HEAD names what the GET sends */
        MHD_add_response_header(r, "Content-Type", req->content_type_out ? req->content_type_out : "application/json");
    if (req->disposition[0])
        MHD_add_response_header(r, "Content-Disposition", req->disposition);
    /* A live stream's events must not wait in a proxy's buffer (nginx buffers by default). */
    if (streamed && req->content_type_out && strcmp(req->content_type_out, "text/event-stream") == 0) {
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        /* The stream leaves libmicrohttpd and its socket is closed at its end: a client must not
         * take the connection back into its pool for another request. */
        MHD_add_response_header(r, "Connection", "close");
    }
    if (req->last_modified_ms > 0)
        MHD_add_response_header(r, "Last-Modified", http_date(req->last_modified_ms / 1000));
    MHD_add_response_header(r, "X-Request-Id", req->client_request_id[0] ? req->client_request_id : req->request_id);
    /* API.md: on every answer, so that no browser takes a JSON body for a page or a script. */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (reads) {
        MHD_add_response_header(r, "Cache-Control",
                                cx->rt.role == ROLE_NONE ? cx->server->cache_public : cx->server->cache_control);
    } else {
        MHD_add_response_header(r, "Cache-Control", "no-store");
    }
    if (req->location[0])
        MHD_add_response_header(r, "Location", req->location);
    if (req->security_policy) {
        MHD_add_response_header(r, "Content-Security-Policy", req->security_policy);
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    if (req->allow && (req->status == 405 || preflight))
        MHD_add_response_header(r, "Allow", req->allow);
    if (req->ratelimit.limited) {
        char v[16];
        snprintf(v, sizeof v, "%d", req->ratelimit.limit);
        MHD_add_response_header(r, "RateLimit-Limit", v);
        snprintf(v, sizeof v, "%d", req->ratelimit.remaining);
        MHD_add_response_header(r, "RateLimit-Remaining", v);
        snprintf(v, sizeof v, "%d", req->ratelimit.reset_s);
        MHD_add_response_header(r, "RateLimit-Reset", v);
    }
    if (req->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", req->retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    add_cors(deps, conn, r, preflight, req->allow, cx->path && strncmp(cx->path, "/v1/", 4) == 0);
    /* A 413's body may still be on its way (API.md: the connection is closed). */
    /* A held-back refusal closes its connection too: its client pays a new one for the next try. */
    /* So does one refused for its framing: where its body ends is not known. */
    if (atomic_load(&cx->server->draining) || req->status == 413 || cx->delayed || cx->framing_refused)
        MHD_add_response_header(r, "Connection", "close");
    return r;
}
