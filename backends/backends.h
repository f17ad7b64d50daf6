/*
 * backends/backends.h - one small interface in front of every issuing
 * platform: make sure a BadgeClass exists there (create it, find one
 * created before whose answer was lost, verify an id an operator gave,
 * update it), issue an assertion, revoke it, find one issued before, and
 * check the credentials. Every call answers ok, retryable (with an optional
 * retry-after), auth (the credentials were refused after a refresh) or
 * permanent (with the platform's message). Backends know nothing of the
 * database: awards/ gives them plain structs and records what they answer.
 * Remote ones call their platform through net/ (net_http_send), and read
 * its answers through backend_result_http(), as the grade passback does.
 *
 * Threads. A backend is called by one thread at a time and may keep state
 * (a token, a connection) between calls without locks: in `serve`, the
 * award worker's thread for it (hosted: "lb-awards"; each remote backend
 * has its own, so a platform that hangs delays only its own awards); in a
 * command (`badge create --backend-id`, `backend check`), the command's
 * thread, with no server running in that process. Calls block up to the
 * backend's timeouts, and give up within about a second once
 * b->cancelled(b->cancelled_cls) says so (a stopping server), answering
 * BACKEND_RETRY: whatever was under way may have happened at the platform,
 * and the worker looks it up before sending it again.
 */
#ifndef BACKENDS_BACKENDS_H
#define BACKENDS_BACKENDS_H

#include "base/base.h"
/* named backends: their configuration sections and backend_from_settings() */
#include "backends/registry.h"

enum backend_status {
    BACKEND_OK,
    BACKEND_RETRY,     /* network, 5xx, 429: try again later */
    BACKEND_AUTH,      /* credentials refused: an operator must act; retried slowly */
    BACKEND_PERMANENT, /* the platform refused this request for good */
};

struct backend_result {
    enum backend_status status;
    int64_t retry_after;                     /* seconds the platform asked us to wait, 0: none */
    char message[LIMIT_AWARD_ERROR_LEN + 1]; /* what went wrong, for instructors and operators */
    bool found;                              /* find_assertion, find_badge_class: one exists */
    bool revoked;                /* find_assertion: the one found is revoked at the platform */
    char id[512];                /* the platform's id (BadgeClass or assertion) */
    char url[LIMIT_LTI_URL_LEN]; /* the assertion's public URL */
    char name[LIMIT_BADGE_NAME_LEN + 1]; /* check: the issuer's name at the platform */
};

/*
 * The tag that marks a BadgeClass as this server's, so that one created
 * whose answer was lost can be found again (find_badge_class) before
 * another is made: "ltibadges:" + the first 12 hex digits of the SHA-256
 * of the server's public URL + ":" + the slug (at most BACKEND_MARKER_LEN
 * bytes, as slugs are at most LIMIT_SLUG_LEN).
 */
#define BACKEND_MARKER_LEN (10 + 12 + 1 + LIMIT_SLUG_LEN)
void backend_marker(const char *public_url, const char *slug, char out[BACKEND_MARKER_LEN + 1]);

/* A BadgeClass as backends see it. */
struct backend_badge {
    const char *slug, *name, *description;
    const char *image_type; /* image/png or image/svg+xml */
    const unsigned char *image;
    size_t image_len;
    /*
     * When `image` is our default SVG (no image of the badge's own): the
     * same drawing as a PNG, for a platform that takes PNG only (Open Badge
     * Factory); NULL otherwise. Borrowed, valid for the process's life.
     */
    const unsigned char *default_png;
    size_t default_png_len;
    const char *criteria_url, *criteria_narrative;
    const char *issuing_component; /* sent as one more tag */
    const char *tags;              /* JSON array of strings */
    const char *alignments;        /* JSON array of alignment objects */
    int64_t expires_days;
    const char *backend_id; /* the platform's id; NULL until created (or given by an operator) */
    const char *marker;     /* backend_marker(): sent as one more tag, searched by
                               find_badge_class; NULL for hosted */
    const char *public_url; /* remote backends: this server's public URL, whose pages a
                               platform may link to (image, criteria); NULL for hosted */
};

/* An award as backends see it. */
struct backend_award {
    const char *uid;  /* ours, unguessable */
    const char *salt; /* for hashing the recipient */
    const char *recipient_email;
    const char *recipient_name; /* the learner's name as the LMS gave it; may be NULL */
    const char *narrative;      /* evidence narrative */
    const char *evidence_name;  /* e.g. the course title */
    const char *evidence_url;   /* may be NULL */
    const char *course;         /* the course's title, or its LTI context id; may be NULL */
    const char *consumer;       /* the consumer's key; may be NULL */
    const char *assertion_id;   /* revoke: the platform's id; NULL when not known */
    /*
     * issued_at: when the award was earned, the issuedOn sent, the same on
     * every attempt (a platform that refuses it as being in its future may
     * be sent none); expires_at: 0, never.
     */
    int64_t issued_at, expires_at;
};

