/*
 * web/awards.c - the instructor's awards table: the course's awards,
 * filtered by badge and state, manual award to many learners, revoke and
 * retry of many awards, and the CSV export.
 *
 * Everything here is for a course's staff: the GET pages check the
 * session's roles, the forms go through web_form_session_or_reply with
 * staff (CSRF token included). Every award id and every learner a form
 * names is checked against the course inside the transaction that changes
 * them, so one id of another course, or one user not enrolled as a
 * learner, refuses the whole form and changes nothing.
 *
 * The table is capped (LIMIT_AWARDS_TABLE_ROWS, newest first or in the
 * order asked) and says so; the CSV export has every matching award up to
 * its own caps. The server sorts (?sort=learner|badge|state|issued and
 * ?dir=asc|desc, the header links) and searches a learner (?q=) without
 * any script; pages.c's script does the same in place when the table holds
 * every matching award (data-complete), by the keys the cells carry in
 * data-sort (a name, a state's rank, an ISO date), in the store's order. Its cells are
 * quoted as RFC 4180 says, and a cell a spreadsheet would take for a
 * formula (= + - @ tab CR first) gets a leading apostrophe, as OWASP's
 * "CSV Injection" page recommends: names and narratives come from the LMS
 * and from people.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"

#define ROW_VARS     16
#define LEARNER_VARS 4
#define COL_VARS     5

/* The table's filters and order, as the query gives them and the store takes them. */
struct filters {
    struct store_course_query q;
};

/* ?sort= names, by enum store_award_sort ("": the newest first), and how the script compares them.
 */
static const struct {
    const char *name, *type;
} sorts[] = {
    [STORE_SORT_NEWEST] = { "", NULL },         [STORE_SORT_LEARNER] = { "learner", "text" },
    [STORE_SORT_BADGE] = { "badge", "text" },   [STORE_SORT_STATE] = { "state", "number" },
    [STORE_SORT_ISSUED] = { "issued", "date" },
};

/* A GET page's session, when it is a course's staff's; NULL once it replied 403. */
static const struct store_badge *badge_by_id(const struct store_course_admin *c, int64_t id)
{
    for (size_t i = 0; i < c->nbadges; i++) {
        if (c->badges[i].id == id)
            return &c->badges[i];
    }
    return NULL;
}

/*
 * The search `q`: spaces around it dropped, "" as NULL (anyone), at most
 * LIMIT_AWARDS_SEARCH_LEN bytes of UTF-8 without control characters; else
 * ERR_INVALID.
 */
static int search_parse(struct req *r, struct str q, const char **out, struct err *err)
{
    *out = NULL;
    while (q.len && q.ptr[0] == ' ') {
        q.ptr++;
        q.len--;
    }
    while (q.len && q.ptr[q.len - 1] == ' ')
        q.len--;
    if (!q.len)
        return 0;
    if (q.len > LIMIT_AWARDS_SEARCH_LEN)
        return err_set(err, ERR_INVALID, _("the search is longer than %d bytes"),
                       LIMIT_AWARDS_SEARCH_LEN);
    if (str_has_ctl(q) || !str_utf8_valid(q))
        return err_set(err, ERR_INVALID, "%s",
                       _("the search contains control characters or is not valid UTF-8"));
    *out = arena_strz(&r->arena, q);
    return 0;
}

/*
 * The filters named by `badge` and `state` (empty or absent: any), which
 * must be a BadgeClass of the course and a state, the search `q`, and the
 * order `sort` ("": newest first) and `dir` ("asc" by default, "desc");
 * else ERR_INVALID.
 */
static int filters_parse(struct req *r, const struct store_course_admin *c, const struct form *in,
                         struct filters *f, struct err *err)
{
    struct str badge = form_get(in, "badge"), state = form_get(in, "state");
    struct str sort = form_get(in, "sort"), dir = form_get(in, "dir");
    const struct store_badge *b;

    memset(f, 0, sizeof(*f));
    f->q.state = -1;
    if (badge.len) {
        b = badge.len <= LIMIT_SLUG_LEN ? web_course_badge(c, badge, false) : NULL;
        if (!b)
            return err_set(err, ERR_INVALID, "%s", _("that badge is not one of this course"));
        f->q.badge = b->slug;
    }
    if (state.len) {
        const char *name = state.len <= 32 ? arena_strz(&r->arena, state) : "";

        f->q.state = store_award_state_parse(name);
        if (f->q.state < 0)
            return err_set(err, ERR_INVALID, "%s", _("there is no such state of an award"));
    }
    if (search_parse(r, form_get(in, "q"), &f->q.learner, err) < 0)
        return -1;
    if (sort.len) {
        size_t i = 1;

        while (i < sizeof(sorts) / sizeof(sorts[0]) && !str_eq_cstr(sort, sorts[i].name))
            i++;
        if (i == sizeof(sorts) / sizeof(sorts[0]))
            return err_set(err, ERR_INVALID, "%s", _("the table cannot be sorted by that"));
        f->q.sort = (enum store_award_sort)i;
    }
    if (dir.len && !str_eq_cstr(dir, "asc") && !str_eq_cstr(dir, "desc"))
        return err_set(err, ERR_INVALID, "%s", _("a sort order is asc or desc"));
    f->q.desc = str_eq_cstr(dir, "desc");
    return 0;
}

static int filters_from_query(struct req *r, const struct store_course_admin *c, struct filters *f,
                              struct err *err)
{
    struct form q = { NULL, 0 };

