/*
 * tests/unit/awards/outbox.c - the outbox workers against a scripted remote
 * platform stand-in and a real sqlite store: retryable failures then
 * recovery (one assertion), Retry-After honoured, a permanent failure kept
 * with its message and retried by hand, auth failures backing off slowly,
 * a crash after the platform issued but before the award was recorded
 * (found again, not issued twice), lost answers of issue and of BadgeClass
 * create (looked up before anything is sent again), the issue date the same
 * on every attempt, revoking an award whose outcome was unknown, BadgeClass
 * edits sent (update) and retried, per-backend claims with leases that
 * outlast them, a hanging platform that delays only its own awards and a
 * stop during the hang, and the backoff schedule.
 */
#include "base/base.h"
#include "awards/awards.h"
#include "backends/backends.h"
#include "store/store.h"
#include "store/store_int.h" /* store_stmt_reprepares: SQLite's, not in store.h */

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <cmocka.h>
#include <unistd.h>

static char dbpath[256];

/* What the stand-in does with a call. */
enum act {
    ACT_OK,
    ACT_RETRY,
    ACT_AUTH,
    ACT_PERMANENT,
    ACT_LOST, /* done at the platform, but the answer never came: a timeout */
    ACT_HANG, /* says nothing until the caller gives up (its cancel hook) */
};

/* The stand-in: answers from a script, remembers what it holds like a platform would. */
struct fake {
    pthread_mutex_t mu;  /* the hang test calls it from a worker thread */
    pthread_cond_t cv;   /* a hang began; the test asked for a stop */
    enum act script[16]; /* acts of issue(), in order; past the end: ok */
    int64_t retry_after[16];
    size_t nscript, calls;
    enum act create_act, update_act[4];
    size_t nupdate_act;
    int creates, finds, badge_finds, revokes, updates;
    char issued_uids[64][33]; /* assertions the platform holds, by our uid */
    bool issued_revoked[64];
    size_t nissued;
    char badge_marker[BACKEND_MARKER_LEN + 1]; /* the BadgeClass it holds, by its tag */
    char updated_name[64];                     /* the name the last update sent */
    int64_t issued_on[16];                     /* issuedOn of each issue() */
    bool hanging;                              /* in a hang now */
    void (*during_update)(void);               /* run inside the next update() */
    void (*during_issue)(size_t i);            /* run inside each issue(), i from 0 */
};

static struct fake fk = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* Sets a result for a scripted act; true when the call is to go on as done. */
static bool act(struct backend *b, enum act what, int64_t retry_after, struct backend_result *r,
                size_t i)
{
    switch (what) {
    case ACT_OK:
    case ACT_LOST:
        return true;
    case ACT_RETRY:
        backend_result_set(r, BACKEND_RETRY, "platform says no (%zu)", i);
        break;
    case ACT_AUTH:
        backend_result_set(r, BACKEND_AUTH, "platform says no (%zu)", i);
        break;
    case ACT_PERMANENT:
        backend_result_set(r, BACKEND_PERMANENT, "platform says no (%zu)", i);
        break;
    case ACT_HANG:
        fk.hanging = true;
        pthread_cond_broadcast(&fk.cv);
        /*
         * The stand-in's silence: it answers once the caller's hook says to
         * give up, asked again whenever the test says something changed.
         */
        while (!b->cancelled || !b->cancelled(b->cancelled_cls))
            pthread_cond_wait(&fk.cv, &fk.mu);
        fk.hanging = false;
        backend_result_set(r, BACKEND_RETRY, "cancelled before the answer came");
        break;
    }
    r->retry_after = retry_after;
    return false;
}

/* A done call whose answer is lost: the platform did it, the caller hears a timeout. */
static void lost(enum act what, struct backend_result *r)
{
    if (what == ACT_LOST) {
        backend_result_init(r);
        backend_result_set(r, BACKEND_RETRY, "no answer in time");
    }
}

static void fake_find_badge(struct backend *b, const struct backend_badge *bc,
                            struct backend_result *r)
{
    backend_result_init(r);
    pthread_mutex_lock(&fk.mu);
    fk.badge_finds++;
    assert_non_null(bc->marker);
    if (fk.badge_marker[0] && strcmp(fk.badge_marker, bc->marker) == 0) {
        r->found = true;
        snprintf(r->id, sizeof(r->id), "entity-%s", bc->slug);
    }
    pthread_mutex_unlock(&fk.mu);
}

static void fake_create(struct backend *b, const struct backend_badge *bc, struct backend_result *r)
{
    backend_result_init(r);
    pthread_mutex_lock(&fk.mu);
    fk.creates++;
    if (act(b, fk.create_act, 0, r, 0)) {
        /* the platform holds it now, marked so that it can be found again */
        snprintf(fk.badge_marker, sizeof(fk.badge_marker), "%s", bc->marker);
        snprintf(r->id, sizeof(r->id), "entity-%s", bc->slug);
        lost(fk.create_act, r);
    }
    if (fk.create_act == ACT_PERMANENT)
        backend_result_set(r, BACKEND_PERMANENT, "name: this field may not be blank");
    pthread_mutex_unlock(&fk.mu);
}