struct backend;

/*
 * What a backend can do. Every op fills `r` (backend_result_init() first)
 * and says ok, retry, auth or permanent. Ops marked "may be NULL" are left
 * out by backends to which they do not apply.
 */
struct backend_ops {
    const char *name; /* the type: "hosted", "badgr" */
    /*
     * true: calls another server. The worker then gives the backend its own
     * thread and claims, looks an award up before sending it again, and
     * finds a BadgeClass before creating it again.
     */
    bool remote;
    /*
     * Whether the credentials work and the issuer can be read: ok with
     * r->name the issuer's name, or auth/retry/permanent saying exactly
     * what is wrong. May be NULL (nothing to check).
     */
    void (*check)(struct backend *b, struct backend_result *r);
    /*
     * Whether the BadgeClass `id` an operator gave exists at the platform
     * and is this backend's issuer's: ok (r->id the id as the platform
     * spells it), permanent with why ("not found", "belongs to issuer X"),
     * or retry/auth. Nothing is created. May be NULL (ids are not given).
     */
    void (*verify_badge_class)(struct backend *b, const char *id, struct backend_result *r);
    /*
     * A BadgeClass created earlier for bc (bc->backend_id NULL) whose
     * answer was lost: searched by bc->marker. ok with r->found and r->id
     * when there is one, ok without r->found when not. May be NULL
     * (creating is idempotent).
     */
    void (*find_badge_class)(struct backend *b, const struct backend_badge *bc,
                             struct backend_result *r);
    /* Creates bc at the platform (bc->backend_id NULL): r->id is the platform's id. */
    void (*create_badge_class)(struct backend *b, const struct backend_badge *bc,
                               struct backend_result *r);
    /*
     * Sends every field of bc to the BadgeClass bc->backend_id (after an
     * edit). May be NULL (the platform reads our record).
     */
    void (*update_badge_class)(struct backend *b, const struct backend_badge *bc,
                               struct backend_result *r);
    /*
     * Issues an assertion of bc (bc->backend_id set): r->id, r->url. An ok
     * answer with r->message set is a note kept on the award (badgekit: an
     * assertion the learner held already, adopted); so is one of
     * find_assertion's.
     */
    void (*issue)(struct backend *b, const struct backend_badge *bc, const struct backend_award *a,
                  struct backend_result *r);
    /*
     * Revokes the assertion a->assertion_id with `reason`. One already
     * revoked, or gone from the platform, is ok.
     */
    void (*revoke)(struct backend *b, const struct backend_badge *bc, const struct backend_award *a,
                   const char *reason, struct backend_result *r);
    /*
     * An assertion of bc the platform holds for the award's recipient
     * (a->recipient_email, compared as the platform does), issued earlier
     * for this award and not recorded (a lost answer), or before by other
     * means: ok with r->found, r->id, r->url and r->revoked when there is
     * one (an unrevoked one preferred), ok without r->found when not.
     */
    void (*find_assertion)(struct backend *b, const struct backend_badge *bc,
                           const struct backend_award *a, struct backend_result *r);
    void (*destroy)(struct backend *b);
};

struct backend {
    const struct backend_ops *ops;
    void *self;
    /* NULL, or asked by long calls about once a second: true gives up (see above) */
    bool (*cancelled)(void *cls);
    void *cancelled_cls;
    /* when its credentials stop working (a client certificate's notAfter), 0: never */
    int64_t credentials_expire_at;
    /*
     * The name of the issuer it issues as, for people (LinkedIn's
     * organizationName): [backend.NAME] issuer_name; "" when not given
     * (hosted: [issuer] name, awards_backend_issuer_name()).
     */
    char issuer_name[LIMIT_BADGE_NAME_LEN + 1];
};

/* Credentials that expire within this many seconds are warned about (check, serve, instructors). */
#define BACKEND_EXPIRY_WARNING (30 * 86400)

