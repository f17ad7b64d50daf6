/*
 * store/pg.c - PostgreSQL connections: the pool, prepared statements, errors.
 *
 * Several instances share one PostgreSQL database (issue 23). Each holds a
 * pool of up to [database] pool connections, made as they are first needed
 * (one at open, so that an unreachable database stops the start with
 * libpq's reason). A thread takes a connection for an operation and gives
 * it back; a connection found broken when taken (the server restarted, a
 * network cut) is connected again (store_pg_revive), and so is one a
 * struct conn of the store keeps, before its next transaction or statement
 * outside one (db_pg.c), never while a transaction is open on it: a
 * statement whose connection broke is not sent again on its own, since it
 * may have committed. Transactions run again whole instead (store_tx_again:
 * the launch batch, the outbox claims, the award rules' transactions),
 * else the caller answers 503 and the client retries.
 *
 * Statements are the table store_sql_pg (sql_pg.c) under the same ids as
 * sqlite's: each is prepared once per connection, on first use, as "s<id>",
 * and run with PQexecPrepared and text parameters (bytea in binary).
 *
 * The URL is libpq's to read (sslmode, sslrootcert, several hosts, a socket
 * folder as ?host=); the password comes from it, PGPASSFILE or PGPASSWORD
 * (libpq's own order), and never goes into a message or a log:
 * store_pg_url_redact() is how a URL is shown.
 */
#include "base/base.h"
#include "store/pg.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>

/* How long a connection attempt may take unless the URL says (connect_timeout), in seconds. */
#define PG_CONNECT_TIMEOUT "10"

struct store_pg {
    char *conninfo; /* the URL, as given */
    char *password; /* the URL's own password (scrubbed from libpq's messages), or NULL */
    unsigned size;  /* [database] pool */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct store_pg_conn *free;
    unsigned made; /* connections made, free or taken */
};

/* Appends [p, p+n) to out (capacity cap, used *len), truncating; always NUL-terminated. */
static void put(char *out, size_t cap, size_t *len, const char *p, size_t n)
{
    if (cap == 0)
        return;
    if (*len + 1 >= cap)
        n = 0;
    else if (n > cap - 1 - *len)
        n = cap - 1 - *len;
    memcpy(out + *len, p, n);
    *len += n;
    out[*len] = '\0';
}

void store_pg_url_redact(const char *url, char *out, size_t outlen)
{
    const char *auth = strstr(url, "://");
    const char *end, *at = NULL, *colon = NULL, *q;
    size_t len = 0;

    if (outlen)
        out[0] = '\0';
    if (!auth) {
        /* not a URL: a key=value string could hold password= anywhere */
        put(out, outlen, &len, "***", 3);
        return;
    }
    auth += 3;
    /* libpq reads the authority up to the first '/' (its own scan stops at '@' or '/') */
    end = auth + strcspn(auth, "/");
    for (const char *p = auth; p < end; p++) {
        if (*p == '@')
            at = p;
    }
    if (at) {
        colon = memchr(auth, ':', (size_t)(at - auth));
    }
    if (colon) {
        put(out, outlen, &len, url, (size_t)(colon + 1 - url));
        put(out, outlen, &len, "***", 3);
        q = at;
    } else
        q = url;
    /* the rest, with the value of every password= parameter replaced */
    while (*q) {
        const char *amp;

        if ((q[0] == '?' || q[0] == '&') && strncmp(q + 1, "password=", 9) == 0) {
            put(out, outlen, &len, q, 10);
            put(out, outlen, &len, "***", 3);
            amp = strchr(q + 10, '&');
            q = amp ? amp : q + strlen(q);
            continue;
        }
        amp = q + 1 + strcspn(q + 1, "?&");
        put(out, outlen, &len, q, (size_t)(amp - q));
        q = amp;
    }
}

/*
 * libpq's message into err->detail, and its first line (what failed; the
 * next are hints) into the message with `msg_too`; newlines and tabs made
 * blanks, and the URL's password, should libpq ever quote it, "***".
 */
static void set_reason(struct err *err, const char *password, const char *text, bool msg_too)
{
    char clean[sizeof(err->detail)];
    size_t len = 0, first = 0, plen = password ? strlen(password) : 0;
    const char *p = text ? text : "";

    clean[0] = '\0';
    while (*p) {
        if (plen && strncmp(p, password, plen) == 0) {
            put(clean, sizeof(clean), &len, "***", 3);
            p += plen;
            continue;
        }
        if (*p == '\n' || *p == '\r') {
            /* libpq ends its messages with a newline, and puts hints on lines of their own */
            if (!first)
                first = len;
            if (p[1])
                put(clean, sizeof(clean), &len, " ", 1);
        } else
            put(clean, sizeof(clean), &len, *p == '\t' ? " " : p, 1);
        p++;
    }
    if (msg_too)
        err_set(err, ERR_UNAVAILABLE, "cannot connect to the database: %.*s",
                (int)(first ? first : len), clean);
    err_detail(err, "postgresql: %s", clean);
}