static void fake_update(struct backend *b, const struct backend_badge *bc, struct backend_result *r)
{
    size_t i;

    backend_result_init(r);
    pthread_mutex_lock(&fk.mu);
    i = (size_t)fk.updates++;
    assert_non_null(bc->backend_id);
    if (fk.during_update) {
        void (*f)(void) = fk.during_update;

        fk.during_update = NULL;
        f();
    }
    if (act(b, i < fk.nupdate_act ? fk.update_act[i] : ACT_OK, 0, r, i))
        snprintf(fk.updated_name, sizeof(fk.updated_name), "%s", bc->name);
    pthread_mutex_unlock(&fk.mu);
}

static void fake_issue(struct backend *b, const struct backend_badge *bc,
                       const struct backend_award *a, struct backend_result *r)
{
    size_t i;
    enum act what;

    backend_result_init(r);
    pthread_mutex_lock(&fk.mu);
    i = fk.calls++;
    what = i < fk.nscript ? fk.script[i] : ACT_OK;
    assert_non_null(bc->backend_id); /* created at the backend before the first award */
    assert_non_null(a->recipient_email);
    if (i < 16)
        fk.issued_on[i] = a->issued_at;
    if (fk.during_issue)
        fk.during_issue(i);
    if (act(b, what, i < 16 ? fk.retry_after[i] : 0, r, i)) {
        snprintf(fk.issued_uids[fk.nissued++], 33, "%s", a->uid);
        snprintf(r->id, sizeof(r->id), "assertion-%s", a->uid);
        snprintf(r->url, sizeof(r->url), "https://platform.example/a/%s", a->uid);
        lost(what, r);
    }
    pthread_mutex_unlock(&fk.mu);
}

static void fake_find(struct backend *b, const struct backend_badge *bc,
                      const struct backend_award *a, struct backend_result *r)
{
    backend_result_init(r);
    pthread_mutex_lock(&fk.mu);
    fk.finds++;
    for (size_t i = 0; i < fk.nissued; i++) {
        if (strcmp(fk.issued_uids[i], a->uid) == 0) {
            r->found = true;
            r->revoked = fk.issued_revoked[i];
            snprintf(r->id, sizeof(r->id), "assertion-%s", a->uid);
            snprintf(r->url, sizeof(r->url), "https://platform.example/a/%s", a->uid);
        }
    }
    pthread_mutex_unlock(&fk.mu);
}

static void fake_revoke(struct backend *b, const struct backend_badge *bc,
                        const struct backend_award *a, const char *reason, struct backend_result *r)
{
    backend_result_init(r);
    pthread_mutex_lock(&fk.mu);
    fk.revokes++;
    assert_non_null(a->assertion_id);
    assert_string_equal(reason, "mistake");
    for (size_t i = 0; i < fk.nissued; i++) {
        char id[64];

        snprintf(id, sizeof(id), "assertion-%s", fk.issued_uids[i]);
        if (strcmp(id, a->assertion_id) == 0)
            fk.issued_revoked[i] = true;
    }
    pthread_mutex_unlock(&fk.mu);
}

static void fake_destroy(struct backend *b)
{
    free(b);
}

static const struct backend_ops fake_ops = {
    .name = "fake",
    .remote = true,
    .find_badge_class = fake_find_badge,
    .create_badge_class = fake_create,
    .update_badge_class = fake_update,
    .issue = fake_issue,
    .revoke = fake_revoke,
    .find_assertion = fake_find,
    .destroy = fake_destroy,
};

struct env {
    struct store *s;
    struct awards *a;
    int64_t consumer, badge;
    char slug[LIMIT_SLUG_LEN + 1];
};

static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";

static int setup(void **state)
{
    static struct env e;
    struct err err = ERR_INIT;
    struct store_consumer c;
    struct store_badge_new b;
    struct awards_config ac = { 0 };
    struct backend *fb = xcalloc(1, sizeof(*fb));

    {
        pthread_mutex_t mu = fk.mu;
        pthread_cond_t cv = fk.cv;

        memset(&fk, 0, sizeof(fk));
        fk.mu = mu;
        fk.cv = cv;
    }
    memset(&e, 0, sizeof(e));
    snprintf(dbpath, sizeof(dbpath), "/tmp/ltibadges-outbox-%d-%ld.db", (int)getpid(),
             (long)util_mono_ns());
    assert_int_equal(store_open(&e.s, dbpath, 0, &err), 0);
    assert_int_equal(store_consumer_add(e.s, "k", "secretsecretsecret", "LMS", &c, &err), 0);
    e.consumer = c.id;
    ac.public_url = "https://badges.example";
    assert_int_equal(awards_new(&e.a, e.s, &ac, &err), 0);
    fb->ops = &fake_ops;
    awards_add_backend(e.a, "fake", fb);
    memset(&b, 0, sizeof(b));
    b.consumer_id = c.id;
    b.slug_base = "helper";
    b.name = "Helper";
    b.description = "Helped";
    b.image = (const unsigned char *)svg;
    b.image_len = sizeof(svg) - 1;
    b.image_type = "image/svg+xml";
    b.backend = "fake";
    b.rule.kind = RULE_MANUAL;
    assert_int_equal(store_badge_create(e.s, &b, &e.badge, e.slug, &err), 0);
    *state = &e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    const char *sql = NULL;
    char p[300];

    awards_free(e->a);
    /* every statement the test ran was prepared once */
    if (store_stmt_reprepares(e->s, &sql) > 0)
        fail_msg("prepared again on a run: %s", sql);
    store_close(e->s);
    unlink(dbpath);
    snprintf(p, sizeof(p), "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", dbpath);
    unlink(p);
    return 0;
}

