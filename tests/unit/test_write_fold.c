/* The writer's pure step (worker/write_fold.c): a batch's submissions grouped per standing in
 * (board, window, player, arrival) order, and folded in arrival order: what each one changed,
 * what its answer reports, and the standing the transaction writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/score.h"
#include "worker/write_fold.h"

static write_item_t item(const board_t *b, int64_t day, const char *player, int64_t score, int64_t at_ms,
                         const char *md)
{
    return (write_item_t){.board = b, .day = day, .player = player, .score = score, .received_ms = at_ms,
                          .metadata = md};
}

/* Group every item of items[0..n) (as the writer does for the pending ones). */
static size_t group_all(write_item_t *items, size_t n, size_t *order, int *group_of, write_group_t *groups)
{
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        group_of[i] = -1;
    }
    return write_group_items(items, order, n, group_of, groups);
}

static void test_groups_follow_board_window_player_then_arrival(void **state)
{
    (void)state;
    board_t b1 = {.gen = 7, .op = OP_BEST}, b2 = {.gen = 3, .op = OP_BEST};
    write_item_t it[6] = {
        item(&b1, 20, "bob", 1, 1, NULL),   /* 0 */
        item(&b2, 20, "zed", 1, 2, NULL),   /* 1: lower generation: first group */
        item(&b1, 19, "bob", 1, 3, NULL),   /* 2: earlier window of b1 */
        item(&b1, 20, "alice", 1, 4, NULL), /* 3 */
        item(&b1, 20, "bob", 1, 5, NULL),   /* 4: bob again, same window as 0 */
        item(&b2, 20, "zed", 1, 6, NULL),   /* 5 */
    };
    size_t order[6];
    int group_of[6];
    write_group_t g[6];
    size_t n = group_all(it, 6, order, group_of, g);
    assert_int_equal(n, 4);
    /* (3, 20, zed), (7, 19, bob), (7, 20, alice), (7, 20, bob) */
    assert_int_equal(g[0].gen, 3);
    assert_string_equal(g[0].player, "zed");
    assert_int_equal(g[1].day, 19);
    assert_string_equal(g[2].player, "alice");
    assert_string_equal(g[3].player, "bob");
    assert_int_equal(g[3].day, 20);
    int want[6] = {3, 0, 1, 2, 3, 0};
    for (int i = 0; i < 6; i++)
        assert_int_equal(group_of[i], want[i]);
    /* Within a group, arrival order: 0 before 4, 1 before 5. */
    size_t want_order[6] = {1, 5, 2, 3, 0, 4};
    for (int i = 0; i < 6; i++)
        assert_int_equal(order[i], want_order[i]);
    for (int i = 0; i < 4; i++) /* zeroed but for the key */
        assert_false(g[i].changed || g[i].cur.exists || g[i].existed);
}

static void test_grouping_many_items_is_by_key(void **state)
{
    (void)state;
    enum { N = 4000, PLAYERS = 37 };
    static write_item_t it[N];
    static size_t order[N];
    static int group_of[N];
    static write_group_t g[N];
    static char names[PLAYERS][8];
    board_t b = {.gen = 1, .op = OP_SUM};
    for (int p = 0; p < PLAYERS; p++)
        snprintf(names[p], sizeof names[p], "p%02d", p);
    for (int i = 0; i < N; i++)
        it[i] = item(&b, 1, names[(i * 7919) % PLAYERS], 1, i, NULL);
    size_t n = group_all(it, N, order, group_of, g);
    assert_int_equal(n, PLAYERS);
    for (int i = 0; i < N; i++)
        assert_string_equal(g[group_of[i]].player, it[i].player);
    for (size_t k = 1; k < n; k++)
        assert_true(strcmp(g[k - 1].player, g[k].player) < 0);
}

static void test_best_folds_in_arrival_order(void **state)
{
    (void)state;
    board_t b = {.gen = 1, .op = OP_BEST, .sort = SORT_DESC};
    write_item_t it[4] = {
        item(&b, 1, "p", 10, 100, "{\"a\":1}"),
        item(&b, 1, "p", 5, 200, "{\"a\":2}"),  /* worse: nothing changes */
        item(&b, 1, "p", 20, 300, "{\"a\":3}"), /* better */
        item(&b, 1, "p", 20, 400, "{\"a\":4}"), /* equal: nothing changes */
    };
    size_t order[4];
    int group_of[4];
    write_group_t g[4];
    write_fold_t out[4] = {{0}};
    assert_int_equal(group_all(it, 4, order, group_of, g), 1);
    write_fold(it, 4, group_of, g, out);
    bool updated[4] = {true, false, true, false};
    int64_t after[4] = {10, 10, 20, 20}, achieved[4] = {100, 100, 300, 300};
    for (int i = 0; i < 4; i++) {
        assert_true(out[i].applied);
        assert_int_equal(out[i].updated, updated[i]);
        assert_int_equal(out[i].after, after[i]);
        assert_int_equal(out[i].achieved_ms, achieved[i]);
        assert_int_equal(out[i].had_prev, i > 0);
        if (i > 0)
            assert_int_equal(out[i].prev, after[i - 1]);
    }
    assert_true(g[0].changed);
    assert_int_equal(g[0].cur.value, 20);
    assert_int_equal(g[0].achieved_ms, 300);
    assert_string_equal(g[0].metadata, "{\"a\":3}"); /* from the submission that set the standing */
}

