/* A player's live stream between events (api/live_player.c): who moved past the player, which
 * notices can change the stream, and the event made from an around answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/live_player.h"

/* 2026-11-28T00:00:00.000Z + `s` seconds (the answer's entries achieved theirs at 1, 2, 3) */
#define T0 1795824000000LL
#define AT(s) (T0 + (s) * 1000LL)

static const char AROUND[] =
    "{\"board\":\"b\",\"window\":\"1970-01-01\",\"total\":5,\"entries\":["
    "{\"rank\":2,\"player_id\":\"q\",\"score\":90,\"achieved_at\":\"2026-11-28T00:00:01.000Z\"},"
    "{\"rank\":3,\"player_id\":\"me\",\"score\":50,\"achieved_at\":\"2026-11-28T00:00:02.000Z\"},"
    "{\"rank\":4,\"player_id\":\"r\",\"score\":40,\"achieved_at\":\"2026-11-28T00:00:03.000Z\"}]}";

/* A W line's change of `player` on a desc board: from `old` (<0: new) to `score`. */
static notice_change_t moved(const char *player, int64_t old, int64_t score)
{
    notice_change_t c = {.gen = 1, .day = 0, .existed = old >= 0, .player = player, .player_len = strlen(player)};
    c.old_sort_key = -old, c.old_ms = AT(1);
    c.new_sort_key = -score, c.new_ms = AT(9);
    return c;
}

static live_player_t placed(void)
{
    live_player_t p = {.sort = SORT_DESC};
    snprintf(p.player, sizeof p.player, "me");
    buf_t out;
    buf_init(&out);
    int64_t rank = 0;
    assert_true(live_player_event(&p, AROUND, strlen(AROUND), NULL, 0, &out, &rank));
    assert_int_equal(rank, 3);
    buf_free(&out);
    return p;
}

static void test_the_event_is_the_answer_with_the_players_extras(void **state)
{
    (void)state;
    live_player_t p = placed();
    buf_t out;
    buf_init(&out);
    int64_t rank = 0;
    live_player_sent(&p, 3);
    notice_change_t c = moved("x", -1, 60); /* a newcomer ahead */
    assert_true(live_player_heard(&p, &c));
    assert_true(live_player_event(&p, AROUND, strlen(AROUND), NULL, 0, &out, &rank));
    char want[sizeof AROUND + 128];
    snprintf(want, sizeof want, "{\"player\":\"me\",\"rank\":3,\"score\":50,\"previous_rank\":3,\"overtaken_by\":[\"x\"],%s",
             AROUND + 1);
    buf_putc(&out, '\0');
    assert_string_equal(out.data, want);
    buf_free(&out);
}

static void test_without_a_standing_the_event_carries_the_pages_window_and_total(void **state)
{
    (void)state;
    live_player_t p = {.sort = SORT_DESC, .sent_rank = 7};
    snprintf(p.player, sizeof p.player, "me");
    static const char page[] = "{\"board\":\"b\",\"window\":\"2026-11-28\",\"total\":9,\"entries\":[]}";
    buf_t out;
    buf_init(&out);
    int64_t rank = 5;
    assert_true(live_player_event(&p, NULL, 0, page, strlen(page), &out, &rank));
    buf_putc(&out, '\0');
    assert_string_equal(out.data, "{\"player\":\"me\",\"rank\":null,\"score\":null,\"previous_rank\":7,\"overtaken_by\":[],"
                                  "\"board\":\"b\",\"window\":\"2026-11-28\",\"total\":9,\"entries\":[]}");
    assert_int_equal(rank, 0);
    assert_false(p.placed);
    /* then only the player's own first standing is news: another's change of the total is not */
    notice_change_t other = moved("x", -1, 60), mine = moved("me", -1, 10);
    assert_false(live_player_heard(&p, &other));
    assert_true(live_player_heard(&p, &mine));
    buf_free(&out);
}

static void test_an_answer_without_the_player_is_refused(void **state)
{
    (void)state;
    live_player_t p = {.sort = SORT_DESC};
    snprintf(p.player, sizeof p.player, "nobody");
    buf_t out;
    buf_init(&out);
    int64_t rank;
    assert_false(live_player_event(&p, AROUND, strlen(AROUND), NULL, 0, &out, &rank));
    assert_false(live_player_event(&p, "[]", 2, NULL, 0, &out, &rank));
    assert_false(live_player_event(&p, "{\"entries\":", 11, NULL, 0, &out, &rank));
    buf_free(&out);
}

