/*
 * tests/unit/cli/config.c - the INI configuration read from memory
 * (cli_config_load_string, as from a file): the listen address, whose host
 * also makes the public URL when public_url is not set, so only what a
 * host name or an IP address is made of is accepted; and the public URL,
 * which holds only what RFC 3986 lets a URL hold.
 */
#include "base/base.h"
#include "cli/cli.h"

#include <setjmp.h>
#include <cmocka.h>

static int load(struct cli_config *c, const char *text, struct err *err)
{
    cli_config_defaults(c);
    err_clear(err);
    return cli_config_load_string(c, text, "test.ini", err);
}

static void listen_hosts(void **state)
{
    static const struct {
        const char *listen, *host;
        unsigned port;
    } good[] = {
        { "127.0.0.1:8080", "127.0.0.1", 8080 },
        { "localhost:0", "localhost", 0 },
        { "badges-1.example.edu:443", "badges-1.example.edu", 443 },
        { "[::1]:8443", "::1", 8443 },
        { "[fe80::1%eth0]:80", "fe80::1%eth0", 80 },
        { "::1:8080", "::1", 8080 },
    };
    /* found by tests/fuzz/fuzz_ini.c: control characters and URL delimiters went into the host */
    static const char *const bad[] = {
        "[::1]YYY\x16YYY:8443",
        "exa mple.org:80",
        "example.org/x:80",
        "a@b:80",
        "example.org?:80",
        "ex#ample:80",
        "[::1]]:80",
        "[[::1]:80",
        "\x7f:80",
        "host\x01:80",
        "[]:80",
        ":80",
    };
    struct cli_config *c = xmalloc(sizeof(*c));
    struct err err = ERR_INIT;
    char text[256];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), "[server]\nlisten = %s\n", good[i].listen);
        if (load(c, text, &err) < 0)
            fail_msg("listen '%s' refused: %s", good[i].listen, err.msg);
        assert_string_equal(c->listen_host, good[i].host);
        assert_int_equal(c->listen_port, good[i].port);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "[server]\nlisten = %s\n", bad[i]);
        if (load(c, text, &err) == 0)
            fail_msg("listen '%s' accepted as host '%s'", bad[i], c->listen_host);
        assert_int_equal(err.code, ERR_INVALID);
        assert_non_null(strstr(err.msg, "listen"));
        assert_non_null(strstr(err.msg, "(line 2)"));
    }
    free(c);
}

/*
 * A host name at its limit (255 bytes) and one past it, through --listen
 * (libinih cuts INI lines at 200 bytes).
 */
static void listen_host_length(void **state)
{
    struct cli_config *c = xmalloc(sizeof(*c));
    struct err err = ERR_INIT;
    char v[300];

    cli_config_defaults(c);
    memset(v, 'h', 255);
    snprintf(v + 255, sizeof(v) - 255, ":1");
    assert_int_equal(cli_config_set(c, "server.listen", v, "--listen", &err), 0);
    assert_int_equal(strlen(c->listen_host), 255);
    memset(v, 'h', 256);
    snprintf(v + 256, sizeof(v) - 256, ":1");
    assert_int_equal(cli_config_set(c, "server.listen", v, "--listen", &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    free(c);
}

static void public_urls(void **state)
{
    static const struct {
        const char *v, *want;
    } good[] = {
        { "https://Badges.Example.edu/", "https://badges.example.edu" },
        { "http://example.edu:8080/lti/badges/", "http://example.edu:8080/lti/badges" },
        { "https://example.edu/~a/b-c_d.e/%C3%A9;x=1",
          "https://example.edu/~a/b-c_d.e/%C3%A9;x=1" },
    };
    /* found by tests/fuzz/fuzz_ini.c: a control character in the path went into every link */
    static const char *const bad[] = {
        "https://badges.example.edu/\x01", "https://badges.example.edu/a b",
        "https://example.edu/\x7f",        "https://example.edu/<x>",
        "https://example.edu/\xc3\xa9",    "https://example.edu/a\"b",
        "https://example.edu/{x}",         "https://example.edu/a\\b",
    };
    struct cli_config *c = xmalloc(sizeof(*c));
    struct err err = ERR_INIT;
    char text[256];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), "[server]\npublic_url = %s\n", good[i].v);
        if (load(c, text, &err) < 0)
            fail_msg("public_url '%s' refused: %s", good[i].v, err.msg);
        assert_string_equal(c->public_url, good[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "[server]\npublic_url = %s\n", bad[i]);
        if (load(c, text, &err) == 0)
            fail_msg("public_url '%s' accepted as '%s'", bad[i], c->public_url);
        assert_non_null(strstr(err.msg, "public_url"));
    }
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listen_hosts),
        cmocka_unit_test(listen_host_length),
        cmocka_unit_test(public_urls),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
