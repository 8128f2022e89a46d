/* The rank tier's order-statistic index (cache/rank_index.c) against a sorted array: random
 * sets, moves and removals (many ties, ids that are prefixes of each other), and after each
 * round every rank, every range, a lower bound per position and the distinct sort keys before
 * each sort key, with the invariants checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/rank_index.h"

typedef struct {
    int64_t sk, ms;
    char id[16];
    char md[8];
    bool has_md;
    bool present;
} model_t;

static int cmp_model(const void *a, const void *b)
{
    const model_t *x = *(model_t *const *)a, *y = *(model_t *const *)b;
    if (x->sk != y->sk)
        return x->sk < y->sk ? -1 : 1;
    if (x->ms != y->ms)
        return x->ms < y->ms ? -1 : 1;
    size_t lx = strlen(x->id), ly = strlen(y->id), n = lx < ly ? lx : ly;
    int c = memcmp(x->id, y->id, n);
    return c ? c : (lx > ly) - (lx < ly);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void check_all(rank_index_t *ix, model_t *m, size_t n)
{
    model_t **sorted = malloc(n * sizeof *sorted);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i].present)
            sorted[k++] = &m[i];
    qsort(sorted, k, sizeof *sorted, cmp_model);
    assert_true(ri_check(ix));
    assert_int_equal(ri_count(ix), (int64_t)k);
    for (size_t r = 0; r < k; r++) {
        ri_entry_t e;
        assert_int_equal(ri_rank(ix, sorted[r]->id, strlen(sorted[r]->id), &e), (int64_t)r);
        assert_int_equal(e.sort_key, sorted[r]->sk);
        assert_int_equal(e.achieved_ms, sorted[r]->ms);
        assert_int_equal(e.metadata != NULL, sorted[r]->has_md);
        if (e.metadata)
            assert_memory_equal(e.metadata, sorted[r]->md, e.metadata_len);
        bool exact;
        assert_int_equal(ri_lower_bound(ix, sorted[r]->sk, sorted[r]->ms, sorted[r]->id, strlen(sorted[r]->id), &exact),
                         (int64_t)r);
        assert_true(exact);
        /* just after the position: the id with a byte appended sorts after it, before the next */
        char next[17];
        snprintf(next, sizeof next, "%s%c", sorted[r]->id, 1);
        int64_t lb = ri_lower_bound(ix, sorted[r]->sk, sorted[r]->ms, next, strlen(next), &exact);
        assert_int_equal(lb, (int64_t)r + 1);
    }
    for (size_t i = 0; i < n; i++)
        if (!m[i].present)
            assert_int_equal(ri_rank(ix, m[i].id, strlen(m[i].id), NULL), -1);
    ri_entry_t *out = malloc((k + 1) * sizeof *out);
    for (size_t from = 0; from < k; from += 1 + rnd() % 97) {
        size_t want = 1 + rnd() % 300;
        size_t got = ri_range(ix, (int64_t)from, want, out);
        assert_int_equal(got, from + want <= k ? want : k - from);
        for (size_t j = 0; j < got; j++) {
            assert_int_equal(out[j].player_len, strlen(sorted[from + j]->id));
            assert_memory_equal(out[j].player, sorted[from + j]->id, out[j].player_len);
        }
    }
    assert_int_equal(ri_range(ix, (int64_t)k, 5, out), 0);
    /* Distinct sort keys before each held sort key, and before the ones just past it and past
     * either end (dense ranks). */
    int64_t distinct = 0;
    for (size_t r = 0; r < k; r++) {
        if (r > 0 && sorted[r]->sk == sorted[r - 1]->sk)
            continue;
        assert_int_equal(ri_distinct_before(ix, sorted[r]->sk), distinct);
        assert_int_equal(ri_distinct_before(ix, sorted[r]->sk + 1), distinct + 1);
        if (r == 0 || sorted[r - 1]->sk < sorted[r]->sk - 1)
            assert_int_equal(ri_distinct_before(ix, sorted[r]->sk - 1), distinct);
        distinct++;
    }
    assert_int_equal(ri_distinct_before(ix, INT64_MAX), distinct);
    assert_int_equal(ri_distinct_before(ix, INT64_MIN), 0);
    free(out);
    free(sorted);
}

