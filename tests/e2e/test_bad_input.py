"""
tests/e2e/test_bad_input.py — malformed requests, table-driven.

Every row is sent on its own connection as raw bytes (so that paths and
headers reach rankd exactly as written) and must get the expected 4xx status
with the contract's error object, never a 5xx. The table runs against one
rankd; afterwards PostgreSQL and Redis hold exactly what they held before it
and the server still answers /healthz.
"""

import json
import time
import urllib.parse

import pytest

from conftest import (ADMIN_KEY, READ_KEY, WRITE_KEY, Resp, assert_error, build_raw, create_board, raw_request,
                      redis_mod, unique, window_start)

KEYS = {"admin": ADMIN_KEY, "write": WRITE_KEY, "read": READ_KEY, "bad": "no-such-key-123456"}

ROWS = []


def row(rid, method, path, status, field=None, body=None, key="auto", ct="application/json", headers=(),
        raw_body=None):
    """One malformed request. `path` and `body` may hold {B} {P} {W} {D} {B2} {MISSING}
    {CUR} {CUR_T} {CUR_TRUNC} {CUR_FOREIGN} {CUR_LIST} {NOT_MONDAY} placeholders."""
    if key == "auto":
        key = "read" if method in ("GET", "HEAD") else "write"
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
    if isinstance(body, str):
        body = body.encode()
    ROWS.append(pytest.param(dict(method=method, path=path, status=status, field=field, body=body, key=key,
                                  ct=ct, headers=list(headers), raw_body=raw_body), id=rid))


S = "/v1/leaderboards/{B}/scores"
E = "/v1/leaderboards/{B}/entries"
GOOD = {"player_id": "bi-player", "score": 1}


def sbody(score_json):
    return '{"player_id":"bi-player","score":%s}' % score_json


def pbody(pid_json):
    return '{"player_id":%s,"score":1}' % pid_json


# --- routes (404) -----------------------------------------------------------
row("route_unknown_v1", "GET", "/v1/nope", 404)
row("route_v2", "GET", "/v2/leaderboards", 404)
row("route_root", "GET", "/", 404)
row("route_board_sub", "GET", "/v1/leaderboards/{B}/nope", 404)
row("route_player_sub", "GET", "/v1/leaderboards/{B}/players/{P}/nope", 404)
row("route_around_extra", "GET", "/v1/leaderboards/{B}/players/{P}/around/x", 404)
row("route_unknown_bad_key", "GET", "/v1/nope", 404, key="bad")
row("route_scores_colon", "POST", "/v1/scores:unbatch", 404, body=GOOD)
row("route_admin_unknown", "POST", "/v1/admin/nope", 404, key="admin")
# Admin calls take no body: an unknown field is 400, a body of another type 415.
for path in ("/v1/admin/refresh", "/v1/admin/rebuild-cache?board={B}"):
    name = path.split("/")[3].split("?")[0].replace("-", "_")
    row("admin_%s_field" % name, "POST", path, 400, field="a", key="admin", body={"a": 1})
    row("admin_%s_text" % name, "POST", path, 415, key="admin", body="x", ct="text/plain")
    row("admin_%s_array" % name, "POST", path, 400, key="admin", body=[])

# --- methods (405 + Allow) --------------------------------------------------
row("method_put_boards", "PUT", "/v1/leaderboards", 405, body="{}", key="admin")
row("method_delete_boards", "DELETE", "/v1/leaderboards", 405, key="admin")
row("method_post_entries", "POST", E, 405, body="{}")
row("method_get_batch", "GET", "/v1/scores:batch", 405)
row("method_patch_batch", "PATCH", "/v1/scores:batch", 405, body="{}")
row("method_get_scores", "GET", S, 405)
row("method_put_board", "PUT", "/v1/leaderboards/{B}", 405, body="{}", key="admin")
row("method_post_healthz", "POST", "/healthz", 405, body="{}")
row("method_delete_v1batch", "DELETE", "/v1/batch", 405)
row("method_get_refresh", "GET", "/v1/admin/refresh", 405, key="admin")
row("method_put_player", "PUT", "/v1/leaderboards/{B}/players/{P}", 405, body="{}", key="admin")
row("method_post_around", "POST", "/v1/leaderboards/{B}/players/{P}/around", 405, body="{}")
row("method_delete_entries_bad_key", "DELETE", E, 405, key="bad")
row("method_patch_readyz", "PATCH", "/readyz", 405, body="{}")

# --- authentication and roles (401/403) -------------------------------------
row("auth_scores_no_key", "POST", S, 401, body=GOOD, key=None)
row("auth_scores_bad_key", "POST", S, 401, body=GOOD, key="bad")
row("auth_scores_read_key", "POST", S, 403, body=GOOD, key="read")
row("auth_scores_basic", "POST", S, 401, body=GOOD, key=None, headers=[("Authorization", "Basic dXNlcjpwYXNz")])
row("auth_scores_bearer_empty", "POST", S, 401, body=GOOD, key=None, headers=[("Authorization", "Bearer ")])
row("auth_create_write", "POST", "/v1/leaderboards", 403, key="write",
    body={"id": "bi-new", "title": "t", "sort": "desc", "operator": "best", "reset": "none"})
