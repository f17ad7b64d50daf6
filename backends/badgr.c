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
                snprintf(sub, sizeof(sub), "%s",
                         strcmp(key, "non_field_errors") ? key : (path ? path : ""));
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
        buf_addbase64(authorization, (const unsigned char *)pair.ptr, pair.len);
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

int backend_badgr_badge_body(const struct backend_badge *bc, char **out, struct err *err)
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
    buf_addbase64(&uri, bc->image, bc->image_len);
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
    add_tag(tags, bc->marker);
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
                                  char *url, size_t urllen, bool *revoked)
{
    json_t *e, *best = NULL;
    bool best_revoked = false;
    size_t i;

    json_array_foreach(list, i, e) {
        json_t *r = json_object_get(e, "recipient");
        const char *who = json_string_value(json_object_get(r, "plaintextIdentity"));
        bool rev = json_is_true(json_object_get(e, "revoked"));

        if (!who || strcasecmp(who, email) != 0 || !json_is_string(json_object_get(e, "entityId")))
            continue;
        /* an unrevoked one first, then the oldest */
        if (!best || (best_revoked && !rev) || (best_revoked == rev && older(e, best))) {
            best = e;
            best_revoked = rev;
        }
    }
    if (!best || !copy_str(json_object_get(best, "entityId"), id, idlen))
        return false;
    if (url && !copy_str(json_object_get(best, "openBadgeId"), url, urllen))
        url[0] = '\0';
    *revoked = best_revoked;
    return true;
}

/* ---- the backend: calls to the platform ----------------------------------------------------- */

struct badgr {
    struct backend b;
    struct badgr_settings s;
    struct badgr_creds creds;
    struct net_http *http;
    struct badgr_token token;
    int64_t next_send_ns; /* the rate limit: no request before then (monotonic) */
};

static struct net_http_policy policy_of(struct badgr *g)
{
    struct net_http_policy p = {
        .allowed_hosts = g->s.host,
        .allow_loopback = g->s.allow_loopback,
        .connect_timeout_ms = (long)g->s.connect_timeout * 1000,
        .timeout_ms = (long)g->s.timeout * 1000,
        .ca_file = g->s.ca_file[0] ? g->s.ca_file : NULL,
        .allowed_what = "the backend's base_url host",
        .cancelled = g->b.cancelled,
        .cancelled_cls = g->b.cancelled_cls,
    };
    return p;
}

/* Waits for the rate limit's turn (short: 1/rate s); false when cancelled meanwhile. */
static bool rate_turn(struct badgr *g)
{
    int64_t gap = g->s.rate > 0 ? 1000000000 / g->s.rate : 0;

    if (!backend_sleep_until(&g->b, g->next_send_ns))
        return false;
    g->next_send_ns = util_mono_ns() + gap;
    return true;
}

static void send_http(struct badgr *g, const struct net_http_request *req,
                      struct net_http_response *resp)
{
    struct net_http_policy p = policy_of(g);

    if (!rate_turn(g)) {
        memset(resp, 0, sizeof(*resp));
        buf_init(&resp->body, 0);
        resp->outcome = NET_HTTP_NETWORK;
        resp->cancelled = true;
        snprintf(resp->error, sizeof(resp->error), "cancelled");
        return;
    }
    if (req->method == NET_HTTP_POST) {
        /*
         * A POST goes on a connection of its own (fresh_connection): a
         * platform that made the BadgeClass or the assertion and then lost
         * the answer must not get it a second time from libcurl. (PUT and
         * DELETE sent twice do no harm.)
         */
        struct net_http_request once = *req;

        once.fresh_connection = true;
        net_http_send(g->http, &p, &once, resp);
        return;
    }
    net_http_send(g->http, &p, req, resp);
}

