/*
 * awards/outcomes.c - LTI 1.1 Basic Outcomes from the tool to the LMS: the
 * passback of an issued badge (replaceResult, with Canvas' resultData URL)
 * and the read-back of LMS grades (readResult) that feeds the rules.
 *
 * Its own thread ("lb-outcomes"), so a slow LMS never delays issuing. Each
 * pass sends the passbacks that are due (queued in the transaction that
 * recorded the issue, so nothing is forgotten when the LMS is down), reads
 * the grades of learners who just launched, and reads the bindings whose
 * last read is older than the configured interval. Requests to one consumer
 * are rate-limited (a token bucket per consumer), signed with its key and
 * secret (OAuth 1.0a in the Authorization header, with oauth_body_hash),
 * and sent under the HTTP policy of net/http.c.
 */
#include "base/base.h"
#include "base/log.h"
#include "awards/awards_int.h"
#include "lti/lti.h"

/* The bucket of a consumer, found by a tiny open-addressing table. */
static struct outcomes_bucket *bucket_of(struct outcomes *o, int64_t consumer_id)
{
    size_t i = (size_t)consumer_id % OUTCOMES_BUCKETS, oldest = i;

    for (size_t k = 0; k < OUTCOMES_BUCKETS; k++, i = (i + 1) % OUTCOMES_BUCKETS) {
        if (o->buckets[i].consumer_id == consumer_id)
            return &o->buckets[i];
        if (o->buckets[i].consumer_id == 0)
            break;
        if (o->buckets[i].last_ns < o->buckets[oldest].last_ns)
            oldest = i;
    }
    if (o->buckets[i].consumer_id != 0 && o->buckets[i].consumer_id != consumer_id)
        i = oldest; /* full: the least recently used consumer starts over */
    o->buckets[i].consumer_id = consumer_id;
    o->buckets[i].tokens = o->cfg.rate < 1.0 ? 1.0 : o->cfg.rate;
    o->buckets[i].last_ns = util_mono_ns();
    return &o->buckets[i];
}

/*
 * Waits for a token of the consumer's bucket (at most `rate` requests a
 * second, bursts of `rate`). -1 when the worker is stopping.
 */
static int take_token(struct awards *a, int64_t consumer_id)
{
    struct outcomes *o = &a->oc;
    double cap = o->cfg.rate < 1.0 ? 1.0 : o->cfg.rate;

    pthread_mutex_lock(&o->mu);
    for (;;) {
        struct outcomes_bucket *b = bucket_of(o, consumer_id);
        int64_t now = util_mono_ns();
        double wait_s;
        struct timespec until;

        b->tokens += (double)(now - b->last_ns) / 1e9 * o->cfg.rate;
        if (b->tokens > cap)
            b->tokens = cap;
        b->last_ns = now;
        if (o->stop) {
            pthread_mutex_unlock(&o->mu);
            return -1;
        }
        if (b->tokens >= 1.0) {
            b->tokens -= 1.0;
            pthread_mutex_unlock(&o->mu);
            return 0;
        }
        wait_s = (1.0 - b->tokens) / o->cfg.rate;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(wait_s * 1e9);
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&o->cv, &o->mu, &until);
    }
}

struct lms_call {
    int64_t consumer_id;
    const char *url, *key, *secret, *hosts;
    struct lti_pox_message msg;
    /* OUT */
    struct lti_pox_response resp;
    char answer[LIMIT_AWARD_ERROR_LEN + 1];
    int64_t retry_after;
};

/* What the LMS answered in POX: "success: why", or "HTTP 422, failure: why" (status not 0). */
static void pox_answer(struct lms_call *c, long status)
{
    const char *d = c->resp.description ? c->resp.description : "";
    char prefix[32] = "";

    if (status)
        snprintf(prefix, sizeof(prefix), "HTTP %ld, ", status);
    snprintf(c->answer, sizeof(c->answer), "%s%s%s%.900s", prefix, lti_pox_code_name(c->resp.code),
             *d ? ": " : "", d);
}

/* net_http_send() asks this about once a second: a stopping server waits for no LMS. */
static bool stopping(void *cls)
{
    struct outcomes *o = cls;
    bool stop;

    pthread_mutex_lock(&o->mu);
    stop = o->stop;
    pthread_mutex_unlock(&o->mu);
    return stop;
}

