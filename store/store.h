/*
 * store/store.h - everything ltibadges keeps, behind operations.
 *
 * The only module with SQL. Callers see operations (record a launch, find a
 * consumer, read a session) and plain structs, never statements or sqlite
 * types, so that a second engine (PostgreSQL) can implement the same set.
 * Every operation is one transaction.
 *
 * Durability: WAL with synchronous=FULL, so an acknowledged write survives a
 * power cut. Launches are group-committed: concurrent launches are written by
 * one writer thread in one transaction (each in its own savepoint) and
 * acknowledged together after the commit, which costs one fsync for the
 * batch instead of one per launch. The writer also remembers what it last
 * wrote for each user, course, link, enrollment and outcome binding, so a
 * relaunch writes only its nonce and its session, both at the right edge of
 * their b-trees. WAL checkpoints run on their own thread, never on a
 * request's path.
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include "base/base.h"

struct store;
struct store_pg;

enum store_open_flags {
    /* start the launch writer and the checkpointer threads (the server) */
    STORE_OPEN_WRITER = 1 << 0,
    /* do not apply pending migrations (`ltibadges migrate` reports them itself) */
    STORE_OPEN_NO_MIGRATE = 1 << 1,
    /* a missing database is ERR_NOTFOUND instead of being created (every command but serve) */
    STORE_OPEN_NO_CREATE = 1 << 2,
    /*
     * one thread's use (every command but serve): on PostgreSQL the readers
     * are the admin connection, so a command makes one connection, not two
     * (each costs the server a process: about 20 ms of CPU here); sqlite's
     * connections cost nothing and it ignores this
     */
    STORE_OPEN_ONE_CONNECTION = 1 << 3,
};

/*
 * Opens (creating if needed) the database at `path` and applies pending
 * migrations unless STORE_OPEN_NO_MIGRATE. A database it creates is mode
 * 0600 (consumer secrets are in it), and so are the WAL and shared-memory
 * files sqlite makes beside it (sqlite gives them the database's mode).
 * `*out` is NULL on failure.
 */
int store_open(struct store **out /* OUT */, const char *path, unsigned flags, struct err *err);
/*
 * The same, where `path` may be a PostgreSQL URL (postgresql://...; libpq's
 * URL, see store_pg_open): the store then runs on that database, its
 * schema migrated under an advisory lock unless STORE_OPEN_NO_MIGRATE
 * (ERR_NOTFOUND for a database without our schema then), with `pool`
 * reader connections (1 to LIMIT_DB_POOL_MAX) and three more: the admin
 * connection's, the launch writer's, and one for migrations. store_open
 * with a URL takes LIMIT_DB_POOL_DEFAULT readers.
 */
int store_open_pool(struct store **out /* OUT */, const char *path, unsigned pool, unsigned flags,
                    struct err *err);
/*
 * store_open_pool on the connections `pg` a caller opened already
 * (store_pg_open, for the schema check and migrations before it): the
 * store takes them over, also when it fails, and sizes the pool for
 * `pool` readers. Saves a connection.
 */
int store_open_on_pg(struct store **out /* OUT */, struct store_pg *pg, const char *url,
                     unsigned pool, unsigned flags, struct err *err);
/* Stops the writer after the queued launches are written, closes everything. NULL is a no-op. */
void store_close(struct store *s);

/* The newest schema version this build knows, and the version of the open database. */
int store_schema_latest(void);
int store_schema_version(struct store *s, int *version /* OUT */, struct err *err);
/* Applies pending migrations; `*applied` is how many ran (0 when up to date). */
int store_migrate(struct store *s, int *applied /* OUT */, struct err *err);
/* The same, up to schema `version` only (the tests of a migration start from the one before). */
int store_migrate_to(struct store *s, int version, int *applied /* OUT */, struct err *err);

/* ---- Whole files: db version, backup, restore (store/backup.c) --------- */

/* The schema version of the database file at `path`, changing nothing; ERR_NOTFOUND. */
int store_file_version(const char *path, int *version /* OUT */, struct err *err);
/*
 * Copies the database at `path` (ERR_NOTFOUND when missing) into a new
 * file `dest`, made 0600 (ERR_CONFLICT when it exists), with sqlite's
 * online backup: a consistent copy while a server runs. The copy is one
 * file (rollback journal mode). `*version` is its schema version. On
 * failure `dest` is removed.
 */
int store_backup(const char *path, const char *dest, int *version /* OUT */, struct err *err);
/*
 * Checks that the file at `path` is an ltibadges database this build can
 * open: sqlite's integrity_check passes, its tables are there, its schema
 * version is from 1 to store_schema_latest(). ERR_INVALID saying which.
 */
int store_check_file(const char *path, int *version /* OUT */, struct err *err);
/*
 * Replaces the content of the database at `path` (made 0600 when missing)
 * with the backup `src`, once store_check_file() accepts it. ERR_CONFLICT,
 * changing nothing, while another process has the database open (a server).
 * An older schema is restored as it is: the next migrate or serve updates it.
 */
int store_restore(const char *path, const char *src, int *version /* OUT */, struct err *err);

/*
 * What the migrations run through `s` (at store_open or by store_migrate)
 * did to the stored SVG images under the SVG rule (below): how many they
 * checked, and how many they changed. Both 0 when none ran over an image.
 */
void store_svg_migrated(struct store *s, size_t *checked /* OUT */, size_t *changed /* OUT */);

/* A cheap read that proves the database answers (for /healthz). */
int store_ping(struct store *s, struct err *err);

/* ---- The SVG rule -------------------------------------------------------- */

/*
 * What decides which SVG images may be stored. The store knows nothing of
 * SVG (nor depends on images/): main() hands it the rule once, before any
 * store is opened, and then, whoever writes:
 *  - a BadgeClass image (store_badge_create, store_tx_badge_create,
 *    store_badge_update, store_badge_set_image) of type image/svg+xml from
 *    which the rule would remove anything is refused (ERR_INVALID), before
 *    anything is written: callers store what image_for_badge() made,
 *    which the rule leaves as it is. A type other than image/png or
 *    image/svg+xml is refused too;
 *  - migration 7 runs every stored SVG image through the rule and keeps
 *    what it writes when it removed anything; an image the rule refuses
 *    whole (not well-formed, too large once escaped) becomes `fallback`.
 *    store_svg_migrated() says how many changed.
 * Without a rule, storing an SVG image is refused (ERR_INTERNAL) and a
 * migration that meets a stored one fails. Not thread-safe: set it before
 * threads start; `rule` must outlive every store.
 */
struct store_svg_rule {
    /* image_svg_sanitize(): appends the cleaned image to `out`, *removed: parts removed */
    int (*sanitize)(const unsigned char *svg, size_t len, struct buf *out, size_t *removed,
                    struct err *err);
    const char *fallback; /* an SVG that passes the rule (the default badge image) */
};
void store_set_svg_rule(const struct store_svg_rule *rule);

/* Expired nonces are purged this long after their timestamp (the OAuth window). */
void store_set_nonce_window(struct store *s, int64_t seconds);

/* ---- Consumers --------------------------------------------------------- */

struct store_consumer {
    int64_t id;
    char key[LIMIT_CONSUMER_KEY_LEN + 1];
    char secret[LIMIT_CONSUMER_SECRET_LEN + 1];
    char name[LIMIT_CONSUMER_NAME_LEN + 1];
    char lms[65]; /* LMS family seen in its launches, "" until the first */
    bool enabled;
    int64_t created_at;
    int64_t users;                            /* how many users it has launched (lists only) */
    char backend[LIMIT_BACKEND_NAME_LEN + 1]; /* where its new BadgeClasses go; "": the default */
};

/* Adds a consumer; ERR_CONFLICT when the key exists. */
int store_consumer_add(struct store *s, const char *key, const char *secret, const char *name,
                       struct store_consumer *out /* OUT, may be NULL */, struct err *err);
/* The same, with the consumer's backend (NULL: the default, [awards] backend). */
int store_consumer_add_backend(struct store *s, const char *key, const char *secret,
                               const char *name, const char *backend,
                               struct store_consumer *out /* OUT, may be NULL */, struct err *err);
/*
 * Sets where the consumer's BadgeClasses made from now on go (NULL: the
 * default); those it has keep theirs. ERR_NOTFOUND.
 */
