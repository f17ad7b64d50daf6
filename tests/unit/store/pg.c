/*
 * tests/unit/store/pg.c - the PostgreSQL side of the store against a real
 * server: the one of LTIBADGES_TEST_DATABASE_URL (scripts/test.sh starts a
 * throwaway one, tests/pgserver.sh). Each test makes its own database and
 * drops it. A fresh database migrated to the current schema version; every
 * statement of store_sql_pg prepared on it, and exactly the sqlite-only
 * ids without one; two processes migrating one database at once (one
 * migrates, the other finds it done); a newer schema refused; a pool
 * connection killed by the server made again; faults a store's
 * transactions never show their callers (a deadlock with another
 * connection, a connection the server ended half-way: the transaction runs
 * again, whole) and every connection of a store ended at once (the writer's,
 * the readers' and the admin's: launches, sessions and writes go on); an
 * unreachable server at open (a clear message, no password in it); and the
 * URL's redacted form.
 *
 * Without LTIBADGES_TEST_DATABASE_URL the server's tests are skipped,
 * saying so, except under CI=true, where that is a failure.
 */
#include "base/base.h"
#include "store/store.h"
#include "store/pg.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

/*
 * The migrations a fresh PostgreSQL database runs: its first, which makes
 * sqlite's schema 14 whole, and one per later version.
 */
#define PG_MIGRATIONS (store_pg_schema_latest() - 14 + 1)

#include "pgserver.h"

static char dbname[64];
static char dburl[4096];   /* the fresh database's connection string */
static char dbstore[4096]; /* and its postgresql:// URL (what store_open takes) */

/* A new empty database on the server; dburl, dbstore: its connection string and URL. */
static void fresh_db(void)
{
    pgserver_fresh_db(dbname, sizeof(dbname), dbstore, sizeof(dbstore));
    pgserver_conninfo(dburl, sizeof(dburl), dbname);
}

static int setup(void **state)
{
    (void)state;
    return pgserver_setup();
}

static int teardown(void **state)
{
    (void)state;
    pgserver_teardown();
    return 0;
}

