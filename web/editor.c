/*
 * web/editor.c - the instructor's BadgeClass editor: create, edit, the
 * rule's dry run, archive, restore and delete.
 *
 * GET /badges/edit?s=...&b=SLUG shows the form (no b: a new badge of the
 * course); POST /badges/save (multipart, for the image) either checks the
 * rule ("dry run": who it would award now, from the facts stored) or saves
 * it, and saving awards those same learners at once (awards_backfill), so
 * what the dry run shows is what saving does. POST /badges/archive and
 * /badges/delete change a BadgeClass's life. Only the course's own
 * BadgeClasses are edited here; course-less ones are the operator's (CLI).
 *
 * The form shows only the chosen rule's fields: each rule is a radio
 * button with its fields beneath, and the stylesheet hides the fields of
 * the rules not chosen where the browser has :has() (every field shows
 * where it has not); the page's script also disables them, so they are not
 * posted. Saving reads only the chosen rule's fields whatever else comes.
 * Scores are typed and shown in percent (stored 0..1 as the LMS sends
 * them). Alignments are rows of fields, a few empty ones to fill without
 * the script, stored as the same JSON the CLI's 'NAME|URL|...' specs give.
 *
 * The image is one choice: keep the current one, the default one, or a
 * file. A file chosen is used whatever else is ticked (choosing it is the
 * clearer act); a file goes through image_for_badge, as `badge create --image`
 * does: a PNG is decoded with libpng (at most 256 KiB and 2048 x 2048); an
 * SVG is parsed with libxml2 and sanitized (image_svg_sanitize) before it
 * is stored, so what is served is clean.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"
#include "images/images.h"

/* learners listed by a dry run; past it the page says how many more */
#define DRYRUN_SHOW 200
/* empty alignment rows under the filled ones: what a form without the script can add at once */
#define ALIGNMENT_EMPTY_ROWS 2
/* the alignment rows a post is read for (5 fields each: what the form's cap allows) */
#define ALIGNMENT_ROWS_READ (LIMIT_FORM_PARAMS / AWARDS_ALIGNMENT_FIELDS)

/* The form as posted (or as stored), kept as text to show it again. */
struct badge_form {
    const char *slug; /* NULL: a new badge */
    const char *name, *description, *criteria_url, *criteria, *kind, *link, *group;
    const char *threshold, *passback_score; /* in percent, as typed or shown */
    const char *count, *mode, *expires_days, *tags, *issuing_component;
    const char *image_choice; /* "keep", "default", "upload"; NULL: keep (a new badge: default) */
    struct awards_alignment *al; /* the filled rows */
    size_t nal;
    bool al_more; /* more filled rows than a badge may have */
    bool passback, revoke;
    const struct store_badge *cur; /* the stored badge being edited */
};

/* The form's names of an alignment row's fields, in awards_alignment's order. */
static const char *const al_names[AWARDS_ALIGNMENT_FIELDS] = { "al_name", "al_url",
                                                               "al_description", "al_framework",
                                                               "al_code" };

/* The course's link `id`, or NULL. */
static const struct store_link *course_link(const struct store_course_admin *c, const char *id)
{
    for (size_t i = 0; id && i < c->nlinks; i++) {
        if (strcmp(c->links[i].lti_link_id, id) == 0)
            return &c->links[i];
    }
    return NULL;
}

/* The points possible of the course's link `id` (0: unknown, or any activity). */
static double link_points(const struct store_course_admin *c, const char *id)
{
    const struct store_link *l = course_link(c, id);

    return l ? l->points_possible : 0;
}

/* The form of a stored badge. */
static void form_from_badge(struct req *r, const struct store_badge *b, struct badge_form *f)
{
    struct buf t = BUF_INIT(LIMIT_BADGE_TEXT_LEN * 2);

    memset(f, 0, sizeof(*f));
    f->cur = b;
    f->slug = b->slug;
    f->name = b->name;
    f->description = b->description;
    f->criteria_url = b->criteria_url;
    f->criteria = b->criteria_narrative;
    f->kind = store_rule_name(b->rule.kind);
    f->threshold = b->rule.kind == RULE_SCORE ? web_percent_value(r, b->rule.threshold) : NULL;
    f->link = b->rule.resource_link;
    f->group = b->rule.group;
    f->count = b->rule.kind == RULE_COUNT ? web_fmt(r, "%lld", (long long)b->rule.count) : NULL;
    f->mode = b->mode;
    f->expires_days = b->expires_days ? web_fmt(r, "%lld", (long long)b->expires_days) : NULL;
    awards_tags_text(b->tags, &t);
    f->tags = t.ptr ? arena_memdupz(&r->arena, t.ptr, t.len) : NULL;
    buf_release(&t);
    f->al = arena_alloc(&r->arena, st_mult(LIMIT_BADGE_ALIGNMENTS, sizeof(*f->al)));
    f->nal = awards_alignments_rows(b->alignments, f->al, LIMIT_BADGE_ALIGNMENTS, &r->arena);
    f->issuing_component = b->issuing_component;
    f->passback = b->passback;
    f->passback_score = web_percent_value(r, b->passback ? b->passback_score : 1.0);
    f->revoke = b->revoke_on_withdrawn;
}

static const char *field(struct req *r, const char *name)
{
    struct str v = str_trim(web_post_get(r, name));

    return v.len ? arena_strz(&r->arena, v) : NULL;
}

/*
 * The alignment rows posted (al_name_0, al_url_0, ... al_code_0, al_name_1,
 * ...), in the order of their numbers; rows left wholly empty are skipped.
 * The fields are found in one pass over the post: a row number is at most
 * ALIGNMENT_ROWS_READ, what a post within the form's cap can fill.
 */