static void test_an_existing_standing_is_the_start(void **state)
{
    (void)state;
    board_t b = {.gen = 1, .op = OP_BEST, .sort = SORT_ASC}; /* lower is better */
    write_item_t it[2] = {item(&b, 1, "p", 50, 100, NULL), item(&b, 1, "p", 30, 200, NULL)};
    size_t order[2];
    int group_of[2];
    write_group_t g[2];
    write_fold_t out[2] = {{0}};
    group_all(it, 2, order, group_of, g);
    g[0].cur = (score_standing_t){.exists = true, .value = 40}; /* read from PostgreSQL */
    g[0].achieved_ms = 7;
    write_fold(it, 2, group_of, g, out);
    assert_true(out[0].had_prev);
    assert_int_equal(out[0].prev, 40);
    assert_false(out[0].updated);
    assert_int_equal(out[0].achieved_ms, 7);
    assert_true(out[1].updated);
    assert_int_equal(out[1].after, 30);
    assert_int_equal(g[0].cur.value, 30);
}

static void test_latest_and_sum(void **state)
{
    (void)state;
    board_t latest = {.gen = 1, .op = OP_LATEST}, sum = {.gen = 2, .op = OP_SUM};
    write_item_t it[4] = {
        item(&latest, 1, "p", 10, 1, NULL), item(&latest, 1, "p", 3, 2, NULL),
        item(&sum, 1, "p", 10, 3, NULL), item(&sum, 1, "p", -3, 4, NULL),
    };
    size_t order[4];
    int group_of[4];
    write_group_t g[4];
    write_fold_t out[4] = {{0}};
    assert_int_equal(group_all(it, 4, order, group_of, g), 2);
    write_fold(it, 4, group_of, g, out);
    assert_int_equal(out[1].after, 3);
    assert_true(out[1].updated);
    assert_int_equal(out[3].after, 7);
    assert_int_equal(out[3].prev, 10);
    assert_int_equal(g[0].cur.value, 3);
    assert_int_equal(g[1].cur.value, 7);
}

static void test_a_sum_out_of_range_fails_alone(void **state)
{
    (void)state;
    board_t b = {.gen = 1, .op = OP_SUM};
    const int64_t max = 9007199254740991; /* 2^53 - 1 */
    write_item_t it[3] = {item(&b, 1, "p", max, 1, NULL), item(&b, 1, "p", 1, 2, NULL), item(&b, 1, "p", -1, 3, NULL)};
    size_t order[3];
    int group_of[3];
    write_group_t g[3];
    write_fold_t out[3] = {{0}};
    group_all(it, 3, order, group_of, g);
    write_fold(it, 3, group_of, g, out);
    assert_true(out[0].applied);
    assert_false(out[1].applied);
    assert_int_equal(it[1].status, 400);
    assert_string_equal(it[1].err_field, "score");
    assert_true(out[2].applied); /* the next one folds onto the standing the failure left */
    assert_int_equal(out[2].prev, max);
    assert_int_equal(out[2].after, max - 1);
    assert_int_equal(it[2].status, 0);
}

static void test_items_without_a_group_are_left_alone(void **state)
{
    (void)state;
    board_t b = {.gen = 1, .op = OP_BEST};
    write_item_t it[2] = {item(&b, 1, "p", 1, 1, NULL), item(&b, 1, "q", 2, 2, NULL)};
    size_t order[1] = {1};
    int group_of[2] = {-1, -1}; /* item 0: a replay or a failed validation */
    write_group_t g[2];
    write_fold_t out[2] = {{0}};
    assert_int_equal(write_group_items(it, order, 1, group_of, g), 1);
    write_fold(it, 2, group_of, g, out);
    assert_false(out[0].applied);
    assert_true(out[1].applied);
    assert_int_equal(group_of[0], -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_follow_board_window_player_then_arrival),
        cmocka_unit_test(test_grouping_many_items_is_by_key),
        cmocka_unit_test(test_best_folds_in_arrival_order),
        cmocka_unit_test(test_an_existing_standing_is_the_start),
        cmocka_unit_test(test_latest_and_sum),
        cmocka_unit_test(test_a_sum_out_of_range_fails_alone),
        cmocka_unit_test(test_items_without_a_group_are_left_alone),
    };
    return cmocka_run_group_tests_name("write_fold", tests, NULL, NULL);
}
