/*
 * tests/unit/backends/badgr.c - the Badgr backend's parts that do not touch
 * the network: what each answer of the v2 API comes to (the envelope, the
 * field a refusal names, the refusals acted on), the OAuth token's states
 * and the bodies sent. The answers are the ones badgr-server gives (see
 * tests/integration/badgrfake.py, which cites its code).
 */
#include "base/base.h"
#include "backends/badgr.h"

#include <setjmp.h>
#include <cmocka.h>

#define JSON_TYPE "application/json"

/* An answer as net_http_send() reports it (release with net_http_response_release()). */
static struct net_http_response answer(long status, const char *ctype, const char *body)
{
    struct net_http_response h;

    memset(&h, 0, sizeof(h));
    h.outcome = NET_HTTP_ANSWERED;
    h.status = status;
    snprintf(h.content_type, sizeof(h.content_type), "%s", ctype ? ctype : "");
    buf_init(&h.body, LIMIT_BADGR_ANSWER);
    if (body)
        buf_addstr(&h.body, body);
    return h;
}

static struct net_http_response no_answer(const char *error, bool tls_unverified)
{
    struct net_http_response h = answer(0, NULL, NULL);

    h.outcome = NET_HTTP_NETWORK;
    h.tls_unverified = tls_unverified;
    snprintf(h.error, sizeof(h.error), "%s", error);
    return h;
}

static enum badgr_kind kind_of(long status, const char *ctype, const char *body, char *msg,
                               size_t msglen)
{
    struct net_http_response h = answer(status, ctype, body);
    struct badgr_reply r;
    enum badgr_kind k;

    backend_badgr_reply(&h, "BadgeClass 'abc'", &r);
    k = r.kind;
    if (msg)
        snprintf(msg, msglen, "%s", r.message);
    backend_badgr_reply_release(&r);
    net_http_response_release(&h);
    return k;
}

#define REFUSAL(fe, ve)                                                                            \
 "{\"status\":{\"success\":false,\"description\":\"bad request\"},\"result\":[],"                  \
 "\"fieldErrors\":" fe ",\"validationErrors\":" ve "}"

static void test_envelope_ok(void **state)
{
    struct net_http_response h =
        answer(201, "application/ld+json",
               "{\"status\":{\"success\":true,\"description\":\"ok\"},"
               "\"result\":[{\"entityId\":\"g66EErPYSZOyssbD79U3zB\","
               "\"openBadgeId\":\"https://api.example/public/assertions/g6\"}]}");
    struct badgr_reply r;
    char id[64], url[256];

    (void)state;
    backend_badgr_reply(&h, NULL, &r);
    assert_int_equal(r.kind, BADGR_OK);
    assert_int_equal(json_array_size(r.result), 1);
    assert_int_equal(backend_badgr_entity(&r, id, sizeof(id), url, sizeof(url)), 0);
    assert_string_equal(id, "g66EErPYSZOyssbD79U3zB");
    assert_string_equal(url, "https://api.example/public/assertions/g6");
    backend_badgr_reply_release(&r);
    net_http_response_release(&h);
}

static void test_no_envelope_is_retry(void **state)
{
    struct badgr_reply r;
    struct net_http_response h;
    char id[64];

    (void)state;
    /* a 2xx without the envelope, malformed JSON, HTML: the work may be done; look it up */
    assert_int_equal(kind_of(201, JSON_TYPE,
                             "{\"status\":{\"success\":true,\"description\":\"ok"
                             "\"},\"result\":[{\"entity",
                             NULL, 0),
                     BADGR_RETRY);
    assert_int_equal(kind_of(200, "text/html", "<h1>ok</h1>", NULL, 0), BADGR_RETRY);
    assert_int_equal(kind_of(200, JSON_TYPE, "{\"result\":[]}", NULL, 0), BADGR_RETRY);
    assert_int_equal(
        kind_of(200, JSON_TYPE, "{\"status\":{\"success\":true},\"result\":{}}", NULL, 0),
        BADGR_RETRY);
    assert_int_equal(kind_of(204, JSON_TYPE, "", NULL, 0), BADGR_RETRY);
    /* a 2xx envelope without entityId */
    h = answer(
        201, JSON_TYPE,
        "{\"status\":{\"success\":true,\"description\":\"ok\"},\"result\":[{\"name\":\"x\"}]}");
    backend_badgr_reply(&h, NULL, &r);
    assert_int_equal(r.kind, BADGR_OK);
    assert_int_equal(backend_badgr_entity(&r, id, sizeof(id), NULL, 0), -1);
    backend_badgr_reply_release(&r);
    net_http_response_release(&h);
}

