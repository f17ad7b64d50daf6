/*
 * store/awards.c - the award outbox: reading awards, claiming due ones for
 * the worker, recording what the backend answered, retry and revoke.
 *
 * State changes are guarded by the state they expect (WHERE state =
 * 'issuing'), so a worker whose lease ran out cannot overwrite what a newer
 * attempt or an operator did meanwhile.
 */
#include "base/base.h"
#include "store/store_int.h"

#include <jansson.h>

static const char *const state_names[] = {
    [AWARD_QUEUED] = "queued", [AWARD_NEEDS_EMAIL] = "needs_email", [AWARD_ISSUING] = "issuing",
    [AWARD_ISSUED] = "issued", [AWARD_FAILED] = "failed",           [AWARD_REVOKED] = "revoked",
};

const char *store_award_state_name(enum store_award_state st)
{
    if ((size_t)st >= sizeof(state_names) / sizeof(state_names[0]))
        return "failed";
    return state_names[st];
}

int store_award_state_parse(const char *name)
{
    return store_name_index(state_names, sizeof(state_names) / sizeof(state_names[0]), name);
}

static void read_award(struct db_stmt *st, struct arena *a, struct store_award *w)
{
    int k;

    memset(w, 0, sizeof(*w));
    w->id = db_column_int64(st, 0);
    w->badge_id = db_column_int64(st, 1);
    w->user_id = db_column_int64(st, 2);
    w->context_id = db_column_int64(st, 3);
    k = store_award_state_parse((const char *)db_column_text(st, 4));
    w->state = k < 0 ? AWARD_FAILED : (enum store_award_state)k;
    w->uid = store_col_arena(st, 5, a);
    w->salt = store_col_arena(st, 6, a);
    w->reason = store_col_arena(st, 7, a);
    w->narrative = store_col_arena(st, 8, a);
    w->recipient_email = store_col_arena(st, 9, a);
    w->assertion_id = store_col_arena(st, 10, a);
    w->assertion_url = store_col_arena(st, 11, a);
    w->last_error = store_col_arena(st, 12, a);
    w->revoke_reason = store_col_arena(st, 13, a);
    w->badge_slug = store_col_arena(st, 14, a);
    w->consumer_key = store_col_arena(st, 15, a);
    w->lti_user_id = store_col_arena(st, 16, a);
    w->user_name = store_col_arena(st, 17, a);
    w->lti_context_id = store_col_arena(st, 18, a);
    w->context_title = store_col_arena(st, 19, a);
    w->lti_resource_link_id = store_col_arena(st, 20, a);
    w->link_title = store_col_arena(st, 21, a);
    w->attempts = db_column_int64(st, 22);
    w->next_attempt_at = db_column_int64(st, 23);
    w->issued_at = db_column_int64(st, 24);
    w->expires_at = db_column_int64(st, 25);
    w->revoked_at = db_column_int64(st, 26);
    w->created_at = db_column_int64(st, 27);
    w->updated_at = db_column_int64(st, 28);
    w->revoke_pending = db_column_int(st, 29) == 0;
    w->passback_state = store_col_arena(st, 30, a);
    w->passback_answer = store_col_arena(st, 31, a);
    w->passback_at = db_column_int64(st, 32);
    w->passback_attempts = db_column_int64(st, 33);
    w->passbacks = db_column_int64(st, 34);
}

/* Steps `st` (bound) and collects every row into an arena array. */
int store_collect_awards(struct conn *c, struct db_stmt *st, struct arena *a,
                         struct store_award **out, size_t *n, struct err *err)
{
    size_t cap = 16, len = 0;
    struct store_award *v = arena_alloc(a, cap * sizeof(*v));
    int rc;

