"""Per-client rate limits (API.md, "Rate limits"): a client over its bucket gets 429
`rate_limited` with Retry-After and the RateLimit-* headers while another client is unaffected;
reads and writes have buckets of their own; a scores:batch takes one token per item; a client
without a key is counted by its address; probes and /metrics are never limited. The buckets' clock is pinned by the test (the test clock
file's third number): a token comes back only when the test moves it, so every count is exact."""
import json
import os
import re

LIMITS = {"limits": {"reads_per_s": 2, "writes_per_s": 2, "burst": 5}}

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, Client, assert_error, batch, create_board, metric, submit, unique,
                      wait_for)



class BucketClock:
    """The test clock file with the rate buckets' clock pinned at `at_ms` (wall clock unmoved)."""

    def __init__(self, root, at_ms=10 ** 9):
        self.path = os.path.join(root, "bucket-clock-%s" % unique("c"))
        self.set(at_ms)

    def set(self, at_ms):
        self.at_ms = at_ms
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("0 0 %d" % at_ms)
        os.replace(tmp, self.path)  # rankd sees the whole line or the old one

    def advance(self, ms):
        self.set(self.at_ms + ms)

    def env(self):
        return {"RANKD_TEST_CLOCK_FILE": self.path}


def test_a_client_over_its_limit_gets_429_and_another_does_not(rankd_factory, tmp_root):
    clock = BucketClock(tmp_root)
    inst = rankd_factory(env=clock.env(), extra_config=LIMITS)
    adm, r1, r2, anon, w = (inst.client(k) for k in (ADMIN_KEY, READ_KEY, WRITE_KEY, None, WRITE_KEY))
    try:
        b = create_board(adm)["id"]
        path = "/v1/leaderboards/%s/entries" % b
        got = [r1.get(path) for _ in range(12)]
        ok = [r for r in got if r.status == 200]
        limited = [r for r in got if r.status == 429]
        # A burst of 5, and no token back while the clock stands: 5 pass, 7 are refused.
        assert [r.status for r in got] == [200] * 5 + [429] * 7, [r.status for r in got]
        assert [r.header("RateLimit-Limit") for r in got] == ["5"] * 12
        assert [int(r.header("RateLimit-Remaining")) for r in ok] == [4, 3, 2, 1, 0]
        assert_error(limited[0], 429)
        assert int(limited[0].header("Retry-After")) >= 1
        assert limited[0].header("RateLimit-Remaining") == "0"
        assert int(limited[0].header("RateLimit-Reset")) >= 1
        # Two seconds on, four tokens are back (2 a second), and no more.
        clock.advance(2000)
        wait_for(lambda: r1.get(path).status == 200, "the bucket's clock to move")
        assert [r1.get(path).status for _ in range(4)] == [200, 200, 200, 429]
        refused = len(limited) + 1
        # Another key, and a client without a key (its address), have buckets of their own.
        assert r2.get(path).status == 200
        assert anon.get(path).status == 200
        # Reads and writes apart: a client whose reads ran out still writes.
        wait_for(lambda: w.get(path).status == 429, "the write key's reads to run out", timeout=10)
        assert submit(w, b, "p1", 1).status == 200
        # Never limited: probes and metrics.
        for _ in range(10):
            assert r1.get("/healthz").status == 200
        assert sum(1 for line in r1.get("/metrics", key=ADMIN_KEY).body.decode().splitlines()
                   if line.startswith("rankd_rate_limited_total{kind=\"read\"} ") and float(line.split()[1]) >= refused) == 1
    finally:
        for c in (adm, r1, r2, anon, w):
            c.close()


def test_guessed_keys_draw_on_their_address_bucket(rankd_factory):
    """A wrong key is answered 401 while its address has reads left, then 429 like any other
    client over its limit: guessing keys is not a way around the limits. A valid key keeps its
    own bucket."""
    inst = rankd_factory(extra_config=LIMITS)
    guesser, r1 = inst.client("not-a-key"), inst.client(READ_KEY)
    try:
        got = [guesser.get("/v1/leaderboards").status for _ in range(12)]
        assert got[:5] == [401] * 5, got
        assert 429 in got and set(got) <= {401, 429}, got
        assert r1.get("/v1/leaderboards").status == 200
        # probes draw on no read bucket: a wrong key there is 401 past the read limit (only the
        # failed authentications' own throttle, 20 at once by default, could refuse them)
        for _ in range(5):
            assert guesser.get("/healthz").status == 401
    finally:
        guesser.close()
        r1.close()


