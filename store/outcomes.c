/*
 * store/outcomes.c - LTI Basic Outcomes: the nonces of signed outcomes
 * requests, sourcedids (the LMS's and the tool's own), grade reads and
 * deletes, the bindings whose LMS grade is read back, and the passback
 * outbox (replaceResult owed to the LMS for an issued award).
 *
 * Passbacks are queued in the transaction that records an issued award
 * (awards.c), so an LMS that is down when the badge is issued is told later,
 * never forgotten. Updates are guarded by the state they expect, like the
 * award outbox's.
 */
#include "base/base.h"
#include "store/store_int.h"

int store_consumer_set_outcome_hosts(struct store *s, const char *key, const char *hosts,
                                     struct err *err)
{
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_CONSUMER_SET_HOSTS, err);
    if (st) {
        db_bind_str(st, 1, str_from_cstr(key));
        db_bind_str(st, 2, str_from_cstr(hosts && *hosts ? hosts : NULL));
        ret = store_step_done(s->admin, st, "setting a consumer's outcome hosts", err);
        if (ret == 0 && db_changes(&s->admin->db) == 0)
            ret = err_set(err, ERR_NOTFOUND, "there is no consumer with key '%s'", key);
    }
    return store_admin_end(s, ret, err);
}

static void read_target(struct db_stmt *st, struct arena *a, struct store_outcome_target *t)
{
    t->user_id = db_column_int64(st, 0);
    t->context_id = db_column_int64(st, 1);
    t->link_id = db_column_int64(st, 2);
    t->lti_user_id = store_col_arena(st, 3, a);
    t->lti_context_id = store_col_arena(st, 4, a);
    t->lti_resource_link_id = store_col_arena(st, 5, a);
}

int store_outcome_resolve(struct store *s, int64_t consumer_id, const char *sourcedid,
                          struct arena *a, struct store_outcome_target *out, struct err *err)
{
    static const enum stmt_id order[] = { S_TOOL_SOURCEDID_FIND, S_BINDING_BY_SOURCEDID };
    struct conn *c = store_reader_get(s, err);
    int ret = 1;

    memset(out, 0, sizeof(*out));
    if (!c)
        return -1;
    for (size_t i = 0; i < 2 && ret == 1; i++) {
        struct db_stmt *st = store_stmt(c, order[i], err);
        int rc;

        if (!st) {
            ret = -1;
            break;
        }
        db_bind_str(st, 1, str_from_cstr(sourcedid));
        db_bind_int64(st, 2, consumer_id);
        if (order[i] == S_BINDING_BY_SOURCEDID)
            db_bind_int64(st, 3, store_sourcedid_fp(str_from_cstr(sourcedid)));
        rc = db_step(st);
        if (rc == DB_ROW) {
            read_target(st, a, out);
            ret = 0;
        } else if (rc != DB_DONE) {
            ret = store_db_err(c, rc, "finding a sourcedid", err);
        }
        db_reset(st);
    }
    store_reader_put(s, c);
    if (ret == 1)
        return err_set(err, ERR_NOTFOUND, "no result has this sourcedId for this consumer");
    return ret;
}

struct sourcedid_ev {
    int64_t consumer_id;
    const char *user, *context, *link;
    char *out;
};

static int tool_sourcedid_tx(struct store_tx *tx, void *cls, struct err *err)
{
    struct sourcedid_ev *ev = cls;
    struct store_ids ids;
    struct db_stmt *st;
    int64_t now = util_now();
    int rc;

    if (store_tx_ensure(tx, ev->consumer_id, ev->user, ev->context, ev->link, now, &ids, err) < 0)
        return -1;
    st = store_stmt(tx->c, S_TOOL_SOURCEDID_GET, err);
    if (!st)
        return -1;
    db_bind_int64(st, 1, ids.user_id);
    db_bind_int64(st, 2, ids.link_id);
    rc = db_step(st);
    if (rc == DB_ROW)
        store_col_copy(st, 0, ev->out, LIMIT_TOOL_SOURCEDID_LEN + 1);
    db_reset(st);
    if (rc == DB_ROW)
        return 0;
    if (rc != DB_DONE)
        return store_db_err(tx->c, rc, "reading a sourcedid", err);
    /* unguessable, so a sourcedid proves nothing but what it names */
    memcpy(ev->out, "lb-", 3);
    if (util_random_hex(ev->out + 3, 20, err) < 0)
        return -1;
    st = store_stmt(tx->c, S_TOOL_SOURCEDID_INSERT, err);
    if (!st)
        return -1;
    db_bind_str(st, 1, str_from_cstr(ev->out));
    db_bind_int64(st, 2, ev->consumer_id);
    db_bind_int64(st, 3, ids.user_id);
    db_bind_int64(st, 4, ids.context_id);
    db_bind_int64(st, 5, ids.link_id);
    db_bind_int64(st, 6, now);
    return store_step_done(tx->c, st, "recording a sourcedid", err);
}

