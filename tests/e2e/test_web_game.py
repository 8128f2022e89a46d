"""examples/web-game in headless Chromium (issue 50 item 7): the page, served by its stand-in
backend (examples/web-game/server.mjs) on an origin of its own, reads the board from rankd
cross-origin (http.cors_origins lists the page's origin); a player gets a minted token from the
backend, plays a round, submits the score from the browser with the token itself (a CORS
preflight first: the request carries Authorization and a JSON body), and sees the top 10 and the
players around them. Every request of the page succeeds and the console reports no error."""
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

import browser as browser_mod
import ts_client
from conftest import ADMIN_KEY, READ_KEY, REPO, WRITE_KEY, create_board, free_port, stop_process, submit_ok, \
    unique, wait_for

GAME = os.path.join(REPO, "examples", "web-game")
TOKEN_SECRET = "web-game-test-token-secret-7Qx2vN9pLk4R"


class Game:
    """rankd with the page's origin allowed, a client_writes board, and the stand-in backend."""

    def __init__(self, rankd_factory, tmp_path, cors_origins=None):
        self.port = free_port()
        self.origin = "http://127.0.0.1:%d" % self.port
        extra = {"http": {"cors_origins": cors_origins if cors_origins is not None else [self.origin]},
                 "auth": {"player_token_secret": TOKEN_SECRET}}
        self.rankd = rankd_factory(extra_config=extra)
        self.admin = self.rankd.client(ADMIN_KEY)
        self.board = create_board(self.admin, unique("game"), client_writes=True)["id"]
        ts_client.built()  # the page imports the client's built modules
        env = dict(os.environ, RANKD_URL=self.rankd.url, RANKD_WRITE_KEY=WRITE_KEY, GAME_BOARD=self.board,
                   PORT=str(self.port), HOST="127.0.0.1", NODE_NO_WARNINGS="1")
        self.log_path = str(tmp_path / "web-game.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([ts_client.NODE, os.path.join(GAME, "server.mjs")], env=env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        wait_for(self._up, lambda: "the stand-in backend on %s (log: %s)" % (self.origin, self.log()))

    def _up(self):
        assert self.proc.poll() is None, "server.mjs exited %s: %s" % (self.proc.returncode, self.log())
        try:
            with urllib.request.urlopen(self.origin + "/config.json", timeout=2) as r:
                return json.load(r)["board"] == self.board
        except OSError:
            return False

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-3000:]

    def seed(self, scores):
        """Players s00, s01, … with these scores, through the write key."""
        w = self.rankd.client(WRITE_KEY)
        try:
            for i, s in enumerate(scores):
                submit_ok(w, self.board, "s%02d" % i, s)
        finally:
            w.close()

    def close(self):
        stop_process(self.proc)
        self.admin.close()


@pytest.fixture
def game(rankd_factory, tmp_path):
    g = Game(rankd_factory, tmp_path)
    yield g
    g.close()


@pytest.fixture
def browser():
    br = browser_mod.Browser()
    br.call("Network.enable")
    yield br
    br.close()


def network(br, url_prefix):
    """The page's requests to url_prefix: [{"id","method","url","headers","status","failed",
    "response_headers"}]. Chromium names a CORS preflight's request type "Other" and its answer's
    "Preflight", under an id of its own or of the request it precedes: a preflight is its OPTIONS."""
    reqs = {}
    for ev in br.events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Network.requestWillBeSent" and p["request"]["url"].startswith(url_prefix):
            pre = p["request"]["method"] == "OPTIONS"
            reqs[(p["requestId"], pre)] = {
                "id": p["requestId"], "method": p["request"]["method"], "url": p["request"]["url"],
                "headers": p["request"].get("headers", {}), "status": None, "failed": None,
                "response_headers": {}}
    for ev in br.events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Network.responseReceived":
            r = reqs.get((p.get("requestId"), p.get("type") == "Preflight"))
            if r is not None:
                r["status"] = p["response"]["status"]
                r["response_headers"] = {k.lower(): v for k, v in p["response"]["headers"].items()}
        elif m == "Network.loadingFailed":
            for pre in (False, True):
                r = reqs.get((p.get("requestId"), pre))
                if r is not None:
                    r["failed"] = p.get("errorText")
    return list(reqs.values())


def page_wait(br, expr, what, timeout=15):
    """br.wait, and on a timeout what the page said: its state, its status line, its errors."""
    try:
        return br.wait(expr, what, timeout)
    except AssertionError as e:
        said = br.eval("[location.href, document.body && document.body.dataset.state, "
                       "(document.getElementById('status') || document.body || {}).textContent]")
        raise AssertionError("%s; the page %s: state %r, says %r; console errors: %s"
                             % (e, said[0], said[1], (said[2] or "")[:500], br.errors))


def shown(br, list_id):
    """The entries a list of the page shows: [(rank, player, score, is me)]."""
    return br.eval("[...document.querySelectorAll('#%s li')].map(li => [Number(li.dataset.rank), li.dataset.player, "
                   "Number(li.dataset.score), li.classList.contains('me')])" % list_id)


