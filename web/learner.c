/*
 * web/learner.c - the learner's page: the badges earned, those on their
 * way, those revoked and why, and every badge still to earn with its rule
 * in words, the data it was judged on and what is missing, so that a
 * learner never has to ask why nothing happened.
 *
 * One store call reads everything (store_learner_view); the rest is
 * deciding, per BadgeClass, which list it belongs in and what to say.
 * Every sentence goes through gettext, and so do dates ("7 December 2026")
 * and scores, which read as the LMS shows them: percent, or points when the
 * LMS sent the activity's points possible (web_grade). Activities are named
 * by their title, never by their LMS id.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"

#define BADGE_VARS 22 /* the variables of one badge item */

struct learner {
    struct req *r;
    struct web_sess *ws;
    struct store_learner_view v;
};

static const struct store_award *award_of(const struct store_learner_view *v, int64_t badge_id)
{
    for (size_t i = 0; i < v->nawards; i++) {
        if (v->awards[i].badge_id == badge_id)
            return &v->awards[i];
    }
    return NULL;
}

static const struct store_badge *badge_of(const struct store_learner_view *v, int64_t id)
{
    for (size_t i = 0; i < v->nbadges; i++) {
        if (v->badges[i].id == id)
            return &v->badges[i];
    }
    return NULL;
}

static const struct store_grade_seen *grade_on(const struct store_learner_view *v, const char *link)
{
    for (size_t i = 0; i < v->ngrades; i++) {
        if (strcmp(v->grades[i].lti_link_id, link) == 0)
            return &v->grades[i];
    }
    return NULL;
}

/*
 * The grade a score rule is judged on: that link's, or the best of the
 * course among the links with a grade or a grade column (the view lists
 * every link of the course).
 */
static const struct store_grade_seen *judged_grade(const struct store_learner_view *v,
                                                   const char *link)
{
    const struct store_grade_seen *best = NULL;

    if (link)
        return grade_on(v, link);
    for (size_t i = 0; i < v->ngrades; i++) {
        const struct store_grade_seen *g = &v->grades[i];

        if (!g->has_score && !g->bound)
            continue;
        if (!best || (g->has_score && (!best->has_score || g->score > best->score)))
            best = g;
    }
    return best;
}

/*
 * An activity as the learner knows it: its title in quotes; never its LMS
 * id, which means nothing to people.
 */
static const char *link_name(struct learner *l, const char *link, const char *title)
{
    const struct store_grade_seen *g = link ? grade_on(&l->v, link) : NULL;

    if (!(title && title[0]) && g)
        title = g->link_title;
    if (title && title[0])
        /* TRANSLATORS: an activity's title in quotes */
        return web_fmt(l->r, _("\xe2\x80\x9c%s\xe2\x80\x9d"), title);
    return g ? _("an activity without a title") : _("an activity not opened yet");
}

/* The points possible of a link (0: percent). */
static double link_points(struct learner *l, const char *link)
{
    const struct store_grade_seen *g = link ? grade_on(&l->v, link) : NULL;

    return g ? g->points_possible : 0;
}

static const char *group_name(const struct store_badge *b)
{
    return b->rule.group ? b->rule.group : "";
}

/* The rule of a BadgeClass in words. */
static const char *rule_words(struct learner *l, const struct store_badge *b)
{
    struct req *r = l->r;
    const struct store_rule *ru = &b->rule;

    switch (ru->kind) {
    case RULE_ENROLLMENT:
        return _("Given when you first open this tool in the course.");
    case RULE_SCORE:
        if (ru->resource_link)
            return web_fmt(r, _("Reach a score of at least %s on %s."),
                           web_grade(r, ru->threshold, link_points(l, ru->resource_link)),
                           link_name(l, ru->resource_link, NULL));
        return web_fmt(r, _("Reach a score of at least %s on any graded activity of the course."),
                       web_grade(r, ru->threshold, 0));
    case RULE_COMPLETION:
        if (l->v.completion_link)
            return web_fmt(r, _("Complete the course: a score of at least %s on %s."),
                           web_grade(r, l->v.pass_mark, l->v.completion_points),
                           link_name(l, l->v.completion_link, l->v.completion_link_title));
        return web_fmt(r, _("Complete the course: a score of at least %s on a graded activity."),
                       web_grade(r, l->v.pass_mark, 0));
    case RULE_GROUP:
        return web_fmt(r, _("Complete every course of the group \xe2\x80\x9c%s\xe2\x80\x9d."),
                       group_name(b));
    case RULE_COUNT:
        return web_fmt(r, _("Complete %lld courses."), (long long)ru->count);
    case RULE_MANUAL:
        return _("Your instructor gives this badge by hand.");
    }
    return "";
}