/* A query's single value on `db`, into out. */
static void query1(PGconn *db, const char *sql, char *out, size_t outlen)
{
    PGresult *res = PQexec(db, sql);

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    snprintf(out, outlen, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

static void migrates_fresh_database(void **state)
{
    struct store_pg *pg = NULL;
    struct err err = ERR_INIT;
    int before = -1, applied = -1, v = -1;

    pgserver_need();
    /* the PostgreSQL list ends where sqlite's does: a new sqlite migration needs its twin */
    assert_int_equal(store_pg_schema_latest(), store_schema_latest());
    fresh_db();
    if (store_pg_open(&pg, dburl, 2, &err) < 0)
        fail_msg("open: %s (%s)", err.msg, err.detail);
    assert_int_equal(store_pg_schema_version(pg, &v, &err), 0);
    assert_int_equal(v, 0);
    if (store_pg_migrate(pg, store_pg_schema_latest(), &before, &applied, &err) < 0)
        fail_msg("migrate: %s (%s)", err.msg, err.detail);
    assert_int_equal(before, 0);
    assert_int_equal(applied, PG_MIGRATIONS);
    assert_int_equal(store_pg_schema_version(pg, &v, &err), 0);
    assert_int_equal(v, store_schema_latest());
    /* again: nothing to do */
    assert_int_equal(store_pg_migrate(pg, store_pg_schema_latest(), &before, &applied, &err), 0);
    assert_int_equal(before, store_schema_latest());
    assert_int_equal(applied, 0);
    store_pg_close(pg);
}

/*
 * The ids only sqlite has (sql_pg.c says why): every other id has SQL, so a
 * statement added to enum stmt_id without its PostgreSQL form fails here.
 */
static bool sqlite_only(enum stmt_id id)
{
    switch (id) {
    case S_LITE_DATA_VERSION:
    case S_LITE_NONCE_LOG:
    case S_LITE_NONCE_FLUSH:
    case S_LITE_NONCE_LOG_CLEAR:
    case S_LITE_NONCE_WINDOW_LOAD:
    case S_LITE_NONCE_V6_EXISTS:
    case S_LITE_NONCE_V6_NEWEST:
    case S_LITE_NONCE_V6_SEEN:
    case S_LITE_NONCE_V6_DROP:
        return true;
    default:
        return false;
    }
}

static void every_statement_prepares(void **state)
{
    struct store_pg *pg = NULL;
    struct store_pg_conn *c;
    struct err err = ERR_INIT;
    int before, applied, failed = 0, prepared = 0;

    pgserver_need();
    fresh_db();
    if (store_pg_open(&pg, dburl, 1, &err) < 0 ||
        store_pg_migrate(pg, store_pg_schema_latest(), &before, &applied, &err) < 0)
        fail_msg("%s (%s)", err.msg, err.detail);
    c = store_pg_get(pg, &err);
    assert_non_null(c);
    for (int id = 0; id < S__COUNT; id++) {
        struct err e = ERR_INIT;

        if (sqlite_only((enum stmt_id)id) != (store_sql_pg[id] == NULL)) {
            printf("statement %d: %s\n", id,
                   store_sql_pg[id] ? "has SQL but is sqlite's only"
                                    : "has no PostgreSQL SQL (sql_pg.c)");
            failed++;
            continue;
        }
        if (!store_sql_pg[id])
            continue;
        if (store_pg_prepare(c, (enum stmt_id)id, &e) < 0) {
            printf("statement %d does not prepare: %s\n  %.300s\n", id, e.detail, store_sql_pg[id]);
            failed++;
        } else
            prepared++;
    }
    store_pg_put(pg, c);
    store_pg_close(pg);
    printf("%d statements prepared, %d failed\n", prepared, failed);
    assert_int_equal(failed, 0);
}

/*
 * A child of concurrent_migrations: connects, waits for the parent's byte on
 * `go`, migrates; exits 10 + migrations applied, 1 on an error.
 */
static void migrate_child(int go)
{
    struct store_pg *pg = NULL;
    struct err err = ERR_INIT;
    int before, applied = 0;
    char b;

    if (store_pg_open(&pg, dburl, 1, &err) < 0) {
        fprintf(stderr, "child open: %s (%s)\n", err.msg, err.detail);
        _exit(1);
    }
    if (read(go, &b, 1) != 1)
        _exit(1);
    if (store_pg_migrate(pg, store_pg_schema_latest(), &before, &applied, &err) < 0) {
        fprintf(stderr, "child migrate: %s (%s)\n", err.msg, err.detail);
        _exit(1);
    }
    store_pg_close(pg);
    _exit(10 + applied);
}

static void concurrent_migrations(void **state)
{
    pgserver_need();
    /* a few rounds: the two start together each time, connected before the signal */
    for (int round = 0; round < 3; round++) {
        int go[2], total = 0;
        pid_t kids[2];
        char bytes[2] = { 'x', 'x' };
        struct store_pg *pg = NULL;
        struct err err = ERR_INIT;
        int v = -1;

        fresh_db();
        assert_int_equal(pipe(go), 0);
        for (int i = 0; i < 2; i++) {
            kids[i] = fork();
            assert_true(kids[i] >= 0);
            if (kids[i] == 0) {
                close(go[1]);
                migrate_child(go[0]);
            }
        }
        close(go[0]);
        assert_int_equal(write(go[1], bytes, 2), 2);
        close(go[1]);
        for (int i = 0; i < 2; i++) {
            int st;

            assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
            assert_true(WIFEXITED(st));
            if (WEXITSTATUS(st) < 10)
                fail_msg("round %d: a migrating process failed (exit %d)", round, WEXITSTATUS(st));
            total += WEXITSTATUS(st) - 10;
        }
        /* one applied the migrations, the other found them done */
        assert_int_equal(total, PG_MIGRATIONS);
        assert_int_equal(store_pg_open(&pg, dburl, 1, &err), 0);
        assert_int_equal(store_pg_schema_version(pg, &v, &err), 0);
        assert_int_equal(v, store_schema_latest());
        store_pg_close(pg);
    }
}

static void newer_schema_refused(void **state)
{
    struct store_pg *pg = NULL;
    struct store_pg_conn *c;
    struct err err = ERR_INIT;
    int before, applied;
    char sql[128];

    pgserver_need();
    fresh_db();
    assert_int_equal(store_pg_open(&pg, dburl, 1, &err), 0);
    assert_int_equal(store_pg_migrate(pg, store_pg_schema_latest(), &before, &applied, &err), 0);
    c = store_pg_get(pg, &err);
    snprintf(sql, sizeof(sql), "UPDATE ltibadges_schema SET version = %d",
             store_pg_schema_latest() + 1);
    assert_int_equal(store_pg_exec(c, sql, "test", &err), 0);
    store_pg_put(pg, c);
    assert_int_equal(store_pg_migrate(pg, store_pg_schema_latest(), &before, &applied, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.msg, "newer than this program"));
    assert_int_equal(applied, 0);
    store_pg_close(pg);
}

static void broken_connection_made_again(void **state)
{
    struct store_pg *pg = NULL;
    struct store_pg_conn *c;
    struct err err = ERR_INIT;
    PGresult *res;
    char sql[128], ok[8];
    int pid, pid2;

    pgserver_need();
    fresh_db();
    assert_int_equal(store_pg_open(&pg, dburl, 1, &err), 0);
    c = store_pg_get(pg, &err);
    assert_non_null(c);
    pid = PQbackendPID(c->db);
    res = store_pg_run(c, S_PING, 0, NULL, NULL, NULL, &err);
    assert_non_null(res);
    PQclear(res);
    store_pg_put(pg, c);
    /* the server ends the pool's connection (as a restart would); waits until it is gone */
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d, 10000)", pid);
    query1(pgserver_admin, sql, ok, sizeof(ok));
    assert_string_equal(ok, "t");
    c = store_pg_get(pg, &err);
    if (!c)
        fail_msg("get after the server ended the connection: %s (%s)", err.msg, err.detail);
    pid2 = PQbackendPID(c->db);
    assert_int_not_equal(pid2, pid);
    /* prepared again on the new connection */
    res = store_pg_run(c, S_PING, 0, NULL, NULL, NULL, &err);
    if (!res)
        fail_msg("ping: %s (%s)", err.msg, err.detail);
    PQclear(res);
    store_pg_put(pg, c);
    store_pg_close(pg);
}

/* The fresh database's postgresql:// URL (what store_open takes). */
static void fresh_store_url(char *out, size_t n)
{
    snprintf(out, n, "%s", dbstore);
}

/* Runs `sql` on `db`, which must succeed. */
static void exec_ok(PGconn *db, const char *sql)
{
    PGresult *res = PQexec(db, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    PQclear(res);
}

/* Waits (for the state, polling) until `sql` on the test's admin connection answers `want`. */
static void wait_for(const char *sql, const char *want)
{
    char got[64] = "";

    for (int i = 0; i < 3000; i++) {
        struct timespec pause = { 0, 10 * 1000000L };

        query1(pgserver_admin, sql, got, sizeof(got));
        if (strcmp(got, want) == 0)
            return;
        nanosleep(&pause, NULL);
    }
    fail_msg("%s: %s, not %s after 30 s", sql, got, want);
}

/* UPDATE consumers SET lms_family = `v` WHERE id = `id`, through the store's statement. */
static int set_lms(struct conn *c, int64_t id, const char *v, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_CONSUMER_SET_LMS, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, id);
    db_bind_text_copy(st, 2, v);
    return store_step_done(c, st, "test", err);
}

struct faulty {
    PGconn *other; /* deadlock_retried's other transaction */
    int64_t a, b;
    int runs;
};

/*
 * The store's transaction: consumer a, then b. On its first run the other
 * connection, holding b, asks for a in between: a deadlock, which the
 * server ends in the store's transaction (its deadlock_timeout is the
 * shorter). On the second, the other transaction (which got a once the
 * first run rolled back) has committed first.
 */
static int lock_in_order(struct store_tx *tx, void *cls, struct err *err)
{
    struct faulty *f = cls;
    char sql[160], v[16];

    f->runs++;
    snprintf(v, sizeof(v), "run-%d", f->runs);
    if (f->runs == 2) {
        PGresult *res;

        while ((res = PQgetResult(f->other)) != NULL) {
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                fail_msg("the other transaction's UPDATE: %s", PQresultErrorMessage(res));
            PQclear(res);
        }
        exec_ok(f->other, "COMMIT");
    }
    if (set_lms(tx->c, f->a, v, err) < 0)
        return -1;
    if (f->runs == 1) {
        snprintf(sql, sizeof(sql), "UPDATE consumers SET lms_family = 'other' WHERE id = %" PRId64,
                 f->a);
        assert_int_equal(PQsendQuery(f->other, sql), 1);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_locks WHERE pid = %d AND NOT granted",
                 PQbackendPID(f->other));
        wait_for(sql, "1");
    }
    return set_lms(tx->c, f->b, v, err);
}

