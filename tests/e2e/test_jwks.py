"""Player tokens issued by the game's identity provider (auth.issuers, issue 50): a stand-in
provider on 127.0.0.1 (http.server) serves a JWKS of keys made here with the `cryptography`
package (RSA for RS256, P-256 for ES256, Ed25519 for EdDSA) and signs tokens with them.

What runs now, through rankd: `config check` accepts and refuses issuer configurations (with
file:line:column and the reason); /readyz and /metrics show the keys fetched at start, a provider
outage (cached keys kept: "degraded", not "down", the instance stays in rotation), the recovery,
and a rotation picked up at the refresh the answer's max-age set. rankd's wall clock is moved
through the test clock file instead of waiting for max-age.

Issuer tokens are presented to routes as `Authorization: Bearer <jwt>`, a player token of the
token core (api/player_auth.c), through worker/jwks_source.c.
"""
import base64
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import (ADMIN_KEY, WRITE_KEY, create_board, free_port, make_config, now_ms, run_cli, series, to_yaml,
                      unique, wait_for)

cryptography = pytest.importorskip("cryptography", reason="python3-cryptography (scripts/deps.sh) signs the tokens")
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

AUDIENCE = "stand-in-game"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_bytes(n, width=None):
    width = width or (n.bit_length() + 7) // 8
    return n.to_bytes(width, "big")


class Key:
    """A signing key of the stand-in provider: its alg, kid, public JWK, and tokens it signs."""

    def __init__(self, alg, kid):
        self.alg, self.kid = alg, kid
        if alg == "RS256":
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pub = self.priv.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": b64url(int_bytes(pub.n)), "e": b64url(int_bytes(pub.e))}
        elif alg == "ES256":
            self.priv = ec.generate_private_key(ec.SECP256R1())
            pub = self.priv.public_key().public_numbers()
            self.jwk = {"kty": "EC", "crv": "P-256", "x": b64url(int_bytes(pub.x, 32)),
                        "y": b64url(int_bytes(pub.y, 32))}
        else:
            self.priv = ed25519.Ed25519PrivateKey.generate()
            raw = self.priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        self.jwk.update({"kid": kid, "use": "sig", "alg": alg})

    def sign(self, claims, alg=None, kid=None):
        header = {"alg": alg or self.alg, "typ": "JWT", "kid": kid or self.kid}
        head = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        msg = head.encode()
        if self.alg == "RS256":
            sig = self.priv.sign(msg, padding.PKCS1v15(), hashes.SHA256())
        elif self.alg == "ES256":
            r, s = decode_dss_signature(self.priv.sign(msg, ec.ECDSA(hashes.SHA256())))
            sig = int_bytes(r, 32) + int_bytes(s, 32)
        else:
            sig = self.priv.sign(msg)
        return head + "." + b64url(sig)