def test_the_page_reads_the_board_cross_origin_without_errors(game, browser):
    """Before signing in, the page shows the top 10 read from rankd on another origin (CORS)."""
    game.seed([100 - 3 * i for i in range(12)])
    browser.navigate(game.origin + "/")
    page_wait(browser, "document.body.dataset.state === 'login' && document.querySelectorAll('#top li').length === 10",
                 "the top 10 shown")
    assert shown(browser, "top") == [[i + 1, "s%02d" % i, 100 - 3 * i, False] for i in range(10)]
    reads = [r for r in network(browser, game.rankd.url) if r["method"] != "OPTIONS"]
    assert reads, "the page asked rankd for nothing"
    for r in reads:
        assert r["status"] == 200 and r["failed"] is None, r
        # rankd allowed the page's origin: without this header the browser hides the answer.
        assert r["response_headers"].get("access-control-allow-origin") == game.origin, r
    for r in network(browser, game.origin):
        assert r["status"] == 200 and r["failed"] is None, r
    assert browser.errors == [], browser.errors

    # The backend stand-in mints only for a valid player id, and answers with the token alone.
    def session(body):
        req = urllib.request.Request(game.origin + "/session", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)
    status, body = session({"player_id": "not a player id"})
    assert status == 400 and body["error"]["code"] == "invalid_argument", body
    status, body = session({"player_id": "ana"})
    assert status == 201 and set(body) == {"token", "player_id", "expires_at"} and body["player_id"] == "ana", body
    assert WRITE_KEY not in json.dumps(body)


def test_an_origin_rankd_does_not_list_cannot_read_the_answers(rankd_factory, tmp_path, browser):
    """The same page on an origin rankd's http.cors_origins does not list: the browser refuses it
    rankd's answers (what makes the test above pass is the CORS configuration)."""
    g = Game(rankd_factory, tmp_path, cors_origins=["https://elsewhere.example"])
    try:
        g.seed([5, 4, 3])
        browser.navigate(g.origin + "/")
        page_wait(browser, "document.body.dataset.state === 'error'", "the page to say it cannot read the board")
        assert "Reading the board failed" in browser.eval("document.getElementById('status').textContent")
        assert any("CORS" in e or "Access-Control-Allow-Origin" in e for e in browser.errors), browser.errors
    finally:
        g.close()


def test_a_round_submitted_from_the_browser_with_a_minted_token(game, browser):
    """Sign in (the backend mints a token with the write key), play a round of 33 taps, submit
    with the token from the browser (preflight included), see the top 10 and the players around."""
    game.seed([2 * i for i in range(20)])  # 0..38: 33 taps rank 4th
    me = unique("ada")
    browser.navigate(game.origin + "/?seconds=2")
    page_wait(browser, "document.body.dataset.state === 'login'", "the login form")
    browser.eval("document.getElementById('player').value = %s; "
                 "document.getElementById('login-form').requestSubmit(); true" % json.dumps(me))
    page_wait(browser, "document.body.dataset.state === 'ready'", "a session (a minted token)")
    browser.eval("document.getElementById('start').click(); true")
    page_wait(browser, "document.body.dataset.state === 'playing'", "the round to start")
    browser.eval("const b = document.getElementById('tap'); for (let i = 0; i < 33; i++) b.click(); true")
    page_wait(browser, "document.body.dataset.state === 'done' || document.body.dataset.state === 'error'",
                 "the round to end and its score to be submitted", timeout=30)
    assert browser.eval("document.body.dataset.state") == "done", \
        browser.eval("document.getElementById('status').textContent")
    assert browser.eval("document.body.dataset.submitted") == "33"

    # What the page shows: the player 4th in the top 10, and among the players around.
    top = shown(browser, "top")
    assert len(top) == 10
    assert [4, me, 33, True] in top, top
    around = shown(browser, "around")
    assert [4, me, 33, True] in around, around
    assert [e[0] for e in around] == list(range(1, len(around) + 1)) and len(around) == 8, around

    # rankd holds it, under the player.
    r = game.admin.get("/v1/leaderboards/%s/players/%s" % (game.board, me), key=READ_KEY)
    assert r.status == 200 and r.json()["score"] == 33, r.describe()

    # The page's own requests: the score went to rankd with the token (never the write key), after
    # a CORS preflight; every request succeeded.
    to_rankd = network(browser, game.rankd.url)
    scores_url = "%s/v1/leaderboards/%s/scores" % (game.rankd.url, game.board)
    preflights = [r for r in to_rankd if r["url"] == scores_url and r["method"] == "OPTIONS"]
    assert preflights, "no CORS preflight for the submission: %s" % to_rankd
    for p in preflights:
        assert p["status"] == 204 and p["failed"] is None, p
        assert p["response_headers"].get("access-control-allow-origin") == game.origin, p
    posts = [r for r in to_rankd if r["url"] == scores_url and r["method"] == "POST"]
    assert len(posts) == 1 and posts[0]["status"] == 200, posts
    auth = {k.lower(): v for k, v in posts[0]["headers"].items()}.get("authorization", "")
    assert auth.startswith("Bearer ") and WRITE_KEY not in auth and auth != "Bearer ", auth
    for r in to_rankd + network(browser, game.origin):
        assert r["failed"] is None and r["status"] is not None and r["status"] < 400, r
    assert browser.errors == [], browser.errors
