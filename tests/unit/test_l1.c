/* tests/unit/test_l1.c — the response cache: hits, exact invalidation, epochs, claims, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/l1.h"

#define GEN 7
#define DAY 0

/* l1_get for a key asked for before (so admitted): *claimed as the old boolean. */
static l1_entry_t *get(l1_t *c, const char *key, size_t n, bool *claimed)
{
    l1_miss_t m = L1_MISS_UNCACHED;
    l1_entry_t *e = l1_get(c, key, n, &m);
    if (!e && m == L1_MISS_UNCACHED)
        e = l1_get(c, key, n, &m);
    *claimed = !e && m == L1_MISS_CLAIMED;
    return e;
}

/* Position of rank r in a window where rank order is sort_key order. */
static order_pos_t pos(int64_t sort_key, const char *player)
{
    order_pos_t p;
    order_pos_set(&p, sort_key, 0, player, strlen(player));
    return p;
}

/* Insert a page showing positions [first_sk, last_sk] with `total` players. */
static void put_page(l1_t *c, const char *key, int64_t first_sk, int64_t last_sk, int64_t total)
{
    bool claimed;
    assert_null(get(c, key, strlen(key), &claimed));
    assert_true(claimed);
    l1_scope_t sc = {.gen = GEN, .day = DAY, .total = total, .has_span = true};
    sc.first = pos(first_sk, "a");
    sc.last = pos(last_sk, "a");
    uint64_t epoch = l1_window_epoch(c, GEN, DAY);
    l1_entry_t *e = l1_insert(c, key, strlen(key), &sc, epoch, "{\"page\":1}", 10, 0);
    assert_non_null(e);
    l1_release(e);
}

static bool present(l1_t *c, const char *key)
{
    bool claimed;
    l1_entry_t *e = get(c, key, strlen(key), &claimed);
    if (e) {
        l1_release(e);
        return true;
    }
    if (claimed)
        l1_abandon(c, key, strlen(key));
    return false;
}

static void test_hit_shares_bytes_and_etag(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 10000);
    put_page(c, "k", 10, 20, 100);
    bool claimed;
    l1_entry_t *e = get(c, "k", 1, &claimed);
    assert_non_null(e);
    assert_false(claimed);
    l1_view_t v;
    l1_view(e, &v);
    assert_int_equal(v.len, 10);
    assert_memory_equal(v.body, "{\"page\":1}", 10);
    assert_true(v.etag[0] == '"');
    size_t zl = 0;
    assert_null(l1_encoded(c, e, ENC_GZIP, &zl)); /* small bodies are not compressed */
    assert_null(l1_encoded(c, e, ENC_BR, &zl));
    l1_release(e);
    l1_free(c);
}

/* Encoded bodies are made on the first request for them, once, and counted in the budget. */
static void test_encoded_bodies_are_made_once_when_asked(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 10000);
    static const char pattern[] = "{\"rank\":1,\"player_id\":\"p\"}";
    char body[4096];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = pattern[i % (sizeof pattern - 1)];
    bool claimed;
    assert_null(get(c, "big", 3, &claimed));
    assert_true(claimed);
    l1_scope_t sc = {.gen = GEN, .day = DAY, .total = 1, .has_span = false};
    l1_entry_t *e = l1_insert(c, "big", 3, &sc, l1_window_epoch(c, GEN, DAY), body, sizeof body, 0);
    l1_stats_t before, after;
    l1_stats(c, &before);
    size_t gz_len = 0, gz_again = 0, br_len = 0;
    const char *gz = l1_encoded(c, e, ENC_GZIP, &gz_len);
    assert_non_null(gz);
    assert_true(gz_len > 0 && gz_len < sizeof body / 4);
    assert_ptr_equal(l1_encoded(c, e, ENC_GZIP, &gz_again), gz); /* kept, not made again */
    assert_int_equal(gz_again, gz_len);
    assert_true((unsigned char)gz[0] == 0x1f && (unsigned char)gz[1] == 0x8b);
    const char *br = l1_encoded(c, e, ENC_BR, &br_len);
    assert_non_null(br);
    assert_true(br != gz && br_len > 0 && br_len < sizeof body / 4);
    assert_null(l1_encoded(c, e, ENC_IDENTITY, &br_len));
    l1_stats(c, &after);
    assert_true(after.bytes >= before.bytes + gz_len + br_len);
    l1_clear(c); /* what was counted in is counted out again */
    l1_stats(c, &after);
    assert_int_equal(after.bytes, 0);
    assert_int_equal(after.entries, 0);
    l1_release(e);
    l1_free(c);
}

