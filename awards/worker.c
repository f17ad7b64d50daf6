/*
 * awards/worker.c - the outbox workers: issue due awards through their
 * BadgeClass's backend, revoke them there, send BadgeClass edits, and
 * record what happened.
 *
 * An award is claimed (state issuing, with a lease) in one transaction
 * before anything is sent, and recorded in another after the backend
 * answered. A crash in between leaves it issuing; when the lease runs out
 * (or at the next start) it is claimed again, and since it was attempted
 * before, the backend is first asked whether it already holds an assertion
 * for the award (find_assertion), so a crash or a lost answer between
 * sending and recording does not issue twice. Retryable failures back off
 * exponentially with jitter, or as long as the platform's Retry-After says;
 * permanent ones keep the platform's message and wait for an operator
 * (award retry).
 *
 * Threads. The built-in issuer never waits on another server: "lb-awards"
 * claims a batch of its awards and records them in one transaction. Each
 * remote backend has its own thread, which claims one award at a time with
 * a lease longer than any attempt and records its result as soon as it is
 * known, in the transaction that claims the next: a platform that hangs
 * holds one award and its own thread, and nothing else; a stop cancels the
 * call under way within about a second.
 */
#include "base/base.h"
#include "base/log.h"
#include "awards/awards_int.h"

int64_t awards_backoff(int64_t attempts, int64_t retry_after, unsigned jitter_seed)
{
    int64_t d = LIMIT_AWARDS_BACKOFF_BASE;

    for (int64_t i = 1; i < attempts && d < LIMIT_AWARDS_BACKOFF_MAX; i++)
        d *= 2;
    if (d > LIMIT_AWARDS_BACKOFF_MAX)
        d = LIMIT_AWARDS_BACKOFF_MAX;
    /* jitter: +0..25%, so awards failed together do not all come back together */
    d += (int64_t)(jitter_seed % (unsigned)(d / 4 + 1));
    if (retry_after > d)
        d = retry_after;
    return d;
}

void awards_to_backend_badge(const struct store_badge *b, struct backend_badge *out)
{
    memset(out, 0, sizeof(*out));
    out->slug = b->slug;
    out->name = b->name;
    out->description = b->description;
    out->image_type = b->image_type;
    out->image = b->image;
    out->image_len = b->image_len;
    if (awards_is_default_image(b->image_type, b->image, b->image_len))
        awards_default_image_png(&out->default_png, &out->default_png_len);
    out->criteria_url = b->criteria_url;
    out->criteria_narrative = b->criteria_narrative;
    out->issuing_component = b->issuing_component;
    out->tags = b->tags;
    out->alignments = b->alignments;
    out->expires_days = b->expires_days;
    out->backend_id = b->backend_id;
}

void awards_to_backend_award(const struct store_award *w, struct backend_award *out)
{
    memset(out, 0, sizeof(*out));
    out->uid = w->uid;
    out->salt = w->salt;
    out->recipient_email = w->recipient_email;
    out->narrative = w->narrative;
    out->evidence_name = w->context_title ? w->context_title : w->lti_context_id;
    out->recipient_name = w->user_name;
    out->course = out->evidence_name;
    out->consumer = w->consumer_key;
    out->assertion_id = w->assertion_id;
    out->issued_at = w->issued_at;
    out->expires_at = w->expires_at;
}

/*
 * The issue date sent: when the award was earned (its record was made with
 * the event), the same on every attempt; the expiry counts from it.
 */
static void award_dates(const struct store_award *w, const struct store_badge *b,
                        struct backend_award *ba)
{
    ba->issued_at = w->created_at;
    ba->expires_at = b->expires_days > 0 ? w->created_at + b->expires_days * 86400 : 0;
}

unsigned awards_jitter(void)
{
    unsigned v = 0;

    util_random((unsigned char *)&v, sizeof(v), NULL);
    return v;
}

/* Remembers what backend `be` last answered, for /healthz. */
static void backend_answered(struct awards *a, const struct backend *be, enum backend_status st)
{
    pthread_mutex_lock(&a->stats_mu);
    for (size_t i = 0; i < a->nbackends; i++)
        if (a->backends[i].b == be)
            a->backend_last[i] = st;
    pthread_mutex_unlock(&a->stats_mu);
}

