"""loadtest/abuse.py — one abusive address (abuse.sh runs it): a slow-loris and a /v1/batch flood,
or slow readers.

  python3 abuse.py HOST PORT SOURCE SECS BOARD [flood|slow]

From SOURCE (a loopback address of its own, e.g. 127.0.0.2), for SECS seconds, `flood` (the
default):
- the slow-loris: 400 connections, each sending a request's first bytes and then one more byte
  every 5 s, never finishing its headers (more than http.max_connections_per_ip: the rest are
  refused);
- the flood: 8 threads posting /v1/batch of 50 reads of 1,000 entries each, without a key
  (counted by its address), as fast as the answers come.
`slow`: 200 connections with 4 KiB receive buffers, each posting a /v1/batch of 40 reads of 1,000
entries without compression and then reading 1 KiB of the answer a second; a connection that
ends (its answer read, refused or cut) asks again.
It prints one JSON line: what the flood's requests got, by status, and what the slow-loris held
(or what the slow readers' requests got, and how many connections were refused or cut).
For a diagnosis, ABUSE_ONLY=loris or ABUSE_ONLY=batch runs one half of `flood`, and
ABUSE_LIMIT=N sets the flood's page size (1000 by default).
"""
import http.client
import json
import os
import socket
import sys
import threading
import time

host, port, source, secs, board = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
mode = sys.argv[6] if len(sys.argv) > 6 else "flood"
stop_at = time.time() + secs
lock = threading.Lock()
statuses = {}
loris_open = [0]
loris_refused = [0]


def loris():
    socks = []
    for _ in range(400):
        try:
            s = socket.create_connection((host, port), timeout=5, source_address=(source, 0))
            s.sendall(b"GET /v1/leaderboards/%s/entries HTTP/1.1\r\nHost: x\r\n" % board.encode())
            socks.append(s)
        except OSError:
            loris_refused[0] += 1
    while time.time() < stop_at:
        alive = []
        for s in socks:
            try:
                s.sendall(b"X")
                alive.append(s)
            except OSError:
                loris_refused[0] += 1
                s.close()
        socks = alive
        loris_open[0] = max(loris_open[0], len(socks))
        time.sleep(min(5.0, max(0.0, stop_at - time.time())))
    for s in socks:
        s.close()


def flood():
    limit = os.environ.get("ABUSE_LIMIT", "1000")
    body = json.dumps({"requests": [{"path": "/v1/leaderboards/%s/entries?limit=%s" % (board, limit)}] * 50})
    conn = None
    while time.time() < stop_at:
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10, source_address=(source, 0))
            conn.request("POST", "/v1/batch", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            st = r.status
            if r.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            st = "error"
            if conn:
                conn.close()
            conn = None
        with lock:
            statuses[st] = statuses.get(st, 0) + 1


def slow_reader():
    body = json.dumps({"requests": [{"path": "/v1/leaderboards/%s/entries?limit=1000" % board}] * 40}).encode()
    request = (b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Accept-Encoding: identity\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    while time.time() < stop_at:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        try:
            s.bind((source, 0))
            s.connect((host, port))
            s.sendall(request)
            head = s.recv(1024)
            if not head:
                raise OSError("closed")
            st = int(head.split(b" ")[1])
            with lock:
                statuses[st] = statuses.get(st, 0) + 1
            while time.time() < stop_at:
                time.sleep(1)
                if not s.recv(1024):
                    break
        except (OSError, ValueError, IndexError):
            with lock:
                statuses["refused or cut"] = statuses.get("refused or cut", 0) + 1
            time.sleep(1)
        finally:
            s.close()


if mode == "slow":
    threads = [threading.Thread(target=slow_reader) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"flood": {str(k): v for k, v in sorted(statuses.items(), key=str)},
                      "loris_most_open": 0, "loris_refused": 0}))
    sys.exit(0)
only = os.environ.get("ABUSE_ONLY", "")  # a diagnosis: "loris" or "batch" alone
threads = ([threading.Thread(target=loris)] if only != "batch" else []) + \
          ([threading.Thread(target=flood) for _ in range(8)] if only != "loris" else [])
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"flood": {str(k): v for k, v in sorted(statuses.items(), key=str)},
                  "loris_most_open": loris_open[0], "loris_refused": loris_refused[0]}))
