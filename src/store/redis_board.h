/*
 * store/redis_board.h — a board window's rank index in Redis.
 *
 * Per board window, keys sharing the hash tag {g<generation>} (layout 5: the names changed
 * with each layout, so that two versions sharing a Redis never read each other's keys):
 *   rankd:{gN}:D:z5     sorted set: score = sort key, member = sort key and achieved_ms (8
 *                       bytes each, core/order.h) + player id, then, when the standing has
 *                       metadata, a space and the metadata: ranges need no lookup per entry,
 *                       and the order stays exact (a space sorts below every byte of a player
 *                       id);
 *   rankd:{gN}:D:h5:<n> 16384 hash buckets of player -> version (8 bytes, big-endian), sort
 *                       key and achieved_ms (8 bytes each), metadata; version alone for a
 *                       removed player (a tombstone): how a named player's member is found.
 *                       Small enough for Redis's listpack encoding (values up to 64 bytes by
 *                       default: metadata beyond 40 bytes turns its bucket into a plain hash
 *                       table, correct but larger);
 *   rankd:{gN}:D:s5     sorted set of the window's distinct sort keys: score = sort key,
 *                       member = its 8 bytes (core/order.h), kept by the same script that
 *                       changes z5 (a sort key whose last standing left goes): a dense rank is
 *                       1 + ZCOUNT of the better ones. It costs a write that changes a
 *                       standing's score a ZCOUNT and a ZADD more, and a ZREM when the old
 *                       score's last standing left (docs/architecture.md), and one member
 *                       (about 100 bytes) per distinct score;
 *   rankd:{gN}:D:ready5 present once the window was loaded from PostgreSQL;
 *   rankd:{gN}:D:b5     the rebuild's lock;
 *   rankd:{gN}:D:m5     the window's mark: field `seq`, the number (window_counts.seq,
 *                       migrations/0014_window_seq.sql) up to which every transaction that
 *                       changed the window was applied here; rankd:{gN}:D:mp5 holds the numbers
 *                       applied early, waiting for the ones before them.
 * Every change carries the standing's version from PostgreSQL and is dropped
 * when Redis already holds a newer one, so racing writers and rebuilds
 * converge on the newest state. Each read is one server-side Lua call, but for an around read
 * through the pipe: its rank from a script, then its range in a transaction (rb_prepare_around_rank).
 * A read in a rank style (rb_prepare_style) is one call too, whose script counts what its ranks
 * start from: competition, the ZCOUNT of z5's better scores (sort keys); dense, of s5's.
 * A layout whose keys an older version would read wrongly, or not keep (a key added, as s5 was
 * to layout 4), gets a new number and new names: LAYOUT and old_layout_keys in redis_board.c.
 * A ready window is trusted only once its mark was found to have reached PostgreSQL's
 * (worker/rebuilder.c): a Redis restored from an older snapshot, or one a failover or a dead
 * writer left without some update, keeps its ready key but not its mark.
 */
#ifndef RANKD_STORE_REDIS_BOARD_H
#define RANKD_STORE_REDIS_BOARD_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "core/order.h"
#include "core/model.h"
#include "core/rank_style.h"
#include "store/redis.h"
#include "store/redis_pipe.h"
#include "util/must_use.h"

typedef enum {
    RB_OK = 0,
    RB_COLD = 1,  /* the window is not loaded: read PostgreSQL, ask for a rebuild */
    RB_DOWN = 2,  /* the connection failed: release it as failed */
    RB_AGAIN = 3, /* a cluster's slot map moved during a scan of every master (a resharding, a
                   * failover): nothing failed, the scan is to be run again later */
} rb_status_t;

/* Load the Lua scripts' hashes; call once before any other function. */
void rb_init(void);
/* How many scripts there are at most: the size of rb_script_sources' array. */
#define RB_SCRIPTS_MAX 24
/* The scripts' sources (for SCRIPT LOAD on a new connection); returns how many. */
size_t rb_script_sources(const char **out, size_t max);

/*
 * A read prepared as one EVALSHA command line, to run on a connection of
 * one's own or to hand to the pipelined Redis thread. Self-contained: the
 * strings it points to live inside it, except player ids (borrowed). A read
 * of up to RB_READ_INLINE players needs no allocation; rb_read_clear frees
 * what a longer one took. A read starts zeroed, or prepared before.
 */
#define RB_READ_IDS_MAX 100
#define RB_READ_INLINE 4
/* Arguments a read takes beyond its players' two each: EVALSHA, sha, numkeys, three keys, and
 * a styled read's fourth key and style (rb_prepare_style). */
