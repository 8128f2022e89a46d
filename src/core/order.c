/* core/order.c — position comparison and its order-preserving Redis encoding. */
#include "core/order.h"

#include <string.h>

#define TIME_OFFSET ((uint64_t)1 << 62)
#define KEY_OFFSET ((uint64_t)1 << 63)

int64_t order_sort_key(board_sort_t sort, int64_t score)
{
    return sort == SORT_DESC ? -score : score;
}

int64_t order_score(board_sort_t sort, int64_t sort_key)
{
    return sort == SORT_DESC ? -sort_key : sort_key;
}

bool order_score_better(board_sort_t sort, int64_t a, int64_t b)
{
    return sort == SORT_DESC ? a > b : a < b;
}

int order_pos_cmp(const order_pos_t *a, const order_pos_t *b)
{
    if (a->sort_key != b->sort_key)
        return a->sort_key < b->sort_key ? -1 : 1;
    if (a->achieved_ms != b->achieved_ms)
        return a->achieved_ms < b->achieved_ms ? -1 : 1;
    size_t n = a->player_len < b->player_len ? a->player_len : b->player_len;
    int c = memcmp(a->player, b->player, n);
    if (c != 0)
        return c < 0 ? -1 : 1;
    if (a->player_len != b->player_len)
        return a->player_len < b->player_len ? -1 : 1;
    return 0;
}

bool order_pos_set(order_pos_t *p, int64_t sort_key, int64_t achieved_ms, const char *player, size_t len)
{
    if (len > PLAYER_ID_MAX)
        return false;
    p->sort_key = sort_key;
    p->achieved_ms = achieved_ms;
    memcpy(p->player, player, len);
    p->player[len] = '\0';
    p->player_len = len;
    return true;
}

static void put_be64(unsigned char *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const unsigned char *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

size_t order_member_encode(const order_pos_t *p, unsigned char *out)
{
    put_be64(out, (uint64_t)p->sort_key + KEY_OFFSET);
    put_be64(out + 8, (uint64_t)p->achieved_ms + TIME_OFFSET);
    memcpy(out + ORDER_PREFIX_LEN, p->player, p->player_len);
    return ORDER_PREFIX_LEN + p->player_len;
}

bool order_member_decode(const unsigned char *m, size_t n, order_pos_t *out)
{
    if (n <= ORDER_PREFIX_LEN || n > ORDER_MEMBER_MAX)
        return false;
    int64_t sort_key = (int64_t)(get_be64(m) - KEY_OFFSET);
    if (sort_key < SCORE_MIN || sort_key > SCORE_MAX)
        return false;
    int64_t ms = (int64_t)(get_be64(m + 8) - TIME_OFFSET);
    return order_pos_set(out, sort_key, ms, (const char *)m + ORDER_PREFIX_LEN, n - ORDER_PREFIX_LEN);
}

bool order_score_parse(const char *s, size_t n, int64_t *sort_key)
{
    /* Redis prints a double that holds an integer below 2^53 as that integer's digits. */
    if (n == 0 || n > 20)
        return false;
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == n)
        return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > SCORE_MAX)
            return false;
    }
    *sort_key = s[0] == '-' ? -v : v;
    return true;
}