static void deadlock_retried(void **state)
{
    struct store *s = NULL;
    struct store_consumer a, b;
    struct err err = ERR_INIT;
    struct faulty f = { 0 };
    char url[4096], sql[160], got[64];

    pgserver_need();
    fresh_db();
    /* the store's connections detect the deadlock first */
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET deadlock_timeout = '20ms'", dbname);
    exec_ok(pgserver_admin, sql);
    fresh_store_url(url, sizeof(url));
    if (store_open(&s, url, 0, &err) < 0)
        fail_msg("open: %s (%s)", err.msg, err.detail);
    assert_int_equal(store_consumer_add(s, "ka", "secret-a-12345678", "A", &a, &err), 0);
    assert_int_equal(store_consumer_add(s, "kb", "secret-b-12345678", "B", &b, &err), 0);
    f.a = a.id;
    f.b = b.id;
    f.other = PQconnectdb(dburl);
    assert_int_equal(PQstatus(f.other), CONNECTION_OK);
    exec_ok(f.other, "SET deadlock_timeout = '60s'");
    exec_ok(f.other, "BEGIN");
    snprintf(sql, sizeof(sql), "UPDATE consumers SET lms_family = 'other' WHERE id = %" PRId64,
             f.b);
    exec_ok(f.other, sql);

    if (store_tx_run(s, lock_in_order, &f, &err) < 0)
        fail_msg("the transaction after the deadlock: %s (%s), %d runs", err.msg, err.detail,
                 f.runs);
    /* run again whole, unseen by the caller */
    assert_int_equal(f.runs, 2);
    assert_int_equal(err.code, ERR_NONE);
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(lms_family, ',' ORDER BY id) FROM consumers WHERE id IN (%" PRId64
             ", %" PRId64 ")",
             f.a, f.b);
    PQfinish(f.other);
    f.other = PQconnectdb(dburl);
    query1(f.other, sql, got, sizeof(got));
    assert_string_equal(got, "run-2,run-2");
    PQfinish(f.other);
    store_close(s);
}

