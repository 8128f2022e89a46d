/* util/redis_url.c — the one parser of Redis addresses (see redis_url.h). */
#include "util/redis_url.h"

#include <string.h>

#include "util/hostport.h"

static bool parse_db(const char *s, size_t n, int *db)
{
    if (n == 0 || n > 9)
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *db = v;
    return true;
}

/* host:port[,host:port…], the n bytes at s; only one address unless `many`. */
static bool parse_addrs(const char *s, size_t n, bool many, redis_url_t *out)
{
    out->n_addrs = 0;
    const char *end = s + n;
    while (s <= end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *stop = comma ? comma : end;
        const char *host;
        size_t host_len;
        redis_addr_t *a = &out->addrs[out->n_addrs];
        if (out->n_addrs == REDIS_URL_ADDRS_MAX || (comma && !many) ||
            !hostport_split(s, (size_t)(stop - s), true, &host, &host_len, &a->port) || host_len == 0 ||
            host_len >= sizeof a->host)
            return false;
        memcpy(a->host, host, host_len);
        a->host[host_len] = '\0';
        out->n_addrs++;
        if (!comma)
            break;
        s = comma + 1;
    }
    memcpy(out->host, out->addrs[0].host, sizeof out->host);
    out->port = out->addrs[0].port;
    return true;
}

bool redis_url_parse(const char *url, redis_url_t *out)
{
    static const struct {
        const char *scheme;
        redis_url_kind_t kind;
    } schemes[] = {
        {"redis://", REDIS_URL_SINGLE},
        {"redis+cluster://", REDIS_URL_CLUSTER},
        {"redis+sentinel://", REDIS_URL_SENTINEL},
    };
    const char *p = NULL;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0] && !p; i++) {
        size_t n = strlen(schemes[i].scheme);
        if (strncmp(url, schemes[i].scheme, n) == 0) {
            p = url + n;
            out->kind = schemes[i].kind;
        }
    }
    if (!p)
        return false;
    out->password[0] = '\0';
    out->master[0] = '\0';
    out->db = 0;
    const char *at = strrchr(p, '@');
    if (at) { /* only a password: Redis's AUTH <password> */
        size_t n = (size_t)(at - p - 1);
        if (p[0] != ':' || n == 0 || n >= sizeof out->password)
            return false;
        memcpy(out->password, p + 1, n);
        out->password[n] = '\0';
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    switch (out->kind) {
    case REDIS_URL_SINGLE: /* host:port/db */
        return slash && parse_addrs(p, (size_t)(slash - p), false, out) &&
               parse_db(slash + 1, strlen(slash + 1), &out->db);
    case REDIS_URL_CLUSTER: /* seeds only: a cluster has database 0 alone */
        return !slash && parse_addrs(p, strlen(p), true, out);
    case REDIS_URL_SENTINEL: { /* sentinels/master[/db] */
        if (!slash || !parse_addrs(p, (size_t)(slash - p), true, out))
            return false;
        const char *name = slash + 1;
        const char *db = strchr(name, '/');
        size_t name_len = db ? (size_t)(db - name) : strlen(name);
        if (name_len == 0 || name_len >= sizeof out->master || (db && !parse_db(db + 1, strlen(db + 1), &out->db)))
            return false;
        for (size_t i = 0; i < name_len; i++)
            if ((unsigned char)name[i] <= ' ' || name[i] == '/')
                return false;
        memcpy(out->master, name, name_len);
        out->master[name_len] = '\0';
        return true;
    }
    }
    return false;
}
