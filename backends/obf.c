/*
 * backends/obf.c - Open Badge Factory (and CanCred Factory, the same
 * software), API v2: OAuth2 client credentials, JSON bodies.
 *
 * The first half holds what does not touch the network, so that it can be
 * checked on its own (tests/unit/backends/obf.c): reading an answer, the
 * access token's states, the request bodies, finding a badge or an event
 * in a list. The second half makes the calls, as OBF's Moodle plugin
 * (classes/client.php) makes them and tests/integration/obffake.py
 * answers them:
 *   token   POST /v2/client/oauth2/token (form; at most one a client in
 *           ten seconds, reused until shortly before expires_in)
 *   check   GET /v2/client/{client}/ping, GET /v2/client/{client}
 *   badges  GET /v2/badge/{client}[/{id}] ({result, total} pages),
 *           POST /v2/badge/{client}, PUT /v2/badge/{client}/{id}
 *   events  POST /v2/event/{client}/{badge}/issue (the event id is the
 *           assertion id), GET /v2/event/{client}?badge_id&email&
 *           api_consumer_id (the look-up before a re-send: the award's uid
 *           in log_entry), GET /v2/event/{client}/recipient?event_id&email
 *           (the assertion URL), PUT /v2/event/{client}/{event}/revoke
 * A POST goes on a fresh connection (see send_http), so that a dropped one
 * is never sent again by libcurl; the worker looks it up instead.
 */
#include "base/base.h"
#include "backends/obf.h"
#include "net/net.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <strings.h>
#include <time.h>

/* ---- small helpers ------------------------------------------------------------------ */

/* Appends `s` (at most `max` bytes of it) with control characters as spaces. */
static void add_clean(struct buf *b, const char *s, size_t max)
{
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        buf_addch(b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
}

static bool media_json(const char *ct)
{
    const char *semi;
    struct str s;

    if (!ct)
        return false;
    semi = strchr(ct, ';');
    s = str_trim((struct str){ ct, semi ? (size_t)(semi - ct) : strlen(ct) });
    return str_case_eq_cstr(s, "application/json") ||
           (s.len > 5 && strncasecmp(s.ptr + s.len - 5, "+json", 5) == 0);
}

/* OBF's words for a refusal: `error` (a text, or an object's `message`), else `message`. */
static const char *obf_text(json_t *doc)
{
    json_t *e = json_object_get(doc, "error");

    if (json_is_string(e) && json_string_length(e))
        return json_string_value(e);
    if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
        return json_string_value(json_object_get(e, "message"));
    e = json_object_get(doc, "message");
    if (json_is_string(e) && json_string_length(e))
        return json_string_value(e);
    return NULL;
}

static void reply_set(struct obf_reply *out, enum obf_kind kind, const char *entity,
                      const char *what, long status, const char *text)
{
    struct buf b = BUF_INIT(LIMIT_AWARD_ERROR_LEN + 1);
    size_t n;

    out->kind = kind;
    buf_addf(&b, "%s: %s", entity, what);
    if (status)
        buf_addf(&b, " (HTTP %ld)", status);
    if (text) {
        buf_addstr(&b, ": ");
        add_clean(&b, text, 512);
    }
    n = b.len < sizeof(out->message) - 1 ? b.len : sizeof(out->message) - 1;
    memcpy(out->message, b.ptr ? b.ptr : "", n);
    out->message[n] = '\0';
    buf_release(&b);
}

/* ---- answers -------------------------------------------------------------------------- */

void backend_obf_reply(const struct net_http_response *resp, const char *entity,
                       struct obf_reply *out)
{
    struct net_verdict v;
    const char *text;
    long st = resp->status;

    memset(out, 0, sizeof(*out));
    net_http_classify(resp, &v);
    out->retry_after = v.retry_after;
    if (resp->outcome != NET_HTTP_ANSWERED) {
        reply_set(out,
                  v.status == NET_RETRY  ? OBF_RETRY
                  : v.status == NET_AUTH ? OBF_AUTH
                                         : OBF_PERMANENT,
                  entity, v.message, 0, NULL);
        return;
    }
    if (resp->body.len > 0 && media_json(resp->content_type))
        out->doc = json_loadb(resp->body.ptr, resp->body.len, JSON_REJECT_DUPLICATES, NULL);
    text = out->doc ? obf_text(out->doc) : NULL;
    if (v.status == NET_OK) {
        /* a 2xx OBF calls failed ({"success": false}) is no success */
        if (json_is_false(json_object_get(out->doc, "success")))
            reply_set(out, OBF_RETRY, entity, "Open Badge Factory answered without success", st,
                      text);
        return;
    }
    if (st == 401 || st == 403) {
        reply_set(out, OBF_UNAUTHORIZED, entity, "Open Badge Factory refused the access token", st,
                  text);
        return;
    }
    if (st == 404) {
        reply_set(out, OBF_NOT_FOUND, entity, "not found at Open Badge Factory", st, text);
        return;
    }
    switch (v.status) {
    case NET_RETRY:
        reply_set(out, OBF_RETRY, entity,
                  st == 429 ? "Open Badge Factory asks to wait" : "Open Badge Factory failed", st,
                  text);
        return;
    case NET_AUTH:
        reply_set(out, OBF_AUTH, entity, "Open Badge Factory refused the credentials", st, text);
        return;
    default:
        reply_set(out, OBF_PERMANENT, entity,
                  st == 411   ? "Open Badge Factory wants a Content-Length"
                  : st == 413 ? "Open Badge Factory refused it as too large"
                              : "Open Badge Factory refused it",
                  st, text);
        return;
    }
}

void backend_obf_reply_release(struct obf_reply *r)
{
    json_decref(r->doc);
    r->doc = NULL;
}

/* ---- the OAuth2 token ---------------------------------------------------------------- */

void backend_obf_token_init(struct obf_token *t)
{
    memset(t, 0, sizeof(*t));
}

enum obf_token_step backend_obf_token_step(const struct obf_token *t, int64_t now)
{
    bool valid = t->access[0] && now < t->expires_at;

    if (valid && now < t->renew_at)
        return OBF_TOKEN_USE;
    if (now < t->wait_until)
        return valid ? OBF_TOKEN_USE : OBF_TOKEN_WAIT;
    if (t->last_request && now < t->last_request + OBF_TOKEN_INTERVAL)
        return valid ? OBF_TOKEN_USE : OBF_TOKEN_WAIT;
    return OBF_TOKEN_REQUEST;
}

void backend_obf_token_wait(const struct obf_token *t, int64_t now, struct backend_result *r)
{
    int64_t until = t->wait_until;

    if (now < t->wait_until && t->wait_status == BACKEND_AUTH) {
        backend_result_set(r, BACKEND_AUTH, "%s", t->wait_message);
        r->retry_after = t->wait_until - now;
        return;
    }
    if (t->last_request + OBF_TOKEN_INTERVAL > until)
        until = t->last_request + OBF_TOKEN_INTERVAL;
    if (t->wait_message[0])
        backend_result_set(r, BACKEND_RETRY, "%s", t->wait_message);
    else
        backend_result_set(r, BACKEND_RETRY,
                           "Open Badge Factory gives one access token every %d seconds: waiting",
                           OBF_TOKEN_INTERVAL);
    r->retry_after = until > now ? until - now : 1;
}

void backend_obf_token_form(const char *client_id, const char *client_secret, struct buf *form)
{
    net_http_form_add(form, "grant_type", "client_credentials");
    net_http_form_add(form, "client_id", client_id);
    net_http_form_add(form, "client_secret", client_secret);
}

static bool token_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > OBF_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= ' ' || c >= 0x7f)
            return false;
    }
    return true;
}

void backend_obf_token_answer(struct obf_token *t, const struct net_http_response *h, int64_t now,
                              struct backend_result *r)
{
    struct obf_reply rep;
    json_t *at, *ei;

