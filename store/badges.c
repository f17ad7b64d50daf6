/*
 * store/badges.c - course settings, course groups, BadgeClasses and rules.
 *
 * These are set up by instructors and operators, rarely, on the admin
 * connection, each in one BEGIN IMMEDIATE transaction. The BadgeClass
 * insert is shared with the rule evaluation (events.c), which creates the
 * course's completion BadgeClass on its first completion.
 *
 * Every BadgeClass image written here passes the SVG rule main() set
 * (store_set_svg_rule): the store cannot call images/, so the rule comes
 * in as a function, and the one place that writes images checks them, so
 * that no caller (the CLI, the editor, the rules' default image, a new way
 * in) can store an SVG the rule would change.
 */
#include "base/base.h"
#include "store/store_int.h"

static const char *const rule_names[] = {
    [RULE_ENROLLMENT] = "enrollment", [RULE_SCORE] = "score", [RULE_COMPLETION] = "completion",
    [RULE_GROUP] = "group",           [RULE_COUNT] = "count", [RULE_MANUAL] = "manual",
};

const char *store_rule_name(enum store_rule_kind k)
{
    if ((size_t)k >= sizeof(rule_names) / sizeof(rule_names[0]))
        return "manual";
    return rule_names[k];
}

int store_rule_parse_kind(const char *name)
{
    return store_name_index(rule_names, sizeof(rule_names) / sizeof(rule_names[0]), name);
}

int store_name_index(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++) {
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    }
    return -1;
}

int store_step_id(struct conn *c, struct db_stmt *st, int64_t *id, const char *what,
                  struct err *err)
{
    int rc = db_step(st);

    if (rc != DB_ROW) {
        db_reset(st);
        return store_db_err(c, rc == DB_DONE ? DB_ERROR : rc, what, err);
    }
    *id = db_column_int64(st, 0);
    /* RETURNING: step to the end so the statement completes */
    while (rc == DB_ROW)
        rc = db_step(st);
    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(c, rc, what, err);
    return 0;
}

int store_ensure_context_conn(struct conn *c, int64_t consumer_id, const char *lti_context_id,
                              int64_t now, int64_t *id, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_CONTEXT_ENSURE, err);

    *id = 0;
    if (!st)
        return -1;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, str_from_cstr(lti_context_id));
    db_bind_int64(st, 3, now);
    return store_step_id(c, st, id, "recording a course", err);
}

int store_admin_begin(struct store *s, struct err *err)
{
    pthread_mutex_lock(&s->admin_mu);
    pthread_mutex_lock(&s->write_mu); /* the launch writer's turn ends at its commit */
    if (store_begin(s->admin, err) < 0) {
        pthread_mutex_unlock(&s->write_mu);
        pthread_mutex_unlock(&s->admin_mu);
        return -1;
    }
    return 0;
}

/*
 * Commits (or rolls back) and lets the next writer in, then waits until the
 * commit is on the disk (store_durable: one fdatasync for every commit made
 * meanwhile, by any thread): callers act on a change only once it is
 * durable, but no thread holds the write lock through a disk flush.
 */
static int admin_end(struct store *s, int ret, bool durable, struct err *err)
{
    uint64_t seq = 0;

    if (ret == 0 && store_commit(s->admin, err) < 0)
        ret = -1;
    if (ret < 0 && db_in_tx(&s->admin->db))
        store_rollback(s->admin, NULL);
    if (ret == 0)
        seq = store_commit_seq(s);
    pthread_mutex_unlock(&s->write_mu);
    pthread_mutex_unlock(&s->admin_mu);
    if (ret == 0 && durable && store_durable(s, seq, err) < 0)
        ret = -1;
    return ret;
}

int store_admin_end(struct store *s, int ret, struct err *err)
{
    return admin_end(s, ret, true, err);
}

/*
 * As store_admin_end, without waiting for the disk: the commit is in the
 * WAL, so it outlives the process, and the next durable commit of any
 * thread takes it to the disk with its own (the WAL is written in order);
 * only a power cut before that loses it. For what nobody acts on before a
 * durable commit of their own (store_award_record_unsynced).
 */
int store_admin_end_unsynced(struct store *s, int ret, struct err *err)
{
    return admin_end(s, ret, false, err);
}

