/*
 * tests/unit/store/store.c - migrations, consumers, launches through the
 * group-committing writer (replays, racing nonces, scoping by consumer,
 * durability across reopen), sessions (lookup, expiry) and the confirmation
 * links of e-mail addresses learners give (expiry, reuse, the hourly limit).
 */
#include "base/base.h"
#include "images/images.h" /* image_svg_sanitize, the SVG rule */
#include "store/store.h"
#include "store/store_int.h" /* store_nonce_fp */

#include <pthread.h>
#include <sqlite3.h>
#include <setjmp.h>
#include <cmocka.h>
#include "tests/unit/store/dbfile.h"
#include <sys/stat.h>
#include <unistd.h>

/* one timestamp for every launch of a test: a replay repeats its timestamp */
static int64_t t0;

static int setup(void **state)
{
    t0 = util_now();
    dbfile_new("");
    return 0;
}

static int teardown(void **state)
{
    dbfile_remove();
    return 0;
}

static int64_t count(struct store *s, const char *table)
{
    int64_t n = -1;
    struct err err = ERR_INIT;

    assert_int_equal(store_count(s, table, &n, &err), 0);
    return n;
}

static void fill_launch(struct store_launch *l, int64_t consumer, const char *nonce,
                        const char *user, const char *context)
{
    memset(l, 0, sizeof(*l));
    l->consumer_id = consumer;
    l->nonce = str_from_cstr(nonce);
    l->timestamp = t0;
    l->now = util_now();
    l->user_id = str_from_cstr(user);
    l->full_name = STR_LIT("Ada Lovelace");
    l->context_id = str_from_cstr(context);
    l->context_title = STR_LIT("Intro to Biology");
    l->resource_link_id = STR_LIT("rl-1");
    l->roles = STR_LIT("Learner");
    l->role_flags = 1;
    l->outcome_service_url = STR_LIT("https://lms.example/outcomes");
    l->result_sourcedid = STR_LIT("sourced-1");
    l->session_expires = util_now() + 3600;
    {
        /* a distinct session per launch; real tokens are random */
        static _Atomic int serial;
        char seed[256];

        snprintf(seed, sizeof(seed), "%" PRId64 ":%s:%s:%d", consumer, nonce, user, ++serial);
        util_sha256(seed, strlen(seed), l->session_secret_hash);
    }
}

/* Records `l` and expects it refused with `code` (and message `msg`, unless NULL). */
static void assert_refused(struct store *s, const struct store_launch *l, enum err_code code,
                           const char *msg)
{
    struct err err = ERR_INIT;
    struct store_launch_result res;

    assert_int_equal(store_launch_record(s, l, &res, &err), -1);
    assert_int_equal(err.code, code);
    if (msg)
        assert_string_equal(err.msg, msg);
}

