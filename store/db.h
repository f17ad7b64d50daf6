/*
 * store/db.h - the statement layer under store/: what an operation of
 * store/ does with a database, whichever engine holds it.
 *
 * A connection (struct db_conn, inside store_int.h's struct conn) and its
 * prepared statements (struct db_stmt, one per enum stmt_id, prepared on
 * first use by store_stmt from the engine's SQL table: store/sql_sqlite.c,
 * store/sql_pg.c) are used through the db_* functions below: bind
 * parameters (numbered from 1), step, read columns (numbered from 0),
 * reset. Transactions are statements of the table too (S_BEGIN_IMMEDIATE,
 * S_BEGIN_READ, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO:
 * store_int.h's store_begin() and its kin), so an operation's logic is
 * written once and only its SQL differs per engine.
 *
 * SQLite is the embedded default and must cost nothing here: each function
 * is a static inline wrapper that tests one pointer (`ops`, NULL for
 * SQLite, the same for every call of a connection, so the branch is always
 * predicted) and calls sqlite3 directly. The step codes are SQLite's own
 * (DB_ROW is SQLITE_ROW), so nothing is translated on that path either.
 *
 * How a second engine plugs in (PostgreSQL, store/db_pg.c):
 * - it fills a `const struct db_ops` (every member; see below) and sets it
 *   as `ops` of each struct db_conn it opens and of each struct db_stmt it
 *   prepares, keeping its own state in their `impl` (a PGconn and its
 *   prepared statement names, a PGresult and the row being read);
 * - store_stmt prepares through ops->prepare with the SQL of that engine's
 *   table; the S_LITE_* ids are NULL there and never reached on it (their
 *   callers are SQLite's launch writer and nonce window);
 * - db_step returns DB_ROW, DB_DONE or an error code of its own, which only
 *   its ops->err (through store_db_err) and ops->rc_constraint interpret;
 * - text and blob binds are borrowed until the statement is reset (copy
 *   them if the engine sends them later), column pointers until the next
 *   step or reset;
 * - what differs beyond SQL (recording launches, claiming due awards and
 *   passbacks, migrations, maintenance) has a code path per engine in
 *   store/, chosen by the connection's engine (db_engine()).
 */
#ifndef STORE_DB_H
#define STORE_DB_H

#include "base/base.h"

#include <sqlite3.h>

/* What db_step returns besides an engine's error code: SQLite's own values. */
#define DB_ROW  SQLITE_ROW
#define DB_DONE SQLITE_DONE
/* A failure with no code of its own (a statement that returned no row where one was due). */
#define DB_ERROR SQLITE_ERROR

enum db_engine {
    DB_SQLITE,
    DB_POSTGRESQL,
};

struct db_stmt;
struct db_conn;

/* What an engine other than SQLite implements (SQLite's calls are inline below). */
struct db_ops {
    enum db_engine engine;
    /* prepares `sql` on `c` into `st` (setting st->ops and st->impl); -1 with err */
    int (*prepare)(struct db_conn *c, const char *sql, struct db_stmt *st, struct err *err);
    void (*finalize)(struct db_stmt *st);
    int (*bind_int64)(struct db_stmt *st, int idx, int64_t v);
    int (*bind_double)(struct db_stmt *st, int idx, double v);
    /* borrowed until the reset unless `copy` */
    int (*bind_text)(struct db_stmt *st, int idx, const char *p, size_t n, bool copy);
    int (*bind_blob)(struct db_stmt *st, int idx, const void *p, size_t n);
    int (*bind_null)(struct db_stmt *st, int idx);
    int (*bind_count)(struct db_stmt *st);
    int (*step)(struct db_stmt *st);
    /* ready to run again, its bindings kept */
    void (*reset)(struct db_stmt *st);
    /* every parameter NULL again (store_stmt hands statements out reset and unbound) */
    void (*clear_bindings)(struct db_stmt *st);
    int64_t (*column_int64)(struct db_stmt *st, int col);
    double (*column_double)(struct db_stmt *st, int col);
    const char *(*column_text)(struct db_stmt *st, int col);
    const void *(*column_blob)(struct db_stmt *st, int col);
    size_t (*column_len)(struct db_stmt *st, int col);
    bool (*column_is_null)(struct db_stmt *st, int col);
    /* rows changed by the connection's last INSERT, UPDATE or DELETE */
    int64_t (*changes)(struct db_conn *c);
    /* whether a transaction is open on `c` */
    bool (*in_tx)(struct db_conn *c);
    /* sets err from error code `rc` of a step (what was being done: `what`); returns -1 */
    int (*err)(struct db_conn *c, int rc, const char *what, struct err *err);
    /* whether `rc` says a constraint (unique, foreign key, check) refused the write */
    bool (*rc_constraint)(int rc);
    void (*close)(struct db_conn *c);
};

/* A connection: SQLite's handle, or another engine's ops and state. */
struct db_conn {
    const struct db_ops *ops; /* NULL: SQLite */
    sqlite3 *lite;            /* SQLite's (NULL on another engine) */
    void *impl;               /* another engine's */
};

/* A prepared statement of a connection. */
struct db_stmt {
    const struct db_ops *ops; /* NULL: SQLite */
    sqlite3_stmt *lite;       /* SQLite's (NULL until prepared) */
    void *impl;               /* another engine's */
};