/* Lines of "why not yet", collected as list items. */
struct why {
    struct web_tpl_var *items;
    size_t n, cap;
};

static void why_add(struct learner *l, struct why *w, const char *line)
{
    if (w->n == w->cap) {
        struct web_tpl_var *nv;

        w->cap = w->cap ? w->cap * 2 : 8;
        nv = arena_alloc(&l->r->arena, st_mult(w->cap, sizeof(*nv)));
        if (w->n)
            memcpy(nv, w->items, w->n * sizeof(*nv));
        w->items = nv;
    }
    w->items[w->n++] = web_tpl_text("line", line);
}

/* What the tool knows of the grade a score is judged on, in words. */
static void why_grade(struct learner *l, struct why *w, const struct store_grade_seen *g,
                      const char *link, double need)
{
    struct req *r = l->r;

    if (g && g->has_score) {
        const char *src = g->source && strcmp(g->source, "lms") == 0
                              ? web_fmt(r, _("read from your learning platform on %s"),
                                        web_date(r, g->recorded_at))
                              : web_fmt(r, _("sent by your learning platform on %s"),
                                        web_date(r, g->recorded_at));

        why_add(l, w,
                web_fmt(r, _("Judged on: your score %s on %s, %s."),
                        web_grade(r, g->score, g->points_possible),
                        link_name(l, g->lti_link_id, g->link_title), src));
        if (g->score + 1e-9 < need)
            why_add(l, w,
                    web_fmt(r, _("Still missing: %s more (%s needed)."),
                            g->points_possible > 0
                                ? web_fmt(r, _("%s points"),
                                          web_number(r, (need - g->score) * g->points_possible, 2))
                                : web_grade(r, need - g->score, 0),
                            web_grade(r, need, g->points_possible)));
        else
            why_add(l, w,
                    _("Your score is enough: the badge is given when your grade next "
                      "reaches this tool, or your instructor can give it now."));
        return;
    }
    if (g && g->bound && g->read_error)
        why_add(l, w,
                web_fmt(r,
                        _("This tool could not read your grade from your learning platform (last "
                          "tried on %s); it keeps trying."),
                        web_date(r, g->read_at)));
    else if (g && g->bound && g->read_at)
        why_add(l, w,
                web_fmt(r, _("Your learning platform has no grade for you yet (checked on %s)."),
                        web_date(r, g->read_at)));
    else if (link)
        why_add(
            l, w,
            web_fmt(r, _("No grade for %s has reached this tool yet."), link_name(l, link, NULL)));
    else
        why_add(l, w, _("No grade from this course has reached this tool yet."));
    why_add(l, w,
            web_fmt(r, _("Still missing: a score of at least %s."),
                    web_grade(r, need, link ? link_points(l, link) : 0)));
}

/* The courses of a group done and to do, and the progress they make. */
static void why_group(struct learner *l, struct why *w, const struct store_badge *b, int64_t *done,
                      int64_t *total)
{
    struct req *r = l->r;
    struct buf done_names = BUF_INIT(8192), left_names = BUF_INIT(8192);

    *done = *total = 0;
    for (size_t i = 0; i < l->v.ngroups; i++) {
        const struct store_group_course *g = &l->v.groups[i];
        struct buf *into = g->done ? &done_names : &left_names;

        if (g->group_id != b->rule.group_id)
            continue;
        (*total)++;
        *done += g->done;
        if (into->len)
            buf_addstr(into, ", ");
        buf_addstr(into, g->title && g->title[0] ? g->title : g->lti_context_id);
    }
    if (done_names.len)
        why_add(l, w, web_fmt(r, _("Completed: %s."), done_names.ptr));
    if (left_names.len)
        why_add(l, w, web_fmt(r, _("Still to complete: %s."), left_names.ptr));
    if (!*total)
        why_add(l, w, _("The group has no courses yet."));
    buf_release(&done_names);
    buf_release(&left_names);
}