    t->last_request = now;
    t->wait_message[0] = '\0';
    backend_obf_reply(h, "the access token", &rep);
    at = json_object_get(rep.doc, "access_token");
    ei = json_object_get(rep.doc, "expires_in");
    if (rep.kind == OBF_OK) {
        int64_t life;

        if (!json_is_string(at) || !token_ok(json_string_value(at)) || !json_is_integer(ei) ||
            json_integer_value(ei) <= 0) {
            backend_result_set(r, BACKEND_RETRY,
                               "the access token: Open Badge Factory's answer has no token");
            goto out;
        }
        life = json_integer_value(ei);
        snprintf(t->access, sizeof(t->access), "%s", json_string_value(at));
        t->expires_at = now + life;
        t->renew_at = t->expires_at - (life / 10 < 60 ? life / 10 : 60);
        t->wait_until = 0;
        t->generation++;
        goto out;
    }
    if (h->outcome == NET_HTTP_ANSWERED &&
        (h->status == 400 || h->status == 401 || h->status == 403)) {
        backend_result_set(r, BACKEND_AUTH,
                           "Open Badge Factory refused the client id and secret (HTTP %ld%s%s): "
                           "check client_id and client_secret (Admin tools > API)",
                           h->status, rep.doc && obf_text(rep.doc) ? ", " : "",
                           rep.doc && obf_text(rep.doc) ? obf_text(rep.doc) : "");
        for (char *p = r->message; *p; p++)
            *p = (*p < ' ' || *p == 0x7f) ? ' ' : *p;
        t->access[0] = '\0';
        t->wait_until = now + OBF_REFUSED_WAIT;
        t->wait_status = BACKEND_AUTH;
        snprintf(t->wait_message, sizeof(t->wait_message), "%s", r->message);
        r->retry_after = OBF_REFUSED_WAIT;
        goto out;
    }
    backend_result_set(r, BACKEND_RETRY, "%s", rep.message);
    r->retry_after = rep.retry_after;
    if (rep.retry_after > 0) {
        t->wait_until = now + rep.retry_after;
        t->wait_status = BACKEND_RETRY;
        snprintf(t->wait_message, sizeof(t->wait_message), "%s", rep.message);
    }
    if (r->retry_after < OBF_TOKEN_INTERVAL && h->outcome == NET_HTTP_ANSWERED && h->status == 429)
        r->retry_after = OBF_TOKEN_INTERVAL;
out:
    backend_obf_reply_release(&rep);
}

void backend_obf_token_rejected(struct obf_token *t, uint64_t generation)
{
    if (t->generation == generation)
        t->access[0] = '\0';
}

/* ---- request bodies -------------------------------------------------------------------- */

static void add_tag(json_t *tags, const char *tag)
{
    size_t i;
    json_t *v;

    if (!tag || !*tag)
        return;
    json_array_foreach(tags, i, v) {
        if (strcmp(json_string_value(v), tag) == 0)
            return;
    }
    json_array_append_new(tags, json_string(tag));
}

static int dump(json_t *o, char **out, struct err *err)
{
    *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return *out ? 0 : err_set(err, ERR_INTERNAL, "out of memory");
}

/* email_message {subject, body, link_text, footer} when any part is set. */
static void email_message(json_t *o, const struct obf_settings *s)
{
    if (!s->email_subject[0] && !s->email_body[0] && !s->email_link_text[0] && !s->email_footer[0])
        return;
    json_object_set_new(o, "email_message",
                        json_pack("{s:s, s:s, s:s, s:s}", "subject", s->email_subject, "body",
                                  s->email_body, "link_text", s->email_link_text, "footer",
                                  s->email_footer));
}

/*
 * The image sent: the badge's own, or for our default SVG (a badge with no
 * image of its own) its PNG, on both API versions: v1 takes PNG only
 * ([v1doc] "Base64 encoded PNG image data"), and issue 20 asks a PNG
 * default for OBF, so a badge looks the same whichever version made it.
 */
struct image {
    const char *type;
    const unsigned char *data;
    size_t len;
};

static struct image image_of(const struct backend_badge *bc)
{
    if (bc->default_png && bc->default_png_len)
        return (struct image){ "image/png", bc->default_png, bc->default_png_len };
    return (struct image){ bc->image_type, bc->image, bc->image_len };
}

int backend_obf_badge_body(const struct backend_badge *bc, const struct obf_settings *s, char **out,
                           struct err *err)
{
    struct image im = image_of(bc);
    struct buf uri = BUF_INIT(64 + (LIMIT_BADGE_IMAGE_BYTES + 2) / 3 * 4);
    struct buf crit = BUF_INIT(LIMIT_LTI_URL_LEN + 65536);
    json_t *o, *content, *tags, *stored, *v;
    size_t i;

    *out = NULL;
    if (!im.data || !im.len || !im.type ||
        (strcmp(im.type, "image/png") != 0 && strcmp(im.type, "image/svg+xml") != 0))
        return err_set(err, ERR_INVALID,
                       "badge '%s' needs a PNG or SVG image for Open Badge Factory", bc->slug);
    buf_addf(&uri, "data:%s;base64,", im.type);
    buf_addbase64(&uri, im.data, im.len);
    if (bc->criteria_narrative && *bc->criteria_narrative)
        buf_addstr(&crit, bc->criteria_narrative);
    if (bc->criteria_url && *bc->criteria_url)
        buf_addf(&crit, "%s[%s](%s)", crit.len ? "\n\n" : "", bc->criteria_url, bc->criteria_url);
    if (!crit.len && bc->description)
        buf_addstr(&crit, bc->description);
    if (buf_check(&uri, "the badge image", err) < 0 || buf_check(&crit, "the criteria", err) < 0) {
        buf_release(&uri);
        buf_release(&crit);
        return -1;
    }
    tags = json_array();
    stored = bc->tags ? json_loads(bc->tags, 0, NULL) : NULL;
    json_array_foreach(stored, i, v) {
        if (json_is_string(v))
            add_tag(tags, json_string_value(v));
    }
    json_decref(stored);
    add_tag(tags, bc->issuing_component);
    add_tag(tags, bc->marker);
    content =
        json_pack("{s:s, s:s, s:s, s:s%, s:o}", "language", s->language, "name",
                  bc->name ? bc->name : "", "description", bc->description ? bc->description : "",
                  "criteria", crit.ptr ? crit.ptr : "", crit.len, "tag", tags);
    o = json_pack("{s:b, s:s%, s:s, s:[o]}", "draft", 0, "image", uri.ptr, uri.len,
                  "primary_language", s->language, "content", content);
    buf_release(&uri);
    buf_release(&crit);
    if (!o)
        return err_set(err, ERR_INTERNAL, "out of memory");
    email_message(o, s);
    return dump(o, out, err);
}

int backend_obf_issue_body(const struct backend_award *a, const struct obf_settings *s, char **out,
                           struct err *err)
{
    json_t *o, *log;

    *out = NULL;
    log = json_pack("{s:s}", "award_uid", a->uid);
    if (a->course)
        json_object_set_new(log, "course", json_string(a->course));
    if (a->consumer)
        json_object_set_new(log, "consumer", json_string(a->consumer));
    o = json_pack("{s:[{s:s, s:s}], s:I, s:s, s:b, s:o}", "recipient", "email", a->recipient_email,
                  "name", a->recipient_name ? a->recipient_name : "", "issued_on",
                  (json_int_t)a->issued_at, "api_consumer_id", s->api_consumer_id, "send_email",
                  s->notify, "log_entry", log);
    if (!o)
        return err_set(err, ERR_INTERNAL, "out of memory");
    if (a->expires_at)
        json_object_set_new(o, "expires_on", json_integer(a->expires_at));
    email_message(o, s);
    return dump(o, out, err);
}

bool backend_obf_log_uid(json_t *event, char *uid, size_t uidlen)
{
    json_t *log = json_object_get(event, "log_entry"), *parsed = NULL, *v;
    bool ok = false;

    if (json_is_string(log))
        log = parsed = json_loads(json_string_value(log), JSON_REJECT_DUPLICATES, NULL);
    v = json_object_get(log, "award_uid");
    if (json_is_string(v) && json_string_length(v) < uidlen) {
        memcpy(uid, json_string_value(v), json_string_length(v) + 1);
        ok = true;
    }
    json_decref(parsed);
    return ok;
}

/* ---- list look-ups ------------------------------------------------------------------------ */

static bool tagged(json_t *tags, const char *marker)
{
    size_t i;
    json_t *v;

    json_array_foreach(tags, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), marker) == 0)
            return true;
    }
    return false;
}

/* Copies a JSON string that is an id OBF could have given (backend_entity_id_valid). */
static bool copy_id(json_t *v, char *id, size_t idlen)
{
    const char *s = json_string_value(v);

    if (!s || !backend_entity_id_valid(s) || strlen(s) >= idlen)
        return false;
    memcpy(id, s, strlen(s) + 1);
    return true;
}

bool backend_obf_find_marked(json_t *list, const char *marker, char *id, size_t idlen)
{
    size_t i, j;
    json_t *b, *c;

    if (!marker || !*marker)
        return false;
    json_array_foreach(list, i, b) {
        bool hit = tagged(json_object_get(b, "tag"), marker);

        /* a list item carries its primary content's tags; a whole badge, every content's */
        json_array_foreach(json_object_get(b, "content"), j, c) {
            hit = hit || tagged(json_object_get(c, "tag"), marker);
        }
        if (hit && !json_is_true(json_object_get(b, "deleted")) &&
            copy_id(json_object_get(b, "id"), id, idlen))
            return true;
    }
    return false;
}

bool backend_obf_find_event(json_t *list, const char *uid, char *id, size_t idlen)
{
    size_t i;
    json_t *e;

    json_array_foreach(list, i, e) {
        char got[128];

        if (backend_obf_log_uid(e, got, sizeof(got)) && strcmp(got, uid) == 0 &&
            copy_id(json_object_get(e, "id"), id, idlen))
            return true;
    }
    return false;
}

