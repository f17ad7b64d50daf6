/*
 * web/web_int.h - what the files of web/ share: the server, one request, the
 * template renderer and the reply helpers.
 */
#ifndef WEB_WEB_INT_H
#define WEB_WEB_INT_H

#include "web/web.h"
#include "lti/lti.h"
#include "store/store.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

struct web {
    struct web_config cfg;
    char *public_url;   /* normalized base, no trailing slash */
    char *public_path;  /* its path part ("" or "/prefix"), stripped from request paths */
    char *launch_url;   /* public_url + "/lti/launch": the signature base string URI */
    char *outcomes_url; /* public_url + "/lti/outcomes": the same for Basic Outcomes */
    /* derived once from the public URL: what pages and the XML configuration link to */
    char *css_url;    /* public_path + "/static/style.css" */
    char *icon_url;   /* public_url + "/static/icon.svg" */
    char *config_url; /* public_url + "/lti/config.xml" */
    char *domain;     /* the public URL's host, for Canvas */
    struct store *store;
    struct MHD_Daemon *daemon;
    unsigned port;
    atomic_int launches_in_flight; /* suspended launches, until their answer is queued */
    atomic_bool stopping;          /* web_stop() began: new launches get 503 */
};

enum req_method {
    REQ_GET,
    REQ_HEAD,
    REQ_POST,
    REQ_OTHER,
};

struct req;
typedef void route_fn(struct req *r);

struct req {
    struct web *web;
    struct MHD_Connection *conn;
    struct arena arena;
    char *raw_uri;    /* request target as received, query included */
    bool uri_toolong; /* longer than LIMIT_URI_LEN: answered 414 */
    struct str path;  /* decoded route path, public prefix removed */
    struct str query; /* raw query string (after '?') */
    enum req_method method;
    const char *method_name;
    route_fn *route;
    const char *allow; /* the methods the route accepts, for 405's Allow */
    bool started, replied, suspended;
    struct buf body;
    bool body_toobig;
    int64_t t0;
    unsigned status;
    size_t bytes_out;

    /* a launch waiting for the database */
    struct store_launch_job job;
    struct lti_launch launch;
    char token[65]; /* the session secret, hex */
};

/* ---- replies (server.c) ---- */

/* Queues a reply taking ownership of `body` (a detached buf); adds the security headers. */
void web_reply(struct req *r, unsigned status, const char *content_type, char *body, size_t len,
               const char *const *headers /* name, value pairs, NULL-terminated; may be NULL */);
/* A short HTML page with a heading and a message (escaped). */
void web_reply_page(struct req *r, unsigned status, const char *title, const char *message);
/* The page for an error: status from its code, its user-visible message. */
void web_reply_err(struct req *r, const struct err *err);
/* 303 See Other (or another 3xx) to an absolute URL. */
void web_reply_redirect(struct req *r, unsigned status, const char *location);
/* The HTTP status for an error code (one table for the whole server). */
unsigned web_status_for(enum err_code code);

/* ---- routes ---- */
void web_route_launch(struct req *r);         /* launch.c */
void web_route_launch_resumed(struct req *r); /* launch.c, after the writer answered */
void web_route_badges(struct req *r);         /* pages.c */
void web_route_home(struct req *r);           /* pages.c */
void web_route_config_xml(struct req *r);     /* pages.c */
void web_route_healthz(struct req *r);        /* pages.c */
void web_route_style(struct req *r);          /* pages.c */
void web_route_icon(struct req *r);           /* pages.c */
void web_route_ob(struct req *r);             /* ob.c: /ob/v2/... */
void web_route_outcomes(struct req *r);       /* outcomes.c: POST /lti/outcomes */

/* ---- templates (tpl.c) ---- */

enum web_tpl_kind {
    TPL_TEXT, /* escaped for HTML text and quoted attributes */
    TPL_URL,  /* http(s) or relative URL, escaped; anything else becomes "#" */
    TPL_RAW,  /* trusted markup, only through web_tpl_raw_unsafe() */
};

struct web_tpl_var {
    const char *name;
    struct str value;
    enum web_tpl_kind kind;
};

/* A text variable (escaped on output). */
struct web_tpl_var web_tpl_text(const char *name, const char *value);
/* A URL variable: only http:, https: and relative URLs pass. */
struct web_tpl_var web_tpl_url(const char *name, const char *value);
/*
 * Trusted markup written as it is. Every caller says in a comment why the
 * markup is trusted; this is the only way around escaping.
 */
struct web_tpl_var web_tpl_raw_unsafe(const char *name, const char *markup);

/*
 * Renders `tpl`: {{name}} writes a variable escaped for its kind, {{{name}}}
 * writes a TPL_RAW variable as it is (and fails for any other kind),
 * {{#name}}...{{/name}} keeps its content when the variable is non-empty,
 * {{^name}}...{{/name}} when it is empty or absent. A missing variable, an
 * unclosed tag or a bad section is ERR_INTERNAL: templates are ours.
 */
int web_tpl_render(struct buf *out, const char *tpl, const struct web_tpl_var *vars, size_t nvars,
                   struct err *err);

#endif
