/*
 * tests/unit/backends/badgekit.c - the BadgeKit backend's parts that do not
 * touch the network: the signed Authorization header (checked against
 * tokens the contract fake's sign_request() makes, and taken apart), what
 * each answer comes to (BadgeKit's refusals as tests/integration/
 * badgekitfake.py gives them, citing its code), the slugs and the bodies.
 */
#include "base/base.h"
#include "backends/badgekit.h"

#include <openssl/evp.h>

#include <setjmp.h>
#include <cmocka.h>

#define JSON_TYPE "application/json"
#define SCOPE     "/systems/badgekit/issuers/uni"

static struct net_http_response answer(long status, const char *ctype, const char *body)
{
    struct net_http_response h;

    memset(&h, 0, sizeof(h));
    h.outcome = NET_HTTP_ANSWERED;
    h.status = status;
    snprintf(h.content_type, sizeof(h.content_type), "%s", ctype ? ctype : "");
    buf_init(&h.body, LIMIT_BADGEKIT_ANSWER);
    if (body)
        buf_addstr(&h.body, body);
    return h;
}

static enum badgekit_kind kind_of(long status, const char *ctype, const char *body, char *msg,
                                  size_t msglen)
{
    struct net_http_response h = answer(status, ctype, body);
    struct badgekit_reply r;
    enum badgekit_kind k;

    backend_badgekit_reply(&h, SCOPE, &r);
    k = r.kind;
    if (msg)
        snprintf(msg, msglen, "%s", r.message);
    backend_badgekit_reply_release(&r);
    net_http_response_release(&h);
    return k;
}

/*
 * The tokens of tests/integration/badgekitfake.py's sign_request() for the
 * same request at now = 1700000000: the claims in the same order, the same
 * base64url, the same HMAC.
 */
static void authorization_as_the_fake_signs(void **state)
{
    static const char body[] = "{\"email\":\"a@b.example\"}";
    struct buf out = BUF_INIT(8192);
    struct err err = ERR_INIT;

    (void)state;
    assert_int_equal(backend_badgekit_authorization(
                         "master", "master-secret", "POST",
                         "/systems/badgekit/badges/ltibadges-0123456789ab-intro/instances?x=%41",
                         body, strlen(body), 1700000000, &out, &err),
                     0);
    assert_string_equal(
        out.ptr,
        "JWT "
        "token=\"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
        "eyJrZXkiOiJtYXN0ZXIiLCJleHAiOjE3MDAwMDAwNjAsIm1ldGhvZCI6IlBPU1QiLCJwYXRoIjoiL3N5c3RlbXMvYm"
        "FkZ2VraXQvYmFkZ2VzL2x0aWJhZGdlcy0wMTIzNDU2Nzg5YWItaW50cm8vaW5zdGFuY2VzP3g9JTQxIiwiYm9keSI6"
        "eyJhbGciOiJzaGEyNTYiLCJoYXNoIjoiODFkMzI3M2U4MzY5YzliMTlkYjkxNjAyYTcxNTdhMTBkNTI1YzExYzRmOG"
        "FlZWZhNzg5ZjQ4ZjUzNWExZjA1ZCJ9fQ.Gt2qpBP93KgLoYIjd25bRY0Pn2EMc3NgixHQKPUQcyg\"");
    buf_reset(&out);
    /* a GET has no body claim */
    assert_int_equal(backend_badgekit_authorization("ltibadges", "s3cret", "GET",
                                                    "/systems/badgekit", NULL, 0, 1700000000, &out,
                                                    &err),
                     0);
    assert_string_equal(
        out.ptr, "JWT "
                 "token=\"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
                 "eyJrZXkiOiJsdGliYWRnZXMiLCJleHAiOjE3MDAwMDAwNjAsIm1ldGhvZCI6IkdFVCIsInBhdG"
                 "giOiIvc3lzdGVtcy9iYWRnZWtpdCJ9.3RutjLru_O-TiALTASYWqQ7mT5oF2g8zno_rTHYQDeA\"");
    /* an empty body is still hashed (a PUT without content) */
    buf_reset(&out);
    assert_int_equal(backend_badgekit_authorization("master", "x", "PUT", "/systems/s/badges/b", "",
                                                    0, 1700000000, &out, &err),
                     0);
    {
        /* the payload is the second part: decode and read its claims */
        const char *p = strchr(out.ptr, '.') + 1, *end = strchr(p, '.');
        struct buf b64 = BUF_INIT(4096);
        unsigned char raw[2048];
        int n;
        json_t *claims;

        buf_add(&b64, p, (size_t)(end - p));
        for (size_t i = 0; i < b64.len; i++)
            b64.ptr[i] = b64.ptr[i] == '-' ? '+' : b64.ptr[i] == '_' ? '/' : b64.ptr[i];
        while (b64.len % 4)
            buf_addch(&b64, '=');
        n = EVP_DecodeBlock(raw, (const unsigned char *)b64.ptr, (int)b64.len);
        assert_true(n > 0);
        claims = json_loadb(
            (const char *)raw,
            strlen((const char *)raw) < (size_t)n ? strlen((const char *)raw) : (size_t)n, 0, NULL);
        assert_non_null(claims);
        assert_string_equal(json_string_value(json_object_get(claims, "method")), "PUT");
        assert_int_equal(json_integer_value(json_object_get(claims, "exp")),
                         1700000000 + BADGEKIT_TOKEN_LIFE);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(claims, "body"), "hash")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        json_decref(claims);
        buf_release(&b64);
    }
    buf_release(&out);
}

