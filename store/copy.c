/*
 * store/copy.c - `ltibadges db copy`: a campus's sqlite database moved into
 * PostgreSQL, whole, in one transaction.
 *
 * The copy is driven by the table list below, in the order of the
 * schema's references (a row's parents are copied before it), and by the
 * schema itself: the columns of each table are PostgreSQL's
 * (information_schema, in their order), each read from the sqlite column
 * of the same name; a column on one side only, a type other than the five
 * the schema uses, or a table either side holds that the list does not
 * name refuses the copy before anything is written. So a migration that
 * adds a column needs nothing here, and one that adds a table fails the
 * copy (and its test) until the table is listed. Every value keeps its
 * bytes: ids, secrets, salts, assertion ids, images, scores (doubles
 * written with 17 digits), so hosted assertions verify and read the same
 * on PostgreSQL. Rows go through COPY FROM STDIN (text format), not an
 * INSERT each; the statements are literals, made per table by the macros
 * below, never printed together from names at run time.
 *
 * Not copied, as they have no use past their life: sessions that have
 * expired, rate limit windows that have ended, and nonces older than the
 * largest replay window (LIMIT_OAUTH_WINDOW_MAX), whether in `nonces` or
 * the sqlite launch writer's `nonce_log` (one row per digest: PostgreSQL's
 * are unique by digest); nor `nonces_v6` (digests of schema 8 and older,
 * which a PostgreSQL database never checks). The report says how many were
 * left, and why.
 *
 * The source is opened read-only and read in one read transaction: a
 * consistent snapshot even if a server still writes to it (what it writes
 * after is not copied: stop it first). The target is migrated first
 * (store_pg_migrate: under the advisory lock every instance takes), then
 * one transaction locks every table against writers (EXCLUSIVE: a
 * `serve` already on it waits), checks that they are empty (or, with
 * STORE_COPY_REPLACE, truncates them), copies, and moves each id sequence
 * past the largest id copied (setval), so that later inserts never
 * collide. Any failure rolls it all back.
 */
#include "base/base.h"
#include "store/pg.h"

#include <libpq-fe.h>
#include <math.h>
#include <sys/stat.h>

/* How long the copy waits for a table another session holds (a running server's transaction). */
#define COPY_LOCK_TIMEOUT "SET LOCAL lock_timeout = '30s'"
/* Bytes gathered before they go to libpq (which sends as its buffer fills). */
#define COPY_CHUNK 65536

/* One table of the schema: what is read on sqlite, and what is run on PostgreSQL. */
struct table {
    const char *name;
    /* sqlite: the rows to copy (SELECT * but for the filtered tables, their ?1 bound) */
    const char *select;
    /* sqlite: how many rows the table holds, when `select` leaves some out; else NULL */
    const char *total;
    /* ?1 of `select`: now, less this many seconds */
    int64_t back;
    /* why rows are left out (the report's), or NULL */
    const char *why;
    const char *lock, *any, *clear, *copy;
    /* PostgreSQL: moves the id sequence past the rows copied; NULL without one */
    const char *reseq;
};

#define STR_(x) #x
#define STR(x)  STR_(x)
/* one entry a line: clang-format would spread each brace of an initializer macro on a line */
/* clang-format off */
#define PG_SIDE(T)                                                                                 \
    "LOCK TABLE " T " IN EXCLUSIVE MODE", "SELECT 1 FROM " T " LIMIT 1",                           \
    "TRUNCATE " T " CASCADE", "COPY " T " FROM STDIN"
/* is_called false: the next id is max(id) + 1, or 1 for an empty table */
#define RESEQ(T)                                                                                   \
    "SELECT setval(pg_get_serial_sequence('" T "', 'id'), coalesce(max(id), 0) + 1, false) "       \
    "FROM " T
/* A table copied whole, with an id sequence or without. */
#define WITH_ID(T)    { T, "SELECT * FROM " T, NULL, 0, NULL, PG_SIDE(T), RESEQ(T) }
#define WITHOUT_ID(T) { T, "SELECT * FROM " T, NULL, 0, NULL, PG_SIDE(T), NULL }
/* clang-format on */