static void alignments_from_post(struct req *r, struct badge_form *f)
{
    struct awards_alignment *rows =
        arena_alloc(&r->arena, st_mult(ALIGNMENT_ROWS_READ, sizeof(*rows)));

    memset(rows, 0, st_mult(ALIGNMENT_ROWS_READ, sizeof(*rows)));
    f->al = arena_alloc(&r->arena, st_mult(LIMIT_BADGE_ALIGNMENTS, sizeof(*f->al)));
    for (size_t i = 0; i < r->post.n; i++) {
        const struct web_field *w = &r->post.fields[i];

        for (size_t k = 0; k < AWARDS_ALIGNMENT_FIELDS; k++) {
            size_t len = strlen(al_names[k]);
            int64_t row;
            struct str v;

            if (strncmp(w->name, al_names[k], len) != 0 || w->name[len] != '_' ||
                str_to_i64(str_from_cstr(w->name + len + 1), 0, ALIGNMENT_ROWS_READ - 1, &row) < 0)
                continue;
            v = str_trim(w->value.ptr ? buf_view(&w->value) : STR_LIT(""));
            if (v.len && !rows[row].field[k])
                rows[row].field[k] = arena_strz(&r->arena, v);
        }
    }
    for (size_t i = 0; i < ALIGNMENT_ROWS_READ; i++) {
        bool filled = false;

        for (size_t k = 0; k < AWARDS_ALIGNMENT_FIELDS; k++)
            filled = filled || rows[i].field[k];
        if (!filled)
            continue;
        if (f->nal == LIMIT_BADGE_ALIGNMENTS) {
            f->al_more = true;
            break;
        }
        f->al[f->nal++] = rows[i];
    }
}

static void form_from_post(struct req *r, struct badge_form *f)
{
    memset(f, 0, sizeof(*f));
    f->slug = field(r, "b");
    f->name = field(r, "name");
    f->description = field(r, "description");
    f->criteria_url = field(r, "criteria_url");
    f->criteria = field(r, "criteria");
    f->kind = field(r, "kind");
    f->threshold = field(r, "threshold_percent");
    f->link = field(r, "link");
    f->group = field(r, "group");
    f->count = field(r, "count");
    f->mode = field(r, "mode");
    f->expires_days = field(r, "expires_days");
    f->tags = field(r, "tags");
    alignments_from_post(r, f);
    f->issuing_component = field(r, "issuing_component");
    f->passback = str_eq_cstr(web_post_get(r, "passback"), "1");
    f->passback_score = field(r, "passback_percent");
    f->revoke = str_eq_cstr(web_post_get(r, "revoke"), "1");
    f->image_choice = field(r, "image_choice");
}

/* Splits `text` at `sep` into trimmed, non-empty parts (in the arena); at most `max`. */
static size_t split(struct req *r, const char *text, char sep, const char **out, size_t max,
                    bool *more)
{
    size_t n = 0;
    const char *p = text;

    *more = false;
    while (p && *p) {
        const char *e = strchr(p, sep);
        struct str part = str_trim((struct str){ p, e ? (size_t)(e - p) : strlen(p) });

        if (part.len) {
            if (n == max) {
                *more = true;
                break;
            }
            out[n++] = arena_strz(&r->arena, part);
        }
        p = e ? e + 1 : NULL;
    }
    return n;
}

static bool one_line(const char *v)
{
    return !v || !strpbrk(v, "\r\n\t");
}

/* The alignment rows as the JSON the store keeps (in the arena). */
static int alignments_check(struct req *r, const struct badge_form *f, const char **out,
                            struct err *err)
{
    char *json;
    size_t bad = 0;

    if (f->al_more)
        return err_set(err, ERR_INVALID, _("a badge has at most %d alignments"),
                       LIMIT_BADGE_ALIGNMENTS);
    for (size_t i = 0; i < f->nal; i++) {
        for (size_t k = 0; k < AWARDS_ALIGNMENT_FIELDS; k++) {
            if (!one_line(f->al[i].field[k]))
                return err_set(err, ERR_INVALID, _("alignment %zu: each field is one line"), i + 1);
        }
    }
    if (awards_alignments_rows_json(f->al, f->nal, &json, &bad, err) < 0) {
        err_clear(err);
        return err_set(err, ERR_INVALID,
                       _("alignment %zu needs a name and an address starting with https:// or "
                         "http://"),
                       bad + 1);
    }
    *out = arena_strz(&r->arena, str_from_cstr(json));
    free(json);
    return 0;
}