/* The first run's connection is ended by the server half-way (as a restart would). */
static int lose_connection(struct store_tx *tx, void *cls, struct err *err)
{
    struct faulty *f = cls;
    char sql[256], ok[8], v[16];

    f->runs++;
    snprintf(v, sizeof(v), "run-%d", f->runs);
    if (set_lms(tx->c, f->a, v, err) < 0)
        return -1;
    if (f->runs == 1) {
        /* the store's one transaction under way: this one */
        snprintf(sql, sizeof(sql),
                 "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = "
                 "'%s' AND state = 'idle in transaction'",
                 dbname);
        query1(pgserver_admin, sql, ok, sizeof(ok));
        assert_string_equal(ok, "t");
    }
    return set_lms(tx->c, f->b, v, err);
}

static void lost_transaction_runs_again(void **state)
{
    struct store *s = NULL;
    struct store_consumer a, b;
    struct err err = ERR_INIT;
    struct faulty f = { 0 };
    char url[4096], sql[200], got[64];

    pgserver_need();
    fresh_db();
    fresh_store_url(url, sizeof(url));
    if (store_open(&s, url, 0, &err) < 0)
        fail_msg("open: %s (%s)", err.msg, err.detail);
    assert_int_equal(store_consumer_add(s, "ka", "secret-a-12345678", "A", &a, &err), 0);
    assert_int_equal(store_consumer_add(s, "kb", "secret-b-12345678", "B", &b, &err), 0);
    f.a = a.id;
    f.b = b.id;
    if (store_tx_run(s, lose_connection, &f, &err) < 0)
        fail_msg("the transaction after its connection broke: %s (%s), %d runs", err.msg,
                 err.detail, f.runs);
    assert_int_equal(f.runs, 2);
    /* nothing of the first run stayed, all of the second did */
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(lms_family, ',' ORDER BY id) FROM consumers WHERE id IN (%" PRId64
             ", %" PRId64 ")",
             f.a, f.b);
    {
        PGconn *db = PQconnectdb(dburl);

        query1(db, sql, got, sizeof(got));
        PQfinish(db);
    }
    assert_string_equal(got, "run-2,run-2");
    /* and the admin connection, made again, goes on */
    assert_int_equal(store_consumer_set_enabled(s, "ka", false, &err), 0);
    store_close(s);
}