static void why_count(struct learner *l, struct why *w, const struct store_badge *b)
{
    struct req *r = l->r;
    struct buf names = BUF_INIT(8192);
    int64_t n = (int64_t)l->v.ncompleted;

    for (size_t i = 0; i < l->v.ncompleted; i++) {
        const struct store_course_done *d = &l->v.completed[i];

        if (names.len)
            buf_addstr(&names, ", ");
        buf_addf(&names, "%s (%s)", d->title && d->title[0] ? d->title : d->lti_context_id,
                 web_date(r, d->completed_at));
    }
    if (names.len)
        why_add(l, w, web_fmt(r, _("Courses you completed: %s."), names.ptr));
    else
        why_add(l, w, _("You have not completed a course yet."));
    if (n < b->rule.count)
        why_add(l, w, web_fmt(r, _("Still missing: %lld more."), (long long)(b->rule.count - n)));
    buf_release(&names);
}

/* The variables every badge item has, in this order (unused ones empty). */
static size_t badge_common(struct learner *l, const struct store_badge *b, struct web_tpl_var *vars)
{
    struct req *r = l->r;
    size_t k = 0;

    vars[k++] = web_tpl_text("bname", b->name);
    vars[k++] = web_tpl_text("description", b->description);
    vars[k++] =
        web_tpl_url("img", web_fmt(r, "%s/ob/v2/badges/%s/image", r->web->public_path, b->slug));
    vars[k++] = web_tpl_text("slug", b->slug);
    vars[k++] = web_tpl_text(
        "where", b->context_id && b->context_id != l->v.context_id ? b->context_title : NULL);
    return k;
}

struct web_tpl_var web_paragraphs(struct req *r, const char *text)
{
    struct web_tpl_var *items;
    size_t n = 0, cap = 1;
    const char *p = text;

    if (!text || !text[0])
        return web_tpl_list("paras", NULL, 1, 0);
    for (const char *q = text; (q = strstr(q, "\n\n")); q += 2)
        cap++;
    items = arena_alloc(&r->arena, st_mult(cap, sizeof(*items)));
    while (*p && n < cap) {
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        struct str para = str_trim((struct str){ p, len });

        if (para.len)
            items[n++] = web_tpl_text("p", arena_strz(&r->arena, para));
        p = end ? end + 2 : p + len;
    }
    return web_tpl_list("paras", items, 1, n);
}

/* How far `have` goes towards `need`, from 0 to 1, for a <progress> bar ("0.90"). */
static const char *fraction(struct req *r, double have, double need)
{
    return web_fmt(r, "%.2f", need <= 0 || have >= need ? 1.0 : have / need);
}

