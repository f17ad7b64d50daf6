/*
 * awards/rules.c - what earns a badge (../shared/DESIGN.md, "Award rules",
 * after the Open edX badges proposal).
 *
 * Each event runs in one store transaction: the fact is recorded (grade,
 * completion), the rules that apply are judged, and the awards they earn
 * are inserted with it. An award is unique per (BadgeClass, learner), so
 * judging the same event twice, or two events that earn the same badge,
 * adds nothing.
 *
 * Rules tied to a course apply only while the course has badges enabled
 * (off until an instructor or operator turns them on); consumer-wide rules
 * (enrollment in any course, course groups, completion counts) are the
 * operator's own configuration and always apply. Facts are recorded either
 * way, so enabling badges later finds the grades and completions there.
 */
#include "base/base.h"
#include "awards/awards_int.h"
#include "base/log.h"
#include "lti/lti.h"

#include <pthread.h>

/* A plain, recognisable default: a ribbon medal, drawn as a vector (no script, no links). */
const char awards_default_image_svg[] =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"256\" height=\"256\" viewBox=\"0 0 256 256\">"
    "<title>Course completed</title>"
    "<path d=\"M88 8h32l24 72h-32z\" fill=\"#1d4ed8\"/>"
    "<path d=\"M168 8h-32l-24 72h32z\" fill=\"#2563eb\"/>"
    "<circle cx=\"128\" cy=\"160\" r=\"84\" fill=\"#f59e0b\"/>"
    "<circle cx=\"128\" cy=\"160\" r=\"64\" fill=\"#fbbf24\"/>"
    "<path d=\"M98 162l20 20 42-44\" fill=\"none\" stroke=\"#7c2d12\" stroke-width=\"14\" "
    "stroke-linecap=\"round\" stroke-linejoin=\"round\"/>"
    "</svg>";

const struct store_svg_rule awards_svg_rule = { image_svg_sanitize, awards_default_image_svg };

/*
 * The same drawing as shapes, for its PNG (platforms that take no SVG, such
 * as Open Badge Factory's API v1): the two ribbons, the medal's rim and
 * face, the tick. Keep the two together: a change to one is a change to
 * both (tests/unit/awards/default_image.c checks the PNG's colours where
 * the SVG puts them).
 */
static const float ribbon_left[] = { 88, 8, 120, 8, 144, 80, 112, 80 };
static const float ribbon_right[] = { 168, 8, 136, 8, 112, 80, 144, 80 };
static const float medal_centre[] = { 128, 160 };
static const float tick[] = { 98, 162, 118, 182, 160, 138 };
static const struct image_shape default_image_shapes[] = {
    { IMAGE_POLYGON, 0x1d4ed8, ribbon_left, 4, 0 },
    { IMAGE_POLYGON, 0x2563eb, ribbon_right, 4, 0 },
    { IMAGE_CIRCLE, 0xf59e0b, medal_centre, 1, 84 },
    { IMAGE_CIRCLE, 0xfbbf24, medal_centre, 1, 64 },
    { IMAGE_STROKE, 0x7c2d12, tick, 3, 14 },
};

static pthread_once_t default_png_once = PTHREAD_ONCE_INIT;
static struct buf default_png = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);

static void draw_default_png(void)
{
    struct err err = ERR_INIT;

    if (image_draw_png(
            default_image_shapes, sizeof(default_image_shapes) / sizeof(default_image_shapes[0]),
            AWARDS_DEFAULT_IMAGE_SIZE, AWARDS_DEFAULT_IMAGE_SIZE, &default_png, &err) < 0)
        LOG(LOG_LEVEL_WARN, "the default badge image could not be drawn as a PNG",
            LOG_STR("error", err.msg));
}

bool awards_default_image_png(const unsigned char **png, size_t *len)
{
    /* drawn once, when first asked for, and kept for the process's life */
    pthread_once(&default_png_once, draw_default_png);
    *png = default_png.len ? (const unsigned char *)default_png.ptr : NULL;
    *len = default_png.len;
    return default_png.len > 0;
}

