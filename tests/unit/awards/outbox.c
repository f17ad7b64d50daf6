/*
 * tests/unit/awards/outbox.c - the outbox worker against a scripted backend
 * stand-in and a real sqlite store: retryable failures then recovery (one
 * assertion), Retry-After honoured, a permanent failure kept with its
 * message and retried by hand, auth failures backing off slowly, a crash
 * after the platform issued but before the award was recorded (found again,
 * not issued twice), BadgeClasses created at the backend once, revocation
 * sent to the backend, and the backoff schedule.
 */
#include "base/base.h"
#include "awards/awards.h"
#include "backends/backends.h"
#include "store/store.h"

#include <setjmp.h>
#include <cmocka.h>
#include <unistd.h>

static char dbpath[256];

/* The stand-in: answers from a script, remembers what it holds like a platform would. */
struct fake {
    enum backend_status script[16]; /* answers of issue(), in order; past the end: ok */
    int64_t retry_after[16];
    size_t nscript, calls;
    int ensures, finds, revokes;
    char issued_uids[64][33]; /* assertions the platform holds, by our uid */
    size_t nissued;
    bool fail_ensure;
};

static struct fake fk;

static void fake_ensure(struct backend *b, const struct backend_badge *bc, struct backend_result *r)
{
    backend_result_init(r);
    fk.ensures++;
    if (fk.fail_ensure) {
        backend_result_set(r, BACKEND_PERMANENT, "name: this field may not be blank");
        return;
    }
    snprintf(r->id, sizeof(r->id), "entity-%s", bc->slug);
}

static void fake_issue(struct backend *b, const struct backend_badge *bc,
                       const struct backend_award *a, struct backend_result *r)
{
    size_t i = fk.calls++;

    backend_result_init(r);
    assert_non_null(bc->backend_id); /* created at the backend before the first award */
    assert_non_null(a->recipient_email);
    if (i < fk.nscript && fk.script[i] != BACKEND_OK) {
        backend_result_set(r, fk.script[i], "platform says no (%zu)", i);
        r->retry_after = fk.retry_after[i];
        return;
    }
    snprintf(fk.issued_uids[fk.nissued++], 33, "%s", a->uid);
    snprintf(r->id, sizeof(r->id), "assertion-%s", a->uid);
    snprintf(r->url, sizeof(r->url), "https://platform.example/a/%s", a->uid);
}

static void fake_find(struct backend *b, const struct backend_badge *bc,
                      const struct backend_award *a, struct backend_result *r)
{
    backend_result_init(r);
    fk.finds++;
    for (size_t i = 0; i < fk.nissued; i++) {
        if (strcmp(fk.issued_uids[i], a->uid) == 0) {
            r->found = true;
            snprintf(r->id, sizeof(r->id), "assertion-%s", a->uid);
            snprintf(r->url, sizeof(r->url), "https://platform.example/a/%s", a->uid);
        }
    }
}

static void fake_revoke(struct backend *b, const struct backend_badge *bc,
                        const struct backend_award *a, const char *reason, struct backend_result *r)
{
    backend_result_init(r);
    fk.revokes++;
    assert_non_null(a->assertion_id);
    assert_string_equal(reason, "mistake");
}

static void fake_destroy(struct backend *b)
{
    free(b);
}

static const struct backend_ops fake_ops = {
    .name = "fake",
    .create_badge_class = fake_ensure,
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

    memset(&fk, 0, sizeof(fk));
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

static size_t run(struct env *e, int64_t now)
{
    struct err err = ERR_INIT;
    size_t n = 0;

    assert_int_equal(awards_run_due(e->a, now, &n, &err), 0);
    return n;
}

static void test_retryable_then_recovers(void **state)
{
    struct env *e = *state;
    struct arena ar = ARENA_INIT;
    int64_t id = grant(e, "u1"), now = util_now();
    struct store_award w;
    char want[200];

    fk.script[0] = BACKEND_RETRY;
    fk.script[1] = BACKEND_RETRY;
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
    assert_int_equal(fk.ensures, 1); /* the BadgeClass was created once */
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

    fk.script[0] = BACKEND_PERMANENT;
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
    fk.script[0] = BACKEND_AUTH;
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
    assert_int_equal(store_award_claim(e->s, now, LIMIT_AWARDS_LEASE, 8, &ar, &claimed, &n, &err),
                     0);
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
    assert_int_equal(store_award_claim(e->s, now, 10, 8, &ar, &claimed, &n, &err), 0);
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

    fk.fail_ensure = true;
    assert_int_equal(run(e, now), 1);
    w = get(e, id, &ar);
    assert_int_equal(w.state, AWARD_FAILED);
    assert_string_equal(w.last_error, "name: this field may not be blank");
    assert_int_equal(fk.calls, 0); /* never issued without a BadgeClass there */

    fk.fail_ensure = false;
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
        cmocka_unit_test(test_backoff_schedule),
    };

    /* as main() does: the store checks every SVG image against the one rule */
    store_set_svg_rule(&awards_svg_rule);

    return cmocka_run_group_tests(tests, NULL, NULL);
}
