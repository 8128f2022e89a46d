"""No HTTP event-loop thread waits on PostgreSQL: with one event-loop thread and a table
locked so that a route's statement waits, /healthz (and a cached read) on that same thread
are answered while the slow request is still waiting, and the slow request is answered once
the lock is gone. One case per route family that reads or writes PostgreSQL."""
import threading

import pytest

from conftest import ADMIN_KEY, WRITE_KEY, create_board, submit_ok, unique, wait_for


@pytest.fixture(scope="module")
def one_thread(module_rankd_factory):
    """A rankd with a single event-loop thread: every connection shares it."""
    return module_rankd_factory(env={"RANKD_WORKER_THREADS": "1", "RANKD_CACHE_BYTES": "0"})


def fresh_board(inst, players=3):
    """A board with a few players, not yet in the instance's board cache (creating it forgets it)."""
    adm = inst.client(ADMIN_KEY)
    b = create_board(adm, unique("ol"))["id"]
    w = inst.client(WRITE_KEY)
    for i in range(players):
        submit_ok(w, b, "p%d" % i, 100 + i)
    # The writer loaded the board into the cache; a create of the same definition forgets it.
    r = adm.post("/v1/leaderboards", json_body={"id": b, "title": "Board " + b, "sort": "desc",
                                                "operator": "best", "reset": "none"})
    assert r.status == 200, r.describe()
    adm.close()
    w.close()
    return b




def check_not_stalled(inst, db, table, send, expect):
    """Lock `table`, send the request in a thread, and check that the event loop still answers."""
    lock = db.connect()
    lock.autocommit = False
    cur = lock.cursor()
    cur.execute("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE" % table)
    result = {}

    def run():
        cl = inst.client()
        try:
            result["resp"] = send(cl)
        except Exception as e:  # noqa: BLE001 - reported below
            result["error"] = e
        finally:
            cl.close()

    t = threading.Thread(target=run)
    t.start()
    try:
        wait_for(lambda: db.lock_waiters() >= 1 or not t.is_alive(), "the request to wait on the lock")
        assert t.is_alive(), "the request did not wait on %s: %r" % (table, result)
        probe = inst.client()
        probe.timeout = 3
        r = probe.get("/healthz")
        probe.close()
        assert r.status == 200, r.describe()
        assert t.is_alive(), "the slow request was answered while %s was locked" % table
    finally:
        lock.rollback()
        lock.close()
    t.join(30)
    assert not t.is_alive()
    assert "error" not in result, result
    assert result["resp"].status in expect, result["resp"].describe()


def test_board_list(one_thread, db):
    check_not_stalled(one_thread, db, "boards", lambda cl: cl.get("/v1/leaderboards"), {200})


def test_board_get(one_thread, db):
    b = fresh_board(one_thread)
    check_not_stalled(one_thread, db, "window_counts", lambda cl: cl.get("/v1/leaderboards/" + b), {200})


def test_board_create_patch_delete(one_thread, db):
    b = fresh_board(one_thread)
    new = unique("olc")
    check_not_stalled(one_thread, db, "boards", lambda cl: cl.post(
        "/v1/leaderboards", {"id": new, "title": "t", "sort": "desc", "operator": "best", "reset": "none"},
        key=ADMIN_KEY), {201})
    check_not_stalled(one_thread, db, "boards", lambda cl: cl.patch(
        "/v1/leaderboards/" + b, {"title": "renamed"}, key=ADMIN_KEY), {200})
    check_not_stalled(one_thread, db, "boards", lambda cl: cl.delete("/v1/leaderboards/" + b, key=ADMIN_KEY), {204})


def test_ranked_read_of_a_board_not_in_the_board_cache(one_thread, db):
    b = fresh_board(one_thread)
    check_not_stalled(one_thread, db, "boards", lambda cl: cl.get("/v1/leaderboards/%s/entries" % b), {200})
    b = fresh_board(one_thread)
    check_not_stalled(one_thread, db, "boards", lambda cl: cl.get("/v1/leaderboards/%s/players/p1" % b), {200})


def test_ranked_read_from_postgres(one_thread, db):
    b = fresh_board(one_thread)
    one_thread.client().get("/v1/leaderboards/" + b)  # the board is cached now
    check_not_stalled(one_thread, db, "standings",
                      lambda cl: cl.get("/v1/leaderboards/%s/entries?consistency=strong" % b, key=WRITE_KEY), {200})


def test_writes_to_a_board_not_in_the_board_cache(one_thread, db):
    b = fresh_board(one_thread)
    check_not_stalled(one_thread, db, "boards", lambda cl: cl.post(
        "/v1/leaderboards/%s/scores" % b, {"player_id": "x1", "score": 5}, key=WRITE_KEY), {200})
    b = fresh_board(one_thread)
    check_not_stalled(one_thread, db, "boards", lambda cl: cl.post(
        "/v1/scores:batch", {"scores": [{"board": b, "player_id": "x2", "score": 6}]}, key=WRITE_KEY), {200})


def test_stats_and_windows(one_thread, db):
    b = fresh_board(one_thread)
    one_thread.client().get("/v1/leaderboards/" + b)
    check_not_stalled(one_thread, db, "view_refreshes", lambda cl: cl.get("/v1/leaderboards/%s/stats" % b), {200})
    check_not_stalled(one_thread, db, "window_counts", lambda cl: cl.get("/v1/leaderboards/%s/windows" % b), {200})


def test_standings_and_player_deletion(one_thread, db):
    b = fresh_board(one_thread)
    one_thread.client().get("/v1/leaderboards/" + b)
    check_not_stalled(one_thread, db, "standings", lambda cl: cl.get("/v1/players/p1/standings"), {200})
    check_not_stalled(one_thread, db, "standings", lambda cl: cl.delete(
        "/v1/leaderboards/%s/players/p1" % b, key=ADMIN_KEY), {204})


def test_batch_of_reads(one_thread, db):
    b = fresh_board(one_thread)
    check_not_stalled(one_thread, db, "boards", lambda cl: cl.post(
        "/v1/batch", {"requests": [{"path": "/v1/leaderboards/%s/entries" % b}]}), {200})