/* Fills `vars` (BADGE_VARS) for a BadgeClass not earned: rule, progress, why not yet. */
static void available_item(struct learner *l, const struct store_badge *b, struct web_tpl_var *vars)
{
    struct req *r = l->r;
    struct why w = { NULL, 0, 0 };
    size_t k = badge_common(l, b, vars);
    const char *progress = NULL, *pval = NULL;
    bool course_bound = b->context_id != 0;
    const char *my_mode = l->ws->s.mode;

    bool off = course_bound && !l->v.badges_enabled;

    if (off && b->rule.kind != RULE_MANUAL)
        why_add(l, &w,
                _("Badges are not switched on for this course yet: your instructor "
                  "has to turn them on before this badge can be earned."));
    switch (b->rule.kind) {
    case RULE_ENROLLMENT:
        /*
         * Given on the first launch when it is live and the course's badges
         * are on, and to everyone already here when they are switched on or
         * the badge is made in the editor (awards_backfill*): with badges
         * off, that is the one reason; with them on, the badge most likely
         * came after the learner by another way (the command line).
         */
        if (off)
            why_add(l, &w,
                    _("Once they are on, you get it at once: you do not need to do anything."));
        else
            why_add(l, &w,
                    _("It was not given when you first opened this tool here, most likely because "
                      "the badge did not exist yet: ask your instructor to give it to you."));
        break;
    case RULE_SCORE: {
        const struct store_grade_seen *g = judged_grade(&l->v, b->rule.resource_link);

        why_grade(l, &w, g, b->rule.resource_link, b->rule.threshold);
        if (g && g->has_score) {
            progress = web_fmt(r, _("Your score %s \xe2\x80\x94 %s needed"),
                               web_grade(r, g->score, g->points_possible),
                               web_grade(r, b->rule.threshold, g->points_possible));
            pval = fraction(r, g->score, b->rule.threshold);
        }
        break;
    }
    case RULE_COMPLETION: {
        const struct store_grade_seen *g = judged_grade(&l->v, l->v.completion_link);

        if (b->mode && (!my_mode || strcmp(b->mode, my_mode) != 0))
            why_add(
                l, &w,
                web_fmt(r, _("This badge is for learners on the \xe2\x80\x9c%s\xe2\x80\x9d track."),
                        b->mode));
        if (l->v.completed_at) {
            why_add(
                l, &w,
                web_fmt(r, _("You completed the course on %s."), web_date(r, l->v.completed_at)));
        } else {
            why_grade(l, &w, g, l->v.completion_link, l->v.pass_mark);
            if (g && g->has_score) {
                progress = web_fmt(r, _("Your score %s \xe2\x80\x94 %s needed"),
                                   web_grade(r, g->score, g->points_possible),
                                   web_grade(r, l->v.pass_mark, g->points_possible));
                pval = fraction(r, g->score, l->v.pass_mark);
            }
        }
        break;
    }
    case RULE_GROUP: {
        int64_t done, total;

        why_group(l, &w, b, &done, &total);
        if (total) {
            progress = web_fmt(r, _("%lld of %lld courses"), (long long)done, (long long)total);
            pval = fraction(r, (double)done, (double)total);
        }
        break;
    }
    case RULE_COUNT:
        why_count(l, &w, b);
        if (b->rule.count > 0) {
            int64_t done = (int64_t)l->v.ncompleted;

            progress = web_fmt(r, _("%lld of %lld courses"),
                               (long long)(done < b->rule.count ? done : b->rule.count),
                               (long long)b->rule.count);
            pval = fraction(r, (double)done, (double)b->rule.count);
        }
        break;
    case RULE_MANUAL:
        why_add(l, &w, _("Your instructor has not given it to you yet."));
        break;
    }
    vars[k++] = web_paragraphs(r, b->criteria_narrative);
    vars[k++] = web_tpl_url("criteria_url", b->criteria_url);
    vars[k++] = web_tpl_text("rule", rule_words(l, b));
    vars[k++] = web_tpl_text("progress", progress);
    vars[k++] = web_tpl_text("pval", pval);
    vars[k++] = web_tpl_list("why", w.items, 1, w.n);
    while (k < BADGE_VARS)
        vars[k++] = web_tpl_text("unused", NULL);
}

/* What a learner is told about an award not issued (yet). */
static const char *status_words(struct learner *l, const struct store_award *a)
{
    struct req *r = l->r;

    switch (a->state) {
    case AWARD_QUEUED:
        if (a->attempts > 0)
            return web_fmt(
                r,
                _("On its way: the badge service did not answer the last try, so this "
                  "tool tries again by itself (next try on %s). You do not need to do "
                  "anything: it moves to \xe2\x80\x9cYour badges\xe2\x80\x9d once issued."),
                web_date(r, a->next_attempt_at));
        return _("On its way: it is being issued. Reload this page in a moment to see it under "
                 "\xe2\x80\x9cYour badges\xe2\x80\x9d; you do not need to do anything.");
    case AWARD_ISSUING:
        return _("On its way: it is being issued right now. Reload this page in a moment to see "
                 "it under \xe2\x80\x9cYour badges\xe2\x80\x9d.");
    case AWARD_NEEDS_EMAIL:
        if (r->web->cfg.mail_on)
            return _("Earned, and waiting for your e-mail address: your learning platform did not "
                     "share one, and a badge is issued to an address. Give it below and follow "
                     "the link we send: the badge is issued then.");
        if (r->web->cfg.accept_unconfirmed_email)
            return _("Earned, and waiting for your e-mail address: your learning platform did not "
                     "share one, and a badge is issued to an address. Give it below: the badge is "
                     "issued as soon as it is saved.");
        return _("Earned, and waiting for your e-mail address: your learning platform did not "
                 "share one, and a badge is issued to an address. Once it shares your address, "
                 "the badge is issued the next time you open this tool.");
    case AWARD_FAILED:
        return _("Earned, but it could not be issued. Your instructor sees what went wrong and "
                 "can try again; you do not need to do anything.");
    case AWARD_ISSUED:
    case AWARD_REVOKED:
        break;
    }
    return "";
}

