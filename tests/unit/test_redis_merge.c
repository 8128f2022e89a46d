/* The Redis pipe's grouping and hand-out (store/redis_merge.c): which calls of a batch become
 * one command, the arguments of that command, and which part of its reply each call gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store/redis_merge.h"

static const redis_merge_t by_player = {"0123456789012345678901234567890123456789", 4, false}; /* EVALSHA sha 1 key */
static const redis_merge_t by_other = {"abcdefabcdefabcdefabcdefabcdefabcdefabcd", 4, false};

typedef struct {
    redis_call_t call;
    const char *argv[8];
    size_t argvlen[8];
} fake_call_t;

/* EVALSHA <sha> 1 <key> <args...>; `merge` may be NULL (a call always sent alone). */
static void make(fake_call_t *f, const redis_merge_t *merge, const char *key, const char *a1, const char *a2)
{
    memset(f, 0, sizeof *f);
    const char *v[] = {"EVALSHA", merge ? merge->sha : "ffff", "1", key, a1, a2};
    int n = a2 ? 6 : 5;
    for (int i = 0; i < n; i++)
        f->argv[i] = v[i], f->argvlen[i] = strlen(v[i]);
    f->call.argc = n;
    f->call.argv = f->argv;
    f->call.argvlen = f->argvlen;
    f->call.merge = merge;
}

/* Link the calls in order, as the pipe's queue hands them over. */
static redis_call_t *link_all(fake_call_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        f[i].call.link.next = i + 1 < n ? &f[i + 1].call.link : NULL;
    return &f[0].call;
}

static const redis_merge_t range_tx = {NULL, 4, true};

/* {"ZRANGE", "", zset, ready, start, stop}: an around read's second step. */
static void make_range(fake_call_t *f, const char *zset, const char *ready, const char *start, const char *stop)
{
    memset(f, 0, sizeof *f);
    const char *v[] = {"ZRANGE", "", zset, ready, start, stop};
    for (int i = 0; i < 6; i++)
        f->argv[i] = v[i], f->argvlen[i] = strlen(v[i]);
    f->call.argc = 6;
    f->call.argv = f->argv;
    f->call.argvlen = f->argvlen;
    f->call.merge = &range_tx;
}

static void test_ranges_of_one_window_go_in_one_transaction(void **state)
{
    (void)state;
    fake_call_t f[3];
    make_range(&f[0], "z{g1}", "r{g1}", "0", "10");
    make_range(&f[1], "z{g2}", "r{g2}", "5", "15");
    make_range(&f[2], "z{g1}", "r{g1}", "95", "105");
    redis_merge_group(link_all(f, 3));
    assert_ptr_equal(f[0].call.merged, &f[2].call);
    assert_null(f[1].call.merged);
    assert_int_equal(f[2].call.merged_at, 1);
    buf_t text;
    buf_init(&text);
    assert_int_equal(redis_merge_tx_text(&f[0].call, &text), 6); /* OK, 4 QUEUED, EXEC */
    const char *want = "*1\r\n$5\r\nMULTI\r\n"
                       "*2\r\n$6\r\nEXISTS\r\n$5\r\nr{g1}\r\n"
                       "*2\r\n$5\r\nZCARD\r\n$5\r\nz{g1}\r\n"
                       "*4\r\n$6\r\nZRANGE\r\n$5\r\nz{g1}\r\n$1\r\n0\r\n$2\r\n10\r\n"
                       "*4\r\n$6\r\nZRANGE\r\n$5\r\nz{g1}\r\n$2\r\n95\r\n$3\r\n105\r\n"
                       "*1\r\n$4\r\nEXEC\r\n";
    assert_int_equal(text.len, strlen(want));
    assert_memory_equal(text.data, want, text.len);
    buf_reset(&text);
    assert_int_equal(redis_merge_tx_text(&f[1].call, &text), 5); /* alone: OK, 3 QUEUED, EXEC */
    buf_free(&text);
    /* Each call is handed the whole EXEC reply, and reads its range at 2 + merged_at. */
    redisReply exec = {.type = REDIS_REPLY_ARRAY};
    assert_true(redis_merge_hand_out(&f[0].call, &exec));
    assert_ptr_equal(f[0].call.reply, &exec);
    assert_ptr_equal(f[2].call.reply, &exec);
}

static void test_same_script_and_keys_merge_in_order(void **state)
{
    (void)state;
    fake_call_t f[5];
    make(&f[0], &by_player, "w1", "alice", NULL);
    make(&f[1], &by_player, "w2", "bob", NULL);   /* another window: another command */
    make(&f[2], NULL, "w1", "carol", NULL);       /* not mergeable */
    make(&f[3], &by_player, "w1", "dave", "x");   /* joins f[0] */
    make(&f[4], &by_other, "w1", "erin", NULL);   /* another script */
    redis_merge_group(link_all(f, 5));
    assert_ptr_equal(f[0].call.merged, &f[3].call);
    assert_null(f[3].call.merged);
    assert_int_equal(f[0].call.merged_at, 0);
    assert_int_equal(f[3].call.merged_at, 1);
    for (int i = 1; i <= 4; i++)
        if (i != 3) {
            assert_null(f[i].call.merged);
            assert_int_equal(f[i].call.merged_at, 0);
        }

    redis_merge_args_t a = {0};
    size_t n = redis_merge_command(&f[0].call, &a);
    const char *want[] = {"EVALSHA", by_player.sha, "1", "w1", "alice", "dave", "x"};
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a.argvlen[i], strlen(want[i]));
        assert_memory_equal(a.argv[i], want[i], a.argvlen[i]);
    }
    redis_merge_args_free(&a);
}