size_t awards_backends_in_auth(struct awards *a, const char **names, size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&a->stats_mu);
    for (size_t i = 0; i < a->nbackends && n < max; i++)
        if (a->backend_last[i] == BACKEND_AUTH)
            names[n++] = a->backends[i].name;
    pthread_mutex_unlock(&a->stats_mu);
    return n;
}

/* A failed attempt: back off, or fail for good. */
static void failure(const struct store_award *w, const struct backend_result *r, int64_t now,
                    struct arena *ar, struct store_award_update *u)
{
    u->error = arena_memdupz(ar, r->message, strlen(r->message));
    if (r->status == BACKEND_PERMANENT) {
        u->kind = AWARD_UPD_FAILED;
        return;
    }
    {
        /* auth: credentials an operator must fix; keep trying, but slowly */
        int64_t floor = r->status == BACKEND_AUTH ? 300 : 0;

        u->kind = AWARD_UPD_RETRY;
        u->next_at =
            now + awards_backoff(w->attempts, r->retry_after > floor ? r->retry_after : floor,
                                 awards_jitter());
    }
}

static void process_revoke(struct awards *a, struct backend *be, const struct store_award *w,
                           const struct backend_badge *bb, int64_t now, struct arena *ar,
                           struct store_award_update *u)
{
    struct backend_award ba;
    struct backend_result r;

    awards_to_backend_award(w, &ba);
    backend_result_init(&r);
    if (!ba.assertion_id && be->ops->find_assertion) {
        /*
         * Attempted, but no assertion id was recorded (a lost answer, a
         * failure): whatever the platform holds for the award is revoked;
         * nothing there, or one already revoked, is done.
         */
        be->ops->find_assertion(be, bb, &ba, &r);
        backend_answered(a, be, r.status);
        if (r.status == BACKEND_OK && (!r.found || r.revoked)) {
            u->kind = AWARD_UPD_REVOKE_SYNCED;
            return;
        }
        if (r.status == BACKEND_OK)
            ba.assertion_id = arena_memdupz(ar, r.id, strlen(r.id));
    }
    if (r.status == BACKEND_OK && ba.assertion_id) {
        be->ops->revoke(be, bb, &ba, w->revoke_reason, &r);
        backend_answered(a, be, r.status);
    }
    if (r.status == BACKEND_OK) {
        u->kind = AWARD_UPD_REVOKE_SYNCED;
    } else {
        u->kind = AWARD_UPD_REVOKE_RETRY;
        u->next_at = now + awards_backoff(w->attempts + 1, r.retry_after, awards_jitter());
        u->error = arena_memdupz(ar, r.message, strlen(r.message));
    }
}

/* The BadgeClasses read for one claim: a claim's awards mostly share a few. */
struct badge_cache {
    struct store_badge *v;
    size_t n;
};

static int badge_for(struct awards *a, struct badge_cache *bc, int64_t id, struct arena *ar,
                     struct store_badge *out, struct err *err)
{
    for (size_t i = 0; i < bc->n; i++) {
        if (bc->v[i].id == id) {
            *out = bc->v[i];
            return 0;
        }
    }
    if (store_badge_get_id(a->store, id, ar, out, err) < 0)
        return -1;
    bc->v[bc->n++] = *out; /* room for one per award of the claim */
    return 0;
}

