"""loadtest/redis_around_variants.py — Redis's cost of an around read (5 + 5) in three designs that
were measured and not shipped (docs/capacity/redis-reads.md, "Measured and left out"), against
what rankd sends, with rankd out of the way.

Starts its own Redis on a free loopback port in a temporary folder, pinned to CPU 0 (run this on
CPU 1: `taskset -c 1 /usr/bin/python3 loadtest/redis_around_variants.py`), loads 1,000,000
members in rankd's layout 4 (member: sort key(8) achieved(8) id; hash value: version(8) sort
key(8) achieved(8)), the player hash once in 16,384 buckets (rankd's) and once in 65,536, and
runs, in seven alternating rounds:

- `shipped`: the merged around script as src/store/redis_board.c has it (30 reads per call,
  each range packed in one string);
- `split`: a script that stops at the rank, then the ranges read without Lua in one
  MULTI ... EXEC (ZCARD, then one ZRANGE per read). Every answer comes from the EXEC's snapshot
  alone, and holds only when the player stands at the rank the script found (checked here);
- `locals`: the shipped script with `redis.call` in a local, no `math.max`, a counter for the
  results' index: what Lua spends on its own glue;
- `hget16k` / `hget64k`: 1,000 HGETs of random players per call, in 16,384 and 65,536 buckets
  (more buckets, shorter listpacks to scan).

Prints Redis's CPU per read (utime + stime from /proc, its network work included) and, for the
scripts, INFO commandstats' time inside the script; stops Redis by its PID.
"""
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time

import redis

N = 1000000
CALLS = 4000  # calls of 30 reads per variant and round
ROUNDS = 7

with socket.socket() as _s:
    _s.bind(("127.0.0.1", 0))
    port = _s.getsockname()[1]
