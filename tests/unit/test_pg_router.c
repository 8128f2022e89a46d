/*
 * test_pg_router.c — the router's pure parts: LSN text, the LSN table, the three policies'
 * picks, the circuit breaker and the health state machine. The file includes pg_router.c to
 * reach its static functions; no server is contacted (pools are made, never used).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/store/pg_router.c"

static rankd_config_t test_cfg(replica_policy_t policy, char **replicas, size_t n, char **weights, size_t nw)
{
    rankd_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.pg_primary = "host=127.0.0.1 port=1 dbname=none";
    cfg.pg_replicas = replicas;
    cfg.n_pg_replicas = n;
    cfg.pg_replica_weights = weights;
    cfg.n_pg_replica_weights = nw;
    cfg.pg_replica_policy = policy;
    cfg.pg_pool_size = 2;
    cfg.pg_pool_wait_ms = 10;
    cfg.pg_statement_timeout_ms = 1000;
    cfg.pg_connect_timeout_s = 1;
    cfg.pg_max_lag_ms = 5000;
    cfg.pg_health_interval_ms = 1000;
    cfg.pg_unhealthy_after = 2;
    cfg.pg_healthy_after = 2;
    cfg.pg_breaker_failures = 3;
    cfg.pg_breaker_cooldown_ms = 60000;
    return cfg;
}

static char *two[] = {"host=127.0.0.1 port=2 dbname=none", "host=127.0.0.1 port=3 dbname=none"};

static void lsn_text(void **state)
{
    (void)state;
    assert_int_equal(pg_lsn_parse("0/0"), 0);
    assert_int_equal(pg_lsn_parse("16/B374D848"), 0x16B374D848ULL);
    assert_int_equal(pg_lsn_parse("FFFFFFFF/FFFFFFFF"), UINT64_MAX);
    assert_int_equal(pg_lsn_parse("0/1"), 1);
    assert_int_equal(pg_lsn_parse(NULL), 0);
    assert_int_equal(pg_lsn_parse(""), 0);
    assert_int_equal(pg_lsn_parse("1/"), 0);
    assert_int_equal(pg_lsn_parse("/1"), 0);
    assert_int_equal(pg_lsn_parse("1/2x"), 0);
    assert_int_equal(pg_lsn_parse("100000000/0"), 0);
    assert_true(pg_lsn_parse("1/0") > pg_lsn_parse("0/FFFFFFFF"));
}

static void lsn_table(void **state)
{
    (void)state;
    rankd_config_t cfg = test_cfg(POLICY_ROUND_ROBIN, two, 2, NULL, 0);
    pg_router_t *r = pg_router_new(&cfg);
    assert_int_equal(lsn_needed(r, 7), 0);
    pg_router_saw_lsn(r, 7, 100);
    pg_router_saw_lsn(r, 7, 50); /* never goes back */
    assert_int_equal(lsn_needed(r, 7), 100);
    assert_int_equal(lsn_needed(r, 8), 0);
    for (int64_t k = 1; k <= 5000; k++) /* the table grows */
        pg_router_saw_lsn(r, k + 100, (uint64_t)k);
    for (int64_t k = 1; k <= 5000; k++)
        assert_int_equal(lsn_needed(r, k + 100), (uint64_t)k);
    assert_int_equal(lsn_needed(r, 7), 100);
    assert_int_equal(lsn_needed(r, PG_KEY_ALL), 5000);
    /* A floor for every key: start-up's writes, a reconnected listener. */
    pg_router_saw_lsn(r, PG_KEY_ALL, 6000);
    assert_int_equal(lsn_needed(r, 7), 6000);
    assert_int_equal(lsn_needed(r, 999999), 6000);
    assert_int_equal(lsn_needed(r, PG_KEY_CATALOG), 6000);
    pg_router_saw_lsn(r, 7, 7000);
    assert_int_equal(lsn_needed(r, 7), 7000);
    assert_int_equal(lsn_needed(r, PG_KEY_ALL), 7000);
    pg_router_saw_lsn(r, 7, 0); /* unknown: ignored */
    assert_int_equal(lsn_needed(r, 7), 7000);
    pg_router_free(r);

    /* Without replicas nothing is kept. */
    cfg = test_cfg(POLICY_ROUND_ROBIN, NULL, 0, NULL, 0);
    r = pg_router_new(&cfg);
    pg_router_saw_lsn(r, 7, 100);
    assert_int_equal(lsn_needed(r, 7), 0);
    pg_router_free(r);
}

