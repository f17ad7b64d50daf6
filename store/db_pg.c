/*
 * store/db_pg.c - the PostgreSQL engine under the statement layer
 * (store/db.h), over the connections of store/pg.c.
 *
 * A struct conn of the store on PostgreSQL holds one connection of the
 * pool (struct store_pg_conn) for its whole life: the store's admin
 * connection, its launch writer's and each of its readers. Its statements
 * are store_sql_pg's, prepared by id ("s<id>", store_pg_prepare) on first
 * use.
 *
 * Parameters are kept as text until the first step, which sends them with
 * PQexecPrepared: integers and doubles formatted, text copied into a buffer
 * of the parameter's own (kept between runs, so a statement run again
 * allocates nothing), blobs borrowed and sent in binary (bytea). The result
 * comes back whole, in text; the following steps walk its rows, DB_DONE
 * after the last. Columns are parsed from that text (bytea decoded, on
 * first read, into a buffer of the statement's).
 *
 * A failed step returns PG_RC_ERROR or PG_RC_CONSTRAINT (SQLSTATE class 23:
 * unique, foreign key, check) and keeps libpq's result on the connection
 * until the next failure, for store_db_err (store_pg_err's mapping:
 * connection gone ERR_UNAVAILABLE, serialization failure or deadlock
 * ERR_CONFLICT).
 *
 * Unlike SQLite, a failed statement inside a transaction aborts it: the
 * operations of store/ end their transaction on any error, so nothing runs
 * after one but the ROLLBACK (or ROLLBACK TO the launch's savepoint).
 */
#include "base/base.h"
#include "store/pg.h"

#include <libpq-fe.h>
#include <math.h>

/* What a failed step returns: neither DB_ROW nor DB_DONE, nor any SQLite code. */
#define PG_RC_ERROR      0x7001
#define PG_RC_CONSTRAINT 0x7023

/* bytea's type oid (catalog/pg_type.dat) */
#define PG_BYTEAOID 17

struct pg_param {
    char *buf; /* the formatted or copied value, NUL-terminated; grown, never shrunk */
    size_t cap;
};

struct pg_stmt {
    struct pg_db *db;
    enum stmt_id id;
    int nparams;
    const char **values; /* NULL: SQL NULL */
    int *lengths;
    int *formats;
    struct pg_param *params;
    PGresult *res; /* the run's result, NULL before the first step */
    int row;       /* the row the columns read, -1 before the first */
    int ntuples;
    /* a bytea column decoded: which (-1: none) of which row, and its bytes */
    int blob_col, blob_row;
    unsigned char *blob;
    size_t blob_len;
};

struct pg_db {
    struct store_pg *pool;
    struct store_pg_conn *conn;
    PGresult *failed; /* the last failure's result, for store_db_err */
    struct err lost;  /* the last failure when libpq had no result for it (failed NULL) */
    int64_t changes;  /* rows changed by the last INSERT, UPDATE or DELETE */
    /*
     * A transaction is open as the caller sees it: libpq's status while the
     * connection stands, kept as it was when the connection broke, until
     * the caller's ROLLBACK (or COMMIT) ends it.
     */
    bool in_tx;
    /*
     * Since the last BEGIN: a failure that running the transaction again
     * may not meet (40001, 40P01, the connection lost before the COMMIT),
     * and a COMMIT whose connection broke under it (committed or not: the
     * server knows, once it is back).
     */
    bool again, in_doubt;
    /*
     * Pipeline mode (store_db_pg_send): statements sent whose answers are
     * still to be read, and whether their Sync went; a connection whose
     * pipeline could not be ended lost its transaction (ensure treats it
     * as broken until the caller's ROLLBACK).
     */
    bool pipelined, synced, tx_lost;
};

static struct pg_stmt *ps(struct db_stmt *st)
{
    return st->impl;
}

static bool begins(enum stmt_id id)
{
    return id == S_BEGIN_IMMEDIATE || id == S_BEGIN_READ;
}

