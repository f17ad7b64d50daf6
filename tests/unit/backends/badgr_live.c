/*
 * tests/unit/backends/badgr_live.c - the Badgr backend against the suite's
 * contract fake of the Badgr v2 API (tests/integration/badgrfake.py, run on
 * 127.0.0.1 by this test): every op, and each fault leaving exactly one
 * BadgeClass and one assertion per learner at the platform. The fake is
 * steered and read through its /_fake/ control API; nothing here sleeps
 * (the fake hangs until released, its clocks move on request).
 */
#include "base/base.h"
#include "backends/badgr.h"
#include "net/net.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#ifndef LB_SOURCE_DIR
# error "LB_SOURCE_DIR: the source tree, where tests/integration/badgrfake.py is"
#endif
#ifndef LB_PYTHON
# define LB_PYTHON "/usr/bin/python3"
#endif

static pid_t fake_pid = -1;
static int fake_out = -1;
static json_t *fake; /* what the fake printed: base_url, issuer, username, ... */
static char tls_dir[64];

static const char *F(const char *key)
{
    return json_string_value(json_object_get(fake, key));
}

static int fake_start(bool tls)
{
    char line[4096];
    size_t got = 0;
    int fds[2];

    tls_dir[0] = '\0';
    if (tls) {
        char tmpl[] = "/tmp/lb-badgr-XXXXXX";

        if (!mkdtemp(tmpl))
            return -1;
        snprintf(tls_dir, sizeof(tls_dir), "%s", tmpl);
    }
    if (pipe(fds) < 0)
        return -1;
    fake_pid = fork();
    if (fake_pid < 0)
        return -1;
    if (fake_pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
        if (tls)
            execl(LB_PYTHON, LB_PYTHON, LB_SOURCE_DIR "/tests/integration/badgrfake.py",
                  "--tls-dir", tls_dir, (char *)NULL);
        else
            execl(LB_PYTHON, LB_PYTHON, LB_SOURCE_DIR "/tests/integration/badgrfake.py",
                  (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    fake_out = fds[0];
    /* one JSON line once it listens (making a CA with openssl included) */
    while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
        struct pollfd p = { fake_out, POLLIN, 0 };
        ssize_t n;

        if (poll(&p, 1, 30000) != 1)
            break;
        n = read(fake_out, line + got, sizeof(line) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    line[got] = '\0';
    fake = json_loads(line, 0, NULL);
    if (!fake || !F("base_url")) {
        fprintf(stderr, "badgrfake did not start: '%s'\n", line);
        return -1;
    }
    return 0;
}

static int start_plain(void **state)
{
    (void)state;
    return fake_start(false);
}

static int start_tls(void **state)
{
    (void)state;
    return fake_start(true);
}

static int fake_stop(void **state)
{
    int status;

    (void)state;
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, &status, 0);
    }
    if (fake_out >= 0)
        close(fake_out);
    json_decref(fake);
    fake = NULL;
    if (tls_dir[0]) {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tls_dir);
    }
    return 0;
}

/* ---- the control API ---------------------------------------------------------------- */

static json_t *ctl(enum net_http_method method, const char *path, const char *body)
{
    struct net_http *h = net_http_new();
    struct net_http_policy p = {
        .allow_loopback = true,
        .connect_timeout_ms = 5000,
        .timeout_ms = 20000,
        .ca_file = F("ca"),
    };
    char url[512];
    struct net_http_request req = {
        .method = method,
        .url = url,
        .content_type = NET_HTTP_JSON,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .max_response = 16 * 1024 * 1024,
    };
    struct net_http_response resp;
    json_t *doc;

    snprintf(url, sizeof(url), "%s%s", F("base_url"), path);
    net_http_send(h, &p, &req, &resp);
    assert_int_equal(resp.outcome, NET_HTTP_ANSWERED);
    assert_int_equal(resp.status, 200);
    doc = json_loadb(resp.body.ptr, resp.body.len, 0, NULL);
    net_http_response_release(&resp);
    net_http_free(h);
    assert_non_null(doc);
    return doc;
}

static void control(const char *path, const char *body)
{
    json_decref(ctl(NET_HTTP_POST, path, body));
}

static void fault(const char *kind, const char *method, const char *path, const char *extra)
{
    char body[512];

    snprintf(body, sizeof(body),
             "{\"faults\":[{\"kind\":\"%s\",\"method\":\"%s\",\"path\":\"%s\"%s%s}]}", kind, method,
             path, extra ? "," : "", extra ? extra : "");
    control("/_fake/faults", body);
}

/* Requests the fake saw whose method is `method` and path ends with `tail` (NULL: any). */
static size_t seen(const char *method, const char *tail, const char *body_has)
{
    json_t *st = ctl(NET_HTTP_GET, "/_fake/state", NULL), *r;
    size_t i, n = 0;

    json_array_foreach(json_object_get(st, "requests"), i, r) {
        const char *m = json_string_value(json_object_get(r, "method"));
        const char *p = json_string_value(json_object_get(r, "path"));
        const char *b = json_string_value(json_object_get(r, "body"));

        if (method && strcmp(m, method) != 0)
            continue;
        if (tail && (strlen(p) < strlen(tail) || strcmp(p + strlen(p) - strlen(tail), tail)))
            continue;
        if (body_has && (!b || !strstr(b, body_has)))
            continue;
        n++;
    }
    json_decref(st);
    return n;
}

/* The fake's BadgeClasses (`what` "badgeclasses") or assertions, for one badge class or all. */
static size_t count(const char *what, const char *badgeclass)
{
    json_t *st = ctl(NET_HTTP_GET, "/_fake/state", NULL), *e;
    size_t i, n = 0;

    json_array_foreach(json_object_get(st, what), i, e) {
        if (!badgeclass ||
            strcmp(json_string_value(json_object_get(e, "badgeclass")), badgeclass) == 0)
            n++;
    }
    json_decref(st);
    return n;
}

/* One entity of the fake's state by id (a copy: json_decref). */
static json_t *entity(const char *what, const char *id)
{
    json_t *st = ctl(NET_HTTP_GET, "/_fake/state", NULL), *e, *out = NULL;
    size_t i;

    json_array_foreach(json_object_get(st, what), i, e) {
        if (strcmp(json_string_value(json_object_get(e, "entityId")), id) == 0)
            out = json_deep_copy(e);
    }
    json_decref(st);
    assert_non_null(out);
    return out;
}

static int reset(void **state)
{
    (void)state;
    json_decref(ctl(NET_HTTP_DELETE, "/_fake/faults", NULL));
    json_decref(ctl(NET_HTTP_DELETE, "/_fake/requests", NULL));
    control("/_fake/clock", "{\"behind\":0}");
    control("/_fake/paging", "{}");
    control("/_fake/release", "{}");
    return 0;
}

/* ---- the backend ------------------------------------------------------------------------ */

static struct badgr_settings settings(void)
{
    struct badgr_settings s;

    memset(&s, 0, sizeof(s));
    snprintf(s.base_url, sizeof(s.base_url), "%s", F("base_url"));
    snprintf(s.host, sizeof(s.host), "127.0.0.1");
    s.grant = BADGR_GRANT_PASSWORD;
    snprintf(s.username, sizeof(s.username), "%s", F("username"));
    snprintf(s.password, sizeof(s.password), "%s", F("password"));
    snprintf(s.client_id, sizeof(s.client_id), "public");
    snprintf(s.issuer, sizeof(s.issuer), "%s", F("issuer"));
    s.hash_recipients = true;
    s.connect_timeout = 5;
    s.timeout = 20;
    s.rate = 1000;
    s.allow_loopback = true;
    if (F("ca"))
        snprintf(s.ca_file, sizeof(s.ca_file), "%s", F("ca"));
    return s;
}

static struct backend *make(const struct badgr_settings *s)
{
    struct err err = { 0 };
    struct backend *b = backend_badgr_new(s, &err);

    assert_non_null(b);
    return b;
}

/* a 1x1 PNG (badgrfake.tiny_png()) */
static const unsigned char PNG[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0x10, 0x50, 0x30, 0xf8, 0x0f, 0x00, 0x02, 0x04, 0x01, 0x60, 0x8d, 0xbc,
    0xbb, 0x71, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

static struct backend_badge badge(const char *slug, char *marker)
{
    struct backend_badge bc = {
        .slug = slug,
        .name = "Completed unit 1",
        .description = "Finished every activity of unit 1",
        .image_type = "image/png",
        .image = PNG,
        .image_len = sizeof(PNG),
        .issuing_component = "ltibadges",
        .tags = "[\"algebra\"]",
        .alignments = "[]",
    };

    backend_marker("https://tool.example.edu", slug, marker);
    bc.marker = marker;
    return bc;
}

static struct backend_award award(const char *email)
{
    struct backend_award a = {
        .uid = "uid-1",
        .recipient_email = email,
        .narrative = "Completed unit 1 of Algebra",
        .issued_at = util_now() - 3600,
    };
    return a;
}

/* Creates a BadgeClass at the fake; its id into `id`. */
static void create(struct backend *b, struct backend_badge *bc, char *id, size_t idlen)
{
    struct backend_result r;

    b->ops->create_badge_class(b, bc, &r);
    if (r.status != BACKEND_OK)
        fprintf(stderr, "create: %s\n", r.message);
    assert_int_equal(r.status, BACKEND_OK);
    assert_true(strlen(r.id) < idlen);
    memcpy(id, r.id, strlen(r.id) + 1);
    bc->backend_id = id;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_check(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b = make(&s);
    struct backend_result r;

    (void)state;
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_string_equal(r.name, "Fake issuer");
    backend_destroy(b);
    /* an issuer this account is not staff of */
    snprintf(s.issuer, sizeof(s.issuer), "%s", F("other_issuer"));
    b = make(&s);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    assert_non_null(strstr(r.message, "not staff"));
    backend_destroy(b);
    /* client credentials (HTTP Basic, no refresh token) */
    s = settings();
    s.grant = BADGR_GRANT_CLIENT_CREDENTIALS;
    snprintf(s.client_id, sizeof(s.client_id), "%s", F("client_id"));
    snprintf(s.client_secret, sizeof(s.client_secret), "%s", F("client_secret"));
    b = make(&s);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_OK);
    backend_destroy(b);
    assert_int_equal(seen("POST", "/o/token", "grant_type=client_credentials"), 1);
}

static void test_badge_class_create_find_verify_update(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b = make(&s);
    struct backend_result r;
    char marker[BACKEND_MARKER_LEN + 1], id[64];
    struct backend_badge bc = badge("unit-1", marker);
    json_t *e;
    size_t before = count("badgeclasses", NULL);

    (void)state;
    create(b, &bc, id, sizeof(id));
    assert_int_equal(count("badgeclasses", NULL), before + 1);
    e = entity("badgeclasses", id);
    assert_string_equal(json_string_value(json_object_get(e, "criteriaNarrative")),
                        "Finished every activity of unit 1");
    assert_string_equal(json_string_value(json_object_get(e, "_image_type")), "image/png");
    assert_int_equal(json_array_size(json_object_get(e, "tags")),
                     3); /* algebra, ltibadges, marker */
    json_decref(e);
    /* found again by its marker */
    bc.backend_id = NULL;
    b->ops->find_badge_class(b, &bc, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_true(r.found);
    assert_string_equal(r.id, id);
    bc.backend_id = id;
    b->ops->verify_badge_class(b, id, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_string_equal(r.id, id);
    b->ops->verify_badge_class(b, F("other_badgeclass"), &r);
    assert_int_equal(r.status, BACKEND_PERMANENT);
    assert_non_null(strstr(r.message, "not staff of its issuer"));
    b->ops->verify_badge_class(b, "../../etc", &r);
    assert_int_equal(r.status, BACKEND_PERMANENT);
    /* every field sent again */
    bc.name = "Unit 1, renamed";
    bc.expires_days = 30;
    b->ops->update_badge_class(b, &bc, &r);
    assert_int_equal(r.status, BACKEND_OK);
    e = entity("badgeclasses", id);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "Unit 1, renamed");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "expires"), "amount")),
                     30);
    assert_int_equal(json_integer_value(json_object_get(e, "_updates")), 1);
    json_decref(e);
    /* a refusal names the field */
    bc.image_type = "image/svg+xml"; /* PNG bytes called SVG: badgr reads the bytes */
    bc.image = (const unsigned char *)"<html/>";
    bc.image_len = 7;
    b->ops->update_badge_class(b, &bc, &r);
    assert_int_equal(r.status, BACKEND_PERMANENT);
    assert_string_equal(r.message, "updating the BadgeClass: image: Invalid image.");
    backend_destroy(b);
}

