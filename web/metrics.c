/*
 * web/metrics.c - GET /metrics (the Prometheus text exposition format,
 * version 0.0.4) and GET /healthz.
 *
 * What requests do is counted as they complete, with relaxed atomic adds on
 * counters allocated once at start: a launch pays a handful of adds, no
 * lock and no allocation. What the database holds (awards and passbacks by
 * state, the oldest item due), the launch writer's transaction times and
 * the process's RSS are read when /metrics is asked for, so a scrape costs
 * a scrape's work and a request nothing.
 *
 * Who may read /metrics: on the main address, only 127.0.0.1, ::1 and the
 * ranges of [server] metrics_allow, and never a request that came through a
 * proxy (X-Forwarded-For, Forwarded, X-Real-IP: a proxy on this machine
 * would otherwise pass the world's requests as loopback) unless the proxy
 * is trusted (trusted_proxies), when the client it names is who asks; or only on a
 * separate address ([server] metrics_listen, its own small daemon, with
 * /healthz beside it) that the operator keeps private; or nowhere
 * (metrics = off). /healthz is open: it names what is wrong, never a
 * secret or a path.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"
#include "base/version.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * An outbox item due longer than this is stuck ([server] health_outbox_stuck
 * sets another): the worker looks every second and a retry is not due
 * before its back-off ends, so an item due for 15 minutes means the worker
 * is not getting through.
 */
#define HEALTH_OUTBOX_STUCK_SECS 900
/* The metrics page: a few hundred series. */
#define METRICS_PAGE_MAX (1024 * 1024)

