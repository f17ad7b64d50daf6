/*
 * web/badgepage.c - the public pages of a badge: what a person sees at the
 * URLs of the Open Badges documents (an Assertion, a BadgeClass, the
 * Issuer), the recipient check, the learner's choice to show their name,
 * and the pages' own stylesheet (screen and print).
 *
 * The assertion URL is the one identity of an award: web/ob.c asks
 * web_accepts_html() and sends a browser here; every other client (no
 * Accept, `*` / `*` alone, JSON or JSON-LD preferred or tied) gets the
 * document exactly as before. Both answers carry Vary: Accept.
 *
 * The assertion page says first whether the badge stands (valid, expired,
 * revoked with its reason), then what it is and who issued it. It never
 * shows the recipient's address; their name only when they chose to show
 * it (users.show_name, off until they do). Whoever the badge is shown to
 * may check an address they know against it: the address is hashed with
 * the award's salt as Open Badges hashes recipients and compared in
 * constant time with the hash of the recipient's, the same work whatever
 * the answer, and at most LIMIT_RECIPIENT_CHECKS_CLIENT checks a client
 * (LIMIT_RECIPIENT_CHECKS_BADGE a badge) per LIMIT_RECIPIENT_CHECK_WINDOW
 * seconds, so the form is no oracle for guessing addresses in bulk (counted
 * in the database, store_rate_take: every instance counts together).
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"

#include <ctype.h>
#include <jansson.h>

/* ---- content negotiation -------------------------------------------------- */

/*
 * The q-value the Accept header gives `type` ("text/html") by its most
 * specific matching range (type/subtype 3, type/ * 2, * / * 1, in *spec);
 * 0 when no range matches.
 */
static double accept_q(const char *accept, const char *type, int *spec)
{
    struct str rest = str_from_cstr(accept);
    const char *slash = strchr(type, '/');
    size_t major = (size_t)(slash - type);
    double best = 0;

    *spec = 0;
    while (rest.len) {
        const char *comma = memchr(rest.ptr, ',', rest.len);
        size_t len = comma ? (size_t)(comma - rest.ptr) : rest.len;
        struct str item = { rest.ptr, len };
        const char *semi = memchr(item.ptr, ';', item.len);
        struct str range =
            str_trim((struct str){ item.ptr, semi ? (size_t)(semi - item.ptr) : len });
        double q = 1;
        int s = 0;

        if (str_case_eq_cstr(range, type))
            s = 3;
        else if (range.len == major + 2 && strncasecmp(range.ptr, type, major + 1) == 0 &&
                 range.ptr[major + 1] == '*')
            s = 2;
        else if (str_eq_cstr(range, "*/*"))
            s = 1;
        /* parameters: only q matters ("q=0.8"; anything unreadable counts as 1) */
        while (semi && s) {
            const char *p = semi + 1, *end = item.ptr + item.len;
            const char *next = memchr(p, ';', (size_t)(end - p));
            struct str param = str_trim((struct str){ p, (size_t)((next ? next : end) - p) });

            if (param.len >= 2 && (param.ptr[0] == 'q' || param.ptr[0] == 'Q') &&
                param.ptr[1] == '=') {
                char v[8];
                size_t n = param.len - 2 < sizeof(v) - 1 ? param.len - 2 : sizeof(v) - 1;
                char *e;
                double d;

                memcpy(v, param.ptr + 2, n);
                v[n] = '\0';
                d = strtod(v, &e);
                if (e != v && d >= 0 && d <= 1)
                    q = d;
            }
            semi = next;
        }
        if (s > *spec) {
            *spec = s;
            best = q;
        }
        if (!comma)
            break;
        rest.ptr += len + 1;
        rest.len -= len + 1;
    }
    return best;
}

bool web_accepts_html(struct req *r)
{
    const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
    const char *html[] = { "text/html", "application/xhtml+xml" };
    const char *json[] = { "application/ld+json", "application/json" };
    double qh = 0, qj = 0;

    if (!accept)
        return false;
    for (size_t i = 0; i < 2; i++) {
        int spec;
        double q = accept_q(accept, html[i], &spec);

        /* HTML named (or text/ *), not only matched by * / *: a client that takes anything gets
         * JSON */
        if (spec >= 2 && q > qh)
            qh = q;
        q = accept_q(accept, json[i], &spec);
        if (q > qj)
            qj = q;
    }
    /* preferred: a tie goes to the document, which validators and backpacks read */
    return qh > 0 && qh > qj;
}