/* A token ready to use, asking for one (a refresh, else a grant) when needed. */
static int token_ready(struct badgr *g, struct backend_result *r)
{
    struct buf form = BUF_INIT(8192), authz = BUF_INIT(4096), url = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct err err = { 0 };
    int ret = -1;

    buf_addstr(&url, g->s.base_url);
    buf_addstr(&url, "/o/token");
    /* at most a refresh refused, then a grant */
    for (int round = 0; round < 3; round++) {
        int64_t now = util_now();
        enum badgr_token_step step = backend_badgr_token_step(&g->token, now);
        struct net_http_response resp;
        struct net_http_request req = { 0 };

        if (step == BADGR_TOKEN_USE) {
            ret = 0;
            break;
        }
        if (step == BADGR_TOKEN_WAIT) {
            backend_result_set(r, g->token.wait_status, "%s", g->token.wait_message);
            r->retry_after = g->token.wait_until - now;
            break;
        }
        if (backend_badgr_token_request(&g->creds, &g->token, step, &form, &authz, &err) < 0) {
            backend_result_set(r, BACKEND_PERMANENT, "%s", err.msg);
            break;
        }
        req.method = NET_HTTP_POST;
        req.url = url.ptr;
        req.content_type = NET_HTTP_FORM;
        req.authorization = authz.len ? authz.ptr : NULL;
        req.body = form.ptr;
        req.body_len = form.len;
        req.max_response = 64 * 1024;
        send_http(g, &req, &resp);
        backend_badgr_token_answer(&g->token, &g->creds, step, &resp, util_now(), r);
        net_http_response_release(&resp);
        if (r->status != BACKEND_OK &&
            !(step == BADGR_TOKEN_REFRESH && r->status == BACKEND_RETRY &&
              backend_badgr_token_step(&g->token, util_now()) == BADGR_TOKEN_GRANT))
            break;
        backend_result_init(r);
    }
    explicit_bzero(form.ptr, form.len);
    explicit_bzero(authz.ptr, authz.len);
    buf_release(&form);
    buf_release(&authz);
    buf_release(&url);
    return ret;
}

/*
 * Sends `req` with the token: a 401 renews the token once and sends once
 * more, then is auth. Fills `out` and `resp` (release both) in every case;
 * when no token could be had, `out` says why (and so does `r`).
 */
static void send_authorized(struct badgr *g, struct net_http_request *req, const char *entity,
                            struct net_http_response *resp, struct badgr_reply *out,
                            struct backend_result *r)
{
    static const struct net_http_header accept = { "Accept", "application/json" };

    memset(out, 0, sizeof(*out));
    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->body, 0);
    req->headers = &accept;
    req->nheaders = 1;
    req->max_response = LIMIT_BADGR_ANSWER;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct buf authz = BUF_INIT(LIMIT_BADGR_TOKEN_LEN + 16);
        uint64_t generation;

        backend_badgr_reply_release(out);
        net_http_response_release(resp);
        if (token_ready(g, r) < 0) {
            out->kind = r->status == BACKEND_AUTH ? BADGR_AUTH : BADGR_RETRY;
            snprintf(out->message, sizeof(out->message), "%s", r->message);
            out->retry_after = r->retry_after;
            return;
        }
        generation = g->token.generation;
        buf_addstr(&authz, "Bearer ");
        buf_addstr(&authz, g->token.access);
        req->authorization = authz.ptr;
        send_http(g, req, resp);
        req->authorization = NULL;
        explicit_bzero(authz.ptr, authz.len);
        buf_release(&authz);
        backend_badgr_reply(resp, entity, out);
        if (out->kind != BADGR_UNAUTHORIZED)
            return;
        backend_badgr_token_rejected(&g->token, generation);
    }
    out->kind = BADGR_AUTH;
    snprintf(out->message, sizeof(out->message),
             "badgr refused a new access token (HTTP 401): check the account");
}

/* One call of the v2 API at `url` (JSON `body` or none); `out` says how it went. */
static void call(struct badgr *g, enum net_http_method method, const char *url, const char *body,
                 const char *entity, struct badgr_reply *out, struct backend_result *r)
{
    struct net_http_response resp;
    struct net_http_request req = {
        .method = method,
        .url = url,
        .content_type = body ? NET_HTTP_JSON : NULL,
        .body = body,
        .body_len = body ? strlen(body) : 0,
    };

    send_authorized(g, &req, entity, &resp, out, r);
    net_http_response_release(&resp);
}

