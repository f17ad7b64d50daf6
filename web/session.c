/*
 * web/session.c - the session behind a page, its language and its CSRF token.
 *
 * The token ("ID-SECRET": the session's id, a dash, 32 random bytes in hex)
 * travels in links and forms, never in a cookie: inside an LMS iframe with
 * third-party cookies blocked the URL is all the browser keeps. The
 * database knows only the secret's SHA-256.
 *
 * A form carries, besides the token, a CSRF token: the HMAC-SHA256 of a
 * fixed label under the session's own random CSRF secret. A page of
 * another site cannot read it, and the session token alone is not enough
 * to post (it is in URLs, so it may reach a history or a screenshot).
 */
#include "base/base.h"
#include "web/web_int.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>

const char *web_fmt(struct req *r, const char *fmt, ...)
{
    va_list ap;
    const char *p;

    va_start(ap, fmt);
    p = arena_vprintf(&r->arena, fmt, ap);
    va_end(ap);
    return p;
}

static void csrf_token(const unsigned char secret[32], char out[65])
{
    static const char label[] = "ltibadges form v1";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (!util_hmac(util_md_sha256(), secret, 32, label, sizeof(label) - 1, mac, &len) || len < 32)
        BUG("HMAC-SHA256 failed"); /* a token must never be left unset */
    util_hex(out, mac, 32);
}

int web_session_or_reply(struct req *r, struct str token, struct web_sess *out)
{
    const char *dash = token.len > 65 ? memchr(token.ptr, '-', token.len) : NULL;
    struct str idpart = { token.ptr, dash ? (size_t)(dash - token.ptr) : 0 };
    struct str secret = { dash ? dash + 1 : NULL, dash ? token.len - idpart.len - 1 : 0 };
    int64_t id = 0;
    bool ok = dash && secret.len == 64 && str_to_i64(idpart, 1, INT64_MAX, &id) == 0;
    unsigned char hash[32];
    struct err err = ERR_INIT;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; ok && i < secret.len; i++)
        ok = (secret.ptr[i] >= '0' && secret.ptr[i] <= '9') ||
             (secret.ptr[i] >= 'a' && secret.ptr[i] <= 'f');
    if (!ok) {
        web_reply_refusal(
            r, ERR_FORBIDDEN,
            _("this page needs a valid session: open the tool again from your course"));
        return -1;
    }
    util_sha256(secret.ptr, secret.len, hash);
    if (store_session_get(r->web->store, id, hash, util_now(), &r->arena, &out->s, &err) < 0) {
        if (err.code == ERR_NOTFOUND)
            web_reply_refusal(
                r, ERR_FORBIDDEN,
                _("your session has expired or is not valid: open the tool again from your "
                  "course"));
        else
            web_reply_err(r, &err);
        return -1;
    }
    out->token = arena_strz(&r->arena, token);
    out->staff = (out->s.role_flags & LTI_ROLES_STAFF) != 0;
    out->lang = web_lang_pick(
        out->s.locale, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept-Language"));
    web_lang_use(out->lang);
    csrf_token(out->s.csrf_secret, out->csrf);
    r->sess = out;
    return 0;
}

struct web_sess *web_session_from_query_or_reply(struct req *r)
{
    struct web_sess *ws = arena_alloc(&r->arena, sizeof(*ws));
    struct form q = { NULL, 0 };
    struct err err = ERR_INIT;
    struct str token = STR_NULL;

    if (str_present(r->query) &&
        form_parse(&r->arena, r->query.ptr, r->query.len, 32, &q, &err) == 0)
        token = form_get(&q, "s");
    return web_session_or_reply(r, token, ws) < 0 ? NULL : ws;
}

int web_form_session_or_reply(struct req *r, bool staff, struct web_sess *out)
{
    struct str given;

    if (web_session_or_reply(r, web_post_get(r, "s"), out) < 0)
        return -1;
    given = web_post_get(r, "csrf");
    if (!util_ct_equal(given.ptr ? given.ptr : "", given.len, out->csrf, 64)) {
        web_reply_refusal(
            r, ERR_FORBIDDEN,
            _("this form has expired or did not come from this tool: reload the page and "
              "try again"));
        return -1;
    }
    if (staff && !out->staff) {
        web_reply_refusal(r, ERR_FORBIDDEN, _("only the course's instructors can do this"));
        return -1;
    }
    if (staff && !out->s.context_id) {
        web_reply_refusal(r, ERR_FORBIDDEN, _("this needs a launch from inside a course"));
        return -1;
    }
    return 0;
}

struct web_sess *web_staff_session_from_query_or_reply(struct req *r)
{
    struct web_sess *ws = web_session_from_query_or_reply(r);

    if (!ws)
        return NULL;
    if (!ws->staff) {
        web_reply_refusal(r, ERR_FORBIDDEN, _("only the course's instructors can do this"));
        return NULL;
    }
    if (!ws->s.context_id) {
        web_reply_refusal(r, ERR_FORBIDDEN, _("this needs a launch from inside a course"));
        return NULL;
    }
    return ws;
}
