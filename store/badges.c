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

int store_step_id(struct conn *c, sqlite3_stmt *st, int64_t *id, const char *what, struct err *err)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return store_db_err(c, rc == SQLITE_DONE ? SQLITE_ERROR : rc, what, err);
    }
    *id = sqlite3_column_int64(st, 0);
    /* RETURNING: step to the end so the statement completes */
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_db_err(c, rc, what, err);
    return 0;
}

int store_ensure_context_conn(struct conn *c, int64_t consumer_id, const char *lti_context_id,
                              int64_t now, int64_t *id, struct err *err)
{
    sqlite3_stmt *st = store_stmt(c, S_CONTEXT_ENSURE, err);

    *id = 0;
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, consumer_id);
    store_bind_str(st, 2, str_from_cstr(lti_context_id));
    sqlite3_bind_int64(st, 3, now);
    return store_step_id(c, st, id, "recording a course", err);
}

int store_admin_begin(struct store *s, struct err *err)
{
    pthread_mutex_lock(&s->admin_mu);
    pthread_mutex_lock(&s->write_mu); /* the launch writer's turn ends at its commit */
    if (store_exec(s->admin, S_BEGIN_IMMEDIATE, err) < 0) {
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
int store_admin_end(struct store *s, int ret, struct err *err)
{
    uint64_t seq = 0;

    if (ret == 0 && store_exec(s->admin, S_COMMIT, err) < 0)
        ret = -1;
    if (ret < 0 && !sqlite3_get_autocommit(s->admin->db))
        store_exec(s->admin, S_ROLLBACK, NULL);
    if (ret == 0)
        seq = store_commit_seq(s);
    pthread_mutex_unlock(&s->write_mu);
    pthread_mutex_unlock(&s->admin_mu);
    if (ret == 0 && store_durable(s, seq, err) < 0)
        ret = -1;
    return ret;
}

int store_context_set_enabled(struct store *s, int64_t consumer_id, const char *lti_context_id,
                              bool enabled, int64_t *context_id, struct err *err)
{
    struct conn *c = s->admin;
    int64_t id, now = util_now();
    sqlite3_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    if (store_ensure_context_conn(c, consumer_id, lti_context_id, now, &id, err) < 0)
        goto out;
    st = store_stmt(c, S_CONTEXT_SET_ENABLED, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, enabled);
    sqlite3_bind_int64(st, 3, now);
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
    sqlite3_stmt *st;
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
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_double(st, 2, pass_mark);
    store_bind_str(st, 3, str_from_cstr(resource_link));
    sqlite3_bind_int64(st, 4, now);
    ret = store_step_done(c, st, "updating a course", err);
out:
    return store_admin_end(s, ret, err);
}

int store_context_set_settings(struct store *s, int64_t context_id, bool enabled, double pass_mark,
                               const char *completion_link, struct err *err)
{
    struct conn *c = s->admin;
    int64_t now = util_now();
    sqlite3_stmt *st;
    int ret = -1, rc;

    if (!(pass_mark >= 0.0 && pass_mark <= 1.0))
        return err_set(err, ERR_INVALID, "a pass mark is a score from 0.0 to 1.0");
    if (store_admin_begin(s, err) < 0)
        return -1;
    if (completion_link) {
        st = store_stmt(c, S_ADMIN_LINK_IN_COURSE, err);
        if (!st)
            goto out;
        sqlite3_bind_int64(st, 1, context_id);
        store_bind_str(st, 2, str_from_cstr(completion_link));
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) {
            err_set(err, ERR_INVALID, "that activity is not part of this course");
            goto out;
        }
        if (rc != SQLITE_ROW) {
            store_db_err(c, rc, "reading a course's links", err);
            goto out;
        }
    }
    st = store_stmt(c, S_CONTEXT_SET_ENABLED, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, context_id);
    sqlite3_bind_int(st, 2, enabled);
    sqlite3_bind_int64(st, 3, now);
    if (store_step_done(c, st, "updating a course", err) < 0)
        goto out;
    st = store_stmt(c, S_CONTEXT_SET_PASS, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, context_id);
    sqlite3_bind_double(st, 2, pass_mark);
    store_bind_str(st, 3, str_from_cstr(completion_link));
    sqlite3_bind_int64(st, 4, now);
    ret = store_step_done(c, st, "updating a course", err);
out:
    return store_admin_end(s, ret, err);
}

static int group_find(struct conn *c, int64_t consumer_id, const char *name, int64_t *id,
                      struct err *err)
{
    sqlite3_stmt *st = store_stmt(c, S_GROUP_FIND, err);
    int rc;

    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, consumer_id);
    store_bind_str(st, 2, str_from_cstr(name));
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return err_set(err, ERR_NOTFOUND, "there is no course group '%s'", name);
    if (rc != SQLITE_ROW)
        return store_db_err(c, rc, "finding a course group", err);
    return 0;
}

