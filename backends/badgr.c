/*
 * backends/badgr.c - Badgr-compatible platforms: Parchment Digital Badges
 * (ex Canvas Credentials), the older api.*badgr.io and self-hosted
 * badgr-server, through their v2 API.
 *
 * This file holds what does not touch the network, so that it can be
 * checked on its own (tests/unit/backends/badgr.c): reading an answer
 * (the v2 envelope on every answer, the field a refusal names, the three
 * refusals callers act on), the OAuth token's states, and the bodies sent.
 *
 * What the platform does was read from badgr-server's code and checked
 * against the suite's contract fake (tests/integration/badgrfake.py, which
 * cites the code behind each behaviour): the token endpoint takes a form
 * body only, rotates refresh tokens, answers a refused login with
 * invalid_grant and then throttles the login for 2^n seconds with a 429
 * naming `expires` and no Retry-After; refusals of the v2 API carry
 * fieldErrors (a field's texts, or nested objects for recipient, expires,
 * alignments) and validationErrors; a BadgeClass or assertion the account
 * may not see is 404 like one that does not exist.
 */
#include "base/base.h"
#include "backends/badgr.h"
#include "net/net.h"

#include <ctype.h>

/* ---- small helpers ------------------------------------------------------------------ */

/* Appends `s` (at most `max` bytes of it) with control characters as spaces. */
static void add_clean(struct buf *b, const char *s, size_t max)
{
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        buf_addch(b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
}

static void copy_message(char *dst, size_t dstlen, const struct buf *b)
{
    size_t n = b->len < dstlen - 1 ? b->len : dstlen - 1;

    memcpy(dst, b->ptr, n);
    dst[n] = '\0';
}

static bool media_json(const char *ct)
{
    struct str s;
    const char *semi;

    if (!ct)
        return false;
    semi = strchr(ct, ';');
    s = str_trim((struct str){ ct, semi ? (size_t)(semi - ct) : strlen(ct) });
    if (str_case_eq_cstr(s, "application/json") || str_case_eq_cstr(s, "application/ld+json"))
        return true;
    return s.len > 5 && strncasecmp(s.ptr + s.len - 5, "+json", 5) == 0;
}

/* Whether a JSON value is a list of texts one of which starts with `prefix`. */
static bool has_text(json_t *list, const char *prefix)
{
    size_t i;
    json_t *v;

    if (json_is_string(list))
        return strncmp(json_string_value(list), prefix, strlen(prefix)) == 0;
    json_array_foreach(list, i, v) {
        if (json_is_string(v) && strncmp(json_string_value(v), prefix, strlen(prefix)) == 0)
            return true;
    }
    return false;
}

/*
 * One refusal's texts as "path: text; ...": a field's list of texts, one
 * text, an object of nested fields (non_field_errors names its parent), a
 * list with one object per item (alignments[1].targetUrl).
 */
static void flatten(json_t *v, const char *path, struct buf *out)
{
    size_t i;
    json_t *item;
    const char *key;

    if (json_is_string(v)) {
        if (out->len)
            buf_addstr(out, "; ");
        if (path && *path) {
            add_clean(out, path, 200);
            buf_addstr(out, ": ");
        }
        add_clean(out, json_string_value(v), 300);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            if (json_is_object(item) || json_is_array(item)) {
                char sub[256];

                snprintf(sub, sizeof(sub), "%s[%zu]", path ? path : "", i);
                flatten(item, sub, out);
            } else {
                flatten(item, path, out);
            }
        }
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, item) {
            char sub[256];

            if (strcmp(key, "non_field_errors") == 0 || !path || !*path)
                snprintf(sub, sizeof(sub), "%s", strcmp(key, "non_field_errors") ? key : path);
            else
                snprintf(sub, sizeof(sub), "%s.%s", path, key);
            flatten(item, sub, out);
        }
    }
}

/* ---- answers -------------------------------------------------------------------- */

