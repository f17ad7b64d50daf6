/*
 * backends/badgekit.c - a self-hosted Mozilla BadgeKit API (archived
 * upstream; institutions that still run one award through it).
 *
 * What BadgeKit checks was read from its docs and code (mozilla/badgekit-api:
 * docs/authorization.md, issuing.md, badges.md; app/lib/middleware.js,
 * app/routes/) and is modelled by the suite's contract fake
 * (tests/integration/badgekitfake.py). Every call is signed for itself: a
 * JWT naming the method, the exact request target and the body's SHA-256,
 * good for a minute. BadgeKit keeps URLs, not files, for a badge's image
 * and criteria: ours point at this server's public pages.
 *
 * Nothing BadgeKit does is idempotent by itself, so every step is made so
 * here: a badge's slug is derived from ours and this server's URL, so a
 * create whose answer was lost (or BadgeKit's own 500 after it stored the
 * row) comes back as 409 and the badge is then read and used; an
 * instance's slug is the award's uid, and a learner holds a badge at most
 * once (409), so a lost answer is found by the learner's address, and an
 * instance made by other means is adopted as the learner's award.
 *
 * Signing. The token is three base64url parts and one HMAC-SHA256 over
 * OpenSSL, which ltibadges already links. libjwt (Debian 12: 1.10) would
 * sign the same token, but it is one more library in the package's
 * dependencies for these few lines, and the claims would still be built as
 * JSON here for the `body` object (jwt_add_grants_json); jansson builds
 * them as it builds every other body.
 */
#include "base/base.h"
#include "backends/badgekit.h"
#include "net/net.h"

#include <ctype.h>
#include <strings.h>
#include <openssl/evp.h>

/* ---- small helpers ------------------------------------------------------------------ */

/* Appends `s` (at most `max` bytes of it) with control characters as spaces. */
static void add_clean(struct buf *b, const char *s, size_t max)
{
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        buf_addch(b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
}

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool backend_badgekit_slug_valid(const char *slug)
{
    size_t n = slug ? strlen(slug) : 0;

    if (n == 0 || n > LIMIT_BADGEKIT_SLUG_LEN || strcmp(slug, ".") == 0 || strcmp(slug, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!unreserved((unsigned char)slug[i]))
            return false;
    }
    return true;
}

/*
 * Appends `s` as one path segment: unreserved characters and '@' as they
 * are, everything else percent-encoded (an address may hold '/', '?',
 * '#', '%'). The target signed is the one sent, so BadgeKit's decoding
 * of it does not matter to the signature.
 */
static void add_segment(struct buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || *p == '@')
            buf_addch(b, (char)*p);
        else
            buf_addf(b, "%%%02X", *p);
    }
}

/* Appends base64url without padding (RFC 7515's JWS encoding). */
static void add_b64url(struct buf *b, const void *p, size_t n)
{
    size_t from = b->len;

    buf_addbase64(b, p, n);
    while (b->len > from && b->ptr[b->len - 1] == '=')
        b->ptr[--b->len] = '\0';
    for (size_t i = from; i < b->len; i++) {
        if (b->ptr[i] == '+')
            b->ptr[i] = '-';
        else if (b->ptr[i] == '/')
            b->ptr[i] = '_';
    }
}

/* ---- signing ---------------------------------------------------------------------------- */