/* What each answer comes to, with BadgeKit's words where it gives some. */
static void answers(void **state)
{
    char msg[LIMIT_AWARD_ERROR_LEN + 1];
    struct net_http_response h;
    struct badgekit_reply r;

    (void)state;
    assert_int_equal(kind_of(201, JSON_TYPE, "{\"status\":\"created\"}", msg, sizeof(msg)),
                     BADGEKIT_OK);
    assert_int_equal(kind_of(200, "text/html", "<html>", msg, sizeof(msg)), BADGEKIT_RETRY);
    assert_string_equal(msg, "BadgeKit answered HTTP 200 without JSON");
    assert_int_equal(
        kind_of(500, JSON_TYPE,
                "{\"code\":\"InternalError\",\"message\":\"An internal error occured\"}", msg,
                sizeof(msg)),
        BADGEKIT_RETRY);
    assert_string_equal(msg, "BadgeKit answered HTTP 500: An internal error occured");
    assert_int_equal(kind_of(429, NULL, NULL, msg, sizeof(msg)), BADGEKIT_RETRY);
    assert_non_null(strstr(msg, "too many requests"));
    /* [mw] verifyRequest's refusals */
    assert_int_equal(kind_of(403, JSON_TYPE,
                             "{\"code\":\"NotAuthorized\",\"message\":\"Invalid token signature\"}",
                             msg, sizeof(msg)),
                     BADGEKIT_AUTH);
    assert_string_equal(msg, "BadgeKit refused the signed request: Invalid token signature");
    assert_int_equal(kind_of(403, JSON_TYPE,
                             "{\"code\":\"NotAuthorized\",\"message\":\"Token is expired (token "
                             "expiry: 1700000060, server time: 1700000100\"}",
                             msg, sizeof(msg)),
                     BADGEKIT_AUTH);
    assert_string_equal(msg, "BadgeKit refused the signed request: Token is expired (token "
                             "expiry: 1700000060, server time: 1700000100): check the clocks "
                             "of this server and of BadgeKit's");
    /* [mw] createFinder's 404s: the scope is the configuration's, a badge is not found */
    assert_int_equal(kind_of(404, JSON_TYPE,
                             "{\"code\":\"ResourceNotFound\",\"message\":\"Could not find system "
                             "field: `slug`, value: `badgekit`\"}",
                             msg, sizeof(msg)),
                     BADGEKIT_AUTH);
    assert_string_equal(msg, "BadgeKit has no system 'badgekit': check system, issuer and program "
                             "(scope " SCOPE ")");
    assert_int_equal(kind_of(404, JSON_TYPE,
                             "{\"code\":\"ResourceNotFound\",\"message\":\"Could not find badge "
                             "field: `slug`, value: `ltibadges-x`\"}",
                             msg, sizeof(msg)),
                     BADGEKIT_NOT_FOUND);
    assert_string_equal(msg, "no badge ltibadges-x in " SCOPE);
    assert_int_equal(kind_of(404, JSON_TYPE,
                             "{\"code\":\"ResourceNotFound\",\"message\":\"Could not find "
                             "badgeInstance field: `email`, value: `a@b.example`\"}",
                             msg, sizeof(msg)),
                     BADGEKIT_NOT_FOUND);
    assert_int_equal(kind_of(404, "text/html", "Not Found", msg, sizeof(msg)), BADGEKIT_AUTH);
    assert_non_null(strstr(msg, "is base_url the BadgeKit API?"));
    assert_int_equal(kind_of(404, JSON_TYPE,
                             "{\"code\":\"ResourceNotFound\",\"message\":\"/x does not exist\"}",
                             msg, sizeof(msg)),
                     BADGEKIT_AUTH);
    /* [err] ResourceConflict and ValidationError */
    assert_int_equal(kind_of(409, JSON_TYPE,
                             "{\"code\":\"ResourceConflict\",\"message\":\"User a@b.example has "
                             "already been awarded badge b\",\"details\":{\"assertionUrl\":\"x\"}}",
                             msg, sizeof(msg)),
                     BADGEKIT_CONFLICT);
    assert_int_equal(
        kind_of(400, JSON_TYPE,
                "{\"code\":\"ValidationError\",\"message\":\"Could not validate required "
                "fields\",\"details\":[{\"field\":\"email\",\"message\":\"Invalid email\"},"
                "{\"field\":\"criteriaUrl\",\"message\":\"Invalid\\nURL\"}]}",
                msg, sizeof(msg)),
        BADGEKIT_PERMANENT);
    assert_string_equal(msg, "email: Invalid email; criteriaUrl: Invalid URL");
    assert_int_equal(kind_of(415, JSON_TYPE,
                             "{\"code\":\"UnsupportedMediaType\",\"message\":\"text/plain\"}", msg,
                             sizeof(msg)),
                     BADGEKIT_PERMANENT);
    assert_string_equal(msg, "BadgeKit refused the request (HTTP 415, UnsupportedMediaType: "
                             "text/plain)");
    assert_int_equal(kind_of(405, JSON_TYPE, "{\"code\":\"MethodNotAllowed\"}", msg, sizeof(msg)),
                     BADGEKIT_PERMANENT);
    /* no answer at all: retry, looked up first */
    h = answer(0, NULL, NULL);
    h.outcome = NET_HTTP_NETWORK;
    h.timed_out = true;
    snprintf(h.error, sizeof(h.error), "timed out");
    backend_badgekit_reply(&h, SCOPE, &r);
    assert_int_equal(r.kind, BADGEKIT_RETRY);
    assert_non_null(strstr(r.message, "badgekit: "));
    backend_badgekit_reply_release(&r);
    net_http_response_release(&h);
}

