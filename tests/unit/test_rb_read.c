/* The replies of the read scripts as rb_read_parse reads them: runs packed in one string (members
 * joined by a NUL byte, store/redis_board.c LUA_PACK), runs of one member, runs as arrays, and
 * packed strings that rankd did not write, refused rather than trusted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/redis_board.h"

/* Member of (sort_key, achieved_ms, player) and metadata (NULL: none) into out; its length. */
static size_t member(char *out, int64_t sort_key, int64_t ms, const char *player, const char *md)
{
    order_pos_t pos;
    assert_true(order_pos_set(&pos, sort_key, ms, player, strlen(player)));
    size_t n = order_member_encode(&pos, (unsigned char *)out);
    if (md) {
        out[n++] = ' ';
        memcpy(out + n, md, strlen(md));
        n += strlen(md);
    }
    return n;
}

static redisReply *integer(long long v)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_INTEGER;
    r->integer = v;
    return r;
}

static redisReply *string(const char *s, size_t len)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_STRING;
    r->str = malloc(len + 1);
    memcpy(r->str, s, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static redisReply *array(size_t n, redisReply **items)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    memcpy(r->element, items, n * sizeof *items);
    return r;
}

static void release(redisReply *r)
{
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            release(r->element[i]);
        free(r->element);
    }
    free(r->str);
    free(r);
}

static const board_t board = {.gen = 7, .sort = SORT_DESC, .op = OP_BEST, .reset = RESET_NONE};

/* rb_read_parse of {total, rank0, run} for an around read; the reply is released. */
static rb_status_t parse_run(long long total, long long rank0, redisReply *run, entries_t *out)
{
    rb_read_t rd;
    memset(&rd, 0, sizeof rd); /* as an around or page read: runs in rank order, no count */
    redisReply *r = array(3, (redisReply *[]){integer(total), integer(rank0), run});
    entries_init(out);
    rb_status_t st = rb_read_parse(&rd, r, &board, out);
    release(r);
    return st;
}

static void test_a_packed_run(void **state)
{
    (void)state;
    /* Sort keys and times whose bytes hold NULs, metadata with spaces: only a NUL past a
     * member's prefix ends it. */
    char buf[512];
    size_t n = member(buf, -1000, 0, "alice", "{\"team\": \"a b\"}");
    buf[n++] = '\0';
    n += member(buf + n, -256, 256, "bob", NULL);
    buf[n++] = '\0';
    n += member(buf + n, 0, 1, "carol", "{}");
    entries_t out;
    assert_int_equal(parse_run(40, 9, string(buf, n), &out), RB_OK);
    assert_int_equal(out.total, 40);
    assert_int_equal(out.n, 3);
    assert_int_equal(out.items[0].rank, 10);
    assert_string_equal(out.items[0].player, "alice");
    assert_int_equal(out.items[0].score, 1000);
    assert_string_equal(out.items[0].metadata, "{\"team\": \"a b\"}");
    assert_int_equal(out.items[1].rank, 11);
    assert_string_equal(out.items[1].player, "bob");
    assert_int_equal(out.items[1].achieved_ms, 256);
    assert_null(out.items[1].metadata);
    assert_int_equal(out.items[2].rank, 12);
    assert_string_equal(out.items[2].player, "carol");
    assert_string_equal(out.items[2].metadata, "{}");
    entries_clear(&out);
}

static void test_a_run_of_one_member_and_an_empty_run(void **state)
{
    (void)state;
    char buf[128];
    size_t n = member(buf, -5, 5, "bob", NULL);
    entries_t out;
    assert_int_equal(parse_run(1, 0, string(buf, n), &out), RB_OK);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.items[0].rank, 1);
    assert_string_equal(out.items[0].player, "bob");
    entries_clear(&out);
    assert_int_equal(parse_run(0, 0, string("", 0), &out), RB_OK);
    assert_int_equal(out.n, 0);
    entries_clear(&out);
}