/* Sends one claimed award to its backend; what happened goes into `u`, recorded later. */
static void process(struct awards *a, struct badge_cache *cache, const struct store_award *w,
                    int64_t now, struct arena *ar, struct store_award_update *u)
{
    struct store_badge b;
    struct backend_badge bb;
    struct backend_award ba;
    struct backend_result r;
    struct backend *be;
    struct err err = ERR_INIT;

    u->id = w->id;
    backend_result_init(&r);
    if (badge_for(a, cache, w->badge_id, ar, &b, &err) < 0) {
        backend_result_set(&r, BACKEND_RETRY, "%s", err.msg);
        failure(w, &r, now, ar, u);
        if (w->state == AWARD_REVOKED)
            u->kind = AWARD_UPD_REVOKE_RETRY;
        return;
    }
    be = awards_backend(a, b.backend);
    if (!be) {
        backend_result_set(&r, BACKEND_PERMANENT, "no backend '%s' is configured", b.backend);
        failure(w, &r, now, ar, u);
        if (w->state == AWARD_REVOKED) {
            u->kind = AWARD_UPD_REVOKE_RETRY;
            u->next_at = now + LIMIT_AWARDS_BACKOFF_MAX;
        }
        return;
    }
    awards_to_backend_badge(&b, &bb);
    if (be->ops->remote) {
        char *m = arena_alloc(ar, BACKEND_MARKER_LEN + 1);

        backend_marker(a->public_url, b.slug, m);
        bb.marker = m;
        bb.public_url = a->public_url;
    }
    if (w->state == AWARD_REVOKED) {
        process_revoke(a, be, w, &bb, now, ar, u);
        return;
    }
    if (!b.backend_id) {
        /*
         * Rule 3: created at the backend on its first award, and the id it
         * gives stored at once, before any award uses it: a crash after this
         * must not create the BadgeClass there a second time.
         */
        if (be->ops->find_badge_class) {
            /* one made before whose answer was lost (a timeout, a kill) is found, not made again */
            be->ops->find_badge_class(be, &bb, &r);
            backend_answered(a, be, r.status);
            if (r.status != BACKEND_OK) {
                failure(w, &r, now, ar, u);
                return;
            }
        }
        if (!r.found) {
            be->ops->create_badge_class(be, &bb, &r);
            backend_answered(a, be, r.status);
            if (r.status != BACKEND_OK) {
                failure(w, &r, now, ar, u);
                return;
            }
        }
        if (store_badge_set_backend_id(a->store, b.id, r.id, &err) < 0) {
            backend_result_set(&r, BACKEND_RETRY, "%s", err.msg);
            failure(w, &r, now, ar, u);
            return;
        }
        bb.backend_id = arena_memdupz(ar, r.id, strlen(r.id));
        /* the next awards of this claim see the id too */
        for (size_t i = 0; i < cache->n; i++) {
            if (cache->v[i].id == b.id)
                cache->v[i].backend_id = bb.backend_id;
        }
    }
    awards_to_backend_award(w, &ba);
    award_dates(w, &b, &ba);
    backend_result_init(&r);
    if (w->attempts > 1 && be->ops->find_assertion) {
        /* attempted before: the platform may hold it already (a crash after sending) */
        be->ops->find_assertion(be, &bb, &ba, &r);
        backend_answered(a, be, r.status);
        if (r.status != BACKEND_OK) {
            failure(w, &r, now, ar, u);
            return;
        }
    }
    if (!r.found || r.revoked) {
        be->ops->issue(be, &bb, &ba, &r);
        backend_answered(a, be, r.status);
        if (r.status != BACKEND_OK) {
            failure(w, &r, now, ar, u);
            return;
        }
    }
    u->kind = AWARD_UPD_ISSUED;
    u->assertion_id = arena_memdupz(ar, r.id, strlen(r.id));
    u->assertion_url = r.url[0] ? arena_memdupz(ar, r.url, strlen(r.url)) : NULL;
    u->issued_at = ba.issued_at;
    u->expires_at = ba.expires_at;
    /* an ok answer's message is a note kept on the award (an assertion adopted) */
    if (r.message[0]) {
        u->error = arena_memdupz(ar, r.message, strlen(r.message));
        LOG(LOG_LEVEL_INFO, "award note", LOG_STR("award", w->uid), LOG_STR("note", r.message));
    }
}

/* Counts what a recorded claim did, for /healthz and /metrics; *issued: how many were issued. */
static void count_updates(struct awards *a, const struct store_award_update *u, size_t n,
                          size_t *issued)
{
    *issued = 0;
    pthread_mutex_lock(&a->stats_mu);
    for (size_t i = 0; i < n; i++) {
        if (u[i].status < 0)
            continue; /* moved on meanwhile (revoked, or a newer attempt) */
        switch (u[i].kind) {
        case AWARD_UPD_ISSUED:
            a->stats.issued++;
            a->stats.last_success = util_now();
            (*issued)++;
            break;
        case AWARD_UPD_REVOKE_SYNCED:
            a->stats.revoked++;
            a->stats.last_success = util_now();
            break;
        case AWARD_UPD_FAILED:
            a->stats.failed++;
            break;
        default:
            a->stats.retried++;
            break;
        }
    }
    pthread_mutex_unlock(&a->stats_mu);
}