/*
 * Before statement `id` is prepared or run: a connection that broke (a
 * server restart, a network cut) is connected again when none of the
 * caller's transactions was open on it. One that broke in a transaction
 * stays broken until the caller ends it, so that nothing after the break
 * runs outside the transaction it belonged to: its statements fail, and a
 * ROLLBACK ends it (1: done, there is nothing to roll back). 0 when the
 * statement may run; -1 with err.
 */
static int ensure(struct pg_db *db, enum stmt_id id, struct err *err)
{
    PGconn *pc = db->conn->db;

    if (begins(id))
        db->again = db->in_doubt = false;
    /* in a transaction a broken connection shows in the statement's own failure */
    if (!db->tx_lost && PQstatus(pc) == CONNECTION_OK && (db->in_tx || store_pg_alive(db->conn)))
        return 0;
    if (db->in_tx && !begins(id)) {
        if (id == S_ROLLBACK) {
            db->in_tx = db->tx_lost = false;
            return 1;
        }
        if (id != S_COMMIT)
            db->again = true;
        else
            db->in_tx = false; /* nothing of it was committed: the break came first */
        err_set(err, ERR_UNAVAILABLE, "the database is unreachable, try again");
        return err_detail(err, "postgresql: the connection broke in a transaction");
    }
    db->in_tx = db->tx_lost = false;
    if (store_pg_revive(db->pool, db->conn, err) == 0)
        return 0;
    /* the server is not back yet: a transaction that was to begin may try again */
    if (begins(id))
        db->again = true;
    return -1;
}

/* What a failure of statement `id` (its result `res`, NULL: none) says of the transaction. */
static void note_failure(struct pg_db *db, enum stmt_id id, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (store_pg_state_retry(state))
        db->again = true;
    else if (store_pg_lost(db->conn, res)) {
        if (id == S_COMMIT)
            db->in_doubt = true;
        else if (db->in_tx || begins(id))
            db->again = true;
    }
    if (PQstatus(db->conn->db) == CONNECTION_OK)
        db->in_tx = PQtransactionStatus(db->conn->db) != PQTRANS_IDLE;
    else if (id == S_COMMIT || id == S_ROLLBACK)
        db->in_tx = false;
}

static int pg_prepare(struct db_conn *dc, const char *sql, struct db_stmt *st, struct err *err)
{
    struct pg_db *db = dc->impl;
    /* the statement's id: its place in the conn's table (store_stmt prepares stmts[id]) */
    struct conn *c = (struct conn *)((char *)dc - offsetof(struct conn, db));
    enum stmt_id id = (enum stmt_id)(st - c->stmts);
    struct pg_stmt *p;
    PGresult *d;
    char name[16];

    if (id < 0 || id >= S__COUNT || c->sql[id] != sql) {
        err_set(err, ERR_INTERNAL, "database error while preparing a statement");
        return err_detail(err, "postgresql: a statement outside the connection's table");
    }
    if (ensure(db, id, err) != 0) {
        /* (1: a ROLLBACK of a transaction lost with its connection: ended, though not prepared) */
        err_set(err, ERR_UNAVAILABLE, "the database is unreachable, try again");
        return -1;
    }
    if (store_pg_prepare(db->conn, id, err) < 0) {
        note_failure(db, id, NULL);
        return -1;
    }
    snprintf(name, sizeof(name), "s%d", (int)id);
    d = PQdescribePrepared(db->conn->db, name);
    if (PQresultStatus(d) != PGRES_COMMAND_OK) {
        note_failure(db, id, d);
        store_pg_err(db->conn, d, "preparing a statement", err);
        PQclear(d);
        return -1;
    }
    p = xcalloc(1, sizeof(*p));
    p->db = db;
    p->id = id;
    p->nparams = PQnparams(d);
    PQclear(d);
    if (p->nparams) {
        p->values = xcalloc((size_t)p->nparams, sizeof(*p->values));
        p->lengths = xcalloc((size_t)p->nparams, sizeof(*p->lengths));
        p->formats = xcalloc((size_t)p->nparams, sizeof(*p->formats));
        p->params = xcalloc((size_t)p->nparams, sizeof(*p->params));
    }
    p->row = -1;
    p->blob_col = -1;
    st->ops = dc->ops;
    st->lite = NULL;
    st->impl = p;
    return 0;
}

