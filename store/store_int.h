/*
 * store/store_int.h - what the files of store/ share: connections, cached
 * statements and the store itself.
 */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include "store/store.h"

#include "store/db.h"

#include <pthread.h>
#include <sqlite3.h>

/* Every statement of the module, prepared once per connection on first use. */
enum stmt_id {
    S_PING,
    S_CONSUMER_FIND,
    S_CONSUMER_LIST,
    S_CONSUMER_INSERT,
    S_CONSUMER_DELETE,
    S_CONSUMER_SET_SECRET,
    S_CONSUMER_SET_ENABLED,
    S_CONSUMER_SET_LMS,
    S_CONSUMER_CHECK,
    S_NONCE_INSERT,
    S_NONCE_PURGE,
    S_NONCE_SEEN,
    S_SESSION_PURGE,
    S_USER_UPSERT,
    S_CONTEXT_UPSERT,
    S_LINK_UPSERT,
    S_CONTEXT_FIND,
    S_LINK_FIND,
    S_ENROLL_INSERT,
    S_ENROLL_UPDATE,
    S_BINDING_UPSERT,
    S_SESSION_INSERT,
    S_SESSION_GET,
    S_AWARD_RELEASE_EMAIL,
    S_EMAIL_USER_STATE,
    S_EMAIL_CONFIRM_PURGE,
    S_EMAIL_CONFIRM_INSERT,
    S_EMAIL_CONFIRM_GET,
    S_EMAIL_CONFIRM_USE,
    S_EMAIL_CONFIRM_SUPERSEDE,
    S_EMAIL_CONFIRM_CANCEL,
    S_EMAIL_PENDING,
    S_USER_SET_EMAIL,
    S_USER_SHOW_NAME,
    S_BADGE_HOLDERS,
    S_USER_SET_SHOW_NAME,
    S_USER_ENSURE,
    S_CONTEXT_ENSURE,
    S_LINK_ENSURE,
    S_CONTEXT_SET_ENABLED,
    S_CONTEXT_SET_PASS,
    S_GROUP_UPSERT,
    S_GROUP_FIND,
    S_GROUP_MEMBER_ADD,
    S_SLUG_TAKEN,
    S_BADGE_INSERT,
    S_RULE_INSERT,
    S_BADGE_GET,
    S_BADGE_GET_ID,
    S_BADGE_LIST,
    S_BADGE_LIST_COURSE,
    S_BADGE_SET_BACKEND_ID,
    S_BADGE_SYNC_DUE,
    S_BADGE_SYNC_DONE,
    S_BADGE_SYNC_LEASE,
    S_BADGE_SET_OUTCOMES,
    S_BADGE_UPDATE,
    S_RULE_UPDATE,
    S_BADGE_DELETE,
    S_BADGE_SET_ARCHIVED,
    S_BADGE_SET_IMAGE,
    S_BADGE_AWARDS_ANY,
    S_CAND_ENROLLMENT,
    S_CAND_SCORE,
    S_CAND_COMPLETION,
    S_CAND_GROUP,
    S_CAND_COUNT,
    S_USER_FIND,
    S_CONTEXT_INFO,
    S_LINK_LTI_ID,
    S_ENROLL_MODE,
    S_ENROLL_ROLES,
    S_GRADE_PUT,
    S_COMPLETION_PUT,
    S_COMPLETED_COUNT,
    S_GROUP_COMPLETED,
    S_RULES_FOR,
    S_RULES_PROGRESS,
    S_COMPLETION_BADGE,
    S_AWARD_INSERT,
    S_AWARD_LIST,
    S_AWARD_GET,
    S_AWARD_GET_UID,
    S_AWARD_DUE,
    S_AWARD_DUE_BACKENDS,
    S_AWARD_ANY_DUE,
    S_AWARD_CLAIM,
    S_AWARD_ISSUED,
    S_AWARD_RETRY_LATER,
    S_AWARD_FAILED,
    S_AWARD_REVOKE_SYNCED,
    S_AWARD_REVOKE_RETRY,
    S_AWARD_REQUEUE,
    S_AWARD_REVOKE,
    S_AWARD_IN_COURSE,
    S_OUTBOX_COUNTS,
    S_AWARD_RECLAIM,
    S_AWARD_RELEASE,
    S_OUTBOX_NEXT_DUE,
    S_METRICS_AWARDS,
    S_METRICS_PASSBACKS,
    S_METRICS_AWARD_DUE,
    S_METRICS_PASSBACK_DUE,
    S_CONSUMER_SET_HOSTS,
    S_TOOL_SOURCEDID_FIND,
    S_TOOL_SOURCEDID_GET,
    S_TOOL_SOURCEDID_INSERT,
    S_BINDING_BY_SOURCEDID,
    S_GRADE_GET,
    S_GRADE_DELETE,
    S_EARNED_ON_LINK,
    S_BINDINGS_TO_READ,
    S_BINDING_READ_DONE,
    S_CONTEXT_NEEDS_GRADES,
    S_PB_ENQUEUE,
    S_PB_DUE,
    S_PB_CLAIM,
    S_PB_GET,
    S_PB_DONE,
    S_PB_RETRY,
    S_PB_FAILED,
    S_PB_REQUEUE,
    S_PB_NEXT_DUE,
    S_BEGIN_IMMEDIATE,
    S_BEGIN_READ,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_COUNT_CONSUMERS,
    S_COUNT_NONCES,
    S_COUNT_USERS,
    S_COUNT_CONTEXTS,
    S_COUNT_LINKS,
    S_COUNT_ENROLLMENTS,
    S_COUNT_BINDINGS,
    S_COUNT_SESSIONS,
    S_COUNT_BADGES,
    S_COUNT_AWARDS,
    S_COUNT_GRADES,
    S_COUNT_COMPLETIONS,
    S_USER_GET,
    S_USER_ENROLLMENTS,
    S_USER_BINDINGS,
    S_USER_EMAIL_LINKS,
    S_USER_GRADES,
    S_PAGE_CONTEXT,
    S_PAGE_BADGES,
    S_PAGE_AWARDS,
    S_PAGE_GRADES,
    S_PAGE_COMPLETED,
    S_PAGE_GROUPS,
    S_ADMIN_LINKS,
    S_ADMIN_BADGES,
    S_ADMIN_COUNTS,
    S_ADMIN_LINK_IN_COURSE,
    S_ADMIN_AWARDS,
    S_ADMIN_LEARNERS,
    S_CONSUMER_SET_BACKEND,
    S_BADGE_SET_BACKEND,
    S_BACKEND_USAGE,
    S_HOOK_AWARD_FIND,
    S_HOOK_ISSUED,
    S_HOOK_REVOKED,
    S_HOOK_COUNT,
    S_HOOK_COUNTS_GET,
    S_RATE_TAKE,
    S_RATE_PURGE,
    S_CACHE_VERSION,
    /*
     * SQLite's only: the launch writer's nonce log and its check that no
     * other connection wrote (store/launch.c), the in-memory nonce window's
     * load, and the nonces digested before schema 8 (store/nonces.c). Other
     * engines leave these NULL in their table.
     */
    S_LITE_DATA_VERSION,
    S_LITE_NONCE_LOG,
    S_LITE_NONCE_FLUSH,
    S_LITE_NONCE_LOG_CLEAR,
    S_LITE_NONCE_WINDOW_LOAD,
    S_LITE_NONCE_V6_EXISTS,
    S_LITE_NONCE_V6_NEWEST,
    S_LITE_NONCE_V6_SEEN,
    S_LITE_NONCE_V6_DROP,
    /*
     * PostgreSQL's only: a launch recorded in one call of the function of
     * its migration 17 (store/launch_pg.c). SQLite leaves it NULL.
     */
    S_PG_LAUNCH_RECORD,
    S__COUNT
};