static void test_issue_duplicate_find_revoke(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b = make(&s);
    struct backend_result r;
    char marker[BACKEND_MARKER_LEN + 1], id[64], aid[64];
    struct backend_badge bc = badge("unit-2", marker);
    struct backend_award a = award("Learner.One@Example.EDU");
    json_t *e;

    (void)state;
    create(b, &bc, id, sizeof(id));
    b->ops->issue(b, &bc, &a, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_true(strlen(r.id) < sizeof(aid));
    memcpy(aid, r.id, strlen(r.id) + 1);
    assert_non_null(strstr(r.url, "/public/assertions/"));
    e = entity("assertions", aid);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e, "recipient"), "plaintextIdentity")),
        "learner.one@example.edu");
    assert_true(json_is_true(json_object_get(json_object_get(e, "recipient"), "hashed")));
    json_decref(e);
    /* sent again (an answer lost): refused as a duplicate, the existing one adopted */
    b->ops->issue(b, &bc, &a, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_string_equal(r.id, aid);
    assert_int_equal(count("assertions", id), 1);
    b->ops->find_assertion(b, &bc, &a, &r);
    assert_true(r.found);
    assert_false(r.revoked);
    assert_string_equal(r.id, aid);
    a.assertion_id = aid;
    b->ops->revoke(b, &bc, &a, "awarded by mistake", &r);
    assert_int_equal(r.status, BACKEND_OK);
    e = entity("assertions", aid);
    assert_true(json_is_true(json_object_get(e, "revoked")));
    assert_string_equal(json_string_value(json_object_get(e, "revocationReason")),
                        "awarded by mistake");
    json_decref(e);
    /* already revoked, and gone, are done */
    b->ops->revoke(b, &bc, &a, "again", &r);
    assert_int_equal(r.status, BACKEND_OK);
    a.assertion_id = "NoSuchAssertion000001";
    b->ops->revoke(b, &bc, &a, "gone", &r);
    assert_int_equal(r.status, BACKEND_OK);
    /* no id (attempted, answer lost): looked up; a revoked one is left alone */
    a.assertion_id = NULL;
    b->ops->find_assertion(b, &bc, &a, &r);
    assert_true(r.found);
    assert_true(r.revoked);
    b->ops->revoke(b, &bc, &a, "x", &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_int_equal(seen("DELETE", NULL, NULL), 3);
    backend_destroy(b);
}

static void test_lost_answers_leave_one_each(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b = make(&s);
    struct backend_result r;
    char marker[BACKEND_MARKER_LEN + 1], id[64];
    struct backend_badge bc = badge("unit-3", marker);
    const char *kinds[] = { "lost", "malformed", "no_entity", "html500", "drop" };
    char email[64];

    (void)state;
    /* the BadgeClass made, its answer lost: the worker finds it before making another */
    fault("lost", "POST", "/badgeclasses$", NULL);
    b->ops->create_badge_class(b, &bc, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    b->ops->find_badge_class(b, &bc, &r);
    assert_true(r.found);
    assert_true(strlen(r.id) < sizeof(id));
    memcpy(id, r.id, strlen(r.id) + 1);
    bc.backend_id = id;
    assert_int_equal(count("badgeclasses", NULL) >= 1, 1);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct backend_award a;
        bool done = i < 3; /* lost, malformed, no_entity: made before the answer went wrong */

        snprintf(email, sizeof(email), "learner3-%zu@example.edu", i);
        a = award(email);
        fault(kinds[i], "POST", "/assertions$", NULL);
        b->ops->issue(b, &bc, &a, &r);
        assert_int_equal(r.status, BACKEND_RETRY);
        /* looked up before any re-send, as the worker does */
        b->ops->find_assertion(b, &bc, &a, &r);
        assert_int_equal(r.status, BACKEND_OK);
        assert_int_equal(r.found, done);
        if (!r.found) {
            b->ops->issue(b, &bc, &a, &r);
            assert_int_equal(r.status, BACKEND_OK);
        }
        /* a plain re-send adopts what is there */
        b->ops->issue(b, &bc, &a, &r);
        assert_int_equal(r.status, BACKEND_OK);
        assert_int_equal(count("assertions", id), i + 1);
    }
    backend_destroy(b);
}

static void test_answers_retried(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b;
    struct backend_result r;

    (void)state;
    s.timeout = 1;
    b = make(&s);
    fault("status", "GET", "^/v2/issuers/", "\"status\":429,\"retry_after\":7");
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_int_equal(r.retry_after, 7);
    fault("status", "GET", "^/v2/issuers/", "\"status\":503");
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    /* a hang past the timeout */
    fault("hang", "GET", "^/v2/issuers/", NULL);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    control("/_fake/release", "{}");
    fault("drop", "GET", "^/v2/issuers/", NULL);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_OK);
    backend_destroy(b);
}