/* Claims and issues what is due in `scope`; the records are written in one transaction. */
static int run_claim(struct awards *a, const struct store_claim_scope *scope, int64_t now,
                     int64_t lease, size_t max, size_t *handled, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_award *due;
    struct store_award_update *u;
    struct badge_cache cache;
    size_t n, issued = 0;
    int ret;

    *handled = 0;
    if (store_award_claim(a->store, scope, now, lease, max, &ar, &due, &n, err) < 0) {
        arena_release(&ar);
        return -1;
    }
    u = arena_alloc(&ar, (n ? n : 1) * sizeof(*u));
    memset(u, 0, (n ? n : 1) * sizeof(*u));
    cache.v = arena_alloc(&ar, (n ? n : 1) * sizeof(*cache.v));
    cache.n = 0;
    for (size_t i = 0; i < n; i++)
        process(a, &cache, &due[i], now, &ar, &u[i]);
    /*
     * One transaction for the whole claim. If it fails, the awards stay
     * issuing and are claimed again when their lease runs out: the backend
     * is asked first, so nothing is issued twice.
     */
    ret = n ? store_award_update_batch(a->store, u, n, err) : 0;
    if (ret == 0) {
        count_updates(a, u, n, &issued);
        *handled = n;
        if (issued)
            awards_outcomes_wake(a); /* their passbacks were queued with them */
    }
    arena_release(&ar);
    return ret;
}

/*
 * Sends the edits of BadgeClasses in `scope` that are due to their
 * platform (update_badge_class), retried like awards; a backend without
 * the op (hosted: its documents are read from the record) has nothing to
 * send. *sent: how many were handled.
 */
