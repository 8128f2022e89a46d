/* store/redis_reply_limit.c — see redis_reply_limit.h. */
#include "store/redis_reply_limit.h"

#include <pthread.h>
#include <hiredis/read.h>

/* hiredis's own reply functions (static in hiredis.c, reached through a reader made with them)
 * and the table rankd's readers use; written once, under `once`, then only read. */
static redisReplyObjectFunctions hiredis_fns, limited_fns;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *create_array_limited(const redisReadTask *task, int elements)
{
    /* hiredis 0.14 hands the header's count over as an int: a count past INT_MAX arrives cut. */
    if (elements < 0 || elements > REDIS_REPLY_ELEMENTS_MAX)
        return NULL;
    return hiredis_fns.createArray(task, elements);
}

static void init_tables(void)
{
    redisReader *r = redisReaderCreate();
    if (!r)
        return; /* no memory: readers keep hiredis's own functions */
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