def test_a_scores_batch_takes_one_token_per_item(rankd_factory, db, tmp_root):
    clock = BucketClock(tmp_root)
    inst = rankd_factory(env=clock.env(), extra_config=LIMITS)
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(adm)["id"]
        before = db.submission_count(b)
        r = batch(w, [{"board": b, "player_id": "p%d" % i, "score": i} for i in range(4)])
        assert r.status == 200 and r.header("RateLimit-Remaining") == "1", r.describe()
        # 5 items, 1 token: refused whole, nothing written.
        r = batch(w, [{"board": b, "player_id": "q%d" % i, "score": i} for i in range(5)])
        assert_error(r, 429)
        assert db.submission_count(b) == before + 4, "a refused batch wrote something"
        # A full bucket (its 5) takes a batch of 5.
        clock.advance(10000)
        wait_for(lambda: batch(w, [{"board": b, "player_id": "r%d" % i, "score": i} for i in range(5)]).status
                 == 200, "a full bucket", timeout=10)
        assert db.submission_count(b) == before + 9
        # Half a second on: one token, which a submission takes.
        clock.advance(500)
        wait_for(lambda: submit(w, b, "probe", 1).status == 200, "a token again", timeout=10)
        written = db.submission_count(b)
        # With no token left a batch is refused at its headers ("retry in 1 s", its body unread)...
        over = [{"board": b, "player_id": "s%d" % i, "score": i} for i in range(6)]
        r = batch(w, over)
        assert_error(r, 429)
        assert "burst" not in r.json()["error"]["message"] and int(r.header("Retry-After")) >= 1, r.describe()
        # ...with one, its items are counted: more than the burst is refused for good.
        clock.advance(500)
        r = wait_for(lambda: (lambda r: r if "burst" in r.json()["error"]["message"] else None)(batch(w, over)),
                     "the batch's items to be counted", timeout=10)
        assert_error(r, 429)
        # No wait would be enough: no Retry-After (API.md), and the message names the burst.
        assert "burst of 5 writes" in r.json()["error"]["message"] and r.header("Retry-After") is None, r.describe()
        assert db.submission_count(b) == written, "a refused batch wrote something"
    finally:
        adm.close()
        w.close()


def test_a_batch_of_reads_takes_one_token_per_item(rankd_factory, tmp_root):
    """/v1/batch (issue 28): one read per item, not one per request; more items than the burst
    is refused at once, naming the burst, without a Retry-After no wait could honour."""
    clock = BucketClock(tmp_root)
    inst = rankd_factory(env=clock.env(), extra_config=LIMITS)
    adm, r1, g = inst.client(ADMIN_KEY), inst.client(READ_KEY), inst.client("not-a-key")
    try:
        b = create_board(adm)["id"]
        reads = lambda n: {"requests": [{"path": "/v1/leaderboards/%s/entries" % b}] * n}
        r = r1.post("/v1/batch", json_body=reads(4))
        assert r.status == 200 and r.header("RateLimit-Remaining") == "1", r.describe()
        r = r1.post("/v1/batch", json_body=reads(5))  # the burst, of which 1 is left
        assert_error(r, 429)
        assert int(r.header("Retry-After")) >= 1, r.describe()
        r = r1.post("/v1/batch", json_body=reads(6))
        assert_error(r, 429)
        msg = r.json()["error"]["message"]
        assert "burst of 5 reads" in msg and r.header("Retry-After") is None, r.describe()
        # A wrong key on /v1/batch draws on the address's bucket like any other guess.
        guesses = [g.post("/v1/batch", json_body=reads(1)).status for _ in range(8)]
        assert 429 in guesses and set(guesses) <= {401, 429}, guesses
    finally:
        for c in (adm, r1, g):
            c.close()


def test_without_limits_no_header(rankd_factory):
    inst = rankd_factory()
    c = inst.client(READ_KEY)
    try:
        r = c.get("/v1/leaderboards")
        assert r.status == 200 and r.header("RateLimit-Limit") is None
    finally:
        c.close()