bool backend_obf_find_recipient(json_t *list, const char *email, char *url, size_t urllen,
                                bool *revoked)
{
    json_t *best = NULL, *row;
    size_t i;
    const char *u;

    json_array_foreach(list, i, row) {
        const char *who = json_string_value(json_object_get(row, "email"));

        if (!who || strcasecmp(who, email) != 0)
            continue;
        /* an unrevoked one first */
        if (!best || (json_is_true(json_object_get(best, "revoked")) &&
                      !json_is_true(json_object_get(row, "revoked"))))
            best = row;
    }
    if (!best)
        return false;
    *revoked = json_is_true(json_object_get(best, "revoked"));
    u = json_string_value(json_object_get(best, "assertion_json_url"));
    url[0] = '\0';
    if (u && strlen(u) < urllen &&
        (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0))
        memcpy(url, u, strlen(u) + 1);
    return true;
}

bool backend_obf_created_id(const struct obf_reply *rep, const char *location, char *id,
                            size_t idlen)
{
    const char *slash;

    if (copy_id(json_object_get(rep->doc, "resource_id"), id, idlen))
        return true;
    /* or the last segment of Location (.../v2/badge/CLIENT/ID) */
    slash = location ? strrchr(location, '/') : NULL;
    if (!slash || !backend_entity_id_valid(slash + 1) || strlen(slash + 1) >= idlen)
        return false;
    memcpy(id, slash + 1, strlen(slash + 1) + 1);
    return true;
}

/* ---- API v1 (client certificates): answers, lists, bodies, the certificate ------------------ */

void backend_obf_reply_v1(const struct net_http_response *resp, const char *entity,
                          struct obf_reply *out)
{
    const char *what = NULL;

    backend_obf_reply(resp, entity, out);
    if (resp->outcome != NET_HTTP_ANSWERED)
        return;
    if (resp->status == 496)
        what = "Open Badge Factory: the client certificate is missing";
    else if (resp->status == 495)
        what = "Open Badge Factory: the client certificate is invalid or expired (make a new "
               "one with `ltibadges backend obf-enrol`)";
    else if (resp->status == 403 || resp->status == 401)
        what = "Open Badge Factory: the certificate is for another client (check client_id)";
    if (what) {
        out->kind = OBF_AUTH;
        snprintf(out->message, sizeof(out->message), "%s: %s (HTTP %ld)", entity, what,
                 resp->status);
    }
}

int backend_obf_ldjson(const char *body, size_t len, json_t **out, struct err *err)
{
    json_t *list = json_array();
    size_t i = 0;

    *out = NULL;
    if (len > LIMIT_OBF_ANSWER) {
        json_decref(list);
        return err_set(err, ERR_TOOBIG, "Open Badge Factory's list is over %d bytes",
                       LIMIT_OBF_ANSWER);
    }
    while (i < len) {
        const char *nl = memchr(body + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - body) : len, n = end - i;
        json_t *item;

        if (n && body[i + n - 1] == '\r')
            n--;
        if (n > LIMIT_OBF_LINE) {
            json_decref(list);
            return err_set(err, ERR_TOOBIG, "a line of Open Badge Factory's list is over %d bytes",
                           LIMIT_OBF_LINE);
        }
        if (n) {
            item = json_loadb(body + i, n, JSON_REJECT_DUPLICATES, NULL);
            if (!json_is_object(item)) {
                json_decref(item);
                json_decref(list);
                return err_set(err, ERR_INVALID,
                               "Open Badge Factory's list has a line that is not a JSON object");
            }
            json_array_append_new(list, item);
        }
        i = end + 1;
    }
    *out = list;
    return 0;
}

static void add_html(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            buf_addstr(b, "&amp;");
            break;
        case '<':
            buf_addstr(b, "&lt;");
            break;
        case '>':
            buf_addstr(b, "&gt;");
            break;
        case '"':
            buf_addstr(b, "&quot;");
            break;
        case '\'':
            buf_addstr(b, "&#39;");
            break;
        case '\n':
            buf_addstr(b, "<br>");
            break;
        default:
            buf_addch(b, *s);
        }
    }
}

/* The e-mail parts set, as v1 takes them (flat: email_subject, ...). */
static void email_parts_v1(json_t *o, const struct obf_settings *s)
{
    if (s->email_subject[0])
        json_object_set_new(o, "email_subject", json_string(s->email_subject));
    if (s->email_body[0])
        json_object_set_new(o, "email_body", json_string(s->email_body));
    if (s->email_link_text[0])
        json_object_set_new(o, "email_link_text", json_string(s->email_link_text));
    if (s->email_footer[0])
        json_object_set_new(o, "email_footer", json_string(s->email_footer));
}

int backend_obf_v1_badge_body(const struct backend_badge *bc, const struct obf_settings *s,
                              char **out, struct err *err)
{
    struct buf img = BUF_INIT((LIMIT_BADGE_IMAGE_BYTES + 2) / 3 * 4 + 8);
    struct buf crit = BUF_INIT(LIMIT_LTI_URL_LEN * 6 + 6 * 65536);
    struct image im = image_of(bc);
    json_t *o, *tags, *stored, *v;
    size_t i;

    *out = NULL;
    if (!im.data || !im.len || !im.type || strcmp(im.type, "image/png") != 0)
        return err_set(err, ERR_INVALID,
                       "Open Badge Factory's API v1 takes PNG images only: give badge '%s' a PNG "
                       "image (or use api = v2)",
                       bc->slug);
    buf_addbase64(&img, im.data, im.len);
    if (bc->criteria_narrative && *bc->criteria_narrative) {
        buf_addstr(&crit, "<p>");
        add_html(&crit, bc->criteria_narrative);
        buf_addstr(&crit, "</p>");
    }
    if (bc->criteria_url && *bc->criteria_url) {
        buf_addstr(&crit, "<p><a href=\"");
        add_html(&crit, bc->criteria_url);
        buf_addstr(&crit, "\">");
        add_html(&crit, bc->criteria_url);
        buf_addstr(&crit, "</a></p>");
    }
    if (!crit.len && bc->description) {
        buf_addstr(&crit, "<p>");
        add_html(&crit, bc->description);
        buf_addstr(&crit, "</p>");
    }
    if (buf_check(&img, "the badge image", err) < 0 || buf_check(&crit, "the criteria", err) < 0) {
        buf_release(&img);
        buf_release(&crit);
        return -1;
    }
    tags = json_array();
    stored = bc->tags ? json_loads(bc->tags, 0, NULL) : NULL;
    json_array_foreach(stored, i, v) {
        if (json_is_string(v))
            add_tag(tags, json_string_value(v));
    }
    json_decref(stored);
    add_tag(tags, bc->issuing_component);
    add_tag(tags, bc->marker);
    o = json_pack("{s:s, s:s, s:s%, s:s%, s:o, s:b}", "name", bc->name ? bc->name : "",
                  "description", bc->description ? bc->description : "", "image", img.ptr, img.len,
                  "criteria_html", crit.ptr, crit.len, "tags", tags, "draft", 0);
    buf_release(&img);
    buf_release(&crit);
    if (!o)
        return err_set(err, ERR_INTERNAL, "out of memory");
    if (bc->marker && *bc->marker)
        json_object_set_new(o, "metadata", json_pack("{s:s}", OBF_V1_MARKER_META, bc->marker));
    email_parts_v1(o, s);
    return dump(o, out, err);
}

int backend_obf_v1_issue_body(const struct backend_award *a, const struct obf_settings *s,
                              char **out, struct err *err)
{
    json_t *o, *log;

    *out = NULL;
    log = json_pack("{s:s}", "award_uid", a->uid);
    if (a->course)
        json_object_set_new(log, "course", json_string(a->course));
    if (a->consumer)
        json_object_set_new(log, "consumer", json_string(a->consumer));
    o = json_pack("{s:[s], s:I, s:s, s:o}", "recipient", a->recipient_email, "issued_on",
                  (json_int_t)a->issued_at, "api_consumer_id", s->api_consumer_id, "log_entry",
                  log);
    if (!o)
        return err_set(err, ERR_INTERNAL, "out of memory");
    if (a->expires_at)
        json_object_set_new(o, "expires", json_integer(a->expires_at));
    email_parts_v1(o, s);
    return dump(o, out, err);
}

bool backend_obf_v1_revoked(json_t *event, const char *email)
{
    const char *k;
    json_t *v;

    json_object_foreach(json_object_get(event, "revoked"), k, v) {
        if (strcasecmp(k, email) == 0)
            return true;
    }
    return false;
}

static int64_t asn1_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

int backend_obf_certificate(const char *cert, const char *key, int64_t *not_after, struct err *err)
{
    BIO *bio = BIO_new_file(cert, "r");
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pk = NULL;
    int ret = 0;

    *not_after = 0;
    BIO_free(bio);
    if (!x) {
        ERR_clear_error();
        return err_set(err, ERR_INVALID, "'%s' is not a PEM certificate", cert);
    }
    *not_after = asn1_time(X509_get0_notAfter(x));
    if (key) {
        bio = BIO_new_file(key, "r");
        pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (!pk)
            ret = err_set(err, ERR_INVALID, "'%s' is not a PEM private key (without a passphrase)",
                          key);
        else if (X509_check_private_key(x, pk) != 1)
            ret = err_set(err, ERR_INVALID, "the key '%s' does not belong to the certificate '%s'",
                          key, cert);
    }
    ERR_clear_error();
    EVP_PKEY_free(pk);
    X509_free(x);
    return ret;
}

