/*
 * store/events.c - the operations the award rules run inside one
 * transaction: grades, completions, rule lookups, award inserts.
 *
 * awards/ decides; these only read and write. A transaction is either the
 * admin connection's BEGIN IMMEDIATE (store_tx_run: grades, manual grants)
 * or a launch's savepoint on the writer (the enrollment hook), so an award
 * is committed together with the event that earned it, or not at all.
 */
#include "base/base.h"
#include "store/store_int.h"

int store_tx_on(struct store *s, struct conn *c, store_tx_fn *fn, void *cls, int *awards_added,
                struct err *err)
{
    struct store_tx tx = { s, c, ARENA_INIT, 0 };
    int ret;

    ret = fn(&tx, cls, err);
    if (awards_added)
        *awards_added = tx.awards_added;
    arena_release(&tx.arena);
    return ret;
}

int store_tx_run(struct store *s, store_tx_fn *fn, void *cls, struct err *err)
{
    int ret;

    /* fn runs again, on a transaction begun again, after a deadlock or the like (store_tx_again) */
    for (int attempt = 0;; attempt++) {
        if (store_admin_begin(s, err) < 0)
            ret = -1;
        else {
            ret = store_tx_on(s, s->admin, fn, cls, NULL, err);
            ret = store_admin_end(s, ret, err);
        }
        if (ret == 0 || !store_tx_again(s->admin, attempt, err))
            return ret;
    }
}

struct arena *store_tx_arena(struct store_tx *tx)
{
    return &tx->arena;
}

int store_tx_awards_added(struct store_tx *tx)
{
    return tx->awards_added;
}

void store_set_enrollment_hook(struct store *s, store_enrollment_hook *fn, void *cls)
{
    s->enrollment_hook = fn;
    s->enrollment_cls = cls;
}

static int ensure_row(struct store_tx *tx, enum stmt_id id, int64_t consumer_id, const char *lti_id,
                      int64_t context_id, int64_t now, int64_t *out, const char *what,
                      struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, id, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, str_from_cstr(lti_id));
    if (id == S_LINK_ENSURE) {
        if (context_id)
            db_bind_int64(st, 3, context_id);
        db_bind_int64(st, 4, now);
    } else {
        db_bind_int64(st, 3, now);
    }
    return store_step_id(tx->c, st, out, what, err);
}

int store_tx_ensure(struct store_tx *tx, int64_t consumer_id, const char *lti_user_id,
                    const char *lti_context_id, const char *lti_resource_link_id, int64_t now,
                    struct store_ids *out, struct err *err)
{
    memset(out, 0, sizeof(*out));
    if (lti_user_id && ensure_row(tx, S_USER_ENSURE, consumer_id, lti_user_id, 0, now,
                                  &out->user_id, "recording a user", err) < 0)
        return -1;
    if (lti_context_id && store_ensure_context_conn(tx->c, consumer_id, lti_context_id, now,
                                                    &out->context_id, err) < 0)
        return -1;
    if (lti_resource_link_id &&
        ensure_row(tx, S_LINK_ENSURE, consumer_id, lti_resource_link_id, out->context_id, now,
                   &out->link_id, "recording a resource link", err) < 0)
        return -1;
    return 0;
}

int store_tx_user_find(struct store_tx *tx, int64_t consumer_id, const char *lti_user_id,
                       int64_t *user_id, struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_USER_FIND, err);
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, str_from_cstr(lti_user_id));
    rc = db_step(st);
    if (rc == DB_ROW)
        *user_id = db_column_int64(st, 0);
    db_reset(st);
    if (rc == DB_DONE)
        return err_set(err, ERR_NOTFOUND, "user '%s' has never launched the tool", lti_user_id);
    if (rc != DB_ROW)
        return store_db_err(tx->c, rc, "finding a user", err);
    return 0;
}

int store_tx_context(struct store_tx *tx, int64_t context_id, struct store_context_info *out,
                     struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_CONTEXT_INFO, err);
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, context_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        memset(out, 0, sizeof(*out));
        out->id = db_column_int64(st, 0);
        out->consumer_id = db_column_int64(st, 1);
        out->lti_context_id = store_col_arena(st, 2, &tx->arena);
        out->title = store_col_arena(st, 3, &tx->arena);
        out->badges_enabled = db_column_int(st, 4) != 0;
        out->pass_mark = db_column_double(st, 5);
        out->completion_link = store_col_arena(st, 6, &tx->arena);
    }
    db_reset(st);
    if (rc == DB_DONE)
        return err_set(err, ERR_NOTFOUND, "there is no such course");
    if (rc != DB_ROW)
        return store_db_err(tx->c, rc, "reading a course", err);
    return 0;
}