int backend_badgekit_authorization(const char *key, const char *secret, const char *method,
                                   const char *target, const void *body, size_t body_len,
                                   int64_t now, struct buf *out, struct err *err)
{
    /* the header jws 0.2 makes: typ JWT is what makes BadgeKit parse the payload as JSON */
    static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"HS256\"}";
    struct buf signing = BUF_INIT(LIMIT_LTI_URL_LEN * 2 + 1024);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    json_t *claims;
    char *payload;
    int ret = -1;

    claims = json_pack("{s:s, s:I, s:s, s:s}", "key", key, "exp",
                       (json_int_t)(now + BADGEKIT_TOKEN_LIFE), "method", method, "path", target);
    if (!claims)
        return err_set(err, ERR_INVALID, "the request to sign is not valid UTF-8");
    if (body) {
        unsigned char h[32];
        char hex[65];

        util_sha256(body, body_len, h);
        util_hex(hex, h, sizeof(h));
        json_object_set_new(claims, "body", json_pack("{s:s, s:s}", "alg", "sha256", "hash", hex));
    }
    payload = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    if (!payload)
        return err_set(err, ERR_INTERNAL, "out of memory");
    add_b64url(&signing, header, sizeof(header) - 1);
    buf_addch(&signing, '.');
    add_b64url(&signing, payload, strlen(payload));
    free(payload);
    if (buf_check(&signing, "the request's token", err) < 0)
        goto out;
    if (!util_hmac(util_md_sha256(), secret, strlen(secret), signing.ptr, signing.len, mac,
                   &maclen)) {
        err_set(err, ERR_INTERNAL, "could not sign the request (HMAC-SHA256)");
        goto out;
    }
    buf_addstr(out, "JWT token=\"");
    buf_add(out, signing.ptr, signing.len);
    buf_addch(out, '.');
    add_b64url(out, mac, maclen);
    buf_addch(out, '"');
    ret = buf_check(out, "the request's token", err);
out:
    explicit_bzero(mac, sizeof(mac));
    buf_release(&signing);
    return ret;
}

/* ---- answers -------------------------------------------------------------------- */