static const struct table tables[] = {
    WITH_ID("consumers"),
    WITH_ID("users"),
    WITH_ID("contexts"),
    WITH_ID("resource_links"),
    WITHOUT_ID("enrollments"),
    WITH_ID("outcome_bindings"),
    /* a learner's open page keeps working; an expired session would only be purged */
    { "sessions", "SELECT * FROM sessions WHERE expires_at > ?1", "SELECT count(*) FROM sessions",
      0, "expired", PG_SIDE("sessions"), RESEQ("sessions") },
    WITH_ID("badge_classes"),
    WITH_ID("context_groups"),
    WITHOUT_ID("context_group_members"),
    WITHOUT_ID("rules"),
    WITHOUT_ID("grades"),
    WITHOUT_ID("completions"),
    WITH_ID("awards"),
    WITHOUT_ID("tool_sourcedids"),
    WITH_ID("passbacks"),
    WITH_ID("email_confirmations"),
    /*
     * A launch replayed within the window is still refused after the move.
     * nonce_log holds what sqlite's launch writer had not moved into
     * `nonces` yet; one row per digest, the oldest, as PostgreSQL's
     * nonces_fp_unique wants.
     */
    { "nonces",
      "SELECT min(ts) AS ts, fp, consumer_id FROM (SELECT ts, fp, consumer_id FROM nonces "
      "UNION ALL SELECT ts, fp, consumer_id FROM nonce_log) WHERE ts >= ?1 GROUP BY fp",
      "SELECT (SELECT count(*) FROM nonces) + (SELECT count(*) FROM nonce_log)",
      LIMIT_OAUTH_WINDOW_MAX, "past the longest replay window (" STR(LIMIT_OAUTH_WINDOW_MAX) " s)",
      PG_SIDE("nonces"), NULL },
    WITHOUT_ID("backend_hooks"),
    /* a client at its limit stays there; a window that has ended counts nothing */
    { "rate_limits", "SELECT * FROM rate_limits WHERE expires_at > ?1",
      "SELECT count(*) FROM rate_limits", 0, "expired", PG_SIDE("rate_limits"), NULL },
};

#define NTABLES (sizeof(tables) / sizeof(tables[0]))
_Static_assert(NTABLES <= STORE_COPY_TABLES_MAX, "STORE_COPY_TABLES_MAX holds every table");

/* sqlite's own tables, read through another's select or left behind (see the top). */
static const char *const sqlite_only[] = { "nonce_log", "nonces_v6" };
/*
 * PostgreSQL's own, set by the migrations: its schema version, and the
 * count of consumer changes the instances' caches follow (bumped by its
 * trigger as the consumers arrive).
 */
static const char *const pg_only[] = { "ltibadges_schema", "cache_version" };

static bool pg_own(const char *name)
{
    for (size_t i = 0; i < sizeof(pg_only) / sizeof(pg_only[0]); i++) {
        if (strcmp(name, pg_only[i]) == 0)
            return true;
    }
    return false;
}

/* A table's columns as PostgreSQL has them, in order. */
static const char pg_columns_sql[] =
    "SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";
static const char pg_tables_sql[] =
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name";

enum coltype {
    COL_INT,
    COL_DOUBLE,
    COL_TEXT,
    COL_BYTEA,
};

/* Bytes on their way into a COPY. */
struct sink {
    PGconn *db;
    size_t len;
    bool failed;
    char buf[COPY_CHUNK];
};

static void sink_flush(struct sink *k)
{
    if (k->len && !k->failed && PQputCopyData(k->db, k->buf, (int)k->len) != 1)
        k->failed = true;
    k->len = 0;
}

static void sink_put(struct sink *k, const char *p, size_t n)
{
    while (n) {
        size_t room = sizeof(k->buf) - k->len, m = n < room ? n : room;

        memcpy(k->buf + k->len, p, m);
        k->len += m;
        p += m;
        n -= m;
        if (k->len == sizeof(k->buf))
            sink_flush(k);
    }
}

/* Text as COPY's text format reads it: backslash, newline, return and tab escaped. */
static void sink_text(struct sink *k, const char *p, size_t n)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        const char *esc = NULL;

        switch (p[i]) {
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            continue;
        }
        sink_put(k, p + run, i - run);
        sink_put(k, esc, 2);
        run = i + 1;
    }
    sink_put(k, p + run, n - run);
}

