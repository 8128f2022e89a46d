/* http/send_watch.c — answers on their way to clients (see send_watch.h). */
#include "http/send_watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "util/alloc.h"
#include "util/clock.h"

struct send_ticket {
    int fd;
    size_t bytes;
    int64_t due_ms;
    bool listed;              /* still in the deadline list (not yet cut) */
    struct send_ticket *prev, *next;
};

struct send_watch {
    size_t max_bytes;
    int64_t timeout_ms;
    atomic_size_t bytes;      /* of every ticket out */
    atomic_uint_fast64_t cut;
    pthread_t thread;
    pthread_mutex_t lock;     /* guards the list and `stop` */
    pthread_cond_t wake;
    send_ticket_t *head, *tail; /* by due time: the same timeout for all, so begins land at the tail */
    bool stop;
};

static void unlink_ticket(send_watch_t *w, send_ticket_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        w->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        w->tail = t->prev;
    t->prev = t->next = NULL;
    t->listed = false;
}

static void *watch_main(void *arg)
{
    send_watch_t *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        int64_t now = clock_mono_ms();
        /* Shut down under the lock: send_watch_done (before the descriptor is closed) takes it
         * too, so the descriptor is still the answer's own. */
        while (w->head && w->head->due_ms <= now) {
            send_ticket_t *t = w->head;
            unlink_ticket(w, t);
            shutdown(t->fd, SHUT_RDWR);
            atomic_fetch_add(&w->cut, 1);
        }
        if (!w->head) {
            pthread_cond_wait(&w->wake, &w->lock);
        } else {
            int64_t wait = w->head->due_ms - now;
            struct timespec until = clock_deadline_ms(wait > 0 ? (int)wait : 0);
            pthread_cond_timedwait(&w->wake, &w->lock, &until);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

send_watch_t *send_watch_start(size_t max_bytes, int64_t timeout_ms)
{
    send_watch_t *w = xcalloc(1, sizeof *w);
    w->max_bytes = max_bytes;
    w->timeout_ms = timeout_ms;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL); /* clock_deadline_ms() gives CLOCK_REALTIME deadlines */
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

send_ticket_t *send_watch_begin(send_watch_t *w, int fd, size_t bytes)
{
    size_t held = atomic_load(&w->bytes);
    do {
        if (w->max_bytes > 0 && held > 0 && (bytes > w->max_bytes || held > w->max_bytes - bytes))
            return NULL;
    } while (!atomic_compare_exchange_weak(&w->bytes, &held, held + bytes));
    send_ticket_t *t = xcalloc(1, sizeof *t);
    t->fd = fd;
    t->bytes = bytes;
    pthread_mutex_lock(&w->lock);
    t->due_ms = clock_mono_ms() + w->timeout_ms;
    t->listed = true;
    t->prev = w->tail;
    if (w->tail)
        w->tail->next = t;
    else
        w->head = t;
    w->tail = t;
    bool first = w->head == t;
    pthread_mutex_unlock(&w->lock);
    if (first) /* the thread may be waiting with no deadline at all */
        pthread_cond_signal(&w->wake);
    return t;
}

void send_watch_done(send_watch_t *w, send_ticket_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&w->lock);
    if (t->listed)
        unlink_ticket(w, t);
    pthread_mutex_unlock(&w->lock);
    atomic_fetch_sub(&w->bytes, t->bytes);
    free(t);
}

size_t send_watch_bytes(send_watch_t *w)
{
    return w ? atomic_load(&w->bytes) : 0;
}

uint64_t send_watch_cut(send_watch_t *w)
{
    return w ? atomic_load(&w->cut) : 0;
}

void send_watch_stop(send_watch_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_mutex_unlock(&w->lock);
    pthread_cond_signal(&w->wake);
    pthread_join(w->thread, NULL);
    while (w->head) {
        send_ticket_t *t = w->head;
        unlink_ticket(w, t);
        free(t);
    }
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
