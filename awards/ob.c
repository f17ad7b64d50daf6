/*
 * awards/ob.c - the documents of the hosted issuer, read from the store
 * when they are asked for: the Issuer profile, BadgeClasses, Assertions
 * (410 once revoked), baked images and the revocation list.
 *
 * Only what the hosted backend issued is served: a BadgeClass of another
 * backend, or an award not issued yet, is not found here. The one
 * exception is a BadgeClass's image, served whatever its backend.
 */
#include "base/base.h"
#include "awards/awards_int.h"

#define LD_JSON "application/ld+json"

static void set_doc(struct awards_doc *out, char *body, size_t len, const char *type,
                    unsigned status)
{
    out->body = body;
    out->len = len;
    out->content_type = type;
    out->status = status;
}

static void set_json(struct awards_doc *out, char *json, unsigned status)
{
    set_doc(out, json, strlen(json), LD_JSON, status);
}

int awards_ob_issuer(struct awards *a, struct awards_doc *out, struct err *err)
{
    (void)err;
    set_json(out, backend_hosted_issuer_json(&a->issuer), 200);
    return 0;
}

static int hosted_badge(struct awards *a, const char *slug, struct arena *ar, struct store_badge *b,
                        struct err *err)
{
    if (store_badge_get(a->store, slug, ar, b, err) < 0)
        return -1;
    if (strcmp(b->backend, "hosted") != 0)
        return err_set(err, ERR_NOTFOUND, "there is no BadgeClass '%s' here", slug);
    return 0;
}

int awards_ob_badge(struct awards *a, const char *slug, struct awards_doc *out, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_badge b;
    struct backend_badge bb;
    int ret = -1;

    if (hosted_badge(a, slug, &ar, &b, err) == 0) {
        awards_to_backend_badge(&b, &bb);
        set_json(out, backend_hosted_badge_json(&a->issuer, &bb), 200);
        ret = 0;
    }
    arena_release(&ar);
    return ret;
}

int awards_ob_badge_image(struct awards *a, const char *slug, struct awards_doc *out,
                          struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_badge b;
    int ret = -1;

    /* every backend's: platforms that keep an image URL, not the file, point here */
    if (store_badge_get(a->store, slug, &ar, &b, err) == 0) {
        char *img = xmalloc(b.image_len ? b.image_len : 1);

        memcpy(img, b.image, b.image_len);
        set_doc(out, img, b.image_len,
                strcmp(b.image_type, "image/png") == 0 ? "image/png" : "image/svg+xml", 200);
        ret = 0;
    }
    arena_release(&ar);
    return ret;
}

/* An issued (or revoked after issuing) hosted award and its BadgeClass. */
static int hosted_award(struct awards *a, const char *uid, struct arena *ar, struct store_award *w,
                        struct store_badge *b, struct err *err)
{
    if (store_award_get_uid(a->store, uid, ar, w, err) < 0)
        return -1;
    if (!w->assertion_id || (w->state != AWARD_ISSUED && w->state != AWARD_REVOKED) ||
        store_badge_get_id(a->store, w->badge_id, ar, b, err) < 0 ||
        strcmp(b->backend, "hosted") != 0) {
        err_clear(err);
        return err_set(err, ERR_NOTFOUND, "there is no such assertion");
    }
    return 0;
}

int awards_ob_assertion(struct awards *a, const char *uid, struct awards_doc *out, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_award w;
    struct store_badge b;
    struct backend_badge bb;
    struct backend_award ba;
    int ret = -1;

    if (hosted_award(a, uid, &ar, &w, &b, err) == 0) {
        bool revoked = w.state == AWARD_REVOKED;

        awards_to_backend_badge(&b, &bb);
        awards_to_backend_award(&w, &ba);
        set_json(out,
                 backend_hosted_assertion_json(&a->issuer, &bb, &ba,
                                               revoked ? (w.revoke_reason ? w.revoke_reason : "")
                                                       : NULL),
                 revoked ? 410 : 200);
        ret = 0;
    }
    arena_release(&ar);
    return ret;
}

int awards_ob_assertion_image(struct awards *a, const char *uid, struct awards_doc *out,
                              struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_award w;
    struct store_badge b;
    struct buf url = BUF_INIT(LIMIT_LTI_URL_LEN * 4);
    unsigned char *img = NULL;
    size_t len = 0;
    int ret = -1;

    if (hosted_award(a, uid, &ar, &w, &b, err) < 0)
        goto out;
    if (w.state == AWARD_REVOKED) {
        err_set(err, ERR_NOTFOUND, "this badge was revoked");
        goto out;
    }
    backend_hosted_assertion_url(&a->issuer, w.uid, &url);
    if (buf_check(&url, "the assertion URL", err) < 0)
        goto out;
    {
        char *u = arena_strz(&ar, buf_view(&url));

        if (strcmp(b.image_type, "image/png") == 0)
            ret = image_bake_png(b.image, b.image_len, u, &img, &len, err);
        else
            ret = image_bake_svg(b.image, b.image_len, u, &img, &len, err);
    }
    if (ret == 0)
        set_doc(out, (char *)img, len,
                strcmp(b.image_type, "image/png") == 0 ? "image/png" : "image/svg+xml", 200);
out:
    buf_release(&url);
    arena_release(&ar);
    return ret;
}

int awards_ob_revocations(struct awards *a, struct awards_doc *out, struct err *err)
{
    struct arena ar = ARENA_INIT;
    struct store_award_filter f = { AWARD_REVOKED, NULL, 0, "hosted", 0 };
    struct store_award *v;
    size_t n, k = 0;
    const char **uids, **reasons;

    if (store_award_list(a->store, &f, &ar, &v, &n, err) < 0) {
        arena_release(&ar);
        return -1;
    }
    uids = arena_alloc(&ar, (n + 1) * sizeof(*uids));
    reasons = arena_alloc(&ar, (n + 1) * sizeof(*reasons));
    for (size_t i = 0; i < n; i++) {
        /* only assertions that were published can be listed as revoked */
        if (!v[i].assertion_id)
            continue;
        uids[k] = v[i].uid;
        reasons[k] = v[i].revoke_reason;
        k++;
    }
    set_json(out, backend_hosted_revocations_json(&a->issuer, uids, reasons, k), 200);
    arena_release(&ar);
    return 0;
}