static void migrations(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    int v = -1, applied = -1;

    SQLITE_ONLY("SQLite's migrations one by one (PostgreSQL's start at schema 14: unit_store_pg)");
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_NO_MIGRATE, &err), 0);
    assert_int_equal(store_schema_version(s, &v, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(store_migrate(s, &applied, &err), 0);
    assert_int_equal(applied, store_schema_latest());
    assert_int_equal(store_migrate(s, &applied, &err), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(store_schema_version(s, &v, &err), 0);
    assert_int_equal(v, store_schema_latest());
    store_close(s);
}

static void consumers(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c, *list = NULL;
    size_t n = 0;

    assert_int_equal(store_open(&s, dbpath, 0, &err), 0);
    assert_int_equal(store_consumer_add(s, "k1", "secret-one-123456", "Canvas", &c, &err), 0);
    assert_true(c.id > 0);
    assert_int_equal(store_consumer_add(s, "k1", "x", "Again", NULL, &err), -1);
    assert_int_equal(err.code, ERR_CONFLICT);
    err_clear(&err);
    assert_int_equal(store_consumer_find(s, STR_LIT("k1"), &c, &err), 0);
    assert_string_equal(c.secret, "secret-one-123456");
    assert_true(c.enabled);
    assert_int_equal(store_consumer_set_secret(s, "k1", "secret-two-123456", &err), 0);
    assert_int_equal(store_consumer_set_enabled(s, "k1", false, &err), 0);
    assert_int_equal(store_consumer_find(s, STR_LIT("k1"), &c, &err), 0);
    assert_string_equal(c.secret, "secret-two-123456");
    assert_false(c.enabled);
    assert_int_equal(store_consumer_find(s, STR_LIT("nope"), &c, &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    err_clear(&err);
    assert_int_equal(store_consumer_set_secret(s, "nope", "x", &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    err_clear(&err);
    assert_int_equal(store_consumer_add(s, "k2", "secret-three-1234", "Moodle", NULL, &err), 0);
    assert_int_equal(store_consumer_list(s, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].key, "k1");
    assert_string_equal(list[1].name, "Moodle");
    free(list);
    assert_int_equal(store_consumer_remove(s, "k1", &err), 0);
    assert_int_equal(store_consumer_remove(s, "k1", &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    store_close(s);
}

/*
 * The launch path's consumer cache: a change in this process clears it; one
 * by another process (the CLI: here a second store on the file) leaves it
 * stale, and the writer refuses what was accepted with the stale copy,
 * writing nothing, and drops that copy.
 */
static void consumer_cache_and_confirmation(void **state)
{
    struct store *s = NULL, *cli = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c, got;
    struct store_launch l;
    struct store_launch_result res;
    bool cached = true;

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_open(&cli, dbpath, 0, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-one-123456", "Canvas", &c, &err), 0);
    assert_int_equal(store_consumer_find_cached(s, STR_LIT("k"), &got, &cached, &err), 0);
    assert_false(cached);
    assert_int_equal(store_consumer_find_cached(s, STR_LIT("k"), &got, &cached, &err), 0);
    assert_true(cached);
    assert_int_equal(got.id, c.id);
    assert_string_equal(got.secret, "secret-one-123456");
    assert_int_equal(store_consumer_find_cached(s, STR_LIT("other"), &got, &cached, &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    assert_false(cached);
    err_clear(&err);

    /* a change in this process: read again */
    assert_int_equal(store_consumer_set_secret(s, "k", "secret-two-123456", &err), 0);
    assert_int_equal(store_consumer_find_cached(s, STR_LIT("k"), &got, &cached, &err), 0);
    assert_false(cached);
    assert_string_equal(got.secret, "secret-two-123456");

    /* a launch verified with the current secret is recorded */
    fill_launch(&l, c.id, "n1", "u1", "c1");
    l.consumer_secret = STR_LIT("secret-two-123456");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);

    /* another process gives it a new secret: the cache still has the old one */
    assert_int_equal(store_consumer_set_secret(cli, "k", "secret-three-1234", &err), 0);
    assert_int_equal(store_consumer_find_cached(s, STR_LIT("k"), &got, &cached, &err), 0);
    assert_true(cached);
    assert_string_equal(got.secret, "secret-two-123456");
    fill_launch(&l, c.id, "n2", "u2", "c1");
    l.consumer_secret = STR_LIT("secret-two-123456");
    assert_refused(s, &l, ERR_UNAUTHORIZED, "signature does not match");
    assert_int_equal(count(s, "users"), 1);
    assert_int_equal(count(s, "sessions"), 1);
    assert_int_equal(count(s, "nonces"), 1); /* n1 only: n2 was not claimed */
    /* the stale copy is gone */
    assert_int_equal(store_consumer_find_cached(s, STR_LIT("k"), &got, &cached, &err), 0);
    assert_false(cached);
    assert_string_equal(got.secret, "secret-three-1234");
    /* and the same launch, signed with the new secret, goes through: its nonce is unused */
    l.consumer_secret = STR_LIT("secret-three-1234");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);

    /* disabled, then removed, by another process */
    assert_int_equal(store_consumer_set_enabled(cli, "k", false, &err), 0);
    fill_launch(&l, c.id, "n3", "u3", "c1");
    l.consumer_secret = STR_LIT("secret-three-1234");
    assert_refused(s, &l, ERR_UNAUTHORIZED, "unknown or disabled consumer key");
    l.consumer_secret = STR_NULL; /* without a secret, being enabled is still checked */
    assert_refused(s, &l, ERR_UNAUTHORIZED, NULL);
    assert_int_equal(store_consumer_set_enabled(cli, "k", true, &err), 0);
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(store_consumer_remove(cli, "k", &err), 0);
    fill_launch(&l, c.id, "n4", "u4", "c1");
    assert_refused(s, &l, ERR_UNAUTHORIZED, NULL);
    assert_int_equal(count(s, "sessions"), 0);
    store_close(cli);
    store_close(s);
}

static void launches_and_replays(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer a, b;
    struct store_launch l;
    struct store_launch_result res;

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "ka", "secret-a-12345678", "A", &a, &err), 0);
    assert_int_equal(store_consumer_add(s, "kb", "secret-b-12345678", "B", &b, &err), 0);

    fill_launch(&l, a.id, "n1", "u1", "1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_true(res.first_in_context);
    assert_true(res.user_id > 0 && res.context_id > 0);

    /* the same nonce again: refused, nothing written */
    fill_launch(&l, a.id, "n1", "u2", "2");
    assert_refused(s, &l, ERR_REPLAY, NULL);
    assert_int_equal(count(s, "users"), 1);
    assert_int_equal(count(s, "contexts"), 1);
    assert_int_equal(count(s, "sessions"), 1);

    /* the same nonce from another consumer is another nonce; context "1" is another course */
    fill_launch(&l, b.id, "n1", "u1", "1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(count(s, "users"), 2);
    assert_int_equal(count(s, "contexts"), 2);
    assert_int_equal(count(s, "nonces"), 2);

    /* a relaunch: same rows, a second enrollment launch, a new session */
    fill_launch(&l, a.id, "n2", "u1", "1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_false(res.first_in_context);
    assert_int_equal(count(s, "users"), 2);
    assert_int_equal(count(s, "enrollments"), 2);
    assert_int_equal(count(s, "outcome_bindings"), 2);
    assert_int_equal(count(s, "sessions"), 3);

    /* a launch without a context */
    fill_launch(&l, a.id, "n3", "u1", "x");
    l.context_id = STR_NULL;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(res.context_id, 0);
    store_close(s);

    /* acknowledged launches survive a reopen, and so do their nonces */
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(count(s, "sessions"), 4);
    fill_launch(&l, a.id, "n2", "u9", "9");
    assert_refused(s, &l, ERR_REPLAY, NULL);

    /* a nonce longer than oauth accepts is refused before it is queued, and writes nothing */
    {
        char nonce[LIMIT_OAUTH_NONCE_LEN + 2];

        memset(nonce, 'n', sizeof(nonce) - 1);
        nonce[sizeof(nonce) - 1] = '\0';
        fill_launch(&l, a.id, nonce, "u9", "9");
        assert_refused(s, &l, ERR_INVALID, "the nonce is longer than 128 bytes");
        assert_int_equal(count(s, "users"), 2);
        assert_int_equal(count(s, "sessions"), 4);
    }
    store_close(s);
}

/* One value read straight from the database, as another process would see it. */
static void peek_text(const char *sql, char *out, size_t n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    out[0] = '\0';
    if (db_is_pg) {
        pg_query1(sql, out, n);
        return;
    }
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void poke(const char *sql)
{
    poke_db(sql);
}

/* Launches submitted at once, each answered into `left` (counted down). */
struct pending {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int left;
};

static void pending_done(struct store_launch_job *job)
{
    struct pending *p = job->cls;

    pthread_mutex_lock(&p->mu);
    p->left--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Submits `n` launches at once (at most half the writer's queue waiting) and waits for them. */
static void submit_all(struct store *s, struct store_launch_job *jobs, int n)
{
    struct pending p = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n };

    for (int i = 0; i < n; i++) {
        jobs[i].done = pending_done;
        jobs[i].cls = &p;
        store_launch_submit(s, &jobs[i]);
        pthread_mutex_lock(&p.mu);
        while (i + 1 - (n - p.left) >= LIMIT_STORE_QUEUE / 2)
            pthread_cond_wait(&p.cv, &p.mu);
        pthread_mutex_unlock(&p.mu);
    }
    pthread_mutex_lock(&p.mu);
    while (p.left > 0)
        pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    for (int i = 0; i < n; i++)
        assert_int_equal(jobs[i].status, 0);
}

/* Records, when a launch is answered, how many WAL fsyncs had been done. */
struct synced {
    struct pending p; /* first: pending_done takes the job's cls for it */
    struct store *s;
    uint64_t syncs_at_done;
};

static void synced_done(struct store_launch_job *job)
{
    struct synced *y = job->cls;
    struct store_stats st;

    store_stats(y->s, &st);
    y->syncs_at_done = st.wal_syncs;
    pending_done(job);
}

/*
 * The writer commits without waiting for the disk (synchronous = NORMAL):
 * a launch is answered only after an fdatasync of the WAL that began once
 * its batch had committed, so each of these sequential launches waited for
 * one of its own, and what it wrote is in the database when it is answered.
 */
static void launches_answered_after_the_wal_sync(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_stats st;
    char nonce[16];

    SQLITE_ONLY("the WAL's fdatasync (PostgreSQL's COMMIT is durable)");
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    for (int i = 0; i < 5; i++) {
        struct synced y = { { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 1 }, s, 0 };
        struct store_launch_job job;

        store_stats(s, &st);
        memset(&job, 0, sizeof(job));
        snprintf(nonce, sizeof(nonce), "sync-%d", i);
        fill_launch(&job.launch, c.id, nonce, "u1", "c1");
        job.done = synced_done;
        job.cls = &y;
        store_launch_submit(s, &job);
        pthread_mutex_lock(&y.p.mu);
        while (y.p.left > 0)
            pthread_cond_wait(&y.p.cv, &y.p.mu);
        pthread_mutex_unlock(&y.p.mu);
        assert_int_equal(job.status, 0);
        assert_true(y.syncs_at_done > st.wal_syncs);
        assert_int_equal(count(s, "sessions"), i + 1);
    }
    store_close(s);
}

/*
 * Under a steady stream of launches the WAL still starts over: past the
 * restart size the writer asks the checkpointer to copy most of it, then
 * copies what is left itself (after its batch went to the syncer), and the
 * WAL file stays near that size instead of growing with every launch.
 * Small limits here; the same code runs with the real ones.
 */
static void wal_starts_over_under_load(void **state)
{
    SQLITE_ONLY("the WAL's restart (PostgreSQL has its own)");
    enum { N = 3000 };
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_stats st;
    struct store_launch_job *jobs = xcalloc(N, sizeof(*jobs));
    char(*text)[3][32] = xcalloc(N, sizeof(*text));
    char wal[sizeof(dbpath) + 8];
    struct stat sb;

    (void)state;
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    pthread_mutex_lock(&s->ckpt_mu);
    s->wal_restart_pages = 64;
    s->catch_up_pages = 16;
    pthread_mutex_unlock(&s->ckpt_mu);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    for (int i = 0; i < N; i++) {
        snprintf(text[i][0], 32, "w%d", i);
        snprintf(text[i][1], 32, "u%d", i);
        snprintf(text[i][2], 32, "c%d", i % 40);
        fill_launch(&jobs[i].launch, c.id, text[i][0], text[i][1], text[i][2]);
    }
    submit_all(s, jobs, N);
    /* without a restart, N first launches leave a WAL of thousands of frames */
    snprintf(wal, sizeof(wal), "%s-wal", dbpath);
    assert_int_equal(stat(wal, &sb), 0);
    assert_true(sb.st_size < 600 * (4096 + 24));
    store_stats(s, &st);
    assert_true(st.catch_ups > 0);
    assert_int_equal(count(s, "sessions"), N);
    store_close(s);
    free(jobs);
    free(text);
}

/* One thread of admin_commits_group_synced: toggles its own consumer. */
struct toggler {
    struct store *s;
    char key[16];
    int failures;
};

static void *toggle_main(void *arg)
{
    struct toggler *t = arg;

    for (int i = 0; i < 25; i++) {
        struct err err = ERR_INIT;

        if (store_consumer_set_enabled(t->s, t->key, i % 2 == 1, &err) < 0)
            t->failures++;
    }
    return NULL;
}

/*
 * The admin connection commits without waiting for the disk and syncs after
 * letting the next writer in: alone, each commit returns only after an
 * fdatasync of its own; from several threads at once every commit still
 * succeeds, one fdatasync covering those made while another ran.
 */
static void admin_commits_group_synced(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_stats before, after;
    struct toggler t[4];
    pthread_t th[4];

    SQLITE_ONLY("the WAL's group commit (PostgreSQL's COMMIT is durable)");
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    for (int i = 0; i < 4; i++) {
        store_stats(s, &before);
        t[i].s = s;
        t[i].failures = 0;
        snprintf(t[i].key, sizeof(t[i].key), "k%d", i);
        assert_int_equal(store_consumer_add(s, t[i].key, "secret-k-12345678", "LMS", NULL, &err),
                         0);
        store_stats(s, &after);
        assert_int_equal(after.wal_syncs, before.wal_syncs + 1);
    }
    store_stats(s, &before);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, toggle_main, &t[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(t[i].failures, 0);
    }
    store_stats(s, &after);
    assert_true(after.wal_syncs > before.wal_syncs);
    assert_true(after.wal_syncs <= before.wal_syncs + 100);
    store_close(s);
    /* what they committed is there after a reopen: 25 toggles end disabled */
    assert_int_equal(store_open(&s, dbpath, 0, &err), 0);
    for (int i = 0; i < 4; i++) {
        struct store_consumer c;

        assert_int_equal(store_consumer_find(s, str_from_cstr(t[i].key), &c, &err), 0);
        assert_false(c.enabled);
    }
    store_close(s);
}

/*
 * More learners than the writer's cache holds of them (16 384 slots, 12 288
 * at three quarters): CLOCK evicts one entry at a time, and every change
 * still reaches the database exactly once, a relaunch that changed nothing
 * writes nothing, and every row keeps its own id. The next start sizes the
 * cache for the rows there are.
 */
static void writer_cache_evicts_one_at_a_time(void **state)
{
    SQLITE_ONLY("the launch writer's cache (none on PostgreSQL)");
    enum { N = 14000, COURSES = 50 };
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch_job *jobs = xcalloc(N, sizeof(*jobs));
    char(*text)[4][32] = xcalloc(N, sizeof(*text));
    size_t small;

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    small = store_wcache_bytes(s->wcache);
    poke(
        "CREATE TABLE audit(what TEXT);"
        "CREATE TRIGGER users_ins AFTER INSERT ON users BEGIN INSERT INTO audit VALUES ('i'); END;"
        "CREATE TRIGGER users_upd AFTER UPDATE ON users BEGIN INSERT INTO audit VALUES ('u'); END;");
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(text[i][0], 32, "n%d-%d", round, i);
            snprintf(text[i][1], 32, "u%d", i);
            snprintf(text[i][2], 32, "c%d", i % COURSES);
            /* the second round changes every learner's name; the third changes nothing */
            snprintf(text[i][3], 32, "Learner %d%s", i, round ? " B" : "");
            memset(&jobs[i], 0, sizeof(jobs[i]));
            fill_launch(&jobs[i].launch, c.id, text[i][0], text[i][1], text[i][2]);
            jobs[i].launch.full_name = str_from_cstr(text[i][3]);
        }
        submit_all(s, jobs, N);
        assert_int_equal(peek_int("SELECT count(*) FROM audit WHERE what = 'i'"), N);
        assert_int_equal(peek_int("SELECT count(*) FROM audit WHERE what = 'u'"), round ? N : 0);
    }
    assert_true(store_wcache_evictions(s->wcache) > 0);
    assert_int_equal(peek_int("SELECT count(*) FROM users"), N);
    assert_int_equal(peek_int("SELECT count(*) FROM users WHERE full_name NOT LIKE '% B'"), 0);
    /* each enrollment names its own learner and course: no id was handed to another row */
    assert_int_equal(peek_int("SELECT count(*) FROM enrollments"), N);
    assert_int_equal(peek_int("SELECT count(*) FROM enrollments e JOIN users u ON u.id = e.user_id "
                              "JOIN contexts x ON x.id = e.context_id WHERE x.lti_context_id = "
                              "'c' || (CAST(substr(u.lti_user_id, 2) AS INTEGER) % 50)"),
                     N);
    store_close(s);

    /* reopened: sized for 14 000 learners, 3/4 full at most */
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_true(store_wcache_bytes(s->wcache) > small);
    store_close(s);
    free(jobs);
    free(text);
}

/*
 * Launches written in one batch: one that fails after it wrote (here a
 * trigger refuses its session, so its nonce, user and enrollment were
 * written already) leaves nothing of its own and takes nothing of the
 * others' along; a nonce used twice in the batch loses the second time.
 */
static void failing_launch_spares_its_batch(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch_job jobs[5];
    struct pending p = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 5 };
    static const char *const users[] = { "u0", "u1", "u2", "u3", "u4" };
    static const char *const nonces[] = { "n0", "n1", "n2", "n3", "n1" };
    sqlite3 *lock = NULL;
    PGconn *pglock = NULL;

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    if (db_is_pg) {
        poke("CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
             "IF NEW.roles = 'Boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END$$");
        poke("CREATE TRIGGER boom BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION boom()");
        /*
         * another connection keeps launches from claiming nonces (SHARE
         * blocks INSERT): the writer's batch waits on it, the others queue
         */
        pglock = PQconnectdb(dbpath);
        assert_int_equal(PQstatus(pglock), CONNECTION_OK);
        PQclear(PQexec(pglock, "BEGIN"));
        PQclear(PQexec(pglock, "LOCK TABLE nonces IN SHARE MODE"));
    } else {
        poke("CREATE TRIGGER boom BEFORE INSERT ON sessions WHEN NEW.roles = 'Boom' "
             "BEGIN SELECT RAISE(ABORT, 'boom'); END");
        /* another connection holds the write lock: the launches queue up into one batch */
        assert_int_equal(sqlite3_open(dbpath, &lock), SQLITE_OK);
        assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    }
    for (int i = 0; i < 5; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        fill_launch(&jobs[i].launch, c.id, nonces[i], users[i], "c1");
        if (i == 2)
            jobs[i].launch.roles = STR_LIT("Boom");
        jobs[i].done = pending_done;
        jobs[i].cls = &p;
        store_launch_submit(s, &jobs[i]);
    }
    if (pglock) {
        /* the writer waits for the lock */
        while (peek_int("SELECT count(*) FROM pg_locks WHERE NOT granted AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())") == 0)
            usleep(10 * 1000);
        PQclear(PQexec(pglock, "COMMIT"));
        PQfinish(pglock);
    } else {
        usleep(100 * 1000);
        assert_int_equal(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(lock);
    }
    pthread_mutex_lock(&p.mu);
    while (p.left > 0)
        pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);

    assert_int_equal(jobs[0].status, 0);
    assert_int_equal(jobs[1].status, 0);
    assert_int_equal(jobs[3].status, 0);
    assert_int_equal(jobs[2].status, -1);
    assert_int_equal(jobs[2].err.code, ERR_INTERNAL);
    /* n1 again, after u1's launch with it in the same batch */
    assert_int_equal(jobs[4].status, -1);
    assert_int_equal(jobs[4].err.code, ERR_REPLAY);
    /* u2's launch wrote nothing, not even its nonce; the others all of theirs */
    assert_int_equal(count(s, "users"), 3);
    assert_int_equal(count(s, "enrollments"), 3);
    assert_int_equal(count(s, "sessions"), 3);
    assert_int_equal(peek_int("SELECT count(*) FROM users WHERE lti_user_id = 'u2'"), 0);
    poke(db_is_pg ? "DROP TRIGGER boom ON sessions" : "DROP TRIGGER boom");
    fill_launch(&jobs[2].launch, c.id, "n2", "u2", "c1");
    assert_int_equal(store_launch_record(s, &jobs[2].launch, NULL, &err), 0);
    assert_int_equal(count(s, "sessions"), 4);
    store_close(s);
}

/*
 * A replay verified at the edge of the window, then claimed after a launch
 * verified later swept the window and purged `nonces`: the first use's
 * traces are gone, so the replay is refused as out of the window at the
 * latest claim's time, not taken for a first use.
 */
static void replay_claimed_after_a_later_sweep(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    int64_t later = t0 + LIMIT_OAUTH_WINDOW_DEFAULT + 1100;

    SQLITE_ONLY("the in-process nonce window and nonce_log");
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    fill_launch(&l, c.id, "edge", "u1", "c1");
    l.now = t0;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(store_nonce_log_flush(s, &err), 0);
    /* much later: its claim sweeps the window (every 1024 s) and its batch purges `nonces` */
    fill_launch(&l, c.id, "later", "u2", "c1");
    l.timestamp = later;
    l.now = later;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(peek_int("SELECT count(*) FROM nonces"), 0);
    /* the replay of "edge", verified back at t0 */
    fill_launch(&l, c.id, "edge", "u1", "c1");
    l.now = t0;
    assert_refused(s, &l, ERR_INVALID, NULL);
    assert_int_equal(count(s, "sessions"), 2);
    /* the same for an outcomes request's nonce */
    assert_int_equal(store_nonce_claim(s, c.id, STR_LIT("edge-pox"), t0, &err), -1);
    assert_int_equal(err.code, ERR_UNAUTHORIZED);
    store_close(s);
}

/*
 * Schema 9 finds a binding by a pushed sourcedid through the sourcedid's
 * digest: bindings stored before it are found by theirs, and so are those
 * stored after; another consumer's sourcedid, or an unknown one, is not.
 */
static void migration_digests_sourcedids(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c, other;
    struct store_launch l;
    struct store_launch_result res;
    struct store_outcome_target t;
    struct arena a = ARENA_INIT;
    int applied = 0;

    SQLITE_ONLY("SQLite's migration 9");
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_NO_MIGRATE, &err), 0);
    assert_int_equal(store_migrate_to(s, 8, &applied, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    assert_int_equal(store_consumer_add(s, "o", "secret-o-12345678", "Moodle", &other, &err), 0);
    poke("INSERT INTO users(id, consumer_id, lti_user_id, created_at, updated_at) "
         "VALUES (7, 1, 'old-user', 1, 1);"
         "INSERT INTO resource_links(id, consumer_id, lti_resource_link_id, created_at, "
         "updated_at) VALUES (3, 1, 'old-link', 1, 1);"
         "INSERT INTO outcome_bindings(user_id, resource_link_id, service_url, sourcedid, "
         "created_at, updated_at) VALUES (7, 3, 'https://lms.example/outcomes', "
         "'{\"data\":{\"instanceid\":\"3\"},\"hash\":\"ab\"}', 1, 1)");
    assert_int_equal(store_migrate(s, &applied, &err), 0);
    assert_int_equal(applied, store_schema_latest() - 8);
    store_close(s);
    assert_int_equal(peek_int("SELECT count(*) FROM pragma_index_list('outcome_bindings') "
                              "WHERE name = 'outcome_bindings_sourcedid'"),
                     0);

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_outcome_resolve(s, c.id,
                                           "{\"data\":{\"instanceid\":\"3\"},\"hash\":\"ab\"}", &a,
                                           &t, &err),
                     0);
    assert_int_equal(t.user_id, 7);
    assert_int_equal(t.link_id, 3);
    fill_launch(&l, c.id, "d1", "u1", "c1");
    l.result_sourcedid = STR_LIT("new-sourcedid");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(store_outcome_resolve(s, c.id, "new-sourcedid", &a, &t, &err), 0);
    assert_int_equal(t.user_id, res.user_id);
    assert_int_equal(store_outcome_resolve(s, other.id, "new-sourcedid", &a, &t, &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    err_clear(&err);
    assert_int_equal(store_outcome_resolve(s, c.id, "new-sourcedid!", &a, &t, &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    arena_release(&a);
    store_close(s);
}

/*
 * Schema 10 marks edits of a BadgeClass that exists at its platform as due
 * there (a trigger, whoever writes): a BadgeClass stored before it starts
 * with nothing due; an edit of a field the platform holds is due and
 * counted, one that changes nothing or touches only our own fields (the
 * passback score) is not, nor any edit while it has no backend id.
 */
static void migration_marks_badge_edits(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    int applied = 0;

    SQLITE_ONLY("SQLite's migration 13");
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_NO_MIGRATE, &err), 0);
    assert_int_equal(store_migrate_to(s, 9, &applied, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    poke("INSERT INTO badge_classes(id, slug, consumer_id, name, description, image, image_type, "
         "backend, backend_id, created_at, updated_at) VALUES "
         "(1, 'at-platform', 1, 'N', 'D', x'00', 'image/png', 'campus', 'E1', 1, 1), "
         "(2, 'not-yet', 1, 'N', 'D', x'00', 'image/png', 'campus', NULL, 1, 1)");
    assert_int_equal(store_migrate(s, &applied, &err), 0);
    assert_int_equal(applied, store_schema_latest() - 9);
    store_close(s);
    assert_int_equal(peek_int("SELECT count(*) FROM badge_classes WHERE sync_due_at IS NOT NULL "
                              "OR sync_gen != 0 OR sync_attempts != 0 OR sync_error IS NOT NULL"),
                     0);
    /* an edit the platform must hear of */
    poke("UPDATE badge_classes SET name = 'New', updated_at = 50 WHERE id IN (1, 2)");
    assert_int_equal(peek_int("SELECT sync_due_at FROM badge_classes WHERE id = 1"), 50);
    assert_int_equal(peek_int("SELECT sync_gen FROM badge_classes WHERE id = 1"), 1);
    assert_int_equal(peek_int("SELECT sync_due_at IS NULL FROM badge_classes WHERE id = 2"), 1);
    /* sent; then nothing changed, our own field, a new image */
    poke("UPDATE badge_classes SET sync_due_at = NULL WHERE id = 1");
    poke("UPDATE badge_classes SET name = 'New', updated_at = 60 WHERE id = 1");
    poke("UPDATE badge_classes SET passback_score = 0.5, updated_at = 70 WHERE id = 1");
    assert_int_equal(peek_int("SELECT sync_due_at IS NULL FROM badge_classes WHERE id = 1"), 1);
    poke("UPDATE badge_classes SET image = x'0102', updated_at = 80 WHERE id = 1");
    assert_int_equal(peek_int("SELECT sync_due_at FROM badge_classes WHERE id = 1"), 80);
    assert_int_equal(peek_int("SELECT sync_gen FROM badge_classes WHERE id = 1"), 2);
}

/*
 * Schema 6 keeps nonces as digests: the nonces a version-5 database holds,
 * in `nonces` and in its log, are carried over, and their replays refused.
 */
static void migration_keeps_nonces(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    int applied = 0;
    int64_t fp = 0;
    char sql[300];

    SQLITE_ONLY("SQLite's migration 8 (nonces_v6)");
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_NO_MIGRATE, &err), 0);
    assert_int_equal(store_migrate_to(s, 5, &applied, &err), 0);
    assert_int_equal(applied, 5);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    snprintf(sql, sizeof(sql),
             "INSERT INTO nonces(ts, consumer_id, nonce) VALUES (%" PRId64 ", %" PRId64
             ", 'old-1'), (%" PRId64 ", %" PRId64 ", 'old-2');"
             "INSERT INTO nonce_log(ts, consumer_id, nonce) VALUES (%" PRId64 ", %" PRId64
             ", 'logged-1')",
             t0, c.id, t0 - 1, c.id, t0, c.id);
    poke(sql);
    assert_int_equal(store_migrate(s, &applied, &err), 0);
    assert_int_equal(applied, store_schema_latest() - 5);
    store_close(s);
    /* schema 8 keeps the digests that covered the timestamp apart, log included */
    assert_int_equal(peek_int("SELECT count(*) FROM nonces_v6"), 3);
    assert_int_equal(peek_int("SELECT count(*) FROM nonces"), 0);
    assert_int_equal(peek_int("SELECT count(*) FROM nonce_log"), 0);
    assert_int_equal(store_nonce_fp_v6(c.id, t0 - 1, STR_LIT("old-2"), &fp, &err), 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM nonces_v6 WHERE ts = %" PRId64 " AND fp = %" PRId64, t0 - 1, fp);
    assert_int_equal(peek_int(sql), 1);

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    fill_launch(&l, c.id, "old-1", "u1", "c1");
    assert_refused(s, &l, ERR_REPLAY, NULL);
    fill_launch(&l, c.id, "logged-1", "u1", "c1");
    assert_refused(s, &l, ERR_REPLAY, NULL);
    /*
     * old-2 was claimed with another timestamp, under a digest that covered
     * it: that one cannot be recognized with another timestamp
     */
    fill_launch(&l, c.id, "old-2", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(count(s, "sessions"), 1);
    /* and now it is claimed the new way */
    fill_launch(&l, c.id, "old-2", "u1", "c1");
    l.timestamp = t0 + 5;
    assert_refused(s, &l, ERR_REPLAY, NULL);
    store_close(s);

    /* nonces_v6 stays while a nonce of it may still be in a window, then goes */
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    store_close(s);
    assert_int_equal(peek_int("SELECT count(*) FROM nonces_v6"), 3);
    snprintf(sql, sizeof(sql), "UPDATE nonces_v6 SET ts = ts - %d", LIMIT_OAUTH_WINDOW_MAX + 2);
    poke(sql);
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    store_close(s);
    assert_int_equal(peek_int("SELECT count(*) FROM sqlite_schema WHERE name = 'nonces_v6'"), 0);
}

/*
 * A nonce is used once within the window whatever the timestamp that comes
 * with it: in the same batch, after the log moved, after a restart, and
 * between launches and outcomes requests.
 */
static void nonce_refused_whatever_its_timestamp(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c, c2;
    struct store_launch l;
    struct store_launch_result res;

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "K", &c, &err), 0);
    assert_int_equal(store_consumer_add(s, "k2", "secret-k-12345678", "K2", &c2, &err), 0);
    fill_launch(&l, c.id, "n1", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    for (int d = -2; d <= 2; d++) {
        fill_launch(&l, c.id, "n1", "u2", "c2");
        l.timestamp = t0 + d * 100;
        assert_refused(s, &l, ERR_REPLAY, NULL);
    }
    /* another consumer's nonce is its own */
    fill_launch(&l, c2.id, "n1", "u1", "c1");
    l.timestamp = t0 + 1;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    /* outcomes requests share the window, both ways */
    assert_int_equal(store_nonce_claim(s, c.id, STR_LIT("n1"), t0 + 7, &err), -1);
    assert_int_equal(err.code, ERR_REPLAY);
    err_clear(&err);
    assert_int_equal(store_nonce_claim(s, c.id, STR_LIT("o1"), t0, &err), 0);
    assert_int_equal(store_nonce_claim(s, c.id, STR_LIT("o1"), t0 + 1, &err), -1);
    assert_int_equal(err.code, ERR_REPLAY);
    err_clear(&err);
    fill_launch(&l, c.id, "o1", "u1", "c1");
    l.timestamp = t0 - 3;
    assert_refused(s, &l, ERR_REPLAY, NULL);
    assert_int_equal(store_nonce_log_flush(s, &err), 0);
    store_close(s);

    /* a restart reads the window back from `nonces` */
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    fill_launch(&l, c.id, "n1", "u1", "c1");
    l.timestamp = t0 + 11;
    assert_refused(s, &l, ERR_REPLAY, NULL);
    fill_launch(&l, c.id, "o1", "u1", "c1");
    l.timestamp = t0 + 12;
    assert_refused(s, &l, ERR_REPLAY, NULL);
    /* a nonce out of the window may come again (the launch's own time was checked before) */
    fill_launch(&l, c.id, "n2", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    fill_launch(&l, c.id, "n2", "u1", "c1");
    l.timestamp = l.now = t0 + LIMIT_OAUTH_WINDOW_DEFAULT + 5;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    fill_launch(&l, c.id, "n2", "u1", "c1");
    l.timestamp = l.now = t0 + LIMIT_OAUTH_WINDOW_DEFAULT + 6;
    assert_refused(s, &l, ERR_REPLAY, NULL);
    store_close(s);
}

/*
 * The window grows past its first table and sweeps what left the window:
 * every nonce claimed stays refused, whatever its timestamp, and one given
 * back is free again.
 */
static void nonce_window_grows_and_sweeps(void **state)
{
    enum { N = 200000 };
    struct store *s = NULL;
    struct err err = ERR_INIT;
    int64_t fp;
    char nonce[32];
    size_t peak;

    assert_int_equal(store_open(&s, dbpath, 0, &err), 0);
    for (int i = 0; i < N; i++) {
        snprintf(nonce, sizeof(nonce), "w-%d", i);
        assert_int_equal(store_nonce_fp(1, str_from_cstr(nonce), &fp, &err), 0);
        assert_true(store_nonce_window_claim(s, fp, t0 - (i % 300), t0));
    }
    peak = s->nonces.cap;
    assert_true(peak >= 2 * N);
    for (int i = 0; i < N; i += 7) {
        snprintf(nonce, sizeof(nonce), "w-%d", i);
        assert_int_equal(store_nonce_fp(1, str_from_cstr(nonce), &fp, &err), 0);
        assert_false(store_nonce_window_claim(s, fp, t0 + 3, t0));
        /* the one of another consumer is not */
        assert_int_equal(store_nonce_fp(2, str_from_cstr(nonce), &fp, &err), 0);
        assert_true(store_nonce_window_claim(s, fp, t0, t0));
        store_nonce_window_unclaim(s, fp, t0);
        assert_true(store_nonce_window_claim(s, fp, t0, t0));
    }
    /* given back in the middle of the probe chains: the others are still found */
    for (int i = 0; i < N; i += 2) {
        snprintf(nonce, sizeof(nonce), "w-%d", i);
        assert_int_equal(store_nonce_fp(1, str_from_cstr(nonce), &fp, &err), 0);
        store_nonce_window_unclaim(s, fp, t0 - (i % 300));
    }
    for (int i = 0; i < N; i++) {
        snprintf(nonce, sizeof(nonce), "w-%d", i);
        assert_int_equal(store_nonce_fp(1, str_from_cstr(nonce), &fp, &err), 0);
        if (i % 2) {
            assert_false(store_nonce_window_claim(s, fp, t0, t0));
        } else {
            assert_true(store_nonce_window_claim(s, fp, t0, t0));
            store_nonce_window_unclaim(s, fp, t0);
        }
    }
    /*
     * Idle for longer than the 16 bits of timestamp cover: a nonce is not
     * taken for another (its low bits would read as a time to come)
     */
    assert_int_equal(store_nonce_fp(1, STR_LIT("w-1"), &fp, &err), 0);
    assert_true(store_nonce_window_claim(s, fp, t0 + 40000, t0 + 40000));
    assert_false(store_nonce_window_claim(s, fp, t0 + 40001, t0 + 40001));
    assert_true(s->nonces.cap < peak);
    assert_int_equal(s->nonces.used, 1);
    store_close(s);
    assert_int_equal(store_open(&s, dbpath, 0, &err), 0);
    for (int i = 0; i < N; i++) {
        snprintf(nonce, sizeof(nonce), "w-%d", i);
        assert_int_equal(store_nonce_fp(1, str_from_cstr(nonce), &fp, &err), 0);
        assert_true(store_nonce_window_claim(s, fp, t0 - (i % 300), t0));
    }
    /* an hour later every one of them left the window: the table shrinks back */
    assert_int_equal(store_nonce_fp(1, STR_LIT("later"), &fp, &err), 0);
    assert_true(store_nonce_window_claim(s, fp, t0 + 3600, t0 + 3600));
    assert_true(s->nonces.cap < peak);
    assert_int_equal(s->nonces.used, 1);
    for (int i = 1; i < N; i += 1000) {
        snprintf(nonce, sizeof(nonce), "w-%d", i);
        assert_int_equal(store_nonce_fp(1, str_from_cstr(nonce), &fp, &err), 0);
        assert_true(store_nonce_window_claim(s, fp, t0 + 3600, t0 + 3600));
    }
    store_close(s);
}

/*
 * The writer skips rows a relaunch would write unchanged; every change must
 * still reach the database: roles, the outcome binding, the hourly
 * last_launch_at, and rows another connection deleted meanwhile.
 */
static void relaunches_write_what_changed(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    char text[64];
    int64_t t = util_now();

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    fill_launch(&l, c.id, "r1", "u1", "c1");
    l.now = t;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_true(res.first_in_context);

    /* unchanged, minutes later: last_launch_at is not rewritten */
    fill_launch(&l, c.id, "r2", "u1", "c1");
    l.now = t + 60;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_false(res.first_in_context);
    assert_int_equal(peek_int("SELECT last_launch_at FROM enrollments"), t);

    /*
     * New roles are written at once; a new sourcedid alone is not (every
     * Moodle and Canvas launch brings one, and they accept any they issued):
     * the binding keeps the one it has for an hour
     */
    fill_launch(&l, c.id, "r3", "u1", "c1");
    l.now = t + 120;
    l.roles = STR_LIT("Instructor");
    l.result_sourcedid = STR_LIT("sourced-2");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    peek_text("SELECT roles FROM enrollments", text, sizeof(text));
    assert_string_equal(text, "Instructor");
    assert_int_equal(peek_int("SELECT last_launch_at FROM enrollments"), t + 120);
    peek_text("SELECT sourcedid FROM outcome_bindings", text, sizeof(text));
    assert_string_equal(text, "sourced-1");
    assert_int_equal(peek_int("SELECT updated_at FROM outcome_bindings"), t);

    /* back to the first values: written again, not taken for unchanged */
    fill_launch(&l, c.id, "r4", "u1", "c1");
    l.now = t + 180;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    peek_text("SELECT roles FROM enrollments", text, sizeof(text));
    assert_string_equal(text, "Learner");

    /* another outcome service: written at once, with the launch's sourcedid */
    fill_launch(&l, c.id, "r4b", "u1", "c1");
    l.now = t + 240;
    l.outcome_service_url = STR_LIT("https://lms.example.edu/other/outcomes");
    l.result_sourcedid = STR_LIT("sourced-3");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    peek_text("SELECT sourcedid FROM outcome_bindings", text, sizeof(text));
    assert_string_equal(text, "sourced-3");
    peek_text("SELECT service_url FROM outcome_bindings", text, sizeof(text));
    assert_string_equal(text, "https://lms.example.edu/other/outcomes");

    /* two hours later: last_launch_at is refreshed, and the binding takes the newer sourcedid */
    fill_launch(&l, c.id, "r5", "u1", "c1");
    l.timestamp = l.now = t + 180 + 7200;
    l.outcome_service_url = STR_LIT("https://lms.example.edu/other/outcomes");
    l.result_sourcedid = STR_LIT("sourced-4");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(peek_int("SELECT last_launch_at FROM enrollments"), t + 180 + 7200);
    peek_text("SELECT sourcedid FROM outcome_bindings", text, sizeof(text));
    assert_string_equal(text, "sourced-4");
    assert_int_equal(peek_int("SELECT updated_at FROM outcome_bindings"), t + 180 + 7200);

    /* another connection removes the binding and the enrollment: the next launch restores them */
    poke("DELETE FROM outcome_bindings; DELETE FROM enrollments");
    fill_launch(&l, c.id, "r6", "u1", "c1");
    l.timestamp = l.now = t + 180 + 7260;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_true(res.first_in_context);
    assert_int_equal(count(s, "enrollments"), 1);
    assert_int_equal(count(s, "outcome_bindings"), 1);
    store_close(s);
}

/*
 * A launch's nonce is logged first and moved into `nonces` every 100 ms or
 * so: a replay is refused before the move, after it, and after a stop that
 * left nonces in the log.
 */
static void nonces_logged_then_moved(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    char sql[200];
    int64_t fp = 0;

    SQLITE_ONLY("SQLite's nonce_log");
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    fill_launch(&l, c.id, "m1", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    fill_launch(&l, c.id, "m2", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    /* claimed, wherever they are by now */
    assert_int_equal(count(s, "nonces"), 2);
    fill_launch(&l, c.id, "m2", "u2", "c2");
    assert_refused(s, &l, ERR_REPLAY, NULL);

    /* later, the next batch moves the log */
    usleep(150 * 1000);
    fill_launch(&l, c.id, "m3", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(peek_int("SELECT count(*) FROM nonces"), 3);
    assert_int_equal(peek_int("SELECT count(*) FROM nonce_log"), 0);
    assert_int_equal(count(s, "nonces"), 3);
    for (int i = 0; i < 2; i++) {
        /* a replay of a moved one, and of the one moved with its own batch */
        fill_launch(&l, c.id, i ? "m3" : "m2", "u2", "c2");
        assert_refused(s, &l, ERR_REPLAY, NULL);
    }
    store_close(s);

    /* a stop that left a nonce in the log: the next writer moves it before it claims any */
    assert_int_equal(store_nonce_fp(c.id, STR_LIT("m4"), &fp, &err), 0);
    snprintf(sql, sizeof(sql),
             "INSERT INTO nonce_log(ts, fp, consumer_id) VALUES (%" PRId64 ", %" PRId64 ", %" PRId64
             ")",
             t0, fp, c.id);
    poke(sql);
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(peek_int("SELECT count(*) FROM nonce_log"), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM nonces WHERE fp = %" PRId64, fp);
    assert_int_equal(peek_int(sql), 1);
    fill_launch(&l, c.id, "m4", "u2", "c2");
    assert_refused(s, &l, ERR_REPLAY, NULL);
    assert_int_equal(count(s, "sessions"), 3);
    store_close(s);
}

struct racer {
    struct store *s;
    int64_t consumer;
    int ok, replay;
    pthread_barrier_t *barrier;
    int idx;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct store_launch l;
    struct err err = ERR_INIT;
    char user[16];

    snprintf(user, sizeof(user), "racer-%d", r->idx);
    fill_launch(&l, r->consumer, "same-nonce", user, "c");
    util_sha256(user, strlen(user), l.session_secret_hash);
    pthread_barrier_wait(r->barrier);
    if (store_launch_record(r->s, &l, NULL, &err) == 0)
        r->ok = 1;
    else if (err.code == ERR_REPLAY)
        r->replay = 1;
    return NULL;
}

static void racing_nonce(void **state)
{
    enum { N = 16 };
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    pthread_t t[N];
    struct racer r[N];
    pthread_barrier_t barrier;
    int ok = 0, replay = 0;

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "K", &c, &err), 0);
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
        r[i] = (struct racer){ s, c.id, 0, 0, &barrier, i };
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ok += r[i].ok;
        replay += r[i].replay;
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(ok, 1);
    assert_int_equal(replay, N - 1);
    assert_int_equal(count(s, "users"), 1);
    assert_int_equal(count(s, "sessions"), 1);
    store_close(s);
}

/*
 * A later launch's batch purges the expired sessions, oldest first, and
 * stops at the first one still valid: expired ones after it wait for it.
 */
static void expired_sessions_purged(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    const int64_t now = util_now();
    /* when each launch's session expires: two expired, one valid, one expired after it */
    const int64_t expires[] = { now - 20, now - 10, now + 3600, now - 5 };
    char nonce[16];

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    for (size_t i = 0; i < 4; i++) {
        snprintf(nonce, sizeof(nonce), "p%zu", i);
        fill_launch(&l, c.id, nonce, "u1", "c1");
        l.now = now - 100; /* recorded when all were valid: a purge then removes nothing */
        l.session_expires = expires[i];
        assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    }
    assert_int_equal(count(s, "sessions"), 4);
    /* now: the next launch's batch purges the two oldest, not the one behind the valid one */
    fill_launch(&l, c.id, "later", "u1", "c1");
    l.session_expires = now + 3600;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(count(s, "sessions"), 3);
    {
        char sql[2][128];

        /* the time as a number, not strftime('%s'): the same SQL on both engines */
        snprintf(sql[0], sizeof(sql[0]),
                 "SELECT count(*) FROM sessions WHERE expires_at < %" PRId64, now);
        assert_int_equal(peek_int(sql[0]), 1);
        snprintf(sql[0], sizeof(sql[0]), "SELECT min(id) FROM sessions WHERE expires_at > %" PRId64,
                 now);
        snprintf(sql[1], sizeof(sql[1]), "SELECT min(id) FROM sessions WHERE expires_at < %" PRId64,
                 now);
        assert_true(peek_int(sql[0]) < peek_int(sql[1]));
    }
    store_close(s);
}

static void sessions(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    struct store_session sess;
    struct arena a = ARENA_INIT;
    unsigned char other[32] = { 0 };

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    fill_launch(&l, c.id, "n1", "u1", "c1");
    l.mode = STR_LIT("verified");
    l.session_expires = util_now() + 100;
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_true(res.session_id > 0);

    assert_int_equal(
        store_session_get(s, res.session_id, l.session_secret_hash, util_now(), &a, &sess, &err),
        0);
    assert_string_equal(sess.user_name, "Ada Lovelace");
    assert_string_equal(sess.context_title, "Intro to Biology");
    assert_string_equal(sess.consumer_name, "Canvas");
    assert_string_equal(sess.mode, "verified");
    assert_int_equal(sess.role_flags, 1);
    /* expired: invisible */
    assert_int_equal(store_session_get(s, res.session_id, l.session_secret_hash, util_now() + 100,
                                       &a, &sess, &err),
                     -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    err_clear(&err);
    /* the right id with the wrong secret, and an id that does not exist */
    assert_int_equal(store_session_get(s, res.session_id, other, util_now(), &a, &sess, &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    err_clear(&err);
    assert_int_equal(store_session_get(s, res.session_id + 1, l.session_secret_hash, util_now(), &a,
                                       &sess, &err),
                     -1);
    err_clear(&err);
    /* a disabled consumer's sessions stop working */
    assert_int_equal(store_consumer_set_enabled(s, "k", false, &err), 0);
    assert_int_equal(
        store_session_get(s, res.session_id, l.session_secret_hash, util_now(), &a, &sess, &err),
        -1);
    /* removing the consumer removes everything its launches stored */
    err_clear(&err);
    assert_int_equal(store_consumer_remove(s, "k", &err), 0);
    assert_int_equal(count(s, "users"), 0);
    assert_int_equal(count(s, "sessions"), 0);
    assert_int_equal(count(s, "nonces"), 0);
    arena_release(&a);
    store_close(s);
}

/* A manual award of a fresh BadgeClass to `user_id` (needs_email while the user has no address). */
static int grant_tx(struct store_tx *tx, void *cls, struct err *err)
{
    const struct store_award_new *a = cls;
    bool added = false;

    if (store_tx_award_add(tx, a, NULL, &added, err) < 0)
        return -1;
    assert_true(added);
    return 0;
}

static void grant(struct store *s, int64_t consumer_id, int64_t user_id, const char *slug_base)
{
    static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    struct store_badge_new b;
    struct store_award_new a;
    struct err err = ERR_INIT;
    char slug[LIMIT_SLUG_LEN + 1];
    int64_t badge_id;

    memset(&b, 0, sizeof(b));
    b.consumer_id = consumer_id;
    b.slug_base = slug_base;
    b.name = "Helper";
    b.description = "Helped";
    b.image = (const unsigned char *)svg;
    b.image_len = sizeof(svg) - 1;
    b.image_type = "image/svg+xml";
    b.backend = "hosted";
    b.rule.kind = RULE_MANUAL;
    assert_int_equal(store_badge_create(s, &b, &badge_id, slug, &err), 0);
    memset(&a, 0, sizeof(a));
    a.badge_id = badge_id;
    a.user_id = user_id;
    a.reason = "manual";
    a.now = util_now();
    assert_int_equal(store_tx_run(s, grant_tx, &a, &err), 0);
}

static int64_t awards_in(struct store *s, int64_t user_id, enum store_award_state st)
{
    struct store_award_filter f = { (int)st, NULL, user_id, NULL, 0 };
    struct store_award *out;
    size_t n = 0;
    struct arena a = ARENA_INIT;
    struct err err = ERR_INIT;

    assert_int_equal(store_award_list(s, &f, &a, &out, &n, &err), 0);
    arena_release(&a);
    return (int64_t)n;
}

struct award_for {
    int64_t consumer_id, badge_id;
};

/* An award of f->badge_id to a learner of the consumer seen for the first time. */
static int award_for_tx(struct store_tx *tx, void *cls, struct err *err)
{
    const struct award_for *f = cls;
    struct store_ids ids;
    struct store_award_new a;
    bool added = false;

    if (store_tx_ensure(tx, f->consumer_id, "u1", "c1", "r1", util_now(), &ids, err) < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.badge_id = f->badge_id;
    a.user_id = ids.user_id;
    a.reason = "manual";
    a.now = util_now();
    return store_tx_award_add(tx, &a, NULL, &added, err);
}

/* A manual BadgeClass of the consumer with `backend` (NULL: chosen by the store) and `dflt`. */
static const char *badge_backend(struct store *s, struct arena *ar, int64_t consumer_id,
                                 const char *backend, const char *dflt, char *slug)
{
    static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    struct store_badge_new b;
    struct store_badge out;
    struct err err = ERR_INIT;
    int64_t id;

    memset(&b, 0, sizeof(b));
    b.consumer_id = consumer_id;
    b.slug_base = "b";
    b.name = "B";
    b.description = "B";
    b.image = (const unsigned char *)svg;
    b.image_len = sizeof(svg) - 1;
    b.image_type = "image/svg+xml";
    b.backend = backend;
    b.default_backend = dflt;
    b.rule.kind = RULE_MANUAL;
    assert_int_equal(store_badge_create(s, &b, &id, slug, &err), 0);
    assert_int_equal(store_badge_get(s, slug, ar, &out, &err), 0);
    return out.backend;
}

/*
 * A BadgeClass edit due at its platform: on PostgreSQL claimed, so that a
 * second worker (another instance's) does not send it too until the lease
 * ends; a newer edit is due at once; on sqlite, with its one worker per
 * scope, a read.
 */
static void badge_sync_claimed(void **state)
{
    static const char svg2[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"2\"/>";
    static const char svg3[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"3\"/>";
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct arena ar = ARENA_INIT;
    struct store_consumer c;
    struct store_badge b;
    struct store_claim_scope campus = { "campus", NULL, 0 };
    struct store_badge_sync due[4];
    char slug[LIMIT_SLUG_LEN + 1];
    size_t n;
    int64_t now;

    (void)state;
    assert_int_equal(store_open(&s, dbpath, 0, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "One", &c, &err), 0);
    badge_backend(s, &ar, c.id, "campus", NULL, slug);
    assert_int_equal(store_badge_get(s, slug, &ar, &b, &err), 0);
    assert_int_equal(store_badge_set_backend_id(s, b.id, "at-campus", &err), 0);
    assert_int_equal(store_badge_set_image(s, slug, (const unsigned char *)svg2, sizeof(svg2) - 1,
                                           "image/svg+xml", &err),
                     0);
    now = util_now();
    assert_int_equal(store_badge_syncs_due(s, &campus, now, 4, due, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(due[0].id, b.id);
    assert_int_equal(store_badge_syncs_due(s, &campus, now, 4, due, &n, &err), 0);
    if (db_is_pg) {
        assert_int_equal(n, 0);
        /* the worker that claimed it vanished: due again after the lease */
        assert_int_equal(
            store_badge_syncs_due(s, &campus, now + LIMIT_AWARDS_REMOTE_LEASE, 4, due, &n, &err),
            0);
        assert_int_equal(n, 1);
    } else {
        assert_int_equal(n, 1);
    }
    /* an edit while it is sent: due at once, the answer to the older one changes nothing */
    assert_int_equal(store_badge_set_image(s, slug, (const unsigned char *)svg3, sizeof(svg3) - 1,
                                           "image/svg+xml", &err),
                     0);
    assert_int_equal(store_badge_sync_done(s, b.id, due[0].gen, 0, NULL, &err), 0);
    assert_int_equal(store_badge_syncs_due(s, &campus, util_now(), 4, due, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_badge_sync_done(s, b.id, due[0].gen, 0, NULL, &err), 0);
    assert_int_equal(
        store_badge_syncs_due(s, &campus, util_now() + LIMIT_AWARDS_REMOTE_LEASE, 4, due, &n, &err),
        0);
    assert_int_equal(n, 0);
    arena_release(&ar);
    store_close(s);
}

/*
 * Which backend a BadgeClass takes: the one given, else its consumer's,
 * else the default given, else hosted; a consumer's change applies to
 * later ones; a move only while it has no award, forgetting its id; what
 * uses each backend.
 */
static void backends_of_badges(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct arena ar = ARENA_INIT;
    struct store_consumer c1, c2;
    struct store_backend_use *use;
    struct store_badge b;
    char slug[LIMIT_SLUG_LEN + 1], moved[LIMIT_SLUG_LEN + 1], awarded[LIMIT_SLUG_LEN + 1];
    size_t n;

    (void)state;
    assert_int_equal(store_open(&s, dbpath, 0, &err), 0);
    assert_int_equal(
        store_consumer_add_backend(s, "k1", "secret-one-123456", "One", "campus", &c1, &err), 0);
    assert_string_equal(c1.backend, "campus");
    assert_int_equal(store_consumer_add(s, "k2", "secret-two-123456", "Two", &c2, &err), 0);
    assert_int_equal(store_consumer_find(s, STR_LIT("k1"), &c1, &err), 0);
    assert_string_equal(c1.backend, "campus");
    assert_int_equal(store_consumer_find(s, STR_LIT("k2"), &c2, &err), 0);
    assert_string_equal(c2.backend, "");

    assert_string_equal(badge_backend(s, &ar, c1.id, NULL, "eu", slug), "campus");
    assert_string_equal(badge_backend(s, &ar, c1.id, "hosted", "eu", slug), "hosted");
    assert_string_equal(badge_backend(s, &ar, c2.id, NULL, "eu", slug), "eu");
    assert_string_equal(badge_backend(s, &ar, c2.id, NULL, NULL, moved), "hosted");
    /* later BadgeClasses only */
    assert_int_equal(store_consumer_set_backend(s, "k2", "campus", &err), 0);
    assert_string_equal(badge_backend(s, &ar, c2.id, NULL, "eu", awarded), "campus");
    assert_int_equal(store_badge_get(s, moved, &ar, &b, &err), 0);
    assert_string_equal(b.backend, "hosted");
    assert_int_equal(store_consumer_set_backend(s, "k2", NULL, &err), 0);
    assert_int_equal(store_consumer_find(s, STR_LIT("k2"), &c2, &err), 0);
    assert_string_equal(c2.backend, "");
    assert_int_equal(store_consumer_set_backend(s, "nope", "campus", &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    err_clear(&err);

    /* a move forgets the id at the old backend, and is refused once there is an award */
    assert_int_equal(store_badge_set_backend_id(s, b.id, "old-id", &err), 0);
    {
        /* an edit the old platform has not taken yet (the trigger marks it) */
        static const char svg2[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"2\"/>";

        assert_int_equal(store_badge_set_image(s, moved, (const unsigned char *)svg2,
                                               sizeof(svg2) - 1, "image/svg+xml", &err),
                         0);
        assert_int_equal(store_badge_get(s, moved, &ar, &b, &err), 0);
        assert_true(b.sync_due_at > 0);
    }
    assert_int_equal(store_badge_set_backend(s, moved, "campus", &err), 0);
    assert_int_equal(store_badge_get(s, moved, &ar, &b, &err), 0);
    assert_string_equal(b.backend, "campus");
    assert_null(b.backend_id);
    assert_int_equal(b.sync_due_at, 0);
    assert_int_equal(store_badge_get(s, awarded, &ar, &b, &err), 0);
    {
        struct award_for f = { c2.id, b.id };

        assert_int_equal(store_tx_run(s, award_for_tx, &f, &err), 0);
    }
    assert_int_equal(store_badge_set_backend(s, awarded, "eu", &err), -1);
    assert_int_equal(err.code, ERR_CONFLICT);
    err_clear(&err);
    assert_int_equal(store_badge_get(s, awarded, &ar, &b, &err), 0);
    assert_string_equal(b.backend, "campus");
    assert_int_equal(store_badge_set_backend(s, "no-such", "campus", &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    err_clear(&err);

    /* what uses each backend: "" is the default's consumers */
    assert_int_equal(store_backend_usage(s, &ar, &use, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(use[0].name, "");
    assert_int_equal(use[0].consumers, 1);
    assert_string_equal(use[1].name, "campus");
    assert_int_equal(use[1].consumers, 1);
    assert_int_equal(use[1].badges, 3);
    assert_string_equal(use[2].name, "eu");
    assert_int_equal(use[2].badges, 1);
    assert_string_equal(use[3].name, "hosted");
    assert_int_equal(use[3].badges, 1);
    arena_release(&ar);
    store_close(s);
}

/*
 * Each backend's worker claims its own due awards, earliest first, through
 * awards.backend (schema 14): filled from the BadgeClass by the migration
 * and by every insert; the built-in worker's "any but the remote ones"
 * takes the earliest of the other backends, merged in (due, id) order.
 */
static void claims_by_backend(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct arena ar = ARENA_INIT;
    struct store_consumer c;
    struct store_award *got;
    size_t n = 0;
    int applied = 0;
    static const char *const remote[] = { "campus" };
    struct store_claim_scope hosted = { NULL, remote, 1 }, campus = { "campus", NULL, 0 };

    SQLITE_ONLY("migrates from schema 13 (PostgreSQL's start at 14)");
    (void)state;
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_NO_MIGRATE, &err), 0);
    assert_int_equal(store_migrate_to(s, 13, &applied, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    poke("INSERT INTO users(id, consumer_id, lti_user_id, email, created_at, updated_at) "
         "VALUES (1, 1, 'u1', 'a@example.edu', 1, 1), (2, 1, 'u2', 'b@example.edu', 1, 1), "
         "(3, 1, 'u3', 'c@example.edu', 1, 1);"
         "INSERT INTO badge_classes(id, slug, consumer_id, name, description, image, image_type, "
         "backend, created_at, updated_at) VALUES "
         "(1, 'h', 1, 'N', 'D', x'00', 'image/png', 'hosted', 1, 1), "
         "(2, 'c', 1, 'N', 'D', x'00', 'image/png', 'campus', 1, 1), "
         "(3, 'o', 1, 'N', 'D', x'00', 'image/png', 'other', 1, 1);"
         /* the platform's backlog is due first; queued, leased, revoked-not-synced, done */
         "INSERT INTO awards(id, uid, badge_class_id, user_id, reason, salt, state, "
         "next_attempt_at, revoke_synced, created_at, updated_at) VALUES "
         "(1, 'a1', 2, 1, 'manual', 's', 'queued', 10, 1, 1, 1), "
         "(2, 'a2', 2, 2, 'manual', 's', 'queued', 10, 1, 1, 1), "
         "(3, 'a3', 1, 1, 'manual', 's', 'queued', 30, 1, 1, 1), "
         "(4, 'a4', 3, 1, 'manual', 's', 'issuing', 20, 1, 1, 1), "
         "(5, 'a5', 1, 2, 'manual', 's', 'revoked', 30, 0, 1, 1), "
         "(6, 'a6', 3, 2, 'manual', 's', 'issued', 5, 1, 1, 1), "
         "(7, 'a7', 1, 3, 'manual', 's', 'queued', 99, 1, 1, 1)");
    assert_int_equal(store_migrate(s, &applied, &err), 0);
    assert_int_equal(peek_int("SELECT count(*) FROM awards a JOIN badge_classes b "
                              "ON b.id = a.badge_class_id WHERE a.backend = b.backend"),
                     7);

    /* not yet due; then the two earliest of the others, in (due, id) order, none of campus's */
    assert_int_equal(store_award_claim(s, &hosted, 19, 60, 8, &ar, &got, &n, &err), 0);
    assert_int_equal(n, 0);
    /*
     * nothing due is found by a read: no write transaction, so another
     * connection's write lock does not hold it up (it failed with "database
     * is locked" after the busy timeout)
     */
    {
        sqlite3 *lock;

        assert_int_equal(sqlite3_open(dbpath, &lock), SQLITE_OK);
        assert_int_equal(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(store_award_claim(s, &campus, 5, 60, 8, &ar, &got, &n, &err), 0);
        assert_int_equal(n, 0);
        assert_int_equal(store_award_claim(s, &hosted, 19, 60, 8, &ar, &got, &n, &err), 0);
        assert_int_equal(n, 0);
        assert_int_equal(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(lock);
    }
    assert_int_equal(store_award_claim(s, &hosted, 50, 60, 2, &ar, &got, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(got[0].id, 4);
    assert_int_equal(got[1].id, 3);
    assert_int_equal(store_award_claim(s, &hosted, 50, 60, 8, &ar, &got, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].id, 5);
    assert_int_equal(store_award_claim(s, &campus, 50, 60, 8, &ar, &got, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(got[0].id, 1);
    assert_int_equal(got[1].id, 2);
    /* no scope: everything due, across backends (the leases above ran out at 110) */
    assert_int_equal(store_award_claim(s, NULL, 110, 60, 8, &ar, &got, &n, &err), 0);
    assert_int_equal(n, 6);
    assert_int_equal(got[0].id, 7);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(got[i].id, (int64_t)i); /* due at 110 each: by id */

    /* a new award takes its BadgeClass's backend; a move (no awards yet) moves them along */
    {
        struct award_for f = { c.id, 3 };

        poke("DELETE FROM awards WHERE badge_class_id = 3");
        assert_int_equal(store_badge_set_backend(s, "o", "eu", &err), 0);
        assert_int_equal(store_tx_run(s, award_for_tx, &f, &err), 0);
        assert_int_equal(peek_int("SELECT count(*) FROM awards WHERE badge_class_id = 3 "
                                  "AND backend = 'eu'"),
                         1);
    }
    poke("UPDATE badge_classes SET backend = 'moved' WHERE id = 3");
    assert_int_equal(peek_int("SELECT count(*) FROM awards WHERE backend = 'moved'"), 1);
    arena_release(&ar);
    store_close(s);
}

/* What the award rules read after a launch or a grade, for every kind, as awards/ does. */
static int read_every_rule(struct store_tx *tx, void *cls, struct err *err)
{
    const int64_t *ids = cls; /* consumer, user, context */

    for (int k = RULE_ENROLLMENT; k <= RULE_MANUAL; k++) {
        struct store_rule_row *rows;
        size_t n;

        if (store_tx_rules(tx, ids[0], (enum store_rule_kind)k, ids[2], &rows, &n, err) < 0 ||
            store_tx_progress_rules(tx, ids[0], (enum store_rule_kind)k, ids[1], 1, 2, &rows, &n,
                                    err) < 0)
            return -1;
    }
    return 0;
}

/*
 * SQLite prepares a statement again on every run when its plan depends on a
 * bound value: one compared with the WHERE of a partial index (rules have
 * one, on kind), a LIKE pattern. Every statement of the launch path, the
 * rules and the sessions runs several times here and must not be prepared
 * again.
 */
static void statements_prepared_once(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    struct store_session sess;
    struct arena a = ARENA_INIT;
    const char *sql = NULL;
    char nonce[16], user[16];

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    for (int i = 0; i < 6; i++) {
        int64_t ids[3];

        snprintf(nonce, sizeof(nonce), "n%d", i);
        snprintf(user, sizeof(user), "u%d", i % 3); /* three first launches, three relaunches */
        fill_launch(&l, c.id, nonce, user, "c1");
        assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
        assert_int_equal(store_session_get(s, res.session_id, l.session_secret_hash, util_now(), &a,
                                           &sess, &err),
                         0);
        ids[0] = c.id;
        ids[1] = res.user_id;
        ids[2] = res.context_id;
        assert_int_equal(store_tx_run(s, read_every_rule, ids, &err), 0);
    }
    grant(s, c.id, res.user_id, "helper");
    grant(s, c.id, res.user_id, "second");
    if (store_stmt_reprepares(s, &sql) > 0)
        fail_msg("prepared again on a run: %s", sql);
    assert_null(sql);
    arena_release(&a);
    store_close(s);
}

/* "ID-SECRET" into the id and the SHA-256 of SECRET, as web/email.c does. */
static int64_t token_hash(const char *token, unsigned char hash[32])
{
    const char *dash = strchr(token, '-');
    int64_t id = 0;

    assert_non_null(dash);
    assert_int_equal(strlen(dash + 1), 64);
    assert_int_equal(str_to_i64((struct str){ token, (size_t)(dash - token) }, 1, INT64_MAX, &id),
                     0);
    util_sha256(dash + 1, 64, hash);
    return id;
}

static void email_confirmations(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    struct store_email_confirmed done;
    struct arena a = ARENA_INIT;
    char token[STORE_EMAIL_TOKEN_MAX + 1], token2[STORE_EMAIL_TOKEN_MAX + 1];
    unsigned char hash[32], wrong[32];
    int64_t id, id2, now = util_now(), exp = 0;
    const char *pending = NULL;

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    fill_launch(&l, c.id, "n1", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);

    /* nothing waits for an address yet: refused */
    assert_int_equal(
        store_email_confirm_create(s, res.user_id, "ada@example.org", now, 60, &id, token, &err),
        -1);
    assert_int_equal(err.code, ERR_CONFLICT);
    err_clear(&err);
    grant(s, c.id, res.user_id, "one");
    grant(s, c.id, res.user_id, "two");
    assert_int_equal(awards_in(s, res.user_id, AWARD_NEEDS_EMAIL), 2);

    /* a link: only the secret's hash is stored */
    assert_int_equal(
        store_email_confirm_create(s, res.user_id, "ada@example.org", now, 60, &id, token, &err),
        0);
    assert_int_equal(token_hash(token, hash), id);
    assert_int_equal(store_email_pending(s, res.user_id, now, &a, &pending, &exp, &err), 0);
    assert_string_equal(pending, "ada@example.org");
    assert_int_equal(exp, now + 60);

    /* the wrong secret, an unknown id, an expired link: refused, nothing changes */
    memcpy(wrong, hash, 32);
    wrong[0] ^= 1;
    assert_int_equal(store_email_confirm(s, id, wrong, now, &a, &done, &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    assert_int_equal(done.refusal, STORE_EMAIL_UNKNOWN);
    err_clear(&err);
    assert_int_equal(store_email_confirm(s, id + 100, hash, now, &a, &done, &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    err_clear(&err);
    assert_int_equal(store_email_confirm(s, id, hash, now + 60, &a, &done, &err), -1);
    assert_int_equal(err.code, ERR_GONE);
    assert_int_equal(done.refusal, STORE_EMAIL_EXPIRED);
    err_clear(&err);
    assert_int_equal(awards_in(s, res.user_id, AWARD_NEEDS_EMAIL), 2);

    /* followed: the address is the user's and both awards are queued, once */
    assert_int_equal(store_email_confirm(s, id, hash, now + 1, &a, &done, &err), 0);
    assert_int_equal(done.refusal, STORE_EMAIL_OK);
    assert_int_equal(done.user_id, res.user_id);
    assert_string_equal(done.email, "ada@example.org");
    assert_false(done.lms_email_kept);
    assert_int_equal(done.released, 2);
    assert_int_equal(awards_in(s, res.user_id, AWARD_QUEUED), 2);
    assert_int_equal(store_email_confirm(s, id, hash, now + 2, &a, &done, &err), -1);
    assert_int_equal(err.code, ERR_GONE);
    assert_int_equal(done.refusal, STORE_EMAIL_USED);
    err_clear(&err);
    assert_int_equal(store_email_pending(s, res.user_id, now, &a, &pending, &exp, &err), 0);
    assert_null(pending);

    /* the user has an address now: no other link, no unconfirmed address */
    assert_int_equal(
        store_email_confirm_create(s, res.user_id, "x@example.org", now, 60, &id2, token2, &err),
        -1);
    assert_int_equal(err.code, ERR_CONFLICT);
    err_clear(&err);
    assert_int_equal(store_email_set_unconfirmed(s, res.user_id, "x@example.org", now, NULL, &err),
                     -1);
    assert_int_equal(err.code, ERR_CONFLICT);
    err_clear(&err);
    arena_release(&a);
    store_close(s);
}

static void email_limits_and_unconfirmed(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    struct store_email_confirmed done;
    struct arena a = ARENA_INIT;
    char token[STORE_EMAIL_TOKEN_MAX + 1], first[STORE_EMAIL_TOKEN_MAX + 1];
    unsigned char hash[32];
    int64_t id, released = -1, now = util_now();

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    fill_launch(&l, c.id, "n1", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    grant(s, c.id, res.user_id, "one");

    /* LIMIT_EMAIL_CONFIRM_PER_HOUR links an hour, the next refused, one more an hour later */
    for (int i = 0; i < LIMIT_EMAIL_CONFIRM_PER_HOUR; i++) {
        assert_int_equal(
            store_email_confirm_create(s, res.user_id, "a@example.org", now, 600, &id, token, &err),
            0);
        if (i == 0)
            memcpy(first, token, sizeof(first));
    }
    assert_int_equal(
        store_email_confirm_create(s, res.user_id, "a@example.org", now, 600, &id, token, &err),
        -1);
    assert_int_equal(err.code, ERR_LIMIT);
    err_clear(&err);
    /*
     * a withdrawn link (its mail failed) stops working but still counts, so
     * a relay that keeps failing is not tried without limit
     */
    assert_int_equal(store_email_confirm_cancel(s, id, &err), 0);
    assert_int_equal(
        store_email_confirm_create(s, res.user_id, "b@example.org", now, 600, &id, token, &err),
        -1);
    assert_int_equal(err.code, ERR_LIMIT);
    err_clear(&err);
    assert_int_equal(store_email_confirm(s, token_hash(token, hash), hash, now, &a, &done, &err),
                     -1);
    assert_int_equal(err.code, ERR_GONE);
    assert_int_equal(done.refusal, STORE_EMAIL_EXPIRED);
    err_clear(&err);
    assert_int_equal(store_email_confirm_cancel(s, id, &err), 0); /* twice: no error */
    assert_int_equal(store_email_confirm_cancel(s, id + 1000, &err), 0);
    assert_int_equal(store_email_confirm(s, token_hash(first, hash), hash, now, &a, &done, &err),
                     -1);
    assert_int_equal(done.refusal, STORE_EMAIL_EXPIRED); /* replaced by the later ones */
    err_clear(&err);
    assert_int_equal(store_email_confirm_create(s, res.user_id, "c@example.org", now + 3601, 600,
                                                &id, token, &err),
                     0);

    /* another user, addresses taken as given */
    fill_launch(&l, c.id, "n2", "u2", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(
        store_email_set_unconfirmed(s, res.user_id, "u2@example.org", now, &released, &err), -1);
    assert_int_equal(err.code, ERR_CONFLICT);
    err_clear(&err);
    grant(s, c.id, res.user_id, "three");
    assert_int_equal(
        store_email_set_unconfirmed(s, res.user_id, "u2@example.org", now, &released, &err), 0);
    assert_int_equal(released, 1);
    assert_int_equal(awards_in(s, res.user_id, AWARD_QUEUED), 1);
    arena_release(&a);
    store_close(s);
}

/*
 * A newer link voids the older ones at once, not only when it is followed:
 * a learner who mistyped the address (a stranger's) and asked again with
 * the right one must not have the stranger receive the badges through the
 * first link. The rows stay, counted by the hourly limit.
 */
static void email_newer_link_voids_older(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    struct store_email_confirmed done;
    struct arena a = ARENA_INIT;
    char typo[STORE_EMAIL_TOKEN_MAX + 1], right[STORE_EMAIL_TOKEN_MAX + 1];
    unsigned char typo_hash[32], right_hash[32];
    int64_t typo_id, right_id, now = util_now(), exp = 0;
    const char *pending = NULL;

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    fill_launch(&l, c.id, "n1", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    grant(s, c.id, res.user_id, "one");

    assert_int_equal(store_email_confirm_create(s, res.user_id, "stranger@example.org", now, 600,
                                                &typo_id, typo, &err),
                     0);
    assert_int_equal(store_email_confirm_create(s, res.user_id, "learner@example.org", now + 5, 600,
                                                &right_id, right, &err),
                     0);
    assert_int_equal(token_hash(typo, typo_hash), typo_id);
    assert_int_equal(store_email_pending(s, res.user_id, now + 6, &a, &pending, &exp, &err), 0);
    assert_string_equal(pending, "learner@example.org");

    /* the stranger follows the first link: refused as expired, nothing released */
    assert_int_equal(store_email_confirm(s, typo_id, typo_hash, now + 6, &a, &done, &err), -1);
    assert_int_equal(err.code, ERR_GONE);
    assert_int_equal(done.refusal, STORE_EMAIL_EXPIRED);
    err_clear(&err);
    assert_int_equal(awards_in(s, res.user_id, AWARD_NEEDS_EMAIL), 1);

    /* the voided link is kept: it counts against the hourly limit */
    for (int i = 2; i < LIMIT_EMAIL_CONFIRM_PER_HOUR; i++) {
        assert_int_equal(store_email_confirm_create(s, res.user_id, "learner@example.org", now + 5,
                                                    600, &right_id, right, &err),
                         0);
    }
    assert_int_equal(store_email_confirm_create(s, res.user_id, "learner@example.org", now + 5, 600,
                                                &right_id, right, &err),
                     -1);
    assert_int_equal(err.code, ERR_LIMIT);
    err_clear(&err);
    assert_int_equal(token_hash(right, right_hash), right_id);

    /* the learner's (newest) link works; the first one still does not */
    assert_int_equal(store_email_confirm(s, right_id, right_hash, now + 7, &a, &done, &err), 0);
    assert_string_equal(done.email, "learner@example.org");
    assert_int_equal(done.released, 1);
    assert_int_equal(store_email_confirm(s, typo_id, typo_hash, now + 8, &a, &done, &err), -1);
    assert_int_equal(done.refusal, STORE_EMAIL_EXPIRED);
    err_clear(&err);
    arena_release(&a);
    store_close(s);
}

/*
 * The LMS sent an address after the link was asked for: following the link
 * keeps the LMS's (a learner's address never replaces it) and says so,
 * rather than reporting the link's address as the user's.
 */
static void email_lms_address_meanwhile(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    struct store_email_confirmed done;
    struct arena a = ARENA_INIT;
    char token[STORE_EMAIL_TOKEN_MAX + 1];
    unsigned char hash[32];
    int64_t id, now = util_now();

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    fill_launch(&l, c.id, "n1", "u1", "c1");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    grant(s, c.id, res.user_id, "one");
    assert_int_equal(
        store_email_confirm_create(s, res.user_id, "given@example.org", now, 600, &id, token, &err),
        0);
    assert_int_equal(token_hash(token, hash), id);

    /* a later launch shares the LMS's address: what waited for one is released then */
    fill_launch(&l, c.id, "n2", "u1", "c1");
    l.email = STR_LIT("lms@example.edu");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    assert_int_equal(awards_in(s, res.user_id, AWARD_NEEDS_EMAIL), 0);

    assert_int_equal(store_email_confirm(s, id, hash, now + 1, &a, &done, &err), 0);
    assert_int_equal(done.refusal, STORE_EMAIL_OK);
    assert_true(done.lms_email_kept);
    assert_int_equal(done.released, 0);
    /* the link is used up all the same */
    assert_int_equal(store_email_confirm(s, id, hash, now + 2, &a, &done, &err), -1);
    assert_int_equal(done.refusal, STORE_EMAIL_USED);
    err_clear(&err);
    arena_release(&a);
    store_close(s);
}

/*
 * Rate limits (store_rate_take): each key counted on its own (the keys of
 * two limits in one call too), a full window refused until it ends, the
 * limits before a full one counted and the ones after not, ended windows
 * purged a chunk at a time, and a key over LIMIT_RATE_KEY_LEN refused.
 */
static void rate_limits(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    const int64_t now = util_now();
    struct store_rate both[] = { { "t-client 192.0.2.1", 3, 60 }, { "t-badge b1", 4, 60 } };
    char key[LIMIT_RATE_KEY_LEN + 2];

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_rate_take(s, both, 2, now + i, &err), 0);
    /* the client's window is full: refused, the badge's not counted */
    assert_int_equal(store_rate_take(s, both, 2, now + 3, &err), -1);
    assert_int_equal(err.code, ERR_LIMIT);
    err_clear(&err);
    assert_int_equal(peek_int("SELECT count FROM rate_limits WHERE key = 't-badge b1'"), 3);
    /* another client: counted apart; the badge's fourth, then the badge is full for it too */
    both[0].key = "t-client 192.0.2.2";
    assert_int_equal(store_rate_take(s, both, 2, now + 4, &err), 0);
    assert_int_equal(store_rate_take(s, both, 2, now + 5, &err), -1);
    assert_int_equal(err.code, ERR_LIMIT);
    err_clear(&err);
    assert_int_equal(peek_int("SELECT count FROM rate_limits WHERE key = 't-client 192.0.2.2'"), 2);
    /* the first client's window ends 60 s after its first event: a new one then */
    both[0].key = "t-client 192.0.2.1";
    assert_int_equal(store_rate_take(s, both, 1, now + 59, &err), -1);
    err_clear(&err);
    assert_int_equal(store_rate_take(s, both, 1, now + 60, &err), 0);
    assert_int_equal(peek_int("SELECT count FROM rate_limits WHERE key = 't-client 192.0.2.1'"), 1);
    /* the badge's window ended too: its row went with that event's purge */
    assert_int_equal(peek_int("SELECT count(*) FROM rate_limits WHERE key = 't-badge b1'"), 0);
    /* ended windows purged, LIMIT_RATE_PURGE_ROWS an event */
    for (int i = 0; i < LIMIT_RATE_PURGE_ROWS + 5; i++) {
        struct store_rate r = { key, 1, 10 };

        snprintf(key, sizeof(key), "t-many %d", i);
        assert_int_equal(store_rate_take(s, &r, 1, now, &err), 0);
    }
    assert_int_equal(peek_int("SELECT count(*) FROM rate_limits"), LIMIT_RATE_PURGE_ROWS + 7);
    {
        struct store_rate r = { "t-later", 1, 10 };

        assert_int_equal(store_rate_take(s, &r, 1, now + 10, &err), 0);
        /* 32 of the 37 short windows gone, the rest at the next event */
        assert_int_equal(peek_int("SELECT count(*) FROM rate_limits"), 5 + 2 + 1);
        r.key = "t-later 2";
        assert_int_equal(store_rate_take(s, &r, 1, now + 10, &err), 0);
        assert_int_equal(peek_int("SELECT count(*) FROM rate_limits WHERE key LIKE 't-many%'"), 0);
    }
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    {
        struct store_rate r = { key, 1, 10 };

        assert_int_equal(store_rate_take(s, &r, 1, now, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        err_clear(&err);
        key[LIMIT_RATE_KEY_LEN] = '\0';
        assert_int_equal(store_rate_take(s, &r, 1, now, &err), 0);
    }
    store_close(s);
}

/*
 * A restart's reclaim of awards left issuing: on sqlite the server is the
 * one worker, so they are due at once; on PostgreSQL another instance may be
 * issuing them, so they stay claimed until their lease ends (they were made
 * due at once, and issued twice, before).
 */
static void reclaim_leaves_other_instances_claims(void **state)
{
    struct store *s = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_launch l;
    struct store_launch_result res;
    struct store_claim_scope scope = { "hosted", NULL, 0 };
    struct store_award *got;
    struct arena a = ARENA_INIT;
    size_t n = 0;
    int64_t reclaimed = -1, now;

    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-k-12345678", "Canvas", &c, &err), 0);
    fill_launch(&l, c.id, "n1", "u1", "c1");
    l.email = STR_LIT("u1@example.edu");
    assert_int_equal(store_launch_record(s, &l, &res, &err), 0);
    grant(s, c.id, res.user_id, "leased");
    now = util_now(); /* the award is due from when grant() queued it */
    assert_int_equal(store_award_claim(s, &scope, now, 120, 8, &a, &got, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_award_reclaim(s, now + 1, &reclaimed, &err), 0);
    assert_int_equal(reclaimed, db_is_pg ? 0 : 1);
    /* what a second worker finds due a second later: nothing on PostgreSQL until the lease ends */
    assert_int_equal(store_award_claim(s, &scope, now + 1, 120, 8, &a, &got, &n, &err), 0);
    assert_int_equal(n, db_is_pg ? 0 : 1);
    if (db_is_pg) {
        assert_int_equal(store_award_claim(s, &scope, now + 120, 120, 8, &a, &got, &n, &err), 0);
        assert_int_equal(n, 1);
    }
    arena_release(&a);
    store_close(s);
}

/*
 * PostgreSQL: a consumer rotated, then disabled, through another store on
 * the database (another instance, the CLI) is what this store's launch
 * cache gives within a second (cache_version, read at most once a second).
 * Before, the cache kept the old secret for as long as the process ran.
 */
static void consumer_cache_follows_other_instances(void **state)
{
    struct store *s = NULL, *other = NULL;
    struct err err = ERR_INIT;
    struct store_consumer c, got;
    bool cached = false;
    int64_t deadline;

    if (!db_is_pg) {
        printf("SKIPPED consumer_cache_follows_other_instances on sqlite: one process\n");
        skip();
    }
    assert_int_equal(store_open(&s, dbpath, STORE_OPEN_WRITER, &err), 0);
    assert_int_equal(store_open(&other, dbpath, 0, &err), 0);
    assert_int_equal(store_consumer_add(s, "k", "secret-old-12345678", "Canvas", &c, &err), 0);
    assert_int_equal(store_consumer_find_cached(s, STR_LIT("k"), &got, &cached, &err), 0);
    assert_int_equal(store_consumer_find_cached(s, STR_LIT("k"), &got, &cached, &err), 0);
    assert_true(cached);
    assert_int_equal(store_consumer_set_secret(other, "k", "secret-new-12345678", &err), 0);
    deadline = util_mono_ns() + 1500000000;
    for (;;) {
        assert_int_equal(store_consumer_find_cached(s, STR_LIT("k"), &got, &cached, &err), 0);
        if (strcmp(got.secret, "secret-new-12345678") == 0)
            break;
        assert_true(util_mono_ns() < deadline);
        usleep(20000);
    }
    assert_true(got.enabled);
    assert_int_equal(store_consumer_set_enabled(other, "k", false, &err), 0);
    deadline = util_mono_ns() + 1500000000;
    for (;;) {
        assert_int_equal(store_consumer_find_cached(s, STR_LIT("k"), &got, &cached, &err), 0);
        if (!got.enabled)
            break;
        assert_true(util_mono_ns() < deadline);
        usleep(20000);
    }
    store_close(other);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_claimed_after_a_later_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_keeps_nonces, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_digests_sourcedids, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_marks_badge_edits, setup, teardown),
        cmocka_unit_test_setup_teardown(nonce_refused_whatever_its_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(nonce_window_grows_and_sweeps, setup, teardown),
        cmocka_unit_test_setup_teardown(consumers, setup, teardown),
        cmocka_unit_test_setup_teardown(consumer_cache_and_confirmation, setup, teardown),
        cmocka_unit_test_setup_teardown(launches_and_replays, setup, teardown),
        cmocka_unit_test_setup_teardown(relaunches_write_what_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(nonces_logged_then_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(racing_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(launches_answered_after_the_wal_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(wal_starts_over_under_load, setup, teardown),
        cmocka_unit_test_setup_teardown(writer_cache_evicts_one_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_launch_spares_its_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_sessions_purged, setup, teardown),
        cmocka_unit_test_setup_teardown(sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(statements_prepared_once, setup, teardown),
        cmocka_unit_test_setup_teardown(email_confirmations, setup, teardown),
        cmocka_unit_test_setup_teardown(email_limits_and_unconfirmed, setup, teardown),
        cmocka_unit_test_setup_teardown(email_newer_link_voids_older, setup, teardown),
        cmocka_unit_test_setup_teardown(email_lms_address_meanwhile, setup, teardown),
        cmocka_unit_test_setup_teardown(backends_of_badges, setup, teardown),
        cmocka_unit_test_setup_teardown(badge_sync_claimed, setup, teardown),
        cmocka_unit_test_setup_teardown(claims_by_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(admin_commits_group_synced, setup, teardown),
        cmocka_unit_test_setup_teardown(rate_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(consumer_cache_follows_other_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(reclaim_leaves_other_instances_claims, setup, teardown),
    };
    /* as main() does: an SVG image is stored only when the rule leaves it as it is */
    static const struct store_svg_rule rule = { image_svg_sanitize,
                                                "<svg xmlns=\"http://www.w3.org/2000/svg\"/>" };

    store_set_svg_rule(&rule);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
