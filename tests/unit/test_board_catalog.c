/* tests/unit/test_board_catalog.c — what the board catalog serves while PostgreSQL is down: full
 * lists in id order, deleted boards never back (not by a list or lookup read before the deletion),
 * re-created ones served, and nothing confirmed too long before PostgreSQL's latest answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/board_catalog.h"
#include "util/alloc.h"
#include "util/clock.h"

#define HOUR_MS 3600000

static board_t mk(const char *id, int64_t gen)
{
    board_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.id, sizeof b.id, "%s", id);
    b.gen = gen;
    b.title = xstrdup(id);
    return b;
}

static bool has(board_catalog_t *c, const char *id, int64_t gen)
{
    board_t b;
    if (!board_catalog_get(c, id, &b))
        return false;
    bool same = b.gen == gen && strcmp(b.title, id) == 0;
    board_clear(&b);
    return same;
}

/* The ids of the page after `after`, comma-separated; "!" when no list is known. */
static void page(board_catalog_t *c, const char *after, size_t limit, char *out, size_t cap)
{
    board_t *bs;
    size_t n;
    bool more;
    if (!board_catalog_list(c, after, limit, &bs, &n, &more)) {
        snprintf(out, cap, "!");
        return;
    }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(out, bs[i].id, cap - strlen(out) - 1);
        strncat(out, i + 1 < n ? "," : "", cap - strlen(out) - 1);
        board_clear(&bs[i]);
    }
    strncat(out, more ? "+" : "", cap - strlen(out) - 1);
    free(bs);
}

static void install(board_catalog_t *c, const char *const *ids, const int64_t *gens, size_t n, int64_t begun_ms)
{
    board_t bs[8];
    for (size_t i = 0; i < n; i++)
        bs[i] = mk(ids[i], gens[i]);
    board_catalog_install(c, bs, n, begun_ms);
    for (size_t i = 0; i < n; i++)
        board_clear(&bs[i]);
}

static void test_lists_in_id_order_once_a_full_list_is_known(void **state)
{
    (void)state;
    board_catalog_t *c = board_catalog_new(HOUR_MS, HOUR_MS);
    char got[256];
    page(c, "", 10, got, sizeof got);
    assert_string_equal(got, "!");
    board_t b = mk("solo", 9);
    board_catalog_put(c, &b); /* a lookup: served, but no list yet */
    board_clear(&b);
    assert_true(has(c, "solo", 9));
    page(c, "", 10, got, sizeof got);
    assert_string_equal(got, "!");
    const char *ids[] = {"b-x", "a", "b_y", "c"};
    const int64_t gens[] = {2, 1, 3, 4};
    install(c, ids, gens, 4, clock_mono_ms());
    page(c, "", 10, got, sizeof got);
    assert_string_equal(got, "a,b-x,b_y,c"); /* byte order, as COLLATE "C"; "solo" predates the list */
    page(c, "", 2, got, sizeof got);
    assert_string_equal(got, "a,b-x+");
    page(c, "b-x", 2, got, sizeof got);
    assert_string_equal(got, "b_y,c");
    assert_false(has(c, "solo", 9));
    board_catalog_free(c);
}

static void test_a_deleted_board_never_comes_back(void **state)
{
    (void)state;
    board_catalog_t *c = board_catalog_new(HOUR_MS, HOUR_MS);
    const char *ids[] = {"a", "b"};
    const int64_t gens[] = {1, 2};
    int64_t before = clock_mono_ms();
    install(c, ids, gens, 2, before);
    board_catalog_forget_gen(c, 2); /* its notice */
    assert_false(has(c, "b", 2));
    /* A list and a lookup read before the deletion, finished after it. */
    install(c, ids, gens, 2, before);
    board_t b = mk("b", 2);
    board_catalog_put(c, &b);
    board_clear(&b);
    char got[64];
    page(c, "", 10, got, sizeof got);
    assert_string_equal(got, "a");
    assert_false(has(c, "b", 2));
    /* Re-created under the same id: a new generation. */
    b = mk("b", 7);
    board_catalog_put(c, &b);
    board_clear(&b);
    assert_true(has(c, "b", 7));
    page(c, "", 10, got, sizeof got);
    assert_string_equal(got, "a,b");
    /* A lookup that found none. */
    board_catalog_forget_id(c, "a", clock_mono_ms());
    assert_false(has(c, "a", 1));
    board_catalog_stats_t st;
    board_catalog_stats(c, &st);
    assert_int_equal(st.boards, 1);
    assert_true(st.complete);
    board_catalog_free(c);
}

/* A deletion whose notice was missed: a newer list lacks the board, an older one finishing
 * later must not bring it back; a lookup that began before a board was made here does not
 * forget it. */
static void test_an_older_list_or_lookup_does_not_undo_a_newer_one(void **state)
{
    (void)state;
    board_catalog_t *c = board_catalog_new(HOUR_MS, HOUR_MS);
    const char *ids[] = {"a", "x"};
    const int64_t gens[] = {1, 9};
    int64_t t1 = clock_mono_ms();
    install(c, ids, gens, 1, t1 + 10); /* the newer list: "a" only */
    install(c, ids, gens, 2, t1);      /* the older one, with "x", ends last */
    assert_false(has(c, "x", 9));
    char got[64];
    page(c, "", 10, got, sizeof got);
    assert_string_equal(got, "a");

    int64_t asked = clock_mono_ms() - 1; /* a lookup of "n" begins, finds none ... */
    board_t b = mk("n", 5);              /* ... while "n" is created here */
    board_catalog_put(c, &b);
    board_clear(&b);
    board_catalog_forget_id(c, "n", asked);
    assert_true(has(c, "n", 5));
    board_catalog_free(c);
}

static void test_a_list_keeps_boards_confirmed_after_it_began(void **state)
{
    (void)state;
    board_catalog_t *c = board_catalog_new(HOUR_MS, HOUR_MS);
    int64_t begun = clock_mono_ms() - 2; /* the list began 2 ms ago */
    board_t b = mk("made-here", 5);        /* created while the list was read */
    board_catalog_put(c, &b);
    board_clear(&b);
    const char *ids[] = {"old"};
    const int64_t gens[] = {1};
    install(c, ids, gens, 1, begun);
    char got[64];
    page(c, "", 10, got, sizeof got);
    assert_string_equal(got, "made-here,old");
    board_catalog_free(c);
}

static void test_nothing_confirmed_too_long_before_the_latest_answer(void **state)
{
    (void)state;
    board_catalog_t *c = board_catalog_new(5, HOUR_MS);
    const char *ids[] = {"listed"};
    const int64_t gens[] = {1};
    install(c, ids, gens, 1, clock_mono_ms() - 20); /* a list read 20 ms ago */
    board_t b = mk("seen", 2);
    board_catalog_put(c, &b); /* PostgreSQL answered again, 20 ms later */
    board_clear(&b);
    assert_true(has(c, "seen", 2));
    assert_false(has(c, "listed", 1));
    char got[64];
    page(c, "", 10, got, sizeof got);
    assert_string_equal(got, "!");
    board_catalog_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_in_id_order_once_a_full_list_is_known),
        cmocka_unit_test(test_a_deleted_board_never_comes_back),
        cmocka_unit_test(test_an_older_list_or_lookup_does_not_undo_a_newer_one),
        cmocka_unit_test(test_a_list_keeps_boards_confirmed_after_it_began),
        cmocka_unit_test(test_nothing_confirmed_too_long_before_the_latest_answer),
    };
    return cmocka_run_group_tests_name("board_catalog", tests, NULL, NULL);
}
