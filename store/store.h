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

enum store_open_flags {
    /* start the launch writer and the checkpointer threads (the server) */
    STORE_OPEN_WRITER = 1 << 0,
    /* do not apply pending migrations (`ltibadges migrate` reports them itself) */
    STORE_OPEN_NO_MIGRATE = 1 << 1,
};

/*
 * Opens (creating if needed) the database at `path` and applies pending
 * migrations unless STORE_OPEN_NO_MIGRATE. `*out` is NULL on failure.
 */
int store_open(struct store **out /* OUT */, const char *path, unsigned flags, struct err *err);
/* Stops the writer after the queued launches are written, closes everything. NULL is a no-op. */
void store_close(struct store *s);

/* The newest schema version this build knows, and the version of the open database. */
int store_schema_latest(void);
int store_schema_version(struct store *s, int *version /* OUT */, struct err *err);
/* Applies pending migrations; `*applied` is how many ran (0 when up to date). */
int store_migrate(struct store *s, int *applied /* OUT */, struct err *err);

/* A cheap read that proves the database answers (for /healthz). */
int store_ping(struct store *s, struct err *err);

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
    int64_t users; /* how many users it has launched (lists only) */
};

/* Adds a consumer; ERR_CONFLICT when the key exists. */
int store_consumer_add(struct store *s, const char *key, const char *secret, const char *name,
                       struct store_consumer *out /* OUT, may be NULL */, struct err *err);
/* ERR_NOTFOUND when no consumer has `key`. Disabled consumers are found too. */
int store_consumer_find(struct store *s, struct str key, struct store_consumer *out /* OUT */,
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
    struct str nonce;
    int64_t timestamp; /* oauth_timestamp */
    int64_t now;
    struct str lms; /* LMS family, updates the consumer's */
    struct str user_id, given_name, family_name, full_name, email, person_sourcedid;
    struct str context_id, context_title, context_label;
    struct str resource_link_id, resource_link_title;
    struct str roles, ext_roles;
    unsigned role_flags;
    struct str mode;
    struct str outcome_service_url, result_sourcedid, outcome_data_accepted;
    struct str return_url, document_target, locale;
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
};

struct store_launch_job;
typedef void store_launch_done_fn(struct store_launch_job *job);

struct store_launch_job {
    struct store_launch launch;        /* borrowed views: must stay valid until done() */
    store_launch_done_fn *done;        /* called once, on the writer thread, after the commit */
    void *cls;                         /* the caller's */
    int status;                        /* OUT: 0 or -1 */
    struct err err;                    /* OUT: ERR_REPLAY for a nonce already used */
    struct store_launch_result result; /* OUT */
    struct store_launch_job *next;     /* the queue's */
};

/*
 * Queues a launch for the writer: its nonce is claimed by a unique insert,
 * then user, context, resource link, enrollment, outcome binding and session
 * are written in the same transaction. `job->done` runs once the transaction
 * committed (or failed). With the queue full or the store closing, done()
 * runs at once with ERR_UNAVAILABLE. Needs STORE_OPEN_WRITER.
 */
void store_launch_submit(struct store *s, struct store_launch_job *job);
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
};

/*
 * The live session `id` if its secret hashes to `secret_hash` (compared in
 * constant time); ERR_NOTFOUND when unknown, expired or the secret differs.
 */
int store_session_get(struct store *s, int64_t id, const unsigned char secret_hash[32], int64_t now,
                      struct arena *arena, struct store_session *out /* OUT */, struct err *err);

/* ---- Statistics (benchmarks, health) ------------------------------------ */

struct store_stats {
    uint64_t batches, launches, replays, checkpoints;
};
void store_stats(struct store *s, struct store_stats *out /* OUT */);

/* Counts rows of a table this module owns, for tests and `consumer list`; ERR_INVALID otherwise. */
int store_count(struct store *s, const char *table, int64_t *out /* OUT */, struct err *err);

#endif
