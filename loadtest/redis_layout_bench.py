"""loadtest/redis_layout_bench.py — Redis's own cost of an around read (5 + 5), layout 3 against
layout 4 (issue 30, item 1), and layout 4 with its ranges packed in one string (`4p`, what
src/store/redis_board.c's scripts return since 7dafd8c: members joined by a NUL byte), with rankd
out of the way.

Starts its own Redis on a free loopback port in a temporary folder, pinned to CPU 0 (run this on
CPU 1: `taskset -c 1 /usr/bin/python3 loadtest/redis_layout_bench.py`), loads 1,000,000 members
of each layout (layout 3: member achieved(8) id, hash value version(8) achieved(8), read with
ZRANGE ... WITHSCORES; layout 4: member sort key(8) achieved(8) id, hash value version(8) sort
key(8) achieved(8), read without scores; 4p: layout 4's keys, the range returned as one
string), runs the merged around script (30 reads per call, as rankd's pipe merges them) 4,000
times per variant in five alternating rounds, and prints
INFO commandstats' usec_per_call / 30: Redis's time inside the script per around read (its
network work is not counted). Stops Redis by its PID.
"""
import shutil
import socket
import tempfile
import random
import subprocess
import time

import redis

with socket.socket() as _s:
    _s.bind(("127.0.0.1", 0))
    port = _s.getsockname()[1]
folder = tempfile.mkdtemp(prefix="rankd-layout-bench.")
p = subprocess.Popen(["taskset", "-c", "0", "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)
try:
    r = redis.Redis(port=port)
    for _ in range(100):
        try:
            r.ping(); break
        except Exception:
            time.sleep(0.05)
    N = 1000000
    load = """
local lay = ARGV[1]
local n0, n1 = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = n0, n1 do
  local id = string.format('m%012d', i)
  local sk = -((i * 7919) % 500000)
  local ach = struct.pack('>I4I4', 1073741824, i)
  local ver = struct.pack('>I4I4', 0, i)
  local b = tostring(i % 16384)
  if lay == '3' then
    redis.call('ZADD', 'z3', sk, ach .. id)
    redis.call('HSET', 'h3:' .. b, id, ver .. ach)
  else
    local skb = struct.pack('>I4I4', 2147483647, 4294967296 + sk)
    redis.call('ZADD', 'z4', sk, skb .. ach .. id)
    redis.call('HSET', 'h4:' .. b, id, ver .. skb .. ach)
  end
end
return 1
"""
    for lay in ("3", "4"):
        for a in range(0, N, 50000):
            r.eval(load, 0, lay, a, a + 49999)
    r.set("ready3", 1); r.set("ready4", 1)
    def around_each(pre, vlen, pack=False):
        rng = "redis.call('ZRANGE', z, out[2], r + tonumber(ARGV[i + 2])%s)" % pre
        if pack:
            rng = "table.concat(%s, '\\0')" % rng
        return ("if redis.call('EXISTS', KEYS[3]) == 0 then return false end\n"
        "local z, pk = KEYS[1], KEYS[2]\n"
        "local total = redis.call('ZCARD', z)\n"
        "local each = {}\n"
        "for i = 1, #ARGV, 4 do\n"
        "  local out = {total}\n"
        "local v = redis.call('HGET', pk .. ARGV[i + 3], ARGV[i])\n"
        "if v and #v >= %d then\n"
        "  local r = redis.call('ZRANK', z, (string.sub(v, 9, %d) .. ARGV[i] .. (#v > %d and ' ' .. string.sub(v, %d) or '')))\n"
        "  if r then\n"
        "    out[2] = math.max(r - tonumber(ARGV[i + 1]), 0)\n"
        "    out[3] = %s\n"
        "  end\n"
        "end\n"
        "  each[#each + 1] = out\n"
        "end\n"
        "return each\n") % (vlen, vlen, vlen, vlen + 1, rng)
    s3 = r.script_load(around_each(", 'WITHSCORES'", 16))
    s4 = r.script_load(around_each("", 24))
    s4p = r.script_load(around_each("", 24, pack=True))
    random.seed(1)
    res = {}
    for rnd in range(5):
        for lay, sha in (("3", s3), ("4", s4), ("4p", s4p)):
            keys = lay[0]
            r.config_resetstat()
            pipe = r.pipeline(transaction=False)
            for c in range(4000):
                args = []
                for k in range(30):
                    i = random.randrange(N)
                    args += ["m%012d" % i, 5, 5, str(i % 16384)]
                pipe.evalsha(sha, 3, "z" + keys, "h" + keys + ":", "ready" + keys, *args)
                if c % 100 == 99:
                    out = pipe.execute(); pipe = r.pipeline(transaction=False)
                    run = out[0][0][2]
                    n = len(run)
                    if lay == "4p":  # members joined by NUL: count the NULs past each member's 16-byte prefix
                        n, k = 0, 0
                        while k < len(run):
                            e = run.find(b"\0", k + 16)
                            n, k = n + 1, (len(run) if e < 0 else e) + 1
                    assert out[0] and len(out[0]) == 30 and n == (22 if lay == "3" else 11), out[0][0]
            st = r.info("commandstats")["cmdstat_evalsha"]
            res.setdefault(lay, []).append(st["usec_per_call"] / 30)
            print("layout", lay, "round", rnd, "us per around read %.2f" % (st["usec_per_call"] / 30), flush=True)
    for lay, v in sorted(res.items()):
        print("layout %s: median %.2f us per around read (rounds: %s)" % (lay, sorted(v)[len(v) // 2], ", ".join("%.2f" % x for x in v)))
finally:
    p.terminate()
    p.wait()
    shutil.rmtree(folder, ignore_errors=True)
