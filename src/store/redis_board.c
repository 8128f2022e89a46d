/* store/redis_board.c — Lua scripts and key layout of the Redis rank index. */
#include "store/pg_error.h"
#include "store/redis_board.h"

#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/window.h"
#include "obs/log.h"
#include "util/redis_slot.h"
#include "store/queries.h"
#include "store/redis.h"
#include "store/rb_bucket.h"
#include "util/alloc.h"
#include "util/buf.h"

/* A player's member from the player's hash value V (version(8) sort key(8) achieved(8)
 * metadata) and id PL (Lua expressions): the sort key and achieved bytes (core/order.h) and the
 * id, then a space and the metadata when it has any. Sort key and metadata ride in the member so
 * that a range is read with no lookup per entry and without WITHSCORES; a space sorts below
 * every byte a player id may hold, so the order stays (sort key, achieved, id). A hash value of
 * 8 bytes (a version alone) records a removal. */
#define LUA_MEMBER(V, PL) "(string.sub(" V ", 9, 24) .. " PL " .. (#" V " > 24 and ' ' .. string.sub(" V ", 25) or ''))"

/* Every read script returns false when the window is cold, else {total} followed by runs
 * {rank0, members}: the entries of a run have consecutive ranks from rank0 (0-based), as ZRANGE
 * gives them, returned as Redis gave them (each member holds its sort key: no score is asked
 * for). A run's members come packed in one string, joined by a NUL byte (LUA_PACK); an array of
 * members is read as well. */
/* The members of table T as one string, joined by a NUL byte. A member's bytes after its
 * ORDER_PREFIX_LEN bytes of sort key and achieved time are a player id, then a space and
 * metadata: text that PostgreSQL held and a player id's characters, where a NUL byte cannot be,
 * so rb_read_parse finds each member's end as the first NUL past its prefix. One string per run
 * instead of one per member: Redis's Lua builds and replies a single value, and the reader that
 * takes the reply one object, instead of eleven for an around read (about a twentieth of the
 * read's cost in Redis, docs/capacity/redis-reads.md). */
#define LUA_PACK(T) "table.concat(" T ", '\\0')"
#define LUA_READ_HEAD                                                                \
    "if redis.call('EXISTS', KEYS[3]) == 0 then return false end\n"                  \
    "local z, pk = KEYS[1], KEYS[2]\n"                                               \
    "local out = {redis.call('ZCARD', z)}\n"

/*
 * A styled read (rb_prepare_style) runs its script's body, then this tail, which appends to the
 * reply an array holding, per run, the count its first member's rank starts from in the style
 * of the last argument: 'c' (competition), the standings with a strictly better sort key (ZCOUNT
 * over the sorted set, whose scores are the sort keys); 'd' (dense), the distinct sort keys
 * better than it (ZCOUNT over the window's set of distinct sort keys, KEYS[4]). One O(log n)
 * count per distinct score of the answer: a page of adjacent entries needs one. A run (packed,
 * or one member) begins with its first member, whose first 8 bytes are its sort key + 2^63,
 * big-endian (LUA_SORT_KEY).
 */
/* The sort key in the first 8 bytes of string S (a member, or a member's prefix) as text for a
 * score range: exact in a double below 2^53 in magnitude, and %.17g prints it whole. */
#define LUA_SORT_KEY(S)                                                                                  \
    "string.format('%.17g', (struct.unpack('>I4', " S ") - 2147483648) * 4294967296 + struct.unpack('>I4', " S \
    ", 5))"
#define LUA_STYLED_TAIL                                                              \
    "local counts, memo, cz = {}, {}, ARGV[#ARGV] == 'd' and KEYS[4] or z\n"        \
    "for i = 3, #out, 2 do\n"                                                        \
    "  local run, c = out[i], 0\n"                                                   \
    "  if #run > 0 then\n"                                                           \
    "    local sk = " LUA_SORT_KEY("run") "\n"                                        \
    "    c = memo[sk]\n"                                                              \
    "    if not c then\n"                                                            \
    "      c = redis.call('ZCOUNT', cz, '-inf', '(' .. sk)\n"                         \
    "      memo[sk] = c\n"                                                            \
    "    end\n"                                                                      \
    "  end\n"                                                                        \
    "  counts[#counts + 1] = c\n"                                                    \
    "end\n"                                                                          \
    "out[#out + 1] = counts\n"                                                       \
    "return out\n"

/* ARGV: first and last rank (0-based). */
#define LUA_PAGE                                                                     \
    "out[2] = tonumber(ARGV[1])\n"                                                   \
    "out[3] = " LUA_PACK("redis.call('ZRANGE', z, ARGV[1], ARGV[2])") "\n"
static redis_script_t script_page = {LUA_READ_HEAD LUA_PAGE "return out\n", ""};
static redis_script_t script_page_styled = {LUA_READ_HEAD LUA_PAGE LUA_STYLED_TAIL, ""};

/* ARGV: sort key, position member (sort key + achieved + player, no metadata), 'f' or 'b',
 * limit, the player's bucket. The cursor's position need not be in the set any more (its player
 * moved): then count what lies before it, by binary search among the members tied with it on
 * score, comparing their positions (the bytes before the metadata) byte by byte: Lua's string
 * comparison follows the server's locale. */
#define LUA_CURSOR \
    "local function pos(x)\n"                                                                          \
    "  local sp = string.find(x, ' ', 17, true)\n"                                                     \
    "  return sp and string.sub(x, 1, sp - 1) or x\n"                                                  \
    "end\n"                                                                                            \
    "local function less(a, b)\n"                                                                      \
    "  local n = math.min(#a, #b)\n"                                                                   \
    "  for i = 1, n do\n"                                                                              \
    "    local x, y = string.byte(a, i), string.byte(b, i)\n"                                          \
    "    if x ~= y then return x < y end\n"                                                            \
    "  end\n"                                                                                          \
    "  return #a < #b\n"                                                                               \
    "end\n"                                                                                            \
    "local sk, m, lim = ARGV[1], ARGV[2], tonumber(ARGV[4])\n"                                         \
    "local c, e\n"                                                                                     \
    "local v = redis.call('HGET', pk .. ARGV[5], string.sub(m, 17))\n"                                 \
    "if v and #v >= 24 and string.sub(v, 9, 24) == string.sub(m, 1, 16) then\n"                        \
    "  c = redis.call('ZRANK', z, " LUA_MEMBER("v", "string.sub(m, 17)") ")\n"                         \
    "  if c then e = 1 end\n"                                                                          \
    "end\n"                                                                                            \
    "if not c then\n"                                                                                  \
    "  local a = redis.call('ZCOUNT', z, '-inf', '(' .. sk)\n"                                         \
    "  local b = a + redis.call('ZCOUNT', z, sk, sk)\n"                                                \
    "  while a < b do\n"                                                                               \
    "    local mid = math.floor((a + b) / 2)\n"                                                        \
    "    if less(pos(redis.call('ZRANGE', z, mid, mid)[1]), m) then a = mid + 1 else b = mid end\n"    \
    "  end\n"                                                                                          \
    "  c = a; e = 0\n"                                                                                 \
    "end\n"                                                                                            \
    "if ARGV[3] == 'f' then\n"                                                                         \
    "  out[2] = c + e; out[3] = " LUA_PACK("redis.call('ZRANGE', z, c + e, c + e + lim - 1)") "\n"     \
    "elseif c > 0 then\n"                                                                              \
    "  local a = math.max(c - lim, 0)\n"                                                               \
    "  out[2] = a; out[3] = " LUA_PACK("redis.call('ZRANGE', z, a, c - 1)") "\n"                       \
    "end\n"
static redis_script_t script_cursor = {LUA_READ_HEAD LUA_CURSOR "return out\n", ""};
static redis_script_t script_cursor_styled = {LUA_READ_HEAD LUA_CURSOR LUA_STYLED_TAIL, ""};

/* One player's run {rank0, member} (a run of one member is that member) appended to table OUT, from the player's id and
 * bucket (Lua expressions); nothing when the player holds no standing. */
#define LUA_PLAYER(OUT, PLAYER, BUCKET)                                              \
    "local v = redis.call('HGET', KEYS[2] .. " BUCKET ", " PLAYER ")\n"               \
    "if v and #v >= 24 then\n"                                                       \
    "  local m = " LUA_MEMBER("v", PLAYER) "\n"                                      \
    "  local r = redis.call('ZRANK', z, m)\n"                                        \
    "  if r then\n"                                                                  \
    "    " OUT "[#" OUT " + 1] = r; " OUT "[#" OUT " + 1] = m\n"                        \
    "  end\n"                                                                        \
    "end\n"

