/* util/heap.c — the allocator behind malloc: jemalloc when rankd is linked with it (the default
 * build), glibc's otherwise.
 *
 * Why jemalloc: under loadtest/soak.sh glibc's malloc kept rankd's anonymous memory growing (about
 * 2 % every five minutes) while heaptrack showed the live heap flat: freed chunks stranded
 * between live ones in its arenas, which neither malloc_trim nor fewer arenas gave back. jemalloc
 * sorts allocations into size classes on separate pages and returns dirty pages to the system
 * after a delay; Redis links it for the same reason. */
#include "util/heap.h"

#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define HEAP_SANITIZER 1
#elif defined(RANKD_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define HEAP_STR2(x) #x
#define HEAP_STR(x) HEAP_STR2(x)
#else
#include <malloc.h>
#endif

const char *heap_allocator(void)
{
#if defined(HEAP_SANITIZER)
    return "sanitizer";
#elif defined(RANKD_JEMALLOC)
    return "jemalloc";
#else
    return "glibc";
#endif
}

void heap_configure(void)
{
#if defined(RANKD_JEMALLOC)
    /* Dirty pages are given back after their decay (10 s) by jemalloc's own threads. Without
     * them decay runs only inside an arena's next malloc or free: an arena that goes quiet after
     * a burst (19,500 live streams opened, then only their events) keeps every freed page until
     * the minute's purge (wait_signal in cmd/serve.c). Redis turns them on for the same reason. */
    bool on = true;
    (void)mallctl("background_thread", NULL, NULL, &on, sizeof on);
#endif
#if !defined(HEAP_SANITIZER) && !defined(RANKD_JEMALLOC) && defined(M_MMAP_THRESHOLD)
    /* Blocks of 128 KiB and more (a rebuild's chunk, a large PostgreSQL result) are mapped and
     * unmapped on their own: glibc would otherwise raise this threshold after the first such
     * block is freed and carve later ones out of a thread's arena, where they stay resident. */
    (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

void heap_release(void)
{
#if defined(HEAP_SANITIZER)
#elif defined(RANKD_JEMALLOC)
    /* Every arena's dirty pages now, rather than when their decay would. */
    (void)mallctl("arena." HEAP_STR(MALLCTL_ARENAS_ALL) ".purge", NULL, NULL, NULL, 0);
#else
    malloc_trim(0);
#endif
}

bool heap_stats(size_t *in_use, size_t *kept)
{
#if defined(HEAP_SANITIZER)
    (void)in_use;
    (void)kept;
    return false;
#elif defined(RANKD_JEMALLOC)
    /* jemalloc's statistics are a snapshot taken when the epoch advances. */
    uint64_t epoch = 1;
    size_t len = sizeof epoch, allocated = 0, resident = 0, n = sizeof(size_t);
    if (mallctl("epoch", &epoch, &len, &epoch, len) != 0 || mallctl("stats.allocated", &allocated, &n, NULL, 0) != 0 ||
        mallctl("stats.resident", &resident, &n, NULL, 0) != 0)
        return false;
    *in_use = allocated;
    *kept = resident > allocated ? resident - allocated : 0;
    return true;
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    /* mallinfo2 walks every arena under its lock: cheap at a scrape's pace. */
    struct mallinfo2 mi = mallinfo2();
    *in_use = mi.uordblks + mi.hblkhd;
    *kept = mi.fordblks;
    return true;
#else
    (void)in_use;
    (void)kept;
    return false;
#endif
}
