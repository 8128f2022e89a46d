"""
tests/e2e/conftest.py — real servers for rankd's end-to-end tests.

Session fixtures start one PostgreSQL 15 cluster (initdb into a temporary
folder, loopback port, run as the postgres user) and one Redis server; each
test module gets its own freshly created and migrated database and its own
Redis logical database, so modules never see each other's boards. A factory
starts `rankd serve` with a generated configuration on a free port, waits
for /healthz and stops it by PID. Nothing here stops a process it did not
start.

Helpers (Client, raw_request, create_board, ...) are imported by the test
modules with `from conftest import ...`.
"""

import contextlib
import datetime as _dt
import hashlib
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import psycopg2
import pytest
import redis as redis_mod

import openapi_check

# ---------------------------------------------------------------------------
# Constants and locations
# ---------------------------------------------------------------------------

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RANKD_BIN = os.environ.get("RANKD_BIN") or os.path.join(REPO, "build", "rankd")
MIGRATIONS_DIR = os.environ.get("RANKD_MIGRATIONS_DIR") or os.path.join(REPO, "migrations")
PG_BIN = os.environ.get("RANKD_PG_BIN", "/usr/lib/postgresql/15/bin")
REDIS_SERVER = os.environ.get("RANKD_REDIS_SERVER", "/usr/bin/redis-server")
REDIS_CLI = os.environ.get("RANKD_REDIS_CLI", "/usr/bin/redis-cli")

ADMIN_KEY = "test-admin-key-0001"
WRITE_KEY = "test-write-key-0001"
READ_KEY = "test-read-key-00001"
ALL_KEYS = (ADMIN_KEY, WRITE_KEY, READ_KEY)
CURSOR_SECRET = "test-cursor-secret-0123456789"
CORS_ORIGIN = "https://game.example"

SCORE_MAX = 2**53 - 1
SCORE_MIN = -SCORE_MAX

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}

ERROR_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    422: "implausible",  # a player token's submission that breaks its board's client_rules
    414: "invalid_argument",  # API.md names the status, not a code of its own
    431: "invalid_argument",  # likewise
    500: "internal",
    503: "unavailable",
}

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

_counter = itertools.count(1)


def free_port():
    """A port that was free a moment ago (bind port 0 on loopback)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def unique(prefix="b"):
    """A fresh id usable as a board id or a player id."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def wait_pid(proc, timeout):
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Stop a process we started, by PID: `sig`, then SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    if not wait_pid(proc, timeout):
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return proc.returncode


# ---------------------------------------------------------------------------
# Time helpers
# ---------------------------------------------------------------------------

def parse_ts(s):
    """RFC 3339 '...T..:..:..mmmZ' -> integer milliseconds since the epoch."""
    assert isinstance(s, str) and TS_RE.match(s), "not an RFC 3339 UTC ms timestamp: %r" % (s,)
    d = _dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.timezone.utc)
    return int(round(d.timestamp() * 1000))


def now_ms():
    return int(time.time() * 1000)


def window_start(reset, day=None):
    """The window id (its start date) containing UTC date `day`."""
    if day is None:
        day = _dt.datetime.now(_dt.timezone.utc).date()
    if reset == "none":
        return _dt.date(1970, 1, 1)
    if reset == "daily":
        return day
    if reset == "weekly":
        return day - _dt.timedelta(days=day.weekday())
    if reset == "monthly":
        return day.replace(day=1)
    raise ValueError(reset)


def next_window_start(reset, day=None):
    start = window_start(reset, day)
    if reset == "none":
        return None
    if reset == "daily":
        return start + _dt.timedelta(days=1)
    if reset == "weekly":
        return start + _dt.timedelta(days=7)
    if reset == "monthly":
        return (start.replace(day=28) + _dt.timedelta(days=4)).replace(day=1)
    raise ValueError(reset)


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Resp:
    """A response: status, headers (list of (name, value)), raw body bytes."""

    def __init__(self, status, reason, headers, body, method="GET", path=""):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.method = method
        self.path = path
        self._json = None

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header_tokens(self, name):
        """Comma-separated tokens across every occurrence of a header, lowercased."""
        out = []
        for v in self.header_all(name):
            out.extend(t.strip().lower() for t in v.split(",") if t.strip())
        return out

    def json(self):
        if self._json is None:
            try:
                self._json = json.loads(self.body.decode("utf-8"))
            except Exception as e:  # noqa: BLE001
                raise AssertionError("%s %s -> %d: body is not JSON (%s): %r"
                                     % (self.method, self.path, self.status, e, self.body[:500]))
        return self._json

    def __repr__(self):
        return "<%s %s -> %d %r>" % (self.method, self.path, self.status, self.body[:300])

    def describe(self):
        return "%s %s -> %d %s" % (self.method, self.path, self.status, self.body[:400])


_DEFAULT = object()

# Responses that disagreed with api/openapi.json during the current test (openapi_check.py).
OPENAPI_MISMATCHES = []


@pytest.fixture(autouse=True)
def responses_match_the_openapi_document():
    """Every response a test receives is held to api/openapi.json; a mismatch fails the test."""
    del OPENAPI_MISMATCHES[:]
    yield
    found = list(OPENAPI_MISMATCHES)
    del OPENAPI_MISMATCHES[:]
    assert not found, "%d response(s) disagree with api/openapi.json; the first: %s" % (len(found), found[0])


