/*
 * store/pages.c - the reads behind the learner's and the instructor's pages.
 *
 * A page is one call: every query it needs runs on one reader connection
 * inside one read transaction, so what a page shows is one consistent
 * snapshot (an award cannot appear issued in one list and queued in the
 * other), and a page costs one trip to the reader pool.
 */
#include "base/base.h"
#include "store/store_int.h"

typedef void row_fn(struct db_stmt *st, struct arena *a, void *row);

/*
 * Steps the bound `st` and reads every row with `read` into an arena array
 * of `size`-byte items, zeroed first; *out gets the array, *n its length.
 */
static int collect(struct conn *c, struct db_stmt *st, struct arena *a, size_t size, row_fn *read,
                   void **out, size_t *n, const char *what, struct err *err)
{
    size_t cap = 8, len = 0;
    unsigned char *v = arena_alloc(a, st_mult(cap, size));
    int rc;

    while ((rc = db_step(st)) == DB_ROW) {
        if (len == cap) {
            unsigned char *nv = arena_alloc(a, st_mult(st_mult(cap, 2), size));

            memcpy(nv, v, len * size);
            v = nv;
            cap *= 2;
        }
        memset(v + len * size, 0, size);
        read(st, a, v + len * size);
        len++;
    }
    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(c, rc, what, err);
    *out = v;
    *n = len;
    return 0;
}

/*
 * Runs statement `id` with its parameters ?1 and ?2 (as many as it has) bound
 * to `p1` and `p2`; the array of every row (see collect()), or NULL on error.
 */
static void *read_rows(struct conn *c, enum stmt_id id, int64_t p1, int64_t p2, struct arena *a,
                       size_t size, row_fn *read, size_t *n, const char *what, struct err *err)
{
    struct db_stmt *st = store_stmt(c, id, err);
    void *rows = NULL;
    int np;

    if (!st)
        return NULL;
    np = db_bind_count(st);
    if (np >= 1)
        db_bind_int64(st, 1, p1);
    if (np >= 2)
        db_bind_int64(st, 2, p2);
    if (collect(c, st, a, size, read, &rows, n, what, err) < 0)
        return NULL;
    return rows;
}

static void grade_row(struct db_stmt *st, struct arena *a, void *row)
{
    struct store_grade_seen *g = row;

    g->lti_link_id = store_col_arena(st, 0, a);
    g->link_title = store_col_arena(st, 1, a);
    g->has_score = !db_column_is_null(st, 2);
    g->score = db_column_double(st, 2);
    g->source = store_col_arena(st, 3, a);
    g->recorded_at = db_column_int64(st, 4);
    g->bound = db_column_int(st, 5) != 0;
    g->read_at = db_column_int64(st, 6);
    g->read_error = store_col_arena(st, 7, a);
    g->points_possible = db_column_double(st, 8);
}

static void completed_row(struct db_stmt *st, struct arena *a, void *row)
{
    struct store_course_done *d = row;

    d->context_id = db_column_int64(st, 0);
    d->lti_context_id = store_col_arena(st, 1, a);
    d->title = store_col_arena(st, 2, a);
    d->completed_at = db_column_int64(st, 3);
}

static void group_row(struct db_stmt *st, struct arena *a, void *row)
{
    struct store_group_course *g = row;

    g->group_id = db_column_int64(st, 0);
    g->lti_context_id = store_col_arena(st, 1, a);
    g->title = store_col_arena(st, 2, a);
    g->done = db_column_int(st, 3) != 0;
}

static void link_row(struct db_stmt *st, struct arena *a, void *row)
{
    struct store_link *l = row;

    l->lti_link_id = store_col_arena(st, 0, a);
    l->title = store_col_arena(st, 1, a);
    l->points_possible = db_column_double(st, 2);
}

static void enrolled_row(struct db_stmt *st, struct arena *a, void *row)
{
    struct store_enrolled *e = row;

    e->user_id = db_column_int64(st, 0);
    e->lti_user_id = store_col_arena(st, 1, a);
    e->name = store_col_arena(st, 2, a);
    e->email = store_col_arena(st, 3, a);
    e->role_flags = (unsigned)db_column_int64(st, 4);
}

static int read_context(struct conn *c, int64_t context_id, int64_t user_id, struct arena *a,
                        struct store_learner_view *v, struct err *err)
{
    struct db_stmt *st;
    int rc;

