/*
 * web/server.c - the libmicrohttpd daemon, routing, replies and the access log.
 *
 * MHD runs a small pool of polling threads (one per core by default). A
 * launch is verified on the pool thread, then its connection is suspended
 * while the store's writer records it together with other launches (group
 * commit); the writer resumes the connection and the pool thread sends the
 * redirect. No pool thread ever blocks on the database's write lock, so two
 * threads keep many connections busy.
 *
 * Every request gets one arena, freed when MHD reports it complete. The
 * access log line is written then: method, path (never the query: session
 * tokens travel there), status, bytes, duration. No header, body, signature
 * or token is ever logged.
 *
 * The framing of each request (how its body is delimited) is checked here
 * before any route sees it; see framing_refusal() for why that is ours and
 * not libmicrohttpd's. A refused framing is answered and the connection
 * closed without reading anything more. Connections are watched by one
 * more thread (the guard): a header block that takes too long is answered
 * 408, and a connection closed while its client may still be sending is
 * drained a moment before it is closed, so that its answer is not
 * destroyed by a reset.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "base/log.h"

#include "awards/awards.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

void web_config_init(struct web_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_host = "127.0.0.1";
    cfg->listen_port = 8080;
    cfg->public_url = NULL;
    cfg->max_body = LIMIT_LAUNCH_BODY_DEFAULT;
    cfg->max_header = LIMIT_HTTP_HEADER_DEFAULT;
    cfg->header_timeout = LIMIT_HTTP_HEADER_TIMEOUT_DEFAULT;
    cfg->oauth_window = LIMIT_OAUTH_WINDOW_DEFAULT;
    cfg->session_ttl = LIMIT_SESSION_TTL_DEFAULT;
    cfg->threads = 2;
    cfg->tool_title = "Badges";
    cfg->tool_description =
        "Open Badges for this course: see the badges you earned and how to earn "
        "the others.";
}

unsigned web_status_for(enum err_code code)
{
    switch (code) {
    case ERR_NONE:
        return 200;
    case ERR_INVALID:
        return 400;
    case ERR_UNAUTHORIZED:
    case ERR_REPLAY:
        return 401;
    case ERR_FORBIDDEN:
        return 403;
    case ERR_NOTFOUND:
        return 404;
    case ERR_METHOD:
        return 405;
    case ERR_CONFLICT:
        return 409;
    case ERR_GONE:
        return 410;
    case ERR_TOOBIG:
        return 413;
    case ERR_MEDIATYPE:
        return 415;
    case ERR_LIMIT:
        return 429;
    case ERR_UNAVAILABLE:
        return 503;
    case ERR_INTERNAL:
        return 500;
    }
    return 500;
}

void web_reply(struct req *r, unsigned status, const char *content_type, char *body, size_t len,
               const char *const *headers)
{
    struct MHD_Response *resp;

    if (r->replied) {
        free(body);
        return;
    }
    r->replied = true;
    resp = MHD_create_response_from_buffer(len, body ? body : (char *)"",
                                           body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return;
    }
    if (content_type)
        MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* session tokens are in our URLs: never send them to another site */
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (content_type && strncmp(content_type, "text/html", 9) == 0) {
        char csp[512];
        const char *origin = r->sess ? r->sess->s.frame_origin : NULL;
        bool cache_given = false;

        /* pages hold session tokens: never stored, unless the route says (public pages) */
        for (size_t i = 0; headers && headers[i]; i += 2)
            cache_given = cache_given || strcasecmp(headers[i], "Cache-Control") == 0;
        if (!cache_given)
            MHD_add_response_header(resp, "Cache-Control", "no-store");
        /*
         * No inline script or style anywhere. A session's pages may be
         * framed by the LMS that launched it (the origin recorded at the
         * launch, checked to be a bare scheme://host[:port]) and by us; a
         * page without a session holds nothing to click, so it stays
         * frameable, as is a session whose LMS origin is unknown.
         */
        snprintf(csp, sizeof(csp),
                 "default-src 'none'; script-src 'self'; style-src 'self'; "
                 "img-src 'self' https: data:; form-action 'self'; base-uri 'none'%s%s",
                 origin ? "; frame-ancestors 'self' " : "", origin ? origin : "");
        MHD_add_response_header(resp, "Content-Security-Policy", csp);
    }
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    r->status = status;
    r->bytes_out = len;
    MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
}

static const char page_tpl[] =
    "<!DOCTYPE html>\n<html lang=\"{{lang}}\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>{{title}}</title><link rel=\"stylesheet\" href=\"{{css}}\"></head>"
    "<body><main class=\"card\"><h1>{{title}}</h1><p>{{message}}</p></main></body></html>\n";

/* A short HTML page with extra headers (name, value pairs, NULL-terminated; may be NULL). */
static void reply_page_headers(struct req *r, unsigned status, const char *title,
                               const char *message, const char *const *headers)
{
    struct buf b = BUF_INIT(LIMIT_PAGE_LEN);
    struct err err = ERR_INIT;
    struct web_tpl_var vars[4];
    size_t len;
    char *body;

    vars[0] = web_tpl_text("title", title);
    vars[1] = web_tpl_text("message", message);
    vars[2] = web_tpl_url("css", r->web->css_url);
    vars[3] = web_tpl_text("lang", web_lang_tag(web_lang_current()));
    if (web_tpl_render(&b, page_tpl, vars, 4, &err) < 0) {
        buf_release(&b);
        web_reply(r, 500, "text/plain; charset=utf-8", xstrdup("internal error\n"), 15, NULL);
        return;
    }
    body = buf_detach(&b, &len);
    web_reply(r, status, "text/html; charset=utf-8", body, len, headers);
}

