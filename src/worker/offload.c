/* worker/offload.c — a fixed set of threads draining one job queue. */
#include "worker/offload.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "obs/log.h"
#include "util/alloc.h"

struct offload {
    pthread_mutex_t lock;       /* guards the queue and `stopping` */
    pthread_cond_t work;
    offload_job_t *head, *tail;
    bool stopping;
    int n_threads;
    pthread_t *threads;
};

static void *offload_main(void *arg)
{
    offload_t *o = arg;
    pthread_mutex_lock(&o->lock);
    for (;;) {
        while (!o->head && !o->stopping)
            pthread_cond_wait(&o->work, &o->lock);
        offload_job_t *job = o->head;
        if (!job)
            break; /* stopping, and the queue is empty */
        o->head = job->next;
        if (!o->head)
            o->tail = NULL;
        pthread_mutex_unlock(&o->lock);
        job->run(job);
        pthread_mutex_lock(&o->lock);
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

offload_t *offload_start(int threads)
{
    offload_t *o = xcalloc(1, sizeof *o);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->work, NULL);
    o->threads = xcalloc((size_t)(threads > 0 ? threads : 1), sizeof *o->threads);
    for (int i = 0; i < (threads > 0 ? threads : 1); i++) {
        if (pthread_create(&o->threads[i], NULL, offload_main, o) != 0)
            break;
        o->n_threads++;
    }
    if (o->n_threads == 0) {
        log_error(NULL, "cannot start the offload threads");
        pthread_mutex_destroy(&o->lock);
        pthread_cond_destroy(&o->work);
        free(o->threads);
        free(o);
        return NULL;
    }
    return o;
}

void offload_submit(offload_t *o, offload_job_t *job)
{
    job->next = NULL;
    pthread_mutex_lock(&o->lock);
    if (o->tail)
        o->tail->next = job;
    else
        o->head = job;
    o->tail = job;
    pthread_cond_signal(&o->work);
    pthread_mutex_unlock(&o->lock);
}

void offload_stop(offload_t *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->lock);
    o->stopping = true;
    pthread_cond_broadcast(&o->work);
    pthread_mutex_unlock(&o->lock);
    for (int i = 0; i < o->n_threads; i++)
        pthread_join(o->threads[i], NULL);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->work);
    free(o->threads);
    free(o);
}
