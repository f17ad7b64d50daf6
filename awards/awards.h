/*
 * awards/awards.h - the domain: what earns a badge, the outbox worker that
 * issues awards through the backends, and the hosted issuer's documents.
 *
 * Everything that can earn a badge (a first launch in a course, a grade, a
 * manual grant) enters through one function of this module and is stored,
 * together with the awards it earns, in one transaction before anything is
 * sent anywhere. The worker then issues what is due, and a crash anywhere
 * leaves a row that the next worker finishes: nothing is lost, and (with
 * the backend's idempotent issue or its find_assertion) nothing is issued
 * twice.
 */
#ifndef AWARDS_AWARDS_H
#define AWARDS_AWARDS_H

#include "base/base.h"
#include "backends/backends.h"
#include "store/store.h"

struct awards;

struct awards_config {
    const char *public_url; /* ids of hosted documents live under it (see awards_set_public_url) */
    const char *issuer_name, *issuer_url, *issuer_email, *issuer_description, *issuer_image_url;
    const char *default_backend; /* [awards] backend; NULL: hosted */
    int64_t lease;               /* [awards] lease: seconds; 0: LIMIT_AWARDS_LEASE */
};

/*
 * Sets up rules and backends over `store` (which must outlive it) and hooks
 * the enrollment rules into the launch writer.
 */
int awards_new(struct awards **out /* OUT */, struct store *store, const struct awards_config *cfg,
               struct err *err);
/*
 * Sets the public base URL (normalized, no trailing slash) once the server
 * knows it; before it serves or issues anything, since it is read unlocked.
 */
void awards_set_public_url(struct awards *a, const char *public_url);
/* Stops the worker if it runs. NULL is a no-op. */
void awards_free(struct awards *a);

/* Registers a backend under `name` (taking ownership); "hosted" is always there. */
void awards_add_backend(struct awards *a, const char *name, struct backend *b);
/*
 * Where the BadgeClasses of a consumer without its own backend go
 * ([awards] backend): for store_badge_new.default_backend. Borrowed, valid
 * until awards_free().
 */
const char *awards_default_backend(struct awards *a);
/* The built-in issuer's name ([issuer] name, "ltibadges" by default); borrowed, lives with `a`. */
const char *awards_issuer_name(struct awards *a);
/*
 * The name of the issuer the badges of backend `name` are issued as: the
 * built-in issuer's for "hosted" (or NULL), a remote backend's issuer_name;
 * NULL when that is not known (not given, or no such backend). Borrowed,
 * lives with `a`.
 */
const char *awards_backend_issuer_name(struct awards *a, const char *name);
/* Whether a backend of that name exists. */
bool awards_has_backend(struct awards *a, const char *name);
/* When the credentials of backend `name` expire (a client certificate's notAfter), 0: never. */
int64_t awards_backend_expires(struct awards *a, const char *name);

/* ---- events (rules.c) ----------------------------------------------------- */

/* What an event did. */
struct awards_outcome {
    int awards_added;
    int awards_revoked; /* awards whose grade was withdrawn (revoke_on_withdrawn) */
    bool completed;     /* the grade completed the course (now or before) */
    bool existed;       /* delete: there was a grade */
};

/*
 * A grade (0.0..1.0) for a learner on a resource link: stored, then score,
 * completion, course-group and count rules are judged. Users, courses and
 * links not seen yet are recorded bare. `source` says who reported it.
 */
int awards_grade(struct awards *a, int64_t consumer_id, const char *lti_user_id,
                 const char *lti_context_id, const char *lti_resource_link_id, double score,
                 const char *source, struct awards_outcome *out /* OUT, may be NULL */,
                 struct err *err);
/*
 * A grade deleted (an LMS's deleteResult): removed, and the awards it earned
 * are revoked where their BadgeClass revokes on withdrawn grades; issued
 * badges stay otherwise.
 */
