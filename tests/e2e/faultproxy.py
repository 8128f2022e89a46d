"""A TCP proxy that injects faults between rankd and PostgreSQL or Redis, for the tests.

    proxy = FaultProxy(("127.0.0.1", upstream_port)).start()
    ... point rankd at ("127.0.0.1", proxy.port) ...
    proxy.set("latency", ms=200)   # every chunk, both ways, delayed
    proxy.set("stall")             # connections accepted and kept; nothing goes through
    proxy.set("reset")             # every connection reset now, new ones reset on arrival
    proxy.set("half_open")         # bytes to the server still go; nothing comes back
    proxy.set("pass")              # back to normal (stalled connections stay stalled)
    proxy.stop()

One thread accepts; each connection has a thread per direction. Everything it started ends
with stop(); it listens on loopback only and binds a free port."""
import select
import socket
import struct
import threading
import time


class FaultProxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.mode = "pass"
        self.latency_s = 0.0
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # notified when the mode changes
        self.conns = []          # (client socket, server socket)
        self.stopping = False
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.threads = []

    def start(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def set(self, mode, ms=0):
        with self.lock:
            self.mode = mode
            self.latency_s = ms / 1000.0
            conns = list(self.conns)
            self.changed.notify_all()
        if mode == "reset":
            for c, s in conns:
                self._reset(c)
                self._reset(s)

    @staticmethod
    def _reset(sock):
        try:  # SO_LINGER 0: close() sends a reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            r, _, _ = select.select([self.listener], [], [], 0.1)
            if not r:
                continue
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            with self.lock:
                mode = self.mode
            if mode == "reset":
                self._reset(client)
                continue
            if mode == "stall":  # accepted, never connected upstream, never answered
                with self.lock:
                    self.conns.append((client, socket.socket()))
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append((client, server))
            for a, b, upward in ((client, server, True), (server, client, False)):
                t = threading.Thread(target=self._pump, args=(a, b, upward), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, upward):
        try:
            while not self.stopping:
                try:
                    r, _, _ = select.select([src], [], [], 0.1)
                except ValueError:  # closed under us (a reset)
                    break
                if not r:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                with self.changed:  # a stall holds what came in until the mode changes
                    while self.mode == "stall" and not self.stopping:
                        self.changed.wait(1.0)
                    mode, delay = self.mode, self.latency_s
                if self.stopping:
                    return
                if mode == "half_open" and not upward:
                    continue  # the answer is dropped: the client waits forever
                if mode == "latency" and delay:
                    time.sleep(delay)  # the fault itself: this much added to every chunk
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        with self.changed:
            self.changed.notify_all()
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
            self.conns = []
        for c, s in conns:
            for x in (c, s):
                try:
                    x.close()
                except OSError:
                    pass
        for t in self.threads:
            t.join(2)
