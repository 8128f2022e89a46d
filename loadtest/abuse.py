"""loadtest/abuse.py — one abusive address (abuse.sh runs it): a slow-loris and a /v1/batch flood.

  python3 abuse.py HOST PORT SOURCE SECS BOARD

From SOURCE (a loopback address of its own, e.g. 127.0.0.2), for SECS seconds:
- the slow-loris: 400 connections, each sending a request's first bytes and then one more byte
  every 5 s, never finishing its headers (more than http.max_connections_per_ip: the rest are
  refused);
- the flood: 8 threads posting /v1/batch of 50 reads of 1,000 entries each, without a key
  (counted by its address), as fast as the answers come.
It prints one JSON line: what the flood's requests got, by status, and what the slow-loris held.
"""
import http.client
import json
import socket
import sys
import threading
import time

host, port, source, secs, board = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
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
    body = json.dumps({"requests": [{"path": "/v1/leaderboards/%s/entries?limit=1000" % board}] * 50})
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


threads = [threading.Thread(target=loris)] + [threading.Thread(target=flood) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"flood": {str(k): v for k, v in sorted(statuses.items(), key=str)},
                  "loris_most_open": loris_open[0], "loris_refused": loris_refused[0]}))