static void reply_set(struct badgekit_reply *out, enum badgekit_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_set(struct badgekit_reply *out, enum badgekit_kind kind, const char *fmt, ...)
{
    va_list ap;

    out->kind = kind;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
}

static bool media_json(const char *ct)
{
    size_t n = strcspn(ct, "; \t");

    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/*
 * The model and value of restify's 404 from BadgeKit's finders: "Could
 * not find MODEL field: `F`, value: `V`". False for any other text.
 */
static bool not_found_of(const char *msg, char *model, size_t mlen, char *value, size_t vlen)
{
    const char *p, *f, *v, *end;

    if (!msg || strncmp(msg, "Could not find ", 15) != 0)
        return false;
    p = msg + 15;
    f = strstr(p, " field: `");
    v = f ? strstr(f, "`, value: `") : NULL;
    end = v ? strrchr(v + 11, '`') : NULL;
    if (!f || !v || !end || (size_t)(f - p) >= mlen || (size_t)(end - v - 11) >= vlen)
        return false;
    memcpy(model, p, (size_t)(f - p));
    model[f - p] = '\0';
    memcpy(value, v + 11, (size_t)(end - v - 11));
    value[end - v - 11] = '\0';
    return true;
}

void backend_badgekit_reply(const struct net_http_response *resp, const char *scope,
                            struct badgekit_reply *out)
{
    struct buf msg = BUF_INIT(LIMIT_AWARD_ERROR_LEN + 1);
    struct net_verdict v;
    const char *code = NULL, *text = NULL;
    long st = resp->status;

    memset(out, 0, sizeof(*out));
    net_http_classify(resp, &v);
    out->retry_after = v.retry_after;
    if (resp->outcome != NET_HTTP_ANSWERED) {
        reply_set(out,
                  v.status == NET_RETRY  ? BADGEKIT_RETRY
                  : v.status == NET_AUTH ? BADGEKIT_AUTH
                                         : BADGEKIT_PERMANENT,
                  "badgekit: %s", v.message);
        return;
    }
    if (resp->body.len > 0 && media_json(resp->content_type))
        out->doc = json_loadb(resp->body.ptr, resp->body.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(out->doc)) {
        json_decref(out->doc);
        out->doc = NULL;
    }
    code = json_string_value(json_object_get(out->doc, "code"));
    text = json_string_value(json_object_get(out->doc, "message"));
    switch (v.status) {
    case NET_OK:
        if (out->doc)
            out->kind = BADGEKIT_OK;
        else
            reply_set(out, BADGEKIT_RETRY, "BadgeKit answered %s without JSON", v.message);
        return;
    case NET_RETRY:
        buf_addf(&msg, "BadgeKit answered %s%s", v.message,
                 st == 429 ? " (too many requests)" : "");
        if (text && st >= 500) {
            buf_addstr(&msg, ": ");
            add_clean(&msg, text, 200);
        }
        reply_set(out, BADGEKIT_RETRY, "%s", msg.ptr);
        buf_release(&msg);
        return;
    case NET_AUTH:
        if (code && strcmp(code, "NotAuthorized") == 0 && text) {
            add_clean(&msg, text, 300);
            if (strncmp(text, "Token is expired", 16) == 0)
                buf_addstr(&msg, "): check the clocks of this server and of BadgeKit's");
            reply_set(out, BADGEKIT_AUTH, "BadgeKit refused the signed request: %s", msg.ptr);
        } else {
            reply_set(out, BADGEKIT_AUTH, "BadgeKit refused access (%s)", v.message);
        }
        buf_release(&msg);
        return;
    case NET_PERMANENT:
        break;
    }
    if (st == 404) {
        char model[64], value[300];

        if (!code)
            reply_set(out, BADGEKIT_AUTH,
                      "BadgeKit answered HTTP 404 without its JSON: is base_url the BadgeKit "
                      "API?");
        else if (!not_found_of(text, model, sizeof(model), value, sizeof(value)))
            reply_set(out, BADGEKIT_AUTH,
                      "BadgeKit has no such route (HTTP 404): is base_url the BadgeKit API?");
        else if (strcmp(model, "system") == 0 || strcmp(model, "issuer") == 0 ||
                 strcmp(model, "program") == 0)
            reply_set(out, BADGEKIT_AUTH,
                      "BadgeKit has no %s '%.255s': check system, issuer and program (scope "
                      "%s)",
                      model, value, scope ? scope : "");
        else if (strcmp(model, "badge") == 0)
            reply_set(out, BADGEKIT_NOT_FOUND, "no badge %.255s in %s", value, scope ? scope : "");
        else
            reply_set(out, BADGEKIT_NOT_FOUND, "no %s %.255s in %s", model, value,
                      scope ? scope : "");
        return;
    }
    if (st == 409) {
        buf_addstr(&msg, "BadgeKit: ");
        add_clean(&msg, text ? text : "conflict (HTTP 409)", 300);
        reply_set(out, BADGEKIT_CONFLICT, "%s", msg.ptr);
        buf_release(&msg);
        return;
    }
    if (code && strcmp(code, "ValidationError") == 0) {
        json_t *d, *details = json_object_get(out->doc, "details");
        size_t i;

        json_array_foreach(details, i, d) {
            const char *field = json_string_value(json_object_get(d, "field"));
            const char *m = json_string_value(json_object_get(d, "message"));

            if (msg.len)
                buf_addstr(&msg, "; ");
            add_clean(&msg, field ? field : "?", 100);
            buf_addstr(&msg, ": ");
            add_clean(&msg, m ? m : "invalid", 200);
        }
    }
    if (msg.len == 0) {
        buf_addf(&msg, "BadgeKit refused the request (HTTP %ld", st);
        if (code) {
            buf_addstr(&msg, ", ");
            add_clean(&msg, code, 60);
        }
        if (text) {
            buf_addstr(&msg, ": ");
            add_clean(&msg, text, 200);
        }
        buf_addch(&msg, ')');
    }
    reply_set(out, BADGEKIT_PERMANENT, "%s", msg.ptr);
    buf_release(&msg);
}

void backend_badgekit_reply_release(struct badgekit_reply *r)
{
    json_decref(r->doc);
    r->doc = NULL;
}

/* ---- names and bodies ---------------------------------------------------------------- */

void backend_badgekit_badge_slug(const char *marker, char out[BACKEND_MARKER_LEN + 1])
{
    size_t i = 0;

    for (; marker && marker[i] && i < BACKEND_MARKER_LEN; i++)
        out[i] = marker[i] == ':' ? '-' : marker[i];
    out[i] = '\0';
}

static void set_text(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, json_string(v ? v : ""));
}

static int dump(json_t *o, char **out, struct err *err)
{
    *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return *out ? 0 : err_set(err, ERR_INVALID, "the request is not valid UTF-8");
}

int backend_badgekit_badge_body(const struct backend_badge *bc, const char *slug, const char *type,
                                char **out, struct err *err)
{
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN);
    const char *desc = bc->description && *bc->description ? bc->description : bc->name;
    const char *crit =
        bc->criteria_narrative && *bc->criteria_narrative ? bc->criteria_narrative : desc;
    json_t *o, *tags, *stored, *v;
    size_t i;

    *out = NULL;
    if (!bc->public_url || !*bc->public_url)
        return err_set(err, ERR_INVALID,
                       "BadgeKit keeps the image and criteria as URLs of this server: set "
                       "[server] public_url");
    o = json_object();
    if (slug)
        set_text(o, "slug", slug);
    set_text(o, "name", bc->name);
    set_text(o, "earnerDescription", desc);
    set_text(o, "consumerDescription", desc);
    if (bc->criteria_url && *bc->criteria_url) {
        set_text(o, "criteriaUrl", bc->criteria_url);
    } else {
        buf_addstr(&url, bc->public_url);
        buf_addstr(&url, "/badges/criteria/");
        buf_addstr(&url, bc->slug);
        set_text(o, "criteriaUrl", url.ptr);
    }
    buf_reset(&url);
    buf_addstr(&url, bc->public_url);
    buf_addstr(&url, "/ob/v2/badges/");
    buf_addstr(&url, bc->slug);
    buf_addstr(&url, "/image");
    if (buf_check(&url, "the badge's URLs", err) < 0) {
        json_decref(o);
        buf_release(&url);
        return -1;
    }
    set_text(o, "imageUrl", url.ptr);
    buf_release(&url);
    json_object_set_new(o, "unique", json_true());
    set_text(o, "type", type);
    json_object_set_new(
        o, "criteria",
        json_pack("[{s:s, s:b, s:s}]", "description", crit, "required", 1, "note", ""));
    tags = json_array();
    stored = bc->tags ? json_loads(bc->tags, 0, NULL) : NULL;
    json_array_foreach(stored, i, v) {
        if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 255)
            json_array_append(tags, v);
    }
    json_decref(stored);
    if (bc->issuing_component && *bc->issuing_component && strlen(bc->issuing_component) <= 255)
        json_array_append_new(tags, json_string(bc->issuing_component));
    json_object_set_new(o, "tags", tags);
    return dump(o, out, err);
}

