/*
 * backends/badgr.h - the parts of the Badgr backend (badgr.c) that do not
 * talk to the network, declared for badgr.c and its unit tests
 * (tests/unit/backends/badgr.c): what an answer of the v2 API comes to, the
 * OAuth token's states, and the request bodies. Other modules reach the
 * backend through backends/backends.h only.
 *
 * The API (badgr-server's v2, as Parchment Digital Badges and the older
 * api.*badgr.io serve it): every answer with a body is an envelope
 * {"status": {"success", "description"}, "result": [...]}, and a refusal
 * adds "fieldErrors" (an object; a value is a list of texts, one text, or
 * the same shapes nested) and "validationErrors" (a list of texts).
 */
#ifndef BACKENDS_BADGR_H
#define BACKENDS_BADGR_H

#include "base/base.h"
#include "backends/backends.h"
#include "net/net.h"

#include <jansson.h>

/* ---- the backend ----------------------------------------------------------- */

/*
 * A backend that issues through the Badgr v2 API at s->base_url, as issuer
 * s->issuer (the caller owns it: backend_destroy). It copies `s`. Its
 * calls share one OAuth token kept in memory, send at most s->rate
 * requests a second, and reach s->host only (TLS verified, no redirects).
 */
struct backend *backend_badgr_new(const struct badgr_settings *s, struct err *err);

/* ---- answers -------------------------------------------------------------- */

/* What an answer comes to. */
enum badgr_kind {
    BADGR_OK,               /* a 2xx envelope with success true: `result` is its list */
    BADGR_RETRY,            /* no answer, 5xx, 429, no envelope: again later, looked up first */
    BADGR_AUTH,             /* a certificate that does not verify, an address refused */
    BADGR_PERMANENT,        /* refused for good; `message` names the field */
    BADGR_UNAUTHORIZED,     /* 401: renew the token once and send once more */
    BADGR_NOT_FOUND,        /* 404: `message` names the entity */
    BADGR_DUPLICATE,        /* "A previous award of this badge already exists ..." */
    BADGR_FUTURE_ISSUED_ON, /* issuedOn refused as in the platform's future (clock skew) */
    BADGR_ALREADY_REVOKED,  /* "Assertion is already revoked" */
};

struct badgr_reply {
    enum badgr_kind kind;
    int64_t retry_after;                     /* seconds, 0: none */
    char message[LIMIT_AWARD_ERROR_LEN + 1]; /* safe to show: no token, no body beyond texts */
    json_t *doc;                             /* the answer's JSON, NULL when it had none */
    json_t *result; /* BADGR_OK: the envelope's result list, borrowed from doc */
};

/*
 * Reads one answer of the v2 API. The status is net_http_classify()'s (the
 * one reading of every remote call's answer); on top of it: the envelope
 * is checked on every answer, a 2xx with success true is BADGR_OK and a
 * 2xx without the envelope BADGR_RETRY (the work may be done: look it up
 * before sending again), 401 is BADGR_UNAUTHORIZED, a 404 with the
 * envelope BADGR_NOT_FOUND ("ENTITY not found at badgr, or this account is
 * not staff of its issuer") and one without it BADGR_AUTH (base_url is not
 * the API), a 4xx refusal BADGR_PERMANENT naming each field ("image:
 * Invalid PNG") or one of the three refusals callers act on. `entity`
 * names what the call was about ("BadgeClass 'ID'"). Release with
 * backend_badgr_reply_release().
 */
void backend_badgr_reply(const struct net_http_response *resp, const char *entity,
                         struct badgr_reply *out /* OUT */);
void backend_badgr_reply_release(struct badgr_reply *r);
/*
 * The first entity of a BADGR_OK reply: its entityId into `id` and its
 * openBadgeId (may be "") into `url`; -1 when there is none (a 2xx without
 * an entityId: the work may be done, look it up before sending again).
 */
int backend_badgr_entity(const struct badgr_reply *r, char *id, size_t idlen, char *url,
                         size_t urllen);

/* ---- the OAuth token ---------------------------------------------------------- */

/* What the token endpoint needs of the settings. All borrowed. */
struct badgr_creds {
    bool client_credentials; /* false: the password grant */
    const char *username, *password;
    const char *client_id; /* the password grant's client ("public" by default) */
    const char *client_secret;
};