    v->pass_mark = 0.5;
    if (!context_id)
        return 0;
    st = store_stmt(c, S_PAGE_CONTEXT, err);
    if (!st)
        return -1;
    db_bind_int64(st, 1, context_id);
    db_bind_int64(st, 2, user_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        v->context_id = db_column_int64(st, 0);
        v->lti_context_id = store_col_arena(st, 2, a);
        v->context_title = store_col_arena(st, 3, a);
        v->badges_enabled = db_column_int(st, 4) != 0;
        v->pass_mark = db_column_double(st, 5);
        v->completion_link = store_col_arena(st, 6, a);
        v->completion_link_title = store_col_arena(st, 7, a);
        v->completed_at = db_column_int64(st, 8);
        v->has_completion_score = !db_column_is_null(st, 9);
        v->completion_score = db_column_double(st, 9);
        v->completion_points = db_column_double(st, 10);
        rc = DB_DONE;
    }
    db_reset(st);
    return rc == DB_DONE ? 0 : store_db_err(c, rc, "reading a course", err);
}

int store_learner_view(struct store *s, int64_t consumer_id, int64_t user_id, int64_t context_id,
                       struct arena *a, struct store_learner_view *out, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (!c)
        return -1;
    /* one snapshot for the whole page */
    if (store_begin_read(c, err) < 0)
        goto out;
    if (read_context(c, context_id, user_id, a, out, err) < 0)
        goto end;
    st = store_stmt(c, S_PAGE_BADGES, err);
    if (!st)
        goto end;
    db_bind_int64(st, 1, consumer_id);
    db_bind_int64(st, 2, context_id);
    db_bind_int64(st, 3, user_id);
    if (store_collect_badges(c, st, a, &out->badges, &out->nbadges, err) < 0)
        goto end;
    st = store_stmt(c, S_PAGE_AWARDS, err);
    if (!st)
        goto end;
    db_bind_int64(st, 1, user_id);
    if (store_collect_awards(c, st, a, &out->awards, &out->nawards, err) < 0)
        goto end;
    if (context_id) {
        out->grades = read_rows(c, S_PAGE_GRADES, user_id, context_id, a, sizeof(*out->grades),
                                grade_row, &out->ngrades, "reading grades", err);
        if (!out->grades)
            goto end;
    }
    out->completed = read_rows(c, S_PAGE_COMPLETED, user_id, 0, a, sizeof(*out->completed),
                               completed_row, &out->ncompleted, "reading completions", err);
    if (!out->completed)
        goto end;
    out->groups = read_rows(c, S_PAGE_GROUPS, consumer_id, user_id, a, sizeof(*out->groups),
                            group_row, &out->ngroups, "reading course groups", err);
    if (!out->groups)
        goto end;
    ret = 0;
end:
    store_end_read(c);
out:
    store_reader_put(s, c);
    return ret;
}

static int read_counts(struct conn *c, int64_t context_id, struct store_course_admin *v,
                       struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_ADMIN_COUNTS, err);
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, context_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        v->queued = db_column_int64(st, 0);
        v->needs_email = db_column_int64(st, 1);
        v->failed = db_column_int64(st, 2);
        v->issued = db_column_int64(st, 3);
        v->revoked = db_column_int64(st, 4);
        v->last_issued_at = db_column_int64(st, 5);
        rc = DB_DONE;
    }
    db_reset(st);
    return rc == DB_DONE ? 0 : store_db_err(c, rc, "counting a course's awards", err);
}

int store_course_admin(struct store *s, int64_t consumer_id, int64_t context_id, struct arena *a,
                       struct store_course_admin *out, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct store_learner_view lv;
    struct db_stmt *st;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (!c)
        return -1;
    if (store_begin_read(c, err) < 0)
        goto out;
    memset(&lv, 0, sizeof(lv));
    if (read_context(c, context_id, 0, a, &lv, err) < 0)
        goto end;
    out->context_id = lv.context_id;
    out->lti_context_id = lv.lti_context_id;
    out->title = lv.context_title;
    out->badges_enabled = lv.badges_enabled;
    out->pass_mark = lv.pass_mark;
    out->completion_link = lv.completion_link;
    st = store_stmt(c, S_ADMIN_BADGES, err);
    if (!st)
        goto end;
    db_bind_int64(st, 1, context_id);
    db_bind_int64(st, 2, consumer_id);
    if (store_collect_badges(c, st, a, &out->badges, &out->nbadges, err) < 0)
        goto end;
    out->links = read_rows(c, S_ADMIN_LINKS, context_id, 0, a, sizeof(*out->links), link_row,
                           &out->nlinks, "reading a course's links", err);
    if (!out->links || read_counts(c, context_id, out, err) < 0)
        goto end;
    ret = 0;
end:
    store_end_read(c);
out:
    store_reader_put(s, c);
    return ret;
}

int store_award_state_rank(enum store_award_state st)
{
    /* the order of STATE_RANK in sql_sqlite.c */
    switch (st) {
    case AWARD_FAILED:
        return 0;
    case AWARD_NEEDS_EMAIL:
        return 1;
    case AWARD_QUEUED:
        return 2;
    case AWARD_ISSUING:
        return 3;
    case AWARD_ISSUED:
        return 4;
    case AWARD_REVOKED:
        break;
    }
    return 5;
}