class StandInProvider:
    """A JWKS on http://127.0.0.1:<port>/jwks.json: its keys, its Cache-Control max-age, and an
    outage (503) at will; counts the fetches it answered."""

    def __init__(self, keys, max_age=60):
        self.keys = list(keys)
        self.max_age = max_age
        self.down = False
        self.fetches = 0
        self.issuer = "http://127.0.0.1/stand-in/%s" % unique("idp")
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                if provider.down:
                    self.send_error(503)
                    return
                provider.fetches += 1
                body = json.dumps({"keys": [k.jwk for k in provider.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=%d" % provider.max_age)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/jwks.json" % self.port

    def issuer_config(self, **extra):
        cfg = {"issuer": self.issuer, "audience": AUDIENCE, "jwks_url": self.url}
        cfg.update(extra)
        return cfg

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Clock:
    """The file rankd's wall clock follows (RANKD_TEST_CLOCK_FILE): its offset from ours, in ms."""

    def __init__(self, root):
        self.path = os.path.join(root, "clock-%s" % unique("c"))
        self.offset_ms = 0
        self._write()

    def _write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(self.offset_ms))
        os.replace(tmp, self.path)

    def advance(self, seconds):
        self.offset_ms += int(seconds * 1000)
        self._write()

    def now_s(self):
        """rankd's time, for the tokens' exp and iat."""
        return (now_ms() + self.offset_ms) // 1000


@pytest.fixture
def provider():
    p = StandInProvider([Key("RS256", "rsa-1"), Key("ES256", "ec-1")], max_age=60)
    yield p
    p.close()


def readyz_issuer(inst, issuer):
    cl = inst.client(ADMIN_KEY)
    try:
        r = cl.get("/readyz")
    finally:
        cl.close()
    assert r.status == 200, r.describe()  # an issuer's outage never takes the instance out
    body = r.json()
    for item in body.get("issuers", []):
        if item["issuer"] == issuer:
            return body, item
    raise AssertionError("/readyz lists no issuer %s: %s" % (issuer, body))


def start_with_issuers(rankd_factory, tmp_root, issuers, clock=None, public_reads=True):
    env = {"RANKD_TEST_CLOCK_FILE": clock.path} if clock else {}
    return rankd_factory(env=env, public_reads=public_reads, extra_config={"auth": {"issuers": issuers}})


# ---------------------------------------------------------------------------
# config check
# ---------------------------------------------------------------------------

def test_config_check_accepts_and_refuses_issuers(db, tmp_path, provider):
    inline = {"keys": [Key("EdDSA", "ed-1").jwk]}
    good = make_config(free_port(), db.dsn, extra={"auth": {"clock_skew_s": 30, "issuers": [
        provider.issuer_config(player_claim="sub"),
        {"issuer": "https://securetoken.google.com/my-game", "audience": "my-game",
         "jwks_url": "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"},
        {"issuer": "inline", "audience": AUDIENCE, "keys": inline, "clock_skew_s": 0},
    ]}})
    path = tmp_path / "good.yaml"
    path.write_text(to_yaml(good))
    r = run_cli(["config", "check"], str(path))
    assert r.returncode == 0, "config check refused good issuers: %s %s" % (r.stdout, r.stderr)

    bad_cases = [
        ({"issuer": "a", "audience": "b", "jwks_url": "http://idp.example.com/jwks.json"},
         "auth.issuers.jwks_url: must be https://: plain http:// is accepted for a loopback host only"),
        ({"issuer": "a", "audience": "b"}, "entry has neither \"jwks_url\" nor \"keys\""),
        ({"issuer": "a", "jwks_url": "https://idp.example.com/jwks.json"}, "entry is missing \"audience\""),
        ({"issuer": "a", "audience": "b", "keys": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
         "keys: no usable key among its 1"),
        ({"issuer": "a", "audience": "b", "jwks_url": "https://x.test/", "keys": inline},
         "give jwks_url or keys, not both"),
    ]
    for item, message in bad_cases:
        cfg = make_config(free_port(), db.dsn, extra={"auth": {"issuers": [item]}})
        path = tmp_path / "bad.yaml"
        path.write_text(to_yaml(cfg))
        r = run_cli(["config", "check"], str(path))
        out = r.stdout + r.stderr
        assert r.returncode != 0, "config check accepted %r" % item
        assert message in out, "%r: wanted %r in %r" % (item, message, out)
        assert str(path) + ":" in out, "no file:line:column: %r" % out


# ---------------------------------------------------------------------------
# The keys' state in /readyz and /metrics: start, outage, recovery, rotation
# ---------------------------------------------------------------------------

def test_keys_fetched_at_start_outage_keeps_them_and_rotation_is_picked_up(rankd_factory, tmp_root, provider):
    clock = Clock(tmp_root)
    inst = start_with_issuers(rankd_factory, tmp_root, [provider.issuer_config()], clock)
    iss = provider.issuer

    wait_for(lambda: readyz_issuer(inst, iss)[1]["state"] == "ok", "the provider's keys fetched at start")
    body, item = readyz_issuer(inst, iss)
    assert item["keys"] == 2 and item["last_error"] is None, item
    assert body["dependencies"]["issuer_keys"] == "ok", body
    assert series(inst, "rankd_jwks_keys", issuer=iss) == 2
    assert series(inst, "rankd_jwks_fetches_total", issuer=iss) == 1
    assert series(inst, "rankd_jwks_fetch_failures_total", issuer=iss) == 0
    assert provider.fetches == 1

    # Not due before max-age (60 s): nothing fetched; the keys only age.
    clock.advance(30)
    wait_for(lambda: readyz_issuer(inst, iss)[1]["keys_age_s"] >= 30, "the keys 30 s old")
    assert provider.fetches == 1

    # The provider goes down; past max-age the fetch fails, the cached keys stay in use.
    provider.down = True
    clock.advance(31)
    wait_for(lambda: readyz_issuer(inst, iss)[1]["state"] == "degraded", "the failed refresh in /readyz")
    body, item = readyz_issuer(inst, iss)
    assert item["keys"] == 2, item
    assert "503" in item["last_error"], item
    assert "2 keys" in item["detail"] and "in use; last fetch failed" in item["detail"], item
    assert body["status"] == "degraded" and body["dependencies"]["issuer_keys"] == "degraded", body
    cl = inst.client()
    try:
        r = cl.get("/readyz")  # without the admin key: the status alone, still 200
        assert r.status == 200 and r.json() == {"status": "degraded"}, r.describe()
    finally:
        cl.close()
    assert series(inst, "rankd_jwks_fetch_failures_total", issuer=iss) >= 1
    assert series(inst, "rankd_jwks_last_fetch_failed", issuer=iss) == 1
    assert series(inst, "rankd_jwks_keys", issuer=iss) == 2

    # Back, rotated: the RSA key replaced, an Ed25519 key added. The retry (5 s after the failure)
    # picks the new set up.
    provider.keys = [provider.keys[1], Key("RS256", "rsa-2"), Key("EdDSA", "ed-1")]
    provider.down = False
    clock.advance(6)
    wait_for(lambda: readyz_issuer(inst, iss)[1]["state"] == "ok", "the recovery in /readyz")
    _, item = readyz_issuer(inst, iss)
    assert item["keys"] == 3 and item["last_error"] is None, item
    assert series(inst, "rankd_jwks_keys", issuer=iss) == 3
    assert series(inst, "rankd_jwks_last_fetch_failed", issuer=iss) == 0
    wait_for(lambda: readyz_issuer(inst, iss)[0]["status"] == "ok", "the instance ok again")


def test_provider_down_at_start_is_degraded_not_down(rankd_factory, tmp_root, provider):
    provider.down = True
    inst = start_with_issuers(rankd_factory, tmp_root, [provider.issuer_config()])
    iss = provider.issuer
    wait_for(lambda: series(inst, "rankd_jwks_fetch_failures_total", issuer=iss) >= 1, "the first fetch failed")
    body, item = readyz_issuer(inst, iss)
    assert item["state"] == "down" and item["keys"] == 0 and item["keys_age_s"] == -1, item
    assert "no keys yet" in item["detail"], item
    # Keyed traffic goes on: the instance is degraded, not out of rotation.
    assert body["status"] == "degraded", body
    board = create_board(inst.client(), reset="none")
    r = inst.client(WRITE_KEY).post("/v1/leaderboards/%s/scores" % board["id"],
                                    json_body={"player_id": "p1", "score": 5})
    assert r.status == 200, r.describe()


def test_inline_keys_need_no_fetch(rankd_factory, tmp_root):
    key = Key("EdDSA", "ed-inline")
    inst = start_with_issuers(rankd_factory, tmp_root,
                              [{"issuer": "inline-idp", "audience": AUDIENCE, "keys": {"keys": [key.jwk]}}])
    body, item = readyz_issuer(inst, "inline-idp")
    assert item["state"] == "ok" and item["keys"] == 1 and "(inline)" in item["detail"], item
    assert series(inst, "rankd_jwks_fetches_total", issuer="inline-idp") == 0


# ---------------------------------------------------------------------------
# Tokens presented to routes: need the token core (skipped until wired)
# ---------------------------------------------------------------------------

def claims(clock, player, aud=AUDIENCE, iss=None, exp_in=600, **extra):
    now = clock.now_s()
    c = {"iss": iss, "aud": aud, "sub": player, "iat": now - 5, "exp": now + exp_in}
    c.update(extra)
    return c


def submit_with_token(inst, board, player, score, token):
    """A score submitted with a player's issuer JWT (Authorization: Bearer <jwt>)."""
    cl = inst.client()
    try:
        return cl.post("/v1/leaderboards/%s/scores" % board, json_body={"player_id": player, "score": score},
                       key=token)
    finally:
        cl.close()


def client_board(inst):
    """A board that takes client writes (the board setting of issue 50, item 2)."""
    return create_board(inst.client(), client_writes=True)["id"]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_issuer_token_submits_its_own_players_score(rankd_factory, tmp_root, alg):
    key = Key(alg, "k-" + alg)
    provider = StandInProvider([key])
    try:
        clock = Clock(tmp_root)
        inst = start_with_issuers(rankd_factory, tmp_root, [provider.issuer_config()], clock)
        wait_for(lambda: readyz_issuer(inst, provider.issuer)[1]["state"] == "ok", "keys fetched")
        board = client_board(inst)
        token = key.sign(claims(clock, "player-1", iss=provider.issuer))
        r = submit_with_token(inst, board, "player-1", 10, token)
        assert r.status in (200, 201), r.describe()
        r = submit_with_token(inst, board, "player-2", 10, token)  # another player's id
        assert r.status == 403, r.describe()
        assert series(inst, "rankd_issuer_tokens_verified_total", issuer=provider.issuer) >= 1
    finally:
        provider.close()


def test_refused_issuer_tokens_are_401(rankd_factory, tmp_root, provider):
    clock = Clock(tmp_root)
    inst = start_with_issuers(rankd_factory, tmp_root, [provider.issuer_config()], clock)
    wait_for(lambda: readyz_issuer(inst, provider.issuer)[1]["state"] == "ok", "keys fetched")
    board = client_board(inst)
    rsa_key = provider.keys[0]
    good = rsa_key.sign(claims(clock, "p1", iss=provider.issuer))
    head, payload, sig = good.split(".")
    unsigned = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + payload + "."
    tampered = head + "." + b64url(json.dumps(claims(clock, "p2", iss=provider.issuer)).encode()) + "." + sig
    cases = {
        "alg_refused": unsigned,
        "expired": rsa_key.sign(claims(clock, "p1", iss=provider.issuer, exp_in=-120)),
        "wrong_audience": rsa_key.sign(claims(clock, "p1", iss=provider.issuer, aud="another-game")),
        "bad_signature": tampered,
    }
    for reason, token in cases.items():
        r = submit_with_token(inst, board, "p1", 1, token)
        assert r.status == 401, "%s: %s" % (reason, r.describe())
        assert token not in r.body.decode(), "the 401 echoes the token"
        assert series(inst, "rankd_issuer_tokens_refused_total", reason=reason) >= 1, reason


def test_unknown_kid_refetches_rate_limited_and_rotation_mid_test(rankd_factory, tmp_root, provider):
    clock = Clock(tmp_root)
    provider.max_age = 3600  # no refresh in this test: only an unknown kid fetches again
    inst = start_with_issuers(rankd_factory, tmp_root, [provider.issuer_config()], clock)
    iss = provider.issuer
    wait_for(lambda: readyz_issuer(inst, iss)[1]["state"] == "ok", "keys fetched")
    board = client_board(inst)
    old = provider.keys[0]
    r = submit_with_token(inst, board, "p1", 1, old.sign(claims(clock, "p1", iss=iss)))
    assert r.status in (200, 201), r.describe()

    # Rotation mid-test: a new key signs; rankd has not seen it.
    new = Key("ES256", "ec-2")
    provider.keys = [new, old]
    clock.advance(31)  # past the 30 s since the last fetch: an unknown kid may fetch again
    wait_for(lambda: readyz_issuer(inst, iss)[1]["keys_age_s"] >= 31, "rankd's clock moved on")
    token = new.sign(claims(clock, "p1", iss=iss))
    r = submit_with_token(inst, board, "p1", 2, token)
    assert r.status == 401, r.describe()  # refused now; the fetch runs off the request
    wait_for(lambda: series(inst, "rankd_jwks_kid_refetches_total", issuer=iss) == 1, "the refetch asked for")
    # The provider counts a fetch when it answers, before rankd has the set in use; and both sets
    # hold 2 keys: the set's age, back under 31 s, is what says the new one is installed.
    wait_for(lambda: provider.fetches == 2 and 0 <= readyz_issuer(inst, iss)[1]["keys_age_s"] < 31,
             "the new set fetched and in use")
    r = submit_with_token(inst, board, "p1", 3, token)
    assert r.status in (200, 201), r.describe()

    # Made-up kids right after: no further fetch within 30 s, counted as limited.
    for i in range(5):
        r = submit_with_token(inst, board, "p1", 4, new.sign(claims(clock, "p1", iss=iss), kid="made-up-%d" % i))
        assert r.status == 401, r.describe()
    assert series(inst, "rankd_jwks_kid_refetches_limited_total", issuer=iss) >= 5
    assert provider.fetches == 2
