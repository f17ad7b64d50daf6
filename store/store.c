/*
 * store/store.c - connections, the statement table, the launch writer and
 * the checkpointer.
 *
 * One writer thread owns the connection that records launches: it takes
 * every launch queued since its last commit (up to LIMIT_STORE_BATCH), writes
 * them in one BEGIN IMMEDIATE transaction and then answers them all. Under
 * load that turns N fsyncs into one; alone, a launch waits for nothing but
 * its own commit. Readers (consumer lookups, sessions) use a pool of
 * connections and never wait for the writer: that is what WAL is for.
 * Automatic checkpoints are off on every connection; a checkpointer thread
 * runs PASSIVE checkpoints when the WAL grows and once a second, so no
 * request ever pays for one.
 */
#include "base/base.h"
#include "base/log.h"
#include "store/store_int.h"
#include "store/pg.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * WAL pages between checkpoints. Pages written again and again (the end of
 * the sessions and nonces, hot index pages) are copied to the database once
 * per checkpoint, so rarer checkpoints copy less; 4000 pages (16 MiB with
 * 4 KiB pages) bounds the WAL and what a crash recovery reads.
 */
#define STORE_CKPT_PAGES 4000

static int wal_hook(void *cls, sqlite3 *db, const char *name, int pages)
{
    struct store *s = cls;

    /*
     * Runs on the writer after each commit: wake the checkpointer when the
     * WAL grew by STORE_CKPT_PAGES since its last checkpoint (not merely when it is
     * big: a WAL the checkpointer has not caught up with stays big).
     */
    pthread_mutex_lock(&s->ckpt_mu);
    if (pages < s->wal_pages_at_ckpt)
        s->wal_pages_at_ckpt = 0; /* the WAL was restarted from its beginning */
    s->wal_pages = pages;
    if (pages - s->wal_pages_at_ckpt >= STORE_CKPT_PAGES)
        pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->ckpt_mu);
    return SQLITE_OK;
}

int64_t store_digest63(const void *p, size_t n)
{
    unsigned char h[32];
    uint64_t fp = 0;

    util_sha256(p, n, h);
    for (int b = 0; b < 8; b++)
        fp |= (uint64_t)h[b] << (8 * b);
    return (int64_t)(fp >> 1); /* positive, as SQLite keeps it; fixed byte order */
}

int64_t store_sourcedid_fp(struct str sourcedid)
{
    return store_digest63(sourcedid.ptr ? sourcedid.ptr : "", sourcedid.len);
}

int store_db_err(struct conn *c, int rc, const char *what, struct err *err)
{
    if (c && c->db.ops)
        return c->db.ops->err(&c->db, rc, what, err);
    return store_db_sqlite_err(c ? c->db.lite : NULL, rc, what, err);
}

int store_conn_open(struct store *s, struct conn **out, struct err *err)
{
    struct conn *c = xcalloc(1, sizeof(*c));

    *out = NULL;
    if (s->pg) {
        if (store_db_pg_open(s->pg, c, err) < 0) {
            free(c);
            return -1;
        }
        *out = c;
        return 0;
    }
    if (store_db_sqlite_open(s->path, c, err) < 0) {
        store_conn_close(c);
        return -1;
    }
    c->sql = store_sql_sqlite;
    *out = c;
    return 0;
}

void store_conn_close(struct conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < S__COUNT; i++) {
        if (!db_stmt_prepared(&c->stmts[i]))
            continue;
        if (c->stmts[i].ops)
            c->stmts[i].ops->finalize(&c->stmts[i]);
        else
            sqlite3_finalize(c->stmts[i].lite);
    }
    if (c->db.ops)
        c->db.ops->close(&c->db);
    else
        sqlite3_close(c->db.lite);
    free(c);
}

struct db_stmt *store_stmt(struct conn *c, enum stmt_id id, struct err *err)
{
    struct db_stmt *st = &c->stmts[id];
    int rc;

    if (DB_SQLITE_PATH(c->db.ops)) {
        if (st->lite) {
            sqlite3_reset(st->lite);
            sqlite3_clear_bindings(st->lite);
            return st;
        }
        rc = sqlite3_prepare_v3(c->db.lite, c->sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st->lite,
                                NULL);
        if (rc != SQLITE_OK) {
            st->lite = NULL;
            store_db_err(c, rc, "preparing a statement", err);
            return NULL;
        }
        return st;
    }
    if (st->impl) {
        st->ops->reset(st);
        st->ops->clear_bindings(st);
        return st;
    }
    if (!c->sql[id]) {
        err_set(err, ERR_INTERNAL, "database error while preparing a statement");
        err_detail(err, "statement %d has no SQL on this engine", (int)id);
        return NULL;
    }
    return c->db.ops->prepare(&c->db, c->sql[id], st, err) < 0 ? NULL : st;
}

int store_exec(struct conn *c, enum stmt_id id, struct err *err)
{
    struct db_stmt *st = store_stmt(c, id, err);
    int rc;

    if (!st)
        return -1;
    rc = db_step(st);
    db_reset(st);
    if (rc != DB_DONE && rc != DB_ROW)
        return store_db_err(c, rc, "writing", err);
    return 0;
}

