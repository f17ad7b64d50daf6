/*
 * tests/unit/cli/config.c - the INI configuration read from memory
 * (cli_config_load_string, as from a file): the listen address, whose host
 * also makes the public URL when public_url is not set, so only what a
 * host name or an IP address is made of is accepted; and the public URL,
 * which holds only what RFC 3986 lets a URL hold.
 */
#include "base/base.h"
#include "backends/backends.h"
#include "cli/cli.h"

#include <stdlib.h>
#include <unistd.h>

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

/*
 * [backend.NAME] sections: kept as text while the file is read (a section's
 * type may come last), then checked whole; every refusal names the file,
 * the section and the key, and the secret never shows.
 */
static void backend_sections(void **state)
{
    static const char good[] = "[awards]\nbackend = campus\n"
                               "[backend.campus]\nbase_url = https://api.badges.parchment.com\n"
                               "username = badges@example.edu\npassword = hunter2-secret\n"
                               "issuer = cR7Ae2wfSvmpjYh9nDt2-Q\ntype = badgr\n"
                               "[backend.eu-test]\ntype = badgr\ngrant = client_credentials\n"
                               "base_url = https://api.badges.parchment.eu\nclient_id = app\n"
                               "client_secret = other-secret\nissuer = X\n";
    static const struct {
        const char *text, *msg;
    } bad[] = {
        { "[backend.campus]\ntype = badgr\nbase_url = https://a.example\nusername = u\n"
          "password = hunter2-secret\nissuer = X\nnotify = sometimes\n",
          "test.ini [backend.campus]: 'notify' must be true or false, got 'sometimes'" },
        { "[backend.campus]\ntype = badgr\nbase_url = https://a.example\nusername = u\n"
          "pasword = hunter2-secret\nissuer = X\n",
          "test.ini [backend.campus]: unknown key 'pasword' for type badgr" },
        { "[backend.campus]\ntype = badgr\nbase_url = https://a.example\nusername = u\n"
          "password = hunter2-secret\n",
          "test.ini [backend.campus]: 'issuer' is required" },
        { "[backend.campus]\ntype = openbadgefactory\n",
          "test.ini [backend.campus]: 'type' must be one of: badgr, obf, badgekit, got 'openbadgefactory'" },
        { "[awards]\nbackend = campus\n",
          "[awards]: 'backend' names 'campus', but there is no [backend.campus] section" },
        { "[backend.hosted]\ntype = badgr\n",
          "test.ini [backend.hosted]: 'hosted' is the built-in issuer, configured in [issuer]; "
          "name the section otherwise" },
    };
    static const struct {
        const char *text, *msg;
    } at_once[] = {
        { "[backend.Campus]\ntype = badgr\n",
          "test.ini [backend.Campus]: a backend section is [backend.NAME], NAME 1 to 32 "
          "lower-case letters, digits and '-' (line 2)" },
        { "[backend]\ntype = badgr\n",
          "test.ini [backend]: a backend section is [backend.NAME] (line 2)" },
        { "[awards]\nbackend = Not_A_Name\n",
          "test.ini [awards]: 'backend' must be hosted or the NAME of a [backend.NAME] section, "
          "got 'Not_A_Name' (line 2)" },
        { "[awards]\nbackends = x\n", "test.ini [awards]: unknown key 'awards.backends' (line 2)" },
    };
    struct cli_config *c = xmalloc(sizeof(*c));
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;

    (void)state;
    if (load(c, good, &err) < 0 || cli_config_backends_check(c, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_string_equal(c->awards_backend, "campus");
    assert_int_equal(c->nbackends, 2);
    assert_true(cli_config_has_backend(c, "hosted"));
    assert_true(cli_config_has_backend(c, "eu-test"));
    assert_false(cli_config_has_backend(c, "other"));
    assert_int_equal(cli_config_backend(c, "campus", s, &err), 0);
    assert_string_equal(s->u.badgr.password, "hunter2-secret");
    assert_string_equal(s->u.badgr.host, "api.badges.parchment.com");
    assert_int_equal(cli_config_backend(c, "eu-test", s, &err), 0);
    assert_int_equal(s->u.badgr.grant, BADGR_GRANT_CLIENT_CREDENTIALS);
    assert_string_equal(s->u.badgr.client_secret, "other-secret");
    assert_int_equal(cli_config_backend(c, "other", s, &err), -1);
    assert_int_equal(err.code, ERR_NOTFOUND);
    backend_settings_wipe(s);
    /* without [awards] backend: hosted */
    assert_int_equal(load(c, "[server]\nthreads = 2\n", &err), 0);
    assert_string_equal(c->awards_backend, "hosted");
    assert_int_equal(cli_config_backends_check(c, &err), 0);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (load(c, bad[i].text, &err) < 0)
            fail_msg("case %zu refused while read: %s", i, err.msg);
        assert_int_equal(cli_config_backends_check(c, &err), -1);
        assert_string_equal(err.msg, bad[i].msg);
        assert_null(strstr(err.msg, "hunter2"));
    }
    for (size_t i = 0; i < sizeof(at_once) / sizeof(at_once[0]); i++) {
        assert_int_equal(load(c, at_once[i].text, &err), -1);
        assert_string_equal(err.msg, at_once[i].msg);
    }
    free(s);
    free(c);
}

/* The limits of the backend sections: how many sections, keys and bytes, at max and max+1. */
static void backend_limits(void **state)
{
    struct cli_config *c = xmalloc(sizeof(*c));
    struct buf b = BUF_INIT(1 << 20);
    struct err err = ERR_INIT;
    char value[190];

    (void)state;
    for (int i = 0; i < LIMIT_BACKENDS; i++)
        buf_addf(&b, "[backend.b%d]\ntype = badgr\n", i);
    assert_int_equal(load(c, b.ptr, &err), 0);
    assert_int_equal(c->nbackends, LIMIT_BACKENDS);
    buf_addf(&b, "[backend.one-more]\ntype = badgr\n");
    assert_int_equal(load(c, b.ptr, &err), -1);
    assert_non_null(strstr(err.msg, "test.ini [backend.one-more]: at most 16 backend sections"));

    buf_reset(&b);
    buf_addf(&b, "[backend.x]\n");
    for (int i = 0; i < LIMIT_BACKEND_CONFIG_ENTRIES; i++)
        buf_addf(&b, "k = v\n");
    assert_int_equal(load(c, b.ptr, &err), 0);
    assert_int_equal(c->nbentries, LIMIT_BACKEND_CONFIG_ENTRIES);
    buf_addf(&b, "k = v\n");
    assert_int_equal(load(c, b.ptr, &err), -1);
    assert_non_null(strstr(err.msg, "test.ini [backend.x]: too many backend keys (at most 384)"));

    /* the text: values of 189 bytes until the pool is full */
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    buf_reset(&b);
    buf_addf(&b, "[backend.x]\n");
    for (size_t i = 0; i * (sizeof(value) + 2) < LIMIT_BACKEND_CONFIG_BYTES + 200; i++)
        buf_addf(&b, "k = %s\n", value);
    assert_int_equal(load(c, b.ptr, &err), -1);
    assert_non_null(strstr(err.msg, "the backend sections are too long (at most 32768 bytes)"));
    buf_release(&b);
    free(c);
}

/*
 * type = badgekit's secrets from LTIBADGES_BACKEND_<NAME>_SECRET and
 * _WEBHOOK_SECRET: NAME's '-' made '_', a variable wins over the file,
 * an empty one is not given.
 */
static void badgekit_secrets_from_env(void **state)
{
    static const char text[] = "[backend.bk-1]\ntype = badgekit\n"
                               "base_url = https://badgekit.example.edu\nsecret =\n"
                               "system = badgekit\nissuer = uni\nwebhook_secret = from-file\n";
    char path[] = "/tmp/lb-config-XXXXXX";
    struct cli_config *c = xmalloc(sizeof(*c));
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct cli_opts o = { 0 };
    struct err err = ERR_INIT;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    o.config = path;
    setenv("LTIBADGES_BACKEND_BK_1_SECRET", "env-master-secret", 1);
    setenv("LTIBADGES_BACKEND_BK_1_WEBHOOK_SECRET", "env-hook-secret", 1);
    if (cli_config_resolve(c, &o, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_int_equal(cli_config_backend(c, "bk-1", s, &err), 0);
    assert_string_equal(s->type->name, "badgekit");
    assert_string_equal(s->u.badgekit.secret, "env-master-secret");
    assert_string_equal(s->u.badgekit.webhook_secret, "env-hook-secret");
    assert_string_equal(s->u.badgekit.scope, "/systems/badgekit/issuers/uni");
    /* no variable: the file's webhook secret; no secret anywhere: refused, named */
    unsetenv("LTIBADGES_BACKEND_BK_1_WEBHOOK_SECRET");
    setenv("LTIBADGES_BACKEND_BK_1_SECRET", "", 1);
    assert_int_equal(cli_config_resolve(c, &o, &err), -1);
    assert_non_null(strstr(err.msg, "'secret' is required (or set LTIBADGES_BACKEND_BK_1_SECRET)"));
    err_clear(&err);
    setenv("LTIBADGES_BACKEND_BK_1_SECRET", "env-master-secret", 1);
    if (cli_config_resolve(c, &o, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_int_equal(cli_config_backend(c, "bk-1", s, &err), 0);
    assert_string_equal(s->u.badgekit.webhook_secret, "from-file");
    unsetenv("LTIBADGES_BACKEND_BK_1_SECRET");
    unlink(path);
    backend_settings_wipe(s);
    free(s);
    free(c);
}

/*
 * [database]: url (PostgreSQL only), pool at 1 and LIMIT_DB_POOL_MAX and
 * refused past them, url and path both set refused naming both keys, and
 * the URL's password in no message and not in the name logs show.
 */
static void database_keys(void **state)
{
    struct cli_config *c = xmalloc(sizeof(*c));
    struct err err = ERR_INIT;
    char text[512], shown[LIMIT_DB_URL_LEN];

    assert_int_equal(load(c,
                          "[database]\nurl = postgresql://badges:s3cr3t@db.example.edu/badges"
                          "?sslmode=verify-full\n",
                          &err),
                     0);
    assert_int_equal(c->db_pool, LIMIT_DB_POOL_DEFAULT);
    assert_int_equal(cli_config_check_database(c, &err), 0);
    cli_config_database_name(c, shown, sizeof(shown));
    assert_string_equal(shown, "postgresql://badges:***@db.example.edu/badges?sslmode=verify-full");
    /* the sqlite default path is no conflict; a path given is */
    assert_int_equal(load(c,
                          "[database]\nurl = postgresql://badges:s3cr3t@db/badges\n"
                          "path = /var/lib/ltibadges/ltibadges.db\n",
                          &err),
                     0);
    assert_int_equal(cli_config_check_database(c, &err), -1);
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.msg, "'url'"));
    assert_non_null(strstr(err.msg, "'path'"));
    assert_null(strstr(err.msg, "s3cr3t"));
    /* without a url: the path, as it is */
    assert_int_equal(load(c, "[database]\npath = /srv/b.db\n", &err), 0);
    cli_config_database_name(c, shown, sizeof(shown));
    assert_string_equal(shown, "/srv/b.db");

    assert_int_equal(load(c, "[database]\npool = 1\n", &err), 0);
    assert_int_equal(c->db_pool, 1);
    snprintf(text, sizeof(text), "[database]\npool = %d\n", LIMIT_DB_POOL_MAX);
    assert_int_equal(load(c, text, &err), 0);
    assert_int_equal(c->db_pool, LIMIT_DB_POOL_MAX);
    snprintf(text, sizeof(text), "[database]\npool = %d\n", LIMIT_DB_POOL_MAX + 1);
    assert_int_equal(load(c, text, &err), -1);
    assert_non_null(strstr(err.msg, "'pool'"));
    assert_int_equal(load(c, "[database]\npool = 0\n", &err), -1);
    assert_non_null(strstr(err.msg, "'pool'"));

    /* not PostgreSQL's: refused without echoing it */
    assert_int_equal(load(c, "[database]\nurl = mysql://u:s3cr3t@h/d\n", &err), -1);
    assert_non_null(strstr(err.msg, "'url' must be a PostgreSQL URL"));
    assert_null(strstr(err.msg, "s3cr3t"));
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(database_keys),  cmocka_unit_test(badgekit_secrets_from_env),
        cmocka_unit_test(listen_hosts),   cmocka_unit_test(listen_host_length),
        cmocka_unit_test(public_urls),    cmocka_unit_test(backend_sections),
        cmocka_unit_test(backend_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
