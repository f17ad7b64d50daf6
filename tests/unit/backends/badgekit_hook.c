/*
 * tests/unit/backends/badgekit_hook.c - the check of a BadgeKit webhook's
 * signature (backend_badgekit_hook_verify) and the reading of its body
 * (backend_badgekit_hook_parse).
 *
 * The tokens are not made by our code: they were computed once by the
 * contract fake (tests/integration/badgekitfake.py, BadgeKitFake.
 * hook_authorization and sign_jwt, over Python's hmac and hashlib) for BODY
 * below with the secret "hook-secret", as BadgeKit's app/models/webhook.js
 * makes them; LOWER is the header BadgeKit really writes ({typ: JWT, alg:
 * hs256}). Each forgery is refused with its own reason, and nothing but
 * HS256 passes, whatever the header names.
 */
#include "base/base.h"
#include "backends/backends.h"

#include <setjmp.h>
#include <cmocka.h>

#define SECRET "hook-secret"
#define BODY                                                                                       \
 "{\"action\":\"award\",\"uid\":\"3f2a\",\"badge\":{\"slug\":\"ltibadges-abc-b1\"},"               \
 "\"email\":\"ann@example.edu\",\"assertionUrl\":\"http://127.0.0.1:9/public/assertions/"          \
 "3f2a\",\"issuedOn\":1700000000,\"comment\":null}"
/* the header and payload every HS256 token below shares */
#define HEAD_HS256 "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9"
#define CLAIMS                                                                                     \
 "eyJib2R5Ijp7ImFsZyI6InNoYTI1NiIsImhhc2giOiJjMzlkZWMyMDA4ZDY2ODViM2E4OWQ1ZWU2NjFkZWNjZjY4NTgz"    \
 "NTI1MjNmNGVmYTNkMDEwNGQ0N2U0ZTI1NDI0In19"
#define VALID "JWT token=\"" HEAD_HS256 "." CLAIMS ".FBBkXGljg2TE9VLgBeh3YaX9Nt_9SA_HI2AJKBUjFFc\""
#define LOWER                                                                                      \
 "JWT token=\"eyJ0eXAiOiJKV1QiLCJhbGciOiJoczI1NiJ9." CLAIMS                                        \
 ".o8tAuiMklREZgx4RyrGr3QReyYNdAY6w-TjI_msaukE\""
#define WRONG_SECRET                                                                               \
 "JWT token=\"" HEAD_HS256 "." CLAIMS ".b1yV61Pu9ExqS-r42hYPMo7v89NjF1U3O7aZTXBRfyc\""
#define ALG_NONE "JWT token=\"eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0." CLAIMS ".\""
#define HS512                                                                                      \
 "JWT token=\"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9." CLAIMS                                        \
 ".0QNTnOMhmu9aQeCi09CUcN8_5FUstbGK7YQ2-U2A8eW0zKI0pRauzgeaqCbaJRhaVdJ0SqUda401eZ1Ekr5uOg\""
/* signed with the right secret, but its hash is of BODY + "x" */
#define MISMATCH                                                                                   \
 "JWT token=\"" HEAD_HS256                                                                         \
 ".eyJib2R5Ijp7ImFsZyI6InNoYTI1NiIsImhhc2giOiJjNWNmMTYxMmE0YjgyNDBmYzI5MzFhMmM1NDJlNWVlMDlh"       \
 "OWZjZjJmZmNmMjVkODkzZDgyMDc3ZGQ4ZDcxNDlhIn19.Hu6EpdYXvdNk_de9C4zXPJjc2boK-C9F7a7XlPGLkpA\""

static int verify(const char *secret, const char *auth, const char *body, struct err *err)
{
    err_clear(err);
    return backend_badgekit_hook_verify(secret, auth, body, body ? strlen(body) : 0, err);
}

static void refused(const char *secret, const char *auth, const char *body, enum err_code code,
                    const char *msg)
{
    struct err err = ERR_INIT;

    assert_int_equal(verify(secret, auth, body, &err), -1);
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, msg))
        fail_msg("'%s' does not say '%s'", err.msg, msg);
    /* the message never holds the secret */
    assert_null(strstr(err.msg, SECRET));
}

static void signed_as_badgekit(void **state)
{
    struct err err = ERR_INIT;

    (void)state;
    assert_int_equal(verify(SECRET, VALID, BODY, &err), 0);
    assert_int_equal(err.code, ERR_NONE);
    /* BadgeKit's own header names the algorithm in lower case */
    assert_int_equal(verify(SECRET, LOWER, BODY, &err), 0);
}

