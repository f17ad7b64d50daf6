/*
 * tests/unit/backends/backend.c - backend_result_http(): a backend reads an
 * HTTP answer as the grade passback does (net_http_classify), with its own
 * words in front.
 */
#include "base/base.h"
#include "backends/backends.h"
#include "net/net.h"

#include <setjmp.h>
#include <cmocka.h>

static void result_of(enum net_http_outcome outcome, long status, bool tls,
                      struct backend_result *r)
{
    struct net_http_response resp;

    memset(&resp, 0, sizeof(resp));
    resp.outcome = outcome;
    resp.status = status;
    resp.tls_unverified = tls;
    resp.retry_after = 9;
    snprintf(resp.error, sizeof(resp.error), "%s",
             tls ? "the server's certificate does not verify" : "no answer in time");
    backend_result_init(r);
    backend_result_http(r, &resp, "issuing the assertion");
}

static void statuses_and_messages(void **state)
{
    struct backend_result r;

    result_of(NET_HTTP_ANSWERED, 201, false, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_string_equal(r.message, "");
    result_of(NET_HTTP_ANSWERED, 503, false, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_int_equal(r.retry_after, 9);
    assert_string_equal(r.message, "issuing the assertion: HTTP 503");
    result_of(NET_HTTP_ANSWERED, 401, false, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    assert_int_equal(r.retry_after, 0);
    result_of(NET_HTTP_ANSWERED, 400, false, &r);
    assert_int_equal(r.status, BACKEND_PERMANENT);
    result_of(NET_HTTP_NETWORK, 0, false, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_string_equal(r.message, "issuing the assertion: no answer in time");
    result_of(NET_HTTP_NETWORK, 0, true, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    assert_string_equal(r.message,
                        "issuing the assertion: the server's certificate does not verify");
    result_of(NET_HTTP_REFUSED, 0, false, &r);
    assert_int_equal(r.status, BACKEND_PERMANENT);
}

static void markers(void **state)
{
    char m[BACKEND_MARKER_LEN + 1], other[BACKEND_MARKER_LEN + 1];
    char slug[LIMIT_SLUG_LEN + 2];

    backend_marker("https://badges.example.edu", "intro-to-c", m);
    /* "ltibadges:" + 12 hex digits of the server's URL hash + ":" + the slug */
    assert_int_equal(strlen(m), 10 + 12 + 1 + strlen("intro-to-c"));
    assert_true(strncmp(m, "ltibadges:", 10) == 0);
    assert_string_equal(m + 22, ":intro-to-c");
    for (int i = 10; i < 22; i++)
        assert_non_null(strchr("0123456789abcdef", m[i]));
    /* the same server and slug: the same marker; another server: another */
    backend_marker("https://badges.example.edu", "intro-to-c", other);
    assert_string_equal(m, other);
    backend_marker("https://badges.example.org", "intro-to-c", other);
    assert_string_not_equal(m, other);
    assert_string_equal(other + 22, ":intro-to-c");
    /* the longest slug fits */
    memset(slug, 'a', LIMIT_SLUG_LEN);
    slug[LIMIT_SLUG_LEN] = '\0';
    backend_marker("https://badges.example.edu", slug, m);
    assert_int_equal(strlen(m), BACKEND_MARKER_LEN);
}

static void hosted_ops(void **state)
{
    static const struct hosted_issuer is = { .public_url = "https://badges.example.edu",
                                             .name = "Example U" };
    struct backend *b = backend_hosted_new(&is);
    struct backend_badge bc = { .slug = "intro" };
    struct backend_result r;

    assert_false(b->ops->remote);
    b->ops->check(b, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_string_equal(r.name, "Example U");
    b->ops->create_badge_class(b, &bc, &r);
    assert_int_equal(r.status, BACKEND_OK);
    assert_string_equal(r.id, "https://badges.example.edu/ob/v2/badges/intro");
    /* what does not apply to the built-in issuer is left out */
    assert_null(b->ops->verify_badge_class);
    assert_null(b->ops->find_badge_class);
    assert_null(b->ops->update_badge_class);
    backend_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(statuses_and_messages),
        cmocka_unit_test(markers),
        cmocka_unit_test(hosted_ops),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
