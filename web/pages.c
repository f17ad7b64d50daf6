/*
 * web/pages.c - the pages and small endpoints: the landing page a launch
 * redirects to, the home page, the XML configuration, health, the stylesheet.
 *
 * The landing page finds its session by the token in the URL (`s`), never by
 * a cookie: inside an LMS iframe with third-party cookies blocked the URL is
 * all the browser keeps. The token is the session's id and a secret of 32
 * random bytes in hex; the database only knows the secret's SHA-256.
 */
#include "base/base.h"
#include "web/web_int.h"

static const char style_css[] =
    ":root{--fg:#1b1f24;--muted:#4a5360;--bg:#f6f7f9;--card:#fff;--accent:#0b5cad;"
    "--line:#d9dde3}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
    "color:var(--fg);background:var(--bg)}"
    ".card{max-width:44rem;margin:1.5rem auto;padding:1.25rem 1.5rem;background:var(--card);"
    "border:1px solid var(--line);border-radius:8px}"
    "h1{font-size:1.4rem;margin:0 0 .5rem}"
    "p{margin:.5rem 0}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:1rem 0}"
    "dt{color:var(--muted)}dd{margin:0}"
    ".role{display:inline-block;padding:.1rem .6rem;border:1px solid var(--accent);"
    "border-radius:999px;color:var(--accent);font-weight:600}"
    "code{background:var(--bg);padding:.1rem .3rem;border-radius:4px;word-break:break-all}"
    "a{color:var(--accent)}"
    "@media (max-width:30rem){.card{margin:0;border-radius:0;border-width:0 0 1px}"
    "dl{grid-template-columns:1fr}}\n";

void web_route_style(struct req *r)
{
    const char *hdrs[] = { "Cache-Control", "public, max-age=3600", NULL };

    web_reply(r, 200, "text/css; charset=utf-8", xmemdupz(style_css, sizeof(style_css) - 1),
              sizeof(style_css) - 1, hdrs);
}

/* The tool's icon: a rosette in the accent colour, 32x32 user units. */
static const char icon_svg[] =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\" width=\"32\" height=\"32\">"
    "<path d=\"M10 19 6 30l5-2 3 4 3-10zM22 19l4 11-5-2-3 4-3-10z\" fill=\"#0b5cad\"/>"
    "<circle cx=\"16\" cy=\"13\" r=\"11\" fill=\"#0b5cad\"/>"
    "<circle cx=\"16\" cy=\"13\" r=\"7\" fill=\"none\" stroke=\"#fff\" stroke-width=\"2\"/>"
    "</svg>\n";

void web_route_icon(struct req *r)
{
    const char *hdrs[] = { "Cache-Control", "public, max-age=86400", NULL };

    web_reply(r, 200, "image/svg+xml", xmemdupz(icon_svg, sizeof(icon_svg) - 1),
              sizeof(icon_svg) - 1, hdrs);
}

static void reply_html(struct req *r, unsigned status, const char *tpl,
                       const struct web_tpl_var *vars, size_t n)
{
    struct buf b = BUF_INIT(LIMIT_PAGE_LEN);
    struct err err = ERR_INIT;
    size_t len;
    char *body;

    if (web_tpl_render(&b, tpl, vars, n, &err) < 0) {
        buf_release(&b);
        web_reply_err(r, &err);
        return;
    }
    body = buf_detach(&b, &len);
    web_reply(r, status, "text/html; charset=utf-8", body, len, NULL);
}

