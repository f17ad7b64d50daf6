/*
 * backends/registry.c - the [backend.NAME] sections: per-type key tables, the
 * check that turns a section into typed settings, and backend_from_settings(),
 * the one place a configured backend is made.
 *
 * A section is checked whole, once the file and the environment are read,
 * because its `type` decides which keys it may hold and `type` may come
 * anywhere in it. Each key is checked by its kind from the type's table
 * (text, URL, flag, number in a range, readable file, one of a few words,
 * entity id); what involves several keys is the type's own rule. A secret's
 * value never reaches a message: a refused secret is named, not shown.
 */
#include "base/base.h"
#include "backends/registry.h"
#include "backends/backends.h"
#include "backends/badgr.h"
#include "backends/obf.h"
#include "backends/badgekit.h"

#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

bool backend_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > LIMIT_BACKEND_NAME_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '-'))
            return false;
    }
    return true;
}

bool backend_entity_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* ---- type = badgr ------------------------------------------------------------ */

#define BADGR_STR(field)                                                                           \
 offsetof(struct badgr_settings, field), sizeof(((struct badgr_settings *)0)->field)
#define BADGR_VAL(field)  offsetof(struct badgr_settings, field), 0
#define BADGR_ENUM(field) offsetof(struct badgr_settings, field), sizeof(int)

static const struct backend_key badgr_keys[] = {
    { "type", BACKEND_KEY_ENUM, true, false, 0, 0, "badgr", NULL, 0, 0 },
    { "base_url", BACKEND_KEY_URL, true, false, 0, 0, NULL, NULL, BADGR_STR(base_url) },
    { "grant", BACKEND_KEY_ENUM, false, false, 0, 0, "password|client_credentials", NULL,
      BADGR_ENUM(grant) },
    { "username", BACKEND_KEY_STRING, false, false, 0, 255, NULL, NULL, BADGR_STR(username) },
    { "password", BACKEND_KEY_STRING, false, true, 0, 255, NULL, NULL, BADGR_STR(password) },
    { "client_id", BACKEND_KEY_STRING, false, false, 0, 255, NULL, NULL, BADGR_STR(client_id) },
    { "client_secret", BACKEND_KEY_STRING, false, true, 0, 255, NULL, NULL,
      BADGR_STR(client_secret) },
    { "issuer", BACKEND_KEY_ENTITY, true, false, 0, 64, NULL, NULL, BADGR_STR(issuer) },
    { "issuer_name", BACKEND_KEY_STRING, false, false, 0, LIMIT_BADGE_NAME_LEN, NULL, NULL,
      BADGR_STR(issuer_name) },
    { "notify", BACKEND_KEY_BOOL, false, false, 0, 0, NULL, "false", BADGR_VAL(notify) },
    { "hash_recipients", BACKEND_KEY_BOOL, false, false, 0, 0, NULL, "true",
      BADGR_VAL(hash_recipients) },
    { "connect_timeout", BACKEND_KEY_INT, false, false, 1, 60, NULL, "5",
      BADGR_VAL(connect_timeout) },
    { "timeout", BACKEND_KEY_INT, false, false, 1, 300, NULL, "20", BADGR_VAL(timeout) },
    { "rate", BACKEND_KEY_INT, false, false, 1, 1000, NULL, "10", BADGR_VAL(rate) },
    { "ca_file", BACKEND_KEY_PATH, false, false, 0, 0, NULL, NULL, BADGR_STR(ca_file) },
    { "allow_loopback", BACKEND_KEY_BOOL, false, false, 0, 0, NULL, "false",
      BADGR_VAL(allow_loopback) },
};

/* ---- type = obf --------------------------------------------------------------- */

#define OBF_STR(field)                                                                             \
 offsetof(struct obf_settings, field), sizeof(((struct obf_settings *)0)->field)
#define OBF_VAL(field)  offsetof(struct obf_settings, field), 0
#define OBF_ENUM(field) offsetof(struct obf_settings, field), sizeof(int)

