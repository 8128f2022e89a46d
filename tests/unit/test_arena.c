/* tests/unit/test_arena.c — the request arena, and jansson parsing into it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
        memset(p, 0xab, n); /* AddressSanitizer: the whole block is ours */
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

static void test_values_made_outside_a_parse_come_from_the_heap(void **state)
{
    (void)state;
    arena_t a;
    arena_init(&a);
    json_t *v = json_pack("{s:[i,i,s]}", "x", 1, 2, "three");
    assert_non_null(v);
    assert_int_equal(a.used, 0);
    json_decref(v); /* LeakSanitizer: freed, not left in some arena */
}

int main(void)
{
    arena_json_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_are_aligned_and_do_not_overlap),
        cmocka_unit_test(test_a_block_larger_than_a_chunk_gets_a_chunk_of_its_own),
        cmocka_unit_test(test_a_parsed_tree_lives_in_the_arena),
        cmocka_unit_test(test_a_rejected_body_leaves_nothing_but_the_arena),
        cmocka_unit_test(test_values_made_outside_a_parse_come_from_the_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
