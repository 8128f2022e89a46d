"""What operators read (issue 15, item 5): /metrics has the writer's queue and transactions, the
views' ages, the 503s apart from other 5xx and the rate limiter's counts; statements slower than
postgres.slow_statement_ms are logged with their name, node and duration."""
import os
import threading
import time

from conftest import ADMIN_KEY, PAGE_READ_SQL, WRITE_KEY, batch, create_board, metric, sanitized, submit_ok, wait_for


def test_metrics_for_operators(rankd_factory):
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "1"})
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(adm)["id"]
        before = metric(inst, "rankd_writer_batches_total")
        submit_ok(w, b, "p1", 10)
        assert metric(inst, "rankd_writer_batches_total") > before
        assert metric(inst, "rankd_writer_queue_submissions") == 0
        assert metric(inst, "rankd_writer_last_batch_ms") >= 0
        wait_for(lambda: 'rankd_view_age_seconds{view="window_stats"}' in inst.client(ADMIN_KEY).get("/metrics").body.decode(),
                 "the views' ages")
        assert metric(inst, 'rankd_rate_limited_total{kind="read"}') == 0
        assert metric(inst, "rankd_http_unavailable_total") == 0
    finally:
        adm.close()
        w.close()


def _gathers(inst):
    return (metric(inst, 'rankd_writer_gathers_total{outcome="came"}'),
            metric(inst, 'rankd_writer_gathers_total{outcome="in_vain"}'))


def _hints(inst):
    return (metric(inst, 'rankd_writer_hints_total{how="carried"}'),
            metric(inst, 'rankd_writer_hints_total{how="alone"}'))


def _run_clients(client, n):
    """client(i) for i in range(n), each on a thread of its own, all at once; returns when all end."""
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _write_in_turns(inst, board, n, prefix, scores):
    """n clients at once, client i submitting scores(i) one after another as player prefix+i,
    each waiting for its answer before the next (a game server's round); returns their errors."""
    errors = []

    def player(i):
        c = inst.client(WRITE_KEY)
        try:
            for score in scores(i):
                submit_ok(c, board, "%s%d" % (prefix, i), score)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(repr(e))
        finally:
            c.close()

    _run_clients(player, n)
    return errors


def test_the_writer_gathers_the_clients_it_answered(rankd_factory):
    """writer.gather_us: clients that each wait for their answer before writing again share a
    transaction (the writer waits for as many as it answered), every submission still lands,
    and one client writing alone never waits."""
    inst = rankd_factory(env={"RANKD_WRITER_GATHER_US": "100000"})  # generous: Python clients, ASan builds
    adm = inst.client(ADMIN_KEY)
    try:
        b = create_board(adm)["id"]
        rounds, n = 25, 6
        errors = _write_in_turns(inst, b, n, "g", lambda i: (k * 10 + i for k in range(1, rounds + 1)))
        assert errors == []
        came, _ = _gathers(inst)
        assert came > 0
        top = adm.get("/v1/leaderboards/%s/entries?limit=%d" % (b, n)).json()["entries"]
        assert [(e["player_id"], e["score"]) for e in top] == [("g%d" % i, rounds * 10 + i) for i in reversed(range(n))]

        w = inst.client(WRITE_KEY)
        try:
            submit_ok(w, b, "alone", 1)  # may wait once for the clients above (it answered several)
            before = _gathers(inst)
            for k in range(2, 12):
                submit_ok(w, b, "alone", k)
            assert _gathers(inst) == before
        finally:
            w.close()
    finally:
        adm.close()


def test_no_gathering_after_a_heavy_transaction(rankd_factory):
    """Batches of 300 from clients in a closed loop: each transaction already holds 300
    submissions or more, so the writer does not wait for more (it made batched writes dearer)."""
    inst = rankd_factory(env={"RANKD_WRITER_GATHER_US": "100000"})
    adm = inst.client(ADMIN_KEY)
    try:
        b = create_board(adm)["id"]
        errors = []

        def server(i):
            c = inst.client(WRITE_KEY)
            try:
                for k in range(1, 9):
                    r = batch(c, [{"board": b, "player_id": "s%d-%d" % (i, p), "score": k}
                                         for p in range(300)])
                    assert r.status == 200 and all("error" not in x for x in r.json()["results"]), r
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
            finally:
                c.close()

        _run_clients(server, 4)
        assert errors == []
        assert metric(inst, "rankd_writer_batches_total") < 32  # some transactions held two or more
        assert _gathers(inst) == (0, 0)
        assert adm.get("/v1/leaderboards/%s" % b).json()["players"] == 1200
    finally:
        adm.close()


