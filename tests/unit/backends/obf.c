/*
 * tests/unit/backends/obf.c - the Open Badge Factory backend's parts that do
 * not touch the network: what each answer of API v2 comes to (OBF's
 * `error`/`message` texts, 401/403 to renew, 404, 429 with Retry-After,
 * 5xx and drops retryable), the token's states (reused until shortly
 * before it expires, never asked for sooner than ten seconds after the
 * last, a refused client waited out as auth) and the bodies of badge
 * create/update and event issue. The answers are the ones
 * tests/integration/obffake.py gives (it cites OBF's docs and Moodle plugin).
 */
#include "base/base.h"
#include "backends/obf.h"

#include <setjmp.h>
#include <cmocka.h>

#define JSON_TYPE "application/json"
#define SECRET    "s3cret-0bf-client"

static struct net_http_response answer(long status, const char *ctype, const char *body)
{
    struct net_http_response h;

    memset(&h, 0, sizeof(h));
    h.outcome = NET_HTTP_ANSWERED;
    h.status = status;
    snprintf(h.content_type, sizeof(h.content_type), "%s", ctype ? ctype : "");
    buf_init(&h.body, 1024 * 1024);
    if (body)
        buf_addstr(&h.body, body);
    return h;
}

static struct net_http_response no_answer(const char *error, bool tls_unverified)
{
    struct net_http_response h = answer(0, NULL, NULL);

    h.outcome = NET_HTTP_NETWORK;
    h.tls_unverified = tls_unverified;
    snprintf(h.error, sizeof(h.error), "%s", error);
    return h;
}

static enum obf_kind kind_of(struct net_http_response h, char *msg, int64_t *retry_after)
{
    struct obf_reply r;
    enum obf_kind k;

    backend_obf_reply(&h, "badge 'B1'", &r);
    k = r.kind;
    snprintf(msg, LIMIT_AWARD_ERROR_LEN + 1, "%s", r.message);
    if (retry_after)
        *retry_after = r.retry_after;
    backend_obf_reply_release(&r);
    net_http_response_release(&h);
    return k;
}

static void replies(void **state)
{
    char msg[LIMIT_AWARD_ERROR_LEN + 1];
    int64_t ra = 0;
    struct obf_reply r;
    struct net_http_response h;

    (void)state;
    h = answer(201, JSON_TYPE, "{\"success\":true,\"resource_id\":\"EV1\"}");
    backend_obf_reply(&h, "the event", &r);
    assert_int_equal(r.kind, OBF_OK);
    assert_string_equal(json_string_value(json_object_get(r.doc, "resource_id")), "EV1");
    backend_obf_reply_release(&r);
    net_http_response_release(&h);
    assert_int_equal(kind_of(answer(204, NULL, NULL), msg, NULL), OBF_OK);
    /* the permanent refusals carry OBF's text, from `error` or `message` */
    assert_int_equal(
        kind_of(answer(400, JSON_TYPE, "{\"error\":\"Invalid image\\n data\"}"), msg, NULL),
        OBF_PERMANENT);
    assert_string_equal(msg, "badge 'B1': Open Badge Factory refused it (HTTP 400): Invalid "
                             "image  data");
    assert_int_equal(
        kind_of(answer(400, JSON_TYPE, "{\"success\":false,\"message\":\"name is required\"}"), msg,
                NULL),
        OBF_PERMANENT);
    assert_non_null(strstr(msg, "(HTTP 400): name is required"));
    assert_int_equal(
        kind_of(answer(405, JSON_TYPE, "{\"error\":\"Method not allowed\"}"), msg, NULL),
        OBF_PERMANENT);
    assert_non_null(strstr(msg, "(HTTP 405): Method not allowed"));
    assert_int_equal(kind_of(answer(411, JSON_TYPE, "{\"error\":\"Length required\"}"), msg, NULL),
                     OBF_PERMANENT);
    assert_non_null(strstr(msg, "wants a Content-Length (HTTP 411): Length required"));
    assert_int_equal(
        kind_of(answer(413, JSON_TYPE, "{\"error\":\"Request entity too large\"}"), msg, NULL),
        OBF_PERMANENT);
    assert_non_null(strstr(msg, "too large (HTTP 413)"));
    assert_int_equal(kind_of(answer(404, JSON_TYPE, "{\"error\":\"Not found\"}"), msg, NULL),
                     OBF_NOT_FOUND);
    assert_string_equal(msg, "badge 'B1': not found at Open Badge Factory (HTTP 404): Not found");
    /* 401 and 403 renew the token */
    assert_int_equal(kind_of(answer(401, JSON_TYPE, "{\"message\":\"Unauthorized\"}"), msg, NULL),
                     OBF_UNAUTHORIZED);
    assert_int_equal(kind_of(answer(403, JSON_TYPE, "{\"message\":\"Forbidden\"}"), msg, NULL),
                     OBF_UNAUTHORIZED);
    /* 429 waits its Retry-After; 5xx, a 2xx without success and drops are retryable */
    h = answer(429, JSON_TYPE, "{\"error\":\"Too many requests\"}");
    h.retry_after = 7;
    assert_int_equal(kind_of(h, msg, &ra), OBF_RETRY);
    assert_int_equal(ra, 7);
    assert_non_null(strstr(msg, "asks to wait (HTTP 429)"));
    assert_int_equal(kind_of(answer(500, "text/html", "<h1>oops</h1>"), msg, NULL), OBF_RETRY);
    assert_string_equal(msg, "badge 'B1': Open Badge Factory failed (HTTP 500)");
    assert_int_equal(kind_of(answer(502, NULL, NULL), msg, NULL), OBF_RETRY);
    assert_int_equal(kind_of(answer(503, JSON_TYPE, "{}"), msg, NULL), OBF_RETRY);
    assert_int_equal(
        kind_of(answer(200, JSON_TYPE, "{\"success\":false,\"message\":\"db\"}"), msg, NULL),
        OBF_RETRY);
    assert_int_equal(kind_of(no_answer("connection dropped", false), msg, NULL), OBF_RETRY);
    assert_int_equal(kind_of(no_answer("certificate", true), msg, NULL), OBF_AUTH);
}

