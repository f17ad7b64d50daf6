/*
 * store/launch.c - recording verified launches, group-committed.
 *
 * Each launch of a batch runs in its own savepoint: its nonce is claimed
 * first by a unique insert, so a replay (or the loser of two simultaneous
 * launches with one nonce) writes nothing at all, and a launch that fails
 * for any other reason leaves the rest of the batch intact. The batch then
 * purges a bounded number of expired nonces and sessions and commits once.
 */
#include "base/base.h"
#include "store/store_int.h"

static int step_id(struct conn *c, sqlite3_stmt *st, int64_t *id, const char *what, struct err *err)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return store_db_err(c, rc == SQLITE_DONE ? SQLITE_ERROR : rc, what, err);
    }
    *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

static int step_done(struct conn *c, sqlite3_stmt *st, const char *what, struct err *err)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_db_err(c, rc, what, err);
    return 0;
}

static int record_one(struct conn *c, const struct store_launch *l, struct store_launch_result *res,
                      struct err *err)
{
    sqlite3_stmt *st;
    int64_t user_id = 0, context_id = 0, link_id = 0, launches = 0;

    memset(res, 0, sizeof(*res));
    st = store_stmt(c, S_NONCE_INSERT, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, l->consumer_id);
    store_bind_str(st, 2, l->nonce);
    sqlite3_bind_int64(st, 3, l->timestamp);
    if (step_done(c, st, "claiming a nonce", err) < 0)
        return -1;
    if (sqlite3_changes(c->db) == 0)
        return err_set(err, ERR_REPLAY, "this launch was already used");

    if (str_present(l->lms)) {
        st = store_stmt(c, S_CONSUMER_SET_LMS, err);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, l->consumer_id);
        store_bind_str(st, 2, l->lms);
        if (step_done(c, st, "updating a consumer", err) < 0)
            return -1;
    }

    st = store_stmt(c, S_USER_UPSERT, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, l->consumer_id);
    store_bind_str(st, 2, l->user_id);
    store_bind_str(st, 3, l->given_name);
    store_bind_str(st, 4, l->family_name);
    store_bind_str(st, 5, l->full_name);
    store_bind_str(st, 6, l->email);
    store_bind_str(st, 7, l->person_sourcedid);
    sqlite3_bind_int64(st, 8, l->now);
    if (step_id(c, st, &user_id, "recording a user", err) < 0)
        return -1;

    if (str_present(l->context_id)) {
        st = store_stmt(c, S_CONTEXT_UPSERT, err);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, l->consumer_id);
        store_bind_str(st, 2, l->context_id);
        store_bind_str(st, 3, l->context_title);
        store_bind_str(st, 4, l->context_label);
        sqlite3_bind_int64(st, 5, l->now);
        if (step_id(c, st, &context_id, "recording a course", err) < 0)
            return -1;
    }

    st = store_stmt(c, S_LINK_UPSERT, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, l->consumer_id);
    store_bind_str(st, 2, l->resource_link_id);
    if (context_id)
        sqlite3_bind_int64(st, 3, context_id);
    store_bind_str(st, 4, l->resource_link_title);
    sqlite3_bind_int64(st, 5, l->now);
    if (step_id(c, st, &link_id, "recording a resource link", err) < 0)
        return -1;

    if (context_id) {
        st = store_stmt(c, S_ENROLL_UPSERT, err);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_int64(st, 2, context_id);
        store_bind_str(st, 3, l->roles);
        store_bind_str(st, 4, l->ext_roles);
        sqlite3_bind_int64(st, 5, l->role_flags);
        store_bind_str(st, 6, l->mode);
        sqlite3_bind_int64(st, 7, l->now);
        if (step_id(c, st, &launches, "recording an enrollment", err) < 0)
            return -1;
    }

    if (str_present(l->outcome_service_url) && str_present(l->result_sourcedid)) {
        st = store_stmt(c, S_BINDING_UPSERT, err);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, user_id);
        sqlite3_bind_int64(st, 2, link_id);
        if (context_id)
            sqlite3_bind_int64(st, 3, context_id);
        store_bind_str(st, 4, l->outcome_service_url);
        store_bind_str(st, 5, l->result_sourcedid);
        store_bind_str(st, 6, l->outcome_data_accepted);
        sqlite3_bind_int64(st, 7, l->now);
        if (step_done(c, st, "recording an outcome binding", err) < 0)
            return -1;
    }

    st = store_stmt(c, S_SESSION_INSERT, err);
    if (!st)
        return -1;
    sqlite3_bind_blob(st, 1, l->session_hash, sizeof(l->session_hash), SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, l->consumer_id);
    sqlite3_bind_int64(st, 3, user_id);
    if (context_id)
        sqlite3_bind_int64(st, 4, context_id);
    sqlite3_bind_int64(st, 5, link_id);
    store_bind_str(st, 6, l->roles);
    sqlite3_bind_int64(st, 7, l->role_flags);
    store_bind_str(st, 8, l->mode);
    store_bind_str(st, 9, l->return_url);
    store_bind_str(st, 10, l->document_target);
    store_bind_str(st, 11, l->locale);
    sqlite3_bind_blob(st, 12, l->csrf_secret, sizeof(l->csrf_secret), SQLITE_STATIC);
    sqlite3_bind_int64(st, 13, l->now);
    sqlite3_bind_int64(st, 14, l->session_expires);
    if (step_done(c, st, "creating a session", err) < 0)
        return -1;

    res->user_id = user_id;
    res->context_id = context_id;
    res->first_in_context = launches == 1;
    return 0;
}