static void forgeries(void **state)
{
    (void)state;
    refused(SECRET, WRONG_SECRET, BODY, ERR_UNAUTHORIZED, "signature does not match");
    refused(SECRET, VALID, "{\"action\":\"revoke\"}", ERR_UNAUTHORIZED, "body is not the one");
    /* one byte more, as a proxy that added a newline would */
    refused(SECRET, VALID, BODY " ", ERR_UNAUTHORIZED, "body is not the one");
    refused(SECRET, ALG_NONE, BODY, ERR_UNAUTHORIZED, "signed with 'none', not HS256");
    refused(SECRET, HS512, BODY, ERR_UNAUTHORIZED, "signed with 'HS512', not HS256");
    refused(SECRET, MISMATCH, BODY, ERR_UNAUTHORIZED, "body is not the one");
    refused(SECRET, NULL, BODY, ERR_UNAUTHORIZED, "no Authorization header");
    /* the right token under another scheme, or not between quotes */
    refused(SECRET, "Bearer " HEAD_HS256 "." CLAIMS ".FBBkXGljg2TE9VLgBeh3YaX9Nt_9SA_HI2AJKBUjFFc",
            BODY, ERR_UNAUTHORIZED, "not of the form");
    refused(SECRET, "JWT token=" HEAD_HS256 "." CLAIMS ".x", BODY, ERR_UNAUTHORIZED,
            "not of the form");
    refused(SECRET, "JWT token=\"\"", BODY, ERR_UNAUTHORIZED, "not of the form");
    refused(SECRET, "JWT token=\"a.b\"", BODY, ERR_UNAUTHORIZED, "three parts");
    refused(SECRET, "JWT token=\"a.b.c.d\"", BODY, ERR_UNAUTHORIZED, "three parts");
    refused(SECRET, "JWT token=\"!!.b.c\"", BODY, ERR_UNAUTHORIZED, "header is not base64url");
    /* an HS256 header over a signature of another length or alphabet */
    refused(SECRET, "JWT token=\"" HEAD_HS256 "." CLAIMS ".AAAA\"", BODY, ERR_UNAUTHORIZED,
            "signature does not match");
    refused(SECRET, "JWT token=\"" HEAD_HS256 "." CLAIMS ".+/+/\"", BODY, ERR_UNAUTHORIZED,
            "signature does not match");
    /* no secret: every hook is refused, a good one too */
    refused("", VALID, BODY, ERR_FORBIDDEN, "webhook_secret is empty");
    refused(NULL, VALID, BODY, ERR_FORBIDDEN, "webhook_secret is empty");
}

static void parse_award_and_revoke(void **state)
{
    struct backend_badgekit_hook h;
    struct err err = ERR_INIT;
    static const char revoke[] =
        "{\"action\":\"revoke\",\"uid\":\"u9\",\"badge\":{\"slug\":\"b\"},\"email\":\"a@b.c\"}";

    (void)state;
    assert_int_equal(backend_badgekit_hook_parse(BODY, strlen(BODY), &h, &err), 0);
    assert_int_equal(h.action, BADGEKIT_HOOK_AWARD);
    assert_string_equal(h.uid, "3f2a");
    assert_string_equal(h.badge, "ltibadges-abc-b1");
    assert_string_equal(h.email, "ann@example.edu");
    assert_string_equal(h.assertion_url, "http://127.0.0.1:9/public/assertions/3f2a");
    assert_int_equal(backend_badgekit_hook_parse(revoke, strlen(revoke), &h, &err), 0);
    assert_int_equal(h.action, BADGEKIT_HOOK_REVOKE);
    assert_string_equal(h.uid, "u9");
    assert_string_equal(h.assertion_url, "");
}

static void parse_others_and_refusals(void **state)
{
    struct backend_badgekit_hook h;
    struct err err;
    static const struct {
        const char *body, *msg;
    } bad[] = {
        { "", "not a JSON object" },
        { "[1]", "not a JSON object" },
        { "{\"action\":\"award\"", "not a JSON object" },
        { "{\"action\":\"award\",\"action\":\"revoke\",\"uid\":\"u\"}", "not a JSON object" },
        { "{\"uid\":\"u\"}", "names no action" },
        { "{\"action\":7}", "names no action" },
        { "{\"action\":\"revoke\"}", "has no instance uid" },
        { "{\"action\":\"award\",\"uid\":\"\"}", "has no instance uid" },
        /* jansson refuses a NUL inside a string (no JSON_ALLOW_NUL) */
        { "{\"action\":\"award\",\"uid\":\"a\\u0000b\",\"assertionUrl\":\"http://x/\"}",
          "not a JSON object" },
        { "{\"action\":\"award\",\"uid\":\"u\"}", "no http(s) assertionUrl" },
        { "{\"action\":\"award\",\"uid\":\"u\",\"assertionUrl\":\"javascript:alert(1)\"}",
          "no http(s) assertionUrl" },
    };

    (void)state;
    assert_int_equal(backend_badgekit_hook_parse("{\"action\":\"review\"}", 19, &h, &err), 0);
    assert_int_equal(h.action, BADGEKIT_HOOK_REVIEW);
    assert_int_equal(backend_badgekit_hook_parse("{\"action\":\"claim\"}", 18, &h, &err), 0);
    assert_int_equal(h.action, BADGEKIT_HOOK_OTHER);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&err);
        assert_int_equal(backend_badgekit_hook_parse(bad[i].body, strlen(bad[i].body), &h, &err),
                         -1);
        assert_int_equal(err.code, ERR_INVALID);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("%s: '%s' does not say '%s'", bad[i].body, err.msg, bad[i].msg);
    }
    /* a uid at BadgeKit's 255 is read; 256 is not one of BadgeKit's */
    {
        char body[600], uid[LIMIT_BADGEKIT_SLUG_LEN + 2];

        memset(uid, 'u', sizeof(uid) - 1);
        uid[LIMIT_BADGEKIT_SLUG_LEN] = '\0';
        snprintf(body, sizeof(body), "{\"action\":\"revoke\",\"uid\":\"%s\"}", uid);
        assert_int_equal(backend_badgekit_hook_parse(body, strlen(body), &h, &err), 0);
        assert_int_equal(strlen(h.uid), LIMIT_BADGEKIT_SLUG_LEN);
        uid[LIMIT_BADGEKIT_SLUG_LEN] = 'u';
        uid[LIMIT_BADGEKIT_SLUG_LEN + 1] = '\0';
        snprintf(body, sizeof(body), "{\"action\":\"revoke\",\"uid\":\"%s\"}", uid);
        assert_int_equal(backend_badgekit_hook_parse(body, strlen(body), &h, &err), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signed_as_badgekit),
        cmocka_unit_test(forgeries),
        cmocka_unit_test(parse_award_and_revoke),
        cmocka_unit_test(parse_others_and_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