static void picks(void **state)
{
    (void)state;
    char *w31[] = {"3", "1"};
    rankd_config_t cfg = test_cfg(POLICY_WEIGHTED, two, 2, w31, 2);
    pg_router_t *r = pg_router_new(&cfg);
    pg_node_t *cand[] = {r->nodes[1], r->nodes[2]};
    assert_int_equal(cand[0]->weight, 3);
    assert_int_equal(cand[1]->weight, 1);
    char seq[9] = {0};
    int a = 0;
    for (int i = 0; i < 800; i++) {
        pg_node_t *n = pick(r, cand, 2);
        if (i < 8)
            seq[i] = n == cand[0] ? 'a' : 'b';
        a += n == cand[0];
    }
    assert_string_equal(seq, "aabaaaba"); /* smooth: never three in a row for the 1 */
    assert_int_equal(a, 600);
    pg_router_free(r);

    cfg = test_cfg(POLICY_ROUND_ROBIN, two, 2, NULL, 0);
    r = pg_router_new(&cfg);
    pg_node_t *c2[] = {r->nodes[1], r->nodes[2]};
    pg_node_t *first = pick(r, c2, 2);
    for (int i = 0; i < 10; i++) {
        pg_node_t *next = pick(r, c2, 2);
        assert_ptr_not_equal(next, first);
        first = next;
    }
    assert_ptr_equal(pick(r, c2, 1), c2[0]);
    pg_router_free(r);

    cfg = test_cfg(POLICY_LEAST_CONNECTIONS, two, 2, NULL, 0);
    r = pg_router_new(&cfg);
    pg_node_t *c3[] = {r->nodes[1], r->nodes[2]};
    c3[0]->in_flight = 5;
    c3[1]->in_flight = 2;
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(pick(r, c3, 2), c3[1]);
    c3[1]->in_flight = 9;
    assert_ptr_equal(pick(r, c3, 2), c3[0]);
    c3[0]->in_flight = c3[1]->in_flight = 0; /* ties take turns */
    assert_ptr_not_equal(pick(r, c3, 2), pick(r, c3, 2));
    pg_router_free(r);
}

static void count_calls(void *arg)
{
    (*(int *)arg)++;
}

static void breaker(void **state)
{
    (void)state;
    rankd_config_t cfg = test_cfg(POLICY_ROUND_ROBIN, NULL, 0, NULL, 0);
    pg_router_t *r = pg_router_new(&cfg);
    pg_node_t *n = r->nodes[0];
    int64_t now = clock_mono_ms();
    assert_true(breaker_allows(n, now));
    breaker_result(n, false);
    breaker_result(n, false);
    assert_int_equal(n->breaker, BREAKER_CLOSED);
    breaker_result(n, true); /* a success resets the count */
    breaker_result(n, false);
    breaker_result(n, false);
    assert_int_equal(n->breaker, BREAKER_CLOSED);
    breaker_result(n, false);
    assert_int_equal(n->breaker, BREAKER_OPEN);
    assert_false(breaker_allows(n, now));
    assert_false(pg_router_primary_usable(r));
    /* The cool-down over: one trial call, and only one. */
    assert_true(breaker_allows(n, n->open_until_ms));
    assert_int_equal(n->breaker, BREAKER_HALF_OPEN);
    assert_false(breaker_allows(n, n->open_until_ms));
    breaker_result(n, false); /* the trial failed: open again */
    assert_int_equal(n->breaker, BREAKER_OPEN);
    assert_true(breaker_allows(n, n->open_until_ms));
    breaker_result(n, true);
    assert_int_equal(n->breaker, BREAKER_CLOSED);
    assert_true(breaker_allows(n, now));
    assert_true(pg_router_primary_usable(r));
    pg_router_free(r);
}