static void test_statuses(void **state)
{
    struct net_http_response h = answer(429, "text/html", "<h1>slow down</h1>");
    struct badgr_reply r;
    char msg[LIMIT_AWARD_ERROR_LEN + 1];

    (void)state;
    h.retry_after = 7;
    backend_badgr_reply(&h, NULL, &r);
    assert_int_equal(r.kind, BADGR_RETRY);
    assert_int_equal(r.retry_after, 7);
    backend_badgr_reply_release(&r);
    net_http_response_release(&h);
    assert_int_equal(kind_of(500, "text/html", "<h1>Server Error (500)</h1>", NULL, 0),
                     BADGR_RETRY);
    assert_int_equal(kind_of(503, "text/html", "<html>503</html>", NULL, 0), BADGR_RETRY);
    assert_int_equal(kind_of(502, NULL, NULL, NULL, 0), BADGR_RETRY);
    assert_int_equal(kind_of(401, JSON_TYPE,
                             "{\"status\":{\"success\":false,\"description\":\"no valid auth "
                             "token found\"},\"result\":[],\"fieldErrors\":{},"
                             "\"validationErrors\":[]}",
                             NULL, 0),
                     BADGR_UNAUTHORIZED);
    assert_int_equal(kind_of(404, JSON_TYPE,
                             "{\"status\":{\"success\":false,\"description\":\"entity not found "
                             "or insufficient privileges\"},\"result\":[],\"fieldErrors\":{},"
                             "\"validationErrors\":[]}",
                             msg, sizeof(msg)),
                     BADGR_NOT_FOUND);
    assert_string_equal(msg, "BadgeClass 'abc' not found at badgr, or this account is not staff "
                             "of its issuer");
    /* a 404 page of the web server, not of the API: base_url is wrong */
    assert_int_equal(kind_of(404, "text/html", "<h1>Not Found</h1>", msg, sizeof(msg)), BADGR_AUTH);
    assert_non_null(strstr(msg, "base_url"));
    assert_int_equal(kind_of(413, "text/html", "<h1>Too large</h1>", msg, sizeof(msg)),
                     BADGR_PERMANENT);
    assert_string_equal(msg, "badgr refused the request (HTTP 413)");
    assert_int_equal(kind_of(403, "text/html", "<h1>Forbidden</h1>", msg, sizeof(msg)), BADGR_AUTH);
}

static void test_no_answer(void **state)
{
    struct net_http_response h = no_answer("timed out", false);
    struct badgr_reply r;

    (void)state;
    backend_badgr_reply(&h, NULL, &r);
    assert_int_equal(r.kind, BADGR_RETRY);
    assert_string_equal(r.message, "badgr: timed out");
    net_http_response_release(&h);
    h = no_answer("the server's certificate does not verify", true);
    backend_badgr_reply(&h, NULL, &r);
    assert_int_equal(r.kind, BADGR_AUTH);
    assert_non_null(strstr(r.message, "does not verify"));
    net_http_response_release(&h);
}

