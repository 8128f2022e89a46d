"""loadtest/live.py — the load of loadtest/live.sh (issue 52, item 4): live streams against polling.

Started by live.sh with two rankd instances (A takes every listener and every write, B has probe
listeners only and hears A's commits through PostgreSQL NOTIFY). Raw sockets and epoll, no library:

- the controller (this process) writes (lone POSTs or scores:batch, paced) and reads the probe
  streams, parsing each event: a write's score is its tag (a top write: a new #1 of its board,
  10,000,000 + a sequence number; a player write: a new score of a listened player), and the delay of
  a write on a probe is the time from its acknowledgement to the first event of that probe that
  shows it;
- worker processes (one per 15,000 connections, under the descriptor limit; nice 10: the
  controller's clocks come first) hold the bulk listeners and, in the poll phase, the pollers (and
  first, as a reference, as many plain keep-alive connections to B): they count the events and
  bytes they read, nothing more.
CPU is read from /proc (utime + stime of rankd A and B, of every PostgreSQL process, of Redis, and of
this load's own processes), RSS from /proc/PID/status. Figures go to OUT/results.txt (key=value)
and OUT/report.md.
"""
import argparse
import json
import os
import random
import re
import select
import socket
import sys
import time
import multiprocessing as mp

CLK = os.sysconf("SC_CLK_TCK")
IP_BIND_ADDRESS_NO_PORT = 24
EV_IN, EV_OUT, EV_ERR = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR | select.EPOLLHUP
TOP_TAG0 = 10_000_000
now = time.monotonic