/* Checks the form and fills `nb` (strings borrowed from the form and the arena). */
static int form_check(struct req *r, const struct web_sess *ws, const struct store_course_admin *c,
                      const struct badge_form *f, struct store_badge_new *nb, struct err *err)
{
    const char *tags[LIMIT_BADGE_TAGS];
    size_t nt;
    bool more;
    int k;
    char *json;

    memset(nb, 0, sizeof(*nb));
    nb->consumer_id = ws->s.consumer_id;
    nb->lti_context_id = ws->s.lti_context_id;
    if (!f->name || awards_text_ok(f->name, LIMIT_BADGE_NAME_LEN, "name", err) < 0 ||
        !one_line(f->name)) {
        err_clear(err);
        return err_set(err, ERR_INVALID, _("a badge needs a name of one line, at most %d bytes"),
                       LIMIT_BADGE_NAME_LEN);
    }
    if (!f->description || awards_text_ok(f->description, LIMIT_BADGE_TEXT_LEN, "d", err) < 0) {
        err_clear(err);
        return err_set(err, ERR_INVALID, _("a badge needs a description of at most %d bytes"),
                       LIMIT_BADGE_TEXT_LEN);
    }
    if (f->criteria_url && (!awards_http_url(f->criteria_url) || !one_line(f->criteria_url) ||
                            awards_text_ok(f->criteria_url, LIMIT_LTI_URL_LEN, "u", err) < 0)) {
        err_clear(err);
        return err_set(err, ERR_INVALID, "%s",
                       _("the criteria link must be an address starting with https:// or http://"));
    }
    if (awards_text_ok(f->criteria, LIMIT_BADGE_TEXT_LEN, "c", err) < 0) {
        err_clear(err);
        return err_set(err, ERR_INVALID, _("the criteria text is at most %d bytes"),
                       LIMIT_BADGE_TEXT_LEN);
    }
    k = store_rule_parse_kind(f->kind);
    if (k < 0)
        return err_set(err, ERR_INVALID, "%s", _("choose how the badge is earned"));
    nb->rule.kind = (enum store_rule_kind)k;
    switch (nb->rule.kind) {
    case RULE_SCORE:
        if (!f->threshold ||
            web_percent_parse(str_from_cstr(f->threshold), &nb->rule.threshold) < 0)
            return err_set(err, ERR_INVALID, "%s",
                           _("the score needed is a percent from 0 to 100, such as 80"));
        if (f->link && !course_link(c, f->link))
            return err_set(err, ERR_INVALID, "%s", _("that activity is not part of this course"));
        nb->rule.resource_link = f->link;
        break;
    case RULE_GROUP:
        if (!f->group || !one_line(f->group) ||
            awards_text_ok(f->group, LIMIT_GROUP_NAME_LEN, "g", err) < 0) {
            err_clear(err);
            return err_set(err, ERR_INVALID, "%s", _("give the name of the course group"));
        }
        nb->rule.group = f->group;
        break;
    case RULE_COUNT:
        if (!f->count || str_to_i64(str_from_cstr(f->count), 1, 100000, &nb->rule.count) < 0)
            return err_set(err, ERR_INVALID, "%s",
                           _("the number of courses is a whole number from 1 to 100000"));
        break;
    default:
        break;
    }
    if (f->mode &&
        (!one_line(f->mode) || awards_text_ok(f->mode, LIMIT_LTI_ID_LEN, "m", err) < 0)) {
        err_clear(err);
        return err_set(err, ERR_INVALID, _("the track is one line of at most %d bytes"),
                       LIMIT_LTI_ID_LEN);
    }
    nb->mode = f->mode;
    if (f->expires_days && str_to_i64(str_from_cstr(f->expires_days), 1, LIMIT_BADGE_EXPIRES_DAYS,
                                      &nb->expires_days) < 0)
        return err_set(err, ERR_INVALID,
                       _("expiry is a whole number of days from 1 to %d, or empty for never"),
                       LIMIT_BADGE_EXPIRES_DAYS);
    if (f->issuing_component &&
        (!one_line(f->issuing_component) ||
         awards_text_ok(f->issuing_component, LIMIT_LTI_ID_LEN, "i", err) < 0)) {
        err_clear(err);
        return err_set(err, ERR_INVALID, _("the issuing component is one line of at most %d bytes"),
                       LIMIT_LTI_ID_LEN);
    }
    nb->issuing_component = f->issuing_component;
    nt = split(r, f->tags, ',', tags, LIMIT_BADGE_TAGS, &more);
    if (more || awards_tags_json(tags, nt, &json, err) < 0) {
        err_clear(err);
        return err_set(err, ERR_INVALID,
                       _("tags are separated by commas: at most %d, each at most 255 bytes"),
                       LIMIT_BADGE_TAGS);
    }
    nb->tags = arena_strz(&r->arena, str_from_cstr(json));
    free(json);
    if (alignments_check(r, f, &nb->alignments, err) < 0)
        return -1;
    if (f->passback) {
        if (!f->passback_score ||
            web_percent_parse(str_from_cstr(f->passback_score), &nb->passback_score) < 0)
            return err_set(err, ERR_INVALID, "%s",
                           _("the grade sent to the course is a percent from 0 to 100"));
        nb->has_passback_score = true;
    } else {
        nb->passback_off = true;
    }
    nb->revoke_on_withdrawn = f->revoke;
    nb->name = f->name;
    nb->description = f->description;
    nb->criteria_url = f->criteria_url;
    nb->criteria_narrative = f->criteria;
    /* the consumer's backend, else [awards] backend (store_badge_new) */
    nb->backend = NULL;
    nb->default_backend = r->web->cfg.awards ? awards_default_backend(r->web->cfg.awards) : NULL;
    return 0;
}

/* Any refusal of an uploaded image, in the words a person needs (413 when it was too big). */
static int image_refused(struct err *err)
{
    enum err_code code = err->code == ERR_TOOBIG ? ERR_TOOBIG : ERR_INVALID;

    if (strcmp(err->msg, IMAGE_NEITHER) == 0) {
        /* the cause first: a file of another kind (a GIF, a JPEG, text) */
        err_clear(err);
        return err_set(err, code,
                       _("the image is neither PNG nor SVG: it must be a PNG or an SVG file of at "
                         "most %d KiB and %d by %d pixels"),
                       LIMIT_BADGE_IMAGE_BYTES / 1024, LIMIT_BADGE_IMAGE_PIXELS,
                       LIMIT_BADGE_IMAGE_PIXELS);
    }
    err_clear(err);
    return err_set(
        err, code,
        _("the image must be a PNG or an SVG file of at most %d KiB and %d by %d pixels"),
        LIMIT_BADGE_IMAGE_BYTES / 1024, LIMIT_BADGE_IMAGE_PIXELS, LIMIT_BADGE_IMAGE_PIXELS);
}

/*
 * The image: a file chosen, made a badge image by the rule every way in
 * shares (image_for_badge: a PNG checked, an SVG sanitized and checked);
 * else the default when chosen (or for a new badge); else none (an edit
 * keeps the stored image). *cleaned: parts the sanitizer removed.
 */
static int form_image(struct req *r, const struct badge_form *f, struct store_badge_new *nb,
                      size_t *cleaned, struct err *err)
{
    const struct web_field *img = web_post_field(r, "image");

    *cleaned = 0;
    if (img && img->value.len) {
        struct buf out = BUF_INIT(LIMIT_BADGE_IMAGE_BYTES);

        if (image_for_badge((const unsigned char *)img->value.ptr, img->value.len, &out,
                            &nb->image_type, cleaned, err) < 0) {
            buf_release(&out);
            return image_refused(err);
        }
        nb->image = (const unsigned char *)arena_memdupz(&r->arena, out.ptr, out.len);
        nb->image_len = out.len;
        buf_release(&out);
        return 0;
    }
    if (f->image_choice && strcmp(f->image_choice, "upload") == 0)
        return err_set(err, ERR_INVALID, "%s", _("choose the image file to upload"));
    if ((f->image_choice && strcmp(f->image_choice, "default") == 0) || !f->cur) {
        nb->image = (const unsigned char *)awards_default_image_svg;
        nb->image_len = strlen(awards_default_image_svg);
        nb->image_type = "image/svg+xml";
    }
    return 0;
}