void web_reply_page(struct req *r, unsigned status, const char *title, const char *message)
{
    reply_page_headers(r, status, title, message, NULL);
}

void web_reply_err(struct req *r, const struct err *err)
{
    unsigned status = web_status_for(err->code);
    const char *title;
    char msg[512];

    switch (status) {
    case 400:
        title = _("Bad request");
        break;
    case 401:
        title = _("Not authorized");
        break;
    case 403:
        title = _("Forbidden");
        break;
    case 404:
        title = _("Not found");
        break;
    case 405:
        title = _("Method not allowed");
        break;
    case 409:
        title = _("Cannot do that");
        break;
    case 410:
        title = _("Link no longer valid");
        break;
    case 413:
        title = _("Request too large");
        break;
    case 415:
        title = _("Unsupported media type");
        break;
    case 429:
        title = _("Too many requests");
        break;
    case 503:
        title = _("Try again");
        break;
    default:
        title = _("Something went wrong");
        break;
    }
    /* the server's own failures keep their library detail, for the operator only */
    if (status >= 500 && err->detail[0])
        LOG(LOG_LEVEL_ERROR, err->msg, LOG_STR("detail", err->detail),
            LOG_STR("route", web_route_path(r->route_no)));
    snprintf(msg, sizeof(msg), "%s.", err->msg[0] ? err->msg : "internal error");
    if (err->code == ERR_REPLAY) {
        snprintf(msg, sizeof(msg), "%s. %s", err->msg,
                 _("Go back to your course and open the tool again from there: each launch link "
                   "works once."));
        title = _("Launch again from your course");
    }
    if (status == 405) {
        const char *hdrs[] = { "Allow", r->allow, NULL };

        reply_page_headers(r, status, title, msg, hdrs);
        return;
    }
    if (status == 503) {
        const char *hdrs[] = { "Retry-After", "1", NULL };
        size_t len = strlen(msg);

        web_reply(r, status, "text/plain; charset=utf-8", xmemdupz(msg, len), len, hdrs);
        return;
    }
    web_reply_page(r, status, title, msg);
}

void web_reply_refusal(struct req *r, enum err_code code, const char *msg)
{
    struct err err = ERR_INIT;

    err_set(&err, code, "%s", msg);
    web_reply_err(r, &err);
}

void web_reply_redirect(struct req *r, unsigned status, const char *location)
{
    const char *hdrs[] = { "Location", location, NULL };

    web_reply(r, status, NULL, NULL, 0, hdrs);
}

void web_req_hold(struct req *r, atomic_int *count)
{
    if (r->held)
        BUG("a request holds two in-flight counts");
    atomic_fetch_add(count, 1);
    r->held = count;
}

void web_req_release(struct req *r)
{
    if (!r->held)
        return;
    atomic_fetch_sub(r->held, 1);
    r->held = NULL;
}

/* ---- connections: header deadlines and gentle closes ---- */

enum conn_state {
    CONN_HEADERS,   /* waiting for a request's header block, until `deadline` */
    CONN_REQUEST,   /* a request is being read, handled or answered */
    CONN_TIMED_OUT, /* answered 408 by the guard: nothing more is answered */
};

/* One connection: MHD's socket context. Its fields are under w->conn_mu. */
struct web_conn {
    struct web_conn *prev, *next;
    MHD_socket fd;
    enum conn_state state;
    int64_t deadline; /* CONN_HEADERS: monotonic ns */
    bool linger;      /* its client may still be sending when it closes */
};

/* A closed connection being drained: our own duplicate of its socket. */
struct web_linger {
    int fd;
    int64_t deadline;
    size_t drained;
};

static struct web_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci ? ci->socket_context : NULL;
}

static int64_t secs_ns(unsigned s)
{
    return (int64_t)s * 1000 * 1000 * 1000;
}

/*
 * The guard's 408, written to the socket by us, then the socket
 * half-closed: MHD is still reading that header block and answers nothing
 * meanwhile. It is small, and the socket's buffer is empty (MHD reads a
 * request only once the previous answer is sent), so one non-blocking
 * send() takes it; if not, the client gets the close.
 */
static void send_raw(MHD_socket fd, unsigned status, const char *reason, const char *msg)
{
    char b[512];
    size_t len = strlen(msg);
    int n = snprintf(b, sizeof(b),
                     "HTTP/1.1 %u %s\r\nConnection: close\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     status, reason, len, msg);
    ssize_t sent;

    if (n > 0 && (size_t)n < sizeof(b))
        sent = send(fd, b, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    else
        sent = -1;
    (void)sent;
    shutdown(fd, SHUT_WR);
}

static void wake_guard(struct web *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->guard_wake, &one, sizeof(one));

    (void)n;
}

/* Under conn_mu: hands a duplicate of `fd` to the guard, which drains and closes it. */
static void linger_add(struct web *w, MHD_socket fd)
{
    struct web_linger *l;
    int dup;

    if (!w->guard_started || w->guard_stop || w->n_lingering == LIMIT_HTTP_LINGERING)
        return;
    dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0)
        return;
    shutdown(dup, SHUT_WR); /* MHD did already, unless it never answered */
    l = &w->lingering[w->n_lingering++];
    l->fd = dup;
    l->deadline = util_mono_ns() + (int64_t)LIMIT_HTTP_LINGER_MS * 1000 * 1000;
    l->drained = 0;
    wake_guard(w);
}