static void drop_result(struct pg_stmt *p)
{
    PQclear(p->res);
    p->res = NULL;
    p->row = -1;
    p->ntuples = 0;
    p->blob_col = -1;
}

static void pg_finalize(struct db_stmt *st)
{
    struct pg_stmt *p = ps(st);

    if (!p)
        return;
    drop_result(p);
    for (int i = 0; i < p->nparams; i++)
        free(p->params[i].buf);
    free(p->params);
    free(p->values);
    free(p->lengths);
    free(p->formats);
    free(p->blob);
    free(p);
    st->impl = NULL;
}

/* Parameter `idx` (from 1) holding `n` bytes, NUL-terminated; NULL when out of range. */
static char *param_buf(struct pg_stmt *p, int idx, size_t n)
{
    struct pg_param *q;

    if (idx < 1 || idx > p->nparams)
        return NULL;
    q = &p->params[idx - 1];
    if (q->cap < n + 1) {
        q->cap = n + 1 < 32 ? 32 : n + 1;
        free(q->buf);
        q->buf = xmalloc(q->cap);
    }
    return q->buf;
}

static int set_text(struct pg_stmt *p, int idx, const char *s, size_t n)
{
    char *b = param_buf(p, idx, n);

    if (!b)
        return PG_RC_ERROR;
    memcpy(b, s, n);
    b[n] = '\0';
    p->values[idx - 1] = b;
    p->lengths[idx - 1] = 0;
    p->formats[idx - 1] = 0;
    return 0;
}

static int pg_bind_int64(struct db_stmt *st, int idx, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%" PRId64, v);

    return set_text(ps(st), idx, t, (size_t)n);
}

static int pg_bind_double(struct db_stmt *st, int idx, double v)
{
    char t[40];
    int n;

    /* 17 significant digits: the double read back is the one bound */
    if (isnan(v))
        n = snprintf(t, sizeof(t), "NaN");
    else if (isinf(v))
        n = snprintf(t, sizeof(t), "%sInfinity", v < 0 ? "-" : "");
    else
        n = snprintf(t, sizeof(t), "%.17g", v);
    return set_text(ps(st), idx, t, (size_t)n);
}

static int pg_bind_text(struct db_stmt *st, int idx, const char *s, size_t n, bool copy)
{
    (void)copy; /* always copied: libpq takes text parameters NUL-terminated */
    return set_text(ps(st), idx, s, n);
}

static int pg_bind_blob(struct db_stmt *st, int idx, const void *v, size_t n)
{
    struct pg_stmt *p = ps(st);

    if (idx < 1 || idx > p->nparams || n > INT_MAX)
        return PG_RC_ERROR;
    /* borrowed until the reset (db.h), sent at the first step; "" for an empty blob, not NULL */
    p->values[idx - 1] = n ? v : "";
    p->lengths[idx - 1] = (int)n;
    p->formats[idx - 1] = 1;
    return 0;
}

static int pg_bind_null(struct db_stmt *st, int idx)
{
    struct pg_stmt *p = ps(st);

    if (idx < 1 || idx > p->nparams)
        return PG_RC_ERROR;
    p->values[idx - 1] = NULL;
    p->lengths[idx - 1] = 0;
    p->formats[idx - 1] = 0;
    return 0;
}

static int pg_bind_count(struct db_stmt *st)
{
    return ps(st)->nparams;
}

/*
 * Keeps a failed run's result (NULL: none, the reason in db->lost) on the
 * connection for store_db_err; the step's code.
 */
static int failed(struct pg_stmt *p, PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    note_failure(p->db, p->id, res);
    PQclear(p->db->failed);
    p->db->failed = res;
    return state && strncmp(state, "23", 2) == 0 ? PG_RC_CONSTRAINT : PG_RC_ERROR;
}

/* A result `res` of statement `p` that succeeded: its rows for db_step, its count of changes. */
static void take_result(struct pg_stmt *p, PGresult *res)
{
    const char *tag = PQcmdStatus(res);

    p->res = res;
    p->ntuples = PQntuples(res);
    p->row = -1;
    /* INSERT, UPDATE, DELETE (and MERGE) say how many rows they changed */
    if (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
        strncmp(tag, "DELETE", 6) == 0 || strncmp(tag, "MERGE", 5) == 0) {
        const char *n = PQcmdTuples(res);

        p->db->changes = n[0] ? strtoll(n, NULL, 10) : 0;
    }
}