static const int64_t bounds_ns[WEB_METRICS_BUCKETS] = {
    500000,    1000000,   2500000,   5000000,    10000000,   25000000,   50000000,
    100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

static const char *const outcome_names[WEB_LAUNCH__COUNT] = {
    [WEB_LAUNCH_NONE] = NULL,
    [WEB_LAUNCH_ACCEPTED] = "accepted",
    [WEB_LAUNCH_MALFORMED] = "malformed",
    [WEB_LAUNCH_UNKNOWN_CONSUMER] = "unknown_consumer",
    [WEB_LAUNCH_BAD_SIGNATURE] = "bad_signature",
    [WEB_LAUNCH_STALE_TIMESTAMP] = "stale_timestamp",
    [WEB_LAUNCH_INVALID] = "invalid_launch",
    [WEB_LAUNCH_REPLAY] = "replay",
    [WEB_LAUNCH_CONSUMER_CHANGED] = "consumer_changed",
    [WEB_LAUNCH_UNAVAILABLE] = "unavailable",
    [WEB_LAUNCH_TOO_LARGE] = "too_large",
    [WEB_LAUNCH_MEDIA_TYPE] = "media_type",
    [WEB_LAUNCH_METHOD] = "method",
    [WEB_LAUNCH_INCOMPLETE] = "incomplete",
    [WEB_LAUNCH_ERROR] = "error",
};

#define ADD(p, n) atomic_fetch_add_explicit((p), (n), memory_order_relaxed)
#define GET(p)    atomic_load_explicit((p), memory_order_relaxed)

/* ---- counting ---- */

/* A launch the route did not classify: what its status says. */
static enum web_launch_outcome outcome_from_status(unsigned status)
{
    switch (status) {
    case 303:
        return WEB_LAUNCH_ACCEPTED;
    case 400:
        return WEB_LAUNCH_MALFORMED;
    case 405:
        return WEB_LAUNCH_METHOD;
    case 413:
    case 414:
    case 431:
        return WEB_LAUNCH_TOO_LARGE;
    case 415:
        return WEB_LAUNCH_MEDIA_TYPE;
    case 0:
    case 408:
        return WEB_LAUNCH_INCOMPLETE;
    case 503:
        return WEB_LAUNCH_UNAVAILABLE;
    default:
        return WEB_LAUNCH_ERROR;
    }
}

void web_metrics_request(struct web *w, size_t route, int64_t ns, unsigned status,
                         enum web_launch_outcome launch)
{
    struct web_metrics *m = w->metrics;
    struct web_route_metrics *rm;
    size_t i = 0;

    if (!m)
        return;
    if (route >= WEB_METRICS_ROUTES_MAX)
        route = WEB_METRICS_ROUTES_MAX - 1;
    rm = &m->routes[route];
    if (ns < 0)
        ns = 0;
    while (i < WEB_METRICS_BUCKETS && ns > bounds_ns[i])
        i++;
    ADD(&rm->le[i], 1);
    ADD(&rm->sum_ns, (uint_fast64_t)ns);
    ADD(&rm->status[status >= 100 && status < 600 ? status / 100 : 0], 1);
    if (route == m->launch_route) {
        if (launch == WEB_LAUNCH_NONE || launch >= WEB_LAUNCH__COUNT)
            launch = outcome_from_status(status);
        ADD(&m->launches[launch], 1);
    }
}

void web_metrics_mail(struct web *w, bool sent)
{
    if (w->metrics)
        ADD(sent ? &w->metrics->mails_sent : &w->metrics->mails_failed, 1);
}

void web_metrics_connection(struct web *w, int delta)
{
    if (w->metrics)
        atomic_fetch_add_explicit(&w->metrics->connections, delta, memory_order_relaxed);
}

/* ---- address ranges ---- */

int web_cidrs_parse(const char *text, struct web_cidr *out, size_t max, size_t *n, struct err *err)
{
    const char *p = text ? text : "";

    *n = 0;
    for (;;) {
        char item[80], *slash;
        size_t len;
        struct web_cidr c;
        int64_t prefix;
        unsigned max_prefix;

        p += strspn(p, ", \t");
        if (!*p)
            return 0;
        len = strcspn(p, ", \t");
        if (len >= sizeof(item))
            return err_set(err, ERR_INVALID, "'%.*s' is not an address or a CIDR range",
                           (int)(len > 64 ? 64 : len), p);
        memcpy(item, p, len);
        item[len] = '\0';
        p += len;
        memset(&c, 0, sizeof(c));
        slash = strchr(item, '/');
        if (slash)
            *slash = '\0';
        if (inet_pton(AF_INET, item, c.addr) == 1) {
            c.family = AF_INET;
            max_prefix = 32;
        } else if (inet_pton(AF_INET6, item, c.addr) == 1) {
            c.family = AF_INET6;
            max_prefix = 128;
        } else {
            if (slash)
                *slash = '/';
            return err_set(err, ERR_INVALID, "'%s' is not an address or a CIDR range", item);
        }
        c.prefix = max_prefix;
        if (slash) {
            if (str_to_i64(str_from_cstr(slash + 1), 0, max_prefix, &prefix) < 0) {
                *slash = '/';
                return err_set(err, ERR_INVALID, "'%s' has no prefix length from 0 to %u", item,
                               max_prefix);
            }
            c.prefix = (unsigned)prefix;
        }
        if (*n == max)
            return err_set(err, ERR_INVALID, "more than %zu address ranges", max);
        out[(*n)++] = c;
    }
}

/* Whether the first `bits` bits of a and b agree. */
static bool prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    size_t whole = bits / 8;
    unsigned rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return false;
    if (!rest)
        return true;
    return ((a[whole] ^ b[whole]) & (unsigned char)(0xff << (8 - rest))) == 0;
}

/* The address of `sa` as IPv4 when it is IPv4 or IPv4-mapped IPv6 (`v4`, 4 bytes), else IPv6. */
static int sockaddr_bytes(const void *sa, unsigned char out[16])
{
    const struct sockaddr *s = sa;

    if (s->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (s->sa_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

        if (memcmp(a, mapped, 12) == 0) {
            memcpy(out, a + 12, 4);
            return AF_INET;
        }
        memcpy(out, a, 16);
        return AF_INET6;
    }
    return -1;
}

bool web_cidrs_match(const struct web_cidr *c, size_t n, const void *sa)
{
    unsigned char a[16];
    int family = sockaddr_bytes(sa, a);

    for (size_t i = 0; i < n; i++)
        if (c[i].family == family && prefix_eq(a, c[i].addr, c[i].prefix))
            return true;
    return false;
}

/*
 * 127.0.0.1 and ::1 themselves, not all of 127.0.0.0/8: the default is the
 * address a local scraper comes from, anything more is said in metrics_allow.
 */
static bool peer_allowed(const struct web *w, const void *sa)
{
    unsigned char a[16];
    int family = sockaddr_bytes(sa, a);
    static const unsigned char v4[4] = { 127, 0, 0, 1 };
    static const unsigned char v6[16] = { [15] = 1 };

    if ((family == AF_INET && memcmp(a, v4, 4) == 0) ||
        (family == AF_INET6 && memcmp(a, v6, 16) == 0))
        return true;
    return web_cidrs_match(w->metrics_allow, w->n_metrics_allow, sa);
}

/* ---- the page ---- */

static void add_label_value(struct buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_addch(b, '\\');
        if (*v == '\n')
            buf_addstr(b, "\\n");
        else
            buf_addch(b, *v);
    }
}