    while ((rc = db_step(st)) == DB_ROW) {
        if (len == cap) {
            struct store_award *nv = arena_alloc(a, 2 * cap * sizeof(*nv));

            memcpy(nv, v, len * sizeof(*nv));
            v = nv;
            cap *= 2;
        }
        read_award(st, a, &v[len++]);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(c, rc, "reading awards", err);
    *out = v;
    *n = len;
    return 0;
}

int store_award_list(struct store *s, const struct store_award_filter *f, struct arena *a,
                     struct store_award **out, size_t *n, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int ret = -1;

    *out = NULL;
    *n = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_AWARD_LIST, err);
    if (st) {
        if (f->state >= 0)
            db_bind_str(st, 1, str_from_cstr(store_award_state_name(f->state)));
        db_bind_str(st, 2, str_from_cstr(f->badge));
        db_bind_int64(st, 3, f->user_id);
        db_bind_str(st, 4, str_from_cstr(f->backend));
        db_bind_int64(st, 5, f->limit > 0 ? f->limit : -1);
        ret = store_collect_awards(c, st, a, out, n, err);
    }
    store_reader_put(s, c);
    return ret;
}

static int award_get(struct store *s, enum stmt_id id, const char *uid, int64_t aid,
                     struct arena *a, struct store_award *out, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    if (!c)
        return -1;
    st = store_stmt(c, id, err);
    if (st) {
        if (uid)
            db_bind_str(st, 1, str_from_cstr(uid));
        else
            db_bind_int64(st, 1, aid);
        rc = db_step(st);
        if (rc == DB_ROW) {
            read_award(st, a, out);
            ret = 0;
        } else if (rc == DB_DONE) {
            err_set(err, ERR_NOTFOUND, "there is no such award");
        } else {
            store_db_err(c, rc, "reading an award", err);
        }
        db_reset(st);
    }
    store_reader_put(s, c);
    return ret;
}

int store_award_get(struct store *s, int64_t id, struct arena *a, struct store_award *out,
                    struct err *err)
{
    return award_get(s, S_AWARD_GET, NULL, id, a, out, err);
}

int store_award_get_uid(struct store *s, const char *uid, struct arena *a, struct store_award *out,
                        struct err *err)
{
    return award_get(s, S_AWARD_GET_UID, uid, 0, a, out, err);
}

int store_bind_scope(struct db_stmt *st, int backend_idx, const struct store_claim_scope *scope)
{
    json_t *except;
    char *text;

    if (!scope)
        return 0;
    if (scope->backend)
        db_bind_str(st, backend_idx, str_from_cstr(scope->backend));
    if (!scope->nexcept)
        return 0;
    except = json_array();
    for (size_t i = 0; i < scope->nexcept; i++)
        json_array_append_new(except, json_string(scope->except[i]));
    text = json_dumps(except, JSON_COMPACT);
    json_decref(except);
    if (!text)
        abort(); /* jansson fails only on allocation: out of memory is fatal */
    db_bind_text_copy(st, backend_idx + 1, text);
    free(text);
    return 0;
}

/* A due award: when it is due, and its id. */
struct due {
    int64_t at, id;
};

/*
 * Merges backend `name`'s earliest due awards into `best` (`*nbest` of
 * `max`, in (next_attempt_at, id) order), keeping the `max` earliest.
 */
static int due_of_backend(struct conn *c, const char *name, int64_t now, size_t max,
                          struct due *best, size_t *nbest, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_AWARD_DUE, err);
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, now);
    db_bind_int64(st, 2, (int64_t)max);
    db_bind_text_copy(st, 3, name);
    while ((rc = db_step(st)) == DB_ROW) {
        struct due d = { db_column_int64(st, 1), db_column_int64(st, 0) };
        size_t i = *nbest;

        /* rows come in order: once one is later than a full list's last, the rest are too */
        if (i == max &&
            (best[i - 1].at < d.at || (best[i - 1].at == d.at && best[i - 1].id < d.id)))
            break;
        if (i == max)
            i--;
        else
            (*nbest)++;
        while (i > 0 &&
               (best[i - 1].at > d.at || (best[i - 1].at == d.at && best[i - 1].id > d.id))) {
            best[i] = best[i - 1];
            i--;
        }
        best[i] = d;
    }
    db_reset(st);
    if (rc != DB_DONE && rc != DB_ROW)
        return store_db_err(c, rc, "finding due awards", err);
    return 0;
}

/*
 * Claims up to `max` due awards in `scope` inside the admin transaction
 * under way: the earliest due of the scope's backends, each read through
 * its own index (the built-in worker's scope is "any but the remote
 * ones": usually one backend, the built-in issuer).
 */
