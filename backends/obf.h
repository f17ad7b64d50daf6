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
 * a data URI (PNG or SVG), primary_language, content [{language, name,
 * description, criteria (markdown: the narrative, then the criteria URL),
 * tag (ours, the issuing component, the marker)}], email_message when any
 * e-mail part is set. The caller frees the text.
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