def test_no_gathering_when_it_is_off(rankd_factory):
    inst = rankd_factory(env={"RANKD_WRITER_GATHER_US": "0"})
    adm = inst.client(ADMIN_KEY)
    try:
        b = create_board(adm)["id"]
        assert _write_in_turns(inst, b, 4, "p", lambda i: range(10)) == []
        assert _gathers(inst) == (0, 0)
        # nothing waits: every transaction's hint goes at once, alone (each changed a standing)
        assert _hints(inst) == (0, metric(inst, "rankd_writer_batches_total"))
    finally:
        adm.close()


def test_the_hint_rides_in_the_next_transaction(rankd_factory):
    """After the Redis update, a transaction's changes go to every instance again (the hint, for
    reads another instance served from Redis between the commit and the update). Clients that
    write again as soon as they are answered: it rides in the writer's next transaction. A write
    alone: no transaction comes within writer.gather_us, and it goes in one of its own."""
    inst = rankd_factory(env={"RANKD_WRITER_GATHER_US": "100000"})
    adm = inst.client(ADMIN_KEY)
    try:
        b = create_board(adm)["id"]
        errors = _write_in_turns(inst, b, 6, "h", lambda i: range(1, 21))
        assert errors == []
        # every transaction changed a standing: each one's hint went, one way or the other
        wait_for(lambda: sum(_hints(inst)) == metric(inst, "rankd_writer_batches_total"), "every hint sent")
        carried, alone = _hints(inst)
        assert carried > 0
        w = inst.client(WRITE_KEY)
        try:
            submit_ok(w, b, "alone", 1)
            wait_for(lambda: _hints(inst) == (carried, alone + 1), "the lone write's hint, alone")
        finally:
            w.close()
    finally:
        adm.close()


def test_standard_process_series(rankd_factory):
    """API.md, /metrics: Prometheus's standard process series beside rankd's own, equal to what
    /proc says of the process; and the heap in use and kept by the allocator."""
    inst = rankd_factory()
    pid = inst.proc.pid
    with open("/proc/%d/status" % pid) as f:
        rss_kb = int(next(line for line in f if line.startswith("VmRSS")).split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    assert abs(metric(inst, "process_resident_memory_bytes") - rss_kb * 1024) < 8 * 1024 * 1024
    assert abs(metric(inst, "process_open_fds") - fds) <= 4  # the scrape's own connection comes and goes
    soft = int(open("/proc/%d/limits" % pid).read().split("Max open files")[1].split()[0])
    assert metric(inst, "process_max_fds") == soft
    started = metric(inst, "process_start_time_seconds")
    assert time.time() - 120 < started <= time.time()
    assert metric(inst, "process_cpu_seconds_total") >= 0
    if not sanitized(inst):  # AddressSanitizer's allocator serves malloc: glibc has nothing to say
        assert metric(inst, "rankd_heap_in_use_bytes") > 0 and metric(inst, "rankd_heap_free_bytes") >= 0


def test_slow_statements_are_logged_with_name_node_and_duration(rankd_factory, db):
    inst = rankd_factory(redis=False, env={"RANKD_POSTGRES_SLOW_STATEMENT_MS": "200", "RANKD_CACHE_BYTES": "0"})
    adm, c = inst.client(ADMIN_KEY), inst.client()
    try:
        b = create_board(adm)["id"]
        conn = db.connect()
        conn.autocommit = False
        cur = conn.cursor()
        cur.execute("LOCK TABLE standings IN ACCESS EXCLUSIVE MODE")  # the next read waits for it
        got = {}
        t = threading.Thread(target=lambda: got.setdefault("r", c.get("/v1/leaderboards/%s/entries" % b)))
        t.start()
        wait_for(lambda: db.lock_waiters(PAGE_READ_SQL) > 0, "the read to wait for the lock")
        time.sleep(0.3)  # not a wait for anything: how long the lock makes the statement take
        conn.rollback()
        conn.close()
        t.join(10)
        assert got["r"].status == 200, got["r"].describe()
        wait_for(lambda: "slow statement rankd_page_top on 127.0.0.1:" in inst.stderr_text(), "the slow log line")
    finally:
        adm.close()
        c.close()