/* A learner with an email, made by a recorded launch, then a manual grant to them. */
static int64_t grant(struct env *e, const char *user)
{
    struct err err = ERR_INIT;
    struct store_launch l;
    int64_t id = 0;
    bool added;
    char nonce[40];

    memset(&l, 0, sizeof(l));
    snprintf(nonce, sizeof(nonce), "n-%s-%ld", user, (long)util_mono_ns());
    {
        struct store *w;

        assert_int_equal(store_open(&w, dbpath, STORE_OPEN_WRITER, &err), 0);
        l.consumer_id = e->consumer;
        l.nonce = str_from_cstr(nonce);
        l.timestamp = util_now();
        l.now = util_now();
        l.user_id = str_from_cstr(user);
        l.email = STR_LIT("learner@example.edu");
        l.resource_link_id = STR_LIT("rl");
        l.roles = STR_LIT("Learner");
        l.session_expires = util_now() + 60;
        assert_int_equal(store_launch_record(w, &l, NULL, &err), 0);
        store_close(w);
    }
    assert_int_equal(awards_grant(e->a, e->slug, e->consumer, user, "Because", &id, &added, &err),
                     0);
    assert_true(added);
    return id;
}

static struct store_award get(struct env *e, int64_t id, struct arena *ar)
{
    struct store_award w;
    struct err err = ERR_INIT;

    assert_int_equal(store_award_get(e->s, id, ar, &w, &err), 0);
    return w;
}

/* One pass of the stand-in platform's worker: claims one award, sends due BadgeClass edits. */
static size_t run(struct env *e, int64_t now)
{
    struct err err = ERR_INIT;
    size_t n = 0;

    assert_int_equal(awards_run_backend(e->a, "fake", now, 1, &n, &err), 0);
    return n;
}

/* A pass of up to `most` awards. */
static size_t run_most(struct env *e, int64_t now, size_t most)
{
    struct err err = ERR_INIT;
    size_t n = 0;

    assert_int_equal(awards_run_backend(e->a, "fake", now, most, &n, &err), 0);
    return n;
}

static void test_retryable_then_recovers(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    int64_t id = grant(e, "u1"), now = util_now();
    struct store_award w;
    char want[200];

    fk.script[0] = ACT_RETRY;
    fk.script[1] = ACT_RETRY;
    fk.retry_after[1] = 600; /* 429 with Retry-After: 600 */
    fk.nscript = 2;

    assert_int_equal(run(e, now), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_QUEUED);
    assert_string_equal(w.last_error, "platform says no (0)");
    assert_true(w.next_attempt_at > now && w.next_attempt_at <= now + 3);
    assert_int_equal(run(e, now), 0); /* not due yet */

    assert_int_equal(run(e, w.next_attempt_at), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_QUEUED);
    assert_true(w.next_attempt_at >= now + 600); /* the platform's Retry-After wins */

    assert_int_equal(run(e, w.next_attempt_at), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_ISSUED);
    assert_int_equal(w.attempts, 3);
    assert_null(w.last_error);
    assert_int_equal(fk.nissued, 1); /* exactly one assertion */
    assert_int_equal(fk.creates, 1); /* the BadgeClass was created once */
    snprintf(want, sizeof(want), "https://platform.example/a/%s", w.uid);
    assert_string_equal(w.assertion_url, want);
    assert_int_equal(run(e, w.next_attempt_at + 100000), 0); /* nothing more to do */
    arena_release(&ar);
}

static void test_permanent_kept_then_retried(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t id = grant(e, "u2"), now = util_now();
    struct store_award w;

    fk.script[0] = ACT_PERMANENT;
    fk.nscript = 1;
    assert_int_equal(run(e, now), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_FAILED);
    assert_string_equal(w.last_error, "platform says no (0)");
    assert_int_equal(run(e, now + 100000), 0); /* failed stays failed */
    assert_int_equal(fk.nissued, 0);

    assert_int_equal(store_award_retry(e->s, id, now, &err), 0);
    assert_int_equal(store_award_retry(e->s, id, now, &err), -1);
    assert_int_equal(err.code, ERR_CONFLICT);
    assert_int_equal(run(e, now), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_ISSUED);
    assert_int_equal(fk.nissued, 1);
    arena_release(&ar);
}