/* ARGV: player, bucket, player, bucket, ... up to ARGV[LAST] (a styled read's style follows). */
#define LUA_PLAYERS(LAST) "for i = 1, " LAST ", 2 do\n" LUA_PLAYER("out", "ARGV[i]", "ARGV[i + 1]") "end\n"
static redis_script_t script_players = {LUA_READ_HEAD LUA_PLAYERS("#ARGV") "return out\n", ""};
static redis_script_t script_players_styled = {LUA_READ_HEAD LUA_PLAYERS("#ARGV - 1") LUA_STYLED_TAIL, ""};

/* ARGV: player, bucket. The players script for the commonest read, a player's rank, without
 * its loop. Same reply. */
static redis_script_t script_player = {LUA_READ_HEAD LUA_PLAYER("out", "ARGV[1]", "ARGV[2]") "return out\n", ""};
static redis_script_t script_player_styled = {LUA_READ_HEAD LUA_PLAYER("out", "ARGV[1]", "ARGV[2]") LUA_STYLED_TAIL,
                                              ""};

/* The rank reads of many requests on one window, merged by the Redis pipe (player_merge):
 * ARGV: player, bucket, player, bucket, ...; false when the window is cold, else one
 * script_player reply per player. The window's checks are made once for them all: Redis
 * spends about a fifth less per read. */
static redis_script_t script_player_each = {"if redis.call('EXISTS', KEYS[3]) == 0 then return false end\n"
                                            "local z = KEYS[1]\n"
                                            "local total = redis.call('ZCARD', z)\n"
                                            "local each = {}\n"
                                            "for i = 1, #ARGV, 2 do\n"
                                            "  local out = {total}\n"
                                            LUA_PLAYER("out", "ARGV[i]", "ARGV[i + 1]")
                                            "  each[#each + 1] = out\n"
                                            "end\n"
                                            "return each\n",
                                            ""};

/* EVALSHA sha 3 keys...: numkeys and the three keys are what merged reads share. */
static redis_merge_t player_merge = {script_player_each.sha, 6, false};

/* The run of one around read appended to table OUT: the player's neighbours and the player,
 * straight from ZRANGE, from the arguments ARGV[I] .. ARGV[I + 3] (player, before, after, the
 * player's bucket; I a Lua expression); nothing when the player holds no standing. */
#define LUA_AROUND(OUT, I)                                                                      \
    "local v = redis.call('HGET', pk .. ARGV[" I " + 3], ARGV[" I "])\n"                          \
    "if v and #v >= 24 then\n"                                                                  \
    "  local r = redis.call('ZRANK', z, " LUA_MEMBER("v", "ARGV[" I "]") ")\n"                   \
    "  if r then\n"                                                                             \
    "    " OUT "[2] = math.max(r - tonumber(ARGV[" I " + 1]), 0)\n"                              \
    "    " OUT "[3] = " LUA_PACK("redis.call('ZRANGE', z, " OUT "[2], r + tonumber(ARGV[" I " + 2]))") "\n" \
    "  end\n"                                                                                   \
    "end\n"

/* ARGV: player, before, after, the player's bucket. One run. */
static redis_script_t script_around = {LUA_READ_HEAD LUA_AROUND("out", "1") "return out\n", ""};
static redis_script_t script_around_styled = {LUA_READ_HEAD LUA_AROUND("out", "1") LUA_STYLED_TAIL, ""};

/* The around reads of many requests on one window, merged by the Redis pipe (around_merge), as
 * rank reads are: ARGV: player, before, after, bucket, player, ...; false when the window is
 * cold, else one script_around reply per read. The window's checks and the script's call are
 * paid once for them all. */
/* A merged script: for each read's four arguments (i the first's index), BODY fills table
 * `out`, which starts as {total}; false when the window is cold. */
#define LUA_EACH_AROUND(BODY)                                                        \
    "if redis.call('EXISTS', KEYS[3]) == 0 then return false end\n"                  \
    "local z, pk = KEYS[1], KEYS[2]\n"                                               \
    "local total = redis.call('ZCARD', z)\n"                                         \
    "local each = {}\n"                                                              \
    "for i = 1, #ARGV, 4 do\n"                                                       \
    "  local out = {total}\n" BODY "  each[#each + 1] = out\n"                       \
    "end\n"                                                                          \
    "return each\n"
static redis_script_t script_around_each = {LUA_EACH_AROUND(LUA_AROUND("out", "i")), ""};

/* ARGV: a sort key. The standings at or before it, as an empty run whose rank0 is their count
 * (ZCOUNT: the score of a member is its sort key). */
static redis_script_t script_score = {LUA_READ_HEAD
                                      "out[2] = redis.call('ZCOUNT', z, '-inf', ARGV[1])\n"
                                      "out[3] = {}\n"
                                      "return out\n",
                                      ""};
/* ARGV: a sort key, the style ('c' or 'd'). The count a score's rank starts from in that
 * style: the standings (competition) or the distinct sort keys (dense, KEYS[4]) better than it.
 * Same reply. */
static redis_script_t script_score_styled = {LUA_READ_HEAD
                                             "out[2] = redis.call('ZCOUNT', ARGV[2] == 'd' and KEYS[4] or z, '-inf',"
                                             " '(' .. ARGV[1])\n"
                                             "out[3] = {}\n"
                                             "return out\n",
                                             ""};

/* EVALSHA sha 3 keys...: numkeys and the three keys are what merged reads share. */
static redis_merge_t around_merge = {script_around_each.sha, 6, false};

/*
 * An around read through the pipe goes in two steps (rb_prepare_around_rank, then
 * rb_prepare_around_range): the script finds the player's rank, then the range is read without
 * Lua, in a transaction with the window's ready key and count. Inside a script, Redis turns
 * each member of a range into a Lua string and back: a tenth of Redis's time per around read
 * and more (docs/capacity/redis-reads.md). The answer comes from the transaction's snapshot
 * alone; the first step only says where to look, and the answer holds only when the player
 * stands in the range at that rank (rb_around_range_parse), else the read runs script_around.
 */
#define LUA_AROUND_RANK(OUT, I)                                                                 \
    "local v = redis.call('HGET', pk .. ARGV[" I " + 3], ARGV[" I "])\n"                          \
    "if v and #v >= 24 then\n"                                                                  \
    "  local r = redis.call('ZRANK', z, " LUA_MEMBER("v", "ARGV[" I "]") ")\n"                   \
    "  if r then " OUT "[2] = r end\n"                                                          \
    "end\n"

/* ARGV: player, before, after, the player's bucket (script_around's). {total, rank} (0-based),
 * or {total} when the player holds no standing; false when the window is cold. */
static redis_script_t script_around_rank = {LUA_READ_HEAD LUA_AROUND_RANK("out", "1") "return out\n", ""};
/* Merged as script_around_each is: one script_around_rank reply per read. */
static redis_script_t script_around_rank_each = {LUA_EACH_AROUND(LUA_AROUND_RANK("out", "i")), ""};
static redis_merge_t around_rank_merge = {script_around_rank_each.sha, 6, false};
/* The second step's calls: {"ZRANGE", "", zset, ready key, start, stop}, one transaction for a
 * window's (redis_merge_t.tx). */
static redis_merge_t around_range_merge = {NULL, 4, true};

/* The window's mark: its field `seq` is the number up to which every changing transaction was
 * applied here; numbers that came early (another instance's transaction committed after one
 * whose update has not arrived yet) wait in the pending set. Kept only while the window is
 * loaded or being loaded (its ready key or its rebuild lock exists): a cold window's mark is set
 * by its rebuild, and nothing accumulates for a window nobody loads. */
#define RB_LUA_MARK                                                                  \
    "if ARGV[4] ~= '0' and (redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[4]) == 1) then\n" \
    "  local n = tonumber(ARGV[4])\n"                                                \
    "  local p = tonumber(redis.call('HGET', KEYS[5], 'seq') or '0')\n"               \
    "  if n == p + 1 then\n"                                                         \
    "    p = n\n"                                                                    \
    "    while redis.call('SREM', KEYS[6], string.format('%d', p + 1)) == 1 do p = p + 1 end\n" \
    "    redis.call('HSET', KEYS[5], 'seq', string.format('%d', p))\n"               \
    "  elseif n > p + 1 then\n"                                                      \
    "    redis.call('SADD', KEYS[6], ARGV[4])\n"                                     \
    "  end\n"                                                                        \
    "end\n"

