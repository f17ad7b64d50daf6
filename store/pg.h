/*
 * store/pg.h - what the files of store/ share about PostgreSQL: the pool's
 * connections, prepared statements by id (the table store_sql_pg of
 * sql_pg.c) and simple queries. Private to store/, like store_int.h; libpq's
 * types are named by their struct tags (libpq-fe.h: PGconn is struct
 * pg_conn, PGresult struct pg_result), so this header needs no libpq.
 */
/*
 * NEEDSWORK: faults. Transactions run again whole (store_tx_again) only
 * where they are written as one function: the launch batch, the award and
 * passback claims and store_tx_run; the other admin transactions
 * (store_admin_begin/end: consumer, badge and award edits, the outbox's
 * records outside a claim) answer a deadlock or a lost connection with
 * 503, and one whose COMMIT lost its answer says it failed though it may
 * have committed (the launch batch alone asks the server, batch_committed).
 * While a server is unreachable without refusing (a network cut, not a
 * restart), each request that needs a connection waits out connect_timeout
 * (10 s) before its 503: a failed attempt could answer the pool's other
 * callers at once for a moment. Keepalives and tcp_user_timeout bound a
 * statement on a cut network to about 30 s, untested (it needs a link to
 * cut: a network namespace or a proxy). No statement of the store runs
 * SERIALIZABLE, so 40001 is retried as 40P01 is but no test provokes it.
 */
#ifndef STORE_PG_H
#define STORE_PG_H

#include "store/store_int.h"

#include <stdbool.h>

struct pg_conn;
struct pg_result;

/*
 * PostgreSQL's SQL of every statement id, $1.. as sqlite's ?1.., the same
 * columns in the same order; NULL for the ids that are sqlite's only.
 */
extern const char *const store_sql_pg[S__COUNT];

/* One connection of the pool, used by one thread at a time. */
struct store_pg_conn {
    struct pg_conn *db;
    /* statement id i is prepared on this connection (named "s<i>") */
    bool prepared[S__COUNT];
    struct store_pg_conn *next;
};

/*
 * A connection of the pool, connected: a free one, else a new one while the
 * pool has fewer than its size, else the first given back. One found broken
 * (the server restarted, the network cut) is connected again, its
 * statements to be prepared again; ERR_UNAVAILABLE when that fails.
 */
struct store_pg_conn *store_pg_get(struct store_pg *pg, struct err *err);
/*
 * Whether `c` still stands: connected, and nothing (a last error, a
 * hang-up) came from the server since its last statement. For a
 * connection no statement is running on.
 */
bool store_pg_alive(struct store_pg_conn *c);
/*
 * Connects `c` again unless it stands (its statements to be prepared
 * again): 0, or -1 with ERR_UNAVAILABLE (libpq's reason in the detail).
 */
int store_pg_revive(struct store_pg *pg, struct store_pg_conn *c, struct err *err);
/*
 * Whether a failure (its result `res`, NULL: none) means the connection is
 * gone or going: broken, or the server shutting down or starting up.
 */
bool store_pg_lost(struct store_pg_conn *c, const struct pg_result *res);
/* Whether SQLSTATE `state` (NULL: none) is a serialization failure or a deadlock. */
bool store_pg_state_retry(const char *state);
/* Gives `c` back; a transaction left open on it is rolled back. */
void store_pg_put(struct store_pg *pg, struct store_pg_conn *c);
/* Prepares statement `id` on `c` unless it is; ERR_INVALID for an id PostgreSQL has no SQL for. */
int store_pg_prepare(struct store_pg_conn *c, enum stmt_id id, struct err *err);
/*
 * Runs statement `id` (prepared on first use) with `n` parameters: values
 * as text, or binary where formats[i] is 1 (bytea; lengths[i] then counts
 * its bytes); NULL values are SQL NULL. The result (PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK) is the caller's to PQclear; NULL with err set.
 */
struct pg_result *store_pg_run(struct store_pg_conn *c, enum stmt_id id, int n,
                               const char *const *values, const int *lengths, const int *formats,
                               struct err *err);
/* Runs `sql` (no parameters, any number of statements) through the simple protocol; -1 with err. */
int store_pg_exec(struct store_pg_conn *c, const char *sql, const char *what, struct err *err);
/*
 * Sets err from the connection's last error: ERR_UNAVAILABLE when the
 * connection is gone (or the server shuts down, or refuses connections),
 * ERR_CONFLICT for a serialization failure or a deadlock (try again),
 * ERR_INTERNAL otherwise; libpq's text in the detail. Returns -1.
 */
int store_pg_err(struct store_pg_conn *c, const struct pg_result *res, const char *what,
                 struct err *err);

/*
 * The PostgreSQL engine of the statement layer (db_pg.c): `c` takes a
 * connection of `pool` for its life (given back by store_conn_close) and
 * prepares statements of store_sql_pg on it.
 */
int store_db_pg_open(struct store_pg *pool, struct conn *c, struct err *err);
/*
 * Whether the transaction begun last on `c` failed in a way that running it
 * again may not (40001, 40P01, its connection lost before the COMMIT was
 * sent): store_tx_again's question. False on SQLite.
 */
bool store_db_pg_again(struct conn *c);
/*
 * Pipeline mode on the connection of `st` (entered by the first send):
 * sends the statement with its bindings without waiting for its answer
 * (prepared first, outside the pipeline); -1 with err.
 */
int store_db_pg_send(struct db_stmt *st, struct err *err);
/* Ends the statements sent with a Sync and sends them all; -1 with err. */
int store_db_pg_sync(struct conn *c, struct err *err);
/*
 * The answer of the next statement sent, read into `st` (the statement it
 * was sent with): 0, its rows then walked with db_step; else a step's error
 * code for store_db_err (a statement after the one that failed returns an
 * error code, and store_db_err tells that first failure).
 */
int store_db_pg_recv(struct db_stmt *st);
/* Reads what is left of the pipeline and leaves pipeline mode (a no-op outside it). */
void store_db_pg_pipeline_end(struct conn *c);
/* Whether the last COMMIT on `c` lost its connection before its answer: committed or not. */
bool store_db_pg_in_doubt(struct conn *c);
/* Whether `path` names a PostgreSQL database (postgresql:// or postgres://). */
bool store_path_is_pg(const char *path);
/*
 * The launch batch on PostgreSQL (launch_pg.c): `n` jobs in one
 * transaction on the writer's connection, nonces claimed by the
 * constraint of `nonces` (a nonce any instance took is refused).
 */
void store_launch_batch_pg(struct store *s, struct store_launch_job **jobs, size_t n);

#endif
