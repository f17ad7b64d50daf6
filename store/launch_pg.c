/*
 * store/launch_pg.c - recording verified launches on PostgreSQL.
 *
 * Several instances share the database, not their memory: none keeps
 * SQLite's writer cache, nonce log or in-process window of nonces
 * (launch.c, nonces.c). The writer thread of each instance (store.c's
 * queue) records the launches queued since its last commit, up to
 * LIMIT_STORE_BATCH, in one transaction.
 *
 * Each launch is one call of ltibadges_record_launch (migration 17,
 * store/migrate_pg.c), and a batch's calls go to the server together, in
 * libpq's pipeline mode, their answers read after: a batch costs three
 * round trips (BEGIN, its calls, COMMIT), where the launch's fifteen
 * statements each waited for its answer (155 launches a second on one
 * instance, the writer mostly waiting). The function reads the consumer
 * again (a consumer disabled or given a new secret by any instance refuses
 * the launch at once), claims the nonce by the constraint of `nonces`
 * (INSERT ... ON CONFLICT DO NOTHING on its digest, whatever its
 * timestamp: an insert that changed no row finds the nonce taken, by this
 * or any instance, committed or, PostgreSQL waiting for it, committing),
 * and writes the launch's rows; a launch it refuses has written nothing,
 * so no savepoint is needed. Rows a relaunch finds as they were are read,
 * not written, and take no lock: instances relaunching the same learners
 * in different orders do not deadlock. The enrollment hook (award rules)
 * of the batch's first launches in a course runs after the calls, in the
 * same transaction.
 *
 * A call that fails (not a refusal: an error that aborts the transaction)
 * takes the batch with it. A deadlock, a serialization failure or a lost
 * connection runs the batch again whole; anything else runs it again one
 * launch at a time, each in its own savepoint and with the statements of
 * launch.c (record_one), so that only the launch at fault fails.
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

/* Binds the parameters of ltibadges_record_launch (migration 17) for launch `l`. */
static void bind_launch(struct store *s, struct db_stmt *st, const struct store_launch *l,
                        const struct store_launch_digests *d)
{
    /* NULL where the launch had nothing: the function writes no row for it, as record_one */
    bool binding = str_present(l->outcome_service_url) && str_present(l->result_sourcedid);

    db_bind_int64(st, 1, l->consumer_id);
    db_bind_str(st, 2, l->consumer_secret);
    /* verified within the window when it arrived; it may have left it while queued */
    db_bind_int64(st, 3, util_now() - s->nonce_window);
    db_bind_int64(st, 4, l->timestamp);
    db_bind_int64(st, 5, d->nonce_fp);
    db_bind_int64(st, 6, l->now);
    db_bind_str(st, 7, l->lms);
    db_bind_str(st, 8, l->user_id);
    db_bind_str(st, 9, l->given_name);
    db_bind_str(st, 10, l->family_name);
    db_bind_str(st, 11, l->full_name);
    db_bind_str(st, 12, l->email);
    db_bind_str(st, 13, l->person_sourcedid);
    db_bind_str(st, 14, l->context_id);
    db_bind_str(st, 15, l->context_title);
    db_bind_str(st, 16, l->context_label);
    db_bind_str(st, 17, l->resource_link_id);
    db_bind_str(st, 18, l->resource_link_title);
    if (l->points_possible > 0)
        db_bind_double(st, 19, l->points_possible);
    else
        db_bind_null(st, 19);
    db_bind_str(st, 20, l->roles);
    db_bind_str(st, 21, l->ext_roles);
    db_bind_int64(st, 22, l->role_flags);
    db_bind_str(st, 23, l->mode);
    db_bind_str(st, 24, binding ? l->outcome_service_url : (struct str){ NULL, 0 });
    db_bind_str(st, 25, binding ? l->result_sourcedid : (struct str){ NULL, 0 });
    db_bind_str(st, 26, l->outcome_data_accepted);
    db_bind_int64(st, 27, l->total_score_accepted);
    db_bind_int64(st, 28, binding ? store_sourcedid_fp(l->result_sourcedid) : 0);
    db_bind_blob(st, 29, l->session_secret_hash, sizeof(l->session_secret_hash));
    db_bind_str(st, 30, l->return_url);
    db_bind_str(st, 31, l->document_target);
    db_bind_str(st, 32, l->locale);
    db_bind_blob(st, 33, l->csrf_secret, sizeof(l->csrf_secret));
    db_bind_int64(st, 34, l->session_expires);
    db_bind_str(st, 35, l->frame_origin);
}