static void test_token_renewal(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b = make(&s);
    struct backend_result r;

    (void)state;
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_int_equal(seen("POST", "/o/token", "grant_type=password"), 1);
    /* one 401: renewed (with the refresh token) and sent once more */
    fault("unauthorized", "GET", "^/v2/issuers/", NULL);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_int_equal(seen("POST", "/o/token", "grant_type=refresh_token"), 1);
    /* tokens expiring mid-run */
    control("/_fake/tokens/expire", "{}");
    b->ops->check(b, &r);

    assert_int_equal(r.status, BACKEND_OK);
    assert_int_equal(seen("POST", "/o/token", "grant_type=refresh_token"), 2);
    /* a refused refresh token: a new grant at once */
    control("/_fake/tokens/expire", "{}");
    control("/_fake/refresh/refuse", "{}");
    b->ops->check(b, &r);

    assert_int_equal(r.status, BACKEND_OK);
    assert_int_equal(seen("POST", "/o/token", "grant_type=password"), 2);
    /* 401 twice: auth (past the back-off the refused refresh started: badgr-server keys
     * it by the client's address when the request names no username) */
    control("/_fake/clock", "{\"advance\":3}");
    fault("unauthorized", "GET", "^/v2/issuers/", "\"count\":2");
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    backend_destroy(b);
}