/* Base64 (line breaks and spaces skipped) into `out` (at least len bytes); -1 if not base64. */
static int b64_decode(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    char *clean = xmalloc(len + 1);
    size_t n = 0, pad = 0;
    int got;

    for (size_t i = 0; i < len; i++) {
        if (in[i] != ' ' && in[i] != '\n' && in[i] != '\r' && in[i] != '\t')
            clean[n++] = in[i];
    }
    if (n == 0 || n % 4 != 0 || n > INT_MAX) {
        free(clean);
        return -1;
    }
    pad = clean[n - 1] == '=' ? (clean[n - 2] == '=' ? 2 : 1) : 0;
    got = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n);
    free(clean);
    if (got < 0 || (size_t)got < pad)
        return -1;
    *outlen = (size_t)got - pad;
    return 0;
}

int backend_obf_api_key(const char *rsa_pub_pem, size_t pemlen, const char *api_key, size_t keylen,
                        char *client_id, size_t idlen, int64_t *expires, struct err *err)
{
    BIO *bio = BIO_new_mem_buf(rsa_pub_pem, (int)pemlen);
    EVP_PKEY *pub = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char *blob = NULL, plain[1024];
    size_t plainlen = sizeof(plain), bloblen = 0;
    json_t *doc = NULL, *id, *ex;
    int ret = -1;

    BIO_free(bio);
    *expires = 0;
    client_id[0] = '\0';
    if (!pub) {
        err_set(err, ERR_UNAVAILABLE,
                "Open Badge Factory's public key (OBF.rsa.pub) is not a PEM "
                "public key");
        goto out;
    }
    blob = xmalloc(keylen + 4);
    if (b64_decode(api_key, keylen, blob, &bloblen) < 0 || bloblen == 0) {
        err_set(err, ERR_INVALID,
                "the API key is not base64: copy it whole from Open Badge "
                "Factory (Admin tools > API)");
        goto out;
    }
    /* "RSA public-key decryption": recovering what OBF encrypted with its private key */
    ctx = EVP_PKEY_CTX_new(pub, NULL);
    if (!ctx || EVP_PKEY_verify_recover_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
        EVP_PKEY_verify_recover(ctx, plain, &plainlen, blob, bloblen) <= 0) {
        err_set(err, ERR_INVALID,
                "the API key does not decode with Open Badge Factory's public "
                "key: copy it whole from Open Badge Factory (Admin tools > API)");
        goto out;
    }
    doc = json_loadb((const char *)plain, plainlen, JSON_REJECT_DUPLICATES, NULL);
    id = json_object_get(doc, "id");
    if (!json_is_string(id) || !backend_entity_id_valid(json_string_value(id)) ||
        json_string_length(id) >= idlen) {
        err_set(err, ERR_INVALID, "the API key decodes to no client id");
        goto out;
    }
    memcpy(client_id, json_string_value(id), json_string_length(id) + 1);
    ex = json_object_get(doc, "expires");
    if (json_is_integer(ex))
        *expires = json_integer_value(ex);
    ret = 0;
out:
    ERR_clear_error();
    json_decref(doc);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pub);
    free(blob);
    explicit_bzero(plain, sizeof(plain));
    return ret;
}

/* A new RSA key (PEM into `key_pem`) and a CSR for commonName `cn` (PEM into `csr_pem`). */
static int make_csr(const char *cn, struct buf *key_pem, struct buf *csr_pem, struct err *err)
{
    EVP_PKEY *pk = EVP_RSA_gen(2048);
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    BIO *kb = BIO_new(BIO_s_mem()), *rb = BIO_new(BIO_s_mem());
    BUF_MEM *m;
    int ret = -1;

    if (!pk || !req || !name || !kb || !rb ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
        !X509_REQ_set_pubkey(req, pk) || X509_REQ_sign(req, pk, EVP_sha256()) <= 0 ||
        !PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509_REQ(rb, req)) {
        err_set(err, ERR_INTERNAL, "could not make a key and a certificate request");
        goto out;
    }
    BIO_get_mem_ptr(kb, &m);
    buf_add(key_pem, m->data, m->length);
    explicit_bzero(m->data, m->length);
    BIO_get_mem_ptr(rb, &m);
    buf_add(csr_pem, m->data, m->length);
    if (buf_check(key_pem, "the key", err) < 0 || buf_check(csr_pem, "the request", err) < 0)
        goto out;
    ret = 0;
out:
    ERR_clear_error();
    BIO_free(kb);
    BIO_free(rb);
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(pk);
    return ret;
}

/* The notAfter of the PEM certificate `pem`, checked to be the certificate of `key_pem`. */
static int issued_cert(const struct buf *pem, const struct buf *key_pem, int64_t *not_after,
                       struct err *err)
{
    BIO *cb = BIO_new_mem_buf(pem->ptr, (int)pem->len);
    BIO *kb = BIO_new_mem_buf(key_pem->ptr, (int)key_pem->len);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *pk = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    int ret = 0;

    if (!x)
        ret = err_set(err, ERR_UNAVAILABLE,
                      "Open Badge Factory answered the request without a certificate");
    else if (!pk || X509_check_private_key(x, pk) != 1)
        ret = err_set(err, ERR_UNAVAILABLE,
                      "Open Badge Factory's certificate is not for the key just made");
    else
        *not_after = asn1_time(X509_get0_notAfter(x));
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(pk);
    BIO_free(cb);
    BIO_free(kb);
    return ret;
}

int backend_obf_enrol(const struct obf_settings *s, const char *api_key, size_t keylen,
                      struct obf_enrolment *out, struct err *err)
{
    struct net_http *h = net_http_new();
    struct net_http_policy p = {
        .allowed_hosts = s->host,
        .allow_loopback = s->allow_loopback,
        .connect_timeout_ms = (long)s->connect_timeout * 1000,
        .timeout_ms = (long)s->timeout * 1000,
        .ca_file = s->ca_file[0] ? s->ca_file : NULL,
        .allowed_what = "the backend's base_url host",
    };
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN), csr = BUF_INIT(16384);
    struct net_http_request req = { .method = NET_HTTP_GET, .max_response = 64 * 1024 };
    struct net_http_response resp = { 0 };
    struct obf_reply rep = { 0 };
    struct str key = str_trim((struct str){ api_key, keylen });
    int64_t key_expires = 0;
    json_t *doc = NULL;
    char *body = NULL;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    buf_init(&out->cert_pem, 64 * 1024);
    buf_init(&out->key_pem, 16384);
    buf_init(&resp.body, 0);
    if (!h) {
        err_set(err, ERR_INTERNAL, "could not set up the HTTP client");
        goto out;
    }
    buf_addf(&url, "%s/v1/client/OBF.rsa.pub", s->base_url);
    req.url = url.ptr;
    net_http_send(h, &p, &req, &resp);
    backend_obf_reply(&resp, "Open Badge Factory's public key", &rep);
    if (rep.kind != OBF_OK) {
        err_set(err, ERR_UNAVAILABLE, "%s", rep.message);
        goto out;
    }
    if (backend_obf_api_key(resp.body.ptr, resp.body.len, key.ptr, key.len, out->client_id,
                            sizeof(out->client_id), &key_expires, err) < 0)
        goto out;
    if (strcmp(out->client_id, s->client_id) != 0) {
        err_set(err, ERR_INVALID,
                "the API key is for client '%s', but the section's client_id is '%s'",
                out->client_id, s->client_id);
        goto out;
    }
    if (key_expires && key_expires < util_now()) {
        err_set(err, ERR_INVALID,
                "the API key expired (they are valid for minutes): make a new one in Open Badge "
                "Factory (Admin tools > API) and run obf-enrol at once");
        goto out;
    }
    if (make_csr(out->client_id, &out->key_pem, &csr, err) < 0)
        goto out;
    doc = json_pack("{s:s%, s:s%}", "signature", key.ptr, key.len, "request", csr.ptr, csr.len);
    body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (!body) {
        err_set(err, ERR_INTERNAL, "out of memory");
        goto out;
    }
    backend_obf_reply_release(&rep);
    net_http_response_release(&resp);
    buf_reset(&url);
    buf_addf(&url, "%s/v1/client/%s/sign_request", s->base_url, out->client_id);
    req.method = NET_HTTP_POST;
    req.url = url.ptr;
    req.content_type = NET_HTTP_JSON;
    req.body = body;
    req.body_len = strlen(body);
    net_http_send(h, &p, &req, &resp);
    backend_obf_reply(&resp, "the certificate request", &rep);
    if (rep.kind != OBF_OK) {
        const char *text = json_string_value(json_object_get(rep.doc, "error"));

        if (text && strstr(text, "expired"))
            err_set(err, ERR_INVALID,
                    "Open Badge Factory says the API key expired (they are valid for minutes): "
                    "make a new one (Admin tools > API) and run obf-enrol at once");
        else
            err_set(err, rep.kind == OBF_RETRY ? ERR_UNAVAILABLE : ERR_INVALID, "%s", rep.message);
        goto out;
    }
    buf_add(&out->cert_pem, resp.body.ptr, resp.body.len);
    if (buf_check(&out->cert_pem, "the certificate", err) < 0 ||
        issued_cert(&out->cert_pem, &out->key_pem, &out->not_after, err) < 0)
        goto out;
    ret = 0;
