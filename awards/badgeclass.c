/*
 * awards/badgeclass.c - what the CLI and the instructor's page share when a
 * BadgeClass is set up: checking its fields, its tags and alignments as
 * the JSON the store keeps, and who its rule awards from the facts stored.
 *
 * A rule saved on a course awards at once the learners who already meet it
 * (their grades, completions and enrollments are stored whether badges were
 * on or not), so the dry run an instructor sees before saving is exactly
 * what saving does.
 */
#include "base/base.h"
#include "awards/awards_int.h"
#include "lti/lti.h"

#include <jansson.h>

bool awards_http_url(const char *u)
{
    return u && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0);
}

int awards_text_ok(const char *v, size_t max, const char *what, struct err *err)
{
    if (!v)
        return 0;
    if (strlen(v) > max)
        return err_set(err, ERR_INVALID, "%s is longer than %zu bytes", what, max);
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r')
            return err_set(err, ERR_INVALID, "%s contains control characters", what);
    }
    if (!str_utf8_valid(str_from_cstr(v)))
        return err_set(err, ERR_INVALID, "%s is not valid UTF-8", what);
    return 0;
}

int awards_tags_json(const char *const *tags, size_t n, char **out, struct err *err)
{
    json_t *arr;

    *out = NULL;
    if (n > LIMIT_BADGE_TAGS)
        return err_set(err, ERR_INVALID, "a badge has at most %d tags", LIMIT_BADGE_TAGS);
    arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!tags[i][0] || strlen(tags[i]) > 255 || strchr(tags[i], '\n') ||
            awards_text_ok(tags[i], 255, "a tag", err) < 0) {
            json_decref(arr);
            err_clear(err);
            return err_set(err, ERR_INVALID, "a tag is 1 to 255 printable characters");
        }
        json_array_append_new(arr, json_string(tags[i]));
    }
    *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return *out ? 0 : err_set(err, ERR_INTERNAL, "out of memory");
}

/* The AlignmentObject keys, in the order a row holds them and the JSON writes them. */
static const char *const alignment_keys[AWARDS_ALIGNMENT_FIELDS] = {
    "targetName", "targetUrl", "targetDescription", "targetFramework", "targetCode"
};

/*
 * One row as an AlignmentObject appended to `arr`: its fields trimmed, the
 * empty ones left out; a name and an http(s) URL needed.
 */
static int alignment_object(const struct awards_alignment *row, json_t *arr, struct err *err)
{
    json_t *o = json_object();
    size_t total = 0;
    bool bad = false;

    for (size_t k = 0; k < AWARDS_ALIGNMENT_FIELDS && !bad; k++) {
        const char *v = row->field[k];
        struct str part = str_trim(str_from_cstr(v ? v : ""));

        total += part.len;
        bad = awards_text_ok(v, LIMIT_BADGE_TEXT_LEN, "an alignment", err) < 0;
        if (part.len)
            json_object_set_new(o, alignment_keys[k], json_stringn(part.ptr, part.len));
    }
    if (bad || total > LIMIT_BADGE_TEXT_LEN || !json_object_get(o, "targetName") ||
        !json_object_get(o, "targetUrl") ||
        !awards_http_url(json_string_value(json_object_get(o, "targetUrl")))) {
        json_decref(o);
        err_clear(err);
        return err_set(err, ERR_INVALID, "an alignment needs a name and an http(s) URL");
    }
    json_array_append_new(arr, o);
    return 0;
}

int awards_alignments_rows_json(const struct awards_alignment *rows, size_t n, char **out,
                                size_t *bad, struct err *err)
{
    json_t *arr;

    *out = NULL;
    if (bad)
        *bad = 0;
    if (n > LIMIT_BADGE_ALIGNMENTS)
        return err_set(err, ERR_INVALID, "a badge has at most %d alignments",
                       LIMIT_BADGE_ALIGNMENTS);
    arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (alignment_object(&rows[i], arr, err) < 0) {
            if (bad)
                *bad = i;
            json_decref(arr);
            return -1;
        }
    }
    *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return *out ? 0 : err_set(err, ERR_INTERNAL, "out of memory");
}