static void test_grouping_is_redone_for_each_batch(void **state)
{
    (void)state;
    fake_call_t f[2];
    make(&f[0], &by_player, "w1", "a", NULL);
    make(&f[1], &by_player, "w1", "b", NULL);
    redis_merge_group(link_all(f, 2));
    assert_ptr_equal(f[0].call.merged, &f[1].call);
    /* The next batch holds f[1] alone: the chain of the last one must not survive. */
    f[1].call.link.next = NULL;
    redis_merge_group(&f[1].call);
    assert_null(f[1].call.merged);
    assert_int_equal(f[1].call.merged_at, 0);
}

static void test_kinds_beyond_the_open_limit_go_alone(void **state)
{
    (void)state;
    enum { KINDS = REDIS_MERGE_OPEN + 2 };
    fake_call_t f[2 * KINDS];
    char keys[KINDS][8];
    for (int k = 0; k < KINDS; k++) {
        snprintf(keys[k], sizeof keys[k], "w%d", k);
        make(&f[k], &by_player, keys[k], "a", NULL);
        make(&f[KINDS + k], &by_player, keys[k], "b", NULL);
    }
    redis_merge_group(link_all(f, 2 * KINDS));
    for (int k = 0; k < KINDS; k++) {
        if (k < REDIS_MERGE_OPEN) {
            assert_ptr_equal(f[k].call.merged, &f[KINDS + k].call);
            assert_int_equal(f[KINDS + k].call.merged_at, 1);
        } else { /* never merged: each is sent as it is */
            assert_null(f[k].call.merged);
            assert_int_equal(f[KINDS + k].call.merged_at, 0);
        }
    }
}

static void test_merge_command_grows_its_arguments(void **state)
{
    (void)state;
    enum { N = 100 };
    fake_call_t f[N];
    char players[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(players[i], sizeof players[i], "p%d", i);
        make(&f[i], &by_player, "w", players[i], NULL);
    }
    redis_merge_group(link_all(f, N));
    redis_merge_args_t a = {0};
    size_t n = redis_merge_command(&f[0].call, &a);
    assert_int_equal(n, 4 + N);
    for (int i = 0; i < N; i++)
        assert_memory_equal(a.argv[4 + i], players[i], strlen(players[i]));
    assert_true(a.cap >= n);
    redis_merge_args_free(&a);
}

static void test_hand_out_gives_each_call_its_element(void **state)
{
    (void)state;
    fake_call_t f[3];
    for (int i = 0; i < 3; i++)
        make(&f[i], &by_player, "w", "p", NULL);
    redis_merge_group(link_all(f, 3));
    redisReply e[3] = {{.type = REDIS_REPLY_INTEGER, .integer = 10},
                       {.type = REDIS_REPLY_NIL},
                       {.type = REDIS_REPLY_INTEGER, .integer = 30}};
    redisReply *elems[3] = {&e[0], &e[1], &e[2]};
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 3, .element = elems};
    assert_true(redis_merge_hand_out(&f[0].call, &arr));
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(f[i].call.reply, &e[i]);
}

static void test_hand_out_of_an_error_reaches_every_call(void **state)
{
    (void)state;
    fake_call_t f[2];
    for (int i = 0; i < 2; i++)
        make(&f[i], &by_player, "w", "p", NULL);
    redis_merge_group(link_all(f, 2));
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "NOSCRIPT", .len = 8};
    assert_true(redis_merge_hand_out(&f[0].call, &err));
    assert_ptr_equal(f[0].call.reply, &err);
    assert_ptr_equal(f[1].call.reply, &err);
}

static void test_hand_out_refuses_a_reply_of_the_wrong_size(void **state)
{
    (void)state;
    fake_call_t f[3];
    for (int i = 0; i < 3; i++)
        make(&f[i], &by_player, "w", "p", NULL);
    redis_merge_group(link_all(f, 3));
    redisReply e = {.type = REDIS_REPLY_INTEGER, .integer = 1};
    redisReply *elems[2] = {&e, &e};
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = elems};
    assert_false(redis_merge_hand_out(&f[0].call, &arr));
    for (int i = 0; i < 3; i++) /* nobody gets a reply that may be another call's */
        assert_null(f[i].call.reply);
}

static void test_a_lone_call_gets_the_reply_itself(void **state)
{
    (void)state;
    fake_call_t f;
    make(&f, NULL, "w", "p", NULL);
    redis_merge_group(link_all(&f, 1));
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 0};
    assert_true(redis_merge_hand_out(&f.call, &arr));
    assert_ptr_equal(f.call.reply, &arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_script_and_keys_merge_in_order),
        cmocka_unit_test(test_ranges_of_one_window_go_in_one_transaction),
        cmocka_unit_test(test_grouping_is_redone_for_each_batch),
        cmocka_unit_test(test_kinds_beyond_the_open_limit_go_alone),
        cmocka_unit_test(test_merge_command_grows_its_arguments),
        cmocka_unit_test(test_hand_out_gives_each_call_its_element),
        cmocka_unit_test(test_hand_out_of_an_error_reaches_every_call),
        cmocka_unit_test(test_hand_out_refuses_a_reply_of_the_wrong_size),
        cmocka_unit_test(test_a_lone_call_gets_the_reply_itself),
    };
    return cmocka_run_group_tests_name("redis_merge", tests, NULL, NULL);
}
