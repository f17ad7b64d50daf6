/*
 * tests/unit/backends/registry.c - [backend.NAME] sections checked whole
 * (backend_settings_check): a good section of each grant with its defaults,
 * then each way a section is refused, each message naming the section and
 * the key and never a secret's value; names and entity ids at their limits.
 * type = obf: v2 (the default) and v1, each version's keys only with it,
 * v1's key file refused unless mode 0600 or stricter. type = badgekit: its
 * defaults, every key (the webhook secret from the environment too), the
 * scope made from system, issuer and program, and each refusal.
 */
#include "base/base.h"
#include "backends/backends.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#define ORIGIN "tool.ini [backend.campus]"
#define SECRET "s3cret-Pa55word"

static const struct backend_section_entry good_password[] = {
    { "type", "badgr", ORIGIN },
    { "base_url", "https://API.Badges.Parchment.com/", ORIGIN },
    { "username", "badges@example.edu", ORIGIN },
    { "password", SECRET, ORIGIN },
    { "issuer", "cR7Ae2wfSvmpjYh9nDt2-Q", ORIGIN },
};

static int check(const struct backend_section_entry *e, size_t n, struct backend_settings *out,
                 struct err *err)
{
    struct backend_section sec = { "campus", ORIGIN, e, n, false };

    err_clear(err);
    return backend_settings_check(&sec, out, err);
}