int awards_grade_delete(struct awards *a, int64_t consumer_id, const char *lti_user_id,
                        const char *lti_context_id, const char *lti_resource_link_id,
                        struct awards_outcome *out /* OUT, may be NULL */, struct err *err);
/*
 * A manual award of BadgeClass `slug` to a user of the consumer, with an
 * evidence narrative (may be NULL). *added is false when the user had it.
 */
int awards_grant(struct awards *a, const char *slug, int64_t consumer_id, const char *lti_user_id,
                 const char *narrative, int64_t *award_id /* OUT, may be NULL */,
                 bool *added /* OUT */, struct err *err);

/* ---- setting BadgeClasses up (badgeclass.c) ------------------------------- */

/* Whether `u` is an http(s) URL. */
bool awards_http_url(const char *u);
/* A text field: at most `max` bytes, UTF-8, no control characters but tab and newlines. */
int awards_text_ok(const char *v, size_t max, const char *what, struct err *err);
/* Tags as the JSON array the store keeps (malloc'd); ERR_INVALID for an empty or long tag. */
int awards_tags_json(const char *const *tags, size_t n, char **out /* OUT */, struct err *err);
/* 'NAME|URL[|DESCRIPTION|FRAMEWORK|CODE]' specs as a JSON array of AlignmentObjects. */
int awards_alignments_json(const char *const *specs, size_t n, char **out /* OUT */,
                           struct err *err);
/* An alignment as a form's row of fields: name, URL, description, framework, code. */
#define AWARDS_ALIGNMENT_FIELDS 5
struct awards_alignment {
    const char *field[AWARDS_ALIGNMENT_FIELDS]; /* NULL or "": not given */
};
/*
 * Rows as the JSON array of AlignmentObjects the store keeps (malloc'd),
 * written as awards_alignments_json() writes the same parts: fields trimmed,
 * empty ones left out. ERR_INVALID when a row lacks a name or an http(s)
 * URL (*bad: its index; may be NULL) or there are too many.
 */
int awards_alignments_rows_json(const struct awards_alignment *rows, size_t n, char **out /* OUT */,
                                size_t *bad /* OUT */, struct err *err);
/* The stored JSON's alignments as rows (strings in `a`), at most `max`; returns how many. */
size_t awards_alignments_rows(const char *json, struct awards_alignment *rows, size_t max,
                              struct arena *a);
/* Back to text for a form: tags "a, b", alignments one spec per line. */
void awards_tags_text(const char *json, struct buf *out);
void awards_alignments_text(const char *json, struct buf *out);
/*
 * Who `rule` would award now from the facts stored (learners holding
 * `badge_id` left out; 0: a BadgeClass not saved yet), at most `limit`
 * (0: all), in `arena`.
 */
int awards_rule_candidates(struct awards *a, int64_t consumer_id, int64_t context_id,
                           int64_t badge_id, const char *mode, const struct store_rule *rule,
                           size_t limit, struct arena *arena,
                           struct store_candidate **out /* OUT */, size_t *n /* OUT */,
                           struct err *err);
/*
 * Awards BadgeClass `badge_id` to everyone its rule already finds (nothing
 * while it is archived or its course has badges off); *added: how many.
 */
int awards_backfill(struct awards *a, int64_t badge_id, size_t *added /* OUT */, struct err *err);
/* The same for every live BadgeClass of a course (its badges just turned on). */
int awards_backfill_course(struct awards *a, int64_t context_id, size_t *added /* OUT */,
                           struct err *err);
/* One learner of a manual award from a course's page. */
struct awards_grant_to {
    int64_t user_id;       /* the store's id of the user */
    const char *narrative; /* evidence narrative, may be NULL */
    int64_t award_id;      /* OUT: the award (theirs already when !added) */
    bool added;            /* OUT: false when they had it */
};
/*
 * Manual awards from course `context_id`'s page: the live BadgeClass
 * `slug`, of this course or a course-less one of the consumer, to `n`
 * users enrolled in the course as learners (none of LTI_ROLES_STAFF),
 * each with their own narrative, recorded in this course. All of them in
 * one transaction: when the BadgeClass or one user does not qualify, it is
 * ERR_FORBIDDEN (ERR_NOTFOUND for an unknown slug) and nothing is awarded.
 * Wakes the worker when something was.
 */