static void purge(struct store *s, struct conn *c, int64_t now)
{
    sqlite3_stmt *st;

    /* best effort: a failed purge is retried with the next batch */
    st = store_stmt(c, S_NONCE_PURGE, NULL);
    if (st) {
        sqlite3_bind_int64(st, 1, now - s->nonce_window - 1);
        sqlite3_bind_int(st, 2, LIMIT_STORE_PURGE_PER_BATCH);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    st = store_stmt(c, S_SESSION_PURGE, NULL);
    if (st) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int(st, 2, LIMIT_STORE_PURGE_PER_BATCH);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
}

static void fail_all(struct store_launch_job **jobs, size_t n, const struct err *e)
{
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->status == 0) {
            jobs[i]->status = -1;
            jobs[i]->err = *e;
        }
    }
}

void store_launch_batch(struct store *s, struct store_launch_job **jobs, size_t n)
{
    struct conn *c = s->wconn;
    struct err e = ERR_INIT;
    uint64_t replays = 0, ok = 0;

    for (size_t i = 0; i < n; i++) {
        jobs[i]->status = 0;
        err_clear(&jobs[i]->err);
    }
    if (store_exec(c, S_BEGIN_IMMEDIATE, &e) < 0) {
        fail_all(jobs, n, &e);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_launch_job *j = jobs[i];

        if (store_exec(c, S_SAVEPOINT, &j->err) < 0) {
            j->status = -1;
            continue;
        }
        if (record_one(c, &j->launch, &j->result, &j->err) < 0) {
            j->status = -1;
            if (j->err.code == ERR_REPLAY)
                replays++;
            store_exec(c, S_ROLLBACK_TO, NULL);
        }
        store_exec(c, S_RELEASE, NULL);
    }
    purge(s, c, n ? jobs[0]->launch.now : util_now());
    if (store_exec(c, S_COMMIT, &e) < 0) {
        store_exec(c, S_ROLLBACK, NULL);
        err_clear(&e);
        err_set(&e, ERR_UNAVAILABLE, "the launch could not be saved, please try again");
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

void store_launch_submit(struct store *s, struct store_launch_job *job)
{
    const char *why = NULL;

    job->next = NULL;
    pthread_mutex_lock(&s->q_mu);
    if (!s->writer_started || s->stopping)
        why = "the server is shutting down, please try again";
    else if (s->q_len >= LIMIT_STORE_QUEUE)
        why = "the server is overloaded, please try again";
    if (!why) {
        if (s->q_tail)
            s->q_tail->next = job;
        else
            s->q_head = job;
        s->q_tail = job;
        s->q_len++;
        pthread_cond_signal(&s->q_cv);
    }
    pthread_mutex_unlock(&s->q_mu);
    if (why) {
        job->status = -1;
        err_clear(&job->err);
        err_set(&job->err, ERR_UNAVAILABLE, "%s", why);
        job->done(job);
    }
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

static void wake(struct store_launch_job *job)
{
    struct waiter *w = job->cls;

    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int store_launch_record(struct store *s, const struct store_launch *l,
                        struct store_launch_result *out, struct err *err)
{
    struct store_launch_job job;
    struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };

    memset(&job, 0, sizeof(job));
    job.launch = *l;
    job.done = wake;
    job.cls = &w;
    store_launch_submit(s, &job);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (job.status < 0) {
        if (err && err->code == ERR_NONE)
            *err = job.err;
        return -1;
    }
    if (out)
        *out = job.result;
    return 0;
}