/* KEYS: the sorted set, the hash prefix, ready, the rebuild lock, the mark hash, the mark's
 * pending set, the distinct sort keys. ARGV[1] = 'r' to return ranks; ARGV[2] = a rebuild's lock token, or ''; ARGV[3] = how many
 * changes follow; ARGV[4] = the number of the transaction they come from among the window's
 * (window_counts.seq), '0' for none (a rebuild's chunk, or nothing committed); then the changes,
 * each as six arguments: player, bucket, the member's prefix (sort key(8) and achieved(8),
 * core/order.h; '' = removal), version(8, big-endian), sort key (the score, in decimal), metadata; then members (LUA_MEMBER's) to rank
 * only: standings the batch left as they were, whose member the writer knows, so neither
 * the player's hash nor five more arguments are needed (about 2 of Redis's 8 us per
 * submission in the batch-write load test, where most scores change nothing). Returns
 * {ready, total, rank0 or -1 per change, then per member, then per change the player's rank0
 * before any change of the call was applied (a submission's previous_rank: the standings as
 * its transaction found them): -1 where the player held no standing, -2 where the change is
 * not applied (a newer version was here already)}, -1 where the player holds no standing, or for
 * a member, another standing than the one named. Returns false, having
 * written nothing, when the lock (KEYS[4]) no longer holds the token: a flush or a restart
 * ended that rebuild, and a chunk it read before must not land in a window another rebuild
 * may be loading (a player deleted since would come back). Else the token's lease is
 * renewed. Versions are compared as two 32-bit halves: exact, and far cheaper than a byte
 * loop. The distinct sort keys (KEYS[7], members the 8 bytes of a sort key, scores the sort
 * key) follow the sorted set: a sort key added there is added here; one whose last member left
 * (ZCOUNT of its score, after the ZREM) goes. A move within one sort key touches neither. The
 * old score is read from the member's first 8 bytes (LUA_SORT_KEY), not asked of Redis. */
static redis_script_t script_apply = {
    "local z, pk = KEYS[1], KEYS[2]\n"
    "if ARGV[2] ~= '' then\n"
    "  if redis.call('GET', KEYS[4]) ~= ARGV[2] then return false end\n"
    "  redis.call('EXPIRE', KEYS[4], 60)\n"
    "end\n"
    "local last = 4 + 6 * tonumber(ARGV[3])\n"
    "local curs, newer, before, members = {}, {}, {}, {}\n"
    "for i = 5, last, 6 do\n"
    "  local j, pl, ver = (i - 5) / 6 + 1, ARGV[i], ARGV[i+3]\n"
    "  local cur = redis.call('HGET', pk .. ARGV[i+1], pl)\n"
    "  local m = cur and #cur >= 24 and " LUA_MEMBER("cur", "pl") "\n"
    "  local nw = not cur\n"
    "  if cur then\n"
    "    local c1, c2 = struct.unpack('>I4I4', cur)\n"
    "    local v1, v2 = struct.unpack('>I4I4', ver)\n"
    "    nw = c1 < v1 or (c1 == v1 and c2 < v2)\n"
    "  end\n"
    "  curs[j] = m or false; newer[j] = nw\n"
    "  if ARGV[1] == 'r' then before[j] = not nw and -2 or m and redis.call('ZRANK', z, m) or -1 end\n"
    "end\n"
    "for i = 5, last, 6 do\n"
    "  local j = (i - 5) / 6 + 1\n"
    "  local pl, h, pre, ver, m = ARGV[i], pk .. ARGV[i+1], ARGV[i+2], ARGV[i+3], curs[j]\n"
    "  if newer[j] then\n"
    "    local same = m and pre ~= '' and string.sub(m, 1, 8) == string.sub(pre, 1, 8)\n"
    "    if m then\n"
    "      redis.call('ZREM', z, m)\n"
    "      if not same then\n"
    "        local osk = " LUA_SORT_KEY("m") "\n"
    "        if redis.call('ZCOUNT', z, osk, osk) == 0 then redis.call('ZREM', KEYS[7], string.sub(m, 1, 8)) end\n"
    "      end\n"
    "    end\n"
    "    if pre == '' then redis.call('HSET', h, pl, ver); m = false\n"
    "    else\n"
    "      local val = ver .. pre .. ARGV[i+5]\n"
    "      m = " LUA_MEMBER("val", "pl") "\n"
    "      redis.call('HSET', h, pl, val); redis.call('ZADD', z, ARGV[i+4], m)\n"
    "      if not same then redis.call('ZADD', KEYS[7], ARGV[i+4], string.sub(pre, 1, 8)) end\n"
    "    end\n"
    "  end\n"
    "  members[j] = m\n"
    "end\n"
    RB_LUA_MARK
    "local out = {redis.call('EXISTS', KEYS[3]), redis.call('ZCARD', z)}\n"
    "if ARGV[1] ~= 'r' then return out end\n"
    "for j = 1, #members do\n"
    "  out[#out+1] = members[j] and redis.call('ZRANK', z, members[j]) or -1\n"
    "end\n"
    "for j = last + 1, #ARGV do\n"
    "  out[#out+1] = redis.call('ZRANK', z, ARGV[j]) or -1\n"
    "end\n"
    "for j = 1, #before do out[#out+1] = before[j] end\n"
    "return out\n",
    ""};

/* Empty a window at once (marked cold, every member, bucket and mark gone): a writer racing a
 * rebuild must find either the old window or the empty one, never half of each. KEYS: the
 * sorted set, the hash prefix, ready, the mark hash, the pending set, the distinct sort keys. */
static redis_script_t script_clear = {
    "local keys = {KEYS[3], KEYS[1], KEYS[4], KEYS[5], KEYS[6]}\n"
    "for n = 0, 16383 do\n"
    "  keys[#keys + 1] = KEYS[2] .. n\n"
    "  if #keys == 1024 then redis.call('UNLINK', unpack(keys)); keys = {} end\n"
    "end\n"
    "if #keys > 0 then redis.call('UNLINK', unpack(keys)) end\n"
    "return 1\n",
    ""};

static redis_script_t *const all_scripts[] = {
    &script_page,          &script_cursor,        &script_players,        &script_player,
    &script_player_each,   &script_around,        &script_around_each,    &script_apply,
    &script_clear,         &script_score,         &script_around_rank,    &script_around_rank_each,
    &script_page_styled,   &script_cursor_styled, &script_players_styled, &script_player_styled,
    &script_around_styled, &script_score_styled};

/* Each read script and its styled variant (rb_prepare_style). */
static const struct {
    const redis_script_t *plain, *styled;
} styled_scripts[] = {{&script_page, &script_page_styled},       {&script_cursor, &script_cursor_styled},
                      {&script_players, &script_players_styled}, {&script_player, &script_player_styled},
                      {&script_around, &script_around_styled},   {&script_score, &script_score_styled}};
_Static_assert(sizeof all_scripts / sizeof *all_scripts <= RB_SCRIPTS_MAX, "RB_SCRIPTS_MAX is too small");

void rb_init(void)
{
    for (size_t i = 0; i < sizeof all_scripts / sizeof *all_scripts; i++)
        redis_script_init(all_scripts[i]);
}

typedef struct {
    char z[64], p[64], r[64], b[64], m[64], mp[64], s[64];
} rb_keys_t;

/* Layout 5's key names, in rb_keys_t's order (redis_board.h); a name that ends in ':' is a
 * prefix (the player hash's buckets). */
#define KEYS_N 7
static const char *const key_suffix[KEYS_N] = {"z5", "h5:", "ready5", "b5", "m5", "mp5", "s5"};

static void window_keys(rb_keys_t *k, int64_t gen, int64_t day)
{
    /* One formatting of the shared prefix (every read builds these). */
    char prefix[52]; /* at most 8 + 20 + 2 + 20 + 1 characters; keys hold 64 */
    memcpy(prefix, "rankd:{g", 8);
    size_t n = 8 + i64_text(prefix + 8, gen);
    prefix[n++] = '}';
    prefix[n++] = ':';
    n += i64_text(prefix + n, day);
    prefix[n++] = ':';
    char *const dst[KEYS_N] = {k->z, k->p, k->r, k->b, k->m, k->mp, k->s};
    for (int i = 0; i < KEYS_N; i++) {
        memcpy(dst[i], prefix, n);
        strcpy(dst[i] + n, key_suffix[i]);
    }
}

