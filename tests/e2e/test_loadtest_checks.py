"""The load test's checks of a running rankd (loadtest/run.sh), run as the script runs them: in
bash, under `set -euo pipefail`. A check that answers no when the answer is yes turns a good run
into a reported failure (issue 49 item 8: "the rank tier did not hold big within a minute", from
a run whose tier held big 0.2 s after its first read)."""
import os
import re
import subprocess

from conftest import ADMIN_KEY, READ_KEY, WRITE_KEY, create_board, series, submit_ok, wait_for

RUN_SH = os.path.join(os.path.dirname(__file__), "..", "..", "loadtest", "run.sh")


def shell_function(name):
    """The text of function `name` as run.sh defines it (from `name() {` to the `}` line)."""
    with open(RUN_SH) as f:
        m = re.search(r"^%s\(\) \{.*?^\}$" % re.escape(name), f.read(), re.S | re.M)
    assert m, "loadtest/run.sh defines no %s()" % name
    return m.group(0)


def test_the_tier_check_says_held_each_time_the_tier_holds_a_window(rankd_factory, db):
    """Before: tier_ready piped /metrics (33 KB) into `grep -q`, which stops at the line; curl
    then failed writing the rest, and pipefail made the check fail 80 times in 300 with the window
    ready. The load test looked twice: ready in its loop, then not ready at its second look."""
    inst = rankd_factory(env={"RANKD_RANK_TIER": "67108864", "RANKD_CACHE_BYTES": "0"})
    admin, w, c = inst.client(ADMIN_KEY), inst.client(WRITE_KEY), inst.client(READ_KEY)
    board = create_board(admin)["id"]
    submit_ok(w, board, "p1", 1)
    wait_for(lambda: series(inst, "rankd_rank_tier_windows", state="ready") == 1, "the window in the tier",
             timeout=30, poke=lambda: c.get("/v1/leaderboards/%s/players/p1" % board))
    script = "\n".join([
        "set -euo pipefail",
        "ADMIN_KEY='%s'" % ADMIN_KEY,
        shell_function("tier_ready"),
        "missed=0",
        "for _ in $(seq 1 200); do tier_ready '%s' || missed=$((missed + 1)); done" % inst.url,
        "echo \"$missed\"",
    ])
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0", "tier_ready said no %s times in 200, the window ready" % r.stdout.strip()
    assert series(inst, "rankd_rank_tier_windows", state="ready") == 1
    for x in (admin, w, c):
        x.close()