int store_context_set_enabled(struct store *s, int64_t consumer_id, const char *lti_context_id,
                              bool enabled, int64_t *context_id, struct err *err)
{
    struct conn *c = s->admin;
    int64_t id, now = util_now();
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    if (store_ensure_context_conn(c, consumer_id, lti_context_id, now, &id, err) < 0)
        goto out;
    st = store_stmt(c, S_CONTEXT_SET_ENABLED, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, id);
    db_bind_int64(st, 2, enabled);
    db_bind_int64(st, 3, now);
    ret = store_step_done(c, st, "updating a course", err);
    if (ret == 0 && context_id)
        *context_id = id;
out:
    return store_admin_end(s, ret, err);
}

int store_context_set_pass_mark(struct store *s, int64_t consumer_id, const char *lti_context_id,
                                double pass_mark, const char *resource_link, struct err *err)
{
    struct conn *c = s->admin;
    int64_t id, now = util_now();
    struct db_stmt *st;
    int ret = -1;

    if (!(pass_mark >= 0.0 && pass_mark <= 1.0))
        return err_set(err, ERR_INVALID, "a pass mark is a score from 0.0 to 1.0");
    if (store_admin_begin(s, err) < 0)
        return -1;
    if (store_ensure_context_conn(c, consumer_id, lti_context_id, now, &id, err) < 0)
        goto out;
    st = store_stmt(c, S_CONTEXT_SET_PASS, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, id);
    db_bind_double(st, 2, pass_mark);
    db_bind_str(st, 3, str_from_cstr(resource_link));
    db_bind_int64(st, 4, now);
    ret = store_step_done(c, st, "updating a course", err);
out:
    return store_admin_end(s, ret, err);
}

int store_context_set_settings(struct store *s, int64_t context_id, bool enabled, double pass_mark,
                               const char *completion_link, struct err *err)
{
    struct conn *c = s->admin;
    int64_t now = util_now();
    struct db_stmt *st;
    int ret = -1, rc;

    if (!(pass_mark >= 0.0 && pass_mark <= 1.0))
        return err_set(err, ERR_INVALID, "a pass mark is a score from 0.0 to 1.0");
    if (store_admin_begin(s, err) < 0)
        return -1;
    if (completion_link) {
        st = store_stmt(c, S_ADMIN_LINK_IN_COURSE, err);
        if (!st)
            goto out;
        db_bind_int64(st, 1, context_id);
        db_bind_str(st, 2, str_from_cstr(completion_link));
        rc = db_step(st);
        db_reset(st);
        if (rc == DB_DONE) {
            err_set(err, ERR_INVALID, "that activity is not part of this course");
            goto out;
        }
        if (rc != DB_ROW) {
            store_db_err(c, rc, "reading a course's links", err);
            goto out;
        }
    }
    st = store_stmt(c, S_CONTEXT_SET_ENABLED, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, context_id);
    db_bind_int64(st, 2, enabled);
    db_bind_int64(st, 3, now);
    if (store_step_done(c, st, "updating a course", err) < 0)
        goto out;
    st = store_stmt(c, S_CONTEXT_SET_PASS, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, context_id);
    db_bind_double(st, 2, pass_mark);
    db_bind_str(st, 3, str_from_cstr(completion_link));
    db_bind_int64(st, 4, now);
    ret = store_step_done(c, st, "updating a course", err);
out:
    return store_admin_end(s, ret, err);
}

static int group_find(struct conn *c, int64_t consumer_id, const char *name, int64_t *id,
                      struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_GROUP_FIND, err);
    int rc;

    if (!st)
        return -1;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, str_from_cstr(name));
    rc = db_step(st);
    if (rc == DB_ROW)
        *id = db_column_int64(st, 0);
    db_reset(st);
    if (rc == DB_DONE)
        return err_set(err, ERR_NOTFOUND, "there is no course group '%s'", name);
    if (rc != DB_ROW)
        return store_db_err(c, rc, "finding a course group", err);
    return 0;
}

int store_group_add(struct store *s, int64_t consumer_id, const char *name,
                    const char *const *lti_context_ids, size_t n, struct err *err)
{
    struct conn *c = s->admin;
    int64_t gid = 0, cid = 0, now = util_now();
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_GROUP_UPSERT, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, consumer_id);
    db_bind_str(st, 2, str_from_cstr(name));
    db_bind_int64(st, 3, now);
    if (store_step_id(c, st, &gid, "creating a course group", err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (store_ensure_context_conn(c, consumer_id, lti_context_ids[i], now, &cid, err) < 0)
            goto out;
        st = store_stmt(c, S_GROUP_MEMBER_ADD, err);
        if (!st)
            goto out;
        db_bind_int64(st, 1, gid);
        db_bind_int64(st, 2, cid);
        if (store_step_done(c, st, "adding a course to a group", err) < 0)
            goto out;
    }
    ret = 0;
out:
    return store_admin_end(s, ret, err);
}

