/* tests/fuzz/fuzz_body.c — request bodies as the write routes read them (api/body.c): the JSON
 * object, unknown members, a score, metadata, strings; every 4xx is the error object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_req_t req;
    http_req_init(&req);
    req.body = (const char *)data;
    req.body_len = size;
    req.content_type = "application/json";
    json_t *obj = NULL;
    if (body_object(&req, &obj) == 0) {
        static const char *const allowed[] = {"player_id", "score", "metadata", "id", "title", "sort", "operator",
                                              "reset", "min_score", "max_score", "scores", "requests", NULL};
        http_req_t r2;
        http_req_init(&r2);
        (void)body_only(&r2, obj, allowed);
        http_req_clear(&r2);
        int64_t score;
        http_req_init(&r2);
        (void)body_score(&r2, json_object_get(obj, "score"), "score", &score);
        http_req_clear(&r2);
        char *md = NULL;
        http_req_init(&r2);
        if (body_metadata(&r2, json_object_get(obj, "metadata"), &md) == 0)
            free(md);
        http_req_clear(&r2);
        const char *s;
        http_req_init(&r2);
        (void)body_string(&r2, obj, "title", 200, &s);
        http_req_clear(&r2);
        json_decref(obj);
    } else if (req.status < 400 || req.status > 499 || req.out.len == 0) {
        abort(); /* a refusal is always a 4xx with its error object */
    }
    http_req_clear(&req);
    return 0;
}