static int claim_rows(struct store *s, const struct store_claim_scope *scope, int64_t now,
                      int64_t lease, size_t max, struct arena *a, struct store_award **out,
                      size_t *n, struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    struct due best[LIMIT_AWARDS_CLAIM];
    int64_t ids[LIMIT_AWARDS_CLAIM];
    size_t nids = 0, nbest = 0, len = 0;
    struct store_award *v;
    int rc = DB_DONE;

    if (max > LIMIT_AWARDS_CLAIM)
        max = LIMIT_AWARDS_CLAIM;
    st = store_stmt(c, S_AWARD_DUE_BACKENDS, err);
    if (!st)
        return -1;
    store_bind_scope(st, 1, scope);
    while (max && (rc = db_step(st)) == DB_ROW) {
        if (due_of_backend(c, (const char *)db_column_text(st, 0), now, max, best, &nbest, err) <
            0) {
            db_reset(st);
            return -1;
        }
    }
    db_reset(st);
    if (max && rc != DB_DONE)
        return store_db_err(c, rc, "finding the backends of due awards", err);
    for (; nids < nbest; nids++)
        ids[nids] = best[nids].id;
    v = arena_alloc(a, (nids ? nids : 1) * sizeof(*v));
    for (size_t i = 0; i < nids; i++) {
        st = store_stmt(c, S_AWARD_CLAIM, err);
        if (!st)
            return -1;
        db_bind_int64(st, 1, ids[i]);
        db_bind_int64(st, 2, now + lease);
        db_bind_int64(st, 3, now);
        if (store_step_done(c, st, "claiming an award", err) < 0)
            return -1;
        st = store_stmt(c, S_AWARD_GET, err);
        if (!st)
            return -1;
        db_bind_int64(st, 1, ids[i]);
        rc = db_step(st);
        if (rc == DB_ROW)
            read_award(st, a, &v[len++]);
        db_reset(st);
        if (rc != DB_ROW)
            return store_db_err(c, rc == DB_DONE ? DB_ERROR : rc, "reading an award", err);
    }
    *out = v;
    *n = len;
    return 0;
}

int store_award_claim(struct store *s, const struct store_claim_scope *scope, int64_t now,
                      int64_t lease, size_t max, struct arena *a, struct store_award **out,
                      size_t *n, struct err *err)
{
    return store_award_record_claim(s, NULL, 0, scope, now, lease, max, a, out, n, err);
}

/* One guarded update of an award (requeue, revoke); ERR_CONFLICT when its state did not allow it.
 */
static int award_update(struct store *s, enum stmt_id id, int64_t award_id, int64_t now,
                        const char *reason, const char *conflict, struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, id, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, award_id);
    db_bind_int64(st, 2, now);
    if (id == S_AWARD_REVOKE)
        db_bind_str(st, 3, str_from_cstr(reason));
    if (store_step_done(c, st, "updating an award", err) < 0)
        goto out;
    if (db_changes(&c->db) == 0) {
        err_set(err, ERR_CONFLICT, "%s", conflict);
        goto out;
    }
    ret = 0;
out:
    return store_admin_end(s, ret, err);
}

static const char *clip(char *dst, size_t n, const char *src)
{
    if (!src)
        return NULL;
    snprintf(dst, n, "%s", src);
    return dst;
}

