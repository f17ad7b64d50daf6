/*
 * tests/unit/web/proxy.c - address ranges (web_cidrs_parse, web_cidrs_match:
 * [server] trusted_proxies and metrics_allow) at their prefix boundaries,
 * and the client address read from X-Forwarded-For only behind a trusted
 * proxy, from the right (web_client_address).
 */
#include "base/base.h"
#include "web/web.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <cmocka.h>

/* A socket address of the numeric text `a`. */
static struct sockaddr_storage sa(const char *a)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, a, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        fail_msg("not an address: %s", a);
    return ss;
}

static bool in(const char *list, const char *addr)
{
    struct web_cidr c[16];
    size_t n = 0;
    struct err err = ERR_INIT;
    struct sockaddr_storage ss = sa(addr);

    if (web_cidrs_parse(list, c, 16, &n, &err) < 0)
        fail_msg("'%s' refused: %s", list, err.msg);
    return web_cidrs_match(c, n, &ss);
}

static void ranges_match_at_their_boundaries(void **state)
{
    (void)state;
    assert_true(in("10.0.0.0/8", "10.0.0.0"));
    assert_true(in("10.0.0.0/8", "10.255.255.255"));
    assert_false(in("10.0.0.0/8", "11.0.0.0"));
    assert_false(in("10.0.0.0/8", "9.255.255.255"));
    assert_true(in("192.168.1.0/25", "192.168.1.127"));
    assert_false(in("192.168.1.0/25", "192.168.1.128"));
    assert_true(in("127.0.0.1", "127.0.0.1"));
    assert_false(in("127.0.0.1", "127.0.0.2"));
    assert_true(in("0.0.0.0/0", "203.0.113.9"));
    assert_false(in("0.0.0.0/0", "2001:db8::1"));
    assert_true(in("2001:db8::/32", "2001:db8:ffff:ffff::1"));
    assert_false(in("2001:db8::/32", "2001:db9::"));
    assert_true(in("fd00::/7", "fdff::1"));
    assert_false(in("fd00::/7", "fe00::1"));
    /* an IPv4 peer on an IPv6 socket is matched as IPv4 */
    assert_true(in("127.0.0.1, 10.0.0.0/8", "::ffff:10.1.2.3"));
    assert_false(in("::/0", "::ffff:10.1.2.3"));
    /* several, commas or blanks between */
    assert_true(in("127.0.0.1,  ::1\t10.0.0.0/8", "::1"));
    assert_true(in("", "127.0.0.1") == false);
}

static void bad_ranges_refused(void **state)
{
    static const char *const bad[] = {
        "10.0.0.0/33",       "::1/129", "10.0.0.0/",  "10.0.0.0/-1",  "10.0.0.0/8x",
        "proxy.example.edu", "1.2.3",   "10.0.0.256", "127.0.0.1:80", "[::1]",
        "10.0.0.0/8, nope",
    };
    struct web_cidr c[4];
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct err err = ERR_INIT;

        if (web_cidrs_parse(bad[i], c, 4, &n, &err) == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(err.code, ERR_INVALID);
    }
    {
        struct err err = ERR_INIT;

        /* at the cap, and one past it */
        assert_int_equal(web_cidrs_parse("1.0.0.0/8 2.0.0.0/8 3.0.0.0/8 4.0.0.0/8", c, 4, &n, &err),
                         0);
        assert_int_equal(n, 4);
        assert_int_equal(
            web_cidrs_parse("1.0.0.0/8 2.0.0.0/8 3.0.0.0/8 4.0.0.0/8 5.0.0.0/8", c, 4, &n, &err),
            -1);
    }
}

/* The client address of a request from `peer` with X-Forwarded-For `xff`, 127.0.0.1 and 10/8
 * trusted. */
static const char *client(const char *peer, const char *xff)
{
    static char out[64];
    struct web_cidr c[4];
    size_t n;
    struct err err = ERR_INIT;
    struct sockaddr_storage ss = sa(peer);

    assert_int_equal(web_cidrs_parse("127.0.0.1, 10.0.0.0/8, fd00::/8", c, 4, &n, &err), 0);
    web_client_address(c, n, &ss, xff, out, sizeof(out));
    return out;
}

static void forwarded_for_only_from_trusted_peers(void **state)
{
    (void)state;
    /* no header, or a peer that is no proxy of ours: the peer */
    assert_string_equal(client("127.0.0.1", NULL), "127.0.0.1");
    assert_string_equal(client("127.0.0.1", ""), "127.0.0.1");
    assert_string_equal(client("203.0.113.5", "198.51.100.1"), "203.0.113.5");
    assert_string_equal(client("2001:db8::5", "198.51.100.1"), "2001:db8::5");
    /* one proxy */
    assert_string_equal(client("127.0.0.1", "198.51.100.1"), "198.51.100.1");
    assert_string_equal(client("::ffff:127.0.0.1", "198.51.100.1"), "198.51.100.1");
    /* the client wrote a hop of its own first: the rightmost untrusted hop is the client */
    assert_string_equal(client("127.0.0.1", "6.6.6.6, 198.51.100.1"), "198.51.100.1");
    assert_string_equal(client("127.0.0.1", "127.0.0.1, 198.51.100.1"), "198.51.100.1");
    /* a chain of trusted proxies (a load balancer in 10/8 before nginx) */
    assert_string_equal(client("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.1.2.3"), "198.51.100.1");
    /* every hop trusted: the leftmost */
    assert_string_equal(client("127.0.0.1", "10.0.0.5, 10.0.0.6"), "10.0.0.5");
    /* ports and brackets, blanks; IPv6 */
    assert_string_equal(client("127.0.0.1", " 198.51.100.1:4711 "), "198.51.100.1");
    assert_string_equal(client("127.0.0.1", "[2001:db8::7]:443"), "2001:db8::7");
    assert_string_equal(client("127.0.0.1", "2001:db8::7"), "2001:db8::7");
    assert_string_equal(client("fd00::1", "2001:DB8::7"), "2001:db8::7");
    /* two headers joined: the second's hop is the nearest */
    assert_string_equal(client("127.0.0.1", "198.51.100.1,203.0.113.9"), "203.0.113.9");
    /* what is not an address ends the walk at the last trusted hop */
    assert_string_equal(client("127.0.0.1", "unknown"), "127.0.0.1");
    assert_string_equal(client("127.0.0.1", "198.51.100.1, _hidden"), "127.0.0.1");
    assert_string_equal(client("127.0.0.1", "198.51.100.1, 10.0.0.9, garbage"), "127.0.0.1");
    assert_string_equal(client("127.0.0.1", "garbage, 10.0.0.9"), "10.0.0.9");
    assert_string_equal(client("127.0.0.1", "198.51.100.1,"), "127.0.0.1");
    assert_string_equal(client("127.0.0.1", "[2001:db8::7"), "127.0.0.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranges_match_at_their_boundaries),
        cmocka_unit_test(bad_ranges_refused),
        cmocka_unit_test(forwarded_for_only_from_trusted_peers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