int store_group_add(struct store *s, int64_t consumer_id, const char *name,
                    const char *const *lti_context_ids, size_t n, struct err *err)
{
    struct conn *c = s->admin;
    int64_t gid = 0, cid = 0, now = util_now();
    sqlite3_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_GROUP_UPSERT, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, consumer_id);
    store_bind_str(st, 2, str_from_cstr(name));
    sqlite3_bind_int64(st, 3, now);
    if (store_step_id(c, st, &gid, "creating a course group", err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (store_ensure_context_conn(c, consumer_id, lti_context_ids[i], now, &cid, err) < 0)
            goto out;
        st = store_stmt(c, S_GROUP_MEMBER_ADD, err);
        if (!st)
            goto out;
        sqlite3_bind_int64(st, 1, gid);
        sqlite3_bind_int64(st, 2, cid);
        if (store_step_done(c, st, "adding a course to a group", err) < 0)
            goto out;
    }
    ret = 0;
out:
    return store_admin_end(s, ret, err);
}

static int slug_taken(struct conn *c, const char *slug, bool *taken, struct err *err)
{
    sqlite3_stmt *st = store_stmt(c, S_SLUG_TAKEN, err);
    int rc;

    if (!st)
        return -1;
    store_bind_str(st, 1, str_from_cstr(slug));
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_db_err(c, rc, "checking a slug", err);
    *taken = rc == SQLITE_ROW;
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

void store_sql_svg_rule(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct conn *c = sqlite3_user_data(ctx);
    const unsigned char *img = sqlite3_value_blob(argv[0]);
    size_t len = (size_t)sqlite3_value_bytes(argv[0]);
    struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    struct err err = ERR_INIT;
    size_t removed = 0;

    (void)argc;
    if (!svg_rule) {
        sqlite3_result_error(ctx, "no SVG rule is set: stored SVG images cannot be checked", -1);
        return;
    }
    c->svg_checked++;
    if (svg_rule->sanitize(img ? img : (const unsigned char *)"", len, &out, &removed, &err) < 0) {
        /* nothing of it can be kept: the image becomes the fallback, as the count says */
        sqlite3_result_blob64(ctx, svg_rule->fallback, strlen(svg_rule->fallback),
                              SQLITE_TRANSIENT);
        c->svg_changed++;
    } else if (removed) {
        sqlite3_result_blob64(ctx, out.ptr, out.len, SQLITE_TRANSIENT);
        c->svg_changed++;
    } else {
        /* nothing to remove: the bytes stay as they are, comments and layout too */
        sqlite3_result_value(ctx, argv[0]);
    }
    buf_release(&out);
}

int store_badge_set_image(struct store *s, const char *slug, const unsigned char *image, size_t len,
                          const char *type, struct err *err)
{
    sqlite3_stmt *st;
    int ret = -1;

    if (image_ok(image, len, type, err) < 0 || store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SET_IMAGE, err);
    if (st) {
        store_bind_str(st, 1, str_from_cstr(slug));
        sqlite3_bind_blob64(st, 2, image, len, SQLITE_STATIC);
        store_bind_str(st, 3, str_from_cstr(type));
        sqlite3_bind_int64(st, 4, util_now());
        ret = store_step_done(s->admin, st, "replacing a badge image", err);
        if (ret == 0 && sqlite3_changes(s->admin->db) == 0)
            ret = err_set(err, ERR_NOTFOUND, "there is no BadgeClass '%s'", slug);
    }
    return store_admin_end(s, ret, err);
}

/* Parameters 4 to 19 of S_BADGE_INSERT and S_BADGE_UPDATE: the BadgeClass's own fields. */
static void bind_badge_fields(sqlite3_stmt *st, const struct store_badge_new *b, int64_t now)
{
    store_bind_str(st, 4, str_from_cstr(b->mode));
    store_bind_str(st, 5, str_from_cstr(b->name));
    store_bind_str(st, 6, str_from_cstr(b->description));
    sqlite3_bind_blob64(st, 7, b->image, b->image_len, SQLITE_STATIC);
    store_bind_str(st, 8, str_from_cstr(b->image_type));
    store_bind_str(st, 9, str_from_cstr(b->criteria_url));
    store_bind_str(st, 10, str_from_cstr(b->criteria_narrative));
    store_bind_str(st, 11, str_from_cstr(b->issuing_component));
    store_bind_str(st, 12, str_from_cstr(b->tags ? b->tags : "[]"));
    store_bind_str(st, 13, str_from_cstr(b->alignments ? b->alignments : "[]"));
    if (b->expires_days > 0)
        sqlite3_bind_int64(st, 14, b->expires_days);
    else
        sqlite3_bind_null(st, 14);
    store_bind_str(st, 15, str_from_cstr(b->backend));
    store_bind_str(st, 16, str_from_cstr(b->backend_id));
    sqlite3_bind_int64(st, 17, now);
    if (!b->passback_off)
        sqlite3_bind_double(st, 18, b->has_passback_score ? b->passback_score : 1.0);
    else
        sqlite3_bind_null(st, 18);
    sqlite3_bind_int(st, 19, b->revoke_on_withdrawn);
}

/* The parameters of S_RULE_INSERT and S_RULE_UPDATE: what is not the kind's own stays NULL. */
static void bind_rule(sqlite3_stmt *st, int64_t badge_id, int64_t context_id, int64_t group_id,
                      const struct store_badge_new *b)
{
    sqlite3_bind_int64(st, 1, badge_id);
    sqlite3_bind_int64(st, 2, b->consumer_id);
    store_bind_str(st, 3, str_from_cstr(store_rule_name(b->rule.kind)));
    if (context_id)
        sqlite3_bind_int64(st, 4, context_id);
    store_bind_str(st, 5, str_from_cstr(b->mode ? b->mode : ""));
    if (b->rule.kind == RULE_SCORE) {
        sqlite3_bind_double(st, 6, b->rule.threshold);
        store_bind_str(st, 7, str_from_cstr(b->rule.resource_link));
    }
    if (group_id)
        sqlite3_bind_int64(st, 8, group_id);
    if (b->rule.kind == RULE_COUNT)
        sqlite3_bind_int64(st, 9, b->rule.count);
}

static int completion_taken(const struct store_badge_new *b, struct err *err)
{
    return err_set(err, ERR_CONFLICT, "this course already has a completion badge for %s%s%s",
                   b->mode ? "mode '" : "no mode", b->mode ? b->mode : "", b->mode ? "'" : "");
}

int store_badge_create_conn(struct conn *c, const struct store_badge_new *b, int64_t now,
                            int64_t *id, char *slug_out, struct err *err)
{
    sqlite3_stmt *st;
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
    store_bind_str(st, 1, str_from_cstr(slug_out));
    sqlite3_bind_int64(st, 2, b->consumer_id);
    if (context_id)
        sqlite3_bind_int64(st, 3, context_id);
    bind_badge_fields(st, b, now);
    store_bind_str(st, 20, str_from_cstr(b->default_backend));
    if (store_step_id(c, st, id, "creating a BadgeClass", err) < 0)
        return -1;

    st = store_stmt(c, S_RULE_INSERT, err);
    if (!st)
        return -1;
    bind_rule(st, *id, context_id, group_id, b);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return completion_taken(b, err);
    if (rc != SQLITE_DONE)
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

static void read_badge(sqlite3_stmt *st, struct arena *a, struct store_badge *b)
{
    memset(b, 0, sizeof(*b));
    b->id = sqlite3_column_int64(st, 0);
    b->consumer_id = sqlite3_column_int64(st, 1);
    b->context_id = sqlite3_column_int64(st, 2);
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
    if (sqlite3_column_type(st, 18) == SQLITE_BLOB) {
        b->image_len = (size_t)sqlite3_column_bytes(st, 18);
        b->image =
            (const unsigned char *)arena_memdupz(a, sqlite3_column_blob(st, 18), b->image_len);
    }
    b->expires_days = sqlite3_column_int64(st, 19);
    {
        int k = store_rule_parse_kind((const char *)sqlite3_column_text(st, 20));

        b->rule.kind = k < 0 ? RULE_MANUAL : (enum store_rule_kind)k;
    }
    b->rule.threshold = sqlite3_column_double(st, 21);
    b->rule.resource_link = store_col_arena(st, 22, a);
    b->rule.group = store_col_arena(st, 23, a);
    b->rule.group_id = sqlite3_column_int64(st, 24);
    b->rule.count = sqlite3_column_int64(st, 25);
    b->created_at = sqlite3_column_int64(st, 26);
    b->updated_at = sqlite3_column_int64(st, 27);
    b->issued = sqlite3_column_int64(st, 28);
    b->passback = sqlite3_column_type(st, 29) != SQLITE_NULL;
    b->passback_score = b->passback ? sqlite3_column_double(st, 29) : 0.0;
    b->revoke_on_withdrawn = sqlite3_column_int(st, 30) != 0;
    b->archived_at = sqlite3_column_int64(st, 31);
    b->sync_due_at = sqlite3_column_int64(st, 32);
    b->sync_attempts = sqlite3_column_int64(st, 33);
    b->sync_error = store_col_arena(st, 34, a);
}

static int badge_get(struct store *s, enum stmt_id id, const char *slug, int64_t bid,
                     struct arena *a, struct store_badge *out, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    sqlite3_stmt *st;
    int rc, ret = -1;

    if (!c)
        return -1;
    st = store_stmt(c, id, err);
    if (!st)
        goto out;
    if (slug)
        store_bind_str(st, 1, str_from_cstr(slug));
    else
        sqlite3_bind_int64(st, 1, bid);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_badge(st, a, out);
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        err_set(err, ERR_NOTFOUND, "there is no BadgeClass '%s'", slug ? slug : "with this id");
    } else {
        store_db_err(c, rc, "reading a BadgeClass", err);
    }
    sqlite3_reset(st);
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

int store_collect_badges(struct conn *c, sqlite3_stmt *st, struct arena *a,
                         struct store_badge **out, size_t *count, struct err *err)
{
    size_t n = 0, cap = 16;
    struct store_badge *v = arena_alloc(a, cap * sizeof(*v));
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            struct store_badge *nv = arena_alloc(a, 2 * cap * sizeof(*nv));

            memcpy(nv, v, n * sizeof(*nv));
            v = nv;
            cap *= 2;
        }
        read_badge(st, a, &v[n++]);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_db_err(c, rc, "listing BadgeClasses", err);
    *out = v;
    *count = n;
    return 0;
}

int store_badge_list(struct store *s, struct arena *a, struct store_badge **out, size_t *count,
                     struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    sqlite3_stmt *st;
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
    sqlite3_stmt *st;
    int ret = -1;

    *out = NULL;
    *count = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BADGE_LIST_COURSE, err);
    if (st) {
        sqlite3_bind_int64(st, 1, context_id);
        ret = store_collect_badges(c, st, a, out, count, err);
    }
    store_reader_put(s, c);
    return ret;
}

