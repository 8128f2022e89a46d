"""Secrets that never leak and rotate without an outage (issue 34, items 4 and 6): a password in a
connection string libpq cannot read is never echoed; the log stays valid UTF-8 whatever bytes a
client sends and keeps the server's own request id beside a client's; cursors signed with the
previous cursor secret still read after a rotation; `rankd config gen-key` gives a good secret;
a serving rankd writes no core dump and says when its configuration file is open to others;
outside the development configuration, published, short and repetitive secrets are refused by name
(item 3)."""
import http.client
import json
import os
import re
import shutil
import signal
import socket

from conftest import (ADMIN_KEY, CURSOR_SECRET, REPO, WRITE_KEY, create_board, make_config, run_cli, stored_key,
                      submit_ok, to_yaml, unique, wait_for)

PASSWORD = "Sup3r%zz=S3cret"
BAD_CONNINFO = [
    "postgresql://rankd:%s@127.0.0.1:1/rankd" % PASSWORD,    # a percent escape libpq rejects
    "host=127.0.0.1 password='%s" % PASSWORD,               # an unterminated quote
    "host=127.0.0.1 password %s" % PASSWORD,                 # a missing '='
    'postgresql://rankd:Sup3r"%zzS3cret@127.0.0.1/rankd',    # a quote in the password itself
    'postgresql://rankd:Sup3rS3cret@[::1]"/rankd',           # libpq quotes the whole URI
]


def leaks(text):
    return [p for p in ("Sup3r", "S3cret", "zz=") if p in text]


def test_a_password_in_a_connection_string_libpq_cannot_read_never_appears(rankd_factory):
    inst = rankd_factory(start=False)
    for conninfo in BAD_CONNINFO:
        for var in ("RANKD_POSTGRES_PRIMARY", "RANKD_POSTGRES_REPLICAS"):
            for cmd in (["config", "check"], ["serve"], ["migrate", "status"]):
                r = run_cli(cmd, inst.config_path, env={var: conninfo}, timeout=30)
                out = r.stdout + r.stderr
                assert r.returncode == 1, (cmd, var, conninfo, out)
                assert var in out and "connection string" in out, out
                assert not leaks(out), (cmd, var, conninfo, out)


# Issue 49 item 4: a password with an unescaped '@' or '/' (a common mistake) makes libpq read the
# rest of it as the host or the port, and quote that in its connection error.
MISREAD_CONNINFO = [
    "postgresql://rankd:pw@S3cretTail@127.0.0.1:1/rankd",   # '@': "S3cretTail@127.0.0.1" the host
    "postgresql://rankd:ab12/S3cretTail@127.0.0.1:1/rankd",  # '/': host "rankd", port "ab12"
]


def test_a_uri_libpq_would_misread_is_named_malformed_and_never_echoed(rankd_factory):
    inst = rankd_factory(start=False)
    for conninfo in MISREAD_CONNINFO:
        for var in ("RANKD_POSTGRES_PRIMARY", "RANKD_POSTGRES_REPLICAS"):
            for cmd in (["config", "check"], ["serve"], ["migrate", "status"]):
                r = run_cli(cmd, inst.config_path, env={var: conninfo}, timeout=30)
                out = r.stdout + r.stderr
                assert r.returncode == 1, (cmd, var, conninfo, out)
                fragments = [p for p in ("S3cret", "Tail", "ab12", "pw@") if p in out]
                assert not fragments, (cmd, var, conninfo, fragments, out)
                assert var in out and "percent-encode" in out and "%40" in out and "%2F" in out, (cmd, var, out)
    # Percent-encoded, the same password is read as meant (config check connects to nothing).
    r = run_cli(["config", "check"], inst.config_path,
                env={"RANKD_POSTGRES_PRIMARY": "postgresql://rankd:ab12%2FS3cret%40Tail@127.0.0.1:5432/rankd"})
    assert r.returncode == 0, r.stdout + r.stderr