static int slug_taken(struct conn *c, const char *slug, bool *taken, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_SLUG_TAKEN, err);
    int rc;

    if (!st)
        return -1;
    db_bind_str(st, 1, str_from_cstr(slug));
    rc = db_step(st);
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return store_db_err(c, rc, "checking a slug", err);
    *taken = rc == DB_ROW;
    return 0;
}

/* The exact slug, or the base with the first free suffix ("-2", "-3", ...). */
static int pick_slug(struct conn *c, const struct store_badge_new *b, char *out, struct err *err)
{
    bool taken = false;

    if (b->slug) {
        if (strlen(b->slug) > LIMIT_SLUG_LEN)
            return err_set(err, ERR_INVALID, "a slug has at most %d characters", LIMIT_SLUG_LEN);
        snprintf(out, LIMIT_SLUG_LEN + 1, "%s", b->slug);
        if (slug_taken(c, out, &taken, err) < 0)
            return -1;
        if (taken)
            return err_set(err, ERR_CONFLICT, "a BadgeClass with slug '%s' exists", b->slug);
        return 0;
    }
    for (int i = 1; i < 10000; i++) {
        char suffix[16] = "";
        size_t room;

        if (i > 1)
            snprintf(suffix, sizeof(suffix), "-%d", i);
        room = LIMIT_SLUG_LEN - strlen(suffix);
        snprintf(out, LIMIT_SLUG_LEN + 1, "%.*s%s", (int)room,
                 b->slug_base && b->slug_base[0] ? b->slug_base : "badge", suffix);
        if (slug_taken(c, out, &taken, err) < 0)
            return -1;
        if (!taken)
            return 0;
    }
    return err_set(err, ERR_CONFLICT, "no free slug for '%s'", b->slug_base);
}

/* ---- the SVG rule ----------------------------------------------------------- */

static const struct store_svg_rule *svg_rule;

void store_set_svg_rule(const struct store_svg_rule *rule)
{
    svg_rule = rule;
}

/* A BadgeClass image the store may keep: a PNG, or an SVG the rule leaves as it is. */
static int image_ok(const unsigned char *img, size_t len, const char *type, struct err *err)
{
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    size_t removed = 0;
    int ret;

    if (type && strcmp(type, "image/png") == 0)
        return 0;
    if (!type || strcmp(type, "image/svg+xml") != 0)
        return err_set(err, ERR_INVALID, "a badge image is a PNG or an SVG");
    if (!svg_rule)
        return err_set(err, ERR_INTERNAL, "no SVG rule is set: SVG images cannot be stored");
    ret = svg_rule->sanitize(img, len, &out, &removed, err);
    buf_release(&out);
    if (ret == 0 && removed)
        ret = err_set(err, ERR_INVALID,
                      "the SVG image has parts that could run code or load other files");
    return ret;
}

int store_svg_rule_stored(struct conn *c, const unsigned char *img, size_t len, struct buf *out)
{
    struct err err = ERR_INIT;
    size_t removed = 0;

    if (!svg_rule)
        return -1;
    c->svg_checked++;
    if (svg_rule->sanitize(img ? img : (const unsigned char *)"", len, out, &removed, &err) < 0) {
        /* nothing of it can be kept: the image becomes the fallback, as the count says */
        buf_reset(out);
        if (buf_addstr(out, svg_rule->fallback) < 0)
            return -1;
        c->svg_changed++;
        return 1;
    }
    if (removed) {
        c->svg_changed++;
        return 1;
    }
    /* nothing to remove: the bytes stay as they are, comments and layout too */
    return 0;
}

