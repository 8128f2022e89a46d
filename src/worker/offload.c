/* worker/offload.c — a fixed set of threads draining one job queue. */
#include "worker/offload.h"

#include <stdlib.h>

#include "obs/log.h"
#include "util/alloc.h"

struct offload {
    workq_t queue;
    int n_threads;
    pthread_t *threads;
};

static void *offload_main(void *arg)
{
    offload_t *o = arg;
    workq_item_t *item;
    while ((item = workq_take(&o->queue, 1, NULL)) != NULL) {
        offload_job_t *job = WORKQ_OWNER(item, offload_job_t, link);
        job->run(job);
    }
    return NULL; /* stopped, and the queue is empty */
}

offload_t *offload_start(int threads)
{
    offload_t *o = xcalloc(1, sizeof *o);
    workq_init(&o->queue);
    o->threads = xcalloc((size_t)(threads > 0 ? threads : 1), sizeof *o->threads);
    for (int i = 0; i < (threads > 0 ? threads : 1); i++) {
        if (pthread_create(&o->threads[i], NULL, offload_main, o) != 0)
            break;
        o->n_threads++;
    }
    if (o->n_threads == 0) {
        log_error(NULL, "cannot start the offload threads");
        workq_destroy(&o->queue);
        free(o->threads);
        free(o);
        return NULL;
    }
    return o;
}

void offload_submit(offload_t *o, offload_job_t *job)
{
    workq_push(&o->queue, &job->link);
}

void offload_stop(offload_t *o)
{
    if (!o)
        return;
    workq_stop(&o->queue);
    for (int i = 0; i < o->n_threads; i++)
        pthread_join(o->threads[i], NULL);
    workq_destroy(&o->queue);
    free(o->threads);
    free(o);
}