/*
 * Sends one POX request to an LMS and says what came of it: NET_OK (the LMS
 * answered success or processing), NET_RETRY, NET_AUTH (it refused our
 * signature: retried slowly) or NET_PERMANENT (it refused the request, or
 * it is not to be called). The HTTP answer is read by net_http_classify(),
 * as every remote call's; a 2xx must still hold a POX success.
 */
static enum net_status call_lms(struct awards *a, struct lms_call *c, struct arena *ar)
{
    struct outcomes *o = &a->oc;
    struct buf body = BUF_INIT(LIMIT_POX_BODY), hash = BUF_INIT(64), auth = BUF_INIT(8192);
    struct net_http_policy pol = {
        .allowed_hosts = c->hosts,
        .allow_loopback = o->cfg.allow_loopback,
        .connect_timeout_ms = o->cfg.connect_timeout_ms,
        .timeout_ms = o->cfg.timeout_ms,
        .ca_file = o->cfg.ca_file,
        .allowed_what = "the consumer's outcome hosts",
        .cancelled = stopping,
        .cancelled_cls = o,
    };
    struct net_http_request req;
    struct net_http_response resp;
    struct net_verdict v;
    struct err err = ERR_INIT;
    char msgid[33];
    enum net_status res = NET_PERMANENT;

    c->retry_after = 0;
    c->answer[0] = '\0';
    if (util_random_hex(msgid, 16, &err) < 0) {
        snprintf(c->answer, sizeof(c->answer), "%s", err.msg);
        res = NET_RETRY;
        goto out;
    }
    c->msg.message_id = msgid;
    if (!net_http_url_allowed(&pol, c->url, c->answer, sizeof(c->answer)))
        goto out; /* the policy's refusal says why; calling again would not help */
    if (lti_pox_build_request(&body, &c->msg, &err) < 0 ||
        lti_oauth_body_hash(&hash, LTI_SIG_HMAC_SHA1, body.ptr, body.len, &err) < 0) {
        snprintf(c->answer, sizeof(c->answer), "%s", err.msg);
        goto out;
    }
    {
        struct lti_oauth_signer s = {
            .url = str_from_cstr(c->url),
            .consumer_key = str_from_cstr(c->key),
            .consumer_secret = str_from_cstr(c->secret),
            .method = LTI_SIG_HMAC_SHA1,
            .body_hash = buf_view(&hash),
        };

        if (lti_oauth_authorization(&auth, &s, &err) < 0) {
            snprintf(c->answer, sizeof(c->answer), "cannot sign for %s: %s", c->url, err.msg);
            goto out;
        }
    }
    if (!o->http)
        o->http = net_http_new();
    if (!o->http) {
        snprintf(c->answer, sizeof(c->answer), "cannot start an HTTP client");
        res = NET_RETRY;
        goto out;
    }
    if (take_token(a, c->consumer_id) < 0) {
        snprintf(c->answer, sizeof(c->answer), "stopped before sending");
        res = NET_RETRY;
        goto out;
    }
    memset(&req, 0, sizeof(req));
    req.method = NET_HTTP_POST;
    req.url = c->url;
    req.content_type = "application/xml";
    req.authorization = auth.ptr;
    req.body = body.ptr;
    req.body_len = body.len;
    req.max_response = LIMIT_POX_BODY;
    net_http_send(o->http, &pol, &req, &resp);
    net_http_classify(&resp, &v);
    c->retry_after = v.retry_after;
    res = v.status;
    switch (v.status) {
    case NET_AUTH:
        if (resp.outcome == NET_HTTP_ANSWERED)
            snprintf(c->answer, sizeof(c->answer),
                     "the LMS refused the signature (HTTP %ld): check the consumer's secret",
                     resp.status);
        else
            snprintf(c->answer, sizeof(c->answer), "could not reach the LMS: %s", v.message);
        break;
    case NET_RETRY:
        if (resp.outcome == NET_HTTP_ANSWERED)
            snprintf(c->answer, sizeof(c->answer), "the LMS answered %s", v.message);
        else
            snprintf(c->answer, sizeof(c->answer), "could not reach the LMS: %s", v.message);
        break;
    case NET_PERMANENT:
        if (resp.outcome != NET_HTTP_ANSWERED)
            snprintf(c->answer, sizeof(c->answer), "%s", v.message);
        else if (lti_pox_parse_response(ar, resp.body.ptr, resp.body.len, &c->resp, &err) == 0)
            pox_answer(c, resp.status); /* Canvas answers a refused request with 422 and why */
        else
            snprintf(c->answer, sizeof(c->answer), "the LMS answered %s", v.message);
        break;
    case NET_OK:
        if (lti_pox_parse_response(ar, resp.body.ptr, resp.body.len, &c->resp, &err) < 0) {
            /* a proxy's page or a broken LMS: it may mend, so try again */
            snprintf(c->answer, sizeof(c->answer), "the LMS answered something else than POX: %s",
                     err.msg);
            res = NET_RETRY;
        } else {
            pox_answer(c, 0);
            res = c->resp.code == LTI_POX_SUCCESS || c->resp.code == LTI_POX_PROCESSING
                      ? NET_OK
                      : NET_PERMANENT;
        }
        break;
    }
    net_http_response_release(&resp);
out:
    buf_release(&body);
    buf_release(&hash);
    buf_release(&auth);
    return res;
}