bool awards_is_default_image(const char *type, const unsigned char *img, size_t len)
{
    return type && strcmp(type, "image/svg+xml") == 0 && img &&
           len == sizeof(awards_default_image_svg) - 1 &&
           memcmp(img, awards_default_image_svg, len) == 0;
}

static store_enrollment_hook enrollment_hook;

static char *dup_or_null(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

int awards_new(struct awards **out, struct store *store, const struct awards_config *cfg,
               struct err *err)
{
    struct awards *a = xcalloc(1, sizeof(*a));

    *out = NULL;
    (void)err;
    a->store = store;
    a->public_url = xstrdup(cfg->public_url ? cfg->public_url : "");
    a->issuer_name = dup_or_null(cfg->issuer_name);
    a->issuer_url = dup_or_null(cfg->issuer_url);
    a->issuer_email = dup_or_null(cfg->issuer_email);
    a->issuer_description = dup_or_null(cfg->issuer_description);
    a->issuer_image_url = dup_or_null(cfg->issuer_image_url);
    a->default_backend = xstrdup(cfg->default_backend ? cfg->default_backend : BACKEND_HOSTED);
    a->lease = cfg->lease > 0 ? cfg->lease : LIMIT_AWARDS_LEASE;
    a->issuer.public_url = a->public_url;
    a->issuer.name = a->issuer_name ? a->issuer_name : "ltibadges";
    a->issuer.url = a->issuer_url;
    a->issuer.email = a->issuer_email;
    a->issuer.description = a->issuer_description;
    a->issuer.image_url = a->issuer_image_url;
    if (a->public_url[0])
        awards_set_public_url(a, cfg->public_url);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_mutex_init(&a->stats_mu, NULL);
    pthread_mutex_init(&a->oc.mu, NULL);
    pthread_cond_init(&a->oc.cv, NULL);
    {
        struct awards_outcomes_config oc;

        awards_outcomes_config_init(&oc);
        awards_outcomes_configure(a, &oc);
    }
    awards_add_backend(a, "hosted", backend_hosted_new(&a->issuer));
    /* set before the server starts and cleared after it stopped: the writer reads it unlocked */
    store_set_enrollment_hook(store, enrollment_hook, a);
    *out = a;
    return 0;
}

void awards_set_public_url(struct awards *a, const char *public_url)
{
    free(a->public_url);
    a->public_url = xstrdup(public_url);
    a->issuer.public_url = a->public_url;
    if (!a->issuer_email) {
        /*
         * An Issuer profile names a contact address; until the operator sets
         * [issuer] email, a mailbox at the tool's own host stands in.
         */
        const char *host = strstr(public_url, "://");
        size_t n;

        host = host ? host + 3 : public_url;
        n = strcspn(host, ":/[]");
        free(a->default_email);
        a->default_email = xmalloc(n + sizeof("badges@"));
        snprintf(a->default_email, n + sizeof("badges@"), "badges@%.*s", (int)n, host);
        a->issuer.email = a->default_email;
    }
}

void awards_free(struct awards *a)
{
    if (!a)
        return;
    awards_worker_stop(a);
    awards_hooks_free(a);
    store_set_enrollment_hook(a->store, NULL, NULL);
    for (size_t i = 0; i < a->nbackends; i++) {
        backend_destroy(a->backends[i].b);
        free(a->backends[i].name);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->stats_mu);
    pthread_mutex_destroy(&a->oc.mu);
    pthread_cond_destroy(&a->oc.cv);
    free(a->oc.ca_file);
    free(a->public_url);
    free(a->issuer_name);
    free(a->issuer_url);
    free(a->issuer_email);
    free(a->issuer_description);
    free(a->issuer_image_url);
    free(a->default_backend);
    free(a->default_email);
    free(a);
}

void awards_add_backend(struct awards *a, const char *name, struct backend *b)
{
    for (size_t i = 0; i < a->nbackends; i++) {
        if (strcmp(a->backends[i].name, name) == 0) {
            backend_destroy(a->backends[i].b);
            a->backends[i].b = b;
            return;
        }
    }
    if (a->nbackends == AWARDS_MAX_BACKENDS) {
        backend_destroy(b);
        return;
    }
    a->backends[a->nbackends].name = xstrdup(name);
    a->backends[a->nbackends].b = b;
    a->backends[a->nbackends].a = a;
    a->nbackends++;
}

struct backend *awards_backend(struct awards *a, const char *name)
{
    for (size_t i = 0; name && i < a->nbackends; i++) {
        if (strcmp(a->backends[i].name, name) == 0)
            return a->backends[i].b;
    }
    return NULL;
}

bool awards_has_backend(struct awards *a, const char *name)
{
    return awards_backend(a, name) != NULL;
}

int64_t awards_backend_expires(struct awards *a, const char *name)
{
    struct backend *b = awards_backend(a, name);

    return b ? b->credentials_expire_at : 0;
}

const char *awards_issuer_name(struct awards *a)
{
    return a->issuer.name;
}

const char *awards_backend_issuer_name(struct awards *a, const char *name)
{
    struct backend *b;

    if (!name || strcmp(name, BACKEND_HOSTED) == 0)
        return a->issuer.name;
    b = awards_backend(a, name);
    return b && b->issuer_name[0] ? b->issuer_name : NULL;
}

const char *awards_default_backend(struct awards *a)
{
    return a->default_backend;
}

/* ---- judging -------------------------------------------------------------- */

const char *awards_narrative(struct arena *a, enum store_rule_kind kind, const char *course,
                             const char *mode, const char *activity, double score,
                             int64_t completed)
{
    switch (kind) {
    case RULE_ENROLLMENT:
        return arena_printf(a, "Enrolled in %s.", course);
    case RULE_SCORE:
        return arena_printf(a, "Scored %.0f%% on %s in %s.", score * 100.0,
                            activity ? activity : "an activity", course);
    case RULE_COMPLETION:
        return arena_printf(a, "Completed %s%s%s%s.", course, mode ? " (" : "", mode ? mode : "",
                            mode ? ")" : "");
    case RULE_GROUP:
        return "Completed every course of the group.";
    case RULE_COUNT:
        return arena_printf(a, "Completed %" PRId64 " courses.", completed);
    case RULE_MANUAL:
        break;
    }
    return NULL;
}

static const char *title_of(const struct store_context_info *c)
{
    return c->title && *c->title ? c->title : c->lti_context_id;
}

static int add(struct store_tx *tx, int64_t badge_id, int64_t user_id, int64_t context_id,
               int64_t link_id, const char *reason, const char *narrative, int64_t now,
               struct err *err)
{
    struct store_award_new n = { badge_id, user_id, context_id, link_id, reason, narrative, now };
    bool added;

    return store_tx_award_add(tx, &n, NULL, &added, err);
}

static int enrollment_hook(struct store_tx *tx, void *cls, int64_t consumer_id, int64_t user_id,
                           int64_t context_id, unsigned role_flags, int64_t now, struct err *err)
{
    struct store_context_info ctx;
    struct store_rule_row *rules;
    size_t n;
    const char *narrative;

    (void)cls;
    /* enrollment badges are for learners: an instructor opening the tool enrolls in nothing */
    if (!(role_flags & LTI_ROLE_LEARNER) || (role_flags & LTI_ROLES_STAFF))
        return 0;
    /* on the launch path: with no enrollment rule (the common case) one indexed read is all */
    if (store_tx_rules(tx, consumer_id, RULE_ENROLLMENT, context_id, &rules, &n, err) < 0)
        return -1;
    if (n == 0)
        return 0;
    if (store_tx_context(tx, context_id, &ctx, err) < 0)
        return -1;
    narrative =
        awards_narrative(store_tx_arena(tx), RULE_ENROLLMENT, title_of(&ctx), NULL, NULL, 0, 0);
    for (size_t i = 0; i < n; i++) {
        if (rules[i].context_id && !ctx.badges_enabled)
            continue;
        if (add(tx, rules[i].badge_id, user_id, ctx.id, 0, "enrollment", narrative, now, err) < 0)
            return -1;
    }
    return 0;
}

/*
 * Use case 4: a course with badges enabled and no completion BadgeClass gets
 * one on its first completion, for the learner's mode, with the default image.
 */
static int create_completion_badge(struct store_tx *tx, const struct store_context_info *ctx,
                                   const char *default_backend, const char *mode, int64_t *badge_id,
                                   struct err *err)
{
    struct store_badge_new b;
    char slug_base[LIMIT_SLUG_LEN + 1], slug[LIMIT_SLUG_LEN + 1];
    char name[LIMIT_BADGE_NAME_LEN + 1], description[LIMIT_BADGE_TEXT_LEN + 1];
    char criteria[LIMIT_BADGE_TEXT_LEN + 1];
    const char *title = title_of(ctx);

    memset(&b, 0, sizeof(b));
    if (str_slug(slug_base, sizeof(slug_base), 80, title, mode) == 0)
        snprintf(slug_base, sizeof(slug_base), "course");
    snprintf(name, sizeof(name), "%s", title);
    if (mode)
        snprintf(description, sizeof(description), "Completed the course \"%s\" (%s)", title, mode);
    else
        snprintf(description, sizeof(description), "Completed the course \"%s\"", title);
    snprintf(criteria, sizeof(criteria),
             "Complete the course \"%s\" with a score of at least %.0f%%.", title,
             ctx->pass_mark * 100.0);
    b.consumer_id = ctx->consumer_id;
    b.lti_context_id = ctx->lti_context_id;
    b.mode = mode;
    b.slug_base = slug_base;
    b.name = name;
    b.description = description;
    b.image_type = "image/svg+xml";
    b.image = (const unsigned char *)awards_default_image_svg;
    b.image_len = strlen(awards_default_image_svg);
    b.criteria_narrative = criteria;
    /* the consumer's backend, else the default: as every way of making a BadgeClass */
    b.backend = NULL;
    b.default_backend = default_backend;
    b.rule.kind = RULE_COMPLETION;
    return store_tx_badge_create(tx, &b, badge_id, slug, err);
}

/*
 * Rule 1: the BadgeClass for exactly (course, mode), else the one for
 * (course, no mode), never another mode's; rule 4 when neither exists.
 */
static int completion_award(struct store_tx *tx, const struct store_context_info *ctx,
                            const char *default_backend, int64_t user_id, int64_t link_id,
                            const char *mode, int64_t now, struct err *err)
{
    int64_t badge_id = 0;

    if (!ctx->badges_enabled)
        return 0;
    if (store_tx_completion_badge(tx, ctx->id, mode, &badge_id, err) < 0)
        return -1;
    if (!badge_id && mode && store_tx_completion_badge(tx, ctx->id, NULL, &badge_id, err) < 0)
        return -1;
    if (badge_id < 0)
        return 0; /* archived: the instructor retired it, and no new one is made in its place */
    if (!badge_id && create_completion_badge(tx, ctx, default_backend, mode, &badge_id, err) < 0)
        return -1;
    return add(
        tx, badge_id, user_id, ctx->id, link_id, "completion",
        awards_narrative(store_tx_arena(tx), RULE_COMPLETION, title_of(ctx), mode, NULL, 0, 0), now,
        err);
}

/*
 * Course groups and completion counts: judged after every completion, for
 * the consumer's course-less rules and those of any course with badges on
 * where the user is a learner; an award of a course's rule is recorded in
 * that course.
 */
static int progress_awards(struct store_tx *tx, const struct store_context_info *ctx,
                           int64_t user_id, int64_t now, struct err *err)
{
    struct store_rule_row *rules;
    size_t n;
    int64_t done = 0;
    struct arena *ar = store_tx_arena(tx);

    if (store_tx_progress_rules(tx, ctx->consumer_id, RULE_GROUP, user_id, LTI_ROLE_LEARNER,
                                LTI_ROLES_STAFF, &rules, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool all;

        if (store_tx_group_completed(tx, rules[i].rule.group_id, user_id, &all, err) < 0)
            return -1;
        if (all &&
            add(tx, rules[i].badge_id, user_id, rules[i].context_id ? rules[i].context_id : ctx->id,
                0, "group", awards_narrative(ar, RULE_GROUP, NULL, NULL, NULL, 0, 0), now, err) < 0)
            return -1;
    }
    if (store_tx_progress_rules(tx, ctx->consumer_id, RULE_COUNT, user_id, LTI_ROLE_LEARNER,
                                LTI_ROLES_STAFF, &rules, &n, err) < 0)
        return -1;
    if (n && store_tx_completed_count(tx, ctx->consumer_id, user_id, &done, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (done < rules[i].rule.count)
            continue;
        if (add(tx, rules[i].badge_id, user_id, rules[i].context_id ? rules[i].context_id : ctx->id,
                0, "count", awards_narrative(ar, RULE_COUNT, NULL, NULL, NULL, 0, done), now,
                err) < 0)
            return -1;
    }
    return 0;
}

struct grade_ev {
    int64_t consumer_id;
    const char *user, *context, *link, *source;
    double score;
    bool withdrawn; /* the grade was deleted */
    int64_t now;
    struct awards_outcome *out;
    const char *default_backend; /* of BadgeClasses the completion rule makes */
};

/*
 * A grade was deleted or lowered: the awards it earned whose BadgeClass says
 * so are revoked with the reason; the others keep their badge (the change is
 * recorded all the same).
 */
static int withdraw(struct store_tx *tx, const struct grade_ev *ev, int64_t user_id,
                    int64_t link_id, struct err *err)
{
    struct store_earned *e;
    size_t n;
    char reason[256];

    if (store_tx_earned_on_link(tx, user_id, link_id, &e, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        double need = strcmp(e[i].reason, "completion") == 0 ? e[i].pass_mark : e[i].threshold;

        if (!e[i].revoke_on_withdrawn)
            continue;
        if (ev->withdrawn)
            snprintf(reason, sizeof(reason), "The grade that earned this badge was withdrawn.");
        else if (ev->score + 1e-9 < need)
            snprintf(reason, sizeof(reason),
                     "The grade that earned this badge was changed to %.0f%%, below the %.0f%% "
                     "it needs.",
                     ev->score * 100.0, need * 100.0);
        else
            continue;
        if (store_tx_award_revoke(tx, e[i].award_id, reason, ev->now, err) < 0)
            return -1;
        if (ev->out)
            ev->out->awards_revoked++;
    }
    return 0;
}

static int delete_tx(struct store_tx *tx, void *cls, struct err *err)
{
    struct grade_ev *ev = cls;
    struct store_ids ids;
    bool existed;

    if (store_tx_ensure(tx, ev->consumer_id, ev->user, ev->context, ev->link, ev->now, &ids, err) <
            0 ||
        store_tx_grade_delete(tx, ids.user_id, ids.link_id, &existed, err) < 0)
        return -1;
    if (ev->out)
        ev->out->existed = existed;
    return existed ? withdraw(tx, ev, ids.user_id, ids.link_id, err) : 0;
}

static int grade_tx(struct store_tx *tx, void *cls, struct err *err)
{
    struct grade_ev *ev = cls;
    struct store_ids ids;
    struct store_context_info ctx;
    struct store_rule_row *rules;
    const char *link_lti = ev->link;
    const char *mode, *narrative;
    size_t n;

    if (store_tx_ensure(tx, ev->consumer_id, ev->user, ev->context, ev->link, ev->now, &ids, err) <
            0 ||
        store_tx_grade_put(tx, ids.user_id, ids.context_id, ids.link_id, ev->score, ev->source,
                           ev->now, err) < 0 ||
        withdraw(tx, ev, ids.user_id, ids.link_id, err) < 0 ||
        store_tx_context(tx, ids.context_id, &ctx, err) < 0)
        return -1;

    if (store_tx_rules(tx, ctx.consumer_id, RULE_SCORE, ctx.id, &rules, &n, err) < 0)
        return -1;
    narrative = awards_narrative(store_tx_arena(tx), RULE_SCORE, title_of(&ctx), NULL, link_lti,
                                 ev->score, 0);
    for (size_t i = 0; i < n; i++) {
        const struct store_rule *r = &rules[i].rule;

        if (rules[i].context_id && !ctx.badges_enabled)
            continue;
        if (r->resource_link && strcmp(r->resource_link, link_lti) != 0)
            continue;
        if (ev->score + 1e-9 < r->threshold)
            continue;
        if (add(tx, rules[i].badge_id, ids.user_id, ctx.id, ids.link_id, "score", narrative,
                ev->now, err) < 0)
            return -1;
    }

    /* completion: a passing grade on the completion link (any link when none is set) */
    if ((!ctx.completion_link || strcmp(ctx.completion_link, link_lti) == 0) &&
        ev->score + 1e-9 >= ctx.pass_mark) {
        bool added;

        if (store_tx_enrollment_mode(tx, ids.user_id, ctx.id, &mode, err) < 0 ||
            store_tx_completion_put(tx, ids.user_id, ctx.id, mode, ids.link_id, ev->score, ev->now,
                                    &added, err) < 0)
            return -1;
        if (ev->out)
            ev->out->completed = true;
        if (completion_award(tx, &ctx, ev->default_backend, ids.user_id, ids.link_id, mode, ev->now,
                             err) < 0 ||
            progress_awards(tx, &ctx, ids.user_id, ev->now, err) < 0)
            return -1;
    }
    if (ev->out)
        ev->out->awards_added = store_tx_awards_added(tx);
    return 0;
}

int awards_grade(struct awards *a, int64_t consumer_id, const char *lti_user_id,
                 const char *lti_context_id, const char *lti_resource_link_id, double score,
                 const char *source, struct awards_outcome *out, struct err *err)
{
    struct grade_ev ev = {
        consumer_id, lti_user_id, lti_context_id,    lti_resource_link_id, source, score, false,
        util_now(),  out,         a->default_backend
    };
    int ret;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!(score >= 0.0 && score <= 1.0))
        return err_set(err, ERR_INVALID, "a score is a number from 0.0 to 1.0");
    if (!lti_user_id || !*lti_user_id || !lti_context_id || !*lti_context_id ||
        !lti_resource_link_id || !*lti_resource_link_id)
        return err_set(err, ERR_INVALID, "a grade names a user, a course and a resource link");
    ret = store_tx_run(a->store, grade_tx, &ev, err);
    if (ret == 0 && out && (out->awards_added || out->awards_revoked))
        awards_wake(a);
    return ret;
}

int awards_grade_delete(struct awards *a, int64_t consumer_id, const char *lti_user_id,
                        const char *lti_context_id, const char *lti_resource_link_id,
                        struct awards_outcome *out, struct err *err)
{
    struct awards_outcome local;
    struct grade_ev ev = { consumer_id, lti_user_id, lti_context_id, lti_resource_link_id, NULL,
                           0.0,         true,        util_now(),     out ? out : &local,   NULL };
    int ret;

    memset(ev.out, 0, sizeof(*ev.out));
    if (!lti_user_id || !*lti_user_id || !lti_context_id || !*lti_context_id ||
        !lti_resource_link_id || !*lti_resource_link_id)
        return err_set(err, ERR_INVALID, "a grade names a user, a course and a resource link");
    ret = store_tx_run(a->store, delete_tx, &ev, err);
    if (ret == 0 && ev.out->awards_revoked)
        awards_wake(a);
    return ret;
}

struct grant_ev {
    int64_t badge_id, consumer_id, context_id;
    const char *user, *narrative;
    int64_t award_id;
    bool added;
};

static int grant_tx(struct store_tx *tx, void *cls, struct err *err)
{
    struct grant_ev *ev = cls;
    struct store_award_new n;
    int64_t user_id;

    if (store_tx_user_find(tx, ev->consumer_id, ev->user, &user_id, err) < 0)
        return -1;
    memset(&n, 0, sizeof(n));
    n.badge_id = ev->badge_id;
    n.user_id = user_id;
    n.context_id = ev->context_id;
    n.reason = "manual";
    n.narrative = ev->narrative;
    n.now = util_now();
    return store_tx_award_add(tx, &n, &ev->award_id, &ev->added, err);
}

int awards_grant(struct awards *a, const char *slug, int64_t consumer_id, const char *lti_user_id,
                 const char *narrative, int64_t *award_id, bool *added, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_badge b;
    struct grant_ev ev;
    int ret = -1;

    *added = false;
    if (store_badge_get(a->store, slug, &ar, &b, err) < 0)
        goto out;
    if (b.consumer_id != consumer_id) {
        err_set(err, ERR_NOTFOUND, "there is no BadgeClass '%s' for this consumer", slug);
        goto out;
    }
    memset(&ev, 0, sizeof(ev));
    ev.badge_id = b.id;
    ev.consumer_id = consumer_id;
    ev.context_id = b.context_id;
    ev.user = lti_user_id;
    ev.narrative = narrative;
    ret = store_tx_run(a->store, grant_tx, &ev, err);
    if (ret == 0) {
        *added = ev.added;
        if (award_id)
            *award_id = ev.award_id;
        if (ev.added)
            awards_wake(a);
    }
out:
    arena_release(&ar);
    return ret;
}

struct course_grant_ev {
    int64_t badge_id, context_id;
    struct awards_grant_to *to;
    size_t n;
};

static int course_grant_tx(struct store_tx *tx, void *cls, struct err *err)
{
    struct course_grant_ev *ev = cls;
    int64_t now = util_now();

    /* enrollment of each one first: one outsider and nobody is awarded */
    for (size_t i = 0; i < ev->n; i++) {
        bool enrolled;
        unsigned roles;

        if (store_tx_enrollment_roles(tx, ev->to[i].user_id, ev->context_id, &enrolled, &roles,
                                      err) < 0)
            return -1;
        if (!enrolled || (roles & LTI_ROLES_STAFF))
            return err_set(err, ERR_FORBIDDEN, "user %lld is not a learner of this course",
                           (long long)ev->to[i].user_id);
    }
    for (size_t i = 0; i < ev->n; i++) {
        struct store_award_new n;

        memset(&n, 0, sizeof(n));
        n.badge_id = ev->badge_id;
        n.user_id = ev->to[i].user_id;
        n.context_id = ev->context_id;
        n.reason = "manual";
        n.narrative = ev->to[i].narrative;
        n.now = now;
        if (store_tx_award_add(tx, &n, &ev->to[i].award_id, &ev->to[i].added, err) < 0)
            return -1;
    }
    return 0;
}

int awards_grant_course(struct awards *a, int64_t consumer_id, int64_t context_id, const char *slug,
                        struct awards_grant_to *to, size_t n, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_badge b;
    struct course_grant_ev ev = { 0, context_id, to, n };
    bool any = false;
    int ret = -1;

    for (size_t i = 0; i < n; i++) {
        to[i].award_id = 0;
        to[i].added = false;
    }
    if (store_badge_get(a->store, slug, &ar, &b, err) < 0)
        goto out;
    if (b.consumer_id != consumer_id || (b.context_id && b.context_id != context_id)) {
        err_set(err, ERR_FORBIDDEN, "the badge '%s' is not one of this course", slug);
        goto out;
    }
    if (b.archived_at) {
        err_set(err, ERR_FORBIDDEN, "the badge '%s' is archived: nobody new can earn it", slug);
        goto out;
    }
    ev.badge_id = b.id;
    ret = store_tx_run(a->store, course_grant_tx, &ev, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        any = any || to[i].added;
    if (any)
        awards_wake(a);
out:
    arena_release(&ar);
    return ret;
}
