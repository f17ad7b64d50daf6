/*
 * web/launch.c - POST /lti/launch.
 *
 * The order matters for "an unsigned or badly signed request never causes a
 * redirect, a write, or a session": parse the form, read the oauth_*
 * parameters (400), find the consumer (401), verify the signature over the
 * public launch URL (401), check the timestamp window (401), and only then
 * look at the LTI fields, whose refusal may be sent back to the LMS's return
 * URL. The nonce is claimed by the writer in the same transaction as
 * everything the launch stores; a replay writes nothing.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"

#include <openssl/crypto.h>

/*
 * The origin ("scheme://host[:port]") of `url` when it is a plain http(s)
 * origin, written into `out`; the null view otherwise. It goes into a
 * Content-Security-Policy header, so only host characters pass.
 */
static struct str origin_of(struct req *r, const char *url)
{
    const char *p, *host;
    size_t n;

    if (!url)
        return STR_NULL;
    if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else
        return STR_NULL;
    for (p = host; *p && *p != '/' && *p != '?' && *p != '#'; p++) {
        char c = *p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return STR_NULL;
    }
    n = (size_t)(p - url);
    if (p == host || n > 255)
        return STR_NULL;
    return (struct str){ arena_memdupz(&r->arena, url, n), n };
}

static void launch_done(struct store_launch_job *job)
{
    struct req *r = job->cls;

    /* for /metrics: what the writer made of it (read by the MHD thread after the resume) */
    if (job->status == 0)
        r->launch_outcome = WEB_LAUNCH_ACCEPTED;
    else if (job->err.code == ERR_REPLAY)
        r->launch_outcome = WEB_LAUNCH_REPLAY;
    else if (job->err.code == ERR_UNAUTHORIZED)
        r->launch_outcome = WEB_LAUNCH_CONSUMER_CHANGED;
    else if (job->err.code == ERR_UNAVAILABLE)
        r->launch_outcome = WEB_LAUNCH_UNAVAILABLE;

    /*
     * Runs on the writer thread: hand the request back to its MHD thread.
     * The in-flight count drops only once that thread has answered
     * (web_route_launch_resumed): MHD must never be stopped with a
     * connection still suspended.
     */
    MHD_resume_connection(r->conn);
}

/* What a recorded launch sets going besides its answer. */
static void launch_recorded(struct req *r)
{
    if (r->job.result.awards_added && r->web->cfg.awards)
        awards_wake(r->web->cfg.awards); /* an enrollment badge is due */
    /* the LMS may hold a new grade for this learner: read it back soon */
    if (r->web->cfg.awards && str_present(r->launch.outcome_service_url) &&
        str_present(r->launch.result_sourcedid))
        awards_outcomes_launched(r->web->cfg.awards, r->job.result.user_id,
                                 r->job.result.context_id);
}

/*
 * The browser left before its redirect: the launch is recorded all the
 * same (the session waits unused), and its badges are still due.
 */
static void launch_abandoned(struct req *r)
{
    if (r->job.status == 0)
        launch_recorded(r);
}

/* Sends an LTI-level refusal back to the LMS when it gave a return URL, else a 400 page. */
static void refuse_lti(struct req *r, struct str return_url, const struct err *err)
{
    struct buf loc = BUF_INIT(LIMIT_LTI_URL_LEN * 2);

    if (!str_present(return_url)) {
        web_reply_err(r, err);
        return;
    }
    {
        /* the message goes into the query, before any fragment */
        const char *hash = memchr(return_url.ptr, '#', return_url.len);
        struct str head = { return_url.ptr,
                            hash ? (size_t)(hash - return_url.ptr) : return_url.len };

        buf_addview(&loc, head);
        buf_addch(&loc, memchr(head.ptr, '?', head.len) ? '&' : '?');
        form_add_query_param(&loc, "lti_errormsg", str_from_cstr(err->msg));
        if (hash)
            buf_add(&loc, hash, return_url.len - head.len);
    }
    if (loc.toobig) {
        buf_release(&loc);
        web_reply_err(r, err);
        return;
    }
    web_reply_redirect(r, 302, loc.ptr);
    buf_release(&loc);
}

