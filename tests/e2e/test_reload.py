"""SIGHUP (API.md, "Signals"): keys, rate limits, CORS origins and the log level come again from
the same file and environment, without dropping a connection; a new key works and a removed one
is refused at once; an invalid file is refused whole and the running configuration stays."""
import http.client
import os
import signal

from conftest import ADMIN_KEY, CORS_ORIGIN, READ_KEY, WRITE_KEY, make_config, to_yaml, wait_for

NEW_KEY = "reloaded-read-key-000001"


def write_config(inst, keys, extra=None):
    cfg = make_config(inst.port, inst.db.dsn, inst.redis_url or None, extra=extra)
    cfg["auth"]["keys"] = keys
    tmp = inst.config_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(to_yaml(cfg))
    os.replace(tmp, inst.config_path)


def status(conn, path, key=None, origin=None):
    headers = {"Authorization": "Bearer " + key} if key else {}
    if origin:
        headers["Origin"] = origin
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    r.read()
    return r.status, r


def test_sighup_reloads_keys_limits_and_cors_without_dropping_connections(rankd_factory):
    inst = rankd_factory()
    conn = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=10)  # kept across the reload
    fresh = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=10)
    try:
        assert status(conn, "/v1/leaderboards", READ_KEY)[0] == 200
        assert status(conn, "/v1/leaderboards", NEW_KEY)[0] == 401
        _, r = status(conn, "/v1/leaderboards", origin="https://new.example")
        assert r.getheader("Access-Control-Allow-Origin") is None
        sock = conn.sock  # (an early answer such as a 401 closes its connection: none after this)

        write_config(inst, [{"key": ADMIN_KEY, "role": "admin"}, {"key": WRITE_KEY, "role": "write"},
                            {"key": NEW_KEY, "role": "read"}],
                     extra={"http": {"cors_origins": [CORS_ORIGIN, "https://new.example"]},
                            "limits": {"reads_per_s": 1, "burst": 3}})
        os.kill(inst.proc.pid, signal.SIGHUP)
        wait_for(lambda: status(fresh, "/v1/leaderboards", NEW_KEY)[0] in (200, 429), "the new key to work")
        _, r = status(conn, "/healthz", origin="https://new.example")
        assert conn.sock is sock, "the reload dropped the connection"
        assert r.getheader("Access-Control-Allow-Origin") == "https://new.example"
        # The removed key is refused at once.
        assert status(conn, "/v1/leaderboards", READ_KEY)[0] == 401
        # The limits came too: a burst of 3 reads per client (and the address's bucket, which requests
        # with a key it does not know draw on, has room for the two below).
        codes = [status(conn, "/v1/leaderboards", NEW_KEY)[0] for _ in range(5)]
        assert 429 in codes and codes[0] in (200, 429), codes

        # An invalid file is refused whole: the running configuration stays.
        with open(inst.config_path, "w") as f:
            f.write("auth:\n  keys: [\n")
        os.kill(inst.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload of %s refused" % inst.config_path in inst.stderr_text(), "the refusal in the log")
        keep = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=10)
        assert status(keep, "/healthz")[0] == 200
        sock = keep.sock
        assert status(fresh, "/v1/leaderboards", READ_KEY)[0] == 401
        assert status(fresh, "/v1/leaderboards", ADMIN_KEY)[0] == 200
        assert status(keep, "/healthz")[0] == 200 and keep.sock is sock
        keep.close()
        assert inst.proc.poll() is None, "rankd exited on an invalid reload"
    finally:
        conn.close()
        fresh.close()
