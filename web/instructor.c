/*
 * web/instructor.c - the instructor's course page and its settings form.
 *
 * Same URL as the learner's page (/badges?s=...): the session's roles in
 * this course decide which one is shown, and every form handler checks
 * them again (web_form_session_or_reply with staff), so a learner's token
 * never reaches an instructor action.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"

#define ROW_VARS 9

/* A rule in an instructor's words. */
static const char *rule_text(struct req *r, const struct store_course_admin *c,
                             const struct store_badge *b)
{
    const struct store_rule *ru = &b->rule;

    switch (ru->kind) {
    case RULE_ENROLLMENT:
        return _("when a learner first opens the tool in the course");
    case RULE_SCORE:
        if (ru->resource_link)
            return web_fmt(r, _("a score of at least %s on \xe2\x80\x9c%s\xe2\x80\x9d"),
                           web_grade(r, ru->threshold, 0), ru->resource_link);
        return web_fmt(r, _("a score of at least %s on any graded activity"),
                       web_grade(r, ru->threshold, 0));
    case RULE_COMPLETION:
        return web_fmt(r, _("completing the course (the pass mark, %s)"),
                       web_grade(r, c->pass_mark, 0));
    case RULE_GROUP:
        return web_fmt(r, _("completing every course of the group \xe2\x80\x9c%s\xe2\x80\x9d"),
                       b->rule.group ? b->rule.group : "");
    case RULE_COUNT:
        return web_fmt(r, _("completing %lld courses"), (long long)ru->count);
    case RULE_MANUAL:
        return _("by hand");
    }
    return "";
}

const struct store_badge *web_course_badge(const struct store_course_admin *c, struct str slug,
                                           bool own_only)
{
    for (size_t i = 0; i < c->nbadges; i++) {
        const struct store_badge *b = &c->badges[i];

        if (str_eq_cstr(slug, b->slug) && (!own_only || b->context_id == c->context_id))
            return b;
    }
    return NULL;
}

static const char *backend_label(const char *name)
{
    if (!name || strcmp(name, "hosted") == 0)
        return _("built-in Open Badges issuer");
    return name;
}

/*
 * What stops the course's badges at their backends, in words an
 * instructor can act on (ask the administrator): a backend whose
 * credentials were refused (BACKEND_AUTH), or one this server has not
 * configured. "" when nothing does.
 */
static const char *backend_problems(struct req *r, const char *const *names, size_t n)
{
    struct awards *aw = r->web->cfg.awards;
    const char *auth[8];
    size_t nauth = aw ? awards_backends_in_auth(aw, auth, 8) : 0;
    const char *out = "";

    for (size_t i = 0; aw && i < n; i++) {
        bool refused = false;

        for (size_t j = 0; j < nauth; j++)
            refused |= strcmp(auth[j], names[i]) == 0;
        if (refused)
            out = web_fmt(r, "%s %s", out,
                          web_fmt(r,
                                  _("The badge platform %s refused this tool's sign-in: badges "
                                    "wait until the administrator fixes its credentials."),
                                  backend_label(names[i])));
        else if (awards_backend_expires(aw, names[i]) &&
                 awards_backend_expires(aw, names[i]) < util_now() + BACKEND_EXPIRY_WARNING)
            out = web_fmt(r, "%s %s", out,
                          web_fmt(r,
                                  _("The client certificate of the badge platform %s expires on "
                                    "%s: badges stop then unless the administrator renews it."),
                                  backend_label(names[i]),
                                  web_date(r, awards_backend_expires(aw, names[i]))));
        else if (!awards_has_backend(aw, names[i]))
            out = web_fmt(r, "%s %s", out,
                          web_fmt(r,
                                  _("The badge platform %s is not configured on this server: "
                                    "badges wait until the administrator sets it up."),
                                  backend_label(names[i])));
    }
    return out;
}

/*
 * "Badge service: <the course's backends>. Last badge issued: ...", then
 * what stops them, if anything.
 */
static const char *status_line(struct req *r, const struct store_course_admin *c)
{
    const char *names[8];
    size_t n = 0;
    const char *list = "";
    struct awards_stats st = { 0 };
    int64_t last;

    /* the backends of the course's BadgeClasses, each once; none yet: the default */
    for (size_t i = 0; i < c->nbadges && n < sizeof(names) / sizeof(names[0]); i++) {
        const char *b = c->badges[i].backend ? c->badges[i].backend : "hosted";
        bool seen = false;

        for (size_t j = 0; j < n; j++)
            seen |= strcmp(names[j], b) == 0;
        if (!seen)
            names[n++] = b;
    }
    if (n == 0)
        names[n++] = r->web->cfg.awards ? awards_default_backend(r->web->cfg.awards) : "hosted";
    for (size_t i = 0; i < n; i++)
        list = i ? web_fmt(r, "%s, %s", list, backend_label(names[i])) : backend_label(names[i]);
    if (r->web->cfg.awards)
        awards_stats(r->web->cfg.awards, &st);
    last = st.last_success > c->last_issued_at ? st.last_success : c->last_issued_at;
    /* the course's counts follow, each a link to the awards table filtered to it */
    return web_fmt(r, "%s%s",
                   web_fmt(r, _("Badge service: %s. Last badge issued: %s."), list,
                           last ? web_date(r, last) : _("never")),
                   backend_problems(r, names, n));
}