static const struct backend_key obf_keys[] = {
    { "type", BACKEND_KEY_ENUM, true, false, 0, 0, "obf", NULL, 0, 0 },
    { "base_url", BACKEND_KEY_URL, true, false, 0, 0, NULL, NULL, OBF_STR(base_url) },
    { "client_id", BACKEND_KEY_ENTITY, true, false, 0, 64, NULL, NULL, OBF_STR(client_id) },
    { "api", BACKEND_KEY_ENUM, false, false, 0, 0, "v2|v1", NULL, OBF_ENUM(api) },
    { "client_secret", BACKEND_KEY_STRING, false, true, 0, 255, NULL, NULL,
      OBF_STR(client_secret) },
    { "certificate", BACKEND_KEY_PATH, false, false, 0, 0, NULL, NULL, OBF_STR(certificate) },
    { "key", BACKEND_KEY_PATH, false, false, 0, 0, NULL, NULL, OBF_STR(key) },
    { "notify", BACKEND_KEY_BOOL, false, false, 0, 0, NULL, "true", OBF_VAL(notify) },
    { "email_subject", BACKEND_KEY_STRING, false, false, 0, 255, NULL, NULL,
      OBF_STR(email_subject) },
    { "email_body", BACKEND_KEY_STRING, false, false, 0, 4095, NULL, NULL, OBF_STR(email_body) },
    { "email_link_text", BACKEND_KEY_STRING, false, false, 0, 255, NULL, NULL,
      OBF_STR(email_link_text) },
    { "email_footer", BACKEND_KEY_STRING, false, false, 0, 1023, NULL, NULL,
      OBF_STR(email_footer) },
    { "language", BACKEND_KEY_STRING, false, false, 0, 16, NULL, "en", OBF_STR(language) },
    { "api_consumer_id", BACKEND_KEY_ENTITY, false, false, 0, 64, NULL, "ltibadges",
      OBF_STR(api_consumer_id) },
    { "issuer_name", BACKEND_KEY_STRING, false, false, 0, LIMIT_BADGE_NAME_LEN, NULL, NULL,
      OBF_STR(issuer_name) },
    { "connect_timeout", BACKEND_KEY_INT, false, false, 1, 60, NULL, "5",
      OBF_VAL(connect_timeout) },
    { "timeout", BACKEND_KEY_INT, false, false, 1, 300, NULL, "20", OBF_VAL(timeout) },
    { "rate", BACKEND_KEY_INT, false, false, 1, 1000, NULL, "10", OBF_VAL(rate) },
    { "ca_file", BACKEND_KEY_PATH, false, false, 0, 0, NULL, NULL, OBF_STR(ca_file) },
    { "allow_loopback", BACKEND_KEY_BOOL, false, false, 0, 0, NULL, "false",
      OBF_VAL(allow_loopback) },
};

/* ---- type = badgekit ---------------------------------------------------------- */

#define BK_STR(field)                                                                              \
 offsetof(struct badgekit_settings, field), sizeof(((struct badgekit_settings *)0)->field)
#define BK_VAL(field) offsetof(struct badgekit_settings, field), 0

static const struct backend_key badgekit_keys[] = {
    { "type", BACKEND_KEY_ENUM, true, false, 0, 0, "badgekit", NULL, 0, 0 },
    { "base_url", BACKEND_KEY_URL, true, false, 0, 0, NULL, NULL, BK_STR(base_url) },
    { "key", BACKEND_KEY_STRING, false, false, 1, 255, NULL, "master", BK_STR(key) },
    { "secret", BACKEND_KEY_STRING, false, true, 0, 255, NULL, NULL, BK_STR(secret) },
    { "system", BACKEND_KEY_STRING, true, false, 0, LIMIT_BADGEKIT_SLUG_LEN, NULL, NULL,
      BK_STR(system) },
    { "issuer", BACKEND_KEY_STRING, false, false, 0, LIMIT_BADGEKIT_SLUG_LEN, NULL, NULL,
      BK_STR(issuer) },
    { "program", BACKEND_KEY_STRING, false, false, 0, LIMIT_BADGEKIT_SLUG_LEN, NULL, NULL,
      BK_STR(program) },
    { "badge_type", BACKEND_KEY_STRING, false, false, 0, 255, NULL, "Course", BK_STR(badge_type) },
    { "issuer_name", BACKEND_KEY_STRING, false, false, 0, LIMIT_BADGE_NAME_LEN, NULL, NULL,
      BK_STR(issuer_name) },
    { "webhook_secret", BACKEND_KEY_STRING, false, true, 0, 255, NULL, NULL,
      BK_STR(webhook_secret) },
    { "connect_timeout", BACKEND_KEY_INT, false, false, 1, 60, NULL, "5", BK_VAL(connect_timeout) },
    { "timeout", BACKEND_KEY_INT, false, false, 1, 300, NULL, "20", BK_VAL(timeout) },
    { "rate", BACKEND_KEY_INT, false, false, 1, 1000, NULL, "10", BK_VAL(rate) },
    { "ca_file", BACKEND_KEY_PATH, false, false, 0, 0, NULL, NULL, BK_STR(ca_file) },
    { "allow_loopback", BACKEND_KEY_BOOL, false, false, 0, 0, NULL, "false",
      BK_VAL(allow_loopback) },
};