    if (str_present(r->query) && form_parse(&r->arena, r->query.ptr, r->query.len, 32, &q, err) < 0)
        return -1;
    return filters_parse(r, c, &q, f, err);
}

/*
 * The filters as query parameters (name, value, ..., NULL) after `head`
 * pairs of `params` (room for 5 more pairs): with the order when `order`,
 * else with the order `sort` (its direction `desc`).
 */
static void filter_params(const struct filters *f, const char **params, size_t head, bool order,
                          enum store_award_sort sort, bool desc)
{
    size_t k = head * 2;

    if (f->q.badge) {
        params[k++] = "badge";
        params[k++] = f->q.badge;
    }
    if (f->q.state >= 0) {
        params[k++] = "state";
        params[k++] = store_award_state_name(f->q.state);
    }
    if (f->q.learner) {
        params[k++] = "q";
        params[k++] = f->q.learner;
    }
    if (order) {
        sort = f->q.sort;
        desc = f->q.desc;
    }
    if (sort != STORE_SORT_NEWEST) {
        params[k++] = "sort";
        params[k++] = sorts[sort].name;
        params[k++] = "dir";
        params[k++] = desc ? "desc" : "asc";
    }
    params[k] = NULL;
}

/* A state in one or two words, for the table's label and the filter. */
static const char *state_label(enum store_award_state st)
{
    switch (st) {
    case AWARD_QUEUED:
        return _("queued");
    case AWARD_NEEDS_EMAIL:
        return _("needs e-mail");
    case AWARD_ISSUING:
        return _("issuing");
    case AWARD_ISSUED:
        return _("issued");
    case AWARD_FAILED:
        return _("failed");
    case AWARD_REVOKED:
        return _("revoked");
    }
    return "";
}

/* "2026-11-23 14:05 UTC": when the next try is, to the minute. */
static const char *when(struct req *r, int64_t t)
{
    char ts[21];

    util_iso8601(t, ts);
    return web_fmt(r, "%.10s %.5s UTC", ts, ts + 11);
}

/* At most LIMIT_AWARDS_CELL_CHARS characters of `s` (never a UTF-8 sequence cut), "..." added. */
static const char *clip(struct req *r, const char *s)
{
    size_t chars = 0, i = 0;

    if (!s)
        return NULL;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80 && chars++ == LIMIT_AWARDS_CELL_CHARS)
            return web_fmt(r, "%.*s\xe2\x80\xa6", (int)i, s);
    }
    return s;
}

/* What an instructor is told about an award's state, past its label. */
static const char *state_words(struct req *r, const struct store_award *a)
{
    const char *error = a->last_error && a->last_error[0] ? clip(r, a->last_error) : NULL;

    switch (a->state) {
    case AWARD_QUEUED:
        if (a->attempts > 0)
            return web_fmt(
                r,
                _("The badge service did not take it (%lld tries so far): next try %s. Last error: %s"),
                (long long)a->attempts, when(r, a->next_attempt_at),
                error ? error : _("none was recorded"));
        return _("It will be issued in a moment.");
    case AWARD_ISSUING:
        return _("It is being issued right now.");
    case AWARD_NEEDS_EMAIL:
        return _("Waiting for the learner's e-mail address: the learning platform did not share "
                 "one, and a badge is issued to an address.");
    case AWARD_ISSUED:
        if (a->expires_at)
            return web_fmt(r, _("Issued on %s, expires on %s."), web_date(r, a->issued_at),
                           web_date(r, a->expires_at));
        return web_fmt(r, _("Issued on %s."), web_date(r, a->issued_at));
    case AWARD_FAILED:
        return web_fmt(r, _("It could not be issued: %s"),
                       error ? error : _("no error was recorded"));
    case AWARD_REVOKED:
        return web_fmt(r, _("Revoked on %s: %s%s"), web_date(r, a->revoked_at),
                       a->revoke_reason && a->revoke_reason[0] ? clip(r, a->revoke_reason)
                                                               : _("no reason was given"),
                       a->revoke_pending ? _(" (not yet withdrawn at the badge service)") : "");
    }
    return "";
}

/* Why the award was made, in words. */
static const char *how_words(const char *reason)
{
    static const struct {
        const char *reason, *words;
    } hows[] = {
        { "manual", N_("given by hand") },
        { "enrollment", N_("for joining the course") },
        { "score", N_("for a score") },
        { "completion", N_("for completing the course") },
        { "group", N_("for completing a group of courses") },
        { "count", N_("for a number of completed courses") },
    };

    for (size_t i = 0; reason && i < sizeof(hows) / sizeof(hows[0]); i++) {
        if (strcmp(reason, hows[i].reason) == 0)
            return _(hows[i].words);
    }
    return reason ? reason : "";
}

static const char *person(const char *name, const char *lti_user_id)
{
    return name && name[0] ? name : lti_user_id;
}