static void test_named_players_come_as_runs_of_one_sorted_by_rank(void **state)
{
    (void)state;
    char a[128], b[128];
    size_t na = member(a, -3, 1, "alice", NULL), nb = member(b, -9, 2, "bob", NULL);
    rb_read_t rd;
    memset(&rd, 0, sizeof rd);
    rd.by_rank = true; /* as rb_prepare_players sets it: answers come in the order asked */
    redisReply *r = array(5, (redisReply *[]){integer(30), integer(20), string(a, na), integer(4), string(b, nb)});
    entries_t out;
    entries_init(&out);
    assert_int_equal(rb_read_parse(&rd, r, &board, &out), RB_OK);
    release(r);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.items[0].player, "bob");
    assert_int_equal(out.items[0].rank, 5);
    assert_string_equal(out.items[1].player, "alice");
    assert_int_equal(out.items[1].rank, 21);
    entries_clear(&out);
}

static void test_an_array_run_is_read_as_before(void **state)
{
    (void)state;
    char a[128], b[128];
    size_t na = member(a, -9, 1, "alice", NULL), nb = member(b, -8, 2, "bob", "{\"x\":1}");
    entries_t out;
    assert_int_equal(parse_run(2, 0, array(2, (redisReply *[]){string(a, na), string(b, nb)}), &out), RB_OK);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.items[1].player, "bob");
    assert_int_equal(out.items[1].rank, 2);
    entries_clear(&out);
}

static void test_a_packed_run_rankd_did_not_write_is_refused(void **state)
{
    (void)state;
    char buf[256];
    entries_t out;
    /* A NUL that ends the string: no member after it. */
    size_t n = member(buf, -9, 1, "alice", NULL);
    buf[n++] = '\0';
    assert_int_equal(parse_run(2, 0, string(buf, n), &out), RB_DOWN);
    assert_int_equal(out.n, 0);
    /* Two NULs in a row: an empty member. */
    buf[n++] = '\0';
    n += member(buf + n, -8, 1, "bob", NULL);
    assert_int_equal(parse_run(2, 0, string(buf, n), &out), RB_DOWN);
    /* A member no longer than its prefix, last or first. */
    n = member(buf, -9, 1, "alice", NULL);
    buf[n++] = '\0';
    memset(buf + n, 'x', 10);
    assert_int_equal(parse_run(2, 0, string(buf, n + 10), &out), RB_DOWN);
    assert_int_equal(parse_run(2, 0, string("short", 5), &out), RB_DOWN);
    /* A space with no metadata after it. */
    n = member(buf, -9, 1, "alice", NULL);
    buf[n++] = ' ';
    assert_int_equal(parse_run(1, 0, string(buf, n), &out), RB_DOWN);
    /* Neither a string nor an array. */
    assert_int_equal(parse_run(1, 0, integer(3), &out), RB_DOWN);
}

/* A styled read's reply (rb_prepare_style): the runs, then the count each run's first rank
 * starts from. A page of ties that starts inside a group: the group's count, then the next
 * group starts at its ordinal rank (competition). */