#define RB_READ_FIXED_ARGS 8
typedef struct {
    const redis_script_t *script;
    const redis_merge_t *merge; /* how the pipe may merge it with other reads, or NULL */
    bool by_rank;          /* results come back in request order: sort them */
    bool count_only;       /* a score's read: the reply's one run is a count (entries_t.at_or_before) */
    rank_style_t style;    /* the ranks it answers (rb_prepare_style); ordinal when prepared */
    int nkeys;             /* how many of argv[3..] are keys */
    int argc;
    bool heap;             /* argv, argvlen and buckets were allocated (never copy a read) */
    const char **argv;     /* the inline arrays below, or heap arrays for many players */
    size_t *argvlen;
    char (*buckets)[8];    /* each named player's hash bucket, in decimal */
    const char *argv_inline[RB_READ_FIXED_ARGS + 2 * RB_READ_INLINE];
    size_t argvlen_inline[RB_READ_FIXED_ARGS + 2 * RB_READ_INLINE];
    char buckets_inline[RB_READ_INLINE][8];
    char keys[4][64];      /* the sorted set, the hash prefix, ready, the distinct sort keys */
    char nums[2][24];
    unsigned char member[ORDER_MEMBER_MAX];
} rb_read_t;

void rb_prepare_page(rb_read_t *rd, const board_t *b, int64_t day, int64_t offset, int limit);
void rb_prepare_cursor(rb_read_t *rd, const board_t *b, int64_t day, const order_pos_t *pos, bool backward, int limit);
void rb_prepare_players(rb_read_t *rd, const board_t *b, int64_t day, const char *const *ids, size_t n);
void rb_prepare_around(rb_read_t *rd, const board_t *b, int64_t day, const char *player, int before, int after);
/* An around read in two steps, for the pipe (redis_board.c, "two steps"): first the player's
 * rank, prepared from a read as rb_prepare_around prepares it; its reply is read by
 * rb_around_rank_parse. Then, on the same read, the range around `rank` (0-based) with the
 * window's ready key and count in one transaction, read by rb_around_range_parse. */
void rb_prepare_around_rank(rb_read_t *rd, const board_t *b, int64_t day, const char *player, int before, int after);
void rb_prepare_around_range(rb_read_t *rd, int64_t rank, int before, int after);
/* The first step's reply: RB_OK with *rank (0-based) and *total, or with *rank = -1 when the
 * player holds no standing; RB_COLD, or RB_DOWN (NULL: the connection failed; an unexpected reply). */
MUST_USE rb_status_t rb_around_rank_parse(const redisReply *r, int64_t *rank, int64_t *total);
/* The second step's reply (the whole EXEC reply, this read's range at element 2 + at): RB_OK
 * and the entries in `out` when `player` stands at `rank` in it; RB_AGAIN when not (the player
 * moved between the steps: read again with script_around); RB_COLD; RB_DOWN. */
MUST_USE rb_status_t rb_around_range_parse(const redisReply *r, size_t at, const char *player, int64_t rank, int before,
                                           const board_t *b, entries_t *out);
/* How many standings have score `sort_key` or a better one (out->at_or_before), and the total. */
void rb_prepare_score(rb_read_t *rd, const board_t *b, int64_t day, int64_t sort_key);
/*
 * Make a prepared read (page, cursor, players, the one-script around, score) answer in `style`
 * (core/rank_style.h): its script computes, in the same call, the count a style's ranks start
 * from for each run of the reply (competition: ZCOUNT of the better sort keys in z5; dense: in
 * s5, a fourth key), and rb_read_parse gives the entries their style's ranks; a score's count
 * becomes the style's. A styled read is never merged with others. Ordinal changes nothing. Not
 * for an around read's two steps (rb_prepare_around_rank).
 */
void rb_prepare_style(rb_read_t *rd, rank_style_t style);
/* Free what a prepared read allocated (nothing for most); it may be prepared again. */
void rb_read_clear(rb_read_t *rd);
/* Parse a read's reply (NULL: the connection failed) into `out`, in rank order (store/rb_read.c). */
MUST_USE rb_status_t rb_read_parse(const rb_read_t *rd, const redisReply *r, const board_t *b, entries_t *out);

/* Run a prepared read on a connection of one's own (one round trip), then clear it. */
MUST_USE rb_status_t rb_read_run(redis_conn_t *c, rb_read_t *rd, const board_t *b, entries_t *out);
MUST_USE rb_status_t rb_page(redis_conn_t *c, const board_t *b, int64_t day, int64_t offset, int limit, entries_t *out);
MUST_USE rb_status_t rb_page_cursor(redis_conn_t *c, const board_t *b, int64_t day, const order_pos_t *pos, bool backward,
                           int limit, entries_t *out);
MUST_USE rb_status_t rb_players(redis_conn_t *c, const board_t *b, int64_t day, const char *const *ids, size_t n,
                       entries_t *out);
/* A player absent from the window leaves `out` empty. */
MUST_USE rb_status_t rb_around(redis_conn_t *c, const board_t *b, int64_t day, const char *player, int before, int after,
                      entries_t *out);

/* One standing change to apply: a position with its metadata, or a removal (removed = true). */
typedef struct {
    const char *player;
    int64_t sort_key;
    int64_t achieved_ms;
    const char *metadata; /* NULL when none */
    int64_t version;
    bool removed;
} rb_change_t;

