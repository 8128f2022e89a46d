"""The front door (issue 28): the client rankd names behind a load balancer. With
http.proxy_protocol every connection must begin with a PROXY header (v1 or v2), and the client it
names is the one rate limits, connection limits and logs use; X-Forwarded-For is believed only
from http.trusted_proxies. (HAProxy itself, as deploy/haproxy.cfg ships it: test_deploy.py.)"""
import json
import os
import signal
import socket
import struct
import subprocess
import time

from conftest import (ADMIN_KEY, PAGE_READ_SQL, RANKD_BIN, Client, assert_error, make_config, metric, proxy_v1, rankd_env,
                      to_yaml, wait_for)

LIMITS = {"limits": {"reads_per_s": 1, "burst": 3}}


def unread_by_server(port, peer_port):
    """Bytes waiting in the receive queue of the server's end of the loopback connection from
    peer_port to port (/proc/net/tcp's rx_queue); None while the kernel lists no such socket."""
    want_local, want_remote = "0100007F:%04X" % port, "0100007F:%04X" % peer_port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want_local and fields[2] == want_remote:
                return int(fields[4].split(":")[1], 16)
    return None


def proxy_v2(client_ip, client_port=40000, server_ip="127.0.0.1", server_port=80):
    """A PROXY protocol v2 header (PROXY command, TCP over IPv4)."""
    body = socket.inet_aton(client_ip) + socket.inet_aton(server_ip) + struct.pack("!HH", client_port, server_port)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def read_until_limited(c, path="/v1/leaderboards", most=20):
    got = []
    for _ in range(most):
        got.append(c.get(path).status)
        if got[-1] == 429:
            return got
    raise AssertionError("never limited: %s" % got)


def raw_exchange(port, data, timeout=10):
    """Connect, send `data`, and read until the server closes: what it answered (b"" for a
    connection closed without a word)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def test_the_proxy_protocol_names_the_client(rankd_factory):
    inst = rankd_factory(env={"RANKD_PROXY_PROTOCOL": "true"},
                         extra_config=dict(LIMITS, http={"max_connections_per_ip": 2}))
    a = Client("127.0.0.1", inst.port, proxy_header=proxy_v1("203.0.113.1"))
    b = Client("127.0.0.1", inst.port, proxy_header=proxy_v2("203.0.113.2"))
    c6 = Client("127.0.0.1", inst.port, proxy_header=b"PROXY TCP6 2001:db8::7 ::1 40000 80\r\n")
    try:
        # One client over its limit; the others, all on the same TCP peer, are not.
        got = read_until_limited(a)
        assert got[:3] == [200] * 3, got
        assert_error(a.get("/v1/leaderboards"), 429)
        assert b.get("/v1/leaderboards").status == 200
        assert c6.get("/v1/leaderboards").status == 200
        read_until_limited(b)
        # The access log names the client the header named.
        wait_for(lambda: "from 203.0.113.2" in inst.stderr_text() and "from 2001:db8::7" in inst.stderr_text(),
                 "the access log to name the proxied clients")
        # The header is not optional: a request without it is closed unanswered, and so is a
        # header that is not one.
        assert raw_exchange(inst.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == b""
        assert raw_exchange(inst.port, b"PROXY TCP4 nonsense\r\nGET /healthz HTTP/1.1\r\n\r\n") == b""
        # A header in pieces is waited for; the request after it is answered.
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=10)
        try:
            line = proxy_v1("203.0.113.9")
            s.sendall(line[:9])
            # apart on the wire: rankd has taken the first piece off its socket before the rest
            peer = s.getsockname()[1]
            wait_for(lambda: unread_by_server(inst.port, peer) == 0, "rankd to read the header's first piece")
            s.sendall(line[9:] + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = read_to_close(s)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        finally:
            s.close()
        # A header that never ends is given 5 s.
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=15)
        try:
            t0 = time.time()
            s.sendall(b"PROXY TCP4 203.0.113.")
            assert s.recv(100) == b""
            took = time.time() - t0
            assert 4 <= took <= 12, took
        finally:
            s.close()
        # The per-address connection limit counts the named client: two connections of
        # 203.0.113.5 are its most, while another client still connects.
        held = [Client("127.0.0.1", inst.port, proxy_header=proxy_v1("203.0.113.5")) for _ in range(2)]
        try:
            for h in held:
                assert h.get("/healthz").status == 200
            assert raw_exchange(inst.port, proxy_v1("203.0.113.5") + b"GET /healthz HTTP/1.1\r\n\r\n") == b""
            other = raw_exchange(inst.port, proxy_v1("203.0.113.6") + b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert other.startswith(b"HTTP/1.1 200"), other[:200]
        finally:
            for h in held:
                h.close()
        assert "http.proxy_protocol is on" in inst.stderr_text()
    finally:
        for cl in (a, b, c6):
            cl.close()


def exchange_from(source, port, data, timeout=10):
    """raw_exchange from local address `source` (any 127.x.y.z is this machine)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def test_a_proxy_header_is_believed_from_trusted_proxies_only(rankd_factory):
    """Issue 49 item 5: with http.trusted_proxies set, only those peers may send a PROXY header
    (as nginx's set_real_ip_from); a connection from any other peer is closed unread, so nobody
    who reaches the port picks the address they are limited and logged as. The list is the
    live one: a reload changes it."""
    http = {"proxy_protocol": True, "trusted_proxies": ["10.0.0.0/8", "127.0.0.1/32"]}
    inst = rankd_factory(extra_config={"http": http})
    get = b"GET /v1/leaderboards HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    # 127.0.0.2 is not trusted: its header naming 198.51.100.7 is not believed, nothing answered.
    assert exchange_from("127.0.0.2", inst.port, proxy_v1("198.51.100.7") + get) == b""
    # 127.0.0.1 is: the client its header names is served and logged as such.
    ok = exchange_from("127.0.0.1", inst.port, proxy_v1("198.51.100.8") + get)
    assert ok.startswith(b"HTTP/1.1 200"), ok[:200]
    wait_for(lambda: "from 198.51.100.8" in inst.stderr_text(), "the trusted proxy's client in the access log")
    wait_for(lambda: "not one of http.trusted_proxies" in inst.stderr_text(), "the refusal logged")
    refusal = [ln for ln in inst.stderr_text().splitlines() if "not one of http.trusted_proxies" in ln]
    assert "127.0.0.2" in refusal[0], refusal
    assert "198.51.100.7" not in inst.stderr_text()
    # The setting, by a reload: trusted_proxies 10.0.0.0/8 alone; now 127.0.0.1 is refused.
    cfg = make_config(inst.port, inst.db.dsn, inst.redis_url or None, extra={"http": dict(http, trusted_proxies=["10.0.0.0/8"])})
    with open(inst.config_path, "w") as f:
        f.write(to_yaml(cfg))
    os.kill(inst.proc.pid, signal.SIGHUP)
    wait_for(lambda: "1 trusted proxies" in inst.stderr_text(), "the reload")
    def refused():
        assert exchange_from("127.0.0.1", inst.port, proxy_v1("198.51.100.9") + get) == b""
    refused()
    # Logged at most once a second: refused again until the line comes.
    wait_for(lambda: any("not one of http.trusted_proxies" in ln and "127.0.0.1" in ln
                         for ln in inst.stderr_text().splitlines()), "the second refusal logged", poke=refused,
             every=0.1)
    assert "198.51.100.9" not in inst.stderr_text()


