/*
 * tests/unit/net/http.c - the one HTTP client: the address and host policy
 * (what the tool refuses to call, checked on the address being connected),
 * the methods, bodies and headers it sends, the answer headers it keeps,
 * its cancel hook, and net_http_classify(). Requests go only to a closed
 * local port or to the tiny server below, on 127.0.0.1, in a thread of the
 * test: it records each request and answers as the test says (a canned
 * answer, silence until told, or a closed connection).
 */
#include "base/base.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

static struct net_http_response post(const struct net_http_policy *p, const char *url)
{
    struct net_http *h = net_http_new();
    struct net_http_request req = {
        .method = NET_HTTP_POST,
        .url = url,
        .content_type = "application/xml",
        .body = "<x/>",
        .body_len = 4,
        .max_response = 1024,
    };
    struct net_http_response resp;

    assert_non_null(h);
    net_http_send(h, p, &req, &resp);
    net_http_free(h);
    net_http_response_release(&resp);
    return resp;
}

static void refused_addresses(void **state)
{
    static const struct {
        const char *url, *why;
    } cases[] = {
        { "http://127.0.0.1:1/outcomes", "loopback" },
        { "http://127.8.9.10:1/", "loopback" },
        { "http://[::1]:1/", "loopback" },
        { "http://169.254.169.254/latest/meta-data/", "link-local" },
        { "http://[::ffff:169.254.169.254]/", "link-local" },
        { "http://[fe80::1]:1/", "link-local" },
        { "http://[fd00:ec2::254]/", "metadata" },
        { "http://100.100.100.200/", "metadata" },
        { "http://0.0.0.0:1/", "unspecified" },
        { "http://224.0.0.1:1/", "multicast" },
    };
    struct net_http_policy p = { .allowed_hosts = NULL,
                                 .allow_loopback = false,
                                 .connect_timeout_ms = 1000,
                                 .timeout_ms = 2000 };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct net_http_response r = post(&p, cases[i].url);

        if (r.outcome != NET_HTTP_REFUSED || !strstr(r.error, cases[i].why))
            fail_msg("%s: outcome %d, '%s'", cases[i].url, (int)r.outcome, r.error);
    }
}

static void loopback_when_allowed(void **state)
{
    struct net_http_policy p = { .allowed_hosts = NULL,
                                 .allow_loopback = true,
                                 .connect_timeout_ms = 1000,
                                 .timeout_ms = 2000 };
    /* port 1 is closed: the connection is tried, and fails as a network error */
    struct net_http_response r = post(&p, "http://127.0.0.1:1/outcomes");

    assert_int_equal(r.outcome, NET_HTTP_NETWORK);
    /* still never link-local */
    r = post(&p, "http://169.254.169.254/");
    assert_int_equal(r.outcome, NET_HTTP_REFUSED);
}

static void schemes_and_hosts(void **state)
{
    struct net_http_policy p = { .allowed_hosts = "lms.example.edu, .example.org",
                                 .allow_loopback = true,
                                 .connect_timeout_ms = 1000,
                                 .timeout_ms = 2000 };
    char why[256];

    assert_true(net_http_url_allowed(&p, "https://lms.example.edu/x", why, sizeof(why)));
    assert_true(net_http_url_allowed(&p, "https://LMS.Example.EDU:8443/x", why, sizeof(why)));
    assert_true(net_http_url_allowed(&p, "https://example.org/x", why, sizeof(why)));
    assert_true(net_http_url_allowed(&p, "http://a.b.example.org/x", why, sizeof(why)));
    assert_false(net_http_url_allowed(&p, "https://badexample.org/x", why, sizeof(why)));
    assert_non_null(strstr(why, "the allowed hosts"));
    p.allowed_what = "the consumer's outcome hosts";
    assert_false(net_http_url_allowed(&p, "https://badexample.org/x", why, sizeof(why)));
    assert_non_null(strstr(why, "outcome hosts"));
    assert_false(net_http_url_allowed(&p, "https://lms.example.edu.evil.net/", why, sizeof(why)));
    assert_false(net_http_url_allowed(&p, "https://other.example.edu/", why, sizeof(why)));
    p.allowed_hosts = NULL;
    assert_true(net_http_url_allowed(&p, "https://anywhere.example/", why, sizeof(why)));
    assert_false(net_http_url_allowed(&p, "file:///etc/passwd", why, sizeof(why)));
    assert_false(net_http_url_allowed(&p, "ftp://lms.example.edu/", why, sizeof(why)));
    assert_false(net_http_url_allowed(&p, "gopher://lms.example.edu/", why, sizeof(why)));
    assert_false(net_http_url_allowed(&p, "not a url", why, sizeof(why)));
    {
        struct net_http_response r = post(&p, "file:///etc/passwd");

        assert_int_equal(r.outcome, NET_HTTP_REFUSED);
    }
}