/* ---------------------------------------------------------------- reads */

/* Point the read at argument arrays for `players` named players: its own, or the heap's. */
static void read_arrays(rb_read_t *rd, size_t players)
{
    rb_read_clear(rd);
    if (players <= RB_READ_INLINE)
        return;
    rd->argv = xmalloc(sizeof *rd->argv * (RB_READ_FIXED_ARGS + 2 * players));
    rd->argvlen = xmalloc(sizeof *rd->argvlen * (RB_READ_FIXED_ARGS + 2 * players));
    rd->buckets = xmalloc(sizeof *rd->buckets * players);
    rd->heap = true;
}

void rb_read_clear(rb_read_t *rd)
{
    if (rd->heap) {
        free(rd->argv);
        free(rd->argvlen);
        free(rd->buckets);
        rd->heap = false;
    }
    rd->argv = rd->argv_inline;
    rd->argvlen = rd->argvlen_inline;
    rd->buckets = rd->buckets_inline;
}

/* Fill the EVALSHA command line: sha, 3 keys, then `argc` script arguments already in place at 6.. */
static void read_head(rb_read_t *rd, const redis_script_t *s, const board_t *b, int64_t day, int argc)
{
    rb_keys_t k;
    window_keys(&k, b->gen, day);
    memcpy(rd->keys[0], k.z, sizeof k.z);
    memcpy(rd->keys[1], k.p, sizeof k.p);
    memcpy(rd->keys[2], k.r, sizeof k.r);
    memcpy(rd->keys[3], k.s, sizeof k.s); /* a styled read's fourth key (rb_prepare_style) */
    rd->script = s;
    rd->merge = NULL;
    rd->by_rank = false;
    rd->count_only = false;
    rd->style = RANK_ORDINAL;
    rd->nkeys = 3;
    rd->argv[0] = "EVALSHA", rd->argvlen[0] = 7;
    rd->argv[1] = s->sha, rd->argvlen[1] = 40;
    rd->argv[2] = "3", rd->argvlen[2] = 1;
    for (int i = 0; i < 3; i++) {
        rd->argv[3 + i] = rd->keys[i];
        rd->argvlen[3 + i] = strlen(rd->keys[i]);
    }
    rd->argc = 6 + argc;
}

static void read_arg(rb_read_t *rd, int i, const char *v, size_t len)
{
    rd->argv[6 + i] = v;
    rd->argvlen[6 + i] = len;
}

void rb_prepare_page(rb_read_t *rd, const board_t *b, int64_t day, int64_t offset, int limit)
{
    snprintf(rd->nums[0], sizeof rd->nums[0], "%" PRId64, offset);
    snprintf(rd->nums[1], sizeof rd->nums[1], "%" PRId64, offset + limit - 1);
    read_arrays(rd, 0);
    read_head(rd, &script_page, b, day, 2);
    read_arg(rd, 0, rd->nums[0], strlen(rd->nums[0]));
    read_arg(rd, 1, rd->nums[1], strlen(rd->nums[1]));
}

void rb_prepare_cursor(rb_read_t *rd, const board_t *b, int64_t day, const order_pos_t *pos, bool backward, int limit)
{
    size_t mlen = order_member_encode(pos, rd->member);
    snprintf(rd->nums[0], sizeof rd->nums[0], "%" PRId64, pos->sort_key);
    snprintf(rd->nums[1], sizeof rd->nums[1], "%d", limit);
    read_arrays(rd, 1);
    read_head(rd, &script_cursor, b, day, 5);
    read_arg(rd, 0, rd->nums[0], strlen(rd->nums[0]));
    read_arg(rd, 1, (const char *)rd->member, mlen);
    read_arg(rd, 2, backward ? "b" : "f", 1);
    read_arg(rd, 3, rd->nums[1], strlen(rd->nums[1]));
    read_arg(rd, 4, rd->buckets[0], rb_player_bucket(pos->player, pos->player_len, rd->buckets[0]));
}

void rb_prepare_players(rb_read_t *rd, const board_t *b, int64_t day, const char *const *ids, size_t n)
{
    if (n > RB_READ_IDS_MAX)
        n = RB_READ_IDS_MAX;
    read_arrays(rd, n);
    read_head(rd, n == 1 ? &script_player : &script_players, b, day, (int)(2 * n));
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ids[i]);
        read_arg(rd, (int)(2 * i), ids[i], len);
        read_arg(rd, (int)(2 * i + 1), rd->buckets[i], rb_player_bucket(ids[i], len, rd->buckets[i]));
    }
    rd->by_rank = true;
    if (n == 1)
        rd->merge = &player_merge;
}

void rb_prepare_around(rb_read_t *rd, const board_t *b, int64_t day, const char *player, int before, int after)
{
    size_t before_len = u64_digits(rd->nums[0], (uint64_t)(before < 0 ? 0 : before));
    size_t after_len = u64_digits(rd->nums[1], (uint64_t)(after < 0 ? 0 : after));
    rd->nums[0][before_len] = rd->nums[1][after_len] = '\0';
    read_arrays(rd, 1);
    read_head(rd, &script_around, b, day, 4);
    size_t len = strlen(player);
    read_arg(rd, 0, player, len);
    read_arg(rd, 1, rd->nums[0], before_len);
    read_arg(rd, 2, rd->nums[1], after_len);
    read_arg(rd, 3, rd->buckets[0], rb_player_bucket(player, len, rd->buckets[0]));
    rd->merge = &around_merge;
}

void rb_prepare_around_rank(rb_read_t *rd, const board_t *b, int64_t day, const char *player, int before, int after)
{
    rb_prepare_around(rd, b, day, player, before, after);
    rd->script = &script_around_rank;
    rd->argv[1] = script_around_rank.sha;
    rd->merge = &around_rank_merge;
}

void rb_prepare_around_range(rb_read_t *rd, int64_t rank, int before, int after)
{
    int64_t start = rank - before < 0 ? 0 : rank - before;
    size_t start_len = i64_text(rd->nums[0], start);
    size_t stop_len = i64_text(rd->nums[1], rank + after);
    rd->nums[0][start_len] = rd->nums[1][stop_len] = '\0';
    rd->argv[0] = "ZRANGE", rd->argvlen[0] = 6;
    rd->argv[1] = "", rd->argvlen[1] = 0;
    rd->argv[2] = rd->keys[0], rd->argvlen[2] = strlen(rd->keys[0]);
    rd->argv[3] = rd->keys[2], rd->argvlen[3] = strlen(rd->keys[2]);
    rd->argv[4] = rd->nums[0], rd->argvlen[4] = start_len;
    rd->argv[5] = rd->nums[1], rd->argvlen[5] = stop_len;
    rd->argc = 6;
    rd->script = NULL;
    rd->merge = &around_range_merge;
}

void rb_prepare_score(rb_read_t *rd, const board_t *b, int64_t day, int64_t sort_key)
{
    snprintf(rd->nums[0], sizeof rd->nums[0], "%" PRId64, sort_key);
    read_arrays(rd, 0);
    read_head(rd, &script_score, b, day, 1);
    read_arg(rd, 0, rd->nums[0], strlen(rd->nums[0]));
    rd->count_only = true;
}

void rb_prepare_style(rb_read_t *rd, rank_style_t style)
{
    if (style == RANK_ORDINAL)
        return;
    for (size_t i = 0; i < sizeof styled_scripts / sizeof *styled_scripts; i++) {
        if (rd->script != styled_scripts[i].plain)
            continue;
        rd->script = styled_scripts[i].styled;
        rd->argv[1] = rd->script->sha;
        rd->merge = NULL; /* the merged scripts answer ordinal ranks */
        rd->style = style;
        /* The distinct sort keys as the fourth key, then the arguments, then the style: the
         * arrays hold RB_READ_FIXED_ARGS beyond the players' arguments. */
        memmove(&rd->argv[7], &rd->argv[6], (size_t)(rd->argc - 6) * sizeof *rd->argv);
        memmove(&rd->argvlen[7], &rd->argvlen[6], (size_t)(rd->argc - 6) * sizeof *rd->argvlen);
        rd->argv[6] = rd->keys[3], rd->argvlen[6] = strlen(rd->keys[3]);
        rd->argv[2] = "4";
        rd->nkeys = 4;
        rd->argc++;
        rd->argv[rd->argc] = style == RANK_DENSE ? "d" : "c";
        rd->argvlen[rd->argc] = 1;
        rd->argc++;
        return;
    }
}