int store_consumer_set_backend(struct store *s, const char *key, const char *backend,
                               struct err *err);
/* ERR_NOTFOUND when no consumer has `key`. Disabled consumers are found too. */
int store_consumer_find(struct store *s, struct str key, struct store_consumer *out /* OUT */,
                        struct err *err);
/*
 * For the launch path: the consumer with `key` as this process last read it,
 * without a database read (`*cached` true), else as store_consumer_find reads
 * it. Another process (the CLI) may have changed it since: a caller about to
 * refuse a launch because of what it found reads it again with
 * store_consumer_find, and the launch writer confirms what was accepted (the
 * consumer still enabled, with store_launch.consumer_secret).
 */
int store_consumer_find_cached(struct store *s, struct str key,
                               struct store_consumer *out /* OUT */, bool *cached /* OUT */,
                               struct err *err);
/* All consumers, oldest first; the caller frees `*out`. */
int store_consumer_list(struct store *s, struct store_consumer **out /* OUT */,
                        size_t *count /* OUT */, struct err *err);
/* Deletes a consumer and everything its launches stored; ERR_NOTFOUND. */
int store_consumer_remove(struct store *s, const char *key, struct err *err);
/* Replaces the secret; the old one stops working at once. ERR_NOTFOUND. */
int store_consumer_set_secret(struct store *s, const char *key, const char *secret,
                              struct err *err);
int store_consumer_set_enabled(struct store *s, const char *key, bool enabled, struct err *err);

/* ---- Launches ---------------------------------------------------------- */

/* A verified launch to record. Null views are stored as NULL (or leave a stored value as it is). */
struct store_launch {
    int64_t consumer_id;
    /*
     * The secret the launch was verified with: the writer refuses the launch
     * (ERR_UNAUTHORIZED) unless the consumer is still enabled and has it (a
     * null view checks only that it is enabled).
     */
    struct str consumer_secret;
    struct str nonce;
    int64_t timestamp; /* oauth_timestamp */
    int64_t now;
    struct str lms; /* LMS family, updates the consumer's */
    struct str user_id, given_name, family_name, full_name, email, person_sourcedid;
    struct str context_id, context_title, context_label;
    struct str resource_link_id, resource_link_title;
    double points_possible; /* of the resource link, 0: not sent (kept as it was) */
    struct str roles, ext_roles;
    unsigned role_flags;
    struct str mode;
    struct str outcome_service_url, result_sourcedid, outcome_data_accepted;
    bool total_score_accepted;
    struct str return_url, document_target, locale;
    struct str frame_origin; /* scheme://host[:port] of the LMS page that launched */
    /* the session created with the launch */
    unsigned char session_secret_hash[32]; /* SHA-256 of the token's secret, never the secret */
    unsigned char csrf_secret[32];
    int64_t session_expires;
};

/* What recording a launch produced. */
struct store_launch_result {
    int64_t user_id, context_id; /* context_id 0 when the launch had none */
    int64_t session_id;          /* the token is "SESSION_ID-SECRET" */
    bool first_in_context;       /* the user's first launch in this context */
    int awards_added;            /* awards the launch earned (enrollment rules) */
};

/* The size of struct store_launch_job's priv, in 64-bit words. */
#define STORE_LAUNCH_PRIV_WORDS 20

struct store_launch_job;
typedef void store_launch_done_fn(struct store_launch_job *job);

struct store_launch_job {
    struct store_launch launch; /* borrowed views: must stay valid until done() */
    store_launch_done_fn *done; /* called once, on the writer thread, after the commit */
    void *cls;                  /* the caller's */
    int status;                 /* OUT: 0 or -1 */
    struct err err; /* OUT: ERR_REPLAY for a nonce already used, ERR_UNAUTHORIZED for a consumer
                       disabled or given a new secret since the launch was verified */
    struct store_launch_result result; /* OUT */
    struct store_launch_job *next;     /* the queue's */
    /*
     * The store's, filled by store_launch_submit on the caller's thread for
     * the engine that records the launch (SQLite's writer: the digests its
     * cache compares rows by, store/launch.c). The caller leaves it alone.
     */
    struct {
        uint64_t w[STORE_LAUNCH_PRIV_WORDS];
    } priv;
};

/*
 * Queues a launch for the writer: its nonce is claimed (once per consumer
 * and timestamp, see store/launch.c), then user, context, resource link,
 * enrollment, outcome binding and session are written in the same
 * transaction. `job->done` runs once the transaction
 * committed (or failed). With the queue full or the store closing, done()
 * runs at once with ERR_UNAVAILABLE. Needs STORE_OPEN_WRITER.
 */
void store_launch_submit(struct store *s, struct store_launch_job *job);
/*
 * A stop begins: launches still waiting in the writer's queue are answered
 * at once with ERR_UNAVAILABLE (nothing of theirs was written) and new ones
 * are refused, so that a stop waits for the batch being written only, not
 * for one busy timeout per batch queued behind a write lock.
 */
void store_launch_refuse_queued(struct store *s);
/* The same, waiting for the result. */
int store_launch_record(struct store *s, const struct store_launch *l,
                        struct store_launch_result *out /* OUT, may be NULL */, struct err *err);

/* ---- Sessions ---------------------------------------------------------- */

/* A session with what the pages need; strings live in the arena given to the lookup. */
struct store_session {
    int64_t consumer_id, user_id, context_id; /* context_id 0: launched outside a course */
    unsigned role_flags;
    int64_t created_at, expires_at;
    unsigned char csrf_secret[32];
    const char *consumer_name;
    const char *lti_user_id, *user_name, *email;
    const char *lti_context_id, *context_title, *context_label;
    const char *roles, *mode, *return_url, *document_target, *locale;
    const char *frame_origin; /* the LMS origin that may frame the pages, NULL: unknown */
    const char *email_source; /* NULL: the LMS's (or none); "confirmed", "unconfirmed" */
    bool badges_enabled;      /* of the session's course */
};

/*
 * The live session `id` if its secret hashes to `secret_hash` (compared in
 * constant time); ERR_NOTFOUND when unknown, expired or the secret differs.
 */
int store_session_get(struct store *s, int64_t id, const unsigned char secret_hash[32], int64_t now,
                      struct arena *arena, struct store_session *out /* OUT */, struct err *err);

/* ---- E-mail addresses learners give (email.c) ----------------------------- */

/*
 * When the LMS shares no address, a learner gives one. With mail, it is
 * kept with a confirmation link and becomes the user's once the link is
 * followed; without, the operator may take it as given. Either way the
 * awards waiting for an address (needs_email) are queued in the same
 * transaction. A link's token is "ID-SECRET": the row's id and 32 random
 * bytes in hex; only the SHA-256 of SECRET (its 64 hex digits) is stored.
 */
#define STORE_EMAIL_TOKEN_MAX (20 + 1 + 64) /* "ID-SECRET", without its NUL */

/*
 * Keeps `email` (validated by the caller) for user `user_id` with a new
 * link that works until now + ttl, in one transaction. Refused with
 * ERR_CONFLICT when the user has an address already or no award waiting
 * for one, and with ERR_LIMIT after LIMIT_EMAIL_CONFIRM_PER_HOUR links in
 * the last hour. The user's older links not followed yet stop working in
 * the same transaction (refused as STORE_EMAIL_EXPIRED from now on; the rows
 * stay and count against the limit). `token` (STORE_EMAIL_TOKEN_MAX + 1
 * bytes) gets "ID-SECRET".
 */
int store_email_confirm_create(struct store *s, int64_t user_id, const char *email, int64_t now,
                               int64_t ttl, int64_t *id /* OUT */, char *token /* OUT */,
                               struct err *err);
/*
 * Withdraws a link not followed yet (its mail could not be sent): it stops
 * working (refused as STORE_EMAIL_EXPIRED) but its row stays and counts
 * against LIMIT_EMAIL_CONFIRM_PER_HOUR, so a relay that keeps failing is
 * tried that often at most. A link already used stays; an unknown id is no
 * error.
 */
int store_email_confirm_cancel(struct store *s, int64_t id, struct err *err);

enum store_email_refusal {
    STORE_EMAIL_OK,
    STORE_EMAIL_UNKNOWN, /* no such link, or the secret differs */
    STORE_EMAIL_EXPIRED, /* not followed in time, or replaced by a newer link */
    STORE_EMAIL_USED,    /* followed before */
};