/* The notice after a form of this page: its code and counts from the query. */
static const char *notice_words(struct req *r)
{
    struct form q = { NULL, 0 };
    struct err err = ERR_INIT;
    struct str m;
    int64_t n = 0, other = 0;

    if (!str_present(r->query) ||
        form_parse(&r->arena, r->query.ptr, r->query.len, 32, &q, &err) < 0)
        return NULL;
    m = form_get(&q, "m");
    if (str_to_i64(form_get(&q, "n"), 0, INT64_MAX, &n) < 0)
        n = 0;
    if (str_to_i64(form_get(&q, "other"), 0, INT64_MAX, &other) < 0)
        other = 0;
    if (str_eq_cstr(m, "awarded"))
        return web_fmt(r, _("Awarded: %lld. Already had it: %lld."), (long long)n,
                       (long long)other);
    if (str_eq_cstr(m, "revoked") && other)
        return web_fmt(r, _("Revoked: %lld. Already revoked: %lld."), (long long)n,
                       (long long)other);
    if (str_eq_cstr(m, "revoked"))
        return web_fmt(r, _("Revoked: %lld."), (long long)n);
    if (str_eq_cstr(m, "retried") && other)
        return web_fmt(r, _("Queued again: %lld. Not failed, so left as they were: %lld."),
                       (long long)n, (long long)other);
    if (str_eq_cstr(m, "retried"))
        return web_fmt(r, _("Queued again: %lld."), (long long)n);
    return NULL;
}

/* The filters and order a form of the page came from, to go back to them (back()). */
#define BACK_FIELDS                                                                                \
 "<input type=\"hidden\" name=\"back_badge\" value=\"{{f_badge}}\">"                               \
 "<input type=\"hidden\" name=\"back_state\" value=\"{{f_state}}\">"                               \
 "<input type=\"hidden\" name=\"back_q\" value=\"{{f_q}}\">"                                       \
 "<input type=\"hidden\" name=\"back_sort\" value=\"{{f_sort}}\">"                                 \
 "<input type=\"hidden\" name=\"back_dir\" value=\"{{f_dir}}\">"

