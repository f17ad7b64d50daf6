/*
 * store/launch_pg.c - recording verified launches on PostgreSQL.
 *
 * Several instances share the database, not their memory: none keeps
 * SQLite's writer cache, nonce log or in-process window of nonces
 * (launch.c, nonces.c). The writer thread of each instance (store.c's
 * queue) records the launches queued since its last commit, up to
 * LIMIT_STORE_BATCH, in one transaction, each in its own savepoint, as on
 * SQLite, so that one failed launch leaves the rest of its batch intact.
 *
 * A launch's nonce is claimed first, by the constraint of `nonces`
 * (INSERT ... ON CONFLICT DO NOTHING on its digest, whatever its
 * timestamp): an insert that changed no row finds the nonce taken, by this
 * or any instance, committed or (PostgreSQL waits for it) committing, and
 * the launch is a replay that writes nothing. Users, courses and links are
 * upserts whose DO UPDATE writes only what changed; the consumer is read
 * again in the transaction, so a consumer disabled or given a new secret by
 * any instance refuses the launch at once.
 *
 * Maintenance is the purge of expired nonces and sessions, a bounded
 * number of rows every PURGE_EVERY_MS in a batch's transaction; PostgreSQL
 * checkpoints and vacuums on its own.
 */
#include "base/base.h"
#include "store/pg.h"

#include <time.h>

/* How often a batch purges expired nonces and sessions (a bounded number each time). */
#define PURGE_EVERY_MS 100

/* The consumer as of this transaction: enabled, with the secret the launch was verified with. */
static int confirm_consumer(struct conn *c, const struct store_launch *l, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_CONSUMER_CHECK, err);
    bool enabled = false, same = true;
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, l->consumer_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        enabled = db_column_int(st, 0) != 0;
        if (str_present(l->consumer_secret))
            same = str_eq(l->consumer_secret, db_column_str(st, 1));
    }
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_db_err(c, rc, "reading a consumer", err);
    if (rc == DB_DONE || !enabled)
        return err_set(err, ERR_UNAUTHORIZED, "unknown or disabled consumer key");
    if (!same)
        /* what verifying with the current secret would have said */
        return err_set(err, ERR_UNAUTHORIZED, "signature does not match");
    return 0;
}

/*
 * Runs an upsert whose DO UPDATE writes only what changed and returns the
 * row's id; when nothing changed it returns no row, and the id is read with
 * `find` (consumer, LTI id).
 */
static int record_one(struct store *s, const struct store_launch *l,
                      const struct store_launch_digests *d, struct store_launch_result *res,
                      struct err *err)
{
    struct conn *c = s->wconn;
    struct db_stmt *st;
    int64_t user_id = 0, context_id = 0, link_id = 0;

    memset(res, 0, sizeof(*res));
    if (confirm_consumer(c, l, err) < 0)
        return -1;
    /*
     * Verified within the window when it arrived; a launch that waited in
     * the queue past it could find its nonce purged already.
     */
    if (l->timestamp < util_now() - s->nonce_window)
        return err_set(err, ERR_INVALID,
                       "the launch waited too long to be recorded and its timestamp is out of "
                       "the time window: please launch again");
    st = store_stmt(c, S_NONCE_INSERT, err);
    if (!st)
        return -1;
    db_bind_int64(st, 1, l->timestamp);
    db_bind_int64(st, 2, d->nonce_fp);
    db_bind_int64(st, 3, l->consumer_id);
    if (store_step_done(c, st, "claiming a nonce", err) < 0)
        return -1;
    if (db_changes(&c->db) == 0)
        return err_set(err, ERR_REPLAY, "this launch was already used");

    if (str_present(l->lms)) {
        st = store_stmt(c, S_CONSUMER_SET_LMS, err);
        if (!st)
            return -1;
        db_bind_int64(st, 1, l->consumer_id);
        db_bind_str(st, 2, l->lms);
        if (store_step_done(c, st, "updating a consumer", err) < 0)
            return -1;
    }