/* What following a link did, or why it was refused. */
struct store_email_confirmed {
    enum store_email_refusal refusal;
    int64_t user_id;
    const char *email;   /* the link's, in the arena */
    bool lms_email_kept; /* the LMS sent an address meanwhile: it stays, `email` was not set */
    int64_t released;    /* awards that waited for the address and are queued now */
};

/*
 * Follows link `id` whose secret hashes to `secret_hash`, in one BEGIN
 * IMMEDIATE transaction: the hash is compared in constant time; a link
 * used before is refused with ERR_GONE (STORE_EMAIL_USED), one past its
 * time or replaced by a newer one with ERR_GONE (STORE_EMAIL_EXPIRED), an
 * unknown id or another secret with ERR_NOTFOUND (STORE_EMAIL_UNKNOWN);
 * nothing changes then.
 * Otherwise the link is marked used, the address becomes the user's
 * (email_source 'confirmed'; an address the LMS sent meanwhile is kept,
 * and lms_email_kept says so),
 * the user's other links expire, and the awards waiting for an
 * address are queued: each once, since only needs_email awards move.
 */
int store_email_confirm(struct store *s, int64_t id, const unsigned char secret_hash[32],
                        int64_t now, struct arena *a, struct store_email_confirmed *out /* OUT */,
                        struct err *err);
/*
 * Without mail, when the operator accepts addresses as given: `email`
 * becomes the user's (email_source 'unconfirmed') and the awards waiting
 * for one are queued, in one transaction. ERR_CONFLICT as for
 * store_email_confirm_create().
 */
int store_email_set_unconfirmed(struct store *s, int64_t user_id, const char *email, int64_t now,
                                int64_t *released /* OUT, may be NULL */, struct err *err);
/*
 * The address of the user's newest link still waiting to be followed
 * (`*email` in the arena, NULL when there is none) and when it expires.
 */
int store_email_pending(struct store *s, int64_t user_id, int64_t now, struct arena *a,
                        const char **email /* OUT */, int64_t *expires_at /* OUT */,
                        struct err *err);
/* ---- rate limits ---------------------------------------------------------- */

/*
 * One limit to count an event against: at most `max` events of `key` per
 * `window` seconds, the window starting at the key's first event after the
 * last one ended. Keys are compared whole (text of at most
 * LIMIT_RATE_KEY_LEN bytes, a kind then the subject, e.g. "check-client
 * 192.0.2.7"), so two keys never share a count.
 */
struct store_rate {
    const char *key;
    int64_t max;
    int64_t window;
};

/*
 * Counts one event at `now` against each of `n` limits in turn, in one
 * transaction on the database, so every instance on it counts together
 * and a restart forgets nothing. ERR_LIMIT at the first limit already
 * reached (the ones before it counted, the rest not); ERR_INVALID for a key
 * too long. Rows of windows that ended are purged as it goes,
 * LIMIT_RATE_PURGE_ROWS at a time.
 */
int store_rate_take(struct store *s, const struct store_rate *limits, size_t n, int64_t now,
                    struct err *err);

/*
 * Whether learner `user_id` shows their name on the public pages of their
 * badges (false for an unknown user: the default is not to).
 */
int store_user_show_name(struct store *s, int64_t user_id, bool *show /* OUT */, struct err *err);
/* How many learners hold BadgeClass `badge_id` (an issued award, not revoked). */
int store_badge_holders(struct store *s, int64_t badge_id, int64_t *n /* OUT */, struct err *err);
/* Records that choice. */
int store_user_set_show_name(struct store *s, int64_t user_id, bool show, int64_t now,
                             struct err *err);

/* ---- Courses and course groups (badges.c) ------------------------------- */

/*
 * Course settings by the consumer's context id. A course the tool has not
 * seen launched yet is created, so an operator can set it up in advance.
 */
int store_context_set_enabled(struct store *s, int64_t consumer_id, const char *lti_context_id,
                              bool enabled, int64_t *context_id /* OUT, may be NULL */,
                              struct err *err);
/* The pass mark (0..1) and the completion resource link (NULL: any link of the course). */
int store_context_set_pass_mark(struct store *s, int64_t consumer_id, const char *lti_context_id,
                                double pass_mark, const char *resource_link, struct err *err);
/* Creates group `name` of the consumer or adds contexts to it. */
int store_group_add(struct store *s, int64_t consumer_id, const char *name,
                    const char *const *lti_context_ids, size_t n, struct err *err);

/* ---- BadgeClasses and their rules (badges.c) ----------------------------- */

enum store_rule_kind {
    RULE_ENROLLMENT,
    RULE_SCORE,
    RULE_COMPLETION,
    RULE_GROUP,
    RULE_COUNT,
    RULE_MANUAL,
};

/* The rule's name as stored ("enrollment", ...), and back; -1 for an unknown name. */
const char *store_rule_name(enum store_rule_kind k);
int store_rule_parse_kind(const char *name);

struct store_rule {
    enum store_rule_kind kind;
    double threshold;          /* score */
    const char *resource_link; /* score: the LTI resource link id, NULL for any in the course */
    const char *group;         /* group: its name */
    int64_t group_id;
    int64_t count; /* count */
};

/* A BadgeClass as read; strings live in the arena given to the read. */
struct store_badge {
    int64_t id, consumer_id, context_id; /* context_id 0: not tied to a course */
    const char *slug, *consumer_key, *lti_context_id, *context_title, *mode;
    const char *name, *description, *image_type, *criteria_url, *criteria_narrative;
    const char *issuing_component;
    const char *tags;       /* JSON array of strings */
    const char *alignments; /* JSON array of {targetName, targetUrl, ...} */
    const char *backend, *backend_id;
    const unsigned char *image;
    size_t image_len;
    int64_t expires_days; /* 0: never expires */
    bool passback;        /* write passback_score to the LMS when issued */
    double passback_score;
    bool revoke_on_withdrawn;
    struct store_rule rule;
    int64_t created_at, updated_at;
    int64_t issued;      /* awards issued (lists only) */
    int64_t archived_at; /* 0: live; else it awards nothing more and is not offered */
    /*
     * Edits not yet at its platform (schema 10): when they are next sent
     * (0: none to send), how many attempts failed, and the last failure
     * (NULL: none; kept after a permanent one until the next edit is sent).
     */
    int64_t sync_due_at, sync_attempts;
    const char *sync_error;
};

/* A BadgeClass to create. */
struct store_badge_new {
    int64_t consumer_id;
    const char *lti_context_id; /* NULL: not tied to a course */
    const char *mode;           /* NULL: no mode */
    const char *slug;           /* exact slug; NULL: derived from slug_base */
    const char *slug_base;      /* a slug-shaped base; "-2", "-3", ... is added on collision */
    const char *name, *description, *image_type;
    const unsigned char *image;
    size_t image_len;
    const char *criteria_url, *criteria_narrative, *issuing_component;
    const char *tags, *alignments; /* JSON arrays, NULL: [] */
    /*
     * backend NULL: the consumer's, else default_backend, else "hosted"
     * (the CLI, the editor and the completion rule all create them so)
     */
    const char *backend, *backend_id;
    const char *default_backend; /* [awards] backend */
    int64_t expires_days;
    bool passback_off;        /* no replaceResult to the LMS when issued */
    bool has_passback_score;  /* false: the default, 1.0 */
    double passback_score;    /* the score written to the LMS when issued */
    bool revoke_on_withdrawn; /* revoke when the grade that earned it is withdrawn */
    struct store_rule rule;   /* group rules name their group; it must exist */
};

/*
 * Creates a BadgeClass and its rule; `*slug_out` (LIMIT_SLUG_LEN + 1 bytes)
 * gets the slug. ERR_CONFLICT when the exact slug is taken or the course
 * already has a completion BadgeClass for this mode; ERR_NOTFOUND for an
 * unknown group.
 */
int store_badge_create(struct store *s, const struct store_badge_new *b, int64_t *id /* OUT */,
                       char *slug_out /* OUT */, struct err *err);
/* ERR_NOTFOUND when no BadgeClass has the slug (or the id). */
int store_badge_get(struct store *s, const char *slug, struct arena *a,
                    struct store_badge *out /* OUT */, struct err *err);
