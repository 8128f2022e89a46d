"""The TypeScript client (clients/typescript, issue 50 item 7): its generated types match
api/openapi.json, it builds with tsc, and its tests (Node's test runner) pass against a real rankd
with PostgreSQL and Redis: keys, minted player tokens and a token function as the bearer, typed errors, cursor paging,
429 retried after Retry-After and bounded, and the live streams (issue 52: liveTop and livePlayer, a
write reaching a stream, resuming, gone, a window's reset). Node's own pass/fail counts reach scripts/test.sh's
final line (ts_client.report_counts)."""
import os
import subprocess

from conftest import ADMIN_KEY, READ_KEY, WRITE_KEY
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
