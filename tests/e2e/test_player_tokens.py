"""Player tokens (API.md, "Player tokens"; issue 50): rankd mints an HS256 token for a player
(POST /v1/players/{player}/tokens, a write or admin key); the token reads as a read key does,
submits and joins as its own player only, on boards whose client_writes is true (and, when the
token lists boards, only those), exports its own data, and nothing else (403 naming the rule).
Expired, tampered, alg-none and wrongly signed tokens are 401 and count as failed
authentications. A previous secret still verifies (rotation). An admin revokes a player's tokens
on every instance (two instances on one database); a player's deletion revokes too. Each logged
submission records what authorised it and the client's address, shown in the player's export.
A per-player bucket limits token writes (keyed by the player, not the address)."""
import base64
import hashlib
import hmac
import json
import os
import time

import pytest

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, assert_error, create_board, metric, parse_ts, submit, unique,
                      wait_for, wait_tokens_judged)

SECRET = "test-player-token-secret-0123456789"
OLD_SECRET = "test-old-player-token-secret-98765"
TOKENS = {"auth": {"player_token_secret": SECRET}}


@pytest.fixture(scope="module")
def rankd(module_rankd_factory):
    """The module's rankd, minting tokens, and judging them (its revocations loaded)."""
    inst = module_rankd_factory(extra_config=TOKENS)
    w = inst.client(WRITE_KEY)
    try:
        wait_tokens_judged(inst, mint(w, "warm-up")["token"])
    finally:
        w.close()
    return inst


def b64u(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forge(header, claims, secret):
    """A compact JWS of header and claims, HS256-signed with `secret` (None: no signature)."""
    signing = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = b"" if secret is None else hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64u(sig)


def claims_of(token):
    return json.loads(unb64u(token.split(".")[1]))


def mint(client, player, key=WRITE_KEY, **body):
    r = client.post("/v1/players/%s/tokens" % player, json_body=body, key=key)
    assert r.status == 201, r.describe()
    return r.json()


class Clock:
    """The test clock file: the wall clock `offset_ms` ahead of the real one."""

    def __init__(self, root):
        self.path = os.path.join(root, "token-clock-%s" % unique("c"))
        self.set(0)

    def set(self, offset_ms):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d" % offset_ms)
        os.replace(tmp, self.path)

    def env(self):
        return {"RANKD_TEST_CLOCK_FILE": self.path}


def client_board(adm, **extra):
    return create_board(adm, client_writes=True, **extra)["id"]


def test_a_minted_token_submits_its_own_players_score_on_a_client_writes_board(rankd):
    adm, w = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY)
    try:
        b = client_board(adm)
        assert adm.get("/v1/leaderboards/%s" % b).json()["client_writes"] is True
        got = mint(w, "alice", ttl_s=600)
        assert got["player_id"] == "alice"
        exp = parse_ts(got["expires_at"]) / 1000.0
        assert abs(exp - (time.time() + 600)) < 30
        c = claims_of(got["token"])
        assert c["iss"] == "rankd" and c["sub"] == "alice" and c["exp"] - int(c["iat"]) == 600 and c["jti"]
        tok = rankd.client(got["token"])
        r = submit(tok, b, "alice", 42, key=got["token"])
        assert r.status == 200, r.describe()
        assert r.json()["score"] == 42
        # It reads as a read key does.
        r = tok.get("/v1/leaderboards/%s/players/alice" % b, key=got["token"])
        assert r.status == 200 and r.json()["score"] == 42
        # A batch of its own items only is taken.
        r = tok.post("/v1/scores:batch", json_body={"scores": [{"board": b, "player_id": "alice", "score": 50}]},
                     key=got["token"])
        assert r.status == 200 and r.json()["results"][0]["score"] == 50, r.describe()
        # Its own export.
        r = tok.get("/v1/players/alice/export", key=got["token"])
        assert r.status == 200 and r.json()["player_id"] == "alice"
    finally:
        adm.close()
        w.close()