static void test_auth_backs_off_slowly(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    int64_t id = grant(e, "u3"), now = util_now();
    struct store_award w;

    const char *names[4];

    assert_int_equal(awards_backends_in_auth(e->a, names, 4), 0);
    fk.script[0] = ACT_AUTH;
    fk.nscript = 1;
    assert_int_equal(run(e, now), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_QUEUED);
    assert_true(w.next_attempt_at >= now + 300);
    /* /healthz names it until it answers otherwise */
    assert_int_equal(awards_backends_in_auth(e->a, names, 4), 1);
    assert_string_equal(names[0], "fake");
    assert_int_equal(run(e, w.next_attempt_at), 1);
    assert_int_equal(get(e, id, &ar).state, AWARD_ISSUED);
    assert_int_equal(awards_backends_in_auth(e->a, names, 4), 0);
    arena_release(&ar);
}

static void test_crash_between_sending_and_recording(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t id = grant(e, "u4"), now = util_now(), reclaimed = 0;
    struct store_award *claimed, w;
    size_t n;
    struct backend_result r;
    struct backend_badge bb = { 0 };
    struct backend_award ba = { 0 };

    /* a worker claims the award and the platform issues it; then the process dies */
    assert_int_equal(
        store_award_claim(e->s, NULL, now, LIMIT_AWARDS_LEASE, 8, &ar, &claimed, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(claimed[0].state, AWARD_ISSUING);
    bb.backend_id = "entity-x";
    ba.uid = claimed[0].uid;
    ba.recipient_email = "learner@example.edu";
    fake_issue(NULL, &bb, &ba, &r);
    assert_int_equal(fk.nissued, 1);

    /* within the lease nobody touches it */
    assert_int_equal(run(e, now + 1), 0);
    /* a restarted server reclaims it at once, asks the platform first, finds it */
    assert_int_equal(store_award_reclaim(e->s, now + 2, &reclaimed, &err), 0);
    assert_int_equal(reclaimed, 1);
    assert_int_equal(run(e, now + 2), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_ISSUED);
    assert_int_equal(w.attempts, 2);
    assert_int_equal(fk.finds, 1);
    assert_int_equal(fk.nissued, 1); /* not issued twice */
    {
        char want[64];

        snprintf(want, sizeof(want), "assertion-%s", w.uid);
        assert_string_equal(w.assertion_id, want);
    }
    arena_release(&ar);
}

static void test_lease_expiry_retries(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t id = grant(e, "u5"), now = util_now();
    struct store_award *claimed, w;
    size_t n;

    /* claimed, then the worker vanished before sending anything */
    assert_int_equal(store_award_claim(e->s, NULL, now, 10, 8, &ar, &claimed, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(run(e, now + 5), 0);
    assert_int_equal(run(e, now + 11), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_ISSUED);
    assert_int_equal(fk.finds, 1); /* asked first: nothing there, so issued now */
    assert_int_equal(fk.nissued, 1);
    /* the old worker's late answer cannot overwrite the newer record */
    {
        struct store_award_update late = {
            .kind = AWARD_UPD_RETRY, .id = id, .error = "late", .next_at = now
        };

        assert_int_equal(store_award_update_batch(e->s, &late, 1, &err), 0);
        assert_int_equal(late.status, -1);
    }
    arena_release(&ar);
}

static void test_ensure_failure_and_revoke(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t id = grant(e, "u6"), now = util_now();
    struct store_award w;

    fk.create_act = ACT_PERMANENT;
    assert_int_equal(run(e, now), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_FAILED);
    assert_string_equal(w.last_error, "name: this field may not be blank");
    assert_int_equal(fk.calls, 0); /* never issued without a BadgeClass there */

    fk.create_act = ACT_OK;
    assert_int_equal(store_award_retry(e->s, id, now, &err), 0);
    assert_int_equal(run(e, now), 1);
    assert_int_equal(get(e, id, &ar).state, AWARD_ISSUED);

    assert_int_equal(store_award_revoke(e->s, id, "mistake", now, &err), 0);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_REVOKED);
    assert_true(w.revoke_pending);
    assert_int_equal(run(e, now), 1);
    assert_int_equal(fk.revokes, 1);
    w = get(e, id, &ar);
    assert_false(w.revoke_pending);
    assert_int_equal(run(e, now + 100000), 0);
    arena_release(&ar);
}

/* The award's record as it is now, and when it was earned. */
static int64_t earned_at(struct env *e, int64_t id)
{
    struct arena ar = ARENA_INIT;
    int64_t t = get(e, id, &ar).created_at;

    arena_release(&ar);
    return t;
}

static void test_lost_answer_looked_up_before_resend(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    int64_t id = grant(e, "l1"), now = util_now() + 5;
    struct store_award w;
    char want[64];

    /* the platform issues, the answer is lost (a timeout, a dropped connection) */
    fk.script[0] = ACT_LOST;
    fk.nscript = 1;
    assert_int_equal(run(e, now), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_QUEUED);
    assert_string_equal(w.last_error, "no answer in time");
    assert_int_equal(fk.nissued, 1);
    assert_int_equal(fk.finds, 0); /* a first attempt looks nothing up */
    /* the next attempt asks first, finds it, and sends nothing */
    assert_int_equal(run(e, w.next_attempt_at), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_ISSUED);
    assert_int_equal(fk.finds, 1);
    assert_int_equal(fk.calls, 1);
    assert_int_equal(fk.nissued, 1);
    snprintf(want, sizeof(want), "assertion-%s", w.uid);
    assert_string_equal(w.assertion_id, want);
    /* issued when earned, on the platform and in the record alike */
    assert_int_equal(fk.issued_on[0], w.created_at);
    assert_int_equal(w.issued_at, w.created_at);
    arena_release(&ar);
}

static void test_issue_date_same_on_every_attempt(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    int64_t id = grant(e, "d1"), now = util_now();
    int64_t earned = earned_at(e, id);
    struct store_award w;

    fk.script[0] = ACT_RETRY;
    fk.script[1] = ACT_RETRY;
    fk.nscript = 2;
    /* attempts well after the award was earned */
    assert_int_equal(run(e, now + 1000), 1);
    w = get(e, id, &ar);
    assert_int_equal(run(e, w.next_attempt_at + 5000), 1);
    w = get(e, id, &ar);
    assert_int_equal(run(e, w.next_attempt_at + 90000), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_ISSUED);
    assert_int_equal(fk.calls, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fk.issued_on[i], earned);
    assert_int_equal(w.issued_at, earned);
    arena_release(&ar);
}

static void test_lost_create_found_again(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t id = grant(e, "c1"), now = util_now();
    struct store_award w;
    struct store_badge b;
    char marker[BACKEND_MARKER_LEN + 1];

    /* the platform makes the BadgeClass, its answer is lost */
    fk.create_act = ACT_LOST;
    assert_int_equal(run(e, now), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_QUEUED);
    assert_int_equal(fk.creates, 1);
    assert_int_equal(fk.calls, 0);
    assert_int_equal(store_badge_get(e->s, e->slug, &ar, &b, &err), 0);
    assert_null(b.backend_id);
    /* marked with the slug and this server */
    backend_marker("https://badges.example", e->slug, marker);
    assert_string_equal(fk.badge_marker, marker);
    /* next time it is found by its marker and not made again */
    fk.create_act = ACT_OK;
    assert_int_equal(run(e, w.next_attempt_at), 1);
    assert_int_equal(get(e, id, &ar).state, AWARD_ISSUED);
    assert_int_equal(fk.creates, 1);
    assert_int_equal(fk.badge_finds, 2); /* searched before each create */
    assert_int_equal(store_badge_get(e->s, e->slug, &ar, &b, &err), 0);
    assert_non_null(b.backend_id);
    {
        char want[LIMIT_SLUG_LEN + 16];

        snprintf(want, sizeof(want), "entity-%s", e->slug);
        assert_string_equal(b.backend_id, want);
    }
    arena_release(&ar);
}

static void test_revoke_after_unknown_outcome(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t id = grant(e, "r1"), never = grant(e, "r2"), now = util_now();
    struct store_award w;

    /* r1: issued at the platform, the answer lost; r2: never attempted */
    fk.script[0] = ACT_LOST;
    fk.nscript = 1;
    assert_int_equal(run(e, now), 1);
    assert_int_equal(fk.nissued, 1);
    assert_null(get(e, id, &ar).assertion_id);
    assert_int_equal(store_award_revoke(e->s, id, "mistake", now, &err), 0);
    assert_int_equal(store_award_revoke(e->s, never, "mistake", now, &err), 0);
    /* the one attempted is owed to the platform; the other never reached it */
    assert_true(get(e, id, &ar).revoke_pending);
    assert_false(get(e, never, &ar).revoke_pending);
    assert_int_equal(run(e, now), 1);
    w = get(e, id, &ar);
    assert_false(w.revoke_pending);
    assert_int_equal(fk.finds, 1);   /* looked up */
    assert_int_equal(fk.revokes, 1); /* and what was found revoked */
    assert_true(fk.issued_revoked[0]);
    assert_int_equal(run(e, now + 100000), 0);
    arena_release(&ar);
}

static void test_revoke_found_nothing_or_revoked(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t id = grant(e, "r3"), now = util_now();

    /* attempted, refused: nothing at the platform */
    fk.script[0] = ACT_RETRY;
    fk.nscript = 1;
    assert_int_equal(run(e, now), 1);
    assert_int_equal(store_award_revoke(e->s, id, "mistake", now, &err), 0);
    assert_true(get(e, id, &ar).revoke_pending);
    assert_int_equal(run(e, now), 1);
    assert_false(get(e, id, &ar).revoke_pending); /* nothing there: done */
    assert_int_equal(fk.finds, 1);
    assert_int_equal(fk.revokes, 0);
    arena_release(&ar);
}

/* An edit of the BadgeClass while its update is under way (a second edit by an instructor). */
static struct env *editing;

static void edit_again(void)
{
    static const char svg2[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"2\" "
                               "height=\"2\"/></svg>";
    struct err err = ERR_INIT;

    assert_int_equal(store_badge_set_image(editing->s, editing->slug, (const unsigned char *)svg2,
                                           sizeof(svg2) - 1, "image/svg+xml", &err),
                     0);
}

static void test_badge_edits_reach_the_platform(void **state)
{
    static const char svg1[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"1\" "
                               "height=\"1\"/></svg>";
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t now;
    struct store_badge b;

    /* an edit before the BadgeClass exists at the platform sends nothing: create sends all */
    assert_int_equal(store_badge_set_image(e->s, e->slug, (const unsigned char *)svg1,
                                           sizeof(svg1) - 1, "image/svg+xml", &err),
                     0);
    assert_int_equal(store_badge_get(e->s, e->slug, &ar, &b, &err), 0);
    assert_int_equal(b.sync_due_at, 0);
    grant(e, "e1");
    now = util_now(); /* the award is due from when it was earned */
    assert_int_equal(run(e, now), 1);
    assert_int_equal(fk.updates, 0);

    /* edited once it exists there: sent; a failure is kept and retried like an award */
    fk.update_act[0] = ACT_RETRY;
    fk.nupdate_act = 1;
    assert_int_equal(store_badge_set_image(e->s, e->slug, (const unsigned char *)svg,
                                           sizeof(svg) - 1, "image/svg+xml", &err),
                     0);
    assert_int_equal(store_badge_get(e->s, e->slug, &ar, &b, &err), 0);
    assert_true(b.sync_due_at > 0);
    assert_int_equal(run(e, now + 10), 1);
    assert_int_equal(fk.updates, 1);
    assert_int_equal(store_badge_get(e->s, e->slug, &ar, &b, &err), 0);
    assert_string_equal(b.sync_error, "platform says no (0)");
    assert_int_equal(b.sync_attempts, 1);
    assert_true(b.sync_due_at > now + 10);
    assert_int_equal(run(e, now + 10), 0); /* not due yet */
    /* the retry: an instructor edits again while it is under way */
    editing = e;
    fk.during_update = edit_again;
    assert_int_equal(run(e, b.sync_due_at), 1);
    assert_int_equal(fk.updates, 2);
    assert_string_equal(fk.updated_name, "Helper");
    assert_int_equal(store_badge_get(e->s, e->slug, &ar, &b, &err), 0);
    /* that answer was for the older edit: the newer one is still due */
    assert_true(b.sync_due_at > 0);
    assert_int_equal(run(e, b.sync_due_at), 1);
    assert_int_equal(fk.updates, 3);
    assert_int_equal(store_badge_get(e->s, e->slug, &ar, &b, &err), 0);
    assert_int_equal(b.sync_due_at, 0);
    assert_null(b.sync_error);
    assert_int_equal(b.sync_attempts, 0);

    /* a permanent refusal is kept until the next edit, and not retried */
    fk.update_act[3] = ACT_PERMANENT;
    fk.nupdate_act = 4;
    assert_int_equal(store_badge_set_image(e->s, e->slug, (const unsigned char *)svg1,
                                           sizeof(svg1) - 1, "image/svg+xml", &err),
                     0);
    assert_int_equal(run(e, now + 100000), 1);
    assert_int_equal(store_badge_get(e->s, e->slug, &ar, &b, &err), 0);
    assert_string_equal(b.sync_error, "platform says no (3)");
    assert_int_equal(b.sync_due_at, 0);
    assert_int_equal(run(e, now + 200000), 0);
    assert_int_equal(fk.updates, 4);
    arena_release(&ar);
}

/* test_pass_records_a_claims_answers: its awards, and what issue() saw of them */
static struct env *pass_env;
static int64_t pass_ids[3];
static enum store_award_state pass_seen[3][3];

static void pass_look(size_t i)
{
    struct arena ar = ARENA_INIT;

    for (size_t j = 0; j < 3 && i < 3; j++)
        pass_seen[i][j] = get(pass_env, pass_ids[j], &ar).state;
    arena_release(&ar);
}

/*
 * A remote backend's pass claims its awards together (at most `most`) and
 * sends them one at a time, recording their answers together: when the
 * platform is asked for an award, the awards of earlier passes are issued in
 * the database, those of its own pass are claimed (issuing; an earlier one
 * of them may be issued already, when its answer came more than
 * LIMIT_AWARDS_REMOTE_RECORD_MS before), and the third, past `most`, is not
 * claimed yet. Once a pass returns, every award it sent is issued.
 */
static void test_pass_records_a_claims_answers(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    int64_t now;

    pass_env = e;
    pass_ids[0] = grant(e, "u1");
    pass_ids[1] = grant(e, "u2");
    pass_ids[2] = grant(e, "u3");
    now = util_now(); /* all three due: granted at or before it */
    fk.during_issue = pass_look;
    assert_int_equal(run_most(e, now, 2), 2);
    assert_int_equal(get(e, pass_ids[0], &ar).state, AWARD_ISSUED);
    assert_int_equal(get(e, pass_ids[1], &ar).state, AWARD_ISSUED);
    assert_int_equal(get(e, pass_ids[2], &ar).state, AWARD_QUEUED); /* past `most` */
    assert_int_equal(run_most(e, now, 8), 1);
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 3; j++) {
            /* the first pass claimed the first two, the second the third */
            bool same_pass = (i < 2) == (j < 2);

            if (same_pass && j < i)
                assert_true(pass_seen[i][j] == AWARD_ISSUING || pass_seen[i][j] == AWARD_ISSUED);
            else
                assert_int_equal(pass_seen[i][j], !same_pass && j < i ? AWARD_ISSUED
                                                  : same_pass         ? AWARD_ISSUING
                                                                      : AWARD_QUEUED);
        }
        assert_int_equal(get(e, pass_ids[i], &ar).state, AWARD_ISSUED);
    }
    assert_int_equal(fk.nissued, 3);
    assert_int_equal(run_most(e, now, 8), 0);
    fk.during_issue = NULL;
    arena_release(&ar);
}

static bool wait_state(struct env *e, int64_t id, enum store_award_state st);

/* Stops the worker from inside the platform's first issue() */
static void stop_at_first(size_t i)
{
    if (i == 0)
        awards_worker_request_stop(pass_env->a);
}

/*
 * A stop in the middle of a claim gives back the awards not sent yet: their
 * claim undone (queued, no attempt counted, due at once), so the next
 * worker sends them without looking them up first, and nothing twice.
 */
static void test_stop_gives_back_what_was_not_sent(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t ids[3] = { grant(e, "s1"), grant(e, "s2"), grant(e, "s3") }, now = util_now();

    pass_env = e;
    fk.during_issue = stop_at_first;
    assert_int_equal(run_most(e, now, 8), 1);
    fk.during_issue = NULL;
    assert_int_equal(get(e, ids[0], &ar).state, AWARD_ISSUED);
    for (size_t i = 1; i < 3; i++) {
        struct store_award w = get(e, ids[i], &ar);

        assert_int_equal(w.state, AWARD_QUEUED);
        assert_int_equal(w.attempts, 0);
        assert_true(w.next_attempt_at <= util_now());
    }
    /* a worker started anew sends them at once, once each, without a look-up */
    assert_int_equal(awards_worker_start(e->a, &err), 0);
    assert_true(wait_state(e, ids[1], AWARD_ISSUED));
    assert_true(wait_state(e, ids[2], AWARD_ISSUED));
    awards_worker_stop(e->a);
    assert_int_equal(fk.nissued, 3);
    assert_int_equal(fk.finds, 0);
    arena_release(&ar);
}

/*
 * The answers of a claim are recorded without a disk flush each: a pass of
 * eight awards of a BadgeClass the platform has flushes the WAL once, for
 * its claim, where it flushed it nine times (a claim, then each answer with
 * the next claim).
 */
static void test_pass_flushes_once_a_claim(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct store_stats before, after;
    int64_t ids[8];

    /* the BadgeClass made on the platform first (its id recorded durably, once) */
    grant(e, "first");
    assert_int_equal(run_most(e, util_now(), 1), 1);
    for (size_t i = 0; i < 8; i++) {
        char user[8];

        snprintf(user, sizeof(user), "f%zu", i);
        ids[i] = grant(e, user);
    }
    store_stats(e->s, &before);
    assert_int_equal(run_most(e, util_now(), 8), 8);
    store_stats(e->s, &after);
    assert_int_equal(after.wal_syncs - before.wal_syncs, 1);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(get(e, ids[i], &ar).state, AWARD_ISSUED);
    assert_int_equal(fk.nissued, 9);
    arena_release(&ar);
}

static void test_claims_per_backend(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    int64_t a1 = grant(e, "p1"), a2 = grant(e, "p2"), now = util_now();
    struct store_award *claimed;
    size_t n = 0;

    /* the built-in worker leaves the platform's awards to its own worker */
    assert_int_equal(awards_run_due(e->a, now, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(get(e, a1, &ar).state, AWARD_QUEUED);
    /* which takes one at a time, leased long enough to outlast any attempt */
    assert_int_equal(run(e, now), 1);
    assert_int_equal(get(e, a1, &ar).state, AWARD_ISSUED);
    assert_int_equal(get(e, a2, &ar).state, AWARD_QUEUED);
    {
        struct store_claim_scope scope = { "fake", NULL, 0 };

        assert_int_equal(store_award_claim(e->s, &scope, now, LIMIT_AWARDS_REMOTE_LEASE, 1, &ar,
                                           &claimed, &n, &err),
                         0);
        assert_int_equal(n, 1);
        assert_int_equal(claimed[0].id, a2);
        assert_int_equal(claimed[0].next_attempt_at, now + LIMIT_AWARDS_REMOTE_LEASE);
    }
    /* a worker that died with it (kill -9): not taken within the lease, taken after it */
    assert_int_equal(run(e, now + LIMIT_AWARDS_REMOTE_LEASE - 1), 0);
    assert_int_equal(run(e, now + LIMIT_AWARDS_REMOTE_LEASE), 1);
    assert_int_equal(get(e, a2, &ar).state, AWARD_ISSUED);
    assert_int_equal(fk.finds, 1); /* asked first: it might have been sent */
    arena_release(&ar);
}

/* Waits (bounded) for an award to reach a state; the state, not the time, ends the wait. */
static bool wait_state(struct env *e, int64_t id, enum store_award_state st)
{
    int64_t deadline = util_mono_ns() + 30 * 1000000000LL;

    while (util_mono_ns() < deadline) {
        struct arena ar = ARENA_INIT;
        bool done = get(e, id, &ar).state == st;

        arena_release(&ar);
        if (done)
            return true;
        awards_wake(e->a);
        sched_yield();
    }
    return false;
}

static void test_hang_delays_only_its_own(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    struct err err = ERR_INIT;
    struct store_badge_new b;
    int64_t hosted_badge, hung = grant(e, "h1"), hosted, t0;
    char slug[LIMIT_SLUG_LEN + 1];
    bool added;
    struct store_award w;

    memset(&b, 0, sizeof(b));
    b.consumer_id = e->consumer;
    b.slug_base = "built-in";
    b.name = "Built in";
    b.description = "Issued here";
    b.image = (const unsigned char *)svg;
    b.image_len = sizeof(svg) - 1;
    b.image_type = "image/svg+xml";
    b.backend = "hosted";
    b.rule.kind = RULE_MANUAL;
    assert_int_equal(store_badge_create(e->s, &b, &hosted_badge, slug, &err), 0);
    fk.script[0] = ACT_HANG;
    fk.nscript = 1;
    assert_int_equal(awards_worker_start(e->a, &err), 0);
    /* the platform hangs on the first award */
    pthread_mutex_lock(&fk.mu);
    while (!fk.hanging)
        pthread_cond_wait(&fk.cv, &fk.mu);
    pthread_mutex_unlock(&fk.mu);
    /* meanwhile the built-in issuer issues as ever */
    assert_int_equal(awards_grant(e->a, slug, e->consumer, "h1", NULL, &hosted, &added, &err), 0);
    awards_wake(e->a);
    assert_true(wait_state(e, hosted, AWARD_ISSUED));
    assert_int_equal(get(e, hung, &ar).state, AWARD_ISSUING);
    /* a stop ends the hang: the stand-in is asked again, its caller's hook says give up */
    t0 = util_mono_ns();
    awards_worker_request_stop(e->a);
    pthread_mutex_lock(&fk.mu);
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
    awards_worker_stop(e->a);
    assert_true(util_mono_ns() - t0 < 5 * 1000000000LL);
    /* recorded as a retry: looked up before it is sent again */
    w = get(e, hung, &ar);
    assert_int_equal(w.state, AWARD_QUEUED);
    assert_int_equal(w.attempts, 1);
    assert_string_equal(w.last_error, "cancelled before the answer came");
    assert_int_equal(fk.nissued, 0);
    arena_release(&ar);
}

static void test_backoff_schedule(void **state)
{
    (void)state;
    assert_int_equal(awards_backoff(1, 0, 0), 2);
    assert_int_equal(awards_backoff(2, 0, 0), 4);
    assert_int_equal(awards_backoff(5, 0, 0), 32);
    assert_int_equal(awards_backoff(40, 0, 0), LIMIT_AWARDS_BACKOFF_MAX);
    assert_int_equal(awards_backoff(1, 90, 0), 90);
    for (unsigned j = 0; j < 1000; j += 7) {
        int64_t d = awards_backoff(6, 0, j);

        assert_true(d >= 64 && d <= 64 + 16);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retryable_then_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_kept_then_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_backs_off_slowly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_sending_and_recording, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ensure_failure_and_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_answer_looked_up_before_resend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_date_same_on_every_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_create_found_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_after_unknown_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_found_nothing_or_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_badge_edits_reach_the_platform, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claims_per_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_records_a_claims_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang_delays_only_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_gives_back_what_was_not_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_flushes_once_a_claim, setup, teardown),
        cmocka_unit_test(test_backoff_schedule),
    };

    /* as main() does: the store checks every SVG image against the one rule */
    store_set_svg_rule(&awards_svg_rule);

    return cmocka_run_group_tests(tests, NULL, NULL);
}