def log(msg):
    print("[live.py %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- /proc

def proc_ticks(pid, children=False):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    t = int(fields[11]) + int(fields[12])
    if children:
        t += int(fields[13]) + int(fields[14])
    return t


def tree_ticks(root):
    """utime + stime of root and every process under it (PostgreSQL's backends), plus what its
    reaped children had (cutime + cstime of root)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    total = proc_ticks(root, children=True)
    for pid in parent:
        p, seen = parent.get(pid), 0
        while p and p != root and seen < 10:
            p, seen = parent.get(p), seen + 1
        if p == root and pid != root:
            total += proc_ticks(pid)
    return total


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ------------------------------------------------------------------------------- HTTP helpers

def connect(addr, src=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    if src:
        s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((src, 0))
    try:
        s.connect(addr)
    except BlockingIOError:
        pass
    return s


def get_req(host, path, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n%s\r\n" % (path, host, extra)).encode()


def fetch(addr, path, key=None, timeout=10):
    """A blocking GET: (status, body)."""
    s = socket.create_connection(addr, timeout=timeout)
    auth = "Authorization: Bearer %s\r\n" % key if key else ""
    s.sendall(get_req("%s:%d" % addr, path, auth + "Connection: close\r\n"))
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            line, _, rest = rest.partition(b"\r\n")
            n = int(line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return status, body


def metrics(addr, key):
    st, body = fetch(addr, "/metrics", key)
    m = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("rankd_live_") or line.startswith("rankd_rank_tier_"):
            parts = line.rsplit(" ", 1)
            if len(parts) == 2:
                try:
                    m[parts[0]] = m.get(parts[0], 0) + float(parts[1])
                except ValueError:
                    pass
    return m


class Dechunk:
    """Chunked transfer encoding undone incrementally; feed() returns the payload bytes."""
    __slots__ = ("need", "line", "ended")

    def __init__(self):
        self.need, self.line, self.ended = 0, b"", False

    def feed(self, data):
        out, pos, n = [], 0, len(data)
        while pos < n and not self.ended:
            if self.need > 0:
                take = min(self.need, n - pos)
                out.append(data[pos:pos + take])
                self.need -= take
                pos += take
                continue
            i = data.find(b"\r\n", pos)
            if i < 0:
                self.line += data[pos:]
                break
            line = self.line + data[pos:i]
            self.line = b""
            pos = i + 2
            if not line:
                continue  # the CRLF that ends a chunk's data
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self.ended = True
            self.need = size
        return b"".join(out) if len(out) != 1 else out[0]


def parse_head(buf):
    """(status, headers dict lower-case, rest) once buf holds the whole head, else None."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    lines = buf[:i].decode("latin-1").split("\r\n")
    hd = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hd[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ", 2)[1]), hd, buf[i + 4:]


# ------------------------------------------------------------------------------- bulk worker

class Stream:
    __slots__ = ("sock", "req", "state", "buf", "dc", "tail", "events", "bytes", "status", "first")

    def __init__(self, sock, req):
        self.sock, self.req, self.state, self.buf = sock, req, 0, b""
        self.dc, self.tail, self.events, self.bytes, self.status, self.first = Dechunk(), b"", 0, 0, 0, False


class Poller:
    __slots__ = ("sock", "req", "state", "buf", "need", "sent_at", "chunked")

    def __init__(self, sock, req):
        self.sock, self.req, self.state, self.buf, self.need, self.sent_at, self.chunked = sock, req, 0, b"", -1, 0.0, False


def bulk_worker(pipe, addr_s):
    """The bulk listeners and the pollers, driven by commands on pipe."""
    os.nice(10)
    host, port = addr_s.rsplit(":", 1)
    addr = (host, int(port))
    ep = select.epoll()
    ep.register(pipe.fileno(), EV_IN)
    conns = {}
    buf = bytearray(262144)
    view = memoryview(buf)
    pending, opening = [], 0          # streams or pollers still to connect, and connecting now
    total_events = total_bytes = closed = 0
    statuses = {}
    polling, poll_list, poll_t0, poll_sent, poll_skipped = False, [], 0.0, 0, 0
    poll_done = poll_bad = 0
    poll_lat = []

    def close(fd, c):
        try:
            ep.unregister(fd)
        except OSError:
            pass
        c.sock.close()
        conns.pop(fd, None)

    def start_some():
        nonlocal opening
        while pending and opening < 256:
            kind, req, src, to = pending.pop()
            s = connect(to, src)
            c = Stream(s, req) if kind == "s" else Poller(s, req)
            conns[s.fileno()] = c
            ep.register(s.fileno(), EV_OUT)
            opening += 1

    while True:
        if polling and poll_list:
            due = int((now() - poll_t0) * len(poll_list))   # each poller once a second, spread
            while poll_sent < due:
                p = poll_list[poll_sent % len(poll_list)]
                poll_sent += 1
                if p.state != 2:
                    poll_skipped += 1
                    continue
                try:
                    p.sock.send(p.req)
                except OSError:
                    poll_bad += 1
                    continue
                p.state, p.sent_at, p.buf, p.need = 3, now(), b"", -1
        for fd, ev in ep.poll(0.005 if polling else 0.05):
            if fd == pipe.fileno():
                cmd = pipe.recv()
                op = cmd[0]
                if op == "open":           # ("open", kind, [(path, src)][, "host:port" instead of A])
                    to = addr
                    if len(cmd) > 3:
                        h_, p_ = cmd[3].rsplit(":", 1)
                        to = (h_, int(p_))
                    hostname = "%s:%d" % to
                    pending = [(cmd[1], get_req(hostname, path), src, to) for path, src in cmd[2]]
                    pending.reverse()
                    start_some()
                elif op == "status":
                    ready = sum(1 for c in conns.values() if (c.first if isinstance(c, Stream) else c.state == 2))
                    pipe.send({"conns": len(conns), "ready": ready, "pending": len(pending) + opening,
                               "statuses": dict(statuses), "events": total_events, "bytes": total_bytes,
                               "closed": closed, "poll_sent": poll_sent, "poll_done": poll_done,
                               "poll_skipped": poll_skipped, "poll_bad": poll_bad,
                               "poll_lat": sorted(poll_lat), "ticks": proc_ticks(os.getpid())})
                    poll_lat = []
                elif op == "poll_start":
                    poll_list = [c for c in conns.values() if isinstance(c, Poller) and c.state == 2]
                    random.shuffle(poll_list)
                    polling, poll_t0, poll_sent = True, now(), 0
                    pipe.send(len(poll_list))
                elif op == "poll_stop":
                    polling = False
                    pipe.send(True)
                elif op == "close":
                    for f, c in list(conns.items()):
                        close(f, c)
                    pending, opening, statuses = [], 0, {}
                    pipe.send(True)
                elif op == "quit":
                    return
                continue
            c = conns.get(fd)
            if c is None:
                continue
            if c.state == 0:                # connected (or not): send the request
                opening -= 1
                if ev & EV_ERR:
                    statuses["connect_error"] = statuses.get("connect_error", 0) + 1
                    close(fd, c)
                    start_some()
                    continue
                try:
                    c.sock.send(c.req)
                except OSError:
                    statuses["send_error"] = statuses.get("send_error", 0) + 1
                    close(fd, c)
                    start_some()
                    continue
                ep.modify(fd, EV_IN)
                if isinstance(c, Poller):
                    c.state, c.sent_at = 3, now()     # the first request is the connection's check
                else:
                    c.state = 1
                start_some()
                continue
            try:
                n = c.sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                n = 0
            if n == 0:
                closed += 1
                close(fd, c)
                continue
            if isinstance(c, Stream):
                if c.state == 2:
                    # The fast path: events counted in the raw bytes, chunk framing and all (a
                    # chunk's size line cannot hold "event: "; one falling inside those 7 bytes,
                    # a chance of about 1 in 2,000 per chunk cut, is missed), the 6 bytes before
                    # this read joined to its first 6 for an "event: " across two reads.
                    k = buf.count(b"event: ", 0, n)
                    if c.tail:
                        k += (c.tail + bytes(view[:6])).count(b"event: ")
                    c.tail = bytes(view[n - 6:n]) if n >= 6 else b""
                    total_bytes += n
                    if k:
                        c.events += k
                        total_events += k
                        c.first = True
                    continue
                c.buf += bytes(view[:n])
                h = parse_head(c.buf)
                if h is None:
                    continue
                c.status, _, data = h
                c.buf = b""
                statuses[c.status] = statuses.get(c.status, 0) + 1
                if c.status != 200:
                    close(fd, c)
                    continue
                c.state = 2
                k = data.count(b"event: ")
                c.tail = data[-6:]
                total_bytes += len(data)
                if k:
                    c.events += k
                    total_events += k
                    c.first = True
                continue
            data = bytes(view[:n])
            c.buf += data
            if c.need < 0:
                h = parse_head(c.buf)
                if h is None:
                    continue
                st, hd, rest = h
                if st != 200:
                    poll_bad += 1
                c.chunked = "content-length" not in hd
                c.need = int(hd.get("content-length", "0"))
                c.buf = rest
            done = (c.buf.endswith(b"0\r\n\r\n") if c.chunked else len(c.buf) >= c.need)
            if done:
                if c.state == 3 and c.sent_at:
                    if polling:
                        poll_done += 1
                        poll_lat.append(now() - c.sent_at)
                c.state, c.buf, c.need = 2, b"", -1


# ------------------------------------------------------------------------------- the controller

TAG_RE = re.compile(rb'"score":(\d{8,})')
PSCORE_RE = re.compile(rb'"score":(-?\d+|null)')


class Probe:
    __slots__ = ("sock", "inst", "kind", "key", "state", "buf", "dc", "body", "seen", "events", "first", "status")

    def __init__(self, sock, inst, kind, key):
        self.sock, self.inst, self.kind, self.key = sock, inst, kind, key
        self.state, self.buf, self.dc, self.body, self.seen = 0, b"", Dechunk(), b"", {}
        self.events, self.first, self.status = 0, False, 0


class Writer:
    __slots__ = ("sock", "idle", "buf", "need", "items", "sent_at", "chunked", "status")

    def __init__(self, sock):
        self.sock, self.idle, self.buf, self.need, self.items, self.sent_at, self.chunked = sock, False, b"", -1, None, 0.0, False
        self.status = 0


class Load:
    def __init__(self, a):
        self.a = a
        self.A = self.addr(a.a)
        self.B = self.addr(a.b)
        self.ep = select.epoll()
        self.fds = {}
        self.rng = random.Random(5252)
        self.results = []
        self.R = {}
        # the listened players of big, and those probed on A and B
        ids = self.rng.sample(range(1, a.players + 1), a.distinct_players)
        self.players = ["p%012d" % i for i in ids]
        # big is seeded with known scores (seed.sql -v det=1): player i has (i * 7919) % 1000003
        self.pl_last = {"p%012d" % i: (i * 7919) % 1000003 for i in ids}
        self.probe_players = self.players[:min(a.probe_players, len(self.players))]
        self.boards = ["t%03d" % i for i in range(a.boards)]
        # writes
        self.seq = self.top_seq = 0
        self.writing, self.w_t0, self.w_sent = False, 0.0, 0
        self.w_conns = []
        self.top_ack = {}          # tag -> (t_ack, t_sent, board)
        self.pl_ack = {}           # (player, score) -> (t_ack, t_sent)
        self.pl_writes = {}        # player -> [score, ...] in the order sent
        self.w_items = self.w_bad = self.w_req_bad = self.w_behind = self.w_cut = 0
        self.w_rr = 0
        self.probes = []
        self.player_streams = False

    @staticmethod
    def addr(s):
        h, p = s.rsplit(":", 1)
        return h, int(p)

    def rec(self, k, v):
        if isinstance(v, float):
            v = "%.3f" % v if abs(v) < 100 else "%.1f" % v
        self.R[k] = v
        self.results.append("live.%s=%s" % (k, v))
        with open(os.path.join(self.a.out, "results.txt"), "a") as f:
            f.write("live.%s=%s\n" % (k, v))

    # -------------------------------------------------------------- the event loop
    def loop(self, seconds, until=None):
        end = now() + seconds
        while True:
            t = now()
            if t >= end or (until and until()):
                return
            if self.writing:
                self.pace(t)
            for fd, ev in self.ep.poll(0.002 if self.writing else 0.02):
                o = self.fds.get(fd)
                if isinstance(o, Probe):
                    self.on_probe(fd, o, ev)
                elif isinstance(o, Writer):
                    self.on_writer(fd, o, ev)

    def ask(self, pipe, cmd):
        pipe.send(cmd)
        r = []
        self.loop(600, until=lambda: pipe.poll() and not r.append(pipe.recv()))
        return r[0]

    # -------------------------------------------------------------- probes
    def open_probes(self):
        hostA, hostB = "%s:%d" % self.A, "%s:%d" % self.B
        for inst, addr, host in (("a", self.A, hostA), ("b", self.B, hostB)):
            for b in self.boards:
                self.add_probe(inst, addr, host, "top", b, "/v1/leaderboards/%s/live?top=10" % b)
            if self.player_streams:
                for p in self.probe_players:
                    self.add_probe(inst, addr, host, "player", p,
                                   "/v1/leaderboards/big/players/%s/live?around=5" % p)

    def add_probe(self, inst, addr, host, kind, key, path):
        s = connect(addr)
        pr = Probe(s, inst, kind, key)
        pr.buf = get_req(host, path, "Accept: text/event-stream\r\n")
        self.fds[s.fileno()] = pr
        self.ep.register(s.fileno(), EV_OUT)
        self.probes.append(pr)

    def close_probes(self):
        for pr in self.probes:
            fd = pr.sock.fileno()
            if fd >= 0:
                self.ep.unregister(fd)
                self.fds.pop(fd, None)
                pr.sock.close()

    def on_probe(self, fd, pr, ev):
        if pr.state == 0:
            if ev & EV_ERR:
                pr.state, pr.status = 9, -1
                return
            pr.sock.send(pr.buf)
            pr.buf, pr.state = b"", 1
            self.ep.modify(fd, EV_IN)
            return
        try:
            data = pr.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        t = now()
        if not data:
            self.ep.unregister(fd)
            self.fds.pop(fd, None)
            pr.sock.close()
            pr.state = 9
            return
        if pr.state == 1:
            pr.buf += data
            h = parse_head(pr.buf)
            if h is None:
                return
            pr.status, _, data = h
            pr.buf = b""
            pr.state = 2 if pr.status == 200 else 9
            if pr.state == 9:
                return
        pr.body += pr.dc.feed(data)
        while True:
            i = pr.body.find(b"\n\n")
            if i < 0:
                break
            block, pr.body = pr.body[:i], pr.body[i + 2:]
            if b"\ndata: " not in block and not block.startswith(b"data: "):
                continue
            pr.events += 1
            pr.first = True
            if pr.kind == "top":
                for m in TAG_RE.finditer(block):
                    tag = int(m.group(1))
                    if tag not in pr.seen:
                        pr.seen[tag] = t
            else:
                m = PSCORE_RE.search(block)
                if m and m.group(1) != b"null":
                    sc = int(m.group(1))
                    if sc not in pr.seen:
                        pr.seen[sc] = t

    # -------------------------------------------------------------- writes
    def open_writers(self, n):
        """n new keep-alive connections to A (rankd cuts one that sends no request for a few
        seconds: they are opened again before each phase of writes)."""
        for w in self.w_conns:
            self.ep.unregister(w.sock.fileno())
            self.fds.pop(w.sock.fileno(), None)
            w.sock.close()
        self.w_conns = []
        for _ in range(n):
            s = connect(self.A)
            w = Writer(s)
            self.fds[s.fileno()] = w
            self.ep.register(s.fileno(), EV_OUT)
            self.w_conns.append(w)

    def next_item(self, k):
        """The k-th item of the writes: a new #1 of a top board, or a new score of a listened player."""
        self.seq += 1
        share = self.a.top_share   # new #1s evenly spread among the writes: item k is one when
        top = int((k + 1) * share) > int(k * share)   # the running count of them steps at k
        if self.player_streams and not top:
            p = self.players[self.rng.randrange(len(self.players))]
            last = self.pl_last[p]
            if self.a.moves == "small":   # the player improves a little: passes few others
                sc = last + self.rng.randint(1, 1000)
            else:                         # a new score anywhere: passes a third of the board
                sc = self.rng.randrange(1_000_000)
                while sc == last:
                    sc = self.rng.randrange(1_000_000)
            self.pl_last[p] = sc
            return "big", p, sc
        self.top_seq += 1   # every board in turn (self.seq alternates with the player writes)
        b = self.boards[self.top_seq % len(self.boards)]
        return b, "w%02d" % (self.top_seq // len(self.boards) % 20), TOP_TAG0 + self.seq

    def pace(self, t):
        a = self.a
        due = int((t - self.w_t0) * a.writes / a.batch)
        if due <= self.w_sent:
            return
        nw, tried = len(self.w_conns), 0
        while self.w_sent < due and tried < nw:
            w = self.w_conns[self.w_rr]
            self.w_rr, tried = (self.w_rr + 1) % nw, tried + 1
            if not w.idle:
                continue
            items = [self.next_item(self.w_sent * a.batch + i) for i in range(a.batch)]
            if a.batch == 1:
                b, p, sc = items[0]
                body = '{"player_id":"%s","score":%d}' % (p, sc)
                path = "/v1/leaderboards/%s/scores" % b
            else:
                body = '{"scores":[%s]}' % ",".join(
                    '{"board":"%s","player_id":"%s","score":%d}' % it for it in items)
                path = "/v1/scores:batch"
            req = ("POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n%s" % (path, self.A[0], self.A[1], a.write_key, len(body), body)).encode()
            for b, p, sc in items:
                if b == "big":
                    self.pl_writes.setdefault(p, []).append(sc)
            w.sock.send(req)
            w.idle, w.items, w.sent_at, w.buf, w.need = False, items, t, b"", -1
            self.w_sent += 1
        if self.w_sent < due:
            self.w_behind = max(self.w_behind, due - self.w_sent)

    def on_writer(self, fd, w, ev):
        if w.items is None and not w.idle:   # connecting
            if ev & EV_ERR:
                raise SystemExit("a writer's connection to A failed")
            self.ep.modify(fd, EV_IN)
            w.idle = True
            return
        try:
            data = w.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        t = now()
        if not data:
            # rankd cuts a connection that sent no request for a while (the acceptor's head
            # timeout; keep-alive's): a new one takes its place; one cut with a request in
            # flight counts its items as refused
            if w.items is not None:
                self.w_req_bad += 1
                self.w_bad += len(w.items)
                self.w_cut += 1
            self.ep.unregister(fd)
            self.fds.pop(fd, None)
            w.sock.close()
            s = connect(self.A)
            w.sock, w.idle, w.items, w.buf, w.need = s, False, None, b"", -1
            self.fds[s.fileno()] = w
            self.ep.register(s.fileno(), EV_OUT)
            return
        w.buf += data
        if w.need < 0:
            h = parse_head(w.buf)
            if h is None:
                return
            st, hd, w.buf = h
            w.status = st
            w.chunked = "content-length" not in hd
            w.need = int(hd.get("content-length", "0"))
        if w.chunked:
            if not w.buf.endswith(b"0\r\n\r\n"):
                return
            dc = Dechunk()
            body = dc.feed(w.buf)
        else:
            if len(w.buf) < w.need:
                return
            body = w.buf
        items = w.items
        w.idle, w.items, w.buf, w.need = True, None, b"", -1
        if w.status != 200:
            self.w_req_bad += 1
            self.w_bad += len(items)
            return
        if self.a.batch == 1:
            oks = [True]
        else:
            oks = ["error" not in r for r in json.loads(body)["results"]]
        for (b, p, sc), ok in zip(items, oks):
            if not ok:
                self.w_bad += 1
                continue
            self.w_items += 1
            if b == "big":
                self.pl_ack[(p, sc)] = (t, w.sent_at)
            else:
                self.top_ack[sc] = (t, w.sent_at, b)

    def start_writing(self):
        self.open_writers(32)
        self.loop(5.0, until=lambda: all(w.idle for w in self.w_conns))
        self.writing, self.w_t0, self.w_sent = True, now(), 0

    def write_phase(self, seconds):
        """Writes at the rate for `seconds`, then 2 s more for the last acknowledgements and events."""
        self.top_ack, self.pl_ack, self.pl_writes = {}, {}, {}
        self.w_items = self.w_bad = self.w_req_bad = self.w_behind = 0
        self.start_writing()
        self.loop(seconds)
        self.writing = False
        self.loop(10, until=lambda: all(w.idle for w in self.w_conns))
        self.loop(2.0)   # the last events

    # -------------------------------------------------------------- delays
    def delays(self):
        """Per instance and kind: the delays from acknowledgement to first event, and the writes
        never shown (a player's score replaced before any event showed it is not counted)."""
        out = {}
        by_board = {}
        for tag, (ta, ts, b) in self.top_ack.items():
            by_board.setdefault(b, []).append((tag, ta, ts))
        for pr in self.probes:
            if pr.status != 200:
                continue
            d = out.setdefault((pr.inst, pr.kind), {"ack": [], "sent": [], "missed": 0, "replaced": 0})
            if pr.kind == "top":
                for tag, ta, ts in by_board.get(pr.key, ()):
                    t = pr.seen.get(tag)
                    if t is None:
                        d["missed"] += 1
                    else:
                        d["ack"].append(t - ta)
                        d["sent"].append(t - ts)
            else:
                writes = self.pl_writes.get(pr.key, [])
                for i, sc in enumerate(writes):
                    ack = self.pl_ack.get((pr.key, sc))
                    if ack is None:
                        continue
                    t = pr.seen.get(sc)
                    if t is None:
                        if i + 1 < len(writes):
                            d["replaced"] += 1
                        else:
                            d["missed"] += 1
                    else:
                        d["ack"].append(t - ack[0])
                        d["sent"].append(t - ack[1])
            pr.seen = {}
        return out


def every(period, check):
    """check(), called at most once a period (an until of Load.loop)."""
    last = [0.0]

    def f():
        if now() - last[0] < period:
            return False
        last[0] = now()
        return check()
    return f


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    for k in ("a", "b", "admin-key", "write-key", "out", "rank-tier", "moves"):
        ap.add_argument("--" + k, required=True)
    for k in ("pid-a", "pid-b", "pid-pg", "pid-redis", "listeners", "writes", "duration", "players", "boards",
              "distinct-players", "batch", "probe-players"):
        ap.add_argument("--" + k, type=int, required=True)
    ap.add_argument("--top-share", type=float, default=0.5)
    ap.add_argument("--min-interval-ms", type=int, default=100)
    a = ap.parse_args()
    L = Load(a)
    A, B = L.A, L.B
    rec = L.rec

    # player streams: on this build?
    st, _ = fetch(A, "/v1/leaderboards/big/players/%s" % L.players[0])
    if st != 200:
        raise SystemExit("GET a player of big -> %d" % st)
    s = socket.create_connection(A, timeout=10)
    s.sendall(get_req("%s:%d" % A, "/v1/leaderboards/big/players/%s/live?around=5" % L.players[0]))
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(65536)
        if not d:
            break
        head += d
    s.close()
    L.player_streams = head.startswith(b"HTTP/1.1 200")
    rec("player_streams", "yes" if L.player_streams else "no (GET …/players/{p}/live answered %s: not on this build)"
        % head.split(b"\r\n", 1)[0].decode(errors="replace"))
    log("player streams: %s" % L.R["player_streams"])

    # the listeners: probes on A and B, the rest of L on A in the bulk worker
    n_probe_a = len(L.boards) + (len(L.probe_players) if L.player_streams else 0)
    bulk_n = max(0, a.listeners - n_probe_a)
    n_top = bulk_n // 2 if L.player_streams else bulk_n
    bulk = []
    for i in range(n_top):
        b = L.boards[i % len(L.boards)]
        bulk.append(("/v1/leaderboards/%s/live?top=10" % b, "/v1/leaderboards/%s/entries?limit=10" % b))
    for i in range(bulk_n - n_top):
        p = L.players[i % len(L.players)]
        bulk.append(("/v1/leaderboards/big/players/%s/live?around=5" % p,
                     "/v1/leaderboards/big/players/%s/around?before=5&after=5" % p))
    rec("listeners", a.listeners)
    rec("listeners_top", n_top + len(L.boards))
    rec("listeners_player", bulk_n - n_top + (len(L.probe_players) if L.player_streams else 0))
    rec("probes_per_instance", n_probe_a)
    rec("boards", len(L.boards))
    rec("big_players", a.players)
    rec("distinct_players", len(L.players) if L.player_streams else 0)
    rec("writes_per_s", a.writes)
    rec("batch", a.batch)
    rec("moves", a.moves)
    rec("top_share", a.top_share)
    rec("duration_s", a.duration)
    # The fewest events a second on A that show every write within 50 ms (the target's p99): a
    # stream computed at most every min-interval ms sends at most that often, and each change of
    # it, evenly spread (next_item), needs an event of its own below that rate. A lower bound: a
    # listened player's move also changes the streams of the players it passes.
    per_stream = 1000.0 / max(1, a.min_interval_ms)
    top_changes = a.writes * a.top_share / max(1, len(L.boards))
    demand = (n_top + len(L.boards)) * min(top_changes, per_stream)
    if L.player_streams:
        moves = a.writes * (1 - a.top_share) / (len(L.players) if a.moves == "small" else 1)
        demand += (bulk_n - n_top + len(L.probe_players)) * min(moves, per_stream)
    rec("push.events_needed_min_per_s", round(demand))

    nw = max(1, (len(bulk) + 14999) // 15000)   # one process holds 15,000 at most (its descriptor limit)
    pipes, workers = [], []
    for _ in range(nw):
        parent, child = mp.Pipe()
        w = mp.Process(target=bulk_worker, args=(child, a.a), daemon=True)
        w.start()
        pipes.append(parent)
        workers.append(w)
    rec("client_processes", nw + 1)

    def ask_all(cmd):
        return [L.ask(pp, cmd) for pp in pipes]

    def status():
        sts = ask_all(("status",))
        m = {"statuses": {}, "poll_lat": []}
        for st in sts:
            for k, v in st.items():
                if k == "statuses":
                    for kk, vv in v.items():
                        m["statuses"][kk] = m["statuses"].get(kk, 0) + vv
                elif k == "poll_lat":
                    m[k] += v
                else:
                    m[k] = m.get(k, 0) + v
        return m

    pids = {"a": a.pid_a, "b": a.pid_b, "redis": a.pid_redis}

    def snap():
        s = {k: proc_ticks(p) for k, p in pids.items()}
        s["pg"] = tree_ticks(a.pid_pg)
        s["client"] = proc_ticks(os.getpid()) + sum(proc_ticks(w.pid) for w in workers)
        s["t"] = now()
        return s

    def cpu(s0, s1, prefix):
        dt = s1["t"] - s0["t"]
        for k in ("a", "b", "pg", "redis", "client"):
            rec("%s.cpu_%s_pct" % (prefix, k), 100.0 * (s1[k] - s0[k]) / CLK / dt)
        return {k: (s1[k] - s0[k]) / CLK for k in ("a", "b", "pg", "redis", "client")}, dt

    # ---- the rank tier (when on) holds every window streamed before anything is measured
    want = len(L.boards) + 1
    if a.rank_tier not in ("0", "0B", ""):
        for inst in (A, B):
            fetch(inst, "/v1/leaderboards/big/players/%s/around?before=5&after=5" % L.players[0])
            for b in L.boards:
                fetch(inst, "/v1/leaderboards/%s/entries?limit=10" % b)
        t0 = now()
        while True:
            ready = [metrics(inst, a.admin_key).get('rankd_rank_tier_windows{state="ready"}', 0) for inst in (A, B)]
            if min(ready) >= want:
                break
            if now() - t0 > 120:
                raise SystemExit("the rank tier holds %s windows of %d after 120 s" % (ready, want))
            time.sleep(0.5)
        rec("tier_ready_s", now() - t0)
        log("rank tier: %d windows ready on A and B in %.1f s" % (want, now() - t0))

    # ---- what a plain connection weighs (the reference of a listener's bytes): as many keep-alive
    # connections as there will be listeners on A, each after one read, on B (A's RSS must not
    # hold their memory, freed and reused, when its listeners are counted)
    t0 = now()
    rb0 = rss_kb(a.pid_b)
    for i, pp in enumerate(pipes):
        pp.send(("open", "p", [(q, "127.0.2.%d" % (10 + i)) for _, q in bulk[i::nw]], a.b))
    while True:
        L.loop(0.5)
        stt = status()
        if stt["pending"] == 0 and stt["ready"] >= stt["conns"]:
            break
        if now() - t0 > 120:
            raise SystemExit("the plain connections to B did not open in 120 s: %s" % stt)
    L.loop(2.0)
    rb1 = rss_kb(a.pid_b)
    rec("idle.plain_connections_b", stt["conns"])
    rec("idle.bytes_per_plain_connection_b", (rb1 - rb0) * 1024.0 / max(1, stt["conns"]))
    ask_all(("close",))
    log("plain connections: %d on B, %.0f bytes each" % (stt["conns"], (rb1 - rb0) * 1024.0 / max(1, stt["conns"])))

    # ---- idle: RSS without and with the listeners
    L.loop(2.0)
    rss0 = rss_kb(a.pid_a)
    rec("idle.rss_a_before_kb", rss0)
    t0 = now()
    L.open_probes()
    for i, pp in enumerate(pipes):
        pp.send(("open", "s", [(p, "127.0.0.%d" % (10 + i)) for p, _ in bulk[i::nw]]))
    last = 0
    while True:
        L.loop(0.5)
        stt = status()
        probes_ready = sum(1 for pr in L.probes if pr.first or pr.state == 9)
        if stt["pending"] == 0 and stt["ready"] >= stt["conns"] and probes_ready == len(L.probes):
            break
        if now() - last > 5:
            log("opening: %d of %d bulk streams have had their first event, %d probes of %d"
                % (stt["ready"], len(bulk), probes_ready, len(L.probes)))
            last = now()
        if now() - t0 > 300:
            raise SystemExit("the listeners did not open in 300 s: %s" % stt)
    open_s = now() - t0
    bad_probes = [pr for pr in L.probes if pr.status != 200]
    rec("idle.open_s", open_s)
    rec("idle.bulk_statuses", json.dumps(stt["statuses"], sort_keys=True))
    rec("idle.probe_failures", len(bad_probes))
    ma = metrics(A, a.admin_key)
    rec("idle.listeners_a", int(ma.get("rankd_live_listeners", 0)))
    rec("idle.streams_a", int(ma.get("rankd_live_streams", 0)))
    log("open: %d listeners on A in %.1f s (%s)" % (ma.get("rankd_live_listeners", 0), open_s, stt["statuses"]))
    L.loop(3.0)
    rss1 = rss_kb(a.pid_a)
    n_a = int(ma.get("rankd_live_listeners", 0)) or 1
    rec("idle.rss_a_after_kb", rss1)
    rec("idle.bytes_per_listener", (rss1 - rss0) * 1024.0 / n_a)
    s0 = snap()
    L.loop(5.0)
    s1 = snap()
    cpu(s0, s1, "idle")
    # What the listeners hold once the openings' garbage is returned: each opening's request
    # passed through libmicrohttpd (its connection's 16 KiB pool, freed when a live stream leaves
    # it), and the allocator gives freed pages back gradually over about 10 s (jemalloc's
    # dirty_decay_ms): RSS every 2 s until two readings differ by less than 0.5 % (60 s at most).
    prev, rss2, waited = rss1, rss_kb(a.pid_a), now() - t0 - open_s
    while abs(prev - rss2) > 0.005 * max(prev, 1) and waited < 60:
        L.loop(2.0)
        prev, rss2, waited = rss2, rss_kb(a.pid_a), now() - t0 - open_s
    rec("idle.rss_a_settled_kb", rss2)
    rec("idle.settled_after_s", round(waited, 1))
    rec("idle.bytes_per_listener_settled", (rss2 - rss0) * 1024.0 / n_a)
    log("idle: %.0f bytes per listener 3 s after the last opened, %.0f once settled (%.0f s after)"
        % ((rss1 - rss0) * 1024.0 / n_a, (rss2 - rss0) * 1024.0 / n_a, waited))

    # ---- push: writes, every listener open
    def phase_counts():
        st = status()
        return st, metrics(A, a.admin_key), metrics(B, a.admin_key), sum(pr.events for pr in L.probes)

    c0 = phase_counts()
    s0 = snap()
    log("push: %d submissions/s for %d s" % (a.writes, a.duration))
    L.write_phase(a.duration)
    s1 = snap()
    c1 = phase_counts()
    rec("push.rss_a_kb", rss_kb(a.pid_a))
    rec("push.rss_b_kb", rss_kb(a.pid_b))
    push_cpu, push_dt = cpu(s0, s1, "push")
    rec("push.submissions_acked", L.w_items)
    rec("push.submissions_refused", L.w_bad)
    rec("push.writer_most_behind", L.w_behind)
    rec("push.writes_cut_in_flight", L.w_cut)
    ev_client = c1[0]["events"] - c0[0]["events"] + c1[3] - c0[3]
    ev_a = c1[1].get("rankd_live_events_total", 0) - c0[1].get("rankd_live_events_total", 0)
    ev_b = c1[2].get("rankd_live_events_total", 0) - c0[2].get("rankd_live_events_total", 0)
    rec("push.events_client", ev_client)
    rec("push.events_client_bulk", c1[0]["events"] - c0[0]["events"])
    rec("push.bytes_client_bulk", c1[0]["bytes"] - c0[0]["bytes"])
    rec("push.events_a", int(ev_a))
    rec("push.events_b", int(ev_b))
    rec("push.events_per_s", ev_client / push_dt)
    rec("push.computed_a", int(c1[1].get("rankd_live_computed_total", 0) - c0[1].get("rankd_live_computed_total", 0)))
    rec("push.computed_b", int(c1[2].get("rankd_live_computed_total", 0) - c0[2].get("rankd_live_computed_total", 0)))
    rec("push.dropped_a", int(c1[1].get("rankd_live_dropped_total", 0)))
    rec("push.listeners_a_end", int(c1[1].get("rankd_live_listeners", 0)))
    rec("push.bulk_closed", c1[0]["closed"])
    if ev_a:
        rec("push.cpu_a_us_per_event", push_cpu["a"] * 1e6 / ev_a)
    dl = L.delays()
    for (inst, kind), d in sorted(dl.items()):
        k = "push.delay_%s_%s" % (kind, inst)
        rec(k + "_n", len(d["ack"]))
        rec(k + "_missed", d["missed"])
        if kind == "player":
            rec(k + "_replaced", d["replaced"])
        for p in (50, 99):
            rec(k + "_p%d_ms" % p, 1000 * pct(d["ack"], p))
        rec(k + "_max_ms", 1000 * max(d["ack"]) if d["ack"] else float("nan"))
        rec(k + "_from_send_p50_ms", 1000 * pct(d["sent"], 50))
        rec(k + "_from_send_p99_ms", 1000 * pct(d["sent"], 99))
        log("delay %s on %s: p50 %.1f ms, p99 %.1f ms over %d (missed %d)"
            % (kind, inst, 1000 * pct(d["ack"], 50), 1000 * pct(d["ack"], 99), len(d["ack"]), d["missed"]))
    for inst in ("a", "b"):
        allv = [x for (i, _), d in dl.items() if i == inst for x in d["ack"]]
        rec("push.delay_%s_p50_ms" % inst, 1000 * pct(allv, 50))
        rec("push.delay_%s_p99_ms" % inst, 1000 * pct(allv, 99))

    # ---- the streams closed: the same writes alone
    ask_all(("close",))
    L.close_probes()
    t0 = now()
    L.start_writing()     # writes meanwhile: a closed stream is found at its next event
    gone = []

    def all_gone():
        n = metrics(A, a.admin_key).get("rankd_live_listeners", 0)
        gone.append((now() - t0, n))
        return n == 0
    L.loop(30, until=every(0.5, all_gone))
    # the listeners A still counted 1, 2, 5, 10, 20 s after the client closed them all
    for at in (1, 2, 5, 10, 20):
        left = [n for t, n in gone if t <= at]
        rec("writes.listeners_a_left_%ds" % at, int(left[-1]) if left else -1)
    L.writing = False
    L.loop(10, until=lambda: all(w.idle for w in L.w_conns))
    rec("writes.listeners_gone_s", now() - t0)
    mg = metrics(A, a.admin_key)
    rec("writes.listeners_a_left", int(mg.get("rankd_live_listeners", 0)))
    rec("writes.streams_a_left", int(mg.get("rankd_live_streams", 0)))
    wdur = min(a.duration, 10)
    s0 = snap()
    L.write_phase(wdur)
    s1 = snap()
    wr_cpu, wr_dt = cpu(s0, s1, "writes")
    rec("writes.submissions_acked", L.w_items)

    # ---- polling: the same listeners as keep-alive connections, each a read a second
    t0 = now()
    for i, pp in enumerate(pipes):
        pp.send(("open", "p", [(q, "127.0.1.%d" % (10 + i)) for _, q in bulk[i::nw]]))
    while True:
        L.loop(0.5)
        stt = status()
        if stt["pending"] == 0 and stt["ready"] >= stt["conns"]:
            break
        if now() - t0 > 300:
            raise SystemExit("the pollers did not connect in 300 s: %s" % stt)
    rec("poll.connections", stt["conns"])
    rec("poll.open_s", now() - t0)
    ask_all(("poll_start",))
    L.loop(2.0)
    c0 = status()
    s0 = snap()
    log("poll: %d pollers, once a second, %d submissions/s for %d s" % (stt["conns"], a.writes, a.duration))
    L.write_phase(a.duration)
    s1 = snap()
    c1 = status()
    ask_all(("poll_stop",))
    poll_cpu, poll_dt = cpu(s0, s1, "poll")
    rec("poll.rss_a_kb", rss_kb(a.pid_a))
    rec("poll.reads", c1["poll_done"] - c0["poll_done"])
    rec("poll.reads_per_s", (c1["poll_done"] - c0["poll_done"]) / poll_dt)
    rec("poll.skipped", c1["poll_skipped"] - c0["poll_skipped"])
    rec("poll.not_200", c1["poll_bad"])
    rec("poll.read_p50_ms", 1000 * pct(c1["poll_lat"], 50))
    rec("poll.read_p99_ms", 1000 * pct(c1["poll_lat"], 99))
    rec("poll.submissions_acked", L.w_items)
    ask_all(("close",))
    for pp in pipes:
        pp.send(("quit",))
    for w in workers:
        w.join(5)

    # ---- the comparison
    push_s = push_cpu["a"] / push_dt
    poll_s = poll_cpu["a"] / poll_dt
    wr_s = wr_cpu["a"] / wr_dt
    rec("cmp.cpu_a_push_core", push_s)
    rec("cmp.cpu_a_poll_core", poll_s)
    rec("cmp.cpu_a_writes_only_core", wr_s)
    rec("cmp.push_over_poll", push_s / poll_s if poll_s else float("nan"))
    rec("cmp.push_extra_over_poll_extra", (push_s - wr_s) / (poll_s - wr_s) if poll_s > wr_s else float("nan"))
    if ev_a:
        rec("cmp.cpu_a_us_per_event_over_writes", (push_s - wr_s) * push_dt * 1e6 / ev_a)
    reads = c1["poll_done"] - c0["poll_done"]
    ev_rate = ev_a / n_a / push_dt
    rec("cmp.events_per_listener_s_a", ev_rate)
    rec("cmp.reads_per_poller_s", reads / poll_dt / max(1, stt["conns"]))
    if reads and ev_a:
        us_read = (poll_s - wr_s) * poll_dt * 1e6 / reads
        us_event = (push_s - wr_s) * push_dt * 1e6 / ev_a
        rec("cmp.cpu_a_us_per_poll_read_over_writes", us_read)
        rec("cmp.event_over_poll_read", us_event / us_read if us_read > 0 else float("nan"))
        # polling as often as push delivered, each listener at the rate of its events
        rec("cmp.poll_at_push_rate_core", wr_s + us_read * ev_rate * n_a / 1e6)
    all_push = (push_cpu["a"] + push_cpu["b"] + push_cpu["pg"] + push_cpu["redis"]) / push_dt
    all_poll = (poll_cpu["a"] + poll_cpu["b"] + poll_cpu["pg"] + poll_cpu["redis"]) / poll_dt
    rec("cmp.cpu_servers_push_core", all_push)
    rec("cmp.cpu_servers_poll_core", all_poll)
    report(a.out)


def report(out):
    R = {}
    for line in open(os.path.join(out, "results.txt")):
        k, _, v = line.rstrip("\n").partition("=")
        if k.startswith("live."):
            R[k[5:]] = v
    g = lambda k, d="?": R.get(k, d)
    f = lambda k: float(R[k]) if k in R and R[k] not in ("nan",) else float("nan")
    lines = ["# Live streams (issue 52): push against polling", "",
             "Player streams: %s. Rank tier: %s; live.min_interval_ms: %s. CPUs: PostgreSQL, Redis and rankd B "
             "%s, rankd A %s, the load %s." % (
                 g("player_streams"), g("meta.rank_tier"), g("meta.min_interval_ms"), g("meta.server_cpus"),
                 g("meta.a_cpus", g("meta.server_cpus")), g("meta.client_cpus")), "",
             "%s listeners on rankd A (%s top-10 streams of %s boards, %s player streams of %s players of a %s-player "
             "board), %s probes on each of A and B; %s submissions/s (scores:batch of %s; 1 = lone POSTs; a share of %s "
             "new #1s of the top boards, the others new scores of listened players, moves: %s), %s s a phase." % (
                 g("listeners"), g("listeners_top"), g("boards"), g("listeners_player"), g("distinct_players"),
                 g("big_players"), g("probes_per_instance"), g("writes_per_s"), g("batch"), g("top_share", "0.5"),
                 g("moves"),
                 g("duration_s")), "",
             "| figure | value | target |", "|---|---:|---|",
             "| RSS per idle listener (A), settled (%s s after the last opened) | %.0f B | ≤ 8 KiB |" % (
                 g("idle.settled_after_s"), f("idle.bytes_per_listener_settled")),
             "| RSS per idle listener (A), 3 s after the last opened | %.0f B | |" % f("idle.bytes_per_listener"),
             "| RSS per plain keep-alive connection after one read (B, reference) | %.0f B | |" % f(
                 "idle.bytes_per_plain_connection_b"),
             "| listeners opened in | %.1f s | |" % f("idle.open_s"),
             "| events delivered (push) | %s (%.0f/s) | |" % (g("push.events_client"), f("push.events_per_s")),
             "| events a second A must send to show every write within 50 ms, at least | %.0f/s "
             "(docs/capacity.md §8: the machine's floor) | |" % f("push.events_needed_min_per_s"),
             "| rankd A CPU per delivered event | %.1f µs (%.1f µs over the writes alone) | stated |" % (
                 f("push.cpu_a_us_per_event"), f("cmp.cpu_a_us_per_event_over_writes")),
             "| delay ack → event, A, p50 / p99 | %.1f / %.1f ms | p99 ≤ 50 ms |" % (f("push.delay_a_p50_ms"), f("push.delay_a_p99_ms")),
             "| delay ack → event, B, p50 / p99 | %.1f / %.1f ms | p99 ≤ 50 ms |" % (f("push.delay_b_p50_ms"), f("push.delay_b_p99_ms")),
             "| rankd A CPU: push / poll / writes only | %.3f / %.3f / %.3f core | push < poll |" % (
                 f("cmp.cpu_a_push_core"), f("cmp.cpu_a_poll_core"), f("cmp.cpu_a_writes_only_core")),
             "| push / poll (A's CPU) | %.3f | < 1 |" % f("cmp.push_over_poll"),
             "| events per listener per second (A) / reads per poller per second | %.2f / %.2f | |" % (
                 f("cmp.events_per_listener_s_a"), f("cmp.reads_per_poller_s")),
             "| rankd A CPU per poll read (over the writes alone) | %.1f µs | |" % f("cmp.cpu_a_us_per_poll_read_over_writes"),
             "| an event's CPU / a poll read's | %.2f | |" % f("cmp.event_over_poll_read"),
             "| polling each listener as often as push sent it events (estimate) | %.3f core | |" % f("cmp.poll_at_push_rate_core"),
             "| submissions acknowledged: push / writes alone / poll | %s / %s / %s | |" % (
                 g("push.submissions_acked"), g("writes.submissions_acked"), g("poll.submissions_acked")),
             "| listeners dropped by A for not reading (push) | %s | |" % g("push.dropped_a"),
             "| closed streams still counted by A after | %s s: %s | |" % (g("writes.listeners_gone_s"), g("writes.listeners_a_left")),
             "| load's own CPU: idle / push / poll | %.0f %% / %.0f %% / %.0f %% | |" % (
                 f("idle.cpu_client_pct"), f("push.cpu_client_pct"), f("poll.cpu_client_pct")),
             "| all servers' CPU: push / poll | %.3f / %.3f core | |" % (f("cmp.cpu_servers_push_core"), f("cmp.cpu_servers_poll_core")),
             "", "Delays by stream kind (from the write's acknowledgement; from its sending in brackets):", "",
             "| stream | instance | writes shown | p50 ms | p99 ms | max ms | never shown |", "|---|---|---:|---:|---:|---:|---:|"]
    for kind in ("top", "player"):
        for inst in ("a", "b"):
            k = "push.delay_%s_%s" % (kind, inst)
            if k + "_n" in R:
                lines.append("| %s | %s | %s | %.1f (%.1f) | %.1f (%.1f) | %.1f | %s |" % (
                    kind, inst.upper(), g(k + "_n"), f(k + "_p50_ms"), f(k + "_from_send_p50_ms"), f(k + "_p99_ms"),
                    f(k + "_from_send_p99_ms"), f(k + "_max_ms"), g(k + "_missed")))
    lines += ["", "Every figure: `results.txt` (keys `live.*`)."]
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "report":   # live.py report OUT: the report again
        report(sys.argv[2])
    else:
        main()