static struct net_http_response token_answer(const char *token, int64_t expires_in)
{
    char body[4096];

    snprintf(body, sizeof(body),
             "{\"access_token\":\"%s\",\"token_type\":\"bearer\",\"expires_in\":%" PRId64 "}",
             token, expires_in);
    return answer(200, JSON_TYPE, body);
}

static void token_states(void **state)
{
    struct obf_token t;
    struct backend_result r;
    struct net_http_response h;
    uint64_t gen;
    const int64_t t0 = 1000000;

    (void)state;
    backend_obf_token_init(&t);
    assert_int_equal(backend_obf_token_step(&t, t0), OBF_TOKEN_REQUEST);
    backend_result_init(&r);
    h = token_answer("tok-1", 3600);
    backend_obf_token_answer(&t, &h, t0, &r);
    net_http_response_release(&h);
    assert_int_equal(r.status, BACKEND_OK);
    assert_string_equal(t.access, "tok-1");
    gen = t.generation;
    /* reused until a minute before it expires (a tenth of its life at most) */
    assert_int_equal(backend_obf_token_step(&t, t0 + 1), OBF_TOKEN_USE);
    assert_int_equal(backend_obf_token_step(&t, t0 + 3539), OBF_TOKEN_USE);
    assert_int_equal(backend_obf_token_step(&t, t0 + 3540), OBF_TOKEN_REQUEST);
    /* a rejected token: dropped, but no new request within ten seconds of the last */
    backend_obf_token_rejected(&t, gen);
    assert_int_equal(t.access[0], '\0');
    assert_int_equal(backend_obf_token_step(&t, t0 + 5), OBF_TOKEN_WAIT);
    backend_result_init(&r);
    backend_obf_token_wait(&t, t0 + 5, &r);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_int_equal(r.retry_after, 5);
    assert_int_equal(backend_obf_token_step(&t, t0 + 9), OBF_TOKEN_WAIT);
    assert_int_equal(backend_obf_token_step(&t, t0 + 10), OBF_TOKEN_REQUEST);
    /* a short-lived token: renewed at a tenth of its life before it ends */
    backend_result_init(&r);
    h = token_answer("tok-2", 30);
    backend_obf_token_answer(&t, &h, t0 + 10, &r);
    net_http_response_release(&h);
    assert_int_not_equal(t.generation, gen);
    /* a rejection of the older token leaves the newer one */
    backend_obf_token_rejected(&t, gen);
    assert_string_equal(t.access, "tok-2");
    assert_int_equal(backend_obf_token_step(&t, t0 + 36), OBF_TOKEN_USE);
    assert_int_equal(backend_obf_token_step(&t, t0 + 37), OBF_TOKEN_REQUEST);
    /* 429 within the ten seconds: the valid token is still used, no request before Retry-After */
    backend_result_init(&r);
    h = answer(429, JSON_TYPE, "{\"error\":\"too_many_requests\"}");
    h.retry_after = 4;
    backend_obf_token_answer(&t, &h, t0 + 37, &r);
    net_http_response_release(&h);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_int_equal(r.retry_after, OBF_TOKEN_INTERVAL);
    assert_int_equal(backend_obf_token_step(&t, t0 + 38), OBF_TOKEN_USE);
    assert_int_equal(backend_obf_token_step(&t, t0 + 40), OBF_TOKEN_WAIT);
    assert_int_equal(backend_obf_token_step(&t, t0 + 47), OBF_TOKEN_REQUEST);
    /* a drop counts as a request too */
    backend_result_init(&r);
    h = no_answer("connection dropped", false);
    backend_obf_token_answer(&t, &h, t0 + 47, &r);
    net_http_response_release(&h);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_int_equal(backend_obf_token_step(&t, t0 + 56), OBF_TOKEN_WAIT);
    /* a refused client: auth, waited out, the secret never in the message */
    backend_result_init(&r);
    h = answer(401, JSON_TYPE,
               "{\"error\":\"invalid_client\",\"error_description\":\"client authentication "
               "failed\"}");
    backend_obf_token_answer(&t, &h, t0 + 57, &r);
    net_http_response_release(&h);
    assert_int_equal(r.status, BACKEND_AUTH);
    assert_non_null(strstr(r.message, "refused the client id and secret (HTTP 401, "
                                      "invalid_client)"));
    assert_null(strstr(r.message, SECRET));
    assert_int_equal(backend_obf_token_step(&t, t0 + 57 + OBF_REFUSED_WAIT - 1), OBF_TOKEN_WAIT);
    backend_result_init(&r);
    backend_obf_token_wait(&t, t0 + 58, &r);
    assert_int_equal(r.status, BACKEND_AUTH);
    assert_int_equal(backend_obf_token_step(&t, t0 + 57 + OBF_REFUSED_WAIT), OBF_TOKEN_REQUEST);
    /* an answer without a token is retryable and stores nothing */
    backend_result_init(&r);
    h = answer(200, JSON_TYPE, "{\"access_token\":\"a b\",\"expires_in\":60}");
    backend_obf_token_answer(&t, &h, t0 + 400, &r);
    net_http_response_release(&h);
    assert_int_equal(r.status, BACKEND_RETRY);
    assert_string_equal(t.access, "");
}