/* Resets a result to ok with nothing found. */
void backend_result_init(struct backend_result *r);
/* Sets a result's status and message. */
void backend_result_set(struct backend_result *r, enum backend_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void backend_destroy(struct backend *b);
/*
 * For remote backends: sleeps until the monotonic `until_ns` (a rate
 * limit's turn, a Retry-After), asking b's cancel hook at least once a
 * second; false when it says to stop (then nothing is to be sent).
 */
bool backend_sleep_until(struct backend *b, int64_t until_ns);

struct net_http_response;
/*
 * Reads an HTTP answer into `r` through net_http_classify(), so that every
 * backend and the grade passback agree on what an answer means: the status
 * (ok, retry with the server's Retry-After, auth, permanent), and, when
 * not ok, the message "WHAT: HTTP 503" (or the network's neutral words).
 * A backend then adds what the platform's body says. `what` is e.g.
 * "creating the BadgeClass".
 */
void backend_result_http(struct backend_result *r, const struct net_http_response *resp,
                         const char *what);

/* ---- BadgeKit webhooks in (badgekit_hook.c) ------------------------------ */

/*
 * Whether a hook BadgeKit posted is signed as BadgeKit signs them: the
 * `Authorization` header (NULL: none) is JWT token="H.P.S", HS256 (in any
 * case; no other algorithm, `none` included) with `secret`, the MAC
 * compared in constant time, and its payload's body {alg: "sha256", hash}
 * the SHA-256 of the raw `body`. ERR_UNAUTHORIZED saying which check
 * failed (never the secret); ERR_FORBIDDEN for an empty `secret` (hooks
 * off).
 */
int backend_badgekit_hook_verify(const char *secret, const char *authorization, const void *body,
                                 size_t len, struct err *err);

enum backend_badgekit_hook_action {
    BADGEKIT_HOOK_AWARD,  /* an instance was created */
    BADGEKIT_HOOK_REVOKE, /* an instance was deleted */
    BADGEKIT_HOOK_REVIEW, /* an application was reviewed: nothing of ours */
    BADGEKIT_HOOK_OTHER,  /* an action this version does not know */
};

/* What a hook says; strings are "" when absent. */
struct backend_badgekit_hook {
    enum backend_badgekit_hook_action action;
    char uid[LIMIT_BADGEKIT_SLUG_LEN + 1];   /* award, revoke: the instance's slug (ours: a uid) */
    char badge[LIMIT_BADGEKIT_SLUG_LEN + 1]; /* the badge's slug */
    char email[LIMIT_BADGEKIT_SLUG_LEN + 1]; /* the earner's */
    char assertion_url[LIMIT_LTI_URL_LEN];   /* award: http(s) */
    int64_t issued_on;                       /* award: Unix seconds, 0: not given */
};

/*
 * Reads a verified hook's body (`len` bytes): a JSON object with `action`;
 * an award or revoke names its instance (`uid`), an award its http(s)
 * `assertionUrl`. ERR_INVALID saying what is wrong.
 */
int backend_badgekit_hook_parse(const void *body, size_t len,
                                struct backend_badgekit_hook *out /* OUT */, struct err *err);

/* ---- hosted: ltibadges is the issuer (hosted.c) ------------------------- */

struct hosted_issuer {
    const char *public_url; /* base of every id: PUBLIC/ob/v2/... */
    const char *name, *url, *email, *description;
    const char *image_url; /* NULL: none */
};

/* The built-in issuer: ids are URLs under public_url; issuing is idempotent by the award's uid. */
struct backend *backend_hosted_new(const struct hosted_issuer *issuer);

/* The Open Badges 2.0 documents it serves, as JSON text (the caller frees). */
char *backend_hosted_issuer_json(const struct hosted_issuer *is);
char *backend_hosted_badge_json(const struct hosted_issuer *is, const struct backend_badge *bc);
/* `revoked_reason` non-NULL: the short revoked form (served with 410). */
char *backend_hosted_assertion_json(const struct hosted_issuer *is, const struct backend_badge *bc,
                                    const struct backend_award *a, const char *revoked_reason);
/* The revocation list: `uids` and `reasons` of revoked assertions. */
char *backend_hosted_revocations_json(const struct hosted_issuer *is, const char *const *uids,
                                      const char *const *reasons, size_t n);
/* URLs of the documents. */
void backend_hosted_badge_url(const struct hosted_issuer *is, const char *slug, struct buf *out);
void backend_hosted_assertion_url(const struct hosted_issuer *is, const char *uid, struct buf *out);

/* ---- Open Badge Factory API v1 enrolment (obf.c), for `backend obf-enrol` ---- */

/* What `backend obf-enrol` gets: the client, its new certificate and key (PEM). */
struct obf_enrolment {
    char client_id[65];
    struct buf cert_pem, key_pem;
    int64_t not_after;
};
/*
 * v1 enrolment at s->base_url: fetches /v1/client/OBF.rsa.pub, decodes
 * `api_key` (backend_obf_api_key; its client must be s->client_id, and an
 * expired key is refused saying so), makes an RSA key and a CSR for
 * commonName = the client id, POSTs /v1/client/{id}/sign_request
 * {signature: the API key, request: the CSR}, and checks that the answer is
 * a certificate of that key. Nothing is written: the caller writes the
 * files. Release with backend_obf_enrolment_release() (it wipes the key).
 */
int backend_obf_enrol(const struct obf_settings *s, const char *api_key, size_t keylen,
                      struct obf_enrolment *out /* OUT */, struct err *err);
void backend_obf_enrolment_release(struct obf_enrolment *e);

#endif
