/* worker/events.c — the end-of-window events' sender (see events.h). */
#include "worker/events.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "store/events.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "worker/periodic.h"

#define EVENT_TIMEOUT_MS 10000               /* API.md: no answer in 10 s is a failed try */
#define EVENT_LEASE_MS (EVENT_TIMEOUT_MS * 6) /* a claimed event is due again after this */
#define EVENT_FIRST_RETRY_MS 15000
#define EVENT_RETRY_MAX_MS 3600000
#define EVENT_GIVE_UP_MS (24LL * 3600000)
#define EVENTS_PER_ROUND 20

struct events {
    pg_pool_t *primary;
    periodic_t *timer;
    atomic_uint_fast64_t delivered, retried, given_up;
};

int64_t events_backoff_ms(int attempts)
{
    int64_t d = EVENT_FIRST_RETRY_MS;
    for (int i = 1; i < attempts && d < EVENT_RETRY_MAX_MS; i++)
        d *= 2;
    return d < EVENT_RETRY_MAX_MS ? d : EVENT_RETRY_MAX_MS;
}

static size_t discard(char *ptr, size_t size, size_t n, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * n;
}

/* POST the event; its HTTP status (0: no answer), and a reason into err when it is no 2xx. */
static int post(const event_t *ev, char *err, size_t errlen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), ev->secret, (int)strlen(ev->secret), (const unsigned char *)ev->body, strlen(ev->body), mac,
         &mac_len);
    char sig[40 + 2 * EVP_MAX_MD_SIZE] = "X-Rankd-Signature: sha256=";
    size_t at = strlen(sig);
    for (unsigned int i = 0; i < mac_len; i++)
        at += (size_t)snprintf(sig + at, sizeof sig - at, "%02x", mac[i]);
    char id[96];
    snprintf(id, sizeof id, "X-Rankd-Event-Id: %s", ev->id);
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "libcurl could not start a transfer");
        return 0;
    }
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, sig);
    hdr = curl_slist_append(hdr, id);
    hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, ev->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, ev->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(ev->body));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)EVENT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "rankd/" RANKD_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK)
        snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    else if (status < 200 || status > 299)
        snprintf(err, errlen, "the webhook answered %ld", status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return (int)status;
}

/* Claim, send and record one due event; false when none was due (or PostgreSQL failed). */
static bool send_one(events_t *e)
{
    PGconn *c = pg_pool_acquire(e->primary, 1000);
    if (!c)
        return false;
    event_t ev;
    event_init(&ev);
    q_status_t st = q_event_claim(c, clock_wall_ms(), EVENT_LEASE_MS, &ev);
    pg_pool_release(e->primary, c, st == Q_UNAVAILABLE || st == Q_ERROR);
    if (st != Q_OK) {
        event_clear(&ev);
        return false;
    }
    char err[256] = "";
    int status = post(&ev, err, sizeof err); /* no connection held meanwhile */
    int64_t now = clock_wall_ms();
    const char *state = "pending";
    int64_t next = now + events_backoff_ms(ev.attempts);
    if (status >= 200 && status <= 299) {
        state = "delivered";
        atomic_fetch_add(&e->delivered, 1);
    } else if (now - ev.created_ms >= EVENT_GIVE_UP_MS) {
        state = "failed";
        atomic_fetch_add(&e->given_up, 1);
        log_warn(NULL, "event %s: given up after %d tries in 24 h (%s)", ev.id, ev.attempts, err);
    } else {
        atomic_fetch_add(&e->retried, 1);
        log_info(NULL, "event %s: try %d failed (%s); trying again in %lld s", ev.id, ev.attempts, err,
                 (long long)(next - now) / 1000);
    }
    c = pg_pool_acquire(e->primary, 5000);
    /* Not recorded: the lease makes the event due again, and it is sent once more (at least once). */
    if (c) {
        st = q_event_tried(c, ev.id, state, status, err[0] ? err : NULL, now, next);
        pg_pool_release(e->primary, c, st != Q_OK);
    }
    event_clear(&ev);
    return true;
}

/* One round (on the timer's thread): the due events sent, up to EVENTS_PER_ROUND. */
static void send_round(void *arg)
{
    events_t *e = arg;
    for (int i = 0; i < EVENTS_PER_ROUND && send_one(e); i++) {
    }
}

events_t *events_start(pg_pool_t *primary, int interval_ms)
{
    if (!primary)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error(NULL, "libcurl did not start: end-of-window events will not be sent from this instance");
        return NULL;
    }
    events_t *e = xcalloc(1, sizeof *e);
    e->primary = primary;
    e->timer = periodic_start(send_round, e, interval_ms);
    if (!e->timer)
        log_error(NULL, "cannot start the events' sender thread: end-of-window events will not be sent from this instance");
    return e;
}

void events_stop(events_t *e)
{
    if (!e)
        return;
    periodic_stop(e->timer);
    free(e);
    curl_global_cleanup();
}

void events_stats(events_t *e, events_stats_t *out)
{
    out->delivered = e ? atomic_load(&e->delivered) : 0;
    out->retried = e ? atomic_load(&e->retried) : 0;
    out->given_up = e ? atomic_load(&e->given_up) : 0;
}