/* ---- passbacks ---------------------------------------------------------------- */

static void send_passback(struct awards *a, const struct store_passback *p, int64_t now,
                          struct arena *ar, struct store_passback_update *u)
{
    struct lms_call c;
    enum net_status r;

    memset(&c, 0, sizeof(c));
    u->id = p->id;
    if (!p->consumer_enabled) {
        u->kind = PASSBACK_FAILED;
        u->answer = "the consumer is disabled";
        return;
    }
    c.consumer_id = p->consumer_id;
    c.url = p->service_url;
    c.key = p->consumer_key;
    c.secret = p->consumer_secret;
    c.hosts = p->outcome_hosts;
    c.msg.op = LTI_POX_REPLACE;
    c.msg.sourcedid = p->sourcedid;
    c.msg.has_score = p->has_score;
    c.msg.score = p->score;
    c.msg.data_url = p->data_url;
    r = call_lms(a, &c, ar);
    u->answer = arena_strz(ar, str_from_cstr(c.answer));
    switch (r) {
    case NET_OK:
        u->kind = PASSBACK_DONE;
        break;
    case NET_PERMANENT:
        u->kind = PASSBACK_FAILED;
        break;
    case NET_RETRY:
    case NET_AUTH:
        if (p->attempts >= LIMIT_PASSBACK_ATTEMPTS) {
            char *m = arena_alloc(ar, LIMIT_AWARD_ERROR_LEN + 1);

            snprintf(m, LIMIT_AWARD_ERROR_LEN + 1, "gave up after %" PRId64 " attempts: %.900s",
                     p->attempts, c.answer);
            u->kind = PASSBACK_FAILED;
            u->answer = m;
        } else {
            int64_t d = awards_backoff(p->attempts, c.retry_after, awards_jitter());

            if (r == NET_AUTH && d < 300)
                d = 300;
            u->kind = PASSBACK_RETRY;
            u->next_at = now + d;
        }
        break;
    }
}

static int run_passbacks(struct awards *a, int64_t now, size_t *handled, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_passback *due;
    struct store_passback_update *u;
    size_t n;
    int ret;

    *handled = 0;
    if (store_passback_claim(a->store, now, LIMIT_PASSBACK_LEASE, LIMIT_PASSBACK_CLAIM, &ar, &due,
                             &n, err) < 0) {
        arena_release(&ar);
        return -1;
    }
    u = arena_alloc(&ar, (n ? n : 1) * sizeof(*u));
    memset(u, 0, (n ? n : 1) * sizeof(*u));
    for (size_t i = 0; i < n; i++)
        send_passback(a, &due[i], now, &ar, &u[i]);
    ret = n ? store_passback_update_batch(a->store, u, n, err) : 0;
    if (ret == 0)
        *handled = n;
    arena_release(&ar);
    return ret;
}

/* ---- reading grades back ------------------------------------------------------- */

static void read_binding(struct awards *a, const struct store_binding *b, int64_t now,
                         struct arena *ar)
{
    struct lms_call c;
    struct err err = ERR_INIT;
    enum store_read_result rr = READ_FAILED;
    enum net_status r;

