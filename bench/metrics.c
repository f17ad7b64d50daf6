/*
 * bench/metrics.c - what counting a request for /metrics costs.
 *
 * The launch benchmark (bench/run-launch.sh, BENCH_METRICS=compare) measures
 * a scraper's cost next to the launch path; counting itself is always on
 * there. This times web_metrics_request(), what every request's completion
 * calls, on THREADS threads at once on the same route (the worst case: the
 * same counters' cache lines bounce between the cores), and prints the
 * nanoseconds per call next to a launch's server CPU (bench/README.md).
 *
 * usage: bench/metrics [CALLS_PER_THREAD] [THREADS]
 */
#include "base/base.h"
#include "web/web_int.h"

#include <pthread.h>

struct arg {
    struct web *w;
    long calls;
    size_t route;
};

static void *loop(void *p)
{
    struct arg *a = p;

    for (long i = 0; i < a->calls; i++)
        web_metrics_request(a->w, a->route, 1000000 + (i & 0xfffff), 303, WEB_LAUNCH_NONE);
    return NULL;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 20000000;
    int nthreads = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 2;
    struct web w;
    struct err err = ERR_INIT;
    pthread_t th[64];
    struct arg a;
    int64_t t0, t1;
    size_t launch = 0;

    if (calls < 1 || nthreads < 1 || nthreads > 64) {
        fprintf(stderr, "usage: metrics [CALLS_PER_THREAD] [THREADS (1-64)]\n");
        return 2;
    }
    memset(&w, 0, sizeof(w));
    web_config_init(&w.cfg);
    if (web_metrics_start(&w, &err) < 0) {
        fprintf(stderr, "metrics: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < web_routes_count(); i++)
        if (strcmp(web_route_path(i), "/lti/launch") == 0)
            launch = i;
    a = (struct arg){ &w, calls, launch };
    t0 = util_mono_ns();
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, loop, &a);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    t1 = util_mono_ns();
    printf("metrics: %ld launches counted on %d threads at once in %.3f s: %.1f ns of wall time "
           "per launch and thread (counted %" PRIu64 ")\n",
           calls * nthreads, nthreads, (double)(t1 - t0) / 1e9, (double)(t1 - t0) / (double)calls,
           (uint64_t)atomic_load(&w.metrics->launches[WEB_LAUNCH_ACCEPTED]));
    web_metrics_stop(&w);
    return 0;
}