int backend_badgekit_instance_body(const struct backend_award *a, char **out, struct err *err)
{
    char email[LIMIT_MAIL_ADDRESS_LEN + 1], when[21], iso[32];
    size_t n = a->recipient_email ? strlen(a->recipient_email) : 0;
    json_t *o;

    *out = NULL;
    if (n == 0)
        return err_set(err, ERR_INVALID, "the award has no e-mail address to send to BadgeKit");
    if (n > LIMIT_MAIL_ADDRESS_LEN)
        return err_set(err, ERR_INVALID, "the learner's e-mail address is too long");
    /* BadgeKit compares addresses without case; one spelling keeps the look-ups exact */
    for (size_t i = 0; i <= n; i++)
        email[i] = (char)tolower((unsigned char)a->recipient_email[i]);
    o = json_pack("{s:s, s:s}", "email", email, "slug", a->uid ? a->uid : "");
    if (o && a->issued_at > 0) {
        /* BadgeKit's own form of a date: JavaScript's toISOString */
        util_iso8601(a->issued_at, when);
        snprintf(iso, sizeof(iso), "%.19s.000Z", when);
        json_object_set_new(o, "issuedOn", json_string(iso));
    }
    if (o && a->expires_at > 0)
        json_object_set_new(o, "expires", json_integer((json_int_t)a->expires_at));
    return dump(o, out, err);
}

/* ---- the backend: calls to the platform ----------------------------------------------------- */

struct badgekit {
    struct backend b;
    struct badgekit_settings s;
    struct net_http *http;
    int64_t next_send_ns; /* the rate limit: no request before then (monotonic) */
};

static struct badgekit *self_of(struct backend *b)
{
    return b->self;
}

static struct net_http_policy policy_of(struct badgekit *g)
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
static bool rate_turn(struct badgekit *g)
{
    int64_t gap = g->s.rate > 0 ? 1000000000 / g->s.rate : 0;

    if (!backend_sleep_until(&g->b, g->next_send_ns))
        return false;
    g->next_send_ns = util_mono_ns() + gap;
    return true;
}

static void no_answer(struct net_http_response *resp, bool cancelled, const char *why)
{
    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->body, 0);
    resp->outcome = NET_HTTP_NETWORK;
    resp->cancelled = cancelled;
    snprintf(resp->error, sizeof(resp->error), "%s", why);
}