    if (store_launch_user(c, l, &user_id, res, err) < 0)
        return -1;
    if (str_present(l->context_id) && store_launch_context(c, l, &context_id, err) < 0)
        return -1;
    if (store_launch_link(c, l, context_id, &link_id, err) < 0)
        return -1;
    if (context_id && store_launch_enroll(s, c, l, user_id, context_id, res, err) < 0)
        return -1;
    if (str_present(l->outcome_service_url) && str_present(l->result_sourcedid) &&
        store_launch_binding(c, l, user_id, context_id, link_id, err) < 0)
        return -1;

    st = store_launch_session_stmt(c, l, user_id, context_id, link_id, err);
    if (!st)
        return -1;
    /* RETURNING id: PostgreSQL has no last_insert_rowid */
    if (store_step_id(c, st, &res->session_id, "creating a session", err) < 0)
        return -1;
    res->user_id = user_id;
    res->context_id = context_id;
    return 0;
}

/*
 * Expired nonces (older than the window: a request that old is refused
 * before its nonce is looked at) and sessions, in a savepoint of its own:
 * a failed purge is tried again later and costs the batch nothing.
 */
static void purge(struct store *s, struct conn *c, int64_t now)
{
    if (store_savepoint(c, NULL) < 0)
        return;
    for (int i = 0; i < 4; i++) {
        int64_t n = store_launch_purge_chunk(c, S_NONCE_PURGE, now - s->nonce_window - 1);

        if (n < LIMIT_STORE_PURGE_PER_BATCH)
            break;
    }
    for (int i = 0; i < 4; i++) {
        if (store_launch_purge_chunk(c, S_SESSION_PURGE, now) < LIMIT_STORE_PURGE_PER_BATCH)
            break;
    }
    if (store_release(c, NULL) < 0)
        store_rollback_to(c, NULL);
}

static void fail_all(struct store_launch_job **jobs, size_t n, const struct err *e)
{
    for (size_t i = 0; i < n; i++) {
        jobs[i]->status = -1;
        err_clear(&jobs[i]->err);
        jobs[i]->err = *e;
    }
}

/*
 * Whether the batch whose COMMIT lost its connection before its answer
 * was committed, asked of the server once it answers again: one of the
 * batch's sessions is there (their ids come from a sequence, never given
 * out twice, so a session of that id is this batch's). 1 committed (or
 * no launch of it succeeded: nothing to tell), 0 not, -1 not known within
 * LIMIT_DB_IN_DOUBT_MS.
 */
static int batch_committed(struct conn *c, struct store_launch_job **jobs, size_t n)
{
    int64_t id = 0, until = util_mono_ns() + LIMIT_DB_IN_DOUBT_MS * 1000000LL;

    for (size_t i = 0; i < n && !id; i++) {
        if (jobs[i]->status == 0)
            id = jobs[i]->result.session_id;
    }
    if (!id)
        return 1;
    for (;;) {
        struct timespec pause = { 0, 100 * 1000000L };
        struct err e = ERR_INIT;
        struct db_stmt *st;
        int rc = DB_ERROR;

        /* ends the transaction the connection took with it (the next statement connects again) */
        if (db_in_tx(&c->db))
            store_rollback(c, NULL);
        st = store_stmt(c, S_SESSION_GET, &e);
        if (st) {
            db_bind_int64(st, 1, id);
            db_bind_int64(st, 2, 0);
            rc = db_step(st);
            db_reset(st);
        }
        if (rc == DB_ROW)
            return 1;
        if (rc == DB_DONE)
            return 0;
        if (util_mono_ns() >= until)
            return -1;
        nanosleep(&pause, NULL);
    }
}

/* The batch's answer when it cannot be recorded: the LMS (or the browser) may send it again. */
static int unsaved(struct err *e)
{
    char why[sizeof(e->detail)];

    /* the reason stays, for the log (web/ logs a 503's detail) */
    snprintf(why, sizeof(why), "%s", e->detail[0] ? e->detail : e->msg);
    err_clear(e);
    err_set(e, ERR_UNAVAILABLE, "the launch could not be saved, please try again");
    return err_detail(e, "%s", why);
}