folder = tempfile.mkdtemp(prefix="rankd-around-variants.")
p = subprocess.Popen(["taskset", "-c", "0", "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                      "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)


def redis_cpu_s():
    fields = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LOAD = """
local n0, n1, what = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i = n0, n1 do
  local id = string.format('m%012d', i)
  local sk = -((i * 7919) % 500000)
  local ach = struct.pack('>I4I4', 1073741824, i)
  local ver = struct.pack('>I4I4', 0, i)
  local skb = struct.pack('>I4I4', 2147483647, 4294967296 + sk)
  if what == 'z' then redis.call('ZADD', 'z4', sk, skb .. ach .. id)
  elseif what == '16k' then redis.call('HSET', 'h4:' .. (i % 16384), id, ver .. skb .. ach)
  else redis.call('HSET', 'h64k:' .. (i % 65536), id, ver .. skb .. ach) end
end
return 1
"""


def around_script(locals_, rank_only=False):
    """The merged around script; `locals_` the glue variant, `rank_only` the split variant's first half."""
    c = "call" if locals_ else "redis.call"
    s = "if redis.call('EXISTS', KEYS[3]) == 0 then return false end\n"
    s += "local z, pk = KEYS[1], KEYS[2]\n"
    if locals_:
        s += "local call = redis.call\nlocal n = 0\n"
    s += "local total = %s('ZCARD', z)\nlocal each = {}\n" % c
    s += "for i = 1, #ARGV, 4 do\n  local out = {total}\n"
    s += "  local v = %s('HGET', pk .. ARGV[i + 3], ARGV[i])\n" % c
    s += "  if v and #v >= 24 then\n"
    s += ("    local r = %s('ZRANK', z, (string.sub(v, 9, 24) .. ARGV[i] .. "
          "(#v > 24 and ' ' .. string.sub(v, 25) or '')))\n" % c)
    s += "    if r then\n"
    if rank_only:
        s += "      out[2] = r\n"
    elif locals_:
        s += "      local a = r - tonumber(ARGV[i + 1])\n      if a < 0 then a = 0 end\n      out[2] = a\n"
    else:
        s += "      out[2] = math.max(r - tonumber(ARGV[i + 1]), 0)\n"
    if not rank_only:
        s += "      out[3] = table.concat(%s('ZRANGE', z, out[2], r + tonumber(ARGV[i + 2])), '\\0')\n" % c
    s += "    end\n  end\n"
    s += "  n = n + 1\n  each[n] = out\n" if locals_ else "  each[#each + 1] = out\n"
    s += "end\nreturn each\n"
    return s


HGETS = ("local nb, pre = tonumber(ARGV[1]), ARGV[2] local n = 0 "
         "for k = 1, 1000 do local i = math.random(0, 999999) "
         "if redis.call('HGET', pre .. (i % nb), string.format('m%012d', i)) then n = n + 1 end end return n")

try:
    r = redis.Redis(port=port)
    for _ in range(100):
        try:
            r.ping()
            break
        except Exception:
            time.sleep(0.05)
    hash_bytes = {}
    for what in ("z", "16k", "64k"):
        before = r.info("memory")["used_memory"]
        for a in range(0, N, 50000):
            r.eval(LOAD, 0, a, a + 49999, what)
        hash_bytes[what] = r.info("memory")["used_memory"] - before
    r.set("ready4", 1)
    shipped = r.script_load(around_script(False))
    locals_sha = r.script_load(around_script(True))
    rank_only = r.script_load(around_script(False, rank_only=True))
    hgets = r.script_load(HGETS)
    random.seed(1)
    cpu, inside = {}, {}
    for rnd in range(ROUNDS):
        for var in ("shipped", "split", "plain", "locals", "hget16k", "hget64k"):
            calls = []
            for _ in range(CALLS if not var.startswith("hget") else CALLS // 10):
                ids = [random.randrange(N) for _ in range(30)]
                args = []
                for i in ids:
                    args += ["m%012d" % i, 5, 5, str(i % 16384)]
                calls.append((ids, args))
            r.config_resetstat()
            t0 = redis_cpu_s()
            reads = 0
            for ids, args in calls:
                if var in ("shipped", "locals"):
                    out = r.evalsha(shipped if var == "shipped" else locals_sha, 3, "z4", "h4:", "ready4", *args)
                    assert len(out) == 30 and all(len(o) == 3 for o in out)
                    reads += 30
                elif var in ("split", "plain"):
                    ranks = r.evalsha(rank_only, 3, "z4", "h4:", "ready4", *args)
                    tx = r.pipeline(transaction=var == "split")
                    tx.zcard("z4")
                    for o in ranks:
                        tx.zrange("z4", max(o[1] - 5, 0), o[1] + 5)
                    got = tx.execute()
                    for j, o in enumerate(ranks):
                        run = got[1 + j]
                        at = o[1] - max(o[1] - 5, 0)
                        assert run[at].endswith(("m%012d" % ids[j]).encode()), "the player moved"
                    reads += 30
                else:
                    nb = 16384 if var == "hget16k" else 65536
                    assert r.evalsha(hgets, 0, nb, "h4:" if nb == 16384 else "h64k:") == 1000
                    reads += 1000
            used = redis_cpu_s() - t0
            cpu.setdefault(var, []).append(used * 1e6 / reads)
            if var not in ("split", "plain"):
                inside.setdefault(var, []).append(r.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
                                                  / (1000 if var.startswith("hget") else 30))
            print("round %d %-8s Redis CPU %.2f us per read" % (rnd, var, cpu[var][-1]), flush=True)
    for var in cpu:
        line = "%-8s median Redis CPU %.2f us per read (rounds: %s)" % (
            var, sorted(cpu[var])[ROUNDS // 2], ", ".join("%.2f" % x for x in cpu[var]))
        if var in inside:
            line += "; inside the script %.2f us (rounds: %s)" % (
                sorted(inside[var])[ROUNDS // 2], ", ".join("%.2f" % x for x in inside[var]))
        print(line)
    for nb, what, key in ((16384, "16k", "h4:5"), (65536, "64k", "h64k:5")):
        print("player hash in %d buckets (%s): %d bytes, %.1f per player" % (
            nb, r.object("encoding", key).decode(), hash_bytes[what], hash_bytes[what] / N))
finally:
    p.terminate()
    p.wait()
    shutil.rmtree(folder, ignore_errors=True)
