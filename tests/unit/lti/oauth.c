/*
 * tests/unit/lti/oauth.c - protocol parameter checks, URL normalization,
 * verification and the timestamp window. (Base strings and signatures are
 * checked against oauthlib in oauth_vectors.c.)
 */
#include "base/base.h"
#include "lti/lti.h"

#include <setjmp.h>
#include <cmocka.h>

static const char good[] = "oauth_consumer_key=k&oauth_signature_method=HMAC-SHA1&"
                           "oauth_signature=abc%3D&oauth_timestamp=1700000000&oauth_nonce=n1&"
                           "oauth_version=1.0&user_id=1";

static int params_of(const char *body, const char *query, struct lti_oauth *o, struct err *err)
{
    struct arena a = ARENA_INIT;
    struct form b, q = { NULL, 0 };
    const struct form *lists[2] = { &q, &b };
    int ret;

    assert_int_equal(form_parse(&a, body, strlen(body), 100, &b, err), 0);
    if (query)
        assert_int_equal(form_parse(&a, query, strlen(query), 100, &q, err), 0);
    ret = lti_oauth_params(lists, 2, o, err);
    arena_release(&a);
    return ret;
}

static void accepts_good(void **state)
{
    struct lti_oauth o;
    struct err err = ERR_INIT;

    assert_int_equal(params_of(good, NULL, &o, &err), 0);
    assert_int_equal(o.method, LTI_SIG_HMAC_SHA1);
    assert_true(o.ts == 1700000000);
}

