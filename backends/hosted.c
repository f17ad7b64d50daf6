/*
 * backends/hosted.c - the built-in issuer: Open Badges 2.0 with hosted
 * verification (https://www.imsglobal.org/sites/default/files/Badges/OBv2p0Final/).
 *
 * Every document has a stable URL under the public base URL, and the award's
 * own unguessable uid names its assertion, so issuing only computes URLs:
 * it is idempotent, needs no account and cannot fail. What the documents
 * say is read from the award record when they are requested (web/ serves
 * them through awards/), so a revocation shows at once.
 */
#include "base/base.h"
#include "backends/backends.h"

#include <ctype.h>
#include <jansson.h>

#define OB_CONTEXT "https://w3id.org/openbadges/v2"

static void url_of(const struct hosted_issuer *is, const char *path, const char *name,
                   const char *suffix, struct buf *out)
{
    buf_reset(out);
    buf_addstr(out, is->public_url);
    buf_addstr(out, path);
    if (name)
        form_encode_rfc3986(out, str_from_cstr(name));
    if (suffix)
        buf_addstr(out, suffix);
}

void backend_hosted_badge_url(const struct hosted_issuer *is, const char *slug, struct buf *out)
{
    url_of(is, "/ob/v2/badges/", slug, NULL, out);
}

void backend_hosted_assertion_url(const struct hosted_issuer *is, const char *uid, struct buf *out)
{
    url_of(is, "/ob/v2/assertions/", uid, NULL, out);
}

/* A buffer's text as a new JSON string (URLs are short; the buffers are bounded). */
static json_t *jurl(const struct hosted_issuer *is, const char *path, const char *name,
                    const char *suffix)
{
    struct buf b = BUF_INIT(LIMIT_LTI_URL_LEN * 4);
    json_t *j;

    url_of(is, path, name, suffix, &b);
    j = json_stringn(b.ptr ? b.ptr : "", b.len);
    buf_release(&b);
    return j;
}

static json_t *doc(const char *type, json_t *id)
{
    json_t *o = json_object();

    json_object_set_new(o, "@context", json_string(OB_CONTEXT));
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "id", id);
    return o;
}

static void set_str(json_t *o, const char *key, const char *v)
{
    if (v && *v)
        json_object_set_new(o, key, json_string(v));
}

static char *dump(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

    json_decref(o);
    if (!s)
        abort(); /* jansson fails only on allocation: as everywhere, out of memory is fatal */
    return s;
}

char *backend_hosted_issuer_json(const struct hosted_issuer *is)
{
    json_t *o = doc("Issuer", jurl(is, "/ob/v2/issuer", NULL, NULL));

    set_str(o, "name", is->name);
    if (is->url && *is->url)
        set_str(o, "url", is->url);
    else
        set_str(o, "url", is->public_url);
    set_str(o, "email", is->email);
    set_str(o, "description", is->description);
    set_str(o, "image", is->image_url);
    json_object_set_new(o, "revocationList", jurl(is, "/ob/v2/revocations", NULL, NULL));
    return dump(o);
}

/* Tags as stored, plus the issuing component (the proposal's cross-issuer marker). */
static json_t *tags_of(const struct backend_badge *bc)
{
    json_t *stored = bc->tags ? json_loads(bc->tags, 0, NULL) : NULL;
    json_t *tags = json_array();
    size_t i;
    json_t *v;

    if (json_is_array(stored)) {
        json_array_foreach(stored, i, v) {
            if (json_is_string(v))
                json_array_append(tags, v);
        }
    }
    json_decref(stored);
    if (bc->issuing_component && *bc->issuing_component)
        json_array_append_new(tags, json_string(bc->issuing_component));
    return tags;
}

char *backend_hosted_badge_json(const struct hosted_issuer *is, const struct backend_badge *bc)
{
    json_t *o = doc("BadgeClass", jurl(is, "/ob/v2/badges/", bc->slug, NULL));
    json_t *criteria = json_object();
    json_t *al = bc->alignments ? json_loads(bc->alignments, 0, NULL) : NULL;

    set_str(o, "name", bc->name);
    set_str(o, "description", bc->description);
    json_object_set_new(o, "image", jurl(is, "/ob/v2/badges/", bc->slug, "/image"));
    set_str(criteria, "id", bc->criteria_url);
    set_str(criteria, "narrative", bc->criteria_narrative);
    if (json_object_size(criteria) == 0)
        json_object_set_new(criteria, "narrative",
                            json_string(bc->description ? bc->description : ""));
    json_object_set_new(o, "criteria", criteria);
    json_object_set_new(o, "issuer", jurl(is, "/ob/v2/issuer", NULL, NULL));
    json_object_set_new(o, "tags", tags_of(bc));
    if (json_is_array(al) && json_array_size(al) > 0)
        json_object_set_new(o, "alignment", json_incref(al));
    json_decref(al);
    return dump(o);
}

/*
 * The identity hash of Open Badges: "sha256$" and the hex SHA-256 of the
 * address and the salt. Addresses are compared case-insensitively, as
 * Badgr and the validators do, so the lower-cased address is hashed.
 */
static json_t *identity_hash(const char *email, const char *salt)
{
    struct buf b = BUF_INIT(8 * 1024);
    unsigned char h[32];
    char hex[sizeof("sha256$") + 64];
    json_t *j;

    for (const char *p = email; *p; p++)
        buf_addch(&b, (char)tolower((unsigned char)*p));
    buf_addstr(&b, salt);
    util_sha256(b.ptr ? b.ptr : "", b.len, h);
    buf_release(&b);
    memcpy(hex, "sha256$", 7);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 7 + 2 * i, 3, "%02x", h[i]);
    j = json_string(hex);
    return j;
}