int store_tool_sourcedid(struct store *s, int64_t consumer_id, const char *lti_user_id,
                         const char *lti_context_id, const char *lti_resource_link_id, char *out,
                         struct err *err)
{
    struct sourcedid_ev ev = { consumer_id, lti_user_id, lti_context_id, lti_resource_link_id,
                               out };

    out[0] = '\0';
    if (store_tx_run(s, tool_sourcedid_tx, &ev, err) < 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int store_grade_get(struct store *s, int64_t user_id, int64_t link_id, double *score, bool *has,
                    struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    *has = false;
    *score = 0.0;
    if (!c)
        return -1;
    st = store_stmt(c, S_GRADE_GET, err);
    if (st) {
        db_bind_int64(st, 1, user_id);
        db_bind_int64(st, 2, link_id);
        rc = db_step(st);
        if (rc == DB_ROW) {
            *has = true;
            *score = db_column_double(st, 0);
        }
        db_reset(st);
        ret = rc == DB_ROW || rc == DB_DONE ? 0 : store_db_err(c, rc, "reading a grade", err);
    }
    store_reader_put(s, c);
    return ret;
}

int store_tx_grade_delete(struct store_tx *tx, int64_t user_id, int64_t link_id, bool *existed,
                          struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_GRADE_DELETE, err);

    *existed = false;
    if (!st)
        return -1;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, link_id);
    if (store_step_done(tx->c, st, "deleting a grade", err) < 0)
        return -1;
    *existed = db_changes(&tx->c->db) > 0;
    return 0;
}

int store_tx_earned_on_link(struct store_tx *tx, int64_t user_id, int64_t link_id,
                            struct store_earned **out, size_t *n, struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_EARNED_ON_LINK, err);
    size_t cap = 8, len = 0;
    struct store_earned *v;
    int rc;

    *out = NULL;
    *n = 0;
    if (!st)
        return -1;
    v = arena_alloc(&tx->arena, cap * sizeof(*v));
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, link_id);
    while ((rc = db_step(st)) == DB_ROW) {
        int k;

        if (len == cap) {
            struct store_earned *nv = arena_alloc(&tx->arena, 2 * cap * sizeof(*nv));

            memcpy(nv, v, len * sizeof(*nv));
            v = nv;
            cap *= 2;
        }
        v[len].award_id = db_column_int64(st, 0);
        k = store_rule_parse_kind((const char *)db_column_text(st, 1));
        v[len].kind = k < 0 ? RULE_MANUAL : (enum store_rule_kind)k;
        v[len].reason = store_col_arena(st, 2, &tx->arena);
        v[len].threshold = db_column_double(st, 3);
        v[len].pass_mark = db_column_double(st, 4);
        v[len].revoke_on_withdrawn = db_column_int(st, 5) != 0;
        len++;
    }
    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(tx->c, rc, "reading awards earned by a grade", err);
    *out = v;
    *n = len;
    return 0;
}

int store_tx_award_revoke(struct store_tx *tx, int64_t award_id, const char *reason, int64_t now,
                          struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_AWARD_REVOKE, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, award_id);
    db_bind_int64(st, 2, now);
    db_bind_str(st, 3, str_from_cstr(reason));
    return store_step_done(tx->c, st, "revoking an award", err);
}

/* ---- reading grades back from the LMS -------------------------------------- */

