/* util/redis_url.c — the one parser of Redis addresses (see redis_url.h). */
#include "util/redis_url.h"

#include <string.h>

#include "util/hostport.h"

bool redis_url_parse(const char *url, redis_url_t *out)
{
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return false;
    const char *p = url + sizeof scheme - 1;
    out->password[0] = '\0';
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
    const char *host;
    size_t host_len;
    if (!slash || !hostport_split(p, (size_t)(slash - p), true, &host, &host_len, &out->port) ||
        host_len >= sizeof out->host)
        return false;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    size_t digits = strlen(slash + 1);
    if (digits == 0 || digits > 9)
        return false;
    int db = 0;
    for (const char *d = slash + 1; *d; d++) {
        if (*d < '0' || *d > '9')
            return false;
        db = db * 10 + (*d - '0');
    }
    out->db = db;
    return true;
}