def raw_request(inst, request_line):
    """Send one request line as bytes (no client library escapes them); the answer's status."""
    with socket.create_connection(("127.0.0.1", inst.port), timeout=10) as s:
        s.sendall(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_every_log_line_is_valid_utf8_whatever_bytes_the_path_held(rankd_factory):
    inst = rankd_factory()
    marker = unique("utf")
    status = raw_request(inst, b"GET /v1/leaderboards/" + marker.encode() + b"\xff\xfe\xc3(\x7f\xc3\xa9/entries HTTP/1.1")
    assert status in (400, 404), status
    wait_for(lambda: marker.encode() in open(inst.stderr_path, "rb").read(), "the request's log line")
    raw = open(inst.stderr_path, "rb").read()
    for line in raw.splitlines():
        text = line.decode("utf-8")  # strict: one stray byte fails
        if text.startswith("{"):
            json.loads(text)
    line = next(ln for ln in raw.decode().splitlines() if marker in ln)
    msg = json.loads(line)["msg"]
    # each byte that is not UTF-8 is shown as the code point of its number; DEL escaped; é stays é
    assert marker + "\u00ff\u00fe\u00c3(\u007f\u00e9" in msg, msg


def test_the_servers_own_request_id_is_logged_beside_a_clients(rankd_factory):
    inst = rankd_factory()
    c = inst.client()
    try:
        rid = "trace-" + unique("r")
        ids = []
        for _ in range(2):  # a client sends one id twice: two requests in the log all the same
            r = c.get("/healthz", headers={"X-Request-Id": rid})
            assert r.header("X-Request-Id") == rid
        r = c.get("/healthz")
        own = r.header("X-Request-Id")
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{12}", own), own

        def lines():
            return [json.loads(ln) for ln in inst.stderr_text().splitlines()
                    if ln.startswith("{") and "GET /healthz" in ln]
        wait_for(lambda: sum(1 for ln in lines() if ln.get("client_request_id") == rid) == 2
                 and any(ln.get("request_id") == own for ln in lines()), "the three requests' log lines")
        ids = [ln["request_id"] for ln in lines() if ln.get("client_request_id") == rid]
        assert len(set(ids)) == 2 and all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{12}", i) for i in ids), ids
        assert rid not in ids
        # a request without an id of its own has no client_request_id
        assert all("client_request_id" not in ln for ln in lines() if ln.get("request_id") == own)
    finally:
        c.close()


def test_cursors_signed_before_a_rotation_of_the_secret_still_read(rankd_factory):
    old, new = CURSOR_SECRET, "a-new-cursor-secret-" + unique("s")
    first = rankd_factory()
    adm, w = first.client(ADMIN_KEY), first.client(WRITE_KEY)
    try:
        b = create_board(adm)["id"]
        for i in range(5):
            submit_ok(w, b, "p%d" % i, 10 * i)
        page = first.client().get("/v1/leaderboards/%s/entries?limit=2" % b).json()
        cursor = page["next_cursor"]
        assert cursor
    finally:
        adm.close()
        w.close()
    first.stop()

    def page_after(inst):
        c = inst.client()
        try:
            return c.get("/v1/leaderboards/%s/entries?limit=2&cursor=%s" % (b, cursor))
        finally:
            c.close()

    rotated = rankd_factory(env={"RANKD_CURSOR_SECRET": new, "RANKD_CURSOR_SECRET_PREVIOUS": old})
    r = page_after(rotated)
    assert r.status == 200, r.describe()
    assert [e["player_id"] for e in r.json()["entries"]] == ["p2", "p1"]
    # the cursors it gives out now are signed with the new secret
    nxt = r.json()["next_cursor"]
    rotated.stop()
    done = rankd_factory(env={"RANKD_CURSOR_SECRET": new})
    assert page_after(done).status == 400  # the previous secret is no longer accepted
    c = done.client()
    try:
        r = c.get("/v1/leaderboards/%s/entries?limit=2&cursor=%s" % (b, nxt))
        assert r.status == 200 and [e["player_id"] for e in r.json()["entries"]] == ["p0"], r.describe()
    finally:
        c.close()


def test_gen_key_prints_32_random_bytes_base64url():
    keys = set()
    for _ in range(3):
        r = run_cli(["config", "gen-key"])
        assert r.returncode == 0, r.stderr
        key = r.stdout.strip()
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key), key
        keys.add(key)
    assert len(keys) == 3