int store_bindings_to_read(struct store *s, int64_t user_id, int64_t context_id, int64_t before,
                           size_t max, struct arena *a, struct store_binding **out, size_t *n,
                           struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    struct store_binding *v;
    size_t len = 0;
    int rc, ret = -1;

    *out = NULL;
    *n = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BINDINGS_TO_READ, err);
    if (!st)
        goto out;
    v = arena_alloc(a, (max ? max : 1) * sizeof(*v));
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, context_id);
    db_bind_int64(st, 3, before);
    db_bind_int64(st, 4, (int64_t)max);
    while (len < max && (rc = db_step(st)) == DB_ROW) {
        struct store_binding *b = &v[len++];

        memset(b, 0, sizeof(*b));
        b->id = db_column_int64(st, 0);
        b->consumer_id = db_column_int64(st, 1);
        b->user_id = db_column_int64(st, 2);
        b->context_id = db_column_int64(st, 3);
        b->link_id = db_column_int64(st, 4);
        b->service_url = store_col_arena(st, 5, a);
        b->sourcedid = store_col_arena(st, 6, a);
        b->consumer_key = store_col_arena(st, 7, a);
        b->consumer_secret = store_col_arena(st, 8, a);
        b->outcome_hosts = store_col_arena(st, 9, a);
        b->lti_user_id = store_col_arena(st, 10, a);
        b->lti_context_id = store_col_arena(st, 11, a);
        b->lti_resource_link_id = store_col_arena(st, 12, a);
        b->has_score = !db_column_is_null(st, 13);
        b->last_score = db_column_double(st, 13);
    }
    if (len < max && rc != DB_DONE) {
        db_reset(st);
        store_db_err(c, rc, "finding outcome bindings to read", err);
        goto out;
    }
    db_reset(st);
    *out = v;
    *n = len;
    ret = 0;
out:
    store_reader_put(s, c);
    return ret;
}

int store_context_needs_grades(struct store *s, int64_t context_id, bool *needs, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    *needs = false;
    if (!c)
        return -1;
    st = store_stmt(c, S_CONTEXT_NEEDS_GRADES, err);
    if (st) {
        db_bind_int64(st, 1, context_id);
        rc = db_step(st);
        if (rc == DB_ROW)
            *needs = db_column_int(st, 0) != 0;
        db_reset(st);
        ret = rc == DB_ROW || rc == DB_DONE
                  ? 0
                  : store_db_err(c, rc, "reading whether a course needs grades", err);
    }
    store_reader_put(s, c);
    return ret;
}

int store_binding_read_done(struct store *s, int64_t binding_id, int64_t now,
                            enum store_read_result r, double score, const char *error,
                            struct err *err)
{
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BINDING_READ_DONE, err);
    if (st) {
        db_bind_int64(st, 1, binding_id);
        db_bind_int64(st, 2, now);
        db_bind_int64(st, 3, r == READ_SCORE ? 1 : r == READ_NO_SCORE ? 2 : 0);
        db_bind_double(st, 4, score);
        db_bind_str(st, 5, str_from_cstr(error));
        ret = store_step_done(s->admin, st, "recording a grade read", err);
    }
    return store_admin_end(s, ret, err);
}

/* ---- the passback outbox ---------------------------------------------------- */

static int passback_claim(struct store *s, int64_t now, int64_t lease, size_t max, struct arena *a,
                          struct store_passback **out, size_t *n, struct err *err)
{
    struct conn *c = s->admin;
    int64_t ids[LIMIT_PASSBACK_CLAIM];
    size_t nids = 0, len = 0;
    struct store_passback *v;
    struct db_stmt *st;
    int rc, ret = -1;