/* 'NAME|URL[|DESCRIPTION|FRAMEWORK|CODE]' as a row (parts in `a`); -1 for a sixth part. */
static int alignment_split(const char *v, struct awards_alignment *row, struct arena *a)
{
    const char *p = v;

    memset(row, 0, sizeof(*row));
    for (size_t i = 0; i < AWARDS_ALIGNMENT_FIELDS && p; i++) {
        const char *bar = strchr(p, '|');

        row->field[i] = arena_strz(a, (struct str){ p, bar ? (size_t)(bar - p) : strlen(p) });
        p = bar ? bar + 1 : NULL;
    }
    return p ? -1 : 0;
}

int awards_alignments_json(const char *const *specs, size_t n, char **out, struct err *err)
{
    struct arena a;
    struct awards_alignment *rows;
    int ret = -1;

    *out = NULL;
    if (n > LIMIT_BADGE_ALIGNMENTS)
        return err_set(err, ERR_INVALID, "a badge has at most %d alignments",
                       LIMIT_BADGE_ALIGNMENTS);
    arena_init(&a);
    rows = arena_alloc(&a, st_mult(n + 1, sizeof(*rows)));
    for (size_t i = 0; i < n; i++) {
        if (alignment_split(specs[i], &rows[i], &a) < 0 ||
            awards_text_ok(specs[i], LIMIT_BADGE_TEXT_LEN, "an alignment", err) < 0)
            goto bad;
    }
    if (awards_alignments_rows_json(rows, n, out, NULL, err) == 0) {
        ret = 0;
        goto done;
    }
bad:
    err_clear(err);
    ret = err_set(err, ERR_INVALID,
                  "an alignment is 'NAME|URL[|DESCRIPTION|FRAMEWORK|CODE]' with an http(s) URL");
done:
    arena_release(&a);
    return ret;
}

size_t awards_alignments_rows(const char *json, struct awards_alignment *rows, size_t max,
                              struct arena *a)
{
    json_t *arr = json ? json_loads(json, 0, NULL) : NULL;
    size_t i, n = 0;
    json_t *o;

    json_array_foreach(arr, i, o) {
        if (n == max)
            break;
        memset(&rows[n], 0, sizeof(rows[n]));
        for (size_t k = 0; k < AWARDS_ALIGNMENT_FIELDS; k++) {
            const char *s = json_string_value(json_object_get(o, alignment_keys[k]));

            rows[n].field[k] = s ? arena_strz(a, str_from_cstr(s)) : NULL;
        }
        n++;
    }
    json_decref(arr);
    return n;
}

void awards_tags_text(const char *json, struct buf *out)
{
    json_t *arr = json ? json_loads(json, 0, NULL) : NULL;
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v) {
        if (!json_is_string(v))
            continue;
        if (i)
            buf_addstr(out, ", ");
        buf_addstr(out, json_string_value(v));
    }
    json_decref(arr);
}

void awards_alignments_text(const char *json, struct buf *out)
{
    const char *const *keys = alignment_keys;
    json_t *arr = json ? json_loads(json, 0, NULL) : NULL;
    size_t i;
    json_t *o;

    json_array_foreach(arr, i, o) {
        size_t last = 1;

        /* the trailing empty parts are left off */
        for (size_t k = 0; k < 5; k++) {
            if (json_string_value(json_object_get(o, keys[k])))
                last = k;
        }
        for (size_t k = 0; k <= last; k++) {
            const char *s = json_string_value(json_object_get(o, keys[k]));

            if (k)
                buf_addstr(out, " | ");
            buf_addstr(out, s ? s : "");
        }
        buf_addstr(out, "\n");
    }
    json_decref(arr);
}