/*
 * The SQL of each statement on SQLite (store/sql_sqlite.c). Another engine
 * keeps a table of its own under the same ids (NULL where it has no such
 * statement).
 */
extern const char *const store_sql_sqlite[S__COUNT];

struct conn {
    struct db_conn db;      /* the engine's connection (store/db.h) */
    const char *const *sql; /* the engine's SQL table, by enum stmt_id */
    struct db_stmt stmts[S__COUNT];
    struct conn *next;
    /* what lb_svg_rule() did on this connection (migration 7): images checked, changed */
    size_t svg_checked, svg_changed;
};

/* The nonces seen within the timestamp window, by digest (nonces.c). */
struct nonce_window {
    pthread_mutex_t mu;
    uint64_t *slots; /* the digest's top 47 bits, then the timestamp's low 16; 0: empty */
    size_t cap;      /* a power of two */
    size_t used;
    int64_t swept; /* `now` of the last sweep of the entries out of the window */
    int64_t last;  /* the latest `now` of a claim */
};

/* Consumers a process launches with at once: a few LMSes, a test instance or two. */
#define CCACHE_SLOTS 16

struct store {
    char *path;
    unsigned flags;
    /* PostgreSQL's pool (store/pg.c) when the store is on PostgreSQL, NULL on SQLite */
    struct store_pg *pg;
    size_t max_readers; /* LIMIT_STORE_READERS, or what the pool leaves for readers */
    int64_t nonce_window;
    struct nonce_window nonces;
    int64_t nonces_v6_until; /* nonces_v6 is checked until then (0: it is gone) */

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    struct conn *free_readers;
    size_t nreaders;