/* ---- what the pages share ----------------------------------------------- */

struct issuer_info {
    const char *name, *url, *image, *description;
    bool remote; /* issued through a remote platform */
};

/*
 * The profile of the issuer a BadgeClass of `backend` is issued as (NULL: the
 * hosted issuer's page). The hosted issuer's is read from its document (the
 * one source of its values); a remote platform's is its [backend.NAME]
 * issuer_name alone, or nothing when that is not set: the page then names no
 * issuer rather than this server's, which did not issue the badge.
 */
static void issuer_info(struct req *r, const char *backend, struct issuer_info *out)
{
    struct awards_doc doc = { 0 };
    struct err err = ERR_INIT;
    json_t *j;

    memset(out, 0, sizeof(*out));
    if (!r->web->cfg.awards)
        return;
    if (backend && strcmp(backend, "hosted") != 0) {
        out->name = awards_backend_issuer_name(r->web->cfg.awards, backend);
        out->remote = true;
        return;
    }
    if (awards_ob_issuer(r->web->cfg.awards, &doc, &err) < 0)
        return;
    j = json_loadb(doc.body, doc.len, 0, NULL);
    free(doc.body);
    if (!j)
        return;
    {
        const char *keys[] = { "name", "url", "image", "description" };
        const char **into[] = { &out->name, &out->url, &out->image, &out->description };

        for (size_t i = 0; i < 4; i++) {
            const char *v = json_string_value(json_object_get(j, keys[i]));

            *into[i] = v ? arena_strz(&r->arena, str_from_cstr(v)) : NULL;
        }
    }
    json_decref(j);
}

/* AlignmentObjects as a list of items (name, url, description, framework, code). */
#define ALIGN_VARS 5
static struct web_tpl_var alignments(struct req *r, const char *json_text)
{
    json_t *j = json_text ? json_loads(json_text, 0, NULL) : NULL;
    size_t n = json_is_array(j) ? json_array_size(j) : 0;
    struct web_tpl_var *items = arena_alloc(&r->arena, st_mult(n + 1, ALIGN_VARS * sizeof(*items)));
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(j, i);
        const char *keys[] = { "targetName", "targetUrl", "targetDescription", "targetFramework",
                               "targetCode" };
        const char *names[] = { "aname", "aurl", "adesc", "aframe", "acode" };

        for (size_t f = 0; f < ALIGN_VARS; f++) {
            const char *v = json_string_value(json_object_get(o, keys[f]));

            v = v ? arena_strz(&r->arena, str_from_cstr(v)) : NULL;
            items[k * ALIGN_VARS + f] =
                f == 1 ? web_tpl_url(names[f], v && web_tpl_url_ok(v) ? v : NULL)
                       : web_tpl_text(names[f], v);
        }
        k++;
    }
    json_decref(j);
    return web_tpl_list("alignments", items, ALIGN_VARS, k);
}

static const char head_tpl[] =
    "<!DOCTYPE html>\n<html lang=\"{{lang}}\" prefix=\"og: https://ogp.me/ns#\"><head>"
    "<meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>{{title}}</title>"
    "<meta name=\"description\" content=\"{{og_desc}}\">"
    "<link rel=\"canonical\" href=\"{{canonical}}\">"
    "<meta property=\"og:type\" content=\"website\">"
    "<meta property=\"og:title\" content=\"{{title}}\">"
    "<meta property=\"og:description\" content=\"{{og_desc}}\">"
    "<meta property=\"og:url\" content=\"{{canonical}}\">"
    "{{#og_image}}<meta property=\"og:image\" content=\"{{og_image}}\">"
    "<meta property=\"og:image:alt\" content=\"{{og_alt}}\">{{/og_image}}"
    "{{#iss_name}}<meta property=\"og:site_name\" content=\"{{iss_name}}\">{{/iss_name}}"
    "<meta name=\"twitter:card\" content=\"summary\">"
    "<meta name=\"twitter:title\" content=\"{{title}}\">"
    "<meta name=\"twitter:description\" content=\"{{og_desc}}\">"
    "{{#og_image}}<meta name=\"twitter:image\" content=\"{{og_image}}\">"
    "<meta name=\"twitter:image:alt\" content=\"{{og_alt}}\">{{/og_image}}"
    "<link rel=\"stylesheet\" href=\"{{css}}\"><link rel=\"stylesheet\" href=\"{{pcss}}\">"
    "</head><body class=\"public\">";