/*
 * LinkedIn's add-to-profile link for a certification
 * (https://www.linkedin.com/profile/add?startTask=CERTIFICATION_NAME, its
 * documented parameters): the badge's name, the issuer it was issued as
 * (awards_backend_issuer_name(): a remote platform's only when its
 * issuer_name is configured, else left for the learner to type), the issue year and
 * month, the public page as the certification URL and the award's uid as
 * its id; the expiry year and month when it expires.
 */
static const char *linkedin_url(struct learner *l, const struct store_badge *b,
                                const struct store_award *a)
{
    struct req *r = l->r;
    struct buf u = BUF_INIT(LIMIT_URI_LEN);
    /* the issuer the badge was issued as: a remote platform's as configured, else none */
    const char *org =
        r->web->cfg.awards ? awards_backend_issuer_name(r->web->cfg.awards, b->backend) : NULL;
    char ts[21];
    const char *out;

    buf_addstr(&u, "https://www.linkedin.com/profile/add?startTask=CERTIFICATION_NAME");
    form_add_query_param(&u, "name", str_from_cstr(b->name));
    if (org)
        form_add_query_param(&u, "organizationName", str_from_cstr(org));
    if (a->issued_at) {
        util_iso8601(a->issued_at, ts);
        form_add_query_param(&u, "issueYear", (struct str){ ts, 4 });
        form_add_query_param(&u, "issueMonth",
                             ts[5] == '0' ? (struct str){ ts + 6, 1 } : (struct str){ ts + 5, 2 });
    }
    if (a->expires_at) {
        util_iso8601(a->expires_at, ts);
        form_add_query_param(&u, "expirationYear", (struct str){ ts, 4 });
        form_add_query_param(&u, "expirationMonth",
                             ts[5] == '0' ? (struct str){ ts + 6, 1 } : (struct str){ ts + 5, 2 });
    }
    form_add_query_param(&u, "certUrl", str_from_cstr(a->assertion_url));
    if (a->uid)
        form_add_query_param(&u, "certId", str_from_cstr(a->uid));
    out = u.toobig ? NULL : arena_memdupz(&r->arena, u.ptr, u.len);
    buf_release(&u);
    return out;
}

static void award_item(struct learner *l, const struct store_badge *b, const struct store_award *a,
                       struct web_tpl_var *vars)
{
    struct req *r = l->r;
    size_t k = badge_common(l, b, vars);
    bool hosted = b->backend && strcmp(b->backend, "hosted") == 0;
    bool expired = a->expires_at && a->expires_at <= util_now();

    vars[k++] = web_tpl_text("issued", web_date(r, a->issued_at));
    vars[k++] =
        web_tpl_text("expires", a->expires_at && !expired ? web_date(r, a->expires_at) : NULL);
    vars[k++] = web_tpl_text("expired", expired ? web_date(r, a->expires_at) : NULL);
    vars[k++] = web_tpl_url("verify", a->assertion_url);
    vars[k++] = web_tpl_text("share", a->assertion_url);
    vars[k++] =
        web_tpl_url("download", hosted && a->uid ? web_fmt(r, "%s/ob/v2/assertions/%s/image",
                                                           r->web->public_path, a->uid)
                                                 : NULL);
    vars[k++] = web_tpl_text("status", status_words(l, a));
    vars[k++] = web_tpl_text("needs_email", a->state == AWARD_NEEDS_EMAIL ? "1" : NULL);
    vars[k++] = web_tpl_text("revoked_on", web_date(r, a->revoked_at));
    vars[k++] =
        web_tpl_text("reason", a->revoke_reason && a->revoke_reason[0] ? a->revoke_reason
                                                                       : _("no reason was given"));
    vars[k++] = web_tpl_text("earned_for", a->narrative);
    vars[k++] = web_tpl_url(
        "linkedin", a->state == AWARD_ISSUED && a->assertion_url ? linkedin_url(l, b, a) : NULL);
    vars[k++] = web_tpl_text(
        "dlname",
        web_fmt(r, "%s.%s", b->slug,
                b->image_type && strcmp(b->image_type, "image/svg+xml") == 0 ? "svg" : "png"));
    while (k < BADGE_VARS)
        vars[k++] = web_tpl_text("unused", NULL);
}