int store_badge_set_image(struct store *s, const char *slug, const unsigned char *image, size_t len,
                          const char *type, struct err *err)
{
    struct db_stmt *st;
    int ret = -1;

    if (image_ok(image, len, type, err) < 0 || store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SET_IMAGE, err);
    if (st) {
        db_bind_str(st, 1, str_from_cstr(slug));
        db_bind_blob(st, 2, image, len);
        db_bind_str(st, 3, str_from_cstr(type));
        db_bind_int64(st, 4, util_now());
        ret = store_step_done(s->admin, st, "replacing a badge image", err);
        if (ret == 0 && db_changes(&s->admin->db) == 0)
            ret = err_set(err, ERR_NOTFOUND, "there is no BadgeClass '%s'", slug);
    }
    return store_admin_end(s, ret, err);
}

/* Parameters 4 to 19 of S_BADGE_INSERT and S_BADGE_UPDATE: the BadgeClass's own fields. */
static void bind_badge_fields(struct db_stmt *st, const struct store_badge_new *b, int64_t now)
{
    db_bind_str(st, 4, str_from_cstr(b->mode));
    db_bind_str(st, 5, str_from_cstr(b->name));
    db_bind_str(st, 6, str_from_cstr(b->description));
    db_bind_blob(st, 7, b->image, b->image_len);
    db_bind_str(st, 8, str_from_cstr(b->image_type));
    db_bind_str(st, 9, str_from_cstr(b->criteria_url));
    db_bind_str(st, 10, str_from_cstr(b->criteria_narrative));
    db_bind_str(st, 11, str_from_cstr(b->issuing_component));
    db_bind_str(st, 12, str_from_cstr(b->tags ? b->tags : "[]"));
    db_bind_str(st, 13, str_from_cstr(b->alignments ? b->alignments : "[]"));
    if (b->expires_days > 0)
        db_bind_int64(st, 14, b->expires_days);
    else
        db_bind_null(st, 14);
    db_bind_str(st, 15, str_from_cstr(b->backend));
    db_bind_str(st, 16, str_from_cstr(b->backend_id));
    db_bind_int64(st, 17, now);
    if (!b->passback_off)
        db_bind_double(st, 18, b->has_passback_score ? b->passback_score : 1.0);
    else
        db_bind_null(st, 18);
    db_bind_int64(st, 19, b->revoke_on_withdrawn);
}

/* The parameters of S_RULE_INSERT and S_RULE_UPDATE: what is not the kind's own stays NULL. */
static void bind_rule(struct db_stmt *st, int64_t badge_id, int64_t context_id, int64_t group_id,
                      const struct store_badge_new *b)
{
    db_bind_int64(st, 1, badge_id);
    db_bind_int64(st, 2, b->consumer_id);
    db_bind_str(st, 3, str_from_cstr(store_rule_name(b->rule.kind)));
    if (context_id)
        db_bind_int64(st, 4, context_id);
    db_bind_str(st, 5, str_from_cstr(b->mode ? b->mode : ""));
    if (b->rule.kind == RULE_SCORE) {
        db_bind_double(st, 6, b->rule.threshold);
        db_bind_str(st, 7, str_from_cstr(b->rule.resource_link));
    }
    if (group_id)
        db_bind_int64(st, 8, group_id);
    if (b->rule.kind == RULE_COUNT)
        db_bind_int64(st, 9, b->rule.count);
}

static int completion_taken(const struct store_badge_new *b, struct err *err)
{
    return err_set(err, ERR_CONFLICT, "this course already has a completion badge for %s%s%s",
                   b->mode ? "mode '" : "no mode", b->mode ? b->mode : "", b->mode ? "'" : "");
}

int store_badge_create_conn(struct conn *c, const struct store_badge_new *b, int64_t now,
                            int64_t *id, char *slug_out, struct err *err)
{
    struct db_stmt *st;
    int64_t context_id = 0, group_id = 0;
    int rc;

    *id = 0;
    if (image_ok(b->image, b->image_len, b->image_type, err) < 0)
        return -1;
    if (b->lti_context_id &&
        store_ensure_context_conn(c, b->consumer_id, b->lti_context_id, now, &context_id, err) < 0)
        return -1;
    if (b->rule.kind == RULE_COMPLETION && !context_id)
        return err_set(err, ERR_INVALID, "a completion badge belongs to a course (--context)");
    if (b->rule.kind == RULE_GROUP &&
        group_find(c, b->consumer_id, b->rule.group, &group_id, err) < 0)
        return -1;
    if (pick_slug(c, b, slug_out, err) < 0)
        return -1;

    st = store_stmt(c, S_BADGE_INSERT, err);
    if (!st)
        return -1;
    db_bind_str(st, 1, str_from_cstr(slug_out));
    db_bind_int64(st, 2, b->consumer_id);
    if (context_id)
        db_bind_int64(st, 3, context_id);
    bind_badge_fields(st, b, now);
    db_bind_str(st, 20, str_from_cstr(b->default_backend));
    if (store_step_id(c, st, id, "creating a BadgeClass", err) < 0)
        return -1;

    st = store_stmt(c, S_RULE_INSERT, err);
    if (!st)
        return -1;
    bind_rule(st, *id, context_id, group_id, b);
    rc = db_step(st);
    db_reset(st);
    if (db_rc_constraint(&c->db, rc))
        return completion_taken(b, err);
    if (rc != DB_DONE)
        return store_db_err(c, rc, "creating a rule", err);
    return 0;
}

