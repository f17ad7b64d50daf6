/*
 * backends/obf.h - the parts of the Open Badge Factory backend that do not
 * talk to the network, declared for obf.c and its unit tests
 * (tests/unit/backends/obf.c): what an answer of API v2 comes to, the
 * OAuth2 token's states (OBF gives a client at most one token every ten
 * seconds), and the request bodies of badge create/update and event issue.
 * backend_obf_new() makes the backend (the calls, in obf.c after these
 * parts); other modules reach it through backends/backends.h only.
 *
 * API v2 (openbadgefactory.com/obf-api-v2, as OBF's Moodle plugin calls
 * it): JSON bodies, Bearer tokens from POST /v2/client/oauth2/token
 * (client credentials), errors as {"error": ...} or {"message": ...}.
 */
#ifndef BACKENDS_OBF_H
#define BACKENDS_OBF_H

#include "base/base.h"
#include "backends/backends.h"
#include "net/net.h"

#include <jansson.h>

/* ---- the backend ----------------------------------------------------------- */

/*
 * A backend that issues through Open Badge Factory at s->base_url as
 * client s->client_id (the caller owns it: backend_destroy). It copies
 * `s`. Its calls share one access token kept in memory (v2), send at most
 * s->rate requests a second, and reach s->host only (TLS verified, no
 * redirects).
 */
struct backend *backend_obf_new(const struct obf_settings *s, struct err *err);

/* OBF gives a client at most one token in this many seconds. */
#define OBF_TOKEN_INTERVAL 10
/* A refused client id or secret is not asked again for this long (seconds). */
#define OBF_REFUSED_WAIT 300
#define OBF_TOKEN_LEN    2048

/* ---- answers -------------------------------------------------------------- */

enum obf_kind {
    OBF_OK,           /* 2xx: `doc` its JSON, if it had one */
    OBF_RETRY,        /* no answer, 5xx, 429 (retry_after), a 2xx we cannot read */
    OBF_AUTH,         /* a certificate that does not verify, an address refused */
    OBF_PERMANENT,    /* 400, 405, 411, 413, other 4xx: `message` has OBF's text */
    OBF_UNAUTHORIZED, /* 401 or 403: renew the token once and send once more */
    OBF_NOT_FOUND,    /* 404 */
};

struct obf_reply {
    enum obf_kind kind;
    int64_t retry_after;                     /* seconds, 0: none */
    char message[LIMIT_AWARD_ERROR_LEN + 1]; /* safe to show: no token, OBF's text at most */
    json_t *doc;                             /* the answer's JSON, NULL when it had none */
};

/*
 * Reads one answer. The status is net_http_classify()'s; on top of it
 * 401/403 ask for a renewed token, 404 is OBF_NOT_FOUND ("ENTITY not found
 * at Open Badge Factory"), and a refusal carries OBF's `error` or
 * `message` text. `entity` names what the call was about ("badge 'ID'").
 * Release with backend_obf_reply_release().
 */
void backend_obf_reply(const struct net_http_response *resp, const char *entity,
                       struct obf_reply *out /* OUT */);
void backend_obf_reply_release(struct obf_reply *r);

/* ---- the OAuth2 token ---------------------------------------------------------- */

/*
 * The token of one backend, in memory only. Reused until shortly before
 * it expires (a tenth of its life, at most a minute); never asked for
 * sooner than OBF_TOKEN_INTERVAL after the last request for one (a token
 * still valid is used meanwhile); nothing asked for while a refusal's wait
 * lasts.
 */
struct obf_token {
    char access[OBF_TOKEN_LEN + 1]; /* "": none */
    int64_t expires_at, renew_at;
    int64_t last_request;            /* when one was last asked for, 0: never */
    int64_t wait_until;              /* no request before then (a refusal) */
    enum backend_status wait_status; /* what a call gets meanwhile */
    char wait_message[LIMIT_AWARD_ERROR_LEN + 1];
    uint64_t generation; /* bumps with each new token */
};

enum obf_token_step {
    OBF_TOKEN_USE,     /* send with `access` */
    OBF_TOKEN_REQUEST, /* ask for one */
    OBF_TOKEN_WAIT,    /* no request now: backend_obf_token_wait() says what and how long */
};

void backend_obf_token_init(struct obf_token *t);
enum obf_token_step backend_obf_token_step(const struct obf_token *t, int64_t now);
/* What a call gets at `now` when the step is OBF_TOKEN_WAIT: retry (after) or auth. */
void backend_obf_token_wait(const struct obf_token *t, int64_t now, struct backend_result *r);
/* The token request's form body: grant_type=client_credentials, client_id, client_secret. */
void backend_obf_token_form(const char *client_id, const char *client_secret, struct buf *form);
/*
 * Takes the token endpoint's answer at `now`: a token is stored and `r`
 * left ok; a refused client (400/401 invalid_client and the like) sets
 * auth naming the fix and waits OBF_REFUSED_WAIT; 429 waits its
 * Retry-After (at least the rest of the ten seconds); anything else is
 * retry. Every answer or none counts as a request for the ten seconds.
 */