    /*
     * The launch path's consumers by key (consumers.c): CCACHE_SLOTS slots,
     * id 0 an empty one.
     */
    pthread_mutex_t ccache_mu;
    struct store_consumer ccache[CCACHE_SLOTS];
    /*
     * PostgreSQL: cache_version as last read, and when (util_mono_ns; under
     * ccache_mu): read at most once a second, the cache cleared when it moved.
     */
    int64_t ccache_version;
    int64_t ccache_checked_ns;

    /* operations that write outside the launch writer (CLI, admin) */
    pthread_mutex_t admin_mu;
    struct conn *admin;
    /*
     * Held from BEGIN to COMMIT by the launch writer's batches and the admin
     * connection's transactions (after admin_mu): in-process writers wait
     * here, woken at once, not in SQLite's sleeping busy handler.
     */
    pthread_mutex_t write_mu;

    /* the launch writer and what it remembers writing (launch.c) */
    struct conn *wconn;
    struct wcache *wcache;
    int64_t data_version;
    int64_t last_purge;    /* the launches' second at the last purge of expired rows... */
    int64_t last_purge_ns; /* ...and util_mono_ns() then */
    int64_t last_flush_ns; /* util_mono_ns() of the last move of nonce_log into nonces */
    pthread_t writer;
    bool writer_started;
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    struct store_launch_job *q_head, *q_tail;
    size_t q_len;
    bool stopping;
    bool refusing; /* store_launch_refuse_queued: no more launches are queued */

    /*
     * The WAL syncer (store.c, sync_main): batches the writer committed
     * without an fsync wait here for one; their launches are answered after
     * it, while the writer runs the next batch.
     */
    pthread_t syncer;
    bool syncer_started;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    struct store_launch_job *sync_head, *sync_tail;
    bool sync_stop;
    int wal_fd; /* the WAL, for fdatasync (store_durable); -1 until first needed */

    /* group commit (store.c, store_durable) */
    uint64_t commits; /* commits of the writer and admin connections, atomic */
    pthread_mutex_t dur_mu;
    pthread_cond_t dur_cv;
    uint64_t dur_synced; /* commits up to this one are on the disk */
    bool dur_busy;       /* a caller runs the fdatasync */

    /* the checkpointer */
    struct conn *cconn;
    pthread_t ckpt;
    bool ckpt_started;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    bool ckpt_stop;
    int wal_pages;         /* WAL size after the last commit */
    int wal_pages_at_ckpt; /* WAL size at the last checkpoint */
    bool ckpt_asked;       /* the writer wants a checkpoint before it catches up */
    /* LIMIT_STORE_WAL_RESTART_PAGES and LIMIT_STORE_CATCH_UP_PAGES (smaller in tests) */
    int wal_restart_pages, catch_up_pages;

    pthread_mutex_t stats_mu;
    struct store_stats stats;

    /* awards/' rules for a first launch in a course, run inside the launch's savepoint */
    store_enrollment_hook *enrollment_hook;
    void *enrollment_cls;
};

/*
 * A nonce as `nonces` and `nonce_log` keep it: 63 bits of the SHA-256 of
 * (consumer, nonce), odd, so never 0 (nonces.c). ERR_INVALID for a nonce
 * over LIMIT_OAUTH_NONCE_LEN.
 */
int store_nonce_fp(int64_t consumer_id, struct str nonce, int64_t *out /* OUT */, struct err *err);
/* The first 63 bits of the SHA-256 of `p`, little-endian: a database moves between machines. */
int64_t store_digest63(const void *p, size_t n);
/* The 63-bit digest `outcome_bindings.sourcedid_fp` indexes a binding's sourcedid by (migration 9).
 */
int64_t store_sourcedid_fp(struct str sourcedid);
/* The digest before schema 8, which covered the timestamp too (nonces_v6). */
int store_nonce_fp_v6(int64_t consumer_id, int64_t ts, struct str nonce, int64_t *out /* OUT */,
                      struct err *err);