/* A new connection to pg's database; NULL with err set. */
static struct pg_conn *connect_db(struct store_pg *pg, struct err *err)
{
    /*
     * connect_timeout and application_name first: the URL's own, when it
     * has them, come later and win (libpq takes the last value of a key)
     */
    static const char *const keys[] = { "connect_timeout",
                                        "keepalives_idle",
                                        "keepalives_interval",
                                        "keepalives_count",
                                        "tcp_user_timeout",
                                        "fallback_application_name",
                                        "dbname",
                                        NULL };
    /*
     * TCP keepalives and a user timeout: a server whose network was cut
     * answers nothing, and a statement sent to it would wait for the
     * kernel's own retransmission timeout (15 minutes); with these it fails
     * in about 30 s, the connection is made again, and its requests are
     * answered 503 meanwhile (ignored on a Unix socket)
     */
    const char *values[] = { PG_CONNECT_TIMEOUT, "10",         "5", "3", "30000",
                             "ltibadges",        pg->conninfo, NULL };
    PGconn *db = PQconnectdbParams(keys, values, 1);

    if (!db) {
        err_set(err, ERR_INTERNAL, "out of memory connecting to the database");
        return NULL;
    }
    if (PQstatus(db) != CONNECTION_OK) {
        set_reason(err, pg->password, PQerrorMessage(db), true);
        PQfinish(db);
        return NULL;
    }
    return db;
}

int store_pg_open(struct store_pg **out, const char *url, unsigned pool, struct err *err)
{
    struct store_pg *pg = NULL;
    struct store_pg_conn *c = NULL;
    PQconninfoOption *opts = NULL;
    char *perr = NULL;
    int ret = 0;

    *out = NULL;
    if (pool == 0 || pool > LIMIT_DB_POOL_MAX)
        return err_set(err, ERR_INVALID, "the database pool must hold 1 to %d connections",
                       LIMIT_DB_POOL_MAX);
    /* libpq reads the URL; its complaint names the part it could not read, never the password */
    opts = PQconninfoParse(url, &perr);
    if (!opts) {
        ret = err_set(err, ERR_INVALID, "the database URL cannot be read");
        if (perr)
            set_reason(err, NULL, perr, false);
        PQfreemem(perr);
        return ret;
    }
    pg = xcalloc(1, sizeof(*pg));
    pg->conninfo = xstrdup(url);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
            pg->password = xstrdup(o->val);
    }
    PQconninfoFree(opts);
    pg->size = pool;
    pthread_mutex_init(&pg->mu, NULL);
    pthread_cond_init(&pg->cv, NULL);

    c = xcalloc(1, sizeof(*c));
    c->db = connect_db(pg, err);
    if (!c->db) {
        free(c);
        store_pg_close(pg);
        return -1;
    }
    pg->made = 1;
    pg->free = c;
    *out = pg;
    return 0;
}

void store_pg_resize(struct store_pg *pg, unsigned pool)
{
    pthread_mutex_lock(&pg->mu);
    pg->size = pool;
    pthread_cond_broadcast(&pg->cv);
    pthread_mutex_unlock(&pg->mu);
}

void store_pg_close(struct store_pg *pg)
{
    if (!pg)
        return;
    /* every connection is back: the callers are done */
    while (pg->free) {
        struct store_pg_conn *c = pg->free;

        pg->free = c->next;
        PQfinish(c->db);
        free(c);
    }
    pthread_mutex_destroy(&pg->mu);
    pthread_cond_destroy(&pg->cv);
    free(pg->conninfo);
    free(pg->password);
    free(pg);
}

/*
 * Whether an idle connection still stands. The server, ending it (a restart,
 * pg_terminate_backend, an idle timeout), sends a last error and closes; an
 * idle pool connection is sent nothing else (it listens to no channel), so
 * anything to read, or a hang-up, means it is gone. libpq alone would not
 * know before the next statement failed on it.
 */
bool store_pg_alive(struct store_pg_conn *c)
{
    PGconn *db = c->db;
    struct pollfd p = { .fd = PQsocket(db), .events = POLLIN };

    if (PQstatus(db) != CONNECTION_OK || p.fd < 0)
        return false;
    return poll(&p, 1, 0) == 0;
}