/*
 * Apply changes to one window, those of the window's changing transaction number `seq` (its
 * window_counts.seq; 0 when it changed nothing there), which moves the window's mark. With
 * `ranks` non-NULL, fills ranks[i] with the 1-based rank of changes[i]'s player after the call
 * (0 if absent) and `*total`, and sets `*ready` to whether the window is loaded (ranks of a
 * cold window are not to be trusted). With `before` too (ranks non-NULL), before[i] is the rank
 * changes[i]'s player had just before it (a submission's previous_rank): 0 when the player held
 * no standing, -1 when not known here (a newer version of the player was here already, or a
 * change of version 0, which is only ranked). RB_AGAIN: Redis refused the update (an error reply: a slot
 * still migrating, out of memory) and applied nothing; the connection is fine.
 */
MUST_USE rb_status_t rb_apply(redis_conn_t *c, int64_t gen, int64_t day, const rb_change_t *changes, size_t n,
                              int64_t seq, int64_t *ranks, int64_t *before, int64_t *total, bool *ready);

/* Whether a window is loaded (its ready key exists). */
MUST_USE rb_status_t rb_window_ready(redis_conn_t *c, int64_t gen, int64_t day, bool *ready);
/* Whether a window is loaded, and its mark (the number up to which every changing transaction
 * was applied; 0 when none is recorded). */
MUST_USE rb_status_t rb_window_mark(redis_conn_t *c, int64_t gen, int64_t day, bool *ready, int64_t *seq);
/* Mark a window cold and end any rebuild of it under way (its ready key and its lock go): a
 * rebuild that began before an update this instance could not apply must not mark it ready. */
MUST_USE rb_status_t rb_forget_window(redis_conn_t *c, int64_t gen, int64_t day);
/* Mark a window cold (its next read goes to PostgreSQL and asks for a rebuild). */
MUST_USE rb_status_t rb_mark_cold(redis_conn_t *c, int64_t gen, int64_t day);
/* Delete the keys of every window of `boards` that is neither current nor previous at `now_ms`
 * (Redis holds those two only; older windows are read from PostgreSQL), and the keys of any of
 * their windows in an older layout. `*deleted` counts keys. */
MUST_USE rb_status_t rb_forget_cold_windows(redis_conn_t *c, const board_t *boards, size_t n, int64_t now_ms, long *deleted);
/* Delete every key of a board generation. */
MUST_USE rb_status_t rb_forget_board(redis_conn_t *c, int64_t gen);
/* Mark every window of every board cold and end every rebuild under way, whichever instance runs
 * it (after this instance's Redis came back: its writer committed changes that Redis missed). */
MUST_USE rb_status_t rb_forget_all_loaded(redis_conn_t *c);
/* Delete the keys of the layouts before this one, which nothing of this version reads, once per
 * Redis: the key rankd:layout = 5 records that it was done. Keys an instance of an older
 * version writes afterwards go with the upkeep leader's sweep (rb_forget_cold_windows). */
MUST_USE rb_status_t rb_forget_old_layout(redis_conn_t *c);

/* What a rebuild did, when it returned RB_OK. The window is ready only when every flag is false. */
typedef struct {
    int64_t players; /* loaded */
    int64_t seq;     /* the window's number (window_counts.seq) its load was read at */
    bool busy;       /* another rebuilder holds the window: nothing was done */
    bool pg_failed;  /* reading PostgreSQL failed (release that connection as failed) */
    bool lost;       /* the lock vanished midway (Redis flushed or restarted): the window stays cold */
    bool cancelled;  /* its source said stop (the process is stopping): the window stays cold */
} rb_rebuild_t;

/* Reload a window from PostgreSQL (one rebuilder at a time per window) and mark it ready.
 * Sets a long command timeout on `c`: the caller closes it afterwards (redis_discard). */
MUST_USE rb_status_t rb_rebuild(redis_conn_t *c, PGconn *pg, const board_t *b, int64_t day, rb_rebuild_t *out);

/*
 * Where a rebuild reads from, asked for a connection only once the window has been cleared:
 * the read must then hold every write whose Redis update the clear erased (a replica has to
 * have replayed the primary's position as of after the clear). open() returns NULL when it
 * has none (the rebuild fails as on a failed read); close() takes back what open() gave.
 */
typedef struct rb_source {
    PGconn *(*open)(struct rb_source *src);
    void (*close)(struct rb_source *src, PGconn *c, bool failed);
    /* Asked before each chunk: true stops the load there, the window left cold (NULL: never). A
     * window of a million standings with metadata takes minutes; a shutdown does not wait. */
    bool (*cancelled)(struct rb_source *src);
} rb_source_t;

/* rb_rebuild, reading from `src`. */
MUST_USE rb_status_t rb_rebuild_from(redis_conn_t *c, rb_source_t *src, const board_t *b, int64_t day, rb_rebuild_t *out);
/* The same for an operator's request: when another rebuilder holds the window, wait up to
 * `wait_ms` for it to finish, then load it again (that load may predate what the operator wants). */
MUST_USE rb_status_t rb_rebuild_when_free(redis_conn_t *c, PGconn *pg, const board_t *b, int64_t day, int wait_ms,
                                 rb_rebuild_t *out);

/* Compare every rank in Redis with PostgreSQL for one window; prints differences to `out`, returns their count (-1 on error). */
MUST_USE long rb_verify(redis_conn_t *c, PGconn *pg, const board_t *b, int64_t day, FILE *out);

#endif
