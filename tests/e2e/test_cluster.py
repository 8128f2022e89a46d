"""
tests/e2e/test_cluster.py — rankd on a Redis Cluster (issue 17).

A real 3-master, 3-replica cluster on loopback ports (conftest.RedisCluster). rankd routes every
command by its key's slot (a board's keys share one hash tag), follows MOVED and ASK while a slot
migrates, and when a master dies it serves from PostgreSQL until the cluster has promoted the
replica, then rebuilds every window, so that no rank misses an acknowledged write, even one the
failover lost.
"""

import os
import signal
import subprocess
import threading

import pytest

from conftest import (REDIS_CLI, READ_KEY, WRITE_KEY, create_board, metric, run_cli, unique, wait_for)


def submit(c, board, scores):
    """scores: {player: score}, in batches of 500; every result must be 200."""
    items = [{"board": board, "player_id": p, "score": s} for p, s in scores.items()]
    for i in range(0, len(items), 500):
        r = c.post("/v1/scores:batch", json_body={"scores": items[i:i + 500]}, key=WRITE_KEY)
        assert r.status == 200, r.describe()


def verify(inst, board=None):
    args = ["verify"] + (["--board", board] if board else [])
    v = run_cli(args, inst.config_path, env=inst.env)
    assert v.returncode == 0, "rankd verify: exit %d\n%s\n%s" % (v.returncode, v.stdout[-3000:], v.stderr[-3000:])


def board_gen(db, board):
    return db.query("SELECT gen FROM boards WHERE id = %s", (board,))[0][0]


def expected_top(scores, n):
    """(player, score) of the top n of a desc `best` board whose scores are all distinct."""
    return sorted(scores.items(), key=lambda x: -x[1])[:n]


def test_boards_spread_over_every_master(rankd_factory, redis_cluster, db):
    inst = rankd_factory(redis=redis_cluster.url())
    admin, c = inst.client(None), inst.client(READ_KEY)
    boards = {}
    for i in range(9):
        b = create_board(admin, unique("cl-spread"))["id"]
        boards[b] = {"p%03d" % k: 1000 * i + 7 * k for k in range(200)}
        submit(c, b, boards[b])
    before = metric(inst, "rankd_reads_redis_total")
    for b, scores in boards.items():
        r = c.get("/v1/leaderboards/%s/entries?limit=20" % b)
        assert r.status == 200, r.describe()
        got = [(e["player_id"], e["score"]) for e in r.json()["entries"]]
        assert got == expected_top(scores, 20)
        r = c.get("/v1/leaderboards/%s/players/p100" % b)
        assert r.status == 200 and r.json()["rank"] == 100, r.describe()
    assert metric(inst, "rankd_reads_redis_total") >= before + 2 * len(boards)
    # Every board's keys live on the master of its slot, and the boards cover every master.
    holders = set()
    for b in boards:
        node = redis_cluster.node_of_key("rankd:{g%d}:x" % board_gen(db, b))
        assert node.client().execute_command("CLUSTER", "COUNTKEYSINSLOT",
                                             node.client().execute_command("CLUSTER", "KEYSLOT",
                                                                           "{g%d}" % board_gen(db, b))) > 0
        holders.add(node.port)
    sizes = {m.port: m.client().dbsize() for m in redis_cluster.masters()}
    assert len(holders) == 3 and all(n > 0 for n in sizes.values()), (holders, sizes)
    verify(inst)
    admin.close()
    c.close()