static void slugs(void **state)
{
    char out[BACKEND_MARKER_LEN + 1], marker[BACKEND_MARKER_LEN + 1], slug[LIMIT_SLUG_LEN + 1];
    char s[LIMIT_BADGEKIT_SLUG_LEN + 2];

    (void)state;
    backend_marker("https://badges.example.edu", "intro-course", marker);
    backend_badgekit_badge_slug(marker, out);
    assert_int_equal(strncmp(out, "ltibadges-", 10), 0);
    assert_null(strchr(out, ':'));
    assert_string_equal(out + 23, "intro-course");
    assert_true(backend_badgekit_slug_valid(out));
    /* another server, another slug: unique across the whole BadgeKit */
    backend_marker("https://other.example.edu", "intro-course", marker);
    {
        char other[BACKEND_MARKER_LEN + 1];

        backend_badgekit_badge_slug(marker, other);
        assert_string_not_equal(other, out);
    }
    /* our longest slug fits BadgeKit's 255 */
    memset(slug, 'a', LIMIT_SLUG_LEN);
    slug[LIMIT_SLUG_LEN] = '\0';
    backend_marker("https://badges.example.edu", slug, marker);
    backend_badgekit_badge_slug(marker, out);
    assert_int_equal(strlen(out), BACKEND_MARKER_LEN);
    assert_true(backend_badgekit_slug_valid(out));
    memset(s, 'x', LIMIT_BADGEKIT_SLUG_LEN);
    s[LIMIT_BADGEKIT_SLUG_LEN] = '\0';
    assert_true(backend_badgekit_slug_valid(s));
    s[LIMIT_BADGEKIT_SLUG_LEN] = 'x';
    s[LIMIT_BADGEKIT_SLUG_LEN + 1] = '\0';
    assert_false(backend_badgekit_slug_valid(s));
    assert_false(backend_badgekit_slug_valid(""));
    assert_false(backend_badgekit_slug_valid(".."));
    assert_false(backend_badgekit_slug_valid("a/b"));
    assert_false(backend_badgekit_slug_valid("a%2Fb"));
    assert_false(backend_badgekit_slug_valid(NULL));
}

