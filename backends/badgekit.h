/*
 * backends/badgekit.h - the parts of the BadgeKit API backend (badgekit.c)
 * that do not talk to the network, declared for badgekit.c and its unit
 * tests (tests/unit/backends/badgekit.c): the signed Authorization header,
 * what an answer comes to, the request bodies and the names sent. Other
 * modules reach the backend through backends/backends.h only.
 *
 * The API (Mozilla's BadgeKit API, archived upstream, self-hosted only):
 * every call under a scope /systems/S[/issuers/I[/programs/P]] carries a
 * JWT signed with the key's secret naming the method, the exact request
 * target and, with a body, its SHA-256; answers are JSON, a refusal is
 * restify's {code, message} (ValidationError adds `details`, a list of
 * {field, message}).
 */
#ifndef BACKENDS_BADGEKIT_H
#define BACKENDS_BADGEKIT_H

#include "base/base.h"
#include "backends/backends.h"
#include "net/net.h"

#include <jansson.h>

/* ---- the backend ----------------------------------------------------------- */

/*
 * A backend that issues through the BadgeKit API at s->base_url in scope
 * s->scope (the caller owns it: backend_destroy). It copies `s`. It sends
 * at most s->rate requests a second, to s->host only (TLS verified, no
 * redirects), each signed for itself.
 */
struct backend *backend_badgekit_new(const struct badgekit_settings *s, struct err *err);

/* ---- signing ---------------------------------------------------------------- */

/* Seconds a token lives: BadgeKit refuses it once its `exp` is past by its own clock. */
#define BADGEKIT_TOKEN_LIFE 60

/*
 * The Authorization header's value for one request: `JWT token="H.P.S"`,
 * HS256 with `secret` over header {typ: JWT, alg: HS256} and claims `key`,
 * `exp` (now + BADGEKIT_TOKEN_LIFE), `method` (upper case), `path` (the
 * request target exactly as sent: path, query and percent-encoding) and,
 * when `body` is not NULL (POST and PUT), `body` {alg: sha256, hash: the
 * hex SHA-256 of those exact bytes}. Appended to `out`.
 */
int backend_badgekit_authorization(const char *key, const char *secret, const char *method,
                                   const char *target, const void *body, size_t body_len,
                                   int64_t now, struct buf *out, struct err *err);

/* ---- answers -------------------------------------------------------------- */

enum badgekit_kind {
    BADGEKIT_OK,        /* 2xx with a JSON object */
    BADGEKIT_RETRY,     /* no answer, 5xx, 429, a 2xx without JSON: again later, looked up first */
    BADGEKIT_AUTH,      /* 401/403 (NotAuthorized), a scope BadgeKit does not know, not the API */
    BADGEKIT_PERMANENT, /* refused for good: ValidationError's fields, 405, 415, other 4xx */
    BADGEKIT_NOT_FOUND, /* 404 of the badge or the instance asked for */
    BADGEKIT_CONFLICT,  /* 409 ResourceConflict: the slug is taken, the learner holds the badge */
};

struct badgekit_reply {
    enum badgekit_kind kind;
    int64_t retry_after;                     /* seconds, 0: none */
    char message[LIMIT_AWARD_ERROR_LEN + 1]; /* safe to show: no token, only BadgeKit's texts */
    json_t *doc;                             /* the answer's JSON, NULL when it had none */
};

/*
 * Reads one answer. The status is net_http_classify()'s; on top of it: a
 * 403 NotAuthorized says BadgeKit's message (an expired token adds that
 * both clocks must be checked); a 404 of a system, issuer or program is
 * AUTH ("BadgeKit has no system 'S'"), of a badge NOT_FOUND ("no badge B
 * in SCOPE"), of an instance NOT_FOUND, without restify's JSON AUTH (not
 * the API); a ValidationError is PERMANENT "field: message; ...". `scope`
 * names where the call was. Release with backend_badgekit_reply_release().
 */
void backend_badgekit_reply(const struct net_http_response *resp, const char *scope,
                            struct badgekit_reply *out /* OUT */);
void backend_badgekit_reply_release(struct badgekit_reply *r);

/* ---- names and bodies ---------------------------------------------------------------- */

/*
 * The BadgeKit slug of a BadgeClass: its marker (backend_marker: our slug
 * and this server's hashed URL) with ':' made '-', "ltibadges-HHHHHHHHHHHH-
 * SLUG", at most BACKEND_MARKER_LEN bytes (under BadgeKit's 255), unique
 * across the whole BadgeKit as badge slugs must be.
 */
void backend_badgekit_badge_slug(const char *marker, char out[BACKEND_MARKER_LEN + 1]);
/* Whether `slug` may name a badge in a path: 1 to 255 of RFC 3986's unreserved characters. */
bool backend_badgekit_slug_valid(const char *slug);

/*
 * The JSON of a badge create (`slug` not NULL) or update (PUT: `slug`
 * NULL): name, earnerDescription and consumerDescription (both the
 * description), criteriaUrl (bc's, else PUBLIC/badges/criteria/SLUG),
 * imageUrl PUBLIC/ob/v2/badges/SLUG/image, unique true, `type`, one
 * criterion {description (the narrative, else the description), required
 * true, note ""}, tags (ours and the issuing component). bc->public_url
 * is required. The caller frees the text.
 */
int backend_badgekit_badge_body(const struct backend_badge *bc, const char *slug, const char *type,
                                char **out /* OUT */, struct err *err);
/*
 * The JSON of an instance: email (lower-cased), slug (the award's uid),
 * issuedOn (when earned, "YYYY-MM-DDTHH:MM:SS.000Z"), expires (Unix
 * seconds) when it expires. The caller frees the text.
 */
int backend_badgekit_instance_body(const struct backend_award *a, char **out /* OUT */,
                                   struct err *err);

#endif
