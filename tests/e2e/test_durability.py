"""
tests/e2e/test_durability.py — an acknowledged score is never lost.

(a) Several threads submit to a `latest` board, each player id used once;
    rankd is killed with SIGKILL in the middle of the load. Every submission
    that was answered 200 must be in PostgreSQL, in `standings` and in
    `submissions`.
(b) The same load, ended by SIGTERM: requests in flight are answered (none of
    them is dropped), every 200 is durable, and rankd exits 0 within 10 s.
(c) While it drains, rankd refuses new connections and still answers a write
    held in flight; an address in use is a clear error at start.
(d) A client that sends its body a byte at a time does not make the stop a failure: at the
    drain's deadline its connection is cut (the log says so), acknowledged writes are kept, and
    rankd exits 0.
"""

import os
import signal
import socket
import subprocess
import threading
import time

from conftest import (ADMIN_KEY, RANKD_BIN, WRITE_KEY, create_board, metric, rankd_env, submit, submit_ok, unique,
                      wait_for)

LOAD_THREADS = 4
BATCH_SIZE = 25


class Load:
    """Submitting threads; each records what it sent and what came back."""

    def __init__(self, inst, board):
        self.inst = inst
        self.board = board
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = []        # (player, score) answered 200
        self.statuses = []     # non-200 responses (description)
        self.failures = []     # (t_sent, t_failed, error) transport failures
        self.threads = []

    def _record(self, acked=None, status=None, failure=None):
        with self.lock:
            if acked:
                self.acked.extend(acked)
            if status:
                self.statuses.append(status)
            if failure:
                self.failures.append(failure)

    def single(self, n):
        c = self.inst.client(WRITE_KEY)
        seq = 0
        try:
            while not self.stop.is_set():
                pid = "t%d-%06d" % (n, seq)
                score = n * 1000000 + seq
                seq += 1
                t_sent = time.time()
                try:
                    r = c.post("/v1/leaderboards/%s/scores" % self.board,
                               json_body={"player_id": pid, "score": score})
                except Exception as e:  # noqa: BLE001 — any transport error ends this thread
                    self._record(failure=(t_sent, time.time(), repr(e)))
                    return
                if r.status == 200:
                    res = r.json()
                    assert res["player_id"] == pid and res["score"] == score, res
                    self._record(acked=[(pid, score)])
                else:
                    self._record(status=r.describe())
        finally:
            c.close()

    def batches(self, n):
        c = self.inst.client(WRITE_KEY)
        seq = 0
        try:
            while not self.stop.is_set():
                items = []
                for _ in range(BATCH_SIZE):
                    items.append({"board": self.board, "player_id": "b%d-%06d" % (n, seq), "score": -seq})
                    seq += 1
                t_sent = time.time()
                try:
                    r = c.post("/v1/scores:batch", json_body={"scores": items})
                except Exception as e:  # noqa: BLE001
                    self._record(failure=(t_sent, time.time(), repr(e)))
                    return
                if r.status == 200:
                    results = r.json()["results"]
                    ok = []
                    for it, res in zip(items, results):
                        if "error" in res:
                            self._record(status="batch item error: %r" % (res,))
                        else:
                            ok.append((it["player_id"], it["score"]))
                    self._record(acked=ok)
                else:
                    self._record(status=r.describe())
        finally:
            c.close()

    def start(self):
        for n in range(LOAD_THREADS):
            self.threads.append(threading.Thread(target=self.single, args=(n,), daemon=True))
        self.threads.append(threading.Thread(target=self.batches, args=(LOAD_THREADS,), daemon=True))
        for t in self.threads:
            t.start()

    def finish(self, timeout=30):
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "load threads hang"


def check_durable(db, board, acked):
    standings = dict(db.board_standings(board))
    subs = set(db.board_submissions(board))
    missing_st = [(p, s) for p, s in acked if standings.get(p) != s]
    missing_sub = [(p, s) for p, s in acked if (p, s) not in subs]
    assert not missing_st, "%d acknowledged submissions missing from standings, e.g. %r" % (
        len(missing_st), missing_st[:5])
    assert not missing_sub, "%d acknowledged submissions missing from submissions, e.g. %r" % (
        len(missing_sub), missing_sub[:5])