def test_minting_checks_its_body_and_the_player_id(rankd):
    w, rd = rankd.client(WRITE_KEY), rankd.client(READ_KEY)
    try:
        assert_error(w.post("/v1/players/a%20b/tokens", json_body={}), 400, "player_id")
        assert_error(w.post("/v1/players/alice/tokens", json_body={"ttl_s": 86401}), 400, "ttl_s")
        assert_error(w.post("/v1/players/alice/tokens", json_body={"ttl_s": 0}), 400, "ttl_s")
        assert_error(w.post("/v1/players/alice/tokens", json_body={"ttl_s": "60"}), 400, "ttl_s")
        assert_error(w.post("/v1/players/alice/tokens", json_body={"boards": []}), 400, "boards")
        assert_error(w.post("/v1/players/alice/tokens", json_body={"boards": ["Bad!"]}), 400, "boards")
        assert_error(w.post("/v1/players/alice/tokens", json_body={"what": 1}), 400)
        assert_error(rd.post("/v1/players/alice/tokens", json_body={}), 403)
        # No body at all: the defaults (an hour).
        r = w.request("POST", "/v1/players/alice/tokens", key=WRITE_KEY)
        assert r.status == 201, r.describe()
        c = claims_of(r.json()["token"])
        assert c["exp"] - int(c["iat"]) == 3600 and "boards" not in c
        assert r.header("Cache-Control") == "no-store"
    finally:
        w.close()
        rd.close()


def test_what_a_token_may_not_do_is_403_naming_the_rule(rankd):
    adm, w = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY)
    try:
        open_board, other_open, server_only = client_board(adm), client_board(adm), create_board(adm)["id"]
        assert adm.get("/v1/leaderboards/%s" % server_only).json()["client_writes"] is False
        tok = mint(w, "bob", boards=[open_board])["token"]
        c = rankd.client(tok)

        r = submit(c, open_board, "carol", 5, key=tok)
        assert_error(r, 403)
        assert "its own player" in r.json()["error"]["message"]
        r = submit(c, server_only, "bob", 5, key=tok)
        assert_error(r, 403)
        assert "client_writes" in r.json()["error"]["message"]
        r = submit(c, other_open, "bob", 5, key=tok)
        assert_error(r, 403)
        assert "limited to its own list of boards" in r.json()["error"]["message"]
        # A batch with one item not its own is refused whole, and nothing of it is stored.
        r = c.post("/v1/scores:batch", json_body={"scores": [{"board": open_board, "player_id": "bob", "score": 1},
                                                             {"board": open_board, "player_id": "carol", "score": 2}]},
                   key=tok)
        assert_error(r, 403)
        assert adm.get("/v1/leaderboards/%s/players/bob" % open_board).status == 404
        # Admin routes, another player's export, minting, strong reads.
        for method, path in (("POST", "/v1/admin/refresh"), ("DELETE", "/v1/leaderboards/%s" % open_board),
                             ("PATCH", "/v1/leaderboards/%s" % open_board), ("GET", "/v1/players/carol/export"),
                             ("POST", "/v1/players/bob/tokens"), ("DELETE", "/v1/players/bob/tokens"),
                             ("GET", "/v1/leaderboards/%s/export" % open_board)):
            body = {} if method in ("POST", "PATCH") else None
            r = c.request(method, path, key=tok, json_body=body) if body is not None else \
                c.request(method, path, key=tok)
            assert_error(r, 403)
            assert "player token" in r.json()["error"]["message"], (method, path, r.describe())
        # Still works for what it may do.
        assert submit(c, open_board, "bob", 5, key=tok).status == 200
        assert adm.get("/v1/leaderboards/%s" % open_board).status == 200
    finally:
        adm.close()
        w.close()


def test_join_as_its_own_player_only_on_a_client_writes_tournament(rankd):
    adm, w = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY)
    try:
        t = create_board(adm, reset="daily", tournament={"duration_s": 86400, "join_required": True},
                         client_writes=True)["id"]
        tok = mint(w, "dana")["token"]
        c = rankd.client(tok)
        assert_error(c.post("/v1/leaderboards/%s/players/erin/join" % t, key=tok), 403)
        r = c.post("/v1/leaderboards/%s/players/dana/join" % t, key=tok)
        assert r.status == 200, r.describe()
        server_t = create_board(adm, reset="daily", tournament={"duration_s": 86400})["id"]
        assert_error(c.post("/v1/leaderboards/%s/players/dana/join" % server_t, key=tok), 403)
    finally:
        adm.close()
        w.close()


def test_client_writes_is_set_by_patch(rankd):
    adm, w = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY)
    try:
        b = create_board(adm)["id"]
        tok = mint(w, "fay")["token"]
        assert_error(submit(rankd.client(tok), b, "fay", 1, key=tok), 403)
        assert_error(adm.patch("/v1/leaderboards/%s" % b, json_body={"client_writes": "yes"}), 400, "client_writes")
        r = adm.patch("/v1/leaderboards/%s" % b, json_body={"client_writes": True})
        assert r.status == 200 and r.json()["client_writes"] is True
        assert submit(rankd.client(tok), b, "fay", 1, key=tok).status == 200
        r = adm.patch("/v1/leaderboards/%s" % b, json_body={"title": "x"})
        assert r.json()["client_writes"] is True
    finally:
        adm.close()
        w.close()