bool store_tx_again(struct conn *c, int attempt, struct err *err)
{
    if (DB_SQLITE_PATH(c->db.ops) || !store_db_pg_again(c))
        return false;
    return store_tx_backoff(attempt, err);
}

bool store_tx_backoff(int attempt, struct err *err)
{
    static _Thread_local uint64_t seed;
    int64_t ms;
    struct timespec ts;

    if (attempt >= LIMIT_DB_TX_RETRIES)
        return false;
    /*
     * 5, 20, 80 ms and a random part as long: two instances' transactions
     * that deadlocked, run again in step, would deadlock again
     */
    if (!seed)
        seed = (uint64_t)util_mono_ns() ^ (uint64_t)(uintptr_t)&seed;
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    ms = (int64_t)LIMIT_DB_TX_BACKOFF_MS << (2 * attempt);
    ms += (int64_t)(seed % (uint64_t)ms);
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    LOG(LOG_LEVEL_INFO, "running a transaction again", LOG_STR("error", err ? err->msg : ""),
        LOG_STR("detail", err ? err->detail : ""), LOG_INT("attempt", attempt + 1));
    nanosleep(&ts, NULL);
    if (err)
        err_clear(err);
    return true;
}

int store_step_done(struct conn *c, struct db_stmt *st, const char *what, struct err *err)
{
    int rc = db_step(st);

    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(c, rc, what, err);
    return 0;
}

int store_begin_read(struct conn *c, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_BEGIN_READ, err);
    int rc;

    if (!st)
        return -1;
    rc = db_step(st);
    db_reset(st);
    return rc == DB_DONE ? 0 : store_db_err(c, rc, "starting a read", err);
}

void store_end_read(struct conn *c)
{
    /* a read's end: nothing to keep or lose, and a failed COMMIT leaves no transaction open */
    store_exec(c, S_COMMIT, NULL);
}

void store_col_copy(struct db_stmt *st, int col, char *dst, size_t dstlen)
{
    const char *t = db_column_text(st, col);
    size_t n = t ? db_column_len(st, col) : 0;

    if (n >= dstlen)
        n = dstlen - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

const char *store_col_arena(struct db_stmt *st, int col, struct arena *a)
{
    const char *t = db_column_text(st, col);

    if (!t)
        return NULL;
    return arena_memdupz(a, t, db_column_len(st, col));
}

struct conn *store_reader_get(struct store *s, struct err *err)
{
    struct conn *c = NULL;

    /* one thread's store on PostgreSQL reads on its admin connection (STORE_OPEN_ONE_CONNECTION) */
    if (s->pg && (s->flags & STORE_OPEN_ONE_CONNECTION) && s->admin)
        return s->admin;

    pthread_mutex_lock(&s->pool_mu);
    while (!s->free_readers && s->nreaders >= s->max_readers)
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);
    if (s->free_readers) {
        c = s->free_readers;
        s->free_readers = c->next;
        pthread_mutex_unlock(&s->pool_mu);
        return c;
    }
    s->nreaders++;
    pthread_mutex_unlock(&s->pool_mu);
    if (store_conn_open(s, &c, err) < 0) {
        pthread_mutex_lock(&s->pool_mu);
        s->nreaders--;
        pthread_cond_signal(&s->pool_cv);
        pthread_mutex_unlock(&s->pool_mu);
        return NULL;
    }
    return c;
}

void store_reader_put(struct store *s, struct conn *c)
{
    if (!c || c == s->admin)
        return;
    pthread_mutex_lock(&s->pool_mu);
    c->next = s->free_readers;
    s->free_readers = c;
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}

/* A batch's time, for /metrics: the writer takes the stats lock once per batch anyway. */
static void tx_observe(struct store *s, int64_t ns)
{
    static const int64_t bounds_us[STORE_TX_BUCKETS] = STORE_TX_BOUNDS_US;
    size_t i = 0;

    while (i < STORE_TX_BUCKETS && ns > bounds_us[i] * 1000)
        i++;
    pthread_mutex_lock(&s->stats_mu);
    s->stats.tx_le[i]++;
    s->stats.tx_ns += (uint64_t)ns;
    pthread_mutex_unlock(&s->stats_mu);
}

/*
 * The WAL is synced through a descriptor of our own, opened once: fdatasync
 * covers the file, whichever descriptor names it, and SQLite removes the WAL
 * only when the last connection to the database closes, which the store's
 * own connections never are while it is open.
 *
 * Group commit. The connections that write (the launch writer and the admin
 * connection) run with synchronous = NORMAL, so COMMIT writes the WAL but
 * does not wait for the disk, and the write lock is free again at once.
 * Each commit then counts itself (store_commit_seq) and waits here until an
 * fdatasync that began after it has returned: one caller runs the
 * fdatasync for everyone committed so far, the others wait for it, and a
 * commit made while one runs is covered by the next. Nothing is answered or
 * acted on before its own sync, so a power cut loses only changes nobody
 * was told about; see the README's "Durability".
 */