out:
    if (ret < 0)
        backend_obf_enrolment_release(out);
    backend_obf_reply_release(&rep);
    net_http_response_release(&resp);
    json_decref(doc);
    free(body);
    buf_release(&url);
    buf_release(&csr);
    net_http_free(h);
    return ret;
}

void backend_obf_enrolment_release(struct obf_enrolment *e)
{
    if (e->key_pem.ptr && e->key_pem.len)
        explicit_bzero(e->key_pem.ptr, e->key_pem.len);
    buf_release(&e->key_pem);
    buf_release(&e->cert_pem);
}

/* ---- the backend: calls to Open Badge Factory -------------------------------------------- */

struct obf {
    struct backend b;
    struct obf_settings s;
    struct net_http *http;
    struct obf_token token;
    int64_t next_send_ns; /* the rate limit: no request before then (monotonic) */
};

static struct obf *self_of(struct backend *b)
{
    return b->self;
}

static struct net_http_policy policy_of(struct obf *o)
{
    struct net_http_policy p = {
        .allowed_hosts = o->s.host,
        .allow_loopback = o->s.allow_loopback,
        .connect_timeout_ms = (long)o->s.connect_timeout * 1000,
        .timeout_ms = (long)o->s.timeout * 1000,
        .ca_file = o->s.ca_file[0] ? o->s.ca_file : NULL,
        .allowed_what = "the backend's base_url host",
        .cancelled = o->b.cancelled,
        .cancelled_cls = o->b.cancelled_cls,
    };
    if (o->s.api == OBF_API_V1) {
        p.client_cert = o->s.certificate;
        p.client_key = o->s.key;
    }
    return p;
}

static void no_answer(struct net_http_response *resp, const char *why, bool was_cancelled)
{
    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->body, 0);
    resp->outcome = NET_HTTP_NETWORK;
    resp->cancelled = was_cancelled;
    snprintf(resp->error, sizeof(resp->error), "%s", why);
}

static void send_http(struct obf *o, const struct net_http_request *req,
                      struct net_http_response *resp)
{
    struct net_http_policy p = policy_of(o);
    int64_t gap = o->s.rate > 0 ? 1000000000 / o->s.rate : 0;

    if (!backend_sleep_until(&o->b, o->next_send_ns)) {
        no_answer(resp, "cancelled", true);
        return;
    }
    o->next_send_ns = util_mono_ns() + gap;
    if (req->method == NET_HTTP_POST) {
        /*
         * A POST goes on a connection of its own (fresh_connection):
         * libcurl sends a request again by itself when a kept-alive
         * connection closes before any answer, and OBF would then make a
         * second badge or event. (PUT and GET sent twice do no harm.) The
         * handle is the backend's own, so its TLS session is resumed.
         */
        struct net_http_request once = *req;

        once.fresh_connection = true;
        net_http_send(o->http, &p, &once, resp);
        return;
    }
    net_http_send(o->http, &p, req, resp);
}

/*
 * A token ready to use, asking for one when needed. OBF gives a client one
 * token in ten seconds, whoever asks (`backend check` beside `serve`
 * shares the client): a wait of at most those ten seconds, ours or the
 * one a 429 asks for, is waited here once, then the token asked again.
 */
static int token_ready(struct obf *o, struct backend_result *r)
{
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    bool waited = false;
    int ret = -1;

    buf_addstr(&url, o->s.base_url);
    buf_addstr(&url, "/v2/client/oauth2/token");
    for (int round = 0; round < 4; round++) {
        int64_t now = util_now();
        enum obf_token_step step = backend_obf_token_step(&o->token, now);
        struct buf form = BUF_INIT(2048);
        struct net_http_response resp;
        struct net_http_request req = {
            .method = NET_HTTP_POST,
            .url = url.ptr,
            .content_type = NET_HTTP_FORM,
            .max_response = 64 * 1024,
        };

        if (step == OBF_TOKEN_USE) {
            ret = 0;
            break;
        }
        if (step == OBF_TOKEN_WAIT) {
            backend_obf_token_wait(&o->token, now, r);
            if (waited || r->status != BACKEND_RETRY || r->retry_after > OBF_TOKEN_INTERVAL + 1)
                break;
            waited = true;
            if (!backend_sleep_until(&o->b, util_mono_ns() + r->retry_after * 1000000000))
                break;
            backend_result_init(r);
            continue;
        }
        backend_obf_token_form(o->s.client_id, o->s.client_secret, &form);
        req.body = form.ptr;
        req.body_len = form.len;
        send_http(o, &req, &resp);
        backend_obf_token_answer(&o->token, &resp, util_now(), r);
        /* only OBF's "one token in ten seconds" is waited out here; anything else is the worker's
         */
        if (r->status != BACKEND_OK &&
            !(resp.outcome == NET_HTTP_ANSWERED && resp.status == 429 && !waited)) {
            net_http_response_release(&resp);
            explicit_bzero(form.ptr, form.len);
            buf_release(&form);
            break;
        }
        net_http_response_release(&resp);
        explicit_bzero(form.ptr, form.len);
        buf_release(&form);
        backend_result_init(r);
    }
    if (ret < 0 && r->status == BACKEND_OK)
        backend_result_set(r, BACKEND_RETRY, "the access token: Open Badge Factory gave none");
    buf_release(&url);
    return ret;
}

/*
 * Sends `req` with the token: a 401 or 403 renews the token once and sends
 * once more, then is auth. Fills `out` and `resp` (release both) in every
 * case; when no token could be had, `out` says why.
 */
static void send_authorized(struct obf *o, struct net_http_request *req, const char *entity,
                            struct net_http_response *resp, struct obf_reply *out)
{
    static const struct net_http_header accept = { "Accept", "application/json" };

    memset(out, 0, sizeof(*out));
    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->body, 0);
    req->headers = &accept;
    req->nheaders = 1;
    req->max_response = LIMIT_OBF_ANSWER;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct buf authz = BUF_INIT(OBF_TOKEN_LEN + 16);
        struct backend_result tr;
        uint64_t generation;

        backend_obf_reply_release(out);
        net_http_response_release(resp);
        backend_result_init(&tr);
        if (token_ready(o, &tr) < 0) {
            out->kind = tr.status == BACKEND_AUTH ? OBF_AUTH : OBF_RETRY;
            snprintf(out->message, sizeof(out->message), "%s", tr.message);
            out->retry_after = tr.retry_after;
            return;
        }
        generation = o->token.generation;
        buf_addstr(&authz, "Bearer ");
        buf_addstr(&authz, o->token.access);
        req->authorization = authz.ptr;
        send_http(o, req, resp);
        req->authorization = NULL;
        explicit_bzero(authz.ptr, authz.len);
        buf_release(&authz);
        backend_obf_reply(resp, entity, out);
        if (out->kind != OBF_UNAUTHORIZED)
            return;
        backend_obf_token_rejected(&o->token, generation);
    }
    out->kind = OBF_AUTH;
    snprintf(out->message, sizeof(out->message),
             "%s: Open Badge Factory refused a new access token (HTTP %ld): check client_id, "
             "client_secret and the API access of the account",
             entity, resp->status);
}

/*
 * One call of API v1: the client certificate is the credential, so no
 * token; a list answer (`ldjson`) becomes out->doc as a JSON array.
 */
static void send_v1(struct obf *o, struct net_http_request *req, const char *entity, bool ldjson,
                    struct net_http_response *resp, struct obf_reply *out)
{
    static const struct net_http_header accept = { "Accept", "application/json" };

    req->headers = &accept;
    req->nheaders = 1;
    req->max_response = LIMIT_OBF_ANSWER;
    send_http(o, req, resp);
    backend_obf_reply_v1(resp, entity, out);
    if (ldjson && out->kind == OBF_OK) {
        struct err err = ERR_INIT;
        json_t *list = NULL;

        json_decref(out->doc);
        out->doc = NULL;
        if (backend_obf_ldjson(resp->body.ptr, resp->body.len, &list, &err) < 0) {
            out->kind = OBF_RETRY;
            snprintf(out->message, sizeof(out->message), "%s: %s", entity, err.msg);
        } else {
            out->doc = list;
        }
    }
}

