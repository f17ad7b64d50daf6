/*
 * tests/unit/store/pgserver.h - the PostgreSQL server of the tests of the
 * store's PostgreSQL parts (tests/unit/store/pg.c, copy.c): the one of
 * LTIBADGES_TEST_DATABASE_URL (scripts/test.sh starts a throwaway one,
 * tests/pgserver.sh). Without it a test skips, saying so, except under
 * CI=true, where that is a failure. Each test makes a fresh database on it
 * (pgserver_fresh_db), and the group's teardown drops them all.
 *
 * Include after <cmocka.h>; call pgserver_init(NAME, PREFIX) in main before
 * the group runs, and pgserver_setup/pgserver_teardown from the group's.
 */
#ifndef TESTS_UNIT_STORE_PGSERVER_H
#define TESTS_UNIT_STORE_PGSERVER_H

#include <libpq-fe.h>
#include <stdlib.h>
#include <unistd.h>

static const char *pgserver_url; /* NULL: no server */
static const char *pgserver_test;
static const char *pgserver_prefix;
static PGconn *pgserver_admin;
static int pgserver_ndbs;
static bool pgserver_said_skipped;

/* `test`: the program's name in the skip message; `prefix`: its databases' names start with it */
static void pgserver_init(const char *test, const char *prefix)
{
    pgserver_test = test;
    pgserver_prefix = prefix;
    pgserver_url = getenv("LTIBADGES_TEST_DATABASE_URL");
    if (pgserver_url && !pgserver_url[0])
        pgserver_url = NULL;
}

/* The server's tests need it: skipped without it, failed under CI. */
static void pgserver_need(void)
{
    const char *ci = getenv("CI");

    if (pgserver_url)
        return;
    if (ci && strcmp(ci, "true") == 0)
        fail_msg("LTIBADGES_TEST_DATABASE_URL is not set under CI=true: scripts/test.sh starts "
                 "a PostgreSQL server for it (tests/pgserver.sh)");
    if (!pgserver_said_skipped)
        printf("SKIPPED %s: LTIBADGES_TEST_DATABASE_URL not set (scripts/test.sh sets it)\n",
               pgserver_test);
    pgserver_said_skipped = true;
    skip();
}

/* Appends key='value' (libpq's quoting) to `out`. */
static void pgserver_conninfo_add(char *out, size_t cap, const char *key, const char *v)
{
    size_t n = strlen(out);

    n += (size_t)snprintf(out + n, cap - n, "%s%s='", n ? " " : "", key);
    for (; *v && n + 3 < cap; v++) {
        if (*v == '\'' || *v == '\\')
            out[n++] = '\\';
        out[n++] = *v;
    }
    snprintf(out + n, cap - n, "'");
}

/* The server's connection string naming the database `name` instead of its own. */
static void pgserver_conninfo(char *out, size_t cap, const char *name)
{
    PQconninfoOption *opts = PQconninfoParse(pgserver_url, NULL);

    assert_non_null(opts);
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "dbname") == 0)
            pgserver_conninfo_add(out, cap, "dbname", name);
        else if (o->val && o->val[0])
            pgserver_conninfo_add(out, cap, o->keyword, o->val);
    }
    PQconninfoFree(opts);
}

/*
 * A new empty database on the server: its name in `name`, and in `url`
 * the server's URL (tests/pgserver.sh's postgresql://USER:PW@/ltibadges?
 * host=DIR) naming it.
 */
static void pgserver_fresh_db(char *name, size_t namecap, char *url, size_t urlcap)
{
    char sql[128];
    PGresult *res;
    const char *q, *slash;

    snprintf(name, namecap, "%s_%ld_%d", pgserver_prefix, (long)getpid(), pgserver_ndbs++);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    res = PQexec(pgserver_admin, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(pgserver_admin));
    PQclear(res);
    q = strchr(pgserver_url, '?');
    if (!q)
        q = pgserver_url + strlen(pgserver_url);
    slash = q;
    while (slash > pgserver_url && *slash != '/')
        slash--;
    snprintf(url, urlcap, "%.*s/%s%s", (int)(slash - pgserver_url), pgserver_url, name, q);
}

/* The group's setup: the connection that creates and drops the databases. */
static int pgserver_setup(void)
{
    if (!pgserver_url)
        return 0;
    pgserver_admin = PQconnectdb(pgserver_url);
    if (PQstatus(pgserver_admin) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to LTIBADGES_TEST_DATABASE_URL: %s",
                PQerrorMessage(pgserver_admin));
        return -1;
    }
    return 0;
}

/* The group's teardown: every database the tests made, dropped. */
static void pgserver_teardown(void)
{
    if (!pgserver_admin)
        return;
    for (int i = 0; i < pgserver_ndbs; i++) {
        char sql[128];

        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s_%ld_%d WITH (FORCE)",
                 pgserver_prefix, (long)getpid(), i);
        PQclear(PQexec(pgserver_admin, sql));
    }
    PQfinish(pgserver_admin);
    pgserver_admin = NULL;
}

#endif