    memset(&c, 0, sizeof(c));
    c.consumer_id = b->consumer_id;
    c.url = b->service_url;
    c.key = b->consumer_key;
    c.secret = b->consumer_secret;
    c.hosts = b->outcome_hosts;
    c.msg.op = LTI_POX_READ;
    c.msg.sourcedid = b->sourcedid;
    r = call_lms(a, &c, ar);
    if (r == NET_OK && c.resp.read_answered)
        rr = c.resp.has_score ? READ_SCORE : READ_NO_SCORE;
    else if (r == NET_OK)
        snprintf(c.answer, sizeof(c.answer), "the LMS answered success without a result");
    if (store_binding_read_done(a->store, b->id, now, rr, c.resp.score,
                                rr == READ_FAILED ? c.answer : NULL, &err) < 0) {
        LOG(LOG_LEVEL_ERROR, "outcomes: recording a grade read", LOG_STR("error", err.msg),
            LOG_STR("detail", err.detail));
        return;
    }
    if (rr == READ_SCORE) {
        /* every read is judged: a BadgeClass made since may be earned by an old grade */
        if (awards_grade(a, b->consumer_id, b->lti_user_id, b->lti_context_id,
                         b->lti_resource_link_id, c.resp.score, "lms", NULL, &err) < 0)
            LOG(LOG_LEVEL_ERROR, "outcomes: recording a grade read from the LMS",
                LOG_STR("error", err.msg), LOG_STR("detail", err.detail));
    } else if (rr == READ_NO_SCORE && b->has_score) {
        /* the LMS had a grade and has none now: it was withdrawn there */
        if (awards_grade_delete(a, b->consumer_id, b->lti_user_id, b->lti_context_id,
                                b->lti_resource_link_id, NULL, &err) < 0)
            LOG(LOG_LEVEL_ERROR, "outcomes: recording a grade removed in the LMS",
                LOG_STR("error", err.msg), LOG_STR("detail", err.detail));
    }
}

static int run_reads(struct awards *a, int64_t user_id, int64_t context_id, int64_t before,
                     size_t max, size_t *handled, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_binding *v;
    size_t n;

    *handled = 0;
    if (store_bindings_to_read(a->store, user_id, context_id, before, max, &ar, &v, &n, err) < 0) {
        arena_release(&ar);
        return -1;
    }
    for (size_t i = 0; i < n && !a->oc.stop; i++)
        read_binding(a, &v[i], util_now(), &ar);
    *handled = n;
    arena_release(&ar);
    return 0;
}

/*
 * Whether a course needs its LMS grades read, remembered for a few seconds:
 * most launches come from courses that do not, and a launch should not cost
 * a query for them. Called with o->mu held; -1 when not known.
 */
static int need_cached(struct outcomes *o, int64_t context_id, int64_t now)
{
    struct outcomes_need *e = &o->needs[(uint64_t)context_id % OUTCOMES_NEEDS_CACHE];

    if (e->context_id != context_id || now - e->checked_at >= OUTCOMES_NEEDS_TTL)
        return -1;
    return e->needs;
}

static int context_needs_grades(struct awards *a, int64_t context_id, int64_t now, bool *needs,
                                struct err *err)
{
    struct outcomes *o = &a->oc;
    int known;

    pthread_mutex_lock(&o->mu);
    known = need_cached(o, context_id, now);
    pthread_mutex_unlock(&o->mu);
    if (known >= 0) {
        *needs = known;
        return 0;
    }
    if (store_context_needs_grades(a->store, context_id, needs, err) < 0)
        return -1;
    pthread_mutex_lock(&o->mu);
    o->needs[(uint64_t)context_id % OUTCOMES_NEEDS_CACHE] =
        (struct outcomes_need){ context_id, now, *needs };
    pthread_mutex_unlock(&o->mu);
    return 0;
}