#define DB_SQLITE_PATH(p) __builtin_expect((p) == NULL, 1)

static inline enum db_engine db_engine(const struct db_conn *c)
{
    return DB_SQLITE_PATH(c->ops) ? DB_SQLITE : c->ops->engine;
}

static inline bool db_stmt_prepared(const struct db_stmt *st)
{
    return st->lite || st->impl;
}

static inline int db_bind_int64(struct db_stmt *st, int idx, int64_t v)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_bind_int64(st->lite, idx, v);
    return st->ops->bind_int64(st, idx, v);
}

static inline int db_bind_double(struct db_stmt *st, int idx, double v)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_bind_double(st->lite, idx, v);
    return st->ops->bind_double(st, idx, v);
}

static inline int db_bind_null(struct db_stmt *st, int idx)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_bind_null(st->lite, idx);
    return st->ops->bind_null(st, idx);
}

/* Text, borrowed until the statement is reset; NULL for the null view. */
static inline int db_bind_str(struct db_stmt *st, int idx, struct str v)
{
    if (!v.ptr)
        return db_bind_null(st, idx);
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_bind_text64(st->lite, idx, v.ptr, v.len, SQLITE_STATIC, SQLITE_UTF8);
    return st->ops->bind_text(st, idx, v.ptr, v.len, false);
}

/* Text the statement copies (the caller frees it before the step); NULL for NULL. */
static inline int db_bind_text_copy(struct db_stmt *st, int idx, const char *s)
{
    if (!s)
        return db_bind_null(st, idx);
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_bind_text(st->lite, idx, s, -1, SQLITE_TRANSIENT);
    return st->ops->bind_text(st, idx, s, strlen(s), true);
}

/* Bytes, borrowed until the statement is reset. */
static inline int db_bind_blob(struct db_stmt *st, int idx, const void *p, size_t n)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_bind_blob64(st->lite, idx, p, n, SQLITE_STATIC);
    return st->ops->bind_blob(st, idx, p, n);
}

/* How many parameters the statement has (the highest ?N). */
static inline int db_bind_count(struct db_stmt *st)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_bind_parameter_count(st->lite);
    return st->ops->bind_count(st);
}

/*
 * Runs the statement to its next row: DB_ROW (read the columns), DB_DONE,
 * or an error code for store_db_err (store_int.h).
 */
static inline int db_step(struct db_stmt *st)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_step(st->lite);
    return st->ops->step(st);
}

/* Ends a run: the statement can be stepped again (its bindings stay). */
static inline void db_reset(struct db_stmt *st)
{
    if (DB_SQLITE_PATH(st->ops))
        sqlite3_reset(st->lite);
    else
        st->ops->reset(st);
}

static inline int64_t db_column_int64(struct db_stmt *st, int col)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_column_int64(st->lite, col);
    return st->ops->column_int64(st, col);
}

static inline int db_column_int(struct db_stmt *st, int col)
{
    return (int)db_column_int64(st, col);
}

static inline double db_column_double(struct db_stmt *st, int col)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_column_double(st->lite, col);
    return st->ops->column_double(st, col);
}

/* NUL-terminated, NULL for SQL NULL; borrowed until the next step or reset. */
static inline const char *db_column_text(struct db_stmt *st, int col)
{
    if (DB_SQLITE_PATH(st->ops))
        return (const char *)sqlite3_column_text(st->lite, col);
    return st->ops->column_text(st, col);
}

/* NULL for SQL NULL (and for an empty blob); borrowed until the next step or reset. */
static inline const void *db_column_blob(struct db_stmt *st, int col)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_column_blob(st->lite, col);
    return st->ops->column_blob(st, col);
}

/* The length in bytes of a text or blob column, after db_column_text or db_column_blob. */
static inline size_t db_column_len(struct db_stmt *st, int col)
{
    if (DB_SQLITE_PATH(st->ops))
        return (size_t)sqlite3_column_bytes(st->lite, col);
    return st->ops->column_len(st, col);
}

static inline bool db_column_is_null(struct db_stmt *st, int col)
{
    if (DB_SQLITE_PATH(st->ops))
        return sqlite3_column_type(st->lite, col) == SQLITE_NULL;
    return st->ops->column_is_null(st, col);
}

/* A text column as a view (ptr NULL for SQL NULL), borrowed as db_column_text. */
static inline struct str db_column_str(struct db_stmt *st, int col)
{
    const char *p = db_column_text(st, col);

    return (struct str){ p, p ? db_column_len(st, col) : 0 };
}

/* Rows changed by the connection's last INSERT, UPDATE or DELETE. */
static inline int64_t db_changes(struct db_conn *c)
{
    if (DB_SQLITE_PATH(c->ops))
        return sqlite3_changes64(c->lite);
    return c->ops->changes(c);
}

/* Whether a transaction is open on the connection. */
static inline bool db_in_tx(struct db_conn *c)
{
    if (DB_SQLITE_PATH(c->ops))
        return !sqlite3_get_autocommit(c->lite);
    return c->ops->in_tx(c);
}

/* Whether error code `rc` of a step says a constraint refused the write. */
static inline bool db_rc_constraint(const struct db_conn *c, int rc)
{
    if (DB_SQLITE_PATH(c->ops))
        return (rc & 0xff) == SQLITE_CONSTRAINT;
    return c->ops->rc_constraint(rc);
}

#endif
