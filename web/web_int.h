/*
 * web/web_int.h - what the files of web/ share: the server, one request, the
 * template renderer and the reply helpers.
 */
#ifndef WEB_WEB_INT_H
#define WEB_WEB_INT_H

#include "web/web.h"
#include "lti/lti.h"
#include "store/store.h"
#include "web/metrics.h"

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
    char *js_url;     /* public_path + "/static/page.js" */
    char *icon_url;   /* public_url + "/static/icon.svg" */
    char *config_url; /* public_url + "/lti/config.xml" */
    char *domain;     /* the public URL's host, for Canvas */
    struct store *store;
    struct MHD_Daemon *daemon;
    unsigned port;
    atomic_int launches_in_flight; /* suspended launches, until their answer is queued */
    atomic_bool stopping;          /* web_stop() began: new launches get 503 */

    /* confirmation mails (email.c): sent by a thread of their own, never by an MHD thread */
    pthread_t mailer;
    bool mailer_started;
    pthread_mutex_t mail_mu;
    pthread_cond_t mail_cv;
    struct req *mail_head, *mail_tail;
    size_t mail_len; /* waiting, about to or being sent: at most LIMIT_MAIL_QUEUE */
    bool mail_stop;
    atomic_int mails_in_flight; /* suspended requests waiting for their mail, until answered */

    /*
     * Connections (server.c): every open one, for its header deadline, and
     * those closed while their client may still send, drained a moment
     * before they are closed; one thread watches both.
     */
    pthread_t guard;
    bool guard_started, guard_stop;
    int guard_wake; /* an eventfd that wakes the guard */
    pthread_mutex_t conn_mu;
    struct web_conn *conns;
    struct web_linger *lingering; /* LIMIT_HTTP_LINGERING slots */
    size_t n_lingering;

    /* what /metrics counts, and who may read it (metrics.c) */
    struct web_metrics *metrics;
    struct web_cidr *metrics_allow;
    size_t n_metrics_allow;
    struct MHD_Daemon *metrics_daemon; /* the separate metrics address, or NULL */
    unsigned metrics_port;

    /* behind a reverse proxy (proxy.c) */
    struct web_cidr *trusted; /* trusted_proxies: whose X-Forwarded-For is believed */
    size_t n_trusted;
    char *authority;            /* the public URL's host[:port], as a Host header has it */
    struct web_former *formers; /* former_public_urls, answered with a redirect */
    size_t n_formers;
};

enum web_lang {
    WEB_LANG_EN,
    WEB_LANG_ES,
};
#define WEB_LANGS 2

struct web_field {
    char *name, *filename, *content_type; /* filename, content_type: file parts only */
    struct buf value;
};

struct web_post {
    struct MHD_PostProcessor *pp;
    struct web_field *fields;
    size_t n, alloc;
    size_t total, max; /* bytes of values so far, and the cap */
    bool toobig, bad;
    bool badname; /* a field's name form_name_ok refuses */
    bool multipart;
    struct buf raw; /* the body as it came, for the checks of web_post_end */
};

struct web_sess {
    struct store_session s;
    const char *token; /* "ID-SECRET" as the request carried it */
    bool staff;        /* instructor roles in this context */
    enum web_lang lang;
    char csrf[65]; /* the form token: HMAC of the session's CSRF secret */
};

enum req_method {
    REQ_GET,
    REQ_HEAD,
    REQ_POST,
    REQ_OTHER,
};

struct req;
struct web_tpl_var;
typedef void route_fn(struct req *r);

/* A confirmation mail a request waits for (email.c); strings in the request's arena. */
struct web_mail {
    const char *to, *subject, *text;
    int64_t confirmation_id; /* withdrawn when the mail could not be sent */
    int status;              /* OUT: net_mail_send()'s */
    bool stopped;            /* OUT: not sent (or given up) because the server stops */
    struct err err;          /* OUT */
    struct req *next;        /* the mailer's queue */
};

