/*
 * awards/awards_int.h - what the files of awards/ share.
 */
#ifndef AWARDS_AWARDS_INT_H
#define AWARDS_AWARDS_INT_H

#include "awards/awards.h"
#include "images/images.h"
#include "net/net.h"

#include <pthread.h>

#define AWARDS_MAX_BACKENDS 8
/* Consumers whose request rate is tracked at once, and launches waiting for a grade read. */
#define OUTCOMES_BUCKETS 64
#define OUTCOMES_QUEUE   1024
/*
 * Courses whose need for LMS grades is remembered, and for how long
 * (seconds). Direct-mapped by course id: every course active in an hour of
 * a term (2 000 in bench/) keeps its slot, or each launch would ask the
 * outcomes worker and the database again (24 bytes a slot).
 */
#define OUTCOMES_NEEDS_CACHE 8192
#define OUTCOMES_NEEDS_TTL   10

/* Whether a course's rules need its LMS grades, as last read. */
struct outcomes_need {
    int64_t context_id; /* 0: empty */
    int64_t checked_at;
    bool needs;
};

struct outcomes_bucket {
    int64_t consumer_id; /* 0: free */
    double tokens;
    int64_t last_ns;
};

/* The outcomes worker (outcomes.c). */
struct outcomes {
    struct awards_outcomes_config cfg;
    char *ca_file;
    pthread_t thread;
    bool started, stop, woken;
    pthread_mutex_t mu; /* guards the queue, the buckets and the flags */
    pthread_cond_t cv;
    struct {
        int64_t user_id, context_id;
    } queue[OUTCOMES_QUEUE];
    size_t qhead, qlen;
    struct outcomes_bucket buckets[OUTCOMES_BUCKETS];
    struct outcomes_need needs[OUTCOMES_NEEDS_CACHE]; /* direct-mapped by context id */
    struct net_http *http;                            /* the worker thread's */
    int64_t next_sweep; /* the worker thread's: when the periodic reads look for due bindings */
};

struct awards {
    struct store *store;
    char *public_url, *issuer_name, *issuer_url, *issuer_email, *issuer_description,
        *issuer_image_url;
    char *default_backend;       /* [awards] backend: BadgeClasses of consumers without their own */
    int64_t lease;               /* the built-in worker's claim, seconds ([awards] lease) */
    char *default_email;         /* badges@HOST until [issuer] email is set */
    struct hosted_issuer issuer; /* views of the strings above */
    struct awards_backend {
        struct awards *a;
        char *name;
        struct backend *b;
        pthread_t thread; /* a remote backend's worker */
        bool started;
    } backends[AWARDS_MAX_BACKENDS];
    size_t nbackends;

    pthread_t thread;
    bool started, stop, woken;
    pthread_mutex_t mu;
    pthread_cond_t cv;

    pthread_mutex_t stats_mu;
    struct awards_stats stats;
    /* under stats_mu: each backend's last answer (BACKEND_OK before the first) */
    enum backend_status backend_last[AWARDS_MAX_BACKENDS];

    struct outcomes oc;

    struct awards_hooks *hooks; /* backends taking webhooks (hooks.c); NULL: none */
};

/* Writes the refused hooks still counted in memory, then frees what hooks.c holds. */
void awards_hooks_free(struct awards *a);

/* A random seed for awards_backoff()'s jitter. */
unsigned awards_jitter(void);
/* A backend's cancel hook while the workers run: true once they are told to stop. */
bool awards_stopping(void *cls);
/* The backend registered under `name`, or NULL. */
struct backend *awards_backend(struct awards *a, const char *name);
/* A BadgeClass and an award as backends see them (views into the store structs). */
void awards_to_backend_badge(const struct store_badge *b, struct backend_badge *out);
void awards_to_backend_award(const struct store_award *w, struct backend_award *out);

/*
 * The evidence narrative of an award a rule made, in the arena: the course's
 * title, the mode (completion), the activity and score (score), the courses
 * completed (count). NULL for a manual rule.
 */
const char *awards_narrative(struct arena *a, enum store_rule_kind kind, const char *course,
                             const char *mode, const char *activity, double score,
                             int64_t completed);

#endif