def test_invalid_tokens_are_401_and_count_as_failed_authentications(rankd_factory, tmp_root):
    clock = Clock(tmp_root)
    inst = rankd_factory(env=clock.env(), extra_config=TOKENS)
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = client_board(adm)
        good = mint(w, "gus", ttl_s=120)["token"]
        c = inst.client(None)
        wait_tokens_judged(inst, good)
        assert submit(c, b, "gus", 1, key=good).status == 200
        now = int(time.time())
        base = {"iss": "rankd", "sub": "gus", "iat": now, "exp": now + 600, "jti": "x"}
        h, p, s = good.split(".")
        tampered_claims = dict(claims_of(good), sub="hal")
        tampered = h + "." + b64u(json.dumps(tampered_claims).encode()) + "." + s
        alg_none = forge({"alg": "none", "typ": "JWT"}, base, None)
        alg_none_signed = forge({"alg": "none"}, base, SECRET)
        wrong_secret = forge({"alg": "HS256", "typ": "JWT"}, base, "another-secret-of-thirty-two-bytes!")
        bad_sig = h + "." + p + "." + s[:-2] + ("AA" if s[-2:] != "AA" else "BA")
        too_long = forge({"alg": "HS256"}, dict(base, exp=now + 2 * 86400), SECRET)
        bad_sub = forge({"alg": "HS256"}, dict(base, sub="a b"), SECRET)
        failed0 = metric(inst, "rankd_auth_failures_total")
        for name, t in (("tampered", tampered), ("alg none", alg_none), ("alg none signed", alg_none_signed),
                        ("wrong secret", wrong_secret), ("bad signature", bad_sig), ("over a day", too_long),
                        ("bad sub", bad_sub), ("garbage", "a.b.c")):
            r = submit(c, b, "gus", 2, key=t)
            assert_error(r, 401)
            assert t not in r.body.decode(errors="replace"), name
            r = c.get("/v1/leaderboards/%s/entries" % b, key=t)
            assert_error(r, 401)
        assert metric(inst, "rankd_auth_failures_total") >= failed0 + 16
        # Expired: the wall clock moved past exp (the token cache holds it no longer either).
        assert c.get("/v1/leaderboards/%s/entries" % b, key=good).status == 200
        clock.set(121 * 1000)  # rankd reads the file again within 10 ms
        wait_for(lambda: c.get("/v1/leaderboards/%s/entries" % b, key=good).status == 401, "the token expired")
        r = c.get("/v1/leaderboards/%s/entries" % b, key=good)
        assert_error(r, 401)
        assert "expired" in r.json()["error"]["message"]
        clock.set(0)
        assert adm.get("/v1/leaderboards/%s/players/gus" % b).json()["score"] == 1
    finally:
        adm.close()
        w.close()


def submit_once_loaded(inst, b, player, score, key):
    """A submission with a player token to a freshly started instance: it answers 503 (nothing
    changed, "retry in 1 s") until it has loaded the revocations; sent again then, as a client would."""
    got = []
    wait_for(lambda: got.append(submit(inst.client(None), b, player, score, key=key)) or got[-1].status != 503,
             "the revocations loaded", 10)
    return got[-1]


def test_a_token_signed_with_the_previous_secret_still_verifies(rankd_factory):
    old = rankd_factory(extra_config={"auth": {"player_token_secret": OLD_SECRET}})
    adm = old.client(ADMIN_KEY)
    try:
        b = client_board(adm)
        tok = mint(old.client(WRITE_KEY), "ivy")["token"]
        assert submit_once_loaded(old, b, "ivy", 1, tok).status == 200  # a fresh instance: its revocations load first
        old.stop()
        rotated = rankd_factory(extra_config={"auth": {"player_token_secret": SECRET,
                                                       "previous_player_token_secret": OLD_SECRET}})
        assert submit_once_loaded(rotated, b, "ivy", 2, tok).status == 200
        new_tok = mint(rotated.client(WRITE_KEY), "ivy")["token"]
        assert submit(rotated.client(None), b, "ivy", 3, key=new_tok).status == 200
        rotated.stop()
        done = rankd_factory(extra_config={"auth": {"player_token_secret": SECRET}})
        # The new token first: a token the secret does not verify is refused (401) before the
        # revocations are looked at, so only a good one shows they have loaded.
        assert submit_once_loaded(done, b, "ivy", 4, new_tok).status == 200
        assert_error(submit(done.client(None), b, "ivy", 5, key=tok), 401)
    finally:
        adm.close()