row("auth_create_read", "POST", "/v1/leaderboards", 403, key="read",
    body={"id": "bi-new", "title": "t", "sort": "desc", "operator": "best", "reset": "none"})
row("auth_create_none", "POST", "/v1/leaderboards", 401, key=None,
    body={"id": "bi-new", "title": "t", "sort": "desc", "operator": "best", "reset": "none"})
row("auth_delete_board_write", "DELETE", "/v1/leaderboards/{B}", 403, key="write")
row("auth_patch_board_read", "PATCH", "/v1/leaderboards/{B}", 403, key="read", body={"title": "x"})
row("auth_delete_player_write", "DELETE", "/v1/leaderboards/{B}/players/{P}", 403, key="write")
row("auth_refresh_write", "POST", "/v1/admin/refresh", 403, key="write")
row("auth_rebuild_read", "POST", "/v1/admin/rebuild-cache", 403, key="read")
row("auth_batch_read", "POST", "/v1/scores:batch", 403, key="read",
    body={"scores": [{"board": "{B}", "player_id": "x", "score": 1}]})
row("auth_entries_bad_key", "GET", E, 401, key="bad")
row("auth_v1batch_bad_key", "POST", "/v1/batch", 401, key="bad", body={"requests": [{"path": "/v1/leaderboards"}]})
row("auth_key_wrong_case", "GET", E, 401, key=None, headers=[("Authorization", "Bearer " + READ_KEY.upper())])
row("auth_key_extended", "GET", E, 401, key=None, headers=[("Authorization", "Bearer " + READ_KEY + "x")])
row("auth_key_truncated", "GET", E, 401, key=None, headers=[("Authorization", "Bearer " + READ_KEY[:-1])])
row("auth_write_key_extended", "POST", S, 401, body=GOOD, key=None,
    headers=[("Authorization", "Bearer " + WRITE_KEY + "0")])

# --- body size (413) --------------------------------------------------------
BIG = '{"player_id":"bi-player","score":1,"metadata":{"s":"%s"}}' % ("x" * 65536)
row("size_scores_64k", "POST", S, 413, body=BIG)
row("size_declared_huge", "POST", S, 413, body=b"", raw_body=(
    [("Content-Type", "application/json"), ("Content-Length", "1000000000")], b'{"player_id":'))
row("size_batch_2m", "POST", "/v1/scores:batch", 413,
    body='{"scores":[{"board":"{B}","player_id":"x","score":1,"metadata":{"s":"%s"}}]}' % ("y" * (2 * 1048576)))
row("size_v1batch_2m", "POST", "/v1/batch", 413, key="read",
    body='{"requests":[{"path":"/v1/leaderboards/%s"}]}' % ("z" * (2 * 1048576)))
row("size_create_board", "POST", "/v1/leaderboards", 413, key="admin",
    body='{"id":"bi-big","title":"%s","sort":"desc","operator":"best","reset":"none"}' % ("t" * 70000))