/* A launch from outside any course (an LMS's account or user menu): nothing to set up. */
static const char no_course_tpl[] =
    "<p>{{@Open this tool from inside a course to set its badges up.}}</p>";

static const char instructor_tpl[] =
    "<p><a class=\"button\" href=\"{{new_badge}}\">{{@Create a badge}}</a></p>"
    "<section aria-labelledby=\"settings-h\"><h2 id=\"settings-h\">{{@Course settings}}</h2>"
    "<form method=\"post\" action=\"{{settings_action}}\">"
    "<input type=\"hidden\" name=\"s\" value=\"{{s}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
    "<p><input type=\"checkbox\" id=\"enabled\" name=\"enabled\" value=\"1\"{{#enabled}} "
    "checked{{/enabled}}> <label for=\"enabled\">{{@Award badges in this course}}</label></p>"
    /* in percent, as the editor's scores */
    "<p><label for=\"pass_percent\">{{@Pass mark, in percent}}</label> "
    "<input id=\"pass_percent\" name=\"pass_percent\" type=\"number\" min=\"0\" max=\"100\" "
    "step=\"any\" inputmode=\"decimal\" value=\"{{pass_percent}}\" required> %</p>"
    "<p><label for=\"completion_link\">{{@The course is completed by a passing score on}}</label> "
    "<select id=\"completion_link\" name=\"completion_link\">"
    "<option value=\"\">{{@any graded activity}}</option>"
    "{{#links}}<option value=\"{{id}}\"{{#sel}} selected{{/sel}}>{{title}}</option>{{/links}}"
    "</select></p>"
    "<p><button type=\"submit\">{{@Save settings}}</button></p></form></section>"
    "<section aria-labelledby=\"status-h\"><h2 id=\"status-h\">{{@Issuing}}</h2>"
    "<p class=\"status\" id=\"backend-status\">{{status}}</p>"
    /* each count opens the awards table filtered to it */
    "<ul class=\"counts\" aria-label=\"{{@Awards of this course by state}}\">{{#counts}}"
    "<li><a href=\"{{href}}\">{{label}}</a></li>{{/counts}}</ul></section>"
    "<section aria-labelledby=\"badges-h\"><h2 id=\"badges-h\">{{@Badges of this course}}</h2>"
    "{{#any_badges}}<table class=\"list\"><thead><tr><th scope=\"col\">{{@Badge}}</th>"
    "<th scope=\"col\">{{@Earned by}}</th><th scope=\"col\">{{@Issued}}</th>"
    "<th scope=\"col\">{{@State}}</th></tr></thead><tbody>"
    "{{#badges}}<tr data-slug=\"{{slug}}\"><td><img src=\"{{img}}\" alt=\"\" width=\"32\" "
    "height=\"32\"> {{#edit}}<a href=\"{{edit}}\">{{bname}}</a>{{/edit}}{{^edit}}{{bname}}{{/edit}}"
    "{{#where}} <span class=\"where\">({{where}})</span>{{/where}}</td>"
    "<td data-label=\"{{@Earned by}}\">{{rule}}</td><td data-label=\"{{@Issued}}\">{{issued}}</td>"
    "<td data-label=\"{{@State}}\">{{state}}</td></tr>{{/badges}}"
    "</tbody></table>{{/any_badges}}"
    "{{^badges}}<p>{{@This course has no badges yet. With badges turned on, a learner who completes the course gets one made from the course's title.}}</p>{{/badges}}"
    "</section>";

