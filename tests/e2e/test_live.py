"""Live streams (API.md, "Live streams"): GET /v1/leaderboards/{board}/live?top=N pushes the board's
top N as Server-Sent Events: first the current answer (the body of GET .../entries?limit=N), then
one each time it changes, from a write on any instance; a reconnection with the last event's id
gets nothing until the answer changes; limits answer 429 and 503; a stop ends every stream whole.
GET .../players/{player}/live?around=K pushes a player's rank, score and neighbours, with the rank
before and who moved past them; a window's reset sends an event naming the new window."""
import datetime
import json
import os
import signal
import socket
import time

import pytest

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, assert_error, batch, create_board, metric, series, submit_ok, unique,
                      wait_for, wait_tokens_judged)
from test_archive import Clock, day_ms
from test_limits import BucketClock
from test_player_tokens import TOKENS, mint


class Sse:
    """One stream, read off its socket: the headers, then events (chunked encoding undone)."""

    def __init__(self, inst, path, key=READ_KEY, last_id=None, timeout=10, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # a small window: the kernel holds little for a client that does not read
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", inst.port))
        head = "GET %s HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n" % path
        if key:
            head += "Authorization: Bearer %s\r\n" % key
        if last_id is not None:
            head += "Last-Event-ID: %s\r\n" % last_id
        self.sock.sendall((head + "\r\n").encode())
        self.raw, self.body, self.ended = b"", b"", False
        while b"\r\n\r\n" not in self.raw:
            self._more()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v for k, v in (x.split(": ", 1) for x in lines[1:])}
        self.retry = None
        self.comments = 0  # comment lines (":") read so far

    def _more(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("the stream's connection closed")
        self.raw += d

    def _dechunk(self):
        while not self.ended:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(self.raw[:i].split(b";")[0], 16)
            if len(self.raw) < i + 2 + size + 2:
                return
            self.body += self.raw[i + 2:i + 2 + size]
            self.raw = self.raw[i + 4 + size:]
            self.ended = size == 0

    def error_body(self):
        """A refusal's JSON body (not chunked when it has a length)."""
        n = int(self.headers.get("content-length", "0"))
        while len(self.raw) < n:
            self._more()
        return json.loads(self.raw[:n])

    def event(self):
        """The next event with data, as {"id", "event", "data"}; comments and a lone retry: are
        taken in passing. None when the stream ended."""
        while True:
            self._dechunk()
            while b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                ev = {}
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        self.comments += 1
                        continue
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "retry":
                        self.retry = int(v)
                    elif k == "data" and "data" in ev:
                        ev["data"] += "\n" + v
                    else:
                        ev[k] = v
                if "data" in ev:
                    ev["data"] = json.loads(ev["data"])
                    return ev
            if self.ended:
                return None
            self._more()

    def comment(self):
        """Read until one more comment line has come."""
        seen = self.comments
        while self.comments == seen:
            self._dechunk()
            while b"\n\n" in self.body and self.comments == seen:
                block, self.body = self.body.split(b"\n\n", 1)
                self.comments += sum(1 for line in block.decode().split("\n") if line.startswith(":"))
            if self.comments == seen:
                if self.ended:
                    raise EOFError("the stream ended")
                self._more()

    def close(self):
        self.sock.close()


def top(c, board, n):
    r = c.get("/v1/leaderboards/%s/entries?limit=%d" % (board, n))
    assert r.status == 200, r.describe()
    return r.json()


def seq_of(ev):
    """An event id's window and transaction number (<window>:<n>.<hash of the answer>)."""
    window, _, rest = ev["id"].rpartition(":")
    n, _, h = rest.partition(".")
    assert len(h) == 8, ev["id"]
    return window, int(n)


def test_a_boards_top_is_pushed_first_as_it_is_then_as_it_changes(rankd, admin, writer):
    b = create_board(admin)["id"]
    for p, s in (("a", 30), ("b", 20), ("c", 10)):
        submit_ok(writer, b, p, s)
    s = Sse(rankd, "/v1/leaderboards/%s/live?top=2" % b)
    try:
        assert s.status == 200
        assert s.headers["content-type"] == "text/event-stream"
        assert s.headers["cache-control"] == "no-store"
        assert s.headers["x-accel-buffering"] == "no"
        first = s.event()
        assert first["event"] == "top"
        assert s.retry and s.retry > 0  # the reconnection delay comes with the first event
        assert first["data"] == top(admin, b, 2)
        assert [e["player_id"] for e in first["data"]["entries"]] == ["a", "b"]
        window, n0 = seq_of(first)
        assert window == first["data"]["window"]
        # below the top 2: the answer does not change, and no event is sent for it; the next
        # event is the change after it
        submit_ok(writer, b, "d", 5)
        submit_ok(writer, b, "e", 40)
        ev = s.event()
        assert [e["player_id"] for e in ev["data"]["entries"]] == ["e", "a"]
        assert ev["data"] == top(admin, b, 2)
        w2, n1 = seq_of(ev)
        assert w2 == window and n1 > n0
        submit_ok(writer, b, "b", 50)
        ev2 = s.event()
        assert [(e["player_id"], e["rank"]) for e in ev2["data"]["entries"]] == [("b", 1), ("e", 2)]
        assert seq_of(ev2)[1] > n1
    finally:
        s.close()


def test_a_write_on_one_instance_reaches_a_listener_of_another(rankd_factory):
    one, two = rankd_factory(), rankd_factory()
    a = one.client(WRITE_KEY)
    try:
        b = create_board(one.client("test-admin-key-0001"))["id"]
        submit_ok(a, b, "p1", 100)
        s = Sse(two, "/v1/leaderboards/%s/live?top=3" % b)
        try:
            assert [e["player_id"] for e in s.event()["data"]["entries"]] == ["p1"]
            submit_ok(a, b, "p2", 200)
            ev = s.event()
            assert [(e["player_id"], e["score"]) for e in ev["data"]["entries"]] == [("p2", 200), ("p1", 100)]
            assert ev["data"] == top(two.client(READ_KEY), b, 3)
            # many writes in a burst: events never go backwards, and the last one is the end state
            last = seq_of(ev)[1]
            for i in range(30):
                submit_ok(a, b, "q%d" % i, 300 + i)
            while True:
                ev = s.event()
                n = seq_of(ev)[1]
                assert n >= last
                last = n
                if ev["data"]["entries"][0]["player_id"] == "q29":
                    break
            assert ev["data"] == top(two.client(READ_KEY), b, 3)
        finally:
            s.close()
        # back, to the other instance, with that id: the same answer there, so nothing until a change
        s = Sse(one, "/v1/leaderboards/%s/live?top=3" % b, last_id=ev["id"])
        try:
            submit_ok(a, b, "z", 1000)
            ev = s.event()
            assert ev["data"]["entries"][0]["player_id"] == "z"
        finally:
            s.close()
    finally:
        a.close()


def test_a_reconnection_with_the_last_event_id_waits_for_a_change(rankd, admin, writer):
    b = create_board(admin)["id"]
    submit_ok(writer, b, "x", 1)
    path = "/v1/leaderboards/%s/live?top=5&rank_style=dense" % b
    s = Sse(rankd, path)
    first = s.event()
    s.close()
    # back with the id of what it has: nothing until the answer changes
    s = Sse(rankd, path, last_id=first["id"])
    try:
        submit_ok(writer, b, "y", 2)
        ev = s.event()
        assert [e["player_id"] for e in ev["data"]["entries"]] == ["y", "x"]
        assert ev["id"] != first["id"]
    finally:
        s.close()
    # back with an id it cannot match: the current answer at once
    s = Sse(rankd, path, last_id="1999-01-01:7")
    try:
        ev = s.event()
        assert [e["player_id"] for e in ev["data"]["entries"]] == ["y", "x"]
        assert ev["data"] == top(admin, b, 5) or ev["data"]["entries"] == top(admin, b, 5)["entries"]
    finally:
        s.close()


def test_bad_streams_are_refused_with_the_error_object(rankd, admin):
    b = create_board(admin)["id"]
    c = rankd.client(READ_KEY)
    try:
        for q in ("top=0", "top=101", "top=x", "top=1&top=2"):
            assert_error(c.get("/v1/leaderboards/%s/live?%s" % (b, q)), 400, "top")
        assert_error(c.get("/v1/leaderboards/%s/live?rank_style=odd" % b), 400, "rank_style")
        assert_error(c.get("/v1/leaderboards/%s/live" % unique("nope")), 404)
        r = c.request("POST", "/v1/leaderboards/%s/live" % b, body=b"{}")
        assert r.status == 405
    finally:
        c.close()


def test_limits_answer_429_per_address_and_503_per_instance(rankd_factory):
    inst = rankd_factory(env={"RANKD_LIVE_MAX_LISTENERS_PER_ADDRESS": "1"})
    b = create_board(inst.client("test-admin-key-0001"))["id"]
    s = Sse(inst, "/v1/leaderboards/%s/live" % b)
    try:
        assert s.status == 200 and s.event()["event"] == "top"
        t = Sse(inst, "/v1/leaderboards/%s/live" % b)
        assert t.status == 429 and int(t.headers["retry-after"]) >= 1
        assert t.error_body()["error"]["code"] == "rate_limited"
        t.close()
    finally:
        s.close()
    off = rankd_factory(env={"RANKD_LIVE_MAX_LISTENERS": "0"})
    t = Sse(off, "/v1/leaderboards/%s/live" % b)
    assert t.status == 503 and t.error_body()["error"]["code"] == "unavailable"
    t.close()


def test_a_deleted_board_ends_its_streams_with_a_gone_event(rankd, admin, writer):
    b = create_board(admin)["id"]
    submit_ok(writer, b, "z", 3)
    s = Sse(rankd, "/v1/leaderboards/%s/live" % b)
    try:
        assert s.event()["event"] == "top"
        r = admin.delete("/v1/leaderboards/%s" % b)
        assert r.status in (200, 204), r.describe()
        ev = s.event()
        assert ev["event"] == "gone" and ev["data"]["error"]["code"] == "not_found"
        assert s.event() is None and s.ended  # the stream's body ended
    finally:
        s.close()


def test_sigterm_ends_every_stream_whole_and_rankd_exits_0(rankd_factory):
    inst = rankd_factory()
    b = create_board(inst.client("test-admin-key-0001"))["id"]
    s = Sse(inst, "/v1/leaderboards/%s/live" % b)
    try:
        assert s.event()["event"] == "top"
        s.retry = None
        t0 = time.time()
        inst.stop_signal = signal.SIGTERM
        os.kill(inst.proc.pid, signal.SIGTERM)
        assert s.event() is None and s.ended  # the last chunk came: the body ended whole
        assert s.retry and s.retry > 0        # with a reconnection hint before it
        assert inst.proc.wait(15) == 0
        assert time.time() - t0 < 10
    finally:
        s.close()


def test_a_listener_that_does_not_read_is_dropped_and_the_others_go_on(rankd_factory):
    inst = rankd_factory(env={"RANKD_LIVE_MIN_INTERVAL_MS": "10"})
    admin, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(admin)["id"]
        big = {"pad": "x" * 900}  # each entry about 1 KiB: a top-100 event of about 110 KB
        r = batch(w, [{"board": b, "player_id": "p%03d" % i, "score": i, "metadata": big} for i in range(100)])
        assert r.status == 200, r.describe()
        path = "/v1/leaderboards/%s/live?top=100" % b
        slow = Sse(inst, path, rcvbuf=4096)
        good = Sse(inst, path)
        try:
            assert good.event()["event"] == "top"
            assert metric(admin, "rankd_live_listeners") == 2
            # every write changes the top 100; the slow one never reads
            for i in range(60):
                submit_ok(w, b, "p%03d" % (i % 100), 1000 + i, metadata=big)
                ev = good.event()
                assert ev["data"]["entries"][0]["score"] == 1000 + i
                if metric(admin, "rankd_live_dropped_total") >= 1:
                    break
            assert metric(admin, "rankd_live_dropped_total") == 1
            assert metric(admin, "rankd_live_listeners") == 1
            # the one that reads still gets every change
            submit_ok(w, b, "late", 5000, metadata=big)
            assert good.event()["data"]["entries"][0]["player_id"] == "late"
            # the dropped one's connection was closed: reading what got through, it ends without
            # the chunked body's last chunk
            ended = None
            try:
                while slow.event() is not None:
                    pass
                ended = "whole"
            except (EOFError, ConnectionError):
                ended = "cut"
            assert ended == "cut"
        finally:
            slow.close()
            good.close()
    finally:
        admin.close()
        w.close()


def test_a_listener_whose_events_wait_unread_past_the_send_timeout_is_dropped(rankd_factory):
    """Its buffer is far from full (one event waits), but it has taken nothing for
    http.send_timeout_s: dropped at the next heartbeat, its connection cut."""
    inst = rankd_factory(env={"RANKD_SEND_TIMEOUT_S": "1", "RANKD_LIVE_HEARTBEAT_S": "1",
                              "RANKD_SEND_BUFFER_BYTES": "4096"})
    admin, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(admin)["id"]
        big = {"pad": "x" * 900}  # a top-100 event of about 110 KB: more than the sockets hold
        r = batch(w, [{"board": b, "player_id": "p%03d" % i, "score": i, "metadata": big} for i in range(100)])
        assert r.status == 200, r.describe()
        path = "/v1/leaderboards/%s/live?top=100" % b
        slow = Sse(inst, path, rcvbuf=4096)
        good = Sse(inst, path)
        try:
            assert good.event()["event"] == "top"
            wait_for(lambda: metric(admin, "rankd_live_dropped_total") == 1, "the listener that does not read dropped",
                     timeout=15)
            assert metric(admin, "rankd_live_listeners") == 1
            submit_ok(w, b, "late", 5000)
            assert good.event()["data"]["entries"][0]["player_id"] == "late"
        finally:
            slow.close()
            good.close()
    finally:
        admin.close()
        w.close()


def test_an_idle_stream_gets_a_comment_line_every_heartbeat(rankd_factory):
    inst = rankd_factory(env={"RANKD_LIVE_HEARTBEAT_S": "1"})
    b = create_board(inst.client(ADMIN_KEY))["id"]
    s = Sse(inst, "/v1/leaderboards/%s/live" % b)
    try:
        assert s.event()["event"] == "top"
        s.comment()
        s.comment()  # and again: every heartbeat, with nothing else to send
    finally:
        s.close()


def around(c, board, player, k):
    r = c.get("/v1/leaderboards/%s/players/%s/around?before=%d&after=%d" % (board, player, k, k))
    assert r.status == 200, r.describe()
    return r.json()


def player_view(ev):
    """What a player event says, without its entries' details."""
    d = ev["data"]
    return (d["rank"], d["score"], d["previous_rank"], d["overtaken_by"], [e["player_id"] for e in d["entries"]])


@pytest.mark.parametrize("tier", [False, True])
def test_a_players_stream_says_their_rank_who_passed_them_and_nothing_for_a_change_far_behind(rankd_factory, tier):
    """tier: the listening instance holds the window in its rank tier, and the stream's reads are
    answered there (every change it heard is applied before the stream looks), not by the primary."""
    # the heartbeat's recheck would send a change of the total alone: out of the way here
    env = {"RANKD_LIVE_HEARTBEAT_S": "300"}
    if tier:
        env.update({"RANKD_RANK_TIER": "64MiB", "RANKD_CACHE_BYTES": "0"})
    one, two = rankd_factory(), rankd_factory(env=env)
    a, r, r1 = one.client(WRITE_KEY), two.client(READ_KEY), one.client(READ_KEY)
    try:
        b = create_board(one.client(ADMIN_KEY))["id"]
        assert batch(a, [{"board": b, "player_id": "p%02d" % i, "score": 100 - 10 * i} for i in range(10)]).status == 200
        if tier:  # the window loaded (a read asks for it)
            wait_for(lambda: r.get("/v1/leaderboards/%s/entries" % b).status == 200 and
                     series(two, "rankd_rank_tier_windows", state="ready") == 1, "the tier to hold the window")
        tier_reads = metric(two, "rankd_reads_tier_total")
        s = Sse(two, "/v1/leaderboards/%s/players/p05/live?around=2" % b)
        try:
            assert s.status == 200 and s.headers["content-type"] == "text/event-stream"
            first = s.event()
            assert first["event"] == "player"
            assert player_view(first) == (6, 50, None, [], ["p03", "p04", "p05", "p06", "p07"])
            expect = around(r1, b, "p05", 2)
            assert {k: first["data"][k] for k in expect} == expect  # the around read's own shape
            assert first["data"]["player"] == "p05"
            # a new player moves past p05, written on the other instance
            submit_ok(a, b, "x1", 55)
            ev = s.event()
            assert player_view(ev) == (7, 50, 6, ["x1"], ["p04", "x1", "p05", "p06", "p07"])
            # a new player far behind changes the total alone: no event for it; the next one is
            # the next player that moves past
            submit_ok(a, b, "low", 1)
            submit_ok(a, b, "p07", 95)
            ev = s.event()
            assert player_view(ev) == (8, 50, 7, ["p07"], ["p04", "x1", "p05", "p06", "p08"])
            assert ev["data"]["total"] == 12
            # the player's own move: up past six, passed by no one
            submit_ok(a, b, "p05", 99)
            ev = s.event()
            assert player_view(ev) == (2, 99, 8, [], ["p00", "p05", "p07", "p01"])
            assert {k: ev["data"][k] for k in ("board", "window", "total", "entries")} == around(r1, b, "p05", 2)
            # two pass in one transaction: both named, in one event
            resp = batch(a, [{"board": b, "player_id": "p07", "score": 100}, {"board": b, "player_id": "y", "score": 120}])
            assert resp.status == 200
            ev = s.event()
            assert player_view(ev)[:3] == (4, 99, 2) and sorted(ev["data"]["overtaken_by"]) == ["p07", "y"]
            # the stream's five answers: from the tier (one that finds the window's lock taken by
            # a change being applied goes to the primary), or never from it (the reads compared
            # with them went to the other instance)
            got = metric(two, "rankd_reads_tier_total") - tier_reads
            assert 1 <= got <= 5 if tier else got == 0, got
        finally:
            s.close()
    finally:
        a.close()
        r.close()
        r1.close()


def test_a_player_without_a_standing_streams_null_until_they_have_one(rankd, admin, writer):
    b = create_board(admin)["id"]
    submit_ok(writer, b, "a", 10)
    s = Sse(rankd, "/v1/leaderboards/%s/players/newcomer/live?around=1" % b)
    try:
        ev = s.event()
        assert ev["event"] == "player"
        assert player_view(ev) == (None, None, None, [], [])
        assert ev["data"]["total"] == 1 and ev["data"]["board"] == b and ev["data"]["window"]
        submit_ok(writer, b, "newcomer", 20)
        ev = s.event()
        assert player_view(ev) == (1, 20, None, [], ["newcomer", "a"])
        # deleted: no standing again, the rank it had before said
        r = admin.delete("/v1/leaderboards/%s/players/newcomer" % b)
        assert r.status in (200, 204), r.describe()
        ev = s.event()
        assert player_view(ev) == (None, None, 1, [], [])
    finally:
        s.close()


def test_a_window_reset_sends_an_event_naming_the_new_window(rankd_factory, tmp_path):
    clock = Clock(str(tmp_path))
    inst = rankd_factory(env=clock.env())
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(adm, reset="daily")["id"]
        submit_ok(w, b, "p", 7)
        top_s = Sse(inst, "/v1/leaderboards/%s/live?top=3" % b)
        me = Sse(inst, "/v1/leaderboards/%s/players/p/live?around=1" % b)
        try:
            first, mine = top_s.event(), me.event()
            old = first["data"]["window"]
            assert [e["player_id"] for e in first["data"]["entries"]] == ["p"] and mine["data"]["rank"] == 1
            today = datetime.datetime.strptime(old, "%Y-%m-%d").date()
            new = (today + datetime.timedelta(days=1)).isoformat()
            clock.set(day_ms(today + datetime.timedelta(days=1)) + 500)  # past midnight: no write
            for s, kind in ((top_s, "top"), (me, "player")):
                ev = s.event()
                assert ev["event"] == "reset", ev
                assert ev["data"] == {"board": b, "window": new, "previous_window": old}
                ev = s.event()
                assert ev["event"] == kind and ev["data"]["window"] == new
                assert ev["data"]["entries"] == []
            assert me_rank_null(ev)
            # the new window's first write
            submit_ok(w, b, "p", 3)
            assert [e["score"] for e in top_s.event()["data"]["entries"]] == [3]
            assert me.event()["data"]["rank"] == 1
        finally:
            top_s.close()
            me.close()
    finally:
        adm.close()
        w.close()


def me_rank_null(ev):
    return ev["data"]["rank"] is None and ev["data"]["score"] is None and ev["data"]["previous_rank"] == 1


def test_bad_player_streams_are_refused_with_the_error_object(rankd, admin):
    b = create_board(admin)["id"]
    c = rankd.client(READ_KEY)
    try:
        for q in ("around=51", "around=-1", "around=x", "around=1&around=2"):
            assert_error(c.get("/v1/leaderboards/%s/players/p/live?%s" % (b, q)), 400, "around")
        assert_error(c.get("/v1/leaderboards/%s/players/p/live?rank_style=odd" % b), 400, "rank_style")
        assert_error(c.get("/v1/leaderboards/%s/players/%s/live" % (b, "x" * 65)), 400, "player_id")
        assert_error(c.get("/v1/leaderboards/%s/players/p/live" % unique("nope")), 404)
        assert c.request("POST", "/v1/leaderboards/%s/players/p/live" % b, body=b"{}").status == 405
        r = c.request("HEAD", "/v1/leaderboards/%s/players/p/live" % b)
        assert r.status == 200 and r.header("Content-Type") == "text/event-stream"
    finally:
        c.close()


def test_a_stream_counts_as_one_read_a_minute_and_ends_when_its_clients_reads_run_out(rankd_factory, tmp_root):
    clock = BucketClock(tmp_root)
    env = dict(clock.env(), RANKD_LIVE_HEARTBEAT_S="1")
    inst = rankd_factory(env=env, extra_config={"limits": {"reads_per_s": 1, "burst": 5}})
    adm, r = inst.client(ADMIN_KEY), inst.client(READ_KEY)
    try:
        b = create_board(adm)["id"]
        s = Sse(inst, "/v1/leaderboards/%s/live" % b)  # its opening is a read: 4 left
        try:
            assert s.event()["event"] == "top"
            # a minute on: the bucket is full again (5), and the stream's second minute takes one
            clock.advance(60000)
            wait_for(lambda: metric(inst, "rankd_live_reads_charged_total") == 1, "the stream's minute charged")
            got = r.get("/v1/leaderboards/%s/entries" % b)
            assert got.status == 200 and got.header("RateLimit-Remaining") == "3"
            # just short of the next minute the client reads all it has; the minute then finds none
            clock.advance(59900)
            path = "/v1/leaderboards/%s/entries" % b
            wait_for(lambda: r.get(path).header("RateLimit-Remaining") == "4", "the buckets' clock to move")
            assert [r.get(path).status for _ in range(5)] == [200] * 4 + [429]
            clock.advance(100)
            ev = s.event()
            assert ev["event"] == "gone" and ev["data"]["error"]["code"] == "rate_limited"
            assert s.event() is None and s.ended
            assert metric(inst, "rankd_live_rate_limited_total") == 1
            assert metric(inst, "rankd_live_listeners") == 0
        finally:
            s.close()
    finally:
        adm.close()
        r.close()


def test_a_player_token_opens_its_players_stream_and_a_revoked_one_cannot(rankd_factory):
    inst = rankd_factory(extra_config=TOKENS)
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(adm)["id"]
        submit_ok(w, b, "ana", 10)
        token = mint(w, "ana")["token"]
        wait_tokens_judged(inst, token)  # a fresh instance: 503 until its revocations are loaded
        s = Sse(inst, "/v1/leaderboards/%s/players/ana/live?around=0" % b, key=token)
        try:
            assert s.status == 200
            assert player_view(s.event()) == (1, 10, None, [], ["ana"])
            submit_ok(w, b, "bo", 20)
            assert player_view(s.event()) == (2, 10, 1, ["bo"], ["ana"])
        finally:
            s.close()
        assert adm.delete("/v1/players/ana/tokens").status in (200, 204)
        t = Sse(inst, "/v1/leaderboards/%s/players/ana/live" % b, key=token)
        assert t.status == 401 and t.error_body()["error"]["code"] == "unauthenticated"
        t.close()
    finally:
        adm.close()
        w.close()


def test_a_stream_resumed_on_an_instance_that_has_not_heard_its_last_event_waits_for_it(
        rankd_factory, private_redis, db, pg_server):
    """A client that leaves an instance and comes back on another with the last event's id must
    not get an older answer there. The second instance's rank tier holds the window, and its
    listener's session is stalled (a proxy holding every byte): its tier still answers, without
    the write the first instance's stream showed, until the tier finds itself stale. The resumed
    stream waits (at most 2 s) for that instance to have heard the event's transaction number,
    then reads again."""
    import re
    from faultproxy import FaultProxy
    from test_rank_tier import TIER, tier_answers
    proxy = FaultProxy(("127.0.0.1", pg_server.port)).start()
    try:
        one = rankd_factory(redis=private_redis.url(0))
        two = rankd_factory(redis=private_redis.url(0), env=TIER,
                            extra_config={"postgres": {"listener": re.sub(r"port=\d+", "port=%d" % proxy.port, db.dsn)}})
        adm, w, r2 = one.client(ADMIN_KEY), one.client(WRITE_KEY), two.client(READ_KEY)
        b = create_board(adm, operator="latest")["id"]
        for i in range(5):
            submit_ok(w, b, "s%d" % i, 10 + i)
        tier_answers(two, r2, b)
        s = Sse(one, "/v1/leaderboards/%s/live?top=3" % b)
        try:
            assert [e["player_id"] for e in s.event()["data"]["entries"]] == ["s4", "s3", "s2"]
            proxy.set("stall")
            submit_ok(w, b, "s0", 100)
            last = s.event()
            assert [e["player_id"] for e in last["data"]["entries"]] == ["s0", "s4", "s3"]
        finally:
            s.close()
        t = Sse(two, "/v1/leaderboards/%s/live?top=3" % b, last_id=last["id"])
        try:
            # Nothing older comes first: once the second instance reads past the stall (its tier
            # stale, the primary), its answer is the one the client has, and is not sent again;
            # the first event is the next change, heard once the stall ends.
            proxy.set("pass")
            submit_ok(w, b, "s1", 200)
            ev = t.event()
            assert [e["player_id"] for e in ev["data"]["entries"]] == ["s1", "s0", "s4"], ev
        finally:
            t.close()
        for c in (adm, w, r2):
            c.close()
    finally:
        proxy.stop()


def test_a_stream_holds_one_descriptor_and_its_close_gives_it_back(rankd_factory):
    """A live stream leaves libmicrohttpd once its headers are sent (its socket duplicated, the
    connection's memory freed): each open stream holds one descriptor, not two, and a stream its
    client closes gives its descriptor back at once, before any heartbeat."""
    inst = rankd_factory(env={"RANKD_LIVE_HEARTBEAT_S": "300"})
    adm = inst.client(ADMIN_KEY)
    b = create_board(adm)["id"]

    def fds():
        return len(os.listdir("/proc/%d/fd" % inst.proc.pid))

    base = fds()
    first = Sse(inst, "/v1/leaderboards/%s/live?top=3" % b)
    # its socket is closed at its end: no client may send another request on it
    assert first.headers.get("connection", "").lower() == "close", first.headers
    first.close()
    streams = []
    for _ in range(60):
        s = Sse(inst, "/v1/leaderboards/%s/live?top=3" % b)
        assert s.status == 200
        s.event()
        streams.append(s)
    wait_for(lambda: fds() <= base + 60 + 4, "one descriptor per stream (%d for 60 over %d)" % (fds(), base), 10)
    for s in streams:
        s.close()
    wait_for(lambda: fds() <= base + 4, "the closed streams' descriptors given back (%d over %d)" % (fds(), base), 10)
    adm.close()


def test_streams_and_connections_are_held_under_the_descriptor_limit(rankd_factory):
    """A stream's taken socket is a descriptor libmicrohttpd no longer counts: live.max_listeners
    is held under RLIMIT_NOFILE as http.max_connections is (both lowered to the limit less 256), and
    when the two together pass it the log says so, with the limit that fits both (before: neither
    was said, and the listeners' limit stayed past what the process could open)."""
    import resource
    inst = rankd_factory(env={"RANKD_LIVE_MAX_LISTENERS": "1000", "RANKD_LIVE_MAX_LISTENERS_PER_ADDRESS": "1000",
                              "RANKD_LIVE_HEARTBEAT_S": "300"}, start=False)
    inst.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (560, 560))
    inst.start()
    log = inst.stderr_text()
    assert "http.max_connections 4096 or live.max_listeners 1000 does not fit the 560 descriptors allowed: 304 and 304" \
        in log, log[-2000:]
    assert "http.max_connections 304 and live.max_listeners 304 together pass the 560 descriptors allowed (304 for " \
        "clients): when both fill, new connections fail; raise the limit to 864" in log, log[-2000:]
    b = create_board(inst.client(ADMIN_KEY))["id"]
    streams = []
    try:
        for _ in range(304):
            s = Sse(inst, "/v1/leaderboards/%s/live?top=3" % b)
            assert s.status == 200
            streams.append(s)
        over = Sse(inst, "/v1/leaderboards/%s/live?top=3" % b)
        assert over.status == 503 and over.error_body()["error"]["code"] == "unavailable"
        over.close()
    finally:
        for s in streams:
            s.close()