/* Records `n` updates inside the admin transaction under way. */
static int record_rows(struct store *s, struct store_award_update *u, size_t n, struct err *err)
{
    static const enum stmt_id ids[] = {
        [AWARD_UPD_ISSUED] = S_AWARD_ISSUED,
        [AWARD_UPD_RETRY] = S_AWARD_RETRY_LATER,
        [AWARD_UPD_FAILED] = S_AWARD_FAILED,
        [AWARD_UPD_REVOKE_SYNCED] = S_AWARD_REVOKE_SYNCED,
        [AWARD_UPD_REVOKE_RETRY] = S_AWARD_REVOKE_RETRY,
    };
    struct conn *c = s->admin;
    int64_t now = util_now();
    int ret = 0;

    for (size_t i = 0; i < n && ret == 0; i++) {
        struct db_stmt *st = store_stmt(c, ids[u[i].kind], err);
        char msg[LIMIT_AWARD_ERROR_LEN + 1];

        if (!st) {
            ret = -1;
            break;
        }
        db_bind_int64(st, 1, u[i].id);
        switch (u[i].kind) {
        case AWARD_UPD_ISSUED:
            db_bind_str(st, 2, str_from_cstr(u[i].assertion_id));
            db_bind_str(st, 3, str_from_cstr(u[i].assertion_url));
            db_bind_int64(st, 4, u[i].issued_at);
            db_bind_int64(st, 5, u[i].expires_at);
            db_bind_int64(st, 6, now);
            /* a note on an issued award (an adopted assertion), else none */
            db_bind_str(st, 7, str_from_cstr(clip(msg, sizeof(msg), u[i].error)));
            break;
        case AWARD_UPD_RETRY:
        case AWARD_UPD_REVOKE_RETRY:
            db_bind_int64(st, 2, u[i].next_at);
            db_bind_str(st, 3, str_from_cstr(clip(msg, sizeof(msg), u[i].error)));
            db_bind_int64(st, 4, now);
            break;
        case AWARD_UPD_FAILED:
            db_bind_str(st, 2, str_from_cstr(clip(msg, sizeof(msg), u[i].error)));
            db_bind_int64(st, 3, now);
            break;
        case AWARD_UPD_REVOKE_SYNCED:
            db_bind_int64(st, 2, now);
            break;
        }
        if (store_step_done(c, st, "recording an award", err) < 0)
            ret = -1;
        else
            u[i].status = db_changes(&c->db) == 1 ? 0 : -1;
        /* an issued award owes the LMS its passback, committed with the issue */
        if (ret == 0 && u[i].status == 0 && u[i].kind == AWARD_UPD_ISSUED) {
            st = store_stmt(c, S_PB_ENQUEUE, err);
            if (!st)
                ret = -1;
            else {
                db_bind_int64(st, 1, u[i].id);
                db_bind_int64(st, 2, now);
                if (store_step_done(c, st, "queueing a grade passback", err) < 0)
                    ret = -1;
            }
        }
    }
    return ret;
}

/*
 * Whether any award in `scope` is due at `now`, read on a reader
 * connection: no write transaction, no write lock.
 */
static int any_due(struct store *s, const struct store_claim_scope *scope, int64_t now, bool *due,
                   struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc = DB_DONE, ret = 0;

    *due = false;
    if (!c)
        return -1;
    st = store_stmt(c, S_AWARD_DUE_BACKENDS, err);
    if (!st) {
        store_reader_put(s, c);
        return -1;
    }
    store_bind_scope(st, 1, scope);
    while (!*due && ret == 0 && (rc = db_step(st)) == DB_ROW) {
        struct db_stmt *one = store_stmt(c, S_AWARD_ANY_DUE, err);
        int r;

        if (!one) {
            ret = -1;
            break;
        }
        db_bind_text_copy(one, 1, (const char *)db_column_text(st, 0));
        db_bind_int64(one, 2, now);
        r = db_step(one);
        db_reset(one);
        if (r == DB_ROW)
            *due = true;
        else if (r != DB_DONE)
            ret = store_db_err(c, r, "finding due awards", err);
    }
    db_reset(st);
    if (ret == 0 && !*due && rc != DB_DONE)
        ret = store_db_err(c, rc, "finding the backends of due awards", err);
    store_reader_put(s, c);
    return ret;
}

int store_award_record_claim(struct store *s, struct store_award_update *u, size_t nu,
                             const struct store_claim_scope *scope, int64_t now, int64_t lease,
                             size_t max, struct arena *a, struct store_award **out, size_t *n,
                             struct err *err)
{
    int ret;

    if (out) {
        *out = NULL;
        *n = 0;
    }
    /*
     * Nothing to record: a write transaction only when something is due.
     * Every worker wakes when awards are queued, most often for another
     * backend's; an empty claim took the write lock (on sqlite, between
     * the launch writer's batches) and committed nothing.
     */
    if (nu == 0) {
        bool due = false;

        if (!out || max == 0)
            return 0;
        if (any_due(s, scope, now, &due, err) < 0)
            return -1;
        if (!due)
            return 0;
    }
    /* run again whole after a deadlock with another instance's claim (store_tx_again) */
    for (int attempt = 0;; attempt++) {
        if (store_admin_begin(s, err) < 0)
            ret = -1;
        else {
            ret = record_rows(s, u, nu, err);
            if (ret == 0 && out && max > 0)
                ret = claim_rows(s, scope, now, lease, max, a, out, n, err);
            ret = store_admin_end(s, ret, err);
        }
        if (ret == 0 || !store_tx_again(s->admin, attempt, err))
            break;
    }
    if (ret < 0 && out) {
        *out = NULL;
        *n = 0;
    }
    return ret;
}