void web_page_instructor(struct req *r, struct web_sess *ws)
{
    struct store_course_admin c;
    struct err err = ERR_INIT;
    struct web_tpl_var *links, *rows;
    size_t nl = 0, nr = 0;

    if (!ws->s.context_id) {
        web_reply_page_body(r, ws, _("Badges"), no_course_tpl, NULL, 0);
        return;
    }
    if (store_course_admin(r->web->store, ws->s.consumer_id, ws->s.context_id, &r->arena, &c,
                           &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    links = arena_alloc(&r->arena, st_mult(c.nlinks * 3 + 1, sizeof(*links)));
    for (size_t i = 0; i < c.nlinks; i++) {
        const struct store_link *l = &c.links[i];

        links[nl++] = web_tpl_text("id", l->lti_link_id);
        links[nl++] = web_tpl_text("title", l->title && l->title[0] ? l->title : l->lti_link_id);
        links[nl++] = web_tpl_text(
            "sel",
            c.completion_link && strcmp(c.completion_link, l->lti_link_id) == 0 ? "1" : NULL);
    }
    rows = arena_alloc(&r->arena, st_mult(c.nbadges * ROW_VARS + 1, sizeof(*rows)));
    for (size_t i = 0; i < c.nbadges; i++) {
        const struct store_badge *b = &c.badges[i];

        rows[nr++] = web_tpl_text("slug", b->slug);
        rows[nr++] = web_tpl_text("bname", b->name);
        rows[nr++] = web_tpl_url(
            "img", web_fmt(r, "%s/ob/v2/badges/%s/image", r->web->public_path, b->slug));
        rows[nr++] = web_tpl_text("where", b->context_id ? NULL : _("all courses"));
        rows[nr++] = web_tpl_text("rule", rule_text(r, &c, b));
        rows[nr++] = web_tpl_text("issued", web_fmt(r, "%lld", (long long)b->issued));
        {
            const char *state = b->archived_at ? _("archived") : _("offered");

            /* an edit its platform refused, or has not taken yet after a failure */
            if (b->sync_error)
                state = web_fmt(r, _("%s; its badge platform has not taken the last edit: %s"),
                                state, b->sync_error);
            rows[nr++] = web_tpl_text("state", state);
        }
        {
            const char *const q[] = { "b", b->slug, NULL };

            /* the course's own: the consumer's course-less ones are the operator's (CLI) */
            rows[nr++] = web_tpl_url("edit", b->context_id == ws->s.context_id
                                                 ? web_page_url(r, ws, "/badges/edit", q)
                                                 : NULL);
        }
        rows[nr++] = web_tpl_text("unused", NULL);
    }
    struct web_tpl_var counts[5 * 2];
    size_t nc = 0;
    {
        const struct {
            const char *state, *fmt;
            int64_t n;
        } by[] = {
            { "issued", N_("Issued"), c.issued },
            { "queued", N_("Waiting to be issued"), c.queued },
            { "needs_email", N_("Waiting for an e-mail address"), c.needs_email },
            { "failed", N_("Failed"), c.failed },
            { "revoked", N_("Revoked"), c.revoked },
        };

        for (size_t i = 0; i < sizeof(by) / sizeof(by[0]); i++) {
            const char *const q[] = { "state", by[i].state, NULL };

            counts[nc++] = web_tpl_url("href", web_page_url(r, ws, "/badges/awards", q));
            counts[nc++] =
                web_tpl_text("label", web_fmt(r, "%s: %lld", _(by[i].fmt), (long long)by[i].n));
        }
    }
    {
        struct web_tpl_var vars[] = {
            web_tpl_list("counts", counts, 2, nc / 2),
            web_tpl_url("settings_action", web_fmt(r, "%s/badges/settings", r->web->public_path)),
            web_tpl_text("enabled", c.badges_enabled ? "1" : NULL),
            web_tpl_text("pass_percent", web_percent_value(r, c.pass_mark)),
            web_tpl_list("links", links, 3, nl / 3),
            web_tpl_text("status", status_line(r, &c)),
            web_tpl_list("badges", rows, ROW_VARS, nr / ROW_VARS),
            web_tpl_text("any_badges", nr ? "1" : NULL),
            web_tpl_url("new_badge", web_page_url(r, ws, "/badges/edit", NULL)),
        };

        web_reply_page_body(r, ws, _("Badges for this course"), instructor_tpl, vars,
                            sizeof(vars) / sizeof(vars[0]));
    }
}

void web_route_settings(struct req *r)
{
    struct web_sess *ws = arena_alloc(&r->arena, sizeof(*ws));
    struct err err = ERR_INIT;
    struct str pm, link;
    double pass_mark;
    bool enabled;
    const char *link_id = NULL;
    size_t added = 0;

    if (web_form_session_or_reply(r, true, ws) < 0)
        return;
    enabled = str_eq_cstr(web_post_get(r, "enabled"), "1");
    pm = web_post_get(r, "pass_percent");
    if (web_percent_parse(pm, &pass_mark) < 0) {
        err_set(&err, ERR_INVALID, "%s",
                _("the pass mark is a percent from 0 to 100, such as 60 or 72.5"));
        web_reply_err(r, &err);
        return;
    }
    link = web_post_get(r, "completion_link");
    if (link.len) {
        if (link.len > LIMIT_LTI_ID_LEN || str_has_ctl(link)) {
            err_set(&err, ERR_INVALID, "%s", _("that activity is not part of this course"));
            web_reply_err(r, &err);
            return;
        }
        link_id = arena_strz(&r->arena, link);
    }
    if (store_context_set_settings(r->web->store, ws->s.context_id, enabled, pass_mark, link_id,
                                   &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    /* turned on (or kept on): the learners who already meet a rule of the course get it now */
    if (enabled && r->web->cfg.awards &&
        awards_backfill_course(r->web->cfg.awards, ws->s.context_id, &added, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    {
        const char *params[] = { "n", web_fmt(r, "%zu", added), NULL };

        web_back_to(r, ws, "/badges", "saved", params);
    }
}