row("size_chunked", "POST", S, 413, body=b"", raw_body=(
    [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
    b"".join(b"%x\r\n%s\r\n" % (10000, b"a" * 10000) for _ in range(8)) + b"0\r\n\r\n"))
row("size_patch_board", "PATCH", "/v1/leaderboards/{B}", 413, key="admin",
    body='{"title":"%s"}' % ("t" * 70000))

# --- content type (415) -----------------------------------------------------
row("ct_text_plain", "POST", S, 415, body=GOOD, ct="text/plain")
row("ct_missing", "POST", S, 415, body=GOOD, ct=None)
row("ct_form", "POST", S, 415, body=GOOD, ct="application/x-www-form-urlencoded")
row("ct_jsonx", "POST", S, 415, body=GOOD, ct="application/jsonx")
row("ct_multipart", "POST", S, 415, body=GOOD, ct="multipart/form-data; boundary=x")
row("ct_batch_text", "POST", "/v1/scores:batch", 415, ct="text/plain",
    body={"scores": [{"board": "{B}", "player_id": "x", "score": 1}]})
row("ct_create_text", "POST", "/v1/leaderboards", 415, key="admin", ct="text/plain",
    body={"id": "bi-ct", "title": "t", "sort": "desc", "operator": "best", "reset": "none"})
row("ct_patch_xml", "PATCH", "/v1/leaderboards/{B}", 415, key="admin", ct="text/xml", body={"title": "x"})
row("ct_v1batch_text", "POST", "/v1/batch", 415, key="read", ct="text/plain",
    body={"requests": [{"path": "/v1/leaderboards"}]})

# --- JSON syntax (400 for the whole request) -------------------------------
row("json_empty", "POST", S, 400, body="")
row("json_open_brace", "POST", S, 400, body="{")
row("json_unterminated", "POST", S, 400, body='{"player_id":"bi-player","score":1')
row("json_trailing_brace", "POST", S, 400, body='{"player_id":"bi-player","score":1}}')
row("json_trailing_garbage", "POST", S, 400, body='{"player_id":"bi-player","score":1} x')
row("json_two_values", "POST", S, 400, body='{"player_id":"bi-player","score":1}{"player_id":"bi-player","score":1}')
row("json_single_quotes", "POST", S, 400, body="{'player_id':'bi-player','score':1}")
row("json_nul_word", "POST", S, 400, body="nul")
row("json_trailing_comma", "POST", S, 400, body='{"player_id":"bi-player","score":1,}')
row("json_invalid_utf8", "POST", S, 400, body=b'{"player_id":"bi-\xff","score":1}')
row("json_hex_score", "POST", S, 400, body=sbody("0x10"))
row("json_nan", "POST", S, 400, body=sbody("NaN"))
row("json_infinity", "POST", S, 400, body=sbody("Infinity"))
row("json_minus_only", "POST", S, 400, body=sbody("-"))
row("json_leading_zero", "POST", S, 400, body=sbody("01"))
row("json_raw_nul_in_string", "POST", S, 400, body=b'{"player_id":"bi-\x00","score":1}')
row("json_lone_surrogate", "POST", S, 400, body=pbody('"\\ud800"'))
row("json_deep_nesting", "POST", S, 400,
    body='{"player_id":"bi-player","score":1,"metadata":{"a":%s%s}}' % ("[" * 30000, "]" * 30000))
row("json_int_beyond_64bit", "POST", S, 400, body=sbody("18446744073709551616"))
row("json_int_huge", "POST", S, 400, body=sbody("99999999999999999999999999"))
row("json_int_huge_negative", "POST", S, 400, body=sbody("-18446744073709551617"))
row("json_bom", "POST", S, 400, body=b"\xef\xbb\xbf\xef\xbb\xbf{")
row("json_comment", "POST", S, 400, body='{"player_id":"bi-player",/*c*/"score":1}')

# --- JSON that is not an object --------------------------------------------
row("nonobj_array", "POST", S, 400, body="[]")
row("nonobj_number", "POST", S, 400, body="1")
row("nonobj_string", "POST", S, 400, body='"x"')
row("nonobj_null", "POST", S, 400, body="null")
row("nonobj_true", "POST", S, 400, body="true")
row("nonobj_array_of_obj", "POST", S, 400, body='[{"player_id":"bi-player","score":1}]')

# --- score values (400 field score) -----------------------------------------
for rid, v in (("1.0", "1.0"), ("1e3", "1e3"), ("1E3", "1E3"), ("string", '"5"'), ("true", "true"),
               ("false", "false"), ("null", "null"), ("2p53", "9007199254740992"),
               ("neg_2p53", "-9007199254740992"), ("int64_max", "9223372036854775807"),
               ("int64_min", "-9223372036854775808"), ("1.5", "1.5"), ("array", "[]"), ("object", "{}"),
               ("empty_string", '""'), ("neg_zero_float", "-0.0"), ("1e0", "1e0"), ("float_max", "9007199254740991.0")):
    row("score_" + rid, "POST", S, 400, field="score", body=sbody(v))
row("score_1e400", "POST", S, 400, body=sbody("1e400"))
row("score_missing", "POST", S, 400, body='{"player_id":"bi-player"}')

# --- player_id in the body (400 field player_id) ---------------------------
for rid, v in (("empty", '""'), ("65", json.dumps("p" * 65)), ("dotdot", '".."'), ("dot", '"."'),
               ("dots4", '"...."'), ("space", '"a b"'), ("number", "123"), ("null", "null"),
               ("accent", '"\\u00e9"'), ("slash", '"a/b"'), ("nul_escape", '"a\\u0000b"'), ("comma", '"a,b"'),
               ("array", '["a"]'), ("hash", '"a#b"'), ("percent", '"a%41"')):
    row("body_player_" + rid, "POST", S, 400, field="player_id", body=pbody(v))
row("body_player_missing", "POST", S, 400, body='{"score":1}')

# --- unknown and duplicate fields, metadata --------------------------------
row("field_unknown", "POST", S, 400, body='{"player_id":"bi-player","score":1,"extra":1}')
row("field_unknown_case", "POST", S, 400, body='{"player_id":"bi-player","Score":1}')
row("field_dup_score", "POST", S, 400, body='{"player_id":"bi-player","score":1,"score":2}')
row("field_dup_player", "POST", S, 400, body='{"player_id":"bi-player","player_id":"bi-other","score":1}')
row("meta_dup_keys", "POST", S, 400, field="metadata",
    body='{"player_id":"bi-player","score":1,"metadata":{"a":1,"a":1}}')
row("meta_nested_dup_keys", "POST", S, 400, field="metadata",
    body='{"player_id":"bi-player","score":1,"metadata":{"a":{"b":1,"b":2}}}')
row("meta_array", "POST", S, 400, field="metadata", body='{"player_id":"bi-player","score":1,"metadata":[1]}')
row("meta_string", "POST", S, 400, field="metadata", body='{"player_id":"bi-player","score":1,"metadata":"x"}')
row("meta_number", "POST", S, 400, field="metadata", body='{"player_id":"bi-player","score":1,"metadata":5}')
row("meta_1025_bytes", "POST", S, 400, field="metadata",
    body='{"player_id":"bi-player","score":1,"metadata":{"s":"%s"}}' % ("m" * 1017))
row("meta_invalid_utf8", "POST", S, 400, body=b'{"player_id":"bi-player","score":1,"metadata":{"s":"\xc3"}}')

# --- board id in the path (400 field board) --------------------------------
for rid, seg in (("upper", "UPPER"), ("lead_dash", "-lead"), ("lead_underscore", "_lead"), ("65", "b" * 65),
                 ("dot", "a.b"), ("pct_space", "a%20b"), ("pct_upper", "%41bc"), ("pct_slash", "a%2Fb"),
                 ("pct_dotdot", "%2e%2e"), ("double_encoded", "%252e"), ("pct_nul", "a%00b"),
                 ("pct_utf8", "%C3%A9t%C3%A9"), ("plus", "a+b"), ("colon", "a:b"), ("at", "a@b")):
    row("board_" + rid, "GET", "/v1/leaderboards/" + seg, 400, field="board")
row("board_pct_incomplete", "GET", "/v1/leaderboards/a%", (400, 404))
row("board_pct_invalid", "GET", "/v1/leaderboards/%zz", (400, 404))
row("board_in_scores", "POST", "/v1/leaderboards/BAD/scores", 400, field="board", body=GOOD)
row("board_in_entries", "GET", "/v1/leaderboards/Bad/entries", 400, field="board")
row("board_delete_bad", "DELETE", "/v1/leaderboards/UP%20", 400, field="board", key="admin")
row("board_pct_dotdot_scores", "POST", "/v1/leaderboards/%2E%2E/scores", 400, field="board", body=GOOD)

# --- player id in the path (400 field player_id) ---------------------------
for rid, seg in (("dot", "."), ("dotdot", ".."), ("dots3", "..."), ("pct_dotdot", "%2E%2E"), ("pct_dot", "%2e"),
                 ("65", "q" * 65), ("pct_slash", "a%2Fb"), ("pct_space", "a%20b"), ("pct_hash", "a%23b"),
                 ("pct_utf8", "%C3%A9"), ("pct_nul", "a%00"), ("plus", "a+b"), ("comma", "a,b"),
                 ("pct_percent", "a%25"), ("pct_mixed_dots", "%2e."), ("double_encoded", "%252E%252E")):
    row("player_" + rid, "GET", "/v1/leaderboards/{B}/players/" + seg, 400, field="player_id")
row("player_around_dotdot", "GET", "/v1/leaderboards/{B}/players/%2e%2e/around", 400, field="player_id")
row("player_delete_dotdot", "DELETE", "/v1/leaderboards/{B}/players/..", 400, field="player_id", key="admin")
row("player_standings_dotdot", "GET", "/v1/players/../standings", 400, field="player_id")
row("player_standings_slash", "GET", "/v1/players/a%2Fb/standings", 400, field="player_id")

# --- entries query parameters ----------------------------------------------
for rid, qs in (("limit_0", "limit=0"), ("limit_1001", "limit=1001"), ("limit_neg", "limit=-1"),
                ("limit_1e2", "limit=1e2"), ("limit_hex", "limit=0x10"), ("limit_space", "limit=%205"),
                ("limit_empty", "limit="), ("limit_twice", "limit=5&limit=5"), ("limit_abc", "limit=abc"),
                ("limit_plus", "limit=%2B5"), ("limit_float", "limit=5.0"),
                ("limit_huge", "limit=99999999999999999999"), ("limit_nul", "limit=5%00"),
                ("limit_trailing_space", "limit=5%20"), ("offset_neg", "offset=-1"), ("offset_1e2", "offset=1e2"),
                ("offset_empty", "offset="), ("offset_twice", "offset=1&offset=1"), ("offset_hex", "offset=0x10"),
                ("offset_space", "offset=%205"), ("offset_and_cursor", "offset=1&cursor={CUR}"),
                ("cursor_tampered", "cursor={CUR_T}"), ("cursor_truncated", "cursor={CUR_TRUNC}"),
                ("cursor_empty", "cursor="), ("cursor_garbage", "cursor=abc"),
                ("cursor_foreign_board", "cursor={CUR_FOREIGN}"), ("cursor_other_listing", "cursor={CUR_LIST}"),
                ("cursor_nul", "cursor=%00"), ("cursor_long", "cursor=" + "A" * 5000)):
    row("entries_" + rid, "GET", E + "?" + qs, 400)
for rid, qs, st, fld in (("bogus", "window=bogus", 400, "window"), ("feb30", "window=2024-02-30", 400, "window"),
                         ("short_month", "window=2024-1-01", 400, "window"),
                         ("compact", "window=20240101", 400, "window"), ("empty", "window=", 400, "window"),
                         ("none_board_other_date", "window=1970-01-02", 400, "window"),
                         ("datetime", "window=2024-01-01T00:00:00Z", 400, "window")):
    row("window_" + rid, "GET", E + "?" + qs, st, field=fld)
row("window_weekly_not_monday", "GET", "/v1/leaderboards/{W}/entries?window={NOT_MONDAY}", 400, field="window")
row("window_daily_absent", "GET", "/v1/leaderboards/{D}/entries?window=2000-01-01", 404, field="window")
row("window_player_bad", "GET", "/v1/leaderboards/{B}/players/{P}?window=yesterday", 400, field="window")

# --- other listings ----------------------------------------------------------
row("list_limit_0", "GET", "/v1/leaderboards?limit=0", 400)
row("list_limit_1001", "GET", "/v1/leaderboards?limit=1001", 400)
row("list_limit_1e2", "GET", "/v1/leaderboards?limit=1e2", 400)
row("list_cursor_from_entries", "GET", "/v1/leaderboards?cursor={CUR}", 400)
row("list_cursor_garbage", "GET", "/v1/leaderboards?cursor=garbage", 400)
row("windows_limit_0", "GET", "/v1/leaderboards/{B}/windows?limit=0", 400)
row("windows_cursor_garbage", "GET", "/v1/leaderboards/{B}/windows?cursor=garbage", 400)

# --- around --------------------------------------------------------------------
A = "/v1/leaderboards/{B}/players/{P}/around?"
for rid, qs in (("before_101", "before=101"), ("after_101", "after=101"), ("before_neg", "before=-1"),
                ("before_1e2", "before=1e2"), ("before_empty", "before="), ("before_hex", "before=0x10"),
                ("before_twice", "before=1&before=1"), ("after_space", "after=%205"), ("after_float", "after=1.0"),
                ("after_twice", "after=2&after=3")):
    row("around_" + rid, "GET", A + qs, 400)

# --- ids= ------------------------------------------------------------------------
IDS = "/v1/leaderboards/{B}/players"
row("ids_missing", "GET", IDS, 400)
row("ids_empty", "GET", IDS + "?ids=", 400)
row("ids_empty_item", "GET", IDS + "?ids=a,,b", 400)
row("ids_leading_comma", "GET", IDS + "?ids=,a", 400)
row("ids_dotdot", "GET", IDS + "?ids=a,%2E%2E", 400)
row("ids_space", "GET", IDS + "?ids=a,b%20c", 400)
row("ids_101", "GET", IDS + "?ids=" + ",".join("i%d" % i for i in range(101)), 400)
row("ids_too_long_id", "GET", IDS + "?ids=a," + "z" * 65, 400)

# --- Idempotency-Key -------------------------------------------------------------
for rid, v in (("129", "k" * 129), ("empty", ""), ("space", "a b"), ("non_ascii", b"caf\xc3\xa9"), ("tab", "a\tb"),
               ("del", "a\x7fb")):
    row("idem_" + rid, "POST", S, 400, body=GOOD, headers=[("Idempotency-Key", v)])
row("idem_batch_item_129", "POST", "/v1/scores:batch", (200, 400), body={"scores": [
    {"board": "{B}", "player_id": "bi-player", "score": 1, "idempotency_key": "k" * 129}]})

# --- scores:batch --------------------------------------------------------------------
ITEM = {"board": "{B}", "player_id": "bi-player", "score": 1}
row("batch_empty", "POST", "/v1/scores:batch", 400, body={"scores": []})
row("batch_1001", "POST", "/v1/scores:batch", 400, body={"scores": [ITEM] * 1001})
row("batch_object", "POST", "/v1/scores:batch", 400, body={"scores": {}})
row("batch_missing", "POST", "/v1/scores:batch", 400, body={})
row("batch_unknown_top", "POST", "/v1/scores:batch", 400, body={"scores": [ITEM], "extra": 1})
row("batch_null", "POST", "/v1/scores:batch", 400, body={"scores": None})
row("batch_trailing", "POST", "/v1/scores:batch", 400,
    body='{"scores":[{"board":"{B}","player_id":"bi-player","score":1}]}]')
row("batch_int_beyond_64bit", "POST", "/v1/scores:batch", 400,
    body='{"scores":[{"board":"{B}","player_id":"bi-player","score":1},'
         '{"board":"{B}","player_id":"bi-player","score":36893488147419103232}]}')
row("batch_array_body", "POST", "/v1/scores:batch", 400, body=[ITEM])

# --- /v1/batch ----------------------------------------------------------------------
row("v1batch_empty", "POST", "/v1/batch", 400, key="read", body={"requests": []})
row("v1batch_51", "POST", "/v1/batch", 400, key="read", body={"requests": [{"path": "/v1/leaderboards"}] * 51})
row("v1batch_string", "POST", "/v1/batch", 400, key="read", body={"requests": "x"})
row("v1batch_missing", "POST", "/v1/batch", 400, key="read", body={})
row("v1batch_unknown_top", "POST", "/v1/batch", 400, key="read",
    body={"requests": [{"path": "/v1/leaderboards"}], "x": 1})
row("v1batch_broken", "POST", "/v1/batch", 400, key="read", body='{"requests":[')

# --- board definitions ----------------------------------------------------------------
BOARD = {"id": "bi-create", "title": "t", "sort": "desc", "operator": "best", "reset": "none"}
for rid, change in (("id_upper", {"id": "UPPER"}), ("id_empty", {"id": ""}), ("id_65", {"id": "c" * 65}),
                    ("id_number", {"id": 5}), ("sort", {"sort": "up"}), ("operator", {"operator": "max"}),
                    ("reset", {"reset": "yearly"}), ("title_number", {"title": 5}),
                    ("min_float", {"min_score": 1.5}), ("max_2p53", {"max_score": 2**53}),
                    ("unknown", {"extra": True}), ("meta_array", {"metadata": [1]}),
                    ("meta_1025", {"metadata": {"s": "m" * 1017}}), ("min_gt_max", {"min_score": 5, "max_score": 4}),
                    ("sort_upper", {"sort": "DESC"})):
    row("create_" + rid, "POST", "/v1/leaderboards", 400, key="admin", body=dict(BOARD, **change))
# API.md, "Names and values": a board id that breaks its rule is field "board".
for rid, bad_id in (("upper", "UPPER"), ("empty", ""), ("65", "c" * 65), ("number", 5), ("dash_first", "-x")):
    row("create_id_field_" + rid, "POST", "/v1/leaderboards", 400, field="board", key="admin",
        body=dict(BOARD, id=bad_id))
row("create_missing_id", "POST", "/v1/leaderboards", 400, key="admin",
    body={k: v for k, v in BOARD.items() if k != "id"})
row("create_broken", "POST", "/v1/leaderboards", 400, key="admin", body='{"id":"bi-x",')
row("patch_unknown", "PATCH", "/v1/leaderboards/{B}", 400, key="admin", body={"titel": "x"})
row("patch_title_number", "PATCH", "/v1/leaderboards/{B}", 400, key="admin", body={"title": 1})
row("patch_meta_array", "PATCH", "/v1/leaderboards/{B}", 400, key="admin", body={"metadata": [1]})
row("patch_broken", "PATCH", "/v1/leaderboards/{B}", 400, key="admin", body="{")
row("patch_missing_board", "PATCH", "/v1/leaderboards/{MISSING}", 404, field="board", key="admin", body={"title": "x"})

# --- existence (404) ---------------------------------------------------------------------
row("exist_board", "GET", "/v1/leaderboards/{MISSING}", 404, field="board")
row("exist_scores", "POST", "/v1/leaderboards/{MISSING}/scores", 404, field="board", body=GOOD)
row("exist_player", "GET", "/v1/leaderboards/{B}/players/nobody-here", 404, field="player_id")
row("exist_delete_board", "DELETE", "/v1/leaderboards/{MISSING}", 404, key="admin")
row("exist_around", "GET", "/v1/leaderboards/{B}/players/nobody-here/around", 404, field="player_id")
row("exist_delete_player", "DELETE", "/v1/leaderboards/{B}/players/nobody-here", 404, key="admin")
row("exist_stats", "GET", "/v1/leaderboards/{MISSING}/stats", 404, field="board")
row("exist_windows", "GET", "/v1/leaderboards/{MISSING}/windows", 404, field="board")
row("exist_entries", "GET", "/v1/leaderboards/{MISSING}/entries", 404, field="board")
# "syntax and values (400), existence (404)": a bad value is 400 even on a board or window that
# does not exist.
M = "/v1/leaderboards/{MISSING}"
for rid, path, fld in (("entries_limit", M + "/entries?limit=0", "limit"),
                       ("entries_offset", M + "/entries?offset=-1", "offset"),
                       ("entries_window", M + "/entries?window=foo", "window"),
                       ("entries_cursor", M + "/entries?cursor=zz", "cursor"),
                       ("player_window", M + "/players/{P}?window=foo", "window"),
                       ("player_id", M + "/players/%2E%2E", "player_id"),
                       ("around_before", M + "/players/{P}/around?before=101", "before"),
                       ("ids_bad", M + "/players?ids=a,,b", "ids"),
                       ("ids_window", M + "/players?ids=a&window=foo", "window"),
                       ("stats_window", M + "/stats?window=foo", "window"),
                       ("windows_limit", M + "/windows?limit=0", "limit"),
                       ("activity_from", M + "/activity?from=x", "from"),
                       ("absent_window_limit", "/v1/leaderboards/{D}/entries?window=2000-01-01&limit=0", "limit")):
    row("order_" + rid, "GET", path, 400, field=fld)
row("order_delete_player", "DELETE", M + "/players/%2E%2E", 400, field="player_id", key="admin")


# ---------------------------------------------------------------------------

def redis_state(cl):
    """(key count, digest of every key without a TTL) of the module's Redis database."""
    try:
        keys = sorted(cl.scan_iter(count=1000))
        out = []
        for k in keys:
            if cl.pttl(k) >= 0:
                continue  # volatile keys (locks, short-lived caches) may come and go
            try:
                d = cl.execute_command("DEBUG", "DIGEST-VALUE", k)
            except redis_mod.exceptions.ResponseError:
                d = cl.type(k)
            out.append((k, repr(d)))
        return out
    except redis_mod.exceptions.RedisError as e:
        return "redis unavailable: %r" % e


def settled_redis_state(cl, quiet=1.0, timeout=15.0):
    """redis_state once it has not changed for `quiet` seconds (warming done)."""
    deadline = time.time() + timeout
    last = redis_state(cl)
    since = time.time()
    while time.time() < deadline:
        time.sleep(0.2)
        cur = redis_state(cl)
        if cur != last:
            last, since = cur, time.time()
        elif time.time() - since >= quiet:
            break
    return last


def flip(c):
    i = len(c) // 2
    return c[:i] + ("A" if c[i] != "A" else "B") + c[i + 1:]


@pytest.fixture(scope="module")
def ctx(rankd, db, redis_db):
    c = rankd.client(ADMIN_KEY)
    B = create_board(c, unique("bi"), sort="desc", operator="best")["id"]
    B2 = create_board(c, unique("bi2"), sort="desc", operator="best")["id"]
    W = create_board(c, unique("biw"), reset="weekly")["id"]
    D = create_board(c, unique("bid"), reset="daily")["id"]
    items = []
    for b in (B, B2):
        items += [{"board": b, "player_id": "p%02d" % i, "score": i % 7} for i in range(30)]
    items.append({"board": B, "player_id": "bi-player", "score": 5})
    r = c.post("/v1/scores:batch", json_body={"scores": items}, key=WRITE_KEY)
    assert r.status == 200, r.describe()
    cur = c.get("/v1/leaderboards/%s/entries?limit=5" % B).json()["next_cursor"]
    foreign = c.get("/v1/leaderboards/%s/entries?limit=5" % B2).json()["next_cursor"]
    lst = c.get("/v1/leaderboards?limit=1").json()["next_cursor"]
    assert cur and foreign and lst
    monday = window_start("weekly")
    import datetime as dt
    values = {
        "{B}": B, "{B2}": B2, "{W}": W, "{D}": D, "{P}": "p03", "{MISSING}": unique("missing"),
        "{CUR}": urllib.parse.quote(cur, safe=""),
        "{CUR_T}": urllib.parse.quote(flip(cur), safe=""),
        "{CUR_TRUNC}": urllib.parse.quote(cur[:len(cur) // 2], safe=""),
        "{CUR_FOREIGN}": urllib.parse.quote(foreign, safe=""),
        "{CUR_LIST}": urllib.parse.quote(lst, safe=""),
        "{NOT_MONDAY}": (monday + dt.timedelta(days=2)).isoformat(),
    }
    # Touch every window the table reads, so that cache warming they may trigger
    # happens now, then wait until Redis is quiet before taking the snapshot.
    for b in (B, B2, W, D):
        c.get("/v1/leaderboards/%s/entries" % b)
        c.get("/v1/leaderboards/%s/players/p03" % b)
    c.close()
    snap = (db.snapshot(), settled_redis_state(redis_db[1]))
    return {"values": values, "snapshot": snap, "rankd": rankd, "ran": 0}


def subst(x, values):
    if x is None:
        return None
    if isinstance(x, bytes):
        for k, v in values.items():
            x = x.replace(k.encode(), v.encode())
        return x
    for k, v in values.items():
        x = x.replace(k, v)
    return x


@pytest.mark.parametrize("case", ROWS)
def test_bad_request(ctx, case, request, db, redis_db):
    # The last case of the table that runs (whatever the selection) checks, after its own, that
    # no data changed and the server still serves: the table's cases run one after the other, so
    # nothing but them ran since the snapshot.
    ctx["ran"] += 1
    last = ctx["ran"] == sum(1 for it in request.session.items if it.originalname == "test_bad_request")
    try:
        bad_request(ctx, case)
    finally:
        if last:
            nothing_changed_and_alive(ctx, db, redis_db)


def bad_request(ctx, case):
    values = ctx["values"]
    inst = ctx["rankd"]
    path = subst(case["path"], values)
    headers = []
    if case["key"] is not None:
        headers.append(("Authorization", "Bearer " + KEYS[case["key"]]))
    headers += case["headers"]
    if case["raw_body"] is not None:
        extra, raw = case["raw_body"]
        data = build_raw(case["method"], path, headers + extra, raw, content_length=False)
    else:
        body = subst(case["body"], values)
        if body is not None and case["ct"] is not None:
            headers.append(("Content-Type", case["ct"]))
        data = build_raw(case["method"], path, headers, body)
    resp = raw_request("127.0.0.1", inst.port, data, timeout=20, method_hint=case["method"])
    resp.method, resp.path = case["method"], path[:200]
    assert resp.status < 500, "server error: " + resp.describe()
    expected = case["status"]
    if isinstance(expected, tuple):
        assert resp.status in expected, "expected one of %r: %s" % (expected, resp.describe())
        if resp.status >= 400:
            assert_error(resp, resp.status)
    else:
        assert_error(resp, expected, field=case["field"])


def test_table_is_large_enough():
    assert len(ROWS) >= 120, len(ROWS)


def nothing_changed_and_alive(ctx, db, redis_db):
    """After the table: no data changed and the server still serves."""
    inst = ctx["rankd"]
    assert inst.alive, "rankd died during the bad-input table:\n" + inst.stderr_tail()
    c = inst.client(None)
    try:
        r = c.get("/healthz")
        assert r.status == 200, r.describe()
    finally:
        c.close()
    before_db, before_redis = ctx["snapshot"]
    after = (db.snapshot(), settled_redis_state(redis_db[1]))
    assert after[0] == before_db, "PostgreSQL changed:\nbefore %r\nafter  %r" % (before_db, after[0])
    assert after[1] == before_redis, "Redis changed during the bad-input table"


def test_large_request_headers(rankd):
    """Headers up to 8 KiB are served; larger ones are refused with 431 (API.md), the JSON
    error up to 16 KiB, and the server goes on serving."""
    import socket

    def head_of(pad):
        s = socket.create_connection(("127.0.0.1", rankd.port), timeout=5)
        s.sendall(("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n" % ("a" * pad)).encode())
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        return data.split(b"\r\n", 1)[0]

    assert head_of(8000).startswith(b"HTTP/1.1 200"), head_of(8000)
    status = head_of(40000)
    assert status.startswith(b"HTTP/1.1 431"), status
    # Between 8 and 16 KiB: the contract's JSON error.
    r = raw_request("127.0.0.1", rankd.port, ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n"
                                              % ("a" * 10000)).encode())
    assert_error(r, 431)
    assert rankd.client(None).get("/healthz").status == 200


def test_an_endless_chunked_body_is_cut_off_soon_after_the_limit(rankd, admin):
    """A chunked body that goes on past its limit gets its 413 at once (the test below) and is
    read at most 16 MiB further, then the connection is closed; rankd neither reads it forever
    nor holds it. The client here would send 64 MiB."""
    import socket

    b = create_board(admin)["id"]
    s = socket.create_connection(("127.0.0.1", rankd.port), timeout=10)
    s.sendall(("POST /v1/leaderboards/%s/scores HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % (b, WRITE_KEY)).encode())
    chunk = b"%x\r\n%s\r\n" % (16384, b" " * 16384)
    sent, closed = 0, False
    deadline = time.time() + 20
    try:
        while sent < 64 << 20 and time.time() < deadline:
            sent += s.send(chunk[sent % len(chunk):])  # whole chunks, however the kernel splits them
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    finally:
        s.close()
    assert closed, "rankd read all %d bytes of a body limited to 64 KiB" % sent
    assert sent < 24 << 20, "rankd read %d bytes of a body limited to 64 KiB before closing" % sent
    assert rankd.client(None).get("/healthz").status == 200


def test_a_large_declared_body_sent_whole_before_reading_gets_its_413(rankd, admin):
    """A client that declares 8 MiB and sends it all before reading still reads the 413 that
    rankd sent at once: the connection closes lingering, not with a reset that would erase it."""
    import socket
    import threading

    b = create_board(admin)["id"]
    body = b" " * (8 << 20)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", rankd.port), timeout=10)
        s.sendall(("POST /v1/leaderboards/%s/scores HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (b, WRITE_KEY, len(body))).encode())

        def send_all():
            try:
                s.sendall(body)
            except OSError:
                pass  # rankd closed its side once lingering was over
        t = threading.Thread(target=send_all)
        t.start()
        t.join(15)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                got = s.recv(65536)
                if not got:
                    break
                answer += got
        except (ConnectionResetError, socket.timeout) as e:
            answer += repr(e).encode()
        s.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def _read_until_closed(s, data=b""):
    """Read until rankd closes the connection; a socket.timeout (the bounded wait) propagates."""
    import socket

    while True:
        try:
            got = s.recv(65536)
        except ConnectionResetError:
            return data, True  # closed hard after the answer; what came before is kept
        except socket.timeout:
            raise AssertionError("no end of the connection within the wait; got %r" % data[:300])
        if not got:
            return data, True
        data += got


def test_a_chunked_body_over_the_limit_is_refused_before_its_end(rankd, admin):
    """API.md: a chunked body is refused with 413 as soon as it passes the limit, and the
    connection is closed. The client never sends the final 0-chunk: the JSON 413 arrives anyway,
    without waiting for the rest of the 8 MiB, and the connection is closed."""
    import socket

    b = create_board(admin)["id"]
    s = socket.create_connection(("127.0.0.1", rankd.port), timeout=10)
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    try:
        s.sendall(("POST /v1/leaderboards/%s/scores HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % (b, WRITE_KEY)).encode() + chunk * 2)
        # Past the 64 KiB limit: the answer comes now, within the socket's timeout.
        s.settimeout(5)
        try:
            head = s.recv(65536)
        except socket.timeout:
            raise AssertionError("no answer 5 s after a chunked body passed its limit")
        try:
            s.sendall(chunk * 126)  # the rest of the 8 MiB, never the 0-chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, _ = _read_until_closed(s, head)
    finally:
        s.close()
    assert data.count(b"HTTP/1.1 ") == 1, data[:600]
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:]]
    r = Resp(int(lines[0].split(" ")[1]), "", headers, body, "POST", "")
    assert_error(r, 413)
    assert r.header("Connection", "").lower() == "close", r.describe()
    assert int(r.header("Content-Length")) == len(body), r.describe()
    assert r.header("X-Request-Id"), r.describe()
    assert rankd.client(None).get("/healthz").status == 200



def test_id_and_bound_errors_state_the_rule(admin, writer, anon):
    """Issue 28: a 400 says what is allowed, not only that the value is not."""
    def message(r, status=400):
        assert_error(r, status)
        return r.json()["error"]["message"]
    assert "1 to 64 characters of a-z, 0-9, _ and -" in message(anon.get("/v1/leaderboards/Bad!/entries"))
    b = create_board(admin, min_score=0, max_score=100)["id"]
    path = "/v1/leaderboards/%s/scores" % b
    assert "player id is 1 to 64 characters" in message(writer.post(path, json_body={"player_id": "...", "score": 1}))
    assert "player id is 1 to 64 characters" in message(anon.get("/v1/leaderboards/%s/players/a%%20b" % b))
    msg = message(writer.post(path, json_body={"player_id": "p", "score": 1}, headers={"Idempotency-Key": "a b"}))
    assert "Idempotency-Key is 1 to 128 printable ASCII characters" in msg, msg
    assert message(writer.post(path, json_body={"player_id": "p", "score": 101})) == \
        "score 101 is above this board's max_score 100"
    assert message(writer.post(path, json_body={"player_id": "p", "score": -1})) == \
        "score -1 is below this board's min_score 0"
