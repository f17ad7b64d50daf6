/*
 * cli/badges.c - `ltibadges context|group|badge|grade|award|user|session`:
 * setting up courses and BadgeClasses, recording grades and managing awards
 * from the shell, and reading what the store holds of a user or a session.
 * The running server's worker issues what these queue.
 */
#include "base/base.h"
#include "awards/awards.h"
#include "images/images.h"
#include "cli/cli.h"
#include "store/store.h"

#include <jansson.h>

static const char context_usage[] =
    "usage: ltibadges context enable|disable --consumer KEY --context ID\n"
    "       ltibadges context pass-mark --consumer KEY --context ID --score S\n"
    "                                   [--resource-link R]\n"
    "       ltibadges context show --consumer KEY --context ID [--json]\n"
    "\n"
    "  enable, disable  turn badges on or off for a course (off until enabled)\n"
    "  pass-mark        the score (0.0 to 1.0) that completes the course, on resource\n"
    "                   link R or, without it, on any link of the course (default 0.5)\n"
    "  show             the course's settings (badges on or off, pass mark, completion\n"
    "                   link), its resource links, BadgeClasses and awards by state\n";

static const char group_usage[] =
    "usage: ltibadges group add NAME --consumer KEY --context ID...\n"
    "\n"
    "Creates a course group (or adds courses to it) for rules of the form group:NAME.\n";

static const char badge_usage[] =
    "usage: ltibadges badge create --consumer KEY [--context ID] --name N --description D\n"
    "                              --image FILE --rule RULE [--mode M] [--slug S]\n"
    "                              [--criteria-url U] [--criteria TEXT] [--tag T]...\n"
    "                              [--alignment 'NAME|URL[|DESCRIPTION|FRAMEWORK|CODE]']...\n"
    "                              [--issuing-component C] [--backend B]\n"
    "                              [--backend-id ID] [--expires-days N]\n"
    "                              [--passback-score S|off] [--revoke-on-withdrawn yes|no]\n"
    "       ltibadges badge set SLUG [--image FILE] [--passback-score S|off]\n"
    "                               [--revoke-on-withdrawn yes|no] [--backend B]\n"
    "       ltibadges badge list [--json]\n"
    "       ltibadges badge show SLUG [--json]\n"
    "\n"
    "RULE is one of: enrollment, completion, manual, score:T[:RESOURCE_LINK],\n"
    "group:NAME, count:N. The image is a PNG or SVG file of at most 256 KiB; an SVG\n"
    "is stored sanitized, as the badge editor stores it (scripts, event handlers and\n"
    "what would load other files removed; stderr says how many parts went).\n"
    "  --passback-score      the score written to the learner's LMS gradebook when the\n"
    "                        badge is issued (default 1.0; off: none). A grade the LMS\n"
    "                        already holds there is kept.\n"
    "  --revoke-on-withdrawn yes: revoke the badge when the grade that earned it is\n"
    "                        deleted or lowered below what it needs (default no)\n"
    "  --backend B           the platform it is issued through: hosted or a\n"
    "                        [backend.NAME] section (default: its consumer's, else\n"
    "                        [awards] backend). 'badge set' moves it only while it\n"
    "                        has no awards, forgetting its id at the old one\n"
    "  --backend-id ID       a BadgeClass that exists at the (remote) backend already;\n"
    "                        the platform is asked first, and one it does not have or\n"
    "                        that is another issuer's is refused\n";

static const char grade_usage[] =
    "usage: ltibadges grade record --consumer KEY --context ID --user ID\n"
    "                              --resource-link R --score S\n"
    "\n"
    "Records a grade (0.0 to 1.0) as if the LMS had sent it, and judges the rules.\n";

static const char award_usage[] =
    "usage: ltibadges award grant --badge SLUG --consumer KEY --user ID [--narrative TEXT]\n"
    "       ltibadges award list [--state S] [--badge SLUG] [--backend B] [--json]\n"
    "       ltibadges award retry ID\n"
    "       ltibadges award revoke ID --reason TEXT\n"
    "\n"
    "States: queued, needs_email, issuing, issued, failed, revoked. The list shows\n"
    "the last grade passback to the LMS of each award. 'retry' queues a failed award\n"
    "and its failed passbacks again.\n";

static const char outcome_usage[] =
    "usage: ltibadges outcome sourcedid --consumer KEY --context ID --user ID\n"
    "                                   --resource-link R\n"
    "\n"
    "Prints the sourcedid ltibadges hands out for a learner's result on a resource\n"
    "link: a grader holding the consumer's key and secret sends replaceResult,\n"
    "readResult and deleteResult with it to PUBLIC_URL/lti/outcomes.\n";

static const char user_usage[] =
    "usage: ltibadges user show --consumer KEY --user ID [--json]\n"
    "\n"
    "What the tool holds of a user its launches recorded: the names, e-mail address\n"
    "(and where it came from: the LMS, or the learner, confirmed or not) and person\n"
    "sourcedid the LMS sent, the courses they launched from with their roles,\n"
    "where the LMS takes their grades (outcome service URL and sourcedid per\n"
    "resource link), the e-mail confirmation links mailed to them and their\n"
    "grades. --json prints one JSON object.\n";

static const char session_usage[] =
    "usage: ltibadges session show TOKEN [--json]\n"
    "\n"
    "The live session of TOKEN, the ID-SECRET a launch's page URL carries (?s=): its\n"
    "consumer, user, course, roles, return URL, locale, when it was made and when it\n"
    "expires, and the CSRF token its forms carry. Only whoever holds TOKEN can name\n"
    "the session: the database keeps the SHA-256 of its secret. --json prints one\n"
    "JSON object.\n";

/* The store, the consumer named by --consumer (if wanted), and the award engine (if wanted). */
struct env {
    struct cli_config cfg;
    struct store *s;
    struct awards *a;
    struct store_consumer consumer;
};

static int env_open(struct env *e, const struct cli_opts *o, bool consumer, bool engine,
                    struct err *err)
{
    memset(e, 0, sizeof(*e));
    if (cli_config_resolve(&e->cfg, o, err) < 0 ||
        cli_store_open(&e->cfg, STORE_OPEN_NO_CREATE, &e->s, err) < 0)
        return -1;
    cli_report_svg_migration(e->s, stderr, "ltibadges: ");
    if (consumer) {
        if (!o->consumer)
            return err_set(err, ERR_INVALID, "--consumer KEY is required");
        if (store_consumer_find(e->s, str_from_cstr(o->consumer), &e->consumer, err) < 0) {
            if (err->code == ERR_NOTFOUND) {
                err_clear(err);
                err_set(err, ERR_NOTFOUND, "there is no consumer with key '%s'", o->consumer);
            }
            return -1;
        }
    }
    if (engine) {
        struct awards_config ac;
        char url[LIMIT_LTI_URL_LEN + 64];

        cli_config_public_url(&e->cfg, url, sizeof(url));
        memset(&ac, 0, sizeof(ac));
        ac.public_url = url;
        ac.issuer_name = e->cfg.issuer_name;
        ac.default_backend = e->cfg.awards_backend;
        if (awards_new(&e->a, e->s, &ac, err) < 0)
            return -1;
    }
    return 0;
}

