/*
 * web/metrics.h - what the server counts for GET /metrics, and /healthz.
 *
 * Private to web/ (beside web_int.h). Counting is relaxed atomic adds on
 * counters allocated once at start: a request pays no lock and no
 * allocation for them. Everything else /metrics shows (the outboxes, the
 * database's transaction times, RSS) is read when it is scraped.
 */
#ifndef WEB_METRICS_H
#define WEB_METRICS_H

#include "base/base.h"

#include <stdatomic.h>

struct req;
struct web;

/* How a launch ended: accepted, or why it was refused (the label of ltibadges_launches_total). */
enum web_launch_outcome {
    WEB_LAUNCH_NONE = 0,         /* not set by the route: decided from the status at completion */
    WEB_LAUNCH_ACCEPTED,         /* recorded, 303 to the session's page */
    WEB_LAUNCH_MALFORMED,        /* the form or its oauth_* parameters: 400 */
    WEB_LAUNCH_UNKNOWN_CONSUMER, /* an unknown or disabled consumer key: 401 */
    WEB_LAUNCH_BAD_SIGNATURE,    /* 401 */
    WEB_LAUNCH_STALE_TIMESTAMP,  /* outside the timestamp window */
    WEB_LAUNCH_INVALID,          /* verified, but its LTI fields are refused */
    WEB_LAUNCH_REPLAY,           /* a nonce already used */
    WEB_LAUNCH_CONSUMER_CHANGED, /* disabled or given a new secret since it was verified */
    WEB_LAUNCH_UNAVAILABLE,      /* stopping, the writer's queue full, the database failing */
    WEB_LAUNCH_TOO_LARGE,        /* 413 */
    WEB_LAUNCH_MEDIA_TYPE,       /* 415 */
    WEB_LAUNCH_METHOD,           /* 405 */
    WEB_LAUNCH_INCOMPLETE,       /* the client went away, or the header came too slowly */
    WEB_LAUNCH_ERROR,            /* anything else */
    WEB_LAUNCH__COUNT
};

/* Latency buckets of every route's histogram, seconds (fixed: Prometheus sums them across servers).
 */
#define WEB_METRICS_BUCKETS 14
/* Routes: the server's table plus one for requests that matched none (or none yet). */
#define WEB_METRICS_ROUTES_MAX 40

struct web_route_metrics {
    atomic_uint_fast64_t le[WEB_METRICS_BUCKETS + 1]; /* not cumulative; the last: +Inf */
    atomic_uint_fast64_t sum_ns;
    atomic_uint_fast64_t status[6]; /* no answer, 1xx .. 5xx */
};

struct web_metrics {
    atomic_uint_fast64_t launches[WEB_LAUNCH__COUNT];
    atomic_uint_fast64_t mails_sent, mails_failed;
    atomic_int connections;
    struct web_route_metrics routes[WEB_METRICS_ROUTES_MAX];
    size_t launch_route; /* the index of /lti/launch */
    int64_t started_at;  /* unix time */
};

/*
 * Sets up the counters and, with cfg.metrics_listen_host, the metrics
 * listener; with cfg.metrics_off, nothing (and nothing is counted).
 */
int web_metrics_start(struct web *w, struct err *err);
/* Stops the metrics listener (before the store closes); frees the counters. NULL-safe. */
void web_metrics_stop(struct web *w);

/*
 * A request is complete: its route (index into the server's table, or the
 * table's size for none), its time and its status (0: no answer). A
 * launch's outcome, when the route did not set one, follows from its status.
 */
void web_metrics_request(struct web *w, size_t route, int64_t ns, unsigned status,
                         enum web_launch_outcome launch);
/* A confirmation mail was sent, or it failed. */
void web_metrics_mail(struct web *w, bool sent);
/* A connection opened (+1) or closed (-1). */
void web_metrics_connection(struct web *w, int delta);

/* ---- the routes (metrics.c) ---- */

/* GET /metrics on the main address. */
void web_route_metrics(struct req *r);
/* GET /healthz. */
void web_route_healthz(struct req *r);

#endif
