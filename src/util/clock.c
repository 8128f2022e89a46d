/* util/clock.c — monotonic milliseconds, condition-variable deadlines, the (movable) wall clock. */
#include "util/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec clock_deadline_ms(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/*
 * The test clock's offset: the only state here, written by the follower thread and read by
 * every thread, hence atomic. Zero in production (the follower never starts).
 */
static _Atomic int64_t wall_offset_ms; /* offset + skew */
static _Atomic int64_t time_offset_ms;  /* offset alone */
static _Atomic int64_t bucket_pin_ms;   /* the rate buckets' clock, pinned; 0 = it runs */

int64_t clock_bucket_ms(void)
{
    int64_t pin = atomic_load(&bucket_pin_ms);
    return pin ? pin : clock_mono_ms();
}

int64_t clock_test_offset_ms(void)
{
    return atomic_load(&time_offset_ms);
}

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&wall_offset_ms);
}

/* Who is told when the test clock moves (clock_test_watch): the follower thread calls them. */
static struct {
    pthread_mutex_t lock;
    void (*fn[4])(void *arg);
    void *arg[4];
} watchers = {.lock = PTHREAD_MUTEX_INITIALIZER};

bool clock_test_watch(void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&watchers.lock);
    bool placed = false;
    for (int i = 0; i < 4 && !placed; i++) {
        if (!watchers.fn[i]) {
            watchers.fn[i] = fn;
            watchers.arg[i] = arg;
            placed = true;
        }
    }
    pthread_mutex_unlock(&watchers.lock);
    return placed;
}

void clock_test_unwatch(void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&watchers.lock);
    for (int i = 0; i < 4; i++)
        if (watchers.fn[i] == fn && watchers.arg[i] == arg)
            watchers.fn[i] = NULL;
    pthread_mutex_unlock(&watchers.lock);
}

static void tell_watchers(void)
{
    pthread_mutex_lock(&watchers.lock);
    for (int i = 0; i < 4; i++)
        if (watchers.fn[i])
            watchers.fn[i](watchers.arg[i]);
    pthread_mutex_unlock(&watchers.lock);
}

/* Read the offset from `path` when its modification time or size changed. */
/* What identifies one version of the clock file: a file replaced within one tick of the
 * filesystem's coarse clock keeps its size and modification time, but not its inode. */
typedef struct {
    struct timespec mtime;
    off_t size;
    ino_t ino;
} file_version_t;

static void test_clock_poll(const char *path, file_version_t *seen)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (st.st_mtim.tv_sec == seen->mtime.tv_sec && st.st_mtim.tv_nsec == seen->mtime.tv_nsec &&
        st.st_size == seen->size && st.st_ino == seen->ino)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    long long v, skew = 0, pin = 0;
    int got = fscanf(f, "%lld %lld %lld", &v, &skew, &pin);
    if (got >= 1) {
        if (got < 2)
            skew = 0;
        atomic_store(&bucket_pin_ms, got < 3 || pin < 0 ? 0 : (int64_t)pin);
        bool moved = atomic_load(&wall_offset_ms) != (int64_t)(v + skew) || atomic_load(&time_offset_ms) != (int64_t)v;
        atomic_store(&time_offset_ms, (int64_t)v);
        atomic_store(&wall_offset_ms, (int64_t)(v + skew));
        seen->mtime = st.st_mtim;
        seen->size = st.st_size;
        seen->ino = st.st_ino;
        if (moved)
            tell_watchers();
    }
    fclose(f);
}

static void *test_clock_main(void *arg)
{
    char *path = arg;
    file_version_t seen = {.size = -1};
    for (;;) {
        test_clock_poll(path, &seen);
        struct timespec tick = {0, 10 * 1000000L};
        nanosleep(&tick, NULL);
    }
    return NULL;
}

bool clock_test_follow(const char *path)
{
    file_version_t seen = {.size = -1};
    test_clock_poll(path, &seen); /* the first value holds before anything reads the clock */
    char *copy = strdup(path);
    pthread_t t;
    if (!copy || pthread_create(&t, NULL, test_clock_main, copy) != 0) {
        free(copy);
        return false;
    }
    pthread_detach(t);
    return true;
}