static int pg_step(struct db_stmt *st)
{
    struct pg_stmt *p = ps(st);

    if (!p->res) {
        struct pg_db *db = p->db;
        char name[16];
        PGresult *res;
        ExecStatusType rs;
        int ok;

        err_clear(&db->lost);
        ok = ensure(db, p->id, &db->lost);
        if (ok == 1) {
            p->res = NULL;
            p->row = p->ntuples = 0;
            return DB_DONE; /* the ROLLBACK of a transaction its connection took with it */
        }
        /* prepared again on a connection made again */
        if (ok < 0 || store_pg_prepare(db->conn, p->id, &db->lost) < 0)
            return failed(p, NULL);
        snprintf(name, sizeof(name), "s%d", (int)p->id);
        res = PQexecPrepared(db->conn->db, name, p->nparams, p->values, p->lengths, p->formats, 0);
        rs = PQresultStatus(res);
        if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK)
            return failed(p, res);
        db->in_tx = PQtransactionStatus(db->conn->db) != PQTRANS_IDLE;
        take_result(p, res);
    }
    if (p->row + 1 < p->ntuples) {
        p->row++;
        p->blob_col = -1;
        return DB_ROW;
    }
    p->row = p->ntuples;
    return DB_DONE;
}

static void pg_reset(struct db_stmt *st)
{
    drop_result(ps(st));
}

static void pg_clear_bindings(struct db_stmt *st)
{
    struct pg_stmt *p = ps(st);

    for (int i = 0; i < p->nparams; i++) {
        p->values[i] = NULL;
        p->lengths[i] = 0;
        p->formats[i] = 0;
    }
}

/* The current row's value of `col`, NULL for SQL NULL (or no row, or no such column). */
static const char *value(struct pg_stmt *p, int col)
{
    if (!p->res || p->row < 0 || p->row >= p->ntuples || col < 0 || col >= PQnfields(p->res) ||
        PQgetisnull(p->res, p->row, col))
        return NULL;
    return PQgetvalue(p->res, p->row, col);
}

static int64_t pg_column_int64(struct db_stmt *st, int col)
{
    const char *v = value(ps(st), col);

    if (!v)
        return 0;
    /* booleans (an EXISTS not cast) as SQLite's 0 and 1 */
    if (v[0] == 't' && !v[1])
        return 1;
    if (v[0] == 'f' && !v[1])
        return 0;
    return strtoll(v, NULL, 10);
}

static double pg_column_double(struct db_stmt *st, int col)
{
    const char *v = value(ps(st), col);

    return v ? strtod(v, NULL) : 0.0;
}

static const char *pg_column_text(struct db_stmt *st, int col)
{
    return value(ps(st), col);
}

/* Decodes bytea column `col` of the current row into p->blob; false when NULL. */
static bool decode_blob(struct pg_stmt *p, int col)
{
    const char *v = value(p, col);
    unsigned char *u;
    size_t n = 0;

    if (!v)
        return false;
    if (p->blob_col == col && p->blob_row == p->row)
        return true;
    u = PQunescapeBytea((const unsigned char *)v, &n);
    if (!u)
        return false;
    free(p->blob);
    p->blob = xmalloc(n ? n : 1);
    memcpy(p->blob, u, n);
    PQfreemem(u);
    p->blob_len = n;
    p->blob_col = col;
    p->blob_row = p->row;
    return true;
}

static const void *pg_column_blob(struct db_stmt *st, int col)
{
    struct pg_stmt *p = ps(st);

    if (!p->res || col < 0 || col >= PQnfields(p->res))
        return NULL;
    if (PQftype(p->res, col) != PG_BYTEAOID) {
        /* a text column read as bytes, as SQLite allows */
        return value(p, col);
    }
    if (!decode_blob(p, col) || p->blob_len == 0)
        return NULL; /* SQLite's NULL for an empty blob too */
    return p->blob;
}

