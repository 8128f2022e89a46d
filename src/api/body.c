/* api/body.c — strict JSON body parsing shared by the write handlers. */
#include "api/body.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/board.h"
#include "core/score.h"
#include "util/json_text.h"

/*
 * Name the top-level member whose value contains byte `pos` of `text`, so a
 * duplicate key inside "metadata" is reported with field "metadata". False
 * when `pos` lies in the top-level object itself. The text parsed up to
 * `pos`, so a plain scan of strings and nesting is enough.
 */
static bool top_member_at(const char *text, size_t pos, char *out, size_t outlen)
{
    int depth = 0;
    bool in_string = false, escape = false, is_key = false;
    size_t key_start = 0;
    out[0] = '\0';
    for (size_t i = 0; i < pos && text[i]; i++) {
        char ch = text[i];
        if (in_string) {
            if (escape)
                escape = false;
            else if (ch == '\\')
                escape = true;
            else if (ch == '"') {
                in_string = false;
                if (is_key) {
                    size_t n = i - key_start < outlen - 1 ? i - key_start : outlen - 1;
                    memcpy(out, text + key_start, n);
                    out[n] = '\0';
                }
            }
            continue;
        }
        if (ch == '"') {
            in_string = true;
            /* A string at depth 1 right after '{' or ',' is a top-level member name. */
            size_t j = i;
            while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t' || text[j - 1] == '\n' || text[j - 1] == '\r'))
                j--;
            is_key = depth == 1 && j > 0 && (text[j - 1] == '{' || text[j - 1] == ',');
            key_start = i + 1;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return depth >= 2 && out[0];
}

int body_object(http_req_t *req, json_t **out)
{
    *out = NULL;
    if (req->body_len == 0)
        return http_error(req, 400, "invalid_argument", NULL, "a JSON object body is required");
    const char *ct = req->content_type;
    size_t n = strlen("application/json");
    if (!ct || strncasecmp(ct, "application/json", n) != 0 || (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' '))
        return http_error(req, 415, "unsupported_media_type", NULL, "the body must be application/json");
    json_error_t err;
    json_t *v = arena_json_loadb(&req->arena, req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!v && json_error_code(&err) == json_error_duplicate_key) {
        char member[128];
        bool inside = top_member_at(req->body, (size_t)err.position, member, sizeof member);
        return http_error(req, 400, "invalid_argument", inside ? member : NULL, "duplicate key in the JSON body");
    }
    if (!v)
        return http_error(req, 400, "invalid_argument", NULL, "the body is not valid JSON");
    if (!json_is_object(v)) {
        json_decref(v);
        return http_error(req, 400, "invalid_argument", NULL, "the body must be a JSON object");
    }
    *out = v;
    return 0;
}

int body_only(http_req_t *req, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(key, *a) == 0;
        if (!ok) {
            /* Named when it can be said plainly: a key of the client's own, short and printable. */
            size_t n = strlen(key);
            bool plain = n > 0 && n <= 64;
            for (size_t i = 0; i < n && plain; i++)
                plain = key[i] > 0x20 && key[i] < 0x7f;
            char fields[256] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(fields + strlen(fields), sizeof fields - strlen(fields), "%s%s", a == allowed ? "" : ", ", *a);
            if (plain)
                return http_error(req, 400, "invalid_argument", key, "unknown field %s: the fields of this body are %s",
                                  key, fields);
            return http_error(req, 400, "invalid_argument", NULL, "unknown field in the body: its fields are %s", fields);
        }
    }
    return 0;
}

int body_none(http_req_t *req)
{
    if (req->body_len == 0)
        return 0;
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const nothing[] = {NULL};
    rc = body_only(req, obj, nothing);
    json_decref(obj);
    return rc;
}

int body_score(http_req_t *req, json_t *v, const char *field, int64_t *out)
{
    if (!v || !json_is_integer(v))
        return http_error(req, 400, "invalid_argument", field, "%s must be an integer", field);
    json_int_t x = json_integer_value(v);
    if (!score_in_range(x))
        return http_error(req, 400, "invalid_argument", field, "%s must be within ±(2^53-1)", field);
    *out = x;
    return 0;
}

int body_metadata(http_req_t *req, json_t *v, char **out)
{
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return http_error(req, 400, "invalid_argument", "metadata", "metadata must be a JSON object");
    char *text = json_text_compact(v);
    if (!text)
        return http_error(req, 400, "invalid_argument", "metadata", "metadata cannot be serialized");
    if (strlen(text) > METADATA_MAX) {
        free(text);
        return http_error(req, 400, "invalid_argument", "metadata", "metadata is larger than 1024 bytes");
    }
    *out = text;
    return 0;
}

int body_string(http_req_t *req, json_t *obj, const char *field, size_t max, const char **out)
{
    json_t *v = json_object_get(obj, field);
    if (!v || !json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return http_error(req, 400, "invalid_argument", field, "%s must be a string of 1 to %zu bytes", field, max);
    *out = json_string_value(v);
    return 0;
}