static void health_states(void **state)
{
    (void)state;
    rankd_config_t cfg = test_cfg(POLICY_ROUND_ROBIN, two, 2, NULL, 0);
    pg_router_t *r = pg_router_new(&cfg);
    pg_node_t *p = r->nodes[0], *rep = r->nodes[1];
    probe_t primary = {.in_recovery = false, .lsn = 1000};
    probe_t caught = {.in_recovery = true, .lsn = 1000};
    probe_good(p, &primary);
    assert_int_equal(p->state, NODE_OK); /* the first good probe brings an unknown node in */
    probe_good(rep, &caught);
    assert_int_equal(rep->state, NODE_OK);
    assert_int_equal(rep->lag_ms, 0);
    assert_int_equal(rep->lag_bytes, 0);

    /* Behind by bytes, just now: not lagging. */
    probe_t behind = {.in_recovery = true, .lsn = 400};
    probe_good(rep, &behind);
    assert_int_equal(rep->state, NODE_OK);
    assert_int_equal(rep->lag_bytes, 600);
    assert_true(rep->lag_ms < 1000);
    /* The primary was past it 6 s ago (and still is): lagging, then back after healthy_after. */
    r->head[0].at_ms -= 6000;
    probe_good(rep, &behind);
    assert_int_equal(rep->state, NODE_LAGGING);
    assert_true(rep->lag_ms >= 6000);
    /* The same position again adds nothing; one behind it (a failover) starts the ring again. */
    size_t had = r->n_head;
    head_seen(r, r->head[(r->next_head + r->cap_head - 1) % r->cap_head].lsn, clock_mono_ms());
    assert_int_equal(r->n_head, had);
    head_seen(r, 10, clock_mono_ms());
    assert_int_equal(r->n_head, 1);
    head_seen(r, 1000, clock_mono_ms() - 6000);
    /* An old primary position the replica has passed does not count. */
    probe_t further = {.in_recovery = true, .lsn = 1000};
    assert_int_equal(lag_since(r, further.lsn, clock_mono_ms()), 0);
    probe_good(rep, &caught);
    assert_int_equal(rep->state, NODE_LAGGING);
    probe_good(rep, &caught);
    assert_int_equal(rep->state, NODE_OK);

    /* unhealthy_after failures: down, and its breaker opens; healthy_after good ones: back. */
    probe_failed(rep, "refused");
    assert_int_equal(rep->state, NODE_OK);
    probe_failed(rep, "refused");
    assert_int_equal(rep->state, NODE_DOWN);
    assert_int_equal(rep->breaker, BREAKER_OPEN);
    probe_good(rep, &caught);
    assert_int_equal(rep->state, NODE_DOWN);
    assert_int_equal(rep->breaker, BREAKER_CLOSED); /* the probes opened it: a good one closes it */
    probe_good(rep, &caught);
    assert_int_equal(rep->state, NODE_OK);

    /* Calls opened it: a good probe leaves it open, and after the cool-down one read at a time
     * (the half-open trial) goes to the replica, whose outcome decides. */
    for (int i = 0; i < cfg.pg_breaker_failures; i++)
        breaker_result(rep, false);
    assert_int_equal(rep->breaker, BREAKER_OPEN);
    probe_good(rep, &caught);
    assert_int_equal(rep->breaker, BREAKER_OPEN);
    assert_int_equal(rep->state, NODE_OK);
    assert_false(breaker_may(rep, clock_mono_ms()));
    rep->open_until_ms = 0; /* the cool-down over */
    assert_true(breaker_may(rep, clock_mono_ms()));
    assert_true(breaker_allows(rep, clock_mono_ms())); /* the trial */
    assert_int_equal(rep->breaker, BREAKER_HALF_OPEN);
    assert_false(breaker_may(rep, clock_mono_ms())); /* no second call meanwhile */
    breaker_result(rep, true);
    assert_int_equal(rep->breaker, BREAKER_CLOSED);

    /* The primary down: no call goes to it, whatever its breaker says, until a probe succeeds. */
    probe_failed(p, "refused");
    probe_failed(p, "refused");
    assert_int_equal(p->state, NODE_DOWN);
    p->open_until_ms = 0; /* the cool-down over */
    assert_false(pg_router_primary_usable(r));
    probe_good(p, &primary);
    assert_int_equal(p->state, NODE_DOWN); /* healthy_after is 2 */
    assert_true(pg_router_primary_usable(r)); /* but calls may go again */
    probe_good(p, &primary);
    assert_int_equal(p->state, NODE_OK);

    /* The primary on a new timeline (a failover): told once. */
    int told = 0;
    pg_router_on_new_timeline(r, count_calls, &told);
    probe_t tl1 = {.in_recovery = false, .lsn = 5000, .timeline = 1}, tl2 = {.in_recovery = false, .lsn = 10, .timeline = 2};
    probe_good(p, &tl1);
    probe_good(p, &tl1);
    assert_int_equal(told, 0);
    probe_failed(p, "refused"); /* unknown meanwhile: not a change */
    probe_good(p, &tl2);
    assert_int_equal(told, 1);
    probe_good(p, &tl2);
    assert_int_equal(told, 1);
    /* A replica on another timeline than the primary's answers no read. */
    probe_t other = {.in_recovery = true, .lsn = 20, .timeline = 1};
    probe_good(p, &tl2);
    probe_good(rep, &other);
    assert_int_equal(rep->state, NODE_DOWN);

    /* A promoted replica, a primary in recovery: out. */
    probe_good(rep, &primary);
    assert_int_equal(rep->state, NODE_DOWN);
    probe_good(p, &caught);
    assert_int_equal(p->state, NODE_DOWN);
    pg_router_free(r);
}