int store_award_record_unsynced(struct store *s, struct store_award_update *u, size_t n,
                                struct err *err)
{
    int ret;

    if (store_admin_begin(s, err) < 0)
        return -1;
    ret = record_rows(s, u, n, err);
    return store_admin_end_unsynced(s, ret, err);
}

int store_award_release(struct store *s, const int64_t *ids, size_t n, int64_t now, struct err *err)
{
    struct conn *c = s->admin;
    int ret = 0;

    if (n == 0)
        return 0;
    if (store_admin_begin(s, err) < 0)
        return -1;
    for (size_t i = 0; i < n && ret == 0; i++) {
        struct db_stmt *st = store_stmt(c, S_AWARD_RELEASE, err);

        if (!st) {
            ret = -1;
            break;
        }
        db_bind_int64(st, 1, ids[i]);
        db_bind_int64(st, 2, now);
        ret = store_step_done(c, st, "giving back a claimed award", err);
    }
    return store_admin_end(s, ret, err);
}

int store_award_update_batch(struct store *s, struct store_award_update *u, size_t n,
                             struct err *err)
{
    return store_award_record_claim(s, u, n, NULL, 0, 0, 0, NULL, NULL, NULL, err);
}

int store_award_retry(struct store *s, int64_t id, int64_t now, struct err *err)
{
    return award_update(s, S_AWARD_REQUEUE, id, now, NULL, "only a failed award can be retried",
                        err);
}

int store_award_revoke(struct store *s, int64_t id, const char *reason, int64_t now,
                       struct err *err)
{
    return award_update(s, S_AWARD_REVOKE, id, now, reason, "the award is already revoked", err);
}

int store_course_awards_change(struct store *s, int64_t consumer_id, int64_t context_id,
                               enum store_course_change what, const int64_t *ids, size_t n,
                               const char *reason, int64_t now, bool *changed, struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    int rc, ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    /* every id first: one of another course changes nothing at all */
    for (size_t i = 0; i < n; i++) {
        changed[i] = false;
        st = store_stmt(c, S_AWARD_IN_COURSE, err);
        if (!st)
            goto out;
        db_bind_int64(st, 1, ids[i]);
        db_bind_int64(st, 2, context_id);
        db_bind_int64(st, 3, consumer_id);
        rc = db_step(st);
        db_reset(st);
        if (rc == DB_DONE) {
            err_set(err, ERR_FORBIDDEN, "award %lld is not an award of this course",
                    (long long)ids[i]);
            goto out;
        }
        if (rc != DB_ROW) {
            store_db_err(c, rc, "reading an award", err);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        st = store_stmt(c, what == STORE_COURSE_REVOKE ? S_AWARD_REVOKE : S_AWARD_REQUEUE, err);
        if (!st)
            goto out;
        db_bind_int64(st, 1, ids[i]);
        db_bind_int64(st, 2, now);
        if (what == STORE_COURSE_REVOKE)
            db_bind_str(st, 3, str_from_cstr(reason));
        if (store_step_done(c, st, "updating an award", err) < 0)
            goto out;
        changed[i] = db_changes(&c->db) > 0;
    }
    ret = 0;
out:
    return store_admin_end(s, ret, err);
}

int store_award_reclaim(struct store *s, int64_t now, int64_t *n, struct err *err)
{
    struct db_stmt *st;
    int ret = -1;

    *n = 0;
    /*
     * Several instances share a PostgreSQL database: a claim still held may
     * be a live instance's, issuing it now. Taking it back would issue the
     * award twice (twice at a remote platform); it is due again when its
     * lease ends, whoever held it.
     */
    if (db_engine(&s->admin->db) != DB_SQLITE)
        return 0;
    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_AWARD_RECLAIM, err);
    if (st) {
        db_bind_int64(st, 1, now);
        ret = store_step_done(s->admin, st, "reclaiming awards", err);
        if (ret == 0)
            *n = db_changes(&s->admin->db);
    }
    return store_admin_end(s, ret, err);
}