rb_status_t rb_read_run(redis_conn_t *c, rb_read_t *rd, const board_t *b, entries_t *out)
{
    redisReply *r = redis_run(c, rd->script, rd->nkeys, rd->argc - 3, rd->argv + 3, rd->argvlen + 3);
    rb_status_t st = rb_read_parse(rd, r, b, out);
    if (r && st == RB_DOWN && r->type == REDIS_REPLY_ERROR)
        st = RB_COLD; /* an error reply: the connection is fine, read PostgreSQL this time */
    if (r)
        freeReplyObject(r);
    rb_read_clear(rd);
    return st;
}

rb_status_t rb_page(redis_conn_t *c, const board_t *b, int64_t day, int64_t offset, int limit, entries_t *out)
{
    rb_read_t rd = {0};
    rb_prepare_page(&rd, b, day, offset, limit);
    return rb_read_run(c, &rd, b, out);
}

rb_status_t rb_page_cursor(redis_conn_t *c, const board_t *b, int64_t day, const order_pos_t *pos, bool backward,
                           int limit, entries_t *out)
{
    rb_read_t rd = {0};
    rb_prepare_cursor(&rd, b, day, pos, backward, limit);
    return rb_read_run(c, &rd, b, out);
}

rb_status_t rb_players(redis_conn_t *c, const board_t *b, int64_t day, const char *const *ids, size_t n,
                       entries_t *out)
{
    rb_read_t rd = {0};
    rb_prepare_players(&rd, b, day, ids, n);
    return rb_read_run(c, &rd, b, out);
}

rb_status_t rb_around(redis_conn_t *c, const board_t *b, int64_t day, const char *player, int before, int after,
                      entries_t *out)
{
    rb_read_t rd = {0};
    rb_prepare_around(&rd, b, day, player, before, after);
    return rb_read_run(c, &rd, b, out);
}

size_t rb_script_sources(const char **out, size_t max)
{
    size_t n = 0;
    for (; n < max && n < sizeof all_scripts / sizeof *all_scripts; n++)
        out[n] = all_scripts[n]->source;
    return n;
}

static void put_be64(char *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (char)(v & 0xff);
}

/* rb_apply, and with `token` (not NULL) the chunk of the rebuild holding the window's lock
 * with it: *held = false when the lock is gone, and then nothing was applied. Changes of
 * version 0 are sent as bare members to rank (see script_apply). */
static rb_status_t apply_changes(redis_conn_t *c, int64_t gen, int64_t day, const rb_change_t *changes, size_t n,
                                 int64_t seq, const char *token, bool *held, int64_t *ranks, int64_t *before,
                                 int64_t *total, bool *ready)
{
    rb_keys_t k;
    window_keys(&k, gen, day);
    enum { ARGS = 11 }; /* KEYS[1..7], mode, token, how many changes, the transaction's number */
    size_t n_writes = 0, n_members = 0, member_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (changes[i].version != 0) {
            n_writes++;
        } else if (!changes[i].removed && ranks) {
            n_members++;
            member_bytes += ORDER_MEMBER_MAX + 1 + (changes[i].metadata ? strlen(changes[i].metadata) : 0);
        }
    }
    size_t argc = ARGS + 6 * n_writes + n_members;
    const char **av = xmalloc(sizeof(char *) * argc);
    size_t *al = xmalloc(sizeof(size_t) * argc);
    /* reply slot of each change: its place among the writes, then among the members; -1 none */
    long *slot = xmalloc(sizeof(long) * (n ? n : 1));
    /* Per change: its member (sort key + achieved + player), its version as 8 big-endian bytes,
     * its sort key and its bucket in decimal. A write sends the member's prefix only. */
    enum { SLOT = ORDER_MEMBER_MAX + 8 + 24 + 8 };
    char *scratch = xmalloc(SLOT * (n ? n : 1));
    /* A member to rank is sent whole, metadata and all (LUA_MEMBER). */
    char *members = xmalloc(member_bytes ? member_bytes : 1), *member_at = members;
    char count[24], number[24];
    av[0] = k.z, al[0] = strlen(k.z);
    av[1] = k.p, al[1] = strlen(k.p);
    av[2] = k.r, al[2] = strlen(k.r);
    av[3] = k.b, al[3] = strlen(k.b);
    av[4] = k.m, al[4] = strlen(k.m);
    av[5] = k.mp, al[5] = strlen(k.mp);
    av[6] = k.s, al[6] = strlen(k.s);
    av[7] = ranks ? "r" : "-", al[7] = 1;
    av[8] = token ? token : "", al[8] = token ? strlen(token) : 0;
    av[9] = count, al[9] = i64_text(count, (int64_t)n_writes);
    av[10] = number, al[10] = i64_text(number, seq > 0 ? seq : 0);
    size_t w = 0, m_at = ARGS + 6 * n_writes, m = 0;
    for (size_t i = 0; i < n; i++) {
        const rb_change_t *ch = &changes[i];
        char *mem = scratch + SLOT * i, *ver = mem + ORDER_MEMBER_MAX, *sk = ver + 8, *bucket = sk + 24;
        size_t len = strlen(ch->player);
        order_pos_t pos;
        order_pos_set(&pos, ch->sort_key, ch->achieved_ms, ch->player, len);
        size_t mem_len = order_member_encode(&pos, (unsigned char *)mem);
        if (ch->version == 0) {
            slot[i] = -1;
            if (ch->removed || !ranks)
                continue;
            memcpy(member_at, mem, mem_len);
            if (ch->metadata && ch->metadata[0]) {
                size_t md_len = strlen(ch->metadata);
                member_at[mem_len] = ' ';
                memcpy(member_at + mem_len + 1, ch->metadata, md_len);
                mem_len += 1 + md_len;
            }
            av[m_at + m] = member_at, al[m_at + m] = mem_len;
            member_at += mem_len;
            slot[i] = (long)(n_writes + m++);
            continue;
        }
        put_be64(ver, (uint64_t)ch->version);
        size_t sk_len = i64_text(sk, ch->sort_key);
        size_t base = ARGS + 6 * w;
        slot[i] = (long)w++;
        av[base] = ch->player, al[base] = len;
        av[base + 1] = bucket, al[base + 1] = rb_player_bucket(ch->player, len, bucket);
        av[base + 2] = mem, al[base + 2] = ch->removed ? 0 : ORDER_PREFIX_LEN;
        av[base + 3] = ver, al[base + 3] = 8;
        av[base + 4] = sk, al[base + 4] = sk_len;
        av[base + 5] = ch->metadata ? ch->metadata : "", al[base + 5] = ch->metadata ? strlen(ch->metadata) : 0;
    }
    redisReply *r = redis_run(c, &script_apply, 7, (int)argc, av, al);
    free(av);
    free(al);
    free(scratch);
    free(members);
    if (!r) {
        free(slot);
        return RB_DOWN;
    }
    rb_status_t st = RB_OK;
    if (held)
        *held = !(token && r->type == REDIS_REPLY_NIL);
    if (held && !*held) {
        /* the rebuild lost its lock: nothing applied */
    } else if (r->type == REDIS_REPLY_ERROR) {
        /* The connection works (a slot still migrating after every wait, out of memory): this
         * update did not land, and the caller says so for the window; Redis is not down. */
        log_warn(NULL, "redis apply refused: %s", r->str);
        st = RB_AGAIN;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || (ranks && r->elements != 2 + 2 * n_writes + n_members)) {
        log_error(NULL, "redis apply: unexpected reply (%.200s)", r->type == REDIS_REPLY_ERROR ? r->str : "shape");
        st = RB_DOWN;
    } else {
        if (ready)
            *ready = r->element[0]->integer == 1;
        if (total)
            *total = r->element[1]->integer;
        for (size_t i = 0; ranks && i < n; i++)
            ranks[i] = slot[i] < 0 ? 0 : r->element[2 + slot[i]]->integer + 1;
        size_t befores = 2 + n_writes + n_members;
        for (size_t i = 0; ranks && before && i < n; i++) {
            long long b = changes[i].version != 0 ? r->element[befores + slot[i]]->integer : -2;
            before[i] = b >= 0 ? b + 1 : b == -1 ? 0 : -1;
        }
    }
    freeReplyObject(r);
    free(slot);
    return st;
}