    *out = NULL;
    *n = 0;
    if (max > LIMIT_PASSBACK_CLAIM)
        max = LIMIT_PASSBACK_CLAIM;
    v = arena_alloc(a, (max ? max : 1) * sizeof(*v));
    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_PB_DUE, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, now);
    db_bind_int64(st, 2, (int64_t)max);
    while (nids < max && (rc = db_step(st)) == DB_ROW)
        ids[nids++] = db_column_int64(st, 0);
    db_reset(st);
    if (nids < max && rc != DB_DONE) {
        store_db_err(c, rc, "finding due passbacks", err);
        goto out;
    }
    for (size_t i = 0; i < nids; i++) {
        struct store_passback *p = &v[len];

        st = store_stmt(c, S_PB_CLAIM, err);
        if (!st)
            goto out;
        db_bind_int64(st, 1, ids[i]);
        db_bind_int64(st, 2, now + lease);
        db_bind_int64(st, 3, now);
        if (store_step_done(c, st, "claiming a passback", err) < 0)
            goto out;
        st = store_stmt(c, S_PB_GET, err);
        if (!st)
            goto out;
        db_bind_int64(st, 1, ids[i]);
        rc = db_step(st);
        if (rc == DB_ROW) {
            memset(p, 0, sizeof(*p));
            p->id = db_column_int64(st, 0);
            p->award_id = db_column_int64(st, 1);
            p->binding_id = db_column_int64(st, 2);
            p->consumer_id = db_column_int64(st, 3);
            p->attempts = db_column_int64(st, 4);
            p->has_score = !db_column_is_null(st, 5);
            p->score = db_column_double(st, 5);
            p->data_url = store_col_arena(st, 6, a);
            p->service_url = store_col_arena(st, 7, a);
            p->sourcedid = store_col_arena(st, 8, a);
            p->consumer_key = store_col_arena(st, 9, a);
            p->consumer_secret = store_col_arena(st, 10, a);
            p->outcome_hosts = store_col_arena(st, 11, a);
            p->consumer_enabled = db_column_int(st, 12) != 0;
            len++;
        }
        db_reset(st);
        if (rc != DB_ROW && rc != DB_DONE) {
            store_db_err(c, rc, "reading a passback", err);
            goto out;
        }
    }
    ret = 0;
out:
    ret = store_admin_end(s, ret, err);
    if (ret == 0) {
        *out = v;
        *n = len;
    }
    return ret;
}

int store_passback_claim(struct store *s, int64_t now, int64_t lease, size_t max, struct arena *a,
                         struct store_passback **out, size_t *n, struct err *err)
{
    /* run again whole after a deadlock with another instance's claim (store_tx_again) */
    for (int attempt = 0;; attempt++) {
        if (passback_claim(s, now, lease, max, a, out, n, err) == 0)
            return 0;
        if (!store_tx_again(s->admin, attempt, err))
            return -1;
    }
}

int store_passback_update_batch(struct store *s, struct store_passback_update *u, size_t n,
                                struct err *err)
{
    static const enum stmt_id ids[] = {
        [PASSBACK_DONE] = S_PB_DONE,
        [PASSBACK_RETRY] = S_PB_RETRY,
        [PASSBACK_FAILED] = S_PB_FAILED,
    };
    struct conn *c = s->admin;
    int64_t now = util_now();
    int ret = 0;

    if (store_admin_begin(s, err) < 0)
        return -1;
    for (size_t i = 0; i < n && ret == 0; i++) {
        struct db_stmt *st = store_stmt(c, ids[u[i].kind], err);
        char answer[LIMIT_AWARD_ERROR_LEN + 1];

        if (!st) {
            ret = -1;
            break;
        }
        snprintf(answer, sizeof(answer), "%s", u[i].answer ? u[i].answer : "");
        db_bind_int64(st, 1, u[i].id);
        db_bind_int64(st, 2, u[i].next_at);
        db_bind_str(st, 3, str_from_cstr(answer));
        db_bind_int64(st, 4, now);
        if (store_step_done(c, st, "recording a passback", err) < 0)
            ret = -1;
        else
            u[i].status = db_changes(&c->db) == 1 ? 0 : -1;
    }
    return store_admin_end(s, ret, err);
}

int store_passback_retry(struct store *s, int64_t award_id, int64_t now, int64_t *n,
                         struct err *err)
{
    struct db_stmt *st;
    int ret = -1;

    *n = 0;
    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_PB_REQUEUE, err);
    if (st) {
        db_bind_int64(st, 1, award_id);
        db_bind_int64(st, 2, now);
        ret = store_step_done(s->admin, st, "queueing passbacks again", err);
        if (ret == 0)
            *n = db_changes(&s->admin->db);
    }
    return store_admin_end(s, ret, err);
}

int store_passback_next_due(struct store *s, int64_t *next, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    *next = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_PB_NEXT_DUE, err);
    if (st) {
        rc = db_step(st);
        if (rc == DB_ROW)
            *next = db_column_int64(st, 0);
        db_reset(st);
        ret = rc == DB_ROW ? 0 : store_db_err(c, rc, "reading the passback queue", err);
    }
    store_reader_put(s, c);
    return ret;
}