int store_outbox_stats(struct store *s, struct store_outbox_stats *out, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    memset(out, 0, sizeof(*out));
    if (!c)
        return -1;
    st = store_stmt(c, S_OUTBOX_COUNTS, err);
    if (!st)
        goto out;
    while ((rc = db_step(st)) == DB_ROW) {
        int64_t v = db_column_int64(st, 1);

        switch (store_award_state_parse((const char *)db_column_text(st, 0))) {
        case AWARD_QUEUED:
            out->queued = v;
            break;
        case AWARD_NEEDS_EMAIL:
            out->needs_email = v;
            break;
        case AWARD_ISSUING:
            out->issuing = v;
            break;
        case AWARD_ISSUED:
            out->issued = v;
            break;
        case AWARD_FAILED:
            out->failed = v;
            break;
        case AWARD_REVOKED:
            out->revoked = v;
            break;
        default:
            break;
        }
    }
    db_reset(st);
    if (rc != DB_DONE) {
        store_db_err(c, rc, "counting awards", err);
        goto out;
    }
    st = store_stmt(c, S_OUTBOX_NEXT_DUE, err);
    if (!st)
        goto out;
    rc = db_step(st);
    if (rc == DB_ROW)
        out->next_due = db_column_int64(st, 0);
    db_reset(st);
    if (rc != DB_ROW) {
        store_db_err(c, rc, "reading the outbox", err);
        goto out;
    }
    ret = 0;
out:
    store_reader_put(s, c);
    return ret;
}

/* min(next_attempt_at) of a statement binding `now` as ?1; 0 when none is due. */
static int oldest_due(struct conn *c, enum stmt_id id, int64_t now, int64_t *out, struct err *err)
{
    struct db_stmt *st = store_stmt(c, id, err);
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, now);
    rc = db_step(st);
    *out = rc == DB_ROW ? db_column_int64(st, 0) : 0;
    db_reset(st);
    if (rc != DB_ROW)
        return store_db_err(c, rc, "reading the outbox", err);
    return 0;
}

int store_outbox_metrics(struct store *s, int64_t now, struct store_outbox_metrics *out,
                         struct err *err)
{
    static const char *const pb_states[4] = { "queued", "sending", "done", "failed" };
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    memset(out, 0, sizeof(*out));
    if (!c)
        return -1;
    st = store_stmt(c, S_METRICS_AWARDS, err);
    if (!st)
        goto out;
    while ((rc = db_step(st)) == DB_ROW) {
        int state = store_award_state_parse((const char *)db_column_text(st, 0));
        const char *backend = (const char *)db_column_text(st, 1);
        struct store_award_group *g;

        if (state < 0 || out->n_awards == STORE_METRICS_AWARD_GROUPS)
            continue;
        g = &out->awards[out->n_awards++];
        g->state = (enum store_award_state)state;
        snprintf(g->backend, sizeof(g->backend), "%s", backend ? backend : "");
        g->n = db_column_int64(st, 2);
    }
    db_reset(st);
    if (rc != DB_DONE) {
        store_db_err(c, rc, "counting awards", err);
        goto out;
    }
    st = store_stmt(c, S_METRICS_PASSBACKS, err);
    if (!st)
        goto out;
    while ((rc = db_step(st)) == DB_ROW) {
        const char *state = (const char *)db_column_text(st, 0);

        for (size_t i = 0; state && i < 4; i++)
            if (strcmp(state, pb_states[i]) == 0)
                out->passbacks[i] = db_column_int64(st, 1);
    }
    db_reset(st);
    if (rc != DB_DONE) {
        store_db_err(c, rc, "counting passbacks", err);
        goto out;
    }
    if (oldest_due(c, S_METRICS_AWARD_DUE, now, &out->award_oldest_due, err) < 0 ||
        oldest_due(c, S_METRICS_PASSBACK_DUE, now, &out->passback_oldest_due, err) < 0)
        goto out;
    ret = 0;
out:
    store_reader_put(s, c);
    return ret;
}