/* One call at base_url + `path` (JSON `body` or none); `out` says how it went (release it). */
static void call_ex(struct obf *o, enum net_http_method method, const char *path, const char *body,
                    const char *entity, bool ldjson, struct obf_reply *out, char *location,
                    size_t loclen)
{
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct err err = ERR_INIT;
    struct net_http_response resp;
    struct net_http_request req = {
        .method = method,
        .content_type = body ? NET_HTTP_JSON : NULL,
        .body = body,
        .body_len = body ? strlen(body) : 0,
    };

    buf_addstr(&url, o->s.base_url);
    buf_addstr(&url, path);
    if (buf_check(&url, "the URL", &err) < 0) {
        memset(out, 0, sizeof(*out));
        out->kind = OBF_PERMANENT;
        snprintf(out->message, sizeof(out->message), "%s: the URL is too long", entity);
        buf_release(&url);
        return;
    }
    req.url = url.ptr;
    if (o->s.api == OBF_API_V1)
        send_v1(o, &req, entity, ldjson, &resp, out);
    else
        send_authorized(o, &req, entity, &resp, out);
    if (location)
        snprintf(location, loclen, "%s", resp.location);
    net_http_response_release(&resp);
    buf_release(&url);
}

static void call(struct obf *o, enum net_http_method method, const char *path, const char *body,
                 const char *entity, struct obf_reply *out, char *location, size_t loclen)
{
    call_ex(o, method, path, body, entity, false, out, location, loclen);
}

/* Copies a reply's failure into a result, `what` first ("creating the badge"). */
static void fail(struct backend_result *r, const struct obf_reply *rep, const char *what)
{
    static const enum backend_status map[] = {
        [OBF_OK] = BACKEND_OK,
        [OBF_RETRY] = BACKEND_RETRY,
        [OBF_AUTH] = BACKEND_AUTH,
        [OBF_PERMANENT] = BACKEND_PERMANENT,
        [OBF_UNAUTHORIZED] = BACKEND_AUTH,
        [OBF_NOT_FOUND] = BACKEND_PERMANENT,
    };

    backend_result_set(r, map[rep->kind], "%s: %s", what, rep->message);
    r->retry_after = rep->retry_after;
}

/* Appends name=value to a path's query ("?" already there), '&' between pairs. */
static void query_add(struct buf *path, const char *name, const char *value)
{
    struct buf pair = BUF_INIT(4096);

    if (path->len && path->ptr[path->len - 1] != '?')
        buf_addch(path, '&');
    net_http_form_add(&pair, name, value);
    buf_add(path, pair.ptr, pair.len);
    buf_release(&pair);
}

static bool id_or_refuse(const char *id, struct backend_result *r)
{
    if (backend_entity_id_valid(id))
        return true;
    backend_result_set(r, BACKEND_PERMANENT, "'%.80s' is not an Open Badge Factory id",
                       id ? id : "");
    return false;
}

static void op_check(struct backend *b, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct obf_reply rep;
    char path[256], entity[128];

    backend_result_init(r);
    snprintf(entity, sizeof(entity), "client '%s'", o->s.client_id);
    snprintf(path, sizeof(path), "/v2/client/%s/ping", o->s.client_id);
    call(o, NET_HTTP_GET, path, NULL, entity, &rep, NULL, 0);
    if (rep.kind != OBF_OK) {
        fail(r, &rep, "ping");
        if (rep.kind == OBF_NOT_FOUND)
            r->status = BACKEND_AUTH;
        backend_obf_reply_release(&rep);
        return;
    }
    backend_obf_reply_release(&rep);
    snprintf(path, sizeof(path), "/v2/client/%s", o->s.client_id);
    call(o, NET_HTTP_GET, path, NULL, entity, &rep, NULL, 0);
    if (rep.kind == OBF_OK) {
        const char *name = json_string_value(json_object_get(rep.doc, "name"));

        snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
    } else {
        fail(r, &rep, "reading the client");
        if (rep.kind == OBF_NOT_FOUND)
            r->status = BACKEND_AUTH;
    }
    backend_obf_reply_release(&rep);
}

static void op_verify(struct backend *b, const char *id, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct obf_reply rep;
    char path[256], entity[128];

    backend_result_init(r);
    if (!id_or_refuse(id, r))
        return;
    snprintf(entity, sizeof(entity), "badge '%s'", id);
    snprintf(path, sizeof(path), "/v2/badge/%s/%s", o->s.client_id, id);
    call(o, NET_HTTP_GET, path, NULL, entity, &rep, NULL, 0);
    if (rep.kind == OBF_OK) {
        if (json_is_true(json_object_get(rep.doc, "draft")))
            backend_result_set(r, BACKEND_PERMANENT,
                               "badge '%s' is a draft: publish it in Open Badge Factory first", id);
        else
            snprintf(r->id, sizeof(r->id), "%s", id);
    } else {
        fail(r, &rep, "verifying the badge");
    }
    backend_obf_reply_release(&rep);
}

/*
 * GETs the list at `path` (a query without limit and offset) page by page,
 * LIMIT_OBF_PAGE_SIZE at a time (OBF's most, both versions) and at most
 * LIMIT_OBF_PAGES pages, calling `match` on each page's list until it says
 * it found what it looks for. v2 pages are {result, total}; v1 answers a
 * line-delimited list with no total ([v1doc] Reports: limit "upper limit
 * 1000", offset "used with limit when paginating"), so a page shorter than
 * the limit is the last. Returns 0 (found or not: match's `cls` says), or
 * -1 with `r` set: a failed page, or more pages than the cap, which is a
 * permanent failure (not "not found": the caller would send again what
 * may be on a page not read).
 */
static int each_page(struct obf *o, const char *path, const char *entity, const char *what,
                     bool (*match)(json_t *list, void *cls), void *cls, struct backend_result *r)
{
    bool v1 = o->s.api == OBF_API_V1;
    int64_t offset = 0;

    for (int page = 0; page < LIMIT_OBF_PAGES; page++) {
        struct buf full = BUF_INIT(LIMIT_LTI_URL_LEN);
        struct obf_reply rep;
        json_t *list;
        size_t n;
        bool more;

        /* too long a path is refused by call() (the URL's cap), never cut */
        buf_addf(&full, "%s%slimit=%d&offset=%" PRId64, path, strchr(path, '?') ? "&" : "?",
                 LIMIT_OBF_PAGE_SIZE, offset);
        call_ex(o, NET_HTTP_GET, full.ptr, NULL, entity, v1, &rep, NULL, 0);
        buf_release(&full);
        list = v1 ? rep.doc : json_object_get(rep.doc, "result");
        if (rep.kind == OBF_OK && !json_is_array(list)) {
            backend_result_set(r, BACKEND_RETRY, "%s: Open Badge Factory's answer has no list",
                               what);
            backend_obf_reply_release(&rep);
            return -1;
        }
        if (rep.kind != OBF_OK) {
            fail(r, &rep, what);
            backend_obf_reply_release(&rep);
            return -1;
        }
        n = json_array_size(list);
        offset += (int64_t)n;
        if (match(list, cls)) {
            backend_obf_reply_release(&rep);
            return 0;
        }
        more = v1 ? n == LIMIT_OBF_PAGE_SIZE
                  : n > 0 && offset < json_integer_value(json_object_get(rep.doc, "total"));
        backend_obf_reply_release(&rep);
        if (!more)
            return 0;
    }
    backend_result_set(r, BACKEND_PERMANENT,
                       "%s: %s at Open Badge Factory are more than %d, the most ltibadges reads "
                       "(%d pages of %d); look for it there before retrying",
                       what, entity, LIMIT_OBF_PAGES * LIMIT_OBF_PAGE_SIZE, LIMIT_OBF_PAGES,
                       LIMIT_OBF_PAGE_SIZE);
    return -1;
}

struct marked {
    const char *marker;
    char *id;
    size_t idlen;
    bool found;
};

static bool match_marked(json_t *list, void *cls)
{
    struct marked *m = cls;

    m->found = backend_obf_find_marked(list, m->marker, m->id, m->idlen);
    return m->found;
}

static void op_find_badge_class(struct backend *b, const struct backend_badge *bc,
                                struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct marked m = { .marker = bc->marker, .id = r->id, .idlen = sizeof(r->id) };
    char path[256], entity[128];

    backend_result_init(r);
    if (!bc->marker || !*bc->marker)
        return;
    snprintf(entity, sizeof(entity), "the badges of client '%s'", o->s.client_id);
    snprintf(path, sizeof(path), "/v2/badge/%s", o->s.client_id);
    if (each_page(o, path, entity, "looking for the badge", match_marked, &m, r) == 0)
        r->found = m.found;
}

/*
 * Creates (POST) or updates (PUT) a badge, in the backend's API version:
 * the bodies differ (backend_obf_badge_body, backend_obf_v1_badge_body), the
 * paths only in their version, and a created badge's id comes from
 * resource_id (v2) or Location (both).
 */
static void send_badge_class(struct backend *b, const struct backend_badge *bc, bool update,
                             struct backend_result *r)
{
    struct obf *o = self_of(b);
    bool v1 = o->s.api == OBF_API_V1;
    const char *ver = v1 ? "v1" : "v2";
    struct obf_reply rep;
    struct err err = ERR_INIT;
    char *body = NULL, path[256], entity[160], location[LIMIT_HTTP_HEADER_VALUE];
    int made;