static void test_write_outside_on_one_side_keeps_page(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 10000);
    put_page(c, "page", 10, 20, 100);
    order_pos_t o = pos(30, "x"), n = pos(25, "x"); /* both below the page */
    l1_invalidate(c, GEN, DAY, &o, &n, false);
    assert_true(present(c, "page"));
    o = pos(1, "y");
    n = pos(5, "y"); /* both above */
    l1_invalidate(c, GEN, DAY, &o, &n, false);
    assert_true(present(c, "page"));
    l1_free(c);
}

static void test_write_crossing_or_inside_drops_page(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 10000);
    order_pos_t o = pos(30, "x"), n = pos(5, "x"); /* from below to above: every rank on the page shifts */
    put_page(c, "page", 10, 20, 100);
    l1_invalidate(c, GEN, DAY, &o, &n, false);
    assert_false(present(c, "page"));

    put_page(c, "page", 10, 20, 100);
    o = pos(30, "x");
    n = pos(15, "x"); /* lands inside */
    l1_invalidate(c, GEN, DAY, &o, &n, false);
    assert_false(present(c, "page"));

    put_page(c, "page", 10, 20, 100);
    o = pos(12, "x");
    n = pos(40, "x"); /* leaves from inside */
    l1_invalidate(c, GEN, DAY, &o, &n, false);
    assert_false(present(c, "page"));
    l1_free(c);
}

static void test_total_change_drops_every_page_of_the_window_only(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 10000);
    put_page(c, "page", 10, 20, 100);
    /* another window of the same board */
    bool claimed;
    assert_null(get(c, "other", 5, &claimed));
    l1_scope_t sc = {.gen = GEN, .day = DAY + 7, .total = 3, .has_span = false};
    l1_entry_t *e = l1_insert(c, "other", 5, &sc, l1_window_epoch(c, GEN, DAY + 7), "{}", 2, 0);
    l1_release(e);
    order_pos_t n = pos(500, "new");
    l1_invalidate(c, GEN, DAY, NULL, &n, true);
    assert_false(present(c, "page"));
    assert_true(present(c, "other"));
    l1_invalidate_board(c, GEN);
    assert_false(present(c, "other"));
    l1_free(c);
}

static void test_insert_after_a_write_began_is_not_kept(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 10000);
    bool claimed;
    assert_null(get(c, "k", 1, &claimed));
    assert_true(claimed);
    uint64_t epoch = l1_window_epoch(c, GEN, DAY);
    order_pos_t n = pos(1, "w");
    l1_invalidate(c, GEN, DAY, NULL, &n, true); /* a write lands while the reader reads the store */
    l1_scope_t sc = {.gen = GEN, .day = DAY, .total = 1, .has_span = false};
    l1_entry_t *e = l1_insert(c, "k", 1, &sc, epoch, "{}", 2, 0);
    assert_non_null(e); /* answers the request that computed it ... */
    l1_release(e);
    assert_false(present(c, "k")); /* ... but is not kept */
    l1_free(c);
}

static void wake_count(void *arg)
{
    (*(int *)arg)++;
}

static void test_second_miss_parks_until_the_first_settles(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 10000);
    bool claimed;
    assert_null(get(c, "k", 1, &claimed));
    assert_true(claimed);
    bool second;
    assert_null(get(c, "k", 1, &second)); /* never blocks: someone else computes it */
    assert_false(second);
    int woken = 0;
    assert_true(l1_wait(c, "k", 1, wake_count, &woken));
    assert_true(l1_wait(c, "k", 1, wake_count, &woken));
    assert_int_equal(woken, 0);
    l1_stats_t st;
    l1_stats(c, &st);
    assert_int_equal(st.claims, 1);
    assert_int_equal(st.parked, 2);
    l1_scope_t sc = {.gen = GEN, .day = DAY, .total = 1, .has_span = false};
    l1_entry_t *e = l1_insert(c, "k", 1, &sc, l1_window_epoch(c, GEN, DAY), "{}", 2, 0);
    l1_release(e);
    assert_int_equal(woken, 2);
    l1_stats(c, &st);
    assert_int_equal(st.claims, 0);
    assert_int_equal(st.abandoned, 0);
    assert_true(present(c, "k")); /* the parked requests now hit */
    assert_false(l1_wait(c, "k", 1, wake_count, &woken)); /* nothing to wait for */

    assert_null(get(c, "j", 1, &claimed));
    assert_true(l1_wait(c, "j", 1, wake_count, &woken));
    l1_abandon(c, "j", 1);
    assert_int_equal(woken, 3);
    l1_stats(c, &st);
    assert_int_equal(st.claims, 0);   /* the claim given up is counted once, as given up */
    assert_int_equal(st.abandoned, 1);
    assert_int_equal(st.parked, 3);
    l1_abandon(c, "j", 1);            /* nothing claimed: nothing counted */
    l1_stats(c, &st);
    assert_int_equal(st.abandoned, 1);
    l1_free(c);
}