static size_t pg_column_len(struct db_stmt *st, int col)
{
    struct pg_stmt *p = ps(st);
    const char *v = value(p, col);

    if (!v)
        return 0;
    if (PQftype(p->res, col) == PG_BYTEAOID)
        return decode_blob(p, col) ? p->blob_len : 0;
    return (size_t)PQgetlength(p->res, p->row, col);
}

static bool pg_column_is_null(struct db_stmt *st, int col)
{
    return value(ps(st), col) == NULL;
}

static int64_t pg_changes(struct db_conn *c)
{
    return ((struct pg_db *)c->impl)->changes;
}

static bool pg_in_tx(struct db_conn *c)
{
    struct pg_db *db = c->impl;

    if (PQstatus(db->conn->db) != CONNECTION_OK)
        return db->in_tx; /* lost with the connection, still to be ended by the caller */
    return PQtransactionStatus(db->conn->db) != PQTRANS_IDLE;
}

static int pg_err(struct db_conn *c, int rc, const char *what, struct err *err)
{
    struct pg_db *db = c->impl;

    (void)rc;
    if (!db->failed && db->lost.code) {
        err_set(err, db->lost.code, "%s", db->lost.msg);
        return err_detail(err, "%s (while %s)", db->lost.detail, what);
    }
    return store_pg_err(db->conn, db->failed, what, err);
}

static bool pg_rc_constraint(int rc)
{
    return rc == PG_RC_CONSTRAINT;
}

static void pg_close(struct db_conn *c)
{
    struct pg_db *db = c->impl;

    if (!db)
        return;
    PQclear(db->failed);
    /* back to the pool: a transaction left open is rolled back there */
    store_pg_put(db->pool, db->conn);
    free(db);
    c->impl = NULL;
}

static const struct db_ops pg_ops = {
    .engine = DB_POSTGRESQL,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .bind_int64 = pg_bind_int64,
    .bind_double = pg_bind_double,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .bind_count = pg_bind_count,
    .step = pg_step,
    .reset = pg_reset,
    .clear_bindings = pg_clear_bindings,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_text = pg_column_text,
    .column_blob = pg_column_blob,
    .column_len = pg_column_len,
    .column_is_null = pg_column_is_null,
    .changes = pg_changes,
    .in_tx = pg_in_tx,
    .err = pg_err,
    .rc_constraint = pg_rc_constraint,
    .close = pg_close,
};

int store_db_pg_open(struct store_pg *pool, struct conn *c, struct err *err)
{
    struct store_pg_conn *pc = store_pg_get(pool, err);
    struct pg_db *db;

    if (!pc)
        return -1;
    db = xcalloc(1, sizeof(*db));
    db->pool = pool;
    db->conn = pc;
    c->db.ops = &pg_ops;
    c->db.lite = NULL;
    c->db.impl = db;
    c->sql = store_sql_pg;
    return 0;
}

/*
 * Pipeline mode: store_db_pg_send sends a statement with its bindings
 * without waiting for its answer (libpq queues it, and writes once its
 * buffer fills, reading answers meanwhile so that neither side waits on
 * the other), store_db_pg_sync ends the statements sent with a Sync and
 * flushes them, store_db_pg_recv reads their answers in the order they
 * were sent, and store_db_pg_pipeline_end reads whatever is left and leaves
 * pipeline mode. In a transaction, the first statement that fails aborts
 * it: the answers after it are PGRES_PIPELINE_ABORTED.
 */
int store_db_pg_send(struct db_stmt *st, struct err *err)
{
    struct pg_stmt *p = ps(st);
    struct pg_db *db = p->db;
    PGconn *pc = db->conn->db;
    char name[16];

    if (!db->pipelined) {
        err_clear(&db->lost);
        /* prepared before: libpq prepares nothing in pipeline mode but by its own sends */
        if (ensure(db, p->id, err) != 0 || store_pg_prepare(db->conn, p->id, err) < 0) {
            note_failure(db, p->id, NULL);
            return -1;
        }
        if (!PQenterPipelineMode(pc)) {
            note_failure(db, p->id, NULL);
            return store_pg_err(db->conn, NULL, "sending a statement", err);
        }
        db->pipelined = true;
        db->synced = false;
    }
    if (!db->conn->prepared[p->id]) {
        err_set(err, ERR_INTERNAL, "database error while sending a statement");
        return err_detail(err, "postgresql: statement %d not prepared before its pipeline",
                          (int)p->id);
    }
    snprintf(name, sizeof(name), "s%d", (int)p->id);
    if (!PQsendQueryPrepared(pc, name, p->nparams, p->values, p->lengths, p->formats, 0)) {
        note_failure(db, p->id, NULL);
        return store_pg_err(db->conn, NULL, "sending a statement", err);
    }
    return 0;
}