static void test_refusals_name_the_field(void **state)
{
    char msg[LIMIT_AWARD_ERROR_LEN + 1];

    (void)state;
    assert_int_equal(
        kind_of(400, JSON_TYPE, REFUSAL("{\"image\":[\"Invalid PNG\"]}", "[]"), msg, sizeof(msg)),
        BADGR_PERMANENT);
    assert_string_equal(msg, "image: Invalid PNG");
    /* a dict ValidationError keeps its text as a string */
    kind_of(400, JSON_TYPE, REFUSAL("{\"image\":\"Valid image file or data URI required.\"}", "[]"),
            msg, sizeof(msg));
    assert_string_equal(msg, "image: Valid image file or data URI required.");
    kind_of(
        400, JSON_TYPE,
        REFUSAL("{\"recipient\":{\"non_field_errors\":[\"Enter a valid email address.\"]}}", "[]"),
        msg, sizeof(msg));
    assert_string_equal(msg, "recipient: Enter a valid email address.");
    kind_of(400, JSON_TYPE,
            REFUSAL("{\"alignments\":[{},{\"targetUrl\":[\"Enter a valid URL.\"]}],"
                    "\"expires\":{\"duration\":[\"\\\"x\\\" is not a valid choice.\"]}}",
                    "[]"),
            msg, sizeof(msg));
    assert_string_equal(msg, "alignments[1].targetUrl: Enter a valid URL.; expires.duration: "
                             "\"x\" is not a valid choice.");
    /* non_field_errors at the top: texts without a field */
    kind_of(400, JSON_TYPE, REFUSAL("{\"non_field_errors\":[\"Not allowed\"]}", "[]"), msg,
            sizeof(msg));
    assert_string_equal(msg, "Not allowed");
    kind_of(400, JSON_TYPE, REFUSAL("{}", "[\"Issuer email must be verified\"]"), msg, sizeof(msg));
    assert_string_equal(msg, "Issuer email must be verified");
    /* a control character or newline of the platform's text stays on one line */
    kind_of(400, JSON_TYPE, REFUSAL("{\"name\":[\"bad\\nname\\u0007\"]}", "[]"), msg, sizeof(msg));
    assert_string_equal(msg, "name: bad name ");
    /* no texts at all: the status and description */
    kind_of(405, JSON_TYPE,
            "{\"status\":{\"success\":false,\"description\":\"miscellaneous error\"},"
            "\"result\":[],\"fieldErrors\":{},\"validationErrors\":[]}",
            msg, sizeof(msg));
    assert_string_equal(msg, "badgr refused the request (HTTP 405: miscellaneous error)");
}

static void test_refusals_acted_on(void **state)
{
    (void)state;
    assert_int_equal(kind_of(400, JSON_TYPE,
                             REFUSAL("{}", "[\"A previous award of this badge already exists "
                                           "for this recipient.\"]"),
                             NULL, 0),
                     BADGR_DUPLICATE);
    assert_int_equal(
        kind_of(400, JSON_TYPE, REFUSAL("{}", "[\"Assertion is already revoked\"]"), NULL, 0),
        BADGR_ALREADY_REVOKED);
    assert_int_equal(kind_of(400, JSON_TYPE,
                             REFUSAL("{\"issuedOn\":[\"Only issuedOn dates in the past are "
                                     "acceptable.\"]}",
                                     "[]"),
                             NULL, 0),
                     BADGR_FUTURE_ISSUED_ON);
    /* another issuedOn refusal is no clock skew */
    assert_int_equal(kind_of(400, JSON_TYPE,
                             REFUSAL("{\"issuedOn\":[\"Datetime has wrong format.\"]}", "[]"), NULL,
                             0),
                     BADGR_PERMANENT);
}

/* ---- the token ---------------------------------------------------------------------- */

static const struct badgr_creds PASSWORD = {
    .username = "Badges@example.edu",
    .password = "p&ss word",
};

static const struct badgr_creds CLIENT = {
    .client_credentials = true,
    .client_id = "lti-app",
    .client_secret = "s3cret",
};

static void token_answer(struct badgr_token *t, const struct badgr_creds *c,
                         enum badgr_token_step step, long status, const char *ctype,
                         const char *body, int64_t now, struct backend_result *r)
{
    struct net_http_response h = answer(status, ctype, body);

    backend_badgr_token_answer(t, c, step, &h, now, r);
    net_http_response_release(&h);
}