static const struct backend_type types[] = {
    { "badgr", badgr_keys, sizeof(badgr_keys) / sizeof(badgr_keys[0]) },
    { "obf", obf_keys, sizeof(obf_keys) / sizeof(obf_keys[0]) },
    { "badgekit", badgekit_keys, sizeof(badgekit_keys) / sizeof(badgekit_keys[0]) },
};

const struct backend_type *backend_type_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    }
    return NULL;
}

const char *backend_type_names(void)
{
    return "badgr, obf, badgekit";
}

/* The last entry of `key` in the section, NULL when it has none or an empty one. */
static const struct backend_section_entry *entry_of(const struct backend_section *sec,
                                                    const char *key)
{
    for (size_t i = sec->n; i-- > 0;) {
        if (strcmp(sec->entries[i].key, key) == 0)
            return sec->entries[i].value[0] ? &sec->entries[i] : NULL;
    }
    return NULL;
}

/* Whether `h` names this machine: 127.0.0.0/8, ::1 or localhost. */
static bool loopback_host(const char *h)
{
    return strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 || strcmp(h, "localhost") == 0;
}

/*
 * scheme://host[:port][/path] into `out` (its trailing slashes removed) and
 * its host, lower-cased, into `host`. No user name or password, query or
 * fragment; only what RFC 3986 lets a URL hold. `*https` says which scheme.
 */
static int parse_base_url(const char *v, char out[static LIMIT_LTI_URL_LEN], char host[static 256],
                          bool *https, const char *origin, struct err *err)
{
    const char *p, *auth_end, *h, *h_end;
    size_t n = strlen(v), hlen;

    if (strncasecmp(v, "https://", 8) == 0) {
        *https = true;
        p = v + 8;
    } else if (strncasecmp(v, "http://", 7) == 0) {
        *https = false;
        p = v + 7;
    } else {
        return err_set(err, ERR_INVALID, "%s: 'base_url' must be an https:// URL, got '%s'", origin,
                       v);
    }
    if (n >= LIMIT_LTI_URL_LEN)
        return err_set(err, ERR_INVALID, "%s: 'base_url' is longer than %d bytes", origin,
                       LIMIT_LTI_URL_LEN - 1);
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        if (*c <= ' ' || *c >= 0x7f || strchr("\"<>\\^`{|}?#", *c))
            return err_set(err, ERR_INVALID,
                           "%s: 'base_url' must be a URL without spaces, query or fragment, "
                           "got '%s'",
                           origin, v);
    }
    auth_end = p + strcspn(p, "/");
    if (memchr(p, '@', (size_t)(auth_end - p)))
        return err_set(err, ERR_INVALID,
                       "%s: 'base_url' must not hold a user name or password (use username and "
                       "password)",
                       origin);
    h = p;
    if (*h == '[') {
        h_end = memchr(h, ']', (size_t)(auth_end - h));
        if (!h_end)
            return err_set(err, ERR_INVALID, "%s: 'base_url' has no valid host in '%s'", origin, v);
        h++;
        p = h_end + 1;
    } else {
        h_end = h + strcspn(h, ":/");
        if (h_end > auth_end)
            h_end = auth_end;
        p = h_end;
    }
    hlen = (size_t)(h_end - h);
    if (hlen == 0 || hlen >= 256)
        return err_set(err, ERR_INVALID, "%s: 'base_url' has no valid host in '%s'", origin, v);
    for (size_t i = 0; i < hlen; i++) {
        char c = h[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || (c == ':' && h[-1] == '[')))
            return err_set(err, ERR_INVALID, "%s: 'base_url' has no valid host in '%s'", origin, v);
        host[i] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    host[hlen] = '\0';
    if (p < auth_end) {
        int64_t port;

        if (*p != ':' ||
            str_to_i64((struct str){ p + 1, (size_t)(auth_end - p - 1) }, 1, 65535, &port) < 0)
            return err_set(err, ERR_INVALID, "%s: 'base_url' has a bad port in '%s'", origin, v);
    }
    while (n > 0 && v[n - 1] == '/')
        n--;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* One key's value into the settings struct `base`, checked by its kind. */