int store_db_pg_sync(struct conn *c, struct err *err)
{
    struct pg_db *db = c->db.impl;
    PGconn *pc = db->conn->db;

    if (!db->pipelined || db->synced)
        return 0;
    if (!PQpipelineSync(pc) || PQflush(pc) != 0) {
        note_failure(db, S_PG_LAUNCH_RECORD, NULL);
        return store_pg_err(db->conn, NULL, "sending statements", err);
    }
    db->synced = true;
    return 0;
}

int store_db_pg_recv(struct db_stmt *st)
{
    struct pg_stmt *p = ps(st);
    struct pg_db *db = p->db;
    PGconn *pc = db->conn->db;
    PGresult *res, *end;
    ExecStatusType rs;

    drop_result(p);
    res = PQgetResult(pc);
    if (!res) {
        err_clear(&db->lost);
        err_set(&db->lost, ERR_UNAVAILABLE, "the database is unreachable, try again");
        err_detail(&db->lost, "postgresql: no answer in the pipeline: %s", PQerrorMessage(pc));
        return failed(p, NULL);
    }
    /* each statement's answer ends with a NULL before the next one's */
    end = PQgetResult(pc);
    PQclear(end);
    rs = PQresultStatus(res);
    if (rs == PGRES_PIPELINE_ABORTED) {
        /* the failure that aborted it was the answer of a statement before (kept for store_db_err)
         */
        PQclear(res);
        return PG_RC_ERROR;
    }
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK)
        return failed(p, res);
    take_result(p, res);
    return 0;
}

void store_db_pg_pipeline_end(struct conn *c)
{
    struct pg_db *db = c->db.impl;
    PGconn *pc = db->conn->db;
    int nulls = 0;

    if (!db->pipelined)
        return;
    if (!db->synced && PQstatus(pc) == CONNECTION_OK && PQpipelineSync(pc))
        db->synced = true;
    /*
     * Up to the Sync's answer; two NULLs in a row mean nothing more is to
     * come (a Sync that could not be sent, a connection that broke).
     */
    while (db->synced && nulls < 2) {
        PGresult *res = PQgetResult(pc);
        ExecStatusType rs;

        if (!res) {
            nulls++;
            if (PQstatus(pc) != CONNECTION_OK)
                break;
            continue;
        }
        nulls = 0;
        rs = PQresultStatus(res);
        PQclear(res);
        if (rs == PGRES_PIPELINE_SYNC)
            break;
    }
    db->pipelined = db->synced = false;
    if (!PQexitPipelineMode(pc) && PQstatus(pc) == CONNECTION_OK) {
        /*
         * Answers still due that never came: the connection cannot be
         * trusted with another statement. Made again, without the
         * transaction, which the caller ends (ensure: tx_lost).
         */
        PQreset(pc);
        memset(db->conn->prepared, 0, sizeof(db->conn->prepared));
        db->tx_lost = db->in_tx;
        db->again = true;
        return;
    }
    if (PQstatus(pc) == CONNECTION_OK)
        db->in_tx = PQtransactionStatus(pc) != PQTRANS_IDLE;
}

bool store_db_pg_again(struct conn *c)
{
    return c->db.ops == &pg_ops && ((struct pg_db *)c->db.impl)->again;
}

bool store_db_pg_in_doubt(struct conn *c)
{
    return c->db.ops == &pg_ops && ((struct pg_db *)c->db.impl)->in_doubt;
}

bool store_path_is_pg(const char *path)
{
    return strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0;
}