/* One optional text column of one row. */
static int one_text(struct store_tx *tx, enum stmt_id id, int64_t a, int64_t b, const char **out,
                    const char *what, struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, id, err);
    int rc;

    *out = NULL;
    if (!st)
        return -1;
    db_bind_int64(st, 1, a);
    if (id == S_ENROLL_MODE)
        db_bind_int64(st, 2, b);
    rc = db_step(st);
    if (rc == DB_ROW)
        *out = store_col_arena(st, 0, &tx->arena);
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_db_err(tx->c, rc, what, err);
    return 0;
}

int store_tx_link_lti_id(struct store_tx *tx, int64_t link_id, const char **out, struct err *err)
{
    return one_text(tx, S_LINK_LTI_ID, link_id, 0, out, "reading a resource link", err);
}

int store_tx_enrollment_mode(struct store_tx *tx, int64_t user_id, int64_t context_id,
                             const char **mode, struct err *err)
{
    if (one_text(tx, S_ENROLL_MODE, user_id, context_id, mode, "reading an enrollment", err) < 0)
        return -1;
    if (*mode && !**mode)
        *mode = NULL;
    return 0;
}

int store_tx_enrollment_roles(struct store_tx *tx, int64_t user_id, int64_t context_id,
                              bool *enrolled, unsigned *role_flags, struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_ENROLL_ROLES, err);
    int rc;

    *enrolled = false;
    *role_flags = 0;
    if (!st)
        return -1;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, context_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        *enrolled = true;
        *role_flags = (unsigned)db_column_int64(st, 0);
    }
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_db_err(tx->c, rc, "reading an enrollment", err);
    return 0;
}

int store_tx_grade_put(struct store_tx *tx, int64_t user_id, int64_t context_id, int64_t link_id,
                       double score, const char *source, int64_t now, struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_GRADE_PUT, err);

    if (!st)
        return -1;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, link_id);
    if (context_id)
        db_bind_int64(st, 3, context_id);
    db_bind_double(st, 4, score);
    db_bind_str(st, 5, str_from_cstr(source));
    db_bind_int64(st, 6, now);
    return store_step_done(tx->c, st, "recording a grade", err);
}

int store_tx_completion_put(struct store_tx *tx, int64_t user_id, int64_t context_id,
                            const char *mode, int64_t link_id, double score, int64_t now,
                            bool *added, struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_COMPLETION_PUT, err);

    *added = false;
    if (!st)
        return -1;
    db_bind_int64(st, 1, user_id);
    db_bind_int64(st, 2, context_id);
    db_bind_str(st, 3, str_from_cstr(mode));
    if (link_id)
        db_bind_int64(st, 4, link_id);
    db_bind_double(st, 5, score);
    db_bind_int64(st, 6, now);
    if (store_step_done(tx->c, st, "recording a completion", err) < 0)
        return -1;
    *added = db_changes(&tx->c->db) == 1;
    return 0;
}

int store_tx_completed_count(struct store_tx *tx, int64_t consumer_id, int64_t user_id, int64_t *n,
                             struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_COMPLETED_COUNT, err);
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, consumer_id);
    db_bind_int64(st, 2, user_id);
    rc = db_step(st);
    *n = rc == DB_ROW ? db_column_int64(st, 0) : 0;
    db_reset(st);
    if (rc != DB_ROW)
        return store_db_err(tx->c, rc, "counting completions", err);
    return 0;
}

int store_tx_group_completed(struct store_tx *tx, int64_t group_id, int64_t user_id, bool *done,
                             struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_GROUP_COMPLETED, err);
    int rc;

    *done = false;
    if (!st)
        return -1;
    db_bind_int64(st, 1, group_id);
    db_bind_int64(st, 2, user_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        int64_t members = db_column_int64(st, 0), completed = db_column_int64(st, 1);

        *done = members > 0 && completed == members;
    }
    db_reset(st);
    if (rc != DB_ROW)
        return store_db_err(tx->c, rc, "reading a course group", err);
    return 0;
}

/* Reads the rows of S_RULES_FOR or S_RULES_PROGRESS (bound) as rules of `kind`. */
static int read_rules(struct store_tx *tx, struct db_stmt *st, enum store_rule_kind kind,
                      struct store_rule_row **out, size_t *n, struct err *err)
{
    size_t cap = 8, len = 0;
    struct store_rule_row *v = arena_alloc(&tx->arena, cap * sizeof(*v));
    int rc;