def proxy_v1_tcp6(client_ip):
    """A PROXY protocol v1 line naming an IPv6 client (or an IPv4-mapped one)."""
    return ("PROXY TCP6 %s ::1 40000 80\r\n" % client_ip).encode()


def test_an_ipv6_64_is_one_address_to_the_per_address_limits(rankd_factory):
    """A client given a /64 holds 2^64 addresses: the rate limits and the connections held
    waiting for their first request count its /64 as one address, and an IPv4-mapped address
    as its IPv4 address. The access log still names each address whole."""
    inst = rankd_factory(env={"RANKD_PROXY_PROTOCOL": "true"},
                         extra_config=dict(LIMITS, http={"max_connections_per_ip": 2}))
    one = Client("127.0.0.1", inst.port, proxy_header=proxy_v1_tcp6("2001:db8:1:2::7"))
    same64 = Client("127.0.0.1", inst.port, proxy_header=proxy_v1_tcp6("2001:db8:1:2:ffff::9"))
    other64 = Client("127.0.0.1", inst.port, proxy_header=proxy_v1_tcp6("2001:db8:1:3::7"))
    v4 = Client("127.0.0.1", inst.port, proxy_header=proxy_v1("203.0.113.40"))
    mapped = Client("127.0.0.1", inst.port, proxy_header=proxy_v1_tcp6("::ffff:203.0.113.40"))
    held = []
    try:
        read_until_limited(one)
        assert_error(same64.get("/v1/leaderboards"), 429)
        assert other64.get("/v1/leaderboards").status == 200
        read_until_limited(v4)
        assert_error(mapped.get("/v1/leaderboards"), 429)
        wait_for(lambda: "from 2001:db8:1:2::7" in inst.stderr_text() and "from 2001:db8:1:2:ffff::9" in
                 inst.stderr_text(), "the access log to name each address whole")
        # Two connections of the /64 wait for their first request (their PROXY header sent,
        # nothing after): a third of the same /64 that waits too is closed; one of another /64
        # is held like them.
        for host in ("2001:db8:1:2::a", "2001:db8:1:2::b"):
            s = socket.create_connection(("127.0.0.1", inst.port), timeout=10)
            s.sendall(proxy_v1_tcp6(host))
            held.append(s)
        wait_for(lambda: metric(inst, "rankd_http_connections_awaiting_request") == 2, "two connections held")
        assert raw_exchange(inst.port, proxy_v1_tcp6("2001:db8:1:2::c")) == b""
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=10)
        s.sendall(proxy_v1_tcp6("2001:db8:1:4::c"))
        held.append(s)
        wait_for(lambda: metric(inst, "rankd_http_connections_awaiting_request") == 3, "another /64's connection held")
    finally:
        for s in held:
            s.close()
        for cl in (one, same64, other64, v4, mapped):
            cl.close()


