/*
 * web/outcomes.c - POST /lti/outcomes: LTI 1.1 Basic Outcomes from an LMS
 * (or any grader holding a consumer's key) to the tool.
 *
 * The request is authenticated before its XML is looked at: OAuth 1.0a in
 * the Authorization header over the public outcomes URL and its query, the
 * oauth_body_hash checked against the exact body, the timestamp window and
 * a nonce claimed once. Any failure there is 401 and changes nothing. Then
 * the POX message is parsed safely (lti/pox.c) and answered with a POX
 * response: success, or failure / unsupported with the reason, and with the
 * request's message id as imsx_messageRefIdentifier.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"

/* An answer's description, in the request's arena (cut at the description limit). */
static const char *textf(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static const char *textf(struct req *r, const char *fmt, ...)
{
    char *out = arena_alloc(&r->arena, LIMIT_POX_DESCRIPTION_LEN + 1);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, LIMIT_POX_DESCRIPTION_LEN + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* Answers `a` under a message id of our own. */
static void answer(struct req *r, unsigned status, struct lti_pox_answer *a)
{
    struct buf out = BUF_INIT(LIMIT_POX_BODY);
    struct err err = ERR_INIT;
    char id[33], *body;
    size_t len;

    a->message_id = id;
    if (util_random_hex(id, 16, &err) < 0 || lti_pox_build_response(&out, a, &err) < 0) {
        buf_release(&out);
        web_reply_err(r, &err);
        return;
    }
    body = buf_detach(&out, &len);
    web_reply(r, status, "application/xml; charset=utf-8", body, len, NULL);
}

/* A POX failure (or unsupported) answer with HTTP `status`. */
static void fail(struct req *r, unsigned status, enum lti_pox_code code, const char *message_ref,
                 const char *operation_ref, const char *description)
{
    struct lti_pox_answer a;

    memset(&a, 0, sizeof(a));
    a.code = code;
    a.op = LTI_POX_OTHER;
    a.message_ref = message_ref;
    a.operation_ref = operation_ref;
    a.description = description;
    answer(r, status, &a);
}

/* Authenticates the request; on failure it has been answered (401 or 400). */
static int authenticate(struct req *r, struct store_consumer *consumer)
{
    struct web *w = r->web;
    struct err err = ERR_INIT;
    const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    struct form hf;
    const struct form *lists[2];
    struct lti_oauth o;
    struct buf hash = BUF_INIT(64);
    bool hash_ok;

    if (!auth) {
        fail(r, 401, LTI_POX_FAILURE, NULL, NULL,
             "an outcomes request must be signed: OAuth 1.0a in the Authorization header");
        return -1;
    }
    /* the query was decoded (and its names checked) before the route ran */
    if (lti_oauth_header_parse(&r->arena, str_from_cstr(auth), &hf, &err) < 0) {
        /* malformed, not merely unsigned: a bad escape or parameter name */
        fail(r, err.code == ERR_INVALID ? 400 : 401, LTI_POX_FAILURE, NULL, NULL, err.msg);
        return -1;
    }
    lists[0] = &r->qform;
    lists[1] = &hf;
    if (lti_oauth_params(lists, 2, &o, &err) < 0) {
        fail(r, 401, LTI_POX_FAILURE, NULL, NULL, err.msg);
        return -1;
    }
    if (!str_present(o.body_hash)) {
        fail(r, 401, LTI_POX_FAILURE, NULL, NULL,
             "missing parameter 'oauth_body_hash' (the body must be signed too)");
        return -1;
    }
    if (store_consumer_find(w->store, o.consumer_key, consumer, &err) < 0 || !consumer->enabled) {
        if (err.code != ERR_NONE && err.code != ERR_NOTFOUND) {
            web_reply_err(r, &err);
            return -1;
        }
        fail(r, 401, LTI_POX_FAILURE, NULL, NULL, "unknown or disabled consumer key");
        return -1;
    }
    if (lti_oauth_verify(&o, STR_LIT("POST"), str_from_cstr(w->outcomes_url), lists, 2,
                         str_from_cstr(consumer->secret), &err) < 0) {
        fail(r, 401, LTI_POX_FAILURE, NULL, NULL, err.msg);
        return -1;
    }
    /*
     * The signature covers the hash; the hash must cover this very body. The
     * body-hash extension names SHA-1 (LTI 1.1 and every LMS use it, with
     * HMAC-SHA256 signatures too); a SHA-256 hash is taken with HMAC-SHA256.
     */
    if (lti_oauth_body_hash(&hash,
                            o.method == LTI_SIG_HMAC_SHA256 && o.body_hash.len == 44
                                ? LTI_SIG_HMAC_SHA256
                                : LTI_SIG_HMAC_SHA1,
                            r->body.ptr, r->body.len, &err) < 0) {
        buf_release(&hash);
        web_reply_err(r, &err);
        return -1;
    }
    hash_ok = util_ct_equal(hash.ptr, hash.len, o.body_hash.ptr, o.body_hash.len);
    buf_release(&hash);
    if (!hash_ok) {
        fail(r, 401, LTI_POX_FAILURE, NULL, NULL,
             "oauth_body_hash does not match the body (it was changed on the way)");
        return -1;
    }
    if (lti_oauth_check_time(&o, util_now(), w->cfg.oauth_window, &err) < 0 ||
        store_nonce_claim(w->store, consumer->id, o.nonce, o.ts, &err) < 0) {
        if (err.code == ERR_REPLAY)
            fail(r, 401, LTI_POX_FAILURE, NULL, NULL, err.msg);
        else
            web_reply_err(r, &err);
        return -1;
    }
    return 0;
}

void web_route_outcomes(struct req *r)
{
    struct web *w = r->web;
    struct awards *aw = w->cfg.awards;
    struct store_consumer consumer;
    struct store_outcome_target t;
    struct lti_pox_request q;
    struct lti_pox_answer a;
    struct err err = ERR_INIT;
    char opref[64], score[LTI_SCORE_BUF];

    if (authenticate(r, &consumer) < 0)
        return;
    if (lti_pox_parse_request(&r->arena, r->body.ptr, r->body.len, &q, &err) < 0) {
        fail(r, 200, LTI_POX_FAILURE, q.message_id, NULL, err.msg);
        return;
    }
    snprintf(opref, sizeof(opref), "%s", lti_pox_op_name(q.op));
    if (q.op == LTI_POX_OTHER) {
        /* the operation's name, less "Request", as its reference */
        size_t n = strlen(q.op_name);

        if (n > 7 && strcmp(q.op_name + n - 7, "Request") == 0)
            n -= 7;
        snprintf(opref, sizeof(opref), "%.*s", (int)n, q.op_name);
        fail(r, 200, LTI_POX_UNSUPPORTED, q.message_id, opref,
             textf(r,
                   "%s is not supported; ltibadges supports replaceResult, readResult and "
                   "deleteResult",
                   opref));
        return;
    }
    if (!aw) {
        fail(r, 200, LTI_POX_FAILURE, q.message_id, opref, "grades are not recorded here");
        return;
    }
    if (store_outcome_resolve(w->store, consumer.id, q.sourcedid, &r->arena, &t, &err) < 0) {
        if (err.code != ERR_NOTFOUND) {
            web_reply_err(r, &err);
            return;
        }
        fail(r, 200, LTI_POX_FAILURE, q.message_id, opref, err.msg);
        return;
    }
    if (!t.context_id) {
        fail(r, 200, LTI_POX_FAILURE, q.message_id, opref,
             "this result belongs to a launch outside any course");
        return;
    }

    memset(&a, 0, sizeof(a));
    a.code = LTI_POX_SUCCESS;
    a.op = q.op;
    a.message_ref = q.message_id;
    a.operation_ref = opref;
    switch (q.op) {
    case LTI_POX_REPLACE: {
        struct awards_outcome res;

        if (awards_grade(aw, consumer.id, t.lti_user_id, t.lti_context_id, t.lti_resource_link_id,
                         q.score, "outcomes", &res, &err) < 0)
            break;
        lti_score_format(q.score, score);
        a.description = textf(r, "Score for %.200s is now %s", q.sourcedid, score);
        break;
    }
    case LTI_POX_READ:
        if (store_grade_get(w->store, t.user_id, t.link_id, &a.score, &a.has_score, &err) < 0)
            break;
        lti_score_format(a.score, score);
        a.description = a.has_score ? textf(r, "Score for %.200s is %s", q.sourcedid, score)
                                    : textf(r, "No score for %.200s", q.sourcedid);
        break;
    case LTI_POX_DELETE:
        if (awards_grade_delete(aw, consumer.id, t.lti_user_id, t.lti_context_id,
                                t.lti_resource_link_id, NULL, &err) < 0)
            break;
        a.description = textf(r, "Score for %.200s deleted", q.sourcedid);
        break;
    case LTI_POX_OTHER:
        break;
    }
    if (err.code != ERR_NONE) {
        /* the database failed: the LMS should try again, so not a POX failure */
        web_reply_err(r, &err);
        return;
    }
    answer(r, 200, &a);
}