static void test_a_styled_page_takes_its_first_rank_from_the_count(void **state)
{
    (void)state;
    char buf[512];
    /* Ordinal ranks 5..9: scores 70 70 | 60 | 50 50; 2 standings score better than 70. */
    size_t n = 0;
    const int64_t keys[] = {-70, -70, -60, -50, -50};
    const char *players[] = {"c", "d", "e", "f", "g"};
    for (int i = 0; i < 5; i++) {
        if (i)
            buf[n++] = '\0';
        n += member(buf + n, keys[i], i, players[i], NULL);
    }
    rb_read_t rd;
    memset(&rd, 0, sizeof rd);
    rd.style = RANK_COMPETITION;
    redisReply *r = array(4, (redisReply *[]){integer(30), integer(4), string(buf, n), array(1, (redisReply *[]){integer(2)})});
    entries_t out;
    entries_init(&out);
    assert_int_equal(rb_read_parse(&rd, r, &board, &out), RB_OK);
    const int64_t competition[] = {3, 3, 7, 8, 8};
    assert_int_equal(out.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(out.items[i].rank, competition[i]);
    entries_clear(&out);
    /* The same reply read as dense: the count is of distinct better scores (1, here). */
    r->element[3]->element[0]->integer = 1;
    rd.style = RANK_DENSE;
    entries_init(&out);
    assert_int_equal(rb_read_parse(&rd, r, &board, &out), RB_OK);
    const int64_t dense[] = {2, 2, 3, 4, 4};
    for (int i = 0; i < 5; i++)
        assert_int_equal(out.items[i].rank, dense[i]);
    entries_clear(&out);
    release(r);
}

/* Named players: runs of one, in the order asked; each new score takes its own count. */
static void test_styled_named_players_take_each_score_s_count(void **state)
{
    (void)state;
    char a[128], b[128], c[128];
    size_t na = member(a, -9, 1, "alice", NULL), nb = member(b, -20, 2, "bob", NULL),
           nc = member(c, -9, 0, "carol", NULL);
    rb_read_t rd;
    memset(&rd, 0, sizeof rd);
    rd.by_rank = true;
    rd.style = RANK_COMPETITION;
    redisReply *r = array(8, (redisReply *[]){integer(30), integer(12), string(a, na), integer(3), string(b, nb),
                                              integer(10), string(c, nc),
                                              array(3, (redisReply *[]){integer(9), integer(3), integer(9)})});
    entries_t out;
    entries_init(&out);
    assert_int_equal(rb_read_parse(&rd, r, &board, &out), RB_OK);
    release(r);
    assert_int_equal(out.n, 3);
    assert_string_equal(out.items[0].player, "bob");
    assert_int_equal(out.items[0].rank, 4);
    assert_string_equal(out.items[1].player, "carol");
    assert_int_equal(out.items[1].rank, 10);
    assert_string_equal(out.items[2].player, "alice");
    assert_int_equal(out.items[2].rank, 10);
    entries_clear(&out);
}

/* A styled reply without its counts, or with counts that do not match its runs: refused. */
static void test_a_styled_reply_without_its_counts_is_refused(void **state)
{
    (void)state;
    char a[128];
    size_t na = member(a, -9, 1, "alice", NULL);
    rb_read_t rd;
    memset(&rd, 0, sizeof rd);
    rd.style = RANK_COMPETITION;
    entries_t out;
    redisReply *replies[] = {
        array(3, (redisReply *[]){integer(3), integer(0), string(a, na)}),
        array(4, (redisReply *[]){integer(3), integer(0), string(a, na), array(0, (redisReply *[]){NULL})}),
        array(4, (redisReply *[]){integer(3), integer(0), string(a, na), array(1, (redisReply *[]){string("1", 1)})}),
        array(4, (redisReply *[]){integer(3), integer(0), string(a, na), integer(1)}),
    };
    for (size_t i = 0; i < sizeof replies / sizeof *replies; i++) {
        entries_init(&out);
        assert_int_equal(rb_read_parse(&rd, replies[i], &board, &out), RB_DOWN);
        assert_int_equal(out.n, 0);
        release(replies[i]);
    }
    /* No run (a player absent, a cursor before the first entry): no count. */
    redisReply *empty = array(2, (redisReply *[]){integer(3), array(0, (redisReply *[]){NULL})});
    entries_init(&out);
    assert_int_equal(rb_read_parse(&rd, empty, &board, &out), RB_OK);
    assert_int_equal(out.n, 0);
    assert_int_equal(out.total, 3);
    release(empty);
}

/* An around read's two steps (store/redis_board.h): the rank, then the range in a transaction. */
static void test_around_rank_step(void **state)
{
    (void)state;
    int64_t rank, total;
    redisReply *r = array(2, (redisReply *[]){integer(1000), integer(41)});
    assert_int_equal(rb_around_rank_parse(r, &rank, &total), RB_OK);
    assert_int_equal(rank, 41);
    assert_int_equal(total, 1000);
    release(r);
    r = array(1, (redisReply *[]){integer(1000)}); /* no standing */
    assert_int_equal(rb_around_rank_parse(r, &rank, &total), RB_OK);
    assert_int_equal(rank, -1);
    release(r);
    redisReply nil = {.type = REDIS_REPLY_NIL};
    assert_int_equal(rb_around_rank_parse(&nil, &rank, &total), RB_COLD);
    assert_int_equal(rb_around_rank_parse(NULL, &rank, &total), RB_DOWN);
    r = array(2, (redisReply *[]){integer(1000), string("x", 1)});
    assert_int_equal(rb_around_rank_parse(r, &rank, &total), RB_DOWN);
    release(r);
}

/* EXEC's reply for two reads: {ready, count, range of the first, range of the second}; the
 * second's range holds b, c, d. */
static redisReply *exec_reply(long long ready, long long count)
{
    char m[3][64];
    size_t n[3];
    n[0] = member(m[0], 300, 1, "b", NULL);
    n[1] = member(m[1], 200, 1, "c", "lvl 3");
    n[2] = member(m[2], 100, 1, "d", NULL);
    redisReply *second = array(3, (redisReply *[]){string(m[0], n[0]), string(m[1], n[1]), string(m[2], n[2])});
    return array(4, (redisReply *[]){integer(ready), integer(count), array(0, (redisReply *[]){NULL}), second});
}

static void test_around_range_step(void **state)
{
    (void)state;
    entries_t out;
    entries_init(&out);
    /* c at rank 11 (0-based), one before and one after: its range starts at 10. */
    redisReply *r = exec_reply(1, 500);
    assert_int_equal(rb_around_range_parse(r, 1, "c", 11, 1, &board, &out), RB_OK);
    assert_int_equal(out.total, 500);
    assert_int_equal(out.n, 3);
    assert_int_equal(out.items[0].rank, 11);
    assert_string_equal(out.items[1].player, "c");
    assert_int_equal(out.items[1].rank, 12);
    assert_string_equal(out.items[1].metadata, "lvl 3");
    entries_clear(&out);
    /* The player moved between the steps: not where its rank said, so not this answer. */
    assert_int_equal(rb_around_range_parse(r, 1, "d", 11, 1, &board, &out), RB_AGAIN);
    assert_int_equal(out.n, 0);
    assert_int_equal(rb_around_range_parse(r, 1, "e", 11, 1, &board, &out), RB_AGAIN);
    /* The player's rank near the end, the range shorter than asked: its index is past it. */
    assert_int_equal(rb_around_range_parse(r, 1, "c", 11, 5, &board, &out), RB_AGAIN);
    /* An element beyond the reply, a window gone cold, an error. */
    assert_int_equal(rb_around_range_parse(r, 2, "c", 11, 1, &board, &out), RB_AGAIN);
    release(r);
    r = exec_reply(0, 0);
    assert_int_equal(rb_around_range_parse(r, 1, "c", 11, 1, &board, &out), RB_COLD);
    release(r);
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = (char *)"EXECABORT", .len = 9};
    assert_int_equal(rb_around_range_parse(&err, 0, "c", 11, 1, &board, &out), RB_AGAIN);
    assert_int_equal(rb_around_range_parse(NULL, 0, "c", 11, 1, &board, &out), RB_DOWN);
    entries_clear(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_packed_run),
        cmocka_unit_test(test_a_run_of_one_member_and_an_empty_run),
        cmocka_unit_test(test_named_players_come_as_runs_of_one_sorted_by_rank),
        cmocka_unit_test(test_an_array_run_is_read_as_before),
        cmocka_unit_test(test_a_packed_run_rankd_did_not_write_is_refused),
        cmocka_unit_test(test_a_styled_page_takes_its_first_rank_from_the_count),
        cmocka_unit_test(test_styled_named_players_take_each_score_s_count),
        cmocka_unit_test(test_a_styled_reply_without_its_counts_is_refused),
        cmocka_unit_test(test_around_rank_step),
        cmocka_unit_test(test_around_range_step),
    };
    return cmocka_run_group_tests_name("rb_read", tests, NULL, NULL);
}