void store_nonce_window_init(struct nonce_window *w);
void store_nonce_window_release(struct nonce_window *w);
/*
 * Claims digest `fp` (timestamp `ts`) in the window: false when it is there
 * already, within the window at `now`, whatever its timestamp.
 */
bool store_nonce_window_claim(struct store *s, int64_t fp, int64_t ts, int64_t now);
/*
 * The same, saying why not: NONCE_USED (there already) or NONCE_STALE (`ts`
 * is out of the window at the latest `now` any claim came with, where a
 * first use may have been swept already).
 */
enum store_nonce_take { NONCE_TAKEN, NONCE_USED, NONCE_STALE };
enum store_nonce_take store_nonce_window_take(struct store *s, int64_t fp, int64_t ts, int64_t now);
/* The latest `now` a claim came with (0: none yet): what is older than its window may go. */
int64_t store_nonce_window_last(struct store *s);
/* Gives back a claim whose request was not recorded after all. */
void store_nonce_window_unclaim(struct store *s, int64_t fp, int64_t ts);
/* Fills the window from `nonces` (the writer's connection, before its thread runs). */
int store_nonce_window_load(struct store *s, struct conn *c, int64_t now, struct err *err);
/* Whether nonces_v6 is still to be checked, and until when; drops it when not. */
int store_nonce_v6_open(struct store *s, struct conn *c, int64_t now, struct err *err);
/* ERR_REPLAY when statement `id` (?1 timestamp, ?2 digest) finds the nonce. */
int store_nonce_seen(struct conn *c, enum stmt_id id, int64_t ts, int64_t fp, struct err *err);
/* ERR_REPLAY when a nonce digested before schema 8 is still in its window. */
int store_nonce_v6_seen(struct store *s, struct conn *c, int64_t consumer_id, struct str nonce,
                        int64_t ts, int64_t now, struct err *err);

/* Drops consumer `id` from the launch path's cache (consumers.c). */
void store_consumer_forget(struct store *s, int64_t id);

/* A transaction in progress on one connection (events.c). */
struct store_tx {
    struct store *s;
    struct conn *c;
    struct arena arena;
    int awards_added;
};

/* Runs fn on `c`, already inside a transaction (or savepoint). */
int store_tx_on(struct store *s, struct conn *c, store_tx_fn *fn, void *cls, int *awards_added,
                struct err *err);

/* Opens one connection with our pragmas and limits. */
int store_conn_open(struct store *s, struct conn **out, struct err *err);
void store_conn_close(struct conn *c);
/* A reset statement of `c`, prepared on first use; NULL with err set on failure. */
struct db_stmt *store_stmt(struct conn *c, enum stmt_id id, struct err *err);
/* Takes a reader connection from the pool (waiting if all are busy) and gives it back. */
struct conn *store_reader_get(struct store *s, struct err *err);
void store_reader_put(struct store *s, struct conn *c);
/* Runs a statement that returns no row; -1 with err. */
int store_exec(struct conn *c, enum stmt_id id, struct err *err);
/*
 * Transactions, statements of each engine's table: a write transaction
 * (SQLite: BEGIN IMMEDIATE, taking the write lock at once), a read one (one
 * snapshot for several reads; store_end_read ends it, whatever happened),
 * commit, rollback, and the savepoint each launch of a batch runs in.
 */
static inline int store_begin(struct conn *c, struct err *err)
{
    return store_exec(c, S_BEGIN_IMMEDIATE, err);
}
int store_begin_read(struct conn *c, struct err *err);
void store_end_read(struct conn *c);
static inline int store_commit(struct conn *c, struct err *err)
{
    return store_exec(c, S_COMMIT, err);
}
static inline int store_rollback(struct conn *c, struct err *err)
{
    return store_exec(c, S_ROLLBACK, err);
}
static inline int store_savepoint(struct conn *c, struct err *err)
{
    return store_exec(c, S_SAVEPOINT, err);
}
static inline int store_release(struct conn *c, struct err *err)
{
    return store_exec(c, S_RELEASE, err);
}
static inline int store_rollback_to(struct conn *c, struct err *err)
{
    return store_exec(c, S_ROLLBACK_TO, err);
}
/*
 * Whether a transaction on `c` that failed (`err`) is to run again, whole,
 * now: on PostgreSQL, when it met a serialization failure or a deadlock
 * (40001, 40P01) or lost its connection before its COMMIT was sent, at
 * most LIMIT_DB_TX_RETRIES times (`attempt`: 0 for the first run's
 * failure). Sleeps the attempt's backoff and clears err when so; never on
 * SQLite, whose busy handler waits within the statement.
 */