/* Bytes as bytea's hex input, its backslash escaped for COPY: \\x0a1b... */
static void sink_hex(struct sink *k, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char pair[2];

    sink_put(k, "\\\\x", 3);
    for (size_t i = 0; i < n; i++) {
        pair[0] = digits[p[i] >> 4];
        pair[1] = digits[p[i] & 15];
        sink_put(k, pair, 2);
    }
}

/* sqlite's error on the source, in the detail. */
static int src_err(sqlite3 *db, const char *what, struct err *err)
{
    err_set(err, ERR_INTERNAL, "reading the source failed while %s", what);
    return err_detail(err, "sqlite: %s", sqlite3_errmsg(db));
}

/* libpq's error on the target, its SQLSTATE deciding the code (store_pg_err). */
static int pg_fail(struct store_pg_conn *c, PGresult *res, const char *what, struct err *err)
{
    store_pg_err(c, res, what, err);
    PQclear(res);
    return -1;
}

/* Runs `sql` on the target: -1 with err unless it succeeds. */
static int pg_run(struct store_pg_conn *c, const char *sql, const char *what, struct err *err)
{
    return store_pg_exec(c, sql, what, err);
}

/* Whether `name` is a table of the list; its index in *i. */
static bool listed(const char *name, size_t *i)
{
    for (size_t k = 0; k < NTABLES; k++) {
        if (strcmp(tables[k].name, name) == 0) {
            if (i)
                *i = k;
            return true;
        }
    }
    return false;
}

/*
 * The source: an ltibadges database at this program's schema version,
 * with the tables of the list and none it does not know.
 */