static void missing_each_required(void **state)
{
    static const char *const names[] = { "oauth_consumer_key", "oauth_signature_method",
                                         "oauth_signature", "oauth_timestamp", "oauth_nonce" };

    for (size_t i = 0; i < 5; i++) {
        struct buf b = BUF_INIT(1024);
        struct lti_oauth o;
        struct err err = ERR_INIT;
        char want[128];
        const char *p = good;

        /* copy `good` without the parameter names[i] */
        while (*p) {
            const char *amp = strchr(p, '&');
            size_t n = amp ? (size_t)(amp - p) : strlen(p);

            if (!(strncmp(p, names[i], strlen(names[i])) == 0 && p[strlen(names[i])] == '=')) {
                if (b.len)
                    buf_addch(&b, '&');
                buf_add(&b, p, n);
            }
            p += n + (amp ? 1 : 0);
        }
        assert_int_equal(params_of(b.ptr, NULL, &o, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        snprintf(want, sizeof(want), "missing parameter '%s'", names[i]);
        assert_string_equal(err.msg, want);
        buf_release(&b);
    }
}

static void duplicates(void **state)
{
    struct lti_oauth o;
    struct err err = ERR_INIT;
    char body[512];

    snprintf(body, sizeof(body), "%s&oauth_nonce=n2", good);
    assert_int_equal(params_of(body, NULL, &o, &err), -1);
    assert_string_equal(err.msg, "parameter 'oauth_nonce' appears more than once");
    err_clear(&err);
    /* once in the query, once in the body is twice too */
    assert_int_equal(params_of(good, "oauth_timestamp=1", &o, &err), -1);
    assert_string_equal(err.msg, "parameter 'oauth_timestamp' appears more than once");
}

static void bad_values(void **state)
{
    static const struct {
        const char *from, *to, *msg;
    } cases[] = {
        { "HMAC-SHA1", "PLAINTEXT",
          "unsupported 'oauth_signature_method' (HMAC-SHA1 or HMAC-SHA256 expected)" },
        { "HMAC-SHA1", "RSA-SHA1",
          "unsupported 'oauth_signature_method' (HMAC-SHA1 or HMAC-SHA256 expected)" },
        { "oauth_version=1.0", "oauth_version=2.0", "unsupported 'oauth_version' (1.0 expected)" },
        { "1700000000", "17e8", "malformed 'oauth_timestamp'" },
        { "1700000000", "-5", "malformed 'oauth_timestamp'" },
        { "oauth_nonce=n1", "oauth_nonce=n%0A1", "malformed 'oauth_nonce'" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b = BUF_INIT(1024);
        const char *at = strstr(good, cases[i].from);
        struct lti_oauth o;
        struct err err = ERR_INIT;

        buf_add(&b, good, (size_t)(at - good));
        buf_addstr(&b, cases[i].to);
        buf_addstr(&b, at + strlen(cases[i].from));
        assert_int_equal(params_of(b.ptr, NULL, &o, &err), -1);
        assert_string_equal(err.msg, cases[i].msg);
        buf_release(&b);
    }
}

static void long_nonce(void **state)
{
    struct buf b = BUF_INIT(4096);
    struct lti_oauth o;
    struct err err = ERR_INIT;

    buf_addstr(&b, "oauth_consumer_key=k&oauth_signature_method=HMAC-SHA256&oauth_signature=s&"
                   "oauth_timestamp=1&oauth_nonce=");
    for (int i = 0; i < LIMIT_OAUTH_NONCE_LEN; i++)
        buf_addch(&b, 'n');
    assert_int_equal(params_of(b.ptr, NULL, &o, &err), 0); /* max */
    buf_addch(&b, 'n');
    assert_int_equal(params_of(b.ptr, NULL, &o, &err), -1); /* max + 1 */
    assert_string_equal(err.msg, "malformed 'oauth_nonce'");
    buf_release(&b);
}

static void normalize(void **state)
{
    static const struct {
        const char *in, *out, *query;
    } ok[] = {
        { "HTTP://Example.COM:80/Path", "http://example.com/Path", NULL },
        { "https://example.com:443", "https://example.com/", NULL },
        { "https://example.com:8443/a/b?x=1&y#frag", "https://example.com:8443/a/b", "x=1&y" },
        { "http://[::1]:8080/lti", "http://[::1]:8080/lti", NULL },
        { "http://127.0.0.1:80/?", "http://127.0.0.1/", "" },
    };
    static const char *const bad[] = { "example.com/x",
                                       "ftp://example.com/",
                                       "http://",
                                       "http://user@example.com/",
                                       "http://example.com:0/",
                                       "http://example.com:99999/",
                                       "http://[::1/" };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct buf b = BUF_INIT(256);
        struct err err = ERR_INIT;
        struct str q;

        assert_int_equal(lti_url_normalize(&b, str_from_cstr(ok[i].in), &q, &err), 0);
        assert_string_equal(b.ptr, ok[i].out);
        if (ok[i].query)
            assert_true(str_eq_cstr(q, ok[i].query));
        else
            assert_false(str_present(q));
        buf_release(&b);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf b = BUF_INIT(256);
        struct err err = ERR_INIT;

        assert_int_equal(lti_url_normalize(&b, str_from_cstr(bad[i]), NULL, &err), -1);
        assert_int_equal(err.code, ERR_INVALID);
        buf_release(&b);
    }
}

static void verify_roundtrip(void **state)
{
    struct arena a = ARENA_INIT;
    struct form f;
    const struct form *lists[1] = { &f };
    struct buf base = BUF_INIT(1 << 16), sig = BUF_INIT(128);
    struct lti_oauth o;
    struct err err = ERR_INIT;
    const char *body = "oauth_consumer_key=k&oauth_signature_method=HMAC-SHA256&"
                       "oauth_signature=placeholder&oauth_timestamp=1700000000&oauth_nonce=n&"
                       "user_id=%E6%9D%8E";
    struct str url = STR_LIT("https://tool.example/lti/launch");

    assert_int_equal(form_parse(&a, body, strlen(body), 100, &f, &err), 0);
    assert_int_equal(lti_oauth_params(lists, 1, &o, &err), 0);
    assert_int_equal(lti_oauth_base_string(&base, STR_LIT("post"), url, lists, 1, &err), 0);
    assert_true(strncmp(base.ptr, "POST&https%3A%2F%2Ftool.example%2Flti%2Flaunch&", 47) == 0);
    assert_null(strstr(base.ptr, "placeholder")); /* oauth_signature is left out */
    assert_int_equal(lti_oauth_sign(&sig, LTI_SIG_HMAC_SHA256, buf_view(&base), STR_LIT("sec"),
                                    STR_LIT(""), &err),
                     0);
    assert_int_equal(sig.len, 44);
    o.signature = buf_view(&sig);
    assert_int_equal(lti_oauth_verify(&o, STR_LIT("POST"), url, lists, 1, STR_LIT("sec"), &err), 0);
    assert_int_equal(lti_oauth_verify(&o, STR_LIT("POST"), url, lists, 1, STR_LIT("sed"), &err),
                     -1);
    assert_int_equal(err.code, ERR_UNAUTHORIZED);
    assert_string_equal(err.msg, "signature does not match");
    err_clear(&err);
    assert_int_equal(lti_oauth_verify(&o, STR_LIT("POST"),
                                      STR_LIT("http://tool.example/lti/launch"), lists, 1,
                                      STR_LIT("sec"), &err),
                     -1);
    buf_release(&base);
    buf_release(&sig);
    arena_release(&a);
}

/*
 * Signs `body` (with oauth_signature=placeholder) over `url` as Canvas does
 * with a launch URL's query: over the form alone. Verifies it as posted to
 * `url` + "?" + `query`.
 */
static int canvas_verify(const char *body, const char *query, const char *secret_used,
                         struct err *err)
{
    struct arena a = ARENA_INIT;
    struct form b, q = { NULL, 0 };
    const struct form *signed_lists[1] = { &b };
    struct buf base = BUF_INIT(1 << 16), sig = BUF_INIT(128);
    struct lti_oauth o;
    struct str url = STR_LIT("https://tool.example/lti/launch");
    int ret;

    assert_int_equal(form_parse(&a, body, strlen(body), 100, &b, err), 0);
    assert_int_equal(form_parse(&a, query, strlen(query), 100, &q, err), 0);
    assert_int_equal(lti_oauth_base_string(&base, STR_LIT("POST"), url, signed_lists, 1, err), 0);
    assert_int_equal(lti_oauth_sign(&sig, LTI_SIG_HMAC_SHA1, buf_view(&base),
                                    str_from_cstr(secret_used), STR_LIT(""), err),
                     0);
    {
        const struct form *lists[2] = { &q, &b };

        assert_int_equal(lti_oauth_params(lists, 2, &o, err), 0);
    }
    o.signature = buf_view(&sig);
    ret = lti_oauth_verify_launch(&o, url, &q, &b, STR_LIT("sec"), err);
    buf_release(&base);
    buf_release(&sig);
    arena_release(&a);
    return ret;
}

static void canvas_query_copied_into_body(void **state)
{
    struct err err = ERR_INIT;
    static const char head[] = "oauth_consumer_key=k&oauth_signature_method=HMAC-SHA1&"
                               "oauth_signature=placeholder&oauth_timestamp=1700000000&"
                               "oauth_nonce=n&user_id=7";
    char body[512];

    /* the query's pairs copied once into the body, as Canvas does */
    snprintf(body, sizeof(body), "%s&tenant=3&x=a%%20b", head);
    assert_int_equal(canvas_verify(body, "tenant=3&x=a+b", "sec", &err), 0);
    /* a name the query repeats: each copy stands for one of them */
    snprintf(body, sizeof(body), "%s&t=1&t=2", head);
    assert_int_equal(canvas_verify(body, "t=1&t=2", "sec", &err), 0);
    /* the wrong secret is still refused, with the strict reading's answer */
    snprintf(body, sizeof(body), "%s&tenant=3", head);
    assert_int_equal(canvas_verify(body, "tenant=3", "sed", &err), -1);
    assert_int_equal(err.code, ERR_UNAUTHORIZED);
    assert_string_equal(err.msg, "signature does not match");
    err_clear(&err);
    /* a query pair the body holds with another value counts as it is: refused */
    snprintf(body, sizeof(body), "%s&tenant=4", head);
    assert_int_equal(canvas_verify(body, "tenant=3", "sec", &err), -1);
    assert_int_equal(err.code, ERR_UNAUTHORIZED);
    err_clear(&err);
    /* a query pair the body lacks counts as it is: refused (it was not signed) */
    snprintf(body, sizeof(body), "%s&tenant=3", head);
    assert_int_equal(canvas_verify(body, "tenant=3&role=Instructor", "sec", &err), -1);
    assert_int_equal(err.code, ERR_UNAUTHORIZED);
    err_clear(&err);
    /* a body pair the query lacks is part of what was signed, as always */
    snprintf(body, sizeof(body), "%s&tenant=3&extra=1", head);
    assert_int_equal(canvas_verify(body, "tenant=3", "sec", &err), 0);
}

static void time_window(void **state)
{
    struct lti_oauth o;
    struct err err = ERR_INIT;

    memset(&o, 0, sizeof(o));
    o.ts = 1000;
    assert_int_equal(lti_oauth_check_time(&o, 1300, 300, &err), 0); /* at the edge */
    assert_int_equal(lti_oauth_check_time(&o, 700, 300, &err), 0);
    assert_int_equal(lti_oauth_check_time(&o, 1301, 300, &err), -1);
    assert_int_equal(err.code, ERR_REPLAY);
    err_clear(&err);
    assert_int_equal(lti_oauth_check_time(&o, 699, 300, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_good),
        cmocka_unit_test(missing_each_required),
        cmocka_unit_test(duplicates),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(long_nonce),
        cmocka_unit_test(normalize),
        cmocka_unit_test(verify_roundtrip),
        cmocka_unit_test(time_window),
        cmocka_unit_test(canvas_query_copied_into_body),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