    backend_result_init(r);
    if (update && !id_or_refuse(bc->backend_id, r))
        return;
    made = v1 ? backend_obf_v1_badge_body(bc, &o->s, &body, &err)
              : backend_obf_badge_body(bc, &o->s, &body, &err);
    if (made < 0) {
        backend_result_set(r, BACKEND_PERMANENT, "%s", err.msg);
        return;
    }
    if (update) {
        snprintf(entity, sizeof(entity), "badge '%s'", bc->backend_id);
        snprintf(path, sizeof(path), "/%s/badge/%s/%s", ver, o->s.client_id, bc->backend_id);
    } else {
        snprintf(entity, sizeof(entity), "the badges of client '%s'", o->s.client_id);
        snprintf(path, sizeof(path), "/%s/badge/%s", ver, o->s.client_id);
    }
    call(o, update ? NET_HTTP_PUT : NET_HTTP_POST, path, body, entity, &rep, location,
         sizeof(location));
    if (rep.kind == OBF_OK && update)
        snprintf(r->id, sizeof(r->id), "%s", bc->backend_id);
    else if (rep.kind == OBF_OK && !backend_obf_created_id(&rep, location, r->id, sizeof(r->id)))
        /* made, perhaps: looked for by its marker before another is made */
        backend_result_set(r, BACKEND_RETRY,
                           v1 ? "creating the badge: Open Badge Factory answered without a Location"
                              : "creating the badge: Open Badge Factory answered without its id");
    else if (rep.kind != OBF_OK)
        fail(r, &rep, update ? "updating the badge" : "creating the badge");
    backend_obf_reply_release(&rep);
    free(body);
}

static void op_create_badge_class(struct backend *b, const struct backend_badge *bc,
                                  struct backend_result *r)
{
    send_badge_class(b, bc, false, r);
}

static void op_update_badge_class(struct backend *b, const struct backend_badge *bc,
                                  struct backend_result *r)
{
    send_badge_class(b, bc, true, r);
}

/* The event's recipient row for the award's address: its assertion URL, whether revoked. */
static void recipient_of(struct obf *o, const char *event, const struct backend_award *a,
                         struct backend_result *r)
{
    struct buf path = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct obf_reply rep;
    char entity[128];
    bool revoked = false;

    snprintf(entity, sizeof(entity), "event '%s'", event);
    buf_addf(&path, "/v2/event/%s/recipient?", o->s.client_id);
    query_add(&path, "event_id", event);
    query_add(&path, "email", a->recipient_email);
    call(o, NET_HTTP_GET, path.ptr, NULL, entity, &rep, NULL, 0);
    if (rep.kind != OBF_OK) {
        fail(r, &rep, "reading the event's recipient");
    } else if (!backend_obf_find_recipient(json_object_get(rep.doc, "result"), a->recipient_email,
                                           r->url, sizeof(r->url), &revoked)) {
        backend_result_set(r, BACKEND_RETRY,
                           "reading the event's recipient: event '%s' has no recipient %s yet",
                           event, a->recipient_email);
    } else {
        r->revoked = revoked;
    }
    backend_obf_reply_release(&rep);
    buf_release(&path);
}

struct by_uid {
    const char *uid;
    char *id;
    size_t idlen;
    bool found;
};

static bool match_uid(json_t *list, void *cls)
{
    struct by_uid *m = cls;

    m->found = backend_obf_find_event(list, m->uid, m->id, m->idlen);
    return m->found;
}

static void op_find_assertion(struct backend *b, const struct backend_badge *bc,
                              const struct backend_award *a, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct buf path = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct by_uid m = { .uid = a->uid, .id = r->id, .idlen = sizeof(r->id) };
    char entity[128];

    backend_result_init(r);
    if (!backend_entity_id_valid(bc->backend_id) || !a->recipient_email || !*a->recipient_email ||
        !a->uid) {
        backend_result_set(r, BACKEND_PERMANENT, "no badge id or e-mail to look up");
        return;
    }
    snprintf(entity, sizeof(entity), "the events of badge '%s'", bc->backend_id);
    buf_addf(&path, "/v2/event/%s?", o->s.client_id);
    query_add(&path, "badge_id", bc->backend_id);
    query_add(&path, "email", a->recipient_email);
    query_add(&path, "api_consumer_id", o->s.api_consumer_id);
    if (each_page(o, path.ptr, entity, "looking up the event", match_uid, &m, r) == 0 && m.found) {
        recipient_of(o, r->id, a, r);
        r->found = r->status == BACKEND_OK;
    }
    buf_release(&path);
}

static void op_issue(struct backend *b, const struct backend_badge *bc,
                     const struct backend_award *a, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct obf_reply rep;
    struct err err = ERR_INIT;
    char *body = NULL, path[256], entity[128], location[LIMIT_HTTP_HEADER_VALUE];

    backend_result_init(r);
    if (!id_or_refuse(bc->backend_id, r))
        return;
    if (backend_obf_issue_body(a, &o->s, &body, &err) < 0) {
        backend_result_set(r, BACKEND_PERMANENT, "%s", err.msg);
        return;
    }
    snprintf(entity, sizeof(entity), "badge '%s'", bc->backend_id);
    snprintf(path, sizeof(path), "/v2/event/%s/%s/issue", o->s.client_id, bc->backend_id);
    call(o, NET_HTTP_POST, path, body, entity, &rep, location, sizeof(location));
    free(body);
    if (rep.kind != OBF_OK) {
        fail(r, &rep, "issuing");
    } else if (!backend_obf_created_id(&rep, location, r->id, sizeof(r->id))) {
        /* issued, perhaps: the worker looks the event up by the award's uid first */
        backend_result_set(r, BACKEND_RETRY,
                           "issuing: Open Badge Factory answered without the event's id");
    } else {
        /* the event is made; a failure here is retried as a look-up, never a second issue */
        recipient_of(o, r->id, a, r);
        r->revoked = false;
    }
    backend_obf_reply_release(&rep);
}

static void op_revoke(struct backend *b, const struct backend_badge *bc,
                      const struct backend_award *a, const char *reason, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct obf_reply rep;
    char id[512], path[1024], entity[600], *body;
    json_t *doc;

    (void)reason; /* OBF v2 takes none */
    backend_result_init(r);
    if (a->assertion_id && *a->assertion_id) {
        snprintf(id, sizeof(id), "%s", a->assertion_id);
    } else {
        /* attempted, answer lost: revoke what OBF has */
        op_find_assertion(b, bc, a, r);
        if (r->status != BACKEND_OK || !r->found || r->revoked) {
            r->found = false;
            return;
        }
        snprintf(id, sizeof(id), "%s", r->id);
        backend_result_init(r);
    }
    if (!id_or_refuse(id, r))
        return;
    doc = json_pack("{s:[s]}", "recipient", a->recipient_email ? a->recipient_email : "");
    body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body) {
        backend_result_set(r, BACKEND_RETRY, "out of memory");
        return;
    }
    snprintf(entity, sizeof(entity), "event '%s'", id);
    snprintf(path, sizeof(path), "/v2/event/%s/%s/revoke", o->s.client_id, id);
    call(o, NET_HTTP_PUT, path, body, entity, &rep, NULL, 0);
    /* already revoked, or gone: what was asked for holds */
    if (rep.kind == OBF_OK || rep.kind == OBF_NOT_FOUND)
        snprintf(r->id, sizeof(r->id), "%s", id);
    else
        fail(r, &rep, "revoking");
    backend_obf_reply_release(&rep);
    free(body);
}

/* ---- API v1: the same operations with client certificates ------------------------------------ */

static void v1_check(struct backend *b, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct obf_reply rep;
    char path[256], entity[128];

    backend_result_init(r);
    snprintf(entity, sizeof(entity), "client '%s'", o->s.client_id);
    snprintf(path, sizeof(path), "/v1/ping/%s", o->s.client_id);
    call(o, NET_HTTP_GET, path, NULL, entity, &rep, NULL, 0);
    if (rep.kind != OBF_OK) {
        fail(r, &rep, "ping");
        if (rep.kind == OBF_NOT_FOUND)
            r->status = BACKEND_AUTH;
        backend_obf_reply_release(&rep);
        return;
    }
    backend_obf_reply_release(&rep);
    snprintf(path, sizeof(path), "/v1/client/%s", o->s.client_id);
    call(o, NET_HTTP_GET, path, NULL, entity, &rep, NULL, 0);
    if (rep.kind == OBF_OK) {
        const char *name = json_string_value(json_object_get(rep.doc, "name"));

        snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
    } else {
        fail(r, &rep, "reading the client");
    }
    backend_obf_reply_release(&rep);
}

