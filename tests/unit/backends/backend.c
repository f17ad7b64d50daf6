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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(statuses_and_messages),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