struct req {
    struct web *web;
    struct MHD_Connection *conn;
    struct arena arena;
    char *raw_uri;     /* request target as received, query included */
    bool uri_toolong;  /* longer than LIMIT_URI_LEN: answered 414 */
    struct str path;   /* decoded route path, public prefix removed */
    struct str query;  /* raw query string (after '?') */
    struct form qform; /* the query, decoded once before the route runs (server.c) */
    enum req_method method;
    const char *method_name;
    route_fn *route;
    route_fn *resumed; /* runs once a suspended request is resumed (launch, mail) */
    /*
     * Runs at completion instead when the request was resumed but its
     * handler never ran again: the client had closed the connection, and
     * MHD ends such a request without calling the handler (0.9.75).
     */
    route_fn *abandoned;
    atomic_int *held;  /* the in-flight count this request holds (web_req_hold), or NULL */
    const char *allow; /* the methods the route accepts, for 405's Allow */
    bool started, replied, suspended;
    struct web_conn *wc; /* its connection (server.c) */
    size_t uri_len;      /* of the request target as received (at most LIMIT_URI_LEN) */
    bool declares_body;  /* a Content-Length other than 0, or a Transfer-Encoding */
    struct buf body;
    bool body_toobig;
    size_t dropped; /* body bytes dropped past the limit (a chunked body) */
    int64_t t0;
    size_t route_no; /* its index in the routes table (server.c), for /metrics */
    enum web_launch_outcome launch_outcome; /* set by the launch route where it knows why */
    unsigned status;
    size_t bytes_out;

    struct web_post post;  /* a page form's fields */
    bool form;             /* the route reads a page form (web_post_*) */
    struct web_sess *sess; /* the page's session once known (CSP frame-ancestors) */