int store_badge_create(struct store *s, const struct store_badge_new *b, int64_t *id,
                       char *slug_out, struct err *err)
{
    int ret;

    if (store_admin_begin(s, err) < 0)
        return -1;
    ret = store_badge_create_conn(s->admin, b, util_now(), id, slug_out, err);
    return store_admin_end(s, ret, err);
}

static void read_badge(struct db_stmt *st, struct arena *a, struct store_badge *b)
{
    memset(b, 0, sizeof(*b));
    b->id = db_column_int64(st, 0);
    b->consumer_id = db_column_int64(st, 1);
    b->context_id = db_column_int64(st, 2);
    b->slug = store_col_arena(st, 3, a);
    b->consumer_key = store_col_arena(st, 4, a);
    b->lti_context_id = store_col_arena(st, 5, a);
    b->context_title = store_col_arena(st, 6, a);
    b->mode = store_col_arena(st, 7, a);
    b->name = store_col_arena(st, 8, a);
    b->description = store_col_arena(st, 9, a);
    b->image_type = store_col_arena(st, 10, a);
    b->criteria_url = store_col_arena(st, 11, a);
    b->criteria_narrative = store_col_arena(st, 12, a);
    b->issuing_component = store_col_arena(st, 13, a);
    b->tags = store_col_arena(st, 14, a);
    b->alignments = store_col_arena(st, 15, a);
    b->backend = store_col_arena(st, 16, a);
    b->backend_id = store_col_arena(st, 17, a);
    if (!db_column_is_null(st, 18)) {
        b->image_len = (size_t)db_column_len(st, 18);
        b->image = (const unsigned char *)arena_memdupz(a, db_column_blob(st, 18), b->image_len);
    }
    b->expires_days = db_column_int64(st, 19);
    {
        int k = store_rule_parse_kind((const char *)db_column_text(st, 20));

        b->rule.kind = k < 0 ? RULE_MANUAL : (enum store_rule_kind)k;
    }
    b->rule.threshold = db_column_double(st, 21);
    b->rule.resource_link = store_col_arena(st, 22, a);
    b->rule.group = store_col_arena(st, 23, a);
    b->rule.group_id = db_column_int64(st, 24);
    b->rule.count = db_column_int64(st, 25);
    b->created_at = db_column_int64(st, 26);
    b->updated_at = db_column_int64(st, 27);
    b->issued = db_column_int64(st, 28);
    b->passback = !db_column_is_null(st, 29);
    b->passback_score = b->passback ? db_column_double(st, 29) : 0.0;
    b->revoke_on_withdrawn = db_column_int(st, 30) != 0;
    b->archived_at = db_column_int64(st, 31);
    b->sync_due_at = db_column_int64(st, 32);
    b->sync_attempts = db_column_int64(st, 33);
    b->sync_error = store_col_arena(st, 34, a);
}

static int badge_get(struct store *s, enum stmt_id id, const char *slug, int64_t bid,
                     struct arena *a, struct store_badge *out, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int rc, ret = -1;

    if (!c)
        return -1;
    st = store_stmt(c, id, err);
    if (!st)
        goto out;
    if (slug)
        db_bind_str(st, 1, str_from_cstr(slug));
    else
        db_bind_int64(st, 1, bid);
    rc = db_step(st);
    if (rc == DB_ROW) {
        read_badge(st, a, out);
        ret = 0;
    } else if (rc == DB_DONE) {
        err_set(err, ERR_NOTFOUND, "there is no BadgeClass '%s'", slug ? slug : "with this id");
    } else {
        store_db_err(c, rc, "reading a BadgeClass", err);
    }
    db_reset(st);
out:
    store_reader_put(s, c);
    return ret;
}