def test_a_serving_rankd_writes_no_core_dump(rankd_factory):
    inst = rankd_factory()
    limits = open("/proc/%d/limits" % inst.proc.pid).read()
    core = next(ln for ln in limits.splitlines() if ln.startswith("Max core file size")).split()
    assert core[4:6] == ["0", "0"], core
    # not dumpable: the kernel hands its /proc files to root, whoever runs it
    st = os.stat("/proc/%d/environ" % inst.proc.pid)
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_a_configuration_file_open_to_others_is_named_at_start(rankd_factory, tmp_path):
    inst = rankd_factory(start=False)
    path = str(tmp_path / "rankd.yaml")
    shutil.copy(inst.config_path, path)
    os.chmod(path, 0o644)
    r = run_cli(["config", "check"], path)
    assert r.returncode == 0, r.stderr
    assert "every user of this machine may read it (mode 0644)" in r.stderr and "chmod o=" in r.stderr, r.stderr
    os.chmod(path, 0o600)
    r = run_cli(["config", "check"], path)
    assert r.returncode == 0 and "every user" not in r.stderr, r.stderr


# Issue 34, item 3: outside the development configuration, unsafe secrets are refused by name.
GOOD_SECRET = "q3Jx9_VbT0kLw2ZpQe7HnYc4-RfUa8MdGs1oXiB6tE5"
GOOD_ADMIN = "Lm4nB7vC1xZ9aS2dF6gH0jK3lP8oI5uY-tR_eW1qN7m"
UNSAFE_SHOWN = ("change-me", "test-admin-key", "test-cursor-secret", "0123456789", "aaaaaaaa")


def production_config(inst, path, auth, listen=None):
    """The instance's configuration without `development: true`, with `auth` replacing its keys."""
    cfg = make_config(inst.port, inst.db.dsn, inst.redis_url or None)
    del cfg["development"]
    cfg["auth"].update(auth)
    if listen:
        cfg["listen"] = listen
    with open(path, "w") as f:
        f.write(to_yaml(cfg))
    os.chmod(path, 0o600)
    return path


def test_production_refuses_unsafe_secrets_naming_each_and_showing_none(rankd_factory, tmp_path):
    inst = rankd_factory(start=False)
    path = production_config(inst, str(tmp_path / "prod.yaml"), {
        "cursor_secret": "test-cursor-secret-0123456789",           # shorter than 32 bytes
        "keys": [{"key": "dev-admin-key-change-me", "role": "admin"},  # the README's
                 {"key": GOOD_ADMIN, "role": "write"},
                 {"key": "a" * 40, "role": "read"}]})                # 40 bytes, one character
    for cmd in (["config", "check"], ["serve"]):
        r = run_cli(cmd, path, timeout=30)
        out = r.stdout + r.stderr
        assert r.returncode == 1, (cmd, out)
        assert re.search(r"prod\.yaml:\d+:\d+: auth\.cursor_secret is shorter than 32 bytes; generate one with "
                         r"`rankd config gen-key`", out), out
        assert re.search(r"prod\.yaml:\d+:\d+: auth\.keys: this admin key is published", out), out
        assert re.search(r"prod\.yaml:\d+:\d+: auth\.keys: this read key has too little entropy", out), out
        assert "write key" not in out and "3 unsafe secret(s)" in out, out
        assert not [s for s in UNSAFE_SHOWN if s in out], out
    # From the environment, named by variable; a missing cursor secret is named too.
    r = run_cli(["config", "check"], path, env={"RANKD_WRITE_KEY": "example-write-key-change-me",
                                                 "RANKD_CURSOR_SECRET": GOOD_SECRET})
    assert r.returncode == 1 and "RANKD_WRITE_KEY: auth.keys: this write key is published" in r.stderr, r.stderr
    assert "auth.cursor_secret" not in r.stderr, r.stderr


def test_the_shipped_example_configuration_names_every_unsafe_secret():
    r = run_cli(["config", "check"], os.path.join(REPO, "config", "rankd.example.yaml"))
    assert r.returncode == 1, r.stdout + r.stderr
    named = re.findall(r"rankd\.example\.yaml:\d+:\d+: (auth\.\S+)(?: this (\w+) key)? is published", r.stderr)
    assert sorted(named) == [("auth.cursor_secret", ""), ("auth.keys:", "admin"), ("auth.keys:", "read"),
                             ("auth.keys:", "write")], r.stderr


def test_the_development_configuration_keeps_its_keys_on_loopback_only(rankd_factory, tmp_path):
    # config/rankd.yaml as scripts/dev.sh uses it
    r = run_cli(["config", "check"], os.path.join(REPO, "config", "rankd.yaml"))
    assert r.returncode == 0 and "unsafe" not in r.stderr, r.stderr
    inst = rankd_factory(start=False)
    # the tests' own configuration says development: true and listens on 127.0.0.1
    assert run_cli(["config", "check"], inst.config_path).returncode == 0
    for listen in ("0.0.0.0:%d" % inst.port, "[::]:%d" % inst.port):
        r = run_cli(["serve"], inst.config_path, env={"RANKD_LISTEN": listen}, timeout=30)
        assert r.returncode == 1 and "only while listen is a loopback address" in r.stderr, r.stderr
        assert "auth.keys: this admin key is shorter than 32 bytes" in r.stderr, r.stderr