bool store_tx_again(struct conn *c, int attempt, struct err *err);
/* store_tx_again's backoff alone, for a transaction known to be worth running again. */
bool store_tx_backoff(int attempt, struct err *err);
/* Steps a statement that returns no row (and resets it); -1 with err. */
int store_step_done(struct conn *c, struct db_stmt *st, const char *what, struct err *err);
/* Steps to the one row of `st` and takes column 0 as an id (RETURNING id); resets it. */
int store_step_id(struct conn *c, struct db_stmt *st, int64_t *id, const char *what,
                  struct err *err);
/* Steps `st` (bound) and collects every row into an arena array (AWARD_SELECT, BADGE_SELECT). */
int store_collect_awards(struct conn *c, struct db_stmt *st, struct arena *a,
                         struct store_award **out, size_t *n, struct err *err);
int store_collect_badges(struct conn *c, struct db_stmt *st, struct arena *a,
                         struct store_badge **out, size_t *n, struct err *err);
/* The index of `name` in a table of names (rule kinds, award states), -1 when absent. */
int store_name_index(const char *const *names, size_t n, const char *name);
/* The admin connection in a BEGIN IMMEDIATE transaction, and its end (commit when ret is 0). */
int store_admin_begin(struct store *s, struct err *err);
int store_admin_end(struct store *s, int ret, struct err *err);
int store_admin_end_unsynced(struct store *s, int ret, struct err *err);
/* Counts a commit of the writer or admin connection; its number for store_durable. */
uint64_t store_commit_seq(struct store *s);
/* Returns once commit `seq` and every one before it are on the disk (group commit). */
int store_durable(struct store *s, uint64_t seq, struct err *err);
/* The id of a course, created bare when no launch brought it yet (badges.c). */
int store_ensure_context_conn(struct conn *c, int64_t consumer_id, const char *lti_context_id,
                              int64_t now, int64_t *id, struct err *err);
int store_badge_create_conn(struct conn *c, const struct store_badge_new *b, int64_t now,
                            int64_t *id, char *slug_out, struct err *err);
/*
 * The SVG rule main() set, applied to an image stored before it (badges.c;
 * migration 7 runs it through SQLite's lb_svg_rule()), counted in `c`: 1
 * with the image to keep in `out` (what the rule left, or its fallback when
 * it refuses the image whole), 0 when the image stays as it is, -1 when no
 * rule is set.
 */
int store_svg_rule_stored(struct conn *c, const unsigned char *img, size_t len, struct buf *out);

/*
 * Sets err from error code `rc` of a step on `c` (its engine's; `what`:
 * what was being done, for the log); returns -1. Busy or locked, and a full
 * disk, are ERR_UNAVAILABLE (try again); anything else ERR_INTERNAL.
 */
int store_db_err(struct conn *c, int rc, const char *what, struct err *err);
/* The SQLite engine (db_sqlite.c): opens `c`'s connection to `path` (never creating it). */
int store_db_sqlite_open(const char *path, struct conn *c, struct err *err);
/* store_db_err for a SQLite handle (NULL: none). */
int store_db_sqlite_err(sqlite3 *db, int rc, const char *what, struct err *err);
/*
 * Binds a claim scope (awards.c): the backend at `backend_idx` and the
 * JSON array of backends left out at the next one (both NULL when absent).
 */
int store_bind_scope(struct db_stmt *st, int backend_idx, const struct store_claim_scope *scope);

/* Runs the migrations on `c` (migrate.c). */
int store_migrate_conn(struct conn *c, int target, int *applied, struct err *err);
int store_version_conn(struct conn *c, int *version, struct err *err);

/*
 * What SQLite's launch writer keys and compares a launch's rows by in its
 * cache, digested by store_launch_submit in the caller's thread so that the
 * one writer thread does not hash (store/launch.c); kept in the job's priv.
 */
struct store_launch_digests {
    bool cached;      /* false: a value too long to digest; the launch writes every row */
    int64_t nonce_fp; /* the nonce as `nonces` keeps it */
    unsigned char key[4][16], val[4][8]; /* consumer, user, course, resource link */
    uint64_t mkey[2], mval[2];           /* enrollment, outcome binding */
};
/* What the writer's cache compares `l`'s rows by (store_launch_submit computes it; bench/). */
void store_launch_digest(const struct store_launch *l, struct store_launch_digests *d /* OUT */);