static const char awards_tpl[] =
    "<section aria-labelledby=\"filter-h\"><h2 id=\"filter-h\">{{@Find awards}}</h2>"
    "<form method=\"get\" action=\"{{awards_action}}\" class=\"filters\">"
    "<input type=\"hidden\" name=\"s\" value=\"{{s}}\">"
    "{{#f_sort}}<input type=\"hidden\" name=\"sort\" value=\"{{f_sort}}\">"
    "<input type=\"hidden\" name=\"dir\" value=\"{{f_dir}}\">{{/f_sort}}"
    "<p><label for=\"f-q\">{{@Learner}}</label><br><input type=\"search\" id=\"f-q\" name=\"q\" "
    "value=\"{{f_q}}\" maxlength=\"{{q_max}}\" aria-describedby=\"f-q-hint\"><br>"
    "<span class=\"hint\" id=\"f-q-hint\">{{@A part of their name or LMS id}}</span></p>"
    "<p><label for=\"f-badge\">{{@Badge}}</label><br><select id=\"f-badge\" name=\"badge\">"
    "<option value=\"\">{{@Any badge}}</option>"
    "{{#fbadges}}<option value=\"{{slug}}\"{{#sel}} selected{{/sel}}>{{bname}}</option>"
    "{{/fbadges}}</select></p>"
    "<p><label for=\"f-state\">{{@State}}</label><br><select id=\"f-state\" name=\"state\">"
    "<option value=\"\">{{@Any state}}</option>"
    "{{#fstates}}<option value=\"{{key}}\"{{#sel}} selected{{/sel}}>{{label}}</option>"
    "{{/fstates}}</select></p>"
    "<p><button type=\"submit\">{{@Show}}</button></p></form>"
    "<p><a href=\"{{csv}}\" download>{{@Download these awards as CSV}}</a></p></section>"
    "<section aria-labelledby=\"awards-h\"><h2 id=\"awards-h\">{{@Awards}}</h2>"
    "{{#capped}}<p class=\"hint\" id=\"capped\">{{@Showing the {limit} most recent awards: filter by badge or state to see the others, or download them all as CSV.}}</p>{{/capped}}"
    "{{#any_rows}}<p class=\"hint\" role=\"status\">{{@Awards shown:}} "
    "<span id=\"awards-shown\">{{nrows}}</span></p>"
    "<form method=\"post\" action=\"{{revoke_action}}\">"
    "<input type=\"hidden\" name=\"s\" value=\"{{s}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">" BACK_FIELDS
    "<div class=\"scroll\"><table class=\"list awards\"{{^capped}} data-complete=\"1\"{{/capped}}>"
    "<caption>{{@Awards in this course}}</caption>"
    "<thead><tr><th scope=\"col\"><span class=\"sr\">{{@Select}}</span></th>"
    "{{#cols}}<th scope=\"col\"{{#sorted}} aria-sort=\"{{sorted}}\"{{/sorted}} data-col=\"{{col}}\" "
    "data-type=\"{{type}}\"><a href=\"{{href}}\">{{label}}</a></th>{{/cols}}"
    "<th scope=\"col\">{{@Why}}</th></tr></thead><tbody>"
    "{{#rows}}<tr data-award=\"{{id}}\" data-state=\"{{key}}\" data-slug=\"{{slug}}\">"
    "<td><input type=\"checkbox\" id=\"award-{{id}}\" name=\"award\" value=\"{{id}}\"> "
    "<label for=\"award-{{id}}\" class=\"sr\">{{@Select the award of {learner}: {bname}}}</label></td>"
    "<th scope=\"row\" data-sort=\"{{learner}}\" data-uid=\"{{uid}}\">{{learner}} "
    "<span class=\"where\">({{uid}})</span></th>"
    "<td data-label=\"{{@Badge}}\" data-sort=\"{{bname}}\">{{bname}}</td>"
    "<td data-label=\"{{@State}}\" data-sort=\"{{rank}}\"><span class=\"chip chip-{{key}}\">{{label}}</span> {{detail}}"
    "{{#failed}} <button type=\"submit\" formaction=\"{{retry_action}}\" formnovalidate "
    "name=\"retry\" value=\"{{id}}\">{{@Retry}}<span class=\"sr\"> {{learner}}: {{bname}}</span>"
    "</button>{{/failed}}</td>"
    "<td data-label=\"{{@Issued}}\" data-sort=\"{{issued_iso}}\">{{#issued}}<time datetime=\"{{issued_iso}}\">{{issued}}</time>"
    "{{/issued}}{{#public}} <a class=\"public\" href=\"{{public}}\" target=\"_blank\" "
    "rel=\"noopener\">{{@Public page}}<span class=\"sr\"> {{@of {learner}: {bname}}}</span></a>"
    "{{/public}}</td>"
    "<td data-label=\"{{@Why}}\">{{how}}{{#narrative}}: {{narrative}}{{/narrative}}</td></tr>{{/rows}}"
    "</tbody></table></div>"
    "<p><label for=\"reason\">{{@Reason for revoking the selected awards (the learners see it)}}</label>"
    "<br><textarea id=\"reason\" name=\"reason\" rows=\"2\" maxlength=\"{{text_max}}\" "
    "required></textarea></p>"
    "<p><button type=\"submit\" class=\"danger\" data-confirm=\"{{@Revoke the selected awards? Their learners lose them and see your reason.}}\">"
    "{{@Revoke the selected awards}}</button> "
    "<button type=\"submit\" class=\"secondary\" formaction=\"{{retry_action}}\" formnovalidate>"
    "{{@Retry the selected failed awards}}</button></p></form>{{/any_rows}}"
    "{{^any_rows}}<p>{{@No award matches.}}</p>{{/any_rows}}</section>"
    "<section aria-labelledby=\"grant-h\"><h2 id=\"grant-h\">{{@Award a badge by hand}}</h2>"
    "{{^any_live}}<p>{{@This course has no badge to award yet.}}</p>{{/any_live}}"
    "{{#any_live}}{{^any_learners}}<p>{{@No learner has opened the tool in this course yet: learners are listed here after their first launch.}}</p>{{/any_learners}}"
    "{{#any_learners}}<form method=\"post\" action=\"{{award_action}}\">"
    "<input type=\"hidden\" name=\"s\" value=\"{{s}}\">"
    "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">" BACK_FIELDS
    "<p><label for=\"g-badge\">{{@Badge to award}}</label><br>"
    "<select id=\"g-badge\" name=\"badge\" required>"
    "{{#live}}<option value=\"{{slug}}\">{{bname}}</option>{{/live}}</select></p>"
    "<p><label for=\"g-narrative\">{{@Evidence for each selected learner}}</label><br>"
    "<textarea id=\"g-narrative\" name=\"narrative\" rows=\"3\" maxlength=\"{{text_max}}\" "
    "aria-describedby=\"g-narrative-hint\"></textarea><br>"
    "<span class=\"hint\" id=\"g-narrative-hint\">{{@What they did to earn it. Evidence written for one learner below replaces it for them; each learner needs one or the other.}}</span></p>"
    "{{#roster_capped}}<p class=\"hint\">{{@Showing the first {roster_limit} learners by name.}}</p>{{/roster_capped}}"
    "<div class=\"scroll\"><table class=\"list learners\"><caption>{{@Learners of this course}}</caption>"
    "<thead><tr><th scope=\"col\">{{@Learner}}</th><th scope=\"col\">"
    "{{@Their own evidence (optional)}}</th></tr></thead><tbody>"
    "{{#learners}}<tr><td><input type=\"checkbox\" id=\"learner-{{uid}}\" name=\"user\" "
    "value=\"{{uid}}\"> <label for=\"learner-{{uid}}\">{{lname}} <span class=\"where\">"
    "({{lti}})</span></label>{{^email}} <span class=\"hint\">{{@(no e-mail address yet)}}</span>"
    "{{/email}}</td><td><details class=\"evidence\"><summary>{{@Write their own}}"
    "<span class=\"sr\">: {{lname}}</span></summary>"
    "<label for=\"narrative-{{uid}}\" class=\"sr\">{{@Evidence for {lname}}}</label>"
    "<textarea id=\"narrative-{{uid}}\" name=\"narrative-{{uid}}\" rows=\"2\" "
    "maxlength=\"{{text_max}}\"></textarea></details></td></tr>{{/learners}}"
    "</tbody></table></div>"
    "<p><button type=\"submit\">{{@Award the badge to the selected learners}}</button></p>"
    "</form>{{/any_learners}}{{/any_live}}</section>";

/* The sortable columns' headers: each a link that sorts by it, up first, or the other way round. */
static struct web_tpl_var *sort_columns(struct req *r, const struct web_sess *ws,
                                        const struct filters *f, size_t *n)
{
    static const struct {
        enum store_award_sort sort;
        const char *label;
    } cols[] = {
        { STORE_SORT_LEARNER, N_("Learner") },
        { STORE_SORT_BADGE, N_("Badge") },
        { STORE_SORT_STATE, N_("State") },
        { STORE_SORT_ISSUED, N_("Issued") },
    };
    const size_t ncols = sizeof(cols) / sizeof(cols[0]);
    struct web_tpl_var *v = arena_alloc(&r->arena, st_mult(ncols * COL_VARS, sizeof(*v)));
    size_t k = 0;

    for (size_t i = 0; i < ncols; i++) {
        bool sorted = f->q.sort == cols[i].sort;
        const char *params[16];

        /* the sorted column turns round; another sorts up */
        filter_params(f, params, 0, false, cols[i].sort, sorted && !f->q.desc);
        v[k++] = web_tpl_text("sorted", !sorted ? NULL : f->q.desc ? "descending" : "ascending");
        v[k++] = web_tpl_text("col", sorts[cols[i].sort].name);
        v[k++] = web_tpl_text("type", sorts[cols[i].sort].type);
        v[k++] = web_tpl_url("href", web_page_url(r, ws, "/badges/awards", params));
        v[k++] = web_tpl_text("label", _(cols[i].label));
    }
    *n = k / COL_VARS;
    return v;
}