/* Whether bytes the server will never read wait on the socket. */
static bool unread_input(MHD_socket fd)
{
    int n = 0;

    return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    struct web *w = cls;
    struct web_conn *c = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        c = xcalloc(1, sizeof(*c));
        c->fd = ci ? ci->connect_fd : MHD_INVALID_SOCKET;
        c->state = CONN_HEADERS;
        c->deadline = util_mono_ns() + secs_ns(w->cfg.header_timeout);
        pthread_mutex_lock(&w->conn_mu);
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        pthread_mutex_unlock(&w->conn_mu);
        *socket_context = c;
        web_metrics_connection(w, 1);
        return;
    }
    if (!c)
        return;
    pthread_mutex_lock(&w->conn_mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    /* MHD closes the socket when this returns: a reset unless nothing more comes */
    if (c->fd != MHD_INVALID_SOCKET && (c->linger || unread_input(c->fd)))
        linger_add(w, c->fd);
    pthread_mutex_unlock(&w->conn_mu);
    free(c);
    *socket_context = NULL;
    web_metrics_connection(w, -1);
}

/* A request's header block arrived: false when the guard answered 408 first. */
static bool conn_begin(struct req *r)
{
    struct web_conn *c = r->wc;
    bool ok;

    if (!c)
        return true;
    pthread_mutex_lock(&r->web->conn_mu);
    ok = c->state != CONN_TIMED_OUT;
    if (ok)
        c->state = CONN_REQUEST;
    pthread_mutex_unlock(&r->web->conn_mu);
    return ok;
}

/* The connection will be closed while its client may still be sending: drain it first. */
static void conn_linger(struct req *r)
{
    if (!r->wc)
        return;
    pthread_mutex_lock(&r->web->conn_mu);
    r->wc->linger = true;
    pthread_mutex_unlock(&r->web->conn_mu);
}

/* Reads and drops what came; true once the socket is done with (end, error or enough). */
static bool drain(struct web_linger *l, char *scratch, size_t len)
{
    for (;;) {
        ssize_t n = recv(l->fd, scratch, len, MSG_DONTWAIT);

        if (n > 0) {
            l->drained += (size_t)n;
            if (l->drained >= LIMIT_HTTP_LINGER_BYTES)
                return true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
}

/*
 * The guard: every 100 ms (or when woken), answers 408 on connections whose
 * header block is late, drains the sockets of closed connections and closes
 * them at their client's end, their deadline or their byte cap.
 */
static void *guard_main(void *arg)
{
    struct web *w = arg;
    struct pollfd *pf = xcalloc(LIMIT_HTTP_LINGERING + 1, sizeof(*pf));
    size_t scratch_len = 64 * 1024;
    char *scratch = xmalloc(scratch_len);

    pthread_setname_np(pthread_self(), "lb-http-guard");
    pthread_mutex_lock(&w->conn_mu);
    while (!w->guard_stop) {
        size_t n = w->n_lingering;
        int64_t now;

        pf[0] = (struct pollfd){ .fd = w->guard_wake, .events = POLLIN };
        for (size_t i = 0; i < n; i++)
            pf[i + 1] = (struct pollfd){ .fd = w->lingering[i].fd, .events = POLLIN };
        pthread_mutex_unlock(&w->conn_mu);
        if (poll(pf, n + 1, 100) > 0 && pf[0].revents) {
            uint64_t v;
            ssize_t rd = read(w->guard_wake, &v, sizeof(v));

            (void)rd;
        }
        pthread_mutex_lock(&w->conn_mu);
        now = util_mono_ns();
        /*
         * Only this thread removes slots; the first n are those polled.
         * Backwards, so that the last slot moved into a freed one was seen.
         */
        for (size_t i = n; i-- > 0;) {
            struct web_linger *l = &w->lingering[i];
            bool done = now >= l->deadline;

            if (!done && pf[i + 1].revents)
                done = drain(l, scratch, scratch_len);
            if (done) {
                close(l->fd);
                *l = w->lingering[--w->n_lingering];
            }
        }
        for (struct web_conn *c = w->conns; c; c = c->next) {
            if (c->state != CONN_HEADERS || now < c->deadline || c->fd == MHD_INVALID_SOCKET)
                continue;
            /*
             * MHD reads this header block and would wait for the rest as
             * long as bytes trickle in; it answers nothing meanwhile, so
             * the socket is ours to write to. Once the client sees the
             * answer and closes, MHD closes too (or at its idle timeout).
             */
            c->state = CONN_TIMED_OUT;
            c->linger = true;
            send_raw(c->fd, 408, "Request Timeout", "the request took too long to arrive\n");
            /*
             * And no more is read: MHD's next read sees the end and closes,
             * instead of keeping the slot for a client that goes on trickling.
             */
            shutdown(c->fd, SHUT_RD);
        }
    }
    while (w->n_lingering)
        close(w->lingering[--w->n_lingering].fd);
    pthread_mutex_unlock(&w->conn_mu);
    free(scratch);
    free(pf);
    return NULL;
}

static int guard_start(struct web *w, struct err *err)
{
    w->guard_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->guard_wake < 0) {
        err_set(err, ERR_INTERNAL, "cannot start the HTTP server");
        return err_detail(err, "eventfd: %s", strerror(errno));
    }
    if (pthread_create(&w->guard, NULL, guard_main, w) != 0) {
        close(w->guard_wake);
        w->guard_wake = -1;
        return err_set(err, ERR_INTERNAL, "cannot start the HTTP server's guard thread");
    }
    w->guard_started = true;
    return 0;
}

/* After MHD stopped: the sockets still draining are closed now. */
static void guard_stop(struct web *w)
{
    if (!w->guard_started)
        return;
    pthread_mutex_lock(&w->conn_mu);
    w->guard_stop = true;
    wake_guard(w);
    pthread_mutex_unlock(&w->conn_mu);
    pthread_join(w->guard, NULL);
    w->guard_started = false;
    close(w->guard_wake);
    w->guard_wake = -1;
}

/* ---- framing ---- */

struct framing {
    size_t bytes;      /* the header fields as "name: value\r\n" */
    size_t n_cl, n_te; /* Content-Length and Transfer-Encoding fields */
    struct str cl, te; /* the last of each */
    bool bad_name;     /* a field name that is not an RFC 9110 token */
};

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static enum MHD_Result framing_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_len, const char *value, size_t value_len)
{
    struct framing *f = cls;

    (void)kind;
    f->bytes += key_len + value_len + 4;
    if (key_len == 0)
        f->bad_name = true;
    for (size_t i = 0; i < key_len; i++)
        if (!is_tchar((unsigned char)key[i]))
            f->bad_name = true;
    if (key_len == 14 && strncasecmp(key, "Content-Length", 14) == 0) {
        f->n_cl++;
        f->cl = (struct str){ value, value_len };
    } else if (key_len == 17 && strncasecmp(key, "Transfer-Encoding", 17) == 0) {
        f->n_te++;
        f->te = (struct str){ value, value_len };
    }
    return MHD_YES;
}

