/*
 * web/ob.c - the hosted issuer's Open Badges 2.0 endpoints under /ob/v2/:
 * issuer, badges/SLUG, badges/SLUG/image, assertions/UID (410 once
 * revoked), assertions/UID/image (baked) and revocations. badges/SLUG/image
 * serves every BadgeClass's image, whatever its backend: remote platforms
 * that keep an image URL (BadgeKit) and our own pages point there.
 *
 * JSON-LD (application/ld+json) unless the client asks for plain JSON;
 * open to every origin for GET, since verifiers and backpacks fetch these
 * from their own pages. A browser (Accept preferring HTML) asking for an
 * assertion, a BadgeClass or the issuer gets its public page instead
 * (badgepage.c); both answers carry Vary: Accept.
 */
#include "base/base.h"
#include "web/web_int.h"

#include "awards/awards.h"

/* What we generate, nothing else (no dots, no slashes, no escapes). */
bool web_id_ok(struct str s)
{
    if (s.len == 0 || s.len > LIMIT_SLUG_LEN)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

static const char *negotiate(struct req *r, const char *type)
{
    const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");

    if (strcmp(type, "application/ld+json") != 0 || !accept)
        return type;
    /* a client that names plain JSON and not JSON-LD gets plain JSON (the same document) */
    if (strstr(accept, "application/json") && !strstr(accept, "application/ld+json"))
        return "application/json";
    return type;
}

/* Splits "a/b/c" after the prefix into at most three segments. */
static size_t segments(struct str p, struct str seg[3])
{
    size_t n = 0;

    while (p.len && n < 3) {
        const char *slash = memchr(p.ptr, '/', p.len);
        size_t len = slash ? (size_t)(slash - p.ptr) : p.len;

        seg[n++] = (struct str){ p.ptr, len };
        if (!slash)
            return n;
        p.ptr += len + 1;
        p.len -= len + 1;
        if (p.len == 0)
            return 9; /* a trailing slash: no such document */
    }
    return p.len ? 9 : n;
}

void web_route_ob(struct req *r)
{
    struct awards *a = r->web->cfg.awards;
    struct str rest = { r->path.ptr + strlen("/ob/v2/"), r->path.len - strlen("/ob/v2/") };
    struct str seg[3];
    size_t n = segments(rest, seg);
    struct awards_doc doc = { 0 };
    struct err err = ERR_INIT;
    char id[LIMIT_SLUG_LEN + 1];
    int ret = -1;

    if (!a) {
        err_set(&err, ERR_NOTFOUND, "there is no page at this address");
        web_reply_err(r, &err);
        return;
    }
    /* a person's browser: the page of the same URL, never the document */
    if (((n == 1 && str_eq_cstr(seg[0], "issuer")) ||
         (n == 2 && web_id_ok(seg[1]) &&
          (str_eq_cstr(seg[0], "badges") || str_eq_cstr(seg[0], "assertions")))) &&
        web_accepts_html(r)) {
        if (n == 1) {
            web_page_issuer(r);
        } else {
            memcpy(id, seg[1].ptr, seg[1].len);
            id[seg[1].len] = '\0';
            if (str_eq_cstr(seg[0], "badges"))
                web_page_badgeclass(r, id);
            else
                web_page_assertion(r, id);
        }
        return;
    }
    if (n == 1 && str_eq_cstr(seg[0], "issuer")) {
        ret = awards_ob_issuer(a, &doc, &err);
    } else if (n == 1 && str_eq_cstr(seg[0], "revocations")) {
        ret = awards_ob_revocations(a, &doc, &err);
    } else if ((n == 2 || (n == 3 && str_eq_cstr(seg[2], "image"))) && web_id_ok(seg[1]) &&
               (str_eq_cstr(seg[0], "badges") || str_eq_cstr(seg[0], "assertions"))) {
        bool badge = str_eq_cstr(seg[0], "badges");

        memcpy(id, seg[1].ptr, seg[1].len);
        id[seg[1].len] = '\0';
        if (badge)
            ret = n == 2 ? awards_ob_badge(a, id, &doc, &err)
                         : awards_ob_badge_image(a, id, &doc, &err);
        else
            ret = n == 2 ? awards_ob_assertion(a, id, &doc, &err)
                         : awards_ob_assertion_image(a, id, &doc, &err);
    } else {
        err_set(&err, ERR_NOTFOUND, "there is no Open Badges document at this address");
    }
    if (ret < 0) {
        web_reply_err(r, &err);
        return;
    }
    {
        bool image = strncmp(doc.content_type, "image/", 6) == 0;
        /* the documents a browser gets a page for vary with Accept; images and the list do not */
        bool varies = n == 2 || str_eq_cstr(seg[0], "issuer");
        const char *hdrs[] = { "Access-Control-Allow-Origin", "*", NULL, NULL, NULL };
        const char *type = negotiate(r, doc.content_type);

        /* images (stored or baked): their CSP; documents with a page: Vary */
        if (image) {
            hdrs[2] = "Content-Security-Policy";
            hdrs[3] = WEB_IMAGE_CSP;
        } else if (varies) {
            hdrs[2] = "Vary";
            hdrs[3] = "Accept";
        }

        /*
         * Revocation must show at once: no-cache, every use asks again;
         * the ETag lets an unchanged image or document come back as 304.
         */
        if (doc.status == 200) {
            web_reply_cacheable(r, type, doc.body, doc.len, "no-cache", hdrs);
        } else {
            const char *more[] = { "Access-Control-Allow-Origin",
                                   "*",
                                   "Cache-Control",
                                   "no-cache",
                                   varies ? "Vary" : NULL,
                                   "Accept",
                                   NULL };

            web_reply(r, doc.status, type, doc.body, doc.len, more);
        }
    }
}
