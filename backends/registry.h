/*
 * backends/registry.h - named backends: the keys each type of backend takes
 * in its [backend.NAME] section, the check that turns a section into typed
 * settings, and the one function that makes a backend from them.
 *
 * The configuration reader (cli/) collects a section's keys as text, with
 * where each came from (a file's section, or an environment variable for a
 * secret), and hands them here whole: the type decides which keys exist, so
 * a section is only checked once all of it is known. Every message names
 * the section and the key and never holds a secret's value.
 *
 * Included by backends/backends.h: other modules include that one.
 */
#ifndef BACKENDS_REGISTRY_H
#define BACKENDS_REGISTRY_H

#include "base/base.h"

struct backend;

/* The built-in issuer's name: no section, always there, the default of [awards] backend. */
#define BACKEND_HOSTED "hosted"

/* Whether `name` is a backend name: [a-z0-9-]{1,LIMIT_BACKEND_NAME_LEN}. */
bool backend_name_valid(const char *name);
/* Whether `id` looks like a platform's entity id: 1 to 64 of [A-Za-z0-9_-] (Badgr's are 22). */
bool backend_entity_id_valid(const char *id);

/* What a key's value is, and so how it is checked. */
enum backend_key_kind {
    BACKEND_KEY_STRING, /* printable text up to `max` bytes */
    BACKEND_KEY_URL,    /* the platform's base URL: https (http on loopback with allow_loopback) */
    BACKEND_KEY_BOOL,   /* true|false|yes|no|1|0 */
    BACKEND_KEY_INT,    /* a whole number from `min` to `max` */
    BACKEND_KEY_PATH,   /* a file that must be readable */
    BACKEND_KEY_ENUM,   /* one of `values` ("a|b") */
    BACKEND_KEY_ENTITY, /* an entity id (backend_entity_id_valid) */
};

/* One key of a type's section. */
struct backend_key {
    const char *name;
    enum backend_key_kind kind;
    bool required; /* the section is refused without it (cross-key rules are the type's) */
    bool secret;   /* never shown; may come from LTIBADGES_BACKEND_<NAME>_<KEY> */
    int64_t min, max;
    const char *values; /* ENUM: "a|b", the first the default */
    const char *def;    /* the value when not given (NULL: none) */
    size_t off, len;    /* where it goes in the type's settings struct (len: char arrays) */
};

/* A type of backend ("badgr"): its keys. */
struct backend_type {
    const char *name;
    const struct backend_key *keys;
    size_t nkeys;
};

/* The type called `name`, NULL when this build knows none. */
const struct backend_type *backend_type_find(const char *name);
/* The names of the known types, "badgr" (for messages). */
const char *backend_type_names(void);

/* One key of a section as read: the last one of a key wins. */
struct backend_section_entry {
    const char *key, *value;
    const char
        *origin; /* where it came from: "tool.ini [backend.campus]", an environment variable */
};

/* A [backend.NAME] section as read. All borrowed. */
struct backend_section {
    const char *name;
    const char *origin; /* where the section is, for what concerns all of it */
    const struct backend_section_entry *entries;
    size_t n;
    /*
     * obf v1 being enrolled (`backend obf-enrol`): the certificate and key
     * files it is to write need not exist yet (their paths are checked).
     */
    bool enrolling;
};

/* type = badgr: Badgr-compatible platforms (Parchment Digital Badges, badgr-server). */
enum badgr_grant {
    BADGR_GRANT_PASSWORD,           /* username and password, client_id (default "public") */
    BADGR_GRANT_CLIENT_CREDENTIALS, /* client_id and client_secret (HTTP Basic) */
};

struct badgr_settings {
    char base_url[LIMIT_LTI_URL_LEN]; /* scheme://host[:port][/path], no trailing slash */
    char host[256]; /* base_url's host, lower-cased: the only one called (HTTP allowed_hosts) */
    int grant;      /* enum badgr_grant */
    char username[256], password[256];
    char client_id[256], client_secret[256];
    char issuer[65]; /* the issuer's entity id */
    /* its name, for people (LinkedIn links): "" not given */
    char issuer_name[LIMIT_BADGE_NAME_LEN + 1];
    bool notify, hash_recipients;
    int64_t connect_timeout, timeout; /* seconds */
    int64_t rate;                     /* requests per second at most */
    char ca_file[4096];               /* "": the system's CA bundle */
    bool allow_loopback;              /* base_url may be http://127.0.0.1 (tests) */
};