int awards_grant_course(struct awards *a, int64_t consumer_id, int64_t context_id, const char *slug,
                        struct awards_grant_to *to, size_t n, struct err *err);

/* The default image of BadgeClasses made for a course's first completion (SVG). */
extern const char awards_default_image_svg[];
/* Its width and height in pixels, also of its PNG. */
#define AWARDS_DEFAULT_IMAGE_SIZE 256
/*
 * The same image as a PNG (drawn with images/'s image_draw_png from the
 * shapes the SVG draws, once, when first asked for; kept for the process's
 * life): for a platform that takes no SVG. False (*png NULL) when it could
 * not be drawn (logged).
 */
bool awards_default_image_png(const unsigned char **png /* OUT */, size_t *len /* OUT */);
/* Whether an image is awards_default_image_svg, byte for byte. */
bool awards_is_default_image(const char *type, const unsigned char *img, size_t len);
/*
 * The one SVG rule, for store_set_svg_rule() before any store is opened:
 * image_svg_sanitize, with the default image replacing a stored SVG the
 * rule cannot read at all (migration 7).
 */
extern const struct store_svg_rule awards_svg_rule;

/* ---- the worker (worker.c) ------------------------------------------------ */

/*
 * Starts the outbox worker threads: "lb-awards" for the built-in issuer
 * (and any other backend that calls no other server), and one for each
 * remote backend ("lb-b-NAME"), so that a platform that hangs delays only
 * its own awards. Each backend is given a cancel hook that says "stop" once
 * awards_worker_request_stop() was called.
 */
int awards_worker_start(struct awards *a, struct err *err);
/*
 * Stops them after the award in hand is recorded; a remote call under way
 * gives up within about a second (recorded as a retry: it is looked up
 * before it is sent again). Awards not attempted are left as they were.
 */
void awards_worker_stop(struct awards *a);
/*
 * Tells the award worker and the outcomes reader to stop after what they
 * are doing, without waiting for them: a stop then waits for their database
 * waits at the same time as for the server's (awards_worker_stop joins).
 */
void awards_worker_request_stop(struct awards *a);
/* Tells the worker new awards are due (it also looks once a second). */
void awards_wake(struct awards *a);
/*
 * Issues what is due at `now` through the backends that call no other
 * server (hosted), one claim of at most LIMIT_AWARDS_CLAIM awards recorded
 * in one transaction, then sends their BadgeClass edits; *handled says how
 * many awards were claimed. The worker loops on this; tests call it
 * directly.
 */
int awards_run_due(struct awards *a, int64_t now, size_t *handled /* OUT */, struct err *err);
/*
 * The same for the remote backend `name`: claims due awards one at a time
 * (each with a lease of LIMIT_AWARDS_REMOTE_LEASE), up to `most` of them,
 * records what came of each at once (with the claim of the next, in one
 * transaction), and sends up to LIMIT_AWARDS_SYNCS of its BadgeClasses'
 * edits. An award attempted before is looked up (find_assertion) before it
 * is sent again; a BadgeClass is searched for by its marker
 * (find_badge_class) before it is created; the issue date sent is when the
 * award was earned. Its thread loops on this; tests call it directly.
 */
int awards_run_backend(struct awards *a, const char *name, int64_t now, size_t most,
                       size_t *handled /* OUT */, struct err *err);

struct awards_stats {
    uint64_t issued, retried, failed, revoked;
    int64_t last_success; /* unix time, 0: never */
};
void awards_stats(struct awards *a, struct awards_stats *out);
/*
 * The backends whose last answer was BACKEND_AUTH (their credentials were
 * refused: an operator must act), for /healthz: up to `max` names
 * (borrowed, valid until awards_free()); returns how many.
 */