def test_production_serves_with_good_secrets_and_a_reload_cannot_weaken_them(rankd_factory, tmp_path):
    inst = rankd_factory(start=False)
    production_config(inst, inst.config_path, {"cursor_secret": GOOD_SECRET,
                                               "keys": [{"key": GOOD_ADMIN, "role": "admin"}]})
    inst.start()
    conn = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + GOOD_ADMIN})
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        production_config(inst, inst.config_path, {"cursor_secret": GOOD_SECRET,
                                                   "keys": [{"key": GOOD_ADMIN, "role": "admin"},
                                                            {"key": "example-read-key-change-me", "role": "read"}]})
        os.kill(inst.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload of %s refused" % inst.config_path in inst.stderr_text(), "the refusal")
        assert "this read key is published" in inst.stderr_text()
        assert "example-read-key" not in inst.stderr_text()
        conn.request("GET", "/v1/leaderboards", headers={"Authorization": "Bearer example-read-key-change-me"})
        r = conn.getresponse()
        r.read()
        assert r.status == 401  # the running configuration stayed
    finally:
        conn.close()


def test_a_reload_judges_secrets_by_the_running_listener_not_the_files(rankd_factory, tmp_path):
    """Issue 49 item 17: development and listen take effect at a restart only, so a reload that
    switches the file to development: true on loopback with published keys is judged by the
    listener that runs (0.0.0.0, production): refused, logged, and the published admin key gets 401."""
    inst = rankd_factory(start=False)
    production_config(inst, inst.config_path, {"cursor_secret": GOOD_SECRET,
                                               "keys": [{"key": GOOD_ADMIN, "role": "admin"}]},
                      listen="0.0.0.0:%d" % inst.port)
    inst.start()  # bound to every address; every request below goes to 127.0.0.1
    conn = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=10)

    def status(key, path="/metrics"):
        conn.request("GET", path, headers={"Authorization": "Bearer " + key})
        r = conn.getresponse()
        r.read()
        return r.status
    try:
        assert status(GOOD_ADMIN) == 200
        cfg = make_config(inst.port, inst.db.dsn, inst.redis_url or None)  # development: true, 127.0.0.1
        cfg["auth"]["cursor_secret"] = "dev-cursor-secret-change-me"
        cfg["auth"]["keys"] = [{"key": "dev-admin-key-change-me", "role": "admin"}]
        assert cfg["development"] is True and cfg["listen"].startswith("127.0.0.1:")
        with open(inst.config_path, "w") as f:
            f.write(to_yaml(cfg))
        os.chmod(inst.config_path, 0o600)
        os.kill(inst.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload of %s refused" % inst.config_path in inst.stderr_text(), "the refusal")
        text = inst.stderr_text()
        assert "this admin key is published" in text, text[-3000:]
        assert "take effect only at a restart" in text and "listening on 0.0.0.0" in text, text[-3000:]
        assert "dev-admin-key-change-me" not in text
        assert status("dev-admin-key-change-me") == 401
        assert status(GOOD_ADMIN) == 200  # the running configuration stayed
    finally:
        conn.close()


# Issue 34, item 6: an Idempotency-Key is scoped to the board and the presenting key, and a key
# makes at most limits.idempotency_keys_per_client of them.
OTHER_WRITER = "another-write-key-of-a-second-game-server"


def test_an_idempotency_key_belongs_to_the_key_that_presented_it(rankd_factory, db):
    inst = rankd_factory(env={"RANKD_WRITE_KEY": OTHER_WRITER})
    adm, w, other = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(OTHER_WRITER)
    try:
        b = create_board(adm, operator="sum")["id"]
        key = unique("idem")
        path = "/v1/leaderboards/%s/scores" % b
        r1 = w.post(path, json_body={"player_id": "p", "score": 5}, headers={"Idempotency-Key": key})
        assert r1.status == 200 and r1.json()["score"] == 5, r1.describe()
        # Another writer with the same key: its own submission, neither a replay nor a 409.
        r2 = other.post(path, json_body={"player_id": "p", "score": 7}, headers={"Idempotency-Key": key})
        assert r2.status == 200 and r2.json()["score"] == 12, r2.describe()
        r3 = other.post("/v1/scores:batch", json_body={"scores": [{"board": b, "player_id": "q", "score": 1,
                                                                     "idempotency_key": key}]})
        assert r3.status == 200 and r3.json()["results"][0]["error"]["code"] == "conflict", r3.describe()
        # Each writer's replay is its own first answer, byte for byte.
        again = w.post(path, json_body={"player_id": "p", "score": 5}, headers={"Idempotency-Key": key})
        assert again.status == 200 and again.body == r1.body
        again = other.post(path, json_body={"player_id": "p", "score": 7}, headers={"Idempotency-Key": key})
        assert again.status == 200 and again.body == r2.body
        assert db.submission_count(b, "p") == 2
        # Stored under the presenting key's tag (a digest's first bytes), never the key itself.
        rows = db.query("SELECT k.key FROM idempotency_keys k JOIN boards bd ON bd.gen = k.board_gen "
                        "WHERE bd.id = %s ORDER BY 1", (b,))
        assert sorted(r[0] for r in rows) == sorted([stored_key(key, WRITE_KEY), stored_key(key, OTHER_WRITER)])
        assert not [r for r in rows if WRITE_KEY in r[0] or OTHER_WRITER in r[0]]
    finally:
        for c in (adm, w, other):
            c.close()


def test_an_idempotency_key_stored_before_scoping_still_replays(rankd_factory, db):
    """A key an earlier version stored bare (scoped to the board alone) keeps its answer until
    it expires: a replay sends it, a different body is 409, nothing is applied twice."""
    inst = rankd_factory()
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = create_board(adm, operator="sum")["id"]
        gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
        key = unique("old")
        answer = '{"board":"%s","window":"1970-01-01","player_id":"p","score":5,"previous_score":null,' \
                 '"rank":1,"achieved_at":"2026-11-25T00:00:00.000Z","updated":true}' % b
        db.query("INSERT INTO idempotency_keys (board_gen, key, request, response) VALUES (%s, %s, %s, %s)",
                 (gen, key, '{"player_id":"p","score":5}', answer))
        path = "/v1/leaderboards/%s/scores" % b
        snap = db.snapshot()
        r = w.post(path, json_body={"player_id": "p", "score": 5}, headers={"Idempotency-Key": key})
        assert r.status == 200 and r.body.decode() == answer, r.describe()
        r = w.post(path, json_body={"player_id": "p", "score": 6}, headers={"Idempotency-Key": key})
        assert r.status == 409, r.describe()
        assert db.snapshot() == snap
    finally:
        adm.close()
        w.close()


def test_a_key_makes_at_most_its_share_of_idempotency_keys(rankd_factory):
    inst = rankd_factory(env={"RANKD_LIMIT_IDEMPOTENCY_KEYS_PER_CLIENT": "4", "RANKD_WRITE_KEY": OTHER_WRITER})
    adm, w, other = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(OTHER_WRITER)
    try:
        b = create_board(adm)["id"]
        path = "/v1/leaderboards/%s/scores" % b
        for i in range(2):  # half of the 4 at once, the other half over the day
            r = w.post(path, json_body={"player_id": "p%d" % i, "score": i}, headers={"Idempotency-Key": unique("k")})
            assert r.status == 200, r.describe()
        r = w.post(path, json_body={"player_id": "p9", "score": 9}, headers={"Idempotency-Key": unique("k")})
        assert r.status == 429 and int(r.header("Retry-After")) > 1, r.describe()
        err = r.json()["error"]
        assert "limits.idempotency_keys_per_client (4)" in err["message"] and err["field"] == "Idempotency-Key", err
        # Without a key, or from another key, writes go on.
        assert w.post(path, json_body={"player_id": "p9", "score": 9}).status == 200
        items = [{"board": b, "player_id": "q%d" % i, "score": i, "idempotency_key": unique("k")} for i in range(3)]
        r = other.post("/v1/scores:batch", json_body={"scores": items})
        assert r.status == 429 and r.header("Retry-After") is None, r.describe()  # more than it may make at once
        r = other.post("/v1/scores:batch", json_body={"scores": items[:2]})
        assert r.status == 200 and all("rank" in x for x in r.json()["results"]), r.describe()
    finally:
        for c in (adm, w, other):
            c.close()