/* ---- who a rule awards ------------------------------------------------------ */

static void probe_init(struct store_rule_probe *p, int64_t consumer_id, int64_t context_id,
                       int64_t badge_id, const char *mode, const struct store_rule *rule,
                       size_t limit)
{
    memset(p, 0, sizeof(*p));
    p->consumer_id = consumer_id;
    p->context_id = context_id;
    p->badge_id = badge_id;
    p->mode = mode;
    p->rule = *rule;
    p->limit = limit;
    /* as the enrollment hook judges: learners, never staff */
    p->learner_flags = LTI_ROLE_LEARNER;
    p->staff_flags = LTI_ROLES_STAFF;
}

int awards_rule_candidates(struct awards *a, int64_t consumer_id, int64_t context_id,
                           int64_t badge_id, const char *mode, const struct store_rule *rule,
                           size_t limit, struct arena *arena, struct store_candidate **out,
                           size_t *n, struct err *err)
{
    struct store_rule_probe p;

    probe_init(&p, consumer_id, context_id, badge_id, mode, rule, limit);
    return store_rule_candidates(a->store, &p, arena, out, n, err);
}

struct backfill {
    const struct store_badge *b;
    size_t added;
};

static int backfill_tx(struct store_tx *tx, void *cls, struct err *err)
{
    struct backfill *bf = cls;
    const struct store_badge *b = bf->b;
    struct store_context_info ctx;
    struct store_rule_probe p;
    struct store_candidate *c;
    const char *course = "the course";
    size_t n;
    int64_t now = util_now();

    bf->added = 0; /* store_tx_run may run this again, on a transaction begun again */
    if (b->context_id) {
        if (store_tx_context(tx, b->context_id, &ctx, err) < 0)
            return -1;
        /* a course's own rules award nothing while its badges are off */
        if (!ctx.badges_enabled)
            return 0;
        course = ctx.title && *ctx.title ? ctx.title : ctx.lti_context_id;
    }
    probe_init(&p, b->consumer_id, b->context_id, b->id, b->mode, &b->rule, 0);
    if (store_tx_rule_candidates(tx, &p, &c, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct store_award_new an = {
            b->id,
            c[i].user_id,
            b->context_id,
            b->rule.kind == RULE_SCORE || b->rule.kind == RULE_COMPLETION ? c[i].link_id : 0,
            store_rule_name(b->rule.kind),
            awards_narrative(store_tx_arena(tx), b->rule.kind, course, b->mode, c[i].link_title,
                             c[i].score, c[i].completed),
            now
        };
        bool added;

        if (store_tx_award_add(tx, &an, NULL, &added, err) < 0)
            return -1;
        bf->added += added;
    }
    return 0;
}

int awards_backfill(struct awards *a, int64_t badge_id, size_t *added, struct err *err)
{
    struct arena ar;
    struct store_badge b;
    struct backfill bf = { &b, 0 };
    int ret;

    *added = 0;
    arena_init(&ar);
    ret = store_badge_get_id(a->store, badge_id, &ar, &b, err);
    if (ret == 0 && !b.archived_at && b.rule.kind != RULE_MANUAL) {
        ret = store_tx_run(a->store, backfill_tx, &bf, err);
        if (ret == 0 && bf.added) {
            *added = bf.added;
            awards_wake(a);
        }
    }
    arena_release(&ar);
    return ret;
}

int awards_backfill_course(struct awards *a, int64_t context_id, size_t *added, struct err *err)
{
    struct arena ar;
    struct store_badge *v;
    size_t n;
    int ret;

    *added = 0;
    arena_init(&ar);
    ret = store_badge_list_course(a->store, context_id, &ar, &v, &n, err);
    for (size_t i = 0; ret == 0 && i < n; i++) {
        size_t k;

        ret = awards_backfill(a, v[i].id, &k, err);
        *added += k;
    }
    arena_release(&ar);
    return ret;
}