int store_badge_set_backend_id(struct store *s, int64_t id, const char *backend_id, struct err *err)
{
    sqlite3_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SET_BACKEND_ID, err);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        store_bind_str(st, 2, str_from_cstr(backend_id));
        sqlite3_bind_int64(st, 3, util_now());
        ret = store_step_done(s->admin, st, "storing a backend id", err);
    }
    return store_admin_end(s, ret, err);
}

int store_badge_syncs_due(struct store *s, const struct store_claim_scope *scope, int64_t now,
                          size_t max, struct store_badge_sync *out, size_t *n, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    sqlite3_stmt *st;
    int rc, ret = -1;

    *n = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BADGE_SYNC_DUE, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (int64_t)max);
    store_bind_scope(st, 3, scope);
    while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        out[*n].id = sqlite3_column_int64(st, 0);
        out[*n].gen = sqlite3_column_int64(st, 1);
        out[*n].attempts = sqlite3_column_int64(st, 2);
        (*n)++;
    }
    if (*n < max && rc != SQLITE_DONE) {
        store_db_err(c, rc, "finding BadgeClass edits to send", err);
        sqlite3_reset(st);
        goto out;
    }
    sqlite3_reset(st);
    ret = 0;
out:
    store_reader_put(s, c);
    return ret;
}