/* The test's clock: it moves only when the test says. */
static int64_t test_now_ms(void *arg)
{
    return *(const int64_t *)arg;
}

static void test_ttl_and_byte_bound(void **state)
{
    (void)state;
    int64_t now = 1000;
    l1_t *c = l1_new(1 << 20, 200); /* refreshed ahead from 160 ms on: present() below is earlier */
    l1_use_clock(c, test_now_ms, &now);
    put_page(c, "k", 1, 2, 3);
    now += 159;
    assert_true(present(c, "k"));
    now += 41; /* 200 ms: expired */
    assert_false(present(c, "k"));
    l1_free(c);

    /* A tiny budget keeps only the most recent entries. */
    c = l1_new(16 * 600, 10000);
    char big[2048];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        bool claimed;
        assert_null(get(c, key, strlen(key), &claimed));
        l1_scope_t sc = {.gen = GEN, .day = DAY, .total = 1, .has_span = false};
        l1_entry_t *e = l1_insert(c, key, strlen(key), &sc, l1_window_epoch(c, GEN, DAY), big, sizeof big, 0);
        assert_non_null(e);
        l1_release(e);
    }
    l1_stats_t st;
    l1_stats(c, &st);
    assert_true(st.bytes <= 16 * 600 + 16 * 4096);
    assert_true(st.evictions > 0);
    assert_true(present(c, "k199"));
    l1_free(c);
}

static void test_an_entry_near_its_expiry_is_refreshed_by_one_read(void **state)
{
    (void)state;
    int64_t now = 1000;
    l1_t *c = l1_new(1 << 20, 1000); /* refreshed ahead in its last 200 ms */
    l1_use_clock(c, test_now_ms, &now);
    put_page(c, "k", 1, 2, 3);
    bool claimed;
    l1_entry_t *e = get(c, "k", 1, &claimed);
    assert_non_null(e); /* young: a hit */
    l1_release(e);
    now += 850;
    assert_null(get(c, "k", 1, &claimed)); /* the first read near the end refreshes it */
    assert_true(claimed);
    e = get(c, "k", 1, &claimed); /* every other read still hits the old entry */
    assert_non_null(e);
    l1_view_t v;
    l1_view(e, &v);
    assert_memory_equal(v.body, "{\"page\":1}", 10);
    l1_release(e);
    l1_scope_t sc = {.gen = GEN, .day = DAY, .total = 3, .has_span = false};
    e = l1_insert(c, "k", 1, &sc, l1_window_epoch(c, GEN, DAY), "{\"page\":2}", 10, 0);
    l1_release(e);
    e = get(c, "k", 1, &claimed); /* the new entry, with a life of its own */
    assert_non_null(e);
    l1_view(e, &v);
    assert_memory_equal(v.body, "{\"page\":2}", 10);
    l1_release(e);
    now += 300; /* past the old entry's expiry, early in the new one's life */
    assert_true(present(c, "k"));
    l1_stats_t st;
    l1_stats(c, &st);
    assert_int_equal(st.refreshes, 1);
    l1_free(c);
}

static void test_one_hit_keys_are_not_admitted(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 10000);
    l1_miss_t m;
    assert_null(l1_get(c, "once", 4, &m));
    assert_int_equal(m, L1_MISS_UNCACHED); /* first sight: compute, do not keep */
    assert_null(l1_get(c, "once", 4, &m));
    assert_int_equal(m, L1_MISS_CLAIMED);  /* asked again: worth keeping */
    assert_null(l1_get(c, "once", 4, &m));
    assert_int_equal(m, L1_MISS_BUSY);     /* and being computed */
    l1_abandon(c, "once", 4);
    l1_free(c);
}

/* A key asked for again only after an entry would have expired is not kept: its entry would
 * never be hit. Within the lifetime it is. */