static void token_form(void **state)
{
    struct buf f = BUF_INIT(4096);

    (void)state;
    backend_obf_token_form("NN9CX8VBa8hJ", "a&b=c", &f);
    buf_addch(&f, '\0');
    assert_string_equal(
        f.ptr, "grant_type=client_credentials&client_id=NN9CX8VBa8hJ&client_secret=a%26b%3Dc");
    buf_release(&f);
}

static const unsigned char png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

static void bodies(void **state)
{
    struct obf_settings *s = xcalloc(1, sizeof(*s));
    struct backend_badge bc = {
        .slug = "python-1",
        .name = "Python 1",
        .description = "Finished Python 1",
        .image_type = "image/png",
        .image = png,
        .image_len = sizeof(png),
        .criteria_url = "https://lms.example.edu/c/1",
        .criteria_narrative = "Pass every quiz.",
        .issuing_component = "ltibadges",
        .tags = "[\"python\",\"ltibadges\"]",
        .marker = "ltibadges:0123456789ab:python-1",
    };
    struct backend_award a = {
        .uid = "u-123",
        .recipient_email = "ada@example.edu",
        .recipient_name = "Ada L",
        .course = "Python 1",
        .consumer = "moodle-key",
        .issued_at = 1764000000,
    };
    struct err err = ERR_INIT;
    json_t *o, *c;
    char *text, uid[64];

    (void)state;
    snprintf(s->language, sizeof(s->language), "fi");
    snprintf(s->api_consumer_id, sizeof(s->api_consumer_id), "ltibadges");
    s->notify = true;
    assert_int_equal(backend_obf_badge_body(&bc, s, &text, &err), 0);
    o = json_loads(text, 0, NULL);
    free(text);
    assert_true(json_is_false(json_object_get(o, "draft")));
    assert_string_equal(json_string_value(json_object_get(o, "image")),
                        "data:image/png;base64,iVBORw0KGgo=");
    assert_string_equal(json_string_value(json_object_get(o, "primary_language")), "fi");
    assert_null(json_object_get(o, "email_message"));
    c = json_array_get(json_object_get(o, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "language")), "fi");
    assert_string_equal(json_string_value(json_object_get(c, "name")), "Python 1");
    assert_string_equal(json_string_value(json_object_get(c, "description")), "Finished Python 1");
    assert_string_equal(
        json_string_value(json_object_get(c, "criteria")),
        "Pass every quiz.\n\n[https://lms.example.edu/c/1](https://lms.example.edu/c/1)");
    assert_int_equal(json_array_size(json_object_get(c, "tag")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "tag"), 2)), bc.marker);
    json_decref(o);
    /* an image that is neither PNG nor SVG is refused */
    bc.image_type = "image/gif";
    assert_int_equal(backend_obf_badge_body(&bc, s, &text, &err), -1);
    assert_non_null(strstr(err.msg, "needs a PNG or SVG image"));
    /* the issue: recipient, when earned, consumer id, send_email, log_entry, e-mail parts */
    snprintf(s->email_subject, sizeof(s->email_subject), "Your badge");
    assert_int_equal(backend_obf_issue_body(&a, s, &text, &err), 0);
    o = json_loads(text, 0, NULL);
    free(text);
    c = json_array_get(json_object_get(o, "recipient"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "email")), "ada@example.edu");
    assert_string_equal(json_string_value(json_object_get(c, "name")), "Ada L");
    assert_int_equal(json_integer_value(json_object_get(o, "issued_on")), 1764000000);
    assert_null(json_object_get(o, "expires_on"));
    assert_string_equal(json_string_value(json_object_get(o, "api_consumer_id")), "ltibadges");
    assert_true(json_is_true(json_object_get(o, "send_email")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "email_message"), "subject")),
        "Your badge");
    assert_true(backend_obf_log_uid(o, uid, sizeof(uid)));
    assert_string_equal(uid, "u-123");
    c = json_object_get(o, "log_entry");
    assert_string_equal(json_string_value(json_object_get(c, "course")), "Python 1");
    assert_string_equal(json_string_value(json_object_get(c, "consumer")), "moodle-key");
    json_decref(o);
    a.expires_at = 1800000000;
    assert_int_equal(backend_obf_issue_body(&a, s, &text, &err), 0);
    o = json_loads(text, 0, NULL);
    free(text);
    assert_int_equal(json_integer_value(json_object_get(o, "expires_on")), 1800000000);
    json_decref(o);
    /* log_entry as v2 returns it: a JSON string */
    o = json_pack("{s:s}", "log_entry", "{\"award_uid\":\"u-456\",\"course\":\"C\"}");
    assert_true(backend_obf_log_uid(o, uid, sizeof(uid)));
    assert_string_equal(uid, "u-456");
    json_decref(o);
    o = json_pack("{s:s}", "log_entry", "not json");
    assert_false(backend_obf_log_uid(o, uid, sizeof(uid)));
    json_decref(o);
    free(s);
}