class _Connection(http.client.HTTPConnection):
    """An HTTPConnection that may write a PROXY protocol header first, as a load balancer does."""

    def __init__(self, *args, proxy_header=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._proxy_header = proxy_header

    def connect(self):
        super().connect()
        if self._proxy_header:
            self.sock.sendall(self._proxy_header)


def proxy_v1(client_ip, client_port=40000, server_ip="127.0.0.1", server_port=80):
    """A PROXY protocol v1 line naming an IPv4 client."""
    return ("PROXY TCP4 %s %s %d %d\r\n" % (client_ip, server_ip, client_port, server_port)).encode()


class Client:
    """A keep-alive HTTP/1.1 client bound to one rankd and one key. `source`: the local address
    to connect from (any 127.x.y.z is this machine); `proxy_header`: bytes written first on each
    connection (to an instance with http.proxy_protocol)."""

    def __init__(self, host, port, key=None, timeout=30, source=None, proxy_header=None):
        self.host = host
        self.port = port
        self.key = key
        self.timeout = timeout
        self.source = source
        self.proxy_header = proxy_header
        self._conn = None

    def with_key(self, key):
        return Client(self.host, self.port, key, self.timeout, self.source, self.proxy_header)

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self):
        if self._conn is None:
            self._conn = _Connection(self.host, self.port, timeout=self.timeout,
                                     source_address=(self.source, 0) if self.source else None,
                                     proxy_header=self.proxy_header)
        return self._conn

    def request(self, method, path, body=None, headers=None, key=_DEFAULT, json_body=_DEFAULT,
                content_type=_DEFAULT, on_sent=None):
        """`on_sent`: called once the whole request is written, before its answer is read."""
        hdrs = {}
        k = self.key if key is _DEFAULT else key
        if k is not None:
            hdrs["Authorization"] = "Bearer " + k
        if json_body is not _DEFAULT:
            body = json.dumps(json_body, separators=(",", ":")).encode()
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            ct = "application/json" if content_type is _DEFAULT else content_type
            if ct is not None:
                hdrs["Content-Type"] = ct
        if headers:
            hdrs.update(headers)
        for attempt in (0, 1):
            conn = self._connection()
            fresh = conn.sock is None
            try:
                conn.putrequest(method, path, skip_accept_encoding=True)
                for hk, hv in hdrs.items():
                    conn.putheader(hk, hv)
                if body is not None and not any(h.lower() == "content-length" for h in hdrs):
                    conn.putheader("Content-Length", str(len(body)))
                try:
                    conn.endheaders(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The server may answer (413) and close before reading the
                    # whole body; what it said is still in our receive buffer.
                    if body is None or len(body) < 65536:
                        raise
                if on_sent:
                    on_sent()
                r = conn.getresponse()
                data = r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady) as e:
                self.close()
                if attempt == 0 and not fresh:
                    continue  # the server closed an idle keep-alive connection
                raise ConnectionError("%s %s: %r" % (method, path, e)) from e
            except Exception:
                self.close()
                raise
            resp = Resp(r.status, r.reason, r.getheaders(), data, method, path)
            try:
                openapi_check.check(method, path, r.status, r.getheaders(), data)
            except AssertionError as e:  # collected: the client may run on a test's own thread
                OPENAPI_MISMATCHES.append(str(e))
            if r.will_close:
                self.close()
            return resp
        raise AssertionError("unreachable")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def post(self, path, json_body=_DEFAULT, **kw):
        return self.request("POST", path, json_body=json_body, **kw)

    def patch(self, path, json_body=_DEFAULT, **kw):
        return self.request("PATCH", path, json_body=json_body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def options(self, path, **kw):
        return self.request("OPTIONS", path, **kw)


def _read_until(sock, buf, marker, deadline):
    while marker not in buf:
        if time.time() > deadline:
            raise TimeoutError("no complete response head")
        chunk = sock.recv(65536)
        if not chunk:
            return buf, False
        buf += chunk
    return buf, True


def raw_request(host, port, data, timeout=15, method_hint="GET"):
    """Send raw bytes on a new connection and parse one HTTP/1.1 response.

    Returns a Resp. The request should say `Connection: close`. If the server
    answers before the whole request was sent (413 on a large body), the
    remaining bytes are dropped."""
    deadline = time.time() + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer early and close; read what it said
        buf = b""
        try:
            buf, ok = _read_until(sock, buf, b"\r\n\r\n", deadline)
        except ConnectionResetError:
            ok = False
        if not ok:
            raise ConnectionError("connection closed without a response (got %r)" % buf[:200])
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("iso-8859-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        hmap = {k.lower(): v for k, v in headers}
        body = rest
        if method_hint == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in hmap.get("transfer-encoding", "").lower():
            out = b""
            while True:
                body, _ = _read_until(sock, body, b"\r\n", deadline)
                size_line, _, body = body.partition(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                while len(body) < size + 2:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                out += body[:size]
                body = body[size + 2:]
                if size == 0:
                    break
            body = out
        elif "content-length" in hmap:
            n = int(hmap["content-length"])
            while len(body) < n:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
            body = body[:n]
        else:
            while True:
                try:
                    chunk = sock.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    break
                if not chunk:
                    break
                body += chunk
        return Resp(status, reason, headers, body, method_hint, "")
    finally:
        sock.close()


def build_raw(method, path, headers=None, body=None, host="127.0.0.1", content_length=True):
    """Build raw request bytes; `path` and header values may be bytes or str."""
    if isinstance(path, str):
        path = path.encode("latin-1")
    out = method.encode() + b" " + path + b" HTTP/1.1\r\n"
    hdrs = [(b"Host", host.encode()), (b"Connection", b"close")]
    for k, v in (headers or []):
        hdrs.append((k.encode() if isinstance(k, str) else k, v.encode("latin-1") if isinstance(v, str) else v))
    if body is not None and content_length and not any(k.lower() in (b"content-length", b"transfer-encoding")
                                                       for k, _ in hdrs):
        hdrs.append((b"Content-Length", str(len(body)).encode()))
    for k, v in hdrs:
        out += k + b": " + v + b"\r\n"
    out += b"\r\n"
    if body is not None:
        out += body
    return out


def assert_error(resp, status, field=None, fields=None):
    """Assert `resp` is the contract's error object for `status`."""
    assert resp.status == status, "expected %d, got %s" % (status, resp.describe())
    ct = resp.header("Content-Type", "")
    assert ct.lower().startswith("application/json"), "error Content-Type %r: %s" % (ct, resp.describe())
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), resp.describe()
    err = body["error"]
    assert err.get("code") == ERROR_CODES[status], "code %r for %d: %s" % (err.get("code"), status,
                                                                            resp.describe())
    assert isinstance(err.get("message"), str) and err["message"], resp.describe()
    if field is not None:
        assert err.get("field") == field, "field %r, expected %r: %s" % (err.get("field"), field,
                                                                        resp.describe())
    if fields is not None:
        assert err.get("field") in fields, "field %r, expected one of %r: %s" % (err.get("field"), fields,
                                                                                resp.describe())
    if status == 405:
        assert resp.header("Allow"), "405 without Allow: %s" % resp.describe()
    text = resp.body.decode("utf-8", "replace")
    for k in ALL_KEYS + (CURSOR_SECRET,):
        assert k not in text, "error message leaks a key: %s" % resp.describe()
    for w in ("SELECT ", "INSERT ", "UPDATE ", "ERROR:  ", "Traceback", "Segmentation"):
        assert w not in err["message"], "error message leaks internals: %s" % resp.describe()
    return err


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

def _yaml_scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def to_yaml(obj, indent=0):
    """A small block-style YAML emitter for the configuration we generate."""
    pad = "  " * indent
    lines = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                lines.append("%s%s:\n%s" % (pad, k, to_yaml(v, indent + 1)))
            elif isinstance(v, dict):
                lines.append("%s%s: {}\n" % (pad, k))
            elif isinstance(v, list):
                lines.append("%s%s: []\n" % (pad, k))
            else:
                lines.append("%s%s: %s\n" % (pad, k, _yaml_scalar(v)))
        return "".join(lines)
    if isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                inner = to_yaml(v, indent + 1).splitlines(True)
                first = inner[0].lstrip()
                lines.append("%s- %s" % (pad, first))
                lines.extend(inner[1:])
            elif isinstance(v, list):
                lines.append("%s- %s\n" % (pad, json.dumps(v)))
            else:
                lines.append("%s- %s\n" % (pad, _yaml_scalar(v)))
        return "".join(lines)
    return pad + _yaml_scalar(obj) + "\n"


def make_config(port, pg_dsn, redis_url=None, public_reads=True, boards=None, extra=None):
    cfg = {
        # The tests' keys are short and in the repository: accepted on loopback only.
        "development": True,
        "listen": "127.0.0.1:%d" % port,
        "worker_threads": 2,
        "log_level": "info",
        "http": {
            "body_limit": 65536,
            "batch_body_limit": 2097152,
            "connection_timeout_s": 30,
            "cache_max_age": 1,
            "cors_origins": [CORS_ORIGIN],
        },
        "postgres": {"primary": pg_dsn, "pool_size": 4, "statement_timeout_ms": 5000},
        "auth": {
            "public_reads": public_reads,
            "cursor_secret": CURSOR_SECRET,
            "keys": [
                {"key": ADMIN_KEY, "role": "admin"},
                {"key": WRITE_KEY, "role": "write"},
                {"key": READ_KEY, "role": "read"},
            ],
        },
        "boards": boards or [],
    }
    if redis_url:
        cfg["redis"] = {"url": redis_url}
    if extra:
        for k, v in extra.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
    return cfg


def rankd_env(extra=None):
    """The environment rankd runs in: ours minus stray RANKD_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RANKD_")}
    env["RANKD_MIGRATIONS_DIR"] = MIGRATIONS_DIR
    if extra:
        env.update(extra)
    return env


def require_binary():
    if not (os.path.isfile(RANKD_BIN) and os.access(RANKD_BIN, os.X_OK)):
        pytest.fail("rankd binary not found or not executable at %s "
                    "(build it: cd %s && meson setup build && ninja -C build, or set RANKD_BIN)"
                    % (RANKD_BIN, REPO), pytrace=False)


def run_cli(args, config_path=None, env=None, timeout=120):
    """Run `rankd ARGS [-c CONFIG]` and return the CompletedProcess."""
    cmd = [RANKD_BIN] + list(args)
    if config_path:
        cmd += ["-c", config_path]
    return subprocess.run(cmd, env=rankd_env(env), capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------
# Session servers: PostgreSQL and Redis
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tmp_root():
    d = tempfile.mkdtemp(prefix="rankd-e2e-")
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("RANKD_KEEP_TMP") != "1":
        shutil.rmtree(d, ignore_errors=True)


def _demote_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": "/tmp"})
    return env


class PgServer:
    """A PostgreSQL server of the tests: a new cluster (initdb), or with `primary`, a streaming
    replica of that server (pg_basebackup -R). `settings` adds -c options."""

    def __init__(self, root, name="pg", primary=None, settings=None):
        self.dir = os.path.join(root, name)
        self.data = os.path.join(self.dir, "data")
        self.port = None
        self.proc = None
        self.log = os.path.join(self.dir, "postgres.log")
        self.primary = primary
        self.settings = dict(settings or {})

    def _run_as_postgres(self, cmd, what):
        user = None if os.getuid() != 0 else "postgres"
        r = subprocess.run(cmd, user=user, cwd="/tmp", env=_demote_env(), capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail("%s failed:\n%s\n%s" % (what, r.stdout, r.stderr), pytrace=False)

    def start(self):
        os.makedirs(self.dir, mode=0o700)
        shutil.chown(self.dir, "postgres", "postgres")
        if self.primary is None:
            self._run_as_postgres([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "rankd", "--auth=trust",
                                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], "initdb")
        else:
            self._run_as_postgres([os.path.join(PG_BIN, "pg_basebackup"), "-h", "127.0.0.1",
                                   "-p", str(self.primary.port), "-U", "rankd", "-D", self.data, "-R",
                                   "-X", "stream", "--checkpoint=fast", "--no-sync"], "pg_basebackup")
        self.port = free_port()
        self.launch()

    def launch(self):
        """Start the server on its data folder (again, after stop())."""
        user = None if os.getuid() != 0 else "postgres"
        logf = open(self.log, "ab")
        shutil.chown(self.log, "postgres", "postgres")
        # Fast and fsync-less: the tests kill rankd, never PostgreSQL.
        opts = {"listen_addresses": "127.0.0.1", "fsync": "off", "full_page_writes": "off",
                "max_connections": "300", "shared_buffers": "128MB"}
        opts.update(self.settings)
        cmd = [os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port), "-k", self.dir]
        for k, v in opts.items():
            cmd += ["-c", "%s=%s" % (k, v)]
        self.proc = subprocess.Popen(cmd, user=user, cwd="/tmp", env=_demote_env(), stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.time() + 30
        while True:
            try:
                psycopg2.connect(self.dsn("postgres"), connect_timeout=2).close()
                break
            except psycopg2.OperationalError:
                if self.proc.poll() is not None or time.time() > deadline:
                    with open(self.log, errors="replace") as f:
                        pytest.fail("postgres did not start:\n" + f.read()[-4000:], pytrace=False)
                time.sleep(0.1)

    def dsn(self, dbname):
        return "host=127.0.0.1 port=%d dbname=%s user=rankd" % (self.port, dbname)

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, signal.SIGINT, timeout=30)

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def promote(self):
        self._run_as_postgres([os.path.join(PG_BIN, "pg_ctl"), "promote", "-w", "-D", self.data], "pg_ctl promote")


@pytest.fixture(scope="session")
def pg_server(tmp_root):
    require_binary()
    srv = PgServer(tmp_root)
    srv.start()
    yield srv
    srv.stop()


class RedisServer:
    def __init__(self, root, name="redis", databases=128, extra_args=()):
        self.dir = os.path.join(root, "%s-%s" % (name, uuid.uuid4().hex[:6]))
        os.makedirs(self.dir)
        self.port = free_port()
        self.databases = databases
        self.extra_args = list(extra_args)
        self.proc = None
        self.log = os.path.join(self.dir, "redis.log")

    def start(self):
        # A port found free can be taken by another process's connection before the server binds
        # it (a cluster node binds two): on a first start, new ports and another try. A restart
        # keeps its port: clients know it.
        first = self.proc is None
        for attempt in range(3):
            if self._start_once(retry_ports=first and attempt < 2):
                return
            self.port = free_port()
            if "--cluster-port" in self.extra_args:
                self.extra_args[self.extra_args.index("--cluster-port") + 1] = str(free_port())

    def _start_once(self, retry_ports):
        """Start and wait for PING; False when it could not bind and `retry_ports` allows another try."""
        mark = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--databases", str(self.databases),
             "--enable-debug-command", "local", "--protected-mode", "no"] + self.extra_args,
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.time() + 20
        while True:
            try:
                redis_mod.Redis(host="127.0.0.1", port=self.port, socket_timeout=2).ping()
                return True
            except redis_mod.exceptions.ConnectionError:
                if self.proc.poll() is not None or time.time() > deadline:
                    with open(self.log, errors="replace") as f:
                        f.seek(mark)
                        text = f.read()
                    if retry_ports and self.proc.poll() is not None and "Address already in use" in text:
                        return False
                    pytest.fail("redis-server did not start:\n" + text[-4000:], pytrace=False)
                time.sleep(0.05)

    def url(self, db=0):
        return "redis://127.0.0.1:%d/%d" % (self.port, db)

    def client(self, db=0):
        return redis_mod.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, timeout=10)

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class RedisCluster:
    """A Redis Cluster of our own on loopback: `masters` masters, each with one replica
    (redis-cli --cluster create), every node a RedisServer we started and stop by PID."""

    def __init__(self, root, masters=3, replicas=1):
        self.nodes = [RedisServer(root, name="redis-cluster", databases=1,
                                  extra_args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                              "--cluster-node-timeout", "2000",
                                              # the bus port would be port + 10000, which may not be free
                                              "--cluster-port", str(free_port())])
                      for _ in range(masters * (1 + replicas))]
        self.n_masters = masters
        self.replicas = replicas

    def start(self):
        for n in self.nodes:
            n.start()
        out = subprocess.run([REDIS_CLI, "--cluster", "create"] +
                             ["127.0.0.1:%d" % n.port for n in self.nodes] +
                             ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        self.wait_ok()

    def ready(self):
        """Whether every live node says cluster_state:ok and sees every slot served by a master,
        every replica whose master is alive is connected to it, and the masters list their
        replicas (CLUSTER SLOTS names them, for replica reads)."""
        try:
            live = [n for n in self.nodes if n.alive]
            states = [n.client().execute_command("CLUSTER", "INFO") for n in live]
            states = [s.decode() if isinstance(s, bytes) else s for s in states]
            roles = [n.client().execute_command("ROLE") for n in live]
            ports = {n.port for n in live}
            linked = all(r[0] != b"slave" or r[3] == b"connected" or r[2] not in ports for r in roles)
            slots = live[0].client().execute_command("CLUSTER", "SLOTS")
            masters_alive = {r[2][1] for r in slots} <= ports
            linked = linked and (not masters_alive or all(
                len(r) - 3 >= min(self.replicas, sum(1 for x in roles if x[0] == b"slave" and x[2] == r[2][1]))
                for r in slots))
            return linked and all("cluster_state:ok" in s and "cluster_slots_ok:16384" in s for s in states)
        except redis_mod.exceptions.RedisError:
            return False

    def wait_ok(self, timeout=60):
        wait_for(self.ready, "the Redis Cluster ready", timeout=timeout)

    def url(self, seeds=2):
        return "redis+cluster://" + ",".join("127.0.0.1:%d" % n.port for n in self.nodes[:seeds])

    def masters(self):
        """The live master nodes (RedisServer), as the cluster sees them now."""
        out = []
        for n in self.nodes:
            if not n.alive:
                continue
            try:
                role = n.client().execute_command("ROLE")
            except redis_mod.exceptions.RedisError:
                continue
            if role[0] in (b"master", "master"):
                out.append(n)
        return out

    def node_of_key(self, key):
        """The live master that serves `key`'s slot."""
        slot = self.masters()[0].client().execute_command("CLUSTER", "KEYSLOT", key)
        for n in self.masters():
            for r in n.client().execute_command("CLUSTER", "SLOTS"):
                if r[0] <= slot <= r[1] and r[2][1] == n.port:
                    return n
        raise AssertionError("no master serves slot %d" % slot)

    def flushall(self):
        for n in self.masters():
            n.client().flushall()

    def stop(self):
        for n in self.nodes:
            n.stop()


class RedisSentinels:
    """A master, a replica and three sentinels watching them (name "rankd"), all ours."""

    NAME = "rankd"

    def __init__(self, root):
        self.root = root
        self.master = RedisServer(root, name="redis-sentinel-master", databases=16)
        self.replica = None
        self.sentinels = []

    def start(self):
        self.master.start()
        self.replica = RedisServer(self.root, name="redis-sentinel-replica", databases=16,
                                   extra_args=["--replicaof", "127.0.0.1", str(self.master.port)])
        self.replica.start()
        for i in range(3):
            d = os.path.join(self.root, "sentinel-%d-%s" % (i, uuid.uuid4().hex[:6]))
            os.makedirs(d)
            port = free_port()
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                        "sentinel monitor %s 127.0.0.1 %d 2\n"
                        "sentinel down-after-milliseconds %s 1000\n"
                        "sentinel failover-timeout %s 10000\n" % (port, d, self.NAME, self.master.port,
                                                                 self.NAME, self.NAME))
            logf = open(os.path.join(d, "sentinel.log"), "ab")
            proc = subprocess.Popen([REDIS_SERVER, conf, "--sentinel"], stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            logf.close()
            self.sentinels.append((port, proc))
        wait_for(lambda: all(self.master_addr(p) == ("127.0.0.1", self.master.port) for p, _ in self.sentinels),
                 "the sentinels watch the master")
        wait_for(lambda: self.replica.client().execute_command("ROLE")[3] == b"connected", "the replica in sync")

    def master_addr(self, port):
        try:
            r = redis_mod.Redis(host="127.0.0.1", port=port, socket_timeout=2).execute_command(
                "SENTINEL", "get-master-addr-by-name", self.NAME)
        except redis_mod.exceptions.RedisError:
            return None
        return (r[0].decode(), int(r[1])) if r else None

    def url(self, db=0):
        return "redis+sentinel://%s/%s/%d" % (",".join("127.0.0.1:%d" % p for p, _ in self.sentinels), self.NAME, db)

    def stop(self):
        for _, proc in self.sentinels:
            stop_process(proc, signal.SIGTERM, timeout=10)
        for n in (self.replica, self.master):
            if n is not None:
                n.stop()


@pytest.fixture
def redis_sentinels(tmp_root):
    """A master, a replica and three sentinels of the test's own."""
    s = RedisSentinels(tmp_root)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def redis_cluster(tmp_root):
    """A 3-master, 3-replica Redis Cluster for the module."""
    cl = RedisCluster(tmp_root)
    cl.start()
    yield cl
    cl.stop()


@pytest.fixture
def own_redis_cluster(tmp_root):
    """A 3-master, 3-replica Redis Cluster of the test's own, which it may reshard or break."""
    cl = RedisCluster(tmp_root)
    cl.start()
    yield cl
    cl.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_root):
    srv = RedisServer(tmp_root)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def _redis_db_numbers():
    return itertools.count(1)


@pytest.fixture
def private_redis(tmp_root):
    """A Redis server of the test's own; the test may stop it (by PID)."""
    srv = RedisServer(tmp_root, name="redis-private", databases=16)
    srv.start()
    yield srv
    srv.stop()


# ---------------------------------------------------------------------------
# Per-module database
# ---------------------------------------------------------------------------

# Statements as pg_stat_activity shows them, for Database.lock_waiters: the upkeep leader's
# first round (retention deletes from standings) may wait on a test's lock too, so a test that
# waits for its own request names the request's statement.
PAGE_READ_SQL = "SELECT t.total, s.* FROM %"  # a page of entries read from PostgreSQL (rankd_page_top)
WINDOW_LOAD_SQL = "SELECT player_id, sort_key, achieved_ms, metadata, version FROM standings%"  # a Redis rebuild


class Database:
    def __init__(self, pg, name, root):
        self.pg = pg
        self.name = name
        self.dsn = pg.dsn(name)
        self.root = root
        self.config_path = os.path.join(root, "%s-cli.yaml" % name)
        self._conn = None

    def connect(self):
        c = psycopg2.connect(self.dsn)
        c.autocommit = True
        return c

    def query(self, sql, args=None):
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        with self._conn.cursor() as cur:
            cur.execute(sql, args)
            if cur.description is None:
                return None
            return cur.fetchall()

    def lock_waiters(self, query_like="%"):
        """Sessions of this database (other than ours) waiting for a lock, running a query LIKE query_like."""
        return self.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query LIKE %s",
                          (query_like,))[0][0]

    def close(self):
        if self._conn is not None:
            self._conn.close()

    def snapshot(self):
        """Counts and sums of every table a request can change, for the boards that exist: a
        deleted board's rows go in the background (the upkeep leader's purge), whenever it runs."""
        live = " WHERE board_gen IN (SELECT gen FROM boards)"
        queries = {
            "boards": ["SELECT count(*), coalesce(sum(gen),0), coalesce(string_agg(id || ':' || title, ',' "
                       "ORDER BY id),'') FROM boards", "SELECT count(*) FROM boards"],
            "standings": ["SELECT count(*), coalesce(sum(score),0), coalesce(sum(version),0), "
                          "coalesce(sum(achieved_ms),0) FROM standings" + live, "SELECT count(*) FROM standings" + live],
            "submissions": ["SELECT count(*), coalesce(sum(score),0) FROM submissions" + live,
                            "SELECT count(*) FROM submissions" + live],
            "window_counts": ["SELECT count(*), coalesce(sum(players),0), coalesce(sum(submissions),0) "
                              "FROM window_counts" + live, "SELECT count(*) FROM window_counts" + live],
            "idempotency_keys": ["SELECT count(*) FROM idempotency_keys" + live],
            # The buckets' total only: re-cuts split and merge them at any time.
            "rank_buckets": ["SELECT coalesce(sum(n), 0) FROM rank_buckets" + live, "SELECT 0"],
            "rank_supers": ["SELECT coalesce(sum(n), 0) FROM rank_supers" + live, "SELECT 0"],
        }
        snap = {}
        for name, qs in queries.items():
            for q in qs:
                try:
                    snap[name] = self.query(q)[0]
                    break
                except psycopg2.Error:
                    continue
        return snap

    def board_standings(self, board):
        return self.query("SELECT s.player_id, s.score FROM standings s JOIN boards b ON b.gen = s.board_gen "
                          "WHERE b.id = %s", (board,))

    def board_submissions(self, board):
        return self.query("SELECT s.player_id, s.score FROM submissions s JOIN boards b ON b.gen = s.board_gen "
                          "WHERE b.id = %s", (board,))

    def submission_count(self, board, player=None):
        if player is None:
            return self.query("SELECT count(*) FROM submissions s JOIN boards b ON b.gen = s.board_gen "
                              "WHERE b.id = %s", (board,))[0][0]
        return self.query("SELECT count(*) FROM submissions s JOIN boards b ON b.gen = s.board_gen "
                          "WHERE b.id = %s AND s.player_id = %s", (board, player))[0][0]