static const char *method_name(enum net_http_method m)
{
    switch (m) {
    case NET_HTTP_GET:
        return "GET";
    case NET_HTTP_POST:
        return "POST";
    case NET_HTTP_PUT:
        return "PUT";
    case NET_HTTP_DELETE:
        return "DELETE";
    }
    return "GET";
}

/*
 * One signed call to SCOPE + `tail` (a path already encoded) with JSON
 * `body` or none; `out` says how it went (release it).
 */
static void call(struct badgekit *g, enum net_http_method method, const char *tail,
                 const char *body, struct badgekit_reply *out)
{
    static const struct net_http_header accept = { "Accept", "application/json" };
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN), authz = BUF_INIT(LIMIT_HTTP_HEADER_VALUE);
    struct net_http_policy p = policy_of(g);
    struct net_http_response resp;
    struct err err = ERR_INIT;
    const char *target;

    buf_addstr(&url, g->s.base_url);
    buf_addstr(&url, g->s.scope);
    buf_addstr(&url, tail);
    /* the request target as sent: what follows the authority */
    target = strstr(url.ptr, "://");
    target = target ? strchr(target + 3, '/') : NULL;
    if (buf_check(&url, "the request's URL", &err) < 0 || !target ||
        backend_badgekit_authorization(g->s.key, g->s.secret, method_name(method), target, body,
                                       body ? strlen(body) : 0, util_now(), &authz, &err) < 0) {
        memset(out, 0, sizeof(*out));
        reply_set(out, BADGEKIT_PERMANENT, "%s", err.code ? err.msg : "no request target");
        goto out;
    }
    if (!rate_turn(g)) {
        no_answer(&resp, true, "cancelled");
    } else {
        struct net_http_request req = {
            .method = method,
            .url = url.ptr,
            .content_type = body ? NET_HTTP_JSON : NULL,
            .authorization = authz.ptr,
            .headers = &accept,
            .nheaders = 1,
            .body = body,
            .body_len = body ? strlen(body) : 0,
            .max_response = LIMIT_BADGEKIT_ANSWER,
            /*
             * A POST goes on a connection of its own: libcurl would send it
             * again by itself when a kept-alive connection closes before any
             * answer; the retry must be ours, after a look-up.
             */
            .fresh_connection = method == NET_HTTP_POST,
        };

        net_http_send(g->http, &p, &req, &resp);
    }
    backend_badgekit_reply(&resp, g->s.scope, out);
    net_http_response_release(&resp);
out:
    explicit_bzero(authz.ptr, authz.len);
    buf_release(&authz);
    buf_release(&url);
}