static void test_token_requests(void **state)
{
    struct badgr_token t;
    struct buf form = BUF_INIT(8192), authz = BUF_INIT(8192);
    struct err err = { 0 };

    (void)state;
    backend_badgr_token_init(&t);
    assert_int_equal(backend_badgr_token_step(&t, 1000), BADGR_TOKEN_GRANT);
    assert_int_equal(
        backend_badgr_token_request(&PASSWORD, &t, BADGR_TOKEN_GRANT, &form, &authz, &err), 0);
    assert_string_equal(form.ptr, "grant_type=password&username=Badges%40example.edu&password=p%"
                                  "26ss%20word&scope=rw%3Aissuer&client_id=public");
    assert_int_equal(authz.len, 0);
    assert_int_equal(
        backend_badgr_token_request(&CLIENT, &t, BADGR_TOKEN_GRANT, &form, &authz, &err), 0);
    assert_string_equal(form.ptr, "grant_type=client_credentials&scope=rw%3Aissuer");
    assert_string_equal(authz.ptr, "Basic bHRpLWFwcDpzM2NyZXQ="); /* lti-app:s3cret */
    snprintf(t.refresh, sizeof(t.refresh), "%s", "rt-1");
    assert_int_equal(
        backend_badgr_token_request(&PASSWORD, &t, BADGR_TOKEN_REFRESH, &form, &authz, &err), 0);
    assert_string_equal(form.ptr,
                        "grant_type=refresh_token&refresh_token=rt-1&scope=rw%3Aissuer&client_id="
                        "public");
    buf_release(&form);
    buf_release(&authz);
}

