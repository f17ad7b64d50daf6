/*
 * tests/unit/store/copy.c - store_copy_to_pg (store/copy.c) against the
 * PostgreSQL server of LTIBADGES_TEST_DATABASE_URL, a fresh database per
 * test: values that COPY's text format must escape or could round (text
 * with tabs, newlines, backslashes and UTF-8; every byte value in an image;
 * doubles that 15 digits would change; the extreme 64-bit integers; NULLs)
 * read back from PostgreSQL as sqlite held them; a failure half-way (a row
 * PostgreSQL's foreign keys refuse) leaves the target with nothing; a value
 * of the wrong type and a table the copy does not know are refused before
 * the target is touched. The whole path (a server on each side) is
 * tests/integration/test_db_copy.py.
 *
 * Without LTIBADGES_TEST_DATABASE_URL the tests are skipped, saying so,
 * except under CI=true, where that is a failure.
 */
#include "base/base.h"
#include "store/store.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "pgserver.h"

static char dbname[64];
static char dburl[4096];
static char dir[64];
static char src[128];

/* A new empty database on the server (dburl: a postgresql:// URL naming it). */
static void fresh_db(void)
{
    pgserver_fresh_db(dbname, sizeof(dbname), dburl, sizeof(dburl));
}

/* The fresh database as a libpq connection. */
static PGconn *target(void)
{
    char conninfo[4096];
    PGconn *db;

    pgserver_conninfo(conninfo, sizeof(conninfo), dbname);
    db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(db));
    return db;
}

/* A new sqlite database at this program's schema (store_open makes it), at `src`. */
static void fresh_source(void)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;

    snprintf(src, sizeof(src), "%s/src-%d.db", dir, pgserver_ndbs);
    if (store_open(&s, src, 0, &err) < 0)
        fail_msg("store_open: %s (%s)", err.msg, err.detail);
    store_close(s);
}

