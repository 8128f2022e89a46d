"""The TypeScript client (clients/typescript, issue 50 item 7): its generated types match
api/openapi.json, it builds with tsc, and its tests (Node's test runner) pass against a real rankd
with PostgreSQL and Redis: keys, minted player tokens and a token function as the bearer, typed errors, cursor paging,
429 retried after Retry-After and bounded, and the live streams (issue 52: liveTop and livePlayer, a
write reaching a stream, resuming, gone, a window's reset; and in headless Chromium, on a page
of another origin). Node's own pass/fail counts reach scripts/test.sh's
final line (ts_client.report_counts)."""
import functools
import http.server
import json
import os
import subprocess
import threading

import browser as browser_mod
from conftest import ADMIN_KEY, READ_KEY, WRITE_KEY, create_board, free_port, submit_ok
from test_archive import Clock
import ts_client


def test_generated_types_match_the_spec():
    """The committed src/generated/ is what api/openapi.json generates now (npm run generate)."""
    pkg = ts_client.built()
    r = subprocess.run([ts_client.NODE, os.path.join(pkg, "scripts", "generate.mjs"), "--check"], cwd=pkg,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout


def test_metadata_is_an_open_object_in_the_generated_types():
    """api/openapi.json's Metadata says additionalProperties: true, so the type is not Record<string, never>."""
    with open(os.path.join(ts_client.PACKAGE, "src", "generated", "openapi.ts")) as f:
        text = f.read()
    start = text.index("        Metadata: ")
    decl = text[start:text.index(";", start) + 1]
    assert "never" not in decl and "[key: string]: unknown" in decl, decl


PLAYER_TOKEN_SECRET = "ts-client-test-token-secret-Hq7Vd2Xm9Lp4"


def test_node_tests_against_a_real_rankd(rankd_factory, tmp_path):
    keyed = rankd_factory(public_reads=False, extra_config={"auth": {"player_token_secret": PLAYER_TOKEN_SECRET}})
    limited = rankd_factory(public_reads=False, extra_config={"limits": {"reads_per_s": 1, "burst": 1}})
    # An instance whose wall clock the Node tests move (the file holds its offset from the real
    # clock, in ms): a live stream's reset event at a window's end (test/live.test.ts).
    clock = Clock(str(tmp_path))
    clocked = rankd_factory(public_reads=False, env=clock.env())
    ts_client.node_test({
        "RANKD_URL": keyed.url,
        "RANKD_LIMITED_URL": limited.url,
        "RANKD_CLOCK_URL": clocked.url,
        "RANKD_CLOCK_FILE": clock.path,
        "RANKD_ADMIN_KEY": ADMIN_KEY,
        "RANKD_WRITE_KEY": WRITE_KEY,
        "RANKD_READ_KEY": READ_KEY,
    }, name="typescript-client")


PAGE = b"""<!doctype html><meta charset="utf-8"><title>@rankd/client live</title><link rel="icon" href="data:,">
<script type="module">import * as rankd from "/dist/index.js"; window.rankd = rankd;</script>"""


class _Static(http.server.SimpleHTTPRequestHandler):
    """The package's built modules under /dist/, and "/" a page that imports them."""

    def do_GET(self):
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
            return
        if not self.path.startswith("/dist/"):
            self.send_error(404)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def test_live_streams_in_a_browser_from_another_origin(rankd_factory):
    """Issue 52: the client's live streams in a browser (headless Chromium), on a page of another
    origin (rankd's http.cors_origins lists it), with a read key as the bearer, which EventSource
    could not send: the current top, then a write's new top. Then a stream resumed with a
    Last-Event-ID: the answer comes whether or not the CORS preflight lets that header through
    (without it, the client asks once more without the header)."""
    pkg = ts_client.built()
    port = free_port()
    origin = "http://127.0.0.1:%d" % port
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_Static, directory=pkg))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    inst = rankd_factory(public_reads=False, extra_config={"http": {"cors_origins": [origin]}})
    adm, w = inst.client(ADMIN_KEY), inst.client(WRITE_KEY)
    br = None
    try:
        board = create_board(adm)["id"]
        submit_ok(w, board, "ada", 10)
        br = browser_mod.Browser()
        br.navigate(origin + "/")
        br.wait("!!window.rankd", "the client's modules")
        br.eval("""window.tops = []; window.errs = [];
            window.client = new rankd.RankdClient({ baseUrl: %s, auth: %s });
            window.follow = (lastEventId) => client.liveTop(%s, { top: 3, lastEventId }, {
              onTop: (page, info) => tops.push([info.id, page.entries.map((e) => e.player_id)]),
              onError: (e) => errs.push(String(e)) });
            window.stream = follow(undefined); 1""" % (json.dumps(inst.url), json.dumps(READ_KEY), json.dumps(board)))
        br.wait("tops.length === 1", "the first top event")
        assert br.eval("tops[0][1]") == ["ada"]
        submit_ok(w, board, "bo", 20)
        br.wait("tops.length === 2", "the new top, pushed")
        assert br.eval("tops[1][1]") == ["bo", "ada"]
        assert br.eval("errs") == [] and br.errors == [], (br.eval("errs"), br.errors)
        last = br.eval("stream.lastEventId")
        assert last == br.eval("tops[1][0]")
        br.eval("stream.close(); 1")
        assert br.eval("stream.closed.then((e) => e.reason)") == "closed"

        # Resumed with the last id: the change that came meanwhile arrives.
        submit_ok(w, board, "cy", 30)
        br.eval("window.stream = follow(%s); 1" % json.dumps(last))
        br.wait("tops.length === 3", "the change since the last event, on resuming")
        assert br.eval("tops[2][1]") == ["cy", "bo", "ada"]
        br.eval("stream.close(); 1")
    finally:
        if br:
            br.close()
        srv.shutdown()
        srv.server_close()
        adm.close()
        w.close()