static void test_token_life_and_rotation(void **state)
{
    struct badgr_token t;
    struct backend_result r;
    uint64_t g;

    (void)state;
    backend_badgr_token_init(&t);
    token_answer(&t, &PASSWORD, BADGR_TOKEN_GRANT, 200, JSON_TYPE,
                 "{\"access_token\":\"at-1\",\"expires_in\":86400,\"token_type\":\"Bearer\","
                 "\"scope\":\"rw:issuer\",\"refresh_token\":\"rt-1\"}",
                 1000, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_string_equal(t.access, "at-1");
    assert_string_equal(t.refresh, "rt-1");
    g = t.generation;
    /* renewed before it expires: 5 minutes at most before, a tenth of a short life */
    assert_int_equal(backend_badgr_token_step(&t, 1000 + 86400 - 301), BADGR_TOKEN_USE);
    assert_int_equal(backend_badgr_token_step(&t, 1000 + 86400 - 300), BADGR_TOKEN_REFRESH);
    /* the refresh token rotates */
    token_answer(&t, &PASSWORD, BADGR_TOKEN_REFRESH, 200, JSON_TYPE,
                 "{\"access_token\":\"at-2\",\"expires_in\":100,\"refresh_token\":\"rt-2\"}", 90000,
                 &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_string_equal(t.refresh, "rt-2");
    assert_true(t.generation > g);
    assert_int_equal(backend_badgr_token_step(&t, 90000 + 89), BADGR_TOKEN_USE);
    assert_int_equal(backend_badgr_token_step(&t, 90000 + 90), BADGR_TOKEN_REFRESH);
    /* an answer with no refresh token: a new grant next time */
    token_answer(&t, &PASSWORD, BADGR_TOKEN_REFRESH, 200, JSON_TYPE,
                 "{\"access_token\":\"at-3\",\"expires_in\":3600}", 95000, &r);
    assert_int_equal(t.refresh[0], '\0');
    assert_int_equal(backend_badgr_token_step(&t, 95000 + 3600), BADGR_TOKEN_GRANT);
    /* no expires_in: an hour is assumed */
    token_answer(&t, &CLIENT, BADGR_TOKEN_GRANT, 200, JSON_TYPE, "{\"access_token\":\"at-4\"}",
                 100000, &r);
    assert_int_equal(backend_badgr_token_step(&t, 100000 + 3599 - 300), BADGR_TOKEN_USE);
    /* a token that is no token */
    token_answer(&t, &CLIENT, BADGR_TOKEN_GRANT, 200, JSON_TYPE, "{\"access_token\":\"two words\"}",
                 100001, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_string_equal(t.access, "at-4");
}

static void test_token_401_renews_once(void **state)
{
    struct badgr_token t;
    struct backend_result r;
    uint64_t g;

    (void)state;
    backend_badgr_token_init(&t);
    token_answer(&t, &PASSWORD, BADGR_TOKEN_GRANT, 200, JSON_TYPE,
                 "{\"access_token\":\"at-1\",\"expires_in\":86400,\"refresh_token\":\"rt-1\"}", 0,
                 &r);
    g = t.generation;
    backend_badgr_token_rejected(&t, g);
    assert_int_equal(backend_badgr_token_step(&t, 1), BADGR_TOKEN_REFRESH);
    token_answer(&t, &PASSWORD, BADGR_TOKEN_REFRESH, 200, JSON_TYPE,
                 "{\"access_token\":\"at-2\",\"expires_in\":86400,\"refresh_token\":\"rt-2\"}", 1,
                 &r);
    /* another call's 401 with the old token does not drop the new one */
    backend_badgr_token_rejected(&t, g);
    assert_int_equal(backend_badgr_token_step(&t, 2), BADGR_TOKEN_USE);
    assert_string_equal(t.access, "at-2");
}

static void test_token_refused_refresh_then_grant(void **state)
{
    struct badgr_token t;
    struct backend_result r;

    (void)state;
    backend_badgr_token_init(&t);
    snprintf(t.refresh, sizeof(t.refresh), "%s", "rt-old");
    token_answer(&t, &PASSWORD, BADGR_TOKEN_REFRESH, 400, JSON_TYPE,
                 "{\"error\":\"invalid_grant\"}", 50, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_int_equal(r.retry_after, 0);
    assert_int_equal(backend_badgr_token_step(&t, 50), BADGR_TOKEN_GRANT);
}

static void test_token_refused_grant_waits(void **state)
{
    struct badgr_token t;
    struct backend_result r;

    (void)state;
    backend_badgr_token_init(&t);
    token_answer(&t, &PASSWORD, BADGR_TOKEN_GRANT, 400, JSON_TYPE,
                 "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid credentials "
                 "given.\"}",
                 1000, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    assert_non_null(strstr(r.message, "password of 'Badges@example.edu'"));
    assert_non_null(strstr(r.message, "set a password"));
    assert_null(strstr(r.message, "p&ss"));
    assert_int_equal(backend_badgr_token_step(&t, 1000 + LIMIT_BADGR_REFUSED_WAIT - 1),
                     BADGR_TOKEN_WAIT);
    assert_int_equal(t.wait_status, BACKEND_AUTH);
    assert_int_equal(backend_badgr_token_step(&t, 1000 + LIMIT_BADGR_REFUSED_WAIT),
                     BADGR_TOKEN_GRANT);
    /* badgr-server's own refusals: JSON in a text/html answer */
    token_answer(&t, &PASSWORD, BADGR_TOKEN_GRANT, 400, "text/html; charset=utf-8",
                 "{\"error\": \"invalid client_id\"}", 2000, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    assert_non_null(strstr(r.message, "self-hosted badgr-server"));
    token_answer(&t, &CLIENT, BADGR_TOKEN_GRANT, 400, "text/html; charset=utf-8",
                 "{\"error\": \"invalid client_secret\"}", 3000, &r);
    assert_string_equal(r.message,
                        "badgr refused client_id 'lti-app' with its client_secret: check both");
    assert_null(strstr(r.message, "s3cret"));
    token_answer(&t, &CLIENT, BADGR_TOKEN_GRANT, 401, JSON_TYPE, "{\"error\":\"invalid_client\"}",
                 4000, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    token_answer(&t, &CLIENT, BADGR_TOKEN_GRANT, 400, "text/html",
                 "{\"error\": \"invalid scope requested\"}", 5000, &r);
    assert_non_null(strstr(r.message, "does not allow scope rw:issuer"));
}

static void test_token_throttled_and_unavailable(void **state)
{
    struct badgr_token t;
    struct backend_result r;
    struct net_http_response h = no_answer("could not connect", false);

    (void)state;
    backend_badgr_token_init(&t);
    token_answer(&t, &PASSWORD, BADGR_TOKEN_GRANT, 429, "text/html; charset=utf-8",
                 "{\"error_description\": \"Too many login attempts. Please wait and try "
                 "again.\", \"error\": \"login attempts throttled\", \"expires\": 4}",
                 1000, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_int_equal(r.retry_after, 4);
    assert_int_equal(backend_badgr_token_step(&t, 1003), BADGR_TOKEN_WAIT);
    assert_int_equal(t.wait_status, BACKEND_RETRY);
    assert_int_equal(backend_badgr_token_step(&t, 1004), BADGR_TOKEN_GRANT);
    token_answer(&t, &PASSWORD, BADGR_TOKEN_GRANT, 502, "text/html", "<h1>Bad gateway</h1>", 2000,
                 &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_int_equal(backend_badgr_token_step(&t, 2000), BADGR_TOKEN_GRANT);
    backend_badgr_token_answer(&t, &PASSWORD, BADGR_TOKEN_GRANT, &h, 2001, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    h.tls_unverified = true;
    backend_badgr_token_answer(&t, &PASSWORD, BADGR_TOKEN_GRANT, &h, 2002, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    net_http_response_release(&h);
}

/* ---- bodies ------------------------------------------------------------------------------- */

static void assert_json(json_t *v, const char *want)
{
    char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static const unsigned char PNG[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2 };

static void test_badge_body(void **state)
{
    struct backend_badge bc = {
        .slug = "unit-1",
        .name = "Unit 1",
        .description = "Finished unit 1",
        .image_type = "image/png",
        .image = PNG,
        .image_len = sizeof(PNG),
        .issuing_component = "ltibadges",
        .tags = "[\"math\",\"ltibadges\"]",
        .alignments = "[{\"targetName\":\"O1\",\"targetUrl\":\"https://ex.edu/o1\","
                      "\"targetCode\":\"c\",\"other\":\"dropped\"}]",
        .expires_days = 30,
        .marker = "ltibadges:0123456789ab:unit-1",
    };
    struct err err = { 0 };
    char *body;
    json_t *o;

    (void)state;
    assert_int_equal(backend_badgr_badge_body(&bc, &body, &err), 0);
    o = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "image")),
                        "data:image/png;base64,iVBORw0KGgoBAg==");
    /* neither criteria URL nor narrative: the description */
    assert_string_equal(json_string_value(json_object_get(o, "criteriaNarrative")),
                        "Finished unit 1");
    assert_null(json_object_get(o, "criteriaUrl"));
    assert_json(json_object_get(o, "tags"),
                "[\"math\",\"ltibadges\",\"ltibadges:0123456789ab:unit-1\"]");
    assert_json(json_object_get(o, "alignments"),
                "[{\"targetName\":\"O1\",\"targetUrl\":\"https://ex.edu/o1\","
                "\"targetCode\":\"c\"}]");
    assert_json(json_object_get(o, "expires"), "{\"amount\":30,\"duration\":\"days\"}");
    json_decref(o);
    free(body);
    bc.expires_days = 0;
    bc.criteria_url = "https://lms.example.edu/criteria";
    assert_int_equal(backend_badgr_badge_body(&bc, &body, &err), 0);
    o = json_loads(body, 0, NULL);
    assert_json(json_object_get(o, "expires"), "{\"amount\":null,\"duration\":null}");
    assert_string_equal(json_string_value(json_object_get(o, "criteriaUrl")),
                        "https://lms.example.edu/criteria");
    assert_null(json_object_get(o, "criteriaNarrative"));
    json_decref(o);
    free(body);
    bc.image_type = "image/jpeg";
    assert_int_equal(backend_badgr_badge_body(&bc, &body, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
}

static void test_assertion_body(void **state)
{
    struct backend_award a = {
        .uid = "u1",
        .recipient_email = "Learner.One@Example.EDU",
        .narrative = "Completed unit 1 of Algebra",
        .evidence_url = "https://lms.example.edu/course/1",
        .issued_at = 1795000000,
        .expires_at = 1826536000,
    };
    struct err err = { 0 };
    char *body;

    (void)state;
    assert_int_equal(backend_badgr_assertion_body(&a, true, false, true, &body, &err), 0);
    assert_string_equal(body,
                        "{\"recipient\":{\"identity\":\"learner.one@example.edu\",\"type\":"
                        "\"email\",\"hashed\":true},\"notify\":false,\"allowDuplicateAwards\":"
                        "false,\"issuedOn\":\"2026-11-18T11:06:40Z\",\"expires\":\"2027-11-18T"
                        "11:06:40Z\",\"evidence\":[{\"narrative\":\"Completed unit 1 of "
                        "Algebra\",\"url\":\"https://lms.example.edu/course/1\"}]}");
    free(body);
    /* sent again without issuedOn (a platform clock behind ours) */
    a.expires_at = 0;
    a.evidence_url = "javascript:alert(1)";
    assert_int_equal(backend_badgr_assertion_body(&a, false, true, false, &body, &err), 0);
    assert_string_equal(body, "{\"recipient\":{\"identity\":\"learner.one@example.edu\",\"type\":"
                              "\"email\",\"hashed\":false},\"notify\":true,"
                              "\"allowDuplicateAwards\":false,\"evidence\":[{\"narrative\":"
                              "\"Completed unit 1 of Algebra\"}]}");
    free(body);
    a.recipient_email = "";
    assert_int_equal(backend_badgr_assertion_body(&a, true, false, true, &body, &err), -1);
}

static void test_find(void **state)
{
    json_t *bcs = json_loads(
        "[{\"entityId\":\"new\",\"createdAt\":\"2026-12-07T10:00:01Z\",\"tags\":[\"ltibadges:a@h\"]},"
        "{\"entityId\":\"other\",\"createdAt\":\"2026-12-07T09:00:00Z\",\"tags\":[\"x\"]},"
        "{\"entityId\":\"old\",\"createdAt\":\"2026-12-07T10:00:00Z\",\"tags\":[\"ltibadges:a@h\"]}]",
        0, NULL);
    json_t *as = json_loads(
        "[{\"entityId\":\"rev\",\"createdAt\":\"2026-01-01T00:00:00Z\",\"revoked\":true,"
        "\"recipient\":{\"plaintextIdentity\":\"l@example.edu\"}},"
        "{\"entityId\":\"b\",\"createdAt\":\"2026-03-01T00:00:00Z\",\"revoked\":false,"
        "\"openBadgeId\":\"https://x/b\",\"recipient\":{\"plaintextIdentity\":\"l@example.edu\"}},"
        "{\"entityId\":\"c\",\"createdAt\":\"2026-02-01T00:00:00Z\",\"revoked\":false,"
        "\"recipient\":{\"plaintextIdentity\":\"m@example.edu\"}}]",
        0, NULL);
    char id[64], url[256];
    bool revoked = true;

    (void)state;
    assert_non_null(bcs);
    assert_non_null(as);
    assert_true(backend_badgr_find_marked(bcs, "ltibadges:a@h", id, sizeof(id)));
    assert_string_equal(id, "old");
    assert_false(backend_badgr_find_marked(bcs, "ltibadges:b@h", id, sizeof(id)));
    /* an unrevoked one before an older revoked one */
    assert_true(backend_badgr_find_recipient(as, "L@Example.edu", id, sizeof(id), url, sizeof(url),
                                             &revoked));
    assert_string_equal(id, "b");
    assert_string_equal(url, "https://x/b");
    assert_false(revoked);
    assert_false(backend_badgr_find_recipient(as, "n@example.edu", id, sizeof(id), url, sizeof(url),
                                              &revoked));
    json_array_remove(as, 1);
    assert_true(backend_badgr_find_recipient(as, "l@example.edu", id, sizeof(id), url, sizeof(url),
                                             &revoked));
    assert_string_equal(id, "rev");
    assert_true(revoked);
    json_decref(bcs);
    json_decref(as);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_ok),
        cmocka_unit_test(test_no_envelope_is_retry),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_no_answer),
        cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_refusals_acted_on),
        cmocka_unit_test(test_token_requests),
        cmocka_unit_test(test_token_life_and_rotation),
        cmocka_unit_test(test_token_401_renews_once),
        cmocka_unit_test(test_token_refused_refresh_then_grant),
        cmocka_unit_test(test_token_refused_grant_waits),
        cmocka_unit_test(test_token_throttled_and_unavailable),
        cmocka_unit_test(test_badge_body),
        cmocka_unit_test(test_assertion_body),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