static const char learner_tpl[] =
    "{{#summary}}<p class=\"summary\" id=\"summary\">{{summary}}</p>{{/summary}}"
    "{{^in_course}}<p>{{@This page was opened outside a course: it shows every badge of yours from this learning platform.}}</p>{{/in_course}}"
    "<section aria-labelledby=\"earned-h\"><h2 id=\"earned-h\">{{@Your badges}}</h2>"
    "{{#earned}}<article class=\"badge earned\" data-slug=\"{{slug}}\">"
    "<img src=\"{{img}}\" alt=\"{{bname}}\" width=\"96\" height=\"96\">"
    "<div><h3>{{bname}}</h3>{{#where}}<p class=\"where\">{{where}}</p>{{/where}}"
    "<p class=\"desc\">{{description}}</p>"
    "<p class=\"dates\">{{@Issued on {issued}}}{{#expires}} \xc2\xb7 {{@Expires on {expires}}}"
    "{{/expires}}{{#expired}} \xc2\xb7 <strong>{{@Expired on {expired}}}</strong>{{/expired}}</p>"
    /* one compact row: the public page, and a menu of the ways to share it */
    "{{#verify}}<div class=\"share\"><a class=\"button small\" href=\"{{verify}}\" "
    "target=\"_blank\" rel=\"noopener\">{{@Public page}}<span class=\"sr\"> {{bname}}</span></a>"
    "<details class=\"menu\"><summary class=\"button secondary small\">{{@Share}}"
    "<span class=\"sr\"> {{bname}}</span></summary><div class=\"menu-items\">"
    "{{#linkedin}}<a class=\"linkedin\" href=\"{{linkedin}}\" target=\"_blank\" rel=\"noopener\">"
    "{{@Add to LinkedIn profile}}</a>{{/linkedin}}"
    "<button type=\"button\" class=\"link\" data-copy=\"{{share}}\" data-copied=\"{{@Copied}}\">"
    "{{@Copy link}}</button>"
    "{{#download}}<a href=\"{{download}}\" download=\"{{dlname}}\">{{@Download the image}}</a>"
    "{{/download}}</div></details><span class=\"copied\" role=\"status\"></span></div>{{/verify}}"
    "</div></article>{{/earned}}"
    "{{^earned}}<p>{{@You have not earned a badge here yet.}}</p>{{/earned}}</section>"
    /* whether their name shows on their badges' public pages (badgepage.c), once they have one */
    "{{#has_awards}}<section aria-labelledby=\"showname-h\" class=\"showname\"><h2 id=\"showname-h\">"
    "{{@Your name on your badges}}</h2><form method=\"post\" action=\"{{showname_action}}\">"
    "<input type=\"hidden\" name=\"s\" value=\"{{s}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
    "<p><label><input type=\"checkbox\" name=\"show\" value=\"1\"{{#show_name}} checked{{/show_name}}> "
    "{{@Show my name on the public pages of my badges}}</label> "
    "<button type=\"submit\">{{@Save}}</button></p>"
    "<p class=\"hint\">{{@When it is off, those pages say only that the badge was awarded to a verified e-mail address. They never show the address.}}</p>"
    "</form></section>{{/has_awards}}"
    "{{#any_pending}}<section aria-labelledby=\"pending-h\"><h2 id=\"pending-h\">{{@On its way}}</h2>"
    "{{#pending}}<article class=\"badge pending\" data-slug=\"{{slug}}\">"
    "<img src=\"{{img}}\" alt=\"{{bname}}\" width=\"64\" height=\"64\">"
    "<div><h3>{{bname}}</h3><p class=\"status\">{{status}}</p>"
    "</div></article>{{/pending}}"
    /* one address for every badge waiting for it: one form, after the list */
    "{{#waiting}}<div class=\"email\" id=\"email\">"
    "{{#sent_to}}<p class=\"notice\">{{@We sent a link to {sent_to}: open it to confirm your address. It works until {sent_until}. Not in your inbox? Look in your spam folder, or send it again.}}</p>{{/sent_to}}"
    "{{#email_form}}<form method=\"post\" action=\"{{email_action}}\">"
    "<input type=\"hidden\" name=\"s\" value=\"{{s}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
    "<p><label for=\"email-input\">{{@Your e-mail address}}</label> "
    "<input id=\"email-input\" name=\"email\" type=\"email\" required "
    "autocomplete=\"email\" maxlength=\"254\" aria-describedby=\"email-hint\""
    "{{#sent_to}} value=\"{{sent_to}}\"{{/sent_to}}> "
    "<button type=\"submit\">{{email_button}}</button></p>"
    "<p class=\"hint\" id=\"email-hint\">{{email_hint}}</p></form>{{/email_form}}"
    "{{^email_form}}<p class=\"hint\">{{@Ask your instructor or your learning platform's administrator to have your e-mail address shared with this tool.}}</p>{{/email_form}}"
    "</div>{{/waiting}}</section>{{/any_pending}}"
    "{{#any_revoked}}<section aria-labelledby=\"revoked-h\"><h2 id=\"revoked-h\">{{@Revoked}}</h2>"
    "{{#revoked}}<article class=\"badge revoked\" data-slug=\"{{slug}}\">"
    "<img src=\"{{img}}\" alt=\"{{bname}}\" width=\"64\" height=\"64\">"
    "<div><h3>{{bname}}</h3><p class=\"status\">{{@Revoked on {revoked_on}: {reason}}}</p>"
    "</div></article>{{/revoked}}</section>{{/any_revoked}}"
    "{{#in_course}}<section aria-labelledby=\"avail-h\"><h2 id=\"avail-h\">"
    "{{@Badges you can earn}}</h2>"
    "{{#available}}<article class=\"badge available\" data-slug=\"{{slug}}\">"
    "<img src=\"{{img}}\" alt=\"{{bname}}\" width=\"64\" height=\"64\">"
    "<div><h3>{{bname}}</h3><p>{{description}}</p>"
    "{{#paras}}<p class=\"criteria\">{{p}}</p>{{/paras}}"
    "{{#criteria_url}}<p><a href=\"{{criteria_url}}\" target=\"_blank\" rel=\"noopener\">"
    "{{@Criteria}}<span class=\"sr\"> {{bname}}</span></a></p>{{/criteria_url}}"
    "<p class=\"rule\"><strong>{{@How to earn it:}}</strong> {{rule}}</p>"
    "{{#progress}}<p class=\"progress\"><progress max=\"1\" value=\"{{pval}}\" "
    "aria-label=\"{{progress}}\"></progress> {{progress}}</p>{{/progress}}"
    "<details><summary>{{@Why not yet?}}</summary><ul>{{#why}}<li>{{line}}</li>{{/why}}</ul>"
    "</details></div></article>{{/available}}"
    "{{^available}}<p>{{@There are no more badges to earn in this course.}}</p>{{/available}}"
    "</section>{{/in_course}}";