/* ---- a loopback server ------------------------------------------------------ */

enum srv_mode {
    SRV_REPLY, /* read the request, send `reply`, close */
    SRV_HANG,  /* read the request, say nothing until the client closes */
    SRV_DROP,  /* read the request, close without a word */
    /* answer the first request of a connection and keep it open; close it without a word
       when a second request comes on it (as a server that lost it would) */
    SRV_KEEP_DROP_REUSED,
};

static struct {
    int listen_fd, wake[2];
    long port;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum srv_mode mode;
    const char *reply;
    char request[16384]; /* the last request as it came, headers and body */
    size_t request_len;
    int requests;    /* how many came */
    int connections; /* how many were accepted */
    bool stop;
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* Reads one request: its headers, then Content-Length bytes of body. */
static size_t read_request(int fd, char *b, size_t cap)
{
    size_t got = 0, need = 0;

    for (;;) {
        ssize_t n;
        const char *end;

        if (need && got >= need)
            return got;
        if (got == cap)
            return got;
        n = read(fd, b + got, cap - got);
        if (n <= 0)
            return got;
        got += (size_t)n;
        end = need ? NULL : memmem(b, got, "\r\n\r\n", 4);
        if (end) {
            const char *cl = memmem(b, (size_t)(end - b), "Content-Length: ", 16);
            int64_t len = 0;

            if (cl)
                str_to_i64((struct str){ cl + 16, strcspn(cl + 16, "\r") }, 0, 1 << 20, &len);
            need = (size_t)(end - b) + 4 + (size_t)len;
        }
    }
}

/* Answers (or not) one request read from `fd`; false when the connection is to be closed. */
static bool srv_serve(int fd, bool reused)
{
    char b[sizeof(srv.request)];
    size_t n = read_request(fd, b, sizeof(b));
    enum srv_mode mode;
    const char *reply;

    if (n == 0)
        return false;
    pthread_mutex_lock(&srv.mu);
    memcpy(srv.request, b, n);
    srv.request_len = n;
    srv.requests++;
    mode = srv.mode;
    reply = srv.reply;
    pthread_cond_broadcast(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
    if (mode == SRV_KEEP_DROP_REUSED) {
        if (reused)
            return false;
        if (write(fd, reply, strlen(reply)) < 0)
            fprintf(stderr, "test server: write failed\n");
        return true;
    }
    if (mode == SRV_REPLY) {
        if (write(fd, reply, strlen(reply)) < 0)
            fprintf(stderr, "test server: write failed\n");
    } else if (mode == SRV_HANG) {
        struct pollfd w[2] = { { fd, POLLIN, 0 }, { srv.wake[0], POLLIN, 0 } };

        poll(w, 2, -1); /* until the client gives up (or the test ends) */
    }
    return false;
}

static void *srv_main(void *arg)
{
    int kept = -1; /* a connection kept open after its first answer (SRV_KEEP_DROP_REUSED) */

    (void)arg;
    for (;;) {
        struct pollfd p[3] = { { srv.listen_fd, POLLIN, 0 },
                               { srv.wake[0], POLLIN, 0 },
                               { kept, POLLIN, 0 } };
        int fd;

        if (poll(p, 3, -1) < 0 || (p[1].revents & POLLIN))
            break;
        if (kept >= 0 && p[2].revents) {
            /* a second request on the kept connection, or its close */
            srv_serve(kept, true);
            close(kept);
            kept = -1;
            continue;
        }
        if (!(p[0].revents & POLLIN))
            continue;
        fd = accept(srv.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&srv.mu);
        srv.connections++;
        pthread_mutex_unlock(&srv.mu);
        if (srv_serve(fd, false)) {
            if (kept >= 0)
                close(kept);
            kept = fd;
        } else {
            close(fd);
        }
    }
    if (kept >= 0)
        close(kept);
    return NULL;
}

static int srv_start(void **state)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);

