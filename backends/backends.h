/*
 * backends/backends.h - one small interface in front of every issuing
 * platform: make sure a BadgeClass exists there, issue an assertion, revoke
 * it, find one issued before. Every call answers ok, retryable (with an
 * optional retry-after), auth (the credentials were refused after a
 * refresh) or permanent (with the platform's message). Backends know
 * nothing of the database or HTTP requests: awards/ gives them plain
 * structs and records what they answer.
 */
#ifndef BACKENDS_BACKENDS_H
#define BACKENDS_BACKENDS_H

#include "base/base.h"

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
    bool found;                              /* find_assertion: one exists */
    char id[512];                            /* the platform's id (BadgeClass or assertion) */
    char url[LIMIT_LTI_URL_LEN];             /* the assertion's public URL */
};

/* A BadgeClass as backends see it. */
struct backend_badge {
    const char *slug, *name, *description;
    const char *image_type; /* image/png or image/svg+xml */
    const unsigned char *image;
    size_t image_len;
    const char *criteria_url, *criteria_narrative;
    const char *issuing_component; /* sent as one more tag */
    const char *tags;              /* JSON array of strings */
    const char *alignments;        /* JSON array of alignment objects */
    int64_t expires_days;
    const char *backend_id; /* NULL until ensure_badge_class stored one */
};

/* An award as backends see it. */
struct backend_award {
    const char *uid;  /* ours, unguessable: the idempotency key */
    const char *salt; /* for hashing the recipient */
    const char *recipient_email;
    const char *narrative;         /* evidence narrative */
    const char *evidence_name;     /* e.g. the course title */
    const char *evidence_url;      /* may be NULL */
    const char *assertion_id;      /* revoke: the platform's id */
    int64_t issued_at, expires_at; /* expires_at 0: never */
};

struct backend;

struct backend_ops {
    const char *name;
    void (*ensure_badge_class)(struct backend *b, const struct backend_badge *bc,
                               struct backend_result *r);
    void (*issue)(struct backend *b, const struct backend_badge *bc, const struct backend_award *a,
                  struct backend_result *r);
    void (*revoke)(struct backend *b, const struct backend_badge *bc, const struct backend_award *a,
                   const char *reason, struct backend_result *r);
    /* an assertion issued earlier for this award (by its uid), if the platform has one */
    void (*find_assertion)(struct backend *b, const struct backend_badge *bc,
                           const struct backend_award *a, struct backend_result *r);
    void (*destroy)(struct backend *b);
};

struct backend {
    const struct backend_ops *ops;
    void *self;
};

/* Resets a result to ok with nothing found. */
void backend_result_init(struct backend_result *r);
/* Sets a result's status and message. */
void backend_result_set(struct backend_result *r, enum backend_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void backend_destroy(struct backend *b);

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

#endif