rb_status_t rb_apply(redis_conn_t *c, int64_t gen, int64_t day, const rb_change_t *changes, size_t n, int64_t seq,
                     int64_t *ranks, int64_t *before, int64_t *total, bool *ready)
{
    return apply_changes(c, gen, day, changes, n, seq, NULL, NULL, ranks, before, total, ready);
}

/* An error reply comes over a connection that works (a slot still migrating after every wait, a
 * node out of memory): RB_AGAIN, for the caller to try later, never RB_DOWN, which drops the
 * pool and makes every window of every board unchecked (a rebuild of each, minutes at 10M). */
static rb_status_t command_ok(redisReply *r)
{
    rb_status_t st = !r ? RB_DOWN : r->type == REDIS_REPLY_ERROR ? RB_AGAIN : RB_OK;
    if (r)
        freeReplyObject(r);
    return st;
}

/* Take a reply that must be an integer: RB_OK with *one = whether it is 1. Frees `r`. */
static rb_status_t integer_is_one(redisReply *r, bool *one)
{
    rb_status_t st = !r ? RB_DOWN : r->type == REDIS_REPLY_INTEGER ? RB_OK : r->type == REDIS_REPLY_ERROR ? RB_AGAIN : RB_DOWN;
    if (st == RB_OK)
        *one = r->integer == 1;
    if (r)
        freeReplyObject(r);
    return st;
}

rb_status_t rb_window_ready(redis_conn_t *c, int64_t gen, int64_t day, bool *ready)
{
    rb_keys_t k;
    window_keys(&k, gen, day);
    return integer_is_one(redis_conn_command(c, k.r, "EXISTS %s", k.r), ready);
}

rb_status_t rb_window_mark(redis_conn_t *c, int64_t gen, int64_t day, bool *ready, int64_t *seq)
{
    rb_keys_t k;
    window_keys(&k, gen, day);
    redisReply *r = redis_conn_command(c, k.r,
                                       "EVAL %s 2 %s %s",
                                       "return {redis.call('EXISTS', KEYS[1]), redis.call('HGET', KEYS[2], 'seq') or '0'}",
                                       k.r, k.m);
    rb_status_t st = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                             r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_STRING
                         ? RB_OK
                     : r && r->type == REDIS_REPLY_ERROR ? RB_AGAIN /* see command_ok */
                                                         : RB_DOWN;
    if (st == RB_OK) {
        *ready = r->element[0]->integer == 1;
        *seq = strtoll(r->element[1]->str, NULL, 10);
    }
    if (r)
        freeReplyObject(r);
    return st;
}

rb_status_t rb_forget_window(redis_conn_t *c, int64_t gen, int64_t day)
{
    rb_keys_t k;
    window_keys(&k, gen, day);
    /* Both keys share the window's slot. */
    return command_ok(redis_conn_command(c, k.r, "DEL %s %s", k.r, k.b));
}

rb_status_t rb_mark_cold(redis_conn_t *c, int64_t gen, int64_t day)
{
    rb_keys_t k;
    window_keys(&k, gen, day);
    return command_ok(redis_conn_command(c, k.r, "DEL %s", k.r));
}

typedef struct {
    unsigned slot;
    const char *key;
    size_t len;
} slot_key_t;

static int by_slot(const void *a, const void *b)
{
    const slot_key_t *x = a, *y = b;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

/* UNLINK the keys av[1..n) (av[0] is "UNLINK"); in a cluster, one command per slot (a command's
 * keys must share one). */
static rb_status_t unlink_keys(redis_conn_t *c, const char **av, size_t *al, size_t n)
{
    if (!redis_conn_is_cluster(c))
        return command_ok(redis_conn_argv(c, NULL, 0, (int)n, av, al));
    slot_key_t *keys = xmalloc(n * sizeof *keys);
    for (size_t i = 1; i < n; i++)
        keys[i - 1] = (slot_key_t){redis_slot(av[i], al[i]), av[i], al[i]};
    qsort(keys, n - 1, sizeof *keys, by_slot);
    rb_status_t st = RB_OK;
    for (size_t i = 0; i < n - 1 && st == RB_OK;) {
        size_t m = 1;
        for (; i < n - 1 && (m == 1 || keys[i].slot == keys[i - 1].slot); i++, m++)
            av[m] = keys[i].key, al[m] = keys[i].len;
        st = command_ok(redis_conn_argv(c, av[1], al[1], (int)m, av, al));
    }
    free(keys);
    return st;
}

/* Delete the keys matching `pattern` that doomed(key, arg) names (all of them with NULL), by
 * SCAN on every master, so Redis is never blocked long; `*deleted` (may be NULL) counts them. */
static rb_status_t delete_matching_if(redis_conn_t *c, const char *pattern,
                                      bool (*doomed)(const char *key, size_t len, void *arg), void *arg, long *deleted)
{
    size_t masters = redis_conn_masters(c);
    if (masters == 0)
        return RB_DOWN;
    /* A SCAN cursor means something only on the node that gave it: if the map moves midway
     * (a failover, a resharding), RB_AGAIN: the caller runs it again later, and the connection,
     * which works, is not released as failed (that would count an outage and make every
     * window cold for the sake of a moved slot). */
    unsigned map = redis_conn_map_changes(c);
    for (size_t m = 0; m < masters; m++) {
        char cursor[32] = "0";
        do {
            const char *scan[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
            redisReply *r = redis_conn_argv_on(c, m, 6, scan, NULL);
            if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                if (r)
                    freeReplyObject(r);
                return RB_DOWN;
            }
            snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
            redisReply *keys = r->element[1];
            size_t n = 1;
            const char **av = xmalloc((keys->elements + 1) * sizeof *av);
            size_t *al = xmalloc((keys->elements + 1) * sizeof *al);
            av[0] = "UNLINK", al[0] = 6;
            for (size_t i = 0; i < keys->elements; i++)
                if (!doomed || doomed(keys->element[i]->str, keys->element[i]->len, arg))
                    av[n] = keys->element[i]->str, al[n++] = keys->element[i]->len;
            if (deleted)
                *deleted += (long)(n - 1);
            /* One UNLINK per page of keys (a window has up to 16,386). */
            rb_status_t st = n > 1 ? unlink_keys(c, av, al, n) : RB_OK;
            free(av);
            free(al);
            freeReplyObject(r);
            if (st != RB_OK)
                return st;
            if (redis_conn_map_changes(c) != map)
                return RB_AGAIN;
        } while (strcmp(cursor, "0") != 0);
    }
    return RB_OK;
}

static rb_status_t delete_matching(redis_conn_t *c, const char *pattern)
{
    return delete_matching_if(c, pattern, NULL, NULL, NULL);
}

typedef struct {
    const board_t *boards;
    size_t n;
    int64_t now_ms;
} cold_filter_t;

/* Whether `suffix` (what follows "rankd:{g<gen>}:<day>:") names a key of this layout. */
static bool layout_key_suffix(const char *suffix)
{
    for (size_t i = 0; i < sizeof key_suffix / sizeof *key_suffix; i++) {
        size_t n = strlen(key_suffix[i]);
        if (strncmp(suffix, key_suffix[i], n) == 0 && (suffix[n] == '\0' || key_suffix[i][n - 1] == ':'))
            return true;
    }
    return false;
}

/* "rankd:{g<gen>}:<day>:…" of a known board whose window `day` is neither current nor
 * previous, or of a window of a known board in an older layout. */
static bool cold_window_key(const char *key, size_t len, void *arg)
{
    const cold_filter_t *f = arg;
    char text[64];
    if (len >= sizeof text)
        return false;
    memcpy(text, key, len);
    text[len] = '\0';
    long long gen, day;
    int used = 0;
    if (sscanf(text, "rankd:{g%lld}:%lld:%n", &gen, &day, &used) != 2 || used == 0)
        return false;
    if (!layout_key_suffix(text + used))
        return true; /* an older layout's, left by an instance of an older version */
    for (size_t i = 0; i < f->n; i++)
        if (f->boards[i].gen == gen)
            return !window_is_hot(board_window_rule(&f->boards[i]), day, f->now_ms);
    return false; /* a board not listed: its deletion removes its keys */
}

rb_status_t rb_forget_cold_windows(redis_conn_t *c, const board_t *boards, size_t n, int64_t now_ms, long *deleted)
{
    cold_filter_t f = {boards, n, now_ms};
    *deleted = 0;
    return delete_matching_if(c, "rankd:{g*}:*", cold_window_key, &f, deleted);
}

rb_status_t rb_forget_board(redis_conn_t *c, int64_t gen)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "rankd:{g%" PRId64 "}:*", gen);
    return delete_matching(c, pattern);
}

