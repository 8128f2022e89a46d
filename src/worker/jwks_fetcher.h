/*
 * worker/jwks_fetcher.h — the keys of the trusted identity providers (auth.issuers), fetched and
 * kept fresh off the event loop, and the verification of their tokens against them.
 *
 * A thread of its own (worker/periodic.h, a round a second) fetches each issuer's JWKS with
 * libcurl at start, then again when its Cache-Control max-age runs out (held within 60 s .. 24 h;
 * an hour when the answer has none), and at once, but at most every 30 s per issuer, when a
 * token names a key id the set lacks (a rotation reached the tokens before the refresh). Every
 * fetch has a timeout (3 s to connect, 5 s in all), follows no redirect and reads 256 KiB at
 * most. A failed fetch, or a document with no usable key, keeps the last good set: a provider's
 * outage leaves the keys cached working, shown in /readyz ("degraded") and /metrics; it is tried
 * again after 5 s, doubling up to 60 s.
 *
 * A key set is immutable and refcounted (auth/jwk.h): a fetch swaps the issuer's pointer under
 * a mutex held only for that, and a verifying thread holds a reference for the length of one
 * signature check, so neither waits on the other's work, and no HTTP thread waits on any I/O.
 * Inline keys (auth.issuers[].keys) are parsed once and never fetched.
 */
#ifndef RANKD_WORKER_JWKS_FETCHER_H
#define RANKD_WORKER_JWKS_FETCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt_verify.h"
#include "config/config.h"
#include "util/buf.h"
#include "util/must_use.h"

#define JWKS_REFRESH_MIN_S 60
#define JWKS_REFRESH_MAX_S 86400
#define JWKS_REFRESH_DEFAULT_S 3600  /* when the answer has no max-age */
#define JWKS_KID_REFETCH_MIN_S 30    /* an unknown kid fetches again at most this often per issuer */
#define JWKS_RETRY_FIRST_S 5
#define JWKS_RETRY_MAX_S 60
#define JWKS_CONNECT_TIMEOUT_MS 3000
#define JWKS_TIMEOUT_MS 5000
#define JWKS_BODY_MAX (256 * 1024)

typedef struct jwks jwks_t;

/*
 * One fetch of `url`: true with the body (malloc'd, the caller frees it) in *body, *len, and the
 * answer's Cache-Control max-age in *max_age_s (-1 when none; 0 for no-store or no-cache); false
 * with a reason in `why` (no token or key material in it). The libcurl one unless a test gives
 * its own.
 */
typedef bool (*jwks_fetch_fn)(void *arg, const char *url, char **body, size_t *len, int *max_age_s, char *why,
                              size_t whylen);

typedef struct {
    jwks_fetch_fn fetch;     /* NULL: libcurl */
    void *fetch_arg;
    int64_t (*now_ms)(void); /* the wall clock in ms; NULL: clock_wall_ms (tests' clock included) */
    bool no_thread;          /* tests: no thread, the caller runs jwks_run_due */
} jwks_options_t;

/*
 * The issuers of `cfg` (copied: cfg may be freed after), their inline keys parsed, and the
 * thread that fetches the others started (`opt` NULL: the defaults). Returns NULL when `cfg` has
 * no issuer. The first fetches run on the thread at once; until one succeeds, tokens of that
 * issuer are refused (JWT_UNKNOWN_KEY).
 */
jwks_t *jwks_start(const rankd_config_t *cfg, const jwks_options_t *opt);
/* Stop the thread and free everything (NULL is fine). */
void jwks_stop(jwks_t *j);

/* One round: fetch every issuer that is due now. Returns how many fetches it tried. The thread's
 * tick, and what a test without the thread calls. */
int jwks_run_due(jwks_t *j);

/* A verdict on a bearer token, as a token source gives it (the token core's chain of sources:
 * one source's "not mine" lets the next one judge). */
typedef enum {
    JWKS_NOT_MINE = 0, /* not a JWT, or one claiming no trusted issuer: another source's, or no token */
    JWKS_VALID = 1,    /* verified: res holds player, issuer, subject, issued_at, expires_at */
    JWKS_INVALID = 2,  /* claims a trusted issuer and is refused: res->refusal and res->reason say why */
} jwks_verdict_t;

/*
 * Judge a player token (`token`, len bytes, the text after "Bearer ") presented at `now_s`: its
 * issuer picked by its claimed "iss" among the trusted ones, its signature and claims checked
 * against that issuer's keys and settings (auth/jwt_verify.h). `res` is filled whatever the
 * verdict (a reason for the 401, never token text). An unknown key id asks the thread for a
 * fetch, rate-limited. Any thread may call it (j NULL: always JWKS_NOT_MINE); it never waits on
 * I/O. A valid token's claims may be cached by the caller until res->expires_at: the signature
 * verified then stays verified.
 */
MUST_USE jwks_verdict_t jwks_verify(jwks_t *j, const char *token, size_t len, int64_t now_s, jwt_result_t *res);

/* The worst state of the issuers, for /readyz: "ok" (every issuer has keys and its last fetch
 * succeeded), "degraded" (some fetch failed, or some issuer has no keys yet); "disabled" when j is NULL. */
const char *jwks_state(jwks_t *j);
/* Append, for /readyz, a JSON list of the issuers: issuer, state (ok, degraded: cached keys but
 * the last fetch failed; down: no keys), keys, keys_age_s, last_error and a sentence saying it. */
void jwks_render_ready(jwks_t *j, buf_t *o);
/* Append the Prometheus series of the fetches, the keys and the verdicts (nothing when j is NULL). */
void jwks_render_metrics(jwks_t *j, buf_t *o);

#endif
