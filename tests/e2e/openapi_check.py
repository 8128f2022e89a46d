"""Every response the end-to-end tests receive, held to api/openapi.json (issue 16): its status
must be documented for its operation, and its JSON body must validate against the operation's
schema for that status (jsonschema, draft 2020-12, as OpenAPI 3.1 uses). A response of no
documented operation (an unknown route) must still be the Error object of API.md when it is an
error. conftest.Client calls check() on each response; a mismatch fails the test that got it."""
import json
import os
import re

from jsonschema import Draft202012Validator, RefResolver

DOC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "api", "openapi.json")
with open(DOC_PATH, "rb") as f:
    DOC_BYTES = f.read()
DOC = json.loads(DOC_BYTES)
_RESOLVER = RefResolver.from_schema(DOC)
_VALIDATORS = {}


def _compile(template):
    parts = []
    for seg in template.strip("/").split("/"):
        parts.append("[^/]+" if seg.startswith("{") else re.escape(seg))
    tail = "/" if template.endswith("/") and template != "/" else ""
    return re.compile("^/" + "/".join(parts) + tail + "$")


_PATHS = [(_compile(t), t) for t in DOC["paths"]]


def template_of(path):
    """The document's path template matching `path` (its query removed), or None."""
    bare = path.split("?", 1)[0]
    for rx, t in _PATHS:
        if rx.match(bare):
            return t
    return None


def _resolve(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = DOC
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def _validator(schema):
    key = json.dumps(schema, sort_keys=True)
    v = _VALIDATORS.get(key)
    if v is None:
        v = _VALIDATORS[key] = Draft202012Validator(schema, resolver=_RESOLVER)
    return v


def _validate(schema, body, what):
    errors = sorted(_validator(schema).iter_errors(body), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise AssertionError("%s: the body does not match api/openapi.json at %s: %s\nbody: %s" % (
            what, "/".join(str(x) for x in e.absolute_path) or "(root)", e.message, json.dumps(body)[:600]))


ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}


def check(method, path, status, headers, body):
    """Raise AssertionError when the response disagrees with the document."""
    if method == "OPTIONS" or status in (101,):
        return
    what = "%s %s -> %d" % (method, path, status)
    h = {k.lower(): v for k, v in headers}
    template = template_of(path)
    op = None
    if template:
        op = DOC["paths"][template].get("get" if method == "HEAD" else method.lower())
    is_json = h.get("content-type", "").startswith("application/json")
    encoded = "content-encoding" in h
    parsed = None
    if body and is_json and not encoded and method != "HEAD":
        try:
            parsed = json.loads(body)
        except ValueError:
            raise AssertionError("%s: the body is not JSON" % what)
    if op is None:
        if status >= 400 and parsed is not None and path.split("?")[0] != "/readyz":
            _validate(ERROR_SCHEMA, parsed, what)
        return
    responses = op["responses"]
    if str(status) not in responses:
        raise AssertionError("%s: status %d is not documented for %s %s in api/openapi.json (documented: %s)" % (
            what, status, method, template, ", ".join(sorted(responses))))
    resp = _resolve(responses[str(status)])
    if parsed is None:
        return
    content = resp.get("content", {})
    media = content.get("application/json")
    if media is None:
        raise AssertionError("%s: a JSON body where api/openapi.json documents %s" % (what, sorted(content) or "none"))
    if "schema" in media:
        _validate(media["schema"], parsed, what)