size_t awards_backends_in_auth(struct awards *a, const char **names /* OUT */, size_t max);

/* The retry delay after `attempts` failed attempts, honouring a retry-after (seconds). */
int64_t awards_backoff(int64_t attempts, int64_t retry_after, unsigned jitter_seed);

/* ---- LTI Basic Outcomes to the LMS (outcomes.c) --------------------------- */

struct awards_outcomes_config {
    int64_t read_interval; /* seconds between reads of a binding's LMS grade; 0: at launch only */
    double rate;           /* requests per consumer per second */
    long connect_timeout_ms, timeout_ms;
    bool allow_loopback; /* outcome services on 127.0.0.1 / ::1 (tests, a tool beside its LMS) */
    const char *ca_file; /* NULL: the system's CA bundle */
};
/* 15 minutes, 10 requests a second, 5 s to connect, 20 s in all, no loopback. */
void awards_outcomes_config_init(struct awards_outcomes_config *cfg);
/* Before the worker starts. */
void awards_outcomes_configure(struct awards *a, const struct awards_outcomes_config *cfg);
/* A learner launched with an outcome binding in `context_id`: read their LMS grades soon. */
void awards_outcomes_launched(struct awards *a, int64_t user_id, int64_t context_id);
/* Passbacks are due (an award was issued). */
void awards_outcomes_wake(struct awards *a);
/*
 * One pass: the due passbacks, the reads asked for by launches, and one
 * batch of periodic reads; *handled counts them. The worker loops on this
 * (started and stopped with the award worker); tests call it directly.
 */
int awards_outcomes_run(struct awards *a, int64_t now, size_t *handled /* OUT */, struct err *err);
int awards_outcomes_start(struct awards *a, struct err *err);
void awards_outcomes_stop(struct awards *a);

/* ---- webhooks in (hooks.c) ------------------------------------------------ */

/*
 * Takes hooks for the BadgeKit backend `name` (registered with
 * awards_add_backend), checked with `secret` (copied; "": every hook
 * refused). Before the server starts.
 */
void awards_badgekit_hooks(struct awards *a, const char *name, const char *secret);
/*
 * A hook posted to backend `name` (POST /hooks/badgekit/NAME) with its
 * `authorization` header (NULL: none) and raw `body`: verified
 * (backend_badgekit_hook_verify), read, and applied to the award it names
 * (store_hook_apply) with the revoke reason "revoked in BadgeKit", or
 * counted only (review hooks, other instances). *effect: "issued",
 * "revoked", "unchanged" or "ignored". ERR_NOTFOUND: no BadgeKit backend
 * of that name; ERR_FORBIDDEN: its webhook_secret is empty;
 * ERR_UNAUTHORIZED: not signed as BadgeKit signs; ERR_INVALID: not a hook.
 * Nothing changes on a refusal but its count.
 */
int awards_badgekit_hook(struct awards *a, const char *name, const char *authorization,
                         const void *body, size_t len, const char **effect /* OUT */,
                         struct err *err);

/* ---- hosted Open Badges documents (ob.c) ---------------------------------- */

struct awards_doc {
    char *body; /* malloc'd */
    size_t len;
    const char *content_type;
    unsigned status; /* 200, or 410 for a revoked assertion */
};

int awards_ob_issuer(struct awards *a, struct awards_doc *out, struct err *err);
int awards_ob_badge(struct awards *a, const char *slug, struct awards_doc *out, struct err *err);
int awards_ob_badge_image(struct awards *a, const char *slug, struct awards_doc *out,
                          struct err *err);
int awards_ob_assertion(struct awards *a, const char *uid, struct awards_doc *out, struct err *err);
int awards_ob_assertion_image(struct awards *a, const char *uid, struct awards_doc *out,
                              struct err *err);
int awards_ob_revocations(struct awards *a, struct awards_doc *out, struct err *err);

#endif