int awards_outcomes_run(struct awards *a, int64_t now, size_t *handled, struct err *err)
{
    struct outcomes *o = &a->oc;
    size_t n = 0, total = 0;

    *handled = 0;
    if (run_passbacks(a, now, &n, err) < 0)
        return -1;
    total += n;
    /* the learners who just launched: their grades may have changed in the LMS */
    for (;;) {
        int64_t user_id, context_id;

        pthread_mutex_lock(&o->mu);
        if (o->qlen == 0 || o->stop) {
            pthread_mutex_unlock(&o->mu);
            break;
        }
        user_id = o->queue[o->qhead].user_id;
        context_id = o->queue[o->qhead].context_id;
        o->qhead = (o->qhead + 1) % OUTCOMES_QUEUE;
        o->qlen--;
        pthread_mutex_unlock(&o->mu);
        {
            bool needs;

            if (context_needs_grades(a, context_id, now, &needs, err) < 0)
                return -1;
            if (!needs)
                continue;
        }
        if (run_reads(a, user_id, context_id, now - LIMIT_OUTCOME_READ_GAP, 16, &n, err) < 0)
            return -1;
        total += n;
    }
    /*
     * And everyone else, every read_interval. The search passes over bindings
     * of courses that need no grades (they are never read, so always look
     * due): it runs again at once only while it finds a full batch, else
     * after the interval or LIMIT_OUTCOME_SWEEP_EVERY, whichever is sooner.
     */
    if (o->cfg.read_interval > 0 && now >= o->next_sweep) {
        if (run_reads(a, 0, 0, now - o->cfg.read_interval, LIMIT_OUTCOME_READS, &n, err) < 0)
            return -1;
        total += n;
        o->next_sweep = n == LIMIT_OUTCOME_READS
                            ? now
                            : now + (o->cfg.read_interval < LIMIT_OUTCOME_SWEEP_EVERY
                                         ? o->cfg.read_interval
                                         : LIMIT_OUTCOME_SWEEP_EVERY);
    }
    *handled = total;
    return 0;
}

static void *outcomes_main(void *arg)
{
    struct awards *a = arg;
    struct outcomes *o = &a->oc;

    pthread_setname_np(pthread_self(), "lb-outcomes");
    pthread_mutex_lock(&o->mu);
    while (!o->stop) {
        struct err err = ERR_INIT;
        size_t n = 0;
        int ret;

        o->woken = false;
        pthread_mutex_unlock(&o->mu);
        ret = awards_outcomes_run(a, util_now(), &n, &err);
        if (ret < 0)
            LOG(LOG_LEVEL_ERROR, "outcomes worker", LOG_STR("error", err.msg),
                LOG_STR("detail", err.detail));
        pthread_mutex_lock(&o->mu);
        if (ret == 0 && n > 0)
            continue; /* more may be due */
        if (!o->woken && !o->stop && o->qlen == 0) {
            struct timespec until;

            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&o->cv, &o->mu, &until);
        }
    }
    pthread_mutex_unlock(&o->mu);
    net_http_free(o->http);
    o->http = NULL;
    return NULL;
}

void awards_outcomes_configure(struct awards *a, const struct awards_outcomes_config *cfg)
{
    struct outcomes *o = &a->oc;

    free(o->ca_file);
    o->cfg = *cfg;
    o->ca_file = cfg->ca_file ? xstrdup(cfg->ca_file) : NULL;
    o->cfg.ca_file = o->ca_file;
    if (o->cfg.rate <= 0)
        o->cfg.rate = LIMIT_OUTCOME_RATE_DEFAULT;
}

void awards_outcomes_config_init(struct awards_outcomes_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->read_interval = LIMIT_OUTCOME_READ_INTERVAL_DEFAULT;
    cfg->rate = LIMIT_OUTCOME_RATE_DEFAULT;
    cfg->connect_timeout_ms = 5000;
    cfg->timeout_ms = 20000;
}

void awards_outcomes_launched(struct awards *a, int64_t user_id, int64_t context_id)
{
    struct outcomes *o = &a->oc;

    if (!context_id)
        return;
    pthread_mutex_lock(&o->mu);
    /* a course known not to need grades costs nothing more; a full queue drops the read (the
       periodic one catches up) */
    if (need_cached(o, context_id, util_now()) != 0 && o->qlen < OUTCOMES_QUEUE) {
        size_t tail = (o->qhead + o->qlen) % OUTCOMES_QUEUE;

        o->queue[tail].user_id = user_id;
        o->queue[tail].context_id = context_id;
        o->qlen++;
        o->woken = true;
        pthread_cond_signal(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
}

void awards_outcomes_wake(struct awards *a)
{
    pthread_mutex_lock(&a->oc.mu);
    a->oc.woken = true;
    pthread_cond_signal(&a->oc.cv);
    pthread_mutex_unlock(&a->oc.mu);
}

int awards_outcomes_start(struct awards *a, struct err *err)
{
    struct outcomes *o = &a->oc;

    if (o->started)
        return 0;
    o->stop = false;
    if (pthread_create(&o->thread, NULL, outcomes_main, a) != 0)
        return err_set(err, ERR_INTERNAL, "cannot start the outcomes worker");
    o->started = true;
    return 0;
}

void awards_outcomes_stop(struct awards *a)
{
    struct outcomes *o = &a->oc;

    if (!o->started)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = true;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thread, NULL);
    o->started = false;
}