static void reply_set(struct badgr_reply *out, enum badgr_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_set(struct badgr_reply *out, enum badgr_kind kind, const char *fmt, ...)
{
    va_list ap;

    out->kind = kind;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
}

/* The envelope's parts, or false when the document is not one. */
static bool envelope(json_t *doc, bool *success, json_t **result)
{
    json_t *st = json_object_get(doc, "status");
    json_t *ok = json_object_get(st, "success");

    *result = json_object_get(doc, "result");
    if (!json_is_object(doc) || !json_is_object(st) || !json_is_boolean(ok) ||
        !json_is_array(*result))
        return false;
    *success = json_is_true(ok);
    return true;
}

void backend_badgr_reply(const struct net_http_response *resp, const char *entity,
                         struct badgr_reply *out)
{
    bool success = false, is_envelope = false;
    json_t *result = NULL, *fe, *ve;
    struct buf msg = BUF_INIT(LIMIT_AWARD_ERROR_LEN + 1);
    struct net_verdict v;
    const char *desc;
    long st = resp->status;

    memset(out, 0, sizeof(*out));
    net_http_classify(resp, &v);
    out->retry_after = v.retry_after;
    if (resp->outcome != NET_HTTP_ANSWERED) {
        reply_set(out,
                  v.status == NET_RETRY  ? BADGR_RETRY
                  : v.status == NET_AUTH ? BADGR_AUTH
                                         : BADGR_PERMANENT,
                  "badgr: %s", v.message);
        return;
    }
    if (resp->body.len > 0 && media_json(resp->content_type))
        out->doc = json_loadb(resp->body.ptr, resp->body.len, JSON_REJECT_DUPLICATES, NULL);
    is_envelope = out->doc && envelope(out->doc, &success, &result);
    if (st == 401) {
        reply_set(out, BADGR_UNAUTHORIZED, "badgr refused the access token (HTTP 401)");
        return;
    }
    switch (v.status) {
    case NET_RETRY:
        reply_set(out, BADGR_RETRY, "badgr answered %s%s", v.message,
                  st == 429 ? " (too many requests)" : "");
        return;
    case NET_AUTH:
        reply_set(out, BADGR_AUTH, "badgr refused access (%s)", v.message);
        return;
    case NET_OK:
        if (is_envelope && success) {
            out->kind = BADGR_OK;
            out->result = result;
        } else {
            reply_set(out, BADGR_RETRY, "badgr answered %s without its JSON envelope", v.message);
        }
        return;
    case NET_PERMANENT:
        break;
    }
    if (!is_envelope) {
        if (st == 404)
            reply_set(out, BADGR_AUTH,
                      "badgr answered HTTP 404 without its API envelope: is base_url the "
                      "platform's API host?");
        else
            reply_set(out, BADGR_PERMANENT, "badgr refused the request (%s)", v.message);
        return;
    }
    if (st == 404) {
        reply_set(out, BADGR_NOT_FOUND,
                  "%s not found at badgr, or this account is not staff of its issuer",
                  entity ? entity : "the entity");
        return;
    }
    fe = json_object_get(out->doc, "fieldErrors");
    ve = json_object_get(out->doc, "validationErrors");
    if (has_text(ve, "A previous award of this badge already exists")) {
        reply_set(out, BADGR_DUPLICATE, "a previous award of this badge already exists");
        return;
    }
    if (has_text(ve, "Assertion is already revoked")) {
        reply_set(out, BADGR_ALREADY_REVOKED, "the assertion is already revoked");
        return;
    }
    if (json_is_object(fe) &&
        has_text(json_object_get(fe, "issuedOn"), "Only issuedOn dates in the past")) {
        reply_set(out, BADGR_FUTURE_ISSUED_ON, "badgr takes the issue date for a future one");
        return;
    }
    flatten(ve, NULL, &msg);
    flatten(fe, NULL, &msg);
    desc = json_string_value(json_object_get(json_object_get(out->doc, "status"), "description"));
    if (msg.len == 0) {
        buf_addf(&msg, "badgr refused the request (HTTP %ld", st);
        if (desc) {
            buf_addstr(&msg, ": ");
            add_clean(&msg, desc, 200);
        }
        buf_addch(&msg, ')');
    }
    out->kind = BADGR_PERMANENT;
    copy_message(out->message, sizeof(out->message), &msg);
    buf_release(&msg);
}

void backend_badgr_reply_release(struct badgr_reply *r)
{
    json_decref(r->doc);
    r->doc = NULL;
    r->result = NULL;
}

static bool copy_str(json_t *v, char *dst, size_t dstlen)
{
    const char *s = json_string_value(v);
    size_t n;

    if (!s)
        return false;
    n = strlen(s);
    if (n >= dstlen)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

int backend_badgr_entity(const struct badgr_reply *r, char *id, size_t idlen, char *url,
                         size_t urllen)
{
    json_t *e = json_array_get(r->result, 0);

    if (r->kind != BADGR_OK || !json_is_object(e) ||
        !copy_str(json_object_get(e, "entityId"), id, idlen) || !*id)
        return -1;
    if (url && (!copy_str(json_object_get(e, "openBadgeId"), url, urllen)))
        url[0] = '\0';
    return 0;
}

/* ---- the OAuth token ------------------------------------------------------------------- */

void backend_badgr_token_init(struct badgr_token *t)
{
    memset(t, 0, sizeof(*t));
}

enum badgr_token_step backend_badgr_token_step(const struct badgr_token *t, int64_t now)
{
    if (now < t->wait_until)
        return BADGR_TOKEN_WAIT;
    if (t->access[0] && now < t->renew_at)
        return BADGR_TOKEN_USE;
    return t->refresh[0] ? BADGR_TOKEN_REFRESH : BADGR_TOKEN_GRANT;
}

static void base64(struct buf *out, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        char q[4];

        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        q[0] = tab[(v >> 18) & 63];
        q[1] = tab[(v >> 12) & 63];
        q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? tab[v & 63] : '=';
        buf_add(out, q, 4);
    }
}

int backend_badgr_token_request(const struct badgr_creds *c, const struct badgr_token *t,
                                enum badgr_token_step step, struct buf *form,
                                struct buf *authorization, struct err *err)
{
    const char *client = c->client_id && *c->client_id ? c->client_id : "public";

    buf_reset(form);
    buf_reset(authorization);
    if (step == BADGR_TOKEN_REFRESH) {
        net_http_form_add(form, "grant_type", "refresh_token");
        net_http_form_add(form, "refresh_token", t->refresh);
    } else if (c->client_credentials) {
        net_http_form_add(form, "grant_type", "client_credentials");
    } else {
        net_http_form_add(form, "grant_type", "password");
        net_http_form_add(form, "username", c->username);
        net_http_form_add(form, "password", c->password);
    }
    net_http_form_add(form, "scope", "rw:issuer");
    if (c->client_credentials) {
        struct buf pair = BUF_INIT(2048);

        /* RFC 6749 2.3.1 form-encodes both before Basic; badgr-server splits on ':' */
        buf_addstr(&pair, client);
        buf_addch(&pair, ':');
        buf_addstr(&pair, c->client_secret ? c->client_secret : "");
        buf_addstr(authorization, "Basic ");
        base64(authorization, (const unsigned char *)pair.ptr, pair.len);
        explicit_bzero(pair.ptr, pair.len);
        buf_release(&pair);
    } else {
        net_http_form_add(form, "client_id", client);
    }
    if (buf_check(form, "the token request", err) < 0 ||
        buf_check(authorization, "the token request", err) < 0)
        return -1;
    return 0;
}

/* Sets the state after a refused grant: AUTH naming the fix, no new grant for a while. */
static void refuse(struct badgr_token *t, int64_t now, struct backend_result *r, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static void refuse(struct badgr_token *t, int64_t now, struct backend_result *r, const char *fmt,
                   ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(t->wait_message, sizeof(t->wait_message), fmt, ap);
    va_end(ap);
    t->access[0] = '\0';
    t->refresh[0] = '\0';
    t->wait_until = now + LIMIT_BADGR_REFUSED_WAIT;
    t->wait_status = BACKEND_AUTH;
    backend_result_set(r, BACKEND_AUTH, "%s", t->wait_message);
    r->retry_after = LIMIT_BADGR_REFUSED_WAIT;
}

static bool token_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > LIMIT_BADGR_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    }
    return true;
}

