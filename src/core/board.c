/*
 * core/board.c — names of a board's fixed rules: sort, operator, reset.
 *
 * One table per rule maps each enum value to its canonical lowercase name;
 * parsing and naming both read that table, so a name accepted on input is
 * exactly the name printed on output. Matching is exact and case-sensitive
 * ("Desc" is not "desc"), as in the API. No I/O, no allocation.
 */
#include "core/board.h"

#include <string.h>

static const char *const sort_names[] = {
    [SORT_DESC] = "desc",
    [SORT_ASC] = "asc",
};

static const char *const op_names[] = {
    [OP_BEST] = "best",
    [OP_LATEST] = "latest",
    [OP_SUM] = "sum",
};

static const char *const reset_names[] = {
    [RESET_NONE] = "none",
    [RESET_DAILY] = "daily",
    [RESET_WEEKLY] = "weekly",
    [RESET_MONTHLY] = "monthly",
};

#define N_NAMES(a) (sizeof(a) / sizeof((a)[0]))

/* Index of `s` in `names`, or -1. */
static int name_index(const char *const *names, size_t n, const char *s)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

bool board_sort_parse(const char *s, board_sort_t *out)
{
    int i = name_index(sort_names, N_NAMES(sort_names), s);
    if (i < 0)
        return false;
    *out = (board_sort_t)i;
    return true;
}

bool board_op_parse(const char *s, board_op_t *out)
{
    int i = name_index(op_names, N_NAMES(op_names), s);
    if (i < 0)
        return false;
    *out = (board_op_t)i;
    return true;
}

bool board_reset_parse(const char *s, board_reset_t *out)
{
    int i = name_index(reset_names, N_NAMES(reset_names), s);
    if (i < 0)
        return false;
    *out = (board_reset_t)i;
    return true;
}

/* Out-of-range values (a corrupted enum) name themselves "?" rather than crash. */
const char *board_sort_name(board_sort_t s)
{
    return (unsigned)s < N_NAMES(sort_names) ? sort_names[s] : "?";
}

const char *board_op_name(board_op_t o)
{
    return (unsigned)o < N_NAMES(op_names) ? op_names[o] : "?";
}

const char *board_reset_name(board_reset_t r)
{
    return (unsigned)r < N_NAMES(reset_names) ? reset_names[r] : "?";
}