/* Runs `sql` on the source, foreign keys off (the test makes what the store never would). */
static void src_exec(const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(src, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* The first column of the one row of `sql` on `db` (text; binary with `binary`), and its length. */
static PGresult *one(PGconn *db, const char *sql, bool binary)
{
    PGresult *res = PQexecParams(db, sql, 0, NULL, NULL, NULL, NULL, binary ? 1 : 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    return res;
}

static void check_text(PGconn *db, const char *sql, const char *want)
{
    PGresult *res = one(db, sql, false);

    if (PQgetisnull(res, 0, 0))
        fail_msg("%s: NULL, not '%s'", sql, want);
    assert_string_equal(PQgetvalue(res, 0, 0), want);
    PQclear(res);
}

static void check_double(PGconn *db, const char *sql, double want)
{
    PGresult *res = one(db, sql, false);
    double got = strtod(PQgetvalue(res, 0, 0), NULL);

    /* the same double, bit for bit */
    if (memcmp(&got, &want, sizeof(got)) != 0)
        fail_msg("%s: %s (%.17g), not %.17g", sql, PQgetvalue(res, 0, 0), got, want);
    PQclear(res);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/lbcopy-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return pgserver_setup();
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    pgserver_teardown();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The report's row of `table`. */
static const struct store_copy_table *row(const struct store_copy_report *r, const char *table)
{
    for (size_t i = 0; i < r->ntables; i++) {
        if (strcmp(r->tables[i].table, table) == 0)
            return &r->tables[i];
    }
    fail_msg("no table '%s' in the report", table);
    return NULL;
}

static void values_arrive_as_they_were(void **state)
{
    struct store_copy_report r;
    struct err err = ERR_INIT;
    char image_sql[1200];
    size_t n =
        (size_t)snprintf(image_sql, sizeof(image_sql), "UPDATE badge_classes SET image = x'");
    unsigned char bytes[256];
    PGconn *db;
    PGresult *res;

    (void)state;
    pgserver_need();
    fresh_db();
    fresh_source();
    /* every byte value, 00 to ff */
    for (int i = 0; i < 256; i++) {
        bytes[i] = (unsigned char)i;
        n += (size_t)snprintf(image_sql + n, sizeof(image_sql) - n, "%02x", i);
    }
    snprintf(image_sql + n, sizeof(image_sql) - n, "' WHERE id = 7");
    src_exec("INSERT INTO consumers(id, key, secret, name, created_at, outcome_hosts) VALUES "
             "(3, 'k-1', 'tab\there\\and\\\\two', 'line\nbreak\r\nña ✓ \"q\" ''s', "
             "9223372036854775807, NULL);"
             "INSERT INTO contexts(id, consumer_id, lti_context_id, created_at, updated_at, "
             "pass_mark) VALUES (5, 3, 'c\\N', -9223372036854775808, 0, 0.1);"
             "INSERT INTO badge_classes(id, slug, consumer_id, context_id, name, description, "
             "image, image_type, backend, created_at, updated_at, passback_score) VALUES "
             "(7, 's', 3, 5, '', 'd', x'00', 'image/png', 'hosted', 1, 2, 0.30000000000000004);"
             "INSERT INTO users(id, consumer_id, lti_user_id, created_at, updated_at) VALUES "
             "(11, 3, 'u', 1, 1);"
             "INSERT INTO resource_links(id, consumer_id, lti_resource_link_id, context_id, "
             "created_at, updated_at, points_possible) VALUES (13, 3, 'l', 5, 1, 1, 1e-300);"
             "INSERT INTO grades(user_id, resource_link_id, context_id, score, source, "
             "recorded_at) VALUES (11, 13, 5, 0.33333333333333331, 'cli', 1);");
    src_exec(image_sql);
    if (store_copy_to_pg(src, dburl, 0, 1000, &r, &err) < 0)
        fail_msg("copy: %s (%s)", err.msg, err.detail);
    assert_int_equal(r.source_version, store_schema_latest());
    assert_int_equal(r.target_before, 0);
    assert_int_equal(row(&r, "consumers")->copied, 1);
    assert_int_equal(row(&r, "grades")->copied, 1);

    db = target();
    check_text(db, "SELECT secret FROM consumers WHERE id = 3", "tab\there\\and\\\\two");
    check_text(db, "SELECT name FROM consumers WHERE id = 3", "line\nbreak\r\nña ✓ \"q\" 's");
    check_text(db, "SELECT created_at::text FROM consumers", "9223372036854775807");
    check_text(db, "SELECT (outcome_hosts IS NULL)::text FROM consumers", "true");
    check_text(db, "SELECT lti_context_id FROM contexts", "c\\N");
    check_text(db, "SELECT created_at::text FROM contexts", "-9223372036854775808");
    check_text(db, "SELECT name FROM badge_classes", "");
    check_double(db, "SELECT pass_mark FROM contexts", 0.1);
    check_double(db, "SELECT passback_score FROM badge_classes", 0.30000000000000004);
    check_double(db, "SELECT points_possible FROM resource_links", 1e-300);
    check_double(db, "SELECT score FROM grades", 1.0 / 3.0);
    res = one(db, "SELECT image FROM badge_classes", true);
    assert_int_equal(PQgetlength(res, 0, 0), 256);
    assert_memory_equal(PQgetvalue(res, 0, 0), bytes, 256);
    PQclear(res);
    /* the sequences past the ids copied; a table without rows from 1 */
    check_text(db, "SELECT nextval('consumers_id_seq')::text", "4");
    check_text(db, "SELECT nextval('badge_classes_id_seq')::text", "8");
    check_text(db, "SELECT nextval('awards_id_seq')::text", "1");
    PQfinish(db);
}

static void failure_half_way_leaves_nothing(void **state)
{
    struct store_copy_report r;
    struct err err = ERR_INIT;
    PGconn *db;
    char version[16];

    (void)state;
    pgserver_need();
    fresh_db();
    fresh_source();
    /* an award of a user that is not there: sqlite's foreign keys were off when it was written */
    src_exec(
        "INSERT INTO consumers(id, key, secret, name, created_at) VALUES (1, 'k', 's', 'n', 1);"
        "INSERT INTO badge_classes(id, slug, consumer_id, name, description, image, "
        "image_type, backend, created_at, updated_at) VALUES (1, 's', 1, 'n', 'd', x'00', "
        "'image/png', 'hosted', 1, 1);"
        "INSERT INTO awards(id, uid, badge_class_id, user_id, reason, salt, state, "
        "created_at, updated_at) VALUES (1, 'u', 1, 99, 'manual', 'salt', 'queued', 1, 1);");
    assert_int_equal(store_copy_to_pg(src, dburl, 0, 1000, &r, &err), -1);
    assert_int_equal(err.code, ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "copying table 'awards'"));
    assert_int_equal(r.ntables, 0);
    db = target();
    /* migrated, and empty: the consumers and badges copied before the awards were rolled back */
    snprintf(version, sizeof(version), "%d", store_schema_latest());
    check_text(db, "SELECT version::text FROM ltibadges_schema", version);
    check_text(db, "SELECT count(*)::text FROM consumers", "0");
    check_text(db, "SELECT count(*)::text FROM badge_classes", "0");
    PQfinish(db);
}

static void refused_before_the_target_is_touched(void **state)
{
    struct store_copy_report r;
    struct err err = ERR_INIT;
    PGconn *db;

    (void)state;
    pgserver_need();
    fresh_db();
    /* text where PostgreSQL has an integer */
    fresh_source();
    src_exec("INSERT INTO consumers(id, key, secret, name, created_at) VALUES "
             "(1, 'k', 's', 'n', 'yesterday')");
    assert_int_equal(store_copy_to_pg(src, dburl, 0, 1000, &r, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_string_equal(err.msg, "the source's table 'consumers' holds a value its column "
                                 "'created_at' cannot take on PostgreSQL");
    /* a table the copy does not know: refused before the target is even migrated */
    fresh_db();
    fresh_source();
    src_exec("CREATE TABLE extra_things (id INTEGER PRIMARY KEY)");
    err_clear(&err);
    assert_int_equal(store_copy_to_pg(src, dburl, 0, 1000, &r, &err), -1);
    assert_string_equal(err.msg, "the source holds table 'extra_things', which this program's "
                                 "copy does not know");
    db = target();
    check_text(db, "SELECT (to_regclass('ltibadges_schema') IS NULL)::text", "true");
    PQfinish(db);
    /* not a PostgreSQL URL */
    err_clear(&err);
    assert_int_equal(store_copy_to_pg(src, src, 0, 1000, &r, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_arrive_as_they_were),
        cmocka_unit_test(failure_half_way_leaves_nothing),
        cmocka_unit_test(refused_before_the_target_is_touched),
    };

    pgserver_init("unit_store_copy", "lbcu");
    return cmocka_run_group_tests(tests, setup, teardown);
}