/* A launch's consumer, enabled, whose secret verifies its signature. */
static int check_consumer(struct web *w, const struct lti_oauth *oauth,
                          const struct form *const *lists, const struct store_consumer *consumer,
                          struct err *err)
{
    if (!consumer->enabled)
        /* the same answer as an unknown key: an unsigned request learns nothing */
        return err_set(err, ERR_UNAUTHORIZED, "unknown or disabled consumer key");
    return lti_oauth_verify_launch(oauth, str_from_cstr(w->launch_url), lists[0], lists[1],
                                   str_from_cstr(consumer->secret), err);
}

/*
 * Finds the launch's consumer and verifies the signature with its secret.
 * The consumer comes from the store's cache when it can: another process
 * (the CLI) may have changed it since, so a refusal is decided on a fresh
 * read only, and the writer confirms an acceptance (store_launch).
 */
static int verify_consumer(struct web *w, const struct lti_oauth *oauth,
                           const struct form *const *lists, struct store_consumer *consumer,
                           struct err *err)
{
    bool cached = false;

    if (store_consumer_find_cached(w->store, oauth->consumer_key, consumer, &cached, err) == 0 &&
        check_consumer(w, oauth, lists, consumer, err) == 0)
        return 0;
    if (cached) {
        err_clear(err);
        if (store_consumer_find(w->store, oauth->consumer_key, consumer, err) == 0 &&
            check_consumer(w, oauth, lists, consumer, err) == 0)
            return 0;
    }
    if (err->code == ERR_NOTFOUND) {
        consumer->id = 0;
        err_clear(err);
        err_set(err, ERR_UNAUTHORIZED, "unknown or disabled consumer key");
    }
    return -1;
}