def test_sigkill_loses_no_acknowledged_write(rankd_factory, db):
    inst = rankd_factory()
    c = inst.client(ADMIN_KEY)
    board = create_board(c, unique("dur-kill"), operator="latest")["id"]
    c.close()
    load = Load(inst, board)
    load.start()
    # Killed in the middle of the load: once it has had writes acknowledged (and goes on).
    wait_for(lambda: len(load.acked) >= 300, "300 acknowledged submissions")
    n_before_kill = len(load.acked)
    os.kill(inst.proc.pid, signal.SIGKILL)
    inst.proc.wait(10)
    inst.stop_signal = signal.SIGKILL
    load.finish()
    assert n_before_kill > 0
    assert not load.statuses, "non-200 answers under load: %r" % load.statuses[:5]
    check_durable(db, board, load.acked)


def test_sigterm_drains_in_flight_requests(rankd_factory, db):
    inst = rankd_factory()
    c = inst.client(ADMIN_KEY)
    board = create_board(c, unique("dur-term"), operator="latest")["id"]
    c.close()
    load = Load(inst, board)
    load.start()
    wait_for(lambda: len(load.acked) >= 300, "300 acknowledged submissions")  # the load in full swing
    t_term = time.time()
    os.kill(inst.proc.pid, signal.SIGTERM)
    inst.stop_signal = signal.SIGTERM
    exited = True
    try:
        inst.proc.wait(10)
    except Exception:  # noqa: BLE001
        exited = False
    t_exit = time.time()
    load.finish()
    if not exited:
        inst.stop(signal.SIGKILL)
    assert exited, "rankd did not exit within 10 s of SIGTERM"
    assert inst.proc.returncode == 0, "rankd exited %s after SIGTERM; stderr:\n%s" % (
        inst.proc.returncode, inst.stderr_tail())
    assert t_exit - t_term <= 10.5
    assert load.acked, "nothing was acknowledged before SIGTERM"
    bad = [s for s in load.statuses if " -> 5" in s and " -> 503" not in s]
    assert not bad, "server errors while draining: %r" % bad[:5]
    # A request sent well before SIGTERM was in flight when it came: it must be answered.
    dropped = [f for f in load.failures if f[0] < t_term - 0.2]
    assert not dropped, "in-flight requests dropped on SIGTERM: %r" % dropped[:5]
    check_durable(db, board, load.acked)


def connection_refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except (ConnectionResetError, TimeoutError):
        # The listening socket closed during the handshake (a reset, or a SYN the kernel
        # dropped and the client would send again after 1 s): ask again.
        return False
    except ConnectionRefusedError:
        return True


def test_sigterm_refuses_new_connections_while_a_write_drains(rankd_factory, db):
    """A write held behind a table lock keeps rankd draining after SIGTERM. Meanwhile it no
    longer listens (a new connection is refused, not accepted and left hanging); once the lock
    goes the write is answered 200, it is durable, and rankd exits 0."""
    inst = rankd_factory()
    c = inst.client(ADMIN_KEY)
    board = create_board(c, unique("dur-refuse"), operator="latest")["id"]
    c.close()
    locker = db.connect()
    try:
        locker.autocommit = False
        locker.cursor().execute("LOCK TABLE standings IN ACCESS EXCLUSIVE MODE")
        answer = {}

        def write():
            cl = inst.client(WRITE_KEY)
            try:
                answer["r"] = submit(cl, board, "held", 7)
            except Exception as e:  # noqa: BLE001 — a dropped write must fail the test, not vanish
                answer["error"] = repr(e)
            finally:
                cl.close()
        t = threading.Thread(target=write)
        t.start()
        # The writer's read of the standings it changes (the upkeep leader's retention may wait
        # on the lock too: that one must not count).
        wait_for(lambda: db.lock_waiters("SELECT s.board_gen, s.win - DATE '1970-01-01', s.player_id%") >= 1,
                 "the write to wait for the table lock", 10)
        os.kill(inst.proc.pid, signal.SIGTERM)
        inst.stop_signal = signal.SIGTERM
        wait_for(lambda: connection_refused(inst.port), "rankd to stop accepting connections after SIGTERM", 4)
        assert inst.alive, "rankd exited with a write in flight"
        locker.rollback()
        t.join(15)
        assert not t.is_alive() and "error" not in answer, answer
        assert answer["r"].status == 200, answer["r"].describe()
        inst.proc.wait(15)
        assert inst.proc.returncode == 0, inst.stderr_tail()
        check_durable(db, board, [("held", 7)])
    finally:
        locker.close()