int store_badge_get_id(struct store *s, int64_t id, struct arena *a,
                       struct store_badge *out /* OUT */, struct err *err);
/* All BadgeClasses, oldest first; without the image bytes. */
int store_badge_list(struct store *s, struct arena *a, struct store_badge **out /* OUT */,
                     size_t *count /* OUT */, struct err *err);
/* The live BadgeClasses of course `context_id`, without the image bytes. */
int store_badge_list_course(struct store *s, int64_t context_id, struct arena *a,
                            struct store_badge **out /* OUT */, size_t *count /* OUT */,
                            struct err *err);
/*
 * Sets what an issued award of the BadgeClass writes to the LMS (`passback`
 * false: nothing; else `score`) and whether a withdrawn grade revokes it
 * (-1: unchanged). ERR_NOTFOUND.
 */
int store_badge_set_outcomes(struct store *s, const char *slug, int passback /* -1: unchanged */,
                             double score, int revoke_on_withdrawn, struct err *err);
/*
 * Edits BadgeClass `id` of course `context_id` (course-less ones are the
 * operator's, not editable here): every field of `b` but the slug, the
 * consumer, the course and the backend; `b->image` NULL keeps the image.
 * ERR_NOTFOUND when the course has no such BadgeClass or the group does
 * not exist; ERR_CONFLICT when the course already has a completion
 * BadgeClass for the mode.
 */
int store_badge_update(struct store *s, int64_t id, int64_t context_id,
                       const struct store_badge_new *b, struct err *err);
/*
 * Replaces the image of BadgeClass `slug` (`type` image/png or
 * image/svg+xml, checked as the SVG rule above says). ERR_NOTFOUND.
 */
int store_badge_set_image(struct store *s, const char *slug, const unsigned char *image, size_t len,
                          const char *type, struct err *err);
/* Deletes a BadgeClass of the course never awarded; ERR_CONFLICT once it was, ERR_NOTFOUND. */
int store_badge_delete(struct store *s, int64_t id, int64_t context_id, struct err *err);
/* Archives (it awards nothing more and is not offered) or restores one; ERR_NOTFOUND. */
int store_badge_set_archived(struct store *s, int64_t id, int64_t context_id, bool archived,
                             struct err *err);
/* How many awards, in any state, BadgeClass `id` has. */
int store_badge_award_count(struct store *s, int64_t id, int64_t *n /* OUT */, struct err *err);

/* Who a rule would award now, from the facts stored: the dry run, and saving a rule. */
struct store_tx;
struct store_rule_probe {
    int64_t consumer_id, context_id;     /* context 0: any course of the consumer */
    int64_t badge_id;                    /* its holders are left out; 0: not saved yet */
    const char *mode;                    /* completion: the BadgeClass's mode, NULL: none */
    unsigned learner_flags, staff_flags; /* enrollment: a learner flag and no staff flag */
    struct store_rule rule;              /* group: by name */
    size_t limit;                        /* 0: all */
};
struct store_candidate {
    int64_t user_id, link_id; /* link_id 0: none */
    const char *lti_user_id, *name, *link_title;
    bool has_score; /* score and completion: the score it was judged on */
    double score;
    int64_t completed; /* group and count: the courses completed */
};
/* In the arena; a manual rule finds no one. */
int store_rule_candidates(struct store *s, const struct store_rule_probe *p, struct arena *a,
                          struct store_candidate **out /* OUT */, size_t *n /* OUT */,
                          struct err *err);
int store_tx_rule_candidates(struct store_tx *tx, const struct store_rule_probe *p,
                             struct store_candidate **out /* OUT, tx arena */, size_t *n /* OUT */,
                             struct err *err);
/*
 * Moves BadgeClass `slug` to `backend`, forgetting its id there, while it
 * has no award: ERR_CONFLICT once it has one, ERR_NOTFOUND.
 */
int store_badge_set_backend(struct store *s, const char *slug, const char *backend,
                            struct err *err);
/* What uses a backend: consumers (name "" for the default), BadgeClasses and their awards. */
struct store_backend_use {
    const char *name;
    int64_t consumers, badges, awards;
};
/* Every backend name consumers or BadgeClasses hold, by name; in the arena. */
int store_backend_usage(struct store *s, struct arena *a, struct store_backend_use **out /* OUT */,
                        size_t *count /* OUT */, struct err *err);
/* Stores the id the backend gave; keeps an id already stored (first writer wins). */
int store_badge_set_backend_id(struct store *s, int64_t id, const char *backend_id,
                               struct err *err);

/*
 * Which awards (and BadgeClass edits) a worker takes: those of one
 * backend's BadgeClasses, or those of every backend but some (theirs have
 * their own workers). NULL where a scope is asked for: all.
 */
struct store_claim_scope {
    const char *backend;       /* only this backend's; NULL: any but those in `except` */
    const char *const *except; /* backends left out */
    size_t nexcept;
};

/* A BadgeClass whose edits are due at its platform. */
struct store_badge_sync {
    int64_t id;
    int64_t gen;      /* its edit count when read: pass it back to store_badge_sync_done */
    int64_t attempts; /* failed attempts since the last edit */
};
/*
 * Up to `max` BadgeClasses in `scope` whose edits are due at their
 * platform (sync_due_at <= now), the longest due first. On PostgreSQL they
 * are claimed: each is due again LIMIT_AWARDS_REMOTE_LEASE later unless
 * store_badge_sync_done or a newer edit says otherwise, so no worker of
 * another instance sends it meanwhile.
 */
int store_badge_syncs_due(struct store *s, const struct store_claim_scope *scope, int64_t now,
                          size_t max, struct store_badge_sync *out, size_t *n /* OUT */,
                          struct err *err);
/*
 * What came of sending a BadgeClass's edits: `error` NULL, sent (nothing
 * more due); else retried at `next_at`, or, `next_at` 0, failed for good
 * until the next edit (the error kept for `badge show` and the course
 * page). Changes nothing when the BadgeClass was edited again since `gen`
 * was read: that edit is still due.
 */
int store_badge_sync_done(struct store *s, int64_t id, int64_t gen, int64_t next_at,
                          const char *error, struct err *err);

/* ---- Events and rules, inside one transaction (events.c) ---------------- */

/*
 * Whatever can earn a badge is recorded and judged in one transaction: the
 * grade, completion or enrollment is written, the rules are evaluated and
 * the awards they earn are written with it. awards/ owns the rules; these
 * are the operations it runs on the transaction it is given.
 */
struct store_tx;

typedef int store_tx_fn(struct store_tx *tx, void *cls, struct err *err);
/* Runs `fn` in one BEGIN IMMEDIATE transaction: committed when it returns 0, else rolled back. */
int store_tx_run(struct store *s, store_tx_fn *fn, void *cls, struct err *err);
/* The arena for reads inside the transaction (released after it). */
struct arena *store_tx_arena(struct store_tx *tx);
/* How many awards the transaction added so far. */
int store_tx_awards_added(struct store_tx *tx);

/*
 * Called by the launch writer inside a launch's savepoint when a user
 * launched in a context for the first time; a failure rolls the launch back.
 */
typedef int store_enrollment_hook(struct store_tx *tx, void *cls, int64_t consumer_id,
                                  int64_t user_id, int64_t context_id, unsigned role_flags,
                                  int64_t now, struct err *err);
void store_set_enrollment_hook(struct store *s, store_enrollment_hook *fn, void *cls);

/* The ids of a user, context and resource link by their LTI ids, creating rows not seen yet. */
struct store_ids {
    int64_t user_id, context_id, link_id;
};
int store_tx_ensure(struct store_tx *tx, int64_t consumer_id, const char *lti_user_id,
                    const char *lti_context_id, const char *lti_resource_link_id, int64_t now,
                    struct store_ids *out /* OUT */, struct err *err);
int store_tx_user_find(struct store_tx *tx, int64_t consumer_id, const char *lti_user_id,
                       int64_t *user_id /* OUT */, struct err *err);

struct store_context_info {
    int64_t id, consumer_id;
    const char *lti_context_id, *title;
    bool badges_enabled;
    double pass_mark;
    const char *completion_link; /* NULL: any resource link completes */
};
int store_tx_context(struct store_tx *tx, int64_t context_id,
                     struct store_context_info *out /* OUT */, struct err *err);