class Load:
    """Readers that check the ranks of players no write can pass, and writers below them, for
    as long as it runs; counts what failed and what was wrong."""

    def __init__(self, inst, board, fixed, others, readers=3, writers=2):
        self.inst, self.board, self.fixed, self.others = inst, board, fixed, others
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.reads = self.writes = 0
        self.failed = []
        self.wrong = []
        self.acked = {}
        self.threads = [threading.Thread(target=self.read, args=(i,)) for i in range(readers)]
        self.threads += [threading.Thread(target=self.write, args=(i,)) for i in range(writers)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def read(self, i):
        c = self.inst.client(READ_KEY)
        top = sorted(self.fixed.items(), key=lambda x: -x[1])
        n = 0
        while not self.stop.is_set():
            k = (n * 7 + i) % len(top)
            n += 1
            player, _ = top[k]
            r = c.get("/v1/leaderboards/%s/players/%s" % (self.board, player))
            with self.lock:
                self.reads += 1
                if r.status != 200:
                    self.failed.append(r.status)
                elif r.json()["rank"] != k + 1:
                    self.wrong.append((player, r.json()["rank"], k + 1))
            if n % 5 == 0:
                r = c.get("/v1/leaderboards/%s/entries?limit=10" % self.board)
                with self.lock:
                    if r.status != 200:
                        self.failed.append(r.status)
                    elif [e["player_id"] for e in r.json()["entries"]] != [p for p, _ in top[:10]]:
                        self.wrong.append(("top10", r.json()["entries"][:3]))
        c.close()

    def write(self, i):
        c = self.inst.client(WRITE_KEY)
        n = 0
        while not self.stop.is_set():
            player = self.others[(n * 13 + i) % len(self.others)]
            score = (n * 31 + i * 17) % 900000  # below every fixed player: their ranks never move
            n += 1
            r = c.post("/v1/leaderboards/%s/scores" % self.board, json_body={"player_id": player, "score": score})
            with self.lock:
                self.writes += 1
                if r.status != 200:
                    self.failed.append(r.status)
                else:
                    self.acked[player] = max(self.acked.get(player, -1), score)
        c.close()


def live_board(rankd_factory, redis_cluster):
    inst = rankd_factory(redis=redis_cluster.url())
    admin, c = inst.client(None), inst.client(WRITE_KEY)
    board = create_board(admin, unique("cl-live"))["id"]
    fixed = {"top%04d" % k: 1000000 + 10 * k for k in range(300)}
    others = ["low%04d" % k for k in range(3000)]
    submit(c, board, fixed)
    submit(c, board, {p: 5 for p in others})
    admin.close()
    c.close()
    return inst, board, fixed, others


def node_id(node):
    return node.client().execute_command("CLUSTER", "MYID").decode()


def test_reshard_a_live_board_under_load(rankd_factory, own_redis_cluster, db):
    """Every slot of the board's master moves to another master (redis-cli --cluster reshard)
    while readers check ranks and writers write: no wrong rank, a handful of failures at most."""
    inst, board, fixed, others = live_board(rankd_factory, own_redis_cluster)
    key = "rankd:{g%d}:x" % board_gen(db, board)
    src = own_redis_cluster.node_of_key(key)
    dst = next(m for m in own_redis_cluster.masters() if m.port != src.port)
    slots = sum(r[1] - r[0] + 1 for r in src.client().execute_command("CLUSTER", "SLOTS") if r[2][1] == src.port)
    redirects = metric(inst, "rankd_redis_redirects_total")
    with Load(inst, board, fixed, others) as load:
        wait_for(lambda: load.reads > 50 and load.writes > 20, "load under way")
        out = subprocess.run([REDIS_CLI, "--cluster", "reshard", "127.0.0.1:%d" % src.port,
                              "--cluster-from", node_id(src), "--cluster-to", node_id(dst),
                              "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "100"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        wait_for(lambda: own_redis_cluster.node_of_key(key).port == dst.port, "the board's slot on its new master")
        reads_after = load.reads
        wait_for(lambda: load.reads > reads_after + 50, "reads after the move")
    assert load.wrong == [], load.wrong[:10]
    assert len(load.failed) <= 5, "%d of %d reads and %d writes failed: %r" % (
        len(load.failed), load.reads, load.writes, load.failed[:20])
    assert metric(inst, "rankd_redis_redirects_total") > redirects  # it did follow the cluster
    # Ranks come from Redis again on the new master, and every write is there.
    before = metric(inst, "rankd_reads_redis_total")
    wait_for(lambda: inst.client(READ_KEY).get("/v1/leaderboards/%s/players/top0000" % board).status == 200 and
             metric(inst, "rankd_reads_redis_total") > before, "reads from Redis after the move", timeout=60)
    verify(inst, board)
    for p, s in list(load.acked.items())[:200]:
        assert db.query("SELECT sort_key FROM standings s JOIN boards b ON b.gen = s.board_gen"
                        " WHERE b.id = %s AND s.player_id = %s", (board, p)), p


def test_a_master_killed_under_load_and_an_update_the_failover_lost(rankd_factory, own_redis_cluster, db):
    """The board's master dies while its replica has not got rankd's last update (replication
    cut first); the cluster promotes the replica. Reads go on (PostgreSQL meanwhile), writes stay
    durable, and afterwards every window is exact again, the lost update included."""
    inst, board, fixed, others = live_board(rankd_factory, own_redis_cluster)
    key = "rankd:{g%d}:x" % board_gen(db, board)
    master = own_redis_cluster.node_of_key(key)
    mid = node_id(master)
    def replica_of(n):
        role = n.client().execute_command("ROLE")
        return role[0] == b"slave" and role[2] == master.port
    replicas = [n for n in own_redis_cluster.nodes if n.alive and n.port != master.port and replica_of(n)]
    assert replicas
    w = inst.client(WRITE_KEY)
    offset = master.client().execute_command("ROLE")[1]
    wait_for(lambda: all(r.client().execute_command("ROLE")[4] >= offset for r in replicas),
             "the replicas have every write so far")
    # Cut replication: the replicas stop (SIGSTOP) and the master drops their links, so what the
    # master takes next reaches none of them.
    for r in replicas:
        os.kill(r.proc.pid, signal.SIGSTOP)
    try:
        master.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
        r = w.post("/v1/leaderboards/%s/scores" % board, json_body={"player_id": "lost-update", "score": 999999})
        assert r.status == 200, r.describe()
        assert r.json()["rank"] == 301
        os.kill(master.proc.pid, signal.SIGKILL)
        master.proc.wait(10)
    finally:
        for r in replicas:
            os.kill(r.proc.pid, signal.SIGCONT)
    # The replicas, not promoted yet, hold the board without that update: the failover loses it.
    prefix = b"rankd:{g%d}:" % board_gen(db, board)
    for r in replicas:
        rc = r.client()
        rc.execute_command("READONLY")
        zs = [k for k in rc.scan_iter(match="*:z5", count=1000) if k.startswith(prefix)]
        assert len(zs) == 1 and rc.zcard(zs[0]) == len(fixed) + len(others), (zs, [rc.zcard(k) for k in zs])
    ports = {r.port for r in replicas}
    with Load(inst, board, fixed, others) as load:
        wait_for(lambda: any(n.port in ports for n in own_redis_cluster.masters()), "a replica promoted",
                 timeout=60)
        own_redis_cluster.wait_ok()
        before = metric(inst, "rankd_reads_redis_total")
        wait_for(lambda: metric(inst, "rankd_reads_redis_total") > before + 20, "reads from Redis again",
                 timeout=90)
    assert load.wrong == [], load.wrong[:10]
    assert all(s in (200, 503) for s in load.failed), load.failed[:20]
    r = inst.client(READ_KEY).get("/v1/leaderboards/%s/players/lost-update" % board)
    assert r.status == 200 and r.json()["rank"] == 301 and r.json()["score"] == 999999, r.describe()
    verify(inst, board)
    assert mid not in [node_id(m) for m in own_redis_cluster.masters()]
    w.close()


def test_sentinel_failover(rankd_factory, redis_sentinels, db):
    """redis+sentinel://: rankd asks the sentinels for the master; when it dies and they promote
    the replica, rankd follows, and the update the old master took last but never replicated
    is in Redis again once it has rebuilt."""
    inst = rankd_factory(redis=redis_sentinels.url(3))
    admin, w, c = inst.client(None), inst.client(WRITE_KEY), inst.client(READ_KEY)
    board = create_board(admin, unique("sentinel"))["id"]
    scores = {"p%03d" % k: 10 * k for k in range(200)}
    submit(w, board, scores)
    before = metric(inst, "rankd_reads_redis_total")
    wait_for(lambda: c.get("/v1/leaderboards/%s/players/p150" % board).json()["rank"] == 50 and
             metric(inst, "rankd_reads_redis_total") > before, "reads from the master Sentinel names")
    master, replica = redis_sentinels.master, redis_sentinels.replica
    assert master.client(3).dbsize() > 0
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        master.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
        r = w.post("/v1/leaderboards/%s/scores" % board, json_body={"player_id": "lost-update", "score": 5000})
        assert r.status == 200 and r.json()["rank"] == 1, r.describe()
        os.kill(master.proc.pid, signal.SIGKILL)
        master.proc.wait(10)
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    prefix = b"rankd:{g%d}:" % board_gen(db, board)
    zs = [k for k in replica.client(3).scan_iter(match="*:z5", count=1000) if k.startswith(prefix)]
    assert len(zs) == 1 and replica.client(3).zcard(zs[0]) == len(scores)  # the update is not there
    wait_for(lambda: all(redis_sentinels.master_addr(p) == ("127.0.0.1", replica.port)
                         for p, _ in redis_sentinels.sentinels), "the sentinels promote the replica", timeout=60)
    before = metric(inst, "rankd_reads_redis_total")
    wait_for(lambda: c.get("/v1/leaderboards/%s/players/lost-update" % board).json().get("rank") == 1 and
             metric(inst, "rankd_reads_redis_total") > before + 5, "reads from the new master", timeout=60)
    top = c.get("/v1/leaderboards/%s/entries?limit=3" % board).json()["entries"]
    assert [e["player_id"] for e in top] == ["lost-update", "p199", "p198"]
    verify(inst, board)
    for x in (admin, w, c):
        x.close()


def test_replica_reads_of_a_hot_board(rankd_factory, redis_cluster, db):
    """redis.read_from: replicas: rank reads go to the board's replica when it has caught up
    with its master, else to the master; a read never misses a write acknowledged before it."""
    inst = rankd_factory(redis=redis_cluster.url(), env={"RANKD_REDIS_READ_FROM": "replicas"})
    admin, w, c = inst.client(None), inst.client(WRITE_KEY), inst.client(READ_KEY)
    board = create_board(admin, unique("cl-hot"))["id"]
    scores = {"p%03d" % k: 10 * k for k in range(300)}
    submit(w, board, scores)
    # Warm: the window is loaded on the master and replicated (each read a new player: the
    # response cache answers a repeated one).
    asked = iter(range(300))
    wait_for(lambda: c.get("/v1/leaderboards/%s/players/p%03d" % (board, next(asked))).status == 200 and
             metric(inst, "rankd_redis_replica_reads_total") > 0, "a read answered by a replica")
    before = metric(inst, "rankd_redis_replica_reads_total")
    for k in range(0, 300, 3):
        r = c.get("/v1/leaderboards/%s/players/p%03d" % (board, k))
        assert r.status == 200 and r.json()["rank"] == 300 - k, r.describe()
    assert metric(inst, "rankd_redis_replica_reads_total") > before
    # Read your writes: each write is followed at once by a read that must see it.
    for i in range(60):
        score = 10000 + i
        r = w.post("/v1/leaderboards/%s/scores" % board, json_body={"player_id": "p%03d" % i, "score": score})
        assert r.status == 200 and r.json()["rank"] == 1, r.describe()
        r = c.get("/v1/leaderboards/%s/entries?limit=1" % board)
        assert r.status == 200 and r.json()["entries"][0]["player_id"] == "p%03d" % i, (i, r.describe())
        r = c.get("/v1/leaderboards/%s/players/p%03d" % (board, i))
        assert r.json()["rank"] == 1 and r.json()["score"] == score, (i, r.describe())
    replicas = metric(inst, "rankd_redis_replica_reads_total")
    behind = metric(inst, "rankd_redis_replica_behind_total")
    print("replica reads %d, sent again to the master %d" % (replicas, behind))
    verify(inst, board)
    for x in (admin, w, c):
        x.close()


def test_a_replica_behind_its_master_is_not_read(rankd_factory, redis_cluster, db):
    """While the board's master streams large writes to its replica (a ballast key in the board's
    slot), the replica's offset trails the master's: reads that would see it behind go to the
    master instead (rankd_redis_replica_behind_total moves), and no read misses a write
    acknowledged before it."""
    inst = rankd_factory(redis=redis_cluster.url(), env={"RANKD_REDIS_READ_FROM": "replicas"})
    admin, w, c = inst.client(None), inst.client(WRITE_KEY), inst.client(READ_KEY)
    board = create_board(admin, unique("cl-lag"))["id"]
    submit(w, board, {"p%03d" % k: 10 * k for k in range(100)})
    asked = iter(range(100))
    wait_for(lambda: c.get("/v1/leaderboards/%s/players/p%03d" % (board, next(asked) % 100)).status == 200 and
             metric(inst, "rankd_redis_replica_reads_total") > 0, "a read answered by a replica")
    master = redis_cluster.node_of_key("rankd:{g%d}:x" % board_gen(db, board))
    ballast = "rankd-test-ballast:{g%d}" % board_gen(db, board)
    stop = threading.Event()

    def stream():
        m = master.client()
        value = b"x" * (8 << 20)
        while not stop.is_set():
            m.set(ballast, value)
            stop.wait(0.005)
        m.delete(ballast)

    t = threading.Thread(target=stream)
    t.start()
    before = metric(inst, "rankd_redis_replica_behind_total")
    try:
        for i in range(150):
            score = 100000 + i
            r = w.post("/v1/leaderboards/%s/scores" % board, json_body={"player_id": "p%03d" % (i % 100),
                                                                          "score": score})
            assert r.status == 200 and r.json()["rank"] == 1, r.describe()
            r = c.get("/v1/leaderboards/%s/players/p%03d" % (board, i % 100))
            assert r.status == 200 and r.json()["rank"] == 1 and r.json()["score"] == score, (i, r.describe())
            r = c.get("/v1/leaderboards/%s/players/p%03d/around?before=0&after=0" % (board, i % 100))
            assert r.status == 200 and r.json()["entries"][0]["rank"] == 1, (i, r.describe())
    finally:
        stop.set()
        t.join(10)
    behind = metric(inst, "rankd_redis_replica_behind_total") - before
    assert behind > 0, "no read found the replica behind: the fallback was not exercised"
    print("reads sent again to the master: %d" % behind)
    verify(inst, board)
    for x in (admin, w, c):
        x.close()


def test_a_takeover_while_the_old_master_lives(rankd_factory, own_redis_cluster, db):
    """CLUSTER FAILOVER TAKEOVER on a replica that missed rankd's last update, the old master
    alive: rankd's next commands are redirected (MOVED) to the promoted replica, and, having seen
    a replica take its master's slots, rankd rebuilds every window rather than trust it."""
    cluster = own_redis_cluster
    inst, board, fixed, others = live_board(rankd_factory, cluster)
    master = cluster.node_of_key("rankd:{g%d}:x" % board_gen(db, board))
    replica = next(n for n in cluster.nodes if n.port != master.port and
                   n.client().execute_command("ROLE")[0] == b"slave" and
                   n.client().execute_command("ROLE")[2] == master.port)
    offset = master.client().execute_command("ROLE")[1]
    wait_for(lambda: replica.client().execute_command("ROLE")[4] >= offset, "the replica has every write so far")
    w, c = inst.client(WRITE_KEY), inst.client(READ_KEY)
    # Once cut off, the replica cannot link up again (its master has no password, so AUTH
    # fails): a partial resync between SIGCONT and the takeover would bring the update back.
    replica.client().config_set("masterauth", "rankd-test-no-such-password")
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        master.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
        r = w.post("/v1/leaderboards/%s/scores" % board, json_body={"player_id": "lost-update", "score": 999999})
        assert r.status == 200 and r.json()["rank"] == 301, r.describe()
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    replica.client().execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
    wait_for(lambda: replica.client().execute_command("ROLE")[0] == b"master", "the takeover")
    replica.client().config_set("masterauth", "")
    prefix = b"rankd:{g%d}:" % board_gen(db, board)
    zs = [k for k in replica.client().scan_iter(match="*:z5", count=1000) if k.startswith(prefix)]
    assert len(zs) == 1 and replica.client().zcard(zs[0]) == len(fixed) + len(others)  # the update is lost
    cluster.wait_ok()
    # The old master, now a replica of the new one, drops the update too: nothing in Redis has it.
    wait_for(lambda: master.client().execute_command("ROLE")[0] == b"slave", "the old master turned replica")
    # Writes go on (redirected), and the reads come from Redis again once every window is rebuilt.
    for i in range(20):
        r = w.post("/v1/leaderboards/%s/scores" % board, json_body={"player_id": others[i], "score": 1000 + i})
        assert r.status == 200, r.describe()
    before = metric(inst, "rankd_reads_redis_total")
    asked = iter(range(10 ** 6))
    wait_for(lambda: c.get("/v1/leaderboards/%s/players/%s" % (board, others[next(asked) % 3000])).status == 200 and
             metric(inst, "rankd_reads_redis_total") > before + 5, "reads from Redis again", timeout=60)
    r = c.get("/v1/leaderboards/%s/players/lost-update" % board)
    assert r.status == 200 and r.json()["rank"] == 301 and r.json()["score"] == 999999, r.describe()
    assert metric(inst, "rankd_redis_redirects_total") > 0
    # Found by its mark: Redis's number for the window stayed behind PostgreSQL's (issue 27).
    assert metric(inst, "rankd_redis_windows_behind_total") >= 1
    verify(inst, board)
    w.close()
    c.close()


def test_sentinel_switch_with_the_old_master_alive(rankd_factory, redis_sentinels, db):
    """SENTINEL FAILOVER while the replica misses rankd's last update (its resync refused by an
    ACL on the master), the old master alive and turned into a replica that drops the update.
    Nothing is written afterwards, so only Sentinel's +switch-master can tell rankd: it rebuilds
    every window, and reads from Redis have the update again."""
    inst = rankd_factory(redis=redis_sentinels.url(3))
    admin, w, c = inst.client(None), inst.client(WRITE_KEY), inst.client(READ_KEY)
    board = create_board(admin, unique("sentinel-sw"))["id"]
    submit(w, board, {"p%03d" % k: 10 * k for k in range(200)})
    master, replica = redis_sentinels.master, redis_sentinels.replica
    before = metric(inst, "rankd_reads_redis_total")
    asked = iter(range(10 ** 6))
    wait_for(lambda: c.get("/v1/leaderboards/%s/players/p%03d" % (board, next(asked) % 200)).status == 200 and
             metric(inst, "rankd_reads_redis_total") > before, "reads from Redis")
    m = master.client()
    m.execute_command("ACL", "SETUSER", "default", "-psync", "-sync")
    m.execute_command("CLIENT", "KILL", "TYPE", "replica")
    wait_for(lambda: replica.client().execute_command("ROLE")[3] != b"connected", "replication cut")
    r = w.post("/v1/leaderboards/%s/scores" % board, json_body={"player_id": "lost-update", "score": 5000})
    assert r.status == 200 and r.json()["rank"] == 1, r.describe()
    port = redis_sentinels.sentinels[0][0]
    import redis as redis_mod
    redis_mod.Redis(host="127.0.0.1", port=port).execute_command("SENTINEL", "FAILOVER", redis_sentinels.NAME)
    wait_for(lambda: all(redis_sentinels.master_addr(p) == ("127.0.0.1", replica.port)
                         for p, _ in redis_sentinels.sentinels), "the sentinels switch masters", timeout=60)
    # rankd heard it on +switch-master (before the old master, still taking writes for a while,
    # is turned into a replica and closes its connections, which rankd would notice later).
    wait_for(lambda: "%s 127.0.0.1 %d 127.0.0.1 %d" % (redis_sentinels.NAME, master.port, replica.port)
             in inst.stderr_text(), "rankd told of the switch")
    # The old master follows the new one and loses the update. Turned replica, it closes its
    # clients' connections, this test's too: a reset is "not yet", asked again on a new one.
    def old_master_follows():
        try:
            role = master.client().execute_command("ROLE")
        except redis_mod.exceptions.ConnectionError:
            return False
        return role[0] == b"slave" and role[3] == b"connected"

    wait_for(old_master_follows, "the old master turned replica", timeout=60)
    prefix = b"rankd:{g%d}:" % board_gen(db, board)
    zs = [k for k in replica.client(3).scan_iter(match="*:z5", count=1000) if k.startswith(prefix)]
    assert zs and replica.client(3).zcard(zs[0]) in (200, 201)
    before = metric(inst, "rankd_reads_redis_total")
    wait_for(lambda: c.get("/v1/leaderboards/%s/players/p%03d" % (board, next(asked) % 200)).status == 200 and
             metric(inst, "rankd_reads_redis_total") > before + 3, "reads from Redis again", timeout=60)
    r = c.get("/v1/leaderboards/%s/entries?limit=1" % board)
    assert r.json()["entries"][0]["player_id"] == "lost-update", r.describe()
    assert metric(inst, "rankd_redis_windows_behind_total") >= 1
    verify(inst, board)
    for x in (admin, w, c):
        x.close()
