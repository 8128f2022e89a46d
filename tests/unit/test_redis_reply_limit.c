/* The bounds Redis replies are held to (store/redis_reply_limit.c): an array header that claims
 * more elements than any answer rankd asks for fails the reader before anything is allocated for
 * it; replies within the bounds parse as hiredis's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/read.h>

#include "store/redis_reply_limit.h"

/* Feed `bytes` to a limited reader: REDIS_OK with the reply in *out (caller frees), or REDIS_ERR. */
static int read_one(const char *bytes, size_t len, redisReply **out)
{
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    redis_reply_limit(r);
    redisReaderFeed(r, bytes, len);
    void *reply = NULL;
    int rc = redisReaderGetReply(r, &reply);
    redisReaderFree(r);
    *out = reply;
    return rc;
}

static void test_small_arrays_parse(void **state)
{
    (void)state;
    static const char in[] = "*3\r\n:1\r\n$5\r\nalice\r\n*2\r\n:7\r\n$-1\r\n";
    redisReply *reply;
    assert_int_equal(read_one(in, sizeof in - 1, &reply), REDIS_OK);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(reply->elements, 3);
    assert_string_equal(reply->element[1]->str, "alice");
    assert_int_equal(reply->element[2]->elements, 2);
    assert_int_equal(reply->element[2]->element[1]->type, REDIS_REPLY_NIL);
    freeReplyObject(reply);
}

static void test_huge_array_header_fails(void **state)
{
    (void)state;
    /* The fuzzer's finding: 311 million elements claimed, 2.4 GB of pointers asked for. */
    static const char in[] = "*311111111\r\n:1\r\n:1\r\n";
    redisReply *reply;
    assert_int_equal(read_one(in, sizeof in - 1, &reply), REDIS_ERR);
    assert_null(reply);
    /* Nested: the inner header is refused as the outer one would be. */
    static const char nested[] = "*1\r\n*2000000\r\n";
    assert_int_equal(read_one(nested, sizeof nested - 1, &reply), REDIS_ERR);
    /* A count past INT_MAX (hiredis itself refuses it). */
    static const char wide[] = "*4294967297\r\n:1\r\n";
    assert_int_equal(read_one(wide, sizeof wide - 1, &reply), REDIS_ERR);
}

static void test_bound_itself_parses(void **state)
{
    (void)state;
    /* Exactly REDIS_REPLY_ELEMENTS_MAX elements is an answer rankd may get (a cluster's slot map
     * at its most scattered is far below it). */
    size_t n = REDIS_REPLY_ELEMENTS_MAX, len = 0;
    char *in = malloc(32 + n * 4);
    assert_non_null(in);
    len += (size_t)sprintf(in, "*%zu\r\n", n);
    for (size_t i = 0; i < n; i++)
        memcpy(in + len, ":1\r\n", 4), len += 4;
    redisReply *reply;
    assert_int_equal(read_one(in, len, &reply), REDIS_OK);
    assert_int_equal(reply->elements, n);
    freeReplyObject(reply);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_arrays_parse),
        cmocka_unit_test(test_huge_array_header_fails),
        cmocka_unit_test(test_bound_itself_parses),
    };
    return cmocka_run_group_tests_name("redis_reply_limit", tests, NULL, NULL);
}