/* The LTI id of a resource link. */
int store_tx_link_lti_id(struct store_tx *tx, int64_t link_id, const char **out /* OUT */,
                         struct err *err);
/* The mode of the user's launches in the context (NULL: none, or never launched there). */
int store_tx_enrollment_mode(struct store_tx *tx, int64_t user_id, int64_t context_id,
                             const char **mode /* OUT */, struct err *err);
/* The role flags of the user's enrollment in the context; *enrolled is false when there is none. */
int store_tx_enrollment_roles(struct store_tx *tx, int64_t user_id, int64_t context_id,
                              bool *enrolled /* OUT */, unsigned *role_flags /* OUT */,
                              struct err *err);

int store_tx_grade_put(struct store_tx *tx, int64_t user_id, int64_t context_id, int64_t link_id,
                       double score, const char *source, int64_t now, struct err *err);
/* Records a completion unless there is one; *added says whether this one is new. */
int store_tx_completion_put(struct store_tx *tx, int64_t user_id, int64_t context_id,
                            const char *mode, int64_t link_id, double score, int64_t now,
                            bool *added /* OUT */, struct err *err);
int store_tx_completed_count(struct store_tx *tx, int64_t consumer_id, int64_t user_id,
                             int64_t *n /* OUT */, struct err *err);
/* Whether every context of the group is completed by the user (false for an empty group). */
int store_tx_group_completed(struct store_tx *tx, int64_t group_id, int64_t user_id,
                             bool *done /* OUT */, struct err *err);

/* A rule and the BadgeClass it belongs to. */
struct store_rule_row {
    int64_t badge_id, context_id;
    struct store_rule rule;
};
/*
 * The consumer's rules of `kind` that apply in `context_id`: those of its
 * BadgeClasses and those of BadgeClasses tied to no course.
 */
int store_tx_rules(struct store_tx *tx, int64_t consumer_id, enum store_rule_kind kind,
                   int64_t context_id, struct store_rule_row **out /* OUT, arena */,
                   size_t *n /* OUT */, struct err *err);
/*
 * The consumer's rules of `kind` (group or count) to judge after any
 * completion of `user_id`: the course-less ones, and those of every course
 * with badges on where the user is enrolled with a learner flag and no
 * staff flag.
 */
int store_tx_progress_rules(struct store_tx *tx, int64_t consumer_id, enum store_rule_kind kind,
                            int64_t user_id, unsigned learner_flags, unsigned staff_flags,
                            struct store_rule_row **out /* OUT, arena */, size_t *n /* OUT */,
                            struct err *err);
/*
 * The completion BadgeClass of exactly (context, mode); 0 when there is
 * none, -1 when it is archived (the course awards no completion badge then).
 */
int store_tx_completion_badge(struct store_tx *tx, int64_t context_id, const char *mode,
                              int64_t *badge_id /* OUT */, struct err *err);
int store_tx_badge_create(struct store_tx *tx, const struct store_badge_new *b,
                          int64_t *id /* OUT */, char *slug_out /* OUT */, struct err *err);

/* Why an award was made, kept as its evidence. */
struct store_award_new {
    int64_t badge_id, user_id, context_id, link_id; /* context and link 0: none */
    const char *reason;                             /* "enrollment", "score", ... */
    const char *narrative;                          /* evidence narrative, may be NULL */
    int64_t now;
};
/*
 * Adds an award unless the user has one for the BadgeClass (*added false).
 * It is queued for the worker, or held as needs_email when the user has no
 * email address.
 */
int store_tx_award_add(struct store_tx *tx, const struct store_award_new *a,
                       int64_t *award_id /* OUT, may be NULL */, bool *added /* OUT */,
                       struct err *err);

/* ---- Awards: the outbox (awards.c) --------------------------------------- */

enum store_award_state {
    AWARD_QUEUED,
    AWARD_NEEDS_EMAIL,
    AWARD_ISSUING,
    AWARD_ISSUED,
    AWARD_FAILED,
    AWARD_REVOKED,
};
const char *store_award_state_name(enum store_award_state st);
int store_award_state_parse(const char *name); /* -1 for an unknown name */

struct store_award {
    int64_t id, badge_id, user_id, context_id;
    enum store_award_state state;
    const char *uid, *salt, *reason, *narrative, *recipient_email;
    const char *assertion_id, *assertion_url, *last_error, *revoke_reason;
    const char *badge_slug, *consumer_key, *lti_user_id, *user_name;
    const char *lti_context_id, *context_title, *lti_resource_link_id, *link_title;
    int64_t attempts, next_attempt_at, issued_at, expires_at, revoked_at, created_at, updated_at;
    bool revoke_pending; /* revoked here, not yet at the backend */
    /* the latest grade passback to the LMS for this award (NULL state: none) */
    const char *passback_state, *passback_answer;
    int64_t passback_at, passback_attempts, passbacks;
};

struct store_award_filter {
    int state;           /* -1: any */
    const char *badge;   /* slug, NULL: any */
    int64_t user_id;     /* 0: any */
    const char *backend; /* BadgeClasses of this backend, NULL: any */
    int64_t limit;       /* 0: no limit */
};
int store_award_list(struct store *s, const struct store_award_filter *f, struct arena *a,
                     struct store_award **out /* OUT */, size_t *n /* OUT */, struct err *err);
int store_award_get(struct store *s, int64_t id, struct arena *a, struct store_award *out,
                    struct err *err);
/* By public uid (the hosted assertion id); ERR_NOTFOUND. */
int store_award_get_uid(struct store *s, const char *uid, struct arena *a, struct store_award *out,
                        struct err *err);

/*
 * Claims up to `max` due awards in `scope` (NULL: any) for issuing: queued
 * ones whose time came, issuing ones whose lease ran out (a worker died
 * with them), revoked ones not yet revoked at the backend. Each is marked
 * issuing (or kept revoked) with attempts + 1 and a lease of `lease`
 * seconds, in one transaction.
 */
int store_award_claim(struct store *s, const struct store_claim_scope *scope, int64_t now,
                      int64_t lease, size_t max, struct arena *a,
                      struct store_award **out /* OUT */, size_t *n /* OUT */, struct err *err);
/* What the worker learned about one claimed award, recorded with others in one transaction. */
enum store_award_update_kind {
    AWARD_UPD_ISSUED,        /* assertion_id, assertion_url, issued_at, expires_at */
    AWARD_UPD_RETRY,         /* next_at, error */
    AWARD_UPD_FAILED,        /* error */
    AWARD_UPD_REVOKE_SYNCED, /* - */
    AWARD_UPD_REVOKE_RETRY,  /* next_at, error */
};
struct store_award_update {
    enum store_award_update_kind kind;
    int64_t id;
    const char *assertion_id, *assertion_url, *error;
    int64_t issued_at, expires_at, next_at;
    int status; /* OUT: 0, or -1 when the award was no longer in the expected state */
};
/*
 * Records `n` updates in one transaction (one fsync for a whole claim).
 * An update whose award moved on meanwhile is skipped with status -1.
 */
int store_award_update_batch(struct store *s, struct store_award_update *u, size_t n,
                             struct err *err);
/*
 * As store_award_update_batch, but returns once the transaction committed,
 * without waiting for the disk: a remote platform's answers, recorded one by
 * one as they come while one durable claim covers several awards. A power
 * cut may lose such a record (never a process's end); the award then stays
 * issuing, is taken back at the next start (store_award_reclaim) and looked
 * up on its platform before it is sent again, so nothing is issued twice.
 * Whatever acts on the record (its queued passback, a revocation) commits
 * durably first, which takes the record to the disk with it. On
 * PostgreSQL the commit is durable as any other.
 */
int store_award_record_unsynced(struct store *s, struct store_award_update *u, size_t n,
                                struct err *err);
/*
 * Gives back `n` awards claimed by store_award_claim and never sent: the
 * claim undone (its attempt not counted, a first attempt queued again),
 * due at `now`, so another pass or another instance takes them at once
 * instead of after their lease. An award that moved on meanwhile is left.
 */
int store_award_release(struct store *s, const int64_t *ids, size_t n, int64_t now,
                        struct err *err);
/*
 * Both in one transaction: records `nu` updates, then (when `out` is not
 * NULL) claims up to `max` due awards as store_award_claim does. On
 * failure nothing is recorded or claimed.
 */
