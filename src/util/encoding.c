/* util/encoding.c — ETags, conditional requests and response compression. */
#include "util/encoding.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <brotli/encode.h>
#include <xxhash.h>
#include <zlib.h>

#include "util/alloc.h"

/* The tag is 64 bits of XXH3 over the identity bytes: a tag only has to change when the bytes do
 * (a client that forges a collision fools only its own cache), and XXH3 costs a twentieth of
 * SHA-1 on a page-sized body, on every read that is not served from the response cache. */
void encoding_etag(const char *body, size_t len, char out[ETAG_MAX])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t h = XXH3_64bits(body, len);
    out[0] = '"';
    for (int i = 0; i < 16; i++)
        out[1 + i] = hex[(h >> (60 - 4 * i)) & 0xf];
    out[17] = '"';
    out[18] = '\0';
}

void encoding_variant_etag(const char *etag, encoding_t enc, char out[ETAG_MAX])
{
    size_t n = strlen(etag);
    if (enc == ENC_IDENTITY || n < 2) {
        snprintf(out, ETAG_MAX, "%s", etag);
        return;
    }
    snprintf(out, ETAG_MAX, "%.*s-%s\"", (int)(n - 1), etag, enc == ENC_GZIP ? "gz" : "br");
}

bool encoding_none_match(const char *header, const char *etag)
{
    if (!header)
        return false;
    char gz[ETAG_MAX], br[ETAG_MAX];
    encoding_variant_etag(etag, ENC_GZIP, gz);
    encoding_variant_etag(etag, ENC_BR, br);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0) /* If-None-Match uses the weak comparison */
            p += 2;
        const char *end = p;
        if (*p == '"') {
            end = strchr(p + 1, '"');
            end = end ? end + 1 : p + strlen(p);
        } else {
            while (*end && *end != ',')
                end++;
        }
        size_t n = (size_t)(end - p);
        if ((n == strlen(etag) && memcmp(p, etag, n) == 0) || (n == strlen(gz) && memcmp(p, gz, n) == 0) ||
            (n == strlen(br) && memcmp(p, br, n) == 0))
            return true;
        p = end;
    }
    return false;
}

/* q-value of a coding in Accept-Encoding: -1 when absent, else 0..1000. */
static int coding_q(const char *header, const char *coding)
{
    int star = -1;
    const char *p = header;
    size_t clen = strlen(coding);
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t tlen = (size_t)(p - tok);
        int q = 1000;
        while (*p && *p != ',') {
            while (*p == ' ' || *p == '\t' || *p == ';')
                p++;
            if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                double v = strtod(p + 2, NULL);
                q = v <= 0 ? 0 : v >= 1 ? 1000 : (int)(v * 1000);
            }
            while (*p && *p != ',' && *p != ';')
                p++;
        }
        if (tlen == clen && strncasecmp(tok, coding, clen) == 0)
            return q;
        if (tlen == 1 && *tok == '*')
            star = q;
    }
    return star;
}

encoding_t encoding_negotiate(const char *h)
{
    if (!h)
        return ENC_IDENTITY;
    if (coding_q(h, "br") > 0)
        return ENC_BR;
    if (coding_q(h, "gzip") > 0)
        return ENC_GZIP;
    return ENC_IDENTITY;
}

const char *encoding_name(encoding_t enc)
{
    return enc == ENC_BR ? "br" : enc == ENC_GZIP ? "gzip" : "identity";
}

static char *gzip_compress(const char *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, len);
    char *out = xmalloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static char *brotli_compress(const char *in, size_t len, size_t *out_len)
{
    size_t cap = BrotliEncoderMaxCompressedSize(len);
    if (cap == 0)
        return NULL;
    char *out = xmalloc(cap);
    *out_len = cap;
    if (!BrotliEncoderCompress(5, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, len, (const uint8_t *)in, out_len,
                               (uint8_t *)out)) {
        free(out);
        return NULL;
    }
    return out;
}

char *encoding_compress(encoding_t enc, const char *in, size_t len, size_t *out_len)
{
    switch (enc) {
    case ENC_GZIP: return gzip_compress(in, len, out_len);
    case ENC_BR: return brotli_compress(in, len, out_len);
    case ENC_IDENTITY: break;
    }
    return NULL;
}