int store_badge_get(struct store *s, const char *slug, struct arena *a, struct store_badge *out,
                    struct err *err)
{
    return badge_get(s, S_BADGE_GET, slug, 0, a, out, err);
}

int store_badge_get_id(struct store *s, int64_t id, struct arena *a, struct store_badge *out,
                       struct err *err)
{
    return badge_get(s, S_BADGE_GET_ID, NULL, id, a, out, err);
}

int store_collect_badges(struct conn *c, struct db_stmt *st, struct arena *a,
                         struct store_badge **out, size_t *count, struct err *err)
{
    size_t n = 0, cap = 16;
    struct store_badge *v = arena_alloc(a, cap * sizeof(*v));
    int rc;

    while ((rc = db_step(st)) == DB_ROW) {
        if (n == cap) {
            struct store_badge *nv = arena_alloc(a, 2 * cap * sizeof(*nv));

            memcpy(nv, v, n * sizeof(*nv));
            v = nv;
            cap *= 2;
        }
        read_badge(st, a, &v[n++]);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return store_db_err(c, rc, "listing BadgeClasses", err);
    *out = v;
    *count = n;
    return 0;
}

int store_badge_list(struct store *s, struct arena *a, struct store_badge **out, size_t *count,
                     struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int ret = -1;

    *out = NULL;
    *count = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BADGE_LIST, err);
    if (st)
        ret = store_collect_badges(c, st, a, out, count, err);
    store_reader_put(s, c);
    return ret;
}

int store_badge_list_course(struct store *s, int64_t context_id, struct arena *a,
                            struct store_badge **out, size_t *count, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int ret = -1;

    *out = NULL;
    *count = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BADGE_LIST_COURSE, err);
    if (st) {
        db_bind_int64(st, 1, context_id);
        ret = store_collect_badges(c, st, a, out, count, err);
    }
    store_reader_put(s, c);
    return ret;
}

int store_badge_set_backend_id(struct store *s, int64_t id, const char *backend_id, struct err *err)
{
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SET_BACKEND_ID, err);
    if (st) {
        db_bind_int64(st, 1, id);
        db_bind_str(st, 2, str_from_cstr(backend_id));
        db_bind_int64(st, 3, util_now());
        ret = store_step_done(s->admin, st, "storing a backend id", err);
    }
    return store_admin_end(s, ret, err);
}

/* Reads up to `max` due BadgeClass edits in `scope` on `c`. */
static int syncs_due(struct conn *c, const struct store_claim_scope *scope, int64_t now, size_t max,
                     struct store_badge_sync *out, size_t *n, struct err *err)
{
    struct db_stmt *st = store_stmt(c, S_BADGE_SYNC_DUE, err);
    int rc = DB_DONE;

    *n = 0;
    if (!st)
        return -1;
    db_bind_int64(st, 1, now);
    db_bind_int64(st, 2, (int64_t)max);
    store_bind_scope(st, 3, scope);
    while (*n < max && (rc = db_step(st)) == DB_ROW) {
        out[*n].id = db_column_int64(st, 0);
        out[*n].gen = db_column_int64(st, 1);
        out[*n].attempts = db_column_int64(st, 2);
        (*n)++;
    }
    db_reset(st);
    if (*n < max && rc != DB_DONE)
        return store_db_err(c, rc, "finding BadgeClass edits to send", err);
    return 0;
}

/*
 * On sqlite a read: one instance, one worker per scope, and the writer's
 * lock is not taken at every poll. On PostgreSQL a claim, as awards' are:
 * read FOR UPDATE SKIP LOCKED (instances claiming at once take different
 * rows) and leased in one transaction, so that no worker of another
 * instance sends the same edit meanwhile; one killed meanwhile leaves it
 * due again after the lease.
 */