static int wal_fd_open(struct store *s)
{
    if (s->wal_fd < 0) {
        char path[4096];

        if (snprintf(path, sizeof(path), "%s-wal", s->path) >= (int)sizeof(path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        s->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    return s->wal_fd;
}

uint64_t store_commit_seq(struct store *s)
{
    return __atomic_add_fetch(&s->commits, 1, __ATOMIC_SEQ_CST);
}

int store_durable(struct store *s, uint64_t seq, struct err *err)
{
    int ret = 0;

    if (s->pg)
        return 0; /* PostgreSQL's COMMIT returns once the commit is durable */
    pthread_mutex_lock(&s->dur_mu);
    while (s->dur_synced < seq) {
        uint64_t upto;
        int fd, rc, e = 0;

        if (s->dur_busy) {
            pthread_cond_wait(&s->dur_cv, &s->dur_mu);
            continue;
        }
        /* every commit counted so far has returned from COMMIT: this sync covers it */
        upto = __atomic_load_n(&s->commits, __ATOMIC_SEQ_CST);
        s->dur_busy = true;
        fd = wal_fd_open(s);
        pthread_mutex_unlock(&s->dur_mu);
        rc = fd < 0 ? -1 : fdatasync(fd);
        if (rc < 0)
            e = errno;
        pthread_mutex_lock(&s->dur_mu);
        s->dur_busy = false;
        pthread_cond_broadcast(&s->dur_cv);
        if (rc < 0) {
            LOG(LOG_LEVEL_ERROR, "database: fdatasync of the write-ahead log failed",
                LOG_STR("error", strerror(e)));
            err_set(err, ERR_UNAVAILABLE, "the change could not be saved, please try again");
            err_detail(err, "fdatasync %s-wal: %s", s->path, strerror(e));
            ret = -1;
            break;
        }
        if (upto > s->dur_synced)
            s->dur_synced = upto;
        pthread_mutex_lock(&s->stats_mu);
        s->stats.wal_syncs++;
        pthread_mutex_unlock(&s->stats_mu);
    }
    pthread_mutex_unlock(&s->dur_mu);
    return ret;
}

static void *sync_main(void *arg)
{
    struct store *s = arg;

    pthread_setname_np(pthread_self(), "lb-wal-sync");
    pthread_mutex_lock(&s->sync_mu);
    for (;;) {
        struct store_launch_job *j;

        while (!s->sync_head && !s->sync_stop)
            pthread_cond_wait(&s->sync_cv, &s->sync_mu);
        if (!s->sync_head)
            break; /* stopping, and all answered */
        j = s->sync_head;
        s->sync_head = s->sync_tail = NULL;
        pthread_mutex_unlock(&s->sync_mu);
        /* every batch in the list committed before it was handed over: counted already */
        if (store_durable(s, __atomic_load_n(&s->commits, __ATOMIC_SEQ_CST), NULL) < 0) {
            /*
             * Committed, but not known to be on the disk: not answered as
             * saved. The nonces stay claimed (the rows are there): the LMS
             * must launch anew, which a learner's click does.
             */
            for (struct store_launch_job *k = j; k; k = k->next) {
                if (k->status == 0) {
                    k->status = -1;
                    err_clear(&k->err);
                    err_set(&k->err, ERR_UNAVAILABLE,
                            "the launch could not be saved, please try again");
                }
            }
        }
        while (j) {
            struct store_launch_job *next = j->next;

            j->done(j);
            j = next;
        }
        pthread_mutex_lock(&s->sync_mu);
    }
    pthread_mutex_unlock(&s->sync_mu);
    return NULL;
}

/* Hands a committed batch to the syncer (in order: the list keeps it). */
static void sync_enqueue(struct store *s, struct store_launch_job **batch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        batch[i]->next = i + 1 < n ? batch[i + 1] : NULL;
    pthread_mutex_lock(&s->sync_mu);
    if (s->sync_tail)
        s->sync_tail->next = batch[0];
    else
        s->sync_head = batch[0];
    s->sync_tail = batch[n - 1];
    pthread_cond_signal(&s->sync_cv);
    pthread_mutex_unlock(&s->sync_mu);
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    struct store_launch_job *batch[LIMIT_STORE_BATCH];
    int64_t t0;

    pthread_setname_np(pthread_self(), "lb-writer");
    for (;;) {
        size_t n = 0;

        pthread_mutex_lock(&s->q_mu);
        while (!s->q_head && !s->stopping)
            pthread_cond_wait(&s->q_cv, &s->q_mu);
        if (!s->q_head && s->stopping) {
            pthread_mutex_unlock(&s->q_mu);
            break;
        }
        while (s->q_head && n < LIMIT_STORE_BATCH) {
            batch[n++] = s->q_head;
            s->q_head = s->q_head->next;
            s->q_len--;
        }
        if (!s->q_head)
            s->q_tail = NULL;
        pthread_mutex_unlock(&s->q_mu);

        t0 = util_mono_ns();
        if (s->pg)
            store_launch_batch_pg(s, batch, n);
        else
            store_launch_batch(s, batch, n);
        tx_observe(s, util_mono_ns() - t0);
        sync_enqueue(s, batch, n);
        if (!s->pg)
            store_launch_after_batch(s); /* SQLite's nonce log and WAL */
    }
    return NULL;
}

static void *ckpt_main(void *arg)
{
    struct store *s = arg;

    pthread_setname_np(pthread_self(), "lb-checkpoint");
    pthread_mutex_lock(&s->ckpt_mu);
    while (!s->ckpt_stop) {
        struct timespec until;
        int log = -1, done = -1, rc, started_at;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        if (s->wal_pages - s->wal_pages_at_ckpt < STORE_CKPT_PAGES && !s->ckpt_asked)
            pthread_cond_timedwait(&s->ckpt_cv, &s->ckpt_mu, &until);
        s->ckpt_asked = false;
        if (s->ckpt_stop)
            break;
        started_at = s->wal_pages;
        pthread_mutex_unlock(&s->ckpt_mu);
        /*
         * PASSIVE never waits for the writer or readers; what it could not
         * copy waits for the next round. Once all is copied, the writer's
         * next transaction starts the WAL over from its beginning.
         */
        rc = sqlite3_wal_checkpoint_v2(s->cconn->db.lite, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
                                       &done);
        pthread_mutex_lock(&s->stats_mu);
        s->stats.checkpoints++;
        pthread_mutex_unlock(&s->stats_mu);
        pthread_mutex_lock(&s->ckpt_mu);
        /* busy (the writer is catching up itself): count this round as done all the same */
        s->wal_pages_at_ckpt = rc == SQLITE_OK && log >= 0 ? log : started_at;
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    return NULL;
}

static void store_free(struct store *s)
{
    while (s->free_readers) {
        struct conn *c = s->free_readers;

        s->free_readers = c->next;
        store_conn_close(c);
    }
    store_conn_close(s->admin);
    store_conn_close(s->wconn);
    store_pg_close(s->pg); /* after its connections went back to it */
    store_wcache_free(s->wcache);
    if (s->cconn) {
        /*
         * A last full checkpoint so the WAL does not outlive the server; not
         * waited for when another process holds the database (the WAL then
         * stays, and the next start checkpoints it): a stop never waits out
         * a busy timeout here.
         */
        sqlite3_busy_timeout(s->cconn->db.lite, 0);
        sqlite3_wal_checkpoint_v2(s->cconn->db.lite, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        store_conn_close(s->cconn);
    }
    pthread_mutex_destroy(&s->pool_mu);
    pthread_cond_destroy(&s->pool_cv);
    pthread_mutex_destroy(&s->admin_mu);
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_mutex_destroy(&s->ckpt_mu);
    pthread_cond_destroy(&s->ckpt_cv);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_cond_destroy(&s->sync_cv);
    pthread_mutex_destroy(&s->dur_mu);
    pthread_cond_destroy(&s->dur_cv);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    pthread_mutex_destroy(&s->stats_mu);
    pthread_mutex_destroy(&s->ccache_mu);
    store_nonce_window_release(&s->nonces);
    free(s->path);
    free(s);
}

/*
 * Makes the database file when there is none, mode 0600 whatever the umask
 * (sqlite would make it 0644 less the umask): it holds consumer secrets.
 * sqlite gives the -wal and -shm files it makes the database's mode.
 * With STORE_OPEN_NO_CREATE a missing file is ERR_NOTFOUND.
 */
static int db_file_ready(const char *path, unsigned flags, struct err *err)
{
    struct stat st;
    int fd;

    if (stat(path, &st) == 0 || errno != ENOENT)
        return 0; /* there, or sqlite says why it cannot be opened */
    if (flags & STORE_OPEN_NO_CREATE) {
        err_set(err, ERR_NOTFOUND, "the database does not exist");
        return err_detail(err, "%s: %s", path, strerror(ENOENT));
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) {
        err_set(err, ERR_INTERNAL, "cannot create the database: %s", strerror(errno));
        return err_detail(err, "%s: %s", path, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    return 0;
}

/*
 * SQLite's process-wide settings, before its first use: no memory
 * statistics (nothing reads them, and keeping them takes one global mutex on
 * every allocation and free of every connection, which the launch writer,
 * the readers and the workers then contend for).
 */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
}

/*
 * The store on PostgreSQL: the pool, its schema migrated (under the
 * advisory lock) unless STORE_OPEN_NO_MIGRATE, the admin connection, and for
 * the server the launch writer (store_launch_batch_pg) and its answering
 * thread; no checkpointer (PostgreSQL's own), no writer cache or nonce
 * window (instances share the database, not their memory). The pool's
 * connections: the admin's, the writer's, one for migrations and version
 * reads, and `pool` readers: those of `pg` when the caller opened them
 * already (store_open_on_pg), else opened here.
 */
static int open_pg(struct store *s, struct store_pg *pg, const char *url, unsigned pool,
                   unsigned flags, struct err *err)
{
    int before = 0, applied = 0, version = 0;

    if (pool == 0 || pool > LIMIT_DB_POOL_MAX) {
        store_pg_close(pg);
        return err_set(err, ERR_INVALID, "the database pool must hold 1 to %d connections",
                       LIMIT_DB_POOL_MAX);
    }
    s->max_readers = pool;
    if (pg) {
        s->pg = pg;
        store_pg_resize(pg, pool + 3);
    } else if (store_pg_open(&s->pg, url, pool + 3, err) < 0)
        return -1;
    if (!(flags & STORE_OPEN_NO_MIGRATE) &&
        store_pg_migrate(s->pg, store_pg_schema_latest(), &before, &applied, err) < 0)
        return -1;
    if (store_pg_schema_version(s->pg, &version, err) < 0)
        return -1;
    if (version > store_schema_latest())
        return err_set(err, ERR_INVALID,
                       "the database schema (version %d) is newer than this build knows (%d)",
                       version, store_schema_latest());
    if (version == 0)
        return err_set(err, ERR_NOTFOUND, "the database has no ltibadges schema yet");
    if (store_conn_open(s, &s->admin, err) < 0)
        return -1;
    if (!(flags & STORE_OPEN_WRITER))
        return 0;
    if (store_conn_open(s, &s->wconn, err) < 0)
        return -1;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        return err_set(err, ERR_INTERNAL, "cannot start the database writer");
    s->writer_started = true;
    /* answers the batches (store_durable has nothing to wait for here) */
    if (pthread_create(&s->syncer, NULL, sync_main, s) != 0)
        return err_set(err, ERR_INTERNAL, "cannot start the database syncer");
    s->syncer_started = true;
    return 0;
}

int store_open(struct store **out, const char *path, unsigned flags, struct err *err)
{
    return store_open_pool(out, path, LIMIT_DB_POOL_DEFAULT, flags, err);
}

static int open_store(struct store **out, struct store_pg *pg, const char *path, unsigned pool,
                      unsigned flags, struct err *err);

int store_open_pool(struct store **out, const char *path, unsigned pool, unsigned flags,
                    struct err *err)
{
    return open_store(out, NULL, path, pool, flags, err);
}

int store_open_on_pg(struct store **out, struct store_pg *pg, const char *url, unsigned pool,
                     unsigned flags, struct err *err)
{
    return open_store(out, pg, url, pool, flags, err);
}

static int open_store(struct store **out, struct store_pg *pg, const char *path, unsigned pool,
                      unsigned flags, struct err *err)
{
    struct store *s = xcalloc(1, sizeof(*s));
    int version = 0, applied = 0;

    pthread_once(&sqlite_once, sqlite_setup);
    *out = NULL;
    s->path = xstrdup(path);
    s->flags = flags;
    s->nonce_window = LIMIT_OAUTH_WINDOW_DEFAULT;
    store_nonce_window_init(&s->nonces);
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    pthread_mutex_init(&s->admin_mu, NULL);
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_cond_init(&s->q_cv, NULL);
    pthread_mutex_init(&s->ckpt_mu, NULL);
    s->wal_restart_pages = LIMIT_STORE_WAL_RESTART_PAGES;
    s->catch_up_pages = LIMIT_STORE_CATCH_UP_PAGES;
    pthread_cond_init(&s->ckpt_cv, NULL);
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_cond_init(&s->sync_cv, NULL);
    pthread_mutex_init(&s->dur_mu, NULL);
    pthread_cond_init(&s->dur_cv, NULL);
    s->wal_fd = -1;
    pthread_mutex_init(&s->stats_mu, NULL);
    pthread_mutex_init(&s->ccache_mu, NULL);
    s->max_readers = LIMIT_STORE_READERS;

    if (pg || store_path_is_pg(path)) {
        if (open_pg(s, pg, path, pool, flags, err) < 0)
            goto fail;
        *out = s;
        return 0;
    }
    if (db_file_ready(path, flags, err) < 0 || store_conn_open(s, &s->admin, err) < 0)
        goto fail;
    if (!(flags & STORE_OPEN_NO_MIGRATE) &&
        store_migrate_conn(s->admin, store_schema_latest(), &applied, err) < 0)
        goto fail;
    if (store_version_conn(s->admin, &version, err) < 0)
        goto fail;
    if (version > store_schema_latest()) {
        err_set(err, ERR_INVALID,
                "the database schema (version %d) is newer than this build knows (%d)", version,
                store_schema_latest());
        goto fail;
    }
    /*
     * From here on its commits are made durable by store_durable after the
     * write lock is released (store_admin_end), not inside COMMIT.
     */
    if (sqlite3_exec(s->admin->db.lite, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) !=
        SQLITE_OK) {
        err_set(err, ERR_INTERNAL, "cannot set up the database");
        goto fail;
    }
    /* before any other connection prepares a statement: dropping the table changes the schema */
    if (version >= 8 && store_nonce_v6_open(s, s->admin, util_now(), err) < 0)
        goto fail;
    if (flags & STORE_OPEN_WRITER) {
        if (store_conn_open(s, &s->wconn, err) < 0 || store_conn_open(s, &s->cconn, err) < 0)
            goto fail;
        sqlite3_wal_hook(s->wconn->db.lite, wal_hook, s);
        /* the writer's working set (right edges, recent users) deserves more cache */
        sqlite3_exec(s->wconn->db.lite, "PRAGMA cache_size = -4096", NULL, NULL, NULL);
        /* its commits are synced (store_durable) by the syncer before they are answered */
        if (sqlite3_exec(s->wconn->db.lite, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) !=
            SQLITE_OK) {
            err_set(err, ERR_INTERNAL, "cannot set up the database writer");
            goto fail;
        }
        {
            /* sized for the rows there are: a term's working set fits without evictions */
            static const char *const wt[] = { "consumers", "users", "contexts", "resource_links" };
            static const char *const mt[] = { "enrollments", "outcome_bindings" };
            int64_t wrows[4] = { 0 }, mrows[2] = { 0 };

            for (int i = 0; i < 4; i++) {
                if (store_count(s, wt[i], &wrows[i], err) < 0)
                    goto fail;
            }
            for (int i = 0; i < 2; i++) {
                if (store_count(s, mt[i], &mrows[i], err) < 0)
                    goto fail;
            }
            s->wcache = store_wcache_new(wrows, mrows);
        }
        /* the writer remembers only the nonces it logs itself: a stop's leftovers go first */
        if (store_nonce_log_flush(s, err) < 0 ||
            store_nonce_window_load(s, s->wconn, util_now(), err) < 0)
            goto fail;
        if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
            err_set(err, ERR_INTERNAL, "cannot start the database writer");
            goto fail;
        }
        s->writer_started = true;
        if (pthread_create(&s->syncer, NULL, sync_main, s) != 0) {
            err_set(err, ERR_INTERNAL, "cannot start the database syncer");
            store_close(s);
            return -1;
        }
        s->syncer_started = true;
        if (pthread_create(&s->ckpt, NULL, ckpt_main, s) != 0) {
            err_set(err, ERR_INTERNAL, "cannot start the checkpointer");
            store_close(s);
            return -1;
        }
        s->ckpt_started = true;
    }
    *out = s;
    return 0;
fail:
    if (s->writer_started) {
        store_close(s);
        return -1;
    }
    store_free(s);
    return -1;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->writer_started) {
        pthread_mutex_lock(&s->q_mu);
        s->stopping = true;
        pthread_cond_broadcast(&s->q_cv);
        pthread_mutex_unlock(&s->q_mu);
        pthread_join(s->writer, NULL);
    }
    if (s->syncer_started) {
        /* after the writer: it answers every batch the writer handed it, then stops */
        pthread_mutex_lock(&s->sync_mu);
        s->sync_stop = true;
        pthread_cond_broadcast(&s->sync_cv);
        pthread_mutex_unlock(&s->sync_mu);
        pthread_join(s->syncer, NULL);
    }
    if (s->ckpt_started) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_stop = true;
        pthread_cond_broadcast(&s->ckpt_cv);
        pthread_mutex_unlock(&s->ckpt_mu);
        pthread_join(s->ckpt, NULL);
    }
    store_free(s);
}

void store_set_nonce_window(struct store *s, int64_t seconds)
{
    s->nonce_window = seconds;
}

int store_ping(struct store *s, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    int ret;

    if (!c)
        return -1;
    ret = store_exec(c, S_PING, err);
    store_reader_put(s, c);
    return ret;
}

/* min(next_attempt_at) of statement `id` (binding `now`) on a connection of its own. */
static int health_due(sqlite3 *db, enum stmt_id id, int64_t now, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, store_sql_sqlite[id], -1, &st, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        rc = sqlite3_step(st);
        *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        rc = rc == SQLITE_ROW ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

/* store_health on PostgreSQL: a reader of the pool, which remakes a connection that broke. */
static int health_pg(struct store *s, int64_t now, int64_t *award, int64_t *passback,
                     struct err *err)
{
    static const enum stmt_id ids[] = { S_METRICS_AWARD_DUE, S_METRICS_PASSBACK_DUE };
    int64_t *outs[] = { award, passback };
    struct conn *c = store_reader_get(s, err);
    int ret = 0;

    if (!c)
        return -1;
    for (size_t i = 0; i < 2 && ret == 0; i++) {
        struct db_stmt *st = store_stmt(c, ids[i], err);
        int rc;

        if (!st) {
            ret = -1;
            break;
        }
        db_bind_int64(st, 1, now);
        rc = db_step(st);
        if (rc == DB_ROW)
            *outs[i] = db_column_int64(st, 0);
        else
            ret = store_db_err(c, rc, "reading the outboxes", err);
        db_reset(st);
    }
    store_reader_put(s, c);
    return ret;
}

int store_health(struct store *s, int64_t now, int64_t *award, int64_t *passback, struct err *err)
{
    sqlite3 *db = NULL;
    int rc;

    *award = *passback = 0;
    if (s->pg)
        return health_pg(s, now, award, passback, err);
    /* never SQLITE_OPEN_CREATE: a database gone from its path is not made anew */
    rc = sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, LIMIT_STORE_BUSY_MS);
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        rc = health_due(db, S_METRICS_AWARD_DUE, now, award);
    }
    if (rc == SQLITE_OK)
        rc = health_due(db, S_METRICS_PASSBACK_DUE, now, passback);
    if (rc != SQLITE_OK) {
        /* sqlite's reason is no secret and says what an operator must look at */
        err_set(err, ERR_UNAVAILABLE, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        err_detail(err, "sqlite: %s: %s", s->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    }
    sqlite3_close_v2(db);
    return rc == SQLITE_OK ? 0 : -1;
}

void store_stats(struct store *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->stats_mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->stats_mu);
}

static void conn_reprepares(struct conn *c, int *most, const char **sql)
{
    for (int i = 0; c && i < S__COUNT; i++) {
        int n = c->stmts[i].lite
                    ? sqlite3_stmt_status(c->stmts[i].lite, SQLITE_STMTSTATUS_REPREPARE, 0)
                    : 0;

        if (n > *most) {
            *most = n;
            *sql = store_sql_sqlite[i];
        }
    }
}

int store_stmt_reprepares(struct store *s, const char **sql)
{
    const char *worst = NULL;
    int most = 0;

    pthread_mutex_lock(&s->pool_mu);
    for (struct conn *c = s->free_readers; c; c = c->next)
        conn_reprepares(c, &most, &worst);
    pthread_mutex_unlock(&s->pool_mu);
    pthread_mutex_lock(&s->admin_mu);
    conn_reprepares(s->admin, &most, &worst);
    pthread_mutex_unlock(&s->admin_mu);
    conn_reprepares(s->wconn, &most, &worst); /* idle: no launch is running (see store.h) */
    if (sql)
        *sql = worst;
    return most;
}

int store_row_counts(struct store *s, struct store_row_counts *out, struct err *err)
{
    const struct {
        enum stmt_id id;
        int64_t *n;
    } what[] = {
        { S_COUNT_CONSUMERS, &out->consumers },
        { S_COUNT_NONCES, &out->nonces },
        { S_COUNT_USERS, &out->users },
        { S_COUNT_CONTEXTS, &out->contexts },
        { S_COUNT_LINKS, &out->resource_links },
        { S_COUNT_ENROLLMENTS, &out->enrollments },
        { S_COUNT_BINDINGS, &out->outcome_bindings },
        { S_COUNT_SESSIONS, &out->sessions },
        { S_COUNT_BADGES, &out->badge_classes },
        { S_COUNT_AWARDS, &out->awards },
        { S_COUNT_GRADES, &out->grades },
        { S_COUNT_COMPLETIONS, &out->completions },
    };
    struct conn *c = store_reader_get(s, err);
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (!c)
        return -1;
    if (store_begin_read(c, err) < 0)
        goto out;
    for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
        struct db_stmt *st = store_stmt(c, what[i].id, err);
        int rc;

        if (!st)
            goto end;
        rc = db_step(st);
        if (rc == DB_ROW)
            *what[i].n = db_column_int64(st, 0);
        db_reset(st);
        if (rc != DB_ROW) {
            store_db_err(c, rc == DB_DONE ? DB_ERROR : rc, "counting", err);
            goto end;
        }
    }
    ret = 0;
end:
    store_end_read(c);
out:
    store_reader_put(s, c);
    return ret;
}

/* The rows of `st` (bound, borrowed), each read by `read` into a growing array of `size`-byte
 * items. */
static int collect(struct conn *c, struct db_stmt *st, struct arena *a, size_t size,
                   void (*read)(struct db_stmt *, struct arena *, void *), void **out, size_t *n,
                   struct err *err)
{
    size_t cap = 4;
    char *v = arena_alloc(a, st_mult(cap, size));
    int rc;

    *n = 0;
    while ((rc = db_step(st)) == DB_ROW) {
        if (*n == cap) {
            char *nv = arena_alloc(a, st_mult(2 * cap, size));

            memcpy(nv, v, st_mult(*n, size));
            v = nv;
            cap *= 2;
        }
        read(st, a, v + st_mult(*n, size));
        (*n)++;
    }
    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(c, rc, "reading a user", err);
    *out = v;
    return 0;
}

static void read_enrollment(struct db_stmt *st, struct arena *a, void *p)
{
    struct store_user_enrollment *e = p;

    e->lti_context_id = store_col_arena(st, 0, a);
    e->roles = store_col_arena(st, 1, a);
    e->ext_roles = store_col_arena(st, 2, a);
    e->role_flags = db_column_int64(st, 3);
    e->mode = store_col_arena(st, 4, a);
    e->first_launch_at = db_column_int64(st, 5);
    e->last_launch_at = db_column_int64(st, 6);
}

static void read_binding(struct db_stmt *st, struct arena *a, void *p)
{
    struct store_user_binding *b = p;

    b->lti_context_id = store_col_arena(st, 0, a);
    b->lti_resource_link_id = store_col_arena(st, 1, a);
    b->sourcedid = store_col_arena(st, 2, a);
    b->service_url = store_col_arena(st, 3, a);
    b->data_values_accepted = store_col_arena(st, 4, a);
    b->last_read_error = store_col_arena(st, 5, a);
    b->created_at = db_column_int64(st, 6);
    b->updated_at = db_column_int64(st, 7);
}

static void read_email_link(struct db_stmt *st, struct arena *a, void *p)
{
    struct store_user_email_link *l = p;
    size_t n = db_column_len(st, 2);

    l->id = db_column_int64(st, 0);
    l->email = store_col_arena(st, 1, a);
    memset(l->secret_hash, 0, sizeof(l->secret_hash));
    if (n == sizeof(l->secret_hash))
        memcpy(l->secret_hash, db_column_blob(st, 2), n);
    l->created_at = db_column_int64(st, 3);
    l->expires_at = db_column_int64(st, 4);
    l->used_at = db_column_int64(st, 5);
}

static void read_grade(struct db_stmt *st, struct arena *a, void *p)
{
    struct store_user_grade *g = p;

    g->lti_resource_link_id = store_col_arena(st, 0, a);
    g->score = db_column_double(st, 1);
    g->source = store_col_arena(st, 2, a);
    g->recorded_at = db_column_int64(st, 3);
}

int store_context_find(struct store *s, int64_t consumer_id, const char *lti_context_id,
                       int64_t *id, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    *id = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_CONTEXT_FIND, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, str_from_cstr(lti_context_id));
    rc = db_step(st);
    if (rc == DB_ROW)
        *id = db_column_int64(st, 0);
    db_reset(st);
    if (rc == DB_ROW)
        ret = 0;
    else if (rc == DB_DONE)
        err_set(err, ERR_NOTFOUND, "course '%s' not found", lti_context_id);
    else
        store_db_err(c, rc, "finding a course", err);
out:
    store_reader_put(s, c);
    return ret;
}

int store_user_get(struct store *s, int64_t consumer_id, const char *lti_user_id, struct arena *a,
                   struct store_user_info *out, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    void *v = NULL;
    int rc, ret = -1;

    memset(out, 0, sizeof(*out));
    if (!c)
        return -1;
    if (store_begin_read(c, err) < 0)
        goto out;
    st = store_stmt(c, S_USER_GET, err);
    if (!st)
        goto end;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, str_from_cstr(lti_user_id));
    rc = db_step(st);
    if (rc == DB_ROW) {
        out->id = db_column_int64(st, 0);
        out->lti_user_id = store_col_arena(st, 1, a);
        out->given_name = store_col_arena(st, 2, a);
        out->family_name = store_col_arena(st, 3, a);
        out->full_name = store_col_arena(st, 4, a);
        out->email = store_col_arena(st, 5, a);
        out->email_source = store_col_arena(st, 6, a);
        out->person_sourcedid = store_col_arena(st, 7, a);
        out->show_name = db_column_int(st, 8) == 1;
        out->created_at = db_column_int64(st, 9);
        out->updated_at = db_column_int64(st, 10);
    }
    db_reset(st);
    if (rc == DB_DONE) {
        err_set(err, ERR_NOTFOUND, "user '%s' not found", lti_user_id);
        goto end;
    }
    if (rc != DB_ROW) {
        store_db_err(c, rc, "reading a user", err);
        goto end;
    }
    st = store_stmt(c, S_USER_ENROLLMENTS, err);
    if (!st)
        goto end;
    db_bind_int64(st, 1, out->id);
    if (collect(c, st, a, sizeof(*out->enrollments), read_enrollment, &v, &out->nenrollments, err) <
        0)
        goto end;
    out->enrollments = v;
    st = store_stmt(c, S_USER_BINDINGS, err);
    if (!st)
        goto end;
    db_bind_int64(st, 1, out->id);
    if (collect(c, st, a, sizeof(*out->bindings), read_binding, &v, &out->nbindings, err) < 0)
        goto end;
    out->bindings = v;
    st = store_stmt(c, S_USER_EMAIL_LINKS, err);
    if (!st)
        goto end;
    db_bind_int64(st, 1, out->id);
    if (collect(c, st, a, sizeof(*out->email_links), read_email_link, &v, &out->nemail_links, err) <
        0)
        goto end;
    out->email_links = v;
    st = store_stmt(c, S_USER_GRADES, err);
    if (!st)
        goto end;
    db_bind_int64(st, 1, out->id);
    if (collect(c, st, a, sizeof(*out->grades), read_grade, &v, &out->ngrades, err) < 0)
        goto end;
    out->grades = v;
    ret = 0;
end:
    store_end_read(c);
out:
    store_reader_put(s, c);
    return ret;
}