static void password_grant(void **state)
{
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;
    const struct badgr_settings *b = &s->u.badgr;

    (void)state;
    if (check(good_password, 5, s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_string_equal(s->name, "campus");
    assert_string_equal(s->type->name, "badgr");
    assert_string_equal(b->base_url, "https://API.Badges.Parchment.com");
    assert_string_equal(b->host, "api.badges.parchment.com");
    assert_int_equal(b->grant, BADGR_GRANT_PASSWORD);
    assert_string_equal(b->username, "badges@example.edu");
    assert_string_equal(b->password, SECRET);
    assert_string_equal(b->client_id, "public");
    assert_string_equal(b->issuer, "cR7Ae2wfSvmpjYh9nDt2-Q");
    assert_false(b->notify);
    assert_true(b->hash_recipients);
    assert_int_equal(b->connect_timeout, 5);
    assert_int_equal(b->timeout, 20);
    assert_int_equal(b->rate, 10);
    assert_string_equal(b->ca_file, "");
    assert_false(b->allow_loopback);
    backend_settings_wipe(s);
    assert_string_equal(s->u.badgr.password, "");
    free(s);
}

static void client_credentials(void **state)
{
    const struct backend_section_entry e[] = {
        { "type", "badgr", ORIGIN },
        { "grant", "client_credentials", ORIGIN },
        { "base_url", "http://127.0.0.1:8443/badgr", ORIGIN },
        { "allow_loopback", "yes", ORIGIN },
        { "client_id", "ltibadges-app", ORIGIN },
        { "client_secret", "", ORIGIN },
        { "client_secret", SECRET, "LTIBADGES_BACKEND_CAMPUS_CLIENT_SECRET" },
        { "issuer", "abc_DEF-123", ORIGIN },
        { "notify", "true", ORIGIN },
        { "hash_recipients", "false", ORIGIN },
        { "connect_timeout", "60", ORIGIN },
        { "timeout", "1", ORIGIN },
        { "rate", "1000", ORIGIN },
        { "rate", "", ORIGIN }, /* empty: not given, the default */
        { "ca_file", "/dev/null", ORIGIN },
    };
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;
    const struct badgr_settings *b = &s->u.badgr;

    (void)state;
    if (check(e, sizeof(e) / sizeof(e[0]), s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_int_equal(b->grant, BADGR_GRANT_CLIENT_CREDENTIALS);
    assert_string_equal(b->base_url, "http://127.0.0.1:8443/badgr");
    assert_string_equal(b->host, "127.0.0.1");
    assert_string_equal(b->client_id, "ltibadges-app");
    assert_string_equal(b->client_secret, SECRET);
    assert_true(b->notify);
    assert_false(b->hash_recipients);
    assert_int_equal(b->connect_timeout, 60);
    assert_int_equal(b->timeout, 1);
    assert_int_equal(b->rate, 10);
    assert_string_equal(b->ca_file, "/dev/null");
    assert_true(b->allow_loopback);
    free(s);
}

/* Each refusal: one replaced or added entry, the key the message must name. */
static void refusals(void **state)
{
    static const struct {
        const char *key, *value; /* replaces the key's entry, or is added; NULL value: removed */
        const char *named;       /* in the message */
    } cases[] = {
        { "type", NULL, "'type' is required" },
        { "type", "openbadges", "'type' must be one of: badgr, obf, badgekit, got 'openbadges'" },
        { "base_url", NULL, "'base_url' is required" },
        { "issuer", NULL, "'issuer' is required" },
        { "issuer", "not an id!", "'issuer' must be an entity id" },
        { "issuer", "a234567890123456789012345678901234567890123456789012345678901234X",
          "'issuer' must be an entity id" },
        { "username", NULL, "'username' is required with grant = password" },
        { "password", NULL,
          "'password' is required with grant = password (or set "
          "LTIBADGES_BACKEND_CAMPUS_PASSWORD)" },
        { "grant", "implicit", "'grant' must be password or client_credentials, got 'implicit'" },
        { "notify", "maybe", "'notify' must be true or false, got 'maybe'" },
        { "hash_recipients", "2", "'hash_recipients' must be true or false" },
        { "connect_timeout", "0", "'connect_timeout' must be a whole number from 1 to 60" },
        { "connect_timeout", "61", "'connect_timeout' must be a whole number from 1 to 60" },
        { "timeout", "301", "'timeout' must be a whole number from 1 to 300" },
        { "rate", "1001", "'rate' must be a whole number from 1 to 1000" },
        { "rate", "ten", "'rate' must be a whole number from 1 to 1000, got 'ten'" },
        { "ca_file", "/nonexistent/ca.pem", "'ca_file' file '/nonexistent/ca.pem' cannot be read" },
        { "pasword", "x", "unknown key 'pasword' for type badgr" },
        { "base_url", "ftp://badges.example.edu", "'base_url' must be an https:// URL" },
        { "base_url", "http://badges.example.edu", "'base_url' must be an https:// URL" },
        { "base_url", "https://u:p@badges.example.edu", "'base_url' must not hold a user name" },
        { "base_url", "https://badges.example.edu/?x=1", "'base_url' must be a URL without" },
        { "base_url", "https://badges.example.edu/#x", "'base_url' must be a URL without" },
        { "base_url", "https:///v2", "'base_url' has no valid host" },
        { "base_url", "https://bad_host/", "'base_url' has no valid host" },
        { "base_url", "https://badges.example.edu:0/", "'base_url' has a bad port" },
        { "base_url", "https://badges.example.edu:65536/", "'base_url' has a bad port" },
        { "base_url", "https://127.0.0.1/", "'base_url' is on this machine" },
        { "username", "bad\x01name", "'username' contains control characters" },
    };
    struct backend_section_entry e[8];
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        bool placed = false;

        for (size_t j = 0; j < 5; j++) {
            if (strcmp(good_password[j].key, cases[i].key) == 0) {
                placed = true;
                if (!cases[i].value)
                    continue;
                e[n] = good_password[j];
                e[n++].value = cases[i].value;
            } else {
                e[n++] = good_password[j];
            }
        }
        if (!placed)
            e[n++] = (struct backend_section_entry){ cases[i].key, cases[i].value, ORIGIN };
        if (check(e, n, s, &err) == 0)
            fail_msg("case %zu (%s = %s) accepted", i, cases[i].key,
                     cases[i].value ? cases[i].value : "(none)");
        assert_int_equal(err.code, ERR_INVALID);
        if (!strstr(err.msg, cases[i].named) || strncmp(err.msg, ORIGIN ": ", strlen(ORIGIN) + 2))
            fail_msg("case %zu: '%s' does not say '%s' after the section", i, err.msg,
                     cases[i].named);
        assert_null(strstr(err.msg, SECRET));
    }
    free(s);
}

/* The grant's own rules, and secrets never in a message however they are refused. */
static void secrets_and_grants(void **state)
{
    char longsecret[300];
    struct backend_section_entry e[7];
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;

    (void)state;
    memcpy(e, good_password, sizeof(good_password));
    /* a password with a control character, and one too long: named, not shown */
    e[3].value = SECRET "\x02";
    assert_int_equal(check(e, 5, s, &err), -1);
    assert_non_null(strstr(err.msg, "'password' contains control characters"));
    assert_null(strstr(err.msg, SECRET));
    memset(longsecret, 'k', sizeof(longsecret) - 1);
    longsecret[sizeof(longsecret) - 1] = '\0';
    memcpy(longsecret, SECRET, strlen(SECRET));
    e[3].value = longsecret;
    e[3].origin = "LTIBADGES_BACKEND_CAMPUS_PASSWORD for [backend.campus]";
    assert_int_equal(check(e, 5, s, &err), -1);
    assert_string_equal(err.msg, "LTIBADGES_BACKEND_CAMPUS_PASSWORD for [backend.campus]: "
                                 "'password' is longer than 255 bytes");
    /* client_credentials takes no username or password, and needs its client */
    memcpy(e, good_password, sizeof(good_password));
    e[5] = (struct backend_section_entry){ "grant", "client_credentials", ORIGIN };
    assert_int_equal(check(e, 6, s, &err), -1);
    assert_non_null(strstr(err.msg, "'username' is for grant = password"));
    assert_null(strstr(err.msg, SECRET));
    e[2].value = "";
    e[3].value = "";
    assert_int_equal(check(e, 6, s, &err), -1);
    assert_non_null(strstr(err.msg, "'client_id' is required with grant = client_credentials"));
    e[6] = (struct backend_section_entry){ "client_id", "app", ORIGIN };
    assert_int_equal(check(e, 7, s, &err), -1);
    assert_string_equal(err.msg, ORIGIN ": 'client_secret' is required with grant = "
                                        "client_credentials (or set "
                                        "LTIBADGES_BACKEND_CAMPUS_CLIENT_SECRET)");
    free(s);
}

static void names(void **state)
{
    struct backend_section_entry e[5];
    struct backend_section sec = { NULL, ORIGIN, e, 5, false };
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;
    char name[40];

    (void)state;
    memcpy(e, good_password, sizeof(good_password));
    assert_true(backend_name_valid("a"));
    assert_true(backend_name_valid("campus-2"));
    assert_false(backend_name_valid(""));
    assert_false(backend_name_valid("Campus"));
    assert_false(backend_name_valid("campus_2"));
    assert_false(backend_name_valid("camp us"));
    assert_false(backend_name_valid(NULL));
    /* at the limit and one past it */
    memset(name, 'x', 32);
    name[32] = '\0';
    assert_true(backend_name_valid(name));
    sec.name = name;
    assert_int_equal(backend_settings_check(&sec, s, &err), 0);
    assert_string_equal(s->name, name);
    name[32] = 'x';
    name[33] = '\0';
    assert_false(backend_name_valid(name));
    assert_int_equal(backend_settings_check(&sec, s, &err), -1);
    assert_non_null(strstr(err.msg, "a backend name is 1 to 32"));
    err_clear(&err);
    sec.name = "hosted";
    assert_int_equal(backend_settings_check(&sec, s, &err), -1);
    assert_non_null(strstr(err.msg, "'hosted' is the built-in issuer"));
    /* the Badgr entity id shape, at 64 and 65 */
    memset(name, 'A', 39);
    name[39] = '\0';
    assert_true(backend_entity_id_valid("cR7Ae2wfSvmpjYh9nDt2-Q"));
    assert_false(backend_entity_id_valid("a/b"));
    assert_false(backend_entity_id_valid(""));
    {
        char id[66];

        memset(id, 'a', 65);
        id[64] = '\0';
        assert_true(backend_entity_id_valid(id));
        id[64] = 'a';
        id[65] = '\0';
        assert_false(backend_entity_id_valid(id));
    }
    free(s);
}

/* ---- type = obf ----------------------------------------------------------------- */

static const struct backend_section_entry obf_v2[] = {
    { "type", "obf", ORIGIN },
    { "base_url", "https://OpenBadgeFactory.com/", ORIGIN },
    { "client_id", "NN9CX8VBa8hJ", ORIGIN },
    { "client_secret", SECRET, "LTIBADGES_BACKEND_CAMPUS_CLIENT_SECRET for [backend.campus]" },
};

/* v2, the default API: its defaults, and the host the CLI shows. */
static void obf_v2_defaults(void **state)
{
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;
    const struct obf_settings *o = &s->u.obf;

    (void)state;
    if (check(obf_v2, 4, s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_string_equal(s->type->name, "obf");
    assert_string_equal(o->base_url, "https://OpenBadgeFactory.com");
    assert_string_equal(o->host, "openbadgefactory.com");
    assert_string_equal(backend_settings_host(s), "openbadgefactory.com");
    assert_string_equal(o->client_id, "NN9CX8VBa8hJ");
    assert_int_equal(o->api, OBF_API_V2);
    assert_string_equal(o->client_secret, SECRET);
    assert_string_equal(o->certificate, "");
    assert_string_equal(o->key, "");
    assert_true(o->notify);
    assert_string_equal(o->email_subject, "");
    assert_string_equal(o->email_body, "");
    assert_string_equal(o->language, "en");
    assert_string_equal(o->api_consumer_id, "ltibadges");
    assert_int_equal(o->connect_timeout, 5);
    assert_int_equal(o->timeout, 20);
    assert_int_equal(o->rate, 10);
    assert_string_equal(o->ca_file, "");
    assert_false(o->allow_loopback);
    backend_settings_wipe(s);
    assert_string_equal(s->u.obf.client_secret, "");
    free(s);
}

/* Every key of v2 given (CanCred Factory on a test port); the badgr host unaffected. */
static void obf_v2_every_key(void **state)
{
    const struct backend_section_entry e[] = {
        { "type", "obf", ORIGIN },
        { "base_url", "http://127.0.0.1:9443", ORIGIN },
        { "allow_loopback", "true", ORIGIN },
        { "client_id", "abc_DEF-123", ORIGIN },
        { "api", "v2", ORIGIN },
        { "client_secret", SECRET, ORIGIN },
        { "notify", "no", ORIGIN },
        { "email_subject", "Your badge", ORIGIN },
        { "email_body", "You earned it.", ORIGIN },
        { "email_link_text", "Accept it", ORIGIN },
        { "email_footer", "The Campus", ORIGIN },
        { "language", "pt_BR", ORIGIN },
        { "api_consumer_id", "campus-lti", ORIGIN },
        { "connect_timeout", "60", ORIGIN },
        { "timeout", "300", ORIGIN },
        { "rate", "1", ORIGIN },
        { "ca_file", "/dev/null", ORIGIN },
    };
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;
    const struct obf_settings *o = &s->u.obf;

    (void)state;
    if (check(e, sizeof(e) / sizeof(e[0]), s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_string_equal(o->host, "127.0.0.1");
    assert_false(o->notify);
    assert_string_equal(o->email_subject, "Your badge");
    assert_string_equal(o->email_body, "You earned it.");
    assert_string_equal(o->email_link_text, "Accept it");
    assert_string_equal(o->email_footer, "The Campus");
    assert_string_equal(o->language, "pt_BR");
    assert_string_equal(o->api_consumer_id, "campus-lti");
    assert_int_equal(o->connect_timeout, 60);
    assert_int_equal(o->timeout, 300);
    assert_int_equal(o->rate, 1);
    assert_string_equal(o->ca_file, "/dev/null");
    free(s);
    s = xmalloc(sizeof(*s));
    if (check(good_password, 5, s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_string_equal(backend_settings_host(s), "api.badges.parchment.com");
    free(s);
}

/* A file of `mode` in a fresh temporary directory; its path into `path` (64 bytes). */
static void temp_file(char dir[static 64], const char *name, mode_t mode, char path[static 128])
{
    int fd;

    snprintf(path, 128, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "-----BEGIN X-----\n", 18), 18);
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

/* v1: certificate and key, the key's mode 0600 or stricter; v2's keys refused. */
static void obf_v1(void **state)
{
    char dir[64] = "/tmp/lb-registry-XXXXXX", cert[128], key[128];
    struct backend_section_entry e[8] = {
        { "type", "obf", ORIGIN },
        { "base_url", "https://factory.cancred.ca", ORIGIN },
        { "client_id", "NN9CX8VBa8hJ", ORIGIN },
        { "api", "v1", ORIGIN },
        { "certificate", cert, ORIGIN },
        { "key", key, ORIGIN },
    };
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;
    const struct obf_settings *o = &s->u.obf;

    (void)state;
    assert_non_null(mkdtemp(dir));
    temp_file(dir, "obf.pem", 0644, cert);
    temp_file(dir, "obf.key", 0600, key);
    if (check(e, 6, s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_int_equal(o->api, OBF_API_V1);
    assert_string_equal(o->certificate, cert);
    assert_string_equal(o->key, key);
    assert_string_equal(o->client_secret, "");
    assert_string_equal(o->language, "");
    assert_string_equal(backend_settings_host(s), "factory.cancred.ca");
    /* stricter is fine */
    assert_int_equal(chmod(key, 0400), 0);
    assert_int_equal(check(e, 6, s, &err), 0);
    /* any bit for the group or others, or the owner's x, is refused with the mode */
    {
        static const mode_t bad[] = { 0640, 0604, 0660, 0700, 0666 };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char want[512];

            assert_int_equal(chmod(key, bad[i]), 0);
            assert_int_equal(check(e, 6, s, &err), -1);
            snprintf(want, sizeof(want),
                     ORIGIN ": 'key' file '%s' has mode %04o: a private key must be mode 0600 "
                            "or stricter (chmod 600 '%s')",
                     key, (unsigned)bad[i], key);
            assert_string_equal(err.msg, want);
        }
    }
    assert_int_equal(chmod(key, 0600), 0);
    /* each of v1's files is required with v1 */
    e[5].value = "";
    assert_int_equal(check(e, 6, s, &err), -1);
    assert_string_equal(err.msg, ORIGIN ": 'key' is required with api = v1 (make both with "
                                        "`ltibadges backend obf-enrol campus --api-key FILE`)");
    e[5].value = key;
    e[4].value = "";
    assert_int_equal(check(e, 6, s, &err), -1);
    assert_non_null(strstr(err.msg, "'certificate' is required with api = v1"));
    e[4].value = cert;
    /* v2's keys, the secret from the environment too: named, its value never shown */
    e[6] = (struct backend_section_entry){ "client_secret", SECRET,
                                           "LTIBADGES_BACKEND_CAMPUS_CLIENT_SECRET for "
                                           "[backend.campus]" };
    assert_int_equal(check(e, 7, s, &err), -1);
    assert_string_equal(err.msg, "LTIBADGES_BACKEND_CAMPUS_CLIENT_SECRET for [backend.campus]: "
                                 "'client_secret' is for api = v2; api = v1 signs in with "
                                 "certificate and key");
    e[6] = (struct backend_section_entry){ "language", "fi", ORIGIN };
    assert_int_equal(check(e, 7, s, &err), -1);
    assert_string_equal(err.msg, ORIGIN ": 'language' is for api = v2; api = v1 signs in with "
                                        "certificate and key");
    /* the e-mail parts are for both */
    e[6] = (struct backend_section_entry){ "email_subject", "Your badge", ORIGIN };
    assert_int_equal(check(e, 7, s, &err), 0);
    /* a key that is not a regular file */
    e[5].value = dir;
    assert_int_equal(check(e, 6, s, &err), -1);
    assert_non_null(strstr(err.msg, "is not a regular file"));
    assert_int_equal(unlink(cert), 0);
    assert_int_equal(unlink(key), 0);
    assert_int_equal(rmdir(dir), 0);
    free(s);
}

/* Each refusal of a v2 section, as for badgr: one entry replaced or added. */
static void obf_refusals(void **state)
{
    static const struct {
        const char *key, *value;
        const char *named;
    } cases[] = {
        { "client_id", NULL, "'client_id' is required" },
        { "client_id", "a/b", "'client_id' must be an entity id" },
        { "client_secret", NULL,
          "'client_secret' is required with api = v2 (or set "
          "LTIBADGES_BACKEND_CAMPUS_CLIENT_SECRET; Open Badge Factory: Admin tools > API)" },
        { "api", "v3", "'api' must be v2 or v1, got 'v3'" },
        { "certificate", "/dev/null",
          "'certificate' is for api = v1; api = v2 signs in with client_id and client_secret" },
        { "key", "/dev/null", "'key' is for api = v1" },
        { "language", "english", "'language' must be a language code such as en, fi or pt_BR" },
        { "language", "e", "'language' must be a language code" },
        { "language", "pt-BR", "'language' must be a language code" },
        { "language", "pt_br", "'language' must be a language code" },
        { "language", "en_", "'language' must be a language code" },
        { "language", "en_USA", "'language' must be a language code" },
        { "language", "EN", "'language' must be a language code" },
        { "language", "a234567890123456X", "'language' is longer than 16 bytes" },
        { "api_consumer_id", "lti badges", "'api_consumer_id' must be an entity id" },
        { "notify", "sometimes", "'notify' must be true or false" },
        { "email_subject", "a\nb", "'email_subject' contains control characters" },
        { "rate", "0", "'rate' must be a whole number from 1 to 1000" },
        { "base_url", "http://openbadgefactory.com", "'base_url' must be an https:// URL" },
        { "base_url", "https://127.0.0.1:9443", "'base_url' is on this machine" },
        { "issuer", "abc", "unknown key 'issuer' for type obf" },
        { "grant", "client_credentials", "unknown key 'grant' for type obf" },
    };
    struct backend_section_entry e[6];
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        bool placed = false;

        for (size_t j = 0; j < 4; j++) {
            if (strcmp(obf_v2[j].key, cases[i].key) == 0) {
                placed = true;
                if (!cases[i].value)
                    continue;
                e[n] = obf_v2[j];
                e[n].value = cases[i].value;
                e[n++].origin = ORIGIN;
            } else {
                e[n] = obf_v2[j];
                e[n++].origin = ORIGIN;
            }
        }
        if (!placed)
            e[n++] = (struct backend_section_entry){ cases[i].key, cases[i].value, ORIGIN };
        if (check(e, n, s, &err) == 0)
            fail_msg("case %zu (%s = %s) accepted", i, cases[i].key,
                     cases[i].value ? cases[i].value : "(none)");
        assert_int_equal(err.code, ERR_INVALID);
        if (!strstr(err.msg, cases[i].named) || strncmp(err.msg, ORIGIN ": ", strlen(ORIGIN) + 2))
            fail_msg("case %zu: '%s' does not say '%s' after the section", i, err.msg,
                     cases[i].named);
        assert_null(strstr(err.msg, SECRET));
    }
    free(s);
}

/* ---- type = badgekit ------------------------------------------------------------- */

#define HOOKSECRET "h00k-Secr3t-value"

static const struct backend_section_entry bk_min[] = {
    { "type", "badgekit", ORIGIN },
    { "base_url", "https://BadgeKit.example.edu/api/", ORIGIN },
    { "secret", SECRET, "LTIBADGES_BACKEND_CAMPUS_SECRET for [backend.campus]" },
    { "system", "badgekit", ORIGIN },
};

/* The fewest keys: master, the system's scope, badge type Course, no hooks. */
static void badgekit_defaults(void **state)
{
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;
    const struct badgekit_settings *k = &s->u.badgekit;

    (void)state;
    if (check(bk_min, 4, s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_string_equal(s->type->name, "badgekit");
    assert_string_equal(k->base_url, "https://BadgeKit.example.edu/api");
    assert_string_equal(k->host, "badgekit.example.edu");
    assert_string_equal(backend_settings_host(s), "badgekit.example.edu");
    assert_string_equal(k->key, "master");
    assert_string_equal(k->secret, SECRET);
    assert_string_equal(k->system, "badgekit");
    assert_string_equal(k->issuer, "");
    assert_string_equal(k->program, "");
    assert_string_equal(k->scope, "/systems/badgekit");
    assert_string_equal(k->badge_type, "Course");
    assert_string_equal(k->webhook_secret, "");
    assert_int_equal(k->connect_timeout, 5);
    assert_int_equal(k->timeout, 20);
    assert_int_equal(k->rate, 10);
    assert_string_equal(k->ca_file, "");
    assert_false(k->allow_loopback);
    backend_settings_wipe(s);
    assert_string_equal(s->u.badgekit.secret, "");
    free(s);
}

/* Every key given, the webhook secret from LTIBADGES_BACKEND_<NAME>_WEBHOOK_SECRET. */
static void badgekit_every_key(void **state)
{
    const struct backend_section_entry e[] = {
        { "type", "badgekit", ORIGIN },
        { "base_url", "http://127.0.0.1:8080", ORIGIN },
        { "allow_loopback", "true", ORIGIN },
        { "key", "ltibadges-consumer", ORIGIN },
        { "secret", SECRET, ORIGIN },
        { "system", "city.of-Chicago_2~x", ORIGIN },
        { "issuer", "uni", ORIGIN },
        { "program", "cs", ORIGIN },
        { "badge_type", "Skill badge", ORIGIN },
        { "webhook_secret", "", ORIGIN }, /* empty: to come from the environment */
        { "webhook_secret", HOOKSECRET,
          "LTIBADGES_BACKEND_CAMPUS_WEBHOOK_SECRET for [backend.campus]" },
        { "connect_timeout", "60", ORIGIN },
        { "timeout", "300", ORIGIN },
        { "rate", "1000", ORIGIN },
        { "ca_file", "/dev/null", ORIGIN },
    };
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;
    const struct badgekit_settings *k = &s->u.badgekit;

    (void)state;
    if (check(e, sizeof(e) / sizeof(e[0]), s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_string_equal(k->base_url, "http://127.0.0.1:8080");
    assert_string_equal(k->host, "127.0.0.1");
    assert_true(k->allow_loopback);
    assert_string_equal(k->key, "ltibadges-consumer");
    assert_string_equal(k->secret, SECRET);
    assert_string_equal(k->system, "city.of-Chicago_2~x");
    assert_string_equal(k->issuer, "uni");
    assert_string_equal(k->program, "cs");
    assert_string_equal(k->scope, "/systems/city.of-Chicago_2~x/issuers/uni/programs/cs");
    assert_string_equal(k->badge_type, "Skill badge");
    assert_string_equal(k->webhook_secret, HOOKSECRET);
    assert_int_equal(k->connect_timeout, 60);
    assert_int_equal(k->timeout, 300);
    assert_int_equal(k->rate, 1000);
    assert_string_equal(k->ca_file, "/dev/null");
    /* an issuer without a program: the issuer's scope */
    if (check(e, 7, s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_string_equal(k->scope, "/systems/city.of-Chicago_2~x/issuers/uni");
    assert_string_equal(k->webhook_secret, "");
    backend_settings_wipe(s);
    assert_string_equal(s->u.badgekit.webhook_secret, "");
    free(s);
}

/* Slugs at BadgeKit's 255 and one past; each refusal, secrets never shown. */
static void badgekit_refusals(void **state)
{
    char slug[LIMIT_BADGEKIT_SLUG_LEN + 2], want[128];
    static const struct {
        const char *key, *value;
        const char *named;
    } cases[] = {
        { "system", NULL, "'system' is required" },
        { "secret", NULL,
          "'secret' is required (or set LTIBADGES_BACKEND_CAMPUS_SECRET): the secret of key "
          "'master' in BadgeKit API (MASTER_SECRET for master)" },
        { "base_url", NULL, "'base_url' is required" },
        { "system", "bad slug", "'system' must be a BadgeKit slug" },
        { "system", "a/b",
          "'system' must be a BadgeKit slug (letters, digits, '-', '.', '_' and "
          "'~'), got 'a/b'" },
        { "system", "..", "'system' must be a BadgeKit slug" },
        { "system", "%41", "'system' must be a BadgeKit slug" },
        { "issuer", "uni?x", "'issuer' must be a BadgeKit slug" },
        { "program", "cs", "'program' needs 'issuer': a BadgeKit program belongs to an issuer" },
        { "webhook_secret", "bad\x01" HOOKSECRET, "'webhook_secret' contains control characters" },
        { "secret", "s\x7f" SECRET, "'secret' contains control characters" },
        { "timeout", "0", "'timeout' must be a whole number from 1 to 300" },
        { "rate", "1001", "'rate' must be a whole number from 1 to 1000" },
        { "allow_loopback", "perhaps", "'allow_loopback' must be true or false" },
        { "base_url", "http://badgekit.example.edu", "'base_url' must be an https:// URL" },
        { "base_url", "https://127.0.0.1:8080", "'base_url' is on this machine" },
        { "client_id", "x", "unknown key 'client_id' for type badgekit" },
        { "username", "x", "unknown key 'username' for type badgekit" },
        { "type", "BadgeKit", "'type' must be one of: badgr, obf, badgekit, got 'BadgeKit'" },
    };
    struct backend_section_entry e[6];
    struct backend_settings *s = xmalloc(sizeof(*s));
    struct err err = ERR_INIT;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        bool placed = false;

        for (size_t j = 0; j < 4; j++) {
            if (strcmp(bk_min[j].key, cases[i].key) == 0) {
                placed = true;
                if (!cases[i].value)
                    continue;
                e[n] = bk_min[j];
                e[n].value = cases[i].value;
                e[n++].origin = ORIGIN;
            } else {
                e[n] = bk_min[j];
                e[n++].origin = ORIGIN;
            }
        }
        if (!placed)
            e[n++] = (struct backend_section_entry){ cases[i].key, cases[i].value, ORIGIN };
        if (check(e, n, s, &err) == 0)
            fail_msg("case %zu (%s = %s) accepted", i, cases[i].key,
                     cases[i].value ? cases[i].value : "(none)");
        assert_int_equal(err.code, ERR_INVALID);
        if (!strstr(err.msg, cases[i].named) || strncmp(err.msg, ORIGIN ": ", strlen(ORIGIN) + 2))
            fail_msg("case %zu: '%s' does not say '%s' after the section", i, err.msg,
                     cases[i].named);
        assert_null(strstr(err.msg, SECRET));
        assert_null(strstr(err.msg, HOOKSECRET));
    }
    /* a slug of 255 and of 256 */
    memcpy(e, bk_min, sizeof(bk_min));
    memset(slug, 'x', LIMIT_BADGEKIT_SLUG_LEN);
    slug[LIMIT_BADGEKIT_SLUG_LEN] = '\0';
    e[3].value = slug;
    e[4] = (struct backend_section_entry){ "issuer", slug, ORIGIN };
    e[5] = (struct backend_section_entry){ "program", slug, ORIGIN };
    if (check(e, 6, s, &err) < 0)
        fail_msg("refused: %s", err.msg);
    assert_int_equal(strlen(s->u.badgekit.scope), 3 * LIMIT_BADGEKIT_SLUG_LEN + 28);
    slug[LIMIT_BADGEKIT_SLUG_LEN] = 'x';
    slug[LIMIT_BADGEKIT_SLUG_LEN + 1] = '\0';
    assert_int_equal(check(e, 4, s, &err), -1);
    snprintf(want, sizeof(want), ORIGIN ": 'system' is longer than %d bytes",
             LIMIT_BADGEKIT_SLUG_LEN);
    assert_string_equal(err.msg, want);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(password_grant),
        cmocka_unit_test(client_credentials),
        cmocka_unit_test(refusals),
        cmocka_unit_test(secrets_and_grants),
        cmocka_unit_test(names),
        cmocka_unit_test(obf_v2_defaults),
        cmocka_unit_test(obf_v2_every_key),
        cmocka_unit_test(obf_v1),
        cmocka_unit_test(obf_refusals),
        cmocka_unit_test(badgekit_defaults),
        cmocka_unit_test(badgekit_every_key),
        cmocka_unit_test(badgekit_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