void web_route_launch(struct req *r)
{
    struct web *w = r->web;
    struct err err = ERR_INIT;
    struct form body;
    const struct form *lists[2];
    struct lti_oauth oauth;
    struct store_consumer consumer;
    struct store_launch *sl = &r->job.launch;
    int64_t now = util_now();

    /* the query was decoded (and its names checked) before the route ran */
    r->launch_outcome = WEB_LAUNCH_MALFORMED; /* until more is known */
    if (form_parse(&r->arena, r->body.ptr, r->body.len, LIMIT_FORM_PARAMS, &body, &err) < 0) {
        if (err.code == ERR_TOOBIG)
            err.code = ERR_INVALID;
        web_reply_err(r, &err);
        return;
    }
    /* the launch URL's own query parameters are signed too (Moodle's launch URLs have them) */
    lists[0] = &r->qform;
    lists[1] = &body;
    if (lti_oauth_params(lists, 2, &oauth, &err) < 0) {
        web_reply_err(r, &err);
        return;
    }
    consumer.id = 0;
    if (verify_consumer(w, &oauth, lists, &consumer, &err) < 0) {
        if (err.code == ERR_UNAUTHORIZED)
            r->launch_outcome = consumer.id && consumer.enabled ? WEB_LAUNCH_BAD_SIGNATURE
                                                                : WEB_LAUNCH_UNKNOWN_CONSUMER;
        web_reply_err(r, &err);
        return;
    }

    /* verified: from here on a refusal may go back to the LMS (read only then) */
    if (lti_oauth_check_time(&oauth, now, w->cfg.oauth_window, &err) < 0 ||
        lti_launch_parse(&body, &r->launch, &err) < 0) {
        r->launch_outcome =
            err.code == ERR_REPLAY ? WEB_LAUNCH_STALE_TIMESTAMP : WEB_LAUNCH_INVALID;
        refuse_lti(r, lti_launch_return_url(&body), &err);
        return;
    }

    r->launch_outcome = WEB_LAUNCH_NONE; /* from here on: the writer's answer, or the status */
    memset(sl, 0, sizeof(*sl));
    {
        /* the session token's secret and the CSRF secret from one call to the generator */
        unsigned char rnd[64];

        if (util_random(rnd, sizeof(rnd), &err) < 0) {
            web_reply_err(r, &err);
            return;
        }
        util_hex(r->token, rnd, 32);
        memcpy(sl->csrf_secret, rnd + 32, sizeof(sl->csrf_secret));
        OPENSSL_cleanse(rnd, sizeof(rnd));
    }
    util_sha256(r->token, 64, sl->session_secret_hash);
    sl->consumer_id = consumer.id;
    sl->consumer_secret = str_from_cstr(arena_strz(&r->arena, str_from_cstr(consumer.secret)));
    sl->nonce = oauth.nonce;
    sl->timestamp = oauth.ts;
    sl->now = now;
    sl->lms = r->launch.lms;
    sl->user_id = r->launch.user_id;
    sl->given_name = r->launch.given_name;
    sl->family_name = r->launch.family_name;
    sl->full_name = r->launch.full_name;
    sl->email = r->launch.email;
    sl->person_sourcedid = r->launch.person_sourcedid;
    sl->context_id = r->launch.context_id;
    sl->context_title = r->launch.context_title;
    sl->context_label = r->launch.context_label;
    sl->resource_link_id = r->launch.resource_link_id;
    sl->resource_link_title = r->launch.resource_link_title;
    sl->points_possible = r->launch.points_possible;
    sl->roles = r->launch.roles;
    sl->ext_roles = r->launch.ext_roles;
    sl->role_flags = r->launch.role_flags;
    sl->mode = r->launch.mode;
    sl->outcome_service_url = r->launch.outcome_service_url;
    sl->result_sourcedid = r->launch.result_sourcedid;
    sl->outcome_data_accepted = r->launch.outcome_data_accepted;
    sl->total_score_accepted = r->launch.total_score_accepted;
    sl->return_url = r->launch.return_url;
    sl->document_target = r->launch.document_target;
    sl->locale = r->launch.locale;
    /*
     * The LMS page that launched may frame our pages: the browser's Origin
     * of the launch POST, else the return URL's ("null" when the LMS hides it).
     */
    sl->frame_origin =
        origin_of(r, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin"));
    if (!str_present(sl->frame_origin) && str_present(r->launch.return_url))
        sl->frame_origin = origin_of(r, arena_strz(&r->arena, r->launch.return_url));
    sl->session_expires = now + w->cfg.session_ttl;
    r->job.done = launch_done;
    r->job.cls = r;

    /* counted before the check, so web_stop() either sees it or it sees the stop */
    web_req_hold(r, &w->launches_in_flight);
    if (atomic_load(&w->stopping)) {
        const char *hdrs[] = { "Retry-After", "1", "Connection", "close", NULL };
        static const char msg[] = "the server is restarting, please launch again\n";

        web_req_release(r);
        web_reply(r, 503, "text/plain; charset=utf-8", xmemdupz(msg, sizeof(msg) - 1),
                  sizeof(msg) - 1, hdrs);
        return;
    }
    /* suspend before submitting: the writer may answer before this function returns */
    r->suspended = true;
    r->resumed = web_route_launch_resumed;
    r->abandoned = launch_abandoned;
    MHD_suspend_connection(r->conn);
    store_launch_submit(w->store, &r->job);
}

void web_route_launch_resumed(struct req *r)
{
    struct buf loc = BUF_INIT(LIMIT_LTI_URL_LEN * 2);
    struct err err = ERR_INIT;

    if (r->job.status < 0) {
        /*
         * Verified, so a refusal (a replay) may go back to the LMS; not one
         * for a consumer disabled or given a new secret since (a launch
         * signed with a secret no longer valid), nor a busy database.
         */
        if (r->job.err.code == ERR_UNAVAILABLE || r->job.err.code == ERR_UNAUTHORIZED)
            web_reply_err(r, &r->job.err);
        else
            refuse_lti(r, r->launch.return_url, &r->job.err);
    } else {
        launch_recorded(r);
        /* the token: the session's id, then its secret (only the secret's hash is stored) */
        buf_addf(&loc, "%s/badges?s=%" PRId64 "-%s", r->web->public_url, r->job.result.session_id,
                 r->token);
        if (buf_check(&loc, "redirect", &err) < 0)
            web_reply_err(r, &err);
        else
            web_reply_redirect(r, 303, loc.ptr);
    }
    buf_release(&loc);
    web_req_release(r);
}