/* One row of the table: ROW_VARS variables. */
static size_t award_row(struct req *r, const struct store_course_admin *c,
                        const struct store_award *a, struct web_tpl_var *rows)
{
    const struct store_badge *b = badge_by_id(c, a->badge_id);
    size_t nr = 0;
    char ts[21];

    if (a->issued_at)
        util_iso8601(a->issued_at, ts);
    rows[nr++] = web_tpl_text("id", web_fmt(r, "%lld", (long long)a->id));
    rows[nr++] = web_tpl_text("key", store_award_state_name(a->state));
    rows[nr++] = web_tpl_text("slug", a->badge_slug);
    rows[nr++] = web_tpl_text("learner", person(a->user_name, a->lti_user_id));
    rows[nr++] = web_tpl_text("uid", a->lti_user_id);
    rows[nr++] = web_tpl_text("bname", b ? b->name : a->badge_slug);
    rows[nr++] = web_tpl_text("label", state_label(a->state));
    rows[nr++] = web_tpl_text("rank", web_fmt(r, "%d", store_award_state_rank(a->state)));
    rows[nr++] = web_tpl_text("detail", state_words(r, a));
    rows[nr++] = web_tpl_text("failed", a->state == AWARD_FAILED ? "1" : NULL);
    rows[nr++] = web_tpl_text("issued", a->issued_at ? web_date(r, a->issued_at) : NULL);
    rows[nr++] =
        web_tpl_text("issued_iso", a->issued_at ? arena_memdupz(&r->arena, ts, strlen(ts)) : "");
    /* its public page: the assertion URL, ours or the platform's */
    rows[nr++] = web_tpl_url("public", a->state == AWARD_ISSUED && a->assertion_url &&
                                               web_tpl_url_ok(a->assertion_url)
                                           ? a->assertion_url
                                           : NULL);
    rows[nr++] = web_tpl_text("how", how_words(a->reason));
    rows[nr++] = web_tpl_text("narrative", clip(r, a->narrative));
    rows[nr++] = web_tpl_text("unused", NULL);
    return nr;
}

