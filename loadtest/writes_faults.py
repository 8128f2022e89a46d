#!/usr/bin/python3
"""loadtest/writes_faults.py — the game's write mix while rankd and PostgreSQL are made to fail
(issue 51: an acknowledged submission survives `kill -9` of rankd and a restart of the primary).

    writes_faults.py BASE KEY PLAYERS DIR [CONNECTIONS]

Sends the traffic of loadtest/writes_mix.lua (one POST per submission to wbest, wlatest and wsum,
random players of PLAYERS seeded with loadtest/seed.sql -v det=1) from CONNECTIONS threads (64),
each submission tagged with metadata {"f": "<thread>.<n>"}, until the file DIR/stop exists. wrk
cannot say which submission an answer acknowledges; this can, so that loadtest/run.sh checks each
acknowledged submission in the log by its tag, not only their number.

Writes, in DIR:
  progress   the number of acknowledged submissions, rewritten about ten times a second (run.sh
             waits on it: a fault once the load is under way, the next once it flows again)
  acked.tsv  one line per acknowledged submission: board, tag
  summary    key=value: acked, unavailable (503s: rankd or the primary was down), other_status
             (any other answer: each one a failure), transport_errors (the connection refused or
             cut: rankd was down), first_other (the first such answer, for the report)

A refused connection or a 503 is tried again after a pause of 50 ms (rankd restarting, the
primary down): the load is bounded by the number of threads. Debian's /usr/bin/python3, stdlib only.
"""
import http.client
import json
import os
import random
import sys
import threading
import time
from urllib.parse import urlparse


def seeded(n):
    return (n * 7919) % 1000003


def pick(rng, players):
    """One submission of the mix: (board, player number, score), as writes_mix.lua draws it."""
    n = rng.randint(1, players)
    r = rng.random()
    if r < 0.6:
        score = seeded(n) + rng.randint(1, 1000) if rng.random() < 0.2 else rng.randint(0, seeded(n))
        return "wbest", n, score
    if r < 0.8:
        score = rng.randint(0, 1000000) if rng.random() < 0.2 else seeded(n)
        return "wlatest", n, score
    return "wsum", n, rng.randint(0, 100)


class Totals:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = 0
        self.unavailable = 0
        self.other = 0
        self.transport = 0
        self.first_other = ""


def sender(i, host, port, key, players, stop_path, totals, out):
    rng = random.Random(i * 7907 + 1)
    headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    conn = None
    seq = 0
    while not os.path.exists(stop_path):
        board, n, score = pick(rng, players)
        tag = "%d.%d" % (i, seq)
        seq += 1
        body = json.dumps({"player_id": "p%012d" % n, "score": score, "metadata": {"f": tag}})
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("POST", "/v1/leaderboards/%s/scores" % board, body, headers)
            resp = conn.getresponse()
            text = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
                conn = None
            with totals.lock:
                totals.transport += 1
            time.sleep(0.05)
            continue
        with totals.lock:
            if status == 200:
                totals.acked += 1
                out.append((board, tag))
            elif status == 503:
                totals.unavailable += 1
            else:
                totals.other += 1
                if not totals.first_other:
                    totals.first_other = "%d %s" % (status, text[:200].decode("utf-8", "replace"))
        if status == 503:  # down: a client waits a little before it tries again
            time.sleep(0.05)
    if conn is not None:
        conn.close()


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    base, key, players, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    conns = int(sys.argv[5]) if len(sys.argv) == 6 else 64
    u = urlparse(base)
    stop_path = os.path.join(d, "stop")
    totals = Totals()
    outs = [[] for _ in range(conns)]
    threads = [threading.Thread(target=sender, args=(i, u.hostname, u.port, key, players, stop_path, totals, outs[i]),
                                daemon=True) for i in range(conns)]
    for t in threads:
        t.start()
    progress = os.path.join(d, "progress")
    while any(t.is_alive() for t in threads):
        with totals.lock:
            n = totals.acked
        with open(progress + ".tmp", "w") as f:
            f.write("%d\n" % n)
        os.replace(progress + ".tmp", progress)
        time.sleep(0.1)
    with open(os.path.join(d, "acked.tsv"), "w") as f:
        for out in outs:
            for board, tag in out:
                f.write("%s\t%s\n" % (board, tag))
    with open(os.path.join(d, "summary"), "w") as f:
        f.write("acked=%d\nunavailable=%d\nother_status=%d\ntransport_errors=%d\nfirst_other=%s\n" % (
            totals.acked, totals.unavailable, totals.other, totals.transport, totals.first_other.replace("\n", " ")))


if __name__ == "__main__":
    main()
