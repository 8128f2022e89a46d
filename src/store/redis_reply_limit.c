/* store/redis_reply_limit.c — see redis_reply_limit.h. */
#include "store/redis_reply_limit.h"

#include <pthread.h>
#include <hiredis/read.h>

#include "obs/log.h"

/* hiredis's own reply functions (static in hiredis.c, reached through a reader made with them)
 * and the table rankd's readers use; written once, under `once`, then only read. */
static redisReplyObjectFunctions hiredis_fns, limited_fns;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *create_array_limited(const redisReadTask *task, int elements)
{
    /* hiredis refuses a count past INT_MAX itself; the sign is checked all the same. */
    if (elements < 0 || elements > REDIS_REPLY_ELEMENTS_MAX)
        return NULL;
    return hiredis_fns.createArray(task, elements);
}

static void init_tables(void)
{
    redisReader *r = redisReaderCreate();
    if (!r) {
        /* pthread_once does not run again: say so, as every reader keeps hiredis's functions. */
        log_error(NULL, "redis: no memory to set up the reply bounds; replies are read unbounded");
        return;
    }
    hiredis_fns = *r->fn;
    redisReaderFree(r);
    limited_fns = hiredis_fns;
    limited_fns.createArray = create_array_limited;
}

void redis_reply_limit(redisReader *reader)
{
    pthread_once(&once, init_tables);
    /* The reader may only switch before it has read a reply: the objects it builds must be freed
     * by the same table's freeObject, which both tables share. */
    if (reader && limited_fns.createArray)
        reader->fn = &limited_fns;
}

redisContext *redis_connect_limited(const char *host, int port, struct timeval timeout)
{
    redisContext *ctx = redisConnectWithTimeout(host, port, timeout);
    if (ctx && ctx->reader)
        redis_reply_limit(ctx->reader);
    return ctx;
}