    (void)state;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (srv.listen_fd < 0 || bind(srv.listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(srv.listen_fd, 8) < 0 ||
        getsockname(srv.listen_fd, (struct sockaddr *)&a, &al) < 0 || pipe(srv.wake) < 0)
        return -1;
    srv.port = ntohs(a.sin_port);
    return pthread_create(&srv.thread, NULL, srv_main, NULL) == 0 ? 0 : -1;
}

static int srv_stop(void **state)
{
    (void)state;
    if (write(srv.wake[1], "x", 1) != 1)
        return -1;
    pthread_join(srv.thread, NULL);
    close(srv.listen_fd);
    close(srv.wake[0]);
    close(srv.wake[1]);
    return 0;
}

static void srv_set(enum srv_mode mode, const char *reply)
{
    pthread_mutex_lock(&srv.mu);
    srv.mode = mode;
    srv.reply = reply;
    srv.request_len = 0;
    srv.request[0] = '\0';
    pthread_mutex_unlock(&srv.mu);
}

static int srv_requests(void)
{
    int n;

    pthread_mutex_lock(&srv.mu);
    n = srv.requests;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* The last request, NUL-terminated (the server wrote it before answering). */
static const char *srv_request(void)
{
    static char copy[sizeof(srv.request) + 1];

    pthread_mutex_lock(&srv.mu);
    memcpy(copy, srv.request, srv.request_len);
    copy[srv.request_len] = '\0';
    pthread_mutex_unlock(&srv.mu);
    return copy;
}

static const struct net_http_policy loop_policy = {
    .allowed_hosts = NULL, .allow_loopback = true, .connect_timeout_ms = 2000, .timeout_ms = 10000
};

static struct net_http_response send_to(const struct net_http_policy *p,
                                        struct net_http_request *req, const char *path)
{
    static char url[128];
    struct net_http *h = net_http_new();
    struct net_http_response resp;

    assert_non_null(h);
    snprintf(url, sizeof(url), "http://127.0.0.1:%ld%s", srv.port, path);
    req->url = url;
    if (!req->max_response)
        req->max_response = 4096;
    net_http_send(h, p, req, &resp);
    net_http_free(h);
    return resp;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void methods_and_bodies(void **state)
{
    static const char json[] = "{\"revocation_reason\":\"wrong learner\"}";
    struct net_http_request req;
    struct net_http_response r;
    struct buf form = BUF_INIT(256);
    const char *got;

    srv_set(SRV_REPLY, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    /* GET: no body, no Content-Type */
    memset(&req, 0, sizeof(req));
    req.method = NET_HTTP_GET;
    r = send_to(&loop_policy, &req, "/v2/badgeclasses/X");
    assert_int_equal(r.outcome, NET_HTTP_ANSWERED);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 2);
    assert_memory_equal(r.body.ptr, "ok", 2);
    net_http_response_release(&r);
    got = srv_request();
    assert_true(starts(got, "GET /v2/badgeclasses/X HTTP/1.1\r\n"));
    assert_null(strstr(got, "Content-Type"));
    assert_null(strstr(got, "Content-Length"));

    /* PUT with a JSON body */
    memset(&req, 0, sizeof(req));
    req.method = NET_HTTP_PUT;
    req.content_type = NET_HTTP_JSON;
    req.body = json;
    req.body_len = strlen(json);
    r = send_to(&loop_policy, &req, "/v2/badgeclasses/X");
    assert_int_equal(r.status, 200);
    net_http_response_release(&r);
    got = srv_request();
    assert_true(starts(got, "PUT /v2/badgeclasses/X HTTP/1.1\r\n"));
    assert_non_null(strstr(got, "\r\nContent-Type: application/json\r\n"));
    assert_string_equal(strstr(got, "\r\n\r\n") + 4, json);

    /* DELETE with a body, as Badgr takes a revocation reason */
    req.method = NET_HTTP_DELETE;
    r = send_to(&loop_policy, &req, "/v2/assertions/A");
    net_http_response_release(&r);
    got = srv_request();
    assert_true(starts(got, "DELETE /v2/assertions/A HTTP/1.1\r\n"));
    assert_string_equal(strstr(got, "\r\n\r\n") + 4, json);

    /* DELETE without one */
    req.body = NULL;
    req.body_len = 0;
    req.content_type = NULL;
    r = send_to(&loop_policy, &req, "/v2/assertions/A");
    net_http_response_release(&r);
    got = srv_request();
    assert_true(starts(got, "DELETE /v2/assertions/A HTTP/1.1\r\n"));
    assert_string_equal(strstr(got, "\r\n\r\n") + 4, "");

    /* POST of a form body, percent-encoded, with an Authorization */
    net_http_form_add(&form, "grant_type", "password");
    net_http_form_add(&form, "username", "a b+c@example.edu");
    net_http_form_add(&form, "password", "p&ss=word");
    assert_string_equal(
        form.ptr, "grant_type=password&username=a%20b%2Bc%40example.edu&password=p%26ss%3Dword");
    memset(&req, 0, sizeof(req));
    req.method = NET_HTTP_POST;
    req.content_type = NET_HTTP_FORM;
    req.authorization = "Basic cHVibGljOg==";
    req.body = form.ptr;
    req.body_len = form.len;
    r = send_to(&loop_policy, &req, "/o/token");
    net_http_response_release(&r);
    got = srv_request();
    assert_true(starts(got, "POST /o/token HTTP/1.1\r\n"));
    assert_non_null(strstr(got, "\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
    assert_non_null(strstr(got, "\r\nAuthorization: Basic cHVibGljOg==\r\n"));
    assert_string_equal(strstr(got, "\r\n\r\n") + 4, form.ptr);
    buf_release(&form);
}

static void extra_headers(void **state)
{
    static const struct net_http_header good[] = { { "Accept", "application/json" },
                                                   { "X-Request-Id", "r-1" } };
    static const struct net_http_header crlf[] = { { "Accept", "a\r\nX-Evil: 1" } };
    static const struct net_http_header space[] = { { "Bad Name", "v" } };
    struct net_http_header many[LIMIT_HTTP_HEADERS + 1];
    struct net_http_request req;
    struct net_http_response r;
    const char *got;
    int before;

    srv_set(SRV_REPLY, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    memset(&req, 0, sizeof(req));
    req.method = NET_HTTP_GET;
    req.headers = good;
    req.nheaders = 2;
    r = send_to(&loop_policy, &req, "/x");
    assert_int_equal(r.status, 204);
    net_http_response_release(&r);
    got = srv_request();
    assert_non_null(strstr(got, "\r\nAccept: application/json\r\n"));
    assert_non_null(strstr(got, "\r\nX-Request-Id: r-1\r\n"));

    /* a header that would smuggle another, a name that is no token, too many: nothing sent */
    before = srv_requests();
    req.headers = crlf;
    req.nheaders = 1;
    r = send_to(&loop_policy, &req, "/x");
    assert_int_equal(r.outcome, NET_HTTP_REFUSED);
    assert_string_equal(r.error, "a request header is not valid");
    net_http_response_release(&r);
    req.headers = space;
    r = send_to(&loop_policy, &req, "/x");
    assert_int_equal(r.outcome, NET_HTTP_REFUSED);
    net_http_response_release(&r);
    for (size_t i = 0; i < LIMIT_HTTP_HEADERS + 1; i++)
        many[i] = (struct net_http_header){ "X-N", "1" };
    req.headers = many;
    req.nheaders = LIMIT_HTTP_HEADERS + 1;
    r = send_to(&loop_policy, &req, "/x");
    assert_int_equal(r.outcome, NET_HTTP_REFUSED);
    net_http_response_release(&r);
    req.nheaders = LIMIT_HTTP_HEADERS; /* at the limit: sent */
    r = send_to(&loop_policy, &req, "/x");
    assert_int_equal(r.outcome, NET_HTTP_ANSWERED);
    net_http_response_release(&r);
    assert_int_equal(srv_requests(), before + 1);
}

static void answer_headers(void **state)
{
    struct net_http_request req;
    struct net_http_response r;
    static char big[LIMIT_HTTP_HEADER_VALUE + 256];

    memset(&req, 0, sizeof(req));
    req.method = NET_HTTP_POST;
    srv_set(SRV_REPLY, "HTTP/1.1 201 Created\r\nConnection: close\r\n"
                       "Location: https://api.example/v2/assertions/A1\r\n"
                       "content-type: application/json; charset=utf-8\r\n"
                       "Link: <https://api.example/x?cursor=1>; rel=\"prev\"\r\n"
                       "Link: <https://api.example/x?cursor=3>; rel=\"next\"\r\n"
                       "Retry-After: 7\r\n"
                       "Content-Length: 2\r\n\r\n{}");
    r = send_to(&loop_policy, &req, "/x");
    assert_int_equal(r.status, 201);
    assert_string_equal(r.location, "https://api.example/v2/assertions/A1");
    assert_string_equal(r.content_type, "application/json; charset=utf-8");
    assert_string_equal(r.link, "<https://api.example/x?cursor=1>; rel=\"prev\", "
                                "<https://api.example/x?cursor=3>; rel=\"next\"");
    assert_int_equal(r.retry_after, 7);
    {
        char next[256];

        assert_true(net_http_link_next(r.link, next, sizeof(next)));
        assert_string_equal(next, "https://api.example/x?cursor=3");
    }
    net_http_response_release(&r);

    /* none of them: empty */
    srv_set(SRV_REPLY, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    r = send_to(&loop_policy, &req, "/x");
    assert_string_equal(r.location, "");
    assert_string_equal(r.content_type, "");
    assert_string_equal(r.link, "");
    assert_int_equal(r.retry_after, 0);
    net_http_response_release(&r);

    /* a Link longer than kept fails the call like an oversized body */
    snprintf(big, sizeof(big),
             "HTTP/1.1 200 OK\r\nConnection: close\r\nLink: <https://a/%0*d>\r\n"
             "Content-Length: 0\r\n\r\n",
             LIMIT_HTTP_HEADER_VALUE, 0);
    srv_set(SRV_REPLY, big);
    r = send_to(&loop_policy, &req, "/x");
    assert_int_equal(r.outcome, NET_HTTP_NETWORK);
    assert_non_null(strstr(r.error, "header is longer than"));
    net_http_response_release(&r);
}

static bool cancel_once_asked(void *cls)
{
    (void)cls;
    /* the state waited for: the server holds the request and says nothing */
    return srv_requests() > *(int *)cls;
}

static void cancel_during_a_hang(void **state)
{
    struct net_http_policy p = loop_policy;
    struct net_http_request req;
    struct net_http_response r;
    struct net_verdict v;
    int before = srv_requests();
    int64_t t0;

    p.timeout_ms = 60000;
    p.cancelled = cancel_once_asked;
    p.cancelled_cls = &before;
    srv_set(SRV_HANG, NULL);
    memset(&req, 0, sizeof(req));
    req.method = NET_HTTP_POST;
    t0 = util_mono_ns();
    r = send_to(&p, &req, "/hang");
    /* gave up once asked, long before the 60 s timeout (libcurl asks about once a second) */
    assert_true(util_mono_ns() - t0 < 10 * 1000000000LL);
    assert_int_equal(r.outcome, NET_HTTP_NETWORK);
    assert_true(r.cancelled);
    assert_false(r.timed_out);
    net_http_classify(&r, &v);
    assert_int_equal(v.status, NET_RETRY);
    net_http_response_release(&r);
}

static void timeout_and_drop(void **state)
{
    struct net_http_policy p = loop_policy;
    struct net_http_request req;
    struct net_http_response r;
    struct net_verdict v;

    memset(&req, 0, sizeof(req));
    req.method = NET_HTTP_POST;
    p.timeout_ms = 300;
    srv_set(SRV_HANG, NULL);
    r = send_to(&p, &req, "/hang");
    assert_int_equal(r.outcome, NET_HTTP_NETWORK);
    if (!r.timed_out)
        fail_msg("not timed out: %s (%s)", r.error, r.detail);
    assert_string_equal(r.error, "no answer in time");
    net_http_classify(&r, &v);
    assert_int_equal(v.status, NET_RETRY);
    net_http_response_release(&r);

    srv_set(SRV_DROP, NULL);
    r = send_to(&loop_policy, &req, "/drop");
    assert_int_equal(r.outcome, NET_HTTP_NETWORK);
    assert_false(r.timed_out);
    net_http_classify(&r, &v);
    assert_int_equal(v.status, NET_RETRY);
    net_http_response_release(&r);
}

/*
 * What fresh_connection is for. On a handle that kept a connection alive, a
 * POST whose connection closes before any answer is sent again by libcurl
 * on a new one: the server gets it twice (a platform would make two
 * assertions). With fresh_connection it goes on a connection of its own,
 * arrives once, and the caller hears of the drop; the GETs still share one.
 */
static void fresh_connection_never_sent_twice(void **state)
{
    static const char keep[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    struct net_http *h = net_http_new();
    struct net_http_request req;
    struct net_http_response r;
    char url[128];
    int before, conns;

    (void)state;
    assert_non_null(h);
    snprintf(url, sizeof(url), "http://127.0.0.1:%ld/x", srv.port);
    for (int fresh = 0; fresh < 2; fresh++) {
        srv_set(SRV_KEEP_DROP_REUSED, keep);
        memset(&req, 0, sizeof(req));
        req.method = NET_HTTP_GET;
        req.url = url;
        req.max_response = 4096;
        net_http_send(h, &loop_policy, &req, &r); /* leaves a kept-alive connection */
        assert_int_equal(r.outcome, NET_HTTP_ANSWERED);
        net_http_response_release(&r);
        pthread_mutex_lock(&srv.mu);
        before = srv.requests;
        conns = srv.connections;
        pthread_mutex_unlock(&srv.mu);
        req.method = NET_HTTP_POST;
        req.body = "{}";
        req.body_len = 2;
        req.content_type = NET_HTTP_JSON;
        req.fresh_connection = fresh;
        net_http_send(h, &loop_policy, &req, &r);
        if (!fresh) {
            /* sent on the kept connection, dropped, sent again on a new one: twice */
            assert_int_equal(srv_requests(), before + 2);
            assert_int_equal(r.outcome, NET_HTTP_ANSWERED);
        } else {
            /* its own connection answers it: once, and on a connection made for it */
            assert_int_equal(srv_requests(), before + 1);
            assert_int_equal(r.outcome, NET_HTTP_ANSWERED);
            pthread_mutex_lock(&srv.mu);
            assert_int_equal(srv.connections, conns + 1);
            pthread_mutex_unlock(&srv.mu);
        }
        net_http_response_release(&r);
    }
    net_http_free(h);
}

static void neutral_refusals(void **state)
{
    struct net_http_policy p = { .allowed_hosts = "api.example.edu",
                                 .allow_loopback = true,
                                 .connect_timeout_ms = 1000,
                                 .timeout_ms = 2000 };
    struct net_http_request req;
    struct net_http_response r;
    struct net_http *h = net_http_new();
    char why[256];

    assert_false(net_http_url_allowed(
        &p, "https://user:s3cret@api.example.edu/o/token?password=s3cret", why, sizeof(why)));
    assert_null(strstr(why, "s3cret"));
    assert_null(strstr(why, "/o/token"));
    memset(&req, 0, sizeof(req));
    req.method = NET_HTTP_POST;
    req.url = "https://api.example.edu:1/o/token?password=s3cret";
    req.max_response = 1024;
    p.allow_loopback = false;
    p.allowed_hosts = "api.example.edu";
    /* no such host here: the error is libcurl's generic words, the detail may name the host */
    net_http_send(h, &p, &req, &r);
    assert_int_not_equal(r.outcome, NET_HTTP_ANSWERED);
    assert_null(strstr(r.error, "s3cret"));
    assert_null(strstr(r.error, "/o/token"));
    assert_null(strstr(r.detail, "s3cret"));
    net_http_response_release(&r);
    req.url = "http://other.example.edu/v2/issuers?token=s3cret";
    net_http_send(h, &p, &req, &r);
    assert_int_equal(r.outcome, NET_HTTP_REFUSED);
    assert_string_equal(r.error, "host other.example.edu is not among the allowed hosts");
    net_http_response_release(&r);
    net_http_free(h);
}

static void retry_after_forms(void **state)
{
    /* Sun, 06 Nov 1994 08:49:37 GMT, the date of RFC 9110's examples */
    const int64_t t = 784111777;

    assert_int_equal(net_http_retry_after(str_from_cstr("120"), t), 120);
    assert_int_equal(net_http_retry_after(str_from_cstr(" 0 "), t), 0);
    assert_int_equal(net_http_retry_after(str_from_cstr("99999999"), t), 7 * 24 * 3600);
    assert_int_equal(net_http_retry_after(str_from_cstr("Sun, 06 Nov 1994 08:50:07 GMT"), t), 30);
    assert_int_equal(net_http_retry_after(str_from_cstr("Sunday, 06-Nov-94 08:51:37 GMT"), t), 120);
    assert_int_equal(net_http_retry_after(str_from_cstr("Sun Nov  6 08:49:47 1994"), t), 10);
    /* a date past: now */
    assert_int_equal(net_http_retry_after(str_from_cstr("Sat, 05 Nov 1994 08:49:37 GMT"), t), 0);
    /* a date far ahead: a week */
    assert_int_equal(net_http_retry_after(str_from_cstr("Fri, 01 Jan 2100 00:00:00 GMT"), t),
                     7 * 24 * 3600);
    /* neither: soon */
    assert_int_equal(net_http_retry_after(str_from_cstr("later, please"), t), 60);
    assert_int_equal(net_http_retry_after(str_from_cstr("-5"), t), 60);
}

static void classify(void **state)
{
    static const struct {
        enum net_http_outcome outcome;
        long status;
        bool tls;
        enum net_status want;
    } cases[] = {
        { NET_HTTP_ANSWERED, 200, false, NET_OK },
        { NET_HTTP_ANSWERED, 201, false, NET_OK },
        { NET_HTTP_ANSWERED, 204, false, NET_OK },
        { NET_HTTP_ANSWERED, 301, false, NET_PERMANENT },
        { NET_HTTP_ANSWERED, 302, false, NET_PERMANENT },
        { NET_HTTP_ANSWERED, 400, false, NET_PERMANENT },
        { NET_HTTP_ANSWERED, 401, false, NET_AUTH },
        { NET_HTTP_ANSWERED, 403, false, NET_AUTH },
        { NET_HTTP_ANSWERED, 404, false, NET_PERMANENT },
        { NET_HTTP_ANSWERED, 408, false, NET_RETRY },
        { NET_HTTP_ANSWERED, 409, false, NET_PERMANENT },
        { NET_HTTP_ANSWERED, 422, false, NET_PERMANENT },
        { NET_HTTP_ANSWERED, 425, false, NET_RETRY },
        { NET_HTTP_ANSWERED, 429, false, NET_RETRY },
        { NET_HTTP_ANSWERED, 500, false, NET_RETRY },
        { NET_HTTP_ANSWERED, 502, false, NET_RETRY },
        { NET_HTTP_ANSWERED, 503, false, NET_RETRY },
        { NET_HTTP_ANSWERED, 504, false, NET_RETRY },
        { NET_HTTP_NETWORK, 0, false, NET_RETRY },
        { NET_HTTP_NETWORK, 0, true, NET_AUTH },
        { NET_HTTP_REFUSED, 0, false, NET_PERMANENT },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct net_http_response r;
        struct net_verdict v;

        memset(&r, 0, sizeof(r));
        r.outcome = cases[i].outcome;
        r.status = cases[i].status;
        r.tls_unverified = cases[i].tls;
        r.retry_after = 30;
        snprintf(r.error, sizeof(r.error), "what went wrong");
        net_http_classify(&r, &v);
        if (v.status != cases[i].want)
            fail_msg("case %zu (outcome %d, HTTP %ld): %d, want %d", i, (int)r.outcome, r.status,
                     (int)v.status, (int)cases[i].want);
        /* Retry-After counts only where a retry is wanted */
        assert_int_equal(v.retry_after, v.status == NET_RETRY && r.status ? 30 : 0);
        if (r.outcome == NET_HTTP_ANSWERED) {
            char want[32];

            snprintf(want, sizeof(want), "HTTP %ld", r.status);
            assert_string_equal(v.message, want);
        } else {
            assert_string_equal(v.message, "what went wrong");
        }
    }
}

static void link_next(void **state)
{
    char out[64];

    assert_true(net_http_link_next("<https://a/p?c=2>; rel=next", out, sizeof(out)));
    assert_string_equal(out, "https://a/p?c=2");
    assert_true(net_http_link_next("<https://a/1>; rel=\"prev\", <https://a/3>; rel=\"last next\"",
                                   out, sizeof(out)));
    assert_string_equal(out, "https://a/3");
    assert_true(net_http_link_next("<https://a/4>;title=\"x\";REL=\"Next\"", out, sizeof(out)));
    assert_string_equal(out, "https://a/4");
    assert_false(net_http_link_next("<https://a/1>; rel=\"prev\"", out, sizeof(out)));
    assert_false(net_http_link_next("<https://a/1>; rel=\"nextish\"", out, sizeof(out)));
    assert_false(net_http_link_next("", out, sizeof(out)));
    assert_false(net_http_link_next("<https://a/", out, sizeof(out)));
    /* does not fit: none rather than a cut URL */
    assert_false(net_http_link_next("<https://a/very/long/path>; rel=next", out, 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_addresses), cmocka_unit_test(loopback_when_allowed),
        cmocka_unit_test(schemes_and_hosts), cmocka_unit_test(neutral_refusals),
        cmocka_unit_test(retry_after_forms), cmocka_unit_test(classify),
        cmocka_unit_test(link_next),
    };
    const struct CMUnitTest served[] = {
        cmocka_unit_test(methods_and_bodies), cmocka_unit_test(extra_headers),
        cmocka_unit_test(answer_headers),     cmocka_unit_test(cancel_during_a_hang),
        cmocka_unit_test(timeout_and_drop),   cmocka_unit_test(fresh_connection_never_sent_twice),
    };
    int failed;

    net_http_global_init();
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    failed += cmocka_run_group_tests(served, srv_start, srv_stop);
    return failed;
}