static void v1_verify(struct backend *b, const char *id, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct obf_reply rep;
    char path[256], entity[128];

    backend_result_init(r);
    if (!id_or_refuse(id, r))
        return;
    snprintf(entity, sizeof(entity), "badge '%s'", id);
    snprintf(path, sizeof(path), "/v1/badge/%s/%s", o->s.client_id, id);
    call(o, NET_HTTP_GET, path, NULL, entity, &rep, NULL, 0);
    if (rep.kind == OBF_OK) {
        if (json_is_true(json_object_get(rep.doc, "draft")))
            backend_result_set(r, BACKEND_PERMANENT,
                               "badge '%s' is a draft: publish it in Open Badge Factory first", id);
        else if (json_is_true(json_object_get(rep.doc, "deleted")))
            backend_result_set(r, BACKEND_PERMANENT,
                               "badge '%s': not found at Open Badge Factory (deleted)", id);
        else
            snprintf(r->id, sizeof(r->id), "%s", id);
    } else {
        fail(r, &rep, "verifying the badge");
    }
    backend_obf_reply_release(&rep);
}

static void v1_find_badge_class(struct backend *b, const struct backend_badge *bc,
                                struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct buf path = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct obf_reply rep;
    char entity[128];

    backend_result_init(r);
    if (!bc->marker || !*bc->marker)
        return;
    snprintf(entity, sizeof(entity), "the badges of client '%s'", o->s.client_id);
    buf_addf(&path, "/v1/badge/%s?", o->s.client_id);
    query_add(&path, "meta:" OBF_V1_MARKER_META, bc->marker);
    call_ex(o, NET_HTTP_GET, path.ptr, NULL, entity, true, &rep, NULL, 0);
    if (rep.kind == OBF_OK) {
        size_t i;
        json_t *e;

        /* the filter is OBF's; the marker is checked here too */
        json_array_foreach(rep.doc, i, e) {
            const char *m = json_string_value(
                json_object_get(json_object_get(e, "metadata"), OBF_V1_MARKER_META));

            if (m && strcmp(m, bc->marker) == 0 && !json_is_true(json_object_get(e, "deleted")) &&
                copy_id(json_object_get(e, "id"), r->id, sizeof(r->id))) {
                r->found = true;
                break;
            }
        }
    } else {
        fail(r, &rep, "looking for the badge");
    }
    backend_obf_reply_release(&rep);
    buf_release(&path);
}

static void v1_create_badge_class(struct backend *b, const struct backend_badge *bc,
                                  struct backend_result *r)
{
    send_badge_class(b, bc, false, r);
}

static void v1_update_badge_class(struct backend *b, const struct backend_badge *bc,
                                  struct backend_result *r)
{
    send_badge_class(b, bc, true, r);
}

struct by_uid_v1 {
    const char *uid, *email;
    char *id;
    size_t idlen;
    bool found, revoked;
};

static bool match_uid_v1(json_t *list, void *cls)
{
    struct by_uid_v1 *m = cls;
    size_t i;
    json_t *e;

    json_array_foreach(list, i, e) {
        char uid[128];

        if (backend_obf_log_uid(e, uid, sizeof(uid)) && strcmp(uid, m->uid) == 0 &&
            copy_id(json_object_get(e, "id"), m->id, m->idlen)) {
            m->found = true;
            m->revoked = backend_obf_v1_revoked(e, m->email);
            return true;
        }
    }
    return false;
}

/*
 * The events of the badge for the address and our api_consumer_id, newest
 * first (the one looked for is most often the last made), every page until
 * the award's uid is found in a log_entry.
 */
static void v1_find_assertion(struct backend *b, const struct backend_badge *bc,
                              const struct backend_award *a, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct buf path = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct by_uid_v1 m = {
        .uid = a->uid, .email = a->recipient_email, .id = r->id, .idlen = sizeof(r->id)
    };
    char entity[128];

    backend_result_init(r);
    if (!backend_entity_id_valid(bc->backend_id) || !a->recipient_email || !*a->recipient_email ||
        !a->uid) {
        backend_result_set(r, BACKEND_PERMANENT, "no badge id or e-mail to look up");
        return;
    }
    snprintf(entity, sizeof(entity), "the events of badge '%s'", bc->backend_id);
    buf_addf(&path, "/v1/event/%s?", o->s.client_id);
    query_add(&path, "badge_id", bc->backend_id);
    query_add(&path, "email", a->recipient_email);
    query_add(&path, "api_consumer_id", o->s.api_consumer_id);
    query_add(&path, "order_by", "desc");
    if (each_page(o, path.ptr, entity, "looking up the event", match_uid_v1, &m, r) == 0 &&
        m.found) {
        r->found = true;
        r->revoked = m.revoked;
    }
    buf_release(&path);
}

static void v1_issue(struct backend *b, const struct backend_badge *bc,
                     const struct backend_award *a, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct obf_reply rep;
    struct err err = ERR_INIT;
    char *body = NULL, path[256], entity[128], location[LIMIT_HTTP_HEADER_VALUE];

    backend_result_init(r);
    if (!id_or_refuse(bc->backend_id, r))
        return;
    if (backend_obf_v1_issue_body(a, &o->s, &body, &err) < 0) {
        backend_result_set(r, BACKEND_PERMANENT, "%s", err.msg);
        return;
    }
    snprintf(entity, sizeof(entity), "badge '%s'", bc->backend_id);
    snprintf(path, sizeof(path), "/v1/badge/%s/%s", o->s.client_id, bc->backend_id);
    call(o, NET_HTTP_POST, path, body, entity, &rep, location, sizeof(location));
    free(body);
    /* v1 gives no assertion URL: the learner's page says the badge is at OBF */
    if (rep.kind != OBF_OK)
        fail(r, &rep, "issuing");
    else if (!backend_obf_created_id(&rep, location, r->id, sizeof(r->id)))
        backend_result_set(r, BACKEND_RETRY,
                           "issuing: Open Badge Factory answered without the event's Location");
    backend_obf_reply_release(&rep);
}

static void v1_revoke(struct backend *b, const struct backend_badge *bc,
                      const struct backend_award *a, const char *reason, struct backend_result *r)
{
    struct obf *o = self_of(b);
    struct buf path = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct obf_reply rep;
    char id[512], entity[600];

    (void)reason; /* OBF takes none */
    backend_result_init(r);
    if (a->assertion_id && *a->assertion_id) {
        snprintf(id, sizeof(id), "%s", a->assertion_id);
    } else {
        v1_find_assertion(b, bc, a, r);
        if (r->status != BACKEND_OK || !r->found || r->revoked) {
            r->found = false;
            return;
        }
        snprintf(id, sizeof(id), "%s", r->id);
        backend_result_init(r);
    }
    if (!id_or_refuse(id, r))
        return;
    snprintf(entity, sizeof(entity), "event '%s'", id);
    buf_addf(&path, "/v1/event/%s/%s/?", o->s.client_id, id);
    query_add(&path, "email", a->recipient_email ? a->recipient_email : "");
    call(o, NET_HTTP_DELETE, path.ptr, NULL, entity, &rep, NULL, 0);
    if (rep.kind == OBF_OK || rep.kind == OBF_NOT_FOUND)
        snprintf(r->id, sizeof(r->id), "%s", id);
    else
        fail(r, &rep, "revoking");
    backend_obf_reply_release(&rep);
    buf_release(&path);
}

static void op_destroy(struct backend *b);

static const struct backend_ops obf_v1_ops = {
    .name = "obf",
    .remote = true,
    .check = v1_check,
    .verify_badge_class = v1_verify,
    .find_badge_class = v1_find_badge_class,
    .create_badge_class = v1_create_badge_class,
    .update_badge_class = v1_update_badge_class,
    .issue = v1_issue,
    .revoke = v1_revoke,
    .find_assertion = v1_find_assertion,
    .destroy = op_destroy,
};

static void op_destroy(struct backend *b)
{
    struct obf *o = self_of(b);

    net_http_free(o->http);
    explicit_bzero(o, sizeof(*o));
    free(o);
}

static const struct backend_ops obf_ops = {
    .name = "obf",
    .remote = true,
    .check = op_check,
    .verify_badge_class = op_verify,
    .find_badge_class = op_find_badge_class,
    .create_badge_class = op_create_badge_class,
    .update_badge_class = op_update_badge_class,
    .issue = op_issue,
    .revoke = op_revoke,
    .find_assertion = op_find_assertion,
    .destroy = op_destroy,
};

struct backend *backend_obf_new(const struct obf_settings *s, struct err *err)
{
    struct obf *o;
    int64_t not_after = 0;

    if (!s->base_url[0] || !s->host[0] || !backend_entity_id_valid(s->client_id)) {
        err_set(err, ERR_INVALID, "an obf backend needs base_url and client_id");
        return NULL;
    }
    if (s->api == OBF_API_V1 &&
        backend_obf_certificate(s->certificate, s->key, &not_after, err) < 0)
        return NULL;
    o = xcalloc(1, sizeof(*o));
    o->s = *s;
    o->b.ops = s->api == OBF_API_V1 ? &obf_v1_ops : &obf_ops;
    o->b.credentials_expire_at = not_after;
    o->b.self = o;
    backend_obf_token_init(&o->token);
    o->http = net_http_new();
    if (!o->http) {
        explicit_bzero(o, sizeof(*o));
        free(o);
        err_set(err, ERR_INTERNAL, "could not set up the HTTP client");
        return NULL;
    }
    return &o->b;
}