int store_award_record_claim(struct store *s, struct store_award_update *u, size_t nu,
                             const struct store_claim_scope *scope, int64_t now, int64_t lease,
                             size_t max, struct arena *a, struct store_award **out /* OUT */,
                             size_t *n /* OUT */, struct err *err);
/* A failed award is queued again now. ERR_CONFLICT unless it failed. */
int store_award_retry(struct store *s, int64_t id, int64_t now, struct err *err);
/*
 * Revokes an award with a reason. ERR_CONFLICT when already revoked. The
 * worker then revokes it at its backend: by its assertion id, or, when it
 * was attempted without one being recorded (a lost answer, a failure), by
 * what the backend finds for it. One never attempted is done here.
 */
int store_award_revoke(struct store *s, int64_t id, const char *reason, int64_t now,
                       struct err *err);
/*
 * Revokes (with `reason`) or retries the awards `ids` of a course, as the
 * course's awards table shows them (store_course_awards), in one
 * transaction: when one of them is not an award of the course, nothing
 * changes and it is ERR_FORBIDDEN. changed[i] (OUT) is false for an award
 * whose state did not allow it: revoked already, or not failed.
 */
enum store_course_change {
    STORE_COURSE_REVOKE,
    STORE_COURSE_RETRY,
};
int store_course_awards_change(struct store *s, int64_t consumer_id, int64_t context_id,
                               enum store_course_change what, const int64_t *ids, size_t n,
                               const char *reason, int64_t now, bool *changed /* OUT */,
                               struct err *err);
/*
 * Makes every award left issuing due at once: at start-up a server on
 * sqlite is the only worker on its database, so a claim still held belongs
 * to a process that died. *n is how many. On PostgreSQL it does nothing
 * (*n 0): other instances may be issuing what they claimed, and a claim of
 * one that died is due again when its lease ends.
 */
int store_award_reclaim(struct store *s, int64_t now, int64_t *n /* OUT */, struct err *err);
/* Queued awards and the earliest time one is due (0 when none), for the worker and status. */
struct store_outbox_stats {
    int64_t queued, needs_email, issuing, issued, failed, revoked;
    int64_t next_due;
};
int store_outbox_stats(struct store *s, struct store_outbox_stats *out, struct err *err);

/* ---- Webhooks in (hooks.c) ------------------------------------------------- */

/* What a hook did to the award it names. */
enum store_hook_effect {
    STORE_HOOK_IGNORED,   /* not an award of that backend's, or one never sent there */
    STORE_HOOK_UNCHANGED, /* ours, already as the hook says (a replay; an award never undoes a
                             revoke) */
    STORE_HOOK_ISSUED,    /* ours, left with an unknown outcome: now issued with the hook's URL */
    STORE_HOOK_REVOKED,   /* ours: now revoked, and not to be sent back */
};

struct store_hook {
    const char *backend;       /* the backend the hook came to */
    bool revoke;               /* false: an award (an instance made), true: a revoke (deleted) */
    const char *uid;           /* the instance's slug: one of our awards' uids, or another's */
    const char *badge;         /* the platform's BadgeClass id it names; NULL or "": not checked */
    const char *assertion_url; /* award: the instance's public URL */
    const char *reason;        /* revoke: the revoke reason recorded */
    int64_t now;
};

/*
 * Applies a verified hook, in one transaction with its count (received,
 * and applied, unchanged or ignored). The award is found by uid among the
 * BadgeClasses of h->backend whose platform id is h->badge (when given).
 * An award: issued, or revoked, stays so (UNCHANGED); issuing, or queued or
 * failed after an attempt, becomes issued (a grade passback queued as the
 * worker would); one never sent is IGNORED. A revoke: revoked stays so;
 * issued, issuing, or queued or failed after an attempt, becomes revoked
 * with h->reason, already synced; one never sent is IGNORED. *award_id: the
 * award's id (0: none of ours).
 */
int store_hook_apply(struct store *s, const struct store_hook *h,
                     enum store_hook_effect *effect /* OUT */, int64_t *award_id /* OUT */,
                     struct err *err);

/* A backend's hook counts (or what to add to them). */
struct store_hook_counts {
    int64_t received, applied, unchanged, ignored, refused;
    int64_t last_received_at, last_refused_at; /* 0: never (adding: not now) */
    const char *last_refusal;                  /* NULL: none (adding: unchanged) */
};
/* Adds `delta` to the counts of `backend` (refusals, and hooks not about one award). */
int store_hook_count(struct store *s, const char *backend, const struct store_hook_counts *delta,
                     struct err *err);
/* The counts of `backend`, all 0 when it never got a hook; strings in `a`. */
int store_hook_counts_get(struct store *s, const char *backend, struct arena *a,
                          struct store_hook_counts *out /* OUT */, struct err *err);

/* ---- What the pages show (pages.c) ------------------------------------------ */

/* A resource link of the course where the learner has a grade, or the LMS a grade column. */
struct store_grade_seen {
    const char *lti_link_id, *link_title;
    bool has_score;
    double score;
    const char *source; /* "lms", "outcomes", "cli" */
    int64_t recorded_at;
    bool bound;             /* the LMS gave a grade column (outcome binding) */
    int64_t read_at;        /* when the LMS's grade was last read, 0: never */
    const char *read_error; /* why the last read failed, NULL */
    double points_possible; /* the activity's, as the LMS sent them; 0: not sent */
};

/* A course the learner completed (any course of the consumer). */
struct store_course_done {
    int64_t context_id, completed_at;
    const char *lti_context_id, *title;
};

/* A course of a course group, and whether the learner completed it. */
struct store_group_course {
    int64_t group_id;
    const char *lti_context_id, *title;
    bool done;
};

/* Everything a learner's page needs, read at once; strings live in the arena. */
struct store_learner_view {
    /* the course (id 0: launched outside one) */
    int64_t context_id;
    const char *lti_context_id, *context_title;
    bool badges_enabled;
    double pass_mark;
    const char *completion_link, *completion_link_title; /* NULL: any link completes */
    double completion_points; /* the completion link's points possible, 0: not sent */
    int64_t completed_at;     /* of this course, 0: not completed */
    bool has_completion_score;
    double completion_score;
    /* the course's live BadgeClasses, the consumer's course-less ones, and those the user holds */
    struct store_badge *badges;
    size_t nbadges;
    struct store_award *awards; /* every award of the user, newest first */
    size_t nawards;
    struct store_grade_seen *grades; /* every link of this course, graded or not */
    size_t ngrades;
    struct store_course_done *completed; /* across the consumer's courses */
    size_t ncompleted;
    struct store_group_course *groups; /* the consumer's course groups */
    size_t ngroups;
};
int store_learner_view(struct store *s, int64_t consumer_id, int64_t user_id, int64_t context_id,
                       struct arena *a, struct store_learner_view *out /* OUT */, struct err *err);

/* A resource link of a course. */
struct store_link {
    const char *lti_link_id, *title;
    double points_possible; /* as the LMS last sent them; 0: never sent */
};

/* Everything the instructor's course page needs; strings live in the arena. */
struct store_course_admin {
    int64_t context_id;
    const char *lti_context_id, *title;
    bool badges_enabled;
    double pass_mark;
    const char *completion_link; /* NULL: any link */
    struct store_link *links;
    size_t nlinks;
    struct store_badge *badges; /* the course's and the consumer's course-less, live first */
    size_t nbadges;
    /* the course's awards by state, and when the last one was issued */
    int64_t queued, needs_email, failed, issued, revoked, last_issued_at;
};
/*
 * The instructor's course settings, in one transaction: badges on or off,
 * the pass mark (0..1) and the completion link, which must be a link of
 * the course (ERR_INVALID otherwise; NULL: any link).
 */
int store_context_set_settings(struct store *s, int64_t context_id, bool enabled, double pass_mark,
                               const char *completion_link, struct err *err);
int store_course_admin(struct store *s, int64_t consumer_id, int64_t context_id, struct arena *a,
                       struct store_course_admin *out /* OUT */, struct err *err);