/* The keys of the layouts before this one: 1, before sorted-set scores (…:z, …:p, …:r); 2,
 * before the metadata rode in the members (…:zs, …:h:<n>, …:ready, …:b, …:m, …:mp); 3,
 * before the sort key did (…:z3, …:h3:<n>, …:ready3, …:b3, …:m3, …:mp3); and 4, before the
 * distinct sort keys were kept (…:z4, …:h4:<n>, …:ready4, …:b4, …:m4, …:mp4). Their names
 * differ from layout 5's, so that instances of two versions sharing a Redis during an upgrade
 * each keep an index of their own (a layout 4 writer does not keep the distinct sort keys). */
static const char *const old_layout_keys[] = {
    "rankd:{g*}:*:[zpr]",  "rankd:{g*}:*:zs",  "rankd:{g*}:*:h:*",  "rankd:{g*}:*:ready", "rankd:{g*}:*:b",
    "rankd:{g*}:*:m",      "rankd:{g*}:*:mp",  "rankd:{g*}:*:z3",   "rankd:{g*}:*:h3:*",  "rankd:{g*}:*:ready3",
    "rankd:{g*}:*:b3",     "rankd:{g*}:*:m3",  "rankd:{g*}:*:mp3",  "rankd:{g*}:*:z4",    "rankd:{g*}:*:h4:*",
    "rankd:{g*}:*:ready4", "rankd:{g*}:*:b4",  "rankd:{g*}:*:m4",   "rankd:{g*}:*:mp4"};
#define LAYOUT "5"

rb_status_t rb_forget_old_layout(redis_conn_t *c)
{
    /* A marker spares later starts a SCAN of the whole keyspace. */
    redisReply *r = redis_conn_command(c, "rankd:layout", "GET rankd:layout");
    if (!r)
        return RB_DOWN;
    bool done = r->type == REDIS_REPLY_STRING && strcmp(r->str, LAYOUT) == 0;
    freeReplyObject(r);
    if (done)
        return RB_OK;
    rb_status_t st = RB_OK;
    for (size_t i = 0; st == RB_OK && i < sizeof old_layout_keys / sizeof *old_layout_keys; i++)
        st = delete_matching(c, old_layout_keys[i]);
    if (st == RB_OK)
        st = command_ok(redis_conn_command(c, "rankd:layout", "SET rankd:layout " LAYOUT));
    return st;
}

rb_status_t rb_forget_all_loaded(redis_conn_t *c)
{
    /* The locks too: a rebuild another instance began before our writer's unapplied commits may
     * have read past them, and would otherwise mark its window ready without them. Losing its
     * lock, it stops and leaves the window cold. Locks first: a rebuild that marks its window
     * ready before its lock goes has its flag deleted by the second pass; one that takes a lock
     * afterwards reads PostgreSQL after those commits. */
    rb_status_t st = delete_matching(c, "rankd:{g*}:*:b5");
    return st == RB_OK ? delete_matching(c, "rankd:{g*}:*:ready5") : st;
}

/* Players loaded per Lua call. Redis runs nothing else meanwhile: at about 10 us per player
 * a chunk blocks every other client for some 20 ms (more when it shares a core), far below
 * the pool's command timeout. 10,000 stalled Redis for 100-400 ms, long enough for readers'
 * timeouts to mark Redis down, which restarted the rebuild from scratch. */
#define REBUILD_CHUNK 2000
#define STR_(x) #x
#define STR(x) STR_(x)

/* A chunk is applied (and the lock's lease renewed), and the window marked ready, only while the
 * lock still holds our token. A FLUSHALL, a Redis restart or an expired lease midway removes it
 * along with the chunks loaded so far: marking the window ready then would answer from a
 * partial set. */
static const char *const lease_finish =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end"
    " redis.call('SET', KEYS[2], '1') redis.call('DEL', KEYS[1])"
    /* The mark: the number the load was read at, or further where updates since reach. */
    " local p = math.max(tonumber(redis.call('HGET', KEYS[3], 'seq') or '0'), tonumber(ARGV[2]))"
    " for _, s in ipairs(redis.call('SMEMBERS', KEYS[4])) do"
    "  if tonumber(s) <= p then redis.call('SREM', KEYS[4], s) end end"
    " while redis.call('SREM', KEYS[4], string.format('%d', p + 1)) == 1 do p = p + 1 end"
    " redis.call('HSET', KEYS[3], 'seq', string.format('%d', p)) return 1";
static const char *const lease_release =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/* Run one of the lease scripts; RB_OK with *held = whether our token was still there. */
static rb_status_t lease_call(redis_conn_t *c, const char *script, const rb_keys_t *k, const char *token, bool *held)
{
    return integer_is_one(redis_conn_command(c, k->b, "EVAL %s 2 %s %s %s", script, k->b, k->r, token), held);
}

/* A source that is one connection, given. */
typedef struct {
    rb_source_t base;
    PGconn *pg;
} fixed_source_t;

static PGconn *fixed_open(rb_source_t *s)
{
    return ((fixed_source_t *)s)->pg;
}

static void fixed_close(rb_source_t *s, PGconn *c, bool failed)
{
    (void)s;
    (void)c;
    (void)failed;
}

rb_status_t rb_rebuild(redis_conn_t *c, PGconn *pg, const board_t *b, int64_t day, rb_rebuild_t *out)
{
    fixed_source_t src = {{fixed_open, fixed_close, NULL}, pg};
    return rb_rebuild_from(c, &src.base, b, day, out);
}