static void env_close(struct env *e)
{
    awards_free(e->a);
    store_close(e->s);
}

/* A score: a decimal from 0 to 1 ("0.8", "1", ".75"). */
static int parse_score(const char *v, double *out, struct err *err)
{
    char *end = NULL;
    double d;

    if (!v || !*v || strspn(v, "0123456789.") != strlen(v))
        return err_set(err, ERR_INVALID, "a score is a number from 0.0 to 1.0, got '%s'",
                       v ? v : "");
    errno = 0;
    d = strtod(v, &end);
    if (errno || *end || !(d >= 0.0 && d <= 1.0))
        return err_set(err, ERR_INVALID, "a score is a number from 0.0 to 1.0, got '%s'", v);
    *out = d;
    return 0;
}

static int need(const char *v, const char *what, const char *cmd)
{
    if (v && *v)
        return 0;
    cli_usage_error(cmd, "%s is required", what);
    return -1;
}

static int one_context(const struct cli_opts *o, const char *cmd)
{
    if (o->context.n != 1) {
        cli_usage_error(cmd, "--context ID is required (once)");
        return -1;
    }
    return 0;
}

static json_t *jstr(const char *v);

static json_t *course_json(const struct store_course_admin *ca)
{
    json_t *o = json_object(), *links = json_array(), *badges = json_array();
    json_t *awards = json_object();

    json_object_set_new(o, "context", jstr(ca->lti_context_id));
    json_object_set_new(o, "title", jstr(ca->title));
    json_object_set_new(o, "badges_enabled", json_boolean(ca->badges_enabled));
    json_object_set_new(o, "pass_mark", json_real(ca->pass_mark));
    json_object_set_new(o, "completion_link", jstr(ca->completion_link));
    for (size_t i = 0; i < ca->nlinks; i++) {
        json_t *l = json_object();

        json_object_set_new(l, "resource_link", jstr(ca->links[i].lti_link_id));
        json_object_set_new(l, "title", jstr(ca->links[i].title));
        json_object_set_new(l, "points_possible",
                            ca->links[i].points_possible > 0
                                ? json_real(ca->links[i].points_possible)
                                : json_null());
        json_array_append_new(links, l);
    }
    for (size_t i = 0; i < ca->nbadges; i++)
        json_array_append_new(badges, json_string(ca->badges[i].slug));
    json_object_set_new(awards, "queued", json_integer(ca->queued));
    json_object_set_new(awards, "needs_email", json_integer(ca->needs_email));
    json_object_set_new(awards, "failed", json_integer(ca->failed));
    json_object_set_new(awards, "issued", json_integer(ca->issued));
    json_object_set_new(awards, "revoked", json_integer(ca->revoked));
    json_object_set_new(o, "links", links);
    json_object_set_new(o, "badges", badges);
    json_object_set_new(o, "awards", awards);
    return o;
}

static void print_json(json_t *j);

/* `context show`: what the instructor's course page shows of the course's settings. */
static int context_show(const struct cli_opts *o)
{
    struct err err = ERR_INIT;
    struct arena ar = ARENA_INIT;
    struct store_course_admin ca;
    struct env e;
    int64_t cid = 0;
    int ret = 0;

    if (env_open(&e, o, true, false, &err) < 0 ||
        store_context_find(e.s, e.consumer.id, o->context.v[0], &cid, &err) < 0 ||
        store_course_admin(e.s, e.consumer.id, cid, &ar, &ca, &err) < 0) {
        ret = cli_fail(&err);
    } else if (o->json) {
        print_json(course_json(&ca));
    } else {
        printf("course:      %s\ntitle:       %s\nbadges:      %s\npass mark:   %.2f on %s\n",
               ca.lti_context_id, ca.title ? ca.title : "-", ca.badges_enabled ? "on" : "off",
               ca.pass_mark, ca.completion_link ? ca.completion_link : "any link");
        for (size_t i = 0; i < ca.nlinks; i++)
            printf("link:        %s %s\n", ca.links[i].lti_link_id,
                   ca.links[i].title ? ca.links[i].title : "");
        for (size_t i = 0; i < ca.nbadges; i++)
            printf("badge:       %s\n", ca.badges[i].slug);
    }
    env_close(&e);
    arena_release(&ar);
    return ret;
}