/*
 * Why these checks are ours. libmicrohttpd 0.9.75 (Debian 12) takes a
 * Transfer-Encoding over a Content-Length without a word, takes the first
 * of several Content-Lengths, reads the body of a Transfer-Encoding it does
 * not know (xchunked, "chunked, identity", gzip) until the client closes,
 * and keeps "Transfer-Encoding : chunked" as a field named with the space:
 * each lets a proxy in front and MHD disagree on where a request ends, so
 * that a second request hides in the first one's body.
 * MHD_OPTION_STRICT_FOR_CLIENT only adds Host and URL-space checks in this
 * version (and its -1 turns the name check on, inverted), and the option
 * that covers this (MHD_OPTION_CLIENT_DISCIPLINE_LVL) came with 1.0. So
 * the first call for each request looks at every field before a route
 * runs: 0 when the framing is sound, else the status to refuse it with.
 * An answer queued then makes MHD close the connection without reading
 * the body. A Content-Length MHD cannot parse itself never reaches us: MHD
 * answers 400 (413 for too many digits) and closes, its header block sent
 * twice (a bug of 0.9.75; no callback runs in between). The connection
 * still closes, so nothing hides there.
 */
static unsigned framing_refusal(struct req *r, const char *method, const char *version,
                                const char **msg)
{
    struct framing f = { 0 };
    size_t line;
    int64_t n;

    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, framing_field, &f);
    line = strlen(method) + 1 + r->uri_len + 1 + strlen(version) + 2;
    r->declares_body = f.n_te > 0 || (f.n_cl > 0 && !str_eq_cstr(f.cl, "0"));
    if (f.bad_name) {
        *msg = "a header field name is malformed\n";
        return 400;
    }
    if (line + f.bytes > r->web->cfg.max_header) {
        *msg = "the request's header is too large\n";
        return 431;
    }
    if (f.n_cl && f.n_te) {
        *msg = "a request has either a Content-Length or a Transfer-Encoding, not both\n";
        return 400;
    }
    if (f.n_cl > 1) {
        *msg = "a request has one Content-Length\n";
        return 400;
    }
    if (f.n_cl) {
        bool digits = f.cl.len > 0;

        for (size_t i = 0; i < f.cl.len; i++)
            digits = digits && f.cl.ptr[i] >= '0' && f.cl.ptr[i] <= '9';
        if (!digits) {
            *msg = "the Content-Length is malformed\n";
            return 400;
        }
        if (str_to_i64(f.cl, 0, INT64_MAX, &n) < 0) {
            *msg = "the request is too large\n";
            return 413;
        }
    }
    if (f.n_te > 1 || (f.n_te && !str_case_eq_cstr(f.te, "chunked"))) {
        *msg = "the only Transfer-Encoding accepted is chunked\n";
        return 501;
    }
    return 0;
}

/* ---- routing ---- */

static void refuse(struct req *r, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct req *r, enum err_code code, const char *fmt, ...)
{
    struct err err = ERR_INIT;
    va_list ap;

    err.code = code;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
    va_end(ap);
    web_reply_err(r, &err);
}

struct route {
    const char *path;
    route_fn *fn;
    bool post;   /* POST only; otherwise GET and HEAD */
    bool prefix; /* the path and everything under it */
    bool xml;    /* POST of a POX message (application/xml), not a form */
    size_t form; /* POST of a page form (urlencoded or multipart) of at most this many bytes */
};