int store_badge_sync_done(struct store *s, int64_t id, int64_t gen, int64_t next_at,
                          const char *error, struct err *err)
{
    sqlite3_stmt *st;
    char msg[LIMIT_AWARD_ERROR_LEN + 1];
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SYNC_DONE, err);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, gen);
        if (error && next_at > 0)
            sqlite3_bind_int64(st, 3, next_at);
        else
            sqlite3_bind_null(st, 3);
        if (error) {
            snprintf(msg, sizeof(msg), "%s", error);
            store_bind_str(st, 4, str_from_cstr(msg));
        } else {
            sqlite3_bind_null(st, 4);
        }
        ret = store_step_done(s->admin, st, "recording a BadgeClass update", err);
    }
    return store_admin_end(s, ret, err);
}

int store_badge_set_outcomes(struct store *s, const char *slug, int passback, double score,
                             int revoke_on_withdrawn, struct err *err)
{
    sqlite3_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SET_OUTCOMES, err);
    if (st) {
        store_bind_str(st, 1, str_from_cstr(slug));
        sqlite3_bind_int(st, 2, passback < 0 ? -1 : passback ? 1 : 0);
        sqlite3_bind_double(st, 3, score);
        sqlite3_bind_int(st, 4, revoke_on_withdrawn < 0 ? -1 : revoke_on_withdrawn ? 1 : 0);
        sqlite3_bind_int64(st, 5, util_now());
        ret = store_step_done(s->admin, st, "updating a BadgeClass", err);
        if (ret == 0 && sqlite3_changes(s->admin->db) == 0)
            ret = err_set(err, ERR_NOTFOUND, "there is no BadgeClass '%s'", slug);
    }
    return store_admin_end(s, ret, err);
}