int store_course_awards(struct store *s, int64_t consumer_id, int64_t context_id,
                        const struct store_course_query *q, size_t limit, struct arena *a,
                        struct store_award **out, size_t *n, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int ret = -1;

    *out = NULL;
    *n = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_ADMIN_AWARDS, err);
    if (st) {
        db_bind_int64(st, 1, context_id);
        db_bind_int64(st, 2, consumer_id);
        if (q->state >= 0)
            db_bind_str(st, 3, str_from_cstr(store_award_state_name(q->state)));
        db_bind_str(st, 4, str_from_cstr(q->badge));
        db_bind_int64(st, 5, (int64_t)limit);
        db_bind_str(st, 6, str_from_cstr(q->learner));
        db_bind_int64(st, 7, (int64_t)q->sort);
        db_bind_int64(st, 8, q->desc ? 1 : 0);
        ret = store_collect_awards(c, st, a, out, n, err);
    }
    store_reader_put(s, c);
    return ret;
}

int store_course_learners(struct store *s, int64_t context_id, unsigned without, size_t limit,
                          struct arena *a, struct store_enrolled **out, size_t *n, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    void *rows = NULL;
    int ret = -1;

    *out = NULL;
    *n = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_ADMIN_LEARNERS, err);
    if (st) {
        db_bind_int64(st, 1, context_id);
        db_bind_int64(st, 2, (int64_t)without);
        db_bind_int64(st, 3, (int64_t)limit);
        ret = collect(c, st, a, sizeof(**out), enrolled_row, &rows, n,
                      "reading a course's learners", err);
        if (ret == 0)
            *out = rows;
    }
    store_reader_put(s, c);
    return ret;
}

/* ---- who a rule would award now ------------------------------------------- */

static void candidate_row(struct db_stmt *st, struct arena *a, void *row)
{
    struct store_candidate *c = row;

    c->user_id = db_column_int64(st, 0);
    c->lti_user_id = store_col_arena(st, 1, a);
    c->name = store_col_arena(st, 2, a);
    c->has_score = !db_column_is_null(st, 3);
    c->score = db_column_double(st, 3);
    c->link_id = db_column_int64(st, 4);
    c->link_title = store_col_arena(st, 5, a);
    c->completed = db_column_int64(st, 6);
}

static int candidates(struct conn *c, const struct store_rule_probe *p, struct arena *a,
                      struct store_candidate **out, size_t *n, struct err *err)
{
    static const enum stmt_id by_kind[] = {
        [RULE_ENROLLMENT] = S_CAND_ENROLLMENT, [RULE_SCORE] = S_CAND_SCORE,
        [RULE_COMPLETION] = S_CAND_COMPLETION, [RULE_GROUP] = S_CAND_GROUP,
        [RULE_COUNT] = S_CAND_COUNT,
    };
    struct db_stmt *st;
    void *rows = NULL;

    *out = NULL;
    *n = 0;
    /* a manual rule awards no one by itself; a completion rule belongs to a course */
    if (p->rule.kind == RULE_MANUAL || (p->rule.kind == RULE_COMPLETION && !p->context_id))
        return 0;
    st = store_stmt(c, by_kind[p->rule.kind], err);
    if (!st)
        return -1;
    db_bind_int64(st, 1, p->consumer_id);
    db_bind_int64(st, 2, p->context_id);
    db_bind_int64(st, 3, p->badge_id);
    db_bind_double(st, 4, p->rule.threshold);
    db_bind_str(st, 5, str_from_cstr(p->rule.resource_link));
    db_bind_str(st, 6, str_from_cstr(p->rule.group ? p->rule.group : ""));
    db_bind_int64(st, 7, p->rule.count);
    db_bind_str(st, 8, str_from_cstr(p->mode ? p->mode : ""));
    db_bind_int64(st, 9, p->limit ? (int64_t)p->limit : -1);
    db_bind_int64(st, 10, p->learner_flags);
    db_bind_int64(st, 11, p->staff_flags);
    if (collect(c, st, a, sizeof(**out), candidate_row, &rows, n, "finding who a rule awards",
                err) < 0)
        return -1;
    *out = rows;
    return 0;
}

int store_rule_candidates(struct store *s, const struct store_rule_probe *p, struct arena *a,
                          struct store_candidate **out, size_t *n, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    int ret;

    *out = NULL;
    *n = 0;
    if (!c)
        return -1;
    ret = candidates(c, p, a, out, n, err);
    store_reader_put(s, c);
    return ret;
}

int store_tx_rule_candidates(struct store_tx *tx, const struct store_rule_probe *p,
                             struct store_candidate **out, size_t *n, struct err *err)
{
    return candidates(tx->c, p, &tx->arena, out, n, err);
}