    struct web_mail *mail; /* a confirmation mail being sent */

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
/*
 * The page for a refusal: web_reply_err() of an error `code` whose message
 * is `msg` (shown to the user, escaped; taken as text, not as a format).
 */
void web_reply_refusal(struct req *r, enum err_code code, const char *msg);
/* 303 See Other (or another 3xx) to an absolute URL. */
void web_reply_redirect(struct req *r, unsigned status, const char *location);
/* The HTTP status for an error code (one table for the whole server). */
unsigned web_status_for(enum err_code code);

/*
 * Counts the request in `count` (launches or mails in flight, which
 * web_stop() waits for) until web_req_release(). The request's completion
 * releases it too, whatever happened to the connection: a count is given
 * back exactly once.
 */
void web_req_hold(struct req *r, atomic_int *count);
/* Gives back the count the request holds; a no-op when it holds none. */
void web_req_release(struct req *r);

/* ---- behind a reverse proxy (proxy.c) ---- */

/* Reads trusted_proxies and former_public_urls (after the public URL is made). */
int web_proxy_start(struct web *w, struct err *err);
void web_proxy_free(struct web *w);
/*
 * When the request came under a former public URL (its Host and path
 * prefix), answers it with a permanent redirect to the same path and query
 * under the public URL (301 for GET and HEAD, 308 otherwise) and returns
 * true; false and nothing sent otherwise.
 */
bool web_former_url_reply(struct req *r);
/* The request's client address: its peer, or what trusted proxies say (web_client_address). */
void web_req_client(struct req *r, char *out, size_t outlen);

/* ---- routes ---- */
/* The routes table (server.c): how many routes, and the path of route `i` (for /metrics). */
size_t web_routes_count(void);
const char *web_route_path(size_t i);
/* Binds a listening socket to HOST:PORT (`*port_out`: the port bound, for port 0). */
int web_bind_listen(const char *host, unsigned port, int *fd_out /* OUT */,
                    unsigned *port_out /* OUT */, bool *v6 /* OUT */, struct err *err);

void web_route_launch(struct req *r);         /* launch.c */
void web_route_launch_resumed(struct req *r); /* launch.c, after the writer answered */
void web_route_badges(struct req *r);         /* pages.c */
void web_route_home(struct req *r);           /* pages.c */
void web_route_config_xml(struct req *r);     /* pages.c */
void web_route_style(struct req *r);          /* pages.c */
void web_route_icon(struct req *r);           /* pages.c */
void web_route_ob(struct req *r);             /* ob.c: /ob/v2/... */
void web_route_criteria(struct req *r);       /* public.c: GET /badges/criteria/SLUG */
void web_route_badgekit_hook(struct req *r);  /* hooks.c: POST /hooks/badgekit/NAME */
/* ---- public badge pages (badgepage.c) ---- */
/*
 * Whether the request's Accept prefers HTML to JSON and JSON-LD by q-value
 * (text/html or text/ * named, not only * / *; a tie goes to JSON).
 */
bool web_accepts_html(struct req *r);
/* The human pages of /ob/v2/assertions/UID, /ob/v2/badges/SLUG and /ob/v2/issuer. */
void web_page_assertion(struct req *r, const char *uid);
void web_page_badgeclass(struct req *r, const char *slug);
void web_page_issuer(struct req *r);
void web_route_recipient_check(struct req *r); /* POST /badges/check/UID */
void web_route_show_name(struct req *r);       /* POST /badges/showname */
void web_route_public_style(struct req *r);    /* GET /static/public.css */
/* A slug or uid as we make them: 1 to LIMIT_SLUG_LEN of [A-Za-z0-9_-] (ob.c). */
bool web_id_ok(struct str s);
/*
 * web_reply() of a public document that may be cached, with a strong ETag
 * (of the body) and `cache_control`: a GET or HEAD whose If-None-Match
 * names that ETag (or "*") gets 304 and no body instead (public.c).
 * Takes ownership of `body`; `headers` as web_reply's.
 */
void web_reply_cacheable(struct req *r, const char *content_type, char *body, size_t len,
                         const char *cache_control, const char *const *headers);

/*
 * The Content-Security-Policy of every image the tool serves (badge images,
 * baked ones, the default image, the icon): an SVG opened on its own, as a
 * document of our origin, runs no script and fetches nothing, whatever the
 * sanitizer missed; its inline styles still draw. (web_reply adds
 * X-Content-Type-Options: nosniff to every answer, so no image is read as
 * anything but its type.)
 */
#define WEB_IMAGE_CSP "default-src 'none'; style-src 'unsafe-inline'"
void web_route_outcomes(struct req *r);      /* outcomes.c: POST /lti/outcomes */
void web_route_script(struct req *r);        /* pages.c: /static/page.js */
void web_route_settings(struct req *r);      /* instructor.c: POST /badges/settings */
void web_route_awards(struct req *r);        /* awards.c: GET /badges/awards */
void web_route_awards_csv(struct req *r);    /* awards.c: GET /badges/awards.csv */
void web_route_award(struct req *r);         /* awards.c: POST /badges/award */
void web_route_revoke(struct req *r);        /* awards.c: POST /badges/revoke */
void web_route_retry(struct req *r);         /* awards.c: POST /badges/retry */
void web_route_all(struct req *r);           /* learner.c: GET /badges/all */
void web_route_edit(struct req *r);          /* editor.c: GET /badges/edit */
void web_route_save(struct req *r);          /* editor.c: POST /badges/save */
void web_route_archive(struct req *r);       /* editor.c: POST /badges/archive */
void web_route_delete(struct req *r);        /* editor.c: POST /badges/delete */
void web_route_default_image(struct req *r); /* pages.c: /static/default-badge.svg */
void web_route_email(struct req *r);         /* email.c: POST /badges/email */
void web_route_email_confirm(struct req *r); /* email.c: GET /badges/email/confirm */

/* ---- the mailer (email.c) ---- */

/* Starts the thread that sends confirmation mails, when mail is on. */
int web_mailer_start(struct web *w, struct err *err);
/*
 * Once w->stopping is set: the requests still waiting for their mail are
 * answered without it (503, their links withdrawn), and the mail being
 * sent is given up within a second. Safe when the mailer is not started.
 */
void web_mailer_drain(struct web *w);
/* Stops it once its queue is empty (call after MHD stopped); a no-op when not started. */
void web_mailer_stop(struct web *w);

/* ---- page layout (pages.c) ---- */

/*
 * Renders `body_tpl` with `vars` inside the common page (head, header with
 * the course and the user's view, the language) and replies 200. The
 * layout's own variables are set from the session; the body may use them:
 * s (the token), csrf, lang, css, js, course, name. A `notice` among `vars`
 * is shown in place of the one the query's m= names (notices with counts).
 */
void web_reply_page_body(struct req *r, const struct web_sess *ws, const char *title,
                         const char *body_tpl, const struct web_tpl_var *vars, size_t n);
/* The same with another status (a form shown again with its error: 400, 409, ...). */
void web_reply_page_status(struct req *r, const struct web_sess *ws, unsigned status,
                           const char *title, const char *body_tpl, const struct web_tpl_var *vars,
                           size_t n);
/* The learner's page of the course (`all`: every badge of theirs across courses). */
void web_page_learner(struct req *r, struct web_sess *ws, bool all);
/* The instructor's page of the course. */
void web_page_instructor(struct req *r, struct web_sess *ws);
/* 303 to `path` of the session (with `notice`, a notice code, and more query parameters). */
void web_back_to(struct req *r, const struct web_sess *ws, const char *path, const char *notice,
                 const char *const *params /* name, value, ..., NULL; may be NULL */);
/* A text as paragraphs (blank lines split them), the list "paras" of items "p"; escaped. */
struct web_tpl_var web_paragraphs(struct req *r, const char *text);
/* A date for people in the page's language ("7 December 2026"), in the arena; "" for 0. */
const char *web_date(struct req *r, int64_t t);
/* A score (0..1) as a form value ("0.72"), in the arena. */
const char *web_score(struct req *r, double score);
/* A number for people in the page's language, at most `decimals` of them ("7.5", "7,5"). */
const char *web_number(struct req *r, double x, int decimals);
/*
 * A score (0..1) as the LMS shows it, in the arena: points when the
 * activity's points possible are known ("7.5 of 10 points"), else percent
 * ("75%"); never the bare fraction.
 */
const char *web_grade(struct req *r, double score, double points_possible);
/* A score (0..1) as a percent form value, '.' for decimals ("80", "72.5"), in the arena. */
const char *web_percent_value(struct req *r, double score);
/*
 * A percent typed in a form ("80", "72.5", "72,5", "80 %") as a score
 * (0..1): at most 4 decimals, from 0 to 100; -1 for anything else.
 */
int web_percent_parse(struct str s, double *out /* OUT */);
/* The page's own URL with `s` and the given query (name, value pairs), escaped, in the arena. */
const char *web_page_url(struct req *r, const struct web_sess *ws, const char *path,
                         const char *const *params /* name, value, ..., NULL */);

/* ---- templates (tpl.c) ---- */

enum web_tpl_kind {
    TPL_TEXT, /* escaped for HTML text and quoted attributes */
    TPL_URL,  /* http(s) or relative URL, escaped; anything else becomes "#" */
    TPL_RAW,  /* trusted markup, only through web_tpl_raw_unsafe() */
    TPL_LIST, /* a list of items, each `width` variables: {{#name}}...{{/name}} repeats */
};

struct web_tpl_var {
    const char *name;
    struct str value;
    enum web_tpl_kind kind;
    const struct web_tpl_var *items; /* TPL_LIST: count * width variables */
    size_t width, count;
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
/* A list: `count` items of `width` variables each (borrowed until rendered). */
struct web_tpl_var web_tpl_list(const char *name, const struct web_tpl_var *items, size_t width,
                                size_t count);
/* Whether a URL variable would be written as it is (http, https or relative). */
bool web_tpl_url_ok(const char *url);

/*
 * Renders `tpl`: {{name}} writes a variable escaped for its kind, {{{name}}}
 * writes a TPL_RAW variable as it is (and fails for any other kind),
 * {{#name}}...{{/name}} keeps its content when the variable is non-empty
 * (and repeats it per item of a list), {{^name}}...{{/name}} when it is
 * empty or absent, {{@text}} writes `text` translated and escaped, its
 * {name} placeholders filled with escaped variables. A missing variable, an
 * unclosed tag or a bad section is ERR_INTERNAL: templates are ours.
 */
int web_tpl_render(struct buf *out, const char *tpl, const struct web_tpl_var *vars, size_t nvars,
                   struct err *err);

/* ---- languages (i18n.c) ---- */

/*
 * The language for a launch's launch_presentation_locale ("es", "es-MX",
 * "en_GB"), else the best of an Accept-Language header, else English.
 * Either may be NULL.
 */
enum web_lang web_lang_pick(const char *locale, const char *accept_language);
/* "en", "es": for <html lang>. */
const char *web_lang_tag(enum web_lang l);
/* The language of what this thread renders from now on. */
void web_lang_use(enum web_lang l);
enum web_lang web_lang_current(void);
/*
 * `msgid` in the thread's language (GNU gettext); itself when there is no
 * translation. `msgid` must stay where it is for the life of the process (a
 * literal): each thread remembers answers by its address.
 */
const char *web_gettext(const char *msgid) __attribute__((format_arg(1)));
/* The same for a message in memory that will be reused for another (not remembered). */
const char *web_gettext_transient(const char *msgid) __attribute__((format_arg(1)));
#define _(s)  web_gettext(s)
#define N_(s) (s)

/* ---- page forms (forms.c): urlencoded or multipart, through MHD's post processor ---- */

/* Starts reading a form body of at most `max` bytes; ERR_MEDIATYPE for another Content-Type. */
int web_post_begin(struct req *r, size_t max, struct err *err);
void web_post_feed(struct req *r, const char *data, size_t len);
/* After the last byte: ERR_TOOBIG or ERR_INVALID when the body was refused. */
int web_post_end(struct req *r, struct err *err);
void web_post_free(struct req *r);
/* The first field named `name` (its value NUL-terminated), or NULL. */
const struct web_field *web_post_field(struct req *r, const char *name);
/* Its value as a view; the null view when absent. */
struct str web_post_get(struct req *r, const char *name);
/* Every value of the repeated field `name`, at most `max`; returns how many. */
size_t web_post_all(struct req *r, const char *name, struct str *out, size_t max);

/* ---- sessions and CSRF (session.c) ---- */

/*
 * The session of the token `tok` (from the query's or the form's `s`), its
 * language put to use; else replies 403 and returns -1.
 */
int web_session_or_reply(struct req *r, struct str tok, struct web_sess *out /* OUT */);
/* A GET page's session, from the query's `s` (in the request's arena); NULL once it replied 403. */
struct web_sess *web_session_from_query_or_reply(struct req *r);
/*
 * For a POST of a page form: the session from field `s`, the CSRF token in
 * field `csrf` checked in constant time, and, when `staff`, an instructor
 * role in the session's context. Replies 403 and returns -1 otherwise.
 */
int web_form_session_or_reply(struct req *r, bool staff, struct web_sess *out /* OUT */);
/* A GET page for the course's staff: the session, or NULL once it replied 403. */
struct web_sess *web_staff_session_from_query_or_reply(struct req *r);
/*
 * The BadgeClass `slug` of the course page's data: one of the course's own,
 * or (unless `own_only`) a course-less one of the consumer; NULL otherwise.
 */
const struct store_badge *web_course_badge(const struct store_course_admin *c, struct str slug,
                                           bool own_only);
/* printf into the request's arena. */
const char *web_fmt(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