def test_minting_without_a_secret_is_refused(rankd_factory):
    inst = rankd_factory(extra_config={"auth": {"player_token_secret": None}})
    r = inst.client(WRITE_KEY).post("/v1/players/jo/tokens", json_body={})
    assert_error(r, 409)
    assert "player_token_secret" in r.json()["error"]["message"]


def test_revocation_reaches_every_instance_and_a_restarted_one(rankd_factory):
    a = rankd_factory(extra_config=TOKENS)
    b_inst = rankd_factory(extra_config=TOKENS)
    adm = a.client(ADMIN_KEY)
    try:
        b = client_board(adm)
        tok = mint(a.client(WRITE_KEY), "kim")["token"]
        other = mint(a.client(WRITE_KEY), "lee")["token"]
        ca, cb = a.client(None), b_inst.client(None)
        for inst in (a, b_inst):
            wait_tokens_judged(inst, other)
        assert submit(ca, b, "kim", 1, key=tok).status == 200
        assert submit(cb, b, "kim", 2, key=tok).status == 200  # verified and cached on b too
        r = a.client(READ_KEY).delete("/v1/players/kim/tokens")
        assert_error(r, 403)
        assert_error(adm.delete("/v1/players/a%20b/tokens"), 400, "player_id")
        r = adm.delete("/v1/players/kim/tokens")
        assert r.status == 200, r.describe()
        assert r.json()["player_id"] == "kim" and r.json()["revoked_before"]
        assert_error(submit(ca, b, "kim", 3, key=tok), 401)  # the revoking instance: at once
        wait_for(lambda: cb.get("/v1/leaderboards/%s/entries" % b, key=tok).status == 401,
                 "the other instance hears the revocation")
        r = submit(cb, b, "kim", 3, key=tok)
        assert_error(r, 401)
        assert "revoked" in r.json()["error"]["message"]
        # Another player's token is untouched; a token minted after the revocation works.
        assert submit(cb, b, "lee", 1, key=other).status == 200
        fresh = mint(a.client(WRITE_KEY), "kim")["token"]
        assert submit(cb, b, "kim", 4, key=fresh).status == 200
        # A restarted instance loads the revocations.
        b_inst.stop()
        c_inst = rankd_factory(extra_config=TOKENS)
        cc = c_inst.client(None)
        wait_for(lambda: cc.get("/v1/leaderboards/%s/entries" % b, key=fresh).status == 200, "revocations loaded")
        assert_error(submit(cc, b, "kim", 5, key=tok), 401)
        assert submit(cc, b, "kim", 6, key=fresh).status == 200
    finally:
        adm.close()


def test_deleting_a_player_revokes_their_tokens(rankd):
    adm, w = rankd.client(ADMIN_KEY), rankd.client(WRITE_KEY)
    try:
        b = client_board(adm)
        tok = mint(w, "max")["token"]
        c = rankd.client(None)
        assert submit(c, b, "max", 1, key=tok).status == 200
        assert adm.delete("/v1/leaderboards/%s/players/max" % b).status == 204
        assert_error(submit(c, b, "max", 2, key=tok), 401)
    finally:
        adm.close()
        w.close()


def test_a_players_token_writes_have_a_bucket_of_their_own(rankd_factory, tmp_root):
    clock = os.path.join(tmp_root, "bucket-clock-%s" % unique("c"))
    with open(clock, "w") as f:
        f.write("0 0 %d" % 10 ** 9)  # the buckets' clock pinned: no token comes back meanwhile
    inst = rankd_factory(env={"RANKD_TEST_CLOCK_FILE": clock},
                         extra_config=dict(TOKENS, limits={"player_writes_per_s": 1, "player_burst": 3}))
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = client_board(adm)
        t1, t2 = mint(w, "nia")["token"], mint(w, "oli")["token"]
        c = inst.client(None)  # both players from one address
        wait_tokens_judged(inst, t1)  # a read: the players' write buckets untouched
        got = [submit(c, b, "nia", i, key=t1).status for i in range(5)]
        assert got == [200, 200, 200, 429, 429], got
        r = submit(c, b, "nia", 9, key=t1)
        assert_error(r, 429)
        assert int(r.header("Retry-After")) >= 1
        assert "player" in r.json()["error"]["message"]
        assert submit(c, b, "oli", 1, key=t2).status == 200  # another player, same address
        # Keys are not held to it; reads with the token neither.
        assert all(submit(w, b, "nia", 100 + i).status == 200 for i in range(5))
        assert c.get("/v1/leaderboards/%s/entries" % b, key=t1).status == 200
        r = c.post("/v1/scores:batch", json_body={"scores": [{"board": b, "player_id": "oli", "score": i}
                                                             for i in range(3)]}, key=t2)
        assert_error(r, 429)
    finally:
        adm.close()
        w.close()


