/*
 * tests/unit/store/dbfile.h - the store tests' database: a fresh one per
 * test, its removal, and reads and writes straight to it (not through the
 * store under test).
 *
 * On SQLite (the default) a file: its path in `dbpath`, removed with its
 * WAL and shared-memory files. With LTIBADGES_TEST_ENGINE=postgresql (the
 * *_pg variants of tests/CMakeLists.txt) a fresh database on the server of
 * LTIBADGES_TEST_DATABASE_URL (scripts/test.sh starts a throwaway one), its
 * URL in `dbpath`, dropped at the end. Without that server the PostgreSQL
 * variant skips, saying so, except under CI=true, where it fails.
 *
 * peek_int and poke run SQL on the database itself; a test whose SQL is
 * SQLite's alone (PRAGMAs, triggers, x'' literals, nonce_log) starts with
 * SQLITE_ONLY("why"), which skips it on PostgreSQL.
 */
#ifndef TESTS_UNIT_STORE_DBFILE_H
#define TESTS_UNIT_STORE_DBFILE_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char dbpath[4096];
static bool db_is_pg;
static int db_serial;

/* Whether this run is the PostgreSQL variant. */
static bool dbfile_pg(void)
{
    const char *e = getenv("LTIBADGES_TEST_ENGINE");

    return e && strcmp(e, "postgresql") == 0;
}

/* The test server's URL, or a skip (a failure under CI=true) without one. */
static const char *dbfile_server(void)
{
    const char *url = getenv("LTIBADGES_TEST_DATABASE_URL");
    const char *ci = getenv("CI");

    if (url && url[0])
        return url;
    if (ci && strcmp(ci, "true") == 0)
        fail_msg("LTIBADGES_TEST_DATABASE_URL is not set under CI=true: scripts/test.sh starts "
                 "a PostgreSQL server for it (tests/pgserver.sh)");
    printf("SKIPPED (PostgreSQL variant): LTIBADGES_TEST_DATABASE_URL not set\n");
    skip();
    return NULL;
}

/* Runs `sql` on the server's own database (CREATE and DROP DATABASE). */
static void dbfile_server_exec(const char *sql)
{
    PGconn *db = PQconnectdb(dbfile_server());
    PGresult *res;

    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("cannot connect to LTIBADGES_TEST_DATABASE_URL: %s", PQerrorMessage(db));
    res = PQexec(db, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    PQclear(res);
    PQfinish(db);
}

/* The database name of this process's current test database. */
static void dbfile_pg_name(char *out, size_t n)
{
    snprintf(out, n, "lbu_%ld_%d", (long)getpid(), db_serial);
}

static void dbfile_new(const char *tag)
{
    db_is_pg = dbfile_pg();
    if (db_is_pg) {
        const char *url = dbfile_server();
        const char *auth = strstr(url, "://");
        const char *path, *query;
        char name[64], sql[160];

        assert_non_null(auth);
        db_serial++;
        dbfile_pg_name(name, sizeof(name));
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
        dbfile_server_exec(sql);
        /* the server's URL with this database's name as its path */
        path = strchr(auth + 3, '/');
        query = strchr(auth + 3, '?');
        if (!path || (query && path > query))
            path = query ? query : url + strlen(url);
        snprintf(dbpath, sizeof(dbpath), "%.*s/%s%s", (int)(path - url), url, name,
                 query ? query : "");
        return;
    }
    snprintf(dbpath, sizeof(dbpath), "/tmp/ltibadges-unit-%s%d-%ld.db", tag, (int)getpid(),
             (long)util_mono_ns());
}

static void dbfile_remove(void)
{
    char p[4200];

    if (db_is_pg) {
        char name[64];

        dbfile_pg_name(name, sizeof(name));
        snprintf(p, sizeof(p), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
        dbfile_server_exec(p);
        return;
    }
    unlink(dbpath);
    snprintf(p, sizeof(p), "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", dbpath);
    unlink(p);
}

/* Skips a test whose checks are SQLite's alone on the PostgreSQL variant, saying why. */
#define SQLITE_ONLY(why)                                                                           \
 do {                                                                                              \
  if (dbfile_pg()) {                                                                               \
   printf("SKIPPED %s on PostgreSQL: %s\n", __func__, why);                                        \
   skip();                                                                                         \
  }                                                                                                \
 } while (0)

/* The first row's column 0 of `sql` on PostgreSQL, into out; false without a row. */
__attribute__((unused)) static bool pg_query1(const char *sql, char *out, size_t n)
{
    PGconn *db = PQconnectdb(dbpath);
    PGresult *res;
    bool row;

    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("cannot connect to the test database: %s", PQerrorMessage(db));
    res = PQexec(db, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    row = PQntuples(res) > 0;
    if (row)
        snprintf(out, n, "%s", PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(db);
    return row;
}

/* Column 0 of the first row of `sql`, read-only on the database; -1 without a row. */
static int64_t peek_int(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    if (db_is_pg) {
        char t[64];

        if (!pg_query1(sql, t, sizeof(t)))
            return -1;
        /* a comparison selected is a boolean there */
        if (strcmp(t, "t") == 0 || strcmp(t, "f") == 0)
            return t[0] == 't';
        return strtoll(t, NULL, 10);
    }
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Runs `sql` (no rows) on the database. */
__attribute__((unused)) static void poke_db(const char *sql)
{
    sqlite3 *db = NULL;

    if (db_is_pg) {
        PGconn *pg = PQconnectdb(dbpath);
        PGresult *res;

        if (PQstatus(pg) != CONNECTION_OK)
            fail_msg("cannot connect to the test database: %s", PQerrorMessage(pg));
        res = PQexec(pg, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(pg));
        PQclear(res);
        PQfinish(pg);
        return;
    }
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

#endif