int store_badge_syncs_due(struct store *s, const struct store_claim_scope *scope, int64_t now,
                          size_t max, struct store_badge_sync *out, size_t *n, struct err *err)
{
    struct conn *c;
    int ret = -1;

    *n = 0;
    if (!s->pg) {
        c = store_reader_get(s, err);
        if (!c)
            return -1;
        ret = syncs_due(c, scope, now, max, out, n, err);
        store_reader_put(s, c);
        return ret;
    }
    if (store_admin_begin(s, err) < 0)
        return -1;
    c = s->admin;
    if (syncs_due(c, scope, now, max, out, n, err) < 0)
        goto out;
    for (size_t i = 0; i < *n; i++) {
        struct db_stmt *st = store_stmt(c, S_BADGE_SYNC_LEASE, err);

        if (!st)
            goto out;
        db_bind_int64(st, 1, out[i].id);
        /* the lease of a call to a platform (a sync is one) */
        db_bind_int64(st, 2, now + LIMIT_AWARDS_REMOTE_LEASE);
        db_bind_int64(st, 3, out[i].gen);
        if (store_step_done(c, st, "claiming a BadgeClass edit", err) < 0)
            goto out;
    }
    ret = 0;
out:
    ret = store_admin_end(s, ret, err);
    if (ret < 0)
        *n = 0;
    return ret;
}

int store_badge_sync_done(struct store *s, int64_t id, int64_t gen, int64_t next_at,
                          const char *error, struct err *err)
{
    struct db_stmt *st;
    char msg[LIMIT_AWARD_ERROR_LEN + 1];
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SYNC_DONE, err);
    if (st) {
        db_bind_int64(st, 1, id);
        db_bind_int64(st, 2, gen);
        if (error && next_at > 0)
            db_bind_int64(st, 3, next_at);
        else
            db_bind_null(st, 3);
        if (error) {
            snprintf(msg, sizeof(msg), "%s", error);
            db_bind_str(st, 4, str_from_cstr(msg));
        } else {
            db_bind_null(st, 4);
        }
        ret = store_step_done(s->admin, st, "recording a BadgeClass update", err);
    }
    return store_admin_end(s, ret, err);
}

int store_badge_set_outcomes(struct store *s, const char *slug, int passback, double score,
                             int revoke_on_withdrawn, struct err *err)
{
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SET_OUTCOMES, err);
    if (st) {
        db_bind_str(st, 1, str_from_cstr(slug));
        db_bind_int64(st, 2, passback < 0 ? -1 : passback ? 1 : 0);
        db_bind_double(st, 3, score);
        db_bind_int64(st, 4, revoke_on_withdrawn < 0 ? -1 : revoke_on_withdrawn ? 1 : 0);
        db_bind_int64(st, 5, util_now());
        ret = store_step_done(s->admin, st, "updating a BadgeClass", err);
        if (ret == 0 && db_changes(&s->admin->db) == 0)
            ret = err_set(err, ERR_NOTFOUND, "there is no BadgeClass '%s'", slug);
    }
    return store_admin_end(s, ret, err);
}

int store_badge_update(struct store *s, int64_t id, int64_t context_id,
                       const struct store_badge_new *b, struct err *err)
{
    struct conn *c = s->admin;
    int64_t group_id = 0, now = util_now();
    struct db_stmt *st;
    int ret = -1, rc;

    /* no image: the stored one stays */
    if (b->image && image_ok(b->image, b->image_len, b->image_type, err) < 0)
        return -1;
    if (store_admin_begin(s, err) < 0)
        return -1;
    if (b->rule.kind == RULE_GROUP &&
        group_find(c, b->consumer_id, b->rule.group, &group_id, err) < 0)
        goto out;
    st = store_stmt(c, S_BADGE_UPDATE, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, id);
    db_bind_int64(st, 2, b->consumer_id);
    db_bind_int64(st, 3, context_id);
    bind_badge_fields(st, b, now);
    db_bind_int64(st, 20, b->image != NULL);
    if (store_step_done(c, st, "updating a BadgeClass", err) < 0)
        goto out;
    if (db_changes(&c->db) == 0) {
        err_set(err, ERR_NOTFOUND, "this course has no such BadgeClass");
        goto out;
    }
    st = store_stmt(c, S_RULE_UPDATE, err);
    if (!st)
        goto out;
    bind_rule(st, id, context_id, group_id, b);
    rc = db_step(st);
    db_reset(st);
    if (db_rc_constraint(&c->db, rc))
        completion_taken(b, err);
    else if (rc != DB_DONE)
        store_db_err(c, rc, "updating a rule", err);
    else
        ret = 0;
out:
    return store_admin_end(s, ret, err);
}