int store_count(struct store *s, const char *table, int64_t *out, struct err *err)
{
    static const struct {
        const char *table;
        enum stmt_id id;
    } tables[] = {
        { "consumers", S_COUNT_CONSUMERS },
        { "nonces", S_COUNT_NONCES },
        { "users", S_COUNT_USERS },
        { "contexts", S_COUNT_CONTEXTS },
        { "resource_links", S_COUNT_LINKS },
        { "enrollments", S_COUNT_ENROLLMENTS },
        { "outcome_bindings", S_COUNT_BINDINGS },
        { "sessions", S_COUNT_SESSIONS },
        { "badge_classes", S_COUNT_BADGES },
        { "awards", S_COUNT_AWARDS },
        { "grades", S_COUNT_GRADES },
        { "completions", S_COUNT_COMPLETIONS },
    };
    struct conn *c;
    struct db_stmt *st;
    int ret = -1, rc;

    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        if (strcmp(tables[i].table, table) != 0)
            continue;
        c = store_reader_get(s, err);
        if (!c)
            return -1;
        st = store_stmt(c, tables[i].id, err);
        if (st) {
            rc = db_step(st);
            if (rc == DB_ROW) {
                *out = db_column_int64(st, 0);
                ret = 0;
            } else {
                store_db_err(c, rc, "counting", err);
            }
            db_reset(st);
        }
        store_reader_put(s, c);
        return ret;
    }
    return err_set(err, ERR_INVALID, "unknown table '%s'", table);
}