int cli_cmd_context(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    struct env e;
    const char *sub = argc > 2 ? argv[2] : NULL;
    int ret = 0;

    if (cli_parse_opts(argc, argv, 3, "config,db,json,consumer,context,score,resource-link", 0, &o,
                       &err) < 0)
        return cli_usage_error("context", "%s", err.msg);
    if (!sub || o.help || strcmp(sub, "--help") == 0) {
        fputs(context_usage, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    if (one_context(&o, "context") < 0)
        return 2;
    if (strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0) {
        bool on = strcmp(sub, "enable") == 0;

        int64_t cid = 0;
        size_t added = 0;

        /* turned on: who already meets a rule of the course gets it now, as from its page */
        if (env_open(&e, &o, true, on, &err) < 0 ||
            store_context_set_enabled(e.s, e.consumer.id, o.context.v[0], on, &cid, &err) < 0 ||
            (on && awards_backfill_course(e.a, cid, &added, &err) < 0))
            ret = cli_fail(&err);
        else if (on && added)
            printf("badges enabled for course %s; %zu award(s) for learners who already met a "
                   "rule\n",
                   o.context.v[0], added);
        else
            printf("badges %s for course %s\n", on ? "enabled" : "disabled", o.context.v[0]);
    } else if (strcmp(sub, "pass-mark") == 0) {
        double score;

        if (parse_score(o.score, &score, &err) < 0)
            return cli_usage_error("context pass-mark", "%s", err.msg);
        if (env_open(&e, &o, true, false, &err) < 0 ||
            store_context_set_pass_mark(e.s, e.consumer.id, o.context.v[0], score, o.resource_link,
                                        &err) < 0)
            ret = cli_fail(&err);
        else
            printf("pass mark %.2f for course %s%s%s\n", score, o.context.v[0],
                   o.resource_link ? " on resource link " : "",
                   o.resource_link ? o.resource_link : "");
    } else if (strcmp(sub, "show") == 0) {
        return context_show(&o);
    } else {
        return cli_usage_error("context", "unknown subcommand '%s'", sub);
    }
    env_close(&e);
    return ret;
}

int cli_cmd_group(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    struct env e;
    const char *sub = argc > 2 ? argv[2] : NULL;
    int ret = 0;

    if (cli_parse_opts(argc, argv, 3, "config,db,consumer,context", 1, &o, &err) < 0)
        return cli_usage_error("group", "%s", err.msg);
    if (!sub || o.help || strcmp(sub, "--help") == 0) {
        fputs(group_usage, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    if (strcmp(sub, "add") != 0)
        return cli_usage_error("group", "unknown subcommand '%s'", sub);
    if (o.npos != 1 || !o.pos[0][0] || strlen(o.pos[0]) > LIMIT_GROUP_NAME_LEN)
        return cli_usage_error("group add", "NAME (1 to %d characters) is required",
                               LIMIT_GROUP_NAME_LEN);
    if (o.context.n == 0)
        return cli_usage_error("group add", "at least one --context ID is required");
    if (env_open(&e, &o, true, false, &err) < 0 ||
        store_group_add(e.s, e.consumer.id, o.pos[0], o.context.v, o.context.n, &err) < 0)
        ret = cli_fail(&err);
    else
        printf("group %s: %zu course(s) added\n", o.pos[0], o.context.n);
    env_close(&e);
    return ret;
}

static int read_file(const char *path, unsigned char **out, size_t *len, struct err *err)
{
    FILE *f = fopen(path, "rb");
    struct buf b = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    char chunk[8192];
    size_t n;

    if (!f)
        return err_set(err, ERR_INVALID, "cannot read '%s': %s", path, strerror(errno));
    /* stop at the limit: a larger file is refused without reading it all */
    while (!b.toobig && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    if (b.toobig) {
        buf_release(&b);
        return err_set(err, ERR_TOOBIG, "a badge image is at most %d KiB",
                       LIMIT_BADGE_IMAGE_BYTES / 1024);
    }
    *out = (unsigned char *)buf_detach(&b, len);
    return 0;
}

/*
 * The image of a BadgeClass from a file, made a badge image by the rule
 * every way in shares (image_for_badge): a PNG as it is, an SVG
 * sanitized exactly as the editor sanitizes an upload, so that one file
 * becomes the same stored image whichever way it came. What the sanitizer
 * removed never shows where badges are shown (an <img> runs no script and
 * fetches nothing), so the image is stored without it rather than refused,
 * and stderr says how much went.
 */
static int load_image(const char *path, struct buf *out, const char **type, struct err *err)
{
    unsigned char *raw = NULL;
    size_t len = 0, removed = 0;
    int ret;

    if (read_file(path, &raw, &len, err) < 0)
        return -1;
    ret = image_for_badge(raw, len, out, type, &removed, err);
    free(raw);
    if (ret == 0 && removed)
        fprintf(stderr,
                "ltibadges: %zu part%s of the SVG image that could run code or load other files "
                "%s removed; the image is stored without %s\n",
                removed, removed == 1 ? "" : "s", removed == 1 ? "was" : "were",
                removed == 1 ? "it" : "them");
    return ret;
}

/* enrollment | completion | manual | score:T[:LINK] | group:NAME | count:N */
static int parse_rule(const char *v, struct store_rule *r, struct err *err)
{
    const char *colon = strchr(v, ':');
    size_t klen = colon ? (size_t)(colon - v) : strlen(v);
    char kind[16];
    int k;

    memset(r, 0, sizeof(*r));
    if (klen >= sizeof(kind))
        return err_set(err, ERR_INVALID, "unknown rule '%s'", v);
    memcpy(kind, v, klen);
    kind[klen] = '\0';
    k = store_rule_parse_kind(kind);
    if (k < 0)
        return err_set(err, ERR_INVALID, "unknown rule '%s'", v);
    r->kind = (enum store_rule_kind)k;
    switch (r->kind) {
    case RULE_SCORE: {
        char t[32];
        const char *link = colon ? strchr(colon + 1, ':') : NULL;
        size_t tlen = colon ? (link ? (size_t)(link - colon - 1) : strlen(colon + 1)) : 0;

        if (!colon || tlen == 0 || tlen >= sizeof(t))
            return err_set(err, ERR_INVALID, "a score rule is score:THRESHOLD[:RESOURCE_LINK]");
        memcpy(t, colon + 1, tlen);
        t[tlen] = '\0';
        if (parse_score(t, &r->threshold, err) < 0)
            return -1;
        if (link && !link[1])
            return err_set(err, ERR_INVALID, "a score rule's resource link is empty");
        r->resource_link = link ? link + 1 : NULL;
        return 0;
    }
    case RULE_GROUP:
        if (!colon || !colon[1])
            return err_set(err, ERR_INVALID, "a group rule is group:NAME");
        r->group = colon + 1;
        return 0;
    case RULE_COUNT:
        if (!colon || str_to_i64(str_from_cstr(colon + 1), 1, 100000, &r->count) < 0)
            return err_set(err, ERR_INVALID, "a count rule is count:N with N from 1 to 100000");
        return 0;
    default:
        if (colon)
            return err_set(err, ERR_INVALID, "rule '%s' takes no argument", kind);
        return 0;
    }
}

/* A slug: lower-case letters, digits and single dashes. */
static bool slug_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > LIMIT_SLUG_LEN || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
        if (s[i] == '-' && s[i + 1] == '-')
            return false;
    }
    return true;
}

/* --passback-score S|off and --revoke-on-withdrawn yes|no; -1 in *pb / *rw: not given. */
static int parse_outcome_opts(const struct cli_opts *o, int *pb, double *score, int *rw,
                              struct err *err)
{
    *pb = -1;
    *rw = -1;
    *score = 1.0;
    if (o->passback_score) {
        if (strcmp(o->passback_score, "off") == 0)
            *pb = 0;
        else if (parse_score(o->passback_score, score, err) < 0) {
            err_clear(err);
            return err_set(err, ERR_INVALID, "--passback-score is a score from 0.0 to 1.0 or off");
        } else
            *pb = 1;
    }
    if (o->revoke_on_withdrawn) {
        if (strcmp(o->revoke_on_withdrawn, "yes") == 0)
            *rw = 1;
        else if (strcmp(o->revoke_on_withdrawn, "no") == 0)
            *rw = 0;
        else
            return err_set(err, ERR_INVALID, "--revoke-on-withdrawn is yes or no");
    }
    return 0;
}

/* --backend B: a backend's name (whether it is configured is checked with the configuration). */
static int backend_opt_ok(const char *b, struct err *err)
{
    if (b && !backend_name_valid(b))
        return err_set(err, ERR_INVALID,
                       "--backend is hosted or the NAME of a [backend.NAME] section, got '%s'", b);
    return 0;
}

/*
 * That `name` may take BadgeClasses: hosted or a section of the
 * configuration, and every backend the database names is configured.
 */
static int backend_usable(const struct env *e, const char *name, struct err *err)
{
    if (!cli_config_has_backend(&e->cfg, name))
        return err_set(err, ERR_NOTFOUND,
                       "there is no backend '%s': it is hosted or a [backend.NAME] section of the "
                       "configuration",
                       name);
    return cli_backends_check_used(&e->cfg, e->s, err);
}

/*
 * --backend-id ID: a BadgeClass that exists at the remote backend `name`
 * already. The platform is asked before anything is stored: one it does
 * not have, or another issuer's, is refused. Each backend checks the id's
 * form itself first (a Badgr entity id, an OBF id, a BadgeKit slug). `out` (512 bytes) gets the id
 * as the platform spells it.
 */
static int verify_backend_id(const struct cli_config *cfg, const char *name, const char *id,
                             char *out, struct err *err)
{
    struct backend_settings *set;
    struct backend *b = NULL;
    int ret = 0;

    if (strcmp(name, BACKEND_HOSTED) == 0)
        return err_set(err, ERR_INVALID,
                       "--backend-id needs a remote backend: this BadgeClass goes to 'hosted', "
                       "which makes its own ids (choose one with --backend)");
    set = xmalloc(sizeof(*set));
    if (cli_config_backend(cfg, name, set, err) < 0 || backend_from_settings(set, &b, err) < 0) {
        ret = -1;
    } else if (!b->ops->verify_badge_class) {
        ret = err_set(err, ERR_INVALID, "backend '%s' (type %s) takes no --backend-id", name,
                      b->ops->name);
    } else {
        struct backend_result r;

        backend_result_init(&r);
        b->ops->verify_badge_class(b, id, &r);
        if (r.status != BACKEND_OK)
            ret = err_set(err, r.status == BACKEND_PERMANENT ? ERR_INVALID : ERR_UNAVAILABLE,
                          "--backend-id '%s' refused by backend '%s', nothing stored: %s", id, name,
                          r.message[0] ? r.message : "no reason given");
        else
            snprintf(out, 512, "%s", r.id[0] ? r.id : id);
    }
    backend_destroy(b);
    backend_settings_wipe(set);
    free(set);
    return ret;
}

static int badge_create(const struct cli_opts *o)
{
    struct err err = ERR_INIT;
    struct store_badge_new b;
    struct env e;
    struct buf img = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
    const char *type;
    char slug[LIMIT_SLUG_LEN + 1], base[LIMIT_SLUG_LEN + 1];
    char verified[512] = ""; /* --backend-id as the platform spells it */
    char *tags_s = NULL, *al_s = NULL;
    int64_t id, days = 0;
    int ret = 0;

    memset(&b, 0, sizeof(b));
    if (need(o->consumer, "--consumer KEY", "badge create") < 0 ||
        need(o->name, "--name N", "badge create") < 0 ||
        need(o->description, "--description D", "badge create") < 0 ||
        need(o->image, "--image FILE", "badge create") < 0 ||
        need(o->rule, "--rule RULE", "badge create") < 0) {
        ret = 2;
        goto out;
    }
    if (o->context.n > 1) {
        ret = cli_usage_error("badge create", "--context is given once");
        goto out;
    }
    if (parse_rule(o->rule, &b.rule, &err) < 0 ||
        awards_text_ok(o->name, LIMIT_BADGE_NAME_LEN, "--name", &err) < 0 ||
        awards_text_ok(o->description, LIMIT_BADGE_TEXT_LEN, "--description", &err) < 0 ||
        awards_text_ok(o->criteria, LIMIT_BADGE_TEXT_LEN, "--criteria", &err) < 0 ||
        awards_text_ok(o->mode, LIMIT_LTI_ID_LEN, "--mode", &err) < 0 ||
        awards_text_ok(o->issuing_component, LIMIT_LTI_ID_LEN, "--issuing-component", &err) < 0 ||
        awards_text_ok(o->backend_id, 500, "--backend-id", &err) < 0 ||
        backend_opt_ok(o->backend, &err) < 0) {
        ret = cli_usage_error("badge create", "%s", err.msg);
        goto out;
    }
    {
        int pb, rw;

        if (parse_outcome_opts(o, &pb, &b.passback_score, &rw, &err) < 0) {
            ret = cli_usage_error("badge create", "%s", err.msg);
            goto out;
        }
        b.passback_off = pb == 0;
        b.has_passback_score = pb == 1;
        b.revoke_on_withdrawn = rw == 1;
    }
    if (o->slug && !slug_ok(o->slug)) {
        ret = cli_usage_error("badge create",
                              "a slug is lower-case letters, digits and single dashes (at most %d)",
                              LIMIT_SLUG_LEN);
        goto out;
    }
    if (o->criteria_url &&
        (!awards_http_url(o->criteria_url) ||
         awards_text_ok(o->criteria_url, LIMIT_LTI_URL_LEN, "--criteria-url", &err) < 0)) {
        ret = cli_usage_error("badge create", "--criteria-url must be an http(s) URL");
        goto out;
    }
    if (o->expires_days &&
        str_to_i64(str_from_cstr(o->expires_days), 1, LIMIT_BADGE_EXPIRES_DAYS, &days) < 0) {
        ret = cli_usage_error("badge create", "--expires-days is a whole number from 1 to %d",
                              LIMIT_BADGE_EXPIRES_DAYS);
        goto out;
    }
    if (o->tag.n > LIMIT_BADGE_TAGS || o->alignment.n > LIMIT_BADGE_ALIGNMENTS) {
        ret = cli_usage_error("badge create", "at most %d tags and %d alignments", LIMIT_BADGE_TAGS,
                              LIMIT_BADGE_ALIGNMENTS);
        goto out;
    }
    if (awards_tags_json((const char *const *)o->tag.v, o->tag.n, &tags_s, &err) < 0 ||
        awards_alignments_json((const char *const *)o->alignment.v, o->alignment.n, &al_s, &err) <
            0) {
        ret = cli_usage_error("badge create", "%s", err.msg);
        goto out;
    }
    if (load_image(o->image, &img, &type, &err) < 0) {
        ret = cli_fail(&err);
        goto out;
    }
    if (env_open(&e, o, true, false, &err) < 0) {
        ret = cli_fail(&err);
        env_close(&e);
        goto out;
    }
    str_slug(base, sizeof(base), 80, o->context.n ? o->context.v[0] : o->name, o->mode);
    b.consumer_id = e.consumer.id;
    b.lti_context_id = o->context.n ? o->context.v[0] : NULL;
    b.mode = o->mode && *o->mode ? o->mode : NULL;
    b.slug = o->slug;
    b.slug_base = base[0] ? base : "badge";
    b.name = o->name;
    b.description = o->description;
    b.image = (const unsigned char *)img.ptr;
    b.image_len = img.len;
    b.image_type = type;
    b.criteria_url = o->criteria_url;
    b.criteria_narrative = o->criteria;
    b.issuing_component = o->issuing_component;
    b.tags = tags_s;
    b.alignments = al_s;
    /* --backend, else the consumer's, else [awards] backend */
    b.backend = o->backend              ? o->backend
                : e.consumer.backend[0] ? e.consumer.backend
                                        : e.cfg.awards_backend;
    b.backend_id = o->backend_id ? verified : NULL;
    b.expires_days = days;
    if (backend_usable(&e, b.backend, &err) < 0 ||
        (o->backend_id &&
         verify_backend_id(&e.cfg, b.backend, o->backend_id, verified, &err) < 0) ||
        store_badge_create(e.s, &b, &id, slug, &err) < 0)
        ret = cli_fail(&err);
    else
        printf("slug=%s\n", slug);
    env_close(&e);
out:
    buf_release(&img);
    free(tags_s);
    free(al_s);
    return ret;
}

static json_t *jstr(const char *v)
{
    return v ? json_string(v) : json_null();
}

static json_t *badge_json(const struct store_badge *b)
{
    json_t *o = json_object();
    json_t *rule = json_object();

    json_object_set_new(o, "slug", json_string(b->slug));
    json_object_set_new(o, "consumer", jstr(b->consumer_key));
    json_object_set_new(o, "context", jstr(b->lti_context_id));
    json_object_set_new(o, "mode", jstr(b->mode));
    json_object_set_new(o, "name", jstr(b->name));
    json_object_set_new(o, "description", jstr(b->description));
    json_object_set_new(o, "image_type", jstr(b->image_type));
    json_object_set_new(o, "criteria_url", jstr(b->criteria_url));
    json_object_set_new(o, "criteria", jstr(b->criteria_narrative));
    json_object_set_new(o, "issuing_component", jstr(b->issuing_component));
    json_object_set_new(o, "tags", b->tags ? json_loads(b->tags, 0, NULL) : json_array());
    json_object_set_new(o, "alignments",
                        b->alignments ? json_loads(b->alignments, 0, NULL) : json_array());
    json_object_set_new(o, "expires_days",
                        b->expires_days ? json_integer(b->expires_days) : json_null());
    json_object_set_new(o, "backend", jstr(b->backend));
    json_object_set_new(o, "backend_id", jstr(b->backend_id));
    json_object_set_new(rule, "kind", json_string(store_rule_name(b->rule.kind)));
    if (b->rule.kind == RULE_SCORE) {
        json_object_set_new(rule, "threshold", json_real(b->rule.threshold));
        json_object_set_new(rule, "resource_link", jstr(b->rule.resource_link));
    } else if (b->rule.kind == RULE_GROUP) {
        json_object_set_new(rule, "group", jstr(b->rule.group));
    } else if (b->rule.kind == RULE_COUNT) {
        json_object_set_new(rule, "count", json_integer(b->rule.count));
    }
    json_object_set_new(o, "rule", rule);
    json_object_set_new(o, "issued", json_integer(b->issued));
    json_object_set_new(o, "passback_score",
                        b->passback ? json_real(b->passback_score) : json_null());
    json_object_set_new(o, "revoke_on_withdrawn", json_boolean(b->revoke_on_withdrawn));
    json_object_set_new(o, "archived_at",
                        b->archived_at ? json_integer(b->archived_at) : json_null());
    /* edits not yet at the platform: when they are sent next (null: none), and the last failure */
    json_object_set_new(o, "update_due_at",
                        b->sync_due_at ? json_integer(b->sync_due_at) : json_null());
    json_object_set_new(o, "update_error", jstr(b->sync_error));
    return o;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);

    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

static void rule_text(const struct store_rule *r, char *out, size_t n)
{
    switch (r->kind) {
    case RULE_SCORE:
        snprintf(out, n, "score:%.2f%s%s", r->threshold, r->resource_link ? ":" : "",
                 r->resource_link ? r->resource_link : "");
        break;
    case RULE_GROUP:
        snprintf(out, n, "group:%s", r->group ? r->group : "?");
        break;
    case RULE_COUNT:
        snprintf(out, n, "count:%" PRId64, r->count);
        break;
    default:
        snprintf(out, n, "%s", store_rule_name(r->kind));
        break;
    }
}

int cli_cmd_badge(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    const char *sub = argc > 2 ? argv[2] : NULL;
    struct arena ar = ARENA_INIT;
    struct env e;
    int ret = 0;

    if (cli_parse_opts(argc, argv, 3,
                       "config,db,json,consumer,context,name,description,image,mode,slug,"
                       "criteria-url,criteria,tag,alignment,issuing-component,backend-id,backend,"
                       "expires-days,rule,passback-score,revoke-on-withdrawn",
                       1, &o, &err) < 0)
        return cli_usage_error("badge", "%s", err.msg);
    if (!sub || o.help || strcmp(sub, "--help") == 0) {
        fputs(badge_usage, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    if (strcmp(sub, "create") == 0) {
        if (o.npos)
            return cli_usage_error("badge create", "unexpected argument '%s'", o.pos[0]);
        return badge_create(&o);
    }
    if (strcmp(sub, "list") == 0) {
        struct store_badge *v;
        size_t n;

        if (o.npos)
            return cli_usage_error("badge list", "unexpected argument '%s'", o.pos[0]);
        if (env_open(&e, &o, false, false, &err) < 0 ||
            store_badge_list(e.s, &ar, &v, &n, &err) < 0) {
            ret = cli_fail(&err);
        } else if (o.json) {
            json_t *arr = json_array();

            for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, badge_json(&v[i]));
            print_json(arr);
        } else {
            printf("%-32s %-20s %-10s %-24s %6s  %s\n", "SLUG", "COURSE", "MODE", "RULE", "ISSUED",
                   "NAME");
            for (size_t i = 0; i < n; i++) {
                char rule[96];

                rule_text(&v[i].rule, rule, sizeof(rule));
                printf("%-32s %-20s %-10s %-24s %6" PRId64 "  %s\n", v[i].slug,
                       v[i].lti_context_id ? v[i].lti_context_id : "-", v[i].mode ? v[i].mode : "-",
                       rule, v[i].issued, v[i].name);
            }
        }
    } else if (strcmp(sub, "set") == 0) {
        struct buf img = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);
        const char *type = NULL;
        int pb, rw;
        double score;

        if (o.npos != 1)
            return cli_usage_error("badge set", "SLUG is required");
        if (parse_outcome_opts(&o, &pb, &score, &rw, &err) < 0)
            return cli_usage_error("badge set", "%s", err.msg);
        if (pb < 0 && rw < 0 && !o.image && !o.backend)
            return cli_usage_error("badge set", "nothing to set (--image, --passback-score, "
                                                "--revoke-on-withdrawn, --backend)");
        if (backend_opt_ok(o.backend, &err) < 0)
            return cli_usage_error("badge set", "%s", err.msg);
        /* the backend first (refused once it has awards), then the image: refused for what it holds
         */
        if (env_open(&e, &o, false, false, &err) < 0 ||
            (o.backend && (backend_usable(&e, o.backend, &err) < 0 ||
                           store_badge_set_backend(e.s, o.pos[0], o.backend, &err) < 0)) ||
            (o.image && (load_image(o.image, &img, &type, &err) < 0 ||
                         store_badge_set_image(e.s, o.pos[0], (const unsigned char *)img.ptr,
                                               img.len, type, &err) < 0)) ||
            ((pb >= 0 || rw >= 0) &&
             store_badge_set_outcomes(e.s, o.pos[0], pb, score, rw, &err) < 0))
            ret = cli_fail(&err);
        else
            printf("BadgeClass %s updated\n", o.pos[0]);
        buf_release(&img);
    } else if (strcmp(sub, "show") == 0) {
        struct store_badge b;

        if (o.npos != 1)
            return cli_usage_error("badge show", "SLUG is required");
        if (env_open(&e, &o, false, false, &err) < 0 ||
            store_badge_get(e.s, o.pos[0], &ar, &b, &err) < 0) {
            ret = cli_fail(&err);
        } else if (o.json) {
            print_json(badge_json(&b));
        } else {
            char rule[96];

            rule_text(&b.rule, rule, sizeof(rule));
            printf("slug:        %s\nname:        %s\ndescription: %s\ncourse:      %s\n"
                   "mode:        %s\nrule:        %s\nimage:       %s (%zu bytes)\n"
                   "backend:     %s %s\nissued:      %" PRId64 "\n",
                   b.slug, b.name, b.description, b.lti_context_id ? b.lti_context_id : "-",
                   b.mode ? b.mode : "-", rule, b.image_type, b.image_len, b.backend,
                   b.backend_id ? b.backend_id : "(created on first award)", b.issued);
            if (b.passback)
                printf("passback:    score %g to the LMS when issued\n", b.passback_score);
            else
                printf("passback:    off\n");
            printf("withdrawn:   %s\n", b.revoke_on_withdrawn ? "a withdrawn grade revokes it"
                                                              : "a withdrawn grade is recorded");
            /* an edit not yet at the platform: when it is sent next, or why it was refused */
            if (b.sync_due_at || b.sync_error) {
                char due[21];

                util_iso8601(b.sync_due_at, due);
                if (b.sync_due_at && b.sync_error)
                    printf("update:      not yet at %s, tried again at %s: %s\n", b.backend, due,
                           b.sync_error);
                else if (b.sync_due_at)
                    printf("update:      waiting to be sent to %s\n", b.backend);
                else
                    printf("update:      refused by %s (edit again to resend): %s\n", b.backend,
                           b.sync_error);
            }
        }
    } else {
        return cli_usage_error("badge", "unknown subcommand '%s'", sub);
    }
    env_close(&e);
    arena_release(&ar);
    return ret;
}

int cli_cmd_grade(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    const char *sub = argc > 2 ? argv[2] : NULL;
    struct awards_outcome out;
    struct env e;
    double score;
    int ret = 0;

    if (cli_parse_opts(argc, argv, 3, "config,db,consumer,context,user,resource-link,score", 0, &o,
                       &err) < 0)
        return cli_usage_error("grade", "%s", err.msg);
    if (!sub || o.help || strcmp(sub, "--help") == 0) {
        fputs(grade_usage, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    if (strcmp(sub, "record") != 0)
        return cli_usage_error("grade", "unknown subcommand '%s'", sub);
    if (one_context(&o, "grade record") < 0 || need(o.consumer, "--consumer KEY", "grade record") ||
        need(o.user, "--user ID", "grade record") ||
        need(o.resource_link, "--resource-link R", "grade record"))
        return 2;
    if (parse_score(o.score, &score, &err) < 0)
        return cli_usage_error("grade record", "%s", err.msg);
    if (env_open(&e, &o, true, true, &err) < 0 ||
        awards_grade(e.a, e.consumer.id, o.user, o.context.v[0], o.resource_link, score, "cli",
                     &out, &err) < 0)
        ret = cli_fail(&err);
    else
        printf("grade %.2f recorded%s; %d award(s) queued\n", score,
               out.completed ? ", course completed" : "", out.awards_added);
    env_close(&e);
    return ret;
}

static json_t *award_json(const struct store_award *w)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_integer(w->id));
    /* the public id of a hosted assertion (PUBLIC_URL/assertions/UID) */
    json_object_set_new(o, "uid", jstr(w->uid));
    json_object_set_new(o, "state", json_string(store_award_state_name(w->state)));
    json_object_set_new(o, "badge", jstr(w->badge_slug));
    json_object_set_new(o, "consumer", jstr(w->consumer_key));
    json_object_set_new(o, "user", jstr(w->lti_user_id));
    json_object_set_new(o, "user_name", jstr(w->user_name));
    json_object_set_new(o, "recipient", jstr(w->recipient_email));
    json_object_set_new(o, "context", jstr(w->lti_context_id));
    json_object_set_new(o, "reason", jstr(w->reason));
    json_object_set_new(o, "narrative", jstr(w->narrative));
    json_object_set_new(o, "assertion_id", jstr(w->assertion_id));
    json_object_set_new(o, "assertion_url", jstr(w->assertion_url));
    json_object_set_new(o, "attempts", json_integer(w->attempts));
    json_object_set_new(o, "last_error", jstr(w->last_error));
    /* queued or issuing: when the worker may take it (again); a lease while it is issuing */
    json_object_set_new(o, "next_attempt_at", json_integer(w->next_attempt_at));
    json_object_set_new(o, "issued_at", w->issued_at ? json_integer(w->issued_at) : json_null());
    json_object_set_new(o, "expires_at", w->expires_at ? json_integer(w->expires_at) : json_null());
    json_object_set_new(o, "revoked_at", w->revoked_at ? json_integer(w->revoked_at) : json_null());
    json_object_set_new(o, "revoke_reason", jstr(w->revoke_reason));
    /* false while a revocation has not reached the backend yet */
    json_object_set_new(o, "revoke_synced", json_boolean(!w->revoke_pending));
    json_object_set_new(o, "created_at", json_integer(w->created_at));
    json_object_set_new(o, "updated_at", json_integer(w->updated_at));
    if (w->passback_state) {
        json_t *pb = json_object();

        json_object_set_new(pb, "state", json_string(w->passback_state));
        json_object_set_new(pb, "answer", jstr(w->passback_answer));
        json_object_set_new(pb, "attempts", json_integer(w->passback_attempts));
        json_object_set_new(pb, "last_attempt_at",
                            w->passback_at ? json_integer(w->passback_at) : json_null());
        json_object_set_new(pb, "bindings", json_integer(w->passbacks));
        json_object_set_new(o, "passback", pb);
    } else {
        json_object_set_new(o, "passback", json_null());
    }
    return o;
}

static int award_id_arg(const struct cli_opts *o, const char *cmd, int64_t *id)
{
    if (o->npos != 1 || str_to_i64(str_from_cstr(o->pos[0]), 1, INT64_MAX, id) < 0) {
        cli_usage_error(cmd, "ID (a number, see 'award list') is required");
        return -1;
    }
    return 0;
}

int cli_cmd_award(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    const char *sub = argc > 2 ? argv[2] : NULL;
    struct arena ar = ARENA_INIT;
    struct env e;
    int64_t id;
    int ret = 0;

    if (cli_parse_opts(argc, argv, 3,
                       "config,db,json,badge,consumer,user,narrative,state,reason,backend", 1, &o,
                       &err) < 0)
        return cli_usage_error("award", "%s", err.msg);
    if (!sub || o.help || strcmp(sub, "--help") == 0) {
        fputs(award_usage, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    if (strcmp(sub, "grant") == 0) {
        bool added;

        if (need(o.badge, "--badge SLUG", "award grant") ||
            need(o.user, "--user ID", "award grant") ||
            need(o.consumer, "--consumer KEY", "award grant"))
            return 2;
        if (awards_text_ok(o.narrative, LIMIT_BADGE_TEXT_LEN, "--narrative", &err) < 0)
            return cli_usage_error("award grant", "%s", err.msg);
        if (env_open(&e, &o, true, true, &err) < 0 ||
            awards_grant(e.a, o.badge, e.consumer.id, o.user, o.narrative, &id, &added, &err) < 0)
            ret = cli_fail(&err);
        else if (added)
            printf("award %" PRId64 " queued\n", id);
        else
            printf("user %s already has %s\n", o.user, o.badge);
    } else if (strcmp(sub, "list") == 0) {
        struct store_award_filter f = { -1, o.badge, 0, o.backend, 0 };
        struct store_award *v;
        size_t n;

        if (o.state && (f.state = store_award_state_parse(o.state)) < 0)
            return cli_usage_error("award list", "unknown state '%s'", o.state);
        if (backend_opt_ok(o.backend, &err) < 0)
            return cli_usage_error("award list", "%s", err.msg);
        if (env_open(&e, &o, false, false, &err) < 0 ||
            store_award_list(e.s, &f, &ar, &v, &n, &err) < 0) {
            ret = cli_fail(&err);
        } else if (o.json) {
            json_t *arr = json_array();

            for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, award_json(&v[i]));
            print_json(arr);
        } else {
            printf("%-6s %-11s %-28s %-20s %4s %-8s  %s\n", "ID", "STATE", "BADGE", "USER", "TRY",
                   "PASSBACK", "ASSERTION / LAST ERROR / LMS ANSWER");
            for (size_t i = 0; i < n; i++) {
                const char *note = v[i].assertion_url ? v[i].assertion_url : v[i].last_error;

                /* a failed passback says why, the rest shows the assertion */
                if (v[i].passback_state && strcmp(v[i].passback_state, "done") != 0 &&
                    v[i].passback_answer)
                    note = v[i].passback_answer;
                printf("%-6" PRId64 " %-11s %-28s %-20s %4" PRId64 " %-8s  %s\n", v[i].id,
                       store_award_state_name(v[i].state), v[i].badge_slug, v[i].lti_user_id,
                       v[i].attempts, v[i].passback_state ? v[i].passback_state : "-",
                       note ? note : "-");
            }
        }
    } else if (strcmp(sub, "retry") == 0) {
        if (award_id_arg(&o, "award retry", &id) < 0)
            return 2;
        if (env_open(&e, &o, false, false, &err) < 0) {
            ret = cli_fail(&err);
        } else {
            struct err pb_err = ERR_INIT;
            int64_t pbs = 0;
            int rc = store_award_retry(e.s, id, util_now(), &err);

            /* a failed award, or an issued one that still owes the LMS its passback */
            if ((rc == 0 || err.code == ERR_CONFLICT) &&
                store_passback_retry(e.s, id, util_now(), &pbs, &pb_err) < 0)
                ret = cli_fail(&pb_err);
            else if (rc < 0 && pbs == 0)
                ret = cli_fail(&err);
            else if (pbs)
                printf("award %" PRId64 ": %" PRId64 " passback(s) queued again\n", id, pbs);
            else
                printf("award %" PRId64 " queued again\n", id);
        }
    } else if (strcmp(sub, "revoke") == 0) {
        if (award_id_arg(&o, "award revoke", &id) < 0)
            return 2;
        if (need(o.reason, "--reason TEXT", "award revoke"))
            return 2;
        if (awards_text_ok(o.reason, LIMIT_BADGE_TEXT_LEN, "--reason", &err) < 0)
            return cli_usage_error("award revoke", "%s", err.msg);
        if (env_open(&e, &o, false, false, &err) < 0 ||
            store_award_revoke(e.s, id, o.reason, util_now(), &err) < 0)
            ret = cli_fail(&err);
        else
            printf("award %" PRId64 " revoked\n", id);
    } else {
        return cli_usage_error("award", "unknown subcommand '%s'", sub);
    }
    env_close(&e);
    arena_release(&ar);
    return ret;
}

int cli_cmd_outcome(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    const char *sub = argc > 2 ? argv[2] : NULL;
    char sourcedid[LIMIT_TOOL_SOURCEDID_LEN + 1];
    struct env e;
    int ret = 0;

    if (cli_parse_opts(argc, argv, 3, "config,db,consumer,context,user,resource-link", 0, &o,
                       &err) < 0)
        return cli_usage_error("outcome", "%s", err.msg);
    if (!sub || o.help || strcmp(sub, "--help") == 0) {
        fputs(outcome_usage, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    if (strcmp(sub, "sourcedid") != 0)
        return cli_usage_error("outcome", "unknown subcommand '%s'", sub);
    if (one_context(&o, "outcome sourcedid") < 0 ||
        need(o.consumer, "--consumer KEY", "outcome sourcedid") ||
        need(o.user, "--user ID", "outcome sourcedid") ||
        need(o.resource_link, "--resource-link R", "outcome sourcedid"))
        return 2;
    if (awards_text_ok(o.user, LIMIT_LTI_ID_LEN, "--user", &err) < 0 ||
        awards_text_ok(o.resource_link, LIMIT_LTI_ID_LEN, "--resource-link", &err) < 0 ||
        awards_text_ok(o.context.v[0], LIMIT_LTI_ID_LEN, "--context", &err) < 0)
        return cli_usage_error("outcome sourcedid", "%s", err.msg);
    if (env_open(&e, &o, true, false, &err) < 0 ||
        store_tool_sourcedid(e.s, e.consumer.id, o.user, o.context.v[0], o.resource_link, sourcedid,
                             &err) < 0)
        ret = cli_fail(&err);
    else
        printf("%s\n", sourcedid);
    env_close(&e);
    return ret;
}

static json_t *user_json(const struct store_user_info *u)
{
    json_t *o = json_object(), *enr = json_array(), *bind = json_array(), *links = json_array();
    json_t *grades = json_array();

    json_object_set_new(o, "id", json_integer(u->id));
    json_object_set_new(o, "user", jstr(u->lti_user_id));
    json_object_set_new(o, "given_name", jstr(u->given_name));
    json_object_set_new(o, "family_name", jstr(u->family_name));
    json_object_set_new(o, "full_name", jstr(u->full_name));
    json_object_set_new(o, "email", jstr(u->email));
    json_object_set_new(o, "email_source", jstr(u->email_source));
    json_object_set_new(o, "person_sourcedid", jstr(u->person_sourcedid));
    json_object_set_new(o, "show_name", json_boolean(u->show_name));
    json_object_set_new(o, "created_at", json_integer(u->created_at));
    json_object_set_new(o, "updated_at", json_integer(u->updated_at));
    for (size_t i = 0; i < u->nenrollments; i++) {
        const struct store_user_enrollment *e = &u->enrollments[i];
        json_t *j = json_object();

        json_object_set_new(j, "context", jstr(e->lti_context_id));
        json_object_set_new(j, "roles", jstr(e->roles));
        json_object_set_new(j, "ext_roles", jstr(e->ext_roles));
        json_object_set_new(j, "role_flags", json_integer(e->role_flags));
        json_object_set_new(j, "mode", jstr(e->mode));
        json_object_set_new(j, "first_launch_at", json_integer(e->first_launch_at));
        json_object_set_new(j, "last_launch_at", json_integer(e->last_launch_at));
        json_array_append_new(enr, j);
    }
    for (size_t i = 0; i < u->nbindings; i++) {
        const struct store_user_binding *b = &u->bindings[i];
        json_t *j = json_object();

        json_object_set_new(j, "context", jstr(b->lti_context_id));
        json_object_set_new(j, "resource_link", jstr(b->lti_resource_link_id));
        json_object_set_new(j, "sourcedid", jstr(b->sourcedid));
        json_object_set_new(j, "service_url", jstr(b->service_url));
        json_object_set_new(j, "data_values_accepted", jstr(b->data_values_accepted));
        json_object_set_new(j, "last_read_error", jstr(b->last_read_error));
        json_object_set_new(j, "created_at", json_integer(b->created_at));
        json_object_set_new(j, "updated_at", json_integer(b->updated_at));
        json_array_append_new(bind, j);
    }
    for (size_t i = 0; i < u->nemail_links; i++) {
        const struct store_user_email_link *l = &u->email_links[i];
        json_t *j = json_object();
        char hex[65];

        util_hex(hex, l->secret_hash, sizeof(l->secret_hash));
        json_object_set_new(j, "id", json_integer(l->id));
        json_object_set_new(j, "email", jstr(l->email));
        json_object_set_new(j, "secret_sha256", json_string(hex));
        json_object_set_new(j, "created_at", json_integer(l->created_at));
        json_object_set_new(j, "expires_at", json_integer(l->expires_at));
        json_object_set_new(j, "used_at", l->used_at ? json_integer(l->used_at) : json_null());
        json_array_append_new(links, j);
    }
    for (size_t i = 0; i < u->ngrades; i++) {
        json_t *j = json_object();

        json_object_set_new(j, "resource_link", jstr(u->grades[i].lti_resource_link_id));
        json_object_set_new(j, "score", json_real(u->grades[i].score));
        json_object_set_new(j, "source", jstr(u->grades[i].source));
        json_object_set_new(j, "recorded_at", json_integer(u->grades[i].recorded_at));
        json_array_append_new(grades, j);
    }
    json_object_set_new(o, "enrollments", enr);
    json_object_set_new(o, "outcome_bindings", bind);
    json_object_set_new(o, "email_links", links);
    json_object_set_new(o, "grades", grades);
    return o;
}

static void user_print(const struct store_user_info *u)
{
    printf("user:        %s\nname:        %s\nemail:       %s%s%s%s\n", u->lti_user_id,
           u->full_name ? u->full_name : "-", u->email ? u->email : "-",
           u->email_source ? " (" : "", u->email_source ? u->email_source : "",
           u->email_source ? ")" : "");
    printf("sourcedid:   %s\n", u->person_sourcedid ? u->person_sourcedid : "-");
    for (size_t i = 0; i < u->nenrollments; i++)
        printf("course:      %s as %s\n", u->enrollments[i].lti_context_id,
               u->enrollments[i].roles ? u->enrollments[i].roles : "-");
    for (size_t i = 0; i < u->nbindings; i++)
        printf("grades:      link %s to %s\n", u->bindings[i].lti_resource_link_id,
               u->bindings[i].service_url);
}

int cli_cmd_user(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    const char *sub = argc > 2 ? argv[2] : NULL;
    struct arena ar = ARENA_INIT;
    struct store_user_info u;
    struct env e;
    int ret = 0;

    if (cli_parse_opts(argc, argv, 3, "config,db,json,consumer,user", 0, &o, &err) < 0)
        return cli_usage_error("user", "%s", err.msg);
    if (!sub || o.help || strcmp(sub, "--help") == 0) {
        fputs(user_usage, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    if (strcmp(sub, "show") != 0)
        return cli_usage_error("user", "unknown subcommand '%s'", sub);
    if (need(o.consumer, "--consumer KEY", "user show") || need(o.user, "--user ID", "user show"))
        return 2;
    if (env_open(&e, &o, true, false, &err) < 0 ||
        store_user_get(e.s, e.consumer.id, o.user, &ar, &u, &err) < 0)
        ret = cli_fail(&err);
    else if (o.json)
        print_json(user_json(&u));
    else
        user_print(&u);
    env_close(&e);
    arena_release(&ar);
    return ret;
}

/* The CSRF token of a session's forms, as web/session.c's csrf_token makes it. */
static void session_csrf(const unsigned char secret[32], char out[65])
{
    static const char label[] = "ltibadges form v1";
    unsigned char mac[64]; /* EVP_MAX_MD_SIZE */
    unsigned int len = 0;

    if (!util_hmac(util_md_sha256(), secret, 32, label, sizeof(label) - 1, mac, &len) || len < 32)
        BUG("HMAC-SHA256 failed");
    util_hex(out, mac, 32);
}

static json_t *session_json(int64_t id, const struct store_session *ss, const char *csrf)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "consumer_name", jstr(ss->consumer_name));
    json_object_set_new(o, "user", jstr(ss->lti_user_id));
    json_object_set_new(o, "context", jstr(ss->lti_context_id));
    json_object_set_new(o, "context_title", jstr(ss->context_title));
    json_object_set_new(o, "context_label", jstr(ss->context_label));
    json_object_set_new(o, "roles", jstr(ss->roles));
    json_object_set_new(o, "role_flags", json_integer(ss->role_flags));
    json_object_set_new(o, "mode", jstr(ss->mode));
    json_object_set_new(o, "return_url", jstr(ss->return_url));
    json_object_set_new(o, "document_target", jstr(ss->document_target));
    json_object_set_new(o, "locale", jstr(ss->locale));
    json_object_set_new(o, "frame_origin", jstr(ss->frame_origin));
    json_object_set_new(o, "created_at", json_integer(ss->created_at));
    json_object_set_new(o, "expires_at", json_integer(ss->expires_at));
    json_object_set_new(o, "csrf", json_string(csrf));
    return o;
}

int cli_cmd_session(int argc, char **argv)
{
    struct cli_opts o;
    struct err err = ERR_INIT;
    const char *sub = argc > 2 ? argv[2] : NULL;
    struct arena ar = ARENA_INIT;
    struct store_session ss;
    struct env e;
    const char *dash;
    unsigned char hash[32];
    char csrf[65];
    int64_t id = 0;
    size_t hexlen;
    int ret = 0;

    if (cli_parse_opts(argc, argv, 3, "config,db,json", 1, &o, &err) < 0)
        return cli_usage_error("session", "%s", err.msg);
    if (!sub || o.help || strcmp(sub, "--help") == 0) {
        fputs(session_usage, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    if (strcmp(sub, "show") != 0)
        return cli_usage_error("session", "unknown subcommand '%s'", sub);
    dash = o.npos == 1 ? strchr(o.pos[0], '-') : NULL;
    hexlen = dash ? strlen(dash + 1) : 0;
    if (!dash || hexlen != 64 || strspn(dash + 1, "0123456789abcdef") != 64 ||
        str_to_i64((struct str){ o.pos[0], (size_t)(dash - o.pos[0]) }, 1, INT64_MAX, &id) < 0)
        return cli_usage_error("session show", "TOKEN (ID-SECRET, 64 hex digits) is required");
    util_sha256(dash + 1, hexlen, hash);
    if (env_open(&e, &o, false, false, &err) < 0 ||
        store_session_get(e.s, id, hash, util_now(), &ar, &ss, &err) < 0) {
        if (err.code == ERR_NOTFOUND) {
            err_clear(&err);
            err_set(&err, ERR_NOTFOUND, "no live session has that token");
        }
        ret = cli_fail(&err);
    } else {
        session_csrf(ss.csrf_secret, csrf);
        if (o.json) {
            print_json(session_json(id, &ss, csrf));
        } else {
            char made[21], until[21];

            util_iso8601(ss.created_at, made);
            util_iso8601(ss.expires_at, until);
            printf("session:     %" PRId64 "\nconsumer:    %s\nuser:        %s\n"
                   "course:      %s\nroles:       %s\nmade:        %s\nexpires:     %s\n",
                   id, ss.consumer_name, ss.lti_user_id,
                   ss.lti_context_id ? ss.lti_context_id : "-", ss.roles ? ss.roles : "-", made,
                   until);
        }
    }
    env_close(&e);
    arena_release(&ar);
    return ret;
}