rb_status_t rb_rebuild_from(redis_conn_t *c, rb_source_t *src, const board_t *b, int64_t day, rb_rebuild_t *out)
{
    rb_keys_t k;
    window_keys(&k, b->gen, day);
    *out = (rb_rebuild_t){0};
    /* A large window takes a while: allow each command time, whatever the pool's timeout
     * (the caller discards this connection afterwards). */
    redis_conn_set_timeout(c, 30000);
    /* The lock carries our token and a short lease, renewed by each chunk's apply before it
     * writes anything: a rebuilder that dies releases it within a minute, and we delete only
     * our own. */
    char token[48];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(token, sizeof token, "%ld.%09ld.%lx", (long)ts.tv_sec, ts.tv_nsec, (unsigned long)pthread_self());
    redisReply *lock = redis_conn_command(c, k.b, "SET %s %s NX EX 60", k.b, token);
    if (!lock || lock->type == REDIS_REPLY_ERROR) { /* out of memory, READONLY, NOAUTH: not "busy" */
        if (lock) {
            log_error(NULL, "redis rebuild lock: %s", lock->str);
            freeReplyObject(lock);
        }
        return RB_DOWN;
    }
    bool got = lock->type == REDIS_REPLY_STATUS;
    freeReplyObject(lock);
    if (!got) {
        out->busy = true;
        return RB_OK;
    }
    const char *keys[] = {k.z, k.p, k.r, k.m, k.mp, k.s};
    size_t lens[] = {strlen(k.z), strlen(k.p), strlen(k.r), strlen(k.m), strlen(k.mp), strlen(k.s)};
    if (command_ok(redis_run(c, &script_clear, 6, 6, keys, lens)) != RB_OK)
        return RB_DOWN;
    /* Only now: what is read must hold every write whose Redis update the clear just erased. */
    PGconn *pg = src->open(src);
    if (!pg)
        out->pg_failed = true;
    /* The window's number first: every transaction up to it committed before this read, so the
     * chunks read after it hold it, and every later one updates Redis after the clear. */
    if (pg && q_window_seq(pg, b->gen, day, &out->seq) != Q_OK)
        out->pg_failed = true;

    char gen[24], d[11], sk[24] = "-9223372036854775808", ms[24] = "0";
    char last_player[PLAYER_ID_MAX + 1] = "";
    snprintf(gen, sizeof gen, "%" PRId64, b->gen);
    window_format_day(day, d);
    rb_status_t st = RB_OK;
    bool held = true;
    while (pg && !out->pg_failed) {
        if (src->cancelled && src->cancelled(src)) {
            out->cancelled = true;
            break;
        }
        const char *p[] = {gen, d, sk, ms, last_player};
        PGresult *r = PQexecParams(pg,
                                   "SELECT player_id, sort_key, achieved_ms, metadata, version FROM standings"
                                   " WHERE board_gen = $1 AND win = $2"
                                   " AND (sort_key, achieved_ms, player_id) > ($3::bigint, $4::bigint, $5::text)"
                                   " ORDER BY sort_key, achieved_ms, player_id LIMIT " STR(REBUILD_CHUNK),
                                   5, NULL, p, NULL, NULL, 0);
        if (!pg_ok(r)) {
            char pe[PG_ERROR_MAX];
            log_error(NULL, "rebuild read failed: %s", pg_error_text(NULL, r, pe, sizeof pe));
            PQclear(r);
            out->pg_failed = true;
            break;
        }
        int rows = PQntuples(r);
        rb_change_t *ch = xcalloc((size_t)(rows ? rows : 1), sizeof *ch);
        for (int i = 0; i < rows; i++) {
            ch[i].player = PQgetvalue(r, i, 0);
            ch[i].sort_key = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            ch[i].achieved_ms = strtoll(PQgetvalue(r, i, 2), NULL, 10);
            ch[i].metadata = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
            ch[i].version = strtoll(PQgetvalue(r, i, 4), NULL, 10);
        }
        if (rows)
            st = apply_changes(c, b->gen, day, ch, (size_t)rows, 0, token, &held, NULL, NULL, NULL, NULL);
        if (rows) {
            snprintf(sk, sizeof sk, "%s", PQgetvalue(r, rows - 1, 1));
            snprintf(ms, sizeof ms, "%s", PQgetvalue(r, rows - 1, 2));
            snprintf(last_player, sizeof last_player, "%s", PQgetvalue(r, rows - 1, 0));
        }
        free(ch);
        PQclear(r);
        if (held)
            out->players += rows;
        if (st != RB_OK || !held || rows < REBUILD_CHUNK)
            break;
    }
    if (pg)
        src->close(src, pg, out->pg_failed);
    if (st == RB_OK && held && !out->pg_failed && !out->cancelled) {
        char seq[24];
        seq[i64_text(seq, out->seq)] = '\0';
        st = integer_is_one(redis_conn_command(c, k.b, "EVAL %s 4 %s %s %s %s %s %s", lease_finish, k.b, k.r, k.m, k.mp,
                                               token, seq),
                            &held);
    } else if (held && !redis_conn_broken(c)) { /* on a broken connection the lease expires by itself */
        bool ignored;
        (void)lease_call(c, lease_release, &k, token, &ignored);
    }
    out->lost = st == RB_OK && !held;
    if (out->lost) {
        char win[11];
        window_format_day(day, win);
        log_warn(NULL, "redis window rebuild abandoned: board=%s window=%s lost its lock after %lld players"
                       " (Redis was flushed or restarted); the window stays cold",
                 b->id, win, (long long)out->players);
    }
    return st;
}

rb_status_t rb_rebuild_when_free(redis_conn_t *c, PGconn *pg, const board_t *b, int64_t day, int wait_ms,
                                 rb_rebuild_t *out)
{
    rb_status_t st = rb_rebuild(c, pg, b, day, out);
    for (int waited = 0; st == RB_OK && out->busy && waited < wait_ms; waited += 100) {
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
        st = rb_rebuild(c, pg, b, day, out);
    }
    return st;
}

/* The distinct sort keys Redis keeps for a window's dense ranks (s5) against those of page `pe`
 * of PostgreSQL's standings (in rank order): the ones after *prev (the last sort key of the
 * pages before; none for the first) up to the page's last, or past it for the last page (none
 * may follow). Both lists are in order: a merge finds what either lacks, and a member that is
 * not its sort key's 8 bytes. Returns the differences printed, or -1 when Redis failed; *prev
 * moves to the page's last sort key. */
static long verify_distinct(redis_conn_t *c, const rb_keys_t *k, const board_t *b, const entries_t *pe, bool *first,
                            int64_t *prev, bool last, FILE *out)
{
    char lo[32] = "-inf", hi[32] = "+inf";
    if (!*first)
        snprintf(lo, sizeof lo, "(%" PRId64, *prev);
    if (!last && pe->n > 0)
        snprintf(hi, sizeof hi, "%" PRId64, pe->items[pe->n - 1].sort_key);
    redisReply *r = redis_conn_command(c, k->s, "ZRANGEBYSCORE %s %s %s WITHSCORES", k->s, lo, hi);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    int64_t *want = xmalloc((pe->n ? pe->n : 1) * sizeof *want);
    size_t nw = 0, pairs = r->elements / 2;
    for (size_t i = 0; i < pe->n; i++) {
        int64_t sk = pe->items[i].sort_key;
        if (i == 0 ? *first || sk != *prev : sk != pe->items[i - 1].sort_key)
            want[nw++] = sk;
    }
    long diffs = 0;
    for (size_t x = 0, y = 0; x < nw || y < pairs;) {
        const redisReply *m = y < pairs ? r->element[2 * y] : NULL, *sc = m ? r->element[2 * y + 1] : NULL;
        int64_t held = sc && sc->type == REDIS_REPLY_STRING ? (int64_t)strtod(sc->str, NULL) : 0;
        if (!m || (x < nw && want[x] < held)) {
            fprintf(out, "%s distinct sort keys: %" PRId64 " missing in redis\n", b->id, want[x++]);
        } else if (x >= nw || held < want[x]) {
            fprintf(out, "%s distinct sort keys: %" PRId64 " in redis only\n", b->id, held);
            y++;
        } else {
            order_pos_t pos;
            unsigned char enc[ORDER_MEMBER_MAX];
            bool encoded = order_pos_set(&pos, held, 0, "", 0) && order_member_encode(&pos, enc) >= 8;
            x++, y++;
            if (encoded && m->type == REDIS_REPLY_STRING && m->len == 8 && memcmp(m->str, enc, 8) == 0)
                continue;
            fprintf(out, "%s distinct sort keys: %" PRId64 " held under another member\n", b->id, held);
        }
        diffs++;
    }
    free(want);
    freeReplyObject(r);
    if (pe->n > 0) {
        *prev = pe->items[pe->n - 1].sort_key;
        *first = false;
    }
    return diffs;
}

long rb_verify(redis_conn_t *c, PGconn *pg, const board_t *b, int64_t day, FILE *out)
{
    long diffs = 0;
    int64_t offset = 0;
    rb_keys_t k;
    window_keys(&k, b->gen, day);
    bool first = true;
    int64_t prev = 0;
    for (;;) {
        entries_t re, pe;
        entries_init(&re);
        entries_init(&pe);
        rb_status_t st = rb_page(c, b, day, offset, 1000, &re);
        if (st == RB_COLD) {
            fprintf(out, "%s window %" PRId64 ": not loaded in redis (cold)\n", b->id, day);
            entries_clear(&re);
            return 0;
        }
        if (st != RB_OK || q_page_offset(pg, b, day, 1000, offset, 0, &pe) != Q_OK) {
            entries_clear(&re);
            entries_clear(&pe);
            return -1;
        }
        if (offset == 0 && re.total != pe.total) {
            fprintf(out, "%s: total redis=%" PRId64 " postgres=%" PRId64 "\n", b->id, re.total, pe.total);
            diffs++;
        }
        size_t n = re.n > pe.n ? re.n : pe.n;
        for (size_t i = 0; i < n; i++) {
            entry_t *x = i < re.n ? &re.items[i] : NULL, *y = i < pe.n ? &pe.items[i] : NULL;
            bool same = x && y && strcmp(x->player, y->player) == 0 && x->score == y->score &&
                        x->achieved_ms == y->achieved_ms &&
                        ((!x->metadata && !y->metadata) || (x->metadata && y->metadata && !strcmp(x->metadata, y->metadata)));
            if (!same) {
                diffs++;
                fprintf(out, "%s rank %" PRId64 ": redis=%s/%" PRId64 " postgres=%s/%" PRId64 "\n", b->id,
                        offset + (int64_t)i + 1, x ? x->player : "-", x ? x->score : 0, y ? y->player : "-",
                        y ? y->score : 0);
            }
        }
        size_t got = n;
        long distinct = verify_distinct(c, &k, b, &pe, &first, &prev, got < 1000, out);
        entries_clear(&re);
        entries_clear(&pe);
        if (distinct < 0)
            return -1;
        diffs += distinct;
        if (got < 1000)
            break;
        offset += 1000;
    }
    return diffs;
}