static int run_syncs(struct awards *a, const struct store_claim_scope *scope, int64_t now,
                     size_t *sent, struct err *err)
{
    struct store_badge_sync due[LIMIT_AWARDS_SYNCS];
    size_t n;

    *sent = 0;
    if (store_badge_syncs_due(a->store, scope, now, LIMIT_AWARDS_SYNCS, due, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n && !awards_stopping(a); i++) {
        struct arena ar = ARENA_INIT;
        struct store_badge b;
        struct backend_badge bb;
        struct backend_result r;
        struct backend *be;
        int64_t next_at = 0;
        const char *error = NULL;
        int ret;

        backend_result_init(&r);
        if (store_badge_get_id(a->store, due[i].id, &ar, &b, err) < 0) {
            arena_release(&ar);
            return -1;
        }
        be = awards_backend(a, b.backend);
        if (!be) {
            backend_result_set(&r, BACKEND_PERMANENT, "no backend '%s' is configured", b.backend);
        } else if (b.backend_id && be->ops->update_badge_class) {
            char *m = arena_alloc(&ar, BACKEND_MARKER_LEN + 1);

            awards_to_backend_badge(&b, &bb);
            backend_marker(a->public_url, b.slug, m);
            bb.marker = m;
            bb.public_url = a->public_url;
            be->ops->update_badge_class(be, &bb, &r);
            backend_answered(a, be, r.status);
        }
        if (r.status != BACKEND_OK) {
            error = r.message;
            if (r.status != BACKEND_PERMANENT) {
                int64_t floor = r.status == BACKEND_AUTH ? 300 : 0;

                next_at = now + awards_backoff(due[i].attempts + 1,
                                               r.retry_after > floor ? r.retry_after : floor,
                                               awards_jitter());
            }
        }
        ret = store_badge_sync_done(a->store, due[i].id, due[i].gen, next_at, error, err);
        arena_release(&ar);
        if (ret < 0)
            return -1;
        (*sent)++;
    }
    return 0;
}

/* The names of the remote backends: the built-in worker leaves their awards to their threads. */
static size_t remote_names(struct awards *a, const char **names)
{
    size_t n = 0;

    for (size_t i = 0; i < a->nbackends; i++)
        if (a->backends[i].b->ops->remote)
            names[n++] = a->backends[i].name;
    return n;
}

int awards_run_due(struct awards *a, int64_t now, size_t *handled, struct err *err)
{
    const char *remote[AWARDS_MAX_BACKENDS];
    struct store_claim_scope scope = { NULL, remote, remote_names(a, remote) };
    size_t synced;

    if (run_claim(a, &scope, now, a->lease, LIMIT_AWARDS_CLAIM, handled, err) < 0)
        return -1;
    return run_syncs(a, &scope, now, &synced, err);
}

/*
 * Records the answers `u[0..*n)` of a remote claim in one transaction that
 * does not wait for the disk; on failure they stay issuing (claimed again
 * after their lease, looked up first).
 */
static int record_answers(struct awards *a, struct store_award_update *u, size_t *n,
                          size_t *handled, struct err *err)
{
    size_t issued = 0, k = *n;

    *n = 0;
    if (k == 0)
        return 0;
    if (store_award_record_unsynced(a->store, u, k, err) < 0)
        return -1;
    count_updates(a, u, k, &issued);
    *handled += k;
    if (issued)
        awards_outcomes_wake(a); /* their passbacks were queued with them */
    return 0;
}

/*
 * A remote backend's awards, up to `most`: claimed LIMIT_AWARDS_REMOTE_CLAIM
 * at a time with one durable commit (sending must never start from a claim
 * a power cut could undo: the award would go out again without being looked
 * up first), then sent one at a time. Their answers are recorded without
 * waiting for the disk (store_award_record_unsynced: a lost record leaves
 * the award issuing, looked up before it is sent again), several in one
 * transaction: those of the claim, or of LIMIT_AWARDS_REMOTE_RECORD_MS,
 * whichever ends first (an answer can wait for the call of the award after
 * it, at most that call's timeout). A transaction an answer took the write
 * lock from the launches and the built-in issuer as often as the platform
 * answered.
 * A stop, or a claim whose lease could no longer outlast another attempt,
 * records the answers it has and gives back the awards not yet sent. The
 * clock moves on from `now` as the awards take their time, so each claim's
 * lease starts when it is made.
 */
static int run_remote(struct awards *a, const struct store_claim_scope *scope, int64_t now,
                      size_t most, size_t *handled, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct badge_cache cache;
    int64_t start = util_now();
    int ret = 0;

    *handled = 0;
    cache.v = arena_alloc(&ar, (most ? most : 1) * sizeof(*cache.v));
    cache.n = 0;
    while (*handled < most && !awards_stopping(a) && ret == 0) {
        int64_t t = now + (util_now() - start), claimed_at = t, first_ns = 0;
        size_t want = most - *handled, n = 0, i, nu = 0;
        struct store_award *due = NULL;
        int64_t back[LIMIT_AWARDS_REMOTE_CLAIM];
        struct store_award_update u[LIMIT_AWARDS_REMOTE_CLAIM];

        if (want > LIMIT_AWARDS_REMOTE_CLAIM)
            want = LIMIT_AWARDS_REMOTE_CLAIM;
        if (store_award_claim(a->store, scope, t, LIMIT_AWARDS_REMOTE_LEASE, want, &ar, &due, &n,
                              err) < 0) {
            ret = -1;
            break;
        }
        for (i = 0; i < n; i++) {
            t = now + (util_now() - start);
            if (awards_stopping(a) ||
                t - claimed_at > LIMIT_AWARDS_REMOTE_LEASE - LIMIT_AWARDS_REMOTE_ATTEMPT)
                break;
            memset(&u[nu], 0, sizeof(u[nu]));
            process(a, &cache, &due[i], t, &ar, &u[nu]);
            if (nu++ == 0)
                first_ns = util_mono_ns();
            if (i + 1 < n && util_mono_ns() - first_ns < LIMIT_AWARDS_REMOTE_RECORD_MS * 1000000LL)
                continue;
            if (record_answers(a, u, &nu, handled, err) < 0) {
                ret = -1;
                i++;
                break;
            }
        }
        /* the answers of a claim cut short (a stop, a lease running out) */
        if (ret == 0 && record_answers(a, u, &nu, handled, err) < 0)
            ret = -1;
        /* the awards of the claim not sent: due again at once, as they were */
        for (size_t k = i; k < n; k++)
            back[k - i] = due[k].id;
        if (i < n) {
            struct err rerr = ERR_INIT;

            if (store_award_release(a->store, back, n - i, t, ret < 0 ? &rerr : err) < 0 &&
                ret == 0)
                ret = -1;
            err_clear(&rerr);
            break;
        }
        if (n < want)
            break; /* nothing more is due */
    }
    arena_release(&ar);
    return ret;
}

int awards_run_backend(struct awards *a, const char *name, int64_t now, size_t most,
                       size_t *handled, struct err *err)
{
    struct store_claim_scope scope = { name, NULL, 0 };
    size_t synced;

    /*
     * sent one at a time, their answers recorded together: a hang holds
     * its claim's awards (which wait behind it anyway), a stop records the
     * answers it has and gives back the ones not sent
     */
    if (run_remote(a, &scope, now, most, handled, err) < 0)
        return -1;
    if (run_syncs(a, &scope, now, &synced, err) < 0)
        return -1;
    *handled += synced;
    return 0;
}

bool awards_stopping(void *cls)
{
    struct awards *a = cls;
    bool stop;

    pthread_mutex_lock(&a->mu);
    stop = a->stop;
    pthread_mutex_unlock(&a->mu);
    return stop;
}

/*
 * The loop of a worker thread: `run` until the stop, going again at once
 * while it finds work, else waiting for a wake or a second.
 */
static void worker_loop(struct awards *a, const char *what, struct awards_backend *remote)
{
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        struct err err = ERR_INIT;
        size_t n = 0;
        int ret;

        if (!remote)
            a->woken = false;
        pthread_mutex_unlock(&a->mu);
        if (remote)
            ret = awards_run_backend(a, remote->name, util_now(), LIMIT_AWARDS_CLAIM, &n, &err);
        else
            ret = awards_run_due(a, util_now(), &n, &err);
        if (ret < 0) /* the database failed: say so (at most once a second), try again */
            LOG(LOG_LEVEL_ERROR, what, LOG_STR("error", err.msg), LOG_STR("detail", err.detail));
        pthread_mutex_lock(&a->mu);
        /* a full claim means more is due: go again at once */
        if (ret == 0 && (remote ? n > 0 : n == LIMIT_AWARDS_CLAIM))
            continue;
        if ((remote || !a->woken) && !a->stop) {
            struct timespec until;

            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&a->cv, &a->mu, &until);
        }
    }
    pthread_mutex_unlock(&a->mu);
}