def test_x_forwarded_for_is_believed_from_trusted_proxies_only(rankd_factory):
    # 127.0.0.2 is the proxy (any 127.x address is this machine); 127.0.0.1 is not trusted.
    inst = rankd_factory(extra_config=dict(LIMITS, http={"trusted_proxies": ["127.0.0.2/32", "10.0.0.0/8"]}))

    one, two = (Client("127.0.0.1", inst.port, source="127.0.0.2") for _ in range(2))
    direct = Client("127.0.0.1", inst.port)
    try:
        xff1 = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1, 10.1.1.1"}  # spoofed, client, inner proxy
        xff2 = {"X-Forwarded-For": "198.51.100.2"}
        got = []
        while not got or got[-1] != 429:
            got.append(one.get("/v1/leaderboards", headers=xff1).status)
            assert len(got) < 20, got
        assert two.get("/v1/leaderboards", headers=xff2).status == 200
        # The same client through the proxy on another connection: the same bucket.
        assert two.get("/v1/leaderboards", headers={"X-Forwarded-For": "198.51.100.1"}).status == 429
        wait_for(lambda: "from 198.51.100.1" in inst.stderr_text() and "from 198.51.100.2" in inst.stderr_text(),
                 "the access log to name the forwarded clients")
        # From a peer not trusted, the header is ignored: every value is the peer's own bucket.
        seen = [direct.get("/v1/leaderboards", headers={"X-Forwarded-For": "192.0.2.%d" % i}).status
                for i in range(8)]
        assert 429 in seen, seen
        assert "from 192.0.2." not in inst.stderr_text()
    finally:
        for cl in (one, two, direct):
            cl.close()


