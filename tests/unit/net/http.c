/*
 * tests/unit/net/http.c - the address and host policy of the one HTTP
 * client: what the tool refuses to call, checked on the address being
 * connected (no request leaves this machine: every address here is refused
 * or a closed local port).
 */
#include "base/base.h"
#include "net/net.h"

#include <setjmp.h>
#include <cmocka.h>

static struct net_http_response post(const struct net_http_policy *p, const char *url)
{
    struct net_http *h = net_http_new();
    struct net_http_request req = {
        .url = url,
        .content_type = "application/xml",
        .body = "<x/>",
        .body_len = 4,
        .max_response = 1024,
    };
    struct net_http_response resp;

    assert_non_null(h);
    net_http_post(h, p, &req, &resp);
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
    struct net_http_policy p = { NULL, false, 1000, 2000, NULL };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct net_http_response r = post(&p, cases[i].url);

        if (r.outcome != NET_HTTP_REFUSED || !strstr(r.error, cases[i].why))
            fail_msg("%s: outcome %d, '%s'", cases[i].url, (int)r.outcome, r.error);
    }
}

static void loopback_when_allowed(void **state)
{
    struct net_http_policy p = { NULL, true, 1000, 2000, NULL };
    /* port 1 is closed: the connection is tried, and fails as a network error */
    struct net_http_response r = post(&p, "http://127.0.0.1:1/outcomes");

    assert_int_equal(r.outcome, NET_HTTP_NETWORK);
    /* still never link-local */
    r = post(&p, "http://169.254.169.254/");
    assert_int_equal(r.outcome, NET_HTTP_REFUSED);
}

static void schemes_and_hosts(void **state)
{
    struct net_http_policy p = { "lms.example.edu, .example.org", true, 1000, 2000, NULL };
    char why[256];

    assert_true(net_http_url_allowed(&p, "https://lms.example.edu/x", why, sizeof(why)));
    assert_true(net_http_url_allowed(&p, "https://LMS.Example.EDU:8443/x", why, sizeof(why)));
    assert_true(net_http_url_allowed(&p, "https://example.org/x", why, sizeof(why)));
    assert_true(net_http_url_allowed(&p, "http://a.b.example.org/x", why, sizeof(why)));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_addresses),
        cmocka_unit_test(loopback_when_allowed),
        cmocka_unit_test(schemes_and_hosts),
    };

    net_http_global_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