static void head(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series: per-bucket counts (not cumulative), their sum in ns, bounds in ns. */
static void histogram(struct buf *b, const char *name, const char *labels, const uint64_t *le,
                      size_t nb, const int64_t *bounds, uint64_t sum_ns)
{
    uint64_t cum = 0;

    for (size_t i = 0; i < nb; i++) {
        cum += le[i];
        buf_addf(b, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, labels[0] ? "," : "",
                 (double)bounds[i] / 1e9, cum);
    }
    cum += le[nb];
    buf_addf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, labels[0] ? "," : "",
             cum);
    buf_addf(b, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
             (double)sum_ns / 1e9);
    buf_addf(b, "%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
             labels[0] ? "}" : "", cum);
}

static int64_t rss_bytes(void)
{
    char s[128];
    FILE *f = fopen("/proc/self/statm", "re");
    long long size = 0, resident = 0;
    size_t n;

    if (!f)
        return 0;
    n = fread(s, 1, sizeof(s) - 1, f);
    fclose(f);
    s[n] = '\0';
    {
        char *end;

        size = strtoll(s, &end, 10);
        resident = strtoll(end, NULL, 10);
    }
    (void)size;
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

static void render(struct web *w, struct buf *b)
{
    struct web_metrics *m = w->metrics;
    struct store_stats st;
    struct store_outbox_metrics om;
    struct err err = ERR_INIT;
    int64_t now = util_now();
    bool db_up;
    size_t nroutes = web_routes_count();

    head(b, "ltibadges_build_info", "gauge", "The running build; its value is 1.");
    buf_addstr(b, "ltibadges_build_info{version=\"");
    add_label_value(b, base_version);
    buf_addstr(b, "\"} 1\n");
    head(b, "process_start_time_seconds", "gauge", "When the server started, unix time.");
    buf_addf(b, "process_start_time_seconds %" PRId64 "\n", m->started_at);
    head(b, "process_resident_memory_bytes", "gauge", "Resident memory (/proc/self/statm).");
    buf_addf(b, "process_resident_memory_bytes %" PRId64 "\n", rss_bytes());

    head(b, "ltibadges_launches_total", "counter",
         "Launches by outcome: accepted, or the reason they were refused.");
    for (size_t i = 1; i < WEB_LAUNCH__COUNT; i++)
        buf_addf(b, "ltibadges_launches_total{outcome=\"%s\"} %" PRIu64 "\n", outcome_names[i],
                 (uint64_t)GET(&m->launches[i]));

    head(b, "ltibadges_http_request_duration_seconds", "histogram",
         "Requests by route, from their first byte to their answer sent.");
    for (size_t r = 0; r <= nroutes; r++) {
        struct web_route_metrics *rm = &m->routes[r];
        uint64_t le[WEB_METRICS_BUCKETS + 1];
        char labels[160];

        for (size_t i = 0; i <= WEB_METRICS_BUCKETS; i++)
            le[i] = GET(&rm->le[i]);
        snprintf(labels, sizeof(labels), "route=\"%s\"", r < nroutes ? web_route_path(r) : "other");
        histogram(b, "ltibadges_http_request_duration_seconds", labels, le, WEB_METRICS_BUCKETS,
                  bounds_ns, GET(&rm->sum_ns));
    }
    head(b, "ltibadges_http_responses_total", "counter",
         "Answers by route and status class (\"none\": the client went away first).");
    for (size_t r = 0; r <= nroutes; r++) {
        static const char *const cls[6] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };

        for (size_t c = 0; c < 6; c++) {
            uint64_t v = GET(&m->routes[r].status[c]);

            if (v)
                buf_addf(b,
                         "ltibadges_http_responses_total{route=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                         r < nroutes ? web_route_path(r) : "other", cls[c], v);
        }
    }
    head(b, "ltibadges_http_connections", "gauge", "Open HTTP connections.");
    buf_addf(b, "ltibadges_http_connections %d\n",
             atomic_load_explicit(&m->connections, memory_order_relaxed));
    head(b, "ltibadges_launches_in_flight", "gauge", "Launches waiting for the database.");
    buf_addf(b, "ltibadges_launches_in_flight %d\n", atomic_load(&w->launches_in_flight));

    store_stats(w->store, &st);
    {
        static const int64_t us[STORE_TX_BUCKETS] = STORE_TX_BOUNDS_US;
        int64_t ns[STORE_TX_BUCKETS];

        for (size_t i = 0; i < STORE_TX_BUCKETS; i++)
            ns[i] = us[i] * 1000;
        head(b, "ltibadges_db_transaction_duration_seconds", "histogram",
             "Database transactions by how long they took, BEGIN to COMMIT (launch_batch: the "
             "launch writer's, one per batch of launches).");
        histogram(b, "ltibadges_db_transaction_duration_seconds", "tx=\"launch_batch\"", st.tx_le,
                  STORE_TX_BUCKETS, ns, st.tx_ns);
    }
    head(b, "ltibadges_launches_committed_total", "counter",
         "Launches the writer committed (ltibadges_launches_total counts answers).");
    buf_addf(b, "ltibadges_launches_committed_total %" PRIu64 "\n", st.launches);

    head(b, "ltibadges_mails_total", "counter", "Confirmation mails by result.");
    buf_addf(b, "ltibadges_mails_total{result=\"sent\"} %" PRIu64 "\n",
             (uint64_t)GET(&m->mails_sent));
    buf_addf(b, "ltibadges_mails_total{result=\"failed\"} %" PRIu64 "\n",
             (uint64_t)GET(&m->mails_failed));

    db_up = store_outbox_metrics(w->store, now, &om, &err) == 0;
    head(b, "ltibadges_database_up", "gauge", "1 when the database answered this scrape's reads.");
    buf_addf(b, "ltibadges_database_up %d\n", db_up ? 1 : 0);
    if (!db_up)
        return;
    head(b, "ltibadges_awards", "gauge", "Awards by state and by their BadgeClass's backend.");
    for (size_t i = 0; i < om.n_awards; i++) {
        buf_addf(b, "ltibadges_awards{state=\"%s\",backend=\"",
                 store_award_state_name(om.awards[i].state));
        add_label_value(b, om.awards[i].backend);
        buf_addf(b, "\"} %" PRId64 "\n", om.awards[i].n);
    }
    head(b, "ltibadges_passbacks", "gauge", "Grade passbacks to the LMS by state.");
    {
        static const char *const pb[4] = { "queued", "sending", "done", "failed" };

        for (size_t i = 0; i < 4; i++)
            buf_addf(b, "ltibadges_passbacks{state=\"%s\"} %" PRId64 "\n", pb[i], om.passbacks[i]);
    }
    head(b, "ltibadges_outbox_oldest_due_age_seconds", "gauge",
         "How long the oldest item due has waited (0: nothing due).");
    buf_addf(b, "ltibadges_outbox_oldest_due_age_seconds{outbox=\"awards\"} %" PRId64 "\n",
             om.award_oldest_due ? now - om.award_oldest_due : 0);
    buf_addf(b, "ltibadges_outbox_oldest_due_age_seconds{outbox=\"passbacks\"} %" PRId64 "\n",
             om.passback_oldest_due ? now - om.passback_oldest_due : 0);
}

static const char metrics_type[] = "text/plain; version=0.0.4; charset=utf-8";

/* The page, malloc'd; NULL past its cap (never with a few hundred series). */
static char *metrics_page(struct web *w, size_t *len)
{
    struct buf b = BUF_INIT(METRICS_PAGE_MAX);

    render(w, &b);
    if (b.toobig) {
        buf_release(&b);
        return NULL;
    }
    return buf_detach(&b, len);
}

/* Whether the request came through a proxy, which would hide who asked. */
static bool proxied(struct req *r)
{
    static const char *const names[] = { "X-Forwarded-For", "Forwarded", "X-Real-IP" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, names[i]))
            return true;
    return false;
}