/* The rule's dry run, as list items: who it would award now. */
struct dryrun {
    bool done;
    struct web_tpl_var *items;
    size_t n;
    bool more;
};

static int dry_run(struct req *r, const struct web_sess *ws, const struct store_course_admin *co,
                   const struct badge_form *f, const struct store_badge_new *nb, struct dryrun *d,
                   struct err *err)
{
    struct store_candidate *c;
    size_t n;

    if (!r->web->cfg.awards)
        return err_set(err, ERR_UNAVAILABLE, "%s", _("the award engine is not running"));
    if (awards_rule_candidates(r->web->cfg.awards, ws->s.consumer_id, ws->s.context_id,
                               f->cur ? f->cur->id : 0, nb->mode, &nb->rule, DRYRUN_SHOW + 1,
                               &r->arena, &c, &n, err) < 0)
        return -1;
    d->done = true;
    d->more = n > DRYRUN_SHOW;
    if (d->more)
        n = DRYRUN_SHOW;
    d->items = arena_alloc(&r->arena, st_mult(n * 3 + 1, sizeof(*d->items)));
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;

        if (c[i].has_score && c[i].link_title)
            /* the points of the rule's activity, where the score must be */
            why = web_fmt(r, _("score %s on \xe2\x80\x9c%s\xe2\x80\x9d"),
                          web_grade(r, c[i].score, link_points(co, nb->rule.resource_link)),
                          c[i].link_title);
        else if (c[i].completed)
            why = web_fmt(r, _("%lld courses completed"), (long long)c[i].completed);
        d->items[d->n++] = web_tpl_text("who", c[i].name);
        d->items[d->n++] = web_tpl_text("uid", c[i].lti_user_id);
        d->items[d->n++] = web_tpl_text("why", why);
    }
    return 0;
}