/* Copies a reply's failure into a result, `what` first ("creating the badge"). */
static void fail(struct backend_result *r, const struct badgekit_reply *rep, const char *what)
{
    static const enum backend_status map[] = {
        [BADGEKIT_OK] = BACKEND_OK,
        [BADGEKIT_RETRY] = BACKEND_RETRY,
        [BADGEKIT_AUTH] = BACKEND_AUTH,
        [BADGEKIT_PERMANENT] = BACKEND_PERMANENT,
        [BADGEKIT_NOT_FOUND] = BACKEND_PERMANENT,
        [BADGEKIT_CONFLICT] = BACKEND_PERMANENT,
    };

    backend_result_set(r, map[rep->kind], "%s: %s", what, rep->message);
    r->retry_after = rep->retry_after;
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

/* The BadgeKit slug of bc: its stored id, else made from its marker. */
static bool badge_slug_of(const struct backend_badge *bc, char out[BACKEND_MARKER_LEN + 1])
{
    if (bc->backend_id && *bc->backend_id) {
        if (!backend_badgekit_slug_valid(bc->backend_id) ||
            strlen(bc->backend_id) > BACKEND_MARKER_LEN)
            return false;
        snprintf(out, BACKEND_MARKER_LEN + 1, "%s", bc->backend_id);
        return true;
    }
    backend_badgekit_badge_slug(bc->marker, out);
    return backend_badgekit_slug_valid(out);
}

/* The name of the scope's deepest part, and how many badges BadgeKit lists in it. */
static void op_check(struct backend *b, struct backend_result *r)
{
    struct badgekit *g = self_of(b);
    struct badgekit_reply rep;
    const char *kind = g->s.program[0] ? "program" : g->s.issuer[0] ? "issuer" : "system";
    const char *name;
    char what[64];

    backend_result_init(r);
    snprintf(what, sizeof(what), "reading the %s", kind);
    call(g, NET_HTTP_GET, "", NULL, &rep);
    if (rep.kind != BADGEKIT_OK) {
        fail(r, &rep, what);
        if (rep.kind == BADGEKIT_NOT_FOUND)
            r->status = BACKEND_AUTH;
        backend_badgekit_reply_release(&rep);
        return;
    }
    name = json_string_value(json_object_get(json_object_get(rep.doc, kind), "name"));
    snprintf(r->name, sizeof(r->name), "%.200s", name ? name : g->s.scope);
    backend_badgekit_reply_release(&rep);
    call(g, NET_HTTP_GET, "/badges", NULL, &rep);
    if (rep.kind != BADGEKIT_OK) {
        fail(r, &rep, "listing the badges");
    } else {
        json_t *list = json_object_get(rep.doc, "badges");
        size_t n = strlen(r->name);

        snprintf(r->name + n, sizeof(r->name) - n, " (%s, %zu badge%s)", g->s.scope,
                 json_array_size(list), json_array_size(list) == 1 ? "" : "s");
    }
    backend_badgekit_reply_release(&rep);
}

/* GET of badge `slug` in the scope: ok with r->found and r->id, ok without found on 404. */
static void get_badge(struct badgekit *g, const char *slug, struct backend_result *r)
{
    struct buf tail = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgekit_reply rep;

    buf_addstr(&tail, "/badges/");
    add_segment(&tail, slug);
    call(g, NET_HTTP_GET, tail.ptr, NULL, &rep);
    if (rep.kind == BADGEKIT_OK) {
        r->found = true;
        if (!copy_str(json_object_get(json_object_get(rep.doc, "badge"), "slug"), r->id,
                      sizeof(r->id)))
            snprintf(r->id, sizeof(r->id), "%s", slug);
    } else if (rep.kind != BADGEKIT_NOT_FOUND) {
        fail(r, &rep, "looking up the badge");
    }
    backend_badgekit_reply_release(&rep);
    buf_release(&tail);
}

static void op_verify(struct backend *b, const char *id, struct backend_result *r)
{
    struct badgekit *g = self_of(b);

    backend_result_init(r);
    if (!backend_badgekit_slug_valid(id)) {
        backend_result_set(r, BACKEND_PERMANENT, "'%.80s' is not a BadgeKit badge slug",
                           id ? id : "");
        return;
    }
    get_badge(g, id, r);
    if (r->status == BACKEND_OK && !r->found)
        backend_result_set(r, BACKEND_PERMANENT, "no badge %s in %s", id, g->s.scope);
    r->found = false;
}

static void op_find_badge_class(struct backend *b, const struct backend_badge *bc,
                                struct backend_result *r)
{
    char slug[BACKEND_MARKER_LEN + 1];

    backend_result_init(r);
    if (!bc->marker || !badge_slug_of(bc, slug))
        return;
    get_badge(self_of(b), slug, r);
}

static void send_badge(struct backend *b, const struct backend_badge *bc, bool update,
                       struct backend_result *r)
{
    struct badgekit *g = self_of(b);
    struct buf tail = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgekit_reply rep;
    struct err err = ERR_INIT;
    char slug[BACKEND_MARKER_LEN + 1], *body = NULL;

    backend_result_init(r);
    if (!badge_slug_of(bc, slug)) {
        backend_result_set(r, BACKEND_PERMANENT, "'%.80s' is not a BadgeKit badge slug",
                           bc->backend_id ? bc->backend_id
                           : bc->marker   ? bc->marker
                                          : "");
        return;
    }
    if (backend_badgekit_badge_body(bc, update ? NULL : slug, g->s.badge_type, &body, &err) < 0) {
        backend_result_set(r, BACKEND_PERMANENT, "%s", err.msg);
        return;
    }
    if (update) {
        buf_addstr(&tail, "/badges/");
        add_segment(&tail, slug);
    } else {
        buf_addstr(&tail, "/badges");
    }
    call(g, update ? NET_HTTP_PUT : NET_HTTP_POST, tail.ptr, body, &rep);
    if (rep.kind == BADGEKIT_OK) {
        snprintf(r->id, sizeof(r->id), "%s", slug);
    } else if (!update && rep.kind == BADGEKIT_CONFLICT) {
        /*
         * The slug is taken: ours, made by a call whose answer was lost or
         * answered 500 after the row was stored. It is used when it is in
         * our scope; elsewhere it is another system's, never ours to take.
         */
        get_badge(g, slug, r);
        if (r->status == BACKEND_OK && !r->found)
            backend_result_set(r, BACKEND_PERMANENT,
                               "creating the badge: BadgeKit holds badge %s outside %s", slug,
                               g->s.scope);
        r->found = false;
    } else {
        fail(r, &rep, update ? "updating the badge" : "creating the badge");
    }
    backend_badgekit_reply_release(&rep);
    free(body);
    buf_release(&tail);
}

static void op_create_badge_class(struct backend *b, const struct backend_badge *bc,
                                  struct backend_result *r)
{
    send_badge(b, bc, false, r);
}

static void op_update_badge_class(struct backend *b, const struct backend_badge *bc,
                                  struct backend_result *r)
{
    send_badge(b, bc, true, r);
}

/* "/badges/B/instances/EMAIL" of the award's learner, lower-cased as sent. */
static bool instance_tail(const struct backend_badge *bc, const struct backend_award *a,
                          struct buf *tail)
{
    char slug[BACKEND_MARKER_LEN + 1];
    char email[LIMIT_MAIL_ADDRESS_LEN + 1];
    size_t n = a->recipient_email ? strlen(a->recipient_email) : 0;

    if (n == 0 || n > LIMIT_MAIL_ADDRESS_LEN || !badge_slug_of(bc, slug))
        return false;
    for (size_t i = 0; i <= n; i++)
        email[i] = (char)tolower((unsigned char)a->recipient_email[i]);
    buf_addstr(tail, "/badges/");
    add_segment(tail, slug);
    buf_addstr(tail, "/instances/");
    add_segment(tail, email);
    return true;
}

/*
 * The instance the learner holds: ok with r->found, r->id (its slug) and
 * r->url (its assertion URL), and a note in r->message when it is not the
 * award's own (made by other means: adopted); ok without found on 404.
 */
static void op_find_assertion(struct backend *b, const struct backend_badge *bc,
                              const struct backend_award *a, struct backend_result *r)
{
    struct badgekit *g = self_of(b);
    struct buf tail = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgekit_reply rep;

    backend_result_init(r);
    if (!instance_tail(bc, a, &tail)) {
        backend_result_set(r, BACKEND_PERMANENT, "no BadgeKit badge or e-mail to look up");
        buf_release(&tail);
        return;
    }
    call(g, NET_HTTP_GET, tail.ptr, NULL, &rep);
    if (rep.kind == BADGEKIT_OK) {
        json_t *inst = json_object_get(rep.doc, "instance");

        if (!copy_str(json_object_get(inst, "slug"), r->id, sizeof(r->id)) || !r->id[0]) {
            backend_result_set(r, BACKEND_RETRY,
                               "looking up the instance: BadgeKit answered without its slug");
        } else {
            r->found = true;
            if (!copy_str(json_object_get(inst, "assertionUrl"), r->url, sizeof(r->url)))
                r->url[0] = '\0';
            if (!a->uid || strcmp(r->id, a->uid) != 0)
                snprintf(r->message, sizeof(r->message),
                         "adopted BadgeKit's instance %.255s: the learner held this badge "
                         "already, awarded by other means",
                         r->id);
        }
    } else if (rep.kind != BADGEKIT_NOT_FOUND) {
        fail(r, &rep, "looking up the instance");
    }
    backend_badgekit_reply_release(&rep);
    buf_release(&tail);
}

static void op_issue(struct backend *b, const struct backend_badge *bc,
                     const struct backend_award *a, struct backend_result *r)
{
    struct badgekit *g = self_of(b);
    struct buf tail = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgekit_reply rep;
    struct err err = ERR_INIT;
    char slug[BACKEND_MARKER_LEN + 1], *body = NULL;

    backend_result_init(r);
    if (!badge_slug_of(bc, slug)) {
        backend_result_set(r, BACKEND_PERMANENT, "'%.80s' is not a BadgeKit badge slug",
                           bc->backend_id ? bc->backend_id : "");
        return;
    }
    if (backend_badgekit_instance_body(a, &body, &err) < 0) {
        backend_result_set(r, BACKEND_PERMANENT, "%s", err.msg);
        return;
    }
    buf_addstr(&tail, "/badges/");
    add_segment(&tail, slug);
    buf_addstr(&tail, "/instances");
    call(g, NET_HTTP_POST, tail.ptr, body, &rep);
    free(body);
    if (rep.kind == BADGEKIT_OK) {
        json_t *inst = json_object_get(rep.doc, "instance");

        if (!copy_str(json_object_get(inst, "slug"), r->id, sizeof(r->id)) || !r->id[0])
            backend_result_set(r, BACKEND_RETRY,
                               "issuing: BadgeKit answered without the instance's slug");
        else if (!copy_str(json_object_get(inst, "assertionUrl"), r->url, sizeof(r->url)))
            r->url[0] = '\0';
    } else if (rep.kind == BADGEKIT_CONFLICT) {
        /* the learner holds it: ours whose answer was lost, or one made by other means */
        op_find_assertion(b, bc, a, r);
        if (r->status == BACKEND_OK && !r->found)
            backend_result_set(r, BACKEND_RETRY,
                               "issuing: BadgeKit says the learner holds this badge, but the "
                               "look-up does not find it");
        r->found = false;
    } else {
        fail(r, &rep, "issuing");
    }
    backend_badgekit_reply_release(&rep);
    buf_release(&tail);
}

/*
 * BadgeKit deletes an instance (its assertion then answers 404). It is
 * found by the learner's address first: gone is done, and one that is not
 * the award's (another made since) is not ours to delete.
 */
static void op_revoke(struct backend *b, const struct backend_badge *bc,
                      const struct backend_award *a, const char *reason, struct backend_result *r)
{
    struct badgekit *g = self_of(b);
    struct buf tail = BUF_INIT(LIMIT_LTI_URL_LEN);
    struct badgekit_reply rep;
    char id[512];

    (void)reason; /* BadgeKit keeps no reason: the instance goes */
    op_find_assertion(b, bc, a, r);
    if (r->status != BACKEND_OK || !r->found)
        goto out;
    snprintf(id, sizeof(id), "%s", r->id);
    if (a->assertion_id && *a->assertion_id && strcmp(id, a->assertion_id) != 0) {
        backend_result_init(r);
        goto out;
    }
    backend_result_init(r);
    instance_tail(bc, a, &tail);
    call(g, NET_HTTP_DELETE, tail.ptr, NULL, &rep);
    if (rep.kind == BADGEKIT_OK || rep.kind == BADGEKIT_NOT_FOUND)
        snprintf(r->id, sizeof(r->id), "%s", id);
    else
        fail(r, &rep, "revoking");
    backend_badgekit_reply_release(&rep);
out:
    r->found = false;
    buf_release(&tail);
}

static void op_destroy(struct backend *b)
{
    struct badgekit *g = self_of(b);

    net_http_free(g->http);
    explicit_bzero(g, sizeof(*g));
    free(g);
}

static const struct backend_ops badgekit_ops = {
    .name = "badgekit",
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

struct backend *backend_badgekit_new(const struct badgekit_settings *s, struct err *err)
{
    struct badgekit *g;

    if (!s->base_url[0] || !s->host[0] || !s->scope[0] || !s->secret[0]) {
        err_set(err, ERR_INVALID, "a badgekit backend needs base_url, secret and system");
        return NULL;
    }
    g = xcalloc(1, sizeof(*g));
    g->s = *s;
    g->b.ops = &badgekit_ops;
    g->b.self = g;
    g->http = net_http_new();
    if (!g->http) {
        explicit_bzero(g, sizeof(*g));
        free(g);
        err_set(err, ERR_INTERNAL, "could not set up the HTTP client");
        return NULL;
    }
    return &g->b;
}
