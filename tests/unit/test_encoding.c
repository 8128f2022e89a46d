/* tests/unit/test_encoding.c — Accept-Encoding negotiation (API.md: br preferred, then gzip,
 * q=0 honoured) and the round trip of what is compressed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "util/encoding.h"

static void test_negotiation(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        encoding_t want;
    } cases[] = {
        {NULL, ENC_IDENTITY},
        {"", ENC_IDENTITY},
        {"identity", ENC_IDENTITY},
        {"gzip", ENC_GZIP},
        {"br", ENC_BR},
        {"gzip, deflate, br", ENC_BR},       /* br preferred whatever the order */
        {"br;q=0, gzip", ENC_GZIP},          /* q=0 refuses */
        {"br;q=0.0, gzip;q=0", ENC_IDENTITY},
        {"gzip;q=0.001", ENC_GZIP},
        {"*", ENC_BR},                       /* anything: the best */
        {"*;q=0", ENC_IDENTITY},
        {"*;q=0, gzip", ENC_GZIP},           /* a named coding wins over the star */
        {"GZIP", ENC_GZIP},                  /* codings are case-insensitive */
        {"  br ; q=1 ,gzip", ENC_BR},
        {"brotli, gzipx", ENC_IDENTITY},     /* other names, not prefixes */
        {"deflate", ENC_IDENTITY},
        {";;;,,,q=", ENC_IDENTITY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        encoding_t got = encoding_negotiate(cases[i].header);
        if (got != cases[i].want)
            fail_msg("Accept-Encoding \"%s\": %d, want %d", cases[i].header ? cases[i].header : "(none)", got,
                     cases[i].want);
    }
}

static void test_gzip_round_trip(void **state)
{
    (void)state;
    char body[4096];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 7);
    size_t zlen = 0;
    char *z = encoding_compress(ENC_GZIP, body, sizeof body, &zlen);
    assert_non_null(z);
    assert_true(zlen < sizeof body);
    char back[8192];
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(inflateInit2(&s, 15 + 16), Z_OK);
    s.next_in = (Bytef *)z;
    s.avail_in = (uInt)zlen;
    s.next_out = (Bytef *)back;
    s.avail_out = sizeof back;
    assert_int_equal(inflate(&s, Z_FINISH), Z_STREAM_END);
    assert_int_equal(s.total_out, sizeof body);
    assert_memory_equal(back, body, sizeof body);
    inflateEnd(&s);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation),
        cmocka_unit_test(test_gzip_round_trip),
    };
    return cmocka_run_group_tests_name("encoding", tests, NULL, NULL);
}