static const char editor_tpl[] =
    "{{#error}}<p class=\"error\" role=\"alert\" id=\"form-error\">{{error}}</p>{{/error}}"
    "{{#dry}}<section aria-labelledby=\"dry-h\" class=\"dryrun\"><h2 id=\"dry-h\">"
    "{{@Who this rule would award now}}</h2>"
    "{{#off}}<p>{{@Badges are turned off for this course: saving awards nobody until they are turned on.}}</p>{{/off}}"
    "{{#archived}}<p>{{@This badge is archived: saving awards nobody until it is offered again.}}</p>{{/archived}}"
    "{{#manual}}<p>{{@A badge earned only by hand is awarded from the Awards page.}}</p>{{/manual}}"
    "{{^manual}}{{^dry_list}}<p>{{@Nobody meets this rule yet, from what the course has sent so far.}}</p>{{/dry_list}}"
    "{{#any_dry}}{{#live}}<p>{{@Saving the badge awards it at once to these learners, who already meet its rule:}}</p>{{/live}}{{^live}}<p>{{@These learners already meet its rule:}}</p>{{/live}}<ul class=\"people\">{{#dry_list}}<li>{{who}} <span class=\"hint\">({{uid}})"
    "{{#why}} \xe2\x80\x94 {{why}}{{/why}}</span></li>{{/dry_list}}</ul>"
    "{{#dry_more}}<p>{{@And more: only the first 200 are listed.}}</p>{{/dry_more}}{{/any_dry}}"
    "{{/manual}}</section>{{/dry}}"
    "<form method=\"post\" action=\"{{save_action}}\" enctype=\"multipart/form-data\" "
    "class=\"edit\">"
    "<input type=\"hidden\" name=\"s\" value=\"{{s}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
    "{{#slug}}<input type=\"hidden\" name=\"b\" value=\"{{slug}}\">{{/slug}}"
    "<fieldset><legend>{{@The badge}}</legend>"
    "<p><label for=\"name\">{{@Name}}</label>"
    "<input id=\"name\" name=\"name\" type=\"text\" maxlength=\"255\" required "
    "value=\"{{bname}}\"></p>"
    "<p><label for=\"description\">{{@Description}}</label>"
    "<textarea id=\"description\" name=\"description\" rows=\"3\" required>{{description}}"
    "</textarea></p>"
    /* one choice of image: the current one, the default one, or a file */
    "<fieldset class=\"choice\"><legend>{{@Image}}</legend>"
    "{{#img}}<p><input type=\"radio\" id=\"image-keep\" name=\"image_choice\" value=\"keep\""
    "{{#ic_keep}} checked{{/ic_keep}}> <label for=\"image-keep\" class=\"inline\">"
    "{{@Keep the current image}}</label> <img src=\"{{img}}\" alt=\"\" width=\"32\" "
    "height=\"32\"></p>{{/img}}"
    "<p><input type=\"radio\" id=\"image-default\" name=\"image_choice\" value=\"default\""
    "{{#ic_default}} checked{{/ic_default}}> <label for=\"image-default\" class=\"inline\">"
    "{{@Use the default image}}</label> <img src=\"{{default_img}}\" alt=\"\" width=\"32\" "
    "height=\"32\"></p>"
    "<p><input type=\"radio\" id=\"image-upload\" name=\"image_choice\" value=\"upload\""
    "{{#ic_upload}} checked{{/ic_upload}}> <label for=\"image-upload\" class=\"inline\">"
    "{{@Upload an image}}</label></p>"
    "<div class=\"sub\"><p><label for=\"image\">{{@Image: a PNG or SVG file, at most 256 KiB and 2048 by 2048 pixels}}</label>"
    "<input id=\"image\" name=\"image\" type=\"file\" accept=\"image/png,image/svg+xml,.png,.svg\" "
    "aria-describedby=\"image-hint\"></p>"
    "<p id=\"image-hint\" class=\"hint\">{{@A file chosen here is used. Anything that could run code is removed from an SVG.}}</p></div>"
    "</fieldset>"
    "</fieldset>"
    /* each rule's fields beneath its radio button: the stylesheet and the script hide the others'
     */
    "<fieldset class=\"rules\"><legend>{{@How it is earned}}</legend>"
    "<div class=\"rule\"><input type=\"radio\" id=\"kind-score\" name=\"kind\" value=\"score\""
    "{{#k_score}} checked{{/k_score}}> <label for=\"kind-score\" class=\"inline\">"
    "{{@A score on an activity}}</label>"
    "<div class=\"rule-fields sub\" id=\"rule-score\">"
    "<p><label for=\"threshold\">{{@Score needed, in percent}}</label>"
    "<input id=\"threshold\" name=\"threshold_percent\" type=\"number\" min=\"0\" max=\"100\" "
    "step=\"any\" inputmode=\"decimal\" value=\"{{threshold}}\"{{#points_hint}} "
    "aria-describedby=\"threshold-hint\"{{/points_hint}}> %</p>"
    "{{#points_hint}}<p id=\"threshold-hint\" class=\"hint\">{{points_hint}}</p>{{/points_hint}}"
    "<p><label for=\"link\">{{@On the activity}}</label>"
    "<select id=\"link\" name=\"link\"><option value=\"\">{{@any graded activity}}</option>"
    "{{#links}}<option value=\"{{id}}\"{{#sel}} selected{{/sel}}>{{title}}</option>{{/links}}"
    "</select></p></div></div>"
    "<div class=\"rule\"><input type=\"radio\" id=\"kind-completion\" name=\"kind\" "
    "value=\"completion\"{{#k_completion}} checked{{/k_completion}}> "
    "<label for=\"kind-completion\" class=\"inline\">{{@Completing the course (the pass mark)}}"
    "</label></div>"
    "<div class=\"rule\"><input type=\"radio\" id=\"kind-enrollment\" name=\"kind\" "
    "value=\"enrollment\"{{#k_enrollment}} checked{{/k_enrollment}}> "
    "<label for=\"kind-enrollment\" class=\"inline\">{{@Opening the tool in the course}}</label>"
    "</div>"
    "<div class=\"rule\"><input type=\"radio\" id=\"kind-manual\" name=\"kind\" value=\"manual\""
    "{{#k_manual}} checked{{/k_manual}}> <label for=\"kind-manual\" class=\"inline\">"
    "{{@Only by hand}}</label></div>"
    "<div class=\"rule\"><input type=\"radio\" id=\"kind-count\" name=\"kind\" value=\"count\""
    "{{#k_count}} checked{{/k_count}}> <label for=\"kind-count\" class=\"inline\">"
    "{{@Completing a number of courses}}</label>"
    "<div class=\"rule-fields sub\" id=\"rule-count\">"
    "<p><label for=\"count\">{{@Courses to complete}}</label>"
    "<input id=\"count\" name=\"count\" type=\"number\" min=\"1\" max=\"100000\" "
    "value=\"{{count}}\"></p></div></div>"
    "<div class=\"rule\"><input type=\"radio\" id=\"kind-group\" name=\"kind\" value=\"group\""
    "{{#k_group}} checked{{/k_group}}> <label for=\"kind-group\" class=\"inline\">"
    "{{@Completing every course of a group}}</label>"
    "<div class=\"rule-fields sub\" id=\"rule-group\">"
    "<p><label for=\"group\">{{@Course group}}</label>"
    "<input id=\"group\" name=\"group\" type=\"text\" maxlength=\"255\" value=\"{{group}}\"></p>"
    "</div></div>"
    "<p><label for=\"mode\">{{@Only for the track (empty: every learner)}}</label>"
    "<input id=\"mode\" name=\"mode\" type=\"text\" maxlength=\"255\" value=\"{{bmode}}\"></p>"
    "</fieldset>"
    "<fieldset><legend>{{@Criteria}}</legend>"
    "<p><label for=\"criteria\">{{@What a learner does to earn it}}</label>"
    "<textarea id=\"criteria\" name=\"criteria\" rows=\"3\">{{criteria}}</textarea></p>"
    "<p><label for=\"criteria_url\">{{@A page describing the criteria (optional)}}</label>"
    "<input id=\"criteria_url\" name=\"criteria_url\" type=\"url\" value=\"{{criteria_url}}\">"
    "</p></fieldset>"
    "<fieldset><legend>{{@More}}</legend>"
    "<p><label for=\"expires_days\">{{@Expires after this many days (empty: never)}}</label>"
    "<input id=\"expires_days\" name=\"expires_days\" type=\"number\" min=\"1\" max=\"36500\" "
    "value=\"{{expires_days}}\"></p>"
    "<p><label for=\"tags\">{{@Tags, separated by commas}}</label>"
    "<input id=\"tags\" name=\"tags\" type=\"text\" value=\"{{tags}}\"></p>"
    "<p><label for=\"issuing_component\">{{@Issuing component (optional)}}</label>"
    "<input id=\"issuing_component\" name=\"issuing_component\" type=\"text\" maxlength=\"255\" "
    "value=\"{{issuing_component}}\"></p>"
    "<p><input type=\"checkbox\" id=\"passback\" name=\"passback\" value=\"1\"{{#passback}} "
    "checked{{/passback}}> <label for=\"passback\" class=\"inline\">{{@When issued, send a grade to the course}}</label></p>"
    "<p><label for=\"passback_score\">{{@That grade, in percent}}</label>"
    "<input id=\"passback_score\" name=\"passback_percent\" type=\"number\" min=\"0\" "
    "max=\"100\" step=\"any\" inputmode=\"decimal\" value=\"{{passback_score}}\"> %</p>"
    "<p><input type=\"checkbox\" id=\"revoke\" name=\"revoke\" value=\"1\"{{#revoke}} "
    "checked{{/revoke}}> <label for=\"revoke\" class=\"inline\">{{@Revoke it when the grade that earned it is withdrawn or lowered}}</label></p>"
    "</fieldset>"
    /* alignments: rows of fields, a few empty ones; the script adds and removes rows */
    "<details class=\"aligns\" id=\"aligns\"{{#any_al}} open{{/any_al}}>"
    "<summary>{{@Alignments to standards}}{{#any_al}} ({{nal}}){{/any_al}}</summary>"
    "<p class=\"hint\" id=\"al-hint\">{{@A standard or competency the badge is aligned with: its name and an address starting with https:// or http:// are needed, the rest is optional. Empty rows are left out.}}</p>"
    "<div class=\"al-rows\" data-max=\"{{al_max}}\">"
    "{{#al_rows}}<fieldset class=\"align\"><legend>{{@Alignment {n}}}</legend>"
    "<div class=\"al-grid\"><p><label for=\"al_name_{{i}}\">{{@Name}}</label>"
    "<input id=\"al_name_{{i}}\" name=\"al_name_{{i}}\" type=\"text\" value=\"{{an}}\"></p>"
    "<p><label for=\"al_url_{{i}}\">{{@Address (URL)}}</label>"
    "<input id=\"al_url_{{i}}\" name=\"al_url_{{i}}\" type=\"url\" value=\"{{au}}\"></p>"
    "<p><label for=\"al_description_{{i}}\">{{@Description}}</label>"
    "<input id=\"al_description_{{i}}\" name=\"al_description_{{i}}\" type=\"text\" "
    "value=\"{{ad}}\"></p>"
    "<p><label for=\"al_framework_{{i}}\">{{@Framework}}</label>"
    "<input id=\"al_framework_{{i}}\" name=\"al_framework_{{i}}\" type=\"text\" "
    "value=\"{{af}}\"></p>"
    "<p><label for=\"al_code_{{i}}\">{{@Code}}</label>"
    "<input id=\"al_code_{{i}}\" name=\"al_code_{{i}}\" type=\"text\" value=\"{{ac}}\"></p></div>"
    "<p class=\"al-remove\" hidden><button type=\"button\" class=\"secondary small\">"
    "{{@Remove this alignment}}</button></p></fieldset>{{/al_rows}}</div>"
    "<p class=\"al-add\" hidden><button type=\"button\" class=\"secondary\">"
    "{{@Add an alignment}}</button></p></details>"
    "<p class=\"actions\"><button type=\"submit\" name=\"do\" value=\"dryrun\" class=\"secondary\">"
    "{{@Check who would earn it now}}</button> "
    "<button type=\"submit\" name=\"do\" value=\"save\">{{@Save the badge}}</button></p></form>"
    "{{#slug}}<section aria-labelledby=\"life-h\"><h2 id=\"life-h\">{{@Retire the badge}}</h2>"
    "<form method=\"post\" action=\"{{archive_action}}\">"
    "<input type=\"hidden\" name=\"s\" value=\"{{s}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
    "<input type=\"hidden\" name=\"b\" value=\"{{slug}}\">"
    "{{#archived}}<p>{{@This badge is archived: nobody can earn it.}}</p>"
    "<p><button type=\"submit\" name=\"archive\" value=\"0\">{{@Offer it again}}</button></p>"
    "{{/archived}}{{^archived}}<p>{{@Archiving keeps the badge with those who earned it; nobody new can earn it.}}</p><p><button type=\"submit\" name=\"archive\" value=\"1\">"
    "{{@Archive the badge}}</button></p>{{/archived}}</form>"
    "{{#deletable}}<form method=\"post\" action=\"{{delete_action}}\">"
    "<input type=\"hidden\" name=\"s\" value=\"{{s}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
    "<input type=\"hidden\" name=\"b\" value=\"{{slug}}\">"
    "<p>{{@Nobody was ever awarded this badge, so it can be deleted.}}</p>"
    "<p><button type=\"submit\" class=\"danger\" data-confirm=\"{{@Delete this badge for good?}}\">{{@Delete the badge}}</button></p></form>{{/deletable}}"
    "{{^deletable}}<p class=\"hint\">{{@A badge that was awarded cannot be deleted, only archived.}}</p>{{/deletable}}</section>{{/slug}}";

