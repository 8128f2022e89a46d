/* worker/jwks_fetcher.c — the trusted issuers' key sets, fetched off the event loop (see jwks_fetcher.h). */
#include "worker/jwks_fetcher.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/jwk.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "worker/periodic.h"

#define ERROR_MAX 200

/* The verdicts counted, by jwt_refusal_t. */
#define N_REFUSALS (JWT_BAD_PLAYER + 1)

typedef struct {
    /* Settings: copied at start, never changed. */
    char *issuer, *audience, *url, *player_claim;
    int skew_s;
    bool inline_keys;

    /* Under jwks_t.lock. */
    jwk_set_t *keys;          /* NULL until a fetch succeeded */
    int64_t keys_at_ms;       /* when `keys` were fetched */
    int64_t next_fetch_ms;    /* when the thread fetches again */
    int64_t last_attempt_ms;  /* the last fetch's start, 0: none yet */
    bool last_failed;
    int failures_in_row;
    char last_error[ERROR_MAX];

    atomic_uint_fast64_t fetches, failures, kid_refetches, kid_refetches_limited, verified;
} issuer_t;

struct jwks {
    issuer_t *issuers;
    size_t n;
    pthread_mutex_t lock; /* guards each issuer's keys and schedule; held for no I/O and no signature check */
    jwks_fetch_fn fetch;
    void *fetch_arg;
    int64_t (*now_ms)(void);
    periodic_t *thread;
    bool curl_started;
    atomic_uint_fast64_t refused[N_REFUSALS];
};

/* --- the libcurl fetch --- */

typedef struct {
    buf_t body;
    bool too_big;
    int max_age_s;
} fetch_ctx_t;

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    fetch_ctx_t *f = arg;
    if (f->body.len + size * n > JWKS_BODY_MAX) {
        f->too_big = true;
        return 0; /* aborts the transfer */
    }
    buf_append(&f->body, ptr, size * n);
    return size * n;
}

/* max-age of a Cache-Control header line (-1 when it has none; 0 for no-store and no-cache). */
static int cache_max_age(const char *line, size_t n)
{
    static const char name[] = "cache-control:";
    if (n < sizeof name - 1 || strncasecmp(line, name, sizeof name - 1) != 0)
        return -1;
    char v[512];
    size_t vn = n - (sizeof name - 1) < sizeof v - 1 ? n - (sizeof name - 1) : sizeof v - 1;
    memcpy(v, line + sizeof name - 1, vn);
    v[vn] = '\0';
    for (char *p = v; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strstr(v, "no-store") || strstr(v, "no-cache"))
        return 0;
    const char *m = strstr(v, "max-age=");
    if (m == NULL || (m > v && m[-1] == '-')) /* not s-maxage's nor another's */
        return -1;
    long s = strtol(m + 8, NULL, 10);
    return s < 0 ? 0 : s > 100000000 ? 100000000 : (int)s;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *arg)
{
    fetch_ctx_t *f = arg;
    int age = cache_max_age(ptr, size * n);
    if (age >= 0)
        f->max_age_s = age;
    return size * n;
}