/*
 * Through a trusted proxy (trusted_proxies), the client its X-Forwarded-For
 * names (web_req_client) is who asks; through any other proxy, nobody may.
 */
static bool client_allowed(struct req *r, const void *peer)
{
    struct web *w = r->web;
    char ip[INET6_ADDRSTRLEN + 8];
    struct sockaddr_storage ss;

    if (!w->n_trusted || !web_cidrs_match(w->trusted, w->n_trusted, peer))
        return !proxied(r) && peer_allowed(w, peer);
    web_req_client(r, ip, sizeof(ip));
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        return false;
    return peer_allowed(w, &ss);
}

void web_route_metrics(struct req *r)
{
    struct web *w = r->web;
    const union MHD_ConnectionInfo *ci;
    size_t len;
    char *body;

    if (w->cfg.metrics_off || w->metrics_daemon) {
        web_reply_refusal(r, ERR_NOTFOUND, "there is no page at this address");
        return;
    }
    ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr || !client_allowed(r, ci->client_addr)) {
        web_reply_refusal(r, ERR_FORBIDDEN,
                          "metrics are shown to this machine and the addresses of metrics_allow "
                          "only");
        return;
    }
    body = metrics_page(w, &len);
    if (!body) {
        web_reply_refusal(r, ERR_INTERNAL, "the metrics page is too large");
        return;
    }
    web_reply(r, 200, metrics_type, body, len, NULL);
}