void backend_badgr_token_answer(struct badgr_token *t, const struct badgr_creds *c,
                                enum badgr_token_step step, const struct net_http_response *h,
                                int64_t now, struct backend_result *r)
{
    const char *client = c->client_id && *c->client_id ? c->client_id : "public";
    json_t *doc = NULL;
    const char *error;

    backend_result_init(r);
    if (h->outcome != NET_HTTP_ANSWERED) {
        struct badgr_reply rep;

        backend_badgr_reply(h, NULL, &rep);
        backend_result_set(r, rep.kind == BADGR_AUTH ? BACKEND_AUTH : BACKEND_RETRY, "%s",
                           rep.message);
        backend_badgr_reply_release(&rep);
        return;
    }
    /* badgr-server's own refusals come as JSON in a text/html answer: the body is read as is */
    if (h->body.len > 0)
        doc = json_loadb(h->body.ptr, h->body.len, JSON_REJECT_DUPLICATES, NULL);
    error = json_string_value(json_object_get(doc, "error"));
    if (h->status == 200 && json_is_object(doc)) {
        const char *at = json_string_value(json_object_get(doc, "access_token"));
        const char *rt = json_string_value(json_object_get(doc, "refresh_token"));
        json_t *ei = json_object_get(doc, "expires_in");
        int64_t life = json_is_integer(ei) ? json_integer_value(ei) : 3600, margin;

        if (!token_ok(at) || (rt && !token_ok(rt))) {
            backend_result_set(r, BACKEND_RETRY, "badgr's token answer has no usable token");
            goto out;
        }
        if (life < 10)
            life = 10;
        if (life > 10 * 365 * 86400)
            life = 10 * 365 * 86400;
        margin = life / 10;
        if (margin > 300)
            margin = 300;
        if (margin < 1)
            margin = 1;
        memcpy(t->access, at, strlen(at) + 1);
        if (rt)
            memcpy(t->refresh, rt, strlen(rt) + 1);
        else
            t->refresh[0] = '\0'; /* the old one went with the rotation */
        t->renew_at = now + life - margin;
        t->wait_until = 0;
        t->generation++;
        goto out;
    }
    if (h->status == 429) {
        json_t *ex = json_object_get(doc, "expires");
        int64_t wait = json_is_integer(ex) ? json_integer_value(ex) : h->retry_after;

        if (wait < 1)
            wait = 60;
        if (wait > LIMIT_AWARDS_BACKOFF_MAX)
            wait = LIMIT_AWARDS_BACKOFF_MAX;
        t->wait_until = now + wait;
        t->wait_status = BACKEND_RETRY;
        snprintf(t->wait_message, sizeof(t->wait_message),
                 "badgr throttles logins of this account for %" PRId64 " s", wait);
        backend_result_set(r, BACKEND_RETRY, "%s", t->wait_message);
        r->retry_after = wait;
        goto out;
    }
    if (h->status >= 500 || h->status == 408 || !error) {
        backend_result_set(r, BACKEND_RETRY, "badgr's token endpoint answered HTTP %ld", h->status);
        r->retry_after = h->retry_after;
        goto out;
    }
    if (step == BADGR_TOKEN_REFRESH && strcmp(error, "invalid_grant") == 0) {
        /* revoked or rotated away (a lost answer): a new grant, at once */
        t->refresh[0] = '\0';
        t->access[0] = '\0';
        backend_result_set(r, BACKEND_RETRY, "badgr refused the refresh token");
        goto out;
    }
    if (strcmp(error, "invalid_grant") == 0)
        refuse(t, now, r,
               "badgr refused the password of '%s': check it; an account that signs in "
               "through Google, Microsoft or another provider must first set a password in "
               "its badgr profile",
               c->username ? c->username : "");
    else if (strcmp(error, "invalid client_id") == 0 && !c->client_credentials)
        refuse(t, now, r,
               "badgr knows no OAuth application '%s': a self-hosted badgr-server needs one "
               "with that client id and the password grant",
               client);
    else if (strcmp(error, "invalid client_id") == 0 || strcmp(error, "invalid_client") == 0 ||
             strcmp(error, "invalid client_secret") == 0)
        refuse(t, now, r, "badgr refused client_id '%s' with its client_secret: check both",
               client);
    else if (strcmp(error, "unauthorized_client") == 0)
        refuse(t, now, r, "the OAuth application '%s' may not use the %s grant at badgr", client,
               c->client_credentials ? "client_credentials" : "password");
    else if (strcmp(error, "invalid scope requested") == 0 || strcmp(error, "invalid_scope") == 0)
        refuse(t, now, r, "the OAuth application '%s' does not allow scope rw:issuer at badgr",
               client);
    else
        refuse(t, now, r, "badgr refused the token request (HTTP %ld, %.80s)", h->status, error);
out:
    json_decref(doc);
}