void backend_obf_token_answer(struct obf_token *t, const struct net_http_response *h, int64_t now,
                              struct backend_result *r);
/* A call with the token of `generation` got 401/403: dropped unless a newer one came. */
void backend_obf_token_rejected(struct obf_token *t, uint64_t generation);

/* ---- request bodies (v2) ------------------------------------------------------ */

/*
 * A badge's create or update (PUT takes every field): draft false, image as
 * a data URI (PNG or SVG; bc->default_png in place of our default SVG),
 * primary_language, content [{language, name, description, criteria
 * (markdown: the narrative, then the criteria URL), tag (ours, the issuing
 * component, the marker)}], email_message when any e-mail part is set. The
 * caller frees the text.
 */
int backend_obf_badge_body(const struct backend_badge *bc, const struct obf_settings *s,
                           char **out /* OUT */, struct err *err);
/*
 * An event's issue: recipient [{email, name}], issued_on (when earned),
 * expires_on (when set), api_consumer_id, send_email (notify), log_entry
 * {award_uid, course, consumer}, email_message when any part is set.
 */
int backend_obf_issue_body(const struct backend_award *a, const struct obf_settings *s,
                           char **out /* OUT */, struct err *err);
/* The award uid an event's log_entry holds (an object, or as v2 returns it, its JSON text). */
bool backend_obf_log_uid(json_t *event, char *uid, size_t uidlen);

/* ---- API v1: client certificates ------------------------------------------------------ */

/* The metadata key whose value is the marker of a badge made by v1 (GET ?meta:KEY=VALUE). */
#define OBF_V1_MARKER_META "ltibadges_marker"

/*
 * Reads an answer of API v1 as backend_obf_reply() does, and on top: 496
 * (no client certificate), 495 (an invalid or expired one) and 403 (a
 * certificate of another client) are OBF_AUTH saying so.
 */
void backend_obf_reply_v1(const struct net_http_response *resp, const char *entity,
                          struct obf_reply *out /* OUT */);
/*
 * A v1 list (one JSON object a line, CRLF or LF; the whole at most
 * LIMIT_OBF_ANSWER, a line at most LIMIT_OBF_LINE) as a JSON array.
 */
int backend_obf_ldjson(const char *body, size_t len, json_t **out /* OUT */, struct err *err);
/*
 * A v1 badge's create or update: name, description, image (base64 of a
 * PNG: v1 takes no SVG, refused here saying so; our default SVG goes as
 * bc->default_png), criteria_html (the narrative and the criteria URL as
 * a link, HTML-escaped), tags (ours, the
 * issuing component, the marker), draft false, metadata {OBF_V1_MARKER_META:
 * marker}, the e-mail parts set.
 */
int backend_obf_v1_badge_body(const struct backend_badge *bc, const struct obf_settings *s,
                              char **out /* OUT */, struct err *err);
/*
 * A v1 issue: recipient [email], issued_on, expires (when set: v1 takes a
 * date per award), api_consumer_id, log_entry {award_uid, course,
 * consumer}, the e-mail parts set.
 */
int backend_obf_v1_issue_body(const struct backend_award *a, const struct obf_settings *s,
                              char **out /* OUT */, struct err *err);
/* Whether a v1 event's `revoked` {email: time} names `email` (without case). */
bool backend_obf_v1_revoked(json_t *event, const char *email);
/*
 * Reads the PEM certificate `cert`: its notAfter (seconds) into
 * *not_after; with `key`, checks that the key (PEM, no passphrase) is the
 * certificate's. ERR_INVALID saying which file is wrong.
 */
int backend_obf_certificate(const char *cert, const char *key, int64_t *not_after /* OUT */,
                            struct err *err);
/*
 * An API key of OBF's admin tools decoded: base64, then RSA public-key
 * decryption with OBF's key (OBF.rsa.pub, PEM) and PKCS#1 padding, to JSON
 * whose `id` is the client id (and `expires`, when there, into *expires;
 * else 0).
 */
int backend_obf_api_key(const char *rsa_pub_pem, size_t pemlen, const char *api_key, size_t keylen,
                        char *client_id, size_t idlen, int64_t *expires /* OUT */, struct err *err);

/* ---- list look-ups (v2 {result, total} pages) ---------------------------------------- */

/* The id of the first badge of `list` tagged `marker` (its tag, or any content's). */
bool backend_obf_find_marked(json_t *list, const char *marker, char *id, size_t idlen);
/* The id of the first event of `list` whose log_entry names award `uid`. */
bool backend_obf_find_event(json_t *list, const char *uid, char *id, size_t idlen);
/*
 * The recipient row of `list` for `email` (compared without case), an
 * unrevoked one first: its assertion_json_url (http(s) only, else "") and
 * whether it is revoked.
 */
bool backend_obf_find_recipient(json_t *list, const char *email, char *url, size_t urllen,
                                bool *revoked /* OUT */);
/* The id a create or issue answered: its resource_id, else Location's last segment. */
bool backend_obf_created_id(const struct obf_reply *rep, const char *location, char *id,
                            size_t idlen);

#endif