int store_pg_revive(struct store_pg *pg, struct store_pg_conn *c, struct err *err)
{
    if (store_pg_alive(c))
        return 0;
    /* broken since it was last used: connect again; its prepared statements are gone */
    PQreset(c->db);
    memset(c->prepared, 0, sizeof(c->prepared));
    if (PQstatus(c->db) == CONNECTION_OK)
        return 0;
    /* for a request's answer; libpq's reason (which socket or host failed how) to the log */
    err_set(err, ERR_UNAVAILABLE, "the database is unreachable, try again");
    set_reason(err, pg->password, PQerrorMessage(c->db), false);
    return -1;
}

struct store_pg_conn *store_pg_get(struct store_pg *pg, struct err *err)
{
    struct store_pg_conn *c = NULL;

    pthread_mutex_lock(&pg->mu);
    while (!pg->free && pg->made >= pg->size)
        pthread_cond_wait(&pg->cv, &pg->mu);
    if (pg->free) {
        c = pg->free;
        pg->free = c->next;
        c->next = NULL;
    } else
        pg->made++; /* a place for a new one, made below without the lock */
    pthread_mutex_unlock(&pg->mu);

    if (c) {
        if (store_pg_revive(pg, c, err) == 0)
            return c;
        /* kept in the pool, to be tried again by the next caller */
        store_pg_put(pg, c);
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->db = connect_db(pg, err);
    if (c->db)
        return c;
    free(c);
    pthread_mutex_lock(&pg->mu);
    pg->made--;
    pthread_cond_signal(&pg->cv);
    pthread_mutex_unlock(&pg->mu);
    return NULL;
}

void store_pg_put(struct store_pg *pg, struct store_pg_conn *c)
{
    if (!c)
        return;
    if (PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE) {
        /* an operation that failed half-way: nothing of it stays */
        PGresult *res = PQexec(c->db, "ROLLBACK");

        PQclear(res);
    }
    pthread_mutex_lock(&pg->mu);
    c->next = pg->free;
    pg->free = c;
    pthread_cond_signal(&pg->cv);
    pthread_mutex_unlock(&pg->mu);
}

bool store_pg_lost(struct store_pg_conn *c, const struct pg_result *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return PQstatus(c->db) != CONNECTION_OK || (state && strncmp(state, "08", 2) == 0) ||
           (state && (strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
                      strcmp(state, "57P03") == 0));
}

bool store_pg_state_retry(const char *state)
{
    return state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);
}

int store_pg_err(struct store_pg_conn *c, const struct pg_result *res, const char *what,
                 struct err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *text = res ? PQresultErrorMessage(res) : "";

    if (!text || !text[0])
        text = PQerrorMessage(c->db);
    if (store_pg_lost(c, res))
        /* the connection is gone, or the server is going down or not up yet */
        err_set(err, ERR_UNAVAILABLE, "the database is unreachable, try again");
    else if (store_pg_state_retry(state))
        /* what a caller sees once the transaction's retries (store_tx_again) ran out */
        err_set(err, ERR_UNAVAILABLE, "the database is busy, try again");
    else
        err_set(err, ERR_INTERNAL, "database error while %s", what);
    return err_detail(err, "postgresql: %s (%s) while %s", text ? text : "",
                      state ? state : "no sqlstate", what);
}

int store_pg_prepare(struct store_pg_conn *c, enum stmt_id id, struct err *err)
{
    char name[16];
    PGresult *res;

    if ((int)id < 0 || id >= S__COUNT || !store_sql_pg[id])
        return err_set(err, ERR_INVALID, "statement %d has no PostgreSQL form", (int)id);
    if (c->prepared[id])
        return 0;
    snprintf(name, sizeof(name), "s%d", (int)id);
    /* the parameters' types are PostgreSQL's to infer from the statement, casts where it cannot */
    res = PQprepare(c->db, name, store_sql_pg[id], 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        store_pg_err(c, res, "preparing a statement", err);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    c->prepared[id] = true;
    return 0;
}

struct pg_result *store_pg_run(struct store_pg_conn *c, enum stmt_id id, int n,
                               const char *const *values, const int *lengths, const int *formats,
                               struct err *err)
{
    char name[16];
    PGresult *res;
    ExecStatusType st;

    if (store_pg_prepare(c, id, err) < 0)
        return NULL;
    snprintf(name, sizeof(name), "s%d", (int)id);
    res = PQexecPrepared(c->db, name, n, values, lengths, formats, 0);
    st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    store_pg_err(c, res, "running a statement", err);
    PQclear(res);
    return NULL;
}

int store_pg_exec(struct store_pg_conn *c, const char *sql, const char *what, struct err *err)
{
    PGresult *res = PQexec(c->db, sql);
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return 0;
    }
    store_pg_err(c, res, what, err);
    PQclear(res);
    return -1;
}