#define EDITOR_VARS 56

/* The alignment rows to show: the filled ones, then a few empty ones (within the limit). */
static struct web_tpl_var al_rows(struct req *r, const struct badge_form *f)
{
    enum { W = 7 };
    size_t rows = f->nal + ALIGNMENT_EMPTY_ROWS, n = 0;
    struct web_tpl_var *v;

    if (rows > LIMIT_BADGE_ALIGNMENTS)
        rows = f->nal > LIMIT_BADGE_ALIGNMENTS ? f->nal : LIMIT_BADGE_ALIGNMENTS;
    v = arena_alloc(&r->arena, st_mult(rows, W * sizeof(*v)));
    for (size_t i = 0; i < rows; i++) {
        static const char *const keys[AWARDS_ALIGNMENT_FIELDS] = { "an", "au", "ad", "af", "ac" };

        v[n++] = web_tpl_text("i", web_fmt(r, "%zu", i));
        v[n++] = web_tpl_text("n", web_fmt(r, "%zu", i + 1));
        for (size_t k = 0; k < AWARDS_ALIGNMENT_FIELDS; k++)
            v[n++] = web_tpl_text(keys[k], i < f->nal ? f->al[i].field[k] : NULL);
    }
    return web_tpl_list("al_rows", v, W, rows);
}

/* What the score needed is in points on the rule's activity, when the LMS sent them; or NULL. */
static const char *points_hint(struct req *r, const struct store_course_admin *c,
                               const struct badge_form *f)
{
    const struct store_link *l = course_link(c, f->link);
    double t;

    if (!l || l->points_possible <= 0 || !f->threshold ||
        web_percent_parse(str_from_cstr(f->threshold), &t) < 0)
        return NULL;
    return web_fmt(r, _("On \xe2\x80\x9c%s\xe2\x80\x9d that is %s."),
                   l->title && l->title[0] ? l->title : l->lti_link_id,
                   web_grade(r, t, l->points_possible));
}