def test_slow_clients_from_one_address_do_not_keep_others_out(rankd_factory):
    """A slowloris: 300 connections from 127.0.0.2 that send part of their headers and stop. With
    http.max_connections_per_ip 100, the ones past 100 are closed, and a client from another
    address (127.0.0.1) is answered at once, also while they hold on."""
    import socket
    import time

    inst = rankd_factory(extra_config={"http": {"max_connections_per_ip": 100}})
    held, refused = [], 0
    try:
        for _ in range(300):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", inst.port))
            s.sendall(b"GET /v1/leaderboards HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(s)
        # Those over the limit are closed by rankd: a read returns end of file (or a reset).
        deadline = time.time() + 10
        for s in held[100:]:
            s.settimeout(max(0.1, deadline - time.time()))
            try:
                refused += s.recv(1) == b""
            except ConnectionResetError:
                refused += 1
            except socket.timeout:
                pass
        assert refused >= 190, "only %d of the 200 connections over the limit were closed" % refused
        c = inst.client()
        r = c.get("/v1/leaderboards")  # answered, not queued behind them (the client's own timeout)
        assert r.status == 200, r.describe()
        c.close()
    finally:
        for s in held:
            s.close()


def test_a_client_that_keeps_sending_past_its_limit_gets_its_refusals_late(rankd_factory, tmp_root):
    """Issue 28: a client that ignores Retry-After (here: no key, reads at 1/s, burst 1) was
    answered 429 as fast as it asked, thousands a second per connection. From its eighth refusal
    in a row each 429 waits http.refusal_delay_ms, its connection suspended (a gauge shows it);
    it is then sent whole (a GET's, and a batch's whose body was never read) and the connection
    closed. The buckets' clock is pinned: no token comes back however long the test takes (a
    token back would let a request through and end the refusals in a row). The hold is long
    enough for the test to see the gauge and the silence before the answer, under load too."""
    import socket
    from conftest import metric
    clock = BucketClock(tmp_root)
    inst = rankd_factory(env=clock.env(),
                         extra_config={"limits": {"reads_per_s": 1, "burst": 1}, "http": {"refusal_delay_ms": 2000}})
    c = inst.client()
    try:
        got = [c.get("/v1/leaderboards").status for _ in range(8)]
        assert got.count(429) >= 7 and metric(inst, "rankd_http_refusals_delayed_total") == 0, got

        def parked(request):
            s = socket.create_connection(("127.0.0.1", inst.port), timeout=20)
            s.sendall(request)
            wait_for(lambda: metric(inst, "rankd_http_refusals_waiting") == 1, "the refusal held back", 5)
            s.setblocking(False)
            try:
                assert s.recv(1) == b"", "an answer while the refusal is held back"
            except BlockingIOError:
                pass  # nothing yet: as it should be
            s.setblocking(True)
            out = b""
            while b"\r\n\r\n" not in out:
                chunk = s.recv(65536)
                assert chunk, "closed without an answer"
                out += chunk
            head, _, body = out.partition(b"\r\n\r\n")
            n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < n:
                body += s.recv(65536)
            return s, head, body

        s, head, body = parked(b"GET /v1/leaderboards HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 429") and b"Retry-After: " in head, head
        assert json.loads(body)["error"]["code"] == "rate_limited"
        # Then the connection is closed: the next try pays for a new one.
        assert re.search(rb"(?i)\r\nconnection: *close", head) and s.recv(65536) == b"", head
        s.close()
        batch_body = json.dumps({"requests": [{"path": "/v1/leaderboards"}] * 3}).encode()
        s, head, body = parked(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (len(batch_body), batch_body))
        assert head.startswith(b"HTTP/1.1 429"), head
        s.close()
        assert metric(inst, "rankd_http_refusals_delayed_total") == 2
    finally:
        c.close()


def test_strong_reads_without_the_privilege_are_throttled_like_wrong_keys(rankd_factory):
    """Issue 34: a flood of consistency=strong reads without a write key is refused before any
    work, but at 50-60k a second the refusals alone doubled the writes' p99. Each such refusal
    draws on its address's bucket of refusals (limits.failed_auths_per_s, on whatever the other
    limits say): 403 for the burst, then 429 with Retry-After, held back like a wrong key's. A
    write key's strong read from the same address and another address's refusals are not."""
    inst = rankd_factory(env={"RANKD_LIMIT_FAILED_AUTHS_PER_S": "2"})
    admin, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    anon, reader = inst.client(None), inst.client(READ_KEY)
    other = Client("127.0.0.1", inst.port, None, source="127.0.0.2")
    try:
        bid = create_board(admin)["id"]
        path = "/v1/leaderboards/%s/entries?consistency=strong" % bid
        forbidden0 = metric(inst, "rankd_strong_forbidden_total")
        got = [(anon if i % 2 else reader).get(path) for i in range(12)]
        assert [r.status for r in got[:8]] == [403] * 8, [r.describe() for r in got]
        late = [r for r in got[8:] if r.status == 429]   # a token refills each 500 ms
        assert len(late) >= 3 and all(r.status in (403, 429) for r in got[8:]), [r.describe() for r in got]
        r = late[-1]
        assert int(r.header("Retry-After")) >= 1, r.describe()
        assert "strong reads without a write or admin key" in r.json()["error"]["message"], r.describe()
        assert w.get(path).status == 200                      # the privilege, from the same address
        assert anon.get("/v1/leaderboards/%s/entries" % bid).status == 200   # plain reads are not held
        assert_error(other.get(path), 403, field="consistency")  # another address has its own budget
        assert metric(inst, "rankd_strong_forbidden_total") == forbidden0 + 13
        assert metric(inst, "rankd_auth_throttled_total") >= 3
        wait_for(lambda: "strong reads without a write or admin key from 127.0.0.1 are over their limit"
                 in inst.stderr_text(), "the throttle's log line")
        # One that goes on past Retry-After has its refusals held back (http.refusal_delay_ms).
        delayed0 = metric(inst, "rankd_http_refusals_delayed_total")
        for _ in range(12):
            anon.get(path)
            if metric(inst, "rankd_http_refusals_delayed_total") > delayed0:
                break
        assert metric(inst, "rankd_http_refusals_delayed_total") > delayed0
        wait_for(lambda: anon.get(path).status == 403, "the budget to refill", timeout=10)
    finally:
        for c in (admin, w, anon, reader, other):
            c.close()


def test_wrong_keys_are_throttled_per_address_whatever_the_limits(rankd_factory):
    """API.md: failed authentications are throttled per client whatever the limits, counted, and
    logged without the key. With limits.* off (the default), an address that sends wrong keys
    gets 401 for a burst of four seconds' worth (limits.failed_auths_per_s, 2 here: 8), then 429
    with Retry-After, on every route, probes included; another address and a right key from the
    same one are not held back."""
    inst = rankd_factory(env={"RANKD_LIMIT_FAILED_AUTHS_PER_S": "2"})
    guess = "guessed-key-" + unique("k")
    g, ok = inst.client(guess), inst.client(READ_KEY)
    other = Client("127.0.0.1", inst.port, guess, source="127.0.0.2")
    try:
        failed0 = metric(inst, "rankd_auth_failures_total")
        got = [g.get(path).status for path in ["/v1/leaderboards", "/healthz", "/v1/leaderboards/x/entries"] * 5]
        assert got[:8] == [401] * 8 and got[8:].count(429) >= len(got) - 10, got
        r = g.get("/v1/leaderboards")
        assert_error(r, 429)
        assert int(r.header("Retry-After")) >= 1 and "failed authentications" in r.json()["error"]["message"]
        assert ok.get("/v1/leaderboards").status == 200  # a right key from the same address
        assert other.get("/v1/leaderboards").status == 401  # another address has its own budget
        assert metric(inst, "rankd_auth_failures_total") >= failed0 + len(got) + 2
        assert metric(inst, "rankd_auth_throttled_total") >= got.count(429) + 1
        wait_for(lambda: "failed authentications from 127.0.0.1 are over their limit" in inst.stderr_text(),
                 "the throttle's log line")
        assert guess not in inst.stderr_text()
        # the bucket refills: a wrong key is 401 again after Retry-After
        wait_for(lambda: g.get("/v1/leaderboards").status == 401, "the budget to refill", timeout=10)
    finally:
        for c in (g, ok, other):
            c.close()