/* ---- /healthz ---- */

/* What is wrong, one sentence each, in `problems`; how many. */
static size_t health_problems(struct web *w, char problems[][320], size_t max, bool *db_ok,
                              bool *outbox_ok, bool *backends_ok)
{
    struct err err = ERR_INIT;
    size_t n = 0;
    int64_t now = util_now(), award = 0, passback = 0;
    int64_t stuck =
        w->cfg.health_outbox_stuck > 0 ? w->cfg.health_outbox_stuck : HEALTH_OUTBOX_STUCK_SECS;

    *db_ok = *outbox_ok = *backends_ok = true;
    if (store_health(w->store, now, &award, &passback, &err) < 0) {
        *db_ok = false;
        snprintf(problems[n++], 320, "database unreachable: %s", err.msg);
    } else {
        if (award && now - award > stuck && n < max) {
            *outbox_ok = false;
            snprintf(problems[n++], 320,
                     "outbox stuck: the oldest award due has waited %" PRId64 " s", now - award);
        }
        if (passback && now - passback > stuck && n < max) {
            *outbox_ok = false;
            snprintf(problems[n++], 320,
                     "outbox stuck: the oldest grade passback due has waited %" PRId64 " s",
                     now - passback);
        }
    }
    if (w->cfg.awards) {
        const char *names[8];
        size_t k = awards_backends_in_auth(w->cfg.awards, names, 8);

        for (size_t i = 0; i < k && n < max; i++) {
            *backends_ok = false;
            snprintf(problems[n++], 320, "backend '%s' in auth state: its credentials were refused",
                     names[i]);
        }
    }
    return n;
}

/* The health answer: status, body (malloc'd) and type; JSON or plain text. */
static unsigned health(struct web *w, bool json, char **body, size_t *len, const char **type)
{
    char problems[12][320];
    bool db_ok, outbox_ok, backends_ok;
    size_t n = health_problems(w, problems, 12, &db_ok, &outbox_ok, &backends_ok);

    if (json) {
        json_t *o = json_object(), *arr = json_array(), *checks = json_object();
        char *s;

        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_string(problems[i]));
        json_object_set_new(checks, "database", json_string(db_ok ? "ok" : "unreachable"));
        json_object_set_new(checks, "outbox", json_string(outbox_ok ? "ok" : "stuck"));
        json_object_set_new(checks, "backends", json_string(backends_ok ? "ok" : "auth"));
        json_object_set_new(o, "status", json_string(n ? "failing" : "ok"));
        json_object_set_new(o, "version", json_string(base_version));
        json_object_set_new(o, "problems", arr);
        json_object_set_new(o, "checks", checks);
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s)
            BUG("json_dumps failed");
        *len = strlen(s);
        *body = s; /* jansson allocates with malloc (its default): the reply frees it */
        *type = "application/json";
    } else {
        struct buf b = BUF_INIT(16 * 1024);

        if (!n)
            buf_addstr(&b, "ok\n");
        for (size_t i = 0; i < n; i++)
            buf_addf(&b, "%s\n", problems[i]);
        *body = buf_detach(&b, len);
        *type = "text/plain; charset=utf-8";
    }
    return n ? 503 : 200;
}