/* type = obf: Open Badge Factory (and CanCred Factory, the same software). */
enum obf_api {
    OBF_API_V2, /* OAuth2 client credentials: client_id and client_secret */
    OBF_API_V1, /* mutual TLS: certificate and key (made by `backend obf-enrol`) */
};

struct obf_settings {
    char base_url[LIMIT_LTI_URL_LEN];  /* scheme://host[:port][/path], no trailing slash */
    char host[256];                    /* base_url's host, lower-cased */
    char client_id[65];                /* OBF's client id: in every path */
    int api;                           /* enum obf_api */
    char client_secret[256];           /* v2 */
    char certificate[4096], key[4096]; /* v1: PEM files; the key's mode 0600 or stricter */
    bool notify;                       /* OBF e-mails the recipient a link to accept the badge */
    char email_subject[256], email_body[4096], email_link_text[256], email_footer[1024];
    char language[17];        /* v2 content language: "en", "fi", "pt_BR" */
    char api_consumer_id[65]; /* what OBF files our events under */
    /* the name the client issues as, for people (LinkedIn links): "" not given */
    char issuer_name[LIMIT_BADGE_NAME_LEN + 1];
    int64_t connect_timeout, timeout; /* seconds */
    int64_t rate;                     /* requests per second at most */
    char ca_file[4096];               /* "": the system's CA bundle */
    bool allow_loopback;              /* base_url may be http://127.0.0.1 (tests) */
};

/*
 * type = badgekit: a self-hosted Mozilla BadgeKit API (archived upstream).
 * Every call is a JWT signed with `secret` under `key`; every path starts
 * with `scope`. The webhook receiver checks hooks with `webhook_secret`.
 */
struct badgekit_settings {
    char base_url[LIMIT_LTI_URL_LEN]; /* scheme://host[:port][/path], no trailing slash */
    char host[256];                   /* base_url's host, lower-cased */
    char key[256];                    /* the JWT `key` claim: "master" or a consumer key */
    char secret[256];                 /* the key's secret: signs every call (HS256) */
    /* slugs, each 1 to 255 of [A-Za-z0-9._~-], so a path holds them as they are */
    char system[LIMIT_BADGEKIT_SLUG_LEN + 1];
    char issuer[LIMIT_BADGEKIT_SLUG_LEN + 1];  /* "": none */
    char program[LIMIT_BADGEKIT_SLUG_LEN + 1]; /* "": none (needs issuer) */
    /* "/systems/S[/issuers/I[/programs/P]]": what every path starts with */
    char scope[3 * LIMIT_BADGEKIT_SLUG_LEN + 40];
    char badge_type[256]; /* BadgeKit's required badge `type` ("Course") */
    /* the issuer's name, for people (LinkedIn links): "" not given */
    char issuer_name[LIMIT_BADGE_NAME_LEN + 1];
    char webhook_secret[256];         /* "": hooks from BadgeKit are refused */
    int64_t connect_timeout, timeout; /* seconds */
    int64_t rate;                     /* requests per second at most */
    char ca_file[4096];               /* "": the system's CA bundle */
    bool allow_loopback;              /* base_url may be http://127.0.0.1 (tests) */
};

/* A section checked whole: its name, its type and that type's settings. */
struct backend_settings {
    char name[LIMIT_BACKEND_NAME_LEN + 1];
    const struct backend_type *type;
    union {
        struct badgr_settings badgr;
        struct obf_settings obf;
        struct badgekit_settings badgekit;
    } u;
};

/* The host a checked section's backend calls (its base_url's, lower-cased). */
const char *backend_settings_host(const struct backend_settings *s);

/*
 * Checks section `sec` whole into `out`: a valid name (not "hosted"), a
 * known `type`, every key one of the type's with a good value, every
 * required key there, and the type's own rules (badgr: the grant's
 * credentials; obf: each API version's keys only with it, v1's key file
 * mode 0600 or stricter; badgekit: slugs, program only with issuer, the
 * scope made; all: http only on loopback with allow_loopback). ERR_INVALID with
 * one line naming the section and the key, never a secret's value.
 */
int backend_settings_check(const struct backend_section *sec,
                           struct backend_settings *out /* OUT */, struct err *err);
/* Overwrites the settings' secrets (explicit_bzero) and everything else. */
void backend_settings_wipe(struct backend_settings *s);

/*
 * Makes the backend `s` describes (the caller owns it: backend_destroy).
 * It keeps what it needs of `s`, which may go after. ERR_UNAVAILABLE when
 * this build cannot make backends of that type yet.
 */
int backend_from_settings(const struct backend_settings *s, struct backend **out /* OUT */,
                          struct err *err);

#endif
