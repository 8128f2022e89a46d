/* api/body.c — strict JSON body parsing shared by the write handlers. */
#include "api/body.h"

#include <string.h>
#include <strings.h>

#include "core/board.h"
#include "core/score.h"

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
    json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
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
        if (!ok)
            return http_error(req, 400, "invalid_argument", NULL, "unknown field in the body");
    }
    return 0;
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
    char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
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
