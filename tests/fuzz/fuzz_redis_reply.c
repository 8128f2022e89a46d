/* tests/fuzz/fuzz_redis_reply.c — replies from Redis as the read paths parse them: the bytes go
 * through hiredis's own reader (RESP) held to rankd's bounds (store/redis_reply_limit.h), as every
 * context rankd opens is, and each reply to each kind of read through
 * rb_read_parse (plain and styled), and to both steps of an around read (rb_around_rank_parse,
 * rb_around_range_parse), which must refuse what they do not expect rather than trust it. */
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_board.h"
#include "store/redis_reply_limit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        rb_init();
        ready = true;
    }
    redisReader *rr = redisReaderCreate();
    redis_reply_limit(rr);
    redisReaderFeed(rr, (const char *)data, size);
    void *reply = NULL;
    if (redisReaderGetReply(rr, &reply) == REDIS_OK && reply) {
        board_t b = {.gen = 7, .sort = SORT_DESC, .op = OP_BEST, .reset = RESET_NONE};
        const char *ids[] = {"alice", "bob", "carol"};
        order_pos_t pos;
        order_pos_set(&pos, -100, 5, "bob", 3);
        /* Each kind plain, then styled (a reply that ends with its runs' counts). */
        for (int kind = 0; kind < 10; kind++) {
            rb_read_t rd;
            memset(&rd, 0, sizeof rd);
            switch (kind % 5) {
            case 0: rb_prepare_page(&rd, &b, 0, 10, 5); break;
            case 1: rb_prepare_cursor(&rd, &b, 0, &pos, false, 5); break;
            case 2: rb_prepare_cursor(&rd, &b, 0, &pos, true, 5); break;
            case 3: rb_prepare_players(&rd, &b, 0, ids, 3); break;
            default: rb_prepare_around(&rd, &b, 0, "bob", 2, 2); break;
            }
            rb_prepare_style(&rd, kind < 5 ? RANK_ORDINAL : RANK_COMPETITION);
            entries_t out;
            entries_init(&out);
            (void)rb_read_parse(&rd, reply, &b, &out);
            entries_clear(&out);
            rb_read_clear(&rd);
        }
        int64_t rank, total;
        (void)rb_around_rank_parse(reply, &rank, &total);
        for (size_t at = 0; at < 3; at++) {
            entries_t out;
            entries_init(&out);
            (void)rb_around_range_parse(reply, at, "bob", 11, 2, &b, &out);
            entries_clear(&out);
        }
        freeReplyObject(reply);
    }
    redisReaderFree(rr);
    return 0;
}
