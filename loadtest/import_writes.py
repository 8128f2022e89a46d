"""loadtest/import_writes.py — submissions through an import (issue 33).

    python3 loadtest/import_writes.py BASE ADMIN_KEY WRITE_KEY BOARD FILE PSQL_DSN

16 threads submit to BOARD (a `best` board, sort desc) while FILE (`player_id,score` rows, a
header first) is imported into it by POST …/import: half of the submissions name players of the
file, half new ones. Afterwards every acknowledged submission must be reflected in PostgreSQL's
standings (the stored score at least the acknowledged one), every row of the file too, and no
submission may have been refused. Prints key=value lines; exit 1 when a check fails."""
import csv
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.parse

base, admin_key, write_key, board, path, dsn = sys.argv[1:7]
u = urllib.parse.urlparse(base)
file_scores = {}
with open(path) as f:
    rows = csv.reader(f)
    next(rows)
    for p, s in rows:
        file_scores[p] = max(file_scores.get(p, -1), int(s))
players = list(file_scores)
acked, refused, lock = {}, [], threading.Lock()
stop = threading.Event()
latencies = []


def submitter(t):
    rng = random.Random(t)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    k = 0
    while not stop.is_set():
        p = rng.choice(players) if k % 2 == 0 else "w%02d-%06d" % (t, k)
        score = rng.randrange(2 * 10 ** 9)
        body = json.dumps({"player_id": p, "score": score})
        t0 = time.monotonic()
        c.request("POST", "/v1/leaderboards/%s/scores" % board, body=body,
                  headers={"Authorization": "Bearer " + write_key, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        with lock:
            latencies.append(time.monotonic() - t0)
            if r.status == 200:
                acked[p] = max(acked.get(p, -1), score)
            else:
                refused.append(r.status)
        k += 1


threads = [threading.Thread(target=submitter, args=(t,)) for t in range(16)]
for t in threads:
    t.start()
time.sleep(1)
before = len(latencies)
t0 = time.monotonic()
c = http.client.HTTPConnection(u.hostname, u.port, timeout=1200)
with open(path, "rb") as f:
    c.request("POST", "/v1/leaderboards/%s/import" % board, body=f,
              headers={"Authorization": "Bearer " + admin_key, "Content-Type": "text/csv",
                       "Content-Length": str(os.path.getsize(path))})
    r = c.getresponse()
    answer = r.read().decode()
import_ms = (time.monotonic() - t0) * 1000
during = len(latencies) - before
time.sleep(1)
stop.set()
for t in threads:
    t.join()
print("import_status=%d" % r.status)
print("import_ms=%.0f" % import_ms)
print("submissions=%d" % len(latencies))
print("submissions_during_import=%d" % during)
print("refused=%d" % len(refused))
lat = sorted(latencies)
print("submit_p50_ms=%.1f" % (lat[len(lat) // 2] * 1000))
print("submit_max_ms=%.0f" % (lat[-1] * 1000))
out = subprocess.run(["psql", dsn, "-XtAq", "-F", ",", "-c",
                      "SELECT s.player_id, s.score FROM standings s JOIN boards b ON b.gen = s.board_gen "
                      "WHERE b.id = '%s'" % board], capture_output=True, text=True, check=True).stdout
got = {}
for line in out.splitlines():
    p, s = line.split(",")
    got[p] = int(s)
missing = sum(1 for p, s in acked.items() if got.get(p, -1) < s)
lost_rows = sum(1 for p, s in file_scores.items() if got.get(p, -1) < s)
strangers = sum(1 for p, s in got.items() if s != max(file_scores.get(p, -1), acked.get(p, -1)) and p not in acked)
print("acknowledged_players=%d" % len(acked))
print("acknowledged_not_reflected=%d" % missing)
print("file_rows_not_reflected=%d" % lost_rows)
print("unexplained_standings=%d" % strangers)
ok = r.status == 200 and not refused and missing == 0 and lost_rows == 0 and strangers == 0
sys.exit(0 if ok else 1)