/* The issuer line: its image, its name linked to its site. */
#define ISSUER_TPL                                                                                 \
 "<span class=\"issuer\">{{#iss_image}}<img src=\"{{iss_image}}\" alt=\"\" width=\"24\" "          \
 "height=\"24\"> {{/iss_image}}{{#iss_url}}<a href=\"{{iss_url}}\" rel=\"noopener\">"              \
 "{{iss_name}}</a>{{/iss_url}}{{^iss_url}}{{iss_name}}{{/iss_url}}"                                \
 "{{^iss_name}}{{#iss_remote}}{{@the institution's badge platform}}{{/iss_remote}}{{/iss_name}}"   \
 "</span>"

#define CRITERIA_TPL                                                                               \
 "<section class=\"criteria\" aria-labelledby=\"criteria-h\"><h2 id=\"criteria-h\">"               \
 "{{@Criteria}}</h2>{{#paras}}<p class=\"narrative\">{{p}}</p>{{/paras}}"                          \
 "{{^paras}}{{^criteria_url}}<p>{{@The issuer gave no criteria.}}</p>{{/criteria_url}}"            \
 "{{/paras}}{{#criteria_url}}<p><a href=\"{{criteria_url}}\" rel=\"noopener\">"                    \
 "{{@The criteria on the issuer's site}}</a></p>{{/criteria_url}}</section>"

/* Replies a rendered public page: no-cache with an ETag (revocation shows at once). */
static void reply_public(struct req *r, unsigned status, const char *tpl,
                         const struct web_tpl_var *vars, size_t n)
{
    struct buf out = BUF_INIT(LIMIT_PAGE_LEN);
    struct err err = ERR_INIT;
    const char *hdrs[] = { "Vary", "Accept, Accept-Language", NULL };
    char *body;
    size_t len;

    if (web_tpl_render(&out, head_tpl, vars, n, &err) < 0 ||
        web_tpl_render(&out, tpl, vars, n, &err) < 0) {
        buf_release(&out);
        web_reply_err(r, &err);
        return;
    }
    body = buf_detach(&out, &len);
    if (status == 200) {
        web_reply_cacheable(r, "text/html; charset=utf-8", body, len, "no-cache", hdrs);
    } else {
        const char *more[] = { "Vary", "Accept, Accept-Language", "Cache-Control", "no-cache",
                               NULL };

        web_reply(r, status, "text/html; charset=utf-8", body, len, more);
    }
}

/* ---- the assertion page --------------------------------------------------- */

/* An award with a public page: issued (or revoked after), published, and its BadgeClass. */
static int public_award(struct req *r, const char *uid, struct store_award *w,
                        struct store_badge *b, struct err *err)
{
    if (store_award_get_uid(r->web->store, uid, &r->arena, w, err) < 0 ||
        (w->state != AWARD_ISSUED && w->state != AWARD_REVOKED) ||
        (!w->assertion_id && !w->assertion_url) ||
        store_badge_get_id(r->web->store, w->badge_id, &r->arena, b, err) < 0) {
        if (err->code == ERR_NOTFOUND || err->code == ERR_NONE) {
            err_clear(err);
            return err_set(err, ERR_NOTFOUND, "there is no such badge");
        }
        return -1;
    }
    return 0;
}

/* The Open Badges recipient hash "sha256$HEX" of an address and a salt, lower-cased. */
static void identity(struct str email, const char *salt, char out[7 + 64 + 1])
{
    struct buf b = BUF_INIT(LIMIT_MAIL_ADDRESS_LEN + 512);
    unsigned char h[32];

    for (size_t i = 0; i < email.len && i < LIMIT_MAIL_ADDRESS_LEN + 1; i++)
        buf_addch(&b, (char)tolower((unsigned char)email.ptr[i]));
    buf_addstr(&b, salt ? salt : "");
    util_sha256(b.ptr ? b.ptr : "", b.len, h);
    buf_release(&b);
    memcpy(out, "sha256$", 7);
    util_hex(out + 7, h, 32);
}