/* The orders of a course's awards table; STORE_SORT_NEWEST is its default. */
enum store_award_sort {
    STORE_SORT_NEWEST,  /* the newest award first */
    STORE_SORT_LEARNER, /* the learner's name (their LMS id without one), ASCII case folded */
    STORE_SORT_BADGE,   /* the BadgeClass's name, ASCII case folded */
    STORE_SORT_STATE,   /* store_award_state_rank() */
    STORE_SORT_ISSUED,  /* when issued; never issued is earliest (first ascending, last down) */
};
/*
 * What a course's awards table shows. `state` (-1: any; AWARD_QUEUED takes
 * the awards being issued too, both waiting), `badge` (a slug, NULL: any)
 * and `learner` (NULL: anyone; else a part of the learner's name or LMS id,
 * ASCII case folded) filter; `sort` and `desc` order, ties newest first.
 */
struct store_course_query {
    int state;
    const char *badge, *learner;
    enum store_award_sort sort;
    bool desc;
};
/*
 * A course's awards: those of its BadgeClasses, and those of the
 * consumer's course-less BadgeClasses awarded in it, as `q` filters and
 * orders them; at most `limit` rows.
 */
int store_course_awards(struct store *s, int64_t consumer_id, int64_t context_id,
                        const struct store_course_query *q, size_t limit, struct arena *a,
                        struct store_award **out /* OUT */, size_t *n /* OUT */, struct err *err);
/*
 * Where a state sorts in the awards table: what needs an instructor first
 * (failed, then waiting for an address), then queued, issuing, issued and
 * revoked. The same order as STORE_SORT_STATE.
 */
int store_award_state_rank(enum store_award_state st);

/* A user enrolled in a course. */
struct store_enrolled {
    int64_t user_id;
    const char *lti_user_id, *name, *email; /* name "" when the LMS gave none */
    unsigned role_flags;
};
/* The course's enrolled users with none of the roles `without`, by name; at most `limit`. */
int store_course_learners(struct store *s, int64_t context_id, unsigned without, size_t limit,
                          struct arena *a, struct store_enrolled **out /* OUT */,
                          size_t *n /* OUT */, struct err *err);

/* ---- LTI Basic Outcomes (outcomes.c) -------------------------------------- */

/* Claims the nonce of a signed server-to-server request; ERR_REPLAY when it was used. */
int store_nonce_claim(struct store *s, int64_t consumer_id, struct str nonce, int64_t ts,
                      struct err *err);
/* Sets the hosts the tool may call for a consumer's outcomes (NULL: those of its launches). */
int store_consumer_set_outcome_hosts(struct store *s, const char *key, const char *hosts,
                                     struct err *err);

/* Where a result named by a sourcedid belongs; strings in the arena. */
struct store_outcome_target {
    int64_t user_id, context_id, link_id; /* context_id 0: the launch had no course */
    const char *lti_user_id, *lti_context_id, *lti_resource_link_id;
};
/*
 * Resolves a sourcedid sent by consumer `consumer_id`: one the tool handed
 * out, or a binding's lis_result_sourcedid. ERR_NOTFOUND when neither is
 * known for this consumer (another consumer's is not found either).
 */
int store_outcome_resolve(struct store *s, int64_t consumer_id, const char *sourcedid,
                          struct arena *a, struct store_outcome_target *out /* OUT */,
                          struct err *err);
/* The tool's sourcedid (LIMIT_TOOL_SOURCEDID_LEN + 1 bytes) for a user's result on a link, made
 * on first ask; user, course and link are recorded bare when not seen yet. */
int store_tool_sourcedid(struct store *s, int64_t consumer_id, const char *lti_user_id,
                         const char *lti_context_id, const char *lti_resource_link_id,
                         char *out /* OUT */, struct err *err);

/* The stored grade of a user on a link; *has is false when there is none. */
int store_grade_get(struct store *s, int64_t user_id, int64_t link_id, double *score /* OUT */,
                    bool *has /* OUT */, struct err *err);
/* Removes a grade inside a transaction; *existed says whether there was one. */
int store_tx_grade_delete(struct store_tx *tx, int64_t user_id, int64_t link_id,
                          bool *existed /* OUT */, struct err *err);
/* The awards a grade on this link earned (score and completion rules), not revoked. */
struct store_earned {
    int64_t award_id;
    enum store_rule_kind kind; /* of the BadgeClass's rule */
    const char *reason;
    double threshold, pass_mark;
    bool revoke_on_withdrawn;
};
int store_tx_earned_on_link(struct store_tx *tx, int64_t user_id, int64_t link_id,
                            struct store_earned **out /* OUT, arena */, size_t *n /* OUT */,
                            struct err *err);
int store_tx_award_revoke(struct store_tx *tx, int64_t award_id, const char *reason, int64_t now,
                          struct err *err);

/* An outcome binding with what calling its service needs; strings in the arena. */
struct store_binding {
    int64_t id, consumer_id, user_id, context_id, link_id;
    const char *service_url, *sourcedid;
    const char *consumer_key, *consumer_secret, *outcome_hosts;
    const char *lti_user_id, *lti_context_id, *lti_resource_link_id;
    bool has_score; /* the score last read from the LMS */
    double last_score;
};
/*
 * Bindings whose LMS grade the rules need (their course has badges enabled,
 * or the consumer has course-wide score, group or count rules), not read
 * since `before`, oldest read first; user_id and context_id filter (0: any).
 */
int store_bindings_to_read(struct store *s, int64_t user_id, int64_t context_id, int64_t before,
                           size_t max, struct arena *a, struct store_binding **out /* OUT */,
                           size_t *n /* OUT */, struct err *err);
/* Whether the rules need the LMS grades of a course (as store_bindings_to_read decides). */
int store_context_needs_grades(struct store *s, int64_t context_id, bool *needs /* OUT */,
                               struct err *err);
enum store_read_result {
    READ_FAILED,   /* the LMS could not be read: keep the last score */
    READ_SCORE,    /* it answered a score */
    READ_NO_SCORE, /* it answered that there is none */
};
int store_binding_read_done(struct store *s, int64_t binding_id, int64_t now,
                            enum store_read_result r, double score, const char *error,
                            struct err *err);

/* A replaceResult owed to an LMS for an issued award. */
struct store_passback {
    int64_t id, award_id, binding_id, consumer_id, attempts;
    bool has_score, consumer_enabled;
    double score;
    const char *data_url, *service_url, *sourcedid;
    const char *consumer_key, *consumer_secret, *outcome_hosts;
};
/* Claims up to `max` due passbacks (queued, or sending past their lease) for `lease` seconds. */
int store_passback_claim(struct store *s, int64_t now, int64_t lease, size_t max, struct arena *a,
                         struct store_passback **out /* OUT */, size_t *n /* OUT */,
                         struct err *err);
enum store_passback_update_kind {
    PASSBACK_DONE,
    PASSBACK_RETRY,  /* next_at */
    PASSBACK_FAILED, /* given up: the LMS refused it, or it is not to be called */
};
struct store_passback_update {
    enum store_passback_update_kind kind;
    int64_t id, next_at;
    const char *answer; /* what the LMS answered, or why it could not be asked */
    int status;         /* OUT: 0, -1 when the passback was no longer being sent */
};
int store_passback_update_batch(struct store *s, struct store_passback_update *u, size_t n,
                                struct err *err);
/* Failed passbacks of an award are queued again (`award retry`); *n is how many. */
int store_passback_retry(struct store *s, int64_t award_id, int64_t now, int64_t *n /* OUT */,
                         struct err *err);
/* The earliest time a passback is due (0 when none). */
int store_passback_next_due(struct store *s, int64_t *next /* OUT */, struct err *err);

/* ---- Statistics (benchmarks, health) ------------------------------------ */

/*
 * The launch writer's transactions (one batch each) by how long they took,
 * from BEGIN to the end of COMMIT: tx_le[i] counts those of at most
 * STORE_TX_BOUNDS_US[i] microseconds that took longer than the bound
 * before (not cumulative), tx_le[STORE_TX_BUCKETS] the longer ones.
 */
#define STORE_TX_BUCKETS 13
#define STORE_TX_BOUNDS_US                                                                         \
 {                                                                                                 \
  250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000        \
 }

struct store_stats {
    uint64_t batches, launches, replays, checkpoints;
    uint64_t tx_le[STORE_TX_BUCKETS + 1];
    uint64_t tx_ns;     /* their total time */
    uint64_t wal_syncs; /* fdatasyncs of the WAL, each for every commit before it (store_durable) */
    /* the writer's checkpoints that let the WAL start over, and the WAL frames they copied */
    uint64_t catch_ups, catch_up_frames;
};
void store_stats(struct store *s, struct store_stats *out /* OUT */);