void web_route_awards(struct req *r)
{
    struct web_sess *ws = web_staff_session_from_query_or_reply(r);
    struct store_course_admin c;
    struct err err = ERR_INIT;
    struct filters f;
    struct store_award *aw;
    struct store_enrolled *ln;
    size_t naw, nln, nrows, nlearners, ncols;
    struct web_tpl_var *fbadges, *fstates, *live, *rows, *learners, *cols;
    size_t nfb = 0, nfs = 0, nlive = 0, nr = 0, nl = 0;
    const char *params[16];
    const char *notice;

    if (!ws)
        return;
    if (store_course_admin(r->web->store, ws->s.consumer_id, ws->s.context_id, &r->arena, &c,
                           &err) < 0 ||
        filters_from_query(r, &c, &f, &err) < 0 ||
        store_course_awards(r->web->store, ws->s.consumer_id, ws->s.context_id, &f.q,
                            LIMIT_AWARDS_TABLE_ROWS + 1, &r->arena, &aw, &naw, &err) < 0 ||
        store_course_learners(r->web->store, ws->s.context_id, LTI_ROLES_STAFF,
                              LIMIT_AWARDS_ROSTER + 1, &r->arena, &ln, &nln, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    nrows = naw > LIMIT_AWARDS_TABLE_ROWS ? LIMIT_AWARDS_TABLE_ROWS : naw;
    nlearners = nln > LIMIT_AWARDS_ROSTER ? LIMIT_AWARDS_ROSTER : nln;

    fbadges = arena_alloc(&r->arena, st_mult(c.nbadges * 3 + 1, sizeof(*fbadges)));
    live = arena_alloc(&r->arena, st_mult(c.nbadges * 2 + 1, sizeof(*live)));
    for (size_t i = 0; i < c.nbadges; i++) {
        const struct store_badge *b = &c.badges[i];
        const char *bname = b->archived_at ? web_fmt(r, _("%s (archived)"), b->name) : b->name;

        fbadges[nfb++] = web_tpl_text("slug", b->slug);
        fbadges[nfb++] = web_tpl_text("bname", bname);
        fbadges[nfb++] =
            web_tpl_text("sel", f.q.badge && strcmp(f.q.badge, b->slug) == 0 ? "1" : NULL);
        if (b->archived_at)
            continue;
        live[nlive++] = web_tpl_text("slug", b->slug);
        live[nlive++] = web_tpl_text("bname", b->name);
    }
    fstates = arena_alloc(&r->arena, 6 * 3 * sizeof(*fstates));
    for (int st = AWARD_QUEUED; st <= AWARD_REVOKED; st++) {
        fstates[nfs++] = web_tpl_text("key", store_award_state_name(st));
        fstates[nfs++] = web_tpl_text("label", state_label(st));
        fstates[nfs++] = web_tpl_text("sel", f.q.state == st ? "1" : NULL);
    }
    rows = arena_alloc(&r->arena, st_mult(nrows * ROW_VARS + 1, sizeof(*rows)));
    for (size_t i = 0; i < nrows; i++)
        nr += award_row(r, &c, &aw[i], rows + nr);
    learners = arena_alloc(&r->arena, st_mult(nlearners * LEARNER_VARS + 1, sizeof(*learners)));
    for (size_t i = 0; i < nlearners; i++) {
        learners[nl++] = web_tpl_text("uid", web_fmt(r, "%lld", (long long)ln[i].user_id));
        learners[nl++] = web_tpl_text("lname", person(ln[i].name, ln[i].lti_user_id));
        learners[nl++] = web_tpl_text("lti", ln[i].lti_user_id);
        learners[nl++] = web_tpl_text("email", ln[i].email);
    }
    cols = sort_columns(r, ws, &f, &ncols);
    filter_params(&f, params, 0, true, STORE_SORT_NEWEST, false);
    notice = notice_words(r);
    {
        struct web_tpl_var vars[] = {
            web_tpl_url("awards_action", web_fmt(r, "%s/badges/awards", r->web->public_path)),
            web_tpl_url("revoke_action", web_fmt(r, "%s/badges/revoke", r->web->public_path)),
            web_tpl_url("retry_action", web_fmt(r, "%s/badges/retry", r->web->public_path)),
            web_tpl_url("award_action", web_fmt(r, "%s/badges/award", r->web->public_path)),
            web_tpl_url("csv", web_page_url(r, ws, "/badges/awards.csv", params)),
            web_tpl_list("fbadges", fbadges, 3, nfb / 3),
            web_tpl_list("fstates", fstates, 3, nfs / 3),
            web_tpl_list("cols", cols, COL_VARS, ncols),
            web_tpl_text("f_badge", f.q.badge),
            web_tpl_text("f_state", f.q.state >= 0 ? store_award_state_name(f.q.state) : NULL),
            web_tpl_text("f_q", f.q.learner),
            web_tpl_text("f_sort", f.q.sort != STORE_SORT_NEWEST ? sorts[f.q.sort].name : NULL),
            web_tpl_text("f_dir", f.q.desc ? "desc" : "asc"),
            web_tpl_text("q_max", web_fmt(r, "%d", LIMIT_AWARDS_SEARCH_LEN)),
            web_tpl_text("capped", naw > nrows ? "1" : NULL),
            web_tpl_text("limit", web_fmt(r, "%d", LIMIT_AWARDS_TABLE_ROWS)),
            web_tpl_text("any_rows", nrows ? "1" : NULL),
            web_tpl_text("nrows", web_fmt(r, "%zu", nrows)),
            web_tpl_list("rows", rows, ROW_VARS, nr / ROW_VARS),
            web_tpl_text("text_max", web_fmt(r, "%d", LIMIT_BADGE_TEXT_LEN)),
            web_tpl_text("any_live", nlive ? "1" : NULL),
            web_tpl_list("live", live, 2, nlive / 2),
            web_tpl_text("any_learners", nlearners ? "1" : NULL),
            web_tpl_text("roster_capped", nln > nlearners ? "1" : NULL),
            web_tpl_text("roster_limit", web_fmt(r, "%d", LIMIT_AWARDS_ROSTER)),
            web_tpl_list("learners", learners, LEARNER_VARS, nl / LEARNER_VARS),
            /* the table takes the page's width (the layout's <body class="wide">) */
            web_tpl_text("wide", "1"),
            /* this page's notices carry counts: this one is used in place of the layout's */
            web_tpl_text(notice ? "notice" : "no_notice", notice),
        };

        web_reply_page_body(r, ws, _("Awards"), awards_tpl, vars, sizeof(vars) / sizeof(vars[0]));
    }
}

/* ---- the CSV export ---- */

/* One cell: quoted when it must be (RFC 4180), a leading apostrophe for a would-be formula. */
static void csv_cell(struct buf *b, const char *v, bool last)
{
    size_t len = v ? strlen(v) : 0;
    bool formula = len && strchr("=+-@\t\r", v[0]) != NULL;
    bool quote = len && strpbrk(v, ",\"\r\n") != NULL;

    if (quote)
        buf_addch(b, '"');
    if (formula)
        buf_addch(b, '\'');
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '"')
            buf_addch(b, '"');
        buf_addch(b, v[i]);
    }
    if (quote)
        buf_addch(b, '"');
    buf_addstr(b, last ? "\r\n" : ",");
}

static const char *iso(struct req *r, int64_t t)
{
    char ts[21];

    if (!t)
        return "";
    util_iso8601(t, ts);
    return arena_memdupz(&r->arena, ts, strlen(ts));
}