static json_t *iso(int64_t t)
{
    char ts[21];

    util_iso8601(t, ts);
    return json_string(ts);
}

char *backend_hosted_assertion_json(const struct hosted_issuer *is, const struct backend_badge *bc,
                                    const struct backend_award *a, const char *revoked_reason)
{
    json_t *o = doc("Assertion", jurl(is, "/ob/v2/assertions/", a->uid, NULL));
    json_t *rcp, *ver, *ev, *evs;

    if (revoked_reason) {
        /* what the specification asks of a revoked hosted assertion: id, revoked, reason */
        json_object_set_new(o, "revoked", json_true());
        set_str(o, "revocationReason", revoked_reason);
        return dump(o);
    }
    rcp = json_object();
    json_object_set_new(rcp, "type", json_string("email"));
    json_object_set_new(rcp, "hashed", json_true());
    json_object_set_new(rcp, "salt", json_string(a->salt));
    json_object_set_new(rcp, "identity",
                        identity_hash(a->recipient_email ? a->recipient_email : "", a->salt));
    json_object_set_new(o, "recipient", rcp);
    json_object_set_new(o, "badge", jurl(is, "/ob/v2/badges/", bc->slug, NULL));
    ver = json_object();
    json_object_set_new(ver, "type", json_string("hosted"));
    json_object_set_new(o, "verification", ver);
    json_object_set_new(o, "issuedOn", iso(a->issued_at));
    if (a->expires_at > 0)
        json_object_set_new(o, "expires", iso(a->expires_at));
    json_object_set_new(o, "image", jurl(is, "/ob/v2/assertions/", a->uid, "/image"));
    ev = json_object();
    set_str(ev, "id", a->evidence_url);
    set_str(ev, "name", a->evidence_name);
    set_str(ev, "narrative", a->narrative);
    if (json_object_size(ev) > 0) {
        evs = json_array();
        json_array_append_new(evs, ev);
        json_object_set_new(o, "evidence", evs);
    } else {
        json_decref(ev);
    }
    return dump(o);
}

char *backend_hosted_revocations_json(const struct hosted_issuer *is, const char *const *uids,
                                      const char *const *reasons, size_t n)
{
    json_t *o = doc("RevocationList", jurl(is, "/ob/v2/revocations", NULL, NULL));
    json_t *list = json_array();

    json_object_set_new(o, "issuer", jurl(is, "/ob/v2/issuer", NULL, NULL));
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_object();

        json_object_set_new(r, "id", jurl(is, "/ob/v2/assertions/", uids[i], NULL));
        set_str(r, "revocationReason", reasons[i]);
        json_array_append_new(list, r);
    }
    json_object_set_new(o, "revokedAssertions", list);
    return dump(o);
}

/* ---- the backend ---------------------------------------------------------- */

static void copy_url(struct backend_result *r, const struct buf *b)
{
    snprintf(r->url, sizeof(r->url), "%.*s", (int)b->len, b->ptr ? b->ptr : "");
}

static void hosted_create(struct backend *b, const struct backend_badge *bc,
                          struct backend_result *r)
{
    struct buf u = BUF_INIT(LIMIT_LTI_URL_LEN * 4);

    backend_result_init(r);
    backend_hosted_badge_url(b->self, bc->slug, &u);
    /* the platform is ltibadges itself: its id for the BadgeClass is the URL it serves it at */
    snprintf(r->id, sizeof(r->id), "%.*s", (int)u.len, u.ptr ? u.ptr : "");
    buf_release(&u);
}

static void hosted_issue(struct backend *b, const struct backend_badge *bc,
                         const struct backend_award *a, struct backend_result *r)
{
    struct buf u = BUF_INIT(LIMIT_LTI_URL_LEN * 4);

    backend_result_init(r);
    if (!a->recipient_email || !*a->recipient_email) {
        backend_result_set(r, BACKEND_PERMANENT, "the learner has no email address");
        return;
    }
    backend_hosted_assertion_url(b->self, a->uid, &u);
    snprintf(r->id, sizeof(r->id), "%s", a->uid);
    copy_url(r, &u);
    buf_release(&u);
}

static void hosted_revoke(struct backend *b, const struct backend_badge *bc,
                          const struct backend_award *a, const char *reason,
                          struct backend_result *r)
{
    /* the award record is the assertion: once it says revoked, the URL answers 410 */
    backend_result_init(r);
}

static void hosted_find(struct backend *b, const struct backend_badge *bc,
                        const struct backend_award *a, struct backend_result *r)
{
    /* nothing exists outside our own record, and issuing again yields the same URL */
    backend_result_init(r);
}

static void hosted_check(struct backend *b, struct backend_result *r)
{
    const struct hosted_issuer *is = b->self;

    /* the issuer is this server: nothing to log in to, its profile is the configuration's */
    backend_result_init(r);
    snprintf(r->name, sizeof(r->name), "%s", is->name ? is->name : "");
}

static void hosted_destroy(struct backend *b)
{
    free(b);
}

static const struct backend_ops hosted_ops = {
    .name = "hosted",
    .remote = false,
    .check = hosted_check,
    /* ids are its own URLs, given to no operator; creating is idempotent; documents are read
       from the record when served, so an edit needs no update */
    .verify_badge_class = NULL,
    .find_badge_class = NULL,
    .create_badge_class = hosted_create,
    .update_badge_class = NULL,
    .issue = hosted_issue,
    .revoke = hosted_revoke,
    .find_assertion = hosted_find,
    .destroy = hosted_destroy,
};

struct backend *backend_hosted_new(const struct hosted_issuer *issuer)
{
    struct backend *b = xcalloc(1, sizeof(*b));

    b->ops = &hosted_ops;
    b->self = (void *)issuer; /* owned by the caller, outlives the backend */
    return b;
}