static int src_check(sqlite3 *db, struct store_copy_report *out, struct err *err)
{
    sqlite3_stmt *st = NULL;
    bool seen[NTABLES] = { false };
    int rc, ret = -1;

    rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if ((rc & 0xff) == SQLITE_NOTADB)
            err_set(err, ERR_INVALID, "the source is not a database");
        src_err(db, "reading its schema version", err);
        goto out;
    }
    out->source_version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (out->source_version < 1) {
        ret = err_set(err, ERR_INVALID, "the source is not an ltibadges database");
        goto out;
    }
    if (out->source_version < store_schema_latest()) {
        ret = err_set(
            err, ERR_INVALID,
            "the source's schema version %d is older than this program's (%d): migrate it first "
            "with 'ltibadges db migrate'",
            out->source_version, store_schema_latest());
        goto out;
    }
    if (out->source_version > store_schema_latest()) {
        ret = err_set(
            err, ERR_INVALID,
            "the source's schema version %d is newer than this program's (%d): copy it with "
            "the newer ltibadges",
            out->source_version, store_schema_latest());
        goto out;
    }
    rc = sqlite3_prepare_v2(db,
                            "SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                            "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        src_err(db, "listing its tables", err);
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        bool known = false;
        size_t i;

        if (!name)
            continue;
        if (listed(name, &i))
            known = seen[i] = true;
        for (size_t k = 0; k < sizeof(sqlite_only) / sizeof(sqlite_only[0]); k++)
            known = known || strcmp(name, sqlite_only[k]) == 0;
        if (!known) {
            ret = err_set(err, ERR_INTERNAL,
                          "the source holds table '%.64s', which this program's copy does not know",
                          name);
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        src_err(db, "listing its tables", err);
        goto out;
    }
    for (size_t i = 0; i < NTABLES; i++) {
        if (!seen[i]) {
            ret =
                err_set(err, ERR_INVALID, "the source has no table '%s': not an ltibadges database",
                        tables[i].name);
            goto out;
        }
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

/* The target holds the list's tables and its schema table, no other. */
static int pg_check_tables(struct store_pg_conn *c, struct err *err)
{
    PGresult *res = PQexec(c->db, pg_tables_sql);
    bool seen[NTABLES] = { false };

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_fail(c, res, "listing the target's tables", err);
    for (int r = 0; r < PQntuples(res); r++) {
        const char *name = PQgetvalue(res, r, 0);
        size_t i;

        if (listed(name, &i))
            seen[i] = true;
        else if (!pg_own(name)) {
            err_set(err, ERR_CONFLICT,
                    "the target holds table '%.64s', which is not ltibadges': copy into a "
                    "database of its own",
                    name);
            PQclear(res);
            return -1;
        }
    }
    PQclear(res);
    for (size_t i = 0; i < NTABLES; i++) {
        if (!seen[i])
            return err_set(err, ERR_INTERNAL, "the target has no table '%s' after its migration",
                           tables[i].name);
    }
    return 0;
}

/* One value of the source row into the COPY stream, as PostgreSQL's column `type` reads it. */
static int put_value(struct sink *k, sqlite3_stmt *st, int col, enum coltype type,
                     const struct table *t, const char *colname, struct err *err)
{
    int vt = sqlite3_column_type(st, col);
    char num[64];

    if (vt == SQLITE_NULL) {
        sink_put(k, "\\N", 2);
        return 0;
    }
    switch (type) {
    case COL_INT:
        if (vt != SQLITE_INTEGER)
            break;
        snprintf(num, sizeof(num), "%" PRId64, (int64_t)sqlite3_column_int64(st, col));
        sink_put(k, num, strlen(num));
        return 0;
    case COL_DOUBLE:
        if (vt == SQLITE_INTEGER) {
            /* exactly, as sqlite holds it */
            snprintf(num, sizeof(num), "%" PRId64, (int64_t)sqlite3_column_int64(st, col));
        } else if (vt == SQLITE_FLOAT) {
            double d = sqlite3_column_double(st, col);

            /* 17 significant digits read back as the same double; sqlite holds no NaN */
            if (isinf(d))
                snprintf(num, sizeof(num), "%s", d > 0 ? "Infinity" : "-Infinity");
            else
                snprintf(num, sizeof(num), "%.17g", d);
        } else
            break;
        sink_put(k, num, strlen(num));
        return 0;
    case COL_TEXT: {
        const char *p = (const char *)sqlite3_column_text(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);

        if (!p || memchr(p, '\0', n))
            break;
        sink_text(k, p, n);
        return 0;
    }
    case COL_BYTEA: {
        const unsigned char *p = sqlite3_column_blob(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);

        if (!p && n)
            break;
        sink_hex(k, p, n);
        return 0;
    }
    }
    return err_set(err, ERR_INVALID,
                   "the source's table '%s' holds a value its column '%.64s' cannot take "
                   "on PostgreSQL",
                   t->name, colname);
}

/* The target's columns of `t`: names (into `res`, the caller's to clear) and types. */
static int pg_columns(struct store_pg_conn *c, const struct table *t, PGresult **res,
                      enum coltype *types, int max, struct err *err)
{
    const char *params[1] = { t->name };
    int n;

    *res = PQexecParams(c->db, pg_columns_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(*res) != PGRES_TUPLES_OK) {
        pg_fail(c, *res, "reading the target's columns", err);
        *res = NULL;
        return -1;
    }
    n = PQntuples(*res);
    if (n == 0 || n > max)
        return err_set(err, ERR_INTERNAL, "the target's table '%s' has %d columns", t->name, n);
    for (int i = 0; i < n; i++) {
        const char *type = PQgetvalue(*res, i, 1);

        if (strcmp(type, "bigint") == 0 || strcmp(type, "integer") == 0)
            types[i] = COL_INT;
        else if (strcmp(type, "double precision") == 0)
            types[i] = COL_DOUBLE;
        else if (strcmp(type, "text") == 0)
            types[i] = COL_TEXT;
        else if (strcmp(type, "bytea") == 0)
            types[i] = COL_BYTEA;
        else
            return err_set(err, ERR_INTERNAL,
                           "the target's column '%.64s' of table '%s' has type '%.32s', which "
                           "the copy does not know",
                           PQgetvalue(*res, i, 0), t->name, type);
    }
    return 0;
}

/* Ends the COPY in progress: sent whole, or abandoned with `why` (the server rolls it back). */
static int copy_end(struct store_pg_conn *c, const char *why, const char *what, struct err *err)
{
    PGresult *res;
    int ret = 0;

    if (PQputCopyEnd(c->db, why) != 1 && !why)
        ret = store_pg_err(c, NULL, what, err);
    while ((res = PQgetResult(c->db)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && ret == 0 && !why)
            ret = store_pg_err(c, res, what, err);
        PQclear(res);
    }
    return ret;
}

/* Copies table `t` from the source into the target; *copied: its rows. */
static int copy_table(sqlite3 *src, struct store_pg_conn *c, const struct table *t, int64_t now,
                      int64_t *copied, struct err *err)
{
    enum { MAXCOLS = 64 };
    enum coltype types[MAXCOLS];
    int map[MAXCOLS];
    PGresult *cols = NULL, *res = NULL;
    sqlite3_stmt *st = NULL;
    struct sink *k = NULL;
    char what[96];
    int n, ncols, rc, ret = -1;
    bool copying = false;

    *copied = 0;
    snprintf(what, sizeof(what), "copying table '%s'", t->name);
    if (pg_columns(c, t, &cols, types, MAXCOLS, err) < 0)
        goto out;
    n = PQntuples(cols);
    if (sqlite3_prepare_v2(src, t->select, -1, &st, NULL) != SQLITE_OK) {
        src_err(src, what, err);
        goto out;
    }
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, now - t->back);
    /* each of PostgreSQL's columns from sqlite's of the same name; none left over */
    ncols = sqlite3_column_count(st);
    if (ncols != n) {
        err_set(err, ERR_INTERNAL,
                "table '%s' has %d columns on the source and %d on the target: the schemas "
                "differ",
                t->name, ncols, n);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const char *name = PQgetvalue(cols, i, 0);

        map[i] = -1;
        for (int j = 0; j < ncols; j++) {
            const char *sname = sqlite3_column_name(st, j);

            if (sname && strcmp(sname, name) == 0)
                map[i] = j;
        }
        if (map[i] < 0) {
            err_set(err, ERR_INTERNAL,
                    "the source's table '%s' has no column '%.64s': the schemas differ", t->name,
                    name);
            goto out;
        }
    }

    res = PQexec(c->db, t->copy);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        pg_fail(c, res, what, err);
        res = NULL;
        goto out;
    }
    PQclear(res);
    res = NULL;
    copying = true;
    k = xmalloc(sizeof(*k));
    k->db = c->db;
    k->len = 0;
    k->failed = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < n; i++) {
            if (i)
                sink_put(k, "\t", 1);
            if (put_value(k, st, map[i], types[i], t, PQgetvalue(cols, i, 0), err) < 0)
                goto out;
        }
        sink_put(k, "\n", 1);
        if (k->failed) {
            store_pg_err(c, NULL, what, err);
            goto out;
        }
        (*copied)++;
    }
    if (rc != SQLITE_DONE) {
        src_err(src, what, err);
        goto out;
    }
    sink_flush(k);
    if (k->failed) {
        store_pg_err(c, NULL, what, err);
        goto out;
    }
    copying = false;
    if (copy_end(c, NULL, what, err) < 0)
        goto out;
    if (t->reseq && pg_run(c, t->reseq, what, err) < 0)
        goto out;
    ret = 0;