static void bodies(void **state)
{
    struct backend_badge bc = {
        .slug = "intro",
        .name = "Intro",
        .description = "Finished the intro",
        .criteria_narrative = "Pass every quiz",
        .issuing_component = "quiz",
        .tags = "[\"cs\",\"\",7]",
        .public_url = "https://lti.example.edu",
    };
    struct backend_award a = {
        .uid = "0123456789abcdef0123456789abcdef",
        .recipient_email = "Ada@Example.EDU",
        .issued_at = 1700000000,
    };
    struct err err = ERR_INIT;
    char *body = NULL;

    (void)state;
    assert_int_equal(
        backend_badgekit_badge_body(&bc, "ltibadges-0123456789ab-intro", "Course", &body, &err), 0);
    assert_string_equal(
        body, "{\"slug\":\"ltibadges-0123456789ab-intro\",\"name\":\"Intro\",\"earnerDescription\":"
              "\"Finished the intro\",\"consumerDescription\":\"Finished the intro\","
              "\"criteriaUrl\":\"https://lti.example.edu/badges/criteria/intro\",\"imageUrl\":"
              "\"https://lti.example.edu/ob/v2/badges/intro/image\",\"unique\":true,\"type\":"
              "\"Course\",\"criteria\":[{\"description\":\"Pass every quiz\",\"required\":true,"
              "\"note\":\"\"}],\"tags\":[\"cs\",\"quiz\"]}");
    free(body);
    /* an update: no slug; the BadgeClass's own criteria URL; the description as criterion */
    bc.criteria_url = "https://example.edu/criteria";
    bc.criteria_narrative = NULL;
    bc.description = "";
    assert_int_equal(backend_badgekit_badge_body(&bc, NULL, "Skill", &body, &err), 0);
    assert_null(strstr(body, "\"slug\""));
    assert_non_null(strstr(body, "\"criteriaUrl\":\"https://example.edu/criteria\""));
    assert_non_null(strstr(body, "\"earnerDescription\":\"Intro\""));
    assert_non_null(strstr(body, "\"criteria\":[{\"description\":\"Intro\""));
    free(body);
    bc.public_url = NULL;
    assert_int_equal(backend_badgekit_badge_body(&bc, NULL, "Skill", &body, &err), -1);
    assert_non_null(strstr(err.msg, "public_url"));
    err_clear(&err);

    assert_int_equal(backend_badgekit_instance_body(&a, &body, &err), 0);
    assert_string_equal(body, "{\"email\":\"ada@example.edu\",\"slug\":"
                              "\"0123456789abcdef0123456789abcdef\",\"issuedOn\":"
                              "\"2023-11-14T22:13:20.000Z\"}");
    free(body);
    a.expires_at = 1700086400;
    assert_int_equal(backend_badgekit_instance_body(&a, &body, &err), 0);
    assert_non_null(strstr(body, ",\"expires\":1700086400}"));
    free(body);
    a.recipient_email = NULL;
    assert_int_equal(backend_badgekit_instance_body(&a, &body, &err), -1);
    assert_non_null(strstr(err.msg, "no e-mail address"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(authorization_as_the_fake_signs),
        cmocka_unit_test(answers),
        cmocka_unit_test(slugs),
        cmocka_unit_test(bodies),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