int store_badge_award_count(struct store *s, int64_t id, int64_t *n, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct db_stmt *st;
    int ret = -1;

    *n = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BADGE_AWARDS_ANY, err);
    if (st) {
        db_bind_int64(st, 1, id);
        ret = store_step_id(c, st, n, "counting a BadgeClass's awards", err);
    }
    store_reader_put(s, c);
    return ret;
}

int store_badge_delete(struct store *s, int64_t id, int64_t context_id, struct err *err)
{
    struct conn *c = s->admin;
    struct db_stmt *st;
    int64_t awarded = 0;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_BADGE_DELETE, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, id);
    db_bind_int64(st, 2, context_id);
    if (store_step_done(c, st, "deleting a BadgeClass", err) < 0)
        goto out;
    if (db_changes(&c->db) == 1) {
        ret = 0;
        goto out;
    }
    /* nothing deleted: not this course's, or awarded already */
    st = store_stmt(c, S_BADGE_AWARDS_ANY, err);
    if (!st)
        goto out;
    db_bind_int64(st, 1, id);
    if (store_step_id(c, st, &awarded, "counting a BadgeClass's awards", err) < 0)
        goto out;
    if (awarded)
        err_set(err, ERR_CONFLICT, "a badge that was awarded cannot be deleted: archive it");
    else
        err_set(err, ERR_NOTFOUND, "this course has no such BadgeClass");
out:
    return store_admin_end(s, ret, err);
}

int store_badge_set_archived(struct store *s, int64_t id, int64_t context_id, bool archived,
                             struct err *err)
{
    struct conn *c = s->admin;
    int64_t now = util_now();
    struct db_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_BADGE_SET_ARCHIVED, err);
    if (st) {
        db_bind_int64(st, 1, id);
        db_bind_int64(st, 2, context_id);
        if (archived)
            db_bind_int64(st, 3, now);
        else
            db_bind_null(st, 3);
        db_bind_int64(st, 4, now);
        ret = store_step_done(c, st, "archiving a BadgeClass", err);
        if (ret == 0 && db_changes(&c->db) == 0)
            ret = err_set(err, ERR_NOTFOUND, "this course has no such BadgeClass");
    }
    return store_admin_end(s, ret, err);
}

int store_badge_set_backend(struct store *s, const char *slug, const char *backend, struct err *err)
{
    struct db_stmt *st;
    int ret = -1;
    bool taken = false;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SET_BACKEND, err);
    if (st) {
        db_bind_str(st, 1, str_from_cstr(slug));
        db_bind_str(st, 2, str_from_cstr(backend));
        db_bind_int64(st, 3, util_now());
        ret = store_step_done(s->admin, st, "changing a BadgeClass's backend", err);
    }
    /* nothing changed: no such BadgeClass, or it has awards */
    if (ret == 0 && db_changes(&s->admin->db) == 0) {
        ret = slug_taken(s->admin, slug, &taken, err);
        if (ret == 0 && taken)
            ret = err_set(err, ERR_CONFLICT,
                          "BadgeClass '%s' has awards: its backend can no longer change", slug);
        else if (ret == 0)
            ret = err_set(err, ERR_NOTFOUND, "there is no BadgeClass '%s'", slug);
    }
    return store_admin_end(s, ret, err);
}

int store_backend_usage(struct store *s, struct arena *a, struct store_backend_use **out,
                        size_t *count, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    struct store_backend_use *v = NULL;
    size_t n = 0, cap = 0;
    struct db_stmt *st;
    int rc, ret = -1;

    *out = NULL;
    *count = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BACKEND_USAGE, err);
    if (!st)
        goto out;
    while ((rc = db_step(st)) == DB_ROW) {
        if (n == cap) {
            struct store_backend_use *nv;

            cap = cap ? cap * 2 : 8;
            nv = arena_alloc(a, st_mult(cap, sizeof(*nv)));
            if (n)
                memcpy(nv, v, n * sizeof(*nv));
            v = nv;
        }
        v[n].name = store_col_arena(st, 0, a);
        v[n].consumers = db_column_int64(st, 1);
        v[n].badges = db_column_int64(st, 2);
        v[n].awards = db_column_int64(st, 3);
        n++;
    }
    db_reset(st);
    if (rc != DB_DONE) {
        store_db_err(c, rc, "counting what each backend is used by", err);
        goto out;
    }
    *out = v;
    *count = n;
    ret = 0;
out:
    store_reader_put(s, c);
    return ret;
}
