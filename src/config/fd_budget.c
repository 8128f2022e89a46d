/* config/fd_budget.c — client sockets under the descriptor limit; see fd_budget.h. */
#include "config/fd_budget.h"

fd_budget_t fd_budget_fit(unsigned long long nofile, int max_connections, int max_listeners)
{
    fd_budget_t b = {max_connections, max_listeners, false, false, 0};
    if (nofile == 0)
        return b;
    b.room = nofile > 2 * FD_BUDGET_RESERVED ? nofile - FD_BUDGET_RESERVED : nofile / 2;
    if (b.room < 1)
        b.room = 1;
    if ((unsigned long long)b.max_connections > b.room) {
        b.max_connections = (int)b.room;
        b.shrunk = true;
    }
    if (b.max_listeners > 0 && (unsigned long long)b.max_listeners > b.room) {
        b.max_listeners = (int)b.room;
        b.shrunk = true;
    }
    b.shared = b.max_listeners > 0 &&
               (unsigned long long)b.max_connections + (unsigned long long)b.max_listeners > b.room;
    return b;
}