/*
 * How many of each thing the database holds, read in one snapshot (`ltibadges
 * db stats`; the tests read the store's state through it). `nonces` counts
 * the nonces claimed, those the launch writer has not moved to their table
 * yet too.
 */
struct store_row_counts {
    int64_t consumers, nonces, users, contexts, resource_links, enrollments, outcome_bindings;
    int64_t sessions, badge_classes, awards, grades, completions;
};
int store_row_counts(struct store *s, struct store_row_counts *out /* OUT */, struct err *err);

/* A course a user launched from, as their last launch there left it. */
struct store_user_enrollment {
    const char *lti_context_id, *roles, *ext_roles, *mode;
    int64_t role_flags, first_launch_at, last_launch_at;
};
/* Where the LMS takes a user's grade on a resource link (Basic Outcomes) of a course. */
struct store_user_binding {
    const char *lti_context_id, *lti_resource_link_id, *sourcedid, *service_url;
    const char *data_values_accepted, *last_read_error;
    int64_t created_at, updated_at;
};
/* A confirmation link mailed to a user for an address they gave (store_email_confirm_create). */
struct store_user_email_link {
    int64_t id, created_at, expires_at, used_at; /* used_at 0: not followed */
    const char *email;
    unsigned char secret_hash[32]; /* the SHA-256 of the link's secret, all the store keeps */
};
/* A grade the store holds for a user on a resource link (from the LMS, a grader or the CLI). */
struct store_user_grade {
    const char *lti_resource_link_id, *source; /* source: "outcomes", "cli", ... as recorded */
    double score;
    int64_t recorded_at;
};
/*
 * A user as the store holds them (`ltibadges user show`; the tests read the
 * store's state through it): what the LMS sent of them, where their e-mail
 * address came from (NULL: the LMS; "confirmed", "unconfirmed": the learner),
 * their courses, outcome bindings, e-mail confirmation links and grades.
 * Strings live in the arena.
 */
struct store_user_info {
    int64_t id, created_at, updated_at;
    const char *lti_user_id, *given_name, *family_name, *full_name, *email, *email_source;
    const char *person_sourcedid;
    bool show_name;
    struct store_user_enrollment *enrollments;
    size_t nenrollments;
    struct store_user_binding *bindings;
    size_t nbindings;
    struct store_user_email_link *email_links; /* oldest first */
    size_t nemail_links;
    struct store_user_grade *grades; /* by resource link id */
    size_t ngrades;
};
/* By the consumer and the LMS's user id, in one snapshot; ERR_NOTFOUND. */
int store_user_get(struct store *s, int64_t consumer_id, const char *lti_user_id, struct arena *a,
                   struct store_user_info *out /* OUT */, struct err *err);
/* The id of the consumer's course `lti_context_id` (for store_course_admin); ERR_NOTFOUND. */
int store_context_find(struct store *s, int64_t consumer_id, const char *lti_context_id,
                       int64_t *id /* OUT */, struct err *err);

/*
 * What /metrics shows of the outboxes, read when it is asked for (a count
 * of every award and passback: a scrape's work, never a request's).
 */
#define STORE_METRICS_AWARD_GROUPS 64
struct store_award_group {
    enum store_award_state state;
    char backend[64];
    int64_t n;
};
struct store_outbox_metrics {
    struct store_award_group awards[STORE_METRICS_AWARD_GROUPS]; /* by state and backend */
    size_t n_awards;      /* groups past STORE_METRICS_AWARD_GROUPS are left out */
    int64_t passbacks[4]; /* queued, sending, done, failed */
    /* next_attempt_at of the oldest item due at `now` (0: none due) */
    int64_t award_oldest_due, passback_oldest_due;
};
int store_outbox_metrics(struct store *s, int64_t now, struct store_outbox_metrics *out /* OUT */,
                         struct err *err);
/*
 * For /healthz: the database opened afresh (never created) and read, so that
 * what the server's open connections and their caches would hide shows (the
 * file gone from its path, unreadable, not a database), with the oldest due
 * items of both outboxes (next_attempt_at, 0: none due). ERR_UNAVAILABLE with sqlite's
 * reason ("unable to open database file") when it cannot be.
 */
int store_health(struct store *s, int64_t now, int64_t *award /* OUT */,
                 int64_t *passback /* OUT */, struct err *err);

/*
 * ---- PostgreSQL (store/pg.c, store/migrate_pg.c) ----
 * Several instances on one PostgreSQL database (issue 23). A pool of libpq
 * connections to a URL, its schema and migrations; the operations above
 * run on it once the statement layer has a PostgreSQL engine.
 */
/*
 * `url` as logs and messages may show it: the password of the user part
 * and of a password= parameter replaced by "***" (everything between the
 * user's ':' and the last '@' of the authority, so a password holding '@'
 * or ':' goes whole), truncated to fit `outlen`.
 */
void store_pg_url_redact(const char *url, char *out, size_t outlen);
/*
 * Opens a pool of up to `pool` connections to the PostgreSQL database of
 * `url` (a libpq URL; the password from it, PGPASSFILE or the
 * environment), connecting one now: ERR_UNAVAILABLE "cannot connect to
 * the database: REASON" when it cannot be reached or refuses us (libpq's
 * reason, without the password), ERR_INVALID for a URL libpq cannot read.
 */
int store_pg_open(struct store_pg **out /* OUT */, const char *url, unsigned pool, struct err *err);
/* Closes every connection of the pool; NULL is a no-op. */
void store_pg_close(struct store_pg *pg);
/* Lets the pool make up to `pool` connections (more, or fewer for those made later). */
void store_pg_resize(struct store_pg *pg, unsigned pool);
/* The schema version PostgreSQL databases are migrated to: store_schema_latest()'s. */
int store_pg_schema_latest(void);
/* The database's schema version, 0 for a database without our tables. */
int store_pg_schema_version(struct store_pg *pg, int *version /* OUT */, struct err *err);
/*
 * Brings the schema to version `target` (at most store_pg_schema_latest()),
 * under an advisory lock, so that of instances starting together one
 * migrates and the others find it done. `before`: the version found;
 * `applied`: migrations run (0 when another process ran them). ERR_INVALID
 * for a database newer than this program: it refuses to start.
 */
int store_pg_migrate(struct store_pg *pg, int target, int *before /* OUT */, int *applied /* OUT */,
                     struct err *err);

/* ---- db copy: a sqlite database into PostgreSQL (store/copy.c) ---------- */

enum store_copy_flags {
    /* a target that holds rows has them replaced (in the same transaction) instead of refused */
    STORE_COPY_REPLACE = 1 << 0,
};

/* The tables of the schema a copy reports on, at most. */
#define STORE_COPY_TABLES_MAX 32

/* What a copy did. */
struct store_copy_report {
    int source_version; /* the source's schema version (0 before it was read) */
    int target_before;  /* the target's schema version before its migration */
    int migrated;       /* migrations run on the target */
    size_t ntables;
    struct store_copy_table {
        const char *table; /* static */
        int64_t copied;
        /* rows not copied (expired sessions and rate limit windows, nonces past every window) */
        int64_t left;
        const char *why; /* static: why rows of this table are left ("expired"), or NULL */
    } tables[STORE_COPY_TABLES_MAX];
};

/*
 * Copies the sqlite database at `path` into the PostgreSQL database of
 * `url` (store_pg_open's) in one transaction: every table, ids, secrets,
 * salts and images as they are, but for sessions and rate limit windows
 * expired at `now` and nonces older than LIMIT_OAUTH_WINDOW_MAX. The source must be at this
 * program's schema version (ERR_INVALID otherwise, `source_version` set:
 * migrate it first); the target is migrated first, under the migrations'
 * advisory lock, and must be empty (ERR_CONFLICT) unless
 * STORE_COPY_REPLACE. Messages name "the source" and "the target", never
 * the path or the URL. On failure the target holds what it held (but for
 * its migration) and `ntables` is 0.
 */
int store_copy_to_pg(const char *path, const char *url, unsigned flags, int64_t now,
                     struct store_copy_report *out /* OUT */, struct err *err);

#endif
