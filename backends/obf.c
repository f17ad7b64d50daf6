/*
 * backends/obf.c - Open Badge Factory, API v2: reading its answers, the
 * OAuth2 token's states and the request bodies (see obf.h). The calls
 * themselves come with the backend; this file holds what they are built on.
 */
#include "base/base.h"
#include "backends/obf.h"
#include "net/net.h"

#include <strings.h>

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

int backend_obf_badge_body(const struct backend_badge *bc, const struct obf_settings *s, char **out,
                           struct err *err)
{
    struct buf uri = BUF_INIT(64 + (LIMIT_BADGE_IMAGE_BYTES + 2) / 3 * 4);
    struct buf crit = BUF_INIT(LIMIT_LTI_URL_LEN + 65536);
    json_t *o, *content, *tags, *stored, *v;
    size_t i;

    *out = NULL;
    if (!bc->image || !bc->image_len || !bc->image_type ||
        (strcmp(bc->image_type, "image/png") != 0 && strcmp(bc->image_type, "image/svg+xml") != 0))
        return err_set(err, ERR_INVALID,
                       "badge '%s' needs a PNG or SVG image for Open Badge Factory", bc->slug);
    buf_addf(&uri, "data:%s;base64,", bc->image_type);
    buf_addbase64(&uri, bc->image, bc->image_len);
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