static const char assertion_tpl[] =
    "<main class=\"certificate {{state}}\" data-state=\"{{state}}\">"
    "{{#revoked_on}}<div class=\"status-banner revoked\" role=\"alert\"><p><strong>"
    "{{@This badge was revoked on {revoked_on}.}}</strong> {{@Reason: {reason}}}</p></div>"
    "{{/revoked_on}}"
    "{{#expired}}<div class=\"status-banner expired\" role=\"alert\"><p><strong>"
    "{{@This badge expired on {expired}.}}</strong></p></div>{{/expired}}"
    "<div class=\"cert-head\"><img class=\"badge-img\" src=\"{{img}}\" alt=\"{{bname}}\" "
    "width=\"128\" height=\"128\"><div>"
    "<p class=\"kicker\">{{@Open Badge}} <span class=\"chip {{state}}\">{{status_word}}</span></p>"
    "<h1>{{bname}}</h1>"
    "<p class=\"recipient\">{{#recipient}}{{@Awarded to {recipient}}}{{/recipient}}"
    "{{^recipient}}{{@Awarded to a verified e-mail address}}{{/recipient}}</p>"
    "</div></div>"
    "{{#description}}<p class=\"description\">{{description}}</p>{{/description}}"
    "<dl class=\"facts\"><dt>{{@Issued by}}</dt><dd>" ISSUER_TPL "</dd>"
    "<dt>{{@Issued on}}</dt><dd><time datetime=\"{{issued_iso}}\">{{issued}}</time></dd>"
    "{{#expires}}<dt>{{expires_label}}</dt><dd><time datetime=\"{{expires_iso}}\">{{expires}}</time>"
    "</dd>{{/expires}}"
    "{{#revoked_on}}<dt>{{@Revoked on}}</dt><dd>{{revoked_on}}</dd>{{/revoked_on}}</dl>" CRITERIA_TPL
    "{{#has_ev}}<section class=\"evidence\" aria-labelledby=\"evidence-h\"><h2 "
    "id=\"evidence-h\">{{@Evidence}}</h2>{{#course}}<p>{{@Earned in the course {course}.}}</p>"
    "{{/course}}{{#ev}}<p class=\"narrative\">{{p}}</p>{{/ev}}</section>{{/has_ev}}"
    "<p class=\"actions\">{{#download}}<a class=\"button\" href=\"{{download}}\" "
    "download=\"{{slug}}\">{{@Download the badge image}}</a> {{/download}}"
    "{{#platform}}<a class=\"button secondary\" href=\"{{platform}}\" rel=\"noopener\">"
    "{{@See it on the badge platform}}</a> {{/platform}}"
    "<a class=\"button secondary\" href=\"{{badge_page}}\">{{@About this badge}}</a></p>"
    "<section class=\"check\" aria-labelledby=\"check-h\"><h2 id=\"check-h\">"
    "{{@Check the recipient}}</h2>"
    "{{#check_yes}}<p class=\"check-result yes\" role=\"status\">"
    "{{@Yes: this badge was awarded to {checked}.}}</p>{{/check_yes}}"
    "{{#check_no}}<p class=\"check-result no\" role=\"status\">"
    "{{@No: this badge was not awarded to {checked}.}}</p>{{/check_no}}"
    "<form method=\"post\" action=\"{{check_action}}\"><p><label for=\"check-email\">"
    "{{@E-mail address}}</label> <input id=\"check-email\" name=\"email\" type=\"email\" "
    "required maxlength=\"254\" autocomplete=\"off\" aria-describedby=\"check-hint\"> "
    "<button type=\"submit\">{{@Check}}</button></p>"
    "<p class=\"hint\" id=\"check-hint\">"
    "{{@Was this badge awarded to an address you know? The address is not kept.}}"
    "</p></form></section>"
    "<p class=\"canonical\">{{@The address of this badge:}} <a href=\"{{canonical}}\">"
    "{{canonical}}</a></p>"
    "</main></body></html>\n";

/* A day as <time datetime> wants it: YYYY-MM-DD ("" for 0). */
static const char *iso_day(struct req *r, int64_t t)
{
    char ts[21];

    if (!t)
        return "";
    util_iso8601(t, ts);
    return arena_memdupz(&r->arena, ts, 10);
}