static bool curl_fetch(void *arg, const char *url, char **body, size_t *len, int *max_age_s, char *why, size_t whylen)
{
    (void)arg;
    fetch_ctx_t f = {.max_age_s = -1};
    buf_init(&f.body);
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(why, whylen, "libcurl could not start a transfer");
        buf_free(&f.body);
        return false;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http"); /* http only to loopback: the configuration says */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect could leave https */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)JWKS_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)JWKS_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "rankd/" RANKD_VERSION);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl decodes */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &f);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    bool ok = false;
    if (f.too_big)
        snprintf(why, whylen, "the answer is larger than %d bytes", JWKS_BODY_MAX);
    else if (rc != CURLE_OK)
        snprintf(why, whylen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    else if (status != 200)
        snprintf(why, whylen, "HTTP status %ld", status);
    else
        ok = true;
    if (!ok) {
        buf_free(&f.body);
        return false;
    }
    *len = f.body.len;
    *body = buf_steal(&f.body, NULL);
    *max_age_s = f.max_age_s;
    return true;
}

/* --- the schedule --- */

static int64_t retry_delay_ms(int failures_in_row)
{
    int64_t s = JWKS_RETRY_FIRST_S;
    for (int i = 1; i < failures_in_row && s < JWKS_RETRY_MAX_S; i++)
        s *= 2;
    return (s < JWKS_RETRY_MAX_S ? s : JWKS_RETRY_MAX_S) * 1000;
}

static int64_t refresh_delay_ms(int max_age_s)
{
    int64_t s = max_age_s < 0 ? JWKS_REFRESH_DEFAULT_S : max_age_s;
    if (s < JWKS_REFRESH_MIN_S)
        s = JWKS_REFRESH_MIN_S;
    if (s > JWKS_REFRESH_MAX_S)
        s = JWKS_REFRESH_MAX_S;
    return s * 1000;
}

/* Fetch issuer `is` (outside the lock), then record the outcome under it. */
static void fetch_issuer(jwks_t *j, issuer_t *is)
{
    char why[ERROR_MAX] = "", doc_why[ERROR_MAX];
    char *body = NULL;
    size_t len = 0;
    int max_age = -1;
    jwk_set_t *set = NULL;
    atomic_fetch_add(&is->fetches, 1);
    if (j->fetch(j->fetch_arg, is->url, &body, &len, &max_age, why, sizeof why)) {
        set = jwk_set_parse(body, len, doc_why, sizeof doc_why);
        if (set == NULL)
            snprintf(why, sizeof why, "%s", doc_why);
    }
    free(body);
    int64_t done_ms = j->now_ms();
    jwk_set_t *old = NULL;
    size_t n_keys = 0;
    pthread_mutex_lock(&j->lock);
    if (set != NULL) {
        old = is->keys;
        is->keys = set;
        is->keys_at_ms = done_ms;
        is->last_failed = false;
        is->failures_in_row = 0;
        is->last_error[0] = '\0';
        is->next_fetch_ms = done_ms + refresh_delay_ms(max_age);
        n_keys = set->n;
    } else {
        is->last_failed = true;
        is->failures_in_row++;
        snprintf(is->last_error, sizeof is->last_error, "%s", why);
        is->next_fetch_ms = done_ms + retry_delay_ms(is->failures_in_row);
    }
    bool had_keys = is->keys != NULL;
    pthread_mutex_unlock(&j->lock);
    jwk_set_unref(old); /* a verifying thread may hold it still: the last reference frees it */
    if (set != NULL) {
        log_info(NULL, "jwks: %s: %zu keys fetched from %s", is->issuer, n_keys, is->url);
    } else {
        atomic_fetch_add(&is->failures, 1);
        log_warn(NULL, "jwks: %s: fetching %s failed: %s; %s", is->issuer, is->url, why,
                 had_keys ? "its cached keys stay in use" : "its tokens are refused until a fetch succeeds");
    }
}

int jwks_run_due(jwks_t *j)
{
    int tried = 0;
    for (size_t i = 0; j != NULL && i < j->n; i++) {
        issuer_t *is = &j->issuers[i];
        if (is->inline_keys)
            continue;
        int64_t now = j->now_ms();
        pthread_mutex_lock(&j->lock);
        /* A wall clock set back (below the last attempt) must not put the next fetch hours off. */
        bool due = now >= is->next_fetch_ms || now < is->last_attempt_ms;
        if (due)
            is->last_attempt_ms = now;
        pthread_mutex_unlock(&j->lock);
        if (due) {
            fetch_issuer(j, is);
            tried++;
        }
    }
    return tried;
}

static void tick(void *arg)
{
    (void)jwks_run_due(arg);
}

jwks_t *jwks_start(const rankd_config_t *cfg, const jwks_options_t *opt)
{
    if (cfg->n_issuers == 0)
        return NULL;
    jwks_t *j = xcalloc(1, sizeof *j);
    pthread_mutex_init(&j->lock, NULL);
    j->fetch = opt && opt->fetch ? opt->fetch : curl_fetch;
    j->fetch_arg = opt ? opt->fetch_arg : NULL;
    j->now_ms = opt && opt->now_ms ? opt->now_ms : clock_wall_ms;
    j->issuers = xcalloc(cfg->n_issuers, sizeof *j->issuers);
    j->n = cfg->n_issuers;
    int64_t now = j->now_ms();
    bool any_url = false;
    for (size_t i = 0; i < j->n; i++) {
        const config_issuer_t *c = &cfg->issuers[i];
        issuer_t *is = &j->issuers[i];
        is->issuer = xstrdup(c->issuer);
        is->audience = xstrdup(c->audience);
        is->player_claim = xstrdup(c->player_claim ? c->player_claim : "sub");
        is->skew_s = config_issuer_skew(cfg, i);
        if (c->keys != NULL) {
            char why[ERROR_MAX];
            is->inline_keys = true;
            is->url = xstrdup("(inline keys)");
            is->keys = jwk_set_parse(c->keys, strlen(c->keys), why, sizeof why); /* checked at load: never NULL */
            is->keys_at_ms = now;
        } else {
            is->url = xstrdup(c->jwks_url);
            is->next_fetch_ms = now; /* at once */
            any_url = true;
        }
    }
    if (any_url && !(opt && opt->no_thread)) {
        if (j->fetch == curl_fetch)
            j->curl_started = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
        if (j->fetch == curl_fetch && !j->curl_started)
            log_error(NULL, "jwks: libcurl did not start: the issuers' keys will not be fetched");
        else if ((j->thread = periodic_start(tick, j, 1000)) == NULL)
            log_error(NULL, "jwks: cannot start the fetching thread: the issuers' keys will not be fetched");
    }
    return j;
}

void jwks_stop(jwks_t *j)
{
    if (j == NULL)
        return;
    periodic_stop(j->thread);
    if (j->curl_started)
        curl_global_cleanup();
    for (size_t i = 0; i < j->n; i++) {
        issuer_t *is = &j->issuers[i];
        jwk_set_unref(is->keys);
        free(is->issuer), free(is->audience), free(is->url), free(is->player_claim);
    }
    free(j->issuers);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

/* --- verification --- */

/* An unknown kid: a fetch at the thread's next round, unless one started within the last
 * JWKS_KID_REFETCH_MIN_S (then the set is that fresh already, and a flood of made-up kids must not
 * make rankd hammer the provider). */
static void want_refetch(jwks_t *j, issuer_t *is)
{
    if (is->inline_keys)
        return;
    int64_t now = j->now_ms();
    pthread_mutex_lock(&j->lock);
    bool allowed = is->last_attempt_ms == 0 || now - is->last_attempt_ms >= JWKS_KID_REFETCH_MIN_S * 1000LL;
    bool pending = is->next_fetch_ms <= now;
    if (allowed && !pending)
        is->next_fetch_ms = now;
    pthread_mutex_unlock(&j->lock);
    if (allowed && !pending)
        atomic_fetch_add(&is->kid_refetches, 1);
    else if (!allowed)
        atomic_fetch_add(&is->kid_refetches_limited, 1);
}

/* The trusted issuer named `iss` (claimed, unverified), or NULL. */
static issuer_t *issuer_named(jwks_t *j, const char *iss)
{
    for (size_t i = 0; j != NULL && iss != NULL && i < j->n; i++)
        if (strcmp(j->issuers[i].issuer, iss) == 0)
            return &j->issuers[i];
    return NULL;
}

jwks_verdict_t jwks_verify(jwks_t *j, const char *token, size_t len, int64_t now_s, jwt_result_t *res)
{
    jwt_parsed_t *p = jwt_parse(token, len, res);
    issuer_t *is = issuer_named(j, res->issuer);
    if (is == NULL) {
        if (res->refusal == JWT_OK) {
            res->refusal = JWT_WRONG_ISSUER;
            res->reason = "the token's issuer (iss) is none of the trusted issuers (auth.issuers)";
        }
        jwt_parsed_free(p);
        return JWKS_NOT_MINE;
    }
    if (p == NULL) { /* claims a trusted issuer, and is malformed or of a refused algorithm */
        atomic_fetch_add(&j->refused[res->refusal], 1);
        return JWKS_INVALID;
    }
    pthread_mutex_lock(&j->lock);
    jwk_set_t *keys = is->keys ? jwk_set_ref(is->keys) : NULL;
    pthread_mutex_unlock(&j->lock);
    jwt_policy_t policy = {
        .issuer = is->issuer, .audience = is->audience, .player_claim = is->player_claim, .clock_skew_s = is->skew_s};
    bool ok = jwt_check(p, keys, &policy, now_s, res);
    jwk_set_unref(keys);
    jwt_parsed_free(p);
    if (ok) {
        atomic_fetch_add(&is->verified, 1);
        return JWKS_VALID;
    }
    atomic_fetch_add(&j->refused[res->refusal], 1);
    if (res->refusal == JWT_UNKNOWN_KEY)
        want_refetch(j, is);
    return JWKS_INVALID;
}

/* --- state for /readyz and /metrics --- */

typedef struct {
    const char *state;
    size_t keys;
    int64_t age_s; /* -1: no keys */
    bool failed;
    char error[ERROR_MAX];
} issuer_view_t;

static void view_of(jwks_t *j, issuer_t *is, int64_t now, issuer_view_t *v)
{
    pthread_mutex_lock(&j->lock);
    v->keys = is->keys ? is->keys->n : 0;
    v->age_s = is->keys ? (now - is->keys_at_ms) / 1000 : -1;
    if (is->keys && v->age_s < 0)
        v->age_s = 0; /* the wall clock was set back */
    v->failed = is->last_failed;
    snprintf(v->error, sizeof v->error, "%s", is->last_error);
    pthread_mutex_unlock(&j->lock);
    v->state = v->keys == 0 ? "down" : v->failed ? "degraded" : "ok";
}

const char *jwks_state(jwks_t *j)
{
    if (j == NULL)
        return "disabled";
    int64_t now = j->now_ms();
    for (size_t i = 0; i < j->n; i++) {
        issuer_view_t v;
        view_of(j, &j->issuers[i], now, &v);
        if (strcmp(v.state, "ok") != 0)
            return "degraded"; /* key-authenticated traffic goes on: never "down" for the instance */
    }
    return "ok";
}

void jwks_render_ready(jwks_t *j, buf_t *o)
{
    buf_putc(o, '[');
    int64_t now = j ? j->now_ms() : 0;
    for (size_t i = 0; j != NULL && i < j->n; i++) {
        issuer_t *is = &j->issuers[i];
        issuer_view_t v;
        view_of(j, is, now, &v);
        char detail[ERROR_MAX + 200];
        if (v.keys == 0)
            snprintf(detail, sizeof detail, "no keys yet: its tokens are refused; last fetch failed: %s",
                     v.error[0] ? v.error : "(not tried yet)");
        else if (v.failed)
            snprintf(detail, sizeof detail, "%zu keys, %lld s old, in use; last fetch failed: %s", v.keys,
                     (long long)v.age_s, v.error);
        else
            snprintf(detail, sizeof detail, "%zu keys, %lld s old%s", v.keys, (long long)v.age_s,
                     is->inline_keys ? " (inline)" : "");
        buf_puts(o, i ? ",{\"issuer\":" : "{\"issuer\":");
        buf_json_str(o, is->issuer, strlen(is->issuer));
        buf_printf(o, ",\"state\":\"%s\",\"keys\":%zu,\"keys_age_s\":%lld,\"last_error\":", v.state, v.keys,
                   (long long)v.age_s);
        if (v.failed)
            buf_json_str(o, v.error, strlen(v.error));
        else
            buf_puts(o, "null");
        buf_puts(o, ",\"detail\":");
        buf_json_str(o, detail, strlen(detail));
        buf_putc(o, '}');
    }
    buf_putc(o, ']');
}

/* `s` as a Prometheus label value: backslash, quote and newline escaped. */
static void label(buf_t *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            buf_putc(o, '\\');
        if (*s == '\n') {
            buf_puts(o, "\\n");
            continue;
        }
        buf_putc(o, *s);
    }
}

static void series(jwks_t *j, buf_t *o, const char *name, const char *type, const char *help,
                   int64_t (*value)(jwks_t *, issuer_t *, int64_t))
{
    buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    int64_t now = j->now_ms();
    for (size_t i = 0; i < j->n; i++) {
        buf_printf(o, "%s{issuer=\"", name);
        label(o, j->issuers[i].issuer);
        buf_printf(o, "\"} %lld\n", (long long)value(j, &j->issuers[i], now));
    }
}

static int64_t v_fetches(jwks_t *j, issuer_t *is, int64_t now)
{
    (void)j, (void)now;
    return (int64_t)atomic_load(&is->fetches);
}
static int64_t v_failures(jwks_t *j, issuer_t *is, int64_t now)
{
    (void)j, (void)now;
    return (int64_t)atomic_load(&is->failures);
}
static int64_t v_kid(jwks_t *j, issuer_t *is, int64_t now)
{
    (void)j, (void)now;
    return (int64_t)atomic_load(&is->kid_refetches);
}
static int64_t v_kid_limited(jwks_t *j, issuer_t *is, int64_t now)
{
    (void)j, (void)now;
    return (int64_t)atomic_load(&is->kid_refetches_limited);
}
static int64_t v_verified(jwks_t *j, issuer_t *is, int64_t now)
{
    (void)j, (void)now;
    return (int64_t)atomic_load(&is->verified);
}
static int64_t v_keys(jwks_t *j, issuer_t *is, int64_t now)
{
    issuer_view_t v;
    view_of(j, is, now, &v);
    return (int64_t)v.keys;
}
static int64_t v_age(jwks_t *j, issuer_t *is, int64_t now)
{
    issuer_view_t v;
    view_of(j, is, now, &v);
    return v.age_s;
}
static int64_t v_failing(jwks_t *j, issuer_t *is, int64_t now)
{
    issuer_view_t v;
    view_of(j, is, now, &v);
    return v.failed ? 1 : 0;
}

void jwks_render_metrics(jwks_t *j, buf_t *o)
{
    if (j == NULL)
        return;
    series(j, o, "rankd_jwks_fetches_total", "counter", "Fetches of a trusted issuer's JWKS (auth.issuers).",
           v_fetches);
    series(j, o, "rankd_jwks_fetch_failures_total", "counter",
           "Fetches of a JWKS that failed (no answer, not 200, no usable key): the cached keys stayed in use.",
           v_failures);
    series(j, o, "rankd_jwks_last_fetch_failed", "gauge", "Whether the issuer's last JWKS fetch failed (1) or not (0).",
           v_failing);
    series(j, o, "rankd_jwks_keys", "gauge", "Keys of the issuer's set in use (0: none yet, its tokens are refused).",
           v_keys);
    series(j, o, "rankd_jwks_keys_age_seconds", "gauge", "Age of the issuer's keys in use (-1: none).", v_age);
    series(j, o, "rankd_jwks_kid_refetches_total", "counter",
           "Fetches a token's unknown key id (kid) asked for (at most one per 30 s per issuer).", v_kid);
    series(j, o, "rankd_jwks_kid_refetches_limited_total", "counter",
           "Tokens with an unknown key id that asked for no fetch: one had started within 30 s.", v_kid_limited);
    series(j, o, "rankd_issuer_tokens_verified_total", "counter", "Player tokens of the issuer verified (a verification, not a request: a verified token is "
           "then found in the token cache until it expires).", v_verified);
    buf_puts(o, "# HELP rankd_issuer_tokens_refused_total Tokens claiming a trusted issuer refused, by reason.\n"
                "# TYPE rankd_issuer_tokens_refused_total counter\n");
    for (int r = 1; r < N_REFUSALS; r++)
        buf_printf(o, "rankd_issuer_tokens_refused_total{reason=\"%s\"} %llu\n", jwt_refusal_name((jwt_refusal_t)r),
                   (unsigned long long)atomic_load(&j->refused[r]));
}