static void test_keys_asked_for_less_often_than_the_ttl_are_not_admitted(void **state)
{
    (void)state;
    int64_t now = 1000;
    l1_t *c = l1_new(1 << 20, 1000);
    l1_use_clock(c, test_now_ms, &now);
    l1_miss_t m;
    assert_null(l1_get(c, "slow", 4, &m));
    assert_int_equal(m, L1_MISS_UNCACHED);
    now += 1500; /* past the TTL and its tick */
    assert_null(l1_get(c, "slow", 4, &m));
    assert_int_equal(m, L1_MISS_UNCACHED);
    now += 900; /* within it, counted from the last miss */
    assert_null(l1_get(c, "slow", 4, &m));
    assert_int_equal(m, L1_MISS_CLAIMED);
    l1_abandon(c, "slow", 4);
    l1_free(c);
}

static void test_many_keys_all_found(void **state)
{
    (void)state;
    l1_t *c = l1_new((size_t)1 << 30, 100000);
    char key[32];
    enum { N = 40000 }; /* enough that every shard's chain table grows several times */
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        put_page(c, key, i, i, N);
    }
    l1_stats_t st;
    l1_stats(c, &st);
    assert_int_equal(st.entries, N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_true(present(c, key));
    }
    l1_free(c);
}

/* Removing entries leaves every other entry of their chains found (each chain's tag is made
 * again from the entries left), and the removed ones are gone. */
static void test_removals_leave_the_rest_of_each_chain_found(void **state)
{
    (void)state;
    l1_t *c = l1_new((size_t)1 << 30, 100000);
    char key[32];
    enum { N = 40000 };
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        bool claimed;
        assert_null(get(c, key, strlen(key), &claimed));
        assert_true(claimed);
        int64_t day = DAY + i % 2; /* even keys in one window, odd keys in the next */
        l1_scope_t sc = {.gen = GEN, .day = day, .total = N, .has_span = false};
        l1_entry_t *e = l1_insert(c, key, strlen(key), &sc, l1_window_epoch(c, GEN, day), "{}", 2, 0);
        assert_non_null(e);
        l1_release(e);
    }
    order_pos_t n = pos(500, "new");
    l1_invalidate(c, GEN, DAY, NULL, &n, true); /* the even keys' window: its total changed */
    l1_stats_t st;
    l1_stats(c, &st);
    assert_int_equal(st.entries, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        if (present(c, key) != (i % 2 == 1))
            fail_msg("key %s: %s", key, i % 2 ? "lost" : "still there");
    }
    l1_free(c);
}

static void test_random_one_hit_keys_are_rarely_admitted(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 10000);
    char key[32];
    int admitted = 0;
    for (int i = 0; i < 200000; i++) {
        l1_miss_t m;
        snprintf(key, sizeof key, "player-%d", i);
        assert_null(l1_get(c, key, strlen(key), &m));
        if (m == L1_MISS_CLAIMED) {
            admitted++;
            l1_abandon(c, key, strlen(key));
        }
    }
    assert_true(admitted < 200000 / 1000); /* false positives of 16-bit fingerprints */
    l1_free(c);
}

/* What the cache keeps for invalidation is bounded by what it holds: entries evicted for room
 * leave their windows' lists, windows with nothing cached go, and a write to a window nothing
 * cached (every NOTIFY from another instance) makes no record. */
static void test_window_bookkeeping_is_bounded_by_the_entries(void **state)
{
    (void)state;
    l1_t *c = l1_new(16 * 4096, 100000); /* a few dozen 1 KiB entries at most */
    char body[1024];
    memset(body, 'x', sizeof body);
    for (int i = 0; i < 20000; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "k%d", i);
        bool claimed;
        assert_null(get(c, key, (size_t)n, &claimed));
        assert_true(claimed);
        l1_scope_t sc = {.gen = GEN, .day = i, .total = 1, .has_span = false};
        uint64_t epoch = l1_window_epoch(c, GEN, i);
        l1_release(l1_insert(c, key, (size_t)n, &sc, epoch, body, sizeof body, 0));
    }
    for (int i = 0; i < 100000; i++)
        l1_invalidate(c, GEN + 1, i, NULL, NULL, true); /* windows nothing cached */
    l1_stats_t st;
    l1_stats(c, &st);
    assert_true(st.evictions > 19000);
    assert_true(st.entries <= 64);
    /* Each sweep step visits one window chain in 1,024: after this many steps every dead
     * reference and empty window is gone but for those the last steps have not reached. */
    assert_true(st.windows <= st.entries + 64);
    assert_true(st.listed <= st.entries + 64);
    l1_free(c);
}

/*
 * Issue 28: the budget holds for what the cache really keeps. Entries of many windows, 8 KiB
 * bodies and their gzip variants, under a 1 MiB budget: after every insert, the bytes of entries
 * not yet freed stay within the budget plus one entry per shard (the one just inserted or grown
 * is never its own victim), and the windows' bookkeeping is counted inside the budget. Before,
 * an evicted entry stayed referenced from its window's list until a sweep came by: 1 MiB held
 * 26 MiB in a driver test.
 */