/*
 * One run of the batch in one transaction: 0 committed (each job's status
 * and result set), -1 with `e` when nothing of it was kept; 1 when it was
 * not, and may run again at once (its COMMIT was lost, and the server,
 * back, says it was not committed).
 */
static int run_batch(struct store *s, struct store_launch_job **jobs, size_t n, uint64_t *replays,
                     struct err *e)
{
    struct conn *c = s->wconn;
    int64_t mono, now;

    *replays = 0;
    for (size_t i = 0; i < n; i++) {
        jobs[i]->status = 0;
        err_clear(&jobs[i]->err);
    }
    if (store_begin(c, e) < 0)
        return -1;
    /*
     * First, every PURGE_EVERY_MS and whenever the launches' second changed
     * since the last purge: a nonce out of the window may come again (the
     * launch's own time was checked before), and its old row must be gone
     * for the constraint to take it.
     */
    mono = util_mono_ns();
    now = n ? jobs[0]->launch.now : util_now();
    if (mono - s->last_purge_ns >= PURGE_EVERY_MS * 1000000LL || now != s->last_purge) {
        purge(s, c, now);
        s->last_purge_ns = mono;
        s->last_purge = now;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_launch_job *j = jobs[i];
        struct store_launch_digests d;

        if (store_savepoint(c, &j->err) < 0) {
            if (store_db_pg_again(c) || !db_in_tx(&c->db)) {
                *e = j->err;
                store_rollback(c, NULL);
                return -1;
            }
            j->status = -1;
            continue;
        }
        /* store_launch_submit's digests (only the nonce's is of use here) */
        memcpy(&d, &j->priv, sizeof(d));
        if (record_one(s, &j->launch, &d, &j->result, &j->err) < 0) {
            if (store_db_pg_again(c)) {
                /* a deadlock, a serialization failure, the connection lost: the whole batch */
                *e = j->err;
                store_rollback(c, NULL);
                return -1;
            }
            j->status = -1;
            if (j->err.code == ERR_REPLAY)
                (*replays)++;
            else if (j->err.code == ERR_UNAUTHORIZED)
                /* the launch path's copy of the consumer is stale */
                store_consumer_forget(s, j->launch.consumer_id);
            if (store_rollback_to(c, NULL) < 0 || !db_in_tx(&c->db)) {
                /* the connection or the transaction is gone: nothing of the batch stays */
                store_rollback(c, NULL);
                return unsaved(e);
            }
        }
        store_release(c, NULL);
    }
    if (store_commit(c, e) == 0)
        return 0;
    if (store_db_pg_in_doubt(c)) {
        int done = batch_committed(c, jobs, n);

        if (done == 1) {
            err_clear(e);
            return 0;
        }
        if (done == 0)
            return 1;
    } else if (db_in_tx(&c->db))
        store_rollback(c, NULL);
    return -1;
}

/*
 * The batch, run again whole (store_tx_again) after a deadlock, a
 * serialization failure or a connection lost under it, so that launches
 * see none of these; after the last try its launches are answered 503.
 */
void store_launch_batch_pg(struct store *s, struct store_launch_job **jobs, size_t n)
{
    struct err e = ERR_INIT;
    uint64_t replays = 0, ok = 0;

    for (int attempt = 0;; attempt++) {
        int r;

        err_clear(&e);
        r = run_batch(s, jobs, n, &replays, &e);
        if (r == 0)
            break;
        if (r == 1 ? store_tx_backoff(attempt, &e) : store_tx_again(s->wconn, attempt, &e))
            continue;
        /* nothing was recorded: the LMS (or the browser) may send them again as they are */
        unsaved(&e);
        fail_all(jobs, n, &e);
        return;
    }
    for (size_t i = 0; i < n; i++)
        ok += jobs[i]->status == 0;
    pthread_mutex_lock(&s->stats_mu);
    s->stats.batches++;
    s->stats.launches += ok;
    s->stats.replays += replays;
    pthread_mutex_unlock(&s->stats_mu);
}
