/*
 * web/public.c - public pages anyone may fetch without a session: a
 * BadgeClass's criteria page (/badges/criteria/SLUG), and the conditional
 * replies (ETag, If-None-Match, 304) they and the Open Badges documents
 * share.
 *
 * The criteria page is what a remote platform that keeps a criteria URL
 * and no text (BadgeKit) links earners and verifiers to, when the
 * BadgeClass has no criteria page of its own: name, image, description,
 * the narrative and the BadgeClass's criteria URL, all escaped. It holds
 * no session and nothing private, so it may be cached (a few minutes, then
 * revalidated by its ETag); archived BadgeClasses keep theirs, since
 * badges already issued point at it.
 */
#include "base/base.h"
#include "web/web_int.h"

#include <strings.h>

/* How long a criteria page may be used without asking again: an edit shows within this. */
#define CRITERIA_CACHE "public, max-age=300"

/* Whether one entity tag of an If-None-Match list is `etag` (weak comparison, RFC 9110 13.1.2). */
static bool etag_listed(const char *list, const char *etag)
{
    struct str want = str_from_cstr(etag);
    struct str rest = str_from_cstr(list);

    while (rest.len) {
        const char *comma = memchr(rest.ptr, ',', rest.len);
        size_t len = comma ? (size_t)(comma - rest.ptr) : rest.len;
        struct str t = str_trim((struct str){ rest.ptr, len });

        if (t.len >= 2 && t.ptr[0] == 'W' && t.ptr[1] == '/') {
            t.ptr += 2;
            t.len -= 2;
        }
        if (str_eq_cstr(t, "*") || str_eq(t, want))
            return true;
        if (!comma)
            break;
        rest.ptr += len + 1;
        rest.len -= len + 1;
    }
    return false;
}

void web_reply_cacheable(struct req *r, const char *content_type, char *body, size_t len,
                         const char *cache_control, const char *const *headers)
{
    const char *hdrs[16];
    size_t n = 0;
    unsigned char digest[32];
    char hex_body[65], hex[33], etag[40];
    const char *inm;

    {
        /* the type is part of the representation: JSON-LD and plain JSON differ */
        char in[2 * 32 + 256];

        util_sha256(body ? body : "", len, digest);
        util_hex(hex_body, digest, 32);
        snprintf(in, sizeof(in), "%s\n%s", content_type ? content_type : "", hex_body);
        util_sha256(in, strlen(in), digest);
    }
    util_hex(hex, digest, 16);
    snprintf(etag, sizeof(etag), "\"%s\"", hex);
    hdrs[n++] = "ETag";
    hdrs[n++] = etag;
    hdrs[n++] = "Cache-Control";
    hdrs[n++] = cache_control;
    for (size_t i = 0; headers && headers[i] && n + 3 < sizeof(hdrs) / sizeof(hdrs[0]); i += 2) {
        hdrs[n++] = headers[i];
        hdrs[n++] = headers[i + 1];
    }
    hdrs[n] = NULL;
    inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm && (r->method == REQ_GET || r->method == REQ_HEAD) && etag_listed(inm, etag)) {
        free(body);
        web_reply(r, 304, NULL, NULL, 0, hdrs);
        return;
    }
    web_reply(r, 200, content_type, body, len, hdrs);
}

static const char criteria_tpl[] =
    "<!DOCTYPE html>\n<html lang=\"{{lang}}\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>{{name}}</title><link rel=\"stylesheet\" href=\"{{css}}\"></head>"
    "<body><main class=\"card criteria\" data-slug=\"{{slug}}\">"
    "<div class=\"badge\"><img src=\"{{img}}\" alt=\"{{name}}\" width=\"96\" height=\"96\">"
    "<div><h1>{{name}}</h1>{{#description}}<p class=\"description\">{{description}}</p>"
    "{{/description}}</div></div>"
    "<h2>{{@Criteria}}</h2>"
    "{{#paras}}<p class=\"narrative\">{{p}}</p>{{/paras}}"
    "{{#criteria_url}}<p class=\"criteria-url\"><a href=\"{{criteria_url}}\" rel=\"noopener\">"
    "{{criteria_url}}</a></p>{{/criteria_url}}"
    "</main></body></html>\n";

void web_route_criteria(struct req *r)
{
    struct str slug = { r->path.ptr + strlen("/badges/criteria/"),
                        r->path.len - strlen("/badges/criteria/") };
    struct store_badge b;
    struct err err = ERR_INIT;
    struct buf out = BUF_INIT(LIMIT_PAGE_LEN);
    const char *hdrs[] = { "Vary", "Accept-Language", NULL };
    char *body;
    size_t len;

    if (!web_id_ok(slug)) {
        web_reply_refusal(r, ERR_NOTFOUND, "there is no BadgeClass at this address");
        return;
    }
    if (store_badge_get(r->web->store, arena_strz(&r->arena, slug), &r->arena, &b, &err) < 0) {
        if (err.code == ERR_NOTFOUND) {
            err_clear(&err);
            err_set(&err, ERR_NOTFOUND, "there is no BadgeClass at this address");
        }
        web_reply_err(r, &err);
        return;
    }
    {
        struct web_tpl_var vars[] = {
            web_tpl_text("lang", web_lang_tag(web_lang_current())),
            web_tpl_url("css", r->web->css_url),
            web_tpl_text("slug", b.slug),
            web_tpl_text("name", b.name),
            web_tpl_text("description", b.description),
            web_tpl_url("img", web_fmt(r, "%s/ob/v2/badges/%s/image", r->web->public_path, b.slug)),
            web_paragraphs(r, b.criteria_narrative),
            /* only http(s): anything else is left out rather than written as "#" */
            web_tpl_url("criteria_url",
                        b.criteria_url && web_tpl_url_ok(b.criteria_url) ? b.criteria_url : NULL),
        };

        if (web_tpl_render(&out, criteria_tpl, vars, sizeof(vars) / sizeof(vars[0]), &err) < 0) {
            buf_release(&out);
            web_reply_err(r, &err);
            return;
        }
    }
    body = buf_detach(&out, &len);
    web_reply_cacheable(r, "text/html; charset=utf-8", body, len, CRITERIA_CACHE, hdrs);
}