def test_each_logged_submission_says_what_authorised_it_and_from_where(rankd_factory):
    keys = [{"key": ADMIN_KEY, "role": "admin"}, {"key": WRITE_KEY, "role": "write", "name": "game-server"},
            {"key": READ_KEY, "role": "read"}]
    inst = rankd_factory(extra_config={"auth": dict(TOKENS["auth"], keys=keys)})
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    try:
        b = client_board(adm)
        tok = mint(w, "pia")["token"]
        c = inst.client(None)
        wait_tokens_judged(inst, tok)
        assert submit(c, b, "pia", 10, key=tok).status == 200
        assert submit(w, b, "pia", 20).status == 200
        assert submit(adm, b, "pia", 30, key=ADMIN_KEY).status == 200
        r = c.get("/v1/players/pia/export", key=tok)  # the token reads its own export
        assert r.status == 200, r.describe()
        subs = r.json()["submissions"]
        assert [(s["score"], s["auth_by"], s["client_addr"]) for s in subs] == [
            (10, "token:rankd:pia", "127.0.0.1"), (20, "key:game-server", "127.0.0.1"),
            (30, subs[2]["auth_by"], "127.0.0.1")]
        assert subs[2]["auth_by"].startswith("key:k") and ADMIN_KEY not in subs[2]["auth_by"]
        assert adm.get("/v1/players/pia/export").json() == r.json()
    finally:
        adm.close()
        w.close()


def test_a_weak_or_reused_player_token_secret_is_refused_at_start(rankd_factory, tmp_path):
    from conftest import make_config, run_cli, to_yaml
    inst = rankd_factory(start=False)

    def check(auth, development=True):
        cfg = make_config(inst.port, inst.db.dsn, inst.redis_url or None)
        if not development:
            del cfg["development"]
            cfg["auth"]["cursor_secret"] = "q3Jx9_VbT0kLw2ZpQe7HnYc4-RfUa8MdGs1oXiB6tE5"
            cfg["auth"]["keys"] = [{"key": "Lm4nB7vC1xZ9aS2dF6gH0jK3lP8oI5uY-tR_eW1qN7m", "role": "admin"}]
        cfg["auth"].update(auth)
        path = str(tmp_path / ("c%d.yaml" % len(os.listdir(str(tmp_path)))))
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        os.chmod(path, 0o600)
        r = run_cli(["config", "check"], path, timeout=30)
        return r.returncode, r.stdout + r.stderr

    # The same as the cursor secret or a key: refused even in the development configuration.
    rc, out = check({"player_token_secret": "test-cursor-secret-0123456789"})
    assert rc == 1 and "auth.player_token_secret is the same as auth.cursor_secret" in out, out
    rc, out = check({"player_token_secret": WRITE_KEY + "xx", "keys": [{"key": WRITE_KEY + "xx", "role": "write"}]})
    assert rc == 1 and "auth.player_token_secret is the same as a write key" in out, out
    assert WRITE_KEY not in out
    rc, out = check({"player_token_secret": SECRET, "previous_player_token_secret": SECRET})
    assert rc == 1 and "auth.previous_player_token_secret is the same as auth.player_token_secret" in out, out
    assert check({"player_token_secret": SECRET})[0] == 0
    # Outside development: short, low-entropy and published secrets, named and never shown.
    rc, out = check({"player_token_secret": "short-but-sixteen-b"}, development=False)
    assert rc == 1 and "auth.player_token_secret is shorter than 32 bytes" in out, out
    rc, out = check({"player_token_secret": "generate-one-with-rankd-config-gen-key"}, development=False)
    assert rc == 1 and "auth.player_token_secret is published" in out, out
    rc, out = check({"player_token_secret": "yT7_kP2mQ9xV4cR8nB1wZ6hJ3fL0sD5gA-eU7iO2pX"}, development=False)
    assert rc == 0, out
    assert "yT7_kP2m" not in out