static int set_key(const struct backend_key *k, const struct backend_section_entry *e, void *base,
                   bool enrolling, struct err *err)
{
    const char *v = e->value;
    char *dst = (char *)base + k->off;
    size_t n = strlen(v);

    switch (k->kind) {
    case BACKEND_KEY_STRING:
        if (n > (size_t)k->max || n >= k->len)
            return err_set(err, ERR_INVALID, "%s: '%s' is longer than %" PRId64 " bytes", e->origin,
                           k->name, k->max);
        /* never the value: it may be a secret */
        if (str_has_ctl(str_from_cstr(v)))
            return err_set(err, ERR_INVALID, "%s: '%s' contains control characters", e->origin,
                           k->name);
        memcpy(dst, v, n + 1);
        return 0;
    case BACKEND_KEY_PATH:
        if (n >= k->len)
            return err_set(err, ERR_INVALID, "%s: '%s' is longer than %zu bytes", e->origin,
                           k->name, k->len - 1);
        if (str_has_ctl(str_from_cstr(v)))
            return err_set(err, ERR_INVALID, "%s: '%s' contains control characters", e->origin,
                           k->name);
        /* the files obf-enrol is to write */
        if (enrolling && (strcmp(k->name, "certificate") == 0 || strcmp(k->name, "key") == 0)) {
            memcpy(dst, v, n + 1);
            return 0;
        }
        if (access(v, R_OK) != 0)
            return err_set(err, ERR_INVALID, "%s: '%s' file '%s' cannot be read: %s", e->origin,
                           k->name, v, strerror(errno));
        memcpy(dst, v, n + 1);
        return 0;
    case BACKEND_KEY_ENTITY:
        if (!backend_entity_id_valid(v) || n >= k->len)
            return err_set(err, ERR_INVALID,
                           "%s: '%s' must be an entity id (letters, digits, '-' and '_', at most "
                           "64), got '%s'",
                           e->origin, k->name, v);
        memcpy(dst, v, n + 1);
        return 0;
    case BACKEND_KEY_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
            *(bool *)(void *)dst = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
            *(bool *)(void *)dst = false;
        else
            return err_set(err, ERR_INVALID, "%s: '%s' must be true or false, got '%s'", e->origin,
                           k->name, v);
        return 0;
    case BACKEND_KEY_INT:
        if (str_to_i64(str_from_cstr(v), k->min, k->max, (int64_t *)(void *)dst) < 0)
            return err_set(err, ERR_INVALID,
                           "%s: '%s' must be a whole number from %" PRId64 " to %" PRId64
                           ", got '%s'",
                           e->origin, k->name, k->min, k->max, v);
        return 0;
    case BACKEND_KEY_ENUM: {
        int i = 0;

        for (const char *p = k->values; *p; i++) {
            size_t len = strcspn(p, "|");

            if (len == n && strncmp(p, v, n) == 0) {
                /* `type` is only checked: it chose the table */
                if (k->len)
                    *(int *)(void *)dst = i;
                return 0;
            }
            p += len + (p[len] == '|');
        }
        {
            char words[128];
            size_t j = 0;

            /* "a|b|c" -> "a, b or c" */
            for (const char *p = k->values; *p && j + 8 < sizeof(words); p++) {
                if (*p != '|') {
                    words[j++] = *p;
                } else if (strchr(p + 1, '|')) {
                    words[j++] = ',';
                    words[j++] = ' ';
                } else {
                    memcpy(words + j, " or ", 4);
                    j += 4;
                }
            }
            words[j] = '\0';
            return err_set(err, ERR_INVALID, "%s: '%s' must be %s, got '%s'", e->origin, k->name,
                           words, v);
        }
    }
    case BACKEND_KEY_URL:
        break; /* the type's rule: it depends on allow_loopback */
    }
    return 0;
}

/*
 * base_url into `out` and `host`: https, or http to this machine with
 * allow_loopback (tests); this machine only with allow_loopback.
 */
