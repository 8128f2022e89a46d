/*
 * api/assets.h — the files rankd serves as they are in the repository: the OpenAPI document
 * (GET /v1/openapi.json) and the dashboard (GET /dashboard/…). scripts/embed.py compiles them
 * in at build time.
 */
#ifndef RANKD_API_ASSETS_H
#define RANKD_API_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;         /* "openapi.json", "index.html", "app.js", … */
    const char *content_type;
    const char *bytes;        /* the file's bytes, static */
    size_t len;
} asset_t;

extern const asset_t rankd_assets[];
extern const size_t rankd_n_assets;

/* The asset called `name`, or NULL. */
const asset_t *asset_find(const char *name);

#endif