void web_page_learner(struct req *r, struct web_sess *ws, bool all)
{
    struct learner l = { r, ws, { 0 } };
    struct err err = ERR_INIT;
    struct web_tpl_var *earned, *pending, *revoked, *avail;
    size_t ne = 0, np = 0, nr = 0, na = 0;
    int64_t ctx = all ? 0 : ws->s.context_id;
    bool smtp = r->web->cfg.mail_on;

    if (store_learner_view(r->web->store, ws->s.consumer_id, ws->s.user_id, ws->s.context_id,
                           &r->arena, &l.v, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    earned = arena_alloc(&r->arena, st_mult(st_mult(l.v.nawards + 1, BADGE_VARS), sizeof(*earned)));
    pending =
        arena_alloc(&r->arena, st_mult(st_mult(l.v.nawards + 1, BADGE_VARS), sizeof(*pending)));
    revoked =
        arena_alloc(&r->arena, st_mult(st_mult(l.v.nawards + 1, BADGE_VARS), sizeof(*revoked)));
    avail = arena_alloc(&r->arena, st_mult(st_mult(l.v.nbadges + 1, BADGE_VARS), sizeof(*avail)));

    /* awards: in this course (its badges and the course-less ones), or all of them */
    for (size_t i = 0; i < l.v.nawards; i++) {
        const struct store_award *a = &l.v.awards[i];
        const struct store_badge *b = badge_of(&l.v, a->badge_id);
        struct web_tpl_var *into;

        if (!b || (ctx && b->context_id && b->context_id != ctx))
            continue;
        if (a->state == AWARD_ISSUED)
            into = earned + BADGE_VARS * ne++;
        else if (a->state == AWARD_REVOKED)
            into = revoked + BADGE_VARS * nr++;
        else
            into = pending + BADGE_VARS * np++;
        award_item(&l, b, a, into);
    }
    /* BadgeClasses still to earn here: live, of this course or of none, no award yet */
    for (size_t i = 0; ctx && i < l.v.nbadges; i++) {
        const struct store_badge *b = &l.v.badges[i];

        if (b->archived_at || (b->context_id && b->context_id != ctx) || award_of(&l.v, b->id))
            continue;
        available_item(&l, b, avail + BADGE_VARS * na++);
    }
    {
        bool accept = r->web->cfg.accept_unconfirmed_email;
        bool waiting = false;
        /* what a learner looks for first: how many of the course's badges they hold */
        const char *summary =
            !(ne + np + na) ? NULL
            : ctx ? web_fmt(r, _("Badges earned in this course: %zu of %zu."), ne, ne + np + na)
                  : web_fmt(r, _("Badges earned: %zu."), ne);
        const char *sent_to = NULL;
        int64_t sent_until = 0;

        /* the form: badges wait for an address (the LMS shared none) and one can be given */
        for (size_t i = 0; i < l.v.nawards; i++)
            waiting = waiting || l.v.awards[i].state == AWARD_NEEDS_EMAIL;
        bool show_name = false;

        if (store_user_show_name(r->web->store, ws->s.user_id, &show_name, &err) < 0) {
            web_reply_err(r, &err);
            return;
        }
        if (waiting && smtp &&
            store_email_pending(r->web->store, ws->s.user_id, util_now(), &r->arena, &sent_to,
                                &sent_until, &err) < 0) {
            web_reply_err(r, &err);
            return;
        }
        struct web_tpl_var vars[] = {
            web_tpl_text("summary", summary),
            web_tpl_text("in_course", ctx ? "1" : NULL),
            web_tpl_text("show_name", show_name ? "1" : NULL),
            web_tpl_text("has_awards", l.v.nawards ? "1" : NULL),
            web_tpl_url("showname_action", web_fmt(r, "%s/badges/showname", r->web->public_path)),
            web_tpl_text("any_pending", np ? "1" : NULL),
            web_tpl_text("any_revoked", nr ? "1" : NULL),
            web_tpl_list("earned", earned, BADGE_VARS, ne),
            web_tpl_list("pending", pending, BADGE_VARS, np),
            web_tpl_list("revoked", revoked, BADGE_VARS, nr),
            web_tpl_list("available", avail, BADGE_VARS, na),
            web_tpl_text("waiting", waiting ? "1" : NULL),
            web_tpl_text("sent_to", sent_to),
            web_tpl_text("sent_until", web_date(r, sent_until)),
            web_tpl_text("email_form", smtp || accept ? "1" : NULL),
            web_tpl_url("email_action", web_fmt(r, "%s/badges/email", r->web->public_path)),
            web_tpl_text("email_hint",
                         smtp ? _("We send a link to this address; your badges are issued once "
                                  "you follow it.")
                              : _("Your badges are issued to this address.")),
            web_tpl_text("email_button", !smtp     ? _("Save")
                                         : sent_to ? _("Send the link again")
                                                   : _("Send me the link")),
        };

        web_reply_page_body(r, ws, all || !ctx ? _("All my badges") : _("Badges"), learner_tpl,
                            vars, sizeof(vars) / sizeof(vars[0]));
    }
}

void web_route_all(struct req *r)
{
    struct web_sess *ws = web_session_from_query_or_reply(r);

    if (ws)
        web_page_learner(r, ws, true);
}