static void test_refused_grant_waits(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b;
    struct backend_result r;

    (void)state;
    snprintf(s.password, sizeof(s.password), "wrong");
    b = make(&s);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    assert_non_null(strstr(r.message, "refused the password"));
    assert_null(strstr(r.message, "wrong"));
    /* not asked again for 5 minutes: no second request feeds the login back-off */
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    assert_true(r.retry_after > 0 && r.retry_after <= LIMIT_BADGR_REFUSED_WAIT);
    assert_int_equal(seen("POST", "/o/token", NULL), 1);
    backend_destroy(b);
    /* another backend meets the platform's login back-off: it waits `expires` */
    b = make(&s);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_int_equal(r.retry_after, 2);
    backend_destroy(b);
    control("/_fake/clock", "{\"advance\":3}");
}

static void test_future_issued_on(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b = make(&s);
    struct backend_result r;
    char marker[BACKEND_MARKER_LEN + 1], id[64];
    struct backend_badge bc = badge("unit-4", marker);
    struct backend_award a = award("learner4@example.edu");

    (void)state;
    create(b, &bc, id, sizeof(id));
    control("/_fake/clock", "{\"behind\":86400}");
    b->ops->issue(b, &bc, &a, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_int_equal(seen("POST", "/assertions", "issuedOn"), 1);
    assert_int_equal(seen("POST", "/assertions", NULL), 2);
    assert_int_equal(count("assertions", id), 1);
    backend_destroy(b);
}

static void test_pages_followed(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b = make(&s);
    struct backend_result r;
    char markers[5][BACKEND_MARKER_LEN + 1], ids[5][64], slug[16];
    struct backend_badge bc;

    (void)state;
    for (int i = 0; i < 5; i++) {
        snprintf(slug, sizeof(slug), "paged-%d", i);
        bc = badge(slug, markers[i]);
        create(b, &bc, ids[i], sizeof(ids[i]));
    }
    control("/_fake/paging", "{\"max\":2}");
    bc = badge("paged-4", markers[4]);
    b->ops->find_badge_class(b, &bc, &r);
    assert_true(r.found);
    assert_string_equal(r.id, ids[4]);
    assert_true(seen("GET", "/badgeclasses", NULL) >= 3);
    backend_destroy(b);
}

/*
 * rate = 20: a request every 50 ms at most, the token's included. The five
 * requests (token, four checks) cannot take less than four gaps, whatever
 * the machine's load: the limiter sleeps them out before each send, and
 * load only adds time. (Their arrival times at the fake are not compared:
 * a request held up by the scheduler arrives late and the next one on
 * time, so gaps between arrivals say nothing dependable.)
 */
static void test_rate(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b;
    struct backend_result r;
    json_t *st;
    int64_t t0;

    (void)state;
    s.rate = 20;
    b = make(&s);
    t0 = util_mono_ns();
    for (int k = 0; k < 4; k++) {
        b->ops->check(b, &r);
        assert_int_equal(r.status, BACKEND_OK);
    }
    assert_true(util_mono_ns() - t0 >= 4 * (1000000000LL / 20));
    backend_destroy(b);
    st = ctl(NET_HTTP_GET, "/_fake/state", NULL);
    assert_int_equal(json_array_size(json_object_get(st, "requests")), 5);
    json_decref(st);
}

static void test_tls(void **state)
{
    struct badgr_settings s = settings();
    struct backend *b = make(&s);
    struct backend_result r;

    (void)state;
    assert_int_equal(strncmp(s.base_url, "https://", 8), 0);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_OK);
    backend_destroy(b);
    /* the system's CA bundle does not know the test's CA */
    s.ca_file[0] = '\0';
    b = make(&s);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    backend_destroy(b);
}

int main(void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test_setup(test_check, reset),
        cmocka_unit_test_setup(test_badge_class_create_find_verify_update, reset),
        cmocka_unit_test_setup(test_issue_duplicate_find_revoke, reset),
        cmocka_unit_test_setup(test_lost_answers_leave_one_each, reset),
        cmocka_unit_test_setup(test_answers_retried, reset),
        cmocka_unit_test_setup(test_token_renewal, reset),
        cmocka_unit_test_setup(test_refused_grant_waits, reset),
        cmocka_unit_test_setup(test_future_issued_on, reset),
        cmocka_unit_test_setup(test_pages_followed, reset),
        cmocka_unit_test_setup(test_rate, reset),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test_setup(test_tls, reset),
    };
    int failed;

    net_http_global_init();
    failed = cmocka_run_group_tests_name("plain", plain, start_plain, fake_stop);
    failed += cmocka_run_group_tests_name("tls", tls, start_tls, fake_stop);
    return failed;
}
