"""What users and operators read (issue 16): the OpenAPI document is served as the repository
holds it, and it is held to the router both ways: every route `rankd routes` lists is a path of
the document with the same methods, and every path of the document is routed with those methods
(its Allow header). Every response the other tests receive is validated against the document
(openapi_check.py). The dashboard's files are served with a strict Content-Security-Policy."""
import gzip
import os
import re
import subprocess

from conftest import ADMIN_KEY, RANKD_BIN, READ_KEY, REPO
from openapi_check import DOC, DOC_BYTES

METHODS = ("get", "post", "patch", "delete", "put")


def doc_routes():
    """{path template: set of methods} of the document."""
    return {p: {m.upper() for m in ops if m in METHODS} for p, ops in DOC["paths"].items()}


def binary_routes():
    out = subprocess.run([RANKD_BIN, "routes"], capture_output=True, text=True, check=True).stdout
    routes = {}
    for line in out.splitlines():
        methods, path = line.rsplit(" ", 1)
        routes[path] = set(methods.split(", "))
    return routes


def concrete(template):
    return re.sub(r"\{[^}]+\}", lambda m: {"{board}": "some-board", "{player}": "some-player",
                                           "{file}": "app.js"}.get(m.group(0), "x"), template)


def test_the_document_is_served_as_the_repository_holds_it(rankd_factory):
    inst = rankd_factory(public_reads=False)  # no key needed, even where reads need one
    c = inst.client(None)
    try:
        r = c.get("/v1/openapi.json")
        assert r.status == 200 and r.body == DOC_BYTES, r.describe()
        assert r.header("Content-Type") == "application/json"
        assert c.get("/v1/openapi.json", headers={"If-None-Match": r.header("ETag")}).status == 304
        assert DOC["openapi"].startswith("3.1")
        # Compressed once for all requests: the same bytes once decoded, under a tag of their own.
        z = c.get("/v1/openapi.json", headers={"Accept-Encoding": "gzip"})
        assert z.header("Content-Encoding") == "gzip" and gzip.decompress(z.body) == DOC_BYTES
        assert z.header("ETag") != r.header("ETag") and len(z.body) < len(DOC_BYTES) // 4
        assert c.get("/v1/openapi.json", headers={"Accept-Encoding": "gzip"}).body == z.body
        head = c.head("/v1/openapi.json")
        assert head.status == 200 and head.body == b"" and int(head.header("Content-Length")) == len(DOC_BYTES)
        # Through /v1/batch too, as any GET /v1/… read.
        b = c.post("/v1/batch", json_body={"requests": [{"path": "/v1/openapi.json"}]}, key=READ_KEY)
        assert b.status == 200 and b.json()["responses"][0]["body"] == DOC
    finally:
        c.close()


def test_every_route_is_documented_and_every_documented_path_is_routed(rankd_factory):
    documented, routed = doc_routes(), binary_routes()
    assert set(routed) == set(documented), "routed only: %s; documented only: %s" % (
        sorted(set(routed) - set(documented)), sorted(set(documented) - set(routed)))
    for path, methods in routed.items():
        assert methods == documented[path], "%s: routed %s, documented %s" % (path, methods, documented[path])
    # And the server itself answers each documented path with exactly those methods.
    inst = rankd_factory()
    c = inst.client(None)
    try:
        for path, methods in documented.items():
            r = c.options(concrete(path))
            assert r.status == 204, r.describe()
            allow = {m.strip() for m in r.header("Allow").split(",")}
            want = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
            assert allow == want, "%s: Allow %s, documented %s" % (path, allow, want)
        assert c.get("/v1/no-such-route").status == 404
    finally:
        c.close()


def test_every_operation_is_complete():
    """Each operation has an id (unique), a summary and a documented success (or redirect); every error answer
    refers to the Error schema; every $ref resolves."""
    ids = []
    for path, ops in DOC["paths"].items():
        for m, op in ops.items():
            if m not in METHODS:
                continue
            ids.append(op["operationId"])
            assert op.get("summary"), (path, m)
            # a 2xx, or for a redirect (/dashboard) its 3xx with a Location
            assert any(code.startswith("2") or code in ("301", "302", "307", "308") for code in op["responses"]), \
                (path, m)
    assert len(ids) == len(set(ids))

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                target = DOC
                for part in ref.lstrip("#/").split("/"):
                    assert part in target, "unresolved $ref %s" % ref
                    target = target[part]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(DOC)


def test_the_dashboard_files_and_their_policy(rankd_factory):
    inst = rankd_factory(public_reads=False)
    c = inst.client(None)
    try:
        page = c.get("/dashboard/")
        assert page.status == 200 and page.header("Content-Type").startswith("text/html"), page.describe()
        csp = page.header("Content-Security-Policy")
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert page.header("X-Content-Type-Options") == "nosniff"
        html = page.body.decode()
        assert "<script src=\"/dashboard/app.js\"" in html and "<style" not in html and " style=" not in html
        assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # nothing from elsewhere
        for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css")):
            r = c.get("/dashboard/" + name)
            assert r.status == 200 and r.header("Content-Type").startswith(ctype), r.describe()
            assert "https://" not in r.body.decode() and "http://" not in r.body.decode().replace("http://www.w3.org", "")
        for missing in ("/dashboard/nope.js", "/dashboard/openapi.json", "/dashboard/a/b", "/dashboard/..%2fx"):
            assert c.get(missing).status == 404, missing
        assert c.post("/dashboard/", json_body={}, key=ADMIN_KEY).status == 405
    finally:
        c.close()


def test_the_guide_lists_the_routes_the_openapi_document_has():
    """Issue 29: docs/api.md's table of endpoints and api/openapi.json name the same operations
    (method and path, queries aside), so neither document drifts from the other."""
    guide = open(os.path.join(REPO, "docs", "api.md")).read()
    listed = set()
    for m in re.finditer(r"^\| `(GET|POST|PATCH|DELETE|PUT) ([^`?]+)(?:\?[^`]*)?` \|", guide, re.M):
        listed.add((m.group(1), m.group(2)))
    documented = {(m.upper(), p) for p, ops in DOC["paths"].items() for m in ops if m in METHODS}
    assert listed, "no endpoint table found in docs/api.md"
    assert listed - documented == set(), "in docs/api.md, not in api/openapi.json"
    assert documented - listed == set(), "in api/openapi.json, not in docs/api.md"