static void *worker_main(void *arg)
{
    pthread_setname_np(pthread_self(), "lb-awards");
    worker_loop(arg, "award worker", NULL);
    return NULL;
}

static void *remote_main(void *arg)
{
    struct awards_backend *ab = arg;
    char name[16];

    /* thread names are at most 15 bytes */
    snprintf(name, sizeof(name), "lb-b-%.10s", ab->name);
    pthread_setname_np(pthread_self(), name);
    worker_loop(ab->a, "award worker (remote backend)", ab);
    return NULL;
}

int awards_worker_start(struct awards *a, struct err *err)
{
    int64_t n;

    if (a->started)
        return 0;
    /* what a killed server was issuing is finished first (find_assertion, then issue) */
    if (store_award_reclaim(a->store, util_now(), &n, err) < 0)
        return -1;
    a->stop = false;
    for (size_t i = 0; i < a->nbackends; i++) {
        a->backends[i].b->cancelled = awards_stopping;
        a->backends[i].b->cancelled_cls = a;
    }
    if (pthread_create(&a->thread, NULL, worker_main, a) != 0)
        return err_set(err, ERR_INTERNAL, "cannot start the award worker");
    a->started = true;
    for (size_t i = 0; i < a->nbackends; i++) {
        struct awards_backend *ab = &a->backends[i];

        if (!ab->b->ops->remote)
            continue;
        if (pthread_create(&ab->thread, NULL, remote_main, ab) != 0) {
            awards_worker_stop(a);
            return err_set(err, ERR_INTERNAL, "cannot start the award worker of backend '%s'",
                           ab->name);
        }
        ab->started = true;
    }
    if (awards_outcomes_start(a, err) < 0) {
        awards_worker_stop(a);
        return -1;
    }
    return 0;
}

void awards_worker_request_stop(struct awards *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->oc.mu);
    a->oc.stop = true;
    pthread_cond_broadcast(&a->oc.cv);
    pthread_mutex_unlock(&a->oc.mu);
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void awards_worker_stop(struct awards *a)
{
    if (!a)
        return;
    awards_outcomes_stop(a);
    if (!a->started)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    for (size_t i = 0; i < a->nbackends; i++) {
        if (a->backends[i].started)
            pthread_join(a->backends[i].thread, NULL);
        a->backends[i].started = false;
        a->backends[i].b->cancelled = NULL;
    }
    a->started = false;
}

void awards_wake(struct awards *a)
{
    pthread_mutex_lock(&a->mu);
    a->woken = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void awards_stats(struct awards *a, struct awards_stats *out)
{
    pthread_mutex_lock(&a->stats_mu);
    *out = a->stats;
    pthread_mutex_unlock(&a->stats_mu);
}