void backend_badgr_token_rejected(struct badgr_token *t, uint64_t generation)
{
    if (t->generation == generation) {
        t->access[0] = '\0';
        t->renew_at = 0;
    }
}

/* ---- request bodies ------------------------------------------------------------------------ */

int backend_badgr_marker(const char *slug, const char *server, struct buf *out, struct err *err)
{
    buf_reset(out);
    buf_addstr(out, "ltibadges:");
    buf_addstr(out, slug);
    buf_addch(out, '@');
    buf_addstr(out, server);
    if (buf_check(out, "the marker tag", err) < 0)
        return -1;
    if (out->len > LIMIT_BADGR_TAG_LEN)
        return err_set(err, ERR_TOOBIG, "the marker tag of '%s' is over %d characters", slug,
                       LIMIT_BADGR_TAG_LEN);
    return 0;
}

static void set_text(json_t *o, const char *key, const char *v)
{
    if (v && *v)
        json_object_set_new(o, key, json_string(v));
}

static void add_tag(json_t *tags, const char *tag)
{
    size_t i;
    json_t *v;

    if (!tag || !*tag || strlen(tag) > LIMIT_BADGR_TAG_LEN)
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

int backend_badgr_badge_body(const struct backend_badge *bc, const char *marker, char **out,
                             struct err *err)
{
    json_t *o, *tags, *stored, *al, *v, *als;
    struct buf uri = BUF_INIT(64 + (LIMIT_BADGE_IMAGE_BYTES + 2) / 3 * 4);
    size_t i;

    *out = NULL;
    if (!bc->image || !bc->image_len || !bc->image_type ||
        (strcmp(bc->image_type, "image/png") != 0 && strcmp(bc->image_type, "image/svg+xml") != 0))
        return err_set(err, ERR_INVALID, "badge '%s' needs a PNG or SVG image for badgr", bc->slug);
    buf_addstr(&uri, "data:");
    buf_addstr(&uri, bc->image_type);
    buf_addstr(&uri, ";base64,");
    base64(&uri, bc->image, bc->image_len);
    if (buf_check(&uri, "the badge image", err) < 0) {
        buf_release(&uri);
        return -1;
    }
    o = json_object();
    set_text(o, "name", bc->name);
    set_text(o, "description", bc->description);
    json_object_set_new(o, "image", json_stringn(uri.ptr, uri.len));
    buf_release(&uri);
    set_text(o, "criteriaUrl", bc->criteria_url);
    set_text(o, "criteriaNarrative", bc->criteria_narrative);
    if (!json_object_get(o, "criteriaUrl") && !json_object_get(o, "criteriaNarrative"))
        json_object_set_new(o, "criteriaNarrative",
                            json_string(bc->description ? bc->description : ""));
    tags = json_array();
    stored = bc->tags ? json_loads(bc->tags, 0, NULL) : NULL;
    json_array_foreach(stored, i, v) {
        if (json_is_string(v))
            add_tag(tags, json_string_value(v));
    }
    json_decref(stored);
    add_tag(tags, bc->issuing_component);
    add_tag(tags, marker);
    json_object_set_new(o, "tags", tags);
    als = json_array();
    al = bc->alignments ? json_loads(bc->alignments, 0, NULL) : NULL;
    json_array_foreach(al, i, v) {
        static const char *const keys[] = { "targetName", "targetUrl", "targetDescription",
                                            "targetFramework", "targetCode" };
        json_t *a = json_object();

        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            set_text(a, keys[k], json_string_value(json_object_get(v, keys[k])));
        json_array_append_new(als, a);
    }
    json_decref(al);
    json_object_set_new(o, "alignments", als);
    /* an empty expires leaves the stored one as it is: nulls clear it on an update */
    if (bc->expires_days > 0)
        json_object_set_new(
            o, "expires",
            json_pack("{s:I,s:s}", "amount", (json_int_t)bc->expires_days, "duration", "days"));
    else
        json_object_set_new(o, "expires", json_pack("{s:n,s:n}", "amount", "duration"));
    return dump(o, out, err);
}

int backend_badgr_assertion_body(const struct backend_award *a, bool hashed, bool notify,
                                 bool with_issued_on, char **out, struct err *err)
{
    struct buf email = BUF_INIT(1024);
    json_t *o, *ev;
    char when[21];

    *out = NULL;
    if (!a->recipient_email || !*a->recipient_email)
        return err_set(err, ERR_INVALID, "the award has no e-mail address to send to badgr");
    /* badgr-server lower-cases e-mail identities as it stores them, but compares them as
     * sent for allowDuplicateAwards and ?recipient=: only a lower-cased address finds them */
    for (const char *p = a->recipient_email; *p; p++)
        buf_addch(&email, (char)tolower((unsigned char)*p));
    if (buf_check(&email, "the e-mail address", err) < 0) {
        buf_release(&email);
        return -1;
    }
    o = json_pack("{s:{s:s,s:s,s:b},s:b,s:b}", "recipient", "identity", email.ptr, "type", "email",
                  "hashed", hashed, "notify", notify, "allowDuplicateAwards", 0);
    buf_release(&email);
    if (with_issued_on && a->issued_at > 0) {
        util_iso8601(a->issued_at, when);
        json_object_set_new(o, "issuedOn", json_string(when));
    }
    if (a->expires_at > 0) {
        util_iso8601(a->expires_at, when);
        json_object_set_new(o, "expires", json_string(when));
    }
    ev = json_object();
    set_text(ev, "narrative", a->narrative && *a->narrative ? a->narrative : a->evidence_name);
    if (a->evidence_url && (strncmp(a->evidence_url, "https://", 8) == 0 ||
                            strncmp(a->evidence_url, "http://", 7) == 0))
        set_text(ev, "url", a->evidence_url);
    if (json_object_size(ev))
        json_object_set_new(o, "evidence", json_pack("[o]", ev));
    else
        json_decref(ev);
    return dump(o, out, err);
}

/* Whether entity `e` was made before `best` (createdAt, ISO 8601 UTC, compares as text). */
static bool older(json_t *e, json_t *best)
{
    const char *a = json_string_value(json_object_get(e, "createdAt"));
    const char *b = best ? json_string_value(json_object_get(best, "createdAt")) : NULL;

    return !best || (a && (!b || strcmp(a, b) < 0));
}

bool backend_badgr_find_marked(json_t *list, const char *marker, char *id, size_t idlen)
{
    json_t *e, *best = NULL, *tags, *t;
    size_t i, j;

    json_array_foreach(list, i, e) {
        tags = json_object_get(e, "tags");
        json_array_foreach(tags, j, t) {
            if (json_is_string(t) && strcmp(json_string_value(t), marker) == 0 &&
                json_is_string(json_object_get(e, "entityId")) && older(e, best)) {
                best = e;
                break;
            }
        }
    }
    return best && copy_str(json_object_get(best, "entityId"), id, idlen);
}

bool backend_badgr_find_recipient(json_t *list, const char *email, char *id, size_t idlen,
                                  char *url, size_t urllen)
{
    json_t *e, *best = NULL;
    size_t i;

    json_array_foreach(list, i, e) {
        json_t *r = json_object_get(e, "recipient");
        const char *who = json_string_value(json_object_get(r, "plaintextIdentity"));

        if (!who || strcasecmp(who, email) != 0 || json_is_true(json_object_get(e, "revoked")) ||
            !json_is_string(json_object_get(e, "entityId")))
            continue;
        if (older(e, best))
            best = e;
    }
    if (!best || !copy_str(json_object_get(best, "entityId"), id, idlen))
        return false;
    if (url && !copy_str(json_object_get(best, "openBadgeId"), url, urllen))
        url[0] = '\0';
    return true;
}
