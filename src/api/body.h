/*
 * api/body.h — strict reading of JSON request bodies (jansson).
 *
 * Duplicate keys, trailing bytes, integers beyond 64 bits and non-objects
 * are 400 for the whole request; a body that is not application/json is 415.
 * Each reader writes its own 4xx into the request and returns the status,
 * or 0 when the value is good.
 */
#ifndef RANKD_API_BODY_H
#define RANKD_API_BODY_H

#include <jansson.h>

#include "http/request.h"

/* Parse the body as a JSON object; *out is a new reference the caller json_decref()s. */
int body_object(http_req_t *req, json_t **out);
/* 400 naming the first member of `obj` not in `allowed` (NULL-terminated). */
int body_only(http_req_t *req, json_t *obj, const char *const *allowed);
/* A body that carries nothing: none at all, or an empty JSON object (admin calls). */
int body_none(http_req_t *req);
/* A score: a JSON integer within ±(2^53-1). */
int body_score(http_req_t *req, json_t *v, const char *field, int64_t *out);
/* Optional metadata object -> compact text (malloc'd, or NULL when absent). */
int body_metadata(http_req_t *req, json_t *v, char **out);
/* Required string member of 1..max bytes. */
int body_string(http_req_t *req, json_t *obj, const char *field, size_t max, const char **out);

#endif