/*
 * The token of one backend, shared by its calls (the caller holds a lock
 * around every function below). In memory only. A new grant is asked for
 * when there is no token or no refresh token; a refresh when the access
 * token is due (a tenth of its life before it expires, at most 5 minutes
 * before); nothing while a refused grant (LIMIT_BADGR_REFUSED_WAIT) or a
 * login back-off (the platform's `expires`) lasts.
 */
struct badgr_token {
    char access[LIMIT_BADGR_TOKEN_LEN + 1];  /* "": none */
    char refresh[LIMIT_BADGR_TOKEN_LEN + 1]; /* "": none (client credentials send none) */
    int64_t renew_at;                        /* renew the access token from then on */
    int64_t wait_until;                      /* no token request before then */
    enum backend_status wait_status;         /* what a call gets meanwhile: AUTH or RETRY */
    char wait_message[LIMIT_AWARD_ERROR_LEN + 1];
    uint64_t generation; /* bumps with each new access token */
};

enum badgr_token_step {
    BADGR_TOKEN_USE,     /* the access token is good: send with it */
    BADGR_TOKEN_REFRESH, /* ask for a new pair with the refresh token */
    BADGR_TOKEN_GRANT,   /* ask for a new token with the credentials */
    BADGR_TOKEN_WAIT,    /* no request now: wait_status, wait_message, until wait_until */
};

/* An empty token (nothing asked for yet). */
void backend_badgr_token_init(struct badgr_token *t);
/* What to do at `now` (seconds). */
enum badgr_token_step backend_badgr_token_step(const struct badgr_token *t, int64_t now);
/*
 * The token request of `step` (REFRESH or GRANT): the form body (never a
 * query string) into `form`, and the Authorization header's value into
 * `authorization` (HTTP Basic for client credentials; left empty for the
 * password grant, whose client goes in the form). Scope rw:issuer.
 */
int backend_badgr_token_request(const struct badgr_creds *c, const struct badgr_token *t,
                                enum badgr_token_step step, struct buf *form,
                                struct buf *authorization, struct err *err);
/*
 * Takes the token endpoint's answer to a request of `step` at `now`. On a
 * token: stores it (and the rotated refresh token; none kept when none
 * came) and leaves `r` ok. A refused refresh token is dropped (the next
 * step is a grant, at once) and `r` says RETRY with no wait. A refused
 * grant (invalid_grant, invalid_client, an unknown client, a scope the
 * application does not allow) sets AUTH naming the fix and waits
 * LIMIT_BADGR_REFUSED_WAIT; 429 "login attempts throttled" waits its
 * `expires` (it sends no Retry-After); anything else is RETRY.
 */
void backend_badgr_token_answer(struct badgr_token *t, const struct badgr_creds *c,
                                enum badgr_token_step step, const struct net_http_response *h,
                                int64_t now, struct backend_result *r);
/*
 * A call with the access token of `generation` got 401: that token is
 * dropped unless a newer one came meanwhile (another call renewed it), so
 * the next step renews it.
 */
void backend_badgr_token_rejected(struct badgr_token *t, uint64_t generation);

/* ---- request bodies ---------------------------------------------------------------- */

/*
 * The JSON of a BadgeClass create or update (PUT takes every field): name,
 * description, image as a data URI, criteriaUrl and/or criteriaNarrative
 * (the description when there is neither), tags (ours, the issuing
 * component, bc->marker), alignments, expires {amount, duration: days}
 * when it expires. The caller frees the text.
 */
int backend_badgr_badge_body(const struct backend_badge *bc, char **out /* OUT */, struct err *err);
/*
 * The JSON of an assertion: recipient {identity: the lower-cased address,
 * type: email, hashed}, issuedOn (when the award was earned; left out with
 * `with_issued_on` false), expires, the evidence narrative, notify and
 * allowDuplicateAwards false. The caller frees the text.
 */
int backend_badgr_assertion_body(const struct backend_award *a, bool hashed, bool notify,
                                 bool with_issued_on, char **out /* OUT */, struct err *err);
/* The id of the (oldest) BadgeClass of `list` tagged `marker`; false when none is. */
bool backend_badgr_find_marked(json_t *list, const char *marker, char *id, size_t idlen);
/*
 * The assertion of `list` for `email` (compared lower-cased with
 * plaintextIdentity), an unrevoked one first, then the oldest: its
 * entityId, openBadgeId and whether it is revoked.
 */
bool backend_badgr_find_recipient(json_t *list, const char *email, char *id, size_t idlen,
                                  char *url, size_t urllen, bool *revoked /* OUT */);

#endif