static void test_which_changes_touch_the_stream(void **state)
{
    (void)state;
    live_player_t p = placed(); /* shown: q 90 … r 40; the player at 50 */
    notice_change_t far_behind = moved("z", -1, 1), behind_moves = moved("z", 1, 30);
    assert_false(live_player_heard(&p, &far_behind)); /* the total alone */
    assert_false(live_player_heard(&p, &behind_moves));
    notice_change_t far_ahead = moved("top", 100, 120); /* ahead before and after, above those shown */
    assert_false(live_player_heard(&p, &far_ahead));
    notice_change_t among = moved("z", 30, 45); /* lands between the player and r: shown */
    assert_true(live_player_heard(&p, &among));
    notice_change_t past = moved("z", 45, 70); /* moves past the player */
    assert_true(live_player_heard(&p, &past));
    assert_int_equal(p.n_passed, 1);
    assert_memory_equal(p.passed[0].player, "z", 1);
    notice_change_t again = moved("z", 70, 80); /* moves on: still one, at its new place */
    assert_true(live_player_heard(&p, &again)); /* from among those shown */
    assert_int_equal(p.n_passed, 1);
    assert_int_equal(p.passed[0].sort_key, -80);
    /* removed: it passed no one, and the player's rank moved */
    notice_change_t gone = moved("z", 80, 0);
    gone.removed = true;
    assert_true(live_player_heard(&p, &gone));
    assert_int_equal(p.n_passed, 0);
    /* the player's own move: followed, and those it passes are not "overtakers" */
    notice_change_t up = moved("me", 50, 95);
    assert_true(live_player_heard(&p, &up));
    assert_int_equal(p.pos.sort_key, -95);
    notice_change_t behind_now = moved("q", 90, 91); /* q is behind the player now: not a passer */
    assert_true(live_player_heard(&p, &behind_now)); /* q was shown */
    assert_int_equal(p.n_passed, 0);
}

static void test_one_that_passed_and_fell_behind_again_is_not_named(void **state)
{
    (void)state;
    live_player_t p = placed();
    notice_change_t past = moved("z", 10, 70), back = moved("z", 70, 20);
    assert_true(live_player_heard(&p, &past));
    assert_true(live_player_heard(&p, &back));
    buf_t out;
    buf_init(&out);
    int64_t rank;
    assert_true(live_player_event(&p, AROUND, strlen(AROUND), NULL, 0, &out, &rank));
    buf_putc(&out, '\0');
    assert_non_null(strstr(out.data, "\"overtaken_by\":[]"));
    buf_free(&out);
}

static void test_the_named_are_bounded(void **state)
{
    (void)state;
    live_player_t p = placed();
    char ids[LIVE_OVERTAKERS_MAX + 5][8];
    for (int i = 0; i < LIVE_OVERTAKERS_MAX + 5; i++) {
        snprintf(ids[i], sizeof ids[i], "n%d", i);
        notice_change_t c = moved(ids[i], -1, 60 + i);
        assert_true(live_player_heard(&p, &c));
    }
    assert_int_equal(p.n_passed, LIVE_OVERTAKERS_MAX);
    live_player_sent(&p, 110);
    assert_int_equal(p.n_passed, 0);
    assert_int_equal(p.sent_rank, 110);
}

static void test_the_bounds_cover_what_is_shown_and_the_player(void **state)
{
    (void)state;
    live_player_t none = {.sort = SORT_DESC};
    int64_t lo, hi;
    live_player_bounds(&none, &lo, &hi);
    assert_true(lo > hi); /* nothing shown: only the player's own change reaches it */
    live_player_t p = placed(); /* shown: q 90 … r 40 (sort keys -90 … -40) */
    live_player_bounds(&p, &lo, &hi);
    assert_int_equal(lo, -90);
    assert_int_equal(hi, -40);
    notice_change_t up = moved("me", 50, 95); /* the player above all shown */
    assert_true(live_player_heard(&p, &up));
    live_player_bounds(&p, &lo, &hi);
    assert_int_equal(lo, -95);
    assert_int_equal(hi, -40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_event_is_the_answer_with_the_players_extras),
        cmocka_unit_test(test_without_a_standing_the_event_carries_the_pages_window_and_total),
        cmocka_unit_test(test_an_answer_without_the_player_is_refused),
        cmocka_unit_test(test_which_changes_touch_the_stream),
        cmocka_unit_test(test_one_that_passed_and_fell_behind_again_is_not_named),
        cmocka_unit_test(test_the_named_are_bounded),
        cmocka_unit_test(test_the_bounds_cover_what_is_shown_and_the_player),
    };
    return cmocka_run_group_tests_name("live_player", tests, NULL, NULL);
}