/* A launch on `s` (a fresh nonce each), through the launch writer; its session read back. */
static int launch_once(struct store *s, int64_t consumer, const char *nonce,
                       struct store_launch_result *res, struct err *err)
{
    struct store_launch l;
    struct store_session sess;
    struct arena a = ARENA_INIT;
    int ret;

    memset(&l, 0, sizeof(l));
    l.consumer_id = consumer;
    l.nonce = str_from_cstr(nonce);
    l.timestamp = util_now();
    l.now = util_now();
    l.user_id = STR_LIT("u1");
    l.context_id = STR_LIT("c1");
    l.context_title = STR_LIT("Biology");
    l.resource_link_id = STR_LIT("rl-1");
    l.roles = STR_LIT("Learner");
    l.role_flags = 1;
    l.session_expires = util_now() + 3600;
    util_sha256(nonce, strlen(nonce), l.session_secret_hash);
    if (store_launch_record(s, &l, res, err) < 0)
        return -1;
    ret = store_session_get(s, res->session_id, l.session_secret_hash, util_now(), &a, &sess, err);
    arena_release(&a);
    return ret;
}

static void connections_made_again(void **state)
{
    struct store *s = NULL;
    struct store_consumer a;
    struct store_launch_result res;
    struct err err = ERR_INIT;
    char url[4096], sql[256], n[16];
    int64_t award = 0, passback = 0;

    pgserver_need();
    fresh_db();
    fresh_store_url(url, sizeof(url));
    if (store_open(&s, url, STORE_OPEN_WRITER, &err) < 0)
        fail_msg("open: %s (%s)", err.msg, err.detail);
    assert_int_equal(store_consumer_add(s, "ka", "secret-a-12345678", "A", &a, &err), 0);
    if (launch_once(s, a.id, "n1", &res, &err) < 0)
        fail_msg("first launch: %s (%s)", err.msg, err.detail);
    /* the server ends every connection of the store: its writer's, readers' and admin's */
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE datname "
             "= '%s'",
             dbname);
    query1(pgserver_admin, sql, n, sizeof(n));
    assert_true(strtol(n, NULL, 10) >= 3);
    for (int round = 0; round < 2; round++) {
        char nonce[16];

        /* each connection made again as it is next used, and twice in a row */
        snprintf(nonce, sizeof(nonce), "n%d", round + 2);
        err_clear(&err);
        if (launch_once(s, a.id, nonce, &res, &err) < 0)
            fail_msg("launch %s after the connections broke: %s (%s)", nonce, err.msg, err.detail);
        assert_int_equal(store_consumer_set_enabled(s, "ka", true, &err), 0);
        assert_int_equal(store_health(s, util_now(), &award, &passback, &err), 0);
        if (round == 0)
            query1(pgserver_admin, sql, n, sizeof(n));
    }
    /* the nonce of before is still taken */
    err_clear(&err);
    assert_int_equal(launch_once(s, a.id, "n1", &res, &err), -1);
    assert_int_equal(err.code, ERR_REPLAY);
    store_close(s);
}