class SlowBody:
    """A submission whose headers go at once and whose body goes a byte at a time, over a raw
    socket, until the server closes the connection or the test stops it."""

    def __init__(self, port, board):
        body = ('{"player_id": "slow", "score": 9' + " " * 400 + "}").encode()
        head = ("POST /v1/leaderboards/%s/scores HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (board, WRITE_KEY, len(body)))
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(head.encode())
        self.body = body
        self.sent = 0
        self.closed = None  # what ended the sending: the server's close, as the client saw it
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send)
        self.thread.start()

    def _send(self):
        try:
            while self.sent < len(self.body) and not self.stop.is_set():
                self.sock.send(self.body[self.sent:self.sent + 1])
                self.sent += 1
                self.stop.wait(0.5)  # the client's pace, a byte every half second
            if not self.stop.is_set():
                self.closed = "the whole body went"
        except OSError as e:
            self.closed = repr(e)

    def finish(self):
        self.stop.set()
        self.thread.join(10)
        self.sock.close()


def test_sigterm_cuts_a_slow_body_at_the_drain_deadline(rankd_factory, db):
    """A client sending a submission's body a byte at a time when SIGTERM comes: rankd waits for
    it until the drain's deadline, then cuts its connection and says so in the log; the write it
    had acknowledged before is in PostgreSQL, and the exit is 0 (a deploy under systemd is not a
    failed unit). Before, the drain gave up with "exiting with 1 requests still in flight" and
    exit status 1."""
    inst = rankd_factory()
    c = inst.client(ADMIN_KEY)
    board = create_board(c, unique("dur-slow"), operator="latest")["id"]
    submit_ok(c, board, "acked", 5, key=WRITE_KEY)
    c.close()
    slow = SlowBody(inst.port, board)
    try:
        # The server holds part of the body: the request is in flight.
        wait_for(lambda: metric(inst, "rankd_http_body_bytes") > 0, "rankd to receive the slow body", 10)
        os.kill(inst.proc.pid, signal.SIGTERM)
        inst.stop_signal = signal.SIGTERM
        inst.proc.wait(60)
        assert slow.sent < len(slow.body), "the slow body was sent whole: the test proves nothing"
    finally:
        slow.finish()
    err = inst.stderr_text()
    assert inst.proc.returncode == 0, "rankd exited %s after SIGTERM; stderr:\n%s" % (
        inst.proc.returncode, inst.stderr_tail())
    cut = [line for line in err.splitlines() if "cut at the drain's deadline" in line]
    assert cut, "no log line says what the drain cut:\n" + inst.stderr_tail()
    assert "POST /v1/leaderboards/%s/scores" % board in cut[0] and "body" in cut[0], cut
    check_durable(db, board, [("acked", 5)])
    assert "slow" not in dict(db.board_standings(board)), "a body cut half-way was stored"


def test_sigterm_cuts_an_unread_answer_at_the_drain_deadline(rankd_factory, db):
    """A client that asked for a large answer (the OpenAPI document, 148 KB) and reads none of it
    when SIGTERM comes: at the drain's deadline its connection is cut, the log says so, and the
    exit is 0."""
    inst = rankd_factory(env={"RANKD_SEND_BUFFER_BYTES": "16384", "RANKD_SEND_TIMEOUT_S": "600"})
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # most of the answer stays in rankd
    s.settimeout(60)
    try:
        s.connect(("127.0.0.1", inst.port))
        s.sendall(b"GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n")
        # In flight: this one and the /metrics request that asks.
        wait_for(lambda: metric(inst, "rankd_http_requests_in_flight") >= 2, "the answer to be held", 10)
        os.kill(inst.proc.pid, signal.SIGTERM)
        inst.stop_signal = signal.SIGTERM
        inst.proc.wait(60)
    finally:
        s.close()
    assert inst.proc.returncode == 0, "rankd exited %s after SIGTERM; stderr:\n%s" % (
        inst.proc.returncode, inst.stderr_tail())
    cut = [line for line in inst.stderr_text().splitlines() if "cut at the drain's deadline" in line]
    assert cut and "GET /v1/openapi.json" in cut[0] and "reading its 200 answer" in cut[0], inst.stderr_tail()


def test_an_address_in_use_is_a_clear_error(rankd_factory):
    inst = rankd_factory(start=False)
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        taken.bind(("127.0.0.1", inst.port))
        taken.listen(1)
        r = subprocess.run([RANKD_BIN, "serve", "-c", inst.config_path], env=rankd_env(inst.env),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0
        assert "cannot listen on 127.0.0.1:%d: Address already in use" % inst.port in r.stderr, r.stderr[-2000:]
    finally:
        taken.close()
