/*
 * store/redis_reply_limit.h — the bounds every Redis reply rankd reads is held to.
 *
 * hiredis allocates a multi-bulk reply's element array as soon as it reads the header
 * "*<count>": a reply that claims 300 million elements costs 2.4 GB before one element has
 * arrived. Redis never answers rankd with more than a page, a batch of reads or a cluster's slot
 * map, so every context rankd opens refuses an array longer than REDIS_REPLY_ELEMENTS_MAX: the
 * reader fails as out of memory, and the caller treats it as any broken connection (closed and
 * reopened).
 */
#ifndef RANKD_STORE_REDIS_REPLY_LIMIT_H
#define RANKD_STORE_REDIS_REPLY_LIMIT_H

#include <sys/time.h>
#include <hiredis/hiredis.h>

/* Elements of one array reply at most: 8 MiB of pointers; hiredis nests at most 7 deep. */
#define REDIS_REPLY_ELEMENTS_MAX (1 << 20)

/* Hold `reader`'s replies to the bounds above (it keeps hiredis's own reply objects). */
void redis_reply_limit(redisReader *reader);

/* redisConnectWithTimeout, its reader held to the bounds above. The caller owns the context
 * (redisFree), which may be NULL or carry an error, as hiredis's own. */
redisContext *redis_connect_limited(const char *host, int port, struct timeval timeout);

#endif