/* At a failover a replica still on the old timeline is out at once, before its own next probe: a
 * write the new primary takes meanwhile must not be read there as missing (it may have diverged
 * ahead, and look caught up by its position). Back at its probe on the new timeline. */
static void failover_drops_replicas_of_the_old_timeline(void **state)
{
    (void)state;
    rankd_config_t cfg = test_cfg(POLICY_ROUND_ROBIN, two, 2, NULL, 0);
    cfg.pg_healthy_after = 1;
    pg_router_t *r = pg_router_new(&cfg);
    pg_node_t *p = r->nodes[0], *rep = r->nodes[1], *rep2 = r->nodes[2];
    probe_t tl1 = {.in_recovery = false, .lsn = 5000, .timeline = 1};
    probe_t ahead = {.in_recovery = true, .lsn = 6000, .timeline = 1};
    probe_t follows = {.in_recovery = true, .lsn = 5000, .timeline = 2};
    probe_good(p, &tl1);
    probe_good(rep, &ahead);
    probe_good(rep2, &ahead);
    assert_int_equal(rep->state, NODE_OK);
    probe_t tl2 = {.in_recovery = false, .lsn = 5100, .timeline = 2};
    probe_good(p, &tl2);
    assert_int_equal(rep->state, NODE_DOWN);
    assert_int_equal(rep2->state, NODE_DOWN);
    probe_good(rep, &follows); /* re-pointed at the new primary */
    assert_int_equal(rep->state, NODE_OK);
    probe_good(rep2, &ahead); /* still on the old one */
    assert_int_equal(rep2->state, NODE_DOWN);
    pg_router_free(r);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lsn_text), cmocka_unit_test(lsn_table), cmocka_unit_test(picks),
        cmocka_unit_test(breaker), cmocka_unit_test(health_states),
        cmocka_unit_test(failover_drops_replicas_of_the_old_timeline),
    };
    return cmocka_run_group_tests_name("pg_router", tests, NULL, NULL);
}
