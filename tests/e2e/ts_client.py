"""The TypeScript client (clients/typescript) for the end-to-end tests: install its packages
(`npm ci`, skipped while node_modules matches package-lock.json), build it with tsc, run Node's
test runner, and report Node's own pass/fail counts to scripts/test.sh (a JUnit-style file in
$RANKD_TEST_EXTRA_RESULTS, which scripts/test.sh counts beside pytest's report)."""
import hashlib
import os
import re
import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGE = os.path.join(REPO, "clients", "typescript")
NODE = os.environ.get("RANKD_NODE") or shutil.which("node")  # RANKD_NODE: another Node, e.g. 18
NPM = shutil.which("npm")

_built = {}
_lock = threading.Lock()


def run(cmd, timeout, env=None, what=None):
    """Run `cmd` in the package's folder; fail the test with its output when it fails."""
    r = subprocess.run(cmd, cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        pytest.fail("%s exited %d:\n%s\n%s" % (what or " ".join(cmd), r.returncode, r.stdout[-8000:],
                                              r.stderr[-8000:]), pytrace=False)
    return r


def built():
    """The package installed (npm ci, cached on package-lock.json's hash) and built (dist/ and
    dist-test/); once per pytest session."""
    with _lock:
        if "ok" in _built:
            return PACKAGE
        if not NODE or not NPM:
            pytest.fail("node and npm are needed for the TypeScript client (scripts/deps.sh installs them)",
                        pytrace=False)
        with open(os.path.join(PACKAGE, "package-lock.json"), "rb") as f:
            lock_hash = hashlib.sha256(f.read()).hexdigest()
        marker = os.path.join(PACKAGE, "node_modules", ".rankd-package-lock.sha256")
        if _read(marker) != lock_hash:
            run([NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"], 600, what="npm ci")
            with open(marker, "w") as f:
                f.write(lock_hash + "\n")
        # tsc again only when a source changed since the last build (the sanitizer pass of
        # scripts/test.sh finds the plain pass's build): the sources' hash is kept in each output.
        sources = sources_hash(lock_hash)
        marks = [os.path.join(PACKAGE, d, ".rankd-sources.sha256") for d in ("dist", "dist-test")]
        if not all(_read(m) == sources for m in marks):
            tsc = os.path.join(PACKAGE, "node_modules", "typescript", "bin", "tsc")
            run([NODE, tsc, "-p", "tsconfig.json"], 300, what="tsc -p tsconfig.json")
            run([NODE, tsc, "-p", "tsconfig.test.json"], 300, what="tsc -p tsconfig.test.json")
            for m in marks:
                with open(m, "w") as f:
                    f.write(sources + "\n")
        _built["ok"] = True
        return PACKAGE


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def sources_hash(lock_hash):
    """SHA-256 over what the build reads: src/, test/, the tsconfigs, the lock file, Node's version."""
    h = hashlib.sha256((lock_hash + "\0" + subprocess.run([NODE, "--version"], capture_output=True,
                                                           text=True).stdout).encode())
    files = ["tsconfig.json", "tsconfig.test.json"]
    for top in ("src", "test"):
        for d, _, names in os.walk(os.path.join(PACKAGE, top)):
            files += [os.path.relpath(os.path.join(d, n), PACKAGE) for n in names]
    for rel in sorted(files):
        h.update(rel.encode() + b"\0")
        with open(os.path.join(PACKAGE, rel), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


_TAP_COUNT = re.compile(r"^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$", re.M)
_TAP_CASE = re.compile(r"^(\s*)(ok|not ok) \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?$", re.M)


def tap_counts(out):
    """Node's summary: {"tests", "pass", "fail", "cancelled", "skipped", "todo"} (0 when absent)."""
    counts = {k: 0 for k in ("tests", "pass", "fail", "cancelled", "skipped", "todo")}
    for k, v in _TAP_COUNT.findall(out):
        counts[k] = int(v)
    return counts


def report_counts(name, out):
    """Write Node's counts as a JUnit-style file where scripts/test.sh counts them (when it set
    RANKD_TEST_EXTRA_RESULTS); the failed cases are named in it."""
    dest = os.environ.get("RANKD_TEST_EXTRA_RESULTS")
    c = tap_counts(out)
    if not dest:
        return c
    os.makedirs(dest, exist_ok=True)
    failed = c["fail"] + c["cancelled"]
    suite = ET.Element("testsuite", name=name, tests=str(c["tests"]), failures=str(failed),
                       errors="0", skipped=str(c["skipped"] + c["todo"]))
    for indent, verdict, title, directive in _TAP_CASE.findall(out):
        if verdict == "not ok" and not directive:
            case = ET.SubElement(suite, "testcase", classname=name, name=title)
            ET.SubElement(case, "failure", message="failed in node --test")
    ET.ElementTree(suite).write(os.path.join(dest, "%s.xml" % name), encoding="utf-8", xml_declaration=True)
    return c


def node_test(env_extra, name="node-test", timeout=300):
    """Run the package's compiled tests with Node's test runner (TAP), `env_extra` added to the
    environment; fails the calling test with Node's output when one of them failed. Returns the counts."""
    built()
    env = dict(os.environ)
    env.update(env_extra)
    env.setdefault("NODE_NO_WARNINGS", "1")  # Node 18's notice that fetch is experimental
    runner = os.path.join(PACKAGE, "scripts", "run-tests.mjs")
    r = subprocess.run([NODE, runner, "--test-reporter=tap"], cwd=PACKAGE, env=env, capture_output=True,
                       text=True, timeout=timeout)
    out = r.stdout
    c = report_counts(name, out)
    if r.returncode != 0 or c["fail"] or c["cancelled"] or not c["tests"]:
        pytest.fail("node --test exited %d (%s):\n%s\n%s" % (
            r.returncode, ", ".join("%s %d" % kv for kv in c.items()), out[-12000:], r.stderr[-4000:]),
            pytrace=False)
    return c
