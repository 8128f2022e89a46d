/*
 * store/pg_deadline.h — a bound on how long one call on a PostgreSQL connection may block.
 *
 * libpq's blocking calls wait for the server as long as TCP holds: a server process that hangs,
 * or a path that keeps acknowledging bytes and delivers nothing back, blocks them for good, and
 * neither the server's statement_timeout nor tcp_user_timeout ends that. Arm a connection before
 * such a call; when the call outlasts the deadline, a watchdog thread shuts the connection's
 * socket down, the call returns an error, and the connection is broken (its pool closes it).
 */
#ifndef RANKD_STORE_PG_DEADLINE_H
#define RANKD_STORE_PG_DEADLINE_H

#include <libpq-fe.h>

/* From now on, cut `c` unless disarmed within `ms`. Arming a connection armed already moves
 * its deadline (a caller's next step on the connection it holds): one arming per connection. */
void pg_deadline_arm(PGconn *c, int ms);
/* The call ended: no cut. */
void pg_deadline_disarm(PGconn *c);
/* The deadline of one statement, for pg_deadline_arm_statement (0: none): the server's
 * statement timeout and a margin for the network. Set once, at start. */
void pg_deadline_set_statement_ms(int ms);
/* Arm `c` for `statements` statements' worth of the deadline (nothing when none is set). */
void pg_deadline_arm_statement(PGconn *c, int statements);
/* Connections cut so far. */
unsigned long long pg_deadline_cuts(void);

#endif