/* Copies a reply's failure into a result, `what` first ("creating the BadgeClass"). */
static void fail(struct backend_result *r, const struct badgr_reply *rep, const char *what)
{
    static const enum backend_status map[] = {
        [BADGR_OK] = BACKEND_OK,
        [BADGR_RETRY] = BACKEND_RETRY,
        [BADGR_AUTH] = BACKEND_AUTH,
        [BADGR_PERMANENT] = BACKEND_PERMANENT,
        [BADGR_UNAUTHORIZED] = BACKEND_AUTH,
        [BADGR_NOT_FOUND] = BACKEND_PERMANENT,
        [BADGR_DUPLICATE] = BACKEND_PERMANENT,
        [BADGR_FUTURE_ISSUED_ON] = BACKEND_PERMANENT,
        [BADGR_ALREADY_REVOKED] = BACKEND_PERMANENT,
    };

    backend_result_set(r, map[rep->kind], "%s: %s", what, rep->message);
    r->retry_after = rep->retry_after;
}

/* Whether `id` can go in a URL's path: Badgr's entity ids are base64url, 22 characters. */
static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '_')
            return false;
    }
    return true;
}

static void url_of(struct badgr *g, struct buf *url, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void url_of(struct badgr *g, struct buf *url, const char *fmt, ...)
{
    va_list ap;
    char tail[512];

    va_start(ap, fmt);
    vsnprintf(tail, sizeof(tail), fmt, ap);
    va_end(ap);
    buf_reset(url);
    buf_addstr(url, g->s.base_url);
    buf_addstr(url, tail);
}

/* Whether a next page's URL is on base_url's origin (scheme, host and port). */
static bool same_origin(struct badgr *g, const char *next)
{
    const char *b = g->s.base_url, *sep = strstr(b, "://");
    const char *end = sep ? strchr(sep + 3, '/') : NULL;
    size_t n = end ? (size_t)(end - b) : strlen(b);

    return strncmp(next, b, n) == 0 && (next[n] == '/' || next[n] == '?' || next[n] == '\0');
}

/*
 * GETs a list at `url` and every next page (Link rel="next", on base_url's
 * origin, at most LIMIT_BADGR_PAGES), calling `match` on each page's list
 * until it says it found what it looks for. Returns 0, or -1 with `r` set.
 */
static int each_page(struct badgr *g, const char *first, const char *entity, const char *what,
                     bool (*match)(json_t *list, void *cls), void *cls, struct backend_result *r)
{
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    char next[LIMIT_HTTP_HEADER_VALUE];
    int ret = 0;

    buf_addstr(&url, first);
    for (int page = 0; page < LIMIT_BADGR_PAGES; page++) {
        struct badgr_reply rep;
        struct net_http_response resp;
        struct net_http_request req = { .method = NET_HTTP_GET, .url = url.ptr };
        bool more;

        send_authorized(g, &req, entity, &resp, &rep, r);
        if (rep.kind != BADGR_OK) {
            fail(r, &rep, what);
            ret = -1;
        }
        more = ret == 0 && !match(rep.result, cls) &&
               net_http_link_next(resp.link, next, sizeof(next));
        backend_badgr_reply_release(&rep);
        net_http_response_release(&resp);
        if (!more)
            break;
        if (!same_origin(g, next)) {
            backend_result_set(r, BACKEND_PERMANENT, "%s: badgr's next page is on another host",
                               what);
            ret = -1;
            break;
        }
        buf_reset(&url);
        buf_addstr(&url, next);
    }
    buf_release(&url);
    return ret;
}

static struct badgr *self_of(struct backend *b)
{
    return b->self;
}

static void op_check(struct backend *b, struct backend_result *r)
{
    struct badgr *g = self_of(b);
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgr_reply rep;
    char entity[128];

    backend_result_init(r);
    snprintf(entity, sizeof(entity), "issuer '%s'", g->s.issuer);
    url_of(g, &url, "/v2/issuers/%s", g->s.issuer);
    call(g, NET_HTTP_GET, url.ptr, NULL, entity, &rep, r);
    if (rep.kind == BADGR_OK) {
        const char *name =
            json_string_value(json_object_get(json_array_get(rep.result, 0), "name"));

        snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
    } else {
        fail(r, &rep, "reading the issuer");
        /* an issuer this account cannot see is the configuration's problem */
        if (rep.kind == BADGR_NOT_FOUND)
            r->status = BACKEND_AUTH;
    }
    backend_badgr_reply_release(&rep);
    buf_release(&url);
}

static void op_verify(struct backend *b, const char *id, struct backend_result *r)
{
    struct badgr *g = self_of(b);
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgr_reply rep;
    char entity[128];

    backend_result_init(r);
    if (!id_ok(id)) {
        backend_result_set(r, BACKEND_PERMANENT, "'%.80s' is not a badgr entity id", id ? id : "");
        return;
    }
    snprintf(entity, sizeof(entity), "BadgeClass '%s'", id);
    url_of(g, &url, "/v2/badgeclasses/%s", id);
    call(g, NET_HTTP_GET, url.ptr, NULL, entity, &rep, r);
    if (rep.kind == BADGR_OK) {
        json_t *e = json_array_get(rep.result, 0);
        const char *issuer = json_string_value(json_object_get(e, "issuer"));

        if (!issuer || strcmp(issuer, g->s.issuer) != 0)
            backend_result_set(r, BACKEND_PERMANENT,
                               "BadgeClass '%s' belongs to issuer '%.80s', not to '%s'", id,
                               issuer ? issuer : "?", g->s.issuer);
        else if (!copy_str(json_object_get(e, "entityId"), r->id, sizeof(r->id)))
            snprintf(r->id, sizeof(r->id), "%s", id);
    } else {
        fail(r, &rep, "verifying the BadgeClass");
    }
    backend_badgr_reply_release(&rep);
    buf_release(&url);
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

    m->found = backend_badgr_find_marked(list, m->marker, m->id, m->idlen);
    return m->found;
}

static void op_find_badge_class(struct backend *b, const struct backend_badge *bc,
                                struct backend_result *r)
{
    struct badgr *g = self_of(b);
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct marked m = { .marker = bc->marker, .id = r->id, .idlen = sizeof(r->id) };
    char entity[128];

    backend_result_init(r);
    if (!bc->marker || !*bc->marker)
        return;
    snprintf(entity, sizeof(entity), "issuer '%s'", g->s.issuer);
    url_of(g, &url, "/v2/issuers/%s/badgeclasses?num=%d", g->s.issuer, LIMIT_BADGR_PAGE_SIZE);
    if (each_page(g, url.ptr, entity, "looking for the BadgeClass", match_marked, &m, r) == 0)
        r->found = m.found;
    buf_release(&url);
}

static void send_badge_class(struct backend *b, const struct backend_badge *bc, bool update,
                             struct backend_result *r)
{
    struct badgr *g = self_of(b);
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgr_reply rep;
    struct err err = { 0 };
    char *body = NULL, entity[160];

    backend_result_init(r);
    if (update && !id_ok(bc->backend_id)) {
        backend_result_set(r, BACKEND_PERMANENT, "'%.80s' is not a badgr entity id",
                           bc->backend_id ? bc->backend_id : "");
        return;
    }
    if (backend_badgr_badge_body(bc, &body, &err) < 0) {
        backend_result_set(r, BACKEND_PERMANENT, "%s", err.msg);
        return;
    }
    if (update) {
        snprintf(entity, sizeof(entity), "BadgeClass '%s'", bc->backend_id);
        url_of(g, &url, "/v2/badgeclasses/%s", bc->backend_id);
    } else {
        snprintf(entity, sizeof(entity), "issuer '%s'", g->s.issuer);
        url_of(g, &url, "/v2/issuers/%s/badgeclasses", g->s.issuer);
    }
    call(g, update ? NET_HTTP_PUT : NET_HTTP_POST, url.ptr, body, entity, &rep, r);
    if (rep.kind == BADGR_OK) {
        if (backend_badgr_entity(&rep, r->id, sizeof(r->id), NULL, 0) < 0)
            backend_result_set(r, BACKEND_RETRY,
                               "%s the BadgeClass: badgr answered without "
                               "an entityId",
                               update ? "updating" : "creating");
    } else {
        fail(r, &rep, update ? "updating the BadgeClass" : "creating the BadgeClass");
    }
    backend_badgr_reply_release(&rep);
    free(body);
    buf_release(&url);
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

struct recipient {
    const char *email;
    struct backend_result *r;
};

static bool match_recipient(json_t *list, void *cls)
{
    struct recipient *m = cls;
    bool revoked = false;

    if (backend_badgr_find_recipient(list, m->email, m->r->id, sizeof(m->r->id), m->r->url,
                                     sizeof(m->r->url), &revoked)) {
        /* an unrevoked one ends the search; a revoked one is kept while later pages may
         * hold an unrevoked one */
        if (!m->r->found || m->r->revoked) {
            m->r->found = true;
            m->r->revoked = revoked;
        }
        return !revoked;
    }
    return false;
}

static void op_find_assertion(struct backend *b, const struct backend_badge *bc,
                              const struct backend_award *a, struct backend_result *r)
{
    struct badgr *g = self_of(b);
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN), q = BUF_INIT(2048);
    struct recipient m = { .email = a->recipient_email, .r = r };
    char entity[128];

    backend_result_init(r);
    if (!id_ok(bc->backend_id) || !a->recipient_email || !*a->recipient_email) {
        backend_result_set(r, BACKEND_PERMANENT, "no BadgeClass id or e-mail to look up");
        return;
    }
    /* badgr-server compares ?recipient= with the stored address exactly: lower-cased */
    for (const char *p = a->recipient_email; *p; p++)
        buf_addch(&q, (char)tolower((unsigned char)*p));
    snprintf(entity, sizeof(entity), "BadgeClass '%s'", bc->backend_id);
    url_of(g, &url, "/v2/badgeclasses/%s/assertions?", bc->backend_id);
    net_http_form_add(&url, "recipient", q.ptr);
    buf_addf(&url, "&include_revoked=true&num=%d", LIMIT_BADGR_PAGE_SIZE);
    each_page(g, url.ptr, entity, "looking up the assertion", match_recipient, &m, r);
    buf_release(&url);
    buf_release(&q);
}

static void op_issue(struct backend *b, const struct backend_badge *bc,
                     const struct backend_award *a, struct backend_result *r)
{
    struct badgr *g = self_of(b);
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgr_reply rep = { 0 };
    struct err err = { 0 };
    char entity[128];
    bool with_issued_on = true;

    backend_result_init(r);
    if (!id_ok(bc->backend_id)) {
        backend_result_set(r, BACKEND_PERMANENT, "'%.80s' is not a badgr entity id",
                           bc->backend_id ? bc->backend_id : "");
        return;
    }
    snprintf(entity, sizeof(entity), "BadgeClass '%s'", bc->backend_id);
    url_of(g, &url, "/v2/badgeclasses/%s/assertions", bc->backend_id);
    for (int attempt = 0; attempt < 2; attempt++) {
        char *body = NULL;

        if (backend_badgr_assertion_body(a, g->s.hash_recipients, g->s.notify, with_issued_on,
                                         &body, &err) < 0) {
            backend_result_set(r, BACKEND_PERMANENT, "%s", err.msg);
            break;
        }
        backend_badgr_reply_release(&rep);
        call(g, NET_HTTP_POST, url.ptr, body, entity, &rep, r);
        free(body);
        /* a platform whose clock is behind ours: the date is left to it */
        if (rep.kind != BADGR_FUTURE_ISSUED_ON || !with_issued_on)
            break;
        with_issued_on = false;
    }
    if (rep.kind == BADGR_OK) {
        if (backend_badgr_entity(&rep, r->id, sizeof(r->id), r->url, sizeof(r->url)) < 0)
            backend_result_set(r, BACKEND_RETRY, "issuing: badgr answered without an entityId");
    } else if (rep.kind == BADGR_DUPLICATE) {
        /* the learner has one already (ours whose answer was lost, or made by other means) */
        op_find_assertion(b, bc, a, r);
        if (r->status == BACKEND_OK && (!r->found || r->revoked))
            backend_result_set(r, BACKEND_RETRY,
                               "issuing: badgr has an award of this badge for the learner "
                               "that the look-up does not find yet");
        r->found = false;
        r->revoked = false;
    } else if (err.code == ERR_NONE) {
        fail(r, &rep, "issuing");
    }
    backend_badgr_reply_release(&rep);
    buf_release(&url);
}

static void op_revoke(struct backend *b, const struct backend_badge *bc,
                      const struct backend_award *a, const char *reason, struct backend_result *r)
{
    struct badgr *g = self_of(b);
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgr_reply rep;
    char id[512], entity[600], *body;
    json_t *o;

    backend_result_init(r);
    if (a->assertion_id && *a->assertion_id) {
        snprintf(id, sizeof(id), "%s", a->assertion_id);
    } else {
        /* attempted, answer lost: revoke what the platform has */
        op_find_assertion(b, bc, a, r);
        if (r->status != BACKEND_OK || !r->found || r->revoked) {
            r->found = false;
            return;
        }
        snprintf(id, sizeof(id), "%s", r->id);
        backend_result_init(r);
    }
    if (!id_ok(id)) {
        backend_result_set(r, BACKEND_PERMANENT, "'%.80s' is not a badgr entity id", id);
        return;
    }
    o = json_pack("{s:s}", "revocation_reason", reason && *reason ? reason : "revoked");
    body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!body) {
        backend_result_set(r, BACKEND_RETRY, "out of memory");
        return;
    }
    snprintf(entity, sizeof(entity), "assertion '%s'", id);
    url_of(g, &url, "/v2/assertions/%s", id);
    call(g, NET_HTTP_DELETE, url.ptr, body, entity, &rep, r);
    /* already revoked, or gone: what was asked for holds */
    if (rep.kind == BADGR_OK || rep.kind == BADGR_ALREADY_REVOKED || rep.kind == BADGR_NOT_FOUND)
        snprintf(r->id, sizeof(r->id), "%s", id);
    else
        fail(r, &rep, "revoking");
    backend_badgr_reply_release(&rep);
    free(body);
    buf_release(&url);
}

static void op_destroy(struct backend *b)
{
    struct badgr *g = self_of(b);

    net_http_free(g->http);
    explicit_bzero(g, sizeof(*g));
    free(g);
}

static const struct backend_ops badgr_ops = {
    .name = "badgr",
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

struct backend *backend_badgr_new(const struct badgr_settings *s, struct err *err)
{
    struct badgr *g;

    if (!s->base_url[0] || !s->host[0] || !id_ok(s->issuer)) {
        err_set(err, ERR_INVALID, "a badgr backend needs base_url and issuer");
        return NULL;
    }
    g = xcalloc(1, sizeof(*g));
    g->s = *s;
    g->b.ops = &badgr_ops;
    g->b.self = g;
    g->creds.client_credentials = s->grant == BADGR_GRANT_CLIENT_CREDENTIALS;
    g->creds.username = g->s.username;
    g->creds.password = g->s.password;
    g->creds.client_id = g->s.client_id;
    g->creds.client_secret = g->s.client_secret;
    backend_badgr_token_init(&g->token);
    g->http = net_http_new();
    if (!g->http) {
        free(g);
        err_set(err, ERR_INTERNAL, "could not set up the HTTP client");
        return NULL;
    }
    return &g->b;
}
