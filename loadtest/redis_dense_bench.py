"""loadtest/redis_dense_bench.py — Redis's own cost of a write, layout 4's apply script against
layout 5's, which also keeps the window's distinct sort keys for dense ranks (issue 49, item 13),
with rankd out of the way.

Each script is the `script_apply` of src/store/redis_board.c at a git revision (--old, default
e11e08a, the last of layout 4; --new, default the work tree), taken through the C preprocessor.
Starts its own Redis on a free loopback port, loads --players standings (1,000 per call, as a
rebuild's chunks), then sends --writes calls of --batch changed standings each (a random player
to a random score in [0, --scores): 1,000,000,000 makes nearly every score distinct, 1,000 makes
ties), in --rounds rounds taking turns, and prints INFO commandstats' usec_per_call of EVALSHA
per round (Redis's time inside the script; its network work is not counted; on a busy machine
it varies by half from round to round), the commands the script ran per changed standing (the
same in every round), and the bytes of the distinct sort keys' set. Stops Redis by its PID.

  /usr/bin/python3 loadtest/redis_dense_bench.py --scores 1000000000
  /usr/bin/python3 loadtest/redis_dense_bench.py --scores 1000
"""
import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time

import redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def apply_script(rev):
    """script_apply's Lua at git revision `rev` (None: the work tree)."""
    path = "src/store/redis_board.c"
    text = open(os.path.join(ROOT, path)).read() if rev is None else subprocess.run(
        ["git", "-C", ROOT, "show", "%s:%s" % (rev, path)], check=True, capture_output=True, text=True).stdout
    pre = subprocess.run(["cc", "-E", "-P", "-D_GNU_SOURCE", "-I", os.path.join(ROOT, "src"), "-I/usr/include/hiredis",
                          "-I/usr/include/postgresql", "-"], input=text, check=True, capture_output=True, text=True).stdout
    i = pre.index("static redis_script_t script_apply =")
    lits = re.findall(r'"((?:[^"\\]|\\.)*)"', pre[i:pre.index("};", i)])
    return bytes("".join(lits[:-1]), "utf-8").decode("unicode_escape")  # the last literal: the empty sha


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default="e11e08a")
    ap.add_argument("--new", default=None)
    ap.add_argument("--players", type=int, default=100000)
    ap.add_argument("--writes", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--scores", type=int, default=1000000000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    src = {"old": apply_script(a.old), "new": apply_script(a.new)}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="rankd-dense-bench.")
    p = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                          "--dir", folder], stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        sha = {v: r.script_load(src[v]) for v in src}
        keys = {v: ["z", "h:", "ready", "b", "m", "mp"] + (["s"] if "KEYS[7]" in src[v] else []) for v in src}

        def call(v, changes, mode):
            argv = [mode, "", str(len(changes)), "0"]
            for pl, sk, ms, ver in changes:
                prefix = (sk + (1 << 63)).to_bytes(8, "big") + (ms + (1 << 62)).to_bytes(8, "big")
                argv += [pl, str(hash(pl) % 16384), prefix, ver.to_bytes(8, "big"), str(sk), ""]
            r.evalsha(sha[v], len(keys[v]), *keys[v], *argv)

        rng = random.Random(1)
        players = ["p%07d" % i for i in range(a.players)]
        per_call = {"old": [], "new": []}
        inner = {}
        distinct_bytes = None
        for rnd in range(a.rounds):
            for v in ("old", "new") if rnd % 2 == 0 else ("new", "old"):
                r.flushall()
                r.set("ready", 1)
                ver = 1
                for at in range(0, a.players, 1000):
                    call(v, [(pl, -rng.randrange(a.scores), 0, ver + i) for i, pl in enumerate(players[at:at + 1000])], "-")
                    ver += 1000
                r.config_resetstat()
                for i in range(a.writes // a.batch):
                    call(v, [(pl, -rng.randrange(a.scores), i + 1, ver + j)
                             for j, pl in enumerate(rng.sample(players, a.batch))], "r")
                    ver += a.batch
                stats = r.info("commandstats")
                per_call[v].append(stats["cmdstat_evalsha"]["usec_per_call"])
                # What the script ran per changed standing: the same in every round.
                inner[v] = {k[8:]: x["calls"] / a.writes for k, x in stats.items()
                            if k not in ("cmdstat_evalsha", "cmdstat_config", "cmdstat_info")}
                if keys[v][-1] == "s":
                    distinct_bytes = (r.memory_usage("s"), r.zcard("s"))
        for v in ("old", "new"):
            xs = sorted(per_call[v])
            print("%s (%s): usec per call %s; min %.2f, median %.2f; per change %.2f" % (
                v, a.old if v == "old" else a.new or "work tree", xs, xs[0], xs[len(xs) // 2],
                xs[len(xs) // 2] / a.batch))
            print("  Redis commands per changed standing: %.2f (%s)" % (
                sum(inner[v].values()), ", ".join("%s %.2f" % kv for kv in sorted(inner[v].items()))))
        if distinct_bytes:
            print("the distinct sort keys' set: %d bytes for %d scores" % distinct_bytes)
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