static const char landing_tpl[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Badges{{#course}} \xe2\x80\x94 {{course}}{{/course}}</title>"
    "<link rel=\"stylesheet\" href=\"{{css}}\"></head><body>"
    "<main class=\"card\">"
    "<h1>{{#course}}Badges for {{course}}{{/course}}{{^course}}Badges{{/course}}</h1>"
    "<p>Signed in as <strong>{{name}}</strong> "
    "<span class=\"role\" data-view=\"{{view}}\">{{view_label}}</span></p>"
    "<dl>"
    "<dt>Course</dt><dd>{{#course}}{{course}}{{#label}} ({{label}}){{/label}}{{/course}}"
    "{{^course}}launched outside a course{{/course}}</dd>"
    "<dt>Seen as</dt><dd>{{view}}</dd>"
    "<dt>Learning platform</dt><dd>{{consumer}}</dd>"
    "{{#mode}}<dt>Track</dt><dd>{{mode}}</dd>{{/mode}}"
    "</dl>"
    "{{#return_url}}<p><a href=\"{{return_url}}\">Back to the course</a></p>{{/return_url}}"
    "</main></body></html>\n";

void web_route_badges(struct req *r)
{
    struct web *w = r->web;
    struct err err = ERR_INIT;
    struct form q = { NULL, 0 };
    struct str token = STR_NULL;
    unsigned char hash[32];
    int64_t id = 0;
    struct store_session s;
    const char *view;
    const char *name;

    if (str_present(r->query) &&
        form_parse(&r->arena, r->query.ptr, r->query.len, 32, &q, &err) == 0)
        token = form_get(&q, "s");
    /* "ID-SECRET": a decimal id, a dash, 64 hex digits */
    {
        const char *dash = token.len > 65 ? memchr(token.ptr, '-', token.len) : NULL;
        struct str idpart = { token.ptr, dash ? (size_t)(dash - token.ptr) : 0 };
        struct str secret = { dash ? dash + 1 : NULL, dash ? token.len - idpart.len - 1 : 0 };
        bool ok = dash && secret.len == 64 && str_to_i64(idpart, 1, INT64_MAX, &id) == 0;

        for (size_t i = 0; ok && i < secret.len; i++)
            ok = (secret.ptr[i] >= '0' && secret.ptr[i] <= '9') ||
                 (secret.ptr[i] >= 'a' && secret.ptr[i] <= 'f');
        if (!ok) {
            err_clear(&err);
            err_set(&err, ERR_FORBIDDEN,
                    "this page needs a valid session: open the tool again from your course");
            web_reply_err(r, &err);
            return;
        }
        util_sha256(secret.ptr, secret.len, hash);
    }
    if (store_session_get(w->store, id, hash, util_now(), &r->arena, &s, &err) < 0) {
        if (err.code == ERR_NOTFOUND) {
            err_clear(&err);
            err_set(&err, ERR_FORBIDDEN,
                    "your session has expired or is not valid: open the tool again from your "
                    "course");
        }
        web_reply_err(r, &err);
        return;
    }
    view = lti_roles_view(s.role_flags);
    name = s.user_name && s.user_name[0] ? s.user_name : s.lti_user_id;
    {
        struct web_tpl_var vars[] = {
            web_tpl_url("css", w->css_url),
            web_tpl_text("course", s.context_title ? s.context_title : s.lti_context_id),
            web_tpl_text("label", s.context_label),
            web_tpl_text("name", name),
            web_tpl_text("view", view),
            web_tpl_text("view_label", strcmp(view, "instructor") == 0 ? "Instructor" : "Learner"),
            web_tpl_text("consumer", s.consumer_name),
            web_tpl_text("mode", s.mode),
            web_tpl_url("return_url", s.return_url),
        };

        reply_html(r, 200, landing_tpl, vars, sizeof(vars) / sizeof(vars[0]));
    }
}

static const char home_tpl[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>ltibadges</title><link rel=\"stylesheet\" href=\"{{css}}\"></head><body>"
    "<main class=\"card\"><h1>ltibadges</h1>"
    "<p>An LTI 1.1 tool that awards Open Badges. Add it to your learning platform as an "
    "external tool with the consumer key and secret your administrator created.</p>"
    "<dl><dt>Launch URL</dt><dd><code>{{launch}}</code></dd>"
    "<dt>XML configuration</dt><dd><a href=\"{{config}}\"><code>{{config}}</code></a></dd></dl>"
    "</main></body></html>\n";

void web_route_home(struct req *r)
{
    struct web *w = r->web;
    struct web_tpl_var vars[3];

    vars[0] = web_tpl_url("css", w->css_url);
    vars[1] = web_tpl_text("launch", w->launch_url);
    vars[2] = web_tpl_url("config", w->config_url);
    reply_html(r, 200, home_tpl, vars, 3);
}

void web_route_config_xml(struct req *r)
{
    struct web *w = r->web;
    struct buf b = BUF_INIT(64 * 1024);
    struct err err = ERR_INIT;
    struct lti_tool_info info;
    size_t len;
    char *body;

    info.title = w->cfg.tool_title;
    info.description = w->cfg.tool_description;
    info.launch_url = w->launch_url;
    info.icon_url = w->icon_url;
    info.domain = w->domain;
    info.vendor_url = w->public_url;
    if (lti_config_xml(&b, &info, &err) < 0) {
        buf_release(&b);
        web_reply_err(r, &err);
        return;
    }
    body = buf_detach(&b, &len);
    web_reply(r, 200, "application/xml; charset=utf-8", body, len, NULL);
}

void web_route_healthz(struct req *r)
{
    struct err err = ERR_INIT;

    if (store_ping(r->web->store, &err) < 0) {
        static const char down[] = "database unavailable\n";

        web_reply(r, 503, "text/plain; charset=utf-8", xmemdupz(down, sizeof(down) - 1),
                  sizeof(down) - 1, NULL);
        return;
    }
    web_reply(r, 200, "text/plain; charset=utf-8", xmemdupz("ok\n", 3), 3, NULL);
}
