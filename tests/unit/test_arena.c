/* tests/unit/test_arena.c — the request arena, and jansson parsing into it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/arena.h"

static void test_blocks_are_aligned_and_do_not_overlap(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    unsigned char *prev = NULL;
    size_t prev_n = 0;
    for (size_t n = 1; n < 300; n += 7) {
        unsigned char *p = arena_alloc(&a, n);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xab, n);
        if (prev)
            assert_true(p >= prev + prev_n || p + n <= prev);
        prev = p;
        prev_n = n;
    }
    arena_clear(&a);
    assert_null(a.chunks);
    assert_int_equal(a.used, 0);
}

static void test_a_block_larger_than_a_chunk_gets_a_chunk_of_its_own(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    char *small = arena_alloc(&a, 10);
    memcpy(small, "kept", 5);
    char *big = arena_alloc(&a, 1 << 20);
    memset(big, 1, 1 << 20);
    char *after = arena_alloc(&a, 10);
    memset(after, 2, 10);
    assert_string_equal(small, "kept"); /* earlier blocks stay where they were */
    assert_true(a.used >= (1 << 20) + 20);
    arena_clear(&a);
    /* usable again once cleared */
    assert_non_null(arena_alloc(&a, 1));
    arena_clear(&a);
}

static void test_a_parsed_tree_lives_in_the_arena(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    static const char text[] = "{\"scores\":[{\"board\":\"b\",\"player_id\":\"p1\",\"score\":7}]}";
    json_error_t err;
    json_t *v = arena_json_loadb(&a, text, sizeof text - 1, JSON_REJECT_DUPLICATES, &err);
    assert_non_null(v);
    assert_true(a.used > 0);
    json_t *item = json_array_get(json_object_get(v, "scores"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "player_id")), "p1");
    assert_int_equal(json_integer_value(json_object_get(item, "score")), 7);
    /* A value added after the parse comes from the heap and is freed with the tree. */
    json_object_set_new(v, "later", json_string("heap"));
    size_t used = a.used;
    json_decref(v);
    assert_int_equal(a.used, used);
    arena_clear(&a);
}

static void test_a_rejected_body_leaves_nothing_but_the_arena(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    static const char text[] = "{\"a\":1,\"a\":2}";
    json_error_t err;
    assert_null(arena_json_loadb(&a, text, sizeof text - 1, JSON_REJECT_DUPLICATES, &err));
    assert_int_equal(json_error_code(&err), json_error_duplicate_key);
    arena_clear(&a);
}

static void test_values_made_after_a_parse_come_from_the_heap(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    json_t *parsed = arena_json_loadb(&a, "[1]", 3, 0, NULL);
    assert_non_null(parsed);
    size_t used = a.used;
    json_t *v = json_pack("{s:[i,i,s]}", "x", 1, 2, "three");
    assert_non_null(v);
    assert_int_equal(a.used, used); /* the parse is over: not taken from its arena */
    json_decref(v);                 /* LeakSanitizer: freed one by one, as usual */
    json_decref(parsed);
    arena_clear(&a);
}

static void test_the_first_chunk_is_sized_from_the_body(void **state)
{
    (void)state;
    arena_t small, big;
    arena_init(&small);
    arena_init(&big);
    static const char one[] = "{\"player_id\":\"p1\",\"score\":7}";
    json_decref(arena_json_loadb(&small, one, sizeof one - 1, 0, NULL));
    assert_true(small.used > 0);
    assert_int_equal(small.held, 1024); /* one submission: the smallest chunk, not 16 KB */
    /* a larger body: its first chunk is sized for it (16 times its length) */
    static const char items[] = "[{\"s\":1},{\"s\":2},{\"s\":3},{\"s\":4},{\"s\":5},{\"s\":6},{\"s\":7}]";
    json_t *v = arena_json_loadb(&big, items, sizeof items - 1, 0, NULL);
    assert_non_null(v);
    assert_true(big.held >= 16 * (sizeof items - 1));
    json_decref(v);
    arena_clear(&small);
    arena_clear(&big);
}

/* A request's query parameters take the arena's first chunk before its body is parsed: the
 * parse still gets one chunk sized from the body, not a run of doublings from 2 KiB. */
static void test_a_parse_after_other_allocations_gets_a_chunk_sized_from_the_body(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    assert_non_null(arena_alloc(&a, 40)); /* two parameters, say */
    assert_int_equal(a.held, 1024);
    enum { N = 3000 };
    char text[N + 2];
    memset(text, 'x', sizeof text);
    text[0] = text[N + 1] = '"'; /* one long JSON string: well within 16 times its length */
    json_t *v = arena_json_loadb(&a, text, sizeof text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    assert_int_equal(a.held, 1024 + 16 * sizeof text);
    json_decref(v);
    arena_clear(&a);
}

static void test_a_body_over_64_kib_parses_into_the_heap(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    size_t n = 70000;
    char *text = malloc(n);
    memset(text, ' ', n);
    memcpy(text, "[1,2,3]", 7);
    json_t *v = arena_json_loadb(&a, text, n, 0, NULL);
    assert_non_null(v);
    assert_int_equal(a.used, 0);
    json_decref(v); /* LeakSanitizer: heap blocks, freed */
    free(text);
    arena_clear(&a);
}

int main(void)
{
    arena_json_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_are_aligned_and_do_not_overlap),
        cmocka_unit_test(test_a_block_larger_than_a_chunk_gets_a_chunk_of_its_own),
        cmocka_unit_test(test_a_parsed_tree_lives_in_the_arena),
        cmocka_unit_test(test_a_rejected_body_leaves_nothing_but_the_arena),
        cmocka_unit_test(test_values_made_after_a_parse_come_from_the_heap),
        cmocka_unit_test(test_the_first_chunk_is_sized_from_the_body),
        cmocka_unit_test(test_a_parse_after_other_allocations_gets_a_chunk_sized_from_the_body),
        cmocka_unit_test(test_a_body_over_64_kib_parses_into_the_heap),
    };
    return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