static void reply_editor(struct req *r, struct web_sess *ws, unsigned status,
                         const struct store_course_admin *c, const struct badge_form *f,
                         const char *error, const struct dryrun *d, bool deletable)
{
    static const char *const kinds[] = { "score",  "completion", "enrollment",
                                         "manual", "count",      "group" };
    static const char *const kind_vars[] = { "k_score",  "k_completion", "k_enrollment",
                                             "k_manual", "k_count",      "k_group" };
    struct web_tpl_var v[EDITOR_VARS], *lv;
    size_t n = 0, nl = 0;
    const char *kind = f->kind ? f->kind : "score";
    const char *choice = f->image_choice ? f->image_choice : f->cur ? "keep" : "default";

    lv = arena_alloc(&r->arena, st_mult(c->nlinks * 3 + 1, sizeof(*lv)));
    for (size_t i = 0; i < c->nlinks; i++) {
        const struct store_link *l = &c->links[i];
        const char *title = l->title && l->title[0] ? l->title : l->lti_link_id;

        lv[nl++] = web_tpl_text("id", l->lti_link_id);
        /* TRANSLATORS: an activity and its points possible, "Quiz 1 (10 points)" */
        lv[nl++] = web_tpl_text("title", l->points_possible > 0
                                             ? web_fmt(r, _("%s (%s points)"), title,
                                                       web_number(r, l->points_possible, 2))
                                             : title);
        lv[nl++] =
            web_tpl_text("sel", f->link && strcmp(f->link, l->lti_link_id) == 0 ? "1" : NULL);
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        v[n++] = web_tpl_text(kind_vars[i], strcmp(kind, kinds[i]) == 0 ? "1" : NULL);
    v[n++] = web_tpl_text("error", error);
    v[n++] = web_tpl_text("dry", d && d->done ? "1" : NULL);
    v[n++] = web_tpl_text("off", d && d->done && !c->badges_enabled ? "1" : NULL);
    v[n++] =
        web_tpl_text("live", c->badges_enabled && !(f->cur && f->cur->archived_at) ? "1" : NULL);
    v[n++] = web_tpl_text("manual", strcmp(kind, "manual") == 0 ? "1" : NULL);
    v[n++] = web_tpl_list("dry_list", d ? d->items : NULL, 3, d ? d->n / 3 : 0);
    v[n++] = web_tpl_text("any_dry", d && d->n ? "1" : NULL);
    v[n++] = web_tpl_text("dry_more", d && d->more ? "1" : NULL);
    v[n++] = web_tpl_url("save_action", web_fmt(r, "%s/badges/save", r->web->public_path));
    v[n++] = web_tpl_url("archive_action", web_fmt(r, "%s/badges/archive", r->web->public_path));
    v[n++] = web_tpl_url("delete_action", web_fmt(r, "%s/badges/delete", r->web->public_path));
    v[n++] = web_tpl_text("slug", f->slug);
    v[n++] = web_tpl_text("bname", f->name);
    v[n++] = web_tpl_text("description", f->description);
    v[n++] = web_tpl_url(
        "img",
        f->cur ? web_fmt(r, "%s/ob/v2/badges/%s/image", r->web->public_path, f->cur->slug) : NULL);
    v[n++] =
        web_tpl_url("default_img", web_fmt(r, "%s/static/default-badge.svg", r->web->public_path));
    v[n++] = web_tpl_text("ic_keep", strcmp(choice, "keep") == 0 ? "1" : NULL);
    v[n++] = web_tpl_text("ic_default", strcmp(choice, "default") == 0 ? "1" : NULL);
    v[n++] = web_tpl_text("ic_upload", strcmp(choice, "upload") == 0 ? "1" : NULL);
    v[n++] = web_tpl_text("threshold", f->threshold ? f->threshold : "80");
    v[n++] = web_tpl_text("points_hint", points_hint(r, c, f));
    v[n++] = web_tpl_list("links", lv, 3, nl / 3);
    v[n++] = web_tpl_text("count", f->count);
    v[n++] = web_tpl_text("group", f->group);
    v[n++] = web_tpl_text("bmode", f->mode);
    v[n++] = web_tpl_text("criteria", f->criteria);
    v[n++] = web_tpl_text("criteria_url", f->criteria_url);
    v[n++] = web_tpl_text("expires_days", f->expires_days);
    v[n++] = web_tpl_text("tags", f->tags);
    v[n++] = web_tpl_text("any_al", f->nal ? "1" : NULL);
    v[n++] = web_tpl_text("nal", web_fmt(r, "%zu", f->nal));
    v[n++] = web_tpl_text("al_max", web_fmt(r, "%d", LIMIT_BADGE_ALIGNMENTS));
    v[n++] = al_rows(r, f);
    v[n++] = web_tpl_text("issuing_component", f->issuing_component);
    v[n++] = web_tpl_text("passback", f->passback ? "1" : NULL);
    v[n++] = web_tpl_text("passback_score", f->passback_score ? f->passback_score : "100");
    v[n++] = web_tpl_text("revoke", f->revoke ? "1" : NULL);
    v[n++] = web_tpl_text("archived", f->cur && f->cur->archived_at ? "1" : NULL);
    v[n++] = web_tpl_text("deletable", deletable ? "1" : NULL);
    web_reply_page_status(r, ws, status,
                          f->slug ? web_fmt(r, _("Edit the badge \xe2\x80\x9c%s\xe2\x80\x9d"),
                                            f->cur ? f->cur->name : f->slug)
                                  : _("A new badge"),
                          editor_tpl, v, n);
}

/*
 * The course's page data and, for `slug`, its own BadgeClass (else
 * ERR_NOTFOUND); *deletable (may be NULL): it was never awarded.
 */
static int course_and_badge(struct req *r, const struct web_sess *ws, const char *slug,
                            struct store_course_admin *c, const struct store_badge **b,
                            bool *deletable, struct err *err)
{
    int64_t awarded = 1;

    *b = NULL;
    if (deletable)
        *deletable = false;
    if (!ws->s.context_id)
        return err_set(err, ERR_INVALID, "%s",
                       _("open this tool from inside a course to set its badges up"));
    if (store_course_admin(r->web->store, ws->s.consumer_id, ws->s.context_id, &r->arena, c, err) <
        0)
        return -1;
    if (!slug)
        return 0;
    *b = web_course_badge(c, str_from_cstr(slug), true);
    if (!*b)
        return err_set(err, ERR_NOTFOUND, "%s", _("this course has no such badge"));
    if (deletable) {
        if (store_badge_award_count(r->web->store, (*b)->id, &awarded, err) < 0)
            return -1;
        *deletable = awarded == 0;
    }
    return 0;
}

void web_route_edit(struct req *r)
{
    struct web_sess *ws = web_staff_session_from_query_or_reply(r);
    struct store_course_admin c;
    const struct store_badge *b;
    struct badge_form f;
    struct err err = ERR_INIT;
    struct form q = { NULL, 0 };
    const char *slug = NULL;
    bool deletable;

    if (!ws)
        return;
    if (str_present(r->query) &&
        form_parse(&r->arena, r->query.ptr, r->query.len, 32, &q, &err) == 0) {
        struct str v = form_get(&q, "b");

        if (v.len)
            slug = arena_strz(&r->arena, v);
    }
    err_clear(&err);
    if (course_and_badge(r, ws, slug, &c, &b, &deletable, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    if (b) {
        form_from_badge(r, b, &f);
    } else {
        memset(&f, 0, sizeof(f));
        f.passback = true; /* as a BadgeClass made any other way: 1.0 sent to the LMS */
    }
    reply_editor(r, ws, 200, &c, &f, NULL, NULL, deletable);
}

void web_route_save(struct req *r)
{
    struct web_sess *ws = arena_alloc(&r->arena, sizeof(*ws));
    struct store_course_admin c;
    const struct store_badge *b;
    struct badge_form f;
    struct store_badge_new nb;
    struct dryrun d = { 0 };
    struct err err = ERR_INIT;
    size_t cleaned = 0, added = 0;
    bool dry, deletable;

    if (web_form_session_or_reply(r, true, ws) < 0)
        return;
    form_from_post(r, &f);
    dry = str_eq_cstr(web_post_get(r, "do"), "dryrun");
    if (course_and_badge(r, ws, f.slug, &c, &b, &deletable, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    f.cur = b;
    if (form_check(r, ws, &c, &f, &nb, &err) < 0 ||
        (!dry && form_image(r, &f, &nb, &cleaned, &err) < 0)) {
        reply_editor(r, ws, web_status_for(err.code), &c, &f, err.msg, NULL, deletable);
        return;
    }
    if (dry) {
        if (dry_run(r, ws, &c, &f, &nb, &d, &err) < 0) {
            web_reply_err(r, &err);
            return;
        }
        reply_editor(r, ws, 200, &c, &f, NULL, &d, deletable);
        return;
    }
    if (b) {
        if (store_badge_update(r->web->store, b->id, ws->s.context_id, &nb, &err) < 0) {
            reply_editor(r, ws, web_status_for(err.code), &c, &f, err.msg, NULL, deletable);
            return;
        }
    } else {
        char base[LIMIT_SLUG_LEN + 1], slug[LIMIT_SLUG_LEN + 1];
        int64_t id;

        if (str_slug(base, sizeof(base), 80, nb.name, nb.mode) == 0)
            snprintf(base, sizeof(base), "badge");
        nb.slug_base = base;
        if (store_badge_create(r->web->store, &nb, &id, slug, &err) < 0) {
            reply_editor(r, ws, web_status_for(err.code), &c, &f, err.msg, NULL, false);
            return;
        }
        f.slug = arena_strz(&r->arena, str_from_cstr(slug));
    }
    /* the learners who already meet the rule get it now: what the dry run showed */
    if (r->web->cfg.awards) {
        const char *s = f.slug;
        struct store_badge saved;

        if (store_badge_get(r->web->store, s, &r->arena, &saved, &err) < 0 ||
            awards_backfill(r->web->cfg.awards, saved.id, &added, &err) < 0) {
            web_reply_err(r, &err);
            return;
        }
    }
    {
        const char *params[] = {
            "b", f.slug, "n", web_fmt(r, "%zu", added), "cleaned", web_fmt(r, "%zu", cleaned), NULL
        };

        web_back_to(r, ws, "/badges", b ? "saved" : "created", params);
    }
}

/* POST /badges/archive (archive=1: archive, 0: offer again) and /badges/delete. */
static void lifecycle(struct req *r, bool delete)
{
    struct web_sess *ws = arena_alloc(&r->arena, sizeof(*ws));
    struct store_course_admin c;
    const struct store_badge *b;
    struct err err = ERR_INIT;
    const char *slug;
    bool archive;
    size_t added = 0;

    if (web_form_session_or_reply(r, true, ws) < 0)
        return;
    slug = field(r, "b");
    if (!slug) {
        err_set(&err, ERR_INVALID, "%s", _("which badge?"));
        web_reply_err(r, &err);
        return;
    }
    if (course_and_badge(r, ws, slug, &c, &b, NULL, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    if (delete) {
        if (store_badge_delete(r->web->store, b->id, ws->s.context_id, &err) < 0) {
            if (err.code == ERR_CONFLICT) {
                err_clear(&err);
                err_set(&err, ERR_CONFLICT, "%s",
                        _("a badge that was awarded cannot be deleted, only archived"));
            }
            web_reply_err(r, &err);
            return;
        }
        web_back_to(r, ws, "/badges", "deleted", NULL);
        return;
    }
    archive = !str_eq_cstr(web_post_get(r, "archive"), "0");
    if (store_badge_set_archived(r->web->store, b->id, ws->s.context_id, archive, &err) < 0 ||
        (!archive && r->web->cfg.awards &&
         awards_backfill(r->web->cfg.awards, b->id, &added, &err) < 0)) {
        web_reply_err(r, &err);
        return;
    }
    web_back_to(r, ws, "/badges", archive ? "archived" : "restored", NULL);
}

void web_route_archive(struct req *r)
{
    lifecycle(r, false);
}

void web_route_delete(struct req *r)
{
    lifecycle(r, true);
}