    while ((rc = db_step(st)) == DB_ROW) {
        struct store_rule_row *r;

        if (len == cap) {
            struct store_rule_row *nv = arena_alloc(&tx->arena, 2 * cap * sizeof(*nv));

            memcpy(nv, v, len * sizeof(*nv));
            v = nv;
            cap *= 2;
        }
        r = &v[len++];
        memset(r, 0, sizeof(*r));
        r->badge_id = db_column_int64(st, 0);
        r->context_id = db_column_int64(st, 1);
        r->rule.kind = kind;
        r->rule.threshold = db_column_double(st, 2);
        r->rule.resource_link = store_col_arena(st, 3, &tx->arena);
        r->rule.group_id = db_column_int64(st, 4);
        r->rule.count = db_column_int64(st, 5);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(tx->c, rc, "reading rules", err);
    *out = v;
    *n = len;
    return 0;
}

int store_tx_rules(struct store_tx *tx, int64_t consumer_id, enum store_rule_kind kind,
                   int64_t context_id, struct store_rule_row **out, size_t *n, struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_RULES_FOR, err);

    *out = NULL;
    *n = 0;
    if (!st)
        return -1;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, str_from_cstr(store_rule_name(kind)));
    db_bind_int64(st, 3, context_id);
    return read_rules(tx, st, kind, out, n, err);
}

int store_tx_progress_rules(struct store_tx *tx, int64_t consumer_id, enum store_rule_kind kind,
                            int64_t user_id, unsigned learner_flags, unsigned staff_flags,
                            struct store_rule_row **out, size_t *n, struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_RULES_PROGRESS, err);

    *out = NULL;
    *n = 0;
    if (!st)
        return -1;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, str_from_cstr(store_rule_name(kind)));
    db_bind_int64(st, 3, user_id);
    db_bind_int64(st, 4, learner_flags);
    db_bind_int64(st, 5, staff_flags);
    return read_rules(tx, st, kind, out, n, err);
}

int store_tx_completion_badge(struct store_tx *tx, int64_t context_id, const char *mode,
                              int64_t *badge_id, struct err *err)
{
    struct db_stmt *st = store_stmt(tx->c, S_COMPLETION_BADGE, err);
    int rc;

    *badge_id = 0;
    if (!st)
        return -1;
    db_bind_int64(st, 1, context_id);
    db_bind_str(st, 2, str_from_cstr(mode ? mode : ""));
    rc = db_step(st);
    if (rc == DB_ROW)
        *badge_id = db_column_int64(st, 0);
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_db_err(tx->c, rc, "finding a completion badge", err);
    return 0;
}

int store_tx_badge_create(struct store_tx *tx, const struct store_badge_new *b, int64_t *id,
                          char *slug_out, struct err *err)
{
    return store_badge_create_conn(tx->c, b, util_now(), id, slug_out, err);
}

int store_tx_award_add(struct store_tx *tx, const struct store_award_new *a, int64_t *award_id,
                       bool *added, struct err *err)
{
    struct db_stmt *st;
    char uid[33], salt[33];
    int rc;
    int64_t id = 0;

    *added = false;
    if (util_random_hex(uid, 16, err) < 0 || util_random_hex(salt, 16, err) < 0)
        return -1;
    st = store_stmt(tx->c, S_AWARD_INSERT, err);
    if (!st)
        return -1;
    db_bind_str(st, 1, str_from_cstr(uid));
    db_bind_int64(st, 2, a->badge_id);
    db_bind_int64(st, 3, a->user_id);
    if (a->context_id)
        db_bind_int64(st, 4, a->context_id);
    if (a->link_id)
        db_bind_int64(st, 5, a->link_id);
    db_bind_str(st, 6, str_from_cstr(a->reason));
    db_bind_str(st, 7, str_from_cstr(a->narrative));
    db_bind_str(st, 8, str_from_cstr(salt));
    db_bind_int64(st, 9, a->now);
    rc = db_step(st);
    if (rc == DB_ROW) {
        id = db_column_int64(st, 0);
        while (rc == DB_ROW)
            rc = db_step(st);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(tx->c, rc, "recording an award", err);
    if (award_id)
        *award_id = id;
    if (id) {
        *added = true;
        tx->awards_added++;
    }
    return 0;
}