int store_badge_update(struct store *s, int64_t id, int64_t context_id,
                       const struct store_badge_new *b, struct err *err)
{
    struct conn *c = s->admin;
    int64_t group_id = 0, now = util_now();
    sqlite3_stmt *st;
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
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, b->consumer_id);
    sqlite3_bind_int64(st, 3, context_id);
    bind_badge_fields(st, b, now);
    sqlite3_bind_int(st, 20, b->image != NULL);
    if (store_step_done(c, st, "updating a BadgeClass", err) < 0)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        err_set(err, ERR_NOTFOUND, "this course has no such BadgeClass");
        goto out;
    }
    st = store_stmt(c, S_RULE_UPDATE, err);
    if (!st)
        goto out;
    bind_rule(st, id, context_id, group_id, b);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        completion_taken(b, err);
    else if (rc != SQLITE_DONE)
        store_db_err(c, rc, "updating a rule", err);
    else
        ret = 0;
out:
    return store_admin_end(s, ret, err);
}

int store_badge_award_count(struct store *s, int64_t id, int64_t *n, struct err *err)
{
    struct conn *c = store_reader_get(s, err);
    sqlite3_stmt *st;
    int ret = -1;

    *n = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BADGE_AWARDS_ANY, err);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        ret = store_step_id(c, st, n, "counting a BadgeClass's awards", err);
    }
    store_reader_put(s, c);
    return ret;
}

int store_badge_delete(struct store *s, int64_t id, int64_t context_id, struct err *err)
{
    struct conn *c = s->admin;
    sqlite3_stmt *st;
    int64_t awarded = 0;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_BADGE_DELETE, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, context_id);
    if (store_step_done(c, st, "deleting a BadgeClass", err) < 0)
        goto out;
    if (sqlite3_changes(c->db) == 1) {
        ret = 0;
        goto out;
    }
    /* nothing deleted: not this course's, or awarded already */
    st = store_stmt(c, S_BADGE_AWARDS_ANY, err);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, id);
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
    sqlite3_stmt *st;
    int ret = -1;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(c, S_BADGE_SET_ARCHIVED, err);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, context_id);
        if (archived)
            sqlite3_bind_int64(st, 3, now);
        else
            sqlite3_bind_null(st, 3);
        sqlite3_bind_int64(st, 4, now);
        ret = store_step_done(c, st, "archiving a BadgeClass", err);
        if (ret == 0 && sqlite3_changes(c->db) == 0)
            ret = err_set(err, ERR_NOTFOUND, "this course has no such BadgeClass");
    }
    return store_admin_end(s, ret, err);
}

int store_badge_set_backend(struct store *s, const char *slug, const char *backend, struct err *err)
{
    sqlite3_stmt *st;
    int ret = -1;
    bool taken = false;

    if (store_admin_begin(s, err) < 0)
        return -1;
    st = store_stmt(s->admin, S_BADGE_SET_BACKEND, err);
    if (st) {
        store_bind_str(st, 1, str_from_cstr(slug));
        store_bind_str(st, 2, str_from_cstr(backend));
        sqlite3_bind_int64(st, 3, util_now());
        ret = store_step_done(s->admin, st, "changing a BadgeClass's backend", err);
    }
    /* nothing changed: no such BadgeClass, or it has awards */
    if (ret == 0 && sqlite3_changes(s->admin->db) == 0) {
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
    sqlite3_stmt *st;
    int rc, ret = -1;

    *out = NULL;
    *count = 0;
    if (!c)
        return -1;
    st = store_stmt(c, S_BACKEND_USAGE, err);
    if (!st)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            struct store_backend_use *nv;

            cap = cap ? cap * 2 : 8;
            nv = arena_alloc(a, st_mult(cap, sizeof(*nv)));
            if (n)
                memcpy(nv, v, n * sizeof(*nv));
            v = nv;
        }
        v[n].name = store_col_arena(st, 0, a);
        v[n].consumers = sqlite3_column_int64(st, 1);
        v[n].badges = sqlite3_column_int64(st, 2);
        v[n].awards = sqlite3_column_int64(st, 3);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
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