out:
    if (copying)
        copy_end(c, "ltibadges: the copy failed", what, NULL);
    free(k);
    sqlite3_finalize(st);
    PQclear(cols);
    return ret;
}

/* A count of the source (a table's `total`). */
static int src_count(sqlite3 *db, const char *sql, int64_t *n, struct err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return src_err(db, "counting rows", err);
    }
    *n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* The target's transaction: locked, emptied or found empty, copied, sequences moved. */
static int copy_all(sqlite3 *src, struct store_pg_conn *c, unsigned flags, int64_t now,
                    struct store_copy_report *out, struct err *err)
{
    PGresult *res;
    int64_t version = 0;

    if (pg_run(c, "BEGIN", "starting the copy", err) < 0 ||
        pg_run(c, COPY_LOCK_TIMEOUT, "starting the copy", err) < 0 ||
        pg_run(c, "SET LOCAL client_encoding = 'UTF8'", "starting the copy", err) < 0 ||
        /* TRUNCATE's notices of the tables it cascades to would go to stderr */
        pg_run(c, "SET LOCAL client_min_messages = 'warning'", "starting the copy", err) < 0 ||
        pg_check_tables(c, err) < 0)
        return -1;
    for (size_t i = 0; i < NTABLES; i++) {
        if (pg_run(c, tables[i].lock, "locking the target's tables", err) < 0)
            return -1;
    }
    /* the version the migration left, now that no one else migrates (their lock waits on ours) */
    res = PQexec(c->db, "SELECT version FROM ltibadges_schema WHERE id = 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        return pg_fail(c, res, "reading the target's schema version", err);
    if (str_to_i64(str_from_cstr(PQgetvalue(res, 0, 0)), 0, INT32_MAX, &version) < 0 ||
        version != out->source_version) {
        PQclear(res);
        return err_set(err, ERR_CONFLICT,
                       "the target's schema version changed during the copy: try again");
    }
    PQclear(res);
    for (size_t i = 0; i < NTABLES; i++) {
        const struct table *t = &tables[i];

        if (flags & STORE_COPY_REPLACE) {
            if (pg_run(c, t->clear, "emptying the target", err) < 0)
                return -1;
            continue;
        }
        res = PQexec(c->db, t->any);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            return pg_fail(c, res, "checking that the target is empty", err);
        if (PQntuples(res) > 0) {
            PQclear(res);
            return err_set(err, ERR_CONFLICT,
                           "the target is not empty (table '%s' has rows): copy into an empty "
                           "database, or give --replace",
                           t->name);
        }
        PQclear(res);
    }
    for (size_t i = 0; i < NTABLES; i++) {
        const struct table *t = &tables[i];
        int64_t total = 0;

        out->tables[i].table = t->name;
        out->tables[i].why = t->why;
        if (copy_table(src, c, t, now, &out->tables[i].copied, err) < 0)
            return -1;
        if (t->total && src_count(src, t->total, &total, err) < 0)
            return -1;
        out->tables[i].left =
            t->total && total > out->tables[i].copied ? total - out->tables[i].copied : 0;
        out->ntables = i + 1;
    }
    return pg_run(c, "COMMIT", "committing the copy", err);
}

/* Opens the source read-only (never creating it): ERR_NOTFOUND when there is none. */
static int src_open(const char *path, sqlite3 **db, struct err *err)
{
    struct stat sb;
    int rc;

    *db = NULL;
    if (stat(path, &sb) < 0) {
        err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_INTERNAL,
                errno == ENOENT ? "the source does not exist" : "the source cannot be read");
        return err_detail(err, "%s: %s", path, strerror(errno));
    }
    rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err_set(err, ERR_INTERNAL, "the source cannot be opened");
        err_detail(err, "sqlite: %s: %s", path, *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_busy_timeout(*db, LIMIT_STORE_BUSY_MS);
    /* a file from elsewhere runs no function of its schema's views and triggers */
    sqlite3_exec(*db, "PRAGMA trusted_schema = OFF", NULL, NULL, NULL);
    return 0;
}

int store_copy_to_pg(const char *path, const char *url, unsigned flags, int64_t now,
                     struct store_copy_report *out, struct err *err)
{
    struct store_pg *pg = NULL;
    struct store_pg_conn *c = NULL;
    sqlite3 *src = NULL;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (!store_path_is_pg(url))
        return err_set(err, ERR_INVALID, "the target must be a PostgreSQL URL (postgresql://...)");
    /* the source first: a source that cannot be copied leaves the target as it was */
    if (src_open(path, &src, err) < 0)
        return -1;
    /* one read transaction: every table as of one moment */
    if (sqlite3_exec(src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        src_err(src, "starting to read", err);
        goto out;
    }
    if (src_check(src, out, err) < 0)
        goto out;
    if (store_pg_open(&pg, url, 1, err) < 0 ||
        store_pg_migrate(pg, out->source_version, &out->target_before, &out->migrated, err) < 0)
        goto out;
    c = store_pg_get(pg, err);
    if (!c)
        goto out;
    if (copy_all(src, c, flags, now, out, err) < 0)
        goto out;
    ret = 0;
out:
    /* a transaction left open is rolled back: nothing of a failed copy stays */
    store_pg_put(pg, c);
    store_pg_close(pg);
    if (src)
        sqlite3_exec(src, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(src);
    if (ret < 0)
        out->ntables = 0;
    return ret;
}