static void unreachable_at_open(void **state)
{
    char dir[] = "/tmp/lbt-nopg.XXXXXX";
    char url[256];
    struct store_pg *pg = NULL;
    struct err err = ERR_INIT;

    /* a socket folder where no server listens */
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "postgresql://badges:s3cr3t-pw@/ltibadges?host=%s", dir);
    assert_int_equal(store_pg_open(&pg, url, 4, &err), -1);
    assert_null(pg);
    assert_int_equal(err.code, ERR_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "cannot connect to the database"));
    /* libpq's reason: the socket it tried */
    assert_non_null(strstr(err.msg, dir));
    assert_null(strstr(err.msg, "s3cr3t-pw"));
    assert_null(strstr(err.detail, "s3cr3t-pw"));
    /* a URL libpq cannot read */
    err_clear(&err);
    assert_int_equal(store_pg_open(&pg, "postgresql://u:pw@host/db?nosuchparameter=1", 1, &err),
                     -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_null(strstr(err.msg, "pw"));
    rmdir(dir);
}

static void url_redacted(void **state)
{
    static const struct {
        const char *url, *shown;
    } cases[] = {
        { "postgresql://badges:s3cr3t@db.example.edu/badges?sslmode=verify-full",
          "postgresql://badges:***@db.example.edu/badges?sslmode=verify-full" },
        { "postgresql://badges@db.example.edu/badges",
          "postgresql://badges@db.example.edu/badges" },
        { "postgres://db/badges?user=u&password=s3cr3t&sslmode=require",
          "postgres://db/badges?user=u&password=***&sslmode=require" },
        { "postgresql:///badges?password=s3cr3t", "postgresql:///badges?password=***" },
        /* '@' and ':' in a password, as given unencoded: all of it goes */
        { "postgresql://u:p@ss:w@rd@h:5432/d", "postgresql://u:***@h:5432/d" },
        { "postgresql://u:%40pw@h/d", "postgresql://u:***@h/d" },
        { "postgresql://u:pw@/d?host=/run/postgresql",
          "postgresql://u:***@/d?host=/run/postgresql" },
        { "host=db password=s3cr3t", "***" },
    };
    char out[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        store_pg_url_redact(cases[i].url, out, sizeof(out));
        assert_string_equal(out, cases[i].shown);
    }
    /* cut to fit, still NUL-terminated, the password never in a cut either */
    store_pg_url_redact(cases[0].url, out, 20);
    assert_string_equal(out, "postgresql://badges");
    store_pg_url_redact(cases[0].url, out, 26);
    assert_string_equal(out, "postgresql://badges:***@d");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_redacted),
        cmocka_unit_test(unreachable_at_open),
        cmocka_unit_test(migrates_fresh_database),
        cmocka_unit_test(every_statement_prepares),
        cmocka_unit_test(concurrent_migrations),
        cmocka_unit_test(newer_schema_refused),
        cmocka_unit_test(broken_connection_made_again),
        cmocka_unit_test(deadlock_retried),
        cmocka_unit_test(lost_transaction_runs_again),
        cmocka_unit_test(connections_made_again),
    };

    pgserver_init("unit_store_pg", "lbt");
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