/* A launch the function refused (its status, not 0): the job's error, as record_one's. */
static void refused(struct store *s, struct store_launch_job *j, int status, uint64_t *replays)
{
    j->status = -1;
    switch (status) {
    case 1:
        err_set(&j->err, ERR_UNAUTHORIZED, "unknown or disabled consumer key");
        break;
    case 2:
        /* what verifying with the current secret would have said */
        err_set(&j->err, ERR_UNAUTHORIZED, "signature does not match");
        break;
    case 3:
        err_set(&j->err, ERR_REPLAY, "this launch was already used");
        (*replays)++;
        return;
    case 4:
        err_set(&j->err, ERR_INVALID,
                "the launch waited too long to be recorded and its timestamp is out of the time "
                "window: please launch again");
        return;
    default:
        err_set(&j->err, ERR_INTERNAL, "database error while recording a launch");
        err_detail(&j->err, "postgresql: ltibadges_record_launch returned status %d", status);
        return;
    }
    /* the launch path's copy of the consumer is stale */
    store_consumer_forget(s, j->launch.consumer_id);
}

/*
 * The batch's launches, one call of ltibadges_record_launch each, sent
 * together (pipeline mode) and answered together: a batch costs a round
 * trip, not one per statement of each launch, and no savepoint, since a
 * launch the function refuses has written nothing. Then the award rules
 * of the first launches in a course (the enrollment hook), as
 * store_launch_enroll runs them. 0, each job's status and result set; -1
 * with `e` when a statement failed and the transaction is to be rolled
 * back (the batch then runs again, whole, or one launch at a time).
 */
static int record_pipelined(struct store *s, struct store_launch_job **jobs, size_t n,
                            uint64_t *replays, struct err *e)
{
    struct conn *c = s->wconn;
    struct db_stmt *st = store_stmt(c, S_PG_LAUNCH_RECORD, e);
    int ret = 0;

    if (!st)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct store_launch_digests d;

        /* store_launch_submit's digests (only the nonce's is of use here) */
        memcpy(&d, &jobs[i]->priv, sizeof(d));
        bind_launch(s, st, &jobs[i]->launch, &d);
        if (store_db_pg_send(st, e) < 0) {
            store_db_pg_pipeline_end(c);
            return -1;
        }
    }
    if (store_db_pg_sync(c, e) < 0) {
        store_db_pg_pipeline_end(c);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_launch_job *j = jobs[i];
        struct store_launch_result *res = &j->result;
        int rc = store_db_pg_recv(st), status;

        if (rc == 0)
            rc = db_step(st);
        if (rc != DB_ROW) {
            ret = store_db_err(c, rc, "recording a launch", e);
            break;
        }
        memset(res, 0, sizeof(*res));
        status = db_column_int(st, 0);
        if (status != 0) {
            db_reset(st);
            refused(s, j, status, replays);
            continue;
        }
        res->user_id = db_column_int64(st, 1);
        res->context_id = db_column_int64(st, 2);
        res->session_id = db_column_int64(st, 3);
        res->first_in_context = db_column_int(st, 4) != 0;
        res->awards_added = db_column_int(st, 5);
        db_reset(st);
    }
    store_db_pg_pipeline_end(c);
    if (ret < 0)
        return -1;
    for (size_t i = 0; i < n && s->enrollment_hook; i++) {
        struct store_launch_job *j = jobs[i];

        if (j->status == 0 && j->result.first_in_context &&
            store_launch_enroll_hook(s, c, &j->launch, j->result.user_id, j->result.context_id,
                                     &j->result, e) < 0)
            return -1;
    }
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
 * back, says it was not committed); 2 when a launch failed for a reason of
 * its own (not a deadlock or a lost connection) and took the transaction
 * with it: the batch is to run again one launch at a time (`one_by_one`),
 * each in a savepoint, so that the others are kept.
 */
static int run_batch(struct store *s, struct store_launch_job **jobs, size_t n, bool one_by_one,
                     uint64_t *replays, struct err *e)
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
    if (!one_by_one && record_pipelined(s, jobs, n, replays, e) < 0) {
        bool again = store_db_pg_again(c);

        store_rollback(c, NULL);
        return again ? -1 : 2;
    }
    for (size_t i = 0; one_by_one && i < n; i++) {
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
    bool one_by_one = false;

    for (int attempt = 0;; attempt++) {
        int r;

        err_clear(&e);
        r = run_batch(s, jobs, n, one_by_one, &replays, &e);
        if (r == 0)
            break;
        if (r == 2) {
            /* e's reason, for the log: the batch runs again at once, each launch on its own */
            one_by_one = true;
            attempt--;
            continue;
        }
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