/*
 * For tests, with no operation running: the most times one statement cached
 * on this store's SQLite connections was prepared again, and its SQL. SQLite
 * re-prepares, on every run, a statement whose plan depends on a bound value
 * (one compared with a partial index's WHERE, a LIKE pattern): a cost no
 * statement of ours should pay.
 */
int store_stmt_reprepares(struct store *s, const char **sql /* OUT, may be NULL */);

/*
 * Counts the rows of a table by its name (the writer's cache is sized by
 * them; tests); ERR_INVALID for a table it does not know.
 */
int store_count(struct store *s, const char *table, int64_t *out /* OUT */, struct err *err);

/* The launch batch (launch.c): records `n` jobs in one transaction on the writer connection. */
void store_launch_batch(struct store *s, struct store_launch_job **jobs, size_t n);
/*
 * What both engines' launch recording shares (launch.c; launch_pg.c is
 * PostgreSQL's): the user, course, link and outcome binding rows, the
 * enrollment (INSERT first, its change count telling a
 * first launch in the course, which runs the enrollment hook; else UPDATE),
 * the session's INSERT bound (stepped by each engine: sqlite reads
 * last_insert_rowid, PostgreSQL RETURNING id), an upsert's id (RETURNING a
 * row, else statement `find`), and a bounded purge chunk (rows deleted, 0 on
 * failure).
 */
int store_launch_user(struct conn *c, const struct store_launch *l, int64_t *user_id,
                      struct store_launch_result *res, struct err *err);
int store_launch_context(struct conn *c, const struct store_launch *l, int64_t *context_id,
                         struct err *err);
int store_launch_link(struct conn *c, const struct store_launch *l, int64_t context_id,
                      int64_t *link_id, struct err *err);
int store_launch_binding(struct conn *c, const struct store_launch *l, int64_t user_id,
                         int64_t context_id, int64_t link_id, struct err *err);
int store_launch_enroll(struct store *s, struct conn *c, const struct store_launch *l,
                        int64_t user_id, int64_t context_id, struct store_launch_result *res,
                        struct err *err);
/* The enrollment hook of a first launch in a course (store_launch_enroll's; launch_pg.c's). */
int store_launch_enroll_hook(struct store *s, struct conn *c, const struct store_launch *l,
                             int64_t user_id, int64_t context_id, struct store_launch_result *res,
                             struct err *err);
struct db_stmt *store_launch_session_stmt(struct conn *c, const struct store_launch *l,
                                          int64_t user_id, int64_t context_id, int64_t link_id,
                                          struct err *err);
int store_launch_upsert_id(struct conn *c, struct db_stmt *st, enum stmt_id find,
                           int64_t consumer_id, struct str lti_id, int64_t *id, const char *what,
                           struct err *err);
int64_t store_launch_purge_chunk(struct conn *c, enum stmt_id id, int64_t before);
/*
 * The writer's upkeep after a batch went to the syncer (launch.c), which
 * that batch's launches are not held for: the nonce log's move into
 * `nonces` when due, and, once the WAL is past LIMIT_STORE_WAL_RESTART_PAGES,
 * copying what the checkpointer left (asking it to run first when that is
 * more than LIMIT_STORE_CATCH_UP_PAGES), so the WAL starts over.
 */
void store_launch_after_batch(struct store *s);
/* The writer's cache of rows it wrote (launch.c). */
/*
 * The writer's cache, each table sized for the rows the database holds of
 * its kind (consumers, users, contexts, links; enrollments, bindings), NULL
 * for the smallest sizes.
 */
struct wcache *store_wcache_new(const int64_t wrows[4], const int64_t mrows[2]);
/* Its memory, and how many entries CLOCK evicted so far. */
size_t store_wcache_bytes(const struct wcache *c);
uint64_t store_wcache_evictions(const struct wcache *c);
void store_wcache_free(struct wcache *c);
/* Moves what nonce_log holds into `nonces` (on the writer's connection, before its thread runs). */
int store_nonce_log_flush(struct store *s, struct err *err);

/* Copies a column as text into a fixed array, truncating safely. */
void store_col_copy(struct db_stmt *st, int col, char *dst, size_t dstlen);
/* A column as an arena string (NULL for SQL NULL). */
const char *store_col_arena(struct db_stmt *st, int col, struct arena *a);

#endif
