/*
 * tests/fuzz/fuzz_request.c — a request as rankd sees it after libmicrohttpd: the method and the
 * raw path (routed, segments percent-decoded and validated), the query string (parameters as
 * the handlers read them) and the headers rankd reads itself (X-Request-Id, Idempotency-Key).
 * Input: method \n path[?query] \n header value \n ...
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "core/ids.h"
#include "core/window.h"

static char *line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n + (nl != NULL);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *method = line(&p, end), *target = line(&p, end), *hdr = line(&p, end);
    char *q = strchr(target, '?');
    if (q)
        *q++ = '\0';
    http_req_t req;
    http_req_init(&req);
    if (q)
        http_req_parse_query(&req, q);
    route_t rt;
    if (api_route(method, target, &rt, &req) == 0) {
        req.role = ROLE_READ;
        (void)api_authorize(&rt, &req);
        if (rt.player_len)
            (void)id_player_valid(rt.player, rt.player_len);
    }
    static const char *const names[] = {"limit", "offset", "cursor", "window", "before", "after", "ids",
                                        "from", "to", "consistency", "board", NULL};
    for (int i = 0; names[i]; i++) {
        bool bad = false;
        const char *v = http_param(&req, names[i], &bad);
        uint64_t n;
        int64_t day;
        if (v) {
            (void)param_parse_uint(v, 1000000, &n);
            (void)window_parse_day(v, &day);
            (void)window_resolve(WINDOW_RULE(RESET_WEEKLY), 0, 3, 1800000000000LL, v, &day);
        }
    }
    (void)id_request_id_valid(hdr, strlen(hdr));
    (void)id_idempotency_key_valid(hdr, strlen(hdr));
    http_req_clear(&req);
    free(method);
    free(target);
    free(hdr);
    return 0;
}