void web_route_awards_csv(struct req *r)
{
    static const char *const header[] = {
        "badge_slug", "badge_name",    "learner_name",  "lms_user_id", "email",
        "state",      "reason",        "narrative",     "issued_at",   "expires_at",
        "revoked_at", "revoke_reason", "assertion_url",
    };
    struct web_sess *ws = web_staff_session_from_query_or_reply(r);
    struct store_course_admin c;
    struct err err = ERR_INIT;
    struct filters f;
    struct store_award *aw;
    size_t naw, len;
    struct buf b = BUF_INIT(LIMIT_AWARDS_CSV_LEN);
    char slug[65], disposition[128];
    const char *hdrs[] = { "Content-Disposition", disposition, "Cache-Control", "no-store", NULL };
    const size_t ncols = sizeof(header) / sizeof(header[0]);
    char *body;

    if (!ws)
        return;
    if (store_course_admin(r->web->store, ws->s.consumer_id, ws->s.context_id, &r->arena, &c,
                           &err) < 0 ||
        filters_from_query(r, &c, &f, &err) < 0 ||
        store_course_awards(r->web->store, ws->s.consumer_id, ws->s.context_id, &f.q,
                            LIMIT_AWARDS_CSV_ROWS + 1, &r->arena, &aw, &naw, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    if (naw > LIMIT_AWARDS_CSV_ROWS) {
        err_set(&err, ERR_TOOBIG, _("more than %d awards match: filter by badge or state"),
                LIMIT_AWARDS_CSV_ROWS);
        web_reply_err(r, &err);
        return;
    }
    for (size_t i = 0; i < ncols; i++)
        csv_cell(&b, header[i], i + 1 == ncols);
    for (size_t i = 0; i < naw; i++) {
        const struct store_award *a = &aw[i];
        const struct store_badge *bc = badge_by_id(&c, a->badge_id);
        const char *cells[] = {
            a->badge_slug,
            bc ? bc->name : "",
            a->user_name,
            a->lti_user_id,
            a->recipient_email,
            store_award_state_name(a->state),
            a->reason,
            a->narrative,
            iso(r, a->issued_at),
            iso(r, a->expires_at),
            iso(r, a->revoked_at),
            a->revoke_reason,
            a->assertion_url,
        };

        for (size_t k = 0; k < ncols; k++)
            csv_cell(&b, cells[k], k + 1 == ncols);
    }
    if (buf_check(&b, "CSV export", &err) < 0) {
        buf_release(&b);
        err_clear(&err);
        err_set(&err, ERR_TOOBIG, _("the export is larger than %d MiB: filter by badge or state"),
                LIMIT_AWARDS_CSV_LEN / (1024 * 1024));
        web_reply_err(r, &err);
        return;
    }
    /* a file name of letters, digits and dashes only: nothing to quote or escape */
    if (!str_slug(slug, sizeof(slug), 48, c.lti_context_id, NULL))
        snprintf(slug, sizeof(slug), "course");
    snprintf(disposition, sizeof(disposition), "attachment; filename=\"awards-%s.csv\"", slug);
    body = buf_detach(&b, &len);
    web_reply(r, 200, "text/csv; charset=utf-8", body, len, hdrs);
}

/* ---- the forms ---- */

/*
 * A text of a form (a narrative, a reason): carriage returns dropped
 * (browsers send CRLF), blank lines and spaces around it too, UTF-8 without control characters but
 * newline and tab, at most `max` bytes; "" when absent.
 */
static int form_text(struct req *r, struct str v, size_t max, const char **out, struct err *err)
{
    char *t = arena_alloc(&r->arena, v.len + 1);
    size_t n = 0;
    struct str s;

    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] != '\r')
            t[n++] = v.ptr[i];
    }
    s = (struct str){ t, n };
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t' || s.ptr[0] == '\n')) {
        s.ptr++;
        s.len--;
    }
    while (s.len &&
           (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t' || s.ptr[s.len - 1] == '\n'))
        s.len--;
    if (s.len > max)
        return err_set(err, ERR_INVALID, _("a text is longer than %zu bytes"), max);
    for (size_t i = 0; i < s.len; i++) {
        if ((unsigned char)s.ptr[i] < 0x20 && s.ptr[i] != '\n' && s.ptr[i] != '\t')
            return err_set(err, ERR_INVALID, "%s", _("a text contains control characters"));
    }
    if (!str_utf8_valid(s))
        return err_set(err, ERR_INVALID, "%s", _("a text is not valid UTF-8"));
    *out = arena_strz(&r->arena, s);
    return 0;
}

/* Positive ids from the repeated field `name`, duplicates dropped; at most `max`. */
static int form_ids(struct req *r, const char *name, size_t max, int64_t **out, size_t *n,
                    struct err *err)
{
    struct str *v = arena_alloc(&r->arena, st_mult(max + 1, sizeof(*v)));
    size_t got = web_post_all(r, name, v, max + 1), k = 0;
    int64_t *ids = arena_alloc(&r->arena, st_mult(got + 1, sizeof(*ids)));

    if (got > max)
        return err_set(err, ERR_INVALID, _("choose at most %zu at once"), max);
    for (size_t i = 0; i < got; i++) {
        int64_t id;
        bool seen = false;

        if (str_to_i64(str_trim(v[i]), 1, INT64_MAX, &id) < 0)
            return err_set(err, ERR_INVALID, "%s", _("the form names something that is not there"));
        for (size_t j = 0; j < k && !seen; j++)
            seen = ids[j] == id;
        if (!seen)
            ids[k++] = id;
    }
    *out = ids;
    *n = k;
    return 0;
}

/*
 * 303 back to the table with the filters the form came from (checked by
 * the page again) and a notice with its counts.
 */
static void back(struct req *r, const struct web_sess *ws, const char *notice, size_t n,
                 size_t other)
{
    const char *params[20];
    size_t k = 0;
    struct str badge = web_post_get(r, "back_badge"), state = web_post_get(r, "back_state");
    struct str q = web_post_get(r, "back_q"), sort = web_post_get(r, "back_sort");
    struct str dir = web_post_get(r, "back_dir");

    params[k++] = "n";
    params[k++] = web_fmt(r, "%zu", n);
    params[k++] = "other";
    params[k++] = web_fmt(r, "%zu", other);
    if (badge.len && badge.len <= LIMIT_SLUG_LEN && !str_has_ctl(badge)) {
        params[k++] = "badge";
        params[k++] = arena_strz(&r->arena, badge);
    }
    if (state.len && state.len <= 32 && !str_has_ctl(state)) {
        params[k++] = "state";
        params[k++] = arena_strz(&r->arena, state);
    }
    if (q.len && q.len <= LIMIT_AWARDS_SEARCH_LEN && !str_has_ctl(q)) {
        params[k++] = "q";
        params[k++] = arena_strz(&r->arena, q);
    }
    if (sort.len && sort.len <= 32 && !str_has_ctl(sort)) {
        params[k++] = "sort";
        params[k++] = arena_strz(&r->arena, sort);
        if (dir.len && dir.len <= 32 && !str_has_ctl(dir)) {
            params[k++] = "dir";
            params[k++] = arena_strz(&r->arena, dir);
        }
    }
    params[k] = NULL;
    web_back_to(r, ws, "/badges/awards", notice, params);
}

void web_route_award(struct req *r)
{
    struct web_sess *ws = arena_alloc(&r->arena, sizeof(*ws));
    struct err err = ERR_INIT;
    struct awards_grant_to *to;
    const char *common = "", *slug;
    struct str badge;
    int64_t *ids;
    size_t n, added = 0;

    if (web_form_session_or_reply(r, true, ws) < 0)
        return;
    if (!r->web->cfg.awards) {
        web_reply_refusal(r, ERR_UNAVAILABLE, _("awards cannot be made on this server"));
        return;
    }
    badge = str_trim(web_post_get(r, "badge"));
    if (!badge.len || badge.len > LIMIT_SLUG_LEN || str_has_ctl(badge)) {
        web_reply_refusal(r, ERR_INVALID, _("choose a badge of this course"));
        return;
    }
    slug = arena_strz(&r->arena, badge);
    if (form_ids(r, "user", LIMIT_AWARDS_ROSTER, &ids, &n, &err) < 0 ||
        form_text(r, web_post_get(r, "narrative"), LIMIT_BADGE_TEXT_LEN, &common, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    if (!n) {
        web_reply_refusal(r, ERR_INVALID, _("choose at least one learner"));
        return;
    }
    to = arena_alloc(&r->arena, st_mult(n, sizeof(*to)));
    for (size_t i = 0; i < n; i++) {
        const char *own = "";

        if (form_text(r, web_post_get(r, web_fmt(r, "narrative-%lld", (long long)ids[i])),
                      LIMIT_BADGE_TEXT_LEN, &own, &err) < 0) {
            web_reply_err(r, &err);
            return;
        }
        memset(&to[i], 0, sizeof(to[i]));
        to[i].user_id = ids[i];
        to[i].narrative = own[0] ? own : common;
        if (!to[i].narrative[0]) {
            web_reply_refusal(
                r, ERR_INVALID,
                _("write the evidence for each selected learner, or one text for all of "
                  "them"));
            return;
        }
    }
    if (awards_grant_course(r->web->cfg.awards, ws->s.consumer_id, ws->s.context_id, slug, to, n,
                            &err) < 0) {
        if (err.code == ERR_NOTFOUND) {
            err_clear(&err);
            err_set(&err, ERR_INVALID, "%s", _("that badge is not one of this course"));
        }
        web_reply_err(r, &err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        added += to[i].added;
    back(r, ws, "awarded", added, n - added);
}

/* Revokes or retries the awards the form names, all of this course or none. */
static void change(struct req *r, enum store_course_change what)
{
    struct web_sess *ws = arena_alloc(&r->arena, sizeof(*ws));
    struct err err = ERR_INIT;
    const char *reason = NULL;
    int64_t *ids;
    bool *changed;
    size_t n, done = 0;

    if (web_form_session_or_reply(r, true, ws) < 0)
        return;
    /* a row's own Retry button names its award; else the checked ones */
    if (what == STORE_COURSE_RETRY && web_post_field(r, "retry")) {
        if (form_ids(r, "retry", 1, &ids, &n, &err) < 0) {
            web_reply_err(r, &err);
            return;
        }
    } else if (form_ids(r, "award", LIMIT_AWARDS_TABLE_ROWS, &ids, &n, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    if (!n) {
        web_reply_refusal(r, ERR_INVALID, _("choose at least one award"));
        return;
    }
    if (what == STORE_COURSE_REVOKE) {
        if (form_text(r, web_post_get(r, "reason"), LIMIT_BADGE_TEXT_LEN, &reason, &err) < 0) {
            web_reply_err(r, &err);
            return;
        }
        if (!reason[0]) {
            web_reply_refusal(r, ERR_INVALID,
                              _("give the reason for revoking: the learners see it"));
            return;
        }
    }
    changed = arena_alloc(&r->arena, st_mult(n, sizeof(*changed)));
    if (store_course_awards_change(r->web->store, ws->s.consumer_id, ws->s.context_id, what, ids, n,
                                   reason, util_now(), changed, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        done += changed[i];
    /* the worker withdraws a revoked badge at its backend, and issues a retried one */
    if (done && r->web->cfg.awards)
        awards_wake(r->web->cfg.awards);
    back(r, ws, what == STORE_COURSE_REVOKE ? "revoked" : "retried", done, n - done);
}

void web_route_revoke(struct req *r)
{
    change(r, STORE_COURSE_REVOKE);
}

void web_route_retry(struct req *r)
{
    change(r, STORE_COURSE_RETRY);
}