static bool wants_json(const char *accept, const char *format)
{
    if (format)
        return strcmp(format, "json") == 0;
    return accept && strstr(accept, "application/json") != NULL;
}

void web_route_healthz(struct req *r)
{
    struct str f = form_get(&r->qform, "format");
    const char *format = str_present(f) ? arena_strz(&r->arena, f) : NULL;
    const char *type;
    size_t len;
    char *body;
    unsigned status = health(
        r->web, wants_json(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept"), format),
        &body, &len, &type);
    const char *hdrs[] = { "Cache-Control", "no-store", NULL };

    web_reply(r, status, type, body, len, hdrs);
}

/* ---- the separate metrics address ---- */

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result side_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    static int seen;
    struct web *w = cls;
    size_t len;
    char *body;
    const char *type;
    unsigned status;

    if (!*con_cls) {
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* nothing here reads a body */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return queue(conn, 405, "text/plain; charset=utf-8", xstrdup("GET only\n"), 9);
    if (strcmp(url, "/metrics") == 0) {
        body = metrics_page(w, &len);
        if (!body)
            return queue(conn, 500, "text/plain; charset=utf-8", xstrdup("too large\n"), 10);
        return queue(conn, 200, metrics_type, body, len);
    }
    if (strcmp(url, "/healthz") == 0) {
        status =
            health(w,
                   wants_json(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept"),
                              MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format")),
                   &body, &len, &type);
        return queue(conn, status, type, body, len);
    }
    return queue(conn, 404, "text/plain; charset=utf-8", xstrdup("not found\n"), 10);
}

int web_metrics_start(struct web *w, struct err *err)
{
    struct web_metrics *m;
    size_t nroutes = web_routes_count();
    int fd = -1;
    bool v6 = false;

    if (nroutes >= WEB_METRICS_ROUTES_MAX)
        BUG("WEB_METRICS_ROUTES_MAX is below the number of routes");
    if (w->cfg.metrics_off)
        return 0; /* nothing counted either: web_metrics_*() see no counters */
    m = xcalloc(1, sizeof(*m));
    m->started_at = util_now();
    m->launch_route = WEB_METRICS_ROUTES_MAX;
    for (size_t i = 0; i < nroutes; i++)
        if (strcmp(web_route_path(i), "/lti/launch") == 0)
            m->launch_route = i;
    w->metrics = m;
    if (w->cfg.metrics_allow) {
        w->metrics_allow = xcalloc(LIMIT_METRICS_ALLOW, sizeof(*w->metrics_allow));
        if (web_cidrs_parse(w->cfg.metrics_allow, w->metrics_allow, LIMIT_METRICS_ALLOW,
                            &w->n_metrics_allow, err) < 0)
            return -1;
    }
    if (!w->cfg.metrics_listen_host)
        return 0;
    if (web_bind_listen(w->cfg.metrics_listen_host, w->cfg.metrics_listen_port, &fd,
                        &w->metrics_port, &v6, err) < 0)
        return -1;
    w->metrics_daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
        side_handle, w, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (!w->metrics_daemon) {
        close(fd);
        err_set(err, ERR_INTERNAL, "cannot start the metrics listener");
        return err_detail(err, "MHD_start_daemon failed: %s", strerror(errno));
    }
    return 0;
}

void web_metrics_stop(struct web *w)
{
    if (w->metrics_daemon) {
        MHD_stop_daemon(w->metrics_daemon);
        w->metrics_daemon = NULL;
    }
    FREE_AND_NULL(w->metrics_allow);
    FREE_AND_NULL(w->metrics);
}

unsigned web_metrics_port(const struct web *w)
{
    return w->metrics_daemon ? w->metrics_port : 0;
}