/* `check`: -1 none asked, else the answer (1: awarded to `checked`, 0: not). */
static void assertion_page(struct req *r, const char *uid, int check, const char *checked)
{
    struct web *w = r->web;
    struct store_award a;
    struct store_badge b;
    struct issuer_info is;
    struct err err = ERR_INIT;
    int64_t now = util_now();
    bool revoked, expired, hosted;
    const char *recipient = NULL, *state, *word, *canonical;
    const char *badge_img;

    if (public_award(r, uid, &a, &b, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    revoked = a.state == AWARD_REVOKED;
    expired = !revoked && a.expires_at && a.expires_at <= now;
    hosted = b.backend && strcmp(b.backend, "hosted") == 0;
    if (!revoked) {
        bool show = false;

        if (store_user_show_name(w->store, a.user_id, &show, &err) < 0) {
            web_reply_err(r, &err);
            return;
        }
        if (show && a.user_name && a.user_name[0])
            recipient = a.user_name;
    }
    issuer_info(r, b.backend, &is);
    if (revoked) {
        state = "revoked";
        word = _("Revoked");
    } else if (expired) {
        state = "expired";
        word = _("Expired");
    } else {
        state = "valid";
        word = _("Valid");
    }
    canonical = web_fmt(r, "%s/ob/v2/assertions/%s", w->public_url, a.uid);
    badge_img = web_fmt(r, "%s/ob/v2/badges/%s/image", w->public_url, b.slug);
    {
        struct web_tpl_var paras = web_paragraphs(r, b.criteria_narrative);
        struct web_tpl_var ev = web_paragraphs(r, a.narrative);
        const char *title =
            recipient ? web_fmt(r, _("%s, awarded to %s"), b.name, recipient) : b.name;

        ev.name = "ev";
        struct web_tpl_var vars[] = {
            web_tpl_text("lang", web_lang_tag(web_lang_current())),
            web_tpl_url("css", w->css_url),
            web_tpl_url("pcss", web_fmt(r, "%s/static/public.css", w->public_path)),
            web_tpl_text("title", title),
            web_tpl_text("og_desc", b.description && b.description[0] ? b.description : b.name),
            web_tpl_url("canonical", canonical),
            web_tpl_url("og_image", badge_img),
            web_tpl_text("og_alt", b.name),
            web_tpl_text("iss_name", is.name),
            web_tpl_url("iss_url", is.url && web_tpl_url_ok(is.url) ? is.url : NULL),
            web_tpl_url("iss_image", is.image && web_tpl_url_ok(is.image) ? is.image : NULL),
            web_tpl_text("iss_remote", is.remote ? "1" : NULL),
            web_tpl_text("state", state),
            web_tpl_text("status_word", word),
            web_tpl_text("expired", expired ? web_date(r, a.expires_at) : NULL),
            web_tpl_text("reason",
                         revoked ? (a.revoke_reason && a.revoke_reason[0] ? a.revoke_reason
                                                                          : _("none was given"))
                                 : NULL),
            web_tpl_url("img", web_fmt(r, "%s/ob/v2/badges/%s/image", w->public_path, b.slug)),
            web_tpl_text("bname", b.name),
            web_tpl_text("slug", b.slug),
            web_tpl_text("recipient", recipient),
            web_tpl_text("description", b.description),
            web_tpl_text("issued", web_date(r, a.issued_at)),
            web_tpl_text("issued_iso", iso_day(r, a.issued_at)),
            web_tpl_text("expires_iso", iso_day(r, a.expires_at)),
            web_tpl_text("expires", a.expires_at ? web_date(r, a.expires_at) : NULL),
            web_tpl_text("expires_label", expired ? _("Expired on") : _("Expires on")),
            web_tpl_text("revoked_on", revoked ? web_date(r, a.revoked_at) : NULL),
            paras,
            web_tpl_url("criteria_url",
                        b.criteria_url && web_tpl_url_ok(b.criteria_url) ? b.criteria_url : NULL),
            web_tpl_text("course", a.context_title ? a.context_title : a.lti_context_id),
            ev,
            web_tpl_text("has_ev", ev.count || a.context_title || a.lti_context_id ? "1" : NULL),
            /* the baked image: only the hosted issuer bakes, and not a revoked badge */
            web_tpl_url("download", hosted && !revoked ? web_fmt(r, "%s/ob/v2/assertions/%s/image",
                                                                 w->public_path, a.uid)
                                                       : NULL),
            /* a remote platform's own page of the assertion */
            web_tpl_url("platform", !hosted && a.assertion_url && web_tpl_url_ok(a.assertion_url)
                                        ? a.assertion_url
                                        : NULL),
            web_tpl_url("badge_page", web_fmt(r, "%s/ob/v2/badges/%s", w->public_path, b.slug)),
            web_tpl_text("checked", check >= 0 ? checked : NULL),
            web_tpl_text("check_yes", check > 0 ? "1" : NULL),
            web_tpl_text("check_no", check == 0 ? "1" : NULL),
            web_tpl_url("check_action", web_fmt(r, "%s/badges/check/%s", w->public_path, a.uid)),
        };
        reply_public(r, revoked ? 410 : 200, assertion_tpl, vars, sizeof(vars) / sizeof(vars[0]));
    }
}

void web_page_assertion(struct req *r, const char *uid)
{
    assertion_page(r, uid, -1, NULL);
}

/* ---- the recipient check ---------------------------------------------------- */

void web_route_recipient_check(struct req *r)
{
    struct str uid = { r->path.ptr + strlen("/badges/check/"),
                       r->path.len - strlen("/badges/check/") };
    struct store_award a;
    struct store_badge b;
    struct err err = ERR_INIT;
    char ip[64], given_h[7 + 64 + 1], held_h[7 + 64 + 1];
    struct str email;
    const char *uidz;
    int64_t now = util_now();

    if (!web_id_ok(uid)) {
        web_reply_refusal(r, ERR_NOTFOUND, _("there is no such badge"));
        return;
    }
    uidz = arena_strz(&r->arena, uid);
    if (public_award(r, uidz, &a, &b, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    web_req_client(r, ip, sizeof(ip));
    /*
     * Counted in the database: every instance on it counts together, and
     * a client's key and a badge's are never one count.
     */
    {
        const struct store_rate limits[] = {
            { web_fmt(r, "check-client %s", ip), LIMIT_RECIPIENT_CHECKS_CLIENT,
              LIMIT_RECIPIENT_CHECK_WINDOW },
            { web_fmt(r, "check-badge %s", uidz), LIMIT_RECIPIENT_CHECKS_BADGE,
              LIMIT_RECIPIENT_CHECK_WINDOW },
        };

        if (store_rate_take(r->web->store, limits, 2, now, &err) < 0) {
            if (err.code == ERR_LIMIT)
                web_reply_refusal(r, ERR_LIMIT,
                                  _("too many addresses were checked from here or against this "
                                    "badge: try again in a few minutes"));
            else
                web_reply_err(r, &err);
            return;
        }
    }
    email = str_trim(web_post_get(r, "email"));
    if (email.len == 0 || email.len > LIMIT_MAIL_ADDRESS_LEN) {
        web_reply_refusal(r, ERR_INVALID, _("write the e-mail address to check"));
        return;
    }
    /* the same work whatever the answer: both hashes made, compared in constant time */
    identity(email, a.salt, given_h);
    identity(str_from_cstr(a.recipient_email ? a.recipient_email : ""), a.salt, held_h);
    assertion_page(r, uidz,
                   util_ct_equal(given_h, strlen(given_h), held_h, strlen(held_h)) &&
                       a.recipient_email && a.recipient_email[0],
                   arena_strz(&r->arena, email));
}

/* ---- the BadgeClass and Issuer pages ---------------------------------------- */

static const char badge_tpl[] =
    "<main class=\"certificate badgeclass\">"
    "<div class=\"cert-head\"><img class=\"badge-img\" src=\"{{img}}\" alt=\"{{bname}}\" "
    "width=\"128\" height=\"128\"><div><p class=\"kicker\">{{@Open Badge}}</p>"
    "<h1>{{bname}}</h1></div></div>"
    "{{#description}}<p class=\"description\">{{description}}</p>{{/description}}"
    "<dl class=\"facts\"><dt>{{@Issued by}}</dt><dd>" ISSUER_TPL "</dd>"
    "{{#holders}}<dt>{{@Held by}}</dt><dd class=\"holders\">{{holders}}</dd>{{/holders}}</dl>" CRITERIA_TPL
    "{{#any_align}}<section class=\"alignments\" aria-labelledby=\"align-h\">"
    "<h2 id=\"align-h\">{{@Aligned with}}</h2><ul>{{/any_align}}"
    "{{#alignments}}<li>{{#aurl}}<a href=\"{{aurl}}\" rel=\"noopener\">{{aname}}</a>{{/aurl}}"
    "{{^aurl}}{{aname}}{{/aurl}}{{#aframe}} ({{aframe}}{{#acode}}, {{acode}}{{/acode}})"
    "{{/aframe}}{{#adesc}}: {{adesc}}{{/adesc}}</li>{{/alignments}}"
    "{{#any_align}}</ul></section>{{/any_align}}"
    "<p class=\"canonical\">{{@The address of this badge:}} <a href=\"{{canonical}}\">"
    "{{canonical}}</a></p>"
    "</main></body></html>\n";

void web_page_badgeclass(struct req *r, const char *slug)
{
    struct web *w = r->web;
    struct store_badge b;
    struct issuer_info is;
    struct err err = ERR_INIT;
    int64_t holders = 0;

    if (store_badge_get(w->store, slug, &r->arena, &b, &err) < 0) {
        if (err.code == ERR_NOTFOUND) {
            err_clear(&err);
            err_set(&err, ERR_NOTFOUND, "there is no BadgeClass at this address");
        }
        web_reply_err(r, &err);
        return;
    }
    if (w->cfg.show_holders && store_badge_holders(w->store, b.id, &holders, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    issuer_info(r, b.backend, &is);
    {
        struct web_tpl_var al = alignments(r, b.alignments);
        const char *badge_img = web_fmt(r, "%s/ob/v2/badges/%s/image", w->public_url, b.slug);
        struct web_tpl_var vars[] = {
            web_tpl_text("lang", web_lang_tag(web_lang_current())),
            web_tpl_url("css", w->css_url),
            web_tpl_url("pcss", web_fmt(r, "%s/static/public.css", w->public_path)),
            web_tpl_text("title", b.name),
            web_tpl_text("og_desc", b.description && b.description[0] ? b.description : b.name),
            web_tpl_url("canonical", web_fmt(r, "%s/ob/v2/badges/%s", w->public_url, b.slug)),
            web_tpl_url("og_image", badge_img),
            web_tpl_text("og_alt", b.name),
            web_tpl_text("iss_name", is.name),
            web_tpl_url("iss_url", is.url && web_tpl_url_ok(is.url) ? is.url : NULL),
            web_tpl_url("iss_image", is.image && web_tpl_url_ok(is.image) ? is.image : NULL),
            web_tpl_text("iss_remote", is.remote ? "1" : NULL),
            web_tpl_url("img", web_fmt(r, "%s/ob/v2/badges/%s/image", w->public_path, b.slug)),
            web_tpl_text("bname", b.name),
            web_tpl_text("description", b.description),
            web_tpl_text("holders",
                         w->cfg.show_holders ? web_fmt(r, "%lld", (long long)holders) : NULL),
            web_paragraphs(r, b.criteria_narrative),
            web_tpl_url("criteria_url",
                        b.criteria_url && web_tpl_url_ok(b.criteria_url) ? b.criteria_url : NULL),
            al,
            web_tpl_text("any_align", al.count ? "1" : NULL),
        };

        reply_public(r, 200, badge_tpl, vars, sizeof(vars) / sizeof(vars[0]));
    }
}

static const char issuer_tpl[] =
    "<main class=\"certificate issuer-page\">"
    "<div class=\"cert-head\">{{#iss_image}}<img class=\"badge-img\" src=\"{{iss_image}}\" "
    "alt=\"\" width=\"96\" height=\"96\">{{/iss_image}}<div><p class=\"kicker\">"
    "{{@Badge issuer}}</p><h1>{{iss_name}}</h1></div></div>"
    "{{#iss_desc}}<p class=\"description\">{{iss_desc}}</p>{{/iss_desc}}"
    "{{#iss_url}}<p><a href=\"{{iss_url}}\" rel=\"noopener\">{{iss_url}}</a></p>{{/iss_url}}"
    "<p class=\"canonical\">{{@The address of this issuer:}} <a href=\"{{canonical}}\">"
    "{{canonical}}</a></p>"
    "</main></body></html>\n";

void web_page_issuer(struct req *r)
{
    struct web *w = r->web;
    struct issuer_info is;

    issuer_info(r, NULL, &is);
    {
        struct web_tpl_var vars[] = {
            web_tpl_text("lang", web_lang_tag(web_lang_current())),
            web_tpl_url("css", w->css_url),
            web_tpl_url("pcss", web_fmt(r, "%s/static/public.css", w->public_path)),
            web_tpl_text("title", is.name),
            web_tpl_text("og_desc", is.description && is.description[0] ? is.description : is.name),
            web_tpl_url("canonical", web_fmt(r, "%s/ob/v2/issuer", w->public_url)),
            web_tpl_url("og_image", is.image && web_tpl_url_ok(is.image) ? is.image : NULL),
            web_tpl_text("og_alt", is.name),
            web_tpl_text("iss_name", is.name),
            web_tpl_text("iss_desc", is.description),
            web_tpl_url("iss_url", is.url && web_tpl_url_ok(is.url) ? is.url : NULL),
            web_tpl_url("iss_image", is.image && web_tpl_url_ok(is.image) ? is.image : NULL),
        };

        reply_public(r, 200, issuer_tpl, vars, sizeof(vars) / sizeof(vars[0]));
    }
}

/* ---- the learner's choice: their name on their badges' pages ---------------- */

void web_route_show_name(struct req *r)
{
    struct web_sess *ws = arena_alloc(&r->arena, sizeof(*ws));
    struct err err = ERR_INIT;

    if (web_form_session_or_reply(r, false, ws) < 0)
        return;
    if (store_user_set_show_name(r->web->store, ws->s.user_id,
                                 str_eq_cstr(web_post_get(r, "show"), "1"), util_now(), &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    web_back_to(r, ws, "/badges", "saved", NULL);
}

/* ---- the public pages' stylesheet ----------------------------------------------- */

/*
 * On screen: a certificate card, the status as a coloured chip with its
 * word and, when the badge does not stand, a banner above everything.
 * Printed: the card alone on one page, no buttons, links or the form.
 */
static const char public_css[] =
    ".public main.certificate{max-width:44rem;margin:1.5rem auto;padding:1.5rem;"
    "background:var(--card);border:1px solid var(--line);border-radius:8px}"
    ".cert-head{display:flex;gap:1.25rem;align-items:center}"
    ".cert-head .badge-img{flex:none;border-radius:6px}"
    ".kicker{color:var(--muted);text-transform:uppercase;letter-spacing:.05em;font-size:.85rem;"
    "margin:0}"
    ".recipient{font-size:1.1rem;margin:.25rem 0}"
    ".chip{display:inline-block;padding:0 .6rem;border-radius:999px;font-weight:700;"
    "text-transform:none;letter-spacing:0;border:2px solid currentColor}"
    ".chip.valid{color:var(--ok)}.chip.expired{color:var(--warn)}.chip.revoked{color:var(--bad)}"
    ".status-banner{padding:.75rem 1rem;margin:0 0 1rem;border-radius:6px;color:#fff}"
    ".status-banner p{margin:0}"
    ".status-banner.revoked{background:var(--bad)}.status-banner.expired{background:var(--warn)}"
    ".certificate.revoked,.certificate.expired{border-width:3px}"
    ".certificate.revoked{border-color:var(--bad)}.certificate.expired{border-color:var(--warn)}"
    ".certificate .issuer img{vertical-align:middle;border-radius:3px}"
    ".actions .button{margin:.25rem .25rem .25rem 0}"
    ".check-result{padding:.5rem .75rem;border-left:4px solid;background:var(--bg)}"
    ".check-result.yes{border-color:var(--ok)}.check-result.no{border-color:var(--bad)}"
    ".canonical{color:var(--muted);font-size:.85rem;word-break:break-all}"
    ".alignments ul{padding-left:1.25rem}"
    "@media (max-width:30rem){.public main.certificate{margin:0;border-radius:0}"
    ".cert-head{flex-direction:column;align-items:flex-start}}"
    "@media print{@page{size:A4;margin:12mm}"
    "body.public{background:#fff}"
    ".public main.certificate{max-width:none;margin:0;padding:10mm;border:3px double #333;"
    "break-inside:avoid;page-break-inside:avoid}"
    ".actions,.check,form,button,input,.skip{display:none!important}"
    ".status-banner{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    ".cert-head{flex-direction:row}"
    "a{color:inherit;text-decoration:none}"
    "h1{font-size:1.8rem}}\n";

void web_route_public_style(struct req *r)
{
    const char *hdrs[] = { "Cache-Control", "public, max-age=3600", NULL };

    web_reply(r, 200, "text/css; charset=utf-8", xmemdupz(public_css, sizeof(public_css) - 1),
              sizeof(public_css) - 1, hdrs);
}
