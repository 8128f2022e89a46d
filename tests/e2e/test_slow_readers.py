"""Slow readers (issue 34, item 1; API.md "HTTP behaviour"): large answers not yet read hold at
most http.response_bytes_per_ip per client address and http.max_response_bytes_in_flight in all;
an answer that would pass either is 503 with Retry-After (a small one always goes), and a client
that has not read its answer within http.send_timeout_s is cut off."""
import json
import socket

from conftest import (ADMIN_KEY, batch, create_board, metric, unique, wait_for)

PAGE = "/v1/leaderboards/%s/entries?limit=1000"
META = {"note": "x" * 950}  # 1,000 entries of about 1 KiB: a page of about 1 MiB
# On loopback the kernel would take a whole 1 MiB answer into the connection's send buffer (it
# grows to net.ipv4.tcp_wmem's 4 MiB); a fixed small one leaves most of it in rankd, as an
# answer larger than the kernel's buffer is on a real network.
SMALL_KERNEL_BUFFER = {"RANKD_SEND_BUFFER_BYTES": "16384"}


def big_board(inst):
    adm = inst.client(ADMIN_KEY)
    try:
        b = create_board(adm)["id"]
        r = batch(adm, [{"board": b, "player_id": "p%04d" % i, "score": i, "metadata": META} for i in range(1000)])
        assert r.status == 200, r.describe()
        return b
    finally:
        adm.close()


def slow_reader(inst, path, source="127.0.0.1"):
    """A connection that asks for `path` uncompressed and reads only the head of its answer: its
    receive buffer is tiny, so most of the answer stays in rankd. Returns (socket, status)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", inst.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n" % path).encode())
    head = b""
    while b"\r\n" not in head:
        head += s.recv(1)
    return s, int(head.split(b" ")[1])


def read_all(s):
    """Read the rest of an answer until rankd closes the connection or the answer ends."""
    got = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return got, False
        if not chunk:
            return got, False
        got += chunk
        if got.endswith(b"]}") or got.endswith(b"null}"):
            return got, True


def get(inst, path, source="127.0.0.1"):
    """One request on a fresh connection from `source`: (status, headers text, body)."""
    with socket.create_connection(("127.0.0.1", inst.port), timeout=20, source_address=(source, 0)) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
                   % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head.decode("latin-1"), body


def test_an_address_holds_its_share_of_unread_answers_and_no_more(rankd_factory):
    inst = rankd_factory(env={"RANKD_RESPONSE_BYTES_PER_IP": "1000000", "RANKD_SEND_TIMEOUT_S": "60", **SMALL_KERNEL_BUFFER})
    b = big_board(inst)
    s1, status = slow_reader(inst, PAGE % b)
    try:
        assert status == 200
        wait_for(lambda: metric(inst, "rankd_http_response_bytes_in_flight") > 500000, "the page to be held")
        assert metric(inst, "rankd_http_response_addresses") == 1
        refused = metric(inst, "rankd_http_reads_refused_for_room_total")
        # The same address asks for another large answer: it waits for room, then 503 naming the rule.
        st, head, body = get(inst, PAGE % b)
        assert st == 503 and "Retry-After: 1" in head, head
        err = json.loads(body)["error"]
        assert err["code"] == "unavailable" and "http.response_bytes_per_ip" in err["message"], err
        assert metric(inst, "rankd_http_reads_refused_for_room_total") == refused + 1
        # A small answer always goes.
        st, _, body = get(inst, "/v1/leaderboards/%s/entries?limit=3" % b)
        assert st == 200 and len(json.loads(body)["entries"]) == 3
        # Another address gets its large answer.
        st, _, body = get(inst, PAGE % b, source="127.0.0.2")
        assert st == 200 and len(json.loads(body)["entries"]) == 1000
        # Once the slow client has read its answer, its address has room again.
        got, whole = read_all(s1)
        assert whole, got[-200:]
        wait_for(lambda: metric(inst, "rankd_http_response_bytes_in_flight") == 0, "the bytes to be given back")
        st, _, _ = get(inst, PAGE % b)
        assert st == 200
    finally:
        s1.close()


def test_answers_in_flight_are_bounded_in_all(rankd_factory):
    inst = rankd_factory(env={"RANKD_MAX_RESPONSE_BYTES_IN_FLIGHT": "1000000", "RANKD_RESPONSE_BYTES_PER_IP": "0", **SMALL_KERNEL_BUFFER})
    b = big_board(inst)
    s1, status = slow_reader(inst, PAGE % b)
    try:
        assert status == 200
        wait_for(lambda: metric(inst, "rankd_http_response_bytes_in_flight") > 500000, "the page to be held")
        st, head, body = get(inst, PAGE % b, source="127.0.0.3")
        assert st == 503 and "Retry-After: 1" in head, head
        assert "http.max_response_bytes_in_flight" in json.loads(body)["error"]["message"]
        st, _, _ = get(inst, "/v1/leaderboards/%s/entries?limit=5" % b, source="127.0.0.3")
        assert st == 200
        assert get(inst, "/healthz", source="127.0.0.3")[0] == 200
    finally:
        s1.close()
    wait_for(lambda: metric(inst, "rankd_http_response_bytes_in_flight") == 0, "the bytes to be given back")
    assert get(inst, PAGE % b, source="127.0.0.3")[0] == 200


def test_a_client_that_does_not_read_its_answer_in_time_is_cut_off(rankd_factory):
    inst = rankd_factory(env={"RANKD_SEND_TIMEOUT_S": "1", **SMALL_KERNEL_BUFFER})
    b = big_board(inst)
    cut = metric(inst, "rankd_http_send_timeouts_total")
    s1, status = slow_reader(inst, PAGE % b)
    try:
        assert status == 200
        wait_for(lambda: metric(inst, "rankd_http_send_timeouts_total") == cut + 1, "the connection to be cut")
        wait_for(lambda: metric(inst, "rankd_http_response_bytes_in_flight") == 0, "the bytes to be given back")
        got, whole = read_all(s1)
        assert not whole and len(got) < 900000, len(got)  # what was in the socket's buffers, then the end
    finally:
        s1.close()
    # A client that reads in time gets the same answer whole.
    st, _, body = get(inst, PAGE % b)
    assert st == 200 and len(json.loads(body)["entries"]) == 1000
    assert inst.proc.poll() is None