static const struct route routes[] = {
    { "/lti/launch", web_route_launch, true, false, false, 0 },
    { "/lti/outcomes", web_route_outcomes, true, false, true, 0 },
    { "/badges", web_route_badges, false, false, false, 0 },
    { "/badges/all", web_route_all, false, false, false, 0 },
    { "/badges/settings", web_route_settings, true, false, false, LIMIT_PAGE_FORM_BODY },
    { "/badges/edit", web_route_edit, false, false, false, 0 },
    { "/badges/save", web_route_save, true, false, false, LIMIT_PAGE_UPLOAD_BODY },
    { "/badges/archive", web_route_archive, true, false, false, LIMIT_PAGE_FORM_BODY },
    { "/badges/delete", web_route_delete, true, false, false, LIMIT_PAGE_FORM_BODY },
    { "/static/default-badge.svg", web_route_default_image, false, false, false, 0 },
    { "/badges/awards", web_route_awards, false, false, false, 0 },
    { "/badges/awards.csv", web_route_awards_csv, false, false, false, 0 },
    { "/badges/award", web_route_award, true, false, false, LIMIT_PAGE_FORM_BODY },
    { "/badges/revoke", web_route_revoke, true, false, false, LIMIT_PAGE_FORM_BODY },
    { "/badges/retry", web_route_retry, true, false, false, LIMIT_PAGE_FORM_BODY },
    { "/badges/email", web_route_email, true, false, false, LIMIT_PAGE_FORM_BODY },
    { "/badges/email/confirm", web_route_email_confirm, false, false, false, 0 },
    { "/lti/config.xml", web_route_config_xml, false, false, false, 0 },
    { "/healthz", web_route_healthz, false, false, false, 0 },
    { "/metrics", web_route_metrics, false, false, false, 0 },
    { "/static/style.css", web_route_style, false, false, false, 0 },
    { "/static/icon.svg", web_route_icon, false, false, false, 0 },
    { "/static/page.js", web_route_script, false, false, false, 0 },
    { "/ob/v2/", web_route_ob, false, true, false, 0 },
    { "/badges/criteria/", web_route_criteria, false, true, false, 0 },
    { "/hooks/badgekit/", web_route_badgekit_hook, true, true, false, 0 },
    { "/badges/check/", web_route_recipient_check, true, true, false, LIMIT_PAGE_FORM_BODY },
    { "/badges/showname", web_route_show_name, true, false, false, LIMIT_PAGE_FORM_BODY },
    { "/static/public.css", web_route_public_style, false, false, false, 0 },
    { "/", web_route_home, false, false, false, 0 },
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

size_t web_routes_count(void)
{
    return N_ROUTES;
}

const char *web_route_path(size_t i)
{
    return i < N_ROUTES ? routes[i].path : NULL;
}

/* Whether the media type of Content-Type `ct` (parameters aside) is `want` or `alt`. */
static bool content_type_is(const char *ct, const char *want, const char *alt)
{
    struct str t;
    const char *semi;

    if (!ct)
        return false;
    semi = strchr(ct, ';');
    t = str_trim((struct str){ ct, semi ? (size_t)(semi - ct) : strlen(ct) });
    return str_case_eq_cstr(t, want) || (alt && str_case_eq_cstr(t, alt));
}

/* Runs on the first call for a request: picks the route or refuses at once. */
static void start(struct req *r, const char *method)
{
    const struct route *rt = NULL;

    r->method_name = method;
    /* error pages before a session is known: the browser's language */
    web_lang_use(web_lang_pick(
        NULL, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept-Language")));
    if (r->uri_toolong) {
        web_reply_page(r, 414, _("Address too long"),
                       _("The address of this request is too long."));
        return;
    }
    if (strcmp(method, "GET") == 0)
        r->method = REQ_GET;
    else if (strcmp(method, "HEAD") == 0)
        r->method = REQ_HEAD;
    else if (strcmp(method, "POST") == 0)
        r->method = REQ_POST;
    else
        r->method = REQ_OTHER;
    /* a request under a former public URL goes to the same path under the public URL */
    if (web_former_url_reply(r))
        return;

    for (size_t i = 0; i < N_ROUTES; i++) {
        if (routes[i].prefix ? str_starts_with(r->path, routes[i].path)
                             : str_eq_cstr(r->path, routes[i].path)) {
            rt = &routes[i];
            r->route_no = i;
            break;
        }
    }
    if (!rt) {
        refuse(r, ERR_NOTFOUND, "there is no page at this address");
        return;
    }
    r->route = rt->fn;
    r->allow = rt->post ? "POST" : "GET, HEAD";
    if (rt->post ? r->method != REQ_POST : (r->method != REQ_GET && r->method != REQ_HEAD)) {
        refuse(r, ERR_METHOD, "this address does not accept %s requests",
               r->method == REQ_OTHER ? "such" : method);
        return;
    }
    if (str_present(r->query)) {
        /*
         * Every query read the way launches are (base/form.c): a malformed
         * escape or a parameter name with a control character or bytes that
         * are not UTF-8 is refused here, for every route, before MHD's own
         * reading of it (which cuts a name at a NUL) reaches a handler.
         */
        struct err err = ERR_INIT;

        if (form_parse(&r->arena, r->query.ptr, r->query.len, LIMIT_FORM_PARAMS, &r->qform, &err) <
            0) {
            refuse(r, err.code == ERR_TOOBIG ? ERR_INVALID : err.code, "%s", err.msg);
            return;
        }
    }
    if (rt->post) {
        const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
        const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
        int64_t n;

        if (rt->form) {
            struct err err = ERR_INIT;

            if (cl && str_to_i64(str_from_cstr(cl), 0, INT64_MAX, &n) == 0 &&
                (uint64_t)n > 3 * rt->form + LIMIT_PAGE_FORM_FRAMING) {
                /* 3x: an urlencoded byte takes at most three ("%XX") */
                refuse(r, ERR_TOOBIG, "the form is larger than %zu KiB", rt->form / 1024);
                return;
            }
            if (web_post_begin(r, rt->form, &err) < 0)
                web_reply_err(r, &err);
            return;
        }
        if (rt->fn == web_route_badgekit_hook) {
            /* a webhook: any media type (its signature says what the body is), its own cap */
            r->body.max = LIMIT_BADGEKIT_HOOK_BODY;
            if (cl && str_to_i64(str_from_cstr(cl), 0, INT64_MAX, &n) == 0 &&
                (uint64_t)n > LIMIT_BADGEKIT_HOOK_BODY) {
                refuse(r, ERR_TOOBIG, "the request is larger than %d bytes",
                       LIMIT_BADGEKIT_HOOK_BODY);
                return;
            }
            return;
        }
        if (rt->xml) {
            /* an outcomes message is small: its own cap, below the launch's */
            size_t cap =
                r->web->cfg.max_body < LIMIT_POX_BODY ? r->web->cfg.max_body : LIMIT_POX_BODY;

            if (!content_type_is(ct, "application/xml", "text/xml")) {
                refuse(r, ERR_MEDIATYPE, "an outcomes message must be sent as application/xml");
                return;
            }
            r->body.max = cap;
            if (cl && str_to_i64(str_from_cstr(cl), 0, INT64_MAX, &n) == 0 && (uint64_t)n > cap) {
                refuse(r, ERR_TOOBIG, "the outcomes message is larger than %zu bytes", cap);
                return;
            }
            return;
        }
        if (!content_type_is(ct, "application/x-www-form-urlencoded", NULL)) {
            refuse(r, ERR_MEDIATYPE, "a launch must be sent as application/x-www-form-urlencoded");
            return;
        }
        if (cl && str_to_i64(str_from_cstr(cl), 0, INT64_MAX, &n) == 0 &&
            (uint64_t)n > r->web->cfg.max_body) {
            refuse(r, ERR_TOOBIG, "the launch is larger than %zu bytes", r->web->cfg.max_body);
            return;
        }
    }
}

/* Splits the raw request target into path (prefix stripped) and query. */
static void split_uri(struct web *w, struct req *r)
{
    const char *u = r->raw_uri;
    const char *q = strchr(u, '?');
    size_t plen = q ? (size_t)(q - u) : strlen(u);
    size_t pre = strlen(w->public_path);

    r->path = (struct str){ u, plen };
    r->query = q ? str_from_cstr(q + 1) : STR_NULL;
    /* behind a proxy that keeps the public path prefix, route on what follows it */
    if (pre && r->path.len >= pre && memcmp(r->path.ptr, w->public_path, pre) == 0 &&
        (r->path.len == pre || r->path.ptr[pre] == '/')) {
        r->path.ptr += pre;
        r->path.len -= pre;
        if (r->path.len == 0)
            r->path = STR_LIT("/");
    }
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct web *w = cls;
    struct req *r = xcalloc(1, sizeof(*r));
    size_t n = strnlen(uri, LIMIT_URI_LEN);

    r->web = w;
    r->conn = conn;
    arena_init(&r->arena);
    r->uri_toolong = n == LIMIT_URI_LEN && uri[n] != '\0';
    r->raw_uri = arena_memdupz(&r->arena, uri, r->uri_toolong ? 0 : n);
    r->uri_len = n;
    r->wc = conn_of(conn);
    if (r->wc) {
        /* on a kept-alive connection, the rest of the header block is due from now */
        int64_t due = util_mono_ns() + secs_ns(w->cfg.header_timeout);

        pthread_mutex_lock(&w->conn_mu);
        if (r->wc->state == CONN_HEADERS && r->wc->deadline > due)
            r->wc->deadline = due;
        pthread_mutex_unlock(&w->conn_mu);
    }
    buf_init(&r->body, w->cfg.max_body);
    r->t0 = util_mono_ns();
    r->route_no = N_ROUTES; /* none, until start() finds one */
    split_uri(w, r);
    return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct req *r = *con_cls;

    if (!r) {
        r = uri_log(cls, url, conn);
        *con_cls = r;
    }
    r->conn = conn;
    if (!r->started) {
        const char *msg;
        unsigned refused;

        r->started = true;
        if (!conn_begin(r))
            return MHD_NO; /* the guard answered 408 */
        refused = framing_refusal(r, method, version, &msg);
        if (refused) {
            /* answered before the body: MHD reads nothing more and closes */
            web_reply(r, refused, "text/plain; charset=utf-8", xstrdup(msg), strlen(msg), NULL);
            conn_linger(r);
            return MHD_YES;
        }
        start(r, method);
        /*
         * An answer queued now, before the body, makes MHD close the
         * connection without reading the body: the client may still be
         * sending it.
         */
        if (r->replied) {
            if (r->declares_body)
                conn_linger(r);
            return MHD_YES;
        }
        /*
         * A GET is answered at the next call, once MHD knows the request
         * is complete: only then does it keep the connection for the next
         * one. One that declares a body is answered now (its body unread).
         */
        if (r->method != REQ_POST && r->declares_body) {
            r->route(r);
            conn_linger(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        bool over;

        *upload_data_size = 0;
        if (r->form) {
            if (!r->replied)
                web_post_feed(r, upload_data, n);
            /* a form already refused (malformed, a bad name) is not read forever either */
            over = r->post.toobig || r->post.bad || r->post.badname || r->replied;
        } else {
            if (!r->replied && !r->body_toobig && buf_add(&r->body, upload_data, n) < 0) {
                /* keep reading (and dropping) the rest so the client gets its 413 */
                r->body_toobig = true;
                buf_release(&r->body);
            }
            over = r->body_toobig || r->replied;
        }
        /*
         * Only a chunked body gets here past its limit (a Content-Length
         * over it was refused from the header). MHD 0.9.75 cannot answer
         * before the body ends, so the rest is dropped, but not forever:
         * past that much more, the connection is closed unanswered.
         */
        if (over) {
            r->dropped += n;
            if (r->dropped > LIMIT_HTTP_DROP_BYTES)
                return MHD_NO;
        }
        return MHD_YES;
    }
    if (r->replied)
        return MHD_YES;
    if (r->suspended) {
        r->suspended = false;
        r->resumed(r);
        return MHD_YES;
    }
    if (r->body_toobig) {
        refuse(r, ERR_TOOBIG, "the request is larger than %zu bytes", r->body.max);
        return MHD_YES;
    }
    if (r->form) {
        struct err err = ERR_INIT;

        if (web_post_end(r, &err) < 0) {
            web_reply_err(r, &err);
            return MHD_YES;
        }
    }
    r->route(r);
    return MHD_YES;
}

/* Appends each X-Forwarded-For header's value to the buf `cls`, in order, with commas. */
static enum MHD_Result add_xff(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct buf *b = cls;

    (void)kind;
    if (key && value && strcasecmp(key, "X-Forwarded-For") == 0) {
        if (b->len)
            buf_addch(b, ',');
        buf_addstr(b, value);
    }
    return MHD_YES;
}

void web_req_client(struct req *r, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const void *peer = ci ? ci->client_addr : NULL;
    struct buf xff = BUF_INIT(LIMIT_HTTP_HEADER_MAX);

    if (peer && r->web->n_trusted)
        MHD_get_connection_values(r->conn, MHD_HEADER_KIND, add_xff, &xff);
    /* cut past the header limit: the walk then stops at its last whole hop, from the right */
    web_client_address(r->web->trusted, r->web->n_trusted, peer, xff.toobig ? NULL : xff.ptr, out,
                       outlen);
    buf_release(&xff);
}

static void log_line(struct req *r)
{
    char ip[INET6_ADDRSTRLEN] = "-", path[512 * 4 + 1];
    size_t n = 0;
    int64_t us = (util_mono_ns() - r->t0) / 1000;

    if (!log_access_on())
        return;
    web_req_client(r, ip, sizeof(ip));
    /* the path only: the query carries session tokens. Escape bytes that could forge lines. */
    for (size_t i = 0; i < r->path.len && i < 512; i++) {
        unsigned char c = (unsigned char)r->path.ptr[i];

        if (c < 0x21 || c >= 0x7f || c == '\\')
            n += (size_t)snprintf(path + n, sizeof(path) - n, "\\x%02x", c);
        else
            path[n++] = (char)c;
    }
    path[n] = '\0';
    {
        const struct log_field f[] = {
            LOG_STR("client", ip),
            LOG_STR("method", r->method_name ? r->method_name : "-"),
            LOG_STR("path", path),
            LOG_INT("status", r->status),
            LOG_INT("bytes", r->bytes_out),
            LOG_INT("duration_us", us),
        };

        log_access(f, sizeof(f) / sizeof(f[0]));
    }
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct req *r = *con_cls;

    if (!r)
        return;
    if (!r->replied)
        r->status = 0; /* the client went away or the server stopped before an answer */
    /*
     * A suspended request is only completed once resumed (web_stop() waits
     * for every one to be). When its handler did not run after that, the
     * client is gone: what the answer would have done besides answering is
     * done now, and the in-flight count given back, or a stop would wait
     * for it forever.
     */
    if (r->suspended && r->abandoned)
        r->abandoned(r);
    web_req_release(r);
    if (r->wc) {
        struct web *w = r->web;

        pthread_mutex_lock(&w->conn_mu);
        if (r->wc->state == CONN_TIMED_OUT) {
            r->status = 408;
        } else {
            /* kept alive: the next request may come within the idle timeout */
            r->wc->state = CONN_HEADERS;
            r->wc->deadline =
                util_mono_ns() + secs_ns(LIMIT_HTTP_CONN_TIMEOUT) + secs_ns(w->cfg.header_timeout);
        }
        pthread_mutex_unlock(&w->conn_mu);
    }
    log_line(r);
    web_metrics_request(r->web, r->route_no, util_mono_ns() - r->t0, r->status, r->launch_outcome);
    web_post_free(r);
    buf_release(&r->body);
    arena_release(&r->arena);
    free(r);
    *con_cls = NULL;
}

static char *url_join(const char *base, const char *path)
{
    size_t len = st_add(strlen(base), strlen(path) + 1);
    char *u = xmalloc(len);

    snprintf(u, len, "%s%s", base, path);
    return u;
}

static int make_public_url(struct web *w, struct err *err)
{
    struct buf b = BUF_INIT(LIMIT_LTI_URL_LEN);
    char given[LIMIT_LTI_URL_LEN];
    size_t n;

    if (w->cfg.public_url && w->cfg.public_url[0]) {
        snprintf(given, sizeof(given), "%s", w->cfg.public_url);
    } else {
        bool v6 = strchr(w->cfg.listen_host, ':') != NULL;

        snprintf(given, sizeof(given), "http://%s%s%s:%u", v6 ? "[" : "", w->cfg.listen_host,
                 v6 ? "]" : "", w->port);
    }
    if (lti_url_normalize(&b, str_from_cstr(given), NULL, err) < 0) {
        buf_release(&b);
        return -1;
    }
    n = b.len;
    while (n && b.ptr[n - 1] == '/')
        n--;
    w->public_url = xmemdupz(b.ptr, n);
    buf_release(&b);
    {
        const char *host = strstr(w->public_url, "://") + 3; /* normalized: always there */
        const char *slash = strchr(host, '/');

        w->public_path = xstrdup(slash ? slash : "");
        w->domain = xmemdupz(host, strcspn(host, ":/"));
    }
    w->launch_url = url_join(w->public_url, "/lti/launch");
    w->outcomes_url = url_join(w->public_url, "/lti/outcomes");
    w->css_url = url_join(w->public_path, "/static/style.css");
    w->js_url = url_join(w->public_path, "/static/page.js");
    w->icon_url = url_join(w->public_url, "/static/icon.svg");
    w->config_url = url_join(w->public_url, "/lti/config.xml");
    return 0;
}

static void free_urls(struct web *w)
{
    FREE_AND_NULL(w->public_url);
    FREE_AND_NULL(w->public_path);
    FREE_AND_NULL(w->launch_url);
    FREE_AND_NULL(w->outcomes_url);
    FREE_AND_NULL(w->css_url);
    FREE_AND_NULL(w->js_url);
    FREE_AND_NULL(w->icon_url);
    FREE_AND_NULL(w->config_url);
    FREE_AND_NULL(w->domain);
}

/* Binds the listening socket ourselves so the port (and so the public URL) is known first. */
int web_bind_listen(const char *host, unsigned port, int *fd_out, unsigned *port_out, bool *v6,
                    struct err *err)
{
    struct addrinfo hints, *ai = NULL;
    char ps[16];
    int fd, one = 1, rc;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(ps, sizeof(ps), "%u", port);
    rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0 || !ai) {
        err_set(err, ERR_INVALID, "cannot resolve listen address '%s'", host);
        return err_detail(err, "getaddrinfo: %s", gai_strerror(rc));
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        err_set(err, ERR_INTERNAL, "cannot create a socket");
        return err_detail(err, "socket: %s", strerror(errno));
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        int e = errno;

        freeaddrinfo(ai);
        close(fd);
        err_set(err, ERR_INVALID, "cannot listen on %s:%u: %s", host, port, strerror(e));
        return err_detail(err, "bind/listen: %s", strerror(e));
    }
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    else
        *port_out = port;
    *fd_out = fd;
    return 0;
}

static void web_free(struct web *w)
{
    guard_stop(w);
    web_metrics_stop(w);
    web_proxy_free(w);
    pthread_mutex_destroy(&w->mail_mu);
    pthread_cond_destroy(&w->mail_cv);
    pthread_mutex_destroy(&w->conn_mu);
    free(w->lingering);
    free(w);
}

int web_start(struct web **out, const struct web_config *cfg, struct store *store, struct err *err)
{
    struct web *w = xcalloc(1, sizeof(*w));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    int fd = -1;
    bool v6 = false;

    *out = NULL;
    w->cfg = *cfg;
    w->store = store;
    atomic_init(&w->launches_in_flight, 0);
    atomic_init(&w->stopping, false);
    atomic_init(&w->mails_in_flight, 0);
    pthread_mutex_init(&w->mail_mu, NULL);
    pthread_cond_init(&w->mail_cv, NULL);
    pthread_mutex_init(&w->conn_mu, NULL);
    w->lingering = xcalloc(LIMIT_HTTP_LINGERING, sizeof(*w->lingering));
    w->guard_wake = -1;
    w->cfg.mail_on = cfg->mail && net_mail_enabled(cfg->mail);
    if (web_metrics_start(w, err) < 0) {
        web_free(w);
        return -1;
    }
    if (web_bind_listen(cfg->listen_host, cfg->listen_port, &fd, &w->port, &v6, err) < 0) {
        web_free(w);
        return -1;
    }
    if (make_public_url(w, err) < 0) {
        close(fd);
        web_free(w);
        return -1;
    }
    if (web_proxy_start(w, err) < 0) {
        close(fd);
        free_urls(w);
        web_free(w);
        return -1;
    }
    /* the hosted issuer's ids live under the public URL: known now, before any request */
    if (cfg->awards)
        awards_set_public_url(cfg->awards, w->public_url);
    if (web_mailer_start(w, err) < 0) {
        close(fd);
        free_urls(w);
        web_free(w);
        return -1;
    }
    if (guard_start(w, err) < 0) {
        close(fd);
        web_mailer_stop(w);
        free_urls(w);
        web_free(w);
        return -1;
    }
    if (v6)
        flags |= MHD_USE_IPv6;
    w->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, w, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_URI_LOG_CALLBACK,
        uri_log, w, MHD_OPTION_NOTIFY_COMPLETED, completed, w, MHD_OPTION_NOTIFY_CONNECTION,
        notify_connection, w, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)(cfg->threads ? cfg->threads : 1), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)LIMIT_HTTP_CONNECTIONS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        LIMIT_HTTP_CONN_MEMORY_FOR(w->cfg.max_header), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)LIMIT_HTTP_CONN_TIMEOUT, MHD_OPTION_END);
    if (!w->daemon) {
        err_set(err, ERR_INTERNAL, "cannot start the HTTP server");
        err_detail(err, "MHD_start_daemon failed: %s", strerror(errno));
        close(fd);
        web_mailer_stop(w);
        free_urls(w);
        web_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

unsigned web_port(const struct web *w)
{
    return w->port;
}

const char *web_public_url(const struct web *w)
{
    return w->public_url;
}

void web_stop(struct web *w)
{
    if (!w)
        return;
    /*
     * New launches now get 503 and a closed connection, on kept-alive
     * connections and new ones alike. The daemon is not quiesced: on an
     * epoll daemon with its own threads, libmicrohttpd 0.9.75's
     * MHD_quiesce_daemon() races with its threads' own removal of the
     * listening socket from their epoll sets, and the loser aborts the
     * process ("Failed to remove listen FD from epoll set", seen in
     * test_pages' stop while launching). Connections that arrive during
     * the drain are answered instead; MHD_stop_daemon() closes the socket.
     */
    atomic_store(&w->stopping, true);
    /*
     * Launches waiting for the writer get their answer before the daemon
     * goes: MHD must not be stopped with a suspended connection. Those not
     * begun are answered 503 now; the batch being written ends within the
     * database's busy timeout.
     */
    store_launch_refuse_queued(w->store);
    while (atomic_load(&w->launches_in_flight) > 0) {
        struct timespec ts = { 0, 5 * 1000 * 1000 };

        nanosleep(&ts, NULL);
    }
    /*
     * The same for learners waiting for their confirmation mail: those
     * still queued are answered now, the mail being sent is given up
     * within a second (with a stuck relay the queue could take a minute).
     */
    web_mailer_drain(w);
    while (atomic_load(&w->mails_in_flight) > 0) {
        struct timespec ts = { 0, 5 * 1000 * 1000 };

        nanosleep(&ts, NULL);
    }
    {
        /* let the pool threads send what was just queued */
        struct timespec ts = { 0, 50 * 1000 * 1000 };

        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(w->daemon);
    web_mailer_stop(w);
    free_urls(w);
    web_free(w);
}