def test_proxy_settings_are_checked(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("postgres:\n  primary: \"postgresql://x@127.0.0.1:1/x\"\n"
                   "http:\n  trusted_proxies: [\"10.0.0.0/33\"]\n  proxy_protocol: maybe\n")
    r = subprocess.run([RANKD_BIN, "config", "check", "-c", str(cfg)], capture_output=True, text=True,
                       env=rankd_env({}))
    assert r.returncode != 0
    assert "http.trusted_proxies" in r.stderr and "10.0.0.0/33" in r.stderr, r.stderr
    assert "http.proxy_protocol" in r.stderr, r.stderr
    assert ":4:" in r.stderr, r.stderr


def test_cors_varies_on_origin_and_exposes_the_rate_limit_headers(rankd_factory):
    """With a CORS list, every /v1/ answer carries Vary: Origin, with or without an Origin (a CDN
    must not hand a browser the variant made without one); "*" is answered as "*"; the
    RateLimit-* headers are readable by the page."""
    from conftest import CORS_ORIGIN
    listed = rankd_factory(extra_config=LIMITS)  # the tests' configuration lists CORS_ORIGIN
    wildcard = rankd_factory(extra_config={"http": {"cors_origins": ["*"]}})
    none = rankd_factory(extra_config={"http": {"cors_origins": []}})
    a, w, n = listed.client(), wildcard.client(), none.client()
    try:
        r = a.get("/v1/leaderboards")
        assert r.status == 200 and "origin" in r.header_tokens("Vary"), r.headers
        assert r.header("Access-Control-Allow-Origin") is None
        r = a.get("/v1/leaderboards", headers={"Origin": CORS_ORIGIN})
        assert r.header("Access-Control-Allow-Origin") == CORS_ORIGIN
        exposed = set(r.header_tokens("Access-Control-Expose-Headers"))
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"} <= exposed, r.headers
        r = w.get("/v1/leaderboards", headers={"Origin": "https://anywhere.example"})
        assert r.header("Access-Control-Allow-Origin") == "*", r.headers
        assert "origin" in w.get("/v1/leaderboards").header_tokens("Vary")
        # No list: nothing varies on an Origin that is never allowed... unless one is sent.
        r = n.get("/v1/leaderboards")
        assert "origin" not in r.header_tokens("Vary") and r.header("Access-Control-Allow-Origin") is None
        r = n.get("/v1/leaderboards", headers={"Origin": CORS_ORIGIN})
        assert r.header("Access-Control-Allow-Origin") is None
    finally:
        for c in (a, w, n):
            c.close()



def test_errors_state_the_rule(rankd):
    """Issue 28: each 400 says what is allowed, not only that a value was wrong."""
    from conftest import ADMIN_KEY, create_board
    adm, c = rankd.client(ADMIN_KEY), rankd.client()
    try:
        b = create_board(adm)["id"]
        weekly = create_board(adm, reset="weekly")["id"]

        def message(path, field, **kw):
            r = c.get(path) if not kw else adm.request(kw["method"], path, json_body=kw["body"])
            assert_error(r, 400, field=field)
            return r.json()["error"]["message"]
        assert message("/v1/leaderboards/%s/entries?limit=0" % b, "limit") == "limit must be a whole number 1..1000"
        assert message("/v1/leaderboards?limit=1001", "limit") == "limit must be a whole number 1..1000"
        assert message("/v1/leaderboards/%s/players/p1/around?before=101" % b, "before") == \
            "before must be a whole number 0..100"
        first = c.get("/v1/leaderboards/%s/entries?limit=1" % b)
        assert first.status == 200
        assert "cannot be used together" in message("/v1/leaderboards/%s/entries?offset=1&cursor=x" % b, "offset")
        assert "next_cursor" in message("/v1/leaderboards/%s/entries?cursor=nonsense" % b, "cursor")
        # 2026-11-24 is a Tuesday: the message names the rule and the window holding that day.
        msg = message("/v1/leaderboards/%s/entries?window=2026-11-24" % weekly, "window")
        assert "Mondays" in msg and "window=2026-11-23" in msg, msg
        assert "YYYY-MM-DD" in message("/v1/leaderboards/%s/entries?window=yesterday" % b, "window")
        msg = message("/v1/leaderboards/" + b, "sort", method="PATCH", body={"sort": "asc"})
        assert "sort cannot be changed" in msg and "title, metadata, client_writes and client_rules" in msg, msg
        msg = message("/v1/leaderboards/" + b, "colour", method="PATCH", body={"colour": "red"})
        assert msg == "unknown field colour: the fields of this body are title, metadata, client_writes, client_rules", msg
    finally:
        adm.close()
        c.close()


def test_logs_read_well(rankd_factory, tmp_root):
    """Issue 28's log items: Redis down is said once (then once a minute), not every second, and
    its return is said; a reload's file errors are JSON log lines with file:line:column; the
    reload line names the log level; requests no route matched reach /metrics."""
    import json
    import os
    import signal
    from conftest import RedisServer, metric
    redis = RedisServer(tmp_root, name="redis-logs")
    redis.start()
    inst = rankd_factory(redis=redis.url(0))
    c = inst.client()
    try:
        assert c.get("/v1/leaderboards").status == 200
        before = metric(inst, "rankd_redis_connect_failures_total")
        redis.stop()
        # Redis is retried every second: wait for four failed attempts, said once.
        wait_for(lambda: metric(inst, "rankd_redis_connect_failures_total") >= before + 4,
                 "four failed attempts to reconnect", timeout=30)
        said = [l for l in inst.stderr_text().splitlines() if "cannot connect" in l]
        assert len(said) == 1, said
        redis.start()  # the same port
        wait_for(lambda: "connected again" in inst.stderr_text(), "rankd to say Redis is back", timeout=30)

        # A reload of a file with an error: the error is a JSON line naming file:line:column.
        with open(inst.config_path) as f:
            good = f.read()
        with open(inst.config_path, "w") as f:
            f.write(good + "log_level: loud\n")
        os.kill(inst.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload of" in inst.stderr_text(), "the reload to be refused")
        with open(inst.config_path, "w") as f:
            f.write(good)
        os.kill(inst.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reloaded " in inst.stderr_text(), "the reload")
        lines = [l for l in inst.stderr_text().splitlines() if l.strip()]
        parsed = []
        for l in lines:
            if l.startswith("=="):  # a sanitizer's own lines are not rankd's log
                continue
            parsed.append(json.loads(l))  # every line is a JSON object
        errors = [p["msg"] for p in parsed if p["level"] == "error" and p["msg"].startswith("reload: ")]
        assert any("%s:" % inst.config_path in m and "log_level" in m for m in errors), errors
        reloaded = [p["msg"] for p in parsed if p["msg"].startswith("reloaded ")]
        assert reloaded and reloaded[-1].endswith("log level info"), reloaded

        # No route: counted too, and its log line names the client (it said "from ?").
        assert c.get("/v1/no/such/route").status == 404
        text = c.get("/metrics", key=ADMIN_KEY).body.decode()
        assert 'rankd_http_requests_total{route="unmatched",code="4xx"}' in text, text[:2000]
        wait_for(lambda: "GET /v1/no/such/route 404" in inst.stderr_text(), "the 404's log line")
        line = next(l for l in inst.stderr_text().splitlines() if "GET /v1/no/such/route 404" in l)
        assert "from 127.0.0.1" in line, line
    finally:
        c.close()
        redis.stop()


def test_a_batch_whose_answer_would_be_too_big_is_refused(rankd_factory):
    """Issue 28: a /v1/batch answer has a cap (http.batch_response_limit); a batch that would
    pass it is a clear 400 naming the cap, not tens of megabytes built and compressed."""
    from conftest import ADMIN_KEY, WRITE_KEY, batch, create_board
    inst = rankd_factory(extra_config={"http": {"batch_response_limit": 65536}})
    adm, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()
    try:
        b = create_board(adm)["id"]
        r = batch(w, [{"board": b, "player_id": "p%03d" % i, "score": i, "metadata": {"note": "x" * 300}}
                      for i in range(200)])
        assert r.status == 200, r.describe()
        page = {"path": "/v1/leaderboards/%s/entries?limit=1000" % b}  # ~70 KB each
        small = c.post("/v1/batch", json_body={"requests": [{"path": "/v1/leaderboards/%s/entries?limit=5" % b}] * 3})
        assert small.status == 200 and len(small.json()["responses"]) == 3, small.describe()
        big = c.post("/v1/batch", json_body={"requests": [page] * 5})
        assert_error(big, 400, field="requests")
        msg = big.json()["error"]["message"]
        assert "65536 bytes" in msg and "http.batch_response_limit" in msg and "at item 1 of 5" in msg, msg
    finally:
        for x in (adm, w, c):
            x.close()


def test_request_bodies_are_bounded_per_address(rankd_factory):
    """Issue 28: the bytes of request bodies one address has rankd buffer at once are bounded
    (http.body_bytes_per_ip): its third 1 MB body in flight is refused with 429 and Retry-After,
    while another address sends its own; once the first two are gone, the address may send
    again."""
    from conftest import WRITE_KEY
    inst = rankd_factory(extra_config={"http": {"batch_body_limit": 1048576, "body_bytes_per_ip": 2200000,
                                                "connection_timeout_s": 3}})

    def start_body(source):
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=10, source_address=(source, 0))
        s.sendall(("POST /v1/scores:batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n" % WRITE_KEY).encode())
        s.sendall(b"{" + b" " * 200000)  # part of it; the rest never comes
        return s

    def answer(s):
        out = b""
        while b"\r\n\r\n" not in out or not out.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out
    held = [start_body("127.0.0.2"), start_body("127.0.0.2")]
    try:
        # Each is buffered at its announced length once it goes past 64 KiB: wait until both are.
        wait_for(lambda: metric_bodies(inst) >= 2000000, "the two bodies to be buffered")
        third = start_body("127.0.0.2")
        try:
            got = answer(third)
            assert got.startswith(b"HTTP/1.1 429"), got[:300]
            assert b"Retry-After: 1" in got and b"http.body_bytes_per_ip" in got, got[:600]
        finally:
            third.close()
        other = start_body("127.0.0.3")  # another address: its own budget
        other.close()
    finally:
        for s in held:
            s.close()
    # Given back as each connection ends: closed by its client, or idle past connection_timeout_s.
    wait_for(lambda: metric_bodies(inst) == 0, "the bodies' bytes to be given back")
    c = Client("127.0.0.1", inst.port, WRITE_KEY, source="127.0.0.2")
    try:
        r = c.post("/v1/scores:batch", json_body={"scores": [{"board": "nope", "player_id": "p", "score": 1}]})
        assert r.status == 200, r.describe()  # taken (its item is a 404 of its own)
    finally:
        c.close()


def metric_bodies(inst):
    from conftest import metric
    return metric(inst, "rankd_http_body_bytes")


def test_a_request_line_over_8_kib_is_414_with_the_json_error(rankd):
    """Issue 28: a request line over 8 KiB is 414 (it was 431 "headers are larger than 8192
    bytes"), with the JSON error object, up to what libmicrohttpd buffers (16 KiB)."""
    from conftest import raw_request
    r = raw_request("127.0.0.1", rankd.port, ("GET /v1/leaderboards?pad=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                                              % ("a" * 9000)).encode())
    assert_error(r, 414, field="path")
    assert "request line is longer than 8192 bytes" in r.json()["error"]["message"]
    # Headers over 8 KiB with a short request line stay 431.
    r = raw_request("127.0.0.1", rankd.port, ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n"
                                              % ("a" * 9000)).encode())
    assert_error(r, 431)


def read_to_close(s):
    """Every byte the server sends on socket s until it closes (at most 64 KiB)."""
    got = b""
    while len(got) < 65536:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def first_refused(inst, status):
    """rankd_http_first_requests_refused_total{status=...} of inst's /metrics."""
    from conftest import ADMIN_KEY
    body = inst.client(ADMIN_KEY).get("/metrics").body.decode()
    line = 'rankd_http_first_requests_refused_total{status="%d"} ' % status
    return int(next(x for x in body.splitlines() if x.startswith(line)).split()[-1])


# What libmicrohttpd 0.9.75 answered with an HTML page of its own (or, for the first, by closing
# the connection without a word, and for Transfer-Encoding: gzip by waiting for a body it could
# not frame), and what each gets now: (request, status, field, words of the message).
LIBRARY_ERRORS = {
    "garbage": (b"GARBAGE\r\n\r\n", 400, None, "METHOD TARGET HTTP/1.1"),
    "no version": (b"GET /v1/leaderboards\r\nHost: x\r\n\r\n", 400, None, "METHOD TARGET HTTP/1.1"),
    "HTTP/2.0": (b"GET /v1/leaderboards HTTP/2.0\r\nHost: x\r\n\r\n", 505, None, "HTTP/1.0 and HTTP/1.1"),
    "HTTP/0.9": (b"GET /v1/leaderboards HTTP/0.9\r\n\r\n", 505, None, "HTTP/1.0 and HTTP/1.1"),
    "no colon": (b"GET /v1/leaderboards HTTP/1.1\r\nHost: x\r\nBadHeaderLine\r\n\r\n", 400, "headers", "Name: value"),
    "headers over 16 KiB": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n", 431,
                            "headers", "larger than 8192 bytes"),
    "request line over 16 KiB": (b"GET /v1/leaderboards?p=" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                                 "path", "longer than 8192 bytes"),
    "Content-Length not a number": (b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400,
                                    "Content-Length", "number of bytes"),
    "two Content-Lengths": (b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
                            400, "Content-Length", "one Content-Length"),
    "Transfer-Encoding gzip": (b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
                               "Transfer-Encoding", "chunked"),
    "both framings": (b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                      400, "Transfer-Encoding", "not both"),
    # libmicrohttpd took these and framed them otherwise than a proxy would: the body of the
    # first was read as a second request (a request smuggled past the proxy's checks)
    "space before the colon": (b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length : 44\r\n\r\n"
                               b"GET /v1/leaderboards HTTP/1.1\r\nHost: x\r\n\r\n", 400, "headers",
                               "no space before the colon"),
    "a folded header": (b"GET /v1/leaderboards HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n", 400, "headers",
                        "folded"),
}


def test_requests_the_http_library_cannot_take_get_the_json_error(rankd):
    """Issue 28, API.md: every error is the JSON error object, those the HTTP library would answer
    itself included. libmicrohttpd answered these with its own HTML (or nothing); the acceptor
    now reads a connection's first request head before it does and answers them, counted by
    status in /metrics, the connection closed after the answer (a FIN, not a reset)."""
    from conftest import raw_request
    before = {st: first_refused(rankd, st) for st in (400, 414, 431, 505)}
    for name, (data, status, field, words) in LIBRARY_ERRORS.items():
        r = raw_request("127.0.0.1", rankd.port, data)
        assert r.status == status, (name, r.describe())
        assert r.header("Content-Type") == "application/json", (name, r.headers)
        assert r.header("Connection") == "close" and r.header("X-Content-Type-Options") == "nosniff", name
        assert r.header("Date"), name
        err = r.json()["error"]
        assert err["code"] == "invalid_argument" and words in err["message"], (name, err)
        assert err.get("field") == field, (name, err)
    want = {st: sum(1 for v in LIBRARY_ERRORS.values() if v[1] == st) for st in before}
    assert {st: first_refused(rankd, st) - before[st] for st in before} == want
    # Requests the library takes are still its: a later HTTP/1.x, HTTP/1.0, bare line feeds.
    for data in (b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n", b"GET /healthz HTTP/1.0\r\n\r\n",
                 b"GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n"):
        assert raw_request("127.0.0.1", rankd.port, data).status == 200, data


def read_answer(s):
    """One answer on socket s: (status, headers with lower-case names, body), its body read by
    Content-Length (or to the close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed without an answer: %r" % data[:200])
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if "content-length" in headers:
        while len(body) < int(headers["content-length"]):
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    else:
        body += read_to_close(s)
    return int(lines[0].split(" ")[1]), headers, body


# A later request on a kept-alive connection reaches libmicrohttpd's parser, not the acceptor's:
# where the library refuses it itself, rankd answers in its place knowing only the status (a
# malformed line or Content-Length gets the rules of all three, without a field). Two it does
# not refuse with a page (API.md): a request line without a space, which libmicrohttpd 0.9.75
# closes without a word, and a folded header line, which it joins onto the field's name.
LATER_FIELD = {"no colon": None, "Content-Length not a number": None}
CLOSED_WITHOUT_A_WORD = {"garbage"}
TAKEN = {"a folded header"}


def test_every_request_of_a_kept_alive_connection_gets_the_json_error(rankd):
    """Issue 49 item 18: after a first GET /healthz on a kept-alive connection, each request
    libmicrohttpd cannot take (a 20 KB header, HTTP/2.0, ...) or would frame otherwise than a
    proxy (two framings, a space before the colon) gets the JSON error object, not the library's
    HTML page, and the connection is closed after it. Before, the acceptor checked a
    connection's first request only: these got libmicrohttpd's 431 and 505 pages in HTML."""
    for name, (data, status, field, words) in LIBRARY_ERRORS.items():
        if name in TAKEN:
            continue
        with socket.create_connection(("127.0.0.1", rankd.port), timeout=15) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first, headers, _ = read_answer(s)
            assert first == 200 and headers.get("connection", "").lower() != "close", (name, first, headers)
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered before the whole request went: read what was said
            if name in CLOSED_WITHOUT_A_WORD:
                assert read_to_close(s) == b"", name  # no page, HTML or other
                continue
            got, headers, body = read_answer(s)
            assert got == status, (name, got, headers, body[:300])
            assert headers.get("content-type") == "application/json", (name, headers, body[:300])
            assert headers.get("connection") == "close" and headers.get("x-content-type-options") == "nosniff", \
                (name, headers)
            err = json.loads(body)["error"]
            assert err["code"] == "invalid_argument" and words in err["message"], (name, err)
            assert err.get("field") == LATER_FIELD.get(name, field), (name, err)
            assert read_to_close(s) == b"", name


def test_a_malformed_chunked_body_gets_the_json_error(rankd):
    """A chunk size that is not hexadecimal, on a new connection and after a first request on a
    kept-alive one: libmicrohttpd refuses it itself (it answered its own HTML page); rankd's JSON
    error goes in its place, and the connection is closed."""
    from conftest import WRITE_KEY
    for kept_alive in (False, True):
        with socket.create_connection(("127.0.0.1", rankd.port), timeout=15) as s:
            if kept_alive:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_answer(s)[0] == 200
            s.sendall(("POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: "
                       "application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n" % WRITE_KEY).encode())
            status, headers, body = read_answer(s)
            assert status == 400 and headers.get("content-type") == "application/json", (kept_alive, headers, body)
            assert headers.get("connection") == "close", headers
            err = json.loads(body)["error"]
            assert err["code"] == "invalid_argument" and "chunked body" in err["message"], err


def test_a_first_request_in_pieces_is_read_whole(rankd):
    """The acceptor waits for a head that comes in pieces (it is told when more has arrived, not
    at every turn), hands it over whole, and closes a connection whose client ends its side
    before the head did, without an answer."""
    s = socket.create_connection(("127.0.0.1", rankd.port), timeout=10)
    try:
        pieces = (b"GET /heal", b"thz HTTP/1.1\r\nHo", b"st: x\r\nConnection: close\r\n", b"\r\n")
        for k, piece in enumerate(pieces):
            s.sendall(piece)
            # Each piece sent while the connection is known to wait in the acceptor, its head
            # not yet whole: none is handed over early.
            if k < len(pieces) - 1:
                wait_for(lambda: metric(rankd, "rankd_http_connections_awaiting_request") >= 1,
                         "the connection waiting for the rest of its head")
        got = read_to_close(s)
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
    finally:
        s.close()
    s = socket.create_connection(("127.0.0.1", rankd.port), timeout=10)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        s.shutdown(socket.SHUT_WR)
        assert s.recv(65536) == b""   # closed, unanswered, at once (no timeout of 10 s)
    finally:
        s.close()


def test_connections_waiting_for_their_first_request_are_bounded_per_address(rankd_factory):
    """A slow loris no longer sits in libmicrohttpd: connections whose first request has not
    arrived whole wait in the acceptor, at most http.max_connections_per_ip from one address
    (closed past it, counted), while another address is served and a waiting one that finishes
    its head is answered."""
    from conftest import metric
    inst = rankd_factory(env={"RANKD_MAX_CONNECTIONS_PER_IP": "4"})
    loris = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", inst.port), timeout=10, source_address=("127.0.0.2", 0))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            loris.append(s)
        wait_for(lambda: metric(inst, "rankd_http_connections_awaiting_request") == 4, "four waiting")
        closed0 = metric(inst, "rankd_http_connections_closed_awaiting_request_total")
        fifth = socket.create_connection(("127.0.0.1", inst.port), timeout=10, source_address=("127.0.0.2", 0))
        fifth.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            assert fifth.recv(65536) == b""
        except ConnectionResetError:
            pass
        fifth.close()
        assert metric(inst, "rankd_http_connections_closed_awaiting_request_total") == closed0 + 1
        other = Client("127.0.0.1", inst.port, None, source="127.0.0.3")
        assert other.get("/healthz").status == 200
        other.close()
        loris[0].sendall(b"Connection: close\r\n\r\n")
        assert loris[0].recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for s in loris:
            s.close()


def test_large_answers_are_compressed_off_the_event_loop(rankd_factory):
    """Issue 28: a large answer (a /v1/batch of big pages; a page of 1,000 entries with their
    metadata, cached) is compressed on the encoder thread, its connection suspended meanwhile,
    and arrives whole and right in every encoding."""
    import gzip
    import shutil
    from conftest import ADMIN_KEY, WRITE_KEY, batch, create_board, metric

    def unbrotli(data):  # the brotli command, when the machine has it (Debian's python has no module)
        return subprocess.run(["brotli", "-d", "-c"], input=data, capture_output=True, check=True).stdout
    inst = rankd_factory()
    adm, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client()
    try:
        b = create_board(adm)["id"]
        r = batch(w, [{"board": b, "player_id": "p%04d" % i, "score": i, "metadata": {"note": "n%d" % i * 40}}
                      for i in range(1000)])
        assert r.status == 200, r.describe()
        before = metric(inst, "rankd_http_encoded_off_loop_total")
        page = "/v1/leaderboards/%s/entries?limit=1000" % b
        plain = c.get(page)
        assert plain.status == 200 and len(plain.body) > 100000
        decode = {"gzip": gzip.decompress, "br": unbrotli}
        encodings = ("gzip", "br") if shutil.which("brotli") else ("gzip",)
        for enc in encodings:
            for _ in range(2):  # the first makes the cached variant, the second reads it
                r = c.get(page, headers={"Accept-Encoding": enc})
                assert r.status == 200 and r.header("Content-Encoding") == enc, r.describe()
                assert json.loads(decode[enc](r.body))["entries"] == plain.json()["entries"]
        body = {"requests": [{"path": "/v1/leaderboards/%s/entries?limit=300" % b}] * 4}
        ident = c.post("/v1/batch", json_body=body)
        r = c.post("/v1/batch", json_body=body, headers={"Accept-Encoding": "gzip"})
        assert r.status == 200 and r.header("Content-Encoding") == "gzip", r.describe()
        assert json.loads(gzip.decompress(r.body)) == ident.json()
        # The page once per encoding (then its cached variant is read), the batch once.
        assert metric(inst, "rankd_http_encoded_off_loop_total") >= before + len(encodings) + 1
    finally:
        for x in (adm, w, c):
            x.close()


def test_a_large_scores_batch_is_run_off_the_loop_and_answered_whole(rankd_factory, db):
    """Issue 28: a scores:batch of 16 KiB or more is parsed once, on an offload thread (its
    connection suspended), boards not yet cached included; every item is answered and stored."""
    from conftest import ADMIN_KEY, WRITE_KEY, batch, create_board
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        boards = [create_board(adm)["id"] for _ in range(3)]
        other = rankd_factory()  # boards it has never looked up: not in its board cache
        w2 = other.client(WRITE_KEY)
        items = [{"board": boards[i % 3], "player_id": "p%04d" % i, "score": i, "metadata": {"pad": "y" * 40}}
                 for i in range(1000)]
        r = batch(w2, items)
        w2.close()
        assert r.status == 200, r.describe()
        results = r.json()["results"]
        assert len(results) == 1000 and all("error" not in x for x in results), results[:3]
        assert [x["player_id"] for x in results] == [it["player_id"] for it in items]
        for b in boards:
            assert len(db.board_standings(b)) == (334 if b == boards[0] else 333)
    finally:
        adm.close()
        w.close()


def test_every_answer_carries_nosniff(rankd):
    """API.md of 2026-11-25: X-Content-Type-Options: nosniff on every answer (it was sent with the
    dashboard's files only), errors, probes, 204s and 304s included."""
    from conftest import ADMIN_KEY, create_board, raw_request
    adm, c = rankd.client(ADMIN_KEY), rankd.client()
    try:
        b = create_board(adm)["id"]
        page = c.get("/v1/leaderboards/%s/entries" % b)
        answers = {
            "read": page,
            "304": c.get("/v1/leaderboards/%s/entries" % b, headers={"If-None-Match": page.header("ETag")}),
            "404": c.get("/v1/leaderboards/no-such-board"),
            "400": c.get("/v1/leaderboards/%s/entries?limit=0" % b),
            "401": rankd.client("not-a-key").get("/v1/leaderboards"),
            "405": c.request("PUT", "/v1/leaderboards"),
            "OPTIONS": c.request("OPTIONS", "/v1/leaderboards"),
            "healthz": c.get("/healthz"),
            "readyz": c.get("/readyz"),
            "metrics": adm.get("/metrics"),
            "openapi": c.get("/v1/openapi.json"),
            "write": adm.post("/v1/leaderboards/%s/scores" % b, {"player_id": "p1", "score": 1}),
            "414": raw_request("127.0.0.1", rankd.port, ("GET /v1/leaderboards?pad=%s HTTP/1.1\r\nHost: x\r\n\r\n"
                                                         % ("a" * 9000)).encode()),
        }
        assert answers["304"].status == 304 and answers["OPTIONS"].status == 204
        for name, r in answers.items():
            assert r.header("X-Content-Type-Options") == "nosniff", (name, r.status, r.headers)
    finally:
        adm.close()
        c.close()


def board_for_strong_reads(inst, adm, w):
    """A board with one standing, its window checked into Redis (that check reads standings too,
    which the tests' lock holds); returns the path of a strong read of its entries."""
    from conftest import create_board, metric, submit_ok
    b = create_board(adm)["id"]
    submit_ok(w, b, "p1", 5)
    assert w.get("/v1/leaderboards/%s/entries" % b).status == 200
    wait_for(lambda: metric(inst, "rankd_redis_windows_rebuilt_total") + metric(inst, "rankd_redis_windows_verified_total") >= 1,
             "the window's check", 10)
    return "/v1/leaderboards/%s/entries?consistency=strong" % b


def test_strong_reads_have_a_bucket_and_a_cap_of_their_own(rankd_factory, db):
    """API.md of 2026-11-25: strong reads (the primary's time) draw on a bucket of their own
    (limits.strong_reads_per_s) and at most limits.strong_concurrency run at once per instance,
    503 with Retry-After past it; plain reads are not charged for them."""
    import threading
    from conftest import WRITE_KEY
    inst = rankd_factory(extra_config={"limits": {"strong_reads_per_s": 1, "burst": 1, "strong_concurrency": 1,
                                                  "strong_wait_ms": 200}})
    adm, w, stuck = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(ADMIN_KEY)
    try:
        strong = board_for_strong_reads(inst, adm, w)
        wait_for(lambda: w.get(strong).status == 200, "a full strong bucket", 5)
        r = w.get(strong)
        assert_error(r, 429)
        assert "strong reads" in r.json()["error"]["message"] and int(r.header("Retry-After")) >= 1, r.describe()
        assert w.get(strong.split("?")[0]).status == 200  # plain reads: their own bucket

        # The cap: one strong read held on a lock, another key's strong read is 503 once its wait
        # for a slot (strong_wait_ms) is over.
        locker = db.connect()
        locker.autocommit = False
        try:
            locker.cursor().execute("LOCK TABLE standings IN ACCESS EXCLUSIVE MODE")
            got = {}
            t = threading.Thread(target=lambda: got.update(r=stuck.get(strong)))
            t.start()
            # That read's own statement (the page's), not any session: the upkeep leader's re-cut or
            # view refresh may wait on the same lock, and then the slot would still be free.
            wait_for(lambda: db.lock_waiters(PAGE_READ_SQL) == 1, "the strong read waiting on the lock")
            t0 = time.time()
            r = w.get(strong)  # the cap refuses it before its (empty) bucket is looked at
            assert time.time() - t0 >= 0.2
            assert_error(r, 503)
            assert "limits.strong_concurrency" in r.json()["error"]["message"] and r.header("Retry-After") == "1"
        finally:
            locker.rollback()
            locker.close()
        t.join(10)
        assert got["r"].status == 200, got["r"].describe()
        wait_for(lambda: w.get(strong).status == 200, "a strong read once the held one ended", 5)
    finally:
        for c in (adm, w, stuck):
            c.close()


def test_a_strong_read_past_the_cap_waits_for_a_slot(rankd_factory, db):
    """API.md: past limits.strong_concurrency a strong read waits (limits.strong_wait_ms) for a
    slot, and runs when one frees within the wait; rankd_strong_reads_waiting counts it."""
    import threading
    from conftest import WRITE_KEY, metric
    inst = rankd_factory(extra_config={"limits": {"strong_concurrency": 1, "strong_wait_ms": 20000}})
    adm, w, stuck = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(ADMIN_KEY)
    try:
        strong = board_for_strong_reads(inst, adm, w)
        got = {}
        locker = db.connect()
        locker.autocommit = False
        try:
            locker.cursor().execute("LOCK TABLE standings IN ACCESS EXCLUSIVE MODE")
            first = threading.Thread(target=lambda: got.update(first=stuck.get(strong)))
            first.start()
            wait_for(lambda: db.lock_waiters(PAGE_READ_SQL) == 1, "the first strong read waiting on the lock")
            second = threading.Thread(target=lambda: got.update(second=w.get(strong)))
            second.start()
            wait_for(lambda: metric(inst, "rankd_strong_reads_waiting") == 1, "the second waiting for a slot")
            assert "second" not in got
        finally:
            locker.rollback()
            locker.close()
        first.join(20)
        second.join(20)
        for k in ("first", "second"):
            assert got[k].status == 200, got[k].describe()
            assert got[k].json()["entries"][0]["player_id"] == "p1"
        assert metric(inst, "rankd_strong_reads_waiting") == 0
    finally:
        for c in (adm, w, stuck):
            c.close()
