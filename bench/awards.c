/*
 * bench/awards.c - awards issued per second through the outbox with the
 * hosted backend (bench/README.md).
 *
 *   bench/awards [N]   (default 20000)
 *
 * Records N first launches of N learners (with email) in one course, group
 * committed by the launch writer, with a consumer-wide enrollment badge, so
 * the launches themselves queue N awards through the real rule hook. Then
 * drains the outbox the way the worker does (claim, ensure the BadgeClass,
 * issue, record; each in its own durable transaction) and prints awards/s,
 * with the launch phase's rate for comparison. Uses a fresh database in
 * $TMPDIR and removes it.
 */
#include "base/base.h"
#include "awards/awards.h"
#include "lti/lti.h"
#include "store/store.h"

#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static size_t done, failed;

static void on_done(struct store_launch_job *job)
{
    pthread_mutex_lock(&mu);
    done++;
    failed += job->status != 0;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static void die(const struct err *err)
{
    fprintf(stderr, "bench/awards: %s (%s)\n", err->msg, err->detail);
    exit(1);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 20000;
    char db[512], p[600];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    struct err err = ERR_INIT;
    struct store *s;
    struct store_consumer c;
    struct awards *a;
    struct awards_config ac = { .public_url = "https://badges.example" };
    struct store_badge_new b = { 0 };
    struct store_launch_job *jobs;
    char(*names)[3][48];
    int64_t badge_id, t0, t1, t2, now = util_now();
    char slug[LIMIT_SLUG_LEN + 1];
    struct store_outbox_stats st;
    size_t issued = 0;
    static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";

    if (n == 0)
        n = 1;
    /* as main() does: the store checks the BadgeClass's SVG image against the rule */
    store_set_svg_rule(&awards_svg_rule);
    snprintf(db, sizeof(db), "%s/ltibadges-bench-awards-%d.db", tmp, (int)getpid());
    if (store_open(&s, db, STORE_OPEN_WRITER, &err) < 0 ||
        store_consumer_add(s, "bench", "benchsecretbenchsecret", "Bench", &c, &err) < 0 ||
        awards_new(&a, s, &ac, &err) < 0)
        die(&err);
    b.consumer_id = c.id;
    b.slug_base = "welcome";
    b.name = "Welcome";
    b.description = "Joined a course";
    b.image = (const unsigned char *)svg;
    b.image_len = sizeof(svg) - 1;
    b.image_type = "image/svg+xml";
    b.backend = "hosted";
    b.rule.kind = RULE_ENROLLMENT;
    if (store_badge_create(s, &b, &badge_id, slug, &err) < 0)
        die(&err);

    jobs = xcalloc(n, sizeof(*jobs));
    names = xcalloc(n, sizeof(*names));
    t0 = util_mono_ns();
    for (size_t i = 0; i < n; i++) {
        struct store_launch *l = &jobs[i].launch;

        snprintf(names[i][0], 48, "nonce-%zu", i);
        snprintf(names[i][1], 48, "learner-%zu", i);
        snprintf(names[i][2], 48, "learner%zu@example.edu", i);
        l->consumer_id = c.id;
        l->nonce = str_from_cstr(names[i][0]);
        l->timestamp = now;
        l->now = now;
        l->user_id = str_from_cstr(names[i][1]);
        l->email = str_from_cstr(names[i][2]);
        l->context_id = STR_LIT("course-1");
        l->context_title = STR_LIT("Bench course");
        l->resource_link_id = STR_LIT("link-1");
        l->roles = STR_LIT("Learner");
        l->role_flags = LTI_ROLE_LEARNER;
        l->session_expires = now + 3600;
        jobs[i].done = on_done;
        store_launch_submit(s, &jobs[i]);
        /* keep the writer's queue under its limit */
        pthread_mutex_lock(&mu);
        while (i + 1 - done >= LIMIT_STORE_QUEUE / 2)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
    }
    pthread_mutex_lock(&mu);
    while (done < n)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    t1 = util_mono_ns();
    if (failed) {
        fprintf(stderr, "bench/awards: %zu launches failed\n", failed);
        return 1;
    }
    for (;;) {
        size_t k;

        if (awards_run_due(a, util_now(), &k, &err) < 0)
            die(&err);
        issued += k;
        if (k == 0)
            break;
    }
    t2 = util_mono_ns();
    if (store_outbox_stats(s, &st, &err) < 0)
        die(&err);
    printf("launches recorded (each queuing an award): %zu in %.2f s = %.0f/s\n", n,
           (double)(t1 - t0) / 1e9, (double)n / ((double)(t1 - t0) / 1e9));
    printf("awards issued (hosted backend, through the outbox): %" PRId64 " in %.2f s = %.0f/s\n",
           st.issued, (double)(t2 - t1) / 1e9, (double)st.issued / ((double)(t2 - t1) / 1e9));
    if ((size_t)st.issued != n || issued != n || st.queued || st.issuing || st.failed) {
        fprintf(stderr,
                "bench/awards: expected %zu issued, got %" PRId64 " (queued %" PRId64
                ", failed %" PRId64 ")\n",
                n, st.issued, st.queued, st.failed);
        return 1;
    }
    awards_free(a);
    store_close(s);
    free(jobs);
    free(names);
    unlink(db);
    snprintf(p, sizeof(p), "%s-wal", db);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", db);
    unlink(p);
    return 0;
}