static void set(rank_index_t *ix, model_t *p, bool append)
{
    if (append)
        ri_append(ix, p->id, strlen(p->id), p->sk, p->ms, p->has_md ? p->md : NULL, p->has_md ? strlen(p->md) : 0);
    else
        ri_set(ix, p->id, strlen(p->id), p->sk, p->ms, p->has_md ? p->md : NULL, p->has_md ? strlen(p->md) : 0);
    p->present = true;
}

static void randomize(model_t *p, int range)
{
    p->sk = (int64_t)(rnd() % (uint64_t)range) - range / 2;
    p->ms = (int64_t)(rnd() % 3);
    p->has_md = rnd() % 4 == 0;
    snprintf(p->md, sizeof p->md, "{\"l\":%d}", (int)(rnd() % 9));
}

/* Sets, moves and removals at random, checked after every round. */
static void test_random_changes(void **state)
{
    (void)state;
    enum { N = 3000 };
    model_t *m = calloc(N, sizeof *m);
    for (size_t i = 0; i < N; i++)
        snprintf(m[i].id, sizeof m[i].id, "p%zu", i); /* p1, p10, p100: prefixes of each other */
    rank_index_t *ix = ri_new();
    for (int round = 0; round < 12; round++) {
        for (int op = 0; op < 4000; op++) {
            model_t *p = &m[rnd() % N];
            if (rnd() % 5 == 0) {
                assert_int_equal(ri_remove(ix, p->id, strlen(p->id)), p->present);
                p->present = false;
            } else {
                randomize(p, round % 2 ? 50 : 1000000);
                set(ix, p, false);
            }
        }
        check_all(ix, m, N);
        if (round == 8) /* nearly empty, then grown again: blocks merge and split */
            for (size_t i = 0; i < N; i++)
                if (m[i].present && rnd() % 10) {
                    assert_true(ri_remove(ix, m[i].id, strlen(m[i].id)));
                    m[i].present = false;
                }
    }
    ri_free(ix);
    free(m);
}

/* A load in rank order (ri_append), then writes on top; an append out of order is a set. */
static void test_load_in_order(void **state)
{
    (void)state;
    enum { N = 20000 };
    model_t *m = calloc(N, sizeof *m);
    model_t **order = malloc(N * sizeof *order);
    for (size_t i = 0; i < N; i++) {
        snprintf(m[i].id, sizeof m[i].id, "q%zu", i);
        randomize(&m[i], 5000);
        order[i] = &m[i];
    }
    qsort(order, N, sizeof *order, cmp_model);
    rank_index_t *ix = ri_new();
    for (size_t i = 0; i < N; i++)
        set(ix, order[i], true);
    check_all(ix, m, N);
    set(ix, order[0], true);             /* again: out of order */
    randomize(&m[5], 5000), set(ix, &m[5], true);
    for (int op = 0; op < 5000; op++) {
        model_t *p = &m[rnd() % N];
        randomize(p, 5000);
        set(ix, p, false);
    }
    check_all(ix, m, N);
    size_t bytes = ri_bytes(ix);
    assert_true(bytes > (size_t)N * 40 && bytes < (size_t)N * 400);
    ri_free(ix);
    free(order);
    free(m);
}

static void test_empty(void **state)
{
    (void)state;
    rank_index_t *ix = ri_new();
    bool exact = true;
    ri_entry_t e;
    assert_int_equal(ri_count(ix), 0);
    assert_int_equal(ri_rank(ix, "a", 1, &e), -1);
    assert_int_equal(ri_lower_bound(ix, 0, 0, "a", 1, &exact), 0);
    assert_false(exact);
    assert_int_equal(ri_range(ix, 0, 10, &e), 0);
    assert_int_equal(ri_distinct_before(ix, 0), 0);
    assert_false(ri_remove(ix, "a", 1));
    ri_set(ix, "a", 1, 5, 1, NULL, 0);
    assert_true(ri_remove(ix, "a", 1));
    assert_int_equal(ri_count(ix), 0);
    assert_true(ri_check(ix));
    ri_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_changes),
        cmocka_unit_test(test_load_in_order),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests_name("rank_index", tests, NULL, NULL);
}