def migrated_database(pg, name, root):
    """A new database `name` on server `pg`, migrated by `rankd migrate up`."""
    admin = psycopg2.connect(pg.dsn("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute('CREATE DATABASE "%s" OWNER rankd' % name)
    admin.close()
    database = Database(pg, name, root)
    with open(database.config_path, "w") as f:
        f.write(to_yaml(make_config(free_port(), database.dsn)))
    r = run_cli(["migrate", "up"], database.config_path,
                env={"RANKD_POSTGRES_PRIMARY": database.dsn})
    if r.returncode != 0:
        pytest.fail("rankd migrate up failed (exit %d):\nstdout:\n%s\nstderr:\n%s"
                    % (r.returncode, r.stdout[-3000:], r.stderr[-3000:]), pytrace=False)
    return database


@pytest.fixture(scope="module")
def db(request, pg_server, tmp_root):
    mod = request.module.__name__.rsplit(".", 1)[-1]
    name = re.sub(r"[^a-z0-9_]", "_", ("rankd_%s_%d" % (mod, next(_counter))).lower())
    database = migrated_database(pg_server, name, tmp_root)
    yield database
    database.close()


@pytest.fixture(scope="module")
def redis_db(redis_server, _redis_db_numbers):
    """(url, client) of a Redis logical database private to the module."""
    n = next(_redis_db_numbers)
    assert n < redis_server.databases, "out of Redis databases"
    cl = redis_server.client(n)
    cl.flushdb()
    return redis_server.url(n), cl


def redis_digest(cl):
    """(DBSIZE, DEBUG DIGEST) of a Redis database, or None when unavailable."""
    try:
        size = cl.dbsize()
    except redis_mod.exceptions.RedisError:
        return None
    try:
        digest = cl.execute_command("DEBUG", "DIGEST")
    except redis_mod.exceptions.RedisError:
        digest = None
    return size, digest


# ---------------------------------------------------------------------------
# rankd instances
# ---------------------------------------------------------------------------

ALL_INSTANCES = []
_current_test_start = [0.0]


class Rankd:
    """One `rankd serve` process we started."""

    def __init__(self, root, db, redis_url=None, public_reads=True, env=None, extra_config=None,
                 boards=None, name=None):
        self.port = free_port()
        self.name = name or "rankd-%d" % next(_counter)
        self.dir = os.path.join(root, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "rankd.yaml")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.db = db
        self.redis_url = redis_url or ""
        cfg = make_config(self.port, db.dsn, redis_url or None, public_reads, boards, extra_config)
        with open(self.config_path, "w") as f:
            f.write(to_yaml(cfg))
        # Rank buckets of a few standings: the small boards of the tests split and merge them
        # all the time, as a big board does at its scale.
        self.env = {"RANKD_REDIS_URL": self.redis_url, "RANKD_RANK_BUCKET_ROWS": "4"}
        self.env.update(env or {})
        # With the PROXY protocol on, the test's own clients say they are who they are.
        proxied = self.env.get("RANKD_PROXY_PROTOCOL") == "true" or \
            (extra_config or {}).get("http", {}).get("proxy_protocol") is True
        self.proxy_header = b"PROXY UNKNOWN\r\n" if proxied else None
        self.proc = None
        self.preexec = None  # run in the child before rankd (a resource limit, say)
        self.started_at = None
        self.stopped_at = None
        self.exit_status = None
        self.stop_signal = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def client(self, key=None):
        return Client("127.0.0.1", self.port, key, proxy_header=self.proxy_header)

    def start(self, timeout=20):
        errf = open(self.stderr_path, "ab")
        outf = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen([RANKD_BIN, "serve", "-c", self.config_path], env=rankd_env(self.env),
                                     stdout=outf, stderr=errf, stdin=subprocess.DEVNULL, cwd=REPO,
                                     start_new_session=True, preexec_fn=self.preexec)
        errf.close()
        outf.close()
        self.started_at = time.time()
        ALL_INSTANCES.append(self)
        deadline = time.time() + timeout
        cl = self.client()
        try:
            while True:
                if self.proc.poll() is not None:
                    pytest.fail("rankd serve exited with %s before /healthz answered; stderr:\n%s"
                                % (self.proc.returncode, self.stderr_tail()), pytrace=False)
                try:
                    r = cl.get("/healthz")
                    if r.status == 200:
                        return self
                except (OSError, http.client.HTTPException):
                    pass
                if time.time() > deadline:
                    self.stop(signal.SIGKILL)
                    pytest.fail("rankd serve: /healthz not 200 within %ds; stderr:\n%s"
                                % (timeout, self.stderr_tail()), pytrace=False)
                time.sleep(0.05)
        finally:
            cl.close()

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stop by PID; returns (exit status, seconds it took, whether SIGKILL was needed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self.exit_status = self.proc.returncode
            if self.stopped_at is None:
                self.stopped_at = time.time()
            return self.exit_status, 0.0, False
        t0 = time.time()
        self.stop_signal = sig
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        killed = False
        if not wait_pid(self.proc, timeout):
            killed = True
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.exit_status = self.proc.returncode
        self.stopped_at = time.time()
        self.killed_after_timeout = killed
        self.stderr_text()
        return self.exit_status, self.stopped_at - t0, killed

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                text = f.read()
        except OSError:
            return getattr(self, "_final_stderr", "")
        if self.proc is not None and self.proc.poll() is not None:
            self._final_stderr = text  # kept for reports made after the temp folder is gone
        return text

    def stderr_tail(self, n=6000):
        t = self.stderr_text()
        return t[-n:] if len(t) > n else t

    def problems(self):
        """Sanitizer reports and crashes seen in this instance (after it stopped)."""
        out = []
        text = self.stderr_text()
        for m in SANITIZER_MARKERS:
            if m in text:
                i = text.index(m)
                out.append("rankd %s (pid %d): sanitizer report %r in stderr:\n%s"
                           % (self.name, self.proc.pid, m, text[max(0, i - 200):i + 4000]))
                break
        st = self.exit_status
        if st is not None and st < 0 and -st in CRASH_SIGNALS and self.stop_signal != -st:
            out.append("rankd %s (pid %d) died of signal %d; stderr tail:\n%s"
                       % (self.name, self.proc.pid, -st, self.stderr_tail(3000)))
        return out


class RankdFactory:
    """Starts rankd instances on one database (and by default one Redis URL); close() stops
    them all and fails the test if one crashed. Use it through opened() (the fixtures do)."""

    def __init__(self, root, db, redis_url):
        self.root = root
        self.db = db
        self.default_redis_url = redis_url
        self.instances = []

    @classmethod
    @contextlib.contextmanager
    def opened(cls, root, db, redis_url):
        f = cls(root, db, redis_url)
        try:
            yield f
        finally:
            f.close()

    def __call__(self, redis=True, public_reads=True, env=None, extra_config=None, boards=None, start=True):
        """Start a rankd. redis: True = the module's Redis db, False/None = no Redis,
        a string = that Redis URL (e.g. a private server's)."""
        if redis is True:
            url = self.default_redis_url
        elif isinstance(redis, str):
            url = redis
        else:
            url = ""
        inst = Rankd(self.root, self.db, url, public_reads, env, extra_config, boards)
        self.instances.append(inst)
        if start:
            inst.start()
        return inst

    def close(self):
        problems = []
        for inst in self.instances:
            if inst.proc is None:
                continue
            inst.stop(signal.SIGTERM, 10)
            problems.extend(inst.problems())
        self.instances = []
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def module_rankd_factory(tmp_root, db, redis_db):
    with RankdFactory.opened(tmp_root, db, redis_db[0]) as f:
        yield f


@pytest.fixture
def rankd_factory(tmp_root, db, redis_db):
    with RankdFactory.opened(tmp_root, db, redis_db[0]) as f:
        yield f


@pytest.fixture(scope="module")
def rankd(module_rankd_factory):
    """The module's rankd, with the module's Redis database."""
    return module_rankd_factory()


@pytest.fixture(scope="module")
def admin(rankd):
    c = rankd.client(ADMIN_KEY)
    yield c
    c.close()


@pytest.fixture(scope="module")
def writer(rankd):
    c = rankd.client(WRITE_KEY)
    yield c
    c.close()


@pytest.fixture(scope="module")
def reader(rankd):
    c = rankd.client(READ_KEY)
    yield c
    c.close()


@pytest.fixture(scope="module")
def anon(rankd):
    c = rankd.client(None)
    yield c
    c.close()


# ---------------------------------------------------------------------------
# API helpers
# ---------------------------------------------------------------------------

class ReadWriteLoad:
    """Reads and writes on a board (seeded with players p0..p19) from `readers` + 1 threads, each
    request timed and recorded as (start, kind, status or 0 when it got no answer, seconds), until
    stop(). client_for(key) gives a Client: of an instance, or of a load balancer in front."""

    def __init__(self, client_for, board, readers=1, read_pause=0.02, write_pause=0.05):
        self.client_for, self.board = client_for, board
        self.read_pause, self.write_pause = read_pause, write_pause
        self.events = []  # (t, kind, status, seconds)
        self.acked = set()
        self.stopping = False
        self.threads = [threading.Thread(target=self._reads) for _ in range(readers)] + \
            [threading.Thread(target=self._writes)]
        for t in self.threads:
            t.start()

    def _record(self, kind, fn):
        t0 = time.time()
        try:
            status = fn()
        except OSError:
            status = 0  # the connection failed: counted, never hidden
        self.events.append((t0, kind, status, time.time() - t0))
        return status

    def _reads(self):
        c = self.client_for(None)
        i = 0
        while not self.stopping:
            i += 1
            path = "/v1/leaderboards/%s/players/p%d" % (self.board, i % 20) if i % 2 else \
                "/v1/leaderboards/%s/entries?limit=5&offset=%d" % (self.board, i % 7)
            self._record("read", lambda: c.get(path).status)
            time.sleep(self.read_pause)  # the load's pace, not a wait for anything
        c.close()

    def _writes(self):
        c = self.client_for(WRITE_KEY)
        i = 0
        while not self.stopping:
            i += 1
            player, score = "w%d" % i, i

            def send():
                r = submit(c, self.board, player, score)
                if r.status == 200:
                    self.acked.add(player)
                return r.status
            self._record("write", send)
            time.sleep(self.write_pause)  # the load's pace
        c.close()

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(30)
        stuck = [t.name for t in self.threads if t.is_alive()]
        assert not stuck, "a request never came back: %s" % stuck

    def between(self, t0, t1):
        """Requests in flight at some moment of [t0, t1)."""
        return [e for e in self.events if e[0] < t1 and e[0] + e[3] >= t0]

    def started(self, t0, t1):
        """Requests sent in [t0, t1)."""
        return [e for e in self.events if t0 <= e[0] < t1]



def create_board(client, board_id=None, sort="desc", operator="best", reset="none", title=None, **extra):
    """Create a board with the admin key; returns the Board JSON (fails on non-201)."""
    board_id = board_id or unique("b")
    body = {"id": board_id, "title": title or ("Board " + board_id), "sort": sort, "operator": operator,
            "reset": reset}
    body.update(extra)
    r = client.post("/v1/leaderboards", json_body=body, key=ADMIN_KEY)
    assert r.status == 201, "create board: " + r.describe()
    return r.json()


def submit(client, board, player, score, metadata=_DEFAULT, key=WRITE_KEY, headers=None, **kw):
    body = {"player_id": player, "score": score}
    if metadata is not _DEFAULT:
        body["metadata"] = metadata
    return client.post("/v1/leaderboards/%s/scores" % board, json_body=body, key=key, headers=headers, **kw)


def submit_ok(client, board, player, score, **kw):
    r = submit(client, board, player, score, **kw)
    assert r.status == 200, r.describe()
    return r.json()


def sanitized(inst):
    """Whether the instance runs a build with AddressSanitizer (its allocator serves malloc:
    the heap series are not exported)."""
    with open("/proc/%d/maps" % inst.proc.pid) as f:
        return "libasan" in f.read()


def metric(inst, name):
    """The value of series `name` (no labels) in the /metrics of `inst` (a Rankd, or a Client),
    read with the admin key (API.md: /metrics is the admin's by default)."""
    cl = inst.client() if isinstance(inst, Rankd) else inst
    try:
        body = cl.get("/metrics", key=ADMIN_KEY).body.decode()
    finally:
        if cl is not inst:
            cl.close()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("/metrics has no " + name)


def series(inst, name, **labels):
    """The value of series `name` with exactly `labels` in the instance's /metrics, or None."""
    cl = inst.client(ADMIN_KEY)
    try:
        body = cl.get("/metrics").body.decode()
    finally:
        cl.close()
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in body.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{([^}]*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return None


def readyz(inst):
    """(status, body) of the instance's /readyz, as the admin key sees it (every dependency)."""
    cl = inst.client(ADMIN_KEY)
    try:
        r = cl.get("/readyz")
        return r.status, r.json()
    finally:
        cl.close()


def refresh_views(admin, timeout=30):
    """Refresh the views now (POST /v1/admin/refresh with the admin client `admin`); returns its
    body. The upkeep leader may be refreshing them at this moment ("skipped"): then ask again
    until a call of ours did it."""
    def ours():
        r = admin.post("/v1/admin/refresh", json_body={}, key=ADMIN_KEY)
        assert r.status == 200, r.describe()
        body = r.json()
        assert "refreshed" in body or "skipped" in body, body
        for v in body.get("refreshed", []):
            assert {"view", "rows", "ms"} <= set(v), body
        return body if "refreshed" in body else None
    return wait_for(ours, "a refresh of our own", timeout, every=0.2)


def wait_for(pred, what, timeout=20, poke=None, every=0.02):
    """Poll pred() until it returns something true (returned), or fail after `timeout` s.
    `poke`, when given, is called after each false answer (the request that makes the state come:
    a read that loads a cold window, say); polls are `every` seconds apart. `what` names the
    state awaited: a string, or a function returning one (called on failure, to show the state
    last seen)."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.time() < deadline, "timed out waiting for " + (what() if callable(what) else what)
        if poke is not None:
            poke()
        time.sleep(every)


def wait_tokens_judged(inst, token, timeout=20):
    """Wait until a freshly started instance judges player tokens: until its listener has loaded
    the revocations (off the start, after /healthz may already answer) every token is answered
    503 "revocations not loaded yet; retry in 1 s". The listener loads them right after its
    LISTEN, so this also says the instance hears other instances' notices. `token`: a valid one."""
    cl = inst.client(None)
    try:
        wait_for(lambda: cl.get("/v1/leaderboards?limit=1", key=token).status != 503,
                 "%s to judge player tokens (its revocations loaded)" % inst.name, timeout)
    finally:
        cl.close()


def stored_key(idempotency_key, presenting=WRITE_KEY):
    """An Idempotency-Key as idempotency_keys holds it: scoped to the presenting key by the first 8
    bytes of its SHA-256 (API.md: a key is scoped to the board and the presenting key)."""
    return "k%s %s" % (hashlib.sha256(presenting.encode()).hexdigest()[:16], idempotency_key)


def batch(client, items, key=WRITE_KEY):
    return client.post("/v1/scores:batch", json_body={"scores": items}, key=key)


# ---------------------------------------------------------------------------
# Reporting: attach rankd's stderr to failures
# ---------------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current_test_start[0] = time.time()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        start = _current_test_start[0]
        for inst in ALL_INSTANCES:
            if inst.started_at is None:
                continue
            if inst.stopped_at is not None and inst.stopped_at < start:
                continue
            tail = inst.stderr_tail(4000)
            state = "running" if inst.alive else "exited %s" % (inst.proc.returncode,)
            rep.sections.append(("rankd %s stderr (pid %d, %s)" % (inst.name, inst.proc.pid, state),
                                 tail or "(empty)"))