static void test_the_byte_budget_holds_for_what_is_really_held(void **state)
{
    (void)state;
    const size_t budget = 1 << 20, body_len = 8192;
    l1_t *c = l1_new(budget, 100000);
    char *body = malloc(body_len);
    for (size_t i = 0; i < body_len; i++)
        body[i] = (char)('a' + (i * 7919 + i / 13) % 26); /* compresses, but not to nothing */
    size_t most = 0, largest = 0;
    for (int i = 0; i < 20000; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "k%d", i);
        bool claimed;
        assert_null(get(c, key, (size_t)n, &claimed));
        assert_true(claimed);
        l1_scope_t sc = {.gen = GEN, .day = i % 5000, .total = 1, .has_span = false};
        l1_entry_t *e = l1_insert(c, key, (size_t)n, &sc, l1_window_epoch(c, GEN, i % 5000), body, body_len, 0);
        size_t len;
        if (i % 3 == 0)
            assert_non_null(l1_encoded(c, e, ENC_GZIP, &len));
        l1_release(e);
        l1_stats_t st;
        l1_stats(c, &st);
        if (st.held_bytes > most)
            most = st.held_bytes;
        size_t one = sizeof(void *) * 32 + (size_t)n + body_len * 2; /* an entry, its gzip variant, generously */
        if (one > largest)
            largest = one;
        assert_true(st.held_bytes + st.bookkeeping_bytes <= budget + 16 * largest);
    }
    l1_stats_t st;
    l1_stats(c, &st);
    assert_true(st.evictions > 19000);
    assert_true(most <= budget + 16 * largest);
    free(body);
    l1_free(c);
}

static void test_an_invalidated_window_that_was_dropped_still_refuses_a_stale_insert(void **state)
{
    (void)state;
    l1_t *c = l1_new(1 << 20, 100000);
    uint64_t epoch = l1_window_epoch(c, GEN, DAY); /* a read begins */
    for (int i = 0; i < 5000; i++)              /* the window's record is swept away meanwhile */
        l1_invalidate(c, GEN, 1000 + i, NULL, NULL, true), (void)l1_window_epoch(c, GEN + 1, i);
    l1_invalidate(c, GEN, DAY, NULL, NULL, true); /* a write to it */
    bool claimed;
    assert_null(get(c, "p", 1, &claimed));
    assert_true(claimed);
    l1_scope_t sc = {.gen = GEN, .day = DAY, .total = 1, .has_span = false};
    l1_release(l1_insert(c, "p", 1, &sc, epoch, "{}", 2, 0)); /* computed before the write */
    assert_false(present(c, "p"));
    l1_free(c);
}

static void test_disabled(void **state)
{
    (void)state;
    assert_null(l1_new(0, 1000));
    assert_null(l1_new(1 << 20, 0));
    l1_invalidate(NULL, 1, 2, NULL, NULL, true); /* a no-op, not a crash */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_shares_bytes_and_etag),
        cmocka_unit_test(test_encoded_bodies_are_made_once_when_asked),
        cmocka_unit_test(test_write_outside_on_one_side_keeps_page),
        cmocka_unit_test(test_write_crossing_or_inside_drops_page),
        cmocka_unit_test(test_total_change_drops_every_page_of_the_window_only),
        cmocka_unit_test(test_insert_after_a_write_began_is_not_kept),
        cmocka_unit_test(test_second_miss_parks_until_the_first_settles),
        cmocka_unit_test(test_ttl_and_byte_bound),
        cmocka_unit_test(test_an_entry_near_its_expiry_is_refreshed_by_one_read),
        cmocka_unit_test(test_one_hit_keys_are_not_admitted),
        cmocka_unit_test(test_keys_asked_for_less_often_than_the_ttl_are_not_admitted),
        cmocka_unit_test(test_many_keys_all_found),
        cmocka_unit_test(test_removals_leave_the_rest_of_each_chain_found),
        cmocka_unit_test(test_random_one_hit_keys_are_rarely_admitted),
        cmocka_unit_test(test_window_bookkeeping_is_bounded_by_the_entries),
        cmocka_unit_test(test_the_byte_budget_holds_for_what_is_really_held),
        cmocka_unit_test(test_an_invalidated_window_that_was_dropped_still_refuses_a_stale_insert),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests_name("l1", tests, NULL, NULL);
}