/* Finding what a lost answer made: a badge by its marker, an event by the award uid, a row. */
static void lookups(void **state)
{
    json_t *list;
    char id[64], url[256];
    bool revoked = true;
    struct obf_reply rep;
    struct net_http_response h;

    (void)state;
    /* badges: the list's tag (primary content) or a content's; deleted ones and bad ids skipped */
    list = json_loads("[{\"id\":\"AAAA\",\"tag\":[\"x\"]},"
                      "{\"id\":\"BAD/ID\",\"tag\":[\"ltibadges:abc:s\"]},"
                      "{\"id\":\"DDDD\",\"deleted\":true,\"tag\":[\"ltibadges:abc:s\"]},"
                      "{\"id\":\"CCCC\",\"content\":[{\"tag\":[\"ltibadges:abc:s\"]}]},"
                      "{\"id\":\"EEEE\",\"tag\":[\"ltibadges:abc:s\"]}]",
                      0, NULL);
    assert_true(backend_obf_find_marked(list, "ltibadges:abc:s", id, sizeof(id)));
    assert_string_equal(id, "CCCC");
    assert_false(backend_obf_find_marked(list, "ltibadges:abc:t", id, sizeof(id)));
    assert_false(backend_obf_find_marked(list, "", id, sizeof(id)));
    json_decref(list);
    /* events: the award uid in log_entry (a JSON string as v2 lists it, or an object) */
    list = json_loads("[{\"id\":\"E1\",\"log_entry\":\"{\\\"award_uid\\\":\\\"u-1\\\"}\"},"
                      "{\"id\":\"E2\",\"log_entry\":{\"award_uid\":\"u-2\"}},"
                      "{\"id\":\"E3\",\"log_entry\":null}]",
                      0, NULL);
    assert_true(backend_obf_find_event(list, "u-1", id, sizeof(id)));
    assert_string_equal(id, "E1");
    assert_true(backend_obf_find_event(list, "u-2", id, sizeof(id)));
    assert_string_equal(id, "E2");
    assert_false(backend_obf_find_event(list, "u-3", id, sizeof(id)));
    json_decref(list);
    /* recipients: compared without case, an unrevoked row first, only http(s) URLs kept */
    list = json_loads("[{\"email\":\"ada@example.edu\",\"revoked\":true,"
                      "\"assertion_json_url\":\"https://obf.example/old.json\"},"
                      "{\"email\":\"Ada@Example.EDU\",\"revoked\":false,"
                      "\"assertion_json_url\":\"https://obf.example/a.json\"},"
                      "{\"email\":\"bob@example.edu\",\"revoked\":false,"
                      "\"assertion_json_url\":\"javascript:alert(1)\"}]",
                      0, NULL);
    assert_true(backend_obf_find_recipient(list, "ada@example.edu", url, sizeof(url), &revoked));
    assert_string_equal(url, "https://obf.example/a.json");
    assert_false(revoked);
    assert_true(backend_obf_find_recipient(list, "bob@example.edu", url, sizeof(url), &revoked));
    assert_string_equal(url, "");
    assert_false(backend_obf_find_recipient(list, "cy@example.edu", url, sizeof(url), &revoked));
    json_decref(list);
    /* a create's id: resource_id, else Location's last segment */
    h = answer(201, JSON_TYPE, "{\"success\":true,\"resource_id\":\"NEWID1\"}");
    backend_obf_reply(&h, "badge", &rep);
    assert_true(backend_obf_created_id(&rep, "https://x/v2/badge/C/OTHER", id, sizeof(id)));
    assert_string_equal(id, "NEWID1");
    backend_obf_reply_release(&rep);
    net_http_response_release(&h);
    h = answer(201, JSON_TYPE, "{\"success\":true,\"resource_id\":null}");
    backend_obf_reply(&h, "badge", &rep);
    assert_true(backend_obf_created_id(&rep, "https://x/v2/badge/C/FROMLOC", id, sizeof(id)));
    assert_string_equal(id, "FROMLOC");
    assert_false(backend_obf_created_id(&rep, "", id, sizeof(id)));
    assert_false(backend_obf_created_id(&rep, "https://x/v2/badge/C/", id, sizeof(id)));
    backend_obf_reply_release(&rep);
    net_http_response_release(&h);
}