static int check_base_url(const struct backend_section *sec, bool allow_loopback,
                          char out[static LIMIT_LTI_URL_LEN], char host[static 256],
                          struct err *err)
{
    const struct backend_section_entry *url = entry_of(sec, "base_url");
    bool https = true;

    if (parse_base_url(url->value, out, host, &https, url->origin, err) < 0)
        return -1;
    if (!https && !(allow_loopback && loopback_host(host)))
        return err_set(err, ERR_INVALID,
                       "%s: 'base_url' must be an https:// URL (http:// only to 127.0.0.1 or ::1 "
                       "with allow_loopback = true, for tests), got '%s'",
                       url->origin, url->value);
    if (!allow_loopback && loopback_host(host))
        return err_set(err, ERR_INVALID,
                       "%s: 'base_url' is on this machine ('%s'): set allow_loopback = true to "
                       "call it (tests)",
                       url->origin, host);
    return 0;
}

/* LTIBADGES_BACKEND_<NAME>: the section's name upper-cased, '-' made '_' (128 bytes). */
static void env_prefix(const struct backend_section *sec, char envname[static 128])
{
    size_t j = (size_t)snprintf(envname, 128, "LTIBADGES_BACKEND_");

    for (const char *p = sec->name; *p && j + 1 < 128; p++)
        envname[j++] = *p == '-' ? '_' : (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A' : *p);
    envname[j] = '\0';
}

/* What a badgr section needs besides each key's own check. */
static int badgr_rules(const struct backend_section *sec, struct badgr_settings *b, struct err *err)
{
    char envname[128];

    if (check_base_url(sec, b->allow_loopback, b->base_url, b->host, err) < 0)
        return -1;
    env_prefix(sec, envname);
    if (b->grant == BADGR_GRANT_PASSWORD) {
        if (!b->username[0])
            return err_set(err, ERR_INVALID,
                           "%s: 'username' is required with grant = password (the platform "
                           "account's e-mail address)",
                           sec->origin);
        if (!b->password[0])
            return err_set(err, ERR_INVALID,
                           "%s: 'password' is required with grant = password (or set "
                           "%s_PASSWORD)",
                           sec->origin, envname);
        if (!b->client_id[0])
            snprintf(b->client_id, sizeof(b->client_id), "public");
    } else {
        if (b->username[0] || b->password[0])
            return err_set(err, ERR_INVALID,
                           "%s: '%s' is for grant = password; client_credentials signs in with "
                           "client_id and client_secret",
                           sec->origin, b->username[0] ? "username" : "password");
        if (!b->client_id[0])
            return err_set(err, ERR_INVALID,
                           "%s: 'client_id' is required with grant = client_credentials",
                           sec->origin);
        if (!b->client_secret[0])
            return err_set(err, ERR_INVALID,
                           "%s: 'client_secret' is required with grant = client_credentials (or "
                           "set %s_CLIENT_SECRET)",
                           sec->origin, envname);
    }
    return 0;
}

/*
 * Whether `v` is a language code as OBF takes one: 2 or 3 lower-case letters,
 * then optionally '_' and a region's 2 capitals ("en", "fi", "pt_BR").
 */
static bool language_valid(const char *v)
{
    size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyz");

    if (n < 2 || n > 3)
        return false;
    if (v[n] == '\0')
        return true;
    return v[n] == '_' && strspn(v + n + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 2 && v[n + 3] == '\0';
}

/*
 * What an obf section needs besides each key's own check: each API
 * version's keys only with it (v2 signs in with client_secret, v1 with
 * certificate and key), v1's key file no one but its owner may read or
 * write, the language one of OBF's codes.
 */
static int obf_rules(const struct backend_section *sec, struct obf_settings *o, struct err *err)
{
    static const char *const v1_only[] = { "certificate", "key" };
    static const char *const v2_only[] = { "client_secret", "language" };
    char envname[128];
    struct stat st;

    if (check_base_url(sec, o->allow_loopback, o->base_url, o->host, err) < 0)
        return -1;
    env_prefix(sec, envname);
    if (o->api == OBF_API_V2) {
        for (size_t i = 0; i < sizeof(v1_only) / sizeof(v1_only[0]); i++) {
            if (entry_of(sec, v1_only[i]))
                return err_set(err, ERR_INVALID,
                               "%s: '%s' is for api = v1; api = v2 signs in with client_id and "
                               "client_secret",
                               entry_of(sec, v1_only[i])->origin, v1_only[i]);
        }
        if (!o->client_secret[0])
            return err_set(err, ERR_INVALID,
                           "%s: 'client_secret' is required with api = v2 (or set "
                           "%s_CLIENT_SECRET; Open Badge Factory: Admin tools > API)",
                           sec->origin, envname);
        if (!language_valid(o->language))
            return err_set(err, ERR_INVALID,
                           "%s: 'language' must be a language code such as en, fi or pt_BR, got "
                           "'%s'",
                           entry_of(sec, "language") ? entry_of(sec, "language")->origin
                                                     : sec->origin,
                           o->language);
        return 0;
    }
    for (size_t i = 0; i < sizeof(v2_only) / sizeof(v2_only[0]); i++) {
        /* never the secret's value: only its name */
        if (entry_of(sec, v2_only[i]))
            return err_set(err, ERR_INVALID,
                           "%s: '%s' is for api = v2; api = v1 signs in with certificate and key",
                           entry_of(sec, v2_only[i])->origin, v2_only[i]);
    }
    o->language[0] = '\0';
    if (!o->certificate[0] || !o->key[0])
        return err_set(err, ERR_INVALID,
                       "%s: '%s' is required with api = v1 (make both with `ltibadges backend "
                       "obf-enrol %s --api-key FILE`)",
                       sec->origin, o->certificate[0] ? "key" : "certificate", sec->name);
    if (sec->enrolling)
        return 0;
    if (stat(o->key, &st) != 0)
        return err_set(err, ERR_INVALID, "%s: 'key' file '%s' cannot be read: %s",
                       entry_of(sec, "key")->origin, o->key, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(err, ERR_INVALID, "%s: 'key' file '%s' is not a regular file",
                       entry_of(sec, "key")->origin, o->key);
    if (st.st_mode & 0177)
        return err_set(err, ERR_INVALID,
                       "%s: 'key' file '%s' has mode %04o: a private key must be mode 0600 or "
                       "stricter (chmod 600 '%s')",
                       entry_of(sec, "key")->origin, o->key, (unsigned)(st.st_mode & 07777),
                       o->key);
    return 0;
}

/*
 * Whether `v` is a slug a path holds as it is: 1 or more of RFC 3986's
 * unreserved characters, so the request target signed is the one BadgeKit
 * routes, with nothing to percent-encode.
 */
static bool slug_valid(const char *v)
{
    size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~");

    return n > 0 && v[n] == '\0' && strcmp(v, ".") != 0 && strcmp(v, "..") != 0;
}

/*
 * What a badgekit section needs besides each key's own check: the slugs
 * of the scope, a program only within an issuer, a key with a secret; then
 * the scope every path starts with.
 */
static int badgekit_rules(const struct backend_section *sec, struct badgekit_settings *k,
                          struct err *err)
{
    static const char *const slugs[] = { "system", "issuer", "program" };
    const char *vals[] = { k->system, k->issuer, k->program };
    char envname[128];

    if (check_base_url(sec, k->allow_loopback, k->base_url, k->host, err) < 0)
        return -1;
    env_prefix(sec, envname);
    for (size_t i = 0; i < sizeof(slugs) / sizeof(slugs[0]); i++) {
        if (vals[i][0] && !slug_valid(vals[i]))
            return err_set(err, ERR_INVALID,
                           "%s: '%s' must be a BadgeKit slug (letters, digits, '-', '.', '_' and "
                           "'~'), got '%s'",
                           entry_of(sec, slugs[i])->origin, slugs[i], vals[i]);
    }
    if (k->program[0] && !k->issuer[0])
        return err_set(err, ERR_INVALID,
                       "%s: 'program' needs 'issuer': a BadgeKit program belongs to an issuer",
                       entry_of(sec, "program")->origin);
    if (!k->secret[0])
        return err_set(err, ERR_INVALID,
                       "%s: 'secret' is required (or set %s_SECRET): the secret of key '%s' in "
                       "BadgeKit API (MASTER_SECRET for master)",
                       sec->origin, envname, k->key);
    if (k->issuer[0] && k->program[0])
        snprintf(k->scope, sizeof(k->scope), "/systems/%s/issuers/%s/programs/%s", k->system,
                 k->issuer, k->program);
    else if (k->issuer[0])
        snprintf(k->scope, sizeof(k->scope), "/systems/%s/issuers/%s", k->system, k->issuer);
    else
        snprintf(k->scope, sizeof(k->scope), "/systems/%s", k->system);
    return 0;
}

int backend_settings_check(const struct backend_section *sec, struct backend_settings *out,
                           struct err *err)
{
    const struct backend_section_entry *te;
    const struct backend_type *t;
    void *base;

    memset(out, 0, sizeof(*out));
    if (!backend_name_valid(sec->name))
        return err_set(err, ERR_INVALID,
                       "%s: a backend name is 1 to %d lower-case letters, digits and '-', got "
                       "'%s'",
                       sec->origin, LIMIT_BACKEND_NAME_LEN, sec->name);
    if (strcmp(sec->name, BACKEND_HOSTED) == 0)
        return err_set(err, ERR_INVALID,
                       "%s: 'hosted' is the built-in issuer, configured in [issuer]; name the "
                       "section otherwise",
                       sec->origin);
    snprintf(out->name, sizeof(out->name), "%s", sec->name);
    te = entry_of(sec, "type");
    if (!te)
        return err_set(err, ERR_INVALID, "%s: 'type' is required (%s)", sec->origin,
                       backend_type_names());
    t = backend_type_find(te->value);
    if (!t)
        return err_set(err, ERR_INVALID, "%s: 'type' must be one of: %s, got '%s'", te->origin,
                       backend_type_names(), te->value);
    out->type = t;
    base = &out->u;
    /* defaults first, then every key given, each checked by its kind */
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct backend_key *k = &t->keys[i];
        struct backend_section_entry d = { k->name, k->def, sec->origin };

        if (k->def && set_key(k, &d, base, sec->enrolling, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < sec->n; i++) {
        const struct backend_section_entry *e = &sec->entries[i];
        const struct backend_key *k = NULL;

        for (size_t j = 0; j < t->nkeys && !k; j++) {
            if (strcmp(t->keys[j].name, e->key) == 0)
                k = &t->keys[j];
        }
        if (!k)
            return err_set(err, ERR_INVALID, "%s: unknown key '%s' for type %s", e->origin, e->key,
                           t->name);
        /* an empty value is a key not given (password =, to come from the environment) */
        if (e != entry_of(sec, e->key))
            continue;
        if (set_key(k, e, base, sec->enrolling, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < t->nkeys; i++) {
        if (t->keys[i].required && !entry_of(sec, t->keys[i].name))
            return err_set(err, ERR_INVALID, "%s: '%s' is required", sec->origin, t->keys[i].name);
    }
    if (t == &types[0])
        return badgr_rules(sec, &out->u.badgr, err);
    if (t == &types[1])
        return obf_rules(sec, &out->u.obf, err);
    if (t == &types[2])
        return badgekit_rules(sec, &out->u.badgekit, err);
    return 0;
}

void backend_settings_wipe(struct backend_settings *s)
{
    explicit_bzero(s, sizeof(*s));
}

const char *backend_settings_host(const struct backend_settings *s)
{
    if (s->type && strcmp(s->type->name, "obf") == 0)
        return s->u.obf.host;
    if (s->type && strcmp(s->type->name, "badgekit") == 0)
        return s->u.badgekit.host;
    return s->u.badgr.host;
}

int backend_from_settings(const struct backend_settings *s, struct backend **out, struct err *err)
{
    const char *name = "";

    *out = NULL;
    if (!s->type)
        return err_set(err, ERR_INVALID, "[backend.%s]: no type", s->name);
    /* one case per type of types[] */
    if (strcmp(s->type->name, "badgr") == 0) {
        *out = backend_badgr_new(&s->u.badgr, err);
        name = s->u.badgr.issuer_name;
    } else if (strcmp(s->type->name, "obf") == 0) {
        *out = backend_obf_new(&s->u.obf, err);
        name = s->u.obf.issuer_name;
    } else if (strcmp(s->type->name, "badgekit") == 0) {
        *out = backend_badgekit_new(&s->u.badgekit, err);
        name = s->u.badgekit.issuer_name;
    } else {
        return err_set(
            err, ERR_UNAVAILABLE,
            "[backend.%s]: type %s is not built yet: this version cannot issue through it", s->name,
            s->type->name);
    }
    if (!*out)
        return -1;
    snprintf((*out)->issuer_name, sizeof((*out)->issuer_name), "%s", name);
    return 0;
}