/* API v1: its refusals, line-delimited lists, the badge and issue bodies, revoked rows. */
static void v1_parts(void **state)
{
    struct obf_settings *s = xcalloc(1, sizeof(*s));
    struct err err = ERR_INIT;
    struct obf_reply r;
    struct net_http_response h;
    struct backend_badge bc = { .slug = "py1",
                                .name = "Python 1",
                                .description = "About",
                                .image_type = "image/svg+xml",
                                .image = png,
                                .image_len = sizeof(png),
                                .criteria_narrative = "Pass <all> & more",
                                .criteria_url = "https://lms.example.edu/c?a=1&b=\"2\"",
                                .marker = "ltibadges:abc:py1" };
    struct backend_award a = { .uid = "u-9",
                               .recipient_email = "ada@example.edu",
                               .issued_at = 1764000000,
                               .expires_at = 1800000000 };
    json_t *list = NULL, *o;
    char *text;
    static const long auth[] = { 495, 496, 403 };
    static const char *const said[] = { "invalid or expired", "missing", "another client" };

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        h = answer(auth[i], JSON_TYPE, "{\"error\":\"x\"}");
        backend_obf_reply_v1(&h, "badge 'B1'", &r);
        assert_int_equal(r.kind, OBF_AUTH);
        assert_non_null(strstr(r.message, said[i]));
        backend_obf_reply_release(&r);
        net_http_response_release(&h);
    }
    /* lines end CRLF or LF; an empty last line is no item; a line not an object refuses all */
    assert_int_equal(backend_obf_ldjson("{\"id\":\"A\"}\r\n{\"id\":\"B\"}\n", 23, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "id")), "B");
    json_decref(list);
    assert_int_equal(backend_obf_ldjson("", 0, &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_int_equal(backend_obf_ldjson("{\"id\":1}\r\n[1]\r\n", 15, &list, &err), -1);
    assert_null(list);
    /* v1 takes PNG only (a fresh err: the first error wins) */
    memset(&err, 0, sizeof(err));
    assert_int_equal(backend_obf_v1_badge_body(&bc, s, &text, &err), -1);
    assert_non_null(strstr(err.msg, "PNG images only"));
    /* but our default SVG goes as its PNG, on both versions */
    {
        static const unsigned char def_png[] = { 0x89, 'P', 'N', 'G', 1, 2 };
        struct backend_badge d = bc;

        d.default_png = def_png;
        d.default_png_len = sizeof(def_png);
        assert_int_equal(backend_obf_v1_badge_body(&d, s, &text, &err), 0);
        o = json_loads(text, 0, NULL);
        free(text);
        assert_string_equal(json_string_value(json_object_get(o, "image")), "iVBORwEC");
        json_decref(o);
        snprintf(s->language, sizeof(s->language), "en");
        assert_int_equal(backend_obf_badge_body(&d, s, &text, &err), 0);
        o = json_loads(text, 0, NULL);
        free(text);
        assert_string_equal(json_string_value(json_object_get(o, "image")),
                            "data:image/png;base64,iVBORwEC");
        json_decref(o);
    }
    bc.image_type = "image/png";
    snprintf(s->email_subject, sizeof(s->email_subject), "Your badge");
    snprintf(s->api_consumer_id, sizeof(s->api_consumer_id), "ltibadges");
    assert_int_equal(backend_obf_v1_badge_body(&bc, s, &text, &err), 0);
    o = json_loads(text, 0, NULL);
    free(text);
    assert_string_equal(json_string_value(json_object_get(o, "image")), "iVBORw0KGgo=");
    assert_string_equal(json_string_value(json_object_get(o, "criteria_html")),
                        "<p>Pass &lt;all&gt; &amp; more</p><p><a "
                        "href=\"https://lms.example.edu/c?a=1&amp;b=&quot;2&quot;\">https://"
                        "lms.example.edu/c?a=1&amp;b=&quot;2&quot;</a></p>");
    assert_true(json_is_false(json_object_get(o, "draft")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "metadata"), OBF_V1_MARKER_META)),
        "ltibadges:abc:py1");
    assert_string_equal(json_string_value(json_object_get(o, "email_subject")), "Your badge");
    assert_null(json_object_get(o, "email_body"));
    json_decref(o);
    assert_int_equal(backend_obf_v1_issue_body(&a, s, &text, &err), 0);
    o = json_loads(text, 0, NULL);
    free(text);
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "recipient"), 0)),
                        "ada@example.edu");
    assert_int_equal(json_integer_value(json_object_get(o, "expires")), 1800000000);
    assert_int_equal(json_integer_value(json_object_get(o, "issued_on")), 1764000000);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "log_entry"), "award_uid")), "u-9");
    json_decref(o);
    o = json_loads("{\"revoked\":{\"Ada@Example.EDU\":1764000000}}", 0, NULL);
    assert_true(backend_obf_v1_revoked(o, "ada@example.edu"));
    assert_false(backend_obf_v1_revoked(o, "bob@example.edu"));
    json_decref(o);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replies), cmocka_unit_test(token_states), cmocka_unit_test(token_form),
        cmocka_unit_test(bodies),  cmocka_unit_test(lookups),      cmocka_unit_test(v1_parts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
